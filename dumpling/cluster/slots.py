"""Key -> hash slot (CRC-16/XMODEM with ``{hash tags}``) and slot-range helpers.

Pure functions; ``binascii.crc_hqx`` with an initial value of 0 *is* CRC-16/XMODEM
(poly 0x1021, no reflection), so the hot path runs in C.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Iterable

CLUSTER_SLOTS = 16384
SLOT_MASK = CLUSTER_SLOTS - 1


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum Redis Cluster hashes keys with (check value 0x31C3)."""
    return crc_hqx(data, 0)


def key_slot(key: bytes) -> int:
    """The hash slot of ``key``: only the first non-empty ``{...}`` part is hashed, if any."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            return crc_hqx(key[start + 1 : end], 0) & SLOT_MASK
    return crc_hqx(key, 0) & SLOT_MASK


def slot_ranges(slots: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending slots -> maximal runs ``(first, last)``."""
    ranges: list[tuple[int, int]] = []
    start = prev = -2
    for slot in slots:
        if slot != prev + 1:
            if start >= 0:
                ranges.append((start, prev))
            start = slot
        prev = slot
    if start >= 0:
        ranges.append((start, prev))
    return ranges


def format_ranges(ranges: Iterable[tuple[int, int]]) -> list[str]:
    """Runs as CLUSTER NODES prints them: ``N`` for one slot, ``A-B`` for a run."""
    return [str(a) if a == b else f"{a}-{b}" for a, b in ranges]
