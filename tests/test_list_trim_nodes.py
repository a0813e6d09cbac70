"""LTRIM drops big spans a quicklist node at a time (``ListValue._drop``): the elements left
and the node shapes (what DEBUG OBJECT/LISTPACK and DUMP see) must be exactly those that
popping the same elements one by one gives.  Redis's own LTRIM is compared in
tests/test_commands_lists.py; this pins the shortcut to the element-by-element reference."""

from __future__ import annotations

import random

import pytest

from dumpling.datatypes.lists import ListValue
from dumpling.numbers import index_span


def _list(items: list[bytes], fill: int) -> ListValue:
    value = ListValue([], "listpack")
    for start in range(0, len(items), 50):
        value.push(items[start:start + 50], False, fill)
    return value


@pytest.mark.parametrize("fill", [-2, -1, 4, 128, -5])
def test_trim_by_nodes_is_trim_by_pops(fill: int) -> None:
    rng = random.Random(fill)
    for _ in range(15):
        size = rng.randrange(300, 4000)
        items = [b"%c%d" % (rng.randrange(97, 123), i) * rng.choice([1, 5, 40, 70, 300, 2000]) for i in range(size)]
        start, end = rng.randrange(-size, size), rng.randrange(-size, size)
        fast, slow = _list(items, fill), _list(items, fill)
        fast.trim(start, end, fill)
        slow._written()
        slow._sync(fill)
        span = index_span(start, end, size)
        left, right = (size, 0) if span is None else (span[0], size - span[1] - 1)
        slow.pop(left, True, fill)
        slow.pop(right, False, fill)
        keep = items[left:size - right]
        assert list(fast.items) == list(slow.items) == keep
        assert fast._nodes == slow._nodes, (fill, start, end)
        assert fast.encoding == slow.encoding and len(fast) == len(slow)
