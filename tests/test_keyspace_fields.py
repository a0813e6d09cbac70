"""The keyspace's per-key LRU/LFU fields: right values, and one shared object per value.

A field is kept for every key (``Database.meta``); Python caches no int past 256, so unless
stores share objects each key would hold an int of its own (32 bytes a key:
``bench/memory_keys.py`` measures the RSS per key against Redis). The values themselves are
checked against Redis by the OBJECT IDLETIME/FREQ, DEBUG OBJECT and eviction tests.
"""

from __future__ import annotations

from dumpling.config import Config
from dumpling.keyspace import LFU_INIT_VAL, Keyspace, lfu_minutes, lru_clock


def make_keyspace(policy: str = "noeviction") -> Keyspace:
    config = Config()
    config.load_argv(["--maxmemory-policy", policy])
    return Keyspace(config)


def test_lru_fields_of_one_second_share_one_object() -> None:
    ks = make_keyspace()
    db = ks.dbs[0]
    ks.now = 1_700_000_000_123
    for i in range(1000):
        db.add(b"key:%012d" % i, b"xxx")
    ks.now += 400  # same second
    db.touch(b"key:000000000007")
    fields = list(db.meta.values())
    assert fields == [lru_clock(ks.now)] * 1000
    assert len({id(field) for field in fields}) == 1

    ks.now += 2000  # a later second: its own value, again shared
    for key in (b"key:000000000001", b"key:000000000002"):
        assert db.lookup_read(key) == b"xxx"
    db.add(b"new", b"v")
    later = [db.meta[b"key:000000000001"], db.meta[b"key:000000000002"], db.meta[b"new"]]
    assert later == [lru_clock(ks.now)] * 3
    assert len({id(field) for field in later}) == 1
    assert db.meta[b"key:000000000003"] == lru_clock(ks.now - 2400)


def test_lfu_fields_share_objects_per_value() -> None:
    ks = make_keyspace("allkeys-lfu")
    db = ks.dbs[0]
    ks.now = 1_700_000_000_000
    for i in range(500):
        db.add(b"k%d" % i, b"v")
    fields = list(db.meta.values())
    assert fields == [(lfu_minutes(ks.now) << 8) | LFU_INIT_VAL] * 500
    assert len({id(field) for field in fields}) == 1
    for _ in range(50):
        for i in range(500):
            db.touch(b"k%d" % i)
    counters = {field & 255 for field in db.meta.values()}
    assert all(LFU_INIT_VAL <= c <= 255 for c in counters) and max(counters) > LFU_INIT_VAL
    # one object per distinct value
    assert len({id(field) for field in db.meta.values()}) == len(set(db.meta.values()))
