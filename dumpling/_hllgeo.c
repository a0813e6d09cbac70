/* dumpling._hllgeo: the hot loops of HyperLogLog and GEO in C.
 *
 * dumpling/hyperloglog.py and dumpling/geohash.py (with dumpling/commands/geo.py) stay
 * the reference and the fallback (DUMPLING_PURE=1); every function here is a translation
 * of a piece of them, with the same arithmetic in the same order, and must give the same
 * bytes, the same numbers and the same refusals (tests/test_hllgeo_c.py compares both on
 * random and corrupt inputs).  Nothing here knows about keys, clients or commands.
 *
 * HyperLogLog (a value is the string's bytes: 16-byte header, then dense 6-bit registers
 * or sparse ZERO/XZERO/VAL opcodes; see the reference's docstring):
 *   murmurhash64a(data) -> int           Redis's MurmurHash64A with its seed (for the tests)
 *   hll_add(hll, elements, max_bytes)    PFADD's loop on a bytearray, edited in place:
 *       -> (registers changed, corrupt)  the sparse editor is hyperloglog.sparse_set,
 *                                        promotion to dense included
 *   hll_count(hll) -> int | None         hllCount (None: a corrupt sparse body)
 *   hll_merge(registers, hll) -> bool    register-wise maximum into a 16384-byte bytearray
 *                                        (False: a corrupt sparse body)
 *   hll_estimate(registers) -> int       the estimator over one byte per register
 * GEO (scores are 52-bit interleaved geohashes):
 *   geo_decode(score) -> (lon, lat)      geohash.decode_score (for the tests; geo_search and
 *                                        geo_pos decode with it)
 *   geo_cells(kind, lon, lat, conversion, radius, width, height)
 *                                        geohash.search_cells: the centre cell and its
 *                                        neighbours, (0, 0) for those left out
 *   geo_search(spans, kind, lon, lat, a, b, limit, order, count) -> (points, sorted)
 *                                        geohash.collect_points: point_filter over the
 *                                        (score, member) pairs of each span, the sort,
 *                                        the first `count` as (dist, score, member, lon, lat)
 *   geo_pqsort(points, descending, lrange, rrange) -> bool
 *                                        geohash.partial_sort by distance (Redis's pqsort);
 *                                        False (nothing moved) when too deep for C
 *   geo_reply(points, n, conversion, withdist, withhash, withcoord, resp3) -> bytes
 *   geo_pos(scores, resp3) -> bytes      geohash.points_reply / positions_reply: the reply
 *                                        bytes of a search WITH* and of GEOPOS
 *   format_distance(x), format_coordinate(x) -> bytes
 *                                        geohash.format_distance / format_coordinate (for
 *                                        the tests; the replies print with them)
 * Numbers in replies are printed with integer arithmetic, not printf: %.17f of a
 * coordinate is exact (fixed17_text), as glibc's and Python's are.
 *
 * The estimator and the distance use libm exactly where the reference calls math.*;
 * setup.py builds this file with -ffp-contract=off so no multiply-add is fused.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "_native.h"

/* ------------------------------------------------------------------ HyperLogLog */

#define HLL_HEADER 16
#define HLL_P 14
#define HLL_Q (64 - HLL_P)
#define HLL_REGISTERS (1 << HLL_P)
#define HLL_P_MASK (HLL_REGISTERS - 1)
#define HLL_REGISTER_MAX 63
#define HLL_DENSE_BYTES (HLL_REGISTERS * 6 / 8)
#define HLL_DENSE_SIZE (HLL_HEADER + HLL_DENSE_BYTES)
#define HLL_DENSE 0
#define HLL_SPARSE 1
#define HLL_SEED 0xadc83b19ULL
#define HLL_ALPHA_INF 0.721347520444481703680
#define SPARSE_VAL_MAX_VALUE 32
#define SPARSE_VAL_MAX_LEN 4
#define SPARSE_ZERO_MAX_LEN 64
#define SPARSE_BODY_LIMIT (2 * HLL_REGISTERS)

static uint64_t murmur64a(const unsigned char *data, Py_ssize_t len) {
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    uint64_t h = HLL_SEED ^ ((uint64_t)len * m);
    Py_ssize_t blocks = len >> 3;
    for (Py_ssize_t i = 0; i < blocks; i++) {
        const unsigned char *b = data + 8 * i;
        uint64_t k = (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
                     (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 | (uint64_t)b[7] << 56;
        k *= m;
        k ^= k >> 47;
        k *= m;
        h ^= k;
        h *= m;
    }
    int tail = (int)(len & 7);
    if (tail) {
        const unsigned char *t = data + (len - tail);
        uint64_t rest = 0;
        for (int i = 0; i < tail; i++)
            rest |= (uint64_t)t[i] << (8 * i);
        h ^= rest;
        h *= m;
    }
    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;
    return h;
}

/* hyperloglog.pattern_len: the register and the length of the 000..1 run. */
static void pattern_len(const unsigned char *data, Py_ssize_t len, int *index, int *count) {
    uint64_t h = murmur64a(data, len);
    *index = (int)(h & HLL_P_MASK);
    h = (h >> HLL_P) | (1ULL << HLL_Q);
    *count = __builtin_ctzll(h) + 1;
}

static int dense_set(unsigned char *hll, Py_ssize_t len, int index, int count) {
    Py_ssize_t bit = (Py_ssize_t)index * 6;
    Py_ssize_t pos = HLL_HEADER + (bit >> 3);
    int shift = (int)(bit & 7);
    unsigned b1 = pos + 1 < len ? hll[pos + 1] : 0;
    int old = (int)(((hll[pos] >> shift) | (b1 << (8 - shift))) & HLL_REGISTER_MAX);
    if (count <= old)
        return 0;
    unsigned word = ((hll[pos] | (b1 << 8)) & ~((unsigned)HLL_REGISTER_MAX << shift)) | ((unsigned)count << shift);
    hll[pos] = (unsigned char)(word & 0xff);
    if (shift > 2)
        hll[pos + 1] = (unsigned char)(word >> 8);
    return 1;
}

/* The span of the opcode at p (an XZERO cut by the end reads a zero low byte). */
static int opcode_span(const unsigned char *hll, Py_ssize_t end, Py_ssize_t p) {
    unsigned b = hll[p];
    if (b & 0x80)
        return (int)(b & 3) + 1;
    if (b & 0x40)
        return (int)(((b & 0x3f) << 8) | (p + 1 < end ? hll[p + 1] : 0)) + 1;
    return (int)b + 1;
}

static int opcode_len(unsigned b) {
    return (b & 0xc0) == 0x40 ? 2 : 1;
}

/* hyperloglog.sparse_to_linear: 0 fine, -1 corrupt. */
static int sparse_to_linear(const unsigned char *hll, Py_ssize_t end, unsigned char *linear) {
    if (end - HLL_HEADER > SPARSE_BODY_LIMIT)
        return -1;
    memset(linear, 0, HLL_REGISTERS);
    long index = 0;
    Py_ssize_t p = HLL_HEADER;
    while (p < end) {
        unsigned b = hll[p];
        int span = opcode_span(hll, end, p);
        if (b & 0x80) {
            if (index + span > HLL_REGISTERS)
                return -1;
            memset(linear + index, (int)((b >> 2) & 0x1f) + 1, (size_t)span);
        }
        index += span;
        p += opcode_len(b);
    }
    return index == HLL_REGISTERS ? 0 : -1;
}

static void pack_dense(const unsigned char *linear, unsigned char *registers) {
    for (int i = 0; i < HLL_REGISTERS / 4; i++) {
        const unsigned char *r = linear + 4 * i;
        unsigned char *b = registers + 3 * i;
        b[0] = (unsigned char)(r[0] | (r[1] << 6));
        b[1] = (unsigned char)((r[1] >> 2) | (r[2] << 4));
        b[2] = (unsigned char)((r[2] >> 4) | (r[3] << 2));
    }
}

/* hyperloglog.sparse_to_dense on a bytearray: 0 fine, -1 corrupt, -2 Python error. */
static int promote(PyObject *ba) {
    unsigned char *hll = (unsigned char *)PyByteArray_AS_STRING(ba);
    Py_ssize_t end = PyByteArray_GET_SIZE(ba);
    if (hll[4] == HLL_DENSE)
        return 0;
    unsigned char *linear = PyMem_Malloc(HLL_REGISTERS);
    if (linear == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    if (sparse_to_linear(hll, end, linear) < 0) {
        PyMem_Free(linear);
        return -1;
    }
    if (PyByteArray_Resize(ba, HLL_DENSE_SIZE) < 0) {
        PyMem_Free(linear);
        return -2;
    }
    hll = (unsigned char *)PyByteArray_AS_STRING(ba);
    hll[4] = HLL_DENSE;
    pack_dense(linear, hll + HLL_HEADER);
    PyMem_Free(linear);
    return 0;
}

static int promote_and_set(PyObject *ba, int index, int count) {
    int r = promote(ba);
    if (r < 0)
        return r;
    dense_set((unsigned char *)PyByteArray_AS_STRING(ba), PyByteArray_GET_SIZE(ba), index, count);
    return 1;
}

static unsigned char val_opcode(int value, int runlen) {
    return (unsigned char)(0x80 | ((value - 1) << 2) | (runlen - 1));
}

/* A run of `runlen` zero registers as ZERO or XZERO into seq; its length. */
static int zeros_opcode(unsigned char *seq, int runlen) {
    if (runlen > SPARSE_ZERO_MAX_LEN) {
        int n = runlen - 1;
        seq[0] = (unsigned char)(0x40 | (n >> 8));
        seq[1] = (unsigned char)(n & 0xff);
        return 2;
    }
    seq[0] = (unsigned char)(runlen - 1);
    return 1;
}

/* hyperloglog.sparse_set (with Redis's walk): 1 raised, 0 unchanged, -1 corrupt,
 * -2 Python error.  May promote the bytearray to dense. */
static int sparse_set(PyObject *ba, int index, int count, Py_ssize_t max_bytes) {
    if (count > SPARSE_VAL_MAX_VALUE)
        return promote_and_set(ba, index, count);
    unsigned char *hll = (unsigned char *)PyByteArray_AS_STRING(ba);
    Py_ssize_t end = PyByteArray_GET_SIZE(ba);
    /* Step 1: the opcode covering `index`, and the one before it. */
    Py_ssize_t p = HLL_HEADER, prev = -1;
    long first = 0;
    int span = 0;
    while (p < end) {
        span = opcode_span(hll, end, p);
        if (index < first + span)
            break;
        prev = p;
        p += opcode_len(hll[p]);
        first += span;
    }
    if (span == 0 || p >= end)
        return -1;
    unsigned b = hll[p];
    int is_val = (b & 0x80) != 0;
    int is_xzero = !is_val && (b & 0x40);
    /* Step 2: the in-place updates. */
    if (is_val && (int)((b >> 2) & 0x1f) + 1 >= count)
        return 0;
    if (!is_xzero && span == 1) {
        hll[p] = val_opcode(count, 1);
    } else {
        /* The general case: the opcode split into up to three. */
        long last = first + span - 1;
        unsigned char seq[5];
        int seqlen = 0;
        if (is_val) {
            int current = (int)((b >> 2) & 0x1f) + 1;
            if (index != first)
                seq[seqlen++] = val_opcode(current, (int)(index - first));
            seq[seqlen++] = val_opcode(count, 1);
            if (index != last)
                seq[seqlen++] = val_opcode(current, (int)(last - index));
        } else {
            if (index != first)
                seqlen += zeros_opcode(seq + seqlen, (int)(index - first));
            seq[seqlen++] = val_opcode(count, 1);
            if (index != last)
                seqlen += zeros_opcode(seq + seqlen, (int)(last - index));
        }
        int oldlen = is_xzero ? 2 : 1;
        Py_ssize_t delta = seqlen - oldlen;
        /* Step 3: splice it in, or promote when the string would grow too much. */
        if (delta > 0 && end + delta > max_bytes)
            return promote_and_set(ba, index, count);
        Py_ssize_t newlen = end + delta;
        Py_ssize_t tail = end - (p + oldlen); /* bytes after the opcode (-1 for a cut XZERO) */
        if (tail < 0)
            tail = 0;
        if (delta > 0) {
            if (PyByteArray_Resize(ba, newlen) < 0)
                return -2;
            hll = (unsigned char *)PyByteArray_AS_STRING(ba);
        }
        memmove(hll + p + seqlen, hll + p + oldlen, (size_t)tail);
        /* The last opcode: the string ends after it (a cut XZERO cuts the sequence by one). */
        Py_ssize_t room = newlen - p;
        memcpy(hll + p, seq, (size_t)(room < seqlen ? room : seqlen));
        if (delta < 0) {
            if (PyByteArray_Resize(ba, newlen) < 0)
                return -2;
            hll = (unsigned char *)PyByteArray_AS_STRING(ba);
        }
        end = newlen;
    }
    /* Step 4: merge adjacent VAL opcodes of equal value, scanning up to five opcodes. */
    end = PyByteArray_GET_SIZE(ba);
    Py_ssize_t q = prev >= 0 ? prev : HLL_HEADER;
    int scans = 5;
    while (q < end && scans) {
        scans--;
        unsigned b1 = hll[q];
        if (!(b1 & 0x80)) {
            q += (b1 & 0x40) ? 2 : 1;
            continue;
        }
        if (q + 1 < end && (hll[q + 1] & 0x80)) {
            unsigned b2 = hll[q + 1];
            if (((b1 ^ b2) & 0x7c) == 0) {
                int runlen = (int)(b1 & 3) + (int)(b2 & 3) + 2;
                if (runlen <= SPARSE_VAL_MAX_LEN) {
                    hll[q + 1] = val_opcode((int)((b1 >> 2) & 0x1f) + 1, runlen);
                    memmove(hll + q, hll + q + 1, (size_t)(end - q - 1));
                    end--;
                    if (PyByteArray_Resize(ba, end) < 0)
                        return -2;
                    hll = (unsigned char *)PyByteArray_AS_STRING(ba);
                    continue;
                }
            }
        }
        q++;
    }
    hll[15] |= 0x80;
    return 1;
}

/* isHLLObjectOrReply's structural checks, which the callers have made: refuse otherwise. */
/* The register histogram of dense registers / of one byte per register.  Four counter
 * sets, one per register of a 3-byte group: consecutive increments of one counter would
 * each wait for the previous store. */
static void dense_histogram(const unsigned char *registers, long *histogram) {
    uint32_t h[4][64];
    memset(h, 0, sizeof h);
    for (int i = 0; i < HLL_REGISTERS / 4; i++) {
        const unsigned char *b = registers + 3 * i;
        h[0][b[0] & 63]++;
        h[1][(b[0] >> 6) | ((b[1] & 15) << 2)]++;
        h[2][(b[1] >> 4) | ((b[2] & 3) << 4)]++;
        h[3][b[2] >> 2]++;
    }
    for (int v = 0; v < 64; v++)
        histogram[v] = (long)h[0][v] + h[1][v] + h[2][v] + h[3][v];
}

/* 0, or -1 for a register above 63. */
static int linear_histogram(const unsigned char *linear, long *histogram) {
    uint32_t h[4][256];
    memset(h, 0, sizeof h);
    for (int i = 0; i < HLL_REGISTERS; i += 4) {
        h[0][linear[i]]++;
        h[1][linear[i + 1]]++;
        h[2][linear[i + 2]]++;
        h[3][linear[i + 3]]++;
    }
    for (int v = 0; v < 256; v++) {
        long n = (long)h[0][v] + h[1][v] + h[2][v] + h[3][v];
        if (v < 64)
            histogram[v] = n;
        else if (n)
            return -1;
    }
    return 0;
}

/* Register-wise maximum of a dense HLL's registers into one byte per register. */
static void dense_max_into(const unsigned char *registers, unsigned char *max) {
    for (int i = 0; i < HLL_REGISTERS / 4; i++) {
        const unsigned char *b = registers + 3 * i;
        unsigned char *m = max + 4 * i;
        unsigned char r0 = b[0] & 63;
        unsigned char r1 = (unsigned char)((b[0] >> 6) | ((b[1] & 15) << 2));
        unsigned char r2 = (unsigned char)((b[1] >> 4) | ((b[2] & 3) << 4));
        unsigned char r3 = b[2] >> 2;
        m[0] = m[0] > r0 ? m[0] : r0;
        m[1] = m[1] > r1 ? m[1] : r1;
        m[2] = m[2] > r2 ? m[2] : r2;
        m[3] = m[3] > r3 ? m[3] : r3;
    }
}

/* The same for a sparse body: 0, or -1 (nothing changed) when it is corrupt as
 * sparse_to_linear sees it. */
static int sparse_max_into(const unsigned char *hll, Py_ssize_t end, unsigned char *max) {
    if (end - HLL_HEADER > SPARSE_BODY_LIMIT)
        return -1;
    long index = 0;
    Py_ssize_t p;
    for (p = HLL_HEADER; p < end; p += opcode_len(hll[p])) { /* check first, then change */
        int span = opcode_span(hll, end, p);
        if ((hll[p] & 0x80) && index + span > HLL_REGISTERS)
            return -1;
        index += span;
    }
    if (index != HLL_REGISTERS)
        return -1;
    index = 0;
    for (p = HLL_HEADER; p < end; p += opcode_len(hll[p])) {
        int span = opcode_span(hll, end, p);
        if (hll[p] & 0x80) {
            unsigned char value = (unsigned char)(((hll[p] >> 2) & 0x1f) + 1);
            for (int k = 0; k < span; k++)
                if (max[index + k] < value)
                    max[index + k] = value;
        }
        index += span;
    }
    return 0;
}

static int check_hll(const unsigned char *hll, Py_ssize_t len) {
    if (len < HLL_HEADER || memcmp(hll, "HYLL", 4) != 0 || hll[4] > HLL_SPARSE ||
        (hll[4] == HLL_DENSE && len != HLL_DENSE_SIZE)) {
        PyErr_SetString(PyExc_ValueError, "not a valid HyperLogLog string");
        return -1;
    }
    return 0;
}

static PyObject *py_murmurhash64a(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint64_t h = murmur64a(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

static PyObject *py_hll_add(PyObject *self, PyObject *args) {
    PyObject *ba, *elements;
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "O!O!n", &PyByteArray_Type, &ba, &PyList_Type, &elements, &max_bytes))
        return NULL;
    if (check_hll((unsigned char *)PyByteArray_AS_STRING(ba), PyByteArray_GET_SIZE(ba)) < 0)
        return NULL;
    long updated = 0;
    int corrupt = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(elements); i++) {
        PyObject *element = PyList_GET_ITEM(elements, i);
        int index, count;
        if (PyBytes_Check(element)) {
            pattern_len((unsigned char *)PyBytes_AS_STRING(element), PyBytes_GET_SIZE(element), &index, &count);
        } else { /* any other bytes-like object, as the reference takes it */
            Py_buffer view;
            if (PyObject_GetBuffer(element, &view, PyBUF_SIMPLE) < 0)
                return NULL;
            pattern_len(view.buf, view.len, &index, &count);
            PyBuffer_Release(&view);
        }
        unsigned char *hll = (unsigned char *)PyByteArray_AS_STRING(ba);
        int r;
        if (hll[4] == HLL_DENSE)
            r = dense_set(hll, PyByteArray_GET_SIZE(ba), index, count);
        else
            r = sparse_set(ba, index, count, max_bytes);
        if (r == -2)
            return NULL;
        if (r < 0) {
            corrupt = 1;
            break;
        }
        updated += r;
    }
    return Py_BuildValue("(lO)", updated, corrupt ? Py_True : Py_False);
}

static double hll_sigma(double x) {
    if (x == 1.0)
        return INFINITY;
    double y = 1.0, z = x, z_prev;
    do {
        x *= x;
        z_prev = z;
        z += x * y;
        y += y;
    } while (z_prev != z);
    return z;
}

static double hll_tau(double x) {
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0, z = 1 - x, z_prev;
    do {
        x = sqrt(x);
        z_prev = z;
        y *= 0.5;
        z -= pow(1 - x, 2) * y;
    } while (z_prev != z);
    return z / 3;
}

/* hyperloglog.estimate, as a Python int. */
static PyObject *estimate(const long *histogram) {
    double m = (double)HLL_REGISTERS;
    double z = m * hll_tau((m - (double)histogram[HLL_Q + 1]) / m);
    for (int j = HLL_Q; j >= 1; j--) {
        z += (double)histogram[j];
        z *= 0.5;
    }
    z += m * hll_sigma((double)histogram[0] / m);
    double numerator = HLL_ALPHA_INF * m * m;
    if (z == 0)
        return PyLong_FromUnsignedLongLong(1ULL << 63);
    double e = numerator / z;
    if (!(e < 9.223372036854775807e18))
        return PyLong_FromUnsignedLongLong(1ULL << 63);
    double whole = floor(e);
    return PyLong_FromDouble(e - whole >= 0.5 ? whole + 1 : whole);
}

/* hyperloglog.histogram of a valid HLL: 0, or -1 for a corrupt sparse body. */
static int hll_histogram(const unsigned char *hll, Py_ssize_t end, long *histogram) {
    if (hll[4] == HLL_DENSE) {
        dense_histogram(hll + HLL_HEADER, histogram);
        return 0;
    }
    /* hyperloglog.sparse_histogram */
    long covered = 0;
    if (end - HLL_HEADER > SPARSE_BODY_LIMIT)
        return -1;
    for (Py_ssize_t p = HLL_HEADER; p < end; p += opcode_len(hll[p])) {
        int span = opcode_span(hll, end, p);
        histogram[(hll[p] & 0x80) ? ((hll[p] >> 2) & 0x1f) + 1 : 0] += span;
        covered += span;
    }
    return covered == HLL_REGISTERS ? 0 : -1;
}

static PyObject *py_hll_count(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    long histogram[64] = {0};
    PyObject *result = NULL;
    if (check_hll(view.buf, view.len) == 0)
        result = hll_histogram(view.buf, view.len, histogram) < 0 ? Py_NewRef(Py_None) : estimate(histogram);
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------ native handlers */

/* PFADD and one-key PFCOUNT run from the C request loop (dumpling/_native.h): the whole
 * command when the key holds a valid HLL that a command already wrote (a bytearray), with
 * the effects of commands/hyperloglog.py's handlers; everything else (a new key, a TTL that
 * has passed, a bytes value to unshare, another type, a forged HLL, several keys) is
 * declined, before any change, to those handlers. */

static PyObject *s_config, *s_values, *s_sparse_max_bytes;
static int g_handlers_on = 1; /* set_native_handlers(False): every call declined (tests) */

/* hll-sparse-max-bytes, as the Python handler reads it. */
static int sparse_max_bytes(NativeCall *call, Py_ssize_t *out) {
    PyObject *config = PyObject_GetAttr(call->server, s_config);
    PyObject *values = config == NULL ? NULL : PyObject_GetAttr(config, s_values);
    PyObject *v = values == NULL ? NULL : PyObject_GetItem(values, s_sparse_max_bytes);
    Py_XDECREF(config);
    Py_XDECREF(values);
    if (v == NULL)
        return -1;
    *out = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* The key's value if it is a valid HLL kept as a bytearray (borrowed); NULL otherwise, with
 * *absent set when there is no key at all (an exception set on an error). */
static PyObject *native_hll(NativeCall *call, PyObject *key, int *absent) {
    PyObject *value;
    int found = native_lookup(call, key, &value);
    *absent = found == NATIVE_ABSENT;
    if (found != NATIVE_FOUND || !PyByteArray_CheckExact(value))
        return NULL;
    const unsigned char *hll = (const unsigned char *)PyByteArray_AS_STRING(value);
    Py_ssize_t len = PyByteArray_GET_SIZE(value);
    if (len < HLL_HEADER || memcmp(hll, "HYLL", 4) != 0 || hll[4] > HLL_SPARSE ||
        (hll[4] == HLL_DENSE && len != HLL_DENSE_SIZE))
        return NULL; /* not a valid HLL string: the Python handler's WRONGTYPE */
    return value;
}

static int put_back(PyObject *ba, const char *saved, Py_ssize_t len) {
    if (PyByteArray_Resize(ba, len) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(ba), saved, (size_t)len);
    return 0;
}

/* PFADD key element...: commands.hyperloglog.pfadd on an existing HLL. */
static PyObject *native_pfadd(NativeCall *call, const NativeArg *args, int argc) {
    if (!g_handlers_on)
        return NULL;
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len);
    if (key == NULL)
        return NULL;
    PyObject *reply = NULL;
    char *saved = NULL;
    int absent;
    PyObject *ba = native_hll(call, key, &absent);
    if (ba == NULL)
        goto done; /* declined, or an error */
    Py_INCREF(ba);
    Py_ssize_t len = PyByteArray_GET_SIZE(ba), max_bytes = 0;
    if (PyByteArray_AS_STRING(ba)[4] == HLL_SPARSE) {
        /* A forged sparse body may turn out corrupt part way (Python's INVALIDOBJ after the
         * registers set before it): the bytes are kept to be put back, and it declines. */
        if (sparse_max_bytes(call, &max_bytes) < 0)
            goto release;
        saved = PyMem_Malloc((size_t)len);
        if (saved == NULL) {
            PyErr_NoMemory();
            goto release;
        }
        memcpy(saved, PyByteArray_AS_STRING(ba), (size_t)len);
    }
    long updated = 0;
    for (int i = 2; i < argc; i++) {
        int index, count, r;
        pattern_len((const unsigned char *)args[i].p, args[i].len, &index, &count);
        unsigned char *hll = (unsigned char *)PyByteArray_AS_STRING(ba);
        if (hll[4] == HLL_DENSE)
            r = dense_set(hll, PyByteArray_GET_SIZE(ba), index, count);
        else
            r = sparse_set(ba, index, count, max_bytes);
        if (r < 0) {
            if (saved != NULL && put_back(ba, saved, len) < 0)
                goto release;
            if (r == -1) /* corrupt: declined, the bytes as they were */
                PyErr_Clear();
            goto release;
        }
        updated += r;
    }
    if (native_touch(call, key) < 0)
        goto release;
    if (updated) {
        PyByteArray_AS_STRING(ba)[15] |= (char)0x80; /* hll.invalidate_cache */
        call->dirty += updated; /* one change per register raised */
    }
    reply = PyLong_FromLong(updated ? 1 : 0);
release:
    Py_DECREF(ba);
done:
    PyMem_Free(saved);
    Py_DECREF(key);
    return reply;
}

/* PFCOUNT key: commands.hyperloglog.pfcount's one-key form (the cached cardinality, or the
 * estimate written back to the cache). */
static PyObject *native_pfcount(NativeCall *call, const NativeArg *args, int argc) {
    if (argc != 2 || !g_handlers_on)
        return NULL; /* the union of several keys: the Python handler */
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len);
    if (key == NULL)
        return NULL;
    PyObject *reply = NULL;
    int absent;
    PyObject *ba = native_hll(call, key, &absent);
    if (ba == NULL) {
        if (absent && !PyErr_Occurred()) {
            call->misses++;
            reply = PyLong_FromLong(0);
        }
        goto done;
    }
    unsigned char *hll = (unsigned char *)PyByteArray_AS_STRING(ba);
    uint64_t card = 0;
    if (!(hll[15] & 0x80)) { /* the cached cardinality (under 2^63: its top bit is the flag) */
        for (int i = 7; i >= 0; i--)
            card = (card << 8) | hll[8 + i];
        if (native_touch(call, key) == 0) {
            call->hits++;
            reply = PyLong_FromUnsignedLongLong(card);
        }
        goto done;
    }
    long histogram[64] = {0};
    if (hll_histogram(hll, PyByteArray_GET_SIZE(ba), histogram) < 0)
        goto done; /* corrupt: declined, Python's INVALIDOBJ */
    PyObject *estimated = estimate(histogram);
    if (estimated == NULL)
        goto done;
    card = PyLong_AsUnsignedLongLong(estimated);
    Py_DECREF(estimated);
    if (card == (uint64_t)-1 && PyErr_Occurred())
        goto done;
    if (native_touch(call, key) < 0)
        goto done;
    hll = (unsigned char *)PyByteArray_AS_STRING(ba);
    for (int i = 0; i < 8; i++) /* hll.store_cardinality */
        hll[8 + i] = (unsigned char)(card >> (8 * i));
    call->hits++;
    call->dirty++; /* keyspace.changed: a write without an event */
    reply = PyLong_FromLongLong((long long)card); /* addReplyLongLong of the unsigned value */
done:
    Py_DECREF(key);
    return reply;
}

/* set_native_handlers(on): whether the handlers run or decline everything to Python. */
static PyObject *py_set_native_handlers(PyObject *self, PyObject *on) {
    int r = PyObject_IsTrue(on);
    if (r < 0)
        return NULL;
    g_handlers_on = r;
    Py_RETURN_NONE;
}

/* native_handlers() -> {name: capsule}: the commands this module can run from the C loop. */
static PyObject *py_native_handlers(PyObject *self, PyObject *unused) {
    if (s_config == NULL && ((s_config = PyUnicode_InternFromString("config")) == NULL ||
                             (s_values = PyUnicode_InternFromString("values")) == NULL ||
                             (s_sparse_max_bytes = PyUnicode_InternFromString("hll-sparse-max-bytes")) == NULL))
        return NULL;
    PyObject *pfadd = PyCapsule_New((void *)native_pfadd, NATIVE_CAPSULE, NULL);
    PyObject *pfcount = PyCapsule_New((void *)native_pfcount, NATIVE_CAPSULE, NULL);
    PyObject *handlers = pfadd == NULL || pfcount == NULL ? NULL
        : Py_BuildValue("{sOsO}", "pfadd", pfadd, "pfcount", pfcount);
    Py_XDECREF(pfadd);
    Py_XDECREF(pfcount);
    return handlers;
}

static PyObject *py_hll_merge(PyObject *self, PyObject *args) {
    PyObject *registers, *value;
    if (!PyArg_ParseTuple(args, "O!O", &PyByteArray_Type, &registers, &value))
        return NULL;
    if (PyByteArray_GET_SIZE(registers) != HLL_REGISTERS) {
        PyErr_SetString(PyExc_ValueError, "registers must be 16384 bytes");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    unsigned char *max = (unsigned char *)PyByteArray_AS_STRING(registers);
    const unsigned char *hll = view.buf;
    if (check_hll(hll, view.len) == 0) {
        int fine = 1;
        if (hll[4] == HLL_DENSE)
            dense_max_into(hll + HLL_HEADER, max);
        else
            fine = sparse_max_into(hll, view.len, max) == 0;
        result = PyBool_FromLong(fine);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_hll_estimate(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL;
    long histogram[64] = {0};
    const unsigned char *linear = view.buf;
    if (view.len != HLL_REGISTERS) {
        PyErr_SetString(PyExc_ValueError, "registers must be 16384 bytes");
        goto done;
    }
    if (linear_histogram(linear, histogram) < 0) {
        PyErr_SetString(PyExc_ValueError, "a register above 63");
        goto done;
    }
    result = estimate(histogram);
done:
    PyBuffer_Release(&view);
    return result;
}

/* ------------------------------------------------------------------ GEO */

#define GEO_LAT_MIN -85.05112878
#define GEO_LAT_MAX 85.05112878
#define GEO_LONG_MIN -180.0
#define GEO_LONG_MAX 180.0
#define EARTH_RADIUS_IN_METERS 6372797.560856
#define GEO_CIRCLE 1
#define GEO_BOX 2
#define TWO63 9.223372036854775808e18

static double D_R; /* math.pi / 180.0, set at import */

/* geohash.double_to_uint64 (and decode_score's fast case). */
static uint64_t score_bits(double value) {
    if (value >= 0.0 && value < 9.2e18)
        return (uint64_t)value;
    if (value >= TWO63) {
        double rest = value - TWO63;
        return rest < TWO63 ? ((uint64_t)rest | (1ULL << 63)) : 0;
    }
    if (value != value || value < -TWO63)
        return 1ULL << 63;
    return (uint64_t)(int64_t)value;
}

static uint64_t deinterleave64(uint64_t x) {
    uint64_t y = x >> 1;
    x &= 0x5555555555555555ULL;
    y &= 0x5555555555555555ULL;
    x = (x | (x >> 1)) & 0x3333333333333333ULL;
    y = (y | (y >> 1)) & 0x3333333333333333ULL;
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0FULL;
    y = (y | (y >> 2)) & 0x0F0F0F0F0F0F0F0FULL;
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FFULL;
    y = (y | (y >> 4)) & 0x00FF00FF00FF00FFULL;
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFFULL;
    y = (y | (y >> 8)) & 0x0000FFFF0000FFFFULL;
    x = (x | (x >> 16)) & 0x00000000FFFFFFFFULL;
    y = (y | (y >> 16)) & 0x00000000FFFFFFFFULL;
    return x | (y << 32);
}

/* geohash.decode_score: the centre of the step-26 cell, clamped to the GEO limits. */
static void decode_score(double score, double *longitude, double *latitude) {
    const double cells = (double)(1 << 26);
    const double lat_scale = GEO_LAT_MAX - GEO_LAT_MIN;
    const double long_scale = GEO_LONG_MAX - GEO_LONG_MIN;
    uint64_t separated = deinterleave64(score_bits(score));
    uint64_t ilato = separated & 0xFFFFFFFFULL;
    uint64_t ilono = separated >> 32;
    double lon = (GEO_LONG_MIN + ((double)ilono * 1.0 / cells) * long_scale +
                  (GEO_LONG_MIN + ((double)((ilono + 1) & 0xFFFFFFFFULL) * 1.0 / cells) * long_scale)) / 2;
    if (lon > GEO_LONG_MAX)
        lon = GEO_LONG_MAX;
    else if (lon < GEO_LONG_MIN)
        lon = GEO_LONG_MIN;
    double lat = (GEO_LAT_MIN + ((double)ilato * 1.0 / cells) * lat_scale +
                  (GEO_LAT_MIN + ((double)((ilato + 1) & 0xFFFFFFFFULL) * 1.0 / cells) * lat_scale)) / 2;
    if (lat > GEO_LAT_MAX)
        lat = GEO_LAT_MAX;
    else if (lat < GEO_LAT_MIN)
        lat = GEO_LAT_MIN;
    *longitude = lon;
    *latitude = lat;
}

static PyObject *py_geo_decode(PyObject *self, PyObject *arg) {
    double score = PyFloat_AsDouble(arg);
    if (score == -1.0 && PyErr_Occurred())
        return NULL;
    double lon, lat;
    decode_score(score, &lon, &lat);
    return Py_BuildValue("(dd)", lon, lat);
}

/* ---- the cells a search visits: geohash.search_cells, step for step */

#define MERCATOR_MAX 20037726.37
#define EVEN_BITS 0x5555555555555555ULL
#define ODD_BITS 0xAAAAAAAAAAAAAAAAULL

static uint64_t interleave64(uint64_t x, uint64_t y) {
    x &= 0xFFFFFFFFULL;
    y &= 0xFFFFFFFFULL;
    x = (x | (x << 16)) & 0x0000FFFF0000FFFFULL;
    y = (y | (y << 16)) & 0x0000FFFF0000FFFFULL;
    x = (x | (x << 8)) & 0x00FF00FF00FF00FFULL;
    y = (y | (y << 8)) & 0x00FF00FF00FF00FFULL;
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0FULL;
    y = (y | (y << 4)) & 0x0F0F0F0F0F0F0F0FULL;
    x = (x | (x << 2)) & 0x3333333333333333ULL;
    y = (y | (y << 2)) & 0x3333333333333333ULL;
    x = (x | (x << 1)) & 0x5555555555555555ULL;
    y = (y | (y << 1)) & 0x5555555555555555ULL;
    return x | (y << 1);
}

/* geohash.encode over the GEO limits (0 where the reference gives None). */
static uint64_t encode_cell(double lon, double lat, int step) {
    if (lon > GEO_LONG_MAX || lon < GEO_LONG_MIN || lat > GEO_LAT_MAX || lat < GEO_LAT_MIN)
        return 0;
    double lat_offset = (lat - GEO_LAT_MIN) / (GEO_LAT_MAX - GEO_LAT_MIN);
    double long_offset = (lon - GEO_LONG_MIN) / (GEO_LONG_MAX - GEO_LONG_MIN);
    lat_offset *= (double)(1ULL << step);
    long_offset *= (double)(1ULL << step);
    return interleave64((uint64_t)lat_offset, (uint64_t)long_offset);
}

typedef struct {
    double long_min, long_max, lat_min, lat_max;
} Area;

static Area decode_cell(uint64_t bits, int step) {
    uint64_t separated = deinterleave64(bits);
    uint64_t ilato = separated & 0xFFFFFFFFULL, ilono = separated >> 32;
    double cells = (double)(1ULL << step);
    const double lat_scale = GEO_LAT_MAX - GEO_LAT_MIN, long_scale = GEO_LONG_MAX - GEO_LONG_MIN;
    Area a;
    a.long_min = GEO_LONG_MIN + ((double)ilono * 1.0 / cells) * long_scale;
    a.long_max = GEO_LONG_MIN + ((double)((ilono + 1) & 0xFFFFFFFFULL) * 1.0 / cells) * long_scale;
    a.lat_min = GEO_LAT_MIN + ((double)ilato * 1.0 / cells) * lat_scale;
    a.lat_max = GEO_LAT_MIN + ((double)((ilato + 1) & 0xFFFFFFFFULL) * 1.0 / cells) * lat_scale;
    return a;
}

static uint64_t move_x(uint64_t bits, int step, int d) {
    uint64_t x = bits & ODD_BITS, y = bits & EVEN_BITS;
    uint64_t zz = EVEN_BITS >> (64 - step * 2);
    x = d > 0 ? x + (zz + 1) : (x | zz) - (zz + 1);
    x &= ODD_BITS >> (64 - step * 2);
    return x | y;
}

static uint64_t move_y(uint64_t bits, int step, int d) {
    uint64_t x = bits & ODD_BITS, y = bits & EVEN_BITS;
    uint64_t zz = ODD_BITS >> (64 - step * 2);
    y = d > 0 ? y + (zz + 1) : (y | zz) - (zz + 1);
    y &= EVEN_BITS >> (64 - step * 2);
    return x | y;
}

enum { N_, S_, E_, W_, NE_, NW_, SE_, SW_ }; /* geohash.search_cells's visiting order */
static const int MOVES[8][2] = {{0, 1}, {0, -1}, {1, 0}, {-1, 0}, {1, 1}, {-1, 1}, {1, -1}, {-1, -1}};

static void neighbours(uint64_t bits, int step, uint64_t *around) {
    for (int i = 0; i < 8; i++) {
        uint64_t moved = MOVES[i][0] ? move_x(bits, step, MOVES[i][0]) : bits;
        around[i] = MOVES[i][1] ? move_y(moved, step, MOVES[i][1]) : moved;
    }
}

static int steps_by_radius(double range_meters, double latitude) {
    if (range_meters == 0)
        return 26;
    int step = 1;
    while (range_meters < MERCATOR_MAX) {
        range_meters *= 2;
        step++;
    }
    step -= 2;
    if (latitude > 66 || latitude < -66) {
        step--;
        if (latitude > 80 || latitude < -80)
            step--;
    }
    return step < 1 ? 1 : (step > 26 ? 26 : step);
}

static PyObject *py_geo_cells(PyObject *self, PyObject *args) {
    int kind;
    double lon, lat, conversion, radius, width, height;
    if (!PyArg_ParseTuple(args, "idddddd", &kind, &lon, &lat, &conversion, &radius, &width, &height))
        return NULL;
    /* geohash.bounding_box */
    double h = conversion * (kind == GEO_CIRCLE ? radius : height / 2);
    double w = conversion * (kind == GEO_CIRCLE ? radius : width / 2);
    double lat_delta = (h / EARTH_RADIUS_IN_METERS) / D_R;
    double long_delta_top = ((w / EARTH_RADIUS_IN_METERS) / cos((lat + lat_delta) * D_R)) / D_R;
    double long_delta_bottom = ((w / EARTH_RADIUS_IN_METERS) / cos((lat - lat_delta) * D_R)) / D_R;
    double delta = lat < 0 ? long_delta_bottom : long_delta_top;
    double min_lon = lon - delta, min_lat = lat - lat_delta, max_lon = lon + delta, max_lat = lat + lat_delta;
    double radius_meters = kind == GEO_CIRCLE ? radius : sqrt((width / 2) * (width / 2) + (height / 2) * (height / 2));
    radius_meters *= conversion;
    int steps = steps_by_radius(radius_meters, lat);
    uint64_t bits = encode_cell(lon, lat, steps), around[8];
    neighbours(bits, steps, around);
    Area area = decode_cell(bits, steps);
    int decrease = decode_cell(around[N_], steps).lat_max < max_lat || decode_cell(around[S_], steps).lat_min > min_lat ||
                   decode_cell(around[E_], steps).long_max < max_lon || decode_cell(around[W_], steps).long_min > min_lon;
    if (steps > 1 && decrease) {
        steps--;
        bits = encode_cell(lon, lat, steps);
        neighbours(bits, steps, around);
        area = decode_cell(bits, steps);
    }
    int useless[8] = {0};
    if (steps >= 2) {
        if (area.lat_min < min_lat)
            useless[S_] = useless[SW_] = useless[SE_] = 1;
        if (area.lat_max > max_lat)
            useless[N_] = useless[NE_] = useless[NW_] = 1;
        if (area.long_min < min_lon)
            useless[W_] = useless[SW_] = useless[NW_] = 1;
        if (area.long_max > max_lon)
            useless[E_] = useless[SE_] = useless[NE_] = 1;
    }
    PyObject *cells = PyList_New(9);
    if (cells == NULL)
        return NULL;
    for (int i = 0; i < 9; i++) {
        int off = i > 0 && useless[i - 1];
        PyObject *cell = Py_BuildValue("(Ki)", off ? 0ULL : (unsigned long long)(i ? around[i - 1] : bits),
                                       off ? 0 : steps);
        if (cell == NULL) {
            Py_DECREF(cells);
            return NULL;
        }
        PyList_SET_ITEM(cells, i, cell);
    }
    return cells;
}

/* geohash.point_filter's centre: radians and cosine computed once. */
typedef struct {
    int kind;
    double lon1, lon1r, lat1r, cos1;
    double limit;                   /* circle: radius in metres */
    double half_width, half_height; /* box, in metres */
} Centre;

static double centre_distance(const Centre *c, double lon2, double lat2) {
    double v = sin((lon2 * D_R - c->lon1r) / 2);
    if (v == 0.0)
        return EARTH_RADIUS_IN_METERS * fabs(lat2 * D_R - c->lat1r);
    double lat2r = lat2 * D_R;
    double u = sin((lat2r - c->lat1r) / 2);
    double root = sqrt(u * u + c->cos1 * cos(lat2r) * v * v);
    return root <= 1.0 ? 2.0 * EARTH_RADIUS_IN_METERS * asin(root) : NAN;
}

/* 1 and the point's distance when it is inside the shape, else 0. */
static int point_within(const Centre *c, double lon, double lat, double *dist) {
    if (c->kind == GEO_CIRCLE) {
        /* The haversine distance is never below the distance along the meridian,
         * R * |dlat|: the formula's second term (cos * cos * v * v) is not negative and
         * every step after the sum is monotonic.  So a point whose latitude alone puts
         * it past the radius, by far more than the few ulps of rounding in either
         * computation, is out without the trigonometry: unless the formula would give
         * NaN (a sum rounded above 1, which the reference keeps, NaN > radius being
         * false), which needs a point within metres of the antipode, so the shortcut
         * is only taken within 90 degrees of longitude (at least ~860 km from it). */
        double dlon = fabs(lon - c->lon1);
        if (dlon > 180)
            dlon = 360 - dlon;
        if (dlon <= 90 && EARTH_RADIUS_IN_METERS * fabs(lat * D_R - c->lat1r) > c->limit * (1 + 1e-9))
            return 0;
        double d = centre_distance(c, lon, lat);
        if (d > c->limit)
            return 0;
        *dist = d;
        return 1;
    }
    double latr = lat * D_R;
    if (EARTH_RADIUS_IN_METERS * fabs(c->lat1r - latr) > c->half_height)
        return 0;
    double v = sin((c->lon1r - lon * D_R) / 2);
    if (v != 0.0) {
        double u = sin((latr - latr) / 2);
        double root = sqrt(u * u + cos(latr) * cos(latr) * v * v);
        double across = root <= 1.0 ? 2.0 * EARTH_RADIUS_IN_METERS * asin(root) : NAN;
        if (across > c->half_width)
            return 0;
    }
    *dist = centre_distance(c, lon, lat);
    return 1;
}

/* A point as the reference makes it: (distance, score, member, longitude, latitude). */
static PyObject *point_tuple(double dist, PyObject *score, PyObject *member, double lon, double lat) {
    PyObject *t = PyTuple_New(5);
    if (t == NULL)
        return NULL;
    PyObject *d = PyFloat_FromDouble(dist), *x = PyFloat_FromDouble(lon), *y = PyFloat_FromDouble(lat);
    if (d == NULL || x == NULL || y == NULL) {
        Py_XDECREF(d);
        Py_XDECREF(x);
        Py_XDECREF(y);
        Py_DECREF(t);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, d);
    PyTuple_SET_ITEM(t, 1, Py_NewRef(score));
    PyTuple_SET_ITEM(t, 2, Py_NewRef(member));
    PyTuple_SET_ITEM(t, 3, x);
    PyTuple_SET_ITEM(t, 4, y);
    return t;
}

/* A candidate inside the shape: its distance and coordinates, and the object it came
 * from (a (score, member) pair of the zset, or a point tuple for geo_pqsort). */
typedef struct {
    double dist, lon, lat;
    Py_ssize_t seq; /* position in the scan, for a stable sort */
    PyObject *item;
} Hit;

/* Redis's pqsort of hits by distance, as geohash.partial_sort does it: offsets count in
 * units of ES as the reference's pointer arithmetic does. */
#define ES 8
#define PQSORT_DEPTH_MAX 2000

typedef struct {
    Hit *hits;
    int descending;
    Py_ssize_t lrange, rrange;
} PQ;

static int pq_cmp(const PQ *q, Py_ssize_t a, Py_ssize_t b) {
    double x = q->hits[a / ES].dist, y = q->hits[b / ES].dist;
    int r = x > y ? 1 : (x == y ? 0 : -1);
    return q->descending ? -r : r;
}

static void pq_swap(const PQ *q, Py_ssize_t a, Py_ssize_t b) {
    Hit t = q->hits[a / ES];
    q->hits[a / ES] = q->hits[b / ES];
    q->hits[b / ES] = t;
}

static void pq_vecswap(const PQ *q, Py_ssize_t a, Py_ssize_t b, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k += ES)
        pq_swap(q, a + k, b + k);
}

static Py_ssize_t pq_med3(const PQ *q, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) {
    if (pq_cmp(q, a, b) < 0)
        return pq_cmp(q, b, c) < 0 ? b : (pq_cmp(q, a, c) < 0 ? c : a);
    return pq_cmp(q, b, c) > 0 ? b : (pq_cmp(q, a, c) < 0 ? a : c);
}

static int outside(const PQ *q, Py_ssize_t left, Py_ssize_t right) {
    return (q->lrange < left && q->rrange < left) || (q->lrange > right && q->rrange > right);
}

/* 0 done, -1 too deep: py_geo_pqsort sorts a copy of the item pointers, so the list is
 * left as it was and the caller runs the reference instead. */
static int pqsort(const PQ *q, Py_ssize_t a, Py_ssize_t n, int depth) {
    if (depth > PQSORT_DEPTH_MAX)
        return -1;
    for (;;) {
        if (n < 7) {
            for (Py_ssize_t pm = a + ES; pm < a + n * ES; pm += ES)
                for (Py_ssize_t pl = pm; pl > a && pq_cmp(q, pl - ES, pl) > 0; pl -= ES)
                    pq_swap(q, pl, pl - ES);
            return 0;
        }
        Py_ssize_t pm = a + (n / 2) * ES;
        if (n > 7) {
            Py_ssize_t pl = a, pn = a + (n - 1) * ES;
            if (n > 40) {
                Py_ssize_t d = (n / 8) * ES;
                pl = pq_med3(q, pl, pl + d, pl + 2 * d);
                pm = pq_med3(q, pm - d, pm, pm + d);
                pn = pq_med3(q, pn - 2 * d, pn - d, pn);
            }
            pm = pq_med3(q, pl, pm, pn);
        }
        pq_swap(q, a, pm);
        Py_ssize_t pa = a + ES, pb = a + ES;
        Py_ssize_t pc = a + (n - 1) * ES, pd = pc;
        for (;;) {
            int r;
            while (pb <= pc && (r = pq_cmp(q, pb, a)) <= 0) {
                if (r == 0) {
                    pq_swap(q, pa, pb);
                    pa += ES;
                }
                pb += ES;
            }
            while (pb <= pc && (r = pq_cmp(q, pc, a)) >= 0) {
                if (r == 0) {
                    pq_swap(q, pc, pd);
                    pd -= ES;
                }
                pc -= ES;
            }
            if (pb > pc)
                break;
            pq_swap(q, pb, pc);
            pb += ES;
            pc -= ES;
        }
        Py_ssize_t pn = a + n * ES;
        Py_ssize_t r = pa - a < pb - pa ? pa - a : pb - pa;
        pq_vecswap(q, a, pb - r, r);
        r = pd - pc < pn - pd - ES ? pd - pc : pn - pd - ES;
        pq_vecswap(q, pb, pn - r, r);
        r = pb - pa;
        if (r > ES && !outside(q, a, a + r - 1) && pqsort(q, a, r / ES, depth + 1) < 0)
            return -1;
        r = pd - pc;
        if (r <= ES)
            return 0;
        a = pn - r;
        n = r / ES;
        if (outside(q, a, a + r - 1))
            return 0;
    }
}

/* pqsort of the first positions lrange..rrange of hits[0..n): 0, or -1 (hits left as they
 * were) when too deep for C. */
static int partial_sort(Hit *hits, Py_ssize_t n, int descending, Py_ssize_t lrange, Py_ssize_t rrange) {
    Hit *copy = PyMem_Malloc(sizeof(Hit) * (size_t)(n ? n : 1));
    if (copy == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    memcpy(copy, hits, sizeof(Hit) * (size_t)n);
    PQ q = {copy, descending, lrange * ES, (rrange + 1) * ES - 1};
    int r = pqsort(&q, 0, n, 0);
    if (r == 0)
        memcpy(hits, copy, sizeof(Hit) * (size_t)n);
    PyMem_Free(copy);
    return r;
}

static PyObject *py_geo_pqsort(PyObject *self, PyObject *args) {
    PyObject *points;
    int descending;
    Py_ssize_t lrange, rrange;
    if (!PyArg_ParseTuple(args, "O!pnn", &PyList_Type, &points, &descending, &lrange, &rrange))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(points);
    Hit *hits = PyMem_Malloc(sizeof(Hit) * (size_t)(n ? n : 1));
    if (hits == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(points, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) < 1 || !PyFloat_CheckExact(PyTuple_GET_ITEM(p, 0))) {
            PyMem_Free(hits);
            PyErr_SetString(PyExc_TypeError, "points must be tuples starting with a float distance");
            return NULL;
        }
        hits[i].dist = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(p, 0));
        hits[i].item = p;
    }
    int r = partial_sort(hits, n, descending, lrange, rrange);
    if (r == 0) /* the same objects in a new order: no reference changes hands */
        for (Py_ssize_t i = 0; i < n; i++)
            PyList_SET_ITEM(points, i, hits[i].item);
    PyMem_Free(hits);
    if (r == -2)
        return NULL;
    return PyBool_FromLong(r == 0);
}

/* qsort's order for hits (no NaN distance): by distance, then position, so stable. */
static int by_distance(const void *a, const void *b) {
    const Hit *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq ? 1 : 0);
}

/* geohash.collect_points: scan the spans of (score, member) pairs in order (stopping at
 * `limit` points when it is not 0), sort (0 none, 1 ascending, 2 descending), keep the
 * first `count` (0: all).  (points, True), or (every point unsorted, False) when the
 * reference must sort them (a NaN distance, or a pqsort too deep for C). */
static PyObject *py_geo_search(PyObject *self, PyObject *args) {
    PyObject *spans;
    Centre c;
    double lon, lat, a, b;
    Py_ssize_t limit, count;
    int order;
    if (!PyArg_ParseTuple(args, "O!iddddnin", &PyList_Type, &spans, &c.kind, &lon, &lat, &a, &b, &limit, &order,
                          &count))
        return NULL;
    if ((c.kind != GEO_CIRCLE && c.kind != GEO_BOX) || order < 0 || order > 2 || limit < 0 || count < 0) {
        PyErr_SetString(PyExc_ValueError, "bad search arguments");
        return NULL;
    }
    c.lon1 = lon;
    c.lon1r = lon * D_R;
    c.lat1r = lat * D_R;
    c.cos1 = cos(c.lat1r);
    c.limit = a;
    c.half_width = a;
    c.half_height = b;
    Hit *hits = NULL;
    Py_ssize_t n = 0, cap = 0;
    PyObject *result = NULL;
    for (Py_ssize_t s = 0; s < PyList_GET_SIZE(spans) && !(n && limit && n >= limit); s++) {
        PyObject *it = PyObject_GetIter(PyList_GET_ITEM(spans, s));
        if (it == NULL)
            goto done;
        PyObject *item;
        while ((item = PyIter_Next(it)) != NULL) {
            PyObject *score = PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2 ? PyTuple_GET_ITEM(item, 0) : NULL;
            double sc = score == NULL ? -1.0 : PyFloat_CheckExact(score) ? PyFloat_AS_DOUBLE(score) : PyFloat_AsDouble(score);
            if (score == NULL || (sc == -1.0 && PyErr_Occurred())) {
                if (score == NULL)
                    PyErr_SetString(PyExc_TypeError, "items must be (score, member) pairs");
                Py_DECREF(item);
                Py_DECREF(it);
                goto done;
            }
            Hit h;
            decode_score(sc, &h.lon, &h.lat);
            if (!point_within(&c, h.lon, h.lat, &h.dist)) {
                Py_DECREF(item);
                continue;
            }
            if (n == cap) {
                Py_ssize_t grown = cap ? 2 * cap : 64;
                Hit *more = PyMem_Realloc(hits, sizeof(Hit) * (size_t)grown);
                if (more == NULL) {
                    Py_DECREF(item);
                    Py_DECREF(it);
                    PyErr_NoMemory();
                    goto done;
                }
                hits = more;
                cap = grown;
            }
            h.item = item; /* the reference is kept */
            h.seq = n;
            hits[n++] = h;
            if (limit && n >= limit)
                break;
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            goto done;
    }
    Py_ssize_t returned = count == 0 || n < count ? n : count;
    int sorted = 1;
    if (order != 0 && returned == n) {
        for (Py_ssize_t i = 0; i < n && sorted; i++)
            sorted = hits[i].dist == hits[i].dist;
        if (sorted) { /* list.sort(key=distance, reverse=descending): stable either way */
            for (Py_ssize_t i = 0; i < n; i++)
                hits[i].dist = order == 2 ? -hits[i].dist : hits[i].dist;
            qsort(hits, (size_t)n, sizeof(Hit), by_distance);
            for (Py_ssize_t i = 0; i < n; i++)
                hits[i].dist = order == 2 ? -hits[i].dist : hits[i].dist;
        }
    } else if (order != 0) {
        int r = partial_sort(hits, n, order == 2, 0, returned - 1);
        if (r == -2)
            goto done;
        sorted = r == 0;
    }
    if (!sorted)
        returned = n;
    PyObject *points = PyList_New(returned);
    if (points == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < returned; i++) {
        PyObject *p = point_tuple(hits[i].dist, PyTuple_GET_ITEM(hits[i].item, 0), PyTuple_GET_ITEM(hits[i].item, 1),
                                  hits[i].lon, hits[i].lat);
        if (p == NULL) {
            Py_DECREF(points);
            goto done;
        }
        PyList_SET_ITEM(points, i, p);
    }
    result = Py_BuildValue("(NO)", points, sorted ? Py_True : Py_False);
done:
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(hits[i].item);
    PyMem_Free(hits);
    return result;
}

/* ---------------------------------------------------------------- reply text */

typedef NativeBuf Buf;

static int buf_put(Buf *b, const char *s, size_t n) {
    if (native_buf_reserve(b, n, 256) < 0)
        return -1;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return 0;
}

/* The decimal digits of n at the end of out[0..24): where they start. */
static char *digits_of(unsigned long long n, char *end) {
    do {
        *--end = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    return end;
}

static int buf_header(Buf *b, char kind, long long n) {
    char text[24];
    unsigned long long magnitude = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    char *end = text + sizeof text, *p = end;
    *--p = '\n';
    *--p = '\r';
    p = digits_of(magnitude, p);
    if (n < 0)
        *--p = '-';
    *--p = kind;
    return buf_put(b, p, (size_t)(end - p));
}

static int buf_bulk(Buf *b, const char *s, size_t n) {
    if (buf_header(b, '$', (long long)n) < 0 || buf_put(b, s, n) < 0)
        return -1;
    return buf_put(b, "\r\n", 2);
}

/* geohash.format_distance: fixedpoint_d2string(value, 4). */
static int distance_text(double value, char *out) {
    if (value == 0) {
        memcpy(out, "0.0000", 7);
        return 6;
    }
    double x = value * 10000.0;
    long long scaled = (isfinite(x) && x >= -TWO63 && x < TWO63) ? llrint(x) : LLONG_MIN;
    unsigned long long magnitude = scaled < 0 ? 0ULL - (unsigned long long)scaled : (unsigned long long)scaled;
    char text[32];
    char *end = text + sizeof text, *p = end;
    unsigned long long fraction = magnitude % 10000;
    for (int i = 0; i < 4; i++, fraction /= 10)
        *--p = (char)('0' + fraction % 10);
    *--p = '.';
    p = digits_of(magnitude / 10000, p);
    if (scaled < 0)
        *--p = '-';
    int len = (int)(end - p);
    memcpy(out, p, (size_t)len);
    out[len] = '\0';
    return len;
}

/* %.17f of a double below 184 in magnitude, exactly as printf rounds it (to nearest,
 * ties to even), in integers: |value| = m * 2^e with a 53-bit m, so |value| * 10^17 =
 * m * 5^17 * 2^(e + 17), and m * 5^17 < 2^93 fits in 128 bits.  0 when the value is not
 * in that range (the caller uses snprintf). */
static int fixed17_text(double value, char *out) {
    double magnitude = fabs(value);
    if (!(magnitude < 184.0))
        return 0;
    int e;
    double frac = frexp(magnitude, &e); /* magnitude = frac * 2^e, frac in [0.5, 1) */
    unsigned long long m = (unsigned long long)ldexp(frac, 53); /* exact */
    e -= 53;
    int shift = -(e + 17); /* > 0: magnitude < 184 < 2^36 */
    unsigned __int128 n = (unsigned __int128)m * 762939453125ULL; /* 5^17 */
    unsigned long long scaled;
    if (shift <= 0) {
        scaled = (unsigned long long)(n << -shift);
    } else if (shift > 100) {
        scaled = 0; /* n < 2^93 < half of 2^shift: rounds to 0 */
    } else {
        unsigned __int128 q = n >> shift;
        unsigned __int128 rest = n - (q << shift);
        unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
        if (rest > half || (rest == half && (q & 1)))
            q++;
        scaled = (unsigned long long)q; /* below 184 * 10^17 < 2^64 */
    }
    char text[48];
    char *end = text + sizeof text, *p = end;
    unsigned long long fraction = scaled % 100000000000000000ULL;
    for (int i = 0; i < 17; i++, fraction /= 10)
        *--p = (char)('0' + fraction % 10);
    *--p = '.';
    p = digits_of(scaled / 100000000000000000ULL, p);
    if (signbit(value))
        *--p = '-';
    int len = (int)(end - p);
    memcpy(out, p, (size_t)len);
    out[len] = '\0';
    return len;
}

/* geohash.format_coordinate: %.17f without trailing zeros (and "0" for "-0"). */
static int coordinate_text(double value, char *out, size_t size) {
    int len = fixed17_text(value, out);
    if (len == 0) {
        len = snprintf(out, size, "%.17f", value);
        if (len < 0 || (size_t)len >= size)
            return -1;
    }
    if (memchr(out, '.', (size_t)len) != NULL) {
        while (len > 0 && out[len - 1] == '0')
            len--;
        if (len > 0 && out[len - 1] == '.')
            len--;
    }
    if (len == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        len = 1;
    }
    out[len] = '\0';
    return len;
}

#define COORD_TEXT 400 /* %.17f of any double fits (309 integral digits at most) */

/* commands.geo._coordinate: a bulk string in RESP2, a double in RESP3. */
static int buf_coordinate(Buf *b, double value, int resp3) {
    char text[COORD_TEXT];
    int len = coordinate_text(value, text, sizeof text);
    if (len < 0) {
        PyErr_SetString(PyExc_ValueError, "coordinate text too long");
        return -1;
    }
    if (!resp3)
        return buf_bulk(b, text, (size_t)len);
    return buf_put(b, ",", 1) < 0 || buf_put(b, text, (size_t)len) < 0 || buf_put(b, "\r\n", 2) < 0 ? -1 : 0;
}

static PyObject *buf_finish(Buf *b, int ok) {
    PyObject *r = ok ? PyBytes_FromStringAndSize(b->buf, (Py_ssize_t)b->len) : NULL;
    PyMem_Free(b->buf);
    return r;
}

static PyObject *py_format_distance(PyObject *self, PyObject *arg) {
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred())
        return NULL;
    char text[48];
    int len = distance_text(value, text);
    return PyBytes_FromStringAndSize(text, len);
}

static PyObject *py_format_coordinate(PyObject *self, PyObject *arg) {
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred())
        return NULL;
    char text[COORD_TEXT];
    int len = coordinate_text(value, text, sizeof text);
    if (len < 0) {
        PyErr_SetString(PyExc_ValueError, "coordinate text too long");
        return NULL;
    }
    return PyBytes_FromStringAndSize(text, len);
}

/* commands.geo._search_reply with at least one of WITHDIST/WITHHASH/WITHCOORD, encoded. */
static PyObject *py_geo_reply(PyObject *self, PyObject *args) {
    PyObject *points;
    Py_ssize_t n;
    double conversion;
    int withdist, withhash, withcoord, resp3;
    if (!PyArg_ParseTuple(args, "O!ndpppp", &PyList_Type, &points, &n, &conversion, &withdist, &withhash, &withcoord,
                          &resp3))
        return NULL;
    if (n < 0 || n > PyList_GET_SIZE(points)) {
        PyErr_SetString(PyExc_ValueError, "count out of range");
        return NULL;
    }
    Buf b = {NULL, 0, 0};
    int ok = buf_header(&b, '*', n) == 0;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        PyObject *p = PyList_GET_ITEM(points, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 5 || !PyBytes_Check(PyTuple_GET_ITEM(p, 2))) {
            PyErr_SetString(PyExc_TypeError, "points must be (dist, score, member, lon, lat)");
            ok = 0;
            break;
        }
        double dist = PyFloat_AsDouble(PyTuple_GET_ITEM(p, 0));
        double score = PyFloat_AsDouble(PyTuple_GET_ITEM(p, 1));
        double lon = PyFloat_AsDouble(PyTuple_GET_ITEM(p, 3));
        double lat = PyFloat_AsDouble(PyTuple_GET_ITEM(p, 4));
        if (PyErr_Occurred()) {
            ok = 0;
            break;
        }
        PyObject *member = PyTuple_GET_ITEM(p, 2);
        ok = buf_header(&b, '*', 1 + withdist + withhash + withcoord) == 0 &&
             buf_bulk(&b, PyBytes_AS_STRING(member), (size_t)PyBytes_GET_SIZE(member)) == 0;
        if (ok && withdist) {
            char text[48];
            int len = distance_text(dist / conversion, text);
            ok = buf_bulk(&b, text, (size_t)len) == 0;
        }
        if (ok && withhash) {
            long long hash = (score >= -TWO63 && score < TWO63) ? (long long)score : LLONG_MIN;
            ok = buf_header(&b, ':', hash) == 0;
        }
        if (ok && withcoord)
            ok = buf_header(&b, '*', 2) == 0 && buf_coordinate(&b, lon, resp3) == 0 &&
                 buf_coordinate(&b, lat, resp3) == 0;
    }
    return buf_finish(&b, ok);
}

/* GEOPOS's reply: [lon, lat] per score, a null array for None. */
static PyObject *py_geo_pos(PyObject *self, PyObject *args) {
    PyObject *scores;
    int resp3;
    if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &scores, &resp3))
        return NULL;
    Buf b = {NULL, 0, 0};
    int ok = buf_header(&b, '*', PyList_GET_SIZE(scores)) == 0;
    for (Py_ssize_t i = 0; ok && i < PyList_GET_SIZE(scores); i++) {
        PyObject *score = PyList_GET_ITEM(scores, i);
        if (score == Py_None) {
            ok = buf_put(&b, resp3 ? "_\r\n" : "*-1\r\n", resp3 ? 3 : 5) == 0;
            continue;
        }
        double s = PyFloat_AsDouble(score);
        if (s == -1.0 && PyErr_Occurred()) {
            ok = 0;
            break;
        }
        double lon, lat;
        decode_score(s, &lon, &lat);
        ok = buf_header(&b, '*', 2) == 0 && buf_coordinate(&b, lon, resp3) == 0 && buf_coordinate(&b, lat, resp3) == 0;
    }
    return buf_finish(&b, ok);
}

static PyMethodDef hllgeo_methods[] = {
    {"murmurhash64a", py_murmurhash64a, METH_O, "Redis's MurmurHash64A of a bytes-like object (HLL seed)."},
    {"hll_add", py_hll_add, METH_VARARGS, "hll_add(hll, elements, max_bytes) -> (changed, corrupt): PFADD's loop."},
    {"native_handlers", py_native_handlers, METH_NOARGS,
     "native_handlers() -> {name: capsule}: PFADD's and PFCOUNT's handlers for the C request loop."},
    {"set_native_handlers", py_set_native_handlers, METH_O,
     "set_native_handlers(on): run the handlers, or decline every call to the Python handlers (tests)."},
    {"hll_count", py_hll_count, METH_O, "hll_count(hll) -> int | None: the estimate (None: corrupt sparse body)."},
    {"hll_merge", py_hll_merge, METH_VARARGS, "hll_merge(registers, hll) -> bool: register-wise maximum in place."},
    {"hll_estimate", py_hll_estimate, METH_O, "hll_estimate(registers) -> int: the estimator over linear registers."},
    {"geo_decode", py_geo_decode, METH_O, "geo_decode(score) -> (longitude, latitude)."},
    {"geo_cells", py_geo_cells, METH_VARARGS,
     "geo_cells(kind, lon, lat, conversion, radius, width, height) -> [(bits, step)] * 9: the cells to visit."},
    {"geo_search", py_geo_search, METH_VARARGS,
     "geo_search(spans, kind, lon, lat, a, b, limit, order, count) -> (points, sorted)."},
    {"geo_pqsort", py_geo_pqsort, METH_VARARGS, "geo_pqsort(points, descending, lrange, rrange) -> bool."},
    {"geo_reply", py_geo_reply, METH_VARARGS,
     "geo_reply(points, n, conversion, withdist, withhash, withcoord, resp3) -> bytes."},
    {"geo_pos", py_geo_pos, METH_VARARGS, "geo_pos(scores, resp3) -> bytes: GEOPOS's reply."},
    {"format_distance", py_format_distance, METH_O, "A distance with four decimals."},
    {"format_coordinate", py_format_coordinate, METH_O, "A coordinate as %.17f without trailing zeros."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hllgeo_module = {
    PyModuleDef_HEAD_INIT,
    "dumpling._hllgeo",
    "C twins of the hot HyperLogLog and GEO loops (dumpling.hyperloglog, dumpling.geohash).",
    -1,
    hllgeo_methods,
};

PyMODINIT_FUNC PyInit__hllgeo(void) {
    D_R = M_PI / 180.0;
    native_import_keytable(); /* (the keyspace lookups of the native handlers) */
    return PyModule_Create(&hllgeo_module);
}
