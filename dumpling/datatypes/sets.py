"""Set values: a Python set plus the Redis encoding (intset / listpack / hashtable)."""

from __future__ import annotations

from collections.abc import Iterable


class SetValue:
    TYPE = b"set"
    __slots__ = ("members", "encoding")

    def __init__(self, members: Iterable[bytes] = (), encoding: str = "hashtable") -> None:
        self.members: set[bytes] = set(members)
        self.encoding = encoding

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def copy(self) -> SetValue:
        return SetValue(self.members, self.encoding)
