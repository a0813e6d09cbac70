-- The Lua side of dumpling's Lua debugger (``dumpling.scripting.debugger``), compiled into
-- the EVAL state by its first SCRIPT DEBUG session (chunk name "@dumpling", so the sandbox's
-- error handler skips its frames).  Arguments: the sandbox's ``ldb_internals`` and the
-- Python callbacks (``line``: the stop/REPL decision for a line, ``debug``: redis.debug's
-- text).  Returns the helpers the Python session calls while the hook is on the stack.
--
-- A run under SCRIPT DEBUG has a line hook (and a count hook for its timeout, as Redis's
-- luaLdbLineHook) that hands every line of the script to Python.  Values are written as
-- Redis's ldbCatStackValueRec writes them (through read-only proxies to the real tables).

local internals, py_line, py_debug = ...
local E, P = internals.E(), internals.P()
local real_of, redis, dbg = internals.real_of, internals.redis, internals.dbg
local raw_rawget, raw_next, raw_tostring = internals.rawget, internals.next, internals.tostring
local raw_loadstring, raw_setfenv, raw_pcall = internals.loadstring, internals.setfenv, internals.pcall
local as_error_table, split_table = internals.as_error_table, internals.split_table
local type, select, error, format, concat = type, select, error, string.format, table.concat

local function repr_string(s)
    return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
        if c == '"' then return '\\"' end
        if c == "\\" then return "\\\\" end
        if c == "\n" then return "\\n" end
        if c == "\r" then return "\\r" end
        if c == "\t" then return "\\t" end
        if c == "\a" then return "\\a" end
        if c == "\b" then return "\\b" end
        return format("\\x%02x", c:byte())
    end) .. '"'
end

local MAX_VALUES_DEPTH = 10  -- LDB_MAX_VALUES_DEPTH (LUA_MINSTACK / 2)
local function repr(v, level)
    if level == MAX_VALUES_DEPTH then return "<max recursion level reached! Nested table?>" end
    level = level + 1
    local t = type(v)
    if t == "string" then return repr_string(v) end
    if t == "boolean" then return v and "true" or "false" end
    if t == "number" then return format("%g", v) end
    if t == "nil" then return "nil" end
    if t == "table" then
        local real = real_of[v]
        if real and real ~= v then v = real end
        local expected, is_array = 1, true
        local as_array, as_map = {}, {}
        for key, val in raw_next, v do
            if is_array and (type(key) ~= "number" or key ~= expected) then is_array = false end
            as_array[#as_array + 1] = repr(val, level)
            as_map[#as_map + 1] = "[" .. repr(key, level) .. "]=" .. repr(val, level)
            expected = expected + 1
        end
        return "{" .. concat(is_array and as_array or as_map, "; ") .. "}"
    end
    -- functions, userdata, threads: their type and address
    local text = raw_tostring(v)
    local address = text:match("(0x%x+)") or text:match(": (.*)$") or "?"
    return '"' .. t .. "@" .. address .. '"'
end

-- What Python's session decided when it last resumed the script (``sync``): lines that
-- need not stop are passed over here without a call into Python.
local stepping, luabp, breakpoints = true, false, {}
local function sync(step, bp, ...)
    stepping, luabp, breakpoints = step, bp, {}
    for i = 1, select("#", ...) do breakpoints[select(i, ...)] = true end
end

local function hook(event, line)
    if event == "line" and not stepping and not luabp and not breakpoints[line] then return end
    local info = dbg.getinfo(2, "Sl")
    if info == nil or not info.short_src:find("user_script", 1, true) then return end
    local stop = py_line(event == "count", info.currentline)
    if stop then error({err = stop}) end
end

-- redis.debug(...): the line is the innermost script frame's (the caller's, or under the
-- debugger's "eval", the line the script stopped at)
local function debug_(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = repr((select(i, ...)), 0) end
    local level, line = 3, -1
    while true do
        local info = dbg.getinfo(level, "Sl")
        if info == nil then break end
        if info.short_src:find("user_script", 1, true) then
            line = info.currentline
            break
        end
        level = level + 1
    end
    py_debug(line, concat(parts, ", "))
end

-- The frame the hook stopped in, as a level for the helper calling this (for helpers
-- called from Python inside the hook: helper, Python's C frame, the hook, that frame).
local function hooked_level()
    local level = 2
    while true do
        local info = dbg.getinfo(level, "f")
        if info == nil then return nil end
        if info.func == hook then return level end  -- level + 1 here is level for the caller
        level = level + 1
    end
end

-- "print": the current frame's locals as {name, text, name, text...}
local function locals()
    local out, level = {}, hooked_level()
    if level == nil then return out end
    local i = 1
    while true do
        local name, value = dbg.getlocal(level, i)
        if name == nil then break end
        if not name:find("(*temporary)", 1, true) then
            out[#out + 1] = name
            out[#out + 1] = repr(value, 0)
        end
        i = i + 1
    end
    return out
end

-- "print <var>": the first local of that name from the current frame outwards (the
-- script's frames only), then the globals KEYS and ARGV; nil if there is none.
local function print_(wanted)
    local level = hooked_level()
    while level ~= nil do
        local info = dbg.getinfo(level, "S")
        if info == nil then break end
        if info.short_src:find("user_script", 1, true) then
            local i = 1
            while true do
                local name, value = dbg.getlocal(level, i)
                if name == nil then break end
                if name == wanted then return repr(value, 0) end
                i = i + 1
            end
        end
        level = level + 1
    end
    if wanted == "KEYS" or wanted == "ARGV" then return repr(raw_rawget(E, wanted), 0) end
    return nil
end

-- "trace": {name, line, name, line...} of the script's frames, innermost first.
local function trace()
    local out, level = {}, hooked_level()
    while level ~= nil do
        local info = dbg.getinfo(level, "Snl")
        if info == nil then break end
        if info.short_src:find("user_script", 1, true) then
            out[#out + 1] = info.name or "top level"
            out[#out + 1] = info.currentline
        end
        level = level + 1
    end
    return out
end

-- "eval <code>": as an expression, else as a statement, in the scripts' globals.
local function eval(code)
    if code:byte(1) == 27 then return false, "attempt to load a binary chunk" end
    local f = raw_loadstring("return " .. code, "@ldb_eval")
    if f == nil then
        local err
        f, err = raw_loadstring(code, "@ldb_eval")
        if f == nil then return false, err end
    end
    raw_setfenv(f, P)
    local ok, value = raw_pcall(f)
    if not ok then
        value = as_error_table(value)
        if type(value) == "table" and not real_of[value] then value = raw_rawget(value, "err") end
        return false, raw_tostring(value)
    end
    return true, repr(value, 0)
end

-- "redis <cmd>": redis.call, its error caught (the call logs itself)
local function redis_(...)
    raw_pcall(redis.call, ...)
end

-- A run under the debugger: KEYS and ARGV from one table, the hook on.
local function run(f, nkeys, all, n)
    local keys, argv = split_table(nkeys, all, n)
    rawset(E, "KEYS", keys)
    rawset(E, "ARGV", argv)
    stepping, luabp, breakpoints = true, false, {}
    internals.sethook(hook, "l", 100000)
    return internals.run_debug(f, true, debug_)
end

return {locals = locals, print = print_, trace = trace, eval = eval, redis = redis_, run = run, sync = sync}
