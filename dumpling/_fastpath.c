/*
 * dumpling._fastpath: requests parsed, dispatched and (mostly) answered in C.
 *
 * A read from a plain connection (no MULTI, no CLIENT REPLY, no MONITOR, no WATCH,
 * no keyspace notifications, no cluster, no maxmemory, no AOF/replication hooks, LRU
 * policy: see eligible()) is offered here first.  `run(client, data)` executes the
 * longest prefix of `data` made of requests it can take, two ways:
 *
 * - the general path: any command whose Command.plain is set runs through its own
 *   Python handler, called from here with the same argv, time snapshot and statistics
 *   Server.call gives it; simple replies are encoded here, everything else is finished
 *   by Server.finish_plain (see "the general path" below);
 * - the twins: GET / SET / INCR / MSET / ... are also written in C directly on the
 *   database's KeyTable and expiry dict the Python code uses (`db.data`, `db.expires`), with
 *   exactly the effects the Python handlers have: the same stored values, LRU fields,
 *   hit/miss and command statistics, dirty counter and SLOWLOG
 *   entries.  A twin unsure about a request hands it to the general path.
 *
 * It stops, before touching anything, at the first request it cannot take: an
 * incomplete or unusual request, a command that is not plain, a wrong arity.  The caller
 * hands the rest of the data to the ordinary Python path, which also produces those
 * error replies.
 *
 * Returns the number of bytes consumed (0: nothing done).  Replies are appended to
 * `client._out`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "_native.h"
#include "_slots.h"

#define MAX_ARGS 1024          /* requests with more arguments go to Python */
#define MAX_BULK (1 << 20)     /* < the smallest proto-max-bulk-len Redis accepts (1mb) */
#define INLINE_MAX (64 * 1024) /* PROTO_INLINE_MAX_SIZE: longer lines are an error (Python's) */
#define LRU_CLOCK_MAX ((1 << 24) - 1)

enum { C_GET, C_SET, C_INCR, C_DECR, C_INCRBY, C_DECRBY, C_MSET, C_MGET, C_PING, N_COMMANDS };
static const char *const COMMAND_NAMES[N_COMMANDS] = {
    "get", "set", "incr", "decr", "incrby", "decrby", "mset", "mget", "ping",
};

typedef NativeArg Arg; /* one argument of a request, pointing into the read buffer */

typedef NativeBuf Out;

static PyObject *s_twin_names[N_COMMANDS]; /* COMMAND_NAMES as str: Command.name of each twin */

/* Set by configure(): the Command objects whose statistics run() updates. */
static PyObject *g_commands[N_COMMANDS];
static int g_configured = 0;

/* Interned attribute names. */
static PyObject *s_reply_mode, *s_multi, *s_authenticated, *s_blocked, *s_closed, *s_close_after,
    *s_no_touch, *s_skip_this, *s_resp3, *s_channels, *s_patterns, *s_shard_channels, *s_strict, *s_db,
    *s_data, *s_expires, *s_slot_index, *s_out, *s_last_cmd, *s_last_interaction,
    *s_cluster, *s_key_gate, *s_command_gate, *s_maxmemory, *s_monitors, *s_in_exec, *s_slowlog_threshold, *s_watched,
    *s_notify_flags, *s_lfu, *s_loading, *s_now, *s_stat_hits, *s_stat_misses, *s_dirty, *s_stat_commands,
    *s_current_client, *s_server, *s_keyspace, *s_calls, *s_usec, *s_name, *s_slowlog_push, *s_tracking, *s_pause_gate,
    *s_wire, *s_ready_keys, *s_pending_pushes, *s_finish_plain, *s_call_hooks, *s_tracking_caching, *s_arity, *s_handler,
    *s_begin, *s_end, *s_handler_error, *s_reject, *s_logged_in, *s_twins_ok, *s_acl_free, *s_acl_keyed;
/* ...and the read path's (ClientBase, below) */
static PyObject *s_received, *s_read_rest, *s_flush, *s_close, *s_fast_run, *s_carry, *s_held, *s_retained,
    *s_query_buffer, *s_quiet, *s_transport, *s_batch_ran, *s_stat_net_input, *s_stat_reads, *s_stat_net_output,
    *s_stat_writes, *s_output_check_from, *s_output_check_from_normal, *s_pubsub_clients, *s_obuf_soft, *s_reply_buffer_peak, *s_reply_buffer_size,
    *s_get_write_buffer_size, *s_write;

/* ------------------------------------------------------------------ output buffer */

static int out_reserve(Out *o, size_t extra) {
    return native_buf_reserve(o, extra, 256);
}

/* The buffer a read's replies are written into, kept between reads: a read's loop takes it (a read
 * nested inside that one, from a script serving other clients, finds none and grows its own) and
 * the read gives it back when its replies are gone, instead of a malloc and a free each read.
 * One grown past SPARE_OUT_MAX is freed rather than kept. */
static Out g_spare_out;
#define SPARE_OUT_MAX 65536

static inline void out_take_spare(Out *o) {
    *o = g_spare_out;
    o->len = 0;
    memset(&g_spare_out, 0, sizeof g_spare_out);
}

static inline void out_give_back(Out *o) {
    if (o->buf != NULL && g_spare_out.buf == NULL && o->cap <= SPARE_OUT_MAX) {
        g_spare_out = *o;
        g_spare_out.len = 0;
    } else {
        PyMem_Free(o->buf);
    }
    memset(o, 0, sizeof *o);
}

static int out_put(Out *o, const char *s, size_t n) {
    if (out_reserve(o, n) < 0)
        return -1;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* Writes "<prefix><v>\r\n" at p (room for 24 bytes); returns its length.  By hand: sprintf's
 * format parsing cost more than the rest of a small reply. */
static size_t put_number(char *p, char prefix, long long v) {
    char digits[20];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    p[len++] = prefix;
    if (v < 0)
        p[len++] = '-';
    while (n > 0)
        p[len++] = digits[--n];
    p[len++] = '\r';
    p[len++] = '\n';
    return len;
}

static int out_number(Out *o, char prefix, long long v) {
    if (out_reserve(o, 24) < 0)
        return -1;
    o->len += put_number(o->buf + o->len, prefix, v);
    return 0;
}

static int out_bulk(Out *o, const char *s, Py_ssize_t n) {
    if (out_reserve(o, (size_t)n + 26) < 0)
        return -1;
    o->len += put_number(o->buf + o->len, '$', (long long)n);
    memcpy(o->buf + o->len, s, (size_t)n);
    o->len += (size_t)n;
    o->buf[o->len++] = '\r';
    o->buf[o->len++] = '\n';
    return 0;
}

static int out_null(Out *o, int resp3) { return resp3 ? out_put(o, "_\r\n", 3) : out_put(o, "$-1\r\n", 5); }

/* ------------------------------------------------------------------ parsing */

/* Digits of a RESP header number up to "\r\n"; *pos moves past it.  0: fine, 1: stop
 * (incomplete or anything unusual: the Python parser decides). */
static int read_header_number(const char *buf, Py_ssize_t *pos, Py_ssize_t end, long long max, long long *out) {
    Py_ssize_t p = *pos;
    long long v = 0;
    Py_ssize_t start = p;
    while (p < end && buf[p] >= '0' && buf[p] <= '9') {
        v = v * 10 + (buf[p] - '0');
        if (v > max)
            return 1;
        p++;
    }
    if (p == start || p + 1 >= end || buf[p] != '\r' || buf[p + 1] != '\n')
        return 1;
    if (buf[start] == '0' && p - start > 1)
        return 1; /* leading zero: Redis's string2ll refuses it */
    *pos = p + 2;
    *out = v;
    return 0;
}

/* An inline request (a line typed into telnet, redis-benchmark's PING_INLINE) of plain
 * words: split on spaces and tabs like sdssplitargs.  Quotes, other control bytes, empty
 * lines and lines without their newline yet are left to the Python parser. */
static Py_ssize_t parse_inline(const char *buf, Py_ssize_t pos, Py_ssize_t end, Arg *args, int *argc) {
    Py_ssize_t limit = end - pos < INLINE_MAX ? end - pos : INLINE_MAX;
    const char *newline = memchr(buf + pos, '\n', (size_t)limit);
    if (newline == NULL)
        return -1;
    Py_ssize_t stop = newline - buf;
    if (stop > pos && buf[stop - 1] == '\r')
        stop--;
    int n = 0;
    for (Py_ssize_t p = pos; p < stop;) {
        if (buf[p] == ' ' || buf[p] == '\t') {
            p++;
            continue;
        }
        Py_ssize_t start = p;
        for (; p < stop && buf[p] != ' ' && buf[p] != '\t'; p++) {
            unsigned char c = (unsigned char)buf[p];
            if (c < 0x20 || c == 0x7f || c == '"' || c == '\'')
                return -1;
        }
        if (n == MAX_ARGS)
            return -1;
        args[n].p = buf + start;
        args[n].len = p - start;
        n++;
    }
    if (n == 0)
        return -1;
    *argc = n;
    return newline - buf + 1;
}

/* One "*N\r\n($len\r\ndata\r\n)*N" request (or an inline one); returns the position
 * after it, or -1. */
static Py_ssize_t parse_request(const char *buf, Py_ssize_t pos, Py_ssize_t end, Arg *args, int *argc) {
    long long n, len;
    if (pos >= end)
        return -1;
    if (buf[pos] != '*')
        return parse_inline(buf, pos, end, args, argc);
    pos++;
    if (read_header_number(buf, &pos, end, MAX_ARGS, &n) || n < 1)
        return -1;
    for (long long i = 0; i < n; i++) {
        if (pos >= end || buf[pos] != '$')
            return -1;
        pos++;
        if (read_header_number(buf, &pos, end, MAX_BULK - 1, &len))
            return -1;
        if (end - pos < len + 2 || buf[pos + len] != '\r' || buf[pos + len + 1] != '\n')
            return -1;
        args[i].p = buf + pos;
        args[i].len = (Py_ssize_t)len;
        pos += len + 2;
    }
    *argc = (int)n;
    return pos;
}

/* COMMAND_NAMES folded into one word each (module init): the words identify compares with. */
static uint64_t g_twin_words[N_COMMANDS];

/* A name of 3 to 6 bytes folded to lower case into one word (0: any other length). */
static inline uint64_t name_word(const char *p, Py_ssize_t n) {
    if (n < 3 || n > 6)
        return 0;
    uint64_t word = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        word |= (uint64_t)(unsigned char)(p[i] | 0x20) << (8 * i);
    return word;
}

/* The twin a request's name is (case-insensitively), or -1: the name folded into one word and
 * compared with each twin's (comparing it letter by letter with each name was ~0.12k
 * instructions a request, every command paying it).  The names are lower-case letters: c | 0x20
 * is one of them only for it or its capital, so no other name folds to one of theirs. */
static int identify(const Arg *name) {
    uint64_t word = name_word(name->p, name->len);
    if (word == 0)
        return -1; /* (every other command: nothing compared) */
    for (int i = 0; i < N_COMMANDS; i++)
        if (word == g_twin_words[i])
            return i;
    return -1;
}

/* ------------------------------------------------------------------ execution */

typedef struct {
    PyObject *data, *expires; /* the db's KeyTable and expiry dict, for the batch */
    int resp3;
    long long now_ms;
    uint32_t clock; /* the LRU field for now_ms */
    long long hits, misses, dirty;
    /* A clock reading (wall_ns) that still serves as the next call's start, 0: none.  Set where only
     * this loop's own C ran since it was read (the batch's start, a call's end, a twin or native
     * handler that declined): a read's one call then reads the clock twice, its start (which is the
     * batch's time too: last_interaction) and its end, and a pipeline once a call and once more. */
    long long fresh_ns;
    Out out;
} Batch;

enum { DONE = 1, STOP = 0, FAIL = -1 };

static long long wall_ns(void);

/* The start of a call: the fresh reading if there is one (then used up), else the clock's. */
static inline long long call_start(Batch *b) {
    long long t = b->fresh_ns;
    b->fresh_ns = 0;
    return t != 0 ? t : wall_ns();
}

static int set_clock(Batch *b) {
    b->clock = native_lru_clock(b->now_ms);
    return 0;
}

/* 1 if `key` has a TTL that has passed, 0 if not (or no TTL), -1 on error. */
static int is_expired(Batch *b, PyObject *key) {
    if (PyDict_GET_SIZE(b->expires) == 0)
        return 0;
    PyObject *when = PyDict_GetItemWithError(b->expires, key);
    if (when == NULL)
        return PyErr_Occurred() ? -1 : 0;
    long long w = PyLong_AsLongLong(when);
    if (w == -1 && PyErr_Occurred())
        return -1;
    return b->now_ms > w;
}

/* 1 if `key` has a TTL at all. */
static int has_ttl(Batch *b, PyObject *key) {
    if (PyDict_GET_SIZE(b->expires) == 0)
        return 0;
    return PyDict_Contains(b->expires, key);
}

/* Store a string at a key that holds a string or nothing (no TTL involved): the
 * write lookup's touch, then setKey / dbAdd (a new key's field is the clock too). */
static int store(Batch *b, PyObject *key, PyObject *value) {
    KtEntry *e;
    int r = native_kt->store(b->data, key, value, b->clock, &e);
    if (r < 0)
        return -1;
    if (r == 0)
        e->field = b->clock;
    return 0; /* (a new key needs no bookkeeping here: SCAN walks the table itself) */
}

static int cmd_get(Batch *b, Arg *args) {
    PyObject *key = NULL;
    int result = FAIL;
    KtEntry *e;
    if (PyDict_GET_SIZE(b->expires) == 0) { /* no TTL to look up: the key needs no object */
        e = native_kt->find_chars(b->data, args[1].p, args[1].len);
    } else {
        key = PyBytes_FromStringAndSize(args[1].p, args[1].len);
        if (key == NULL)
            return FAIL;
        int expired = is_expired(b, key);
        if (expired != 0) {
            result = expired < 0 ? FAIL : STOP;
            goto done;
        }
        e = native_kt->find(b->data, key);
    }
    if (e == NULL) {
        b->misses++;
        result = out_null(&b->out, b->resp3) < 0 ? FAIL : DONE;
        goto done;
    }
    PyObject *value = e->value;
    const char *s;
    Py_ssize_t n;
    if (PyBytes_CheckExact(value)) {
        s = PyBytes_AS_STRING(value);
        n = PyBytes_GET_SIZE(value);
    } else if (PyByteArray_CheckExact(value)) {
        s = PyByteArray_AS_STRING(value);
        n = PyByteArray_GET_SIZE(value);
    } else {
        result = STOP; /* WRONGTYPE: Python's reply */
        goto done;
    }
    if (out_bulk(&b->out, s, n) < 0)
        goto done;
    e->field = b->clock;
    b->hits++;
    result = DONE;
done:
    Py_XDECREF(key);
    return result;
}

/* The value at `key` if it is a string or absent (NULL, no error); STOP otherwise. */
static int string_or_absent(Batch *b, PyObject *key, PyObject **value) {
    KtEntry *e = native_kt->find(b->data, key);
    *value = e != NULL ? e->value : NULL;
    if (*value == NULL)
        return DONE;
    return PyBytes_CheckExact(*value) || PyByteArray_CheckExact(*value) ? DONE : STOP;
}

static int cmd_set(Batch *b, Arg *args, int argc) {
    if (argc != 3)
        return STOP; /* options: Python */
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len);
    if (key == NULL)
        return FAIL;
    PyObject *value = NULL, *old = NULL;
    int result = has_ttl(b, key);
    if (result != 0) { /* the TTL must go (and may have passed): Python */
        result = result < 0 ? FAIL : STOP;
        goto done;
    }
    result = FAIL;
    value = PyBytes_FromStringAndSize(args[2].p, args[2].len);
    if (value == NULL)
        goto done;
    /* (made before the lookup: nothing runs between finding the entry and writing it) */
    KtEntry *e = native_kt->find(b->data, key);
    if (e != NULL && e->value != NULL) { /* overwritten where found: no second search by store */
        if (!PyBytes_CheckExact(e->value) && !PyByteArray_CheckExact(e->value)) {
            result = STOP; /* WRONGTYPE or a conversion: Python */
            goto done;
        }
        old = e->value;
        e->value = value;
        value = NULL;
        e->field = b->clock; /* (store's touch of an existing key) */
    } else if (store(b, key, value) < 0) {
        goto done;
    }
    if (out_put(&b->out, "+OK\r\n", 5) < 0)
        goto done;
    b->dirty++;
    result = DONE;
done:
    Py_DECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(old); /* (last: a string's deallocation runs no code, but the entry is settled) */
    return result;
}

static int cmd_incr(Batch *b, Arg *args, long long delta) {
    PyObject *key = PyBytes_FromStringAndSize(args[1].p, args[1].len);
    if (key == NULL)
        return FAIL;
    PyObject *text = NULL, *old;
    int result = is_expired(b, key); /* a live TTL stays (INCR keeps it) */
    if (result != 0) {
        result = result < 0 ? FAIL : STOP;
        goto done;
    }
    result = string_or_absent(b, key, &old);
    if (result != DONE)
        goto done;
    long long current = 0;
    result = STOP; /* not an integer, a bytearray, an overflow: Python replies */
    if (old != NULL && (!PyBytes_CheckExact(old) ||
                        !native_string2ll(PyBytes_AS_STRING(old), PyBytes_GET_SIZE(old), &current)))
        goto done;
    if ((delta > 0 && current > LLONG_MAX - delta) || (delta < 0 && current < LLONG_MIN - delta))
        goto done;
    long long value = current + delta;
    char digits[24];
    int n = native_ll_text(digits, value);
    result = FAIL;
    text = PyBytes_FromStringAndSize(digits, n);
    if (text == NULL || store(b, key, text) < 0 || out_number(&b->out, ':', value) < 0)
        goto done;
    b->dirty++;
    result = DONE;
done:
    Py_DECREF(key);
    Py_XDECREF(text);
    return result;
}

static int cmd_mset(Batch *b, Arg *args, int argc) {
    if (argc % 2 == 0)
        return STOP; /* wrong number of arguments: Python */
    int pairs = (argc - 1) / 2, made = 0, result = FAIL;
    PyObject *objects[MAX_ARGS];
    for (; made < argc - 1; made++) {
        objects[made] = PyBytes_FromStringAndSize(args[made + 1].p, args[made + 1].len);
        if (objects[made] == NULL)
            goto done;
    }
    /* Every key must qualify before the first one is written. */
    for (int i = 0; i < pairs; i++) {
        PyObject *old;
        result = has_ttl(b, objects[2 * i]);
        if (result != 0) {
            result = result < 0 ? FAIL : STOP;
            goto done;
        }
        result = string_or_absent(b, objects[2 * i], &old);
        if (result != DONE)
            goto done;
    }
    result = FAIL;
    for (int i = 0; i < pairs; i++) {
        if (store(b, objects[2 * i], objects[2 * i + 1]) < 0)
            goto done;
        b->dirty++;
    }
    if (out_put(&b->out, "+OK\r\n", 5) < 0)
        goto done;
    result = DONE;
done:
    for (int i = 0; i < made; i++)
        Py_DECREF(objects[i]);
    return result;
}

static int cmd_mget(Batch *b, Arg *args, int argc) {
    int keys = argc - 1, made = 0, result = FAIL;
    PyObject *objects[MAX_ARGS];
    int by_chars = PyDict_GET_SIZE(b->expires) == 0; /* no TTL to look up: the keys need no objects */
    for (; made < keys && !by_chars; made++) {
        objects[made] = PyBytes_FromStringAndSize(args[made + 1].p, args[made + 1].len);
        if (objects[made] == NULL)
            goto done;
    }
    for (int i = 0; i < made; i++) { /* an expiry to carry out first: Python */
        result = is_expired(b, objects[i]);
        if (result != 0) {
            result = result < 0 ? FAIL : STOP;
            goto done;
        }
    }
    result = FAIL;
    if (out_number(&b->out, '*', keys) < 0)
        goto done;
    for (int i = 0; i < keys; i++) {
        KtEntry *e = by_chars ? native_kt->find_chars(b->data, args[i + 1].p, args[i + 1].len)
                              : native_kt->find(b->data, objects[i]);
        int rc;
        if (e == NULL) {
            b->misses++;
            rc = out_null(&b->out, b->resp3);
        } else {
            b->hits++;
            PyObject *value = e->value;
            if (PyBytes_CheckExact(value))
                rc = out_bulk(&b->out, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
            else if (PyByteArray_CheckExact(value))
                rc = out_bulk(&b->out, PyByteArray_AS_STRING(value), PyByteArray_GET_SIZE(value));
            else
                rc = out_null(&b->out, b->resp3); /* another type: a nil, still a hit */
            e->field = b->clock; /* (no code ran since the find: the entry is still there) */
        }
        if (rc < 0)
            goto done;
    }
    result = DONE;
done:
    for (int i = 0; i < made; i++)
        Py_DECREF(objects[i]);
    return result;
}

static int execute(Batch *b, int command, Arg *args, int argc) {
    switch (command) {
    case C_GET:
        return argc == 2 ? cmd_get(b, args) : STOP;
    case C_SET:
        return cmd_set(b, args, argc);
    case C_INCR:
        return argc == 2 ? cmd_incr(b, args, 1) : STOP;
    case C_DECR:
        return argc == 2 ? cmd_incr(b, args, -1) : STOP;
    case C_INCRBY:
    case C_DECRBY: {
        long long delta;
        if (argc != 3 || !native_string2ll(args[2].p, args[2].len, &delta))
            return STOP;
        if (command == C_DECRBY) {
            if (delta == LLONG_MIN)
                return STOP;
            delta = -delta;
        }
        return cmd_incr(b, args, delta);
    }
    case C_MSET:
        return argc >= 3 ? cmd_mset(b, args, argc) : STOP;
    case C_MGET:
        return argc >= 2 ? cmd_mget(b, args, argc) : STOP;
    case C_PING:
        return argc == 1 ? (out_put(&b->out, "+PONG\r\n", 7) < 0 ? FAIL : DONE) : STOP;
    }
    return STOP;
}

/* ------------------------------------------------------------------ eligibility */

static PyObject *s_latency, *s_latency_tracking; /* (a Command's histogram, the server's setting) */

/* getattr(obj, name) (a new reference) by PyObject_GenericGetAttr's own steps for an attribute
 * an instance keeps in its __dict__: a data descriptor of the class wins, else the dict's entry,
 * else the whole lookup.  The plain-state check reads ~30 attributes of the Client, the Server
 * and the Keyspace every batch (each keeps them in a dict: more than CPython 3.11's 30 shared
 * keys), and PyObject_GetAttr's own path cost ~280 instructions a read (the loop's largest share
 * at pipeline 16, and most of an unpipelined request's).  Private 3.11 API; other versions take
 * PyObject_GetAttr. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* The names the plain-state check reads (instance_attr's callers), and the types known to hold
 * no data descriptor (property, slot) under any of them: checked once per type version
 * (tp_version_tag; a class attribute set anew changes it), so a read of an instance of such a
 * type skips the class lookup and takes its __dict__'s entry at once. */
static PyObject **const PLAIN_NAMES[] = {
    &s_authenticated, &s_blocked, &s_call_hooks, &s_channels, &s_close_after, &s_closed, &s_cluster,
    &s_command_gate, &s_in_exec, &s_key_gate, &s_lfu, &s_loading, &s_logged_in,
    &s_maxmemory, &s_monitors, &s_multi, &s_no_touch, &s_notify_flags, &s_patterns, &s_pause_gate,
    &s_reply_mode, &s_resp3, &s_shard_channels, &s_skip_this, &s_strict, &s_tracking, &s_tracking_caching,
    &s_twins_ok, &s_watched,
    /* the read path's (ClientBase.data_received) */
    &s_server, &s_keyspace, &s_out, &s_carry, &s_held, &s_retained, &s_query_buffer, &s_transport,
    &s_obuf_soft, &s_reply_buffer_size, &s_output_check_from, &s_output_check_from_normal, &s_pubsub_clients,
    /* what a batch counts and sets (add_to_attr, set_attr; the server's read and command counters,
     * the client's last_interaction, reply_buffer_peak and _batch_ran, each command's calls and
     * usec and the keyspace's hits, misses and dirty are C members: ServerBase, ClientBase,
     * CommandBase, KeyspaceBase) */
    /* a Command's, read from its memo (command_memo) */
    &s_arity, &s_handler, &s_latency,
    &s_name, &s_now, &s_last_cmd, &s_slowlog_threshold,
};
#define PLAIN_TYPES 8
static struct {
    PyTypeObject *type; /* (borrowed: compared, never used; a freed type's version cannot recur) */
    unsigned int version;
} g_plain_types[PLAIN_TYPES];
static int g_plain_next;

static int plain_type(PyTypeObject *type) {
    unsigned int version = type->tp_version_tag;
    if (version != 0 && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        for (int i = 0; i < PLAIN_TYPES; i++)
            if (g_plain_types[i].type == type && g_plain_types[i].version == version)
                return 1;
    }
    if (type->tp_getattro != PyObject_GenericGetAttr || type->tp_setattro != PyObject_GenericSetAttr)
        return 0;
    for (size_t i = 0; i < sizeof PLAIN_NAMES / sizeof PLAIN_NAMES[0]; i++) {
        PyObject *descr = _PyType_Lookup(type, *PLAIN_NAMES[i]);
        if (descr != NULL && Py_TYPE(descr)->tp_descr_set != NULL)
            return 0;
    }
    version = type->tp_version_tag; /* (the lookups assign one if it had none) */
    if (version == 0 || !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return 0;
    g_plain_types[g_plain_next].type = type;
    g_plain_types[g_plain_next].version = version;
    g_plain_next = (g_plain_next + 1) % PLAIN_TYPES;
    return 1;
}
#endif

/* obj's instance dict (borrowed) when the PLAIN_NAMES may be read from it and written to it
 * directly (no data descriptor of its type under those names, no __setattr__ of its own), else
 * NULL (no exception). */
static PyObject *plain_dict(PyObject *obj) {
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    if (plain_type(Py_TYPE(obj))) {
        PyObject **dict = _PyObject_GetDictPtr(obj);
        if (dict != NULL && *dict != NULL && PyDict_CheckExact(*dict))
            return *dict;
    }
#endif
    return NULL;
}

/* dict[name] (borrowed); NULL when absent (no exception) or on error.  A read costs ~60 lookups in
 * plain_dicts of ~30-100 attributes, and PyDict_GetItemWithError's ~130 instructions each were
 * most of its C work; this is the same probe of the dict's index table written for the cases
 * that occur (CPython 3.11's layout, Include/internal/pycore_dict.h, read only: a combined table
 * of str keys or a split one, the name interned with its hash cached), matching by identity (the
 * dict's own first test).  Anything else, and a probe that ends without the very object (an
 * equal str that is another object), is PyDict_GetItemWithError. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
typedef struct {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size, dk_log2_index_bytes, dk_kind;
    uint32_t dk_version;
    Py_ssize_t dk_usable, dk_nentries;
    char dk_indices[];
} DictKeys311;
typedef struct {
    PyObject *me_key, *me_value;
} DictEntry311;
#define DICT_KEYS_UNICODE_311 1
#define DICT_KEYS_SPLIT_311 2

static inline Py_ssize_t index_311(const DictKeys311 *dk, size_t i) {
    int log2 = dk->dk_log2_size;
    if (log2 < 8)
        return ((const int8_t *)dk->dk_indices)[i];
    if (log2 < 16)
        return ((const int16_t *)dk->dk_indices)[i];
    if (log2 < 32)
        return ((const int32_t *)dk->dk_indices)[i];
    return (Py_ssize_t)((const int64_t *)dk->dk_indices)[i];
}

/* Where a name's entry was found last, by its hash: an instance dict's entries lie in the order its
 * attributes were first set, the same for every Client (or Server) one __init__ made, so the probe
 * is mostly skipped.  A remembered position is used only if that entry holds that very name. */
#define ENTRY_HINTS 1024
static Py_ssize_t g_entry_hint[ENTRY_HINTS];
#endif

static PyObject *entry(PyObject *dict, PyObject *name) {
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    PyDictObject *mp = (PyDictObject *)dict;
    const DictKeys311 *dk = (const DictKeys311 *)mp->ma_keys;
    Py_hash_t hash = PyUnicode_CheckExact(name) ? ((PyASCIIObject *)name)->hash : -1;
    /* A combined table holds its values in its entries; a split one (the instance dict of a class
     * with under 30 attributes: the Keyspace, a Command) shares the entries' keys with its class
     * and holds the values in ma_values, by the same index. */
    PyObject **values = (PyObject **)mp->ma_values;
    int kind = dk->dk_kind;
    if ((values == NULL ? kind == DICT_KEYS_UNICODE_311 : kind == DICT_KEYS_SPLIT_311) && hash != -1) {
        const DictEntry311 *entries = (const DictEntry311 *)(dk->dk_indices + ((size_t)1 << dk->dk_log2_index_bytes));
#define VALUE_AT(ix) (values == NULL ? entries[ix].me_value : values[ix])
        Py_ssize_t *hint = &g_entry_hint[(size_t)hash & (ENTRY_HINTS - 1)];
        if (*hint < dk->dk_nentries && entries[*hint].me_key == name && VALUE_AT(*hint) != NULL)
            return VALUE_AT(*hint);
        size_t mask = ((size_t)1 << dk->dk_log2_size) - 1, perturb = (size_t)hash, i = (size_t)hash & mask;
        for (size_t probes = 0; probes <= mask; probes++) {
            Py_ssize_t ix = index_311(dk, i);
            if (ix >= 0 && ix < dk->dk_nentries && entries[ix].me_key == name && VALUE_AT(ix) != NULL) {
                *hint = ix;
                return VALUE_AT(ix);
            }
            if (ix == -1) /* DKIX_EMPTY: the probe ends */
                break;
            perturb >>= 5; /* PERTURB_SHIFT */
            i = (i * 5 + perturb + 1) & mask;
        }
#undef VALUE_AT
    }
#endif
    return PyDict_GetItemWithError(dict, name);
}

/* dict[name] += amount, as Python's `+=` on the int there. */
static int entry_add(PyObject *dict, PyObject *name, long long amount) {
    PyObject *v = entry(dict, name);
    if (v == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_AttributeError, name);
        return -1;
    }
    PyObject *sum = NULL;
    int overflow;
    long long now = PyLong_CheckExact(v) ? PyLong_AsLongLongAndOverflow(v, &overflow) : 0;
    if (PyLong_CheckExact(v) && !overflow && now >= 0 && now <= LLONG_MAX - amount) {
        sum = PyLong_FromLongLong(now + amount);
    } else {
        PyObject *n = PyLong_FromLongLong(amount);
        sum = n == NULL ? NULL : PyNumber_Add(v, n);
        Py_XDECREF(n);
    }
    if (sum == NULL)
        return -1;
    int r = PyDict_SetItem(dict, name, sum);
    Py_DECREF(sum);
    return r;
}

/* One of PLAIN_NAMES of obj: its entry in `dict` (obj's plain_dict) when it has one, else (NULL,
 * or a class attribute's default, a descriptor) the whole lookup; a new reference. */
static PyObject *attr_in(PyObject *dict, PyObject *obj, PyObject *name) {
    if (dict != NULL) {
        PyObject *v = entry(dict, name);
        if (v != NULL)
            return Py_NewRef(v);
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_GetAttr(obj, name);
}

static PyObject *instance_attr(PyObject *obj, PyObject *name) { return attr_in(plain_dict(obj), obj, name); }

static int attr_true_in(PyObject *dict, PyObject *obj, PyObject *name) {
    PyObject *v = attr_in(dict, obj, name);
    if (v == NULL)
        return -1;
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

static int attr_is_none_in(PyObject *dict, PyObject *obj, PyObject *name) {
    PyObject *v = attr_in(dict, obj, name);
    if (v == NULL)
        return -1;
    int r = v == Py_None;
    Py_DECREF(v);
    return r;
}

static int attr_true(PyObject *obj, PyObject *name) { return attr_true_in(plain_dict(obj), obj, name); }

/* obj.name = value: straight into obj's plain_dict when the attribute is there, else setattr. */
static int set_attr(PyObject *obj, PyObject *name, PyObject *value) {
    PyObject *dict = plain_dict(obj);
    if (dict != NULL) {
        PyObject *was = entry(dict, name);
        if (was == value) /* (the server's current client, a client's last command: mostly unchanged) */
            return 0;
        if (was != NULL)
            return PyDict_SetItem(dict, name, value);
        if (PyErr_Occurred())
            return -1;
    }
    return PyObject_SetAttr(obj, name, value);
}

enum { ACL_TWINS_OK = 1, ACL_RESTRICTED = 2 }; /* eligible()'s *restricted, besides 0 */

/* ------------------------------------------------------------------ the plain state, remembered */

/* A read in the plain state used to read ~40 attributes of the client, the server and the
 * keyspace from their __dict__s (~2.6k instructions a read).  Their values are now remembered,
 * per object, under the version tag of the __dict__ they came from (CPython 3.11's
 * ma_version_tag: every change of a dict gives it a new tag, unique across all dicts), as the
 * Lua bridge remembers the values it reads: while a client's or the server's __dict__ keeps the
 * tag, every attribute holds the same object, so what follows from them (the plain state's
 * verdict, RESP3, the ACL case, hooks, gate, slowlog threshold...) is read from the memo, and only
 * what can change in place is looked at again: the sizes of the containers (a RESP2 client's
 * subscriptions, the MONITOR list, the query buffers).  A value whose truth could change in place
 * (any type other than None, bool, int, float, str, bytes and those containers) leaves the memo
 * "unknown", and eligible() reads everything as before.  So no assignment anywhere can leave the
 * memo out of step: it changes the tag.  For the tags to stay, a plain read writes nothing to
 * those dicts: the per-read counters are C members (ServerBase's stat_*, ClientBase's
 * last_interaction, reply_buffer_peak and _batch_ran; ServerBase's current_client), and the
 * attribute the loop writes there (the client's last_cmd, outside the memo's names; and the
 * server's current_client when the server is not a ServerBase) keeps the memo's tag when it held
 * just before the write (set_attr_kept).  The keyspace's five
 * settings are read each time: its __dict__ changes with every hit, miss and dirty count. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define MEMO_VERSIONS 1
static inline uint64_t dict_version(PyObject *dict) { return ((PyDictObject *)dict)->ma_version_tag; }
#else
#define MEMO_VERSIONS 0
static inline uint64_t dict_version(PyObject *dict) { (void)dict; return 0; }
#endif


#define MEMO_MAX 28
typedef struct {
    PyObject *dict;   /* the __dict__ the values came from (borrowed; NULL: nothing remembered) */
    uint64_t version; /* its tag then */
    /* Where that dict was found, so that a memo that holds is known without plain_dict's search
     * (memo_holds): the object (borrowed, compared only), the place of its __dict__ pointer
     * (_PyObject_GetDictPtr's: fixed for the object's life), and its type with the version tag
     * plain_type accepted (a class change gives the type a new tag, unique like the dicts'). */
    PyObject *owner;
    PyObject **slot;
    PyTypeObject *type;
    unsigned int type_version;
    int known;        /* the verdicts below hold (every truth tested is of a type that cannot change in place) */
    int plain;        /* the object's part of the plain state holds (containers aside) */
    int resp3, restricted, gated, hooked, tracking; /* (eligible's outputs, latency-tracking) */
    long long threshold, check_from, check_from_normal, buffer_size, arity;
    PyObject *value[MEMO_MAX]; /* borrowed: the dict holds them while it keeps the tag */
} Memo;

/* The client's values (ClientBase's memo): what data_received, eligible and write_replies read. */
enum { CM_SERVER, CM_KEYSPACE, CM_STRICT, CM_QUERY_BUFFER, CM_CARRY, CM_HELD, CM_RETAINED, CM_OUT, CM_TRANSPORT,
       CM_CLOSED, CM_OBUF_SOFT, CM_REPLY_BUFFER_SIZE, CM_CLOSE_AFTER, CM_REPLY_MODE, CM_SKIP_THIS, CM_MULTI,
       CM_LOGGED_IN, CM_UNRESTRICTED, CM_TWINS_OK, CM_BLOCKED, CM_NO_TOUCH, CM_TRACKING_CACHING, CM_RESP3,
       CM_CHANNELS, CM_PATTERNS, CM_SHARD_CHANNELS, CM_DB, CM_N };
static PyObject **const CLIENT_MEMO_NAMES[CM_N] = {
    &s_server, &s_keyspace, &s_strict, &s_query_buffer, &s_carry, &s_held, &s_retained, &s_out, &s_transport,
    &s_closed, &s_obuf_soft, &s_reply_buffer_size, &s_close_after, &s_reply_mode, &s_skip_this, &s_multi,
    &s_logged_in, &s_authenticated, &s_twins_ok, &s_blocked, &s_no_touch, &s_tracking_caching, &s_resp3,
    &s_channels, &s_patterns, &s_shard_channels, &s_db,
};
/* The server's: eligible's and run_reads' settings. */
enum { SM_CLUSTER, SM_KEY_GATE, SM_PAUSE_GATE, SM_COMMAND_GATE, SM_CALL_HOOKS, SM_MAXMEMORY, SM_MONITORS, SM_IN_EXEC,
       SM_THRESHOLD, SM_LATENCY_TRACKING, SM_CHECK_FROM, SM_CHECK_FROM_NORMAL, SM_PUBSUB_CLIENTS, SM_N };
static PyObject **const SERVER_MEMO_NAMES[SM_N] = {
    &s_cluster, &s_key_gate, &s_pause_gate, &s_command_gate, &s_call_hooks, &s_maxmemory, &s_monitors, &s_in_exec,
    &s_slowlog_threshold, &s_latency_tracking, &s_output_check_from, &s_output_check_from_normal, &s_pubsub_clients,
};
_Static_assert(CM_N <= MEMO_MAX && SM_N <= MEMO_MAX, "a Memo holds the values");

typedef struct {
    PyObject_HEAD
    double last_interaction;    /* Client.last_interaction (time.time() of its last command batch) */
    long long reply_buffer_peak; /* Client.reply_buffer_peak */
    Py_ssize_t batch_ran;       /* Client._batch_ran */
    Memo memo;
    /* Client.last_cmd as the loop last left it: that object (borrowed, compared only) while the
     * client's __dict__ keeps the tag it had then (no write since: it is still there).  A read
     * then writes nothing and probes nothing of the client's __dict__, whose keys table is a cold
     * cache line or two with 50 clients taking turns. */
    PyObject *last_cmd_left;
    uint64_t last_cmd_version;
    /* The connection's socket and the transport it belongs to (borrowed, compared only; NULL:
     * none), set by write_directly while the connection is open: a read's replies, with nothing
     * queued in the transport, go to the socket with one write(2) here instead of a bytes object
     * and the transport's write (~0.9k instructions a read under uvloop); what the socket does not
     * take is the transport's. */
    PyObject *write_transport;
    int write_fd;
    /* The transport tells the protocol when it holds bytes (write_directly's `signals`: asyncio's
     * and uvloop's, whose pause_writing comes at the first byte the socket did not take once
     * set_write_buffer_limits(0) ran and resume_writing when all left): `write_held`, which
     * Client.pause_writing sets and resume_writing clears, then says whether a direct send must
     * ask the transport's backlog first (a send past queued bytes would overtake them). */
    int write_signals;
    char write_held;
} ClientBaseObject;

typedef struct {
    PyObject_HEAD
    long long stat_commands, stat_net_input, stat_net_output, stat_reads, stat_writes;
    /* Server.current_client (NULL reads as None): the loop sets it on every read, and with 50
     * clients taking turns a write to the server's __dict__ (a store, the old client's release and
     * the memo's tag taken again) was most of what a read's accounting cost */
    PyObject *current_client;
} ServerBaseObject;

typedef struct {
    PyObject_HEAD
    long long calls, usec;
} CommandBaseObject;

typedef struct {
    PyObject_HEAD
    long long stat_hits, stat_misses, dirty;
} KeyspaceBaseObject;

static PyTypeObject ClientBaseType, ServerBaseType, CommandBaseType, KeyspaceBaseType;
static Memo g_server_memo; /* (one server's at a time: tests run several in one process) */
static PyTypeObject *g_client_type; /* server.Client (owned; NULL: configure_reads not called) */
static PyTypeObject *g_server_type; /* the last type found to be a ServerBase (owned) */

/* Instances of ClientBase / ServerBase (server.Client and dispatch.Server at once, without
 * PyType_IsSubtype's walk of the MRO). */
static inline int is_client_base(PyObject *o) {
    return Py_TYPE(o) == g_client_type || PyObject_TypeCheck(o, &ClientBaseType);
}
/* o's type is base or a subtype of it, *last caching the last such type found (owned). */
static inline int is_of_base(PyObject *o, PyTypeObject *base, PyTypeObject **last) {
    PyTypeObject *type = Py_TYPE(o);
    if (type == *last)
        return 1;
    if (!PyObject_TypeCheck(o, base))
        return 0;
    Py_INCREF(type);
    Py_XSETREF(*last, type);
    return 1;
}
static inline int is_server_base(PyObject *o) {
    return is_of_base(o, &ServerBaseType, &g_server_type);
}

static PyTypeObject *g_keyspace_type; /* the last type found to be a KeyspaceBase (owned) */
static inline int is_keyspace_base(PyObject *o) {
    return is_of_base(o, &KeyspaceBaseType, &g_keyspace_type);
}

/* The truth of a value that cannot change in place: 0 or 1; 2 for any other value. */
static inline int fixed_truth(PyObject *v) {
    if (v == Py_None || v == Py_False)
        return 0;
    if (v == Py_True)
        return 1;
    if (PyLong_CheckExact(v) || PyFloat_CheckExact(v) || PyUnicode_CheckExact(v) || PyBytes_CheckExact(v))
        return PyObject_IsTrue(v); /* (no Python code for these) */
    return 2;
}

/* A value tested for emptiness at every read: a container filled in place, or a fixed value. */
static inline int fillable(PyObject *v) {
    return PyDict_CheckExact(v) || PyList_CheckExact(v) || PyAnySet_CheckExact(v) || PyByteArray_CheckExact(v) ||
           fixed_truth(v) != 2;
}
static inline int filled(PyObject *v) {
    if (PyDict_CheckExact(v))
        return PyDict_GET_SIZE(v) != 0;
    if (PyList_CheckExact(v))
        return PyList_GET_SIZE(v) != 0;
    if (PyAnySet_CheckExact(v))
        return PySet_GET_SIZE(v) != 0;
    if (PyByteArray_CheckExact(v))
        return PyByteArray_GET_SIZE(v) != 0;
    return fixed_truth(v);
}

/* m's values read from dict (obj's plain_dict) under `names`: 1, 0 if one is not in the dict
 * itself (nothing remembered), -1 on error. */
static int memo_read(Memo *m, PyObject *dict, PyObject **const *names, int n) {
    m->dict = NULL;
    for (int i = 0; i < n; i++) {
        if (*names[i] == NULL)
            return 0;
        PyObject *v = entry(dict, *names[i]);
        if (v == NULL)
            return PyErr_Occurred() ? -1 : 0;
        m->value[i] = v;
    }
    return 1;
}

/* Opening m for obj: MEMO_HELD when obj's __dict__ has kept its tag since m was sealed (m's
 * verdicts stand); MEMO_READ when m's values were just read again from *dict (the caller works
 * the verdicts out, then memo_seal); MEMO_NONE when there is no memo to be had (an exception set
 * only on error). */
enum { MEMO_NONE, MEMO_HELD, MEMO_READ };

/* 1 when m, sealed for obj, holds: obj is the object it was sealed for, of the same type under
 * the same version tag (so still plain_type's), with the same __dict__ under the same tag.  A
 * dozen loads and compares: the read path opens each memo several times a read, and plain_dict's
 * search (the type cache, _PyObject_GetDictPtr) was most of what that cost.  The owner compare
 * comes first, so the slot is read only while obj (alive: the caller's) is the owner or another
 * object of its type at its address, whose __dict__ pointer lies at the same place. */
static inline int memo_holds(const Memo *m, PyObject *obj) {
#if MEMO_VERSIONS
    return m->dict != NULL && m->owner == obj && Py_TYPE(obj) == m->type &&
           m->type->tp_version_tag == m->type_version && (m->type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) &&
           *m->slot == m->dict && dict_version(m->dict) == m->version;
#else
    (void)m;
    (void)obj;
    return 0;
#endif
}

static int memo_open(Memo *m, PyObject *obj, PyObject **const *names, int n, PyObject **dict) {
    if (!MEMO_VERSIONS)
        return MEMO_NONE;
    if (memo_holds(m, obj)) {
        *dict = m->dict;
        return MEMO_HELD;
    }
    PyObject *d = *dict = plain_dict(obj);
    if (d == NULL)
        return MEMO_NONE;
    if (m->dict == d && m->version == dict_version(d) && m->owner == obj)
        return MEMO_HELD;
    return memo_read(m, d, names, n) > 0 ? MEMO_READ : MEMO_NONE;
}

/* m valid for dict (obj's plain_dict, just found) as it is now. */
static Memo *memo_seal(Memo *m, PyObject *obj, PyObject *dict) {
    m->dict = dict;
    m->version = dict_version(dict);
    m->owner = obj;
    m->slot = _PyObject_GetDictPtr(obj);
    m->type = Py_TYPE(obj);
    m->type_version = Py_TYPE(obj)->tp_version_tag;
    if (m->slot == NULL || *m->slot != dict) /* (cannot be: plain_dict found it there) */
        m->owner = NULL;
    return m;
}

/* The client's memo, valid for its __dict__ as it is now; NULL when there is none (with an
 * exception set only on error). */
static Memo *client_memo_open(PyObject *client) {
    if (!is_client_base(client))
        return NULL;
    Memo *m = &((ClientBaseObject *)client)->memo;
    PyObject *d;
    int state = memo_open(m, client, CLIENT_MEMO_NAMES, CM_N, &d);
    if (state != MEMO_READ)
        return state == MEMO_HELD ? m : NULL;
    PyObject **v = m->value;
    int t[CM_N], known = 1;
    for (int i = CM_CLOSED; i <= CM_RESP3; i++) /* (the truths tested: those of eligible and write_replies) */
        known &= (t[i] = fixed_truth(v[i])) != 2;
    known &= (t[CM_STRICT] = fixed_truth(v[CM_STRICT])) != 2;
    known &= fillable(v[CM_CARRY]) && fillable(v[CM_HELD]) && fillable(v[CM_RETAINED]);
    m->known = 0;
    if (known) { /* eligible()'s client part, in its order */
        m->plain = !t[CM_REPLY_MODE] && !t[CM_SKIP_THIS] && v[CM_MULTI] == Py_None && t[CM_LOGGED_IN] &&
                   v[CM_BLOCKED] == Py_None && !t[CM_CLOSED] && !t[CM_CLOSE_AFTER] && !t[CM_NO_TOUCH] &&
                   !t[CM_STRICT] && !t[CM_TRACKING_CACHING];
        m->restricted = t[CM_UNRESTRICTED] ? 0 : t[CM_TWINS_OK] ? ACL_TWINS_OK : ACL_RESTRICTED;
        m->resp3 = t[CM_RESP3];
        m->known = m->resp3 ||
                   (fillable(v[CM_CHANNELS]) && fillable(v[CM_PATTERNS]) && fillable(v[CM_SHARD_CHANNELS]));
    }
    return memo_seal(m, client, d);
}

/* (The common case first: a memo that holds, with no call.) */
static inline Memo *client_memo(PyObject *client) {
    if (Py_TYPE(client) == g_client_type && memo_holds(&((ClientBaseObject *)client)->memo, client))
        return &((ClientBaseObject *)client)->memo;
    return client_memo_open(client);
}

/* The server's memo (g_server_memo), likewise. */
static Memo *server_memo_open(PyObject *server) {
    Memo *m = &g_server_memo;
    PyObject *d;
    int state = memo_open(m, server, SERVER_MEMO_NAMES, SM_N, &d);
    if (state != MEMO_READ)
        return state == MEMO_HELD ? m : NULL;
    PyObject **v = m->value;
    int maxmemory = fixed_truth(v[SM_MAXMEMORY]), in_exec = fixed_truth(v[SM_IN_EXEC]);
    int tracking = fixed_truth(v[SM_LATENCY_TRACKING]), overflow = 0, overflow2 = 0;
    m->known = maxmemory != 2 && in_exec != 2 && tracking != 2 && fillable(v[SM_MONITORS]) &&
               PyLong_CheckExact(v[SM_THRESHOLD]) && PyLong_CheckExact(v[SM_CHECK_FROM]) &&
               PyLong_CheckExact(v[SM_CHECK_FROM_NORMAL]) && PyDict_CheckExact(v[SM_PUBSUB_CLIENTS]);
    if (m->known) {
        m->plain = v[SM_CLUSTER] == Py_None && v[SM_KEY_GATE] == Py_None && v[SM_PAUSE_GATE] == Py_None &&
                   !maxmemory && !in_exec;
        m->gated = v[SM_COMMAND_GATE] != Py_None;
        m->hooked = v[SM_CALL_HOOKS] != Py_None;
        m->tracking = tracking;
        m->threshold = PyLong_AsLongLongAndOverflow(v[SM_THRESHOLD], &overflow);
        m->check_from = PyLong_AsLongLongAndOverflow(v[SM_CHECK_FROM], &overflow2);
        m->known = !overflow && !overflow2;
        m->check_from_normal = PyLong_AsLongLongAndOverflow(v[SM_CHECK_FROM_NORMAL], &overflow);
        m->known = m->known && !overflow;
    }
    return memo_seal(m, server, d);
}
static inline Memo *server_memo(PyObject *server) {
    return memo_holds(&g_server_memo, server) ? &g_server_memo : server_memo_open(server);
}

/* obj.name = value (set_attr) for a name outside m's, keeping m valid if it was just before:
 * the loop's own writes to a remembered __dict__ (last_cmd; current_client of another server type). */
static int set_attr_kept(PyObject *obj, Memo *m, PyObject *name, PyObject *value) {
    if (m == NULL || !memo_holds(m, obj))
        return set_attr(obj, name, value);
    PyObject *d = m->dict, *was = entry(d, name);
    if (was == value)
        return 0;
    if (was == NULL && PyErr_Occurred())
        return -1;
    Py_XINCREF(was); /* (freed after the tag is taken: a finalizer could write the dict) */
    int r = was != NULL ? PyDict_SetItem(d, name, value) : set_attr(obj, name, value);
    if (r == 0 && m->dict == d)
        m->version = dict_version(d);
    Py_XDECREF(was);
    return r;
}

/* server.<counter> += amount: ServerBase's member, or (another server type) the attribute. */
static int add_to_attr(PyObject *obj, PyObject *name, long long amount);
static inline int add_server_stat(PyObject *server, size_t offset, PyObject *name, long long amount) {
    if (is_server_base(server)) {
        *(long long *)((char *)server + offset) += amount;
        return 0;
    }
    return add_to_attr(server, name, amount);
}
#define SERVER_STAT(field) offsetof(ServerBaseObject, field)

/* server.current_client = client: ServerBase's member, or (another server type) the attribute. */
static inline int set_current_client(PyObject *server, PyObject *client) {
    if (is_server_base(server)) {
        ServerBaseObject *s = (ServerBaseObject *)server;
        if (s->current_client != client)
            Py_XSETREF(s->current_client, Py_NewRef(client));
        return 0;
    }
    return set_attr_kept(server, &g_server_memo, s_current_client, client);
}

/* keyspace.stat_hits/stat_misses/dirty += hits/misses/dirty: KeyspaceBase's members, or
 * (another keyspace type) the attributes. */
static int add_keyspace_stats(PyObject *keyspace, long long hits, long long misses, long long dirty) {
    if (is_keyspace_base(keyspace)) {
        KeyspaceBaseObject *k = (KeyspaceBaseObject *)keyspace;
        k->stat_hits += hits;
        k->stat_misses += misses;
        k->dirty += dirty;
        return 0;
    }
    return add_to_attr(keyspace, s_stat_hits, hits) < 0 || add_to_attr(keyspace, s_stat_misses, misses) < 0 ||
                   add_to_attr(keyspace, s_dirty, dirty) < 0
               ? -1
               : 0;
}

/* The keyspace's settings eligible() reads, remembered as the client's and the server's are:
 * its per-read counters are KeyspaceBase's members, so a plain read leaves its __dict__'s tag
 * as it was, but for `now` (the command time snapshot, outside these names: a new millisecond's
 * write keeps a memo that held, set_long_attr's).  `watched` is a dict WATCH fills in place:
 * looked at each read. */
enum { KM_WATCHED, KM_NOTIFY_FLAGS, KM_LFU, KM_LOADING, KM_TRACKING, KM_N };
static PyObject **const KEYSPACE_MEMO_NAMES[KM_N] = {&s_watched, &s_notify_flags, &s_lfu, &s_loading, &s_tracking};
_Static_assert(KM_N <= MEMO_MAX, "a Memo holds the values");
static Memo g_keyspace_memo; /* (one keyspace's at a time) */

static Memo *keyspace_memo_open(PyObject *keyspace) {
    Memo *m = &g_keyspace_memo;
    PyObject *d;
    int state = memo_open(m, keyspace, KEYSPACE_MEMO_NAMES, KM_N, &d);
    if (state != MEMO_READ)
        return state == MEMO_HELD ? m : NULL;
    PyObject **v = m->value;
    int notify = fixed_truth(v[KM_NOTIFY_FLAGS]), lfu = fixed_truth(v[KM_LFU]), loading = fixed_truth(v[KM_LOADING]);
    m->known = notify != 2 && lfu != 2 && loading != 2 && fillable(v[KM_WATCHED]);
    if (m->known) /* (eligible()'s keyspace part, in its order) */
        m->plain = !notify && !lfu && !loading && v[KM_TRACKING] == Py_None;
    return memo_seal(m, keyspace, d);
}
static inline Memo *keyspace_memo(PyObject *keyspace) {
    return memo_holds(&g_keyspace_memo, keyspace) ? &g_keyspace_memo : keyspace_memo_open(keyspace);
}

/* A Command's arity, handler, latency histogram (None until its first call is recorded) and name,
 * remembered as the client's and the server's values are: the loop read them with getattr once a
 * batch, each unpipelined request.  Tests wrap a command's handler and CONFIG RESETSTAT drops the
 * histograms, both assignments that change the tag.  A slot of the table serves one command at a
 * time (by its address; an old command's freed address matches only with its dict's tag, which
 * is unique). */
enum { CMD_ARITY, CMD_HANDLER, CMD_LATENCY, CMD_NAME, CMD_N };
static PyObject **const COMMAND_MEMO_NAMES[CMD_N] = {&s_arity, &s_handler, &s_latency, &s_name};
#define COMMAND_MEMOS 64
static struct {
    PyObject *cmd; /* (borrowed, compared only) */
    Memo memo;
} g_command_memos[COMMAND_MEMOS];

/* cmd's memo, valid for its __dict__ as it is now; NULL when there is none (an exception set
 * only on error). */
static Memo *command_memo_open(PyObject *cmd) {
    size_t slot = ((uintptr_t)cmd >> 4) & (COMMAND_MEMOS - 1);
    Memo *m = &g_command_memos[slot].memo;
    if (g_command_memos[slot].cmd != cmd)
        m->dict = NULL; /* (another command's: read this one's) */
    PyObject *d;
    int state = memo_open(m, cmd, COMMAND_MEMO_NAMES, CMD_N, &d);
    if (state != MEMO_READ)
        return state == MEMO_HELD ? m : NULL;
    g_command_memos[slot].cmd = NULL;
    int overflow = 0;
    if (!PyLong_CheckExact(m->value[CMD_ARITY]))
        return NULL;
    m->arity = PyLong_AsLongLongAndOverflow(m->value[CMD_ARITY], &overflow);
    if (overflow || m->arity < INT_MIN || m->arity > INT_MAX)
        return NULL;
    g_command_memos[slot].cmd = cmd;
    return memo_seal(m, cmd, d);
}
static inline Memo *command_memo(PyObject *cmd) {
    Memo *m = &g_command_memos[((uintptr_t)cmd >> 4) & (COMMAND_MEMOS - 1)].memo;
    return memo_holds(m, cmd) ? m : command_memo_open(cmd); /* (the owner compare: this command's) */
}

/* cmd.calls += calls; cmd.usec += usec: CommandBase's members, or (another type) the attributes. */
static int count_calls(PyObject *cmd, long long calls, long long usec) {
    if (PyObject_TypeCheck(cmd, &CommandBaseType)) {
        ((CommandBaseObject *)cmd)->calls += calls;
        ((CommandBaseObject *)cmd)->usec += usec;
        return 0;
    }
    return add_to_attr(cmd, s_calls, calls) < 0 || add_to_attr(cmd, s_usec, usec) < 0 ? -1 : 0;
}


/* 1 when the connection and the server are in the plain state the fast path assumes. */
static int eligible(PyObject *server, PyObject *keyspace, PyObject *client, int *resp3, int *hooked, int *gated,
                    int *restricted) {
    int r;
    Memo *cm = client_memo(client), *sm = cm != NULL && cm->known ? server_memo(server) : NULL;
    if (sm != NULL && sm->known) { /* what the memos say, the containers looked at again */
        PyObject **cv = cm->value;
        /* (a client's own subscriptions are looked at only while some client has one: while
         * server.pubsub_clients, one dict every read touches, is empty, none has) */
        if (!cm->plain || (!cm->resp3 && PyDict_GET_SIZE(sm->value[SM_PUBSUB_CLIENTS]) != 0 &&
                           (filled(cv[CM_CHANNELS]) || filled(cv[CM_PATTERNS]) || filled(cv[CM_SHARD_CHANNELS]))))
            return 0;
        if (!sm->plain || filled(sm->value[SM_MONITORS]))
            return 0;
        *resp3 = cm->resp3;
        *restricted = cm->restricted;
        *gated = sm->gated;
        *hooked = sm->hooked;
        Memo *km = keyspace_memo(keyspace);
        if (km != NULL && km->known)
            return km->plain && !filled(km->value[KM_WATCHED]);
        if (PyErr_Occurred())
            return -1;
        PyObject *kd = plain_dict(keyspace);
        if ((r = attr_true_in(kd, keyspace, s_watched)) != 0 || (r = attr_true_in(kd, keyspace, s_notify_flags)) != 0 ||
            (r = attr_true_in(kd, keyspace, s_lfu)) != 0 || (r = attr_true_in(kd, keyspace, s_loading)) != 0)
            return r < 0 ? -1 : 0;
        if ((r = attr_is_none_in(kd, keyspace, s_tracking)) != 1)
            return r < 0 ? -1 : 0;
        return 1;
    }
    if (PyErr_Occurred())
        return -1;
    /* (each object's dict found once: ~30 reads of them) */
    PyObject *cd = plain_dict(client), *sd = plain_dict(server), *kd = plain_dict(keyspace);
#define DICT_OF(obj) (obj == client ? cd : obj == server ? sd : kd)
#define REQUIRE_FALSE(obj, name) if ((r = attr_true_in(DICT_OF(obj), obj, name)) != 0) return r < 0 ? -1 : 0
#define REQUIRE_TRUE(obj, name) if ((r = attr_true_in(DICT_OF(obj), obj, name)) != 1) return r < 0 ? -1 : 0
#define REQUIRE_NONE(obj, name) if ((r = attr_is_none_in(DICT_OF(obj), obj, name)) != 1) return r < 0 ? -1 : 0
    REQUIRE_FALSE(client, s_reply_mode);
    REQUIRE_FALSE(client, s_skip_this);
    REQUIRE_NONE(client, s_multi);
    REQUIRE_TRUE(client, s_logged_in);
    /* a user short of some permission: the general path asks the ACL first unless acl_unasked()
     * says it need not, and so do the twins, unless the user may run them all on every key
     * (ACL_TWINS_OK) */
    if ((r = attr_true_in(cd, client, s_authenticated)) < 0) /* the "unrestricted" attribute */
        return -1;
    if (r)
        *restricted = 0;
    else if ((r = attr_true_in(cd, client, s_twins_ok)) < 0)
        return -1;
    else
        *restricted = r ? ACL_TWINS_OK : ACL_RESTRICTED;
    REQUIRE_NONE(client, s_blocked);
    REQUIRE_FALSE(client, s_closed);
    REQUIRE_FALSE(client, s_close_after);
    REQUIRE_FALSE(client, s_no_touch);
    REQUIRE_FALSE(client, s_strict);
    REQUIRE_FALSE(client, s_tracking_caching);
    if ((r = attr_true_in(cd, client, s_resp3)) < 0)
        return -1;
    *resp3 = r;
    if (!r) { /* RESP2 subscribers may only run (P|S)(UN)SUBSCRIBE / PING / QUIT / RESET */
        REQUIRE_FALSE(client, s_channels);
        REQUIRE_FALSE(client, s_patterns);
        REQUIRE_FALSE(client, s_shard_channels);
    }
    REQUIRE_NONE(server, s_cluster);
    REQUIRE_NONE(server, s_key_gate);
    REQUIRE_NONE(server, s_pause_gate); /* CLIENT PAUSE in force */
    /* persistence and replication gates (-LOADING, -MISCONF, -READONLY, -NOREPLICAS...): only the
     * general path runs then, asking the gate first as Server.execute does */
    if ((r = attr_is_none_in(sd, server, s_command_gate)) < 0)
        return -1;
    *gated = !r;
    /* the append-only file brackets every call (call_hooks): only the general path, which
     * calls them, runs then (the twins would write behind its back) */
    if ((r = attr_is_none_in(sd, server, s_call_hooks)) < 0)
        return -1;
    *hooked = !r;
    REQUIRE_FALSE(server, s_maxmemory);
    REQUIRE_FALSE(server, s_monitors);
    REQUIRE_FALSE(server, s_in_exec);
    REQUIRE_FALSE(keyspace, s_watched);
    REQUIRE_FALSE(keyspace, s_notify_flags);
    REQUIRE_FALSE(keyspace, s_lfu);
    REQUIRE_FALSE(keyspace, s_loading);
    REQUIRE_NONE(keyspace, s_tracking); /* client-side caching: reads remembered, writes invalidate */
#undef REQUIRE_FALSE
#undef REQUIRE_TRUE
#undef REQUIRE_NONE
#undef DICT_OF
    return 1;
}

/* ------------------------------------------------------------------ accounting */

static int add_to_attr(PyObject *obj, PyObject *name, long long amount) {
    if (amount == 0)
        return 0;
    PyObject *dict = plain_dict(obj); /* (one of PLAIN_NAMES: the dict's entry in place) */
    if (dict != NULL) {
        if (entry(dict, name) != NULL)
            return entry_add(dict, name, amount);
        if (PyErr_Occurred())
            return -1;
    }
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    PyObject *n = PyLong_FromLongLong(amount);
    if (n == NULL) {
        Py_DECREF(v);
        return -1;
    }
    PyObject *sum = PyNumber_Add(v, n);
    Py_DECREF(v);
    Py_DECREF(n);
    if (sum == NULL)
        return -1;
    int r = PyObject_SetAttr(obj, name, sum);
    Py_DECREF(sum);
    return r;
}

/* What set_long_attr last found or wrote: `name` held `value` in the dict whose version tag was
 * `version` (unique to that dict and that state of it), so while the tag holds nothing is read:
 * keyspace.now, set by every read, changes once a millisecond. */
static struct {
    uint64_t version;
    PyObject *name; /* (borrowed, compared only: an interned name) */
    long long value;
} g_long_attr_seen;

static int set_long_attr(PyObject *obj, Memo *m, PyObject *name, long long value) {
    PyObject *dict = m != NULL && memo_holds(m, obj) ? m->dict : plain_dict(obj);
    if (MEMO_VERSIONS && dict != NULL && g_long_attr_seen.version == dict_version(dict) &&
        g_long_attr_seen.name == name && g_long_attr_seen.value == value)
        return 0;
    PyObject *was = dict != NULL ? entry(dict, name) : NULL;
    if (was != NULL && PyLong_CheckExact(was)) { /* (keyspace.now: the same millisecond) */
        int overflow;
        long long now = PyLong_AsLongLongAndOverflow(was, &overflow);
        if (now == value && !overflow) {
            g_long_attr_seen.version = dict_version(dict);
            g_long_attr_seen.name = name;
            g_long_attr_seen.value = value;
            return 0;
        }
    }
    if (PyErr_Occurred())
        return -1;
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL)
        return -1;
    int r = m != NULL ? set_attr_kept(obj, m, name, v) : set_attr(obj, name, v);
    if (r == 0 && dict != NULL && plain_dict(obj) == dict && entry(dict, name) == v) {
        g_long_attr_seen.version = dict_version(dict);
        g_long_attr_seen.name = name;
        g_long_attr_seen.value = value;
    }
    Py_DECREF(v);
    return r;
}

static long long wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SLOWLOG: Server.slowlog_push(client, argv, elapsed_us). */
static int slowlog(PyObject *server, PyObject *client, Arg *args, int argc, long long elapsed_us) {
    PyObject *argv = native_argv(args, argc);
    if (argv == NULL)
        return -1;
    PyObject *us = PyLong_FromLongLong(elapsed_us);
    PyObject *r = us == NULL ? NULL : PyObject_CallMethodObjArgs(server, s_slowlog_push, client, argv, us, NULL);
    Py_DECREF(argv);
    Py_XDECREF(us);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}


/* ------------------------------------------------------------------ latency histograms */

/* Each command's call durations, as Redis's HdrHistogram keeps them (latency-tracking):
 * dumpling.latencyhist is the reference (the slot layout, percentiles and LATENCY
 * HISTOGRAM's walk); this is its store, so the loop below records a call without calling
 * Python.  A call of u us is recorded as u*1000 ns clamped to [1, 1e9] into slot
 * index_of(ns): exact below 256 ns, then 128 slots per power of two.  The counts array
 * grows to the highest slot recorded (most commands stay under ~1400 slots, 11 KB). */

#define HIST_HALF_MAGNITUDE 7
#define HIST_MASK 255
#define HIST_SLOTS 3072 /* latencyhist.COUNTS_LEN */

typedef struct {
    PyObject_HEAD
    long long *counts;
    int len;          /* slots allocated in counts */
    long long total;  /* calls recorded */
} Histogram;

static PyObject *s_record;

#define HIST_SMALL 1024 /* calls under this many us find their slot in a table */
static unsigned short hist_small_slot[HIST_SMALL];

static int hist_slot(long long usec) {
    long long ns = usec * 1000;
    if (ns < 1)
        ns = 1;
    if (ns > 1000000000LL)
        ns = 1000000000LL;
    int bucket = (64 - __builtin_clzll((unsigned long long)(ns | HIST_MASK))) - (HIST_HALF_MAGNITUDE + 1);
    return ((bucket + 1) << HIST_HALF_MAGNITUDE) + (int)(ns >> bucket) - (1 << HIST_HALF_MAGNITUDE);
}

static int hist_record(Histogram *h, long long usec) {
    int slot = hist_slot(usec);
    if (slot >= h->len) {
        int len = (slot / 128 + 1) * 128;
        long long *counts = PyMem_Realloc(h->counts, sizeof(long long) * (size_t)len);
        if (counts == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(counts + h->len, 0, sizeof(long long) * (size_t)(len - h->len));
        h->counts = counts;
        h->len = len;
    }
    h->counts[slot]++;
    h->total++;
    return 0;
}

static void hist_dealloc(Histogram *h) {
    PyMem_Free(h->counts);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *hist_py_record(Histogram *h, PyObject *arg) {
    long long usec = PyLong_AsLongLong(arg);
    if (usec == -1 && PyErr_Occurred())
        return NULL;
    if (hist_record(h, usec) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *hist_items(Histogram *h, PyObject *unused) {
    PyObject *items = PyList_New(0);
    for (int i = 0; items != NULL && i < h->len; i++) {
        if (h->counts[i] == 0)
            continue;
        PyObject *pair = Py_BuildValue("(iL)", i, h->counts[i]);
        if (pair == NULL || PyList_Append(items, pair) < 0)
            Py_CLEAR(items);
        Py_XDECREF(pair);
    }
    return items;
}

static PyObject *hist_total(Histogram *h, void *closure) {
    return PyLong_FromLongLong(h->total);
}

static PyMethodDef hist_methods[] = {
    {"record", (PyCFunction)hist_py_record, METH_O, "record(usec): one call of usec microseconds"},
    {"items", (PyCFunction)hist_items, METH_NOARGS, "items() -> sorted (slot, count) pairs, counts > 0"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef hist_getset[] = {
    {"total", (getter)hist_total, NULL, "calls recorded", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject HistogramType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dumpling._fastpath.Histogram",
    .tp_basicsize = sizeof(Histogram),
    .tp_dealloc = (destructor)hist_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A command's call durations (dumpling.latencyhist.Histogram in C)",
    .tp_methods = hist_methods,
    .tp_getset = hist_getset,
    .tp_new = PyType_GenericNew,
};

static int hist_ready(void) {
    for (int usec = 0; usec < HIST_SMALL; usec++)
        hist_small_slot[usec] = (unsigned short)hist_slot(usec);
    return PyType_Ready(&HistogramType);
}

/* The histogram of a Command (new reference), made on its first call as Redis makes it. */
static PyObject *hist_of(PyObject *cmd) {
    Memo *m = command_memo(cmd);
    PyObject *h = m != NULL ? Py_NewRef(m->value[CMD_LATENCY]) : PyErr_Occurred() ? NULL : PyObject_GetAttr(cmd, s_latency);
    if (h == NULL)
        return NULL;
    if (h == Py_None) {
        Py_DECREF(h);
        h = PyType_GenericNew(&HistogramType, NULL, NULL);
        if (h == NULL || PyObject_SetAttr(cmd, s_latency, h) < 0) {
            Py_XDECREF(h);
            return NULL;
        }
    }
    return h;
}

static int hist_add_slow(PyObject **slot, PyObject *cmd, long long usec) {
    if (*slot == NULL && (*slot = hist_of(cmd)) == NULL)
        return -1;
    if (Py_IS_TYPE(*slot, &HistogramType)) {
        Histogram *h = (Histogram *)*slot;
        int index = usec >= 0 && usec < HIST_SMALL ? hist_small_slot[usec] : INT_MAX;
        if (index < h->len) { /* (a read's first call: hist_add's table, the histogram just fetched) */
            h->counts[index]++;
            h->total++;
            return 0;
        }
        return hist_record(h, usec);
    }
    PyObject *us = PyLong_FromLongLong(usec);
    PyObject *r = us == NULL ? NULL : PyObject_CallMethodObjArgs(*slot, s_record, us, NULL);
    Py_XDECREF(us);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* Records one call into `*slot` (the batch's reference to cmd's histogram, fetched on the
 * first call): the common case, a short call into a slot already allocated, is a table
 * lookup and two increments. */
static inline Py_ALWAYS_INLINE int hist_add(PyObject **slot, PyObject *cmd, long long usec) {
    Histogram *h = (Histogram *)*slot;
    if (h != NULL && usec >= 0 && usec < HIST_SMALL && Py_IS_TYPE(h, &HistogramType)) {
        int index = hist_small_slot[usec];
        if (index < h->len) {
            h->counts[index]++;
            h->total++;
            return 0;
        }
    }
    return hist_add_slow(slot, cmd, usec);
}

/* histogram() -> a new empty Histogram (Python's side makes them with this too). */
static PyObject *fast_histogram(PyObject *self, PyObject *unused) {
    if (hist_ready() < 0)
        return NULL;
    return PyType_GenericNew(&HistogramType, NULL, NULL);
}

/* ------------------------------------------------------------------ the general path */

/* Every other plain command (Command.plain: a data command that cannot change the state
 * eligible() checks) runs here through its own Python handler, the one source of its
 * behaviour: this module only parses the request, does dispatch's checks that can apply
 * (unknown command, arity), keeps the call's statistics and encodes the simple replies
 * (bulk, integer, null, status, flat arrays of those).  Anything else (an exception,
 * another reply shape, a blocked client, a slow call, pushes or blocked clients to wake)
 * is handed to Server.finish_plain, which ends the call as Server.call and Server.run
 * would, and the loop then checks eligible() again before going on. */

static PyObject *g_general;     /* exact-case name -> Command, for the plain commands */
static PyObject *g_status_type; /* dumpling.protocol.Status: its `wire` is the encoded reply */
static PyObject *g_raw_type;    /* dumpling.protocol.Raw: likewise */
static Py_ssize_t g_status_wire = -1, g_raw_wire = -1; /* their `wire` slots' offsets (-1: getattr) */
static PyObject *g_no_reply;    /* dumpling.protocol.NO_REPLY */
static PyObject *g_acl_check;   /* dumpling.commands.acl.check_command: -NOPERM text or None */

#define N_TALLY 8
#define SIMPLE_REPLY_MAX (1 << 20) /* replybudget.SMALL_REPLY: bigger replies go through the budget */

typedef struct {
    PyObject *cmd; /* borrowed from g_general */
    long long calls, usec;
    PyObject *hist; /* cmd.latency while the tally lasts (owned; NULL: not fetched yet) */
} Tally;

typedef struct {
    PyObject *server, *keyspace, *client; /* borrowed for the batch */
    PyObject *hooks;                      /* server.call_hooks (borrowed; NULL when None) */
    PyObject *gate;                       /* server.command_gate (borrowed; NULL when None) */
    int restricted;                       /* the client's user lacks some permission: ACL checks */
    PyObject *acl_free, *acl_keyed;       /* the client's, read once a batch (owned; ACL rules cannot
                                             change within one: ACL and AUTH are not plain commands) */
    PyObject *rule_name, *rule;           /* the last acl_keyed lookup (borrowed; rule NULL: none) */
    long long threshold;                  /* slowlog-log-slower-than */
    int tracking;                         /* latency-tracking: record each call's duration */
    long long now_set;                    /* the keyspace.now last stored (ms) */
    int tallies, current_set;
    long long total;
    PyObject *attrs_of;                   /* the command whose arity/handler these are (borrowed) */
    long arity;
    PyObject *handler;                    /* (owned) */
    PyObject *ready, *pushes;             /* keyspace.ready_keys, server.pending_pushes (owned; NULL: read
                                             them at the next check) */
    Tally tally[N_TALLY];                 /* (last: the first `tallies` are set, the rest never read) */
} General;

/* 1 when a call left clients to wake or pushes to send after its reply (Python delivers it),
 * 0 if not, -1 on error.  The dict and the list are read once a batch and again after Python
 * delivered a call: handlers only add to them, and only Python's delivery replaces the pushes'
 * list (after sending what it held: a list it dropped is never left empty, so a stale one can
 * only send a call to Python needlessly). */
static int wake_or_push(General *g) {
    if (g->ready == NULL || g->pushes == NULL) {
        Py_CLEAR(g->ready);
        Py_CLEAR(g->pushes);
        PyObject *ready = PyObject_GetAttr(g->keyspace, s_ready_keys);
        PyObject *pushes = ready == NULL ? NULL : PyObject_GetAttr(g->server, s_pending_pushes);
        if (pushes == NULL) {
            Py_XDECREF(ready);
            return -1;
        }
        if (!PyDict_CheckExact(ready) || !PyList_CheckExact(pushes)) { /* not the layout known: ask each time */
            int r = PyObject_IsTrue(ready);
            int p = r != 0 ? r : PyObject_IsTrue(pushes);
            Py_DECREF(ready);
            Py_DECREF(pushes);
            return p;
        }
        g->ready = ready;
        g->pushes = pushes;
    }
    return PyDict_GET_SIZE(g->ready) != 0 || PyList_GET_SIZE(g->pushes) != 0;
}

/* Command.arity and .handler, read once a batch per command run (tests wrap handlers between
 * batches, never inside one): 0 with *handler borrowed from g, -1 on error. */
static int command_attrs(General *g, PyObject *cmd, long *arity, PyObject **handler) {
    if (g->attrs_of != cmd) {
        Memo *m = command_memo(cmd);
        long n;
        PyObject *h;
        if (m != NULL) {
            n = (long)m->arity;
            h = Py_NewRef(m->value[CMD_HANDLER]);
        } else {
            if (PyErr_Occurred())
                return -1;
            PyObject *arity_obj = PyObject_GetAttr(cmd, s_arity);
            n = arity_obj == NULL ? -1 : PyLong_AsLong(arity_obj);
            Py_XDECREF(arity_obj);
            if (n == -1 && PyErr_Occurred())
                return -1;
            if ((h = PyObject_GetAttr(cmd, s_handler)) == NULL)
                return -1;
        }
        Py_XSETREF(g->handler, h);
        g->arity = n;
        g->attrs_of = cmd;
    }
    *arity = g->arity;
    *handler = g->handler;
    return 0;
}

static int flush_tallies(General *g) {
    int bad = 0;
    for (int i = 0; i < g->tallies; i++) {
        if (!bad)
            bad = count_calls(g->tally[i].cmd, g->tally[i].calls, g->tally[i].usec) < 0;
        Py_CLEAR(g->tally[i].hist);
    }
    g->tallies = 0;
    if (!bad && g->total)
        bad = add_server_stat(g->server, SERVER_STAT(stat_commands), s_stat_commands, g->total) < 0;
    g->total = 0;
    return bad ? -1 : 0;
}

static int count_call(General *g, PyObject *cmd, long long usec) {
    for (int i = 0; i < g->tallies; i++) {
        if (g->tally[i].cmd == cmd) {
            g->tally[i].calls++;
            g->tally[i].usec += usec;
            g->total++;
            return g->tracking ? hist_add(&g->tally[i].hist, cmd, usec) : 0;
        }
    }
    if (g->tallies == N_TALLY && flush_tallies(g) < 0)
        return -1;
    Tally *t = &g->tally[g->tallies];
    t->cmd = cmd;
    t->calls = 1;
    t->usec = usec;
    t->hist = NULL;
    g->tallies++;
    g->total++;
    return g->tracking ? hist_add(&t->hist, cmd, usec) : 0;
}

/* One element of a flat reply: 1 encoded, 0 not a simple value, -1 error. */
static int encode_scalar(Out *o, PyObject *v, int resp3) {
    if (PyBytes_CheckExact(v))
        return out_bulk(o, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v)) < 0 ? -1 : 1;
    if (PyByteArray_CheckExact(v))
        return out_bulk(o, PyByteArray_AS_STRING(v), PyByteArray_GET_SIZE(v)) < 0 ? -1 : 1;
    if (PyLong_CheckExact(v)) { /* not bool: that is a RESP3 boolean */
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow)
            return 0; /* outside int64: Python prints C's wrap */
        if (n == -1 && PyErr_Occurred())
            return -1;
        return out_number(o, ':', n) < 0 ? -1 : 1;
    }
    if (v == Py_None)
        return out_null(o, resp3) < 0 ? -1 : 1;
    return 0;
}

/* The reply types besides the builtins that encode_simple writes (configure_general; NULL:
 * left to Python).  Their fields are read by name: they are __slots__ classes of protocol.py. */
static PyObject *g_double_type, *g_map_type, *g_set_type;
static PyObject *s_value, *s_pairs, *s_items;

static native_d2string_fn g_d2string; /* _fpconv's d2string (its capsule); NULL: doubles go to Python */
#define REPLY_DEPTH 8                   /* deeper replies go to Python */

/* addReplyDouble: RESP3 ",<text>", RESP2 the text as a bulk string. */
static int encode_double(Out *o, double value, int resp3) {
    char text[NATIVE_DOUBLE_TEXT];
    int n = g_d2string(value, text);
    if (n < 0)
        return 0;
    if (!resp3)
        return out_bulk(o, text, n) < 0 ? -1 : 1;
    if (out_reserve(o, (size_t)n + 3) < 0)
        return -1;
    o->buf[o->len++] = ',';
    memcpy(o->buf + o->len, text, (size_t)n);
    o->len += (size_t)n;
    o->buf[o->len++] = '\r';
    o->buf[o->len++] = '\n';
    return 1;
}

static int encode_value(Out *o, PyObject *v, int resp3, int depth, size_t limit);

/* An aggregate's items after its header: 1, 0 (something not simple, or over `limit`), -1. */
static int encode_items(Out *o, PyObject *seq, char prefix, int resp3, int depth, size_t limit) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n >= SIMPLE_REPLY_MAX)
        return 0;
    if (out_number(o, prefix, (long long)n) < 0)
        return -1;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        int r = encode_value(o, items[i], resp3, depth + 1, limit);
        if (r <= 0)
            return r;
        if (o->len > limit)
            return 0;
    }
    return 1;
}

/* protocol._encode_into for the shapes commands commonly return: bulk, integer, null, bool,
 * status, Raw, Double (and float), arrays (list, tuple), Map and SetReply of those, nested up to
 * REPLY_DEPTH.  1 encoded, 0 not one of those (the caller drops what was written), -1 error. */
static int encode_value(Out *o, PyObject *v, int resp3, int depth, size_t limit) {
    if (PyList_CheckExact(v) || PyTuple_CheckExact(v))
        return depth < REPLY_DEPTH ? encode_items(o, v, '*', resp3, depth, limit) : 0;
    int r = encode_scalar(o, v, resp3);
    if (r != 0)
        return r;
    PyTypeObject *type = Py_TYPE(v);
    if (type == (PyTypeObject *)g_status_type || type == (PyTypeObject *)g_raw_type) {
        /* a status, or pre-encoded reply bytes (GEOPOS, GEOSEARCH WITH*...): `wire` is the reply */
        Py_ssize_t offset = type == (PyTypeObject *)g_status_type ? g_status_wire : g_raw_wire;
        PyObject *wire = offset >= 0 ? Py_XNewRef(*(PyObject **)((char *)v + offset)) : PyObject_GetAttr(v, s_wire);
        if (wire == NULL)
            return offset >= 0 ? 0 : -1; /* (a slot not set: Python's encoder says so) */
        r = PyBytes_CheckExact(wire) && PyBytes_GET_SIZE(wire) < SIMPLE_REPLY_MAX
            ? (out_put(o, PyBytes_AS_STRING(wire), (size_t)PyBytes_GET_SIZE(wire)) < 0 ? -1 : 1) : 0;
        Py_DECREF(wire);
        return r;
    }
    if (g_d2string != NULL && (type == (PyTypeObject *)g_double_type || type == &PyFloat_Type)) {
        if (type == &PyFloat_Type)
            return encode_double(o, PyFloat_AS_DOUBLE(v), resp3);
        PyObject *value = PyObject_GetAttr(v, s_value);
        if (value == NULL)
            return -1;
        r = PyFloat_CheckExact(value) ? encode_double(o, PyFloat_AS_DOUBLE(value), resp3) : 0;
        Py_DECREF(value);
        return r;
    }
    if (type == &PyBool_Type) {
        int flag = v == Py_True;
        return (resp3 ? out_put(o, flag ? "#t\r\n" : "#f\r\n", 4) : out_put(o, flag ? ":1\r\n" : ":0\r\n", 4)) < 0 ? -1 : 1;
    }
    if (depth >= REPLY_DEPTH || (type != (PyTypeObject *)g_map_type && type != (PyTypeObject *)g_set_type))
        return 0;
    if (type == (PyTypeObject *)g_set_type) {
        PyObject *items = PyObject_GetAttr(v, s_items);
        if (items == NULL)
            return -1;
        r = PyList_CheckExact(items) ? encode_items(o, items, resp3 ? '~' : '*', resp3, depth, limit) : 0;
        Py_DECREF(items);
        return r;
    }
    PyObject *pairs = PyObject_GetAttr(v, s_pairs); /* a Map: RESP3 %N, RESP2 a flat array of 2N */
    if (pairs == NULL)
        return -1;
    r = 0;
    Py_ssize_t n = PyList_CheckExact(pairs) ? PyList_GET_SIZE(pairs) : SIMPLE_REPLY_MAX;
    if (n < SIMPLE_REPLY_MAX / 2) {
        r = out_number(o, resp3 ? '%' : '*', resp3 ? (long long)n : 2 * (long long)n) < 0 ? -1 : 1;
        for (Py_ssize_t i = 0; i < n && r > 0; i++) {
            PyObject *pair = PyList_GET_ITEM(pairs, i);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
                r = 0;
                break;
            }
            r = encode_value(o, PyTuple_GET_ITEM(pair, 0), resp3, depth + 1, limit);
            if (r > 0)
                r = encode_value(o, PyTuple_GET_ITEM(pair, 1), resp3, depth + 1, limit);
            if (r > 0 && o->len > limit)
                r = 0;
        }
    }
    Py_DECREF(pairs);
    return r;
}

/* A whole reply: 1 encoded, 0 left to Python (nothing written), -1 error.  Replies of
 * SIMPLE_REPLY_MAX bytes or more go to Python, whose encoder applies the client's output limit
 * (dumpling.replybudget). */
static int encode_simple(Out *o, PyObject *v, int resp3) {
    if (v == g_no_reply)
        return 1;
    size_t mark = o->len;
    int r = encode_value(o, v, resp3, 0, mark + SIMPLE_REPLY_MAX);
    if (r <= 0)
        o->len = mark;
    return r;
}

/* Appends what `out` holds to client._out (before Python queues anything after it). */
static int spill(Out *o, PyObject *client) {
    if (o->len == 0)
        return 0;
    PyObject *queue = instance_attr(client, s_out);
    PyObject *reply = queue == NULL ? NULL : PyBytes_FromStringAndSize(o->buf, (Py_ssize_t)o->len);
    int bad = reply == NULL || PyList_Append(queue, reply) < 0;
    Py_XDECREF(queue);
    Py_XDECREF(reply);
    o->len = 0;
    return bad ? -1 : 0;
}

/* run_reads' end with a caller that writes the replies itself: `out`'s replies move to *reply when
 * client._out is empty (nothing queued before them), else they are spilled after what it holds. */
static int hand_over(Out *o, PyObject *client, Out *reply) {
    if (o->len == 0)
        return 0;
    Memo *cm = client_memo(client); /* (its __dict__'s tag holds: no probe of that cold table) */
    PyObject *queue = cm != NULL ? Py_NewRef(cm->value[CM_OUT]) : PyErr_Occurred() ? NULL : instance_attr(client, s_out);
    if (queue == NULL)
        return -1;
    int empty = PyList_CheckExact(queue) && PyList_GET_SIZE(queue) == 0;
    Py_DECREF(queue);
    if (!empty)
        return spill(o, client);
    PyMem_Free(reply->buf);
    *reply = *o;
    memset(o, 0, sizeof *o);
    return 0;
}

enum { RAN = 2, RECHECK = 3 }; /* besides DONE/STOP/FAIL: ran and replied / ran, state may have changed */

/* The command of args[0] if it is a plain one (new reference to its entry), NULL
 * otherwise (with an exception set only on error). */
static PyObject *lookup_general_dict(Arg *name, PyObject **name_obj);
static PyObject *g_last_name;  /* the name of the last plain command looked up, as sent */
static PyObject *g_last_entry; /* and its entry: pipelines repeat one command */
static NativeHandler g_last_native; /* and its native handler (NULL: none; see run_native) */
static int native_of(PyObject *cmd, NativeHandler *handler);

static PyObject *lookup_general(Arg *name, PyObject **name_obj) {
    if (g_last_name != NULL && PyBytes_GET_SIZE(g_last_name) == name->len &&
        memcmp(PyBytes_AS_STRING(g_last_name), name->p, (size_t)name->len) == 0) {
        *name_obj = Py_NewRef(g_last_name); /* argv[0]: bytes are immutable, so one object serves */
        return Py_NewRef(g_last_entry);
    }
    PyObject *entry = lookup_general_dict(name, name_obj);
    if (entry != NULL && native_of(entry, &g_last_native) < 0) {
        Py_CLEAR(g_last_name); /* nothing cached */
        Py_CLEAR(*name_obj);
        Py_CLEAR(entry);
    }
    if (entry != NULL) {
        Py_XSETREF(g_last_name, Py_NewRef(*name_obj));
        Py_XSETREF(g_last_entry, Py_NewRef(entry));
    }
    return entry;
}

static PyObject *lookup_general_dict(Arg *name, PyObject **name_obj) {
    PyObject *key = PyBytes_FromStringAndSize(name->p, name->len);
    if (key == NULL)
        return NULL;
    PyObject *entry = PyDict_GetItemWithError(g_general, key);
    if (entry == NULL && !PyErr_Occurred() && name->len <= 32) {
        char lower[32];
        for (Py_ssize_t i = 0; i < name->len; i++) {
            char ch = name->p[i];
            lower[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        PyObject *low = PyBytes_FromStringAndSize(lower, name->len);
        if (low == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        entry = PyDict_GetItemWithError(g_general, low);
        Py_DECREF(low);
    }
    if (entry == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    *name_obj = key;
    return Py_NewRef(entry);
}

/* One rule of User.keyed_commands() (acl.pack_rule: native int32s; first, last, step,
 * permission, alternatives; per alternative its size and pattern count; per pattern kind,
 * permission, length, text). 1 when every key of the request matches a pattern of one
 * alternative (a selector) with the permission its key spec asks for, as acl.matches answers
 * for literal and prefix patterns; 0 when the ACL check must be asked (a refusal included, or
 * a rule this code cannot read). */
enum { PATTERN_PREFIX, PATTERN_EXACT, PATTERN_ANY };

static int32_t i32_at(const char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 1 when ``key`` matches one of the ``count`` patterns at p..end that grant ``perms``;
 * -1 when the patterns overrun their alternative */
static int key_matches(const Arg *key, const char *p, const char *end, int32_t count, int32_t perms) {
    for (int32_t i = 0; i < count; i++) {
        if (end - p < 12)
            return -1;
        int32_t kind = i32_at(p), flags = i32_at(p + 4), len = i32_at(p + 8);
        const char *text = p + 12;
        if (len < 0 || end - text < len)
            return -1;
        p = text + len;
        if ((flags & perms) != perms)
            continue;
        if (kind == PATTERN_ANY ||
            (kind == PATTERN_EXACT && key->len == len && memcmp(key->p, text, len) == 0) ||
            /* a prefix and '*': stringmatch's '*' never matches an empty string */
            (kind == PATTERN_PREFIX && key->len > 0 && key->len >= len && memcmp(key->p, text, len) == 0))
            return 1;
    }
    return 0;
}

static int keys_allowed(PyObject *rule, const Arg *args, int argc) {
    if (!PyBytes_Check(rule) || PyBytes_GET_SIZE(rule) < 20)
        return 0;
    const char *p = PyBytes_AS_STRING(rule), *end = p + PyBytes_GET_SIZE(rule);
    int32_t first = i32_at(p), last = i32_at(p + 4), step = i32_at(p + 8), perms = i32_at(p + 12);
    int32_t alternatives = i32_at(p + 16);
    if (first == 0)
        return 1; /* no keys: the command is allowed, which is why it has a rule */
    if (first < 0 || step < 1)
        return 0;
    long top = last >= 0 ? last : (long)argc + last;
    if (top > argc - 1)
        top = argc - 1;
    p += 20;
    for (int32_t a = 0; a < alternatives; a++) {
        if (end - p < 8)
            return 0;
        int32_t size = i32_at(p), count = i32_at(p + 4);
        if (size < 4 || end - (p + 4) < size)
            return 0;
        const char *patterns = p + 8, *next = p + 4 + size;
        int all = 1;
        for (long k = first; k <= top && all; k += step) {
            int m = key_matches(&args[k], patterns, next, count, perms);
            if (m < 0)
                return 0;
            all = m;
        }
        if (all)
            return 1;
        p = next;
    }
    return 0;
}

/* 1 when a restricted client may run the command named ``cmd_name`` (its Command.name) with
 * these arguments without the ACL check: it is among the commands it may run with any
 * arguments (client.acl_free), or its keys match the user's patterns (client.acl_keyed);
 * 0: the check must be asked; -1: an error. */
static int acl_unasked(General *g, PyObject *cmd_name, const Arg *args, int argc) {
    if (g->acl_free == NULL && (g->acl_free = PyObject_GetAttr(g->client, s_acl_free)) == NULL)
        return -1;
    int r = PyAnySet_Check(g->acl_free) && PySet_GET_SIZE(g->acl_free) ? PySet_Contains(g->acl_free, cmd_name) : 0;
    if (r != 0)
        return r;
    if (g->acl_keyed == NULL && (g->acl_keyed = PyObject_GetAttr(g->client, s_acl_keyed)) == NULL)
        return -1;
    if (cmd_name != g->rule_name) { /* a pipeline of one command looks its rule up once */
        g->rule = PyDict_Check(g->acl_keyed) ? PyDict_GetItemWithError(g->acl_keyed, cmd_name) : NULL;
        if (g->rule == NULL && PyErr_Occurred())
            return -1;
        g->rule_name = cmd_name;
    }
    return g->rule != NULL ? keys_allowed(g->rule, args, argc) : 0;
}

static int run_general(General *g, Batch *b, Arg *args, int argc, PyObject **last) {
    PyObject *name = NULL;
    PyObject *entry = lookup_general(&args[0], &name);
    if (entry == NULL)
        return PyErr_Occurred() ? FAIL : STOP;
    PyObject *cmd = entry; /* its handler and arity are read at each call: tests wrap handlers */
    int result = FAIL;
    PyObject *argv = NULL, *outcome = NULL, *handler;
    long arity;
    if (command_attrs(g, cmd, &arity, &handler) < 0)
        goto done;
    if ((arity > 0 && argc != arity) || argc < -arity) {
        result = STOP; /* dispatch's error reply */
        goto done;
    }
    argv = PyList_New(argc);
    if (argv == NULL)
        goto done;
    PyList_SET_ITEM(argv, 0, name);
    name = NULL;
    for (int i = 1; i < argc; i++) {
        PyObject *a = PyBytes_FromStringAndSize(args[i].p, args[i].len);
        if (a == NULL)
            goto done;
        PyList_SET_ITEM(argv, i, a);
    }
    /* Server.execute_checked's steps that can apply here, in its order: the ACL, then the gate */
    for (int step = 0; step < 2; step++) {
        PyObject *check = step == 0 ? (g->restricted ? g_acl_check : NULL) : g->gate;
        if (check == NULL)
            continue;
        b->fresh_ns = 0; /* (Python code runs before the call) */
        if (step == 0) { /* a command the user may run with any arguments, or on these keys, needs no asking */
            PyObject *cmd_name = PyObject_GetAttr(cmd, s_name);
            int unasked = cmd_name == NULL ? -1 : acl_unasked(g, cmd_name, args, argc);
            Py_XDECREF(cmd_name);
            if (unasked < 0)
                goto done;
            if (unasked)
                continue;
        }
        PyObject *refusal = PyObject_CallFunctionObjArgs(check, g->client, cmd, argv, NULL);
        if (refusal == NULL)
            goto done;
        if (refusal != Py_None) { /* Server.reject answers it (stats, ACL LOG already written) */
            PyObject *r = spill(&b->out, g->client) < 0 ? NULL
                : PyObject_CallMethodObjArgs(g->server, s_reject, g->client, refusal, argv, cmd, NULL);
            Py_DECREF(refusal);
            if (r == NULL)
                goto done;
            Py_DECREF(r);
            if (step == 0) /* the ACL check sets lastcmd (Redis: at lookup); a gate's refusal does not */
                Py_XSETREF(*last, Py_NewRef(cmd));
            result = RECHECK;
            goto done;
        }
        Py_DECREF(refusal);
    }
    long long start = call_start(b);
    long long now_ms = start / 1000000;
    if (now_ms != g->now_set) { /* the command time snapshot */
        if (set_long_attr(g->keyspace, &g_keyspace_memo, s_now, now_ms) < 0)
            goto done;
        g->now_set = now_ms;
    }
    b->now_ms = now_ms;
    if (g->hooks != NULL) {
        PyObject *r = PyObject_CallMethodObjArgs(g->hooks, s_begin, g->client, cmd, argv, NULL);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    PyObject *call_args[2] = {g->client, argv};
    PyObject *reply = PyObject_Vectorcall(handler, call_args, 2, NULL);
    long long elapsed_us = 0; /* measured after the end hook, as Server.call measures it */
    Py_XSETREF(*last, Py_NewRef(cmd));
    int simple = 0;
    if (reply == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            goto done; /* KeyboardInterrupt, SystemExit: not a reply */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb != NULL && value != NULL)
            PyException_SetTraceback(value, tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        if (value == NULL)
            goto done;
        outcome = value;
        if (g->hooks != NULL) { /* the hooks see the error reply, as Server.call gives it */
            PyObject *error = PyObject_CallMethodObjArgs(g->server, s_handler_error, cmd, value, NULL);
            if (error == NULL)
                goto done;
            Py_SETREF(outcome, error);
            PyObject *r = PyObject_CallMethodObjArgs(g->hooks, s_end, g->client, cmd, argv, outcome, NULL);
            if (r == NULL)
                goto done;
            Py_DECREF(r);
        }
        elapsed_us = native_elapsed_us(start, wall_ns());
    } else {
        if (g->hooks != NULL) {
            PyObject *r = PyObject_CallMethodObjArgs(g->hooks, s_end, g->client, cmd, argv, reply, NULL);
            if (r == NULL) {
                Py_DECREF(reply);
                goto done;
            }
            Py_DECREF(r);
        }
        outcome = reply;
        long long end = wall_ns();
        elapsed_us = native_elapsed_us(start, end);
        b->fresh_ns = end; /* (the next call's start, if this one ends here in C) */
        int r;
        if (g->threshold >= 0 && elapsed_us >= g->threshold)
            simple = 0; /* SLOWLOG: Python keeps it (redacted) */
        else if ((r = wake_or_push(g)) != 0) {
            if (r < 0)
                goto done;
            simple = 0; /* clients to wake, pushes to send after the reply */
        } else if ((simple = encode_simple(&b->out, reply, b->resp3)) < 0)
            goto done;
    }
    if (simple) {
        if (count_call(g, cmd, elapsed_us) < 0)
            goto done;
        result = RAN;
        goto done;
    }
    b->fresh_ns = 0; /* Python ends the call */
    if (spill(&b->out, g->client) < 0)
        goto done;
    PyObject *us = PyLong_FromLongLong(elapsed_us);
    if (us == NULL)
        goto done;
    PyObject *r = PyObject_CallMethodObjArgs(g->server, s_finish_plain, g->client, cmd, argv, outcome, us, NULL);
    Py_DECREF(us);
    Py_CLEAR(g->ready); /* (its delivery may have replaced them) */
    Py_CLEAR(g->pushes);
    if (r == NULL)
        goto done;
    Py_DECREF(r);
    result = RECHECK;
done:
    Py_XDECREF(name);
    Py_XDECREF(argv);
    Py_XDECREF(outcome);
    Py_DECREF(entry);
    return result;
}

/* The database dicts the string commands work on (again after a Python handler ran: it may
 * have replaced them, FLUSHDB or SWAPDB). 1 fine, 0 a layout this module does not know, -1 error. */
static NativeDbNames g_db_names; /* (filled at module init) */

static Py_ssize_t g_db_offsets[4]; /* keyspace, data, expires, slot_index (install_keyspace) */
static PyTypeObject *g_database_type; /* the Database class those offsets are of (owned; NULL: not installed) */

static int load_db(Batch *b, PyObject *client) {
    Py_CLEAR(b->data);
    Py_CLEAR(b->expires);
    Memo *cm = g_database_type != NULL ? client_memo(client) : NULL; /* (checked against the dict's tag) */
    PyObject *db = g_database_type == NULL ? NULL
                   : cm != NULL ? Py_NewRef(cm->value[CM_DB])
                   : PyErr_Occurred() ? NULL : PyObject_GetAttr(client, s_db);
    if (db != NULL && Py_TYPE(db) == g_database_type) { /* its slots at their offsets: no getattr each */
        PyObject **slot[4];
        int set = 1;
        for (int i = 1; i < 4; i++)
            set = set && *(slot[i] = (PyObject **)((char *)db + g_db_offsets[i])) != NULL;
        if (set) {
            b->data = Py_NewRef(*slot[1]);
            b->expires = Py_NewRef(*slot[2]);
            int r = *slot[3] == Py_None && native_is_keytable(b->data) && PyDict_CheckExact(b->expires);
            Py_DECREF(db);
            return r;
        }
    }
    if (db == NULL && PyErr_Occurred())
        return -1;
    Py_XDECREF(db);
    return native_load_db(client, &g_db_names, &b->data, &b->expires);
}

/* ------------------------------------------------------------------ native handlers */

/* A plain command whose Command.native holds a capsule (dumpling/_native.h: a C function
 * another extension module attached at import, e.g. _hllgeo's PFADD) is offered to that
 * function before its Python handler, in the state the twins run in (no hooks, gate or ACL
 * check): it runs the whole command or declines before changing anything.  The call is
 * counted, timed and slow-logged as a twin's; what it declines goes on to run_general.
 * Command.native is read when lookup_general caches the command (g_last_native), so the
 * commands without one pay a cached lookup and a NULL test. */
static PyObject *s_native;

static int native_of(PyObject *cmd, NativeHandler *handler) {
    if (s_native == NULL && (s_native = PyUnicode_InternFromString("native")) == NULL)
        return -1;
    PyObject *native = PyObject_GetAttr(cmd, s_native);
    if (native == NULL)
        return -1;
    *handler = native == Py_None ? NULL : (NativeHandler)PyCapsule_GetPointer(native, NATIVE_CAPSULE);
    int bad = native != Py_None && *handler == NULL;
    Py_DECREF(native);
    return bad ? -1 : 0;
}

static int run_native(General *g, Batch *b, Arg *args, int argc, int *stale, PyObject **last) {
    PyObject *name = NULL;
    PyObject *cmd = lookup_general(&args[0], &name);
    if (cmd == NULL)
        return PyErr_Occurred() ? FAIL : STOP;
    Py_DECREF(name);
    NativeHandler handler = g_last_native; /* cmd's, cached with it */
    int result = STOP;
    PyObject *reply = NULL;
    if (handler == NULL)
        goto done;
    long arity;
    PyObject *python_handler;
    if (command_attrs(g, cmd, &arity, &python_handler) < 0) {
        result = FAIL;
        goto done;
    }
    if ((arity > 0 && argc != arity) || argc < -arity)
        goto done; /* dispatch's error reply */
    if (g->restricted) { /* a restricted user's command runs here only if the ACL need not be asked */
        PyObject *cmd_name = PyObject_GetAttr(cmd, s_name);
        int unasked = cmd_name == NULL ? -1 : acl_unasked(g, cmd_name, args, argc);
        Py_XDECREF(cmd_name);
        if (unasked <= 0) {
            result = unasked < 0 ? FAIL : STOP;
            goto done;
        }
    }
    if (*stale) { /* a Python handler ran since the dicts were read */
        int loaded = load_db(b, g->client);
        if (loaded <= 0) {
            result = loaded < 0 ? FAIL : STOP;
            goto done;
        }
        *stale = 0;
    }
    long long start = call_start(b);
    b->now_ms = start / 1000000;
    if (set_clock(b) < 0) {
        result = FAIL;
        goto done;
    }
    NativeCall call = {.server = g->server, .data = b->data, .expires = b->expires, .clock = b->clock,
                       .now_ms = b->now_ms, .resp3 = b->resp3};
    reply = handler(&call, args, argc);
    if (reply == NULL) {
        result = PyErr_Occurred() ? FAIL : STOP; /* declined: the Python handler runs */
        b->fresh_ns = start;
        goto done;
    }
    b->hits += call.hits;
    b->misses += call.misses;
    b->dirty += call.dirty;
    long long end = wall_ns();
    long long elapsed_us = native_elapsed_us(start, end);
    b->fresh_ns = end;
    result = FAIL;
    int encoded = encode_simple(&b->out, reply, b->resp3);
    if (encoded == 0)
        PyErr_SetString(PyExc_SystemError, "a native handler returned a reply the loop does not encode");
    if (encoded <= 0 || count_call(g, cmd, elapsed_us) < 0)
        goto done;
    Py_XSETREF(*last, Py_NewRef(cmd));
    if (g->threshold >= 0 && elapsed_us >= g->threshold &&
        (b->fresh_ns = 0, slowlog(g->server, g->client, args, argc, elapsed_us) < 0))
        goto done;
    result = DONE;
done:
    Py_XDECREF(reply);
    Py_DECREF(cmd);
    return result;
}

/* ------------------------------------------------------------------ the twins for other modules */

/* TwinCall (_native.h): one twin run on another module's behalf, as run() runs it. */
static PyObject *twin_call(NativeCall *call, const NativeArg *args, int argc, PyObject **cmd) {
    int command = g_configured && argc > 0 ? identify(&args[0]) : -1;
    if (command < 0)
        return NULL;
    Batch b;
    memset(&b, 0, sizeof b);
    b.data = call->data;
    b.expires = call->expires;
    b.resp3 = call->resp3;
    b.now_ms = call->now_ms;
    b.clock = call->clock;
    PyObject *reply = NULL;
    if (execute(&b, command, (Arg *)args, argc) == DONE &&
        (reply = PyBytes_FromStringAndSize(b.out.buf, (Py_ssize_t)b.out.len)) != NULL) {
        call->hits += b.hits;
        call->misses += b.misses;
        call->dirty += b.dirty;
        *cmd = g_commands[command];
    }
    PyMem_Free(b.out.buf);
    return reply;
}

/* ------------------------------------------------------------------ entry points */

static int hand_over(Out *o, PyObject *client, Out *reply);

/* run()'s body: the leading requests of buf[0:end] that run here, run; the bytes they took, or -1
 * on error.  `server` and `keyspace` are the client's (borrowed).  With `reply` NULL the replies
 * go to client._out; else, when client._out is empty at the end, they stay in *reply for the
 * caller to write (its buffer then the caller's to free). */
static Py_ssize_t run_reads(PyObject *client, PyObject *server, PyObject *keyspace, const char *buf, Py_ssize_t end,
                            Out *reply) {
    if (end < 4)
        return 0;

    Batch b;
    memset(&b, 0, sizeof b);
    out_take_spare(&b.out);
    General g;
    memset(&g, 0, offsetof(General, tally)); /* (not the tallies: ~9 stores a read instead of ~40) */
    g.now_set = -1;
    Py_ssize_t consumed = -1;
    g.server = server;
    g.keyspace = keyspace;
    g.client = client;

    long long started = 0; /* (the clock when the loop begins) */
    int failed = 0, stale = 0, ok;
    Py_ssize_t pos = 0;
    PyObject *r = NULL, *last = NULL; /* the Command of the last request run */
    PyObject *hooks_ref = NULL, *gate_ref = NULL;

    int hooked = 0, gated = 0, restricted = 0;
    ok = eligible(server, keyspace, client, &b.resp3, &hooked, &gated, &restricted);
    if (ok > 0)
        ok = load_db(&b, client);
    if (ok <= 0) {
        if (ok < 0)
            goto fail;
        goto finish; /* not the plain state, or a layout this module does not know: run nothing */
    }
    if (hooked) {
        hooks_ref = PyObject_GetAttr(server, s_call_hooks);
        if (hooks_ref == NULL)
            goto fail;
        g.hooks = hooks_ref;
    }
    g.restricted = restricted;
    if (restricted && g_acl_check == NULL)
        goto finish; /* not configured for ACL checks: run nothing */
    if (gated) {
        gate_ref = PyObject_GetAttr(server, s_command_gate);
        if (gate_ref == NULL)
            goto fail;
        g.gate = gate_ref;
    }
    Memo *sm = server_memo(server); /* (eligible's: the settings below as it found them) */
    if (sm != NULL && sm->known) {
        g.threshold = sm->threshold;
        g.tracking = sm->tracking;
    } else {
        if (PyErr_Occurred())
            goto fail;
        r = instance_attr(server, s_slowlog_threshold);
        if (r == NULL)
            goto fail;
        g.threshold = PyLong_AsLongLong(r);
        Py_CLEAR(r);
        if (g.threshold == -1 && PyErr_Occurred())
            goto fail;
        r = PyObject_GetAttr(server, s_latency_tracking); /* (not one of PLAIN_NAMES) */
        g.tracking = r == NULL ? -1 : PyObject_IsTrue(r);
        Py_CLEAR(r);
        if (g.tracking < 0)
            goto fail;
    }

    Arg args[MAX_ARGS];
    b.fresh_ns = started = wall_ns();
    while (pos < end) {
        int argc;
        Py_ssize_t next = parse_request(buf, pos, end, args, &argc);
        if (next < 0)
            break;
        /* hooks or a gate: every call through the general path, which honours them */
        int command = g.hooks == NULL && g.gate == NULL ? identify(&args[0]) : -1;
        if (command >= 0 && g.restricted == ACL_RESTRICTED) { /* the twin runs if the ACL needs no asking */
            int unasked = acl_unasked(&g, s_twin_names[command], args, argc);
            if (unasked < 0) {
                failed = 1;
                break;
            }
            if (!unasked)
                command = -1;
        }
        if (command >= 0) {
            if (stale) { /* a Python handler ran since the dicts were read */
                int loaded = load_db(&b, client);
                if (loaded <= 0) {
                    failed = loaded < 0;
                    break;
                }
                stale = 0;
            }
            long long start = call_start(&b);
            b.now_ms = start / 1000000;
            if (set_clock(&b) < 0) {
                failed = 1;
                break;
            }
            int rc = execute(&b, command, args, argc);
            if (rc == FAIL) {
                failed = 1;
                break;
            }
            if (rc == DONE) {
                long long end_ns = wall_ns();
                long long elapsed_us = native_elapsed_us(start, end_ns);
                b.fresh_ns = end_ns;
                if (count_call(&g, g_commands[command], elapsed_us) < 0) { /* (as the general path's calls) */
                    failed = 1;
                    break;
                }
                Py_XSETREF(last, Py_NewRef(g_commands[command]));
                pos = next;
                if (g.threshold >= 0 && elapsed_us >= g.threshold &&
                    (b.fresh_ns = 0, slowlog(server, client, args, argc, elapsed_us) < 0)) {
                    failed = 1;
                    break;
                }
                continue;
            }
            /* STOP: a form the C twin is unsure about; its Python handler decides */
            b.fresh_ns = start;
        }
        if (g_general == NULL)
            break;
        if (g.hooks == NULL && g.gate == NULL) { /* where the twins run (run_native asks acl_unasked) */
            int rc = run_native(&g, &b, args, argc, &stale, &last);
            if (rc == FAIL) {
                failed = 1;
                break;
            }
            if (rc == DONE) {
                pos = next;
                continue;
            }
        }
        if (!g.current_set) {
            if (set_current_client(server, client) < 0) {
                failed = 1;
                break;
            }
            g.current_set = 1;
        }
        int rc = run_general(&g, &b, args, argc, &last);
        if (rc == STOP)
            break;
        if (rc == FAIL) {
            failed = 1;
            break;
        }
        pos = next;
        stale = 1;
        if (rc == RECHECK) { /* Python delivered it: the connection or the server may have changed */
            Py_CLEAR(g.ready);
            Py_CLEAR(g.pushes);
            g.now_set = -1;  /* and calls it made (blocked clients served) set their own time snapshot */
            int now_hooked = 0, now_gated = 0, now_restricted = 0;
            int e = eligible(server, keyspace, client, &b.resp3, &now_hooked, &now_gated, &now_restricted);
            if (e > 0 && (now_hooked != (g.hooks != NULL) || now_gated != (g.gate != NULL) ||
                          now_restricted != g.restricted))
                e = 0; /* hooks or gate switched: Python takes the rest of this read */
            if (e <= 0) {
                failed = e < 0;
                break;
            }
        }
    }

finish:
    /* Account for what ran, whatever stopped the loop. */
    if (last != NULL) {
        PyObject *etype = NULL, *evalue = NULL, *etb = NULL;
        if (failed)
            PyErr_Fetch(&etype, &evalue, &etb);
        int bad = flush_tallies(&g) < 0;
        bad = bad || add_keyspace_stats(keyspace, b.hits, b.misses, b.dirty) < 0 ||
              (b.now_ms && set_long_attr(keyspace, &g_keyspace_memo, s_now, b.now_ms) < 0) ||
              set_current_client(server, client) < 0;
        if (!bad) {
            Memo *lm = command_memo(last);
            PyObject *name = lm != NULL         ? Py_NewRef(lm->value[CMD_NAME])
                             : PyErr_Occurred() ? NULL
                                                : instance_attr(last, s_name);
            ClientBaseObject *cb = is_client_base(client) ? (ClientBaseObject *)client : NULL;
            Memo *cm = cb != NULL ? &cb->memo : NULL;
            if (name == NULL) {
                bad = 1;
            } else if (cb == NULL || name != cb->last_cmd_left || !memo_holds(cm, client) ||
                       cm->version != cb->last_cmd_version) {
                bad = set_attr_kept(client, cm, s_last_cmd, name) < 0;
                if (!bad && cb != NULL && memo_holds(cm, client)) {
                    cb->last_cmd_left = name;
                    cb->last_cmd_version = cm->version;
                }
            }
            Py_XDECREF(name);
        }
        if (!bad) {
            if (is_client_base(client)) {
                ((ClientBaseObject *)client)->last_interaction = (double)started / 1e9;
            } else {
                PyObject *t = PyFloat_FromDouble((double)started / 1e9);
                bad = t == NULL || PyObject_SetAttr(client, s_last_interaction, t) < 0;
                Py_XDECREF(t);
            }
        }
        if (!bad)
            bad = (reply != NULL && !failed ? hand_over(&b.out, client, reply) : spill(&b.out, client)) < 0;
        if (failed) {
            if (bad) { /* keep the newer error */
                Py_XDECREF(etype);
                Py_XDECREF(evalue);
                Py_XDECREF(etb);
            } else {
                PyErr_Restore(etype, evalue, etb);
            }
        }
        failed = failed || bad;
    }
    if (failed)
        goto fail;
    consumed = pos;
fail:
    for (int i = 0; i < g.tallies; i++) /* (flush_tallies ran unless an error came first) */
        Py_XDECREF(g.tally[i].hist);
    Py_XDECREF(hooks_ref);
    Py_XDECREF(gate_ref);
    Py_XDECREF(g.acl_free);
    Py_XDECREF(g.acl_keyed);
    Py_XDECREF(g.handler);
    Py_XDECREF(g.ready);
    Py_XDECREF(g.pushes);
    Py_XDECREF(last);
    Py_XDECREF(b.data);
    Py_XDECREF(b.expires);
    out_give_back(&b.out);
    return consumed;
}

static PyObject *fast_run(PyObject *self, PyObject *const *fargs, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(fargs[1])) {
        PyErr_SetString(PyExc_TypeError, "run(client, data: bytes)");
        return NULL;
    }
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "dumpling._fastpath is not configured");
        return NULL;
    }
    PyObject *client = fargs[0];
    PyObject *server = PyObject_GetAttr(client, s_server);
    if (server == NULL)
        return NULL;
    PyObject *keyspace = PyObject_GetAttr(client, s_keyspace);
    if (keyspace == NULL) {
        Py_DECREF(server);
        return NULL;
    }
    Py_ssize_t consumed = run_reads(client, server, keyspace, PyBytes_AS_STRING(fargs[1]), PyBytes_GET_SIZE(fargs[1]),
                                    NULL);
    Py_DECREF(server);
    Py_DECREF(keyspace);
    return consumed < 0 ? NULL : PyLong_FromSsize_t(consumed);
}

/* ------------------------------------------------------------------ the read path */

/* ClientBase: the C base class of server.Client.  Its data_received is Client.data_received for
 * the common read, all in C (uvloop calls it with no Python frame): a read that starts on a
 * request boundary (no request pending, the fast readers' turn) and leaves the query buffer's model
 * as it is (querybuf.QueryBuffer.quiet) counts the read (total_net_input_bytes, total_reads),
 * runs what run_reads takes and, when it took the whole read, writes the replies as Client.flush
 * does (client-output-buffer-limit and maxmemory-clients from server.output_check_from on, net
 * output and writes counted, the reply buffer's peak, then `flags_close_after_reply`).  Anything
 * else goes to Python at the step where it differs from that case: a read of another kind to
 * Client.received (the whole Python path, the reference), the rest of a read run_reads stopped
 * in to Client._read_rest, an unusual flush (output queued before, a limit to check, closed) to
 * Client.flush.  Subclasses (MasterClient's own flush) and `_fast_run` None in server.py (the
 * fast path off) always take Client.received. */

static PyObject *g_read_switch;     /* server.py's globals: its `_fast_run` None turns this path off (owned) */

/* An empty bytes/bytearray (the buffers of a connection with nothing pending): 1, else 0. */
static inline int empty_buffer(PyObject *v) {
    return (PyBytes_CheckExact(v) || PyByteArray_CheckExact(v)) && Py_SIZE(v) == 0;
}

/* query_buffer.quiet (querybuf.QueryBuffer: a __slots__ member, read at its offset): 1 read, 0 not
 * an int of C size (nothing set), -1 on error. */
static PyTypeObject *g_quiet_type; /* the type whose member `quiet` is at g_quiet_offset (borrowed) */
static unsigned int g_quiet_version;
static Py_ssize_t g_quiet_offset;

static int read_quiet(PyObject *query_buffer, long long *quiet) {
    PyTypeObject *type = Py_TYPE(query_buffer);
    PyObject *v;
    if (type != g_quiet_type || type->tp_version_tag != g_quiet_version ||
        !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        g_quiet_type = NULL;
        PyObject *descr = _PyType_Lookup(type, s_quiet);
        if (descr != NULL && Py_TYPE(descr) == &PyMemberDescr_Type &&
            ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
            (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) && type->tp_version_tag != 0) {
            g_quiet_type = type;
            g_quiet_version = type->tp_version_tag;
            g_quiet_offset = ((PyMemberDescrObject *)descr)->d_member->offset;
        }
    }
    if (g_quiet_type == type) {
        v = Py_XNewRef(*(PyObject **)((char *)query_buffer + g_quiet_offset));
        if (v == NULL)
            return 0; /* (unset: Python's AttributeError) */
    } else if ((v = PyObject_GetAttr(query_buffer, s_quiet)) == NULL) {
        return -1;
    }
    int overflow = 0;
    *quiet = PyLong_CheckExact(v) ? PyLong_AsLongLongAndOverflow(v, &overflow) : 0;
    int r = PyLong_CheckExact(v) && !overflow;
    Py_DECREF(v);
    return r;
}

/* A transport's method, found once per type version: PyObject_CallMethod's lookup
 * (_PyObject_GetMethod) was ~100 instructions of each of the two calls a read's write makes.
 * Only an attribute of the type that binds as a method (Py_TPFLAGS_METHOD_DESCRIPTOR: uvloop's,
 * asyncio's) of a type whose instances have no __dict__ to shadow it; anything else is looked
 * up each call. */
typedef struct {
    PyTypeObject *type; /* (borrowed, compared only; NULL: nothing cached) */
    unsigned int version;
    PyObject *func; /* the type's attribute (owned) */
} MethodCache;
static MethodCache g_write_method, g_backlog_method;

static PyObject *call_method(MethodCache *c, PyObject *self, PyObject *name, PyObject *arg) {
    PyTypeObject *type = Py_TYPE(self);
    if (type != c->type || type->tp_version_tag != c->version || !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        c->type = NULL;
        Py_CLEAR(c->func);
        PyObject *f = type->tp_dictoffset == 0 ? _PyType_Lookup(type, name) : NULL;
        if (f != NULL && PyType_HasFeature(Py_TYPE(f), Py_TPFLAGS_METHOD_DESCRIPTOR) && type->tp_version_tag != 0 &&
            (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
            c->func = Py_NewRef(f);
            c->type = type;
            c->version = type->tp_version_tag;
        }
    }
    if (c->type == NULL)
        return arg != NULL ? PyObject_CallMethodOneArg(self, name, arg) : PyObject_CallMethodNoArgs(self, name);
    PyObject *func = Py_NewRef(c->func), *args[2] = {self, arg};
    PyObject *r = PyObject_Vectorcall(func, args, arg != NULL ? 2 : 1, NULL);
    Py_DECREF(func);
    return r;
}

/* transport.write of the `len` bytes at buf: 0, -1 on error. */
static int transport_write(PyObject *transport, const char *buf, Py_ssize_t len) {
    PyObject *data = PyBytes_FromStringAndSize(buf, len);
    PyObject *done = data == NULL ? NULL : call_method(&g_write_method, transport, s_write, data);
    Py_XDECREF(data);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

/* A reply written to the client's socket itself (ClientBase.write_directly, send(2)), as the transport's
 * write would (uvloop's and asyncio's try the socket at once when nothing is queued; the caller
 * saw get_write_buffer_size() at 0): what the socket does not take now (a full send buffer,
 * EAGAIN) or an error goes to transport.write, which queues the rest or meets the error as it
 * always does.  The socket is open: both transports call connection_lost, which turns this off,
 * before they close it, and Client.close turns it off before it closes the transport.  0, -1 on
 * error. */
static int write_to_socket(ClientBaseObject *c, PyObject *transport, const char *buf, Py_ssize_t len) {
    ssize_t n;
    do /* (MSG_NOSIGNAL: a closed peer is an EPIPE for the transport to meet, never a SIGPIPE) */
        n = send(c->write_fd, buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    Py_ssize_t sent = n > 0 ? (Py_ssize_t)n : 0;
    return sent == len ? 0 : transport_write(transport, buf + sent, len - sent);
}

/* Client.flush for replies run_reads left in *reply: 1 written, 0 the case is Python's (nothing
 * done), -1 on error.  Reads the memos (a plain read leaves them valid). */
static int write_replies(PyObject *client, PyObject *server, Out *reply) {
    Memo *cm = client_memo(client), *sm = cm != NULL && cm->known ? server_memo(server) : NULL;
    if (sm == NULL || !sm->known || reply->len == 0)
        return PyErr_Occurred() ? -1 : 0;
    PyObject **v = cm->value;
    PyObject *out = v[CM_OUT], *transport = v[CM_TRANSPORT];
    if (!PyList_CheckExact(out) || PyList_GET_SIZE(out) != 0 || transport == Py_None || v[CM_CLOSED] != Py_False)
        return 0;
    if (fixed_truth(v[CM_OBUF_SOFT]) != 0) /* a soft-limit timer runs: Python checks it */
        return 0;
    long long buffer_size, size = (long long)reply->len;
    int overflow = 0;
    if (!PyLong_CheckExact(v[CM_REPLY_BUFFER_SIZE]))
        return 0;
    buffer_size = PyLong_AsLongLongAndOverflow(v[CM_REPLY_BUFFER_SIZE], &overflow);
    if (overflow)
        return 0;
    ClientBaseObject *c = (ClientBaseObject *)client;
    Py_INCREF(transport);
    int r = 0;
    /* the output limits of the client's class (Server.output_limit_exceeded's): while no client has
     * a subscription this one is a normal client, whose limits are mostly none at all, so the
     * transport is not asked for its backlog on every write (but for a write to the socket, which
     * must follow whatever the transport still holds) */
    long long check_from = PyDict_GET_SIZE(sm->value[SM_PUBSUB_CLIENTS]) == 0 ? sm->check_from_normal : sm->check_from;
    int direct = c->write_transport != NULL && c->write_transport == transport;
    /* (a transport that signals its backlog and holds nothing: no get_write_buffer_size, ~0.12k
     * instructions a read) */
    if (check_from > 0 || (direct && (!c->write_signals || c->write_held))) {
        PyObject *backlog = call_method(&g_backlog_method, transport, s_get_write_buffer_size, NULL);
        long long pending = backlog == NULL ? -1 : PyLong_AsLongLong(backlog);
        Py_XDECREF(backlog);
        if (pending == -1 && PyErr_Occurred())
            r = -1;
        else if (check_from > 0 && size + pending >= check_from)
            r = 0; /* the output-buffer limits have their say: Python's */
        else
            r = 1;
        if (r <= 0) {
            Py_DECREF(transport);
            return r;
        }
        direct = direct && pending == 0;
    }
    if (add_server_stat(server, SERVER_STAT(stat_net_output), s_stat_net_output, size) < 0 ||
        add_server_stat(server, SERVER_STAT(stat_writes), s_stat_writes, 1) < 0) {
        Py_DECREF(transport);
        return -1;
    }
    if (size > c->reply_buffer_peak)
        c->reply_buffer_peak = size < buffer_size ? size : buffer_size;
    r = direct ? write_to_socket(c, transport, reply->buf, (Py_ssize_t)reply->len)
               : transport_write(transport, reply->buf, (Py_ssize_t)reply->len);
    reply->len = 0;
    Py_DECREF(transport);
    if (r < 0)
        return -1;
    PyObject *done;
    /* then flags_close_after_reply (the write ran code: the memo is checked again) */
    cm = client_memo(client);
    if (cm != NULL && cm->known) {
        r = fixed_truth(cm->value[CM_CLOSE_AFTER]) && !fixed_truth(cm->value[CM_CLOSED]);
    } else {
        if (PyErr_Occurred())
            return -1;
        if ((r = attr_true(client, s_close_after)) > 0)
            r = (r = attr_true(client, s_closed)) < 0 ? -1 : !r;
        if (r < 0)
            return -1;
    }
    if (r) {
        done = PyObject_CallMethodNoArgs(client, s_close);
        if (done == NULL)
            return -1;
        Py_DECREF(done);
    }
    return 1;
}

/* write_directly(transport, fd, signals=False): the connection's socket, which write_replies may
 * write to itself while `transport` is the client's and holds nothing: asked each write
 * (get_write_buffer_size) unless `signals` (the transport calls pause_writing at its first held
 * byte and resume_writing when it holds none: then `_write_held` says it); write_directly(None,
 * -1): none (closing, closed). */
static PyObject *client_write_directly(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "write_directly(transport, fd, signals=False)");
        return NULL;
    }
    int signals = nargs == 3 ? PyObject_IsTrue(args[2]) : 0;
    if (signals < 0)
        return NULL;
    long fd = PyLong_AsLong(args[1]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < -1 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "write_directly: not a file descriptor");
        return NULL;
    }
    ClientBaseObject *c = (ClientBaseObject *)self;
    c->write_transport = args[0] != Py_None && fd >= 0 ? args[0] : NULL;
    c->write_fd = (int)fd;
    c->write_signals = c->write_transport != NULL && signals;
    Py_RETURN_NONE;
}

/* server.py's `_fast_run` (borrowed): what the last probe found while its globals keep the tag they
 * had then (any assignment there changes it), else a probe, a cold table each read otherwise. */
static PyObject *g_fast_run_seen;
static uint64_t g_fast_run_version;

static inline PyObject *read_switch(void) {
    if (MEMO_VERSIONS && g_fast_run_seen != NULL && dict_version(g_read_switch) == g_fast_run_version)
        return g_fast_run_seen;
    PyObject *fast = entry(g_read_switch, s_fast_run);
    if (fast != NULL) {
        g_fast_run_seen = fast;
        g_fast_run_version = dict_version(g_read_switch);
    }
    return fast;
}

static PyObject *client_data_received(PyObject *self, PyObject *data) {
    Memo *cm = NULL;
    if (Py_TYPE(self) == g_client_type && PyBytes_CheckExact(data) && g_configured) {
        PyObject *fast = read_switch();
        if (fast == NULL && PyErr_Occurred())
            return NULL;
        if (fast != NULL && fast != Py_None && (cm = client_memo(self)) == NULL && PyErr_Occurred())
            return NULL;
    }
    /* a read on a request boundary, for the fast readers */
    if (cm == NULL || !cm->known || cm->value[CM_STRICT] != Py_False || !empty_buffer(cm->value[CM_CARRY]) ||
        !empty_buffer(cm->value[CM_HELD]) || !empty_buffer(cm->value[CM_RETAINED]))
        return PyObject_CallMethodOneArg(self, s_received, data);
    PyObject *server = cm->value[CM_SERVER], *keyspace = cm->value[CM_KEYSPACE];
    PyObject *query_buffer = cm->value[CM_QUERY_BUFFER];
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    long long quiet;
    int r = read_quiet(query_buffer, &quiet);
    if (r < 0)
        return NULL;
    if (r == 0)
        return PyObject_CallMethodOneArg(self, s_received, data);
    /* A read the query buffer's model does not ignore (one larger than its recent peak: the first
     * after the client's turn in the clients cron, which restarts the peak) has the model's own
     * steps run around it, as Client.received runs them: `read` before the requests run,
     * `settle` after (nothing is pending here: no carry, held or retained bytes). */
    int sized = size > quiet;

    Py_INCREF(server);
    Py_INCREF(keyspace);
    Py_INCREF(query_buffer);
    PyObject *result = NULL;
    Out reply = {NULL, 0, 0};
    if (add_server_stat(server, SERVER_STAT(stat_net_input), s_stat_net_input, size) < 0 ||
        add_server_stat(server, SERVER_STAT(stat_reads), s_stat_reads, 1) < 0)
        goto done;
    ((ClientBaseObject *)self)->batch_ran = 0;
    if (sized) {
        PyObject *called = PyObject_CallMethod(query_buffer, "read", "in", 0, size);
        if (called == NULL)
            goto done;
        Py_DECREF(called);
    }
    Py_ssize_t consumed = run_reads(self, server, keyspace, PyBytes_AS_STRING(data), size, &reply);
    if (consumed < 0)
        goto done;
    if (consumed < size) { /* Python takes the rest of the read */
        if (spill(&reply, self) < 0)
            goto done;
        PyObject *at = PyLong_FromSsize_t(consumed);
        result = at == NULL ? NULL
                            : PyObject_CallMethodObjArgs(self, s_read_rest, data, at, sized ? Py_True : Py_False, NULL);
        Py_XDECREF(at);
        goto done;
    }
    r = write_replies(self, server, &reply);
    if (r < 0)
        goto done;
    if (r == 0) {
        if (spill(&reply, self) < 0)
            goto done;
        PyObject *flushed = PyObject_CallMethodNoArgs(self, s_flush);
        if (flushed == NULL)
            goto done;
        Py_DECREF(flushed);
    }
    if (sized) {
        PyObject *last = PyObject_CallMethod(query_buffer, "big_argument_at_end", "O", data);
        PyObject *called = last == NULL ? NULL : PyObject_CallMethod(query_buffer, "settle", "iiO", 0, -1, last);
        Py_XDECREF(last);
        if (called == NULL)
            goto done;
        Py_DECREF(called);
    }
    result = Py_NewRef(Py_None);
done:
    out_give_back(&reply);
    Py_DECREF(server);
    Py_DECREF(keyspace);
    Py_DECREF(query_buffer);
    return result;
}

static PyMethodDef client_base_methods[] = {
    {"data_received", client_data_received, METH_O,
     "data_received(data): a read of the connection (the common case in C, the rest Client.received's)"},
    {"write_directly", (PyCFunction)(void (*)(void))client_write_directly, METH_FASTCALL,
     "write_directly(transport, fd, signals=False): the socket a read's replies may be written to while "
     "transport is the client's and holds nothing (signals: its pause_writing/resume_writing say when it "
     "holds bytes, kept in _write_held; None, -1: none)"},
    {NULL, NULL, 0, NULL},
};

/* The per-read values as Python sees them (server.Client's attributes of these names). */
static PyMemberDef client_base_members[] = {
    {"last_interaction", T_DOUBLE, offsetof(ClientBaseObject, last_interaction), 0,
     "time.time() of the client's last command batch (CLIENT LIST idle)"},
    {"reply_buffer_peak", T_LONGLONG, offsetof(ClientBaseObject, reply_buffer_peak), 0,
     "the most the reply buffer held this period (CLIENT LIST rbp)"},
    {"_batch_ran", T_PYSSIZET, offsetof(ClientBaseObject, batch_ran), 0,
     "bytes of this read already run and gone from the buffers (query_buffer_size)"},
    {"_write_held", T_BOOL, offsetof(ClientBaseObject, write_held), 0,
     "the transport holds bytes the socket did not take (between its pause_writing and resume_writing)"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ClientBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._fastpath.ClientBase",
    .tp_basicsize = sizeof(ClientBaseObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "server.Client's base: data_received's common case in C, and the per-read values it writes",
    .tp_methods = client_base_methods,
    .tp_members = client_base_members,
    .tp_new = PyType_GenericNew,
};

/* ServerBase: dispatch.Server's C base, holding the counters every read and command adds to (a
 * plain read then writes nothing to the server's __dict__: see Memo). */
static PyMemberDef server_base_members[] = {
    {"stat_commands", T_LONGLONG, offsetof(ServerBaseObject, stat_commands), 0, "INFO total_commands_processed"},
    {"stat_net_input", T_LONGLONG, offsetof(ServerBaseObject, stat_net_input), 0, "INFO total_net_input_bytes"},
    {"stat_net_output", T_LONGLONG, offsetof(ServerBaseObject, stat_net_output), 0, "INFO total_net_output_bytes"},
    {"stat_reads", T_LONGLONG, offsetof(ServerBaseObject, stat_reads), 0, "INFO total_reads_processed's reads"},
    {"stat_writes", T_LONGLONG, offsetof(ServerBaseObject, stat_writes), 0, "INFO total_writes_processed"},
    {"current_client", T_OBJECT, offsetof(ServerBaseObject, current_client), 0,
     "the client whose command runs or ran last (None: none yet)"},
    {NULL, 0, 0, 0, NULL},
};

/* CommandBase: registry.Command's C base, holding its INFO commandstats counts (the loop adds a
 * batch's calls without writing the command's __dict__). */
static PyMemberDef command_base_members[] = {
    {"calls", T_LONGLONG, offsetof(CommandBaseObject, calls), 0, "INFO commandstats calls"},
    {"usec", T_LONGLONG, offsetof(CommandBaseObject, usec), 0, "INFO commandstats usec"},
    {NULL, 0, 0, 0, NULL},
};

/* A base class that only holds counters as members: NAME's type object, NAMEType. */
#define COUNTER_BASE(NAME, members_, doc_)                                                              \
    static PyTypeObject NAME##Type = {                                                                \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._fastpath." #NAME,                         \
        .tp_basicsize = sizeof(NAME##Object),                                                         \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,                                         \
        .tp_doc = doc_,                                                                               \
        .tp_members = members_,                                                                       \
        .tp_new = PyType_GenericNew,                                                                  \
    }

COUNTER_BASE(CommandBase, command_base_members, "commands.registry.Command's base: its call counts in C");
/* ServerBase holds a reference (current_client), so it takes part in the cyclic collector (a client
 * refers to its server). */
static int server_base_traverse(ServerBaseObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->current_client);
    return 0;
}

static int server_base_clear(ServerBaseObject *self) {
    Py_CLEAR(self->current_client);
    return 0;
}

static void server_base_dealloc(ServerBaseObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->current_client);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ServerBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "dumpling._fastpath.ServerBase",
    .tp_basicsize = sizeof(ServerBaseObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "dispatch.Server's base: the read and command counters and current_client in C",
    .tp_members = server_base_members,
    .tp_traverse = (traverseproc)server_base_traverse,
    .tp_clear = (inquiry)server_base_clear,
    .tp_dealloc = (destructor)server_base_dealloc,
    .tp_new = PyType_GenericNew,
};

/* KeyspaceBase: keyspace.Keyspace's C base, holding the counters reads and writes add to (a
 * plain read then writes nothing to the keyspace's __dict__ but a new millisecond's `now`: see
 * keyspace_memo). */
static PyMemberDef keyspace_base_members[] = {
    {"stat_hits", T_LONGLONG, offsetof(KeyspaceBaseObject, stat_hits), 0, "INFO keyspace_hits"},
    {"stat_misses", T_LONGLONG, offsetof(KeyspaceBaseObject, stat_misses), 0, "INFO keyspace_misses"},
    {"dirty", T_LONGLONG, offsetof(KeyspaceBaseObject, dirty), 0, "changes since the last save (INFO rdb_changes_since_last_save)"},
    {NULL, 0, 0, 0, NULL},
};

COUNTER_BASE(KeyspaceBase, keyspace_base_members, "keyspace.Keyspace's base: the hit, miss and change counters in C");

/* configure_reads(Client, namespace): the class whose reads ClientBase.data_received serves, and
 * the module dict whose `_fast_run` switches it (None: off). */
static PyObject *fast_configure_reads(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyType_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "configure_reads(Client: type, namespace: dict)");
        return NULL;
    }
    Py_XSETREF(g_client_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_XSETREF(g_read_switch, Py_NewRef(args[1]));
    g_fast_run_seen = NULL;
    Py_RETURN_NONE;
}

/* find_big_header(data, start) -> int: protocol.find_big_header in C (the reference):
 * the position of the first '*', '~', '>' or '|' at or after start followed by
 * BIG_HEADER_DIGITS digits, or -1.  Called on every read that goes to hiredis, so it
 * is one memchr pass per type byte, each stopping at the best position found so far. */
#define BIG_HEADER_DIGITS 7

static PyObject *fast_find_big_header(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "find_big_header(data, start)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const char *buf = view.buf;
    Py_ssize_t end = view.len, best = -1;
    static const char types[] = {'*', '~', '>', '|'};
    if (start < 0)
        start = 0; /* as re.search does */
    for (size_t t = 0; t < sizeof types; t++) {
        Py_ssize_t p = start, stop = best >= 0 ? best : end;
        while (p < stop) {
            const char *hit = memchr(buf + p, types[t], (size_t)(stop - p));
            if (hit == NULL)
                break;
            p = hit - buf + 1;
            if (end - p < BIG_HEADER_DIGITS)
                break;
            int digits = 0;
            while (digits < BIG_HEADER_DIGITS && buf[p + digits] >= '0' && buf[p + digits] <= '9')
                digits++;
            if (digits == BIG_HEADER_DIGITS) {
                best = p - 1;
                break;
            }
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(best);
}

static PyObject *fast_configure(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 1 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "configure(commands: dict[str, Command])");
        return NULL;
    }
    PyObject *commands[N_COMMANDS];
    for (int i = 0; i < N_COMMANDS; i++) {
        commands[i] = PyDict_GetItemString(args[0], COMMAND_NAMES[i]);
        if (commands[i] == NULL) {
            PyErr_Format(PyExc_KeyError, "command %s missing", COMMAND_NAMES[i]);
            return NULL;
        }
    }
    if (hist_ready() < 0)
        return NULL;
    for (int i = 0; i < N_COMMANDS; i++)
        Py_XSETREF(g_commands[i], Py_NewRef(commands[i]));
    g_configured = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ SORT's ordering */

typedef struct {
    double score;
    const char *p;
    Py_ssize_t n;
    PyObject *element; /* borrowed from the caller's list */
} Scored;

/* Redis's sortCompare for numeric weights: by score, equal scores in binary order of the
 * elements (compareStringObjects: memcmp, then the shorter first). */
static int scored_cmp(const void *a, const void *b) {
    const Scored *x = a, *y = b;
    if (x->score < y->score)
        return -1;
    if (x->score > y->score)
        return 1;
    int c = memcmp(x->p, y->p, (size_t)(x->n < y->n ? x->n : y->n));
    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

static int scored_cmp_desc(const void *a, const void *b) { return scored_cmp(b, a); }

static inline void scored_swap(Scored *items, Py_ssize_t i, Py_ssize_t j) {
    Scored t = items[i];
    items[i] = items[j];
    items[j] = t;
}

/* Rearrange items[0, n) so that its first k (0 < k < n) are the k first in cmp's order, in any
 * order among themselves (what Redis's pqsort leaves sorted for a LIMIT): a quickselect, the
 * pivot the median of three, each round a three-way partition (so equal elements, a list of one
 * value repeated, take one round); after 64 rounds the rest of the range is sorted whole, so no
 * input makes it quadratic. */
static void select_first(Scored *items, Py_ssize_t n, Py_ssize_t k, int (*cmp)(const void *, const void *)) {
    Py_ssize_t lo = 0, hi = n; /* the k-th lies in [lo, hi) */
    for (int round = 0; hi - lo > 1; round++) {
        if (round == 64) {
            qsort(items + lo, (size_t)(hi - lo), sizeof(Scored), cmp);
            return;
        }
        Py_ssize_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (cmp(&items[mid], &items[lo]) < 0)
            scored_swap(items, mid, lo);
        if (cmp(&items[last], &items[lo]) < 0)
            scored_swap(items, last, lo);
        if (cmp(&items[last], &items[mid]) < 0)
            scored_swap(items, last, mid);
        Scored pivot = items[mid];
        /* [lo, lt) before the pivot, [lt, i) equal to it, [gt, hi) after it */
        Py_ssize_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            int c = cmp(&items[i], &pivot);
            if (c < 0)
                scored_swap(items, lt++, i++);
            else if (c > 0)
                scored_swap(items, i, --gt);
            else
                i++;
        }
        if (k <= lt)
            hi = lt;
        else if (k <= gt)
            return; /* the k-th is among the pivot's equals: [0, k) holds the k first */
        else
            lo = gt;
    }
}

/* The elements of `items` in sortCompare's order, as a new list, only the first `needed` when
 * 0 <= needed < n / 8 (a small LIMIT: selected, then only those sorted); frees `items`. */
static PyObject *sorted_elements(Scored *items, Py_ssize_t n, int desc, Py_ssize_t needed) {
    int (*cmp)(const void *, const void *) = desc ? scored_cmp_desc : scored_cmp;
    if (needed >= 0 && needed < n / 8) {
        if (needed > 0)
            select_first(items, n, needed, cmp);
        n = needed;
    }
    qsort(items, (size_t)n, sizeof(Scored), cmp);
    PyObject *out = PyList_New(n);
    if (out != NULL) {
        for (Py_ssize_t i = 0; i < n; i++)
            PyList_SET_ITEM(out, i, Py_NewRef(items[i].element));
    }
    PyMem_Free(items);
    return out;
}

/* A SORT weight as Redis's strtod reads it, for the plain decimal forms only ([+-]digits[.digits]
 * [e[+-]digits]): 1 and *out set, or 0 for anything else (NUL, spaces, hex, inf, nan, overflow,
 * underflow: the Python reader decides those, errors included). */
static int plain_weight(const char *p, Py_ssize_t n, double *out) {
    char text[320];
    if (n == 0 || n >= (Py_ssize_t)sizeof text)
        return 0;
    int digits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= '0' && ch <= '9')
            digits++;
        else if (ch != '.' && ch != '-' && ch != '+' && ch != 'e' && ch != 'E')
            return 0;
    }
    if (!digits)
        return 0;
    memcpy(text, p, (size_t)n);
    text[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text + n || errno == ERANGE || v != v)
        return 0;
    *out = v;
    return 1;
}

/* One weight of sort_scored (a float) or sort_weighted (plain decimal bytes, or None for 0):
 * 1 and *out set, 0 when the C ordering does not apply. */
static int read_weight(PyObject *weight, int parse, double *out) {
    if (!parse) {
        if (!PyFloat_CheckExact(weight))
            return 0;
        *out = PyFloat_AS_DOUBLE(weight);
        return 1;
    }
    if (weight == Py_None) {
        *out = 0.0;
        return 1;
    }
    return PyBytes_CheckExact(weight) && plain_weight(PyBytes_AS_STRING(weight), PyBytes_GET_SIZE(weight), out);
}

/* The body of sort_scored / sort_weighted: the elements in SORT's numeric order, or None. */
static PyObject *sort_numeric(PyObject *const *args, Py_ssize_t nargs, int parse) {
    if (nargs < 3 || nargs > 4 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1]) ||
        PyList_GET_SIZE(args[0]) != PyList_GET_SIZE(args[1]))
        Py_RETURN_NONE;
    int desc = PyObject_IsTrue(args[2]);
    if (desc < 0)
        return NULL;
    Py_ssize_t needed = -1;
    if (nargs == 4 && (needed = PyLong_AsSsize_t(args[3])) == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(args[1]);
    Scored *items = PyMem_Malloc(sizeof(Scored) * (size_t)(n ? n : 1));
    if (items == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *element = PyList_GET_ITEM(args[1], i);
        if (!PyBytes_CheckExact(element) || !read_weight(PyList_GET_ITEM(args[0], i), parse, &items[i].score)) {
            PyMem_Free(items);
            Py_RETURN_NONE;
        }
        items[i].p = PyBytes_AS_STRING(element);
        items[i].n = PyBytes_GET_SIZE(element);
        items[i].element = element;
    }
    return sorted_elements(items, n, desc, needed);
}

/* sort_scored(scores: list[float], elements: list[bytes], desc: bool, needed: int = -1) -> list |
 * None: the elements in SORT's order for those weights (only the first `needed` when that is
 * under an eighth of them: a small LIMIT); None if an argument is not of those exact types (the
 * caller's Python ordering applies then). */
static PyObject *fast_sort_scored(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return sort_numeric(args, nargs, 0);
}

/* sort_weighted(weights: list[bytes | None], elements: list[bytes], desc, needed=-1) -> list |
 * None: SORT's numeric order with the weights read here (None weighs 0, as a missing BY key), cut
 * as sort_scored cuts it; None if a weight is not a plain decimal or an argument not of those
 * types (Python orders them then). Every weight is read whatever `needed` is. */
static PyObject *fast_sort_weighted(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return sort_numeric(args, nargs, 1);
}

/* encode_flat(value: list, resp3: bool, nested: bool = True) -> bytes | None: protocol.encode
 * of an array of any size whose elements are scalars (bytes, bytearray, int64, None) or, with
 * `nested`, what the read loop's encode_value writes (nested arrays such as XRANGE's entries,
 * Map, SetReply, Double...); None for any other shape (Python encodes it then). */
static PyObject *fast_encode_flat(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 2 || nargs > 3 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "encode_flat(value: list, resp3: bool, nested: bool = True)");
        return NULL;
    }
    int resp3 = PyObject_IsTrue(args[1]);
    int nested = nargs == 3 ? PyObject_IsTrue(args[2]) : 1;
    if (resp3 < 0 || nested < 0)
        return NULL;
    PyObject *list = args[0];
    Py_ssize_t n = PyList_GET_SIZE(list);
    Out o = {NULL, 0, 0};
    size_t guess = 16 + (size_t)n * 16;
    if (out_reserve(&o, guess) < 0 || out_number(&o, '*', (long long)n) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        /* A big reply's elements lie all over the heap (a sorted or random order): fetching
         * the one 8 ahead while this one is written hides most of a cache miss each. */
        if (i + 8 < PyList_GET_SIZE(list))
            __builtin_prefetch(PyList_GET_ITEM(list, i + 8));
        int r = encode_scalar(&o, PyList_GET_ITEM(list, i), resp3);
        if (r == 0 && nested)
            r = encode_value(&o, PyList_GET_ITEM(list, i), resp3, 1, SIZE_MAX);
        if (r < 0)
            goto fail;
        if (r == 0) {
            PyMem_Free(o.buf);
            Py_RETURN_NONE;
        }
    }
    PyObject *result = PyBytes_FromStringAndSize(o.buf, (Py_ssize_t)o.len);
    PyMem_Free(o.buf);
    return result;
fail:
    PyMem_Free(o.buf);
    return NULL;
}

/* ------------------------------------------------------------------ the keyspace's lookups */

/* Database.lookup_read / lookup_write and Keyspace.changed in C, for every command's handler
 * (install_keyspace puts them on the classes as method descriptors; keyspace.py's methods stay
 * the reference, and what runs for anything but the common case: a key whose TTL has passed,
 * LFU, keyspace notifications, CLIENT NO-TOUCH, WATCH, hooks, tracking, maxmemory's written
 * keys).  A Database's KeyTable and expiry dict are read at its slots' offsets, the Keyspace's
 * settings and counters in its instance dict. */
static PyObject *g_ref_lookup_read, *g_ref_lookup_write, *g_ref_changed, *g_ref_add; /* the Python references */
static PyObject *g_untrack, *g_hide; /* collector.untrack / hide: what collector.stored calls */
static PyObject *s_written, *s_change_hook, *s_blocked_keys, *s_store_hooks;

/* The Keyspace's instance dict (borrowed), or NULL without an exception when it has none. */
static PyObject *keyspace_dict(PyObject *ks) {
    PyObject **dict = _PyObject_GetDictPtr(ks);
    return dict != NULL && *dict != NULL && PyDict_CheckExact(*dict) ? *dict : NULL;
}

/* dict[name] as a borrowed reference; NULL (no exception) when absent. */
static inline PyObject *dict_item(PyObject *dict, PyObject *name) {
    return PyDict_GetItemWithError(dict, name);
}

/* The database's KeyTable and keyspace dict when the C lookup can run: 1, 0 (use the
 * reference), -1 error.  The key's TTL, if any, must be still to come at the command time
 * snapshot. */
static int lookup_state(PyObject *db, PyObject *key, PyObject **data, PyObject **ksdict) {
    char *base = (char *)db;
    PyObject *ks = *(PyObject **)(base + g_db_offsets[0]);
    *data = *(PyObject **)(base + g_db_offsets[1]);
    PyObject *expires = *(PyObject **)(base + g_db_offsets[2]);
    if (ks == NULL || *data == NULL || expires == NULL || !native_is_keytable(*data) ||
        !PyDict_CheckExact(expires) || (*ksdict = keyspace_dict(ks)) == NULL)
        return 0;
    PyObject *v = dict_item(*ksdict, s_lfu); /* LFU's touch, CLIENT NO-TOUCH: the reference */
    if (v != Py_False)
        return v == NULL && PyErr_Occurred() ? -1 : 0;
    v = dict_item(*ksdict, s_no_touch);
    if (v != Py_False)
        return v == NULL && PyErr_Occurred() ? -1 : 0;
    if (PyDict_GET_SIZE(expires) != 0) {
        PyObject *when = PyDict_GetItemWithError(expires, key);
        if (when != NULL) { /* expire_if_needed: still to come (ks.now <= when) reads as no TTL */
            PyObject *now = dict_item(*ksdict, s_now);
            if (now == NULL || !PyLong_CheckExact(now) || !PyLong_CheckExact(when))
                return PyErr_Occurred() ? -1 : 0;
            int passed = PyObject_RichCompareBool(now, when, Py_GT);
            if (passed != 0)
                return passed < 0 ? -1 : 0;
        } else if (PyErr_Occurred()) {
            return -1;
        }
    }
    return 1;
}

/* lru_clock(keyspace.now) in *field (the touch with an LRU policy): 0, or -1 on an error. */
static int lru_field(PyObject *ksdict, uint32_t *field) {
    PyObject *now = dict_item(ksdict, s_now);
    if (now == NULL || !PyLong_CheckExact(now)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "keyspace.now is not an int");
        return -1;
    }
    int overflow;
    long long ms = PyLong_AsLongLongAndOverflow(now, &overflow); /* (PyLong_AsLongLong of a two-digit int
                                                                  * takes _PyLong_AsByteArray's slow path) */
    if ((ms == -1 && PyErr_Occurred()) || overflow) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OverflowError, "keyspace.now is out of range");
        return -1;
    }
    *field = native_lru_clock(ms);
    return 0;
}

/* ks.<counter> += amount: KeyspaceBase's member at `offset` when ks is one and amount an int of
 * C size, else ksdict[name] += amount (an int counter in the keyspace's dict). */
#define KEYSPACE_STAT(field) offsetof(KeyspaceBaseObject, field)
static int count_in(PyObject *ks, PyObject *ksdict, size_t offset, PyObject *name, PyObject *amount) {
    if (is_keyspace_base(ks)) {
        int overflow = 0;
        long long n = PyLong_CheckExact(amount) ? PyLong_AsLongLongAndOverflow(amount, &overflow) : 0;
        if (PyLong_CheckExact(amount) && !overflow) {
            *(long long *)((char *)ks + offset) += n;
            return 0;
        }
        if (overflow == 0 && PyErr_Occurred())
            return -1;
        /* (another amount: `ks.name += amount` as the reference does it, with its errors) */
        PyObject *v = PyObject_GetAttr(ks, name);
        PyObject *sum = v == NULL ? NULL : PyNumber_InPlaceAdd(v, amount);
        Py_XDECREF(v);
        int r = sum == NULL ? -1 : PyObject_SetAttr(ks, name, sum);
        Py_XDECREF(sum);
        return r;
    }
    PyObject *v = dict_item(ksdict, name);
    if (v == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_AttributeError, name);
        return -1;
    }
    PyObject *sum = PyNumber_Add(v, amount);
    int bad = sum == NULL || PyDict_SetItem(ksdict, name, sum) < 0;
    Py_XDECREF(sum);
    return bad ? -1 : 0;
}

static PyObject *g_one; /* the int 1 */

static PyObject *reference(PyObject *ref, PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *stack[8];
    Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    if (n >= 8) {
        PyErr_SetString(PyExc_TypeError, "too many arguments");
        return NULL;
    }
    stack[0] = self;
    for (Py_ssize_t i = 0; i < n; i++)
        stack[i + 1] = args[i];
    return PyObject_Vectorcall(ref, stack, (size_t)(nargs + 1), kwnames);
}

static PyObject *db_lookup_read(PyObject *db, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 1)
        return reference(g_ref_lookup_read, db, args, nargs, NULL);
    PyObject *data, *ksdict;
    int r = lookup_state(db, args[0], &data, &ksdict);
    if (r < 0)
        return NULL;
    PyObject *flags = r ? dict_item(ksdict, s_notify_flags) : NULL; /* a keymiss event: the reference */
    if (r == 0 || flags == NULL || !PyUnicode_CheckExact(flags) || PyUnicode_GET_LENGTH(flags) != 0)
        return PyErr_Occurred() ? NULL : reference(g_ref_lookup_read, db, args, nargs, NULL);
    uint32_t field;
    if (lru_field(ksdict, &field) < 0)
        return NULL;
    PyObject *ks = *(PyObject **)((char *)db + g_db_offsets[0]); /* (lookup_state found it) */
    KtEntry *e = native_kt->find(data, args[0]);
    if (e == NULL) {
        if (count_in(ks, ksdict, KEYSPACE_STAT(stat_misses), s_stat_misses, g_one) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    e->field = field;
    PyObject *value = Py_NewRef(e->value); /* (before count_in, which runs code) */
    if (count_in(ks, ksdict, KEYSPACE_STAT(stat_hits), s_stat_hits, g_one) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

static PyObject *db_lookup_write(PyObject *db, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 1)
        return reference(g_ref_lookup_write, db, args, nargs, NULL);
    PyObject *data, *ksdict;
    int r = lookup_state(db, args[0], &data, &ksdict);
    if (r <= 0)
        return r < 0 ? NULL : reference(g_ref_lookup_write, db, args, nargs, NULL);
    uint32_t field;
    if (lru_field(ksdict, &field) < 0)
        return NULL;
    KtEntry *e = native_kt->find(data, args[0]);
    if (e == NULL)
        Py_RETURN_NONE;
    e->field = field;
    return Py_NewRef(e->value);
}

/* Database.add(key, value) (dbAdd) on a database without a slot index, under an
 * LRU policy, when no client is blocked on a key; a collection is handed to the store hooks. */
static PyObject *db_add(PyObject *db, PyObject *const *args, Py_ssize_t nargs) {
    char *base = (char *)db;
    PyObject *ks = *(PyObject **)(base + g_db_offsets[0]);
    PyObject *data = *(PyObject **)(base + g_db_offsets[1]);
    PyObject *ksdict = nargs == 2 && ks != NULL ? keyspace_dict(ks) : NULL;
    if (ksdict == NULL || data == NULL || !native_is_keytable(data) ||
        *(PyObject **)(base + g_db_offsets[3]) != Py_None)
        return reference(g_ref_add, db, args, nargs, NULL);
    PyObject *key = args[0], *value = args[1];
    int string = PyBytes_CheckExact(value) || PyByteArray_CheckExact(value);
    PyObject *v;
    if ((v = dict_item(ksdict, s_lfu)) != Py_False)
        return v == NULL && PyErr_Occurred() ? NULL : reference(g_ref_add, db, args, nargs, NULL);
    PyObject *hooks = NULL;
    if (!string) {
        PyObject *blocked = dict_item(ksdict, s_blocked_keys);
        hooks = blocked == NULL ? NULL : dict_item(ksdict, s_store_hooks);
        if (hooks == NULL || !PyDict_CheckExact(blocked) || PyDict_GET_SIZE(blocked) != 0 || !PyList_CheckExact(hooks))
            return PyErr_Occurred() ? NULL : reference(g_ref_add, db, args, nargs, NULL);
    }
    uint32_t field;
    KtEntry *e;
    if (lru_field(ksdict, &field) < 0 || native_kt->store(data, key, value, field, &e) < 0)
        return NULL;
    e->field = field; /* (a key that was there after all gets the new key's field, as the reference) */
    if (!string && PyObject_IS_GC(value) && PyObject_GC_IsTracked(value)) {
        /* collector.stored: out of the cyclic GC's full collections (its hide(data) is nothing to
         * do for a KeyTable, which is no GC type; untrack returns at once for a value made
         * untracked, as native HSET's new hashes are) */
        PyObject *r = PyObject_CallOneArg(g_untrack, value);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    if (hooks != NULL && native_store_hooks(hooks, db, key, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Keyspace.changed(db, key, event=None, cls="g", dirty=1) when nothing but the counter needs
 * it: no maxmemory (written), WATCH, change hook (AOF, replication), tracking, or an event with
 * notifications on. */
static PyObject *ks_changed(PyObject *ks, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *ksdict = kwnames == NULL && nargs >= 2 && nargs <= 5 ? keyspace_dict(ks) : NULL;
    if (ksdict == NULL)
        return reference(g_ref_changed, ks, args, nargs, kwnames);
    PyObject *v;
    if ((v = dict_item(ksdict, s_written)) != Py_None || (v = dict_item(ksdict, s_change_hook)) != Py_None ||
        (v = dict_item(ksdict, s_tracking)) != Py_None)
        return v == NULL && PyErr_Occurred() ? NULL : reference(g_ref_changed, ks, args, nargs, kwnames);
    v = dict_item(ksdict, s_watched);
    if (v == NULL || !PyDict_CheckExact(v) || PyDict_GET_SIZE(v) != 0)
        return PyErr_Occurred() ? NULL : reference(g_ref_changed, ks, args, nargs, kwnames);
    if (nargs >= 3 && args[2] != Py_None) {
        v = dict_item(ksdict, s_notify_flags);
        if (v == NULL || !PyUnicode_CheckExact(v) || PyUnicode_GET_LENGTH(v) != 0)
            return PyErr_Occurred() ? NULL : reference(g_ref_changed, ks, args, nargs, kwnames);
    }
    if (count_in(ks, ksdict, KEYSPACE_STAT(dirty), s_dirty, nargs == 5 ? args[4] : g_one) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef db_lookup_read_def = {"lookup_read", (PyCFunction)(void (*)(void))db_lookup_read, METH_FASTCALL,
                                         "GET-style lookup: lazy expiry, access tracking, hit/miss statistics."};
static PyMethodDef db_lookup_write_def = {"lookup_write", (PyCFunction)(void (*)(void))db_lookup_write, METH_FASTCALL,
                                          "A write's lookup: lazy expiry, access tracking."};
static PyMethodDef db_add_def = {"add", (PyCFunction)(void (*)(void))db_add, METH_FASTCALL,
                                 "Store a key that does not exist (dbAdd)."};
static PyMethodDef ks_changed_def = {"changed", (PyCFunction)(void (*)(void))ks_changed, METH_FASTCALL | METH_KEYWORDS,
                                     "A write modified key: invalidate WATCHes and client caches, count it, notify."};

/* Puts a C method on `cls` in place of the Python function there, which *ref keeps (1), or
 * leaves the class alone (0: already installed). */
static int put_method(PyObject *cls, PyMethodDef *def, PyObject **ref) {
    PyObject *current = PyObject_GetAttrString(cls, def->ml_name);
    if (current == NULL)
        return -1;
    if (!PyFunction_Check(current)) { /* ours already (a second Server in the process) */
        Py_DECREF(current);
        return 0;
    }
    PyObject *descr = PyDescr_NewMethod((PyTypeObject *)cls, def);
    int bad = descr == NULL || PyObject_SetAttrString(cls, def->ml_name, descr) < 0;
    Py_XDECREF(descr);
    if (bad) {
        Py_DECREF(current);
        return -1;
    }
    Py_XSETREF(*ref, current);
    return 1;
}

/* install_keyspace(Database, Keyspace, untrack, hide) -> bool: the C lookups, add() and changed()
 * in place (False: the Database's slots are not the layout this code reads; nothing changed). */
static PyObject *fast_install_keyspace(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyCallable_Check(args[2]) ||
        !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "install_keyspace(Database, Keyspace, untrack, hide)");
        return NULL;
    }
    static const char *const names[4] = {"keyspace", "data", "expires", "slot_index"};
    int r = native_slot_offsets(args[0], names, 4, g_db_offsets);
    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_False);
    if (g_one == NULL && (g_one = PyLong_FromLong(1)) == NULL)
        return NULL;
    Py_XSETREF(g_database_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_XSETREF(g_untrack, Py_NewRef(args[2]));
    Py_XSETREF(g_hide, Py_NewRef(args[3]));
    if (put_method(args[0], &db_lookup_read_def, &g_ref_lookup_read) < 0 ||
        put_method(args[0], &db_add_def, &g_ref_add) < 0 ||
        put_method(args[0], &db_lookup_write_def, &g_ref_lookup_write) < 0 ||
        put_method(args[1], &ks_changed_def, &g_ref_changed) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

/* ------------------------------------------------------------------ argument integers */

/* 1 with the text of a bytes/bytearray argument, 0 (TypeError set) for anything else. */
static int argument_text(PyObject *arg, const char **p, Py_ssize_t *n) {
    if (PyBytes_Check(arg)) {
        *p = PyBytes_AS_STRING(arg);
        *n = PyBytes_GET_SIZE(arg);
        return 1;
    }
    if (PyByteArray_Check(arg)) {
        *p = PyByteArray_AS_STRING(arg);
        *n = PyByteArray_GET_SIZE(arg);
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "a bytes-like argument is required, not %.100s", Py_TYPE(arg)->tp_name);
    return 0;
}

/* parse_int64(text) -> int | None: numbers.parse_int64 in C (_native.h's string2ll). */
static PyObject *fast_parse_int64(PyObject *self, PyObject *arg) {
    const char *p;
    Py_ssize_t n;
    long long v;
    if (!argument_text(arg, &p, &n))
        return NULL;
    if (!native_string2ll(p, n, &v))
        Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

static PyObject *g_int_error;   /* errors.CommandError (configure_ints) */
static PyObject *g_not_integer; /* errors.NOT_INTEGER, to_int's default message */

/* to_int(arg, error=NOT_INTEGER) -> int: commands.common.to_int in C (one call where the
 * Python one made two), raising CommandError(error) for anything but a canonical int64. */
static PyObject *fast_to_int(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2 || g_int_error == NULL) {
        PyErr_SetString(PyExc_TypeError, "to_int(arg, error=NOT_INTEGER) after configure_ints()");
        return NULL;
    }
    const char *p;
    Py_ssize_t n;
    long long v;
    if (!argument_text(args[0], &p, &n))
        return NULL;
    if (native_string2ll(p, n, &v))
        return PyLong_FromLongLong(v);
    PyObject *error = PyObject_CallOneArg(g_int_error, nargs == 2 ? args[1] : g_not_integer);
    if (error != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    return NULL;
}

static PyObject *fast_configure_ints(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyType_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "configure_ints(CommandError, NOT_INTEGER)");
        return NULL;
    }
    Py_XSETREF(g_int_error, Py_NewRef(args[0]));
    Py_XSETREF(g_not_integer, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static PyObject *fast_configure_general(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8 || !PyDict_Check(args[0]) || !PyType_Check(args[1]) || !PyCallable_Check(args[3]) ||
        !PyType_Check(args[4]) || !PyType_Check(args[5]) || !PyType_Check(args[6]) || !PyType_Check(args[7])) {
        PyErr_SetString(PyExc_TypeError, "configure_general(table: dict[bytes, Command], Status, NO_REPLY, "
                                         "acl_check, Raw, Double, Map, SetReply)");
        return NULL;
    }
    Py_XSETREF(g_double_type, Py_NewRef(args[5]));
    Py_XSETREF(g_map_type, Py_NewRef(args[6]));
    Py_XSETREF(g_set_type, Py_NewRef(args[7]));
    Py_XSETREF(g_raw_type, Py_NewRef(args[4]));
    Py_XSETREF(g_acl_check, Py_NewRef(args[3]));
    Py_XSETREF(g_general, Py_NewRef(args[0]));
    Py_CLEAR(g_last_name); /* the cache of the last lookup belongs to the old table */
    Py_CLEAR(g_last_entry);
    Py_XSETREF(g_status_type, Py_NewRef(args[1]));
    Py_XSETREF(g_no_reply, Py_NewRef(args[2]));
    /* (a type whose `wire` is no plain slot has it read by getattr) */
    static const char *const wire[1] = {"wire"};
    for (int i = 0; i < 2; i++) {
        Py_ssize_t *offset = i == 0 ? &g_status_wire : &g_raw_wire;
        int r = native_slot_offsets(i == 0 ? g_status_type : g_raw_type, wire, 1, offset);
        if (r < 0)
            return NULL;
        if (r == 0)
            *offset = -1;
    }
    Py_RETURN_NONE;
}

static PyObject *fast_commands(PyObject *self, PyObject *unused) {
    PyObject *names = PyTuple_New(N_COMMANDS);
    if (names == NULL)
        return NULL;
    for (int i = 0; i < N_COMMANDS; i++) {
        PyObject *s = PyUnicode_FromString(COMMAND_NAMES[i]);
        if (s == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, s);
    }
    return names;
}

/* keys_allowed(rule, argv) for tests: the C loop's answer for a request's argument list */
static PyObject *fast_keys_allowed(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[1]) || PyList_GET_SIZE(args[1]) > INT_MAX) {
        PyErr_SetString(PyExc_TypeError, "keys_allowed(rule, argv: list[bytes])");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(args[1]);
    Arg *argv = PyMem_Calloc(n ? n : 1, sizeof(Arg));
    if (argv == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyList_GET_ITEM(args[1], i);
        if (!PyBytes_Check(a)) {
            PyMem_Free(argv);
            PyErr_SetString(PyExc_TypeError, "keys_allowed: argv items must be bytes");
            return NULL;
        }
        argv[i].p = PyBytes_AS_STRING(a);
        argv[i].len = PyBytes_GET_SIZE(a);
    }
    int r = keys_allowed(args[0], argv, (int)n);
    PyMem_Free(argv);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyMethodDef methods[] = {
    {"keys_allowed", (PyCFunction)(void (*)(void))fast_keys_allowed, METH_FASTCALL,
     "keys_allowed(rule, argv) -> whether the C loop runs the request unasked (an acl_keyed entry)"},
    {"run", (PyCFunction)(void (*)(void))fast_run, METH_FASTCALL,
     "run(client, data) -> bytes of data consumed by the requests executed here"},
    {"configure_reads", (PyCFunction)(void (*)(void))fast_configure_reads, METH_FASTCALL,
     "configure_reads(Client, namespace): the class ClientBase.data_received serves, and the dict of its `_fast_run`"},
    {"configure", (PyCFunction)(void (*)(void))fast_configure, METH_FASTCALL,
     "configure(commands): the Command objects whose statistics run() updates"},
    {"configure_general", (PyCFunction)(void (*)(void))fast_configure_general, METH_FASTCALL,
     "configure_general(table, Status, NO_REPLY, acl_check, Raw, Double, Map, SetReply): the plain commands run "
     "through their Python handlers"},
    {"install_keyspace", (PyCFunction)(void (*)(void))fast_install_keyspace, METH_FASTCALL,
     "install_keyspace(Database, Keyspace, untrack, hide) -> bool: Database.lookup_read/lookup_write/add and "
     "Keyspace.changed in C"},
    {"parse_int64", fast_parse_int64, METH_O, "parse_int64(text) -> int or None: numbers.parse_int64 (string2ll)"},
    {"to_int", (PyCFunction)(void (*)(void))fast_to_int, METH_FASTCALL,
     "to_int(arg, error=NOT_INTEGER) -> int: commands.common.to_int"},
    {"configure_ints", (PyCFunction)(void (*)(void))fast_configure_ints, METH_FASTCALL,
     "configure_ints(CommandError, NOT_INTEGER): to_int's error"},
    {"encode_flat", (PyCFunction)(void (*)(void))fast_encode_flat, METH_FASTCALL,
     "encode_flat(value, resp3) -> the RESP encoding of a flat array, or None for another shape"},
    {"sort_weighted", (PyCFunction)(void (*)(void))fast_sort_weighted, METH_FASTCALL,
     "sort_weighted(weights, elements, desc) -> elements in SORT's numeric order, or None (Python decides)"},
    {"sort_scored", (PyCFunction)(void (*)(void))fast_sort_scored, METH_FASTCALL,
     "sort_scored(scores, elements, desc) -> elements in SORT's numeric order, or None for other types"},
    {"commands", fast_commands, METH_NOARGS, "names of the commands this module can run"},
    {"find_big_header", (PyCFunction)(void (*)(void))fast_find_big_header, METH_FASTCALL,
     "find_big_header(data, start) -> position of the first big aggregate header, or -1"},
    {"histogram", fast_histogram, METH_NOARGS, "histogram() -> a new latency histogram (latencyhist.Histogram in C)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dumpling._fastpath",
    "The hot string commands (GET, SET, INCR, MSET, ...) parsed and run in C.", -1, methods,
};

#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL

PyMODINIT_FUNC PyInit__fastpath(void) {
    INTERN(s_reply_mode, "reply_mode");
    INTERN(s_multi, "multi");
    INTERN(s_authenticated, "unrestricted"); /* authenticated and no ACL check needed */
    INTERN(s_blocked, "blocked");
    INTERN(s_closed, "closed");
    INTERN(s_close_after, "flags_close_after_reply");
    INTERN(s_no_touch, "no_touch");
    INTERN(s_skip_this, "skip_this");
    INTERN(s_resp3, "resp3");
    INTERN(s_channels, "channels");
    INTERN(s_patterns, "patterns");
    INTERN(s_shard_channels, "shard_channels");
    INTERN(s_strict, "_strict");
    INTERN(s_db, "db");
    INTERN(s_data, "data");
    INTERN(s_expires, "expires");
    INTERN(s_slot_index, "slot_index");
    g_db_names = (NativeDbNames){s_db, s_slot_index, s_data, s_expires};
    INTERN(s_out, "_out");
    INTERN(s_last_cmd, "last_cmd");
    INTERN(s_last_interaction, "last_interaction");
    INTERN(s_cluster, "cluster");
    INTERN(s_key_gate, "key_gate");
    INTERN(s_pause_gate, "pause_gate");
    INTERN(s_command_gate, "command_gate");
    INTERN(s_maxmemory, "maxmemory");
    INTERN(s_monitors, "monitors");
    INTERN(s_in_exec, "in_exec");
    INTERN(s_slowlog_threshold, "slowlog_threshold");
    INTERN(s_watched, "watched");
    INTERN(s_tracking, "tracking");
    INTERN(s_notify_flags, "notify_flags");
    INTERN(s_lfu, "lfu");
    INTERN(s_loading, "loading");
    INTERN(s_now, "now");
    INTERN(s_stat_hits, "stat_hits");
    INTERN(s_stat_misses, "stat_misses");
    INTERN(s_dirty, "dirty");
    INTERN(s_stat_commands, "stat_commands");
    INTERN(s_current_client, "current_client");
    INTERN(s_server, "server");
    INTERN(s_keyspace, "keyspace");
    INTERN(s_calls, "calls");
    INTERN(s_usec, "usec");
    INTERN(s_name, "name");
    INTERN(s_slowlog_push, "slowlog_push");
    INTERN(s_wire, "wire");
    INTERN(s_ready_keys, "ready_keys");
    INTERN(s_pending_pushes, "pending_pushes");
    INTERN(s_finish_plain, "finish_plain");
    INTERN(s_call_hooks, "call_hooks");
    INTERN(s_tracking_caching, "tracking_caching");
    INTERN(s_arity, "arity");
    INTERN(s_handler, "handler");
    INTERN(s_begin, "begin");
    INTERN(s_end, "end");
    INTERN(s_handler_error, "handler_error");
    INTERN(s_reject, "reject");
    INTERN(s_logged_in, "authenticated");
    INTERN(s_twins_ok, "twins_ok");
    INTERN(s_acl_free, "acl_free");
    INTERN(s_acl_keyed, "acl_keyed");
    INTERN(s_value, "value");
    INTERN(s_written, "written");
    INTERN(s_change_hook, "change_hook");
    INTERN(s_blocked_keys, "blocked_keys");
    INTERN(s_store_hooks, "store_hooks");
    INTERN(s_pairs, "pairs");
    INTERN(s_items, "items");
    INTERN(s_received, "received");
    INTERN(s_read_rest, "_read_rest");
    INTERN(s_flush, "flush");
    INTERN(s_close, "close");
    INTERN(s_fast_run, "_fast_run");
    INTERN(s_carry, "_carry");
    INTERN(s_held, "_held");
    INTERN(s_retained, "_retained");
    INTERN(s_query_buffer, "query_buffer");
    INTERN(s_quiet, "quiet");
    INTERN(s_transport, "transport");
    INTERN(s_batch_ran, "_batch_ran");
    INTERN(s_stat_net_input, "stat_net_input");
    INTERN(s_stat_reads, "stat_reads");
    INTERN(s_stat_net_output, "stat_net_output");
    INTERN(s_stat_writes, "stat_writes");
    INTERN(s_output_check_from, "output_check_from");
    INTERN(s_output_check_from_normal, "output_check_from_normal");
    INTERN(s_pubsub_clients, "pubsub_clients");
    INTERN(s_obuf_soft, "obuf_soft_limit_since");
    INTERN(s_reply_buffer_peak, "reply_buffer_peak");
    INTERN(s_reply_buffer_size, "reply_buffer_size");
    INTERN(s_get_write_buffer_size, "get_write_buffer_size");
    INTERN(s_write, "write");
    INTERN(s_latency, "latency");
    INTERN(s_record, "record");
    INTERN(s_latency_tracking, "latency_tracking");
    for (int i = 0; i < N_COMMANDS; i++) {
        INTERN(s_twin_names[i], COMMAND_NAMES[i]);
        g_twin_words[i] = name_word(COMMAND_NAMES[i], (Py_ssize_t)strlen(COMMAND_NAMES[i]));
    }
    if (PyType_Ready(&ClientBaseType) < 0 || PyType_Ready(&ServerBaseType) < 0 || PyType_Ready(&CommandBaseType) < 0 ||
        PyType_Ready(&KeyspaceBaseType) < 0)
        return NULL;
    native_import_keytable(); /* (none: the twins and C lookups step aside) */
    PyObject *m = PyModule_Create(&module);
    PyObject *twins = m == NULL ? NULL : PyCapsule_New((void *)twin_call, TWIN_CAPSULE, NULL);
    if (twins == NULL || PyModule_AddObjectRef(m, "twin_call", twins) < 0) {
        Py_XDECREF(twins);
        Py_XDECREF(m);
        return NULL;
    }
    Py_DECREF(twins);
    if (PyModule_AddObjectRef(m, "ClientBase", (PyObject *)&ClientBaseType) < 0 ||
        PyModule_AddObjectRef(m, "ServerBase", (PyObject *)&ServerBaseType) < 0 ||
        PyModule_AddObjectRef(m, "CommandBase", (PyObject *)&CommandBaseType) < 0 ||
        PyModule_AddObjectRef(m, "KeyspaceBase", (PyObject *)&KeyspaceBaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    g_d2string = native_import_d2string(); /* (NULL: no _fpconv; Double replies go to Python) */
    return m;
}
