"""``ScoreIndex`` (``dumpling._zsetindex``, unboxed entries in C) against its reference
``PyScoreIndex`` (a ``SortedList`` of ``(score, member)`` tuples): random sequences of every
operation the zset code uses, on indexes big enough to split and merge many chunks; the same
items, positions, refusals and float signs after each step, and the C invariants checked."""

from __future__ import annotations

import math
import random
import sys
from typing import Any

import pytest

from dumpling.datatypes import scoreindex
from dumpling.datatypes.scoreindex import PyScoreIndex
from dumpling.datatypes.zsets import TOP
from tests.fuzzing import scaled

CIndex: Any = scoreindex._native
pytestmark = pytest.mark.skipif(CIndex is None, reason="needs dumpling._zsetindex")

SCORES = [0.0, -0.0, 1.0, -1.0, 2.5, math.inf, -math.inf, 1e300, 5e-324]


def _signed(items: Any) -> list[tuple[str, bytes]]:
    return [(repr(s), m) for s, m in items]


def _key(rng: random.Random) -> tuple[float, Any]:
    score = rng.choice(SCORES) if rng.random() < 0.5 else float(rng.randrange(-50, 50))
    member = rng.choice([b"", TOP, b"m:%03d" % rng.randrange(200), rng.choice(ODD_MEMBERS)])
    return score, member


# Members that differ only past a NUL byte, or where one is a prefix of another: the order is
# memcmp then length, as bytes compare.
ODD_MEMBERS = [b"", b"\x00", b"\x00\x00", b"a", b"a\x00", b"a\x00b", b"ab", b"\xff", b"\xff\x00", b"m:0"]


def _entry(rng: random.Random) -> tuple[float, bytes]:
    score = rng.choice(SCORES) if rng.random() < 0.3 else float(rng.randrange(-50, 50))
    if rng.random() < 0.05:
        return score, rng.choice(ODD_MEMBERS) + b"%d" % rng.randrange(3) * rng.randrange(2)
    return score, b"m:%05d" % rng.randrange(20000)


def _same(c: Any, py: Any) -> None:
    c._check()
    py._check()  # SortedList's own invariants: cut_sublists lays its sublists out by hand
    assert len(c) == len(py)
    assert _signed(c) == _signed(py)


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except (ValueError, IndexError, TypeError) as e:
        return ("error", type(e))


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    start = sorted({m: (s, m) for s, m in (_entry(rng) for _ in range(rng.choice([0, 10, 600, 3000])))}.values())
    c, py = CIndex.from_sorted(start), PyScoreIndex.from_sorted(start)
    _same(c, py)
    for _ in range(scaled(1500)):
        op = rng.randrange(18)
        n = len(py)
        if op <= 3:  # adds dominate: the index grows past many chunk splits
            for _ in range(rng.randrange(1, 60)):
                item = _entry(rng)
                if item not in py:
                    c.add(item)
                    py.add(item)
        elif op == 4 and n:
            item = py[rng.randrange(n)]
            if rng.random() < 0.5:
                c.remove(item)
                py.remove(item)
            else:
                c.discard(item)
                py.discard(item)
            missing = (1.5, b"absent")
            assert _outcome(c.remove, missing)[0] == _outcome(py.remove, missing)[0] == "error"
        elif op == 5:
            key = _key(rng)
            assert c.bisect_left(key) == py.bisect_left(key)
            assert c.bisect_right(key) == py.bisect_right(key)
            assert (key in c) == (key in py)
        elif op == 6 and n:
            pos = rng.randrange(-n, n)
            assert _signed([c[pos]]) == _signed([py[pos]])
            assert _outcome(c.__getitem__, n) == _outcome(py.__getitem__, n)
        elif op == 7:
            a, b = rng.randrange(-n - 2, n + 2), rng.randrange(-n - 2, n + 2)
            step_ = rng.choice([None, 1, 2, -1, -3])
            assert _signed(c[a:b:step_]) == _signed(py[a:b:step_])
        elif op == 8 and n:
            a = rng.randrange(n)
            b = min(n, a + rng.choice([1, 5, 40, 300, 2000]))
            roll = rng.random()
            if roll < 0.3:
                del c[a:b]
                del py[a:b]
            elif roll < 0.6:
                assert c.drop(a, b) == py.drop(a, b)
            else:
                got, want = c.cut(a, b), py.cut(a, b)
                assert _signed(x for chunk in got for x in chunk) == _signed(x for chunk in want for x in chunk)
        elif op == 9 and n:
            pos = rng.choice([0, -1, n // 2, rng.randrange(n)])
            assert _signed([c.pop(pos)]) == _signed([py.pop(pos)])
        elif op == 10:
            a = rng.choice([None, rng.randrange(-n - 2, n + 2)])
            b = rng.choice([None, rng.randrange(-n - 2, n + 2)])
            rev = rng.random() < 0.5
            assert _signed(c.islice(a, b, reverse=rev)) == _signed(py.islice(a, b, reverse=rev))
            lo, hi = sorted((rng.randrange(n + 1), rng.randrange(n + 1)))
            assert c.members(lo, hi, rev) == py.members(lo, hi, rev)
            assert c.flat_pairs(lo, hi, rev) == py.flat_pairs(lo, hi, rev)
        elif op == 11:
            lo, hi = rng.choice([None, _key(rng)]), rng.choice([None, _key(rng)])
            inclusive = (rng.random() < 0.5, rng.random() < 0.5)
            rev = rng.random() < 0.5
            assert _signed(c.irange(lo, hi, inclusive=inclusive, reverse=rev)) == \
                _signed(py.irange(lo, hi, inclusive=inclusive, reverse=rev))
        elif op == 12:
            assert _signed(reversed(c)) == _signed(reversed(py))
            copied = c.copy()
            assert type(copied) is CIndex and _signed(copied) == _signed(py)
        elif op == 13 and n:
            pos = rng.randrange(n)
            del c[pos]
            del py[pos]
        elif op == 14 and n > 100:  # most of it goes at once: the chunks around the cut are merged
            a, b = rng.randrange(10), n - rng.randrange(10)
            del c[a:b]
            del py[a:b]
        elif op == 15:
            assert _outcome(c.pop, n) == _outcome(py.pop, n) == ("error", IndexError)
            if n:
                pos = rng.randrange(n)
                assert c.bisect_left(py[pos]) == pos and c.bisect_right(py[pos]) == pos + 1
        elif op == 16:  # a slice with a step deleted: each position of it, from any end
            a, b = rng.randrange(-n - 2, n + 2), rng.randrange(-n - 2, n + 2)
            step_ = rng.choice([2, 3, 50, -1, -2, -7])
            del c[a:b:step_]
            del py[a:b:step_]
        elif op == 17:  # whole-index reads and refusals, also of an empty index
            lo = rng.randrange(n + 2)
            assert _outcome(c.members, lo, n + 1) == _outcome(py.members, lo, n + 1) == ("error", IndexError)
            assert _outcome(c.cut, n, n) == ("ok", [])
            assert c.members(n, n) == c.drop(0, 0) == []
            assert _signed(c.islice(n, 0)) == _signed(c.irange((1.0, TOP), (0.0, b""))) == []
            if n:
                assert _signed(c.irange(py[0], py[-1], inclusive=(False, False))) == _signed(py[1:-1])
        _same(c, py)


def test_from_sorted_sorts_what_is_not_in_order() -> None:
    rng = random.Random(9)
    items = list({m: (s, m) for s, m in (_entry(rng) for _ in range(2000))}.values())
    assert _signed(CIndex.from_sorted(items)) == _signed(sorted(items))
    assert _signed(CIndex(items)) == _signed(PyScoreIndex(items))


def test_refusals() -> None:
    c = CIndex()
    for bad in [(1.0, "text"), (1.0,), "x", (None, b"a"), (1.0, bytearray(b"a"))]:
        with pytest.raises(TypeError):
            c.add(bad)
    assert len(c) == 0
    with pytest.raises(IndexError):
        c.pop()
    with pytest.raises(IndexError):
        c[0]
    with pytest.raises(ValueError):
        c.remove((1.0, b"a"))
    c.add((1, b"a"))  # an int score is its double
    assert c[0] == (1.0, b"a") and type(c[0][0]) is float


def test_iteration_stops_on_a_change() -> None:
    c = CIndex.from_sorted([(float(i), b"%04d" % i) for i in range(1000)])
    it = iter(c)
    next(it)
    c.add((0.5, b"x"))
    with pytest.raises(RuntimeError):
        next(it)


def test_a_score_runs_no_python_code() -> None:
    """A score is a float or an int, read without running Python code: a ``__float__`` that
    empties the list being read would leave the C loop reading freed items."""
    class Emptying:
        def __float__(self) -> float:
            items.clear()
            return 1.0

    items: list[Any] = [(0.0, b"a"), (Emptying(), b"b"), *[(float(i), b"%04d" % i) for i in range(2, 50)]]
    with pytest.raises(TypeError):
        CIndex.from_sorted(items)
    assert len(items) == 50
    c = CIndex.from_sorted([(1.0, b"a")])
    for bad in [(Emptying(), b"x"), ("1", b"x"), (None, b"x")]:
        with pytest.raises(TypeError):
            c.add(bad)
        with pytest.raises(TypeError):
            c.bisect_left(bad)
        assert bad not in c
    assert list(c) == [(1.0, b"a")]
    class Score(float):
        pass

    c.add((Score(2.0), b"b"))
    c.add((True, b"c"))  # an int subclass: its double
    assert _signed(c) == [("1.0", b"a"), ("1.0", b"c"), ("2.0", b"b")]


def test_nan_is_refused() -> None:
    """A NaN has no place in the order (a zset never holds one: every parser refuses it)."""
    c = CIndex.from_sorted([(1.0, b"a")])
    for bad in [lambda: c.add((math.nan, b"x")), lambda: c.update([(2.0, b"y"), (math.nan, b"x")]),
                lambda: CIndex.from_sorted([(math.nan, b"x")]), lambda: CIndex([(0.0, b"y"), (-math.nan, b"x")])]:
        with pytest.raises(ValueError):
            bad()
    assert list(c) == [(1.0, b"a")]
    c._check()


def test_span_readers_take_their_arguments() -> None:
    c = CIndex.from_sorted([(float(i), b"%d" % i) for i in range(10)])
    py = PyScoreIndex.from_sorted(list(c))
    for index in (c, py):
        with pytest.raises(TypeError):
            index.drop(0, 3, True)
        with pytest.raises(IndexError):
            index.drop(3, 2)
        with pytest.raises(IndexError):
            index.cut(-1, 2)
    assert c.flat_pairs(7, 10, True) == py.flat_pairs(7, 10, True) == [b"9", b"9", b"8", b"8", b"7", b"7"]
    assert len(c) == len(py) == 10


@pytest.mark.parametrize("seed", range(3))
def test_references_balance(seed: int) -> None:
    """Every operation, refused ones included, leaves each member with exactly one reference
    per entry holding it, and an emptied index holds none."""
    rng = random.Random(seed)
    pool = [b"r:%06d:%d" % (i, seed) for i in range(2000)]  # objects of their own, not interned
    base = [sys.getrefcount(m) for m in pool]
    c = CIndex()
    _exercise(c, rng, pool)  # (in a function of its own: no local of it holds a member after)
    c._check()
    held = [0] * len(pool)
    at = {id(m): i for i, m in enumerate(pool)}
    for entry in c:
        held[at[id(entry[1])]] += 1
    entry = None
    assert [sys.getrefcount(m) for m in pool] == [b + h for b, h in zip(base, held, strict=True)]
    c.__init__()  # emptied
    assert [sys.getrefcount(m) for m in pool] == base


def _exercise(c: Any, rng: random.Random, pool: list[bytes]) -> None:
    for _ in range(scaled(800)):
        n = len(c)
        op = rng.randrange(10)
        try:
            if op <= 3:
                batch = {(float(rng.randrange(-30, 30)), rng.choice(pool)) for _ in range(rng.randrange(1, 80))}
                c.update([item for item in batch if item not in c])
            elif op == 4 and n:
                c.pop(rng.randrange(-n, n))
            elif op == 5 and n:
                a = rng.randrange(n)
                c.drop(a, min(n, a + rng.randrange(1, 600)))
            elif op == 6 and n:
                a = rng.randrange(n)
                c.cut(a, min(n, a + rng.randrange(1, 3000)))
            elif op == 7:
                del c[rng.randrange(-n - 2, n + 2):rng.randrange(-n - 2, n + 2):rng.choice([1, 2, -3])]
            elif op == 8:
                lo, hi = sorted((rng.randrange(n + 1), rng.randrange(n + 1)))
                c.members(lo, hi, True), c.flat_pairs(lo, hi), c[lo:hi:rng.choice([1, -2])], c.copy()
                list(c.irange((0.0, TOP), (5.0, b"r"))), c.members(lo, n + 1)
            elif op == 9:
                c.update([(1.0, rng.choice(pool)), (rng.choice([math.nan, "1"]), rng.choice(pool))])
        except (ValueError, IndexError, TypeError):
            pass
