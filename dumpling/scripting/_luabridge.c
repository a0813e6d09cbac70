/*
 * dumpling.scripting._luabridge: redis.call / redis.pcall and the script run as C functions
 * on the lua_State of a lupa runtime, so a run crosses between Python and Lua without lupa's
 * per-call machinery (its lock, argument tuples, debug.traceback lookup, result unpacking).
 *
 * How it gets the lua_State: lupa's lua51 extension module exports the Lua 5.1 C API.  This
 * module resolves the functions it needs from that already-loaded module (dlopen with
 * RTLD_NOLOAD, dlsym: no link-time dependency on lupa), and exports
 * `dumpling_luabridge_open`, a lua_CFunction that the engine (engine.LuaState) loads with
 * Lua's own `package.loadlib(<this file>, "dumpling_luabridge_open")` and calls once through
 * lupa, with a Bridge object waiting in `Bridge.begin_attach()`: the call sees the runtime's
 * lua_State and returns the table of C functions the sandbox installs.
 *
 * What stays in Python (one source of truth): every check of redis.call and the command's
 * execution (`Scripting.call_reply`, called with the arguments as bytes by one vectorcall),
 * and every conversion this file is not sure of: a reply shape other than bulk, integer,
 * nil, status and arrays of those is handed to `fallback(reply)`, which converts it with
 * engine.LuaState.from_reply and leaves it in the stash (`stash`, called through lupa); a
 * run whose result is not a string, a number or nil leaves (ok, value) in the stash for
 * Python's to_reply/_outcome (`take`).  Tests run the same scripts with and without this
 * module and compare replies byte for byte (tests/test_scripting_bridge.py).
 *
 * longjmp: lua_error() leaves a C function without running the rest of it.  The functions
 * below release every Python reference and the GIL state before they raise.  (Lua's memory
 * errors can also jump out of the push functions; lupa's runtimes have no memory limit, so
 * that is an out-of-memory process anyway.)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "../_slots.h"
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../_native.h"

/* ------------------------------------------------------------------ the Lua 5.1 C API */

/* The ABI constants of Lua 5.1's lua.h (lupa.lua51 embeds Lua 5.1). */
typedef struct lua_State lua_State;
typedef double lua_Number;
typedef int (*lua_CFunction)(lua_State *L);
#define LUA_REGISTRYINDEX (-10000)
#define LUA_GLOBALSINDEX (-10002)
#define UPVALUE(i) (LUA_GLOBALSINDEX - (i))
#define LUA_TNIL 0
#define LUA_TBOOLEAN 1
#define LUA_TNUMBER 3
#define LUA_TSTRING 4
#define LUA_TTABLE 5
#define LUA_TFUNCTION 6
#define LUA_TNONE (-1)
#define LUA_MULTRET (-1)
#define LUA_GCSTEP 5
#define LUA_GCCOUNT 3
#define LUA_IDSIZE 60
/* Lua 5.1's lua_Debug (luaconf.h's default LUA_IDSIZE) */
struct lua_Debug {
    int event;
    const char *name, *namewhat, *what, *source;
    int currentline, nups, linedefined, lastlinedefined;
    char short_src[LUA_IDSIZE];
    int i_ci;
};

static struct {
    int (*gettop)(lua_State *);
    void (*settop)(lua_State *, int);
    int (*type)(lua_State *, int);
    const char *(*tolstring)(lua_State *, int, size_t *);
    lua_Number (*tonumber)(lua_State *, int);
    void *(*touserdata)(lua_State *, int);
    int (*toboolean)(lua_State *, int);
    void (*pushlstring)(lua_State *, const char *, size_t);
    void (*pushstring)(lua_State *, const char *);
    void (*pushnumber)(lua_State *, lua_Number);
    void (*pushboolean)(lua_State *, int);
    void (*pushnil)(lua_State *);
    void (*pushvalue)(lua_State *, int);
    void (*pushcclosure)(lua_State *, lua_CFunction, int);
    void *(*newuserdata)(lua_State *, size_t);
    void (*createtable)(lua_State *, int, int);
    void (*rawset)(lua_State *, int);
    void (*rawget)(lua_State *, int);
    void (*rawseti)(lua_State *, int, int);
    void (*rawgeti)(lua_State *, int, int);
    int (*pcall)(lua_State *, int, int, int);
    int (*error)(lua_State *);
    int (*gc)(lua_State *, int, int);
    int (*checkstack)(lua_State *, int);
    void (*insert)(lua_State *, int);
    int (*ref)(lua_State *, int);
    lua_CFunction (*tocfunction)(lua_State *, int);
    int (*getstack)(lua_State *, int, struct lua_Debug *);
    int (*getinfo)(lua_State *, const char *, struct lua_Debug *);
    int (*rawequal)(lua_State *, int, int);
    void (*replace)(lua_State *, int);
    void (*call)(lua_State *, int, int);
    int (*argerror)(lua_State *, int, const char *);
    int (*typerror)(lua_State *, int, const char *);
    int (*isnumber)(lua_State *, int);
    void (*unref)(lua_State *, int, int);
} lua;

static int g_resolved = 0;

/* resolve(path of lupa's lua51 module): find the Lua C API in the loaded module. */
static PyObject *bridge_resolve(PyObject *self, PyObject *arg) {
    if (g_resolved)
        Py_RETURN_TRUE;
    PyObject *encoded = PyUnicode_EncodeFSDefault(arg);
    if (encoded == NULL)
        return NULL;
    void *handle = dlopen(PyBytes_AS_STRING(encoded), RTLD_NOW | RTLD_NOLOAD);
    Py_DECREF(encoded);
    if (handle == NULL)
        Py_RETURN_FALSE; /* not loaded (or not that file): the caller stays on lupa's path */
#define RESOLVE(field, name) if ((*(void **)&lua.field = dlsym(handle, name)) == NULL) goto missing
    RESOLVE(gettop, "lua_gettop");
    RESOLVE(settop, "lua_settop");
    RESOLVE(type, "lua_type");
    RESOLVE(tolstring, "lua_tolstring");
    RESOLVE(tonumber, "lua_tonumber");
    RESOLVE(touserdata, "lua_touserdata");
    RESOLVE(toboolean, "lua_toboolean");
    RESOLVE(pushlstring, "lua_pushlstring");
    RESOLVE(pushstring, "lua_pushstring");
    RESOLVE(pushnumber, "lua_pushnumber");
    RESOLVE(pushboolean, "lua_pushboolean");
    RESOLVE(pushnil, "lua_pushnil");
    RESOLVE(pushvalue, "lua_pushvalue");
    RESOLVE(pushcclosure, "lua_pushcclosure");
    RESOLVE(newuserdata, "lua_newuserdata");
    RESOLVE(createtable, "lua_createtable");
    RESOLVE(rawset, "lua_rawset");
    RESOLVE(rawget, "lua_rawget");
    RESOLVE(rawseti, "lua_rawseti");
    RESOLVE(rawgeti, "lua_rawgeti");
    RESOLVE(pcall, "lua_pcall");
    RESOLVE(error, "lua_error");
    RESOLVE(gc, "lua_gc");
    RESOLVE(checkstack, "lua_checkstack");
    RESOLVE(insert, "lua_insert");
    RESOLVE(ref, "luaL_ref");
    RESOLVE(tocfunction, "lua_tocfunction");
    RESOLVE(getstack, "lua_getstack");
    RESOLVE(getinfo, "lua_getinfo");
    RESOLVE(rawequal, "lua_rawequal");
    RESOLVE(replace, "lua_replace");
    RESOLVE(call, "lua_call");
    RESOLVE(argerror, "luaL_argerror");
    RESOLVE(typerror, "luaL_typerror");
    RESOLVE(isnumber, "lua_isnumber");
    RESOLVE(unref, "luaL_unref");
#undef RESOLVE
    g_resolved = 1;
    /* (the handle stays open: the module stays loaded as long as lupa's runtimes need it) */
    Py_RETURN_TRUE;
missing:
    dlclose(handle);
    Py_RETURN_FALSE;
}

/* ------------------------------------------------------------------ the Bridge object */

/* The Lua side of a bridge: a full userdata, upvalue of every C function it hands out.  It
 * points back at the Python object while that lives (cleared by its dealloc). */
typedef struct Bridge Bridge;
typedef struct {
    Bridge *owner;
} Anchor;

/* What a run whose commands may go to _fastpath's twins (run.twins) reads once: its client,
 * the keyspace, the time snapshot and the statistics settings; and the selected database's
 * dicts, read at the first twin call and again after any command that ran in Python (it may
 * have selected, swapped or flushed a database).  The twins' calls are counted in g_counts
 * (below), not here. */
typedef struct {
    int on;
    PyObject *client, *keyspace;            /* borrowed: the Run holds them */
    PyObject *server_dict, *keyspace_dict, *client_dict; /* their __dict__s (owned) */
    uint32_t clock;                         /* the LRU field of now_ms */
    PyObject *data, *expires;               /* NULL: to be read (client.db; data its KeyTable) */
    long long now_ms, threshold;
    int ready, latency_tracking, wrote;
    PyObject *given_client; /* (borrowed) the run's client, when its starter knows it (ScriptCommand) */
    PyObject *given_db;     /* ...and the Database it gave the client (borrowed; NULL once Python ran a command) */
    int server_checked;     /* ...and found no MONITOR and no maxmemory */
    Py_ssize_t write_dirty_slot; /* ...and the offset of its Run's write_dirty slot (0: unknown) */
    PyObject *const *given_server; /* ...and the server's attributes it read (SV_*, borrowed), */
    uint64_t given_version;        /* valid while the server's __dict__ has this version tag */
} Twins;

struct Bridge {
    PyObject_HEAD
    lua_State *L;
    Anchor *anchor;
    PyObject *call_reply;    /* Scripting.call_reply(*argv) -> the reply (ScriptCallError raised) */
    PyObject *fallback;      /* fallback(reply): convert in Python and stash the Lua value */
    PyObject *number_arg;    /* engine.lua_number_arg(float) -> bytes (non-integral numbers) */
    PyObject *error_type;    /* engine.ScriptCallError */
    PyObject *status_type;   /* protocol.Status */
    PyObject *null_array;    /* protocol.NULL_ARRAY */
    PyObject *stashed;       /* the marker run() returns when the result waits in the stash */
    PyObject *server;        /* the Server: fast_table, call */
    PyObject *server_call;   /* server.call(client, cmd, argv) */
    PyObject *plain_reply;   /* Scripting._plain_reply(reply): Blocked's timeout reply, errors raised */
    PyObject *run;           /* the Run of the script running through run() (borrowed), else NULL */
    Twins twins;             /* the run's C twin route (see twin_route), when run.twins */
    int resp3;               /* redis.setresp(3) in force (nil replies are nil, not false) */
    int runners;             /* registry refs: eval_with, function_with (0: not set) */
    int eval_ref, function_ref, stash_ref, handles_ref;
    int env_ref, keys_name_ref, argv_name_ref; /* the script globals E, the strings "KEYS" and "ARGV" */
    int next_handle;
    long gc_count;           /* runs since Redis's last luaGC step (engine.LuaState.gc_tick) */
    long gc_period;          /* engine.GC_CYCLE_PERIOD: a step every that many runs */
};

static PyTypeObject BridgeType;
static Bridge *g_attaching; /* the bridge begin_attach() offers to the next dumpling_luabridge_open */
static PyObject *s_message, *s_counted, *s_text, *s_unchecked, *s_writes_admitted, *s_write_dirty,
    *s_client, *s_fast_table, *s_noscript, *s_is_write, *s_arity;

/* The Python objects a bridge holds (its LuaState's and Scripting's bound methods, the server):
 * cycles through them must be collectable, or every SCRIPT/FUNCTION FLUSH would keep the old
 * Lua state alive. */
static int bridge_traverse(Bridge *b, visitproc visit, void *arg) {
    Py_VISIT(b->call_reply);
    Py_VISIT(b->fallback);
    Py_VISIT(b->number_arg);
    Py_VISIT(b->error_type);
    Py_VISIT(b->status_type);
    Py_VISIT(b->null_array);
    Py_VISIT(b->stashed);
    Py_VISIT(b->server);
    Py_VISIT(b->server_call);
    Py_VISIT(b->plain_reply);
    return 0;
}

static int bridge_clear(Bridge *b) {
    if (b->anchor != NULL) { /* the Lua side's C functions refuse from now on */
        b->anchor->owner = NULL;
        b->anchor = NULL;
    }
    if (g_attaching == b)
        g_attaching = NULL;
    Py_CLEAR(b->call_reply);
    Py_CLEAR(b->fallback);
    Py_CLEAR(b->number_arg);
    Py_CLEAR(b->error_type);
    Py_CLEAR(b->status_type);
    Py_CLEAR(b->null_array);
    Py_CLEAR(b->stashed);
    Py_CLEAR(b->server);
    Py_CLEAR(b->server_call);
    Py_CLEAR(b->plain_reply);
    return 0;
}

static void bridge_dealloc(Bridge *b) {
    PyObject_GC_UnTrack(b);
    bridge_clear(b);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

/* Bridge(call_reply, fallback, number_arg, ScriptCallError, Status, NULL_ARRAY, stashed, server,
 *        plain_reply) */
static PyObject *bridge_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *call_reply, *fallback, *number_arg, *error_type, *status_type, *null_array, *stashed, *server,
        *plain_reply;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &call_reply, &fallback, &number_arg, &error_type, &status_type,
                          &null_array, &stashed, &server, &plain_reply))
        return NULL;
    PyObject *server_call = PyObject_GetAttrString(server, "call");
    if (server_call == NULL)
        return NULL;
    Bridge *b = (Bridge *)type->tp_alloc(type, 0);
    if (b == NULL) {
        Py_DECREF(server_call);
        return NULL;
    }
    b->server = Py_NewRef(server);
    b->server_call = server_call;
    b->plain_reply = Py_NewRef(plain_reply);
    b->call_reply = Py_NewRef(call_reply);
    b->fallback = Py_NewRef(fallback);
    b->number_arg = Py_NewRef(number_arg);
    b->error_type = Py_NewRef(error_type);
    b->status_type = Py_NewRef(status_type);
    b->null_array = Py_NewRef(null_array);
    b->stashed = Py_NewRef(stashed);
    b->gc_period = 50; /* (LuaState sets engine.GC_CYCLE_PERIOD) */
    return (PyObject *)b;
}

static PyObject *bridge_begin_attach(Bridge *b, PyObject *unused) {
    if (!g_resolved) {
        PyErr_SetString(PyExc_RuntimeError, "the Lua C API is not resolved (resolve())");
        return NULL;
    }
    g_attaching = b;
    Py_RETURN_NONE;
}

static PyObject *bridge_attached(Bridge *b, void *closure) { return PyBool_FromLong(b->L != NULL && b->runners); }

/* ------------------------------------------------------------------ Lua -> Python */

/* The bytes of argument i as luaArgsToRedisArgv makes them (Redis 7.4): a string as it is, a
 * number that is an integer within +-LLONG_MAX/2 (double2ll) in decimal, any other number as
 * fpconv_dtoa prints it (engine.lua_number_arg, in Python: rare); anything else None, which
 * Scripting.call_reply refuses with Redis's error. */
static PyObject *arg_bytes(Bridge *b, lua_State *L, int i) {
    size_t n;
    const char *s;
    switch (lua.type(L, i)) {
    case LUA_TSTRING:
        s = lua.tolstring(L, i, &n);
        return PyBytes_FromStringAndSize(s, (Py_ssize_t)n);
    case LUA_TNUMBER: {
        double d = lua.tonumber(L, i);
        const double half = (double)(LLONG_MAX / 2);
        if (d >= -half && d <= half) {
            long long ll = (long long)d;
            if ((double)ll == d) {
                char digits[24];
                int len = snprintf(digits, sizeof digits, "%lld", ll);
                return PyBytes_FromStringAndSize(digits, len);
            }
        }
        PyObject *number = PyFloat_FromDouble(d);
        if (number == NULL)
            return NULL;
        PyObject *text = PyObject_CallOneArg(b->number_arg, number);
        Py_DECREF(number);
        return text;
    }
    default:
        return Py_NewRef(Py_None);
    }
}

/* ------------------------------------------------------------------ Python -> Lua */

/* Push `reply` as redis.call returns it (engine.LuaState.from_reply) when it is a shape
 * decided here: 1 pushed, 0 not a shape of ours (nothing pushed), -1 Python error. */
static int push_reply(Bridge *b, lua_State *L, PyObject *reply, int depth) {
    if (PyBytes_CheckExact(reply)) {
        lua.pushlstring(L, PyBytes_AS_STRING(reply), (size_t)PyBytes_GET_SIZE(reply));
        return 1;
    }
    if (PyLong_CheckExact(reply)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(reply, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0;
        }
        lua.pushnumber(L, (lua_Number)v);
        return 1;
    }
    if (reply == Py_None || reply == b->null_array) {
        if (b->resp3)
            lua.pushnil(L);
        else
            lua.pushboolean(L, 0);
        return 1;
    }
    if (Py_IS_TYPE(reply, (PyTypeObject *)b->status_type)) {
        PyObject *text = PyObject_GetAttr(reply, s_text);
        if (text == NULL)
            return -1;
        if (!PyBytes_CheckExact(text)) {
            Py_DECREF(text);
            return 0;
        }
        lua.createtable(L, 0, 1);
        lua.pushstring(L, "ok");
        lua.pushlstring(L, PyBytes_AS_STRING(text), (size_t)PyBytes_GET_SIZE(text));
        Py_DECREF(text);
        lua.rawset(L, -3);
        return 1;
    }
    if (PyList_CheckExact(reply) && depth < 8) {
        Py_ssize_t n = PyList_GET_SIZE(reply);
        if (n > INT_MAX || !lua.checkstack(L, 4))
            return 0;
        int top = lua.gettop(L);
        lua.createtable(L, (int)n, 0);
        for (Py_ssize_t i = 0; i < n; i++) {
            int r = push_reply(b, L, PyList_GET_ITEM(reply, i), depth + 1);
            if (r <= 0) {
                lua.settop(L, top);
                return r;
            }
            lua.rawseti(L, -2, (int)(i + 1));
        }
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ redis.call / pcall */

/* The {err=message} table redis.call raises (redis.pcall returns), with Redis's
 * ignore_error_stats_update when the statistics counted the error already. */
static void push_error_table(lua_State *L, const char *message, size_t len, int counted) {
    lua.createtable(L, 0, 2);
    lua.pushstring(L, "err");
    lua.pushlstring(L, message, len);
    lua.rawset(L, -3);
    if (counted) {
        lua.pushstring(L, "ignore_error_stats_update");
        lua.pushboolean(L, 1);
        lua.rawset(L, -3);
    }
}

#define MAX_STACK_ARGS 16

/* The error of a failed call_reply as (message, counted); the exception is cleared. */
static PyObject *take_error(Bridge *b, int *counted) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *message = NULL;
    *counted = 0;
    if (value != NULL && PyObject_TypeCheck(value, (PyTypeObject *)b->error_type)) {
        message = PyObject_GetAttr(value, s_message);
        PyObject *flag = message == NULL ? NULL : PyObject_GetAttr(value, s_counted);
        if (flag != NULL) {
            *counted = PyObject_IsTrue(flag) == 1;
            Py_DECREF(flag);
        }
        if (message != NULL && !PyBytes_Check(message))
            Py_CLEAR(message);
    }
    if (message == NULL) { /* as engine.error_info words any other exception */
        PyErr_Clear();
        const char *name = type != NULL ? ((PyTypeObject *)type)->tp_name : "Exception";
        const char *dot = strrchr(name, '.');
        message = PyBytes_FromFormat("ERR internal error in script call: %s", dot ? dot + 1 : name);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Clear();
    return message;
}

/* 1 if getattr(obj, name) is true, 0 if false, -1 on error. */
static int attr_true(PyObject *obj, PyObject *name) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* The lean branch of Scripting.call_reply, for a call of run() (see there: the run is
 * `unchecked`, the command known, allowed in scripts, of the right arity and, for a write,
 * `writes_admitted`): straight to Server.call.  *reply gets the reply as call_reply returns
 * it.  Returns 1 done, 0 not taken (call_reply decides), -1 Python error (reply NULL). */
static int fast_call(Bridge *b, PyObject *const *args, int argc, PyObject **reply) {
    PyObject *run = b->run, *cmd = NULL, *client = NULL, *argv = NULL, *raw = NULL;
    int r = attr_true(run, s_unchecked);
    if (r <= 0)
        return r;
    PyObject *table = PyObject_GetAttr(b->server, s_fast_table);
    if (table == NULL)
        return -1;
    cmd = PyDict_Check(table) ? PyDict_GetItemWithError(table, args[0]) : NULL;
    Py_XINCREF(cmd);
    Py_DECREF(table);
    if (cmd == NULL)
        return PyErr_Occurred() ? -1 : 0;
    int result = -1;
    if ((r = attr_true(cmd, s_noscript)) != 0) {
        result = r < 0 ? -1 : 0;
        goto done;
    }
    int is_write = attr_true(cmd, s_is_write);
    if (is_write < 0)
        goto done;
    if (is_write && (r = attr_true(run, s_writes_admitted)) != 1) {
        result = r < 0 ? -1 : 0;
        goto done;
    }
    PyObject *arity_obj = PyObject_GetAttr(cmd, s_arity);
    if (arity_obj == NULL)
        goto done;
    long arity = PyLong_AsLong(arity_obj);
    Py_DECREF(arity_obj);
    if (arity == -1 && PyErr_Occurred())
        goto done;
    if (!(argc == arity || (arity < 0 && -arity <= argc))) {
        result = 0;
        goto done;
    }
    if (is_write && PyObject_SetAttr(run, s_write_dirty, Py_True) < 0)
        goto done;
    if ((client = PyObject_GetAttr(run, s_client)) == NULL || (argv = PyList_New(argc)) == NULL)
        goto done;
    for (int i = 0; i < argc; i++)
        PyList_SET_ITEM(argv, i, Py_NewRef(args[i]));
    PyObject *call_args[3] = {client, cmd, argv};
    raw = PyObject_Vectorcall(b->server_call, call_args, 3, NULL);
    if (raw == NULL)
        goto done;
    if (PyBytes_CheckExact(raw) || PyLong_CheckExact(raw)) {
        *reply = Py_NewRef(raw);
    } else if ((*reply = PyObject_CallOneArg(b->plain_reply, raw)) == NULL) {
        goto done;
    }
    result = 1;
done:
    Py_XDECREF(raw);
    Py_XDECREF(argv);
    Py_XDECREF(client);
    Py_DECREF(cmd);
    return result;
}

/* ------------------------------------------------------------------ the twins' route */

/* redis.call of GET, SET, INCR, MSET, ... runs _fastpath's own C twin of the command (the
 * capsule _fastpath.twin_call, _native.h's TwinCall: the request loop's code, not a copy) when
 * Scripting.invoke found the run in the state where Server.call would run only the handler
 * and its statistics (run.twins: see Scripting.twins_allowed).  What Server.call does around
 * the handler is done here, in its order: the current client and its last command, the
 * command's calls, time and latency histogram, the server's command count, SLOWLOG; and what
 * the twin added to the keyspace's hits, misses and dirty counter.  A twin unsure of a request
 * declines it before changing anything and redis.call goes on as without this route. */
static TwinCall g_twin; /* NULL: no _fastpath (pure install, an old build) */
static PyObject *s_keyspace, *s_now, *s_slowlog_threshold, *s_latency_tracking, *s_db, *s_data, *s_expires,
    *s_slot_index, *s_current_client, *s_last_cmd, *s_name, *s_calls, *s_usec, *s_latency,
    *s_record, *s_stat_commands, *s_stat_hits, *s_stat_misses, *s_dirty, *s_twins, *s_slow_call, *s_call_hooks,
    *s_monitors, *s_maxmemory, *s_renamed, *s_tracking, *s_watched, *s_notify_flags, *s_lfu, *s_loading, *s_no_touch;
static PyObject *g_record_latency; /* dispatch.record_latency: a command's first histogram */

#define MAX_TWIN_ARGS 16

static long long wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void twins_clear_db(Twins *t) {
    Py_CLEAR(t->data);
    Py_CLEAR(t->expires);
}

static void twins_end(Twins *t) {
    twins_clear_db(t);
    Py_CLEAR(t->server_dict);
    Py_CLEAR(t->keyspace_dict);
    Py_CLEAR(t->client_dict);
    t->on = 0;
}

/* getattr(obj, name) from `dict` (obj's __dict__) when it is there: a new reference. */
static PyObject *attr_in(PyObject *obj, PyObject *dict, PyObject *name) {
    PyObject *v = PyDict_GetItemWithError(dict, name);
    if (v != NULL)
        return Py_NewRef(v);
    return PyErr_Occurred() ? NULL : PyObject_GetAttr(obj, name);
}

/* 1 if `dict`'s (obj's) attributes `names` are all false (None, 0, empty), 0 if not, -1 error. */
static int all_false(PyObject *obj, PyObject *dict, PyObject *const *names, int n) {
    for (int i = 0; i < n; i++) {
        PyObject *v = attr_in(obj, dict, names[i]);
        int r = v == NULL ? -1 : PyObject_IsTrue(v);
        Py_XDECREF(v);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    return 1;
}

/* The Server's attributes a plain run reads (ScriptCommand's checks, then twins_ready's) and the
 * Scripting object's (the script tables, the Lua states and their clients), remembered as
 * keyspace_plain remembers the keyspace's (borrowed): while an object's __dict__ keeps the
 * version tag they were read at, so do its values (mutable ones such as `monitors` have their
 * truth tested again, the script tables are looked up every run).  A run writes those dicts
 * itself (in_exec on and back, the current client; scripting.run, last_error_counted), so
 * ScriptCommand stamps the version again after its own writes when nothing else wrote the dict
 * during the run (the version then is the one it made), which keeps the values valid from run
 * to run of a batch. */
enum { SV_MONITORS, SV_GATE, SV_MAXMEMORY, SV_CLUSTER, SV_SCRIPTING, SV_IN_EXEC, SV_CONFIG, SV_CALL_HOOKS,
       SV_RENAMED, SV_KEYSPACE, SV_SLOWLOG, SV_LATENCY, SV_SEEN };
enum { SC_BY_SHA, SC_BY_BODY, SC_EVAL_STATE, SC_EVAL_CLIENT, SC_LIBRARIES, SC_FUNCTION_STATE, SC_FUNCTION_CLIENT,
       SC_SEEN };
#define SEEN_MAX SV_SEEN
typedef struct {
    PyObject *dict; /* (borrowed, as keyspace_plain's) NULL: nothing remembered */
    uint64_t version;
    PyObject *value[SEEN_MAX]; /* (borrowed) */
} Seen;
static Seen g_sv_seen, g_sc_seen;

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define SEEN_VERSIONS 1
static inline uint64_t dict_version(PyObject *dict) { return ((PyDictObject *)dict)->ma_version_tag; }
#else
#define SEEN_VERSIONS 0 /* (no version tags: every run reads the values) */
static inline uint64_t dict_version(PyObject *dict) { (void)dict; return 0; }
#endif

static void seen_clear(Seen *seen) {
    seen->dict = NULL;
}

/* Before and after a write of the run to a remembered dict: `*stamp` the version the run's last
 * write gave it, 0 once anything else wrote it (or nothing was remembered). */
static inline void seen_before_write(uint64_t *stamp, PyObject *dict) {
    if (*stamp != 0 && dict_version(dict) != *stamp)
        *stamp = 0;
}
static inline void seen_after_write(uint64_t *stamp, PyObject *dict) {
    if (*stamp != 0)
        *stamp = dict_version(dict);
}

/* The run's writes done: the values stay remembered (under the version the run left) if only
 * the run wrote the dict, else they are read again next time. */
static void seen_restamp(Seen *seen, uint64_t stamp, PyObject *dict) {
    if (stamp != 0 && seen->dict == dict && dict_version(dict) == stamp)
        seen->version = stamp;
    else
        seen_clear(seen);
}

/* 1 if `seen` holds dict's values as the dict is now. */
static inline int seen_valid(const Seen *seen, PyObject *dict) {
    return SEEN_VERSIONS && seen->dict == dict && seen->version == dict_version(dict);
}

/* The attributes `names` of an object into value[] from its __dict__, remembered in `seen`
 * (borrowed: valid while the dict keeps seen's version; the run's own references to nineteen
 * values were ~250 instructions a run): 1, 0 if one is not in the dict itself (the Python
 * handler's turn), -1 error. */
static int seen_values(Seen *seen, PyObject *dict, PyObject **const *names, int n, PyObject **value) {
    if (!seen_valid(seen, dict)) {
        seen_clear(seen);
        PyObject *v[SEEN_MAX];
        for (int i = 0; i < n; i++)
            if ((v[i] = PyDict_GetItemWithError(dict, *names[i])) == NULL)
                return PyErr_Occurred() ? -1 : 0;
        memcpy(seen->value, v, sizeof(PyObject *) * (size_t)n);
        seen->dict = dict;
        seen->version = dict_version(dict);
    }
    memcpy(value, seen->value, sizeof(PyObject *) * (size_t)n);
    return 1;
}

/* The keyspace's settings twins_ready reads (tracking, watched, notify_flags, lfu, loading) and
 * its time snapshot `now`, remembered in a Seen as the Server's attributes are: while the
 * keyspace's __dict__ is unchanged, so are the objects it holds, and only their truth is tested
 * again (`watched` is a dict that WATCH fills in place).  Within a pipelined batch the dict stays
 * as it is (the counters and `now` are written between batches), so a run reads one attribute
 * fewer than six of them.  Only values found in the dict itself are remembered, and they are
 * borrowed: no reference here may keep an old server's objects (its Lua states) alive.  A
 * borrowed pointer is used only when the dict it came from is the one at hand with the same
 * version: a dict's version tags are unique across all dicts, so a new dict at a freed one's
 * address never matches, and an unchanged dict still holds the values. */
enum { KS_TRACKING, KS_WATCHED, KS_NOTIFY, KS_LFU, KS_LOADING, KS_NOW, KS_SEEN };
_Static_assert((int)KS_SEEN <= (int)SEEN_MAX, "a Seen holds the keyspace's values");
static Seen g_ks_seen;
static PyObject **const g_ks_names[KS_SEEN] = {&s_tracking, &s_watched, &s_notify_flags, &s_lfu, &s_loading, &s_now};

/* 1 if the keyspace's settings are all false (*now: its `now`, a new reference), 0 if not,
 * -1 error. */
static int keyspace_plain(PyObject *keyspace, PyObject *ks_dict, PyObject **now) {
    PyObject *value[KS_SEEN];
    int r = seen_values(&g_ks_seen, ks_dict, g_ks_names, KS_SEEN, value);
    if (r > 0) { /* (held while tested: a __bool__ could change the dict) */
        for (int i = 0; i < KS_SEEN; i++)
            Py_INCREF(value[i]);
        r = 0;
        for (int i = 0; i < KS_NOW && r == 0; i++)
            r = PyObject_IsTrue(value[i]);
        if (r == 0)
            *now = Py_NewRef(value[KS_NOW]);
        for (int i = 0; i < KS_SEEN; i++)
            Py_DECREF(value[i]);
        return r == 0 ? 1 : r < 0 ? -1 : 0;
    }
    if (r < 0)
        return -1;
    PyObject *names[KS_NOW]; /* (not all in the dict itself: through getattr) */
    for (int i = 0; i < KS_NOW; i++)
        names[i] = *g_ks_names[i];
    r = all_false(keyspace, ks_dict, names, KS_NOW);
    if (r > 0 && (*now = attr_in(keyspace, ks_dict, s_now)) == NULL)
        r = -1;
    return r;
}

/* A server attribute for twins_ready: from ScriptCommand's snapshot while the server's
 * __dict__ is as the run began (a new reference). */
static PyObject *server_attr(Twins *t, PyObject *server, PyObject *server_dict, int which, PyObject *name) {
    if (t->given_server != NULL && SEEN_VERSIONS && dict_version(server_dict) == t->given_version)
        return Py_NewRef(t->given_server[which]);
    return attr_in(server, server_dict, name);
}

/* At a run's first twin call: whether Server.call, for the script's client, would do nothing
 * but run the handler and count the call (the state _native.h describes: no call hooks,
 * MONITOR, maxmemory, WATCH, keyspace notifications, LFU, client tracking or NO-TOUCH), with
 * the twins under their own names (no rename-command touched them).  A script cannot change
 * any of that while it runs: the commands that do are `noscript`.  Then what the twins need:
 * the time snapshot, the statistics settings.  0 fine (t->on tells), -1 error. */
static int twins_ready(Bridge *b, Twins *t) {
    PyObject *server_dict = NULL, *ks_dict = NULL, *client = NULL, *keyspace = NULL, *now = NULL, *threshold = NULL,
             *tracking = NULL;
    int result = -1;
    t->on = 0;
    client = t->given_client != NULL ? Py_NewRef(t->given_client) : PyObject_GetAttr(b->run, s_client);
    if (client == NULL || (server_dict = PyObject_GenericGetDict(b->server, NULL)) == NULL ||
        (keyspace = server_attr(t, b->server, server_dict, SV_KEYSPACE, s_keyspace)) == NULL ||
        (ks_dict = PyObject_GenericGetDict(keyspace, NULL)) == NULL ||
        (t->client_dict = PyObject_GenericGetDict(client, NULL)) == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear(); /* an object without a __dict__ (slots): no route, redis.call as before */
            result = 0;
        }
        goto done;
    }
    int r = 1;
    PyObject *const server_names[] = {s_call_hooks, s_renamed, s_monitors, s_maxmemory};
    const int server_which[] = {SV_CALL_HOOKS, SV_RENAMED, SV_MONITORS, SV_MAXMEMORY};
    for (int i = 0; i < (t->server_checked ? 2 : 4) && r > 0; i++) {
        PyObject *v = server_attr(t, b->server, server_dict, server_which[i], server_names[i]);
        r = v == NULL ? -1 : PyObject_Not(v);
        Py_XDECREF(v);
    }
    if (r > 0)
        r = keyspace_plain(keyspace, ks_dict, &now);
    if (r > 0) {
        PyObject *no_touch = attr_in(client, t->client_dict, s_no_touch);
        r = no_touch == NULL ? -1 : PyObject_IsTrue(no_touch);
        Py_XDECREF(no_touch);
        if (r >= 0)
            r = !r;
    }
    if (r <= 0) {
        result = r;
        goto done;
    }
    if ((threshold = server_attr(t, b->server, server_dict, SV_SLOWLOG, s_slowlog_threshold)) == NULL ||
        (tracking = server_attr(t, b->server, server_dict, SV_LATENCY, s_latency_tracking)) == NULL)
        goto done;
    /* (AndOverflow: PyLong_AsLongLong converts a many-digit int through a byte array, ~200
     * instructions for a millisecond timestamp) */
    int overflow = 0;
    t->now_ms = PyLong_AsLongLongAndOverflow(now, &overflow);
    if (overflow && !PyErr_Occurred())
        PyErr_SetString(PyExc_OverflowError, "the keyspace's time snapshot does not fit a long long");
    t->threshold = PyLong_AsLongLong(threshold);
    if (PyErr_Occurred() || (t->latency_tracking = PyObject_IsTrue(tracking)) < 0)
        goto done;
    t->clock = native_lru_clock(t->now_ms);
    /* (the Run and the server hold the client and the keyspace until the run ends) */
    t->client = client;
    t->keyspace = keyspace;
    t->server_dict = Py_NewRef(server_dict);
    t->keyspace_dict = Py_NewRef(ks_dict);
    t->on = t->ready = 1;
    result = 0;
done:
    Py_XDECREF(server_dict);
    Py_XDECREF(ks_dict);
    Py_XDECREF(client);
    Py_XDECREF(keyspace);
    Py_XDECREF(now);
    Py_XDECREF(threshold);
    Py_XDECREF(tracking);
    return result;
}

/* The selected database's KeyTable and expiry dict: 1 read, 0 a layout the twins do not know (no route for this
 * run), -1 error. */
static NativeDbNames g_db_names; /* (filled at module init) */

/* keyspace.Database (use_twins): its slots' offsets, read as ScriptCommand reads a Run's (a
 * getattr of a slot costs ~200 instructions, six of them a run); NULL: through native_load_db */
enum { DB_DATA, DB_EXPIRES, DB_SLOT_INDEX, DB_SLOTS };
static PyTypeObject *g_db_type;
static Py_ssize_t g_db_slot[DB_SLOTS];

/* client.db's dicts from its slots (client.db read from the client's __dict__,
 * the Database of exactly that class): as native_load_db answers (1, 0, -1; the caller clears
 * what it got whatever the result), or 2: not such a Database (native_load_db's turn). */
static int load_db_slots(Twins *t) {
    PyObject *db = g_db_type == NULL ? NULL
                   : t->given_db != NULL ? t->given_db : PyDict_GetItemWithError(t->client_dict, s_db);
    if (db == NULL)
        return PyErr_Occurred() ? -1 : 2;
    if (!Py_IS_TYPE(db, g_db_type))
        return 2;
    PyObject *v[DB_SLOTS];
    for (int i = 0; i < DB_SLOTS; i++)
        if ((v[i] = *(PyObject **)((char *)db + g_db_slot[i])) == NULL)
            return 2; /* (an unset slot: the getattr path words the error) */
    t->data = Py_NewRef(v[DB_DATA]);
    t->expires = Py_NewRef(v[DB_EXPIRES]);
    return v[DB_SLOT_INDEX] == Py_None && native_is_keytable(t->data) && PyDict_CheckExact(t->expires);
}

static int twins_load_db(Twins *t) {
    int r = load_db_slots(t);
    if (r == 2)
        r = native_load_db(t->client, &g_db_names, &t->data, &t->expires);
    if (r <= 0) {
        twins_clear_db(t);
        if (r == 0)
            t->on = 0;
    }
    return r;
}

/* obj.name += amount, in obj's __dict__ (Command, Server and Keyspace keep their counters
 * there: no descriptor or __setattr__ stands in between; tests/test_scripting_bridge.py checks
 * that) or, if it is not there, through setattr. */
static int add_to_attr(PyObject *obj, PyObject *name, long long amount);

static int add_to_counter(PyObject *obj, PyObject *dict, PyObject *name, long long amount) {
    Py_INCREF(dict);
    PyObject *v = PyDict_GetItemWithError(dict, name);
    int r;
    if (v == NULL || !PyLong_CheckExact(v)) {
        r = PyErr_Occurred() ? -1 : add_to_attr(obj, name, amount);
    } else {
        /* (the sum in C when it fits: PyNumber_Add's dispatch costs more than the add) */
        int overflow;
        long long was = PyLong_AsLongLongAndOverflow(v, &overflow), total;
        PyObject *sum;
        if (!overflow && !__builtin_add_overflow(was, amount, &total)) {
            sum = PyLong_FromLongLong(total);
        } else {
            PyObject *n = PyLong_FromLongLong(amount);
            sum = n == NULL ? NULL : PyNumber_Add(v, n);
            Py_XDECREF(n);
        }
        r = sum == NULL ? -1 : PyDict_SetItem(dict, name, sum);
        Py_XDECREF(sum);
    }
    Py_DECREF(dict);
    return r;
}

static int add_to_attr(PyObject *obj, PyObject *name, long long amount) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    PyObject *n = PyLong_FromLongLong(amount);
    PyObject *sum = n == NULL ? NULL : PyNumber_Add(v, n);
    Py_DECREF(v);
    Py_XDECREF(n);
    if (sum == NULL)
        return -1;
    int r = PyObject_SetAttr(obj, name, sum);
    Py_DECREF(sum);
    return r;
}

/* The twins' calls not yet added to the Python counters: each command's calls and time, the
 * server's command count, the keyspace's hits, misses and dirty counter, and the script client's
 * last command (what Server.call leaves set).  As the request loop adds its own twins' counts at
 * the end of its batch, the bridge adds these when Python code could next look at them: before
 * a command of a script runs in Python (call_generic), when another server's, keyspace's or
 * client's calls are counted, at the end of a run outside the main thread, and otherwise in a
 * pending call (Py_AddPendingCall), which the interpreter runs in the main thread at its next
 * check of the eval breaker -- the entry of the next Python function (RESUME), or a backward
 * jump or a builtin's call -- so before any Python code reads or sets a counter (INFO,
 * CONFIG RESETSTAT, SAVE, the cron's samples, propagation's dirty mark).  A run of pipelined
 * EVALSHAs thus writes them once.  (Nothing in C reads these counters; the request loop only
 * adds to them, which commutes.)  Between its finding a tally and updating it, C calls no
 * Python code, so a pending flush inside a Python call of a run (the count hook, SLOWLOG) finds
 * the counts whole. */
#define TWIN_TALLIES 4
static struct {
    struct {
        PyObject *cmd;  /* borrowed: a twin's Command lives as long as the module */
        PyObject *dict; /* its __dict__ (owned) */
        PyObject *hist; /* its latency histogram (owned; NULL: not read yet, or None) */
        int is_write;   /* its is_write (-1: not read yet) */
        long long calls, usec;
    } tally[TWIN_TALLIES];
    int tallies;
    long long total, hits, misses, dirty;
    PyObject *last; /* the Command of the last call (borrowed) */
    /* (owned) whose counters: the server's, the keyspace's, the script client's */
    PyObject *server, *server_dict, *keyspace, *keyspace_dict, *client, *client_dict;
    int scheduled, flushing;
} g_counts;
static unsigned long g_main_thread; /* the thread that runs pending calls */

static void counts_release(void) {
    for (int i = 0; i < g_counts.tallies; i++) {
        Py_CLEAR(g_counts.tally[i].dict);
        Py_CLEAR(g_counts.tally[i].hist);
    }
    g_counts.tallies = 0;
    g_counts.total = g_counts.hits = g_counts.misses = g_counts.dirty = 0;
    g_counts.last = NULL;
    Py_CLEAR(g_counts.server);
    Py_CLEAR(g_counts.server_dict);
    Py_CLEAR(g_counts.keyspace);
    Py_CLEAR(g_counts.keyspace_dict);
    Py_CLEAR(g_counts.client);
    Py_CLEAR(g_counts.client_dict);
}

/* The counts into the Python counters (and released): 0, or -1 error. */
static int counts_flush(void) {
    if (g_counts.flushing)
        return 0;
    if (g_counts.total == 0) {
        counts_release();
        return 0;
    }
    g_counts.flushing = 1;
    int bad = 0;
    for (int i = 0; i < g_counts.tallies && !bad; i++) {
        PyObject *cmd = g_counts.tally[i].cmd, *dict = g_counts.tally[i].dict;
        bad = add_to_counter(cmd, dict, s_calls, g_counts.tally[i].calls) < 0 ||
              (g_counts.tally[i].usec && add_to_counter(cmd, dict, s_usec, g_counts.tally[i].usec) < 0);
    }
    if (!bad) { /* client.last_cmd = the last command's name (set only when it changes) */
        PyObject *last_dict = NULL;
        for (int i = 0; i < g_counts.tallies; i++)
            if (g_counts.tally[i].cmd == g_counts.last)
                last_dict = g_counts.tally[i].dict;
        PyObject *name = last_dict != NULL ? attr_in(g_counts.last, last_dict, s_name)
                                           : PyObject_GetAttr(g_counts.last, s_name);
        PyObject *was = name == NULL ? NULL : PyDict_GetItemWithError(g_counts.client_dict, s_last_cmd);
        bad = name == NULL || (was != name && PyObject_SetAttr(g_counts.client, s_last_cmd, name) < 0);
        Py_XDECREF(name);
    }
    bad = bad || add_to_counter(g_counts.server, g_counts.server_dict, s_stat_commands, g_counts.total) < 0 ||
          (g_counts.hits && add_to_counter(g_counts.keyspace, g_counts.keyspace_dict, s_stat_hits, g_counts.hits) < 0) ||
          (g_counts.misses &&
           add_to_counter(g_counts.keyspace, g_counts.keyspace_dict, s_stat_misses, g_counts.misses) < 0) ||
          (g_counts.dirty && add_to_counter(g_counts.keyspace, g_counts.keyspace_dict, s_dirty, g_counts.dirty) < 0);
    counts_release();
    g_counts.flushing = 0;
    return bad ? -1 : 0;
}

/* Whose calls the next counts are (a run's twins_ready): the pending counts of others first. */
static int counts_bind(PyObject *server, PyObject *server_dict, PyObject *keyspace, PyObject *keyspace_dict,
                       PyObject *client, PyObject *client_dict) {
    if (g_counts.server == server && g_counts.keyspace == keyspace && g_counts.client == client)
        return 0;
    if (counts_flush() < 0)
        return -1;
    g_counts.server = Py_NewRef(server);
    g_counts.server_dict = Py_NewRef(server_dict);
    g_counts.keyspace = Py_NewRef(keyspace);
    g_counts.keyspace_dict = Py_NewRef(keyspace_dict);
    g_counts.client = Py_NewRef(client);
    g_counts.client_dict = Py_NewRef(client_dict);
    return 0;
}

static int counts_pending(void *unused) {
    g_counts.scheduled = 0;
    if (counts_flush() < 0) /* (a pending call's error would surface in whatever code runs next) */
        PyErr_WriteUnraisable(NULL);
    return 0;
}

/* The end of a run: the counts flushed now, or by a pending call in the main thread. */
static int counts_settle(void) {
    if (g_counts.total == 0) {
        counts_release();
        return 0;
    }
    if (g_counts.scheduled)
        return 0;
    if (PyThread_get_thread_ident() == g_main_thread && Py_AddPendingCall(counts_pending, NULL) == 0) {
        g_counts.scheduled = 1;
        return 0;
    }
    return counts_flush();
}

/* One twin call of run `t` in the counts (C only: no Python runs in here but flushes). */
/* The tally of cmd's calls in run `t`'s counts (bound to them first: a flush releases them),
 * found or made: its index, or -1 error.  Valid until Python code runs (a pending flush). */
static int tally_of(Bridge *b, Twins *t, PyObject *cmd) {
    if (counts_bind(b->server, t->server_dict, t->keyspace, t->keyspace_dict, t->client, t->client_dict) < 0)
        return -1;
    int i = 0;
    while (i < g_counts.tallies && g_counts.tally[i].cmd != cmd)
        i++;
    if (i == TWIN_TALLIES) {
        if (counts_flush() < 0 ||
            counts_bind(b->server, t->server_dict, t->keyspace, t->keyspace_dict, t->client, t->client_dict) < 0)
            return -1;
        i = 0;
    }
    if (i == g_counts.tallies) {
        if ((g_counts.tally[i].dict = PyObject_GenericGetDict(cmd, NULL)) == NULL)
            return -1;
        g_counts.tally[i].cmd = cmd;
        g_counts.tally[i].hist = NULL;
        g_counts.tally[i].is_write = -1;
        g_counts.tally[i].calls = g_counts.tally[i].usec = 0;
        g_counts.tallies++;
    }
    return i;
}

static int counts_add(Bridge *b, Twins *t, PyObject *cmd, const NativeCall *call, long long elapsed_us) {
    int i = tally_of(b, t, cmd);
    if (i < 0)
        return -1;
    g_counts.tally[i].calls++;
    g_counts.tally[i].usec += elapsed_us;
    g_counts.total++;
    g_counts.last = cmd;
    g_counts.hits += call->hits;
    g_counts.misses += call->misses;
    g_counts.dirty += call->dirty;
    return 0;
}

/* histogram.record(usec).  _fastpath's histograms are a static C type whose record is a METH_O
 * C method: its C function is called directly (found once per type; a static type without
 * instance dicts cannot change it), ~250 instructions less than a method call by name; any
 * other histogram (latencyhist's Python one) by the method call. */
static PyTypeObject *g_hist_type;
static PyCFunction g_hist_record;

static PyObject *histogram_record(PyObject *histogram, PyObject *usec) {
    PyTypeObject *type = Py_TYPE(histogram);
    if (type != g_hist_type && !(type->tp_flags & Py_TPFLAGS_HEAPTYPE) && type->tp_dictoffset == 0) {
        PyObject *method = _PyType_Lookup(type, s_record); /* (borrowed) */
        if (method != NULL && Py_IS_TYPE(method, &PyMethodDescr_Type) &&
            ((PyMethodDescrObject *)method)->d_method->ml_flags == METH_O) {
            g_hist_type = type;
            g_hist_record = ((PyMethodDescrObject *)method)->d_method->ml_meth;
        }
    }
    if (type == g_hist_type)
        return g_hist_record(histogram, usec);
    PyObject *record_args[2] = {histogram, usec};
    return PyObject_VectorcallMethod(s_record, record_args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* Server.call's bookkeeping around the twin's run (Server.account; no MONITOR: run.twins says
 * there is none): the latency histogram and SLOWLOG at once (the Python calls first), then the
 * counts. */
static int twin_account(Bridge *b, Twins *t, PyObject *cmd, NativeCall *call, const NativeArg *args, int argc,
                        long long elapsed_us) {
    if (t->latency_tracking) { /* dispatch.record_latency makes a command's first histogram */
        int i = tally_of(b, t, cmd); /* (the histogram kept in the tally: only Python replaces it) */
        if (i < 0)
            return -1;
        if (g_counts.tally[i].hist == NULL) {
            PyObject *h = attr_in(cmd, g_counts.tally[i].dict, s_latency);
            if (h == NULL)
                return -1;
            if (h == Py_None)
                Py_DECREF(h);
            else
                g_counts.tally[i].hist = h;
        }
        PyObject *histogram = Py_XNewRef(g_counts.tally[i].hist); /* (the tally is gone once Python runs) */
        PyObject *usec = PyLong_FromLongLong(elapsed_us), *done = NULL;
        if (usec != NULL && histogram == NULL) {
            PyObject *record_args[2] = {cmd, usec};
            done = PyObject_Vectorcall(g_record_latency, record_args, 2, NULL);
        } else if (usec != NULL) {
            done = histogram_record(histogram, usec);
        }
        Py_XDECREF(histogram);
        Py_XDECREF(usec);
        if (done == NULL)
            return -1;
        Py_DECREF(done);
    }
    if (t->threshold >= 0 && elapsed_us >= t->threshold) { /* Server.slow_call(client, cmd, argv, usec) */
        PyObject *argv = native_argv(args, argc);
        if (argv == NULL)
            return -1;
        PyObject *usec = PyLong_FromLongLong(elapsed_us);
        PyObject *done = usec == NULL ? NULL : PyObject_CallMethodObjArgs(b->server, s_slow_call, t->client, cmd,
                                                                          argv, usec, NULL);
        Py_DECREF(argv);
        Py_XDECREF(usec);
        if (done == NULL)
            return -1;
        Py_DECREF(done);
    }
    return counts_add(b, t, cmd, call, elapsed_us);
}

/* Push a twin's reply (RESP2: what _fastpath's twins write) as redis.call returns it; the
 * position after it, or NULL for a form not expected of a twin (a SystemError set). */
static const char *push_wire(Bridge *b, lua_State *L, const char *p, const char *end, int depth) {
    const char *line_end = p < end ? memchr(p, '\r', (size_t)(end - p)) : NULL;
    long long n;
    if (line_end == NULL || line_end + 2 > end || depth > 2)
        goto bad;
    const char *next = line_end + 2;
    switch (*p) {
    case ':':
        if (!native_string2ll(p + 1, line_end - p - 1, &n))
            goto bad;
        lua.pushnumber(L, (lua_Number)n);
        return next;
    case '+':
        lua.createtable(L, 0, 1);
        lua.pushstring(L, "ok");
        lua.pushlstring(L, p + 1, (size_t)(line_end - p - 1));
        lua.rawset(L, -3);
        return next;
    case '$':
        if (line_end - p == 3 && p[1] == '-' && p[2] == '1') {
            if (b->resp3)
                lua.pushnil(L);
            else
                lua.pushboolean(L, 0);
            return next;
        }
        if (!native_string2ll(p + 1, line_end - p - 1, &n) || n < 0 || n > end - next - 2)
            goto bad;
        lua.pushlstring(L, next, (size_t)n);
        return next + n + 2;
    case '*':
        if (!native_string2ll(p + 1, line_end - p - 1, &n) || n < 0 || n > INT_MAX || !lua.checkstack(L, 4))
            goto bad;
        lua.createtable(L, (int)n, 0);
        for (int i = 1; i <= n; i++) {
            if ((next = push_wire(b, L, next, end, depth + 1)) == NULL)
                return NULL;
            lua.rawseti(L, -2, i);
        }
        return next;
    }
bad:
    PyErr_SetString(PyExc_SystemError, "a twin's reply the Lua bridge does not read");
    return NULL;
}

/* redis.call's twin route: 1 ran (the reply pushed on an emptied stack), 0 not taken (nothing
 * changed), -1 Python error. */
static int twin_route(Bridge *b, lua_State *L, int argc) {
    Twins *t = &b->twins;
    if (argc > MAX_TWIN_ARGS)
        return 0;
    NativeArg args[MAX_TWIN_ARGS];
    char digits[MAX_TWIN_ARGS][24];
    for (int i = 0; i < argc; i++) {
        size_t n;
        if (lua.type(L, i + 1) == LUA_TSTRING) {
            args[i].p = lua.tolstring(L, i + 1, &n);
            args[i].len = (Py_ssize_t)n;
        } else if (lua.type(L, i + 1) == LUA_TNUMBER) { /* as arg_bytes; other numbers: Python */
            double d = lua.tonumber(L, i + 1);
            const double half = (double)(LLONG_MAX / 2);
            if (!(d >= -half && d <= half) || (double)(long long)d != d)
                return 0;
            args[i].p = digits[i];
            args[i].len = snprintf(digits[i], sizeof digits[i], "%lld", (long long)d);
        } else {
            return 0;
        }
    }
    if (!t->ready && (twins_ready(b, t) < 0 || !t->on))
        return t->on ? -1 : (PyErr_Occurred() ? -1 : 0);
    if (t->data == NULL) {
        int r = twins_load_db(t);
        if (r <= 0)
            return r;
    }
    NativeCall call = {.server = b->server, .data = t->data, .expires = t->expires, .clock = t->clock,
                       .now_ms = t->now_ms, .resp3 = 0};
    PyObject *cmd = NULL;
    long long start = wall_ns();
    PyObject *wire = g_twin(&call, args, argc, &cmd);
    if (wire == NULL)
        return PyErr_Occurred() ? -1 : 0;
    long long elapsed_us = native_elapsed_us(start, wall_ns());
    int result = -1;
    if (!t->wrote) { /* a write makes the script unkillable (run.write_dirty) */
        int i = tally_of(b, t, cmd), is_write = i < 0 ? -1 : g_counts.tally[i].is_write;
        if (i >= 0 && is_write < 0) { /* (Command keeps is_write in its __dict__; read once a tally) */
            PyObject *flag = attr_in(cmd, g_counts.tally[i].dict, s_is_write);
            is_write = flag == NULL ? -1 : PyObject_IsTrue(flag);
            Py_XDECREF(flag);
            if (is_write >= 0 && i < g_counts.tallies && g_counts.tally[i].cmd == cmd)
                g_counts.tally[i].is_write = is_write;
        }
        if (is_write < 0)
            goto done;
        if (is_write && t->write_dirty_slot > 0) { /* ScriptCommand's Run: the slot itself */
            PyObject **slot = (PyObject **)((char *)b->run + t->write_dirty_slot);
            Py_XSETREF(*slot, Py_NewRef(Py_True));
        } else if (is_write && PyObject_SetAttr(b->run, s_write_dirty, Py_True) < 0) {
            goto done;
        }
        t->wrote = is_write;
    }
    if (twin_account(b, t, cmd, &call, args, argc, elapsed_us) < 0)
        goto done;
    lua.settop(L, 0);
    const char *p = PyBytes_AS_STRING(wire), *end = p + PyBytes_GET_SIZE(wire);
    if (push_wire(b, L, p, end, 0) == end)
        result = 1;
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_SystemError, "a twin's reply the Lua bridge does not read");
done:
    Py_DECREF(wire);
    return result;
}

static int call_generic(lua_State *L, int raise) {
    Anchor *anchor = lua.touserdata(L, UPVALUE(1));
    Bridge *b = anchor != NULL ? anchor->owner : NULL;
    if (b == NULL) {
        lua.pushstring(L, "ERR the script engine is gone");
        return lua.error(L);
    }
    /* (a bridge run holds the GIL: lupa releases it around the runs it starts; Check costs less
     * than an Ensure and a Release) */
    int own_gil = !PyGILState_Check();
    PyGILState_STATE gil = own_gil ? PyGILState_Ensure() : PyGILState_UNLOCKED;
    int argc = lua.gettop(L);
    PyObject *stack_args[MAX_STACK_ARGS];
    PyObject **args = argc <= MAX_STACK_ARGS ? stack_args : PyMem_Malloc(sizeof(PyObject *) * (size_t)argc);
    PyObject *reply = NULL, *message = NULL;
    int made = 0, counted = 0, pushed = 0;
    if (args == NULL) {
        PyErr_NoMemory();
        goto failed;
    }
    if (b->twins.on && b->run != NULL && argc > 0) {
        int ran = twin_route(b, L, argc);
        if (ran < 0)
            goto failed;
        if (ran) {
            if (own_gil)
                PyGILState_Release(gil);
            return 1;
        }
    }
    if (b->twins.on) { /* Python runs this one: it sees the counters; the database may change */
        twins_clear_db(&b->twins);
        b->twins.given_db = NULL;
        if (counts_flush() < 0)
            goto failed;
    }
    int all_bytes = 1;
    for (; made < argc; made++) {
        args[made] = arg_bytes(b, L, made + 1);
        if (args[made] == NULL)
            goto failed;
        all_bytes &= args[made] != Py_None;
    }
    int taken = 0;
    if (b->run != NULL && argc > 0 && all_bytes) {
        taken = fast_call(b, args, argc, &reply);
        if (taken < 0)
            goto failed;
    }
    if (!taken && (reply = PyObject_Vectorcall(b->call_reply, args, (size_t)argc, NULL)) == NULL)
        goto failed;
    lua.settop(L, 0);
    pushed = push_reply(b, L, reply, 0);
    if (pushed == 0) { /* another shape: converted in Python, waiting in the stash */
        PyObject *done = PyObject_CallOneArg(b->fallback, reply);
        if (done == NULL)
            goto failed;
        Py_DECREF(done);
        lua.rawgeti(L, LUA_REGISTRYINDEX, b->stash_ref);
        lua.pushnil(L);
        lua.rawseti(L, LUA_REGISTRYINDEX, b->stash_ref);
        pushed = 1;
    }
    if (pushed < 0)
        goto failed;
    Py_DECREF(reply);
    for (int i = 0; i < made; i++)
        Py_DECREF(args[i]);
    if (args != stack_args)
        PyMem_Free(args);
    if (own_gil)
        PyGILState_Release(gil);
    return 1;
failed:
    message = take_error(b, &counted);
    Py_XDECREF(reply);
    for (int i = 0; i < made; i++)
        Py_DECREF(args[i]);
    if (args != NULL && args != stack_args)
        PyMem_Free(args);
    lua.settop(L, 0);
    if (message != NULL) {
        push_error_table(L, PyBytes_AS_STRING(message), (size_t)PyBytes_GET_SIZE(message), counted);
        Py_DECREF(message);
    } else {
        PyErr_Clear();
        push_error_table(L, "ERR internal error in script call", 33, 0);
    }
    if (own_gil)
        PyGILState_Release(gil);
    if (raise)
        return lua.error(L); /* nothing of Python's is held past this point */
    return 1;
}

static int lua_redis_call(lua_State *L) { return call_generic(L, 1); }
static int lua_redis_pcall(lua_State *L) { return call_generic(L, 0); }

/* stash(value): what the fallback converted (Lua side of Bridge.fallback's conversion) */
static int lua_stash(lua_State *L) {
    Anchor *anchor = lua.touserdata(L, UPVALUE(1));
    if (anchor == NULL || anchor->owner == NULL)
        return 0;
    lua.settop(L, 1);
    lua.rawseti(L, LUA_REGISTRYINDEX, anchor->owner->stash_ref);
    return 0;
}

/* take(): the (ok, value) a run left in the stash (see Bridge.run) */
static int lua_take(lua_State *L) {
    Anchor *anchor = lua.touserdata(L, UPVALUE(1));
    if (anchor == NULL || anchor->owner == NULL)
        return 0;
    Bridge *b = anchor->owner;
    lua.settop(L, 0);
    lua.rawgeti(L, LUA_REGISTRYINDEX, b->stash_ref);
    if (lua.type(L, 1) != LUA_TTABLE)
        return 0;
    lua.rawgeti(L, 1, 1);
    lua.rawgeti(L, 1, 2);
    lua.pushnil(L);
    lua.rawseti(L, LUA_REGISTRYINDEX, b->stash_ref);
    return 2;
}

/* handle(f): a number by which Bridge.run finds f (a weak table: f lives as long as the
 * Python side holds it) */
static int lua_handle(lua_State *L) {
    Anchor *anchor = lua.touserdata(L, UPVALUE(1));
    if (anchor == NULL || anchor->owner == NULL)
        return 0;
    Bridge *b = anchor->owner;
    lua.settop(L, 1);
    int handle = ++b->next_handle;
    lua.rawgeti(L, LUA_REGISTRYINDEX, b->handles_ref);
    lua.pushvalue(L, 1);
    lua.rawseti(L, -2, handle);
    lua.pushnumber(L, handle);
    return 1;
}

/* set_runners(eval_bridged, function_with, handles, E): the sandbox's runners, the weak table and
 * the script globals (where run_script stores KEYS and ARGV of an EVAL script) */
static int lua_set_runners(lua_State *L) {
    Anchor *anchor = lua.touserdata(L, UPVALUE(1));
    if (anchor == NULL || anchor->owner == NULL)
        return 0;
    Bridge *b = anchor->owner;
    lua.settop(L, 4);
    b->env_ref = lua.ref(L, LUA_REGISTRYINDEX); /* (each ref pops its value) */
    b->handles_ref = lua.ref(L, LUA_REGISTRYINDEX);
    b->function_ref = lua.ref(L, LUA_REGISTRYINDEX);
    b->eval_ref = lua.ref(L, LUA_REGISTRYINDEX);
    lua.pushboolean(L, 0);
    b->stash_ref = lua.ref(L, LUA_REGISTRYINDEX);
    lua.pushstring(L, "KEYS");
    b->keys_name_ref = lua.ref(L, LUA_REGISTRYINDEX);
    lua.pushstring(L, "ARGV");
    b->argv_name_ref = lua.ref(L, LUA_REGISTRYINDEX);
    b->runners = 1;
    return 0;
}


/* ------------------------------------------------------------------ the sandbox's guards */

/* The sandbox protects its read-only tables (empty proxies whose metatable reads through) from
 * the built-ins that bypass metatables.  A guard is a C closure in front of such a built-in
 * (upvalue 1, a C function): it does its check, then runs the built-in's own C function in its
 * own frame (`orig(L)`), so that Lua's argument errors name it as the script called it
 * ('rawset', 'insert', a local's name) and place it at the script's line, exactly as Redis's
 * plain built-ins do (a guard written in Lua would show its own chunk, line and names, and a
 * script's `return rawset(...)` would tail-call it out of sight).  None of the guarded
 * built-ins reads upvalues of its own (pairs, which does, is written here).
 * Upvalues: 1 the built-in, 2 the kind, 3 real_of (proxy -> real table), 4 to 6 per kind. */
enum {
    GUARD_WRITE,    /* rawset, setmetatable: refuse a proxy */
    GUARD_READ,     /* rawget, next: a proxy reads its real table (4: fill, for a library not loaded yet) */
    GUARD_PAIRS,    /* pairs: (4: the guarded next) */
    GUARD_TYPE,     /* type: a Python builtin (4: the set of them) is a "function" */
    GUARD_TOSTRING, /* tostring: ... and shows as "function: builtin" */
    GUARD_META,     /* getmetatable: (4: globals proxies, 5: what they show) a proxy has none */
    GUARD_ENV,      /* getfenv: (4: the thread's globals G, 5: the proxy P shown for them, 6: the runners) */
    GUARD_SETENV,   /* setfenv: as getfenv; level 0 (the running thread's globals) refused */
    /* Built-ins the sandbox rewrites in Lua (4: that function): the guard checks the arguments as
     * the built-in would, then calls it. */
    GUARD_XPCALL,     /* xpcall(f, handler) */
    GUARD_LOADSTRING, /* loadstring(chunk [, name]) */
    GUARD_LOAD,       /* load(reader [, name]) */
    GUARD_PCALL,      /* pcall: Redis's (4: what an error becomes: an error table its message) */
    GUARD_INSERT,     /* table.insert: refuse a proxy where it would write (table.remove and sort
                       * write nothing to an empty proxy, like Redis to a table without an array
                       * part, as all its read-only tables are; setn writes nothing) */
};

static int guard_readonly(lua_State *L) {
    lua.pushstring(L, "Attempt to modify a readonly table");
    return lua.error(L);
}

/* The frame (as lua_getstack counts from the guard) of level `level` (>= 1) as Redis counts it
 * from the guard's caller, or 0 when there is none.  For Redis the script is the outermost frame:
 * the runner (upvalue 6's keys; the xpcall that runs the script, a tail call's trace left by the
 * trampoline in front of a function, and below) is not counted, nor are the sandbox's Lua
 * wrappers ("@dumpling" frames) and the guard (or a tail call's trace) right after one, which
 * Redis's C built-ins do not have (xpcall: its guard, the Lua wrapper, then Lua's xpcall: one
 * frame for Redis). */
static int guard_level(lua_State *L, int level) {
    struct lua_Debug ar;
    int last = 0; /* the last frame of the script's */
    for (int i = 1;; i++) {
        if (!lua.getstack(L, i, &ar)) {
            last = i - 1;
            break;
        }
        lua.getinfo(L, "f", &ar);
        lua.rawget(L, UPVALUE(6));
        int runner = lua.toboolean(L, -1);
        lua.settop(L, -2);
        if (runner) {
            last = i - 2; /* (i-1: the runner's xpcall) */
            if (last >= 1 && lua.getstack(L, last, &ar) && lua.getinfo(L, "S", &ar) && strcmp(ar.what, "tail") == 0)
                last--;
            break;
        }
    }
    int counted = 0, skipped = 0;
    for (int i = 1; i <= last; i++) {
        if (!lua.getstack(L, i, &ar) || !lua.getinfo(L, "S", &ar))
            return 0;
        int wrapper = strcmp(ar.source, "@dumpling") == 0;
        int skip = wrapper || (skipped && (strcmp(ar.what, "C") == 0 || strcmp(ar.what, "tail") == 0));
        skipped = wrapper;
        if (!skip && ++counted == level)
            return i;
    }
    return 0;
}

static int guard_optstring(lua_State *L, int narg) {
    int t = lua.type(L, narg);
    if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TSTRING && t != LUA_TNUMBER)
        return lua.typerror(L, narg, "string");
    return 0;
}

/* The sandbox's Lua version of the built-in (upvalue 4) with this call's arguments. */
static int guard_delegate(lua_State *L) {
    lua.pushvalue(L, UPVALUE(4));
    lua.insert(L, 1);
    lua.call(L, lua.gettop(L) - 1, LUA_MULTRET);
    return lua.gettop(L);
}

static int lua_guard(lua_State *L) {
    lua_CFunction orig = lua.tocfunction(L, UPVALUE(1));
    int kind = (int)lua.tonumber(L, UPVALUE(2));
    switch (kind) {
    case GUARD_WRITE:
        if (lua.type(L, 1) == LUA_TTABLE) {
            lua.pushvalue(L, 1);
            lua.rawget(L, UPVALUE(3));
            if (lua.type(L, -1) != LUA_TNIL)
                return guard_readonly(L);
            lua.settop(L, -2);
        }
        return orig(L);
    case GUARD_READ:
        if (lua.type(L, 1) == LUA_TTABLE) {
            lua.pushvalue(L, 1);
            lua.rawget(L, UPVALUE(3));
            if (lua.type(L, -1) == LUA_TTABLE && !lua.rawequal(L, -1, 1)) {
                lua.pushvalue(L, UPVALUE(4)); /* fill(real): a library's contents, once */
                lua.pushvalue(L, -2);
                lua.call(L, 1, 0);
                lua.replace(L, 1);
            } else {
                lua.settop(L, -2);
            }
        }
        return orig(L);
    case GUARD_PAIRS:
        if (lua.type(L, 1) != LUA_TTABLE)
            return orig(L); /* its own check raises the error */
        lua.pushvalue(L, UPVALUE(4));
        lua.pushvalue(L, 1);
        lua.pushnil(L);
        return 3;
    case GUARD_TYPE:
    case GUARD_TOSTRING:
        if (lua.gettop(L) >= 1) {
            lua.pushvalue(L, 1);
            lua.rawget(L, UPVALUE(4));
            if (lua.toboolean(L, -1)) {
                lua.pushstring(L, kind == GUARD_TYPE ? "function" : "function: builtin");
                return 1;
            }
            lua.settop(L, -2);
        }
        return orig(L);
    case GUARD_META:
        if (lua.type(L, 1) == LUA_TTABLE) {
            lua.pushvalue(L, 1);
            lua.rawget(L, UPVALUE(4));
            if (lua.toboolean(L, -1)) {
                lua.pushvalue(L, UPVALUE(5));
                return 1;
            }
            lua.pushvalue(L, 1);
            lua.rawget(L, UPVALUE(3));
            if (lua.type(L, -1) != LUA_TNIL) {
                lua.pushnil(L);
                return 1;
            }
            lua.settop(L, -3);
        }
        return orig(L);
    case GUARD_SETENV:
        if (lua.type(L, 2) != LUA_TTABLE)
            return orig(L); /* its own check raises the error */
        if (lua.type(L, 1) != LUA_TFUNCTION && lua.isnumber(L, 1) && (int)lua.tonumber(L, 1) == 0) {
            lua.pushstring(L, "'setfenv' cannot change the environment of the running thread");
            return lua.error(L);
        }
        /* fall through */
    case GUARD_ENV: {
        if (lua.type(L, 1) != LUA_TFUNCTION && lua.isnumber(L, 1)) { /* (a number, or a string of one) */
            int level = (int)lua.tonumber(L, 1);
            if (level >= 1) {
                int frame = guard_level(L, level);
                if (frame == 0)
                    return lua.argerror(L, 1, "invalid level");
                lua.pushnumber(L, frame);
                lua.replace(L, 1);
            }
        }
        int n = orig(L);
        if (n >= 1 && lua.rawequal(L, -1, UPVALUE(4))) {
            lua.settop(L, -2);
            lua.pushvalue(L, UPVALUE(5));
        }
        return n;
    }
    case GUARD_XPCALL:
        if (lua.type(L, 2) == LUA_TNONE)
            return lua.argerror(L, 2, "value expected");
        return guard_delegate(L);
    case GUARD_LOADSTRING: {
        int t = lua.type(L, 1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            return lua.typerror(L, 1, "string");
        guard_optstring(L, 2);
        return guard_delegate(L);
    }
    case GUARD_LOAD:
        if (lua.type(L, 1) != LUA_TFUNCTION)
            return lua.typerror(L, 1, "function");
        guard_optstring(L, 2);
        return guard_delegate(L);
    case GUARD_INSERT:
        if (lua.type(L, 1) == LUA_TTABLE) {
            int top = lua.gettop(L);
            lua.pushvalue(L, 1);
            lua.rawget(L, UPVALUE(3));
            int proxy = lua.type(L, -1) != LUA_TNIL;
            lua.settop(L, -2);
            if (proxy && (top == 2 || (top == 3 && lua.isnumber(L, 2))))
                return guard_readonly(L);
        }
        return orig(L);
    case GUARD_PCALL:
        if (lua.type(L, 1) == LUA_TNONE) {
            /* Redis's pcall (luaRedisPcall) then calls its own placeholder, the boolean true */
            lua.pushboolean(L, 0);
            lua.pushstring(L, "attempt to call a boolean value");
            return 2;
        }
        if (lua.pcall(L, lua.gettop(L) - 1, LUA_MULTRET, 0) != 0) {
            lua.pushvalue(L, UPVALUE(4));
            lua.insert(L, -2);
            lua.call(L, 1, 1);
            lua.pushboolean(L, 0);
            lua.insert(L, -2);
            return 2;
        }
        lua.pushboolean(L, 1);
        lua.insert(L, 1);
        return lua.gettop(L);
    }
    return orig(L);
}

/* guard(kind, builtin, real_of [, extra...]): a guard (above), with only the upvalues its kind
 * reads (an upvalue past a closure's last reads as nil) */
static int lua_make_guard(lua_State *L) {
    int n = lua.gettop(L);
    if (n < 3)
        n = 3;
    if (n > 6)
        n = 6;
    lua.settop(L, n);
    lua.pushvalue(L, 1);
    lua.pushvalue(L, 2);
    lua.replace(L, 1);
    lua.replace(L, 2);
    lua.pushcclosure(L, lua_guard, n);
    return 1;
}

static void push_function(lua_State *L, lua_CFunction f, const char *name) {
    lua.pushstring(L, name);
    lua.pushvalue(L, -3); /* the anchor, below the table */
    lua.pushcclosure(L, f, 1);
    lua.rawset(L, -3);
}

/* The entry point package.loadlib finds: returns the table of C functions of the bridge that
 * begin_attach() offered (nil if none).  Called through lupa, without the GIL: it touches no
 * Python object. */
__attribute__((visibility("default"))) int dumpling_luabridge_open(lua_State *L) {
    Bridge *b = g_attaching;
    g_attaching = NULL;
    if (b == NULL || !g_resolved)
        return 0;
    Anchor *anchor = lua.newuserdata(L, sizeof(Anchor));
    anchor->owner = b;
    b->anchor = anchor;
    b->L = L;
    lua.createtable(L, 0, 6);
    push_function(L, lua_redis_call, "call");
    push_function(L, lua_redis_pcall, "pcall");
    push_function(L, lua_stash, "stash");
    push_function(L, lua_take, "take");
    push_function(L, lua_handle, "handle");
    push_function(L, lua_set_runners, "set_runners");
    push_function(L, lua_make_guard, "guard");
    return 1;
}

/* ------------------------------------------------------------------ running a script */

static void push_strings(lua_State *L, PyObject *const *items, Py_ssize_t n) {
    lua.createtable(L, (int)n, 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        lua.pushlstring(L, PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i]));
        lua.rawseti(L, -2, (int)(i + 1));
    }
}

/* run(handle, eval_mode, hook, numkeys, argv, run): run the script or function `handle` (see
 * handle()) under the sandbox's runner (eval_bridged / function_with: the count hook, xpcall
 * with the error handler; an EVAL script's KEYS and ARGV stored in the globals from here first,
 * a function's passed), with argv[3:3+numkeys] as its keys and the rest as its arguments.  Returns the reply when the script returned a string (bytes), a number (an
 * int, as C's (long long) cast gives it) or nil (None); otherwise (an error, a table, a
 * boolean) the `stashed` marker, and take() gives (ok, value) to the Python conversion. */
static int bridge_ready(Bridge *b) {
    return b->L != NULL && b->runners && b->anchor != NULL && b->anchor->owner == b && b->call_reply != NULL;
}

static PyObject *run_script(Bridge *b, long handle, int eval_mode, int hook, Py_ssize_t numkeys, PyObject *argv,
                            PyObject *run, int twins, PyObject *client, PyObject *db, Py_ssize_t write_dirty_slot,
                            PyObject *const *server_values, uint64_t server_version);

static PyObject *bridge_run(Bridge *b, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyList_CheckExact(args[4])) {
        PyErr_SetString(PyExc_TypeError, "run(handle, eval_mode, hook, numkeys, argv: list, run)");
        return NULL;
    }
    if (!bridge_ready(b)) {
        PyErr_SetString(PyExc_RuntimeError, "bridge not attached");
        return NULL;
    }
    long handle = PyLong_AsLong(args[0]);
    int eval_mode = PyObject_IsTrue(args[1]), hook = PyObject_IsTrue(args[2]);
    Py_ssize_t numkeys = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *run = args[5] == Py_None ? NULL : args[5];
    int twins = 0;
    if (run != NULL && g_twin != NULL && (twins = attr_true(run, s_twins)) < 0)
        return NULL;
    return run_script(b, handle, eval_mode, hook, numkeys, args[4], run, twins, NULL, NULL, 0, NULL, 0);
}

/* The run itself (Bridge.run's, and the plain run of ScriptCommand): `run` the Run (NULL: none,
 * redis.call goes through call_reply), `twins` whether it is a Run.twins run; `client` the run's
 * client when ScriptCommand starts it (it checked MONITOR and maxmemory), else NULL, and then
 * `db` the Database it gave the client,
 * `write_dirty_slot` the offset of the Run's write_dirty slot (else 0) and `server_values` the
 * server's attributes it read (SV_*; NULL: none), valid while the server's __dict__ has the
 * version tag `server_version`. */
static PyObject *run_script(Bridge *b, long handle, int eval_mode, int hook, Py_ssize_t numkeys, PyObject *argv,
                            PyObject *run, int twins, PyObject *client, PyObject *db, Py_ssize_t write_dirty_slot,
                            PyObject *const *server_values, uint64_t server_version) {
    Py_ssize_t total = PyList_GET_SIZE(argv);
    if (numkeys < 0 || 3 + numkeys > total || total - 3 > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "bad numkeys");
        return NULL;
    }
    for (Py_ssize_t i = 3; i < total; i++)
        if (!PyBytes_CheckExact(PyList_GET_ITEM(argv, i))) {
            PyErr_SetString(PyExc_TypeError, "arguments must be bytes");
            return NULL;
        }
    lua_State *L = b->L;
    int top = lua.gettop(L);
    if (!lua.checkstack(L, 8)) {
        PyErr_SetString(PyExc_MemoryError, "Lua stack");
        return NULL;
    }
    b->resp3 = 0;
    PyObject *outer_run = b->run; /* (NULL: the bridge's redis.call goes through call_reply) */
    Twins outer_twins = b->twins;
    memset(&b->twins, 0, sizeof b->twins);
    b->twins.on = twins; /* (the rest is read at the run's first twin call: twins_ready) */
    b->twins.given_client = client;
    b->twins.given_db = client != NULL ? db : NULL;
    b->twins.server_checked = client != NULL;
    b->twins.write_dirty_slot = client != NULL ? write_dirty_slot : 0;
    b->twins.given_server = client != NULL ? server_values : NULL;
    b->twins.given_version = server_version;
    b->run = run;
    PyObject **items = ((PyListObject *)argv)->ob_item;
    if (eval_mode) { /* E.KEYS, E.ARGV = keys, argv (eval_with's raw sets, without two calls from Lua) */
        lua.rawgeti(L, LUA_REGISTRYINDEX, b->env_ref);
        lua.rawgeti(L, LUA_REGISTRYINDEX, b->keys_name_ref);
        push_strings(L, items + 3, numkeys);
        lua.rawset(L, -3);
        lua.rawgeti(L, LUA_REGISTRYINDEX, b->argv_name_ref);
        push_strings(L, items + 3 + numkeys, total - 3 - numkeys);
        lua.rawset(L, -3);
        lua.settop(L, top);
    }
    lua.rawgeti(L, LUA_REGISTRYINDEX, eval_mode ? b->eval_ref : b->function_ref);
    lua.rawgeti(L, LUA_REGISTRYINDEX, b->handles_ref);
    lua.rawgeti(L, -1, (int)handle);
    lua.insert(L, -2);
    lua.settop(L, -2); /* [runner, f] */
    lua.pushboolean(L, hook);
    if (!eval_mode) {
        push_strings(L, items + 3, numkeys);
        push_strings(L, items + 3 + numkeys, total - 3 - numkeys);
    }
    int status = lua.pcall(L, eval_mode ? 2 : 4, 2, 0);
    b->run = outer_run;
    int flushed = counts_settle();
    twins_end(&b->twins);
    b->twins = outer_twins;
    if (flushed < 0) {
        lua.settop(L, top);
        return NULL;
    }
    PyObject *result = NULL;
    if (status == 0) {
        int ok = lua.toboolean(L, top + 1);
        if (ok) {
            size_t n;
            const char *s;
            switch (lua.type(L, top + 2)) {
            case LUA_TSTRING:
                s = lua.tolstring(L, top + 2, &n);
                result = PyBytes_FromStringAndSize(s, (Py_ssize_t)n);
                break;
            case LUA_TNUMBER: {
                double d = lua.tonumber(L, top + 2);
                long long v = LLONG_MIN; /* x86-64's cast of NaN and out-of-range values */
                if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
                    v = (long long)d;
                result = PyLong_FromLongLong(v);
                break;
            }
            case LUA_TNIL:
                result = Py_NewRef(Py_None);
                break;
            }
            if (result != NULL || PyErr_Occurred()) {
                lua.settop(L, top);
                return result;
            }
        }
    }
    /* the stash: {ok, value} (a runner that failed itself: {false, message}) */
    lua.createtable(L, 2, 0);
    if (status == 0)
        lua.pushvalue(L, top + 1);
    else
        lua.pushboolean(L, 0);
    lua.rawseti(L, -2, 1);
    lua.pushvalue(L, status == 0 ? top + 2 : top + 1);
    lua.rawseti(L, -2, 2);
    lua.rawseti(L, LUA_REGISTRYINDEX, b->stash_ref);
    lua.settop(L, top);
    return Py_NewRef(b->stashed);
}

/* gc_step(): Redis's luaGC step (lua_gc(LUA_GCSTEP, 50)); the count starts again */
static PyObject *bridge_gc_step(Bridge *b, PyObject *unused) {
    b->gc_count = 0;
    if (b->L != NULL && b->anchor != NULL)
        lua.gc(b->L, LUA_GCSTEP, 50);
    Py_RETURN_NONE;
}

/* One run or compilation counted (luaGC's gc_count): the step when gc_period of them are due.
 * ScriptCommand's plain runs count here in C (no dict write a run), Python's through gc_tick(). */
static void bridge_count_run(Bridge *b) {
    if (++b->gc_count >= b->gc_period) {
        b->gc_count = 0;
        if (b->L != NULL && b->anchor != NULL)
            lua.gc(b->L, LUA_GCSTEP, 50);
    }
}

static PyObject *bridge_gc_tick(Bridge *b, PyObject *unused) {
    bridge_count_run(b);
    Py_RETURN_NONE;
}

static PyMethodDef bridge_methods[] = {
    {"begin_attach", (PyCFunction)bridge_begin_attach, METH_NOARGS,
     "begin_attach(): the next dumpling_luabridge_open call (through package.loadlib) attaches this bridge"},
    {"run", (PyCFunction)(void (*)(void))bridge_run, METH_FASTCALL,
     "run(handle, eval_mode, hook, numkeys, argv, run) -> the reply, or the stashed marker (see take())"},
    {"gc_step", (PyCFunction)bridge_gc_step, METH_NOARGS, "gc_step(): one step of the Lua collector"},
    {"gc_tick", (PyCFunction)bridge_gc_tick, METH_NOARGS,
     "gc_tick(): one run counted; the collector's step when gc_period runs are due"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef bridge_members[] = {
    {"resp3", T_INT, offsetof(Bridge, resp3), 0, "redis.setresp(3) in force in the running script"},
    {"gc_count", T_LONG, offsetof(Bridge, gc_count), READONLY, "runs counted since the last collector step"},
    {"gc_period", T_LONG, offsetof(Bridge, gc_period), 0, "a collector step every that many runs"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef bridge_getset[] = {
    {"attached", (getter)bridge_attached, NULL, "whether the Lua side is attached and its runners set", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject BridgeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dumpling.scripting._luabridge.Bridge",
    .tp_basicsize = sizeof(Bridge),
    .tp_dealloc = (destructor)bridge_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C side of one Lua state's redis.call / redis.pcall and script runs",
    .tp_traverse = (traverseproc)bridge_traverse,
    .tp_clear = (inquiry)bridge_clear,
    .tp_methods = bridge_methods,
    .tp_members = bridge_members,
    .tp_getset = bridge_getset,
    .tp_new = bridge_new,
};

/* ------------------------------------------------------------------ EVALSHA / FCALL's plain run */

/* ScriptCommand(kind, reference, run_class, eval_run_class, owner_class, ErrorReply, compat_flag):
 * the handler of EVALSHA (kind 0), FCALL (1) or EVAL (2) that commands/scripting.py
 * registers when this module is built (manager.script_command).  The common run -- what
 * Scripting.invoke calls the plain run: an unrestricted caller's script or function without
 * flags (or an EVAL script without a shebang), found by its exact name (SHA, body) and run before (its
 * handle made), on a server without MONITOR, command gate, maxmemory or cluster, its Lua state
 * attached to this module -- is set up, run and taken down here, step for step as the Python
 * handler and invoke do it; anything else, and every error this side does not word itself,
 * goes to `reference`, the Python handler, which stays the reference: tests/test_scripting_bridge.py
 * runs the same streams through both and compares every byte and counter.  **A change to the
 * handler's or invoke's plain path must be made here too.**
 *
 * Attribute access through the C API costs ~200 instructions (more than the specialized
 * bytecode it replaces), so this side reads and writes the objects' __dict__s (Server, Client,
 * Scripting, LuaState: the test checks that no descriptor stands in between) and the slots of
 * Run, Script and Function at their offsets (found from the classes' member descriptors). */
enum {
    RUN_CALLER, RUN_CALLER_ARGV, RUN_CLIENT, RUN_NAME, RUN_EVAL_MODE, RUN_START, RUN_WRITE_DIRTY, RUN_ERROR_COUNTED,
    RUN_TIMED_OUT, RUN_REPL_CHANGED, RUN_SLOTS
};
static const char *const g_run_slots[RUN_SLOTS] = {"caller", "caller_argv", "client", "name", "eval_mode", "start",
                                                   "write_dirty", "error_counted", "timed_out", "repl_changed"};

enum { KIND_EVALSHA, KIND_FCALL, KIND_EVAL };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;                     /* KIND_EVALSHA, KIND_FCALL, KIND_EVAL */
    long compat_flag;             /* manager.EVAL_COMPAT_MODE */
    PyObject *reference;          /* the Python handler */
    PyObject *run_class;          /* manager.PlainTwinsRun */
    PyObject *eval_run_class;     /* manager.PlainEvalTwinsRun (an EVAL script without a shebang) */
    PyObject *owner_class;        /* manager.Script / functions.Function */
    PyObject *error_type;         /* protocol.ErrorReply */
    Py_ssize_t run_slot[RUN_SLOTS];
    Py_ssize_t owner_flags, owner_handle, owner_name, owner_from_eval; /* (from_eval: -1 for Function) */
    /* The last script or function plain_find found (find_owner): `found_owner` (borrowed) is
     * `found_table`'s entry for `found_key` while that dict keeps the version tag
     * `found_version` (as Seen's values: a request's name is a new bytes object each time,
     * whose hash and comparison cost a dict lookup ~500 instructions a run). */
    PyObject *found_table, *found_owner, *found_key; /* (found_key owned) */
    uint64_t found_version;
    /* FCALL's table, libraries.functions (borrowed), while the libraries' __dict__ keeps its tag */
    PyObject *functions_holder, *functions_table;
    uint64_t functions_version;
    PyObject *spare_run; /* the last run's Run (owned), made again by the next (plain_run_object) */
} ScriptCommand;

static PyObject *s_server, *s_scripting, *s_lua_debug, *s_scripts_by_sha, *s_scripts_by_body, *s_eval_state, *s_libraries, *s_functions,
    *s_function_state, *s_command_gate, *s_cluster, *s_unrestricted, *s_bridge, *s_eval_client, *s_function_client,
    *s_run, *s_resp3, *s_in_exec, *s_config, *s_values, *s_busy_threshold,
    *s_last_error_counted, *s_stashed_outcome, *s_run_ended, *s_touch,
    *s_raise_error, *g_empty_tuple;

static inline PyObject *slot_get(PyObject *obj, Py_ssize_t offset) { /* borrowed; NULL: unset */
    return *(PyObject **)((char *)obj + offset);
}

static inline void slot_put(PyObject *obj, Py_ssize_t offset, PyObject *value) {
    PyObject **slot = (PyObject **)((char *)obj + offset);
    PyObject *old = *slot;
    *slot = Py_NewRef(value);
    Py_XDECREF(old);
}

/* What a plain run needs, found by plain_find (new references). */
typedef struct {
    PyObject *server, *server_dict, *caller_dict, *scripting, *scripting_dict, *owner, *state, *state_dict, *client,
        *client_dict;
    Bridge *bridge;
    long handle;
    Py_ssize_t numkeys;
    int compat, from_eval;
    /* the server's and the Scripting object's attributes (seen_values: borrowed, valid while
     * those dicts keep their versions), and the two of the server's that plain_invoke reads
     * (owned) */
    PyObject *sv[SV_SEEN], *sc[SC_SEEN];
    PyObject *in_exec, *config;
} PlainCall;

static void plain_clear(PlainCall *p) {
    Py_CLEAR(p->server);
    Py_CLEAR(p->server_dict);
    Py_CLEAR(p->caller_dict);
    Py_CLEAR(p->scripting);
    Py_CLEAR(p->scripting_dict);
    Py_CLEAR(p->owner);
    Py_CLEAR(p->state);
    Py_CLEAR(p->state_dict);
    Py_CLEAR(p->client);
    Py_CLEAR(p->client_dict);
    Py_CLEAR(p->bridge);
    Py_CLEAR(p->in_exec);
    Py_CLEAR(p->config);
}

/* obj's __dict__ into *dict (a new reference): 1, 0 if it has none (slots), -1 error. */
static int dict_of(PyObject *obj, PyObject **dict) {
    if ((*dict = PyObject_GenericGetDict(obj, NULL)) != NULL) {
        if (PyDict_CheckExact(*dict))
            return 1;
        Py_CLEAR(*dict);
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_AttributeError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* Compare getattr(obj, name) (read from obj's `dict` when there) with None / truth: the
 * condition's result 1 or 0, -1 error. */
enum { IS_NONE, IS_TRUE, IS_FALSE };
static int attr_test(PyObject *obj, PyObject *dict, PyObject *name, int test) {
    PyObject *v = attr_in(obj, dict, name);
    if (v == NULL)
        return -1;
    int r = test == IS_NONE ? v == Py_None : PyObject_IsTrue(v);
    Py_DECREF(v);
    return r < 0 ? -1 : test == IS_FALSE ? !r : r;
}

/* 1 if v is false (None, 0, an empty list: what the server's monitors and maxmemory hold, tested
 * without running any code), 0 if not, -1 error. */
static int falsy(PyObject *v) {
    if (v == Py_None)
        return 1;
    if (PyList_CheckExact(v))
        return PyList_GET_SIZE(v) == 0;
    if (PyLong_CheckExact(v))
        return Py_SIZE(v) == 0;
    Py_INCREF(v); /* (held while tested: a __bool__ could change the dict) */
    int r = PyObject_Not(v);
    Py_DECREF(v);
    return r;
}

static PyObject **const g_sv_names[SV_SEEN] = {&s_monitors, &s_command_gate, &s_maxmemory, &s_cluster, &s_scripting,
                                               &s_in_exec, &s_config, &s_call_hooks, &s_renamed, &s_keyspace,
                                               &s_slowlog_threshold, &s_latency_tracking};
static PyObject **const g_sc_names[SC_SEEN] = {&s_scripts_by_sha, &s_scripts_by_body, &s_eval_state, &s_eval_client,
                                               &s_libraries, &s_function_state, &s_function_client};

/* table[name] (borrowed; NULL: not there, or an error), remembered for the next run's name. */
static PyObject *find_owner(ScriptCommand *self, PyObject *table, PyObject *name) {
    Py_ssize_t n = PyBytes_GET_SIZE(name);
    if (SEEN_VERSIONS && self->found_table == table && self->found_version == dict_version(table) &&
        PyBytes_GET_SIZE(self->found_key) == n && memcmp(PyBytes_AS_STRING(self->found_key), PyBytes_AS_STRING(name),
                                                         (size_t)n) == 0)
        return self->found_owner;
    PyObject *owner = PyDict_GetItemWithError(table, name);
    if (owner != NULL) {
        Py_XSETREF(self->found_key, Py_NewRef(name));
        self->found_table = table;
        self->found_version = dict_version(table);
        self->found_owner = owner;
    }
    return owner;
}

/* libraries.functions (a new reference), read from the libraries' __dict__ and remembered with
 * its version tag. */
static PyObject *functions_of(ScriptCommand *self, PyObject *libraries) {
    PyObject *dict = NULL, *table;
    int r = dict_of(libraries, &dict);
    if (r < 0)
        return NULL;
    if (r == 0)
        return PyObject_GetAttr(libraries, s_functions);
    if (SEEN_VERSIONS && self->functions_holder == dict && self->functions_version == dict_version(dict)) {
        table = Py_NewRef(self->functions_table);
    } else {
        self->functions_holder = NULL;
        table = PyDict_GetItemWithError(dict, s_functions);
        if (table != NULL) {
            self->functions_holder = dict;
            self->functions_version = dict_version(dict);
            self->functions_table = table;
            Py_INCREF(table);
        } else if (!PyErr_Occurred()) {
            table = PyObject_GetAttr(libraries, s_functions);
        }
    }
    Py_DECREF(dict);
    return table;
}

/* A caller found unrestricted and not debugging, while its __dict__ keeps this version tag (the
 * two attribute tests cost ~300 instructions a run). */
static struct {
    PyObject *dict; /* (borrowed) */
    uint64_t version;
} g_caller_plain;

/* Whether the request is a plain run (the Python handler's and invoke's conditions for it): 1
 * (p filled), 0 not (the Python handler takes it), -1 error. */
static int plain_find(ScriptCommand *self, PyObject *caller, PyObject *argv, PlainCall *p) {
    Py_ssize_t argc = PyList_GET_SIZE(argv);
    PyObject *target = PyList_GET_ITEM(argv, 1), *count = PyList_GET_ITEM(argv, 2), *table = NULL, *v = NULL;
    if (!PyBytes_CheckExact(target) || !PyBytes_CheckExact(count))
        return 0;
    /* numkeys in its canonical form (anything else: the handler's parser and its errors) */
    const char *digits = PyBytes_AS_STRING(count);
    Py_ssize_t len = PyBytes_GET_SIZE(count);
    if (len < 1 || len > 9 || (digits[0] == '0' && len > 1))
        return 0;
    Py_ssize_t numkeys = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return 0;
        numkeys = numkeys * 10 + (digits[i] - '0');
    }
    if (numkeys > argc - 3 || (self->kind == KIND_EVALSHA && PyBytes_GET_SIZE(target) != 40))
        return 0;
    p->numkeys = numkeys;
    int r;
    if ((r = dict_of(caller, &p->caller_dict)) <= 0 || (p->server = attr_in(caller, p->caller_dict, s_server)) == NULL ||
        (r = dict_of(p->server, &p->server_dict)) <= 0)
        return p->server == NULL && r > 0 ? -1 : r;
    /* the server: no MONITOR (the handler feeds it), gate, maxmemory, cluster; the caller
     * unrestricted and not debugging */
    if ((r = seen_values(&g_sv_seen, p->server_dict, g_sv_names, SV_SEEN, p->sv)) <= 0)
        return r;
    if ((r = falsy(p->sv[SV_MONITORS])) != 1 || (r = p->sv[SV_GATE] == Py_None) != 1 ||
        (r = falsy(p->sv[SV_MAXMEMORY])) != 1 || (r = p->sv[SV_CLUSTER] == Py_None) != 1)
        return r;
    p->in_exec = Py_NewRef(p->sv[SV_IN_EXEC]);
    p->config = Py_NewRef(p->sv[SV_CONFIG]);
    if (!(SEEN_VERSIONS && g_caller_plain.dict == p->caller_dict &&
          g_caller_plain.version == dict_version(p->caller_dict))) {
        g_caller_plain.dict = NULL;
        if ((r = attr_test(caller, p->caller_dict, s_lua_debug, IS_NONE)) != 1 ||
            (r = attr_test(caller, p->caller_dict, s_unrestricted, IS_TRUE)) != 1)
            return r;
        g_caller_plain.dict = p->caller_dict;
        g_caller_plain.version = dict_version(p->caller_dict);
    }
    p->scripting = Py_NewRef(p->sv[SV_SCRIPTING]);
    if ((r = dict_of(p->scripting, &p->scripting_dict)) <= 0 ||
        (r = seen_values(&g_sc_seen, p->scripting_dict, g_sc_names, SC_SEEN, p->sc)) <= 0)
        return r;
    /* (owned from here: the state and client, the table, the libraries while they are read) */
    int eval_mode = self->kind != KIND_FCALL;
    p->state = Py_NewRef(p->sc[eval_mode ? SC_EVAL_STATE : SC_FUNCTION_STATE]);
    p->client = Py_NewRef(p->sc[eval_mode ? SC_EVAL_CLIENT : SC_FUNCTION_CLIENT]);
    if (self->kind != KIND_FCALL) { /* EVALSHA, EVAL: the cached script of that exact SHA, or body */
        table = Py_NewRef(p->sc[self->kind == KIND_EVAL ? SC_BY_BODY : SC_BY_SHA]);
    } else { /* FCALL: the function of that exact (lower-case) name */
        PyObject *libraries = Py_NewRef(p->sc[SC_LIBRARIES]);
        table = functions_of(self, libraries);
        Py_DECREF(libraries);
    }
    if (table == NULL)
        return -1;
    if (PyDict_CheckExact(table))
        p->owner = Py_XNewRef(find_owner(self, table, target));
    Py_DECREF(table);
    if (p->owner == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!Py_IS_TYPE(p->owner, (PyTypeObject *)self->owner_class))
        return 0;
    /* its flags: none (or an EVAL script without a shebang); its handle made by a first run */
    PyObject *flags_obj = slot_get(p->owner, self->owner_flags), *handle = slot_get(p->owner, self->owner_handle);
    if (flags_obj == NULL || !PyLong_CheckExact(flags_obj) || handle == NULL || !PyLong_CheckExact(handle) ||
        slot_get(p->owner, self->owner_name) == NULL)
        return 0;
    long flags = PyLong_AsLong(flags_obj);
    p->handle = PyLong_AsLong(handle);
    if (PyErr_Occurred())
        return -1;
    if (flags != 0 && flags != self->compat_flag)
        return 0;
    p->compat = flags != 0;
    p->from_eval = self->owner_from_eval >= 0 && slot_get(p->owner, self->owner_from_eval) == Py_True;
    if (p->state == Py_None || (r = dict_of(p->state, &p->state_dict)) <= 0 || (r = dict_of(p->client, &p->client_dict)) <= 0)
        return p->state == Py_None ? 0 : r;
    /* the Lua state runs through a bridge of this module, attached */
    if ((v = attr_in(p->state, p->state_dict, s_bridge)) == NULL)
        return -1;
    if (!Py_IS_TYPE(v, &BridgeType) || !bridge_ready((Bridge *)v)) {
        Py_DECREF(v);
        return 0;
    }
    p->bridge = (Bridge *)v;
    return 1;
}

static double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Whether a run takes the count hook: config.values["busy-reply-threshold"] > 0 (1, 0, or -1
 * error).  The answer is remembered while the config's __dict__ and its values dict (which
 * CONFIG SET changes in place) keep their version tags. */
static struct {
    PyObject *config_dict, *values; /* (borrowed, as keyspace_plain's) NULL: nothing remembered */
    uint64_t config_version, values_version;
    int hook;
} g_hook_seen;

static int busy_hook(PyObject *config) {
    PyObject *config_dict = NULL, *values = NULL;
    if (dict_of(config, &config_dict) < 0)
        return -1;
    if (SEEN_VERSIONS && config_dict != NULL && g_hook_seen.config_dict == config_dict &&
        g_hook_seen.config_version == dict_version(config_dict) &&
        g_hook_seen.values_version == dict_version(g_hook_seen.values)) { /* (values: in config_dict) */
        Py_DECREF(config_dict);
        return g_hook_seen.hook;
    }
    values = config_dict != NULL ? attr_in(config, config_dict, s_values) : PyObject_GetAttr(config, s_values);
    PyObject *threshold = values == NULL ? NULL : PyObject_GetItem(values, s_busy_threshold);
    int hook = -1;
    if (threshold != NULL) {
        long long ms = PyLong_AsLongLong(threshold);
        hook = ms == -1 && PyErr_Occurred() ? -1 : ms > 0;
        Py_DECREF(threshold);
    }
    g_hook_seen.config_dict = g_hook_seen.values = NULL;
    PyObject *in_dict = hook >= 0 && config_dict != NULL ? PyDict_GetItemWithError(config_dict, s_values) : NULL;
    if (in_dict == NULL && PyErr_Occurred())
        hook = -1;
    if (in_dict != NULL && in_dict == values && PyDict_CheckExact(values)) { /* (values in the dict itself) */
        g_hook_seen.config_dict = config_dict;
        g_hook_seen.values = values;
        g_hook_seen.config_version = dict_version(config_dict);
        g_hook_seen.values_version = dict_version(values);
        g_hook_seen.hook = hook;
    }
    Py_XDECREF(config_dict);
    Py_XDECREF(values);
    return hook;
}

/* What plain runs last wrote (borrowed, as Seen's values), so that a run skips writing the same
 * again (~170 instructions a dict write): the script client's db (and resp3 False) while its
 * __dict__ keeps `client_version`; the server's current_client while the server's __dict__ keeps
 * `server_version`; scripting's last_error_counted while its __dict__ keeps `scripting_version`.
 * A run knows a value is still there when the dict is as the last run left it at its start and
 * nothing but the run itself wrote the dict since (its stamps, as seen_before_write keeps them). */
static struct {
    PyObject *client_dict, *db;
    uint64_t client_version;
    PyObject *server_dict, *current;
    uint64_t server_version;
    PyObject *scripting_dict, *error_counted;
    uint64_t scripting_version;
} g_written;

/* The Run of a plain run: the last one again when nothing else holds it and nothing was set in
 * its __dict__ (the rare fields stay their class's defaults; the slots are all stored anew), else
 * a new one (which the next run may take again).  Making and freeing one cost ~550 instructions. */
static PyObject *plain_run_object(ScriptCommand *self, PyObject *run_class) {
    PyObject *run = self->spare_run;
    if (run != NULL && Py_REFCNT(run) == 1 && Py_IS_TYPE(run, (PyTypeObject *)run_class)) {
        PyObject *dict = PyObject_GenericGetDict(run, NULL); /* (made once, empty, then kept) */
        if (dict == NULL)
            return NULL;
        int empty = PyDict_CheckExact(dict) && PyDict_GET_SIZE(dict) == 0;
        Py_DECREF(dict);
        if (empty)
            return Py_NewRef(run);
    }
    run = PyBaseObject_Type.tp_new((PyTypeObject *)run_class, g_empty_tuple, NULL);
    if (run != NULL)
        Py_XSETREF(self->spare_run, Py_NewRef(run));
    return run;
}

/* The run's end for its Run kept for the next: the references to the caller, its request and
 * the script client dropped (the spare must keep no client or server alive: a ScriptCommand
 * serves every Server of the process). */
static void plain_run_done(ScriptCommand *self, PyObject *run) {
    if (run != self->spare_run || Py_REFCNT(run) != 2)
        return;
    const int drop[] = {RUN_CALLER, RUN_CALLER_ARGV, RUN_CLIENT};
    for (int i = 0; i < 3; i++) {
        PyObject **slot = (PyObject **)((char *)run + self->run_slot[drop[i]]);
        Py_CLEAR(*slot);
    }
}

/* Scripting.invoke's plain run and the handler's end, for a request plain_find took: the reply,
 * or NULL with the exception (the script's error reply raised as the command's error). */
static PyObject *plain_invoke(ScriptCommand *self, PyObject *caller, PyObject *argv, PlainCall *p) {
    PyObject *run_class = p->compat ? self->eval_run_class : self->run_class;
    PyObject *run = plain_run_object(self, run_class);
    if (run == NULL)
        return NULL;
    PyObject *was_in_exec = NULL, *db = NULL, *start = NULL, *reply = NULL, *v = NULL;
    int eval_mode = self->kind != KIND_FCALL;
    if ((start = PyFloat_FromDouble(monotonic_seconds())) == NULL) {
        Py_DECREF(run);
        return NULL;
    }
    slot_put(run, self->run_slot[RUN_WRITE_DIRTY], Py_False);
    slot_put(run, self->run_slot[RUN_ERROR_COUNTED], Py_False);
    slot_put(run, self->run_slot[RUN_TIMED_OUT], Py_False);
    slot_put(run, self->run_slot[RUN_REPL_CHANGED], Py_False);
    slot_put(run, self->run_slot[RUN_CALLER], caller);
    slot_put(run, self->run_slot[RUN_CALLER_ARGV], argv);
    slot_put(run, self->run_slot[RUN_CLIENT], p->client);
    slot_put(run, self->run_slot[RUN_NAME], slot_get(p->owner, self->owner_name));
    slot_put(run, self->run_slot[RUN_EVAL_MODE], eval_mode ? Py_True : Py_False);
    slot_put(run, self->run_slot[RUN_START], start);
    Py_DECREF(start);
    if ((db = attr_in(caller, p->caller_dict, s_db)) == NULL) {
        plain_run_done(self, run);
        Py_DECREF(run);
        return NULL;
    }
    /* client.db = caller.db; client.resp3 = False (unless the last run left them so) */
    if (!(SEEN_VERSIONS && g_written.client_dict == p->client_dict && g_written.db == db &&
          g_written.client_version == dict_version(p->client_dict))) {
        g_written.client_dict = NULL;
        if (PyDict_SetItem(p->client_dict, s_db, db) < 0 || PyDict_SetItem(p->client_dict, s_resp3, Py_False) < 0) {
            Py_DECREF(db);
            plain_run_done(self, run);
            Py_DECREF(run);
            return NULL;
        }
        g_written.client_dict = p->client_dict;
        g_written.client_version = dict_version(p->client_dict);
        g_written.db = db;
    }
    was_in_exec = Py_NewRef(p->in_exec);
    /* current_client and last_error_counted as the last run left them, if their dicts are so */
    uint64_t current_stamp = SEEN_VERSIONS && g_written.server_dict == p->server_dict && g_written.current == caller &&
                                     g_written.server_version == dict_version(p->server_dict)
                                 ? g_written.server_version
                                 : 0;
    uint64_t counted_stamp = SEEN_VERSIONS && g_written.scripting_dict == p->scripting_dict &&
                                     g_written.scripting_version == dict_version(p->scripting_dict)
                                 ? g_written.scripting_version
                                 : 0;
    /* the server's values stay valid for twins_ready and the next run while nothing but this
     * run writes its dict: `stamp` is the version this run's own write gives it (0: not so) */
    uint64_t stamp = seen_valid(&g_sv_seen, p->server_dict) ? dict_version(p->server_dict) : 0;
    uint64_t sc_stamp = seen_valid(&g_sc_seen, p->scripting_dict) ? dict_version(p->scripting_dict) : 0;
    /* from here on, the run is taken down whatever happens */
    if (PyDict_SetItem(p->server_dict, s_in_exec, Py_True) < 0) {
        stamp = current_stamp = 0;
        goto teardown;
    }
    seen_after_write(&stamp, p->server_dict);
    seen_after_write(&current_stamp, p->server_dict);
    int run_set = PyDict_SetItem(p->scripting_dict, s_run, run);
    seen_after_write(&sc_stamp, p->scripting_dict);
    seen_after_write(&counted_stamp, p->scripting_dict);
    if (run_set < 0)
        goto teardown;
    int hook = busy_hook(p->config); /* the count hook if busy-reply-threshold > 0 */
    if (hook < 0)
        goto teardown;
    reply = run_script(p->bridge, p->handle, eval_mode, hook, p->numkeys, argv, run, g_twin != NULL, p->client, db,
                       self->run_slot[RUN_WRITE_DIRTY], stamp != 0 ? p->sv : NULL, stamp);
    if (reply == p->bridge->stashed) /* not a string, a number or nil: converted in Python */
        Py_SETREF(reply, PyObject_CallMethodObjArgs(p->scripting, s_stashed_outcome, run, p->state, NULL));
teardown:;
    /* invoke's `finally` (an error in it replaces the run's, as in Python) */
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    PyErr_Fetch(&type, &value, &tb);
    seen_before_write(&stamp, p->server_dict); /* (only this run wrote them so far?) */
    seen_before_write(&current_stamp, p->server_dict);
    seen_before_write(&sc_stamp, p->scripting_dict);
    seen_before_write(&counted_stamp, p->scripting_dict);
    g_written.server_dict = NULL;
    int bad = PyDict_SetItem(p->scripting_dict, s_run, Py_None) < 0 ||
              PyDict_SetItem(p->server_dict, s_in_exec, was_in_exec) < 0;
    seen_after_write(&current_stamp, p->server_dict);
    /* current_client = caller: always (with _fastpath built it is ServerBase's member, outside the
     * dict, which the C read loop sets without touching the dict's version) */
    if (!bad)
        bad = PyObject_SetAttr(p->server, s_current_client, caller) < 0;
    if (!bad) {
        g_written.server_dict = p->server_dict;
        g_written.server_version = dict_version(p->server_dict);
        g_written.current = caller;
    }
    /* in_exec is back to what it was (the value remembered; current_client is in g_written) */
    seen_after_write(&stamp, p->server_dict);
    seen_restamp(&g_sv_seen, bad ? 0 : stamp, p->server_dict);
    seen_after_write(&sc_stamp, p->scripting_dict);
    seen_after_write(&counted_stamp, p->scripting_dict);
    if (bad)
        sc_stamp = counted_stamp = 0;
    if (!bad) /* Redis's luaGC: a collector step every gc_period runs (LuaState.gc_tick) */
        bridge_count_run(p->bridge);
    /* a busy script's end, redis.set_repl's end (Scripting.run_ended) */
    if (!bad && (slot_get(run, self->run_slot[RUN_TIMED_OUT]) != Py_False ||
                 slot_get(run, self->run_slot[RUN_REPL_CHANGED]) != Py_False)) {
        v = PyObject_CallMethodObjArgs(p->scripting, s_run_ended, run, NULL);
        bad = v == NULL;
        Py_CLEAR(v);
    }
    if (bad) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        Py_CLEAR(reply);
    } else {
        PyErr_Restore(type, value, tb);
    }
    seen_before_write(&sc_stamp, p->scripting_dict);
    seen_before_write(&counted_stamp, p->scripting_dict);
    g_written.scripting_dict = NULL;
    if (reply != NULL) { /* scripting.last_error_counted = run.error_counted (unless it is so still) */
        v = slot_get(run, self->run_slot[RUN_ERROR_COUNTED]);
        if (v != NULL && counted_stamp != 0 && v == g_written.error_counted) {
            /* (the dict as the last run left it, written since only by this run) */
        } else if (v == NULL || PyDict_SetItem(p->scripting_dict, s_last_error_counted, v) < 0) {
            if (v == NULL)
                PyErr_SetString(PyExc_AttributeError, "error_counted");
            Py_CLEAR(reply);
            sc_stamp = 0;
        }
        if (reply != NULL) {
            g_written.scripting_dict = p->scripting_dict;
            g_written.error_counted = v;
        }
    }
    seen_after_write(&sc_stamp, p->scripting_dict);
    if (g_written.scripting_dict != NULL)
        g_written.scripting_version = dict_version(p->scripting_dict);
    seen_restamp(&g_sc_seen, sc_stamp, p->scripting_dict);
    /* the handler's end: an EVAL-created script's place in the LRU list; an error reply raised */
    if (reply != NULL && p->from_eval) {
        if ((v = PyObject_CallMethodObjArgs(p->scripting, s_touch, p->owner, NULL)) == NULL)
            Py_CLEAR(reply);
        Py_XDECREF(v);
    }
    if (reply != NULL && Py_IS_TYPE(reply, (PyTypeObject *)self->error_type)) {
        v = PyObject_CallMethodObjArgs(p->scripting, s_raise_error, reply, NULL);
        Py_CLEAR(reply);
        if (v != NULL) {
            Py_DECREF(v);
            PyErr_SetString(PyExc_SystemError, "Scripting.raise_error returned");
        }
    }
    Py_DECREF(was_in_exec);
    Py_DECREF(db);
    plain_run_done(self, run);
    Py_DECREF(run);
    return reply;
}

static PyObject *script_command_vectorcall(ScriptCommand *self, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs == 2 && kwnames == NULL && PyList_CheckExact(args[1]) && PyList_GET_SIZE(args[1]) >= 3) {
        PlainCall p;
        memset(&p, 0, sizeof p);
        int r = plain_find(self, args[0], args[1], &p);
        PyObject *reply = r > 0 ? plain_invoke(self, args[0], args[1], &p) : NULL;
        plain_clear(&p);
        if (r != 0)
            return reply;
    }
    return PyObject_Vectorcall(self->reference, args, nargsf, kwnames);
}

static PyObject *script_command_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    int kind;
    long compat_flag;
    PyObject *reference, *run_class, *eval_run_class, *owner_class, *error_type;
    if (!PyArg_ParseTuple(args, "iOOOOOl", &kind, &reference, &run_class, &eval_run_class, &owner_class, &error_type,
                          &compat_flag))
        return NULL;
    if ((kind != KIND_EVALSHA && kind != KIND_FCALL && kind != KIND_EVAL) || !PyType_Check(run_class) || !PyType_Check(eval_run_class) ||
        !PyType_Check(owner_class) || !PyType_Check(error_type)) {
        PyErr_SetString(PyExc_ValueError, "ScriptCommand(0 EVALSHA | 1 FCALL | 2 EVAL, reference, run class, EVAL run class, "
                                          "Script | Function, ErrorReply, compat flag)");
        return NULL;
    }
    ScriptCommand *self = (ScriptCommand *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = (vectorcallfunc)script_command_vectorcall;
    self->kind = kind;
    self->compat_flag = compat_flag;
    self->reference = Py_NewRef(reference);
    self->run_class = Py_NewRef(run_class);
    self->eval_run_class = Py_NewRef(eval_run_class);
    self->owner_class = Py_NewRef(owner_class);
    self->error_type = Py_NewRef(error_type);
    for (int i = 0; i < RUN_SLOTS; i++) { /* both run classes: one layout */
        Py_ssize_t offset = native_slot_offset(run_class, g_run_slots[i]);
        if (offset < 0 || native_slot_offset(eval_run_class, g_run_slots[i]) != offset) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "the run classes' slots differ");
            goto failed;
        }
        self->run_slot[i] = offset;
    }
    if ((self->owner_flags = native_slot_offset(owner_class, "flags")) < 0 ||
        (self->owner_handle = native_slot_offset(owner_class, "handle")) < 0 ||
        (self->owner_name = native_slot_offset(owner_class, kind == KIND_FCALL ? "label" : "sha")) < 0)
        goto failed;
    self->owner_from_eval = kind != KIND_FCALL ? native_slot_offset(owner_class, "from_eval") : -1;
    if (PyErr_Occurred())
        goto failed;
    return (PyObject *)self;
failed:
    Py_DECREF(self);
    return NULL;
}

static int script_command_traverse(ScriptCommand *self, visitproc visit, void *arg) {
    Py_VISIT(self->reference);
    Py_VISIT(self->run_class);
    Py_VISIT(self->eval_run_class);
    Py_VISIT(self->owner_class);
    Py_VISIT(self->error_type);
    Py_VISIT(self->spare_run);
    return 0;
}

static int script_command_clear(ScriptCommand *self) {
    self->found_table = self->functions_holder = NULL;
    Py_CLEAR(self->found_key);
    Py_CLEAR(self->spare_run);
    Py_CLEAR(self->reference);
    Py_CLEAR(self->run_class);
    Py_CLEAR(self->eval_run_class);
    Py_CLEAR(self->owner_class);
    Py_CLEAR(self->error_type);
    return 0;
}

static void script_command_dealloc(ScriptCommand *self) {
    PyObject_GC_UnTrack(self);
    script_command_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef script_command_members[] = {
    {"reference", T_OBJECT, offsetof(ScriptCommand, reference), READONLY, "the Python handler"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ScriptCommandType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dumpling.scripting._luabridge.ScriptCommand",
    .tp_basicsize = sizeof(ScriptCommand),
    .tp_dealloc = (destructor)script_command_dealloc,
    .tp_vectorcall_offset = offsetof(ScriptCommand, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "EVALSHA's or FCALL's handler: the plain run in C, anything else through the Python handler",
    .tp_traverse = (traverseproc)script_command_traverse,
    .tp_clear = (inquiry)script_command_clear,
    .tp_members = script_command_members,
    .tp_new = script_command_new,
};

/* use_twins(capsule or None, record_latency, Database): _fastpath's twins for redis.call (see
 * twin_route), and the class whose slots hold a database's dicts (load_db_slots) */
static PyObject *bridge_use_twins(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "use_twins(twin_call capsule or None, record_latency, Database)");
        return NULL;
    }
    TwinCall twin = NULL;
    if (args[0] != Py_None && (twin = (TwinCall)PyCapsule_GetPointer(args[0], TWIN_CAPSULE)) == NULL)
        return NULL;
    if (!PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "use_twins: the Database class");
        return NULL;
    }
    static const char *const names[DB_SLOTS] = {"data", "expires", "slot_index"};
    Py_ssize_t offsets[DB_SLOTS];
    for (int i = 0; i < DB_SLOTS; i++)
        if ((offsets[i] = native_slot_offset(args[2], names[i])) < 0)
            return NULL;
    memcpy(g_db_slot, offsets, sizeof offsets);
    Py_XSETREF(g_db_type, (PyTypeObject *)Py_NewRef(args[2]));
    Py_XSETREF(g_record_latency, Py_NewRef(args[1]));
    g_twin = twin;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"resolve", bridge_resolve, METH_O, "resolve(path of lupa.lua51) -> whether the Lua C API was found there"},
    {"use_twins", (PyCFunction)(void (*)(void))bridge_use_twins, METH_FASTCALL,
     "use_twins(_fastpath.twin_call or None, dispatch.record_latency, keyspace.Database): redis.call runs "
     "_fastpath's twins"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dumpling.scripting._luabridge",
    "redis.call / redis.pcall and script runs as C functions on lupa's lua_State.", -1, methods,
};

PyMODINIT_FUNC PyInit__luabridge(void) {
    if ((s_message = PyUnicode_InternFromString("message")) == NULL ||
        (s_counted = PyUnicode_InternFromString("counted")) == NULL ||
        (s_text = PyUnicode_InternFromString("text")) == NULL ||
        (s_unchecked = PyUnicode_InternFromString("unchecked")) == NULL ||
        (s_writes_admitted = PyUnicode_InternFromString("writes_admitted")) == NULL ||
        (s_write_dirty = PyUnicode_InternFromString("write_dirty")) == NULL ||
        (s_client = PyUnicode_InternFromString("client")) == NULL ||
        (s_fast_table = PyUnicode_InternFromString("fast_table")) == NULL ||
        (s_noscript = PyUnicode_InternFromString("noscript")) == NULL ||
        (s_is_write = PyUnicode_InternFromString("is_write")) == NULL ||
        (s_arity = PyUnicode_InternFromString("arity")) == NULL)
        return NULL;
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_keyspace, "keyspace");
    INTERN(s_now, "now");
    INTERN(s_slowlog_threshold, "slowlog_threshold");
    INTERN(s_latency_tracking, "latency_tracking");
    INTERN(s_db, "db");
    INTERN(s_data, "data");
    INTERN(s_expires, "expires");
    INTERN(s_slot_index, "slot_index");
    g_db_names = (NativeDbNames){s_db, s_slot_index, s_data, s_expires};
    native_import_keytable(); /* (none: the twins' route stays off, see native_load_db) */
    INTERN(s_current_client, "current_client");
    INTERN(s_last_cmd, "last_cmd");
    INTERN(s_name, "name");
    INTERN(s_calls, "calls");
    INTERN(s_usec, "usec");
    INTERN(s_latency, "latency");
    INTERN(s_record, "record");
    INTERN(s_stat_commands, "stat_commands");
    INTERN(s_stat_hits, "stat_hits");
    INTERN(s_stat_misses, "stat_misses");
    INTERN(s_dirty, "dirty");
    INTERN(s_twins, "twins");
    INTERN(s_slow_call, "slow_call");
    INTERN(s_call_hooks, "call_hooks");
    INTERN(s_monitors, "monitors");
    INTERN(s_maxmemory, "maxmemory");
    INTERN(s_renamed, "fastpath_off_for_renames");
    INTERN(s_tracking, "tracking");
    INTERN(s_watched, "watched");
    INTERN(s_notify_flags, "notify_flags");
    INTERN(s_lfu, "lfu");
    INTERN(s_loading, "loading");
    INTERN(s_no_touch, "no_touch");
    INTERN(s_server, "server");
    INTERN(s_scripting, "scripting");
    INTERN(s_lua_debug, "lua_debug");
    INTERN(s_scripts_by_sha, "scripts_by_sha");
    INTERN(s_scripts_by_body, "scripts_by_body");
    INTERN(s_eval_state, "eval_state");
    INTERN(s_libraries, "libraries");
    INTERN(s_functions, "functions");
    INTERN(s_function_state, "_function_state");
    INTERN(s_command_gate, "command_gate");
    INTERN(s_cluster, "cluster");
    INTERN(s_unrestricted, "unrestricted");
    INTERN(s_bridge, "bridge");
    INTERN(s_eval_client, "eval_client");
    INTERN(s_function_client, "function_client");
    INTERN(s_run, "run");
    INTERN(s_resp3, "resp3");
    INTERN(s_in_exec, "in_exec");
    INTERN(s_config, "config");
    INTERN(s_values, "values");
    INTERN(s_busy_threshold, "busy-reply-threshold");
    INTERN(s_last_error_counted, "last_error_counted");
    INTERN(s_stashed_outcome, "stashed_outcome");
    INTERN(s_run_ended, "run_ended");
    INTERN(s_touch, "touch");
    INTERN(s_raise_error, "raise_error");
#undef INTERN
    if ((g_empty_tuple = PyTuple_New(0)) == NULL)
        return NULL;
    PyObject *threading = PyImport_ImportModule("threading"); /* threading.main_thread().ident */
    PyObject *main_thread = threading == NULL ? NULL : PyObject_CallMethod(threading, "main_thread", NULL);
    PyObject *ident = main_thread == NULL ? NULL : PyObject_GetAttrString(main_thread, "ident");
    Py_XDECREF(threading);
    Py_XDECREF(main_thread);
    if (ident == NULL)
        return NULL;
    g_main_thread = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred())
        return NULL;
    if (PyType_Ready(&BridgeType) < 0 || PyType_Ready(&ScriptCommandType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Bridge", (PyObject *)&BridgeType) < 0 ||
        PyModule_AddObjectRef(m, "ScriptCommand", (PyObject *)&ScriptCommandType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
