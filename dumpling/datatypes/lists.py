"""List values: a deque gives O(1) push/pop at both ends and cheap indexing near them."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class ListValue:
    TYPE = b"list"
    __slots__ = ("items", "encoding")

    def __init__(self, items: Iterable[bytes] = (), encoding: str = "listpack") -> None:
        self.items: deque[bytes] = deque(items)
        self.encoding = encoding

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def copy(self) -> ListValue:
        return ListValue(self.items, self.encoding)
