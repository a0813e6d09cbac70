"""How the keyspace stays out of Python's cyclic garbage collector.

A full collection traverses every tracked container, and nothing else runs meanwhile: a
million stored hashes or sets, or one list of millions of elements, made each full
collection a pause of hundreds of milliseconds (Redis has none). Stored values hold bytes,
numbers and containers of those, never a reference back to themselves, so the collector need
not look at them: ``Database.add``/``set`` pass every non-string value to ``stored``, whose
``untrack`` hides it and the containers only it holds (``dumpling/_untrack.c``: only objects whose every
referent is atomic or hidden the same way, so nothing that is or may be on a cycle). Reference
counting still frees them the moment they leave the keyspace. The database's dict of values
is hidden too (``hide``): its keys are bytes and no value refers back to it. A container a value swaps in
later (a conversion building a new set, say) is tracked again, as any new object, until the
value is stored anew.

Rule for value types: a value must never refer to itself, directly or through its parts (no
back-pointers from nodes to their owner); an object that does stays visible to the collector
only if the untracking rule sees the cycle when the value is stored.

What start-up made (modules, the command table, configuration, a dataset loaded from disk) lives
as long as the server: ``settle`` moves it to the collector's permanent generation once the
server is ready (``gc.freeze``), so a full collection looks only at what came later (clients,
scripts, transient state): ~30k objects fewer per full collection. Objects frozen there that
later become cyclic garbage are not reclaimed (a client connected while the dataset loaded,
say): a bounded, one-time cost.

Without the C accelerator (``DUMPLING_PURE=1``, or no compiler) ``untrack`` does nothing:
the same behaviour, with the collector's pauses.

Must not: decide what is stored, or keep references to values.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from dumpling.accel import PURE


def _untrack_nothing(value: Any) -> bool:
    return False


def _hide_nothing(container: Any) -> None:
    return None


def _load() -> tuple[Callable[[Any], bool], Callable[[Any], None]]:
    if PURE:
        return _untrack_nothing, _hide_nothing
    try:
        from dumpling import _untrack  # type: ignore[attr-defined]
    except ImportError:
        return _untrack_nothing, _hide_nothing
    return _untrack.untrack, _untrack.hide


untrack, hide = _load()
ACCELERATED = untrack is not _untrack_nothing


def stored(data: dict[bytes, Any], value: Any) -> None:
    """``value`` (not a string) was just stored in the database dict ``data``: hide both from
    full collections. The dict tracks itself again on every such store (CPython's rule looks
    at the value's type, not whether it is tracked), and nothing in it refers to the dict."""
    untrack(value)
    hide(data)


def settle() -> None:
    """Start-up is over: collect what it left as garbage, then freeze the survivors."""
    gc.collect()
    gc.freeze()
