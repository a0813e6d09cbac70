"""Number parsing and formatting with Redis's exact rules, as pure functions.

Owns:
* ``parse_int64`` — Redis's ``string2ll`` (canonical decimal, 64-bit, no ``+``,
  no leading zeros, no spaces).
* The x87 80-bit ``long double`` emulation behind INCRBYFLOAT and HINCRBYFLOAT:
  ``parse_long_double`` (glibc ``strtold`` as Redis's ``string2ld`` accepts it),
  ``round_long_double`` (nearest extended-precision value, ties to even, with
  gradual underflow), ``add_long_double`` and ``format_long_double`` (``%.17Lf``
  with trailing zeros and ``.`` stripped, ``-0`` printed as ``0``).
* ``format_long_double_g`` — ``%.17Lg`` (ZSCAN scores of skiplist zsets).

Values are exact ``Fraction``s (every extended-precision number is a dyadic
rational); infinities are the floats ``math.inf`` / ``-math.inf``.  Nothing here
knows about commands, replies or error texts: callers map ``NotAFloat`` and
``NotFinite`` to their own messages.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from dumpling import accel as _accel

LLONG_MIN = -(1 << 63)
LLONG_MAX = (1 << 63) - 1

# x87 extended precision: 64-bit significand (explicit integer bit), exponent
# range of normal numbers 2^-16382 … 2^16383, subnormals down to 2^-16445.
LD_MANTISSA_BITS = 64
LD_MIN_EXP = -16382
LD_MAX_EXP = 16383
MAX_LONG_DOUBLE_CHARS = 5 * 1024  # string2ld rejects inputs of this length or more

LongDouble = Fraction | float  # finite values are Fractions; float only for ±inf

_SPACE = frozenset(b" \t\n\r\x0b\x0c")
_DEC_RE = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_HEX_RE = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?")
_INF_RE = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)


class NotAFloat(ValueError):
    """An operand is not a number ``string2ld`` accepts; ``operand`` is its index."""

    def __init__(self, operand: int) -> None:
        super().__init__(f"operand {operand} is not a valid float")
        self.operand = operand


class NotFinite(ArithmeticError):
    """The operation would produce NaN or ±infinity (overflow included)."""


# ----------------------------------------------------------------------------- integers


def wrap_int64(value: int) -> int:
    """``value`` as C's ``(long long)`` conversion leaves it: modulo 2**64, signed.
    Redis replies every integer with ``addReplyLongLong``, so a uint64 from a payload
    (a stream's entries_added, a delivery count) or a wrapped subtraction prints signed."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value > LLONG_MAX else value


def parse_int64(text: bytes | bytearray) -> int | None:
    """Redis's ``string2ll``: the value, or None if ``text`` is not a canonical int64."""
    n = len(text)
    if n == 0 or n > 20:
        return None
    first = text[0]
    if 49 <= first <= 57:  # 1-9
        if text.isdigit():
            value = int(text)
            return value if value <= LLONG_MAX else None
        return None
    if first == 45:  # '-'
        if n > 1 and 49 <= text[1] <= 57 and text[1:].isdigit():
            value = -int(text[1:])
            return value if value >= LLONG_MIN else None
        return None
    if first == 48 and n == 1:
        return 0
    return None


# The C twin (dumpling._fastpath's, string2ll over the bytes) that every argument parser shares;
# the function above is the reference (py_parse_int64, and what DUMPLING_PURE=1 runs).
py_parse_int64 = parse_int64
if _accel.fastpath is not None and hasattr(_accel.fastpath, "parse_int64"):
    parse_int64 = _accel.fastpath.parse_int64  # noqa: F811


def index_span(start: int, end: int, n: int) -> tuple[int, int] | None:
    """Redis's inclusive index range over ``n`` elements (LRANGE, LTRIM, ZRANGE by rank,
    ZREMRANGEBYRANK): negative indexes count from the end, the start is clamped to 0 and
    the end to n-1; None when nothing is selected."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    # (not min(): a builtin called with two arguments takes CPython's slow call path, ~750
    # instructions, a tenth of an unpipelined LRANGE's own cost)
    return start, end if end < n else n - 1


# ----------------------------------------------------------------------------- long double


def round_long_double(x: Fraction) -> Fraction:
    """The nearest x87 extended-precision value to ``x`` (ties to even).

    Raises OverflowError when the result does not fit (it would be ±infinity).
    Values below the normal range round on the fixed subnormal grid (2^-16445),
    so tiny values may become 0.
    """
    return _as_fraction(*_round_ratio(x.numerator, x.denominator))


def _round_ratio(num: int, den: int) -> tuple[int, int]:
    """``num/den`` (den > 0) rounded to extended precision, as (mantissa, shift):
    the value is mantissa / 2^shift.  Raises OverflowError past the largest value."""
    if num == 0:
        return 0, 0
    negative = num < 0
    if negative:
        num = -num
    # exponent e with 2^e <= num/den < 2^(e+1)
    e = num.bit_length() - den.bit_length()
    if (num << -e if e < 0 else num) < (den << e if e > 0 else den):
        e -= 1
    if e < LD_MIN_EXP:
        e = LD_MIN_EXP
    shift = LD_MANTISSA_BITS - 1 - e  # num/den * 2^shift has 64 integer bits
    if shift >= 0:
        q = _round_half_even(num << shift, den)
    else:
        q = _round_half_even(num, den << -shift)
    if q == 1 << LD_MANTISSA_BITS:
        q >>= 1
        shift -= 1
        e += 1
    if e > LD_MAX_EXP:
        raise OverflowError("long double overflow")
    return (-q if negative else q), shift


def _as_fraction(mantissa: int, shift: int) -> Fraction:
    if shift <= 0:
        return Fraction(mantissa << -shift)
    zeros = (mantissa & -mantissa).bit_length() - 1 if mantissa else shift
    if zeros >= shift:
        return Fraction(mantissa >> shift)
    return Fraction(mantissa >> zeros, 1 << (shift - zeros))


def parse_long_double(text: bytes | bytearray) -> LongDouble | None:
    """``string2ld``: the long double ``text`` denotes, or None if Redis rejects it.

    Rejected: empty, 5120 bytes or longer, leading whitespace, trailing garbage
    (an embedded NUL included), NaN, overflow, and non-zero values that
    underflow to zero.  Accepted: decimal and hex floats (``0x1.8p3``), ``inf``
    and ``infinity`` in any case, with an optional sign.  Finite results are exact
    Fractions of extended-precision values; infinities are ``±math.inf``.
    """
    n = len(text)
    if n == 0 or n >= MAX_LONG_DOUBLE_CHARS or text[0] in _SPACE:
        return None
    m = _DEC_RE.fullmatch(text)
    if m is not None:
        sign, whole, frac, exp = m.groups()
        frac = frac or b""
        if not whole and not frac:
            return None
        return _decimal_value(sign == b"-", whole + frac, _exponent(exp) - len(frac))
    m = _HEX_RE.fullmatch(text)
    if m is not None:
        sign, whole, frac, exp = m.groups()
        frac = frac or b""
        if not whole and not frac:
            return None
        return _binary_value(sign == b"-", int(whole + frac, 16), _exponent(exp) - 4 * len(frac))
    m = _INF_RE.fullmatch(text)
    if m is not None:
        return -math.inf if m.group(1) == b"-" else math.inf
    return None


def _exponent(text: bytes | None) -> int:
    """An exponent's value, saturated at ±10^10 (far outside any finite range)."""
    if not text:
        return 0
    negative = text[0] == 45
    body = text.lstrip(b"+-").lstrip(b"0")
    if len(body) > 10:
        return -(10**10) if negative else 10**10
    value = int(body or b"0")
    return -value if negative else value


def _decimal_value(negative: bool, digits: bytes, exp10: int) -> Fraction | None:
    """int(digits) * 10^exp10 as a long double (None on overflow/underflow)."""
    digits = digits.lstrip(b"0")
    if not digits:
        return Fraction(0)
    magnitude = exp10 + len(digits) - 1  # 10^magnitude <= value < 10^(magnitude+1)
    if magnitude > 4932:  # LDBL_MAX ~ 1.19e4932
        return None
    if magnitude < -4952:  # below half the smallest subnormal (~1.8e-4951)
        return None
    mantissa = _int_from_decimal(digits)
    if exp10 >= 0:
        return _rounded(negative, mantissa * 10**exp10, 1)
    return _rounded(negative, mantissa, 10**-exp10)


def _binary_value(negative: bool, mantissa: int, exp2: int) -> Fraction | None:
    """mantissa * 2^exp2 as a long double (None on overflow/underflow)."""
    if mantissa == 0:
        return Fraction(0)
    magnitude = exp2 + mantissa.bit_length() - 1
    if magnitude > LD_MAX_EXP:
        return None
    if magnitude < LD_MIN_EXP - LD_MANTISSA_BITS:  # below half the smallest subnormal
        return None
    if exp2 >= 0:
        return _rounded(negative, mantissa << exp2, 1)
    return _rounded(negative, mantissa, 1 << -exp2)


def _rounded(negative: bool, num: int, den: int) -> Fraction | None:
    try:
        mantissa, shift = _round_ratio(num, den)
    except OverflowError:
        return None  # ERANGE with HUGE_VAL
    if mantissa == 0:
        return None  # ERANGE with a zero result
    return _as_fraction(-mantissa if negative else mantissa, shift)


def long_double_sum(a: LongDouble, b: LongDouble) -> Fraction:
    """``a + b`` in extended precision; raises NotFinite for NaN/±inf results."""
    if isinstance(a, float) or isinstance(b, float):
        raise NotFinite("increment would produce NaN or Infinity")
    # Both are dyadic: add over the common power-of-two denominator, round once.
    ad, bd = a.denominator, b.denominator
    den = ad if ad >= bd else bd
    num = a.numerator * (den // ad) + b.numerator * (den // bd)
    try:
        return _as_fraction(*_round_ratio(num, den))
    except OverflowError:
        raise NotFinite("increment would produce NaN or Infinity") from None


def add_long_double(a: bytes | bytearray, b: bytes | bytearray) -> bytes:
    """INCRBYFLOAT's arithmetic: parse both, add, format with ``%.17Lf`` rules.

    Raises ``NotAFloat(0)`` / ``NotAFloat(1)`` for an unparsable operand (``a`` is
    checked first) and ``NotFinite`` when the sum is NaN or infinite.
    """
    x = parse_long_double(a)
    if x is None:
        raise NotAFloat(0)
    y = parse_long_double(b)
    if y is None:
        raise NotAFloat(1)
    return format_long_double(long_double_sum(x, y))


def _round_half_even(num: int, den: int) -> int:
    q, r = divmod(num, den)
    twice = r << 1
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def format_long_double(value: LongDouble) -> bytes:
    """Redis's ``ld2string(LD_STR_HUMAN)``: ``%.17Lf``, trailing zeros and ``.`` removed.

    ``-0`` becomes ``0``; infinities print as ``inf`` / ``-inf``.
    """
    if isinstance(value, float):
        if math.isnan(value):
            return b"nan"
        if math.isinf(value):
            return b"inf" if value > 0 else b"-inf"
        value = Fraction(value)
    num = value.numerator
    negative = num < 0
    q = _round_half_even(abs(num) * 10**17, value.denominator)
    text = _int_to_decimal(q).rjust(18, "0").encode()
    text = (text[:-17] + b"." + text[-17:]).rstrip(b"0").rstrip(b".")
    if negative and text != b"0":
        return b"-" + text
    return text


def format_long_double_g(value: LongDouble | int) -> bytes:
    """``%.17Lg`` of a long double (a double converts exactly): 17 significant digits,
    fixed notation for decimal exponents -4…16, else ``d.ddde+XX``; trailing zeros
    removed.  ``-0.0`` prints ``-0``; infinities ``inf`` / ``-inf``; NaN ``nan``.
    """
    if isinstance(value, float):
        if math.isnan(value):
            return b"nan"
        if math.isinf(value):
            return b"inf" if value > 0 else b"-inf"
        if value == 0:
            return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    exact = Fraction(value)
    if exact == 0:
        return b"0"
    negative = exact < 0
    a = abs(exact)
    # decimal exponent X with 10^X <= a < 10^(X+1)
    x = math.floor((a.numerator.bit_length() - a.denominator.bit_length()) * _LOG10_2)
    while _pow10(x) > a:
        x -= 1
    while _pow10(x + 1) <= a:
        x += 1
    scaled = a / _pow10(x - 16)
    digits = _round_half_even(scaled.numerator, scaled.denominator)
    if digits == 10**17:
        digits //= 10
        x += 1
    text = str(digits)  # exactly 17 digits
    if -4 <= x < 17:
        if x >= 0:
            body = text[: x + 1] + "." + text[x + 1 :]
        else:
            body = "0." + "0" * (-x - 1) + text
        if "." in body:
            body = body.rstrip("0").rstrip(".")
    else:
        mantissa = (text[0] + "." + text[1:]).rstrip("0").rstrip(".")
        body = f"{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    return (("-" if negative else "") + body).encode()


# Python refuses int<->str conversions above 4300 digits; long doubles reach ~4950.
_SAFE_DIGITS = 4000
_SAFE_LIMIT = 10**_SAFE_DIGITS
_LOG10_2 = 0.30102999566398120


def _int_from_decimal(digits: bytes) -> int:
    if len(digits) <= _SAFE_DIGITS:
        return int(digits)
    half = len(digits) // 2
    return _int_from_decimal(digits[:-half]) * 10**half + _int_from_decimal(digits[-half:])


def _int_to_decimal(n: int) -> str:
    """Non-negative ``n`` in decimal, without Python's digit limit."""
    if n < _SAFE_LIMIT:
        return str(n)
    half = int(n.bit_length() * _LOG10_2) // 2
    high, low = divmod(n, 10**half)
    return _int_to_decimal(high) + _int_to_decimal(low).rjust(half, "0")


def _pow10(k: int) -> Fraction:
    return Fraction(10**k) if k >= 0 else Fraction(1, 10**-k)
