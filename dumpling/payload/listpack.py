"""Listpack blobs (§3.1): walk/validate one into Python values, and build one the way Redis does.

Readers return string entries as ``bytes`` and integer entries either as their
decimal ``bytes`` (``ints_as_bytes=True``, what hashes/sets/lists want) or as ``int``
(zset scores, stream metadata, hash TTLs).  The header checks Redis always runs are
always run; the entry-by-entry checks it runs only when sanitizing (backlen,
element count, walk ending exactly at the terminator) are enabled by ``deep``.
The forward walk itself is always bounds-checked, so even unsanitized input can't
read outside the blob.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from dumpling.payload.errors import bad_data
from dumpling.payload.primitives import parse_canonical_int

HEADER_SIZE = 6
EOF_BYTE = 0xFF
NUMELE_UNKNOWN = 65535
MAX_SAFE_SIZE = 1 << 30  # LISTPACK_MAX_SAFETY_SIZE

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_SMALL_INTS = [b"%d" % i for i in range(128)]
_BACKLEN1 = [bytes((n,)) for n in range(128)]
EMPTY = b"\x07\x00\x00\x00\x00\x00\xff"


def backlen_size(size: int) -> int:
    if size <= 127:
        return 1
    if size < 16383:
        return 2
    if size < 2097151:
        return 3
    if size < 268435455:
        return 4
    return 5


def backlen_bytes(size: int) -> bytes:
    """lpEncodeBacklen: the entry size, readable right to left, 7 bits per byte."""
    if size <= 127:
        return _BACKLEN1[size]
    if size < 16383:
        return bytes((size >> 7, (size & 127) | 128))
    if size < 2097151:
        return bytes((size >> 14, ((size >> 7) & 127) | 128, (size & 127) | 128))
    if size < 268435455:
        return bytes((size >> 21, ((size >> 14) & 127) | 128, ((size >> 7) & 127) | 128, (size & 127) | 128))
    return bytes(
        (
            size >> 28,
            ((size >> 21) & 127) | 128,
            ((size >> 14) & 127) | 128,
            ((size >> 7) & 127) | 128,
            (size & 127) | 128,
        )
    )


def _decode_backlen(blob: bytes, last: int) -> int:
    """lpDecodeBacklen reading leftwards from index ``last``; -1 if it runs over 5 bytes or the blob start."""
    value = 0
    shift = 0
    p = last
    while True:
        if p < 0:
            return -1
        b = blob[p]
        value |= (b & 127) << shift
        if not b & 128:
            return value
        shift += 7
        p -= 1
        if shift > 28:
            return -1


def check_header(blob: bytes) -> int:
    """lpValidateIntegrity(deep=0): size >= 7, header total == blob size, last byte 0xFF.  Returns numele."""
    size = len(blob)
    if size < HEADER_SIZE + 1:
        raise bad_data("listpack smaller than its header")
    if _U32.unpack_from(blob, 0)[0] != size:
        raise bad_data("listpack header size mismatch")
    if blob[size - 1] != EOF_BYTE:
        raise bad_data("listpack not terminated by 0xFF")
    return _U16.unpack_from(blob, 4)[0]


def decode(blob: bytes, deep: bool, ints_as_bytes: bool = True, check_count: bool = True) -> list:
    """All entries of a listpack, in order.

    ``deep`` adds Redis's sanitization checks: each backlen must match its entry, the
    walk must end exactly at the final 0xFF and (``check_count``) the header element
    count must be right unless it is 65535.
    """
    numele = check_header(blob)
    limit = len(blob) - 1  # index of the terminator; entries must end at or before it
    out: list = []
    append = out.append
    small = _SMALL_INTS
    pos = HEADER_SIZE
    while True:
        b = blob[pos]
        if 0x80 <= b < 0xC0 and not deep:  # 6-bit string, the common case, without backlen checks
            nxt = pos + (b & 0x3F) + 2
            if nxt > limit:
                raise bad_data("listpack entry past end")
            append(blob[pos + 1 : nxt - 1])
            pos = nxt
            continue
        if b < 0x80:  # 7-bit uint
            size = 1
            value: bytes | int = small[b] if ints_as_bytes else b
        elif b < 0xC0:  # 6-bit string
            size = 1 + (b & 0x3F)
            if pos + size > limit:
                raise bad_data("listpack entry past end")
            value = blob[pos + 1 : pos + size]
        elif b < 0xE0:  # 13-bit int
            if pos + 2 > limit:
                raise bad_data("listpack entry past end")
            u = ((b & 0x1F) << 8) | blob[pos + 1]
            v = u - 8192 if u >= 4096 else u
            size = 2
            value = (b"%d" % v) if ints_as_bytes else v
        elif b < 0xF0:  # 12-bit string
            if pos + 2 > limit:
                raise bad_data("listpack entry past end")
            n = ((b & 0x0F) << 8) | blob[pos + 1]
            size = 2 + n
            if pos + size > limit:
                raise bad_data("listpack entry past end")
            value = blob[pos + 2 : pos + size]
        elif b == 0xF0:  # 32-bit string
            if pos + 5 > limit:
                raise bad_data("listpack entry past end")
            n = _U32.unpack_from(blob, pos + 1)[0]
            size = 5 + n
            if pos + size > limit:
                raise bad_data("listpack entry past end")
            value = blob[pos + 5 : pos + size]
        elif b == EOF_BYTE:
            break
        elif b <= 0xF4:
            width = (2, 3, 4, 8)[b - 0xF1]
            size = 1 + width
            if pos + size > limit:
                raise bad_data("listpack entry past end")
            v = int.from_bytes(blob[pos + 1 : pos + size], "little", signed=True)
            value = (b"%d" % v) if ints_as_bytes else v
        else:
            raise bad_data(f"invalid listpack encoding byte 0x{b:02x}")
        nxt = pos + size + (1 if size <= 127 else backlen_size(size))
        if nxt > limit:
            raise bad_data("listpack backlen past end")
        if deep and _decode_backlen(blob, nxt - 1) != size:
            raise bad_data("listpack backlen mismatch")
        append(value)
        pos = nxt
    if deep:
        if pos != limit:
            raise bad_data("listpack terminator before end of blob")
        if check_count and numele != NUMELE_UNKNOWN and numele != len(out):
            raise bad_data("listpack element count mismatch")
    return out


def as_int(value: bytes | int) -> int | None:
    """lpGetIntegerIfValid: integer entries, or string entries spelling a canonical int64."""
    if isinstance(value, int):
        return value
    return parse_canonical_int(value)


def entry_bytes(s: bytes) -> bytes:
    """One encoded entry (encoding, data, backlen) for an element, as lpAppend writes it."""
    n = len(s)
    if 0 < n < 21 and (s[0] <= 57 and (s[0] >= 48 or s[0] == 45)):
        v = parse_canonical_int(s)
        if v is not None:
            return int_entry_bytes(v)
    if n < 64:
        return bytes((0x80 | n,)) + s + _BACKLEN1[n + 1]
    if n < 4096:
        return bytes((0xE0 | (n >> 8), n & 0xFF)) + s + backlen_bytes(n + 2)
    return b"\xf0" + _U32.pack(n) + s + backlen_bytes(n + 5)


def int_entry_bytes(v: int) -> bytes:
    """lpEncodeIntegerGetType + backlen."""
    if 0 <= v <= 127:
        return bytes((v, 1))
    if -4096 <= v <= 4095:
        u = v + 8192 if v < 0 else v
        return bytes((0xC0 | (u >> 8), u & 0xFF, 2))
    if -32768 <= v <= 32767:
        return b"\xf1" + v.to_bytes(2, "little", signed=True) + b"\x03"
    if -8388608 <= v <= 8388607:
        return b"\xf2" + v.to_bytes(3, "little", signed=True) + b"\x04"
    if -2147483648 <= v <= 2147483647:
        return b"\xf3" + v.to_bytes(4, "little", signed=True) + b"\x05"
    return b"\xf4" + v.to_bytes(8, "little", signed=True) + b"\x09"


def entry_size(s: bytes) -> int:
    """len(entry_bytes(s)) without building it (for node-size arithmetic)."""
    n = len(s)
    if 0 < n < 21 and (s[0] <= 57 and (s[0] >= 48 or s[0] == 45)):
        v = parse_canonical_int(s)
        if v is not None:
            return int_entry_size(v)
    if n < 64:
        return n + 2
    if n < 4096:
        return n + 2 + backlen_size(n + 2)
    return n + 5 + backlen_size(n + 5)


def int_entry_size(v: int) -> int:
    if 0 <= v <= 127:
        return 2
    if -4096 <= v <= 4095:
        return 3
    if -32768 <= v <= 32767:
        return 4
    if -8388608 <= v <= 8388607:
        return 5
    if -2147483648 <= v <= 2147483647:
        return 6
    return 10


def assemble(entries: bytes | bytearray, count: int) -> bytes:
    """Header + already-encoded entries + terminator."""
    total = HEADER_SIZE + len(entries) + 1
    return _U32.pack(total) + _U16.pack(min(count, NUMELE_UNKNOWN)) + bytes(entries) + b"\xff"


def encode(elements: Iterable[bytes]) -> bytes:
    """A listpack of string elements (canonical integers stored as integers, as lpAppend does)."""
    body = bytearray()
    count = 0
    small = _BACKLEN1
    for s in elements:
        n = len(s)
        if n < 64 and not (n and s[0] <= 57 and (s[0] >= 48 or s[0] == 45)):
            body.append(0x80 | n)
            body += s
            body += small[n + 1]
        else:
            body += entry_bytes(s)
        count += 1
    return assemble(body, count)


def encode_mixed(elements: Iterable[bytes | int]) -> bytes:
    """A listpack whose elements are strings or Python ints (lpAppendInteger)."""
    body = bytearray()
    count = 0
    for e in elements:
        body += int_entry_bytes(e) if isinstance(e, int) else entry_bytes(e)
        count += 1
    return assemble(body, count)
