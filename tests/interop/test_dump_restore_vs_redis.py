"""DUMP/RESTORE between a live dumpling and the real redis-server 7.0.15, both directions, over the wire.

The same command history builds every type and encoding Redis 7.0 writes on both
servers; then

* real DUMP -> our RESTORE: both servers read back the same value (read with real
  commands), the same TTL and OBJECT IDLETIME/FREQ, and the encoding Redis 7.2+
  would report (7.0 has no listpack lists or sets; everything else must match 7.0);
* our DUMP (``dump-rdb-version`` 9 and 10) -> real RESTORE: Redis reads back our value
  and gives it the encoding it gives its own copy;
* our DUMP bytes == Redis's DUMP bytes wherever Redis is deterministic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import pytest

from tests.servers import Pair, RawConnection, parse_reply

Call = Callable[..., object]
RNG = random.Random(20240607)


def _corpus_commands() -> list[tuple[object, ...]]:
    rng = random.Random(1234)
    cmds: list[tuple[object, ...]] = []
    strings = {
        "s_empty": b"",
        "s_bar": b"bar",
        "s_int8": b"-100",
        "s_int16": b"-4096",
        "s_int32": b"100000",
        "s_int64": b"9223372036854775807",
        "s_int64_min": b"-9223372036854775808",
        "s_notint": b"-0",
        "s_leading_zero": b"007",
        "s_float": b"3.14",
        "s_lzf": b"a" * 30,
        "s_embstr": b"e" * 44,
        "s_raw": b"r" * 45,
        "s_binary": bytes(range(256)),
        "s_random": rng.randbytes(3000),
        "s_big_lzf": b"abcdefgh" * 20000,
    }
    cmds += [("SET", k, v) for k, v in strings.items()]
    cmds += [("SET", "s_appended", "x"), ("APPEND", "s_appended", b"yz" * 30)]
    # lists
    cmds += [
        ("RPUSH", "l_one", "x"),
        ("RPUSH", "l_small", "a", "1", "", "-5", b"x" * 100),
        ("RPUSH", "l_ints", *[b"%d" % v for v in (0, 127, 128, -4096, 4095, 32767, -32769, 2**23, 2**31, -(2**63))]),
        ("RPUSH", "l_big_elements", b"x" * 9000, "y", rng.randbytes(20000), "z"),
        ("RPUSH", "l_many", *[b"item:%d" % i for i in range(5000)]),
        ("RPUSH", "l_binary", *[rng.randbytes(rng.randrange(0, 300)) for _ in range(200)]),
        ("LPUSH", "l_lpush", *[b"%d" % i for i in range(3000)]),
    ]
    # sets: intsets of every width, small and big string sets
    cmds += [
        ("SADD", "set_int16", 1, 2, 3, -7),
        ("SADD", "set_int32", 1, 70000, -5),
        ("SADD", "set_int64", 1, 2**40, -(2**62)),
        ("SADD", "set_single", "a"),
        ("SADD", "set_mixed", "1", "a"),
        ("SADD", "set_strings", "a", "b", b"\x00\xff", ""),
        ("SADD", "set_long_member", "a", b"m" * 100),
        ("SADD", "set_big_ints", *range(600)),
        ("SADD", "set_big", *[b"member:%d" % i for i in range(1000)]),
    ]
    # sorted sets: int and float scores, +-inf, binary members, listpack and skiplist
    cmds += [
        ("ZADD", "z_small", 1, "a", 2.5, "b", "inf", "c", "-inf", "d", 0.1, "e", -2, "f", 1e300, b"\xff", 0, ""),
        ("ZADD", "z_ints", *[x for i, v in enumerate((0, 127, 128, -4096, 2**31, 2**40, -(2**52)))
                             for x in (v, b"m%d" % i)]),
        ("ZADD", "z_big", *[x for i in range(300) for x in (repr(i / 3), b"m%d" % i)]),
        ("ZADD", "z_long_member", 1.5, b"L" * 100, -1, "s"),
        ("ZADD", "z_ties", 1, "b", 1, "a", 1, "c"),
        ("ZADD", "z_inf_skiplist", *[x for i in range(200) for x in ("inf" if i % 2 else "-inf", b"m%d" % i)]),
    ]
    # hashes
    cmds += [
        ("HSET", "h_small", "f", "v", "n", "1", "e", ""),
        ("HSET", "h_ints", *[x for v in (1, 127, 4096, 70000, 2**40) for x in (b"%d" % v, b"%d" % -v)]),
        ("HSET", "h_big", *[x for i in range(600) for x in (b"field:%d" % i, b"value:%d" % i)]),
        ("HSET", "h_long_value", "a", "1", "b", b"x" * 100),
        ("HSET", "h_binary", b"\x00", b"\xff", "k", rng.randbytes(40)),
    ]
    # streams: plain, many nodes, consumer groups with PEL, deletions, empty, XSETID
    cmds += [
        ("XADD", "st_basic", "5-0", "a", "1", "b", "2"),
        ("XADD", "st_basic", "5-1", "a", "3", "b", "4"),
        ("XADD", "st_basic", "6-0", "c", "x"),
        ("XADD", "st_basic", "7-0", "dup", "1", "dup", "2"),
    ]
    cmds += [("XADD", "st_many", b"%d-%d" % (1000 + i // 3, i % 3), "f", i, "g", b"v" * (i % 50)) for i in range(350)]
    cmds += [("XADD", "st_groups", b"%d-0" % (i + 1), "k", i) for i in range(20)]
    cmds += [
        ("XGROUP", "CREATE", "st_groups", "g1", "0"),
        ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 3, "STREAMS", "st_groups", ">"),
        ("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 2, "STREAMS", "st_groups", ">"),
        ("XACK", "st_groups", "g1", "2-0"),
        ("XGROUP", "CREATE", "st_groups", "g2", "$"),
        ("XGROUP", "CREATE", "st_groups", "g3", "10-0", "ENTRIESREAD", 10),
        ("XREADGROUP", "GROUP", "g3", "carol", "COUNT", 1, "STREAMS", "st_groups", ">"),
    ]
    cmds += [("XADD", "st_deleted", b"%d-0" % (i + 1), "k", i) for i in range(30)]
    cmds += [
        ("XDEL", "st_deleted", "3-0", "30-0"),
        ("XTRIM", "st_deleted", "MAXLEN", 20),
        ("XGROUP", "CREATE", "st_empty", "g", "$", "MKSTREAM"),
        ("XADD", "st_setid", "1-1", "a", "1"),
        ("XSETID", "st_setid", "9-9", "ENTRIESADDED", 50, "MAXDELETEDID", "5-5"),
    ]
    return cmds


CORPUS = _corpus_commands()
KEYS = sorted({str(cmd[1]) for cmd in CORPUS if cmd[0] not in ("XGROUP", "XREADGROUP")} | {"st_empty"})

# Redis 7.0 has no listpack lists or sets; dumpling reports what 7.2+ reports.
ENCODING_72 = {
    "l_one": "listpack", "l_small": "listpack", "l_ints": "listpack",
    "set_single": "listpack", "set_mixed": "listpack", "set_strings": "listpack",
}  # fmt: skip
# DUMPs that depend on history neither server's value keeps (hashtable order, XDEL
# tombstones, LPUSH node cuts) or on an incompressible LZF hash table.
NOT_DETERMINISTIC = {"set_big", "set_big_ints", "set_strings", "set_mixed", "set_single", "set_long_member",
                     "h_big", "h_long_value", "l_lpush", "st_groups"}


def _wire(arg: object) -> bytes | str | int:
    """Command arguments as RawConnection takes them (floats as Python's repr, which both servers parse)."""
    if isinstance(arg, float):
        return repr(arg)
    assert isinstance(arg, (bytes, str, int))
    return arg


def build(conn: RawConnection) -> None:
    for cmd in CORPUS:
        reply = conn.call(*map(_wire, cmd))
        assert not reply.startswith(b"-"), (cmd[:3], reply)


def caller(conn: RawConnection) -> Call:
    def call(*args: object) -> object:
        return parse_reply(conn.call(*map(_wire, args)))

    return call


def _flat_map(items: object) -> dict[bytes, object]:
    assert isinstance(items, list)
    return dict(zip(items[::2], items[1::2], strict=True))


def _stream_view(call: Call, key: str) -> object:
    info = _flat_map(call("XINFO", "STREAM", key, "FULL", "COUNT", 0))
    groups = []
    for g in info[b"groups"]:  # type: ignore[union-attr]
        group = _flat_map(g)
        consumers = []
        for c in group[b"consumers"]:  # type: ignore[union-attr]
            consumer = _flat_map(c)
            consumers.append([consumer[k] for k in (b"name", b"seen-time", b"pel-count", b"pending")])
        groups.append([group[k] for k in (b"name", b"last-delivered-id", b"entries-read", b"lag", b"pel-count",
                                          b"pending")] + [consumers])
    fields = (b"length", b"last-generated-id", b"max-deleted-entry-id", b"entries-added", b"recorded-first-entry-id",
              b"entries")
    return [info[k] for k in fields] + [groups]


def view(call: Call, key: str) -> object:
    """The value at ``key`` as the server's own read commands show it."""
    kind = call("TYPE", key)
    if kind == b"string":
        return call("GET", key)
    if kind == b"list":
        return call("LRANGE", key, 0, -1)
    if kind == b"set":
        return sorted(call("SMEMBERS", key))  # type: ignore[type-var]
    if kind == b"zset":
        # Scores as numbers: Redis 7.0 (the oracle) prints %.17g, dumpling 7.4's shortest form
        # (tests/test_fpconv.py holds 7.4's texts); members and order compare as bytes.
        flat = call("ZRANGE", key, 0, -1, "WITHSCORES")
        assert isinstance(flat, list)
        return [item if i % 2 == 0 else float(item) for i, item in enumerate(flat)]
    if kind == b"hash":
        return sorted(_flat_map(call("HGETALL", key)).items())
    if kind == b"stream":
        return _stream_view(call, key)
    raise AssertionError(f"{key}: unexpected type {kind!r}")


@pytest.fixture
def built(pair: Pair) -> Iterator[Pair]:
    """Both servers hold the corpus, built by the same commands."""
    build(pair.ours)
    build(pair.theirs)
    yield pair


def test_corpus_has_every_type_redis_70_dumps(built: Pair) -> None:
    types = {built.theirs.call("DUMP", key).split(b"\r\n", 1)[1][0] for key in KEYS}
    assert types == {0, 2, 4, 5, 11, 16, 17, 18, 19}


def test_real_dump_restores_on_dumpling(built: Pair) -> None:
    ours, theirs = caller(built.ours), caller(built.theirs)
    for key in KEYS:
        payload = theirs("DUMP", key)
        assert ours("RESTORE", "copy:" + key, 0, payload) == b"OK", key
        assert view(ours, "copy:" + key) == view(theirs, key), key
        assert ours("PTTL", "copy:" + key) == -1
        expected = ENCODING_72.get(key) or theirs("OBJECT", "ENCODING", key).decode()  # type: ignore[union-attr]
        assert ours("OBJECT", "ENCODING", "copy:" + key) == expected.encode(), key


def test_real_dump_restores_on_dumpling_with_sanitization(built: Pair) -> None:
    ours, theirs = caller(built.ours), caller(built.theirs)
    ours("CONFIG", "SET", "sanitize-dump-payload", "yes")
    try:
        for key in KEYS:
            assert ours("RESTORE", "copy:" + key, 0, theirs("DUMP", key)) == b"OK", key
            assert view(ours, "copy:" + key) == view(theirs, key), key
    finally:
        ours("CONFIG", "SET", "sanitize-dump-payload", "no")


@pytest.mark.parametrize("version", [9, 10])
def test_our_dump_restores_on_real_redis(built: Pair, version: int) -> None:
    ours, theirs = caller(built.ours), caller(built.theirs)
    ours("CONFIG", "SET", "dump-rdb-version", version)
    try:
        for key in KEYS:
            payload = ours("DUMP", key)
            assert isinstance(payload, bytes)
            footer = payload[-10]
            # streams whose v2 metadata (entries-added, max-deleted-id, ...) type 15 cannot hold are written as 10
            assert footer == version or (key.startswith("st_") and footer == 10), key
            assert theirs("RESTORE", "copy:" + key, 0, payload) == b"OK", key
            assert view(theirs, "copy:" + key) == view(ours, key), key
            # Redis gives our payload the encoding it gives its own copy of the value.
            assert theirs("OBJECT", "ENCODING", "copy:" + key) == theirs("OBJECT", "ENCODING", key), key
    finally:
        ours("CONFIG", "SET", "dump-rdb-version", 10)


def test_our_dump_bytes_equal_redis_where_deterministic(built: Pair) -> None:
    for key in KEYS:
        if key in NOT_DETERMINISTIC:
            continue
        assert built.ours.call("DUMP", key) == built.theirs.call("DUMP", key), key


def test_dump_without_rdbcompression_matches_redis(built: Pair) -> None:
    built.same("CONFIG", "SET", "rdbcompression", "no")
    try:
        for key in ("s_lzf", "s_big_lzf", "l_many", "z_big", "h_small", "st_many"):
            built.same("DUMP", key)
    finally:
        built.same("CONFIG", "SET", "rdbcompression", "yes")


def test_dump_of_a_stream_with_consumer_active_times_for_7_0_is_type_19(pair: Pair) -> None:
    """A consumer that never read has an active time (-1) only RDB 11 stores.  Redis 7.0
    cannot hold it and Redis 7.2+ derives it from the seen time when it loads type 19, so
    DUMP for RDB 10 writes type 19 (as Redis does), which 7.0 restores."""
    call = caller(pair.ours)
    call("XADD", "s", "1-1", "f", "v")
    call("XGROUP", "CREATE", "s", "g", "0")
    call("XGROUP", "CREATECONSUMER", "s", "g", "idle")
    payload = call("DUMP", "s")
    assert isinstance(payload, bytes) and payload[0] == 19 and payload[-10] == 10
    assert pair.theirs.call("RESTORE", "s", 0, payload) == b"+OK\r\n"
    assert pair.theirs.call("XINFO", "GROUPS", "s") == pair.ours.call("XINFO", "GROUPS", "s")


# ----------------------------------------------------------------------------- TTL and LRU/LFU metadata


def test_ttl_and_absttl_from_real_payloads(built: Pair) -> None:
    ours, theirs = caller(built.ours), caller(built.theirs)
    for key in ("s_bar", "l_small", "z_big", "h_big", "st_groups", "set_int64"):
        payload = theirs("DUMP", key)
        for call in (ours, theirs):
            assert call("RESTORE", "ttl:" + key, 100000, payload) == b"OK"
            assert call("RESTORE", "abs:" + key, 4102444800000, payload, "ABSTTL") == b"OK"
        a, b = ours("PTTL", "ttl:" + key), theirs("PTTL", "ttl:" + key)
        assert 99000 < a <= 100000 and 99000 < b <= 100000  # type: ignore[operator]
        built.same("PEXPIRETIME", "abs:" + key)


def _with_policy(pair: Pair, policy: str) -> None:
    pair.same("CONFIG", "SET", "maxmemory-policy", policy)


LRU_CLOCK_MAX = (1 << 24) - 1  # Redis's LRU clock, in seconds, wraps past this


@pytest.mark.parametrize("idle", [0, 1, 1000, 16777215, 16777216, 20000000, 9223372036854775807])
def test_idletime_from_real_payload(built: Pair, idle: int) -> None:
    ours, theirs = caller(built.ours), caller(built.theirs)
    _with_policy(built, "allkeys-lru")
    try:
        for key in ("s_raw", "h_small", "st_basic"):
            payload = theirs("DUMP", key)
            for call in (ours, theirs):
                assert call("RESTORE", "idle", 0, payload, "IDLETIME", idle, "REPLACE") == b"OK"
            a, b = ours("OBJECT", "IDLETIME", "idle"), theirs("OBJECT", "IDLETIME", "idle")
            # One LRU tick apart at most, on Redis's clock circle: estimateObjectIdleTime reads a
            # field one tick ahead of the clock (the RESTORE's tick passed on one server only) as
            # LRU_CLOCK_MAX - 1 ticks, so 16777214 and 0 are one tick apart.
            apart = abs(a - b) % LRU_CLOCK_MAX  # type: ignore[operator]
            assert min(apart, LRU_CLOCK_MAX - apart) <= 1, (key, idle, a, b)
            built.same("OBJECT", "FREQ", "idle")  # the LFU-not-selected error
    finally:
        _with_policy(built, "noeviction")


@pytest.mark.parametrize("policy", ["allkeys-lfu", "volatile-lfu"])
def test_freq_from_real_payload(built: Pair, policy: str) -> None:
    theirs = caller(built.theirs)
    _with_policy(built, policy)
    try:
        for key in ("s_raw", "z_small", "l_many"):
            payload = theirs("DUMP", key)
            for freq in (0, 1, 5, 100, 255):
                built.same("RESTORE", "freq", 0, payload, "FREQ", freq, "REPLACE")
                built.same("OBJECT", "FREQ", "freq")
            built.same("OBJECT", "IDLETIME", "freq")  # the LFU-selected error
            # IDLETIME is ignored under LFU: the new key gets the initial counter
            built.same("RESTORE", "freq", 0, payload, "IDLETIME", 100, "REPLACE")
            built.same("OBJECT", "FREQ", "freq")
    finally:
        _with_policy(built, "noeviction")


def test_freq_is_ignored_under_lru(built: Pair) -> None:
    ours, theirs = caller(built.ours), caller(built.theirs)
    _with_policy(built, "allkeys-lru")
    try:
        payload = theirs("DUMP", "h_small")
        built.same("RESTORE", "f", 0, payload, "FREQ", 100)
        assert ours("OBJECT", "IDLETIME", "f") == theirs("OBJECT", "IDLETIME", "f") == 0
    finally:
        _with_policy(built, "noeviction")


# ----------------------------------------------------------------------------- float and score corner cases


@pytest.mark.parametrize("threshold", [0, 1, 128])
def test_zset_scores_survive_both_ways(pair: Pair, threshold: int) -> None:
    """Scores with every listpack/skiplist/double representation, both encodings."""
    scores = [0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308, math.inf, -math.inf,
              2.0**52, 2.0**53 + 2, -(2.0**63), 2.0**63, 123456789.125, RNG.random()]
    args = [x for i, s in enumerate(scores) for x in (repr(s) if math.isfinite(s) else str(s), b"m%d" % i)]
    pair.same("CONFIG", "SET", "zset-max-listpack-entries", threshold)
    try:
        for conn in (pair.ours, pair.theirs):
            conn.call("ZADD", "z", *args)
        ours, theirs = caller(pair.ours), caller(pair.theirs)
        pair.same("OBJECT", "ENCODING", "z")
        for src, dst in ((ours, theirs), (theirs, ours)):
            assert dst("RESTORE", "copy", 0, src("DUMP", "z"), "REPLACE") == b"OK"
            assert view(dst, "copy") == view(src, "z")  # scores as numbers (7.0 and 7.4 print them apart)
        pair.same("OBJECT", "ENCODING", "copy")
        if threshold == 128:
            pair.same("DUMP", "z")  # listpack scores are written the way 7.0 writes them
    finally:
        pair.same("CONFIG", "SET", "zset-max-listpack-entries", 128)


def test_list_of_every_listpack_encoding_round_trips(pair: Pair) -> None:
    """dump.tcl's neighbour "List of various encodings": every integer and string width."""
    items = [b"1", b"-1", b"127", b"128", b"-4096", b"4095", b"32767", b"-32769", b"8388608", b"2147483648",
             b"-9223372036854775808", b"9223372036854775807", b"x" * 12, b"y" * 63, b"z" * 64, b"w" * 4095,
             b"v" * 4096, b"u" * 70000, b"", b"0", b"00", b"1.5"]
    for conn in (pair.ours, pair.theirs):
        conn.call("RPUSH", "l", *items)
    ours, theirs = caller(pair.ours), caller(pair.theirs)
    for src, dst in ((ours, theirs), (theirs, ours)):
        assert dst("RESTORE", "copy", 0, src("DUMP", "l"), "REPLACE") == b"OK"
        assert dst("LRANGE", "copy", 0, -1) == items
        for i in (0, 5, -1, -7):
            assert dst("LINDEX", "copy", i) == items[i]


def test_hash_of_every_listpack_encoding_round_trips_into_hashtable(pair: Pair) -> None:
    """hash.tcl "Hash ziplist of various encodings": restored into a target whose limits force hashtable."""
    fields = {b"a": b"1", b"b": b"-32769", b"c": b"2147483648", b"d": b"9223372036854775807", b"e": b"0",
              b"f": b"12", b"g": b"x" * 31, b"h": b"y" * 8191, b"i": b"z" * 65535}
    flat = [x for kv in fields.items() for x in kv]
    for conn in (pair.ours, pair.theirs):
        conn.call("HSET", "h", *flat)
    pair.same("OBJECT", "ENCODING", "h")
    ours, theirs = caller(pair.ours), caller(pair.theirs)
    pair.same("CONFIG", "SET", "hash-max-listpack-entries", 2)
    try:
        for src, dst in ((ours, theirs), (theirs, ours)):
            for sanitize in ("no", "yes"):
                dst("CONFIG", "SET", "sanitize-dump-payload", sanitize)
                assert dst("RESTORE", "copy", 0, src("DUMP", "h"), "REPLACE") == b"OK"
                assert sorted(_flat_map(dst("HGETALL", "copy")).items()) == sorted(fields.items())
        pair.same("OBJECT", "ENCODING", "copy")
    finally:
        pair.same("CONFIG", "SET", "hash-max-listpack-entries", 512)
        pair.same("CONFIG", "SET", "sanitize-dump-payload", "no")


@pytest.mark.parametrize("members", [
    [b"1", b"2", b"-3"],  # int16
    [b"1", b"70000", b"-5"],  # int32
    [b"1", b"1099511627776", b"-4611686018427387904"],  # int64
    [b"-9223372036854775808", b"9223372036854775807"],
    [b"%d" % i for i in range(512)],  # exactly the intset limit
], ids=["int16", "int32", "int64", "extremes", "limit"])
def test_intsets_of_every_width(pair: Pair, members: list[bytes]) -> None:
    for conn in (pair.ours, pair.theirs):
        conn.call("SADD", "s", *members)
    pair.same("OBJECT", "ENCODING", "s")
    pair.same("DUMP", "s")
    ours, theirs = caller(pair.ours), caller(pair.theirs)
    for src, dst in ((ours, theirs), (theirs, ours)):
        assert dst("RESTORE", "copy", 0, src("DUMP", "s"), "REPLACE") == b"OK"
    pair.same("OBJECT", "ENCODING", "copy")
    pair.same_unordered("SMEMBERS", "copy")


def test_big_string_both_ways(pair: Pair) -> None:
    value = RNG.randbytes(1 << 20) + b"z" * (1 << 20)
    ours, theirs = caller(pair.ours), caller(pair.theirs)
    for conn in (pair.ours, pair.theirs):
        conn.call("SET", "big", value)
    for src, dst in ((ours, theirs), (theirs, ours)):
        assert dst("RESTORE", "copy", 0, src("DUMP", "big"), "REPLACE") == b"OK"
        assert dst("GET", "copy") == value
    pair.same("OBJECT", "ENCODING", "copy")
    pair.same("STRLEN", "copy")
