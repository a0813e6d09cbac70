"""One knob for how hard the default run fuzzes and soaks.

``DUMPLING_FUZZ=full`` runs every Hypothesis test with its full example count
and every hand-written loop (leak checks, random command sequences, big
repetitions) at its full length; unset, the default run uses a quarter of
each, with a floor, so the same code paths run in seconds rather than minutes.
Use ``examples(n)`` for ``@settings(max_examples=...)`` and ``scaled(n)`` for
loop counts, so that the full counts stay written where the test is.
"""

from __future__ import annotations

import os

FULL = os.environ.get("DUMPLING_FUZZ", "").lower() == "full"
_DIVISOR = 4


def scaled(n: int, floor: int = 1) -> int:
    """``n`` under ``DUMPLING_FUZZ=full``; otherwise ``n // 4``, never below ``floor`` (nor above ``n``)."""
    if FULL:
        return n
    return min(n, max(floor, n // _DIVISOR))


def examples(n: int) -> int:
    """A Hypothesis ``max_examples``: the full ``n`` under ``DUMPLING_FUZZ=full``, else a quarter (at least 50)."""
    return scaled(n, floor=50)
