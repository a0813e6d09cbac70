"""The ``cmsgpack`` library (lua-cmsgpack 0.4.0 as Redis 7 bundles it), written in Lua.

Owns ``cmsgpack.pack/unpack/unpack_one/unpack_limit``: Redis's choice between array and map
(keys exactly 1..n), the smallest integer encoding, float32 when the double survives the round
trip, str8/16/32, the 16-level encode nesting limit (deeper tables become nil), no bin/ext types
on decode ("Bad data format in input."), truncated input ("Missing bytes in input."), and the Lua
stack limit (LUAI_MAXCSTACK) that bounds how many values and how deep a nesting one call may
decode -- the limits behind Redis's CVE-2018-11218 and CVE-2022-24834 fixes.  The IEEE-754
images are computed exactly with frexp/ldexp.  Pure Lua: no Python object is reachable from it.
"""

from __future__ import annotations

LUA_SOURCE = r"""
local type, select, error, next, pcall, tostring, tonumber, unpack, rawget =
  type, select, error, next, pcall, tostring, tonumber, unpack, rawget
local floor, frexp, ldexp, huge = math.floor, math.frexp, math.ldexp, math.huge
local byte, char, sub, format, concat = string.byte, string.char, string.sub, string.format, table.concat

local MAX_NESTING = 16          -- LUACMSGPACK_MAX_NESTING: deeper tables are packed as nil
local MAXCSTACK = 8000          -- LUAI_MAXCSTACK: lua_checkstack() refuses beyond it
local INT_MAX = 2147483647
local TWO32 = 4294967296

---------------------------------------------------------------- helpers

-- The NaN's sign as the C library prints it (the payload is the default quiet NaN's).
local function nan_is_negative(d) return sub(tostring(d), 1, 1) == "-" end

-- (int64_t)d on x86-64 for a number Lua may hold (NaN and out of range give INT64_MIN).
local function c_int64(d)
  if d ~= d or d >= 9223372036854775808 or d < -9223372036854775808 then
    return -9223372036854775808
  end
  if d < 0 then return -floor(-d) end
  return floor(d)
end

-- (int)x for an integer-valued x: its low 32 bits, signed.
local function c_int(x)
  x = x % TWO32
  if x >= 2147483648 then x = x - TWO32 end
  return x
end

---------------------------------------------------------------- packing
-- Bytes gather as numbers and become one string per few thousand: a string per encoded
-- number would intern hundreds of thousands of distinct small strings.

local bytes, nbytes, pieces, npieces

local function flush()
  if nbytes > 0 then
    npieces = npieces + 1
    pieces[npieces] = char(unpack(bytes, 1, nbytes))
    nbytes = 0
  end
end

local function put1(a)
  nbytes = nbytes + 1
  bytes[nbytes] = a
end

local function put2(x)                      -- 16-bit big-endian
  bytes[nbytes + 1] = floor(x / 256)
  bytes[nbytes + 2] = x % 256
  nbytes = nbytes + 2
end

local function put4(x)                      -- 32-bit big-endian, 0 <= x < 2^32
  bytes[nbytes + 1] = floor(x / 16777216)
  bytes[nbytes + 2] = floor(x / 65536) % 256
  bytes[nbytes + 3] = floor(x / 256) % 256
  bytes[nbytes + 4] = x % 256
  nbytes = nbytes + 4
end

local function put_int(n)
  if n >= 0 then
    if n <= 127 then put1(n)
    elseif n <= 255 then put1(204) put1(n)
    elseif n <= 65535 then put1(205) put2(n)
    elseif n <= 4294967295 then put1(206) put4(n)
    else put1(207) put4(floor(n / TWO32)) put4(n % TWO32) end
  else
    if n >= -32 then put1(n + 256)
    elseif n >= -128 then put1(208) put1(n + 256)
    elseif n >= -32768 then put1(209) put2(n + 65536)
    elseif n >= -2147483648 then put1(210) put4(n + TWO32)
    else
      local hi = floor(n / TWO32)               -- exact: the divisor is a power of two
      put1(211) put4(hi + TWO32) put4(n - hi * TWO32)
    end
  end
end

-- 0xca and the 4 bytes of (float)d when that float equals d; false otherwise.
local function put_float32(d)
  if d == huge or d == -huge then
    put1(202) put4(d > 0 and 2139095040 or 4286578688)
    return true
  end
  local sign = 0
  if d < 0 then sign, d = 2147483648, -d end
  local m, e = frexp(d)                         -- d = m * 2^e, 0.5 <= m < 1
  if e > 128 then return false end              -- (float)d overflows to an infinity
  local exponent, frac
  if e >= -125 then                             -- a normal float: 24 significant bits
    local mant = m * 16777216
    if mant ~= floor(mant) then return false end
    exponent, frac = e + 126, mant - 8388608
  else                                          -- a subnormal float: multiples of 2^-149
    frac = ldexp(d, 149)
    if frac ~= floor(frac) then return false end
    exponent = 0
  end
  put1(202) put4(sign + exponent * 8388608 + frac)
  return true
end

-- 0xcb and the 8 bytes of the double (a NaN is the default quiet NaN with its sign).
local function put_float64(d)
  put1(203)
  if d ~= d then
    put4(nan_is_negative(d) and 4294443008 or 2146959360) put4(0)
    return
  end
  if d == huge or d == -huge then
    put4(d > 0 and 2146435072 or 4293918720) put4(0)
    return
  end
  local sign = 0
  if d < 0 then sign, d = 2147483648, -d end
  local m, e = frexp(d)
  local exponent, mant
  if e >= -1021 then
    exponent, mant = e + 1022, m * 9007199254740992 - 4503599627370496
  else
    exponent, mant = 0, ldexp(d, 1074)
  end
  put4(sign + exponent * 1048576 + floor(mant / TWO32)) put4(mant % TWO32)
end

local function put_number(n)
  -- IS_INT64_EQUIVALENT: finite and (int64_t)n == n
  if n == n and n >= -9223372036854775808 and n < 9223372036854775808 and floor(n) == n then
    put_int(n)
  elseif n ~= n or not put_float32(n) then
    put_float64(n)
  end
end

local function put_string(s)
  local len = #s
  if len < 8 then                           -- copied: cheaper than a piece of its own
    put1(160 + len)
    for i = 1, len do bytes[nbytes + i] = byte(s, i) end
    nbytes = nbytes + len
    return
  end
  if len < 32 then put1(160 + len)
  elseif len <= 255 then put1(217) put1(len)
  elseif len <= 65535 then put1(218) put2(len)
  else put1(219) put4(len % TWO32) end
  flush()
  npieces = npieces + 1
  pieces[npieces] = s
end

local function put_header(count, fix, h16, h32)
  if count <= 15 then put1(fix + count)
  elseif count <= 65535 then put1(h16) put2(count)
  else put1(h32) put4(count % TWO32) end
end

-- table_is_an_array(): every key a number n > 0 with (int)n == n, and max == count.
local function array_count(t)
  local count, max = 0, 0
  for k in next, t do
    if type(k) ~= "number" or k <= 0 or k > INT_MAX or floor(k) ~= k then return nil end
    if k > max then max = k end
    count = count + 1
  end
  if max == count then return count end
  return nil
end

local put_value

put_value = function(v, level)
  if nbytes > 4000 then flush() end
  local t = type(v)
  if t == "table" and level == MAX_NESTING then t = "nil" end
  if t == "string" then
    put_string(v)
  elseif t == "boolean" then
    put1(v and 195 or 194)
  elseif t == "number" then
    put_number(v)
  elseif t == "table" then
    local count = array_count(v)
    if count then
      put_header(count, 144, 220, 221)
      for i = 1, count do put_value(v[i], level + 1) end
    else
      count = 0
      for _ in next, v do count = count + 1 end
      put_header(count, 128, 222, 223)
      for k, val in next, v do
        put_value(k, level + 1)
        put_value(val, level + 1)
      end
    end
  else
    put1(192)
  end
end

local function pack(...)
  local nargs = select("#", ...)
  if nargs == 0 then argerror(1, 0, "pack", "MessagePack pack needs input.") end
  if nargs + nargs > MAXCSTACK then
    argerror(1, 0, "pack", "Too many arguments for MessagePack pack.")
  end
  bytes, nbytes, pieces, npieces = {}, 0, {}, 0
  for i = 1, nargs do put_value((select(i, ...)), 0) end
  flush()
  local out = concat(pieces, "", 1, npieces)
  bytes, pieces = nil, nil
  return out
end

---------------------------------------------------------------- unpacking
-- Refusals travel as {message, level} tables marked with REFUSAL and are raised again at the
-- caller's level (level 0: no position, as Lua's own "table index is nil"); any other error (a
-- memory error, a script-kill error raised by a hook inside this Lua code) passes unchanged.
local REFUSAL = {}
local function refusal(msg, level) return {msg, level, [REFUSAL] = true} end

local MISSING = refusal("Missing bytes in input.", 2)
local BADFMT = refusal("Bad data format in input.", 2)
local STACK = refusal("stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)", 2)
local ARRAY_STACK = refusal("stack overflow (in function mp_decode_to_lua_array)", 2)
local NIL_INDEX = refusal("table index is nil", 0)
local NAN_INDEX = refusal("table index is NaN", 0)

local s, pos, len

local function need(n)
  if len - pos + 1 < n then error(MISSING, 0) end
end

local function be(p, n)                     -- big-endian unsigned integer of n <= 4 bytes at p
  local v = 0
  for i = p, p + n - 1 do v = v * 256 + byte(s, i) end
  return v
end

local function float32_at(p)
  local b1, b2, b3, b4 = byte(s, p, p + 3)
  local sign = b1 >= 128 and -1 or 1
  local exponent = (b1 % 128) * 2 + floor(b2 / 128)
  local frac = ((b2 % 128) * 256 + b3) * 256 + b4
  if exponent == 255 then
    if frac == 0 then return sign * huge end
    local nan = 0 / 0                        -- the sign of a NaN is all a script can see of it
    if nan_is_negative(nan) ~= (sign < 0) then nan = -nan end
    return nan
  end
  if exponent == 0 then return sign * ldexp(frac, -149) end
  return sign * ldexp(frac + 8388608, exponent - 150)
end

local function float64_at(p)
  local hi, lo = be(p, 4), be(p + 4, 4)
  local sign = hi >= 2147483648 and -1 or 1
  hi = hi % 2147483648
  local exponent = floor(hi / 1048576)
  local frac_hi = hi % 1048576
  if exponent == 2047 then
    if frac_hi == 0 and lo == 0 then return sign * huge end
    local nan = 0 / 0
    if nan_is_negative(nan) ~= (sign < 0) then nan = -nan end
    return nan
  end
  local mant = frac_hi * TWO32 + lo          -- exact: below 2^52
  if exponent == 0 then return sign * ldexp(mant, -1074) end
  return sign * ldexp(mant + 4503599627370496, exponent - 1075)
end

local decode

local function decode_array(count, top)
  local slot = top + 1                      -- the new table
  if slot + 1 > MAXCSTACK then error(ARRAY_STACK, 0) end
  local t = {}
  for i = 1, count do t[i] = decode(slot + 1) end   -- the index is pushed first
  return t
end

local function decode_map(count, top)
  local slot = top + 1
  local t = {}
  for _ = 1, count do
    local k = decode(slot)
    local v = decode(slot + 1)
    if k == nil then error(NIL_INDEX, 0) end
    if k ~= k then error(NAN_INDEX, 0) end
    t[k] = v
  end
  return t
end

local function string_of(hdr, n)
  need(hdr + n)
  local v = sub(s, pos + hdr, pos + hdr + n - 1)
  pos = pos + hdr + n
  return v
end

-- One value whose decoding starts with `top` Lua stack slots in use (as the C code counts them).
decode = function(top)
  need(1)
  if top + 1 > MAXCSTACK then error(STACK, 0) end
  local b = byte(s, pos)
  if b < 128 then pos = pos + 1 return b end
  if b >= 224 then pos = pos + 1 return b - 256 end
  if b >= 160 and b <= 191 then return string_of(1, b - 160) end
  if b >= 144 and b <= 159 then pos = pos + 1 return decode_array(b - 144, top) end
  if b <= 143 then pos = pos + 1 return decode_map(b - 128, top) end
  if b == 192 then pos = pos + 1 return nil end
  if b == 194 then pos = pos + 1 return false end
  if b == 195 then pos = pos + 1 return true end
  if b == 204 then need(2) pos = pos + 2 return byte(s, pos - 1) end
  if b == 205 then need(3) pos = pos + 3 return be(pos - 2, 2) end
  if b == 206 then need(5) pos = pos + 5 return be(pos - 4, 4) end
  if b == 207 or b == 211 then              -- 64-bit integers; uint64 wraps to int64 as in C
    need(9)
    local hi, lo = be(pos + 1, 4), be(pos + 5, 4)
    pos = pos + 9
    if hi >= 2147483648 then hi = hi - TWO32 end
    return hi * TWO32 + lo
  end
  if b == 208 then need(2) pos = pos + 2 local v = byte(s, pos - 1) return v >= 128 and v - 256 or v end
  if b == 209 then
    need(3) pos = pos + 3
    local v = be(pos - 2, 2)
    return v >= 32768 and v - 65536 or v
  end
  if b == 210 then
    need(5) pos = pos + 5
    local v = be(pos - 4, 4)
    return v >= 2147483648 and v - TWO32 or v
  end
  if b == 202 then need(5) pos = pos + 5 return float32_at(pos - 4) end
  if b == 203 then need(9) pos = pos + 9 return float64_at(pos - 8) end
  if b == 217 then need(2) return string_of(2, byte(s, pos + 1)) end
  if b == 218 then need(3) return string_of(3, be(pos + 1, 2)) end
  if b == 219 then
    need(5)
    local n = be(pos + 1, 4)
    pos = pos + 5
    return string_of(0, n)
  end
  if b == 220 then need(3) pos = pos + 3 return decode_array(be(pos - 2, 2), top) end
  if b == 221 then need(5) pos = pos + 5 return decode_array(be(pos - 4, 4), top) end
  if b == 222 then need(3) pos = pos + 3 return decode_map(be(pos - 2, 2), top) end
  if b == 223 then need(5) pos = pos + 5 return decode_map(be(pos - 4, 4), top) end
  error(BADFMT, 0)                          -- 0xc1, bin, ext and fixext types
end

-- Results beyond what unpack() may push at once, returned a slice per call.
local function spill(t, i, n)
  if n - i < 7000 then return unpack(t, i, n) end
  return t[i], t[i + 1], t[i + 2], t[i + 3], t[i + 4], t[i + 5], t[i + 6], t[i + 7], spill(t, i + 8, n)
end

local function decode_values(limit, base, out)
  local count = 0
  while pos <= len and count < limit do
    count = count + 1
    out[count] = decode(base + count - 1)
  end
  return count
end

-- mp_unpack_full(): raises {message, level} on refusal; returns the result table and count.
local function unpack_full(str, limit, offset, base)
  len = #str
  if offset < 0 or limit < 0 then
    error(refusal(format("Invalid request to unpack with offset of %d and limit of %d.", c_int(offset), c_int(len)), 2), 0)
  end
  if offset > len then
    error(refusal(format("Start offset %d greater than input length %d.", c_int(offset), c_int(len)), 2), 0)
  end
  local decode_all = limit == 0 and offset == 0
  if decode_all then limit = INT_MAX end
  s, pos = str, offset + 1
  local out = {}
  local count = decode_values(limit, base, out)
  if decode_all then return out, count end
  if base + count + 1 > MAXCSTACK then
    error(refusal("stack overflow (in function mp_unpack_full)", 2), 0)
  end
  for i = count, 1, -1 do out[i + 1] = out[i] end
  out[1] = (pos > len) and -1 or (pos - 1)
  return out, count + 1
end

local function typename(v, idx, nargs)
  if idx > nargs then return "no value" end
  return type(v)
end

local function check_string(v, idx, fname, nargs)
  if type(v) == "string" then return v end
  if type(v) == "number" then return format("%.14g", v) end
  argerror(2, idx, fname, "string expected, got " .. typename(v, idx, nargs))
end

-- luaL_checkinteger / luaL_optinteger (default when none or nil).
local function check_integer(v, idx, fname, nargs, default)
  if default ~= nil and v == nil then return default end
  local n = v
  if type(n) ~= "number" then n = (type(n) == "string") and tonumber(n) or nil end
  if n == nil then argerror(2, idx, fname, "number expected, got " .. typename(v, idx, nargs)) end
  return c_int64(n)
end

-- Reached by a tail call (the library function's frame is lost): level 3 is the script.
local function run(str, limit, offset, base)
  local ok, out, count = pcall(unpack_full, str, limit, offset, base)
  s = nil
  if not ok then
    if type(out) == "table" and rawget(out, REFUSAL) then error(out[1], out[2] == 0 and 0 or 3) end
    error(out, 0)
  end
  if count < 7000 then return unpack(out, 1, count) end
  return spill(out, 1, count)
end

local function unpack_all(...)
  local nargs = select("#", ...)
  local str = check_string((...), 1, "unpack", nargs)
  return run(str, 0, 0, nargs)
end

local function unpack_one(...)
  local nargs = select("#", ...)
  local str, offset = ...
  offset = check_integer(offset, 2, "unpack_one", nargs, 0)
  str = check_string(str, 1, "unpack_one", nargs > 0 and 1 or 0)
  return run(str, 1, offset, 1)
end

local function unpack_limit(...)
  local nargs = select("#", ...)
  local str, limit, offset = ...
  limit = check_integer(limit, 2, "unpack_limit", nargs)
  offset = check_integer(offset, 3, "unpack_limit", nargs, 0)
  str = check_string(str, 1, "unpack_limit", nargs > 0 and 1 or 0)
  return run(str, limit, offset, 1)
end

return {
  pack = pack,
  unpack = unpack_all,
  unpack_one = unpack_one,
  unpack_limit = unpack_limit,
  _NAME = "cmsgpack",
  _VERSION = "lua-cmsgpack 0.4.0",
  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
  _DESCRIPTION = "MessagePack C implementation for Lua",
}
"""
