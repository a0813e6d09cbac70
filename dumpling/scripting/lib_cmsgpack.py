"""The ``cmsgpack`` library (lua-cmsgpack 0.4.0 as Redis 7 bundles it).

Owns ``cmsgpack.pack/unpack/unpack_one/unpack_limit``: Redis's choice between array and map
(keys exactly 1..n), the smallest integer encoding, float32 when the double survives the round
trip, str8/16/32, the 16-level encode nesting limit (deeper tables become nil), no bin/ext types
on decode ("Bad data format in input."), truncated input ("Missing bytes in input."), and the Lua
stack limit (LUAI_MAXCSTACK) that bounds how many values and how deep a nesting one call may
decode -- the limits behind Redis's CVE-2018-11218 and CVE-2022-24834 fixes.

The byte work is Python; scripts only see the Lua wrappers in ``LUA_WRAPPER``.  Decoding is
iterative (no Python recursion); the Python functions return ``(True, values...)`` or
``(False, message, error level)`` and never raise.
"""

from __future__ import annotations

import struct as _struct
from collections.abc import Callable
from typing import Any

import lupa.lua51 as lupa

from dumpling.scripting.lib_struct import Call, LuaArgError, signed64

MAX_NESTING = 16      # LUACMSGPACK_MAX_NESTING: tables deeper than this are packed as nil
MAXCSTACK = 8000      # LUAI_MAXCSTACK
INT_MAX = 2**31 - 1

LUA_WRAPPER = r"""
local py_pack, py_unpack = ...
local select, error = select, error

-- Reached by a tail call from the wrapper, whose frame is lost: level 3 is the calling script
-- (Python asks for 2 meaning "the caller"); level 0 adds no position.
local function finish(ok, ...)
  if ok then return ... end
  local msg, level = ...
  if level > 0 then level = level + 1 end
  error(msg, level)
end

return {
  pack = function(...)
    local n = select("#", ...)
    if n == 0 then error("bad argument #0 to 'pack' (MessagePack pack needs input.)", 2) end
    if n + n > 8000 then
      error("bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)", 2)
    end
    return finish(py_pack(...))
  end,
  unpack = function(...) return finish(py_unpack("unpack", select("#", ...), ...)) end,
  unpack_one = function(...) return finish(py_unpack("unpack_one", select("#", ...), ...)) end,
  unpack_limit = function(...) return finish(py_unpack("unpack_limit", select("#", ...), ...)) end,
  _NAME = "cmsgpack",
  _VERSION = "lua-cmsgpack 0.4.0",
  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
  _DESCRIPTION = "MessagePack C implementation for Lua",
}
"""


class DecodeError(Exception):
    """Refusal while decoding: (message, Lua error level)."""


# ---------------------------------------------------------------------------------- packing


def encode_int(n: int, out: bytearray) -> None:
    if n >= 0:
        if n <= 127:
            out.append(n)
        elif n <= 0xFF:
            out += b"\xcc" + n.to_bytes(1, "big")
        elif n <= 0xFFFF:
            out += b"\xcd" + n.to_bytes(2, "big")
        elif n <= 0xFFFFFFFF:
            out += b"\xce" + n.to_bytes(4, "big")
        else:
            out += b"\xcf" + n.to_bytes(8, "big")
    elif n >= -32:
        out.append(n & 0xFF)
    elif n >= -128:
        out += b"\xd0" + n.to_bytes(1, "big", signed=True)
    elif n >= -32768:
        out += b"\xd1" + n.to_bytes(2, "big", signed=True)
    elif n >= -2147483648:
        out += b"\xd2" + n.to_bytes(4, "big", signed=True)
    else:
        out += b"\xd3" + n.to_bytes(8, "big", signed=True)


def encode_number(n: float, out: bytearray) -> None:
    # IS_INT64_EQUIVALENT: finite and (int64_t)n == n
    if n == n and -(2.0**63) <= n < 2.0**63 and n == int(n):
        encode_int(int(n), out)
        return
    try:
        single = _struct.pack(">f", n)
    except OverflowError:  # (float)n is an infinity: not equal to n
        single = None
    if single is not None and _struct.unpack(">f", single)[0] == n:
        out += b"\xca" + single
    else:
        out += b"\xcb" + _struct.pack(">d", n)


def encode_bytes(s: bytes, out: bytearray) -> None:
    n = len(s)
    if n < 32:
        out.append(0xA0 | n)
    elif n <= 0xFF:
        out += b"\xd9" + n.to_bytes(1, "big")
    elif n <= 0xFFFF:
        out += b"\xda" + n.to_bytes(2, "big")
    else:
        out += b"\xdb" + (n & 0xFFFFFFFF).to_bytes(4, "big")
    out += s


def encode_header(n: int, small: int, big16: bytes, big32: bytes, out: bytearray) -> None:
    if n <= 15:
        out.append(small | n)
    elif n <= 0xFFFF:
        out += big16 + n.to_bytes(2, "big")
    else:
        out += big32 + (n & 0xFFFFFFFF).to_bytes(4, "big")


def is_array(table: Any) -> bool:
    """table_is_an_array(): every key a number n > 0 with (int)n == n, and max == count."""
    count = top = 0
    for key in table.keys():
        if isinstance(key, bool) or not isinstance(key, int | float):
            return False
        if not (0 < key <= INT_MAX and key == int(key)):
            return False
        top = max(top, int(key))
        count += 1
    return top == count


def encode_value(value: Any, level: int, out: bytearray) -> None:
    if isinstance(value, bytes):
        encode_bytes(value, out)
    elif isinstance(value, bool):
        out.append(0xC3 if value else 0xC2)
    elif isinstance(value, int | float):
        encode_number(float(value), out)
    elif lupa.lua_type(value) == "table" and level < MAX_NESTING:
        if is_array(value):
            length = len(value)
            encode_header(length, 0x90, b"\xdc", b"\xdd", out)
            for i in range(1, length + 1):
                encode_value(value[i], level + 1, out)
        else:
            items = list(value.items())
            encode_header(len(items), 0x80, b"\xde", b"\xdf", out)
            for k, v in items:
                encode_value(k, level + 1, out)
                encode_value(v, level + 1, out)
    else:
        out.append(0xC0)


def pack(*values: Any) -> tuple:
    out = bytearray()
    try:
        for value in values:
            encode_value(value, 0, out)
    except lupa.LuaError as e:  # a Lua error raised while reading a table (e.g. a metamethod)
        return (False, str(e).encode(), 2)
    except Exception as e:
        return (False, f"cmsgpack.pack: internal error ({type(e).__name__})".encode(), 2)
    return (True, bytes(out))


# -------------------------------------------------------------------------------- unpacking

STACK_MESSAGE = b"stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
ARRAY_STACK_MESSAGE = b"stack overflow (in function mp_decode_to_lua_array)"


class Missing(Exception):
    """The input ends inside a value."""


class BadFormat(Exception):
    """A first byte the library does not know."""


class Decoder:
    """Decodes values from ``data[pos:]`` into Lua values, tracking the Lua stack slots the C
    decoder would hold so that its "stack overflow" refusals happen at the same points."""

    def __init__(self, lua: Any, data: bytes, pos: int) -> None:
        self.lua = lua
        self.data = data
        self.pos = pos

    def need(self, n: int) -> None:
        if len(self.data) - self.pos < n:
            raise Missing

    def take(self, n: int) -> bytes:
        self.need(n)
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw

    def scalar_or_header(self, top: int) -> tuple[str, Any]:
        """One item at stack height ``top``: ("value", v) or ("array"|"map", count)."""
        self.need(1)
        if top + 1 > MAXCSTACK:
            raise DecodeError(STACK_MESSAGE, 2)
        b = self.data[self.pos]
        if b < 0x80:
            self.pos += 1
            return "value", float(b)
        if b >= 0xE0:
            self.pos += 1
            return "value", float(b - 256)
        if 0xA0 <= b <= 0xBF:
            self.need(1 + (b & 0x1F))
            self.pos += 1
            return "value", self.take(b & 0x1F)
        if 0x90 <= b <= 0x9F:
            self.pos += 1
            return "array", b & 0x0F
        if 0x80 <= b <= 0x8F:
            self.pos += 1
            return "map", b & 0x0F
        fixed = FIXED.get(b)
        if fixed is not None:
            size, fmt = fixed
            raw = self.take(1 + size)[1:]
            number = _struct.unpack(fmt, raw)[0]
            if b == 0xCF:  # lua_pushinteger of a uint64: it wraps to int64
                number = signed64(number)
            return "value", float(number)
        if b == 0xC0:
            self.pos += 1
            return "value", None
        if b in (0xC2, 0xC3):
            self.pos += 1
            return "value", b == 0xC3
        if b in (0xD9, 0xDA):
            width = 1 if b == 0xD9 else 2
            self.need(1 + width)
            length = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + width], "big")
            self.need(1 + width + length)
            self.pos += 1 + width
            return "value", self.take(length)
        if b == 0xDB:
            length = int.from_bytes(self.take(5)[1:], "big")
            return "value", self.take(length)
        if b in (0xDC, 0xDE):
            return ("array" if b == 0xDC else "map"), int.from_bytes(self.take(3)[1:], "big")
        if b in (0xDD, 0xDF):
            return ("array" if b == 0xDD else "map"), int.from_bytes(self.take(5)[1:], "big")
        raise BadFormat

    def value(self, top: int) -> Any:
        """One complete value (containers filled iteratively)."""
        # frames: [table, kind, remaining, next array index | pending key, awaiting value?, table slot]
        frames: list[list[Any]] = []
        while True:
            kind, item = self.scalar_or_header(top)
            if kind != "value":
                table = self.lua.table()
                slot = top + 1
                if kind == "array" and slot + 1 > MAXCSTACK:
                    raise DecodeError(ARRAY_STACK_MESSAGE, 2)
                if item:
                    frames.append([table, kind, item, 1, False, slot])
                    top = slot + 1 if kind == "array" else slot
                    continue
                item = table
            value = item
            # attach the finished value to its parents, closing every container it completes
            while frames:
                frame = frames[-1]
                table, kind, _, index, awaiting_value, slot = frame
                if kind == "array":
                    table[index] = value
                    frame[3] = index + 1
                elif not awaiting_value:
                    frame[3] = value
                    frame[4] = True
                    top = slot + 1
                    break
                else:
                    if index is None:
                        raise DecodeError(b"table index is nil", 0)
                    if isinstance(index, float) and index != index:
                        raise DecodeError(b"table index is NaN", 0)
                    table[index] = value
                    frame[3] = None
                    frame[4] = False
                frame[2] -= 1
                if frame[2] == 0:
                    frames.pop()
                    value = table
                    continue
                top = slot + 1 if kind == "array" else slot
                break
            if not frames:
                return value


FIXED: dict[int, tuple[int, str]] = {
    0xCC: (1, ">B"), 0xCD: (2, ">H"), 0xCE: (4, ">I"), 0xCF: (8, ">Q"),
    0xD0: (1, ">b"), 0xD1: (2, ">h"), 0xD2: (4, ">i"), 0xD3: (8, ">q"),
    0xCA: (4, ">f"), 0xCB: (8, ">d"),
}


def c_int(n: int) -> int:
    """A 64-bit integer cast to a C int (its low 32 bits)."""
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def unpack_full(lua: Any, data: bytes, limit: int, offset: int, base: int) -> list[Any]:
    length = len(data)
    if offset < 0 or limit < 0:
        raise DecodeError(b"Invalid request to unpack with offset of %d and limit of %d."
                          % (c_int(offset), c_int(length)), 2)
    if offset > length:
        raise DecodeError(b"Start offset %d greater than input length %d." % (c_int(offset), c_int(length)), 2)
    decode_all = limit == 0 and offset == 0
    if decode_all:
        limit = INT_MAX
    decoder = Decoder(lua, data, offset)
    values: list[Any] = []
    try:
        while decoder.pos < length and len(values) < limit:
            values.append(decoder.value(base + len(values)))
    except Missing:
        raise DecodeError(b"Missing bytes in input.", 2) from None
    except BadFormat:
        raise DecodeError(b"Bad data format in input.", 2) from None
    if not decode_all:
        if base + len(values) + 1 > MAXCSTACK:
            raise DecodeError(b"stack overflow (in function mp_unpack_full)", 2)
        values.insert(0, -1.0 if decoder.pos == length else float(decoder.pos))
    return values


def make_unpack(lua: Any, tonumber: Callable[[bytes], Any]) -> Callable[..., tuple]:
    def unpack(name: bytes, nargs: int, *args: Any) -> tuple:
        fname = name.decode()
        call = Call(fname, nargs, args, tonumber)
        try:
            if fname == "unpack":
                limit, offset, base = 0, 0, nargs
            else:
                if fname == "unpack_one":
                    limit = 1
                    offset_idx = 2
                else:
                    limit = call.check_integer(2)
                    offset_idx = 3
                offset = call.check_integer(offset_idx) if nargs >= offset_idx and call.arg(
                    offset_idx) is not None else 0
                call.nargs = min(nargs, 1)  # the library pops everything but the string
                base = 1
            data = call.check_string(1)
            return (True, *unpack_full(lua, data, limit, offset, base))
        except LuaArgError as e:
            return (False, e.args[0], 2)
        except DecodeError as e:
            return (False, e.args[0], e.args[1])
        except lupa.LuaError as e:
            return (False, str(e).encode(), 2)
        except Exception as e:  # a bug here must surface as a script error, not a traceback
            return (False, f"cmsgpack.{fname}: internal error ({type(e).__name__})".encode(), 2)
    return unpack


def install(lua: Any) -> Any:
    """Build the ``cmsgpack`` table in ``lua`` and return it."""
    tonumber = lua.eval("tonumber")
    make = lua.execute("return function(...) " + LUA_WRAPPER + " end", name="@dumpling")
    return make(pack, make_unpack(lua, tonumber))
