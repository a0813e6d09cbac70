"""Intset blobs (§3.3, type 11): validation, decoding and Redis's writer (sorted, narrowest width)."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from dumpling.payload.errors import bad_data

_HEADER = struct.Struct("<II")
_FORMATS = {2: "h", 4: "i", 8: "q"}


def decode(blob: bytes, deep: bool) -> list[int]:
    """intsetValidateIntegrity: width 2/4/8, size == 8 + n*width, n > 0; deep: strictly ascending."""
    if len(blob) < 8:
        raise bad_data("intset smaller than its header")
    width, count = _HEADER.unpack_from(blob, 0)
    fmt = _FORMATS.get(width)
    if fmt is None:
        raise bad_data(f"invalid intset encoding {width}")
    if 8 + count * width != len(blob):
        raise bad_data("intset size mismatch")
    if count == 0:
        raise bad_data("empty intset")
    values = list(struct.unpack_from(f"<{count}{fmt}", blob, 8))
    if deep:
        for i in range(1, count):
            if values[i] <= values[i - 1]:
                raise bad_data("intset not strictly ascending")
    return values


def encode(values: Iterable[int]) -> bytes:
    ordered = sorted(set(values))
    lo = ordered[0] if ordered else 0
    hi = ordered[-1] if ordered else 0
    if -32768 <= lo and hi <= 32767:
        width = 2
    elif -2147483648 <= lo and hi <= 2147483647:
        width = 4
    else:
        width = 8
    return _HEADER.pack(width, len(ordered)) + struct.pack(f"<{len(ordered)}{_FORMATS[width]}", *ordered)
