"""dumpling/_bigops.c against its Python references in dumpling.bigops: the same results on
random and edge inputs, and a decline (the reference runs) for what C does not handle."""

from __future__ import annotations

import collections
import math
import os
import random
from collections import deque
from typing import Any

import pytest

from dumpling import bigops
from dumpling.fpconv import py_d2string

native: Any = bigops._native
needs_c = pytest.mark.skipif(native is None, reason="dumpling._bigops not built (or DUMPLING_PURE=1)")

SCORES = [0.0, -0.0, 1.0, -1.0, 0.5, 1e300, -1e-300, math.inf, -math.inf, math.nan, 2.0**62, 2.0**63,
          -(2.0**62), 123456789.125, 0.1, 1 / 3]


def test_the_extension_is_built_in_ci() -> None:
    """Every test below needing C would skip silently if _bigops failed to compile (it is an
    optional extension): CI must have built it, as it must the other accelerators."""
    if os.environ.get("CI") == "true" and os.environ.get("DUMPLING_PURE") != "1":
        assert native is not None, "dumpling._bigops did not build: setup.py / compiler problem"
    if native is None:
        pytest.skip("dumpling._bigops not built (pure Python)")
    assert callable(native.keep_outside) and callable(native.sample_prefix)


def _items(rng: random.Random, n: int) -> list[tuple[float, bytes]]:
    out = []
    for i in range(n):
        score = rng.choice(SCORES) if rng.random() < 0.3 else rng.uniform(-1e6, 1e6) * rng.choice([1, 1e-9, 1e9])
        if rng.random() < 0.3 and math.isfinite(score):
            score = float(round(score))
        out.append((score, b"m:%d" % i * rng.randint(1, 3)))
    return out


def test_flat_pairs_reference_is_d2string_text() -> None:
    items = [(s, b"x") for s in SCORES]
    assert bigops.py_flat_pairs(items) == [t for s in SCORES for t in (b"x", py_d2string(s))]


@needs_c
@pytest.mark.parametrize("seed", range(5))
def test_flat_pairs_c_matches_reference(seed: int) -> None:
    rng = random.Random(seed)
    items = _items(rng, 3000)
    chunks: list[list[tuple[float, bytes]]] = []
    pos = 0
    while pos < len(items):
        size = rng.randint(0, 700)
        chunks.append(items[pos:pos + size])
        pos += size
    assert native.flat_pairs([items], False) == bigops.py_flat_pairs(items)
    assert native.flat_pairs(chunks, False) == bigops.py_flat_pairs(items)
    assert native.flat_pairs(chunks, True) == bigops.py_flat_pairs(items[::-1])
    assert bigops.flat_pairs_of_chunks(chunks, True) == bigops.py_flat_pairs(items[::-1])
    assert native.flat_pairs([], False) == []


@needs_c
def test_flat_pairs_declines_other_shapes() -> None:
    assert native.flat_pairs([[(1, b"a")]], False) is None  # an int score: the reference prints it
    assert native.flat_pairs([[(1.0, "a")]], False) is None
    assert native.flat_pairs([[(1.0, b"a", 3)]], False) is None
    assert native.flat_pairs([[(1.0, b"a")], ((2.0, b"b"),)], False) is None  # a chunk not a list
    assert bigops.flat_pairs([(1, b"a"), (2.5, b"b")]) == [b"a", b"1", b"b", b"2.5"]
    assert bigops.flat_pairs_of_chunks([[(1, b"a")], [(2.5, b"b")]], True) == [b"b", b"2.5", b"a", b"1"]
    with pytest.raises(TypeError):
        native.flat_pairs(((1.0, b"a"),), False)


@needs_c
@pytest.mark.parametrize("seed", range(5))
def test_keep_outside_c_matches_reference(seed: int) -> None:
    rng = random.Random(seed)
    scores = {member: score for score, member in _items(rng, 2000) if score == score}
    ordered = sorted((s, m) for m, s in scores.items())
    for _ in range(20):
        lo = rng.randrange(len(ordered))
        hi = rng.randrange(lo, len(ordered))
        kept = native.keep_outside(scores, ordered[lo], ordered[hi])
        assert kept == bigops.py_keep_outside(scores, ordered[lo], ordered[hi])
        assert list(kept) == list(bigops.py_keep_outside(scores, ordered[lo], ordered[hi]))  # the dict's order
        assert len(kept) == len(scores) - (hi - lo + 1)
    ties = {b"a": 1.0, b"ab": 1.0, b"b": 1.0, b"": 1.0, b"c": 2.0}
    assert list(native.keep_outside(ties, (1.0, b"ab"), (1.0, b"b"))) == [b"a", b"", b"c"]


@pytest.mark.parametrize("seed", range(4))
def test_drop_inside_is_keep_outside_in_place(seed: int) -> None:
    rng = random.Random(seed)
    scores = {member: score for score, member in _items(rng, 2000) if score == score}
    ordered = sorted((s, m) for m, s in scores.items())
    for _ in range(10):
        lo = rng.randrange(len(ordered))
        hi = rng.randrange(lo, min(len(ordered), lo + 400))
        kept = bigops.py_keep_outside(scores, ordered[lo], ordered[hi])
        for drop in (bigops.py_drop_inside, bigops.drop_inside, *([native.drop_inside] if native else [])):
            mine = dict(scores)
            assert drop(mine, ordered[lo], ordered[hi]) == hi - lo + 1
            assert list(mine.items()) == list(kept.items())
    if native is not None:
        assert native.drop_inside({b"a": 1}, (0.0, b""), (2.0, b"z")) is None
        assert native.drop_inside({b"a": 1.0}, (0, b""), (2.0, b"z")) is None


@needs_c
def test_keep_outside_declines_other_shapes() -> None:
    assert native.keep_outside({b"a": 1}, (0.0, b""), (2.0, b"z")) is None
    assert native.keep_outside({"a": 1.0}, (0.0, b""), (2.0, b"z")) is None
    assert native.keep_outside({b"a": 1.0}, (0, b""), (2.0, b"z")) is None
    assert bigops.keep_outside({b"a": 1, b"b": 3.0}, (0.0, b""), (2.0, b"z")) == {b"b": 3.0}


@pytest.mark.parametrize("head", [True, False])
def test_pop_many_from_either_end(head: bool) -> None:
    class Subclass(deque):  # type: ignore[type-arg]  # as the pure list, PyElementList, is
        pass

    for make in (deque, Subclass):
        pop = bigops.pop_many
        items = make(range(1000))
        expected = list(range(300)) if head else list(range(999, 699, -1))
        assert pop(items, 300, head) == expected
        assert list(items) == (list(range(300, 1000)) if head else list(range(700)))
        assert pop(items, 5000, head) == (list(range(300, 1000)) if head else list(range(699, -1, -1)))
        assert not items and pop(items, 3, head) == [] and pop(deque([1]), -2, head) == []


def test_splitmix64_known_values() -> None:
    # the generator's published first outputs for seed 0 (Vigna's splitmix64.c)
    state, first = bigops.splitmix64(0)
    _, second = bigops.splitmix64(state)
    assert (first, second) == (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4)


@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1, 12345678901234567890])
def test_sample_prefix_is_a_permutation_with_the_same_draws(seed: int) -> None:
    pool = list(range(500))
    reference = pool[:]
    bigops.py_sample_prefix(reference, 200, seed)
    assert sorted(reference) == pool and reference != pool
    if native is not None:
        mine = pool[:]
        native.sample_prefix(mine, 200, seed)
        assert mine == reference
    whole = pool[:]
    bigops.sample_prefix(whole, 10**6, seed)  # k beyond the pool: a full shuffle
    assert sorted(whole) == pool


def test_sample_prefix_is_uniform_enough() -> None:
    counts = [0] * 10
    rng = random.Random(7)
    for _ in range(4000):
        pool = list(range(10))
        bigops.sample_prefix(pool, 3, rng.getrandbits(64))
        for item in pool[:3]:
            counts[item] += 1
    assert all(1050 < c < 1350 for c in counts)  # 1200 expected each


def test_use_native_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bigops, "_native", None)
    assert not bigops.native_loaded()
    assert bigops.flat_pairs([(1.5, b"a")]) == [b"a", b"1.5"]


# ----------------------------------------------------------------------------- set_walk

WALK_FORMS = (bigops.WALK_COUNT, bigops.WALK_LIST, bigops.WALK_RESP2, bigops.WALK_RESP3)


def _member_sets(rng: random.Random, nsets: int) -> list[set[bytes]]:
    """Overlapping sets of bytes members: empty, short, long, integer-like, from 0 to a few
    thousand members (a few table resizes and deletions, so the tables hold dummies)."""
    pool = [b"", b"0", b"-1", b"x" * 300] + [b"m:%d" % i for i in range(3000)] + [b"%d" % i for i in range(500)]
    sets = []
    for _ in range(nsets):
        members = set(rng.sample(pool, rng.choice([0, 1, 5, 200, 2500])))
        for member in rng.sample(sorted(members), len(members) // 4):
            members.discard(member)
        sets.append(members)
    return sets


def test_set_walk_reference_is_the_replies_encoding() -> None:
    assert bigops.py_set_walk({b"a"}, [], True, 0, bigops.WALK_RESP3) == b"~1\r\n$1\r\na\r\n"
    assert bigops.py_set_walk([b"a", b"bc"], [{b"bc"}], True, 0, bigops.WALK_RESP2) == b"*1\r\n$2\r\nbc\r\n"
    assert bigops.py_set_walk([b"a", b"bc"], [{b"bc"}], False, 0, bigops.WALK_LIST) == [b"a"]
    assert bigops.py_set_walk([b"a", b"b", b"c"], [], True, 2, bigops.WALK_COUNT) == 2
    assert bigops.py_set_walk(set(), [{b"a"}], True, 0, bigops.WALK_RESP2) == b"*0\r\n"


@needs_c
@pytest.mark.parametrize("seed", range(8))
def test_set_walk_c_matches_reference(seed: int) -> None:
    """Every form, kept or dropped, any limit, a set (its iteration order) or a list source."""
    rng = random.Random(seed)
    sets = _member_sets(rng, 4)
    for _ in range(30):
        source: set[bytes] | list[bytes] = rng.choice(sets)
        if rng.random() < 0.3:
            source = list(source)
            rng.shuffle(source)
        others = rng.sample(sets, rng.randint(0, 3))
        keep = rng.random() < 0.5
        limit = rng.choice([0, 0, 1, 7, 1000])
        for form in WALK_FORMS:
            want = bigops.py_set_walk(source, others, keep, limit, form)
            assert native.set_walk(source, others, keep, limit, form) == want, (keep, limit, form)


@needs_c
def test_set_walk_declines_other_shapes() -> None:
    for form in WALK_FORMS:
        assert native.set_walk([b"a", "b"], [], True, 0, form) is None  # a str member
        assert native.set_walk([b"a"], [{b"a"}, frozenset({b"a"})], True, 0, form) is None  # not a set
        assert bigops.set_walk([b"a", "b"], [], True, 0, form) == bigops.py_set_walk([b"a", "b"], [], True, 0, form)
    with pytest.raises(TypeError):
        native.set_walk((b"a",), [], True, 0, bigops.WALK_LIST)
    with pytest.raises(ValueError):
        native.set_walk([b"a"], [], True, 0, 4)


def test_set_walk_falls_back_to_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bigops, "_native", None)
    assert bigops.set_walk({b"a", b"b"}, [{b"b"}], True, 0, bigops.WALK_LIST) == [b"b"]


@pytest.mark.parametrize("seed", range(4))
def test_draw_with_repeats_draws_as_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    pool = [b"m:%d" % i for i in range(rng.choice([1, 2, 50, 3000]))]
    k, draw_seed = rng.choice([0, 1, 100, 5000]), rng.getrandbits(64)
    want = bigops.py_draw_with_repeats(pool, k, draw_seed)
    assert len(want) == k and set(want) <= set(pool)
    assert bigops.draw_with_repeats(pool, k, draw_seed) == want


def test_draw_with_repeats_is_uniform_enough() -> None:
    counts = collections.Counter(bigops.draw_with_repeats(list(range(10)), 20000, 99))
    assert set(counts) == set(range(10)) and all(1750 < n < 2250 for n in counts.values())  # 2000 expected each


@needs_c
def test_draw_with_repeats_refuses_an_empty_pool() -> None:
    assert native.draw_with_repeats([], 0, 1) == []
    with pytest.raises(ValueError):
        native.draw_with_repeats([], 1, 1)
    with pytest.raises(ValueError):
        native.draw_with_repeats([b"a"], -1, 1)
