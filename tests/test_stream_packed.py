"""A stream's entries packed per chunk (``datatypes.streams``: ``PackedFlats``, ``EntryMap``).

``PackedFlats`` must behave as the list of flat field/value lists it replaces, with the C
helpers (``dumpling._collections``: ``flats_append``/``flats_unpack``/``flats_delete``) and
with the Python reference, which must also pack the same bytes; ``EntryMap`` must behave as a
``SortedDict`` of ID -> flat list with its chunk layout kept; and an entry must cost no Python
object (the point of packing)."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

import pytest
from sortedcontainers import SortedDict

from dumpling import accel
from dumpling.datatypes import streams as stream_values
from dumpling.datatypes.streams import EntryMap, PackedFlats, StreamValue

MODES = ["python"] + (["c"] if accel.collections is not None else [])


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test with the C helpers (when built) and with the Python reference."""
    if request.param == "python":
        monkeypatch.setattr(stream_values, "_flats_append", stream_values._flats_append_py)
        monkeypatch.setattr(stream_values, "_unpack_flats", stream_values._unpack_flats_py)
        monkeypatch.setattr(stream_values, "_flats_delete", stream_values._flats_delete_py)
    yield request.param


def _value(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 5, 127, 128, 300, 16383, 16384, 20000])
    return bytes(rng.randrange(256) for _ in range(min(size, 40))) * (size // 40 + 1)


def _flat(rng: random.Random) -> list[bytes]:
    """Mostly the same field names (the master's), sometimes others, other counts or odd."""
    if rng.random() < 0.6:
        return [b"name", _value(rng), b"data", _value(rng)]
    if rng.random() < 0.05:
        return [_value(rng)] * rng.choice([0, 1, 3])  # (no stream makes these; the chunk keeps any list)
    count = rng.randrange(1, 4)
    return [x for _ in range(count) for x in (rng.choice([b"name", b"f", b"", b"data"]), _value(rng))]


def test_packed_flats_is_a_list(mode: str) -> None:
    """Random appends, inserts, replacements, deletions (one and ranges), reads (one, slices,
    negative indexes) and iteration: the same as on a list."""
    rng = random.Random(11)
    for _ in range(30):
        ours, reference = PackedFlats(), []
        for _ in range(60):
            op = rng.random()
            n = len(reference)
            if op < 0.45:
                flat = _flat(rng)
                ours.append(flat)
                reference.append(flat)
            elif op < 0.55:
                at, flat = rng.randrange(-n - 2, n + 3), _flat(rng)
                ours.insert(at, flat)
                reference.insert(at, flat)
            elif op < 0.62 and n:
                at, flat = rng.randrange(-n, n), _flat(rng)
                ours[at] = flat
                reference[at] = flat
            elif op < 0.75 and n:
                at = rng.randrange(-n, n)
                del ours[at], reference[at]
            elif op < 0.85:
                start, stop = rng.randrange(-n - 2, n + 3), rng.randrange(-n - 2, n + 3)
                del ours[start:stop], reference[start:stop]
            if reference:
                at = rng.randrange(-len(reference), len(reference))
                assert ours[at] == reference[at]
            start, stop = rng.randrange(-n - 2, n + 3), rng.randrange(-n - 2, n + 3)
            assert ours[start:stop] == reference[start:stop] and ours[::2] == reference[::2]
            assert list(ours) == reference and len(ours) == len(reference)
            with pytest.raises(IndexError):
                ours[len(reference)]


def test_packed_flats_share_master_fields(mode: str) -> None:
    """An entry with the chunk's first fields stores only its values, and reads them back as
    the master's own field objects."""
    chunk = PackedFlats()
    chunk.append([b"name", b"a", b"data", b"b"])
    size = len(chunk.data)
    chunk.append([b"name", b"c", b"data", b"d"])
    assert len(chunk.data) - size == 1 + 2 + 2  # header, then two values of one byte, each after its length
    chunk.append([b"other", b"e"])
    assert chunk.master == (b"name", b"data")
    first, second, third = chunk
    assert second == [b"name", b"c", b"data", b"d"] and third == [b"other", b"e"]
    assert second[0] is chunk.master[0] and second[2] is chunk.master[1]


@pytest.mark.skipif(accel.collections is None, reason="dumpling._collections not built")
def test_c_packs_the_python_bytes() -> None:
    """The C helpers write, read and delete exactly what the Python reference does."""
    rng = random.Random(3)
    flats = [_flat(rng) for _ in range(300)]
    fast, slow = PackedFlats(), PackedFlats()
    for flat in flats:
        assert accel.collections.flats_append(fast, flat) is stream_values._flats_append_py(slow, flat) is True
    assert (fast.master, fast.data, fast.ends) == (slow.master, slow.data, slow.ends)
    for start, stop in ((0, 300), (17, 18), (250, 300), (299, 300)):
        assert accel.collections.flats_unpack(fast.data, fast.ends, fast.master, start, stop) == \
            stream_values._unpack_flats_py(slow.data, slow.ends, slow.master, start, stop) == flats[start:stop]
    for start, stop in ((10, 20), (0, 1), (200, 270), (5, 5)):
        accel.collections.flats_delete(fast, start, stop)
        stream_values._flats_delete_py(slow, start, stop)
        assert (fast.data, fast.ends) == (slow.data, slow.ends)
    with pytest.raises(TypeError):
        accel.collections.flats_append(fast, [b"f", 1])
    with pytest.raises(TypeError):
        accel.collections.flats_delete([], 0, 1)
    with pytest.raises(IndexError):
        accel.collections.flats_unpack(fast.data, fast.ends, fast.master, 0, len(fast) + 1)
    with pytest.raises(ValueError):  # a chunk whose bytes are not its layout: an error, not a read past its end
        accel.collections.flats_unpack(bytearray(b"\x04\x7f"), bytearray(b"\x02\x00\x00\x00"), None, 0, 1)


@pytest.mark.parametrize("chunk", [3, 1000])
def test_entry_map_is_a_sorted_dict(chunk: int, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``EntryMap`` against ``SortedDict`` under random sets (out of order too), pops,
    deletions, range deletions and reads, its chunk layout checked after each."""
    monkeypatch.setattr(stream_values, "CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(25):
        ours, reference = EntryMap(), SortedDict()
        for _ in range(120):
            key = (rng.randrange(40), rng.randrange(3))
            op = rng.random()
            if op < 0.55:
                ours[key] = reference[key] = _flat(rng)
            elif op < 0.7:
                assert ours.pop(key, None) == reference.pop(key, None)
            elif op < 0.78 and reference:
                assert ours.pop_first() == reference.popitem(0)[1]
            elif op < 0.85:
                low, high = sorted([(rng.randrange(42), rng.randrange(3)), (rng.randrange(42), rng.randrange(3))])
                keys = list(reference.irange(low, high))
                for k in keys:
                    del reference[k]
                assert ours.delete_range(low, high) == len(keys)
            low = (rng.randrange(42), rng.randrange(3)) if rng.random() < 0.8 else None
            rev = rng.random() < 0.5
            assert list(ours.irange_items(low, None, reverse=rev)) == \
                [(k, reference[k]) for k in reference.irange(low, None, reverse=rev)]
            assert list(ours.items()) == list(reference.items()) and len(ours) == len(reference)
            if reference:
                i = rng.randrange(-len(reference), len(reference))
                assert ours.peekitem(i) == reference.peekitem(i) and ours.get(key) == reference.get(key)
            assert all(ours._vals) and all(type(v) is PackedFlats for v in ours._vals)
            assert b"".join(c[-16:] for c in ours._keys) == ours._maxes
            assert [len(c) for c in ours._keys] == [16 * len(v) for v in ours._vals]
            assert all(len(v) <= chunk for v in ours._vals) and ours._len == sum(map(len, ours._vals))
        assert list(EntryMap(reference.items()).items()) == list(reference.items())


def test_entry_map_starts_a_chunk_at_its_byte_limit(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk whose data would pass CHUNK_BYTES is not appended to: a new one starts."""
    monkeypatch.setattr(stream_values, "_flats_append", stream_values._flats_append_py)  # (C's limit is fixed)
    monkeypatch.setattr(stream_values, "CHUNK_BYTES", 100)
    entries = EntryMap()
    for i in range(10):
        entries[(1, i)] = [b"f", b"x" * 30]
    assert [len(v) for v in entries._vals] == [3, 3, 3, 1] and all(len(v.data) <= 100 for v in entries._vals)
    assert list(entries.values()) == [[b"f", b"x" * 30]] * 10
    with pytest.raises(OverflowError):
        entries[(1, 20)] = [b"f", b"x" * 200]
    assert len(entries) == 10 and (1, 20) not in entries
    with pytest.raises(OverflowError):  # (an insert out of order, refused before any change)
        entries[(0, 5)] = [b"f", b"y" * 90]
    assert list(entries.values()) == [[b"f", b"x" * 30]] * 10 and len(entries) == 10


def test_entries_cost_no_object_each() -> None:
    """Appending 20,000 entries to a stream allocates no Python object per entry: the live
    allocations grow by chunks and nodes, not by entries (a list and its bytes were 3 each)."""
    s = StreamValue()
    s.append((1, 0), [b"field", b"value"], 4096, 100)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(1, 20_001):
            s.append((1 + i // 5, i % 5), [b"field", b"value:%d" % i], 4096, 100)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    blocks = sum(stat.count_diff for stat in after.compare_to(before, "filename"))
    assert blocks < 20_000 // 10
    assert s.entries[(1001, 0)] == [b"field", b"value:5000"] and len(s) == 20_001


def test_an_append_below_the_entries_lays_the_nodes_out_again(mode: str) -> None:
    """A restored stream whose last ID is below one of its entries (Redis does not check) takes
    an XADD below that entry: its nodes, which hold ID ranges, are laid out again, and DUMP
    writes a payload that restores to the same entries."""
    from dumpling.payload.decode import decode_payload
    from dumpling.payload.encode import encode_payload

    s = StreamValue()
    s.entries = SortedDict({(50, 0): [b"a", b"1"], (60, 0): [b"a", b"2"]})
    s.last_id, s.first_id, s.entries_added = (9, 9), (50, 0), 2
    s.append((55, 0), [b"f", b"v"], 4096, 100)
    s.append((70, 0), [b"f", b"w"], 4096, 100)
    assert list(s.entries) == [(50, 0), (55, 0), (60, 0), (70, 0)]
    assert [i for node in s.iter_nodes() for i in node.ids(s.entries)] == list(s.entries)
    again = decode_payload(encode_payload(s, 11)).value
    assert list(again.entries.items()) == list(s.entries.items())  # type: ignore[union-attr]
