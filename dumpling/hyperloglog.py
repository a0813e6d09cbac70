"""HyperLogLog as Redis stores it: pure functions over the string value's bytes.

A HyperLogLog is an ordinary string: a 16-byte header (``HYLL``, an encoding byte,
three unused bytes, and a little-endian 64-bit cached cardinality whose top bit
marks the cache invalid) followed by 16384 six-bit registers, either *dense*
(12288 bytes, register ``i`` at bit ``6*i``, least significant bits first) or
*sparse* (run-length opcodes: ``00xxxxxx`` ZERO, ``01xxxxxx xxxxxxxx`` XZERO and
``1vvvvvxx`` VAL).  The sparse editor below is a faithful port of Redis's
``hllSparseSet`` (same opcode splits, same local merging, same promotion rule), so
the same additions produce the same bytes as Redis, and it tolerates forged input
exactly as Redis does (a truncated trailing XZERO reads the string's terminating
zero byte).

Whole-register work (histograms, merges, sparse/dense conversion) runs on
"linear" register arrays, one byte per register, built with slicing, ``translate``
and big-integer arithmetic rather than per-register Python loops.

The commands call the entry points at the end (``add_elements``, ``count_or_none``,
``merge_registers``, ``estimate_registers``), which run ``dumpling._hllgeo``'s C twins of
this code when it is loaded (``native``; ``DUMPLING_PURE=1`` or ``use_native(False)``
turns them off): the functions above stay the reference they must match byte for byte
and refusal for refusal (``tests/test_hllgeo_c.py``).

Must not: know about keys, clients or replies (``dumpling.commands.hyperloglog``
does that).
"""

from __future__ import annotations

import math
import random
import struct
from bisect import bisect_right
from types import ModuleType

from dumpling import accel

MAGIC = b"HYLL"
HEADER_SIZE = 16
P = 14
Q = 64 - P
REGISTERS = 1 << P
P_MASK = REGISTERS - 1
REGISTER_MAX = 63
DENSE_BYTES = REGISTERS * 6 // 8
DENSE_SIZE = HEADER_SIZE + DENSE_BYTES
DENSE, SPARSE = 0, 1
SEED = 0xADC83B19
ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)

SPARSE_VAL_MAX_VALUE = 32
SPARSE_VAL_MAX_LEN = 4
SPARSE_ZERO_MAX_LEN = 64
SPARSE_XZERO_MAX_LEN = 16384
# A sparse body longer than this holds more than REGISTERS opcodes (each at most two
# bytes, each covering at least one register): it cannot be valid.
SPARSE_BODY_LIMIT = 2 * REGISTERS

INVALID_HLL = "-INVALIDOBJ Corrupted HLL object detected"
NOT_HLL = "-WRONGTYPE Key is not a valid HyperLogLog string value."

U64 = (1 << 64) - 1
_M = 0xC6A4A7935BD1E995
_LLONG_MIN_BITS = 1 << 63


class CorruptHLL(Exception):
    """A sparse representation that does not cover exactly REGISTERS registers."""


# ----------------------------------------------------------------------------- hashing


def murmurhash64a(data: bytes, seed: int = SEED) -> int:
    """Redis's endian-neutral MurmurHash64A (``hyperloglog.c``)."""
    length = len(data)
    h = (seed ^ (length * _M)) & U64
    blocks = length >> 3
    if blocks:
        for k in struct.unpack_from("<%dQ" % blocks, data):
            k = (k * _M) & U64
            k ^= k >> 47
            k = (k * _M) & U64
            h ^= k
            h = (h * _M) & U64
    tail = length & 7
    if tail:
        h ^= int.from_bytes(data[length - tail :], "little")
        h = (h * _M) & U64
    h ^= h >> 47
    h = (h * _M) & U64
    h ^= h >> 47
    return h


def pattern_len(element: bytes) -> tuple[int, int]:
    """``hllPatLen``: (register index, length of the 000..1 run including the 1)."""
    h = murmurhash64a(element)
    index = h & P_MASK
    h = (h >> P) | (1 << Q)
    return index, ((h & -h).bit_length())


# ----------------------------------------------------------------------------- headers


def new_sparse() -> bytearray:
    """``createHLLObject``: an empty sparse HLL (one XZERO covering every register)."""
    hll = bytearray(MAGIC + bytes([SPARSE]) + bytes(11))
    runs = REGISTERS
    while runs:
        n = min(runs, SPARSE_XZERO_MAX_LEN)
        hll += _xzero(n)
        runs -= n
    return hll


def is_valid(value: bytes | bytearray) -> bool:
    """``isHLLObjectOrReply``'s structural checks (the caller checked the type)."""
    if len(value) < HEADER_SIZE or value[:4] != MAGIC:
        return False
    encoding = value[4]
    if encoding > SPARSE:
        return False
    return encoding != DENSE or len(value) == DENSE_SIZE


def encoding_of(hll: bytes | bytearray) -> int:
    return hll[4]


def cached_cardinality(hll: bytes | bytearray) -> int | None:
    """The cached cardinality, or None when the cache is marked invalid."""
    if hll[15] & 0x80:
        return None
    return int.from_bytes(hll[8:16], "little")


def store_cardinality(hll: bytearray, card: int) -> None:
    hll[8:16] = (card & U64).to_bytes(8, "little")


def invalidate_cache(hll: bytearray) -> None:
    hll[15] |= 0x80


# ----------------------------------------------------------------------------- dense registers


def _table(fn) -> bytes:  # type: ignore[no-untyped-def]
    return bytes(fn(i) & 0xFF for i in range(256))


_LOW6 = _table(lambda b: b & 63)
_HIGH2 = _table(lambda b: b >> 6)
_LOW4_SHL2 = _table(lambda b: (b & 15) << 2)
_HIGH4 = _table(lambda b: b >> 4)
_LOW2_SHL4 = _table(lambda b: (b & 3) << 4)
_SHR2 = _table(lambda b: b >> 2)
_LOW2_SHL6 = _table(lambda b: (b & 3) << 6)
_LOW4_SHL4 = _table(lambda b: (b & 15) << 4)
_SHL2 = _table(lambda b: b << 2)
_QUARTER = REGISTERS // 4


def _or_bytes(a: bytes, b: bytes) -> bytes:
    """Byte-wise OR of two equally long strings (no carries cross bytes)."""
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def unpack_dense(registers: bytes | bytearray) -> bytearray:
    """Dense 6-bit registers (12288 bytes) -> one byte per register (16384 bytes)."""
    b0 = bytes(registers[0:DENSE_BYTES:3])
    b1 = bytes(registers[1:DENSE_BYTES:3])
    b2 = bytes(registers[2:DENSE_BYTES:3])
    out = bytearray(REGISTERS)
    out[0::4] = b0.translate(_LOW6)
    out[1::4] = _or_bytes(b0.translate(_HIGH2), b1.translate(_LOW4_SHL2))
    out[2::4] = _or_bytes(b1.translate(_HIGH4), b2.translate(_LOW2_SHL4))
    out[3::4] = b2.translate(_SHR2)
    return out


def pack_dense(linear: bytes | bytearray) -> bytearray:
    """One byte per register (values 0..63) -> dense 6-bit registers."""
    r0 = bytes(linear[0::4])
    r1 = bytes(linear[1::4])
    r2 = bytes(linear[2::4])
    r3 = bytes(linear[3::4])
    out = bytearray(DENSE_BYTES)
    out[0::3] = _or_bytes(r0, r1.translate(_LOW2_SHL6))
    out[1::3] = _or_bytes(r1.translate(_SHR2), r2.translate(_LOW4_SHL4))
    out[2::3] = _or_bytes(r2.translate(_HIGH4), r3.translate(_SHL2))
    return out


def dense_get(hll: bytes | bytearray, index: int) -> int:
    """``HLL_DENSE_GET_REGISTER`` (the byte after the last register reads as 0)."""
    bit = index * 6
    pos = HEADER_SIZE + (bit >> 3)
    shift = bit & 7
    b1 = hll[pos + 1] if pos + 1 < len(hll) else 0
    return ((hll[pos] >> shift) | (b1 << (8 - shift))) & REGISTER_MAX


def dense_set(hll: bytearray, index: int, count: int) -> int:
    """``hllDenseSet``: raise register ``index`` to ``count``; 1 if it changed."""
    bit = index * 6
    pos = HEADER_SIZE + (bit >> 3)
    shift = bit & 7
    b1 = hll[pos + 1] if pos + 1 < len(hll) else 0
    old = ((hll[pos] >> shift) | (b1 << (8 - shift))) & REGISTER_MAX
    if count <= old:
        return 0
    word = (hll[pos] | (b1 << 8)) & ~(REGISTER_MAX << shift) | (count << shift)
    hll[pos] = word & 0xFF
    if shift > 2:
        hll[pos + 1] = word >> 8
    return 1


# ----------------------------------------------------------------------------- sparse opcodes


def _val(value: int, runlen: int) -> int:
    return 0x80 | ((value - 1) << 2) | (runlen - 1)


def _zero(runlen: int) -> bytes:
    return bytes([runlen - 1])


def _xzero(runlen: int) -> bytes:
    n = runlen - 1
    return bytes([0x40 | (n >> 8), n & 0xFF])


def _zeros(runlen: int) -> bytes:
    return _xzero(runlen) if runlen > SPARSE_ZERO_MAX_LEN else _zero(runlen)


def sparse_runs(hll: bytes | bytearray) -> list[tuple[int, int]]:
    """The sparse body as (value, run length) pairs, value 0 for ZERO/XZERO runs.

    Raises CorruptHLL for a body that cannot cover exactly REGISTERS registers."""
    end = len(hll)
    if end - HEADER_SIZE > SPARSE_BODY_LIMIT:
        raise CorruptHLL
    runs = []
    append = runs.append
    p = HEADER_SIZE
    while p < end:
        b = hll[p]
        if b & 0x80:
            append((((b >> 2) & 0x1F) + 1, (b & 3) + 1))
            p += 1
        elif b & 0x40:
            low = hll[p + 1] if p + 1 < end else 0
            append((0, (((b & 0x3F) << 8) | low) + 1))
            p += 2
        else:
            append((0, b + 1))
            p += 1
    return runs


def sparse_histogram(hll: bytes | bytearray) -> list[int]:
    """``hllSparseRegHisto``; raises CorruptHLL unless exactly REGISTERS are covered."""
    histogram = [0] * 64
    covered = 0
    for value, runlen in sparse_runs(hll):
        histogram[value] += runlen
        covered += runlen
    if covered != REGISTERS:
        raise CorruptHLL
    return histogram


_VAL_RUNS = {b: bytes((((b >> 2) & 0x1F) + 1,)) * ((b & 3) + 1) for b in range(0x80, 0x100)}


def sparse_to_linear(hll: bytes | bytearray) -> bytearray:
    """The registers of a sparse HLL, one byte each (``hllSparseToDense``'s walk).

    Raises CorruptHLL as Redis does: a VAL run crossing the end, or a total that is
    not exactly REGISTERS."""
    end = len(hll)
    if end - HEADER_SIZE > SPARSE_BODY_LIMIT:
        raise CorruptHLL
    linear = bytearray(REGISTERS)
    index = 0
    p = HEADER_SIZE
    runs = _VAL_RUNS
    while p < end:
        b = hll[p]
        if b & 0x80:
            run = runs[b]
            stop = index + len(run)
            if stop > REGISTERS:
                raise CorruptHLL
            linear[index:stop] = run
            index = stop
            p += 1
        elif b & 0x40:
            index += (((b & 0x3F) << 8) | (hll[p + 1] if p + 1 < end else 0)) + 1
            p += 2
        else:
            index += b + 1
            p += 1
    if index != REGISTERS:
        raise CorruptHLL
    return linear


def sparse_to_dense(hll: bytearray) -> None:
    """Convert in place (header, unused bytes and cached value kept); raises CorruptHLL."""
    if hll[4] == DENSE:
        return
    registers = pack_dense(sparse_to_linear(hll))
    header = bytearray(hll[:HEADER_SIZE])
    header[4] = DENSE
    hll[:] = header + registers


class SparseIndex:
    """Where each opcode of a sparse body starts, for commands that set many
    registers (multi-element PFADD, PFMERGE).

    ``firsts[i]`` is the first register covered by the opcode that body byte ``i``
    belongs to (both bytes of an XZERO share it; distinct opcodes never do, as every
    opcode covers at least one register), so the opcode covering a register is found
    by bisection instead of Redis's walk from the first opcode.  ``sparse_set`` keeps
    it in step with every edit; it is built in one pass and dropped after the command."""

    __slots__ = ("firsts",)

    def __init__(self, hll: bytes | bytearray) -> None:
        firsts: list[int] = []
        end = len(hll)
        p = HEADER_SIZE
        first = 0
        while p < end:
            b = hll[p]
            if b & 0x80:
                firsts.append(first)
                first += (b & 3) + 1
                p += 1
            elif b & 0x40:
                firsts.append(first)
                if p + 1 < end:
                    firsts.append(first)
                first += (((b & 0x3F) << 8) | (hll[p + 1] if p + 1 < end else 0)) + 1
                p += 2
            else:
                firsts.append(first)
                first += b + 1
                p += 1
        self.firsts = firsts

    def locate(self, index: int) -> tuple[int, int, int]:
        """(body position of the opcode whose first register is the last <= index,
        that first register, body position of the opcode before it or -1)."""
        firsts = self.firsts
        pos = bisect_right(firsts, index) - 1
        if pos > 0 and firsts[pos - 1] == firsts[pos]:
            pos -= 1
        prev = pos - 1
        if prev > 0 and firsts[prev - 1] == firsts[prev]:
            prev -= 1
        return pos, firsts[pos] if pos >= 0 else 0, prev


def _locate(hll: bytearray, index: int) -> tuple[int, int, int, int]:
    """Step 1 of ``hllSparseSet``, Redis's walk: the opcode covering ``index`` as
    (position, first register, span, position of the opcode before it or -1);
    position >= len(hll) when no opcode covers it."""
    end = len(hll)
    span = 0
    prev = -1
    p = HEADER_SIZE
    first = 0
    while p < end:
        b = hll[p]
        if b & 0x80:
            span = (b & 3) + 1
            oplen = 1
        elif b & 0x40:
            span = (((b & 0x3F) << 8) | (hll[p + 1] if p + 1 < end else 0)) + 1
            oplen = 2
        else:
            span = b + 1
            oplen = 1
        if index < first + span:
            break
        prev = p
        p += oplen
        first += span
    return p, first, span, prev


def _span_at(hll: bytearray, p: int) -> int:
    b = hll[p]
    if b & 0x80:
        return (b & 3) + 1
    if b & 0x40:
        return (((b & 0x3F) << 8) | (hll[p + 1] if p + 1 < len(hll) else 0)) + 1
    return b + 1


def sparse_set(hll: bytearray, index: int, count: int, max_bytes: int, opcodes: SparseIndex | None = None) -> int:
    """``hllSparseSet``: 1 if register ``index`` was raised to ``count``, 0 if it
    already was at least that, -1 for a corrupt representation.  May promote the HLL
    to dense in place (a value above 32, or growth past ``max_bytes``); ``opcodes``
    (kept up to date here) replaces the walk that finds the opcode to change."""
    if count > SPARSE_VAL_MAX_VALUE:
        return _promote(hll, index, count)
    end = len(hll)
    if opcodes is None:
        p, first, span, prev = _locate(hll, index)
    else:
        pos, first, prev_pos = opcodes.locate(index)
        p = HEADER_SIZE + pos
        prev = HEADER_SIZE + prev_pos if prev_pos >= 0 else -1
        if pos < 0:
            p = end
        span = _span_at(hll, p) if p < end else 0
        if p < end and index >= first + span:
            p = end  # past the last opcode: Redis's walk runs off the end
    if span == 0 or p >= end:
        return -1
    b = hll[p]
    is_val = bool(b & 0x80)
    is_xzero = not is_val and bool(b & 0x40)
    # Step 2: the trivial in-place updates.
    if is_val and ((b >> 2) & 0x1F) + 1 >= count:
        return 0
    if not is_xzero and span == 1:
        hll[p] = _val(count, 1)
    else:
        # General case: split the opcode into up to three.
        last = first + span - 1
        seq = bytearray()
        seq_firsts: list[int] = []
        if is_val:
            current = ((b >> 2) & 0x1F) + 1
            if index != first:
                seq.append(_val(current, index - first))
                seq_firsts.append(first)
            seq.append(_val(count, 1))
            seq_firsts.append(index)
            if index != last:
                seq.append(_val(current, last - index))
                seq_firsts.append(index + 1)
        else:
            if index != first:
                run = _zeros(index - first)
                seq += run
                seq_firsts += [first] * len(run)
            seq.append(_val(count, 1))
            seq_firsts.append(index)
            if index != last:
                run = _zeros(last - index)
                seq += run
                seq_firsts += [index + 1] * len(run)
        oldlen = 2 if is_xzero else 1
        delta = len(seq) - oldlen
        # Step 3: splice it in, or promote when the string would grow too much.
        if delta > 0 and end + delta > max_bytes:
            return _promote(hll, index, count)
        if p + oldlen < end:
            hll[p : p + oldlen] = seq
            if opcodes is not None:
                opcodes.firsts[p - HEADER_SIZE : p - HEADER_SIZE + oldlen] = seq_firsts
        else:
            # The last opcode: the string simply ends after it (for a truncated
            # XZERO Redis's new length cuts the sequence short by one byte).
            keep = end + delta - p
            hll[p:] = seq[:keep]
            if opcodes is not None:
                opcodes.firsts[p - HEADER_SIZE :] = seq_firsts[:keep]
    # Step 4: merge adjacent VAL opcodes of equal value, scanning up to five opcodes.
    end = len(hll)
    q = prev if prev >= 0 else HEADER_SIZE
    scans = 5
    while q < end and scans:
        scans -= 1
        b = hll[q]
        if not b & 0x80:
            q += 2 if b & 0x40 else 1
            continue
        if q + 1 < end and hll[q + 1] & 0x80:
            b2 = hll[q + 1]
            if (b ^ b2) & 0x7C == 0:
                runlen = (b & 3) + (b2 & 3) + 2
                if runlen <= SPARSE_VAL_MAX_LEN:
                    hll[q + 1] = _val(((b >> 2) & 0x1F) + 1, runlen)
                    del hll[q]
                    if opcodes is not None:
                        del opcodes.firsts[q + 1 - HEADER_SIZE]
                    end -= 1
                    continue
        q += 1
    hll[15] |= 0x80
    return 1


def _promote(hll: bytearray, index: int, count: int) -> int:
    try:
        sparse_to_dense(hll)
    except CorruptHLL:
        return -1
    dense_set(hll, index, count)
    return 1


def add(hll: bytearray, element: bytes, max_bytes: int, opcodes: SparseIndex | None = None) -> int:
    """``hllAdd``: 1 if a register changed, 0 if not, -1 if the HLL is corrupt."""
    index, count = pattern_len(element)
    if hll[4] == DENSE:
        return dense_set(hll, index, count)
    return sparse_set(hll, index, count, max_bytes, opcodes)


def add_all(hll: bytearray, elements: list[bytes], max_bytes: int) -> tuple[int, bool]:
    """PFADD's loop: (registers changed, whether a corrupt HLL stopped it).  Many
    elements into a sparse HLL share one opcode index instead of walking each time."""
    updated = 0
    indexed = len(elements) > 8 and hll[4] == SPARSE and len(hll) - HEADER_SIZE <= SPARSE_BODY_LIMIT
    opcodes = SparseIndex(hll) if indexed else None
    for element in elements:
        result = add(hll, element, max_bytes, opcodes if hll[4] == SPARSE else None)
        if result < 0:
            return updated, True
        updated += result
    return updated, False


# ----------------------------------------------------------------------------- counting and merging


def histogram_of_linear(linear: bytes | bytearray) -> list[int]:
    """How many registers hold each value 0..63 (stops once all are accounted for)."""
    histogram = [0] * 64
    data = bytes(linear)
    seen = 0
    total = len(data)
    for value in range(64):
        n = data.count(value.to_bytes(1, "little"))
        histogram[value] = n
        seen += n
        if seen == total:
            break
    return histogram


def histogram(hll: bytes | bytearray) -> list[int]:
    """The register histogram of a dense or sparse HLL (CorruptHLL if sparse and invalid)."""
    if hll[4] == DENSE:
        return histogram_of_linear(unpack_dense(hll[HEADER_SIZE:DENSE_SIZE]))
    return sparse_histogram(hll)


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prev = z
        z += x * y
        y += y
        if z_prev == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prev = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prev == z:
            return z / 3


def estimate(histogram: list[int]) -> int:
    """Redis's cardinality estimator (Ertl's improved estimator), as an unsigned 64-bit value.

    ``llroundl`` rounds half away from zero; a result it cannot represent (infinite or
    beyond 2^63) comes out as LLONG_MIN's bit pattern, as on x86-64 Linux."""
    m = float(REGISTERS)
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    numerator = ALPHA_INF * m * m
    if z == 0:
        return _LLONG_MIN_BITS
    e = numerator / z
    if not e < 9.223372036854775807e18:  # nan, inf and every double >= 2^63
        return _LLONG_MIN_BITS
    whole = math.floor(e)
    return whole + 1 if e - whole >= 0.5 else whole


def count(hll: bytes | bytearray) -> int:
    """``hllCount`` of one HLL; raises CorruptHLL for an invalid sparse body."""
    return estimate(histogram(hll))


def to_linear(hll: bytes | bytearray) -> bytearray:
    """The registers of a valid HLL, one byte each (CorruptHLL per ``hllMerge``)."""
    if hll[4] == DENSE:
        return unpack_dense(hll[HEADER_SIZE:DENSE_SIZE])
    return sparse_to_linear(hll)


_HIGH_BITS = int.from_bytes(b"\x80" * REGISTERS, "little")
_ALL_BITS = (1 << (8 * REGISTERS)) - 1


def max_linear(a: bytes | bytearray, b: bytes | bytearray) -> bytes:
    """Register-wise maximum of two linear arrays (values 0..127), in big-integer lanes."""
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    # (x|0x80) - y per byte lane never borrows; bit 7 stays set exactly where x >= y.
    ge = (((x | _HIGH_BITS) - y) & _HIGH_BITS) >> 7
    mask = ge * 0xFF
    return ((x & mask) | (y & (mask ^ _ALL_BITS))).to_bytes(REGISTERS, "little")


def merge_into(linear: bytes | bytearray, hll: bytes | bytearray) -> bytes:
    """``hllMerge``: the register-wise maximum of ``linear`` and ``hll``."""
    return max_linear(linear, to_linear(hll))


def dense_from_linear(header: bytes | bytearray, linear: bytes | bytearray) -> bytearray:
    """A dense HLL with ``header`` (encoding forced to dense) and these registers."""
    out = bytearray(header[:HEADER_SIZE])
    out[4] = DENSE
    return out + pack_dense(linear)


# ----------------------------------------------------------------------------- PFDEBUG DECODE


def decode_sparse(hll: bytes | bytearray) -> bytes:
    """PFDEBUG DECODE's text: ``z:<len>``, ``Z:<len>``, ``v:<value>,<len>`` separated by spaces."""
    parts = []
    end = len(hll)
    p = HEADER_SIZE
    while p < end:
        b = hll[p]
        if b & 0x80:
            parts.append(b"v:%d,%d" % (((b >> 2) & 0x1F) + 1, (b & 3) + 1))
            p += 1
        elif b & 0x40:
            low = hll[p + 1] if p + 1 < end else 0
            parts.append(b"Z:%d" % ((((b & 0x3F) << 8) | low) + 1))
            p += 2
        else:
            parts.append(b"z:%d" % (b + 1))
            p += 1
    return b" ".join(parts)


# ----------------------------------------------------------------------------- PFSELFTEST


def selftest(max_bytes: int, rng: random.Random | None = None, cycles: int = 10, adds: int = 100_000) -> str | None:
    """A reduced ``PFSELFTEST``: register packing round trips, then sparse and dense
    HLLs fed the same elements must agree and stay within six standard errors at
    each power of ten.  Returns the failure text, or None."""
    rng = rng or random.Random()
    for _ in range(cycles):
        linear = bytes(rng.getrandbits(6) for _ in range(REGISTERS))
        back = unpack_dense(pack_dense(linear))
        if back != linear:
            i = next(i for i in range(REGISTERS) if back[i] != linear[i])
            return f"TESTFAILED Register {i} should be {linear[i]} but is {back[i]}"
    dense = bytearray(MAGIC + bytes(12)) + bytearray(DENSE_BYTES)
    sparse = new_sparse()
    relerr = 1.04 / math.sqrt(REGISTERS)
    checkpoint = 1
    seed = rng.getrandbits(64)
    for j in range(1, adds + 1):
        element = struct.pack("<Q", j ^ seed)
        index, run = pattern_len(element)
        dense_set(dense, index, run)
        add(sparse, element, max_bytes)
        if j != checkpoint:
            continue
        if j < max_bytes // 2 and sparse[4] != SPARSE:
            return "TESTFAILED sparse encoding not used"
        estimate_dense = count(dense)
        if estimate_dense != count(sparse):
            return "TESTFAILED dense/sparse disagree"
        abserr = abs(checkpoint - estimate_dense)
        maxerr = 1 if j == 10 else math.ceil(relerr * 6 * checkpoint)
        if abserr > maxerr:
            return f"TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
        checkpoint *= 10
    return None


# ----------------------------------------------------------------------------- entry points


native: ModuleType | None = accel.hllgeo


def use_native(enabled: bool) -> None:
    """Switch the C twins on or off at run time (tests compare both)."""
    global native
    native = accel.hllgeo if enabled else None


def add_elements(hll: bytearray, elements: list[bytes], max_bytes: int) -> tuple[int, bool]:
    """PFADD's loop (``add_all``): (registers changed, whether a corrupt HLL stopped it)."""
    if native is not None:
        return native.hll_add(hll, elements, max_bytes)
    return add_all(hll, elements, max_bytes)


def count_or_none(hll: bytes | bytearray) -> int | None:
    """``count`` of a valid HLL, None for a corrupt sparse body."""
    if native is not None:
        return native.hll_count(hll)
    try:
        return count(hll)
    except CorruptHLL:
        return None


def new_registers() -> bytearray:
    """An all-zero register array (one byte per register) for ``merge_registers``."""
    return bytearray(REGISTERS)


def merge_registers(registers: bytearray, hll: bytes | bytearray) -> bool:
    """``hllMerge`` in place: each register the maximum of itself and ``hll``'s;
    False (``registers`` unchanged) for a corrupt sparse body."""
    if native is not None:
        return native.hll_merge(registers, hll)
    try:
        registers[:] = merge_into(registers, hll)
    except CorruptHLL:
        return False
    return True


def estimate_registers(registers: bytes | bytearray) -> int:
    """The cardinality of a register array (as ``estimate`` gives it)."""
    if native is not None:
        return native.hll_estimate(registers)
    return estimate(histogram_of_linear(registers))
