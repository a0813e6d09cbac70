"""Bitmap commands, differentially against a real redis-server (RESP2 and RESP3):
SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO, their keyspace
events and WATCH behaviour, and Hypothesis runs of random ranges and bitfield ops.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import examples
from tests.servers import Pair, RawConnection, ServerProcess
from tests.test_commands_strings import (
    EventStream,
    _dirty,
    _hits_misses,
    assert_same_events,
    events,
    make_non_string,
    run,
)

__all__ = ["events"]  # the fixture, re-used from the string tests

Cmd = tuple[str | bytes | int, ...]
PATTERNS = [b"", b"\x00", b"\xff", b"\xff\xf0\x00", b"\x00\x00\x00", b"\xff\xff\xff", b"foobar", b"\x0f\x00\xf0\x01",
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80", b"\xff" * 9 + b"\xfe"]


# ----------------------------------------------------------------------------- SETBIT / GETBIT


def test_setbit_getbit(pairs: Pair) -> None:
    run(
        pairs,
        ("SETBIT", "b", "7", "1"),
        ("GET", "b"),
        ("SETBIT", "b", "7", "1"),
        ("SETBIT", "b", "7", "0"),
        ("SETBIT", "b", "0", "1"),
        ("SETBIT", "b", "100", "1"),
        ("GET", "b"),
        ("STRLEN", "b"),
        ("GETBIT", "b", "0"),
        ("GETBIT", "b", "1"),
        ("GETBIT", "b", "100"),
        ("GETBIT", "b", "101"),
        ("GETBIT", "b", "100000"),
        ("GETBIT", "missing", "3"),
        ("SET", "n", "12"),
        ("GETBIT", "n", "2"),
        ("GETBIT", "n", "3"),
        ("SETBIT", "n", "7", "0"),
        ("GET", "n"),
        ("SET", "t", "a", "EX", "100"),
        ("SETBIT", "t", "1", "0"),
        ("TTL", "t"),
        ("GET", "t"),
    )


@pytest.mark.parametrize(
    "offset, value",
    [("-1", "1"), ("4294967296", "1"), ("x", "1"), ("1.5", "1"), ("1", "2"), ("1", "-1"), ("1", "x"), ("1", "01"),
     ("9223372036854775808", "1"), ("1", ""), ("", "1"), ("+1", "1")],
)
def test_setbit_errors(pairs: Pair, offset: str, value: str) -> None:
    run(pairs, ("SETBIT", "b", offset, value), ("EXISTS", "b"), ("GETBIT", "b", offset))


def test_bit_offsets_bounded_by_proto_max_bulk_len(pair: Pair) -> None:
    try:
        run(pair, ("CONFIG", "SET", "proto-max-bulk-len", str(1024 * 1024)))
        run(
            pair,
            ("SETBIT", "b", "8388608", "1"),
            ("GETBIT", "b", "8388608"),
            ("BITFIELD", "b", "SET", "u8", "8388608", "1"),
            ("BITFIELD", "b", "GET", "u8", "#1048576"),
            ("SETBIT", "b", "8388607", "1"),
            ("STRLEN", "b"),
            ("BITFIELD", "b", "SET", "u8", "8388607", "255"),
            ("STRLEN", "b"),
            ("BITCOUNT", "b"),
        )
    finally:
        run(pair, ("CONFIG", "SET", "proto-max-bulk-len", str(512 * 1024 * 1024)))


def test_bit_commands_on_wrong_type(pairs: Pair) -> None:
    make_non_string(pairs, "w")
    run(
        pairs,
        ("SETBIT", "w", "1", "1"),
        ("SETBIT", "w", "-1", "1"),
        ("GETBIT", "w", "1"),
        ("GETBIT", "w", "x"),
        ("BITCOUNT", "w"),
        ("BITPOS", "w", "1"),
        ("BITPOS", "w", "2"),
        ("BITOP", "AND", "d", "w"),
        ("SET", "s", "x"),
        ("BITOP", "OR", "d", "s", "w", "missing"),
        ("BITOP", "OR", "w", "s"),
        ("TYPE", "w"),
        ("BITFIELD", "w", "GET", "u8", "0"),
        ("BITFIELD", "w", "SET", "u8", "0", "1"),
        ("BITFIELD", "w", "GET", "u99", "0"),
        ("BITFIELD_RO", "w", "GET", "u8", "0"),
    )


# ----------------------------------------------------------------------------- BITCOUNT


@pytest.mark.parametrize("value", PATTERNS)
def test_bitcount(pairs: Pair, value: bytes) -> None:
    pairs.same("SET", "s", value)
    pairs.same("BITCOUNT", "s")
    for start, end in [(0, 0), (1, 1), (0, -1), (-1, -1), (-3, -1), (-100, -1), (-1, -5), (2, 1), (0, 100),
                       (5, 30), (-100, 100), (3, -3)]:
        pairs.same("BITCOUNT", "s", start, end)
        pairs.same("BITCOUNT", "s", start, end, "BIT")
        pairs.same("BITCOUNT", "s", start, end, "byte")


def test_bitcount_errors_and_order(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "s", "foobar"),
        ("BITCOUNT", "s", "0"),
        ("BITCOUNT", "s", "0", "1", "2"),
        ("BITCOUNT", "s", "0", "1", "BIT", "x"),
        ("BITCOUNT", "s", "0", "1", "foo"),
        ("BITCOUNT", "s", "a", "1"),
        ("BITCOUNT", "s", "1", "a"),
        ("BITCOUNT", "s", "9223372036854775808", "1"),
        ("BITCOUNT", "s", "-9223372036854775808", "9223372036854775807", "BIT"),
    )


# ----------------------------------------------------------------------------- BITPOS


@pytest.mark.parametrize("value", PATTERNS)
def test_bitpos(pairs: Pair, value: bytes) -> None:
    pairs.same("SET", "s", value)
    for bit in (0, 1):
        pairs.same("BITPOS", "s", bit)
        for start in (0, 1, 2, -1, -2, 5, 100, -100):
            pairs.same("BITPOS", "s", bit, start)
            pairs.same("BITPOS", "s", bit, start, "BIT")  # BIT is parsed as the end: an error
            for end in (0, 1, 2, -1, -3, 7, 9, 13, 17, 23, 100, -100):
                pairs.same("BITPOS", "s", bit, start, end)
                pairs.same("BITPOS", "s", bit, start, end, "BIT")
                pairs.same("BITPOS", "s", bit, start, end, "BYTE")


# Redis 7.4 checks BITCOUNT's and BITPOS's range and unit arguments before it looks the key up
# (7.0, the oracle, looked up first: a missing key answered 0/-1 and a wrong type WRONGTYPE,
# whatever followed).  Replies recorded from Redis 7.4.1.
ARGUMENTS_BEFORE_LOOKUP_74 = [
    (("BITCOUNT", "w", "x", "y"), b"-ERR value is not an integer or out of range\r\n"),
    (("BITCOUNT", "missing", "x", "y"), b"-ERR value is not an integer or out of range\r\n"),
    (("BITCOUNT", "missing", "0"), b"-ERR syntax error\r\n"),
    (("BITCOUNT", "missing", "0", "1", "foo"), b"-ERR syntax error\r\n"),
    (("BITCOUNT", "missing", "-1", "-2", "foo"), b"-ERR syntax error\r\n"),
    (("BITCOUNT", "s", "-1", "-5", "foo"), b"-ERR syntax error\r\n"),
    (("BITCOUNT", "w", "0", "1", "bit"), b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
    (("BITCOUNT", "missing", "0", "1", "bit"), b":0\r\n"),
    (("BITPOS", "missing", "1", "x", "y", "z", "w"), b"-ERR syntax error\r\n"),
    (("BITPOS", "missing", "1", "a"), b"-ERR value is not an integer or out of range\r\n"),
    (("BITPOS", "missing", "1", "0", "b"), b"-ERR value is not an integer or out of range\r\n"),
    (("BITPOS", "missing", "1", "0", "1", "foo"), b"-ERR syntax error\r\n"),
    (("BITPOS", "missing", "1", "0", "b", "foo"), b"-ERR syntax error\r\n"),
    (("BITPOS", "missing", "1", "0", "b", "bit"), b"-ERR value is not an integer or out of range\r\n"),
    (("BITPOS", "missing", "0", "0", "1", "bit"), b":0\r\n"),
    (("BITPOS", "w", "1", "a"), b"-ERR value is not an integer or out of range\r\n"),
    (("BITPOS", "w", "1", "0"), b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
]


def test_arguments_checked_before_lookup_as_7_4(dumpling_server: ServerProcess) -> None:
    with dumpling_server.raw() as conn:
        conn.call("FLUSHALL")
        conn.call("SET", "s", "foobar")
        conn.call("RPUSH", "w", "x")
        try:
            for command, expected in ARGUMENTS_BEFORE_LOOKUP_74:
                assert conn.call(*command) == expected, command
        finally:
            conn.call("FLUSHALL")


def test_bitpos_errors_and_missing_keys(pairs: Pair) -> None:
    run(
        pairs,
        ("BITPOS", "missing", "0"),
        ("BITPOS", "missing", "1"),
        ("BITPOS", "missing", "2"),
        ("BITPOS", "missing", "x"),
        ("BITPOS", "missing", "-1"),
        ("SET", "s", "\xff"),
        ("BITPOS", "s", "0", "0", "-1", "foo"),
        ("BITPOS", "s", "0", "x"),
        ("BITPOS", "s", "0", "0", "x"),
        ("BITPOS", "s", "0", "0", "x", "BIT"),
        ("BITPOS", "s", "0", "x", "1", "foo"),
        ("BITPOS", "s", "0", "1", "2", "BIT", "extra"),
        ("BITPOS", "s", "1", "9223372036854775808"),
    )


# ----------------------------------------------------------------------------- BITOP


def test_bitop(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "a", b"\x0f\xf0abc"),
        ("SET", "b", b"\xff\x00"),
        ("SET", "c", "12345"),
        ("BITOP", "AND", "d", "a", "b"),
        ("GET", "d"),
        ("BITOP", "or", "d", "a", "b", "c"),
        ("GET", "d"),
        ("BITOP", "XOR", "d", "a", "b", "missing", "c"),
        ("GET", "d"),
        ("BITOP", "NOT", "d", "a"),
        ("GET", "d"),
        ("BITOP", "AND", "d", "a", "missing"),
        ("GET", "d"),
        ("BITOP", "AND", "a", "a", "c"),
        ("GET", "a"),
        ("BITOP", "NOT", "d", "a", "b"),
        ("BITOP", "NOT", "d"),
        ("BITOP", "NAND", "d", "a"),
        ("BITOP", "AND", "d"),
        ("SET", "d", "x", "EX", "100"),
        ("BITOP", "OR", "d", "b"),
        ("TTL", "d"),
        ("OBJECT", "ENCODING", "d"),
        ("BITOP", "OR", "d", "m1", "m2"),
        ("EXISTS", "d"),
        ("BITOP", "OR", "d", "m1"),
        ("SET", "empty", ""),
        ("BITOP", "NOT", "d", "empty"),
        ("EXISTS", "d"),
    )


def test_bitop_long_operands(pair: Pair) -> None:
    rng = random.Random(5)
    values = [bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))) for _ in range(4)]
    for i, value in enumerate(values):
        pair.same("SET", f"v{i}", value)
    for op in ("AND", "OR", "XOR"):
        run(pair, ("BITOP", op, "d", "v0", "v1", "v2", "v3"), ("GET", "d"))
    run(pair, ("BITOP", "NOT", "d", "v1"), ("GET", "d"))


# ----------------------------------------------------------------------------- BITFIELD


def test_bitfield_examples(pairs: Pair) -> None:
    run(
        pairs,
        ("BITFIELD", "bf", "SET", "i8", "0", "-100"),
        ("BITFIELD", "bf", "GET", "u8", "0", "GET", "i8", "0", "GET", "u4", "0", "GET", "i4", "4"),
        ("BITFIELD", "bf", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT", "INCRBY", "u2", "102", "1"),
        ("BITFIELD", "bf", "INCRBY", "u2", "100", "1", "OVERFLOW", "WRAP", "INCRBY", "u2", "102", "1"),
        ("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-100"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "-100"),
        ("BITFIELD", "bf", "overflow", "wrap", "incrby", "i8", "0", "-100"),
        ("BITFIELD", "bf", "SET", "u8", "#1", "300"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "u8", "#1", "300"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "u8", "#1", "-5"),
        ("BITFIELD", "bf", "OVERFLOW", "WRAP", "SET", "u8", "#1", "-5"),
        ("BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "u8", "#1", "-5"),
        ("BITFIELD", "bf", "GET", "i64", "0", "GET", "u63", "1", "GET", "u8", "1000"),
        ("BITFIELD", "bf", "SET", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "1"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i64", "0", "9223372036854775807", "INCRBY", "i64", "0", "1"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i64", "0", "-9223372036854775808",
         "INCRBY", "i64", "0", "-9223372036854775808"),
        ("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i64", "0", "1", "GET", "i64", "0"),
        ("BITFIELD", "bf", "INCRBY", "u63", "0", "9223372036854775807", "INCRBY", "u63", "0", "9223372036854775807"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "u63", "0", "-9223372036854775808"),
        ("BITFIELD", "bf", "SET", "i1", "0", "1", "GET", "i1", "0", "SET", "u1", "0", "5", "GET", "u1", "0"),
        # C's wrapping overflow check: a very negative SET saturates to the maximum
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i23", "0", "-9223372036850581505", "GET", "i23", "0"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i8", "0", "-9223372036854775808", "GET", "i8", "0"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i8", "0", "-9223372036854775680", "GET", "i8", "0"),
        ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i8", "0", "-9223372036854775679", "GET", "i8", "0"),
        ("BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "i8", "0", "-9223372036854775808", "GET", "i8", "0"),
        ("BITFIELD", "bf", "OVERFLOW", "WRAP", "SET", "i8", "0", "-9223372036854775807", "GET", "i8", "0"),
        ("BITFIELD", "bf", "SET", "u16", "#9223372036854775807", "1"),
        ("BITFIELD", "bf", "SET", "u16", "#1152921504606846977", "1"),
        ("GET", "bf"),
        ("BITFIELD", "bf"),
        ("BITFIELD", "missing"),
        ("EXISTS", "missing"),
        ("BITFIELD", "missing", "GET", "u8", "0", "OVERFLOW", "SAT"),
        ("EXISTS", "missing"),
        ("BITFIELD", "nn", "OVERFLOW", "FAIL", "SET", "u8", "0", "1000"),
        ("EXISTS", "nn"),
        ("STRLEN", "nn"),
        ("BITFIELD", "nn2", "GET", "u8", "0", "SET", "u8", "#100", "0"),
        ("STRLEN", "nn2"),
        ("SET", "t", "abc", "EX", "100"),
        ("BITFIELD", "t", "SET", "u8", "0", "97"),
        ("TTL", "t"),
        ("OBJECT", "ENCODING", "t"),
        ("SET", "r", "abc"),
        ("BITFIELD", "r", "GET", "u8", "0"),
        ("OBJECT", "ENCODING", "r"),
        ("SET", "n", "123"),
        ("BITFIELD", "n", "GET", "u8", "0", "GET", "u8", "#2", "GET", "u8", "#3"),
    )


@pytest.mark.parametrize(
    "args",
    [
        ("GET", "u64", "0"), ("GET", "i65", "0"), ("GET", "u0", "0"), ("GET", "i0", "0"), ("GET", "x8", "0"),
        ("GET", "I8", "0"), ("GET", "u", "0"), ("GET", "u08", "0"), ("GET", "u-1", "0"), ("GET", "u8", "-1"),
        ("GET", "u8", "#-1"), ("GET", "u8", "#"), ("GET", "u8", "x"), ("GET", "u8"), ("GET",), ("SET", "u8", "0"),
        ("INCRBY", "u8", "0"), ("FOO",), ("OVERFLOW",), ("OVERFLOW", "bar"), ("SET", "i8", "0", "abc"),
        ("INCRBY", "i8", "0", "1.5"), ("SET", "u8", "0", "1", "FOO"), ("GET", "u8", "0", "OVERFLOW", "x"),
        ("SET", "u8", "0", "1", "GET", "u99", "0"), ("GET", "u8", "4294967296"), ("GET", "i64", "#67108864"),
    ],
)
def test_bitfield_errors(pairs: Pair, args: tuple[str, ...]) -> None:
    run(pairs, ("BITFIELD", "k", *args), ("EXISTS", "k"), ("BITFIELD_RO", "k", *args))


def test_bitfield_ro(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "k", b"\x12\x34\x56"),
        ("BITFIELD_RO", "k", "GET", "u8", "0", "GET", "i4", "3", "GET", "u16", "#1"),
        ("BITFIELD_RO", "k"),
        ("BITFIELD_RO", "missing", "GET", "i8", "0"),
        ("BITFIELD_RO", "k", "SET", "u8", "0", "1"),
        ("BITFIELD_RO", "k", "INCRBY", "u8", "0", "1"),
        ("BITFIELD_RO", "k", "OVERFLOW", "SAT"),
        ("BITFIELD_RO", "k", "OVERFLOW", "SAT", "GET", "u2", "0"),
        ("BITFIELD_RO", "k", "GET", "u8", "0", "SET", "u8", "0", "1"),
        ("GET", "k"),
    )


# ----------------------------------------------------------------------------- events / WATCH

BITMAP_EVENT_CASES: list[list[Cmd]] = [
    [("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "0"), ("SETBIT", "b", "100", "0")],
    [("SET", "s", "abc"), ("SETBIT", "s", "0", "0"), ("GETBIT", "s", "0"), ("GETBIT", "missing", "0")],
    [("SET", "a", "x"), ("BITOP", "OR", "d", "a", "missing"), ("BITOP", "AND", "d", "a"),
     ("BITOP", "OR", "d", "m1", "m2"), ("BITOP", "OR", "d", "m1", "m2")],
    [("BITFIELD", "f", "SET", "u8", "0", "1"), ("BITFIELD", "f", "SET", "u8", "0", "1"),
     ("BITFIELD", "f", "SET", "u8", "0", "2", "INCRBY", "u8", "8", "1"), ("BITFIELD", "f", "GET", "u8", "0"),
     ("BITFIELD", "g", "OVERFLOW", "FAIL", "SET", "u8", "0", "999"), ("BITFIELD_RO", "f", "GET", "u8", "0"),
     ("BITFIELD_RO", "missing", "GET", "u8", "0"), ("BITFIELD", "missing2")],
    [("BITCOUNT", "missing"), ("BITPOS", "missing", "1"), ("SET", "s", "x"), ("BITCOUNT", "s"), ("BITPOS", "s", "0")],
]


@pytest.mark.parametrize("commands", BITMAP_EVENT_CASES, ids=lambda cmds: " / ".join(str(c[0]) for c in cmds))
def test_keyspace_events(pair: Pair, events: tuple[EventStream, EventStream], commands: list[Cmd]) -> None:
    assert_same_events(pair, events, commands)


@pytest.mark.parametrize(
    "setup, write",
    [
        (("SET", "k", "\x80"), ("SETBIT", "k", "0", "1")),
        (("SET", "k", "\x80"), ("SETBIT", "k", "0", "0")),
        (("SET", "k", "\x80"), ("SETBIT", "k", "100", "0")),
        (("SET", "k", "\x01"), ("BITFIELD", "k", "SET", "u8", "0", "1")),
        (("SET", "k", "\x01"), ("BITFIELD", "k", "SET", "u8", "0", "2")),
        (("SET", "k", "\x01"), ("BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", "0", "999")),
        (("SET", "k", "\x01"), ("BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", "8", "999")),
        (("SET", "a", "x"), ("BITOP", "OR", "k", "a")),
        (("SET", "k", "x"), ("BITOP", "OR", "k", "missing")),
    ],
)
def test_watch_is_invalidated_by_effective_bit_writes(pair: Pair, setup: Cmd, write: Cmd) -> None:
    pair.same(*setup)
    pair.same("WATCH", "k")
    for port in (pair.ours.sock.getpeername()[1], pair.theirs.sock.getpeername()[1]):
        with RawConnection(port) as other:
            other.call(*write)
    run(pair, ("MULTI",), ("PING",), ("EXEC",))


# ----------------------------------------------------------------------------- random ranges and fields

_VALUE = st.binary(max_size=12)
_IDX = st.integers(-110, 110)


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_VALUE, start=_IDX, end=_IDX, bit=st.integers(0, 1), unit=st.sampled_from([(), ("BIT",), ("BYTE",)]))
def test_random_bitcount_bitpos(pair: Pair, value: bytes, start: int, end: int, bit: int, unit: tuple[str, ...]) -> None:
    pair.same("SET", "s", value)
    pair.same("BITCOUNT", "s", start, end, *unit)
    pair.same("BITPOS", "s", bit, start, end, *unit)
    pair.same("BITPOS", "s", bit, start)
    pair.same("BITPOS", "s", bit)


def _field_type() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(1, 64).map(lambda n: f"i{n}"), st.integers(1, 63).map(lambda n: f"u{n}"))


_FIELD_OP = st.one_of(
    st.tuples(st.just("GET"), _field_type(), st.integers(0, 80).map(str)),
    st.tuples(st.sampled_from(["SET", "INCRBY"]), _field_type(),
              st.one_of(st.integers(0, 80).map(str), st.integers(0, 10).map(lambda n: f"#{n}")),
              st.one_of(st.integers(-300, 300), st.integers(-(2**63), 2**63 - 1)).map(str)),
    st.tuples(st.just("OVERFLOW"), st.sampled_from(["WRAP", "SAT", "FAIL"])),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.one_of(st.none(), _VALUE), ops=st.lists(_FIELD_OP, max_size=6))
def test_random_bitfield(pair: Pair, initial: bytes | None, ops: list[tuple[str, ...]]) -> None:
    pair.both("DEL", "f")
    if initial is not None:
        pair.same("SET", "f", initial)
    flat = [part for op in ops for part in op]
    pair.same("BITFIELD", "f", *flat)
    pair.same("GET", "f")
    pair.same("BITFIELD_RO", "f", *flat)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.one_of(st.none(), _VALUE), ops=st.lists(_FIELD_OP, max_size=10))
def test_random_bitfield_long(pair: Pair, initial: bytes | None, ops: list[tuple[str, ...]]) -> None:
    pair.both("DEL", "f")
    if initial is not None:
        pair.same("SET", "f", initial)
    flat = [part for op in ops for part in op]
    pair.same("BITFIELD", "f", *flat)
    pair.same("GET", "f")


@pytest.mark.parametrize("name", ["setbit", "getbit", "bitcount", "bitpos", "bitop", "bitfield", "bitfield_ro"])
def test_command_info(pairs: Pair, name: str) -> None:
    pairs.same("COMMAND", "INFO", name)


@pytest.mark.parametrize(
    "commands",
    [
        [("GETBIT", "b", "0"), ("SETBIT", "b", "0", "1"), ("GETBIT", "b", "0"), ("BITCOUNT", "b"), ("BITCOUNT", "x"),
         ("BITPOS", "b", "1"), ("BITPOS", "x", "0")],
        [("BITOP", "OR", "d", "b", "x"), ("BITFIELD", "b", "GET", "u8", "0"), ("BITFIELD", "x", "GET", "u8", "0"),
         ("BITFIELD", "b", "SET", "u8", "0", "1"), ("BITFIELD_RO", "b", "GET", "u8", "0"), ("BITFIELD_RO", "y")],
        [("SETBIT", "b", "0", "1"), ("SETBIT", "b", "0", "1"), ("SETBIT", "b", "20", "0"),
         ("BITFIELD", "b", "SET", "u8", "0", "1", "SET", "u8", "8", "1", "SET", "u8", "8", "1", "INCRBY", "u4", "0", "0"),
         ("BITFIELD", "n", "OVERFLOW", "FAIL", "SET", "u8", "0", "999"), ("BITOP", "AND", "d", "x", "y"),
         ("BITOP", "AND", "n", "x")],
    ],
    ids=["read", "write", "dirty"],
)
def test_keyspace_hits_and_misses(pair: Pair, commands: list[Cmd]) -> None:
    pair.same("CONFIG", "RESETSTAT")
    dirty_before = _dirty(pair.ours), _dirty(pair.theirs)
    for cmd in commands:
        pair.same(*cmd)
    assert _hits_misses(pair.ours) == _hits_misses(pair.theirs)
    assert _dirty(pair.ours) - dirty_before[0] == _dirty(pair.theirs) - dirty_before[1]


def test_chunked_scans_match_whole_range_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """count_ones/find_bit work in byte-aligned chunks; any chunk size gives the same answers."""
    from dumpling.commands import bitmaps

    rng = random.Random(2)
    for _ in range(2000):
        value = bytes(rng.choice([0, 255, rng.randrange(256)]) for _ in range(rng.randint(1, 40)))
        monkeypatch.setattr(bitmaps, "CHUNK_BYTES", rng.choice([1, 2, 3, 1 << 16]))
        first = rng.randrange(len(value) * 8)
        last = rng.randrange(first, len(value) * 8)
        width = last - first + 1
        whole = int.from_bytes(value, "big") >> (len(value) * 8 - 1 - last) & ((1 << width) - 1)
        assert bitmaps.count_ones(value, first, last) == whole.bit_count()
        for bit, bits in ((1, whole), (0, whole ^ ((1 << width) - 1))):
            expected = first + width - bits.bit_length() if bits else -1
            assert bitmaps.find_bit(value, bit, first, last) == expected


def test_bitmaps_larger_than_a_chunk(pair: Pair) -> None:
    rng = random.Random(17)
    value = bytearray(300_000)
    for _ in range(50):
        value[rng.randrange(len(value))] = rng.randrange(256)
    ones = bytearray(b"\xff" * 200_000)
    ones[150_000] = 0xFB
    run(pair, ("SET", "v", bytes(value)), ("SET", "o", bytes(ones)), ("BITCOUNT", "v"), ("BITCOUNT", "o"),
        ("BITPOS", "o", "0"), ("BITPOS", "o", "1", "-1"), ("BITPOS", "v", "1", "100000"),
        ("BITCOUNT", "v", "7", "2000000", "BIT"), ("BITPOS", "o", "0", "0", "1199999", "BIT"),
        ("BITPOS", "o", "0", "1200003", "-1", "BIT"), ("BITOP", "XOR", "d", "v", "o"), ("BITCOUNT", "d"))
