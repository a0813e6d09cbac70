"""A list value's elements: ``ElementList``, packed in C when ``dumpling._elementlist`` is built.

The C type keeps each element as one listpack entry in chunks of a few KB (about 2 bytes of
framing an element instead of a 33-byte ``bytes`` header and a deque slot); elements become
``bytes`` only when read.  ``PyElementList`` is the reference with the same interface: a
``deque`` (what lists were before) plus the span operations ``ListValue`` uses.  Which one
``ElementList`` names follows ``dumpling.accel`` (``DUMPLING_PURE=1``: the reference).

The interface: what a deque offers that lists.py uses (``len``, iteration both ways,
indexing and item assignment, ``append``/``appendleft``/``pop``/``popleft``,
``extend``/``extendleft``, ``insert``, ``index``, ``in``, ``copy``, ``==`` between two of
the same kind) and

* ``slice(start, stop)``: the elements [start, stop) as a list (bounds clamped);
* ``resp_range(start, stop)``: those elements as a RESP array reply (LRANGE, from the entries);
* ``pop_many(count, head)``: up to ``count`` elements off one end, in the order they leave;
* ``drop(count, head)``: the same without reading them (LTRIM: whole chunks freed);
* ``entry_bytes(start, stop)``: the listpack bytes of those elements' entries (the node
  sizes ``ListValue`` models);
* ``node_blobs(shape)``: per ``(count, plain)`` node, head first, the listpack of the next
  ``count`` elements, or a plain node's one element (DUMP writes them as they come);
* ``cut_nodes(limit, large, listpack_phase)``: ``(count, plain)`` per node of the list as
  RPUSHes under a size-limited fill would cut it (``quicklist.size_rule``'s parameters);
* ``find(element, from_tail, skip, limit, maxlen)``: positions of equal elements (LPOS, LREM);
* ``remove_positions(positions)``: remove the elements at those ascending positions (LREM);
* ``extend_listpack(blob)``: append a listpack's elements (C: its entries copied when each is
  one C would write, else False and nothing appended);
* ``quicklist_body(head, counts, compress, footer=None)``: ``head`` and a LIST_QUICKLIST_2 body
  of packed nodes of those counts (DUMP of a list without plain nodes, in one call); with
  ``footer`` (``envelope.footer_parts``) the DUMP footer too, written in the same buffer.

This module must not know about commands, keys or the quicklist node rules.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice
from typing import Any

from dumpling import accel
from dumpling.bigops import pop_many as _pop_many


class PyElementList(deque):  # type: ignore[type-arg]
    """The reference ``ElementList``: a deque of bytes with the span operations."""

    __slots__ = ()

    def copy(self) -> PyElementList:
        return PyElementList(self)

    def slice(self, start: int, stop: int) -> list[bytes]:
        n = len(self)
        start, stop = max(start, 0), min(stop, n)
        if stop <= start:
            return []
        if start > n - stop:  # nearer the tail: walk from there
            out = list(islice(reversed(self), n - stop, n - start))
            out.reverse()
            return out
        return list(islice(self, start, stop))

    def pop_many(self, count: int, head: bool) -> list[bytes]:
        return _pop_many(self, max(count, 0), head)

    def drop(self, count: int, head: bool) -> None:
        count = min(max(count, 0), len(self))
        if count == len(self):
            self.clear()
        else:
            _pop_many(self, count, head)

    def entry_bytes(self, start: int, stop: int) -> int:
        from dumpling.datatypes.lists import lp_entry_sizes

        return sum(lp_entry_sizes(self.slice(start, stop)))

    def node_blobs(self, shape: Iterable[tuple[int, bool]]) -> list[bytes]:
        from dumpling.payload import listpack

        out = []
        it = iter(self)
        for count, plain in shape:
            run = list(islice(it, count))
            if len(run) != count or (plain and count != 1):
                raise ValueError("node_blobs: counts beyond the list, or a plain node not of one")
            out.append(run[0] if plain else listpack.encode(run))
        return out

    def quicklist_body(self, head: bytes, counts: list[int], compress: Any, footer: Any = None) -> bytes:
        from dumpling.payload.primitives import append_len, append_string

        if sum(counts) != len(self) or any(count <= 0 for count in counts):
            raise ValueError("quicklist_body: node counts do not fit the list")
        out = bytearray(head)
        append_len(out, len(counts))
        for blob in self.node_blobs([(count, False) for count in counts]):
            out.append(2)  # a packed node
            append_string(out, blob, compress is not None)
        if footer is not None:  # (version bytes, crc64): the whole DUMP payload
            out += footer[0]
            out += footer[1](out).to_bytes(8, "little")
        return bytes(out)

    def cut_nodes(self, limit: int, large: int, listpack_phase: bool) -> list[tuple[int, bool]]:
        from dumpling.payload import quicklist

        nodes = quicklist._pack_by_size(list(self), limit, large, listpack_phase)
        return [(len(node.items), node.container == quicklist.CONTAINER_PLAIN) for node in nodes]

    def extend_listpack(self, blob: bytes) -> bool:
        from dumpling.payload import listpack

        self.extend(listpack.decode(blob, False))
        return True

    def find(self, element: bytes, from_tail: bool, skip: int, limit: int, maxlen: int) -> list[int]:
        n = len(self)
        out: list[int] = []
        matches = 0
        for looked, candidate in enumerate(reversed(self) if from_tail else iter(self)):
            if maxlen and looked >= maxlen:
                break
            if candidate == element:
                matches += 1
                if matches > skip:
                    out.append(n - 1 - looked if from_tail else looked)
                    if limit and len(out) >= limit:
                        break
        return out

    def remove_positions(self, positions: list[int]) -> None:
        if any(b <= a for a, b in zip(positions, positions[1:], strict=False)) or (
                positions and not 0 <= positions[0] <= positions[-1] < len(self)):
            raise ValueError("remove_positions: positions must ascend within the list")
        drop = set(positions)
        kept = [value for i, value in enumerate(self) if i not in drop]
        self.clear()
        self.extend(kept)

    def resp_range(self, start: int, stop: int) -> bytes:
        items = self.slice(start, stop)
        return b"*%d\r\n" % len(items) + b"".join([b"$%d\r\n%s\r\n" % (len(x), x) for x in items])


_native: Any = None
if not accel.PURE:
    try:
        from dumpling._elementlist import ElementList as _native
    except ImportError:  # built without a compiler: the reference
        _native = None

ElementList: Any = PyElementList if _native is None else _native
PACKED = _native is not None  # the elements are listpack entries (node_blobs copies them)


def elements_of(items: Iterable[bytes]) -> Any:
    """``items`` as an ``ElementList`` (itself when it already is one)."""
    return items if type(items) is ElementList else ElementList(items)


def elements_of_nodes(packed: Any) -> Any:
    """The ``ElementList`` of a restored list's nodes (``PackedList``): each packed node's
    listpack adopted entry by entry (``extend_listpack``), decoded only when C declines it."""
    from dumpling.payload import listpack

    node_data = getattr(packed, "node_data", None)
    if node_data is None:  # (nodes of another kind: only their elements)
        return elements_of(packed.elements())
    out = ElementList()
    for plain, data in node_data():
        if plain:
            out.append(data)
        elif not out.extend_listpack(data):
            out.extend(listpack.decode(data, False))
    return out
