"""The model of Redis 7.4's hash tables (``dumpling.dictstats``): DEBUG HTSTATS,
DEBUG DICT-RESIZING, the dict overheads of MEMORY STATS and INFO memory.

Redis 7.0's tables and texts differ (no ``full``/DICT-RESIZING, other overhead sums), so the
sequence is compared with a vector recorded from Redis 7.4.1 (the same steps against
``/tmp/redis74/src/redis-server``); error replies are compared with Redis 7.0 live.  Only
states Redis reaches whatever its random hash seed are recorded: sizes, and element counts
outside a rehash or right at its start (the cron is paused there).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from dumpling.dictstats import AVOID, ENABLE, TableModel, chain_lengths, stats_text
from tests.servers import Pair, ServerProcess

VECTOR = Path(__file__).parent / "vectors" / "htstats_7.4.1.json"


def test_growth_and_shrink_follow_dict_c() -> None:
    model = TableModel()
    sizes = []
    for count in range(1, 10):
        model.sync(count, ENABLE, True)
        sizes.append((model.size0, model.used0, model.size1, model.used1))
    # Redis 7.4.1: the 5th insertion starts 4 -> 8 with 4 + 1 elements, the 9th 8 -> 16
    assert sizes[:5] == [(4, 1, 0, 0), (4, 2, 0, 0), (4, 3, 0, 0), (4, 4, 0, 0), (4, 4, 8, 1)]
    assert sizes[8][0::2] == (8, 16)
    model = TableModel()
    model.sync(128, ENABLE, True)
    model.rehash(1000, ENABLE)
    assert (model.size0, model.rehashing()) == (128, False)
    model.sync(5, ENABLE, False)  # DEBUG DICT-RESIZING 0: no shrink
    assert model.size0 == 128
    model.shrink_if_needed(ENABLE, True)  # the cron, resizing allowed again
    model.rehash(1000, ENABLE)
    assert (model.size0, model.used0) == (8, 5)
    model.sync(4 * 8 - 1, AVOID, True)  # a fork child: expand only at 4 elements per bucket
    assert model.size0 == 8
    model.sync(4 * 8 + 1, AVOID, True)
    assert model.size1 == 64 and model.may_rehash(AVOID)  # 8 -> 64 is past the ratio: it moves beside a child


def test_stats_text_full() -> None:
    # the layout of dictGetStatsMsg with full, for a table of 4 holding 4 keys in 3 buckets
    assert stats_text(0, 4, 4, chain_lengths([0, 1, 5, 3], 2)) == (
        "Hash table 0 stats (main hash table):\n table size: 4\n number of elements: 4\n different slots: 3\n"
        " max chain length: 2\n avg chain length (counted): 1.33\n avg chain length (computed): 1.33\n"
        " Chain length distribution:\n   0: 1 (25.00%)\n   1: 2 (50.00%)\n   2: 1 (25.00%)\n")
    assert stats_text(1, 8, 0) == "Hash table 1 stats (rehashing target):\nNo stats available for empty dictionaries\n"


def _replay(r: redis.Redis, recorded: list[object]) -> list[object]:
    def ht(db: int = 0, *extra: str) -> str:
        return r.execute_command("DEBUG", "HTSTATS", db, *extra).decode()

    def after_cron() -> str:
        """The tables once the cron has done its part: as Redis's were after the same pause,
        when they get there (a loaded machine may run no cron tick within the pause)."""
        deadline = time.monotonic() + 20
        while (now := ht()) != recorded[len(out)] and time.monotonic() < deadline:
            time.sleep(0.05)
        return now

    def ms() -> dict[str, object]:
        return {k: v for k, v in r.memory_stats().items() if "db" in k or "hashtable" in k}

    def put(*keys: str) -> None:
        for key in keys:
            r.set(key, "v")

    out: list[object] = [ht()]
    r.execute_command("DEBUG", "PAUSE-CRON", "1")  # no rehash by the cron while the tables are read
    try:
        r.set("a", "b")
        out += [ht(), ms()]
        put("b", "c", "d")
        out.append(ht())
        r.set("e", "f")  # the fifth key: 4 -> 8 starts with 4 + 1 elements
        out += [ht(), ms(), r.info("memory")["mem_overhead_db_hashtable_rehashing"]]
    finally:
        r.execute_command("DEBUG", "PAUSE-CRON", "0")
    time.sleep(0.3)  # the cron ends the rehash
    out.append(after_cron())
    r.expire("a", 100)  # the expires dict is made
    time.sleep(0.3)
    out.append(after_cron())
    out.append(ms())
    r.execute_command("DEBUG", "DICT-RESIZING", "0")  # neither grows nor shrinks
    put(*(f"k{j}" for j in range(128)))
    time.sleep(0.3)
    out.append(after_cron())
    r.delete(*[f"k{j}" for j in range(126)])
    r.delete("b", "c", "d", "e")
    time.sleep(0.3)
    out.append(after_cron())
    r.execute_command("DEBUG", "DICT-RESIZING", "1")
    time.sleep(0.5)
    out.append(after_cron())
    out.append(ms())
    r.flushall()  # a fork child: growth only at 4 elements a bucket, then the cron catches up
    r.config_set("save", "")
    r.config_set("rdb-key-save-delay", 20000)  # the child lives 2 s: past the 30 writes on a loaded machine
    put(*(f"p{j}" for j in range(100)))
    time.sleep(0.3)
    out.append(after_cron())
    r.bgsave()
    time.sleep(0.05)
    put(*(f"p{j}" for j in range(100, 130)))
    out.append(ht())
    assert r.info("persistence")["rdb_bgsave_in_progress"]  # (that was beside the child)
    while r.info("persistence")["rdb_bgsave_in_progress"]:
        time.sleep(0.05)
    r.config_set("rdb-key-save-delay", 0)
    time.sleep(0.5)
    out.append(after_cron())
    r.delete(*[f"p{j}" for j in range(120)])  # shrinks at 1 element in 8 buckets
    time.sleep(0.3)
    out.append(after_cron())
    return out


def test_htstats_and_overheads_match_redis_7_4(dumpling_server: ServerProcess) -> None:
    r = redis.Redis(port=dumpling_server.port)
    r.flushall()
    try:
        recorded = json.loads(VECTOR.read_text())
        got = json.loads(json.dumps(_replay(r, recorded), default=lambda o: o.decode() if isinstance(o, bytes) else str(o)))
    finally:
        r.execute_command("DEBUG", "DICT-RESIZING", "1")
        r.config_set("rdb-key-save-delay", 0)
        r.flushall()
        r.close()
    assert got == recorded


def test_htstats_errors_match_redis(pair: Pair) -> None:
    pair.same("SET", "str", "v")
    pair.same("SADD", "small", "1")
    for args in (("HTSTATS", "16"), ("HTSTATS", "-1"), ("HTSTATS", "x"), ("HTSTATS-KEY", "nokey"),
                 ("HTSTATS-KEY", "str"), ("HTSTATS-KEY", "small"), ("HTSTATS",), ("HTSTATS-KEY",)):
        pair.same("DEBUG", *args)


def test_a_dict_emptied_between_looks_stays_allocated(dumpling_server: ServerProcess) -> None:
    """128 keys set and deleted between two looks (one pipeline): Redis's dict was made and
    shrank back; MEMORY STATS shows db.9 (values recorded from Redis 7.4.1, other.tcl's
    "Redis can resize empty dict")."""
    r = redis.Redis(port=dumpling_server.port, db=9)
    try:
        r.flushall()
        pipe = r.pipeline(transaction=False)
        for j in range(1, 129):
            pipe.set(f"{j}{{b}}", "a")
        for j in range(1, 129):
            pipe.delete(f"{j}{{b}}")
        pipe.execute()
        stats = r.memory_stats()
        assert stats["db.9"] == {"overhead.hashtable.main": 312, "overhead.hashtable.expires": 216}
        assert stats["overhead.db.hashtable.lut"] == 32
        assert r.execute_command("DEBUG", "HTSTATS", 9) == (
            b"[Dictionary HT]\nHash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n"
            b"[Expires HT]\n")
    finally:
        r.flushall()
        r.close()


def test_active_expiry_passes_over_a_sparse_expires_dict(dumpling_server: ServerProcess) -> None:
    """An expires dict under 1% full is not sampled by active expiry until the cron has shrunk
    it (isExpiryDictValidForSamplingCb): with DICT-RESIZING 0, 1 key left of 200 in a table of
    256 outlives its TTL.  Recorded from Redis 7.4.1 running these steps."""
    r = redis.Redis(port=dumpling_server.port)
    try:
        r.flushall()
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
        pipe = r.pipeline(transaction=False)
        for j in range(200):
            pipe.psetex(f"k{j}", 300, "a")
        pipe.execute()
        r.execute_command("DEBUG", "HTSTATS", 0)
        r.execute_command("DEBUG", "DICT-RESIZING", 0)
        r.delete(*[f"k{j}" for j in range(199)])
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)
        time.sleep(1.0)
        assert r.dbsize() == 1
        assert b"[Expires HT]\nHash table 0 stats (main hash table):\n table size: 256\n number of elements: 1\n" in (
            r.execute_command("DEBUG", "HTSTATS", 0))
        r.execute_command("DEBUG", "DICT-RESIZING", 1)
        deadline = time.monotonic() + 20
        while r.dbsize() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.dbsize() == 0
    finally:
        r.execute_command("DEBUG", "DICT-RESIZING", 1)
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)
        r.flushall()
        r.close()



def sparse_dict_steps(port: int, cluster: bool) -> tuple[int, list[bytes]]:
    """unit/expire 'expire scan should skip dictionaries with lot's of empty buckets': an
    expires dict (a slot's, on a one-node cluster) grown to 128 by 100 keys, 99 of them deleted
    with DICT-RESIZING 0 and no look at the tables in between: active expiry passes over it
    (and, in the cluster, expires the keys of other slots).  DBSIZE after a second, and KEYS."""
    r = redis.Redis(port=port)
    try:
        if cluster:
            r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in r.execute_command("CLUSTER", "INFO") and time.monotonic() < deadline:
                time.sleep(0.05)
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
        if cluster:
            r.psetex("alice", 500, "val")  # slot 749
            r.psetex("key", 500, "val")  # slot 12539
        pipe = r.pipeline(transaction=False)
        for j in range(1, 101):
            pipe.psetex(f"{{foo}}{j}", 500, "a")  # slot 12182
        pipe.execute()
        r.execute_command("DEBUG", "DICT-RESIZING", 0)
        r.delete(*[f"{{foo}}{j}" for j in range(1, 100)])
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)
        time.sleep(1.2)
        return r.dbsize(), r.execute_command("KEYS", "*")
    finally:
        r.close()


def test_a_sparse_expires_dict_is_passed_over_without_a_look_before_resizing_stops(
        dumpling_server: ServerProcess) -> None:
    """DEBUG DICT-RESIZING brings every table up to its count first: a table was brought up to
    date only when something looked, so it never grew to 128 and looked dense.  Recorded from
    Redis 7.4.1 running these steps ({foo}100 is past its TTL: KEYS leaves it out)."""
    r = redis.Redis(port=dumpling_server.port)
    try:
        r.flushall()
        assert sparse_dict_steps(dumpling_server.port, cluster=False) == (1, [])
    finally:
        r.execute_command("DEBUG", "DICT-RESIZING", 1)
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)
        r.flushall()
        r.close()


@pytest.mark.slow
def test_a_sparse_slot_is_passed_over_in_a_cluster() -> None:
    """The same in cluster mode, where a slot's table was brought up to date only when the
    cron's cursor reached that slot; the keys of other slots expire.  Slow: the cluster state
    takes ~2 s to become ok."""
    from tests.servers import start_dumpling

    server = start_dumpling("--enable-debug-command", "yes", "--cluster-enabled", "yes")
    try:
        assert sparse_dict_steps(server.port, cluster=True) == (1, [])
    finally:
        server.stop()
