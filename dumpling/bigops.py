"""The per-element steps of commands on big spans of a value, shared by every such command.

A command that touches half a million elements of a list, set or sorted set spends its time in
a few loops: writing the RESP2 pairs of a zset range, taking a cut span out of a zset's
member -> score dict (a new dict of the rest, or deletions in the dict's order), drawing a random
sample. Each is written here once, in Python (the reference), and ``dumpling/_bigops.c`` runs the
same step in one C pass when it is built (``DUMPLING_PURE=1`` or ``use_native(False)`` runs the
Python; ``tests/test_bigops.py`` compares both). The C functions decline (None) what they do not
handle, and the reference runs. ``pop_many`` (the pure list's pops) has no C twin: the C list,
``dumpling._elementlist``, pops its own entries. ``set_walk`` is every set command's pass over a
set's members (SMEMBERS, SINTER, SINTERCARD, SDIFF): the members in the other sets (or in none),
as a count, a list or the RESP reply written straight from them.

Must not: know about commands, keys, clients or the keyspace.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import chain, repeat, starmap
from typing import Any

from dumpling import accel
from dumpling.fpconv import d2string
from dumpling.protocol import SetReply, encode

MASK64 = (1 << 64) - 1

_native: Any = accel.bigops


def use_native(on: bool) -> None:
    """Switch the C steps on (when built and not ``DUMPLING_PURE``) or off at run time (tests)."""
    global _native
    _native = accel.bigops if on else None


def native_loaded() -> bool:
    return _native is not None


# ----------------------------------------------------------------------------- references


def py_flat_pairs(items: Iterable[tuple[float, bytes]]) -> list[Any]:
    """RESP2's member, score, member, score ... with each score as its reply text."""
    out: list[Any] = []
    append = out.append
    for score, member in items:
        append(member)
        append(d2string(score))
    return out


def py_keep_outside(scores: dict[bytes, float], first: tuple[float, bytes],
                    last: tuple[float, bytes]) -> dict[bytes, float]:
    """``scores`` without the members whose (score, member) lies in ``[first, last]``, in the
    dict's own order."""
    low, low_member = first
    high, high_member = last
    return {
        member: score for member, score in scores.items()
        if score < low or score > high or (score == low and member < low_member)
        or (score == high and member > high_member)
    }


def py_drop_inside(scores: dict[bytes, float], first: tuple[float, bytes], last: tuple[float, bytes]) -> int:
    """``py_keep_outside``'s result made in place: the members inside ``[first, last]`` deleted in
    the dict's order; how many."""
    low, low_member = first
    high, high_member = last
    doomed = [
        member for member, score in scores.items()
        if not (score < low or score > high or (score == low and member < low_member)
                or (score == high and member > high_member))
    ]
    for member in doomed:
        del scores[member]
    return len(doomed)


def pop_many(items: deque[Any], count: int, head: bool) -> list[Any]:
    """``count`` elements (at most all) off one end of ``items``, in the order they leave (the
    pure list's pops, ``PyElementList``; the C list has its own)."""
    return list(starmap(items.popleft if head else items.pop, repeat((), min(max(count, 0), len(items)))))


def splitmix64(state: int) -> tuple[int, int]:
    """The next (state, output) of the splitmix64 generator."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def py_sample_prefix(pool: list[Any], k: int, seed: int) -> None:
    """A partial Fisher-Yates shuffle: the first ``k`` items of ``pool`` become a uniform random
    sample of it (the rest is what was not drawn), from a splitmix64 stream seeded with ``seed``."""
    n = len(pool)
    state = seed & MASK64
    for i in range(min(k, n)):
        state, r = splitmix64(state)
        j = i + ((r * (n - i)) >> 64)
        pool[i], pool[j] = pool[j], pool[i]


def py_draw_with_repeats(pool: list[Any], k: int, seed: int) -> list[Any]:
    """``k`` uniform picks from the non-empty ``pool``, repetitions allowed: ``pool[(r * n) >> 64]``
    for each output ``r`` of a splitmix64 stream seeded with ``seed``."""
    n = len(pool)
    state = seed & MASK64
    out = []
    for _ in range(k):
        state, r = splitmix64(state)
        out.append(pool[(r * n) >> 64])
    return out


# set_walk's forms: the members taken as their count, a list, or a RESP2 array / RESP3 set reply.
WALK_COUNT, WALK_LIST, WALK_RESP2, WALK_RESP3 = 0, 1, 2, 3


def py_set_walk(source: set[bytes] | list[bytes], others: list[set[bytes]], keep: bool, limit: int,
                form: int) -> Any:
    """The members of ``source`` (in its iteration order) that every set of ``others`` holds
    (``keep``) or none does (not ``keep``), the first ``limit`` of them (0: all), in ``form``."""
    taken: list[bytes] = []
    for member in source:
        if all((member in other) is keep for other in others):
            taken.append(member)
            if len(taken) == limit:
                break
    if form == WALK_COUNT:
        return len(taken)
    if form == WALK_LIST:
        return taken
    return encode(SetReply(taken), form == WALK_RESP3)


# ----------------------------------------------------------------------------- entry points


def flat_pairs(items: Iterable[tuple[float, bytes]]) -> list[Any]:
    native = _native
    if native is None:
        return py_flat_pairs(items)
    seq = items if type(items) is list else list(items)  # read once: the reference may need it too
    out = native.flat_pairs([seq], False)
    return py_flat_pairs(seq) if out is None else out  # type: ignore[no-any-return]


def flat_pairs_of_chunks(chunks: list[list[tuple[float, bytes]]], reverse: bool) -> list[Any]:
    """``flat_pairs`` of the chunks' items one after another (all in reverse order if
    ``reverse``): a span cut out of a zset, as its sublists, without joining them first."""
    native = _native
    if native is not None:
        out = native.flat_pairs(chunks, reverse)
        if out is not None:
            return out  # type: ignore[no-any-return]
    items = chain.from_iterable(map(reversed, reversed(chunks)) if reverse else chunks)
    return py_flat_pairs(items)


def keep_outside(scores: dict[bytes, float], first: tuple[float, bytes],
                 last: tuple[float, bytes]) -> dict[bytes, float]:
    native = _native
    if native is not None:
        kept = native.keep_outside(scores, first, last)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
    return py_keep_outside(scores, first, last)


def drop_inside(scores: dict[bytes, float], first: tuple[float, bytes], last: tuple[float, bytes]) -> int:
    native = _native
    if native is not None:
        dropped = native.drop_inside(scores, first, last)
        if dropped is not None:
            return dropped  # type: ignore[no-any-return]
    return py_drop_inside(scores, first, last)


def sample_prefix(pool: list[Any], k: int, seed: int) -> None:
    native = _native
    if native is not None and type(pool) is list:
        native.sample_prefix(pool, k, seed)
    else:
        py_sample_prefix(pool, k, seed)


def draw_with_repeats(pool: list[Any], k: int, seed: int) -> list[Any]:
    native = _native
    if native is not None:
        return native.draw_with_repeats(pool, k, seed)  # type: ignore[no-any-return]
    return py_draw_with_repeats(pool, k, seed)


def set_walk(source: set[bytes] | list[bytes], others: list[set[bytes]], keep: bool = True, limit: int = 0,
             form: int = WALK_LIST) -> Any:
    """``py_set_walk`` in one C pass when built: the source's members read in order with the
    others' buckets and the compared members asked for a few members ahead."""
    native = _native
    if native is not None:
        out = native.set_walk(source, others, keep, limit, form)
        if out is not None:
            return out
    return py_set_walk(source, others, keep, limit, form)
