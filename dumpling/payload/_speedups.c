/*
 * dumpling.payload._speedups: the per-string loops of big plain collection bodies, in C.
 *
 * A type 1/2/4/5 body (plain list, set, hash, skiplist zset) is a long run of small
 * rdbStrings; in Python every one of them costs a few hundred nanoseconds.  This
 * module reads and writes those runs with the exact contracts of the pure-Python
 * code in ``bulk.py`` (which stays the fallback and the reference):
 *
 *   read_records(buf, pos, end, count, shape) -> (columns, pos)
 *   read_dict(buf, pos, end, count)            -> ({field: value}, pos)
 *   read_set(buf, pos, end, count)             -> ({member, ...}, pos)
 *   append_strings(out, items, compress)       -> None
 *   append_string(out, s, compress)            -> None
 *   append_mapping(out, fields, compress)      -> None
 *   append_scored(out, pairs, compress)        -> None
 *   open_payload(payload, max_version, check_crc, blob_types) -> (type, version, body, end) | None
 *   seal(body, version)                        -> bytes | None
 *
 * ``open_payload`` and ``seal`` are the envelope of small payloads (RESTORE and DUMP of
 * small keys): the footer version, the CRC-64 and the one rdbString most small bodies
 * are (a small list's one quicklist node too); LZF strings are expanded here too.
 * The common rdbString forms (6/14/32/64-bit lengths, INT8/16/32) are handled here;
 * the rare ones (LZF, unknown encodings, which are errors) go through the Python
 * ``primitives.read_string``, and every string the writers cannot settle cheaply
 * (LZF candidates when compressing, anything that is not exactly ``bytes``) through
 * ``primitives.append_string``, so the bytes read and written are exactly theirs.
 *
 * Safety rules: ``buf`` must be a ``bytes`` object (immutable, so callbacks cannot
 * change it under us) and ``end`` at most its length; every length is checked
 * against ``end`` before it is used, in unsigned 64-bit arithmetic that cannot wrap;
 * the GIL is held throughout; a malformed payload raises the ``PayloadError`` that
 * ``dumpling.payload.errors.bad_data`` builds, like the Python readers.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "../_native.h"

/* Python helpers this module defers to, looked up once at import. */
static PyObject *bad_data_fn;      /* dumpling.payload.errors.bad_data(detail) */
static PyObject *read_string_fn;   /* dumpling.payload.primitives.read_string(buf, pos, end) */
static PyObject *append_string_fn; /* dumpling.payload.primitives.append_string(out, s, compress) */
static PyObject *compress_fn;      /* dumpling.payload.compression.compress_for_rdb(s) */
static PyObject *lzf_compress_fn;  /* python-lzf's compress(s, room), which compress_for_rdb calls, or NULL */

#define MAX_SHAPE 8 /* longest record shape read_records accepts */

/* Raise the PayloadError that bad_data(detail) returns. */
static void
raise_bad_data(const char *detail)
{
    PyObject *exc = PyObject_CallFunction(bad_data_fn, "s", detail);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}

/* ------------------------------------------------------------------------- */
/* reading */

typedef struct {
    PyObject *buf;              /* the payload (bytes), borrowed from the call's arguments */
    const unsigned char *data;  /* its bytes */
    Py_ssize_t end;             /* nothing at or past this index is read */
    Py_ssize_t lzf_next;        /* read_lzf: the position after the compressed string */
} Reader;

static uint64_t
load_be(const unsigned char *p, int size)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The decimal text of v as a new bytes object (what b"%d" % v gives). */
static PyObject *
decimal_bytes(int64_t v)
{
    char text[24];
    char *p = text + sizeof(text);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }
    return PyBytes_FromStringAndSize(p, (Py_ssize_t)(text + sizeof(text) - p));
}

/* primitives.read_string for the forms not handled here; checks what it returns. */
static PyObject *
read_string_slow(Reader *r, Py_ssize_t *pos)
{
    PyObject *result = PyObject_CallFunction(read_string_fn, "Onn", r->buf, *pos, r->end);
    if (result == NULL) {
        return NULL;
    }
    if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2 || !PyLong_Check(PyTuple_GET_ITEM(result, 1))) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_TypeError, "read_string must return (value, position)");
        return NULL;
    }
    Py_ssize_t next = PyLong_AsSsize_t(PyTuple_GET_ITEM(result, 1));
    if (next == -1 && PyErr_Occurred()) {
        Py_DECREF(result);
        return NULL;
    }
    if (next <= *pos || next > r->end) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_RuntimeError, "read_string returned a position outside the string");
        return NULL;
    }
    PyObject *value = PyTuple_GET_ITEM(result, 0);
    Py_INCREF(value);
    Py_DECREF(result);
    *pos = next;
    return value;
}


/* An rdb length (6/14/32/64-bit forms only) at *p: 0 and *p moved past it, -1 if it is not one. */
static int
plain_length(const unsigned char *d, Py_ssize_t *p, Py_ssize_t end, uint64_t *n)
{
    Py_ssize_t q = *p;
    if (q >= end) {
        return -1;
    }
    unsigned int b = d[q];
    if (b < 0x40) {
        *n = b;
        *p = q + 1;
    }
    else if (b < 0x80) {
        if (end - q < 2) {
            return -1;
        }
        *n = ((uint64_t)(b & 0x3F) << 8) | d[q + 1];
        *p = q + 2;
    }
    else if (b == 0x80 && end - q >= 5) {
        *n = load_be(d + q + 1, 4);
        *p = q + 5;
    }
    else if (b == 0x81 && end - q >= 9) {
        *n = load_be(d + q + 1, 8);
        *p = q + 9;
    }
    else {
        return -1;
    }
    return 0;
}

/* Expands an LZF stream (liblzf's format: literal runs of ctrl+1 bytes; back-references of
 * (ctrl>>5)+2 bytes, or 9 + a length byte, at distance ((ctrl&31)<<8) + next + 1) into
 * exactly `ulen` bytes. 0 on success, -1 if the stream is malformed or has another size. */
static int
lzf_expand(const unsigned char *in, size_t n, unsigned char *out, size_t ulen)
{
    size_t i = 0, o = 0;
    while (i < n) {
        size_t ctrl = in[i++];
        if (ctrl < 32) {
            size_t run = ctrl + 1;
            if (run > n - i || run > ulen - o) {
                return -1;
            }
            memcpy(out + o, in + i, run);
            i += run;
            o += run;
            continue;
        }
        size_t len = ctrl >> 5;
        if (len == 7) {
            if (i >= n) {
                return -1;
            }
            len += in[i++];
        }
        if (i >= n) {
            return -1;
        }
        size_t back = ((ctrl & 0x1F) << 8) + in[i++] + 1;
        len += 2;
        if (back > o || len > ulen - o) {
            return -1;
        }
        if (back >= len) { /* the source ends before what is written begins */
            memcpy(out + o, out + o - back, len);
            o += len;
            continue;
        }
        for (size_t k = 0; k < len; k++, o++) {
            out[o] = out[o - back]; /* byte by byte: the source overlaps what is written */
        }
    }
    return o == ulen ? 0 : -1;
}

/* An LZF rdbString (0xC3 clen ulen data) at p: a new bytes object and r->lzf_next set; NULL
 * without an exception when anything is unusual (the Python reader then decides). */
static PyObject *
read_lzf(Reader *r, Py_ssize_t p)
{
    uint64_t clen, ulen;
    p += 1;
    if (plain_length(r->data, &p, r->end, &clen) < 0 || plain_length(r->data, &p, r->end, &ulen) < 0) {
        return NULL;
    }
    if (ulen == 0 || clen > (uint64_t)(r->end - p) || ulen > 88 * clen) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)ulen);
    if (out == NULL) {
        return NULL;
    }
    if (lzf_expand(r->data + p, (size_t)clen, (unsigned char *)PyBytes_AS_STRING(out), (size_t)ulen) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    r->lzf_next = p + (Py_ssize_t)clen;
    return out;
}

/* One rdbString at *pos (rdbGenericLoadStringObject); a new reference, *pos moved past it. */
static PyObject *
read_string(Reader *r, Py_ssize_t *pos)
{
    const unsigned char *d = r->data;
    Py_ssize_t p = *pos;
    Py_ssize_t end = r->end;
    Py_ssize_t start;
    uint64_t n;

    if (p >= end) {
        raise_bad_data("string past end of payload");
        return NULL;
    }
    unsigned int b = d[p];
    if (b < 0x40) {
        n = b;
        start = p + 1;
    }
    else if (b < 0x80) {
        if (end - p < 2) {
            raise_bad_data("14-bit length past end of payload");
            return NULL;
        }
        n = ((uint64_t)(b & 0x3F) << 8) | d[p + 1];
        start = p + 2;
    }
    else if (b == 0x80) {
        if (end - p < 5) {
            raise_bad_data("32-bit length past end of payload");
            return NULL;
        }
        n = load_be(d + p + 1, 4);
        start = p + 5;
    }
    else if (b == 0x81) {
        if (end - p < 9) {
            raise_bad_data("64-bit length past end of payload");
            return NULL;
        }
        n = load_be(d + p + 1, 8);
        start = p + 9;
    }
    else if (b == 0xC0) {
        if (end - p < 2) {
            raise_bad_data("INT8 past end of payload");
            return NULL;
        }
        int v = d[p + 1];
        PyObject *s = decimal_bytes(v > 127 ? v - 256 : v);
        if (s != NULL) {
            *pos = p + 2;
        }
        return s;
    }
    else if (b == 0xC1) {
        if (end - p < 3) {
            raise_bad_data("INT16 past end of payload");
            return NULL;
        }
        int32_t v = (int32_t)(d[p + 1] | ((uint32_t)d[p + 2] << 8));
        PyObject *s = decimal_bytes(v > 32767 ? v - 65536 : v);
        if (s != NULL) {
            *pos = p + 3;
        }
        return s;
    }
    else if (b == 0xC2) {
        if (end - p < 5) {
            raise_bad_data("INT32 past end of payload");
            return NULL;
        }
        int64_t v = (int64_t)(d[p + 1] | ((uint32_t)d[p + 2] << 8) | ((uint32_t)d[p + 3] << 16) |
                              ((uint32_t)d[p + 4] << 24));
        PyObject *s = decimal_bytes(v > INT32_MAX ? v - ((int64_t)1 << 32) : v);
        if (s != NULL) {
            *pos = p + 5;
        }
        return s;
    }
    else if (b == 0xC3) {
        PyObject *s = read_lzf(r, p);
        if (s == NULL && !PyErr_Occurred()) {
            return read_string_slow(r, pos); /* not a clean stream: the Python reader words the error */
        }
        if (s != NULL) {
            *pos = r->lzf_next;
        }
        return s;
    }
    else {
        /* the encodings that do not exist (the Python reader words the error) */
        return read_string_slow(r, pos);
    }
    /* start <= end holds here: every header above was checked against end */
    if (n > (uint64_t)(end - start)) {
        raise_bad_data("string past end of payload");
        return NULL;
    }
    PyObject *s = PyBytes_FromStringAndSize((const char *)d + start, (Py_ssize_t)n);
    if (s != NULL) {
        *pos = start + (Py_ssize_t)n;
    }
    return s;
}

/* An 8-byte little-endian double at *pos, as a float. */
static PyObject *
read_double(Reader *r, Py_ssize_t *pos)
{
    if (r->end - *pos < 8) {
        raise_bad_data("binary double past end of payload");
        return NULL;
    }
    double x = PyFloat_Unpack8((const char *)r->data + *pos, 1);
    if (x == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    *pos += 8;
    return PyFloat_FromDouble(x);
}

static int
as_ssize(PyObject *o, Py_ssize_t *out, const char *name)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

/* The shared (buf, pos, end, count) arguments of the readers. */
static int
reader_args(PyObject *const *args, Reader *r, Py_ssize_t *pos, Py_ssize_t *count)
{
    if (!PyBytes_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "buf must be bytes, not %.100s", Py_TYPE(args[0])->tp_name);
        return -1;
    }
    if (as_ssize(args[1], pos, "pos") < 0 || as_ssize(args[2], &r->end, "end") < 0 ||
        as_ssize(args[3], count, "count") < 0) {
        return -1;
    }
    if (*pos < 0 || r->end < 0 || r->end > PyBytes_GET_SIZE(args[0])) {
        PyErr_SetString(PyExc_ValueError, "pos and end must lie inside buf");
        return -1;
    }
    if (*count < 0) {
        PyErr_SetString(PyExc_ValueError, "count must not be negative");
        return -1;
    }
    r->buf = args[0];
    r->data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    return 0;
}

/* Refuse up front a count the bytes left cannot hold (also bounds what we allocate). */
static int
check_room(Py_ssize_t pos, Py_ssize_t end, Py_ssize_t count, Py_ssize_t min_record)
{
    if (pos > end || count > (end - pos) / min_record) {
        raise_bad_data("strings past end of payload");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(read_records_doc,
"read_records(buf, pos, end, count, shape) -> (columns, pos)\n\n"
"``count`` records of ``shape`` from ``pos``, one list per field: each ``s`` an\n"
"rdbString (bytes), each ``d`` an 8-byte little-endian double (float).");

static PyObject *
read_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Reader r;
    Py_ssize_t pos, count, width;
    PyObject *columns[MAX_SHAPE] = {NULL};
    PyObject *lists;
    PyObject *result = NULL;

    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "read_records expected 5 arguments, got %zd", nargs);
        return NULL;
    }
    if (reader_args(args, &r, &pos, &count) < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "shape must be a str");
        return NULL;
    }
    const char *shape = PyUnicode_AsUTF8AndSize(args[4], &width);
    if (shape == NULL) {
        return NULL;
    }
    if (width < 1 || width > MAX_SHAPE) {
        PyErr_SetString(PyExc_ValueError, "shape must have 1 to 8 fields");
        return NULL;
    }
    Py_ssize_t min_record = 0;
    for (Py_ssize_t k = 0; k < width; k++) {
        if (shape[k] == 's') {
            min_record += 1;
        }
        else if (shape[k] == 'd') {
            min_record += 8;
        }
        else {
            PyErr_SetString(PyExc_ValueError, "shape fields must be 's' or 'd'");
            return NULL;
        }
    }
    if (count > 0 && check_room(pos, r.end, count, min_record) < 0) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < width; k++) {
        columns[k] = PyList_New(count);
        if (columns[k] == NULL) {
            goto done;
        }
        /* Half-filled lists hold NULLs: keep them away from gc.get_objects() meanwhile. */
        PyObject_GC_UnTrack(columns[k]);
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        for (Py_ssize_t k = 0; k < width; k++) {
            PyObject *value = shape[k] == 's' ? read_string(&r, &pos) : read_double(&r, &pos);
            if (value == NULL) {
                goto done;
            }
            PyList_SET_ITEM(columns[k], i, value);
        }
    }
    lists = PyList_New(width);
    if (lists == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < width; k++) {
        PyObject_GC_Track(columns[k]);
        PyList_SET_ITEM(lists, k, columns[k]);
        columns[k] = NULL;
    }
    result = Py_BuildValue("(Nn)", lists, pos);
done:
    for (Py_ssize_t k = 0; k < width; k++) {
        Py_XDECREF(columns[k]);
    }
    return result;
}

PyDoc_STRVAR(read_dict_doc,
"read_dict(buf, pos, end, count, into=None) -> (mapping, pos)\n\n"
"``count`` (field, value) rdbString pairs straight into a new dict, or into ``into`` (an empty\n"
"mapping: a big hash's KeyTable); a repeated field keeps its last value (the caller compares\n"
"the size with ``count``).");

/* read_dict (``pairs``: field, value into a dict, or into args[4]) and read_set (strings into a
 * set). */
static PyObject *
read_collection(PyObject *const *args, Py_ssize_t nargs, int pairs)
{
    Reader r;
    Py_ssize_t pos, count;

    if (nargs != 4 && !(pairs && nargs == 5)) {
        PyErr_Format(PyExc_TypeError, "%s expected 4 arguments, got %zd", pairs ? "read_dict" : "read_set", nargs);
        return NULL;
    }
    PyObject *into = nargs == 5 && args[4] != Py_None ? args[4] : NULL;
    int table = into != NULL && native_is_keytable(into);
    if (reader_args(args, &r, &pos, &count) < 0) {
        return NULL;
    }
    if (count > 0 && check_room(pos, r.end, count, pairs ? 2 : 1) < 0) {
        return NULL;
    }
    PyObject *out = into != NULL ? Py_NewRef(into) : pairs ? PyDict_New() : PySet_New(NULL);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *first = read_string(&r, &pos);
        if (first == NULL) {
            goto fail;
        }
        int rc;
        if (pairs) {
            PyObject *value = read_string(&r, &pos);
            if (value == NULL) {
                Py_DECREF(first);
                goto fail;
            }
            rc = table ? (native_kt->store(out, first, value, 0, NULL) < 0 ? -1 : 0)
                 : into != NULL && !PyDict_CheckExact(into) ? PyObject_SetItem(out, first, value)
                                                            : PyDict_SetItem(out, first, value);
            Py_DECREF(value);
        }
        else {
            rc = PySet_Add(out, first);
        }
        Py_DECREF(first);
        if (rc < 0) {
            goto fail;
        }
    }
    return Py_BuildValue("(Nn)", out, pos);
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
read_dict(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return read_collection(args, nargs, 1);
}

PyDoc_STRVAR(read_set_doc,
"read_set(buf, pos, end, count) -> (set, pos)\n\n"
"``count`` rdbStrings straight into a set (the caller compares its size with ``count``).");

static PyObject *
read_set(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return read_collection(args, nargs, 0);
}

/* ------------------------------------------------------------------------- */
/* writing */

/* A growing output buffer; copied into the caller's bytearray once at the end. */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    PyObject *scratch; /* bytearray for append_string callbacks, made on first use */
    PyObject *compress; /* Py_True / Py_False (borrowed) */
    int compressing;
} Writer;

static int
writer_init(Writer *w, PyObject *compress_arg)
{
    w->data = NULL;
    w->len = w->cap = 0;
    w->scratch = NULL;
    int truth = PyObject_IsTrue(compress_arg);
    if (truth < 0) {
        return -1;
    }
    w->compressing = truth;
    w->compress = truth ? Py_True : Py_False;
    return 0;
}

static void
writer_free(Writer *w)
{
    PyMem_Free(w->data);
    w->data = NULL;
    Py_CLEAR(w->scratch);
}

static int
writer_reserve(Writer *w, Py_ssize_t extra)
{
    if (extra <= w->cap - w->len) {
        return 0;
    }
    if (extra > PY_SSIZE_T_MAX - w->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = w->len + extra;
    Py_ssize_t cap = w->cap ? w->cap : 1 << 12;
    while (cap < need) {
        cap = cap > PY_SSIZE_T_MAX / 2 ? need : cap * 2;
    }
    char *data = PyMem_Realloc(w->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->data = data;
    w->cap = cap;
    return 0;
}

/* Append what was written to the bytearray ``out``. */
static int
writer_flush(Writer *w, PyObject *out)
{
    Py_ssize_t old = PyByteArray_GET_SIZE(out);
    if (w->len > PY_SSIZE_T_MAX - old) {
        PyErr_NoMemory();
        return -1;
    }
    if (w->len == 0) {
        return 0;
    }
    if (PyByteArray_Resize(out, old + w->len) < 0) {
        return -1;
    }
    memcpy(PyByteArray_AS_STRING(out) + old, w->data, (size_t)w->len);
    return 0;
}

/* rdbSaveLen: the shortest of the 6/14/32/64-bit forms (room for 9 bytes reserved). */
static void
put_len(Writer *w, uint64_t n)
{
    unsigned char *p = (unsigned char *)w->data + w->len;
    if (n < 0x40) {
        p[0] = (unsigned char)n;
        w->len += 1;
    }
    else if (n < 0x4000) {
        p[0] = (unsigned char)(0x40 | (n >> 8));
        p[1] = (unsigned char)(n & 0xFF);
        w->len += 2;
    }
    else {
        int size = n <= 0xFFFFFFFFu ? 4 : 8;
        p[0] = size == 4 ? 0x80 : 0x81;
        for (int i = 0; i < size; i++) {
            p[1 + i] = (unsigned char)(n >> (8 * (size - 1 - i)));
        }
        w->len += 1 + size;
    }
}

/* string2ll restricted to what append_string encodes as an integer: canonical decimal
 * text (optional '-', no leading zeros, not "-0") of at most 11 bytes inside int32. */
static int
canonical_int32(const char *s, Py_ssize_t n, int32_t *out)
{
    Py_ssize_t i = 0;
    int negative = 0;
    if (n < 1 || n > 11) {
        return 0;
    }
    if (s[0] == '-') {
        negative = 1;
        i = 1;
    }
    if (i == n) {
        return 0;
    }
    if (s[i] == '0') {
        if (n == 1) {
            *out = 0;
            return 1;
        }
        return 0; /* leading zero, or "-0" */
    }
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        v = v * 10 + (s[i] - '0'); /* at most 11 digits: no overflow */
    }
    if (negative) {
        v = -v;
    }
    if (v < INT32_MIN || v > INT32_MAX) {
        return 0;
    }
    *out = (int32_t)v;
    return 1;
}

/* primitives.append_string into the scratch bytearray, then copied. */
static int
write_string_slow(Writer *w, PyObject *item)
{
    if (w->scratch == NULL) {
        w->scratch = PyByteArray_FromStringAndSize(NULL, 0);
        if (w->scratch == NULL) {
            return -1;
        }
    }
    PyObject *result = PyObject_CallFunctionObjArgs(append_string_fn, w->scratch, item, w->compress, NULL);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    Py_ssize_t size = PyByteArray_GET_SIZE(w->scratch);
    if (writer_reserve(w, size) < 0) {
        return -1;
    }
    if (size > 0) {
        memcpy(w->data + w->len, PyByteArray_AS_STRING(w->scratch), (size_t)size);
    }
    w->len += size;
    return PyByteArray_Resize(w->scratch, 0);
}

/* rdbSaveRawString of one item, exactly as primitives.append_string writes it. */
static int
write_string(Writer *w, PyObject *item)
{
    if (!PyBytes_CheckExact(item)) {
        return write_string_slow(w, item);
    }
    Py_ssize_t n = PyBytes_GET_SIZE(item);
    const char *s = PyBytes_AS_STRING(item);
    if (w->compressing && n > 20) { /* LZF is tried, as compression.compress_for_rdb tries it */
        PyObject *packed;
        if (lzf_compress_fn != NULL) { /* its call of python-lzf, without its frame */
            PyObject *room = PyLong_FromSsize_t(n - 5);
            PyObject *lzf_args[2] = {item, room};
            packed = room == NULL ? NULL : PyObject_Vectorcall(lzf_compress_fn, lzf_args, 2, NULL);
            Py_XDECREF(room);
        }
        else {
            packed = PyObject_CallOneArg(compress_fn, item);
        }
        if (packed == NULL) {
            return -1;
        }
        if (packed != Py_None) {
            if (!PyBytes_Check(packed)) {
                Py_DECREF(packed);
                PyErr_SetString(PyExc_TypeError, "compress_for_rdb must return bytes or None");
                return -1;
            }
            Py_ssize_t clen = PyBytes_GET_SIZE(packed);
            if (writer_reserve(w, 1 + 9 + 9 + clen) < 0) {
                Py_DECREF(packed);
                return -1;
            }
            w->data[w->len++] = (char)0xC3; /* ENC_LZF, then the compressed and the plain length */
            put_len(w, (uint64_t)clen);
            put_len(w, (uint64_t)n);
            memcpy(w->data + w->len, PyBytes_AS_STRING(packed), (size_t)clen);
            w->len += clen;
            Py_DECREF(packed);
            return 0;
        }
        Py_DECREF(packed); /* stored raw, below */
    }
    if (n >= 1 && n <= 11 && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-')) {
        int32_t v;
        if (canonical_int32(s, n, &v)) {
            if (writer_reserve(w, 5) < 0) {
                return -1;
            }
            unsigned char *p = (unsigned char *)w->data + w->len;
            uint32_t u = (uint32_t)v;
            if (v >= -128 && v <= 127) {
                p[0] = 0xC0;
                p[1] = (unsigned char)(u & 0xFF);
                w->len += 2;
            }
            else if (v >= -32768 && v <= 32767) {
                p[0] = 0xC1;
                p[1] = (unsigned char)(u & 0xFF);
                p[2] = (unsigned char)((u >> 8) & 0xFF);
                w->len += 3;
            }
            else {
                p[0] = 0xC2;
                for (int i = 0; i < 4; i++) {
                    p[1 + i] = (unsigned char)((u >> (8 * i)) & 0xFF);
                }
                w->len += 5;
            }
            return 0;
        }
    }
    if (n > PY_SSIZE_T_MAX - 9 || writer_reserve(w, n + 9) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return -1;
    }
    put_len(w, (uint64_t)n);
    memcpy(w->data + w->len, s, (size_t)n);
    w->len += n;
    return 0;
}

static int
writer_args(PyObject *const *args, Py_ssize_t nargs, const char *name, Writer *w)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "%s expected 3 arguments, got %zd", name, nargs);
        return -1;
    }
    if (!PyByteArray_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "out must be a bytearray, not %.100s", Py_TYPE(args[0])->tp_name);
        return -1;
    }
    return writer_init(w, args[2]);
}

PyDoc_STRVAR(append_strings_doc,
"append_strings(out, items, compress) -> None\n\n"
"primitives.append_string(out, item, compress) for each item, in order.");

static PyObject *
append_strings(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Writer w;
    if (writer_args(args, nargs, "append_strings", &w) < 0) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(args[1]);
    if (it == NULL) {
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        int rc = write_string(&w, item);
        Py_DECREF(item);
        if (rc < 0) {
            goto fail;
        }
    }
    if (PyErr_Occurred() || writer_flush(&w, args[0]) < 0) {
        goto fail;
    }
    Py_DECREF(it);
    writer_free(&w);
    Py_RETURN_NONE;
fail:
    Py_DECREF(it);
    writer_free(&w);
    return NULL;
}

PyDoc_STRVAR(append_string_doc,
"append_string(out, s, compress) -> None\n\n"
"primitives.append_string(out, s, compress): one string (a container's blob, say).");

static PyObject *
append_one_string(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Writer w;
    if (writer_args(args, nargs, "append_string", &w) < 0) {
        return NULL;
    }
    int rc = write_string(&w, args[1]);
    if (rc == 0) {
        rc = writer_flush(&w, args[0]);
    }
    writer_free(&w);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(append_mapping_doc,
"append_mapping(out, fields, compress) -> None\n\n"
"For each (field, value) of ``fields`` (a dict, or a hash's KeyTable): append_string of the field, then\n"
"of the value.");

static PyObject *
append_mapping(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Writer w;
    if (writer_args(args, nargs, "append_mapping", &w) < 0) {
        return NULL;
    }
    PyObject *fields = args[1];
    if (native_is_keytable(fields)) {
        /* a hashtable-encoded hash's fields (datatypes/hashes.py): the table in its own order */
        Py_ssize_t size = keytable_len(fields);
        KtCursor cursor;
        native_kt->cursor_start(fields, &cursor);
        KtEntry *e;
        int rc = 0;
        while (rc == 0 && (e = native_kt->cursor_next(&cursor)) != NULL) {
            PyObject *key = kt_entry_key_object(e), *value = kt_entry_value(e); /* (the key, perhaps the value, inline) */
            if (key == NULL || value == NULL) {
                Py_XDECREF(key);
                Py_XDECREF(value);
                rc = -1;
                break;
            }
            rc = write_string(&w, key);
            if (rc == 0) {
                rc = write_string(&w, value);
            }
            Py_DECREF(key);
            Py_DECREF(value);
        }
        native_kt->cursor_end(&cursor);
        if (rc == 0 && keytable_len(fields) != size) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            rc = -1;
        }
        if (rc < 0 || writer_flush(&w, args[0]) < 0) {
            goto fail;
        }
        writer_free(&w);
        Py_RETURN_NONE;
    }
    if (!PyDict_Check(fields)) {
        PyErr_Format(PyExc_TypeError, "fields must be a dict or a KeyTable, not %.100s", Py_TYPE(fields)->tp_name);
        writer_free(&w);
        return NULL;
    }
    Py_ssize_t size = PyDict_GET_SIZE(fields);
    Py_ssize_t i = 0;
    PyObject *key, *value;
    while (PyDict_Next(fields, &i, &key, &value)) {
        /* the callbacks could in theory drop the dict's references: hold our own */
        Py_INCREF(key);
        Py_INCREF(value);
        int rc = write_string(&w, key);
        if (rc == 0) {
            rc = write_string(&w, value);
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0) {
            goto fail;
        }
    }
    if (PyDict_GET_SIZE(fields) != size) {
        PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
        goto fail;
    }
    if (writer_flush(&w, args[0]) < 0) {
        goto fail;
    }
    writer_free(&w);
    Py_RETURN_NONE;
fail:
    writer_free(&w);
    return NULL;
}

PyDoc_STRVAR(append_scored_doc,
"append_scored(out, pairs, compress) -> None\n\n"
"For each (score, member) of ``pairs``: append_string of the member, then the score\n"
"as an 8-byte little-endian double (a type-5 zset body).");

static PyObject *
append_scored(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Writer w;
    if (writer_args(args, nargs, "append_scored", &w) < 0) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(args[1]);
    if (it == NULL) {
        return NULL;
    }
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *pair = PySequence_Tuple(item); /* the exact tuple back for a tuple */
        Py_DECREF(item);
        if (pair == NULL) {
            goto fail;
        }
        if (PyTuple_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_ValueError, "expected (score, member) pairs");
            goto fail;
        }
        double score = PyFloat_AsDouble(PyTuple_GET_ITEM(pair, 0));
        int rc = (score == -1.0 && PyErr_Occurred()) ? -1 : write_string(&w, PyTuple_GET_ITEM(pair, 1));
        Py_DECREF(pair);
        if (rc < 0 || writer_reserve(&w, 8) < 0) {
            goto fail;
        }
        if (PyFloat_Pack8(score, w.data + w.len, 1) < 0) {
            goto fail;
        }
        w.len += 8;
    }
    if (PyErr_Occurred() || writer_flush(&w, args[0]) < 0) {
        goto fail;
    }
    Py_DECREF(it);
    writer_free(&w);
    Py_RETURN_NONE;
fail:
    Py_DECREF(it);
    writer_free(&w);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* the envelope of small payloads */

#define SMALL_PAYLOAD_MAX (1 << 16) /* bigger ones go through envelope.py (anycrc's faster CRC) */
#define FOOTER_SIZE 10

static uint64_t crc64_table[256];

/* CRC-64/Jones as Redis computes it: reflected polynomial 0x95AC9329AC4BC9B5, init 0, no xor-out. */
static void
crc64_init(void)
{
    for (uint64_t i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x95AC9329AC4BC9B5ULL : c >> 1;
        }
        crc64_table[i] = c;
    }
}

static uint64_t
crc64_update(uint64_t crc, const unsigned char *p, size_t n)
{
    while (n--) {
        crc = crc64_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    }
    return crc;
}

static uint64_t
load_le(const unsigned char *p, int size)
{
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

PyDoc_STRVAR(open_payload_doc,
"open_payload(payload, max_version, check_crc, blob_types) -> (type, version, body, end) | None\n\n"
"Verifies a small payload's envelope (footer version <= max_version, the CRC-64 unless\n"
"check_crc is false). None: not a small bytes payload, or an envelope the caller must\n"
"refuse itself (its texts). If blob_types[type] is 1 the body is one rdbString, if it is 2\n"
"and the body starts with 01 02 (one PACKED quicklist node) the rdbString follows those two\n"
"bytes: ``body`` is its decoded bytes (a malformed one raises the PayloadError read_string\n"
"gives) and ``end`` the position after it; otherwise ``body`` is None, ``end`` 0, and the\n"
"caller reads the body from position 1.");

static PyObject *
open_payload(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_Check(args[3]) || PyBytes_GET_SIZE(args[3]) != 256) {
        PyErr_SetString(PyExc_TypeError, "open_payload(payload, max_version, check_crc, blob_types[256])");
        return NULL;
    }
    PyObject *payload = args[0];
    if (!PyBytes_CheckExact(payload)) {
        Py_RETURN_NONE;
    }
    long max_version = PyLong_AsLong(args[1]);
    if (max_version == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int check_crc = PyObject_IsTrue(args[2]);
    if (check_crc < 0) {
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(payload);
    if (size <= FOOTER_SIZE || size > SMALL_PAYLOAD_MAX) {
        Py_RETURN_NONE;
    }
    long version = (long)(d[size - 10] | (d[size - 9] << 8));
    if (version > max_version) {
        Py_RETURN_NONE;
    }
    if (check_crc && crc64_update(0, d, (size_t)(size - 8)) != load_le(d + size - 8, 8)) {
        Py_RETURN_NONE;
    }
    unsigned int type = d[0];
    char kind = PyBytes_AS_STRING(args[3])[type];
    Py_ssize_t pos = 0;
    if (kind == 1) {
        pos = 1; /* type byte, rdbString */
    }
    else if (kind == 2 && size - FOOTER_SIZE > 3 && d[1] == 1 && d[2] == 2) {
        pos = 3; /* type byte, one node, container PACKED, rdbString */
    }
    PyObject *body;
    if (pos) {
        Reader r = {payload, d, size - FOOTER_SIZE, 0};
        body = read_string(&r, &pos);
        if (body == NULL) {
            return NULL;
        }
    }
    else {
        body = Py_NewRef(Py_None);
    }
    PyObject *type_obj = PyLong_FromLong((long)type);
    PyObject *version_obj = type_obj == NULL ? NULL : PyLong_FromLong(version);
    PyObject *end_obj = version_obj == NULL ? NULL : PyLong_FromSsize_t(pos);
    PyObject *opened = end_obj == NULL ? NULL : PyTuple_Pack(4, type_obj, version_obj, body, end_obj);
    Py_XDECREF(type_obj);
    Py_XDECREF(version_obj);
    Py_XDECREF(end_obj);
    Py_DECREF(body);
    return opened;
}

PyDoc_STRVAR(seal_doc,
"seal(body, version) -> bytes | None\n\n"
"``body`` (type byte + value) followed by the DUMP footer: the RDB version (u16 LE) and the\n"
"CRC-64 of everything before it (u64 LE). None for a body that is not small bytes.");

static PyObject *
seal(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "seal(body, version)");
        return NULL;
    }
    PyObject *body = args[0];
    Py_ssize_t n;
    const char *src;
    if (PyBytes_Check(body)) {
        n = PyBytes_GET_SIZE(body);
        src = PyBytes_AS_STRING(body);
    }
    else if (PyByteArray_Check(body)) {
        n = PyByteArray_GET_SIZE(body);
        src = PyByteArray_AS_STRING(body);
    }
    else {
        Py_RETURN_NONE;
    }
    long version = PyLong_AsLong(args[1]);
    if (version == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n > SMALL_PAYLOAD_MAX || version < 0 || version > 0xFFFF) {
        Py_RETURN_NONE;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n + FOOTER_SIZE);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    memcpy(o, src, (size_t)n);
    o[n] = (unsigned char)(version & 0xFF);
    o[n + 1] = (unsigned char)(version >> 8);
    uint64_t crc = crc64_update(0, o, (size_t)n + 2);
    for (int i = 0; i < 8; i++) {
        o[n + 2 + i] = (unsigned char)(crc >> (8 * i));
    }
    return out;
}

/* ------------------------------------------------------------------------- */
/* native RESTORE and DUMP (dumpling/_native.h)
 *
 * The C request loop offers these a request before the Python handlers
 * (dumpling.commands.dump.restore_key / dump), which stay the reference: each runs the
 * common form with exactly their effects and reply, or declines before changing anything.
 *
 * RESTORE key ttl payload [REPLACE] [ABSTTL]: a footer every server reads (<= 12), a
 * small payload (<= 64 KiB, as open_payload's), a key that is absent or REPLACEd, no client
 * blocked on any key.  A string value is the body itself; any other comes from
 * decode.body_value, which open_value uses too.  The key is stored as Database.add stores
 * it (data, collector.stored, the LRU field, the store hooks); a TTL as
 * Database.set_expire.
 * Declined: any other option, a bad TTL, an existing key without REPLACE (BUSYKEY), an
 * expired one, a TTL already past on an existing key, an envelope or body the codec
 * refuses (the Python handler words every error).
 *
 * DUMP key: the lookup's statistics and LRU touch as Database.lookup_read; a bytes value's
 * payload written here (write_string, seal), any other through encode.encode_payload,
 * both at the server's cached writer settings (DumpState.writer; declined until cached).
 */

/* The bytes written so far with the DUMP footer after them (room for it reserved): the
 * version (u16 LE) and the CRC-64 of everything before the CRC (u64 LE). */
static PyObject *
sealed(Writer *w, long version)
{
    unsigned char *o = (unsigned char *)w->data;
    Py_ssize_t n = w->len;
    o[n] = (unsigned char)(version & 0xFF);
    o[n + 1] = (unsigned char)(version >> 8);
    uint64_t crc = crc64_update(0, o, (size_t)n + 2);
    for (int i = 0; i < 8; i++) {
        o[n + 2 + i] = (unsigned char)(crc >> (8 * i));
    }
    return PyBytes_FromStringAndSize(w->data, n + FOOTER_SIZE);
}

/* encode_payload's string case: the DUMP payload of a bytes value at footer ``version`` (6-12),
 * its rdbString written as primitives.append_string writes it (write_string), sealed here.
 * Py_None for what it does not take (not exact bytes, another version, over 64 KiB: seal's
 * limit, beyond which anycrc is faster); NULL on an error. */
static PyObject *
string_payload_of(PyObject *value, long version, int compressing)
{
    if (!PyBytes_CheckExact(value) || PyBytes_GET_SIZE(value) > SMALL_PAYLOAD_MAX - 16 || version < 6 ||
        version > 12) {
        return Py_NewRef(Py_None);
    }
    Writer w = {NULL, 0, 0, NULL, compressing ? Py_True : Py_False, compressing};
    PyObject *payload = NULL;
    if (writer_reserve(&w, 1 + 9 + PyBytes_GET_SIZE(value) + FOOTER_SIZE) == 0) {
        w.data[w.len++] = 0; /* the string type */
        if (write_string(&w, value) == 0 && writer_reserve(&w, FOOTER_SIZE) == 0) {
            payload = sealed(&w, version);
        }
    }
    writer_free(&w);
    return payload;
}

/* A payload from _listpack.dump_parts' (head, kind, obj) at footer ``version``: the head, then
 * obj as one rdbString (kind 0), as a length and an rdbString per item of a list (kind 1) or
 * copied as it is (kind 2), written as encode.py's bulk.append_blob / append_len +
 * append_strings / PackedList.write_body write them, and sealed.  Py_None for anything else. */
static PyObject *
parts_payload(PyObject *parts, long version, int compressing)
{
    if (!PyTuple_CheckExact(parts) || PyTuple_GET_SIZE(parts) != 3 || !PyBytes_CheckExact(PyTuple_GET_ITEM(parts, 0))) {
        return Py_NewRef(Py_None);
    }
    PyObject *head = PyTuple_GET_ITEM(parts, 0), *obj = PyTuple_GET_ITEM(parts, 2);
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(parts, 1));
    if (kind == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((kind == 0 || kind == 2) ? !PyBytes_CheckExact(obj) : kind != 1 || !PyList_CheckExact(obj)) {
        return Py_NewRef(Py_None);
    }
    Writer w = {NULL, 0, 0, NULL, compressing ? Py_True : Py_False, compressing};
    PyObject *payload = NULL;
    Py_ssize_t head_len = PyBytes_GET_SIZE(head);
    int rc = writer_reserve(&w, head_len + 9 + (kind == 2 ? PyBytes_GET_SIZE(obj) : 0));
    if (rc == 0) {
        memcpy(w.data, PyBytes_AS_STRING(head), (size_t)head_len);
        w.len = head_len;
        if (kind == 0) {
            rc = write_string(&w, obj);
        }
        else if (kind == 2) {
            memcpy(w.data + w.len, PyBytes_AS_STRING(obj), (size_t)PyBytes_GET_SIZE(obj));
            w.len += PyBytes_GET_SIZE(obj);
        }
        else {
            put_len(&w, (uint64_t)PyList_GET_SIZE(obj));
            for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(obj); i++) {
                PyObject *item = Py_NewRef(PyList_GET_ITEM(obj, i)); /* held: write_string may call Python */
                rc = PyList_GET_SIZE(obj) > i ? write_string(&w, item) : -1;
                Py_DECREF(item);
            }
        }
    }
    if (rc == 0 && writer_reserve(&w, FOOTER_SIZE) == 0) {
        payload = sealed(&w, version);
    }
    writer_free(&w);
    return payload;
}

PyDoc_STRVAR(string_payload_doc,
"string_payload(value, version, compress) -> bytes | None\\n\\n"
"encode.encode_payload's string case: the DUMP payload of ``value`` (bytes) at footer ``version``\\n"
"(6-12), LZF tried as append_string tries it when ``compress``. None for anything else\\n"
"(not exact bytes, another version, a value over 64 KiB).");

static PyObject *
string_payload(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "string_payload(value, version, compress)");
        return NULL;
    }
    long version = PyLong_AsLong(args[1]);
    int compressing = version == -1 && PyErr_Occurred() ? -1 : PyObject_IsTrue(args[2]);
    return compressing < 0 ? NULL : string_payload_of(args[0], version, compressing);
}

static int native_on = 1;           /* set_native_handlers(False): every call declined (tests) */
static PyObject *native_ok;         /* dumpling.protocol.OK */
static PyObject *body_value_fn;     /* decode.body_value(buf, type, version, body, end, options) */
static PyObject *untrack_fn;        /* collector.untrack(value) and collector.hide(data): */
static PyObject *hide_fn;           /* collector.stored's two steps, without its frame (hide: kept,
                                     * but a KeyTable, what the natives store into, needs none) */
static PyObject *encode_payload_fn; /* encode.encode_payload(value, version, options) */
static PyObject *payload_error;     /* errors.PayloadError */
static PyObject *blob_mask;         /* decode.BLOB_MASK */
static PyObject *small_value_fn;    /* _listpack.small_value (or NULL): small values built in C */
static PyObject *dump_parts_fn;     /* _listpack.dump_parts (or NULL): their DUMP bodies */
static PyObject *s_keyspace, *s_dbs, *s_data, *s_expire_order, *s_added, *s_blocked_keys,
    *s_store_hooks, *s_expiry_by_master, *s_skip_checksum, *s_dump_state, *s_known_options, *s_writer,
    *s_stat_sanitizations, *s_rdbcompression;

#define MAX_FOOTER_EVERYONE_READS 12 /* dump.REDIS_MAX_RDB_VERSION */

static int
arg_is(const NativeArg *a, const char *lower)
{
    size_t n = strlen(lower);
    if ((size_t)a->len != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = a->p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != lower[i]) {
            return 0;
        }
    }
    return 1;
}

/* getattr(obj, name) is None / truth: 1, 0, or -1 on an error. */
static int
attr_true(PyObject *obj, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* What a Server keeps for its life, read once per server: server.keyspace (made by its
 * constructor), keyspace.store_hooks (a list hooks are appended to) and server.dump_state (made
 * by commands.dump.setup); and the Database the last RESTORE stored into, checked by its data
 * dict every time (FLUSHDB gives a database a new dict, SWAPDB moves dicts between them).
 * Strong references: the last server stays alive until another one runs these handlers. */
static struct {
    PyObject *server, *keyspace, *hooks, *state, *db;
} fixed;

/* Load ``fixed`` for ``server``: 0, or -1 with an error set. */
static int
fixed_for(PyObject *server)
{
    if (fixed.server == server) {
        return 0;
    }
    PyObject *keyspace = PyObject_GetAttr(server, s_keyspace);
    PyObject *hooks = keyspace == NULL ? NULL : PyObject_GetAttr(keyspace, s_store_hooks);
    PyObject *state = hooks == NULL ? NULL : PyObject_GetAttr(server, s_dump_state);
    if (state == NULL) {
        Py_XDECREF(keyspace);
        Py_XDECREF(hooks);
        return -1;
    }
    Py_XSETREF(fixed.server, Py_NewRef(server));
    Py_XSETREF(fixed.keyspace, keyspace);
    Py_XSETREF(fixed.hooks, hooks);
    Py_XSETREF(fixed.state, state);
    Py_CLEAR(fixed.db);
    return 0;
}

/* The Database whose KeyTable is call->data (a new reference), or NULL (error set, or
 * none: declined); *keyspace its Keyspace (a new reference).  fixed_for(call->server) ran. */
static PyObject *
native_db(const NativeCall *call, PyObject **keyspace)
{
    PyObject *db = native_database_of(call, s_keyspace, s_dbs, s_data, &fixed.db);
    if (db == NULL) {
        *keyspace = NULL;
        return NULL;
    }
    *keyspace = Py_NewRef(fixed.keyspace);
    return Py_NewRef(db);
}

/* ScanOrder.added(key) when the database keeps one (attr is _expire_order). */
static int
order_added(PyObject *db, PyObject *attr, PyObject *key)
{
    PyObject *order = PyObject_GetAttr(db, attr);
    if (order == NULL) {
        return -1;
    }
    int rc = 0;
    if (order != Py_None) {
        PyObject *r = PyObject_CallMethodOneArg(order, s_added, key);
        rc = r == NULL ? -1 : 0;
        Py_XDECREF(r);
    }
    Py_DECREF(order);
    return rc;
}

/* Database.add(key, value): the caller checked that no client is blocked on a key. */
static int
native_add(const NativeCall *call, PyObject *db, PyObject *key, PyObject *value)
{
    return native_db_add(call, db, fixed.hooks, untrack_fn, key, value);
}

/* The codec options a client's RESTORE of a footer <= 12 decodes with (DumpState.known_options
 * for this skip_checksum), or NULL (not cached yet: declined, or an error). */
static PyObject *
known_options(PyObject *server, int *skip)
{
    if ((*skip = attr_true(server, s_skip_checksum)) < 0) {
        return NULL;
    }
    PyObject *cached = PyObject_GetAttr(fixed.state, s_known_options);
    if (cached == NULL) {
        return NULL;
    }
    PyObject *options = NULL;
    if (PyList_Check(cached) && PyList_GET_SIZE(cached) == 2) {
        options = PyList_GET_ITEM(cached, *skip ? 1 : 0);
        options = options == Py_None ? NULL : Py_NewRef(options);
    }
    Py_DECREF(cached);
    return options;
}

/* A refusal of the codec (PayloadError) becomes a decline: the Python handler refuses the
 * payload again and words the error. 0 declined, -1 another error (it stays set). */
static int
declined_if_refused(void)
{
    if (PyErr_ExceptionMatches(payload_error)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* Whether a payload is one the native RESTORE opens: small, and a footer every server reads. */
static int
small_known_payload(const NativeArg *a)
{
    const unsigned char *d = (const unsigned char *)a->p;
    return a->len > FOOTER_SIZE && a->len <= SMALL_PAYLOAD_MAX && d[a->len - 9] == 0 &&
           d[a->len - 10] <= MAX_FOOTER_EVERYONE_READS;
}

/* A type-2 set's members (count, then that many rdbStrings) as a list, *pos set past them;
 * NULL with *pos 0 when the body is not that (no error set: body_value reads it), or on an
 * error (set). */
static PyObject *
set_members(PyObject *payload, Py_ssize_t *pos)
{
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    Reader r = {payload, (const unsigned char *)PyBytes_AS_STRING(payload), size - FOOTER_SIZE, 0};
    Py_ssize_t p = 1;
    uint64_t count;
    *pos = 0;
    if (plain_length(r.data, &p, r.end, &count) < 0 || count == 0 || count > (uint64_t)(r.end - p)) {
        return NULL;
    }
    PyObject *members = PyList_New((Py_ssize_t)count);
    for (Py_ssize_t i = 0; members != NULL && i < (Py_ssize_t)count; i++) {
        PyObject *member = read_string(&r, &p);
        if (member == NULL) {
            Py_CLEAR(members);
            if (PyErr_ExceptionMatches(payload_error)) {
                PyErr_Clear();
            }
            return NULL;
        }
        PyList_SET_ITEM(members, i, member);
    }
    if (members != NULL) {
        *pos = p;
    }
    return members;
}

/* The value of a small_known_payload (new reference): open_value's steps for it (the CRC, the
 * one rdbString of a blob type, the body through decode.body_value).  Py_None when the CRC
 * does not match (the Python path words the refusal), NULL on a refusal of the codec
 * (declined: no error set) or another error. */
static PyObject *
open_small_value(PyObject *payload, PyObject *options, int skip, long long *sanitizations)
{
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(payload);
    if (!skip && crc64_update(0, d, (size_t)(size - 8)) != load_le(d + size - 8, 8)) {
        return Py_NewRef(Py_None);
    }
    unsigned int type = d[0];
    char kind = PyBytes_AS_STRING(blob_mask)[type];
    Py_ssize_t pos = 0;
    if (kind == 1) {
        pos = 1; /* type byte, rdbString */
    }
    else if (kind == 2 && size - FOOTER_SIZE > 3 && d[1] == 1 && d[2] == 2) {
        pos = 3; /* type byte, one PACKED quicklist node's rdbString */
    }
    PyObject *body = Py_None;
    if (pos) {
        Reader r = {payload, d, size - FOOTER_SIZE, 0};
        body = read_string(&r, &pos);
        if (body == NULL) {
            declined_if_refused();
            return NULL;
        }
        if (type == 0) {
            return body; /* a string: the body is the value */
        }
    }
    else {
        Py_INCREF(body);
    }
    PyObject *args[6] = {payload, NULL, NULL, body, NULL, options};
    args[1] = PyLong_FromLong((long)type);
    if (args[1] != NULL && small_value_fn != NULL && (pos || type == 2)) { /* the small values C builds */
        PyObject *members = NULL, *built = Py_NewRef(Py_None);
        if (type == 2 && (members = set_members(payload, &pos)) == NULL && PyErr_Occurred()) {
            Py_SETREF(built, NULL);
        }
        else if (pos) {
            Py_DECREF(built);
            PyObject *end = PyLong_FromSsize_t(pos);
            PyObject *small_args[5] = {args[1], members != NULL ? members : body, options, payload, end};
            built = end == NULL ? NULL : PyObject_Vectorcall(small_value_fn, small_args, 5, NULL);
            Py_XDECREF(end);
        }
        Py_XDECREF(members);
        if (built != Py_None) { /* a value, or an error */
            Py_DECREF(args[1]);
            Py_DECREF(body);
            return built;
        }
        Py_DECREF(built);
        if (type == 2) {
            pos = 0; /* body_value reads the body */
        }
    }
    args[2] = args[1] == NULL ? NULL : PyLong_FromLong((long)d[size - 10]);
    args[4] = args[2] == NULL ? NULL : PyLong_FromSsize_t(pos);
    PyObject *opened = args[4] == NULL ? NULL : PyObject_Vectorcall(body_value_fn, args, 6, NULL);
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    Py_XDECREF(args[4]);
    Py_DECREF(body);
    if (opened == NULL) {
        declined_if_refused();
        return NULL;
    }
    PyObject *value = NULL;
    if (PyTuple_Check(opened) && PyTuple_GET_SIZE(opened) == 2) {
        *sanitizations = PyLong_AsLongLong(PyTuple_GET_ITEM(opened, 1));
        if (!(*sanitizations == -1 && PyErr_Occurred())) {
            value = Py_NewRef(PyTuple_GET_ITEM(opened, 0));
        }
    }
    else {
        PyErr_SetString(PyExc_TypeError, "body_value must return (value, sanitizations)");
    }
    Py_DECREF(opened);
    return value;
}

/* dict.pop(key, None): 0, or -1 on an error. */
static int
dict_discard(PyObject *dict, PyObject *key)
{
    int has = PyDict_Contains(dict, key);
    return has <= 0 ? has : PyDict_DelItem(dict, key);
}

static int
count_sanitizations(PyObject *server, long long n)
{
    PyObject *v = PyObject_GetAttr(server, s_stat_sanitizations);
    PyObject *add = v == NULL ? NULL : PyLong_FromLongLong(n);
    PyObject *sum = add == NULL ? NULL : PyNumber_Add(v, add);
    int rc = sum == NULL ? -1 : PyObject_SetAttr(server, s_stat_sanitizations, sum);
    Py_XDECREF(v);
    Py_XDECREF(add);
    Py_XDECREF(sum);
    return rc;
}

static PyObject *
native_restore(NativeCall *call, const NativeArg *args, int argc)
{
    if (!native_on || argc < 4) {
        return NULL;
    }
    int replace = 0, absttl = 0;
    for (int j = 4; j < argc; j++) {
        if (arg_is(&args[j], "replace")) {
            replace = 1;
        }
        else if (arg_is(&args[j], "absttl")) {
            absttl = 1;
        }
        else {
            return NULL; /* IDLETIME, FREQ, errors: the Python handler */
        }
    }
    long long ttl;
    if (!native_string2ll(args[2].p, args[2].len, &ttl) || ttl < 0 || !small_known_payload(&args[3])) {
        return NULL;
    }
    long long when = ttl;
    if (ttl && !absttl) { /* a huge relative TTL wraps into the past, as in Redis */
        when = (long long)((unsigned long long)ttl + (unsigned long long)call->now_ms);
    }
    int past = ttl && when <= call->now_ms;
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len);
    if (key == NULL) {
        return NULL;
    }
    PyObject *keyspace = NULL, *db = NULL, *options = NULL, *payload = NULL, *value = NULL, *reply = NULL;
    PyObject *old = NULL;
    int found = native_lookup(call, key, &old);
    if (found < 0 || found == NATIVE_EXPIRED || (found == NATIVE_FOUND && (!replace || past))) {
        goto done; /* BUSYKEY, an expired key to delete, a past TTL's del: the Python handler */
    }
    if (fixed_for(call->server) < 0) {
        goto done;
    }
    db = native_db(call, &keyspace);
    if (db == NULL) {
        goto done;
    }
    int r = attr_true(keyspace, s_blocked_keys); /* clients to wake: Database.add signals them */
    if (r != 0) {
        goto done;
    }
    if (ttl && !past && (r = attr_true(keyspace, s_expiry_by_master)) != 0) {
        goto done; /* a writable replica tracks the keys it expires itself */
    }
    int skip;
    options = known_options(call->server, &skip);
    if (options == NULL) {
        goto done;
    }
    payload = PyBytes_FromStringAndSize(args[3].p, args[3].len);
    if (payload == NULL) {
        goto done;
    }
    long long sanitizations = 0;
    value = open_small_value(payload, options, skip, &sanitizations);
    if (value == NULL || value == Py_None) {
        goto done;
    }
    /* from here on the command runs: nothing declines */
    if (sanitizations && count_sanitizations(call->server, sanitizations) < 0) {
        goto done;
    }
    if (past) { /* +OK and no key (an absent one: nothing was deleted) */
        reply = Py_NewRef(native_ok);
        goto done;
    }
    if (found == NATIVE_FOUND) { /* REPLACE: Database.delete (its expire popped if there) */
        native_kt->remove(call->data, key, NULL);
        if (dict_discard(call->expires, key) < 0) {
            goto done;
        }
    }
    if (native_add(call, db, key, value) < 0) {
        goto done;
    }
    if (ttl) { /* Database.set_expire */
        int has = PyDict_Contains(call->expires, key);
        if (has < 0 || (has == 0 && order_added(db, s_expire_order, key) < 0)) {
            goto done;
        }
        PyObject *w = PyLong_FromLongLong(when);
        int rc = w == NULL ? -1 : PyDict_SetItem(call->expires, key, w);
        Py_XDECREF(w);
        if (rc < 0) {
            goto done;
        }
    }
    call->dirty += 1; /* the restore event's change */
    reply = Py_NewRef(native_ok);
done:
    Py_DECREF(key);
    Py_XDECREF(keyspace);
    Py_XDECREF(db);
    Py_XDECREF(options);
    Py_XDECREF(payload);
    Py_XDECREF(value);
    return reply;
}

/* The payload of ``value`` when it is one written here (a string's, or a small collection's from
 * _listpack.dump_parts): bytes, Py_None for the rest (encode_payload's), NULL on an error. */
static PyObject *
payload_written_here(PyObject *value, PyObject *version_obj, long version, int compressing)
{
    PyObject *payload = string_payload_of(value, version, compressing);
    if (payload != Py_None || dump_parts_fn == NULL) {
        return payload;
    }
    Py_DECREF(payload);
    PyObject *parts_args[3] = {value, version_obj, compressing ? Py_True : Py_False};
    PyObject *parts = PyObject_Vectorcall(dump_parts_fn, parts_args, 3, NULL);
    if (parts == NULL || parts == Py_None) {
        return parts;
    }
    payload = parts_payload(parts, version, compressing);
    Py_DECREF(parts);
    return payload;
}

static PyObject *
native_dump(NativeCall *call, const NativeArg *args, int argc)
{
    if (!native_on || argc != 2) {
        return NULL;
    }
    PyObject *writer = fixed_for(call->server) < 0 ? NULL : PyObject_GetAttr(fixed.state, s_writer);
    if (writer == NULL || !PyTuple_Check(writer) || PyTuple_GET_SIZE(writer) != 2) {
        Py_XDECREF(writer);
        return NULL; /* not cached yet: dump_value caches it */
    }
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len);
    PyObject *value = NULL, *payload = NULL;
    int found = key == NULL ? -1 : native_lookup(call, key, &value);
    if (found == NATIVE_ABSENT) {
        call->misses += 1;
        payload = Py_NewRef(Py_None);
        goto done;
    }
    if (found != NATIVE_FOUND) {
        goto done; /* an expired key to delete: the Python handler */
    }
    Py_INCREF(value);
    long version = PyLong_AsLong(PyTuple_GET_ITEM(writer, 0));
    if (version == -1 && PyErr_Occurred()) {
        goto done;
    }
    PyObject *compress = PyObject_GetAttr(PyTuple_GET_ITEM(writer, 1), s_rdbcompression);
    int compressing = compress == NULL ? -1 : PyObject_IsTrue(compress);
    Py_XDECREF(compress);
    if (compressing < 0) {
        goto done;
    }
    payload = payload_written_here(value, PyTuple_GET_ITEM(writer, 0), version, compressing);
    if (payload == NULL) { /* nothing changed yet: the Python handler meets the error again */
        PyErr_Clear();
        goto done;
    }
    if (payload == Py_None) {
        Py_DECREF(payload);
        payload = PyObject_CallFunctionObjArgs(encode_payload_fn, value, PyTuple_GET_ITEM(writer, 0),
                                               PyTuple_GET_ITEM(writer, 1), NULL);
        if (payload == NULL) { /* nothing changed yet: the Python handler meets the error again and
                                * answers it as the general path answers a handler's exception */
            PyErr_Clear();
        }
    }
    if (payload == NULL) {
        goto done;
    }
    call->hits += 1; /* Database.lookup_read's hit and LRU touch */
    if (native_touch(call, key) < 0) {
        Py_CLEAR(payload);
    }
done:
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_DECREF(writer);
    return payload;
}

PyDoc_STRVAR(small_payload_doc,
"small_payload(value, version, compress) -> bytes | None\n\n"
"What the native DUMP writes itself for ``value`` at footer ``version``: a string's payload,\n"
"or a small collection's from _listpack.dump_parts (once native_handlers gave it); None for\n"
"anything encode.encode_payload writes (tests compare both).");

static PyObject *
small_payload(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "small_payload(value, version, compress)");
        return NULL;
    }
    long version = PyLong_AsLong(args[1]);
    int compressing = PyObject_IsTrue(args[2]);
    if ((version == -1 && PyErr_Occurred()) || compressing < 0) {
        return NULL;
    }
    return payload_written_here(args[0], args[1], version, compressing);
}

PyDoc_STRVAR(native_handlers_doc,
"native_handlers(ok, body_value, (untrack, hide), encode_payload, payload_error, blob_mask,\n"
"                small_value, dump_parts) -> {name: capsule}\n\n"
"RESTORE's, RESTORE-ASKING's and DUMP's handlers for the C request loop (dumpling/_native.h),\n"
"given the Python pieces they share with the Python handlers (small_value, dump_parts:\n"
"_listpack's builders of small values and their DUMP bodies, or None).");

static PyObject *
native_handlers(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 8 || !PyBytes_Check(args[5]) || PyBytes_GET_SIZE(args[5]) != 256) {
        PyErr_SetString(PyExc_TypeError, "native_handlers(ok, body_value, stored, encode_payload, payload_error, "
                                         "blob_mask[256], small_value, dump_parts)");
        return NULL;
    }
    Py_XSETREF(small_value_fn, args[6] == Py_None ? NULL : Py_NewRef(args[6]));
    Py_XSETREF(dump_parts_fn, args[7] == Py_None ? NULL : Py_NewRef(args[7]));
    Py_XSETREF(native_ok, Py_NewRef(args[0]));
    Py_XSETREF(body_value_fn, Py_NewRef(args[1]));
    if (!PyTuple_Check(args[2]) || PyTuple_GET_SIZE(args[2]) != 2) {
        PyErr_SetString(PyExc_TypeError, "native_handlers: stored must be (untrack, hide)");
        return NULL;
    }
    Py_XSETREF(untrack_fn, Py_NewRef(PyTuple_GET_ITEM(args[2], 0)));
    Py_XSETREF(hide_fn, Py_NewRef(PyTuple_GET_ITEM(args[2], 1)));
    Py_XSETREF(encode_payload_fn, Py_NewRef(args[3]));
    Py_XSETREF(payload_error, Py_NewRef(args[4]));
    Py_XSETREF(blob_mask, Py_NewRef(args[5]));
    PyObject *restore = PyCapsule_New((void *)native_restore, NATIVE_CAPSULE, NULL);
    PyObject *dump = PyCapsule_New((void *)native_dump, NATIVE_CAPSULE, NULL);
    PyObject *out = restore && dump ? Py_BuildValue("{sOsOsO}", "restore", restore, "restore-asking", restore,
                                                    "dump", dump)
                                    : NULL;
    Py_XDECREF(restore);
    Py_XDECREF(dump);
    return out;
}

PyDoc_STRVAR(set_native_handlers_doc,
"set_native_handlers(on) -> None\n\n"
"Run the native RESTORE/DUMP, or have them decline every call to the Python handlers (tests).");

static PyObject *
set_native_handlers(PyObject *module, PyObject *on)
{
    (void)module;
    int truth = PyObject_IsTrue(on);
    if (truth < 0) {
        return NULL;
    }
    native_on = truth;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------- */
/* MIGRATE's requests
 *
 * restore_requests: the RESTORE (or RESTORE-ASKING) request of every key a MIGRATE moves,
 * ``command key ttl payload [REPLACE]``, as dumpling.commands.migrate.restore_requests_py
 * (the reference) writes them with encode_request, each payload the one DUMP writes
 * (payload_written_here, or encode.encode_payload for the rest), into one buffer: no
 * request or argument list per key. */

/* "$<n>\r\n", n bytes, "\r\n". */
static int
put_bulk(Writer *w, const char *s, Py_ssize_t n)
{
    if (writer_reserve(w, n + 26) < 0) { /* '$', 20 digits, two CRLFs */
        return -1;
    }
    char *p = w->data + w->len;
    *p++ = '$';
    p += native_ll_text(p, (long long)n);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, s, (size_t)n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    w->len = p - w->data;
    return 0;
}

/* One key's request; 0, or -1 with an exception set. */
static int
put_restore(Writer *w, PyObject *command, PyObject *key, long long ttl, PyObject *payload, int replace)
{
    char ttl_text[24];
    int ttl_len = native_ll_text(ttl_text, ttl);
    if (writer_reserve(w, 4) < 0) {
        return -1;
    }
    memcpy(w->data + w->len, replace ? "*5\r\n" : "*4\r\n", 4);
    w->len += 4;
    if (put_bulk(w, PyBytes_AS_STRING(command), PyBytes_GET_SIZE(command)) < 0 ||
        put_bulk(w, PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)) < 0 || put_bulk(w, ttl_text, ttl_len) < 0 ||
        put_bulk(w, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload)) < 0) {
        return -1;
    }
    return replace ? put_bulk(w, "REPLACE", 7) : 0;
}

PyDoc_STRVAR(restore_requests_doc,
"restore_requests(command, keys, values, ttls, replace, version, options, compress, encode_payload)\n"
"    -> bytes | None\n\n"
"MIGRATE's requests: for each key ``command key ttl payload`` (and REPLACE), the payload\n"
"DUMP's at footer ``version`` (written here, or encode_payload(value, version, options)),\n"
"``ttls`` a list of ints or None (all 0). None for what it does not take (a footer outside\n"
"6-12, a key that is not bytes): migrate.restore_requests_py writes those.");

static PyObject *
restore_requests(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "restore_requests(command, keys, values, ttls, replace, version, options, "
                                         "compress, encode_payload)");
        return NULL;
    }
    PyObject *command = args[0], *keys = args[1], *values = args[2], *ttls = args[3];
    PyObject *version_obj = args[5], *options = args[6], *encode = args[8];
    if (!PyBytes_CheckExact(command) || !PyList_CheckExact(keys) || !PyList_CheckExact(values) ||
        PyList_GET_SIZE(values) != PyList_GET_SIZE(keys) ||
        (ttls != Py_None && (!PyList_CheckExact(ttls) || PyList_GET_SIZE(ttls) != PyList_GET_SIZE(keys)))) {
        Py_RETURN_NONE;
    }
    int replace = PyObject_IsTrue(args[4]);
    long version = PyLong_AsLong(version_obj);
    int compressing = PyObject_IsTrue(args[7]);
    if (replace < 0 || (version == -1 && PyErr_Occurred()) || compressing < 0) {
        return NULL;
    }
    if (version < 6 || version > 12) {
        Py_RETURN_NONE;
    }
    Writer w = {NULL, 0, 0, NULL, compressing ? Py_True : Py_False, compressing};
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        /* encode_payload and a TTL's __index__ run Python: the lists are read again after each */
        if (i >= PyList_GET_SIZE(values) || (ttls != Py_None && i >= PyList_GET_SIZE(ttls))) {
            PyErr_SetString(PyExc_RuntimeError, "restore_requests: a list changed size");
            goto done;
        }
        long long ttl = 0;
        if (ttls != Py_None) {
            PyObject *ttl_obj = Py_NewRef(PyList_GET_ITEM(ttls, i));
            ttl = PyLong_AsLongLong(ttl_obj);
            Py_DECREF(ttl_obj);
            if (ttl == -1 && PyErr_Occurred()) {
                goto done;
            }
            if (i >= PyList_GET_SIZE(keys) || i >= PyList_GET_SIZE(values)) {
                PyErr_SetString(PyExc_RuntimeError, "restore_requests: a list changed size");
                goto done;
            }
        }
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (!PyBytes_CheckExact(key)) {
            out = Py_NewRef(Py_None);
            goto done;
        }
        Py_INCREF(key);
        PyObject *value = Py_NewRef(PyList_GET_ITEM(values, i));
        PyObject *payload = payload_written_here(value, version_obj, version, compressing);
        if (payload == Py_None) {
            Py_DECREF(payload);
            payload = PyObject_CallFunctionObjArgs(encode, value, version_obj, options, NULL);
        }
        int rc = -1;
        if (payload != NULL && !PyBytes_Check(payload)) {
            PyErr_SetString(PyExc_TypeError, "restore_requests: a payload that is not bytes");
        }
        else if (payload != NULL) {
            rc = put_restore(&w, command, key, ttl, payload, replace);
        }
        Py_XDECREF(payload);
        Py_DECREF(value);
        Py_DECREF(key);
        if (rc < 0) {
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(w.data, w.len);
done:
    writer_free(&w);
    return out;
}

/* ------------------------------------------------------------------------- */
/* module */

static PyMethodDef speedups_methods[] = {
    {"read_records", (PyCFunction)(void (*)(void))read_records, METH_FASTCALL, read_records_doc},
    {"read_dict", (PyCFunction)(void (*)(void))read_dict, METH_FASTCALL, read_dict_doc},
    {"read_set", (PyCFunction)(void (*)(void))read_set, METH_FASTCALL, read_set_doc},
    {"append_strings", (PyCFunction)(void (*)(void))append_strings, METH_FASTCALL, append_strings_doc},
    {"append_string", (PyCFunction)(void (*)(void))append_one_string, METH_FASTCALL, append_string_doc},
    {"append_mapping", (PyCFunction)(void (*)(void))append_mapping, METH_FASTCALL, append_mapping_doc},
    {"append_scored", (PyCFunction)(void (*)(void))append_scored, METH_FASTCALL, append_scored_doc},
    {"open_payload", (PyCFunction)(void (*)(void))open_payload, METH_FASTCALL, open_payload_doc},
    {"seal", (PyCFunction)(void (*)(void))seal, METH_FASTCALL, seal_doc},
    {"string_payload", (PyCFunction)(void (*)(void))string_payload, METH_FASTCALL, string_payload_doc},
    {"small_payload", (PyCFunction)(void (*)(void))small_payload, METH_FASTCALL, small_payload_doc},
    {"native_handlers", (PyCFunction)(void (*)(void))native_handlers, METH_FASTCALL, native_handlers_doc},
    {"set_native_handlers", (PyCFunction)set_native_handlers, METH_O, set_native_handlers_doc},
    {"restore_requests", (PyCFunction)(void (*)(void))restore_requests, METH_FASTCALL, restore_requests_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "dumpling.payload._speedups",
    "The per-string loops of big plain collection bodies in C (see bulk.py for the contracts).",
    -1,
    speedups_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static PyObject *
import_attr(const char *module_name, const char *attr)
{
    PyObject *mod = PyImport_ImportModule(module_name);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_GetAttrString(mod, attr);
    Py_DECREF(mod);
    if (value != NULL && !PyCallable_Check(value)) {
        PyErr_Format(PyExc_ImportError, "%s.%s is not callable", module_name, attr);
        Py_CLEAR(value);
    }
    return value;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (bad_data_fn == NULL) {
        PyObject *bad_data = import_attr("dumpling.payload.errors", "bad_data");
        PyObject *read_str = bad_data ? import_attr("dumpling.payload.primitives", "read_string") : NULL;
        PyObject *append_str = read_str ? import_attr("dumpling.payload.primitives", "append_string") : NULL;
        PyObject *compress = append_str ? import_attr("dumpling.payload.compression", "compress_for_rdb") : NULL;
        if (compress == NULL) {
            Py_XDECREF(bad_data);
            Py_XDECREF(read_str);
            Py_XDECREF(append_str);
            return NULL;
        }
        compress_fn = compress;
        PyObject *compression = PyImport_ImportModule("dumpling.payload.compression");
        PyObject *lzf = compression == NULL ? NULL : PyObject_GetAttrString(compression, "_lzf");
        Py_XDECREF(compression);
        if (lzf == NULL) {
            return NULL;
        }
        if (lzf != Py_None && (lzf_compress_fn = PyObject_GetAttrString(lzf, "compress")) == NULL) {
            Py_DECREF(lzf);
            return NULL;
        }
        Py_DECREF(lzf);
        bad_data_fn = bad_data;
        read_string_fn = read_str;
        append_string_fn = append_str;
        crc64_init();
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
        INTERN(s_keyspace, "keyspace");
        INTERN(s_dbs, "dbs");
        INTERN(s_data, "data");
        INTERN(s_expire_order, "_expire_order");
        INTERN(s_added, "added");
        INTERN(s_blocked_keys, "blocked_keys");
        INTERN(s_store_hooks, "store_hooks");
        INTERN(s_expiry_by_master, "expiry_by_master");
        INTERN(s_skip_checksum, "skip_checksum");
        INTERN(s_dump_state, "dump_state");
        INTERN(s_known_options, "known_options");
        INTERN(s_writer, "writer");
        INTERN(s_stat_sanitizations, "stat_sanitizations");
        INTERN(s_rdbcompression, "rdbcompression");
#undef INTERN
    }
    native_import_keytable(); /* (none: native RESTORE/DUMP decline, see native_load_db) */
    return PyModule_Create(&speedups_module);
}
