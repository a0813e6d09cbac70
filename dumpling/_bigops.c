/* Big spans of collection values, each in one C pass (dumpling.bigops picks these or its
 * Python references, which stay the definition: tests/test_bigops.py compares both).
 *
 * A command on a million-element value spends its time in per-element Python steps; these
 * are the steps the big-span commands share:
 *
 * flat_pairs(chunks, reverse) -> list | None: RESP2's member, score, member, score ... of the
 *     (score, member) tuples in the lists `chunks` (a span cut out of a zset comes as its
 *     sublists), in order or all reversed, each score as the text Redis replies with (d2string,
 *     the one in _fpconv.c, reached through its capsule). None when an item is not a
 *     (float, bytes) pair or _fpconv is absent: the caller runs the reference.
 * keep_outside(scores, first, last) -> dict | None: the member -> score dict without the members
 *     whose (score, member) lies in [first, last], built in the dict's own order (a pass in
 *     allocation order, not a random walk over the table). None on anything but float scores and
 *     bytes members.
 * drop_inside(scores, first, last) -> int | None: the same members deleted from `scores` in
 *     place, in the dict's order; how many.
 * sample_prefix(pool, k, seed): a partial Fisher-Yates shuffle of the list `pool` in place:
 *     its first k items become a uniform random sample, drawn from a splitmix64 stream seeded
 *     with `seed` (the same draws as the reference, so both give the same sample).
 * draw_with_repeats(pool, k, seed) -> list: k uniform picks from the list `pool`, repetitions
 *     allowed (SRANDMEMBER with a negative count), drawn as sample_prefix draws: pool[(r * n) >> 64]
 *     for each output r of the splitmix64 stream seeded with `seed`.
 * set_walk(source, others, keep, limit, form) -> int | list | bytes | None: the members of
 *     `source` (a set, walked in its table's order, which is its iteration order; or a list)
 *     that every set in `others` holds (keep true: SINTER) or none does (keep false: SDIFF), the
 *     first `limit` of them (0: all), as their count, a list, or the RESP2 array / RESP3 set
 *     reply of them (form 0, 1, 2, 3), written straight from the members (SMEMBERS: no others).
 *     None when a member is not bytes or an other not a set.
 *
 * Must not: know about commands, keys or replies beyond these shapes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_native.h"

static native_d2string_fn g_d2string = NULL; /* from _fpconv's capsule; NULL: flat_pairs declines */

/* ------------------------------------------------------------------ flat_pairs */

/* How far ahead the loops ask for memory: the items of a big span lie in score order, far from
 * their allocation order, so each tuple, score and member is a cache miss unless asked early. */
#ifndef AHEAD
#define AHEAD 8
#endif

/* Puts member and score text of one (score, member) tuple at out[at], out[at + 1].
 * 1 done, 0 not a (float, bytes) pair, -1 error. */
static int put_pair(PyObject *out, Py_ssize_t at, PyObject *item) {
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
        return 0;
    PyObject *score = PyTuple_GET_ITEM(item, 0), *member = PyTuple_GET_ITEM(item, 1);
    if (!PyFloat_CheckExact(score) || !PyBytes_CheckExact(member))
        return 0;
    char text[NATIVE_DOUBLE_TEXT];
    int length = g_d2string(PyFloat_AS_DOUBLE(score), text);
    PyObject *score_text = PyBytes_FromStringAndSize(text, length);
    if (score_text == NULL)
        return -1;
    Py_INCREF(member);
    PyList_SET_ITEM(out, at, member);
    PyList_SET_ITEM(out, at + 1, score_text);
    return 1;
}

/* Asks for the tuple `ahead` and for the score and member of the tuple `near` (asked for
 * earlier, so its fields can be read now). */
static inline void prefetch_pair(PyObject *ahead, PyObject *near) {
    if (ahead != NULL)
        __builtin_prefetch(ahead);
    if (near != NULL && PyTuple_CheckExact(near) && PyTuple_GET_SIZE(near) == 2) {
        __builtin_prefetch(PyTuple_GET_ITEM(near, 0));
        __builtin_prefetch(PyTuple_GET_ITEM(near, 1));
    }
}

/* flat_pairs(chunks, reverse): the pairs of every list in `chunks`, in order (or all in
 * reverse order). */
static PyObject *flat_pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "flat_pairs(chunks: list[list], reverse: bool)");
        return NULL;
    }
    if (g_d2string == NULL)
        Py_RETURN_NONE;
    PyObject *chunks = args[0];
    int reverse = PyObject_IsTrue(args[1]);
    if (reverse < 0)
        return NULL;
    Py_ssize_t nchunks = PyList_GET_SIZE(chunks), total = 0;
    for (Py_ssize_t c = 0; c < nchunks; c++) {
        PyObject *chunk = PyList_GET_ITEM(chunks, c);
        if (!PyList_CheckExact(chunk))
            Py_RETURN_NONE;
        total += PyList_GET_SIZE(chunk);
    }
    PyObject *out = PyList_New(2 * total);
    if (out == NULL)
        return NULL;
    Py_ssize_t done = 0;
    for (Py_ssize_t c = 0; c < nchunks; c++) {
        PyObject *chunk = PyList_GET_ITEM(chunks, reverse ? nchunks - 1 - c : c);
        Py_ssize_t n = PyList_GET_SIZE(chunk);
        PyObject **at = ((PyListObject *)chunk)->ob_item;
        for (Py_ssize_t k = 0; k < n; k++) {
            Py_ssize_t i = reverse ? n - 1 - k : k, step = reverse ? -1 : 1;
            Py_ssize_t far = i + 2 * AHEAD * step, near = i + AHEAD * step;
            prefetch_pair(far >= 0 && far < n ? at[far] : NULL, near >= 0 && near < n ? at[near] : NULL);
            int r = put_pair(out, 2 * done, at[i]);
            if (r <= 0) {
                /* the slots not yet filled are NULL, which the list's deallocation skips */
                Py_DECREF(out);
                if (r < 0)
                    return NULL;
                Py_RETURN_NONE;
            }
            done++;
        }
    }
    return out;
}

/* ------------------------------------------------------------------ keep_outside */

/* Python's bytes ordering: memcmp of the common prefix, then the shorter first. */
static int bytes_cmp(PyObject *a, PyObject *b) {
    Py_ssize_t la = PyBytes_GET_SIZE(a), lb = PyBytes_GET_SIZE(b);
    int c = memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)(la < lb ? la : lb));
    if (c)
        return c;
    return la < lb ? -1 : la > lb;
}

static int bound_of(PyObject *bound, double *score, PyObject **member) {
    if (!PyTuple_CheckExact(bound) || PyTuple_GET_SIZE(bound) != 2)
        return 0;
    PyObject *s = PyTuple_GET_ITEM(bound, 0), *m = PyTuple_GET_ITEM(bound, 1);
    if (!PyFloat_CheckExact(s) || !PyBytes_CheckExact(m))
        return 0;
    *score = PyFloat_AS_DOUBLE(s);
    *member = m;
    return 1;
}

/* A span [first, last] of a zset's member -> score dict, and a snapshot of the dict's entries
 * in its own order (borrowed: no Python code runs while it is used), so that the loops can ask
 * for the members and scores ahead of their turn. */
typedef struct {
    double low, high;
    PyObject *low_member, *high_member;
    PyObject **entries; /* member, score, member, score, ... */
    Py_ssize_t count;
} Span;

/* The span of `fn(scores, first, last)`'s arguments: 1 taken, 0 bounds this module leaves to the
 * reference (the caller returns None), -1 error. */
static int span_open(Span *span, const char *usage, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (!bound_of(args[1], &span->low, &span->low_member) || !bound_of(args[2], &span->high, &span->high_member))
        return 0;
    PyObject *scores = args[0];
    Py_ssize_t n = PyDict_GET_SIZE(scores);
    span->entries = PyMem_Malloc(sizeof(PyObject *) * 2 * (size_t)(n ? n : 1));
    if (span->entries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t pos = 0, count = 0;
    PyObject *member, *value;
    while (count < n && PyDict_Next(scores, &pos, &member, &value)) {
        span->entries[2 * count] = member;
        span->entries[2 * count + 1] = value;
        count++;
    }
    span->count = count;
    return 1;
}

/* Whether entry i lies inside the span: 1 inside, 0 outside, -1 not a bytes member with a float
 * score (the reference handles that dict). */
static int span_holds(const Span *span, Py_ssize_t i) {
    PyObject **entries = span->entries;
    if (i + AHEAD < span->count) {
        __builtin_prefetch(entries[2 * (i + AHEAD)]);
        __builtin_prefetch(entries[2 * (i + AHEAD) + 1]);
    }
    PyObject *member = entries[2 * i], *value = entries[2 * i + 1];
    if (!PyFloat_CheckExact(value) || !PyBytes_CheckExact(member))
        return -1;
    double score = PyFloat_AS_DOUBLE(value);
    return !(score < span->low || score > span->high
             || (score == span->low && bytes_cmp(member, span->low_member) < 0)
             || (score == span->high && bytes_cmp(member, span->high_member) > 0));
}

static PyObject *keep_outside(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Span span;
    int taken = span_open(&span, "keep_outside(scores: dict, first, last)", args, nargs);
    if (taken <= 0) {
        if (taken < 0)
            return NULL;
        Py_RETURN_NONE;
    }
#if PY_VERSION_HEX < 0x030D0000
    PyObject *kept = _PyDict_NewPresized(span.count); /* no resizes on the way */
#else
    PyObject *kept = PyDict_New();
#endif
    for (Py_ssize_t i = 0; kept != NULL && i < span.count; i++) {
        int inside = span_holds(&span, i);
        if (inside < 0) {
            Py_DECREF(kept);
            PyMem_Free(span.entries);
            Py_RETURN_NONE;
        }
        if (!inside && PyDict_SetItem(kept, span.entries[2 * i], span.entries[2 * i + 1]) < 0)
            Py_CLEAR(kept);
    }
    PyMem_Free(span.entries);
    return kept;
}

/* drop_inside(scores, first, last) -> int | None: keep_outside's result made in place: the
 * members inside [first, last] are found in one pass in the dict's order and deleted in that
 * order (no new table, and the old one is not freed). How many were deleted. */
static PyObject *drop_inside(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Span span;
    int taken = span_open(&span, "drop_inside(scores: dict, first, last)", args, nargs);
    if (taken <= 0) {
        if (taken < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject **entries = span.entries;
    Py_ssize_t doomed = 0;
    for (Py_ssize_t i = 0; i < span.count; i++) {
        int inside = span_holds(&span, i);
        if (inside < 0) {
            PyMem_Free(entries);
            Py_RETURN_NONE;
        }
        if (inside)
            entries[doomed++] = entries[2 * i]; /* the members to delete, packed at the front */
    }
    /* Each member is still referenced by the caller's cut span: deleting drops only the dict's
     * references, nothing is freed here. */
    for (Py_ssize_t i = 0; i < doomed; i++) {
        if (i + AHEAD < doomed)
            __builtin_prefetch(entries[i + AHEAD]);
        if (PyDict_DelItem(args[0], entries[i]) < 0) {
            PyMem_Free(entries);
            return NULL;
        }
    }
    PyMem_Free(entries);
    return PyLong_FromSsize_t(doomed);
}

/* ------------------------------------------------------------------ sample_prefix */

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The (pool: list, k: int, seed: int) arguments of sample_prefix and draw_with_repeats: 0, or -1
 * with an exception (a TypeError naming `name`). */
static int pool_args(PyObject *const *args, Py_ssize_t nargs, const char *name, PyObject **pool, Py_ssize_t *k,
                     uint64_t *state) {
    if (nargs != 3 || !PyList_CheckExact(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s(pool: list, k: int, seed: int)", name);
        return -1;
    }
    *pool = args[0];
    *k = PyLong_AsSsize_t(args[1]);
    if (*k == -1 && PyErr_Occurred())
        return -1;
    *state = PyLong_AsUnsignedLongLongMask(args[2]);
    if (*state == (uint64_t)-1 && PyErr_Occurred())
        return -1;
    return 0;
}

static PyObject *sample_prefix(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *pool;
    Py_ssize_t k;
    uint64_t state;
    if (pool_args(args, nargs, "sample_prefix", &pool, &k, &state) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(pool);
    if (k > n)
        k = n;
    PyObject **slot = ((PyListObject *)pool)->ob_item;
    for (Py_ssize_t i = 0; i < k; i++) {
        uint64_t r = splitmix64(&state);
        /* i + floor(r * (n - i) / 2^64): the reference's ((r * (n - i)) >> 64) */
        Py_ssize_t j = i + (Py_ssize_t)(((unsigned __int128)r * (uint64_t)(n - i)) >> 64);
        PyObject *t = slot[i];
        slot[i] = slot[j];
        slot[j] = t;
    }
    Py_RETURN_NONE;
}

/* draw_with_repeats(pool, k, seed): k picks from pool, each pool[(r * n) >> 64]; the picks' objects
 * are asked for AHEAD picks before their references are counted. */
static PyObject *draw_with_repeats(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *pool;
    Py_ssize_t k;
    uint64_t state;
    if (pool_args(args, nargs, "draw_with_repeats", &pool, &k, &state) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(pool);
    if (k < 0 || (n == 0 && k > 0)) {
        PyErr_SetString(PyExc_ValueError, "draw_with_repeats: k >= 0 picks from a non-empty pool");
        return NULL;
    }
    PyObject *out = PyList_New(k);
    if (out == NULL)
        return NULL;
    PyObject **slot = ((PyListObject *)pool)->ob_item, **picks = ((PyListObject *)out)->ob_item;
    for (Py_ssize_t i = 0; i < k; i++) { /* the indexes first: the objects can then be asked for early */
        uint64_t r = splitmix64(&state);
        picks[i] = slot[(Py_ssize_t)(((unsigned __int128)r * (uint64_t)n) >> 64)];
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        if (i + AHEAD < k)
            __builtin_prefetch(picks[i + AHEAD]);
        Py_INCREF(picks[i]);
    }
    return out;
}

/* ------------------------------------------------------------------ set_walk */

enum { WALK_COUNT = 0, WALK_LIST = 1, WALK_RESP2 = 2, WALK_RESP3 = 3 };

/* A member of the source and its hash (0 until read, for a list's member). */
typedef struct {
    PyObject *key;
    Py_hash_t hash;
} Member;

/* The reply being written: the members from `start` on, the header put in front at the end. */
typedef NativeBuf Reply;

#define REPLY_HEAD 24 /* room for "*<count>\r\n" before the first member */

static int reply_room(Reply *r, size_t more) {
    return native_buf_reserve(r, more, 4096);
}

/* "$<len>\r\n<bytes>\r\n" */
static int reply_bulk(Reply *r, PyObject *member) {
    Py_ssize_t n = PyBytes_GET_SIZE(member);
    if (reply_room(r, (size_t)n + 24) < 0)
        return -1;
    char *p = r->buf + r->len;
    *p++ = '$';
    p += native_u64_text(p, (unsigned long long)n);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, PyBytes_AS_STRING(member), (size_t)n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    r->len = (size_t)(p - r->buf);
    return 0;
}

/* The source's members in walk order (borrowed: nothing here runs Python code or changes a
 * set). NULL with *count -1 on error, NULL with *count 0 when declined (not bytes). */
static Member *walk_members(PyObject *source, Py_ssize_t *count) {
    Py_ssize_t n = PySet_Check(source) ? PySet_GET_SIZE(source) : PyList_GET_SIZE(source);
    Member *members = PyMem_Malloc(sizeof(Member) * (size_t)(n ? n : 1));
    if (members == NULL) {
        PyErr_NoMemory();
        *count = -1;
        return NULL;
    }
    Py_ssize_t got = 0;
    if (PyList_CheckExact(source)) {
        for (Py_ssize_t i = 0; i < n; i++) {
            members[i].key = PyList_GET_ITEM(source, i);
            members[i].hash = 0;
        }
        got = n;
    } else { /* the table in index order: what iterating the set gives */
        PySetObject *so = (PySetObject *)source;
        for (Py_ssize_t i = 0; i <= so->mask && got < n; i++) {
            setentry *entry = &so->table[i];
            if (entry->key == NULL || entry->key == _PySet_Dummy)
                continue;
            members[got].key = entry->key;
            members[got].hash = entry->hash;
            got++;
        }
    }
    *count = got;
    return members;
}

/* Asks for what member `i` will need: its object (FAR ahead), the others' first bucket for its
 * hash (NEAR ahead; the object, asked for earlier, gives a list member's hash) and the key in
 * that bucket when the hashes agree (CLOSE ahead): the member compared with it. */
#define WALK_FAR 16
#define WALK_NEAR 8
#define WALK_CLOSE 4

static inline void walk_prefetch(Member *members, Py_ssize_t i, Py_ssize_t n, PySetObject **others,
                                 Py_ssize_t nothers) {
    if (i + WALK_FAR >= 0 && i + WALK_FAR < n)
        __builtin_prefetch(members[i + WALK_FAR].key);
    if (nothers == 0)
        return;
    if (i + WALK_NEAR >= 0 && i + WALK_NEAR < n) {
        Member *m = &members[i + WALK_NEAR];
        if (m->hash == 0 && PyBytes_CheckExact(m->key)) /* (anything else declines at its turn) */
            m->hash = PyObject_Hash(m->key); /* bytes: no Python code, no failure */
        for (Py_ssize_t k = 0; k < nothers; k++)
            __builtin_prefetch(&others[k]->table[(size_t)m->hash & (size_t)others[k]->mask]);
    }
    if (i + WALK_CLOSE >= 0 && i + WALK_CLOSE < n) {
        Member *m = &members[i + WALK_CLOSE];
        for (Py_ssize_t k = 0; k < nothers; k++) {
            setentry *entry = &others[k]->table[(size_t)m->hash & (size_t)others[k]->mask];
            if (entry->hash == m->hash && entry->key != NULL)
                __builtin_prefetch(entry->key);
        }
    }
}

static PyObject *set_walk(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !(PySet_CheckExact(args[0]) || PyList_CheckExact(args[0])) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set_walk(source: set | list, others: list[set], keep, limit, form)");
        return NULL;
    }
    int keep = PyObject_IsTrue(args[2]);
    if (keep < 0)
        return NULL;
    Py_ssize_t limit = PyLong_AsSsize_t(args[3]);
    long form = PyLong_AsLong(args[4]);
    if ((limit == -1 || form == -1) && PyErr_Occurred())
        return NULL;
    if (form < WALK_COUNT || form > WALK_RESP3 || limit < 0) {
        PyErr_SetString(PyExc_ValueError, "set_walk: form 0-3, limit >= 0");
        return NULL;
    }
    PyObject *others_list = args[1];
    Py_ssize_t nothers = PyList_GET_SIZE(others_list);
    for (Py_ssize_t k = 0; k < nothers; k++)
        if (!PySet_CheckExact(PyList_GET_ITEM(others_list, k)))
            Py_RETURN_NONE;
    /* The others' items, borrowed from the caller's list (which nothing here changes). */
    PySetObject **others = (PySetObject **)((PyListObject *)others_list)->ob_item;

    Py_ssize_t n;
    Member *members = walk_members(args[0], &n);
    if (members == NULL) {
        if (n < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    /* The first members' prefetches, which the loop asks for only from FAR/NEAR/CLOSE on. */
    for (Py_ssize_t i = -WALK_FAR; i < 0; i++)
        walk_prefetch(members, i, n, others, nothers);

    PyObject *list = NULL;
    Reply reply = {NULL, REPLY_HEAD, 0};
    if (form == WALK_LIST && (list = PyList_New(0)) == NULL)
        goto fail;
    if (form >= WALK_RESP2 && reply_room(&reply, (size_t)(n < 65536 ? n : 65536) * 16) < 0)
        goto fail;
    Py_ssize_t taken = 0;
    for (Py_ssize_t i = 0; i < n && (limit == 0 || taken < limit); i++) {
        walk_prefetch(members, i, n, others, nothers);
        PyObject *key = members[i].key;
        if (!PyBytes_CheckExact(key)) { /* (a set's members are bytes; a list's may not be) */
            PyMem_Free(members);
            PyMem_Free(reply.buf);
            Py_XDECREF(list);
            Py_RETURN_NONE;
        }
        int hit = 1;
        for (Py_ssize_t k = 0; k < nothers; k++) {
            int in = PySet_Contains((PyObject *)others[k], key);
            if (in < 0)
                goto fail;
            if (in != keep) {
                hit = 0;
                break;
            }
        }
        if (!hit)
            continue;
        taken++;
        if (form == WALK_LIST) {
            if (PyList_Append(list, key) < 0)
                goto fail;
        } else if (form >= WALK_RESP2 && reply_bulk(&reply, key) < 0) {
            goto fail;
        }
    }
    PyMem_Free(members);
    if (form == WALK_COUNT)
        return PyLong_FromSsize_t(taken);
    if (form == WALK_LIST)
        return list;
    char head[REPLY_HEAD];
    head[0] = form == WALK_RESP3 ? '~' : '*';
    int h = 1 + native_u64_text(head + 1, (unsigned long long)taken);
    head[h++] = '\r';
    head[h++] = '\n';
    memcpy(reply.buf + REPLY_HEAD - h, head, (size_t)h);
    PyObject *wire = PyBytes_FromStringAndSize(reply.buf + REPLY_HEAD - h, (Py_ssize_t)(reply.len - REPLY_HEAD + h));
    PyMem_Free(reply.buf);
    return wire;
fail:
    PyMem_Free(members);
    PyMem_Free(reply.buf);
    Py_XDECREF(list);
    return NULL;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef bigops_methods[] = {
    {"flat_pairs", (PyCFunction)(void (*)(void))flat_pairs, METH_FASTCALL,
     "flat_pairs(chunks, reverse) -> list | None: member, score text, ... of (score, member) tuples."},
    {"keep_outside", (PyCFunction)(void (*)(void))keep_outside, METH_FASTCALL,
     "keep_outside(scores, first, last) -> dict | None: scores without [first, last]."},
    {"drop_inside", (PyCFunction)(void (*)(void))drop_inside, METH_FASTCALL,
     "drop_inside(scores, first, last) -> int | None: keep_outside made in place."},
    {"sample_prefix", (PyCFunction)(void (*)(void))sample_prefix, METH_FASTCALL,
     "sample_prefix(pool, k, seed): the first k items of pool become a random sample."},
    {"draw_with_repeats", (PyCFunction)(void (*)(void))draw_with_repeats, METH_FASTCALL,
     "draw_with_repeats(pool, k, seed) -> list: k uniform picks from pool, repetitions allowed."},
    {"set_walk", (PyCFunction)(void (*)(void))set_walk, METH_FASTCALL,
     "set_walk(source, others, keep, limit, form) -> the members of source in all (or none) of others."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef bigops_module = {
    PyModuleDef_HEAD_INIT, "dumpling._bigops",
    "Big spans of collection values in one C pass each (see dumpling.bigops).", -1, bigops_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__bigops(void) {
    g_d2string = native_import_d2string(); /* (NULL: no _fpconv; flat_pairs declines and the reference runs) */
    return PyModule_Create(&bigops_module);
}
