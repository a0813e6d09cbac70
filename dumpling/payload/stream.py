"""Stream bodies (§4.10): types 15 (v1, Redis 5.0-6.2), 19 (v2, 7.0) and 21 (v3, 7.2+), both directions.

Reading flattens the radix-tree nodes (listpacks with a master entry and
delta-encoded IDs) into ``StreamValue.entries`` and rebuilds consumer groups with one
``PendingEntry`` object shared by the group PEL and its owner's PEL.  Writing lays
entries out in nodes exactly as consecutive XADDs would (``stream-node-max-bytes`` /
``-entries``); tombstones are not part of the value model, so a stream that had
XDELs is written as if the deleted entries had never been added.
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import TYPE_CHECKING

from sortedcontainers import SortedDict

from dumpling import accel
from dumpling.datatypes.streams import (
    Consumer,
    ConsumerGroup,
    EntryMap,
    IdMap,
    PendingEntry,
    StreamID,
    StreamNode,
    StreamValue,
)
from dumpling.payload import compression, listpack
from dumpling.payload.errors import bad_data
from dumpling.payload.primitives import (
    MASK64,
    append_len,
    append_string,
    millis_bytes,
    read_count,
    read_len,
    read_millis,
    read_string,
)

if TYPE_CHECKING:
    from dumpling.payload.decode import DecodeContext
    from dumpling.payload.options import CodecOptions

TYPE_STREAM_V1 = 15
TYPE_STREAM_V2 = 19
TYPE_STREAM_V3 = 21

FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2
LISTPACK_MAX_SIZE = 1 << 30  # STREAM_LISTPACK_MAX_SIZE
INVALID_ENTRIES_READ = -1
_ID = struct.Struct(">QQ")
_PEL_ENTRY_MIN = 16 + 8 + 1


def _to_bytes(x: bytes | int) -> bytes:
    return x if isinstance(x, bytes) else b"%d" % x


def _signed64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


# ---------------------------------------------------------------------------
# reading


def _decode_node(els: list, master: StreamID, deep: bool, out: list, walked_out: list) -> list[bytes]:
    """Append the live entries of one node listpack to ``out`` as (id, flat fields/values)
    and every entry walked to ``walked_out`` as (id, flat, deleted); the master fields."""
    as_int = listpack.as_int
    n = len(els)
    if n < 4:
        raise bad_data("stream node without a complete master entry")
    count = as_int(els[0])
    deleted = as_int(els[1])
    nfields = as_int(els[2])
    if count is None or deleted is None or nfields is None or nfields < 0 or 4 + nfields > n:
        raise bad_data("invalid stream master entry")
    master_fields = [_to_bytes(x) for x in els[3 : 3 + nfields]]
    if deep and as_int(els[3 + nfields]) != 0:
        raise bad_data("stream master entry not zero-terminated")
    master_ms, master_seq = master
    i = 4 + nfields
    walked = 0
    while i < n:
        if i + 3 > n:
            raise bad_data("truncated stream entry")
        flags = as_int(els[i])
        ms_delta = as_int(els[i + 1])
        seq_delta = as_int(els[i + 2])
        if flags is None or ms_delta is None or seq_delta is None:
            raise bad_data("stream entry header not integer")
        i += 3
        if flags & FLAG_SAMEFIELDS:
            k = nfields
            if i + k + 1 > n:
                raise bad_data("truncated stream entry")
            flat: list[bytes] = [b""] * (2 * k)
            flat[0::2] = master_fields
            flat[1::2] = [_to_bytes(x) for x in els[i : i + k]]
            i += k
            expected = k + 3
        else:
            k = as_int(els[i]) if i < n else None
            i += 1
            if k is None or k < 0 or i + 2 * k + 1 > n:
                raise bad_data("invalid stream entry field count")
            flat = [_to_bytes(x) for x in els[i : i + 2 * k]]
            i += 2 * k
            expected = 2 * k + 4
        lp_count = els[i]
        i += 1
        if deep and as_int(lp_count) != expected:
            raise bad_data("stream entry lp-count mismatch")
        walked += 1
        entry_id = ((master_ms + ms_delta) & MASK64, (master_seq + seq_delta) & MASK64)
        tombstone = bool(flags & FLAG_DELETED)
        if not tombstone:
            out.append((entry_id, flat))
        walked_out.append((entry_id, flat, tombstone))
    if deep and walked != count + deleted:
        raise bad_data("stream node entry count mismatch")
    return master_fields


_Walked = list[tuple[StreamID, list[bytes], bool]]


def _loaded_nodes(layout: list[tuple[StreamID, list[bytes], _Walked]]) -> list[StreamNode] | None:
    """The payload's radix tree as ``StreamNode``s, so the layout and its tombstones
    survive RESTORE (and a DUMP writes them back).  None - the value then lays its
    entries out as consecutive XADDs would - unless the layout is one Redis can have:
    nodes in ID order, each starting with its master ID, IDs strictly ascending
    across the whole tree, and at least one live entry per node."""
    nodes: list[StreamNode] = []
    previous: StreamID | None = None
    for master, master_fields, walked in layout:
        if not walked or walked[0][0] != master:
            return None
        node = StreamNode(master, master_fields)
        for entry_id, flat, deleted in walked:
            if previous is not None and entry_id <= previous:
                return None
            previous = entry_id
            node.add_id(entry_id)
            node.entries_bytes += node.entry_size(entry_id, flat)[0]
            if deleted:
                node.dead[entry_id] = flat
                node.deleted += 1
            else:
                node.live += 1
        if not node.live:
            return None
        nodes.append(node)
    return nodes


def estimate_entries_read(stream: StreamValue, stored_length: int, group_last_id: StreamID) -> int:
    """streamEstimateDistanceFromFirstEverEntry, as Redis runs it when loading a v1 stream."""
    if not stream.entries_added:
        return 0
    if not stored_length and group_last_id <= stream.last_id:
        return stream.entries_added
    if group_last_id == stream.last_id:
        return stream.entries_added
    if group_last_id > stream.last_id:
        return INVALID_ENTRIES_READ
    if stream.max_deleted_id == (0, 0) or stream.max_deleted_id < stream.first_id:
        if group_last_id < stream.first_id:
            return stream.entries_added - stored_length
        if group_last_id == stream.first_id:
            return stream.entries_added - stored_length + 1
    return INVALID_ENTRIES_READ


def _read_id(buf: bytes, pos: int, end: int) -> tuple[StreamID, int]:
    if pos + 16 > end:
        raise bad_data("stream ID past end of payload")
    return _ID.unpack_from(buf, pos), pos + 16


# a stream body's radix nodes read into an EntryMap in C (dumpling._collections), None: pure;
# tests set it to None to run the reference
_native_load_nodes = None if accel.collections is None else accel.collections.stream_load_nodes


def _read_node(ctx: DecodeContext, pos: int) -> tuple[bytes, bytes, int]:
    """One radix node's key (its master ID, 16 bytes) and listpack string, counted as a
    sanitization when the payload is deep-checked."""
    key, pos = read_string(ctx.buf, pos, ctx.end)
    if len(key) != 16:
        raise bad_data("stream node key is not the size of a stream ID")
    blob, pos = read_string(ctx.buf, pos, ctx.end)
    if ctx.deep:
        ctx.sanitizations += 1
    return key, blob, pos


def _decode_nodes_native(ctx: DecodeContext, pos: int, node_count: int) -> tuple[EntryMap, IdMap | None, int] | None:
    """``decode_stream``'s node loop in one C call, ``stream_load_nodes``: each node's key and
    listpack rdbStrings read (LZF expanded there, into one reused buffer: ``compression.decompress``
    is its reference), the listpack walked once
    with ``listpack.count``'s checks and ``_decode_node``'s, its live entries packed straight into
    the EntryMap's chunks (no Python object an entry) and its ``StreamNode`` built into the node
    map (None: not a layout Redis can have, as ``_loaded_nodes`` finds).  ``_read_node``,
    ``_decode_node`` and ``_loaded_nodes`` stay the reference; None (nothing kept) when the
    payload's node keys or IDs are not strictly ascending across the tree (the reference then
    refuses a repeated key, sorts, refuses duplicate IDs and lays the entries out again) or C is
    not in use."""
    if _native_load_nodes is None or type(ctx.buf) is not bytes:
        return None
    entries = EntryMap()
    got = _native_load_nodes(entries, ctx.buf, pos, ctx.end, node_count, ctx.deep)
    if got is None or got is False:
        return None
    if type(got) is str:
        raise bad_data(got)
    pos, nodes = got
    if ctx.deep:
        ctx.sanitizations += node_count
    return entries, nodes, pos


def decode_stream(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[StreamValue, int]:
    buf, end, deep = ctx.buf, ctx.end, ctx.deep
    stream = StreamValue()
    node_count, pos = read_count(buf, pos, end, 2)
    sanitizations = ctx.sanitizations
    loaded = _decode_nodes_native(ctx, pos, node_count)
    if loaded is not None:
        entries, node_map, pos = loaded
        stream.entries = entries
        if node_map is not None:
            stream.adopt_node_map(node_map)
        return _decode_stream_tail(ctx, pos, type_byte, stream, node_count)
    ctx.sanitizations = sanitizations
    raw: list[tuple[StreamID, list[bytes]]] = []
    node_keys: set[bytes] = set()
    layout: list[tuple[StreamID, list[bytes], _Walked]] = []
    for _ in range(node_count):
        key, blob, pos = _read_node(ctx, pos)
        els = listpack.decode(blob, deep, ints_as_bytes=False, check_count=False)
        if not els:
            raise bad_data("empty listpack inside stream")
        if key in node_keys:
            raise bad_data("stream listpack re-added with existing key")
        node_keys.add(key)
        master = _ID.unpack(key)
        walked: _Walked = []
        master_fields = _decode_node(els, master, deep, raw, walked)
        layout.append((master, master_fields, walked))
    entries = SortedDict(raw)
    if len(entries) != len(raw):
        raise bad_data("duplicate stream entry IDs")
    stream.entries = entries
    nodes = _loaded_nodes(layout)
    if nodes is not None:
        stream.adopt_nodes(nodes)
    return _decode_stream_tail(ctx, pos, type_byte, stream, node_count)


def _decode_stream_tail(ctx: DecodeContext, pos: int, type_byte: int, stream: StreamValue, node_count: int) -> tuple[StreamValue, int]:
    """The rest of a stream body after its nodes: length, IDs, counters, consumer groups."""
    buf, end = ctx.buf, ctx.end
    entries = stream.entries
    stored_length, pos = read_len(buf, pos, end)
    last_ms, pos = read_len(buf, pos, end)
    last_seq, pos = read_len(buf, pos, end)
    stream.last_id = (last_ms, last_seq)
    if type_byte >= TYPE_STREAM_V2:
        first_ms, pos = read_len(buf, pos, end)
        first_seq, pos = read_len(buf, pos, end)
        del_ms, pos = read_len(buf, pos, end)
        del_seq, pos = read_len(buf, pos, end)
        stream.entries_added, pos = read_len(buf, pos, end)
        stream.first_id = (first_ms, first_seq)
        stream.max_deleted_id = (del_ms, del_seq)
    else:
        stream.max_deleted_id = (0, 0)
        stream.entries_added = stored_length
        # streamGetEdgeID on an empty stream yields the maximal ID.
        stream.first_id = entries.keys()[0] if entries else (MASK64, MASK64)
    if stored_length and not node_count:
        raise bad_data("stream length inconsistent with rax entries")

    group_count, pos = read_count(buf, pos, end, 4)
    for _ in range(group_count):
        group, pos = _decode_group(ctx, pos, type_byte, stream, stored_length)
        if group.name in stream.groups:
            raise bad_data("duplicated consumer group name")
        stream.groups[group.name] = group
    return stream, pos


def _decode_group(
    ctx: DecodeContext, pos: int, type_byte: int, stream: StreamValue, stored_length: int
) -> tuple[ConsumerGroup, int]:
    buf, end = ctx.buf, ctx.end
    name, pos = read_string(buf, pos, end)
    last_ms, pos = read_len(buf, pos, end)
    last_seq, pos = read_len(buf, pos, end)
    last_id = (last_ms, last_seq)
    if type_byte >= TYPE_STREAM_V2:
        raw_read, pos = read_len(buf, pos, end)
        entries_read = _signed64(raw_read)
    else:
        entries_read = estimate_entries_read(stream, stored_length, last_id)
    group = ConsumerGroup(name=name, last_id=last_id, entries_read=entries_read)

    pel_count, pos = read_count(buf, pos, end, _PEL_ENTRY_MIN)
    pel_items: list[tuple[StreamID, PendingEntry]] = []
    for _ in range(pel_count):
        entry_id, pos = _read_id(buf, pos, end)
        delivery_time, pos = read_millis(buf, pos, end)
        delivery_count, pos = read_len(buf, pos, end)
        pel_items.append((entry_id, PendingEntry(b"", delivery_time, delivery_count)))
    pel = SortedDict(pel_items)
    if len(pel) != len(pel_items):
        raise bad_data("duplicated global PEL entry")
    group.pending = pel

    owned: set[StreamID] = set()
    consumer_count, pos = read_count(buf, pos, end, 9)
    for _ in range(consumer_count):
        cname, pos = read_string(buf, pos, end)
        if cname in group.consumers:
            raise bad_data("duplicate stream consumer")
        seen, pos = read_millis(buf, pos, end)
        if type_byte >= TYPE_STREAM_V3:
            active, pos = read_millis(buf, pos, end)
        else:
            active = seen  # Redis's best estimate for older payloads
        consumer = Consumer(name=cname, seen_time_ms=seen, active_time_ms=active)
        own_count, pos = read_count(buf, pos, end, 16)
        for _ in range(own_count):
            entry_id, pos = _read_id(buf, pos, end)
            nack = pel.get(entry_id)
            if nack is None:
                raise bad_data("consumer entry not found in group global PEL")
            if entry_id in owned:
                raise bad_data("PEL entry claimed twice")
            owned.add(entry_id)
            nack.consumer = cname
            consumer.pending[entry_id] = nack
        group.consumers[cname] = consumer
    if len(owned) != len(pel):
        # Redis refuses this only when sanitizing; an owner-less NACK cannot be represented.
        raise bad_data("stream CG PEL entry without consumer")
    return group, pos


# ---------------------------------------------------------------------------
# writing


_first = itemgetter(0)
# a node's listpack in C (dumpling._collections), None: pure; tests set it to None to run the reference
_native_node_listpack = None if accel.collections is None else accel.collections.stream_node_listpack


def _node_listpack(node: StreamNode, entries: IdMap) -> bytes:
    """The listpack of one radix-tree node as Redis holds it: master entry with the live
    and deleted counts, then every entry ever appended to it, tombstones flagged.  The C
    ``stream_node_listpack`` writes it straight from an ``EntryMap``'s packed chunks; this
    code is its reference and runs when it declines (or under ``DUMPLING_PURE``)."""
    if _native_node_listpack is not None and type(entries) is EntryMap:
        dead = sorted(node.dead.items(), key=_first) if node.dead else None
        lp = _native_node_listpack(entries, node.master_id, node.last_id, node.master_fields, node.live, node.deleted, dead)
        if lp is not None:
            return lp
    return _node_listpack_py(node, entries)


def _node_listpack_py(node: StreamNode, entries: IdMap) -> bytes:
    """``_node_listpack`` in Python."""
    int_entry = listpack.int_entry_bytes
    entry_bytes = listpack.entry_bytes
    fields = node.master_fields
    master_ms, master_seq = node.master_id
    body = bytearray(int_entry(node.live))
    body += int_entry(node.deleted)
    body += int_entry(len(fields))
    for name in fields:
        body += entry_bytes(name)
    body += int_entry(0)
    elements = 3 + len(fields) + 1
    # the node's live entries (the stream's from its master ID to its last), tombstones among them
    walked = [(entry_id, flat, 0) for entry_id, flat in entries.irange_items(node.master_id, node.last_id)]
    if node.dead:
        walked += [(entry_id, flat, FLAG_DELETED) for entry_id, flat in node.dead.items()]
        walked.sort(key=_first)
    for entry_id, flat, flags in walked:
        numfields = len(flat) // 2
        same = flat[0::2] == fields
        body += int_entry(flags | FLAG_SAMEFIELDS if same else flags)
        body += int_entry(_signed64(entry_id[0] - master_ms))
        body += int_entry(_signed64(entry_id[1] - master_seq))
        if same:
            for value in flat[1::2]:
                body += entry_bytes(value)
            lp_count = numfields + 3
        else:
            body += int_entry(numfields)
            for item in flat:
                body += entry_bytes(item)
            lp_count = 2 * numfields + 4
        body += int_entry(lp_count)
        elements += lp_count + 1
    return listpack.assemble(body, elements)


# every node's key and listpack in one C pass (dumpling._collections), None: pure; tests set it
# to None to run the loop below
_native_nodes_body = None if accel.collections is None else accel.collections.stream_nodes_body


def _write_nodes(out: bytearray, nodes: list[StreamNode], entries: IdMap, compress: bool) -> None:
    """Each radix-tree node's master ID and listpack as rdbStrings.  The C
    ``stream_nodes_body`` writes them (LZF through the same ``compression.rdb_lzf`` call
    ``append_string`` makes) up to a node it declines; this loop writes that one and hands
    the rest back to it."""
    i, count = 0, len(nodes)
    native = _native_nodes_body if type(entries) is EntryMap else None
    lzf = compression.rdb_lzf if compress else None
    while i < count:
        if native is not None:
            i = native(out, entries, nodes, i, lzf)
            if i >= count:
                break
        node = nodes[i]
        append_string(out, _ID.pack(*node.master_id), compress)
        append_string(out, _node_listpack(node, entries), compress)
        i += 1


def encode_stream(stream: StreamValue, type_byte: int, options: CodecOptions, head: bytes = b"") -> bytearray:
    """``head`` (encode_body's type byte: no copy of a big body to put it first) then the body
    of a type 15, 19 or 21 stream.  The radix tree's nodes are the value's own layout (built as
    consecutive XADDs would have built it when the value has none yet), XDEL/XTRIM tombstones
    included."""
    compress = options.rdbcompression
    out = bytearray(head)
    nodes = stream.nodes(options.stream_node_max_bytes, options.stream_node_max_entries)
    append_len(out, len(nodes))
    _write_nodes(out, list(nodes.values()), stream.entries, compress)
    append_len(out, len(stream.entries))
    append_len(out, stream.last_id[0])
    append_len(out, stream.last_id[1])
    if type_byte >= TYPE_STREAM_V2:
        append_len(out, stream.first_id[0])
        append_len(out, stream.first_id[1])
        append_len(out, stream.max_deleted_id[0])
        append_len(out, stream.max_deleted_id[1])
        append_len(out, stream.entries_added)
    append_len(out, len(stream.groups))
    for name in sorted(stream.groups):
        group = stream.groups[name]
        append_string(out, name, compress)
        append_len(out, group.last_id[0])
        append_len(out, group.last_id[1])
        if type_byte >= TYPE_STREAM_V2:
            append_len(out, group.entries_read & MASK64)
        append_len(out, len(group.pending))
        for entry_id, nack in group.pending.items():
            out += _ID.pack(*entry_id)
            out += millis_bytes(nack.delivery_time_ms)
            append_len(out, nack.delivery_count)
        append_len(out, len(group.consumers))
        for cname in sorted(group.consumers):
            consumer = group.consumers[cname]
            append_string(out, cname, compress)
            out += millis_bytes(consumer.seen_time_ms)
            if type_byte >= TYPE_STREAM_V3:
                out += millis_bytes(consumer.active_time_ms)
            append_len(out, len(consumer.pending))
            for entry_id in consumer.pending:
                out += _ID.pack(*entry_id)
    return out


def min_stream_version(stream: StreamValue) -> int:
    """Lowest RDB version whose stream type reloads this stream without losing anything.

    Consumers' active time does not count: only type 21 (RDB 11) stores it, Redis 7.0
    (RDB 10) has no such field, and Redis 7.2+ itself derives it from the seen time when
    it loads types 15/19 - so a target of 10 gets type 19, as Redis writes it, rather
    than a payload 7.0 refuses."""
    if stream.max_deleted_id != (0, 0) or stream.entries_added != len(stream.entries):
        return 10
    if stream.entries and stream.first_id != stream.entries.keys()[0]:
        return 10
    for group in stream.groups.values():
        if group.entries_read != estimate_entries_read(stream, len(stream.entries), group.last_id):
            return 10
    return 9
