"""Big discarded containers freed a slice at a time between event-loop iterations.

Freeing a container that holds the last references to a million objects is a million
deallocations, in whatever order the objects sit in memory (a span cut out of a zset goes in
score order: a cache miss or more each): 0.1-0.2 s in which no client is served. Redis frees
such a span in C at a fraction of that, and big values in its lazyfree thread. Here
``release(container)`` takes a list, deque or dict nobody will use again and, while an event
loop runs, empties it from the loop in slices of about a millisecond, so clients are served
between slices; without a running loop (tests, tools) it is simply dropped, freed at once.

The objects stay allocated a little longer (milliseconds per 100k); ``used_memory`` is an
estimate in Redis's terms and does not see them either way.

Must not: know about values, keys or commands; keep anything it was not handed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from itertools import repeat, starmap
from typing import Any

SLICE_SECONDS = 0.001  # one slice's budget; the loop serves its clients between slices
SMALL = 4096  # containers with fewer items are dropped at once
ITEM_BUDGET = 256  # objects freed between two looks at the clock

_drain = deque(maxlen=0).extend  # consumes an iterator, keeping nothing


class _Queue(threading.local):
    """One per thread (each event loop runs in one; servers in threads have their own)."""

    def __init__(self) -> None:
        self.pending: deque[tuple[Any, int]] = deque()
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop a slice is scheduled on


_queue = _Queue()


def release(container: list[Any] | deque[Any] | dict[Any, Any], objects_per_item: int = 1) -> None:
    """Hand over ``container`` (the caller's reference is its last use) to be emptied in slices.
    ``objects_per_item``: about how many objects each item frees (a sorted list's sublist holds
    up to ~2,000), which sizes the steps between the clock checks."""
    if len(container) * objects_per_item < SMALL:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop: the caller's drop frees it now
    queue = _queue
    queue.pending.append((container, max(1, ITEM_BUDGET // max(1, objects_per_item))))
    if queue.loop is not loop:  # nothing scheduled, or on a loop of this thread that has ended
        queue.loop = loop
        # the first slice waits for one look at the sockets: requests that arrived while the
        # command ran are served before the freeing starts
        loop.call_soon(loop.call_soon, _free_slice, loop)


def pending() -> int:
    """Containers handed over in this thread and not yet emptied."""
    return len(_queue.pending)


def _free_slice(loop: asyncio.AbstractEventLoop) -> None:
    queue = _queue
    if queue.loop is not loop:
        return  # a later loop of this thread took the queue over
    deadline = time.perf_counter() + SLICE_SECONDS
    pending = queue.pending
    while pending:
        container, step = pending[0]
        while container:
            _free_step(container, step)
            if time.perf_counter() >= deadline:
                loop.call_soon(_free_slice, loop)
                return
        pending.popleft()
    queue.loop = None


def _free_step(container: list[Any] | deque[Any] | dict[Any, Any], step: int) -> None:
    """Drop up to ``step`` items from the end of ``container``."""
    if type(container) is list:
        del container[-step:]
    else:  # a dict or a deque: `step` pops called from C, each result dropped at once
        take = container.popitem if type(container) is dict else container.pop  # type: ignore[union-attr]
        _drain(starmap(take, repeat((), min(step, len(container)))))
