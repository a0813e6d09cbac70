"""The C bridge (``dumpling.scripting._luabridge``) against lupa's path, without sockets.

The same request streams go to two in-process servers, one whose Lua states run
redis.call, redis.pcall and the run itself through the bridge, one through lupa alone (the
pure install's path); every reply byte, the error statistics and the calls counted must be
identical.  The corpus covers every reply shape redis.call converts (RESP2 and RESP3),
every shape a script returns, argument conversions, errors raised and returned, and the
error positions.  (``tests/test_scripting*.py`` compare both paths with real Redis.)
"""

from __future__ import annotations

from typing import Any

import pytest

from dumpling.config import Config
from dumpling.dispatch import Server
from dumpling.scripting import engine
from dumpling.server import Client
from tests.servers import encode_command
from tests.test_fastpath_fuzz import Transport  # (a loopback peer, the written bytes)

pytestmark = pytest.mark.skipif(not engine.bridge_available(), reason="the C Lua bridge is not built")


def run_stream(requests: list[list[bytes]], bridge: bool) -> tuple[list[bytes], dict[str, int], list[Any]]:
    """Each request's reply bytes, the error statistics and per-command counts of a fresh server."""
    old = engine.use_bridge(bridge)
    try:
        server = Server(Config())
        assert (server.scripting.eval_state.bridge is not None) == bridge
        commands = {cmd.name: cmd for cmd in server.fast_table.values()}
        before = {name: (cmd.calls, cmd.failed_calls, cmd.rejected_calls) for name, cmd in commands.items()}
        client = Client(server)
        transport = Transport()
        client.connection_made(transport)  # type: ignore[arg-type]
        replies = []
        for request in requests:
            transport.data.clear()
            client.data_received(encode_command(*request))
            replies.append(bytes(transport.data))
        after = {name: (cmd.calls, cmd.failed_calls, cmd.rejected_calls) for name, cmd in commands.items()}
        counts = sorted((name, *(a - b for a, b in zip(after[name], before[name], strict=True)))
                        for name in commands if after[name] != before[name])
        return replies, dict(server.errorstats), counts
    finally:
        engine.use_bridge(old)


def same(requests: list[list[bytes]]) -> list[bytes]:
    bridged = run_stream(requests, True)
    plain = run_stream(requests, False)
    for request, ours, reference in zip(requests, bridged[0], plain[0], strict=True):
        assert ours == reference, request
    assert bridged[1:] == plain[1:]
    return bridged[0]


def _eval(body: str, *keys_then_args: bytes | str, keys: int = 0) -> list[bytes]:
    return [b"EVAL", body.encode(), str(keys).encode(), *(a.encode() if isinstance(a, str) else a for a in keys_then_args)]


SETUP = [
    [b"SET", b"s", b"hello"], [b"SET", b"n", b"41"], [b"RPUSH", b"l", b"a", b"b", b"c"],
    [b"HSET", b"h", b"f1", b"v1", b"f2", b"v2"], [b"SADD", b"set", b"x", b"y"],
    [b"ZADD", b"z", b"1.5", b"m1", b"2", b"m2"], [b"XADD", b"st", b"1-1", b"f", b"v"],
]

# What redis.call returns, for every reply shape (and the script returns it as it got it).
CALL_SHAPES = [
    "return redis.call('get', 's')",
    "return redis.call('get', 'missing')",
    "return redis.call('incr', 'n')",
    "return redis.call('set', 'k', 'v')",
    "return redis.call('ping')",
    "return redis.call('lrange', 'l', 0, -1)",
    "return redis.call('hgetall', 'h')",
    "return redis.call('smembers', 'set')",
    "return redis.call('zrange', 'z', 0, -1, 'withscores')",
    "return redis.call('zscore', 'z', 'm1')",
    "return redis.call('xrange', 'st', '-', '+')",
    "return redis.call('blpop', 'nolist', 0)",
    "return redis.call('exists', 's', 'n', 'nope')",
    "return redis.call('object', 'encoding', 's')",
    "return redis.call('type', 'h')",
    "return redis.call('hrandfield', 'h', -3, 'withvalues') and 1",
    "return redis.call('command', 'count') > 0",
    "return redis.call('incrbyfloat', 'fl', '1.5')",
    "return {redis.call('get', 'missing'), 'after-nil'}",
    "return type(redis.call('get', 'missing'))",
    "return type(redis.call('ping'))",
    "local r = redis.call('ping') return r.ok",
    "local r = redis.call('hgetall', 'h') return #r",
]

# What a script returns, whatever it got.
RETURN_SHAPES = [
    "return 1", "return -1", "return 3.99", "return -3.99", "return 2^63", "return -2^63", "return 2^70",
    "return 0/0", "return 1/0", "return 'str'", "return ''", "return true", "return false", "return nil",
    "return {}", "return {1, 2, {3, 'x', {false}}, nil, 5}", "return {ok='fine'}", "return {ok='a\\r\\nb'}",
    "return {err='My Error'}", "return {err='-CODE text'}", "return redis.error_reply('boom')",
    "return redis.status_reply('yes')", "return {double=3.5}", "return {map={a=1}}", "return {set={a=true}}",
    "return {big_number='123'}", "return {verbatim_string={format='txt', string='hi'}}",
    "return {1, {err='inner'}, 3}", "return print", "return {print}",
    "local t = {} for i = 1, 20 do t[i] = i end return t",
    "local t = {} for i = 1, 9000 do t[i] = 'e' .. i end return t",
    "local t = {} local c = t for i = 1, 500 do c[1] = {} c = c[1] end return t",
]

# Arguments as luaArgsToRedisArgv makes them.
ARGUMENTS = [
    "return redis.call('echo', 10)", "return redis.call('echo', -7)", "return redis.call('echo', 1.5)",
    "return redis.call('echo', 2^62)", "return redis.call('echo', 2^63)", "return redis.call('echo', 1e300)",
    "return redis.call('echo', 0/0)", "return redis.call('echo', 1/0)", "return redis.call('echo', -1/0)",
    "return redis.call('echo', 0.1)", "return redis.call('echo', -0.0)", "return redis.call('echo', '007')",
    "return redis.call('echo', true)", "return redis.call('echo', nil)", "return redis.call('echo', {})",
    "return redis.call('echo', print)", "return redis.call('ECHO', 'upper')",
    "return redis.call(unpack({'del', 'a', 'b'}))",
    "local a = {'mset'} for i = 1, 3000 do a[#a + 1] = 'k' .. i a[#a + 1] = i end return redis.call(unpack(a))",
    "local a = {'exists'} for i = 1, 7990 do a[#a + 1] = 'k' .. i end return redis.call(unpack(a))",
]

# Errors: raised by redis.call, returned by redis.pcall, caught by pcall, their positions.
ERRORS = [
    "return redis.call('incr', 's')",
    "return redis.pcall('incr', 's')",
    "local r = redis.pcall('incr', 's') return r.err",
    "local ok, e = pcall(redis.call, 'incr', 's') return {tostring(ok), e}",
    "local ok, e = pcall(function() return redis.call('nosuchcommand') end) return e",
    "\n\nredis.call('incr', 's')",
    "return redis.call()",
    "return redis.pcall()",
    "return redis.call('nosuchcommand')",
    "return redis.pcall('nosuchcommand')",
    "return redis.call('get')",
    "return redis.call('eval', 'return 1', 0)",
    "return redis.pcall('eval', 'return 1', 0)",
    "return redis.call('lpush', 's', 'x')",
    "return redis.pcall('hget', 'l', 'f')",
    "error('plain')",
    "error({err='tabled'})",
    "return redis.call('echo', {})",
    "return redis.pcall('echo', {})",
    "local r = redis.pcall('echo', true) return r['ignore_error_stats_update'] == nil",
    "local r = redis.pcall('incr', 's') return r['ignore_error_stats_update']",
    "return xpcall(function() redis.call('incr', 's') end, function(e) return e.err end)",
    "return tostring(redis.call) .. type(redis.call) .. type(redis.pcall)",
]


def test_redis_call_reply_shapes() -> None:
    requests = SETUP + [_eval(body) for body in CALL_SHAPES]
    replies = same(requests)
    assert replies[len(SETUP)] == b"$5\r\nhello\r\n"


def test_redis_call_reply_shapes_resp3() -> None:
    requests = [[b"HELLO", b"3"]] + SETUP + [_eval("redis.setresp(3) " + body) for body in CALL_SHAPES]
    requests += [_eval(body) for body in CALL_SHAPES]  # setresp lasts one run
    same(requests)


def test_script_return_shapes() -> None:
    same([_eval(body) for body in RETURN_SHAPES])
    same([[b"HELLO", b"3"]] + [_eval(body) for body in RETURN_SHAPES] +
         [_eval("redis.setresp(3) " + body) for body in RETURN_SHAPES])


def test_arguments() -> None:
    replies = same([_eval(body) for body in ARGUMENTS])
    assert replies[0] == b"$2\r\n10\r\n"
    assert replies[2] == b"$3\r\n1.5\r\n"


def test_errors_and_positions() -> None:
    replies = same(SETUP + [_eval(body) for body in ERRORS])
    assert replies[len(SETUP) + 5].startswith(b"-ERR value is not an integer")
    assert b"@user_script:3." in replies[len(SETUP) + 5]


def test_keys_and_argv() -> None:
    many = [b"k%d" % i for i in range(8000)]
    same([
        _eval("return {KEYS[1], KEYS[2], ARGV[1], #KEYS, #ARGV}", "a", "b", "c", keys=2),
        _eval("return {#KEYS, #ARGV}"),
        _eval("return {#KEYS, #ARGV, KEYS[8000]}", *many, keys=8000),
        _eval("return {#KEYS, #ARGV, ARGV[7999]}", *many, keys=1),
        _eval("return redis.call('mget', unpack(KEYS))", "s", "n", keys=2),
        [b"SCRIPT", b"LOAD", b"return ARGV[1] .. #KEYS"],
        [b"EVALSHA", b"9d6f6b7e8ec1b24b9ba0a8fd3d6c7c2ed9fb5a0e", b"0"],
    ])


def test_functions_and_read_only() -> None:
    library = (b"#!lua name=lib\n"
               b"redis.register_function('f', function(keys, args) redis.call('incr', keys[1]) "
               b"return {keys[1], args[1], redis.call('get', keys[1])} end)\n"
               b"redis.register_function{function_name='ro', callback=function(keys, args) "
               b"return redis.pcall('set', keys[1], 'x') end, flags={'no-writes'}}\n"
               b"redis.register_function('boom', function() return redis.call('incr', 'lib_s') end)")
    same([
        [b"SET", b"lib_s", b"text"],
        [b"FUNCTION", b"LOAD", library],
        [b"FCALL", b"f", b"1", b"counter", b"arg"],
        [b"FCALL", b"f", b"1", b"counter", b"arg"],
        [b"FCALL_RO", b"ro", b"1", b"k"],
        [b"FCALL", b"boom", b"0"],
        [b"EVAL_RO", b"return redis.call('set', 'a', 'b')", b"0"],
        [b"EVAL_RO", b"return redis.pcall('set', 'a', 'b')", b"0"],
        [b"EVAL", b"#!lua flags=no-writes\nreturn redis.call('get', 'counter')", b"0"],
        [b"FUNCTION", b"FLUSH"],
        [b"FUNCTION", b"LOAD", library],
        [b"FCALL", b"f", b"1", b"counter", b"again"],
    ])


def test_script_flush_and_many_scripts() -> None:
    """Handles of evicted and flushed scripts: the bridge runs what the cache holds."""
    requests = [_eval(f"return {i}") for i in range(520)]
    requests += [[b"SCRIPT", b"FLUSH"], _eval("return 'after flush'"), _eval("return 7")]
    same(requests)


@pytest.mark.parametrize("bridge", [True, False])
def test_flushed_states_are_freed(bridge: bool) -> None:
    """SCRIPT FLUSH / FUNCTION FLUSH drop their Lua state: nothing (the bridge's references to
    the state, the server and the engine among them) keeps the old one alive."""
    import gc

    from dumpling.scripting.engine import LuaState

    def alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is LuaState)

    old = engine.use_bridge(bridge)
    try:
        server = Server(Config())
        client = Client(server)
        client.connection_made(Transport())  # type: ignore[arg-type]
        before = alive()
        for _ in range(5):
            client.data_received(encode_command(b"EVAL", b"return redis.call('ping')", b"0"))
            client.data_received(encode_command(b"FUNCTION", b"LOAD", b"#!lua name=l\nredis.register_function("
                                                b"'f', function() return redis.call('ping') end)"))
            client.data_received(encode_command(b"FCALL", b"f", b"0"))
            client.data_received(encode_command(b"SCRIPT", b"FLUSH"))
            client.data_received(encode_command(b"FUNCTION", b"FLUSH"))
        assert alive() <= before
    finally:
        engine.use_bridge(old)
