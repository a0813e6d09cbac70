"""List values: the elements, plus the listpack/quicklist shape Redis 7.4 would have.

``items`` is an ``ElementList`` (``dumpling.datatypes.listelements``): in C, every element
kept as one listpack entry in chunks of a few KB, not as a Python object (the reference
without C is a deque).  Push and pop at both ends are O(1), indexing walks chunks from the
nearer end, LTRIM frees whole chunks.  Next to it the value keeps just enough
of Redis's memory layout to report the same ``OBJECT ENCODING`` and to let DUMP
write the same quicklist nodes:

* while ``encoding == "listpack"``: the byte size of the single listpack
  (header + entries + end byte), which decides the switch to a quicklist;
* while ``encoding == "quicklist"``: one ``[count, bytes, plain]`` record per
  quicklist node, updated by the same rules ``quicklist.c`` applies (node fill
  limits, plain nodes for oversized elements, splits and merges on insert), so a
  shrinking list turns back into a listpack exactly when Redis's would.

``fill`` is the ``list-max-listpack-size`` setting; every mutator takes it.  Sizes
are recomputed from ``items`` if something changed the elements behind our back (for
instance the payload codec building a value), so the shape is never stale.

A restored list may start *packed* (``from_packed``): the payload's quicklist nodes
are kept as they came (a ``PackedList`` from the payload codec; this module only
uses its ``length``, ``layout()`` and ``node_data()``/``elements()``) and ``items`` is
built on first access, each packed node's entries copied as they lie.  Until then ``len()``, the node layout, ``OBJECT ENCODING`` and
``MEMORY USAGE`` answer from the nodes, and until the first write ``packed_source()``
hands the nodes to DUMP, which re-emits them instead of re-encoding every element.

This module also owns the listpack/jemalloc size arithmetic the other collection
types share.  It must not know about commands, keys or the keyspace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dumpling import accel
from dumpling.datatypes.listelements import ElementList, elements_of, elements_of_nodes
from dumpling.datatypes.sizes import listpack_int_entry_size, listpack_str_entry_size
from dumpling.numbers import index_span, parse_int64

LP_HEADER_BYTES = 7  # 4-byte total size + 2-byte count + end byte
SIZE_SAFETY_LIMIT = 8192  # per-node byte cap when the fill is a count
SIZE_ESTIMATE_OVERHEAD = 8  # quicklist.c's estimate of a new entry's overhead
NEG_FILL_LIMITS = (4096, 8192, 16384, 32768, 65536)
UINT_MAX = (1 << 32) - 1
SIZE_MAX = (1 << 64) - 1

_INT_START = frozenset(b"0123456789-")

# lpStringToInt64: the integer a listpack stores ``element`` as (Redis's string2ll), else None.
lp_int_value = parse_int64


# ----------------------------------------------------------------------------- sizes


def lp_entry_size(element: bytes) -> int:
    """Bytes one element takes inside a listpack (encoding, data and back-length)."""
    if element and element[0] in _INT_START:
        value = parse_int64(element)
        if value is not None:
            return listpack_int_entry_size(value)
    n = len(element)
    return n + 2 if n < 64 else listpack_str_entry_size(n)


def _native_listpack() -> Any:
    """The C listpack codec (``dumpling.payload._listpack``) while the payload codec uses
    it - ``DUMPLING_PURE``, ``DUMPLING_PURE_PAYLOAD`` and ``listpack.use_native`` decide -
    else None.  Looked up at call time (``listpack.use_native`` switches it), the module
    imported once: ``dumpling.payload`` imports this package."""
    module = _listpack_module
    if not module:
        from dumpling.payload import listpack

        module.append(listpack)
        return listpack.native
    return module[0].native


_listpack_module: list[Any] = []


def lp_entry_sizes(elements: Iterable[bytes]) -> list[int]:
    """``[lp_entry_size(e) for e in elements]``, in C when the listpack codec is built."""
    items = elements if type(elements) is list else list(elements)
    native = _native_listpack()
    if native is not None:
        sizes = native.entry_sizes(items)
        if sizes is not None:  # None: an element that is not bytes or bytearray
            return sizes
    return list(map(lp_entry_size, items))


def lp_bytes_of(elements: Iterable[bytes]) -> int:
    return LP_HEADER_BYTES + sum(lp_entry_sizes(elements))


def jemalloc_size(n: int) -> int:
    """The jemalloc size class an allocation of ``n`` bytes lands in."""
    if n <= 8:
        return 8
    if n <= 128:
        return (n + 15) & ~15
    step = 1 << ((n - 1).bit_length() - 3)
    return (n + step - 1) // step * step


def sds_alloc_size(length: int) -> int:
    """Allocation of an sds string of ``length`` bytes (header, data, NUL)."""
    if length < 32:
        header = 1
    elif length < 256:
        header = 3
    elif length < 65536:
        header = 5
    else:
        header = 9
    return jemalloc_size(header + length + 1)


# ----------------------------------------------------------------------------- node limits


def node_limits(fill: int) -> tuple[int, int]:
    """``quicklistNodeLimit``: (byte limit, count limit) of one node / listpack."""
    limits = _NODE_LIMITS.get(fill)
    if limits is None:
        if fill >= 0:
            limits = (SIZE_MAX, 1 if fill == 0 else fill)
        else:
            limits = (NEG_FILL_LIMITS[min(-fill - 1, len(NEG_FILL_LIMITS) - 1)], UINT_MAX)
        _NODE_LIMITS[fill] = limits
    return limits


_NODE_LIMITS: dict[int, tuple[int, int]] = {}


def exceeds_limit(fill: int, new_bytes: int, new_count: int) -> bool:
    """``quicklistNodeExceedsLimit``."""
    size_limit, count_limit = node_limits(fill)
    if size_limit != SIZE_MAX:
        return new_bytes > size_limit
    if new_bytes > SIZE_SAFETY_LIMIT:
        return True
    return new_count > count_limit


# LTRIM drops this many elements or more a node at a time (fewer: one by one, as pops)
_DROP_MIN = 256

# DEBUG QUICKLIST-PACKED-THRESHOLD (quicklist.c's ``packed_threshold``): when set, an element
# of at least this many bytes gets a PLAIN node whatever the fill; 0 = Redis's size rules.
PACKED_THRESHOLD_MAX = (1 << 32) - (1 << 20)
_packed_threshold = 0


def set_packed_threshold(size: int) -> bool:
    """``quicklistSetPackedThreshold``: False (unchanged) above PACKED_THRESHOLD_MAX."""
    global _packed_threshold
    if size > PACKED_THRESHOLD_MAX:
        return False
    _packed_threshold = size
    if _native is not None:
        _native.set_packed_threshold(size)
    return True


# dumpling._collections: the one-element push and pop below (``_push_one``, pop's common case)
# in C, the same rules; each declines what is not its case and the Python code runs.
_native = accel.collections
_native_push_one = None if _native is None else _native.list_push_one
_native_pop_one = None if _native is None else _native.list_pop_one


def is_large_element(size: int, fill: int) -> bool:
    """Redis 7.4 keeps an element this big in a PLAIN node of its own."""
    if _packed_threshold:
        return size >= _packed_threshold
    if fill >= 0:
        return size > SIZE_SAFETY_LIMIT
    return size > node_limits(fill)[0]


# A quicklist node: [count, bytes, plain].  ``bytes`` is lpBytes of the node's
# listpack, or the element length for a plain node.
Node = list
# ``_nodes`` of a listpack-encoded list (no nodes): one shared empty tuple, not an empty list
# per value (72 bytes of every small list).  A quicklist-encoded list always has a list.
NO_NODES: tuple[()] = ()


def _allow_insert(node: Node | None, fill: int, size: int) -> bool:
    """``_quicklistNodeAllowInsert`` (``size`` is the raw element length)."""
    if node is None or node[2] or is_large_element(size, fill):
        return False
    return not exceeds_limit(fill, node[1] + size + SIZE_ESTIMATE_OVERHEAD, node[0] + 1)


def _allow_merge(a: Node | None, b: Node | None, fill: int) -> bool:
    if a is None or b is None or a[2] or b[2]:
        return False
    return not exceeds_limit(fill, a[1] + b[1] - LP_HEADER_BYTES, a[0] + b[0])


class ListValue:
    TYPE = b"list"
    __slots__ = ("_items", "_packed", "encoding", "_lp_bytes", "_nodes", "_shape_len")

    def __init__(self, items: Iterable[bytes] = (), encoding: str = "listpack") -> None:
        self._items: Any = ElementList(items)
        # The restored nodes while no write happened (see ``from_packed``); else None.
        self._packed: Any = None
        self.encoding = encoding
        self._lp_bytes = 0
        self._nodes: list[Node] | tuple[()] = NO_NODES
        self._shape_len = -1  # len(items) when the shape was last known; -1 = unknown

    @classmethod
    def from_packed(cls, packed: Any, encoding: str) -> ListValue:
        """A list whose elements stay in ``packed`` (``length``, ``layout()``,
        ``elements()``) until first needed; pass its layout to ``adopt_layout``."""
        value = cls((), encoding)
        value._items = None
        value._packed = packed
        return value

    @property
    def items(self) -> Any:
        """The elements (an ``ElementList``), unpacked from the restored nodes on first use."""
        items = self._items
        if items is None:
            items = self._items = elements_of_nodes(self._packed)
        return items

    @items.setter
    def items(self, items: Iterable[bytes]) -> None:
        self._items = elements_of(items)
        self._packed = None

    def packed_source(self) -> Any:
        """The restored nodes if the list was not written since RESTORE (for DUMP), else None."""
        packed = self._packed
        if packed is not None and self._items is not None and len(self._items) != packed.length:
            packed = self._packed = None  # changed behind our back
        return packed

    def _written(self) -> None:
        """Every mutator calls this first: the restored nodes no longer describe the list."""
        if self._packed is not None:
            if self._items is None:
                self._items = elements_of_nodes(self._packed)
            self._packed = None

    def __len__(self) -> int:
        items = self._items
        return self._packed.length if items is None else len(items)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.items)

    def copy(self) -> ListValue:
        if self._items is None:
            dup = ListValue.from_packed(self._packed, self.encoding)
        else:
            dup = ListValue((), self.encoding)
            dup._items = self._items.copy()
            dup._packed = self.packed_source()
        if self._shape_len == len(self):
            dup._lp_bytes = self._lp_bytes
            dup._nodes = [list(node) for node in self._nodes] if self._nodes else NO_NODES
            dup._shape_len = self._shape_len
        return dup

    # -- shape bookkeeping ---------------------------------------------------------

    def _sync(self, fill: int) -> None:
        """Rebuild the shape if ``items`` changed without going through a mutator."""
        items = self._items
        if self._shape_len == (self._packed.length if items is None else len(items)):
            return
        if self.encoding == "listpack":
            self._lp_bytes = LP_HEADER_BYTES + self.items.entry_bytes(0, len(self.items))
        else:
            self._nodes = []
            self._ql_push_many(list(self.items), False, fill)
        self._shape_len = len(self.items)

    def nodes(self, fill: int) -> list[tuple[int, bool]]:
        """Quicklist node layout as ``(element count, plain)`` from head to tail.

        A listpack-encoded list is one packed node, which is also how Redis dumps it.
        """
        self._sync(fill)
        if self.encoding == "listpack":
            return [(len(self), False)] if len(self) else []
        return [(node[0], bool(node[2])) for node in self._nodes]

    def adopt_layout(self, nodes: Iterable[tuple[int, int, bool]]) -> None:
        """Take a quicklist node layout as loaded (RESTORE keeps the payload's nodes):
        ``(element count, listpack bytes or element length, plain)`` per node, head to
        tail.  Ignored unless the element counts add up to the list's length; a
        listpack-encoded list takes the size of its one packed node."""
        layout = [[count, size, bool(plain)] for count, size, plain in nodes]
        if sum(node[0] for node in layout) != len(self):
            return
        if self.encoding == "quicklist":
            self._nodes = layout
            self._shape_len = len(self)
        elif len(layout) == 1 and not layout[0][2]:
            self._lp_bytes = layout[0][1]
            self._shape_len = len(self)

    def listpack_bytes(self, fill: int) -> int:
        self._sync(fill)
        if self.encoding == "listpack":
            return self._lp_bytes
        return sum(node[1] for node in self._nodes if not node[2])

    def _to_quicklist(self) -> None:
        self._nodes = [[len(self.items), self._lp_bytes, False]] if self.items else []
        self.encoding = "quicklist"

    def _grow(self, fill: int, add_bytes: int, add_count: int) -> None:
        """LIST_CONV_GROWING before adding elements of ``add_bytes`` raw bytes."""
        if self.encoding == "listpack" and exceeds_limit(fill, self._lp_bytes + add_bytes, len(self.items) + add_count):
            self._to_quicklist()

    def shrunk(self, fill: int) -> None:
        """LIST_CONV_SHRINKING: back to a listpack below half the limits (hysteresis)."""
        self._sync(fill)
        self._try_listpack(fill, shrinking=True)

    def normalize(self, fill: int) -> None:
        """LIST_CONV_AUTO: the encoding a freshly built list gets (SORT STORE, RESTORE)."""
        self._sync(fill)
        if self.encoding == "listpack":
            if exceeds_limit(fill, self._lp_bytes, len(self.items)):
                self._to_quicklist()
        else:
            self._try_listpack(fill, shrinking=False)

    def _try_listpack(self, fill: int, shrinking: bool) -> None:
        if self.encoding != "quicklist" or len(self._nodes) != 1 or self._nodes[0][2]:
            return
        size_limit, count_limit = node_limits(fill)
        if shrinking:
            size_limit //= 2
            count_limit //= 2
        node = self._nodes[0]
        if node[1] > size_limit or node[0] > count_limit:
            return
        self._lp_bytes = node[1]
        self._nodes = NO_NODES
        self.encoding = "listpack"

    # -- quicklist node operations --------------------------------------------------

    def _ql_pop(self, element: bytes, head: bool) -> None:
        nodes = self._nodes
        index = 0 if head else -1
        node = nodes[index]
        if node[2] or node[0] == 1:
            del nodes[index]
        else:
            node[0] -= 1
            node[1] -= lp_entry_size(element)

    def _ql_pop_many(self, popped: list[bytes], head: bool) -> None:
        """``_ql_pop`` of each element of ``popped`` (in the order they left that end), a whole
        node at a time: LTRIM or a big LPOP COUNT costs per node, not per element."""
        nodes = self._nodes
        end = 0 if head else -1
        i, n = 0, len(popped)
        while i < n:
            node = nodes[end]
            if node[2] or node[0] <= n - i:  # the node goes (a plain node holds one element)
                i += 1 if node[2] else node[0]
                del nodes[end]
            else:
                node[0] -= n - i
                node[1] -= sum(lp_entry_sizes(popped[i:]))
                i = n

    def _locate(self, index: int, forward: bool = False) -> tuple[int, int]:
        """(node position, offset inside it) of element ``index`` (0 <= index < len).

        Seeks from the nearer end unless ``forward`` (needed while nodes past
        ``index`` no longer match ``items``).
        """
        nodes = self._nodes
        if forward or index <= len(self.items) // 2:
            for pos, node in enumerate(nodes):
                if index < node[0]:
                    return pos, index
                index -= node[0]
        else:
            back = len(self.items) - 1 - index
            for pos in range(len(nodes) - 1, -1, -1):
                count = nodes[pos][0]
                if back < count:
                    return pos, count - 1 - back
                back -= count
        raise IndexError(index)

    def _node_start(self, pos: int) -> int:
        return sum(node[0] for node in self._nodes[:pos])

    def _split(self, pos: int, offset: int, after: bool) -> Node:
        """``_quicklistSplitNode``: the returned node is not yet linked in.

        after=True: the node keeps [0, offset], the new node gets (offset, end].
        after=False: the new node gets [0, offset), the node keeps [offset, end].
        """
        node = self._nodes[pos]
        start = self._node_start(pos)
        first, stop = (start + offset + 1, start + node[0]) if after else (start, start + offset)
        moved_bytes = self.items.entry_bytes(first, stop)
        node[0] -= stop - first
        node[1] -= moved_bytes
        return [stop - first, LP_HEADER_BYTES + moved_bytes, False]

    def _merge(self, left_pos: int) -> int:
        """Merge node ``left_pos`` with the one after it; returns the merged position."""
        nodes = self._nodes
        a, b = nodes[left_pos], nodes[left_pos + 1]
        a[0] += b[0]
        a[1] += b[1] - LP_HEADER_BYTES
        del nodes[left_pos + 1]
        return left_pos

    def _merge_around(self, center: Node, fill: int) -> None:
        """``_quicklistMergeNodes``."""
        nodes = self._nodes

        def at(pos: int) -> Node | None:
            return nodes[pos] if 0 <= pos < len(nodes) else None

        pos = self._index_of(center)
        if _allow_merge(at(pos - 1), at(pos - 2), fill):
            self._merge(pos - 2)
            pos -= 1
        if _allow_merge(at(pos + 1), at(pos + 2), fill):
            self._merge(pos + 1)
        if _allow_merge(at(pos), at(pos - 1), fill):
            pos = self._merge(pos - 1)
        if _allow_merge(at(pos), at(pos + 1), fill):
            self._merge(pos)

    def _index_of(self, node: Node) -> int:
        for pos, candidate in enumerate(self._nodes):
            if candidate is node:
                return pos
        raise ValueError("node not in list")

    def _ql_insert(self, index: int, element: bytes, after: bool, fill: int) -> None:
        """``_quicklistInsert`` next to element ``index`` (the items are updated by the caller)."""
        nodes = self._nodes
        size = len(element)
        entry = lp_entry_size(element)
        pos, offset = self._locate(index)
        node = nodes[pos]
        prev_node = nodes[pos - 1] if pos > 0 else None
        next_node = nodes[pos + 1] if pos + 1 < len(nodes) else None
        full = not _allow_insert(node, fill, size)
        at_tail = after and offset == node[0] - 1
        at_head = not after and offset == 0
        avail_next = at_tail and _allow_insert(next_node, fill, size)
        avail_prev = at_head and _allow_insert(prev_node, fill, size)
        where = pos + 1 if after else pos
        if is_large_element(size, fill):
            plain = [1, size, True]
            if node[2] or at_tail or at_head:
                nodes.insert(where, plain)
            else:
                rest = self._split(pos, offset, after)
                if after:
                    nodes[pos + 1:pos + 1] = [plain, rest]
                else:
                    nodes[pos:pos] = [rest, plain]
            return
        if not full:
            node[0] += 1
            node[1] += entry
        elif at_tail and avail_next:
            assert next_node is not None
            next_node[0] += 1
            next_node[1] += entry
        elif at_head and avail_prev:
            assert prev_node is not None
            prev_node[0] += 1
            prev_node[1] += entry
        elif at_tail or at_head:
            nodes.insert(where, [1, LP_HEADER_BYTES + entry, False])
        else:
            rest = self._split(pos, offset, after)
            rest[0] += 1
            rest[1] += entry
            nodes.insert(pos + 1 if after else pos, rest)
            self._merge_around(node, fill)

    # -- mutators (fill = list-max-listpack-size) -------------------------------------

    def push(self, elements: list[bytes], head: bool, fill: int, counted_bytes: int | None = None) -> None:
        """LPUSH/RPUSH: convert if needed (``counted_bytes`` overrides the raw-size sum), then push."""
        items = self._items
        if len(elements) == 1 and counted_bytes is None and self._packed is None and self._shape_len == len(items):
            # the common case, without the batch arithmetic
            if _native_push_one is None or not _native_push_one(self, elements[0], head, fill):
                self._push_one(elements[0], head, fill, items)
            return
        self._written()
        self._sync(fill)
        added = sum(map(len, elements)) if counted_bytes is None else counted_bytes
        self._grow(fill, added, len(elements))
        if self.encoding == "listpack":
            self._lp_bytes += sum(lp_entry_sizes(elements))
        else:
            self._ql_push_many(elements, head, fill)
        if head:
            self.items.extendleft(elements)
        else:
            self.items.extend(elements)
        self._shape_len = len(self.items)

    def _push_one(self, element: bytes, head: bool, fill: int, items: Any) -> None:
        """``push`` of one element onto a list whose shape is up to date (same rules)."""
        size = len(element)
        entry = size + 2 if size < 64 and not (element and element[0] in _INT_START) else lp_entry_size(element)
        if self.encoding == "listpack":
            if exceeds_limit(fill, self._lp_bytes + size, len(items) + 1):
                self._to_quicklist()
                self._ql_push_sized(((size, entry),), head, fill)
            else:
                self._lp_bytes += entry
        else:
            self._ql_push_sized(((size, entry),), head, fill)
        if head:
            items.appendleft(element)
        else:
            items.append(element)
        self._shape_len += 1

    def _ql_push_many(self, elements: list[bytes], head: bool, fill: int) -> None:
        """``quicklistPushHead``/``quicklistPushTail`` for each element, limits computed once."""
        self._ql_push_sized(zip(map(len, elements), lp_entry_sizes(elements), strict=True), head, fill)

    def _ql_push_sized(self, sized: Iterable[tuple[int, int]], head: bool, fill: int) -> None:
        """``_ql_push_many`` given (raw length, listpack entry size) per element."""
        size_limit, count_limit = node_limits(fill)
        by_size = size_limit != SIZE_MAX
        large_above = _packed_threshold - 1 if _packed_threshold else size_limit if fill < 0 else SIZE_SAFETY_LIMIT
        nodes = self._nodes
        node: Node | None = (nodes[0] if head else nodes[-1]) if nodes else None
        for size, entry in sized:
            if size > large_above:
                node = [1, size, True]
            else:
                if node is not None and not node[2]:
                    new_bytes = node[1] + size + SIZE_ESTIMATE_OVERHEAD
                    if (new_bytes <= size_limit) if by_size else (
                        new_bytes <= SIZE_SAFETY_LIMIT and node[0] < count_limit
                    ):
                        node[0] += 1
                        node[1] += entry
                        continue
                node = [1, LP_HEADER_BYTES + entry, False]
            if head:
                nodes.insert(0, node)
            else:
                nodes.append(node)

    def pop(self, count: int, head: bool, fill: int) -> list[bytes]:
        """Remove up to ``count`` elements from one end (no encoding check: see ``shrunk``)."""
        items = self._items
        if count == 1 and self._packed is None and items and self._shape_len == len(items):
            if _native_pop_one is not None:
                popped = _native_pop_one(self, head, fill)
                if popped is not None:
                    return [popped]
            element = items.popleft() if head else items.pop()  # the common case: one element, shape known
            if self.encoding == "listpack":
                self._lp_bytes -= lp_entry_size(element)
            else:
                self._ql_pop(element, head)
            self._shape_len -= 1
            return [element]
        self._written()
        self._sync(fill)
        items = self.items
        out = items.pop_many(count, head)
        if self.encoding == "listpack":
            self._lp_bytes -= sum(lp_entry_sizes(out))
        else:
            self._ql_pop_many(out, head)
        self._shape_len = len(items)
        return out

    def replace(self, index: int, element: bytes, fill: int) -> bool:
        """LSET: False if ``index`` is out of range (the growing check still happened)."""
        self._written()
        self._sync(fill)
        self._grow(fill, len(element), 1)
        n = len(self.items)
        if index < 0:
            index += n
        if not 0 <= index < n:
            return False
        old = self.items[index]
        if self.encoding == "listpack":
            self._lp_bytes += lp_entry_size(element) - lp_entry_size(old)
        else:
            self._ql_replace(index, old, element, fill)
        self.items[index] = element
        self._shape_len = n
        self.shrunk(fill)
        return True

    def _ql_replace(self, index: int, old: bytes, element: bytes, fill: int) -> None:
        """``quicklistReplaceEntry`` (before ``items`` is updated)."""
        nodes = self._nodes
        pos, offset = self._locate(index)
        node = nodes[pos]
        size = len(element)
        large = is_large_element(size, fill)
        if not node[2] and not large:
            node[1] += lp_entry_size(element) - lp_entry_size(old)
        elif node[2]:
            if large:
                node[1] = size
            else:
                # insert after the plain node, then drop it
                self._ql_insert(index, element, True, fill)
                del nodes[self._index_of(node)]
        else:
            # a large element replacing an entry of a packed node
            rest = self._split(pos, offset, True) if offset != node[0] - 1 else None
            plain = [1, size, True]
            nodes.insert(pos + 1, plain)
            if rest is not None:
                nodes.insert(pos + 2, rest)
            if node[0] == 1:
                del nodes[pos]
            else:
                node[0] -= 1
                node[1] -= lp_entry_size(old)
                self._merge_around(plain, fill)

    def insert(self, pivot: bytes, element: bytes, after: bool, fill: int) -> int:
        """LINSERT: the new length, or -1 when ``pivot`` is not found."""
        self._written()
        self._sync(fill)
        self._grow(fill, len(element), 1)
        try:
            index = self.items.index(pivot)
        except ValueError:
            return -1
        if self.encoding == "listpack":
            self._lp_bytes += lp_entry_size(element)
        else:
            self._ql_insert(index, element, after, fill)
        self.items.insert(index + 1 if after else index, element)
        self._shape_len = len(self.items)
        return len(self.items)

    def remove(self, count: int, element: bytes, fill: int) -> int:
        """LREM: remove matches from the head (count >= 0) or the tail (count < 0)."""
        if element not in self.items:  # one C scan: nothing to remove, nothing written
            return 0
        self._written()
        self._sync(fill)
        items = self.items
        positions = items.find(element, count < 0, 0, abs(count), 0)
        if count < 0:
            positions.reverse()
        if not positions:
            return 0
        entry = lp_entry_size(element)
        if self.encoding == "listpack":
            self._lp_bytes -= entry * len(positions)
        else:
            # quicklistDelIndex for each, in one pass: a node loses its hits, an emptied one goes
            kept: list[Node] = []
            start = k = 0
            for node in self._nodes:
                stop = start + node[0]
                hits = 0
                while k < len(positions) and positions[k] < stop:
                    hits += 1
                    k += 1
                start = stop
                if hits == node[0]:
                    continue
                node[0] -= hits
                node[1] -= entry * hits
                kept.append(node)
            self._nodes = kept
        items.remove_positions(positions)
        self._shape_len = len(items)
        return len(positions)

    def trim(self, start: int, end: int, fill: int) -> int:
        """LTRIM with already-normalised bounds; returns how many elements were removed."""
        self._written()
        self._sync(fill)
        n = len(self.items)
        span = index_span(start, end, n)
        left, right = (n, 0) if span is None else (span[0], n - span[1] - 1)
        self._drop(left, True, fill)
        self._drop(right, False, fill)
        return left + right

    def _drop(self, count: int, head: bool, fill: int) -> None:
        """``pop`` of ``count`` elements nobody reads (LTRIM): whole quicklist nodes go by their
        counts, only the node cut in the middle needs its removed elements' entry sizes, and the
        elements go without being read (``ElementList.drop`` frees whole chunks)."""
        items = self.items
        n = len(items)
        if count < _DROP_MIN or self.encoding == "listpack":
            self.pop(count, head, fill)
            return
        count = min(count, n)
        nodes = self._nodes
        whole = gone = 0  # nodes that go entirely from this end, and their elements
        for node in nodes if head else reversed(nodes):
            size = 1 if node[2] else node[0]
            if gone + size > count:
                break
            gone += size
            whole += 1
        if gone < count:  # the next node loses its elements gone..count from this end
            node = nodes[whole] if head else nodes[-1 - whole]
            span = (gone, count) if head else (n - count, n - gone)
            node[0] -= count - gone
            node[1] -= items.entry_bytes(*span)
        if whole and head:
            del nodes[:whole]
        elif whole:
            del nodes[len(nodes) - whole:]
        items.drop(count, head)
        self._shape_len = n - count

    # -- reads ---------------------------------------------------------------------

    def range(self, start: int, end: int) -> list[bytes]:
        """LRANGE semantics (inclusive, negative indexes from the tail)."""
        items = self.items
        n = len(items)
        span = index_span(start, end, n)
        if span is None:
            return []
        return items.slice(span[0], span[1] + 1)  # type: ignore[no-any-return]

    def range_reply(self, start: int, end: int, most: int) -> bytes | None:
        """``range``'s reply as RESP bytes (written from the packed entries, no ``bytes`` per
        element), or None when it would hold more than ``most`` elements."""
        items = self.items
        span = index_span(start, end, len(items))
        if span is None:
            return b"*0\r\n"
        if span[1] - span[0] + 1 > most:
            return None
        return items.resp_range(span[0], span[1] + 1)  # type: ignore[no-any-return]

    def index(self, index: int) -> bytes | None:
        n = len(self.items)
        if index < 0:
            index += n
        if not 0 <= index < n:
            return None
        return self.items[index]

    def memory_usage(self, samples: int = 5) -> int:
        """``objectComputeSize`` for a list, without the 16-byte object header (the caller
        adds it with the key and its dict entry)."""
        if self._shape_len != len(self):
            self._sync(-2)
        if self.encoding == "listpack":
            return jemalloc_size(self._lp_bytes)
        nodes = self._nodes
        size = 40
        if not nodes:
            return size
        sampled = nodes[:samples] if samples > 0 else nodes
        per_node = sum(32 + jemalloc_size(node[1]) for node in sampled) / len(sampled)
        return size + int(per_node * len(nodes))
