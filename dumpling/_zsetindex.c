/*
 * dumpling._zsetindex: a sorted set's order index (ScoreIndex).
 *
 * A ZSetValue keeps its members in score order here instead of in a sortedcontainers
 * SortedList of (score, member) tuples: each entry is a C double and a reference to the member
 * (the bytes object the zset's scores dict has as its key), 16 bytes, where a tuple and its list
 * slot cost ~74.  Entries sit in chunks of sorted arrays (at most 2 * LOAD entries each, merged
 * with a neighbour below LOAD / 2), with the last entry of every chunk copied into `maxes` (the
 * bisection over chunks reads one array) and a Fenwick tree over the chunks' sizes for
 * positions (rank, index, slices); a change of the chunk layout drops the tree and the next
 * positional read rebuilds it (O(chunks)).  A chunk's capacity grows and shrinks in steps of
 * GROW entries, so a filled index holds little free room.
 *
 * The order is the tuples' order: the score as a double (-0.0 == 0.0), then the member's bytes
 * (memcmp, then length).  A key given to bisect/irange/remove is a (score, member) tuple whose
 * member may be anything that is not bytes (zsets.TOP): it sorts after every member.
 *
 * The interface is the part of SortedList datatypes/zsets.py, commands/geo.py and the payload
 * codec use: add, remove, discard, bisect_left/right, index[i] and slices (new (score, member)
 * tuples), del index[a:b], pop, len, `in`, iteration both ways, islice, irange, copy, plus
 * from_sorted(items) (laid out from items already in order), cut(lo, hi) (remove a span, giving
 * its items) and _check() (the invariants, for tests).  The Python reference is
 * dumpling.datatypes.scoreindex.PyScoreIndex (a SortedList with the same extra methods); tests
 * run random operation sequences on both.
 *
 * Members are exact bytes, so an index refers to nothing that could be on a cycle: it is not a
 * GC type (collector.stored has nothing to untrack in it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_native.h"

#define LOAD 256 /* entries: a chunk splits past 2 * LOAD, merges below LOAD / 2 */
#define CUT_CHUNK 1024 /* items per list cut() gives */
#define GROW 32  /* a chunk's capacity step, in entries (4 while it holds at most GROW) */

typedef struct {
    double score;
    PyObject *member; /* bytes, a reference held */
} Entry;

typedef struct {
    Py_ssize_t n, cap;
    Entry e[];
} Chunk;

typedef struct {
    PyObject_HEAD
    Chunk **chunks;
    Entry *maxes;    /* maxes[i] = chunks[i]->e[n - 1] (member borrowed) */
    Py_ssize_t *fen; /* Fenwick tree over chunk sizes, 1-based (fen_ok: it is current) */
    Py_ssize_t nchunks, slots, fen_slots, len;
    int fen_ok;
    uint64_t version; /* bumped by every change: iterators stop on a changed index */
} ScoreIndex;

typedef struct {
    double score;
    PyObject *member; /* NULL: above every member */
} Key;

static PyTypeObject ScoreIndexType;
static PyTypeObject IndexIterType;
static native_d2string_fn g_d2string; /* _fpconv's; NULL: flat_pairs declines (None) */

/* ------------------------------------------------------------------ order */

static inline int
member_order(PyObject *a, PyObject *b)
{
    if (b == NULL)
        return -1;
    Py_ssize_t na = PyBytes_GET_SIZE(a), nb = PyBytes_GET_SIZE(b);
    int c = memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)(na < nb ? na : nb));
    return c ? c : (na > nb) - (na < nb);
}

/* <0, 0, >0: the entry before, at, after the key */
static inline int
entry_order(const Entry *e, const Key *k)
{
    if (e->score < k->score)
        return -1;
    if (e->score > k->score)
        return 1;
    return member_order(e->member, k->member);
}

/* A (score, member) tuple as a key; ``need_bytes``: the member must be bytes and the score not
 * NaN (an entry to add: a NaN has no place in the order).  The score is a float or an int (of
 * any subclass), read without running Python code: a __float__ could change the list or index
 * a caller is in the middle of reading (entries_of reads a list's items by position). */
static int
parse_key(PyObject *item, Key *k, int need_bytes)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "a ScoreIndex entry is a (score, member) tuple");
        return -1;
    }
    PyObject *score = PyTuple_GET_ITEM(item, 0), *member = PyTuple_GET_ITEM(item, 1);
    if (PyFloat_Check(score)) {
        k->score = PyFloat_AS_DOUBLE(score);
    }
    else if (PyLong_Check(score)) {
        k->score = PyLong_AsDouble(score); /* (OverflowError past a double's range) */
        if (k->score == -1.0 && PyErr_Occurred())
            return -1;
    }
    else {
        PyErr_Format(PyExc_TypeError, "a ScoreIndex score is a float or an int, not %.100s", Py_TYPE(score)->tp_name);
        return -1;
    }
    if (need_bytes && isnan(k->score)) {
        PyErr_SetString(PyExc_ValueError, "a ScoreIndex score is not NaN");
        return -1;
    }
    if (PyBytes_CheckExact(member)) {
        k->member = member;
    }
    else if (need_bytes) {
        PyErr_Format(PyExc_TypeError, "a ScoreIndex member is bytes, not %.100s", Py_TYPE(member)->tp_name);
        return -1;
    }
    else {
        k->member = NULL;
    }
    return 0;
}

static PyObject *
entry_tuple(const Entry *e)
{
    PyObject *score = PyFloat_FromDouble(e->score);
    if (score == NULL)
        return NULL;
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(score);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, score);
    PyTuple_SET_ITEM(t, 1, Py_NewRef(e->member));
    return t;
}

/* ------------------------------------------------------------------ chunks */

/* The capacity a chunk of n entries gets: small zsets (most of them) stay small. */
static inline Py_ssize_t
round_cap(Py_ssize_t n)
{
    if (n <= GROW)
        return n <= 4 ? 4 : (n + 3) / 4 * 4;
    return (n + GROW - 1) / GROW * GROW;
}

static Chunk *
chunk_new(Py_ssize_t cap)
{
    Chunk *c = PyMem_Malloc(sizeof(Chunk) + (size_t)cap * sizeof(Entry));
    if (c == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    c->n = 0;
    c->cap = cap;
    return c;
}

/* chunks[i] with room for ``need`` entries (it may move). */
static int
chunk_reserve(ScoreIndex *self, Py_ssize_t i, Py_ssize_t need)
{
    Chunk *c = self->chunks[i];
    if (need <= c->cap)
        return 0;
    Py_ssize_t cap = round_cap(need);
    Chunk *grown = PyMem_Realloc(c, sizeof(Chunk) + (size_t)cap * sizeof(Entry));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    grown->cap = cap;
    self->chunks[i] = grown;
    return 0;
}

/* Give back the room chunks[i] no longer needs (best effort). */
static void
chunk_trim(ScoreIndex *self, Py_ssize_t i)
{
    Chunk *c = self->chunks[i];
    Py_ssize_t cap = round_cap(c->n);
    if (c->cap - cap < 2 * GROW)
        return;
    Chunk *smaller = PyMem_Realloc(c, sizeof(Chunk) + (size_t)cap * sizeof(Entry));
    if (smaller != NULL) {
        smaller->cap = cap;
        self->chunks[i] = smaller;
    }
}

static inline void
set_max(ScoreIndex *self, Py_ssize_t i)
{
    Chunk *c = self->chunks[i];
    self->maxes[i] = c->e[c->n - 1];
}

/* Room for one more chunk slot. */
static int
reserve_slots(ScoreIndex *self, Py_ssize_t need)
{
    if (need <= self->slots)
        return 0;
    Py_ssize_t slots = self->slots ? self->slots * 2 : 1;
    while (slots < need)
        slots *= 2;
    Chunk **chunks = PyMem_Realloc(self->chunks, (size_t)slots * sizeof(Chunk *));
    if (chunks == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->chunks = chunks;
    Entry *maxes = PyMem_Realloc(self->maxes, (size_t)slots * sizeof(Entry));
    if (maxes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->maxes = maxes;
    self->slots = slots;
    return 0;
}

/* Insert ``c`` as chunks[i]. */
static int
insert_chunk(ScoreIndex *self, Py_ssize_t i, Chunk *c)
{
    if (reserve_slots(self, self->nchunks + 1) < 0)
        return -1;
    memmove(self->chunks + i + 1, self->chunks + i, (size_t)(self->nchunks - i) * sizeof(Chunk *));
    memmove(self->maxes + i + 1, self->maxes + i, (size_t)(self->nchunks - i) * sizeof(Entry));
    self->chunks[i] = c;
    self->nchunks++;
    if (c->n)
        set_max(self, i);
    self->fen_ok = 0;
    return 0;
}

/* Free chunks[i] (its entries already released or moved) and close the gap. */
static void
drop_chunk(ScoreIndex *self, Py_ssize_t i)
{
    PyMem_Free(self->chunks[i]);
    memmove(self->chunks + i, self->chunks + i + 1, (size_t)(self->nchunks - i - 1) * sizeof(Chunk *));
    memmove(self->maxes + i, self->maxes + i + 1, (size_t)(self->nchunks - i - 1) * sizeof(Entry));
    self->nchunks--;
    self->fen_ok = 0;
}

/* chunks[i] past 2 * LOAD: its tail from LOAD on becomes a chunk of its own. */
static int
split_chunk(ScoreIndex *self, Py_ssize_t i)
{
    Chunk *c = self->chunks[i];
    Py_ssize_t rest = c->n - LOAD;
    Chunk *tail = chunk_new(round_cap(rest));
    if (tail == NULL)
        return -1;
    memcpy(tail->e, c->e + LOAD, (size_t)rest * sizeof(Entry));
    tail->n = rest;
    c->n = LOAD;
    if (insert_chunk(self, i + 1, tail) < 0) {
        memcpy(c->e + LOAD, tail->e, (size_t)rest * sizeof(Entry)); /* undone */
        c->n += rest;
        PyMem_Free(tail);
        return -1;
    }
    chunk_trim(self, i);
    set_max(self, i);
    return 0;
}

/* chunks[i + 1]'s entries appended to chunks[i], then split again if too long. */
static int
merge_chunks(ScoreIndex *self, Py_ssize_t i)
{
    Chunk *b = self->chunks[i + 1];
    if (chunk_reserve(self, i, self->chunks[i]->n + b->n) < 0)
        return -1;
    Chunk *a = self->chunks[i];
    memcpy(a->e + a->n, b->e, (size_t)b->n * sizeof(Entry));
    a->n += b->n;
    b->n = 0;
    drop_chunk(self, i + 1);
    set_max(self, i);
    if (a->n > 2 * LOAD)
        return split_chunk(self, i);
    return 0;
}

/* chunks[i] (if it exists) below LOAD / 2 with a neighbour: merged with it. */
static int
fix_small(ScoreIndex *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->nchunks || self->nchunks < 2 || self->chunks[i]->n >= LOAD / 2)
        return 0;
    return merge_chunks(self, i > 0 ? i - 1 : 0);
}

/* ------------------------------------------------------------------ positions */

static int
fen_build(ScoreIndex *self)
{
    Py_ssize_t k = self->nchunks;
    if (k + 1 > self->fen_slots) {
        Py_ssize_t slots = self->slots + 1 > k + 1 ? self->slots + 1 : k + 1;
        Py_ssize_t *fen = PyMem_Realloc(self->fen, (size_t)slots * sizeof(Py_ssize_t));
        if (fen == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->fen = fen;
        self->fen_slots = slots;
    }
    Py_ssize_t *fen = self->fen;
    fen[0] = 0;
    for (Py_ssize_t i = 1; i <= k; i++)
        fen[i] = self->chunks[i - 1]->n;
    for (Py_ssize_t i = 1; i <= k; i++) {
        Py_ssize_t j = i + (i & -i);
        if (j <= k)
            fen[j] += fen[i];
    }
    self->fen_ok = 1;
    return 0;
}

static inline void
fen_add(ScoreIndex *self, Py_ssize_t i, Py_ssize_t delta)
{
    if (!self->fen_ok)
        return;
    for (Py_ssize_t j = i + 1; j <= self->nchunks; j += j & -j)
        self->fen[j] += delta;
}

/* How many entries come before chunks[i]; -1 on an error. */
static Py_ssize_t
before_chunk(ScoreIndex *self, Py_ssize_t i)
{
    if (i == 0)
        return 0;
    if (i == self->nchunks)
        return self->len;
    if (i == self->nchunks - 1)
        return self->len - self->chunks[i]->n;
    if (!self->fen_ok && fen_build(self) < 0)
        return -1;
    Py_ssize_t s = 0;
    for (Py_ssize_t j = i; j > 0; j -= j & -j)
        s += self->fen[j];
    return s;
}

/* The chunk and offset of position ``pos`` (0 <= pos < len). */
static int
locate(ScoreIndex *self, Py_ssize_t pos, Py_ssize_t *ci, Py_ssize_t *off)
{
    Chunk *first = self->chunks[0], *last = self->chunks[self->nchunks - 1];
    if (pos < first->n) {
        *ci = 0;
        *off = pos;
        return 0;
    }
    if (pos >= self->len - last->n) {
        *ci = self->nchunks - 1;
        *off = pos - (self->len - last->n);
        return 0;
    }
    if (!self->fen_ok && fen_build(self) < 0)
        return -1;
    Py_ssize_t k = self->nchunks, idx = 0, step = 1;
    while (step * 2 <= k)
        step *= 2;
    for (; step; step >>= 1) {
        if (idx + step <= k && self->fen[idx + step] <= pos) {
            idx += step;
            pos -= self->fen[idx];
        }
    }
    *ci = idx;
    *off = pos;
    return 0;
}

/* The first of the ``n`` sorted entries ``e`` that is >= key (right: > key); n if none. */
static Py_ssize_t
bisect_entries(const Entry *e, Py_ssize_t n, const Key *k, int right)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        int c = entry_order(&e[mid], k);
        if (c < 0 || (right && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first chunk whose last entry is >= key (right: > key); nchunks if none. */
static inline Py_ssize_t
chunk_for(ScoreIndex *self, const Key *k, int right)
{
    return bisect_entries(self->maxes, self->nchunks, k, right);
}

static inline Py_ssize_t
offset_in(const Chunk *ch, const Key *k, int right)
{
    return bisect_entries(ch->e, ch->n, k, right);
}

/* Where the entry equal to ``k`` is: 1 (at chunks[*ci]->e[*off]), or 0 when there is none. */
static int
find_entry(ScoreIndex *self, const Key *k, Py_ssize_t *ci, Py_ssize_t *off)
{
    if (k->member == NULL) /* (above every member: never an entry) */
        return 0;
    Py_ssize_t i = chunk_for(self, k, 0);
    if (i == self->nchunks)
        return 0;
    Py_ssize_t j = offset_in(self->chunks[i], k, 0);
    if (j == self->chunks[i]->n || entry_order(&self->chunks[i]->e[j], k) != 0)
        return 0;
    *ci = i;
    *off = j;
    return 1;
}

/* bisect_left (right: bisect_right) of ``k``; -1 on an error. */
static Py_ssize_t
position_of(ScoreIndex *self, const Key *k, int right)
{
    Py_ssize_t i = chunk_for(self, k, right);
    if (i == self->nchunks)
        return self->len;
    Py_ssize_t before = before_chunk(self, i);
    return before < 0 ? -1 : before + offset_in(self->chunks[i], k, right);
}

/* The entries of positions [lo, hi), ascending or descending, one call of ``visit`` each (with
 * the entry a few places ahead prefetched: members lie wherever they were allocated). */
typedef int (*visit_fn)(const Entry *e, PyObject *out, Py_ssize_t at);

static int
walk_span(ScoreIndex *self, Py_ssize_t lo, Py_ssize_t hi, int reverse, visit_fn visit, PyObject *out)
{
    Py_ssize_t n = hi - lo, ci, off;
    if (n <= 0)
        return 0;
    if (locate(self, reverse ? hi - 1 : lo, &ci, &off) < 0)
        return -1;
    for (Py_ssize_t p = 0; p < n; p++) {
        Chunk *c = self->chunks[ci];
        Py_ssize_t ahead = reverse ? off - 8 : off + 8;
        if (ahead >= 0 && ahead < c->n)
            __builtin_prefetch(c->e[ahead].member);
        if (visit(&c->e[off], out, p) < 0)
            return -1;
        if (reverse) {
            if (--off < 0 && --ci >= 0)
                off = self->chunks[ci]->n - 1;
        }
        else if (++off == c->n) {
            ci++;
            off = 0;
        }
    }
    return 0;
}

static int
visit_tuple(const Entry *e, PyObject *out, Py_ssize_t at)
{
    PyObject *t = entry_tuple(e);
    if (t == NULL)
        return -1;
    PyList_SET_ITEM(out, at, t);
    return 0;
}

/* Positions [start, stop) as a new list of (score, member) tuples. */
static PyObject *
span_list(ScoreIndex *self, Py_ssize_t start, Py_ssize_t stop)
{
    PyObject *out = PyList_New(stop > start ? stop - start : 0);
    if (out != NULL && walk_span(self, start, stop, 0, visit_tuple, out) < 0)
        Py_CLEAR(out);
    return out;
}

/* ------------------------------------------------------------------ changes */

/* Add (score, member), member a new reference (taken, also on an error). */
static int
add_entry(ScoreIndex *self, double score, PyObject *member)
{
    Key k = {score, member};
    Py_ssize_t i;
    if (self->nchunks == 0) {
        Chunk *c = chunk_new(round_cap(1));
        if (c == NULL || insert_chunk(self, 0, c) < 0) {
            PyMem_Free(c);
            Py_DECREF(member);
            return -1;
        }
        i = 0;
    }
    else {
        i = chunk_for(self, &k, 1);
        if (i == self->nchunks)
            i--;
    }
    if (chunk_reserve(self, i, self->chunks[i]->n + 1) < 0) {
        Py_DECREF(member);
        return -1;
    }
    Chunk *c = self->chunks[i];
    Py_ssize_t j = offset_in(c, &k, 1);
    memmove(c->e + j + 1, c->e + j, (size_t)(c->n - j) * sizeof(Entry));
    c->e[j].score = score;
    c->e[j].member = member;
    c->n++;
    self->len++;
    self->version++;
    set_max(self, i);
    fen_add(self, i, 1);
    if (c->n > 2 * LOAD)
        return split_chunk(self, i);
    return 0;
}

/* Remove the entry at chunks[ci]->e[off]; its member's reference is given to *member. */
static int
delete_at(ScoreIndex *self, Py_ssize_t ci, Py_ssize_t off, PyObject **member)
{
    Chunk *c = self->chunks[ci];
    *member = c->e[off].member;
    memmove(c->e + off, c->e + off + 1, (size_t)(c->n - off - 1) * sizeof(Entry));
    c->n--;
    self->len--;
    self->version++;
    if (c->n == 0) {
        drop_chunk(self, ci);
        return 0;
    }
    set_max(self, ci);
    fen_add(self, ci, -1);
    if (c->cap - c->n >= 3 * GROW)
        chunk_trim(self, ci);
    return fix_small(self, ci);
}

/* Remove positions [lo, hi) (0 <= lo <= hi <= len); their (score, member) tuples go to *items
 * (a new list) when items is not NULL; their members' references to ``moved`` (a list of hi - lo
 * slots) when it is not NULL (the member objects themselves are not touched), else released. */
static int
cut_span(ScoreIndex *self, Py_ssize_t lo, Py_ssize_t hi, PyObject **items, PyObject *moved)
{
    Py_ssize_t count = hi - lo, ci, off;
    if (items != NULL && (*items = span_list(self, lo, hi)) == NULL)
        return -1;
    if (count <= 0)
        return 0;
    if (locate(self, lo, &ci, &off) < 0) {
        if (items != NULL)
            Py_CLEAR(*items);
        return -1;
    }
    Py_ssize_t kept_before = off ? ci : ci - 1; /* the chunk left holding entries before lo */
    Py_ssize_t left = count;
    PyObject **dead = moved != NULL ? ((PyListObject *)moved)->ob_item
                                    : PyMem_Malloc((size_t)count * sizeof(PyObject *));
    Py_ssize_t ndead = 0;
    if (dead == NULL) {
        if (items != NULL)
            Py_CLEAR(*items);
        PyErr_NoMemory();
        return -1;
    }
    while (left > 0) {
        Chunk *c = self->chunks[ci];
        Py_ssize_t take = c->n - off < left ? c->n - off : left;
        for (Py_ssize_t j = 0; j < take; j++)
            dead[ndead++] = c->e[off + j].member;
        left -= take;
        if (take == c->n) {
            c->n = 0;
            drop_chunk(self, ci);
        }
        else {
            memmove(c->e + off, c->e + off + take, (size_t)(c->n - off - take) * sizeof(Entry));
            c->n -= take;
            set_max(self, ci);
            chunk_trim(self, ci);
            ci++;
        }
        off = 0;
    }
    self->len -= count;
    self->version++;
    self->fen_ok = 0;
    int rc = fix_small(self, kept_before + 1);
    if (rc == 0)
        rc = fix_small(self, kept_before);
    if (moved == NULL) {
        for (Py_ssize_t j = 0; j < ndead; j++)
            Py_DECREF(dead[j]);
        PyMem_Free(dead);
    }
    if (rc < 0 && items != NULL)
        Py_CLEAR(*items);
    return rc;
}

static void
clear_all(ScoreIndex *self)
{
    for (Py_ssize_t i = 0; i < self->nchunks; i++) {
        Chunk *c = self->chunks[i];
        for (Py_ssize_t j = 0; j < c->n; j++)
            Py_DECREF(c->e[j].member);
        PyMem_Free(c);
    }
    self->nchunks = 0;
    self->len = 0;
    self->fen_ok = 0;
    self->version++;
}

/* Lay out ``n`` entries in order (references taken) as chunks of LOAD after the current ones
 * (an empty index). */
static int
lay_out(ScoreIndex *self, Entry *entries, Py_ssize_t n)
{
    Py_ssize_t pos = 0;
    while (pos < n) {
        Py_ssize_t take = n - pos > 2 * LOAD ? LOAD : n - pos;
        Chunk *c = chunk_new(round_cap(take));
        if (c == NULL || insert_chunk(self, self->nchunks, c) < 0) {
            PyMem_Free(c);
            for (Py_ssize_t j = pos; j < n; j++)
                Py_DECREF(entries[j].member);
            return -1;
        }
        memcpy(c->e, entries + pos, (size_t)take * sizeof(Entry));
        c->n = take;
        set_max(self, self->nchunks - 1);
        self->len += take;
        pos += take;
    }
    self->version++;
    return 0;
}

/* ------------------------------------------------------------------ type */

static PyObject *
si_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    ScoreIndex *self = (ScoreIndex *)type->tp_alloc(type, 0);
    return (PyObject *)self;
}

static int si_add_items(ScoreIndex *self, PyObject *iterable);

static int
si_init(ScoreIndex *self, PyObject *args, PyObject *kwds)
{
    PyObject *iterable = NULL;
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "ScoreIndex() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_UnpackTuple(args, "ScoreIndex", 0, 1, &iterable))
        return -1;
    clear_all(self);
    return iterable == NULL ? 0 : si_add_items(self, iterable);
}

static void
si_dealloc(ScoreIndex *self)
{
    clear_all(self);
    PyMem_Free(self->chunks);
    PyMem_Free(self->maxes);
    PyMem_Free(self->fen);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
si_len(ScoreIndex *self)
{
    return self->len;
}

/* Sort entries (qsort on the same order as the tuples'). */
static int
entry_qsort_order(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    Key k = {y->score, y->member};
    return entry_order(x, &k);
}

/* Entries of (score, member) tuples from ``iterable``; *sorted says whether they came in
 * order.  References taken on the members. */
static Entry *
entries_of(PyObject *iterable, Py_ssize_t *n, int *sorted)
{
    PyObject *seq = PySequence_Fast(iterable, "ScoreIndex items must be iterable");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    Entry *entries = PyMem_Malloc((size_t)(count ? count : 1) * sizeof(Entry));
    if (entries == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    *sorted = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        Key k;
        if (parse_key(PySequence_Fast_GET_ITEM(seq, i), &k, 1) < 0) {
            for (Py_ssize_t j = 0; j < i; j++)
                Py_DECREF(entries[j].member);
            PyMem_Free(entries);
            Py_DECREF(seq);
            return NULL;
        }
        entries[i].score = k.score;
        entries[i].member = Py_NewRef(k.member);
        if (i && *sorted && entry_order(&entries[i - 1], &k) > 0)
            *sorted = 0;
    }
    Py_DECREF(seq);
    *n = count;
    return entries;
}

static int
si_add_items(ScoreIndex *self, PyObject *iterable)
{
    Py_ssize_t n;
    int sorted;
    Entry *entries = entries_of(iterable, &n, &sorted);
    if (entries == NULL)
        return -1;
    int rc = 0;
    if (self->len == 0) {
        if (!sorted)
            qsort(entries, (size_t)n, sizeof(Entry), entry_qsort_order);
        rc = lay_out(self, entries, n);
    }
    else {
        for (Py_ssize_t i = 0; i < n; i++) {
            if (rc == 0)
                rc = add_entry(self, entries[i].score, entries[i].member);
            else
                Py_DECREF(entries[i].member);
        }
    }
    PyMem_Free(entries);
    return rc;
}

static PyObject *
si_from_sorted(PyObject *cls, PyObject *items)
{
    PyObject *self = PyObject_CallNoArgs(cls);
    if (self == NULL)
        return NULL;
    if (!PyObject_TypeCheck(self, &ScoreIndexType)) {
        PyErr_SetString(PyExc_TypeError, "from_sorted: not a ScoreIndex");
        Py_DECREF(self);
        return NULL;
    }
    if (si_add_items((ScoreIndex *)self, items) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

static PyObject *
si_update(ScoreIndex *self, PyObject *items)
{
    if (si_add_items(self, items) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
si_add(ScoreIndex *self, PyObject *item)
{
    Key k;
    if (parse_key(item, &k, 1) < 0 || add_entry(self, k.score, Py_NewRef(k.member)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Remove ``item``: 1 removed, 0 absent, -1 error. */
static int
remove_item(ScoreIndex *self, PyObject *item)
{
    Key k;
    Py_ssize_t i, j;
    if (parse_key(item, &k, 0) < 0)
        return -1;
    if (!find_entry(self, &k, &i, &j))
        return 0;
    PyObject *member;
    int rc = delete_at(self, i, j, &member);
    Py_DECREF(member);
    return rc < 0 ? -1 : 1;
}

static PyObject *
si_remove(ScoreIndex *self, PyObject *item)
{
    int rc = remove_item(self, item);
    if (rc < 0)
        return NULL;
    if (rc == 0) {
        PyErr_Format(PyExc_ValueError, "%R not in list", item);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
si_discard(ScoreIndex *self, PyObject *item)
{
    if (remove_item(self, item) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
bisect(ScoreIndex *self, PyObject *item, int right)
{
    Key k;
    if (parse_key(item, &k, 0) < 0)
        return NULL;
    Py_ssize_t pos = position_of(self, &k, right);
    return pos < 0 ? NULL : PyLong_FromSsize_t(pos);
}

static PyObject *
si_bisect_left(ScoreIndex *self, PyObject *item)
{
    return bisect(self, item, 0);
}

static PyObject *
si_bisect_right(ScoreIndex *self, PyObject *item)
{
    return bisect(self, item, 1);
}

static int
si_contains(ScoreIndex *self, PyObject *item)
{
    Key k;
    Py_ssize_t i, j;
    if (parse_key(item, &k, 0) < 0) {
        PyErr_Clear();
        return 0;
    }
    return find_entry(self, &k, &i, &j);
}

static PyObject *
item_at(ScoreIndex *self, Py_ssize_t pos)
{
    Py_ssize_t ci, off;
    if (locate(self, pos, &ci, &off) < 0)
        return NULL;
    return entry_tuple(&self->chunks[ci]->e[off]);
}

static PyObject *
si_item(ScoreIndex *self, Py_ssize_t pos)
{
    if (pos < 0 || pos >= self->len) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    return item_at(self, pos);
}

static PyObject *
si_subscript(ScoreIndex *self, PyObject *key)
{
    if (PySlice_Check(key)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(key, &start, &stop, &step) < 0)
            return NULL;
        Py_ssize_t n = PySlice_AdjustIndices(self->len, &start, &stop, step);
        if (step == 1)
            return span_list(self, start, stop);
        PyObject *out = PyList_New(n);
        for (Py_ssize_t p = 0; out != NULL && p < n; p++) {
            PyObject *t = item_at(self, start + p * step);
            if (t == NULL)
                Py_CLEAR(out);
            else
                PyList_SET_ITEM(out, p, t);
        }
        return out;
    }
    Py_ssize_t pos = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    if (pos < 0)
        pos += self->len;
    return si_item(self, pos);
}

static int
si_ass_subscript(ScoreIndex *self, PyObject *key, PyObject *value)
{
    if (value != NULL) {
        PyErr_SetString(PyExc_NotImplementedError, "use ``del index[...]``, ``add`` or ``remove``");
        return -1;
    }
    if (PySlice_Check(key)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(key, &start, &stop, &step) < 0)
            return -1;
        Py_ssize_t n = PySlice_AdjustIndices(self->len, &start, &stop, step);
        if (step == 1)
            return cut_span(self, start, stop, NULL, NULL);
        if (step < 0) { /* the same positions, ascending */
            start = start + (n - 1) * step;
            step = -step;
        }
        for (Py_ssize_t p = n - 1; p >= 0; p--) {
            if (cut_span(self, start + p * step, start + p * step + 1, NULL, NULL) < 0)
                return -1;
        }
        return 0;
    }
    Py_ssize_t pos = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (pos == -1 && PyErr_Occurred())
        return -1;
    if (pos < 0)
        pos += self->len;
    if (pos < 0 || pos >= self->len) {
        PyErr_SetString(PyExc_IndexError, "list assignment index out of range");
        return -1;
    }
    return cut_span(self, pos, pos + 1, NULL, NULL);
}

static PyObject *
si_pop(ScoreIndex *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t pos = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "pop(index=-1)");
        return NULL;
    }
    if (nargs == 1) {
        pos = PyNumber_AsSsize_t(args[0], PyExc_IndexError);
        if (pos == -1 && PyErr_Occurred())
            return NULL;
    }
    if (self->len == 0) {
        PyErr_SetString(PyExc_IndexError, "pop index out of range");
        return NULL;
    }
    if (pos < 0)
        pos += self->len;
    if (pos < 0 || pos >= self->len) {
        PyErr_SetString(PyExc_IndexError, "pop index out of range");
        return NULL;
    }
    Py_ssize_t ci, off;
    if (locate(self, pos, &ci, &off) < 0)
        return NULL;
    PyObject *t = entry_tuple(&self->chunks[ci]->e[off]);
    if (t == NULL)
        return NULL;
    PyObject *member;
    int rc = delete_at(self, ci, off, &member);
    Py_DECREF(member);
    if (rc < 0) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

static PyObject *
si_cut(ScoreIndex *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "cut(lo, hi)");
        return NULL;
    }
    Py_ssize_t lo = PyLong_AsSsize_t(args[0]), hi = PyLong_AsSsize_t(args[1]);
    if ((lo == -1 || hi == -1) && PyErr_Occurred())
        return NULL;
    if (lo < 0 || hi > self->len || lo > hi) {
        PyErr_SetString(PyExc_IndexError, "cut(lo, hi): 0 <= lo <= hi <= len");
        return NULL;
    }
    PyObject *items;
    if (cut_span(self, lo, hi, &items, NULL) < 0)
        return NULL;
    /* in lists of CUT_CHUNK items: lazyfree.release frees the popped items a list at a time */
    Py_ssize_t n = PyList_GET_SIZE(items), count = (n + CUT_CHUNK - 1) / CUT_CHUNK;
    if (count == 1) {
        PyObject *chunks = PyList_New(1);
        if (chunks != NULL)
            PyList_SET_ITEM(chunks, 0, items);
        else
            Py_DECREF(items);
        return chunks;
    }
    PyObject *chunks = PyList_New(count);
    for (Py_ssize_t i = 0; chunks != NULL && i < count; i++) {
        PyObject *part = PyList_GetSlice(items, i * CUT_CHUNK, (i + 1) * CUT_CHUNK);
        if (part == NULL)
            Py_CLEAR(chunks);
        else
            PyList_SET_ITEM(chunks, i, part);
    }
    Py_DECREF(items);
    return chunks;
}

/* The (lo, hi, reverse) arguments of the span readers: 0 <= lo <= hi <= len (reverse NULL: the
 * reader takes none). */
static int
span_args(ScoreIndex *self, PyObject *const *args, Py_ssize_t nargs, const char *name, Py_ssize_t *lo,
          Py_ssize_t *hi, int *reverse)
{
    if (nargs < 2 || nargs > (reverse != NULL ? 3 : 2)) {
        PyErr_Format(PyExc_TypeError, reverse != NULL ? "%s(lo, hi, reverse=False)" : "%s(lo, hi)", name);
        return -1;
    }
    *lo = PyLong_AsSsize_t(args[0]);
    *hi = PyLong_AsSsize_t(args[1]);
    if ((*lo == -1 || *hi == -1) && PyErr_Occurred())
        return -1;
    if (reverse != NULL && (*reverse = nargs == 3 ? PyObject_IsTrue(args[2]) : 0) < 0)
        return -1;
    if (*lo < 0 || *hi > self->len || *lo > *hi) {
        PyErr_Format(PyExc_IndexError, "%s(lo, hi): 0 <= lo <= hi <= len", name);
        return -1;
    }
    return 0;
}

static int
visit_member(const Entry *e, PyObject *out, Py_ssize_t at)
{
    PyList_SET_ITEM(out, at, Py_NewRef(e->member));
    return 0;
}

static int
visit_pair(const Entry *e, PyObject *out, Py_ssize_t at)
{
    char text[NATIVE_DOUBLE_TEXT];
    int length = g_d2string(e->score, text);
    PyObject *score = PyBytes_FromStringAndSize(text, length);
    if (score == NULL)
        return -1;
    PyList_SET_ITEM(out, 2 * at, Py_NewRef(e->member));
    PyList_SET_ITEM(out, 2 * at + 1, score);
    return 0;
}

/* members(lo, hi, reverse=False) -> list: the members of positions [lo, hi). */
static PyObject *
si_members(ScoreIndex *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t lo, hi;
    int reverse;
    if (span_args(self, args, nargs, "members", &lo, &hi, &reverse) < 0)
        return NULL;
    PyObject *out = PyList_New(hi - lo);
    if (out != NULL && walk_span(self, lo, hi, reverse, visit_member, out) < 0)
        Py_CLEAR(out);
    return out;
}

/* flat_pairs(lo, hi, reverse=False) -> list | None: member, score text, ... of positions
 * [lo, hi) (bigops.flat_pairs of those items); None without _fpconv. */
static PyObject *
si_flat_pairs(ScoreIndex *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t lo, hi;
    int reverse;
    if (span_args(self, args, nargs, "flat_pairs", &lo, &hi, &reverse) < 0)
        return NULL;
    if (g_d2string == NULL)
        Py_RETURN_NONE;
    PyObject *out = PyList_New(2 * (hi - lo)); /* (NULL slots: a failed walk frees what it set) */
    if (out != NULL && walk_span(self, lo, hi, reverse, visit_pair, out) < 0)
        Py_CLEAR(out);
    return out;
}

/* drop(lo, hi) -> list: remove positions [lo, hi); their members in order (no tuples made). */
static PyObject *
si_drop(ScoreIndex *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t lo, hi;
    if (span_args(self, args, nargs, "drop", &lo, &hi, NULL) < 0)
        return NULL;
    PyObject *out = PyList_New(hi - lo);
    if (out != NULL && cut_span(self, lo, hi, NULL, out) < 0)
        Py_CLEAR(out); /* (the references it moved into ``out`` go with it) */
    return out;
}

static PyObject *
si_copy(ScoreIndex *self, PyObject *unused)
{
    ScoreIndex *out = (ScoreIndex *)PyObject_CallNoArgs((PyObject *)Py_TYPE(self));
    if (out == NULL)
        return NULL;
    clear_all(out); /* (a subclass's __init__ may have given it entries) */
    if (reserve_slots(out, self->nchunks) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < self->nchunks; i++) {
        Chunk *src = self->chunks[i];
        Chunk *c = chunk_new(round_cap(src->n));
        if (c == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        memcpy(c->e, src->e, (size_t)src->n * sizeof(Entry));
        c->n = src->n;
        for (Py_ssize_t j = 0; j < c->n; j++)
            Py_INCREF(c->e[j].member);
        out->chunks[i] = c;
        out->maxes[i] = self->maxes[i];
        out->nchunks = i + 1;
        out->len += c->n;
    }
    return (PyObject *)out;
}

static PyObject *
si_check(ScoreIndex *self, PyObject *unused)
{
    Py_ssize_t total = 0;
    const Entry *prev = NULL;
    for (Py_ssize_t i = 0; i < self->nchunks; i++) {
        Chunk *c = self->chunks[i];
        if (c->n <= 0 || c->n > 2 * LOAD || c->n > c->cap)
            goto bad;
        for (Py_ssize_t j = 0; j < c->n; j++) {
            if (!PyBytes_CheckExact(c->e[j].member))
                goto bad;
            if (prev != NULL) {
                Key k = {c->e[j].score, c->e[j].member};
                if (entry_order(prev, &k) >= 0)
                    goto bad;
            }
            prev = &c->e[j];
        }
        if (self->maxes[i].score != c->e[c->n - 1].score || self->maxes[i].member != c->e[c->n - 1].member)
            goto bad;
        total += c->n;
        if (i && c->n < LOAD / 2 && i < self->nchunks - 1)
            goto bad;
    }
    if (total != self->len)
        goto bad;
    if (self->fen_ok) {
        for (Py_ssize_t i = 0; i <= self->nchunks; i++) {
            if (before_chunk(self, i) < 0)
                return NULL;
        }
        Py_ssize_t s = 0;
        for (Py_ssize_t i = 0; i < self->nchunks; i++) {
            Py_ssize_t b = 0;
            for (Py_ssize_t j = i; j > 0; j -= j & -j)
                b += self->fen[j];
            if (b != s)
                goto bad;
            s += self->chunks[i]->n;
        }
    }
    Py_RETURN_NONE;
bad:
    PyErr_SetString(PyExc_AssertionError, "ScoreIndex invariants broken");
    return NULL;
}

static PyObject *
si_sizeof(ScoreIndex *self, PyObject *unused)
{
    size_t size = sizeof(ScoreIndex) + (size_t)self->slots * (sizeof(Chunk *) + sizeof(Entry)) +
                  (size_t)self->fen_slots * sizeof(Py_ssize_t);
    for (Py_ssize_t i = 0; i < self->nchunks; i++)
        size += sizeof(Chunk) + (size_t)self->chunks[i]->cap * sizeof(Entry);
    return PyLong_FromSize_t(size);
}

static PyObject *
si_repr(ScoreIndex *self)
{
    PyObject *items = span_list(self, 0, self->len);
    if (items == NULL)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("%s(%R)", Py_TYPE(self)->tp_name, items);
    Py_DECREF(items);
    return r;
}

/* ------------------------------------------------------------------ iterators */

typedef struct {
    PyObject_HEAD
    ScoreIndex *index;
    Py_ssize_t ci, off, left;
    int reverse;
    uint64_t version;
} IndexIter;

/* An iterator over positions [start, stop) (clamped), descending if ``reverse``. */
static PyObject *
iter_span(ScoreIndex *self, Py_ssize_t start, Py_ssize_t stop, int reverse)
{
    IndexIter *it = PyObject_New(IndexIter, &IndexIterType);
    if (it == NULL)
        return NULL;
    it->index = (ScoreIndex *)Py_NewRef(self);
    it->left = stop > start ? stop - start : 0;
    it->reverse = reverse;
    it->version = self->version;
    it->ci = it->off = 0;
    if (it->left && locate(self, reverse ? stop - 1 : start, &it->ci, &it->off) < 0) {
        Py_DECREF(it);
        return NULL;
    }
    return (PyObject *)it;
}

static void
iter_dealloc(IndexIter *it)
{
    Py_DECREF(it->index);
    PyObject_Free(it);
}

static PyObject *
iter_next(IndexIter *it)
{
    if (it->left <= 0)
        return NULL;
    ScoreIndex *self = it->index;
    if (it->version != self->version) {
        it->left = 0;
        PyErr_SetString(PyExc_RuntimeError, "ScoreIndex changed during iteration");
        return NULL;
    }
    PyObject *t = entry_tuple(&self->chunks[it->ci]->e[it->off]);
    if (t == NULL)
        return NULL;
    if (--it->left > 0) {
        if (it->reverse) {
            if (--it->off < 0) {
                it->ci--;
                it->off = self->chunks[it->ci]->n - 1;
            }
        }
        else if (++it->off == self->chunks[it->ci]->n) {
            it->ci++;
            it->off = 0;
        }
    }
    return t;
}

static PyObject *
iter_length_hint(IndexIter *it, PyObject *unused)
{
    return PyLong_FromSsize_t(it->left);
}

static PyMethodDef iter_methods[] = {
    {"__length_hint__", (PyCFunction)iter_length_hint, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject IndexIterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._zsetindex.ScoreIndexIterator",
    .tp_basicsize = sizeof(IndexIter),
    .tp_dealloc = (destructor)iter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)iter_next,
    .tp_methods = iter_methods,
};

static PyObject *
si_iter(ScoreIndex *self)
{
    return iter_span(self, 0, self->len, 0);
}

static PyObject *
si_reversed(ScoreIndex *self, PyObject *unused)
{
    return iter_span(self, 0, self->len, 1);
}

/* A slice bound (None: left as it is), clipped as slices clip. */
static int
slice_bound(PyObject *obj, Py_ssize_t *out)
{
    if (obj == Py_None)
        return 0;
    Py_ssize_t v = PyNumber_AsSsize_t(obj, NULL);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* islice(start=None, stop=None, reverse=False): SortedList.islice. */
static PyObject *
si_islice(ScoreIndex *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"start", "stop", "reverse", NULL};
    PyObject *start_obj = Py_None, *stop_obj = Py_None;
    int reverse = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOp:islice", names, &start_obj, &stop_obj, &reverse))
        return NULL;
    Py_ssize_t start = 0, stop = PY_SSIZE_T_MAX;
    if (slice_bound(start_obj, &start) < 0 || slice_bound(stop_obj, &stop) < 0)
        return NULL;
    PySlice_AdjustIndices(self->len, &start, &stop, 1);
    return iter_span(self, start, stop, reverse);
}

/* irange(minimum=None, maximum=None, inclusive=(True, True), reverse=False). */
static PyObject *
si_irange(ScoreIndex *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"minimum", "maximum", "inclusive", "reverse", NULL};
    PyObject *minimum = Py_None, *maximum = Py_None, *inclusive = NULL;
    int reverse = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOp:irange", names, &minimum, &maximum, &inclusive, &reverse))
        return NULL;
    int lo_in = 1, hi_in = 1;
    if (inclusive != NULL) {
        if (!PyTuple_Check(inclusive) || PyTuple_GET_SIZE(inclusive) != 2) {
            PyErr_SetString(PyExc_TypeError, "inclusive is a pair of bools");
            return NULL;
        }
        lo_in = PyObject_IsTrue(PyTuple_GET_ITEM(inclusive, 0));
        hi_in = PyObject_IsTrue(PyTuple_GET_ITEM(inclusive, 1));
        if (lo_in < 0 || hi_in < 0)
            return NULL;
    }
    Py_ssize_t lo = 0, hi = self->len;
    Key k;
    if (minimum != Py_None) {
        if (parse_key(minimum, &k, 0) < 0 || (lo = position_of(self, &k, !lo_in)) < 0)
            return NULL;
    }
    if (maximum != Py_None) {
        if (parse_key(maximum, &k, 0) < 0 || (hi = position_of(self, &k, hi_in)) < 0)
            return NULL;
    }
    return iter_span(self, lo, hi, reverse);
}

/* ------------------------------------------------------------------ module */

static PySequenceMethods si_as_sequence = {
    .sq_length = (lenfunc)si_len,
    .sq_item = (ssizeargfunc)si_item,
    .sq_contains = (objobjproc)si_contains,
};

static PyMappingMethods si_as_mapping = {
    .mp_length = (lenfunc)si_len,
    .mp_subscript = (binaryfunc)si_subscript,
    .mp_ass_subscript = (objobjargproc)si_ass_subscript,
};

static PyMethodDef si_methods[] = {
    {"add", (PyCFunction)si_add, METH_O, "add((score, member)): insert in order."},
    {"remove", (PyCFunction)si_remove, METH_O, "remove((score, member)): ValueError when absent."},
    {"discard", (PyCFunction)si_discard, METH_O, "discard((score, member)): remove when present."},
    {"update", (PyCFunction)si_update, METH_O, "update(items): add each (score, member)."},
    {"bisect_left", (PyCFunction)si_bisect_left, METH_O, "bisect_left(key) -> position."},
    {"bisect_right", (PyCFunction)si_bisect_right, METH_O, "bisect_right(key) -> position."},
    {"pop", (PyCFunction)(void (*)(void))si_pop, METH_FASTCALL, "pop(index=-1) -> (score, member)."},
    {"cut", (PyCFunction)(void (*)(void))si_cut, METH_FASTCALL,
     "cut(lo, hi) -> list of lists: remove positions [lo, hi), their items as chunks in order."},
    {"islice", (PyCFunction)(void (*)(void))si_islice, METH_VARARGS | METH_KEYWORDS,
     "islice(start=None, stop=None, reverse=False) -> iterator."},
    {"irange", (PyCFunction)(void (*)(void))si_irange, METH_VARARGS | METH_KEYWORDS,
     "irange(minimum=None, maximum=None, inclusive=(True, True), reverse=False) -> iterator."},
    {"members", (PyCFunction)(void (*)(void))si_members, METH_FASTCALL,
     "members(lo, hi, reverse=False) -> list: the members of positions [lo, hi)."},
    {"flat_pairs", (PyCFunction)(void (*)(void))si_flat_pairs, METH_FASTCALL,
     "flat_pairs(lo, hi, reverse=False) -> list | None: member, score text, ... of positions [lo, hi)."},
    {"drop", (PyCFunction)(void (*)(void))si_drop, METH_FASTCALL,
     "drop(lo, hi) -> list: remove positions [lo, hi); their members in order."},
    {"copy", (PyCFunction)si_copy, METH_NOARGS, "A new index with the same entries."},
    {"from_sorted", (PyCFunction)si_from_sorted, METH_O | METH_CLASS,
     "from_sorted(items) -> ScoreIndex: items (score, member) already in order, laid out at once."},
    {"_check", (PyCFunction)si_check, METH_NOARGS, "AssertionError unless the invariants hold."},
    {"__reversed__", (PyCFunction)si_reversed, METH_NOARGS, NULL},
    {"__sizeof__", (PyCFunction)si_sizeof, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScoreIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._zsetindex.ScoreIndex",
    .tp_basicsize = sizeof(ScoreIndex),
    .tp_dealloc = (destructor)si_dealloc,
    .tp_repr = (reprfunc)si_repr,
    .tp_as_sequence = &si_as_sequence,
    .tp_as_mapping = &si_as_mapping,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A sorted set's (score, member) order as unboxed entries in chunks (see the module's comment).",
    .tp_iter = (getiterfunc)si_iter,
    .tp_methods = si_methods,
    .tp_init = (initproc)si_init,
    .tp_new = si_new,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "dumpling._zsetindex", "A sorted set's order index with unboxed scores.", -1, NULL,
};

PyMODINIT_FUNC
PyInit__zsetindex(void)
{
    if (PyType_Ready(&ScoreIndexType) < 0 || PyType_Ready(&IndexIterType) < 0)
        return NULL;
    g_d2string = native_import_d2string(); /* (NULL: no _fpconv; flat_pairs declines) */
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "ScoreIndex", (PyObject *)&ScoreIndexType) < 0 ||
        PyModule_AddIntConstant(m, "LOAD", LOAD) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
