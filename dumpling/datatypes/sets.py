"""Set values: a Python set plus the Redis 7.4 encoding (intset / listpack / hashtable).

``members`` is always the plain ``set`` of member byte strings.  What Redis's
encoding adds, and what replies and DUMP must reproduce, is the member *order*:

* ``intset``: ascending by integer value (kept as a cached sorted list);
* ``listpack``: insertion order (kept as a list next to the set);
* ``hashtable``: unspecified; a ``ScanOrder`` gives SSCAN its guarantee and
  O(1) uniform random picks for SPOP/SRANDMEMBER.

Encodings only ever convert upward (intset -> listpack -> hashtable) following
``t_set.c``: ``create``, ``maybe_convert`` and ``add`` take the three limits from
``SetLimits``.  The one exception, as in Redis, is SPOP's "keep the rest in a
new set" strategy, which rebuilds the survivors from scratch.

A restored intset (type 11) or set listpack (type 20) may start *packed* (``SetValue.packed``):
the payload's blob is kept in the ``_members`` slot and the set is built by the first access to
``members`` (``unpack_blob``, which the payload codec installs; an intset's blob starts with its
width 2, 4 or 8, a listpack's with its total size, never one of those).  Until then ``len()``,
``OBJECT ENCODING``, ``MEMORY USAGE`` and ``copy()`` answer from the blob, and ``packed_blob``
hands it to DUMP.  C code that reads ``_members`` at its offset must treat anything but a set
as "not built".

Must not: know about commands, keys or the keyspace.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from dumpling.bigops import draw_with_repeats, sample_prefix
from dumpling.collector import untrack
from dumpling.datatypes.lists import jemalloc_size, lp_bytes_of, lp_int_value, sds_alloc_size
from dumpling.scan import MemberScan, ScanOrder

INTSET_HARD_LIMIT = 1 << 30
SPOP_MOVE_STRATEGY_MUL = 5
SRANDMEMBER_SUB_STRATEGY_MUL = 3


class SetLimits(NamedTuple):
    """``set-max-intset-entries``, ``set-max-listpack-entries``, ``set-max-listpack-value``."""

    intset_entries: int
    listpack_entries: int
    listpack_value: int

    def small_most(self) -> int:
        """The most members an intset or listpack holds: a set that grew past it one add at a
        time is a hashtable (adds only convert upward), whatever it started as."""
        return max(min(self.intset_entries, INTSET_HARD_LIMIT), self.listpack_entries)

    @classmethod
    def from_config(cls, config: object) -> SetLimits:
        get = config.__getitem__  # type: ignore[attr-defined]
        return cls(get("set-max-intset-entries"), get("set-max-listpack-entries"), get("set-max-listpack-value"))


def _digits10(value: int) -> int:
    """``sdigits10``: characters of the decimal form, sign included."""
    return len(str(value))


def _intset_width(low: int, high: int) -> int:
    if -32768 <= low and high <= 32767:
        return 2
    if -(1 << 31) <= low and high <= (1 << 31) - 1:
        return 4
    return 8


def _no_blob_reader(blob: bytes) -> SetValue:
    raise RuntimeError("a packed set needs the payload codec's blob reader")


# A packed set's blob -> the set built (the payload readers' value, not deep; the payload codec
# sets it when it is imported, before it can make a packed set).
unpack_blob: Callable[[bytes], SetValue] = _no_blob_reader


class SetValue:
    TYPE = b"set"
    __slots__ = ("_members", "encoding", "_order", "_scan")

    def __init__(self, members: Iterable[bytes] = (), encoding: str = "hashtable") -> None:
        # The members, or while the set is packed the restored intset or listpack (bytes).
        self._members: set[bytes] | bytes
        if encoding == "listpack":
            order = list(dict.fromkeys(members))
            self._members = set(order)
            self._order: list[bytes] | None = order
        else:
            self._members = set(members)
            self._order = None
        self.encoding = encoding
        self._scan: MemberScan | None = None

    @classmethod
    def adopt(cls, members: set[bytes]) -> SetValue:
        """A ``hashtable`` set holding ``members`` itself (a set nobody else keeps): what adding
        more members than any small encoding holds, one by one, ends in, without the adds."""
        value = cls.__new__(cls)
        value._members = members
        value.encoding = "hashtable"
        value._order = None
        value._scan = None
        return value

    @classmethod
    def packed(cls, blob: bytes, encoding: str) -> SetValue:
        """An ``intset`` or ``listpack`` set whose members stay in ``blob`` (a checked intset:
        ascending, its narrowest width; or a listpack of distinct members, its header's count
        exact) until first used."""
        value = cls.__new__(cls)
        value._members = blob
        value.encoding = encoding
        value._order = None
        value._scan = None
        return value

    @property
    def members(self) -> set[bytes]:
        members = self._members
        if type(members) is not set:
            built = unpack_blob(members)  # type: ignore[arg-type]
            members, order = built._members, built._order
            untrack(members)  # as collector.stored would have, had the set been built when stored
            if order is not None:
                untrack(order)
            self._members, self._order = members, order
        return members  # type: ignore[return-value]

    @members.setter
    def members(self, members: set[bytes]) -> None:
        self._members = members

    def packed_blob(self, version: int) -> bytes | None:
        """The restored blob while the set was not used since RESTORE, when a DUMP for
        ``version`` writes that form (an intset always, a listpack from RDB 11); else None."""
        blob = self._members
        if type(blob) is set or (self.encoding != "intset" and (self.encoding != "listpack" or version < 11)):
            return None
        return blob  # type: ignore[return-value]

    def __len__(self) -> int:
        members = self._members
        if type(members) is set:
            return len(members)
        if self.encoding == "intset":  # the header's count
            return int.from_bytes(members[4:8], "little")  # type: ignore[index]
        return members[4] | members[5] << 8  # type: ignore[index]

    def __iter__(self) -> Iterator[bytes]:
        """Members in the order Redis's encoding holds them (what DUMP writes)."""
        return iter(self.ordered())

    def __contains__(self, member: bytes) -> bool:
        return member in self.members

    def copy(self) -> SetValue:
        if type(self._members) is not set:
            return SetValue.packed(self._members, self.encoding)  # type: ignore[arg-type]  # bytes: shared
        dup = SetValue((), self.encoding)
        dup.members = set(self.members)
        if self._order is not None:
            dup._order = list(self._order)
        return dup

    # -- creation and conversion -----------------------------------------------------

    @classmethod
    def create(cls, first: bytes, size_hint: int, limits: SetLimits) -> SetValue:
        """``setTypeCreate``: the encoding a new set gets from its first member."""
        if lp_int_value(first) is not None and size_hint <= limits.intset_entries:
            return cls((), "intset")
        if size_hint <= limits.listpack_entries:
            return cls((), "listpack")
        return cls((), "hashtable")

    def maybe_convert(self, size_hint: int, limits: SetLimits) -> None:
        """``setTypeMaybeConvert``: an upcoming big batch goes straight to a hashtable."""
        if (self.encoding == "listpack" and size_hint > limits.listpack_entries) or (
            self.encoding == "intset" and size_hint > limits.intset_entries
        ):
            self._to_hashtable()

    def _to_hashtable(self) -> None:
        self.members  # noqa: B018  # a packed set is built first: it unpacks by its encoding's blob
        self.encoding = "hashtable"
        self._order = None

    def _to_listpack(self) -> None:
        self._order = self.ordered()
        self.encoding = "listpack"

    def maybe_to_intset(self, limits: SetLimits) -> None:
        """``maybeConvertToIntset`` (all members known to be integers)."""
        if self.encoding != "intset" and len(self.members) <= min(limits.intset_entries, INTSET_HARD_LIMIT):
            self.encoding = "intset"
            self._order = None

    # -- membership ----------------------------------------------------------------------

    def ordered(self) -> list[bytes]:
        self.members  # noqa: B018  # a packed set is built first (that sets its listpack order)
        if self.encoding == "listpack":
            order = self._order
            if order is None or len(order) != len(self.members):
                order = self._order = self._resync_order(order)
            return order
        if self.encoding == "intset":
            order = self._order
            if order is None or len(order) != len(self.members):
                order = self._order = sorted(self.members, key=int)
            return order
        return list(self.members)

    def walk_source(self) -> set[bytes] | list[bytes]:
        """The members in ``ordered()``'s order as cheaply as they are held: a hashtable's set
        itself (what ``bigops.set_walk`` walks in its iteration order), else ``ordered()``."""
        if self.encoding == "hashtable":
            return self.members
        return self.ordered()

    def _resync_order(self, order: list[bytes] | None) -> list[bytes]:
        """Somebody changed ``members`` directly: keep known order, append the rest."""
        members = self.members
        kept = [m for m in order or () if m in members]
        seen = set(kept)
        return kept + [m for m in members if m not in seen]

    def add(self, member: bytes, limits: SetLimits) -> bool:
        """``setTypeAddAux``: add one member, converting the encoding as Redis would."""
        members = self.members
        if member in members:
            return False
        encoding = self.encoding
        if encoding == "intset":
            if lp_int_value(member) is not None:
                members.add(member)
                self._order = None
                if len(members) > min(limits.intset_entries, INTSET_HARD_LIMIT):
                    self._to_hashtable()
                self._scan_added(member)
                return True
            max_len = 0
            if members:
                values = [int(m) for m in members]
                max_len = max(_digits10(max(values)), _digits10(min(values)))
            if (
                len(members) < limits.listpack_entries
                and len(member) <= limits.listpack_value
                and max_len <= limits.listpack_value
            ):
                self._to_listpack()
            else:
                self._to_hashtable()
            encoding = self.encoding
        if encoding == "listpack":
            order = self.ordered()
            if len(order) < limits.listpack_entries and len(member) <= limits.listpack_value:
                order.append(member)
            else:
                self._to_hashtable()
        members.add(member)
        self._scan_added(member)
        return True

    def remove(self, member: bytes) -> bool:
        members = self.members
        if member not in members:
            return False
        if self._order is not None and self.encoding == "listpack":
            self.ordered().remove(member)
        members.discard(member)
        if self.encoding == "intset":
            self._order = None
        if self._scan is not None:
            self._scan.discarded(member)
        return True

    def _scan_added(self, member: bytes) -> None:
        if self._scan is not None:
            self._scan.added(member)

    # -- iteration and randomness -------------------------------------------------------

    def scan_order(self) -> ScanOrder:
        scan = self._scan
        if scan is None or scan.order.source is not self.members:
            scan = self._scan = MemberScan(self.members)
        return scan.order

    def random_member(self, rng: random.Random) -> bytes:
        """A uniformly random member of a non-empty set."""
        if self.encoding == "listpack":
            order = self.ordered()
            return order[rng.randrange(len(order))]
        member = self.scan_order().random_key(rng)
        assert member is not None
        return member

    def sample_unique(self, count: int, rng: random.Random) -> list[bytes]:
        """SRANDMEMBER with a positive count smaller than the set."""
        if self.encoding == "listpack":
            order = self.ordered()
            picks = sorted(rng.sample(range(len(order)), count))
            return [order[i] for i in picks]
        if count * SRANDMEMBER_SUB_STRATEGY_MUL > len(self.members):
            pool = list(self.members)  # the sample drawn in one pass, as SPOP's
            sample_prefix(pool, count, rng.getrandbits(64))
            del pool[count:]
            return pool
        chosen: dict[bytes, None] = {}
        while len(chosen) < count:
            chosen[self.random_member(rng)] = None
        return list(chosen)

    def drawer(self, count: int, rng: random.Random) -> Callable[[int], list[bytes]] | None:
        """SRANDMEMBER's ``count`` picks with repetitions, in batches, when so many are worth a list
        of the members: ``n -> n`` uniform picks from one list made now (``bigops.draw_with_repeats``);
        None when one ``random_member`` at a time costs less."""
        if count * 16 < len(self.members):
            return None
        pool = self.ordered()
        return lambda n: draw_with_repeats(pool, n, rng.getrandbits(64))

    def pop_random(self, rng: random.Random) -> bytes:
        member = self.random_member(rng)
        self.remove(member)
        return member

    def pop_many(self, count: int, limits: SetLimits, rng: random.Random) -> list[bytes]:
        """SPOP with ``0 < count < len``: the popped members, in reply order.

        Follows ``spopWithCountCommand``'s strategies, including the one that
        rebuilds the survivors as a fresh (possibly smaller-encoded) set.  An intset or
        hashtable draws its sample in one pass (``bigops.sample_prefix`` over a list of the
        members) instead of a random pick and a removal per member.
        """
        size = len(self.members)
        remaining = size - count
        if remaining * SPOP_MOVE_STRATEGY_MUL > count:
            if self.encoding == "listpack":
                order = self.ordered()
                picks = set(rng.sample(range(size), count))
                popped = [m for i, m in enumerate(order) if i in picks]
                self._order = [m for i, m in enumerate(order) if i not in picks]
                self.members.difference_update(popped)
                if self._scan is not None:
                    for member in popped:
                        self._scan.discarded(member)
                return popped
            pool = list(self.members)
            sample_prefix(pool, count, rng.getrandbits(64))
            popped = pool[:count]
            self._remove_many(popped, pool[count:])
            return popped
        if self.encoding == "listpack":
            order = self.ordered()
            keep_at = set(rng.sample(range(size), remaining))
            kept = [m for i, m in enumerate(order) if i in keep_at]
            popped = [m for i, m in enumerate(order) if i not in keep_at]
            fresh = SetValue((), "listpack")
        else:
            pool = list(self.members)
            sample_prefix(pool, remaining, rng.getrandbits(64))
            kept, popped = pool[:remaining], pool[remaining:]
            fresh = SetValue((), "intset" if self.encoding == "intset" else "listpack")
        for pos, member in enumerate(kept):
            if fresh.encoding == "hashtable":  # no conversion left to happen: the rest in one step
                fresh.members.update(kept[pos:])
                break
            fresh.add(member, limits)
        self.members = fresh.members
        self.encoding = fresh.encoding
        self._order = fresh._order
        self._scan = None
        return popped

    def _remove_many(self, doomed: list[bytes], kept: list[bytes]) -> None:
        """Remove ``doomed`` from an intset or hashtable whose other members are ``kept``: by
        deleting them, or, when fewer stay, by keeping those in a new set that an SSCAN in
        progress reads from then on."""
        if len(doomed) <= len(kept):
            self.members.difference_update(doomed)
        else:
            self.members = set(kept)
        if self.encoding == "intset":
            self._order = None
        scan = self._scan
        if scan is not None:
            scan.order.source = self.members
            scan.discarded_many(doomed)

    def memory_usage(self, samples: int = 5) -> int:
        """``objectComputeSize`` for a set, without the 16-byte object header (the caller
        adds it with the key and its dict entry)."""
        packed = self._members
        if type(packed) is not set:
            return jemalloc_size(len(packed))  # the intset's or listpack's bytes, as Redis holds them
        n = len(self.members)
        if self.encoding == "intset":
            if not n:
                return jemalloc_size(8)
            values = [int(m) for m in self.members]
            return jemalloc_size(8 + n * _intset_width(min(values), max(values)))
        if self.encoding == "listpack":
            return jemalloc_size(lp_bytes_of(self.ordered()))
        buckets = 4
        while buckets < n:
            buckets <<= 1
        size = 56 + 8 * buckets
        if n:
            sampled = []
            for member in self.members:
                sampled.append(24 + sds_alloc_size(len(member)))
                if samples and len(sampled) >= samples:
                    break
            size += int(sum(sampled) / len(sampled) * n)
        return size
