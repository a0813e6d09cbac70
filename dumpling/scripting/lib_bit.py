"""The ``bit`` library (LuaBitOp 1.0 as Redis bundles it), written in Lua.

Owns the Lua source of ``bit.*``: 32-bit operations whose arguments are converted the way
LuaBitOp does it (add 2^52+2^51 to the double and keep the low 32 bits of its mantissa, so
fractions round half to even and big values wrap), results are signed 32-bit numbers, and
``tohex`` carries Redis's CVE-2024-31449 fix (a count of -2^31 no longer overflows).
Pure Lua: no Python object is reachable from it.
"""

from __future__ import annotations

# The chunk returns the module table; it captures every global it uses at load time.
LUA_SOURCE = r"""
local type, select, tonumber, error = type, select, tonumber, error
local floor, frexp, huge = math.floor, math.frexp, math.huge
local format, sub = string.format, string.sub

local TWO32, TWO31 = 4294967296, 2147483648

-- Low 32 bits of the IEEE-754 image of n + 2^52 + 2^51, as LuaBitOp's barg() reads them.
local function tou32(n)
  local b = n + 6755399441055744
  if b >= 4503599627370496 and b < 9007199254740992 then
    return b % TWO32                      -- the usual case: b is an integer, ulp 1
  end
  if b ~= b or b == huge or b == -huge or b == 0 then
    return 0                              -- NaN/Inf mantissa bits are zero here
  end
  if b < 0 then b = -b end
  local m = frexp(b)                      -- b = m * 2^e, m in [0.5, 1)
  return (m * 9007199254740992) % TWO32   -- the 53-bit significand's low 32 bits
end

-- Argument idx of a call with nargs arguments, as an unsigned 32-bit integer.
local function barg(v, idx, fname, nargs)
  local n = v
  if type(v) ~= "number" then
    n = (type(v) == "string") and tonumber(v) or nil
    if n == nil then
      argerror(2, idx, fname, "number expected, got " .. ((idx > nargs) and "no value" or type(v)))
    end
  end
  return tou32(n)
end

local function ret(b)
  if b >= TWO31 then return b - TWO32 end
  return b
end

-- 4-bit truth tables for and/or/xor: 8 lookups per 32-bit operation.
local AND, OR, XOR = {}, {}, {}
for a = 0, 15 do
  for c = 0, 15 do
    local r_and, r_or, r_xor, p, x, y = 0, 0, 0, 1, a, c
    for _ = 1, 4 do
      local bx, by = x % 2, y % 2
      if bx == 1 and by == 1 then r_and = r_and + p end
      if bx == 1 or by == 1 then r_or = r_or + p end
      if bx ~= by then r_xor = r_xor + p end
      x, y, p = (x - bx) / 2, (y - by) / 2, p * 2
    end
    AND[a * 16 + c], OR[a * 16 + c], XOR[a * 16 + c] = r_and, r_or, r_xor
  end
end

local function op32(tbl, a, c)
  local r, p = 0, 1
  for _ = 1, 8 do
    local x, y = a % 16, c % 16
    r = r + tbl[x * 16 + y] * p
    a, c, p = (a - x) / 16, (c - y) / 16, p * 16
  end
  return r
end

local function shl(b, n) return (b * 2 ^ n) % TWO32 end
local function shr(b, n) return floor(b / 2 ^ n) end
local function rol(b, n) return shl(b, n) + floor(b / 2 ^ (32 - n)) end

local function reducer(tbl, fname)
  return function(...)
    local nargs = select("#", ...)
    local b = barg((...), 1, fname, nargs)
    for i = nargs, 2, -1 do
      b = op32(tbl, b, barg((select(i, ...)), i, fname, nargs))
    end
    return ret(b)
  end
end

local function shifter(fname, fn)
  return function(...)
    local nargs = select("#", ...)
    local x, y = ...
    local b = barg(x, 1, fname, nargs)
    local n = barg(y, 2, fname, nargs) % 32
    return ret(fn(b, n))
  end
end

local bit = {}

function bit.tobit(...)
  return ret(barg((...), 1, "tobit", select("#", ...)))
end

function bit.bnot(...)
  return ret(TWO32 - 1 - barg((...), 1, "bnot", select("#", ...)))
end

bit.band = reducer(AND, "band")
bit.bor = reducer(OR, "bor")
bit.bxor = reducer(XOR, "bxor")
bit.lshift = shifter("lshift", shl)
bit.rshift = shifter("rshift", shr)
bit.arshift = shifter("arshift", function(b, n)
  if b >= TWO31 then return floor((b - TWO32) / 2 ^ n) % TWO32 end
  return floor(b / 2 ^ n)
end)
bit.rol = shifter("rol", rol)
bit.ror = shifter("ror", function(b, n) return rol(b, (32 - n) % 32) end)

function bit.bswap(...)
  local b = barg((...), 1, "bswap", select("#", ...))
  local b0 = b % 256
  local b1 = floor(b / 256) % 256
  local b2 = floor(b / 65536) % 256
  local b3 = floor(b / 16777216)
  return ret(((b0 * 256 + b1) * 256 + b2) * 256 + b3)
end

function bit.tohex(...)
  local nargs = select("#", ...)
  local x, y = ...
  local b = barg(x, 1, "tohex", nargs)
  local n = 8
  if nargs >= 2 then n = ret(barg(y, 2, "tohex", nargs)) end
  if n == -TWO31 then n = -TWO31 + 1 end  -- CVE-2024-31449: -n must not overflow
  local digits = "%08x"
  if n < 0 then n, digits = -n, "%08X" end
  if n > 8 then n = 8 end
  return sub(format(digits, b), 9 - n)
end

return bit
"""
