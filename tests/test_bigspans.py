"""Commands that cut a big span out of a value, against real Redis: ZPOP*/ZMPOP with a count and
ZREMRANGEBY* (a zset's sublists dropped whole, its dict rebuilt, the reply written from the
chunks: ``zsets.cut_sublists``, ``dumpling.bigops``), LTRIM and LPOP/RPOP with a count (elements
popped off the packed list: ``ElementList.pop_many``), SPOP with a count (one sample drawn:
``bigops.sample_prefix``).  Replies byte for byte (SPOP's random ones by what they must hold),
the values afterwards, OBJECT ENCODING, keyspace notifications, and a ZSCAN/SSCAN started before
the cut continuing after it.  2,000-element values: every span here takes the big-span paths."""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers import Pair, ServerProcess, parse_reply, same_keyspace_events

N = 2000


def _zfill(p: Pair, key: str = "z", n: int = N) -> None:
    args: list[Any] = ["ZADD", key]
    for i in range(n):
        score = (i * 7919) % n // 3
        args += [f"{score}.5" if i % 7 == 0 else score, b"m:%d" % i]  # ties: members decide
    p.same(*args)


def _zsame(p: Pair, key: str = "z") -> None:
    p.same("ZCARD", key)
    p.same("ZRANGE", key, 0, -1, "WITHSCORES")
    p.same("ZRANK", key, "m:1999")
    p.same("ZRANGE", key, 100, 110)  # the positional index after the cut
    p.same("ZSCORE", key, "m:14")
    p.same("OBJECT", "ENCODING", key)


@pytest.mark.parametrize("span", [(0, 1499), (1, 1998), (700, 1999), (999, 1000), (0, 1999), (40, 1000)])
def test_zremrangebyrank_spans(pairs: Pair, span: tuple[int, int]) -> None:
    _zfill(pairs)
    pairs.same("ZREMRANGEBYRANK", "z", *span)
    _zsame(pairs)
    if span != (0, 1999):
        pairs.same("ZADD", "z", 5, "new")  # still a working sorted set after the cut
        pairs.same("ZREMRANGEBYRANK", "z", 3, 40)
        _zsame(pairs)
    pairs.same("EXISTS", "z")


def test_zremrangebyscore_and_lex_spans(pairs: Pair) -> None:
    _zfill(pairs)
    pairs.same("ZREMRANGEBYSCORE", "z", "(100", "400.5")
    _zsame(pairs)
    pairs.same("ZREMRANGEBYSCORE", "z", "-inf", 50)
    _zsame(pairs)
    args: list[Any] = ["ZADD", "lex"]
    for i in range(N):
        args += [0, b"k:%05d" % i]
    pairs.same(*args)
    pairs.same("ZREMRANGEBYLEX", "lex", "[k:00100", "(k:01900")
    _zsame(pairs, "lex")


@pytest.mark.parametrize("count", [1500, 1999, 2000, 5000, 40, 33])
def test_zpop_counts(pairs: Pair, count: int) -> None:
    _zfill(pairs)
    pairs.same("ZPOPMIN", "z", count)
    _zsame(pairs)
    _zfill(pairs, "y")
    pairs.same("ZPOPMAX", "y", count)
    _zsame(pairs, "y")
    _zfill(pairs, "x")
    pairs.same("ZMPOP", 2, "nokey", "x", "MAX", "COUNT", count)
    _zsame(pairs, "x")
    _zfill(pairs, "w")
    pairs.same("BZPOPMIN", "w", 0)
    pairs.same("BZMPOP", 0, 1, "w", "MIN", "COUNT", count)
    _zsame(pairs, "w")


def test_small_zsets_keep_their_listpack(pairs: Pair) -> None:
    _zfill(pairs, "z", 100)
    pairs.same("OBJECT", "ENCODING", "z")
    pairs.same("ZPOPMIN", "z", 60)
    pairs.same("ZREMRANGEBYRANK", "z", 5, 20)
    _zsame(pairs)


def test_zscan_goes_on_across_a_cut(pair: Pair) -> None:
    _zfill(pair)
    ours = pair.ours.call("ZSCAN", "z", 0, "COUNT", 100)
    cursor, first = parse_reply(ours)  # type: ignore[misc]
    pair.same("ZREMRANGEBYRANK", "z", 0, 999)
    kept = set(parse_reply(pair.ours.call("ZRANGE", "z", 0, -1))[:])  # type: ignore[index]
    seen = set(first[::2])
    while cursor != b"0":
        cursor, batch = parse_reply(pair.ours.call("ZSCAN", "z", cursor, "COUNT", 100))  # type: ignore[misc]
        seen.update(batch[::2])
    assert kept <= seen  # every member present throughout is returned
    _similar_memory(pair, "z")  # sized for what is left


def _similar_memory(p: Pair, key: str) -> None:
    ours, theirs = (int(reply[1:-2]) for reply in p.both("MEMORY", "USAGE", key))
    assert theirs / 2 < ours < theirs * 2, (ours, theirs)


def test_zset_span_notifications(pair: Pair, dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    _zfill(pair)
    with same_keyspace_events(pair, dumpling_server, redis_server):
        pair.same("ZREMRANGEBYRANK", "z", 0, 999)
        pair.same("ZPOPMAX", "z", 500)
        pair.same("ZPOPMIN", "z", 5000)  # emptied: zpopmin, then del


def _lfill(p: Pair, n: int = 5 * N) -> None:
    p.same("RPUSH", "l", *(b"e:%d" % i if i % 5 else b"%d" % (i * 31) for i in range(n)))


# OBJECT ENCODING after the trim and after two pushes, as Redis 7.4.1 answers (7.0 never turns a
# quicklist back into a listpack)
LTRIM_ENCODING_74 = {(0, 4999): b"quicklist", (5000, -1): b"quicklist", (100, 9800): b"quicklist",
                     (9000, 9100): b"listpack", (1, 2): b"listpack", (-300, -1): b"listpack"}


@pytest.mark.parametrize("span", list(LTRIM_ENCODING_74))
def test_ltrim_spans(pairs: Pair, span: tuple[int, int]) -> None:
    _lfill(pairs)
    pairs.same("OBJECT", "ENCODING", "l")
    pairs.same("LTRIM", "l", *span)
    pairs.same("LRANGE", "l", 0, -1)
    encoding = b"$%d\r\n%s\r\n" % (len(LTRIM_ENCODING_74[span]), LTRIM_ENCODING_74[span])
    assert pairs.ours.call("OBJECT", "ENCODING", "l") == encoding
    pairs.same("LPUSH", "l", "x" * 100)  # the node bookkeeping still matches Redis's
    pairs.same("RPUSH", "l", "y")
    assert pairs.ours.call("OBJECT", "ENCODING", "l") == encoding
    pairs.same("LINDEX", "l", 1)
    pairs.same("LRANGE", "l", 0, 3)
    if LTRIM_ENCODING_74[span] == b"quicklist":  # both servers' nodes: sized alike
        _similar_memory(pairs, "l")


@pytest.mark.parametrize("count", [6000, 9999, 300])
def test_list_pops_with_counts(pairs: Pair, count: int) -> None:
    _lfill(pairs)
    pairs.same("LPOP", "l", count)
    pairs.same("RPOP", "l", count // 3)
    pairs.same("LRANGE", "l", 0, -1)
    pairs.same("OBJECT", "ENCODING", "l")
    pairs.same("LMPOP", 1, "l", "RIGHT", "COUNT", count)
    pairs.same("EXISTS", "l")


def test_list_span_notifications(pair: Pair, dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    _lfill(pair)
    with same_keyspace_events(pair, dumpling_server, redis_server):
        pair.same("LTRIM", "l", 0, 4999)
        pair.same("RPOP", "l", 3000)
        pair.same("LTRIM", "l", 5000, -1)  # emptied: ltrim, then del


def _members(reply: bytes) -> list[bytes]:
    got = parse_reply(reply)
    assert isinstance(got, list)
    return got


# OBJECT ENCODING after SPOP and after one SADD, as Redis 7.4.1 answers (7.0 has no listpack sets)
SPOP_ENCODING_74 = {
    ("str", 1000): (b"hashtable", b"hashtable"), ("str", 1990): (b"listpack", b"listpack"),
    ("str", 1900): (b"listpack", b"listpack"), ("int", 700): (b"intset", b"hashtable"),
    ("int", 1995): (b"intset", b"listpack"), ("str", 1667): (b"hashtable", b"hashtable"),
    ("str", 1666): (b"hashtable", b"hashtable"),
}


def _encoding(p: Pair, key: str) -> bytes:
    reply = parse_reply(p.ours.call("OBJECT", "ENCODING", key))
    assert isinstance(reply, bytes)
    return reply


@pytest.mark.parametrize(("kind", "count"), list(SPOP_ENCODING_74))
def test_spop_counts(pairs: Pair, kind: str, count: int) -> None:
    members = [b"member:%d" % i if kind == "str" else b"%d" % (i * 3) for i in range(N)]
    pairs.same("CONFIG", "SET", "set-max-intset-entries", 4096)  # an intset of 2,000 too
    try:
        pairs.same("SADD", "s", *members)
        pairs.same("OBJECT", "ENCODING", "s")
        ours, theirs = pairs.both("SPOP", "s", count)
        assert ours[:1] == theirs[:1] and len(_members(ours)) == len(_members(theirs)) == count
        popped = _members(ours)
        assert len(set(popped)) == count and set(popped) <= set(members)
        left = set(_members(pairs.ours.call("SMEMBERS", "s")))
        assert left == set(members) - set(popped)
        pairs.same("SCARD", "s")
        after_pop, after_add = SPOP_ENCODING_74[kind, count]
        assert _encoding(pairs, "s") == after_pop  # strategy 3 rebuilds a small remainder as Redis does
        assert pairs.ours.call("SRANDMEMBER", "s")[1:] != b"-1\r\n"
        pairs.same("SADD", "s", "again")  # a working set afterwards
        pairs.same("SCARD", "s")
        assert _encoding(pairs, "s") == after_add
        if after_add == b"hashtable":
            _similar_memory(pairs, "s")
    finally:
        pairs.both("CONFIG", "SET", "set-max-intset-entries", 512)


def test_spop_samples_differ_and_cover_the_set(pair: Pair) -> None:
    ours = pair.ours  # dumpling's draws alone: Redis's are its own
    ours.call("SADD", "s", *(b"m%d" % i for i in range(N)))
    first = set(_members(ours.call("SPOP", "s", 200)))
    ours.call("SADD", "s", *first)
    second = set(_members(ours.call("SPOP", "s", 200)))
    assert first != second  # random, not the same region of the table twice
    ours.call("SADD", "s", *second)
    hits: set[bytes] = set()
    for _ in range(40):
        drawn = _members(ours.call("SPOP", "s", 500))
        hits.update(drawn)
        ours.call("SADD", "s", *drawn)
    assert len(hits) > N * 0.95  # 40 draws of a quarter miss a given member with p ~ 1e-5


def test_sscan_goes_on_across_spop(pair: Pair) -> None:
    members = [b"member:%d" % i for i in range(N)]
    pair.same("SADD", "s", *members)
    cursor, first = parse_reply(pair.ours.call("SSCAN", "s", 0, "COUNT", 100))  # type: ignore[misc]
    popped = set(_members(pair.ours.call("SPOP", "s", 1500)))
    seen = set(first)
    while cursor != b"0":
        cursor, batch = parse_reply(pair.ours.call("SSCAN", "s", cursor, "COUNT", 100))  # type: ignore[misc]
        seen.update(batch)
    assert set(members) - popped <= seen
    assert not (seen - set(first)) & popped  # nothing popped comes back after the pop
    pair.ours.call("SADD", "s", *popped)  # popped members added again are found once each
    cursor, total = b"0", []
    while True:
        cursor, batch = parse_reply(pair.ours.call("SSCAN", "s", cursor, "COUNT", 100))  # type: ignore[misc]
        total += batch
        if cursor == b"0":
            break
    assert len(total) == len(set(total)) == N


def test_spop_notifications(pair: Pair, dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    pair.same("SADD", "s", *(b"member:%d" % i for i in range(N)))
    with same_keyspace_events(pair, dumpling_server, redis_server):
        pair.both("SPOP", "s", 1000)
        pair.both("SPOP", "s", 999)
        pair.both("SPOP", "s", 5)  # emptied: the whole set, then del


@pytest.mark.parametrize("args", [(0, -1), (5, 1500, "REV"), ("(100", 600, "BYSCORE"), (600, "-inf", "BYSCORE", "REV"),
                                  ("-inf", "+inf", "BYSCORE", "LIMIT", 10, 50), (0, 100), (3, 3)])
def test_zrangestore_builds_the_same_set(pairs: Pair, args: tuple[Any, ...]) -> None:
    _zfill(pairs)
    pairs.same("ZADD", "z", "-0", "neg-zero", 0, "zero", 1, "x" * 80)  # a -0 score and a long member
    pairs.same("ZRANGESTORE", "out", "z", *args)
    _zsame(pairs, "out")
    pairs.same("ZSCORE", "out", "neg-zero")
    pairs.same("ZADD", "out", 7, "later")
    _zsame(pairs, "out")


def test_zrangestore_converts_where_redis_does(pair: Pair) -> None:
    pair.same("ZADD", "z", "-0", "a", "-0", "b", 0, "c", 1, "x" * 70, "-0", "y", 2, "d")
    for stop in (1, 3, 5):
        pair.same("ZRANGESTORE", "out", "z", 0, stop)  # rank: the hint decides the start encoding
        _zsame(pair, "out")
        pair.same("ZRANGE", "out", 0, -1, "WITHSCORES")
    pair.same("ZRANGESTORE", "out", "z", "-inf", "+inf", "BYSCORE")  # no hint: converts at the long one
    _zsame(pair, "out")
    pair.same("CONFIG", "SET", "zset-max-listpack-entries", 2)
    try:
        pair.same("ZRANGESTORE", "out", "z", "-inf", "+inf", "BYSCORE")  # converts at the third
        _zsame(pair, "out")
        pair.same("ZRANGESTORE", "out", "z", "(0", "+inf", "BYSCORE", "LIMIT", 0, 2)
        _zsame(pair, "out")
    finally:
        pair.same("CONFIG", "SET", "zset-max-listpack-entries", 128)
