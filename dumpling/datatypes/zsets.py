"""Sorted-set values: member -> score plus an ordered index on (score, member)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sortedcontainers import SortedList


class ZSetValue:
    TYPE = b"zset"
    __slots__ = ("scores", "index", "encoding")

    def __init__(self, encoding: str = "listpack") -> None:
        self.scores: dict[bytes, float] = {}
        self.index: SortedList = SortedList()  # of (score, member)
        self.encoding = encoding

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bytes, float]], encoding: str = "listpack") -> ZSetValue:
        z = cls(encoding)
        z.scores = dict(pairs)
        z.index = SortedList((s, m) for m, s in z.scores.items())
        return z

    def __len__(self) -> int:
        return len(self.scores)

    def items_by_score(self) -> Iterator[tuple[bytes, float]]:
        for score, member in self.index:
            yield member, score

    def copy(self) -> ZSetValue:
        z = ZSetValue(self.encoding)
        z.scores = dict(self.scores)
        z.index = SortedList(self.index)
        return z
