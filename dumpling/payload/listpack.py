"""Listpack blobs (§3.1): walk/validate one into Python values, and build one the way Redis does.

Readers return string entries as ``bytes`` and integer entries either as their
decimal ``bytes`` (``ints_as_bytes=True``, what hashes/sets/lists want) or as ``int``
(zset scores, stream metadata, hash TTLs).  The header checks Redis always runs are
always run; the entry-by-entry checks it runs only when sanitizing (backlen,
element count, walk ending exactly at the terminator) are enabled by ``deep``.
The forward walk itself is always bounds-checked, so even unsanitized input can't
read outside the blob.

The hot operations (``decode``, ``decode_hash``, ``count_entries``, ``encode``,
``encode_mixed``, ``encode_dict``, ``entry_size``, ``entry_sizes``, ``node_cuts``, and
``quicklist.write_body``'s whole list bodies) run in C when
``dumpling.payload._listpack`` is built and neither ``DUMPLING_PURE`` nor
``DUMPLING_PURE_PAYLOAD`` is set; the ``*_py`` functions (and ``quicklist``'s loop for
``node_cuts``) are the pure-Python reference it must match byte for byte, value for
value and refusal for refusal.  ``use_native(flag)`` switches at run time (tests
compare both).
"""

from __future__ import annotations

import re
import struct
from bisect import bisect_left
from collections.abc import Iterable
from itertools import repeat
from operator import add
from types import ModuleType

from dumpling.accel import PURE_PAYLOAD
from dumpling.datatypes.sizes import listpack_backlen_size as backlen_size
from dumpling.datatypes.sizes import listpack_int_entry_size as int_entry_size
from dumpling.datatypes.sizes import listpack_str_entry_size
from dumpling.payload.bulk import odd_elements
from dumpling.payload.errors import bad_data
from dumpling.payload.primitives import c_strtod_prefix, parse_canonical_int

HEADER_SIZE = 6
EOF_BYTE = 0xFF
NUMELE_UNKNOWN = 65535
MAX_SAFE_SIZE = 1 << 30  # LISTPACK_MAX_SAFETY_SIZE

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_SMALL_INTS = [b"%d" % i for i in range(128)]
_SMALL_VALUES = list(range(128))
_BACKLEN1 = [bytes((n,)) for n in range(128)]
EMPTY = b"\x07\x00\x00\x00\x00\x00\xff"

native: ModuleType | None = None  # dumpling.payload._listpack while it is in use


def use_native(enabled: bool) -> bool:
    """Use the C codec (if it can be imported) or the pure-Python one; returns whether C is now in use."""
    global native
    native = None
    if enabled:
        try:
            from dumpling.payload import _listpack
        except ImportError:
            return False
        native = _listpack
    return native is not None


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
    if native is not None and type(blob) is bytes:  # (slices of other buffers are not bytes)
        return native.decode(blob, deep, ints_as_bytes, check_count)
    return decode_py(blob, deep, ints_as_bytes, check_count)


def decode_py(blob: bytes, deep: bool, ints_as_bytes: bool = True, check_count: bool = True) -> list:
    """``decode`` in pure Python (the reference for the C walk)."""
    numele = check_header(blob)
    limit = len(blob) - 1  # index of the terminator; entries must end at or before it
    out: list = []
    append = out.append
    small = _SMALL_INTS if ints_as_bytes else _SMALL_VALUES
    pos = HEADER_SIZE
    if not deep:
        # Small ints and 6-bit strings inlined.  An entry running past the terminator
        # leaves ``pos`` beyond the blob, so the next read fails: one check for all.
        try:
            while True:
                b = blob[pos]
                if b < 0x80:
                    append(small[b])
                    pos += 2
                elif b < 0xC0:
                    nxt = pos + b - 126
                    append(blob[pos + 1 : nxt - 1])
                    pos = nxt
                elif b == EOF_BYTE:
                    return out
                else:
                    value, pos = _entry(blob, pos, b, limit, False, ints_as_bytes)
                    append(value)
        except IndexError:
            raise bad_data("listpack entry past end") from None
    while True:
        b = blob[pos]
        if b == EOF_BYTE:
            break
        value, pos = _entry(blob, pos, b, limit, True, ints_as_bytes)
        append(value)
    if pos != limit:
        raise bad_data("listpack terminator before end of blob")
    if check_count and numele != NUMELE_UNKNOWN and numele != len(out):
        raise bad_data("listpack element count mismatch")
    return out


def decode_hash(blob: bytes, deep: bool) -> dict[bytes, bytes]:
    """The fields of a hash listpack (field, value, field, value, ...) as a dict.

    ``decode(blob, deep)``'s checks, then: an odd number of entries is refused; a
    repeated field keeps its first value (what a listpack lookup finds) and is refused
    when ``deep`` (Redis's sanitizer checks for duplicates).
    """
    if native is not None and type(blob) is bytes:
        return native.decode_hash(blob, deep)
    return decode_hash_py(blob, deep)


def decode_hash_py(blob: bytes, deep: bool) -> dict[bytes, bytes]:
    """``decode_hash`` in pure Python (the reference for the C one)."""
    return hash_from_elements(decode_py(blob, deep), deep)


def hash_from_elements(elements: list[bytes], deep_dups: bool) -> dict[bytes, bytes]:
    """Alternating fields and values as a dict; see ``decode_hash`` (ziplists use it too)."""
    if len(elements) % 2:
        raise bad_data("hash blob with an odd number of entries")
    pairs = iter(elements)
    fields = dict(zip(pairs, pairs, strict=False))  # even length checked above
    if len(fields) * 2 != len(elements):
        if deep_dups:
            raise bad_data("hash with duplicate fields")
        fields = {}
        for i in range(0, len(elements), 2):
            fields.setdefault(elements[i], elements[i + 1])
    return fields


def zset_pairs(blob: bytes, deep: bool) -> list[tuple[bytes, float]]:
    """A sorted-set listpack's (member, score) pairs, in listpack order.

    ``decode(blob, deep, ints_as_bytes=False)``'s checks, then ``zset_pairs_from_elements``'s:
    integer members become their decimal text, string scores are read as ``zzlGetScore``
    reads them, an odd number of entries or a NaN score is refused."""
    if native is not None and type(blob) is bytes:
        return native.zset_pairs(blob, deep)
    return zset_pairs_py(blob, deep)


def zset_pairs_py(blob: bytes, deep: bool) -> list[tuple[bytes, float]]:
    """``zset_pairs`` in pure Python (the reference for the C one)."""
    return zset_pairs_from_elements(decode_py(blob, deep, ints_as_bytes=False))


def score_of_entry(entry: bytes | int) -> float:
    """zzlGetScore: integer entries as is, strings through strtod of at most 127 bytes (0 if unparsable)."""
    if isinstance(entry, int):
        return float(entry)
    score = c_strtod_prefix(entry[:127])
    return 0.0 if score is None else score


def zset_pairs_from_elements(elements: list) -> list[tuple[bytes, float]]:
    """Alternating members and scores (entries of a listpack or ziplist) as (member, score) pairs."""
    if len(elements) % 2:
        raise bad_data("sorted set blob with an odd number of entries")
    pairs = []
    for i in range(0, len(elements), 2):
        member = elements[i]
        score = score_of_entry(elements[i + 1])
        if score != score:
            raise bad_data("zset with NaN score")
        pairs.append((member if isinstance(member, bytes) else b"%d" % member, score))
    return pairs


def _entry(blob: bytes, pos: int, b: int, limit: int, deep: bool, ints_as_bytes: bool) -> tuple[bytes | int, int]:
    """The entry at ``pos`` (first byte ``b``, not the terminator) and where the next one starts."""
    if b < 0x80:  # 7-bit uint
        size = 1
        value: bytes | int = _SMALL_INTS[b] if ints_as_bytes else b
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
    return value, nxt


# ---------------------------------------------------------------------------
# counting entries at regex speed
#
# RESTORE of a big list keeps the node listpacks as they are (see ``packedlist``)
# but must still refuse every blob the walk above refuses, and know how many
# entries each holds.  A Python walk costs ~100 ns per entry; ``re`` walks a
# listpack made of the common entry kinds in C.  The grammar is *strict*: every
# backlen must be the one Redis writes and the entries must be exactly ``numele``,
# tiling the blob up to the terminator - that is, what the deep walk accepts.  A blob
# it does not cover (12/32-bit strings, a wrong count, anything odd) goes through
# ``decode`` as before, so the answer and the refusals are exactly the walk's.
#
# ``re`` has no counter to read back, so a count N is matched as the sum of its
# binary digits: ``(?:entry){2**bit}`` for each set bit, each match starting where
# the previous ended (entries are prefix-free, so the parse is unique).  An
# alternation is tried in order, so patterns come in "families" that try first the
# entry kind a hint names (``entry_kind``: the most common first entry of a list's
# nodes); each pattern is compiled on first use (~0.7 ms).

# (compiled with DOTALL: "." is any byte)
_INT_ENTRIES = (
    rb"[\x00-\x7f]\x01",
    rb"[\xc0-\xdf].\x02",
    rb"\xf1.{2}\x03",
    rb"\xf2.{3}\x04",
    rb"\xf3.{4}\x05",
    rb"\xf4.{8}\x09",
)
INT_KIND = 64  # entry kinds: 0..63 = 6-bit string of that length, 64.. = _INT_ENTRIES[kind - 64]
_counted: dict[tuple[int, int], re.Pattern[bytes]] = {}


def entry_kind(first: int) -> int:
    """The entry kind an encoding byte starts (anything the fast grammar lacks counts as uint)."""
    if first < 0x80:
        return INT_KIND
    if first < 0xC0:
        return first & 0x3F
    if first < 0xE0:
        return INT_KIND + 1
    if 0xF1 <= first <= 0xF4:
        return INT_KIND + 2 + first - 0xF1
    return INT_KIND


def _string_entry(n: int) -> bytes:
    """A 6-bit string entry of length ``n``: header, data, one-byte backlen ``n + 1``."""
    data = rb".{%d}" % n if n else b""
    return re.escape(bytes((0x80 | n,))) + data + re.escape(bytes((n + 1,)))


def _alternatives(first_kind: int) -> list[bytes]:
    """Every entry of the fast grammar, ``first_kind`` first, then its neighbours."""
    ints = list(range(len(_INT_ENTRIES)))
    if first_kind >= INT_KIND:
        ints.remove(first_kind - INT_KIND)
        strings = list(range(64))
        return [
            _INT_ENTRIES[first_kind - INT_KIND],
            *(_INT_ENTRIES[k] for k in ints),
            *(_string_entry(n) for n in strings),
        ]
    strings = [first_kind]
    for step in range(1, 64):
        strings += [n for n in (first_kind - step, first_kind + step) if 0 <= n < 64]
    return [*(_string_entry(n) for n in strings), *(_INT_ENTRIES[k] for k in ints)]


def _counted_pattern(kind: int, bit: int) -> re.Pattern[bytes]:
    pattern = _counted.get((kind, bit))
    if pattern is None:
        entry = b"(?:" + b"|".join(_alternatives(kind)) + b")"
        pattern = _counted[kind, bit] = re.compile(entry + b"{%d}" % (1 << bit), re.DOTALL)
    return pattern


def _tiles_strictly(blob: bytes, numele: int, kind: int) -> bool:
    """Exactly ``numele`` strictly encoded entries fill the blob up to its terminator."""
    end = len(blob) - 1
    pos = HEADER_SIZE
    while numele:
        low = numele & -numele
        m = _counted_pattern(kind, low.bit_length() - 1).match(blob, pos, end)
        if m is None:
            return False
        pos = m.end()
        numele ^= low
    return pos == end


# An entry's fixed bytes, as (offset, the byte values allowed there), and its total size,
# for entries whose size the first byte(s) decide.  Entries of one such shape repeat
# at a fixed stride, so a strided slice holds each fixed byte of all of them.
_ANY_UINT7 = bytes(range(0x80))
_ANY_INT13 = bytes(range(0xC0, 0xE0))
_FIXED_INTS = {0xF1: 4, 0xF2: 5, 0xF3: 6, 0xF4: 10}


def _entry_shape(blob: bytes, pos: int) -> tuple[int, list[tuple[int, bytes]]] | None:
    b = blob[pos]
    if b < 0x80:
        return 2, [(0, _ANY_UINT7), (1, b"\x01")]
    if b < 0xC0:
        n = b & 0x3F
        return n + 2, [(0, bytes((b,))), (n + 1, bytes((n + 1,)))]
    if b < 0xE0:
        return 3, [(0, _ANY_INT13), (2, b"\x02")]
    if b < 0xF0 and pos + 1 < len(blob):
        n = ((b & 0x0F) << 8) | blob[pos + 1]
        back = backlen_bytes(n + 2)
        return n + 2 + len(back), [(0, bytes((b,))), (1, bytes((blob[pos + 1],)))] + [
            (n + 2 + i, bytes((c,))) for i, c in enumerate(back)
        ]
    if b in _FIXED_INTS:
        size = _FIXED_INTS[b]
        return size, [(0, bytes((b,))), (size - 1, bytes((size - 1,)))]
    return None


def _uniform(blob: bytes, numele: int) -> bool:
    """The blob is ``numele`` entries of its first entry's shape, strictly encoded."""
    shape = _entry_shape(blob, HEADER_SIZE)
    if shape is None:
        return False
    size, fixed = shape
    if len(blob) - HEADER_SIZE - 1 != numele * size:
        return False
    span = numele * size
    for offset, allowed in fixed:
        start = HEADER_SIZE + offset
        if blob[start : start + span : size].lstrip(allowed):
            return False
    return True


def count_entries(blob: bytes, deep: bool, kind: int | None = None) -> int:
    """``len(decode(blob, deep))`` - the same count and the same refusals - without
    building the entries when the blob is strictly well formed.  ``kind`` (see
    ``entry_kind``) says which entries to expect most; default: the blob's first."""
    if native is not None and type(blob) is bytes:
        return native.count(blob, deep)
    numele = check_header(blob)
    if numele != NUMELE_UNKNOWN and numele:
        if _uniform(blob, numele):
            return numele
        if kind is None:
            kind = entry_kind(blob[HEADER_SIZE])
        if _tiles_strictly(blob, numele, kind):
            return numele
    return len(decode(blob, deep))


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
    if native is not None:
        size = native.entry_size(s)
        if size is not None:  # None: not bytes or bytearray
            return size
    n = len(s)
    if 0 < n < 21 and (s[0] <= 57 and (s[0] >= 48 or s[0] == 45)):
        v = parse_canonical_int(s)
        if v is not None:
            return int_entry_size(v)
    return n + 2 if n < 64 else listpack_str_entry_size(n)


def assemble(entries: bytes | bytearray, count: int) -> bytes:
    """Header + already-encoded entries + terminator."""
    total = HEADER_SIZE + len(entries) + 1
    return _U32.pack(total) + _U16.pack(min(count, NUMELE_UNKNOWN)) + bytes(entries) + b"\xff"


# ---------------------------------------------------------------------------
# encoding many elements at C speed
#
# Most elements are short strings that cannot be integers: their entry is just
# ``0x80|n, data, n+1``.  ``map``/slice assignment/``join`` build those without a
# Python-level step per element; only the others ("odd": a first byte that may
# start a canonical integer, or 64+ bytes) go through ``entry_bytes`` one by one.

_STRING_HEADER = [bytes((0x80 | n,)) for n in range(64)]
_STRING_BACKLEN = [bytes((n + 1,)) for n in range(64)]


def encode(elements: Iterable[bytes]) -> bytes:
    """A listpack of string elements (canonical integers stored as integers, as lpAppend does)."""
    items = elements if type(elements) is list else list(elements)
    if native is not None:
        blob = native.encode(items)
        if blob is not None:  # None: an element that is not bytes/bytearray, or over 4 GiB
            return blob
    return encode_py(items)


def encode_dict(fields: dict[bytes, bytes]) -> bytes:
    """The listpack of a hash: each field, then its value, in dict order."""
    if native is not None:
        blob = native.encode_dict(fields)
        if blob is not None:  # None: not an exact dict of bytes/bytearray, or over 4 GiB
            return blob
    return encode_dict_py(fields)


def encode_dict_py(fields: dict[bytes, bytes]) -> bytes:
    """``encode_dict`` in pure Python (the reference for the C encoder)."""
    return encode_py([x for pair in fields.items() for x in pair])


def encode_py(elements: Iterable[bytes]) -> bytes:
    """``encode`` in pure Python (the reference for the C encoder)."""
    items = elements if type(elements) is list else list(elements)
    if len(items) < 64:
        return _encode_each(items)  # setting up the C-speed path costs more than it saves
    lens = list(map(len, items))
    return encode_known(items, lens, odd_elements(items, lens, 64), 0, len(items))


def encode_known(items: list[bytes], lens: list[int], odd: list[int], start: int, stop: int) -> bytes:
    """The listpack of ``items[start:stop]``, given every element's length and the
    sorted odd indexes (``odd_elements(items, lens, 64)``; those outside are ignored)."""
    odd = odd[bisect_left(odd, start) : bisect_left(odd, stop)]
    if len(odd) * 4 > stop - start:
        return _encode_each(items[start:stop])  # mostly integers or long strings
    parts: list[bytes] = [b""]
    total = HEADER_SIZE + 1
    at = start
    for i in odd:
        if at < i:
            total += _short_strings(parts, items, lens, at, i)
        entry = entry_bytes(items[i])
        parts.append(entry)
        total += len(entry)
        at = i + 1
    if at < stop:
        total += _short_strings(parts, items, lens, at, stop)
    parts[0] = _U32.pack(total) + _U16.pack(min(stop - start, NUMELE_UNKNOWN))
    parts.append(b"\xff")
    return b"".join(parts)


_NONZERO = re.compile(rb"[^\x00]")


def _short_strings(parts: list[bytes], items: list[bytes], lens: list[int], start: int, stop: int) -> int:
    """Append the entries of ``items[start:stop]`` (all short non-numeric strings); their size."""
    k = stop - start
    seg = bytes(lens[start:stop])  # every length is < 64
    if k > 1:
        shifted = int.from_bytes(seg[1:], "big") ^ int.from_bytes(seg[:-1], "big")
        changes = k - 1 - shifted.to_bytes(k - 1, "big").count(0)
    else:
        changes = 0
    if changes * 8 < k:
        # Runs of equal length: an entry boundary is a constant separator, so join does it.
        at = start
        ends = [start + m.end() for m in _NONZERO.finditer(shifted.to_bytes(k - 1, "big"))] if changes else []
        for end in (*ends, stop):
            n = lens[at]
            parts.append(_STRING_HEADER[n])
            parts.append((_STRING_BACKLEN[n] + _STRING_HEADER[n]).join(items[at:end]))
            parts.append(_STRING_BACKLEN[n])
            at = end
    else:
        chunk: list[bytes] = [b""] * (3 * k)
        chunk[0::3] = map(_STRING_HEADER.__getitem__, seg)
        chunk[1::3] = items[start:stop]
        chunk[2::3] = map(_STRING_BACKLEN.__getitem__, seg)
        parts += chunk
    return sum(seg) + 2 * k


def entry_sizes(items: list[bytes], lens: list[int], odd: Iterable[int]) -> list[int]:
    """``[entry_size(s) for s in items]`` given lengths and odd indexes (see ``encode_known``)."""
    if native is not None:
        computed = native.entry_sizes(items)  # (from the elements alone)
        if computed is not None:
            return computed
    sizes = list(map(add, lens, repeat(2)))
    for i in odd:
        sizes[i] = entry_size(items[i])
    return sizes


def node_cuts(
    items: list[bytes], limit: int, large: int, listpack_phase: bool
) -> list[tuple[int, int, int, int]] | None:
    """``quicklist._pack_by_size``'s node decisions computed in C: ``(start, stop, plain,
    size)`` per node.  None without the C codec, or for input it does not take."""
    if native is None:
        return None
    return native.pack_by_size(items, limit, large, listpack_phase)


def _encode_each(items: list[bytes]) -> bytes:
    """``encode`` one element at a time (short lists, or mostly integers and long strings)."""
    parts: list[bytes] = [b""]
    add = parts.append
    header, backlen = _STRING_HEADER, _STRING_BACKLEN
    size = HEADER_SIZE + 1
    for s in items:
        n = len(s)
        if n < 64 and not (n and s[0] <= 57 and (s[0] >= 48 or s[0] == 45)):
            add(header[n])
            add(s)
            add(backlen[n])
            size += n + 2
        else:
            entry = entry_bytes(s)
            add(entry)
            size += len(entry)
    parts[0] = _U32.pack(size) + _U16.pack(min(len(items), NUMELE_UNKNOWN))
    add(b"\xff")
    return b"".join(parts)


def encode_mixed(elements: Iterable[bytes | int]) -> bytes:
    """A listpack whose elements are strings or Python ints (lpAppendInteger)."""
    items = elements if type(elements) is list else list(elements)
    if native is not None:
        blob = native.encode_mixed(items)
        if blob is not None:  # None: another element type, an int outside int64, over 4 GiB
            return blob
    return encode_mixed_py(items)


def encode_mixed_py(elements: Iterable[bytes | int]) -> bytes:
    """``encode_mixed`` in pure Python (the reference for the C encoder)."""
    body = bytearray()
    count = 0
    for e in elements:
        body += int_entry_bytes(e) if isinstance(e, int) else entry_bytes(e)
        count += 1
    return assemble(body, count)


use_native(not PURE_PAYLOAD)
