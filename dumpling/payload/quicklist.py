"""How a list is cut into quicklist nodes, per Redis version (§4.7, §5.2, §6.4).

Redis writes a list as its in-memory nodes, and those come from the history of
pushes.  We cannot know the history, so the writer lays a list out as if it had been
built by RPUSHing one element at a time on the target version; for such lists the
bytes equal Redis's.  The reader uses the same machinery with Redis 7.4 rules to
decide whether a restored list ends up ``listpack`` or ``quicklist``.

Profiles: "7.4" (RDB >= 12: PLAIN nodes for elements above the node limit),
"7.2" (RDB 11 and Valkey: starts as a listpack, PLAIN only >= 1 GiB), "7.0" (RDB 10:
always a quicklist) and "6.2" (RDB 7-9: ziplist nodes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dumpling.payload import bulk, compression, listpack, ziplist
from dumpling.payload.primitives import append_len, append_string

if TYPE_CHECKING:
    from dumpling.payload.envelope import Footer

CONTAINER_PLAIN = 1
CONTAINER_PACKED = 2

OPTIMIZATION_LEVEL = (4096, 8192, 16384, 32768, 65536)
SIZE_SAFETY_LIMIT = 8192
SIZE_ESTIMATE_OVERHEAD = 8
PACKED_THRESHOLD_LEGACY = 1 << 30  # Redis 7.0 / 7.2: PLAIN only for elements >= 1 GiB
ZIPLIST_EMPTY_SIZE = 11
LISTPACK_EMPTY_SIZE = 7


def _neg_fill_limit(fill: int) -> int:
    return OPTIMIZATION_LEVEL[min(-fill - 1, len(OPTIMIZATION_LEVEL) - 1)]


def node_limits(fill: int) -> tuple[int | None, int | None]:
    """quicklistNodeLimit (7.2+): (size limit, count limit); None = unlimited."""
    if fill >= 0:
        return None, (1 if fill == 0 else fill)
    return _neg_fill_limit(fill), None


def exceeds_limit(fill: int, new_size: int, new_count: int) -> bool:
    """quicklistNodeExceedsLimit (7.2+)."""
    size_limit, count_limit = node_limits(fill)
    if size_limit is not None:
        return new_size > size_limit
    assert count_limit is not None
    return new_size > SIZE_SAFETY_LIMIT or new_count > count_limit


def _meets_optimization(new_size: int, fill: int) -> bool:
    """_quicklistNodeSizeMeetsOptimizationRequirement (<= 7.0)."""
    if fill >= 0:
        return False
    offset = -fill - 1
    return offset < len(OPTIMIZATION_LEVEL) and new_size <= OPTIMIZATION_LEVEL[offset]


@dataclass(slots=True)
class Node:
    container: int
    items: list[bytes] = field(default_factory=list)
    size: int = 0  # listpack (or ziplist) bytes, as node->sz
    last_entry: int = 0  # ziplist only: size of the last entry (the next prevlen)

    def __len__(self) -> int:
        return len(self.items)


class NodePacker:
    """Feeds elements one by one through a profile's push rules."""

    def __init__(self, profile: str, fill: int, start_as_listpack: bool | None = None) -> None:
        self.profile = profile
        self.fill = fill
        self.nodes: list[Node] = []
        # 7.2+ lists start with listpack encoding and convert to quicklist when too big.
        self.listpack_phase = profile in ("7.2", "7.4") if start_as_listpack is None else start_as_listpack

    def _is_large(self, size: int) -> bool:
        if self.profile == "7.4":
            if self.fill >= 0:
                return size > SIZE_SAFETY_LIMIT
            return size > _neg_fill_limit(self.fill)
        if self.profile == "6.2":
            return False
        return size >= PACKED_THRESHOLD_LEGACY

    def _allow_insert(self, node: Node, size: int) -> bool:
        if node.container == CONTAINER_PLAIN or self._is_large(size):
            return False
        if self.profile == "6.2":
            new_size = node.size + size + (1 if size < 254 else 5) + (1 if size < 64 else 2 if size < 16384 else 5)
        else:
            new_size = node.size + size + SIZE_ESTIMATE_OVERHEAD
        if self.profile in ("6.2", "7.0"):
            if _meets_optimization(new_size, self.fill):
                return True
            if new_size > SIZE_SAFETY_LIMIT:
                return False
            return len(node.items) < self.fill
        return not exceeds_limit(self.fill, new_size, len(node.items) + 1)

    def _new_packed(self, item: bytes) -> None:
        if self.profile == "6.2":
            entry = 1 + ziplist.payload_size(item)
            self.nodes.append(Node(CONTAINER_PACKED, [item], ZIPLIST_EMPTY_SIZE + entry, entry))
        else:
            self.nodes.append(Node(CONTAINER_PACKED, [item], LISTPACK_EMPTY_SIZE + listpack.entry_size(item)))

    def push(self, item: bytes) -> None:
        nodes = self.nodes
        size = len(item)
        if self.listpack_phase:
            # listTypeTryConvertListpack before the push: lpBytes + added bytes vs the limits.
            if not nodes:
                nodes.append(Node(CONTAINER_PACKED, [], LISTPACK_EMPTY_SIZE))
            head = nodes[0]
            if not exceeds_limit(self.fill, head.size + size, len(head.items) + 1):
                head.items.append(item)
                head.size += listpack.entry_size(item)
                return
            self.listpack_phase = False
            if not head.items:
                nodes.clear()
        if self._is_large(size):
            nodes.append(Node(CONTAINER_PLAIN, [item], size))
            return
        if nodes and self._allow_insert(nodes[-1], size):
            tail = nodes[-1]
            tail.items.append(item)
            if self.profile == "6.2":
                # A ziplist entry's prevlen is 1 or 5 bytes depending on the previous entry.
                entry = (1 if tail.last_entry < ziplist.BIGLEN else 5) + ziplist.payload_size(item)
                tail.size += entry
                tail.last_entry = entry
            else:
                tail.size += listpack.entry_size(item)
            return
        self._new_packed(item)


def size_rule(profile: str, fill: int) -> tuple[int, int, bool] | None:
    """The parameters of ``_pack_by_size`` when ``pack`` takes that path (a size-limited
    fill, the default -2): ``(limit, large, listpack_phase)``; None otherwise."""
    if fill < 0 and profile != "6.2" and (profile != "7.0" or -fill - 1 < len(OPTIMIZATION_LEVEL)):
        limit = _neg_fill_limit(fill)
        return limit, limit if profile == "7.4" else PACKED_THRESHOLD_LEGACY - 1, profile != "7.0"
    return None


def pack(items: Iterable[bytes], profile: str, fill: int) -> list[Node]:
    """Nodes of a list RPUSHed element by element on ``profile``."""
    rule = size_rule(profile, fill)
    if rule is not None:
        return _pack_by_size(list(items), *rule)
    packer = NodePacker(profile, fill)
    for item in items:
        packer.push(item)
    return packer.nodes


def write_body(
    head: bytes,
    items: Iterable[bytes],
    compress: bool,
    shape: list[tuple[int, int]] | None,
    rule: tuple[int, int, bool] | None,
) -> bytes | None:
    """``head`` + a LIST_QUICKLIST_2 body (node count, nodes), built in C when the
    listpack codec is in use: ``shape`` gives each node's (element count, container),
    else ``rule`` (``size_rule``) cuts the list as ``pack`` does.  The bytes are those
    ``_encode_list`` writes for the same nodes.  None when C is off or does not take
    the input; the caller then runs the Python code."""
    native = listpack.native
    if native is None or (shape is None and rule is None):
        return None
    limit, large, phase = rule if shape is None and rule is not None else (0, 0, False)
    compressor = compression.compress_for_rdb if compress else None
    body: bytes | None = native.quicklist_body(head, items, compressor, shape, limit, large, phase)
    return body


def write_node_blobs(head: bytes, items: Any, compress: bool, shape: list[tuple[int, int]],
                     footer: Footer | None = None) -> bytes:
    """``head`` + a LIST_QUICKLIST_2 body of the nodes ``shape`` gives ((element count,
    container) each), when ``items`` keeps its elements as listpack entries
    (``ElementList.node_blobs``): a packed node's listpack is its entries copied as they lie,
    not re-encoded; the bytes are those ``write_body`` writes for the same shape.  With
    ``footer`` (``envelope.footer_parts``) the whole DUMP payload, sealed in the same buffer."""
    if all(container == CONTAINER_PACKED for _, container in shape):  # (every list but giant elements')
        compressor = compression.compress_for_rdb if compress else None
        counts = [count for count, _ in shape]
        return items.quicklist_body(head, counts, compressor, footer)  # type: ignore[no-any-return]
    blobs = items.node_blobs([(count, container == CONTAINER_PLAIN) for count, container in shape])
    out = bytearray(head)
    append_len(out, len(shape))
    for (_, container), blob in zip(shape, blobs, strict=True):
        out.append(container)
        append_string(out, blob, compress)
    if footer is not None:
        out += footer[0]
        out += footer[1](out).to_bytes(8, "little")
    return bytes(out)


def _pack_by_size(items: list[bytes], limit: int, large: int, listpack_phase: bool) -> list[Node]:
    """``pack`` for a size-limited fill (the default -2), inlined: same decisions as NodePacker.

    ``large``: elements longer than this get a plain node; ``listpack_phase``: the list
    starts as one listpack (7.2+)."""
    cuts = listpack.node_cuts(items, limit, large, listpack_phase)  # the loop below, in C
    if cuts is not None:
        return [Node(CONTAINER_PLAIN if plain else CONTAINER_PACKED, items[a:b], size) for a, b, plain, size in cuts]
    lens = list(map(len, items))
    odd = bulk.odd_elements(items, lens, 64)
    if not odd:
        return _pack_short_strings(items, lens, listpack_phase, limit)
    grows = listpack.entry_sizes(items, lens, odd)
    nodes: list[Node] = []
    start = 0
    node_size = 0  # lpBytes of the open packed node; 0 = no open packed node
    for index, item in enumerate(items):
        size = lens[index]
        grow = grows[index]
        if listpack_phase:
            if (node_size or LISTPACK_EMPTY_SIZE) + size <= limit:
                node_size = (node_size or LISTPACK_EMPTY_SIZE) + grow
                continue
            listpack_phase = False
        if size > large:
            if node_size:
                nodes.append(Node(CONTAINER_PACKED, items[start:index], node_size))
            nodes.append(Node(CONTAINER_PLAIN, [item], size))
            start = index + 1
            node_size = 0
        elif node_size and node_size + size + SIZE_ESTIMATE_OVERHEAD <= limit:
            node_size += grow
        else:
            if node_size:
                nodes.append(Node(CONTAINER_PACKED, items[start:index], node_size))
            start = index
            node_size = LISTPACK_EMPTY_SIZE + grow
    if node_size:
        nodes.append(Node(CONTAINER_PACKED, items[start:], node_size))
    return nodes


def _pack_short_strings(items: list[bytes], lens: list[int], listpack_phase: bool, limit: int) -> list[Node]:
    """``_pack_by_size`` when every element is a short string that is no integer.

    Each entry then takes ``len + 2`` bytes, so a node started at ``s`` takes element
    ``j`` while ``sum(len + 2 for s..j) <= limit - 13`` (``node + len + 8 <= limit``),
    and the initial listpack while that sum from 0 stays ``<= limit - 5``
    (``lpBytes + len <= limit``).  Each cut is found from a guess (the previous
    node's count) with one ``sum`` and a few steps, not one Python step per element.
    """
    count = len(items)
    nodes: list[Node] = []
    start = 0
    guess = 64
    budget = limit - 5 if listpack_phase else limit - 13
    while start < count:
        stop = min(start + guess, count)
        used = sum(lens[start:stop]) + 2 * (stop - start)  # entries start..stop-1
        if used <= budget:
            while stop < count and used + lens[stop] + 2 <= budget:
                used += lens[stop] + 2
                stop += 1
        else:
            while used > budget and stop > start + 1:
                stop -= 1
                used -= lens[stop] + 2
        if start == 0 and listpack_phase:
            # The listpack phase ends at the first element that does not fit; that
            # element opens the first quicklist node of its own (the listpack, if
            # any, becomes the node before it).
            budget = limit - 13
            if used > limit - 5:
                stop, used = 0, 0
            if stop == 0:
                continue
        nodes.append(Node(CONTAINER_PACKED, items[start:stop], LISTPACK_EMPTY_SIZE + used))
        guess = stop - start
        start = stop
    return nodes


def profile_for_version(rdb_version: int) -> str:
    if rdb_version >= 80:
        return "7.2"
    if rdb_version >= 12:
        return "7.4"
    if rdb_version == 11:
        return "7.2"
    if rdb_version == 10:
        return "7.0"
    return "6.2"
