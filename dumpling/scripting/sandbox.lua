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

-- The pure path's wrappers are Lua functions: they check their arguments first and raise
-- as Lua's own luaL_argerror would for the built-in they stand for (named as their caller
-- named them, at their caller's line); what the built-in itself raises after that is moved
-- to their caller's line too (``relay``).  The C bridge replaces them with guards (below)
-- that run the built-ins' own C functions in their frame: those need none of this.
-- (``up``: how many helper frames lie between argerror and the wrapper)
local function argerror(narg, extramsg, up)
    up = up or 0
    local i = dbg.getinfo(2 + up, "n")   -- the wrapper, as its caller named it
    local name = i and i.name
    if i and i.namewhat == "method" then
        narg = narg - 1
        if narg == 0 then error("calling '" .. name .. "' on bad self (" .. extramsg .. ")", 3 + up) end
    end
    error("bad argument #" .. narg .. " to '" .. (name or "?") .. "' (" .. extramsg .. ")", 3 + up)
end
local function typeerror(n, expected, up, ...)
    local got = select("#", ...) < n and "no value" or type((select(n, ...)))
    argerror(n, expected .. " expected, got " .. got, (up or 0) + 1)
end
local function check_table(n, ...)
    if type((select(n, ...))) ~= "table" then typeerror(n, "table", 1, ...) end
end
local function check_any(n, ...)
    if select("#", ...) < n then argerror(n, "value expected", 1) end
end
local function check_optstring(n, ...)
    local v = select(n, ...)
    if v ~= nil and type(v) ~= "string" and type(v) ~= "number" then typeerror(n, "string", 1, ...) end
end
-- What the built-in raised, at the wrapper's caller's line (called as ``local r = relay(...)``
-- by the wrapper: a tail call would leave no wrapper frame to count from).
local raw_pcall = pcall
-- f(...) from a frame of this chunk (not a tail call), so that the position luaL_error gives a
-- built-in's own errors is one relay recognises (under pcall directly it would be none)
local function direct(f, ...)
    local a, b = f(...)
    return a, b
end
local function relay(ok, ...)
    if ok then return ... end
    local e = ...
    if type(e) == "string" then
        local bare = e:match("^dumpling:%d+: (.*)$")
        if bare then
            -- (direct's call names the built-in 'f'; its caller named the wrapper)
            local i = dbg.getinfo(2, "n")
            bare = bare:gsub("^(bad argument #%d+ to ')f(')", "%1" .. (i and i.name or "?") .. "%2")
            error(bare, 3)
        end
    end
    error(e, 0)
end

E.rawset = function(...)
    check_table(1, ...) check_any(2, ...) check_any(3, ...)
    local t, k, v = ...
    if real_of[t] then error("Attempt to modify a readonly table", 0) end
    local r = relay(raw_pcall(raw_rawset, t, k, v))
    return r
end
E.rawget = function(...)
    check_table(1, ...) check_any(2, ...)
    local t, k = ...
    local real = real_of[t]
    if real and real ~= t then
        if unloaded[real] then fill(real) end
        return raw_rawget(real, k)
    end
    return raw_rawget(t, k)
end
local function next_(...)
    check_table(1, ...)
    local t, k = ...
    local real = real_of[t]
    if real and real ~= t then
        if unloaded[real] then fill(real) end
        t = real
    end
    local nk, nv = relay(raw_pcall(raw_next, t, k))
    return nk, nv
end
E.next = next_
E.pairs = function(...)
    check_table(1, ...)
    return next_, (...), nil
end
local globals_meta_view   -- what getmetatable(_G) shows: a read-only metatable
local globals_proxies = {}   -- P and the functions' environment
E.getmetatable = function(...)
    check_any(1, ...)
    local t = ...
    if globals_proxies[t] then return globals_meta_view end
    if real_of[t] then return nil end
    return getmetatable(t)
end
E.setmetatable = function(...)
    check_table(1, ...)
    local t, m = ...
    if select("#", ...) < 2 or (m ~= nil and type(m) ~= "table") then argerror(2, "nil or table expected") end
    if real_of[t] then error("Attempt to modify a readonly table", 0) end
    local r = relay(raw_pcall(setmetatable, t, m))
    return r
end
-- table.insert is the one table function that writes to an empty proxy (remove and sort write
-- nothing to a table without an array part, as all the read-only tables are, nor does setn).
local user_table = {}
for k, v in raw_next, table do user_table[k] = v end
local raw_insert = table.insert
user_table.insert = function(...)
    check_table(1, ...)
    local n = select("#", ...)
    if real_of[(...)] and (n == 2 or (n == 3 and tonumber((select(2, ...))))) then
        error("Attempt to modify a readonly table", 0)
    end
    relay(raw_pcall(direct, raw_insert, ...))
end
E.table = user_table

-- getfenv/setfenv/loadstring/load: a script never reaches the thread's globals G.
local P   -- the globals proxy, made by seal()
local raw_getfenv, raw_setfenv, raw_loadstring, raw_load = getfenv, setfenv, loadstring, load
local runners = {}   -- the sandbox's functions that run a script (filled below)
-- The frame ``level`` names as Redis counts it from the wrapper's caller, as dbg.getinfo counts
-- from the wrapper (called from the wrapper itself); nil when it is beyond the script.  For
-- Redis a script is the outermost frame: the runner (the xpcall that runs the script, a tail
-- call's trace left by the trampoline in front of a function, and below) is not counted, nor
-- are this chunk's own Lua wrappers (pcall's, here) and the C function or tail call's trace
-- right after one, which Redis's C built-ins do not have.
-- (The C guards' guard_level, where pcall is C.)
local function level_frame(level)
    local frames = {}
    local i = 3   -- past level_frame and the wrapper
    while true do
        local info = dbg.getinfo(i, "Sf")
        if not info then return frames[level] end
        if runners[info.func] then break end
        frames[#frames + 1] = {i, info.source == "@dumpling", info.what == "tail", info.what == "C"}
        i = i + 1
    end
    frames[#frames] = nil   -- the runner's xpcall
    if #frames > 0 and frames[#frames][3] then frames[#frames] = nil end
    local n, skipped = 0, false
    for _, frame in ipairs(frames) do
        local skip = frame[2] or (skipped and (frame[4] or frame[3]))
        skipped = frame[2]
        if not skip then
            n = n + 1
            if n == level then return frame[1] - 2 end
        end
    end
    return nil
end
-- getfenv/setfenv's level argument (luaL_optint / luaL_checkint): a number, or nil when a
-- function was given (or, optional, nothing)
local function env_level(optional, ...)
    local f = ...
    if type(f) == "function" then return nil end
    if optional and f == nil then return 1 end
    local n = tonumber(f)
    if type(f) ~= "number" and (type(f) ~= "string" or n == nil) then typeerror(1, "number", 1, ...) end
    n = n >= 0 and math.floor(n) or math.ceil(n)
    if n < 0 then argerror(1, "level must be non-negative", 1) end
    return n
end
E.getfenv = function(...)
    local level = env_level(true, ...)
    local env
    if level == nil then
        env = raw_getfenv((...))
    elseif level == 0 then
        env = raw_getfenv(0)
    else
        local frame = level_frame(level)
        if frame == nil then argerror(1, "invalid level") end
        env = raw_getfenv(frame + 1)
    end
    if env == G then return P end
    return env
end
E.setfenv = function(...)
    check_table(2, ...)
    local level = env_level(false, ...)
    local f, env = ...
    if level == 0 then error("'setfenv' cannot change the environment of the running thread", 0) end
    if level ~= nil then
        local frame = level_frame(level)
        if frame == nil then argerror(1, "invalid level") end
        f = frame + 3   -- (direct's, raw_pcall's and this one's frames)
    end
    local result = relay(raw_pcall(direct, raw_setfenv, f, env))
    if result == G then return P end
    return result
end
local function refuse_binary(chunk)
    if type(chunk) == "string" and chunk:byte(1) == 27 then
        return nil, "attempt to load a binary chunk"
    end
end
-- loadstring and load as scripts get them, once their arguments are checked (by the C guards
-- with the bridge, by the wrappers after these without)
local function loadstring_checked(chunk, name)
    local _, err = refuse_binary(chunk)
    if err then return nil, err end
    local f, e = raw_loadstring(chunk, name)
    if f then raw_setfenv(f, P) end
    return f, e
end
local function load_checked(reader, name)
    local pieces = {}
    while true do
        local piece = reader()
        if piece == nil or piece == "" then break end
        if type(piece) ~= "string" then return nil, "reader function must return a string" end
        pieces[#pieces + 1] = piece
    end
    return loadstring_checked(table.concat(pieces), name or "=(load)")
end
E.loadstring = function(...)
    local chunk = ...
    if type(chunk) ~= "string" and type(chunk) ~= "number" then typeerror(1, "string", 0, ...) end
    check_optstring(2, ...)
    return loadstring_checked(...)
end
E.load = function(...)
    if type((...)) ~= "function" then typeerror(1, "function", 0, ...) end
    check_optstring(2, ...)
    return load_checked(...)
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
E.type = function(...)
    check_any(1, ...)
    local v = ...
    if builtin[v] then return "function" end
    return raw_type(v)
end
E.tostring = function(...)
    check_any(1, ...)
    local v = ...
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
local function pcall_error(e)
    e = as_error_table(e)
    if type(e) == "table" and not real_of[e] then
        local m = raw_rawget(e, "err")
        if type(m) == "string" then e = m end
    end
    return e
end
local function pcall_result(ok, ...)
    if ok then return ok, ... end
    return false, pcall_error((...))
end
E.pcall = function(...)
    -- Redis's pcall with nothing to call calls its own placeholder, the boolean true
    if select("#", ...) == 0 then return false, "attempt to call a boolean value" end
    return pcall_result(raw_pcall(...))
end
local function xpcall_checked(f, handler)
    return raw_xpcall(f, function(e) return handler(as_error_table(e)) end)
end
E.xpcall = function(...)
    check_any(2, ...)
    return xpcall_checked(...)
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

-- Redis keeps its handler in the scripts' globals (scripts see it); its functions' Lua
-- state has none, nor the redis API's debugger and effects-replication entries (functions have
-- no debugger and always replicate effects).
if py.functions then
    redis.breakpoint, redis.debug, redis.replicate_commands = nil, nil, nil
else
    E.__redis__err__handler = error_handler
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
for _, f in ipairs({eval_with, eval_bridged, run_eval, function_with, run_debug}) do runners[f] = true end
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
    if py.bridge then
        -- The C bridge's guards (dumpling/scripting/_luabridge.c: lua_guard) replace the Lua
        -- wrappers above: the built-ins' own C functions run in the guard's frame, so their
        -- errors read exactly as Redis's.  (Kinds as the C enum.)
        local guard = py.bridge.guard
        local WRITE, READ, PAIRS, TYPE, TOSTRING, META, ENV, SETENV = 0, 1, 2, 3, 4, 5, 6, 7
        local XPCALL, LOADSTRING, LOAD, PCALL, INSERT = 8, 9, 10, 11, 12
        local next_guard = guard(READ, raw_next, real_of, fill)
        raw_rawset(E, "rawset", guard(WRITE, raw_rawset, real_of))
        raw_rawset(E, "setmetatable", guard(WRITE, setmetatable, real_of))
        raw_rawset(E, "rawget", guard(READ, raw_rawget, real_of, fill))
        raw_rawset(E, "next", next_guard)
        raw_rawset(E, "pairs", guard(PAIRS, pairs, real_of, next_guard))
        raw_rawset(E, "type", guard(TYPE, raw_type, real_of, builtin))
        raw_rawset(E, "tostring", guard(TOSTRING, raw_tostring, real_of, builtin))
        raw_rawset(E, "getmetatable", guard(META, getmetatable, real_of, globals_proxies, globals_meta_view))
        raw_rawset(E, "getfenv", guard(ENV, raw_getfenv, real_of, G, P, runners))
        raw_rawset(E, "setfenv", guard(SETENV, raw_setfenv, real_of, G, P, runners))
        raw_rawset(E, "pcall", guard(PCALL, raw_pcall, real_of, pcall_error))
        raw_rawset(E, "xpcall", guard(XPCALL, raw_xpcall, real_of, xpcall_checked))
        raw_rawset(E, "loadstring", guard(LOADSTRING, raw_loadstring, real_of, loadstring_checked))
        raw_rawset(E, "load", guard(LOAD, raw_load, real_of, load_checked))
        raw_rawset(user_table, "insert", guard(INSERT, raw_insert, real_of))
    end
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
