"""The scripting libraries (cjson, cmsgpack, struct, bit) against real Redis 7.

Each snippet runs as ``EVAL`` on redis-server and in our lupa runtime with the libraries
installed; both wrap it in the same Lua harness (pcall + a deterministic serialiser), so the
results, including error texts and their ``user_script:N:`` positions, must be equal byte for
byte.  Snippets avoid ``return f(x)`` for calls that fail: a tail call to a Lua function loses
the caller's line, so they write ``return (f(x))``; the tail-call test runs such scripts through
``dumpling.scripting.untail.without_tail_calls``, which restores Redis's positions.

The security cases feed the inputs behind Redis's CVEs and check for a clean refusal (or
Redis's own answer) within a time bound.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import lupa.lua51 as lupa
import pytest

from dumpling.scripting.libs import install_libraries
from dumpling.scripting.untail import without_tail_calls
from tests.servers import ServerProcess, start_redis

HARNESS = r"""
local function ser(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then
    if v ~= v then return "nan" end
    return string.format("%.17g", v)
  end
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    local parts = {}
    for i = 1, #keys do parts[i] = ser(keys[i]) .. "=" .. ser(v[keys[i]]) end
    table.sort(parts)
    return "{" .. table.concat(parts, ",") .. "}"
  end
  if v == cjson.null then return "NULL" end
  return tostring(v)
end
local function pack(...) return {n = select("#", ...), ...} end
local res = pack(pcall(function()
SNIPPET
end))
local out = {}
for i = 1, res.n do out[i] = ser(res[i]) end
return table.concat(out, " | ")
"""


@pytest.fixture(scope="module")
def redis_lib() -> Iterator[ServerProcess]:
    server = start_redis()
    yield server
    server.stop()


def new_runtime() -> lupa.LuaRuntime:
    lua = lupa.LuaRuntime(encoding=None, unpack_returned_tuples=True, register_eval=False, register_builtins=False)
    install_libraries(lua)
    # what the sandbox will do afterwards: the libraries must not depend on these
    lua.execute("python = nil io = nil package = nil require = nil loadfile = nil dofile = nil")
    return lua


class Differ:
    """Runs snippets on both engines and collects the mismatches."""

    def __init__(self, server: ServerProcess) -> None:
        self.conn = server.raw()
        self.lua = new_runtime()
        self.run_ours = self.lua.eval(
            "function(src) local f, e = loadstring(src, '@user_script') if not f then return 'SYNTAX ' .. e end "
            "local ok, r = pcall(f) if not ok then return 'UNCAUGHT ' .. tostring(r) end return r end")
        self.mismatches: list[str] = []

    def ours(self, snippet: str) -> bytes:
        return self.run_ours(HARNESS.replace("SNIPPET", snippet).encode())

    def ours_untailed(self, snippet: str) -> bytes:
        """The snippet compiled, then its tail calls made plain calls (``without_tail_calls``)."""
        chunk = self.lua.eval("function(src) return string.dump(assert(loadstring(src, '@user_script'))) end")(
            HARNESS.replace("SNIPPET", snippet).encode())
        return self.run_ours(without_tail_calls(chunk))

    def theirs(self, snippet: str) -> bytes:
        from tests.servers import parse_reply
        reply = parse_reply(self.conn.call("EVAL", HARNESS.replace("SNIPPET", snippet), 0))
        assert isinstance(reply, bytes), reply
        return reply

    def check(self, snippet: str, untailed: bool = False) -> bytes:
        a = self.ours_untailed(snippet) if untailed else self.ours(snippet)
        b = self.theirs(snippet)
        if a != b:
            self.mismatches.append(f"{snippet}\n   ours:  {a[:300]!r}\n   redis: {b[:300]!r}")
        return b

    def check_all(self, snippets: list[str], untailed: bool = False) -> None:
        for s in snippets:
            self.check(s, untailed)
        assert not self.mismatches, "\n".join(self.mismatches)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def differ(redis_lib: ServerProcess) -> Iterator[Differ]:
    d = Differ(redis_lib)
    yield d
    d.close()


# ---------------------------------------------------------------------------------- bit

BIT = [
    "return bit.tobit(1), bit.tobit(-1), bit.tobit(2^31), bit.tobit(2^32 + 5), bit.tobit(0.5), bit.tobit(1.5)",
    "return bit.tobit(2.5), bit.tobit(-2.5), bit.tobit(2^52), bit.tobit(2^53 + 2), bit.tobit(2^60 + 2^33 + 7)",
    "return bit.tobit(-2^52), bit.tobit(-2^60 - 12345), bit.tobit(1e300), bit.tobit(-1e300), bit.tobit(1/0)",
    "return bit.tobit(-1/0), bit.tobit(0/0), bit.tobit('0x10'), bit.tobit(' 12 '), bit.tobit(1e-300)",
    "return (bit.tobit('abc'))", "return (bit.tobit())", "return (bit.tobit(nil))", "return (bit.tobit({}))",
    "return (bit.band(1, true))", "return (bit.bor(1, 2, nil, 4))", "return (bit.bxor(1, 2, 'x', 4))",
    "return bit.bnot(0), bit.bnot(-1), bit.bnot(0x12345678), bit.bnot(2^31)",
    "return bit.band(0xff00ff, 0x0ff0f0, -1), bit.bor(1, 2, 4, 2^31), bit.bxor(0xf0f0, 0xff00, 0x1), bit.band(5)",
    "return bit.band(-1, -2), bit.bor(), 1",
    "return bit.lshift(1, 31), bit.lshift(1, 32), bit.lshift(1, 33), bit.lshift(-1, 4), bit.lshift(3, -1)",
    "return bit.rshift(-1, 0), bit.rshift(-1, 1), bit.rshift(-256, 4), bit.rshift(1, 32), bit.rshift(2^31, 31)",
    "return bit.arshift(-256, 4), bit.arshift(-1, 31), bit.arshift(2^31, 1), bit.arshift(256, 36), bit.arshift(5, 0)",
    "return bit.rol(0x12345678, 4), bit.rol(-1, 7), bit.rol(1, 0), bit.rol(2^31, 1), bit.rol(0x80000001, 33)",
    "return bit.ror(0x12345678, 4), bit.ror(1, 1), bit.ror(1, 0), bit.ror(0x80000001, 32), bit.ror(3, -1)",
    "return bit.bswap(0x12345678), bit.bswap(-1), bit.bswap(0xff), bit.bswap(2^31)",
    "return bit.tohex(1), bit.tohex(-1), bit.tohex(0x1234abcd, 4), bit.tohex(0x1234abcd, -4), bit.tohex(255, 0)",
    "return bit.tohex(255, 12), bit.tohex(255, -12), bit.tohex(1, -2147483648), bit.tohex(1, 2^31), bit.tohex(7, -1)",
    "return (bit.tohex(1, nil))", "return (bit.lshift(1))", "return (bit.bswap('z'))",
]


def test_bit_matches_redis(differ: Differ) -> None:
    differ.check_all(BIT)


# -------------------------------------------------------------------------------- cjson

CJSON = [
    "local t = {} for k in pairs(cjson) do t[#t + 1] = k end table.sort(t) return table.concat(t, ',')",
    "return cjson._NAME, cjson._VERSION, type(cjson.null), tostring(cjson.null), cjson.null == cjson.null",
    "return cjson.encode({}), cjson.encode({1, 2, 3}), cjson.encode({a = 1}), cjson.encode('x'), cjson.encode(1)",
    "return cjson.encode(true), cjson.encode(false), cjson.encode(nil), cjson.encode(cjson.null)",
    "return cjson.encode({1, nil, 3}), cjson.encode({[1] = 1, [2] = 2, [4] = 4}), cjson.encode({[3] = 1})",
    "return cjson.encode({[10] = 1}), cjson.encode({[1] = 1, [11] = 2, [5] = 5}), cjson.encode({[0] = 1})",
    "return (cjson.encode({[11] = 1}))", "return (cjson.encode({[1] = 1, [100] = 1}))",
    "return cjson.encode({[1.5] = 1}), cjson.encode({[-1] = 'a'}), cjson.encode({[2^40] = 1})",
    "return cjson.encode({1, 2, x = 3}), cjson.encode({b = 1, a = 2, c = {d = {1, {e = 'f'}}}})",
    "return cjson.encode(0.1), cjson.encode(-0.0), cjson.encode(1e300), cjson.encode(123456789012345678)",
    "return cjson.encode(3.14159265358979), cjson.encode(1/3), cjson.encode(2^53), cjson.encode(-1.5e-10)",
    "return cjson.encode(100), cjson.encode(1e14), cjson.encode(1e15), cjson.encode(12345678901234)",
    "return (cjson.encode(1/0))", "return (cjson.encode(-1/0))", "return (cjson.encode(0/0))",
    "return (cjson.encode({[1/0] = 1}))", "return (cjson.encode({a = {1/0}}))",
    "return cjson.encode('a/b\"c\\\\d\\n\\r\\t\\b\\f\\0\\1\\31\\127\\128\\255 '), cjson.encode('\\226\\130\\172')",
    "return (cjson.encode(function() end))", "return (cjson.encode({function() end}))",
    "return (cjson.encode({[true] = 1}))", "return (cjson.encode({[{}] = 1}))",
    "return (cjson.encode(coroutine.create(function() end)))",
    "return (cjson.encode())", "return (cjson.encode(1, 2))",
    "local t = {} local c = t for i = 1, 999 do c[1] = {} c = c[1] end return #cjson.encode(t)",
    "local t = {} local c = t for i = 1, 1000 do c[1] = {} c = c[1] end return (cjson.encode(t))",
    "local t = {} t[1] = t return (cjson.encode(t))",
    "local t = {} local c = t for i = 1, 1200 do c.x = {} c = c.x end return (cjson.encode(t))",
    "return cjson.encode({a = cjson.null, b = {cjson.null, false}})",
    # decoding
    "return cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false,\"e\":\"x\"}')",
    "return cjson.decode('[]'), cjson.decode('{}'), cjson.decode('  \\t\\n\\r 5 '), cjson.decode('\"\"')",
    "return cjson.decode('-0'), cjson.decode('1e400'), cjson.decode('-1e400'), cjson.decode('1.5e-3'), cjson.decode('0.1')",
    "return cjson.decode('123456789012345678901234567890'), cjson.decode('1E5'), cjson.decode('1e+2')",
    "return cjson.decode('\"\\\\u00e9\\\\u20ac\\\\ud83d\\\\ude00\\\\u0000x\\\\/\\\\b\\\\f\\\\n\\\\r\\\\t\\\\\\\\\\\\\"\"')",
    "return cjson.decode('\"\\1\\31\\255\"'), cjson.decode('\"\\\\u0041\"'), cjson.decode('\"\\\\u007f\\\\u0080\\\\u07ff\\\\u0800\"')",
    "return cjson.decode('[1,2]\\0garbage'), cjson.decode(42), cjson.decode('null') == cjson.null",
    "return cjson.decode('[null, null]')[2] == cjson.null, #cjson.decode('[1,null,3]')",
    "return (cjson.decode('x'))", "return (cjson.decode(''))", "return (cjson.decode('   '))",
    "return (cjson.decode('[1,2'))", "return (cjson.decode('[1 2]'))", "return (cjson.decode('{\"a\" 1}'))",
    "return (cjson.decode('{\"a\":1,}'))", "return (cjson.decode('{1:2}'))", "return (cjson.decode('[1,]'))",
    "return (cjson.decode('{\"a\":1 \"b\":2}'))", "return (cjson.decode('[1] x'))", "return (cjson.decode('tru'))",
    "return (cjson.decode('nul'))", "return (cjson.decode('\"abc'))", "return (cjson.decode('\"\\\\x\"'))",
    "return (cjson.decode('\"\\\\u12\"'))", "return (cjson.decode('\"\\\\ud800\"'))", "return (cjson.decode('\"\\\\udc00\\\\u0041\"'))",
    "return (cjson.decode('\"\\\\ud800\\\\u0041\"'))", "return (cjson.decode('\"abc\\\\'))",
    "return (cjson.decode(']'))", "return (cjson.decode(':'))", "return (cjson.decode(','))", "return (cjson.decode('}'))",
    "return (cjson.decode('-'))", "return (cjson.decode('-a'))", "return (cjson.decode('.5'))", "return (cjson.decode('1.5e'))",
    "return cjson.decode('[0x10, 0X1p4, 010, +5, -.5, 1.]')",
    "local t = cjson.decode('[inf, -Infinity, nan, NaN, -nan, infinity]') return t[1], t[2], t[3] ~= t[3], #t",
    "return (cjson.decode('infx'))", "return (cjson.decode('[Inf]'))", "return (cjson.decode('+'))",
    "return (cjson.decode('\\0['))", "return (cjson.decode('[\\0'))", "return (cjson.decode('a\\0'))",
    "return (cjson.decode({}))", "return (cjson.decode())", "return (cjson.decode('1', 2))", "return (cjson.decode(nil))",
    "return #cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))",
    "return (cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001)))",
    "return (cjson.decode(string.rep('{\"a\":', 1001) .. '1' .. string.rep('}', 1001)))",
    "return (cjson.decode('[' .. string.rep('[', 1000)))",
    # configuration
    "return cjson.encode_sparse_array()", "return cjson.encode_max_depth(), cjson.decode_max_depth()",
    "return cjson.encode_number_precision(), cjson.encode_keep_buffer(), cjson.encode_invalid_numbers()",
    "return cjson.decode_invalid_numbers()",
    "return (cjson.encode_max_depth(0))", "return (cjson.encode_max_depth('x'))", "return (cjson.encode_max_depth(1, 2))",
    "return (cjson.encode_number_precision(15))", "return (cjson.encode_number_precision(0))",
    "return (cjson.encode_sparse_array(1))", "return (cjson.encode_sparse_array('maybe'))",
    "return (cjson.encode_sparse_array(true, -1))", "return (cjson.encode_sparse_array(true, 2, 'x'))",
    "return (cjson.encode_sparse_array(true, 2, 10, 1))", "return (cjson.encode_invalid_numbers('nope'))",
    "return (cjson.encode_keep_buffer({}))", "return (cjson.decode_max_depth(-5))",
    "local c = cjson.new() return c.encode_sparse_array(true, 3, 5), c.encode({[1] = 1, [20] = 2}), cjson.encode_sparse_array()",
    "local c = cjson.new() c.encode_sparse_array(false, 0) return c.encode({[1] = 1, [2000] = 2}) == nil",
    "local c = cjson.new() c.encode_sparse_array('on', 2, 1) return c.encode({[1] = 1, [3] = 2})",
    "local c = cjson.new() return c.encode_number_precision(3), c.encode(3.14159), c.encode({[3.14159] = 1})",
    "local c = cjson.new() return c.encode_invalid_numbers('on'), c.encode({1/0, -1/0}), c.encode(0/0)",
    "local c = cjson.new() return c.encode_invalid_numbers('null'), c.encode({1/0, 0/0, 1}), c.encode({[1/0] = 2})",
    "local c = cjson.new() return c.encode_invalid_numbers(true), c.encode_invalid_numbers(false)",
    "local c = cjson.new() return c.encode_keep_buffer('off'), c.encode({1}), c.encode_keep_buffer(true)",
    "local c = cjson.new() return c.decode_invalid_numbers(false), (pcall(c.decode, 'nan'))",
    "local c = cjson.new() c.decode_invalid_numbers(false) return (c.decode('[1,0x10]'))",
    "local c = cjson.new() c.decode_invalid_numbers('off') return (c.decode('+1'))",
    "local c = cjson.new() c.decode_invalid_numbers(false) return (c.decode('-inf'))",
    "local c = cjson.new() c.decode_invalid_numbers(false) return (c.decode('01'))",
    "local c = cjson.new() c.decode_invalid_numbers(false) return c.decode('[-0, 0.5, -12e3]')",
    "local c = cjson.new() return c.encode_max_depth(2), c.encode({{1}}), (pcall(c.encode, {{{1}}}))",
    "local c = cjson.new() c.encode_max_depth(2) return (c.encode({{{1}}}))",
    "local c = cjson.new() c.decode_max_depth(2) return (c.decode('[[[1]]]'))",
    "local c = cjson.new() c.decode_max_depth(2) return (c.decode('{\"a\":{\"b\":{}}}'))",
    "local c = cjson.new() return c.null == cjson.null, c.new ~= nil, c._VERSION, type(c.new().encode)",
    "local c = cjson.new() c.encode_max_depth(100000) local t = {} local x = t "
    "for i = 1, 9000 do x[1] = {} x = x[1] end return (c.encode(t))",
    "local c = cjson.new() c.encode_max_depth(100000) local t = {} local x = t "
    "for i = 1, 5000 do x.k = {} x = x.k end return (c.encode(t))",
    "local c = cjson.new() c.decode_max_depth(100000) return (c.decode(string.rep('[', 9000)))",
    "local c = cjson.new() c.decode_max_depth(100000) return (c.decode(string.rep('{\"a\":', 5000)))",
]


def test_cjson_matches_redis(differ: Differ) -> None:
    differ.check_all(CJSON)


# ----------------------------------------------------------------------------- cmsgpack

CMSGPACK = [
    "local t = {} for k in pairs(cmsgpack) do t[#t + 1] = k end table.sort(t) return table.concat(t, ',')",
    "return cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION",
    "return cmsgpack.pack(0, 1, 127, 128, 255, 256, 65535, 65536, 2^32 - 1, 2^32, 2^53, 2^63, -2^63)",
    "return cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1, -2^53)",
    "return cmsgpack.pack(0.5, 1.5, 0.1, -0.0, 1/0, -1/0, 1e300, 3.4028234663852886e38, 1e-45, 2^63 + 2^20)",
    "return cmsgpack.pack(0/0), cmsgpack.pack(-(0/0)), cmsgpack.pack(2^-149), cmsgpack.pack(-2^-126), cmsgpack.pack(1.5 * 2^127)",
    "return cmsgpack.pack(2^-150), cmsgpack.pack(3 * 2^-150), cmsgpack.pack(2^128), cmsgpack.pack(-2^-1074), cmsgpack.pack(2^-1022)",
    "return cmsgpack.pack(1 + 2^-23, 1 + 2^-24, 16777217, 2^53 + 2, -(2^63), -(2^63) - 2^11, 2^63 - 2^10)",
    "local a, b, c, d = cmsgpack.unpack('\\202\\127\\192\\0\\1\\202\\255\\192\\0\\0\\203\\255\\248\\0\\0\\0\\0\\0\\0"
    "\\203\\127\\240\\0\\0\\0\\0\\0\\1') return tostring(a), tostring(b), tostring(c), tostring(d)",
    "return cmsgpack.unpack('\\202\\0\\0\\0\\1\\202\\128\\128\\0\\0\\203\\0\\0\\0\\0\\0\\0\\0\\1\\203\\128\\0\\0\\0\\0\\0\\0\\0')",
    "return tostring(cmsgpack.unpack(cmsgpack.pack(-(0/0)))), tostring(cmsgpack.unpack(cmsgpack.pack(0/0))), tostring(cjson.decode('-nan'))",
    "return cmsgpack.pack('', 'a', string.rep('x', 31), string.rep('y', 32))",
    "return #cmsgpack.pack(string.rep('x', 255)), cmsgpack.pack(string.rep('x', 256)):sub(1, 4)",
    "return cmsgpack.pack(string.rep('x', 65535)):sub(1, 4), cmsgpack.pack(string.rep('x', 65536)):sub(1, 6)",
    "return cmsgpack.pack(true, false, nil, function() end, cjson.null, coroutine.create(function() end))",
    "return cmsgpack.pack({}), cmsgpack.pack({1, 2, 3}), cmsgpack.pack({1, nil, 3}), cmsgpack.pack({[2] = 1})",
    "return cmsgpack.pack({a = 1}), cmsgpack.pack({1, 2, x = 3}), cmsgpack.pack({[1.5] = 1}), cmsgpack.pack({[0] = 1})",
    "local t = {} for i = 1, 16 do t[i] = i end return cmsgpack.pack(t)",
    "local t = {} for i = 1, 70000 do t[i] = i % 3 end return #cmsgpack.pack(t), cmsgpack.pack(t):sub(1, 5)",
    "local t = {} for i = 1, 20 do t['k' .. i] = i end return #cmsgpack.pack(t), cmsgpack.pack(t):sub(1, 3)",
    "local t = {} for i = 1, 70000 do t['k' .. i] = 1 end return cmsgpack.pack(t):sub(1, 5)",
    "local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return cmsgpack.pack(t)",
    "local t = {} t[1] = t return cmsgpack.pack(t)",
    "local t = {} t.x = t return cmsgpack.pack(t)",
    "return cmsgpack.pack({[2^31] = 1}), cmsgpack.pack({[-1] = 1}), cmsgpack.pack({[true] = 1})",
    "return (cmsgpack.pack())",
    # unpacking
    "return cmsgpack.unpack(cmsgpack.pack(1, -1, 'abc', {1, 2, {a = true}}, 0.25, 0.1, -2^40))",
    "return cmsgpack.unpack('\\204\\255\\208\\128\\205\\1\\2\\209\\255\\1\\206\\255\\255\\255\\255\\210\\128\\0\\0\\0')",
    "return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255\\207\\0\\0\\0\\1\\0\\0\\0\\0')",
    "return cmsgpack.unpack('\\211\\128\\0\\0\\0\\0\\0\\0\\0\\211\\255\\255\\255\\255\\255\\255\\255\\254')",
    "return cmsgpack.unpack('\\202\\63\\192\\0\\0\\203\\63\\241\\153\\153\\153\\153\\153\\154')",
    "return cmsgpack.unpack('\\192\\194\\195\\127\\224\\255\\160\\161a')",
    "return cmsgpack.unpack('\\217\\3abc\\218\\0\\2ab\\219\\0\\0\\0\\1a')",
    "return cmsgpack.unpack('\\220\\0\\2\\1\\2\\221\\0\\0\\0\\1\\3\\222\\0\\1\\1\\2\\223\\0\\0\\0\\1\\161k\\192')",
    "return cmsgpack.unpack('\\146\\192\\1'), cmsgpack.unpack('\\130\\1\\192\\2\\3')",
    "return cmsgpack.unpack('')",
    "return (cmsgpack.unpack('\\196\\1a'))", "return (cmsgpack.unpack('\\193'))", "return (cmsgpack.unpack('\\212\\1\\1'))",
    "return (cmsgpack.unpack('\\199\\1\\1a'))", "return (cmsgpack.unpack('\\216\\1'))",
    "return (cmsgpack.unpack('\\205\\1'))", "return (cmsgpack.unpack('\\165abc'))", "return (cmsgpack.unpack('\\147\\1\\2'))",
    "return (cmsgpack.unpack('\\219\\255\\255\\255\\255ab'))", "return (cmsgpack.unpack('\\221\\255\\255\\255\\255\\1'))",
    "return (cmsgpack.unpack('\\129\\192\\1'))", "return (cmsgpack.unpack('\\129\\192'))",
    "return (cmsgpack.unpack('\\129\\203\\255\\248\\0\\0\\0\\0\\0\\0\\1'))",
    "return (cmsgpack.unpack({}))", "return (cmsgpack.unpack())", "return cmsgpack.unpack(12)",
    "return select('#', cmsgpack.unpack(string.rep('\\0', 7999)))",
    "return (cmsgpack.unpack(string.rep('\\0', 8000)))",
    "return select('#', cmsgpack.unpack(string.rep('\\0', 7998), 1))",
    "return (cmsgpack.unpack(string.rep('\\0', 7999), 1))",
    "return (cmsgpack.unpack(string.rep('\\145', 3998) .. '\\1'))",
    "return (cmsgpack.unpack(string.rep('\\145', 3999) .. '\\1'))",
    "return (cmsgpack.unpack(string.rep('\\145', 4000) .. '\\1'))",
    "return (cmsgpack.unpack(string.rep('\\129\\1', 3998) .. '\\1'))",
    "return (cmsgpack.unpack(string.rep('\\129\\1', 4000) .. '\\1'))",
    "return (cmsgpack.unpack(string.rep('\\145', 100000)))",
    "return cmsgpack.unpack_one('\\1\\2\\3'), cmsgpack.unpack_one('\\1\\2\\3', 1), cmsgpack.unpack_one('\\1\\2\\3', 2)",
    "return cmsgpack.unpack_one('\\1\\2\\3', 3), cmsgpack.unpack_one('', 0), cmsgpack.unpack_one('\\1', 0.9)",
    "return (cmsgpack.unpack_one('\\1\\2\\3', 4))", "return (cmsgpack.unpack_one('\\1\\2\\3', -1))",
    "return (cmsgpack.unpack_one('\\1', 'x'))", "return (cmsgpack.unpack_one())", "return cmsgpack.unpack_one('\\1', '0')",
    "return cmsgpack.unpack_limit('\\1\\2\\3', 2), cmsgpack.unpack_limit('\\1\\2\\3', 5, 1)",
    "return cmsgpack.unpack_limit('\\1\\2\\3', 0), cmsgpack.unpack_limit('\\1\\2\\3', 0, 1)",
    "return (cmsgpack.unpack_limit('\\1\\2\\3', -1))", "return (cmsgpack.unpack_limit('\\1\\2\\3'))",
    "return (cmsgpack.unpack_limit('\\1\\2\\3', 1, 9))", "return (cmsgpack.unpack_limit('\\205', 1))",
    "return (cmsgpack.unpack_limit(string.rep('\\0', 8000), 7999))",
    "return select('#', cmsgpack.unpack_limit(string.rep('\\0', 8000), 7998))",
]


def test_cmsgpack_matches_redis(differ: Differ) -> None:
    differ.check_all(CMSGPACK)


# ------------------------------------------------------------------------------- struct

STRUCT = [
    "local t = {} for k in pairs(struct) do t[#t + 1] = k end table.sort(t) return table.concat(t, ',')",
    "return struct.pack('bBhHiIlLT', -1, 255, -2, 65535, -3, 2^32 - 1, -4, 2^64 - 2048, 7)",
    "return struct.pack('>bBhHiIlLT', -1, 255, -2, 65535, -3, 2^32 - 1, -4, 2^63, 7)",
    "return struct.pack('<i3>i3!4i3', 1, 2, 3), struct.pack('i1i2i5i8i9i16i32', 1, -1, 2^40, -2, -3, 5, -7)",
    "return struct.pack('b', 300), struct.pack('B', -1), struct.pack('h', 1.9), struct.pack('h', -1.9), struct.pack('b', '7')",
    "return struct.pack('>L', 2^64), struct.pack('>l', 0/0), struct.pack('>l', 2^70), struct.pack('>l', -2^70)",
    "return struct.pack('>L', 2^63), struct.pack('>L', -1.5), struct.pack('>L', 1e19), struct.pack('>l', -2^63)",
    "return struct.pack('<f>f<d>d', 1.5, -0.1, 0.1, -0.0), struct.pack('f', 1e300), struct.pack('f', -1e300)",
    "return struct.pack('f', 0/0), struct.pack('d', 1/0), struct.pack('f', 1e-50), struct.pack('f', 3.4028235677973366e38)",
    "return struct.pack('>f', 2^-149), struct.pack('>f', 2^-150), struct.pack('>f', 3 * 2^-151), struct.pack('>f', 1 + 2^-24)",
    "return struct.pack('>f', 1 + 3 * 2^-24), struct.pack('>f', 3.4028235677973366e38 * 2), struct.pack('>d', -(0/0))",
    "return tostring(struct.unpack('>f', '\\255\\192\\0\\0')), tostring(struct.unpack('>d', '\\127\\248\\0\\0\\0\\0\\0\\0'))",
    "return struct.pack('s', 'ab\\0c'), struct.pack('c0', 'xyz'), struct.pack('c2', 'xyz'), struct.pack('c', 'q')",
    "return struct.pack('xbxx', 1), struct.pack('!4bi', 1, 2), struct.pack('!bd', 1, 2), struct.pack('!2bi!8d', 1, 2, 3)",
    "return struct.pack('!bh', 1, 2), struct.pack('!16bl', 1, 2), struct.pack('!1bl', 1, 2), struct.pack(' < b > h ', 1, 2)",
    "return struct.pack('c1', 12), struct.pack('s', 1.5), struct.pack('', 1), struct.pack('bx\\0b', 1, 2)",
    "return (struct.pack('c5', 'ab'))", "return (struct.pack('i', 'x'))", "return (struct.pack('i'))",
    "return (struct.pack('bi', 1, {}))", "return (struct.pack('z', 1))", "return (struct.pack('b\\200', 1))",
    "return (struct.pack('!3i', 1))", "return (struct.pack('!0i', 1))", "return (struct.pack('i33', 1))",
    "return (struct.pack('i99999999999', 1))", "return (struct.pack('c2147483648', 'x'))", "return (struct.pack({}, 1))",
    "return (struct.pack())", "return (struct.pack('s', nil))", "return (struct.pack('d', true))",
    "return struct.unpack('bBhHiIlLT', struct.pack('bBhHiIlLT', -1, 255, -2, 65535, -3, 2^32 - 1, -4, 2^53, 7))",
    "return struct.unpack('>i3<i3', '\\255\\255\\254\\1\\0\\128'), struct.unpack('I3', '\\255\\255\\255')",
    "return struct.unpack('<i12', string.rep('\\255', 12)), struct.unpack('<i16', string.rep('\\255', 8) .. string.rep('\\0', 8))",
    "return struct.unpack('>I9', '\\1\\2\\3\\4\\5\\6\\7\\8\\9'), struct.unpack('>i9', '\\128\\2\\3\\4\\5\\6\\7\\8\\9')",
    "return struct.unpack('>L', '\\255\\255\\255\\255\\255\\255\\255\\255'), struct.unpack('>l', '\\128\\0\\0\\0\\0\\0\\0\\1')",
    "return struct.unpack('<f>d', struct.pack('<f>d', 0.1, 0.1)), struct.unpack('f', struct.pack('f', 1/0))",
    "return struct.unpack('s', 'abc\\0def\\0'), struct.unpack('ss', 'abc\\0def\\0'), struct.unpack('c3', 'abcdef')",
    "return struct.unpack('bc0', '\\3abcd'), struct.unpack('c1c0', '2xyz'), struct.unpack('i0', 'x')",
    "return struct.unpack('b', 'xyz', 2), struct.unpack('b', 'xyz', 3), struct.unpack('', 'xyz', 4), struct.unpack('', '', -5)",
    "return struct.unpack('!4bi', '\\1\\0\\0\\0\\2\\0\\0\\0'), struct.unpack('xbx', '\\1\\2\\3'), struct.unpack('b', 'xy', 1.9)",
    "return (struct.unpack('b', 'xyz', 4))", "return (struct.unpack('b', 'xyz', 0))", "return (struct.unpack('b', 'xyz', -1))",
    "return (struct.unpack('i', 'abc'))", "return (struct.unpack('s', 'abc'))", "return (struct.unpack('c0', 'abc'))",
    "return (struct.unpack('bc0', '\\9abc'))", "return (struct.unpack('bc0', '\\255abc'))",
    "return (struct.unpack('c2c0', 'xxabc'))", "return (struct.unpack('z', 'abc'))", "return (struct.unpack('b', {}))",
    "return (struct.unpack('b'))", "return (struct.unpack('b', 'x', 'y'))", "return (struct.unpack('<', '', 5))",
    "return (struct.unpack('c2147483647', 'x'))", "return (struct.unpack('i4', 'abcd', 2^63))",
    "return select('#', struct.unpack(string.rep('b', 7996), string.rep('\\1', 7996)))",
    "return (struct.unpack(string.rep('b', 7997), string.rep('\\1', 7997)))",
    "return (struct.unpack(string.rep('b', 7996), string.rep('\\1', 7996), 1))",
    "return struct.size('bBhHiIlLTfdx'), struct.size('!bd'), struct.size('!4bd'), struct.size('c7i3'), struct.size('')",
    "return struct.size('z'), struct.size('5'), struct.size('i12'), struct.size('>!2hb')",
    "return (struct.size('s'))", "return (struct.size('c0'))", "return (struct.size('b?'))", "return (struct.size('!5'))",
    "return (struct.size())", "return (struct.size('i40'))",
]


def test_struct_matches_redis(differ: Differ) -> None:
    differ.check_all(STRUCT)


# ------------------------------------------------------------------------- round trips

def test_round_trips_match_redis(differ: Differ) -> None:
    differ.check_all([
        "local v = {1, 'two', {three = 3, four = {4.5, -4}}, true} "
        "return cjson.decode(cjson.encode(v)), cmsgpack.unpack(cmsgpack.pack(v))",
        "local s = '' for i = 0, 255 do s = s .. string.char(i) end "
        "return cjson.decode(cjson.encode(s)) == s, cmsgpack.unpack(cmsgpack.pack(s)) == s, cjson.encode(s)",
        "return cjson.encode(cmsgpack.unpack(cmsgpack.pack({a = {1, 2}, b = 'c'})))",
        "return struct.unpack('>d>f', struct.pack('>d>f', math.pi, math.pi))",
    ])


# ------------------------------------------------------------- names in "bad argument"

CALL_NAMES = [
    "local f = bit.tobit return (f('x'))", "local t = {g = struct.pack} return (t.g('i', {}))",
    "local dec = cjson.decode return (dec({}))", "local u = cmsgpack.unpack_limit return (u('x'))",
    "local m = cjson.encode_max_depth return (m(0))", "local s = cjson.encode_sparse_array return (s('x'))",
    "local ok, e = pcall(cjson.encode) return e", "local ok, e = pcall(bit.band, {}) return e",
    "local ok, e = pcall(struct.size, 's') return e", "local ok, e = pcall(cmsgpack.unpack_one) return e",
    "local ok, e = pcall(cmsgpack.pack) return e", "local ok, e = pcall(struct.unpack, 'b', '') return e",
    "return (cjson:decode())", "return (cmsgpack:unpack_one())", "local s = struct return (s:pack('i'))",
    "local x = {f = cjson.encode_max_depth} return (x:f())", "local b = bit return (b:band(1))",
    "return cmsgpack.pack(1) == cmsgpack:pack() or 'table packed'", "local x = {f = struct.unpack} return (x:f('b'))",
]


def test_error_names_follow_the_call_site_as_redis(differ: Differ) -> None:
    differ.check_all(CALL_NAMES)


# ------------------------------------------------------------------ random differential

def lua_bytes(data: bytes) -> str:
    return '"' + "".join("\\%d" % b for b in data) + '"'


JSON_PIECES = [b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"u", b"1", b"0", b"-", b".", b"e", b"E", b"+",
               b"x", b"n", b"null", b"true", b"false", b" ", b"\\u00", b"d8", b"dc", b"a", b"Inf", b"NaN", b"\x00",
               b"\x7f", b"\xff", b"9", b'"a"', b"0x", b"p"]
MSGPACK_BYTES = [0x90, 0x80, 0xC0, 0xCC, 0xCD, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD,
                 0xDE, 0xDF, 0xCA, 0xCB, 0xA1, 0x91, 0x81, 0xC2, 0xC3, 0, 1, 255]
STRUCT_PIECES = ["b", "B", "h", "H", "i", "I", "l", "L", "T", "f", "d", "s", "c", "x", "<", ">", "!", "1", "2", "3",
                 "4", "0", "8", "i3", "c0", "z", " "]
STRUCT_ARGS = ["1", "-1", "2^40", "0.5", '"ab"', '"12"', "nil", "{}", "1e300", "-0.0", "0/0", '"abcdefgh"']
VALUES = ["1", "-1", "2^40", "0.5", '"ab"', "-2^63", "2^64", "0.1", "1e300", "-0.0", "1/0", '"12"', "{1,2}",
          "{a=1}", "{[3]=1}", "{1,{2,{3}}}", "true", "false", "nil", "{[1]=1,[3]=3,x={}}", "string.rep('z', 40)"]
BIT_ARGS = ["1", "-1", "2^40", "0.5", "2.5", "-2.5", "2^31", "2^53+1", "1e20", "-1e20", '"0x7fffffff"', "3.7",
            "-3.7", "2^52+0.5", "-2^51-0.5", "1e-310"]


def random_snippets(rnd: random.Random, rounds: int) -> list[str]:
    """Calls of every library on random (often malformed) input; ``id`` keeps them out of
    tail position so error positions compare too."""
    out = []
    for _ in range(rounds):
        js = b"".join(rnd.choice(JSON_PIECES) for _ in range(rnd.randint(1, 8)))
        out.append(f"return id(cjson.decode({lua_bytes(js)}))")
        mp = bytes(rnd.choice([rnd.randrange(256), rnd.choice(MSGPACK_BYTES)]) for _ in range(rnd.randint(0, 10)))
        out.append(f"return id(cmsgpack.unpack({lua_bytes(mp)}))")
        out.append(f"return id(cmsgpack.unpack_limit({lua_bytes(mp)}, {rnd.randint(0, 3)}, {rnd.randint(-1, 12)}))")
        fmt = "".join(rnd.choice(STRUCT_PIECES) for _ in range(rnd.randint(0, 5))).encode()
        data = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 20)))
        out.append(f"return id(struct.unpack({lua_bytes(fmt)}, {lua_bytes(data)}, {rnd.randint(-1, 5)}))")
        args = "".join(", " + rnd.choice(STRUCT_ARGS) for _ in range(rnd.randint(0, 4)))
        out.append(f"return id(struct.pack({lua_bytes(fmt)}{args}))")
        out.append(f"return id(struct.size({lua_bytes(fmt)}))")
        values = ", ".join(rnd.choice(VALUES) for _ in range(rnd.randint(1, 4)))
        out.append(f"return id(cmsgpack.pack({values}))")
        out.append(f"return id(cjson.encode({{{values}}}))")
        a, b = rnd.choice(BIT_ARGS), rnd.choice(["0", "1", "31", "32", "-1", "33", "4", "-8", "9", "1.5"])
        fn = rnd.choice(["tobit", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror",
                         "tohex", "bswap"])
        out.append(f"return id(bit.{fn}({a}, {b}))")
    return ["local function id(...) return ... end " + s for s in out]


def test_random_inputs_match_redis(differ: Differ) -> None:
    differ.check_all(random_snippets(random.Random(20261206), 60))


@pytest.mark.slow
def test_random_inputs_match_redis_long(differ: Differ) -> None:
    for seed in range(10):
        differ.check_all(random_snippets(random.Random(seed), 1000))


# ----------------------------------------------------------------- tail calls, positions

TAIL_CALLS = [
    "return cjson.decode('x')", "return cjson.encode(1/0)", "return cjson.encode_max_depth(0)",
    "return bit.band(1, {})", "return bit.tohex()", "return struct.pack('i', {})", "return struct.unpack('z', '')",
    "return struct.size('s')", "return cmsgpack.unpack('\\205')", "return cmsgpack.pack()",
    "return cmsgpack.unpack_one('', 5)", "return cmsgpack.unpack('\\129\\192\\1')",
    "return cjson.decode('[1, 2, 3]')", "return cmsgpack.unpack(cmsgpack.pack(1, 2, 3))",
    "local function f(n) if n == 0 then return 'done', n end return f(n - 1) end return f(5000)",
    "return (function(...) return select('#', ...), ... end)(1, nil, 3, nil)",
]


def test_tail_called_errors_keep_the_script_position_once_untailed(differ: Differ) -> None:
    # A tail call to a Lua function drops the script's frame: without help the message has
    # no "user_script:N:" prefix (Redis's C functions keep it) ...
    assert differ.ours("return cjson.decode('x')").startswith(b'false | "Expected value')
    # ... and with the chunk's tail calls made plain calls, everything matches Redis.
    differ.check_all(TAIL_CALLS, untailed=True)


def test_without_tail_calls_leaves_other_input_alone() -> None:
    assert without_tail_calls(b"return 1") == b"return 1"
    assert without_tail_calls(b"\x1bLuaQ\x00\x01\x04\x08\x04\x08\x00garbage") == \
        b"\x1bLuaQ\x00\x01\x04\x08\x04\x08\x00garbage"


# ------------------------------------------------------------------------------ sandbox

def test_libraries_expose_only_lua_values() -> None:
    lua = new_runtime()
    kinds = lua.eval("""function()
      local seen, kinds = {}, {}
      local function walk(v)
        local t = type(v)
        kinds[#kinds + 1] = t
        if t == 'table' and not seen[v] then
          seen[v] = true
          for k, x in pairs(v) do walk(k) walk(x) end
        end
      end
      for _, name in ipairs({'cjson', 'cmsgpack', 'struct', 'bit'}) do walk(_G[name]) end
      walk(cjson.new())
      walk(cjson.decode('[{"a":null}]'))
      walk({cmsgpack.unpack(cmsgpack.pack({1, {a = 2}}))})
      walk({struct.unpack('bc0d', struct.pack('bc0d', 2, 'xy', 1.5))})
      local out = {}
      for _, k in ipairs(kinds) do out[k] = true end
      local list = {}
      for k in pairs(out) do list[#list + 1] = k end
      table.sort(list)
      return table.concat(list, ',')
    end""")()
    # the only userdata is cjson.null; no Python object anywhere
    assert kinds == b"function,number,string,table,userdata"
    null_meta = lua.eval("getmetatable(cjson.null)")
    assert null_meta is False
    for expr in ("cjson.encode", "cmsgpack.pack", "struct.pack", "bit.band"):
        assert lupa.lua_type(lua.eval(expr)) == "function"


def test_library_errors_are_lua_errors_not_python_exceptions() -> None:
    lua = new_runtime()
    run = lua.eval("function(src) local ok, e = pcall(loadstring(src, '@user_script')) return ok, e end")
    for src in ("struct.pack('i', {})", "cmsgpack.unpack('\\205')", "cjson.decode('[')", "bit.band({})",
                "struct.unpack('b', setmetatable({}, {__index = function() error('boom') end}))"):
        ok, err = run(src.encode())
        assert ok is False and isinstance(err, bytes) and b"Traceback" not in err, (src, err)


def test_a_hook_error_inside_a_library_passes_through_unchanged() -> None:
    # The busy-script hook may fire inside our Lua code (Redis's C code never sees it); its
    # error (a table, as a killed script's) must reach the script as raised, not as a refusal.
    lua = new_runtime()
    run = lua.eval("""function(call)
      local t = {} for i = 1, 20000 do t[i] = {i, 'x' .. i} end
      local packed, json = cmsgpack.pack(t), cjson.encode(t)
      local calls = {
        function() return cjson.encode(t) end, function() return cjson.decode(json) end,
        function() return cmsgpack.pack(t) end, function() return cmsgpack.unpack(packed) end,
      }
      debug.sethook(function() error({err = 'ERR killed'}) end, '', 1000)
      local ok, e = pcall(calls[call])
      debug.sethook()
      return ok, type(e) == 'table' and e.err
    end""")
    for call in range(1, 5):
        assert tuple(run(call)) == (False, b"ERR killed"), call


# ----------------------------------------------------------------------------- security
# Each class of input behind a Redis CVE in these libraries: a clean Lua error (or Redis's own
# answer), fast, with no large allocation.

def run_secure(src: str, budget: float = 5.0) -> tuple[bool, object]:
    lua = new_runtime()
    run = lua.eval("function(src) return pcall(loadstring(src, '@user_script')) end")
    start = time.monotonic()
    result = run(src.encode())
    assert time.monotonic() - start < budget, src
    return result[0], result[1] if len(result) > 1 else None


def test_cve_2015_8080_and_2020_14147_struct_size_overflow() -> None:
    # a repeat count / size that overflows an int used to wrap around and write past the buffer
    ok, err = run_secure("return struct.pack('i' .. string.rep('9', 30), 1)")
    assert not ok and err.endswith(b"integral size overflow")
    ok, err = run_secure("return struct.pack('c4294967296', 'x')")
    assert not ok and err.endswith(b"integral size overflow")
    ok, err = run_secure("return struct.size('!' .. string.rep('9', 12))")
    assert not ok and err.endswith(b"integral size overflow")


def test_cve_2018_11219_struct_sizes_and_offsets() -> None:
    # integers wider than 32 bytes are refused; offsets outside the data never read it
    ok, err = run_secure("return struct.unpack('i2147483647', 'x')")
    assert not ok and err.endswith(b"integral size 2147483647 is larger than limit of 32")
    for src in ("return struct.unpack('i4', 'abcd', -2^62)", "return struct.unpack('c10', 'abcd', 2^53)",
                "return struct.unpack('c0', 'abcd', 3)", "return struct.unpack('bc0', '\\127abcd')",
                "return struct.unpack('c2147483647', 'abcd')"):
        ok, err = run_secure(src)
        assert not ok and (b"data string too short" in err or b"needs a previous size" in err), (src, err)


def test_cve_2018_11218_cmsgpack_stack_and_nesting() -> None:
    # many return values, very deep arrays and maps: refused when the Lua stack would overflow
    ok, err = run_secure("return cmsgpack.unpack(string.rep('\\0', 100000))")
    assert not ok and b"stack overflow" in err
    ok, err = run_secure("return cmsgpack.unpack(string.rep('\\145', 1000000))")
    assert not ok and b"stack overflow" in err
    ok, err = run_secure("return cmsgpack.unpack(string.rep('\\129\\1', 500000) .. '\\1')")
    assert not ok and b"stack overflow" in err
    # packing a self-referencing table stops at 16 levels
    ok, packed = run_secure("local t = {} t[1] = t return cmsgpack.pack(t)")
    assert ok and packed == b"\x91" * 16 + b"\xc0"
    ok, err = run_secure("return cmsgpack.pack(unpack({}, 1, 5000))")
    assert not ok and b"Too many arguments" in err


def test_cve_2022_24834_huge_lengths_do_not_allocate() -> None:
    # headers announcing 4 GB strings/arrays/maps: "Missing bytes", no allocation of the length
    for header in ("\\219\\255\\255\\255\\255", "\\221\\255\\255\\255\\255", "\\223\\255\\255\\255\\255",
                   "\\218\\255\\255", "\\220\\255\\255"):
        ok, err = run_secure(f"return cmsgpack.unpack('{header}')")
        assert not ok and err.endswith(b"Missing bytes in input."), (header, err)
    # cjson: a long string of characters needing 6-byte escapes encodes without overflow
    ok, out = run_secure("return #cjson.encode(string.rep('\\1', 1000000))")
    assert ok and out == 6 * 1000000 + 2


def test_cve_2024_31449_bit_tohex_stack_overflow() -> None:
    ok, out = run_secure("return bit.tohex(65535, -2147483648)")
    assert ok and out == b"0000FFFF"
    ok, out = run_secure("return bit.tohex(65535, 2^31)")
    assert ok and out == b"0000FFFF"


def test_cjson_deep_nesting_is_refused_not_recursed() -> None:
    ok, err = run_secure("return cjson.decode(string.rep('[', 100000))")
    assert not ok and b"Found too many nested data structures (1001)" in err
    ok, err = run_secure("local t = {} t.a = t return cjson.encode(t)")
    assert not ok and err.endswith(b"Cannot serialise, excessive nesting (1001)")
