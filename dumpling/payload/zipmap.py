"""Zipmap blobs (§3.4, Redis <= 2.4 hashes, type 9): read-only, always fully validated."""

from __future__ import annotations

import struct

from dumpling.payload.errors import bad_data

BIGLEN = 254
END = 255
_U32 = struct.Struct("<I")


def decode(blob: bytes) -> list[tuple[bytes, bytes]]:
    """zipmapValidateIntegrity(deep=1) plus the pairs; duplicates and empty maps refused.

    Like newer Valkey (CVE-2026-25243 fix), a 5-byte length spelling a value below 254
    is refused: no real zipmap writes one.
    """
    size = len(blob)
    if size < 2:
        raise bad_data("zipmap too small")
    if blob[size - 1] != END:
        raise bad_data("zipmap not terminated by 0xFF")
    last = size - 1
    pairs: list[tuple[bytes, bytes]] = []
    seen: set[bytes] = set()
    pos = 1
    while blob[pos] != END:
        key, pos = _read_item(blob, pos, last, with_free=False)
        value, pos = _read_item(blob, pos, last, with_free=True)
        if key in seen:
            raise bad_data("zipmap with duplicate keys")
        seen.add(key)
        pairs.append((key, value))
    if not pairs:
        raise bad_data("empty zipmap")
    if blob[0] != BIGLEN and blob[0] != len(pairs):
        raise bad_data("zipmap count mismatch")
    return pairs


def _read_item(blob: bytes, pos: int, last: int, with_free: bool) -> tuple[bytes, int]:
    if pos >= last:
        raise bad_data("zipmap entry past end")
    n = blob[pos]
    if n < BIGLEN:
        pos += 1
    else:
        if pos + 5 > last:
            raise bad_data("zipmap length past end")
        n = _U32.unpack_from(blob, pos + 1)[0]
        if n < BIGLEN:
            raise bad_data("zipmap non-minimal length")
        pos += 5
    free = 0
    if with_free:
        if pos >= last:
            raise bad_data("zipmap free byte past end")
        free = blob[pos]
        pos += 1
    if pos + n + free > last:
        raise bad_data("zipmap entry past end")
    return blob[pos : pos + n], pos + n + free
