"""HyperLogLog commands, differentially against a real redis-server: the same PFADDs
give byte-identical strings (GET and DUMP) and PFCOUNTs, sparse->dense promotion,
PFMERGE over mixed encodings, RESTORE of Redis's DUMP both ways, forged and corrupt
HLL strings, PFDEBUG, keyspace events and WATCH; plus the pure encoder's own checks.
"""

from __future__ import annotations

import random
import struct
import sys
import types
from typing import Any

import pytest

from dumpling import hyperloglog as hll
from tests.servers import Pair, RawConnection, parse_reply
from tests.test_commands_strings import EventStream, assert_same_events, events

__all__ = ["events"]  # the fixture, re-used from the string tests

Cmd = tuple[str | bytes | int, ...]


def _elements(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, 24)) if rng.random() < 0.2 else b"e%d" % rng.randrange(10**7)
            for _ in range(n)]


def _add_in_batches(pair: Pair, rng: random.Random, key: str, elements: list[bytes]) -> None:
    i = 0
    while i < len(elements):
        k = rng.randint(1, 40)
        pair.same("PFADD", key, *elements[i : i + k])
        i += k


def _same_value(pair: Pair, key: str) -> None:
    pair.same("GET", key)
    pair.same("DUMP", key)
    pair.same("PFDEBUG", "ENCODING", key)


# ----------------------------------------------------------------------------- pure functions


def test_murmurhash_and_pattern_match_known_values() -> None:
    # Register index and run length of Redis's hllPatLen for a few elements
    # (cross-checked against PFDEBUG GETREG of a real Redis in the tests below).
    assert hll.murmurhash64a(b"") == hll.murmurhash64a(b"", hll.SEED)
    for element in (b"", b"a", b"abcdefgh", b"abcdefghi", bytes(range(50))):
        index, run = hll.pattern_len(element)
        assert 0 <= index < hll.REGISTERS and 1 <= run <= hll.Q + 1


def test_dense_pack_round_trip_and_register_access() -> None:
    rng = random.Random(7)
    linear = bytes(rng.getrandbits(6) for _ in range(hll.REGISTERS))
    packed = hll.pack_dense(linear)
    assert len(packed) == hll.DENSE_BYTES
    assert hll.unpack_dense(packed) == linear
    value = bytearray(hll.MAGIC + bytes(12)) + packed
    for i in (0, 1, 2, 3, 4, 5, 1000, hll.REGISTERS - 2, hll.REGISTERS - 1):
        assert hll.dense_get(value, i) == linear[i]
        assert hll.dense_set(value, i, 63) == (linear[i] != 63)
        assert hll.dense_get(value, i) == 63
        if i + 1 < hll.REGISTERS:
            assert hll.dense_get(value, i + 1) == linear[i + 1]


def test_register_max_and_histogram() -> None:
    rng = random.Random(3)
    a = bytes(rng.getrandbits(6) for _ in range(hll.REGISTERS))
    b = bytes(rng.getrandbits(6) for _ in range(hll.REGISTERS))
    assert hll.max_linear(a, b) == bytes(max(x, y) for x, y in zip(a, b, strict=True))
    histogram = hll.histogram_of_linear(a)
    assert histogram == [a.count(v) for v in range(64)]


def test_dense_count_runs_no_python_loop_per_register() -> None:
    """The pure reference counts a dense HLL with whole-array operations: the Python lines it
    runs are counted (a per-register loop would run at least 16384), not timed."""
    rng = random.Random(5)
    value = bytearray(hll.MAGIC + bytes(12)) + hll.pack_dense(bytes(min(int(rng.expovariate(0.7)), 63)
                                                                     for _ in range(hll.REGISTERS)))
    lines = 0

    def tracer(frame: types.FrameType, event: str, arg: object) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return tracer

    sys.settrace(tracer)
    try:
        estimate = hll.count(value)
    finally:
        sys.settrace(None)
    assert estimate == hll.count(value) > 0
    assert 0 < lines < 2000


# ----------------------------------------------------------------------------- PFADD / PFCOUNT byte equality


@pytest.mark.parametrize("size", [1, 10, 200, 1000, 2500, 6000])
def test_random_pfadds_give_identical_bytes(pair: Pair, size: int) -> None:
    rng = random.Random(size)
    elements = _elements(rng, size)
    pair.same("PFADD", "h")
    _add_in_batches(pair, rng, "h", elements)
    _same_value(pair, "h")
    pair.same("PFCOUNT", "h")
    _same_value(pair, "h")  # the cached cardinality was written back
    pair.same("PFCOUNT", "h")
    _add_in_batches(pair, rng, "h", elements[: size // 2])  # nothing new: no change
    _same_value(pair, "h")
    if pair.ours.call("PFDEBUG", "ENCODING", "h") == b"+sparse\r\n":
        pair.same("PFDEBUG", "DECODE", "h")


def test_promotion_at_configured_sparse_limit(pair: Pair) -> None:
    rng = random.Random(11)
    try:
        for limit in ("100", "500", "0"):
            pair.same("CONFIG", "SET", "hll-sparse-max-bytes", limit)
            pair.same("DEL", "h")
            for element in _elements(rng, 120):
                pair.same("PFADD", "h", element)
                pair.same("PFDEBUG", "ENCODING", "h")
            _same_value(pair, "h")
            pair.same("PFCOUNT", "h")
    finally:
        pair.both("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
    pair.same("CONFIG", "GET", "hll-sparse-max-bytes")


def test_pfdebug_getreg_todense_and_errors(pairs: Pair) -> None:
    rng = random.Random(2)
    pairs.same("PFADD", "h", *_elements(rng, 30))
    pairs.same("PFDEBUG", "DECODE", "h")
    pairs.same("PFDEBUG", "ENCODING", "h")
    pairs.same("PFDEBUG", "GETREG", "h")
    pairs.same("PFDEBUG", "ENCODING", "h")
    _same_value(pairs, "h")
    pairs.same("PFDEBUG", "DECODE", "h")
    pairs.same("PFDEBUG", "TODENSE", "h")
    pairs.same("PFADD", "s", "x")
    pairs.same("PFDEBUG", "todense", "s")
    pairs.same("PFDEBUG", "TODENSE", "s")
    _same_value(pairs, "s")
    pairs.same("PFDEBUG", "nope", "s")
    pairs.same("PFDEBUG", "nope", "missing")
    pairs.same("PFDEBUG", "GETREG", "missing")
    pairs.same("SET", "str", "hello")
    pairs.same("PFDEBUG", "GETREG", "str")
    pairs.same("RPUSH", "list", "a")
    pairs.same("PFDEBUG", "GETREG", "list")
    pairs.same("PFDEBUG", "GETREG")
    pairs.same("PFSELFTEST", "x")


def test_pfcount_multi_and_pfmerge_mixed_encodings(pairs: Pair) -> None:
    rng = random.Random(4)
    pairs.same("PFADD", "small", *_elements(rng, 20))
    pairs.same("PFADD", "small2", *_elements(rng, 300))
    pairs.same("PFADD", "big", *_elements(rng, 4000))
    pairs.same("PFADD", "big2", *_elements(rng, 3000))
    for keys in (("small",), ("small", "small2"), ("small", "missing"), ("missing", "missing2"),
                 ("small", "big"), ("big", "big2", "small2"), ("small", "small")):
        pairs.same("PFCOUNT", *keys)
    for dest, sources in (("d1", ("small", "small2")), ("d2", ("small", "big")), ("d3", ()),
                          ("d4", ("missing",)), ("small2", ("small",)), ("big2", ("small",)),
                          ("small", ("big",)), ("d5", ("small2", "small2"))):
        pairs.same("PFMERGE", dest, *sources)
        _same_value(pairs, dest)
        pairs.same("PFCOUNT", dest)
    pairs.same("SET", "str", "x")
    pairs.same("PFMERGE", "d6", "small", "str")
    pairs.same("EXISTS", "d6")
    pairs.same("PFCOUNT", "small", "str")


def test_pfmerge_of_many_sparse_sets_stays_identical(pair: Pair) -> None:
    rng = random.Random(9)
    for round_ in range(6):
        keys = []
        for j in range(rng.randint(2, 6)):
            key = f"s{round_}-{j}"
            keys.append(key)
            pair.same("PFADD", key, *_elements(rng, rng.choice([5, 50, 150, 400])))
        pair.same("PFMERGE", f"dest{round_}", *keys)
        _same_value(pair, f"dest{round_}")
        pair.same("PFMERGE", keys[0], *keys[1:])
        _same_value(pair, keys[0])
        pair.same("PFCOUNT", *keys)


def test_restore_of_redis_dump_both_ways(pair: Pair) -> None:
    rng = random.Random(6)
    for n in (3, 500, 5000):
        key = f"h{n}"
        pair.theirs.call("PFADD", key, *_elements(rng, n))
        dump = parse_reply(pair.theirs.call("DUMP", key))
        assert isinstance(dump, bytes)
        assert pair.ours.call("RESTORE", key, "0", dump) == b"+OK\r\n"
        pair.same("GET", key)
        pair.same("PFCOUNT", key)
        pair.same("PFADD", key, "extra", "more")
        pair.same("PFCOUNT", key)
        back = parse_reply(pair.ours.call("DUMP", key))
        assert isinstance(back, bytes)
        assert pair.theirs.call("RESTORE", f"{key}-back", "0", back) == b"+OK\r\n"
        assert pair.theirs.call("GET", f"{key}-back") == pair.ours.call("GET", key)
        pair.same("DUMP", key)


# ----------------------------------------------------------------------------- forged and corrupt strings


def _header(encoding: int, card: bytes = bytes(8), unused: bytes = bytes(3)) -> bytes:
    return b"HYLL" + bytes([encoding]) + unused + card


def _dense(registers: bytes, card: bytes = b"\x00" * 7 + b"\x80") -> bytes:
    return _header(hll.DENSE, card) + bytes(hll.pack_dense(registers))


FORGED: list[bytes] = [
    b"",
    b"HYLL",
    b"HYLL" + bytes(11),
    b"HYLX" + bytes(12) + b"\x7f\xff",
    _header(2) + b"\x7f\xff",
    _header(hll.DENSE) + bytes(100),
    _header(hll.DENSE) + bytes(hll.DENSE_BYTES + 1),
    _header(hll.SPARSE),  # no opcodes at all
    _header(hll.SPARSE) + b"\x7f\xfe",  # one register short
    _header(hll.SPARSE) + b"\x7f\xff\x00",  # one register too many
    _header(hll.SPARSE) + b"\x7f",  # truncated XZERO (reads the terminating zero)
    _header(hll.SPARSE) + b"\x7f\xfb\x83",  # VAL run crossing the end
    _header(hll.SPARSE) + b"\x7f\xfb\x80\x80\x80\x80\x80",
    _header(hll.SPARSE) + b"\x3f" * 300,
    _header(hll.SPARSE) + b"\x00" * 40000,  # far too long to be valid
    _header(hll.SPARSE, card=b"\x2a" + bytes(7)) + b"\x7f\xff",  # a valid cache that lies
    _header(hll.SPARSE, unused=b"abc") + b"\x7f\xff",
    _header(hll.SPARSE) + b"\xfc" + b"\x7f\xfe",  # a register at 32
    _dense(bytes(hll.REGISTERS)),
    _dense(bytes([50]) * hll.REGISTERS),  # estimate beyond 2^63
    _dense(bytes([51]) * hll.REGISTERS),  # estimate divides by zero
    _dense(bytes([63]) * hll.REGISTERS),
    _dense(bytes(range(64)) * (hll.REGISTERS // 64)),
    _dense(bytes(hll.REGISTERS), card=b"\x01\x02\x03\x04\x05\x06\x07\x08"),
]


@pytest.mark.parametrize("forged", FORGED, ids=range(len(FORGED)))
def test_forged_hll_strings(pair: Pair, forged: bytes) -> None:
    commands: list[Cmd] = [
        ("PFCOUNT", "f"),
        ("GET", "f"),
        ("PFCOUNT", "f", "ok"),
        ("PFMERGE", "dst", "f"),
        ("GET", "dst"),
        ("PFMERGE", "f", "ok"),
        ("GET", "f"),
        ("PFDEBUG", "ENCODING", "f"),
        ("PFDEBUG", "DECODE", "f"),
        ("PFADD", "f", "a", "b", "c"),
        ("GET", "f"),
        ("PFCOUNT", "f"),
        ("PFDEBUG", "TODENSE", "f"),
        ("GET", "f"),
        ("PFADD", "f", *[b"x%d" % i for i in range(300)]),
        ("GET", "f"),
        ("PFCOUNT", "f"),
    ]
    pair.same("PFADD", "ok", "one", "two")
    pair.same("SET", "f", forged)
    for cmd in commands:
        pair.same(*cmd)


def test_wrong_types(pairs: Pair) -> None:
    pairs.same("RPUSH", "list", "a")
    pairs.same("SET", "int", "12345")
    for cmd in (("PFADD", "list", "a"), ("PFCOUNT", "list"), ("PFCOUNT", "list", "x"), ("PFMERGE", "list", "x"),
                ("PFMERGE", "x", "list"), ("PFADD", "int", "a"), ("PFCOUNT", "int"), ("PFADD",), ("PFCOUNT",),
                ("PFMERGE",)):
        pairs.same(*cmd)


# ----------------------------------------------------------------------------- events, WATCH, stats


def test_keyspace_events(pair: Pair, events: tuple[EventStream, EventStream]) -> None:
    assert_same_events(pair, events, [("PFADD", "h", "a"), ("PFADD", "h", "a"), ("PFADD", "h", "b"),
                                      ("PFADD", "e"), ("PFADD", "e")])
    assert_same_events(pair, events, [("PFCOUNT", "h"), ("PFCOUNT", "h"), ("PFCOUNT", "h", "e", "nokey")])
    assert_same_events(pair, events, [("PFMERGE", "m", "h", "e"), ("PFMERGE", "m"), ("PFMERGE", "n")])
    assert_same_events(pair, events, [("PFDEBUG", "TODENSE", "m"), ("PFDEBUG", "GETREG", "h")])


def test_pfcount_writing_its_cache_touches_watchers(dumpling_server, redis_server) -> None:  # type: ignore[no-untyped-def]
    for server in (dumpling_server, redis_server):
        with RawConnection(server.port) as conn:
            conn.call("FLUSHALL")
            conn.call("PFADD", "h", "a", "b")
            conn.call("WATCH", "h")
            assert conn.call("PFCOUNT", "h") == b":2\r\n"
            conn.call("MULTI")
            conn.call("PING")
            assert conn.call("EXEC") == b"*-1\r\n", server.name
            conn.call("WATCH", "h")
            assert conn.call("PFCOUNT", "h") == b":2\r\n"  # cached now: no write
            conn.call("MULTI")
            conn.call("PING")
            assert conn.call("EXEC") == b"*1\r\n+PONG\r\n", server.name


def test_pfadd_keeps_ttl_and_object_encoding(pair: Pair) -> None:
    pair.same("SET", "h", _header(hll.SPARSE) + b"\x7f\xff", "EX", "1000")
    pair.same("PFADD", "h", "x")
    pair.same("TTL", "h")
    pair.same("OBJECT", "ENCODING", "h")
    pair.same("PFADD", "new", "x")
    pair.same("OBJECT", "ENCODING", "new")
    pair.same("TYPE", "new")
    pair.same("STRLEN", "new")
    pair.same("APPEND", "new", "tail")
    pair.same("PFADD", "new", "y")
    pair.same("PFCOUNT", "new")


def test_changes_since_last_save_move_as_redis_counts_them(pair: Pair) -> None:
    """PFADD adds one change per register it raises (and one for a new key), PFCOUNT one when
    it writes its cache, PFMERGE one (INFO rdb_changes_since_last_save, what save points read)."""

    def dirty(conn: RawConnection) -> int:
        info = conn.call("INFO", "persistence").decode()
        return int(info.split("rdb_changes_since_last_save:")[1].split("\r\n")[0])

    many = [b"e%d" % i for i in range(3000)]  # enough to go dense on the way
    for cmd in [("PFADD", "h", "a", "b", "c", "d", "e", "f", "g"), ("PFADD", "h", "a", "b", "x"), ("PFADD", "h", "a"),
                ("PFADD", "empty"), ("PFADD", "empty"), ("PFCOUNT", "h"), ("PFCOUNT", "h"), ("PFADD", "big", *many),
                ("PFADD", "big", *many[:10], "new1", "new2"), ("PFCOUNT", "big"), ("PFMERGE", "m", "h", "big"),
                ("PFCOUNT", "h", "big"), ("PFDEBUG", "TODENSE", "h")]:
        before = dirty(pair.ours), dirty(pair.theirs)
        pair.same(*cmd)
        assert dirty(pair.ours) - before[0] == dirty(pair.theirs) - before[1], cmd[:3]


def test_selftest_passes(pair: Pair) -> None:
    assert pair.ours.call("PFSELFTEST") == b"+OK\r\n"


def test_pfadd_elements_of_every_tail_length(pair: Pair) -> None:
    elements = [bytes(range(n)) for n in range(0, 40)] + [struct.pack("<Q", n) for n in range(50)]
    pair.same("PFADD", "h", *elements)
    pair.same("PFDEBUG", "GETREG", "h")
    _same_value(pair, "h")


def test_indexed_sparse_edits_match_the_walk() -> None:
    """The opcode index used for many-register commands must edit exactly as
    Redis's walk does, on valid and on forged sparse bodies."""
    rng = random.Random(13)
    bodies = [b"\x7f\xff", b"\x7f", b"\x7f\xfe", b"\x7f\xff\x00", b"\x3f" * 300, b"\xfc\x7f\xfe",
              b"\x80\x84\x88\x7f\xfc", b"\x83\x83\x7f\xf7"]
    for body in bodies * 6:
        a = bytearray(_header(hll.SPARSE)) + body
        b = bytearray(a)
        opcodes = hll.SparseIndex(b)
        limit = rng.choice([40, 300, 3000])
        for _ in range(rng.choice([5, 50, 400])):
            if a[4] == hll.DENSE:
                break
            index = rng.randrange(hll.REGISTERS) if rng.random() < 0.7 else rng.randrange(40)
            count = rng.randint(1, 33)
            ra = hll.sparse_set(a, index, count, limit)
            rb = hll.sparse_set(b, index, count, limit, opcodes)
            assert (ra, a) == (rb, b)
            if b[4] == hll.SPARSE:
                assert opcodes.firsts == hll.SparseIndex(b).firsts


@pytest.mark.parametrize("seed", range(4))
def test_random_mixed_operations_under_various_sparse_limits(pair: Pair, seed: int) -> None:
    rng = random.Random(seed)
    limit = [0, 300, 3000, 20000][seed]
    keys = [f"h{i}" for i in range(4)]
    try:
        pair.same("CONFIG", "SET", "hll-sparse-max-bytes", str(limit))
        for _ in range(80):
            op = rng.random()
            key = rng.choice(keys)
            if op < 0.6:
                pair.same("PFADD", key, *[b"%d" % rng.randrange(10**6) for _ in range(rng.choice([1, 3, 10, 50, 200]))])
            elif op < 0.75:
                pair.same("PFMERGE", key, *rng.sample(keys, rng.randint(0, 3)))
            elif op < 0.9:
                pair.same("PFCOUNT", *rng.sample(keys, rng.randint(1, 3)))
            else:
                pair.same("GET", key)
        for key in keys:
            pair.same("GET", key)
    finally:
        pair.both("CONFIG", "SET", "hll-sparse-max-bytes", "3000")
