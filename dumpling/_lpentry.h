/*
 * dumpling/_lpentry.h: one listpack entry, written and read (Redis 7.4's listpack.c layout).
 *
 * An entry is an encoding byte (with the length or the integer in it or after it), the data,
 * and a back-length (1-5 bytes, the encoding and data length, written so it can be read
 * from its last byte backwards).  An element that is a canonical int64 (Redis's string2ll)
 * is stored as an integer entry, anything else as a string entry; so two elements are equal
 * exactly when their entries are byte for byte.
 *
 * Pure functions over bytes: no Python objects, no allocation (the integer test and the
 * decimal text are _native.h's native_string2ll and native_ll_text).  Used by dumpling._elementlist
 * (a list value's elements kept as entries); the entries it writes are those a listpack of
 * the same elements holds, so a node's listpack is a header, entries copied as they lie, and
 * the end byte.
 */
#ifndef DUMPLING_LPENTRY_H
#define DUMPLING_LPENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "_native.h"

#define LPE_INT_TEXT_MAX 21 /* "-9223372036854775808" and a spare byte */

/* Bytes of the back-length that follows an encoding+data of `l` bytes. */
static inline size_t lpe_backlen_size(uint64_t l) {
    return l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
}

static inline void lpe_backlen_write(unsigned char *p, uint64_t l) {
    size_t n = lpe_backlen_size(l);
    /* the first byte holds the highest bits; every later one has its top bit set */
    for (size_t i = n; i-- > 0;) {
        p[i] = (unsigned char)((l & 127) | (i > 0 ? 128 : 0));
        l >>= 7;
    }
}

/* The encoding+data length whose back-length ends at `last` (its last byte). */
static inline uint64_t lpe_backlen_read(const unsigned char *last) {
    uint64_t val = 0;
    unsigned shift = 0;
    for (;;) {
        val |= (uint64_t)(last[0] & 127) << shift;
        if (!(last[0] & 128) || shift >= 28)
            return val;
        shift += 7;
        last--;
    }
}

/* How an element will be written: as an integer (is_int, value) or a string; the encoding
 * + data length and the whole entry's size. */
typedef struct {
    int is_int;
    int64_t value;
    size_t enclen;
    size_t size;
} LpePlan;

/* The plan of the integer entry of v (lpAppendInteger). */
static inline void lpe_plan_int(int64_t v, LpePlan *plan) {
    plan->is_int = 1;
    plan->value = v;
    plan->enclen = v >= 0 && v <= 127                        ? 1
                   : v >= -4096 && v <= 4095                 ? 2
                   : v >= -32768 && v <= 32767               ? 3
                   : v >= -8388608 && v <= 8388607           ? 4
                   : v >= -2147483648LL && v <= 2147483647LL ? 5
                                                             : 9;
    plan->size = plan->enclen + 1; /* (at most 9 bytes: a one-byte back-length) */
}

static inline void lpe_plan(const unsigned char *s, size_t n, LpePlan *plan) {
    long long v;
    if (n > 0 && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-') && native_string2ll((const char *)s, (Py_ssize_t)n, &v)) {
        lpe_plan_int(v, plan);
        return;
    }
    plan->is_int = 0;
    plan->value = 0;
    plan->enclen = n + (n < 64 ? 1 : n < 4096 ? 2 : 5);
    plan->size = plan->enclen + lpe_backlen_size(plan->enclen);
}

/* memcpy of the short strings most elements are: two fixed-size (inlined) copies of the first
 * and last bytes, overlapping in the middle; never reads or writes outside s[0:n] / dst[0:n]. */
static inline void lpe_copy(unsigned char *dst, const unsigned char *s, size_t n) {
    if (n >= 8 && n <= 16) {
        uint64_t head, tail;
        memcpy(&head, s, 8);
        memcpy(&tail, s + n - 8, 8);
        memcpy(dst, &head, 8);
        memcpy(dst + n - 8, &tail, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t head, tail;
        memcpy(&head, s, 4);
        memcpy(&tail, s + n - 4, 4);
        memcpy(dst, &head, 4);
        memcpy(dst + n - 4, &tail, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            dst[i] = s[i];
    } else {
        memcpy(dst, s, n);
    }
}

/* Write the planned entry of s[0:n] at dst (plan->size bytes). */
static inline void lpe_write(unsigned char *dst, const unsigned char *s, size_t n, const LpePlan *plan) {
    if (plan->is_int) {
        int64_t v = plan->value;
        uint64_t u;
        switch (plan->enclen) {
        case 1:
            dst[0] = (unsigned char)v;
            break;
        case 2:
            u = (uint64_t)(v < 0 ? (1 << 13) + v : v);
            dst[0] = (unsigned char)((u >> 8) | 0xC0);
            dst[1] = (unsigned char)(u & 0xff);
            break;
        default: {
            size_t width = plan->enclen - 1; /* 2, 3, 4 or 8 bytes, little-endian */
            u = (uint64_t)v;
            dst[0] = width == 2 ? 0xF1 : width == 3 ? 0xF2 : width == 4 ? 0xF3 : 0xF4;
            for (size_t i = 0; i < width; i++)
                dst[1 + i] = (unsigned char)((u >> (8 * i)) & 0xff);
        }
        }
    } else if (n < 64) {
        dst[0] = (unsigned char)(n | 0x80);
        lpe_copy(dst + 1, s, n);
    } else if (n < 4096) {
        dst[0] = (unsigned char)((n >> 8) | 0xE0);
        dst[1] = (unsigned char)(n & 0xff);
        memcpy(dst + 2, s, n);
    } else {
        dst[0] = 0xF0;
        for (size_t i = 0; i < 4; i++)
            dst[1 + i] = (unsigned char)((n >> (8 * i)) & 0xff);
        memcpy(dst + 5, s, n);
    }
    lpe_backlen_write(dst + plan->enclen, plan->enclen);
}

/* lpe_put_int's and lpe_put's other cases, out of line: their hot loops stay small. */
#if defined(__GNUC__)
#define LPE_COLD __attribute__((noinline, cold))
#else
#define LPE_COLD
#endif
static LPE_COLD unsigned char *lpe_put_planned(unsigned char *dst, const unsigned char *s, size_t n, int is_int, int64_t v) {
    LpePlan plan;
    if (is_int)
        lpe_plan_int(v, &plan);
    else
        lpe_plan(s, n, &plan);
    lpe_write(dst, s, n, &plan);
    return dst + plan.size;
}

/* The integer entry of v at dst (room for 10 bytes); the end.  A 7-bit value (a stream's
 * flags, counts and most ID deltas) is its byte and a back-length of 1, a 13-bit one two
 * bytes and a back-length of 2. */
static inline unsigned char *lpe_put_int(unsigned char *dst, int64_t v) {
    if ((uint64_t)v <= 127) {
        dst[0] = (unsigned char)v;
        dst[1] = 1;
        return dst + 2;
    }
    if (v >= -4096 && v <= 4095) { /* (13 bits: lpe_write's second form, inline too) */
        uint64_t u = (uint64_t)(v < 0 ? (1 << 13) + v : v);
        dst[0] = (unsigned char)((u >> 8) | 0xC0);
        dst[1] = (unsigned char)(u & 0xff);
        dst[2] = 2;
        return dst + 3;
    }
    return lpe_put_planned(dst, NULL, 0, 1, v);
}

/* The entry of s[0:n] at dst (room for n + 10 bytes); the end.  The common element, under 64
 * bytes and not starting as an integer's text does, needs no plan: its header byte, its bytes
 * and a one-byte back-length (its encoding+data length, n + 1). */
static inline unsigned char *lpe_put(unsigned char *dst, const unsigned char *s, size_t n) {
    if (n < 64 && (n == 0 || (unsigned char)(s[0] - '0') > 9) && (n == 0 || s[0] != '-')) {
        dst[0] = (unsigned char)(n | 0x80);
        lpe_copy(dst + 1, s, n);
        dst[n + 1] = (unsigned char)(n + 1);
        return dst + n + 2;
    }
    return lpe_put_planned(dst, s, n, 0, 0);
}

/* The encoding+data length of the entry at p. */
static inline size_t lpe_enclen(const unsigned char *p) {
    unsigned char b = p[0];
    if (b < 0x80)
        return 1;
    if ((b & 0xC0) == 0x80)
        return 1 + (size_t)(b & 0x3F);
    if ((b & 0xE0) == 0xC0)
        return 2;
    if ((b & 0xF0) == 0xE0)
        return 2 + (((size_t)(b & 0x0F) << 8) | p[1]);
    switch (b) {
    case 0xF0:
        return 5 + ((size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24);
    case 0xF1:
        return 3;
    case 0xF2:
        return 4;
    case 0xF3:
        return 5;
    default: /* 0xF4 */
        return 9;
    }
}

/* The whole entry's size (encoding, data, back-length). */
static inline size_t lpe_size(const unsigned char *p) {
    size_t l = lpe_enclen(p);
    return l + lpe_backlen_size(l);
}

/* The size of the entry that ends just before `end`. */
static inline size_t lpe_size_before(const unsigned char *end) {
    uint64_t l = lpe_backlen_read(end - 1);
    return (size_t)l + lpe_backlen_size(l);
}

/* The element of the entry at p (lpe_enclen's forms; the caller checked they lie in the
 * listpack): an integer (1, *v) or a string (0, *s and *n pointing into the entry). */
static inline int lpe_read(const unsigned char *p, int64_t *v, const unsigned char **s, size_t *n) {
    unsigned char b = p[0];
    if ((b & 0xC0) == 0x80) {
        *s = p + 1;
        *n = b & 0x3F;
        return 0;
    }
    if ((b & 0xF0) == 0xE0) {
        *s = p + 2;
        *n = ((size_t)(b & 0x0F) << 8) | p[1];
        return 0;
    }
    if (b == 0xF0) {
        *s = p + 5;
        *n = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
        return 0;
    }
    if (b < 0x80) {
        *v = b;
    } else if ((b & 0xE0) == 0xC0) {
        uint64_t u = ((uint64_t)(b & 0x1F) << 8) | p[1];
        *v = u >= (1 << 12) ? (int64_t)u - (1 << 13) : (int64_t)u;
    } else {
        size_t width = b == 0xF1 ? 2 : b == 0xF2 ? 3 : b == 0xF3 ? 4 : 8;
        uint64_t u = 0;
        for (size_t i = 0; i < width; i++)
            u |= (uint64_t)p[1 + i] << (8 * i);
        if (width < 8 && (u >> (8 * width - 1)))
            u |= ~(uint64_t)0 << (8 * width); /* sign-extend */
        *v = (int64_t)u;
    }
    return 1;
}

/* The element of the entry at p as text: *s and *n point into the entry for a string, or
 * into `digits` (LPE_INT_TEXT_MAX bytes) where an integer's decimal text is written. */
static inline void lpe_text(const unsigned char *p, unsigned char *digits, const unsigned char **s, size_t *n) {
    int64_t v;
    if (lpe_read(p, &v, s, n)) {
        *s = digits;
        *n = (size_t)native_ll_text((char *)digits, v);
    }
}

/* The length of the entry at p's element as text (an integer's decimal digits, with its sign)
 * without writing it: what a size rule that counts the element's bytes (quicklist's node
 * cut) needs of every entry, where formatting each integer cost more than the rest. */
static inline size_t lpe_text_len(const unsigned char *p) {
    int64_t v;
    const unsigned char *s;
    size_t n;
    if (!lpe_read(p, &v, &s, &n))
        return n;
    uint64_t u = v < 0 ? 0ULL - (uint64_t)v : (uint64_t)v;
    size_t digits = v < 0 ? 2 : 1;
    while (u >= 10000) {
        u /= 10000;
        digits += 4;
    }
    return digits + (u >= 10) + (u >= 100) + (u >= 1000);
}

#endif
