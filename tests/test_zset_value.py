"""``ZSetValue``'s span removal without a server: a big span is cut out of the ordered items
(``ScoreIndex.cut``; the reference lays the rest out as a ``SortedList`` directly) and ordered
items are laid out at once (``from_sorted``, both index classes); what stays must be the same
list, with the same invariants, as deleting item by item leaves.  The scores of a
big span go by rebuilding the dict from what stays (``_keep_scores_outside``): the same dict,
and ZSCAN's order sees the new one."""

from __future__ import annotations

import pytest
from sortedcontainers import SortedList

from dumpling.datatypes import scoreindex
from dumpling.datatypes.scoreindex import PyScoreIndex
from dumpling.datatypes.zsets import ZSetValue
from dumpling.scan import ScanOrder

INDEX_CLASSES = [PyScoreIndex] + ([scoreindex._native] if scoreindex._native is not None else [])


def _zset(n: int) -> ZSetValue:
    return ZSetValue.from_pairs(((b"m:%d" % i, float((i * 7919) % n // 3)) for i in range(n)), "skiplist")


@pytest.mark.parametrize(("lo", "hi"), [(0, 2500), (1000, 4999), (0, 5000), (2500, 5000), (1, 4999), (3, 70)])
def test_remove_span_keeps_order_and_invariants(lo: int, hi: int) -> None:
    z = _zset(5000)
    items = list(z.index)
    assert z.remove_span(lo, hi) == hi - lo
    expected = items[:lo] + items[hi:]
    assert list(z.index) == expected
    z.index._check()  # the index's own invariants: sublists/chunks, maxes, length, positions
    assert z.scores == {m: s for s, m in expected}
    if expected:  # the positional index answers after the cut
        assert z.rank(expected[-1][1]) == len(expected) - 1
        assert z.at(len(expected) // 2) == expected[len(expected) // 2]


@pytest.mark.parametrize("from_max", [False, True])
def test_pop_many_of_a_big_span(from_max: bool) -> None:
    z = _zset(3000)
    items = list(z.index)
    popped = z.pop_many(2000, from_max)
    assert popped == (items[-2000:][::-1] if from_max else items[:2000])
    assert list(z.index) == (items[:1000] if from_max else items[2000:])
    z.index._check()
    z.insert(b"new", -1.0)  # still a working index
    assert z.index[0] == (-1.0, b"new")


@pytest.mark.parametrize("cls", INDEX_CLASSES)
@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2500])
def test_from_sorted_is_a_sorted_list(n: int, cls: type) -> None:
    items = [(float(i // 2), b"%06d" % i) for i in range(n)]
    got = cls.from_sorted(items)
    got._check()
    assert list(got) == items == list(SortedList(items))
    got.add((0.5, b"x"))
    got._check()


@pytest.mark.parametrize(("lo", "hi"), [(0, 100), (30, 170), (100, 200), (99, 101 + 64)])
def test_big_span_scores_with_signed_zeros_and_ties(lo: int, hi: int) -> None:
    """-0 and 0 are one score to the order (members decide), as in Redis's skiplist."""
    pairs = [(b"m:%03d" % i, (-0.0, 0.0, 1.0, -1.0)[i % 4]) for i in range(200)]
    z = ZSetValue.from_pairs(pairs, "skiplist")
    items = list(z.index)
    z.remove_span(lo, hi)
    expected = items[:lo] + items[hi:]
    assert list(z.index) == expected
    assert z.scores == {m: s for s, m in expected}
    signs = {m: str(s) for m, s in z.scores.items()}  # the kept scores themselves, -0.0 included
    assert signs == {m: str(s) for s, m in expected}


def test_big_span_keeps_scan_order_on_the_new_scores() -> None:
    z = _zset(3000)
    order = z.scan_order()
    cursor, first = order.scan(0, 100)
    z.pop_many(2000, False)
    assert z.scan_order() is order and order.source is z.scores
    rest = set(first) & set(z.scores)
    while cursor:
        cursor, found = order.scan(cursor, 100)
        assert set(found) <= set(z.scores)
        rest.update(found)
    assert rest == set(z.scores)
    assert all(order.random_key() in z.scores for _ in range(50))
    assert isinstance(order, ScanOrder)


def test_from_pairs_is_sortedlists_order() -> None:
    """``from_pairs`` lays sorted items out itself: the same list as SortedList's constructor
    (ties broken by member, -0.0 stored as 0.0 in a listpack, infinities), duplicates keep the last."""
    import random

    rng = random.Random(5)
    for _ in range(300):
        pairs = [(bytes([rng.randrange(5)]) * rng.randrange(1, 3),
                  rng.choice([0.0, -0.0, 1.0, float("inf"), float("-inf"), rng.random(), 2.0]))
                 for _ in range(rng.randrange(1, 40))]
        for encoding in ("listpack", "skiplist"):
            z = ZSetValue.from_pairs(pairs, encoding)
            scores = dict(pairs)
            if encoding == "listpack":
                scores = {m: 0.0 if s == 0 else s for m, s in scores.items()}
            assert list(z.index) == list(SortedList((s, m) for m, s in scores.items()))
            assert [repr(s) for s in z.scores.values()] == [repr(s) for s in scores.values()]
            z.index._check()
            assert z.encoding == encoding and z._scan is None


@pytest.mark.parametrize("cls", INDEX_CLASSES)
@pytest.mark.parametrize("n", [0, 1, 10, 511, 512, 513, 999, 1000, 1001, 2500])
def test_from_sorted_at_the_load_edges(n: int, cls: type) -> None:
    items = [(float(i // 3), b"m:%05d" % i) for i in range(n)]
    laid = cls.from_sorted(items)
    laid._check()
    assert list(laid) == list(SortedList(items))
    if n:
        assert laid[n - 1] == items[-1] and laid.bisect_left(items[n // 2]) == n // 2
        items.pop()  # the caller's list is not the sorted list's
        assert len(laid) == n
