"""RDB primitives shared by every object type: lengths, rdbStrings (INT8/16/32, LZF, raw), doubles, times.

Readers take ``(buf, pos, end)`` and return ``(value, new_pos)``; they never read at or
past ``end`` and raise ``PayloadError`` on anything malformed.  Writers append to a
``bytearray`` and follow Redis's writer rules exactly, so output is byte-identical.
No knowledge of object types lives here.
"""

from __future__ import annotations

import math
import re
import struct

from dumpling.fpconv import fpconv_dtoa  # Redis 7.2+'s score text (re-exported for the codec)
from dumpling.numbers import parse_int64 as parse_canonical_int  # string2ll / lpStringToInt64
from dumpling.payload import compression
from dumpling.payload.errors import bad_data

MASK64 = (1 << 64) - 1

# rdbLen first-byte forms (§2.1).
LEN_32BIT = 0x80
LEN_64BIT = 0x81
# rdbString special encodings (§2.2).
ENC_INT8 = 0xC0
ENC_INT16 = 0xC1
ENC_INT32 = 0xC2
ENC_LZF = 0xC3

# String doubles (type 3 scores): length byte markers.
DOUBLE_NAN = 253
DOUBLE_POS_INF = 254
DOUBLE_NEG_INF = 255

_I16 = struct.Struct("<h")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_U32BE = struct.Struct(">I")
_U64BE = struct.Struct(">Q")

_LEN6 = [bytes((n,)) for n in range(64)]


# ---------------------------------------------------------------------------
# integers as strings


def int_to_bytes(v: int) -> bytes:
    return b"%d" % v


# ---------------------------------------------------------------------------
# lengths


def read_len(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """rdbLoadLen.  An ``11xxxxxx`` byte yields its low 6 bits, as Redis's callers see it."""
    if pos >= end:
        raise bad_data("length past end of payload")
    b = buf[pos]
    kind = b >> 6
    if kind == 0 or kind == 3:
        return b & 0x3F, pos + 1
    if kind == 1:
        if pos + 2 > end:
            raise bad_data("14-bit length past end of payload")
        return ((b & 0x3F) << 8) | buf[pos + 1], pos + 2
    if b == LEN_32BIT:
        if pos + 5 > end:
            raise bad_data("32-bit length past end of payload")
        return _U32BE.unpack_from(buf, pos + 1)[0], pos + 5
    if b == LEN_64BIT:
        if pos + 9 > end:
            raise bad_data("64-bit length past end of payload")
        return _U64BE.unpack_from(buf, pos + 1)[0], pos + 9
    raise bad_data(f"unknown length encoding 0x{b:02x}")


def read_count(buf: bytes, pos: int, end: int, min_item_size: int = 1) -> tuple[int, int]:
    """A collection count, refused if the bytes left cannot possibly hold that many items."""
    n, pos = read_len(buf, pos, end)
    if n * min_item_size > end - pos:
        raise bad_data(f"count {n} larger than the payload")
    return n, pos


def append_len(out: bytearray, n: int) -> None:
    """rdbSaveLen: the shortest of the 6/14/32/64-bit forms."""
    if n < 0x40:
        out.append(n)
    elif n < 0x4000:
        out.append(0x40 | (n >> 8))
        out.append(n & 0xFF)
    elif n <= 0xFFFFFFFF:
        out.append(LEN_32BIT)
        out += _U32BE.pack(n)
    else:
        out.append(LEN_64BIT)
        out += _U64BE.pack(n & MASK64)


def len_bytes(n: int) -> bytes:
    out = bytearray()
    append_len(out, n)
    return bytes(out)


# ---------------------------------------------------------------------------
# strings


def read_string(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """rdbGenericLoadStringObject: raw, INT8/16/32 (as decimal text) or LZF."""
    if pos >= end:
        raise bad_data("string past end of payload")
    b = buf[pos]
    if b < 0x40:
        nxt = pos + 1 + b
        if nxt > end:
            raise bad_data("string past end of payload")
        return buf[pos + 1 : nxt], nxt
    if b < 0xC0:
        n, pos = read_len(buf, pos, end)
        if n > end - pos:
            raise bad_data(f"string length {n} past end of payload")
        return buf[pos : pos + n], pos + n
    if b == ENC_INT8:
        if pos + 2 > end:
            raise bad_data("INT8 past end of payload")
        v = buf[pos + 1]
        return b"%d" % (v - 256 if v > 127 else v), pos + 2
    if b == ENC_INT16:
        if pos + 3 > end:
            raise bad_data("INT16 past end of payload")
        return b"%d" % _I16.unpack_from(buf, pos + 1)[0], pos + 3
    if b == ENC_INT32:
        if pos + 5 > end:
            raise bad_data("INT32 past end of payload")
        return b"%d" % _I32.unpack_from(buf, pos + 1)[0], pos + 5
    if b == ENC_LZF:
        clen, pos = read_len(buf, pos + 1, end)
        ulen, pos = read_len(buf, pos, end)
        if clen > end - pos:
            raise bad_data("LZF data past end of payload")
        try:
            data = compression.decompress(buf[pos : pos + clen], ulen)
        except compression.LzfError as exc:
            raise bad_data(f"invalid LZF compressed string: {exc}") from None
        return data, pos + clen
    raise bad_data(f"unknown RDB string encoding 0x{b:02x}")


def append_string(out: bytearray, s: bytes, compress: bool = True) -> None:
    """rdbSaveRawString: INTn for short canonical int32 text, else LZF if > 20 bytes and it saves 4, else raw."""
    n = len(s)
    if n <= 11 and n and (s[0] <= 57 and (s[0] >= 48 or s[0] == 45)):
        v = parse_canonical_int(s)
        if v is not None and -(1 << 31) <= v < (1 << 31):
            append_int_encoded(out, v)
            return
    if compress and n > 20:
        packed = compression.compress_for_rdb(bytes(s))
        if packed is not None:
            out.append(ENC_LZF)
            append_len(out, len(packed))
            append_len(out, n)
            out += packed
            return
    if n < 64:
        out.append(n)
    else:
        append_len(out, n)
    out += s


def append_int_encoded(out: bytearray, v: int) -> None:
    """rdbEncodeInteger for a value already known to fit int32."""
    if -128 <= v <= 127:
        out.append(ENC_INT8)
        out.append(v & 0xFF)
    elif -32768 <= v <= 32767:
        out.append(ENC_INT16)
        out += _I16.pack(v)
    else:
        out.append(ENC_INT32)
        out += _I32.pack(v)


# ---------------------------------------------------------------------------
# fixed-width values


def read_millis(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """rdbLoadMillisecondTime: signed int64, little-endian."""
    if pos + 8 > end:
        raise bad_data("millisecond time past end of payload")
    return _I64.unpack_from(buf, pos)[0], pos + 8


def millis_bytes(ms: int) -> bytes:
    return _I64.pack(ms)


def read_binary_double(buf: bytes, pos: int, end: int) -> tuple[float, int]:
    if pos + 8 > end:
        raise bad_data("binary double past end of payload")
    return _F64.unpack_from(buf, pos)[0], pos + 8


def binary_double_bytes(v: float) -> bytes:
    return _F64.pack(v)


def read_u64be(buf: bytes, pos: int) -> int:
    return _U64BE.unpack_from(buf, pos)[0]


def u64be_bytes(v: int) -> bytes:
    return _U64BE.pack(v)


# ---------------------------------------------------------------------------
# text doubles

# What C's strtod/sscanf("%lg") consume: leading space, then the longest float prefix.
_C_FLOAT_PREFIX = re.compile(
    rb"[ \t\n\v\f\r]*"
    rb"([+-]?(?:"
    rb"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    rb"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?"
    rb"))"
)


def c_strtod_prefix(s: bytes) -> float | None:
    """The double C's strtod parses from the start of ``s`` (NUL ends the text), or None if none."""
    s = s.split(b"\0", 1)[0]
    m = _C_FLOAT_PREFIX.match(s)
    if m is None:
        return None
    text = m.group(1)
    body = text.lstrip(b"+-")
    negative = text.startswith(b"-")
    if body[:2] in (b"0x", b"0X"):
        digits = body.decode("ascii")
        if "p" not in digits.lower():
            digits += "p0"
        try:
            value = float.fromhex(digits)
        except OverflowError:  # strtod: HUGE_VAL for what is too large to represent
            value = math.inf
    elif body[:1] in (b"i", b"I"):
        value = math.inf
    elif body[:1] in (b"n", b"N"):
        value = math.nan
    else:
        value = float(body)
    return -value if negative else value


def read_string_double(buf: bytes, pos: int, end: int) -> tuple[float, int]:
    """rdbLoadDoubleValue (type 3 scores): length byte (253 NaN, 254 +inf, 255 -inf) then sscanf %lg text."""
    if pos >= end:
        raise bad_data("string double past end of payload")
    n = buf[pos]
    if n == DOUBLE_NEG_INF:
        return -math.inf, pos + 1
    if n == DOUBLE_POS_INF:
        return math.inf, pos + 1
    if n == DOUBLE_NAN:
        return math.nan, pos + 1
    if pos + 1 + n > end:
        raise bad_data("string double past end of payload")
    value = c_strtod_prefix(buf[pos + 1 : pos + 1 + n])
    if value is None:
        raise bad_data("unparsable string double")
    return value, pos + 1 + n


def append_string_double(out: bytearray, v: float) -> None:
    """rdbSaveDoubleValue as Redis <= 7.0 writes it (integral values as integers, else %.17g)."""
    if math.isnan(v):
        out.append(DOUBLE_NAN)
        return
    if math.isinf(v):
        out.append(DOUBLE_NEG_INF if v < 0 else DOUBLE_POS_INF)
        return
    if -4503599627370495.0 < v < 4503599627370496.0 and v == int(v):
        text = b"%d" % int(v)
    else:
        text = b"%.17g" % v
    out.append(len(text))
    out += text


def score_fits_long(v: float) -> int | None:
    """Redis >= 7.0 double2ll: the integer a score is stored as inside a listpack, if any."""
    if math.isnan(v) or v < -4611686018427387903.0 or v > 4611686018427387903.0:
        return None
    i = int(v)
    return i if i == v else None


def score_text(v: float, rdb_version: int) -> bytes:
    """How a non-integral zset score is spelled inside a listpack/ziplist for a target version.

    <= 6.2 (RDB <= 9): %.17g; 7.0 (RDB 10): %.17g; >= 7.2 (RDB >= 11, Valkey): fpconv (Grisu2).
    """
    if math.isinf(v):
        return b"-inf" if v < 0 else b"inf"
    if math.isnan(v):
        return b"nan"
    if v == 0:
        return b"-0" if math.copysign(1.0, v) < 0 else b"0"
    if rdb_version <= 10:
        return b"%.17g" % v
    return fpconv_dtoa(v)


def legacy_score_integer(v: float) -> int | None:
    """Redis <= 6.2 d2string's integer shortcut (|v| < 2^52), used for ziplist zset scores."""
    if -4503599627370495.0 < v < 4503599627370496.0 and v == int(v):
        return int(v)
    return None
