"""SORT's numeric ordering in C (``_fastpath.sort_scored``) against the Python ordering it replaces.

Both must give Redis's ``sortCompare`` order: by weight, equal weights in binary order of
the elements (shorter first on a common prefix), everything reversed by DESC.  Real Redis
is compared in tests/test_commands_sort.py; this file pins the C helper to the reference.
"""

from __future__ import annotations

import random

import pytest

from dumpling import accel
from dumpling.commands import sorting

needs_c = pytest.mark.skipif(accel.fastpath is None, reason="the C fast path is not built")


def _python_order(scores: list[float], elements: list[bytes], desc: bool) -> list[bytes]:
    saved = accel.fastpath
    accel.fastpath = None
    try:
        return sorting._by_score(list(scores), list(elements), desc, len(elements))
    finally:
        accel.fastpath = saved


@needs_c
@pytest.mark.parametrize("desc", [False, True])
def test_c_order_is_the_python_order(desc: bool) -> None:
    rng = random.Random(7)
    for size in (0, 1, 2, 17, 500, 5000):
        elements = [rng.choice([b"", b"a", b"ab", b"b", b"a\x00", b"\xff", b"%d" % rng.randrange(50)]) + bytes(
            rng.randrange(256) for _ in range(rng.randrange(3))) for _ in range(size)]
        scores = [rng.choice([0.0, -0.0, 1.5, -1.5, 1e308, -1e308, float("inf"), float("-inf"), float(rng.randrange(9))])
                  for _ in range(size)]
        expected = _python_order(scores, elements, desc)
        assert accel.fastpath.sort_scored(scores, elements, desc) == expected
        assert sorting._by_score(list(scores), list(elements), desc, size) == expected


@needs_c
def test_other_types_are_left_to_python() -> None:
    assert accel.fastpath.sort_scored([1.0], [bytearray(b"x")], False) is None
    assert accel.fastpath.sort_scored([1], [b"x"], False) is None
    assert accel.fastpath.sort_scored([1.0, 2.0], [b"x"], False) is None
    assert sorting._by_score([2.0, 1.0], [bytearray(b"b"), b"a"], False, 2) == [b"a", bytearray(b"b")]


@needs_c
@pytest.mark.parametrize("desc", [False, True])
def test_c_weights_are_read_as_python_reads_them(desc: bool) -> None:
    """Plain decimal weights (and None, a missing BY key) are read in C to the same doubles as
    strtod_weight; any other text is left to Python (None), which words the errors."""
    rng = random.Random(11)
    texts = [b"0", b"-0", b"+5", b"12", b"1.5", b"-1.25e3", b".5", b"5.", b"1e308", b"007", b"3.14159265358979323846",
             b"123456789012345678901234567890", b"-.0e-0"]
    for size in (1, 30, 3000):
        weights = [rng.choice([*texts, None]) for _ in range(size)]
        elements = [b"e%d" % rng.randrange(size) for _ in range(size)]
        scores = [0.0 if w is None else sorting.strtod_weight(w) for w in weights]
        got = accel.fastpath.sort_weighted(weights, elements, desc)
        assert got == accel.fastpath.sort_scored(scores, elements, desc)
    for odd in (b"", b" 1", b"1 ", b"0x10", b"inf", b"nan", b"1e999", b"1e-400", b"1\x002", b"1-", b"e", b"--1", b"1.2.3"):
        assert accel.fastpath.sort_weighted([odd], [b"x"], False) is None, odd


@needs_c
@pytest.mark.parametrize("desc", [False, True])
def test_a_small_limit_selects_the_same_first_elements(desc: bool) -> None:
    """``needed`` under an eighth of the elements (a small LIMIT): only those first ones, the same
    as the whole order's head, for inputs that strain a quickselect (sorted, reversed, one value
    repeated, few distinct values, random), and the Python ordering's partial path agrees."""
    rng = random.Random(5)
    for size in (8, 9, 64, 1000, 20000):
        shapes = {
            "random": [float(rng.randrange(size)) for _ in range(size)],
            "sorted": [float(i) for i in range(size)],
            "reversed": [float(size - i) for i in range(size)],
            "one value": [1.0] * size,
            "few values": [float(rng.randrange(3)) for _ in range(size)],
            "organ pipe": [float(min(i, size - i)) for i in range(size)],
        }
        for name, scores in shapes.items():
            elements = [rng.choice([b"a", b"b", b"ab", b"%d" % rng.randrange(size)]) for _ in range(size)]
            whole = _python_order(scores, elements, desc)
            for needed in {0, 1, 2, size // 8 - 1, size // 8, size - 1}:
                if needed < 0:
                    continue
                got = accel.fastpath.sort_scored(scores, elements, desc, needed)
                want = whole[:needed] if needed < size // 8 else whole
                assert got == want, (size, name, needed)
                weights = [b"%d" % s for s in scores]
                assert accel.fastpath.sort_weighted(weights, elements, desc, needed) == want, (size, name, needed)
                assert sorting._by_score(list(scores), list(elements), desc, needed)[:needed] == whole[:needed]
