"""The C bridge (``dumpling.scripting._luabridge``) against lupa's path, without sockets.

The same request streams go to two in-process servers, one whose Lua states run
redis.call, redis.pcall and the run itself through the bridge, one through lupa alone (the
pure install's path); every reply byte, the error statistics and the calls counted must be
identical.  The corpus covers every reply shape redis.call converts (RESP2 and RESP3),
every shape a script returns, argument conversions, errors raised and returned, and the
error positions.  (``tests/test_scripting*.py`` compare both paths with real Redis.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from dumpling import accel
from dumpling.config import Config
from dumpling.dispatch import Server
from dumpling.scripting import engine
from dumpling.server import Client
from tests.servers import encode_command
from tests.test_fastpath_fuzz import Transport  # (a loopback peer, the written bytes)
from tests.test_fastpath_fuzz import connected_client as fresh_client


@contextmanager
def bridge_on(bridge: bool) -> Iterator[None]:
    """Scripts run through the C bridge (True) or lupa's Python path (False) inside the block."""
    old = engine.use_bridge(bridge)
    try:
        yield
    finally:
        engine.use_bridge(old)


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


# --------------------------------------------------------------------------- the twins' route

# redis.call of GET, SET, INCR, MSET... runs _fastpath's own C twin of the command when the run
# and the server are in the plain state (_luabridge.c: twins_ready).  These streams go to a
# server with the bridge and to one without, with a second client watching (MONITOR, pub/sub,
# WATCH, tracking): every reply, every byte the watcher got, and the statistics a twin call
# updates (commandstats, errorstats, hits/misses, dirty, commands processed, SLOWLOG, latency
# histograms) must be the same.
TWIN_SCRIPT = "redis.call('incr', KEYS[1]) return redis.call('get', KEYS[1])"
TWIN_BODIES = [
    "return {redis.call('set', 't1', 'v'), redis.call('get', 't1'), redis.call('get', 'nope')}",
    "return {redis.call('mset', 'm1', 1, 'm2', 'two'), redis.call('mget', 'm1', 'm2', 'nope')}",
    "return {redis.call('InCr', 'c'), redis.call('DECR', 'c'), redis.call('incrby', 'c', 10), "
    "redis.call('decrby', 'c', '3'), redis.call('ping')}",
    "return redis.call('incrby', 'c', 1.5)",  # a non-integral number: not the twin's
    "return redis.call('get', 'l')",  # WRONGTYPE: the twin declines, Python replies
    "return redis.pcall('incr', 't1')",  # not an integer
    "return redis.call('set', 'c', 'x', 'px', 100000)",  # options: Python's
    "redis.call('select', 1) redis.call('incr', 'c') return redis.call('get', 'c')",  # another database
    "redis.call('incr', 'c') redis.call('swapdb', 0, 1) return redis.call('get', 'c')",
    "redis.call('incr', 'c') local s = redis.call('info', 'stats') "
    "return {string.match(s, 'keyspace_hits:%d+'), string.match(s, 'keyspace_misses:%d+')}",
    "redis.call('set', 'gone', 'v', 'px', 1) return 1",
    "redis.setresp(3) return {redis.call('get', 'nope') == nil, redis.call('mget', 'nope', 't1')}",
    "redis.call('set', 'big', '9223372036854775807') return redis.pcall('incr', 'big')",
]


def observe(steps: list[tuple[int, list[bytes]]], bridge: bool) -> dict[str, Any]:
    """Replies (client 0) and what client 1 received, per step, and the statistics after."""
    import re
    import time

    from dumpling.dispatch import Server as ServerType

    old = engine.use_bridge(bridge)
    called: list[str] = []
    plain_call = ServerType.call

    def counting_call(self: Any, client: Any, cmd: Any, argv: list[bytes]) -> Any:
        called.append(cmd.name)
        return plain_call(self, client, cmd, argv)

    ServerType.call = counting_call  # type: ignore[method-assign]
    try:
        server = Server(Config())
        commands = {cmd.name: cmd for cmd in server.fast_table.values()}  # (shared by every server here)

        def counts() -> dict[str, tuple[int, ...]]:
            return {name: (c.calls, c.failed_calls, c.rejected_calls, c.latency.total if c.latency else 0)
                    for name, c in commands.items()}

        before = counts()
        clients = []
        for _ in range(2):
            client = Client(server)
            transport = Transport()
            client.connection_made(transport)  # type: ignore[arg-type]
            clients.append((client, transport))
        seen = []
        for who, request in steps:
            if request == [b"SLEEP"]:
                time.sleep(0.01)
                continue
            for _, transport in clients:
                transport.data.clear()
            clients[who][0].data_received(encode_command(*request))
            # MONITOR lines carry the time and the client's port: not compared
            seen.append([re.sub(rb"\+\d+\.\d+ \[\d+ [^\]]*\]", b"+T", bytes(t.data)) for _, t in clients])
        after = counts()
        ks = server.keyspace
        return {
            "seen": seen,
            "stats": (ks.stat_hits, ks.stat_misses, ks.dirty, server.stat_commands, dict(server.errorstats)),
            "commands": sorted((name, *(a - b for a, b in zip(after[name], before[name], strict=True)))
                               for name in commands if after[name] != before[name]),
            "slowlog": [entry[3] for entry in server.slowlog] if server.slowlog else [],
            "script_client": server.scripting.eval_client.last_cmd,
            "called": called,
        }
    finally:
        ServerType.call = plain_call  # type: ignore[method-assign]
        engine.use_bridge(old)


def same_observed(steps: list[tuple[int, list[bytes]]], slowlog: bool = False) -> dict[str, Any]:
    """(The SLOWLOG only when every call is logged: past its 10 ms default, what is logged
    depends on the machine's load.)"""
    bridged, plain = observe(steps, True), observe(steps, False)
    requests = [step for step in steps if step[1] != [b"SLEEP"]]
    for step, ours, reference in zip(requests, bridged["seen"], plain["seen"], strict=True):
        assert ours == reference, step
    for field in ("stats", "commands", "script_client", *(("slowlog",) if slowlog else ())):
        assert bridged[field] == plain[field], field
    return bridged


def _twin_steps(setup: list[tuple[int, list[bytes]]]) -> list[tuple[int, list[bytes]]]:
    return [*setup, (0, [b"RPUSH", b"l", b"a"]), (0, [b"SCRIPT", b"LOAD", TWIN_SCRIPT.encode()]),
            *((0, _eval(body)) for body in TWIN_BODIES), (0, [b"SLEEP"]), (0, _eval("return redis.call('get', 'gone')")),
            *((0, [b"EVALSHA", engine.sha1hex(TWIN_SCRIPT.encode()).encode(), b"1", b"k%d" % (i % 3)]) for i in range(6)),
            (0, [b"EVAL_RO", b"return redis.call('get', 'c')", b"0"]),
            (0, [b"EVAL_RO", b"return redis.pcall('incr', 'c')", b"0"]),
            (0, [b"MULTI"]), (0, _eval(TWIN_SCRIPT, "k0", keys=1)), (0, [b"EXEC"])]


def test_twins_route_plain() -> None:
    observed = same_observed(_twin_steps([]))
    # the route was taken: Server.call never saw the twins' commands run by the plain runs
    assert "incr" in {name for name, *_ in observed["commands"]}
    assert observed["called"].count("incr") < observe(_twin_steps([]), False)["called"].count("incr")


def test_twins_route_slowlog_and_latency() -> None:
    same_observed(_twin_steps([(0, [b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"]),
                               (0, [b"CONFIG", b"SET", b"slowlog-max-len", b"1000"])]), slowlog=True)


@pytest.mark.parametrize("setup", [
    [(1, [b"MONITOR"])],
    [(0, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]), (1, [b"PSUBSCRIBE", b"__key*__:*"])],
    [(1, [b"WATCH", b"k0"]), (1, [b"MULTI"])],
    [(1, [b"HELLO", b"3"]), (1, [b"CLIENT", b"TRACKING", b"ON"]), (1, [b"GET", b"k0"])],
    [(0, [b"CONFIG", b"SET", b"maxmemory", b"100mb"])],
    [(0, [b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lfu"])],
    [(0, [b"ACL", b"SETUSER", b"u", b"on", b"nopass", b"+@all", b"-ping", b"~k*", b"~c", b"~t1"]),
     (0, [b"AUTH", b"u", b"x"])],
    [(0, [b"CLIENT", b"NO-TOUCH", b"ON"])],
], ids=["monitor", "notifications", "watch", "tracking", "maxmemory", "lfu", "acl", "no-touch"])
def test_twins_route_other_states(setup: list[tuple[int, list[bytes]]]) -> None:
    steps = _twin_steps(setup)
    if setup[0][1] == [b"WATCH", b"k0"]:
        steps += [(1, [b"GET", b"k0"]), (1, [b"EXEC"])]  # the script's INCR made the EXEC fail
    same_observed(steps)


def _pipelined(requests: list[list[bytes]], bridge: bool) -> bytes:
    """The replies of one client's requests sent in one read (one batch of the request loop)."""
    with bridge_on(bridge):
        _, client, transport = fresh_client()
        client.data_received(encode_command(b"SCRIPT", b"LOAD", TWIN_SCRIPT.encode()))
        transport.data.clear()
        client.data_received(b"".join(encode_command(*request) for request in requests))
        return bytes(transport.data)


def test_twins_route_pipelined_state_changes() -> None:
    """Runs in one batch, with the keyspace's settings changed between them in place (WATCH fills
    a dict the keyspace holds) and the database swapped under the script's client: the bridge
    remembers the keyspace's settings while its __dict__ is unchanged and reads a database's
    dicts from its slots, and must still see each change (the EXEC fails: a run touched k0)."""
    evalsha = [b"EVALSHA", engine.sha1hex(TWIN_SCRIPT.encode()).encode(), b"1", b"k0"]
    requests = [evalsha, evalsha, [b"WATCH", b"k0"], evalsha, [b"MULTI"], [b"GET", b"k0"], [b"EXEC"],
                evalsha, [b"SWAPDB", b"0", b"1"], evalsha, [b"SELECT", b"1"], evalsha, [b"SELECT", b"0"], evalsha]
    replies = _pipelined(requests, True)
    assert replies == _pipelined(requests, False)
    assert b"*-1\r\n" in replies
    assert replies.endswith(b"$1\r\n2\r\n")  # db 0 after the swap held what db 1 had: one INCR


def test_script_command_pipelined_server_changes() -> None:
    """Runs in one batch with the server's settings changed between them: ScriptCommand remembers
    the server's attributes while its __dict__ is as the last run left it, and must see each
    change (SLOWLOG logs the runs after the threshold went to 0; maxmemory sends the run to the
    Python handler; latency tracking off leaves the histograms alone)."""
    evalsha = [b"EVALSHA", engine.sha1hex(TWIN_SCRIPT.encode()).encode(), b"1", b"k0"]
    requests = [evalsha, evalsha, [b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"], evalsha, evalsha,
                [b"SLOWLOG", b"LEN"], [b"CONFIG", b"SET", b"maxmemory", b"100mb"], evalsha,
                [b"CONFIG", b"SET", b"maxmemory", b"0"], [b"CONFIG", b"SET", b"latency-tracking", b"no"], evalsha,
                [b"SLOWLOG", b"LEN"], [b"CONFIG", b"SET", b"busy-reply-threshold", b"0"], evalsha, [b"SLOWLOG", b"LEN"]]
    replies = _pipelined(requests, True)
    assert replies == _pipelined(requests, False)
    # every call logged from the first CONFIG SET on: the runs' INCR and GET too (the twins read the
    # new threshold), 7 = CONFIG SET + 2 x (INCR, GET, EVALSHA)
    assert replies.count(b"\r\n:") == 3 and b":7\r\n" in replies and replies.endswith(b":22\r\n")


def test_script_command_pipelined_script_changes() -> None:
    """Runs in one batch with the scripts and functions changed between them: ScriptCommand
    remembers the Scripting object's tables and Lua states while its __dict__ is as the last run
    left it, and must see SCRIPT FLUSH and FUNCTION FLUSH replace them."""
    evalsha = [b"EVALSHA", engine.sha1hex(TWIN_SCRIPT.encode()).encode(), b"1", b"k0"]
    fcall = [b"FCALL", b"incr_get", b"1", b"k0"]
    requests = [evalsha, evalsha, [b"SCRIPT", b"FLUSH"], evalsha, [b"SCRIPT", b"LOAD", TWIN_SCRIPT.encode()],
                evalsha, evalsha, [b"FUNCTION", b"LOAD", LIBRARY], fcall, fcall, [b"FUNCTION", b"FLUSH"], fcall,
                [b"FUNCTION", b"LOAD", LIBRARY], fcall, fcall, evalsha, [b"SCRIPT", b"FLUSH", b"SYNC"], evalsha]
    replies = _pipelined(requests, True)
    assert replies == _pipelined(requests, False)
    assert replies.count(b"-NOSCRIPT") == 2 and replies.count(b"-ERR Function not found") == 1
    assert replies.endswith(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")


def test_script_command_finds_each_name_again() -> None:
    """ScriptCommand remembers the last script or function it found while its table is unchanged:
    runs of other names, a library replaced or deleted, and the same names again, in one batch."""
    other = "return 'other'"
    evalsha = [b"EVALSHA", engine.sha1hex(TWIN_SCRIPT.encode()).encode(), b"1", b"k0"]
    evalsha_other = [b"EVALSHA", engine.sha1hex(other.encode()).encode(), b"0"]
    fcall = [b"FCALL", b"incr_get", b"1", b"k0"]
    replaced = LIBRARY.replace(b"return redis.call('get', keys[1]) end)", b"return 'replaced' end)", 1)
    requests = [[b"SCRIPT", b"LOAD", other.encode()], evalsha, evalsha_other, evalsha_other, evalsha, evalsha,
                [b"FUNCTION", b"LOAD", LIBRARY], fcall, fcall, [b"FCALL", b"shapes", b"1", b"k", b"a"], fcall,
                [b"FUNCTION", b"LOAD", b"REPLACE", replaced], fcall, fcall, [b"FUNCTION", b"DELETE", b"plainlib"],
                fcall, [b"FUNCTION", b"LOAD", LIBRARY], fcall, fcall]
    replies = _pipelined(requests, True)
    assert replies == _pipelined(requests, False)
    assert replies.count(b"$8\r\nreplaced\r\n") == 2 and replies.count(b"-ERR Function not found") == 1
    assert replies.count(b"$5\r\nother\r\n") == 2


def test_script_command_takes_a_fresh_run_when_the_last_is_held() -> None:
    """ScriptCommand makes a run's Run again for the next only when nothing else holds it and
    nothing was set in its __dict__: a Run kept by Python code, or one whose rare fields a run
    changed, is not seen again by a later run."""
    from dumpling.scripting.manager import Scripting

    seen: list[tuple[int, bool]] = []
    held: list[Any] = []
    log = Scripting.log

    def spying(self: Any, *args: Any) -> Any:
        run = self.run
        seen.append((id(run), run.kill_logged))
        run.kill_logged = True  # (a rare field: it goes to the Run's __dict__)
        if len(seen) <= 2:
            held.append(run)
        return log(self, *args)

    body = "redis.log(redis.LOG_DEBUG, 'x') return redis.call('incr', KEYS[1])"
    Scripting.log = spying  # type: ignore[method-assign]  (redis.log is bound when the state is made)
    try:
        with bridge_on(True):
            _, client, transport = fresh_client()
            client.data_received(encode_command(b"SCRIPT", b"LOAD", body.encode()))
            evalsha = encode_command(b"EVALSHA", engine.sha1hex(body.encode()).encode(), b"1", b"k")
            client.data_received(evalsha)  # (the first run, in Python, makes the handle)
            seen.clear()
            held.clear()
            client.data_received(evalsha * 6)
    finally:
        Scripting.log = log  # type: ignore[method-assign]
    assert transport.data.endswith(b":7\r\n")
    assert [kill_logged for _, kill_logged in seen] == [False] * 6
    assert len({ident for ident, _ in seen[:3]}) == 3  # (the first two held, alive)
    assert all(run.client is not None for run in held)


def test_script_command_writes_what_runs_changed() -> None:
    """A plain run skips writing the script client's db and resp3, the server's current_client and
    scripting.last_error_counted when the last run left them so and nothing else wrote their dicts:
    runs that SELECT, call redis.setresp(3), run a command in Python or fail with a counted error,
    then plain runs, leave after each request what the Python handler leaves."""
    scripts = ["redis.call('select', 1) redis.call('set', KEYS[1], 'one') return redis.call('get', KEYS[1])",
               "redis.setresp(3) return redis.call('get', 'missing')",
               "redis.call('lpush', 'list', 'x') return redis.call('llen', 'list')",
               "return redis.pcall('incr', 'list')", "return redis.call('incr', 'list')",
               "return redis.call('get', KEYS[1])"]
    shas = [engine.sha1hex(body.encode()).encode() for body in [TWIN_SCRIPT, *scripts]]
    order = [0, 0, 1, 0, 6, 2, 6, 0, 3, 0, 0, 4, 0, 5, 0, 0, 6, 1, 1, 6]
    requests = [[b"EVALSHA", shas[i], b"1", b"k"] for i in order]

    def states(bridge: bool) -> list[Any]:
        with bridge_on(bridge):
            server, client, transport = fresh_client()
            for body in [TWIN_SCRIPT, *scripts]:
                client.data_received(encode_command(b"SCRIPT", b"LOAD", body.encode()))
            for request in requests[:len(scripts) + 1]:  # (first runs make the handles)
                client.data_received(encode_command(*request))
            transport.data.clear()
            scripting, seen = server.scripting, []
            for request in requests:
                client.data_received(encode_command(*request))
                seen.append((bytes(transport.data), scripting.last_error_counted, server.current_client is client,
                             scripting.eval_client.db.index, scripting.eval_client.resp3))
                transport.data.clear()
            return seen

    bridged, plain = states(True), states(False)
    assert bridged == plain
    assert {db for *_, db, _ in bridged} == {0, 1} and any(counted for _, counted, *_ in bridged)


def test_twins_histograms_follow_resetstat() -> None:
    """The bridge keeps a twin command's latency histogram while its counts are pending: CONFIG
    RESETSTAT (which drops the histograms) between pipelined runs leaves the runs after it in the
    new histograms only, as the Python handler does."""
    evalsha = [b"EVALSHA", engine.sha1hex(TWIN_SCRIPT.encode()).encode(), b"1", b"k0"]
    requests = [evalsha, evalsha, evalsha, [b"CONFIG", b"RESETSTAT"], evalsha, evalsha]

    def after(bridge: bool) -> list[tuple[int, int]]:
        with bridge_on(bridge):
            server, client, _ = fresh_client()
            client.data_received(encode_command(b"SCRIPT", b"LOAD", TWIN_SCRIPT.encode()))
            client.data_received(encode_command(*evalsha))  # (the first run makes the handle)
            client.data_received(b"".join(encode_command(*request) for request in requests))
            commands = [server.fast_table[name] for name in (b"incr", b"get", b"evalsha")]
            return [(cmd.calls, cmd.latency.total if cmd.latency else 0) for cmd in commands]

    assert after(True) == after(False) == [(2, 2), (2, 2), (2, 2)]


def test_script_command_follows_the_busy_threshold() -> None:
    """ScriptCommand remembers whether runs take the count hook while the config's values are
    unchanged: CONFIG SET busy-reply-threshold (a change in place) between runs of one batch turns
    the hook off and on again for the next run, as the Python handler does."""
    evalsha = [b"EVALSHA", engine.sha1hex(TWIN_SCRIPT.encode()).encode(), b"1", b"k0"]
    for bridge in (True, False):
        with bridge_on(bridge):
            server, client, _ = fresh_client()
            client.data_received(encode_command(b"SCRIPT", b"LOAD", TWIN_SCRIPT.encode()))
            hooked = server.scripting.eval_state.lua.eval("function() return debug.gethook() ~= nil end")
            hooks = []
            for threshold in (b"5000", b"0", b"0", b"100", b"0"):
                client.data_received(encode_command(*evalsha) * 2 + encode_command(b"CONFIG", b"SET",
                                     b"busy-reply-threshold", threshold) + encode_command(*evalsha))
                hooks.append(hooked())
            assert hooks == [True, False, False, True, False], bridge


def test_twins_route_oom_at_start() -> None:
    same_observed([(0, [b"SET", b"filler", b"x" * 1000]), (0, [b"CONFIG", b"SET", b"maxmemory", b"1"]),
                   (0, _eval(TWIN_SCRIPT, "k0", keys=1)),
                   (0, _eval("#!lua flags=allow-oom\n" + TWIN_SCRIPT, "k0", keys=1)),
                   (0, [b"CONFIG", b"SET", b"maxmemory", b"0"]), (0, _eval(TWIN_SCRIPT, "k0", keys=1))])


def test_twins_route_counters_live_in_instance_dicts() -> None:
    """The bridge adds the twins' counts in the objects' __dict__ (_luabridge.c: add_to_counter):
    nothing on their classes may stand between (a property, a slot, a __setattr__).  The server's
    stat_commands, a command's calls and usec and the keyspace's hits, misses and dirty are the
    exception: with the accelerators they are members of _fastpath.ServerBase, CommandBase and
    KeyspaceBase (the C request loop adds to them without writing the objects' __dict__s), which
    add_to_counter, finding no entry in the dict, adds to as attributes."""
    from dumpling.commands.registry import Command
    from dumpling.keyspace import Keyspace

    for cls, names in ((Command, ("calls", "usec")), (Server, ("stat_commands",)),
                       (Keyspace, ("stat_hits", "stat_misses", "dirty"))):
        assert cls.__setattr__ is object.__setattr__, cls
        assert cls.__dictoffset__ != 0, cls  # instances have a __dict__
        for name in names:
            for klass in cls.__mro__:
                if klass in (getattr(accel.fastpath, "ServerBase", None), getattr(accel.fastpath, "CommandBase", None),
                             getattr(accel.fastpath, "KeyspaceBase", None)):
                    continue  # (C members: see above)
                assert not hasattr(klass.__dict__.get(name), "__set__"), (cls, name)


# --------------------------------------------------------------------------- EVALSHA / FCALL in C

# With the bridge built, EVALSHA's and FCALL's handlers are _luabridge.ScriptCommand objects:
# the plain run (a script or function without flags, run before, on a plain server) is set up,
# run and taken down in C, everything else goes to the Python handler (the reference).  These
# streams go both ways and must agree in every reply, statistic and piece of run state.
LIBRARY = (b"#!lua name=plainlib\n"
           b"redis.register_function('incr_get', function(keys, args) redis.call('incr', keys[1]) "
           b"return redis.call('get', keys[1]) end)\n"
           b"redis.register_function('shapes', function(keys, args) return {keys[1], args[1], #keys, #args} end)\n"
           b"redis.register_function('fails', function(keys, args) return redis.call('incr', 'text') end)\n"
           b"redis.register_function('errs', function() return {err='MINE own error'} end)\n"
           b"redis.register_function{function_name='ro', callback=function(keys) return redis.call('get', keys[1]) end, "
           b"flags={'no-writes'}}\n"
           b"redis.register_function('repl', function() redis.set_repl(redis.REPL_NONE) return redis.call('incr', 'r') end)")
PLAIN_BODIES = [TWIN_SCRIPT, "return {KEYS[1], ARGV[1], #KEYS, #ARGV}", "return redis.call('incr', 'text')",
                "return {err='MINE own error'}", "return redis.error_reply('by reply')", "return 3.7", "return nil",
                "redis.set_repl(redis.REPL_NONE) return redis.call('incr', 'r')", "#!lua flags=no-writes\nreturn 1",
                "#!lua\nreturn redis.call('incr', KEYS[1])"]


def _sha(body: str) -> bytes:
    return engine.sha1hex(body.encode()).encode()


def _plain_steps() -> list[tuple[int, list[bytes]]]:
    steps: list[tuple[int, list[bytes]]] = [(0, [b"SET", b"text", b"abc"]), (0, [b"FUNCTION", b"LOAD", LIBRARY])]
    steps += [(0, [b"SCRIPT", b"LOAD", body.encode()]) for body in PLAIN_BODIES]
    for _ in range(2):  # the first run makes the handle (Python), the second is C's
        steps += [(0, [b"EVALSHA", _sha(body), b"2", b"k1", b"k2", b"a1"]) for body in PLAIN_BODIES]
        steps += [(0, [b"EVAL", body.encode(), b"1", b"k1", b"a1"]) for body in PLAIN_BODIES]
        steps += [(0, [b"FCALL", name, b"1", b"k1", b"a1", b"a2"])
                  for name in (b"incr_get", b"shapes", b"fails", b"errs", b"ro", b"repl")]
    steps += [  # the forms the Python handler words: numkeys, names, cases
        (0, [b"EVALSHA", _sha(TWIN_SCRIPT), b"01", b"k1"]), (0, [b"EVALSHA", _sha(TWIN_SCRIPT), b"-1", b"k1"]),
        (0, [b"EVALSHA", _sha(TWIN_SCRIPT), b"+1", b"k1"]), (0, [b"EVALSHA", _sha(TWIN_SCRIPT), b"2", b"k1"]),
        (0, [b"EVALSHA", _sha(TWIN_SCRIPT), b"99999999999999999999", b"k1"]),
        (0, [b"EVALSHA", _sha(TWIN_SCRIPT).upper(), b"1", b"k1"]), (0, [b"EVALSHA", b"f" * 40, b"0"]),
        (0, [b"EVALSHA", b"abc", b"0"]), (0, [b"FCALL", b"INCR_GET", b"1", b"k1"]), (0, [b"FCALL", b"nope", b"0"]),
        (0, [b"FCALL", b"incr_get", b"x", b"k1"]), (0, [b"FCALL_RO", b"ro", b"1", b"k1"]),
        (0, [b"EVALSHA_RO", _sha(PLAIN_BODIES[8]), b"0"]),
        (0, [b"MULTI"]), (0, [b"EVALSHA", _sha(TWIN_SCRIPT), b"1", b"k1"]), (0, [b"FCALL", b"incr_get", b"1", b"k1"]),
        (0, [b"EXEC"]),
    ]
    steps += [(0, [b"EVALSHA", _sha(TWIN_SCRIPT), b"1", b"k%d" % (i % 5)]) for i in range(60)]  # GC steps
    steps += [(0, [b"FCALL", b"incr_get", b"1", b"k%d" % (i % 5)]) for i in range(60)]
    return steps


def _run_state(bridge: bool, steps: list[tuple[int, list[bytes]]]) -> tuple[Any, ...]:
    """What a run leaves behind besides replies: the GC counters, the last error's counting."""
    with bridge_on(bridge):
        server, client, _ = fresh_client()
        for _, request in steps:
            client.data_received(encode_command(*request))
        scripting = server.scripting
        return (scripting.eval_state.runs_since_gc(), scripting.function_state.runs_since_gc(),
                scripting.last_error_counted,
                scripting.run, server.in_exec, server.current_client is client, scripting.eval_client.db.index,
                list(scripting.scripts))


def test_script_command_plain_runs() -> None:
    from dumpling.scripting.manager import Scripting

    table = Server(Config()).fast_table
    assert type(table[b"evalsha"].handler).__name__ == "ScriptCommand"
    assert type(table[b"fcall"].handler).__name__ == "ScriptCommand"
    assert type(table[b"eval"].handler).__name__ == "ScriptCommand"
    steps = _plain_steps()
    same_observed(steps)
    assert _run_state(True, steps) == _run_state(False, steps)
    # the plain runs did not go through Scripting.invoke (the first run of each did, for its handle)
    invoked = []
    plain_invoke = Scripting.invoke

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        invoked.append(args[1][0])
        return plain_invoke(self, *args, **kwargs)

    Scripting.invoke = counting  # type: ignore[method-assign]
    try:
        with bridge_on(True):
            _, client, _ = fresh_client()
            client.data_received(encode_command(b"SCRIPT", b"LOAD", TWIN_SCRIPT.encode()))
            client.data_received(encode_command(b"FUNCTION", b"LOAD", LIBRARY))
            for _ in range(5):
                client.data_received(encode_command(b"EVALSHA", _sha(TWIN_SCRIPT), b"1", b"k"))
                client.data_received(encode_command(b"FCALL", b"incr_get", b"1", b"k"))
                client.data_received(encode_command(b"EVAL", b"return 1", b"0"))
    finally:
        Scripting.invoke = plain_invoke  # type: ignore[method-assign]
    assert invoked == [b"EVALSHA", b"FCALL", b"EVAL"]


@pytest.mark.parametrize("setup", [
    [(1, [b"MONITOR"])],
    [(0, [b"CONFIG", b"SET", b"maxmemory", b"100mb"])],
    [(0, [b"ACL", b"SETUSER", b"u", b"on", b"nopass", b"+@all", b"~*"]), (0, [b"AUTH", b"u", b"x"])],
    [(0, [b"CONFIG", b"SET", b"busy-reply-threshold", b"0"])],
    [(0, [b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"])],
], ids=["monitor", "maxmemory", "acl", "no-hook", "slowlog"])
def test_script_command_other_states(setup: list[tuple[int, list[bytes]]]) -> None:
    steps = setup + _plain_steps()
    same_observed(steps)
    assert _run_state(True, steps) == _run_state(False, steps)


def test_script_command_keeps_the_eval_lru() -> None:
    """EVALSHA or EVAL of an EVAL-created script moves it to the young end of the cache, as the
    Python handler does (the 500 limit then evicts others)."""
    requests = [_eval(f"return {i}") for i in range(500)]
    requests += [[b"EVALSHA", _sha("return 0"), b"0"]] * 2 + [_eval("return 1")] * 2 + [_eval("return 'one more'")]
    requests += [_eval("return 'and more'"), [b"SCRIPT", b"EXISTS", _sha("return 0"), _sha("return 1"), _sha("return 2")]]
    replies = same(requests)
    assert replies[-1] == b"*3\r\n:1\r\n:1\r\n:0\r\n"
    steps = [(0, r) for r in requests]
    assert _run_state(True, steps) == _run_state(False, steps)


def test_run_state_lives_in_instance_dicts() -> None:
    """ScriptCommand reads and writes these objects' attributes in their __dict__ (and Run's,
    Script's and Function's slots): nothing on their classes may stand between."""
    from dumpling.scripting.engine import LuaState
    from dumpling.scripting.functions import Function
    from dumpling.scripting.manager import PlainEvalTwinsRun, PlainTwinsRun, Run, Script, Scripting

    for cls, names in (
        # (current_client is not among them: ServerBase keeps it, and the bridge sets it with setattr)
        (Server, ("in_exec", "monitors", "command_gate", "maxmemory", "cluster", "scripting", "config")),
        (Client, ("server", "lua_debug", "unrestricted", "db", "resp3")),
        (Scripting, ("run", "last_error_counted", "scripts_by_sha", "libraries", "eval_state", "_function_state",
                     "eval_client", "function_client")),
        (LuaState, ("bridge",)),
    ):
        assert cls.__setattr__ is object.__setattr__, cls
        assert cls.__dictoffset__ != 0, cls
        for name in names:
            for klass in cls.__mro__:
                assert not hasattr(klass.__dict__.get(name), "__set__"), (cls, name)
    for cls in (PlainTwinsRun, PlainEvalTwinsRun):  # one layout: Run's slots
        assert cls.__slots__ == () and cls.__setattr__ is object.__setattr__
    assert {"caller", "caller_argv", "client", "name", "eval_mode", "start", "write_dirty", "error_counted",
            "timed_out", "repl_changed"} <= set(Run.__slots__)
    assert {"flags", "handle", "sha", "from_eval"} <= set(Script.__slots__)
    assert {"flags", "handle", "label"} <= set(Function.__slots__)


def test_script_command_busy_run_ends() -> None:
    """A plain run that went busy is taken down as invoke does (Scripting.run_ended)."""
    body = "local i = 0 while i < 1000000 do i = i + 1 end return i"
    library = (b"#!lua name=busylib\nredis.register_function('spin', function() " + body.encode() + b" end)")
    steps = [(0, [b"CONFIG", b"SET", b"busy-reply-threshold", b"1"]), (0, [b"SCRIPT", b"LOAD", body.encode()]),
             (0, [b"FUNCTION", b"LOAD", library])]
    steps += [(0, [b"EVALSHA", _sha(body), b"0"]), (0, [b"FCALL", b"spin", b"0"])] * 2
    assert same([request for _, request in steps])[-1] == b":1000000\r\n"
    with bridge_on(True):
        server, client, _ = fresh_client()
        for _, request in steps:
            client.data_received(encode_command(*request))
        assert server.scripting._busy is None and server.scripting.run is None and not server.in_exec


# The twins' counts of script runs reach the Python counters when Python could next read them
# (_luabridge.c: g_counts, a pending call in the main thread): pipelined runs add them once.
def _counters_after(bridge: bool, requests: list[list[bytes]], thread: bool = False) -> tuple[Any, ...]:
    import re
    import threading

    old = engine.use_bridge(bridge)
    try:
        result: list[Any] = []

        def work() -> None:
            server = Server(Config())
            commands = [server.fast_table[name] for name in (b"get", b"incr", b"evalsha")]  # (shared by servers)
            before = [cmd.calls for cmd in commands]
            client = Client(server)
            transport = Transport()
            client.connection_made(transport)  # type: ignore[arg-type]
            client.data_received(b"".join(encode_command(*r) for r in requests))
            ks = server.keyspace  # (read at once: no Python function runs in between)
            read = (ks.dirty, ks.stat_hits, ks.stat_misses, server.stat_commands)
            reset = [b"CONFIG", b"RESETSTAT"] in requests  # (the Commands are shared by the servers)
            calls = [cmd.calls - (0 if reset else was) for cmd, was in zip(commands, before, strict=True)]
            # what INFO showed (commandstats: after a RESETSTAT)
            shown = re.findall(rb"(total_commands_processed|keyspace_hits|keyspace_misses|rdb_changes_since_last_save"
                               rb"|cmdstat_(?:get|incr|evalsha)):(\w+=)?(\d+)", bytes(transport.data))
            if not reset:
                shown = [field for field in shown if not field[0].startswith(b"cmdstat")]
            replies = bytes(transport.data).split(b"\r\n")[:16]  # (the runs' replies)
            result.append((read, calls, shown, replies, server.scripting.eval_client.last_cmd))

        if thread:
            worker = threading.Thread(target=work)
            worker.start()
            worker.join()
        else:
            work()
        return result[0]
    finally:
        engine.use_bridge(old)


def test_twin_counts_reach_python_before_it_reads_them() -> None:
    sha = _sha(TWIN_SCRIPT)
    load = [[b"SCRIPT", b"LOAD", TWIN_SCRIPT.encode()]]
    runs = [[b"EVALSHA", sha, b"1", b"k%d" % (i % 3)] for i in range(7)]
    streams = [
        load + runs,
        load + runs + [[b"INFO", b"commandstats"], [b"INFO", b"stats"], [b"INFO", b"persistence"]],
        load + runs + [[b"CONFIG", b"RESETSTAT"]] + runs[:2] + [[b"INFO", b"commandstats"], [b"INFO", b"stats"]],
        load + runs + [[b"GET", b"k0"], [b"SET", b"x", b"y"]] + runs[:3] + [[b"INFO", b"keyspace"]],
        load + runs + [[b"EVAL", b"return redis.call('info', 'stats')", b"0"]],
    ]
    for requests in streams:
        for thread in (False, True):
            ours, reference = _counters_after(True, requests, thread), _counters_after(False, requests, thread)
            assert ours == reference, (requests[-1], thread)
    assert _counters_after(True, streams[0])[0][0] == 7  # seven INCRs
