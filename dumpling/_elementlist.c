/*
 * dumpling._elementlist: a list value's elements, packed (ElementList).
 *
 * A ListValue keeps its elements here instead of in a deque of bytes objects: each element is
 * one listpack entry (dumpling/_lpentry.h: ~2 bytes of framing, canonical integers as
 * integers) in chunks of at most CHUNK_MAX bytes (an element bigger than that gets a chunk of
 * its own).  A chunk is a buffer with free room at both ends, so a push or pop at either end of
 * the list writes or drops one entry; a chunk that empties is freed.  Elements become bytes
 * objects only when something reads them.
 *
 * The Python reference is dumpling.datatypes.listelements.PyElementList (a deque with the
 * same extra methods); tests run random operation sequences on both.  The interface is the
 * part of a deque lists.py uses (len, iteration both ways, indexing, append/appendleft/pop/
 * popleft, extend/extendleft, insert, index, `in`, copy) plus operations on spans:
 * slice(start, stop), pop_many(count, head), drop(count, head), entry_bytes(start, stop) and
 * node_blobs(shape) (each quicklist node's listpack, for DUMP).
 *
 * Chunks are not Redis's quicklist nodes: lists.py models those (their element counts and
 * listpack bytes) beside the elements; entry_bytes and node_blobs serve that model.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_elementlist.h"
#include "_native.h"
#include "_lpentry.h"

#define CHUNK_MAX 4096 /* entry bytes an end chunk grows to before a new one is started */
#define CHUNK_MIN 32   /* a new chunk's first capacity */
#define ENTRY_MAX ((size_t)UINT32_MAX - 64)

typedef struct {
    uint32_t lo, hi; /* the entries are data[lo:hi] */
    uint32_t cap;
    uint32_t count;
    unsigned char data[];
} Chunk;

typedef struct {
    PyObject_HEAD
    Chunk **chunks; /* chunks[first : first + nchunks], head to tail */
    Py_ssize_t first, nchunks, slots;
    Py_ssize_t len;
    uint64_t version; /* bumped by every change: iterators stop on a changed list */
    Chunk *inline_slot[1]; /* `chunks` while one slot is enough */
} ElementList;

static PyTypeObject ElementListType;

static inline Chunk *chunk_at(ElementList *self, Py_ssize_t i) { return self->chunks[self->first + i]; }
static inline size_t chunk_used(const Chunk *c) { return (size_t)(c->hi - c->lo); }

/* ------------------------------------------------------------------ chunks */

static Chunk *chunk_new(size_t cap, int front) {
    Chunk *c = PyMem_Malloc(sizeof(Chunk) + cap);
    if (c == NULL)
        return NULL;
    c->cap = (uint32_t)cap;
    c->lo = c->hi = front ? (uint32_t)cap : 0;
    c->count = 0;
    return c;
}

/* `c` with at least `need` free bytes at its head (front) or tail: the same chunk, or a bigger
 * copy (the old one freed); NULL on a memory error (c untouched). */
static Chunk *chunk_room(Chunk *c, size_t need, int front) {
    if (front ? c->lo >= need : c->cap - c->hi >= need)
        return c;
    size_t used = chunk_used(c), want = used + need, cap = c->cap;
    if (want > cap) {
        cap = want * 2 < CHUNK_MIN ? CHUNK_MIN : want * 2;
        if (cap > CHUNK_MAX)
            cap = want > CHUNK_MAX ? want : CHUNK_MAX;
    }
    if (cap > ENTRY_MAX) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t slack = cap - want, lo;
    /* a chunk that only ever grew one way keeps growing that way; else half the room each side */
    if (front)
        lo = need + (c->hi == c->cap ? slack : (slack + 1) / 2);
    else
        lo = c->lo == 0 ? 0 : slack / 2;
    if (cap == c->cap) {
        memmove(c->data + lo, c->data + c->lo, used);
    } else {
        Chunk *n = PyMem_Malloc(sizeof(Chunk) + cap);
        if (n == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        memcpy(n->data + lo, c->data + c->lo, used);
        n->cap = (uint32_t)cap;
        n->count = c->count;
        PyMem_Free(c);
        c = n;
    }
    c->lo = (uint32_t)lo;
    c->hi = (uint32_t)(lo + used);
    return c;
}

/* Room for one more chunk pointer at the head or the tail of the array. */
static int slots_room(ElementList *self, int front) {
    if (front ? self->first > 0 : self->first + self->nchunks < self->slots)
        return 0;
    Py_ssize_t n = self->nchunks, slots = self->slots;
    if (n + 1 > slots / 2 || slots == 1)
        slots = slots * 2 < 4 ? 4 : slots * 2;
    Chunk **array = self->chunks;
    if (slots != self->slots) {
        array = PyMem_Malloc((size_t)slots * sizeof(Chunk *));
        if (array == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_ssize_t first = front ? slots - n - (slots - n) / 2 : (slots - n) / 2;
    if (front && first == 0)
        first = 1;
    memmove(array + first, self->chunks + self->first, (size_t)n * sizeof(Chunk *));
    if (array != self->chunks) {
        if (self->chunks != self->inline_slot)
            PyMem_Free(self->chunks);
        self->chunks = array;
        self->slots = slots;
    }
    self->first = first;
    return 0;
}

/* Link chunk `c` in at position `at` (0..nchunks). */
static int link_chunk(ElementList *self, Py_ssize_t at, Chunk *c) {
    int front = at == 0 && self->nchunks > 0;
    if (slots_room(self, front) < 0)
        return -1;
    Chunk **base = self->chunks + self->first;
    if (front) {
        self->first--;
        base--;
        memmove(base, base + 1, (size_t)at * sizeof(Chunk *));
    } else {
        memmove(base + at + 1, base + at, (size_t)(self->nchunks - at) * sizeof(Chunk *));
    }
    base[at] = c;
    self->nchunks++;
    return 0;
}

/* Unlink and free the chunks [at, at + n). */
static void unlink_chunks(ElementList *self, Py_ssize_t at, Py_ssize_t n) {
    Chunk **base = self->chunks + self->first;
    for (Py_ssize_t i = 0; i < n; i++)
        PyMem_Free(base[at + i]);
    if (at == 0) {
        self->first += n;
    } else {
        memmove(base + at, base + at + n, (size_t)(self->nchunks - at - n) * sizeof(Chunk *));
    }
    self->nchunks -= n;
    if (self->nchunks == 0)
        self->first = 0;
}

/* ------------------------------------------------------------------ element access */

/* The bytes of an element argument; 0 (TypeError set) for anything else. */
static int element_of(PyObject *obj, const unsigned char **s, size_t *n) {
    if (PyBytes_Check(obj)) {
        *s = (const unsigned char *)PyBytes_AS_STRING(obj);
        *n = (size_t)PyBytes_GET_SIZE(obj);
    } else if (PyByteArray_Check(obj)) {
        *s = (const unsigned char *)PyByteArray_AS_STRING(obj);
        *n = (size_t)PyByteArray_GET_SIZE(obj);
    } else {
        PyErr_Format(PyExc_TypeError, "an ElementList holds bytes, not %.100s", Py_TYPE(obj)->tp_name);
        return 0;
    }
    if (*n > ENTRY_MAX - 16) {
        PyErr_SetString(PyExc_OverflowError, "element too large");
        return 0;
    }
    return 1;
}

static PyObject *entry_bytes_object(const unsigned char *p) {
    unsigned char digits[LPE_INT_TEXT_MAX];
    const unsigned char *s;
    size_t n;
    lpe_text(p, digits, &s, &n);
    return PyBytes_FromStringAndSize((const char *)s, (Py_ssize_t)n);
}

/* Entry `k` of chunk c counted from its head (k <= count: count = its end). */
static unsigned char *chunk_entry(Chunk *c, Py_ssize_t k) {
    unsigned char *p;
    if (k <= (Py_ssize_t)c->count / 2) {
        p = c->data + c->lo;
        while (k-- > 0)
            p += lpe_size(p);
    } else {
        p = c->data + c->hi;
        for (Py_ssize_t j = c->count - k; j > 0; j--)
            p -= lpe_size_before(p);
    }
    return p;
}

/* Chunk position and entry of element `index` (0 <= index < len), walking from the nearer end. */
static unsigned char *locate(ElementList *self, Py_ssize_t index, Py_ssize_t *chunk_pos) {
    Py_ssize_t ci, off;
    if (index < self->len / 2) {
        for (ci = 0; index >= (Py_ssize_t)chunk_at(self, ci)->count; ci++)
            index -= chunk_at(self, ci)->count;
        off = index;
    } else {
        Py_ssize_t back = self->len - 1 - index;
        for (ci = self->nchunks - 1; back >= (Py_ssize_t)chunk_at(self, ci)->count; ci--)
            back -= chunk_at(self, ci)->count;
        off = chunk_at(self, ci)->count - 1 - back;
    }
    *chunk_pos = ci;
    return chunk_entry(chunk_at(self, ci), off);
}

/* ------------------------------------------------------------------ changes */

/* Push one element at the head or the tail: its entry's size, or -1 with an error set. */
static Py_ssize_t push(ElementList *self, const unsigned char *s, size_t n, int front) {
    LpePlan plan;
    lpe_plan(s, n, &plan);
    Chunk *c = self->nchunks ? chunk_at(self, front ? 0 : self->nchunks - 1) : NULL;
    if (c == NULL || chunk_used(c) + plan.size > CHUNK_MAX) {
        size_t cap = plan.size > CHUNK_MAX ? plan.size : plan.size < CHUNK_MIN / 2 ? CHUNK_MIN : plan.size * 2;
        if (cap > CHUNK_MAX && plan.size <= CHUNK_MAX)
            cap = CHUNK_MAX;
        c = chunk_new(cap, front);
        if (c == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (link_chunk(self, front ? 0 : self->nchunks, c) < 0) {
            PyMem_Free(c);
            return -1;
        }
    } else {
        Chunk *grown = chunk_room(c, plan.size, front);
        if (grown == NULL)
            return -1;
        self->chunks[self->first + (front ? 0 : self->nchunks - 1)] = c = grown;
    }
    if (front) {
        c->lo -= (uint32_t)plan.size;
        lpe_write(c->data + c->lo, s, n, &plan);
    } else {
        lpe_write(c->data + c->hi, s, n, &plan);
        c->hi += (uint32_t)plan.size;
    }
    c->count++;
    self->len++;
    self->version++;
    return (Py_ssize_t)plan.size;
}

/* Remove `count` (<= len) elements from one end; whole chunks are freed as they are. */
static void drop_end(ElementList *self, Py_ssize_t count, int head) {
    if (count <= 0)
        return;
    self->len -= count;
    self->version++;
    Py_ssize_t whole = 0;
    if (head) {
        while (whole < self->nchunks && count >= (Py_ssize_t)chunk_at(self, whole)->count)
            count -= chunk_at(self, whole++)->count;
        unlink_chunks(self, 0, whole);
        if (count) {
            Chunk *c = chunk_at(self, 0);
            c->lo = (uint32_t)(chunk_entry(c, count) - c->data);
            c->count -= (uint32_t)count;
        }
    } else {
        while (whole < self->nchunks && count >= (Py_ssize_t)chunk_at(self, self->nchunks - 1 - whole)->count)
            count -= chunk_at(self, self->nchunks - 1 - whole++)->count;
        unlink_chunks(self, self->nchunks - whole, whole);
        if (count) {
            Chunk *c = chunk_at(self, self->nchunks - 1);
            c->hi = (uint32_t)(chunk_entry(c, c->count - count) - c->data);
            c->count -= (uint32_t)count;
        }
    }
}

/* Split chunk `ci` in two near its middle (an insert made it big). */
static int split_chunk(ElementList *self, Py_ssize_t ci) {
    Chunk *c = chunk_at(self, ci);
    Py_ssize_t keep = c->count / 2;
    if (keep == 0)
        return 0;
    unsigned char *cut = chunk_entry(c, keep);
    size_t moved = (size_t)(c->data + c->hi - cut);
    Chunk *n = chunk_new(moved, 0);
    if (n == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(n->data, cut, moved);
    n->hi = (uint32_t)moved;
    n->count = c->count - (uint32_t)keep;
    if (link_chunk(self, ci + 1, n) < 0) {
        PyMem_Free(n);
        return -1;
    }
    c->hi = (uint32_t)(cut - c->data);
    c->count = (uint32_t)keep;
    return 0;
}

/* Insert an element before element `index` (0 <= index <= len). */
static int insert_at(ElementList *self, Py_ssize_t index, const unsigned char *s, size_t n) {
    if (index == 0 || index == self->len)
        return push(self, s, n, index == 0 && self->len > 0) < 0 ? -1 : 0;
    LpePlan plan;
    lpe_plan(s, n, &plan);
    Py_ssize_t ci;
    unsigned char *p = locate(self, index, &ci);
    Chunk *c = chunk_at(self, ci);
    size_t before = (size_t)(p - (c->data + c->lo));
    /* open the gap on the side with fewer bytes to move */
    int front = before < chunk_used(c) - before;
    Chunk *grown = chunk_room(c, plan.size, front);
    if (grown == NULL)
        return -1;
    self->chunks[self->first + ci] = c = grown;
    if (front) {
        memmove(c->data + c->lo - plan.size, c->data + c->lo, before);
        c->lo -= (uint32_t)plan.size;
    } else {
        unsigned char *at = c->data + c->lo + before;
        memmove(at + plan.size, at, chunk_used(c) - before);
        c->hi += (uint32_t)plan.size;
    }
    lpe_write(c->data + c->lo + before, s, n, &plan);
    c->count++;
    self->len++;
    self->version++;
    if (chunk_used(c) > 2 * CHUNK_MAX && c->count > 1)
        return split_chunk(self, ci);
    return 0;
}

/* Remove element `index` (0 <= index < len). */
static void delete_at(ElementList *self, Py_ssize_t index) {
    Py_ssize_t ci;
    unsigned char *p = locate(self, index, &ci);
    Chunk *c = chunk_at(self, ci);
    self->len--;
    self->version++;
    if (c->count == 1) {
        unlink_chunks(self, ci, 1);
        return;
    }
    size_t size = lpe_size(p), before = (size_t)(p - (c->data + c->lo));
    if (before < chunk_used(c) - before - size) {
        memmove(c->data + c->lo + size, c->data + c->lo, before);
        c->lo += (uint32_t)size;
    } else {
        memmove(p, p + size, (size_t)(c->data + c->hi - p - size));
        c->hi -= (uint32_t)size;
    }
    c->count--;
}

static void clear_all(ElementList *self) {
    unlink_chunks(self, 0, self->nchunks);
    self->len = 0;
    self->version++;
}

static int extend_from(ElementList *self, PyObject *iterable, int front) {
    if (iterable == (PyObject *)self) { /* (a copy first: the loop would never end) */
        PyObject *items = PySequence_List(iterable);
        if (items == NULL)
            return -1;
        int r = extend_from(self, items, front);
        Py_DECREF(items);
        return r;
    }
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        const unsigned char *s;
        size_t n;
        int r = element_of(item, &s, &n) && push(self, s, n, front) >= 0 ? 0 : -1;
        Py_DECREF(item);
        if (r < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* The size of the entry at p (which must end by `end`) if it is one ElementList would write
 * for its element - a known encoding, the shortest one for an integer, no integer text kept
 * as a string, a matching back-length - else 0. */
static size_t canonical_entry_size(const unsigned char *p, const unsigned char *end) {
    size_t avail = (size_t)(end - p), enclen;
    unsigned char b = p[0];
    if (b < 0x80 || (b & 0xE0) == 0xC0 || (b >= 0xF1 && b <= 0xF4)) { /* an integer */
        size_t need = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : b == 0xF1 ? 3 : b == 0xF2 ? 4 : b == 0xF3 ? 5 : 9;
        if (avail < need + 1)
            return 0;
        unsigned char digits[LPE_INT_TEXT_MAX];
        const unsigned char *text;
        size_t n;
        LpePlan plan;
        lpe_text(p, digits, &text, &n);
        lpe_plan(text, n, &plan);
        if (!plan.is_int || plan.enclen != need)
            return 0; /* not the shortest encoding of its value */
        enclen = need;
    } else {
        size_t header, n;
        if ((b & 0xC0) == 0x80) {
            header = 1;
            n = b & 0x3F;
        } else if ((b & 0xF0) == 0xE0) {
            if (avail < 2)
                return 0;
            header = 2;
            n = ((size_t)(b & 0x0F) << 8) | p[1];
            if (n < 64)
                return 0;
        } else if (b == 0xF0) {
            if (avail < 5)
                return 0;
            header = 5;
            n = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
            if (n < 4096)
                return 0;
        } else {
            return 0; /* 0xF5-0xFF: no element */
        }
        if (n > avail || header + n >= avail)
            return 0;
        long long v;
        if (native_string2ll((const char *)p + header, (Py_ssize_t)n, &v))
            return 0; /* integer text: kept as an integer */
        enclen = header + n;
    }
    size_t back = lpe_backlen_size(enclen);
    if (enclen + back > avail)
        return 0;
    unsigned char expect[5];
    lpe_backlen_write(expect, enclen);
    return memcmp(p + enclen, expect, back) == 0 ? enclen + back : 0;
}

/* Append the entries [p, end) (canonical, sizes checked) in chunks of up to CHUNK_MAX bytes. */
static int append_entries(ElementList *self, const unsigned char *p, const unsigned char *end) {
    while (p < end) {
        const unsigned char *run = p;
        uint32_t count = 0;
        while (p < end) {
            size_t here = lpe_size(p);
            if (count && (size_t)(p - run) + here > CHUNK_MAX)
                break;
            p += here;
            count++;
        }
        size_t used = (size_t)(p - run);
        Chunk *c = chunk_new(used, 0);
        if (c == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (link_chunk(self, self->nchunks, c) < 0) {
            PyMem_Free(c);
            return -1;
        }
        memcpy(c->data, run, used);
        c->hi = (uint32_t)used;
        c->count = count;
        self->len += count;
        self->version++;
    }
    return 0;
}

/* extend_listpack(blob) -> bool: append the elements of the listpack `blob` by copying its
 * entries (a restored quicklist node adopted as it is), if every one is an entry this type
 * would have written (see canonical_entry_size); False and nothing appended otherwise (the
 * caller then decodes the elements and extends with them). */
static PyObject *el_extend_listpack(ElementList *self, PyObject *blob) {
    Py_buffer view;
    if (PyObject_GetBuffer(blob, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *lp = view.buf;
    size_t len = (size_t)view.len;
    int ok = len >= 7 && lp[len - 1] == 0xFF &&
             ((size_t)lp[0] | (size_t)lp[1] << 8 | (size_t)lp[2] << 16 | (size_t)lp[3] << 24) == len;
    const unsigned char *p = lp + 6, *end = lp + len - 1;
    while (ok && p < end) {
        size_t size = canonical_entry_size(p, end);
        ok = size != 0 && size <= ENTRY_MAX;
        p += size;
    }
    int r = ok ? append_entries(self, lp + 6, end) : 0;
    PyBuffer_Release(&view);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(ok);
}

static unsigned char *needle_entry(PyObject *element, unsigned char *small, size_t small_size, size_t *size);

/* find(element, from_tail, skip, limit, maxlen) -> list[int]: the positions (counted from the
 * head) of elements equal to `element`, scanning from the head or the tail: the first `skip`
 * matches passed over, at most `limit` collected (0: all), at most `maxlen` elements looked at
 * (0: all).  In scan order.  (LPOS's RANK/COUNT/MAXLEN; LREM's count.) */
static PyObject *el_find(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "find(element, from_tail, skip, limit, maxlen)");
        return NULL;
    }
    int from_tail = PyObject_IsTrue(args[1]);
    Py_ssize_t skip = PyNumber_AsSsize_t(args[2], PyExc_OverflowError);
    Py_ssize_t limit = PyNumber_AsSsize_t(args[3], PyExc_OverflowError);
    Py_ssize_t maxlen = PyNumber_AsSsize_t(args[4], PyExc_OverflowError);
    if (from_tail < 0 || PyErr_Occurred())
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL || !(PyBytes_Check(args[0]) || PyByteArray_Check(args[0])))
        return out;
    unsigned char small[128];
    size_t size;
    unsigned char *needle = needle_entry(args[0], small, sizeof small, &size);
    if (needle == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    Py_ssize_t looked = 0, matches = 0;
    int done = 0;
    for (Py_ssize_t k = 0; k < self->nchunks && !done; k++) {
        Py_ssize_t ci = from_tail ? self->nchunks - 1 - k : k;
        Chunk *c = chunk_at(self, ci);
        const unsigned char *p = from_tail ? c->data + c->hi : c->data + c->lo;
        for (uint32_t e = 0; e < c->count; e++, looked++) {
            if (maxlen && looked >= maxlen) {
                done = 1;
                break;
            }
            size_t here;
            const unsigned char *entry;
            if (from_tail) {
                here = lpe_size_before(p);
                entry = p -= here;
            } else {
                entry = p;
                here = lpe_size(p);
                p += here;
            }
            if (here != size || entry[0] != needle[0] || memcmp(entry, needle, size) != 0)
                continue;
            if (matches++ < skip)
                continue;
            PyObject *at = PyLong_FromSsize_t(from_tail ? self->len - 1 - looked : looked);
            if (at == NULL || PyList_Append(out, at) < 0) {
                Py_XDECREF(at);
                Py_CLEAR(out);
                done = 1;
                break;
            }
            Py_DECREF(at);
            if (limit && PyList_GET_SIZE(out) >= limit) {
                done = 1;
                break;
            }
        }
    }
    if (needle != small)
        PyMem_Free(needle);
    return out;
}

/* remove_positions(positions): remove the elements at those positions (ascending, distinct,
 * within the list), each chunk compacted once. */
static PyObject *el_remove_positions(ElementList *self, PyObject *positions) {
    PyObject *seq = PySequence_Fast(positions, "remove_positions(positions: list of int)");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), previous = -1;
    for (Py_ssize_t i = 0; i < n; i++) { /* all checked before anything changes */
        Py_ssize_t at = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i), PyExc_OverflowError);
        if (at == -1 && PyErr_Occurred())
            goto fail;
        if (at <= previous || at >= self->len) {
            PyErr_SetString(PyExc_ValueError, "remove_positions: positions must ascend within the list");
            goto fail;
        }
        previous = at;
    }
    Py_ssize_t i = 0, start = 0, ci = 0;
    while (i < n && ci < self->nchunks) {
        Chunk *c = chunk_at(self, ci);
        Py_ssize_t stop = start + c->count;
        if (PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i)) >= stop) {
            start = stop;
            ci++;
            continue;
        }
        unsigned char *read = c->data + c->lo, *write = read;
        uint32_t kept = 0;
        for (Py_ssize_t index = start; index < stop; index++) {
            size_t here = lpe_size(read);
            if (i < n && PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i)) == index) {
                i++;
            } else {
                if (write != read)
                    memmove(write, read, here);
                write += here;
                kept++;
            }
            read += here;
        }
        self->len -= (Py_ssize_t)(c->count - kept);
        c->count = kept;
        c->hi = (uint32_t)(write - c->data);
        start = stop;
        if (kept == 0)
            unlink_chunks(self, ci, 1);
        else
            ci++;
    }
    self->version++;
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    Py_DECREF(seq);
    return NULL;
}

/* ------------------------------------------------------------------ type */

static PyObject *el_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    ElementList *self = (ElementList *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->chunks = self->inline_slot;
    self->slots = 1;
    self->first = self->nchunks = self->len = 0;
    self->version = 0;
    return (PyObject *)self;
}

static int el_init(ElementList *self, PyObject *args, PyObject *kwds) {
    PyObject *iterable = NULL;
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "ElementList() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_UnpackTuple(args, "ElementList", 0, 1, &iterable))
        return -1;
    if (self->len)
        clear_all(self);
    return iterable == NULL ? 0 : extend_from(self, iterable, 0);
}

static void el_dealloc(ElementList *self) {
    unlink_chunks(self, 0, self->nchunks);
    if (self->chunks != self->inline_slot)
        PyMem_Free(self->chunks);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t el_len(ElementList *self) { return self->len; }

static PyObject *el_item(ElementList *self, Py_ssize_t index) {
    if (index < 0 || index >= self->len) {
        PyErr_SetString(PyExc_IndexError, "ElementList index out of range");
        return NULL;
    }
    Py_ssize_t ci;
    return entry_bytes_object(locate(self, index, &ci));
}

static int el_ass_item(ElementList *self, Py_ssize_t index, PyObject *value) {
    if (index < 0 || index >= self->len) {
        PyErr_SetString(PyExc_IndexError, "ElementList assignment index out of range");
        return -1;
    }
    if (value == NULL) {
        delete_at(self, index);
        return 0;
    }
    const unsigned char *s;
    size_t n;
    if (!element_of(value, &s, &n))
        return -1;
    /* (insert first: a failed insert leaves the list as it was) */
    if (insert_at(self, index, s, n) < 0)
        return -1;
    delete_at(self, index + 1);
    return 0;
}

/* The needle's entry (*buf malloc'd when big, else `small`); NULL with an error set. */
static unsigned char *needle_entry(PyObject *element, unsigned char *small, size_t small_size, size_t *size) {
    const unsigned char *s;
    size_t n;
    if (!element_of(element, &s, &n))
        return NULL;
    LpePlan plan;
    lpe_plan(s, n, &plan);
    unsigned char *buf = plan.size <= small_size ? small : PyMem_Malloc(plan.size);
    if (buf == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    lpe_write(buf, s, n, &plan);
    *size = plan.size;
    return buf;
}

/* Position of the first element equal to `element` (bytes or bytearray: anything else is in
 * no list), -1 when there is none, -2 with an error set.  (`in` and index().) */
static Py_ssize_t position_of(ElementList *self, PyObject *element) {
    if (!PyBytes_Check(element) && !PyByteArray_Check(element))
        return -1;
    unsigned char small[128];
    size_t size;
    unsigned char *needle = needle_entry(element, small, sizeof small, &size);
    if (needle == NULL)
        return -2;
    Py_ssize_t index = 0, at = -1;
    for (Py_ssize_t ci = 0; ci < self->nchunks && at < 0; ci++) {
        Chunk *c = chunk_at(self, ci);
        const unsigned char *p = c->data + c->lo, *end = c->data + c->hi;
        while (p < end) {
            size_t here = lpe_size(p);
            if (here == size && p[0] == needle[0] && memcmp(p, needle, size) == 0) {
                at = index;
                break;
            }
            p += here;
            index++;
        }
    }
    if (needle != small)
        PyMem_Free(needle);
    return at;
}

static int el_contains(ElementList *self, PyObject *element) {
    Py_ssize_t at = position_of(self, element);
    return at == -2 ? -1 : at >= 0;
}

static PyObject *el_index(ElementList *self, PyObject *element) {
    Py_ssize_t at = position_of(self, element);
    if (at == -1)
        PyErr_SetString(PyExc_ValueError, "element is not in the ElementList");
    return at < 0 ? NULL : PyLong_FromSsize_t(at);
}

static PyObject *el_append_side(ElementList *self, PyObject *element, int front) {
    const unsigned char *s;
    size_t n;
    if (!element_of(element, &s, &n) || push(self, s, n, front) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *el_append(ElementList *self, PyObject *element) { return el_append_side(self, element, 0); }
static PyObject *el_appendleft(ElementList *self, PyObject *element) { return el_append_side(self, element, 1); }

/* Pop the head or tail element as bytes; its entry's size in *entry_size. */
static PyObject *pop_end(ElementList *self, int head, Py_ssize_t *entry_size) {
    if (self->len == 0) {
        PyErr_SetString(PyExc_IndexError, "pop from an empty ElementList");
        return NULL;
    }
    Chunk *c = chunk_at(self, head ? 0 : self->nchunks - 1);
    const unsigned char *p = head ? c->data + c->lo : c->data + c->hi - lpe_size_before(c->data + c->hi);
    *entry_size = (Py_ssize_t)lpe_size(p);
    PyObject *out = entry_bytes_object(p);
    if (out != NULL)
        drop_end(self, 1, head);
    return out;
}

static PyObject *el_pop_side(ElementList *self, int head) {
    Py_ssize_t entry_size;
    return pop_end(self, head, &entry_size);
}

static PyObject *el_pop(ElementList *self, PyObject *unused) { return el_pop_side(self, 0); }
static PyObject *el_popleft(ElementList *self, PyObject *unused) { return el_pop_side(self, 1); }

static PyObject *el_extend(ElementList *self, PyObject *iterable) {
    return extend_from(self, iterable, 0) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *el_extendleft(ElementList *self, PyObject *iterable) {
    return extend_from(self, iterable, 1) < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *el_insert(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "insert(index, element)");
        return NULL;
    }
    Py_ssize_t index = PyNumber_AsSsize_t(args[0], PyExc_IndexError);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *s;
    size_t n;
    if (!element_of(args[1], &s, &n))
        return NULL;
    /* list.insert's clamping, as deque.insert does */
    if (index < 0)
        index = index + self->len < 0 ? 0 : index + self->len;
    if (index > self->len)
        index = self->len;
    return insert_at(self, index, s, n) < 0 ? NULL : Py_NewRef(Py_None);
}

/* The elements [start, stop) (clamped) as a list of bytes, head first. */
static PyObject *span_list(ElementList *self, Py_ssize_t start, Py_ssize_t stop) {
    if (start < 0)
        start = 0;
    if (stop > self->len)
        stop = self->len;
    Py_ssize_t n = stop > start ? stop - start : 0;
    PyObject *out = PyList_New(n);
    if (out == NULL || n == 0)
        return out;
    Py_ssize_t ci;
    const unsigned char *p = locate(self, start, &ci);
    Chunk *c = chunk_at(self, ci);
    for (Py_ssize_t i = 0; i < n; i++) {
        while (p == c->data + c->hi) {
            c = chunk_at(self, ++ci);
            p = c->data + c->lo;
        }
        PyObject *item = entry_bytes_object(p);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
        p += lpe_size(p);
    }
    return out;
}

static int two_ssize(PyObject *const *args, Py_ssize_t nargs, const char *usage, Py_ssize_t *a, Py_ssize_t *b) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    *a = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (*a == -1 && PyErr_Occurred())
        return -1;
    *b = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    return *b == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *el_slice(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t start, stop;
    if (two_ssize(args, nargs, "slice(start, stop)", &start, &stop) < 0)
        return NULL;
    return span_list(self, start, stop);
}

/* entry_bytes(start, stop): the listpack bytes of the entries [start, stop) (clamped). */
static PyObject *el_entry_bytes(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t start, stop;
    if (two_ssize(args, nargs, "entry_bytes(start, stop)", &start, &stop) < 0)
        return NULL;
    if (start < 0)
        start = 0;
    if (stop > self->len)
        stop = self->len;
    if (stop <= start)
        return PyLong_FromLong(0);
    unsigned long long total = 0;
    Py_ssize_t index = 0;
    for (Py_ssize_t ci = 0; ci < self->nchunks && index < stop; ci++) {
        Chunk *c = chunk_at(self, ci);
        Py_ssize_t from = start - index, to = stop - index;
        if (from <= 0 && to >= (Py_ssize_t)c->count) {
            total += chunk_used(c);
        } else if (to > 0 && from < (Py_ssize_t)c->count) {
            const unsigned char *a = chunk_entry(c, from < 0 ? 0 : from);
            const unsigned char *b = to >= (Py_ssize_t)c->count ? c->data + c->hi : chunk_entry(c, to);
            total += (unsigned long long)(b - a);
        }
        index += c->count;
    }
    return PyLong_FromUnsignedLongLong(total);
}

static int count_head(PyObject *const *args, Py_ssize_t nargs, const char *usage, Py_ssize_t *count, int *head) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    *count = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (*count == -1 && PyErr_Occurred())
        return -1;
    *head = PyObject_IsTrue(args[1]);
    return *head < 0 ? -1 : 0;
}

/* resp_range(start, stop) -> bytes: the elements [start, stop) (clamped) as a RESP array
 * reply, each a bulk string written straight from its entry (no bytes object per element), in
 * one pass into a BytesWire: a short string entry (header byte, up to 63 bytes, one-byte
 * back-length: LRANGE's common element) is copied as it lies, any other goes through
 * lpe_text. */
static PyObject *el_resp_range(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t start, stop;
    if (two_ssize(args, nargs, "resp_range(start, stop)", &start, &stop) < 0)
        return NULL;
    if (start < 0)
        start = 0;
    if (stop > self->len)
        stop = self->len;
    Py_ssize_t n = stop > start ? stop - start : 0;
    size_t guess = 24 + (size_t)n * 12; /* "$3\r\nxxx\r\n" is 9: most small replies fit at once */
    BytesWire w = {PyBytes_FromStringAndSize(NULL, (Py_ssize_t)guess), NULL, NULL};
    if (w.bytes == NULL)
        return NULL;
    w.p = PyBytes_AS_STRING(w.bytes);
    w.end = w.p + guess;
    w.p = wire_head_at(w.p, '*', (unsigned long long)n);
    if (n > 0) {
        Py_ssize_t ci;
        const unsigned char *p = locate(self, start, &ci);
        Chunk *c = chunk_at(self, ci);
        const unsigned char *chunk_end = c->data + c->hi;
        unsigned char digits[LPE_INT_TEXT_MAX];
        for (Py_ssize_t i = 0; i < n; i++) {
            while (p == chunk_end) {
                c = chunk_at(self, ++ci);
                p = c->data + c->lo;
                chunk_end = c->data + c->hi;
            }
            unsigned char b = p[0];
            if ((b & 0xC0) == 0x80) {
                size_t len = b & 0x3F;
                if (bytes_wire_room(&w, len + 7) < 0)
                    return NULL; /* (no memory: bytes_wire_room released the bytes) */
                char *o = w.p;
                *o++ = '$';
                if (len < 10) {
                    *o++ = (char)('0' + len);
                } else {
                    *o++ = (char)('0' + len / 10);
                    *o++ = (char)('0' + len % 10);
                }
                *o++ = '\r';
                *o++ = '\n';
                memcpy(o, p + 1, len);
                o += len;
                *o++ = '\r';
                *o++ = '\n';
                w.p = o;
                p += len + 2;
                continue;
            }
            const unsigned char *text;
            size_t len;
            lpe_text(p, digits, &text, &len);
            if (bytes_wire_bulk(&w, text, len) < 0)
                return NULL;
            p += lpe_size(p);
        }
    }
    Py_ssize_t used = (Py_ssize_t)(w.p - PyBytes_AS_STRING(w.bytes));
    if (used != PyBytes_GET_SIZE(w.bytes) && _PyBytes_Resize(&w.bytes, used) < 0)
        return NULL;
    return w.bytes;
}

/* pop_many(count, head): up to `count` elements off one end, in the order they leave. */
static PyObject *el_pop_many(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t count;
    int head;
    if (count_head(args, nargs, "pop_many(count, head)", &count, &head) < 0)
        return NULL;
    if (count > self->len)
        count = self->len;
    if (count < 0)
        count = 0;
    PyObject *out = span_list(self, head ? 0 : self->len - count, head ? count : self->len);
    if (out == NULL)
        return NULL;
    if (!head && PyList_Reverse(out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    drop_end(self, count, head);
    return out;
}

/* drop(count, head): remove up to `count` elements from one end, reading none. */
static PyObject *el_drop(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t count;
    int head;
    if (count_head(args, nargs, "drop(count, head)", &count, &head) < 0)
        return NULL;
    drop_end(self, count > self->len ? self->len : count, head);
    Py_RETURN_NONE;
}

static PyObject *el_copy(ElementList *self, PyObject *unused) {
    ElementList *dup = (ElementList *)el_new(Py_TYPE(self), NULL, NULL);
    if (dup == NULL)
        return NULL;
    for (Py_ssize_t ci = 0; ci < self->nchunks; ci++) {
        Chunk *c = chunk_at(self, ci);
        size_t used = chunk_used(c);
        Chunk *n = chunk_new(used, 0);
        if (n == NULL || link_chunk(dup, ci, n) < 0) {
            if (n == NULL)
                PyErr_NoMemory();
            PyMem_Free(n);
            Py_DECREF(dup);
            return NULL;
        }
        memcpy(n->data, c->data + c->lo, used);
        n->hi = (uint32_t)used;
        n->count = c->count;
    }
    dup->len = self->len;
    return (PyObject *)dup;
}

/* The entries of the next `count` elements from (*ci, *p), written at w when w is not NULL;
 * their byte size.  (*ci, *p) move past them. */
static size_t take_entries(ElementList *self, Py_ssize_t *ci, const unsigned char **p, Py_ssize_t count,
                           unsigned char *w) {
    size_t size = 0;
    while (count > 0) {
        Chunk *c = chunk_at(self, *ci);
        if (*p == c->data + c->hi) {
            c = chunk_at(self, ++*ci);
            *p = c->data + c->lo;
        }
        const unsigned char *from = *p;
        if (from == c->data + c->lo && count >= (Py_ssize_t)c->count) { /* the whole chunk */
            count -= c->count;
            *p = c->data + c->hi;
        } else {
            while (count > 0 && *p < c->data + c->hi) {
                *p += lpe_size(*p);
                count--;
            }
        }
        if (w != NULL)
            memcpy(w + size, from, (size_t)(*p - from));
        size += (size_t)(*p - from);
    }
    return size;
}

/* A listpack's header (total bytes, element count: 65535 when unknown) and end byte around the
 * `count` entries written at lp + 6; `total` bytes in all. */
static void frame_listpack(unsigned char *lp, size_t total, Py_ssize_t count) {
    uint16_t n16 = count < 65535 ? (uint16_t)count : 65535;
    for (int k = 0; k < 4; k++)
        lp[k] = (unsigned char)((total >> (8 * k)) & 0xff);
    lp[4] = n16 & 0xff;
    lp[5] = n16 >> 8;
    lp[total - 1] = 0xFF;
}

/* node_blobs(shape): for each (count, plain) of `shape`, head first, the next `count` elements
 * as one node: their listpack (header, entries as they lie, end byte), or for a plain node its
 * one element.  The counts must add up to at most len. */
static PyObject *el_node_blobs(ElementList *self, PyObject *shape) {
    PyObject *seq = PySequence_Fast(shape, "node_blobs(shape: list of (count, plain))");
    if (seq == NULL)
        return NULL;
    Py_ssize_t nodes = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(nodes);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t ci = 0, left = self->len;
    const unsigned char *p = self->nchunks ? chunk_at(self, 0)->data + chunk_at(self, 0)->lo : NULL;
    for (Py_ssize_t i = 0; i < nodes; i++) {
        PyObject *node = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(node) || PyTuple_GET_SIZE(node) != 2) {
            PyErr_SetString(PyExc_TypeError, "node_blobs: each node is (count, plain)");
            goto fail;
        }
        Py_ssize_t count = PyNumber_AsSsize_t(PyTuple_GET_ITEM(node, 0), PyExc_OverflowError);
        int plain = PyObject_IsTrue(PyTuple_GET_ITEM(node, 1));
        if ((count == -1 && PyErr_Occurred()) || plain < 0)
            goto fail;
        if (count < 0 || count > left || (plain && count != 1)) {
            PyErr_SetString(PyExc_ValueError, "node_blobs: counts beyond the list, or a plain node not of one");
            goto fail;
        }
        left -= count;
        PyObject *blob;
        if (plain) {
            Chunk *c = chunk_at(self, ci);
            if (p == c->data + c->hi) {
                c = chunk_at(self, ++ci);
                p = c->data + c->lo;
            }
            blob = entry_bytes_object(p);
            p += lpe_size(p);
        } else {
            /* the entries' size first (they may span chunks), then the copy */
            Py_ssize_t walk_ci = ci;
            const unsigned char *walk_p = p;
            size_t total = 6 + take_entries(self, &walk_ci, &walk_p, count, NULL) + 1;
            if (total > UINT32_MAX) {
                PyErr_SetString(PyExc_OverflowError, "listpack too large");
                goto fail;
            }
            blob = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
            if (blob != NULL) {
                unsigned char *w = (unsigned char *)PyBytes_AS_STRING(blob);
                take_entries(self, &ci, &p, count, w + 6);
                frame_listpack(w, total, count);
            }
        }
        if (blob == NULL)
            goto fail;
        PyList_SET_ITEM(out, i, blob);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

/* An rdb length (rdbSaveLen) at w; the bytes written. */
static size_t put_rdb_len(unsigned char *w, uint64_t len) {
    if (len < 64) {
        w[0] = (unsigned char)len;
        return 1;
    }
    if (len < 16384) {
        w[0] = (unsigned char)(0x40 | (len >> 8));
        w[1] = (unsigned char)(len & 0xff);
        return 2;
    }
    int wide = len > UINT32_MAX;
    size_t n = wide ? 8 : 4;
    w[0] = wide ? 0x81 : 0x80;
    for (size_t i = 0; i < n; i++)
        w[1 + i] = (unsigned char)((len >> (8 * (n - 1 - i))) & 0xff);
    return 1 + n;
}

/* quicklist_body(head, counts, compress[, footer]) -> bytes: `head`, then a LIST_QUICKLIST_2 body
 * of packed nodes holding counts[i] elements each (head first; they must add up to len): per
 * node the container byte and its listpack as an rdbString, LZF-compressed when `compress`
 * (compression.compress_for_rdb: the LZF bytes or None) is given, the listpack is over 20
 * bytes and it returns bytes, else raw (rdbSaveRawString; a listpack is never integer text).
 * The bytes quicklist.write_body writes for the same nodes, from entries copied as they lie.
 * `footer` (envelope.footer_parts: the version's bytes and crc64) makes it the whole DUMP
 * payload: those bytes, then the CRC-64 of everything before it (little-endian).
 * Everything is written into the result's own buffer, sized once for the uncompressed nodes and
 * cut to length at the end: a big list's payload is neither copied out of a scratch buffer nor
 * copied again to append its footer (each a fresh ~size buffer to fault in). */
static PyObject *el_quicklist_body(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    if ((nargs != 3 && nargs != 4) || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "quicklist_body(head: bytes, counts, compress[, footer])");
        return NULL;
    }
    PyObject *compress = args[2] == Py_None ? NULL : args[2];
    PyObject *footer = nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    if (footer != NULL && (!PyTuple_Check(footer) || PyTuple_GET_SIZE(footer) != 2 ||
                           !PyBytes_Check(PyTuple_GET_ITEM(footer, 0)))) {
        PyErr_SetString(PyExc_TypeError, "quicklist_body: footer is (version bytes, crc64)");
        return NULL;
    }
    size_t footer_len = footer == NULL ? 0 : (size_t)PyBytes_GET_SIZE(PyTuple_GET_ITEM(footer, 0)) + 8;
    PyObject *seq = PySequence_Fast(args[1], "quicklist_body: counts must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t nodes = PySequence_Fast_GET_SIZE(seq), total_count = 0;
    PyObject *result = NULL;
    size_t head_len = (size_t)PyBytes_GET_SIZE(args[0]), entries = 0, len = 0;
    for (Py_ssize_t ci = 0; ci < self->nchunks; ci++)
        entries += chunk_used(chunk_at(self, ci));
    /* room for everything uncompressed: head, node count, per node container, length, header,
     * end; the footer */
    size_t room = head_len + 9 + entries + (size_t)nodes * (1 + 5 + 7) + 16 + footer_len;
    if (room > (size_t)PY_SSIZE_T_MAX) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)room);
    if (result == NULL)
        goto done;
    unsigned char *data = (unsigned char *)PyBytes_AS_STRING(result), *w;
    memcpy(data, PyBytes_AS_STRING(args[0]), head_len);
    len = head_len;
    len += put_rdb_len(data + len, (uint64_t)nodes);
    Py_ssize_t ci = 0;
    const unsigned char *p = self->nchunks ? chunk_at(self, 0)->data + chunk_at(self, 0)->lo : NULL;
    for (Py_ssize_t i = 0; i < nodes; i++) {
        Py_ssize_t count = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i), PyExc_OverflowError);
        if (count == -1 && PyErr_Occurred())
            goto fail;
        if (count <= 0 || count > self->len - total_count) {
            PyErr_SetString(PyExc_ValueError, "quicklist_body: node counts do not fit the list");
            goto fail;
        }
        total_count += count;
        /* one pass: the listpack written 5 bytes on (the longest length a node can need), then
         * moved up against its length once that is known */
        w = data + len;
        unsigned char *lp = w + 1 + 5;
        size_t lp_len = 6 + take_entries(self, &ci, &p, count, lp + 6) + 1;
        if (lp_len > UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "listpack too large");
            goto fail;
        }
        frame_listpack(lp, lp_len, count);
        w[0] = 2; /* QUICKLIST_NODE_CONTAINER_PACKED */
        if (compress != NULL && lp_len > 20) {
            PyObject *raw = PyBytes_FromStringAndSize((const char *)lp, (Py_ssize_t)lp_len);
            PyObject *packed = raw == NULL ? NULL : PyObject_CallOneArg(compress, raw);
            Py_XDECREF(raw);
            if (packed == NULL)
                goto fail;
            if (packed != Py_None) {
                if (!PyBytes_Check(packed)) {
                    Py_DECREF(packed);
                    PyErr_SetString(PyExc_TypeError, "compress must return bytes or None");
                    goto fail;
                }
                /* (shorter than the listpack by 4 or more: it fits the room the listpack took,
                 * but for 2 bytes when both lengths take 5: the allocation's spare 16) */
                size_t clen = (size_t)PyBytes_GET_SIZE(packed);
                size_t at = 1;
                w[at++] = 0xC3; /* RDB_ENC_LZF */
                at += put_rdb_len(w + at, clen);
                at += put_rdb_len(w + at, lp_len);
                memcpy(w + at, PyBytes_AS_STRING(packed), clen);
                Py_DECREF(packed);
                len += at + clen;
                continue;
            }
            Py_DECREF(packed);
        }
        size_t len_bytes = put_rdb_len(w + 1, lp_len);
        if (len_bytes != 5)
            memmove(w + 1 + len_bytes, lp, lp_len);
        len += 1 + len_bytes + lp_len;
    }
    if (total_count != self->len) {
        PyErr_SetString(PyExc_ValueError, "quicklist_body: node counts do not fit the list");
        goto fail;
    }
    if (footer != NULL) {
        PyObject *version = PyTuple_GET_ITEM(footer, 0);
        memcpy(data + len, PyBytes_AS_STRING(version), (size_t)PyBytes_GET_SIZE(version));
        len += (size_t)PyBytes_GET_SIZE(version);
        PyObject *view = PyMemoryView_FromMemory((char *)data, (Py_ssize_t)len, PyBUF_READ);
        PyObject *crc_obj = view == NULL ? NULL : PyObject_CallOneArg(PyTuple_GET_ITEM(footer, 1), view);
        Py_XDECREF(view);
        if (crc_obj == NULL)
            goto fail;
        unsigned long long crc = PyLong_AsUnsignedLongLong(crc_obj);
        Py_DECREF(crc_obj);
        if (crc == (unsigned long long)-1 && PyErr_Occurred())
            goto fail;
        for (int k = 0; k < 8; k++)
            data[len++] = (unsigned char)(crc >> (8 * k));
    }
    /* (shrinking a big buffer moves no bytes: realloc keeps it where it is) */
    if (_PyBytes_Resize(&result, (Py_ssize_t)len) < 0)
        result = NULL;
done:
    Py_DECREF(seq);
    return result;
fail:
    Py_CLEAR(result);
    goto done;
}

static int append_node(PyObject *out, Py_ssize_t count, int plain) {
    PyObject *node = Py_BuildValue("(nO)", count, plain ? Py_True : Py_False);
    if (node == NULL)
        return -1;
    int r = PyList_Append(out, node);
    Py_DECREF(node);
    return r;
}

/* cut_nodes(limit, large, listpack_phase) -> [(count, plain)]: the quicklist nodes the list
 * gets when RPUSHed element by element under a size-limited fill (quicklist._pack_by_size's
 * decisions, which stay the reference): an element longer than `large` in a plain node of its
 * own, else into the open node while its bytes + the element's length + 8 stay within `limit`
 * (the list first one listpack while its bytes + the length stay within it, if
 * `listpack_phase`). */
static PyObject *el_cut_nodes(ElementList *self, PyObject *const *args, Py_ssize_t nargs) {
    long long limit, large;
    int phase;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "cut_nodes(limit, large, listpack_phase)");
        return NULL;
    }
    limit = PyLong_AsLongLong(args[0]);
    large = PyLong_AsLongLong(args[1]);
    if (((limit == -1 || large == -1) && PyErr_Occurred()) || (phase = PyObject_IsTrue(args[2])) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    long long node_size = 0; /* lpBytes of the open packed node; 0: none open */
    Py_ssize_t index = 0, start = 0;
    enum { INT_TEXT_MAX = LPE_INT_TEXT_MAX - 1 }; /* "-9223372036854775808" */
    int bounded = large >= INT_TEXT_MAX; /* no integer is a plain node's */
    for (Py_ssize_t ci = 0; ci < self->nchunks; ci++) {
        Chunk *c = chunk_at(self, ci);
        const unsigned char *end = c->data + c->hi;
        /* Away from the limit an element's length as text decides nothing: it is at most
         * max(INT_TEXT_MAX, its entry's size) (a string's text is shorter than its entry), so
         * while that fits the open node (and is not `large`), the entry joins it with only its
         * size read.  A whole chunk first, then entry by entry, and a chunk's rest once a node
         * opens in it (1M integers' digits, formatted to be counted, were a third of a big
         * list's DUMP). */
        if (bounded && !phase && node_size && (long long)chunk_used(c) <= large &&
            node_size + (long long)chunk_used(c) + 8 + INT_TEXT_MAX <= limit) {
            node_size += (long long)chunk_used(c);
            index += (Py_ssize_t)c->count;
            continue;
        }
        Py_ssize_t chunk_first = index;
        for (const unsigned char *p = c->data + c->lo; p < end; index++) {
            if (bounded && !phase && node_size) {
                long long grow = (long long)lpe_size(p);
                if (grow <= large && node_size + 8 + (grow > INT_TEXT_MAX ? grow : INT_TEXT_MAX) <= limit) {
                    node_size += grow;
                    p += grow;
                    continue;
                }
            }
            long long grow = (long long)lpe_size(p), size = (long long)lpe_text_len(p);
            p += grow;
            if (phase) {
                long long base = node_size ? node_size : 7;
                if (base + size <= limit) {
                    node_size = base + grow;
                    continue;
                }
                phase = 0;
            }
            if (size > large) {
                if ((node_size && append_node(out, index - start, 0) < 0) || append_node(out, 1, 1) < 0)
                    goto fail;
                start = index + 1;
                node_size = 0;
            } else if (node_size && node_size + size + 8 <= limit) {
                node_size += grow;
            } else {
                if (node_size && append_node(out, index - start, 0) < 0)
                    goto fail;
                start = index;
                node_size = 7 + grow;
                /* a node opened: the rest of the chunk joins it at once if it fits as above */
                long long rest = (long long)(end - p);
                if (bounded && !phase && rest <= large && node_size + rest + 8 + INT_TEXT_MAX <= limit) {
                    node_size += rest;
                    index += (Py_ssize_t)c->count - (index - chunk_first + 1);
                    p = end;
                }
            }
        }
    }
    if (node_size && append_node(out, index - start, 0) < 0)
        goto fail;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *el_sizeof(ElementList *self, PyObject *unused) {
    size_t total = sizeof(ElementList);
    if (self->chunks != self->inline_slot)
        total += (size_t)self->slots * sizeof(Chunk *);
    for (Py_ssize_t ci = 0; ci < self->nchunks; ci++)
        total += sizeof(Chunk) + chunk_at(self, ci)->cap;
    return PyLong_FromSize_t(total);
}

/* ------------------------------------------------------------------ iteration */

typedef struct {
    PyObject_HEAD
    ElementList *list;
    Py_ssize_t ci;
    size_t offset; /* next entry's offset in chunk ci (forward), or the end of it (reverse) */
    Py_ssize_t left;
    uint64_t version;
    int reverse;
} ElementIter;

static PyTypeObject ElementIterType;

static PyObject *make_iter(ElementList *list, int reverse) {
    ElementIter *it = PyObject_New(ElementIter, &ElementIterType);
    if (it == NULL)
        return NULL;
    it->list = (ElementList *)Py_NewRef(list);
    it->left = list->len;
    it->version = list->version;
    it->reverse = reverse;
    it->ci = reverse ? list->nchunks - 1 : 0;
    it->offset = 0;
    if (list->nchunks)
        it->offset = reverse ? chunk_at(list, it->ci)->hi : chunk_at(list, 0)->lo;
    return (PyObject *)it;
}

static PyObject *el_iter(ElementList *self) { return make_iter(self, 0); }
static PyObject *el_reversed(ElementList *self, PyObject *unused) { return make_iter(self, 1); }

static PyObject *iter_next(ElementIter *it) {
    ElementList *list = it->list;
    if (it->left <= 0)
        return NULL;
    if (it->version != list->version) {
        it->left = 0;
        PyErr_SetString(PyExc_RuntimeError, "ElementList mutated during iteration");
        return NULL;
    }
    Chunk *c = chunk_at(list, it->ci);
    const unsigned char *p;
    if (!it->reverse) {
        if (it->offset == c->hi) {
            c = chunk_at(list, ++it->ci);
            it->offset = c->lo;
        }
        p = c->data + it->offset;
        it->offset += lpe_size(p);
    } else {
        if (it->offset == c->lo) {
            c = chunk_at(list, --it->ci);
            it->offset = c->hi;
        }
        it->offset -= lpe_size_before(c->data + it->offset);
        p = c->data + it->offset;
    }
    it->left--;
    return entry_bytes_object(p);
}

static void iter_dealloc(ElementIter *it) {
    Py_DECREF(it->list);
    PyObject_Free(it);
}

static PyObject *iter_length_hint(ElementIter *it, PyObject *unused) { return PyLong_FromSsize_t(it->left); }

static PyMethodDef iter_methods[] = {
    {"__length_hint__", (PyCFunction)iter_length_hint, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ElementIterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._elementlist.ElementIterator",
    .tp_basicsize = sizeof(ElementIter),
    .tp_dealloc = (destructor)iter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)iter_next,
    .tp_methods = iter_methods,
};

/* ------------------------------------------------------------------ C API (_elementlist.h) */

static Py_ssize_t api_push(PyObject *list, const char *s, Py_ssize_t n, int front) {
    if ((size_t)n > ENTRY_MAX - 16) {
        PyErr_SetString(PyExc_OverflowError, "element too large");
        return -1;
    }
    return push((ElementList *)list, (const unsigned char *)s, (size_t)n, front);
}

static PyObject *api_pop(PyObject *list, int head, Py_ssize_t *entry_size) {
    return pop_end((ElementList *)list, head, entry_size);
}

static ElementListApi api = {&ElementListType, api_push, api_pop};

/* ------------------------------------------------------------------ module */

static PyObject *el_repr(ElementList *self) {
    PyObject *items = PySequence_List((PyObject *)self);
    if (items == NULL)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("ElementList(%R)", items);
    Py_DECREF(items);
    return r;
}

static PyObject *el_richcompare(PyObject *a, PyObject *b, int op) {
    if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(b, &ElementListType))
        Py_RETURN_NOTIMPLEMENTED;
    ElementList *x = (ElementList *)a, *y = (ElementList *)b;
    int equal = x->len == y->len;
    /* entry by entry: equal elements have equal entries */
    Py_ssize_t cx = 0, cy = 0;
    const unsigned char *p = NULL, *q = NULL;
    for (Py_ssize_t i = 0; equal && i < x->len; i++) {
        if (p == NULL || p == chunk_at(x, cx)->data + chunk_at(x, cx)->hi) {
            if (p != NULL)
                cx++;
            p = chunk_at(x, cx)->data + chunk_at(x, cx)->lo;
        }
        if (q == NULL || q == chunk_at(y, cy)->data + chunk_at(y, cy)->hi) {
            if (q != NULL)
                cy++;
            q = chunk_at(y, cy)->data + chunk_at(y, cy)->lo;
        }
        size_t sp = lpe_size(p), sq = lpe_size(q);
        equal = sp == sq && memcmp(p, q, sp) == 0;
        p += sp;
        q += sq;
    }
    return PyBool_FromLong(op == Py_EQ ? equal : !equal);
}

static PySequenceMethods el_as_sequence = {
    .sq_length = (lenfunc)el_len,
    .sq_item = (ssizeargfunc)el_item,
    .sq_ass_item = (ssizeobjargproc)el_ass_item,
    .sq_contains = (objobjproc)el_contains,
};

static PyMethodDef el_methods[] = {
    {"append", (PyCFunction)el_append, METH_O, "Add an element at the tail."},
    {"appendleft", (PyCFunction)el_appendleft, METH_O, "Add an element at the head."},
    {"pop", (PyCFunction)el_pop, METH_NOARGS, "Remove and return the tail element."},
    {"popleft", (PyCFunction)el_popleft, METH_NOARGS, "Remove and return the head element."},
    {"extend", (PyCFunction)el_extend, METH_O, "Append each element of an iterable."},
    {"extendleft", (PyCFunction)el_extendleft, METH_O, "appendleft each element of an iterable."},
    {"insert", (PyCFunction)(void (*)(void))el_insert, METH_FASTCALL, "insert(index, element), as deque.insert."},
    {"index", (PyCFunction)el_index, METH_O, "Position of the first equal element (ValueError if none)."},
    {"copy", (PyCFunction)el_copy, METH_NOARGS, "A copy (its chunks packed tight)."},
    {"slice", (PyCFunction)(void (*)(void))el_slice, METH_FASTCALL, "slice(start, stop) -> list of bytes."},
    {"pop_many", (PyCFunction)(void (*)(void))el_pop_many, METH_FASTCALL,
     "pop_many(count, head) -> list: up to count elements off one end, in the order they leave."},
    {"drop", (PyCFunction)(void (*)(void))el_drop, METH_FASTCALL, "drop(count, head): remove elements unread."},
    {"entry_bytes", (PyCFunction)(void (*)(void))el_entry_bytes, METH_FASTCALL,
     "entry_bytes(start, stop) -> int: listpack bytes of those elements' entries."},
    {"node_blobs", (PyCFunction)el_node_blobs, METH_O,
     "node_blobs(shape) -> list of bytes: per (count, plain), that many elements' listpack (or the element)."},
    {"quicklist_body", (PyCFunction)(void (*)(void))el_quicklist_body, METH_FASTCALL,
     "quicklist_body(head, counts, compress[, footer]) -> bytes: head + a LIST_QUICKLIST_2 body of packed "
     "nodes (+ the DUMP footer)."},
    {"cut_nodes", (PyCFunction)(void (*)(void))el_cut_nodes, METH_FASTCALL,
     "cut_nodes(limit, large, listpack_phase) -> [(count, plain)]: quicklist._pack_by_size's cut."},
    {"extend_listpack", (PyCFunction)el_extend_listpack, METH_O,
     "extend_listpack(blob) -> bool: append a listpack's elements by copying its entries (False: not taken)."},
    {"find", (PyCFunction)(void (*)(void))el_find, METH_FASTCALL,
     "find(element, from_tail, skip, limit, maxlen) -> list[int]: positions of equal elements."},
    {"remove_positions", (PyCFunction)el_remove_positions, METH_O,
     "remove_positions(positions): remove the elements at those ascending positions."},
    {"resp_range", (PyCFunction)(void (*)(void))el_resp_range, METH_FASTCALL,
     "resp_range(start, stop) -> bytes: those elements as a RESP array reply."},
    {"__reversed__", (PyCFunction)el_reversed, METH_NOARGS, NULL},
    {"__sizeof__", (PyCFunction)el_sizeof, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ElementListType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._elementlist.ElementList",
    .tp_basicsize = sizeof(ElementList),
    .tp_dealloc = (destructor)el_dealloc,
    .tp_repr = (reprfunc)el_repr,
    .tp_as_sequence = &el_as_sequence,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A list value's elements as listpack entries in chunks (see the module's comment).",
    .tp_richcompare = el_richcompare,
    .tp_iter = (getiterfunc)el_iter,
    .tp_methods = el_methods,
    .tp_init = (initproc)el_init,
    .tp_new = el_new,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "dumpling._elementlist", "A list value's elements packed as listpack entries.", -1, NULL,
};

PyMODINIT_FUNC PyInit__elementlist(void) {
    if (PyType_Ready(&ElementListType) < 0 || PyType_Ready(&ElementIterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    PyObject *capsule = PyCapsule_New(&api, ELEMENTLIST_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObjectRef(m, "ElementList", (PyObject *)&ElementListType) < 0 ||
        PyModule_AddObject(m, "_api", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
