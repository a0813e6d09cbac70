"""Sizes of listpack entries, shared by the values that mirror Redis's node layouts
(sorted-set listpacks, stream nodes) to answer MEMORY USAGE and encoding limits as
Redis would.  Pure arithmetic, no imports from the rest of dumpling."""

from __future__ import annotations


def listpack_int_entry_size(value: int) -> int:
    """Bytes of a listpack integer entry, backlen included."""
    if 0 <= value <= 127:
        return 2
    if -4096 <= value <= 4095:
        return 3
    if -32768 <= value <= 32767:
        return 4
    if -8388608 <= value <= 8388607:
        return 5
    if -(1 << 31) <= value < (1 << 31):
        return 6
    return 10


def listpack_backlen_size(size: int) -> int:
    """Bytes of lpEncodeBacklen's back-length for an entry of ``size`` bytes."""
    if size <= 127:
        return 1
    if size < 16383:
        return 2
    if size < 2097151:
        return 3
    if size < 268435455:
        return 4
    return 5


def listpack_str_entry_size(length: int) -> int:
    """Bytes of a listpack string entry of ``length`` bytes, backlen included."""
    head = length + (1 if length < 64 else 2 if length < 4096 else 5)
    return head + listpack_backlen_size(head)
