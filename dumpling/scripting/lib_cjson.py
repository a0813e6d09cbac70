"""The ``cjson`` library (lua-cjson 2.1.0 as Redis 7 bundles it), written in Lua.

Owns the Lua source of ``cjson.*``: encode/decode with Redis's number formatting (``%.14g``),
escaping, sparse-array rules, nesting limits (including the Lua stack limit the C code hits
when the depth limits are raised), configuration functions and their argument errors, and the
exact error texts.  ``cjson.null`` is one userdata shared by every ``cjson.new()`` table (Redis
uses a NULL light userdata; ours prints the same).  Pure Lua: no Python object is reachable.
"""

from __future__ import annotations

# The chunk returns ``new``, the constructor of a cjson table with its own configuration.
LUA_SOURCE = r"""
local type, select, next, pcall, error, tostring = type, select, next, pcall, error, tostring
local tonumber, rawget, rawset, setmetatable = tonumber, rawget, rawset, setmetatable
local newproxy = newproxy
local floor, huge = math.floor, math.huge
local find, sub, byte, char, format, gsub, lower, match, concat =
  string.find, string.sub, string.byte, string.char, string.format, string.gsub, string.lower,
  string.match, table.concat

local INT_MAX = 2147483647
-- lua_checkstack() refuses to grow a C function's frame past LUAI_MAXCSTACK slots.
local MAXCSTACK = 8000

local null = newproxy(true)
do
  local mt = getmetatable(null)
  mt.__tostring = function() return "userdata: (nil)" end
  mt.__metatable = false
end

local ESCAPES = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b', ['\t'] = '\\t',
  ['\n'] = '\\n', ['\f'] = '\\f', ['\r'] = '\\r', ['\127'] = '\\u007f',
}
for c = 0, 31 do
  local ch = char(c)
  if not ESCAPES[ch] then ESCAPES[ch] = format("\\u%04x", c) end
end

local UNESCAPES = {
  [34] = '"', [92] = '\\', [47] = '/', [98] = '\b', [116] = '\t', [110] = '\n', [102] = '\f',
  [114] = '\r',
}

-- NaN with and without the sign bit (strtod("nan") is positive; 0/0 on x86 is negative).
local NAN = 0 / 0
if sub(tostring(NAN), 1, 1) == "-" then NAN = -NAN end

-- C's int from a double, as x86's cvttsd2si does it (out of range -> INT_MIN).
local function c_int(d)
  if d ~= d or d >= 2147483648 or d < -2147483648 then return -2147483648 end
  if d < 0 then return -floor(-d) end
  return floor(d)
end

-- Wrap a product to a 32-bit int, as the C code's int arithmetic does on overflow.
local function wrap_int(x)
  x = x % 4294967296
  if x >= 2147483648 then x = x - 4294967296 end
  return x
end

-- A refusal travels as a table marked with REFUSAL up to the entry point, which raises its
-- message at the caller's level; anything else (a memory error, a script-kill error raised by
-- a hook inside our Lua code) passes through unchanged.
local REFUSAL = {}

local function fail(msg)
  error({msg, [REFUSAL] = true}, 0)
end

local function argcheck_count(nargs, limit, fname)
  if nargs > limit then
    argerror(2, limit + 1, fname, "found too many arguments")
  end
end

-- luaL_checkinteger on an option argument, truncated to a C int.
local function integer_option(v, idx, fname, current, min, max)
  if v == nil then return current end
  local n = v
  if type(n) ~= "number" then
    n = (type(n) == "string") and tonumber(n) or nil
  end
  if n == nil then
    argerror(2, idx, fname, "number expected, got " .. type(v))
  end
  -- lua_tointeger: truncation to a 64-bit integer, then the low 32 bits as an int
  local value
  if n ~= n or n >= 9223372036854775808 or n < -9223372036854775808 then
    value = 0
  else
    value = wrap_int(n < 0 and -floor(-n) or floor(n))
  end
  if value < min or value > max then
    argerror(2, 1, fname, format("expected integer between %d and %d", min, max))
  end
  return value
end

-- json_enum_option: booleans or one of the option names; returns the new setting.
local function enum_option(v, idx, fname, current, options)
  if v == nil then return current end
  if type(v) == "boolean" then return v and 1 or 0 end
  local s = v
  if type(s) == "number" then s = format("%.14g", s) end
  if type(s) ~= "string" then
    argerror(2, idx, fname, "string expected, got " .. type(v))
  end
  for i = 1, #options do
    if options[i] == s then return i - 1 end
  end
  argerror(2, idx, fname, "invalid option '" .. s .. "'")
end

local function enum_result(setting, options)
  if setting == 0 or setting == 1 then return setting == 1 end
  return options[setting + 1]
end

local BOOL_OPTIONS = {"off", "on"}
local INVALID_NUMBER_OPTIONS = {"off", "on", "null"}

local new

new = function()
  local cfg = {
    sparse_convert = 0, sparse_ratio = 2, sparse_safe = 10,
    encode_max_depth = 1000, decode_max_depth = 1000,
    encode_invalid_numbers = 0, decode_invalid_numbers = 1,
    encode_keep_buffer = 1, number_format = "%.14g", precision = 14,
  }

  ---------------------------------------------------------------- encoding
  local buf, nbuf

  local function put(s)
    nbuf = nbuf + 1
    buf[nbuf] = s
  end

  local function number_text(num, what)
    local mode = cfg.encode_invalid_numbers
    if mode == 0 then
      if num ~= num or num == huge or num == -huge then
        fail("Cannot serialise " .. what .. ": must not be NaN or Inf")
      end
    elseif mode == 1 then
      if num ~= num then return "nan" end
    elseif num ~= num or num == huge or num == -huge then
      return "null"
    end
    return format(cfg.number_format, num)
  end

  local function escaped(s)
    if find(s, '[%c"\\/]') then return (gsub(s, '[%c"\\/]', ESCAPES)) end
    return s
  end

  -- lua_array_length(): >0 array length, -1 object (0: empty table, an object too).
  local function array_length(t)
    local max, items = 0, 0
    for k in next, t do
      if type(k) == "number" and k ~= 0 and floor(k) == k and k >= 1 then
        if k > max then max = c_int(k) end
        items = items + 1
      else
        return -1
      end
    end
    local ratio = cfg.sparse_ratio
    if ratio > 0 and max > wrap_int(items * ratio) and max > cfg.sparse_safe then
      if cfg.sparse_convert == 0 then
        fail("Cannot serialise table: excessively sparse array")
      end
      return -1
    end
    return max
  end

  local append

  -- slots: Lua stack slots the C encoder would be using with this value on top.
  append = function(v, depth, slots)
    local tv = type(v)
    if tv == "string" then
      put('"') put(escaped(v)) put('"')
    elseif tv == "number" then
      put(number_text(v, "number"))
    elseif tv == "boolean" then
      put(v and "true" or "false")
    elseif tv == "nil" or v == null then
      put("null")
    elseif tv == "table" then
      depth = depth + 1
      if depth > cfg.encode_max_depth or slots + 3 > MAXCSTACK then
        fail(format("Cannot serialise, excessive nesting (%d)", depth))
      end
      local len = array_length(v)
      if len > 0 then
        put("[")
        for i = 1, len do
          if i > 1 then put(",") end
          append(rawget(v, i), depth, slots + 1)
        end
        put("]")
      else
        put("{")
        local comma = false
        for k, val in next, v do
          if comma then put(",") else comma = true end
          local tk = type(k)
          if tk == "number" then
            put('"' .. number_text(k, "number") .. '":')
          elseif tk == "string" then
            put('"') put(escaped(k)) put('":')
          else
            fail("Cannot serialise " .. tk .. ": table key must be a number or string")
          end
          append(val, depth, slots + 2)
        end
        put("}")
      end
    else
      fail("Cannot serialise " .. tv .. ": type not supported")
    end
  end

  local function encode(...)
    if select("#", ...) ~= 1 then
      argerror(1, 1, "encode", "expected 1 argument")
    end
    buf, nbuf = {}, 0
    local ok, err = pcall(append, (...), 0, 1)
    local out = ok and concat(buf, "", 1, nbuf) or nil
    buf = nil
    if not ok then
      if type(err) == "table" and rawget(err, REFUSAL) then error(err[1], 2) end
      error(err, 0)
    end
    return out
  end

  ---------------------------------------------------------------- decoding
  -- Token kinds use the C names: they appear in error messages.
  local s, slen

  local function parse_error(expected, kind, info, index)
    if kind == "T_ERROR" then
      fail(format("Expected %s but found %s at character %d", expected, info, index))
    end
    fail(format("Expected %s but found %s at character %d", expected, kind, index))
  end

  -- json_is_invalid_number(): forms strtod() takes that strict JSON does not.
  local function is_invalid_number(p)
    local c = byte(s, p) or 0
    if c == 43 then return true end                  -- '+'
    if c == 45 then p = p + 1; c = byte(s, p) or 0 end  -- '-'
    if c == 48 then                                   -- '0'
      local c2 = byte(s, p + 1) or 0
      return c2 == 120 or c2 == 88 or (c2 >= 48 and c2 <= 57)
    elseif c <= 57 then
      return false
    end
    local w = lower(sub(s, p, p + 2))
    return w == "inf" or w == "nan"
  end

  -- The longest prefix strtod() would accept at p: its end (exclusive), or nil.
  local function strtod_end(p)
    local q = p
    local c = byte(s, q)
    if c == 43 or c == 45 then q = q + 1 end
    local w = lower(sub(s, q, q + 2))
    if w == "inf" then
      if lower(sub(s, q, q + 7)) == "infinity" then return q + 8 end
      return q + 3
    elseif w == "nan" then
      local e = match(s, "^%([%w_]*%)()", q + 3)
      return e or (q + 3)
    end
    if match(s, "^0[xX]", q) then
      local e = match(s, "^%x+%.?%x*()", q + 2) or match(s, "^%.%x+()", q + 2)
      if not e then return q + 1 end                -- just the "0"
      return match(s, "^[pP][+-]?%d+()", e) or e
    end
    local e = match(s, "^%d+%.?%d*()", q) or match(s, "^%.%d+()", q)
    if not e then return nil end
    return match(s, "^[eE][+-]?%d+()", e) or e
  end

  -- The JSON forms most numbers take: digits with an optional fraction, which strtod() and
  -- tonumber() read alike; anything else (exponent, hex, inf, nan, "-.5") takes the long way.
  local PLAIN_FOLLOWERS = {[101] = false, [69] = false, [120] = false, [88] = false, [112] = false,
                           [80] = false}

  local function number_token(p)
    local e = match(s, "^-?%d+%.?%d*()", p)
    if e and PLAIN_FOLLOWERS[byte(s, e)] == nil then
      return "T_NUMBER", tonumber(sub(s, p, e - 1)), e, p
    end
    e = strtod_end(p)
    if not e then return "T_ERROR", "invalid number", p, p end
    local text = sub(s, p, e - 1)
    local w = lower(text)
    local v
    if find(w, "nan", 1, true) then
      v = (byte(text) == 45) and -NAN or NAN
    else
      v = tonumber(text)
    end
    return "T_NUMBER", v, e, p
  end

  local function hex4(p)
    local h = sub(s, p, p + 3)
    if not match(h, "^%x%x%x%x$") then return nil end
    return tonumber(h, 16)
  end

  local function utf8(cp)
    if cp <= 0x7F then return char(cp) end
    if cp <= 0x7FF then
      return char(floor(cp / 64) + 0xC0, cp % 64 + 0x80)
    end
    if cp <= 0xFFFF then
      return char(floor(cp / 4096) + 0xE0, floor(cp / 64) % 64 + 0x80, cp % 64 + 0x80)
    end
    return char(floor(cp / 262144) + 0xF0, floor(cp / 4096) % 64 + 0x80,
                floor(cp / 64) % 64 + 0x80, cp % 64 + 0x80)
  end

  local function string_token(start)
    local p = start + 1
    local q = find(s, '["\\]', p)
    if q and byte(s, q) == 34 then                    -- no escapes: the bytes as they are
      return "T_STRING", sub(s, p, q - 1), q + 1, start
    end
    local parts, np = {}, 0
    while true do
      local q = find(s, '["\\]', p)
      if not q then
        return "T_ERROR", "unexpected end of string", slen + 1, slen + 1
      end
      if q > p then np = np + 1; parts[np] = sub(s, p, q - 1) end
      if byte(s, q) == 34 then
        return "T_STRING", concat(parts, "", 1, np), q + 1, start
      end
      local e = byte(s, q + 1) or 0
      if e == 117 then                                -- \u
        local cp = hex4(q + 2)
        local len = 6
        if cp and cp >= 0xD800 and cp <= 0xDFFF then
          if cp >= 0xDC00 or sub(s, q + 6, q + 7) ~= "\\u" then
            cp = nil
          else
            local low = hex4(q + 8)
            if not low or low < 0xDC00 or low > 0xDFFF then
              cp = nil
            else
              cp = (cp - 0xD800) * 1024 + (low - 0xDC00) + 0x10000
              len = 12
            end
          end
        end
        if not cp then return "T_ERROR", "invalid unicode escape code", q, q end
        np = np + 1; parts[np] = utf8(cp)
        p = q + len
      else
        local u = UNESCAPES[e]
        if not u then return "T_ERROR", "invalid escape code", q, q end
        np = np + 1; parts[np] = u
        p = q + 2
      end
    end
  end

  local SINGLE = {
    [123] = "T_OBJ_BEGIN", [125] = "T_OBJ_END", [91] = "T_ARR_BEGIN", [93] = "T_ARR_END",
    [44] = "T_COMMA", [58] = "T_COLON",
  }
  local STARTS = {
    [102] = true, [105] = true, [73] = true, [110] = true, [78] = true, [116] = true,
    [34] = true, [43] = true, [45] = true,
  }
  for d = 48, 57 do STARTS[d] = true end

  -- json_next_token(): kind, value, next position, 1-based position for messages.
  local function next_token(p)
    p = find(s, "[^ \t\n\r]", p) or (slen + 1)
    if p > slen then return "T_END", nil, p, p end
    local c = byte(s, p)
    local single = SINGLE[c]
    if single then return single, nil, p + 1, p end
    if not STARTS[c] then return "T_ERROR", "invalid token", p, p end
    if c == 34 then return string_token(p) end
    if c == 45 or (c >= 48 and c <= 57) then
      if cfg.decode_invalid_numbers == 0 and is_invalid_number(p) then
        return "T_ERROR", "invalid number", p, p
      end
      return number_token(p)
    end
    if sub(s, p, p + 3) == "true" then return "T_BOOLEAN", true, p + 4, p end
    if sub(s, p, p + 4) == "false" then return "T_BOOLEAN", false, p + 5, p end
    if sub(s, p, p + 3) == "null" then return "T_NULL", null, p + 4, p end
    if cfg.decode_invalid_numbers ~= 0 and is_invalid_number(p) then
      return number_token(p)
    end
    return "T_ERROR", "invalid token", p, p
  end

  local SCALAR = {T_STRING = true, T_NUMBER = true, T_BOOLEAN = true, T_NULL = true}

  local parse_container

  -- A value whose first token is known; containers recurse. Returns value, next position.
  local function value_of(kind, v, p, at, depth, used)
    if SCALAR[kind] then return v, p end
    if kind == "T_OBJ_BEGIN" or kind == "T_ARR_BEGIN" then
      return parse_container(kind == "T_OBJ_BEGIN", p, depth, used)
    end
    parse_error("value", kind, v, at)
  end

  -- used: Lua stack slots the C decoder holds before this container's table.
  parse_container = function(is_object, p, depth, used)
    depth = depth + 1
    local need = is_object and 3 or 2
    if depth > cfg.decode_max_depth or used + need > MAXCSTACK then
      fail(format("Found too many nested data structures (%d) at character %d", depth, p - 1))
    end
    local t = {}
    local kind, v, np, at = next_token(p)
    if is_object then
      if kind == "T_OBJ_END" then return t, np end
      while true do
        if kind ~= "T_STRING" then parse_error("object key string", kind, v, at) end
        local key = v
        kind, v, np, at = next_token(np)
        if kind ~= "T_COLON" then parse_error("colon", kind, v, at) end
        kind, v, np, at = next_token(np)
        local value
        value, np = value_of(kind, v, np, at, depth, used + 2)
        rawset(t, key, value)
        kind, v, np, at = next_token(np)
        if kind == "T_OBJ_END" then return t, np end
        if kind ~= "T_COMMA" then parse_error("comma or object end", kind, v, at) end
        kind, v, np, at = next_token(np)
      end
    end
    if kind == "T_ARR_END" then return t, np end
    local i = 1
    while true do
      local value
      value, np = value_of(kind, v, np, at, depth, used + 1)
      rawset(t, i, value)
      i = i + 1
      kind, v, np, at = next_token(np)
      if kind == "T_ARR_END" then return t, np end
      if kind ~= "T_COMMA" then parse_error("comma or array end", kind, v, at) end
      kind, v, np, at = next_token(np)
    end
  end

  local function decode_all(text)
    s = text
    slen = #text
    local kind, v, p, at = next_token(1)
    local value
    value, p = value_of(kind, v, p, at, 0, 1)
    kind, v, p, at = next_token(p)
    if kind ~= "T_END" then parse_error("the end", kind, v, at) end
    return value
  end

  local function decode(...)
    local nargs = select("#", ...)
    if nargs ~= 1 then
      argerror(1, 1, "decode", "expected 1 argument")
    end
    local text = ...
    if type(text) == "number" then
      text = format("%.14g", text)
    elseif type(text) ~= "string" then
      argerror(1, 1, "decode", "string expected, got " .. type(text))
    end
    if #text >= 2 and (byte(text, 1) == 0 or byte(text, 2) == 0) then
      error("JSON parser does not support UTF-16 or UTF-32", 2)
    end
    -- the C parser stops at the first NUL byte
    local nul = find(text, "\0", 1, true)
    if nul then text = sub(text, 1, nul - 1) end
    local ok, res = pcall(decode_all, text)
    s = nil
    if not ok then
      if type(res) == "table" and rawget(res, REFUSAL) then error(res[1], 2) end
      error(res, 0)
    end
    return res
  end

  ---------------------------------------------------------------- configuration
  local function encode_sparse_array(...)
    argcheck_count(select("#", ...), 3, "encode_sparse_array")
    local convert, ratio, safe = ...
    cfg.sparse_convert = enum_option(convert, 1, "encode_sparse_array", cfg.sparse_convert, BOOL_OPTIONS)
    cfg.sparse_ratio = integer_option(ratio, 2, "encode_sparse_array", cfg.sparse_ratio, 0, INT_MAX)
    cfg.sparse_safe = integer_option(safe, 3, "encode_sparse_array", cfg.sparse_safe, 0, INT_MAX)
    return cfg.sparse_convert == 1, cfg.sparse_ratio, cfg.sparse_safe
  end

  local function integer_setting(fname, field, min, max, after)
    return function(...)
      argcheck_count(select("#", ...), 1, fname)
      cfg[field] = integer_option((...), 1, fname, cfg[field], min, max)
      if after then after(cfg[field]) end
      return cfg[field]
    end
  end

  local function enum_setting(fname, field, options)
    return function(...)
      argcheck_count(select("#", ...), 1, fname)
      cfg[field] = enum_option((...), 1, fname, cfg[field], options)
      return enum_result(cfg[field], options)
    end
  end

  local encode_number_precision = integer_setting("encode_number_precision", "precision", 1, 14,
    function(p) cfg.number_format = "%." .. p .. "g" end)

  return {
    encode = encode,
    decode = decode,
    encode_sparse_array = encode_sparse_array,
    encode_max_depth = integer_setting("encode_max_depth", "encode_max_depth", 1, INT_MAX),
    decode_max_depth = integer_setting("decode_max_depth", "decode_max_depth", 1, INT_MAX),
    encode_number_precision = encode_number_precision,
    encode_keep_buffer = enum_setting("encode_keep_buffer", "encode_keep_buffer", BOOL_OPTIONS),
    encode_invalid_numbers = enum_setting("encode_invalid_numbers", "encode_invalid_numbers",
                                          INVALID_NUMBER_OPTIONS),
    decode_invalid_numbers = enum_setting("decode_invalid_numbers", "decode_invalid_numbers",
                                          BOOL_OPTIONS),
    new = new,
    null = null,
    _NAME = "cjson",
    _VERSION = "2.1.0",
  }
end

return new
"""
