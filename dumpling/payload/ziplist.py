"""Ziplist blobs (§3.2, Redis 2.6 - 6.2): full validation + decoding, and a writer for downlevel targets.

Redis walks every ziplist it loads (it converts them to listpacks), so the checks
here are always on: header sizes, tail offset, every prevlen, bounds and the count.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from dumpling.payload.errors import bad_data
from dumpling.payload.primitives import parse_canonical_int

HEADER_SIZE = 10
END = 0xFF
BIGLEN = 0xFE
UNKNOWN_COUNT = 0xFFFF

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_SMALL_INTS = [b"%d" % i for i in range(13)]


def decode(blob: bytes, ints_as_bytes: bool = True) -> list:
    """ziplistValidateIntegrity(deep=1) plus the entries; integers as decimal bytes or ints."""
    size = len(blob)
    if size < HEADER_SIZE + 1:
        raise bad_data("ziplist smaller than its header")
    if _U32.unpack_from(blob, 0)[0] != size:
        raise bad_data("ziplist header size mismatch")
    if blob[size - 1] != END:
        raise bad_data("ziplist not terminated by 0xFF")
    tail = _U32.unpack_from(blob, 4)[0]
    if tail > size - 1:
        raise bad_data("ziplist tail offset out of range")
    header_count = _U16.unpack_from(blob, 8)[0]
    last = size - 1  # index of the END byte: entries must finish at or before it
    out: list = []
    pos = HEADER_SIZE
    prev_size = 0
    prev_pos = -1
    while blob[pos] != END:
        start = pos
        if blob[pos] < BIGLEN:
            prevlen = blob[pos]
            pos += 1
        else:
            if pos + 5 > last:
                raise bad_data("ziplist prevlen past end")
            prevlen = _U32.unpack_from(blob, pos + 1)[0]
            pos += 5
        if prevlen != prev_size:
            raise bad_data("ziplist prevlen mismatch")
        if pos >= last:
            raise bad_data("ziplist entry header past end")
        enc = blob[pos]
        kind = enc >> 6
        value: bytes | int
        if kind == 0:
            n = enc & 0x3F
            pos += 1
        elif kind == 1:
            if pos + 2 > last:
                raise bad_data("ziplist entry header past end")
            n = ((enc & 0x3F) << 8) | blob[pos + 1]
            pos += 2
        elif kind == 2:
            if pos + 5 > last:
                raise bad_data("ziplist entry header past end")
            n = int.from_bytes(blob[pos + 1 : pos + 5], "big")
            pos += 5
        else:
            n = -1
        if n >= 0:
            if pos + n > last:
                raise bad_data("ziplist entry past end")
            value = blob[pos : pos + n]
            pos += n
        else:
            if enc == 0xC0:
                width = 2
            elif enc == 0xD0:
                width = 4
            elif enc == 0xE0:
                width = 8
            elif enc == 0xF0:
                width = 3
            elif enc == 0xFE:
                width = 1
            elif 0xF1 <= enc <= 0xFD:
                width = 0
            else:
                raise bad_data(f"invalid ziplist encoding 0x{enc:02x}")
            pos += 1
            if pos + width > last:
                raise bad_data("ziplist entry past end")
            if width:
                v = int.from_bytes(blob[pos : pos + width], "little", signed=True)
                pos += width
                value = (b"%d" % v) if ints_as_bytes else v
            else:
                v = (enc & 0x0F) - 1
                value = _SMALL_INTS[v] if ints_as_bytes else v
        out.append(value)
        prev_size = pos - start
        prev_pos = start
    if pos != size - 1:
        raise bad_data("ziplist terminator before end of blob")
    if prev_pos >= 0 and prev_pos != tail:
        raise bad_data("ziplist tail offset does not point at the last entry")
    if header_count != UNKNOWN_COUNT and header_count != len(out):
        raise bad_data("ziplist element count mismatch")
    return out


def _entry_payload(s: bytes | int) -> bytes:
    """Encoding byte(s) + data for one element, following zipTryEncoding."""
    if isinstance(s, int):
        v: int | None = s
    else:
        v = parse_canonical_int(s) if 0 < len(s) < 32 else None
    if v is not None:
        if 0 <= v <= 12:
            return bytes((0xF1 + v,))
        if -128 <= v <= 127:
            return b"\xfe" + v.to_bytes(1, "little", signed=True)
        if -32768 <= v <= 32767:
            return b"\xc0" + v.to_bytes(2, "little", signed=True)
        if -8388608 <= v <= 8388607:
            return b"\xf0" + v.to_bytes(3, "little", signed=True)
        if -2147483648 <= v <= 2147483647:
            return b"\xd0" + v.to_bytes(4, "little", signed=True)
        return b"\xe0" + v.to_bytes(8, "little", signed=True)
    assert isinstance(s, bytes)
    n = len(s)
    if n <= 0x3F:
        return bytes((n,)) + s
    if n <= 0x3FFF:
        return bytes((0x40 | (n >> 8), n & 0xFF)) + s
    return b"\x80" + n.to_bytes(4, "big") + s


def payload_size(s: bytes | int) -> int:
    """Size of an entry without its prevlen."""
    return len(_entry_payload(s))


def encode(elements: Iterable[bytes | int]) -> bytes:
    """A ziplist as Redis <= 6.2 builds it by appending ``elements`` one by one."""
    body = bytearray()
    prev_size = 0
    last_offset = HEADER_SIZE
    count = 0
    for e in elements:
        last_offset = HEADER_SIZE + len(body)
        prevlen = bytes((prev_size,)) if prev_size < BIGLEN else b"\xfe" + _U32.pack(prev_size)
        entry = prevlen + _entry_payload(e)
        body += entry
        prev_size = len(entry)
        count += 1
    total = HEADER_SIZE + len(body) + 1
    return _U32.pack(total) + _U32.pack(last_offset) + _U16.pack(min(count, UNKNOWN_COUNT)) + bytes(body) + b"\xff"


def entry_overhead(s: bytes) -> int:
    """The per-element overhead Redis 3.2-6.2's quicklist adds when sizing ziplist nodes."""
    n = len(s)
    overhead = 1 if n < 254 else 5
    if n < 64:
        overhead += 1
    elif n < 16384:
        overhead += 2
    else:
        overhead += 5
    return overhead
