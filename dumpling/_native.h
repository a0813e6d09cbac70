/*
 * Native command handlers: the interface between dumpling._fastpath's request loop and C
 * functions that other extension modules attach to a command (Command.native, a capsule named
 * NATIVE_CAPSULE holding a NativeHandler).
 *
 * The loop offers a plain command to its native handler only when it would also run the C
 * twins: the connection and the server in the plain state (no hooks, gate or ACL check, no
 * notifications, WATCH, tracking, LFU, maxmemory; see _fastpath.c's eligible()).  In that
 * state a keyspace write only adds to the dirty counter, a lookup only sets the key's LRU
 * field and counts hits/misses, and an expired key is the Python lookup's to delete.
 *
 * A handler either runs the whole command, with exactly the effects and reply of the
 * command's Python handler (which stays the reference), or declines before changing anything
 * and the Python handler runs as usual.  It declines whatever it is unsure of: errors (the
 * Python handler words them), keys to expire, values to convert, keys to create (unless it
 * stores them through Database.add itself, as native HSET does).
 *
 * Returns: a new reference to the reply (an int, bytes or None, encoded as the Python
 * handler's reply would be), or NULL with no exception set (declined), or NULL with an
 * exception set (a failure: the loop stops with it).
 */
#ifndef DUMPLING_NATIVE_H
#define DUMPLING_NATIVE_H

#include <Python.h>
#include <limits.h>

#include "_keytable.h"

/* One argument of the request, pointing into the read buffer. */
typedef struct {
    const char *p;
    Py_ssize_t len;
} NativeArg;

typedef struct {
    PyObject *server;         /* the Server (settings: server.config.values) */
    PyObject *data, *expires; /* the selected Database's KeyTable (_keytable.h) and expiry dict */
    uint32_t clock;           /* the LRU field of now_ms: what a lookup's touch sets */
    long long now_ms;         /* the command's time snapshot */
    int resp3;
    long long hits, misses, dirty;   /* what the command adds to the keyspace's counters */
} NativeCall;

typedef PyObject *(*NativeHandler)(NativeCall *call, const NativeArg *args, int argc);

#define NATIVE_CAPSULE "dumpling._native.handler"

/* dumpling._fastpath's twins (GET, SET, INCR, MSET, ...) for other extension modules (the Lua
 * bridge's redis.call): the C function in the capsule _fastpath.twin_call (TWIN_CAPSULE).  In
 * the state described above, it runs the request `args` on call's dicts and time snapshot and returns
 * the reply's RESP2 bytes (a new reference), *cmd the twin's Command (borrowed: the caller
 * counts the call), and adds to call's hits/misses/dirty; or NULL with no exception set: not a
 * twin, or a form its twin leaves to the Python handler (nothing changed); NULL with an
 * exception set: a failure. */
typedef PyObject *(*TwinCall)(NativeCall *call, const NativeArg *args, int argc, PyObject **cmd);

#define TWIN_CAPSULE "dumpling._fastpath.twin_call"

/* A command's duration in microseconds as Redis measures it (elapsedUs): the difference of two
 * whole-microsecond clock readings, so a command shorter than a microsecond counts 0 or 1 and
 * the sum over many comes out right (the nanoseconds' difference cut to microseconds would count
 * every such command 0: commandstats' usec_per_call 0.00 for GET where Redis shows ~0.06). */
static inline long long native_elapsed_us(long long start_ns, long long end_ns) {
    long long us = end_ns / 1000 - start_ns / 1000;
    return us > 0 ? us : 0;
}

/* The request's arguments as a new list of bytes (what SLOWLOG and Python handlers take), or
 * NULL with an exception set. */
static inline PyObject *native_argv(const NativeArg *args, int argc) {
    PyObject *argv = PyList_New(argc);
    if (argv == NULL)
        return NULL;
    for (int i = 0; i < argc; i++) {
        PyObject *a = PyBytes_FromStringAndSize(args[i].p, args[i].len);
        if (a == NULL) {
            Py_DECREF(argv);
            return NULL;
        }
        PyList_SET_ITEM(argv, i, a);
    }
    return argv;
}

/* dumpling._keytable's C API (the databases' key tables), for each module that includes this
 * header: native_import_keytable() at module init; NULL when _keytable is not built (the C
 * paths then step aside: native_is_keytable is false for every object). */
static const KeyTableApi *native_kt;

static inline void native_import_keytable(void) {
    /* PyCapsule_Import reads attributes from the package down: the submodule is imported first */
    PyObject *module = PyImport_ImportModule("dumpling._keytable");
    if (module != NULL) {
        native_kt = (const KeyTableApi *)PyCapsule_Import(KEYTABLE_CAPSULE, 0);
        Py_DECREF(module);
    }
    if (native_kt == NULL)
        PyErr_Clear();
}

/* 1 if `data` is a C KeyTable this module can work on. */
static inline int native_is_keytable(PyObject *data) {
    return native_kt != NULL && Py_TYPE(data) == native_kt->type;
}

/* The LRU field of a time in ms (keyspace.lru_clock). */
static inline uint32_t native_lru_clock(long long ms) {
    return (uint32_t)((ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000)) & ((1LL << 24) - 1));
}

/* The interned attribute names native_load_db reads (each module fills one at init). */
typedef struct {
    PyObject *db, *slot_index, *data, *expires;
} NativeDbNames;

/* The KeyTable and expiry dict of the database `client` has selected (client.db's data and
 * expires) as new references in *data and *expires,
 * which must be empty (NULL) on entry; the caller clears them whatever the result: 1 read, 0 a
 * layout the C paths do not know (cluster mode's slot index, a dict subclass, the pure
 * PyKeyTable), -1 error. */
static inline int native_load_db(PyObject *client, const NativeDbNames *n, PyObject **data, PyObject **expires) {
    PyObject *db = PyObject_GetAttr(client, n->db);
    if (db == NULL)
        return -1;
    PyObject *slot_index = PyObject_GetAttr(db, n->slot_index);
    *data = PyObject_GetAttr(db, n->data);
    *expires = PyObject_GetAttr(db, n->expires);
    Py_DECREF(db);
    int r = 1;
    if (slot_index == NULL || *data == NULL || *expires == NULL)
        r = -1;
    else if (slot_index != Py_None || !native_is_keytable(*data) || !PyDict_CheckExact(*expires))
        r = 0;
    Py_XDECREF(slot_index);
    return r;
}

/* The Database whose KeyTable is call->data (borrowed: *last holds it), searched in
 * server.keyspace.dbs (n_keyspace, n_dbs, n_data the interned names) and kept in *last (a strong
 * reference, the caller's) so that the next call confirms it with one attribute read (FLUSHDB
 * gives a database a new dict, SWAPDB moves dicts between them); NULL when none is (no exception)
 * or on an error. */
static inline PyObject *native_database_of(const NativeCall *call, PyObject *n_keyspace, PyObject *n_dbs,
                                           PyObject *n_data, PyObject **last) {
    if (*last != NULL) {
        PyObject *data = PyObject_GetAttr(*last, n_data);
        Py_XDECREF(data); /* (only compared) */
        if (data == call->data)
            return *last;
        if (data == NULL)
            return NULL;
    }
    PyObject *keyspace = PyObject_GetAttr(call->server, n_keyspace);
    PyObject *dbs = keyspace == NULL ? NULL : PyObject_GetAttr(keyspace, n_dbs);
    Py_XDECREF(keyspace);
    if (dbs == NULL || !PyList_Check(dbs)) {
        Py_XDECREF(dbs);
        return NULL;
    }
    PyObject *found = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(dbs) && found == NULL; i++) {
        PyObject *db = PyList_GET_ITEM(dbs, i), *data = PyObject_GetAttr(db, n_data);
        if (data == NULL)
            break;
        if (data == call->data)
            found = db;
        Py_DECREF(data);
    }
    if (found != NULL)
        Py_XSETREF(*last, Py_NewRef(found));
    Py_DECREF(dbs);
    return found;
}

/* Redis's string2ll (dumpling.numbers.parse_int64): 1 and *out set, or 0. */
static inline int native_string2ll(const char *s, Py_ssize_t n, long long *out) {
    if (n == 0 || n > 20)
        return 0;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    int negative = s[0] == '-';
    Py_ssize_t i = negative;
    if (i >= n || s[i] < '1' || s[i] > '9')
        return 0;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned long long d = (unsigned long long)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (negative) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return 0;
        *out = (long long)v;
    }
    return 1;
}

/* A growable byte buffer (PyMem): what the C reply and payload writers write into. */
typedef struct {
    char *buf;
    size_t len, cap;
} NativeBuf;

/* Room for `extra` more bytes after len (a first table of `first`, then doubling); -1 with
 * MemoryError. */
static inline int native_buf_reserve(NativeBuf *b, size_t extra, size_t first) {
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : first;
    while (cap < b->len + extra)
        cap *= 2;
    char *grown = PyMem_Realloc(b->buf, cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->buf = grown;
    b->cap = cap;
    return 0;
}

/* The decimal digits of u at p (room for 20), their count: by hand, as snprintf's format
 * parsing costs more than the rest of a small reply. */
static inline int native_u64_text(char *p, unsigned long long u) {
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    for (int i = 0; i < n; i++)
        p[i] = digits[n - 1 - i];
    return n;
}

/* A RESP reply written straight into a bytes object that grows by doubling (a big one's
 * realloc moves pages, not bytes) and is cut to size by its writer at the end.  No Python
 * code may run while it is written (the writers hold borrowed pointers into their values). */
typedef struct {
    PyObject *bytes; /* the reply being written (NULL once a resize failed: it was released) */
    char *p, *end;   /* where the next byte goes; the end of the bytes' room */
} BytesWire;

/* Room for n more bytes: 0, or -1 (no memory; the bytes released). */
static inline int bytes_wire_room(BytesWire *w, size_t n) {
    if ((size_t)(w->end - w->p) >= n)
        return 0;
    size_t used = (size_t)(w->p - PyBytes_AS_STRING(w->bytes)), size = (size_t)PyBytes_GET_SIZE(w->bytes);
    size_t grown = size * 2 > used + n ? size * 2 : used + n;
    if (grown > (size_t)PY_SSIZE_T_MAX) {
        Py_CLEAR(w->bytes);
        PyErr_NoMemory();
        return -1;
    }
    if (_PyBytes_Resize(&w->bytes, (Py_ssize_t)grown) < 0)
        return -1;
    w->p = PyBytes_AS_STRING(w->bytes) + used;
    w->end = PyBytes_AS_STRING(w->bytes) + grown;
    return 0;
}

/* "<prefix><n>\r\n" at p (room for 23 reserved): the byte after it. */
static inline char *wire_head_at(char *p, char prefix, unsigned long long n) {
    *p++ = prefix;
    if (n < 10) {
        *p++ = (char)('0' + n);
    } else {
        p += native_u64_text(p, n);
    }
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* "<prefix><n>\r\n": 0, or -1 (no memory). */
static inline int bytes_wire_header(BytesWire *w, char prefix, unsigned long long n) {
    if (bytes_wire_room(w, 23) < 0)
        return -1;
    w->p = wire_head_at(w->p, prefix, n);
    return 0;
}

/* "$<len>\r\n<bytes>\r\n": 0, or -1 (no memory). */
static inline int bytes_wire_bulk(BytesWire *w, const void *s, size_t n) {
    if (bytes_wire_room(w, n + 25) < 0)
        return -1;
    w->p = wire_head_at(w->p, '$', n);
    memcpy(w->p, s, n);
    w->p += n;
    *w->p++ = '\r';
    *w->p++ = '\n';
    return 0;
}

/* The same for a signed value (room for 20). */
static inline int native_ll_text(char *p, long long v) {
    if (v >= 0)
        return native_u64_text(p, (unsigned long long)v);
    p[0] = '-';
    return 1 + native_u64_text(p + 1, 0ULL - (unsigned long long)v);
}

/* An exact int within uint64 as one (1), or 0 (not one: no exception), -1 on error; values
 * under 2^63 take CPython's quicker signed conversion. */
static inline int native_u64_of(PyObject *v, unsigned long long *out) {
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow;
    long long s = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (!overflow) {
        if (s == -1 && PyErr_Occurred())
            return -1;
        if (s < 0)
            return 0;
        *out = (unsigned long long)s;
        return 1;
    }
    if (overflow < 0)
        return 0;
    *out = PyLong_AsUnsignedLongLong(v);
    if (*out == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    return 1;
}

enum { NATIVE_ABSENT = 0, NATIVE_FOUND = 1, NATIVE_EXPIRED = 2 };

/* A key's value as Database.lookup_* sees it: NATIVE_FOUND and *value (borrowed) when the key
 * holds one (no TTL, or one still to come), NATIVE_ABSENT, NATIVE_EXPIRED when its TTL has
 * passed (the Python lookup deletes it: decline), -1 on an error. */
static inline int native_lookup(const NativeCall *call, PyObject *key, PyObject **value) {
    if (PyDict_GET_SIZE(call->expires) != 0) {
        PyObject *when = PyDict_GetItemWithError(call->expires, key);
        if (when != NULL) {
            long long w = PyLong_AsLongLong(when);
            if (w == -1 && PyErr_Occurred())
                return -1;
            if (call->now_ms > w)
                return NATIVE_EXPIRED;
        } else if (PyErr_Occurred()) {
            return -1;
        }
    }
    KtEntry *e = native_kt->find(call->data, key);
    if (e == NULL)
        return NATIVE_ABSENT;
    *value = e->value;
    return NATIVE_FOUND;
}

/* The lookup's touch (Database.touch with an LRU policy); 0 (it cannot fail). */
static inline int native_touch(const NativeCall *call, PyObject *key) {
    KtEntry *e = native_kt->find(call->data, key);
    if (e != NULL)
        e->field = call->clock;
    return 0;
}

/* _fpconv's d2string (the text of Redis's addReplyDouble), which _fpconv exports in a capsule:
 * writes at most NATIVE_DOUBLE_TEXT bytes (_fpconv.c's TEXT_SIZE) at `out`, returns their count. */
typedef int (*native_d2string_fn)(double value, char *out);
#define NATIVE_DOUBLE_TEXT 96

/* Database.add/set's store hooks (keyspace.StoreHook: value_type, gate, call) for a value just
 * stored: call(db, key, value) for each hook whose type is the value's exact type and whose gate
 * attribute of the value is truthy, walked as Python's `for hook in hooks` walks the list (a hook
 * may change it).  0, or -1 with an exception. */
static inline int native_store_hooks(PyObject *hooks, PyObject *db, PyObject *key, PyObject *value) {
    if (!PyList_Check(hooks)) {
        PyErr_SetString(PyExc_TypeError, "store_hooks must be a list");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(hooks); i++) {
        PyObject *hook = PyList_GET_ITEM(hooks, i);
        if (!PyTuple_Check(hook) || PyTuple_GET_SIZE(hook) != 3) {
            PyErr_SetString(PyExc_TypeError, "a store hook is a StoreHook(value_type, gate, call)");
            return -1;
        }
        if ((PyObject *)Py_TYPE(value) != PyTuple_GET_ITEM(hook, 0))
            continue;
        Py_INCREF(hook); /* (its call may drop it from the list) */
        PyObject *gate = PyObject_GetAttr(value, PyTuple_GET_ITEM(hook, 1));
        int open = gate == NULL ? -1 : PyObject_IsTrue(gate);
        Py_XDECREF(gate);
        PyObject *r = NULL;
        if (open > 0) {
            PyObject *call[3] = {db, key, value};
            r = PyObject_Vectorcall(PyTuple_GET_ITEM(hook, 2), call, 3, NULL);
            Py_XDECREF(r);
        }
        Py_DECREF(hook);
        if (open < 0 || (open > 0 && r == NULL))
            return -1;
    }
    return 0;
}

/* Database.add(key, value) (dbAdd) for a native handler, in the state it runs in: a KeyTable
 * database without a slot index (native_load_db), an LRU policy (the plain state has no LFU) and
 * no client blocked on a key (the caller checked).  The entry gets the command's LRU field; a
 * collection leaves the cyclic GC's sight (collector.stored: `untrack`, whose walk ends at once
 * for a value made untracked, so it is not called for one; a KeyTable is no GC type, so stored's
 * hide has nothing to do) and goes to the store hooks (`hooks`: Keyspace.store_hooks).  The one
 * C copy of keyspace.Database.add for the native handlers (native RESTORE, HSET of a new key);
 * _fastpath's Database.add method is the other.  0, or -1 with an exception. */
static inline int native_db_add(const NativeCall *call, PyObject *db, PyObject *hooks, PyObject *untrack,
                                PyObject *key, PyObject *value) {
    KtEntry *e;
    if (native_kt->store(call->data, key, value, call->clock, &e) < 0)
        return -1;
    e->field = call->clock; /* (Database.add sets it whatever was there) */
    if (PyBytes_CheckExact(value) || PyByteArray_CheckExact(value))
        return 0;
    if (PyObject_IS_GC(value) && PyObject_GC_IsTracked(value)) {
        PyObject *r = PyObject_Vectorcall(untrack, &value, 1, NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return native_store_hooks(hooks, db, key, value);
}

/* The d2string of _fpconv's capsule, or NULL without an exception (no _fpconv: the caller leaves
 * doubles to its Python reference).  For a module's init. */
static inline native_d2string_fn native_import_d2string(void) {
    native_d2string_fn d2string = NULL;
    /* PyCapsule_Import reads attributes from the package down: the submodule is imported first */
    PyObject *fpconv = PyImport_ImportModule("dumpling._fpconv");
    if (fpconv != NULL) {
        d2string = (native_d2string_fn)PyCapsule_Import("dumpling._fpconv.d2string_capi", 0);
        Py_DECREF(fpconv);
    }
    if (d2string == NULL)
        PyErr_Clear();
    return d2string;
}

#endif
