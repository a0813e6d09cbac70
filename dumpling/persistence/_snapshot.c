/* dumpling.persistence._snapshot: the key records of one database's plain string keys,
 * written without touching the key and value objects.
 *
 * Why: a BGSAVE child is a fork of the server.  Iterating a dict from Python takes a new
 * reference to every key and value, i.e. writes the reference count in every object
 * header, and each of those writes copies a 4 KB page the child shares with its parent:
 * a million keys cost a hundred megabytes of copy-on-write.  A KeyTable cursor (_keytable.h)
 * hands out its entries and PyBytes_AS_STRING only reads, so this loop leaves the parent's
 * pages shared, as Redis's own child does.  ``data`` is a database's C KeyTable (values and
 * LRU/LFU fields); the module does not load without dumpling._keytable.
 *
 * write_strings(data, expires, policy, now_ms, decay_time, compress, sink, other) -> int
 *   For every (key, value) of ``data`` in table order, the record rdb.RdbWriter.key() would
 *   write: [EXPIRETIME_MS] [IDLE | FREQ] type 0, key, value.  Bytes are collected in a
 *   buffer handed to ``sink(bytes)`` every 64 KB and before each call of
 *   ``other(key, value, expire_ms, idle_s, freq)``, which writes the records this loop does
 *   not: non-string values, and (with ``compress``) strings long enough for LZF.  ``policy``
 *   is 0 (neither), 1 (LRU: IDLE) or 2 (LFU: FREQ).  Returns the number of keys written.
 *
 * non_strings(data) -> list: the values that are not bytes/bytearray, same care.
 *
 * load_strings(...): the reverse for loading, see its comment.
 *
 * The Python reference is rdb.write_databases + RdbWriter.key; tests/test_persistence_rdb.py
 * compares the two byte for byte.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../_native.h"

static const KeyTableApi *kt_api; /* dumpling._keytable's (module init) */

#define LRU_CLOCK_MAX ((1LL << 24) - 1)
#define FLUSH_AT (64 * 1024)

typedef NativeBuf Buf;

static int reserve(Buf *b, size_t extra) {
    return native_buf_reserve(b, extra, FLUSH_AT * 2);
}

/* rdbSaveLen: the shortest of the 6/14/32/64-bit forms. */
static void put_len(Buf *b, uint64_t n) {
    unsigned char *p = (unsigned char *)b->buf + b->len;
    if (n < 0x40) {
        p[0] = (unsigned char)n;
        b->len += 1;
    } else if (n < 0x4000) {
        p[0] = (unsigned char)(0x40 | (n >> 8));
        p[1] = (unsigned char)(n & 0xFF);
        b->len += 2;
    } else if (n <= 0xFFFFFFFFULL) {
        p[0] = 0x80;
        for (int i = 0; i < 4; i++)
            p[1 + i] = (unsigned char)(n >> (24 - 8 * i));
        b->len += 5;
    } else {
        p[0] = 0x81;
        for (int i = 0; i < 8; i++)
            p[1 + i] = (unsigned char)(n >> (56 - 8 * i));
        b->len += 9;
    }
}

/* string2ll restricted to what rdbSaveRawString int-encodes: canonical text of at most
 * 11 bytes whose value fits int32.  1 and *out set when it applies. */
static int small_int(const char *s, Py_ssize_t n, long long *out) {
    if (n == 0 || n > 11)
        return 0;
    Py_ssize_t i = 0;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (n == 1 || s[1] < '1' || s[1] > '9')
            return 0;
    } else if (s[0] == '0') {
        if (n != 1)
            return 0;
        *out = 0;
        return 1;
    } else if (s[0] < '1' || s[0] > '9') {
        return 0;
    }
    long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (neg)
        v = -v;
    if (v < -2147483648LL || v > 2147483647LL)
        return 0;
    *out = v;
    return 1;
}

/* rdbSaveRawString without LZF (the caller routes compressible strings elsewhere). */
static void put_string(Buf *b, const char *s, Py_ssize_t n) {
    long long v;
    unsigned char *p;
    if (small_int(s, n, &v)) {
        p = (unsigned char *)b->buf + b->len;
        if (v >= -128 && v <= 127) {
            p[0] = 0xC0;
            p[1] = (unsigned char)(v & 0xFF);
            b->len += 2;
        } else if (v >= -32768 && v <= 32767) {
            p[0] = 0xC1;
            p[1] = (unsigned char)(v & 0xFF);
            p[2] = (unsigned char)((v >> 8) & 0xFF);
            b->len += 3;
        } else {
            p[0] = 0xC2;
            for (int i = 0; i < 4; i++)
                p[1 + i] = (unsigned char)((v >> (8 * i)) & 0xFF);
            b->len += 5;
        }
        return;
    }
    put_len(b, (uint64_t)n);
    memcpy(b->buf + b->len, s, (size_t)n);
    b->len += (size_t)n;
}

static int flush(Buf *b, PyObject *sink) {
    if (b->len == 0)
        return 0;
    PyObject *chunk = PyBytes_FromStringAndSize(b->buf, (Py_ssize_t)b->len);
    if (chunk == NULL)
        return -1;
    b->len = 0;
    PyObject *r = PyObject_CallOneArg(sink, chunk);
    Py_DECREF(chunk);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* A borrowed string's buffer, or 0 when the value is not a plain string. */
static int string_view(PyObject *o, const char **s, Py_ssize_t *n) {
    if (PyBytes_CheckExact(o)) {
        *s = PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 1;
    }
    if (PyByteArray_CheckExact(o)) {
        *s = PyByteArray_AS_STRING(o);
        *n = PyByteArray_GET_SIZE(o);
        return 1;
    }
    return 0;
}

static int is_keytable(PyObject *o) {
    return Py_IS_TYPE(o, kt_api->type);
}

static PyObject *write_strings(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8 || !is_keytable(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "write_strings(data: KeyTable, expires, policy, now_ms, decay_time, compress, sink, other)");
        return NULL;
    }
    PyObject *data = args[0], *expires = args[1], *sink = args[6], *other = args[7];
    long policy = PyLong_AsLong(args[2]);
    long long now_ms = PyLong_AsLongLong(args[3]);
    long long decay = PyLong_AsLongLong(args[4]);
    int compress = PyObject_IsTrue(args[5]);
    if (PyErr_Occurred() || compress < 0)
        return NULL;
    long long clock = (now_ms / 1000) & LRU_CLOCK_MAX;
    long long minutes = (now_ms / 60000) & 0xFFFF;
    int has_expires = PyDict_GET_SIZE(expires) > 0;

    Buf b = {NULL, 0, 0};
    Py_ssize_t done = 0;
    KtCursor cursor;
    KtEntry *entry;
    kt_api->cursor_start(data, &cursor);
    while ((entry = kt_api->cursor_next(&cursor)) != NULL) {
        PyObject *value = entry->value;
        Py_ssize_t kn;
        const char *ks = kt_entry_key(entry, &kn);
        long long expire = -1, idle = -1, freq = -1;
        if (has_expires) { /* (the key as an object only for this lookup) */
            PyObject *key = kt_entry_key_object(entry);
            PyObject *when = key == NULL ? NULL : PyDict_GetItemWithError(expires, key);
            Py_XDECREF(key);
            if (when == NULL && PyErr_Occurred())
                goto error;
            if (when != NULL) {
                expire = PyLong_AsLongLong(when);
                if (expire == -1 && PyErr_Occurred())
                    goto error;
            }
        }
        if (policy == 1 || policy == 2) {
            long long field = entry->field;
            if (policy == 1) { /* keyspace.lru_idle_ms, in seconds */
                idle = clock >= field ? clock - field : clock + (LRU_CLOCK_MAX - field);
            } else { /* keyspace.lfu_decayed */
                long long ldt = field >> 8, counter = field & 255;
                if (decay) {
                    long long elapsed = minutes >= ldt ? minutes - ldt : 65535 - ldt + minutes;
                    long long periods = elapsed / decay;
                    counter = periods < counter ? counter - periods : 0;
                }
                freq = counter;
            }
        }
        const char *vs;
        Py_ssize_t vn;
        if (!string_view(value, &vs, &vn) || (compress && (vn > 20 || kn > 20))) {
            /* Not ours: keep the order by handing over what is buffered first. */
            if (flush(&b, sink) < 0)
                goto error;
            PyObject *key = kt_entry_key_object(entry);
            PyObject *r = key == NULL ? NULL : PyObject_CallFunction(other, "OOLLL", key, value, expire, idle, freq);
            Py_XDECREF(key);
            if (r == NULL)
                goto error;
            Py_DECREF(r);
            done++;
            continue;
        }
        if (reserve(&b, (size_t)(kn + vn) + 40) < 0)
            goto error;
        unsigned char *p = (unsigned char *)b.buf + b.len;
        if (expire != -1) {
            p[0] = 0xFC;
            for (int i = 0; i < 8; i++)
                p[1 + i] = (unsigned char)(((unsigned long long)expire >> (8 * i)) & 0xFF);
            b.len += 9;
        }
        if (idle >= 0) {
            b.buf[b.len++] = (char)0xF8;
            put_len(&b, (uint64_t)idle);
        } else if (freq >= 0) {
            b.buf[b.len++] = (char)0xF9;
            b.buf[b.len++] = (char)(unsigned char)freq;
        }
        b.buf[b.len++] = 0;
        put_string(&b, ks, kn);
        put_string(&b, vs, vn);
        done++;
        if (b.len >= FLUSH_AT && flush(&b, sink) < 0)
            goto error;
    }
    kt_api->cursor_end(&cursor);
    if (flush(&b, sink) < 0)
        goto error_ended;
    PyMem_Free(b.buf);
    return PyLong_FromSsize_t(done);
error:
    kt_api->cursor_end(&cursor);
error_ended:
    PyMem_Free(b.buf);
    return NULL;
}

/* non_strings(data) -> list: the values of ``data`` that are not plain strings, found
 * without touching the others (the file's RDB version depends only on these). */
static PyObject *non_strings(PyObject *self, PyObject *data) {
    if (!is_keytable(data)) {
        PyErr_SetString(PyExc_TypeError, "non_strings(data: KeyTable)");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    KtCursor cursor;
    KtEntry *entry;
    kt_api->cursor_start(data, &cursor);
    while ((entry = kt_api->cursor_next(&cursor)) != NULL) {
        PyObject *value = entry->value;
        if (!PyBytes_CheckExact(value) && !PyByteArray_CheckExact(value) && PyList_Append(out, value) < 0) {
            Py_CLEAR(out);
            break;
        }
    }
    kt_api->cursor_end(&cursor);
    return out;
}

/* One rdbString at buf[*pos] as a new bytes object: raw or INT8/16/32.  NULL without an
 * exception for what the Python reader must handle (LZF, 64-bit lengths, a short buffer). */
static PyObject *take_string(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *pos) {
    Py_ssize_t p = *pos;
    if (p >= end)
        return NULL;
    unsigned char b = buf[p];
    Py_ssize_t n;
    switch (b >> 6) {
    case 0:
        n = b & 0x3F;
        p += 1;
        break;
    case 1:
        if (p + 2 > end)
            return NULL;
        n = ((Py_ssize_t)(b & 0x3F) << 8) | buf[p + 1];
        p += 2;
        break;
    case 2:
        if (b != 0x80 || p + 5 > end)
            return NULL;
        n = ((Py_ssize_t)buf[p + 1] << 24) | ((Py_ssize_t)buf[p + 2] << 16) | ((Py_ssize_t)buf[p + 3] << 8) | buf[p + 4];
        p += 5;
        break;
    default: {
        long long v;
        if (b == 0xC0 && p + 2 <= end) {
            v = (signed char)buf[p + 1];
            p += 2;
        } else if (b == 0xC1 && p + 3 <= end) {
            v = (int16_t)(buf[p + 1] | (buf[p + 2] << 8));
            p += 3;
        } else if (b == 0xC2 && p + 5 <= end) {
            v = (int32_t)((uint32_t)buf[p + 1] | ((uint32_t)buf[p + 2] << 8) | ((uint32_t)buf[p + 3] << 16) |
                          ((uint32_t)buf[p + 4] << 24));
            p += 5;
        } else {
            return NULL;
        }
        char text[24];
        int len = snprintf(text, sizeof text, "%lld", v);
        *pos = p;
        return PyBytes_FromStringAndSize(text, len);
    }
    }
    if (n > end - p)
        return NULL;
    *pos = p + n;
    return PyBytes_FromStringAndSize((const char *)buf + p, n);
}

/* load_strings(buf, pos, limit, data, expires, field, now_ms) -> (pos, loaded, expired)
 *
 * The loading side's twin of write_strings: consumes up to ``limit`` records of the form
 * [EXPIRETIME_MS] type-0 key value starting at ``pos`` straight into the database dicts
 * (a key whose expire is before ``now_ms`` is dropped and counted, as a master does), and
 * stops at the first record it does not take - another opcode, LZF, a key already present,
 * damaged or short data - leaving it to the Python reader (rdb.RdbParser), which raises
 * the right error.  The caller uses it only when nothing else watches the dicts. */
static PyObject *load_strings(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7 || !is_keytable(args[3]) || !PyDict_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "load_strings(buf, pos, limit, data: KeyTable, expires, field, now_ms)");
        return NULL;
    }
    unsigned long field = PyLong_AsUnsignedLong(args[5]);
    if (field == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    long long now_ms = PyLong_AsLongLong(args[6]);
    PyObject *data = args[3], *expires = args[4];
    Py_ssize_t loaded = 0, expired = 0;
    if (PyErr_Occurred())
        goto error;
    while (loaded + expired < limit && pos < end) {
        Py_ssize_t p = pos;
        long long expire = -1;
        if (buf[p] == 0xFC) {
            if (p + 10 > end)
                break;
            unsigned long long u = 0;
            for (int i = 7; i >= 0; i--)
                u = (u << 8) | buf[p + 1 + i];
            expire = (long long)u;
            p += 9;
        }
        if (buf[p] != 0)
            break;
        p += 1;
        PyObject *key = take_string(buf, end, &p);
        if (key == NULL) {
            if (PyErr_Occurred())
                goto error;
            break;
        }
        PyObject *value = take_string(buf, end, &p);
        if (value == NULL) {
            Py_DECREF(key);
            if (PyErr_Occurred())
                goto error;
            break;
        }
        if (kt_api->find(data, key) != NULL) {
            Py_DECREF(key);
            Py_DECREF(value);
            break;
        }
        if (expire != -1 && expire < now_ms) {
            expired++;
        } else {
            int failed = kt_api->store(data, key, value, (uint32_t)field, NULL) < 0;
            if (!failed && expire != -1) {
                PyObject *when = PyLong_FromLongLong(expire);
                failed = when == NULL || PyDict_SetItem(expires, key, when) < 0;
                Py_XDECREF(when);
            }
            if (failed) {
                Py_DECREF(key);
                Py_DECREF(value);
                goto error;
            }
            loaded++;
        }
        Py_DECREF(key);
        Py_DECREF(value);
        pos = p;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nnn", pos, loaded, expired);
error:
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"load_strings", (PyCFunction)(void (*)(void))load_strings, METH_FASTCALL,
     "load_strings(buf, pos, limit, data, expires, field, now_ms) -> (pos, loaded, expired)"},
    {"non_strings", non_strings, METH_O, "non_strings(data) -> the values that are not plain strings"},
    {"write_strings", (PyCFunction)(void (*)(void))write_strings, METH_FASTCALL,
     "write_strings(data, expires, policy, now_ms, decay_time, compress, sink, other) -> keys written"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_snapshot",
                                    "RDB key records of plain string keys, without touching the objects.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__snapshot(void) {
    /* PyCapsule_Import reads attributes from the package down: the submodule is imported first */
    PyObject *keytable = PyImport_ImportModule("dumpling._keytable");
    if (keytable == NULL)
        return NULL; /* (ImportError: rdb.py writes and loads in Python) */
    kt_api = (const KeyTableApi *)PyCapsule_Import(KEYTABLE_CAPSULE, 0);
    Py_DECREF(keytable);
    return kt_api == NULL ? NULL : PyModule_Create(&module);
}
