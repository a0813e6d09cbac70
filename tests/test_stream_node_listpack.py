"""A stream node's listpack for DUMP written in C (``dumpling._collections.stream_node_listpack``)
against its Python reference (``payload.stream._node_listpack_py``): the same bytes for every
node of random streams - XADDs with the master's fields, other fields and many fields, int-like,
empty and long values, IDs whose deltas wrap, XDEL and XTRIM tombstones, nodes spanning several
packed chunks, restored streams - and the same whole payloads; what the C code declines (a
list that is not field/value pairs) is still written, by the reference.  The node loop
(``stream_nodes_body``: every node's key and listpack, LZF'd and framed, in one C call) against
``encode_stream``'s Python loop: the same payloads, compressed or not, with python-lzf or the
pure LZF, consumer groups and PELs after the nodes, a declined node in the middle."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from dumpling import accel
from dumpling.datatypes.streams import Consumer, ConsumerGroup, EntryMap, PendingEntry, StreamValue
from dumpling.payload import compression, listpack
from dumpling.payload import stream as stream_payload
from dumpling.payload.decode import decode_payload
from dumpling.payload.encode import encode_payload
from dumpling.payload.options import CodecOptions
from tests.streamgen import random_stream


def encode(value: StreamValue) -> bytes:
    return encode_payload(value, 11)


native = pytest.mark.skipif(accel.collections is None, reason="dumpling._collections not built")


def _stream(rng: random.Random, count: int, max_bytes: int, max_entries: int, big_ids: bool = False,
            trims: bool = True) -> StreamValue:
    return random_stream(rng, count, max_bytes, (max_entries,), big_ids, trims)


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


# ----------------------------------------------------------------------------- the node loop


def _with_groups(rng: random.Random, s: StreamValue) -> StreamValue:
    """Two consumer groups, one with a PEL shared among consumers (what follows the nodes)."""
    ids = list(s.entries.keys())
    for name in (b"g1", b"g0"):
        group = ConsumerGroup(name, ids[len(ids) // 2] if ids else (0, 0), len(ids) // 2)
        for cname in (b"bob", b"alice"):
            consumer = Consumer(cname, 1700000000000 + rng.randrange(1000), 1700000000000)
            for entry_id in rng.sample(ids, min(len(ids), 5)):
                if entry_id not in group.pending:
                    nack = PendingEntry(cname, 1700000000000 + rng.randrange(1000), rng.randrange(1, 4))
                    group.pending[entry_id] = nack
                    consumer.pending[entry_id] = nack
            group.consumers[cname] = consumer
        s.groups[name] = group
    return s


def _payloads(streams: list[StreamValue], version: int, options: CodecOptions) -> list[bytes]:
    return [encode_payload(s, version, options) for s in streams]


def _python_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """encode_stream with no C at all: its own loop and the reference node writer."""
    monkeypatch.setattr(stream_payload, "_native_nodes_body", None)
    monkeypatch.setattr(stream_payload, "_native_node_listpack", None)


@native
@pytest.mark.parametrize("compress", [True, False])
def test_node_loop_writes_the_python_loop_bytes(monkeypatch: pytest.MonkeyPatch, compress: bool) -> None:
    """Whole payloads (types 15, 19, 21) of random streams - tombstones, trims, wrapping ID
    deltas, several node layouts, restored streams, groups with PELs - from the C node loop and
    from the Python loop and writer."""
    rng = random.Random(21 + compress)
    streams = []
    for count, max_bytes, max_entries in [(400, 4096, 100), (300, 300, 5), (1200, 1 << 30, 0)]:
        for r in range(2):
            streams.append(_with_groups(rng, _stream(rng, count, max_bytes, max_entries, big_ids=r == 1)))
    streams.append(decode_payload(encode(streams[0])).value)  # restored: its nodes and tombstones kept
    streams.append(StreamValue())  # no node at all
    options = CodecOptions(rdbcompression=compress)
    ours = {version: _payloads(streams, version, options) for version in (9, 10, 11)}
    _python_loop(monkeypatch)
    for version, payloads in ours.items():
        assert _payloads(streams, version, options) == payloads


@native
def test_node_loop_with_the_pure_lzf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without python-lzf the loop calls the pure compressor, as append_string does."""
    monkeypatch.setattr(compression, "rdb_lzf", compression._rdb_lzf_pure)
    rng = random.Random(4)
    streams = [_stream(rng, 250, 4096, 100) for _ in range(2)]
    ours = [encode(s) for s in streams]
    _python_loop(monkeypatch)
    assert [encode(s) for s in streams] == ours


@native
def test_a_declined_node_is_written_by_python_and_the_loop_goes_on() -> None:
    """A node in the middle whose entry is not field/value pairs: the C loop stops before it
    (writing nothing of it), the Python loop writes it, the C loop writes the rest."""
    flats = [[b"f", b"%d" % i] for i in range(30)]
    flats[14] = [b"f", b"x", b"odd"]
    s = StreamValue()
    s.entries = EntryMap([((i + 1, 0), flat) for i, flat in enumerate(flats)])
    s.last_id = (30, 0)
    nodes = list(s.nodes(4096, 10).values())
    assert len(nodes) == 3
    out = bytearray(b"head")
    assert accel.collections.stream_nodes_body(out, s.entries, nodes, 0, compression.rdb_lzf) == 1
    assert accel.collections.stream_nodes_body(out, s.entries, nodes, 2, compression.rdb_lzf) == 3
    reference = bytearray(b"head")
    for node in (nodes[0], nodes[2]):
        stream_payload.append_string(reference, stream_payload._ID.pack(*node.master_id))
        stream_payload.append_string(reference, stream_payload._node_listpack_py(node, s.entries))
    assert out == reference
    assert accel.collections.stream_nodes_body(out, s.entries, nodes, 1, None) == 1  # (nothing written)
    assert out == reference
    whole = encode(s)
    s.entries = EntryMap(list(s.entries.items()))
    assert stream_payload._native_nodes_body is not None
    assert whole == encode(s)


@native
def test_node_loop_refusals() -> None:
    """Arguments of the wrong kind are TypeErrors; a compressor that returns anything but bytes
    or None is one too, and the bytes written before it stay whole."""
    s = _stream(random.Random(2), 300, 4096, 100, trims=False)
    nodes = list(s.nodes(4096, 100).values())
    loop = accel.collections.stream_nodes_body
    with pytest.raises(TypeError):
        loop(b"", s.entries, nodes, 0, None)
    with pytest.raises(TypeError):
        loop(bytearray(), s.entries, tuple(nodes), 0, None)
    out = bytearray()
    calls = []

    def bad(data: bytes, room: int) -> object:
        calls.append(room)
        return None if len(calls) < 2 else "text"

    with pytest.raises(TypeError):
        loop(out, s.entries, nodes, 0, bad)
    reference = bytearray()
    stream_payload.append_string(reference, stream_payload._ID.pack(*nodes[0].master_id), False)
    stream_payload.append_string(reference, stream_payload._node_listpack_py(nodes[0], s.entries), False)
    assert out == reference
    assert loop(bytearray(), [], nodes, 0, None) == 0  # not an EntryMap: the Python loop's
    assert loop(bytearray(), s.entries, [object()], 0, None) == 0
