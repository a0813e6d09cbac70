/* dumpling._fpconv: the C twin of dumpling/fpconv.py (Redis 7.2+'s text of a double).
 *
 * dumpling/fpconv.py stays the reference; this file is a translation of it, step for
 * step, into C, and must give the same bytes for every double (tests/test_fpconv.py
 * compares the two bit pattern by bit pattern).
 *
 *   fpconv_dtoa(value) -> bytes   "nan"/"inf" after an optional "-", "0"/"-0", else
 *                                 the Grisu2 digits in fpconv's layout
 *   d2string(value) -> bytes      "nan", "inf"/"-inf", "0"/"-0", integral values within
 *                                 +-LLONG_MAX/2 as integers, else fpconv_dtoa
 *   cached_powers() -> list       the table of scaled powers of ten built at import, as
 *                                 (significand, binary exponent) pairs; only for the tests
 *                                 (fpconv._POWERS_TEN must be equal to it)
 *
 * The algorithm is Grisu2 from Florian Loitsch, "Printing Floating-Point Numbers Quickly
 * and Accurately with Integers" (PLDI 2010).  In short: a finite double v owns the
 * interval of reals halfway to its two neighbours, and any decimal inside it reads back
 * as v.  Both ends of that interval and v itself are written as 64-bit integers times a
 * power of two, then multiplied by an approximation of a power of ten, picked so that
 * the product's binary exponent lies in [-60, -32].  With that exponent the scaled upper
 * end splits into an integral part below 2^32 and a fixed-point fraction, and its
 * decimal digits come out of plain 64-bit division and multiplication by ten.  The
 * interval is first narrowed by one unit at each end to cover the error of the
 * approximate multiplication, so every digit string the generator can stop at is safe.
 * Digits are produced from the upper end downwards until the part not yet printed fits
 * inside the interval; the last digit is then lowered while that stays inside the
 * interval and brings the number closer to v.  The result is always a round-trip form,
 * not always the shortest one (the reference's docstring has examples).
 *
 * The powers of ten are not typed in: init_powers() builds each of them from the exact
 * integer 5^|k| (10^k = 5^k * 2^k), the same rounding _cached_power applies with
 * Fractions.  Arithmetic that the reference masks to 64 bits is plain uint64_t here,
 * whose wrap-around is the same thing.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#define FRAC_MASK 0x000FFFFFFFFFFFFFULL
#define EXP_MASK 0x7FF0000000000000ULL
#define HIDDEN_BIT 0x0010000000000000ULL
#define SIGN_MASK 0x8000000000000000ULL
#define EXP_BIAS (1023 + 52)

#define POWER_COUNT 87
#define POWER_STEP 8
#define POWER_FIRST (-348)
#define TARGET_EXP_MAX (-32)
#define TARGET_EXP_MIN (-60)
#define LOG10_OF_2 0.30102999566398114

/* Room for the digits Grisu2 produces (17 at most for a double; the cap only guards
 * the buffer) and for the longest layout of them. */
#define MAX_DIGITS 40
#define TEXT_SIZE 96

/* 10^0 .. 10^19: all the powers of ten a uint64_t holds. */
static const uint64_t POW10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
    10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
    100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
};

/* 10^(POWER_FIRST + i * POWER_STEP) ~= significand * 2^exponent, significand in [2^63, 2^64). */
typedef struct {
    uint64_t significand;
    int exponent;
} scaled_power;

static scaled_power powers[POWER_COUNT];

/* ------------------------------------------------------------------ building the table */

/* An unsigned integer of up to 1024 bits, little-endian 32-bit limbs (5^348 needs 809). */
#define BIG_LIMBS 32

typedef struct {
    uint32_t limb[BIG_LIMBS];
} big_uint;

static void
big_set(big_uint *n, uint32_t value)
{
    memset(n->limb, 0, sizeof(n->limb));
    n->limb[0] = value;
}

static void
big_multiply_small(big_uint *n, uint32_t factor)
{
    uint64_t carry = 0;
    for (int i = 0; i < BIG_LIMBS; i++) {
        uint64_t product = (uint64_t)n->limb[i] * factor + carry;
        n->limb[i] = (uint32_t)product;
        carry = product >> 32;
    }
}

static void
big_double(big_uint *n)
{
    uint32_t carry = 0;
    for (int i = 0; i < BIG_LIMBS; i++) {
        uint32_t top = n->limb[i] >> 31;
        n->limb[i] = (n->limb[i] << 1) | carry;
        carry = top;
    }
}

static int
big_compare(const big_uint *a, const big_uint *b)
{
    for (int i = BIG_LIMBS - 1; i >= 0; i--) {
        if (a->limb[i] != b->limb[i])
            return a->limb[i] < b->limb[i] ? -1 : 1;
    }
    return 0;
}

/* a -= b, where a >= b. */
static void
big_subtract(big_uint *a, const big_uint *b)
{
    uint64_t borrow = 0;
    for (int i = 0; i < BIG_LIMBS; i++) {
        uint64_t difference = (uint64_t)a->limb[i] - b->limb[i] - borrow;
        a->limb[i] = (uint32_t)difference;
        borrow = (difference >> 32) & 1;
    }
}

static int
big_bit(const big_uint *n, int index)
{
    return (n->limb[index / 32] >> (index % 32)) & 1;
}

static int
big_bit_length(const big_uint *n)
{
    for (int i = BIG_LIMBS - 1; i >= 0; i--) {
        if (n->limb[i]) {
            int length = 32 * i;
            for (uint32_t top = n->limb[i]; top; top >>= 1)
                length++;
            return length;
        }
    }
    return 0;
}

/* 10^k rounded to a 64-bit significand (to nearest, halves up) and its binary exponent. */
static scaled_power
exact_power_of_ten(int k)
{
    int m = k < 0 ? -k : k;
    big_uint five_m;
    big_set(&five_m, 1);
    for (int i = 0; i < m; i++)
        big_multiply_small(&five_m, 5);
    int length = big_bit_length(&five_m);

    uint64_t significand = 0;
    int exponent, round_up;
    if (k >= 0) {
        /* 10^k = 5^k * 2^k: the top 64 bits of 5^k, and the bit below them. */
        if (length <= 64) {
            for (int i = length - 1; i >= 0; i--)
                significand = (significand << 1) | (uint64_t)big_bit(&five_m, i);
            significand <<= 64 - length;
            round_up = 0;
        } else {
            for (int i = length - 1; i >= length - 64; i--)
                significand = (significand << 1) | (uint64_t)big_bit(&five_m, i);
            round_up = big_bit(&five_m, length - 65);
        }
        exponent = k + length - 64;
    } else {
        /* 10^k = 2^k / 5^m with 2^(length-1) < 5^m < 2^length (5^m is odd and > 1), so
         * 2^(64+length) / 5^m lies in (2^64, 2^65): its 65 integral bits, found by long
         * division one bit at a time, are the significand and the rounding bit. */
        big_uint remainder;
        big_set(&remainder, 1);
        unsigned __int128 quotient = 0;
        for (int i = 0; i < 64 + length; i++) {
            big_double(&remainder);
            quotient <<= 1;
            if (big_compare(&remainder, &five_m) >= 0) {
                big_subtract(&remainder, &five_m);
                quotient |= 1;
            }
        }
        significand = (uint64_t)(quotient >> 1);
        round_up = (int)(quotient & 1);
        exponent = -(63 + length) - m;
    }
    if (round_up) {
        significand++;
        if (significand == 0) { /* rounded up to 2^64 */
            significand = 1ULL << 63;
            exponent++;
        }
    }
    scaled_power power = {significand, exponent};
    return power;
}

static void
init_powers(void)
{
    for (int i = 0; i < POWER_COUNT; i++)
        powers[i] = exact_power_of_ten(POWER_FIRST + i * POWER_STEP);
}

/* ------------------------------------------------------------------ Grisu2 */

/* The high 64 bits of a * b, the dropped low half rounded in (half up). */
static inline uint64_t
multiply_high(uint64_t a, uint64_t b)
{
    unsigned __int128 product = (unsigned __int128)a * b + (1ULL << 63);
    return (uint64_t)(product >> 64);
}

/* The table row whose power moves a number with binary exponent `exponent` (a 64-bit
 * significand) into [TARGET_EXP_MIN, TARGET_EXP_MAX]; its decimal exponent goes to *k.
 * The first guess comes from log10(2); the loop fixes it by a row when it is off. */
static const scaled_power *
choose_power(int exponent, int *k)
{
    int guess = (int)(-(exponent + POWER_COUNT) * LOG10_OF_2);
    int index = (guess - POWER_FIRST) / POWER_STEP;
    for (;;) {
        int scaled = exponent + powers[index].exponent + 64;
        if (scaled < TARGET_EXP_MIN)
            index++;
        else if (scaled > TARGET_EXP_MAX)
            index--;
        else
            break;
    }
    *k = POWER_FIRST + index * POWER_STEP;
    return &powers[index];
}

/* Lower the last digit by one `unit` at a time while the printed number stays inside
 * the interval (rest is what lies between it and the upper end, width the interval's
 * size) and gets closer to v (which is `target` below the upper end). */
static void
move_toward_value(char *digits, int count, uint64_t width, uint64_t rest, uint64_t unit,
                  uint64_t target)
{
    if (count == 0)
        return;
    while (rest < target && width - rest >= unit
           && (rest + unit < target || target - rest > rest + unit - target)) {
        digits[count - 1]--;
        rest += unit;
    }
}

/* The digits (as ASCII) of a finite nonzero double given by its bits, sign ignored;
 * returns their count and puts in *last_exp the power of ten of the last digit. */
static int
grisu2_digits(uint64_t bits, char *digits, int *last_exp)
{
    uint64_t frac = bits & FRAC_MASK;
    int exp = (int)((bits & EXP_MASK) >> 52);
    if (exp) {
        frac += HIDDEN_BIT;
        exp -= EXP_BIAS;
    } else {
        exp = -EXP_BIAS + 1;
    }

    /* Upper end of the interval, (2 frac + 1) * 2^(exp - 1), with its top bit at 63. */
    uint64_t upper = (frac << 1) + 1;
    int upper_exp = exp - 1;
    while (!(upper & (HIDDEN_BIT << 1))) {
        upper <<= 1;
        upper_exp--;
    }
    upper <<= 64 - 52 - 2;
    upper_exp -= 64 - 52 - 2;

    /* Lower end, (2 frac - 1) * 2^(exp - 1), or a quarter step when frac is a power of
     * two (the neighbour below is closer), brought to the upper end's exponent. */
    int lower_shift = frac == HIDDEN_BIT ? 2 : 1;
    uint64_t lower = (frac << lower_shift) - 1;
    int lower_exp = exp - lower_shift;
    lower <<= lower_exp - upper_exp;

    /* v itself, top bit at 63 (its exponent is not needed any more). */
    while (!(frac & HIDDEN_BIT))
        frac <<= 1;
    frac <<= 64 - 52 - 1;

    int k;
    const scaled_power *power = choose_power(upper_exp, &k);
    uint64_t value = multiply_high(frac, power->significand);
    upper = multiply_high(upper, power->significand);
    upper_exp += power->exponent + 64;
    lower = multiply_high(lower, power->significand);
    /* Each product may be off by one unit: keep only what is surely inside. */
    lower++;
    upper--;
    int decimal_exp = -k;

    uint64_t target = upper - value; /* how far v lies below the upper end */
    uint64_t width = upper - lower;
    int shift = -upper_exp; /* 32 .. 60 */
    uint64_t one = 1ULL << shift;
    uint64_t integral = upper >> shift; /* below 2^32 */
    uint64_t fraction = upper & (one - 1);
    int count = 0;
    int kappa = 10;

    /* Digits of the integral part, from 10^9 down. */
    for (int power10 = 9; power10 >= 0; power10--) {
        uint64_t divisor = POW10[power10];
        uint64_t digit = integral / divisor;
        if ((digit || count) && count < MAX_DIGITS)
            digits[count++] = (char)('0' + digit);
        integral -= digit * divisor;
        kappa--;
        uint64_t rest = (integral << shift) + fraction;
        if (rest <= width) {
            move_toward_value(digits, count, width, rest, divisor << shift, target);
            *last_exp = decimal_exp + kappa;
            return count;
        }
    }

    /* Digits of the fraction: multiply by ten, the digit is what crosses the point.
     * The error of `target` grows by ten with each digit as well. */
    int scale = 1;
    for (;;) {
        fraction *= 10;
        width *= 10;
        kappa--;
        uint64_t digit = fraction >> shift;
        if ((digit || count) && count < MAX_DIGITS)
            digits[count++] = (char)('0' + digit);
        fraction &= one - 1;
        if (fraction < width) {
            move_toward_value(digits, count, width, fraction, one, target * POW10[scale % 20]);
            *last_exp = decimal_exp + kappa;
            return count;
        }
        scale++;
    }
}

/* fpconv's layout of `count` digits whose last one is worth 10^last_exp: an integer
 * (up to seven trailing zeros), a plain decimal (for small negative exponents), or
 * d.ddd followed by e, a sign and the exponent.  Returns the length written. */
static int
lay_out(char *out, const char *digits, int count, int last_exp, int negative)
{
    int exp = last_exp + count - 1;
    if (exp < 0)
        exp = -exp;
    char *p = out;

    if (last_exp >= 0 && exp < count + 7) {
        memcpy(p, digits, count);
        p += count;
        memset(p, '0', last_exp);
        return (int)(p - out) + last_exp;
    }
    if (last_exp < 0 && (last_exp > -7 || exp < 4)) {
        int point = count + last_exp; /* digits before the decimal point */
        if (point <= 0) {
            *p++ = '0';
            *p++ = '.';
            memset(p, '0', -point);
            p += -point;
            memcpy(p, digits, count);
            p += count;
        } else {
            memcpy(p, digits, point);
            p += point;
            *p++ = '.';
            memcpy(p, digits + point, count - point);
            p += count - point;
        }
        return (int)(p - out);
    }

    /* Exponent form: at most 18 characters of digits and sign together, cut, not rounded. */
    int kept = count < 18 - negative ? count : 18 - negative;
    *p++ = digits[0];
    if (kept > 1) {
        *p++ = '.';
        memcpy(p, digits + 1, kept - 1);
        p += kept - 1;
    }
    *p++ = 'e';
    *p++ = last_exp + kept - 1 < 0 ? '-' : '+';
    int hundreds = 0;
    if (exp > 99) {
        hundreds = exp / 100;
        *p++ = (char)('0' + hundreds);
        exp -= hundreds * 100;
    }
    if (exp > 9) {
        *p++ = (char)('0' + exp / 10);
        exp %= 10;
    } else if (hundreds) {
        *p++ = '0';
    }
    *p++ = (char)('0' + exp);
    return (int)(p - out);
}

/* fpconv_dtoa of the double with these bits; returns the length written to out. */
static int
dtoa_bits(uint64_t bits, char *out)
{
    int negative = (bits & SIGN_MASK) != 0;
    char *p = out;
    if (negative)
        *p++ = '-';
    if (!(bits & ~SIGN_MASK)) {
        *p++ = '0';
        return (int)(p - out);
    }
    if ((bits & EXP_MASK) == EXP_MASK) {
        memcpy(p, (bits & FRAC_MASK) ? "nan" : "inf", 3);
        return (int)(p - out) + 3;
    }
    char digits[MAX_DIGITS];
    int last_exp;
    int count = grisu2_digits(bits & ~SIGN_MASK, digits, &last_exp);
    return (int)(p - out) + lay_out(p, digits, count, last_exp, negative);
}

static uint64_t
bits_of(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof(bits));
    return bits;
}

/* Decimal text of an integer; returns the length written. */
static int
format_integer(long long value, char *out)
{
    char reversed[24];
    int length = 0;
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value
                                             : (unsigned long long)value;
    do {
        reversed[length++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    char *p = out;
    if (value < 0)
        *p++ = '-';
    while (length)
        *p++ = reversed[--length];
    return (int)(p - out);
}

/* d2string: the special values, double2ll's integers, else fpconv_dtoa. */
static int
d2string_text(double value, char *out)
{
    /* LLONG_MAX / 2 as a double rounds up to 2^62, as in the reference's _HALF_LLONG. */
    const double half_llong = (double)(LLONG_MAX / 2);
    if (value != value) {
        memcpy(out, "nan", 3);
        return 3;
    }
    if (value == 0) {
        if (bits_of(value) & SIGN_MASK) {
            memcpy(out, "-0", 2);
            return 2;
        }
        out[0] = '0';
        return 1;
    }
    if (value >= -half_llong && value <= half_llong) {
        long long whole = (long long)value;
        if ((double)whole == value)
            return format_integer(whole, out);
    }
    /* Infinities fall through here: fpconv_dtoa prints them as "inf" and "-inf". */
    return dtoa_bits(bits_of(value), out);
}

/* ------------------------------------------------------------------ Python glue */

static int
as_double(PyObject *arg, double *out)
{
    if (PyFloat_CheckExact(arg)) {
        *out = PyFloat_AS_DOUBLE(arg);
        return 0;
    }
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred())
        return -1;
    *out = value;
    return 0;
}

static PyObject *
py_fpconv_dtoa(PyObject *module, PyObject *arg)
{
    double value;
    if (as_double(arg, &value) < 0)
        return NULL;
    char text[TEXT_SIZE];
    int length = dtoa_bits(bits_of(value), text);
    return PyBytes_FromStringAndSize(text, length);
}

static PyObject *
py_d2string(PyObject *module, PyObject *arg)
{
    double value;
    if (as_double(arg, &value) < 0)
        return NULL;
    char text[TEXT_SIZE];
    int length = d2string_text(value, text);
    return PyBytes_FromStringAndSize(text, length);
}

static PyObject *
py_cached_powers(PyObject *module, PyObject *unused)
{
    PyObject *rows = PyList_New(POWER_COUNT);
    if (rows == NULL)
        return NULL;
    for (int i = 0; i < POWER_COUNT; i++) {
        PyObject *row = Py_BuildValue("(Ki)", (unsigned long long)powers[i].significand,
                                      powers[i].exponent);
        if (row == NULL) {
            Py_DECREF(rows);
            return NULL;
        }
        PyList_SET_ITEM(rows, i, row);
    }
    return rows;
}

PyDoc_STRVAR(fpconv_dtoa_doc,
             "fpconv_dtoa(value) -> bytes\n\n"
             "Redis 7.2+'s fpconv_dtoa text of a double (dumpling.fpconv.py_fpconv_dtoa).");
PyDoc_STRVAR(d2string_doc,
             "d2string(value) -> bytes\n\n"
             "Redis 7.2+'s d2string text of a double (dumpling.fpconv.py_d2string).");
PyDoc_STRVAR(cached_powers_doc,
             "cached_powers() -> list[tuple[int, int]]\n\n"
             "The powers of ten built at import, for comparison with fpconv._POWERS_TEN.");

static PyMethodDef fpconv_methods[] = {
    {"fpconv_dtoa", py_fpconv_dtoa, METH_O, fpconv_dtoa_doc},
    {"d2string", py_d2string, METH_O, d2string_doc},
    {"cached_powers", py_cached_powers, METH_NOARGS, cached_powers_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fpconv_module = {
    PyModuleDef_HEAD_INIT,
    "dumpling._fpconv",
    "C twin of dumpling.fpconv: Redis 7.2+'s fpconv_dtoa (Grisu2) and d2string.",
    -1,
    fpconv_methods,
};

/* d2string_text for other extension modules (dumpling._bigops writes score replies with it):
 * a capsule holding int (*)(double value, char out[96]) that returns the text's length. */
#define D2STRING_CAPSULE "dumpling._fpconv.d2string_capi"

PyMODINIT_FUNC
PyInit__fpconv(void)
{
    init_powers();
    PyObject *module = PyModule_Create(&fpconv_module);
    if (module == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New((void *)d2string_text, D2STRING_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(module, "d2string_capi", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
