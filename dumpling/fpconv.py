"""Redis 7.2+'s text of a double: ``fpconv_dtoa`` (Grisu2) and ``d2string``, as pure functions.

Owns:
* ``fpconv_dtoa`` — deps/fpconv/fpconv_dtoa.c, step for step in 64-bit unsigned arithmetic.
  Grisu2 always round-trips but is not always the shortest form: for about one double in a
  thousand it prints a longer or a different neighbour (``-158.43262`` → ``-158.43261999999999``,
  ``1626983080611305.8`` → ``1626983080611305.7``), so ``repr`` is no substitute.
* ``d2string`` — util.c's ``d2string`` as Redis 7.2+ has it: ``nan``, ``inf``/``-inf``,
  ``0``/``-0``, integral values within ±LLONG_MAX/2 as integers (``double2ll``), everything
  else ``fpconv_dtoa``.  This is ``addReplyDouble``'s text (RESP2 bulk and RESP3 ``,``) and
  what a listpack zset stores for a non-integral score.

Must not: know about replies, commands or RDB versions (the payload codec picks the text per
target version itself).  Redis 7.0's ``%.17g`` forms are not here.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from functools import lru_cache

from dumpling import accel

_MASK64 = (1 << 64) - 1
_FRACMASK = 0x000FFFFFFFFFFFFF
_EXPMASK = 0x7FF0000000000000
_HIDDENBIT = 0x0010000000000000
_SIGNMASK = 0x8000000000000000
_EXPBIAS = 1023 + 52

_NPOWERS = 87
_STEPPOWERS = 8
_FIRSTPOWER = -348
_EXPMAX = -32
_EXPMIN = -60
_ONE_LOG_TEN = 0.30102999566398114

_TENS = [10**i for i in range(19, -1, -1)]  # tens[0] = 10^19 … tens[19] = 1, as in fpconv_dtoa.c

# Half of LLONG_MAX as a double (it rounds up to 2^62): double2ll's range.
_HALF_LLONG = float(((1 << 63) - 1) >> 1)


def _cached_power(k: int) -> tuple[int, int]:
    """10^k as fpconv_powers.h holds it: a 64-bit significand with its top bit set, rounded to
    nearest, and the binary exponent (the table's 87 rows are exactly these values)."""
    value = Fraction(10) ** k
    exp = value.numerator.bit_length() - value.denominator.bit_length() - 64
    while value >= Fraction(2) ** exp * (1 << 64):
        exp += 1
    while value < Fraction(2) ** exp * (1 << 63):
        exp -= 1
    scaled = value / Fraction(2) ** exp
    frac = int(scaled)
    if scaled - frac >= Fraction(1, 2):
        frac += 1
    if frac >> 64:
        frac >>= 1
        exp += 1
    return frac, exp


_POWERS_TEN = [_cached_power(_FIRSTPOWER + i * _STEPPOWERS) for i in range(_NPOWERS)]


def _find_cachedpow10(exp: int) -> tuple[int, int, int]:
    """find_cachedpow10: (frac, exp) of the cached power that brings ``exp`` into range, and k."""
    approx = int(-(exp + _NPOWERS) * _ONE_LOG_TEN)  # C's double → int truncates toward zero
    span = approx - _FIRSTPOWER
    idx = abs(span) // _STEPPOWERS * (1 if span >= 0 else -1)
    while True:
        frac, pexp = _POWERS_TEN[idx]
        current = exp + pexp + 64
        if current < _EXPMIN:
            idx += 1
        elif current > _EXPMAX:
            idx -= 1
        else:
            return frac, pexp, _FIRSTPOWER + idx * _STEPPOWERS


def _multiply(a_frac: int, a_exp: int, b_frac: int, b_exp: int) -> tuple[int, int]:
    """multiply(): the high 64 bits of the 128-bit product, rounded as the C code rounds."""
    lomask = 0xFFFFFFFF
    ah_bl = (a_frac >> 32) * (b_frac & lomask)
    al_bh = (a_frac & lomask) * (b_frac >> 32)
    al_bl = (a_frac & lomask) * (b_frac & lomask)
    ah_bh = (a_frac >> 32) * (b_frac >> 32)
    tmp = (ah_bl & lomask) + (al_bh & lomask) + (al_bl >> 32) + (1 << 31)
    return (ah_bh + (ah_bl >> 32) + (al_bh >> 32) + (tmp >> 32)) & _MASK64, a_exp + b_exp + 64


def _round_digit(digits: list[int], delta: int, rem: int, kappa: int, frac: int) -> None:
    """round_digit(): move the last digit down while that stays inside the interval and gets
    closer to the exact value (unsigned 64-bit wrap-around kept)."""
    while (rem < frac and ((delta - rem) & _MASK64) >= kappa
           and (((rem + kappa) & _MASK64) < frac
                or ((frac - rem) & _MASK64) > ((rem + kappa - frac) & _MASK64))):
        digits[-1] -= 1
        rem = (rem + kappa) & _MASK64


def _grisu2(bits: int) -> tuple[list[int], int]:
    """grisu2(): the digits of a finite nonzero double (given by its bits, sign ignored) and K,
    the power of ten of the last digit."""
    frac = bits & _FRACMASK
    exp = (bits & _EXPMASK) >> 52
    if exp:
        frac += _HIDDENBIT
        exp -= _EXPBIAS
    else:
        exp = -_EXPBIAS + 1

    # get_normalized_boundaries
    upper_frac = (frac << 1) + 1
    upper_exp = exp - 1
    while not upper_frac & (_HIDDENBIT << 1):
        upper_frac <<= 1
        upper_exp -= 1
    upper_frac = (upper_frac << (64 - 52 - 2)) & _MASK64
    upper_exp -= 64 - 52 - 2
    l_shift = 2 if frac == _HIDDENBIT else 1
    lower_frac = (frac << l_shift) - 1
    lower_exp = exp - l_shift
    lower_frac = (lower_frac << (lower_exp - upper_exp)) & _MASK64

    # normalize
    while not frac & _HIDDENBIT:
        frac <<= 1
        exp -= 1
    frac <<= 64 - 52 - 1
    exp -= 64 - 52 - 1

    cp_frac, cp_exp, k = _find_cachedpow10(upper_exp)
    w_frac, _ = _multiply(frac, exp, cp_frac, cp_exp)
    upper_frac, upper_exp = _multiply(upper_frac, upper_exp, cp_frac, cp_exp)
    lower_frac, _ = _multiply(lower_frac, upper_exp, cp_frac, cp_exp)
    lower_frac = (lower_frac + 1) & _MASK64
    upper_frac = (upper_frac - 1) & _MASK64
    big_k = -k

    # generate_digits
    wfrac = (upper_frac - w_frac) & _MASK64
    delta = (upper_frac - lower_frac) & _MASK64
    shift = -upper_exp
    one = 1 << shift
    part1 = upper_frac >> shift
    part2 = upper_frac & (one - 1)
    digits: list[int] = []
    kappa = 10
    for div in _TENS[10:20]:
        digit = part1 // div
        if digit or digits:
            digits.append(digit)
        part1 -= digit * div
        kappa -= 1
        tmp = (part1 << shift) + part2
        if tmp <= delta:
            _round_digit(digits, delta, tmp, (div << shift) & _MASK64, wfrac)
            return digits, big_k + kappa
    unit_index = 18
    while True:
        part2 = (part2 * 10) & _MASK64
        delta = (delta * 10) & _MASK64
        kappa -= 1
        digit = part2 >> shift
        if digit or digits:
            digits.append(digit)
        part2 &= one - 1
        if part2 < delta:
            _round_digit(digits, delta, part2, one, (wfrac * _TENS[unit_index]) & _MASK64)
            return digits, big_k + kappa
        unit_index -= 1


def _emit_digits(digits: list[int], big_k: int, neg: bool) -> str:
    """emit_digits(): plain integer, plain decimal, or d.ddde±XX as fpconv lays them out."""
    ndigits = len(digits)
    text = "".join(map(str, digits))
    exp = abs(big_k + ndigits - 1)
    if big_k >= 0 and exp < ndigits + 7:
        return text + "0" * big_k
    if big_k < 0 and (big_k > -7 or exp < 4):
        offset = ndigits - abs(big_k)
        if offset <= 0:
            return "0." + "0" * -offset + text
        return text[:offset] + "." + text[offset:]
    ndigits = min(ndigits, 18 - neg)
    out = text[0]
    if ndigits > 1:
        out += "." + text[1:ndigits]
    out += "e" + ("-" if big_k + ndigits - 1 < 0 else "+")
    cent = 0
    if exp > 99:
        cent = exp // 100
        out += str(cent)
        exp -= cent * 100
    if exp > 9:
        out += str(exp // 10)
        exp %= 10
    elif cent:
        out += "0"
    return out + str(exp)


def fpconv_dtoa(value: float) -> bytes:
    """Redis's ``fpconv_dtoa`` (7.2+): ``nan``/``inf`` after an optional ``-``, ``0``, else the
    Grisu2 digits laid out by ``emit_digits``."""
    (bits,) = struct.unpack("<Q", struct.pack("<d", value))
    return _dtoa_bits(bits)


@lru_cache(maxsize=4096)
def _dtoa_bits(bits: int) -> bytes:
    # Keyed by the bit pattern, not the float: -0.0 == 0.0 and nan != nan as dict keys.
    neg = bool(bits & _SIGNMASK)
    sign = "-" if neg else ""
    if not bits & ~_SIGNMASK:
        return (sign + "0").encode()
    if bits & _EXPMASK == _EXPMASK:
        return (sign + ("nan" if bits & _FRACMASK else "inf")).encode()
    digits, big_k = _grisu2(bits & ~_SIGNMASK)
    return (sign + _emit_digits(digits, big_k, neg)).encode()


def double_as_long_long(value: float) -> int | None:
    """``double2ll``: the integer a double equals, if it lies within ±LLONG_MAX/2."""
    if -_HALF_LLONG <= value <= _HALF_LLONG and value == int(value):
        return int(value)
    return None


def d2string(value: float) -> bytes:
    """Redis 7.2+'s ``d2string``: ``addReplyDouble``'s text and a listpack zset's score text."""
    if value != value:
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    as_long = double_as_long_long(value)
    if as_long is not None:
        return b"%d" % as_long
    return fpconv_dtoa(value)


# The Python functions above are the reference; the C twin (dumpling/_fpconv.c, our C
# translation of this module) replaces them when built, unless DUMPLING_PURE=1.  Both stay reachable for tests.
py_fpconv_dtoa = fpconv_dtoa
py_d2string = d2string
native = accel.fpconv
if native is not None:
    fpconv_dtoa = native.fpconv_dtoa  # noqa: F811
    d2string = native.d2string  # noqa: F811
