"""A stream node's listpack for DUMP written in C (``dumpling._collections.stream_node_listpack``)
against its Python reference (``payload.stream._node_listpack_py``): the same bytes for every
node of random streams - XADDs with the master's fields, other fields and many fields, int-like,
empty and long values, IDs whose deltas wrap, XDEL and XTRIM tombstones, nodes spanning several
packed chunks, restored streams - and the same whole payloads; what the C code declines (a
list that is not field/value pairs) is still written, by the reference."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from dumpling import accel
from dumpling.datatypes.streams import MASK64, EntryMap, StreamValue
from dumpling.payload import listpack
from dumpling.payload import stream as stream_payload
from dumpling.payload.decode import decode_payload
from dumpling.payload.encode import encode_payload


def encode(value: StreamValue) -> bytes:
    return encode_payload(value, 11)


native = pytest.mark.skipif(accel.collections is None, reason="dumpling._collections not built")

INT_LIKE = [b"0", b"-1", b"127", b"128", b"-4096", b"4095", b"-0", b"007", b"+5", b"1.5", b"9223372036854775807",
            b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809", b"12345678901234567890", b" 1"]


def _value(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(INT_LIKE)
    if pick < 0.4:
        return b""
    size = rng.choice([1, 5, 63, 64, 127, 128, 4095, 4096, 5000])
    return bytes(rng.randrange(256) for _ in range(min(size, 37))) * (size // 37 + 1)


def _flat(rng: random.Random) -> list[bytes]:
    pick = rng.random()
    if pick < 0.5:
        return [b"name", _value(rng), b"data", _value(rng)]
    if pick < 0.55:  # many fields (past the C code's stack room)
        return [x for i in range(rng.randrange(17, 40)) for x in (b"f%d" % i, _value(rng))]
    count = rng.randrange(1, 4)
    return [x for _ in range(count) for x in (rng.choice([b"name", b"data", b"", b"7", b"other"]), _value(rng))]


def _stream(rng: random.Random, count: int, max_bytes: int, max_entries: int, big_ids: bool = False,
            trims: bool = True) -> StreamValue:
    """XADDs (IDs past the last; with big_ids, some past 2**63 so that deltas wrap), then XDELs
    and (trims) XTRIMs, both ways (exact, approximate; MAXLEN, MINID)."""
    s = StreamValue()
    ms, seq = (1, 0)
    ids = []
    for _ in range(count):
        if big_ids and rng.random() < 0.02:
            ms = rng.randrange(ms + 1, MASK64)
            seq = 0
        elif rng.random() < 0.3:
            seq += rng.randrange(1, 5)
        else:
            ms, seq = ms + rng.randrange(1, 1000), rng.randrange(3)
        if ms >= MASK64:
            break
        s.append((ms, seq), _flat(rng), max_bytes, max_entries)
        ids.append((ms, seq))
    for entry_id in rng.sample(ids, len(ids) // 5):
        s.delete(entry_id)
    if trims and s.entries and rng.random() < 0.7:
        keep = rng.randrange(len(s.entries) + 1)
        s.trim(keep, None, rng.random() < 0.3, 0, max_bytes, max_entries)
    if trims and s.entries and rng.random() < 0.5:
        minid = s.entries.key_at(rng.randrange(len(s.entries)))
        s.trim(None, minid, rng.random() < 0.3, 0, max_bytes, max_entries)
    return s


def _native_listpacks(s: StreamValue) -> Iterator[tuple[bytes | None, bytes]]:
    """Each node's listpack from the C function (None: declined) and from the reference."""
    entries = s.entries
    for node in s.iter_nodes():
        dead = sorted(node.dead.items()) if node.dead else None
        lp = accel.collections.stream_node_listpack(entries, node.master_id, node.last_id, node.master_fields, node.live,
                                                    node.deleted, dead)
        yield lp, stream_payload._node_listpack_py(node, entries)


# (count, stream-node-max-bytes, -entries): Redis's defaults, small nodes, one node over several
# 1000-entry chunks (whose first fields differ from the node's), past 65535 listpack elements
LAYOUTS = [(400, 4096, 100), (300, 300, 5), (2600, 1 << 30, 0), (17000, 1 << 30, 0)]


@native
@pytest.mark.parametrize("layout", LAYOUTS)
def test_c_writes_the_python_bytes(layout: tuple[int, int, int]) -> None:
    count, max_bytes, max_entries = layout
    rng = random.Random(count)
    big = count > 10000
    nodes = capped = 0
    for r in range(1 if big else 12):
        s = _stream(rng, count, max_bytes, max_entries, big_ids=r % 3 == 1, trims=not big)
        for ours, reference in _native_listpacks(s):
            assert ours is not None
            assert ours == reference
            nodes += 1
            capped += ours[4:6] == b"\xff\xff"  # (more elements than the header counts)
    assert nodes
    assert capped or not big


@native
def test_tombstones_at_the_node_edges() -> None:
    """A node's first and last entries deleted, every entry but one, and exact trims that leave
    only tombstones ahead of the live ones."""
    s = StreamValue()
    for i in range(1, 301):
        s.append((i, 0), [b"a", b"%d" % i] if i % 7 else [b"b", b""], 4096, 10)
    for i in (1, 10, 11, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 55, 60):
        s.delete((i, 0))
    s.trim(250, None, False, 0, 4096, 10)
    s.trim(None, (45, 0), False, 0, 4096, 10)
    assert any(node.dead for node in s.iter_nodes())
    for ours, reference in _native_listpacks(s):
        assert ours == reference


@native
def test_restored_streams() -> None:
    """A stream read back from its payload keeps its nodes and tombstones (and its entries are
    packed again): the same bytes as the reference, and as the payload it came from."""
    rng = random.Random(5)
    for _ in range(6):
        s = _stream(rng, 500, 4096, 100)
        payload = encode(s)
        restored = decode_payload(payload).value
        assert type(restored.entries) is EntryMap
        for ours, reference in _native_listpacks(restored):
            assert ours == reference
        assert encode(restored) == payload


def test_whole_payloads_match_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """DUMP of random streams with the C node writer (when built) and without it."""
    rng = random.Random(9)
    streams = [_stream(rng, 700, 4096, 100, big_ids=i % 2 == 0) for i in range(4)]
    ours = [encode(s) for s in streams]
    monkeypatch.setattr(stream_payload, "_native_node_listpack", None)
    assert [encode(s) for s in streams] == ours


@native
def test_declined_entries_are_written_by_the_reference() -> None:
    """An entry that is not field/value pairs (no command makes one; the packed chunk keeps any
    list) is declined by the C code, and the reference writes the node."""
    entries = EntryMap([((1, 0), [b"a", b"1"]), ((2, 0), [b"a", b"2", b"odd"])])
    s = StreamValue()
    s.entries = entries
    s.last_id = (2, 0)
    node = next(s.iter_nodes())
    assert accel.collections.stream_node_listpack(entries, node.master_id, node.last_id, node.master_fields, node.live,
                                                  node.deleted, None) is None
    lp = stream_payload._node_listpack(node, entries)
    assert lp == stream_payload._node_listpack_py(node, entries)
    assert listpack.decode(lp, False, check_count=False)[-2:] == [b"odd", b"6"]  # (1 field, 3 items: as it falls)


@native
def test_a_node_with_no_live_entries_in_range() -> None:
    """Only the master entry and tombstones (the node's range holds no live entry)."""
    entries = EntryMap([((9, 0), [b"x", b"1"])])
    dead = [((1, 0), [b"a", b"1"]), ((2, 0), [b"b", b"-0"])]
    lp = accel.collections.stream_node_listpack(entries, (1, 0), (2, 0), [b"a"], 0, 2, dead)
    assert lp is not None
    elements = listpack.decode(lp, True)
    assert elements[:5] == [b"0", b"2", b"1", b"a", b"0"]
    assert len(elements) == 5 + 5 + 7
