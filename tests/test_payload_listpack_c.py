"""The C listpack codec (``dumpling.payload._listpack``) against the pure-Python reference.

``listpack.decode_py`` / ``encode_py`` / ``encode_mixed_py`` / the Python bodies of
``entry_size`` and ``count_entries`` are the reference: the C functions must give the
same bytes, the same values and the same refusals (``PayloadError`` with the same
message and detail), directly, through ``listpack``'s public functions with
``use_native`` switched, through whole DUMP payloads, and on mutated or truncated
blobs (Hypothesis).  Reference counts and memory are checked over loops.
"""

from __future__ import annotations

import gc
import math
import os
import random
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpling import accel
from dumpling.datatypes import HashValue, ListValue, SetValue, ZSetValue
from dumpling.datatypes.scoreindex import PyScoreIndex
from dumpling.payload import (
    CodecOptions,
    PayloadError,
    decode,
    decode_payload,
    encode,
    encode_payload,
    intset,
    listpack,
    quicklist,
)
from tests.fuzzing import examples, scaled

try:
    from dumpling.payload import _listpack
except ImportError:  # not built: the comparisons skip, CI fails below
    _listpack = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(_listpack is None, reason="dumpling.payload._listpack is not built")
C: Any = _listpack
SEED = 7301


def test_the_extension_is_built_in_ci() -> None:
    """Under CI=true a broken C build must fail the run, not fall back silently."""
    if os.environ.get("CI") != "true":
        pytest.skip("only enforced when CI=true")
    assert _listpack is not None, "dumpling.payload._listpack failed to import (was the C extension built?)"
    if not accel.PURE_PAYLOAD:
        assert listpack.native is _listpack


@pytest.fixture
def python_only() -> Iterator[None]:
    was = listpack.native is not None
    listpack.use_native(False)
    yield
    listpack.use_native(was)


@pytest.fixture
def with_c() -> Iterator[None]:
    was = listpack.native is not None
    listpack.use_native(True)
    yield
    listpack.use_native(was)


# ---------------------------------------------------------------------------
# inputs

INT_LIMITS = [
    0, 1, 9, 10, 63, 64, 126, 127, 128, 129, 255, 256, -1, -2, -63, -64, -65, -127, -128, -129,
    4095, 4096, -4096, -4097, 8191, 8192, -8192,
    32767, 32768, -32768, -32769,
    8388607, 8388608, -8388608, -8388609,
    2147483647, 2147483648, -2147483648, -2147483649, 4294967295, 4294967296,
    9223372036854775807, -9223372036854775808, -9223372036854775807,
    10**18, -(10**18), 999999999999999999, 1000000000000000000,
]  # fmt: skip
NOT_CANONICAL = [
    b"007", b"-0", b"+1", b" 1", b"1 ", b"00", b"01", b"-", b"--1", b"-01", b"1a", b"0x1", b"1_0", b"1.0",
    b"9223372036854775808", b"-9223372036854775809", b"99999999999999999999", b"18446744073709551616",
    b"123456789012345678901", b"-1234567890123456789012", b"\xd9", b"0\x00", b"\x001",
]  # fmt: skip
STRING_LENGTHS = [0, 1, 62, 63, 64, 65, 125, 126, 127, 128, 4093, 4094, 4095, 4096, 4097, 16377, 16378, 16383, 70000]


def element(rng: random.Random) -> bytes:
    """One element from a shape that takes its own encoder or decoder path."""
    kind = rng.randrange(10)
    if kind == 0:
        return b"%d" % rng.choice(INT_LIMITS)
    if kind == 1:
        return b"%d" % rng.randrange(-(2**63), 2**63)
    if kind == 2:
        return b"%d" % rng.randrange(-5000, 5000)
    if kind == 3:
        return rng.choice(NOT_CANONICAL)
    if kind == 4:
        return b""
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))  # binary, NULs, 0xFF
    if kind == 6:
        n = rng.choice(STRING_LENGTHS)
        first = rng.choice(b"x-9\xff")
        return bytes((first,)) + os.urandom(n - 1) if n else b""
    if kind == 7:
        return bytes(rng.choice(b"0123456789-") for _ in range(rng.randrange(1, 22)))
    if kind == 8:
        return b"field:%d" % rng.randrange(10**6)
    return b"v%d" % rng.randrange(100)


def element_lists(rng: random.Random, count: int) -> Iterator[list[bytes]]:
    for _ in range(count):
        size = rng.choice([0, 1, 2, 5, 20, 63, 64, 65, 200, 700])
        if rng.random() < 0.2:  # long runs of short plain strings (the Python join path)
            yield [b"item:%d" % rng.randrange(10**6) for _ in range(size)]
        else:
            yield [element(rng) for _ in range(size)]


def mixed_lists(rng: random.Random, count: int) -> Iterator[list[bytes | int]]:
    for items in element_lists(rng, count):
        mixed: list[bytes | int] = []
        for item in items:
            mixed.append(item)
            if rng.random() < 0.5:
                mixed.append(rng.choice(INT_LIMITS) if rng.random() < 0.5 else rng.randrange(-(2**63), 2**63))
        yield mixed


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """("ok", result) or ("error", class, message): what two implementations must agree on."""
    try:
        return "ok", fn(*args)
    except PayloadError as exc:
        return "error", type(exc), str(exc), exc.message, exc.detail


# ---------------------------------------------------------------------------
# encoders


@needs_c
def test_every_integer_boundary_encodes_like_python() -> None:
    for v in INT_LIMITS:
        for text in (b"%d" % v, b"%d" % -v):
            assert C.encode([text]) == listpack.encode_py([text]), text
            if -v < 2**63:
                assert C.encode_mixed([v, -v, text]) == listpack.encode_mixed_py([v, -v, text]), v
            assert C.entry_size(text) == len(listpack.entry_bytes(text))
    for text in NOT_CANONICAL:
        assert C.encode([text]) == listpack.encode_py([text]), text
        assert C.encode([text])[6] & 0xC0 == 0x80, text  # stored as a string


@needs_c
def test_string_length_boundaries_encode_like_python() -> None:
    for n in STRING_LENGTHS:
        for first in (b"a", b"7", b"-", b"\xff"):
            s = (first + b"z" * n)[:n]
            assert C.encode([s]) == listpack.encode_py([s]), n
            assert C.encode([s, s]) == listpack.encode_py([s, s]), n
            assert C.entry_size(s) == len(listpack.entry_bytes(s)), n


@needs_c
def test_every_short_length_encodes_like_python() -> None:
    """Short strings are copied in fixed-size pieces: each length 0..70, in and out of lists."""
    rng = random.Random(SEED - 1)
    for n in range(71):
        s = bytes(rng.randrange(97, 123) for _ in range(n))
        items = [s, b"x" + s, s[:-1] or b"y"]
        assert C.encode(items) == listpack.encode_py(items), n
        assert C.encode_dict({s: s + b"!"}) == listpack.encode_dict_py({s: s + b"!"}), n
        written = C.quicklist_body(b"", items * 3, None, None, 8192, 8192, True)
        assert written == _python_body(items * 3, False, None, (8192, 8192, True)), n


@needs_c
def test_random_lists_encode_to_the_same_bytes() -> None:
    rng = random.Random(SEED)
    for items in element_lists(rng, 400):
        expected = listpack.encode_py(items)
        assert C.encode(items) == expected
        assert C.encode(tuple(items)) == expected
        assert C.encode_mixed(items) == listpack.encode_mixed_py(items) == expected
        assert C.entry_sizes(items) == [len(listpack.entry_bytes(s)) for s in items]
    for mixed in mixed_lists(rng, 200):
        assert C.encode_mixed(mixed) == listpack.encode_mixed_py(mixed)


@needs_c
def test_more_than_65535_elements_say_unknown_count() -> None:
    items = [b"%d" % (i % 300) for i in range(70000)]
    blob = C.encode(items)
    assert blob == listpack.encode_py(items)
    assert blob[4:6] == b"\xff\xff"
    assert C.decode(blob, True) == listpack.decode_py(blob, True) == items


@needs_c
def test_bytearray_elements_encode_as_bytes() -> None:
    items: list[Any] = [bytearray(b"12"), bytearray(b"abc"), bytearray(), b"x" * 70]
    assert C.encode(items) == listpack.encode_py([bytes(x) for x in items])
    assert C.encode_mixed([*items, 5]) == listpack.encode_mixed_py([*items, 5])
    assert C.entry_size(bytearray(b"-7")) == 2 + 1  # int13: 2 bytes + backlen


@needs_c
def test_what_c_does_not_take_goes_back_to_python(with_c: None) -> None:
    """None from C = "not mine": the public function then behaves exactly like Python."""
    assert C.encode([b"a", "text"]) is None
    assert C.encode([b"a", 5]) is None  # encode takes no ints
    assert C.encode_mixed([b"a", 2**63]) is None
    assert C.encode_mixed([b"a", -(2**63) - 1]) is None
    assert C.encode_mixed([b"a", 1.5]) is None
    assert C.encode(iter([b"a"])) is None
    assert C.entry_size("a") is None
    assert C.entry_sizes([b"a", None]) is None
    assert listpack.encode(iter([b"a", b"12"])) == listpack.encode_py([b"a", b"12"])
    assert listpack.encode_mixed(iter([b"a", 12])) == listpack.encode_mixed_py([b"a", 12])
    for bad, call, reference in [
        ([b"a", 5], listpack.encode, listpack.encode_py),
        ([b"a", "s"], listpack.encode, listpack.encode_py),
        ([b"a", 2**63], listpack.encode_mixed, listpack.encode_mixed_py),
        ([b"a", None], listpack.encode_mixed, listpack.encode_mixed_py),
    ]:
        with pytest.raises(Exception) as got:
            call(bad)
        with pytest.raises(Exception) as expected:
            reference(bad)
        assert type(got.value) is type(expected.value)


@needs_c
def test_bools_and_int_subclasses_are_ints() -> None:
    class Score(int):
        pass

    mixed: list[Any] = [True, False, Score(70000), Score(-3), b"x"]
    assert C.encode_mixed(mixed) == listpack.encode_mixed_py(mixed)


# ---------------------------------------------------------------------------
# decoder on valid blobs


def valid_blobs(rng: random.Random, count: int) -> Iterator[bytes]:
    for items in element_lists(rng, count):
        yield listpack.encode_py(items)
    for mixed in mixed_lists(rng, count // 2):
        yield listpack.encode_mixed_py(mixed)
    yield listpack.EMPTY


MODES = [(deep, iab, cc) for deep in (True, False) for iab in (True, False) for cc in (True, False)]


@needs_c
def test_valid_blobs_decode_to_the_same_values() -> None:
    rng = random.Random(SEED + 1)
    for blob in valid_blobs(rng, 300):
        for deep, iab, cc in MODES:
            got = C.decode(blob, deep, iab, cc)
            expected = listpack.decode_py(blob, deep, iab, cc)
            assert got == expected
            assert list(map(type, got)) == list(map(type, expected))
        assert C.count(blob, True) == C.count(blob, False) == len(listpack.decode_py(blob, True))


@needs_c
def test_decode_keywords_and_defaults() -> None:
    blob = listpack.encode_py([b"a", b"5", b"-70000"])
    assert C.decode(blob, True) == [b"a", b"5", b"-70000"]
    assert C.decode(blob, deep=False, ints_as_bytes=False) == [b"a", 5, -70000]
    assert C.decode(blob=blob, deep=True, check_count=False) == [b"a", b"5", b"-70000"]
    assert C.count(blob, deep=True) == 3
    with pytest.raises(TypeError):
        C.decode(blob)
    with pytest.raises(TypeError):
        C.decode(blob, True, True, True, True)
    with pytest.raises(TypeError):
        C.decode(blob, True, nonsense=1)
    with pytest.raises(TypeError):
        C.decode(blob, True, deep=True)
    with pytest.raises(TypeError):
        C.decode("text", True)


@needs_c
def test_buffers_decode_like_bytes_in_c() -> None:
    blob = listpack.encode_py([b"a", b"5", b"x" * 100])
    for buf in (bytearray(blob), memoryview(blob)):
        assert C.decode(buf, True) == C.decode(blob, True)
        assert C.count(buf, True) == 3


def test_public_functions_match_python_either_way() -> None:
    """``listpack``'s public functions give the reference answers with C on and off."""
    rng = random.Random(SEED + 2)
    items = [element(rng) for _ in range(300)]
    blob = listpack.encode_py(items)
    was = listpack.native is not None
    try:
        for enabled in (False, True):
            listpack.use_native(enabled)
            assert listpack.encode(items) == blob
            assert listpack.encode_mixed([*items, 5, -(2**63)]) == listpack.encode_mixed_py([*items, 5, -(2**63)])
            assert listpack.decode(blob, True) == listpack.decode_py(blob, True)
            assert listpack.decode(bytearray(blob), False) == listpack.decode_py(bytearray(blob), False)
            assert listpack.count_entries(blob, True) == len(items)
            assert listpack.entry_size(items[0]) == len(listpack.entry_bytes(items[0]))
            lens = list(map(len, items))
            from dumpling.payload.bulk import odd_elements

            assert listpack.entry_sizes(items, lens, odd_elements(items, lens, 64)) == [
                len(listpack.entry_bytes(s)) for s in items
            ]
    finally:
        listpack.use_native(was)


def test_use_native_switch() -> None:
    was = listpack.native is not None
    try:
        assert listpack.use_native(False) is False
        assert listpack.native is None
        assert listpack.use_native(True) is (_listpack is not None)
        assert listpack.native is _listpack
    finally:
        listpack.use_native(was)


@pytest.mark.parametrize("variable", ["DUMPLING_PURE", "DUMPLING_PURE_PAYLOAD"])
def test_environment_forces_the_pure_path(variable: str) -> None:
    code = "from dumpling.payload import listpack; print(listpack.native is None)"
    env = dict(os.environ, **{variable: "1"})
    env.pop("DUMPLING_PURE" if variable != "DUMPLING_PURE" else "DUMPLING_PURE_PAYLOAD", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True"]
    env[variable] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(_listpack is None)]


# ---------------------------------------------------------------------------
# decoder on broken blobs


def _header(body: bytes, count: int) -> bytes:
    total = 6 + len(body) + 1
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"


HANDMADE = [
    b"",
    b"\xff",
    b"\x07\x00\x00\x00\x00\x00",
    b"\x07\x00\x00\x00\x00\x00\xfe",
    b"\x08\x00\x00\x00\x00\x00\xff",
    b"\x07\x00\x00\x00\x01\x00\xff",  # count 1, no entries
    b"\x07\x00\x00\x00\xff\xff\xff",  # unknown count
    _header(b"\x05", 1),  # uint without its backlen
    _header(b"\x05\x01", 2),  # wrong count
    _header(b"\x05\x02", 1),  # wrong backlen
    _header(b"\x05\x01\xff\x00", 1),  # a terminator before the end
    _header(b"\x83ab", 1),  # 6-bit string past the end
    _header(b"\x83abc", 1),  # no backlen
    _header(b"\x83abc\x05", 1),
    _header(b"\xc1", 1),
    _header(b"\xc1\x00", 1),
    _header(b"\xc1\x00\x02", 1),
    _header(b"\xdf\xff\x02", 1),  # int13 -1
    _header(b"\xe0", 1),
    _header(b"\xe0\x40", 1),
    _header(b"\xe0\x40" + b"s" * 64 + b"\x42", 1),
    _header(b"\xe0\x40" + b"s" * 64 + b"\x41", 1),
    _header(b"\xef\xff" + b"s" * 10, 1),
    _header(b"\xf0\x01\x00", 1),
    _header(b"\xf0\x03\x00\x00\x00abc\x08", 1),
    _header(b"\xf0\x03\x00\x00\x00abc\x09", 1),
    _header(b"\xf0\xff\xff\xff\xffabc\x08", 1),  # 32-bit length far past the end
    _header(b"\xf1\x01", 1),
    _header(b"\xf1\x01\x02\x03", 1),
    _header(b"\xf2\xff\xff\x7f\x04", 1),
    _header(b"\xf2\x00\x00\x80\x04", 1),
    _header(b"\xf3\x00\x00\x00\x80\x05", 1),
    _header(b"\xf4" + b"\xff" * 8 + b"\x09", 1),
    _header(b"\xf4" + b"\x00" * 7 + b"\x80\x09", 1),
    _header(b"\xf4" + b"\x00" * 8, 1),
    _header(b"\xf5\x01", 1),
    _header(b"\xfe\x01", 1),
    _header(b"\x05\x81\x80\x80\x80\x01", 1),
    _header(b"\x80\x01\x80\x01", 2),
    _header(b"\x81\xff\x02", 1),  # 0xFF inside a string is data
    _header(b"\x81a\x02\xff\x81a\x02", 2),  # 0xFF where an entry should start
    _header(b"\x81a\x82", 1),  # backlen with its continuation flag
]


def _long_backlen_blobs() -> list[bytes]:
    s = b"q" * 200  # 12-bit string of size 202: a 2-byte backlen
    good = listpack.encode_py([s])
    entry = good[6:-1]
    out = [good]
    for back in (b"\x01\x4a", b"\x81\xca", b"\x01\xca", b"\xca", b"\x80\x81\xca"):
        out.append(_header(entry[:-2] + back, 1))
    out.append(_header(entry[:-1], 1))  # backlen cut short
    return out


@needs_c
@pytest.mark.parametrize("blob", HANDMADE + _long_backlen_blobs(), ids=lambda b: b.hex()[:40] or "empty")
def test_handmade_blobs_get_the_same_answer(blob: bytes) -> None:
    for deep, iab, cc in MODES:
        assert outcome(C.decode, blob, deep, iab, cc) == outcome(listpack.decode_py, blob, deep, iab, cc)
    for deep in (True, False):
        walk = outcome(listpack.decode_py, blob, deep)
        count = outcome(C.count, blob, deep)
        assert count == (("ok", len(walk[1])) if walk[0] == "ok" else walk)


def _mutations(blob: bytes, rng: random.Random) -> Iterator[bytes]:
    yield blob[: rng.randrange(len(blob) + 1)]
    for _ in range(4):
        b = bytearray(blob)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.choice(
                [0, 1, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xE0, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, rng.randrange(256)]
            )
        yield bytes(b)
        cut = b[: rng.randrange(7, len(b) + 1)]
        if len(cut) >= 7:  # truncated but with a header that agrees
            cut[0:4] = len(cut).to_bytes(4, "little")
            cut[-1] = 0xFF
            yield bytes(cut)


@needs_c
def test_random_mutations_get_the_same_answer() -> None:
    rng = random.Random(SEED + 3)
    seeds = list(valid_blobs(rng, 60))
    for seed in seeds:
        for mutated in _mutations(seed, rng):
            for deep, iab, cc in MODES:
                assert outcome(C.decode, mutated, deep, iab, cc) == outcome(
                    listpack.decode_py, mutated, deep, iab, cc
                ), (
                    mutated.hex(),
                    deep,
                )


FUZZ_SEEDS = [
    listpack.encode_py([b"a", b"5", b"-70000", b"", b"x" * 70, b"12345678901", b"-3000"]),
    listpack.encode_py([b"q" * 130, b"1"]),
    listpack.encode_mixed_py([b"m", 3, b"n", 70000, b"o", -(2**40), b"p", 2**62]),
    listpack.EMPTY,
]


def _damaged(seed: bytes, edits: list[tuple[int, int]], cut: int, fix_header: bool) -> bytes:
    """``seed`` cut at ``cut``, bytes overwritten per ``edits``, and (``fix_header``) a
    header size and terminator that agree with the damage, so the walk is reached."""
    b = bytearray(seed[:cut] if cut < len(seed) else seed)
    for at, value in edits:
        if b:
            b[at % len(b)] = value
    if fix_header and len(b) >= 7:
        b[0:4] = len(b).to_bytes(4, "little")
        b[-1] = 0xFF
    return bytes(b)


@needs_c
@settings(max_examples=examples(3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(FUZZ_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 250),
    fix_header=st.booleans(),
    deep=st.booleans(),
    ints_as_bytes=st.booleans(),
)
def test_fuzz_decoder_agrees_with_python(
    seed: bytes, edits: list[tuple[int, int]], cut: int, fix_header: bool, deep: bool, ints_as_bytes: bool
) -> None:
    blob = _damaged(seed, edits, cut, fix_header)
    assert outcome(C.decode, blob, deep, ints_as_bytes) == outcome(listpack.decode_py, blob, deep, ints_as_bytes)
    walk = outcome(listpack.decode_py, blob, deep)
    assert outcome(C.count, blob, deep) == (("ok", len(walk[1])) if walk[0] == "ok" else walk)


@needs_c
@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80), st.booleans())
def test_fuzz_arbitrary_bytes_with_a_valid_header(body: bytes, deep: bool) -> None:
    blob = (len(body) + 7).to_bytes(4, "little") + b"\x03\x00" + body + b"\xff"
    assert outcome(C.decode, blob, deep) == outcome(listpack.decode_py, blob, deep)
    assert outcome(C.decode, blob, deep, False, False) == outcome(listpack.decode_py, blob, deep, False, False)


# ---------------------------------------------------------------------------
# quicklist node cuts


def _nodes(items: list[bytes], profile: str, fill: int) -> list[tuple[int, list[bytes], int]]:
    return [(n.container, n.items, n.size) for n in quicklist.pack(items, profile, fill)]


def _list_shapes(rng: random.Random) -> Iterator[list[bytes]]:
    yield []
    yield [b"item:%d" % i for i in range(5000)]
    yield [b"%d" % i for i in range(-3000, 3000, 7)]
    for _ in range(40):
        size = rng.choice([1, 10, 300, 2000])
        out = []
        for _ in range(size):
            r = rng.random()
            if r < 0.05:
                out.append(os.urandom(rng.choice([4000, 8180, 8192, 8193, 9000, 20000, 70000])))
            elif r < 0.1:
                out.append(b"")
            else:
                out.append(element(rng)[:200])
        yield out


@needs_c
def test_node_cuts_match_python(with_c: None) -> None:
    rng = random.Random(SEED + 5)
    for items in _list_shapes(rng):
        for profile in ("7.0", "7.2", "7.4"):
            for fill in (-1, -2, -3, -5):
                listpack.use_native(True)
                got = _nodes(items, profile, fill)
                listpack.use_native(False)
                expected = _nodes(items, profile, fill)
                assert got == expected, (profile, fill, len(items))


@needs_c
def test_node_cuts_refuse_what_they_do_not_take() -> None:
    assert C.pack_by_size([b"a", "b"], 8192, 8192, True) is None
    assert C.pack_by_size([b"a"], -1, 8192, True) is None
    assert C.pack_by_size([b"a"], 8192, 2**41, True) is None
    assert C.pack_by_size(iter([b"a"]), 8192, 8192, True) is None
    assert C.pack_by_size((b"a", bytearray(b"b")), 8192, 8192, False) == [(0, 2, 0, 7 + 3 + 3)]
    assert C.pack_by_size([], 8192, 8192, True) == []
    with pytest.raises(TypeError):
        C.pack_by_size([b"a"], 8192, 8192)
    with pytest.raises(OverflowError):
        C.pack_by_size([b"a"], 2**70, 8192, True)


# ---------------------------------------------------------------------------
# whole payloads, C on and off


def _values(rng: random.Random) -> list[Any]:
    """Small listpack-encoded values of every type (each DUMPs to one listpack)."""
    values: list[Any] = []
    for size in (1, 3, 10, 20, 64, 127):
        fields = {(element(rng)[:60] or b"f") + b"%d" % i: element(rng)[:60] for i in range(size)}
        values.append(HashValue(fields, None, "listpack"))
        members = list(dict.fromkeys([b"m%d" % i for i in range(size)] + [element(rng)[:60] for _ in range(size)]))
        values.append(SetValue(members[:128], "listpack"))
        scores = [1.0, -2.5, 1e20, 3.0, 0.1, 2.0**53, -0.0]
        pairs = [
            (b"z%d" % i, rng.choice(scores) if i % 2 else float(rng.randrange(-(10**12), 10**12))) for i in range(size)
        ]
        values.append(ZSetValue.from_pairs(pairs, "listpack"))
        values.append(ListValue([element(rng)[:100] for _ in range(size)], "listpack"))
        values.append(ListValue([element(rng) for _ in range(size * 20)], "quicklist"))
    return values


def _snapshot(value: Any) -> Any:
    if isinstance(value, HashValue):
        return ("h", list(value.fields.items()))
    if isinstance(value, SetValue):
        return ("s", sorted(value.members))
    if isinstance(value, ZSetValue):
        return ("z", list(value.items_by_score()))
    if isinstance(value, ListValue):
        return ("l", list(value.items))
    return value


@needs_c
def test_payloads_are_the_same_with_c_on_and_off() -> None:
    rng = random.Random(SEED + 4)
    was = listpack.native is not None
    try:
        for value in _values(rng):
            for version in (10, 11, 12):
                listpack.use_native(False)
                expected = encode_payload(value, version)
                listpack.use_native(True)
                got = encode_payload(value, version)
                assert got == expected
                for options in (CodecOptions(), CodecOptions(sanitize_payload="yes")):
                    listpack.use_native(True)
                    fast = outcome(lambda p, o: _snapshot(decode_payload(p, o).value), got, options)
                    listpack.use_native(False)
                    slow = outcome(lambda p, o: _snapshot(decode_payload(p, o).value), got, options)
                    assert fast == slow
                    assert fast[0] == "ok"
    finally:
        listpack.use_native(was)


# ---------------------------------------------------------------------------
# memory


def _swallow(fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    def call() -> None:
        try:
            fn(*args)
        except (PayloadError, TypeError):
            pass

    return call


def _growth(*calls: Callable[[], Any], rounds: int = scaled(3000, floor=300)) -> int:
    """Traced bytes still held after ``rounds`` more calls of each of ``calls`` (after a warm-up).

    One traced region for all the calls (a ``gc.collect`` under tracemalloc is
    slow in a full test process); nothing is held when nothing leaks, and at 750
    rounds (the default run's) a leak of 11 bytes a call is already over the
    tests' 8192.
    """
    for call in calls:
        for _ in range(200):
            call()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for call in calls:
            for _ in range(rounds):
                call()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@needs_c
def test_no_memory_grows_over_loops() -> None:
    items = [b"x" * 30 + b"%d" % i for i in range(40)] + [b"%d" % (i * 999) for i in range(40)] + [b"y" * 5000]
    blob = listpack.encode_py(items)
    mixed = [*items, 5, -(2**62)]
    calls = [
        lambda: C.encode(items),
        lambda: C.encode_mixed(mixed),
        lambda: C.encode([*items[:3], "not bytes"]),
        lambda: C.entry_sizes(items),
        lambda: C.entry_size(items[0]),
        lambda: C.pack_by_size(items * 40, 8192, 8192, True),
        lambda: C.pack_by_size([*items, None], 8192, 8192, True),
        lambda: C.decode(blob, True),
        lambda: C.decode(blob, False, False, False),
        lambda: C.count(blob, True),
        lambda: C.decode(bytearray(blob), True),
        _swallow(C.decode, blob[:-9] + b"\xff", True),
        _swallow(C.decode, blob[:-9] + b"\xff", False, False),
        _swallow(C.count, blob[:-9] + b"\xff", True),
        _swallow(lambda: C.decode(blob, True, nonsense=1)),
        _swallow(C.decode, _header(b"\xf5\x01", 1), True),
    ]
    assert _growth(*calls) < 8192, [(i, _growth(call)) for i, call in enumerate(calls)]


@needs_c
def test_reference_counts_are_unchanged() -> None:
    items = [b"abc%d" % i for i in range(100)] + [b"x" * 200]
    blob = listpack.encode_py(items)
    broken = blob[:-9] + b"\xff"
    watched = [blob, broken, *items[:3], items[-1]]
    before = [sys.getrefcount(x) for x in watched]
    kept = []
    for _ in range(100):
        C.encode(items)
        C.encode_mixed(items)
        C.decode(blob, True)
        C.count(blob, True)
        C.entry_sizes(items)
        C.pack_by_size(items, 100, 100, False)
        _swallow(C.decode, broken, True)()
    kept.append(C.decode(blob, False))
    gc.collect()
    assert [sys.getrefcount(x) for x in watched] == before
    decoded = kept[0]
    # each new string: the list's reference, the loop variable's and getrefcount's argument
    assert all(sys.getrefcount(x) == 3 for x in decoded if len(x) > 3)


# ---------------------------------------------------------------------------
# whole quicklist-2 bodies (quicklist_body)


def _python_body(items: list[Any], compress: bool, shape: Any, rule: Any) -> bytes:
    """What ``_encode_list`` writes after the type byte, in pure Python."""
    from dumpling.payload.primitives import append_len, append_string

    was = listpack.native is not None
    listpack.use_native(False)
    try:
        if shape is None:
            nodes = [(n.container, n.items) for n in quicklist._pack_by_size(list(items), *rule)]
        else:
            it = iter(items)
            nodes = [(container, [next(it) for _ in range(count)]) for count, container in shape]
        out = bytearray()
        append_len(out, len(nodes))
        for container, node_items in nodes:
            append_len(out, container)
            if container == quicklist.CONTAINER_PLAIN:
                append_string(out, node_items[0], compress)
            else:
                append_string(out, listpack.encode(node_items), compress)
        return bytes(out)
    finally:
        listpack.use_native(was)


def _c_body(items: Any, compress: bool, shape: Any, rule: Any, prefix: bytes = b"") -> bytes | None:
    from dumpling.payload import compression

    limit, large, phase = rule if rule is not None else (0, 0, False)
    lzf = compression.compress_for_rdb if compress else None
    written = C.quicklist_body(prefix, items, lzf, shape, limit, large, phase)
    if written is None:
        return None
    assert type(written) is bytes and written[: len(prefix)] == prefix
    return written[len(prefix) :]


RULES = [(4096, 4096, True), (8192, 2**30 - 1, False), (8192, 8192, True), (65536, 65536, False), (100, 50, True)]


@needs_c
def test_quicklist_bodies_by_size_match_python() -> None:
    from collections import deque

    rng = random.Random(SEED + 6)
    for items in _list_shapes(rng):
        for rule in RULES:
            for compress in (True, False):
                expected = _python_body(items, compress, None, rule)
                assert _c_body(items, compress, None, rule) == expected, (rule, compress, len(items))
                assert _c_body(deque(items), compress, None, rule, b"\x12") == expected


@needs_c
def test_quicklist_bodies_by_shape_match_python() -> None:
    rng = random.Random(SEED + 7)
    for items in _list_shapes(rng):
        if not items:
            continue
        # random cuts; elements alone in a node may be plain
        shape = []
        at = 0
        while at < len(items):
            count = min(len(items) - at, rng.choice([1, 1, 2, 7, 100, 600]))
            shape.append((count, quicklist.CONTAINER_PLAIN if count == 1 and rng.random() < 0.5 else 2))
            at += count
        for compress in (True, False):
            expected = _python_body(items, compress, shape, None)
            assert _c_body(items, compress, shape, None) == expected
            assert _c_body(tuple(items), compress, shape, None) == expected
    big = [b"%d" % (i % 1000) for i in range(70000)]  # one node over 65535 elements
    assert _c_body(big, True, [(70000, 2)], None) == _python_body(big, True, [(70000, 2)], None)
    assert _c_body([b"a"], True, [(0, 2), (1, 2), (0, 2)], None) == _python_body(
        [b"a"], True, [(0, 2), (1, 2), (0, 2)], None
    )


@needs_c
def test_quicklist_body_plain_nodes_write_strings_like_append_string() -> None:
    """large=0 makes every non-empty element a plain node: integers, LZF, raw, bytearray."""

    class Sub(bytes):
        pass

    items: list[Any] = [
        b"5", b"-128", b"-129", b"32767", b"32768", b"2147483647", b"2147483648", b"-2147483648", b"007", b"-0",
        b"x" * 21, b"ab" * 40, os.urandom(100), b"", b"y" * 20, bytearray(b"12"), bytearray(b"z" * 50),
        Sub(b"q" * 30), Sub(b"77"), b"\xff" * 300,
    ]  # fmt: skip
    for rule in [(8192, 0, False), (8192, 0, True), (3, 1, True)]:
        for compress in (True, False):
            expected = _python_body([bytes(x) for x in items], compress, None, rule)
            assert _c_body(items, compress, None, rule) == expected, (rule, compress)
    shape = [(1, 1)] * len(items)
    assert _c_body(items, True, shape, None) == _python_body([bytes(x) for x in items], True, shape, None)


@needs_c
def test_quicklist_body_refuses_what_it_does_not_take() -> None:
    assert _c_body([b"a", "b"], True, None, (8192, 8192, True)) is None
    assert _c_body([b"a", None], True, [(2, 2)], None) is None
    assert _c_body([b"a"], True, None, (-1, 8192, True)) is None
    assert _c_body([b"a"], True, None, (8192, 2**41, True)) is None
    assert _c_body([b"a", b"b"], True, [(1, 2)], None) is None  # elements left over
    assert _c_body([b"a"], True, [(2, 2)], None) is None  # too few elements
    assert _c_body([b"a", b"b"], True, [(2, 1)], None) is None  # a plain node of two
    assert _c_body([b"a"], True, [(1, 3)], None) is None  # no such container
    assert _c_body([b"a"], True, [(-1, 2)], None) is None
    assert _c_body([], True, None, (8192, 8192, True)) == b"\x00"
    assert _c_body([], True, [], None) == b"\x00"
    head = b"\x12"
    with pytest.raises(TypeError):
        C.quicklist_body(head, [b"a"], None, None, 8192, 8192)
    with pytest.raises(TypeError):
        C.quicklist_body(bytearray(head), [b"a"], None, None, 8192, 8192, True)
    with pytest.raises(TypeError):
        C.quicklist_body(head, [b"a"], 5, None, 8192, 8192, True)
    with pytest.raises(TypeError):
        C.quicklist_body(head, 5, None, None, 8192, 8192, True)
    with pytest.raises(TypeError):
        C.quicklist_body(head, [b"a"], None, ((1, 2),), 0, 0, False)
    with pytest.raises(TypeError):
        C.quicklist_body(head, [b"a"], None, [(1, 2, 3)], 0, 0, False)
    with pytest.raises(TypeError):
        C.quicklist_body(head, [b"a"], None, [[1, 2]], 0, 0, False)
    with pytest.raises(OverflowError):
        C.quicklist_body(head, [b"a"], None, [(2**70, 2)], 0, 0, False)
    with pytest.raises(OverflowError):
        C.quicklist_body(head, [b"a"], None, None, 2**70, 0, False)
    assert (
        C.quicklist_body(b"", [b"a"], None, None, 8192, 8192, True)
        == b"\x01\x02\x0a\x0a\x00\x00\x00\x01\x00\x81a\x02\xff"
    )


@needs_c
def test_quicklist_body_compressor_errors_and_answers() -> None:
    from collections import deque

    items = [b"item:%d" % i for i in range(2000)]

    def boom(data: bytes) -> bytes:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        C.quicklist_body(b"\x12", items, boom, None, 8192, 8192, True)
    with pytest.raises(TypeError):
        C.quicklist_body(b"\x12", items, lambda data: bytearray(data), None, 8192, 8192, True)
    # a compressor that always gives up: every node raw, as append_string writes it then
    raw = C.quicklist_body(b"", items, lambda data: None, None, 8192, 8192, True)
    assert raw == _python_body(items, False, None, (8192, 8192, True))
    # a list changed from inside the compressor: the iteration notices
    queue = deque(items)
    with pytest.raises(RuntimeError):
        C.quicklist_body(b"", queue, lambda data: queue.append(b"x"), None, 8192, 8192, True)


@needs_c
def test_list_payloads_are_the_same_with_c_on_and_off() -> None:
    """encode_payload of lists: built by pushes (own layout), by the constructor, listpack-encoded,
    for every target version and several fills, compression on and off."""
    rng = random.Random(SEED + 8)
    values: list[ListValue] = []
    for items in list(_list_shapes(rng))[1:12]:
        for fill in (-2, -1, 3):
            pushed = ListValue()
            for start in range(0, len(items), 97):
                pushed.push(items[start : start + 97], False, fill)
            values.append(pushed)
        values.append(ListValue(items, "quicklist"))
        values.append(ListValue(items[:50], "listpack"))
    was = listpack.native is not None
    try:
        for value in values:
            for version in (10, 11, 12, 80):
                for fill in (-2, 3) if version != 10 else (-2, -5, 3):
                    for compress in ("yes", "no"):
                        options = CodecOptions(list_max_listpack_size=fill, rdbcompression=compress == "yes")
                        listpack.use_native(False)
                        expected = encode_payload(value, version, options)
                        listpack.use_native(True)
                        assert encode_payload(value, version, options) == expected, (version, fill, compress)
    finally:
        listpack.use_native(was)


@needs_c
def test_list_dumps_take_the_c_path(with_c: None) -> None:
    from dumpling.payload import encode

    pushed = ListValue()
    pushed.push([b"item:%d" % i for i in range(3000)] + [b"x" * 9000], False, -2)
    for value in (pushed, ListValue([b"a", b"1"], "listpack"), ListValue([b"b"] * 5000, "quicklist")):
        for version in (10, 11, 12, 80):
            assert encode._write_nodes_native(value, version, CodecOptions()) is not None, (value.encoding, version)
    # a count fill on a 7.0 target is NodePacker's: left to Python
    assert encode._write_nodes_native(pushed, 10, CodecOptions(list_max_listpack_size=5)) is None


@needs_c
def test_quicklist_body_keeps_no_memory_or_references() -> None:
    from collections import deque

    from dumpling.payload import compression

    items = [b"item:%d" % i for i in range(3000)] + [b"x" * 9000, b"77", bytearray(b"y" * 30)]
    queue = deque(items)
    shape = [(1000, 2), (1000, 2), (1000, 2), (1, 1), (1, 2), (1, 1)]
    lzf = compression.compress_for_rdb

    def boom(data: bytes) -> bytes:
        raise ValueError("boom")

    calls = [
        lambda: C.quicklist_body(b"\x12", queue, lzf, None, 8192, 8192, True),
        lambda: C.quicklist_body(b"\x12", items, None, None, 8192, 2**30, False),
        lambda: C.quicklist_body(b"\x12", items, lzf, shape, 0, 0, False),
        lambda: C.quicklist_body(b"\x12", [*items, None], lzf, None, 8192, 8192, True),
        lambda: C.quicklist_body(b"\x12", items, lzf, shape[:-1], 0, 0, False),
        lambda: C.quicklist_body(b"\x12", items, lzf, [*shape, (1, 2)], 0, 0, False),
        _swallow_any(lambda: C.quicklist_body(b"\x12", items, boom, None, 8192, 8192, True)),
        _swallow_any(lambda: C.quicklist_body(b"\x12", items, lzf, [(1, 2), (1, 2, 3)], 0, 0, False)),
    ]
    assert _growth(*calls, rounds=300) < 8192, [(i, _growth(call, rounds=300)) for i, call in enumerate(calls)]
    watched = [items[0], items[-3], items[-2], items[-1], queue, lzf, *shape[:2]]
    before = [sys.getrefcount(x) for x in watched]
    for call in calls:
        for _ in range(20):
            call()
    gc.collect()
    assert [sys.getrefcount(x) for x in watched] == before


def _swallow_any(call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            call()
        except (ValueError, TypeError):
            pass

    return run


def test_list_entry_sizes_match_python_either_way() -> None:
    """datatypes.lists takes its listpack entry sizes from C when it is on: same sizes, same shapes."""
    from dumpling.datatypes import lists

    rng = random.Random(SEED + 9)
    items = [element(rng) for _ in range(2000)]
    expected = [lists.lp_entry_size(x) for x in items]
    assert expected == [len(listpack.entry_bytes(x)) for x in items]
    was = listpack.native is not None
    try:
        shapes = []
        for enabled in (False, True):
            listpack.use_native(enabled)
            assert lists.lp_entry_sizes(items) == expected
            assert lists.lp_entry_sizes(iter(items)) == expected
            assert lists.lp_entry_sizes([*items[:3], "ab"]) == [*expected[:3], 4]  # type: ignore[list-item]
            value = ListValue()
            for start in range(0, len(items), 50):
                value.push(items[start : start + 50], start % 100 == 0, -2)
            value.pop(30, True, -2)
            shapes.append((value.encoding, value.nodes(-2), value.listpack_bytes(-2)))
        assert shapes[0] == shapes[1]
    finally:
        listpack.use_native(was)


# ---------------------------------------------------------------------------
# hashes: encode_dict / decode_hash


def _random_dicts(rng: random.Random, count: int) -> Iterator[dict[Any, Any]]:
    for items in element_lists(rng, count):
        yield dict(zip(items[0::2], items[1::2], strict=False))


@needs_c
def test_encode_dict_matches_python() -> None:
    rng = random.Random(SEED + 10)
    for fields in _random_dicts(rng, 300):
        expected = listpack.encode_dict_py(fields)
        assert C.encode_dict(fields) == expected
        assert expected == listpack.encode_py([x for pair in fields.items() for x in pair])
    big = {b"f%d" % i: b"%d" % i for i in range(40000)}  # 80000 entries: count 65535
    assert C.encode_dict(big) == listpack.encode_dict_py(big)
    assert C.encode_dict({}) == listpack.EMPTY
    mixed: dict[Any, Any] = {b"k": bytearray(b"12"), b"": b"x" * 5000}
    assert C.encode_dict(mixed) == listpack.encode_dict_py(mixed)


@needs_c
def test_encode_dict_refuses_what_it_does_not_take(with_c: None) -> None:
    class Fields(dict):  # type: ignore[type-arg]
        pass

    assert C.encode_dict({b"a": "text"}) is None
    assert C.encode_dict({"a": b"b"}) is None
    assert C.encode_dict({b"a": 5}) is None
    assert C.encode_dict(Fields({b"a": b"b"})) is None
    assert C.encode_dict([(b"a", b"b")]) is None
    assert listpack.encode_dict(Fields({b"a": b"1"})) == listpack.encode_py([b"a", b"1"])
    with pytest.raises(TypeError):
        listpack.encode_dict({b"a": 5})  # type: ignore[dict-item]  # (Python's own error)


def _hash_blobs(rng: random.Random, count: int) -> Iterator[bytes]:
    for items in element_lists(rng, count):
        if items and rng.random() < 0.3:
            items = items + items[: rng.randrange(1, len(items) + 1)]  # repeated fields
        yield listpack.encode_py(items)
    yield listpack.EMPTY


@needs_c
def test_decode_hash_matches_python() -> None:
    rng = random.Random(SEED + 11)
    for blob in _hash_blobs(rng, 300):
        for deep in (True, False):
            got = outcome(C.decode_hash, blob, deep)
            assert got == outcome(listpack.decode_hash_py, blob, deep)
            if got[0] == "ok":
                assert list(got[1].items()) == list(listpack.decode_hash_py(blob, deep).items())  # order too
    dup = listpack.encode_py([b"f", b"1", b"g", b"2", b"f", b"3"])
    assert C.decode_hash(dup, False) == {b"f": b"1", b"g": b"2"}
    assert outcome(C.decode_hash, dup, True)[2:] == outcome(listpack.decode_hash_py, dup, True)[2:]
    odd = listpack.encode_py([b"f", b"1", b"g"])
    assert outcome(C.decode_hash, odd, False) == outcome(listpack.decode_hash_py, odd, False)
    assert outcome(C.decode_hash, odd, False)[0] == "error"
    assert C.decode_hash(blob=dup, deep=False) == C.decode_hash(bytearray(dup), False)
    with pytest.raises(TypeError):
        C.decode_hash(dup)
    with pytest.raises(TypeError):
        C.decode_hash("text", True)


@needs_c
@pytest.mark.parametrize("blob", HANDMADE + _long_backlen_blobs(), ids=lambda b: b.hex()[:40] or "empty")
def test_handmade_blobs_decode_hash_the_same(blob: bytes) -> None:
    for deep in (True, False):
        assert outcome(C.decode_hash, blob, deep) == outcome(listpack.decode_hash_py, blob, deep)


@needs_c
def test_mutated_hash_blobs_decode_the_same() -> None:
    rng = random.Random(SEED + 12)
    for seed in list(_hash_blobs(rng, 60)):
        for mutated in _mutations(seed, rng):
            for deep in (True, False):
                assert outcome(C.decode_hash, mutated, deep) == outcome(listpack.decode_hash_py, mutated, deep)


@needs_c
@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(FUZZ_SEEDS + [listpack.encode_py([b"f", b"1", b"f", b"2"])]),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 250),
    fix_header=st.booleans(),
    deep=st.booleans(),
)
def test_fuzz_decode_hash_agrees_with_python(
    seed: bytes, edits: list[tuple[int, int]], cut: int, fix_header: bool, deep: bool
) -> None:
    blob = _damaged(seed, edits, cut, fix_header)
    assert outcome(C.decode_hash, blob, deep) == outcome(listpack.decode_hash_py, blob, deep)


def test_hash_functions_match_python_either_way() -> None:
    rng = random.Random(SEED + 13)
    fields = next(_random_dicts(rng, 1)) or {b"a": b"b"}
    fields.update({b"f%d" % i: element(rng) for i in range(50)})
    blob = listpack.encode_dict_py(fields)
    was = listpack.native is not None
    try:
        for enabled in (False, True):
            listpack.use_native(enabled)
            assert listpack.encode_dict(fields) == blob
            assert listpack.decode_hash(blob, True) == fields
    finally:
        listpack.use_native(was)


@needs_c
def test_hash_codec_keeps_no_memory_or_references() -> None:
    fields = {b"field:%d" % i: b"value:%d" % i for i in range(50)}
    fields[b"n"] = b"12345"
    blob = listpack.encode_dict_py(fields)
    dup = listpack.encode_py([b"f", b"1", b"f", b"2"])
    odd = listpack.encode_py([b"f", b"1", b"g"])
    calls = [
        lambda: C.encode_dict(fields),
        lambda: C.encode_dict({**fields, b"x": None}),
        lambda: C.decode_hash(blob, True),
        lambda: C.decode_hash(blob, False),
        lambda: C.decode_hash(bytearray(blob), False),
        lambda: C.decode_hash(dup, False),
        _swallow(C.decode_hash, dup, True),
        _swallow(C.decode_hash, odd, True),
        _swallow(C.decode_hash, blob[:-9] + b"\xff", True),
    ]
    assert _growth(*calls) < 8192, [(i, _growth(call)) for i, call in enumerate(calls)]
    watched = [blob, dup, odd, fields, *list(fields)[:3], *list(fields.values())[:3]]
    before = [sys.getrefcount(x) for x in watched]
    for call in calls:
        for _ in range(50):
            call()
    kept = C.decode_hash(blob, False)
    gc.collect()
    assert [sys.getrefcount(x) for x in watched] == before
    # each new key: the dict's reference, the loop variable's and getrefcount's argument
    assert all(sys.getrefcount(k) == 3 for k in kept if len(k) > 3)


# ---------------------------------------------------------------------------
# sorted-set pairs and entries, intset blobs (RESTORE / DUMP of small zsets and intsets)

SCORE_TEXTS = [
    b"1.5", b" 2", b"inf", b"-inf", b"nan", b"NaN(x1)", b"0x1p3", b"0x1p99999", b"1e999", b"abc", b"-0", b"",
    b"3.0000000001", b"1e-400", b"  +4.5e2xyz", b"0x", b"x" * 200, b"1" * 130, b"12\x003", b"infinity", b"-0x1.8p1",
]  # fmt: skip


def _zset_blobs(rng: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        elements: list[bytes | int] = []
        for _ in range(rng.randint(0, 6)):
            elements.append(rng.choice([b"m%d" % rng.randint(0, 9), rng.choice(INT_LIMITS), b"17", b""]))
            elements.append(rng.choice([rng.choice(SCORE_TEXTS), rng.choice(INT_LIMITS), rng.randint(-5000, 5000)]))
        if rng.random() < 0.1:
            elements.append(b"odd")
        yield listpack.encode_mixed_py(elements)


def _same_floats(result: tuple[Any, ...]) -> tuple[Any, ...]:
    """Scores compared bit for bit (-0.0 and 0.0 differ)."""
    if result[0] != "ok":
        return result
    return "ok", [(member, struct.pack("<d", score)) for member, score in result[1]]


@needs_c
def test_zset_pairs_match_python() -> None:
    rng = random.Random(SEED + 11)
    for blob in _zset_blobs(rng, 1500):
        for mutated in (blob, *_mutations(blob, rng)):
            for deep in (False, True):
                assert _same_floats(outcome(C.zset_pairs, mutated, deep)) == _same_floats(
                    outcome(listpack.zset_pairs_py, mutated, deep)
                ), (mutated.hex(), deep)


ZSET_SCORES = [0.0, -0.0, math.inf, -math.inf, 4611686018427387903.0, 2.0**63, -(2.0**62), -(2.0**62) - 2048, 1e300,
               0.1, 1 / 3, 2.5, -7.0, 5e-324, 9007199254740993.0]  # fmt: skip


@needs_c
def test_zset_entries_match_python() -> None:
    rng = random.Random(SEED + 12)
    for _ in range(scaled(2000, 300)):
        pairs = [(b"m%d" % i, rng.choice([rng.choice(ZSET_SCORES), float(rng.randint(-10**6, 10**6)),
                                          rng.uniform(-1e6, 1e6)])) for i in range(rng.randint(1, 12))]
        zset = ZSetValue.from_pairs(pairs, "listpack")
        if rng.random() < 0.3:  # a loaded "-0" entry keeps its sign (decode does this)
            zset.index = type(zset.index)((-0.0 if s == 0 else s, m) for s, m in zset.index)
        for version in (10, 11, 12):
            fast, pure = encode.zset_entries(zset, version), encode.zset_entries_py(zset, version)
            assert fast == pure and list(map(type, fast)) == list(map(type, pure)), (pairs, version)
    odd = ZSetValue.from_pairs([(b"a", 1.0)], "listpack")
    odd.index = PyScoreIndex([(1, b"a")])  # not a (float, bytes) entry: C declines, Python answers
    # (the reference index holds the int; the C ScoreIndex keeps every score as a double)
    assert C.zset_entries(odd.index, None) is None
    assert encode.zset_entries(odd, 10) == encode.zset_entries_py(odd, 10) == [b"a", 1]


@needs_c
def test_intset_blobs_match_python() -> None:
    rng = random.Random(SEED + 13)
    for _ in range(scaled(3000, 400)):
        members: set[bytes] = set()
        for _ in range(rng.randint(0, 90)):
            r = rng.random()
            if r < 0.02:
                members.add(rng.choice(NOT_CANONICAL))
            elif r < 0.4:
                members.add(b"%d" % rng.choice(INT_LIMITS))
            else:
                members.add(b"%d" % rng.randint(-40000, 40000))
        assert C.intset_blob(members) == encode.intset_blob_py(members), sorted(members)
    assert C.intset_blob(frozenset([b"1", b"-2"])) == encode.intset_blob_py({b"1", b"-2"})
    assert C.intset_blob([b"1"]) is None  # not a set
    assert C.intset_blob({"1"}) is None  # type: ignore[arg-type]  # not bytes


@needs_c
def test_intset_members_match_python() -> None:
    rng = random.Random(SEED + 14)
    for _ in range(scaled(2000, 300)):
        values = {rng.choice([rng.choice(INT_LIMITS), rng.randint(-40000, 40000)]) for _ in range(rng.randint(0, 40))}
        blob = intset.encode(values)
        variants = [blob, blob[: rng.randrange(len(blob) + 1)], blob + b"\x00"]
        damaged = bytearray(blob)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        variants.append(bytes(damaged))
        if len(values) > 1:  # out of order: refused only when sanitizing
            width = blob[0]
            variants.append(blob[:8] + blob[8 + width : 8 + 2 * width] + blob[8 : 8 + width] + blob[8 + 2 * width :])
        for variant in variants:
            for deep in (False, True):
                assert outcome(C.intset_members, variant, deep) == outcome(decode.intset_members_py, variant, deep), (
                    variant.hex(), deep)
