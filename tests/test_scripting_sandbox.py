"""Bad scripts: the sandbox holds, nothing changes, the server stays up.

One test per class of attack or accident Redis has had to fix in its scripting
code: reaching the host (io/os/require/loadfile, the Python bridge under lupa),
loading bytecode, escaping the read-only globals through metatables, getfenv or
loadstring, returned tables with hostile metatables, deep recursion and huge
replies, scripts that do not compile, and scripts that leak globals to the next.
"""

from __future__ import annotations

import pytest

from tests.servers import RawConnection, ServerProcess


@pytest.fixture
def conn(dumpling_server: ServerProcess):
    with dumpling_server.raw() as c:
        c.call("SCRIPT", "FLUSH")
        c.call("FLUSHALL")
        yield c
        assert c.call("PING") == b"+PONG\r\n"  # the server survived whatever the test did


def _eval(conn: RawConnection, script: str, *keys: str) -> bytes:
    return conn.call("EVAL", script, len(keys), *keys)


@pytest.mark.parametrize("script", [
    "return io.open('/etc/passwd')",
    "return os.execute('true')",
    "return os.getenv('HOME')",
    "return require('os')",
    "return loadfile('/etc/passwd')",
    "return dofile('/etc/passwd')",
    "return package.loaded",
    "return debug.getinfo(1)",
    "return python.eval('1')",
    "return module('x')",
])
def test_no_way_to_the_host(conn: RawConnection, script: str) -> None:
    reply = _eval(conn, script)
    assert reply.startswith(b"-ERR user_script:1: "), reply
    assert b"nonexistent global variable" in reply or b"attempt to call" in reply


@pytest.mark.parametrize("script", [
    # the thread's own globals are never handed out
    "local g = getfenv(0) return type(g.io)",
    "local g = getfenv(tostring) return type(g.io)",
    "local g = getfenv(redis.call) return type(g.io)",
    "local g = getfenv(2) return type(g.io)",
    "return type(loadstring('return io')())",
    "return type(loadstring('return debug')())",
    "local f = load(function() return nil end) return type(f)",
    "return type(getmetatable(_G).__index)",
    "return type(getmetatable(redis))",
    "return type(getmetatable('').__index.dump)",
])
def test_no_way_around_the_globals(conn: RawConnection, script: str) -> None:
    reply = _eval(conn, script)
    assert b"table" not in reply or b"nonexistent" in reply, reply
    for name in (b"io", b"debug"):
        assert reply != b"$5\r\ntable\r\n", (script, name)


@pytest.mark.parametrize("script", [
    "setfenv(0, {})",
    "getmetatable('').__index = {}",
    "getmetatable('').__index.upper = function() return 'evil' end",
    "rawset(string, 'upper', 1)",
    "table.insert(redis, 1)",
    "redis.call = function() return 'evil' end",
    "cjson.encode = function() return 'evil' end",
    "math.random = function() return 4 end",
    "setmetatable(string, nil)",
    "_G.tostring = nil",
])
def test_shared_state_cannot_be_changed(conn: RawConnection, script: str) -> None:
    assert _eval(conn, script).startswith(b"-ERR ")
    # the next script sees the libraries as they were
    assert _eval(conn, "return {('x'):upper(), type(redis.call), cjson.encode({1}), tostring(1)}") == (
        b"*4\r\n$1\r\nX\r\n$8\r\nfunction\r\n$3\r\n[1]\r\n$1\r\n1\r\n")


def test_bytecode_is_refused(conn: RawConnection) -> None:
    assert _eval(conn, "\x1bLua\x51\x00").startswith(b"-ERR Error compiling script (new function): ")
    reply = _eval(conn, "local f, e = loadstring(string.dump(function() return 1 end)) return {tostring(f), e}")
    assert reply == b"*2\r\n$3\r\nnil\r\n$30\r\nattempt to load a binary chunk\r\n"
    reply = _eval(conn, "local s = string.dump(function() return 1 end) "
                        "local f, e = load(function() local x = s s = nil return x end) return e")
    assert reply == b"$30\r\nattempt to load a binary chunk\r\n"


def test_python_objects_are_inert(conn: RawConnection) -> None:
    """An error raised by the Python side reaches a script (xpcall) only as an error value:
    its attributes are not reachable."""
    reply = _eval(conn, "local r r = select(2, xpcall(function() redis.call('nosuch') end, "
                        "function(e) return e end)) return type(r) == 'table' and r.err or 'other'")
    assert reply == b"$44\r\nERR Unknown Redis command called from script\r\n"
    reply = _eval(conn, "local ok, e = pcall(redis.call, 'nosuch') return e")
    assert reply == b"$44\r\nERR Unknown Redis command called from script\r\n"
    reply = _eval(conn, "return pcall(function() return redis.call.__class__ end)")
    assert reply == b":0\r\n" or reply.startswith(b"*") or reply == b"$-1\r\n"


def test_hostile_metatables_on_returned_tables(conn: RawConnection) -> None:
    script = ("local t = setmetatable({}, {__index = function(t, k) while true do end end, "
              "__len = function() error('len') end}) t[1] = 'a' return t")
    assert _eval(conn, script) == b"*1\r\n$1\r\na\r\n"
    script = "return setmetatable({}, {__index = function(t, k) return {err = 'fake'} end})"
    assert _eval(conn, script) == b"*0\r\n"


def test_deep_and_recursive_returns(conn: RawConnection) -> None:
    reply = _eval(conn, "local a = {} local b = {a} a[1] = b return a")  # a cycle
    assert reply.count(b"*1\r\n") > 100 and b"reached lua stack limit" in reply
    reply = _eval(conn, "local t = {} local cur = t for i = 1, 100000 do cur[1] = {} cur = cur[1] end return t")
    assert b"reached lua stack limit" in reply


def test_deep_recursion_in_lua(conn: RawConnection) -> None:
    reply = _eval(conn, "local function f(n) return 1 + f(n + 1) end return f(1)")
    assert reply.startswith(b"-ERR user_script:1: stack overflow")


def test_huge_reply_and_memory(conn: RawConnection) -> None:
    reply = _eval(conn, "local t = {} for i = 1, 200000 do t[i] = i end return #t")
    assert reply == b":200000\r\n"
    reply = _eval(conn, "local s = string.rep('x', 1024 * 1024) return #s")
    assert reply == b":1048576\r\n"


def test_compile_errors_create_nothing(conn: RawConnection) -> None:
    reply = _eval(conn, "return (")
    assert reply.startswith(b"-ERR Error compiling script (new function): user_script:1: ")
    sha = "1a1f0b9f1b7ec8a5b5bd2ac8c4ca2cb2a28b1b3b"
    assert conn.call("SCRIPT", "EXISTS", sha) == b"*1\r\n:0\r\n"
    assert conn.call("DBSIZE") == b":0\r\n"


def test_globals_do_not_leak_between_scripts(conn: RawConnection) -> None:
    assert _eval(conn, "leak = 1").startswith(b"-ERR user_script:1: Attempt to modify a readonly table")
    assert _eval(conn, "return leak").startswith(b"-ERR user_script:1: Script attempted to access nonexistent")
    assert _eval(conn, "return KEYS[1]", "k") == b"$1\r\nk\r\n"
    assert _eval(conn, "return KEYS[1]") == b"$-1\r\n"


def test_library_overflows_from_redis_fixes(conn: RawConnection) -> None:
    """CVE classes in cjson/cmsgpack/struct/bit: a clean error or Redis's answer, never a crash."""
    cases = [
        "return struct.pack('i' .. string.rep('9', 40), 1)",            # CVE-2018-11218: huge count
        "return struct.unpack('c999999999', 'x')",
        "return struct.size('!' .. string.rep('9', 20) .. 'i')",        # CVE-2020-14147: alignment overflow
        "return cmsgpack.unpack(string.rep('\\221', 10) .. '\\255\\255\\255\\255')",  # truncated huge array
        "return cmsgpack.pack(" + "{" * 2000 + "}" * 2000 + ")",          # nesting
        "return cjson.decode(string.rep('[', 100000))",                   # decode depth
        "local t = {} local cur = t for i = 1, 5000 do cur[1] = {} cur = cur[1] end return cjson.encode(t)",
        "return bit.tohex(1, -2147483648)",                              # CVE-2024-31449
        "return cjson.encode(string.rep('\\0', 100000)):len()",
    ]
    for script in cases:
        reply = _eval(conn, script)
        assert reply[:1] in (b"-", b"$", b":", b"*"), (script, reply)
