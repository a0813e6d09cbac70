"""A restored type-18 list kept as the payload's own quicklist nodes until a command needs the elements.

Redis loads a LIST_QUICKLIST_2 body by adopting each node's listpack as it is: no
element is touched, so RESTORE and the following DUMP of a big list cost little more
than copying bytes.  ``PackedList`` does the same for ``ListValue``: it keeps the
payload buffer and, per node, where its rdbString lies, its container, element count
and listpack size.  RESTORE has already checked every node exactly as a full decode
would (``read_nodes``), so ``elements()`` cannot fail later.

``write_body`` re-emits the nodes for a type-18 target: an LZF node string is copied
as it came when compression is on (what Redis would write again), anything else goes
through the usual rdbString writer; PLAIN nodes become one-element packed nodes for
targets that do not write PLAIN nodes (RDB 10, 11 and Valkey).

Must not: import ``dumpling.datatypes`` (``ListValue`` only sees the duck-typed
``length`` / ``layout()`` / ``elements()``), or hold anything mutable.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator

from dumpling.payload import listpack
from dumpling.payload.errors import bad_data
from dumpling.payload.primitives import ENC_LZF, append_len, append_string, read_len, read_string

CONTAINER_PLAIN = 1
CONTAINER_PACKED = 2
VALKEY_VERSION_MIN = 80

# One node: (container, start, end, element count, listpack bytes or element length);
# buf[start:end] is the node's rdbString in the payload.
PackedNode = tuple[int, int, int, int, int]


class PackedList:
    """The nodes of a restored quicklist, as they lie in the payload (immutable)."""

    __slots__ = ("buf", "nodes", "length")

    def __init__(self, buf: bytes, nodes: list[PackedNode] | tuple[PackedNode, ...]) -> None:
        self.buf = buf
        self.nodes = tuple(nodes)
        self.length = nodes[0][3] if len(nodes) == 1 else sum(node[3] for node in nodes)

    def layout(self) -> list[tuple[int, int, bool]]:
        """``(element count, listpack bytes or element length, plain)`` per node, head first."""
        return [(count, size, container == CONTAINER_PLAIN) for container, _, _, count, size in self.nodes]

    def shape(self) -> list[tuple[int, int, int]]:
        """``(container, bytes, count)`` per node, what the post-load encoding rule reads."""
        return [(container, size, count) for container, _, _, count, size in self.nodes]

    def elements(self) -> deque[bytes]:
        """Every element, head to tail (the nodes were validated when the payload was read)."""
        buf = self.buf
        out: deque[bytes] = deque()
        for container, start, end, _, _ in self.nodes:
            data = read_string(buf, start, end)[0]
            if container == CONTAINER_PLAIN:
                out.append(data)
            else:
                out.extend(listpack.decode(data, False))
        return out

    def node_data(self) -> Iterator[tuple[bool, bytes]]:
        """``(plain, data)`` per node, head first: a plain node's element, else its listpack
        (what ``ListValue`` adopts as its elements' entries without decoding them)."""
        buf = self.buf
        for container, start, end, _, _ in self.nodes:
            yield container == CONTAINER_PLAIN, read_string(buf, start, end)[0]

    def write_body(self, out: bytearray, version: int, compress: bool) -> None:
        """Append node count and nodes of a type-18 body for target ``version`` (>= 10)."""
        buf = self.buf
        view = memoryview(buf)
        plain_allowed = 12 <= version < VALKEY_VERSION_MIN
        append_len(out, len(self.nodes))
        for container, start, end, _, size in self.nodes:
            if container == CONTAINER_PLAIN and not plain_allowed:
                out.append(CONTAINER_PACKED)
                append_string(out, listpack.encode((read_string(buf, start, end)[0],)), compress)
                continue
            out.append(container)
            if compress and size > 20 and buf[start] == ENC_LZF:
                out += view[start:end]  # what rdbSaveRawString would compress it to
            else:
                append_string(out, read_string(buf, start, end)[0], compress)


def one_node(buf: bytes, start: int, stop: int, data: bytes, deep: bool) -> PackedList:
    """A body of one PACKED node whose rdbString ``buf[start:stop]`` holds the listpack
    ``data``: ``read_nodes``'s checks and value for it."""
    if not data:
        raise bad_data("quicklist node of zero bytes")
    count = listpack.count_entries(data, deep)
    if not count:
        raise bad_data("quicklist without elements")
    return PackedList(buf, ((CONTAINER_PACKED, start, stop, count, len(data)),))


def read_nodes(buf: bytes, pos: int, end: int, deep: bool) -> tuple[PackedList, int, int]:
    """Read and check a LIST_QUICKLIST_2 body from ``pos``: (nodes, next position, sanitizations).

    The checks and refusals are those of decoding every node: container 1 or 2, no
    zero-byte node, listpack header always and the full walk (deep when sanitizing);
    empty packed nodes are dropped as Redis drops them; no element at all is refused.
    """
    if buf[pos] == 1 and pos + 2 < end and buf[pos + 1] == CONTAINER_PACKED:
        # One packed node (every small list): no kinds to tally, one count.
        data, stop = read_string(buf, pos + 2, end)
        return one_node(buf, pos + 2, stop, data, deep), stop, 1 if deep else 0
    node_count, pos = read_len(buf, pos, end)
    if node_count * 2 > end - pos:
        raise bad_data(f"count {node_count} larger than the payload")
    if node_count == 0:
        raise bad_data("empty quicklist")
    read: list[tuple[int, int, int, bytes]] = []
    for _ in range(node_count):
        container, pos = read_len(buf, pos, end)
        if container != CONTAINER_PACKED and container != CONTAINER_PLAIN:
            raise bad_data("quicklist integrity check failed: bad container")
        start = pos
        data, pos = read_string(buf, pos, end)
        if not data:
            raise bad_data("quicklist node of zero bytes")
        read.append((container, start, pos, data))
    # The entry kind most nodes start with is what the fast count tries first.
    kinds = Counter(
        listpack.entry_kind(data[6])
        for container, _, _, data in read
        if container == CONTAINER_PACKED and len(data) > 6
    )
    kind = kinds.most_common(1)[0][0] if kinds else None
    nodes: list[PackedNode] = []
    sanitizations = 0
    count_entries = listpack.count_entries
    for container, start, stop, data in read:
        if container == CONTAINER_PLAIN:
            nodes.append((CONTAINER_PLAIN, start, stop, 1, len(data)))
            continue
        if deep:
            sanitizations += 1
        count = count_entries(data, deep, kind)
        if count:  # Redis silently skips empty nodes
            nodes.append((CONTAINER_PACKED, start, stop, count, len(data)))
    if not nodes:
        raise bad_data("quicklist without elements")
    return PackedList(buf, nodes), pos, sanitizations
