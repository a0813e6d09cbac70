/*
 * dumpling/_keytable.h: a database's keys, values and LRU/LFU fields in one C hash table
 * (dumpling._keytable's KeyTable), and the C entry points it lends other extensions.
 *
 * One allocation per key, the entry: the value, the low 32 bits of the key's hash, the 24-bit
 * LRU/LFU field as a C integer and the key's bytes themselves (no bytes object, no Python int,
 * no second dict).  An entry is sized exactly, KT_ENTRY_SIZE(len): 28 bytes and the key's
 * length, so a 13-byte key's entry takes 41 bytes (pymalloc's 48-byte class; up to 20-byte
 * keys share it), where a bytes object (33 + 13 bytes, 48) beside a 32-byte entry took 80.
 * A key is made a bytes object only when Python asks for one (iteration, scan, random_key;
 * kt_entry_key_object).  Chained
 * buckets in two tables, rehashed incrementally as Redis's dict.c does: an expansion or a
 * shrink allocates the new table and each operation then moves a bucket (the server's cron
 * moves more), so no single command pays for a whole-table resize.  An entry is never
 * reallocated by a rehash (only relinked), so a KtEntry pointer stays valid until its key
 * is deleted.
 *
 * A hash's field table (KeyTable(inline_values=True)) keeps a bytes value of up to
 * KT_INLINE_MAX bytes inline too, after the key, in the same entry: `value` is NULL and `field`
 * holds the room after the key (high 16 bits) and the value's length (low 16 bits), so a 13-byte
 * field with a 13-byte value takes one 56-byte allocation where the entry and a bytes object took
 * 96.  Any other value is held by reference as in the keyspace's tables.  kt_entry_value() reads
 * either kind; code that reads `value` directly must only meet the keyspace's tables.  In such a
 * table a store to a present key may move its entry (a longer inline value, never while a cursor
 * is live), and get_field/set_field do not apply.
 *
 * Found through a capsule, KEYTABLE_CAPSULE, holding a KeyTableApi (native_keytable() in
 * _native.h imports it); `type` tells which objects the functions take.  Keys are passed as
 * exact bytes objects (their cached hash is used): find() of anything else finds nothing,
 * store() refuses it (and a key over 4 GiB).
 */
#ifndef DUMPLING_KEYTABLE_H
#define DUMPLING_KEYTABLE_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#define KEYTABLE_CAPSULE "dumpling._keytable._api"

typedef struct KtEntry {
    struct KtEntry *next; /* the bucket's chain */
    PyObject *value;      /* a strong reference; NULL: the value is inline, after the key */
    uint32_t hash;        /* the low 32 bits of the key's hash (Python's, of its bytes) */
    uint32_t field;       /* the 24-bit LRU/LFU field; inline-values tables: room << 16 | length */
    uint32_t len;         /* the key's length */
    char key[];           /* the key's bytes (not NUL-terminated) */
} KtEntry;

#define KT_ENTRY_SIZE(len) (offsetof(KtEntry, key) + (size_t)(len))

/* The key's bytes (borrowed from the entry: valid until its key is deleted) and length. */
static inline const char *kt_entry_key(const KtEntry *e, Py_ssize_t *len) {
    *len = (Py_ssize_t)e->len;
    return e->key;
}

/* The key as a new bytes object, or NULL with an exception (no memory). */
static inline PyObject *kt_entry_key_object(const KtEntry *e) {
    return PyBytes_FromStringAndSize(e->key, (Py_ssize_t)e->len);
}

#define KT_INLINE_MAX 512 /* the longest value an inline-values table keeps inline */

/* The entry's value as a new reference (an inline one as a new bytes object), or NULL with an
 * exception (no memory). */
static inline PyObject *kt_entry_value(const KtEntry *e) {
    if (e->value != NULL)
        return Py_NewRef(e->value);
    return PyBytes_FromStringAndSize(e->key + e->len, (Py_ssize_t)(e->field & 0xFFFF));
}

typedef struct {
    KtEntry **buckets; /* NULL while size is 0 */
    size_t size;       /* 0 or a power of two */
    size_t used;
} KtTable;

typedef struct {
    PyObject_HEAD
    KtTable ht[2];        /* ht[1] only while rehashing, into it */
    Py_ssize_t rehashidx; /* the next bucket of ht[0] to move; -1 when not rehashing */
    Py_ssize_t iterators; /* live iterators: rehashing waits while there are any */
    uint64_t version;     /* bumped by every insert and delete (iterators check it) */
    size_t key_bytes;     /* the keys' lengths summed, and the inline values' room (__sizeof__) */
    int inline_values;    /* short bytes values kept in the entries (a hash's fields) */
} KeyTableObject;

/* A walk over every entry, for C code that does not change the table while it walks (the
 * snapshot writer).  Rehashing waits from start to end. */
typedef struct {
    KeyTableObject *kt;
    int table;
    size_t bucket;
    KtEntry *entry; /* the next one to hand out */
} KtCursor;

typedef struct {
    PyTypeObject *type;
    /* The entry of `key` (borrowed, valid until the key is deleted), or NULL: absent. Never
     * raises. */
    KtEntry *(*find)(PyObject *kt, PyObject *key);
    /* Store value at key: 1 added (with `field`), 0 replaced (the entry keeps its field), -1
     * with an exception (a key that is not bytes, no memory).  *entry (if given) the entry. */
    int (*store)(PyObject *kt, PyObject *key, PyObject *value, uint32_t field, KtEntry **entry);
    /* Delete key: 1 deleted (*old, if given, receives the value's reference, else it is
     * released), 0 absent. */
    int (*remove)(PyObject *kt, PyObject *key, PyObject **old);
    void (*cursor_start)(PyObject *kt, KtCursor *cursor);
    KtEntry *(*cursor_next)(KtCursor *cursor); /* NULL at the end */
    void (*cursor_end)(KtCursor *cursor);      /* (once, whether or not the walk finished) */
    /* find() by the key's bytes, with no object for it (a request's argument): the same entry
     * find() of an equal bytes object gives (its hash is the bytes' Python hash). */
    KtEntry *(*find_chars)(PyObject *kt, const char *key, Py_ssize_t len);
} KeyTableApi;

static inline Py_ssize_t keytable_len(PyObject *kt) {
    return (Py_ssize_t)(((KeyTableObject *)kt)->ht[0].used + ((KeyTableObject *)kt)->ht[1].used);
}

#endif
