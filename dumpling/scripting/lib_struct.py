"""The ``struct`` library (Roberto Ierusalimschy's struct 0.2 as Redis bundles it).

Owns ``struct.pack/unpack/size``: the format language (``<>!`` endianness and alignment,
``b B h H i I l L T f d s c0 cN x`` with counts), Redis's security fixes (sizes that overflow an
int: "integral size overflow", CVE-2015-8080 / CVE-2020-14147; integers wider than 32 bytes
refused and the unpack offset checked against the data, CVE-2018-11219), the C integer
conversions as x86-64 performs them, the Lua stack limit on results, and the exact error texts.

The byte work is Python; scripts only see the Lua wrappers in ``LUA_WRAPPER``, which keep the
Python callables in upvalues, hand over only plain values and turn a refusal into a Lua error.
The Python functions never raise: they return ``(True, results...)``, ``(False, message)`` or,
for an argument error, ``(False, message, argument index)``.
"""

from __future__ import annotations

import math
import struct as _struct
from collections.abc import Callable
from typing import Any

import lupa.lua51 as lupa

from dumpling.scripting.lib_common import ARGERROR_LUA, make_spreading

MASK64 = (1 << 64) - 1
MAXINTSIZE = 32          # widest 'i'/'I' accepted
MAXALIGN = 8             # default of '!' on x86-64
INT_MAX = 2**31 - 1
MAXCSTACK = 8000         # LUAI_MAXCSTACK: lua_checkstack() refuses beyond it
LITTLE, BIG = 1, 0
NATIVE = LITTLE

# The wrappers scripts call.  ``-0`` travels as the string "-0": lupa would turn -0.0 into the
# integer 0, and struct reads both forms identically (strtod("-0") is -0.0; tostring(-0) is "-0").
LUA_WRAPPER = r"""
local py_pack, py_unpack, py_size = ...
local select, error, unpack = select, error, unpack

local function fix_negative_zero(...)
  local n = select("#", ...)
  local args, found = {...}, false
  for i = 1, n do
    local v = args[i]
    if v == 0 and 1 / v < 0 then
      args[i] = "-0"
      found = true
    end
  end
  if found then return n, unpack(args, 1, n) end
  return n, ...
end

local function results(...)
  return {n = select("#", ...), ...}
end

-- A refusal from Python: (message) for luaL_error, (extra, argument index) for luaL_argerror.
-- Called by the wrapper, whose frame stays (no tail call) so that the name the script used for
-- the function and its line are found.
local function raise(fname, msg, idx)
  if idx then argerror(2, idx, fname, msg) end
  error(msg, 3)
end

-- r[2..n] as results; unpack() alone may push fewer than the C code (LUAI_MAXCSTACK counts
-- its own arguments), so long lists go a slice per call.
local function spill(r, i, n)
  if n - i < 7000 then return unpack(r, i, n) end
  return r[i], r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5], r[i + 6], r[i + 7], spill(r, i + 8, n)
end

return {
  pack = function(...)
    local r = results(py_pack(fix_negative_zero(...)))
    if r[1] then return r[2] end
    raise("pack", r[2], r[3])
  end,
  unpack = function(...)
    local r = results(py_unpack(fix_negative_zero(...)))
    if r[1] then return spill(r, 2, r.n) end
    raise("unpack", r[2], r[3])
  end,
  size = function(...)
    local r = results(py_size(select("#", ...), ...))
    if r[1] then return r[2] end
    raise("size", r[2], r[3])
  end,
}
"""


class LuaArgError(Exception):
    """A refusal with Redis's message (bytes) and, for a luaL_argerror, the argument's index;
    the wrapper turns it into the Lua error."""

    def __init__(self, message: bytes, arg_index: int | None = None) -> None:
        super().__init__(message, arg_index)
        self.message = message
        self.arg_index = arg_index


def type_name(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, bytes):
        return "string"
    return lupa.lua_type(value) or "userdata"


def lua_number_text(n: float) -> bytes:
    """lua_tolstring of a number: ``%.14g``."""
    if n != n:
        return b"-nan" if math.copysign(1.0, n) < 0 else b"nan"
    return b"%.14g" % n


def c_u64(n: float) -> int:
    """``n < 0 ? (unsigned long)(long)n : (unsigned long)n`` as gcc compiles it for x86-64
    (cvttsd2si yields 0x8000000000000000 when out of range)."""
    if n != n:
        return 1 << 63
    if n < 0:
        return (int(n) & MASK64) if n >= -(2.0**63) else 1 << 63
    if n < 2.0**63:
        return int(n)
    rest = n - 2.0**63
    return (int(rest) if rest < 2.0**63 else 1 << 63) ^ (1 << 63)


def c_i64(n: float) -> int:
    """``(ptrdiff_t)n`` (lua_tointeger) on x86-64."""
    if n != n or n >= 2.0**63 or n < -(2.0**63):
        return -(1 << 63)
    return int(n)


def signed64(u: int) -> int:
    u &= MASK64
    return u - (1 << 64) if u >= 1 << 63 else u


class Call:
    """One struct.* call: its arguments and Lua's conversions of them."""

    def __init__(self, fname: str, nargs: int, args: tuple[Any, ...], tonumber: Callable[[bytes], Any]) -> None:
        self.fname = fname
        self.nargs = nargs
        self.args = args
        self.tonumber = tonumber
        self.pushed = 0  # values the C function pushed above its arguments (they read as nil)

    def arg(self, idx: int) -> Any:
        return self.args[idx - 1] if idx <= len(self.args) else None

    def argerror(self, idx: int, extra: bytes) -> LuaArgError:
        return LuaArgError(extra, idx)

    def typeerror(self, idx: int, expected: str) -> LuaArgError:
        got = "no value" if idx > self.nargs + self.pushed else type_name(self.arg(idx))
        return self.argerror(idx, f"{expected} expected, got {got}".encode())

    def number(self, idx: int) -> float | None:
        """lua_tonumber: numbers, and strings Lua reads as numbers; else None."""
        v = self.arg(idx)
        if isinstance(v, bool) or v is None:
            return None
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, bytes):
            n = self.tonumber(v)
            if n is None:
                return None
            if n == 0 and v.strip().startswith(b"-"):
                return -0.0  # lupa hands Lua's -0 over as the integer 0
            return float(n)
        return None

    def check_number(self, idx: int) -> float:
        n = self.number(idx)
        if n is None:
            raise self.typeerror(idx, "number")
        return n

    def check_integer(self, idx: int) -> int:
        n = self.number(idx)
        if n is None:
            raise self.typeerror(idx, "number")
        return c_i64(n)

    def check_string(self, idx: int) -> bytes:
        v = self.arg(idx)
        if isinstance(v, bytes):
            return v
        if isinstance(v, int | float) and not isinstance(v, bool):
            return lua_number_text(float(v))
        raise self.typeerror(idx, "string")

    def format(self) -> bytes:
        """Argument 1 as the C string the library walks (it ends at a NUL)."""
        return self.check_string(1).split(b"\0", 1)[0]


class Format:
    """A cursor over a format string with its endianness and alignment state."""

    def __init__(self, call: Call, fmt: bytes) -> None:
        self.call = call
        self.fmt = fmt
        self.i = 0
        self.endian = NATIVE
        self.align = 1

    def getnum(self, default: int) -> int:
        fmt = self.fmt
        if self.i >= len(fmt) or not 0x30 <= fmt[self.i] <= 0x39:
            return default
        a = 0
        while self.i < len(fmt) and 0x30 <= fmt[self.i] <= 0x39:
            digit = fmt[self.i] - 0x30
            if a > INT_MAX // 10 or a * 10 > INT_MAX - digit:
                raise LuaArgError(b"integral size overflow")
            a = a * 10 + digit
            self.i += 1
        return a

    def optsize(self, opt: int) -> int:
        c = chr(opt)
        if c in "Bb":
            return 1
        if c in "Hh":
            return 2
        if c in "LlTd":
            return 8
        if c == "f":
            return 4
        if c == "x":
            return 1
        if c == "c":
            return self.getnum(1)
        if c in "iI":
            size = self.getnum(4)
            if size > MAXINTSIZE:
                raise LuaArgError(b"integral size %d is larger than limit of %d" % (size, MAXINTSIZE))
            return size
        return 0

    def toalign(self, length: int, opt: int, size: int) -> int:
        if size == 0 or opt == ord("c"):
            return 0
        if size > self.align:
            size = self.align
        return ((size - (length & (size - 1))) & (size - 1)) & MASK64

    def control(self, opt: int) -> None:
        if opt == ord(" "):
            return
        if opt == ord(">"):
            self.endian = BIG
        elif opt == ord("<"):
            self.endian = LITTLE
        elif opt == ord("!"):
            a = self.getnum(MAXALIGN)
            if not (a > 0 and a & (a - 1) == 0):
                raise LuaArgError(b"alignment %d is not a power of 2" % a)
            self.align = a
        else:
            raise self.call.argerror(1, b"invalid format option '%s'" % bytes([opt]))

    def options(self):
        while self.i < len(self.fmt):
            opt = self.fmt[self.i]
            self.i += 1
            yield opt, self.optsize(opt)


def pack_float(n: float, size: int, endian: int) -> bytes:
    order = "<" if endian == LITTLE else ">"
    if size == 8:
        return _struct.pack(order + "d", n)
    try:
        return _struct.pack(order + "f", n)
    except OverflowError:  # (float)n on x86 rounds to an infinity
        return _struct.pack(order + "f", n * float("inf"))


def pack(call: Call) -> bytes:
    fmt = Format(call, call.format())
    call.pushed = 1  # b_pack pushes a nil to separate the arguments from its buffer
    out = bytearray()
    arg = 2
    total = 0
    for opt, size in fmt.options():
        pad = fmt.toalign(total, opt, size)
        total += pad
        out += b"\0" * pad
        c = chr(opt)
        if c in "bBhHlLTiI":
            value = c_u64(call.check_number(arg))
            arg += 1
            raw = (value & MASK64).to_bytes(8, "little") + b"\0" * max(0, size - 8)
            raw = raw[:size]
            out += raw if fmt.endian == LITTLE else raw[::-1]
        elif c == "x":
            out += b"\0"
        elif c in "fd":
            out += pack_float(call.check_number(arg), size, fmt.endian)
            arg += 1
        elif c in "cs":
            data = call.check_string(arg)
            arg += 1
            if size == 0:
                size = len(data)
            if len(data) < size:
                raise call.argerror(arg, b"string too short")  # arg already advanced, as in C
            out += data[:size]
            if c == "s":
                out += b"\0"
                size += 1
        else:
            fmt.control(opt)
        total += size
    return bytes(out)


def read_integer(raw: bytes, endian: int, signed: bool, size: int) -> float:
    value = 0
    for b in raw if endian == BIG else reversed(raw):
        value = ((value << 8) | b) & MASK64
    if not signed:
        return float(value)
    mask = (MASK64 << ((size * 8 - 1) & 63)) & MASK64  # x86 masks the shift count
    if value & mask:
        value |= mask
    return float(signed64(value))


def unpack(call: Call) -> list[Any]:
    fmt = Format(call, call.format())
    data = call.check_string(2)
    ld = len(data)
    pos = 1
    if call.nargs >= 3 and call.arg(3) is not None:
        pos = call.check_integer(3)
    pos &= MASK64
    if pos == 0:
        raise call.argerror(3, b"offset must be 1 or greater")
    pos = (pos - 1) & MASK64
    results: list[Any] = []
    for opt, size in fmt.options():
        pos = (pos + fmt.toalign(pos, opt, size)) & MASK64
        if not (size <= ld and pos <= ld - size):
            raise call.argerror(2, b"data string too short")
        if call.nargs + len(results) + 2 > MAXCSTACK:
            raise LuaArgError(b"stack overflow (too many results)")
        c = chr(opt)
        if c in "bBhHlLTiI":
            results.append(read_integer(data[pos:pos + size], fmt.endian, c.islower(), size))
        elif c == "x":
            pass
        elif c in "fd":
            order = "<" if fmt.endian == LITTLE else ">"
            results.append(_struct.unpack(order + ("f" if c == "f" else "d"), data[pos:pos + size])[0])
        elif c == "c":
            if size == 0:
                previous = results[-1] if results else None
                count = previous if isinstance(previous, float) else (
                    call.tonumber(previous) if isinstance(previous, bytes) else None)
                if count is None:
                    raise LuaArgError(b"format 'c0' needs a previous size")
                size = c_u64(float(count))
                results.pop()
                if not (size <= ld and pos <= ld - size):
                    raise call.argerror(2, b"data string too short")
            results.append(data[pos:pos + size])
        elif c == "s":
            end = data.find(b"\0", pos)
            if end < 0:
                raise LuaArgError(b"unfinished string in data")
            size = end - pos + 1
            results.append(data[pos:end])
        else:
            fmt.control(opt)
        pos = (pos + size) & MASK64
    results.append(float(signed64(pos + 1)))
    return results


def size(call: Call) -> float:
    fmt = Format(call, call.format())
    pos = 0
    for opt, sz in fmt.options():
        pos = (pos + fmt.toalign(pos, opt, sz)) & MASK64
        if opt == ord("s"):
            raise call.argerror(1, b"option 's' has no fixed size")
        if opt == ord("c") and sz == 0:
            raise call.argerror(1, b"option 'c0' has no fixed size")
        if not chr(opt).isalnum() or opt > 0x7F:
            fmt.control(opt)
        pos = (pos + sz) & MASK64
    return float(signed64(pos))


def _entry(fname: str, body: Callable[[Call], Any], tonumber: Callable[[bytes], Any]) -> Callable[..., tuple]:
    def entry(nargs: int, *args: Any) -> tuple:
        try:
            result = body(Call(fname, nargs, args, tonumber))
        except LuaArgError as e:
            if e.arg_index is None:
                return (False, e.message)
            return (False, e.message, e.arg_index)
        except Exception as e:  # a bug here must surface as a script error, not a traceback
            return (False, f"struct.{fname}: internal error ({type(e).__name__})".encode())
        if isinstance(result, list):
            return (True, *result)
        return (True, result)
    return entry


def install(lua: Any) -> Any:
    """Build the ``struct`` table in ``lua`` and return it."""
    tonumber = lua.eval("tonumber")
    make = lua.execute("return function(...) " + ARGERROR_LUA + LUA_WRAPPER + " end", name="@dumpling")
    spreading = make_spreading(lua)  # struct.pack(fmt, unpack(t)) may pass ~8000 arguments
    return make(spreading(_entry("pack", pack, tonumber)), spreading(_entry("unpack", unpack, tonumber)),
                spreading(_entry("size", size, tonumber)))
