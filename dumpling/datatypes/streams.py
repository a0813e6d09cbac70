"""Stream values: entries ordered by ID plus everything RDB stream type 21 stores.

An ID is a tuple ``(ms, seq)`` of unsigned 64-bit integers.  Entries map an ID to a
flat list ``[field1, value1, field2, value2, ...]``.  Consumer groups keep their last
delivered ID, entries-read counter, pending entries list (PEL) and consumers, each
consumer with its own PEL subset and seen/active times, exactly the facts DUMP needs.

Besides the live entries the value models Redis's radix tree of listpack nodes
(``StreamNode``): which entries share a node, the node's master fields, its
tombstones and its listpack size in bytes.  Redis decides node boundaries with
``stream-node-max-bytes``/``-entries``, trims whole nodes for ``MAXLEN ~``/``MINID ~``
and removes a node when its last live entry is deleted, so XLEN after approximate
trimming and XINFO's ``radix-tree-keys``/``radix-tree-nodes`` depend on that layout.
The layout is built lazily: a value assembled directly (the payload codec sets
``entries`` and friends) gets the layout consecutive XADDs would have produced.

Owns the data structure only: no argument parsing, no replies.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, overload

from sortedcontainers import SortedDict

from dumpling import accel
from dumpling.datatypes.sizes import listpack_int_entry_size
from dumpling.datatypes.zsets import alloc_size
from dumpling.protocol import parse_strict_int

StreamID = tuple[int, int]

MASK64 = (1 << 64) - 1
MIN_ID: StreamID = (0, 0)
MAX_ID: StreamID = (MASK64, MASK64)
INVALID_ENTRIES_READ = -1  # SCG_INVALID_ENTRIES_READ
LISTPACK_MAX_SIZE = 1 << 30  # STREAM_LISTPACK_MAX_SIZE
FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2


@dataclass(slots=True)
class PendingEntry:
    consumer: bytes
    delivery_time_ms: int
    delivery_count: int


@dataclass(slots=True)
class Consumer:
    name: bytes
    seen_time_ms: int
    active_time_ms: int = -1
    # IDs this consumer owns in the group PEL (the PendingEntry lives in the group).
    pending: SortedDict = field(default_factory=SortedDict)  # StreamID -> PendingEntry


@dataclass(slots=True)
class ConsumerGroup:
    name: bytes
    last_id: StreamID
    entries_read: int = -1  # -1: unknown (SCG_INVALID_ENTRIES_READ)
    pending: SortedDict = field(default_factory=SortedDict)  # StreamID -> PendingEntry
    consumers: dict[bytes, Consumer] = field(default_factory=dict)


# ----------------------------------------------------------------------------- ID-ordered maps

CHUNK = 1000  # keys per chunk: appends start a new one past this


class IdMap:
    """A mapping from stream IDs to values, kept in ID order (a stream's entries, its radix
    tree's nodes).  Streams only ever append past their last ID, so the common write is an
    O(1) append of the key and value at the end of the last chunk (``_keys``/``_vals`` are lists
    of chunks of at most ``CHUNK`` keys, ``_maxes`` each chunk's last key, ``_len`` the count).
    A lookup bisects ``_maxes`` then a chunk: no per-key dict, whose entries cost a stream of
    millions ~50 bytes each and whose resizes stalled the server for most of a second.  The C
    ``stream_append`` (``dumpling._collections``) appends through these slots: keep that layout
    (no empty chunk, ``_maxes[i] == _keys[i][-1]``, ``_len`` the sum of the chunks' lengths)."""

    __slots__ = ("_len", "_keys", "_vals", "_maxes")

    def __init__(self, items: Iterable[tuple[StreamID, Any]] = ()) -> None:
        pairs = sorted(dict(items).items())
        self._len = len(pairs)
        self._keys: list[list[StreamID]] = []
        self._vals: list[list[Any]] = []
        self._maxes: list[StreamID] = []
        for i in range(0, len(pairs), CHUNK):
            part = pairs[i:i + CHUNK]
            self._keys.append([k for k, _ in part])
            self._vals.append([v for _, v in part])
            self._maxes.append(part[-1][0])

    def _find(self, key: object) -> tuple[int, int] | None:
        """The chunk and place of ``key``, or None (absent, or not an ID)."""
        if type(key) is not tuple:
            return None
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return None
        keys = self._keys[i]
        j = bisect_left(keys, key)
        return (i, j) if keys[j] == key else None

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        return self._find(key) is not None

    def __getitem__(self, key: StreamID) -> Any:
        where = self._find(key)
        if where is None:
            raise KeyError(key)
        return self._vals[where[0]][where[1]]

    def get(self, key: StreamID, default: Any = None) -> Any:
        where = self._find(key)
        return default if where is None else self._vals[where[0]][where[1]]

    def __iter__(self) -> Iterator[StreamID]:
        for chunk in self._keys:
            yield from chunk

    def __repr__(self) -> str:
        return f"IdMap({list(self.items())!r})"

    def keys(self) -> IdKeys:
        return IdKeys(self)

    def values(self) -> Iterator[Any]:
        for chunk in self._vals:
            yield from chunk

    def items(self) -> Iterator[tuple[StreamID, Any]]:
        for keys, vals in zip(self._keys, self._vals, strict=True):
            yield from zip(keys, vals, strict=True)

    def _locate(self, index: int) -> tuple[int, int]:
        """The chunk and place of the index-th key (negative: from the end)."""
        n = self._len
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("IdMap index out of range")
        last = len(self._keys) - 1
        tail = n - len(self._keys[last])
        if index >= tail:
            return last, index - tail
        for i, chunk in enumerate(self._keys):
            if index < len(chunk):
                return i, index
            index -= len(chunk)
        raise IndexError("IdMap index out of range")  # (unreachable with the layout kept)

    def key_at(self, index: int) -> StreamID:
        i, j = self._locate(index)
        return self._keys[i][j]

    def peekitem(self, index: int = -1) -> tuple[StreamID, Any]:
        i, j = self._locate(index)
        return self._keys[i][j], self._vals[i][j]

    def __setitem__(self, key: StreamID, value: Any) -> None:
        maxes = self._maxes
        if not maxes or key > maxes[-1]:
            if maxes and len(self._keys[-1]) < CHUNK:
                self._keys[-1].append(key)
                self._vals[-1].append(value)
                maxes[-1] = key
            else:
                self._keys.append([key])
                self._vals.append([value])
                maxes.append(key)
            self._len += 1
            return
        i = bisect_left(maxes, key)
        keys, vals = self._keys[i], self._vals[i]
        j = bisect_left(keys, key)
        if keys[j] == key:
            vals[j] = value
            return
        # (only a value assembled out of order: streams append)
        keys.insert(j, key)
        vals.insert(j, value)
        self._len += 1
        if len(keys) > CHUNK:  # split in two
            half = len(keys) // 2
            self._keys.insert(i + 1, keys[half:])
            self._vals.insert(i + 1, vals[half:])
            maxes.insert(i, keys[half - 1])
            del keys[half:], vals[half:]

    def _remove(self, i: int, j: int) -> Any:
        keys, vals = self._keys[i], self._vals[i]
        value = vals[j]
        del keys[j], vals[j]
        self._len -= 1
        if not keys:
            del self._keys[i], self._vals[i], self._maxes[i]
        elif j == len(keys):
            self._maxes[i] = keys[-1]
        return value

    def __delitem__(self, key: StreamID) -> None:
        where = self._find(key)
        if where is None:
            raise KeyError(key)
        self._remove(*where)

    _MISSING: Any = object()

    def pop(self, key: StreamID, default: Any = _MISSING) -> Any:
        where = self._find(key)
        if where is None:
            if default is IdMap._MISSING:
                raise KeyError(key)
            return default
        return self._remove(*where)

    def floor_item(self, key: StreamID) -> tuple[StreamID, Any] | None:
        """The item with the greatest key not above ``key``, or None."""
        i = bisect_right(self._maxes, key)
        if i < len(self._maxes):
            j = bisect_right(self._keys[i], key) - 1
            if j >= 0:
                return self._keys[i][j], self._vals[i][j]
        if i == 0:
            return None
        return self._keys[i - 1][-1], self._vals[i - 1][-1]

    def irange(self, minimum: StreamID | None = None, maximum: StreamID | None = None,
               reverse: bool = False) -> Iterator[StreamID]:
        """Keys from ``minimum`` to ``maximum`` (both included; None: no bound), in order or
        reversed (SortedDict.irange's use here)."""
        keys, maxes = self._keys, self._maxes
        if not maxes:
            return iter(())
        if minimum is None:
            ci, pi = 0, 0
        else:
            ci = bisect_left(maxes, minimum)
            if ci == len(maxes):
                return iter(())
            pi = bisect_left(keys[ci], minimum)
        if maximum is None:
            ce, pe = len(keys) - 1, len(keys[-1])
        else:
            ce = bisect_right(maxes, maximum)
            if ce == len(maxes):
                ce, pe = ce - 1, len(keys[-1])
            else:
                pe = bisect_right(keys[ce], maximum)
        if (ci, pi) >= (ce, pe):
            return iter(())
        return _span_backward(keys, ci, pi, ce, pe) if reverse else _span_forward(keys, ci, pi, ce, pe)


def _span_forward(keys: list[list[StreamID]], ci: int, pi: int, ce: int, pe: int) -> Iterator[StreamID]:
    """Keys from chunk ci place pi up to (not including) chunk ce place pe."""
    for i in range(ci, ce + 1):
        chunk = keys[i]
        yield from chunk[pi if i == ci else 0:pe if i == ce else len(chunk)]


def _span_backward(keys: list[list[StreamID]], ci: int, pi: int, ce: int, pe: int) -> Iterator[StreamID]:
    for i in range(ce, ci - 1, -1):
        chunk = keys[i]
        yield from reversed(chunk[pi if i == ci else 0:pe if i == ce else len(chunk)])


class IdKeys:
    """``IdMap.keys()``: iteration, ``len`` and positional access (``keys()[0]``, ``[-1]``)."""

    __slots__ = ("_owner",)

    def __init__(self, owner: IdMap) -> None:
        self._owner = owner

    def __len__(self) -> int:
        return len(self._owner)

    def __iter__(self) -> Iterator[StreamID]:
        return iter(self._owner)

    def __reversed__(self) -> Iterator[StreamID]:
        for chunk in reversed(self._owner._keys):
            yield from reversed(chunk)

    @overload
    def __getitem__(self, index: int) -> StreamID: ...

    @overload
    def __getitem__(self, index: slice) -> list[StreamID]: ...

    def __getitem__(self, index: int | slice) -> StreamID | list[StreamID]:
        if isinstance(index, slice):  # (a copy of the keys: tests and tools, not the commands)
            return list(self._owner)[index]
        return self._owner.key_at(index)


# ----------------------------------------------------------------------------- listpack sizes




def _str_size(s: bytes) -> int:
    """Bytes of ``s`` appended to a listpack (integer-looking strings become integers)."""
    if len(s) <= 20:
        v = parse_strict_int(s)
        if v is not None:
            return listpack_int_entry_size(v)
    n = len(s)
    head = n + (1 if n < 64 else 2 if n < 4096 else 5)
    return head + (1 if head <= 127 else 2 if head < 16383 else 3 if head < 2097151 else 4 if head < 268435455 else 5)


# _str_size is lists.lp_entry_size (lpStringToInt64 is string2ll): the C one where it is built
_entry_size = _str_size if accel.collections is None else accel.collections.lp_entry_size
_INT64_MIN, _INT64_END = -(1 << 63), 1 << 63
# StreamValue.append in C (None: pure); tests set it to None to run the reference
_native_append = None if accel.collections is None else accel.collections.stream_append


def _signed64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


class StreamNode:
    """One listpack of the radix tree: master ID/fields, every entry ever appended."""

    __slots__ = ("master_id", "master_fields", "ids", "dead", "live", "deleted", "entries_bytes", "fields_bytes")

    def __init__(self, master_id: StreamID, master_fields: list[bytes]) -> None:
        self.master_id = master_id
        self.master_fields = master_fields
        self.ids: list[StreamID] = []  # append order, tombstones included
        self.dead: dict[StreamID, list[bytes]] = {}  # tombstoned entries (still in the listpack)
        self.live = 0
        self.deleted = 0
        self.entries_bytes = 0
        self.fields_bytes = sum(map(_str_size, master_fields))

    @property
    def last_id(self) -> StreamID:
        return self.ids[-1]

    def byte_size(self) -> int:
        """``lpBytes``: header, master entry, entries, terminator."""
        master = listpack_int_entry_size(self.live) + listpack_int_entry_size(self.deleted) + listpack_int_entry_size(len(self.master_fields))
        return 6 + master + self.fields_bytes + 2 + self.entries_bytes + 1

    def entry_size(self, entry_id: StreamID, flat: list[bytes]) -> tuple[int, bool]:
        """Listpack bytes of an entry and whether it shares the master fields."""
        nfields = len(flat) // 2
        same = flat[0::2] == self.master_fields
        master = self.master_id
        ms, seq = entry_id[0] - master[0], entry_id[1] - master[1]
        if not _INT64_MIN <= ms < _INT64_END:
            ms = _signed64(ms)
        if not _INT64_MIN <= seq < _INT64_END:
            seq = _signed64(seq)
        size = 2 + listpack_int_entry_size(ms) + listpack_int_entry_size(seq)  # flags, ID deltas
        if same:
            size += sum(map(_entry_size, flat[1::2]))
            lp_count = nfields + 3
        else:
            size += listpack_int_entry_size(nfields) + sum(map(_entry_size, flat))
            lp_count = 2 * nfields + 4
        return size + listpack_int_entry_size(lp_count), same

    def flags_of(self, entry_id: StreamID, flat: list[bytes]) -> int:
        flags = FLAG_SAMEFIELDS if flat[0::2] == self.master_fields else 0
        return flags | FLAG_DELETED if entry_id in self.dead else flags

    def copy(self) -> StreamNode:
        node = StreamNode.__new__(StreamNode)
        node.master_id = self.master_id
        node.master_fields = list(self.master_fields)
        node.ids = list(self.ids)
        node.dead = {k: list(v) for k, v in self.dead.items()}
        node.live = self.live
        node.deleted = self.deleted
        node.entries_bytes = self.entries_bytes
        node.fields_bytes = self.fields_bytes
        return node


# ----------------------------------------------------------------------------- the value


class StreamValue:
    TYPE = b"stream"
    __slots__ = ("_entries", "last_id", "first_id", "entries_added", "max_deleted_id", "groups", "encoding", "_nodes")

    def __init__(self) -> None:
        self._entries = IdMap()  # StreamID -> list[bytes] (flat field/value)
        self.last_id: StreamID = (0, 0)
        self.first_id: StreamID = (0, 0)
        self.entries_added: int = 0
        self.max_deleted_id: StreamID = (0, 0)
        self.groups: dict[bytes, ConsumerGroup] = {}
        self.encoding = "stream"
        self._nodes: IdMap | None = None  # master ID -> StreamNode, built on demand

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> IdMap:
        return self._entries

    @entries.setter
    def entries(self, mapping: Any) -> None:
        """Any mapping of ID -> flat list (the payload codec builds a SortedDict)."""
        self._entries = mapping if type(mapping) is IdMap else IdMap(mapping.items())

    # -- node layout ------------------------------------------------------------------

    def nodes(self, max_bytes: int = 4096, max_entries: int = 100) -> IdMap:
        """The radix tree of listpacks (rebuilt from ``entries`` if never built)."""
        if self._nodes is None:
            self._nodes = IdMap()
            for entry_id, flat in self.entries.items():
                self._place(entry_id, flat, max_bytes, max_entries)
        return self._nodes

    def iter_nodes(self) -> Iterator[StreamNode]:
        """Nodes in key order (for DUMP writers that want Redis's exact layout)."""
        return iter(self.nodes().values())

    def adopt_nodes(self, nodes: list[StreamNode]) -> None:
        """Take the radix tree as loaded (RESTORE keeps the payload's nodes and tombstones);
        the payload codec passes only layouts consistent with ``entries``."""
        self._nodes = IdMap((node.master_id, node) for node in nodes)

    def _place(self, entry_id: StreamID, flat: list[bytes], max_bytes: int, max_entries: int) -> None:
        nodes = self._nodes
        assert nodes is not None
        if max_bytes <= 0 or max_bytes > LISTPACK_MAX_SIZE:
            max_bytes = LISTPACK_MAX_SIZE
        node: StreamNode | None = None
        if nodes:
            node = nodes.peekitem(-1)[1]
            total = sum(map(len, flat))
            if node.byte_size() + total >= max_bytes:
                node = None
            elif max_entries and node.live + node.deleted >= max_entries:
                node = None
        if node is None:
            node = StreamNode(entry_id, list(flat[0::2]))
            nodes[entry_id] = node
        size, _ = node.entry_size(entry_id, flat)
        node.entries_bytes += size
        node.ids.append(entry_id)
        node.live += 1

    def node_of(self, entry_id: StreamID) -> StreamNode | None:
        item = self.nodes().floor_item(entry_id)
        return None if item is None else item[1]

    def radix_tree_nodes(self) -> int:
        """``rax->numnodes`` of the node keys (16-byte big-endian IDs) in a compressed radix tree."""
        keys = [ms.to_bytes(8, "big") + seq.to_bytes(8, "big") for ms, seq in self.nodes()]
        if not keys:
            return 1
        return _rax_count(keys, 0, len(keys), 0)

    # -- mutation -----------------------------------------------------------------------

    def append(self, entry_id: StreamID, flat: list[bytes], max_bytes: int, max_entries: int) -> None:
        """``streamAppendItem`` after the ID was validated.  The C ``stream_append``
        (``dumpling._collections``) does the same on a stream whose layout is built; this code
        is its reference and runs when it declines (or under ``DUMPLING_PURE``)."""
        if _native_append is not None and _native_append(self, entry_id, flat, max_bytes, max_entries):
            return
        if self._nodes is None:
            self.nodes(max_bytes, max_entries)
        self._place(entry_id, flat, max_bytes, max_entries)
        self.entries[entry_id] = flat
        self.entries_added = (self.entries_added + 1) & MASK64  # a uint64_t in Redis
        self.last_id = entry_id
        if len(self.entries) == 1:
            self.first_id = entry_id

    def delete(self, entry_id: StreamID) -> bool:
        """``streamDeleteItem``: tombstone the entry; drop its node when nothing live remains."""
        flat = self.entries.get(entry_id)
        if flat is None:
            return False
        node = self.node_of(entry_id)
        del self.entries[entry_id]
        if node is not None:
            if node.live == 1:
                del self._nodes[node.master_id]  # type: ignore[index]
            else:
                node.live -= 1
                node.deleted += 1
                node.dead[entry_id] = flat
        return True

    def refresh_first_id(self) -> None:
        """``streamGetEdgeID(first, skip tombstones)`` after deletions."""
        self.first_id = self.entries.keys()[0] if self.entries else (0, 0)

    def trim(self, maxlen: int | None, minid: StreamID | None, approx: bool, limit: int,
             max_bytes: int = 4096, max_entries: int = 100) -> int:
        """``streamTrim``: by MAXLEN (``maxlen``) or MINID (``minid``); returns entries removed."""
        nodes = self.nodes(max_bytes, max_entries)
        deleted = 0
        while nodes:
            if maxlen is not None and len(self.entries) <= maxlen:
                break
            node: StreamNode = nodes.peekitem(0)[1]
            live = node.live
            if limit and deleted + live > limit:
                break
            if maxlen is not None:
                remove_node = len(self.entries) - live >= maxlen
            else:
                assert minid is not None
                remove_node = node.last_id < minid
            if remove_node:
                for entry_id in node.ids:
                    self.entries.pop(entry_id, None)
                del nodes[node.master_id]
                deleted += live
                continue
            if approx:
                break
            removed = 0
            for entry_id in node.ids:
                if maxlen is not None:
                    if len(self.entries) <= maxlen:
                        break
                elif entry_id >= minid:  # type: ignore[operator]
                    break
                flat = self.entries.pop(entry_id, None)
                if flat is not None:
                    node.dead[entry_id] = flat
                    removed += 1
            node.live -= removed
            node.deleted += removed
            deleted += removed
            break
        if not self.entries:
            self.first_id = (0, 0)
        elif deleted:
            self.refresh_first_id()
        return deleted

    # -- consumer-group bookkeeping ---------------------------------------------------

    def last_valid_id(self) -> StreamID:
        """``streamLastValidID``: the last live entry (0-0 when empty)."""
        return self.entries.keys()[-1] if self.entries else (0, 0)

    def range_has_tombstones(self, start: StreamID | None) -> bool:
        """``streamRangeHasTombstones(start, +)``."""
        if not self.entries or self.max_deleted_id == (0, 0):
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return (start or (0, 0)) <= self.max_deleted_id

    def estimate_distance(self, entry_id: StreamID) -> int:
        """``streamEstimateDistanceFromFirstEverEntry``; -1 when not obtainable.  Its
        uint64 arithmetic comes back as a long long (so a counter of 2**64-1 reads as -1)."""
        added = self.entries_added
        if not added:
            return 0
        length = len(self.entries)
        if not length and entry_id <= self.last_id:
            return _signed64(added)
        if entry_id == self.last_id:
            return _signed64(added)
        if entry_id > self.last_id:
            return INVALID_ENTRIES_READ
        if self.max_deleted_id == (0, 0) or self.max_deleted_id < self.first_id:
            if entry_id < self.first_id:
                return _signed64(added - length)
            if entry_id == self.first_id:
                return _signed64(added - length + 1)
        return INVALID_ENTRIES_READ

    def lag(self, group: ConsumerGroup) -> int | None:
        """``streamReplyWithCGLag``: entries not yet delivered to the group, or None
        (a long long subtraction, wrapping as in C)."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.range_has_tombstones(group.last_id):
            return _signed64(self.entries_added - group.entries_read)
        read = self.estimate_distance(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return _signed64(self.entries_added - read)
        return None

    # -- copies and accounting ------------------------------------------------------------

    def copy(self) -> StreamValue:
        s = StreamValue()
        s._entries = IdMap((k, list(v)) for k, v in self.entries.items())
        s.last_id = self.last_id
        s.first_id = self.first_id
        s.entries_added = self.entries_added
        s.max_deleted_id = self.max_deleted_id
        if self._nodes is not None:
            s._nodes = IdMap((k, n.copy()) for k, n in self._nodes.items())
        for name, group in self.groups.items():
            g = ConsumerGroup(name, group.last_id, group.entries_read)
            for entry_id, nack in group.pending.items():
                g.pending[entry_id] = PendingEntry(nack.consumer, nack.delivery_time_ms, nack.delivery_count)
            for cname, consumer in group.consumers.items():
                cc = Consumer(cname, consumer.seen_time_ms, consumer.active_time_ms)
                for entry_id in consumer.pending:
                    cc.pending[entry_id] = g.pending[entry_id]
                g.consumers[cname] = cc
            s.groups[name] = g
        return s

    def memory_usage(self) -> int:
        """Bytes Redis's ``objectComputeSize`` reports for the value (object header excluded):
        the stream struct, the radix tree, every listpack at its allocation size (the last
        node is preallocated to 4 KB) and the consumer groups with their PELs."""
        nodes = self.nodes()
        total = 80 + _rax_memory(len(nodes), self.radix_tree_nodes())
        for i, node in enumerate(nodes.values()):
            size = node.byte_size()
            if i == len(nodes) - 1:
                size = max(size, 4096)
            total += alloc_size(size)
        for group in self.groups.values():
            total += 40 + _rax_memory(len(group.pending), _pel_rax_nodes(group.pending)) + 24 * len(group.pending)
            for consumer in group.consumers.values():
                total += 40 + len(consumer.name) + _rax_memory(len(consumer.pending), _pel_rax_nodes(consumer.pending))
        return total


def _rax_memory(keys: int, nodes: int) -> int:
    """``streamRadixTreeMemoryUsage``."""
    return keys * 16 + nodes * 4 + nodes * 8 * 30


def _pel_rax_nodes(pel: SortedDict) -> int:
    if not pel:
        return 1
    keys = [ms.to_bytes(8, "big") + seq.to_bytes(8, "big") for ms, seq in pel]
    return _rax_count(keys, 0, len(keys), 0)


def _rax_count(keys: list[bytes], lo: int, hi: int, depth: int) -> int:
    """Nodes of the compressed radix tree holding ``keys[lo:hi]`` below ``depth``."""
    width = len(keys[lo])
    if hi - lo == 1:
        return 2 if depth < width else 1
    first, last = keys[lo], keys[hi - 1]
    p = depth
    while first[p] == last[p]:
        p += 1
    count = (1 if p > depth else 0) + 1  # a compressed node for the shared run, then the branch node
    i = lo
    while i < hi:
        byte = keys[i][p]
        j = i + 1
        while j < hi and keys[j][p] == byte:
            j += 1
        count += _rax_count(keys, i, j, p + 1)
        i = j
    return count
