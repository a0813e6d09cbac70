/*
 * dumpling._keytable: KeyTable, a database's keys, values and LRU/LFU fields in one C hash
 * table (the layout and the C API are in _keytable.h; dumpling/keytable.py has PyKeyTable,
 * the pure-Python reference with the same interface).
 *
 * Why: a Database kept two dicts (values, and a field per key), two entries and ~84 bytes a
 * key, and a dict resizes whole inside the insert that fills it (~0.3 s at 3M keys, both
 * dicts at the same insert).  Here one allocation per key holds the value, hash, field and
 * the key's bytes (41 bytes for a 13-byte key; a bytes object per key took 48 more), and a
 * resize is spread over the operations that follow (and the cron), as Redis does.
 *
 * Python side: a mapping of bytes keys (len, in, [], get, pop, setdefault-free assignment,
 * del, iteration over keys/values/items with dict's "changed size during iteration" error),
 * plus get_field/set_field, rehash_steps/rehash_for (the cron's share), stats(), and
 * scan(cursor, count, values) / random_key() over the buckets themselves (SCAN, RANDOMKEY,
 * sampling).  A key handed to Python is a new bytes object made from the entry.
 *
 * GC: not a GC type.  A KeyTable is never reachable from what it holds (a value never refers
 * to its database's table), so it cannot be on a cycle; a value that is on a cycle of its own
 * stays tracked (collector.stored decides) and the table's reference only keeps it alive, as
 * any untracked holder's would, until the key is deleted.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "_keytable.h"
#include "_native.h"

#define INITIAL_SIZE 4
#define FORCE_RATIO 4 /* grow while iterators hold rehashing back only past this fill (chains) */

static PyTypeObject KeyTableType;
static PyTypeObject KtIterType;

/* ------------------------------------------------------------------ the table */

static inline uint32_t key_hash(PyObject *key) {
    Py_hash_t h = PyObject_Hash(key); /* (bytes: cached after the first call; never fails) */
    return (uint32_t)(size_t)h;
}

static inline int same_chars(const KtEntry *e, const char *key, Py_ssize_t n, uint32_t h) {
    return e->hash == h && (Py_ssize_t)e->len == n && memcmp(e->key, key, (size_t)n) == 0;
}

static inline int same_key(const KtEntry *e, PyObject *key, uint32_t h) {
    return same_chars(e, PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), h);
}

static inline int rehashing(const KeyTableObject *kt) {
    return kt->rehashidx >= 0;
}

/* Move up to n buckets of ht[0] into ht[1], visiting at most 10n empty ones (dictRehash):
 * 1 while more remain. */
static int rehash(KeyTableObject *kt, Py_ssize_t n) {
    if (!rehashing(kt) || kt->iterators > 0)
        return rehashing(kt);
    Py_ssize_t empty_visits = n * 10;
    KtTable *from = &kt->ht[0], *to = &kt->ht[1];
    size_t mask = to->size - 1;
    while (n-- && from->used != 0) {
        while (from->buckets[kt->rehashidx] == NULL) {
            kt->rehashidx++;
            if (--empty_visits == 0)
                return 1;
        }
        KtEntry *e = from->buckets[kt->rehashidx];
        while (e != NULL) {
            KtEntry *next = e->next;
            size_t i = e->hash & mask;
            e->next = to->buckets[i];
            to->buckets[i] = e;
            from->used--;
            to->used++;
            e = next;
        }
        from->buckets[kt->rehashidx] = NULL;
        kt->rehashidx++;
    }
    if (from->used != 0)
        return 1;
    PyMem_Free(from->buckets);
    *from = *to;
    to->buckets = NULL;
    to->size = to->used = 0;
    kt->rehashidx = -1;
    return 0;
}

static inline void rehash_step(KeyTableObject *kt) {
    if (rehashing(kt) && kt->iterators == 0)
        rehash(kt, 1);
}

static size_t size_for(size_t used) {
    size_t size = INITIAL_SIZE;
    while (size < used && size < ((size_t)1 << 62))
        size <<= 1;
    return size;
}

/* Start moving everything to a table of `size` buckets (or make the first table). */
static int resize_to(KeyTableObject *kt, size_t size) {
    if (size > ((size_t)1 << 32)) /* (the hash kept is 32 bits) */
        size = (size_t)1 << 32;
    if (size == kt->ht[0].size)
        return 0;
    KtEntry **buckets = PyMem_Calloc(size, sizeof(KtEntry *));
    if (buckets == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (kt->ht[0].buckets == NULL) {
        kt->ht[0].buckets = buckets;
        kt->ht[0].size = size;
        return 0;
    }
    kt->ht[1].buckets = buckets;
    kt->ht[1].size = size;
    kt->ht[1].used = 0;
    kt->rehashidx = 0;
    return 0;
}

/* Before an insert: the first table, or an expansion once the table is full (fill 1, as
 * Redis's dict; while iterators hold rehashing back a table may fill up to FORCE_RATIO). */
static int expand_if_needed(KeyTableObject *kt) {
    if (rehashing(kt))
        return 0;
    KtTable *t = &kt->ht[0];
    if (t->size == 0)
        return resize_to(kt, INITIAL_SIZE);
    if (t->used >= t->size && (kt->iterators == 0 || t->used >= t->size * FORCE_RATIO))
        return resize_to(kt, size_for(t->used + 1));
    return 0;
}

/* After a delete: below 1/8 full, start shrinking to the smallest table that holds what is
 * left (Redis 7.4's HASHTABLE_MIN_FILL). */
static void shrink_if_needed(KeyTableObject *kt) {
    KtTable *t = &kt->ht[0];
    if (rehashing(kt) || kt->iterators > 0 || t->size <= INITIAL_SIZE || t->used * 8 >= t->size)
        return;
    if (resize_to(kt, size_for(t->used)) < 0)
        PyErr_Clear(); /* (no memory for a smaller table: keep the big one) */
}

/* The link that points at the entry of the key with these bytes (in whichever table holds
 * it), or NULL. */
static KtEntry **find_link_chars(KeyTableObject *kt, const char *key, Py_ssize_t n, uint32_t h) {
    for (int t = 0; t <= 1; t++) {
        KtTable *table = &kt->ht[t];
        if (table->size == 0)
            break;
        KtEntry **link = &table->buckets[h & (table->size - 1)];
        for (; *link != NULL; link = &(*link)->next)
            if (same_chars(*link, key, n, h))
                return link;
        if (!rehashing(kt))
            break;
    }
    return NULL;
}

static inline KtEntry **find_link(KeyTableObject *kt, PyObject *key, uint32_t h) {
    return find_link_chars(kt, PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), h);
}

static KtEntry *kt_find(PyObject *self, PyObject *key) {
    KeyTableObject *kt = (KeyTableObject *)self;
    if (!PyBytes_CheckExact(key) || kt->ht[0].used + kt->ht[1].used == 0)
        return NULL;
    rehash_step(kt);
    KtEntry **link = find_link(kt, key, key_hash(key));
    return link == NULL ? NULL : *link;
}

static KtEntry *kt_find_chars(PyObject *self, const char *key, Py_ssize_t len) {
    KeyTableObject *kt = (KeyTableObject *)self;
    if (kt->ht[0].used + kt->ht[1].used == 0)
        return NULL;
    rehash_step(kt);
    /* (bytes' hash: _Py_HashBytes is what bytes.__hash__ computes and caches) */
    KtEntry **link = find_link_chars(kt, key, len, (uint32_t)(size_t)_Py_HashBytes(key, len));
    return link == NULL ? NULL : *link;
}

/* The length of `value` if this table keeps it inline (a bytes object of at most KT_INLINE_MAX
 * bytes in an inline-values table), else -1. */
static inline Py_ssize_t inline_length(const KeyTableObject *kt, PyObject *value) {
    if (!kt->inline_values || !PyBytes_CheckExact(value) || PyBytes_GET_SIZE(value) > KT_INLINE_MAX)
        return -1;
    return PyBytes_GET_SIZE(value);
}

/* A new, unlinked entry for the key's bytes holding value (inline when inline_len >= 0, with that
 * much room; else by reference, with `field`), counted in key_bytes; NULL with an exception. */
static KtEntry *new_entry(KeyTableObject *kt, const char *key, uint32_t len, uint32_t h, PyObject *value,
                          Py_ssize_t inline_len, uint32_t field) {
    size_t room = inline_len < 0 ? 0 : (size_t)inline_len;
    KtEntry *e = PyMem_Malloc(KT_ENTRY_SIZE((size_t)len + room));
    if (e == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    e->hash = h;
    e->len = len;
    memcpy(e->key, key, len);
    if (inline_len < 0) {
        e->value = Py_NewRef(value);
        e->field = kt->inline_values ? 0 : field;
    } else {
        memcpy(e->key + len, PyBytes_AS_STRING(value), room);
        e->value = NULL;
        e->field = (uint32_t)room << 16 | (uint32_t)room;
    }
    kt->key_bytes += len + room;
    return e;
}

static int kt_store(PyObject *self, PyObject *key, PyObject *value, uint32_t field, KtEntry **out) {
    KeyTableObject *kt = (KeyTableObject *)self;
    if (!PyBytes_CheckExact(key)) {
        PyErr_Format(PyExc_TypeError, "KeyTable keys are bytes, not %.100s", Py_TYPE(key)->tp_name);
        return -1;
    }
    rehash_step(kt);
    uint32_t h = key_hash(key);
    Py_ssize_t inline_len = inline_length(kt, value);
    KtEntry **link = kt->ht[0].size != 0 ? find_link(kt, key, h) : NULL;
    if (link != NULL) {
        KtEntry *e = *link;
        PyObject *old = e->value;
        if (inline_len < 0) {
            e->value = Py_NewRef(value);
        } else if ((uint32_t)inline_len <= e->field >> 16) { /* (fits the room it has) */
            memcpy(e->key + e->len, PyBytes_AS_STRING(value), (size_t)inline_len);
            e->value = NULL;
            e->field = (e->field & 0xFFFF0000u) | (uint32_t)inline_len;
        } else if (kt->iterators == 0) { /* a new entry with the room, in the old one's place */
            KtEntry *moved = new_entry(kt, e->key, e->len, e->hash, value, inline_len, 0);
            if (moved == NULL)
                return -1;
            moved->next = e->next;
            *link = moved;
            kt->key_bytes -= e->len + (e->field >> 16);
            PyMem_Free(e);
            e = moved;
        } else { /* (a cursor may hold the entry: it stays, the value by reference) */
            e->value = Py_NewRef(value);
        }
        if (out != NULL)
            *out = e;
        Py_XDECREF(old); /* (last: its deallocation may run code) */
        return 0;
    }
    Py_ssize_t len = PyBytes_GET_SIZE(key);
    if ((uint64_t)len > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "a KeyTable key is at most 4 GiB");
        return -1;
    }
    if (expand_if_needed(kt) < 0)
        return -1;
    KtEntry *e = new_entry(kt, PyBytes_AS_STRING(key), (uint32_t)len, h, value, inline_len, field);
    if (e == NULL)
        return -1;
    KtTable *t = &kt->ht[rehashing(kt) ? 1 : 0];
    size_t i = h & (t->size - 1);
    e->next = t->buckets[i];
    t->buckets[i] = e;
    t->used++;
    kt->version++;
    if (out != NULL)
        *out = e;
    return 1;
}

static int kt_remove(PyObject *self, PyObject *key, PyObject **old) {
    KeyTableObject *kt = (KeyTableObject *)self;
    if (!PyBytes_CheckExact(key) || kt->ht[0].used + kt->ht[1].used == 0)
        return 0;
    rehash_step(kt);
    uint32_t h = key_hash(key);
    for (int t = 0; t <= 1; t++) {
        KtTable *table = &kt->ht[t];
        if (table->size == 0)
            break;
        KtEntry **link = &table->buckets[h & (table->size - 1)];
        for (; *link != NULL; link = &(*link)->next) {
            if (!same_key(*link, key, h))
                continue;
            KtEntry *e = *link;
            PyObject *v = e->value;
            if (v == NULL && old != NULL) { /* (the inline value as an object, before anything moves) */
                v = kt_entry_value(e);
                if (v == NULL)
                    return -1;
            }
            *link = e->next;
            table->used--;
            kt->version++;
            shrink_if_needed(kt);
            kt->key_bytes -= e->len + (kt->inline_values ? e->field >> 16 : 0);
            PyMem_Free(e);
            if (old != NULL)
                *old = v;
            else
                Py_XDECREF(v);
            return 1;
        }
        if (!rehashing(kt))
            break;
    }
    return 0;
}

static void kt_cursor_start(PyObject *self, KtCursor *c) {
    KeyTableObject *kt = (KeyTableObject *)self;
    kt->iterators++;
    c->kt = (KeyTableObject *)Py_NewRef(self);
    c->table = 0;
    c->bucket = 0;
    c->entry = NULL;
}

static KtEntry *kt_cursor_next(KtCursor *c) {
    KeyTableObject *kt = c->kt;
    for (;;) {
        if (c->entry != NULL) {
            KtEntry *e = c->entry;
            c->entry = e->next;
            return e;
        }
        KtTable *t = &kt->ht[c->table];
        if (c->bucket < t->size) {
            c->entry = t->buckets[c->bucket++];
            continue;
        }
        if (c->table == 0 && rehashing(kt)) {
            c->table = 1;
            c->bucket = 0;
            continue;
        }
        return NULL;
    }
}

static void kt_cursor_end(KtCursor *c) {
    if (c->kt == NULL)
        return;
    c->kt->iterators--;
    Py_CLEAR(c->kt);
}

/* Drop every entry (the tables emptied to none). */
static void clear_all(KeyTableObject *kt) {
    KtTable tables[2] = {kt->ht[0], kt->ht[1]};
    memset(kt->ht, 0, sizeof(kt->ht));
    kt->key_bytes = 0;
    kt->rehashidx = -1;
    kt->version++;
    for (int t = 0; t <= 1; t++) {
        for (size_t i = 0; i < tables[t].size; i++) {
            KtEntry *e = tables[t].buckets[i];
            while (e != NULL) {
                KtEntry *next = e->next;
                PyObject *v = e->value;
                PyMem_Free(e);
                Py_XDECREF(v);
                e = next;
            }
        }
        PyMem_Free(tables[t].buckets);
    }
}

/* ------------------------------------------------------------------ the Python type */

static PyObject *kt_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"inline_values", NULL};
    int inline_values = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$p:KeyTable", kwlist, &inline_values))
        return NULL;
    KeyTableObject *kt = (KeyTableObject *)type->tp_alloc(type, 0);
    if (kt == NULL)
        return NULL;
    kt->rehashidx = -1;
    kt->inline_values = inline_values;
    return (PyObject *)kt;
}

static void kt_dealloc(PyObject *self) {
    clear_all((KeyTableObject *)self);
    Py_TYPE(self)->tp_free(self);
}

static Py_ssize_t kt_length(PyObject *self) {
    return keytable_len(self);
}

static int kt_contains(PyObject *self, PyObject *key) {
    return kt_find(self, key) != NULL;
}

static PyObject *kt_subscript(PyObject *self, PyObject *key) {
    KtEntry *e = kt_find(self, key);
    if (e == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return kt_entry_value(e);
}

static int kt_ass_subscript(PyObject *self, PyObject *key, PyObject *value) {
    if (value != NULL)
        return kt_store(self, key, value, 0, NULL) < 0 ? -1 : 0;
    if (kt_remove(self, key, NULL))
        return 0;
    PyErr_SetObject(PyExc_KeyError, key);
    return -1;
}

static PyObject *kt_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get(key, default=None)");
        return NULL;
    }
    KtEntry *e = kt_find(self, args[0]);
    return e != NULL ? kt_entry_value(e) : Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

static PyObject *kt_pop(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "pop(key[, default])");
        return NULL;
    }
    PyObject *old;
    if (kt_remove(self, args[0], &old))
        return old;
    if (nargs == 2)
        return Py_NewRef(args[1]);
    PyErr_SetObject(PyExc_KeyError, args[0]);
    return NULL;
}

static PyObject *kt_clear(PyObject *self, PyObject *unused) {
    clear_all((KeyTableObject *)self);
    Py_RETURN_NONE;
}

static PyObject *kt_get_field(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get_field(key, default=None)");
        return NULL;
    }
    if (((KeyTableObject *)self)->inline_values) {
        PyErr_SetString(PyExc_TypeError, "an inline-values KeyTable has no fields");
        return NULL;
    }
    KtEntry *e = kt_find(self, args[0]);
    if (e == NULL)
        return Py_NewRef(nargs == 2 ? args[1] : Py_None);
    return PyLong_FromUnsignedLong(e->field);
}

static PyObject *kt_set_field(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_field(key, field)");
        return NULL;
    }
    if (((KeyTableObject *)self)->inline_values) {
        PyErr_SetString(PyExc_TypeError, "an inline-values KeyTable has no fields");
        return NULL;
    }
    unsigned long field = PyLong_AsUnsignedLong(args[1]);
    if (field == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (field > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_OverflowError, "a field is at most 32 bits");
        return NULL;
    }
    KtEntry *e = kt_find(self, args[0]);
    if (e == NULL)
        Py_RETURN_FALSE;
    e->field = (uint32_t)field;
    Py_RETURN_TRUE;
}

static PyObject *kt_rehash_steps(PyObject *self, PyObject *arg) {
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(n > 0 ? rehash((KeyTableObject *)self, n) : rehashing((KeyTableObject *)self));
}

static long long monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* rehash_for(us) -> bool: the cron's share (databasesCron): a shrink started if the table is
 * under 1/8 full (deletes start one too, but not while another rehash runs), then 100 buckets
 * at a time until `us` microseconds have passed or the rehash is done
 * (dictRehashMicroseconds); True while more remain. */
static PyObject *kt_rehash_for(PyObject *self, PyObject *arg) {
    long long budget = PyLong_AsLongLong(arg);
    if (budget == -1 && PyErr_Occurred())
        return NULL;
    KeyTableObject *kt = (KeyTableObject *)self;
    long long start = monotonic_us();
    for (;;) {
        shrink_if_needed(kt); /* (again once a rehash ends: deletes during it started none) */
        if (!rehashing(kt) || kt->iterators > 0)
            break;
        while (rehash(kt, 100))
            if (monotonic_us() - start >= budget)
                return PyBool_FromLong(1);
    }
    return PyBool_FromLong(rehashing(kt));
}

/* stats() -> (size0, used0, size1, used1, rehashidx): the tables as they are (tests, DEBUG). */
static PyObject *kt_stats(PyObject *self, PyObject *unused) {
    KeyTableObject *kt = (KeyTableObject *)self;
    return Py_BuildValue("(nnnnn)", (Py_ssize_t)kt->ht[0].size, (Py_ssize_t)kt->ht[0].used,
                         (Py_ssize_t)kt->ht[1].size, (Py_ssize_t)kt->ht[1].used, kt->rehashidx);
}

static PyObject *kt_sizeof(PyObject *self, PyObject *unused) {
    KeyTableObject *kt = (KeyTableObject *)self;
    size_t n = sizeof(KeyTableObject) + (kt->ht[0].size + kt->ht[1].size) * sizeof(KtEntry *) +
               (kt->ht[0].used + kt->ht[1].used) * offsetof(KtEntry, key) + kt->key_bytes;
    return PyLong_FromSize_t(n);
}

/* ------------------------------------------------------------------ SCAN and random keys */

/* SCAN over the table itself (dict.c's dictScan idea): the cursor counts buckets with its
 * bits reversed, so the buckets a grown or shrunk table splits a visited bucket into, or merges
 * it into, come after it in that order; while a rehash runs, the smaller table's bucket and
 * every bucket of the bigger one that expands it are visited together.  Every key present for
 * the whole scan is returned at least once (some may repeat); nothing here changes the table. */

static inline uint64_t reverse_bits(uint64_t v) {
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
    return (v >> 32) | (v << 32);
}

/* The cursor after the bucket `v & mask`: the next one in reversed-bit order. */
static inline uint64_t next_cursor(uint64_t v, uint64_t mask) {
    v |= ~mask; /* (the bits above the mask carry the increment out) */
    return reverse_bits(reverse_bits(v) + 1);
}

/* Append the bucket's keys (and values) to out: 0, or -1 with an exception. */
static int emit_bucket(const KtEntry *e, PyObject *out, int values) {
    for (; e != NULL; e = e->next) {
        PyObject *key = kt_entry_key_object(e);
        int failed = key == NULL || PyList_Append(out, key) < 0;
        Py_XDECREF(key);
        if (failed)
            return -1;
        if (values) {
            PyObject *value = kt_entry_value(e);
            failed = value == NULL || PyList_Append(out, value) < 0;
            Py_XDECREF(value);
            if (failed)
                return -1;
        }
    }
    return 0;
}

/* One dictScan step from cursor *v: its buckets emitted, *v the next cursor. */
static int scan_step(KeyTableObject *kt, uint64_t *v, PyObject *out, int values) {
    uint64_t c = *v;
    if (!rehashing(kt)) {
        uint64_t m = kt->ht[0].size - 1;
        if (emit_bucket(kt->ht[0].buckets[c & m], out, values) < 0)
            return -1;
        *v = next_cursor(c, m);
        return 0;
    }
    KtTable *small = &kt->ht[0], *big = &kt->ht[1];
    if (small->size > big->size) {
        KtTable *t = small;
        small = big;
        big = t;
    }
    uint64_t m0 = small->size - 1, m1 = big->size - 1;
    if (emit_bucket(small->buckets[c & m0], out, values) < 0)
        return -1;
    do { /* the bigger table's buckets that expand the smaller one's */
        if (emit_bucket(big->buckets[c & m1], out, values) < 0)
            return -1;
        c = next_cursor(c, m1);
    } while (c & (m0 ^ m1));
    *v = c;
    return 0;
}

/* scan(cursor, count=10, values=False) -> (next_cursor, [key, ...] or [key, value, ...]):
 * buckets from cursor until about count keys are gathered or count*10 buckets were visited
 * (SCAN's loop); next_cursor 0 when the table has been walked. */
static PyObject *kt_scan(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"cursor", "count", "values", NULL};
    PyObject *cursor_obj;
    Py_ssize_t count = 10;
    int values = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|np:scan", kwlist, &cursor_obj, &count, &values))
        return NULL;
    uint64_t v = PyLong_AsUnsignedLongLong(cursor_obj);
    if (v == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    if (count < 1) {
        PyErr_SetString(PyExc_ValueError, "count must be at least 1");
        return NULL;
    }
    KeyTableObject *kt = (KeyTableObject *)self;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    if (keytable_len(self) == 0) {
        v = 0;
    } else {
        Py_ssize_t budget = count > PY_SSIZE_T_MAX / 10 ? PY_SSIZE_T_MAX : count * 10;
        Py_ssize_t want = values ? (count > PY_SSIZE_T_MAX / 2 ? PY_SSIZE_T_MAX : count * 2) : count;
        do {
            if (scan_step(kt, &v, out, values) < 0) {
                Py_DECREF(out);
                return NULL;
            }
        } while (v != 0 && --budget > 0 && PyList_GET_SIZE(out) < want);
    }
    PyObject *next = PyLong_FromUnsignedLongLong(v);
    if (next == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, next, out);
    Py_DECREF(next);
    Py_DECREF(out);
    return r;
}

/* splitmix64: the random bucket picks (seeded at module init). */
static uint64_t rng_state;

static inline uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#define FAIR_SAMPLE 20

/* Up to `count` entries from consecutive buckets at a random place (dictGetSomeKeys): a run of
 * empty buckets longer than count (at least 5) jumps elsewhere; at most count*10 steps.  The
 * number found (0 is possible, rarely, in a sparse table). */
static size_t some_entries(KeyTableObject *kt, KtEntry **out, size_t count) {
    size_t used = kt->ht[0].used + kt->ht[1].used;
    if (used < count)
        count = used;
    if (count == 0)
        return 0;
    int tables = rehashing(kt) ? 2 : 1;
    size_t mask = kt->ht[0].size - 1;
    if (tables == 2 && kt->ht[1].size - 1 > mask)
        mask = kt->ht[1].size - 1;
    size_t i = (size_t)rng_next() & mask, stored = 0, empty_run = 0, steps = count * 10;
    while (stored < count && steps--) {
        for (int t = 0; t < tables; t++) {
            if (tables == 2 && t == 0 && i < (size_t)kt->rehashidx) {
                /* ht[0] is empty below rehashidx: skip it there, or jump to rehashidx when i is
                 * past the end of ht[1] too (a shrink) */
                if (i >= kt->ht[1].size)
                    i = (size_t)kt->rehashidx;
                else
                    continue;
            }
            if (i >= kt->ht[t].size)
                continue;
            KtEntry *e = kt->ht[t].buckets[i];
            if (e == NULL) {
                if (++empty_run >= 5 && empty_run > count) {
                    i = (size_t)rng_next() & mask;
                    empty_run = 0;
                }
                continue;
            }
            empty_run = 0;
            for (; e != NULL && stored < count; e = e->next)
                out[stored++] = e;
            if (stored == count)
                return stored;
        }
        i = (i + 1) & mask;
    }
    return stored;
}

/* A random entry (dictGetFairRandomKey): one of up to FAIR_SAMPLE entries found together, so a
 * key in a long chain is not less likely than one alone; failing that, a random non-empty bucket
 * and a random entry of its chain.  NULL when the table is empty. */
static KtEntry *random_entry(KeyTableObject *kt) {
    if (kt->ht[0].used + kt->ht[1].used == 0)
        return NULL;
    rehash_step(kt);
    KtEntry *found[FAIR_SAMPLE];
    size_t n = some_entries(kt, found, FAIR_SAMPLE);
    if (n > 0)
        return found[rng_next() % n];
    KtEntry *e = NULL;
    while (e == NULL) {
        if (rehashing(kt)) { /* a bucket of ht[0] from rehashidx on, or of ht[1] */
            size_t from = (size_t)kt->rehashidx, span = kt->ht[0].size - from + kt->ht[1].size;
            size_t i = from + (size_t)(rng_next() % span);
            e = i >= kt->ht[0].size ? kt->ht[1].buckets[i - kt->ht[0].size] : kt->ht[0].buckets[i];
        } else {
            e = kt->ht[0].buckets[rng_next() & (kt->ht[0].size - 1)];
        }
    }
    size_t len = 0;
    for (KtEntry *x = e; x != NULL; x = x->next)
        len++;
    for (size_t k = (size_t)(rng_next() % len); k > 0; k--)
        e = e->next;
    return e;
}

/* random_key() -> a random key, or None when the table is empty. */
static PyObject *kt_random_key(PyObject *self, PyObject *unused) {
    KtEntry *e = random_entry((KeyTableObject *)self);
    if (e == NULL)
        Py_RETURN_NONE;
    return kt_entry_key_object(e);
}

/* ------------------------------------------------------------------ replies written from the entries */

/* HGETALL/HKEYS/HVALS of a big hash: the RESP reply written straight from the entries (the key's
 * bytes inline, the value's bytes), with no bytes object per key, tuple per pair or list of them
 * (list(items()) then the encoder made three objects a field and walked them twice).  The walk
 * reads entries in bucket order, scattered in memory: each bucket's head is prefetched
 * PREFETCH_BUCKETS buckets ahead, and the entries found wait in a ring of RING slots, their
 * values prefetched, before they are written. */

#define PREFETCH_BUCKETS 16
#define RING 16 /* a power of two */

enum { REPLY_KEYS, REPLY_VALUES, REPLY_ITEMS };

/* One entry written: 0, 1 (its value is not a bytes object: nothing written), -1 (no memory). */
static int wire_entry(BytesWire *w, const KtEntry *e, int kind) {
    if (kind != REPLY_KEYS && e->value != NULL && !PyBytes_CheckExact(e->value))
        return 1;
    if (kind != REPLY_VALUES && bytes_wire_bulk(w, e->key, e->len) < 0)
        return -1;
    if (kind == REPLY_KEYS)
        return 0;
    if (e->value == NULL)
        return bytes_wire_bulk(w, e->key + e->len, e->field & 0xFFFF) < 0 ? -1 : 0;
    return bytes_wire_bulk(w, PyBytes_AS_STRING(e->value), (size_t)PyBytes_GET_SIZE(e->value)) < 0 ? -1 : 0;
}

/* reply(kind, resp3) -> bytes | None: every entry as one RESP reply, kind 0 the keys (an array),
 * 1 the values (an array), 2 both (RESP3 a map, RESP2 a flat array of key, value, ...), in the
 * order iteration gives; None when a value is not a bytes object (the caller's encoder then). */
static PyObject *kt_reply(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "reply(kind, resp3)");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    int resp3 = PyObject_IsTrue(args[1]);
    if ((kind == -1 && PyErr_Occurred()) || resp3 < 0)
        return NULL;
    if (kind < REPLY_KEYS || kind > REPLY_ITEMS) {
        PyErr_SetString(PyExc_ValueError, "kind is 0 (keys), 1 (values) or 2 (items)");
        return NULL;
    }
    KeyTableObject *kt = (KeyTableObject *)self;
    size_t n = kt->ht[0].used + kt->ht[1].used;
    size_t guess = 32 + n * (kind == REPLY_ITEMS ? 40 : 20) + kt->key_bytes;
    BytesWire w = {PyBytes_FromStringAndSize(NULL, (Py_ssize_t)guess), NULL, NULL};
    if (w.bytes == NULL)
        return NULL;
    w.p = PyBytes_AS_STRING(w.bytes);
    w.end = w.p + guess;
    int pairs = kind == REPLY_ITEMS, r = 0;
    if (bytes_wire_header(&w, pairs && resp3 ? '%' : '*', pairs && !resp3 ? 2 * (uint64_t)n : (uint64_t)n) < 0)
        return NULL;
    /* (no Python code runs from here to the end: the table cannot change under the walk) */
    KtEntry *ring[RING];
    size_t head = 0, tail = 0; /* ring[tail..head) wait, their values prefetched */
    for (int t = 0; t <= 1 && r == 0; t++) {
        KtTable *table = &kt->ht[t];
        for (size_t i = 0; i < table->size && r == 0; i++) {
            if (i + PREFETCH_BUCKETS < table->size)
                __builtin_prefetch(table->buckets[i + PREFETCH_BUCKETS]); /* (NULL: harmless) */
            for (KtEntry *e = table->buckets[i]; e != NULL && r == 0; e = e->next) {
                if (head - tail == RING)
                    r = wire_entry(&w, ring[tail++ % RING], (int)kind);
                if (kind != REPLY_KEYS && e->value != NULL)
                    __builtin_prefetch(e->value);
                ring[head++ % RING] = e;
            }
        }
    }
    while (tail != head && r == 0)
        r = wire_entry(&w, ring[tail++ % RING], (int)kind);
    if (r < 0)
        return NULL; /* (no memory: bytes_wire_room released the bytes) */
    if (r > 0) {
        Py_DECREF(w.bytes);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&w.bytes, w.p - PyBytes_AS_STRING(w.bytes)) < 0)
        return NULL;
    return w.bytes;
}

/* ------------------------------------------------------------------ iterators */

enum { IT_KEYS, IT_VALUES, IT_ITEMS };

typedef struct {
    PyObject_HEAD
    KtCursor cursor; /* cursor.kt NULL once finished */
    uint64_t version;
    int kind;
} KtIterObject;

static PyObject *make_iter(PyObject *self, int kind) {
    KtIterObject *it = PyObject_New(KtIterObject, &KtIterType);
    if (it == NULL)
        return NULL;
    kt_cursor_start(self, &it->cursor);
    it->version = ((KeyTableObject *)self)->version;
    it->kind = kind;
    return (PyObject *)it;
}

static PyObject *kt_iter(PyObject *self) {
    return make_iter(self, IT_KEYS);
}

static PyObject *kt_keys(PyObject *self, PyObject *unused) {
    return make_iter(self, IT_KEYS);
}

static PyObject *kt_values(PyObject *self, PyObject *unused) {
    return make_iter(self, IT_VALUES);
}

static PyObject *kt_items(PyObject *self, PyObject *unused) {
    return make_iter(self, IT_ITEMS);
}

static void ktiter_dealloc(PyObject *self) {
    kt_cursor_end(&((KtIterObject *)self)->cursor);
    PyObject_Free(self);
}

static PyObject *ktiter_next(PyObject *self) {
    KtIterObject *it = (KtIterObject *)self;
    if (it->cursor.kt == NULL)
        return NULL;
    if (it->cursor.kt->version != it->version) {
        kt_cursor_end(&it->cursor);
        PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
        return NULL;
    }
    KtEntry *e = kt_cursor_next(&it->cursor);
    if (e == NULL) {
        kt_cursor_end(&it->cursor); /* rehashing may go on */
        return NULL;
    }
    if (it->kind == IT_VALUES)
        return kt_entry_value(e);
    PyObject *key = kt_entry_key_object(e);
    if (key == NULL || it->kind == IT_KEYS)
        return key;
    PyObject *value = kt_entry_value(e);
    PyObject *pair = value == NULL ? NULL : PyTuple_Pack(2, key, value);
    Py_DECREF(key);
    Py_XDECREF(value);
    return pair;
}

static PyObject *ktiter_length_hint(PyObject *self, PyObject *unused) {
    KtIterObject *it = (KtIterObject *)self;
    return PyLong_FromSsize_t(it->cursor.kt == NULL ? 0 : keytable_len((PyObject *)it->cursor.kt));
}

static PyMethodDef ktiter_methods[] = {
    {"__length_hint__", ktiter_length_hint, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KtIterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._keytable.KeyTableIterator",
    .tp_basicsize = sizeof(KtIterObject),
    .tp_dealloc = ktiter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = ktiter_next,
    .tp_methods = ktiter_methods,
};

/* ------------------------------------------------------------------ the type and module */

static PyObject *kt_repr(PyObject *self) {
    return PyUnicode_FromFormat("<KeyTable of %zd keys>", keytable_len(self));
}

static PyMappingMethods kt_as_mapping = {
    .mp_length = kt_length,
    .mp_subscript = kt_subscript,
    .mp_ass_subscript = kt_ass_subscript,
};

static PySequenceMethods kt_as_sequence = {
    .sq_contains = kt_contains,
};

static PyMethodDef kt_methods[] = {
    {"get", (PyCFunction)(void (*)(void))kt_get, METH_FASTCALL, "get(key, default=None): the value at key"},
    {"pop", (PyCFunction)(void (*)(void))kt_pop, METH_FASTCALL, "pop(key[, default]): remove key, return its value"},
    {"clear", kt_clear, METH_NOARGS, "clear(): remove every key"},
    {"keys", kt_keys, METH_NOARGS, "an iterator over the keys"},
    {"values", kt_values, METH_NOARGS, "an iterator over the values"},
    {"items", kt_items, METH_NOARGS, "an iterator over (key, value) pairs"},
    {"get_field", (PyCFunction)(void (*)(void))kt_get_field, METH_FASTCALL,
     "get_field(key, default=None): the key's LRU/LFU field (0 until set), default if absent"},
    {"set_field", (PyCFunction)(void (*)(void))kt_set_field, METH_FASTCALL,
     "set_field(key, field) -> bool: set the key's LRU/LFU field; False (nothing set) if absent"},
    {"rehash_steps", kt_rehash_steps, METH_O, "rehash_steps(n) -> bool: move n buckets; True while rehashing"},
    {"rehash_for", kt_rehash_for, METH_O,
     "rehash_for(us) -> bool: rehash for up to us microseconds; True while rehashing"},
    {"stats", kt_stats, METH_NOARGS, "stats() -> (size0, used0, size1, used1, rehashidx)"},
    {"scan", (PyCFunction)(void (*)(void))kt_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(cursor, count=10, values=False) -> (next_cursor, keys, or [key, value, ...] with values)"},
    {"random_key", kt_random_key, METH_NOARGS, "random_key() -> a random key, None if empty"},
    {"reply", (PyCFunction)(void (*)(void))kt_reply, METH_FASTCALL,
     "reply(kind, resp3) -> the RESP reply of the keys (0), values (1) or both (2), None if a value is not bytes"},
    {"__sizeof__", kt_sizeof, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KeyTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._keytable.KeyTable",
    .tp_doc = "A database's keys, values and LRU/LFU fields: a hash table rehashed incrementally.",
    .tp_basicsize = sizeof(KeyTableObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = kt_new,
    .tp_dealloc = kt_dealloc,
    .tp_repr = kt_repr,
    .tp_as_mapping = &kt_as_mapping,
    .tp_as_sequence = &kt_as_sequence,
    .tp_iter = kt_iter,
    .tp_methods = kt_methods,
    .tp_hash = PyObject_HashNotImplemented,
};

static KeyTableApi api = {
    &KeyTableType, kt_find, kt_store, kt_remove, kt_cursor_start, kt_cursor_next, kt_cursor_end, kt_find_chars,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "dumpling._keytable", "A database's keys, values and LRU/LFU fields in one table.", -1,
    NULL,
};

PyMODINIT_FUNC PyInit__keytable(void) {
    rng_state = (uint64_t)monotonic_us() ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)(uintptr_t)&rng_state;
    if (PyType_Ready(&KeyTableType) < 0 || PyType_Ready(&KtIterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New(&api, KEYTABLE_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(m, "_api", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&KeyTableType);
    if (PyModule_AddObject(m, "KeyTable", (PyObject *)&KeyTableType) < 0) {
        Py_DECREF(&KeyTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
