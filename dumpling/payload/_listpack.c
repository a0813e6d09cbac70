/* dumpling.payload._listpack: the hot listpack operations in C.
 *
 * Twin of the pure-Python code in dumpling/payload/listpack.py, which stays the
 * reference: every function here gives the same bytes, the same values and the same
 * refusals (PayloadError from dumpling.payload.errors.bad_data, with the same detail
 * texts) as its Python counterpart.  Byte layout: /work/shared/spec/dump-restore.md
 * section 3.1 (header, entry encodings, backlen, 0xFF terminator).
 *
 *   decode(blob, deep, ints_as_bytes=True, check_count=True) -> list
 *   count(blob, deep, check_count=True) -> int
 *                                       len(decode(blob, deep, ...)), nothing built
 *   encode(items) -> bytes | None       items: list/tuple of bytes or bytearray
 *   encode_mixed(items) -> bytes | None items: bytes, bytearray or int
 *   entry_size(s) -> int
 *   entry_sizes(items) -> list[int] | None
 *   pack_by_size(items, limit, large, listpack_phase) -> node cuts | None
 *                                       (quicklist._pack_by_size's decisions)
 *   encode_dict(fields) -> bytes | None listpack.encode_dict_py (a hash listpack)
 *   decode_hash(blob, deep) -> dict     listpack.decode_hash_py
 *   zset_pairs(blob, deep) -> list      listpack.zset_pairs_py ((member, score) pairs)
 *   zset_entries(index, text) -> list | None
 *                                       encode.zset_entries_py (a zset's listpack entries)
 *   intset_blob(members) -> bytes | None
 *                                       encode._intset_blob_py (a set of canonical integers)
 *   intset_members(blob, deep) -> list  decode._intset_members_py (an intset's values as text)
 *                                       encode.zset_entries_py (a zset's listpack entries)
 *   quicklist_body(head, items, compress, shape, limit, large, listpack_phase)
 *       -> bytes | None                 head + the LIST_QUICKLIST_2 body that
 *                                       encode._encode_list writes
 *
 * The encoders return None for anything they do not handle exactly like the Python
 * code (an element of another type, an int outside int64, a blob over 4 GiB); the
 * caller then runs the Python code, which gives the answer or raises its own error.
 *
 * Every read is bounds-checked against the blob; positions are int64_t, so no sum of
 * a position and a 32-bit length can overflow.  Nothing here runs Python code (or
 * creates a garbage-collected object, whose allocation could run a collection and so
 * finalizers) between reading a sequence's elements and using them, so neither the
 * sequence nor the buffers can change under us.  The one exception is
 * quicklist_body, which iterates (holding a reference to each element while it uses
 * it) and calls the LZF helper between nodes: a list changed meanwhile makes its
 * iterator raise, and an rdbString is read back from the immutable bytes object the
 * helper was given, never from memory the helper could have changed.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../_lpentry.h"
#include "../_native.h"
#include "../_slots.h"

#define LP_HEADER_SIZE 6
#define LP_EOF 0xFF
#define LP_NUMELE_UNKNOWN 65535

static PyObject *bad_data_func;     /* dumpling.payload.errors.bad_data */
static PyObject *small_text[128];   /* b"0" ... b"127" */

/* ------------------------------------------------------------------------- */
/* errors */

/* Raise bad_data(detail): the PayloadError the Python walk raises. */
static void
raise_bad_data(const char *detail)
{
    PyObject *exc = PyObject_CallFunction(bad_data_func, "s", detail);
    if (exc == NULL) {
        return;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

/* What went wrong in a walk; the texts are those of listpack.py. */
enum walk_error {
    WALK_OK = 0,
    ERR_ENTRY_PAST_END,
    ERR_BACKLEN_PAST_END,
    ERR_BACKLEN_MISMATCH,
    ERR_BAD_ENCODING,
    ERR_TERMINATOR,
    ERR_COUNT,
    ERR_PYTHON /* a Python exception (MemoryError) is already set */
};

static void
raise_walk_error(enum walk_error err, unsigned int byte)
{
    char text[64];
    switch (err) {
    case ERR_ENTRY_PAST_END:
        raise_bad_data("listpack entry past end");
        break;
    case ERR_BACKLEN_PAST_END:
        raise_bad_data("listpack backlen past end");
        break;
    case ERR_BACKLEN_MISMATCH:
        raise_bad_data("listpack backlen mismatch");
        break;
    case ERR_BAD_ENCODING:
        PyOS_snprintf(text, sizeof(text), "invalid listpack encoding byte 0x%02x", byte & 0xFFu);
        raise_bad_data(text);
        break;
    case ERR_TERMINATOR:
        raise_bad_data("listpack terminator before end of blob");
        break;
    case ERR_COUNT:
        raise_bad_data("listpack element count mismatch");
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------- */
/* small helpers */

/* lpEncodeBacklen's length for an entry of ``size`` bytes (thresholds are strict). */
static int
backlen_size(uint64_t size)
{
    if (size <= 127) {
        return 1;
    }
    if (size < 16383) {
        return 2;
    }
    if (size < 2097151) {
        return 3;
    }
    if (size < 268435455) {
        return 4;
    }
    return 5;
}

/* Write the backlen of ``size``: the top 7-bit group first, every later byte flagged 128. */
static unsigned char *
put_backlen(unsigned char *out, uint64_t size)
{
    int count = backlen_size(size);
    for (int i = count - 1; i >= 0; i--) {
        unsigned int group = (unsigned int)((size >> (7 * i)) & 127u);
        *out++ = (unsigned char)(i == count - 1 ? group : (group | 128u));
    }
    return out;
}

/* lpDecodeBacklen reading leftwards from index ``last``: the value, or -1 when it runs
 * over 5 bytes or off the start of the blob. */
static int64_t
read_backlen(const unsigned char *blob, int64_t last)
{
    uint64_t value = 0;
    int shift = 0;
    int64_t at = last;
    for (;;) {
        if (at < 0) {
            return -1;
        }
        unsigned int b = blob[at];
        value |= (uint64_t)(b & 127u) << shift;
        if (!(b & 128u)) {
            return (int64_t)value;
        }
        shift += 7;
        at--;
        if (shift > 28) {
            return -1;
        }
    }
}

/* parse_canonical_int: 1..20 bytes matching -?[1-9][0-9]*|0 inside int64.  1 and *out
 * set when it is one, else 0. */
static int
canonical_int(const unsigned char *s, Py_ssize_t n, int64_t *out)
{
    Py_ssize_t i = 0;
    int negative = 0;
    uint64_t magnitude = 0;
    if (n < 1 || n > 20) {
        return 0;
    }
    if (s[0] == '0') {
        if (n != 1) {
            return 0;
        }
        *out = 0;
        return 1;
    }
    if (s[0] == '-') {
        negative = 1;
        i = 1;
    }
    if (i >= n || s[i] < '1' || s[i] > '9') {
        return 0;
    }
    for (; i < n; i++) {
        unsigned int c = s[i];
        if (c < '0' || c > '9') {
            return 0;
        }
        unsigned int digit = c - '0';
        if (magnitude > (UINT64_MAX - digit) / 10u) {
            return 0;
        }
        magnitude = magnitude * 10u + digit;
    }
    if (negative) {
        if (magnitude > (uint64_t)INT64_MAX + 1u) {
            return 0;
        }
        *out = magnitude == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)magnitude;
    }
    else {
        if (magnitude > (uint64_t)INT64_MAX) {
            return 0;
        }
        *out = (int64_t)magnitude;
    }
    return 1;
}

/* The first byte of an element that may spell an integer: a digit or '-'. */
static inline int
may_be_int(const unsigned char *s, Py_ssize_t n)
{
    return n > 0 && n < 21 && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-');
}

/* Two's complement value of ``width`` little-endian bytes. */
static int64_t
read_signed_le(const unsigned char *p, int width)
{
    uint64_t u = 0;
    for (int i = width - 1; i >= 0; i--) {
        u = (u << 8) | p[i];
    }
    if (width < 8) {
        uint64_t sign = (uint64_t)1 << (8 * width - 1);
        if (u & sign) {
            /* subtract 2**(8*width) without leaving int64 */
            return (int64_t)(u - sign) - (int64_t)sign;
        }
        return (int64_t)u;
    }
    if (u > (uint64_t)INT64_MAX) {
        return -(int64_t)(~u) - 1;
    }
    return (int64_t)u;
}

/* b"%d" % v */
static PyObject *
int_text(int64_t v)
{
    char buf[24];
    char *end = buf + sizeof(buf);
    char *p = end;
    uint64_t magnitude;
    if (v >= 0 && v < 128) {
        Py_INCREF(small_text[v]);
        return small_text[v];
    }
    magnitude = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + (int)(magnitude % 10u));
        magnitude /= 10u;
    } while (magnitude);
    if (v < 0) {
        *--p = '-';
    }
    return PyBytes_FromStringAndSize(p, end - p);
}

/* ------------------------------------------------------------------------- */
/* the walk */

/* The always-on header checks (check_header); the element count, or -1 with the error set. */
static long
check_header(const unsigned char *blob, Py_ssize_t size)
{
    uint32_t total;
    if (size < LP_HEADER_SIZE + 1) {
        raise_bad_data("listpack smaller than its header");
        return -1;
    }
    total = (uint32_t)blob[0] | ((uint32_t)blob[1] << 8) | ((uint32_t)blob[2] << 16) | ((uint32_t)blob[3] << 24);
    if ((uint64_t)total != (uint64_t)size) {
        raise_bad_data("listpack header size mismatch");
        return -1;
    }
    if (blob[size - 1] != LP_EOF) {
        raise_bad_data("listpack not terminated by 0xFF");
        return -1;
    }
    return (long)((unsigned int)blob[4] | ((unsigned int)blob[5] << 8));
}

/* One decoded entry: a string (offset and length in the blob) or an integer. */
typedef struct {
    int is_int;
    int64_t value;
    int64_t start;
    int64_t len;
} Entry;

/* listpack.py's _entry: the entry at ``pos`` (first byte ``b``, not the terminator)
 * into *e and where the next one starts into *next. */
static enum walk_error
read_entry(const unsigned char *blob, int64_t pos, unsigned int b, int64_t limit, int deep, Entry *e, int64_t *next)
{
    int64_t size;
    int64_t nxt;
    if (b < 0x80) {
        size = 1;
        e->is_int = 1;
        e->value = b;
    }
    else if (b < 0xC0) {
        size = 1 + (b & 0x3F);
        if (pos + size > limit) {
            return ERR_ENTRY_PAST_END;
        }
        e->is_int = 0;
        e->start = pos + 1;
        e->len = size - 1;
    }
    else if (b < 0xE0) {
        unsigned int u;
        if (pos + 2 > limit) {
            return ERR_ENTRY_PAST_END;
        }
        u = ((b & 0x1Fu) << 8) | blob[pos + 1];
        size = 2;
        e->is_int = 1;
        e->value = u >= 4096 ? (int64_t)u - 8192 : (int64_t)u;
    }
    else if (b < 0xF0) {
        int64_t n;
        if (pos + 2 > limit) {
            return ERR_ENTRY_PAST_END;
        }
        n = (int64_t)(((b & 0x0Fu) << 8) | blob[pos + 1]);
        size = 2 + n;
        if (pos + size > limit) {
            return ERR_ENTRY_PAST_END;
        }
        e->is_int = 0;
        e->start = pos + 2;
        e->len = n;
    }
    else if (b == 0xF0) {
        int64_t n;
        if (pos + 5 > limit) {
            return ERR_ENTRY_PAST_END;
        }
        n = (int64_t)((uint32_t)blob[pos + 1] | ((uint32_t)blob[pos + 2] << 8) | ((uint32_t)blob[pos + 3] << 16) |
                      ((uint32_t)blob[pos + 4] << 24));
        size = 5 + n;
        if (pos + size > limit) {
            return ERR_ENTRY_PAST_END;
        }
        e->is_int = 0;
        e->start = pos + 5;
        e->len = n;
    }
    else if (b <= 0xF4) {
        static const int widths[4] = {2, 3, 4, 8};
        int width = widths[b - 0xF1];
        size = 1 + width;
        if (pos + size > limit) {
            return ERR_ENTRY_PAST_END;
        }
        e->is_int = 1;
        e->value = read_signed_le(blob + pos + 1, width);
    }
    else {
        return ERR_BAD_ENCODING;
    }
    nxt = pos + size + (size <= 127 ? 1 : backlen_size((uint64_t)size));
    if (nxt > limit) {
        return ERR_BACKLEN_PAST_END;
    }
    if (deep && read_backlen(blob, nxt - 1) != size) {
        return ERR_BACKLEN_MISMATCH;
    }
    *next = nxt;
    return WALK_OK;
}

/* Where the walk puts the values: a growing array of new references (or nothing, when
 * only counting). */
typedef struct {
    PyObject **items;
    Py_ssize_t count;
    Py_ssize_t room;
    int build;          /* 0: count only */
    int ints_as_bytes;
    const unsigned char *blob;
    PyObject *local[32];
} Sink;

static void
sink_init(Sink *s, const unsigned char *blob, int build, int ints_as_bytes)
{
    s->items = s->local;
    s->count = 0;
    s->room = (Py_ssize_t)(sizeof(s->local) / sizeof(s->local[0]));
    s->build = build;
    s->ints_as_bytes = ints_as_bytes;
    s->blob = blob;
}

static void
sink_clear(Sink *s)
{
    for (Py_ssize_t i = 0; s->build && i < s->count; i++) {
        Py_DECREF(s->items[i]);
    }
    if (s->items != s->local) {
        PyMem_Free(s->items);
    }
    s->items = s->local;
    s->count = 0;
}

/* Take a new reference (NULL: the error is set; nothing taken). */
static int
sink_put(Sink *s, PyObject *obj)
{
    if (obj == NULL) {
        return -1;
    }
    if (s->count == s->room) {
        Py_ssize_t room = s->room * 2;
        PyObject **grown;
        if (room > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(PyObject *)) {
            Py_DECREF(obj);
            PyErr_NoMemory();
            return -1;
        }
        if (s->items == s->local) {
            grown = PyMem_Malloc((size_t)room * sizeof(PyObject *));
            if (grown != NULL) {
                memcpy(grown, s->local, (size_t)s->count * sizeof(PyObject *));
            }
        }
        else {
            grown = PyMem_Realloc(s->items, (size_t)room * sizeof(PyObject *));
        }
        if (grown == NULL) {
            Py_DECREF(obj);
            PyErr_NoMemory();
            return -1;
        }
        s->items = grown;
        s->room = room;
    }
    s->items[s->count++] = obj;
    return 0;
}

static int
sink_int(Sink *s, int64_t v)
{
    if (!s->build) {
        s->count++;
        return 0;
    }
    if (s->ints_as_bytes) {
        return sink_put(s, int_text(v));
    }
    return sink_put(s, PyLong_FromLongLong(v));
}

static int
sink_string(Sink *s, int64_t start, int64_t len)
{
    if (!s->build) {
        s->count++;
        return 0;
    }
    return sink_put(s, PyBytes_FromStringAndSize((const char *)s->blob + start, (Py_ssize_t)len));
}

static int
sink_entry(Sink *s, const Entry *e)
{
    return e->is_int ? sink_int(s, e->value) : sink_string(s, e->start, e->len);
}

/* decode_py's walk over a blob whose header passed check_header.  On an error
 * *bad_byte is the encoding byte (for ERR_BAD_ENCODING). */
static enum walk_error
walk(const unsigned char *blob, Py_ssize_t blob_size, long numele, int deep, int check_count, Sink *s,
     unsigned int *bad_byte)
{
    const int64_t size = (int64_t)blob_size;
    const int64_t limit = size - 1; /* the terminator; entries end at or before it */
    int64_t pos = LP_HEADER_SIZE;
    Entry e;
    enum walk_error err;

    if (!deep) {
        /* The Python loop inlines 7-bit uints and 6-bit strings without checking where
         * they end: an entry running past the terminator makes the *next* read fail
         * ("entry past end").  Failing at once is the same answer. */
        for (;;) {
            unsigned int b;
            if (pos >= size) {
                return ERR_ENTRY_PAST_END;
            }
            b = blob[pos];
            if (b < 0x80) {
                if (pos + 2 >= size) {
                    return ERR_ENTRY_PAST_END;
                }
                if (sink_int(s, b) < 0) {
                    return ERR_PYTHON;
                }
                pos += 2;
            }
            else if (b < 0xC0) {
                int64_t nxt = pos + (int64_t)(b & 0x3F) + 2;
                if (nxt >= size) {
                    return ERR_ENTRY_PAST_END;
                }
                if (sink_string(s, pos + 1, (int64_t)(b & 0x3F)) < 0) {
                    return ERR_PYTHON;
                }
                pos = nxt;
            }
            else if (b == LP_EOF) {
                return WALK_OK;
            }
            else {
                int64_t nxt = 0;
                err = read_entry(blob, pos, b, limit, 0, &e, &nxt);
                if (err != WALK_OK) {
                    *bad_byte = b;
                    return err;
                }
                if (sink_entry(s, &e) < 0) {
                    return ERR_PYTHON;
                }
                pos = nxt;
            }
        }
    }
    for (;;) {
        int64_t nxt = 0;
        unsigned int b = blob[pos]; /* pos <= limit: read_entry never lets it pass */
        if (b == LP_EOF) {
            break;
        }
        err = read_entry(blob, pos, b, limit, 1, &e, &nxt);
        if (err != WALK_OK) {
            *bad_byte = b;
            return err;
        }
        if (sink_entry(s, &e) < 0) {
            return ERR_PYTHON;
        }
        pos = nxt;
    }
    if (pos != limit) {
        return ERR_TERMINATOR;
    }
    if (check_count && numele != LP_NUMELE_UNKNOWN && (Py_ssize_t)numele != s->count) {
        return ERR_COUNT;
    }
    return WALK_OK;
}

/* Borrow the bytes of ``obj`` (bytes directly, anything else through the buffer
 * protocol; release with release_blob). */
static int
get_blob(PyObject *obj, Py_buffer *view, const unsigned char **data, Py_ssize_t *size)
{
    view->obj = NULL;
    if (PyBytes_Check(obj)) {
        *data = (const unsigned char *)PyBytes_AS_STRING(obj);
        *size = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    *data = (const unsigned char *)view->buf;
    *size = view->len;
    return 0;
}

static void
release_blob(Py_buffer *view)
{
    if (view->obj != NULL) {
        PyBuffer_Release(view);
    }
}

/* Parse (blob, deep[, ints_as_bytes[, check_count]]) with keywords allowed. */
static int
parse_decode_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **slots, int required,
                  int max_slots, const char *const *names, const char *fname)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (int i = 0; i < max_slots; i++) {
        slots[i] = NULL;
    }
    if (nargs > max_slots) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, max_slots, nargs + nkw);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        slots[i] = args[i];
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int found = 0;
        for (int i = 0; i < max_slots; i++) {
            if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
                if (slots[i] != NULL) {
                    PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, names[i]);
                    return -1;
                }
                slots[i] = args[nargs + k];
                found = 1;
                break;
            }
        }
        if (!found) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
            return -1;
        }
    }
    for (int i = 0; i < required; i++) {
        if (slots[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

/* A truth value of an optional argument (``dflt`` when absent); -1 on error. */
static int
flag(PyObject *obj, int dflt)
{
    if (obj == NULL) {
        return dflt;
    }
    if (obj == Py_True) {
        return 1;
    }
    if (obj == Py_False) {
        return 0;
    }
    return PyObject_IsTrue(obj);
}

/* The header check and the walk of a blob argument into ``sink`` (initialised here;
 * ``build``: keep the entries).  -1 with the PayloadError set and the sink cleared. */
static int
walk_blob(PyObject *obj, int deep, int check_count, int build, int ints_as_bytes, Sink *sink)
{
    Py_buffer view;
    const unsigned char *blob;
    Py_ssize_t size;
    unsigned int bad_byte = 0;
    enum walk_error err;
    long numele;

    if (get_blob(obj, &view, &blob, &size) < 0) {
        return -1;
    }
    numele = check_header(blob, size);
    if (numele < 0) {
        release_blob(&view);
        return -1;
    }
    sink_init(sink, blob, build, ints_as_bytes);
    err = walk(blob, size, numele, deep, check_count, sink, &bad_byte);
    release_blob(&view);
    if (err != WALK_OK) {
        sink_clear(sink);
        raise_walk_error(err, bad_byte);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(decode_doc,
"decode(blob, deep, ints_as_bytes=True, check_count=True) -> list\n\n"
"Every entry of a listpack, as listpack.decode_py returns them (strings as bytes,\n"
"integers as decimal bytes or int) with the same checks and the same PayloadErrors.");

static PyObject *
lp_decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"blob", "deep", "ints_as_bytes", "check_count"};
    PyObject *slots[4];
    int deep, ints_as_bytes, check_count;
    Sink sink;
    PyObject *out;

    (void)module;
    if (parse_decode_args(args, nargs, kwnames, slots, 2, 4, names, "decode") < 0) {
        return NULL;
    }
    if ((deep = flag(slots[1], 0)) < 0 || (ints_as_bytes = flag(slots[2], 1)) < 0 ||
        (check_count = flag(slots[3], 1)) < 0) {
        return NULL;
    }
    if (walk_blob(slots[0], deep, check_count, 1, ints_as_bytes, &sink) < 0) {
        return NULL;
    }
    out = PyList_New(sink.count);
    if (out == NULL) {
        sink_clear(&sink);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < sink.count; i++) {
        PyList_SET_ITEM(out, i, sink.items[i]); /* the reference moves to the list */
    }
    if (sink.items != sink.local) {
        PyMem_Free(sink.items);
    }
    return out;
}

PyDoc_STRVAR(count_doc,
"count(blob, deep, check_count=True) -> int\n\n"
"len(decode(blob, deep, check_count=check_count)) with the same checks and refusals, building no values.");

static PyObject *
lp_count(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"blob", "deep", "check_count"};
    PyObject *slots[3];
    int deep, check_count;
    Sink sink;

    (void)module;
    if (parse_decode_args(args, nargs, kwnames, slots, 2, 3, names, "count") < 0) {
        return NULL;
    }
    if ((deep = flag(slots[1], 0)) < 0 || (check_count = flag(slots[2], 1)) < 0) {
        return NULL;
    }
    if (walk_blob(slots[0], deep, check_count, 0, 1, &sink) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(sink.count);
}

PyDoc_STRVAR(decode_hash_doc,
"decode_hash(blob, deep) -> dict\n\n"
"listpack.decode_hash_py: the entries of a hash listpack (decode(blob, deep)) paired as\n"
"field, value into a dict.  A repeated field keeps its first value, or with ``deep``\n"
"is refused; an odd number of entries is refused (the same PayloadErrors).");

static PyObject *
lp_decode_hash(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"blob", "deep"};
    PyObject *slots[2];
    int deep;
    Sink sink;
    PyObject *fields;

    (void)module;
    if (parse_decode_args(args, nargs, kwnames, slots, 2, 2, names, "decode_hash") < 0) {
        return NULL;
    }
    if ((deep = flag(slots[1], 0)) < 0) {
        return NULL;
    }
    if (walk_blob(slots[0], deep, 1, 1, 1, &sink) < 0) {
        return NULL;
    }
    if (sink.count % 2) {
        sink_clear(&sink);
        raise_bad_data("hash blob with an odd number of entries");
        return NULL;
    }
    /* The values are ours alone (bytes we made), so nothing a collection triggered by
     * the dict's allocation runs can reach them. */
    fields = PyDict_New();
    for (Py_ssize_t i = 0; fields != NULL && i < sink.count; i += 2) {
        if (PyDict_SetDefault(fields, sink.items[i], sink.items[i + 1]) == NULL) {
            Py_CLEAR(fields);
        }
    }
    if (fields != NULL && deep && PyDict_GET_SIZE(fields) * 2 != sink.count) {
        Py_CLEAR(fields);
        raise_bad_data("hash with duplicate fields");
    }
    sink_clear(&sink); /* the dict holds its own references */
    return fields;
}

PyDoc_STRVAR(zset_pairs_doc,
"zset_pairs(blob, deep) -> list[tuple[bytes, float]]\n\n"
"listpack.zset_pairs_py: the entries of a sorted-set listpack (decode(blob, deep,\n"
"ints_as_bytes=False)) paired as (member, score); integer members as their decimal\n"
"text, a string score read as zzlGetScore does (strtod of its first 127 bytes, 0 when\n"
"nothing parses).  An odd number of entries or a NaN score is refused (the same\n"
"PayloadErrors).");

/* zzlStrtod: strtod over a NUL-terminated copy of at most 127 bytes (0 if nothing parses). */
static double
score_strtod(const char *text, Py_ssize_t len)
{
    char buf[128];
    char *end;
    double d;
    if (len > 127) {
        len = 127;
    }
    memcpy(buf, text, (size_t)len);
    buf[len] = '\0';
    d = strtod(buf, &end);
    return end == buf ? 0.0 : d;
}

static PyObject *
lp_zset_pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"blob", "deep"};
    PyObject *slots[2];
    int deep;
    Sink sink;
    PyObject *pairs;

    (void)module;
    if (parse_decode_args(args, nargs, kwnames, slots, 2, 2, names, "zset_pairs") < 0) {
        return NULL;
    }
    if ((deep = flag(slots[1], 0)) < 0) {
        return NULL;
    }
    if (walk_blob(slots[0], deep, 1, 1, 0, &sink) < 0) {
        return NULL;
    }
    if (sink.count % 2) {
        sink_clear(&sink);
        raise_bad_data("sorted set blob with an odd number of entries");
        return NULL;
    }
    pairs = PyList_New(sink.count / 2);
    for (Py_ssize_t i = 0; pairs != NULL && i < sink.count; i += 2) {
        PyObject *member = sink.items[i];
        PyObject *score = sink.items[i + 1];
        PyObject *pair;
        double d;
        /* The walk made ints only from int64 entries, so these conversions cannot fail. */
        if (PyLong_CheckExact(score)) {
            d = (double)PyLong_AsLongLong(score);
        }
        else {
            d = score_strtod(PyBytes_AS_STRING(score), PyBytes_GET_SIZE(score));
        }
        if (d != d) {
            Py_CLEAR(pairs);
            raise_bad_data("zset with NaN score");
            break;
        }
        if (PyLong_CheckExact(member)) {
            member = int_text((int64_t)PyLong_AsLongLong(member));
        }
        else {
            Py_INCREF(member);
        }
        if (member == NULL) {
            Py_CLEAR(pairs);
            break;
        }
        pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(member);
            Py_CLEAR(pairs);
            break;
        }
        PyTuple_SET_ITEM(pair, 0, member);
        score = PyFloat_FromDouble(d);
        if (score == NULL) {
            Py_DECREF(pair);
            Py_CLEAR(pairs);
            break;
        }
        PyTuple_SET_ITEM(pair, 1, score);
        PyList_SET_ITEM(pairs, i / 2, pair);
    }
    sink_clear(&sink);
    return pairs;
}

/* ------------------------------------------------------------------------- */
/* encoding */

/* The item array of a list or tuple (borrowed); 0 for any other type. */
static int
sequence_items(PyObject *seq, Py_ssize_t *count, PyObject ***items)
{
    if (PyList_Check(seq)) {
        *count = PyList_GET_SIZE(seq);
        *items = ((PyListObject *)seq)->ob_item;
        return 1;
    }
    if (PyTuple_Check(seq)) {
        *count = PyTuple_GET_SIZE(seq);
        *items = ((PyTupleObject *)seq)->ob_item;
        return 1;
    }
    return 0;
}


/* The bytes of a bytes/bytearray element; 0 when it is neither. */
static inline int
element_bytes(PyObject *obj, const unsigned char **data, Py_ssize_t *len)
{
    if (PyBytes_Check(obj)) {
        *data = (const unsigned char *)PyBytes_AS_STRING(obj);
        *len = PyBytes_GET_SIZE(obj);
        return 1;
    }
    if (PyByteArray_Check(obj)) {
        *data = (const unsigned char *)PyByteArray_AS_STRING(obj);
        *len = PyByteArray_GET_SIZE(obj);
        return 1;
    }
    return 0;
}

/* int_entry_size: encoding + data + backlen of an integer entry. */
static int
int_entry_size(int64_t v)
{
    if (v >= 0 && v <= 127) {
        return 2;
    }
    if (v >= -4096 && v <= 4095) {
        return 3;
    }
    if (v >= -32768 && v <= 32767) {
        return 4;
    }
    if (v >= -8388608 && v <= 8388607) {
        return 5;
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        return 6;
    }
    return 10;
}

/* The entry size of a string element that is not stored as an integer. */
static uint64_t
string_entry_size(uint64_t n)
{
    if (n < 64) {
        return n + 2;
    }
    if (n < 4096) {
        return n + 2 + (uint64_t)backlen_size(n + 2);
    }
    return n + 5 + (uint64_t)backlen_size(n + 5);
}

/* int_entry_bytes into ``out`` (10 bytes of room); returns the end. */
static unsigned char *
put_int_entry(unsigned char *out, int64_t v)
{
    int width;
    uint64_t u = (uint64_t)v;
    if (v >= 0 && v <= 127) {
        out[0] = (unsigned char)v;
        out[1] = 1;
        return out + 2;
    }
    if (v >= -4096 && v <= 4095) {
        unsigned int t = (unsigned int)(v < 0 ? v + 8192 : v);
        out[0] = (unsigned char)(0xC0u | (t >> 8));
        out[1] = (unsigned char)(t & 0xFFu);
        out[2] = 2;
        return out + 3;
    }
    if (v >= -32768 && v <= 32767) {
        out[0] = 0xF1;
        width = 2;
    }
    else if (v >= -8388608 && v <= 8388607) {
        out[0] = 0xF2;
        width = 3;
    }
    else if (v >= INT32_MIN && v <= INT32_MAX) {
        out[0] = 0xF3;
        width = 4;
    }
    else {
        out[0] = 0xF4;
        width = 8;
    }
    for (int i = 0; i < width; i++) {
        out[1 + i] = (unsigned char)((u >> (8 * i)) & 0xFFu);
    }
    out[1 + width] = (unsigned char)(1 + width);
    return out + 2 + width;
}

/* entry_bytes of a string element of ``n`` bytes (n < 2**32) into ``out``. */
static unsigned char *
put_string_entry(unsigned char *out, const unsigned char *s, Py_ssize_t n)
{
    uint64_t un = (uint64_t)n;
    if (n < 64) {
        *out++ = (unsigned char)(0x80u | (unsigned int)n);
        lpe_copy(out, s, (size_t)n);
        out += n;
        *out++ = (unsigned char)(n + 1);
        return out;
    }
    if (n < 4096) {
        *out++ = (unsigned char)(0xE0u | (unsigned int)(un >> 8));
        *out++ = (unsigned char)(un & 0xFFu);
        memcpy(out, s, (size_t)n);
        out += n;
        return put_backlen(out, un + 2);
    }
    *out++ = 0xF0;
    for (int i = 0; i < 4; i++) {
        *out++ = (unsigned char)((un >> (8 * i)) & 0xFFu);
    }
    memcpy(out, s, (size_t)n);
    out += n;
    return put_backlen(out, un + 5);
}

/* entry_bytes (lpAppend's choice) of one bytes-like element. */
static unsigned char *
put_element(unsigned char *out, const unsigned char *s, Py_ssize_t n)
{
    int64_t v;
    if (may_be_int(s, n) && canonical_int(s, n, &v)) {
        return put_int_entry(out, v);
    }
    return put_string_entry(out, s, n);
}

/* The largest entry of an element of ``n`` bytes: 5 header bytes + data + 5 backlen
 * bytes (an integer entry is at most 10 bytes). */
#define ENTRY_BOUND(n) ((uint64_t)(n) + 10u)

/* Terminate the listpack being built in ``blob`` (a new bytes object of at least the
 * final size) whose entries end at ``out``, write its header for ``count`` entries and
 * trim it.  Steals ``blob``; None when it passes 4 GiB. */
static PyObject *
finish_blob(PyObject *blob, unsigned char *out, Py_ssize_t count)
{
    unsigned char *start = (unsigned char *)PyBytes_AS_STRING(blob);
    uint64_t total;
    unsigned int numele = count < LP_NUMELE_UNKNOWN ? (unsigned int)count : LP_NUMELE_UNKNOWN;
    *out++ = LP_EOF;
    total = (uint64_t)(out - start);
    if (total > UINT32_MAX) {
        Py_DECREF(blob);
        Py_RETURN_NONE;
    }
    start[0] = (unsigned char)(total & 0xFFu);
    start[1] = (unsigned char)((total >> 8) & 0xFFu);
    start[2] = (unsigned char)((total >> 16) & 0xFFu);
    start[3] = (unsigned char)((total >> 24) & 0xFFu);
    start[4] = (unsigned char)(numele & 0xFFu);
    start[5] = (unsigned char)(numele >> 8);
    if ((Py_ssize_t)total != PyBytes_GET_SIZE(blob) && _PyBytes_Resize(&blob, (Py_ssize_t)total) < 0) {
        return NULL;
    }
    return blob;
}

/* Build the listpack of ``seq`` (a list or tuple).  ``ints``: Python ints are elements
 * too (encode_mixed).  None when an element is not handled here (see the top). */
static PyObject *
encode_sequence(PyObject *seq, int ints)
{
    Py_ssize_t count;
    PyObject **items;
    uint64_t bound = LP_HEADER_SIZE + 1;
    PyObject *blob;
    unsigned char *start, *out;

    if (!sequence_items(seq, &count, &items)) {
        Py_RETURN_NONE;
    }
    /* First pass: types, int64 range, and an upper bound of the size. */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *obj = items[i];
        const unsigned char *s;
        Py_ssize_t n;
        if (element_bytes(obj, &s, &n)) {
            if ((uint64_t)n > UINT32_MAX) {
                Py_RETURN_NONE; /* Python: struct.error for the 32-bit length */
            }
            bound += ENTRY_BOUND(n);
        }
        else if (ints && PyLong_Check(obj)) {
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
            if (overflow) {
                Py_RETURN_NONE; /* Python: OverflowError from to_bytes */
            }
            if (v == -1 && PyErr_Occurred()) {
                return NULL;
            }
            bound += 10;
        }
        else {
            Py_RETURN_NONE;
        }
        if (bound > ((uint64_t)UINT32_MAX + 1u) * 2u) {
            Py_RETURN_NONE; /* over 4 GiB for sure: Python's struct.error */
        }
    }
    if (bound > (uint64_t)PY_SSIZE_T_MAX) {
        Py_RETURN_NONE;
    }
    blob = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)bound);
    if (blob == NULL) {
        return NULL;
    }
    start = (unsigned char *)PyBytes_AS_STRING(blob);
    out = start + LP_HEADER_SIZE;
    /* Second pass: the entries.  The list cannot change meanwhile: no Python code runs
     * (bytes are not garbage-collected, so allocating the blob runs no collection;
     * PyLong_AsLongLong on an int subclass does not call __index__). */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *obj = items[i];
        const unsigned char *s;
        Py_ssize_t n;
        if (element_bytes(obj, &s, &n)) {
            out = put_element(out, s, n);
        }
        else {
            out = put_int_entry(out, (int64_t)PyLong_AsLongLong(obj));
        }
    }
    return finish_blob(blob, out, count);
}

PyDoc_STRVAR(encode_doc,
"encode(items) -> bytes | None\n\n"
"listpack.encode_py of a list or tuple of bytes/bytearray: canonical integers as integer\n"
"entries, the rest as strings.  None when an element is of another type (or the blob\n"
"would pass 4 GiB): the caller runs the Python code then.");

static PyObject *
lp_encode(PyObject *module, PyObject *items)
{
    (void)module;
    return encode_sequence(items, 0);
}

PyDoc_STRVAR(encode_mixed_doc,
"encode_mixed(items) -> bytes | None\n\n"
"listpack.encode_mixed of a list or tuple of bytes/bytearray and ints.  None when an\n"
"element is of another type or an int is outside int64 (or the blob would pass 4 GiB).");

static PyObject *
lp_encode_mixed(PyObject *module, PyObject *items)
{
    (void)module;
    return encode_sequence(items, 1);
}

PyDoc_STRVAR(zset_entries_doc,
"zset_entries(index, text) -> list\n\n"
"encode.zset_entries_py: the listpack entries of a sorted set from its (score, member)\n"
"index, in order: member, then the score as Redis stores it (b\"-0\" for -0, an int when\n"
"the score is integral and within +-2^62, else its text: ``text(score)``, or %.17g when\n"
"``text`` is None).  None for an index entry that is not a (float, bytes) tuple.");

/* printf's "%.17g" of ``d`` into ``out`` (at least 32 bytes) when 1e-4 <= |d| < 1e16, the
 * plain-decimal range where %g prints no exponent: the 17 significant digits are the exact
 * value m * 2^e * 10^p (m < 2^53, p <= 20: under 2^120) rounded half to even in 128-bit
 * integers, as glibc rounds the exact binary value.  The length, or 0 for any other value
 * (the caller then asks PyOS_double_to_string).  Tests compare both on random doubles. */
static int
g17_text(double d, char *out)
{
    static const uint64_t pow10[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
                                       100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
                                       1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
                                       1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
                                       1000000000000000000ULL, 10000000000000000000ULL};
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e16)) {
        return 0;
    }
    int exp2;
    double f = frexp(a, &exp2); /* a = f * 2^exp2, 0.5 <= f < 1 */
    uint64_t m = (uint64_t)ldexp(f, 53);
    int e = exp2 - 53;
    int k = (int)floor(log10(a));
    uint64_t n = 0;
    for (int tries = 0; tries < 3; tries++) {
        if (k < -4 || k > 15) {
            return 0;
        }
        int p = 16 - k; /* 1 .. 20 */
        unsigned __int128 scale = p == 20 ? (unsigned __int128)pow10[19] * 10u : (unsigned __int128)pow10[p];
        unsigned __int128 t = (unsigned __int128)m * scale;
        if (e >= 0) {
            t <<= e; /* a >= 2^53: an integer, k == 15, p == 1: under 2^58 */
            n = (uint64_t)t;
        }
        else {
            int sh = -e; /* 1 .. 66 + 14 */
            if (sh >= 127) {
                return 0;
            }
            unsigned __int128 q = t >> sh;
            unsigned __int128 r = t - (q << sh);
            unsigned __int128 half = (unsigned __int128)1 << (sh - 1);
            if (r > half || (r == half && (q & 1))) {
                q += 1;
            }
            n = (uint64_t)q;
        }
        if (n >= pow10[17]) {
            k += 1;
        }
        else if (n < pow10[16]) {
            k -= 1;
        }
        else {
            break;
        }
        if (tries == 2) {
            return 0;
        }
    }
    if (k < -4 || k > 15) {
        return 0;
    }
    char digits[17];
    for (int i = 16; i >= 0; i--) {
        digits[i] = (char)('0' + (int)(n % 10u));
        n /= 10u;
    }
    int len = 0;
    if (d < 0) {
        out[len++] = '-';
    }
    int last = 16; /* the last digit kept: trailing zeros of the fraction go */
    while (last > (k >= 0 ? k : -1) && digits[last] == '0') {
        last--;
    }
    if (k >= 0) {
        for (int i = 0; i <= k; i++) {
            out[len++] = digits[i];
        }
        if (last > k) {
            out[len++] = '.';
            for (int i = k + 1; i <= last; i++) {
                out[len++] = digits[i];
            }
        }
    }
    else {
        out[len++] = '0';
        out[len++] = '.';
        for (int i = 0; i < -k - 1; i++) {
            out[len++] = '0';
        }
        for (int i = 0; i <= last; i++) {
            out[len++] = digits[i];
        }
    }
    return len;
}

static PyObject *
lp_zset_entries(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *iter, *item, *entries;
    PyObject *text_fn;

    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "zset_entries(index, text)");
        return NULL;
    }
    text_fn = args[1];
    iter = PyObject_GetIter(args[0]);
    if (iter == NULL) {
        return NULL;
    }
    entries = PyList_New(0);
    while (entries != NULL && (item = PyIter_Next(iter)) != NULL) {
        PyObject *member, *score_entry;
        double d;
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 || !PyFloat_CheckExact(PyTuple_GET_ITEM(item, 0)) ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(item, 1))) {
            Py_DECREF(item);
            Py_DECREF(entries);
            Py_DECREF(iter);
            Py_RETURN_NONE;
        }
        d = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(item, 0));
        member = PyTuple_GET_ITEM(item, 1);
        if (d == 0 && signbit(d)) {
            score_entry = PyBytes_FromStringAndSize("-0", 2);
        }
        else if (d >= -4611686018427387903.0 && d <= 4611686018427387903.0 && d == (double)(long long)d) {
            score_entry = PyLong_FromLongLong((long long)d);
        }
        else if (text_fn == Py_None) {
            char fast[32];
            int n = g17_text(d, fast);
            if (n > 0) {
                score_entry = PyBytes_FromStringAndSize(fast, n);
            }
            else {
                char *text = PyOS_double_to_string(d, 'g', 17, 0, NULL);
                score_entry = text == NULL ? NULL : PyBytes_FromString(text);
                PyMem_Free(text);
            }
        }
        else {
            score_entry = PyObject_CallOneArg(text_fn, PyTuple_GET_ITEM(item, 0));
        }
        if (score_entry == NULL || PyList_Append(entries, member) < 0 || PyList_Append(entries, score_entry) < 0) {
            Py_CLEAR(entries);
        }
        Py_XDECREF(score_entry);
        Py_DECREF(item);
    }
    Py_DECREF(iter);
    if (entries != NULL && PyErr_Occurred()) {
        Py_CLEAR(entries);
    }
    return entries;
}

PyDoc_STRVAR(intset_blob_doc,
"intset_blob(members) -> bytes | None\n\n"
"The intset blob (intset.encode) of a set whose members all spell canonical int64s (what\n"
"encode._intset_blob_py checks): header, then the values ascending at the narrowest width.\n"
"None when a member is not exactly bytes or not such an integer, or ``members`` is not a set.");

static int
compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static PyObject *
lp_intset_blob(PyObject *module, PyObject *members)
{
    Py_ssize_t count, pos = 0, i = 0;
    PyObject *member;
    Py_hash_t hash;
    int64_t local[64];
    int64_t *values = local;
    PyObject *blob = NULL;
    int width;

    (void)module;
    if (!PyAnySet_CheckExact(members)) {
        Py_RETURN_NONE;
    }
    count = PySet_GET_SIZE(members);
    if (count > (Py_ssize_t)(sizeof(local) / sizeof(local[0]))) {
        values = PyMem_Malloc((size_t)count * sizeof(int64_t));
        if (values == NULL) {
            return PyErr_NoMemory();
        }
    }
    /* No Python code runs while the set is read (bytes are compared by memcmp). */
    while (_PySet_NextEntry(members, &pos, &member, &hash)) {
        if (!PyBytes_CheckExact(member) || i >= count ||
            !canonical_int((const unsigned char *)PyBytes_AS_STRING(member), PyBytes_GET_SIZE(member), &values[i])) {
            goto done;
        }
        i++;
    }
    if (i != count) {
        goto done;
    }
    if (count <= 16) { /* a small set (every intset of the small keys): no qsort callbacks */
        for (Py_ssize_t k = 1; k < count; k++) {
            int64_t v = values[k];
            Py_ssize_t j = k;
            for (; j > 0 && values[j - 1] > v; j--) {
                values[j] = values[j - 1];
            }
            values[j] = v;
        }
    }
    else {
        qsort(values, (size_t)count, sizeof(int64_t), compare_int64);
    }
    width = 2;
    if (count && (values[0] < -32768 || values[count - 1] > 32767)) {
        width = values[0] < INT32_MIN || values[count - 1] > INT32_MAX ? 8 : 4;
    }
    if ((uint64_t)count > UINT32_MAX) {
        goto done;
    }
    blob = PyBytes_FromStringAndSize(NULL, 8 + count * width);
    if (blob != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(blob);
        uint32_t header[2] = {(uint32_t)width, (uint32_t)count};
        for (int h = 0; h < 2; h++) {
            for (int b = 0; b < 4; b++) {
                *out++ = (unsigned char)(header[h] >> (8 * b));
            }
        }
        for (Py_ssize_t k = 0; k < count; k++) {
            uint64_t u = (uint64_t)values[k];
            for (int b = 0; b < width; b++) {
                *out++ = (unsigned char)(u >> (8 * b));
            }
        }
    }
    if (values != local) {
        PyMem_Free(values);
    }
    return blob;
done:
    if (values != local) {
        PyMem_Free(values);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(intset_members_doc,
"intset_members(blob, deep) -> list[bytes]\n\n"
"decode._intset_members_py: an intset blob's values (intset.decode's checks and\n"
"PayloadErrors) as their decimal texts, in blob order.");

static PyObject *
lp_intset_members(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    const unsigned char *blob;
    Py_ssize_t size;
    uint32_t width, count;
    PyObject *members = NULL;
    int deep;

    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "intset_members(blob, deep)");
        return NULL;
    }
    if ((deep = PyObject_IsTrue(args[1])) < 0 || get_blob(args[0], &view, &blob, &size) < 0) {
        return NULL;
    }
    if (size < 8) {
        raise_bad_data("intset smaller than its header");
        goto done;
    }
    width = (uint32_t)blob[0] | ((uint32_t)blob[1] << 8) | ((uint32_t)blob[2] << 16) | ((uint32_t)blob[3] << 24);
    count = (uint32_t)blob[4] | ((uint32_t)blob[5] << 8) | ((uint32_t)blob[6] << 16) | ((uint32_t)blob[7] << 24);
    if (width != 2 && width != 4 && width != 8) {
        char detail[48];
        PyOS_snprintf(detail, sizeof(detail), "invalid intset encoding %u", (unsigned int)width);
        raise_bad_data(detail);
        goto done;
    }
    if (8u + (uint64_t)count * width != (uint64_t)size) {
        raise_bad_data("intset size mismatch");
        goto done;
    }
    if (count == 0) {
        raise_bad_data("empty intset");
        goto done;
    }
    if (deep) {
        for (uint32_t i = 1; i < count; i++) {
            if (read_signed_le(blob + 8 + (size_t)i * width, (int)width) <=
                read_signed_le(blob + 8 + (size_t)(i - 1) * width, (int)width)) {
                raise_bad_data("intset not strictly ascending");
                goto done;
            }
        }
    }
    members = PyList_New((Py_ssize_t)count);
    for (uint32_t i = 0; members != NULL && i < count; i++) {
        PyObject *text = int_text(read_signed_le(blob + 8 + (size_t)i * width, (int)width));
        if (text == NULL) {
            Py_CLEAR(members);
            break;
        }
        PyList_SET_ITEM(members, (Py_ssize_t)i, text);
    }
done:
    release_blob(&view);
    return members;
}

PyDoc_STRVAR(encode_dict_doc,
"encode_dict(fields) -> bytes | None\n\n"
"listpack.encode of a dict's keys and values, alternating in dict order (a hash\n"
"listpack): encode([x for pair in fields.items() for x in pair]) without the list.\n"
"None for anything but an exact dict of bytes/bytearray (or a blob over 4 GiB).");

static PyObject *
lp_encode_dict(PyObject *module, PyObject *fields)
{
    Py_ssize_t size, pos = 0;
    PyObject *key, *value;
    uint64_t bound = LP_HEADER_SIZE + 1;
    PyObject *blob;
    unsigned char *start, *out, *end;
    (void)module;
    if (!PyDict_CheckExact(fields)) {
        Py_RETURN_NONE; /* a subclass may have its own items() */
    }
    size = PyDict_GET_SIZE(fields);
    /* First pass: types and an upper bound of the size. */
    while (PyDict_Next(fields, &pos, &key, &value)) {
        const unsigned char *s;
        Py_ssize_t n, m;
        if (!element_bytes(key, &s, &n) || !element_bytes(value, &s, &m)) {
            Py_RETURN_NONE;
        }
        if ((uint64_t)n > UINT32_MAX || (uint64_t)m > UINT32_MAX) {
            Py_RETURN_NONE; /* Python: struct.error for the 32-bit length */
        }
        bound += ENTRY_BOUND(n) + ENTRY_BOUND(m);
        if (bound > ((uint64_t)UINT32_MAX + 1u) * 2u) {
            Py_RETURN_NONE; /* over 4 GiB for sure */
        }
    }
    if (bound > (uint64_t)PY_SSIZE_T_MAX) {
        Py_RETURN_NONE;
    }
    blob = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)bound);
    if (blob == NULL) {
        return NULL;
    }
    start = (unsigned char *)PyBytes_AS_STRING(blob);
    out = start + LP_HEADER_SIZE;
    end = start + bound - 1; /* room for the terminator */
    /* Second pass: the entries.  No Python code ran since the first (a bytes object is
     * not garbage-collected, so allocating it runs no collection): the dict is as it
     * was.  The room is still checked entry by entry. */
    pos = 0;
    while (PyDict_Next(fields, &pos, &key, &value)) {
        const unsigned char *s;
        Py_ssize_t n;
        for (int half = 0; half < 2; half++) {
            if (!element_bytes(half ? value : key, &s, &n) || ENTRY_BOUND(n) > (uint64_t)(end - out)) {
                Py_DECREF(blob);
                PyErr_SetString(PyExc_RuntimeError, "dictionary changed during encoding");
                return NULL;
            }
            out = put_element(out, s, n);
        }
    }
    if (PyDict_GET_SIZE(fields) != size) {
        Py_DECREF(blob);
        PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during encoding");
        return NULL;
    }
    return finish_blob(blob, out, 2 * size);
}

/* entry_size of a bytes-like element; -1 when it is not one (no error set). */
static int64_t
element_entry_size(PyObject *obj)
{
    const unsigned char *s;
    Py_ssize_t n;
    int64_t v;
    if (!element_bytes(obj, &s, &n)) {
        return -1;
    }
    if (may_be_int(s, n) && canonical_int(s, n, &v)) {
        return int_entry_size(v);
    }
    return (int64_t)string_entry_size((uint64_t)n);
}

PyDoc_STRVAR(entry_size_doc,
"entry_size(s) -> int | None\n\n"
"len(entry_bytes(s)) of a bytes/bytearray element; None for anything else.");

static PyObject *
lp_entry_size(PyObject *module, PyObject *obj)
{
    int64_t size = element_entry_size(obj);
    (void)module;
    if (size < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(size);
}

PyDoc_STRVAR(entry_sizes_doc,
"entry_sizes(items) -> list[int] | None\n\n"
"[entry_size(s) for s in items] for a list or tuple of bytes/bytearray; None when an\n"
"element is of another type.");

static PyObject *
lp_entry_sizes(PyObject *module, PyObject *seq)
{
    Py_ssize_t count;
    PyObject **items;
    PyObject *out;
    int64_t *sizes;
    (void)module;
    if (!sequence_items(seq, &count, &items)) {
        Py_RETURN_NONE;
    }
    /* The sizes first, then the list: creating a list may run a garbage collection whose
     * finalizers could change ``seq`` (ints and raw memory never do). */
    sizes = PyMem_Malloc(count > 0 ? (size_t)count * sizeof(int64_t) : 1);
    if (sizes == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        sizes[i] = element_entry_size(items[i]);
        if (sizes[i] < 0) {
            PyMem_Free(sizes);
            Py_RETURN_NONE;
        }
    }
    out = PyList_New(count);
    if (out != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *size = PyLong_FromLongLong(sizes[i]);
            if (size == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, i, size);
        }
    }
    PyMem_Free(sizes);
    return out;
}

/* ------------------------------------------------------------------------- */
/* quicklist node cuts */

typedef struct {
    Py_ssize_t start;
    Py_ssize_t stop;
    int plain;
    int64_t size;
} Cut;

typedef struct {
    Cut *cuts;
    Py_ssize_t count;
    Py_ssize_t room;
} Cuts;

static int
cuts_push(Cuts *c, Py_ssize_t start, Py_ssize_t stop, int plain, int64_t size)
{
    if (c->count == c->room) {
        Py_ssize_t room = c->room ? c->room * 2 : 64;
        Cut *grown;
        if (room > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Cut)) {
            PyErr_NoMemory();
            return -1;
        }
        grown = PyMem_Realloc(c->cuts, (size_t)room * sizeof(Cut));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->cuts = grown;
        c->room = room;
    }
    c->cuts[c->count].start = start;
    c->cuts[c->count].stop = stop;
    c->cuts[c->count].plain = plain;
    c->cuts[c->count].size = size;
    c->count++;
    return 0;
}

#define LP_EMPTY_BYTES 7      /* header + terminator */
#define QL_SIZE_ESTIMATE 8    /* quicklist.c's SIZE_ESTIMATE_OVERHEAD */
#define CUT_LIMIT_MAX ((int64_t)1 << 40)

PyDoc_STRVAR(pack_by_size_doc,
"pack_by_size(items, limit, large, listpack_phase) -> list[tuple[int, int, int, int]] | None\n\n"
"quicklist._pack_by_size's decisions for a list of bytes/bytearray: (start, stop, plain,\n"
"size) per node, in order; ``plain`` nodes hold the one element items[start] and ``size``\n"
"is its length, packed nodes hold items[start:stop] in a listpack of ``size`` bytes.\n"
"``limit``: the node byte limit, ``large``: elements longer than this get a plain node,\n"
"``listpack_phase``: the list starts as one listpack (7.2+).  None when an element is\n"
"of another type or a limit is outside 0..2**40.");

static PyObject *
lp_pack_by_size(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *seq;
    PyObject **items;
    Py_ssize_t count;
    long long limit, large;
    int phase;
    int64_t node_size = 0; /* lpBytes of the open packed node; 0: none open */
    Py_ssize_t start = 0;
    Cuts cuts = {NULL, 0, 0};
    PyObject *out;

    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "pack_by_size() takes exactly 4 arguments");
        return NULL;
    }
    seq = args[0];
    limit = PyLong_AsLongLong(args[1]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    large = PyLong_AsLongLong(args[2]);
    if (large == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((phase = PyObject_IsTrue(args[3])) < 0) {
        return NULL;
    }
    if (limit < 0 || limit > CUT_LIMIT_MAX || large < 0 || large > CUT_LIMIT_MAX) {
        Py_RETURN_NONE;
    }
    if (!sequence_items(seq, &count, &items)) {
        Py_RETURN_NONE;
    }
    /* The walk touches only the elements and raw memory (no Python objects are made
     * until it is over, so nothing can change the list under it).  Every sum below
     * stays far inside int64: limits are at most 2**40, and an element's entry size is
     * only added once its length passed a comparison with one of them. */
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *s;
        Py_ssize_t n;
        int64_t size;
        if (!element_bytes(items[i], &s, &n)) {
            PyMem_Free(cuts.cuts);
            Py_RETURN_NONE;
        }
        size = (int64_t)n;
        if (phase) {
            int64_t base = node_size ? node_size : LP_EMPTY_BYTES;
            if (size <= limit - base) {
                node_size = base + element_entry_size(items[i]);
                continue;
            }
            phase = 0;
        }
        if (size > large) {
            if (node_size && cuts_push(&cuts, start, i, 0, node_size) < 0) {
                goto fail;
            }
            if (cuts_push(&cuts, i, i + 1, 1, size) < 0) {
                goto fail;
            }
            start = i + 1;
            node_size = 0;
        }
        else if (node_size && size <= limit - node_size - QL_SIZE_ESTIMATE) {
            node_size += element_entry_size(items[i]);
        }
        else {
            if (node_size && cuts_push(&cuts, start, i, 0, node_size) < 0) {
                goto fail;
            }
            start = i;
            node_size = LP_EMPTY_BYTES + element_entry_size(items[i]);
        }
    }
    if (node_size && cuts_push(&cuts, start, count, 0, node_size) < 0) {
        goto fail;
    }
    out = PyList_New(cuts.count);
    if (out == NULL) {
        goto fail;
    }
    for (Py_ssize_t k = 0; k < cuts.count; k++) {
        Cut *c = &cuts.cuts[k];
        PyObject *t = Py_BuildValue("(nniL)", c->start, c->stop, c->plain, (long long)c->size);
        if (t == NULL) {
            Py_DECREF(out);
            goto fail;
        }
        PyList_SET_ITEM(out, k, t);
    }
    PyMem_Free(cuts.cuts);
    return out;
fail:
    PyMem_Free(cuts.cuts);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* whole quicklist-2 bodies */

/* A growing byte buffer: raw memory, or (``obj`` set) the storage of a new bytes
 * object nobody else has seen yet, which becomes the result without a copy.  Growing
 * either creates no garbage-collected object, so it runs no Python code. */
typedef struct {
    unsigned char *data;
    size_t len;
    size_t cap;
    PyObject *obj; /* the bytes object holding data, or NULL for raw memory */
} Buf;

static int
buf_grow(Buf *b, size_t extra)
{
    size_t need, cap;
    if (extra > (size_t)PY_SSIZE_T_MAX - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    need = b->len + extra;
    cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        cap = cap > (size_t)PY_SSIZE_T_MAX / 2 ? need : cap * 2;
    }
    if (b->obj != NULL) {
        if (_PyBytes_Resize(&b->obj, (Py_ssize_t)cap) < 0) { /* (frees it on failure) */
            b->data = NULL;
            b->len = b->cap = 0;
            return -1;
        }
        b->data = (unsigned char *)PyBytes_AS_STRING(b->obj);
    }
    else {
        unsigned char *grown = PyMem_Realloc(b->data, cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->data = grown;
    }
    b->cap = cap;
    return 0;
}

static void
buf_free(Buf *b)
{
    if (b->obj != NULL) {
        Py_CLEAR(b->obj);
    }
    else {
        PyMem_Free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Room for ``extra`` more bytes. */
static inline int
buf_reserve(Buf *b, size_t extra)
{
    return extra <= b->cap - b->len ? 0 : buf_grow(b, extra);
}

/* rdbSaveLen (primitives.append_len) into ``out`` (9 bytes of room); returns the end. */
static unsigned char *
put_rdb_len(unsigned char *out, uint64_t n)
{
    if (n < 0x40) {
        *out++ = (unsigned char)n;
        return out;
    }
    if (n < 0x4000) {
        *out++ = (unsigned char)(0x40u | (unsigned int)(n >> 8));
        *out++ = (unsigned char)(n & 0xFFu);
        return out;
    }
    if (n <= UINT32_MAX) {
        *out++ = 0x80;
        for (int i = 3; i >= 0; i--) {
            *out++ = (unsigned char)((n >> (8 * i)) & 0xFFu);
        }
        return out;
    }
    *out++ = 0x81;
    for (int i = 7; i >= 0; i--) {
        *out++ = (unsigned char)((n >> (8 * i)) & 0xFFu);
    }
    return out;
}

/* The raw form of an rdbString: its length, then its bytes. */
static int
put_raw_string(Buf *out, const unsigned char *s, size_t n)
{
    unsigned char *p;
    if (n > (size_t)PY_SSIZE_T_MAX - 9) {
        PyErr_NoMemory();
        return -1;
    }
    if (buf_reserve(out, n + 9) < 0) {
        return -1;
    }
    p = put_rdb_len(out->data + out->len, (uint64_t)n);
    if (n) {
        memcpy(p, s, n);
    }
    out->len = (size_t)(p - out->data) + n;
    return 0;
}

/* primitives.append_string(out, s, compress) for the bytes s[0:n] (``compress_fn``:
 * compression.compress_for_rdb, or NULL when not compressing).  ``obj`` is the exact
 * bytes object holding s when there is one (the compressor gets it then, as
 * bytes(s) is s), else NULL.  The compressor is Python code: after it runs, the bytes
 * are read from the immutable object it was given, never from s again. */
static int
put_rdb_string(Buf *out, const unsigned char *s, Py_ssize_t n, PyObject *obj, PyObject *compress_fn)
{
    int64_t v;
    if (n <= 11 && may_be_int(s, n) && canonical_int(s, n, &v) && v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        unsigned char *p;
        if (buf_reserve(out, 5) < 0) {
            return -1;
        }
        p = out->data + out->len;
        if (v >= -128 && v <= 127) {
            p[0] = 0xC0; /* INT8 */
            p[1] = (unsigned char)(u & 0xFFu);
            out->len += 2;
        }
        else if (v >= -32768 && v <= 32767) {
            p[0] = 0xC1; /* INT16 */
            p[1] = (unsigned char)(u & 0xFFu);
            p[2] = (unsigned char)((u >> 8) & 0xFFu);
            out->len += 3;
        }
        else {
            p[0] = 0xC2; /* INT32 */
            for (int i = 0; i < 4; i++) {
                p[1 + i] = (unsigned char)((u >> (8 * i)) & 0xFFu);
            }
            out->len += 5;
        }
        return 0;
    }
    if (compress_fn != NULL && n > 20) {
        PyObject *arg, *packed;
        int rc;
        if (obj != NULL) {
            Py_INCREF(obj);
            arg = obj;
        }
        else {
            arg = PyBytes_FromStringAndSize((const char *)s, n);
            if (arg == NULL) {
                return -1;
            }
        }
        packed = PyObject_CallOneArg(compress_fn, arg);
        if (packed == NULL) {
            rc = -1;
        }
        else if (packed == Py_None) {
            rc = put_raw_string(out, (const unsigned char *)PyBytes_AS_STRING(arg), (size_t)PyBytes_GET_SIZE(arg));
        }
        else if (!PyBytes_Check(packed)) {
            PyErr_Format(PyExc_TypeError, "the compressor returned %.100s, not bytes or None",
                         Py_TYPE(packed)->tp_name);
            rc = -1;
        }
        else {
            size_t plen = (size_t)PyBytes_GET_SIZE(packed);
            rc = plen > (size_t)PY_SSIZE_T_MAX - 19 ? (PyErr_NoMemory(), -1) : buf_reserve(out, plen + 19);
            if (rc == 0) {
                unsigned char *p = out->data + out->len;
                *p++ = 0xC3; /* LZF */
                p = put_rdb_len(p, (uint64_t)plen);
                p = put_rdb_len(p, (uint64_t)n);
                memcpy(p, PyBytes_AS_STRING(packed), plen);
                out->len = (size_t)(p - out->data) + plen;
            }
        }
        Py_XDECREF(packed);
        Py_DECREF(arg);
        return rc;
    }
    return put_raw_string(out, s, (size_t)n);
}

/* The listpack of the packed node being built: header room, entries, and at close the
 * terminator and the header. */
typedef struct {
    Buf lp;
    Py_ssize_t count;
    int open;
} PackedNode;

static int
node_open(PackedNode *node)
{
    node->lp.len = 0;
    node->count = 0;
    if (buf_reserve(&node->lp, LP_HEADER_SIZE) < 0) {
        return -1;
    }
    node->lp.len = LP_HEADER_SIZE;
    node->open = 1;
    return 0;
}

/* lpBytes of the open node (header + entries + terminator). */
static inline int64_t
node_bytes(const PackedNode *node)
{
    return (int64_t)node->lp.len + 1;
}

/* Append the entry of an element of ``n`` bytes (the caller checked n < 2**32). */
static int
node_add(PackedNode *node, const unsigned char *s, Py_ssize_t n)
{
    unsigned char *end;
    if (buf_reserve(&node->lp, (size_t)ENTRY_BOUND(n)) < 0) {
        return -1;
    }
    end = put_element(node->lp.data + node->lp.len, s, n);
    node->lp.len = (size_t)(end - node->lp.data);
    node->count++;
    return 0;
}

/* Outcome of the body writers: written, not taken (the caller runs the Python code
 * then, which gives the answer or its own error), or a Python error. */
enum { BODY_DONE = 1, BODY_NOT_MINE = 0, BODY_ERROR = -1 };

/* Close the open node and write it to ``body``: container 2, its listpack as an
 * rdbString.  BODY_NOT_MINE when the listpack would pass 4 GiB. */
static int
node_close(PackedNode *node, Buf *body, PyObject *compress_fn, Py_ssize_t *nodes)
{
    unsigned char *lp;
    size_t total;
    unsigned int numele;
    node->open = 0;
    if (buf_reserve(&node->lp, 1) < 0) {
        return BODY_ERROR;
    }
    node->lp.data[node->lp.len++] = LP_EOF;
    total = node->lp.len;
    if (total > UINT32_MAX) {
        return BODY_NOT_MINE; /* Python: struct.error for the 32-bit total */
    }
    lp = node->lp.data;
    lp[0] = (unsigned char)(total & 0xFFu);
    lp[1] = (unsigned char)((total >> 8) & 0xFFu);
    lp[2] = (unsigned char)((total >> 16) & 0xFFu);
    lp[3] = (unsigned char)((total >> 24) & 0xFFu);
    numele = node->count < LP_NUMELE_UNKNOWN ? (unsigned int)node->count : LP_NUMELE_UNKNOWN;
    lp[4] = (unsigned char)(numele & 0xFFu);
    lp[5] = (unsigned char)(numele >> 8);
    if (buf_reserve(body, 1) < 0) {
        return BODY_ERROR;
    }
    body->data[body->len++] = 2; /* CONTAINER_PACKED */
    if (put_rdb_string(body, lp, (Py_ssize_t)total, NULL, compress_fn) < 0) {
        return BODY_ERROR;
    }
    (*nodes)++;
    return BODY_DONE;
}

/* A plain node: container 1, then the element as an rdbString. */
static int
put_plain(Buf *body, PyObject *item, const unsigned char *s, Py_ssize_t n, PyObject *compress_fn,
          Py_ssize_t *nodes)
{
    if (buf_reserve(body, 1) < 0) {
        return BODY_ERROR;
    }
    body->data[body->len++] = 1; /* CONTAINER_PLAIN */
    if (put_rdb_string(body, s, n, PyBytes_CheckExact(item) ? item : NULL, compress_fn) < 0) {
        return BODY_ERROR;
    }
    (*nodes)++;
    return BODY_DONE;
}

/* The elements, taken from the iterator a batch at a time.  The elements of a big list
 * lie all over the heap, so each is a cache miss: taking a batch in a tight loop (and
 * prefetching each one's bytes) lets those misses overlap instead of waiting for one
 * at a time between encoding steps.  The feed owns the references of its batch. */
#define FEED_BATCH 64

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

typedef struct {
    PyObject *it;
    PyObject *batch[FEED_BATCH];
    int count; /* references held in batch[0:count] */
    int at;    /* the next one to hand out */
    int ended; /* the iterator is exhausted */
} Feed;

static void
feed_release(Feed *feed)
{
    for (int i = 0; i < feed->count; i++) {
        Py_DECREF(feed->batch[i]);
    }
    feed->count = feed->at = 0;
}

/* What feed_next found. */
enum { NEXT_ITEM = 1, NEXT_END = 0, NEXT_ERROR = -1, NEXT_OTHER = 2 };

/* The next element, borrowed from the feed (valid until the next call), with its
 * bytes.  NEXT_OTHER for an element that is not bytes/bytearray. */
static int
feed_next(Feed *feed, PyObject **item, const unsigned char **s, Py_ssize_t *n)
{
    PyObject *obj;
    if (feed->at == feed->count) {
        feed_release(feed);
        while (!feed->ended && feed->count < FEED_BATCH) {
            obj = PyIter_Next(feed->it);
            if (obj == NULL) {
                if (PyErr_Occurred()) {
                    return NEXT_ERROR;
                }
                feed->ended = 1;
                break;
            }
            /* the address of a bytes object's data; nothing is read here */
            PREFETCH((const char *)obj + offsetof(PyBytesObject, ob_sval));
            feed->batch[feed->count++] = obj;
        }
        if (feed->count == 0) {
            return NEXT_END;
        }
    }
    obj = feed->batch[feed->at++];
    if (!element_bytes(obj, s, n)) {
        return NEXT_OTHER;
    }
    *item = obj;
    return NEXT_ITEM;
}

/* quicklist._pack_by_size's cut (pack_by_size's decisions, element by element), each
 * node written as soon as the next element does not join it. */
static int
write_nodes_by_size(Feed *feed, Buf *body, PackedNode *node, PyObject *compress_fn, int64_t limit, int64_t large,
                    int phase, Py_ssize_t *nodes)
{
    for (;;) {
        PyObject *item;
        const unsigned char *s;
        Py_ssize_t n;
        int64_t size;
        int rc;
        int got = feed_next(feed, &item, &s, &n);
        if (got == NEXT_END) {
            break;
        }
        if (got != NEXT_ITEM) {
            return got == NEXT_ERROR ? BODY_ERROR : BODY_NOT_MINE;
        }
        size = (int64_t)n;
        rc = BODY_DONE;
        if (phase) {
            int64_t base = node->open ? node_bytes(node) : LP_EMPTY_BYTES;
            if (size <= limit - base) {
                if ((uint64_t)n > UINT32_MAX) {
                    return BODY_NOT_MINE;
                }
                if ((!node->open && node_open(node) < 0) || node_add(node, s, n) < 0) {
                    return BODY_ERROR;
                }
                continue;
            }
            phase = 0;
        }
        if (size > large) {
            if (node->open) {
                rc = node_close(node, body, compress_fn, nodes);
            }
            if (rc == BODY_DONE) {
                rc = put_plain(body, item, s, n, compress_fn, nodes);
            }
        }
        else if ((uint64_t)n > UINT32_MAX) {
            rc = BODY_NOT_MINE; /* Python: struct.error for the 32-bit entry length */
        }
        else if (node->open && size <= limit - node_bytes(node) - QL_SIZE_ESTIMATE) {
            rc = node_add(node, s, n) < 0 ? BODY_ERROR : BODY_DONE;
        }
        else {
            if (node->open) {
                rc = node_close(node, body, compress_fn, nodes);
            }
            if (rc == BODY_DONE) {
                rc = (node_open(node) < 0 || node_add(node, s, n) < 0) ? BODY_ERROR : BODY_DONE;
            }
        }
        if (rc != BODY_DONE) {
            return rc;
        }
    }
    if (node->open) {
        return node_close(node, body, compress_fn, nodes);
    }
    return BODY_DONE;
}

/* One node of a given layout: how many elements, and its container (1 plain, 2 packed). */
typedef struct {
    Py_ssize_t count;
    int container;
} ShapeNode;

/* The given layout, node by node; every element must be used, exactly. */
static int
write_nodes_by_shape(Feed *feed, Buf *body, PackedNode *node, PyObject *compress_fn, const ShapeNode *shape,
                     Py_ssize_t shape_len, Py_ssize_t *nodes)
{
    PyObject *item;
    const unsigned char *s;
    Py_ssize_t n;
    int got, rc;
    for (Py_ssize_t k = 0; k < shape_len; k++) {
        if (shape[k].container == 1) {
            got = feed_next(feed, &item, &s, &n);
            if (got != NEXT_ITEM) {
                return got == NEXT_ERROR ? BODY_ERROR : BODY_NOT_MINE;
            }
            rc = put_plain(body, item, s, n, compress_fn, nodes);
            if (rc != BODY_DONE) {
                return rc;
            }
            continue;
        }
        if (node_open(node) < 0) {
            return BODY_ERROR;
        }
        for (Py_ssize_t j = 0; j < shape[k].count; j++) {
            got = feed_next(feed, &item, &s, &n);
            if (got != NEXT_ITEM) {
                return got == NEXT_ERROR ? BODY_ERROR : BODY_NOT_MINE;
            }
            if ((uint64_t)n > UINT32_MAX) {
                return BODY_NOT_MINE;
            }
            if (node_add(node, s, n) < 0) {
                return BODY_ERROR;
            }
        }
        rc = node_close(node, body, compress_fn, nodes);
        if (rc != BODY_DONE) {
            return rc;
        }
    }
    got = feed_next(feed, &item, &s, &n);
    if (got == NEXT_END) {
        return BODY_DONE;
    }
    return got == NEXT_ERROR ? BODY_ERROR : BODY_NOT_MINE; /* elements left over */
}

/* Read ``shape`` (a list of (count, container) tuples of ints) into a new array;
 * *len = -1 when a node is not one this writer takes (a container other than 1 or 2,
 * a plain node of other than one element, a negative count).  NULL with an error set
 * on a malformed shape. */
static ShapeNode *
read_shape(PyObject *shape, Py_ssize_t *len)
{
    Py_ssize_t count;
    ShapeNode *nodes;
    if (!PyList_Check(shape)) {
        PyErr_Format(PyExc_TypeError, "shape must be a list or None, not %.100s", Py_TYPE(shape)->tp_name);
        return NULL;
    }
    count = PyList_GET_SIZE(shape);
    nodes = PyMem_Malloc(count > 0 ? (size_t)count * sizeof(ShapeNode) : 1);
    if (nodes == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    *len = count;
    /* Only exact tuples and ints are read: nothing here runs Python code. */
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *entry = PyList_GET_ITEM(shape, k);
        Py_ssize_t size;
        long container;
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 1))) {
            PyMem_Free(nodes);
            PyErr_SetString(PyExc_TypeError, "shape entries must be (count, container) tuples of ints");
            return NULL;
        }
        size = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0));
        container = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
        if ((size == -1 || container == -1) && PyErr_Occurred()) {
            PyMem_Free(nodes);
            return NULL;
        }
        if (size < 0 || (container != 1 && container != 2) || (container == 1 && size != 1)) {
            *len = -1;
        }
        nodes[k].count = size;
        nodes[k].container = (int)container;
    }
    return nodes;
}

PyDoc_STRVAR(quicklist_body_doc,
"quicklist_body(head, items, compress, shape, limit, large, listpack_phase) -> bytes | None\n\n"
"``head`` (bytes, the type byte) followed by a LIST_QUICKLIST_2 body of the elements of\n"
"the iterable ``items``: the node count, then per node its container and its listpack\n"
"(or, plain, its element) as an rdbString - the bytes encode._encode_list writes for\n"
"the same nodes.  ``compress``: compression.compress_for_rdb (called per rdbString over\n"
"20 bytes, as primitives.append_string does) or None.  The nodes: ``shape``, a list of\n"
"(count, container) per node, or when ``shape`` is None quicklist._pack_by_size's cut\n"
"for ``limit``, ``large`` and ``listpack_phase`` (see pack_by_size).  None for input it\n"
"does not take: an element that is not bytes/bytearray, a shape that does not use\n"
"every element exactly or has a plain node of other than one element, a limit outside\n"
"0..2**40, a listpack over 4 GiB.");

static PyObject *
lp_quicklist_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *head, *items, *compress_fn;
    Feed feed;
    long long limit = 0, large = 0;
    int phase = 0;
    ShapeNode *shape = NULL;
    Py_ssize_t shape_len = 0, nodes = 0;
    size_t head_len;
    Buf body = {NULL, 0, 0, NULL};
    PackedNode node = {{NULL, 0, 0, NULL}, 0, 0};
    int rc;
    PyObject *result = NULL;

    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "quicklist_body() takes exactly 7 arguments");
        return NULL;
    }
    head = args[0];
    items = args[1];
    compress_fn = args[2] == Py_None ? NULL : args[2];
    if (!PyBytes_Check(head)) {
        PyErr_Format(PyExc_TypeError, "head must be bytes, not %.100s", Py_TYPE(head)->tp_name);
        return NULL;
    }
    if (compress_fn != NULL && !PyCallable_Check(compress_fn)) {
        PyErr_SetString(PyExc_TypeError, "compress must be callable or None");
        return NULL;
    }
    if (args[3] != Py_None) {
        shape = read_shape(args[3], &shape_len);
        if (shape == NULL) {
            return NULL;
        }
        if (shape_len < 0) {
            PyMem_Free(shape);
            Py_RETURN_NONE;
        }
    }
    else {
        limit = PyLong_AsLongLong(args[4]);
        if (limit == -1 && PyErr_Occurred()) {
            return NULL;
        }
        large = PyLong_AsLongLong(args[5]);
        if (large == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if ((phase = PyObject_IsTrue(args[6])) < 0) {
            return NULL;
        }
        if (limit < 0 || limit > CUT_LIMIT_MAX || large < 0 || large > CUT_LIMIT_MAX) {
            Py_RETURN_NONE;
        }
    }
    feed.it = PyObject_GetIter(items);
    if (feed.it == NULL) {
        PyMem_Free(shape);
        return NULL;
    }
    feed.count = feed.at = feed.ended = 0;
    /* The body is written into the result itself: the head, 9 bytes kept free for the
     * node count (it goes first but is known last), the nodes. */
    head_len = (size_t)PyBytes_GET_SIZE(head);
    body.obj = PyBytes_FromStringAndSize(NULL, 1 << 16);
    if (body.obj == NULL) {
        rc = BODY_ERROR;
    }
    else {
        body.data = (unsigned char *)PyBytes_AS_STRING(body.obj);
        body.cap = (size_t)PyBytes_GET_SIZE(body.obj);
        if (buf_reserve(&body, head_len + 9) < 0) {
            rc = BODY_ERROR;
        }
        else {
            memcpy(body.data, PyBytes_AS_STRING(head), head_len);
            body.len = head_len + 9;
            if (shape != NULL) {
                rc = write_nodes_by_shape(&feed, &body, &node, compress_fn, shape, shape_len, &nodes);
            }
            else {
                rc = write_nodes_by_size(&feed, &body, &node, compress_fn, (int64_t)limit, (int64_t)large, phase,
                                         &nodes);
            }
        }
    }
    feed_release(&feed);
    Py_DECREF(feed.it);
    if (rc == BODY_DONE) {
        /* The node count right after the head, the nodes moved up against it. */
        unsigned char count[9];
        size_t k = (size_t)(put_rdb_len(count, (uint64_t)nodes) - count);
        size_t nodes_len = body.len - head_len - 9;
        memcpy(body.data + head_len, count, k);
        memmove(body.data + head_len + k, body.data + head_len + 9, nodes_len);
        body.len = head_len + k + nodes_len;
        if (_PyBytes_Resize(&body.obj, (Py_ssize_t)body.len) == 0) {
            result = body.obj; /* the reference moves to the caller */
        }
        body.obj = NULL;
        body.data = NULL;
    }
    else if (rc == BODY_NOT_MINE) {
        result = Py_None;
        Py_INCREF(result);
    }
    buf_free(&body);
    buf_free(&node.lp);
    PyMem_Free(shape);
    return result;
}

/* ------------------------------------------------------------------------- */
/* values: small restored values built here, and their DUMP parts read back
 *
 * decode.py's blob readers (_zset_from_listpack, _set_from_listpack, _set_from_intset,
 * _hash_from_listpack, _list_from_one_node) stay the reference: small_value builds the
 * same object they build - the same classes, every slot holding an equal value (a zset's
 * ScoreIndex made by its from_sorted), the same encodings - or declines (None) and they run.
 * It declines whatever it is unsure of: deep sanitization, a blob the walk refuses, an
 * empty value, duplicate members or fields.
 * The datatypes' classes are given once by register_values (decode.py), which checks
 * their __slots__ against the names filled here; a class whose slots differ stays
 * unregistered and its values are declined.
 *
 * dump_parts(value, version) is the other way: encode.py's listpack/intset cases of a
 * small value (see there) as (head, kind, obj) for _speedups' native DUMP to seal:
 * kind 0 obj is a blob written as one rdbString; kind 1 obj a list of strings written as
 * a length and one rdbString each; kind 2 obj raw bytes copied as they are.  None for
 * anything else (encode_payload writes it). */


enum { ZSET_SCORES, ZSET_INDEX, ZSET_ENCODING, ZSET_SCAN, ZSET_SLOTS };
enum { SET_MEMBERS, SET_ENCODING, SET_ORDER, SET_SCAN, SET_SLOTS };
enum { HASH_FIELDS, HASH_EXPIRES, HASH_ENCODING, HASH_HEAP, HASH_SLOTS };
enum { LIST_ITEMS, LIST_PACKED, LIST_ENCODING, LIST_LP_BYTES, LIST_NODES, LIST_SHAPE_LEN, LIST_SLOTS };
enum { PACKED_BUF, PACKED_NODES, PACKED_LENGTH, PACKED_SLOTS };
#define MAX_SLOTS 8

static const char *const zset_slot_names[] = {"_scores", "_index", "encoding", "_scan", NULL};
static const char *const set_slot_names[] = {"_members", "encoding", "_order", "_scan", NULL};
static const char *const hash_slot_names[] = {"_fields", "field_expires", "encoding", "_heap", NULL};
static const char *const list_slot_names[] = {"_items", "_packed", "encoding", "_lp_bytes", "_nodes", "_shape_len",
                                              NULL};
static const char *const packed_slot_names[] = {"buf", "nodes", "length", NULL};

/* A datatype class whose instances are made here: where each of its slots lies. */
typedef struct {
    PyTypeObject *type; /* NULL: not registered (its values are declined) */
    Py_ssize_t offsets[MAX_SLOTS];
    int count;
} ValueClass;

static ValueClass zset_class, set_class, hash_class, list_class, packed_class;
static PyTypeObject *score_index_type; /* datatypes.scoreindex.ScoreIndex; NULL: zsets declined */
static PyObject *s_from_sorted;         /* "from_sorted" */
static PyObject *no_field_ttls;        /* hashes.NO_FIELD_TTLS */
static PyObject *s_listpack, *s_skiplist, *s_intset, *s_hashtable, *s_quicklist, *s_small_limits;

#define RDB_TYPE_SET 2
#define RDB_TYPE_SET_INTSET 11
#define RDB_TYPE_ZSET_LISTPACK 17
#define RDB_TYPE_HASH_LISTPACK 16
#define RDB_TYPE_LIST_QUICKLIST_2 18
#define RDB_TYPE_SET_LISTPACK 20
#define RDB_ENC_LZF 0xC3
#define CONTAINER_PACKED 2

/* Fill ``c`` from ``type``: its __slots__ must be exactly ``names`` (any order), each an
 * object member.  0 if it is not such a class (c->type stays NULL), -1 on an error. */
static int
value_class(ValueClass *c, PyObject *type, const char *const *names)
{
    c->type = NULL;
    int count = 0;
    while (names[count] != NULL) {
        count++;
    }
    int ok = native_exact_slots(type, names, count, c->offsets);
    if (ok < 0)
        return -1;
    if (ok) {
        c->type = (PyTypeObject *)type;
        c->count = count;
        Py_INCREF(type);
    }
    return 0;
}

/* An instance of ``c`` with its slots set to ``values`` (references stolen, also on an error). */
static PyObject *
new_value(const ValueClass *c, PyObject **values)
{
    PyObject *obj = NULL;
    for (int i = 0; i < c->count; i++) {
        if (values[i] == NULL) {
            goto fail;
        }
    }
    obj = c->type->tp_alloc(c->type, 0);
    if (obj == NULL) {
        goto fail;
    }
    for (int i = 0; i < c->count; i++) {
        *(PyObject **)((char *)obj + c->offsets[i]) = values[i];
    }
    return obj;
fail:
    for (int i = 0; i < c->count; i++) {
        Py_XDECREF(values[i]);
    }
    return NULL;
}

/* ScoreIndex.from_sorted(items): the index of (score, member) tuples already in order (items
 * stolen). */
static PyObject *
score_index_of(PyObject *items)
{
    PyObject *index = PyObject_CallMethodOneArg((PyObject *)score_index_type, s_from_sorted, items);
    Py_DECREF(items);
    return index;
}

/* Byte order of two bytes objects (memcmp, then length): -1, 0, 1. */
static int
bytes_order(PyObject *a, PyObject *b)
{
    Py_ssize_t na = PyBytes_GET_SIZE(a), nb = PyBytes_GET_SIZE(b);
    int c = memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)(na < nb ? na : nb));
    return c ? (c < 0 ? -1 : 1) : (na > nb) - (na < nb);
}

/* The walk of a listpack (header checks included) into ``sink``: 0, or 1 when the blob is
 * refused (nothing kept, no error set: the caller declines), -1 on another error. */
static int
walk_small(const unsigned char *blob, Py_ssize_t size, int ints_as_bytes, int build, Sink *sink)
{
    unsigned int bad_byte = 0;
    long numele = check_header(blob, size);
    if (numele < 0) {
        PyErr_Clear();
        return 1;
    }
    sink_init(sink, blob, build, ints_as_bytes);
    enum walk_error err = walk(blob, size, numele, 0, 1, sink, &bad_byte);
    if (err != WALK_OK) {
        sink_clear(sink);
        return err == ERR_PYTHON ? -1 : 1;
    }
    return 0;
}

static int fields_distinct(const unsigned char *blob, Py_ssize_t size, long numele, int pairs, int check_scores);

/* The number of entries of the listpack ``blob`` when the walk accepts it and its header counts
 * them exactly (not LP_NUMELE_UNKNOWN, not 0): what a value kept packed takes its length from;
 * 0 when not, -1 on an error. */
static long
counted_entries(const unsigned char *blob, Py_ssize_t size)
{
    Sink sink;
    if (walk_small(blob, size, 1, 0, &sink) != 0) {
        return PyErr_Occurred() ? -1 : 0;
    }
    long numele = (long)((unsigned int)blob[4] | ((unsigned int)blob[5] << 8));
    return numele != LP_NUMELE_UNKNOWN && sink.count == numele ? numele : 0;
}

/* Whether _zset_from_listpack keeps the zset listpack ``blob`` packed (ZSetValue.packed): the
 * walk accepts it, its header counts its entries exactly, they are member/score pairs, at most
 * ``max_entries`` of them (else a skiplist), the members are distinct, no score is NaN and the
 * pairs are in order.  1 yes, 0 no (build
 * it), -1 on an error. */
static int
zset_packable(const unsigned char *blob, Py_ssize_t size, long max_entries)
{
    long numele = counted_entries(blob, size);
    if (numele <= 0 || numele % 2 || numele / 2 > max_entries) {
        return numele < 0 ? -1 : 0;
    }
    return fields_distinct(blob, size, numele, 1, 1);
}

/* _zset_from_listpack's value (type 17, not deep), built: None when the walk refuses the blob,
 * a score is NaN or members repeat. */
static PyObject *
zset_built(const unsigned char *blob, Py_ssize_t size, long max_entries)
{
    Sink sink;
    int rc = walk_small(blob, size, 0, 1, &sink);
    if (rc) {
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    }
    Py_ssize_t n = sink.count / 2;
    if (sink.count % 2 || n == 0) {
        sink_clear(&sink);
        Py_RETURN_NONE;
    }
    PyObject *scores = PyDict_New();
    PyObject *index = PyList_New(n);
    PyObject *result = NULL;
    int sorted = 1, declined = 0;
    for (Py_ssize_t i = 0; scores != NULL && index != NULL && i < n; i++) {
        PyObject *member = sink.items[2 * i], *entry = sink.items[2 * i + 1];
        double d = PyLong_CheckExact(entry) ? (double)PyLong_AsLongLong(entry)
                                            : score_strtod(PyBytes_AS_STRING(entry), PyBytes_GET_SIZE(entry));
        if (d != d) {
            declined = 1; /* NaN: refused by the reader */
            break;
        }
        member = PyLong_CheckExact(member) ? int_text((int64_t)PyLong_AsLongLong(member)) : Py_NewRef(member);
        PyObject *score = member == NULL ? NULL : PyFloat_FromDouble(d);
        PyObject *pair = score == NULL ? NULL : PyTuple_Pack(2, score, member);
        if (pair == NULL || PyDict_SetItem(scores, member, score) < 0) {
            Py_XDECREF(member);
            Py_XDECREF(score);
            Py_XDECREF(pair);
            Py_CLEAR(scores);
            break;
        }
        Py_DECREF(member);
        Py_DECREF(score);
        /* a float and bytes: untracked now, as the collector would untrack it at its first look
         * (the tuple is shared with _maxes, which would keep collector.stored from untracking
         * the zset at all) */
        PyObject_GC_UnTrack(pair);
        PyList_SET_ITEM(index, i, pair);
        if (i && sorted) {
            PyObject *prev = PyList_GET_ITEM(index, i - 1);
            double p = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(prev, 0));
            sorted = p < d || (p == d && bytes_order(PyTuple_GET_ITEM(prev, 1), member) < 0);
        }
    }
    sink_clear(&sink);
    if (scores == NULL || index == NULL) {
        goto done;
    }
    if (declined || PyDict_GET_SIZE(scores) != n) { /* NaN, duplicates: the reader decides */
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (!sorted && PyList_Sort(index) < 0) {
        goto done;
    }
    PyObject *slots[ZSET_SLOTS];
    slots[ZSET_SCORES] = Py_NewRef(scores);
    slots[ZSET_INDEX] = score_index_of(Py_NewRef(index));
    slots[ZSET_ENCODING] = Py_NewRef(n > max_entries ? s_skiplist : s_listpack);
    slots[ZSET_SCAN] = Py_NewRef(Py_None);
    result = new_value(&zset_class, slots);
done:
    Py_XDECREF(scores);
    Py_XDECREF(index);
    return result;
}

/* _zset_from_listpack (type 17, not deep) of a payload with footer ``version``: packed when it
 * can be (zset_packable), else built. */
static PyObject *
zset_value(PyObject *blob, long max_entries, long version)
{
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(blob);
    Py_ssize_t size = PyBytes_GET_SIZE(blob);
    int packable = version < 0 ? 0 : zset_packable(data, size, max_entries);
    if (packable < 0) {
        return NULL;
    }
    if (packable) {
        PyObject *slots[ZSET_SLOTS];
        slots[ZSET_SCORES] = Py_NewRef(blob);
        slots[ZSET_INDEX] = PyLong_FromLong(version);
        slots[ZSET_ENCODING] = Py_NewRef(s_listpack);
        slots[ZSET_SCAN] = Py_NewRef(Py_None);
        return new_value(&zset_class, slots);
    }
    return zset_built(data, size, max_entries);
}

/* SetValue(members, encoding) of a list of members (stolen): the set readers' value.  Py_None
 * when ``members`` holds duplicates and the order list is kept (the reader dedups it) or
 * ``strict`` (the reader refuses them). */
static PyObject *
set_value(PyObject *members, PyObject *encoding, int keep_order, int strict)
{
    PyObject *unique = PySet_New(members);
    if (unique == NULL) {
        Py_DECREF(members);
        return NULL;
    }
    if ((keep_order || strict) && PySet_GET_SIZE(unique) != PyList_GET_SIZE(members)) {
        Py_DECREF(unique);
        Py_DECREF(members);
        Py_RETURN_NONE;
    }
    PyObject *slots[SET_SLOTS];
    slots[SET_MEMBERS] = unique;
    slots[SET_ENCODING] = Py_NewRef(encoding);
    slots[SET_ORDER] = keep_order ? members : Py_NewRef(Py_None);
    slots[SET_SCAN] = Py_NewRef(Py_None);
    if (!keep_order) {
        Py_DECREF(members);
    }
    return new_value(&set_class, slots);
}

/* The walk's values as a list (the sink emptied into it). */
static PyObject *
sink_list(Sink *sink)
{
    PyObject *out = PyList_New(sink->count);
    if (out == NULL) {
        sink_clear(sink);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < sink->count; i++) {
        PyList_SET_ITEM(out, i, sink->items[i]);
    }
    if (sink->items != sink->local) {
        PyMem_Free(sink->items);
    }
    sink->items = sink->local;
    sink->count = 0;
    return out;
}

/* A SetValue.packed of ``blob`` (a new reference taken) with ``encoding``. */
static PyObject *
packed_set(PyObject *blob, PyObject *encoding)
{
    PyObject *slots[SET_SLOTS];
    slots[SET_MEMBERS] = Py_NewRef(blob);
    slots[SET_ENCODING] = Py_NewRef(encoding);
    slots[SET_ORDER] = Py_NewRef(Py_None);
    slots[SET_SCAN] = Py_NewRef(Py_None);
    return new_value(&set_class, slots);
}

/* _set_from_listpack (type 20, not deep): packed when the walk accepts it, its header counts
 * its entries exactly, at most ``max_entries`` of them and distinct (else built). */
static PyObject *
set_listpack_value(PyObject *blob_obj, long max_entries)
{
    const unsigned char *blob = (const unsigned char *)PyBytes_AS_STRING(blob_obj);
    Py_ssize_t size = PyBytes_GET_SIZE(blob_obj);
    long numele = counted_entries(blob, size);
    if (numele < 0) {
        return NULL;
    }
    if (numele > 0 && numele <= max_entries) {
        int distinct = fields_distinct(blob, size, numele, 0, 0);
        if (distinct < 0) {
            return NULL;
        }
        if (distinct) {
            return packed_set(blob_obj, s_listpack);
        }
    }
    Sink sink;
    int rc = walk_small(blob, size, 1, 1, &sink);
    if (rc) {
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    }
    if (sink.count == 0) {
        Py_RETURN_NONE;
    }
    int listpack = sink.count <= max_entries;
    PyObject *members = sink_list(&sink);
    return members == NULL ? NULL : set_value(members, listpack ? s_listpack : s_hashtable, listpack, 0);
}

/* _set_from_intset (type 11, not deep): packed when the intset is well formed, within
 * ``max_entries``, strictly ascending and at the narrowest width for its values (else built). */
static PyObject *
set_intset_value(PyObject *blob, long max_entries)
{
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(blob);
    Py_ssize_t size = PyBytes_GET_SIZE(blob);
    if (size >= 10) {
        uint32_t width = (uint32_t)data[0] | ((uint32_t)data[1] << 8) | ((uint32_t)data[2] << 16) | ((uint32_t)data[3] << 24);
        uint32_t count = (uint32_t)data[4] | ((uint32_t)data[5] << 8) | ((uint32_t)data[6] << 16) | ((uint32_t)data[7] << 24);
        if ((width == 2 || width == 4 || width == 8) && count > 0 && (uint64_t)count <= (uint64_t)max_entries &&
            8u + (uint64_t)count * width == (uint64_t)size) {
            int ascending = 1;
            int64_t prev = read_signed_le(data + 8, (int)width), low = prev;
            for (uint32_t i = 1; ascending && i < count; i++) {
                int64_t v = read_signed_le(data + 8 + (size_t)i * width, (int)width);
                ascending = v > prev;
                prev = v;
            }
            uint32_t narrowest = low >= -32768 && prev <= 32767 ? 2 : low >= INT32_MIN && prev <= INT32_MAX ? 4 : 8;
            if (ascending && narrowest == width) {
                return packed_set(blob, s_intset);
            }
        }
    }
    PyObject *args[2] = {blob, Py_False};
    PyObject *members = lp_intset_members(NULL, args, 2);
    if (members == NULL) {
        PyErr_Clear(); /* a refusal: the reader words it */
        Py_RETURN_NONE;
    }
    return set_value(members, PyList_GET_SIZE(members) > max_entries ? s_hashtable : s_intset, 0, 0);
}

/* _read_set (type 2) of its members, already read (a list of bytes), not deep: the
 * encoding the member-by-member conversion ends in (intset while every member spells a
 * canonical integer, else listpack within the limits, else hashtable).  Declined: more
 * members than an intset takes (the reader reads those into a set at once). */
static PyObject *
set_strings_value(PyObject *members, long intset_max, long listpack_max, long value_max)
{
    Py_ssize_t n = PyList_GET_SIZE(members);
    if (n == 0 || n > intset_max || n > (1L << 30)) {
        Py_RETURN_NONE;
    }
    int ints = 1;
    Py_ssize_t longest = 0, total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyList_GET_ITEM(members, i);
        if (!PyBytes_CheckExact(m)) {
            Py_RETURN_NONE;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(m);
        int64_t v;
        ints = ints && canonical_int((const unsigned char *)PyBytes_AS_STRING(m), len, &v);
        longest = len > longest ? len : longest;
        total += len;
    }
    PyObject *encoding = s_intset;
    if (!ints) {
        int small = n <= listpack_max && longest <= value_max && total <= (1L << 30); /* LISTPACK_MAX_SAFETY_SIZE */
        encoding = small ? s_listpack : s_hashtable;
    }
    return set_value(Py_NewRef(members), encoding, encoding == s_listpack, 1);
}

/* A field's text for the duplicate check: where it lies (in the blob, or for an integer entry
 * in ``digits``) and its hash (FNV-1a). */
typedef struct {
    const char *p;
    uint32_t len;
    uint32_t hash;
} FieldText;

/* Whether _hash_from_listpack keeps the hash listpack ``blob`` packed (HashValue.packed): the
 * walk accepts it, its header counts its entries exactly, they are field/value pairs, at most
 * ``max_entries`` of them (else a hashtable) and the fields are distinct (compared as the texts
 * the reader makes of them).  1 yes, 0 no (build it: the reader's value), -1 on an error. */
static int
hash_packable(const unsigned char *blob, Py_ssize_t size, long max_entries)
{
    long numele = counted_entries(blob, size);
    if (numele <= 0 || numele % 2 || numele / 2 > max_entries) {
        return numele < 0 ? -1 : 0;
    }
    return fields_distinct(blob, size, numele, 1, 0);
}

/* Whether the first entry of each pair in ``blob`` (a listpack the walk accepted, of ``numele``
 * entries; with ``pairs`` 0 every entry) is distinct from the others, compared as the texts the readers make of them (an
 * integer entry as its decimal text), and with ``check_scores`` no second entry is a text that
 * reads as NaN (zzlGetScore's strtod) and the pairs are in (score, member bytes) order, as the
 * reader sorts them.  1 yes, 0 no, -1 on an error. */
static int
fields_distinct(const unsigned char *blob, Py_ssize_t size, long numele, int pairs, int check_scores)
{
    Py_ssize_t n = pairs ? numele / 2 : numele, cap = 16;
    while (cap < 2 * n) {
        cap <<= 1;
    }
    FieldText local_table[512];
    char local_digits[256][24];
    FieldText *table = local_table;
    char(*digits)[24] = local_digits;
    if (cap > 512) {
        table = PyMem_Calloc((size_t)cap, sizeof(FieldText));
        digits = PyMem_Malloc((size_t)n * sizeof(*digits));
        if (table == NULL || digits == NULL) {
            PyMem_Free(table);
            PyMem_Free(digits);
            PyErr_NoMemory();
            return -1;
        }
    }
    else {
        memset(table, 0, (size_t)cap * sizeof(FieldText));
    }
    int distinct = 1;
    int64_t pos = LP_HEADER_SIZE;
    FieldText member = {NULL, 0, 0}, before = {NULL, 0, 0}; /* with check_scores: the pair's member, the last one's */
    double last = 0;
    for (Py_ssize_t i = 0; distinct && i < numele; i++) {
        Entry e;
        int64_t next = 0;
        if (read_entry(blob, pos, blob[pos], size - 1, 0, &e, &next) != WALK_OK) {
            distinct = 0; /* (the walk above accepted it: not reached) */
            break;
        }
        pos = next;
        if (pairs && i % 2) {
            if (check_scores) { /* no NaN, and the pairs in (score, member) order as the reader sorts them */
                double d = e.is_int ? (double)e.value : score_strtod((const char *)blob + e.start, (Py_ssize_t)e.len);
                if (d != d) {
                    distinct = 0;
                }
                else if (i > 1) {
                    size_t common = before.len < member.len ? before.len : member.len;
                    int c = common ? memcmp(before.p, member.p, common) : 0;
                    if (!(last < d || (last == d && (c < 0 || (c == 0 && before.len < member.len))))) {
                        distinct = 0;
                    }
                }
                last = d;
                before = member;
            }
            continue;
        }
        FieldText f;
        if (e.is_int) {
            char *d = digits[pairs ? i / 2 : i];
            f.p = d;
            f.len = (uint32_t)native_ll_text(d, (long long)e.value);
        }
        else {
            f.p = (const char *)blob + e.start;
            f.len = (uint32_t)e.len;
        }
        uint32_t h = 2166136261u;
        for (uint32_t k = 0; k < f.len; k++) {
            h = (h ^ (unsigned char)f.p[k]) * 16777619u;
        }
        f.hash = h;
        member = f;
        for (Py_ssize_t at = (Py_ssize_t)(h & (uint32_t)(cap - 1));; at = (at + 1) & (cap - 1)) {
            FieldText *slot = &table[at];
            if (slot->p == NULL) {
                *slot = f;
                break;
            }
            if (slot->hash == f.hash && slot->len == f.len && memcmp(slot->p, f.p, f.len) == 0) {
                distinct = 0;
                break;
            }
        }
    }
    if (table != local_table) {
        PyMem_Free(table);
        PyMem_Free(digits);
    }
    return distinct;
}

/* _hash_from_listpack (type 16, not deep). */
static PyObject *
hash_value(PyObject *blob, long max_entries)
{
    int packable = hash_packable((const unsigned char *)PyBytes_AS_STRING(blob), PyBytes_GET_SIZE(blob), max_entries);
    if (packable < 0) {
        return NULL;
    }
    if (packable) {
        PyObject *slots[HASH_SLOTS];
        slots[HASH_ENCODING] = Py_NewRef(s_listpack);
        slots[HASH_FIELDS] = Py_NewRef(blob);
        slots[HASH_EXPIRES] = Py_NewRef(no_field_ttls);
        slots[HASH_HEAP] = Py_NewRef(Py_None);
        return new_value(&hash_class, slots);
    }
    PyObject *args[2] = {blob, Py_False};
    PyObject *fields = lp_decode_hash(NULL, args, 2, NULL);
    if (fields == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (PyDict_GET_SIZE(fields) == 0 || PyDict_GET_SIZE(fields) > max_entries) {
        /* (past the entries a hashtable, whose fields are a KeyTable, not this dict: the reader's) */
        Py_DECREF(fields);
        Py_RETURN_NONE;
    }
    PyObject *slots[HASH_SLOTS];
    slots[HASH_ENCODING] = Py_NewRef(s_listpack);
    slots[HASH_FIELDS] = fields;
    slots[HASH_EXPIRES] = Py_NewRef(no_field_ttls);
    slots[HASH_HEAP] = Py_NewRef(Py_None);
    return new_value(&hash_class, slots);
}

/* _list_from_one_node (type 18 of one PACKED node whose rdbString is buf[3:stop]), not deep. */
static PyObject *
list_value(const unsigned char *blob, Py_ssize_t size, PyObject *buf, PyObject *stop, long fill)
{
    Sink sink;
    int rc = walk_small(blob, size, 1, 0, &sink);
    if (rc) {
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    }
    Py_ssize_t count = sink.count;
    if (count == 0) {
        Py_RETURN_NONE;
    }
    static const long levels[5] = {4096, 8192, 16384, 32768, 65536}; /* quicklist.OPTIMIZATION_LEVEL */
    int quick = fill < 0 ? size > levels[-fill - 1 < 4 ? -fill - 1 : 4] : count > (fill == 0 ? 1 : fill);
    PyObject *n = PyLong_FromSsize_t(count);
    PyObject *bytes = PyLong_FromSsize_t(size);
    PyObject *node = n && bytes ? Py_BuildValue("(iiOOO)", CONTAINER_PACKED, 3, stop, n, bytes) : NULL;
    PyObject *nodes = node ? PyTuple_Pack(1, node) : NULL;
    PyObject *packed_slots[PACKED_SLOTS] = {Py_NewRef(buf), nodes, Py_XNewRef(n)};
    PyObject *packed = new_value(&packed_class, packed_slots);
    PyObject *slots[LIST_SLOTS];
    slots[LIST_ITEMS] = Py_NewRef(Py_None);
    slots[LIST_PACKED] = packed;
    slots[LIST_ENCODING] = Py_NewRef(quick ? s_quicklist : s_listpack);
    slots[LIST_LP_BYTES] = quick ? PyLong_FromLong(0) : Py_XNewRef(bytes);
    slots[LIST_NODES] = quick ? Py_BuildValue("[[OOO]]", n, bytes, Py_False) : PyTuple_New(0); /* lists.NO_NODES */
    slots[LIST_SHAPE_LEN] = Py_XNewRef(n);
    Py_XDECREF(node);
    Py_XDECREF(n);
    Py_XDECREF(bytes);
    return new_value(&list_class, slots);
}

PyDoc_STRVAR(hash_fields_doc,
"hash_fields(blob) -> dict\n\n"
"decode_hash(blob, False): the fields of a packed hash's listpack, for its first use.");

static PyObject *
lp_hash_fields(PyObject *module, PyObject *blob)
{
    PyObject *args[2] = {blob, Py_False};
    return lp_decode_hash(module, args, 2, NULL);
}

PyDoc_STRVAR(set_built_doc,
"set_built(blob) -> SetValue | None\n\n"
"The built set of a packed set's ``blob`` (an intset: _set_from_intset's value; else a\n"
"listpack: _set_from_listpack's), not deep, or None to leave it to the readers.");

static PyObject *
lp_set_built(PyObject *module, PyObject *blob)
{
    (void)module;
    if (!PyBytes_CheckExact(blob) || set_class.type == NULL || PyBytes_GET_SIZE(blob) < 8) {
        Py_RETURN_NONE;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(blob);
    if ((data[0] == 2 || data[0] == 4 || data[0] == 8) && data[1] == 0 && data[2] == 0 && data[3] == 0) {
        PyObject *args[2] = {blob, Py_False};
        PyObject *members = lp_intset_members(NULL, args, 2);
        if (members == NULL) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return set_value(members, s_intset, 0, 0);
    }
    Sink sink;
    int rc = walk_small(data, PyBytes_GET_SIZE(blob), 1, 1, &sink);
    if (rc) {
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *members = sink_list(&sink);
    return members == NULL ? NULL : set_value(members, s_listpack, 1, 0);
}

PyDoc_STRVAR(zset_built_doc,
"zset_built(blob) -> ZSetValue | None\n\n"
"The built listpack zset of a packed zset's ``blob`` (_zset_from_listpack's value, not deep),\n"
"or None to leave it to the reader.");

static PyObject *
lp_zset_built(PyObject *module, PyObject *blob)
{
    (void)module;
    if (!PyBytes_CheckExact(blob) || zset_class.type == NULL || score_index_type == NULL) {
        Py_RETURN_NONE;
    }
    return zset_built((const unsigned char *)PyBytes_AS_STRING(blob), PyBytes_GET_SIZE(blob), LONG_MAX);
}

PyDoc_STRVAR(small_value_doc,
"small_value(type_byte, blob, options, buf, blob_end) -> value | None\n\n"
"The value decode.body_value's blob reader makes of ``blob`` (the body's one rdbString,\n"
"ending at ``blob_end`` in the payload ``buf``) for ``options`` (a CodecOptions: its\n"
"small_limits), built here; for type 2 ``blob`` is the list of members _read_set reads.\n"
"None to leave it to the reader (see the section comment).");

static PyObject *
small_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "small_value(type_byte, blob, options, buf, blob_end)");
        return NULL;
    }
    long type = PyLong_AsLong(args[0]);
    PyObject *blob = args[1];
    if (!PyBytes_CheckExact(blob) && !(type == RDB_TYPE_SET && PyList_CheckExact(blob))) {
        Py_RETURN_NONE;
    }
    PyObject *limits = PyObject_GetAttr(args[2], s_small_limits);
    if (limits == NULL) {
        return NULL;
    }
    /* deep, zset entries, intset entries, set listpack entries, hash entries, list fill, set listpack value */
    long lim[7] = {1, 0, 0, 0, 0, 0, 0};
    if (PyTuple_Check(limits) && PyTuple_GET_SIZE(limits) == 7) {
        for (int i = 0; i < 7; i++) {
            lim[i] = PyLong_AsLong(PyTuple_GET_ITEM(limits, i));
        }
    }
    Py_DECREF(limits);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (lim[0]) { /* deep sanitization: the readers */
        Py_RETURN_NONE;
    }
    if (type == RDB_TYPE_SET) {
        return set_class.type == NULL ? Py_NewRef(Py_None) : set_strings_value(blob, lim[2], lim[3], lim[6]);
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(blob);
    Py_ssize_t size = PyBytes_GET_SIZE(blob);
    switch (type) {
    case RDB_TYPE_ZSET_LISTPACK:
        if (zset_class.type != NULL && score_index_type != NULL) {
            long version = -1; /* the payload's footer version: unknown, not packed */
            if (PyBytes_CheckExact(args[3]) && PyBytes_GET_SIZE(args[3]) >= 11) {
                const unsigned char *footer =
                    (const unsigned char *)PyBytes_AS_STRING(args[3]) + PyBytes_GET_SIZE(args[3]) - 10;
                version = (long)(footer[0] | (footer[1] << 8));
            }
            return zset_value(blob, lim[1], version);
        }
        break;
    case RDB_TYPE_SET_INTSET:
        if (set_class.type != NULL) {
            return set_intset_value(blob, lim[2]);
        }
        break;
    case RDB_TYPE_SET_LISTPACK:
        if (set_class.type != NULL) {
            return set_listpack_value(blob, lim[3]);
        }
        break;
    case RDB_TYPE_HASH_LISTPACK:
        if (hash_class.type != NULL) {
            return hash_value(blob, lim[4]);
        }
        break;
    case RDB_TYPE_LIST_QUICKLIST_2:
        if (list_class.type != NULL && packed_class.type != NULL && PyBytes_CheckExact(args[3]) &&
            PyLong_CheckExact(args[4])) {
            return list_value(data, size, args[3], args[4], lim[5]);
        }
        break;
    default:
        break;
    }
    Py_RETURN_NONE;
}

static PyObject *score_text_fn; /* encode's score text for targets >= 11 (fpconv) */

#define SLOT(obj, cls, i) (*(PyObject **)((char *)(obj) + (cls).offsets[i]))

/* An encoding slot that reads ``name`` (interned; the classes store interned literals, but a
 * str made elsewhere compares by value too). */
static int
encoding_is(PyObject *encoding, PyObject *name)
{
    return encoding == name || (encoding != NULL && PyUnicode_CheckExact(encoding) &&
                                PyUnicode_Compare(encoding, name) == 0);
}

/* The heads dump_parts hands out, made once: type bytes (and a one-node list's node count and
 * container), and the kinds as ints. */
enum { HEAD_SET, HEAD_INTSET, HEAD_HASH, HEAD_ZSET, HEAD_LIST, HEAD_SET_LISTPACK, HEADS };
static PyObject *heads[HEADS];
static PyObject *kinds[3];

static PyObject *
parts(int head, int kind, PyObject *obj)
{
    if (obj == NULL) {
        return NULL;
    }
    if (obj == Py_None) {
        return obj; /* the encoder declined: so do we */
    }
    PyObject *out = PyTuple_Pack(3, heads[head], kinds[kind], obj);
    Py_DECREF(obj);
    return out;
}

/* The rdbString at buf[start:stop] when it is a plain length and the bytes (a listpack
 * node as the payload held it): a new bytes object, or Py_None for any other form. */
static PyObject *
plain_rdb_string(PyObject *buf, Py_ssize_t start, Py_ssize_t stop)
{
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(buf);
    if (start < 0 || stop > PyBytes_GET_SIZE(buf) || start >= stop) {
        Py_RETURN_NONE;
    }
    unsigned int b = d[start];
    uint64_t n;
    Py_ssize_t head;
    if (b < 0x40) {
        n = b;
        head = 1;
    }
    else if (b < 0x80) {
        if (stop - start < 2) {
            Py_RETURN_NONE;
        }
        n = ((uint64_t)(b & 0x3F) << 8) | d[start + 1];
        head = 2;
    }
    else if (b == 0x80) {
        if (stop - start < 5) {
            Py_RETURN_NONE;
        }
        n = ((uint64_t)d[start + 1] << 24) | ((uint64_t)d[start + 2] << 16) | ((uint64_t)d[start + 3] << 8) |
            d[start + 4];
        head = 5;
    }
    else {
        Py_RETURN_NONE; /* LZF, an integer, a 64-bit length: encode.py's path */
    }
    if ((uint64_t)(stop - start - head) != n) {
        Py_RETURN_NONE;
    }
    return PyBytes_FromStringAndSize((const char *)d + start + head, (Py_ssize_t)n);
}

/* _encode_list's case of a restored list not written since, of one PACKED node. */
static PyObject *
list_parts(PyObject *value, int compress)
{
    PyObject *packed = SLOT(value, list_class, LIST_PACKED);
    if (SLOT(value, list_class, LIST_ITEMS) != Py_None || packed == NULL || !Py_IS_TYPE(packed, packed_class.type)) {
        Py_RETURN_NONE;
    }
    PyObject *buf = SLOT(packed, packed_class, PACKED_BUF);
    PyObject *nodes = SLOT(packed, packed_class, PACKED_NODES);
    if (buf == NULL || nodes == NULL || !PyBytes_CheckExact(buf) || !PyTuple_CheckExact(nodes) ||
        PyTuple_GET_SIZE(nodes) != 1) {
        Py_RETURN_NONE;
    }
    PyObject *node = PyTuple_GET_ITEM(nodes, 0);
    if (!PyTuple_CheckExact(node) || PyTuple_GET_SIZE(node) != 5) {
        Py_RETURN_NONE;
    }
    long container = PyLong_AsLong(PyTuple_GET_ITEM(node, 0));
    Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(node, 1));
    Py_ssize_t stop = PyLong_AsSsize_t(PyTuple_GET_ITEM(node, 2));
    Py_ssize_t size = PyLong_AsSsize_t(PyTuple_GET_ITEM(node, 4));
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (container != CONTAINER_PACKED || start < 0 || stop > PyBytes_GET_SIZE(buf) || start >= stop) {
        Py_RETURN_NONE;
    }
    if (compress && size > 20 && (unsigned char)PyBytes_AS_STRING(buf)[start] == RDB_ENC_LZF) {
        /* PackedList.write_body: the node's LZF string copied as it came */
        return parts(HEAD_LIST, 2, PyBytes_FromStringAndSize(PyBytes_AS_STRING(buf) + start, stop - start));
    }
    return parts(HEAD_LIST, 0, plain_rdb_string(buf, start, stop));
}

/* _encode_zset's listpack case (version >= 10). */
static PyObject *
zset_parts(PyObject *value, long version)
{
    PyObject *packed = SLOT(value, zset_class, ZSET_SCORES);
    if (packed != NULL && PyBytes_CheckExact(packed)) {
        /* packed since RESTORE (ZSetValue.packed_listpack): its listpack as it came when this
         * target writes scores as the payload's version did, else encode.py builds it */
        PyObject *since = SLOT(value, zset_class, ZSET_INDEX);
        long from = since != NULL && PyLong_CheckExact(since) ? PyLong_AsLong(since) : -1;
        if (from < 0 || (from >= 11) != (version >= 11) || !encoding_is(SLOT(value, zset_class, ZSET_ENCODING), s_listpack)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return parts(HEAD_ZSET, 0, Py_NewRef(packed));
    }
    PyObject *index = SLOT(value, zset_class, ZSET_INDEX);
    if (!encoding_is(SLOT(value, zset_class, ZSET_ENCODING), s_listpack) || index == NULL ||
        !Py_IS_TYPE(index, score_index_type) || PyObject_Length(index) <= 0) {
        PyErr_Clear();
        Py_RETURN_NONE; /* (an empty zset is never stored) */
    }
    PyObject *args[2] = {index, version <= 10 ? Py_None : score_text_fn};
    PyObject *entries = args[1] == NULL ? Py_NewRef(Py_None) : lp_zset_entries(NULL, args, 2);
    if (entries == NULL || entries == Py_None) {
        return entries;
    }
    PyObject *blob = lp_encode_mixed(NULL, entries);
    Py_DECREF(entries);
    return parts(HEAD_ZSET, 0, blob);
}

/* _encode_set's intset and listpack cases. */
static PyObject *
set_parts(PyObject *value, long version)
{
    PyObject *members = SLOT(value, set_class, SET_MEMBERS);
    PyObject *encoding = SLOT(value, set_class, SET_ENCODING);
    if (members != NULL && PyBytes_CheckExact(members)) {
        /* packed since RESTORE (SetValue.packed_blob): its intset, or from RDB 11 its listpack,
         * as it came; else encode.py builds it */
        if (encoding_is(encoding, s_intset)) {
            return parts(HEAD_INTSET, 0, Py_NewRef(members));
        }
        if (version >= 11 && encoding_is(encoding, s_listpack)) {
            return parts(HEAD_SET_LISTPACK, 0, Py_NewRef(members));
        }
        Py_RETURN_NONE;
    }
    if (members == NULL || !PySet_CheckExact(members) || PySet_GET_SIZE(members) == 0) {
        Py_RETURN_NONE;
    }
    if (encoding_is(encoding, s_intset)) {
        return parts(HEAD_INTSET, 0, lp_intset_blob(NULL, members));
    }
    PyObject *order = SLOT(value, set_class, SET_ORDER);
    if (!encoding_is(encoding, s_listpack) || order == NULL || !PyList_CheckExact(order) ||
        PyList_GET_SIZE(order) != PySet_GET_SIZE(members)) {
        Py_RETURN_NONE; /* SetValue.ordered() resyncs it: encode.py */
    }
    if (version >= 11) {
        return parts(HEAD_SET_LISTPACK, 0, lp_encode(NULL, order));
    }
    return parts(HEAD_SET, 1, Py_NewRef(order));
}

/* _encode_hash's listpack case without field TTLs (version >= 10). */
static PyObject *
hash_parts(PyObject *value)
{
    PyObject *fields = SLOT(value, hash_class, HASH_FIELDS);
    PyObject *expires = SLOT(value, hash_class, HASH_EXPIRES);
    if (fields != NULL && PyBytes_CheckExact(fields)) {
        /* packed since RESTORE (HashValue.packed): its listpack as it came */
        if (!encoding_is(SLOT(value, hash_class, HASH_ENCODING), s_listpack) || expires == NULL ||
            !PyDict_Check(expires) || PyDict_GET_SIZE(expires) != 0) {
            Py_RETURN_NONE;
        }
        return parts(HEAD_HASH, 0, Py_NewRef(fields));
    }
    if (!encoding_is(SLOT(value, hash_class, HASH_ENCODING), s_listpack) || fields == NULL ||
        !PyDict_CheckExact(fields) || PyDict_GET_SIZE(fields) == 0 || expires == NULL || !PyDict_Check(expires) ||
        PyDict_GET_SIZE(expires) != 0) {
        Py_RETURN_NONE;
    }
    return parts(HEAD_HASH, 0, lp_encode_dict(NULL, fields));
}

PyDoc_STRVAR(dump_parts_doc,
"dump_parts(value, version, compress) -> (head, kind, obj) | None\n\n"
"encode_payload's body of a small listpack/intset value, or of a restored one-node list, for\n"
"a footer ``version`` of 10-12 (see the section comment); None: encode.py writes it.");

static PyObject *
dump_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "dump_parts(value, version, compress)");
        return NULL;
    }
    PyObject *value = args[0];
    long version = PyLong_AsLong(args[1]);
    int compress = PyObject_IsTrue(args[2]);
    if ((version == -1 || compress < 0) && PyErr_Occurred()) {
        return NULL;
    }
    if (version < 10 || version > 12) {
        Py_RETURN_NONE;
    }
    PyTypeObject *type = Py_TYPE(value);
    if (type == hash_class.type) {
        return hash_parts(value);
    }
    if (type == zset_class.type && score_index_type != NULL) {
        return zset_parts(value, version);
    }
    if (type == set_class.type) {
        return set_parts(value, version);
    }
    if (type == list_class.type && packed_class.type != NULL) {
        return list_parts(value, compress);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(register_values_doc,
"register_values(zset, set, hash, list, packed_list, score_index, no_field_ttls, score_text) -> list[str]\n\n"
"The datatype classes small_value builds and dump_parts reads (score_index: a zset's index\n"
"class, made with its from_sorted, or None: zsets declined; score_text: a\n"
"zset score's listpack text for targets >= 11).  Returns the names of the classes taken.");

static PyObject *
register_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "register_values() takes 8 arguments");
        return NULL;
    }
    if (s_listpack == NULL) {
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
        INTERN(s_listpack, "listpack");
        INTERN(s_skiplist, "skiplist");
        INTERN(s_intset, "intset");
        INTERN(s_hashtable, "hashtable");
        INTERN(s_quicklist, "quicklist");
        INTERN(s_small_limits, "small_limits");
        INTERN(s_from_sorted, "from_sorted");
#undef INTERN
        static const char head_bytes[HEADS][3] = {{RDB_TYPE_SET}, {RDB_TYPE_SET_INTSET}, {RDB_TYPE_HASH_LISTPACK},
                                                  {RDB_TYPE_ZSET_LISTPACK},
                                                  {RDB_TYPE_LIST_QUICKLIST_2, 1, CONTAINER_PACKED},
                                                  {RDB_TYPE_SET_LISTPACK}};
        for (int i = 0; i < HEADS; i++) {
            if ((heads[i] = PyBytes_FromStringAndSize(head_bytes[i], i == HEAD_LIST ? 3 : 1)) == NULL) {
                return NULL;
            }
        }
        for (int i = 0; i < 3; i++) {
            if ((kinds[i] = PyLong_FromLong(i)) == NULL) {
                return NULL;
            }
        }
    }
    value_class(&zset_class, args[0], zset_slot_names);
    value_class(&set_class, args[1], set_slot_names);
    value_class(&hash_class, args[2], hash_slot_names);
    value_class(&list_class, args[3], list_slot_names);
    value_class(&packed_class, args[4], packed_slot_names);
    if (PyType_Check(args[5]) && PyObject_HasAttr(args[5], s_from_sorted)) {
        Py_XSETREF(score_index_type, (PyTypeObject *)Py_NewRef(args[5]));
    }
    if (PyDict_Check(args[6])) {
        no_field_ttls = Py_NewRef(args[6]);
    }
    else {
        Py_CLEAR(hash_class.type);
    }
    score_text_fn = PyCallable_Check(args[7]) ? Py_NewRef(args[7]) : NULL;
    PyObject *taken = PyList_New(0);
    const ValueClass *classes[5] = {&zset_class, &set_class, &hash_class, &list_class, &packed_class};
    for (int i = 0; taken != NULL && i < 5; i++) {
        if (classes[i]->type != NULL && (i != 0 || score_index_type != NULL)) {
            PyObject *name = PyUnicode_FromString(classes[i]->type->tp_name);
            if (name == NULL || PyList_Append(taken, name) < 0) {
                Py_CLEAR(taken);
            }
            Py_XDECREF(name);
        }
    }
    return taken;
}

/* ------------------------------------------------------------------------- */
/* module */

static PyMethodDef methods[] = {
    {"decode", (PyCFunction)(void (*)(void))lp_decode, METH_FASTCALL | METH_KEYWORDS, decode_doc},
    {"count", (PyCFunction)(void (*)(void))lp_count, METH_FASTCALL | METH_KEYWORDS, count_doc},
    {"encode", (PyCFunction)lp_encode, METH_O, encode_doc},
    {"encode_mixed", (PyCFunction)lp_encode_mixed, METH_O, encode_mixed_doc},
    {"encode_dict", (PyCFunction)lp_encode_dict, METH_O, encode_dict_doc},
    {"decode_hash", (PyCFunction)(void (*)(void))lp_decode_hash, METH_FASTCALL | METH_KEYWORDS, decode_hash_doc},
    {"zset_built", (PyCFunction)lp_zset_built, METH_O, zset_built_doc},
    {"hash_fields", (PyCFunction)lp_hash_fields, METH_O, hash_fields_doc},
    {"set_built", (PyCFunction)lp_set_built, METH_O, set_built_doc},
    {"zset_pairs", (PyCFunction)(void (*)(void))lp_zset_pairs, METH_FASTCALL | METH_KEYWORDS, zset_pairs_doc},
    {"zset_entries", (PyCFunction)(void (*)(void))lp_zset_entries, METH_FASTCALL, zset_entries_doc},
    {"intset_blob", (PyCFunction)lp_intset_blob, METH_O, intset_blob_doc},
    {"intset_members", (PyCFunction)(void (*)(void))lp_intset_members, METH_FASTCALL, intset_members_doc},
    {"entry_size", (PyCFunction)lp_entry_size, METH_O, entry_size_doc},
    {"entry_sizes", (PyCFunction)lp_entry_sizes, METH_O, entry_sizes_doc},
    {"pack_by_size", (PyCFunction)(void (*)(void))lp_pack_by_size, METH_FASTCALL, pack_by_size_doc},
    {"quicklist_body", (PyCFunction)(void (*)(void))lp_quicklist_body, METH_FASTCALL, quicklist_body_doc},
    {"small_value", (PyCFunction)(void (*)(void))small_value, METH_FASTCALL, small_value_doc},
    {"dump_parts", (PyCFunction)(void (*)(void))dump_parts, METH_FASTCALL, dump_parts_doc},
    {"register_values", (PyCFunction)(void (*)(void))register_values, METH_FASTCALL, register_values_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "dumpling.payload._listpack",
    "The hot listpack operations in C (the pure-Python twin is dumpling.payload.listpack).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__listpack(void)
{
    PyObject *errors;
    PyObject *module;

    if (bad_data_func == NULL) {
        errors = PyImport_ImportModule("dumpling.payload.errors");
        if (errors == NULL) {
            return NULL;
        }
        bad_data_func = PyObject_GetAttrString(errors, "bad_data");
        Py_DECREF(errors);
        if (bad_data_func == NULL) {
            return NULL;
        }
    }
    for (int i = 0; i < 128; i++) {
        if (small_text[i] == NULL) {
            char text[4];
            int n = PyOS_snprintf(text, sizeof(text), "%d", i);
            small_text[i] = PyBytes_FromStringAndSize(text, n);
            if (small_text[i] == NULL) {
                return NULL;
            }
        }
    }
    module = PyModule_Create(&module_def);
    return module;
}
