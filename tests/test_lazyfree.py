"""``dumpling.lazyfree``: big discarded containers are emptied in slices from the event loop,
other callbacks run between slices, and without a loop nothing is kept.  Then the big spans
that hand their removed items over (ZREMRANGEBYRANK, ZPOPMIN/ZPOPMAX with a COUNT, LTRIM)
against real Redis: same replies and the same value afterwards, in RESP2 and RESP3."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest

from dumpling import lazyfree
from tests.servers import Pair


def test_without_a_loop_nothing_is_kept() -> None:
    items = list(range(10_000))
    lazyfree.release(items)
    assert lazyfree.pending() == 0 and len(items) == 10_000  # the caller's drop frees it


def test_containers_are_emptied_in_slices_between_other_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazyfree, "SLICE_SECONDS", 0.0)  # one step a slice: the order is deterministic
    big_list, big_dict, big_deque = list(range(5000)), {i: str(i) for i in range(5000)}, deque(range(5000))
    small = list(range(10))
    seen: list[tuple[int, int, int]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for container in (big_list, big_dict, big_deque, small):
            lazyfree.release(container)  # type: ignore[arg-type]
        assert lazyfree.pending() == 3  # the small one is not taken
        while lazyfree.pending():  # a callback each loop iteration, as a client's request would be
            loop.call_soon(lambda: seen.append((len(big_list), len(big_dict), len(big_deque))))
            await asyncio.sleep(0)

    asyncio.run(main())
    assert seen[0] == (5000, 5000, 5000)  # what was waiting when the command ended goes before any freeing
    assert any(0 < lists < 5000 and rest == [5000, 5000] for lists, *rest in seen)  # served between two slices
    assert any(0 < dicts < 5000 for _, dicts, _ in seen) and any(0 < deques < 5000 for *_, deques in seen)
    assert not big_list and not big_dict and not big_deque and len(small) == 10


def test_a_later_loop_takes_over_what_an_ended_one_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lazyfree, "SLICE_SECONDS", 0.0)
    first, second = list(range(5000)), list(range(5000))

    async def leave() -> None:
        lazyfree.release(first)  # the loop ends before any slice runs

    async def drain() -> None:
        lazyfree.release(second)
        while lazyfree.pending():
            await asyncio.sleep(0)

    asyncio.run(leave())
    asyncio.run(drain())
    assert not first and not second


def _fill(p: Pair, n: int) -> None:
    for start in range(0, n, 1000):
        args: list[Any] = ["ZADD", "z"]
        for i in range(start, start + 1000):
            args += [(i * 7919) % n // 3, b"m:%d" % i]  # ties: members decide within a score
        p.same(*args)
        p.same("RPUSH", "l", *(b"e:%d" % i for i in range(start, start + 1000)))


def _same_after(p: Pair) -> None:
    p.same("ZCARD", "z")
    p.same("ZRANGE", "z", 0, -1, "WITHSCORES")
    p.same("ZSCORE", "z", "m:7")
    p.same("LRANGE", "l", 0, -1)
    p.same("PING")  # the slices ran or run: the server answers


def test_big_spans_against_redis(pairs: Pair) -> None:
    _fill(pairs, 9000)  # each span below hands over at least lazyfree.SMALL items
    pairs.same("ZREMRANGEBYRANK", "z", 500, 4999)
    pairs.same("LTRIM", "l", 0, 4999)
    _same_after(pairs)
    pairs.same("ZPOPMIN", "z", 4200)
    pairs.same("ZPOPMAX", "z", 100)
    pairs.same("LTRIM", "l", 2000, -1)
    _same_after(pairs)
    pairs.same("ZREMRANGEBYSCORE", "z", "-inf", "+inf")
    pairs.same("EXISTS", "z")
