"""The keyspace's per-key LRU/LFU fields (Redis's ``robj.lru``): kept in the database's
KeyTable beside each value (``Database.field``/``set_field``), set on every store and touch.

The field is a C integer in the entry (``dumpling._keytable``; a dict of ints in the pure
reference), so no key holds a Python int of its own (``bench/memory_keys.py`` measures the RSS
per key against Redis). The values themselves are checked against Redis by the OBJECT
IDLETIME/FREQ, DEBUG OBJECT and eviction tests.
"""

from __future__ import annotations

import sys

from dumpling.config import Config
from dumpling.keyspace import LFU_INIT_VAL, Keyspace, lfu_minutes, lru_clock


def make_keyspace(policy: str = "noeviction") -> Keyspace:
    config = Config()
    config.load_argv(["--maxmemory-policy", policy])
    return Keyspace(config)


def test_lru_fields_follow_stores_and_touches() -> None:
    ks = make_keyspace()
    db = ks.dbs[0]
    ks.now = 1_700_000_000_123
    for i in range(1000):
        db.add(b"key:%012d" % i, b"xxx")
    ks.now += 400  # same second
    db.touch(b"key:000000000007")
    assert {db.field(key) for key in db.data} == {lru_clock(ks.now)}

    ks.now += 2000  # a later second
    for key in (b"key:000000000001", b"key:000000000002"):
        assert db.lookup_read(key) == b"xxx"
    db.add(b"new", b"v")
    assert [db.field(b"key:000000000001"), db.field(b"key:000000000002"), db.field(b"new")] == \
        [lru_clock(ks.now)] * 3
    assert db.field(b"key:000000000003") == lru_clock(ks.now - 2400)
    assert db.field(b"missing") is None and db.field(b"missing", 0) == 0
    db.set(b"new", b"w")  # an overwrite keeps the field
    assert db.field(b"new") == lru_clock(ks.now)
    db.delete(b"new")
    assert db.field(b"new") is None


def test_lfu_fields_count_and_decay() -> None:
    ks = make_keyspace("allkeys-lfu")
    db = ks.dbs[0]
    ks.now = 1_700_000_000_000
    for i in range(500):
        db.add(b"k%d" % i, b"v")
    assert {db.field(key) for key in db.data} == {(lfu_minutes(ks.now) << 8) | LFU_INIT_VAL}
    for _ in range(50):
        for i in range(500):
            db.touch(b"k%d" % i)
    counters = {db.field(key) & 255 for key in db.data}
    assert all(LFU_INIT_VAL <= c <= 255 for c in counters) and max(counters) > LFU_INIT_VAL


def test_a_field_costs_no_object() -> None:
    """The fields of a million distinct values cost the table nothing beyond its entries."""
    ks = make_keyspace()
    db = ks.dbs[0]
    for i in range(2000):
        db.add(b"k%d" % i, b"v")
    before = sys.getsizeof(db.data)
    for i in range(2000):
        db.set_field(b"k%d" % i, 100_000 + i)  # values no Python cache holds
    assert sys.getsizeof(db.data) <= before or type(db.data).__name__ == "PyKeyTable"
    assert db.field(b"k1999") == 101_999
