"""String commands, differentially against a real redis-server (RESP2 and RESP3).

Every test sends the same commands to dumpling and to Redis and compares the
reply bytes.  Also here: keyspace events of the string commands (compared as the
exact notification stream), WATCH invalidation, the size limit, a Hypothesis run
of random INCRBYFLOAT/SET/GETRANGE/SETRANGE/APPEND sequences, and unit tests of
``string_encoding`` and the LCS walk.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpling.commands.strings import lcs_length, lcs_walk, string_encoding
from tests.fuzzing import examples
from tests.servers import Pair, RawConnection, ServerProcess, encode_command

Cmd = tuple[str | bytes | int, ...]


def run(pair: Pair, *commands: Cmd) -> None:
    for cmd in commands:
        pair.same(*cmd)


def make_non_string(pair: Pair, key: str) -> None:
    """Create a non-string value at ``key`` on both servers with whichever type both know."""
    for cmd in (("RPUSH", key, "x"), ("SADD", key, "x"), ("HSET", key, "f", "v"), ("ZADD", key, "1", "m")):
        ours, theirs = pair.both(*cmd)
        if not ours.startswith(b"-") and not theirs.startswith(b"-"):
            return
        pair.both("DEL", key)
    pytest.skip("dumpling has no non-string data type yet")


# ----------------------------------------------------------------------------- GET / SET


def test_get_set_basic(pairs: Pair) -> None:
    run(
        pairs,
        ("GET", "k"),
        ("SET", "k", "v"),
        ("GET", "k"),
        ("SET", "k", b"\x00\xff\r\n binary"),
        ("GET", "k"),
        ("SET", "k", ""),
        ("GET", "k"),
        ("SET", "k", "x" * 1000),
        ("GET", "k"),
        ("SET", "k", "12345"),
        ("GET", "k"),
    )


@pytest.mark.parametrize(
    "options",
    [
        ("NX",), ("XX",), ("nx",), ("GET",), ("get", "GET"), ("KEEPTTL",), ("EX", "10"), ("ex", "10", "EX", "20"),
        ("PX", "450"), ("EXAT", "99999999999"), ("PXAT", "99999999999999"), ("NX", "XX"), ("XX", "NX"),
        ("EX", "10", "PX", "10"), ("PX", "10", "EX", "10"), ("EX", "10", "KEEPTTL"), ("KEEPTTL", "EX", "10"),
        ("EXAT", "1", "PXAT", "1"), ("PXAT", "1", "EXAT", "1"), ("EX",), ("PX",), ("EXAT",), ("PXAT",),
        ("EX", "10", "EX"), ("FOO",), ("NX", "FOO"), ("PERSIST",), ("KEEPTTL", "KEEPTTL"), ("NX", "NX"),
        ("EX", "abc"), ("EX", "0"), ("EX", "-1"), ("PX", "0"), ("EX", ""), ("EX", "1.5"), ("EX", " 1"),
        ("EX", "9223372036854775"), ("EX", "9223372036854776"), ("PX", "9223372036854775807"),
        ("PXAT", "9223372036854775807"), ("EXAT", "9223372036854775"), ("EX", "9223372036854775808"),
        ("NX", "GET", "EX", "100"), ("XX", "GET", "KEEPTTL"), ("GET", "EX", "bad"), ("EX", "bad", "NX", "XX"),
        ("NX", "EX", "0"),
    ],
)
def test_set_option_parsing(pairs: Pair, options: tuple[str, ...]) -> None:
    pairs.same("SET", "k", "v", *options)
    pairs.same("GET", "k")
    pairs.same("TTL", "k")
    pairs.same("SET", "e", "old")
    pairs.same("SET", "e", "new", *options)
    pairs.same("GET", "e")
    pairs.same("TTL", "e")


def test_set_conditions_and_get(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "k", "v", "XX"),
        ("SET", "k", "v", "XX", "GET"),
        ("SET", "k", "v", "NX"),
        ("SET", "k", "w", "NX"),
        ("SET", "k", "w", "NX", "GET"),
        ("GET", "k"),
        ("SET", "k", "x", "XX", "GET"),
        ("SET", "k", "y", "GET"),
        ("SET", "missing", "y", "GET"),
        ("GET", "k"),
        ("APPEND", "raw", "abc"),
        ("APPEND", "raw", "def"),
        ("SET", "raw", "new", "GET"),
    )


def test_set_ttl_rules(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "k", "v", "EX", "100"),
        ("TTL", "k"),
        ("SET", "k", "v", "KEEPTTL"),
        ("TTL", "k"),
        ("SET", "k", "v", "XX", "KEEPTTL", "GET"),
        ("TTL", "k"),
        ("SET", "k", "v"),
        ("TTL", "k"),
        ("SET", "k", "v", "EX", "10", "EX", "20"),
        ("TTL", "k"),
        ("SET", "k", "v", "PX", "5000000"),
        ("TTL", "k"),
        ("SET", "k", "v", "NX", "EX", "1"),
        ("TTL", "k"),
        ("SET", "k", "v", "EXAT", "32503680000"),
        ("EXPIRETIME", "k"),
        ("SET", "k", "v", "PXAT", "32503680000123"),
        ("PEXPIRETIME", "k"),
        ("SET", "k", "v", "GET"),
        ("TTL", "k"),
    )


def test_set_expiry_in_the_past_stores_then_expires(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "k", "v", "EXAT", "1"),
        ("GET", "k"),
        ("EXISTS", "k"),
        ("SET", "k", "v", "PXAT", "1", "GET"),
        ("EXISTS", "k"),
    )


def test_set_get_on_wrong_type(pairs: Pair) -> None:
    make_non_string(pairs, "w")
    run(
        pairs,
        ("SET", "w", "v", "GET"),
        ("TYPE", "w"),
        ("SET", "w", "v", "NX", "GET"),
        ("SET", "w", "v", "EX", "0", "GET"),
        ("GET", "w"),
        ("SET", "w", "v"),
        ("GET", "w"),
    )


def test_setnx_setex_psetex(pairs: Pair) -> None:
    run(
        pairs,
        ("SETNX", "k", "v"),
        ("SETNX", "k", "w"),
        ("GET", "k"),
        ("SETEX", "k", "100", "x"),
        ("TTL", "k"),
        ("GET", "k"),
        ("SETEX", "k", "0", "x"),
        ("SETEX", "k", "-5", "x"),
        ("SETEX", "k", "abc", "x"),
        ("SETEX", "k", "9223372036854775", "x"),
        ("PSETEX", "k", "100000", "y"),
        ("TTL", "k"),
        ("PSETEX", "k", "0", "y"),
        ("PSETEX", "k", "9223372036854775807", "y"),
        ("SETEX", "k", "10"),
        ("SETNX", "k"),
        ("GET", "k"),
    )


# ----------------------------------------------------------------------------- GETEX / GETDEL / GETSET


def test_getex(pairs: Pair) -> None:
    run(
        pairs,
        ("GETEX", "missing"),
        ("GETEX", "missing", "EX", "abc"),
        ("GETEX", "missing", "FOO"),
        ("SET", "k", "v"),
        ("GETEX", "k"),
        ("TTL", "k"),
        ("GETEX", "k", "EX", "100"),
        ("TTL", "k"),
        ("GETEX", "k", "PX", "50000000"),
        ("TTL", "k"),
        ("GETEX", "k", "EXAT", "32503680000"),
        ("EXPIRETIME", "k"),
        ("GETEX", "k", "PXAT", "32503680000999"),
        ("PEXPIRETIME", "k"),
        ("GETEX", "k", "PERSIST"),
        ("TTL", "k"),
        ("GETEX", "k", "persist"),
        ("GETEX", "k", "EX", "0"),
        ("GETEX", "k", "EX", "-1"),
        ("GETEX", "k", "EX", "abc"),
        ("GETEX", "k", "EX", "9223372036854775"),
        ("GETEX", "k", "PX", "9223372036854775807"),
        ("GETEX", "k", "EX", "1", "PX", "1"),
        ("GETEX", "k", "EX", "1", "PERSIST"),
        ("GETEX", "k", "PERSIST", "EX", "1"),
        ("GETEX", "k", "EX", "5", "EX", "50"),
        ("TTL", "k"),
        ("GETEX", "k", "NX"),
        ("GETEX", "k", "XX"),
        ("GETEX", "k", "GET"),
        ("GETEX", "k", "KEEPTTL"),
        ("GETEX", "k", "EX"),
        ("GETEX", "k", "EXAT", "1"),
        ("EXISTS", "k"),
        ("SET", "k", "v"),
        ("GETEX", "k", "PXAT", "1"),
        ("EXISTS", "k"),
    )


def test_getex_wrong_type_before_expire_validation(pairs: Pair) -> None:
    make_non_string(pairs, "w")
    run(pairs, ("GETEX", "w"), ("GETEX", "w", "EX", "0"), ("GETEX", "w", "FOO"), ("GETEX", "w", "PERSIST"))


def test_getdel_getset(pairs: Pair) -> None:
    run(
        pairs,
        ("GETDEL", "k"),
        ("SET", "k", "v"),
        ("GETDEL", "k"),
        ("EXISTS", "k"),
        ("GETSET", "k", "a"),
        ("GETSET", "k", "b"),
        ("SET", "k", "v", "EX", "100"),
        ("GETSET", "k", "c"),
        ("TTL", "k"),
        ("APPEND", "r", "x"),
        ("APPEND", "r", "y"),
        ("GETDEL", "r"),
    )
    make_non_string(pairs, "w")
    run(pairs, ("GETDEL", "w"), ("GETSET", "w", "x"), ("TYPE", "w"))


# ----------------------------------------------------------------------------- MGET / MSET / MSETNX


def test_mget_mset_msetnx(pairs: Pair) -> None:
    run(
        pairs,
        ("MSET", "a", "1"),
        ("MSET", "a", "1", "b"),
        ("MSET", "a", "1", "b", "2", "a", "3"),
        ("MGET", "a", "b", "c"),
        ("SET", "t", "v", "EX", "100"),
        ("MSET", "t", "x"),
        ("TTL", "t"),
        ("MSETNX", "a", "9", "z", "9"),
        ("MGET", "a", "z"),
        ("MSETNX", "y", "1", "z", "2"),
        ("MSETNX", "x", "1", "x", "2"),
        ("MGET", "x", "y", "z"),
        ("MSETNX", "q"),
        ("MSETNX", "q", "1", "r"),
        ("APPEND", "raw", "ab"),
        ("APPEND", "raw", "cd"),
        ("MGET", "raw", "missing", "a"),
    )
    make_non_string(pairs, "w")
    run(pairs, ("MGET", "a", "w", "b"), ("MSETNX", "w", "1", "new", "2"), ("MSET", "w", "1"), ("GET", "w"))


# ----------------------------------------------------------------------------- counters


def test_incr_family(pairs: Pair) -> None:
    run(
        pairs,
        ("INCR", "n"),
        ("INCR", "n"),
        ("DECR", "n"),
        ("INCRBY", "n", "100"),
        ("DECRBY", "n", "33"),
        ("INCRBY", "n", "-1000"),
        ("DECRBY", "n", "-5"),
        ("GET", "n"),
        ("INCRBY", "n", "01"),
        ("INCRBY", "n", "-0"),
        ("INCRBY", "n", "+1"),
        ("INCRBY", "n", "1.5"),
        ("INCRBY", "n", "9223372036854775808"),
        ("DECRBY", "n", "-9223372036854775808"),
        ("DECRBY", "missing", "-9223372036854775808"),
        ("INCRBY", "n", ""),
        ("SET", "big", "9223372036854775807"),
        ("INCR", "big"),
        ("INCRBY", "big", "0"),
        ("DECR", "big"),
        ("SET", "small", "-9223372036854775808"),
        ("DECR", "small"),
        ("DECRBY", "small", "1"),
        ("INCRBY", "small", "-1"),
        ("INCRBY", "small", "9223372036854775807"),
        ("SET", "big", "9223372036854775806"),
        ("INCRBY", "big", "2"),
        ("GET", "big"),
        ("SET", "t", "5", "EX", "100"),
        ("INCR", "t"),
        ("TTL", "t"),
        ("DECRBY", "t", "3"),
        ("TTL", "t"),
    )


@pytest.mark.parametrize(
    "stored",
    ["", " 1", "1 ", "1.0", "-0", "+1", "01", "0x10", "abc", "9223372036854775808", "-9223372036854775809",
     "12345678901234567890", "1e3"],
)
def test_incr_rejects_non_integers(pairs: Pair, stored: str) -> None:
    run(pairs, ("SET", "k", stored), ("INCR", "k"), ("DECRBY", "k", "1"), ("GET", "k"))


def test_incr_on_raw_and_wrong_type(pairs: Pair) -> None:
    run(pairs, ("APPEND", "r", "1"), ("APPEND", "r", "2"), ("INCR", "r"), ("INCRBYFLOAT", "r", "0.5"), ("GET", "r"))
    make_non_string(pairs, "w")
    run(pairs, ("INCR", "w"), ("INCRBY", "w", "x"), ("DECRBY", "w", "-9223372036854775808"),
        ("INCRBYFLOAT", "w", "x"))


@pytest.mark.parametrize(
    "start, increment",
    [
        ("10", "0.1"), ("0.1", "0.2"), ("5", "-5"), ("1", "1e-20"), ("3.0", "0"), ("1.5e3", "0"), ("0", "0x10"),
        ("0", "1e300"), ("10.5", "0.1"), ("5.0e3", "2.0e2"), ("-1", "0.5"), ("-0", "-0"), ("1e4931", "1e4931"),
        ("0", "-1e-4000"), ("17179869184", "0.0078125"), ("0", "3.14159265358979323846264338327950288"),
        ("0", "0x1.fffffffffffffffep+3"), ("1", "+.5"), ("1", "5."), ("1", "1E2"), ("12345678901234567890", "1"),
        ("0", "123456789012345678901234567890.5"), ("0.1", "0"), ("100", "-99.99"),
    ],
)
def test_incrbyfloat_vectors(pairs: Pair, start: str, increment: str) -> None:
    run(pairs, ("SET", "f", start), ("INCRBYFLOAT", "f", increment), ("GET", "f"), ("INCRBYFLOAT", "f", increment))


@pytest.mark.parametrize(
    "stored, increment",
    [
        ("1", "inf"), ("1", "-inf"), ("inf", "1"), ("inf", "-inf"), ("1", "nan"), ("nan", "1"), ("1", "abc"),
        ("abc", "1"), ("1", ""), ("1", " 1"), ("1", "1 "), ("1", "1e"), ("1", "1e99999"), ("1", "1e-99999"),
        (" 1", "1"), ("1", "0x"), ("1e4932", "1e4932"), ("1", "infinity"), ("1", "1,5"), ("1", "1" * 5200),
    ],
)
def test_incrbyfloat_errors(pairs: Pair, stored: str, increment: str) -> None:
    run(pairs, ("SET", "f", stored), ("INCRBYFLOAT", "f", increment), ("GET", "f"), ("INCRBYFLOAT", "m", increment))


def test_incrbyfloat_keeps_ttl_and_replies_bulk(pairs: Pair) -> None:
    run(
        pairs,
        ("INCRBYFLOAT", "f", "1.5"),
        ("SET", "f", "2", "EX", "100"),
        ("INCRBYFLOAT", "f", "0.25"),
        ("TTL", "f"),
        ("GET", "f"),
    )


# ----------------------------------------------------------------------------- APPEND / STRLEN / ranges


def test_append_strlen(pairs: Pair) -> None:
    run(
        pairs,
        ("STRLEN", "k"),
        ("APPEND", "k", "hello"),
        ("APPEND", "k", " world"),
        ("GET", "k"),
        ("STRLEN", "k"),
        ("APPEND", "k", ""),
        ("APPEND", "e", ""),
        ("EXISTS", "e"),
        ("SET", "n", "12345"),
        ("STRLEN", "n"),
        ("APPEND", "n", "6"),
        ("INCR", "n"),
        ("SET", "t", "a", "EX", "100"),
        ("APPEND", "t", "b"),
        ("TTL", "t"),
    )
    make_non_string(pairs, "w")
    run(pairs, ("APPEND", "w", "x"), ("STRLEN", "w"))


def test_append_many_times_is_linear(pairs: Pair) -> None:
    for _ in range(300):
        pairs.same("APPEND", "k", "0123456789")
    pairs.same("STRLEN", "k")
    pairs.same("GETRANGE", "k", "2990", "-1")


@pytest.mark.parametrize(
    "start, end",
    [(0, -1), (1, 2), (0, 0), (-1, -1), (-3, -1), (-100, -50), (-1, -5), (-5, -1), (3, 1), (0, 100), (100, 200),
     (-100, 100), (4, 4), (5, 5), (-6, 2), (2, -100), (0, -6), (-9223372036854775808, 9223372036854775807),
     (9223372036854775807, -9223372036854775808)],
)
def test_getrange_indexes(pairs: Pair, start: int, end: int) -> None:
    run(pairs, ("SET", "s", "Hello"), ("SET", "n", "12345"), ("SET", "e", ""))
    for key in ("s", "n", "e", "missing"):
        pairs.same("GETRANGE", key, start, end)
        pairs.same("SUBSTR", key, start, end)


def test_getrange_errors(pairs: Pair) -> None:
    run(
        pairs,
        ("GETRANGE", "missing", "a", "1"),
        ("GETRANGE", "missing", "0", "1.5"),
        ("GETRANGE", "missing", "0", "9223372036854775808"),
        ("GETRANGE", "k", "0"),
        ("SUBSTR", "k", "0", "1", "2"),
    )
    make_non_string(pairs, "w")
    run(pairs, ("GETRANGE", "w", "0", "1"), ("GETRANGE", "w", "x", "1"), ("SUBSTR", "w", "0", "1"))


def test_setrange(pairs: Pair) -> None:
    run(
        pairs,
        ("SETRANGE", "k", "0", ""),
        ("EXISTS", "k"),
        ("SETRANGE", "k", "5", ""),
        ("EXISTS", "k"),
        ("SETRANGE", "k", "5", "hi"),
        ("GET", "k"),
        ("SETRANGE", "k", "1", ""),
        ("SETRANGE", "k", "0", "ABCDEFGHIJ"),
        ("SETRANGE", "k", "3", "xy"),
        ("GET", "k"),
        ("SETRANGE", "k", "20", "z"),
        ("GET", "k"),
        ("SETRANGE", "k", "-1", "x"),
        ("SETRANGE", "k", "-1", ""),
        ("SETRANGE", "k", "x", "x"),
        ("SETRANGE", "k", "9223372036854775808", "x"),
        ("SET", "n", "12345"),
        ("SETRANGE", "n", "0", ""),
        ("SETRANGE", "n", "1", "9"),
        ("INCR", "n"),
        ("SET", "t", "abc", "EX", "100"),
        ("SETRANGE", "t", "1", "X"),
        ("TTL", "t"),
        ("GET", "t"),
    )
    make_non_string(pairs, "w")
    run(pairs, ("SETRANGE", "w", "0", "x"), ("SETRANGE", "w", "0", ""), ("SETRANGE", "w", "-1", "x"))


def test_size_limit_against_proto_max_bulk_len(pair: Pair) -> None:
    limit = str(1024 * 1024)
    try:
        run(pair, ("CONFIG", "SET", "proto-max-bulk-len", limit))
        run(
            pair,
            ("SETRANGE", "k", "1048575", "x"),
            ("STRLEN", "k"),
            ("SETRANGE", "k", "1048576", "x"),
            ("SETRANGE", "k", "1048575", "xy"),
            ("SETRANGE", "k", "1048576", ""),
            ("SETRANGE", "new", "1048576", "x"),
            ("SETRANGE", "new", "1048576", ""),
            ("EXISTS", "new"),
            ("APPEND", "k", "y"),
            ("APPEND", "k", ""),
            ("SET", "a", "x" * 1000),
            ("APPEND", "a", "y" * (1024 * 1024 - 1000)),
            ("APPEND", "a", "y" * (1024 * 1024 - 999)),
            ("STRLEN", "a"),
            ("DEL", "k", "a"),
            ("SET", "l1", "a" * 600),
            ("SET", "l2", "b" * 600),
            ("LCS", "l1", "l2"),
            ("LCS", "l1", "l2", "LEN"),
            ("SET", "l2", "b" * 400),
            ("LCS", "l1", "l2", "LEN"),
        )
    finally:
        run(pair, ("CONFIG", "SET", "proto-max-bulk-len", str(512 * 1024 * 1024)))


# ----------------------------------------------------------------------------- LCS


def test_lcs_spec_example(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "key1", "ohmytext"),
        ("SET", "key2", "mynewtext"),
        ("LCS", "key1", "key2"),
        ("LCS", "key1", "key2", "LEN"),
        ("LCS", "key1", "key2", "IDX"),
        ("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
        ("LCS", "key1", "key2", "idx", "withmatchlen"),
        ("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "-5"),
        ("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "2", "MINMATCHLEN", "3"),
        ("LCS", "key1", "key2", "LEN", "WITHMATCHLEN", "MINMATCHLEN", "3"),
        ("LCS", "key1", "missing"),
        ("LCS", "missing", "key1", "IDX"),
        ("LCS", "missing", "missing2", "LEN"),
        ("LCS", "key1", "key1", "IDX", "WITHMATCHLEN"),
    )


def test_lcs_errors(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "a", "abc"),
        ("SET", "b", "abd"),
        ("LCS", "a", "b", "LEN", "IDX"),
        ("LCS", "a", "b", "FOO"),
        ("LCS", "a", "b", "MINMATCHLEN"),
        ("LCS", "a", "b", "MINMATCHLEN", "x"),
        ("LCS", "a", "b", "MINMATCHLEN", "x", "LEN", "IDX"),
        ("LCS", "a", "b", "LEN", "IDX", "FOO"),
        ("LCS", "a"),
    )
    make_non_string(pairs, "w")
    run(pairs, ("LCS", "a", "w"), ("LCS", "w", "a", "FOO"), ("LCS", "w", "missing"))


def test_lcs_random_strings(pair: Pair) -> None:
    rng = random.Random(7)
    for _ in range(60):
        alphabet = rng.choice(["ab", "abc", "acgt", "abcdefgh"])
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        run(pair, ("SET", "a", a), ("SET", "b", b), ("LCS", "a", "b"), ("LCS", "b", "a"), ("LCS", "a", "b", "LEN"),
            ("LCS", "a", "b", "IDX", "WITHMATCHLEN"), ("LCS", "a", "b", "IDX", "MINMATCHLEN", rng.randint(0, 4)))


def test_lcs_long_strings(pair3: Pair) -> None:
    rng = random.Random(11)
    a = bytes(rng.choice(b"ACGT") for _ in range(2000))
    b = bytes(rng.choice(b"ACGT") for _ in range(1500))
    run(pair3, ("SET", "a", a), ("SET", "b", b), ("LCS", "a", "b", "LEN"), ("LCS", "a", "b"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "5", "WITHMATCHLEN"))


def test_lcs_lopsided_strings(pair: Pair) -> None:
    """One long and one short string: the walk along the long one must stay fast (and exact)."""
    rng = random.Random(13)
    long_value = bytes(rng.choice(b"abcd") for _ in range(300_000))
    run(pair, ("SET", "long", long_value), ("SET", "short", "dcba"), ("SET", "one", "c"))
    for first, second in (("long", "short"), ("short", "long"), ("one", "long"), ("long", "one")):
        run(pair, ("LCS", first, second), ("LCS", first, second, "LEN"), ("LCS", first, second, "IDX"),
            ("LCS", first, second, "IDX", "WITHMATCHLEN", "MINMATCHLEN", "1"))


def _naive_lcs(a: bytes, b: bytes, minmatchlen: int) -> tuple[bytes, list[tuple[int, int, int, int, int]], int]:
    """Redis's table-and-walk algorithm written out directly (the reference for ``lcs_walk``)."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    out: list[int] = []
    ranges: list[tuple[int, int, int, int, int]] = []
    i, j = len(a), len(b)
    current: list[int] | None = None  # [a_start, a_end, b_start, b_end]
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out.append(a[i - 1])
            if current is None:
                current = [i - 1, i - 1, j - 1, j - 1]
            elif current[0] == i and current[2] == j:
                current[0] -= 1
                current[2] -= 1
            else:
                emit = True
            if current[0] == 0 or current[2] == 0:
                emit = True
            i, j = i - 1, j - 1
        else:
            if table[i - 1][j] > table[i][j - 1]:
                i -= 1
            else:
                j -= 1
            emit = current is not None
        if emit and current is not None:
            length = current[1] - current[0] + 1
            if minmatchlen == 0 or length >= minmatchlen:
                ranges.append((current[0], current[1], current[2], current[3], length))
            current = None
    return bytes(reversed(out)), ranges, table[len(a)][len(b)]


def test_lcs_walk_matches_the_table_algorithm() -> None:
    rng = random.Random(3)
    for _ in range(400):
        alphabet = rng.choice([b"ab", b"abc", b"abcdefghij"])
        a = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, rng.choice([3, 30, 80]))))
        b = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, rng.choice([3, 30, 80]))))
        minmatchlen = rng.randint(0, 3)
        assert lcs_walk(a, b, minmatchlen) == _naive_lcs(a, b, minmatchlen), (a, b, minmatchlen)
        assert lcs_length(a, b) == len(lcs_walk(a, b)[0])


# ----------------------------------------------------------------------------- encodings


def test_string_encoding_unit() -> None:
    assert string_encoding(b"0") == b"int"
    assert string_encoding(b"-9223372036854775808") == b"int"
    assert string_encoding(b"9223372036854775808") == b"embstr"
    assert string_encoding(b"12345678901234567890") == b"embstr"
    assert string_encoding(b"007") == b"embstr"
    assert string_encoding(b"a" * 44) == b"embstr"
    assert string_encoding(b"a" * 45) == b"raw"
    assert string_encoding(b"1" * 45) == b"raw"
    assert string_encoding(b"") == b"embstr"
    assert string_encoding(bytearray(b"1")) == b"raw"


def test_object_encoding(pairs: Pair) -> None:
    run(
        pairs,
        ("SET", "i", "12345"),
        ("SET", "neg", "-9223372036854775808"),
        ("SET", "big", "12345678901234567890"),
        ("SET", "e44", "a" * 44),
        ("SET", "r45", "a" * 45),
        ("SET", "empty", ""),
        ("SET", "lead0", "0123"),
        ("INCR", "counter"),
        ("INCRBYFLOAT", "fl", "1.5"),
        ("INCRBYFLOAT", "longfl", "1e50"),
        ("APPEND", "ap_new_int", "123"),
        ("APPEND", "ap_new_str", "hello"),
        ("APPEND", "ap_twice", "a"),
        ("APPEND", "ap_twice", "b"),
        ("SET", "ap_empty", "abc"),
        ("APPEND", "ap_empty", ""),
        ("SETRANGE", "sr", "0", "x"),
        ("SET", "sr2", "abc"),
        ("SETRANGE", "sr2", "0", ""),
        ("SET", "sr3", "abc"),
        ("SETRANGE", "sr3", "0", "x"),
        ("MSET", "m1", "42", "m2", "x" * 50),
        ("GETSET", "gs", "7"),
        ("SET", "ap_then_set", "a"),
        ("APPEND", "ap_then_set", "b"),
        ("SET", "ap_then_set", "1"),
        ("SET", "inc_raw", "5"),
        ("APPEND", "inc_raw", "0"),
        ("INCR", "inc_raw"),
    )
    for key in ("i", "neg", "big", "e44", "r45", "empty", "lead0", "counter", "fl", "longfl", "ap_new_int",
                "ap_new_str", "ap_twice", "ap_empty", "sr", "sr2", "sr3", "m1", "m2", "gs", "ap_then_set", "inc_raw"):
        pairs.same("OBJECT", "ENCODING", key)


@pytest.mark.xfail(strict=True, reason="an INCRBYFLOAT result that reads as an integer is stored as plain bytes, "
                   "which OBJECT ENCODING reports as int; Redis creates it as embstr (known deviation)")
def test_object_encoding_of_integral_incrbyfloat_result(pair: Pair) -> None:
    run(pair, ("SET", "f", "1.5"), ("INCRBYFLOAT", "f", "1.5"), ("OBJECT", "ENCODING", "f"))


# ----------------------------------------------------------------------------- transactions / WATCH


def test_raw_value_reply_is_a_snapshot_inside_exec(pairs: Pair) -> None:
    run(
        pairs,
        ("APPEND", "k", "abc"),
        ("APPEND", "k", "def"),
        ("MULTI",),
        ("GET", "k"),
        ("MGET", "k"),
        ("GETRANGE", "k", "0", "-1"),
        ("APPEND", "k", "ghi"),
        ("SETRANGE", "k", "0", "X"),
        ("SET", "k", "zzz", "GET"),
        ("EXEC",),
    )


@pytest.mark.parametrize(
    "setup, write",
    [
        ((), ("SET", "k", "v")),
        (("SET", "k", "v"), ("SET", "k", "v", "NX")),
        (("SET", "k", "v"), ("GETEX", "k")),
        (("SET", "k", "v"), ("GETEX", "k", "EX", "100")),
        (("SET", "k", "v"), ("GETEX", "k", "PERSIST")),
        (("SET", "k", "v", "EX", "100"), ("GETEX", "k", "PERSIST")),
        (("SET", "k", "v"), ("SETRANGE", "k", "0", "")),
        (("SET", "k", "v"), ("SETRANGE", "k", "0", "x")),
        (("SET", "k", "v"), ("APPEND", "k", "")),
        (("SET", "k", "1"), ("INCR", "k")),
        (("SET", "k", "x"), ("INCR", "k")),
        (("SET", "k", "1"), ("INCRBYFLOAT", "k", "1")),
        ((), ("GETDEL", "k")),
        (("SET", "k", "v"), ("GETDEL", "k")),
        (("SET", "k", "v"), ("MSETNX", "k", "1", "j", "2")),
        ((), ("MSET", "j", "1", "k", "2")),
        (("SET", "k", "v"), ("GETSET", "k", "v")),
    ],
)
def test_watch_is_invalidated_by_effective_writes(pair: Pair, setup: Cmd, write: Cmd) -> None:
    if setup:
        pair.same(*setup)
    pair.same("WATCH", "k")
    for port in (pair.ours.sock.getpeername()[1], pair.theirs.sock.getpeername()[1]):
        with RawConnection(port) as other:
            other.call(*write)
    run(pair, ("MULTI",), ("PING",), ("EXEC",))


# ----------------------------------------------------------------------------- keyspace events

_sync_tokens = itertools.count()


class EventStream:
    """A subscriber to every keyspace/keyevent channel on one server."""

    def __init__(self, server: ServerProcess) -> None:
        self.conn = server.raw()
        self.conn.call("PSUBSCRIBE", "__key*__:*")

    def take(self) -> list[bytes]:
        """Every notification received before the reply to a PING sent now."""
        token = b"sync-%d" % next(_sync_tokens)
        self.conn.send(encode_command("PING", token))
        pong = b"*2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(token), token)
        out: list[bytes] = []
        while (reply := self.conn.read_reply()) != pong:
            out.append(reply)
        return out

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def events(dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[tuple[EventStream, EventStream]]:
    """Notifications for all classes (``KEA`` + new + keymiss) on both servers, switched off afterwards."""
    servers = (dumpling_server, redis_server)
    for server in servers:
        with server.raw() as conn:
            conn.call("FLUSHALL")
            assert conn.call("CONFIG", "SET", "notify-keyspace-events", "KEAnm") == b"+OK\r\n"
    streams = (EventStream(dumpling_server), EventStream(redis_server))
    yield streams
    for stream in streams:
        stream.close()
    for server in servers:
        with server.raw() as conn:
            conn.call("CONFIG", "SET", "notify-keyspace-events", "")


def assert_same_events(pair: Pair, streams: tuple[EventStream, EventStream], commands: Sequence[Cmd]) -> None:
    for cmd in commands:
        pair.same(*cmd)
    ours, theirs = streams[0].take(), streams[1].take()
    assert ours == theirs, f"{commands!r}\n  dumpling: {ours!r}\n  redis:    {theirs!r}"


STRING_EVENT_CASES: list[list[Cmd]] = [
    [("SET", "k", "v"), ("SET", "k", "w")],
    [("SET", "k", "v", "EX", "100"), ("SET", "k", "v", "KEEPTTL")],
    [("SET", "k", "v", "NX"), ("SET", "k", "v", "NX"), ("SET", "j", "v", "XX")],
    [("SET", "k", "v", "GET"), ("SET", "k", "w", "GET")],
    [("SET", "k", "v", "EX", "0")],
    [("SETNX", "k", "v"), ("SETNX", "k", "v"), ("SETEX", "k", "100", "v"), ("PSETEX", "j", "1000", "v")],
    [("SET", "k", "v"), ("GETEX", "k"), ("GETEX", "k", "EX", "100"), ("GETEX", "k", "PERSIST"),
     ("GETEX", "k", "PERSIST"), ("GETEX", "k", "PXAT", "1"), ("GETEX", "k")],
    [("GETDEL", "k"), ("SET", "k", "v"), ("GETDEL", "k")],
    [("GETSET", "k", "a"), ("GETSET", "k", "b")],
    [("MSET", "a", "1", "b", "2", "a", "3"), ("MSETNX", "a", "1", "c", "2"), ("MSETNX", "c", "1", "d", "2", "c", "3")],
    [("MGET", "a", "b"), ("STRLEN", "a"), ("GETRANGE", "a", "0", "1"), ("LCS", "a", "b")],
    [("INCR", "n"), ("INCRBY", "n", "5"), ("DECR", "n"), ("DECRBY", "n", "2"), ("INCRBYFLOAT", "n", "1.5"),
     ("INCRBYFLOAT", "n", "inf"), ("INCR", "n")],
    [("APPEND", "a", "x"), ("APPEND", "a", "y"), ("APPEND", "a", "")],
    [("SETRANGE", "s", "0", ""), ("SETRANGE", "s", "2", "x"), ("SETRANGE", "s", "0", ""), ("SETRANGE", "s", "0", "y")],
    [("SET", "k", "v", "PXAT", "1"), ("GET", "k"), ("SET", "j", "v", "EXAT", "1"), ("INCR", "j")],
    [("SET", "k", "v", "PX", "1"), ("DEBUG", "SLEEP", "0.01"), ("SET", "k", "w")],
]


@pytest.mark.parametrize("commands", STRING_EVENT_CASES, ids=lambda cmds: " / ".join(str(c[0]) for c in cmds))
def test_keyspace_events(pair: Pair, events: tuple[EventStream, EventStream], commands: list[Cmd]) -> None:
    assert_same_events(pair, events, commands)


# ----------------------------------------------------------------------------- random sequences

_KEYS = st.sampled_from(["a", "b"])
_NUMBER_TEXT = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?[0-9]{1,22}(\.[0-9]{0,22})?([eE]-?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["inf", "-inf", "nan", "1e", "0x1p3", "-0x1.8p-2", "1e4931", "-1e-4950", " 1", "", "abc",
                     "1.5e3", "0x10", ".5", "5.", "+1", "-0", "1e400"]),
)
_PAYLOAD = st.one_of(st.binary(max_size=12), _NUMBER_TEXT)
_INDEX = st.one_of(st.integers(-40, 40), st.sampled_from([-(2**63), 2**63 - 1, 10**6, -(10**6)]))
_COMMAND = st.one_of(
    st.tuples(st.just("SET"), _KEYS, _PAYLOAD),
    st.tuples(st.just("INCRBYFLOAT"), _KEYS, _NUMBER_TEXT),
    st.tuples(st.just("INCRBY"), _KEYS, st.integers(-(2**64), 2**64).map(str)),
    st.tuples(st.just("GETRANGE"), _KEYS, _INDEX, _INDEX),
    st.tuples(st.just("SETRANGE"), _KEYS, st.integers(-2, 48), _PAYLOAD),
    st.tuples(st.just("APPEND"), _KEYS, _PAYLOAD),
    st.tuples(st.just("GET"), _KEYS),
    st.tuples(st.just("STRLEN"), _KEYS),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(_COMMAND, max_size=25))
def test_random_string_sequences(pairs: Pair, commands: list[Cmd]) -> None:
    pairs.both("FLUSHALL")
    for cmd in commands:
        pairs.same(*cmd)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(_COMMAND, max_size=40))
def test_random_string_sequences_long(pair: Pair, commands: list[Cmd]) -> None:
    pair.both("FLUSHALL")
    for cmd in commands:
        pair.same(*cmd)


# ----------------------------------------------------------------------------- command table

STRING_COMMANDS = ("get set getex getdel getset mget mset setnx setex psetex append strlen incr decr incrby decrby "
                   "incrbyfloat getrange substr setrange lcs").split()


@pytest.mark.parametrize("name", STRING_COMMANDS)
def test_command_info(pairs: Pair, name: str) -> None:
    pairs.same("COMMAND", "INFO", name)


def test_command_info_msetnx_follows_7_2(pairs: Pair) -> None:
    """7.0 tags MSETNX multi_shard/agg_min; 7.2 dropped the tips (MSETNX is not multi-shard safe)."""
    ours, theirs = pairs.both("COMMAND", "INFO", "msetnx")
    tips = b"$26\r\nrequest_policy:multi_shard\r\n$23\r\nresponse_policy:agg_min\r\n"
    empty_set = b"~0\r\n" if pairs.resp == 3 else b"*0\r\n"
    two_tips = (b"~2\r\n" if pairs.resp == 3 else b"*2\r\n") + tips
    assert two_tips in theirs
    assert ours == theirs.replace(two_tips, empty_set)


# ----------------------------------------------------------------------------- read/write lookups


def _info_field(conn: RawConnection, section: str, name: str) -> int:
    info = conn.call("INFO", section).decode()
    fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
    return int(fields[name])


def _hits_misses(conn: RawConnection) -> tuple[int, int]:
    return _info_field(conn, "stats", "keyspace_hits"), _info_field(conn, "stats", "keyspace_misses")


def _dirty(conn: RawConnection) -> int:
    return _info_field(conn, "persistence", "rdb_changes_since_last_save")


KEYSPACE_STAT_CASES: list[list[Cmd]] = [
    [("GET", "k"), ("SET", "k", "v"), ("GET", "k"), ("MGET", "k", "x", "k"), ("STRLEN", "k"), ("STRLEN", "x")],
    [("SET", "k", "v", "GET"), ("SET", "k", "v", "NX"), ("SET", "k", "v", "XX", "GET"), ("SETNX", "k", "v")],
    [("GETEX", "k"), ("SET", "k", "v"), ("GETEX", "k", "EX", "10"), ("GETDEL", "k"), ("GETSET", "k", "v"),
     ("GETSET", "k", "w")],
    [("INCR", "n"), ("INCRBYFLOAT", "n", "1"), ("APPEND", "n", "1"), ("SETRANGE", "n", "0", "2"),
     ("MSET", "a", "1"), ("MSETNX", "b", "1")],
    [("GETRANGE", "x", "0", "1"), ("SET", "x", "abc"), ("GETRANGE", "x", "0", "1"), ("SUBSTR", "x", "0", "1"),
     ("LCS", "x", "y"), ("LCS", "x", "x", "LEN")],
    [("SET", "k", "v", "EX", "100"), ("GETEX", "k", "PERSIST"), ("GETEX", "k", "PERSIST"), ("GETEX", "k", "PX", "900000"),
     ("SETRANGE", "k", "0", ""), ("APPEND", "k", ""), ("MSET", "a", "1", "b", "2", "a", "3"), ("GETDEL", "a"),
     ("GETDEL", "a"), ("INCRBYFLOAT", "f", "inf"), ("SET", "k", "v", "NX")],
]


@pytest.mark.parametrize("commands", KEYSPACE_STAT_CASES, ids=lambda cmds: " / ".join(str(c[0]) for c in cmds))
def test_keyspace_hits_and_misses(pair: Pair, commands: list[Cmd]) -> None:
    """Read lookups (GET-like) count hits/misses; write lookups (SET, INCR, ...) do not.
    The dirty counter (changes since the last save) moves by the same amounts too."""
    pair.same("CONFIG", "RESETSTAT")
    dirty_before = _dirty(pair.ours), _dirty(pair.theirs)
    for cmd in commands:
        pair.same(*cmd)
    assert _hits_misses(pair.ours) == _hits_misses(pair.theirs)
    assert _dirty(pair.ours) - dirty_before[0] == _dirty(pair.theirs) - dirty_before[1]
