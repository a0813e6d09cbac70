"""Unit tests of ``dumpling.numbers`` on its own (no server).

The long-double emulation is checked against the spec's verified vectors, exact
hand-computed values, and — when a C compiler is available — against glibc's own
``strtold`` / ``printf("%.17Lf")`` / ``printf("%.17Lg")`` on random inputs.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from dumpling.numbers import (
    LLONG_MAX,
    LLONG_MIN,
    NotAFloat,
    NotFinite,
    add_long_double,
    format_long_double,
    format_long_double_g,
    long_double_sum,
    parse_int64,
    parse_long_double,
    round_long_double,
)

# ----------------------------------------------------------------------------- parse_int64


@pytest.mark.parametrize(
    "text, value",
    [
        (b"0", 0),
        (b"1", 1),
        (b"-1", -1),
        (b"12345", 12345),
        (b"9223372036854775807", LLONG_MAX),
        (b"-9223372036854775808", LLONG_MIN),
    ],
)
def test_parse_int64_accepts(text: bytes, value: int) -> None:
    assert parse_int64(text) == value
    assert parse_int64(bytearray(text)) == value


@pytest.mark.parametrize(
    "text",
    [b"", b"+1", b"007", b"-0", b" 1", b"1 ", b"1.0", b"0x10", b"-", b"9223372036854775808",
     b"-9223372036854775809", b"123456789012345678901", b"1\x00", b"\xd9\xa1", b"00", b"--1"],
)
def test_parse_int64_rejects(text: bytes) -> None:
    assert parse_int64(text) is None


# ----------------------------------------------------------------------------- INCRBYFLOAT vectors


@pytest.mark.parametrize(
    "a, b, result",
    [
        (b"10", b"0.1", b"10.1"),
        (b"0.1", b"0.2", b"0.3"),
        (b"5", b"-5", b"0"),
        (b"1", b"1e-20", b"1"),
        (b"3.0", b"0", b"3"),
        (b"1.5e3", b"0", b"1500"),
        (b"0", b"0x10", b"16"),
        (b"-0", b"-0", b"0"),
        (b"10.5", b"0.1", b"10.6"),
        (b"5.0e3", b"2.0e2", b"5200"),
        (b"-1", b"0.5", b"-0.5"),
    ],
)
def test_add_long_double_spec_vectors(a: bytes, b: bytes, result: bytes) -> None:
    assert add_long_double(a, b) == result


def test_add_long_double_prints_every_digit_of_1e300() -> None:
    out = add_long_double(b"0", b"1e300")
    assert len(out) == 301
    # The 80-bit value nearest 1e300, printed exactly (glibc prints the binary value's digits).
    assert out.startswith(b"1000000000000000000008997324079559193870523944273290747938260082321")
    assert Fraction(int(out)) == round_long_double(Fraction(10**300))


def test_add_long_double_errors() -> None:
    with pytest.raises(NotAFloat) as err:
        add_long_double(b"abc", b"1")
    assert err.value.operand == 0
    with pytest.raises(NotAFloat) as err:
        add_long_double(b"1", b"1e")
    assert err.value.operand == 1
    for a, b in [(b"0", b"inf"), (b"inf", b"-inf"), (b"-inf", b"1"), (b"1e4932", b"1e4932")]:
        with pytest.raises(NotFinite):
            add_long_double(a, b)


# ----------------------------------------------------------------------------- parse_long_double


@pytest.mark.parametrize(
    "text",
    [b"", b" 1", b"\t1", b"1 ", b"nan", b"-nan", b"NaN", b"nan(1)", b"infin", b"1e", b"1e+", b".", b"+", b"-",
     b"e5", b"0x", b"0x.p1", b"0xg", b"1.5.5", b"1\x00", b"1e99999", b"1e-99999", b"1e99999999999999999999",
     b"0x1p16384", b"0x1p-16446", b"1.8e-4951", b"0." + b"1" * 5118, b"1,5"],
)
def test_parse_long_double_rejects(text: bytes) -> None:
    assert parse_long_double(text) is None


@pytest.mark.parametrize(
    "text, value",
    [
        (b"0", Fraction(0)),
        (b"-0", Fraction(0)),
        (b"1", Fraction(1)),
        (b"+1", Fraction(1)),
        (b".5", Fraction(1, 2)),
        (b"5.", Fraction(5)),
        (b"1.5e3", Fraction(1500)),
        (b"0x10", Fraction(16)),
        (b"0X1.8p1", Fraction(3)),
        (b"-0x.8", Fraction(-1, 2)),
        (b"0e99999999999999999999", Fraction(0)),  # zero never overflows
        (b"0x1p-16445", Fraction(1, 2**16445)),  # the smallest subnormal
        (b"0x1.8p-16446", Fraction(1, 2**16445)),  # rounds up to it
        (b"0." + b"1" * 5117, round_long_double(Fraction((10**5117 - 1) // 9, 10**5117))),  # longest accepted
    ],
)
def test_parse_long_double_exact_values(text: bytes, value: Fraction) -> None:
    assert parse_long_double(text) == value


def test_parse_long_double_infinities() -> None:
    for text in (b"inf", b"+INF", b"Infinity", b"+infinity"):
        assert parse_long_double(text) == math.inf
    assert parse_long_double(b"-inf") == -math.inf


def test_parse_long_double_rounds_to_64_bit_significand() -> None:
    # 0.1 is not a double: the 80-bit value is closer to 1/10 than the 64-bit one.
    ld = parse_long_double(b"0.1")
    assert isinstance(ld, Fraction)
    assert abs(ld - Fraction(1, 10)) < abs(Fraction(0.1) - Fraction(1, 10))
    assert ld.denominator == 2**67
    # 2^64 + 1 needs 65 bits: the tie rounds to even (2^64); 2^64 + 3 rounds up to 2^64 + 4.
    assert parse_long_double(b"18446744073709551617") == 2**64
    assert parse_long_double(b"18446744073709551619") == 2**64 + 4


def test_round_long_double_overflow_and_underflow() -> None:
    largest = Fraction((2**64 - 1) * 2 ** (16383 - 63))
    assert round_long_double(largest) == largest
    with pytest.raises(OverflowError):
        round_long_double(largest + Fraction(2 ** (16383 - 64)))  # halfway to 2^16384 rounds up
    assert round_long_double(Fraction(1, 2**16446)) == 0  # exactly half the smallest subnormal: to even
    assert round_long_double(Fraction(3, 2**16447)) == Fraction(1, 2**16445)


def test_long_double_sum() -> None:
    assert long_double_sum(Fraction(1), Fraction(2)) == 3
    with pytest.raises(NotFinite):
        long_double_sum(math.inf, Fraction(1))


# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    "value, text",
    [
        (Fraction(0), b"0"),
        (Fraction(-1, 10**20), b"0"),  # rounds to -0.000…, printed as 0
        (Fraction(3, 2), b"1.5"),
        (Fraction(-3, 2), b"-1.5"),
        (Fraction(123), b"123"),
        (Fraction(1, 3), b"0.33333333333333333"),
        (Fraction(5, 10**18), b"0"),  # exactly half of the last digit: ties to even
        (Fraction(15, 10**18), b"0.00000000000000002"),
        (math.inf, b"inf"),
        (-math.inf, b"-inf"),
        (math.nan, b"nan"),
    ],
)
def test_format_long_double(value: Fraction | float, text: bytes) -> None:
    assert format_long_double(value) == text


def test_format_long_double_huge_values_do_not_hit_python_digit_limit() -> None:
    largest = Fraction((2**64 - 1) * 2 ** (16383 - 63))
    text = format_long_double(largest)
    assert len(text) == 4933 and text.startswith(b"11897314953572317650")


@pytest.mark.parametrize(
    "value, text",
    [
        (0.1, b"0.10000000000000001"),
        (1.0, b"1"),
        (-0.0, b"-0"),
        (0.0, b"0"),
        (1e17, b"1e+17"),
        (1e16, b"10000000000000000"),
        (123456789012345678.0, b"1.2345678901234568e+17"),
        (0.0001, b"0.0001"),
        (0.00001, b"1.0000000000000001e-05"),
        (5e-324, b"4.9406564584124654e-324"),
        (1.5, b"1.5"),
        (-2.5e-300, b"-2.5e-300"),
        (math.inf, b"inf"),
        (-math.inf, b"-inf"),
        (math.nan, b"nan"),
    ],
)
def test_format_long_double_g(value: float, text: bytes) -> None:
    assert format_long_double_g(value) == text


# ----------------------------------------------------------------------------- glibc oracle

_ORACLE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <ctype.h>
/* Reads "P <text>" (parse like string2ld, print the exact value),
   "A <a>\t<b>" (INCRBYFLOAT arithmetic and formatting), "G <double>" (%.17Lg). */
static int accept(const char *s, long double *out) {
    char buf[5120]; char *end; size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, s, n + 1);
    errno = 0;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end || (size_t)(end - buf) != n) return 0;
    if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) return 0;
    if (errno == EINVAL || isnan(v)) return 0;
    *out = v; return 1;
}
static void exact(long double v) {
    if (isinf(v)) { puts(v > 0 ? "inf" : "-inf"); return; }
    if (v == 0) { puts("0 0"); return; }
    int e; long double m = frexpl(fabsl(v), &e);
    printf("%s%llu %d\n", v < 0 ? "-" : "", (unsigned long long)ldexpl(m, 64), e - 64);
}
static char line[20000], out[20000];
int main(void) {
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        char *a = line + 2, *b = strchr(a, '\t');
        if (b) *b++ = 0;
        long double x, y;
        if (line[0] == 'P') {
            if (accept(a, &x)) exact(x); else puts("ERR");
        } else if (line[0] == 'A') {
            if (!accept(a, &x) || !accept(b, &y)) { puts("ERR"); continue; }
            x += y;
            if (isnan(x) || isinf(x)) { puts("NONFINITE"); continue; }
            int l = snprintf(out, sizeof out, "%.17Lf", x);
            while (out[l - 1] == '0') l--;
            if (out[l - 1] == '.') l--;
            out[l] = 0;
            puts(l == 2 && out[0] == '-' && out[1] == '0' ? "0" : out);
        } else {
            printf("%.17Lg\n", (long double)strtod(a, NULL));
        }
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def glibc_oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler for the glibc long double oracle")
    import platform

    if platform.machine() not in ("x86_64", "AMD64", "i686"):
        pytest.skip("the oracle needs x87 80-bit long double")
    work = tmp_path_factory.mktemp("ldoracle")
    (work / "oracle.c").write_text(_ORACLE_C)
    subprocess.run([compiler, "-O1", "-o", str(work / "oracle"), str(work / "oracle.c"), "-lm"], check=True)
    return work / "oracle"


def _random_number(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return repr(rng.uniform(-1e6, 1e6)).encode()
    if kind < 0.45:
        return b"%d" % rng.randint(-(10**19), 10**19)
    if kind < 0.55:
        return b"%.*fe%d" % (rng.randint(0, 25), rng.uniform(-10, 10), rng.randint(-4960, 4940))
    if kind < 0.7:
        digits = "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(rng.randint(0, 22)))
        text = rng.choice(["", "-", "+"]) + rng.choice(["0x", "0X"]) + digits
        if rng.random() < 0.5:
            text += "." + "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(0, 5)))
        if rng.random() < 0.6:
            text += rng.choice("pP") + rng.choice(["", "-", "+"]) + str(rng.randint(0, 16500))
        return text.encode()
    if kind < 0.8:
        return rng.choice([b"inf", b"-inf", b"nan", b"1e", b".", b"-.5", b"5.", b"00012", b"-0", b"1.5E3",
                           b"0x1p-16445", b"0x1p-16446", b"0x1p16383", b"0x1p16384", b"3.6e-4951", b"1.9e-4951",
                           b"1.18973149535723176502e+4932", b"1.18973149535723176508e+4932"])
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
    cut = rng.randint(0, len(digits))
    return (rng.choice(["", "-"]) + digits[:cut] + "." + digits[cut:]).encode()


def _exact_text(value: Fraction | float | None) -> bytes:
    if value is None:
        return b"ERR"
    if isinstance(value, float):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"0 0"
    magnitude = abs(value)
    e = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** e > magnitude:
        e -= 1
    mantissa = magnitude / Fraction(2) ** (e - 63)
    assert mantissa.denominator == 1
    return (b"-" if value < 0 else b"") + b"%d %d" % (mantissa.numerator, e - 63)


def test_against_glibc(glibc_oracle: Path) -> None:
    rng = random.Random(20240607)
    lines: list[bytes] = []
    expected: list[bytes] = []
    for _ in range(1500):
        a, b = _random_number(rng), _random_number(rng)
        lines.append(b"P " + a)
        expected.append(_exact_text(parse_long_double(a)))
        lines.append(b"A " + a + b"\t" + b)
        try:
            expected.append(add_long_double(a, b))
        except NotAFloat:
            expected.append(b"ERR")
        except NotFinite:
            expected.append(b"NONFINITE")
        d = rng.choice([rng.uniform(-1e20, 1e20), rng.uniform(-1, 1) * 10 ** rng.randint(-310, 308),
                        float(rng.randint(-(10**6), 10**6)), 5e-324])
        lines.append(b"G " + repr(d).encode())
        expected.append(format_long_double_g(d))
    result = subprocess.run([str(glibc_oracle)], input=b"\n".join(lines) + b"\n", capture_output=True, check=True)
    got = result.stdout.split(b"\n")[: len(expected)]
    mismatches = [(line, ours, libc) for line, ours, libc in zip(lines, expected, got, strict=True) if ours != libc]
    assert not mismatches, mismatches[:5]
