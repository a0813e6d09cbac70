"""The changes-since-last-save counter (INFO ``rdb_changes_since_last_save``, what save points
read) moves by Redis's amounts for the collection commands: one per element pushed, popped,
added or removed, nothing for the ``del`` of a collection a write emptied.  Each command's
delta is compared with real Redis; the served blocking pops with vectors recorded on 7.4.1
(7.0 counted them differently)."""

from __future__ import annotations

import time

import pytest

from tests.servers import Pair, RawConnection, ServerProcess, encode_command

Cmd = tuple[object, ...]


def _dirty(conn: RawConnection) -> int:
    info = conn.call("INFO", "persistence").decode()
    return int(info.split("rdb_changes_since_last_save:")[1].split("\r\n")[0])


CASES: dict[str, list[Cmd]] = {
    "lists": [("RPUSH", "l", "a", "b", "c", "d", "e"), ("LPUSHX", "l", "x", "y"), ("LPOP", "l"), ("RPOP", "l", "2"),
              ("LREM", "l", "0", "b"), ("LTRIM", "l", "0", "0"), ("LTRIM", "l", "0", "-1"), ("LSET", "l", "0", "z"),
              ("LINSERT", "l", "BEFORE", "z", "w"), ("LMOVE", "l", "m", "LEFT", "RIGHT"), ("RPOPLPUSH", "l", "m"),
              ("LMPOP", "1", "m", "LEFT", "COUNT", "5"), ("RPUSH", "q", "1", "2"), ("LPOP", "q", "9")],
    "sets": [("SADD", "s", "a", "b", "c", "a"), ("SREM", "s", "a", "x"), ("SADD", "t", "b"), ("SMOVE", "s", "t", "b"),
             ("SMOVE", "s", "u", "c"), ("SADD", "p", "1", "2", "3"), ("SPOP", "p", "2"), ("SPOP", "p"),
             ("SADD", "p", "1", "2"), ("SPOP", "p", "9"), ("SINTERSTORE", "d", "t", "nokey"), ("SREM", "t", "b")],
    "zsets": [("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZADD", "z", "CH", "5", "a", "2", "b", "9", "d"),
              ("ZINCRBY", "z", "1", "a"), ("ZREM", "z", "a", "x"), ("ZREMRANGEBYSCORE", "z", "0", "3"),
              ("ZPOPMIN", "z", "5"), ("ZADD", "y", "1", "a"), ("ZPOPMAX", "y"), ("ZADD", "y", "1", "a", "2", "b"),
              ("ZMPOP", "1", "y", "MIN", "COUNT", "9"), ("ZADD", "y", "1", "a"), ("ZREMRANGEBYRANK", "y", "0", "-1")],
    "hashes": [("HSET", "h", "a", "1", "b", "2", "a", "3"), ("HSETNX", "h", "c", "1"), ("HMSET", "h", "d", "1"),
               ("HINCRBY", "h", "n", "2"), ("HINCRBYFLOAT", "h", "f", "1.5"), ("HDEL", "h", "a", "b", "x"),
               ("HDEL", "h", "c", "d", "n", "f")],
}


@pytest.mark.parametrize("family", list(CASES))
def test_dirty_deltas_match_redis(pair: Pair, family: str) -> None:
    for cmd in CASES[family]:
        before = _dirty(pair.ours), _dirty(pair.theirs)
        if cmd[0] == "SPOP":
            pair.both(*cmd)  # (random members: only the counts are compared)
        else:
            pair.same(*cmd)
        assert _dirty(pair.ours) - before[0] == _dirty(pair.theirs) - before[1], cmd


@pytest.mark.parametrize("blocking,expected", [
    (("BLPOP", "lst", "0"), 2),
    (("BLMOVE", "lst", "lst1", "LEFT", "LEFT", "0"), 2),
    (("BLMPOP", "0", "1", "lst", "LEFT"), 2),
    (("BRPOPLPUSH", "lst", "lst1", "0"), 2),
], ids=["blpop", "blmove", "blmpop", "brpoplpush"])
def test_served_blocking_pop_counts_once_is_7_4(dumpling_server: ServerProcess, blocking: Cmd, expected: int) -> None:
    """Recorded from Redis 7.4.1 (unit/type/list "BLPOP/BLMOVE should increase dirty"): the LPUSH
    that serves a blocked pop counts 1, the pop 1, the emptied list's deletion nothing."""
    with dumpling_server.raw() as admin, dumpling_server.raw() as waiting:
        admin.call("FLUSHALL")
        before = _dirty(admin)
        waiting.send(encode_command(*blocking))  # type: ignore[arg-type]
        for _ in range(300):
            if b"blocked_clients:1\r\n" in admin.call("INFO", "clients"):
                break
        admin.call("LPUSH", "lst", "a")
        assert waiting.read_reply()
        assert _dirty(admin) - before == expected


def test_expired_and_evicted_keys_count_no_change(pair: Pair) -> None:
    """A key deleted because its TTL passed (lazily, by a read) or evicted is no change in
    Redis's count (``deleteExpiredKeyAndPropagate``/``performEvictions`` leave ``dirty``)."""
    for conn in (pair.ours, pair.theirs):
        conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        pair.same("SET", "k", "v", "PX", "1")
        before = _dirty(pair.ours), _dirty(pair.theirs)
        time.sleep(0.02)
        pair.same("GET", "k")
        pair.same("EXISTS", "k")
        assert (_dirty(pair.ours) - before[0], _dirty(pair.theirs) - before[1]) == (0, 0)
        pair.same("SET", "e", "v")
        for conn in (pair.ours, pair.theirs):
            conn.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
            conn.call("CONFIG", "SET", "maxmemory", "1")
        before = _dirty(pair.ours), _dirty(pair.theirs)
        pair.same("DBSIZE")  # (no write: eviction runs before every command)
        pair.same("EXISTS", "e")
        assert (_dirty(pair.ours) - before[0], _dirty(pair.theirs) - before[1]) == (0, 0)
    finally:
        for conn in (pair.ours, pair.theirs):
            conn.call("CONFIG", "SET", "maxmemory", "0")
            conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
            conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
