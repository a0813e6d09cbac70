"""Hash values: field -> value, per-field absolute expiry times, and the Redis encoding.

``fields`` is an insertion-ordered dict whose order *is* the listpack order Redis
keeps, so replies and DUMP see the same sequence:

* ``listpack``: insertion order, an overwritten field keeps its place;
* ``listpackex`` (a small hash once any field had a TTL, Redis 7.4): fields with a
  TTL first, ascending by expiry time (a field whose TTL is set goes before
  others expiring at the same millisecond), then fields without TTL in
  insertion order; setting, changing or removing a field's TTL moves it;
* ``hashtable``: order unspecified; the fields are not a dict but a ``KeyTable``
  (``dumpling.keytable``: the keyspace's own C hash table, field -> value, rehashed
  incrementally; ``PyKeyTable``, a dict subclass, in pure mode), a mapping with the
  dict methods the hash code uses (``len``, ``in``, ``[]``, ``get``, ``pop``, assignment,
  ``del``, iteration, ``values()``/``items()`` iterators), whose ``scan`` (Redis's
  reverse-binary cursor over its buckets) serves HSCAN and ``random_key`` HRANDFIELD.
  ``encoding == "hashtable"`` exactly when ``_fields`` is a table.

``field_expires`` maps field -> absolute Unix ms for fields that have a TTL (what
RDB types 24/25 carry); a hash that never had one shares ``NO_FIELD_TTLS``, an empty
dict that refuses writes, instead of holding an empty dict of its own (most hashes are
small and have no TTLs: ~80 bytes each).  A min-heap, built on first need, answers
"which fields are due" without scanning.  Encodings convert upward only (listpack -> listpackex ->
hashtable), following ``t_hash.c``.

A restored listpack hash may start *packed* (``HashValue.packed``): the payload's listpack
bytes are kept as they came, in the ``_fields`` slot, and the dict is built by the first
access to ``fields`` (``unpack_listpack``, which the payload codec installs).  A small hash the
native HSET creates is born packed the same way, and native HSET edits its listpack (a new
``bytes`` per write) until a conversion or another command builds it.  Until then
``len()``, ``OBJECT ENCODING``, ``MEMORY USAGE`` and ``copy()`` answer from the bytes, and
``packed_listpack()`` hands them to DUMP, which writes them back unchanged.  C code that reads
the ``_fields`` slot at its offset must treat bytes as "not built" (decline, or build through
the ``fields`` attribute first), and a table (not a dict) through ``_keytable.h``'s API.

Must not: know about commands, keys, notifications or the keyspace.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from dumpling.collector import hide
from dumpling.datatypes.lists import LP_HEADER_BYTES, jemalloc_size, lp_entry_size, sds_alloc_size
from dumpling.keytable import KeyTable

# HEXPIRE family result codes (and HGETEX/HSETEX internals).
NO_FIELD = -2
NO_CONDITION_MET = 0
EXPIRE_SET = 1
FIELD_DELETED = 2
# HPERSIST result codes.
PERSIST_NO_FIELD = -2
PERSIST_NO_TTL = -1
PERSIST_OK = 1
# Largest absolute expiry time a field may have (EB_EXPIRE_TIME_MAX >> 2).
HFE_MAX_ABS_TIME_MS = ((1 << 48) - 1) >> 2


class _NoFieldTTLs(dict):  # type: ignore[type-arg]
    """The ``field_expires`` of every hash without field TTLs: empty, shared, read-only (a
    hash gets a dict of its own with its first TTL).  Reading, ``pop(f, None)`` and ``del``
    of an absent field work as on any empty dict; a write is a bug and raises."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("NO_FIELD_TTLS is shared: give the hash its own field_expires first")

    __setitem__ = update = setdefault = __ior__ = _refuse  # type: ignore[assignment]


NO_FIELD_TTLS: dict[bytes, int] = _NoFieldTTLs()
hide(NO_FIELD_TTLS)  # shared by stored hashes: untracked, or none of them could be (dumpling.collector)


SHARED_NAME_MAX_LEN = 32  # longer field names are kept as they came
SHARED_NAMES_MAX = 4096  # names in the table before it is emptied

_shared_names: dict[bytes, bytes] = {}


def shared_name(field: bytes) -> bytes:
    """The stored object for a new field's name: one object per short name for all hashes.
    Hashes written from one record type repeat the same names in every key (Redis keeps
    them inside each listpack; here each would be a 48-byte object per key).  The table
    holds at most ``SHARED_NAMES_MAX`` names and is emptied when full (names shared so far
    stay shared), so names that never repeat cost a dict lookup and nothing stays."""
    if len(field) > SHARED_NAME_MAX_LEN:
        return field
    name = _shared_names.get(field)
    if name is None:
        if len(_shared_names) >= SHARED_NAMES_MAX:
            _shared_names.clear()
        name = _shared_names[field] = field
    return name


def new_table(pairs: Iterable[tuple[bytes, bytes]] | Mapping[bytes, bytes] = ()) -> Any:
    """A hashtable-encoded hash's fields: a ``KeyTable`` holding ``pairs`` (a mapping's items,
    or (field, value) pairs; a repeated field keeps its last value, as a dict's)."""
    table = KeyTable(inline_values=True)
    items = pairs.items() if isinstance(pairs, Mapping) or type(pairs) is KeyTable else pairs
    for field, value in items:  # type: ignore[union-attr]
        table[field] = value
    return table


class HashLimits(NamedTuple):
    """``hash-max-listpack-entries`` and ``hash-max-listpack-value``."""

    entries: int
    value: int

    @classmethod
    def from_config(cls, config: object) -> HashLimits:
        get = config.__getitem__  # type: ignore[attr-defined]
        return cls(get("hash-max-listpack-entries"), get("hash-max-listpack-value"))


def _no_listpack_reader(blob: bytes) -> dict[bytes, bytes]:
    raise RuntimeError("a packed hash needs the payload codec's listpack reader")


# A packed hash's listpack -> its fields (``listpack.decode_hash`` without deep checks; the
# payload codec sets it when it is imported, before it can make a packed hash).
unpack_listpack: Callable[[bytes], dict[bytes, bytes]] = _no_listpack_reader


class HashValue:
    TYPE = b"hash"
    __slots__ = ("_fields", "field_expires", "encoding", "_heap")

    def __init__(
        self,
        fields: Iterable[tuple[bytes, bytes]] | dict[bytes, bytes] = (),
        field_expires: dict[bytes, int] | None = None,
        encoding: str = "listpack",
    ) -> None:
        # The fields (a dict, a table when hashtable-encoded), or while the hash is packed the
        # restored listpack (bytes) they come from.
        self._fields: Any = new_table(fields) if encoding == "hashtable" else dict(fields)
        # field -> absolute Unix ms; only fields that have a TTL appear here.
        self.field_expires: dict[bytes, int] = field_expires or NO_FIELD_TTLS
        self.encoding = encoding
        self._heap: list[tuple[int, bytes]] | None = None  # (when, field); None until first needed

    @classmethod
    def packed(cls, listpack: bytes) -> HashValue:
        """A listpack-encoded hash without field TTLs whose fields stay in ``listpack`` (a
        checked hash listpack: distinct fields, its header's count exact) until first used."""
        value = cls.__new__(cls)
        value._fields = listpack
        value.field_expires = NO_FIELD_TTLS
        value.encoding = "listpack"
        value._heap = None
        return value

    @property
    def fields(self) -> Any:
        """field -> value: a dict (listpack, listpackex) or a ``KeyTable`` (hashtable)."""
        fields = self._fields
        if type(fields) is bytes:
            fields = self._fields = unpack_listpack(fields)
        return fields

    @fields.setter
    def fields(self, fields: Any) -> None:
        """(A dict given to a hashtable-encoded hash becomes its table.)"""
        self._fields = new_table(fields) if self.encoding == "hashtable" and type(fields) is not KeyTable else fields

    def packed_listpack(self) -> bytes | None:
        """The restored listpack while the hash was not used since RESTORE (for DUMP), else None."""
        fields = self._fields
        return fields if type(fields) is bytes else None

    def __len__(self) -> int:
        fields = self._fields
        if type(fields) is not bytes:
            return len(fields)
        return (fields[4] | fields[5] << 8) >> 1  # the listpack header's count

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.fields)

    def copy(self) -> HashValue:
        fields = self._fields
        if type(fields) is bytes:
            return HashValue.packed(fields)  # shared as they are
        return HashValue(fields, dict(self.field_expires) if self.field_expires else None, self.encoding)

    # -- encoding ------------------------------------------------------------------------

    def try_conversion(self, args: list[bytes], limits: HashLimits) -> None:
        """``hashTypeTryConversion`` for the field/value arguments about to be written."""
        if self.encoding == "hashtable":
            return
        if len(args) // 2 > limits.entries or (args and max(map(len, args)) > limits.value):
            self.to_hashtable()

    def to_hashtable(self) -> None:
        if self.encoding != "hashtable":
            self._fields = new_table(self.fields)  # (a packed hash is built first)
            self.encoding = "hashtable"

    def enable_field_ttls(self) -> None:
        """``hashTypeSetExInit``: a listpack hash becomes listpackex before any TTL is set."""
        if self.encoding == "listpack":
            self.fields  # noqa: B018  # a packed hash is built first: only a listpack stays packed
            self.encoding = "listpackex"

    def _place(self, field: bytes, value: bytes, when: int | None) -> None:
        """Re-insert ``field`` at its listpackex position (``listpackExAddInternal``)."""
        fields = self.fields
        fields.pop(field, None)
        if when is None:
            fields[field] = value
            return
        expires = self.field_expires
        items = list(fields.items())
        at = len(items)
        for i, (name, _) in enumerate(items):
            other = expires.get(name)
            if other is None or other >= when:
                at = i
                break
        if at == len(items):
            fields[field] = value
            return
        items.insert(at, (field, value))
        fields.clear()
        fields.update(items)

    # -- fields --------------------------------------------------------------------------

    def set(self, field: bytes, value: bytes, limits: HashLimits, keep_ttl: bool = False) -> bool:
        """``hashTypeSet``: True if the field is new.  Overwriting drops its TTL unless ``keep_ttl``."""
        if self.encoding != "hashtable" and (len(field) > limits.value or len(value) > limits.value):
            self.to_hashtable()
        fields = self.fields
        existed = field in fields
        if existed:
            fields[field] = value
            if not keep_ttl and field in self.field_expires:
                del self.field_expires[field]
                if self.encoding == "listpackex":
                    self._place(field, value, None)
        else:
            fields[shared_name(field)] = value
        if self.encoding != "hashtable" and len(fields) > limits.entries:
            self.to_hashtable()
        return not existed

    def delete(self, field: bytes) -> bool:
        if self.fields.pop(field, None) is None:
            return False
        self.field_expires.pop(field, None)
        return True

    # -- field TTLs ------------------------------------------------------------------------

    def _heap_push(self, when: int, field: bytes) -> None:
        heap = self._heap
        if heap is not None:
            heapq.heappush(heap, (when, field))
            if len(heap) > 2 * len(self.field_expires) + 32:
                self._rebuild_heap()

    def _rebuild_heap(self) -> list[tuple[int, bytes]]:
        heap = self._heap = [(when, field) for field, when in self.field_expires.items()]
        heapq.heapify(heap)
        return heap

    def min_expire(self) -> int | None:
        """The earliest field expiry time, or None when no field has a TTL."""
        expires = self.field_expires
        if not expires:
            return None
        heap = self._heap
        if heap is None:
            heap = self._rebuild_heap()
        while heap:
            when, field = heap[0]
            if expires.get(field) == when:
                return when
            heapq.heappop(heap)
        heap = self._rebuild_heap()
        return heap[0][0] if heap else None

    def set_field_expire(self, field: bytes, when: int, condition: str | None, now: int) -> int:
        """``hashTypeSetEx``: one field's TTL under NX/XX/GT/LT; returns the reply code.

        ``when <= now`` deletes the field (code 2).  The caller converts a listpack
        hash with ``enable_field_ttls`` first.
        """
        if field not in self.fields:
            return NO_FIELD
        prev = self.field_expires.get(field)
        if prev is None:
            if condition in ("XX", "GT"):
                return NO_CONDITION_MET
        elif (
            (condition == "GT" and prev >= when)
            or (condition == "LT" and prev <= when)
            or condition == "NX"
        ):
            return NO_CONDITION_MET
        if when <= now:
            self.delete(field)
            return FIELD_DELETED
        expires = self.field_expires
        if expires is NO_FIELD_TTLS:
            expires = self.field_expires = {}
        expires[field] = when
        self._heap_push(when, field)
        if self.encoding == "listpackex":
            self._place(field, self.fields[field], when)
        return EXPIRE_SET

    def persist_field(self, field: bytes, now: int) -> int:
        if field not in self.fields:
            return PERSIST_NO_FIELD
        when = self.field_expires.get(field)
        if when is None:
            return PERSIST_NO_TTL
        if when < now:
            return PERSIST_NO_FIELD
        del self.field_expires[field]
        if self.encoding == "listpackex":
            self._place(field, self.fields[field], None)
        return PERSIST_OK

    def is_expired(self, field: bytes, now: int) -> bool:
        """The field has a TTL that passed (``hfieldIsExpired``); it may still be stored."""
        when = self.field_expires.get(field)
        return when is not None and when < now

    def table_reply(self, kind: int, resp3: bool) -> bytes | None:
        """HGETALL, HKEYS or HVALS (``kind``: ``keytable.REPLY_ITEMS``/``_KEYS``/``_VALUES``) as RESP
        bytes written by the hashtable itself (``KeyTable.reply``: no object per field); None
        for a listpack hash, or one with field TTLs (expired fields are left out)."""
        if self.encoding != "hashtable" or self.field_expires:
            return None
        wire: bytes | None = self._fields.reply(kind, resp3)
        return wire

    def live_items(self, now: int) -> list[tuple[bytes, bytes]]:
        """(field, value) pairs whose TTL has not passed, in storage order (``hashTypeNext``
        skipping expired fields); the expired ones stay until something deletes them."""
        expires = self.field_expires
        if not expires:
            return list(self.fields.items())
        return [(f, v) for f, v in self.fields.items() if f not in expires or expires[f] >= now]

    def expire_due(self, now: int, limit: int | None = None) -> list[bytes]:
        """Delete fields whose expiry time is before ``now``; returns them."""
        min_when = self.min_expire()
        if min_when is None or min_when >= now:
            return []
        heap = self._heap if self._heap is not None else self._rebuild_heap()
        expires, fields = self.field_expires, self.fields
        gone: list[bytes] = []
        while heap and (limit is None or len(gone) < limit):
            when, field = heap[0]
            if when >= now:
                break
            heapq.heappop(heap)
            if expires.get(field) == when:
                del expires[field]
                fields.pop(field, None)
                gone.append(field)
        return gone

    # -- iteration and randomness -------------------------------------------------------

    def random_field(self, rng: random.Random) -> bytes:
        """A random field (HRANDFIELD): a hashtable's from its table (``random_key``, fair
        over chains as Redis's ``dictGetFairRandomKey``), a listpack's by position."""
        fields = self.fields
        if self.encoding != "hashtable":
            names = list(fields)
            return names[rng.randrange(len(names))]
        field: bytes | None = fields.random_key()
        assert field is not None
        return field

    def sample_unique(self, count: int, rng: random.Random) -> list[bytes]:
        """HRANDFIELD with a positive count smaller than the hash."""
        fields = self.fields
        if self.encoding != "hashtable":
            names = list(fields)
            picks = sorted(rng.sample(range(len(names)), count))
            return [names[i] for i in picks]
        if count * 3 > len(fields):
            return rng.sample(list(fields), count)
        chosen: dict[bytes, None] = {}
        while len(chosen) < count:
            chosen[self.random_field(rng)] = None
        return list(chosen)

    def memory_usage(self, samples: int = 5) -> int:
        """``objectComputeSize`` for a hash, without the 16-byte object header (the caller
        adds it with the key and its dict entry)."""
        packed = self._fields
        if type(packed) is bytes:
            return jemalloc_size(len(packed))  # lpBytes of the listpack Redis would hold too
        fields = self.fields
        if self.encoding in ("listpack", "listpackex"):
            lp = LP_HEADER_BYTES
            ttl_entry = 2 if self.encoding == "listpackex" else 0
            expires = self.field_expires
            for field, value in fields.items():
                lp += lp_entry_size(field) + lp_entry_size(value)
                if ttl_entry:
                    lp += lp_entry_size(b"%d" % expires[field]) if field in expires else ttl_entry
            extra = 48 if self.encoding == "listpackex" else 0
            return extra + jemalloc_size(lp)
        n = len(fields)
        buckets = 4
        while buckets < n:
            buckets <<= 1
        size = 56 + 8 * buckets
        if n:
            sampled = []
            for field, value in fields.items():
                sampled.append(24 + sds_alloc_size(len(field)) + sds_alloc_size(len(value)))
                if samples and len(sampled) >= samples:
                    break
            size += int(sum(sampled) / len(sampled) * n)
        return size
