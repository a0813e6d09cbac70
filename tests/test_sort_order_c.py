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
