-- dumpling's Lua sandbox: what Redis 7.4 sets up around a script, in plain Lua 5.1.
--
-- Loaded once per Lua state (chunk name "@dumpling", so the error handler can skip
-- these frames) with the Python hooks as arguments; returns the table of helpers
-- the Python side uses.  Redis patches its Lua VM to make tables read-only; plain
-- Lua cannot, so every protected table is an empty proxy whose metatable reads
-- through to the real table and refuses writes, and the few built-ins that bypass
-- metatables (rawset, rawget, next, pairs, setmetatable, table.insert/remove/sort)
-- are wrapped to see through proxies and refuse writes to them.

local py = ...
-- Python callables a script may call with an unpack()ed table go through spreading()
-- (lib_common.SPREAD_LUA): lupa refuses a call of ~8000 arguments, Redis takes them.
local spreading = py.spreading

local error, type, tostring, select, setmetatable, getmetatable = error, type, tostring, select, setmetatable, getmetatable
local raw_rawset, raw_rawget, raw_next, raw_getmetatable = rawset, rawget, next, getmetatable
local dbg = debug
local G = _G

-- The thread's own globals (G) stay as lupa needs them, minus the ``python`` bridge;
-- scripts see another table (E, behind the read-only proxy P) holding only what
-- Redis 7.4 allows: no io, package, require, loadfile, dofile, print, module, debug,
-- and an os with only os.clock.
local clock = os.clock
G.python = nil
local E = {}
for _, name in ipairs({
    "string", "math", "table", "coroutine", "xpcall", "tostring", "getfenv", "setmetatable", "next", "assert",
    "tonumber", "rawequal", "collectgarbage", "getmetatable", "rawset", "pcall", "type", "select", "unpack",
    "gcinfo", "pairs", "rawget", "loadstring", "ipairs", "_VERSION", "setfenv", "load", "error", "newproxy",
}) do
    E[name] = G[name]
end
E.os = {clock = clock}
-- What neither scripts nor the libraries (compiled later, from G) use leaves the thread's
-- globals and package.loaded too, so that Redis's GC step walks a smaller heap (~5 KB, a
-- few dozen objects): io and its files, os (E keeps os.clock), package with its loaders (the
-- bridge opened its entry point before this chunk runs), and the file loaders and print.
local loaded = G.package.loaded
for _, name in ipairs({"io", "os", "package", "print", "dofile", "loadfile", "require", "module"}) do
    G[name] = nil
    loaded[name] = nil
end
-- Redis's cjson, cmsgpack, bit and struct are C and cost its Lua heap nothing; ours are Lua
-- (~120 KB compiled).  Each is compiled the first time a script touches it: until then its
-- table is empty and listed in ``unloaded`` with its loader (``fill`` runs it).
local unloaded = {}
for _, name in ipairs({"cjson", "bit", "struct", "cmsgpack"}) do
    local lib = {}
    unloaded[lib] = function() return py.library(name) end
    E[name] = lib
end

-- ---------------------------------------------------------------- read-only tables

local real_of = setmetatable({}, {__mode = "k"})    -- proxy -> real table
local proxy_of = setmetatable({}, {__mode = "k"})   -- real table -> proxy

local function readonly_error()
    error("Attempt to modify a readonly table", 2)
end

-- A read-only view of ``real`` (and of the tables it holds).  getmetatable() of a
-- view is nil, as for Redis's plain read-only tables, so the real table stays hidden.
local protect
-- An unloaded library's table gets its contents (protected like the rest).
local function fill(real)
    local load = unloaded[real]
    if load == nil then return end
    unloaded[real] = nil
    for k, v in raw_next, load() do
        if type(v) == "table" then v = protect(v) end
        raw_rawset(real, k, v)
    end
end

protect = function(real)
    if real_of[real] then return real end
    local known = proxy_of[real]
    if known then return known end
    local proxy = {}
    real_of[proxy] = real
    proxy_of[real] = proxy
    for k, v in raw_next, real do
        if type(v) == "table" then raw_rawset(real, k, protect(v)) end
    end
    local meta = {__index = real, __newindex = readonly_error}
    if unloaded[real] then
        meta.__index = function(_, k)
            fill(real)
            meta.__index = real
            return real[k]
        end
    end
    setmetatable(proxy, meta)
    return proxy
end

local function is_protected(t)
    return real_of[t] ~= nil
end

E.rawset = function(t, k, v)
    if real_of[t] then error("Attempt to modify a readonly table", 0) end
    return raw_rawset(t, k, v)
end
E.rawget = function(t, k)
    local real = real_of[t]
    if real and real ~= t then
        if unloaded[real] then fill(real) end
        return raw_rawget(real, k)
    end
    return raw_rawget(t, k)
end
local function next_(t, k)
    local real = real_of[t]
    if real and real ~= t then
        if unloaded[real] then fill(real) end
        return raw_next(real, k)
    end
    return raw_next(t, k)
end
E.next = next_
E.pairs = function(t)
    if type(t) ~= "table" then
        error("bad argument #1 to 'pairs' (table expected, got " .. (t == nil and "no value" or type(t)) .. ")", 0)
    end
    return next_, t, nil
end
local globals_meta_view   -- what getmetatable(_G) shows: a read-only metatable
local globals_proxies = {}   -- P and the functions' environment
E.getmetatable = function(t)
    if globals_proxies[t] then return globals_meta_view end
    if real_of[t] then return nil end
    return getmetatable(t)
end
E.setmetatable = function(t, m)
    if real_of[t] then error("Attempt to modify a readonly table", 0) end
    return setmetatable(t, m)
end
local user_table = {}
for k, v in raw_next, table do user_table[k] = v end
for _, name in ipairs({"insert", "remove", "sort", "setn"}) do
    local f = table[name]
    if f then
        user_table[name] = function(t, ...)
            if real_of[t] then error("Attempt to modify a readonly table", 0) end
            return f(t, ...)
        end
    end
end
E.table = user_table

-- getfenv/setfenv/loadstring/load: a script never reaches the thread's globals G.
local P   -- the globals proxy, made by seal()
local raw_getfenv, raw_setfenv, raw_loadstring, raw_load = getfenv, setfenv, loadstring, load
local function shift(f)
    if f == nil then return 2 end
    if type(f) == "number" and f > 0 then return f + 1 end
    return f
end
E.getfenv = function(f)
    local env = raw_getfenv(shift(f))
    if env == G then return P end
    return env
end
E.setfenv = function(f, env)
    if f == 0 then error("'setfenv' cannot change the environment of the running thread", 0) end
    if type(f) == "number" then f = f + 1 end
    local result = raw_setfenv(f, env)
    if result == G then return P end
    return result
end
local function refuse_binary(chunk)
    if type(chunk) == "string" and chunk:byte(1) == 27 then
        return nil, "attempt to load a binary chunk"
    end
end
E.loadstring = function(chunk, name)
    local _, err = refuse_binary(chunk)
    if err then return nil, err end
    local f, e = raw_loadstring(chunk, name)
    if f then raw_setfenv(f, P) end
    return f, e
end
E.load = function(reader, name)
    local pieces = {}
    if type(reader) == "function" then
        while true do
            local piece = reader()
            if piece == nil or piece == "" then break end
            if type(piece) ~= "string" then return nil, "reader function must return a string" end
            pieces[#pieces + 1] = piece
        end
    else
        error("bad argument #1 to 'load' (function expected, got " .. type(reader) .. ")", 0)
    end
    return E.loadstring(table.concat(pieces), name or "=(load)")
end

-- ---------------------------------------------------------------- math.random as Redis

-- Redis's own lrand48, so the sequence is the same on every platform (Python side).
math.random = spreading(py.random)
math.randomseed = spreading(py.randomseed)

-- ---------------------------------------------------------------- the redis table

local pycall = spreading(py.call)

local function call_error(kind, msg)
    local e = {err = msg}
    if kind == 1 then e.ignore_error_stats_update = true end
    return e
end

local redis = {}
if py.bridge then
    -- C functions of dumpling.scripting._luabridge (see there): they raise or return the
    -- same {err=...} tables as the Python path below.
    redis.call = py.bridge.call
    redis.pcall = py.bridge.pcall
else
    -- redis.call is the Python callable (a C function to Lua) behind spreading(), whose frame
    -- stays on the stack while the callable runs, so the error handler still finds the
    -- calling line; its errors arrive as userdata that error_info turns into Redis's
    -- {err=...} table.
    redis.call = spreading(py.call_raise)
    redis.pcall = function(...)
        local kind, v = pycall(...)
        if kind == 0 then return v end
        return call_error(kind, v)
    end
end
local function push_error(text)
    -- luaPushErrorBuff: "-CODE msg" keeps its code, anything else gets ERR
    if text:sub(1, 1) == "-" then
        local code, msg = text:match("^%-(%S*) (.*)$")
        if code == nil then code, msg = "ERR", text:sub(2) end
        text = code .. " " .. msg
    else
        text = "ERR " .. text
    end
    return {err = (text:gsub("[\r\n]+$", ""))}
end
redis.error_reply = function(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
        return push_error("wrong number or type of arguments")
    end
    if s:sub(1, 1) ~= "-" then s = "-" .. s end
    return push_error(s)
end
redis.status_reply = function(...)
    local s = ...
    if select("#", ...) ~= 1 or type(s) ~= "string" then
        return push_error("wrong number or type of arguments")
    end
    return {ok = s}
end
-- The API functions that can fail are Python callables (C functions to Lua, called from
-- spreading()'s frame), so an error they raise keeps the calling line on the stack (a
-- Lua function called as ``return f()`` would be a tail call and lose it).
redis.sha1hex = spreading(py.sha1hex)
redis.log = spreading(py.log)
redis.setresp = spreading(py.setresp)
redis.set_repl = spreading(py.set_repl)
redis.acl_check_cmd = spreading(py.acl_check)
-- To scripts they are functions like any other.
local builtin = {}
for _, f in ipairs({redis.call, redis.sha1hex, redis.log, redis.setresp, redis.set_repl, redis.acl_check_cmd,
                    math.random, math.randomseed}) do
    builtin[f] = true
end
local raw_type, raw_tostring = type, tostring
E.type = function(v)
    if builtin[v] then return "function" end
    return raw_type(v)
end
E.tostring = function(v)
    if builtin[v] then return "function: builtin" end
    return raw_tostring(v)
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
-- redis.breakpoint/redis.debug: no-ops unless the Lua debugger runs (see "the Lua debugger")
local ldb_on = false
local ldb_debug
redis.breakpoint = function()
    if not ldb_on then return false end
    py.ldb_breakpoint()
    return true
end
redis.debug = function(...)
    if ldb_on then ldb_debug(...) end
end
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = py.version, py.version_num

-- ---------------------------------------------------------------- error handler

local error_info = py.error_info
-- A Python callable's error (userdata) as Redis's error value: an {err=...} table, or
-- for Lua-style errors ("bad argument ...") a string, prefixed with ``where`` if given.
local function as_error_table(err, where)
    if type(err) == "userdata" then
        local msg, counted, positional = error_info(err)
        if msg then
            if positional then
                err = (where or "") .. msg
            else
                err = {err = msg}
                if counted then err.ignore_error_stats_update = true end
            end
        end
    end
    return err
end

-- Redis's pcall: an error table becomes its message (scripts written for Redis < 7
-- expect a string); a redis.call error is such a table.
local raw_pcall, raw_xpcall, unpack_ = pcall, xpcall, unpack
local function pcall_result(ok, ...)
    if ok then return ok, ... end
    local e = as_error_table((...))
    if type(e) == "table" and not real_of[e] then
        local m = raw_rawget(e, "err")
        if type(m) == "string" then e = m end
    end
    return false, e
end
E.pcall = function(f, ...)
    return pcall_result(raw_pcall(f, ...))
end
E.xpcall = function(f, handler)
    return raw_xpcall(f, function(e) return handler(as_error_table(e)) end)
end

-- Redis's __redis__err__handler: the error as a table with the script position.  The
-- frame is the one that raised it (past one C function, as Redis); frames of this
-- sandbox are skipped so that redis.call's errors point at the calling line.
local function error_handler(err)
    local level = 2
    local i = dbg.getinfo(level, "nSl")
    if i and i.what == "C" then
        level = 3
        i = dbg.getinfo(level, "nSl")
    end
    while i and (i.source == "@dumpling" or i.what == "C" or i.what == "tail") do
        level = level + 1
        i = dbg.getinfo(level, "nSl")
    end
    err = as_error_table(err, i and i.currentline > 0 and (i.short_src .. ":" .. i.currentline .. ": ") or nil)
    if type(err) ~= "table" then
        err = {err = "ERR " .. tostring(err)}
    elseif real_of[err] then
        err = {err = "ERR " .. tostring(err)}
    end
    if i then
        err.source = i.source
        err.line = i.currentline
    end
    return err
end

-- ---------------------------------------------------------------- count hook (busy scripts)

-- The count hook stays installed between runs (a run does not pay for setting it up and
-- taking it down; firing between runs, it finds no run and does nothing).  Once a run is
-- killed it becomes a line hook until that run ends; ``killed_line_hook`` says so.
local raw_sethook = dbg.sethook
local count_hook_on = false
local killed_line_hook = false
local function kill_hook()
    if py.hook() then
        killed_line_hook = true
        raw_sethook(kill_hook, "l")   -- from now on every line raises: pcall cannot swallow it
        error({err = "ERR Script killed by user with SCRIPT KILL..."})
    end
end
local function load_hook()
    if py.load_hook() then
        raw_sethook(load_hook, "l")
        error({err = "ERR FUNCTION LOAD timeout"})
    end
end
-- After the Python side used debug.sethook itself (FUNCTION LOAD's hook), the count hook
-- is gone.  (Only a C function may take a line hook down: a Lua one would run a line.)
local function count_hook_gone()
    count_hook_on = false
end
local function set_count_hook(on)
    if on then raw_sethook(kill_hook, "", 100000) else raw_sethook() end
    count_hook_on = on
end

-- ---------------------------------------------------------------- running

-- One call from Python per script run: run ``f`` under the error handler, with the count
-- hook if ``hook``.  Returns ok and the first result (or the error).
-- KEYS and ARGV from the arguments after nkeys: one table of them all, whose tail past the
-- keys moves to the second (the border of the first is then nkeys).  Python hands over up
-- to MAX_DIRECT_ARGS arguments as such (run_eval, run_function), more as one table
-- (run_eval_table, run_function_table): lupa cannot push ~8000 values onto the stack.
local function split_table(nkeys, keys, n)
    local argv = {}
    for i = nkeys + 1, n do
        argv[i - nkeys] = keys[i]
        keys[i] = nil
    end
    return keys, argv
end
local function split_args(nkeys, ...)
    return split_table(nkeys, {...}, select("#", ...))
end
-- After a killed run the line hook must go before another line runs (it would raise
-- there): the code after xpcall that puts the count hook back stays on xpcall's line and
-- calls no Lua function (the runners below reach this one by a tail call).
local function eval_with(f, hook, keys, argv)
    raw_rawset(E, "KEYS", keys)
    raw_rawset(E, "ARGV", argv)
    if hook ~= count_hook_on then set_count_hook(hook) end
    local ok, value = raw_xpcall(f, error_handler) if killed_line_hook then killed_line_hook = false raw_sethook(kill_hook, "", 100000) end
    return ok, value
end
-- The C bridge's runner of an EVAL script (dumpling/scripting/_luabridge.c: run_script): as
-- eval_with, KEYS and ARGV already stored in E from C (two calls from Lua fewer a run).
local function eval_bridged(f, hook)
    if hook ~= count_hook_on then set_count_hook(hook) end
    local ok, value = raw_xpcall(f, error_handler) if killed_line_hook then killed_line_hook = false raw_sethook(kill_hook, "", 100000) end
    return ok, value
end
local function run_eval(f, hook, nkeys, ...)  -- (eval_with and split_args inlined: the common run)
    local keys, argv = {...}, {}
    for i = nkeys + 1, select("#", ...) do
        argv[i - nkeys] = keys[i]
        keys[i] = nil
    end
    raw_rawset(E, "KEYS", keys)
    raw_rawset(E, "ARGV", argv)
    if hook ~= count_hook_on then set_count_hook(hook) end
    local ok, value = raw_xpcall(f, error_handler) if killed_line_hook then killed_line_hook = false raw_sethook(kill_hook, "", 100000) end
    return ok, value
end
local function run_eval_table(f, hook, nkeys, all, n)
    return eval_with(f, hook, split_table(nkeys, all, n))
end
-- A function gets (keys, args): xpcall in Lua 5.1 passes no arguments, so they wait in
-- upvalues for one shared trampoline (no closure per run).
local fn_f, fn_keys, fn_argv
local function call_function()
    local f, keys, argv = fn_f, fn_keys, fn_argv
    fn_f, fn_keys, fn_argv = nil, nil, nil
    return f(keys, argv)
end
local function function_with(f, hook, keys, argv)
    fn_f, fn_keys, fn_argv = f, keys, argv
    if hook ~= count_hook_on then set_count_hook(hook) end
    local ok, value = raw_xpcall(call_function, error_handler) if killed_line_hook then killed_line_hook = false raw_sethook(kill_hook, "", 100000) end
    return ok, value
end
local function run_function(f, hook, nkeys, ...)
    return function_with(f, hook, split_args(nkeys, ...))
end
local function run_function_table(f, hook, nkeys, all, n)
    return function_with(f, hook, split_table(nkeys, all, n))
end

-- ---------------------------------------------------------------- reply inspection

-- One call from Python per table: what kind of reply it is (rawget only: a returned
-- table's metamethods are never run) and its parts.
local function inspect(t)
    local v = raw_rawget(t, "err")
    if type(v) == "string" then
        return "err", v, raw_rawget(t, "source"), raw_rawget(t, "line"), raw_rawget(t, "ignore_error_stats_update")
    end
    v = raw_rawget(t, "ok")
    if type(v) == "string" then return "ok", v end
    v = raw_rawget(t, "double")
    if type(v) == "number" then return "double", v end
    v = raw_rawget(t, "big_number")
    if type(v) == "string" then return "big_number", v end
    v = raw_rawget(t, "verbatim_string")
    if type(v) == "table" then
        local f, s = raw_rawget(v, "format"), raw_rawget(v, "string")
        if type(f) == "string" and type(s) == "string" then return "verbatim", s, f end
    end
    v = raw_rawget(t, "map")
    if type(v) == "table" then
        local flat, n = {}, 0
        for key, val in raw_next, v do
            flat[n + 1], flat[n + 2] = key, val
            n = n + 2
        end
        return "map", flat, n
    end
    v = raw_rawget(t, "set")
    if type(v) == "table" then
        local flat, n = {}, 0
        for key in raw_next, v do
            n = n + 1
            flat[n] = key
        end
        return "set", flat, n
    end
    local n = 0
    while raw_rawget(t, n + 1) ~= nil do n = n + 1 end
    if n <= 8 then return "array", t, n, unpack_(t, 1, n) end  -- a short one comes whole
    return "array", t, n
end

-- t[i..j] as results, at most SLICE of them (a long reply crosses to Python a slice at a time
-- instead of an element at a time; unpack reads raw, as the conversion must)
local function slice(t, i, j)
    return unpack_(t, i, j)
end

-- ---------------------------------------------------------------- the Lua debugger (LDB)

-- The debugger's Lua side is ldb.lua, compiled into this state by the first SCRIPT DEBUG
-- session (most servers never debug: it would cost every Lua heap ~10 KB).  It gets what it
-- needs from here through ``ldb_internals``.
local function run_debug(f, on, debug)
    ldb_on, ldb_debug = on, debug
    count_hook_on = nil  -- the next ordinary run sets its hook again
    local ok, value = raw_xpcall(f, error_handler) raw_sethook() ldb_on = false
    return ok, value
end
local ldb_internals = {
    E = function() return E end, P = function() return P end, real_of = real_of, redis = redis, dbg = dbg,
    split_table = split_table, as_error_table = as_error_table, run_debug = run_debug,
    rawget = raw_rawget, next = raw_next, loadstring = raw_loadstring, setfenv = raw_setfenv,
    pcall = raw_pcall, sethook = raw_sethook, tostring = raw_tostring,
}

-- ---------------------------------------------------------------- sealing the globals

local function missing_global(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end

-- Make the script globals read-only: E keeps the values, P (an empty proxy in front
-- of it) is what scripts get as their environment; the runners write KEYS/ARGV into E.
local function seal()
    E.redis = redis
    for _, name in ipairs({"string", "math", "table", "os", "coroutine", "redis", "cjson", "bit", "struct", "cmsgpack"}) do
        local lib = raw_rawget(E, name)
        if type(lib) == "table" then raw_rawset(E, name, protect(lib)) end
    end
    -- strings index the protected string table; getmetatable("") is a read-only view
    local smeta = raw_getmetatable("")
    smeta.__index = raw_rawget(E, "string")
    local sview = {}
    real_of[sview] = smeta
    setmetatable(sview, {__index = smeta, __newindex = readonly_error})
    smeta.__metatable = sview
    P = {}
    real_of[P] = E
    globals_proxies[P] = true
    setmetatable(P, {__index = E, __newindex = readonly_error})
    raw_rawset(E, "_G", P)
    setmetatable(E, {__index = missing_global, __newindex = readonly_error})
    globals_meta_view = protect({__index = missing_global})
    return P
end

-- Functions: one environment for every library (Redis's functions globals) whose
-- reads go to the library API while FUNCTION LOAD runs a library body, and to the
-- script globals when FCALL runs a function.  (Its reads go to E itself, not through
-- P, whose reads go to E: one metatable step fewer a global, the same values, and a
-- missing name reaches E's missing_global with the same arguments.)
local function function_env(load_api)
    local meta = {__index = E, __newindex = readonly_error}
    local env = setmetatable({}, meta)
    real_of[env] = P
    globals_proxies[env] = true
    local function loading(on)
        meta.__index = on and load_api or E
    end
    return env, loading
end

return {
    seal = seal,
    function_env = function_env,
    error_handler = error_handler,
    kill_hook = kill_hook,
    run_eval = run_eval,
    run_function = run_function,
    run_eval_table = run_eval_table,
    eval_bridged = eval_bridged,
    env = E,
    function_with = function_with,
    ldb_internals = ldb_internals,
    run_function_table = run_function_table,
    load_hook = load_hook,
    sethook = raw_sethook,
    count_hook_gone = count_hook_gone,
    inspect = inspect,
    slice = slice,
    protect = protect,
    is_protected = is_protected,
    redis = redis,
    real_of = real_of,
    push_error = push_error,
    loadstring = raw_loadstring,
    dump = string.dump,
    setfenv = raw_setfenv,
    type = type,
}
