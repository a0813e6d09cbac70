"""A sorted set's order index: ``ScoreIndex``, unboxed in C when ``dumpling._zsetindex`` is built.

The index keeps a zset's ``(score, member)`` entries in Redis's skiplist order (the score, then
the member's bytes) for ranks and ranges; the zset's ``scores`` dict answers lookups by member.
The C ``ScoreIndex`` stores each entry as a double and a member reference in chunks of sorted
arrays (16 bytes an entry, where a tuple in a ``SortedList`` costs ~74) and makes a tuple only
when one is read.  ``PyScoreIndex`` is the reference with the same interface: a ``SortedList``
of tuples with the extra methods (``from_sorted``, ``cut``).  Which one ``ScoreIndex`` names
follows ``dumpling.accel`` (``DUMPLING_PURE=1``: the reference); tests run random operation
sequences on both.

The interface (what ``datatypes/zsets.py``, ``commands/geo.py`` and the payload codec use):
``add``/``remove``/``discard``/``update`` of ``(score, member)``, ``bisect_left``/``bisect_right``
of a key whose member may be ``zsets.TOP`` (after every member), ``index[i]`` and slices (tuples),
``del index[a:b]``, ``pop``, ``len``, ``in``, iteration both ways, ``islice``, ``irange``,
``copy``, ``from_sorted(items)`` (items already in order, laid out without comparisons),
``cut(lo, hi)`` (remove positions ``[lo, hi)``; their items as a list of chunks in order), and
for spans of positions ``[lo, hi)`` read or dropped without a tuple per item: ``members(lo, hi,
reverse)``, ``flat_pairs(lo, hi, reverse)`` (member, score text, ...: ``bigops.flat_pairs``;
None when the C index has no ``_fpconv``) and ``drop(lo, hi)`` (remove; the members in order).
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Any

from sortedcontainers import SortedList

from dumpling import accel
from dumpling.bigops import flat_pairs


class PyScoreIndex(SortedList):  # type: ignore[misc]
    """The reference ``ScoreIndex``: a ``SortedList`` of ``(score, member)`` tuples."""

    @classmethod
    def from_sorted(cls, items: list[tuple[float, bytes]]) -> PyScoreIndex:
        """A ``PyScoreIndex`` of ``items``, which are already in order: laid out in sublists of
        the list's load as its constructor would after sorting, without the sort's comparisons
        of (score, member) tuples.  (Relies on sortedcontainers 2.x's layout: ``_lists``,
        ``_maxes``, ``_len``, the positional ``_index`` rebuilt on first use; any other layout
        takes the constructor.)"""
        out = cls()
        lists, maxes = getattr(out, "_lists", None), getattr(out, "_maxes", None)
        load = getattr(out, "_load", 0)
        if type(lists) is not list or type(maxes) is not list or type(load) is not int or load <= 0:
            return cls(items)
        n = len(items)
        if n <= load:  # one sublist (every small zset): no generators to set up
            if n:
                lists.append(items[:])
                maxes.append(items[-1])
        else:
            lists.extend(items[pos:pos + load] for pos in range(0, n, load))
            maxes.extend(sublist[-1] for sublist in lists)
        out._len = n
        return out

    def cut(self, lo: int, hi: int) -> list[list[tuple[float, bytes]]]:
        """Remove positions ``[lo, hi)`` (0 <= lo <= hi <= len); their items as chunks in order
        (whole sublists where the span covers them, nothing re-sorted)."""
        self._span("cut", lo, hi)
        if hi == lo:
            return []
        if hi - lo <= 32 or (chunks := cut_sublists(self, lo, hi)) is None:
            chunks = [list(self.islice(lo, hi))]
            del self[lo:hi]
        return chunks


    def _span(self, name: str, lo: int, hi: int) -> None:
        """The span readers take ``0 <= lo <= hi <= len`` and refuse any other, as the C ones do."""
        if not 0 <= lo <= hi <= self._len:
            raise IndexError(f"{name}(lo, hi): 0 <= lo <= hi <= len")

    def members(self, lo: int, hi: int, reverse: bool = False) -> list[bytes]:
        self._span("members", lo, hi)
        return list(map(itemgetter(1), self.islice(lo, hi, reverse=reverse)))

    def flat_pairs(self, lo: int, hi: int, reverse: bool = False) -> list[Any]:
        self._span("flat_pairs", lo, hi)
        return flat_pairs(list(self.islice(lo, hi, reverse=reverse)))

    def drop(self, lo: int, hi: int) -> list[bytes]:
        self._span("drop", lo, hi)
        return [member for chunk in self.cut(lo, hi) for _, member in chunk]


def cut_sublists(index: SortedList, lo: int, hi: int) -> list[list[Any]] | None:
    """Remove positions ``[lo, hi)`` (0 <= lo < hi <= len) of ``index`` a sublist at a time: the
    sublists wholly inside go as they are, the two at the edges are cut, the maxes follow and
    the positional index is rebuilt on its next use.  Returns the removed items as chunks in
    order; nothing is compared or re-sorted.  None if ``index`` is not laid out as
    sortedcontainers 2.x lays it out (``_lists``, ``_maxes``, ``_index``, ``_len``, ``_load``):
    the caller deletes the slice the ordinary way."""
    lists, maxes, positional = getattr(index, "_lists", None), getattr(index, "_maxes", None), getattr(index, "_index", None)
    if type(lists) is not list or type(maxes) is not list or type(positional) is not list \
            or type(getattr(index, "_len", None)) is not int or type(getattr(index, "_load", None)) is not int:
        return None
    i = before = 0  # the sublist holding position lo, and how many items come before it
    while before + len(lists[i]) <= lo:
        before += len(lists[i])
        i += 1
    j, before_j = i, before  # the sublist holding position hi - 1
    while before_j + len(lists[j]) < hi:
        before_j += len(lists[j])
        j += 1
    start, stop = lo - before, hi - before_j  # lists[i][start:] ... lists[j][:stop]
    first, last = lists[i], lists[j]
    if i == j:
        chunks = [first[start:stop]]
        del first[start:stop]
    else:
        chunks = [first[start:], *lists[i + 1:j], last[:stop]]
        del first[start:], last[:stop]
        del lists[i + 1:j], maxes[i + 1:j]
        j = i + 1
    # The cut sublists and their neighbours laid out again: every sublist but the last keeps at
    # least half the load, as SortedList requires (a few thousand items at most).
    load = index._load
    around = slice(max(0, i - 1), min(len(lists), j + 2))
    ends_list = around.stop == len(lists)
    items = list(chain.from_iterable(lists[around]))
    parts = [items[pos:pos + load] for pos in range(0, len(items), load)]
    if len(parts) > 1 and len(parts[-1]) < load >> 1 and not ends_list:
        parts[-2].extend(parts.pop())
    lists[around] = parts
    maxes[around] = [part[-1] for part in parts]
    index._len -= hi - lo
    del positional[:]
    return chunks


_native: Any = None
if not accel.PURE:
    try:
        from dumpling._zsetindex import ScoreIndex as _native
    except ImportError:
        _native = None

ScoreIndex: Any = PyScoreIndex if _native is None else _native
