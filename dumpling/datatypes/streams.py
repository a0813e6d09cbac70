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

import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
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
ID_BYTES = 16  # a key as a record: ms then seq, each 8 bytes big-endian (byte order is ID order)
_ID_RECORD = struct.Struct(">QQ")
pack_id = _ID_RECORD.pack
unpack_id_from = _ID_RECORD.unpack_from


def unpack_ids(records: bytes | bytearray) -> list[StreamID]:
    """The IDs of consecutive records, in order."""
    return list(_ID_RECORD.iter_unpack(records))


def _bisect_records_py(records: bytearray, key: bytes, right: bool = False) -> int:
    """The bisect_left (bisect_right) place of the record ``key`` among ``records``."""
    bisect = bisect_right if right else bisect_left
    return bisect(range(len(records) // ID_BYTES), key, key=lambda i: records[i * ID_BYTES:(i + 1) * ID_BYTES])


class IdMap:
    """A mapping from stream IDs to values, kept in ID order (a stream's entries, its radix
    tree's nodes).  Streams only ever append past their last ID, so the common write is an
    O(1) append of the key and value at the end of the last chunk: ``_keys`` is a list of
    chunks, each a ``bytearray`` of at most ``CHUNK`` 16-byte ID records (``pack_id``), ``_vals``
    the chunks' values (lists; ``PackedFlats`` in an ``EntryMap``), ``_maxes`` each chunk's last record (one ``bytearray`` of
    records), ``_len`` the count.  A key costs 16 bytes and no object (a tuple and its ints would be ~100 bytes and two
    allocations an entry), and no per-key dict (~50 bytes an entry, and resizes that stalled a
    stream of millions for most of a second): a lookup bisects ``_maxes`` then a chunk.  Keys
    go in and come out as ``(ms, seq)`` tuples.  The C ``stream_append`` (``dumpling._collections``)
    appends through these slots: keep that layout (no empty chunk, ``_maxes``'s i-th record the
    last of ``_keys[i]``, ``_len`` the records' count)."""

    __slots__ = ("_len", "_keys", "_vals", "_maxes")

    def __init__(self, items: Iterable[tuple[StreamID, Any]] = ()) -> None:
        self._len = 0
        self._keys: list[bytearray] = []
        self._vals: list[Any] = []  # (lists here; PackedFlats in an EntryMap)
        self._maxes = bytearray()
        for key, value in sorted(dict(items).items()):
            self._append(pack_id(*key), value)

    def _chunk_of(self, values: list[Any]) -> Any:
        """A chunk's container of values (a list; EntryMap packs them)."""
        return values

    def _add_to_last(self, value: Any) -> bool:
        """Append ``value`` to the last chunk if it has room; whether it did."""
        vals = self._vals[-1]
        if len(vals) >= CHUNK:
            return False
        vals.append(value)
        return True

    def _seal_last(self) -> None:
        """The last chunk is full: appends go to a new one from now on."""

    def _append(self, record: bytes, value: Any) -> None:
        """Add the key ``record``, past every key, with its value."""
        maxes = self._maxes
        if maxes and self._add_to_last(value):
            self._keys[-1] += record
            maxes[-ID_BYTES:] = record
        else:
            if maxes:
                self._seal_last()
            self._vals.append(self._chunk_of([value]))
            self._keys.append(bytearray(record))
            maxes += record
        self._len += 1

    def _find(self, key: object) -> tuple[int, int] | None:
        """The chunk and place of ``key``, or None (absent, or not an ID)."""
        if type(key) is not tuple or len(key) != 2:
            return None
        try:
            record = pack_id(*key)
        except struct.error:  # not a pair of uint64 (so not a key)
            return None
        i = _bisect_records(self._maxes, record)
        if i == len(self._vals):
            return None
        keys = self._keys[i]
        j = _bisect_records(keys, record)
        return (i, j) if keys[j * ID_BYTES:(j + 1) * ID_BYTES] == record else None

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
            yield from unpack_ids(chunk)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.items())!r})"

    def keys(self) -> IdKeys:
        return IdKeys(self)

    def values(self) -> Iterator[Any]:
        for chunk in self._vals:
            yield from chunk

    def items(self) -> Iterator[tuple[StreamID, Any]]:
        for keys, vals in zip(self._keys, self._vals, strict=True):
            yield from zip(unpack_ids(keys), vals, strict=True)

    def _locate(self, index: int) -> tuple[int, int]:
        """The chunk and place of the index-th key (negative: from the end)."""
        n = self._len
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("IdMap index out of range")
        last = len(self._vals) - 1
        tail = n - len(self._vals[last])
        if index >= tail:
            return last, index - tail
        for i, chunk in enumerate(self._vals):
            if index < len(chunk):
                return i, index
            index -= len(chunk)
        raise IndexError("IdMap index out of range")  # (unreachable with the layout kept)

    def key_at(self, index: int) -> StreamID:
        i, j = self._locate(index)
        return unpack_id_from(self._keys[i], j * ID_BYTES)

    def peekitem(self, index: int = -1) -> tuple[StreamID, Any]:
        i, j = self._locate(index)
        return unpack_id_from(self._keys[i], j * ID_BYTES), self._vals[i][j]

    def __setitem__(self, key: StreamID, value: Any) -> None:
        record = pack_id(*key)
        maxes = self._maxes
        if not maxes or record > maxes[-ID_BYTES:]:
            self._append(record, value)
            return
        i = _bisect_records(maxes, record)
        keys, vals = self._keys[i], self._vals[i]
        j = _bisect_records(keys, record)
        at = j * ID_BYTES
        if keys[at:at + ID_BYTES] == record:
            vals[j] = value
            return
        # (only a value assembled out of order: streams append)
        vals.insert(j, value)  # (first: a packed chunk refuses a value past its size limit)
        keys[at:at] = record
        self._len += 1
        if len(vals) > CHUNK:  # split in two
            half = len(vals) // 2
            self._keys.insert(i + 1, keys[half * ID_BYTES:])
            self._vals.insert(i + 1, self._chunk_of(vals[half:]))
            maxes[i * ID_BYTES:i * ID_BYTES] = keys[(half - 1) * ID_BYTES:half * ID_BYTES]
            del keys[half * ID_BYTES:], vals[half:]

    def pop_first(self) -> Any:
        """Remove the first key; its value."""
        if not self._len:
            raise KeyError("pop_first from an empty IdMap")
        return self._remove(0, 0)

    def _remove(self, i: int, j: int) -> Any:
        keys, vals = self._keys[i], self._vals[i]
        value = vals[j]
        del keys[j * ID_BYTES:(j + 1) * ID_BYTES], vals[j]
        self._len -= 1
        if not vals:
            del self._keys[i], self._vals[i], self._maxes[i * ID_BYTES:(i + 1) * ID_BYTES]
        elif j == len(vals):
            self._maxes[i * ID_BYTES:(i + 1) * ID_BYTES] = keys[-ID_BYTES:]
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
        record = pack_id(*key)
        i = _bisect_records(self._maxes, record, True)
        if i < len(self._vals):
            j = _bisect_records(self._keys[i], record, True) - 1
            if j >= 0:
                return unpack_id_from(self._keys[i], j * ID_BYTES), self._vals[i][j]
        if i == 0:
            return None
        return unpack_id_from(self._maxes, (i - 1) * ID_BYTES), self._vals[i - 1][-1]

    def irange(self, minimum: StreamID | None = None, maximum: StreamID | None = None,
               reverse: bool = False) -> Iterator[StreamID]:
        """Keys from ``minimum`` to ``maximum`` (both included; None: no bound), in order or
        reversed (SortedDict.irange's use here).  Reads no value."""
        span = self._span(minimum, maximum)
        if span is None:
            return iter(())
        ci, pi, ce, pe = span
        chunks = range(ce, ci - 1, -1) if reverse else range(ci, ce + 1)
        return self._key_parts(chunks, ci, pi, ce, pe, reverse)

    def _key_parts(self, chunks: range, ci: int, pi: int, ce: int, pe: int, reverse: bool) -> Iterator[StreamID]:
        for i in chunks:
            start, stop = pi if i == ci else 0, pe if i == ce else len(self._vals[i])
            part = unpack_ids(self._keys[i][start * ID_BYTES:stop * ID_BYTES])
            yield from reversed(part) if reverse else part

    def irange_items(self, minimum: StreamID | None = None, maximum: StreamID | None = None,
                     reverse: bool = False) -> Iterator[tuple[StreamID, Any]]:
        """``irange``'s keys with their values (no lookup per key).  Each chunk's part is read
        out as it is reached (a copy: the map may change between items)."""
        span = self._span(minimum, maximum)
        if span is None:
            return iter(())
        return self._backward(*span) if reverse else self._forward(*span)

    def _span(self, minimum: StreamID | None, maximum: StreamID | None) -> tuple[int, int, int, int] | None:
        """Chunk ci place pi up to (not including) chunk ce place pe, or None (nothing)."""
        keys, maxes, n = self._keys, self._maxes, len(self._vals)
        if not n:
            return None
        if minimum is None:
            ci, pi = 0, 0
        else:
            low = pack_id(*minimum)
            ci = _bisect_records(maxes, low)
            if ci == n:
                return None
            pi = _bisect_records(keys[ci], low)
        if maximum is None:
            ce, pe = n - 1, len(self._vals[-1])
        else:
            high = pack_id(*maximum)
            ce = _bisect_records(maxes, high, True)
            if ce == n:
                ce, pe = ce - 1, len(self._vals[-1])
            else:
                pe = _bisect_records(keys[ce], high, True)
        return None if (ci, pi) >= (ce, pe) else (ci, pi, ce, pe)

    def count_range(self, minimum: StreamID, maximum: StreamID, most: int = 0, reverse: bool = False) -> int:
        """How many keys lie from ``minimum`` to ``maximum`` (both included), from the chunks'
        lengths (no key read); with ``most``, at most that many, the chunks counted from the
        range's start (``reverse``: its end) only until they hold that many."""
        span = self._span(minimum, maximum)
        if span is None:
            return 0
        ci, pi, ce, pe = span
        n = 0
        for i in range(ce, ci - 1, -1) if reverse else range(ci, ce + 1):
            n += (pe if i == ce else len(self._vals[i])) - (pi if i == ci else 0)
            if most and n >= most:
                return most
        return n

    def _part(self, i: int, start: int, stop: int) -> list[tuple[StreamID, Any]]:
        return list(zip(unpack_ids(self._keys[i][start * ID_BYTES:stop * ID_BYTES]), self._vals[i][start:stop],
                        strict=True))

    # Items are read out in pieces of FIRST_PIECE, doubling: a read of a few (XRANGE ... COUNT
    # 10) unpacks a few packed entries, not the rest of their chunk.
    FIRST_PIECE = 16

    def _forward(self, ci: int, pi: int, ce: int, pe: int) -> Iterator[tuple[StreamID, Any]]:
        piece = self.FIRST_PIECE
        for i in range(ci, ce + 1):
            at, stop = pi if i == ci else 0, pe if i == ce else len(self._vals[i])
            while at < stop:
                end = min(stop, at + piece)
                yield from self._part(i, at, end)
                at, piece = end, piece * 2

    def _backward(self, ci: int, pi: int, ce: int, pe: int) -> Iterator[tuple[StreamID, Any]]:
        piece = self.FIRST_PIECE
        for i in range(ce, ci - 1, -1):
            start, at = pi if i == ci else 0, pe if i == ce else len(self._vals[i])
            while at > start:
                begin = max(start, at - piece)
                yield from reversed(self._part(i, begin, at))
                at, piece = begin, piece * 2

    def delete_range(self, minimum: StreamID, maximum: StreamID) -> int:
        """Remove every key from ``minimum`` to ``maximum`` (both included); how many."""
        span = self._span(minimum, maximum)
        if span is None:
            return 0
        ci, pi, ce, pe = span
        removed = 0
        for i in range(ce, ci - 1, -1):
            keys, vals = self._keys[i], self._vals[i]
            start, stop = (pi if i == ci else 0), (pe if i == ce else len(vals))
            tail = stop == len(vals)
            del keys[start * ID_BYTES:stop * ID_BYTES], vals[start:stop]
            removed += stop - start
            if not vals:
                del self._keys[i], self._vals[i], self._maxes[i * ID_BYTES:(i + 1) * ID_BYTES]
            elif tail:
                self._maxes[i * ID_BYTES:(i + 1) * ID_BYTES] = keys[-ID_BYTES:]
        self._len -= removed
        return removed


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
            yield from reversed(unpack_ids(chunk))

    @overload
    def __getitem__(self, index: int) -> StreamID: ...

    @overload
    def __getitem__(self, index: slice) -> list[StreamID]: ...

    def __getitem__(self, index: int | slice) -> StreamID | list[StreamID]:
        if isinstance(index, slice):  # (a copy of the keys: tests and tools, not the commands)
            return list(self._owner)[index]
        return self._owner.key_at(index)


# ----------------------------------------------------------------------------- packed entries

CHUNK_BYTES = 0xFFFFFFFF  # a PackedFlats' data stays addressable by its 4-byte end offsets
_END = struct.Struct("=I")


def _varint(n: int) -> bytes:
    """``n`` as LEB128: 7 bits a byte, low first, the high bit set on every byte but the last."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(data: bytearray, p: int) -> tuple[int, int]:
    """The LEB128 number at ``p`` and the place after it."""
    b = data[p]
    if b < 0x80:
        return b, p + 1
    n, shift = 0, 0
    while True:
        b = data[p]
        p += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, p
        shift += 7


def pack_flat(flat: list[bytes], master: tuple[bytes, ...] | None) -> bytes:
    """One entry's bytes in a PackedFlats: a header ``len(flat) << 1 | same`` then each element
    stored, length first (LEB128 both).  ``same``: the fields are ``master``'s, so only the
    values are stored (Redis's master-entry compression)."""
    n = len(flat)
    same = master is not None and n == 2 * len(master) and tuple(flat[0::2]) == master
    parts = [_varint(n << 1 | same)]
    for item in flat[1::2] if same else flat:
        parts.append(_varint(len(item)))
        parts.append(item)
    return b"".join(parts)


def _unpack_flats_py(data: bytearray, ends: bytearray, master: tuple[bytes, ...] | None,
                     start: int, stop: int) -> list[list[bytes]]:
    """The entries ``start`` to ``stop`` (not included) of a PackedFlats' parts, as flat lists
    (a field shared with ``master`` is ``master``'s bytes object)."""
    p = _END.unpack_from(ends, (start - 1) * 4)[0] if start else 0
    out = []
    for _ in range(start, stop):
        header, p = _read_varint(data, p)
        n = header >> 1
        flat: list[bytes] = []
        if header & 1:
            assert master is not None
            for name in master:
                size, p = _read_varint(data, p)
                flat.append(name)
                flat.append(bytes(data[p:p + size]))
                p += size
        else:
            for _ in range(n):
                size, p = _read_varint(data, p)
                flat.append(bytes(data[p:p + size]))
                p += size
        out.append(flat)
    return out


def _flats_append_py(chunk: PackedFlats, flat: list[bytes]) -> bool:
    """Append ``flat`` to ``chunk`` unless its data would pass CHUNK_BYTES; whether it did."""
    if chunk.master is None and len(flat) % 2 == 0:
        chunk.master = tuple(map(bytes, flat[0::2]))
    packed = pack_flat(flat, chunk.master)
    end = len(chunk.data) + len(packed)
    if end > CHUNK_BYTES:
        return False
    chunk.data += packed
    chunk.ends += _END.pack(end)
    return True


def _flats_delete_py(chunk: PackedFlats, start: int, stop: int) -> None:
    """Remove the entries ``start`` to ``stop`` (not included) of ``chunk``."""
    ends = chunk.ends
    first = _END.unpack_from(ends, (start - 1) * 4)[0] if start else 0
    last = _END.unpack_from(ends, (stop - 1) * 4)[0]
    shift = last - first
    del chunk.data[first:last]
    tail = [end - shift for (end,) in _END.iter_unpack(ends[stop * 4:])]
    ends[start * 4:] = struct.pack(f"={len(tail)}I", *tail)


class PackedFlats:
    """The values of one chunk of an ``EntryMap``: each entry's flat field/value list packed
    (``pack_flat``) one after another in ``data``, ``ends`` the 4-byte native end offset of each
    (so the j-th entry is found without reading the ones before it), ``master`` the fields of
    the first entry the chunk took, which an entry with the same fields does not store again.
    No Python object per entry: a list and its bytes objects were ~120-165 bytes an entry, this
    is the entry's bytes plus ~6.  Reads make new lists (and bytes, but for master fields).
    It behaves as the list IdMap keeps per chunk (len, indexing and slices of step 1, append,
    insert, deletion); ``dumpling._collections`` packs, unpacks and deletes in C
    (``flats_append``/``flats_unpack``/``flats_delete``, also its ``stream_append``'s path)."""

    __slots__ = ("master", "data", "ends")

    def __init__(self, flats: Iterable[list[bytes]] = ()) -> None:
        self.master: tuple[bytes, ...] | None = None
        self.data = bytearray()
        self.ends = bytearray()
        for flat in flats:
            if not self.append_if_fits(flat):
                raise OverflowError("a stream chunk of more than 4 GiB")

    def __len__(self) -> int:
        return len(self.ends) >> 2

    def __repr__(self) -> str:
        return f"PackedFlats({list(self)!r})"

    def append_if_fits(self, flat: list[bytes]) -> bool:
        return _flats_append(self, flat)

    def append(self, flat: list[bytes]) -> None:
        if not _flats_append(self, flat):
            raise OverflowError("a stream chunk of more than 4 GiB")

    def _index(self, index: int) -> int:
        n = len(self.ends) >> 2
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("PackedFlats index out of range")
        return index

    @overload
    def __getitem__(self, index: int) -> list[bytes]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[bytes]]: ...

    def __getitem__(self, index: int | slice) -> list[bytes] | list[list[bytes]]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return list(self)[index]
            return _unpack_flats(self.data, self.ends, self.master, start, stop) if start < stop else []
        j = self._index(index)
        return _unpack_flats(self.data, self.ends, self.master, j, j + 1)[0]

    def __iter__(self) -> Iterator[list[bytes]]:
        return iter(_unpack_flats(self.data, self.ends, self.master, 0, len(self)))

    def __delitem__(self, index: int | slice) -> None:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("PackedFlats deletes ranges of step 1")
        else:
            start = self._index(index)
            stop = start + 1
        if start < stop:
            _flats_delete(self, start, stop)

    def insert(self, index: int, flat: list[bytes]) -> None:
        """``list.insert`` (only a value assembled out of ID order: streams append)."""
        index = max(0, min(len(self), index + len(self) if index < 0 else index))
        tail = self[index:]
        if index < len(self):
            _flats_delete(self, index, len(self))
        for i, item in enumerate([flat, *tail]):
            if not _flats_append(self, item):  # put back what was there: nothing changed
                if i:
                    _flats_delete(self, index, len(self))
                for back in tail:
                    _flats_append(self, back)
                raise OverflowError("a stream chunk of more than 4 GiB")

    def __setitem__(self, index: int, flat: list[bytes]) -> None:
        j = self._index(index)
        old = self[j]
        del self[j]
        try:
            self.insert(j, flat)
        except OverflowError:
            self.insert(j, old)
            raise


class EntryMap(IdMap):
    """A stream's entries: an ``IdMap`` from ID to flat field/value list whose chunks keep the
    values packed (``PackedFlats``), with no object per entry.  A chunk also ends when its data
    would pass CHUNK_BYTES (4 GiB: no stream entry is over 1 GiB)."""

    __slots__ = ()

    def _chunk_of(self, values: list[Any]) -> PackedFlats:
        return PackedFlats(values)

    def _add_to_last(self, value: Any) -> bool:
        vals = self._vals[-1]
        return len(vals) < CHUNK and vals.append_if_fits(value)

    def _seal_last(self) -> None:
        """A full chunk's bytearrays copied to their exact size (appends left them up to 1/8
        larger)."""
        vals = self._vals[-1]
        vals.data, vals.ends = bytearray(vals.data), bytearray(vals.ends)
        self._keys[-1] = bytearray(self._keys[-1])


# ----------------------------------------------------------------------------- a range's reply


def _range_wire_py(entries: IdMap, start: StreamID, end: StreamID, count: int, reverse: bool,
                   most: int) -> bytes | bool:
    """The RESP reply of the entries from ``start`` to ``end`` (both included; none when start
    is past end), at most ``count`` (0: all), from the end when ``reverse``: ``*N``, then each
    entry as ``*2``, its ID's text ``ms-seq`` as a bulk, ``*2k`` and its fields and values as
    bulks (the same bytes in RESP2 and RESP3); False once the reply passes ``most`` bytes (-1:
    no limit), nothing more written.  The C ``stream_range_reply`` writes the same bytes
    straight from the packed chunks; this is its reference."""
    n = entries.count_range(start, end, count, reverse) if start <= end else 0
    head = b"*%d\r\n" % n
    out = [head]
    size = len(head)
    if n:
        for (ms, seq), flat in islice(entries.irange_items(start, end, reverse), n):
            text = b"%d-%d" % (ms, seq)
            part = b"*2\r\n$%d\r\n%s\r\n*%d\r\n%s" % (
                len(text), text, len(flat), b"".join([b"$%d\r\n%s\r\n" % (len(x), x) for x in flat]))
            size += len(part)
            if 0 <= most < size:
                return False
            out.append(part)
    if 0 <= most < size:
        return False
    return b"".join(out)


def range_wire(entries: IdMap, start: StreamID, end: StreamID, count: int, reverse: bool, most: int) -> bytes | None:
    """``_range_wire_py``'s reply (C's when built), or None when it would pass ``most`` bytes."""
    if _native_range is not None:
        wire = _native_range(entries, start, end, count, reverse, most)
        if wire is not None:
            return None if wire is False else wire  # type: ignore[no-any-return]
    wire = _range_wire_py(entries, start, end, count, reverse, most)
    return None if wire is False else wire  # type: ignore[return-value]


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
# the place of a record among sorted records: C's binary search, or the Python reference
_bisect_records = _bisect_records_py if accel.collections is None else accel.collections.bisect_records
# PackedFlats' packing, reading and deletion: C, or the Python reference
_flats_append = _flats_append_py if accel.collections is None else accel.collections.flats_append
_unpack_flats = _unpack_flats_py if accel.collections is None else accel.collections.flats_unpack
_flats_delete = _flats_delete_py if accel.collections is None else accel.collections.flats_delete
# a range's RESP reply written from the packed chunks in C (None: the Python reference's only)
_native_range = None if accel.collections is None else accel.collections.stream_range_reply


def _signed64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


class StreamNode:
    """One listpack of the radix tree: master ID/fields, the last ID appended (its entries are
    the stream's live entries from ``master_id`` to ``last_id`` and its tombstones, ``dead``:
    nodes hold consecutive ID ranges), the counts and listpack bytes Redis's node has."""

    __slots__ = ("master_id", "master_fields", "last_id", "dead", "live", "deleted", "entries_bytes", "fields_bytes")

    def __init__(self, master_id: StreamID, master_fields: list[bytes]) -> None:
        self.master_id = master_id
        self.master_fields = master_fields
        self.last_id = master_id  # the greatest ID the listpack holds, tombstones included
        self.dead: dict[StreamID, list[bytes]] = {}  # tombstoned entries (still in the listpack)
        self.live = 0
        self.deleted = 0
        self.entries_bytes = 0
        self.fields_bytes = sum(map(_str_size, master_fields))

    def ids(self, entries: IdMap) -> list[StreamID]:
        """Every ID the listpack holds, in order (tombstones included), ``entries`` being its
        stream's (the node keeps no per-entry record of its own)."""
        live = list(entries.irange(self.master_id, self.last_id))
        return sorted(live + list(self.dead)) if self.dead else live

    def add_id(self, entry_id: StreamID) -> None:
        """An entry appended (past every ID the node holds)."""
        self.last_id = entry_id

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
        node.last_id = self.last_id
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
        self._entries = EntryMap()  # StreamID -> list[bytes] (flat field/value), packed
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
        self._entries = mapping if type(mapping) is EntryMap else EntryMap(mapping.items())

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

    def adopt_node_map(self, nodes: IdMap) -> None:
        """``adopt_nodes`` of a node map built already (the C loader's, in master-ID order)."""
        self._nodes = nodes

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
        node.add_id(entry_id)
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
        entries = self.entries
        if entries and entry_id < entries.key_at(-1):
            # (only a restored value whose last ID is below its entries': a node holds a range
            # of IDs, so the layout is laid out again, as consecutive XADDs in ID order would)
            entries[entry_id] = flat
            self._nodes = None
            self.nodes(max_bytes, max_entries)
        else:
            if self._nodes is None:
                self.nodes(max_bytes, max_entries)
            self._place(entry_id, flat, max_bytes, max_entries)
            entries[entry_id] = flat
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
                self.entries.delete_range(node.master_id, node.last_id)
                del nodes[node.master_id]
                deleted += live
                continue
            if approx:
                break
            # the node's live entries in order, which are the stream's first ones (a tombstone
            # at or past MINID has only live entries past it after it: no need to visit them)
            removed = 0
            entries = self.entries
            while entries:
                entry_id = entries.key_at(0)
                if entry_id > node.last_id:
                    break
                if maxlen is not None:
                    if len(entries) <= maxlen:
                        break
                elif entry_id >= minid:  # type: ignore[operator]
                    break
                node.dead[entry_id] = entries.pop_first()
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
        s._entries = EntryMap(self.entries.items())
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
