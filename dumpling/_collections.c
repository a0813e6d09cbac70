/*
 * dumpling._collections: the hot internals of the list, hash and set values in C, and the
 * native handlers (dumpling/_native.h) of their most common write commands.
 *
 * Two layers, one source each:
 *
 * - Value operations: a list's one-element push and pop with Redis's listpack/quicklist
 *   bookkeeping (ListValue._push_one / pop's common case in dumpling/datatypes/lists.py, which
 *   stay the reference), and the listpack entry-size arithmetic (datatypes/sizes.py).  ListValue
 *   calls them through the same Python methods every list command uses (list_push_one,
 *   list_pop_one), so LPUSH, RPUSH, LMOVE, BLPOP... all get them; they decline (False / None)
 *   whatever is not the common case (a packed list from RESTORE, a shape to resync, an element
 *   that is not bytes), and the Python code runs instead.
 *
 * - Native handlers: the C request loop offers LPUSH/RPUSH/LPUSHX/RPUSHX, LPOP/RPOP, HSET and
 *   SADD to these before their Python handlers (only in the plain state, see _native.h).  The
 *   profile that led here (README, Measured): the general path's floor - the loop, argv, the
 *   Python call, a lookup and a type check - is ~8k instructions a command, already ~0.55 of
 *   Redis's rate at pipeline 16, so a Python handler that also does the work cannot reach the
 *   targets whatever its value code costs.  The handlers are kept thin: the list ones are the
 *   lookup, the type check and the same list_push_one/list_pop_one the Python values call; HSET
 *   and SADD take only forms with no encoding change, no field TTLs and no SCAN cursor state
 *   (HSET also a new key, whose small hash is born packed, and a packed hash's listpack, which
 *   it edits: see "packed small hashes" below), and decline everything else (errors,
 *   conversions, several list elements), before changing anything, to the Python handlers in
 *   dumpling/commands/{lists,hashes,sets}.py.
 *   A change to what those commands do must be made here too: tests/test_fastpath_collections.py
 *   runs the same streams with the handlers on and off, and against Redis.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "_slots.h"
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_elementlist.h"
#include "_lpentry.h"
#include "_native.h"

#define LP_HEADER_BYTES 7
#define SIZE_SAFETY_LIMIT 8192
#define SIZE_ESTIMATE_OVERHEAD 8
#define QL_SIZE_MAX UINT64_MAX
#define QL_UINT_MAX 4294967295ULL

static const uint64_t NEG_FILL_LIMITS[5] = {4096, 8192, 16384, 32768, 65536};

static PyObject *s_encoding, *s_appendleft, *s_append, *s_popleft, *s_pop, *s_fields, *s_field_expires, *s_scan,
    *s_members, *s_config, *s_values, *u_listpack, *u_quicklist, *u_hashtable, *u_intset, *s_keyspace, *s_blocked_keys, *s_store_hooks,
    *s_append_entry, *s_scores, *s_add_checked, *s_update, *s_add, *s_dbs, *s_data;

static PyObject *g_list_type, *g_hash_type, *g_set_type, *g_stream_type, *g_zset_type; /* set by configure() */
/* dumpling._elementlist's push and pop (a list value's packed elements), or NULL when it is not
 * built: then the elements' Python methods are called (configure() looks it up). */
static const ElementListApi *g_elements = NULL;
static long long g_packed_threshold = 0;                    /* lists.set_packed_threshold */
static int g_handlers_on = 1;

/* HashValue's __slots__, read at their offsets (find_slots below; 1: all found); _fields holds a
 * dict (listpack encodings), a KeyTable (hashtable) or, while the hash is packed, the restored
 * listpack (bytes), which HSET declines */
enum { HV_FIELDS, HV_FIELD_EXPIRES, HV_ENCODING, HV_COUNT };
static const char *const HASH_SLOTS[HV_COUNT] = {"_fields", "field_expires", "encoding"};
static Py_ssize_t g_hash_offsets[HV_COUNT];
static int g_hash_slots_ok = 0;
/* A new empty hash without HashValue()'s Python __init__: a copy of an empty one made once
 * (configure) with its own dict of fields; only when the class's __slots__ are exactly these
 * (native_exact_slots), so every slot is written. */
static const char *const HASH_ALL_SLOTS[] = {"_fields", "field_expires", "encoding", "_heap"};
#define HASH_ALL_COUNT 4
static Py_ssize_t g_hash_all_offsets[HASH_ALL_COUNT];
static PyObject *g_hash_template; /* HashValue() (its field_expires the shared empty NO_FIELD_TTLS) */
/* SetValue's (_members: the restored intset or listpack (bytes) while the set is packed: SADD declines it) */
enum { SETV_MEMBERS, SETV_ENCODING, SETV_COUNT };
static const char *const SET_SLOTS[SETV_COUNT] = {"_members", "encoding"};
static Py_ssize_t g_set_offsets[SETV_COUNT];
static int g_set_slots_ok = 0;
/* ZSetValue's: ZADD reads them (three getattrs were ~0.8k instructions a ZADD) */
enum { ZS_SCORES, ZS_ENCODING, ZS_COUNT };
static const char *const ZSET_SLOTS[ZS_COUNT] = {"_scores", "encoding"};
static Py_ssize_t g_zset_offsets[ZS_COUNT];
static int g_zset_slots_ok = 0;

/* ------------------------------------------------------------------ listpack sizes */

/* sizes.listpack_int_entry_size */
static inline long long lp_int_entry_size(long long v) {
    if (v >= 0 && v <= 127)
        return 2;
    if (v >= -4096 && v <= 4095)
        return 3;
    if (v >= -32768 && v <= 32767)
        return 4;
    if (v >= -8388608 && v <= 8388607)
        return 5;
    if (v >= -2147483648LL && v <= 2147483647LL)
        return 6;
    return 10;
}

/* sizes.listpack_str_entry_size */
static long long lp_str_entry_size(long long n) {
    long long head = n + (n < 64 ? 1 : n < 4096 ? 2 : 5);
    int backlen = head <= 127 ? 1 : head < 16383 ? 2 : head < 2097151 ? 3 : head < 268435455 ? 4 : 5;
    return head + backlen;
}

/* lists.lp_entry_size: bytes one element takes inside a listpack. */
static long long lp_entry_size(const char *p, Py_ssize_t n) {
    long long v;
    if (n > 0 && ((p[0] >= '0' && p[0] <= '9') || p[0] == '-') && native_string2ll(p, n, &v))
        return lp_int_entry_size(v);
    return n < 64 ? n + 2 : lp_str_entry_size(n);
}

/* ------------------------------------------------------------------ quicklist node limits */

/* lists.node_limits (quicklistNodeLimit) */
static void node_limits(long fill, uint64_t *size_limit, uint64_t *count_limit) {
    if (fill >= 0) {
        *size_limit = QL_SIZE_MAX;
        *count_limit = fill == 0 ? 1 : (uint64_t)fill;
    } else {
        long i = -fill - 1;
        *size_limit = NEG_FILL_LIMITS[i < 4 ? i : 4];
        *count_limit = QL_UINT_MAX;
    }
}

/* lists.exceeds_limit (quicklistNodeExceedsLimit) */
static int exceeds_limit(long fill, uint64_t new_bytes, uint64_t new_count) {
    uint64_t size_limit, count_limit;
    node_limits(fill, &size_limit, &count_limit);
    if (size_limit != QL_SIZE_MAX)
        return new_bytes > size_limit;
    if (new_bytes > SIZE_SAFETY_LIMIT)
        return 1;
    return new_count > count_limit;
}

/* ------------------------------------------------------------------ attribute helpers */

/* 1 when str `s` equals the interned `u` (usually the same object), 0 if not, -1 error. */
static int str_is(PyObject *s, PyObject *u) {
    if (s == u)
        return 1;
    if (!PyUnicode_Check(s))
        return 0;
    return PyUnicode_Compare(s, u) == 0 ? 1 : (PyErr_Occurred() ? -1 : 0);
}

/* A node record [count, bytes, plain]: its fields. */
static int node_fields(PyObject *node, long long *count, long long *bytes, int *plain) {
    if (!PyList_CheckExact(node) || PyList_GET_SIZE(node) != 3) {
        PyErr_SetString(PyExc_TypeError, "a quicklist node record is [count, bytes, plain]");
        return -1;
    }
    *count = PyLong_AsLongLong(PyList_GET_ITEM(node, 0));
    if (*count == -1 && PyErr_Occurred())
        return -1;
    *bytes = PyLong_AsLongLong(PyList_GET_ITEM(node, 1));
    if (*bytes == -1 && PyErr_Occurred())
        return -1;
    *plain = PyObject_IsTrue(PyList_GET_ITEM(node, 2));
    return *plain < 0 ? -1 : 0;
}

static int node_set(PyObject *node, Py_ssize_t i, long long v) {
    PyObject *o = PyLong_FromLongLong(v);
    if (o == NULL)
        return -1;
    return PyList_SetItem(node, i, o); /* steals o */
}

static PyObject *new_node(long long count, long long bytes, int plain) {
    return Py_BuildValue("[LLO]", count, bytes, plain ? Py_True : Py_False);
}

/* ------------------------------------------------------------------ list operations */

/* ListValue's __slots__, read and written at their offsets (what their member descriptors do,
 * without the attribute lookup): configure() finds them; a value of another type is declined. */
enum { L_ITEMS, L_PACKED, L_ENCODING, L_LP_BYTES, L_NODES, L_SHAPE_LEN, L_COUNT };
static const char *const LIST_SLOTS[L_COUNT] = {"_items", "_packed", "encoding", "_lp_bytes", "_nodes", "_shape_len"};
static Py_ssize_t g_list_offsets[L_COUNT];
static int g_list_slots_ok = 0;

static inline PyObject **list_slot(PyObject *value, int which) {
    return (PyObject **)((char *)value + g_list_offsets[which]);
}

/* The slot's value (a new reference), or NULL with AttributeError when it was never set. */
static PyObject *lget(PyObject *value, int which) {
    PyObject *v = *list_slot(value, which);
    if (v == NULL) {
        PyErr_Format(PyExc_AttributeError, "ListValue.%s is not set", LIST_SLOTS[which]);
        return NULL;
    }
    return Py_NewRef(v);
}

static void lset(PyObject *value, int which, PyObject *v) {
    Py_XSETREF(*list_slot(value, which), Py_NewRef(v));
}

static int lget_ll(PyObject *value, int which, long long *out) {
    PyObject *v = lget(value, which);
    if (v == NULL)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static int lset_ll(PyObject *value, int which, long long n) {
    PyObject *v = PyLong_FromLongLong(n);
    if (v == NULL)
        return -1;
    Py_XSETREF(*list_slot(value, which), v);
    return 0;
}

/* 1 when `value` is a ListValue whose slots this module reads directly. */
static inline int is_list(PyObject *value) {
    return g_list_slots_ok && g_list_type != NULL && (PyObject *)Py_TYPE(value) == g_list_type;
}

/* The value's deque if the list is in the state the one-element operations handle (no
 * packed nodes from RESTORE, the shape matches the elements): a new reference; NULL with no
 * exception when it is not. */
static PyObject *list_items_if_synced(PyObject *value, Py_ssize_t *len) {
    if (!is_list(value))
        return NULL;
    PyObject *packed = *list_slot(value, L_PACKED);
    if (packed != Py_None)
        return NULL; /* (or never set) */
    PyObject *items = lget(value, L_ITEMS);
    if (items == NULL)
        return NULL;
    long long shape_len;
    Py_ssize_t n = PyObject_Size(items);
    if (n < 0 || lget_ll(value, L_SHAPE_LEN, &shape_len) < 0) {
        Py_DECREF(items);
        return NULL;
    }
    if (shape_len != n) {
        Py_DECREF(items);
        return NULL;
    }
    *len = n;
    return items;
}

/* lists._ql_push_sized for one element: into the end node if it allows it, else a new node. */
static int ql_push(PyObject *nodes, long long size, long long entry, int head, long fill) {
    uint64_t size_limit, count_limit;
    node_limits(fill, &size_limit, &count_limit);
    int by_size = size_limit != QL_SIZE_MAX;
    uint64_t large_above = g_packed_threshold ? (uint64_t)(g_packed_threshold - 1)
                                              : (fill < 0 ? size_limit : SIZE_SAFETY_LIMIT);
    Py_ssize_t n = PyList_GET_SIZE(nodes);
    PyObject *node = NULL;
    if ((uint64_t)size > large_above) {
        node = new_node(1, size, 1);
    } else {
        if (n > 0) {
            PyObject *end = PyList_GET_ITEM(nodes, head ? 0 : n - 1);
            long long count, bytes;
            int plain;
            if (node_fields(end, &count, &bytes, &plain) < 0)
                return -1;
            if (!plain) {
                uint64_t new_bytes = (uint64_t)bytes + (uint64_t)size + SIZE_ESTIMATE_OVERHEAD;
                if (by_size ? new_bytes <= size_limit
                            : (new_bytes <= SIZE_SAFETY_LIMIT && (uint64_t)count < count_limit))
                    return node_set(end, 0, count + 1) < 0 || node_set(end, 1, bytes + entry) < 0 ? -1 : 0;
            }
        }
        node = new_node(1, LP_HEADER_BYTES + entry, 0);
    }
    if (node == NULL)
        return -1;
    int r = head ? PyList_Insert(nodes, 0, node) : PyList_Append(nodes, node);
    Py_DECREF(node);
    return r;
}

/* ListValue._push_one: 1 done (*new_len set), 0 not the common case (nothing changed), -1 error. */
static int push_one(PyObject *value, PyObject *element, int head, long fill, Py_ssize_t *new_len) {
    if (!PyBytes_CheckExact(element))
        return 0;
    Py_ssize_t len;
    PyObject *items = list_items_if_synced(value, &len);
    if (items == NULL)
        return PyErr_Occurred() ? -1 : 0;
    int result = -1;
    PyObject *encoding = NULL, *nodes = NULL;
    long long size = PyBytes_GET_SIZE(element);
    long long entry = lp_entry_size(PyBytes_AS_STRING(element), size);
    encoding = lget(value, L_ENCODING);
    if (encoding == NULL)
        goto done;
    int listpack = str_is(encoding, u_listpack);
    if (listpack < 0)
        goto done;
    if (!listpack) {
        int quicklist = str_is(encoding, u_quicklist);
        if (quicklist <= 0) {
            result = quicklist < 0 ? -1 : 0;
            goto done;
        }
    }
    if (listpack) {
        long long lp_bytes;
        if (lget_ll(value, L_LP_BYTES, &lp_bytes) < 0)
            goto done;
        if (!exceeds_limit(fill, (uint64_t)(lp_bytes + size), (uint64_t)len + 1)) {
            if (lset_ll(value, L_LP_BYTES, lp_bytes + entry) < 0)
                goto done;
        } else { /* _to_quicklist, then the push into it */
            nodes = len ? Py_BuildValue("[[nLO]]", len, lp_bytes, Py_False) : PyList_New(0);
            if (nodes == NULL)
                goto done;
            lset(value, L_NODES, nodes);
            lset(value, L_ENCODING, u_quicklist);
            if (ql_push(nodes, size, entry, head, fill) < 0)
                goto done;
        }
    } else {
        nodes = lget(value, L_NODES);
        if (nodes == NULL)
            goto done;
        if (!PyList_CheckExact(nodes)) {
            PyErr_SetString(PyExc_TypeError, "ListValue._nodes is not a list");
            goto done;
        }
        if (ql_push(nodes, size, entry, head, fill) < 0)
            goto done;
    }
    if (g_elements != NULL && Py_IS_TYPE(items, g_elements->type)) { /* packed: straight in */
        if (g_elements->push(items, PyBytes_AS_STRING(element), PyBytes_GET_SIZE(element), head) < 0)
            goto done;
    } else {
        PyObject *r = PyObject_CallMethodOneArg(items, head ? s_appendleft : s_append, element);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    result = lset_ll(value, L_SHAPE_LEN, (long long)len + 1) < 0 ? -1 : 1;
    *new_len = len + 1;
done:
    Py_XDECREF(nodes);
    Py_XDECREF(encoding);
    Py_DECREF(items);
    return result;
}

/* ListValue.pop's common case (one element, shape known) and, with `shrink`, shrunk()'s
 * return to a listpack (_try_listpack with the halved limits).  The element (new reference),
 * or NULL: an error, or (no exception) not the common case or a list of fewer than `min_len`
 * elements (at least 1). */
static PyObject *pop_one(PyObject *value, int head, long fill, int shrink, Py_ssize_t min_len) {
    Py_ssize_t len;
    PyObject *items = list_items_if_synced(value, &len);
    if (items == NULL)
        return NULL;
    PyObject *element = NULL, *encoding = NULL, *nodes = NULL;
    if (len == 0 || len < min_len)
        goto done;
    encoding = lget(value, L_ENCODING);
    if (encoding == NULL)
        goto done;
    int listpack = str_is(encoding, u_listpack), quicklist = 0;
    if (listpack < 0 || (!listpack && (quicklist = str_is(encoding, u_quicklist)) <= 0))
        goto done;
    if (quicklist) {
        nodes = lget(value, L_NODES);
        if (nodes == NULL)
            goto done;
        if (!PyList_CheckExact(nodes) || PyList_GET_SIZE(nodes) == 0)
            goto done; /* not a shape this code knows: Python's */
    }
    long long entry;
    if (g_elements != NULL && Py_IS_TYPE(items, g_elements->type)) { /* packed: every element bytes */
        Py_ssize_t entry_size;
        element = g_elements->pop(items, head, &entry_size);
        if (element == NULL)
            goto done;
        entry = entry_size;
    } else {
        PyObject *end = PySequence_GetItem(items, head ? 0 : len - 1);
        if (end == NULL)
            goto done;
        int is_bytes = PyBytes_Check(end);
        Py_DECREF(end);
        if (!is_bytes)
            goto done; /* (an element kept as another type: Python's lp_entry_size reads it) */
        element = PyObject_CallMethodNoArgs(items, head ? s_popleft : s_pop);
        if (element == NULL)
            goto done;
        entry = lp_entry_size(PyBytes_AS_STRING(element), PyBytes_GET_SIZE(element));
    }
    if (listpack) {
        long long lp_bytes;
        if (lget_ll(value, L_LP_BYTES, &lp_bytes) < 0 || lset_ll(value, L_LP_BYTES, lp_bytes - entry) < 0)
            goto fail;
    } else { /* _ql_pop */
        Py_ssize_t n = PyList_GET_SIZE(nodes), at = head ? 0 : n - 1;
        long long count, bytes;
        int plain;
        if (node_fields(PyList_GET_ITEM(nodes, at), &count, &bytes, &plain) < 0)
            goto fail;
        if (plain || count == 1) {
            if (PyList_SetSlice(nodes, at, at + 1, NULL) < 0)
                goto fail;
        } else if (node_set(PyList_GET_ITEM(nodes, at), 0, count - 1) < 0 ||
                   node_set(PyList_GET_ITEM(nodes, at), 1, bytes - entry) < 0) {
            goto fail;
        }
    }
    if (lset_ll(value, L_SHAPE_LEN, (long long)len - 1) < 0)
        goto fail;
    if (shrink && quicklist && PyList_GET_SIZE(nodes) == 1) { /* shrunk(): _try_listpack(shrinking=True) */
        long long count, bytes;
        int plain;
        if (node_fields(PyList_GET_ITEM(nodes, 0), &count, &bytes, &plain) < 0)
            goto fail;
        uint64_t size_limit, count_limit;
        node_limits(fill, &size_limit, &count_limit);
        if (!plain && (uint64_t)bytes <= size_limit / 2 && (uint64_t)count <= count_limit / 2) {
            PyObject *empty = PyTuple_New(0); /* lists.NO_NODES */
            if (empty == NULL || lset_ll(value, L_LP_BYTES, bytes) < 0) {
                Py_XDECREF(empty);
                goto fail;
            }
            lset(value, L_NODES, empty);
            lset(value, L_ENCODING, u_listpack);
            Py_DECREF(empty);
        }
    }
    goto done;
fail:
    Py_CLEAR(element);
done:
    Py_XDECREF(nodes);
    Py_XDECREF(encoding);
    Py_DECREF(items);
    return element;
}

/* list_push_one(value, element, head, fill) -> bool: ListValue._push_one done, or False (the
 * Python code's case: nothing was changed). */
static PyObject *py_list_push_one(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "list_push_one(value, element, head, fill)");
        return NULL;
    }
    int head = PyObject_IsTrue(args[2]);
    long fill = PyLong_AsLong(args[3]);
    if (head < 0 || (fill == -1 && PyErr_Occurred()))
        return NULL;
    Py_ssize_t new_len;
    int r = push_one(args[0], args[1], head, fill, &new_len);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

/* list_pop_one(value, head, fill) -> element or None: pop's one-element case, or None (the
 * Python code's case: nothing was changed). */
static PyObject *py_list_pop_one(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "list_pop_one(value, head, fill)");
        return NULL;
    }
    int head = PyObject_IsTrue(args[1]);
    long fill = PyLong_AsLong(args[2]);
    if (head < 0 || (fill == -1 && PyErr_Occurred()))
        return NULL;
    PyObject *element = pop_one(args[0], head, fill, 0, 1);
    if (element == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return element;
}

/* lp_entry_size(element) -> int (lists.lp_entry_size). */
static PyObject *py_lp_entry_size(PyObject *self, PyObject *arg) {
    if (PyBytes_Check(arg))
        return PyLong_FromLongLong(lp_entry_size(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg)));
    if (PyByteArray_Check(arg))
        return PyLong_FromLongLong(lp_entry_size(PyByteArray_AS_STRING(arg), PyByteArray_GET_SIZE(arg)));
    PyErr_SetString(PyExc_TypeError, "lp_entry_size(bytes or bytearray)");
    return NULL;
}

/* set_packed_threshold(size): DEBUG QUICKLIST-PACKED-THRESHOLD, as lists.set_packed_threshold. */
static PyObject *py_set_packed_threshold(PyObject *self, PyObject *arg) {
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    g_packed_threshold = v;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ stream append */

/* A __slots__ field at its offset (found by _native.h's native_slot_offsets), as for ListValue. */
static inline PyObject **slot_at(PyObject *obj, Py_ssize_t offset) {
    return (PyObject **)((char *)obj + offset);
}

/* Slot values as long long (0), or -1 (unset or not an int: an exception only on overflow). */
static int slot_ll(PyObject *obj, Py_ssize_t offset, long long *out) {
    PyObject *v = *slot_at(obj, offset);
    if (v == NULL || !PyLong_CheckExact(v))
        return -1;
    *out = PyLong_AsLongLong(v);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static int slot_set_ll(PyObject *obj, Py_ssize_t offset, long long n) {
    PyObject *v = PyLong_FromLongLong(n);
    if (v == NULL)
        return -1;
    Py_XSETREF(*slot_at(obj, offset), v);
    return 0;
}

enum { SV_ENTRIES, SV_LAST_ID, SV_FIRST_ID, SV_ADDED, SV_NODES, SV_COUNT };
static const char *const STREAM_SLOTS[SV_COUNT] = {"_entries", "last_id", "first_id", "entries_added", "_nodes"};
enum { SN_MASTER_FIELDS, SN_LAST_ID, SN_LIVE, SN_DELETED, SN_ENTRIES_BYTES, SN_FIELDS_BYTES, SN_MASTER_ID, SN_DEAD, SN_COUNT };
static const char *const NODE_SLOTS[SN_COUNT] = {"master_fields", "last_id",      "live",      "deleted",
                                                 "entries_bytes", "fields_bytes", "master_id", "dead"};
enum { IM_LEN, IM_KEYS, IM_VALS, IM_MAXES, IM_COUNT };
static const char *const IDMAP_SLOTS[IM_COUNT] = {"_len", "_keys", "_vals", "_maxes"};
static Py_ssize_t g_stream_offsets[SV_COUNT], g_node_offsets[SN_COUNT], g_idmap_offsets[IM_COUNT];
static PyObject *g_node_type, *g_idmap_type; /* configure() */
static Py_ssize_t g_idmap_chunk;             /* streams.CHUNK */
static int g_stream_slots_ok = 0;

#define STREAM_LISTPACK_MAX_SIZE (1LL << 30)

/* A stream ID (ms, seq): 1, or 0 (not one), -1 on error. */
static int id_parts(PyObject *id, unsigned long long *ms, unsigned long long *seq) {
    if (!PyTuple_CheckExact(id) || PyTuple_GET_SIZE(id) != 2)
        return 0;
    int r = native_u64_of(PyTuple_GET_ITEM(id, 0), ms);
    return r <= 0 ? r : native_u64_of(PyTuple_GET_ITEM(id, 1), seq);
}

/* An ID as an IdMap record (streams.pack_id): ms then seq, 8 bytes each, big-endian. */
#define ID_RECORD 16
static inline uint64_t big_endian64(uint64_t v) {
#if PY_BIG_ENDIAN
    return v;
#else
    return __builtin_bswap64(v);
#endif
}

static inline void id_record(unsigned char *out, unsigned long long ms, unsigned long long seq) {
    uint64_t parts[2] = {big_endian64(ms), big_endian64(seq)};
    memcpy(out, parts, ID_RECORD);
}

static inline void id_of_record(const unsigned char *in, unsigned long long *ms, unsigned long long *seq) {
    uint64_t parts[2];
    memcpy(parts, in, ID_RECORD);
    *ms = big_endian64(parts[0]);
    *seq = big_endian64(parts[1]);
}

/* records += record (a bytearray: amortized growth).  0, or -1 on error. */
static int records_append(PyObject *records, const unsigned char *record) {
    Py_ssize_t n = PyByteArray_GET_SIZE(records);
    if (PyByteArray_Resize(records, n + ID_RECORD) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(records) + n, record, ID_RECORD);
    return 0;
}

/* ------------------------------------------------------------------ packed stream entries */

/* streams.PackedFlats: a chunk of a stream's entries, each entry's flat field/value list packed
 * as a LEB128 header (len(flat) << 1 | same) then each stored element, LEB128 length first;
 * `same`: the fields are the chunk's master fields and only the values are stored.  `ends`
 * holds each entry's native 4-byte end offset in `data`.  streams.pack_flat and
 * _unpack_flats_py/_flats_append_py/_flats_delete_py are the Python reference. */
enum { PF_MASTER, PF_DATA, PF_ENDS, PF_COUNT };
static const char *const FLATS_SLOTS[PF_COUNT] = {"master", "data", "ends"};
static Py_ssize_t g_flats_offsets[PF_COUNT];
static PyObject *g_flats_type, *g_entrymap_type; /* configure() */
static int g_flats_slots_ok = 0;
#define FLATS_CHUNK_BYTES 0xFFFFFFFFLL /* streams.CHUNK_BYTES */

static inline Py_ssize_t varint_size(unsigned long long n) {
    Py_ssize_t size = 1;
    while (n >= 0x80) {
        n >>= 7;
        size++;
    }
    return size;
}

static inline unsigned char *varint_put(unsigned char *p, unsigned long long n) {
    while (n >= 0x80) {
        *p++ = (unsigned char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    *p++ = (unsigned char)n;
    return p;
}

/* The LEB128 number at *p (advanced past it): 0, or -1 past `end` or over 63 bits. */
static inline int varint_get(const unsigned char **p, const unsigned char *end, unsigned long long *n) {
    if (*p < end && **p < 0x80) { /* (one byte: the common case) */
        *n = *(*p)++;
        return 0;
    }
    unsigned long long v = 0;
    for (int shift = 0; shift < 63; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        v |= (unsigned long long)(b & 0x7F) << shift;
        if (b < 0x80) {
            *n = v;
            return 0;
        }
    }
    return -1;
}

/* An element's bytes (bytes or bytearray): 1, or 0 (another type). */
static inline int elem_bytes(PyObject *o, const char **p, Py_ssize_t *n) {
    if (PyBytes_CheckExact(o)) {
        *p = PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 1;
    }
    if (PyByteArray_CheckExact(o)) {
        *p = PyByteArray_AS_STRING(o);
        *n = PyByteArray_GET_SIZE(o);
        return 1;
    }
    return 0;
}

/* A PackedFlats' parts (borrowed): 1, or 0 with TypeError (not one, or a layout not its own). */
static int flats_parts(PyObject *chunk, PyObject **master, PyObject **data, PyObject **ends) {
    if (!g_flats_slots_ok || (PyObject *)Py_TYPE(chunk) != g_flats_type)
        goto bad;
    *master = *slot_at(chunk, g_flats_offsets[PF_MASTER]);
    *data = *slot_at(chunk, g_flats_offsets[PF_DATA]);
    *ends = *slot_at(chunk, g_flats_offsets[PF_ENDS]);
    if (*master == NULL || *data == NULL || *ends == NULL || !PyByteArray_CheckExact(*data) || !PyByteArray_CheckExact(*ends) ||
        (*master != Py_None && !PyTuple_CheckExact(*master)) || PyByteArray_GET_SIZE(*ends) % 4)
        goto bad;
    return 1;
bad:
    PyErr_SetString(PyExc_TypeError, "not a streams.PackedFlats");
    return 0;
}

static inline uint32_t flats_end(PyObject *ends, Py_ssize_t j) {
    uint32_t end;
    memcpy(&end, PyByteArray_AS_STRING(ends) + 4 * j, 4);
    return end;
}

/* An entry's element as the packing reads it: its bytes, and its bytes object when it has one
 * (borrowed; NULL: native XADD's request bytes, made an object only where one is kept). */
typedef struct {
    const char *p;
    Py_ssize_t len;
    PyObject *obj;
} FlatElem;

/* An entry packed into a chunk: a header varint (element count << 1 | same), then each element's
 * length varint and bytes, or with `same` (its field names are the chunk's master fields, the
 * tuple `master`) only the values'.  packed_entry_size sets *same and gives the packed size;
 * packed_entry_put writes it at w (that much room there). */
/* n bytes at a and b equal (the last byte tested first: names that differ mostly differ there). */
static inline int bytes_equal(const char *a, const char *b, Py_ssize_t n) {
    return n == 0 || (a[n - 1] == b[n - 1] && memcmp(a, b, (size_t)n) == 0);
}

static inline long long packed_entry_size(PyObject *master, const FlatElem *e, Py_ssize_t n, int *same_out) {
    int same = master != Py_None && n == 2 * PyTuple_GET_SIZE(master);
    for (Py_ssize_t i = 0; same && i < n / 2; i++) {
        PyObject *m = PyTuple_GET_ITEM(master, i);
        if (e[2 * i].obj == m)
            continue;
        same = PyBytes_CheckExact(m) && e[2 * i].len == PyBytes_GET_SIZE(m) && bytes_equal(e[2 * i].p, PyBytes_AS_STRING(m), e[2 * i].len);
    }
    long long size = varint_size(((unsigned long long)n << 1) | (unsigned)same);
    for (Py_ssize_t i = same ? 1 : 0; i < n; i += same ? 2 : 1)
        size += varint_size((unsigned long long)e[i].len) + e[i].len;
    *same_out = same;
    return size;
}

static inline void packed_entry_put(unsigned char *w, const FlatElem *e, Py_ssize_t n, int same) {
    w = varint_put(w, ((unsigned long long)n << 1) | (unsigned)same);
    for (Py_ssize_t i = same ? 1 : 0; i < n; i += same ? 2 : 1) {
        w = varint_put(w, (unsigned long long)e[i].len);
        lpe_copy(w, (const unsigned char *)e[i].p, (size_t)e[i].len); /* (most are short: no libc call) */
        w += e[i].len;
    }
}

/* The elements of `flat`, a list, into elems (room for all): 1, or 0 (an item not bytes, or
 * with bytearrays allowed, not bytearray either). */
static int flat_elems(PyObject *flat, FlatElem *elems, int bytearrays) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(flat); i++) {
        PyObject *o = PyList_GET_ITEM(flat, i);
        if (PyBytes_CheckExact(o))
            elems[i].obj = o;
        else if (bytearrays && PyByteArray_CheckExact(o))
            elems[i].obj = NULL;
        else
            return 0;
        elem_bytes(o, &elems[i].p, &elems[i].len);
    }
    return 1;
}

static inline PyObject *elem_object(const FlatElem *e) {
    return e->obj != NULL ? Py_NewRef(e->obj) : PyBytes_FromStringAndSize(e->p, e->len);
}

/* _flats_append_py: the entry e[0..n) packed at the end of `chunk`.  1 done, 0 its data would
 * pass FLATS_CHUNK_BYTES (nothing changed), -1 error. */
static int flats_append_elems(PyObject *chunk, const FlatElem *e, Py_ssize_t n) {
    PyObject *master, *data, *ends;
    if (!flats_parts(chunk, &master, &data, &ends))
        return -1;
    if (master == Py_None && n % 2 == 0) { /* the chunk's first entry: its fields are the master's */
        PyObject *fields = PyTuple_New(n / 2);
        if (fields == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < n / 2; i++) {
            PyObject *f = elem_object(&e[2 * i]);
            if (f == NULL) {
                Py_DECREF(fields);
                return -1;
            }
            PyTuple_SET_ITEM(fields, i, f);
        }
        Py_XSETREF(*slot_at(chunk, g_flats_offsets[PF_MASTER]), fields);
        master = fields;
    }
    int same;
    long long size = packed_entry_size(master, e, n, &same);
    Py_ssize_t at = PyByteArray_GET_SIZE(data), n_ends = PyByteArray_GET_SIZE(ends);
    if (at + size > FLATS_CHUNK_BYTES)
        return 0;
    if (PyByteArray_Resize(ends, n_ends + 4) < 0)
        return -1;
    if (PyByteArray_Resize(data, at + size) < 0) {
        PyObject *type, *err, *tb;
        PyErr_Fetch(&type, &err, &tb);
        PyByteArray_Resize(ends, n_ends); /* (a shrink) */
        PyErr_Restore(type, err, tb);
        return -1;
    }
    packed_entry_put((unsigned char *)PyByteArray_AS_STRING(data) + at, e, n, same);
    uint32_t end = (uint32_t)(at + size);
    memcpy(PyByteArray_AS_STRING(ends) + n_ends, &end, 4);
    return 1;
}

/* A list's elements for the packing: elems (on the stack up to FLAT_STACK, else *heap, to
 * PyMem_Free), or NULL: an error (TypeError/MemoryError) when `strict`, else none (not a
 * list of bytes; no exception). */
#define FLAT_STACK 16
static FlatElem *flat_elems_of(PyObject *flat, FlatElem *stack, FlatElem **heap, int bytearrays, int strict) {
    *heap = NULL;
    if (!PyList_CheckExact(flat))
        goto not_one;
    Py_ssize_t n = PyList_GET_SIZE(flat);
    FlatElem *elems = stack;
    if (n > FLAT_STACK && (elems = *heap = PyMem_New(FlatElem, n)) == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (flat_elems(flat, elems, bytearrays))
        return elems;
    PyMem_Free(*heap);
    *heap = NULL;
not_one:
    if (strict)
        PyErr_SetString(PyExc_TypeError, "a stream entry is a list of bytes");
    return NULL;
}

/* flats_append_elems of a list of bytes/bytearray (TypeError for anything else). */
static int flats_append_c(PyObject *chunk, PyObject *flat) {
    FlatElem stack[FLAT_STACK], *heap;
    FlatElem *elems = flat_elems_of(flat, stack, &heap, 1, 1);
    if (elems == NULL)
        return -1;
    int r = flats_append_elems(chunk, elems, PyList_GET_SIZE(flat));
    PyMem_Free(heap);
    return r;
}

/* flats_append(chunk, flat) -> bool: _flats_append_py. */
static PyObject *py_flats_append(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "flats_append(chunk, flat)");
        return NULL;
    }
    int r = flats_append_c(args[0], args[1]);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* flats_unpack(data, ends, master, start, stop) -> [flat, ...]: _unpack_flats_py. */
static PyObject *py_flats_unpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyByteArray_CheckExact(args[0]) || !PyByteArray_CheckExact(args[1]) ||
        (args[2] != Py_None && !PyTuple_CheckExact(args[2]))) {
        PyErr_SetString(PyExc_TypeError, "flats_unpack(data: bytearray, ends: bytearray, master: tuple | None, start, stop)");
        return NULL;
    }
    PyObject *data = args[0], *ends = args[1], *master = args[2];
    Py_ssize_t start = PyLong_AsSsize_t(args[3]), stop = PyLong_AsSsize_t(args[4]);
    if ((start == -1 || stop == -1) && PyErr_Occurred())
        return NULL;
    Py_ssize_t count = PyByteArray_GET_SIZE(ends) / 4;
    if (start < 0 || stop > count || start > stop) {
        PyErr_SetString(PyExc_IndexError, "flats_unpack: entries out of range");
        return NULL;
    }
    const unsigned char *base = (const unsigned char *)PyByteArray_AS_STRING(data);
    const unsigned char *end = base + PyByteArray_GET_SIZE(data);
    const unsigned char *p = base + (start ? flats_end(ends, start - 1) : 0);
    PyObject *out = PyList_New(stop - start);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t j = start; j < stop; j++) {
        unsigned long long header, size;
        if (p > end || varint_get(&p, end, &header) < 0)
            goto corrupt;
        int same = (int)(header & 1);
        unsigned long long n = header >> 1;
        if (n > (unsigned long long)(end - p) * 2 + 2 || (same && (master == Py_None || n != 2 * (unsigned long long)PyTuple_GET_SIZE(master))))
            goto corrupt;
        PyObject *flat = PyList_New((Py_ssize_t)n);
        if (flat == NULL)
            goto error;
        PyList_SET_ITEM(out, j - start, flat);
        for (Py_ssize_t i = 0; i < (Py_ssize_t)n; i++) {
            PyObject *item;
            if (same && i % 2 == 0) {
                item = Py_NewRef(PyTuple_GET_ITEM(master, i / 2));
            } else {
                if (varint_get(&p, end, &size) < 0 || size > (unsigned long long)(end - p))
                    goto corrupt;
                if ((item = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)size)) == NULL)
                    goto error;
                p += size;
            }
            PyList_SET_ITEM(flat, i, item);
        }
    }
    return out;
corrupt:
    PyErr_SetString(PyExc_ValueError, "flats_unpack: not a packed stream chunk");
error:
    Py_DECREF(out); /* (unset items are NULL: list dealloc skips them) */
    return NULL;
}

/* flats_delete(chunk, start, stop): _flats_delete_py (entries start to stop, not included). */
static PyObject *py_flats_delete(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *master, *data, *ends;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "flats_delete(chunk, start, stop)");
        return NULL;
    }
    if (!flats_parts(args[0], &master, &data, &ends))
        return NULL;
    Py_ssize_t start = PyLong_AsSsize_t(args[1]), stop = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || stop == -1) && PyErr_Occurred())
        return NULL;
    Py_ssize_t count = PyByteArray_GET_SIZE(ends) / 4;
    if (start < 0 || stop > count || start > stop) {
        PyErr_SetString(PyExc_IndexError, "flats_delete: entries out of range");
        return NULL;
    }
    if (start == stop)
        Py_RETURN_NONE;
    uint32_t first = start ? flats_end(ends, start - 1) : 0, last = flats_end(ends, stop - 1);
    Py_ssize_t size = PyByteArray_GET_SIZE(data);
    if (first > last || last > size) {
        PyErr_SetString(PyExc_ValueError, "flats_delete: not a packed stream chunk");
        return NULL;
    }
    uint32_t shift = last - first;
    char *d = PyByteArray_AS_STRING(data), *e = PyByteArray_AS_STRING(ends);
    memmove(d + first, d + last, size - last);
    for (Py_ssize_t j = stop; j < count; j++) {
        uint32_t end;
        memcpy(&end, e + 4 * j, 4);
        end -= shift;
        memcpy(e + 4 * (j - (stop - start)), &end, 4);
    }
    if (PyByteArray_Resize(data, size - shift) < 0 || PyByteArray_Resize(ends, 4 * (count - (stop - start))) < 0)
        return NULL; /* (shrinks) */
    Py_RETURN_NONE;
}

/* streams.IdMap's slots (or an EntryMap's, whose chunks are PackedFlats), checked to be its
 * layout: 1 (parts set, borrowed), 0 not one. */
typedef struct {
    PyObject *owner, *keys, *vals, *maxes; /* (owner: the IdMap) */
    Py_ssize_t len;                        /* its _len */
    int packed;                            /* an EntryMap */
} IdMapParts;

static int idmap_parts(PyObject *m, IdMapParts *parts) {
    if (g_idmap_type == NULL || ((PyObject *)Py_TYPE(m) != g_idmap_type && (PyObject *)Py_TYPE(m) != g_entrymap_type))
        return 0;
    parts->packed = (PyObject *)Py_TYPE(m) == g_entrymap_type;
    if (parts->packed && !g_flats_slots_ok)
        return 0;
    parts->owner = m;
    PyObject *len = *slot_at(m, g_idmap_offsets[IM_LEN]);
    parts->keys = *slot_at(m, g_idmap_offsets[IM_KEYS]);
    parts->vals = *slot_at(m, g_idmap_offsets[IM_VALS]);
    parts->maxes = *slot_at(m, g_idmap_offsets[IM_MAXES]);
    if (len == NULL || parts->keys == NULL || parts->vals == NULL || parts->maxes == NULL || !PyLong_CheckExact(len) ||
        !PyList_CheckExact(parts->keys) || !PyList_CheckExact(parts->vals) || !PyByteArray_CheckExact(parts->maxes))
        return 0;
    parts->len = PyLong_AsSsize_t(len);
    if (parts->len < 0) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t n = PyList_GET_SIZE(parts->vals);
    if (PyList_GET_SIZE(parts->keys) != n || PyByteArray_GET_SIZE(parts->maxes) != n * ID_RECORD)
        return 0;
    if (n && (!PyByteArray_CheckExact(PyList_GET_ITEM(parts->keys, n - 1)) ||
              !(parts->packed ? (PyObject *)Py_TYPE(PyList_GET_ITEM(parts->vals, n - 1)) == g_flats_type
                              : PyList_CheckExact(PyList_GET_ITEM(parts->vals, n - 1)))))
        return 0;
    return 1;
}

/* The map's last key as (ms, seq): 1, 0 when it is empty, -1 a key that is not a record (no
 * exception: not a layout this code writes to). */
static int idmap_last_key(const IdMapParts *parts, unsigned long long *ms, unsigned long long *seq) {
    Py_ssize_t n = PyByteArray_GET_SIZE(parts->maxes);
    if (n == 0)
        return 0;
    id_of_record((const unsigned char *)PyByteArray_AS_STRING(parts->maxes) + n - ID_RECORD, ms, seq);
    return 1;
}

/* collector.untrack(obj) for a part a stored value grows (a chunk of an IdMap, a stream node):
 * the same hiding Database.add gives the parts it finds, where everything obj refers to is
 * atomic or hidden (a stored stream's entries are; a full collection would otherwise visit
 * every entry of every chunk made since the value was stored).  0, or -1 on error. */
static PyObject *g_untrack; /* configure() */

static int untrack_new(PyObject *obj) {
    if (g_untrack == NULL)
        return 0;
    PyObject *r = PyObject_CallOneArg(g_untrack, obj);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* IdMap.__setitem__ of a key past every key (the caller checked): into the last chunk, or a
 * new one when that holds CHUNK keys, and _len counts it.  0, or -1 on error (an allocation: the
 * map may then be left with the key in its chunks but not in _len, and the loop stops with the
 * error). */
static int idmap_append(const IdMapParts *parts, const unsigned char *record, PyObject *value) {
    Py_ssize_t n = PyList_GET_SIZE(parts->vals);
    PyObject *last_vals = n ? PyList_GET_ITEM(parts->vals, n - 1) : NULL;
    if (last_vals != NULL && PyList_GET_SIZE(last_vals) < g_idmap_chunk) {
        if (records_append(PyList_GET_ITEM(parts->keys, n - 1), record) < 0 || PyList_Append(last_vals, value) < 0)
            return -1;
        memcpy(PyByteArray_AS_STRING(parts->maxes) + (n - 1) * ID_RECORD, record, ID_RECORD);
    } else {
        PyObject *keys = PyByteArray_FromStringAndSize((const char *)record, ID_RECORD), *vals = PyList_New(1);
        if (keys == NULL || vals == NULL) {
            Py_XDECREF(keys);
            Py_XDECREF(vals);
            return -1;
        }
        PyList_SET_ITEM(vals, 0, Py_NewRef(value));
        int bad = untrack_new(vals) < 0 || PyList_Append(parts->keys, keys) < 0 || PyList_Append(parts->vals, vals) < 0 ||
                  records_append(parts->maxes, record) < 0;
        Py_DECREF(keys);
        Py_DECREF(vals);
        if (bad)
            return -1;
    }
    return slot_set_ll(parts->owner, g_idmap_offsets[IM_LEN], parts->len + 1);
}

/* The slot of `owner` holding the bytearray `old` set to a copy of it of its exact size. */
static int exact_copy(PyObject *owner, Py_ssize_t offset, PyObject *old) {
    PyObject *copy = PyByteArray_FromStringAndSize(PyByteArray_AS_STRING(old), PyByteArray_GET_SIZE(old));
    if (copy == NULL)
        return -1;
    Py_XSETREF(*slot_at(owner, offset), copy);
    return 0;
}

/* idmap_append of an EntryMap (EntryMap._add_to_last): the entry e[0..n_elems) packed into the
 * last chunk while it has fewer than CHUNK entries and room for its bytes, else into a new
 * PackedFlats. */
static int idmap_append_packed(const IdMapParts *parts, const unsigned char *record, const FlatElem *e, Py_ssize_t n_elems) {
    Py_ssize_t n = PyList_GET_SIZE(parts->vals);
    PyObject *last_vals = n ? PyList_GET_ITEM(parts->vals, n - 1) : NULL, *master, *data, *ends;
    int added = 0;
    if (last_vals != NULL) {
        if (!flats_parts(last_vals, &master, &data, &ends))
            return -1;
        if (PyByteArray_GET_SIZE(ends) / 4 < g_idmap_chunk && (added = flats_append_elems(last_vals, e, n_elems)) < 0)
            return -1;
    }
    if (added) {
        if (records_append(PyList_GET_ITEM(parts->keys, n - 1), record) < 0)
            return -1; /* (the value is in; the map is left as the error finds it) */
        memcpy(PyByteArray_AS_STRING(parts->maxes) + (n - 1) * ID_RECORD, record, ID_RECORD);
    } else {
        /* EntryMap._seal_last: the full chunk's bytearrays at their exact size */
        if (last_vals != NULL && (exact_copy(last_vals, g_flats_offsets[PF_DATA], data) < 0 ||
                                  exact_copy(last_vals, g_flats_offsets[PF_ENDS], ends) < 0))
            return -1;
        if (last_vals != NULL) {
            PyObject *keys = PyList_GET_ITEM(parts->keys, n - 1);
            PyObject *sealed = PyByteArray_FromStringAndSize(PyByteArray_AS_STRING(keys), PyByteArray_GET_SIZE(keys));
            if (sealed == NULL || PyList_SetItem(parts->keys, n - 1, sealed) < 0)
                return -1;
        }
        PyObject *keys = PyByteArray_FromStringAndSize((const char *)record, ID_RECORD), *chunk = PyObject_CallNoArgs(g_flats_type);
        int bad = keys == NULL || chunk == NULL;
        if (!bad) {
            int r = flats_append_elems(chunk, e, n_elems);
            if (r == 0)
                PyErr_SetString(PyExc_OverflowError, "a stream entry over 4 GiB");
            bad = r <= 0 || untrack_new(chunk) < 0 || PyList_Append(parts->keys, keys) < 0 ||
                  PyList_Append(parts->vals, chunk) < 0 || records_append(parts->maxes, record) < 0;
        }
        Py_XDECREF(keys);
        Py_XDECREF(chunk);
        if (bad)
            return -1;
    }
    return slot_set_ll(parts->owner, g_idmap_offsets[IM_LEN], parts->len + 1);
}

/* The master fields of a stream's last node (borrowed), or NULL (no node, or a layout not
 * known). */
static PyObject *last_master_fields(PyObject *value) {
    PyObject *nodes = *slot_at(value, g_stream_offsets[SV_NODES]);
    IdMapParts np;
    if (nodes == NULL || !idmap_parts(nodes, &np) || PyList_GET_SIZE(np.vals) == 0)
        return NULL;
    PyObject *last = PyList_GET_ITEM(np.vals, PyList_GET_SIZE(np.vals) - 1);
    if (PyList_GET_SIZE(last) == 0)
        return NULL;
    PyObject *node = PyList_GET_ITEM(last, PyList_GET_SIZE(last) - 1);
    if ((PyObject *)Py_TYPE(node) != g_node_type)
        return NULL;
    PyObject *fields = *slot_at(node, g_node_offsets[SN_MASTER_FIELDS]);
    return fields != NULL && PyList_CheckExact(fields) ? fields : NULL;
}

/* ID delta as streams.StreamNode.entry_size computes it: uint64 difference read as int64. */
static long long id_delta(unsigned long long a, unsigned long long b) {
    return (long long)(a - b);
}

/* StreamValue.append (streamAppendItem after the ID was validated) on a stream whose node
 * layout is built, `id` being (ms, seq): the entry goes into the last node, or a new one when
 * that is full by stream-node-max-bytes/-entries, with the node's listpack bytes counted as
 * StreamNode.entry_size counts them (master-field compression: an entry with the master's
 * fields stores only its values), then the length, last/first ID and entries-added counter.
 * The entries and the nodes are IdMaps: the entry is appended to them (an ID past their last
 * keys; anything else is the Python reference's).
 * 1 done, 0 not its case (nothing changed: the Python reference runs), -1 error. */
static int stream_append_id(PyObject *value, PyObject *id, unsigned long long ms, unsigned long long seq, const FlatElem *flat,
                            Py_ssize_t n_flat, long long max_bytes, long long max_entries) {
    if (!g_stream_slots_ok || g_stream_type == NULL || (PyObject *)Py_TYPE(value) != g_stream_type)
        return 0;
    PyObject *entries = *slot_at(value, g_stream_offsets[SV_ENTRIES]);
    PyObject *nodes = *slot_at(value, g_stream_offsets[SV_NODES]);
    PyObject *added_obj = *slot_at(value, g_stream_offsets[SV_ADDED]);
    IdMapParts ep, np;
    if (entries == NULL || nodes == NULL || added_obj == NULL || !PyLong_CheckExact(added_obj) ||
        !idmap_parts(entries, &ep) || !idmap_parts(nodes, &np) || !ep.packed || np.packed)
        return 0; /* (_nodes None: the layout is built from the entries first, in Python) */
    if (n_flat < 2 || n_flat % 2)
        return 0;
    Py_ssize_t nfields = n_flat / 2;
    long long total = 0;
    for (Py_ssize_t i = 0; i < n_flat; i++)
        total += flat[i].len;
    unsigned long long added, last_ms, last_seq;
    int ok;
    if ((ok = native_u64_of(added_obj, &added)) <= 0)
        return ok;
    /* past the last entry (an IdMap append), and the nodes' keys are entries' IDs */
    if ((ok = idmap_last_key(&ep, &last_ms, &last_seq)) < 0 || (ok && (ms < last_ms || (ms == last_ms && seq <= last_seq))))
        return 0;
    if (max_bytes <= 0 || max_bytes > STREAM_LISTPACK_MAX_SIZE)
        max_bytes = STREAM_LISTPACK_MAX_SIZE;

    /* the last node, unless it is full (StreamValue._place) */
    PyObject *node = NULL;
    unsigned long long master_ms = ms, master_seq = seq;
    long long live = 0, deleted = 0, entries_bytes = 0, fields_bytes = 0;
    Py_ssize_t n_nodes = PyList_GET_SIZE(np.vals);
    if (n_nodes) {
        if (idmap_last_key(&np, &master_ms, &master_seq) <= 0 ||
            (master_ms > ms || (master_ms == ms && master_seq >= seq)))
            return 0;
        PyObject *last_vals = PyList_GET_ITEM(np.vals, n_nodes - 1);
        if (PyList_GET_SIZE(last_vals) == 0)
            return 0;
        node = PyList_GET_ITEM(last_vals, PyList_GET_SIZE(last_vals) - 1);
        if ((PyObject *)Py_TYPE(node) != g_node_type)
            return 0;
        PyObject *fields = *slot_at(node, g_node_offsets[SN_MASTER_FIELDS]);
        if (fields == NULL || !PyList_CheckExact(fields) ||
            slot_ll(node, g_node_offsets[SN_LIVE], &live) < 0 || slot_ll(node, g_node_offsets[SN_DELETED], &deleted) < 0 ||
            slot_ll(node, g_node_offsets[SN_ENTRIES_BYTES], &entries_bytes) < 0 ||
            slot_ll(node, g_node_offsets[SN_FIELDS_BYTES], &fields_bytes) < 0) {
            PyErr_Clear();
            return 0;
        }
        long long bytes = 6 + lp_int_entry_size(live) + lp_int_entry_size(deleted) +
                          lp_int_entry_size((long long)PyList_GET_SIZE(fields)) + fields_bytes + 2 + entries_bytes + 1;
        if (bytes + total >= max_bytes || (max_entries && live + deleted >= max_entries))
            node = NULL;
    }
    /* nothing declines from here.  The ID holds only ints: out of the collector's sight, as
     * collector.stored puts a stored value's parts */
    PyObject_GC_UnTrack(id);
    int fresh = node == NULL;
    if (fresh) { /* StreamNode(entry_id, fields): its constructor counts the master fields */
        PyObject *fields = PyList_New(nfields);
        if (fields == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < nfields; i++) {
            PyObject *f = elem_object(&flat[2 * i]);
            if (f == NULL) {
                Py_DECREF(fields);
                return -1;
            }
            PyList_SET_ITEM(fields, i, f);
        }
        node = PyObject_CallFunctionObjArgs(g_node_type, id, fields, NULL);
        Py_DECREF(fields);
        if (node == NULL)
            return -1;
        if (untrack_new(node) < 0) {
            Py_DECREF(node);
            return -1;
        }
        if (slot_ll(node, g_node_offsets[SN_LIVE], &live) < 0 || slot_ll(node, g_node_offsets[SN_DELETED], &deleted) < 0 ||
            slot_ll(node, g_node_offsets[SN_ENTRIES_BYTES], &entries_bytes) < 0) {
            Py_DECREF(node);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "StreamNode() made a node without its counters");
            return -1;
        }
        master_ms = ms;
        master_seq = seq;
    } else {
        Py_INCREF(node);
    }

    /* the entry's listpack bytes (StreamNode.entry_size) */
    int result = -1;
    PyObject *master_fields = *slot_at(node, g_node_offsets[SN_MASTER_FIELDS]);
    int same = PyList_GET_SIZE(master_fields) == nfields;
    for (Py_ssize_t i = 0; same && i < nfields; i++) {
        PyObject *m = PyList_GET_ITEM(master_fields, i);
        if (flat[2 * i].obj == m)
            continue;
        if (PyBytes_CheckExact(m)) {
            same = flat[2 * i].len == PyBytes_GET_SIZE(m) && memcmp(flat[2 * i].p, PyBytes_AS_STRING(m), flat[2 * i].len) == 0;
        } else { /* (a master field of another type: compared as Python compares it) */
            PyObject *f = elem_object(&flat[2 * i]);
            same = f == NULL ? -1 : PyObject_RichCompareBool(f, m, Py_EQ);
            Py_XDECREF(f);
        }
        if (same < 0)
            goto done;
    }
    long long size = 2 + lp_int_entry_size(id_delta(ms, master_ms)) + lp_int_entry_size(id_delta(seq, master_seq));
    long long lp_count;
    if (same) {
        for (Py_ssize_t i = 1; i < n_flat; i += 2)
            size += lp_entry_size(flat[i].p, flat[i].len);
        lp_count = nfields + 3;
    } else {
        size += lp_int_entry_size(nfields);
        for (Py_ssize_t i = 0; i < n_flat; i++)
            size += lp_entry_size(flat[i].p, flat[i].len);
        lp_count = 2 * nfields + 4;
    }
    size += lp_int_entry_size(lp_count);

    /* from here on the value changes */
    unsigned char record[ID_RECORD];
    id_record(record, ms, seq);
    if (fresh && idmap_append(&np, record, node) < 0)
        goto done;
    if (slot_set_ll(node, g_node_offsets[SN_ENTRIES_BYTES], entries_bytes + size) < 0 ||
        slot_set_ll(node, g_node_offsets[SN_LIVE], live + 1) < 0 || idmap_append_packed(&ep, record, flat, n_flat) < 0)
        goto done;
    Py_XSETREF(*slot_at(node, g_node_offsets[SN_LAST_ID]), Py_NewRef(id)); /* (StreamNode.add_id) */
    PyObject *counter = PyLong_FromUnsignedLongLong(added + 1); /* a uint64_t: wraps to 0 */
    if (counter == NULL)
        goto done;
    Py_XSETREF(*slot_at(value, g_stream_offsets[SV_ADDED]), counter);
    Py_XSETREF(*slot_at(value, g_stream_offsets[SV_LAST_ID]), Py_NewRef(id));
    if (ep.len == 0) /* (its count before this entry) */
        Py_XSETREF(*slot_at(value, g_stream_offsets[SV_FIRST_ID]), Py_NewRef(id));
    result = 1;
done:
    Py_DECREF(node);
    return result;
}

/* stream_append(value, entry_id, flat, max_bytes, max_entries) -> bool: StreamValue.append
 * done, or False (the Python reference's case: nothing was changed). */
static PyObject *py_stream_append(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "stream_append(value, entry_id, flat, max_bytes, max_entries)");
        return NULL;
    }
    long long max_bytes = PyLong_AsLongLong(args[3]), max_entries = PyLong_AsLongLong(args[4]);
    if ((max_bytes == -1 || max_entries == -1) && PyErr_Occurred())
        return NULL;
    unsigned long long ms, seq;
    int r = id_parts(args[1], &ms, &seq);
    FlatElem stack[FLAT_STACK], *heap = NULL;
    FlatElem *elems = r > 0 ? flat_elems_of(args[2], stack, &heap, 0, 0) : NULL;
    if (elems == NULL && PyErr_Occurred())
        return NULL;
    if (elems != NULL) /* (not a list of bytes: the Python reference's) */
        r = stream_append_id(args[0], args[1], ms, seq, elems, PyList_GET_SIZE(args[2]), max_bytes, max_entries);
    else if (r > 0)
        r = 0;
    PyMem_Free(heap);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

/* The bisect_left (right: bisect_right) place of the record `key` among `count` sorted records. */
static Py_ssize_t records_bisect(const unsigned char *base, Py_ssize_t count, const unsigned char *key, int right) {
    Py_ssize_t lo = 0, hi = count;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        int c = memcmp(base + mid * ID_RECORD, key, ID_RECORD);
        if (c < 0 || (right && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* bisect_records(records, key[, right]) -> int: streams._bisect_records_py (the bisect_left, or
 * bisect_right, place of the 16-byte record key among a bytes or bytearray of sorted records). */
static PyObject *py_bisect_records(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 2 || nargs > 3 || !(PyByteArray_CheckExact(args[0]) || PyBytes_CheckExact(args[0])) || !PyBytes_CheckExact(args[1]) ||
        PyBytes_GET_SIZE(args[1]) != ID_RECORD) {
        PyErr_SetString(PyExc_TypeError, "bisect_records(records, key, right): bytes or bytearray, a 16-byte record, bool");
        return NULL;
    }
    int right = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    if (right < 0)
        return NULL;
    const char *base = PyByteArray_CheckExact(args[0]) ? PyByteArray_AS_STRING(args[0]) : PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyByteArray_CheckExact(args[0]) ? PyByteArray_GET_SIZE(args[0]) : PyBytes_GET_SIZE(args[0]);
    return PyLong_FromSsize_t(records_bisect((const unsigned char *)base, size / ID_RECORD,
                                             (const unsigned char *)PyBytes_AS_STRING(args[1]), right));
}

/* ------------------------------------------------------------------ a stream node's listpack */

/* payload/stream.py's _node_listpack (its reference, which runs under DUMPLING_PURE and for
 * whatever this declines): the listpack of one radix-tree node written straight from the
 * packed entries of the EntryMap's chunks over the node's ID range, its tombstones merged in ID
 * order; every entry through _lpentry.h's encoder (the one lists use).  stream_node_listpack
 * writes one node; stream_nodes_body every node of a stream's DUMP/RDB body, framed. */

/* The listpack is written into a NativeBuf (_native.h; no Python code runs meanwhile, so the
 * borrowed chunk and element pointers stay valid), header room first; a node is ~4 KB by
 * default. */
#define LPBODY_FIRST 8192
#define LP_HEADER 6

typedef struct {
    const unsigned char *p;
    size_t n;
} ElemSpan;

static inline int span_equal(const ElemSpan *a, const ElemSpan *b) {
    return a->n == b->n && (a->p == b->p || a->n == 0 || (a->p[a->n - 1] == b->p[a->n - 1] && memcmp(a->p, b->p, a->n) == 0));
}

/* One entry (elements e[0..n), n even; flags 0 or FLAG_DELETED) as _node_listpack writes it:
 * flags (SAMEFIELDS when its fields are the node's master fields m[0..nm): `same` 1 or 0 when
 * the caller knows, -1 to compare them), the ID deltas, [numfields, fields,] values, lp-count.
 * *elements counts the listpack's entries.  Written through a local pointer: stores through
 * b->buf would make the compiler read b->len again after each byte. */
static inline int node_entry_put(NativeBuf *b, int flags, int64_t ms_delta, int64_t seq_delta, const ElemSpan *e, size_t n,
                          const ElemSpan *m, size_t nm, int same, long long *elements) {
    size_t k = n / 2, room = 40 + 10 * n;
    if (same < 0) {
        same = k == nm;
        for (size_t i = 0; same && i < k; i++)
            same = span_equal(&e[2 * i], &m[i]);
    }
    for (size_t i = 0; i < n; i++)
        room += e[i].n;
    if (native_buf_reserve(b, room, LPBODY_FIRST) < 0)
        return -1;
    unsigned char *w = (unsigned char *)b->buf + b->len;
    w = lpe_put_int(w, flags | (same ? 2 : 0));
    w = lpe_put_int(w, ms_delta);
    w = lpe_put_int(w, seq_delta);
    long long lp_count;
    if (same) {
        for (size_t i = 1; i < n; i += 2)
            w = lpe_put(w, e[i].p, e[i].n);
        lp_count = (long long)k + 3;
    } else {
        w = lpe_put_int(w, (int64_t)k);
        for (size_t i = 0; i < n; i++)
            w = lpe_put(w, e[i].p, e[i].n);
        lp_count = 2 * (long long)k + 4;
    }
    w = lpe_put_int(w, lp_count);
    b->len = (size_t)(w - (unsigned char *)b->buf);
    *elements += lp_count + 1;
    return 0;
}

/* Room for n element spans in *spans (of *cap). */
static int spans_room(ElemSpan **spans, size_t *cap, size_t n) {
    if (n <= *cap)
        return 0;
    ElemSpan *grown = PyMem_Realloc(*spans, (n + 16) * sizeof(ElemSpan));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *spans = grown;
    *cap = n + 16;
    return 0;
}

/* The spans of a list of bytes/bytearray with an even count: 1, or 0 (not one). */
static int list_spans(PyObject *flat, ElemSpan **spans, size_t *cap, size_t *n) {
    if (!PyList_CheckExact(flat) || PyList_GET_SIZE(flat) % 2)
        return 0;
    *n = (size_t)PyList_GET_SIZE(flat);
    if (spans_room(spans, cap, *n) < 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        const char *p;
        Py_ssize_t len;
        if (!elem_bytes(PyList_GET_ITEM(flat, (Py_ssize_t)i), &p, &len))
            return 0;
        (*spans)[i].p = (const unsigned char *)p;
        (*spans)[i].n = (size_t)len;
    }
    return 1;
}

static inline int id_before(unsigned long long ams, unsigned long long aseq, unsigned long long bms, unsigned long long bseq) {
    return ams < bms || (ams == bms && aseq < bseq);
}

/* The packed entry at *p (advanced past it) of a chunk whose master fields are cm[0..ncm) (ncm
 * -1: none), as spans: in `local` (room for SPANS_LOCAL) when they fit, else in *spans (of
 * *cap); *e the spans used, *same its packed `same` bit (its fields are the chunk's master
 * fields): 1, or 0 (an odd count: not this code's case), -1 corrupt (ValueError). */
#define SPANS_LOCAL 16
static inline int packed_spans(const unsigned char **p, const unsigned char *end, const ElemSpan *cm, Py_ssize_t ncm,
                               ElemSpan *local, ElemSpan **spans, size_t *cap, ElemSpan **e, size_t *n, int *same) {
    unsigned long long header, size;
    const unsigned char *q = *p;
    if (q < end && *q < 0x80) { /* (a one-byte number: varint_get's common case, inline) */
        header = *q++;
    } else if (varint_get(&q, end, &header) < 0) {
        goto corrupt;
    }
    *same = (int)(header & 1);
    unsigned long long count = header >> 1;
    if (count > (unsigned long long)(end - q) * 2 + 2 || (*same && (ncm < 0 || count != 2 * (unsigned long long)ncm)))
        goto corrupt;
    if (count % 2)
        return 0;
    ElemSpan *s = local;
    if (count > SPANS_LOCAL) {
        if (spans_room(spans, cap, (size_t)count) < 0)
            return -1;
        s = *spans;
    }
    for (size_t i = 0; i < (size_t)count; i++) {
        if (*same && i % 2 == 0) {
            s[i] = cm[i / 2];
            continue;
        }
        if (q < end && *q < 0x80) {
            size = *q++;
        } else if (varint_get(&q, end, &size) < 0) {
            goto corrupt;
        }
        if (size > (unsigned long long)(end - q))
            goto corrupt;
        s[i].p = q;
        s[i].n = (size_t)size;
        q += size;
    }
    *p = q;
    *e = s;
    *n = (size_t)count;
    return 1;
corrupt:
    PyErr_SetString(PyExc_ValueError, "stream_node_listpack: not a packed stream chunk");
    return -1;
}

/* The common entry straight from its packed bytes at *p (advanced past it; it ends at
 * entry_end, the chunk's `ends` record), in one pass with no spans: node_entry_put's bytes for a
 * live entry (`cm_same`: the chunk's master fields cm[0..ncm) are the node's, m[0..nm)).  An
 * entry with other fields is written as such while its fields are compared with the node's;
 * should they all match, nothing is kept.  1 written, 0 the general path's (fields equal to the
 * node's, anything unusual, corrupt bytes: packed_spans words the error), -1 error. */
static inline int entry_put_packed(NativeBuf *b, const unsigned char **p, const unsigned char *entry_end, const ElemSpan *cm,
                                   Py_ssize_t ncm, int cm_same, int64_t ms_delta, int64_t seq_delta, const ElemSpan *m, size_t nm,
                                   long long *elements) {
    const unsigned char *q = *p;
    if (entry_end <= q || *q >= 0x80)
        return 0;
    int same = *q & 1;
    size_t count = (size_t)(*q++ >> 1), k = count / 2;
    if (count % 2 || count > SPANS_LOCAL || (same && (size_t)ncm != k))
        return 0;
    size_t room = (size_t)(entry_end - q) + 10 * count + 60;
    for (size_t i = 0; same && !cm_same && i < k; i++)
        room += cm[i].n;
    if (native_buf_reserve(b, room, LPBODY_FIRST) < 0)
        return -1;
    unsigned char *w = (unsigned char *)b->buf + b->len;
    long long lp_count;
    if (same && cm_same) {
        w = lpe_put_int(w, 2);
        w = lpe_put_int(w, ms_delta);
        w = lpe_put_int(w, seq_delta);
        for (size_t i = 0; i < k; i++) {
            size_t n;
            if (q >= entry_end || (n = *q++) >= 0x80 || n > (size_t)(entry_end - q))
                return 0;
            w = lpe_put(w, q, n);
            q += n;
        }
        lp_count = (long long)k + 3;
    } else {
        int equal = !same && k == nm; /* (so far: the fields compared are the node's) */
        w = lpe_put_int(w, 0);
        w = lpe_put_int(w, ms_delta);
        w = lpe_put_int(w, seq_delta);
        w = lpe_put_int(w, (int64_t)k);
        for (size_t i = 0; i < count; i++) {
            ElemSpan e;
            if (same && i % 2 == 0) {
                e = cm[i / 2];
            } else {
                if (q >= entry_end || (e.n = *q++) >= 0x80 || e.n > (size_t)(entry_end - q))
                    return 0;
                e.p = q;
                q += e.n;
                if (equal && i % 2 == 0)
                    equal = span_equal(&e, &m[i / 2]);
            }
            w = lpe_put(w, e.p, e.n);
        }
        if (equal)
            return 0;
        lp_count = 2 * (long long)k + 4;
    }
    w = lpe_put_int(w, lp_count);
    b->len = (size_t)(w - (unsigned char *)b->buf);
    *elements += lp_count + 1;
    *p = q;
    return 1;
}

/* A packed element (a one-byte length and its bytes, before `qe`) written at *w as a
 * listpack entry (room reserved): 1, or 0 (another form: the caller's slower path). */
static inline int packed_elem_put(unsigned char **w, const unsigned char **q, const unsigned char *qe, ElemSpan *e) {
    const unsigned char *s = *q;
    if (s >= qe)
        return 0;
    size_t n = *s++;
    if (n >= 0x80 || n > (size_t)(qe - s))
        return 0;
    e->p = s;
    e->n = n;
    *w = lpe_put(*w, s, n);
    *q = s + n;
    return 1;
}

/* One node's listpack being written: the listpack (header room, then entries), the master ID
 * and fields, the elements counted, and the tombstones (a sorted list of (id, flat)) still to
 * merge, the next one's ID and spans.  Its buffers are kept from node to node. */
typedef struct {
    NativeBuf body;
    unsigned long long master_ms, master_seq;
    ElemSpan *m; /* the master fields */
    size_t nm, m_cap;
    long long elements;
    PyObject *dead; /* (a list, or NULL) */
    Py_ssize_t nd, di;
    int have_dead;
    unsigned long long dms, dseq;
    ElemSpan *dspans, *cm, *spans; /* a tombstone's elements; a chunk's master fields; an entry's */
    size_t dn, dcap, cm_cap, cap;
} NodeWriter;

static void writer_free(NodeWriter *w) {
    PyMem_Free(w->body.buf);
    PyMem_Free(w->m);
    PyMem_Free(w->dspans);
    PyMem_Free(w->cm);
    PyMem_Free(w->spans);
}

/* The tombstone di (if any) read into the writer: 1, 0 not one (an ID, a list of bytes in
 * pairs), -1 error. */
static int writer_load_dead(NodeWriter *w) {
    w->have_dead = 0;
    if (w->di >= w->nd)
        return 1;
    PyObject *item = PyList_GET_ITEM(w->dead, w->di);
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
        return 0;
    int r = id_parts(PyTuple_GET_ITEM(item, 0), &w->dms, &w->dseq);
    if (r > 0)
        r = list_spans(PyTuple_GET_ITEM(item, 1), &w->dspans, &w->dcap, &w->dn);
    w->have_dead = r > 0;
    return r;
}

/* Write the tombstones before ID (ms, seq) (all of them: `all`).  1, 0 declined, -1 error. */
static int writer_put_dead(NodeWriter *w, unsigned long long ms, unsigned long long seq, int all) {
    while (w->have_dead && (all || id_before(w->dms, w->dseq, ms, seq))) {
        if (node_entry_put(&w->body, 1, (int64_t)(w->dms - w->master_ms), (int64_t)(w->dseq - w->master_seq), w->dspans, w->dn,
                           w->m, w->nm, -1, &w->elements) < 0)
            return -1;
        w->di++;
        int r = writer_load_dead(w);
        if (r <= 0)
            return r;
    }
    return 1;
}

/* entry_put_packed over a run of a chunk's entries j.. (stop excluded) with no tombstone to merge
 * among them: the write position, the buffer's end, the element count and the master ID in
 * locals from entry to entry.  It stops at an entry the general path must write (or whose
 * fields are the node's when the chunk's are not); the index of the first entry not written,
 * *p past the last written, or -1 (MemoryError). */
static Py_ssize_t entries_run(NodeWriter *nw, const unsigned char *krec, PyObject *ends, const unsigned char *base, size_t data_len,
                              const unsigned char **p, Py_ssize_t j, Py_ssize_t stop, int cm_same) {
    NativeBuf *b = &nw->body;
    unsigned char *w = (unsigned char *)b->buf + b->len, *lim = (unsigned char *)b->buf + b->cap;
    const unsigned char *q = *p, *ends_raw = (const unsigned char *)PyByteArray_AS_STRING(ends);
    const unsigned long long master_ms = nw->master_ms, master_seq = nw->master_seq;
    const ElemSpan *m = nw->m;
    const size_t nm = nw->nm;
    long long elements = nw->elements;
    for (; j < stop; j++) {
        uint32_t e_end;
        memcpy(&e_end, ends_raw + 4 * j, 4);
        const unsigned char *qe = base + e_end, *r = q;
        if (e_end > data_len || qe <= r || *r >= 0x80)
            break;
        size_t count = (size_t)(*r >> 1), k = count / 2;
        int same = *r++ & 1;
        if (count % 2 || (same && (!cm_same || nm != k)))
            break;
        size_t room = (size_t)(qe - r) + 10 * count + 60;
        if ((size_t)(lim - w) < room) {
            b->len = (size_t)(w - (unsigned char *)b->buf);
            if (native_buf_reserve(b, room, LPBODY_FIRST) < 0)
                return -1;
            w = (unsigned char *)b->buf + b->len;
            lim = (unsigned char *)b->buf + b->cap;
        }
        unsigned long long ms, seq;
        id_of_record(krec + j * ID_RECORD, &ms, &seq);
        unsigned char *start = w;
        ElemSpan e;
        w = lpe_put_int(w, same ? 2 : 0);
        w = lpe_put_int(w, (int64_t)(ms - master_ms));
        w = lpe_put_int(w, (int64_t)(seq - master_seq));
        long long lp_count;
        if (same) {
            size_t i = 0;
            while (i < k && packed_elem_put(&w, &r, qe, &e))
                i++;
            if (i < k) {
                w = start;
                break;
            }
            lp_count = (long long)k + 3;
        } else {
            int equal = k == nm; /* (so far: the fields read are the node's) */
            w = lpe_put_int(w, (int64_t)k);
            size_t i = 0;
            for (; i < count; i++) {
                if (!packed_elem_put(&w, &r, qe, &e))
                    break;
                if (equal && i % 2 == 0)
                    equal = span_equal(&e, &m[i / 2]);
            }
            if (i < count || equal) {
                w = start;
                break;
            }
            lp_count = 2 * (long long)k + 4;
        }
        w = lpe_put_int(w, lp_count);
        elements += lp_count + 1;
        q = r;
    }
    b->len = (size_t)(w - (unsigned char *)b->buf);
    nw->elements = elements;
    *p = q;
    return j;
}

/* Write the live entries of `entries` (an EntryMap's parts) from the master ID to (last_ms,
 * last_seq), as IdMap.irange_items reads them, tombstones before each: 1, 0 declined, -1 error.
 * A chunk's master fields are compared with the node's once: an entry packed as having them
 * then has the node's too, or not, without a compare of its own. */
static int writer_put_live(NodeWriter *w, const IdMapParts *ep, unsigned long long last_ms, unsigned long long last_seq) {
    Py_ssize_t n_chunks = PyList_GET_SIZE(ep->vals);
    if (!n_chunks || id_before(last_ms, last_seq, w->master_ms, w->master_seq))
        return 1;
    unsigned char low[ID_RECORD], high[ID_RECORD];
    id_record(low, w->master_ms, w->master_seq);
    id_record(high, last_ms, last_seq);
    const unsigned char *maxes = (const unsigned char *)PyByteArray_AS_STRING(ep->maxes);
    Py_ssize_t ci = records_bisect(maxes, n_chunks, low, 0), ce = records_bisect(maxes, n_chunks, high, 1);
    size_t n;
    int r = 1, same;
    for (Py_ssize_t i = ci; r > 0 && i < n_chunks && i <= ce; i++) {
        PyObject *keys = PyList_GET_ITEM(ep->keys, i), *chunk = PyList_GET_ITEM(ep->vals, i), *cmaster, *data, *ends;
        if (!PyByteArray_CheckExact(keys) || (PyObject *)Py_TYPE(chunk) != g_flats_type)
            return 0;
        if (!flats_parts(chunk, &cmaster, &data, &ends))
            return -1;
        const unsigned char *krec = (const unsigned char *)PyByteArray_AS_STRING(keys);
        Py_ssize_t count = PyByteArray_GET_SIZE(ends) / 4;
        if (PyByteArray_GET_SIZE(keys) != count * ID_RECORD)
            return 0;
        Py_ssize_t start = i == ci ? records_bisect(krec, count, low, 0) : 0;
        Py_ssize_t stop = i == ce ? records_bisect(krec, count, high, 1) : count;
        Py_ssize_t ncm = cmaster == Py_None ? -1 : PyTuple_GET_SIZE(cmaster);
        if (ncm > 0 && spans_room(&w->cm, &w->cm_cap, (size_t)ncm) < 0)
            return -1;
        int cm_same = ncm >= 0 && (size_t)ncm == w->nm; /* the chunk's master fields are the node's */
        for (Py_ssize_t f = 0; f < ncm; f++) {
            const char *p;
            Py_ssize_t len;
            if (!elem_bytes(PyTuple_GET_ITEM(cmaster, f), &p, &len))
                return 0;
            w->cm[f].p = (const unsigned char *)p;
            w->cm[f].n = (size_t)len;
            cm_same = cm_same && span_equal(&w->cm[f], &w->m[f]);
        }
        const unsigned char *base = (const unsigned char *)PyByteArray_AS_STRING(data);
        const unsigned char *end = base + PyByteArray_GET_SIZE(data);
        const unsigned char *p = base + (start ? flats_end(ends, start - 1) : 0);
        if (p > end) {
            PyErr_SetString(PyExc_ValueError, "stream_node_listpack: not a packed stream chunk");
            return -1;
        }
        ElemSpan local[SPANS_LOCAL], *e;
        for (Py_ssize_t j = start; r > 0 && j < stop; j++) {
            if (!w->have_dead) {
                if ((j = entries_run(w, krec, ends, base, (size_t)(end - base), &p, j, stop, cm_same)) < 0) {
                    r = -1;
                    break;
                }
                if (j >= stop)
                    break;
            }
            unsigned long long ms, seq;
            id_of_record(krec + j * ID_RECORD, &ms, &seq);
            if (w->have_dead && (r = writer_put_dead(w, ms, seq, 0)) <= 0)
                break;
            uint32_t entry_end = flats_end(ends, j);
            if (entry_end <= (size_t)(end - base) &&
                (r = entry_put_packed(&w->body, &p, base + entry_end, w->cm, ncm, cm_same, (int64_t)(ms - w->master_ms),
                                      (int64_t)(seq - w->master_seq), w->m, w->nm, &w->elements)) != 0) {
                if (r < 0)
                    break;
                continue;
            }
            if ((r = packed_spans(&p, end, w->cm, ncm, local, &w->spans, &w->cap, &e, &n, &same)) <= 0)
                break;
            if (node_entry_put(&w->body, 0, (int64_t)(ms - w->master_ms), (int64_t)(seq - w->master_seq), e, n, w->m, w->nm,
                               same ? cm_same : -1, &w->elements) < 0)
                r = -1;
        }
    }
    return r;
}

/* The node's whole listpack into w->body (from its start): the header, the master entry (live,
 * deleted, the master fields, 0), its entries and tombstones, the terminator.  `dead` its
 * tombstones, a sorted list of (id, flat), or NULL.  1, 0 declined (an element not bytes, an
 * odd field/value count, a listpack past 4 GiB), -1 error. */
static int writer_node(NodeWriter *w, const IdMapParts *ep, PyObject *fields, long long live, long long deleted,
                       unsigned long long last_ms, unsigned long long last_seq, PyObject *dead) {
    w->dead = dead;
    w->nd = dead == NULL ? 0 : PyList_GET_SIZE(dead);
    w->di = 0;
    w->body.len = 0;
    w->nm = (size_t)PyList_GET_SIZE(fields);
    if (spans_room(&w->m, &w->m_cap, w->nm) < 0)
        return -1;
    size_t room = LP_HEADER + 40;
    for (size_t i = 0; i < w->nm; i++) {
        const char *p;
        Py_ssize_t len;
        if (!elem_bytes(PyList_GET_ITEM(fields, (Py_ssize_t)i), &p, &len))
            return 0;
        w->m[i].p = (const unsigned char *)p;
        w->m[i].n = (size_t)len;
        room += (size_t)len + 10;
    }
    if (native_buf_reserve(&w->body, room, LPBODY_FIRST) < 0)
        return -1;
    unsigned char *b = (unsigned char *)w->body.buf + LP_HEADER;
    b = lpe_put_int(b, live);
    b = lpe_put_int(b, deleted);
    b = lpe_put_int(b, (int64_t)w->nm);
    for (size_t i = 0; i < w->nm; i++)
        b = lpe_put(b, w->m[i].p, w->m[i].n);
    b = lpe_put_int(b, 0);
    w->body.len = (size_t)(b - (unsigned char *)w->body.buf);
    w->elements = 3 + (long long)w->nm + 1;
    int r = writer_load_dead(w);
    if (r > 0)
        r = writer_put_live(w, ep, last_ms, last_seq);
    if (r > 0)
        r = writer_put_dead(w, 0, 0, 1);
    if (r <= 0)
        return r;
    uint64_t total = (uint64_t)w->body.len + 1;
    if (total > UINT32_MAX)
        return 0;
    if (native_buf_reserve(&w->body, 1, LPBODY_FIRST) < 0)
        return -1;
    /* the header (total bytes, the element count as lpSetNumElements caps it), the terminator */
    unsigned char *out = (unsigned char *)w->body.buf;
    unsigned int numele = w->elements < 65535 ? (unsigned int)w->elements : 65535;
    for (int i = 0; i < 4; i++)
        out[i] = (unsigned char)((total >> (8 * i)) & 0xFF);
    out[4] = (unsigned char)(numele & 0xFF);
    out[5] = (unsigned char)(numele >> 8);
    out[total - 1] = 0xFF;
    w->body.len = (size_t)total;
    return 1;
}

/* stream_node_listpack(entries, master_id, last_id, master_fields, live, deleted, dead) -> bytes
 * or None: _node_listpack of the node (master_id .. last_id, its master fields and counters)
 * over the EntryMap `entries`, `dead` its tombstones as a sorted list of (id, flat) (or None).
 * None: not this code's case (not an EntryMap, an element not bytes, an odd field/value count,
 * a listpack past 4 GiB): the Python reference's. */
static PyObject *py_stream_node_listpack(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "stream_node_listpack(entries, master_id, last_id, master_fields, live, deleted, dead)");
        return NULL;
    }
    PyObject *fields = args[3], *dead = args[6];
    IdMapParts ep;
    unsigned long long last_ms, last_seq;
    NodeWriter w;
    memset(&w, 0, sizeof w);
    if (!idmap_parts(args[0], &ep) || !ep.packed || !PyList_CheckExact(fields) || (dead != Py_None && !PyList_CheckExact(dead)))
        Py_RETURN_NONE;
    int r = id_parts(args[1], &w.master_ms, &w.master_seq);
    if (r > 0)
        r = id_parts(args[2], &last_ms, &last_seq);
    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    long long live = PyLong_AsLongLong(args[4]), deleted = PyLong_AsLongLong(args[5]);
    if ((live == -1 || deleted == -1) && PyErr_Occurred())
        return NULL;
    PyObject *result = NULL;
    r = writer_node(&w, &ep, fields, live, deleted, last_ms, last_seq, dead == Py_None ? NULL : dead);
    if (r == 0)
        result = Py_NewRef(Py_None);
    else if (r > 0)
        result = PyBytes_FromStringAndSize(w.body.buf, (Py_ssize_t)w.body.len);
    writer_free(&w);
    return result;
}

/* An rdb length (rdbSaveLen, primitives.append_len) at w (room for 9 bytes); the end. */
static inline unsigned char *rdb_len_put(unsigned char *w, uint64_t n) {
    if (n < 0x40) {
        *w++ = (unsigned char)n;
    } else if (n < 0x4000) {
        *w++ = (unsigned char)(0x40 | (n >> 8));
        *w++ = (unsigned char)(n & 0xFF);
    } else {
        int size = n <= UINT32_MAX ? 4 : 8;
        *w++ = size == 4 ? 0x80 : 0x81;
        for (int i = size - 1; i >= 0; i--)
            *w++ = (unsigned char)((n >> (8 * i)) & 0xFF);
    }
    return w;
}

/* Room for `need` more bytes in the bytearray `out` past *used (its size doubling, cut back to
 * *used at the end): the place to write, or NULL on error. */
static unsigned char *bytearray_room(PyObject *out, Py_ssize_t used, size_t need) {
    Py_ssize_t size = PyByteArray_GET_SIZE(out);
    if ((size_t)(size - used) < need) {
        if (need > (size_t)(PY_SSIZE_T_MAX / 2 - used)) {
            PyErr_NoMemory();
            return NULL;
        }
        Py_ssize_t grown = size * 2 > used + (Py_ssize_t)need ? size * 2 : used + (Py_ssize_t)need;
        if (PyByteArray_Resize(out, grown < 65536 ? 65536 : grown) < 0)
            return NULL;
    }
    return (unsigned char *)PyByteArray_AS_STRING(out) + used;
}

/* Node i of `nodes` (a StreamNode) written as encode_stream's loop writes it, appended to `out`
 * at *used: its master ID as a raw rdbString of 16 bytes, then its listpack as
 * primitives.append_string frames it: LZF'd by `lzf` (compression.rdb_lzf: (data, len - 5) ->
 * bytes, or None to store it raw) when given, else raw (a listpack is never integer text).
 * 1, 0 declined (nothing written), -1 error. */
static int nodes_body_one(NodeWriter *w, PyObject *out, Py_ssize_t *used, PyObject *entries, PyObject *node, PyObject *lzf) {
    IdMapParts ep;
    if ((PyObject *)Py_TYPE(node) != g_node_type || !idmap_parts(entries, &ep) || !ep.packed)
        return 0;
    PyObject *master_id = *slot_at(node, g_node_offsets[SN_MASTER_ID]), *last_id = *slot_at(node, g_node_offsets[SN_LAST_ID]);
    PyObject *fields = *slot_at(node, g_node_offsets[SN_MASTER_FIELDS]), *dead = *slot_at(node, g_node_offsets[SN_DEAD]);
    long long live, deleted;
    unsigned long long last_ms, last_seq;
    if (master_id == NULL || last_id == NULL || fields == NULL || !PyList_CheckExact(fields) || dead == NULL ||
        !PyDict_CheckExact(dead) || slot_ll(node, g_node_offsets[SN_LIVE], &live) < 0 ||
        slot_ll(node, g_node_offsets[SN_DELETED], &deleted) < 0)
        return PyErr_Occurred() ? -1 : 0;
    int r = id_parts(master_id, &w->master_ms, &w->master_seq);
    if (r > 0)
        r = id_parts(last_id, &last_ms, &last_seq);
    if (r <= 0)
        return r;
    PyObject *dead_items = NULL; /* sorted(node.dead.items()): made before any pointer is borrowed */
    if (PyDict_GET_SIZE(dead)) {
        if ((dead_items = PyDict_Items(dead)) == NULL || PyList_Sort(dead_items) < 0) {
            Py_XDECREF(dead_items);
            return -1;
        }
        if (!idmap_parts(entries, &ep) || !ep.packed || *slot_at(node, g_node_offsets[SN_MASTER_FIELDS]) != fields) {
            Py_DECREF(dead_items); /* (changed by what the allocations ran: the reference's) */
            return 0;
        }
    }
    r = writer_node(w, &ep, fields, live, deleted, last_ms, last_seq, dead_items);
    Py_XDECREF(dead_items);
    if (r <= 0)
        return r;
    size_t lp_len = w->body.len;
    PyObject *packed = NULL;
    if (lzf != NULL && lp_len > 20) {
        PyObject *raw = PyBytes_FromStringAndSize(w->body.buf, (Py_ssize_t)lp_len);
        PyObject *room = raw == NULL ? NULL : PyLong_FromSize_t(lp_len - 5);
        PyObject *call_args[2] = {raw, room};
        packed = room == NULL ? NULL : PyObject_Vectorcall(lzf, call_args, 2, NULL);
        Py_XDECREF(raw);
        Py_XDECREF(room);
        if (packed == NULL)
            return -1;
        if (packed != Py_None && !PyBytes_CheckExact(packed)) {
            Py_DECREF(packed);
            PyErr_SetString(PyExc_TypeError, "stream_nodes_body: the compressor returned neither bytes nor None");
            return -1;
        }
    }
    size_t data_len = packed != NULL && packed != Py_None ? (size_t)PyBytes_GET_SIZE(packed) : lp_len;
    unsigned char *p = bytearray_room(out, *used, 1 + ID_RECORD + 1 + 9 + 9 + data_len), *start = p;
    if (p == NULL) {
        Py_XDECREF(packed);
        return -1;
    }
    *p++ = ID_RECORD;
    id_record(p, w->master_ms, w->master_seq);
    p += ID_RECORD;
    if (packed != NULL && packed != Py_None) {
        *p++ = 0xC3; /* ENC_LZF, the compressed and the plain length */
        p = rdb_len_put(p, data_len);
        p = rdb_len_put(p, lp_len);
        memcpy(p, PyBytes_AS_STRING(packed), data_len);
    } else {
        p = rdb_len_put(p, lp_len);
        memcpy(p, w->body.buf, lp_len);
    }
    *used += (Py_ssize_t)(p - start) + (Py_ssize_t)data_len;
    Py_XDECREF(packed);
    return 1;
}

/* stream_nodes_body(out, entries, nodes, start, lzf) -> int: encode_stream's node loop from
 * nodes[start] on (a list of StreamNodes over the EntryMap `entries`), each node's key and
 * listpack appended to the bytearray `out` (nodes_body_one); the index of the first node not
 * written: len(nodes), or one this code declines (the Python loop writes it, then calls again). */
static PyObject *py_stream_nodes_body(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyByteArray_CheckExact(args[0]) || !PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "stream_nodes_body(out: bytearray, entries, nodes: list, start, lzf)");
        return NULL;
    }
    PyObject *out = args[0], *entries = args[1], *nodes = args[2], *lzf = args[4] == Py_None ? NULL : args[4];
    Py_ssize_t i = PyLong_AsSsize_t(args[3]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0)
        i = 0;
    if (!g_stream_slots_ok)
        return PyLong_FromSsize_t(i);
    NodeWriter w;
    memset(&w, 0, sizeof w);
    Py_ssize_t used = PyByteArray_GET_SIZE(out);
    int r = 1;
    Py_INCREF(entries);
    Py_INCREF(nodes);
    for (; i < PyList_GET_SIZE(nodes); i++) {
        PyObject *node = Py_NewRef(PyList_GET_ITEM(nodes, i));
        r = nodes_body_one(&w, out, &used, entries, node, lzf);
        Py_DECREF(node);
        if (r <= 0)
            break;
    }
    writer_free(&w);
    Py_DECREF(entries);
    Py_DECREF(nodes);
    /* (a cut: the bytes written stay) */
    if (PyByteArray_GET_SIZE(out) != used && PyByteArray_Resize(out, used) < 0)
        return NULL;
    return r < 0 ? NULL : PyLong_FromSsize_t(i);
}

/* ------------------------------------------------------------------ stream nodes loaded (RESTORE) */

/* payload/stream.py's decode_stream node loop (_read_node, listpack.count, _decode_node and
 * _loaded_nodes, the reference) in one pass over the payload: each node's key and listpack
 * rdbStrings read here (an LZF one expanded by the caller's decompressor, compression.decompress),
 * the listpack walked once with listpack.count's checks (header, every entry inside it, in deep
 * mode the back-lengths and the terminator's place) and _decode_node's (the same refusal texts),
 * each live entry appended straight into the EntryMap's packed chunks (no Python object an
 * entry), its node's listpack bytes counted as StreamNode.entry_size counts them, and the
 * StreamNodes built into their IdMap.  The payload is untrusted: every length, count and read is
 * checked against the bytes it lies in. */

typedef struct {
    int is_int;
    int64_t v;
    const unsigned char *s;
    size_t n;
} LoadElem;

/* _listpack.c's read_backlen: the back-length ending at `last`, or -1 (over 5 bytes, or off the
 * start of the listpack at `start`). */
static inline int64_t load_backlen(const unsigned char *start, const unsigned char *last) {
    uint64_t value = 0;
    int shift = 0;
    for (;;) {
        if (last < start)
            return -1;
        unsigned int b = *last;
        value |= (uint64_t)(b & 127u) << shift;
        if (!(b & 128u))
            return (int64_t)value;
        shift += 7;
        last--;
        if (shift > 28)
            return -1;
    }
}

/* The entry at *pp, advanced past it: 0, or -1 (not an entry lying before `end`, the
 * terminator's place, or in deep mode a back-length not its size).  A 0xFF there is -1 too:
 * an entry expected where the listpack ends.  (lpe_enclen and lpe_read's forms in one switch:
 * this runs for every element of every entry.) */
static inline __attribute__((always_inline)) int load_elem(const unsigned char **pp, const unsigned char *start,
                                                           const unsigned char *end, int deep, LoadElem *e) {
    const unsigned char *p = *pp;
    size_t avail = (size_t)(end - p), enclen; /* (p <= end: every read so far ended there at most) */
    unsigned char b = p[0];
    if (b < 0x80) { /* 7-bit unsigned */
        e->is_int = 1;
        e->v = b;
        enclen = 1;
    } else if (b < 0xC0) { /* string of up to 63 bytes */
        e->is_int = 0;
        e->s = p + 1;
        e->n = b & 0x3F;
        enclen = 1 + e->n;
    } else if (b < 0xE0) { /* 13-bit signed */
        if (avail < 2)
            return -1;
        uint64_t u = ((uint64_t)(b & 0x1F) << 8) | p[1];
        e->is_int = 1;
        e->v = u >= (1 << 12) ? (int64_t)u - (1 << 13) : (int64_t)u;
        enclen = 2;
    } else if (b < 0xF0) { /* string of up to 4095 bytes */
        if (avail < 2)
            return -1;
        e->is_int = 0;
        e->s = p + 2;
        e->n = ((size_t)(b & 0x0F) << 8) | p[1];
        enclen = 2 + e->n;
    } else if (b == 0xF0) { /* string, 32-bit length */
        if (avail < 5)
            return -1;
        e->is_int = 0;
        e->s = p + 5;
        e->n = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
        enclen = 5 + e->n;
    } else if (b <= 0xF4) { /* 16, 24, 32 or 64-bit signed */
        size_t width = b == 0xF1 ? 2 : b == 0xF2 ? 3 : b == 0xF3 ? 4 : 8;
        if (avail < 1 + width)
            return -1;
        uint64_t u = 0;
        for (size_t i = 0; i < width; i++)
            u |= (uint64_t)p[1 + i] << (8 * i);
        if (width < 8 && (u >> (8 * width - 1)))
            u |= ~(uint64_t)0 << (8 * width); /* sign-extend */
        e->is_int = 1;
        e->v = (int64_t)u;
        enclen = 1 + width;
    } else {
        return -1; /* (an unknown encoding, or the terminator) */
    }
    size_t size = enclen + (enclen <= 127 ? 1 : lpe_backlen_size(enclen));
    if (size > avail)
        return -1;
    if (deep && load_backlen(start, p + size - 1) != (int64_t)enclen)
        return -1;
    *pp = p + size;
    return 0;
}

/* listpack.as_int (lpGetIntegerIfValid): 1 with *v, or 0. */
static inline int load_int(const LoadElem *e, long long *v) {
    if (e->is_int) {
        *v = e->v;
        return 1;
    }
    return e->n > 0 && native_string2ll((const char *)e->s, (Py_ssize_t)e->n, v);
}

/* The element's text: its bytes, or an integer's decimal text written at *digits (advanced). */
static inline void load_text(LoadElem *e, unsigned char **digits) {
    if (e->is_int) {
        e->s = *digits;
        e->n = (size_t)native_ll_text((char *)*digits, e->v);
        *digits += LPE_INT_TEXT_MAX;
        e->is_int = 2; /* (text made: its size is the integer's) */
    }
}

/* Bytes the element takes in a listpack written as Redis writes it (streams._str_size). */
static inline long long load_size(const LoadElem *e) {
    if (e->is_int)
        return lp_int_entry_size(e->v);
    unsigned char c = e->n ? e->s[0] : 0;
    if (e->n < 64 && !((c >= '0' && c <= '9') || c == '-')) /* (not integer text: lp_entry_size's answer) */
        return (long long)e->n + 2;
    return lp_entry_size((const char *)e->s, (Py_ssize_t)e->n);
}

static PyObject *load_id(unsigned long long ms, unsigned long long seq) {
    PyObject *a = PyLong_FromUnsignedLongLong(ms), *b = a == NULL ? NULL : PyLong_FromUnsignedLongLong(seq);
    if (b == NULL) {
        Py_XDECREF(a);
        return NULL;
    }
    PyObject *id = PyTuple_New(2);
    if (id == NULL) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(id, 0, a); /* (no format string parsed: two of these a node) */
    PyTuple_SET_ITEM(id, 1, b);
    return id;
}

/* The EntryMap's chunks built straight into the bytearrays they keep: a chunk's packed entries,
 * their end offsets and ID records (a bytearray's size its room while it is built: CHUNK
 * entries' ends and records, data twice the bytes written at least), and its master fields (the
 * first entry's, as flats_append_elems sets them), made a PackedFlats once it holds CHUNK entries
 * (or its byte limit, or the load's end), its bytearrays cut to their size (data's room given
 * back where it lies, else copied: exact, as EntryMap._seal_last leaves a full chunk): what
 * appending entry after entry leaves, with no Python object an entry. */
typedef struct {
    PyObject *data_obj, *ends_obj, *keys_obj; /* the chunk's bytearrays, NULL: none begun */
    unsigned char *data, *ends, *keys;        /* their bytes */
    size_t used, data_cap, n, n_cap;          /* bytes of data written (and room); entries in the chunk (and room) */
    size_t last_used;                         /* the previous chunk's data bytes (the next one's first room) */
    PyObject *master;                         /* the chunk's master fields (a tuple), NULL: none begun */
} ChunkBuild;

static void build_free(ChunkBuild *B) {
    Py_CLEAR(B->data_obj);
    Py_CLEAR(B->ends_obj);
    Py_CLEAR(B->keys_obj);
    Py_CLEAR(B->master);
    memset(B, 0, sizeof *B);
}

/* The bytearray *obj cut to `size` bytes with no room left over (room given back in place, else
 * a copy made): 0, or -1 error. */
static int build_cut(PyObject **obj, size_t size) {
    if (PyByteArray_Resize(*obj, (Py_ssize_t)size) < 0)
        return -1;
    if ((size_t)((PyByteArrayObject *)*obj)->ob_alloc == size + 1)
        return 0;
    PyObject *exact = PyByteArray_FromStringAndSize(PyByteArray_AS_STRING(*obj), (Py_ssize_t)size);
    if (exact == NULL)
        return -1;
    Py_SETREF(*obj, exact);
    return 0;
}

/* The data bytearray's room made `cap` (at least twice the bytes written: build_cut then gives
 * the rest back in place).  0, or -1 error. */
static int build_data_room(ChunkBuild *B, size_t cap) {
    if (B->data_obj == NULL) {
        if ((B->data_obj = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)cap)) == NULL)
            return -1;
    } else if (PyByteArray_Resize(B->data_obj, (Py_ssize_t)cap) < 0) {
        return -1;
    }
    B->data = (unsigned char *)PyByteArray_AS_STRING(B->data_obj);
    B->data_cap = cap;
    return 0;
}

/* The chunk built so far appended to the map (parts): its PackedFlats, keys, _maxes record and
 * _len.  0 (nothing to emit, or done), -1 error (the map holds the chunks before it). */
static int build_emit(ChunkBuild *B, IdMapParts *parts) {
    if (B->n == 0)
        return 0;
    if (build_cut(&B->data_obj, B->used) < 0 || build_cut(&B->ends_obj, 4 * B->n) < 0 || build_cut(&B->keys_obj, ID_RECORD * B->n) < 0)
        return -1;
    PyObject *chunk = PyObject_CallNoArgs(g_flats_type);
    PyObject *data = B->data_obj, *ends = B->ends_obj, *keys = B->keys_obj;
    B->data_obj = B->ends_obj = B->keys_obj = NULL; /* (the next chunk makes its own) */
    B->data = B->ends = B->keys = NULL;
    B->data_cap = B->n_cap = 0;
    B->last_used = B->used;
    int bad = chunk == NULL || (PyObject *)Py_TYPE(chunk) != g_flats_type;
    if (!bad) {
        Py_XSETREF(*slot_at(chunk, g_flats_offsets[PF_MASTER]), B->master);
        Py_XSETREF(*slot_at(chunk, g_flats_offsets[PF_DATA]), data);
        Py_XSETREF(*slot_at(chunk, g_flats_offsets[PF_ENDS]), ends);
        B->master = NULL;
        data = ends = NULL;
        bad = untrack_new(chunk) < 0 || PyList_Append(parts->keys, keys) < 0 || PyList_Append(parts->vals, chunk) < 0 ||
              records_append(parts->maxes, (const unsigned char *)PyByteArray_AS_STRING(keys) + ID_RECORD * (B->n - 1)) < 0;
    }
    Py_XDECREF(chunk);
    Py_XDECREF(data);
    Py_XDECREF(ends);
    Py_XDECREF(keys);
    if (bad)
        return -1;
    parts->len += (Py_ssize_t)B->n;
    B->n = B->used = 0;
    Py_CLEAR(B->master);
    return slot_set_ll(parts->owner, g_idmap_offsets[IM_LEN], parts->len);
}

/* Whether the entry e[0..n)'s fields are the tuple `master`'s (packed_entry_size's `same`). */
static inline __attribute__((always_inline)) int packed_entry_same(PyObject *master, const FlatElem *e, Py_ssize_t n) {
    if (n != 2 * PyTuple_GET_SIZE(master))
        return 0;
    for (Py_ssize_t i = 0; i < n / 2; i++) {
        PyObject *m = PyTuple_GET_ITEM(master, i);
        if (e[2 * i].obj != m && !(PyBytes_CheckExact(m) && e[2 * i].len == PyBytes_GET_SIZE(m) &&
                                   bytes_equal(e[2 * i].p, PyBytes_AS_STRING(m), e[2 * i].len)))
            return 0;
    }
    return 1;
}

/* The entry e[0..n) with the ID record appended to the chunk being built (the chunk emitted
 * first when it is full): 0, or -1 error.  `text_bytes`: its elements' bytes together, so room
 * is made once for the most it can pack into (a length varint is 10 bytes at most) and the entry
 * is packed in one pass. */
static inline __attribute__((always_inline)) int build_put(ChunkBuild *B, IdMapParts *parts, const unsigned char *record,
                                                           const FlatElem *e, Py_ssize_t n, size_t text_bytes) {
    int same = 0;
    size_t most = 10 * ((size_t)n + 1) + text_bytes;
    if (B->master != NULL) {
        same = packed_entry_same(B->master, e, n);
        if (B->n >= (size_t)g_idmap_chunk ||
            ((long long)(B->used + most) > FLATS_CHUNK_BYTES && B->used + (size_t)packed_entry_size(B->master, e, n, &same) > FLATS_CHUNK_BYTES)) {
            if (build_emit(B, parts) < 0)
                return -1;
        }
    }
    if (B->master == NULL) { /* a chunk begun: its first entry's fields are its master's */
        if ((B->master = PyTuple_New(n / 2)) == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < n / 2; i++) {
            PyObject *f = elem_object(&e[2 * i]);
            if (f == NULL)
                return -1;
            PyTuple_SET_ITEM(B->master, i, f);
        }
        if (packed_entry_size(B->master, e, n, &same) > FLATS_CHUNK_BYTES) {
            PyErr_SetString(PyExc_OverflowError, "a stream entry over 4 GiB");
            return -1;
        }
    }
    if (B->n >= B->n_cap) { /* (a chunk begun: room for CHUNK entries; more only past the byte limit's test) */
        size_t cap = B->n_cap ? 2 * B->n_cap : (size_t)g_idmap_chunk;
        int fresh = B->ends_obj == NULL;
        if (fresh ? (B->ends_obj = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(4 * cap))) == NULL
                  : PyByteArray_Resize(B->ends_obj, (Py_ssize_t)(4 * cap)) < 0)
            return -1;
        if (fresh ? (B->keys_obj = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(ID_RECORD * cap))) == NULL
                  : PyByteArray_Resize(B->keys_obj, (Py_ssize_t)(ID_RECORD * cap)) < 0)
            return -1;
        B->ends = (unsigned char *)PyByteArray_AS_STRING(B->ends_obj);
        B->keys = (unsigned char *)PyByteArray_AS_STRING(B->keys_obj);
        B->n_cap = cap;
    }
    if (B->used + most > B->data_cap / 2 &&
        build_data_room(B, 2 * (B->used + most) > 2 * B->last_used + 4096 ? 2 * (B->used + most) + 4096 : 2 * B->last_used + 4096) < 0)
        return -1;
    /* packed_entry_put's bytes, its end found as it goes */
    unsigned char *w = varint_put(B->data + B->used, ((unsigned long long)n << 1) | (unsigned)same);
    for (Py_ssize_t i = same ? 1 : 0; i < n; i += 1 + same) {
        size_t len = (size_t)e[i].len;
        if (len < 0x80)
            *w++ = (unsigned char)len;
        else
            w = varint_put(w, len);
        lpe_copy(w, (const unsigned char *)e[i].p, len);
        w += len;
    }
    B->used = (size_t)(w - B->data);
    uint32_t end = (uint32_t)B->used;
    memcpy(B->ends + 4 * B->n, &end, 4);
    memcpy(B->keys + ID_RECORD * B->n, record, ID_RECORD);
    B->n++;
    return 0;
}

/* What the node loop carries from node to node, and what one node's walk leaves. */
typedef struct {
    IdMapParts parts; /* the EntryMap's */
    ChunkBuild build;
    int deep;
    int has_prev; /* the last ID walked, across the tree */
    unsigned long long prev_ms, prev_seq;
    FlatElem *elems; /* one entry's elements, and room for its integers' text */
    unsigned char *digits;
    size_t room;
    /* one node's */
    PyObject *fields; /* its master fields: a list of bytes */
    PyObject *dead;   /* its tombstones: a dict ID -> flat list, or NULL */
    long long live, tombstones, entries_bytes;
    unsigned long long first_ms, first_seq;
} NodeLoad;

/* A tombstone's flat list kept in L->dead under its ID. */
static int load_tombstone(NodeLoad *L, size_t n_elems, unsigned long long ms, unsigned long long seq) {
    PyObject *flat = PyList_New((Py_ssize_t)n_elems), *id = NULL;
    for (size_t j = 0; flat != NULL && j < n_elems; j++) {
        PyObject *item = elem_object(&L->elems[j]);
        if (item == NULL)
            Py_CLEAR(flat);
        else
            PyList_SET_ITEM(flat, (Py_ssize_t)j, item);
    }
    int bad = flat == NULL || (id = load_id(ms, seq)) == NULL || (L->dead == NULL && (L->dead = PyDict_New()) == NULL) ||
              PyDict_SetItem(L->dead, id, flat) < 0;
    Py_XDECREF(flat);
    Py_XDECREF(id);
    return bad ? -1 : 0;
}

/* One node listpack (blob[0..size)) under the master ID (master_ms, master_seq) walked into
 * the EntryMap (`deep`: sanitizing, L->deep): 1 done (L's node fields set), 0 refused
 * (*refusal), 2 an ID not past the last one walked (the caller gives way to the reference),
 * -1 error. */
static inline __attribute__((always_inline)) int load_node_body(NodeLoad *L, const unsigned char *blob, size_t size,
                                                                unsigned long long master_ms, unsigned long long master_seq,
                                                                const char **refusal, const int deep) {
    L->live = L->tombstones = L->entries_bytes = 0;
    Py_CLEAR(L->fields);
    Py_CLEAR(L->dead);
    /* listpack.count's header checks */
    if (size < LP_HEADER + 1) {
        *refusal = "listpack smaller than its header";
        return 0;
    }
    uint32_t total = (uint32_t)blob[0] | ((uint32_t)blob[1] << 8) | ((uint32_t)blob[2] << 16) | ((uint32_t)blob[3] << 24);
    if ((uint64_t)total != (uint64_t)size) {
        *refusal = "listpack header size mismatch";
        return 0;
    }
    const unsigned char *p = blob + LP_HEADER, *end = blob + size - 1;
    if (*end != 0xFF) {
        *refusal = "listpack not terminated by 0xFF";
        return 0;
    }
    if (*p == 0xFF) {
        *refusal = "empty listpack inside stream";
        return 0;
    }
    LoadElem e, head[3];
    long long count, deleted, nfields, v;
    for (int k = 0; k < 3; k++)
        if (load_elem(&p, blob, end, deep, &head[k]) < 0)
            goto truncated;
    /* (every element takes two bytes at least: a count past that is a lie) */
    if (!load_int(&head[0], &count) || !load_int(&head[1], &deleted) || !load_int(&head[2], &nfields) || nfields < 0 ||
        nfields > (end - p) / 2) {
        *refusal = "invalid stream master entry";
        return 0;
    }
    /* the master fields, as bytes objects (shared by the entries that have them) */
    if ((L->fields = PyList_New((Py_ssize_t)nfields)) == NULL)
        return -1;
    for (Py_ssize_t k = 0; k < nfields; k++) {
        unsigned char text[LPE_INT_TEXT_MAX], *t = text;
        if (load_elem(&p, blob, end, deep, &e) < 0)
            goto truncated;
        load_text(&e, &t);
        PyObject *f = PyBytes_FromStringAndSize((const char *)e.s, (Py_ssize_t)e.n);
        if (f == NULL)
            return -1;
        PyList_SET_ITEM(L->fields, k, f);
    }
    if (load_elem(&p, blob, end, deep, &e) < 0)
        goto truncated;
    if (deep && (!load_int(&e, &v) || v != 0)) {
        *refusal = "stream master entry not zero-terminated";
        return 0;
    }
    /* the master fields' listpack sizes and bytes, counted once for the entries that share them */
    long long fields_size = 0;
    size_t fields_text = 0;
    for (Py_ssize_t f = 0; f < nfields; f++) {
        PyObject *name = PyList_GET_ITEM(L->fields, f);
        fields_size += lp_entry_size(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name));
        fields_text += (size_t)PyBytes_GET_SIZE(name);
    }
    long long walked = 0;
    while (*p != 0xFF) { /* (p < end here: every element read ended at or before it) */
        long long flags, ms_delta, seq_delta, k;
        for (int h = 0; h < 3; h++)
            if (load_elem(&p, blob, end, deep, &head[h]) < 0)
                goto truncated;
        if (!load_int(&head[0], &flags) || !load_int(&head[1], &ms_delta) || !load_int(&head[2], &seq_delta)) {
            *refusal = "stream entry header not integer";
            return 0;
        }
        int samefields = (flags & 2) != 0;
        long long expected;
        if (samefields) {
            k = nfields;
            expected = k + 3;
        } else {
            if (load_elem(&p, blob, end, deep, &e) < 0 || !load_int(&e, &k) || k < 0 || k > (end - p) / 4) {
                *refusal = "invalid stream entry field count";
                return 0;
            }
            expected = 2 * k + 4;
        }
        /* the entry's elements, fields then values */
        size_t n_elems = 2 * (size_t)k;
        if (n_elems > L->room) {
            size_t want = n_elems < 16 ? 16 : n_elems;
            PyMem_Free(L->elems);
            PyMem_Free(L->digits);
            L->elems = PyMem_New(FlatElem, want);
            L->digits = PyMem_Malloc(want * LPE_INT_TEXT_MAX);
            L->room = want;
            if (L->elems == NULL || L->digits == NULL) {
                L->room = 0;
                PyErr_NoMemory();
                return -1;
            }
        }
        FlatElem *elems = L->elems;
        unsigned char *dg = L->digits;
        long long size_of = 0;
        size_t text_bytes = samefields ? fields_text : 0;
        int same = k == nfields;
        for (size_t j = 0; j < n_elems; j++) {
            if (samefields && j % 2 == 0) {
                PyObject *f = PyList_GET_ITEM(L->fields, (Py_ssize_t)(j / 2));
                elems[j].obj = f;
                elems[j].p = PyBytes_AS_STRING(f);
                elems[j].len = PyBytes_GET_SIZE(f);
                continue;
            }
            if (load_elem(&p, blob, end, deep, &e) < 0)
                goto truncated;
            size_of += load_size(&e);
            load_text(&e, &dg);
            text_bytes += e.n;
            elems[j].obj = NULL;
            elems[j].p = (const char *)e.s;
            elems[j].len = (Py_ssize_t)e.n;
            if (j % 2 == 0 && same) {
                PyObject *f = PyList_GET_ITEM(L->fields, (Py_ssize_t)(j / 2));
                same = elems[j].len == PyBytes_GET_SIZE(f) && bytes_equal(elems[j].p, PyBytes_AS_STRING(f), elems[j].len);
            }
        }
        if (samefields) /* the master's field names */
            size_of += fields_size;
        if (same) /* (entry_size: only the values are stored then) */
            size_of -= fields_size;
        else
            size_of += lp_int_entry_size(k);
        long long lp_count = same ? k + 3 : 2 * k + 4;
        size_of += 2 + lp_int_entry_size(ms_delta) + lp_int_entry_size(seq_delta) + lp_int_entry_size(lp_count);
        if (load_elem(&p, blob, end, deep, &e) < 0)
            goto truncated;
        if (deep && (!load_int(&e, &v) || v != expected)) {
            *refusal = "stream entry lp-count mismatch";
            return 0;
        }
        walked++;
        unsigned long long ms = master_ms + (unsigned long long)ms_delta, seq = master_seq + (unsigned long long)seq_delta;
        if (L->has_prev && !id_before(L->prev_ms, L->prev_seq, ms, seq))
            return 2;
        L->has_prev = 1;
        L->prev_ms = ms;
        L->prev_seq = seq;
        if (walked == 1) {
            L->first_ms = ms;
            L->first_seq = seq;
        }
        L->entries_bytes += size_of;
        if (flags & 1) { /* a tombstone: the node keeps its flat list */
            L->tombstones++;
            if (load_tombstone(L, n_elems, ms, seq) < 0)
                return -1;
        } else {
            L->live++;
            unsigned char record[ID_RECORD];
            id_record(record, ms, seq);
            if (build_put(&L->build, &L->parts, record, elems, (Py_ssize_t)n_elems, text_bytes) < 0)
                return -1;
        }
    }
    if (deep && p != end) { /* (listpack.count, deep: the walk ends at the terminator) */
        *refusal = "listpack terminator inside its entries";
        return 0;
    }
    if (deep && (__int128)walked != (__int128)count + deleted) {
        *refusal = "stream node entry count mismatch";
        return 0;
    }
    return 1;
truncated:
    *refusal = "listpack entry past end";
    return 0;
}

/* load_node_body made twice, `deep` a constant in each: the walk's per-element sanitize tests
 * are compiled out of the common (not sanitizing) one. */
static int load_node_plain(NodeLoad *L, const unsigned char *blob, size_t size, unsigned long long master_ms,
                           unsigned long long master_seq, const char **refusal) {
    return load_node_body(L, blob, size, master_ms, master_seq, refusal, 0);
}

static int load_node_deep(NodeLoad *L, const unsigned char *blob, size_t size, unsigned long long master_ms,
                          unsigned long long master_seq, const char **refusal) {
    return load_node_body(L, blob, size, master_ms, master_seq, refusal, 1);
}

/* primitives.read_len (rdbLoadLen) at *pos before end: 1 with *n, or 0 (past the end, or an
 * unknown form). */
static int load_rdb_len(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t end, unsigned long long *n) {
    Py_ssize_t at = *pos;
    if (at >= end)
        return 0;
    unsigned char b = buf[at];
    int kind = b >> 6;
    if (kind == 0 || kind == 3) {
        *n = b & 0x3F;
        *pos = at + 1;
        return 1;
    }
    if (kind == 1) {
        if (at + 2 > end)
            return 0;
        *n = ((unsigned long long)(b & 0x3F) << 8) | buf[at + 1];
        *pos = at + 2;
        return 1;
    }
    int width = b == 0x80 ? 4 : b == 0x81 ? 8 : 0;
    if (width == 0 || at + 1 + width > end)
        return 0;
    unsigned long long v = 0;
    for (int i = 1; i <= width; i++)
        v = (v << 8) | buf[at + i];
    *n = v;
    *pos = at + 1 + width;
    return 1;
}

/* LZF (liblzf's format, Redis's rdbStrings) expanded here rather than through a Python call: a
 * control byte under 32 starts a literal run of ctrl + 1 bytes; any other is a back-reference
 * of (ctrl >> 5) + 2 bytes (a length of 7 reads one more byte, added) starting
 * ((ctrl & 31) << 8 | next byte) + 1 bytes behind.  Written from the format; the same bytes and
 * refusals as compression.decompress (tests/test_stream_restore_fast.py fuzzes the two).
 * LZF_SLACK: room the output needs past its size (runs are copied in whole 8 and 16-byte words). */
#define LZF_SLACK 32
#define LZF_MAX_EXPANSION 88 /* (compression.MAX_EXPANSION: a 3-byte reference makes 264 at most) */

/* in[0..n) expanded into out[0..ulen) (out has LZF_SLACK more bytes): 1 when it makes exactly
 * ulen bytes, 0 when it is not LZF data of that size (a run past the input's end, a reference
 * before the output's start or past its end, fewer bytes). */
static int lzf_expand(const unsigned char *in, size_t n, unsigned char *out, size_t ulen) {
    const unsigned char *ip = in, *const ie = in + n;
    unsigned char *op = out, *const oe = out + ulen;
    while (ip < ie) {
        size_t ctrl = *ip++;
        if (ctrl < 32) { /* literal run */
            size_t run = ctrl + 1;
            if ((size_t)(ie - ip) < run || (size_t)(oe - op) < run)
                return 0;
            if ((size_t)(ie - ip) >= 32) { /* (whole words, the tail landing in the slack) */
                memcpy(op, ip, 16);
                memcpy(op + 16, ip + 16, 16);
            } else {
                memcpy(op, ip, run);
            }
            op += run;
            ip += run;
            continue;
        }
        size_t len = ctrl >> 5;
        if (len == 7) {
            if (ip >= ie)
                return 0;
            len += *ip++;
        }
        if (ip >= ie)
            return 0;
        size_t back = ((ctrl & 31) << 8) + *ip++ + 1;
        len += 2;
        if ((size_t)(op - out) < back || (size_t)(oe - op) < len)
            return 0;
        const unsigned char *ref = op - back;
        if (back >= 8) { /* (8 bytes a step, the first outside the loop: each reads bytes already written) */
            uint64_t word;
            memcpy(&word, ref, 8);
            memcpy(op, &word, 8);
            for (size_t i = 8; i < len; i += 8) {
                memcpy(&word, ref + i, 8);
                memcpy(op + i, &word, 8);
            }
        } else { /* (overlapping: the pattern repeats, byte by byte) */
            for (size_t i = 0; i < len; i++)
                op[i] = ref[i];
        }
        op += len;
    }
    return op == oe;
}

/* lzf_expand(data: bytes, ulen: int) -> bytes | None: the C expansion by itself, for tests
 * (None where compression.decompress raises LzfError). */
static PyObject *py_lzf_expand(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "lzf_expand(data: bytes, ulen: int)");
        return NULL;
    }
    Py_ssize_t ulen = PyLong_AsSsize_t(args[1]), n = PyBytes_GET_SIZE(args[0]);
    if (ulen < 0)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    if (ulen == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    if ((unsigned long long)ulen > LZF_MAX_EXPANSION * (unsigned long long)n)
        Py_RETURN_NONE;
    unsigned char *out = PyMem_Malloc((size_t)ulen + LZF_SLACK);
    if (out == NULL)
        return PyErr_NoMemory();
    PyObject *result = lzf_expand((const unsigned char *)PyBytes_AS_STRING(args[0]), (size_t)n, out, (size_t)ulen)
                           ? PyBytes_FromStringAndSize((const char *)out, ulen)
                           : Py_NewRef(Py_None);
    PyMem_Free(out);
    return result;
}

/* Room an LZF rdbString expands into, reused from string to string. */
typedef struct {
    unsigned char *bytes;
    size_t cap;
} LzfRoom;

/* primitives.read_string (rdbGenericLoadStringObject) at *pos before end: 1 with *s, *n (in buf,
 * or in room, the LZF expansion: valid until the next string read), 0 refused (*refusal: past
 * the end, an unknown form, LZF data not of its size; an integer form too: its text is never a
 * stream node's key nor a listpack), -1 error. */
static int load_rdb_string(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t end, LzfRoom *room, const unsigned char **s,
                           size_t *n, const char **refusal) {
    Py_ssize_t at = *pos;
    unsigned long long len, ulen;
    *refusal = "string past end of payload";
    if (at >= end)
        return 0;
    unsigned char b = buf[at];
    if (b < 0xC0) {
        if (!load_rdb_len(buf, &at, end, &len))
            return 0;
        if (len > (unsigned long long)(end - at))
            return 0;
        *s = buf + at;
        *n = (size_t)len;
        *pos = at + (Py_ssize_t)len;
        return 1;
    }
    if (b != 0xC3) {
        *refusal = b < 0xC3 ? "stream node string an integer" : "unknown RDB string encoding";
        return 0;
    }
    at++;
    if (!load_rdb_len(buf, &at, end, &len) || !load_rdb_len(buf, &at, end, &ulen) || len > (unsigned long long)(end - at))
        return 0;
    *refusal = "invalid LZF compressed string";
    if (ulen > LZF_MAX_EXPANSION * len)
        return 0;
    if (ulen + LZF_SLACK > room->cap) {
        size_t cap = (size_t)ulen + LZF_SLACK > 2 * room->cap ? (size_t)ulen + LZF_SLACK : 2 * room->cap;
        unsigned char *bytes = PyMem_Realloc(room->bytes, cap);
        if (bytes == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        room->bytes = bytes;
        room->cap = cap;
    }
    /* (an empty expansion is empty whatever the data: lzf_decompress makes 0 bytes of 0 room) */
    if (ulen != 0 && !lzf_expand(buf + at, (size_t)len, room->bytes, (size_t)ulen))
        return 0;
    *s = room->bytes;
    *n = (size_t)ulen;
    *pos = at + (Py_ssize_t)len;
    return 1;
}

/* The StreamNode _loaded_nodes builds from L's node (its slots set here: StreamNode.__init__'s
 * and what the walk found), appended to the IdMap `nodes` under its master ID.  0, or -1. */
static int load_stream_node(NodeLoad *L, PyObject *nodes, unsigned long long master_ms, unsigned long long master_seq) {
    IdMapParts np;
    PyTypeObject *type = (PyTypeObject *)g_node_type;
    if (!idmap_parts(nodes, &np) || np.packed) {
        PyErr_SetString(PyExc_TypeError, "stream_load_nodes: not an IdMap");
        return -1;
    }
    long long fields_bytes = 0;
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(L->fields); f++) {
        PyObject *name = PyList_GET_ITEM(L->fields, f);
        fields_bytes += lp_entry_size(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name));
    }
    PyObject *node = type->tp_alloc(type, 0);
    if (node == NULL)
        return -1;
    PyObject *values[SN_COUNT];
    values[SN_MASTER_FIELDS] = Py_NewRef(L->fields);
    values[SN_LAST_ID] = load_id(L->prev_ms, L->prev_seq);
    values[SN_LIVE] = PyLong_FromLongLong(L->live);
    values[SN_DELETED] = PyLong_FromLongLong(L->tombstones);
    values[SN_ENTRIES_BYTES] = PyLong_FromLongLong(L->entries_bytes);
    values[SN_FIELDS_BYTES] = PyLong_FromLongLong(fields_bytes);
    values[SN_MASTER_ID] = load_id(master_ms, master_seq);
    values[SN_DEAD] = L->dead != NULL ? Py_NewRef(L->dead) : PyDict_New();
    int bad = 0;
    for (int i = 0; i < SN_COUNT; i++) {
        bad |= values[i] == NULL;
        Py_XSETREF(*slot_at(node, g_node_offsets[i]), values[i]);
    }
    if (!bad) { /* (all it holds is bytes and ints, its tombstones' dict aside: hidden from the cyclic
                 * collector here, as collector.untrack hides them when the value is stored, its walk
                 * then stopping at the node) */
        PyObject_GC_UnTrack(values[SN_MASTER_FIELDS]);
        if (PyObject_GC_IsTracked(values[SN_LAST_ID]))
            PyObject_GC_UnTrack(values[SN_LAST_ID]);
        if (PyObject_GC_IsTracked(values[SN_MASTER_ID]))
            PyObject_GC_UnTrack(values[SN_MASTER_ID]);
        if (!PyObject_GC_IsTracked(values[SN_DEAD]) && PyObject_GC_IsTracked(node))
            PyObject_GC_UnTrack(node);
    }
    unsigned char record[ID_RECORD];
    id_record(record, master_ms, master_seq);
    bad = bad || idmap_append(&np, record, node) < 0;
    Py_DECREF(node);
    return bad ? -1 : 0;
}

/* stream_load_nodes(entries, buf, pos, end, node_count, deep) ->
 *   (pos after the nodes, the IdMap of StreamNodes or None: not a layout Redis can have)
 *   | str (the refusal's text) | False (node keys or IDs not strictly ascending across the tree:
 *   the caller runs the Python decoder) | None (not its case).  `entries`: an empty EntryMap the live
 *   entries are appended to; buf[pos:end]: the payload bytes the nodes lie in. */
static PyObject *py_stream_load_nodes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "stream_load_nodes(entries, buf: bytes, pos, end, node_count, deep)");
        return NULL;
    }
    NodeLoad L;
    memset(&L, 0, sizeof L);
    if (!g_flats_slots_ok || !g_stream_slots_ok || !idmap_parts(args[0], &L.parts) || !L.parts.packed || L.parts.len != 0) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *buf_obj = args[1];
    Py_ssize_t pos = PyLong_AsSsize_t(args[2]), end = PyLong_AsSsize_t(args[3]), count = PyLong_AsSsize_t(args[4]);
    if ((pos == -1 || end == -1 || count == -1) && PyErr_Occurred())
        return NULL;
    if (pos < 0 || end > PyBytes_GET_SIZE(buf_obj) || pos > end || count < 0) {
        PyErr_SetString(PyExc_ValueError, "stream_load_nodes: positions outside the buffer");
        return NULL;
    }
    if ((L.deep = PyObject_IsTrue(args[5])) < 0)
        return NULL;
    PyObject *result = NULL, *nodes = NULL;
    LzfRoom room = {NULL, 0};
    unsigned long long prev_key_ms = 0, prev_key_seq = 0; /* the last node's key */
    Py_INCREF(buf_obj);
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(buf_obj);
    const char *refusal = NULL;
    if ((nodes = PyObject_CallNoArgs(g_idmap_type)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        const unsigned char *key, *blob;
        size_t key_len, blob_len;
        int r;
        r = load_rdb_string(buf, &pos, end, &room, &key, &key_len, &refusal);
        if (r <= 0)
            goto refused_or_error;
        if (key_len != ID_RECORD) {
            refusal = "stream node key is not the size of a stream ID";
            goto done;
        }
        unsigned long long master_ms, master_seq;
        id_of_record(key, &master_ms, &master_seq);
        r = load_rdb_string(buf, &pos, end, &room, &blob, &blob_len, &refusal); /* (the key read: room reused) */
        if (r <= 0)
            goto refused_or_error;
        /* keys in ascending order (as Redis's radix tree writes them) cannot repeat; others
         * give way to the reference, which refuses a repeated key */
        if (i > 0 && !id_before(prev_key_ms, prev_key_seq, master_ms, master_seq)) {
            result = Py_NewRef(Py_False);
            goto done;
        }
        prev_key_ms = master_ms;
        prev_key_seq = master_seq;
        r = (L.deep ? load_node_deep : load_node_plain)(&L, blob, blob_len, master_ms, master_seq, &refusal);
        if (r == 2) {
            result = Py_NewRef(Py_False);
            goto done;
        }
        if (r <= 0)
            goto refused_or_error;
        if (nodes == Py_None)
            continue;
        if (L.first_ms != master_ms || L.first_seq != master_seq || !L.live) {
            Py_SETREF(nodes, Py_NewRef(Py_None)); /* (_loaded_nodes: not a layout Redis can have) */
            continue;
        }
        if (load_stream_node(&L, nodes, master_ms, master_seq) < 0)
            goto done;
    }
    if (build_emit(&L.build, &L.parts) < 0)
        goto done;
    result = Py_BuildValue("(nO)", pos, nodes);
    goto done;
refused_or_error:
    if (PyErr_Occurred())
        refusal = NULL;
done: /* (an error or a refusal: the map, dropped, holds the chunks emitted) */
    build_free(&L.build);
    if (refusal != NULL && result == NULL && !PyErr_Occurred())
        result = PyUnicode_FromString(refusal);
    PyMem_Free(room.bytes);
    Py_XDECREF(nodes);
    Py_XDECREF(L.fields);
    Py_XDECREF(L.dead);
    PyMem_Free(L.elems);
    PyMem_Free(L.digits);
    Py_DECREF(buf_obj);
    return result;
}

/* ------------------------------------------------------------------ native handlers */

/* What the handlers read from the server, kept for the last server seen (a strong reference):
 * the settings below from server.config.values, read again after any CONFIG SET (commands.lists
 * registers settings_changed as a config listener) and for another server; and
 * server.keyspace.blocked_keys and store_hooks (made once with the server and only mutated after). */
enum {
    CFG_LIST_FILL, CFG_HASH_ENTRIES, CFG_HASH_VALUE, CFG_SET_INTSET, CFG_SET_LP_ENTRIES, CFG_STREAM_BYTES,
    CFG_STREAM_ENTRIES, CFG_ZSET_ENTRIES, CFG_ZSET_VALUE, CFG_COUNT
};
static PyObject *k_settings[CFG_COUNT]; /* their names, interned at init */
static PyObject *g_cache_server, *g_blocked_keys, *g_store_hooks;
static PyObject *g_untrack; /* collector.untrack (what Database.add hands a collection to) */
static long long g_settings[CFG_COUNT];
static int g_settings_ok = 0;

/* Point the cache at call->server: 0, or -1 on error (nothing cached then). */
static int load_server(NativeCall *call) {
    Py_CLEAR(g_cache_server);
    Py_CLEAR(g_blocked_keys);
    Py_CLEAR(g_store_hooks);
    g_settings_ok = 0;
    if (g_untrack == NULL) {
        PyObject *collector = PyImport_ImportModule("dumpling.collector");
        g_untrack = collector == NULL ? NULL : PyObject_GetAttrString(collector, "untrack");
        Py_XDECREF(collector);
        if (g_untrack == NULL)
            return -1;
    }
    PyObject *keyspace = PyObject_GetAttr(call->server, s_keyspace);
    PyObject *blocked = keyspace == NULL ? NULL : PyObject_GetAttr(keyspace, s_blocked_keys);
    PyObject *hooks = blocked == NULL ? NULL : PyObject_GetAttr(keyspace, s_store_hooks);
    Py_XDECREF(keyspace);
    if (hooks == NULL) {
        Py_XDECREF(blocked);
        return -1;
    }
    if (!PyDict_CheckExact(blocked) || !PyList_CheckExact(hooks)) {
        Py_DECREF(blocked);
        Py_DECREF(hooks);
        PyErr_SetString(PyExc_TypeError, "keyspace.blocked_keys is not a dict or store_hooks not a list");
        return -1;
    }
    g_blocked_keys = blocked;
    g_store_hooks = hooks;
    g_cache_server = Py_NewRef(call->server);
    return 0;
}

/* 1 when a client is blocked on some key (its wake-up is Python's), 0 if not, -1 on error. */
static int clients_blocked(NativeCall *call) {
    if (call->server != g_cache_server && load_server(call) < 0)
        return -1;
    return PyDict_GET_SIZE(g_blocked_keys) != 0;
}

/* A setting (CFG_*) as a long long: 0 and *out, or -1 on error. */
static int setting_long(NativeCall *call, int which, long long *out) {
    if (call->server != g_cache_server && load_server(call) < 0)
        return -1;
    if (!g_settings_ok) {
        PyObject *config = PyObject_GetAttr(call->server, s_config);
        PyObject *values = config == NULL ? NULL : PyObject_GetAttr(config, s_values);
        Py_XDECREF(config);
        if (values == NULL)
            return -1;
        for (int i = 0; i < CFG_COUNT; i++) {
            PyObject *v = PyDict_GetItemWithError(values, k_settings[i]);
            if (v == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetObject(PyExc_KeyError, k_settings[i]);
                Py_DECREF(values);
                return -1;
            }
            g_settings[i] = PyLong_AsLongLong(v);
            if (g_settings[i] == -1 && PyErr_Occurred()) {
                Py_DECREF(values);
                return -1;
            }
        }
        Py_DECREF(values);
        g_settings_ok = 1;
    }
    *out = g_settings[which];
    return 0;
}

/* settings_changed(name): a config listener; the settings are read again on next use. */
static PyObject *py_settings_changed(PyObject *self, PyObject *name) {
    g_settings_ok = 0;
    Py_RETURN_NONE;
}

/* The key (a new reference) and its value (borrowed) when it holds a value of `type`;
 * NULL otherwise, with *absent set when the key does not exist (an exception on errors). */
static PyObject *typed_value(NativeCall *call, const NativeArg *arg, PyObject *type, PyObject **key, int *absent) {
    *absent = 0;
    *key = PyBytes_FromStringAndSize(arg->p, arg->len);
    if (*key == NULL)
        return NULL;
    PyObject *value;
    int found = native_lookup(call, *key, &value);
    if (found == NATIVE_ABSENT)
        *absent = 1;
    if (found != NATIVE_FOUND || (PyObject *)Py_TYPE(value) != type) {
        Py_CLEAR(*key);
        return NULL;
    }
    return value;
}

/* LPUSH/RPUSH/LPUSHX/RPUSHX key element: commands.lists._push on an existing list (one element:
 * several go through push()'s batch arithmetic in Python). */
static PyObject *native_push(NativeCall *call, const NativeArg *args, int argc, int head, int only_existing) {
    if (!g_handlers_on || argc != 3 || g_list_type == NULL)
        return NULL;
    PyObject *key;
    int absent;
    PyObject *value = typed_value(call, &args[1], g_list_type, &key, &absent);
    if (value == NULL)
        return absent && only_existing && !PyErr_Occurred() ? PyLong_FromLong(0) : NULL;
    PyObject *reply = NULL, *element = NULL;
    long long fill;
    Py_INCREF(value);
    if (setting_long(call, CFG_LIST_FILL, &fill) < 0)
        goto done;
    element = PyBytes_FromStringAndSize(args[2].p, args[2].len);
    if (element == NULL)
        goto done;
    Py_ssize_t new_len;
    int r = push_one(value, element, head, (long)fill, &new_len);
    if (r <= 0)
        goto done; /* an error, or declined before any change */
    if (native_touch(call, key) < 0)
        goto done;
    call->dirty += 1;
    reply = PyLong_FromSsize_t(new_len);
done:
    Py_XDECREF(element);
    Py_DECREF(value);
    Py_DECREF(key);
    return reply;
}

static PyObject *native_lpush(NativeCall *call, const NativeArg *args, int argc) {
    return native_push(call, args, argc, 1, 0);
}
static PyObject *native_rpush(NativeCall *call, const NativeArg *args, int argc) {
    return native_push(call, args, argc, 0, 0);
}
static PyObject *native_lpushx(NativeCall *call, const NativeArg *args, int argc) {
    return native_push(call, args, argc, 1, 1);
}
static PyObject *native_rpushx(NativeCall *call, const NativeArg *args, int argc) {
    return native_push(call, args, argc, 0, 1);
}

/* LPOP/RPOP key: commands.lists._pop without a count, on a list that keeps an element (the
 * last one's pop deletes the key: Python's).  A missing key answers null. */
static PyObject *native_pop(NativeCall *call, const NativeArg *args, int argc, int head) {
    if (!g_handlers_on || argc != 2 || g_list_type == NULL)
        return NULL;
    PyObject *key;
    int absent;
    PyObject *value = typed_value(call, &args[1], g_list_type, &key, &absent);
    if (value == NULL)
        return absent && !PyErr_Occurred() ? Py_NewRef(Py_None) : NULL;
    PyObject *element = NULL;
    long long fill;
    Py_INCREF(value);
    if (setting_long(call, CFG_LIST_FILL, &fill) < 0)
        goto done;
    element = pop_one(value, head, (long)fill, 1, 2); /* (the last element's pop deletes the key) */
    if (element == NULL)
        goto done;
    if (native_touch(call, key) < 0) {
        Py_CLEAR(element);
        goto done;
    }
    call->dirty += 1;
done:
    Py_DECREF(value);
    Py_DECREF(key);
    return element;
}

static PyObject *native_lpop(NativeCall *call, const NativeArg *args, int argc) {
    return native_pop(call, args, argc, 1);
}
static PyObject *native_rpop(NativeCall *call, const NativeArg *args, int argc) {
    return native_pop(call, args, argc, 0);
}

/* 1 when the attribute is a falsy container (or None), 0 if not, -1 on error. */
static int attr_empty(PyObject *obj, PyObject *name) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int r = v == Py_None ? 0 : PyObject_IsTrue(v);
    Py_DECREF(v);
    return r < 0 ? -1 : !r;
}

/* HSET key field value [field value ...]: commands.hashes._hset on an existing hash where no
 * encoding changes (every argument within hash-max-listpack-value and the fields within
 * hash-max-listpack-entries, or already a hashtable) and no field has a TTL.  The reply is the
 * number of new fields. */
/* HSET's writes into the hash's fields, a dict or (hashtable encoding) a KeyTable (`first`, when
 * not NULL, the first field's bytes made already), the touch and the dirty count: the reply, the
 * number of new fields. */
static PyObject *hset_write(NativeCall *call, PyObject *key, PyObject *fields, const NativeArg *args, int argc,
                            PyObject *first) {
    long created = 0;
    int table = native_is_keytable(fields);
    for (int i = 2; i < argc; i += 2) {
        PyObject *f = i == 2 && first != NULL ? Py_NewRef(first) : PyBytes_FromStringAndSize(args[i].p, args[i].len);
        PyObject *v = f == NULL ? NULL : PyBytes_FromStringAndSize(args[i + 1].p, args[i + 1].len);
        int bad = v == NULL;
        if (!bad && table) {
            int r = native_kt->store(fields, f, v, 0, NULL);
            bad = r < 0;
            created += r == 1; /* (1: added, 0: a present field's value replaced) */
        }
        else if (!bad) {
            Py_ssize_t before = PyDict_GET_SIZE(fields);
            bad = PyDict_SetItem(fields, f, v) < 0;
            created += PyDict_GET_SIZE(fields) > before; /* a new field (a present one keeps the size) */
        }
        Py_XDECREF(f);
        Py_XDECREF(v);
        if (bad)
            return NULL; /* (a failed allocation: the loop stops with the error) */
    }
    if (native_touch(call, key) < 0)
        return NULL;
    call->dirty += (argc - 2) / 2;
    return PyLong_FromLong(created);
}

/* The Database the last native HSET of a new key stored into (native_database_of's *last). */
static PyObject *g_database;

/* ------------------------------------------------------------------ packed small hashes */

/* A small hash HSET makes here is born packed (HashValue.packed: Redis's listpack bytes in the
 * _fields slot, no dict, no object per field or value) and HSET edits that listpack: each write
 * makes the new listpack as a new bytes (never changed in place: COPY shares them) with the
 * value replaced where it lies or the pair appended, as Redis's hashTypeSet leaves its listpack.
 * Any other command builds the dict through HashValue.fields (the first read of a restored
 * packed hash does the same), and from then on the hash is an ordinary one.  A listpack over
 * this size is left to Python (which builds it): each HSET copies the whole listpack. */
#define PACKED_HASH_MAX_BYTES 16384
#define LP_HEADER_SIZE 6 /* total bytes (4, little-endian) and the entry count (2) */

/* HSET's field/value pairs args[2..argc) written into the hash listpack lp[0:lp_len] (NULL: a
 * new hash's): the result as a new bytes and *created the number of fields it added; NULL
 * without an exception when it would not stay a packed hash (more than max_entries fields, an
 * entry count the header cannot hold, over PACKED_HASH_MAX_BYTES), with one on error.  The
 * caller checked every argument against hash-max-listpack-value. */
static PyObject *hash_listpack_set(const unsigned char *lp, size_t lp_len, const NativeArg *args, int argc,
                                   long long max_entries, long *created) {
    size_t cap = lp != NULL ? lp_len : LP_HEADER_SIZE + 1; /* (room for every pair appended) */
    for (int i = 2; i < argc; i++)
        cap += (size_t)args[i].len + 10; /* (an entry's encoding and back-length take at most 5 each) */
    if (lp != NULL && (lp_len > PACKED_HASH_MAX_BYTES || lp_len < LP_HEADER_SIZE + 1))
        return NULL; /* (a restored one that big: built by Python) */
    unsigned char small[1024];
    unsigned char *buf = cap <= sizeof small ? small : PyMem_Malloc(cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t end = LP_HEADER_SIZE, count = 0; /* the entries lie in [LP_HEADER_SIZE, end) */
    if (lp != NULL) {
        memcpy(buf, lp, lp_len - 1);
        end = lp_len - 1;
        count = (size_t)lp[4] | (size_t)lp[5] << 8;
    }
    long added = 0;
    for (int i = 2; i < argc; i += 2) {
        const unsigned char *f = (const unsigned char *)args[i].p, *v = (const unsigned char *)args[i + 1].p;
        size_t fn = (size_t)args[i].len, vn = (size_t)args[i + 1].len;
        LpePlan vplan;
        lpe_plan(v, vn, &vplan);
        /* the field among the fields (every other entry from the first), by its text: a
         * restored listpack may hold an entry in a wider encoding than this one would write */
        size_t p = LP_HEADER_SIZE;
        int found = 0;
        while (p < end) {
            unsigned char digits[LPE_INT_TEXT_MAX];
            const unsigned char *text;
            size_t n;
            lpe_text(buf + p, digits, &text, &n);
            p += lpe_size(buf + p);
            if (n == fn && memcmp(text, f, fn) == 0) {
                found = 1;
                break;
            }
            p += lpe_size(buf + p);
        }
        if (found) { /* the value at p replaced in place, the rest moved */
            size_t old = lpe_size(buf + p);
            memmove(buf + p + vplan.size, buf + p + old, end - (p + old));
            end = end + vplan.size - old;
            lpe_write(buf + p, v, vn, &vplan);
        } else {
            LpePlan fplan;
            lpe_plan(f, fn, &fplan);
            lpe_write(buf + end, f, fn, &fplan);
            end += fplan.size;
            lpe_write(buf + end, v, vn, &vplan);
            end += vplan.size;
            added++;
        }
    }
    size_t fields = count / 2 + (size_t)added, total = end + 1;
    PyObject *out = NULL;
    if ((long long)fields <= max_entries && 2 * fields < 65535 && total <= PACKED_HASH_MAX_BYTES) {
        buf[end] = 0xFF;
        for (int i = 0; i < 4; i++)
            buf[i] = (unsigned char)(total >> (8 * i));
        buf[4] = (unsigned char)((2 * fields) & 0xff);
        buf[5] = (unsigned char)((2 * fields) >> 8);
        out = PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)total);
        *created = added;
    }
    if (buf != small)
        PyMem_Free(buf);
    return out;
}

/* A new HashValue holding the packed listpack `lp` (stolen), as HashValue.packed makes it: the
 * template's other slots shared; NULL without an exception when the template is not there. */
static PyObject *hash_packed_new(PyObject *lp) {
    PyTypeObject *type = (PyTypeObject *)g_hash_type;
    if (g_hash_template == NULL || Py_TYPE(g_hash_template) != type) {
        Py_DECREF(lp);
        return NULL;
    }
    PyObject *value = type->tp_alloc(type, 0);
    if (value == NULL) {
        Py_DECREF(lp);
        return NULL;
    }
    *slot_at(value, g_hash_all_offsets[0]) = lp;
    int atomic = 1;
    for (int i = 1; i < HASH_ALL_COUNT; i++) {
        PyObject *shared = *slot_at(g_hash_template, g_hash_all_offsets[i]);
        *slot_at(value, g_hash_all_offsets[i]) = Py_XNewRef(shared);
        if (shared != NULL && PyObject_IS_GC(shared) && PyObject_GC_IsTracked(shared))
            atomic = 0;
    }
    /* Out of the cyclic GC from birth, as collector.stored leaves it (what it refers to is
     * untracked: no cycle can pass through it), so the store's untrack has nothing to walk. */
    if (atomic)
        PyObject_GC_UnTrack(value);
    return value;
}

/* 1 when every field and value argument is within hash-max-listpack-value (else HSET converts
 * the hash: Python's), 0 if not, -1 on error; *max_entries read too. */
static int hash_args_fit(NativeCall *call, const NativeArg *args, int argc, long long *max_entries) {
    long long max_value;
    if (setting_long(call, CFG_HASH_ENTRIES, max_entries) < 0 || setting_long(call, CFG_HASH_VALUE, &max_value) < 0)
        return -1;
    if ((argc - 2) / 2 > *max_entries)
        return 0; /* (repeated fields count once: there are no more than the pairs) */
    for (int i = 2; i < argc; i++)
        if (args[i].len > max_value)
            return 0;
    return 1;
}

/* HSET of a key that does not exist: commands.hashes._create (Database.add's steps: native_db_add) and
 * the fields written, the hash born packed, when it stays a listpack (the fields within
 * hash-max-listpack-entries and every argument within -value; else it converts on the way:
 * Python's) and no client is blocked on a key (Database.add would signal them). */
static PyObject *hset_new_key(NativeCall *call, PyObject *key, const NativeArg *args, int argc) {
    long long max_entries;
    if (hash_args_fit(call, args, argc, &max_entries) <= 0 || clients_blocked(call) != 0)
        return NULL;
    PyObject *db = native_database_of(call, s_keyspace, s_dbs, s_data, &g_database);
    if (db == NULL)
        return NULL;
    long created = 0;
    PyObject *lp = hash_listpack_set(NULL, 0, args, argc, max_entries, &created);
    PyObject *value = lp == NULL ? NULL : hash_packed_new(lp);
    if (value == NULL)
        return NULL;
    int bad = native_db_add(call, db, g_store_hooks, g_untrack, key, value);
    Py_DECREF(value);
    if (bad)
        return NULL;
    call->dirty += (argc - 2) / 2; /* (a new key's LRU field is add()'s, as in Python) */
    return PyLong_FromLong(created);
}

/* HSET on a packed hash (no field TTLs: a packed one has none): its listpack edited, or NULL
 * without an exception to leave it to Python (a conversion, a listpack grown too big). */
static PyObject *hset_packed(NativeCall *call, PyObject *key, PyObject *value, PyObject *lp, const NativeArg *args,
                             int argc) {
    long long max_entries;
    int fit = hash_args_fit(call, args, argc, &max_entries);
    if (fit <= 0)
        return NULL;
    long created = 0;
    PyObject *edited = hash_listpack_set((const unsigned char *)PyBytes_AS_STRING(lp), (size_t)PyBytes_GET_SIZE(lp),
                                         args, argc, max_entries, &created);
    if (edited == NULL)
        return NULL;
    Py_SETREF(*slot_at(value, g_hash_offsets[HV_FIELDS]), edited);
    if (native_touch(call, key) < 0)
        return NULL;
    call->dirty += (argc - 2) / 2;
    return PyLong_FromLong(created);
}

static PyObject *native_hset(NativeCall *call, const NativeArg *args, int argc) {
    if (!g_handlers_on || argc < 4 || argc % 2 != 0 || g_hash_type == NULL || !g_hash_slots_ok)
        return NULL;
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len), *value;
    int found = key == NULL ? -1 : native_lookup(call, key, &value); /* (typed_value, the key kept) */
    if (found != NATIVE_FOUND || (PyObject *)Py_TYPE(value) != g_hash_type) {
        /* a new key: its bytes (their hash cached by the lookup) are the stored key */
        PyObject *made = found == NATIVE_ABSENT ? hset_new_key(call, key, args, argc) : NULL;
        Py_XDECREF(key);
        return made;
    }
    PyObject *reply = NULL, *first = NULL;
    Py_INCREF(value);
    PyObject *fields = *slot_at(value, g_hash_offsets[HV_FIELDS]);
    PyObject *encoding = *slot_at(value, g_hash_offsets[HV_ENCODING]);
    PyObject *expires = *slot_at(value, g_hash_offsets[HV_FIELD_EXPIRES]);
    if (fields != NULL && PyBytes_CheckExact(fields) && encoding != NULL &&
        (encoding == u_listpack || str_is(encoding, u_listpack) > 0) && expires != NULL &&
        PyDict_Check(expires) && PyDict_GET_SIZE(expires) == 0) {
        reply = hset_packed(call, key, value, fields, args, argc);
        goto done;
    }
    /* (the fields: a dict or a hashtable's KeyTable; bytes while packed, other than above: declined) */
    if (fields == NULL || encoding == NULL || expires == NULL || !(PyDict_CheckExact(fields) || native_is_keytable(fields)))
        goto done;
    /* field TTLs (listpackex placement): Python's (NO_FIELD_TTLS is an empty dict subclass, shared) */
    int r = PyDict_Check(expires) ? PyDict_GET_SIZE(expires) != 0 : PyObject_IsTrue(expires);
    if (r != 0)
        goto done;
    int hashtable = encoding == u_listpack ? 0 : str_is(encoding, u_hashtable);
    if (hashtable < 0)
        goto done;
    Py_ssize_t pairs = (argc - 2) / 2;
    if (!hashtable) {
        long long max_entries, max_value;
        if (setting_long(call, CFG_HASH_ENTRIES, &max_entries) < 0 || setting_long(call, CFG_HASH_VALUE, &max_value) < 0)
            goto done;
        if (pairs > max_entries)
            goto done; /* try_conversion */
        for (int i = 2; i < argc; i++)
            if (args[i].len > max_value)
                goto done;
        /* the fields it would add (counting repeats once) must keep it within the entries */
        if (pairs == 1) { /* (the common case: no set of the new fields; the field made here is written below) */
            first = PyBytes_FromStringAndSize(args[2].p, args[2].len);
            int in = first == NULL ? -1 : PyDict_Contains(fields, first);
            if (in < 0)
                goto done;
            if (PyDict_GET_SIZE(fields) + !in > max_entries)
                goto done; /* set() converts on the way: Python's */
            goto write;
        }
        PyObject *seen = PySet_New(NULL);
        if (seen == NULL)
            goto done;
        for (int i = 2; i < argc; i += 2) {
            PyObject *f = PyBytes_FromStringAndSize(args[i].p, args[i].len);
            int in = f == NULL ? -1 : PyDict_Contains(fields, f);
            if (in == 0)
                in = PySet_Add(seen, f);
            Py_XDECREF(f);
            if (in < 0) {
                Py_DECREF(seen);
                goto done;
            }
        }
        Py_ssize_t fresh = PySet_GET_SIZE(seen);
        Py_DECREF(seen);
        if (PyDict_GET_SIZE(fields) + fresh > max_entries)
            goto done; /* set() converts on the way: Python's */
    }
write:
    reply = hset_write(call, key, fields, args, argc, first);
done:
    Py_XDECREF(first);
    Py_DECREF(value);
    Py_DECREF(key);
    return reply;
}

/* SADD key member...: commands.sets.sadd on an existing set when it changes no encoding: every
 * member already in it (any encoding, the size hint within its limit), or a hashtable set
 * without SSCAN cursor state. */
static PyObject *native_sadd(NativeCall *call, const NativeArg *args, int argc) {
    if (!g_handlers_on || argc < 3 || g_set_type == NULL)
        return NULL;
    PyObject *key;
    int absent;
    PyObject *value = typed_value(call, &args[1], g_set_type, &key, &absent);
    if (value == NULL)
        return NULL;
    PyObject *reply = NULL, *members = NULL, *encoding = NULL, *fresh = NULL;
    Py_INCREF(value);
    if (g_set_slots_ok) {
        members = Py_XNewRef(*slot_at(value, g_set_offsets[SETV_MEMBERS]));
        encoding = Py_XNewRef(*slot_at(value, g_set_offsets[SETV_ENCODING]));
    } else {
        members = PyObject_GetAttr(value, s_members);
        encoding = members == NULL ? NULL : PyObject_GetAttr(value, s_encoding);
    }
    if (members == NULL || encoding == NULL || !PySet_CheckExact(members))
        goto done; /* (an unset slot, or an error) */
    int hashtable = encoding == u_listpack || encoding == u_intset ? 0 : str_is(encoding, u_hashtable);
    if (hashtable < 0)
        goto done;
    if (!hashtable) { /* maybe_convert's size hint */
        int listpack = str_is(encoding, u_listpack), intset = 0;
        if (listpack < 0 || (!listpack && (intset = str_is(encoding, u_intset)) <= 0))
            goto done;
        long long limit;
        if (setting_long(call, listpack ? CFG_SET_LP_ENTRIES : CFG_SET_INTSET, &limit) < 0 || argc - 2 > limit)
            goto done;
    }
    fresh = PyList_New(0);
    if (fresh == NULL)
        goto done;
    for (int i = 2; i < argc; i++) {
        PyObject *m = PyBytes_FromStringAndSize(args[i].p, args[i].len);
        int in = m == NULL ? -1 : PySet_Contains(members, m);
        int bad = in < 0 || (in == 0 && PyList_Append(fresh, m) < 0);
        Py_XDECREF(m);
        if (bad)
            goto done;
    }
    Py_ssize_t added = 0;
    if (PyList_GET_SIZE(fresh)) {
        int r;
        if (!hashtable || (r = attr_empty(value, s_scan)) <= 0)
            goto done; /* an encoding to check or change, or SSCAN state: Python's */
        Py_ssize_t before = PySet_GET_SIZE(members);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(fresh); i++)
            if (PySet_Add(members, PyList_GET_ITEM(fresh, i)) < 0)
                goto done;
        added = PySet_GET_SIZE(members) - before;
    }
    if (native_touch(call, key) < 0)
        goto done;
    call->dirty += added;
    reply = PyLong_FromSsize_t(added);
done:
    Py_XDECREF(fresh);
    Py_XDECREF(encoding);
    Py_XDECREF(members);
    Py_DECREF(value);
    Py_DECREF(key);
    return reply;
}

/* XADD key * field value [field value ...]: commands.streams.xadd's plainest form (an
 * automatic ID, no NOMKSTREAM or trimming) on an existing stream nobody is blocked on.  The
 * handler's parsing and ID choice are here; the entry goes in through the same
 * StreamValue.append (Python: the radix tree's listpack accounting) the Python handler calls.
 * Declined: other forms, a new key, an ID space at its end, elements over 1 GiB. */
static PyObject *native_xadd(NativeCall *call, const NativeArg *args, int argc) {
    if (!g_handlers_on || g_stream_type == NULL || !g_stream_slots_ok || argc < 5 || (argc - 3) % 2 != 0 ||
        args[2].len != 1 || args[2].p[0] != '*')
        return NULL;
    long long total = 0;
    for (int i = 3; i < argc; i++)
        total += args[i].len;
    if (total > (1LL << 30))
        return NULL;
    int waiting = clients_blocked(call);
    if (waiting != 0)
        return NULL; /* clients to wake (or an error) */
    long long n_bytes, n_entries;
    if (setting_long(call, CFG_STREAM_BYTES, &n_bytes) < 0 || setting_long(call, CFG_STREAM_ENTRIES, &n_entries) < 0)
        return NULL;
    PyObject *key;
    int absent;
    PyObject *value = typed_value(call, &args[1], g_stream_type, &key, &absent);
    if (value == NULL)
        return NULL;
    PyObject *reply = NULL, *flat = NULL, *id = NULL;
    FlatElem stack[FLAT_STACK], *heap = NULL, *elems = stack;
    Py_INCREF(value);
    PyObject *last = *slot_at(value, g_stream_offsets[SV_LAST_ID]);
    unsigned long long ms, seq;
    if (last == NULL || id_parts(last, &ms, &seq) <= 0)
        goto done; /* (an unset slot: declined) */
    unsigned long long now = (unsigned long long)call->now_ms, new_ms, new_seq;
    if (call->now_ms >= 0 && now > ms) {
        new_ms = now;
        new_seq = 0;
    } else if (seq != UINT64_MAX) {
        new_ms = ms;
        new_seq = seq + 1;
    } else {
        goto done; /* the next millisecond, or the ID space's end: Python's */
    }
    /* the entry is packed from the request's bytes (no object per element); a field the last
     * node's master entry has is that node's bytes object (a new node keeps it, and the
     * comparison with the master is a pointer's) */
    Py_ssize_t n_flat = argc - 3;
    if (n_flat > FLAT_STACK && (elems = heap = PyMem_New(FlatElem, n_flat)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *master = last_master_fields(value);
    Py_ssize_t n_master = master == NULL ? 0 : PyList_GET_SIZE(master);
    for (int i = 3; i < argc; i++) {
        PyObject *m = (i - 3) % 2 == 0 && (i - 3) / 2 < n_master ? PyList_GET_ITEM(master, (i - 3) / 2) : NULL;
        elems[i - 3] = (FlatElem){args[i].p, args[i].len, NULL};
        if (m != NULL && PyBytes_CheckExact(m) && PyBytes_GET_SIZE(m) == args[i].len &&
            memcmp(PyBytes_AS_STRING(m), args[i].p, args[i].len) == 0)
            elems[i - 3].obj = m;
    }
    /* the ID: the last one's ms int again while the millisecond lasts (sequence numbers up
     * to 256 are CPython's shared small ints) */
    PyObject *ms_obj = new_ms == ms ? Py_NewRef(PyTuple_GET_ITEM(last, 0)) : PyLong_FromUnsignedLongLong(new_ms);
    PyObject *seq_obj = ms_obj == NULL ? NULL : PyLong_FromUnsignedLongLong(new_seq);
    if (seq_obj == NULL || (id = PyTuple_New(2)) == NULL) {
        Py_XDECREF(ms_obj);
        Py_XDECREF(seq_obj);
        goto done;
    }
    PyTuple_SET_ITEM(id, 0, ms_obj);
    PyTuple_SET_ITEM(id, 1, seq_obj);
    int appended = stream_append_id(value, id, new_ms, new_seq, elems, n_flat, n_bytes, n_entries);
    if (appended < 0)
        goto done; /* (after a change: the loop stops with the error) */
    if (!appended) { /* the layout to build first, or an unusual one: the Python reference */
        if ((flat = PyList_New(n_flat)) == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < n_flat; i++) {
            PyObject *a = elem_object(&elems[i]);
            if (a == NULL)
                goto done;
            PyList_SET_ITEM(flat, i, a);
        }
        PyObject *limits = Py_BuildValue("(LL)", n_bytes, n_entries);
        PyObject *r = limits == NULL ? NULL
                                     : PyObject_CallMethodObjArgs(value, s_append_entry, id, flat, PyTuple_GET_ITEM(limits, 0),
                                                                  PyTuple_GET_ITEM(limits, 1), NULL);
        Py_XDECREF(limits);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    if (native_touch(call, key) < 0)
        goto done;
    call->dirty += 1;
    char text[48];
    int n = native_u64_text(text, new_ms);
    text[n++] = '-';
    n += native_u64_text(text + n, new_seq);
    reply = PyBytes_FromStringAndSize(text, n);
done:
    PyMem_Free(heap);
    Py_XDECREF(id);
    Py_XDECREF(flat);
    Py_DECREF(value);
    Py_DECREF(key);
    return reply;
}

/* A score in the plainest form, [-]digits[.digits] of at most 40 characters, read with the C
 * library's strtod as Redis's string2d reads it (correctly rounded; this form can neither
 * overflow nor underflow): 1 and *out, or 0 for anything else (the Python handler's
 * parse_double then decides: exponents, inf, hex, spaces, errors). */
static int plain_score(const char *p, Py_ssize_t n, double *out) {
    if (n == 0 || n > 40)
        return 0;
    Py_ssize_t i = p[0] == '-', digits = 0, point = 0;
    for (; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9')
            digits++;
        else if (p[i] == '.' && !point && digits && i + 1 < n)
            point = 1;
        else
            return 0;
    }
    if (!digits)
        return 0;
    char text[48];
    memcpy(text, p, (size_t)n);
    text[n] = '\0';
    char *end;
    *out = strtod(text, &end);
    return end == text + n;
}

/* ZADD key score member: commands.zsets.zadd's one-member form on an existing zset, where it
 * changes no encoding: the member at that score already (no change: 0), or a new member or a
 * new score through the same ZSetValue.add_checked / update the Python handler calls (the
 * ScoreIndex kept by that code).  Declined: other forms and scores, a new key, a
 * listpack the add would convert (or that zset-max-listpack-entries 0 converts), clients
 * blocked on some key (to be woken: Python's). */
static PyObject *native_zadd(NativeCall *call, const NativeArg *args, int argc) {
    double score;
    if (!g_handlers_on || argc != 4 || g_zset_type == NULL || !plain_score(args[2].p, args[2].len, &score))
        return NULL;
    int waiting = clients_blocked(call);
    if (waiting != 0)
        return NULL; /* clients to wake (or an error) */
    PyObject *key;
    int absent;
    PyObject *value = typed_value(call, &args[1], g_zset_type, &key, &absent);
    if (value == NULL)
        return NULL;
    PyObject *reply = NULL, *scores = NULL, *encoding = NULL, *member = NULL, *r = NULL;
    Py_INCREF(value);
    if (g_zset_slots_ok) {
        scores = Py_XNewRef(*slot_at(value, g_zset_offsets[ZS_SCORES]));
        encoding = Py_XNewRef(*slot_at(value, g_zset_offsets[ZS_ENCODING]));
        if (scores == NULL || encoding == NULL)
            goto done; /* (a slot not set: Python's) */
    } else if ((scores = PyObject_GetAttr(value, s_scores)) == NULL ||
               (encoding = PyObject_GetAttr(value, s_encoding)) == NULL) {
        goto done;
    }
    int listpack = str_is(encoding, u_listpack);
    if (listpack < 0 || !PyDict_CheckExact(scores))
        goto done; /* (a packed zset's _scores is its restored listpack: Python builds it) */
    long long max_entries = 0, max_value = 0;
    if (listpack && (setting_long(call, CFG_ZSET_ENTRIES, &max_entries) < 0 || setting_long(call, CFG_ZSET_VALUE, &max_value) < 0 ||
                     max_entries <= 0))
        goto done;
    if ((member = PyBytes_FromStringAndSize(args[3].p, args[3].len)) == NULL)
        goto done;
    PyObject *old = PyDict_GetItemWithError(scores, member);
    if (old == NULL && PyErr_Occurred())
        goto done;
    if (old != NULL && !PyFloat_CheckExact(old))
        goto done;
    int fresh = old == NULL;
    if (!fresh && PyFloat_AS_DOUBLE(old) == score) { /* zsetAdd's "nothing to do" */
        if (native_touch(call, key) < 0)
            goto done;
        reply = PyLong_FromLong(0);
        goto done;
    }
    if (fresh && listpack && (PyDict_GET_SIZE(scores) + 1 > max_entries || args[3].len > max_value))
        goto done; /* add_checked would convert it: Python's */
    PyObject *score_obj = PyFloat_FromDouble(score);
    if (score_obj == NULL)
        goto done;
    if (fresh) {
        PyObject *entries_obj = PyLong_FromLongLong(max_entries), *value_obj = PyLong_FromLongLong(max_value);
        if (entries_obj != NULL && value_obj != NULL)
            r = PyObject_CallMethodObjArgs(value, s_add_checked, member, score_obj, entries_obj, value_obj, NULL);
        Py_XDECREF(entries_obj);
        Py_XDECREF(value_obj);
    } else {
        Py_INCREF(old); /* (update replaces it in the dict) */
        r = PyObject_CallMethodObjArgs(value, s_update, member, old, score_obj, NULL);
        Py_DECREF(old);
    }
    Py_DECREF(score_obj);
    if (r == NULL || native_touch(call, key) < 0)
        goto done; /* (after a change: the loop stops with the error) */
    call->dirty += 1;
    reply = PyLong_FromLong(fresh);
done:
    Py_XDECREF(r);
    Py_XDECREF(member);
    Py_XDECREF(encoding);
    Py_XDECREF(scores);
    Py_DECREF(value);
    Py_DECREF(key);
    return reply;
}

/* SPOP key / ZPOPMIN key / ZPOPMAX key (no count) on a key that does not exist: the Python
 * handlers' reply for it (null; an empty array), with their effects (none: a write lookup
 * counts no miss).  Any existing or expired key is declined to them. */
static PyObject *absent_key_reply(NativeCall *call, const NativeArg *args, int argc, int empty_array) {
    if (!g_handlers_on || argc != 2)
        return NULL;
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len), *value;
    if (key == NULL)
        return NULL;
    int found = native_lookup(call, key, &value);
    Py_DECREF(key);
    if (found != NATIVE_ABSENT)
        return NULL;
    return empty_array ? PyList_New(0) : Py_NewRef(Py_None);
}

static PyObject *native_spop(NativeCall *call, const NativeArg *args, int argc) {
    return absent_key_reply(call, args, argc, 0);
}
static PyObject *native_zpop(NativeCall *call, const NativeArg *args, int argc) {
    return absent_key_reply(call, args, argc, 1);
}

/* configure(ListValue, HashValue, SetValue, StreamValue, StreamNode, ZSetValue): the value
 * classes the native handlers and the value helpers accept. */
static PyObject *py_configure(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "configure(ListValue, HashValue, SetValue, StreamValue, StreamNode, ZSetValue)");
        return NULL;
    }
    PyObject *streams = PyImport_ImportModule("dumpling.datatypes.streams");
    if (streams == NULL)
        return NULL;
    PyObject *idmap = PyObject_GetAttrString(streams, "IdMap");
    PyObject *chunk = idmap == NULL ? NULL : PyObject_GetAttrString(streams, "CHUNK");
    PyObject *entrymap = chunk == NULL ? NULL : PyObject_GetAttrString(streams, "EntryMap");
    PyObject *flats = entrymap == NULL ? NULL : PyObject_GetAttrString(streams, "PackedFlats");
    Py_DECREF(streams);
    if (flats == NULL) {
        Py_XDECREF(idmap);
        Py_XDECREF(chunk);
        Py_XDECREF(entrymap);
        return NULL;
    }
    Py_XSETREF(g_entrymap_type, entrymap);
    Py_XSETREF(g_flats_type, flats);
    g_flats_slots_ok = native_slot_offsets(g_flats_type, FLATS_SLOTS, PF_COUNT, g_flats_offsets) > 0;
    Py_ssize_t n_chunk = chunk == NULL ? -1 : PyLong_AsSsize_t(chunk);
    Py_XDECREF(chunk);
    if (n_chunk == -1 && PyErr_Occurred()) {
        Py_XDECREF(idmap);
        return NULL;
    }
    g_idmap_chunk = n_chunk;
    Py_XSETREF(g_idmap_type, idmap);
    PyObject *collector = PyImport_ImportModule("dumpling.collector");
    PyObject *untrack = collector == NULL ? NULL : PyObject_GetAttrString(collector, "untrack");
    Py_XDECREF(collector);
    if (untrack == NULL)
        return NULL;
    Py_XSETREF(g_untrack, untrack);
    Py_XSETREF(g_list_type, Py_NewRef(args[0]));
    if (g_elements == NULL) {
        g_elements = PyCapsule_Import(ELEMENTLIST_CAPSULE, 0);
        if (g_elements == NULL)
            PyErr_Clear(); /* not built: the elements' Python methods serve */
    }
    /* (a value whose fields are not plain slots is declined: its Python handler runs) */
    g_list_slots_ok = native_slot_offsets(args[0], LIST_SLOTS, L_COUNT, g_list_offsets) > 0;
    Py_XSETREF(g_hash_type, Py_NewRef(args[1]));
    g_hash_slots_ok = native_slot_offsets(args[1], HASH_SLOTS, HV_COUNT, g_hash_offsets) > 0;
    Py_CLEAR(g_hash_template);
    if (g_hash_slots_ok && native_exact_slots(args[1], HASH_ALL_SLOTS, HASH_ALL_COUNT, g_hash_all_offsets) > 0)
        g_hash_template = PyObject_CallNoArgs(args[1]);
    Py_XSETREF(g_set_type, Py_NewRef(args[2]));
    g_set_slots_ok = native_slot_offsets(args[2], SET_SLOTS, SETV_COUNT, g_set_offsets) > 0;
    Py_XSETREF(g_stream_type, Py_NewRef(args[3]));
    Py_XSETREF(g_node_type, Py_NewRef(args[4]));
    g_stream_slots_ok = native_slot_offsets(args[3], STREAM_SLOTS, SV_COUNT, g_stream_offsets) > 0 &&
                        native_slot_offsets(args[4], NODE_SLOTS, SN_COUNT, g_node_offsets) > 0 &&
                        native_slot_offsets(g_idmap_type, IDMAP_SLOTS, IM_COUNT, g_idmap_offsets) > 0 &&
                        g_idmap_chunk > 0;
    Py_XSETREF(g_zset_type, Py_NewRef(args[5]));
    g_zset_slots_ok = native_slot_offsets(args[5], ZSET_SLOTS, ZS_COUNT, g_zset_offsets) > 0;
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* set_native_handlers(on): run the handlers, or decline every call to the Python handlers. */
static PyObject *py_set_native_handlers(PyObject *self, PyObject *on) {
    int r = PyObject_IsTrue(on);
    if (r < 0)
        return NULL;
    g_handlers_on = r;
    Py_RETURN_NONE;
}

/* native_handlers() -> {name: capsule} */
static PyObject *py_native_handlers(PyObject *self, PyObject *unused) {
    static const struct {
        const char *name;
        NativeHandler handler;
    } table[] = {{"lpush", native_lpush}, {"rpush", native_rpush}, {"lpushx", native_lpushx},
                 {"rpushx", native_rpushx}, {"lpop", native_lpop}, {"rpop", native_rpop},
                 {"hset", native_hset}, {"sadd", native_sadd}, {"xadd", native_xadd},
                 {"zadd", native_zadd}, {"spop", native_spop}, {"zpopmin", native_zpop},
                 {"zpopmax", native_zpop}};
    PyObject *handlers = PyDict_New();
    if (handlers == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        PyObject *capsule = PyCapsule_New((void *)table[i].handler, NATIVE_CAPSULE, NULL);
        if (capsule == NULL || PyDict_SetItemString(handlers, table[i].name, capsule) < 0) {
            Py_XDECREF(capsule);
            Py_DECREF(handlers);
            return NULL;
        }
        Py_DECREF(capsule);
    }
    return handlers;
}

/* ------------------------------------------------------------------ a stream range's reply */

/* XRANGE/XREVRANGE's (and XREAD's per stream) entries as RESP, written straight from the packed
 * chunks of an EntryMap: "*N" then each entry "*2", "$<id text>", "*<2k>" and its fields and
 * values as bulks (the same bytes in RESP2 and RESP3), with no object per entry.  The ID text
 * is ms-seq in decimal.  streams._range_wire_py is the reference (pure mode, and whatever this
 * declines).  The reply is written into a BytesWire (_native.h) and cut to size at the end; no
 * Python code runs while it is written, so the chunks' borrowed pointers stay valid. */

/* One chunk's part being written: its ID records, packed data, end offsets and master fields. */
typedef struct {
    const unsigned char *keys, *data;
    PyObject *ends;
    Py_ssize_t data_len;
    ElemSpan *master; /* the master fields' spans (nm of them; nm -1: the chunk has none) */
    size_t m_cap;
    Py_ssize_t nm;
} RangeChunk;

/* The chunk i of the map: 1, 0 not the layout this code reads (declined), -1 error. */
static int range_chunk(const IdMapParts *ep, Py_ssize_t i, RangeChunk *c, Py_ssize_t *count) {
    PyObject *keys = PyList_GET_ITEM(ep->keys, i), *chunk = PyList_GET_ITEM(ep->vals, i), *master, *data, *ends;
    if (!PyByteArray_CheckExact(keys) || (PyObject *)Py_TYPE(chunk) != g_flats_type || !flats_parts(chunk, &master, &data, &ends))
        return 0;
    *count = PyByteArray_GET_SIZE(ends) / 4;
    if (PyByteArray_GET_SIZE(keys) != *count * ID_RECORD)
        return 0;
    c->keys = (const unsigned char *)PyByteArray_AS_STRING(keys);
    c->data = (const unsigned char *)PyByteArray_AS_STRING(data);
    c->data_len = PyByteArray_GET_SIZE(data);
    c->ends = ends;
    c->nm = master == Py_None ? -1 : PyTuple_GET_SIZE(master);
    if (c->nm > 0 && spans_room(&c->master, &c->m_cap, (size_t)c->nm) < 0)
        return -1;
    for (Py_ssize_t f = 0; f < c->nm; f++) {
        const char *p;
        Py_ssize_t len;
        if (!elem_bytes(PyTuple_GET_ITEM(master, f), &p, &len))
            return 0;
        c->master[f].p = (const unsigned char *)p;
        c->master[f].n = (size_t)len;
    }
    return 1;
}

/* The entry j of the chunk written: 0, or -1 (no memory, or a corrupt chunk: ValueError). */
static int range_entry(BytesWire *w, const RangeChunk *c, Py_ssize_t j) {
    uint32_t from = j ? flats_end(c->ends, j - 1) : 0, to = flats_end(c->ends, j);
    if (from > to || (Py_ssize_t)to > c->data_len)
        goto corrupt;
    const unsigned char *p = c->data + from, *end = c->data + to;
    unsigned long long header, size, ms, seq;
    if (varint_get(&p, end, &header) < 0)
        goto corrupt;
    int same = (int)(header & 1);
    unsigned long long n = header >> 1;
    if (n > (unsigned long long)(end - p) * 2 + 2 || (same && (c->nm < 0 || n != 2 * (unsigned long long)c->nm)))
        goto corrupt;
    id_of_record(c->keys + j * ID_RECORD, &ms, &seq);
    char id[42];
    int id_len = native_u64_text(id, ms);
    id[id_len++] = '-';
    id_len += native_u64_text(id + id_len, seq);
    if (bytes_wire_room(w, 4 + 25 + 42 + 23) < 0)
        return -1;
    memcpy(w->p, "*2\r\n", 4);
    w->p = wire_head_at(w->p + 4, '$', (unsigned long long)id_len);
    memcpy(w->p, id, (size_t)id_len);
    w->p += id_len;
    *w->p++ = '\r';
    *w->p++ = '\n';
    w->p = wire_head_at(w->p, '*', n);
    for (unsigned long long i = 0; i < n; i++) {
        if (same && i % 2 == 0) {
            const ElemSpan *f = &c->master[i / 2];
            if (bytes_wire_bulk(w, f->p, f->n) < 0)
                return -1;
            continue;
        }
        if (varint_get(&p, end, &size) < 0 || size > (unsigned long long)(end - p))
            goto corrupt;
        if (bytes_wire_bulk(w, p, (size_t)size) < 0)
            return -1;
        p += size;
    }
    return 0;
corrupt:
    PyErr_SetString(PyExc_ValueError, "stream_range_reply: not a packed stream chunk");
    return -1;
}

/* stream_range_reply(entries, start_id, end_id, count, reverse, most) -> bytes, False or None:
 * streams._range_wire_py.  The entries from start_id to end_id (both included; none when start
 * is past end), at most `count` of them (0: all), from the end when `reverse`; False once the
 * reply passes `most` bytes (-1: no limit), as soon as it does (what is left is not written);
 * None: not this code's case (not an EntryMap, a chunk or master field not of its layout). */
static PyObject *py_stream_range_reply(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "stream_range_reply(entries, start_id, end_id, count, reverse, most)");
        return NULL;
    }
    IdMapParts ep;
    unsigned long long sms, sseq, ems, eseq;
    if (!idmap_parts(args[0], &ep) || !ep.packed)
        Py_RETURN_NONE;
    int r = id_parts(args[1], &sms, &sseq);
    if (r > 0)
        r = id_parts(args[2], &ems, &eseq);
    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    Py_ssize_t count = PyLong_AsSsize_t(args[3]);
    long long most = PyLong_AsLongLong(args[5]);
    int reverse = PyObject_IsTrue(args[4]);
    if ((count == -1 || most == -1) && PyErr_Occurred())
        return NULL;
    if (reverse < 0)
        return NULL;
    if (count < 0) {
        PyErr_SetString(PyExc_ValueError, "stream_range_reply: count is 0 (all) or more");
        return NULL;
    }
    /* The span: chunk ci place pi up to (not including) chunk ce place pe, as IdMap._span; its
     * chunks counted from the reading end only until they hold `count` (COUNT 10 of a big stream
     * looks at one or two chunks). */
    Py_ssize_t n_chunks = PyList_GET_SIZE(ep.vals), ci = 0, pi = 0, ce = -1, pe = 0, n = 0;
    size_t data_bytes = 0;
    RangeChunk chunk;
    memset(&chunk, 0, sizeof chunk);
    PyObject *result = NULL;
    if (n_chunks && !id_before(ems, eseq, sms, sseq)) {
        unsigned char low[ID_RECORD], high[ID_RECORD];
        id_record(low, sms, sseq);
        id_record(high, ems, eseq);
        const unsigned char *maxes = (const unsigned char *)PyByteArray_AS_STRING(ep.maxes);
        ci = records_bisect(maxes, n_chunks, low, 0);
        ce = records_bisect(maxes, n_chunks, high, 1);
        int ce_whole = ce == n_chunks; /* (past the last chunk's last key: all of it) */
        if (ce_whole)
            ce = n_chunks - 1;
        if (ci == n_chunks)
            ce = -1; /* (nothing) */
        for (Py_ssize_t k = 0; k <= ce - ci && (!count || n < count); k++) {
            Py_ssize_t i = reverse ? ce - k : ci + k, in_chunk;
            if ((r = range_chunk(&ep, i, &chunk, &in_chunk)) <= 0)
                goto declined;
            Py_ssize_t start = i == ci ? records_bisect(chunk.keys, in_chunk, low, 0) : 0;
            Py_ssize_t stop = i == ce && !ce_whole ? records_bisect(chunk.keys, in_chunk, high, 1) : in_chunk;
            if (i == ci)
                pi = start;
            if (i == ce)
                pe = stop;
            Py_ssize_t take = stop > start ? stop - start : 0;
            if (count && take > count - n)
                take = count - n;
            if (take) {
                Py_ssize_t a = reverse ? stop - take : start, b = reverse ? stop : start + take;
                data_bytes += flats_end(chunk.ends, b - 1) - (a ? flats_end(chunk.ends, a - 1) : 0);
                n += take;
            }
        }
    }
    /* a first room of the packed bytes read and some 50 bytes an entry */
    size_t guess = 16 + data_bytes + 50 * (size_t)n;
    if (most >= 0 && guess > (size_t)most + 64)
        guess = (size_t)most + 64;
    BytesWire w = {PyBytes_FromStringAndSize(NULL, (Py_ssize_t)guess), NULL, NULL};
    if (w.bytes == NULL)
        goto done;
    w.p = PyBytes_AS_STRING(w.bytes);
    w.end = w.p + guess;
    w.p = wire_head_at(w.p, '*', (unsigned long long)n);
    Py_ssize_t left = n;
    for (Py_ssize_t k = 0; left > 0 && k <= ce - ci; k++) {
        Py_ssize_t i = reverse ? ce - k : ci + k, in_chunk;
        if ((r = range_chunk(&ep, i, &chunk, &in_chunk)) <= 0)
            goto failed; /* (-1; 0 cannot be: the same chunks were read above) */
        Py_ssize_t start = i == ci ? pi : 0, stop = i == ce ? pe : in_chunk;
        for (Py_ssize_t m = 0; left > 0 && m < stop - start; m++, left--) {
            if (range_entry(&w, &chunk, reverse ? stop - 1 - m : start + m) < 0)
                goto failed;
            if (most >= 0 && w.p - PyBytes_AS_STRING(w.bytes) > most) {
                Py_DECREF(w.bytes);
                result = Py_NewRef(Py_False);
                goto done;
            }
        }
    }
    if (most >= 0 && w.p - PyBytes_AS_STRING(w.bytes) > most) {
        Py_DECREF(w.bytes);
        result = Py_NewRef(Py_False);
        goto done;
    }
    if (_PyBytes_Resize(&w.bytes, w.p - PyBytes_AS_STRING(w.bytes)) == 0)
        result = w.bytes;
    goto done;
failed:
    Py_XDECREF(w.bytes);
    if (r == 0)
        PyErr_SetString(PyExc_RuntimeError, "stream_range_reply: the entries changed while written");
    goto done;
declined:
    if (r == 0)
        result = Py_NewRef(Py_None);
done:
    PyMem_Free(chunk.master);
    return result;
}

static PyMethodDef methods[] = {
    {"list_push_one", (PyCFunction)(void (*)(void))py_list_push_one, METH_FASTCALL,
     "list_push_one(value, element, head, fill) -> bool: ListValue._push_one, or False (not its case)."},
    {"list_pop_one", (PyCFunction)(void (*)(void))py_list_pop_one, METH_FASTCALL,
     "list_pop_one(value, head, fill) -> element or None: ListValue.pop of one element, or None (not its case)."},
    {"stream_append", (PyCFunction)(void (*)(void))py_stream_append, METH_FASTCALL,
     "stream_append(value, entry_id, flat, max_bytes, max_entries) -> bool: StreamValue.append, or False (not its case)."},
    {"flats_append", (PyCFunction)(void (*)(void))py_flats_append, METH_FASTCALL,
     "flats_append(chunk, flat) -> bool: a stream entry packed at the end of a PackedFlats, or False (past its size limit)."},
    {"flats_unpack", (PyCFunction)(void (*)(void))py_flats_unpack, METH_FASTCALL,
     "flats_unpack(data, ends, master, start, stop) -> the flat lists of a PackedFlats' entries start to stop."},
    {"flats_delete", (PyCFunction)(void (*)(void))py_flats_delete, METH_FASTCALL,
     "flats_delete(chunk, start, stop): remove a PackedFlats' entries start to stop."},
    {"stream_node_listpack", (PyCFunction)(void (*)(void))py_stream_node_listpack, METH_FASTCALL,
     "stream_node_listpack(entries, master_id, last_id, master_fields, live, deleted, dead) -> one stream node's listpack, "
     "or None (not its case)."},
    {"stream_range_reply", (PyCFunction)(void (*)(void))py_stream_range_reply, METH_FASTCALL,
     "stream_range_reply(entries, start_id, end_id, count, reverse, most) -> the RESP reply of a stream range's entries, "
     "False (past most bytes) or None (not its case)."},
    {"stream_nodes_body", (PyCFunction)(void (*)(void))py_stream_nodes_body, METH_FASTCALL,
     "stream_nodes_body(out, entries, nodes, start, lzf) -> the index of the first node not appended to out (each node's "
     "key and listpack as encode_stream frames them)."},
    {"lzf_expand", (PyCFunction)(void (*)(void))py_lzf_expand, METH_FASTCALL,
     "lzf_expand(data, ulen): stream_load_nodes' LZF expansion by itself (bytes, or None: not LZF data of that size)"},
    {"stream_load_nodes", (PyCFunction)(void (*)(void))py_stream_load_nodes, METH_FASTCALL,
     "stream_load_nodes(entries, buf, pos, end, node_count, deep) -> a stream body's radix nodes read into an "
     "EntryMap: (pos after them, their IdMap of StreamNodes or None), a refusal's text, False (IDs out of order) or "
     "None (not its case)."},
    {"bisect_records", (PyCFunction)(void (*)(void))py_bisect_records, METH_FASTCALL,
     "bisect_records(records, key, right) -> the bisect place of a 16-byte stream ID record among sorted records."},
    {"lp_entry_size", py_lp_entry_size, METH_O, "lp_entry_size(element) -> bytes it takes inside a listpack."},
    {"set_packed_threshold", py_set_packed_threshold, METH_O, "set_packed_threshold(size) (DEBUG QUICKLIST-PACKED-THRESHOLD)."},
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_FASTCALL,
     "configure(ListValue, HashValue, SetValue, StreamValue, StreamNode, ZSetValue): the value classes the native handlers accept."},
    {"native_handlers", py_native_handlers, METH_NOARGS,
     "native_handlers() -> {name: capsule}: the list/hash/set handlers for the C request loop."},
    {"settings_changed", py_settings_changed, METH_O,
     "settings_changed(name): a config listener; the handlers read their settings again on next use."},
    {"set_native_handlers", py_set_native_handlers, METH_O,
     "set_native_handlers(on): run the handlers, or decline every call to the Python handlers (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "dumpling._collections",
                                    "List, hash and set internals and native handlers (see the source's header).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__collections(void) {
    static const struct {
        PyObject **slot;
        const char *text;
    } names[] = {{&s_encoding, "encoding"},
                 {&s_appendleft, "appendleft"}, {&s_append, "append"},
                 {&s_popleft, "popleft"},    {&s_pop, "pop"},
                 {&s_fields, "fields"},      {&s_field_expires, "field_expires"},
                 {&s_scan, "_scan"},         {&s_members, "members"},
                 {&s_config, "config"},      {&s_values, "values"},
                 {&k_settings[CFG_LIST_FILL], "list-max-listpack-size"},
                 {&k_settings[CFG_HASH_ENTRIES], "hash-max-listpack-entries"},
                 {&k_settings[CFG_HASH_VALUE], "hash-max-listpack-value"},
                 {&k_settings[CFG_SET_INTSET], "set-max-intset-entries"},
                 {&k_settings[CFG_SET_LP_ENTRIES], "set-max-listpack-entries"},
                 {&u_listpack, "listpack"},  {&u_quicklist, "quicklist"},
                 {&u_hashtable, "hashtable"}, {&u_intset, "intset"},
                 {&s_keyspace, "keyspace"},  {&s_blocked_keys, "blocked_keys"}, {&s_store_hooks, "store_hooks"},
                 {&s_append_entry, "append"},
                 {&k_settings[CFG_STREAM_BYTES], "stream-node-max-bytes"},
                 {&k_settings[CFG_STREAM_ENTRIES], "stream-node-max-entries"},
                 {&s_scores, "_scores"},
                 {&s_add_checked, "add_checked"}, {&s_update, "update"},
                 {&s_add, "add"}, {&s_dbs, "dbs"}, {&s_data, "data"},
                 {&k_settings[CFG_ZSET_ENTRIES], "zset-max-listpack-entries"},
                 {&k_settings[CFG_ZSET_VALUE], "zset-max-listpack-value"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return NULL;
    native_import_keytable(); /* (the keyspace lookups of the native handlers) */
    return PyModule_Create(&module);
}
