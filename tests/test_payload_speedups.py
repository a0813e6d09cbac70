"""The C speedups (``dumpling.payload._speedups``) against the pure-Python bulk readers and writers.

Every C function has a pure-Python twin in ``bulk`` (``*_py``); both get the same
inputs and must give the same values, the same bytes and the same error class:
directly, through ``decode_payload`` / ``encode_payload`` with ``bulk.use_speedups``
switched, and on mutated real payloads (Hypothesis).  Reference counts and memory
are checked over loops, success and error paths alike.
"""

from __future__ import annotations

import gc
import math
import os
import random
import struct
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpling import accel, keytable
from dumpling.datatypes import HashValue, ListValue, SetValue, ZSetValue
from dumpling.payload import CodecOptions, PayloadError, bulk, decode_payload, encode_payload
from dumpling.payload.envelope import reseal
from dumpling.payload.primitives import append_len, append_string, read_string
from tests.fuzzing import examples
from tests.mutations import mutate

try:
    from dumpling.payload import _speedups
except ImportError:  # not built: the differential tests skip, CI fails below
    _speedups = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_speedups is None, reason="dumpling.payload._speedups is not built")
C: Any = _speedups
RNG_SEED = 20240611


def test_the_extension_is_built_in_ci() -> None:
    """Under CI=true a broken C build must fail, not fall back silently."""
    if os.environ.get("CI") != "true":
        pytest.skip("only enforced when CI=true")
    assert _speedups is not None, "dumpling.payload._speedups failed to import (was the C extension built?)"
    if not accel.PURE_PAYLOAD:
        assert bulk.ACCELERATED


@pytest.fixture
def restore_binding() -> Iterator[None]:
    was = bulk.ACCELERATED
    yield
    bulk.use_speedups(was)


# ---------------------------------------------------------------------------
# inputs

BOUNDARY_INTS = [
    0, 1, -1, 9, -9, 10, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769,
    65535, 65536, 2147483647, 2147483648, -2147483648, -2147483649, 9999999999, -9999999999,
    99999999999, 4294967295, 9223372036854775807, -9223372036854775808,
]  # fmt: skip
NOT_CANONICAL = [b"-", b"-0", b"00", b"01", b"+1", b" 1", b"1 ", b"1a", b"-a", b"0x10", b"1_0", b"--1", b"9" * 12]


def element(rng: random.Random) -> bytes:
    """A string from one of the shapes that take different writer/reader paths."""
    kind = rng.randrange(12)
    if kind == 0:
        return b"%d" % rng.choice(BOUNDARY_INTS)
    if kind == 1:
        return b"%d" % rng.randrange(-(10**12), 10**12)
    if kind == 2:
        return rng.choice(NOT_CANONICAL)
    if kind == 3:
        return b""
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))  # binary, NULs included
    if kind == 5:
        return b"ab" * rng.randrange(11, 200)  # long and compressible (LZF)
    if kind == 6:
        return os.urandom(rng.randrange(21, 90))  # long, LZF gives up
    if kind == 7:
        n = rng.choice([63, 64, 16383, 16384, 16385, 20, 21, 11, 12])
        return (b"-" if rng.random() < 0.2 else b"x") + os.urandom(n - 1)  # around the length-form boundaries
    if kind == 8:
        return b"member:%d" % rng.randrange(10**6)
    if kind == 9:
        return bytes(rng.choice(b"0123456789-") for _ in range(rng.randrange(1, 13)))
    if kind == 10:
        return b"\xff" * rng.randrange(1, 70)
    return b"field:%06d" % rng.randrange(10**6)


def elements(rng: random.Random, count: int) -> list[bytes]:
    """``count`` elements, sometimes in long runs of one length (the Python reader's stride path)."""
    out: list[bytes] = []
    while len(out) < count:
        if rng.random() < 0.3:
            width = rng.randrange(1, 30)
            start = rng.randrange(10**6)
            out += [b"k%0*d" % (width, start + i) for i in range(rng.randrange(16, 300))]
        else:
            out.append(element(rng))
    return out[:count]


def strings_body(items: list[bytes], compress: bool) -> bytes:
    body = bytearray()
    for item in items:
        append_string(body, item, compress)
    return bytes(body)


SCORES = [0.0, -0.0, 1.0, -1.5, 1e300, -1e-300, 5e-324, math.inf, -math.inf, math.nan, 0.1, 2.0**53]


def score_bits(values: list[float]) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """("ok", result) or ("error", exception class, message) for comparing two implementations."""
    try:
        return "ok", fn(*args)
    except PayloadError as exc:
        return "error", (type(exc), exc.message)


# ---------------------------------------------------------------------------
# readers, directly


@needs_c
@pytest.mark.parametrize("compress", [True, False])
def test_read_records_match_python(compress: bool) -> None:
    rng = random.Random(RNG_SEED)
    for _ in range(60):
        items = elements(rng, rng.choice([1, 2, 17, 300, 2500]))
        prefix = os.urandom(rng.randrange(0, 5))
        body = strings_body(items, compress)
        buf = prefix + body + os.urandom(rng.randrange(0, 12))
        pos, end = len(prefix), len(prefix) + len(body)
        for shape in ("s", "ss"):
            count = len(items) // len(shape)
            got = C.read_records(buf, pos, end, count, shape)
            assert got == bulk.read_records_py(buf, pos, end, count, shape)
            flat = [v for record in zip(*got[0], strict=True) for v in record]
            assert flat == items[: count * len(shape)]
        if len(items) % 2 == 0:
            pairs = len(items) // 2
            table, at = C.read_dict(buf, pos, end, pairs)
            ref_table, ref_at = bulk.read_dict_py(buf, pos, end, pairs)
            assert at == ref_at == end
            assert list(table.items()) == list(ref_table.items())  # same values, same order
            # into a big hash's table (both tables, both readers): the same pairs
            for make in (keytable.KeyTable, keytable.PyKeyTable):
                for read in (C.read_dict, bulk.read_dict_py):
                    into = make()
                    filled, at = read(buf, pos, end, pairs, into)
                    assert filled is into and at == end
                    assert sorted(into.items()) == sorted(ref_table.items())
        members, at = C.read_set(buf, pos, end, len(items))
        assert (members, at) == bulk.read_set_py(buf, pos, end, len(items)) == (set(items), end)


@needs_c
def test_member_and_double_records_match_python() -> None:
    rng = random.Random(RNG_SEED + 1)
    for _ in range(40):
        items = elements(rng, rng.choice([1, 20, 400]))
        scores = [rng.choice(SCORES) if rng.random() < 0.5 else rng.uniform(-1e9, 1e9) for _ in items]
        body = bytearray()
        for member, score in zip(items, scores, strict=True):
            append_string(body, member, rng.random() < 0.5)
            body += struct.pack("<d", score)
        buf = bytes(body) + b"\x00" * 10
        (members, read_scores), pos = C.read_records(buf, 0, len(body), len(items), "sd")
        (ref_members, ref_scores), ref_pos = bulk.read_records_py(buf, 0, len(body), len(items), "sd")
        assert members == ref_members == items
        assert score_bits(read_scores) == score_bits(ref_scores) == score_bits(scores)  # NaN and -0.0 too
        assert pos == ref_pos == len(body)
        assert all(type(s) is float for s in read_scores)


@needs_c
def test_int_encoded_strings_read_as_decimal_text() -> None:
    values = [-128, -1, 0, 127, -32768, -129, 128, 32767, -(2**31), 2**31 - 1, -32769, 32768]
    body = bytearray()
    for v in values:
        if -128 <= v <= 127:
            body += b"\xc0" + struct.pack("<b", v)
        elif -32768 <= v <= 32767:
            body += b"\xc1" + struct.pack("<h", v)
        else:
            body += b"\xc2" + struct.pack("<i", v)
    buf = bytes(body)
    expected = [b"%d" % v for v in values]
    assert C.read_records(buf, 0, len(buf), len(values), "s") == ([expected], len(buf))
    assert bulk.read_records_py(buf, 0, len(buf), len(values), "s") == ([expected], len(buf))


@needs_c
def test_every_length_form_is_read() -> None:
    items = [b"a" * n for n in (0, 1, 63, 64, 300, 16383, 16384, 70000)]
    body = bytearray()
    for item in items:
        append_len(body, len(item))
        body += item
    # the 32-bit and 64-bit forms spelled out even for small lengths (legal, if unusual)
    body += b"\x80" + struct.pack(">I", 3) + b"abc" + b"\x81" + struct.pack(">Q", 2) + b"xy"
    buf = bytes(body)
    got = C.read_records(buf, 0, len(buf), len(items) + 2, "s")
    assert got == bulk.read_records_py(buf, 0, len(buf), len(items) + 2, "s")
    assert got == ([[*items, b"abc", b"xy"]], len(buf))


CRAFTED = [
    b"",  # nothing
    b"\x05abc",  # raw string past end
    b"\x04abc",  # raw string one byte short
    b"\x41\x00" + b"a" * 255,  # 14-bit length one byte short
    b"\x80\x00\x00\x01\x00" + b"a" * 255,  # 32-bit length one byte short
    b"\x40",  # 14-bit length header cut
    b"\x41\x00" + b"a" * 10,  # 14-bit length past end
    b"\x80\x00\x00",  # 32-bit header cut
    b"\x80\xff\xff\xff\xff" + b"a" * 4,  # 32-bit length past end
    b"\x81\xff\xff\xff\xff\xff\xff\xff\xff",  # 2^64 - 1: must not wrap
    b"\x81\x7f\xff\xff\xff\xff\xff\xff\xff",  # 2^63 - 1
    b"\x81\x00\x00\x00\x00\x00\x00\x00",  # 64-bit header cut
    b"\x82\x00",  # unknown length encoding
    b"\xbf\x00",  # unknown length encoding
    b"\xc0",  # INT8 cut
    b"\xc1\x00",  # INT16 cut
    b"\xc2\x00\x00\x00",  # INT32 cut
    b"\xc3\x05\x0a\x04abcd",  # LZF: compressed data cut
    b"\xc3\x03\x0a\x00abc",  # LZF: corrupt stream / wrong size
    b"\xc3\x81\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # LZF: huge compressed length
    b"\xc3",  # LZF header cut
    b"\xc4\x00",  # unknown string encoding
    b"\xff",  # unknown string encoding
]


@needs_c
@pytest.mark.parametrize("crafted", CRAFTED, ids=[c[:6].hex() or "empty" for c in CRAFTED])
@pytest.mark.parametrize("shape", ["s", "ss", "sd"])
def test_crafted_records_give_the_python_error(crafted: bytes, shape: str) -> None:
    for lead in (b"", b"\x01a"):  # the bad record first, or after a good one
        body = lead + crafted
        buf = body + b"\x00" * 20  # bytes after end must never be read
        count = 2 if lead else 1
        expected = outcome(bulk.read_records_py, buf, 0, len(body), count, shape)
        assert outcome(C.read_records, buf, 0, len(body), count, shape) == expected
        assert expected[0] == "error"
        for c_fn, py_fn in ((C.read_dict, bulk.read_dict_py), (C.read_set, bulk.read_set_py)):
            assert outcome(c_fn, buf, 0, len(body), count)[0] == outcome(py_fn, buf, 0, len(body), count)[0]


@needs_c
def test_counts_and_positions_at_the_edges() -> None:
    buf = b"\x01a\x01b" + b"\x00" * 10
    for fn in (C.read_records, bulk.read_records_py):
        assert fn(buf, 4, 4, 0, "ss") == ([[], []], 4)
        assert fn(buf, 9, 4, 0, "s") == ([[]], 9)  # nothing to read: pos is returned as is
        with pytest.raises(PayloadError):
            fn(buf, 0, 4, 3, "s")
        with pytest.raises(PayloadError):
            fn(buf, 5, 4, 1, "s")
        with pytest.raises(PayloadError):
            fn(buf, 0, 4, 1, "sd")
    with pytest.raises(PayloadError):
        C.read_records(buf, 0, 4, sys.maxsize, "s")  # refused before anything is allocated
    with pytest.raises(PayloadError):
        C.read_dict(buf, 0, 4, sys.maxsize)
    with pytest.raises(PayloadError):
        C.read_set(buf, 0, 4, sys.maxsize)
    assert C.read_dict(buf, 0, 4, 1) == ({b"a": b"b"}, 4)
    assert C.read_set(buf, 0, 4, 2) == ({b"a", b"b"}, 4)


@needs_c
def test_bad_arguments_are_programming_errors() -> None:
    buf = b"\x01a" * 4
    with pytest.raises(TypeError):
        C.read_records(bytearray(buf), 0, 8, 1, "s")
    with pytest.raises(TypeError):
        C.read_records(buf, 0, 8, 1)
    with pytest.raises(TypeError):
        C.read_records(buf, "0", 8, 1, "s")
    with pytest.raises(ValueError):
        C.read_records(buf, 0, 9, 1, "s")  # end past the buffer
    with pytest.raises(ValueError):
        C.read_records(buf, -1, 8, 1, "s")
    with pytest.raises(ValueError):
        C.read_records(buf, 0, 8, -1, "s")
    for shape in ("", "x", "sx", "s" * 9, "é"):
        with pytest.raises(ValueError):
            C.read_records(buf, 0, 8, 1, shape)
    with pytest.raises(OverflowError):
        C.read_set(buf, 0, 8, 1 << 70)
    with pytest.raises(TypeError):
        C.append_strings(b"", [b"a"], True)  # out must be a bytearray
    with pytest.raises(TypeError):
        C.append_mapping(bytearray(), [(b"a", b"b")], True)
    with pytest.raises(TypeError):
        C.append_strings(bytearray(), [b"a", 1], True)
    with pytest.raises(TypeError):
        C.append_strings(bytearray(), 5, True)
    with pytest.raises(ValueError):
        C.append_scored(bytearray(), [(1.0, b"a", b"b")], True)
    with pytest.raises(TypeError):
        C.append_scored(bytearray(), [("x", b"a")], True)
    out = bytearray(b"keep")
    with pytest.raises(TypeError):
        C.append_strings(out, [b"a", None], True)
    assert out == b"keep"  # nothing written on failure


# ---------------------------------------------------------------------------
# writers, directly


class Sub(bytes):
    pass


@needs_c
@pytest.mark.parametrize("compress", [True, False])
def test_writers_match_python(compress: bool) -> None:
    rng = random.Random(RNG_SEED + 2)
    for _ in range(40):
        items = elements(rng, rng.choice([0, 1, 5, 300, 3000]))
        odd = [bytearray(b"12"), Sub(b"-7"), Sub(b"x" * 30), bytearray(b"y" * 70)]  # the callback path
        reference = bytearray(b"head")
        for item in items:
            append_string(reference, item, compress)
        members = set(items)
        for source in (items, members, [*items, *odd], "iterator", "generator"):
            a, b = bytearray(b"head"), bytearray(b"head")
            if source == "iterator":
                C.append_strings(a, iter(items), compress)
                bulk.append_strings_py(b, iter(items), compress)
            elif source == "generator":
                C.append_strings(a, (x for x in items), compress)
                bulk.append_strings_py(b, (x for x in items), compress)
            else:
                C.append_strings(a, source, compress)
                bulk.append_strings_py(b, source, compress)
            assert a == b
        a = bytearray(b"head")
        C.append_strings(a, items, compress)
        assert a == reference
        fields = dict(zip(items[::2], items[1::2], strict=False))
        a, b = bytearray(b"\x04"), bytearray(b"\x04")
        C.append_mapping(a, fields, compress)
        bulk.append_mapping_py(b, fields, compress)
        assert a == b
        pairs = [(rng.choice(SCORES), m) for m in items]
        a, b = bytearray(), bytearray()
        C.append_scored(a, pairs, compress)
        bulk.append_scored_py(b, pairs, compress)
        assert a == b


@needs_c
def test_writer_int_encoding_boundaries() -> None:
    items = [b"%d" % v for v in BOUNDARY_INTS] + NOT_CANONICAL
    for compress in (True, False):
        a, b = bytearray(), bytearray()
        C.append_strings(a, items, compress)
        for item in items:
            append_string(b, item, compress)
        assert a == b
        assert C.read_records(bytes(a), 0, len(a), len(items), "s") == ([items], len(a))


@needs_c
def test_written_bodies_read_back() -> None:
    rng = random.Random(RNG_SEED + 3)
    for _ in range(30):
        items = elements(rng, rng.choice([1, 100, 2000]))
        for compress in (True, False):
            out = bytearray()
            C.append_strings(out, items, compress)
            buf = bytes(out)
            assert C.read_records(buf, 0, len(buf), len(items), "s") == ([items], len(buf))


# ---------------------------------------------------------------------------
# the whole codec, both ways


def _values(rng: random.Random) -> list[Any]:
    values: list[Any] = []
    for size in (1, 3, 129, 513, 3000):
        items = list(dict.fromkeys(elements(rng, size)))
        values.append(SetValue(items, "hashtable"))
        values.append(SetValue(items[:120], "listpack"))
        ints = list(dict.fromkeys(b"%d" % rng.randrange(-(10**10), 10**10) for _ in range(size)))
        values.append(SetValue(ints, "hashtable"))
        values.append(SetValue(ints[:500], "intset"))
        values.append(HashValue(dict(zip(items, reversed(items), strict=True)), None, "hashtable"))
        values.append(HashValue(dict(zip(items[:100], items[:100], strict=True)), None, "listpack"))
        pairs = [(m, rng.choice(SCORES[:9]) if rng.random() < 0.3 else rng.uniform(-1e6, 1e6)) for m in items]
        values.append(ZSetValue.from_pairs(pairs, "skiplist"))
        values.append(ListValue(elements(rng, size), "quicklist"))
    return values


def _snapshot(value: Any) -> Any:
    if isinstance(value, SetValue):
        return ("set", value.encoding, value.members, value.ordered() if value.encoding != "hashtable" else None)
    if isinstance(value, HashValue):
        return ("hash", value.encoding, list(value.fields.items()), value.field_expires)
    if isinstance(value, ZSetValue):
        return ("zset", value.encoding, [(struct.pack("<d", s), m) for s, m in value.index])
    if isinstance(value, ListValue):
        return ("list", value.encoding, list(value.items))
    return value


OPTION_SETS = [
    CodecOptions(),
    CodecOptions(rdbcompression=False),
    CodecOptions(sanitize_payload="yes"),
    CodecOptions(hash_max_listpack_entries=0, set_max_intset_entries=0, hash_max_listpack_value=8),
    CodecOptions(hash_max_listpack_entries=100000, set_max_intset_entries=100000, set_max_listpack_entries=100000),
]


@needs_c
@pytest.mark.usefixtures("restore_binding")
def test_codec_gives_the_same_bytes_and_values_both_ways() -> None:
    rng = random.Random(RNG_SEED + 4)
    for value in _values(rng):
        for version in (6, 9, 10, 12):
            for options in OPTION_SETS[:2]:
                bulk.use_speedups(True)
                fast = encode_payload(value, version, options)
                bulk.use_speedups(False)
                pure = encode_payload(value, version, options)
                assert fast == pure, (type(value), value.encoding, version)
                for decode_options in OPTION_SETS:
                    bulk.use_speedups(True)
                    got = outcome(lambda p, o: _snapshot(decode_payload(p, o).value), pure, decode_options)
                    bulk.use_speedups(False)
                    expected = outcome(lambda p, o: _snapshot(decode_payload(p, o).value), pure, decode_options)
                    assert got == expected


def _plain_body(type_byte: int, items: list[bytes], count: int | None = None) -> bytes:
    body = bytearray((type_byte,))
    append_len(body, len(items) if count is None else count)
    for item in items:
        append_string(body, item, True)
    return bytes(body)


@needs_c
@pytest.mark.usefixtures("restore_binding")
def test_duplicates_and_encodings_are_decided_the_same_way() -> None:
    cases = []
    members = [b"m%d" % i for i in range(600)]
    cases.append(_plain_body(2, members))
    cases.append(_plain_body(2, [*members, b"m7"]))  # duplicate in a hashtable set
    cases.append(_plain_body(2, [b"1", b"2", b"1"]))  # duplicate in an intset-sized set
    pairs = [x for i in range(600) for x in (b"f%d" % i, b"v%d" % i)]
    cases.append(_plain_body(4, pairs))
    cases.append(_plain_body(4, [*pairs, b"f9", b"again"]))  # duplicate field, hashtable from the start
    cases.append(_plain_body(4, [b"a", b"1", b"a", b"2"]))  # duplicate inside a listpack
    cases.append(_plain_body(4, [b"a", b"1", b"x" * 100, b"2", b"a", b"3"]))  # duplicate after the conversion
    cases.append(_plain_body(4, [b"a", b"1", b"a", b"2", b"x" * 100, b"3"]))  # listpack duplicate then conversion
    cases.append(_plain_body(4, [b"x" * 100, b"1", b"b", b"2"]))  # too long at the first pair
    cases.append(_plain_body(4, pairs[:-1], 600))  # truncated
    cases.append(_plain_body(2, members[:-1], 600))  # truncated
    cases.append(_plain_body(1, members, 601))  # truncated list
    for body in cases:
        payload = reseal(body + b"\x0a\x00" + bytes(8))
        for options in OPTION_SETS:
            bulk.use_speedups(True)
            got = outcome(lambda p, o: _snapshot(decode_payload(p, o).value), payload, options)
            bulk.use_speedups(False)
            expected = outcome(lambda p, o: _snapshot(decode_payload(p, o).value), payload, options)
            assert got == expected


def test_pure_switch() -> None:
    was = bulk.ACCELERATED
    try:
        assert bulk.use_speedups(False) is False
        assert bulk.read_records is bulk.read_records_py
        assert bulk.append_strings is bulk.append_strings_py
        assert bulk.use_speedups(True) is (_speedups is not None)
        if _speedups is not None:
            assert bulk.read_records is _speedups.read_records
    finally:
        bulk.use_speedups(was)


def test_environment_forces_the_pure_path() -> None:
    import subprocess

    code = "from dumpling.payload import bulk; print(bulk.ACCELERATED, bulk.read_set is bulk.read_set_py)"
    env = dict(os.environ, DUMPLING_PURE_PAYLOAD="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


# ---------------------------------------------------------------------------
# fuzz: mutated real bodies through both readers


def _seed_bodies() -> list[tuple[bytes, int, str]]:
    """(body, count, reader) of real type 1/2/4/5 bodies (count already read)."""
    rng = random.Random(RNG_SEED + 5)
    seeds = []
    for size in (3, 40):
        items = list(dict.fromkeys(elements(rng, size)))
        body = bytearray()
        bulk.append_strings_py(body, items, True)
        seeds.append((bytes(body), len(items), "s"))
        seeds.append((bytes(body), len(items), "set"))
        if len(items) % 2:
            items = items[:-1]
        body = bytearray()
        bulk.append_mapping_py(body, dict(zip(items[::2], items[1::2], strict=True)), False)
        seeds.append((bytes(body), len(items) // 2, "ss"))
        seeds.append((bytes(body), len(items) // 2, "dict"))
        body = bytearray()
        bulk.append_scored_py(body, [(rng.choice(SCORES), m) for m in items], True)
        seeds.append((bytes(body), len(items), "sd"))
    return seeds


SEED_BODIES = _seed_bodies()
INTERESTING = [0x00, 0x01, 0x3F, 0x40, 0x41, 0x7F, 0x80, 0x81, 0x82, 0xBF, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xFF]


def _read(reader: str, fast: bool, buf: bytes, end: int, count: int) -> tuple[str, Any]:
    if reader in ("s", "ss", "sd"):
        fn = C.read_records if fast else bulk.read_records_py
        result = outcome(fn, buf, 0, end, count, reader)
        if result[0] == "ok" and reader == "sd":
            (members, scores), pos = result[1]
            return "ok", (members, score_bits(scores), pos)
        return result
    if reader == "set":
        return outcome(C.read_set if fast else bulk.read_set_py, buf, 0, end, count)
    result = outcome(C.read_dict if fast else bulk.read_dict_py, buf, 0, end, count)
    return ("ok", (list(result[1][0].items()), result[1][1])) if result[0] == "ok" else result


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[bytes, int, int, str]:
    body, count, reader = draw(st.sampled_from(SEED_BODIES))
    data = bytearray(body)
    mutate(draw, data, INTERESTING, overwrite_max=10)
    count += draw(st.sampled_from([0, 0, 0, -1, 1, 5]))
    tail = draw(st.binary(max_size=12))  # bytes past end: never read
    return bytes(data) + tail, len(data), max(count, 0), reader


@needs_c
@settings(max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated_bodies())
def test_fuzz_c_readers_agree_with_python(case: tuple[bytes, int, int, str]) -> None:
    buf, end, count, reader = case
    fast = _read(reader, True, buf, end, count)
    pure = _read(reader, False, buf, end, count)
    if reader in ("set", "dict") and fast[0] == pure[0] == "error":
        assert fast[1][0] is pure[1][0]  # the detail may differ: which check fires first
        return
    assert fast[0] == pure[0], (fast, pure)
    if fast[0] == "ok":
        assert fast == pure
    else:
        assert fast[1][0] is pure[1][0] and fast[1][1] == pure[1][1]


@needs_c
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated_bodies(), options=st.sampled_from(OPTION_SETS))
def test_fuzz_whole_payloads_both_ways(case: tuple[bytes, int, int, str], options: CodecOptions) -> None:
    buf, end, count, reader = case
    type_byte = {"s": 1, "set": 2, "ss": 4, "dict": 4, "sd": 5}[reader]
    body = bytearray((type_byte,))
    append_len(body, count)
    body += buf[:end]
    payload = reseal(bytes(body) + b"\x0a\x00" + bytes(8))
    fast, pure = _decode_both_ways(payload, options)
    if fast[0] == "ok" or pure[0] == "ok":
        assert fast == pure
    else:
        assert fast[1] == pure[1]


# ---------------------------------------------------------------------------
# the envelope of small payloads: open_payload and seal


def _small_payloads() -> list[bytes]:
    """Valid small payloads of every type open_payload reads a body for, LZF ones included."""
    rng = random.Random(RNG_SEED + 9)
    text = b"abcabcabcabcabcabcabcabcabcabcabc-" * 3  # compressible: an LZF rdbString
    values: list[Any] = [b"", b"7", b"-129", b"2147483648", b"x" * 20, text, bytes(rng.randrange(256) for _ in range(300))]
    values.append(HashValue({b"f%d" % i: b"value-%d" % i * 3 for i in range(10)}, None, "listpack"))
    values.append(SetValue([b"member-%d" % i for i in range(12)], "listpack"))
    values.append(SetValue([b"%d" % i for i in range(-5, 40)], "intset"))
    values.append(ZSetValue.from_pairs([(b"m%d" % i, i / 3) for i in range(15)], "listpack"))
    values.append(ListValue([b"item-%d" % i for i in range(20)], "listpack"))
    payloads = []
    for value in values:
        for version in (6, 9, 10, 12):
            payloads.append(encode_payload(value, version))
    return payloads


SMALL_PAYLOADS = _small_payloads()


def _decode_both_ways(payload: bytes, options: CodecOptions) -> tuple[tuple[str, Any], tuple[str, Any]]:
    was = bulk.ACCELERATED
    try:
        bulk.use_speedups(True)
        fast = outcome(lambda p: _snapshot(decode_payload(p, options).value), payload)
        bulk.use_speedups(False)
        pure = outcome(lambda p: _snapshot(decode_payload(p, options).value), payload)
    finally:
        bulk.use_speedups(was)
    return fast, pure


@needs_c
def test_small_payloads_open_as_python_reads_them() -> None:
    lzf_seen = 0
    for payload in SMALL_PAYLOADS:
        assert C.open_payload(payload, 12, True, bytes(256)) is not None  # the envelope passes
        lzf_seen += payload[1] == 0xC3
        for options in (CodecOptions(), CodecOptions(skip_checksum=True), CodecOptions(sanitize_payload="yes")):
            fast, pure = _decode_both_ways(payload, options)
            assert fast == pure and fast[0] == "ok"
    assert lzf_seen  # the C LZF expander was exercised


@needs_c
def test_open_payload_reads_a_one_node_list() -> None:
    """Kind 2 (type 18): the rdbString after ``01 02`` (one PACKED node), LZF or not, and where it
    ends; any other node count or container is left to the Python reader (body None)."""
    mask = bytes([2]) * 256
    lists = [ListValue([b"item-%d" % i for i in range(n)], "listpack") for n in (1, 20, 200)]
    for value in lists:
        payload = encode_payload(value, 10)
        assert payload[:3] == b"\x12\x01\x02"
        type_byte, version, body, end = C.open_payload(payload, 12, True, mask)
        assert (type_byte, version) == (18, 10)
        assert read_string(payload, 3, len(payload) - 10) == (body, end)
    many = encode_payload(ListValue([b"x" * 5000 for _ in range(4)], "quicklist"), 10)
    assert many[1] != 1 and C.open_payload(many, 12, True, mask)[2:] == (None, 0)
    plain = reseal(b"\x12\x01\x01\x03abc" + encode_payload(lists[0], 12)[-10:])
    assert C.open_payload(plain, 12, True, mask)[2:] == (None, 0)
    assert list(decode_payload(plain).value.items) == [b"abc"]
    truncated = reseal(b"\x12\x01\x02\x20" + encode_payload(lists[0], 12)[-10:])
    for options in (CodecOptions(), CodecOptions(sanitize_payload="yes")):
        fast, pure = _decode_both_ways(truncated, options)
        assert fast == pure and fast[0] == "error"


@needs_c
def test_open_payload_leaves_doubtful_envelopes_to_python() -> None:
    """None (Python words the refusal) for a wrong CRC, a newer version, a tiny or non-bytes payload."""
    payload = SMALL_PAYLOADS[0]
    mask = bytes([1]) * 256
    assert C.open_payload(payload[:-1] + bytes([payload[-1] ^ 1]), 12, True, mask) is None
    assert C.open_payload(payload[:-1] + bytes([payload[-1] ^ 1]), 12, False, mask) is not None
    newer = reseal(payload[:-10] + struct.pack("<H", 13) + bytes(8))
    assert C.open_payload(newer, 12, True, mask) is None
    assert C.open_payload(newer, 13, True, mask)[1] == 13
    assert C.open_payload(payload[-10:], 12, False, mask) is None
    assert C.open_payload(bytearray(payload), 12, True, mask) is None
    type_byte, version, body, end = C.open_payload(payload, 12, True, mask)
    assert (type_byte, body) == (payload[0], decode_payload(payload).value)
    assert read_string(payload, 1, len(payload) - 10) == (body, end)
    assert C.open_payload(payload, 12, True, bytes(256))[2:] == (None, 0)  # not a blob type: no body read
    for refused in (newer, payload[:-1] + bytes([payload[-1] ^ 1]), payload[-10:], b""):
        fast, pure = _decode_both_ways(refused, CodecOptions())
        assert fast == pure and fast[0] == "error"


@needs_c
def test_lzf_strings_expand_as_liblzf_does() -> None:
    """Random compressible strings: C's expander gives python-lzf's bytes; broken streams Python's errors."""
    rng = random.Random(RNG_SEED + 10)
    for _ in range(300):
        alphabet = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(21, 3000)))
        body = bytearray((0,))
        append_string(body, data, True)
        payload = reseal(bytes(body) + b"\x0a\x00" + bytes(8))
        assert decode_payload(payload).value == data
        fast, pure = _decode_both_ways(payload, CodecOptions())
        assert fast == pure
        if body[1] == 0xC3:
            broken = bytearray(body)
            at = rng.randrange(3, len(broken))
            broken[at] = rng.choice([0x00, 0x1F, 0x20, 0xE0, 0xFF, broken[at] ^ 0x40])
            fast, pure = _decode_both_ways(reseal(bytes(broken) + b"\x0a\x00" + bytes(8)), CodecOptions())
            assert fast == pure


@st.composite
def mutated_small_payloads(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SMALL_PAYLOADS))[:-10])
    mutate(draw, data, INTERESTING, overwrite_max=6)
    footer = struct.pack("<H", draw(st.sampled_from([6, 10, 12, 13]))) + bytes(8)
    return reseal(bytes(data) + footer) if draw(st.booleans()) else bytes(data) + footer


@needs_c
@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_small_payloads(), options=st.sampled_from(OPTION_SETS))
def test_fuzz_small_payloads_both_ways(payload: bytes, options: CodecOptions) -> None:
    fast, pure = _decode_both_ways(payload, options)
    assert fast == pure


@needs_c
def test_append_string_matches_python() -> None:
    """``append_string`` (bulk.append_blob: a container's blob) writes what primitives.append_string writes."""
    rng = random.Random(RNG_SEED + 13)
    values: list[Any] = [b"", b"5", b"-129", b"2147483648", b"a" * 21, b"ab" * 100, bytearray(b"12"),
                         bytes(rng.randrange(256) for _ in range(70000)), b"q" * 16384]
    values += [bytes(rng.choice(b"ab01-") for _ in range(rng.randrange(60))) for _ in range(200)]
    for value in values:
        for compress in (True, False):
            fast, pure = bytearray(b"\x07"), bytearray(b"\x07")
            C.append_string(fast, value, compress)
            append_string(pure, value, compress)
            assert fast == pure, (value[:20], compress)


@needs_c
def test_string_payload_matches_python() -> None:
    """``string_payload`` (encode_payload's string case, and the native DUMP's) against the pure
    path: int encodings, LZF tried or not, every length form, the versions it takes."""
    rng = random.Random(RNG_SEED + 12)
    values = [b"", b"0", b"-0", b"7", b"-128", b"128", b"32767", b"-32769", b"2147483647", b"2147483648",
              b"-2147483648", b"01", b"+1", b"12345678901", b"a" * 20, b"a" * 21, b"ab" * 40, b"x" * 16380,
              b"y" * 16384, bytes(rng.randrange(256) for _ in range(300)), b"z" * 65000]
    values += [bytes(rng.choice(b"ab01-") for _ in range(rng.randrange(40))) for _ in range(200)]
    was = bulk.ACCELERATED
    try:
        for value in values:
            for compress in (True, False):
                for version in (6, 10, 12):
                    fast = C.string_payload(value, version, compress)
                    bulk.use_speedups(False)
                    pure = encode_payload(value, version, CodecOptions(rdbcompression=compress))
                    bulk.use_speedups(True)
                    assert fast == pure, (value[:20], compress, version)
    finally:
        bulk.use_speedups(was)
    for value, version in ((bytearray(b"x"), 10), (b"x", 80), (b"x", 5), (b"x" * 70000, 10)):
        assert C.string_payload(value, version, True) is None  # left to the Python path


@needs_c
def test_seal_matches_python() -> None:
    from dumpling.payload import envelope

    rng = random.Random(RNG_SEED + 11)
    was = bulk.ACCELERATED
    try:
        for size in (0, 1, 7, 8, 100, 4095, 4096, 65535, 65536, 65537, 200000):
            body = bytes(rng.randrange(256) for _ in range(size))
            for version in (6, 10, 12, 80, 300):
                bulk.use_speedups(True)
                fast = envelope.seal(body, version)
                bulk.use_speedups(False)
                pure = envelope.seal(body, version)
                assert fast == pure
                assert fast == body + struct.pack("<H", version) + fast[-8:]
    finally:
        bulk.use_speedups(was)
    assert C.seal(memoryview(b"x"), 10) is None  # only bytes and bytearray bodies


# ---------------------------------------------------------------------------
# references and memory


def _leak_check(*fns: Callable[[], object], rounds: int = 200) -> int:
    """Traced bytes still held after ``rounds`` more calls of each of ``fns`` (after a warm-up).

    The calls share one traced region: a ``gc.collect`` under tracemalloc costs a
    sizeable fraction of a second in a full test process, so one region for
    every call instead of one each; nothing is held when nothing leaks.
    """
    for fn in fns:
        for _ in range(20):
            fn()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for fn in fns:
            for _ in range(rounds):
                fn()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _swallow(fn: Callable[..., object], *args: object) -> Callable[[], object]:
    def call() -> object:
        try:
            return fn(*args)
        except (PayloadError, TypeError, ValueError):
            return None

    return call


@needs_c
def test_no_leaks_on_success_and_error_paths() -> None:
    rng = random.Random(RNG_SEED + 6)
    items = list(dict.fromkeys(elements(rng, 120)))[:80]
    body = bytearray()
    bulk.append_strings_py(body, items, True)  # LZF strings included: the callback path
    buf = bytes(body)
    cut = buf[: len(buf) // 2]
    fields = dict(zip(items[::2], items[1::2], strict=True))
    pairs = [(1.5, m) for m in items]
    calls = [
        lambda: C.read_records(buf, 0, len(buf), len(items), "s"),
        lambda: C.read_records(buf, 0, len(buf), len(items) // 2, "ss"),
        lambda: C.read_set(buf, 0, len(buf), len(items)),
        lambda: C.read_dict(buf, 0, len(buf), len(items) // 2),
        _swallow(C.read_records, cut, 0, len(cut), len(items), "s"),
        _swallow(C.read_records, cut, 0, len(cut), len(items) // 2, "sd"),
        _swallow(C.read_set, cut, 0, len(cut), len(items)),
        _swallow(C.read_dict, cut, 0, len(cut), len(items) // 2),
        _swallow(C.read_records, b"\xc3\x03\x0a\x00abc", 0, 7, 1, "s"),
        _swallow(C.read_records, buf, 0, len(buf), 1, "q"),
        lambda: C.append_strings(bytearray(), items, True),
        lambda: C.append_strings(bytearray(), set(items), False),
        lambda: C.append_mapping(bytearray(), fields, True),
        lambda: C.append_scored(bytearray(), pairs, True),
        _swallow(C.append_strings, bytearray(), [*items, 7], True),
        _swallow(C.append_mapping, bytearray(), {b"a": 7}, True),
        _swallow(C.append_scored, bytearray(), [(1.0, b"a"), ("x", b"b")], True),
        _swallow(C.append_scored, bytearray(), [(1.0, b"a"), (1.0,)], True),
        *(lambda p=p: C.open_payload(p, 12, True, bytes([1]) * 256) for p in SMALL_PAYLOADS[::4]),
        _swallow(C.open_payload, reseal(b"\x00\xc3\x03\x0a\x00abc" + b"\x0a\x00" + bytes(8)), 12, True, bytes([1]) * 256),
        lambda: C.open_payload(SMALL_PAYLOADS[1][:-1] + b"\x00", 12, True, bytes(256)),
        lambda: C.seal(buf, 10),
    ]
    # One object kept per call would be 200 of them; on a failure, the message
    # measures each call alone to name the one that keeps them.
    assert _leak_check(*calls) < 4096, [(i, _leak_check(call)) for i, call in enumerate(calls)]


@needs_c
def test_reference_counts_are_unchanged() -> None:
    items = [b"x" * 30 + b"%d" % i for i in range(50)] + [b"m%d" % i for i in range(50)]
    body = bytearray()
    bulk.append_strings_py(body, items, True)
    buf = bytes(body)
    fields = dict(zip(items[::2], items[1::2], strict=True))
    watched = [buf, *items[:3], *items[-3:], fields, bulk.read_string, bulk.append_string]
    before = [sys.getrefcount(x) for x in watched]
    for _ in range(100):
        C.read_records(buf, 0, len(buf), len(items), "s")
        C.read_set(buf, 0, len(buf), len(items))
        C.read_dict(buf, 0, len(buf), len(items) // 2)
        C.append_strings(bytearray(), items, True)
        C.append_mapping(bytearray(), fields, True)
        C.append_scored(bytearray(), [(2.0, m) for m in items], True)
        _swallow(C.read_records, buf, 0, len(buf) - 1, len(items), "s")()
        _swallow(C.append_strings, bytearray(), [*items[:3], None], True)()
    gc.collect()
    assert [sys.getrefcount(x) for x in watched] == before
    (column,), _ = C.read_records(buf, 0, len(buf), len(items), "s")
    assert gc.is_tracked(column)  # the lists are handed back tracked by the cyclic GC
    assert [sys.getrefcount(column[i]) for i in range(5)] == [2] * 5  # the list's reference and the argument
