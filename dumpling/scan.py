"""Cursor iteration over a changing dict or set, with SCAN's guarantee.

Redis iterates its hash tables with a reverse-binary cursor so that every element
present for the whole iteration is returned at least once.  Python dicts cannot be
seeked, so ``ScanOrder`` keeps its own list of keys in insertion order (built lazily
on the first scan, then appended to on every insert).  Deleted keys stay in the list
as stale entries until the list is compacted; a compaction starts a new epoch and
records where the old positions landed, so an old cursor resumes at or before the
element it stopped at: nothing present throughout is skipped, some may repeat.

The cursor packs ``end << 35 | position << 6 | epoch``: where to resume, and where the
list ended when the iteration began (keys appended later need not be returned, and
bounding the walk there guarantees termination however fast keys are added).  0 means
start (and, returned, done).  Used by the expiry dicts (volatile eviction and active-expiry
sampling), by big collections (SSCAN, HSCAN, ZSCAN) and by the pure ``PyKeyTable``; the C
``KeyTable`` walks its own buckets instead (no list of its keys).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Hashable
from typing import Any

EPOCH_BITS = 6
EPOCHS = 1 << EPOCH_BITS
POS_BITS = 29
POS_MASK = (1 << POS_BITS) - 1
CHECKPOINT = 256  # one recorded new-position per this many old positions


class ScanOrder:
    __slots__ = ("source", "order", "epoch", "history", "cycle_cursor")

    def __init__(self, source: Collection[Any]) -> None:
        self.source = source
        self.order: list[Hashable] = list(source)
        self.epoch = 0
        # epoch -> checkpoints of the compaction that ended it (old pos // CHECKPOINT -> new pos)
        self.history: dict[int, list[int]] = {}
        self.cycle_cursor = 0  # where the active expire cycle left off

    def added(self, key: Hashable) -> None:
        """Record a key that was not in ``source`` before, whether or not it is there yet
        (``Database.set_expire`` records it first).  A compaction runs before the append: run
        after it, it would drop a key not yet in ``source`` as stale, and no scan (nor the
        active expiry cycle) would ever see that key."""
        if len(self.order) >= 2 * len(self.source) + 64:
            self.compact()
        self.order.append(key)

    def compact(self) -> None:
        source = self.source
        checkpoints: list[int] = []
        live: list[Hashable] = []
        seen: set[Hashable] = set()
        for pos, key in enumerate(self.order):
            if pos % CHECKPOINT == 0:
                checkpoints.append(len(live))
            if key in source and key not in seen:
                seen.add(key)
                live.append(key)
        checkpoints.append(len(live))
        self.history[self.epoch % EPOCHS] = checkpoints
        self.epoch += 1
        self.history.pop(self.epoch % EPOCHS, None)
        self.order = live

    def _positions(self, cursor: int) -> tuple[int, int]:
        """Map a cursor to (resume position, end bound) in the current order list."""
        epoch = cursor & (EPOCHS - 1)
        pos = (cursor >> EPOCH_BITS) & POS_MASK
        end = cursor >> (EPOCH_BITS + POS_BITS)
        current = self.epoch % EPOCHS
        # Walk the cursor forward through every compaction since it was issued:
        # the position rounds down (may repeat), the end rounds up (never skips).
        while epoch != current:
            checkpoints = self.history.get(epoch)
            if checkpoints is None:
                return 0, len(self.order)  # too old to map: restart (repeats, never skips)
            last = len(checkpoints) - 1
            pos = checkpoints[min(pos // CHECKPOINT, last)]
            end = checkpoints[min(-(-end // CHECKPOINT), last)]
            epoch = (epoch + 1) % EPOCHS
        return pos, min(end, len(self.order))

    def scan(
        self, cursor: int, count: int, accept: Callable[[Any], bool] | None = None
    ) -> tuple[int, list[Any]]:
        """Return ``(next_cursor, keys)``; visits at least ``count`` entries unless done."""
        if cursor:
            pos, end = self._positions(cursor)
        else:
            pos, end = 0, len(self.order)
        order, source = self.order, self.source
        out: list[Any] = []
        budget = count * 10  # like Redis: bounded work even when most entries are stale
        visited = 0
        while pos < end and visited < count and budget > 0:
            key = order[pos]
            pos += 1
            budget -= 1
            if key in source:
                visited += 1
                if accept is None or accept(key):
                    out.append(key)
        if pos >= end or end > POS_MASK:
            return 0, out
        return (end << (EPOCH_BITS + POS_BITS)) | (pos << EPOCH_BITS) | (self.epoch % EPOCHS), out

    def random_key(self, rng: random.Random = random._inst) -> Any | None:  # type: ignore[attr-defined]
        """A uniformly random live key (None if empty); O(1) expected."""
        source, order = self.source, self.order
        if not source:
            return None
        while True:
            if len(order) > 2 * len(source) + 64:
                self.compact()
                order = self.order
            key = order[rng.randrange(len(order))]
            if key in source:
                return key


class MemberScan:
    """A ``ScanOrder`` over a set's members or a table's keys that remembers removals until the
    next compaction, so a member removed and added again reuses its old slot instead
    of being listed twice (which would repeat it within one SSCAN/HSCAN reply and
    double its weight in random picks)."""

    __slots__ = ("order", "removed", "epoch")

    def __init__(self, source: set[bytes] | dict[bytes, bytes]) -> None:
        self.order = ScanOrder(source)
        self.removed: set[bytes] = set()
        self.epoch = self.order.epoch

    def _sync(self) -> None:
        if self.order.epoch != self.epoch:  # compacted: stale slots are gone
            self.removed.clear()
            self.epoch = self.order.epoch

    def added(self, member: bytes) -> None:
        self._sync()
        if member in self.removed:
            self.removed.discard(member)
        else:
            self.order.added(member)

    def discarded(self, member: bytes) -> None:
        self._sync()
        self.removed.add(member)

    def discarded_many(self, members: list[bytes]) -> None:
        self._sync()
        self.removed.update(members)
