"""ElementList (dumpling._elementlist, a list value's elements packed as listpack entries)
against its reference PyElementList (a deque): random operation sequences on both, the same
contents and answers after every step; its entries against the payload codec's listpacks."""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from typing import Any

import pytest

from dumpling.datatypes.listelements import PyElementList
from dumpling.datatypes.lists import lp_entry_size
from dumpling.payload import listpack
from tests.fuzzing import scaled

try:
    from dumpling._elementlist import ElementList as Native
except ImportError:  # built without a compiler
    Native = None

needs_c = pytest.mark.skipif(Native is None, reason="dumpling._elementlist not built")

# integers at every listpack width and its edges, near-integers that stay strings, strings
# at the 6/12/32-bit length edges
INTS = [0, 1, 127, 128, -1, -4096, 4095, 4096, -4097, 32767, -32768, 32768, 8388607, -8388608,
        8388608, 2**31 - 1, -(2**31), 2**31, 2**63 - 1, -(2**63)]
ODD = [b"", b"-", b"-0", b"007", b"+1", b" 1", b"1 ", b"9223372036854775808", b"-9223372036854775809", b"1.5"]


def random_element(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return b"%d" % rng.choice(INTS)
    if roll < 0.4:
        return b"%d" % rng.randint(-(2**40), 2**40)
    if roll < 0.5:
        return rng.choice(ODD)
    if roll < 0.55:
        return b"x" * rng.choice([63, 64, 4095, 4096, 5000, 9000])
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))


def test_the_extension_is_built_in_ci() -> None:
    """Every comparison below would skip silently if _elementlist failed to compile."""
    if os.environ.get("CI") == "true" and os.environ.get("DUMPLING_PURE") != "1":
        assert Native is not None, "dumpling._elementlist did not build: setup.py / compiler problem"
    if Native is None:
        pytest.skip("dumpling._elementlist not built (pure Python)")


Op = Callable[[Any, random.Random, int], Any]


def _ops(rng: random.Random, n: int) -> tuple[str, tuple[Any, ...]]:
    """One random operation and its arguments for a list of n elements."""
    names = ["append", "appendleft", "pop", "popleft", "extend", "extendleft", "insert", "index", "contains",
             "getitem", "setitem", "delitem", "slice", "pop_many", "drop", "entry_bytes", "node_blobs", "copy",
             "reversed", "find", "remove_positions"]
    name = rng.choice(names)
    index = rng.randrange(-n - 2, n + 2) if n else rng.randrange(-2, 3)
    if name in ("append", "appendleft", "contains", "index"):
        return name, (random_element(rng),)
    if name in ("extend", "extendleft"):
        return name, ([random_element(rng) for _ in range(rng.choice([1, 5, 300]))],)
    if name in ("insert", "setitem"):
        return name, (index, random_element(rng))
    if name in ("getitem", "delitem"):
        return name, (index,)
    if name in ("slice", "entry_bytes"):
        return name, (rng.randrange(-3, n + 3), rng.randrange(-3, n + 3))
    if name in ("pop_many", "drop"):
        return name, (rng.choice([0, 1, 2, 300, n // 2, n, n + 5]), rng.random() < 0.5)
    if name == "find":
        pick = rng.choice([b"%d" % rng.choice(INTS), rng.choice(ODD), b"x" * 64])
        return name, (pick, rng.random() < 0.5, rng.choice([0, 0, 1, 3]), rng.choice([0, 1, 2, 50]),
                      rng.choice([0, 0, 1, n // 2]))
    if name == "remove_positions":
        return name, (sorted(rng.sample(range(n), min(n, rng.choice([0, 1, 3, 40])))),)
    if name == "node_blobs":
        shape = []
        left = n
        while left and rng.random() < 0.8:
            count = rng.randint(0, left)
            shape.append((count, count == 1 and rng.random() < 0.5))
            left -= count
        return name, (shape,)
    return name, ()


def apply(items: Any, name: str, args: tuple[Any, ...]) -> Any:
    """Run one operation; (result) or ("raised", exception type)."""
    try:
        if name == "contains":
            return args[0] in items
        if name == "getitem":
            return items[args[0]]
        if name == "setitem":
            items[args[0]] = args[1]
            return None
        if name == "delitem":
            del items[args[0]]
            return None
        if name == "copy":
            dup = items.copy()
            return list(dup), type(dup) is type(items)
        if name == "reversed":
            return list(reversed(items))
        return getattr(items, name)(*args)
    except (IndexError, ValueError) as e:
        return ("raised", type(e))


@needs_c
@pytest.mark.parametrize("seed", range(4))
def test_random_operations_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    native, reference = Native(), PyElementList()
    for _ in range(scaled(600)):
        name, args = _ops(rng, len(reference))
        got, want = apply(native, name, args), apply(reference, name, args)
        assert got == want, (name, args)
        assert len(native) == len(reference)
        if rng.random() < 0.2 or name in ("drop", "pop_many", "insert", "setitem", "delitem"):
            assert list(native) == list(reference), (name, args)
    assert list(native) == list(reference)
    assert native == Native(reference) and native != Native([b"other"])


@needs_c
def test_big_lists_across_many_chunks() -> None:
    """Thousands of chunks: both ends, the middle, trims of whole chunks and part of one."""
    rng = random.Random(7)
    elements = [b"element:%07d" % i if i % 3 else b"%d" % (i * 7919) for i in range(60_000)]
    native, reference = Native(elements), PyElementList(elements)
    for index in (0, 1, 29_999, 30_000, -1, -2, 59_999):
        assert native[index] == reference[index]
    native.drop(20_011, True)
    reference.drop(20_011, True)
    native.drop(10_007, False)
    reference.drop(10_007, False)
    assert list(native) == list(reference)
    for _ in range(200):
        at = rng.randrange(len(reference))
        element = random_element(rng)
        native.insert(at, element)
        reference.insert(at, element)
    assert list(native) == list(reference) and list(reversed(native)) == list(reversed(reference))
    assert native.entry_bytes(0, len(native)) == sum(map(lp_entry_size, reference))
    assert native.slice(1000, 1500) == reference.slice(1000, 1500)


@needs_c
def test_entries_are_the_listpack_codec_s() -> None:
    """A run's listpack is byte for byte the payload codec's listpack of the same elements."""
    rng = random.Random(3)
    elements = [random_element(rng) for _ in range(3000)] + [b"%d" % v for v in INTS] + ODD
    native = Native(elements)
    counts = [1, 2, 500, 2000, len(elements) - 2503]
    blobs = native.node_blobs([(count, False) for count in counts])
    start = 0
    for count, blob in zip(counts, blobs, strict=True):
        assert blob == listpack.encode(elements[start:start + count])
        assert native.entry_bytes(start, start + count) == sum(map(lp_entry_size, elements[start:start + count]))
        start += count
    assert listpack.decode(blobs[2], False) == elements[3:503]
    assert native.node_blobs([(1, True), (1, True)]) == elements[:2]
    with pytest.raises(ValueError):
        native.node_blobs([(len(elements) + 1, False)])
    with pytest.raises(ValueError):
        native.node_blobs([(2, True)])


@needs_c
def test_iteration_stops_on_a_change() -> None:
    native = Native([b"a", b"b", b"c"])
    it = iter(native)
    assert next(it) == b"a"
    native.append(b"d")
    with pytest.raises(RuntimeError):
        next(it)
    with pytest.raises(TypeError):
        native.append("text")  # type: ignore[arg-type]
    assert list(native) == [b"a", b"b", b"c", b"d"]


@needs_c
def test_small_lists_are_small() -> None:
    """A two-element list: the object and one small chunk, not a deque's 1 KB block."""
    native = Native([b"one", b"two"])
    assert native.__sizeof__() < 200


@needs_c
@pytest.mark.parametrize("compress", [False, True])
def test_quicklist_body_is_the_reference_s(compress: bool) -> None:
    """The DUMP body written from the entries equals the one written from the elements."""
    from dumpling.payload import compression

    rng = random.Random(11)
    elements = [random_element(rng) for _ in range(5000)] + [b"same"] * 3000
    counts = [1, 100, 2000, 2899, 3000]
    compressor = compression.compress_for_rdb if compress else None
    got = Native(elements).quicklist_body(b"\x12", counts, compressor)
    assert got == PyElementList(elements).quicklist_body(b"\x12", counts, compressor)
    for bad in ([len(elements) + 1], [0, len(elements)], [1]):
        with pytest.raises(ValueError):
            Native(elements).quicklist_body(b"\x12", bad, None)


@needs_c
@pytest.mark.parametrize("version", [10, 12, 80])
@pytest.mark.parametrize("compress", [False, True])
def test_quicklist_body_sealed_in_place_is_seal_s(version: int, compress: bool) -> None:
    """With a footer the body is sealed in its own buffer: the payload ``envelope.seal`` makes of
    the same body, and the reference's; encode_payload's list route (which asks for it) writes
    the bytes encode_body + seal write."""
    from dumpling.datatypes.lists import ListValue
    from dumpling.payload import compression, encode_payload
    from dumpling.payload.encode import encode_body
    from dumpling.payload.envelope import footer_parts, seal
    from dumpling.payload.options import DEFAULT_OPTIONS

    rng = random.Random(version)
    elements = [random_element(rng) for _ in range(4000)] + [b"%d" % i for i in range(20000)]
    counts = [1, 3999, 10000, 10000]
    compressor = compression.compress_for_rdb if compress else None
    body = Native(elements).quicklist_body(b"\x12", counts, compressor)
    sealed = Native(elements).quicklist_body(b"\x12", counts, compressor, footer_parts(version))
    assert sealed == seal(body, version)
    assert sealed == PyElementList(elements).quicklist_body(b"\x12", counts, compressor, footer_parts(version))
    with pytest.raises(TypeError):
        Native(elements).quicklist_body(b"\x12", counts, None, (b"\x0a\x00",))
    value = ListValue()
    value.push(elements, False, -2)
    options = dataclasses.replace(DEFAULT_OPTIONS, rdbcompression=compress)
    assert encode_payload(value, version, options) == seal(encode_body(value, version, options), version)


@needs_c
@pytest.mark.parametrize("rule", [(8192, 8192, True), (8192, 2**30 - 1, False), (4096, 4096, False),
                                  (65536, 65536, True)])
def test_cut_nodes_is_pack_by_size_s(rule: tuple[int, int, bool]) -> None:
    """The node cut DUMP takes for older targets, from the entries: quicklist._pack_by_size's."""
    rng = random.Random(rule[0] + rule[2])
    for size in (0, 1, 40, 3000):
        elements = [random_element(rng) for _ in range(size)]
        assert Native(elements).cut_nodes(*rule) == PyElementList(elements).cut_nodes(*rule)


@needs_c
@pytest.mark.parametrize("rule", [(8192, 2**30 - 1, False), (8192, 8192, True), (4096, 25, False), (4096, 19, False),
                                  (512, 40, True), (64, 2**30 - 1, False)])
def test_cut_nodes_skipping_is_pack_by_size_s(rule: tuple[int, int, bool]) -> None:
    """cut_nodes adds entries far from the limit by their size alone (a whole chunk, or entry by
    entry) without counting an integer's digits: the same cut as the reference on integer-heavy
    lists (every listpack integer width, signs), long strings near `large`, and chunks laid out
    by pushes at both ends and pops."""
    rng = random.Random(rule[0] * 3 + rule[1])
    for trial in range(4):
        native, reference = Native(), PyElementList()
        for _ in range(scaled(6000)):
            roll = rng.random()
            if roll < 0.6:
                element = b"%d" % rng.choice([rng.randint(-128, 127), rng.randint(-(2**23), 2**23),
                                              rng.randint(-(2**63), 2**63 - 1), rng.choice(INTS)])
            elif roll < 0.9:
                element = bytes(rng.randrange(97, 123) for _ in range(rng.choice([1, 18, 19, 20, 21, 24, 26, 60])))
            else:
                element = random_element(rng)
            at_tail = trial == 0 or rng.random() < 0.7
            for items in (native, reference):
                items.append(element) if at_tail else items.appendleft(element)
            if trial == 3 and rng.random() < 0.1:
                native.popleft()
                reference.popleft()
        assert list(native) == list(reference)
        assert native.cut_nodes(*rule) == PyElementList(list(reference)).cut_nodes(*rule)


@needs_c
def test_cut_nodes_chunk_skip_at_every_limit() -> None:
    """Integers whose text (up to 20 bytes) is longer than their entry (10): a whole chunk is added
    at once only if its last entry's text would fit too, at every limit around a chunk's size."""
    rng = random.Random(12)
    elements = [b"%d" % rng.choice([2**63 - 1, -(2**63), rng.randint(2**40, 2**62), rng.randint(0, 99)])
                for _ in range(3000)]
    native, reference = Native(elements), PyElementList(elements)
    for limit in range(4090, 4400, 3):
        assert native.cut_nodes(limit, 2**30 - 1, False) == reference.cut_nodes(limit, 2**30 - 1, False)


def _adopt(items: Any, blob: bytes) -> None:
    if not items.extend_listpack(blob):
        items.extend(listpack.decode(blob, False))


@needs_c
def test_adopted_listpacks_match_the_reference() -> None:
    """A restored node's listpack copied entry by entry; one this type would not have written
    (an integer in a wider encoding than needed, integer text as a string, a bad back-length,
    an unknown encoding) is declined whole, then decoded."""
    rng = random.Random(5)
    elements = [random_element(rng) for _ in range(2000)]
    blob = listpack.encode(elements)
    native, reference = Native([b"before"]), PyElementList([b"before"])
    assert native.extend_listpack(blob) is True
    _adopt(reference, blob)
    assert list(native) == list(reference) and list(reversed(native)) == list(reversed(reference))
    assert native.node_blobs([(1, False), (2000, False)])[1] == blob
    # hand-made entries: 5 as a 16-bit integer, "12" as a string, a wrong back-length, 0xF5
    odd = [b"\xf1\x05\x00\x03", b"\x8212\x03", b"\x81a\x07", b"\xf5\x01"]
    for entry in odd:
        body = b"\x81z\x02" + entry
        bad = (len(body) + 7).to_bytes(4, "little") + b"\x02\x00" + body + b"\xff"
        before = list(native)
        assert native.extend_listpack(bad) is False and list(native) == before
    assert native.extend_listpack(b"\x07\x00\x00\x00\x00\x00\xff") is True  # an empty listpack
    assert native.extend_listpack(b"\x08\x00\x00\x00\x00\x00\xff") is False  # a wrong total


@needs_c
def test_damaged_listpacks_are_declined_or_read_as_the_codec_reads_them() -> None:
    rng = random.Random(9)
    good = listpack.encode([random_element(rng) for _ in range(30)])
    for _ in range(scaled(2000)):
        bad = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            bad[rng.randrange(6, len(bad))] = rng.randrange(256)
        native = Native()
        if native.extend_listpack(bytes(bad)):
            assert list(native) == listpack.decode(bytes(bad), True)
        else:
            assert len(native) == 0


@needs_c
def test_resp_range_is_the_encoder_s() -> None:
    """LRANGE's reply written from the entries: what the reply encoder writes for the slice."""
    from dumpling.protocol import encode

    rng = random.Random(13)
    elements = [random_element(rng) for _ in range(3000)] + [b"%d" % v for v in INTS] + ODD
    native = Native(elements)
    for start, stop in ((0, len(elements)), (5, 6), (100, 90), (-5, 10), (2990, 99999), (0, 0)):
        want = encode(PyElementList(elements).slice(start, stop), False)
        assert native.resp_range(start, stop) == want == PyElementList(elements).resp_range(start, stop)


@needs_c
def test_resp_range_across_chunks_grown_at_both_ends() -> None:
    """The one-pass writer over chunks made by pushes at either end: short strings (copied as
    they lie), integers and long strings (through their text), replies past its first guess."""
    from dumpling.protocol import encode

    rng = random.Random(21)
    native, elements = Native(), PyElementList([])
    for _ in range(4000):
        element = rng.choice([b"xxx", b"x" * rng.randrange(64), b"y" * rng.randrange(60, 300),
                              b"%d" % rng.randrange(-10**12, 10**12)])
        front = rng.random() < 0.5
        (native.appendleft if front else native.append)(element)
        (elements.appendleft if front else elements.append)(element)
    n = len(elements)
    for _ in range(200):
        start, stop = rng.randrange(-3, n + 3), rng.randrange(-3, n + 3)
        want = encode(elements.slice(start, stop), False)
        assert native.resp_range(start, stop) == want
