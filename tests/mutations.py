"""Byte-level damage for the Hypothesis fuzz tests of the payload codec (pure and C)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

OPERATIONS = ["flip", "set", "insert", "delete", "truncate", "overwrite"]


def mutate(draw: st.DrawFn, data: bytearray, interesting: Sequence[int], overwrite_max: int = 8) -> None:
    """Apply 1-4 random edits to ``data`` in place: flip a bit, set an interesting byte,
    insert, delete, truncate, or overwrite a few bytes."""
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPERATIONS))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from(interesting))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[at:]
        else:
            chunk = draw(st.binary(min_size=1, max_size=overwrite_max))
            data[at : at + len(chunk)] = chunk
