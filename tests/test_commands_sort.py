"""SORT and SORT_RO over lists, sets and sorted sets, differentially against real Redis
(RESP2 and RESP3): numeric and ALPHA ordering, LIMIT clamping, BY/GET patterns on
strings and hash fields, ``#``, constant BY (no sorting), STORE and its events."""

from __future__ import annotations

import pytest

from tests.servers import parse_reply


@pytest.fixture
def data(pairs):
    pairs.run([
        ("RPUSH", "l", "3", "1", "2", "10", "-5", "2.5"),
        ("MSET", "w_3", "30", "w_1", "10", "w_2", "-1", "w_10", "5", "w_-5", "0"),
        ("HSET", "o_3", "f", "3", "g", "c"), ("HSET", "o_1", "f", "1", "g", "a"), ("HSET", "o_2", "f", "2", "g", "b"),
    ])
    return pairs


def test_numeric_alpha_and_limit(data):
    data.run([
        ("SORT", "l"), ("SORT", "l", "DESC"), ("SORT", "l", "ALPHA"), ("SORT", "l", "ALPHA", "DESC"),
        ("SORT", "l", "asc", "alpha", "desc"), ("SORT", "l", "LIMIT", "1", "2"), ("SORT", "l", "LIMIT", "-5", "2"),
        ("SORT", "l", "LIMIT", "2", "-1"), ("SORT", "l", "LIMIT", "10", "2"), ("SORT", "l", "LIMIT", "0", "0"),
        ("SORT", "l", "LIMIT", "5", "100"), ("SORT", "l", "LIMIT", "x", "1"), ("SORT", "l", "LIMIT", "1"),
        ("SORT", "l", "FOO"), ("SORT", "nokey"), ("SORT", "nokey", "LIMIT", "0", "1", "DESC"),
    ])


def test_by_and_get_patterns(data):
    data.run([
        ("SORT", "l", "BY", "nosort"), ("SORT", "l", "BY", "nosort", "DESC"), ("SORT", "l", "BY", "nosort", "LIMIT", "1", "2"),
        ("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"), ("SORT", "l", "BY", "w_*"), ("SORT", "l", "BY", "w_*", "DESC"),
        ("SORT", "l", "BY", "w_*", "ALPHA"), ("SORT", "l", "BY", "w_*", "GET", "#", "GET", "w_*"),
        ("SORT", "l", "BY", "w_*", "GET", "nostar"), ("SORT", "l", "BY", "o_*->f", "GET", "o_*->g"),
        ("SORT", "l", "BY", "o_*->f", "DESC", "GET", "o_*->g", "GET", "#"), ("SORT", "l", "GET", "o_*->"),
        ("SORT", "l", "BY", "o_*->"), ("SORT", "l", "BY", "missing_*", "GET", "#"), ("SORT", "l", "GET", "w_*->f"),
        ("SORT", "l", "GET", "o_*"), ("SORT", "l", "BY", "w_*", "LIMIT", "1", "3", "GET", "#"),
        ("SORT", "l", "BY", "w_*", "ALPHA", "GET", "w_*"), ("SORT", "l", "BY"), ("SORT", "l", "GET"),
        ("SORT", "l", "BY", "w_*", "BY", "nosort"), ("SORT", "l", "GET", "#", "GET", "#"),
    ])


def test_weights_parse_like_strtod(pairs):
    pairs.run([
        ("RPUSH", "bad", "a", "1"), ("SORT", "bad"), ("SORT", "bad", "ALPHA"), ("SORT", "bad", "BY", "nosort"),
        ("SORT", "bad", "STORE", "dst"), ("EXISTS", "dst"),
        ("RPUSH", "e", "", "1", "-1"), ("SORT", "e"),
        ("RPUSH", "sp", " 3", "2", "inf", "-inf", "0x10", "1e2", "+4", ".5"), ("SORT", "sp"), ("SORT", "sp", "DESC"),
        ("RPUSH", "nan", "nan", "1"), ("SORT", "nan"), ("RPUSH", "trail", "3 ", "1"), ("SORT", "trail"),
        ("RPUSH", "ties", "b", "a", "1.0", "1", "01"), ("SORT", "ties"), ("SORT", "ties", "DESC"),
        ("RPUSH", "huge", "1e400", "1"), ("SORT", "huge"),
    ])


def test_sets_and_zsets(pairs):
    pairs.run([
        ("SADD", "s", "5", "3", "9", "1"), ("SORT", "s"), ("SORT", "s", "DESC", "LIMIT", "0", "2"),
        ("SORT", "s", "BY", "nosort"), ("SORT", "s", "BY", "nosort", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"),
        ("SADD", "ss", "b", "a", "c"), ("SORT", "ss", "ALPHA"), ("SORT", "ss"), ("SORT", "ss", "ALPHA", "DESC"),
        ("SORT", "ss", "BY", "nosort", "STORE", "d2"), ("LRANGE", "d2", "0", "-1"),
        ("ZADD", "z", "1", "c", "2", "b", "3", "a"), ("SORT", "z", "ALPHA"), ("SORT", "z", "BY", "nosort"),
        ("SORT", "z", "BY", "nosort", "DESC"), ("SORT", "z", "BY", "nosort", "LIMIT", "1", "5"),
        ("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "1"), ("SORT", "z"),
        ("ZADD", "zn", "3", "10", "2", "20", "1", "30"), ("SORT", "zn"), ("SORT", "zn", "BY", "nosort", "GET", "#"),
    ])


def test_store(pairs):
    pairs.run([
        ("RPUSH", "l", "3", "1", "2"), ("SORT", "l", "STORE", "out"), ("LRANGE", "out", "0", "-1"), ("TYPE", "out"),
        ("SET", "str", "x"), ("SORT", "l", "STORE", "str"), ("TYPE", "str"), ("EXPIRE", "out", "100"),
        ("SORT", "l", "DESC", "STORE", "out"), ("TTL", "out"), ("SORT", "nokey", "STORE", "out"), ("EXISTS", "out"),
        ("SORT", "l", "LIMIT", "0", "0", "STORE", "out2"), ("EXISTS", "out2"), ("SORT", "l", "GET", "#", "GET", "w_*", "STORE", "o3"),
        ("LRANGE", "o3", "0", "-1"), ("SORT", "l", "STORE", "a", "STORE", "b"), ("EXISTS", "a", "b"),
        ("SORT", "l", "STORE"), ("SORT_RO", "l"), ("SORT_RO", "l", "STORE", "x"), ("SORT_RO", "l", "BY", "nosort", "DESC"),
        ("SORT", "str"), ("SORT_RO", "str"), ("SORT", "l", "STORE", "l"), ("LRANGE", "l", "0", "-1"),
    ])


def test_getkeys(pairs):
    pairs.run([
        ("COMMAND", "GETKEYS", "SORT", "k"), ("COMMAND", "GETKEYS", "SORT", "k", "STORE", "d"),
        ("COMMAND", "GETKEYS", "SORT", "k", "LIMIT", "0", "1", "GET", "store", "STORE", "d", "STORE", "e"),
        ("COMMAND", "GETKEYS", "SORT_RO", "k", "BY", "x"),
    ])


def test_store_events(pair, dumpling_server, redis_server):
    listeners = (dumpling_server.raw(), redis_server.raw())
    try:
        pair.same("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        for conn in listeners:
            conn.call("PSUBSCRIBE", "__key*")
        pair.run([("RPUSH", "l", "2", "1"), ("SORT", "l", "STORE", "so"), ("SORT", "l", "STORE", "so"),
                  ("SORT", "l", "LIMIT", "0", "0", "STORE", "so"), ("SORT", "missing"), ("SORT", "nokey", "STORE", "x")])
        ours, theirs = (conn.read_all(0.3) for conn in listeners)
        assert ours == theirs and b"sortstore" in ours and b"keymiss" not in ours
    finally:
        pair.same("CONFIG", "SET", "notify-keyspace-events", "")
        for conn in listeners:
            conn.close()


def test_store_encoding_and_zset_conversion(r):
    """7.2+: the stored list is converted like any new list; SORT turns a listpack
    sorted set into a skiplist for good (as Redis does)."""
    r.rpush("l", *range(20))
    r.sort("l", store="small")
    assert r.object("encoding", "small") == b"listpack"
    r.rpush("w", *["x" * 300] * 40)
    r.sort("w", by="nosort", store="wide")
    assert r.object("encoding", "wide") == b"quicklist" and r.llen("wide") == 40
    r.zadd("z", {"a": 1, "b": 2})
    assert r.object("encoding", "z") == b"listpack"
    assert r.sort("z", alpha=True) == [b"a", b"b"]
    assert r.object("encoding", "z") == b"skiplist"


def test_sort_many_elements(pairs):
    values = [str((i * 7919) % 1000 - 500) for i in range(1000)]
    pairs.same("RPUSH", "big", *values)
    reply = pairs.same("SORT", "big", "LIMIT", "10", "20")
    assert parse_reply(reply) == [str(v).encode() for v in sorted(map(int, values))][10:30]
    pairs.same("SORT", "big", "ALPHA", "DESC", "LIMIT", "0", "5")
    pairs.same("SORT", "big", "STORE", "dst")
    pairs.same("LRANGE", "dst", "500", "505")


def test_cluster_mode_pattern_slots():
    """In cluster mode BY/GET patterns must hash to the sorted key's slot, ``GET #``
    included (messages and behaviour measured on Redis 7.4.1, single-node cluster)."""
    import time

    from tests.servers import free_port, start_dumpling

    node = start_dumpling("--cluster-enabled", "yes", "--cluster-port", str(free_port()))
    try:
        with node.raw() as conn:
            assert conn.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == b"+OK\r\n"
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in conn.call("CLUSTER", "INFO") and time.monotonic() < deadline:
                time.sleep(0.05)
            conn.call("RPUSH", "{a}l", "3", "1", "2")
            conn.call("SET", "w_{a}1", "30")
            assert parse_reply(conn.call("SORT", "{a}l", "BY", "w_{a}*")) == [b"2", b"3", b"1"]
            assert parse_reply(conn.call("SORT", "{a}l", "GET", "w_{a}*")) == [b"30", None, None]
            by_error = b"-ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in " \
                       b"different slots.\r\n"
            get_error = b"-ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in " \
                        b"different slots.\r\n"
            assert conn.call("SORT", "{a}l", "BY", "w_*") == by_error
            assert conn.call("SORT_RO", "{a}l", "BY", "w_*") == by_error
            assert conn.call("SORT", "{a}l", "GET", "#") == get_error
            assert parse_reply(conn.call("SORT", "{a}l", "BY", "nosort")) == [b"3", b"1", b"2"]
    finally:
        node.stop()


def test_numeric_order_with_ties_matches_score_then_element_order() -> None:
    """``_by_score`` sorts by float keys and then orders each run of equal scores by element:
    the same result as sorting (score, element) pairs (Redis's sortCompare), for full sorts,
    partial (LIMIT) sorts and DESC, with -0/0 and infinities as ties."""
    import random

    from dumpling.commands.sorting import _by_score

    rng = random.Random(1)
    for _ in range(2000):
        n = rng.randrange(0, 80)
        elements = [rng.choice([b"a", b"b", b"aa", b"", b"zzz"]) + bytes([rng.randrange(256)]) * rng.randrange(2)
                    for _ in range(n)]
        scores = [rng.choice([0.0, -0.0, 1.0, 2.5, -3.0, float("inf"), float("-inf")]) for _ in range(n)]
        for desc in (False, True):
            for needed in (n, rng.randrange(0, n + 1)):
                expected = [e for _, e in sorted(zip(scores, elements, strict=True), reverse=desc)][:needed]
                assert _by_score(scores, elements, desc, needed)[:needed] == expected
