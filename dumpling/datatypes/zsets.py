"""Sorted-set values: member -> score plus an ordered index on (score, member).

``scores`` answers ZSCORE in O(1); ``index`` is a ``ScoreIndex`` (``datatypes/scoreindex.py``:
unboxed (double, member) entries in C, or the reference ``SortedList`` of ``(score, member)``
tuples) in the order Redis's skiplist keeps (score, then member bytes as memcmp), giving
O(log n) insert, delete, rank and range lookups; reading it gives ``(score, member)`` tuples.  ``encoding`` is the name
Redis would report (``listpack`` or ``skiplist``); the mutators here apply Redis's
conversion rules when given the ``zset-max-listpack-*`` limits, and the payload codec
reads it to pick the RDB type.  A listpack stores an integral score as an integer,
so a ``-0`` score becomes ``0`` there (as in Redis); the skiplist keeps ``-0``.

A restored listpack zset may start *packed* (``ZSetValue.packed``): the payload's listpack bytes
are kept in the ``_scores`` slot (the payload's footer version in ``_index``) and the dict and
index are built by the first access to ``scores`` or ``index`` (``unpack_listpack``, which the
payload codec installs).  Until then ``len()``, ``OBJECT ENCODING`` and ``copy()`` answer from
the bytes, and ``packed_listpack(version)`` hands them to DUMP when the target writes scores as
the payload did (``%.17g`` up to RDB 10, Redis 7.2+'s shortest text from 11).  C code that reads
those slots at their offsets must treat a ``_scores`` that is not a dict as "not built".

Owns the data structure only: no argument parsing, no replies.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from operator import itemgetter
from typing import Any

from dumpling.bigops import drop_inside, keep_outside
from dumpling.collector import untrack
from dumpling.datatypes.lists import lp_entry_size
from dumpling.datatypes.scoreindex import ScoreIndex
from dumpling.datatypes.sizes import listpack_int_entry_size, listpack_str_entry_size
from dumpling.fpconv import d2string  # the text a listpack holds for a non-integral score (7.2+)
from dumpling.lazyfree import release
from dumpling.scan import ScanOrder

HALF_LLONG = float((1 << 63) - 1 >> 1)  # (double)(LLONG_MAX/2): the listpack integer limit


class _Top:
    """Compares greater than any member: ``(score, TOP)`` sorts after every ``(score, m)``."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __le__(self, other: object) -> bool:
        return other is self

    def __ge__(self, other: object) -> bool:
        return True


TOP: Any = _Top()


def listpack_score_is_integer(score: float) -> bool:
    """Redis's ``double2ll``: a listpack keeps this score as an integer entry."""
    return -HALF_LLONG <= score <= HALF_LLONG and score == int(score)


def alloc_size(n: int) -> int:
    """jemalloc's size class for an allocation of ``n`` bytes (what ``zmalloc_size`` reports)."""
    if n <= 8:
        return 8
    if n <= 128:
        return (n + 15) & ~15
    step = 1 << (n.bit_length() - 3)
    return (n + step - 1) // step * step






def _no_listpack_reader(blob: bytes) -> ZSetValue:
    raise RuntimeError("a packed zset needs the payload codec's listpack reader")


# A packed zset's listpack -> the zset built (the payload reader's, without deep checks; the
# payload codec sets it when it is imported, before it can make a packed zset).
unpack_listpack: Callable[[bytes], ZSetValue] = _no_listpack_reader


class ZSetValue:
    TYPE = b"zset"
    __slots__ = ("_scores", "_index", "encoding", "_scan")

    def __init__(self, encoding: str = "listpack") -> None:
        # member -> score, or while the zset is packed the restored listpack (bytes)
        self._scores: dict[bytes, float] | bytes = {}
        # of (score, member), or while packed the payload's footer version (int)
        self._index: Any = ScoreIndex()
        self.encoding = encoding
        self._scan: ScanOrder | None = None  # ZSCAN cursor order, built on first use

    @classmethod
    def packed(cls, listpack: bytes, version: int) -> ZSetValue:
        """A listpack-encoded zset whose entries stay in ``listpack`` (a checked zset listpack:
        distinct members, no NaN score, its header's count exact) until first used; ``version``
        is the footer version of the payload it came in."""
        z = cls.__new__(cls)
        z._scores = listpack
        z._index = version
        z.encoding = "listpack"
        z._scan = None
        return z

    def _unpack(self) -> None:
        built = unpack_listpack(self._scores)  # type: ignore[arg-type]
        index = built._index
        untrack(index)  # as collector.stored would have, had it been built when stored
        self._scores, self._index = built._scores, index

    @property
    def scores(self) -> dict[bytes, float]:
        scores = self._scores
        if type(scores) is not dict:
            self._unpack()
            scores = self._scores
        return scores  # type: ignore[return-value]

    @scores.setter
    def scores(self, scores: dict[bytes, float]) -> None:
        self._scores = scores

    @property
    def index(self) -> Any:
        index = self._index
        if type(index) is int:
            self._unpack()
            index = self._index
        return index

    @index.setter
    def index(self, index: Any) -> None:
        self._index = index

    def packed_listpack(self, version: int) -> bytes | None:
        """The restored listpack while the zset was not used since RESTORE, when a DUMP for
        ``version`` writes its scores' texts as the payload did; else None."""
        scores, since = self._scores, self._index
        if type(scores) is dict or self.encoding != "listpack" or (version >= 11) != (since >= 11):  # type: ignore[operator]
            return None
        return scores  # type: ignore[return-value]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bytes, float]], encoding: str = "listpack") -> ZSetValue:
        z = cls.__new__(cls)  # not __init__: its empty index would be thrown away
        z.encoding = encoding
        z._scan = None
        scores = z.scores = dict(pairs)
        if encoding == "listpack" and 0 in scores.values():
            for member, score in scores.items():
                if score == 0:
                    scores[member] = 0.0
        # sorted once, then laid out (members are unique: no ties); a zset from a listpack
        # (already in order) costs one pass (RESTORE of small keys)
        z.index = ScoreIndex(zip(scores.values(), scores, strict=True))
        return z

    @classmethod
    def create(cls, size_hint: int, len_hint: int, max_entries: int, max_value: int) -> ZSetValue:
        """``zsetTypeCreate``: listpack unless the hints already exceed the limits."""
        small = size_hint <= max_entries and len_hint <= max_value
        return cls("listpack" if small else "skiplist")

    def __len__(self) -> int:
        scores = self._scores
        if type(scores) is dict:
            return len(scores)
        return (scores[4] | scores[5] << 8) >> 1  # type: ignore[index]  # the listpack header's count

    def items_by_score(self) -> Iterator[tuple[bytes, float]]:
        for score, member in self.index:
            yield member, score

    def copy(self) -> ZSetValue:
        if type(self._scores) is not dict:
            return ZSetValue.packed(self._scores, self._index)  # type: ignore[arg-type]  # bytes: shared
        z = ZSetValue(self.encoding)
        z.scores = dict(self.scores)
        z.index = self.index.copy()
        return z

    def memory_usage(self) -> int:
        """Bytes Redis would use for the value (object header excluded)."""
        packed = self._scores
        if type(packed) is not dict and self.encoding == "listpack" and self._index >= 11:  # type: ignore[operator]
            return alloc_size(len(packed))  # its score texts are the ones listpack_bytes counts
        if self.encoding == "listpack":
            return alloc_size(self.listpack_bytes())
        n = len(self.scores)
        # dict (entry + bucket) + skiplist node (~1.33 levels) + member sds, per element
        per = sum(len(m) for m in self.scores) + n * (24 + 8 + 48 + 4)
        return 16 + 32 + 8 * max(4, 1 << max(n - 1, 1).bit_length()) + per

    def listpack_bytes(self) -> int:
        total = 7
        for score, member in self.index:
            total += lp_entry_size(member)  # an integer-like member is an integer entry
            if listpack_score_is_integer(score):
                total += listpack_int_entry_size(int(score))
            else:
                total += listpack_str_entry_size(len(d2string(score)))
        return total

    # -- lookups --------------------------------------------------------------------

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return self.index.bisect_left((score, member))

    def at(self, rank: int) -> tuple[float, bytes]:
        return self.index[rank]

    def range_by_rank(self, start: int, stop: int, reverse: bool = False) -> Iterator[tuple[float, bytes]]:
        """Positions ``start``..``stop`` inclusive (already clamped), ascending or descending."""
        if reverse:
            n = len(self.index)
            return self.index.islice(n - 1 - stop, n - start, reverse=True)
        return self.index.islice(start, stop + 1)

    def score_span(self, low: float, low_ex: bool, high: float, high_ex: bool) -> tuple[int, int]:
        """Half-open position range ``[lo, hi)`` of the elements inside the score interval."""
        index = self.index
        lo = index.bisect_right((low, TOP)) if low_ex else index.bisect_left((low, b""))
        hi = index.bisect_left((high, b"")) if high_ex else index.bisect_right((high, TOP))
        return lo, max(lo, hi)

    # Lex ranges.  Redis walks a listpack linearly (so with mixed scores the first
    # match in score order wins) and descends the skiplist as a binary search; both
    # agree whenever all scores are equal, the only case Redis defines, and that case
    # is answered by bisection.  With mixed scores the skiplist is walked from the head
    # (Redis's descent may jump further, depending on its random node levels).

    def _single_score(self) -> bool:
        index = self.index
        return not index or index[0][0] == index[-1][0]

    def lex_first(self, low: Any, low_ex: bool) -> int:
        """Position of the first element whose member is >= low (> if exclusive)."""
        n = len(self.index)
        if self.encoding == "listpack" or not self._single_score():
            for pos, (_, member) in enumerate(self.index):
                if lex_gte_min(member, low, low_ex):
                    return pos
            return n
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if lex_gte_min(self.index[mid][1], low, low_ex):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def lex_last(self, high: Any, high_ex: bool) -> int:
        """Position of the last element whose member is <= high (< if exclusive), or -1."""
        n = len(self.index)
        if self.encoding == "listpack":
            for pos in range(n - 1, -1, -1):
                if lex_lte_max(self.index[pos][1], high, high_ex):
                    return pos
            return -1
        if not self._single_score():
            # the skiplist walks forward from the head while members stay <= high
            pos = -1
            while pos + 1 < n and lex_lte_max(self.index[pos + 1][1], high, high_ex):
                pos += 1
            return pos
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if lex_lte_max(self.index[mid][1], high, high_ex):
                lo = mid + 1
            else:
                hi = mid
        return lo - 1

    # -- mutation ---------------------------------------------------------------------

    # (The mutators ZADD/ZREM run read the slots themselves once the zset is built: the
    # properties cost a Python call each.)

    def insert(self, member: bytes, score: float) -> None:
        """Add a member that is not present (encoding already decided by the caller)."""
        if type(self._scores) is not dict:
            self._unpack()
        if score == 0 and self.encoding == "listpack":
            score = 0.0
        self._scores[member] = score  # type: ignore[index]
        self._index.add((score, member))  # type: ignore[union-attr]
        if self._scan is not None:
            self._scan.added(member)

    def update(self, member: bytes, old: float, new: float) -> None:
        if type(self._scores) is not dict:
            self._unpack()
        if new == 0 and self.encoding == "listpack":
            new = 0.0
        index = self._index
        index.remove((old, member))  # type: ignore[union-attr]
        index.add((new, member))  # type: ignore[union-attr]
        self._scores[member] = new  # type: ignore[index]

    def remove(self, member: bytes) -> bool:
        if type(self._scores) is not dict:
            self._unpack()
        score = self._scores.pop(member, None)  # type: ignore[union-attr]
        if score is None:
            return False
        self._index.remove((score, member))  # type: ignore[union-attr]
        return True

    def pop_at(self, pos: int) -> tuple[float, bytes]:
        score, member = self.index.pop(pos)
        del self.scores[member]
        return score, member

    def pop_many(self, count: int, from_max: bool) -> list[tuple[float, bytes]]:
        """The ``count`` lowest (highest if ``from_max``, highest first) items, removed."""
        chunks = self.pop_chunks(count, from_max)
        popped = chunks[0] if len(chunks) == 1 else list(chain.from_iterable(chunks))
        if from_max:
            popped.reverse()
        return popped

    def pop_chunks(self, count: int, from_max: bool) -> list[list[tuple[float, bytes]]]:
        """``pop_many``'s items as ``_cut`` gives them: chunks in ascending order (the pop's
        order is their reverse if ``from_max``), not joined into one list."""
        n = len(self.index)
        return self._cut(n - count, n) if from_max else self._cut(0, count)

    def remove_span(self, lo: int, hi: int) -> int:
        """Remove positions ``[lo, hi)``; returns how many were removed.  The index gives the
        members only (``drop``): no (score, member) item is made for them."""
        if hi <= lo:
            return 0
        index = self.index
        first, last = index[lo], index[hi - 1]
        members = index.drop(lo, hi)
        self._forget_scores(hi - lo, first, last, members)
        release(members)  # their last references: freed in slices
        return hi - lo

    def _cut(self, lo: int, hi: int) -> list[list[tuple[float, bytes]]]:
        """Remove positions ``[lo, hi)``; returns their items in order, as consecutive chunks
        (each a list of its own, which nothing else refers to)."""
        if hi <= lo:
            return []
        chunks = self.index.cut(lo, hi)
        self._forget_scores(hi - lo, chunks[0][0], chunks[-1][-1], map(itemgetter(1), chain.from_iterable(chunks)))
        return chunks

    def _forget_scores(self, count: int, first: tuple[float, bytes], last: tuple[float, bytes],
                       members: Iterable[bytes]) -> None:
        """The index has just lost ``count`` items, ``first`` to ``last`` (``members``, in
        order): the scores dict loses them too."""
        scores = self.scores
        if not self.index:
            self.scores = {}
            if self._scan is not None:
                self._scan.source = self.scores
            release(scores)
        elif count > 64 and count * 2 > len(scores):  # most go: a new dict of the rest
            self._keep_scores_outside(first, last)
        elif count > 64 and count * 16 > len(scores):  # many: deleted in the dict's order
            drop_inside(scores, first, last)
        else:
            deque(map(scores.__delitem__, members), maxlen=0)  # a C loop

    def _keep_scores_outside(self, first: tuple[float, bytes], last: tuple[float, bytes]) -> None:
        """Drop from ``scores`` every member whose (score, member) lies in ``[first, last]``, by
        keeping the others in a new dict (``bigops.keep_outside``): for a span of more than half
        (the smaller table then replaces the big one, which goes to ``lazyfree``).  Deleting a
        big span member by member visits the dict in score order, a random walk over its table
        and the members' objects (a cache miss or more each: ~0.45 s for 500k of 1M); one pass
        in the dict's own order reads them in the order they were allocated, and a span of up
        to half is deleted in that order (``bigops.drop_inside``: no table built or freed)."""
        scores = self.scores
        kept = keep_outside(scores, first, last)
        self.scores = kept
        if self._scan is not None:
            self._scan.source = kept  # its order list keeps the dropped members as stale entries
        release(scores)

    def add_checked(self, member: bytes, score: float, max_entries: int, max_value: int) -> None:
        """Insert a new member, converting to skiplist first when Redis would."""
        if self.encoding == "listpack" and (len(self) + 1 > max_entries or len(member) > max_value):
            self.convert("skiplist")
        self.insert(member, score)

    def added_in_order(self, items: list[tuple[float, bytes]], descending: bool, max_entries: int,
                       max_value: int) -> ZSetValue:
        """An empty zset filled with ``items`` (members unique, ascending by (score, member), or
        descending if ``descending``) as ``add_checked`` of each in that order would leave it:
        a listpack converts at the first item past the limits, and the items added before that
        are listpack entries (a ``-0`` score becomes ``0``).  Laid out at once
        (``ScoreIndex.from_sorted``), not inserted one by one."""
        assert not self.scores
        n = len(items)
        if self.encoding == "listpack":
            convert_at = min(n, max(max_entries, 0))
            for pos in range(convert_at):
                if len(items[pos][1]) > max_value:
                    convert_at = pos
                    break
            head = [(0.0, member) if score == 0 else (score, member) for score, member in items[:convert_at]]
            items = head + items[convert_at:] if convert_at < n else head
            if convert_at < n:
                self.convert("skiplist")
        if descending:
            items = items[::-1]
        self.scores = {member: score for score, member in items}
        self.index = ScoreIndex.from_sorted(items)
        return self

    def maybe_grow(self, size_hint: int, max_entries: int) -> None:
        """``zsetTypeMaybeConvert``: a listpack about to receive too many elements."""
        if self.encoding == "listpack" and size_hint > max_entries:
            self.convert("skiplist")

    def convert(self, encoding: str) -> None:
        if encoding == self.encoding:
            return
        self.scores  # noqa: B018  # a packed zset is built first: only a listpack stays packed
        self.encoding = encoding
        self._scan = None
        if encoding == "listpack" and any(s == 0 for s in self.scores.values()):
            for member, score in list(self.scores.items()):
                if score == 0 and math.copysign(1.0, score) < 0:
                    self.update(member, score, 0.0)

    def shrink_if_small(self, max_entries: int, max_value: int) -> None:
        """``zsetConvertToListpackIfNeeded`` for Z*STORE results."""
        if self.encoding == "skiplist" and len(self.scores) <= max_entries:
            if all(len(m) <= max_value for m in self.scores):
                self.convert("listpack")

    # -- iteration for ZSCAN ------------------------------------------------------------

    def scan_order(self) -> ScanOrder:
        if self._scan is None:
            self._scan = ScanOrder(self.scores)
        return self._scan


def lex_gte_min(member: bytes, low: Any, exclusive: bool) -> bool:
    """``zslLexValueGteMin``; ``low`` is bytes or the ``MIN_LEX``/``MAX_LEX`` markers."""
    if low is MIN_LEX:
        return True
    if low is MAX_LEX:
        return False
    return member > low if exclusive else member >= low


def lex_lte_max(member: bytes, high: Any, exclusive: bool) -> bool:
    if high is MAX_LEX:
        return True
    if high is MIN_LEX:
        return False
    return member < high if exclusive else member <= high


MIN_LEX: Any = object()  # the "-" lex bound
MAX_LEX: Any = object()  # the "+" lex bound
