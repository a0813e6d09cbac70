"""LTRIM drops big spans a quicklist node at a time (``ListValue._drop``): the elements left
and the node shapes (what DEBUG OBJECT/LISTPACK and DUMP see) must be exactly those that
popping the same elements one by one gives.  Redis's own LTRIM is compared in
tests/test_commands_lists.py; this pins the shortcut to the element-by-element reference.  LREM's one-pass node update
likewise against deleting each match."""

from __future__ import annotations

import random

import pytest

from dumpling.datatypes.lists import ListValue, lp_entry_size
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


def _delete_one_by_one(nodes: list[list[int]], positions: list[int], entry: int) -> list[list[int]]:
    """quicklistDelIndex for each position, highest first: the node holding it loses one
    element and its entry's bytes, or goes when it held only that one (or is plain)."""
    nodes = [list(node) for node in nodes]
    for index in reversed(positions):
        for pos, node in enumerate(nodes):
            if index < node[0]:
                if node[2] or node[0] == 1:
                    del nodes[pos]
                else:
                    node[0] -= 1
                    node[1] -= entry
                break
            index -= node[0]
    return nodes


@pytest.mark.parametrize("count", [0, 3, -3, 1000, -1])
@pytest.mark.parametrize("fill", [-2, 4])
def test_lrem_nodes_are_deletions_one_by_one(count: int, fill: int) -> None:
    """LREM updates the node shapes in one pass: the same shapes as deleting each match."""
    rng = random.Random(count * 7 + fill)
    items = [rng.choice([b"x", b"y" * 70, b"12", b"z" * 9000]) if rng.random() < 0.1 else b"e%d" % i
             for i in range(3000)]
    for element in (b"x", b"12", b"z" * 9000):
        value = _list(items, fill)
        before = [list(node) for node in value._nodes]
        elements = list(value.items)
        matches = [i for i, e in enumerate(elements) if e == element]
        chosen = matches if count == 0 else matches[:count] if count > 0 else matches[count:]
        removed = value.remove(count, element, fill)
        assert removed == len(chosen)
        assert list(value.items) == [e for i, e in enumerate(elements) if i not in set(chosen)]
        assert value._nodes == _delete_one_by_one(before, chosen, lp_entry_size(element))
