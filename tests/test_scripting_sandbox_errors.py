"""The sandbox's built-ins answer bad arguments exactly as Redis's plain Lua built-ins do.

dumpling protects its read-only tables with proxies, so a few built-ins that bypass metatables
(rawset, rawget, next, pairs, setmetatable, getmetatable, table.insert) and the ones the sandbox
rewrites (type, tostring, getfenv, setfenv, pcall, xpcall, loadstring, load) stand in front of
Lua's own.  Their errors must not show the sandbox (its chunk name, its line, its local names):
the built-in is named as the script named it ('rawset', a local's name, '?' under pcall) at the
script's line.  Three classes, each in EVAL and FCALL, RESP2 and RESP3: argument errors,
errors under pcall/xpcall, and levels of getfenv/setfenv (7.0 has no getfenv: recorded 7.4.1
vectors).  Both Lua paths (the C bridge's guards, lupa's Lua wrappers) give the same bytes.
"""

from __future__ import annotations

import hashlib

import pytest

from dumpling.scripting import engine
from tests.servers import Pair, ServerProcess
from tests.test_scripting_bridge import _eval, same

# Argument errors, as the script calls the built-in (7.0 and 7.4 agree on every one)
ARGUMENT_ERRORS = [
    "return rawset(1, 2, 3)",
    "rawset(1, 2, 3)",
    "return rawset()",
    "return rawset({}, 1)",
    "return rawset({}, nil, 1)",
    "return rawget(1, 2)",
    "return rawget()",
    "return rawget({})",
    "return next(1)",
    "return next()",
    "return next({}, 'x')",
    "return pairs()",
    "return pairs(1)",
    "return setmetatable(1, {})",
    "return setmetatable({}, 1)",
    "return setmetatable()",
    "return getmetatable()",
    "local f = rawset; f(1, 2, 3)",
    "local t = {} t.f = rawset t.f(1)",
    "local t = {} t.f = table.insert return t:f(1)",
    "table.insert(1, 2)",
    "table.insert()",
    "table.insert({}, 1, 2, 3)",
    "table.insert({}, 'x', 1)",
    "table.remove(1)",
    "table.remove()",
    "table.sort(1)",
    "table.setn({}, 1)",
    "return table.sort({1, 2}, function(a, b) error('cmp') end)",
    "return tostring()",
    "return type()",
    "return loadstring()",
    "return loadstring({})",
    "return loadstring('x', {})",
    "return load()",
    "return load(1)",
    "return load(function() end, {})",
    "return xpcall()",
]

# What pcall and xpcall give back (7.0 and 7.4 agree)
PROTECTED = [
    "return {pcall()}",
    "return select(2, pcall(rawset, 1, 2, 3))",
    "return select(2, pcall(function() rawset(1, 2, 3) end))",
    "return select(2, pcall(next, 1))",
    "return select(2, pcall(table.insert, 1, 2))",
    "return select(2, pcall(tostring))",
    "return select(2, pcall(rawset, redis, 'x', 1))",
    "return select(2, pcall(function() table.insert(redis, 1) end))",
    "return select(2, pcall(function() return setmetatable(redis, {}) end))",
    "return select(2, pcall(function() return loadstring('x', {}) end))",
    "return select(2, pcall(table.remove, redis))",
    "return select(2, pcall(function() table.sort(string) end))",
    "return {pcall(error, {err='ERR x'})}",
    "return {pcall(error, 'x')}",
    "return {xpcall(function() rawset(1) end, function(e) return e end)}",
    "return {xpcall(function() error({err='x'}) end, function(e) return type(e) end)}",
    "return {table.insert({}, 1)}",
    "return table.remove({1, 2, 3})",
]

# getfenv/setfenv (Redis 7.4 has them, 7.0 not): the script is the outermost frame
GETFENV_74 = {
    "return getfenv(2)": "bad argument #1 to 'getfenv' (invalid level)",
    "return type(getfenv(2))": "bad argument #1 to 'getfenv' (invalid level)",
    "return getfenv(-1)": "bad argument #1 to 'getfenv' (level must be non-negative)",
    "return getfenv(100)": "bad argument #1 to 'getfenv' (invalid level)",
    "return getfenv('x')": "bad argument #1 to 'getfenv' (number expected, got string)",
    "return setfenv(100, {})": "bad argument #1 to 'setfenv' (invalid level)",
    "return setfenv()": "bad argument #2 to 'setfenv' (table expected, got no value)",
    "return setfenv(2, {})": "bad argument #1 to 'setfenv' (invalid level)",
    "return getfenv('2')": "bad argument #1 to 'getfenv' (invalid level)",
    "return setfenv('2', {})": "bad argument #1 to 'setfenv' (invalid level)",
}
# ... and what they give back inside pcall/xpcall (EVAL; RESP2 bytes from Redis 7.4.1)
GETFENV_74_PROTECTED = {
    "return select(2, pcall(getfenv, 3))": b"$38\r\nbad argument #1 to '?' (invalid level)\r\n",
    "return pcall(getfenv, 2)": b":1\r\n",
    "return select(2, pcall(function() return getfenv(3) == _G end))": b":1\r\n",
    "return select(2, pcall(function() return getfenv(4) end))":
        b"$59\r\nuser_script:1: bad argument #1 to 'getfenv' (invalid level)\r\n",
    "return select(2, pcall(function() setfenv(2, {}) end))":
        b"$66\r\nuser_script:1: 'setfenv' cannot change environment of given object\r\n",
    "return {xpcall(function() return getfenv(3) == _G end, function(e) return e end)}": b"*2\r\n:1\r\n:1\r\n",
    "return {xpcall(function() return getfenv(4) end, function(e) return e end)}":
        b"*2\r\n$-1\r\n$59\r\nuser_script:1: bad argument #1 to 'getfenv' (invalid level)\r\n",
    "return setfenv(1, {})": b"$-1\r\n",
    "return type(getfenv('1'))": b"$5\r\ntable\r\n",
    "return getfenv(1.5) == _G": b":1\r\n",
}


def _library(body: str) -> str:
    return "#!lua name=t\nredis.register_function('f', function(KEYS, ARGV)\n" + body + "\nend)"


@pytest.fixture
def scripts(pairs: Pair) -> Pair:
    pairs.same("SCRIPT", "FLUSH")
    pairs.same("FUNCTION", "FLUSH")
    return pairs


@pytest.mark.parametrize("corpus", [ARGUMENT_ERRORS, PROTECTED], ids=["arguments", "protected"])
def test_builtins_answer_as_redis(scripts: Pair, corpus: list[str]) -> None:
    for script in corpus:
        scripts.same("EVAL", script, 0)
        scripts.same("FUNCTION", "LOAD", "REPLACE", _library(script))
        scripts.same("FCALL", "f", 0)


# The script globals' names in Redis 7.4.1 (7.0 has no getfenv, setfenv, load, loadstring, newproxy)
GLOBALS_74 = (
    "_G _VERSION assert bit cjson cmsgpack collectgarbage coroutine error gcinfo getfenv getmetatable ipairs load "
    "loadstring math newproxy next os pairs pcall rawequal rawget rawset redis select setfenv setmetatable string "
    "struct table tonumber tostring type unpack xpcall"
)


def test_redis_api_of_functions(scripts: Pair) -> None:
    """A function's redis table has no breakpoint, debug, replicate_commands."""
    names = "local t = {} for k in pairs(redis) do t[#t + 1] = k end table.sort(t) return t"
    scripts.same("EVAL", names, 0)
    scripts.same("FUNCTION", "LOAD", "REPLACE", _library(names))
    scripts.same("FCALL", "f", 0)


def test_globals_as_redis_74(dumpling_server: ServerProcess) -> None:
    """EVAL's globals hold KEYS, ARGV and __redis__err__handler as Redis's do; a function's not."""
    names = "local t = {} for k in pairs(_G) do t[#t + 1] = k end table.sort(t) return table.concat(t, ' ')"
    with dumpling_server.raw() as conn:
        eval_names = "ARGV KEYS " + GLOBALS_74.replace("_VERSION ", "_VERSION __redis__err__handler ")
        assert conn.call("EVAL", names, 0) == b"$%d\r\n%s\r\n" % (len(eval_names), eval_names.encode())
        conn.call("FUNCTION", "LOAD", "REPLACE", _library(names))
        assert conn.call("FCALL", "f", 0) == b"$%d\r\n%s\r\n" % (len(GLOBALS_74), GLOBALS_74.encode())


def test_getfenv_levels_as_redis_74(dumpling_server: ServerProcess) -> None:
    with dumpling_server.raw() as conn:
        conn.call("FUNCTION", "FLUSH")
        for script, error in GETFENV_74.items():
            sha = hashlib.sha1(script.encode()).hexdigest()
            expected = f"-ERR user_script:1: {error} script: {sha}, on @user_script:1.\r\n".encode()
            assert conn.call("EVAL", script, 0) == expected, script
            conn.call("FUNCTION", "LOAD", "REPLACE", _library(script))
            expected = f"-ERR user_function:3: {error} script: f, on @user_function:3.\r\n".encode()
            assert conn.call("FCALL", "f", 0) == expected, script
        for script, reply in GETFENV_74_PROTECTED.items():
            assert conn.call("EVAL", script, 0) == reply, script
        # (7.4 lets setfenv(0, t) replace the running thread's globals, after which every script
        # fails with "error in error handling": dumpling refuses it)
        assert conn.call("EVAL", "return setfenv(0, {})", 0).startswith(
            b"-ERR 'setfenv' cannot change the environment of the running thread")
        assert conn.call("EVAL", "return 1", 0) == b":1\r\n"


@pytest.mark.skipif(not engine.bridge_available(), reason="the C Lua bridge is not built")
def test_bridge_guards_and_lua_wrappers_agree() -> None:
    """The C bridge's guards and the pure path's Lua wrappers: the same bytes, the same errors
    counted."""
    bodies = ARGUMENT_ERRORS + PROTECTED + list(GETFENV_74) + list(GETFENV_74_PROTECTED)
    requests = [_eval(body) for body in bodies]
    for body in ARGUMENT_ERRORS + list(GETFENV_74):
        requests.append([b"FUNCTION", b"LOAD", b"REPLACE", _library(body).encode()])
        requests.append([b"FCALL", b"f", b"0"])
    same(requests)
