"""The Lua debugger (SCRIPT DEBUG YES|SYNC|NO, what ``redis-cli --ldb`` drives) against
Redis 7.0: the same sessions over raw RESP and through redis-cli with piped input, compared
line for line (addresses of functions aside), the forked mode's rollback and the sync mode's
kept changes, and the pure parts of ``dumpling.scripting.debugger``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from dumpling.protocol import encode_request
from dumpling.scripting.debugger import parse_command, reply_to_human, repr_bytes, source_lines
from tests.servers import RawConnection, ServerProcess, start_dumpling

SCRIPT_STEPS = """local a = 1
local t = {1, 2, "x", {y = 3}, [10] = true}
redis.call('set', KEYS[1], ARGV[1])
local v = redis.call('get', KEYS[1])
redis.debug('hello', a, t, nil, 1.5, "q\\"\\n\\1")
for i = 1, 3 do
  a = a + i
end
redis.breakpoint()
return {a, v}
"""

SCRIPT_FRAMES = """local function f(x)
  local y = x * 2
  return y
end
local z = f(3)
redis.call('set', KEYS[1], string.rep('x', 300))
local big = redis.call('get', KEYS[1])
redis.call('hset', 'h', 'a', '1')
local h = redis.call('hgetall', 'h')
local n = redis.call('get', 'nokey')
redis.call('rpush', 'l', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
local s = "a\\"b\\\\c\\n\\t\\1"
return z
"""

SESSIONS = [
    (SCRIPT_STEPS, ["help", "s", "print", "n", "print t", "list", "whole", "break 9", "break", "c", "trace",
                    "eval a * 2", "eval nosuch(", "eval {1, 2}", "eval", "eval a b", "redis get foo", "redis incr foo",
                    "redis nosuch", "redis get", "r", "maxlen 70", "maxlen", "print KEYS", "print ARGV", "print nosuch",
                    "break -8", "break 100", "break x", "foo", "c"]),
    (SCRIPT_FRAMES, ["s", "s", "trace", "s", "s", "p", "s", "print big", "s", "s", "s", "s", "s", "maxlen 0",
                     "print big", "s", "p", "list 3 1", "list 0", "l 100", "b 2", "b 2 5", "b", "b -2 -7", "break 0",
                     "b", "m 10", "m", "c"]),
    (SCRIPT_STEPS, ["b 7", "c", "p", "c", "p i", "abort"]),
    (SCRIPT_STEPS, ["e redis.debug(1)", "e redis.breakpoint()", "e redis.call('get', 'foo')", "s", "s", "s",
                    "r lpush foo x", "c", "c"]),
]

_ADDRESS = re.compile(rb"(function|userdata|thread)@0x[0-9a-f]+")


def _normal(data: bytes) -> bytes:
    return _ADDRESS.sub(rb"\1@ADDR", data)


def _session(server: ServerProcess, script: str, commands: list[str]) -> list[bytes]:
    """A SYNC session over raw RESP: every reply (arrays of log lines), then what is left
    when the server closes the connection."""
    with RawConnection(server.port) as conn:
        out = [conn.call("SCRIPT", "DEBUG", "SYNC")]
        conn.send(encode_request([b"EVAL", script.encode(), b"1", b"foo", b"bar"]))
        out.append(conn.read_reply())
        for line in commands:
            conn.send(encode_request([part.encode() for part in line.split(" ")]))
            reply = conn.read_reply()
            out.append(reply)
            if reply == b"*1\r\n+<endsession>\r\n":
                out.append(conn.read_reply())  # the EVAL's own reply
                assert conn.is_closed()
                break
        return [_normal(r) for r in out]


@pytest.mark.parametrize("index", range(len(SESSIONS)))
def test_sync_sessions_over_raw_protocol(dumpling_server: ServerProcess, redis_server: ServerProcess,
                                         index: int) -> None:
    script, commands = SESSIONS[index]
    for server in (dumpling_server, redis_server):
        with server.raw() as conn:
            conn.call("FLUSHALL")
    ours = _session(dumpling_server, script, commands)
    theirs = _session(redis_server, script, commands)
    assert ours == theirs
    # SYNC keeps what the script did (up to an abort)
    with dumpling_server.raw() as a, redis_server.raw() as b:
        assert a.call("GET", "foo") == b.call("GET", "foo")


def _cli(server: ServerProcess, script: Path, stdin: str, sync: bool) -> str:
    cli = shutil.which("redis-cli")
    assert cli is not None
    args = [cli, "-p", str(server.port), "--ldb-sync-mode" if sync else "--ldb", "--eval", str(script), "foo", ",", "bar"]
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30)
    return _normal((done.stdout + done.stderr).encode()).decode()


@pytest.mark.parametrize("sync", [False, True], ids=["forked", "sync"])
def test_redis_cli_ldb(dumpling_server: ServerProcess, redis_server: ServerProcess, tmp_path: Path,
                       sync: bool) -> None:
    """redis-cli --ldb / --ldb-sync-mode with piped commands: the same output, and the
    dataset rolled back (forked) or kept (sync) as Redis does."""
    script = tmp_path / "steps.lua"
    script.write_text(SCRIPT_STEPS)
    stdin = "\n".join(SESSIONS[0][1][:-1] + ["restart", "s", "c", "c"]) + "\n"
    results = []
    for server in (dumpling_server, redis_server):
        with server.raw() as conn:
            conn.call("FLUSHALL")
        results.append(_cli(server, script, stdin, sync))
        with server.raw() as conn:
            results.append(conn.call("GET", "foo"))
    assert results[0] == results[2]
    assert results[1] == results[3] == (b"$3\r\nbar\r\n" if sync else b"$-1\r\n")


def test_forked_session_leaves_the_server_serving(dumpling_server: ServerProcess) -> None:
    """While a forked session waits for its client, the server answers others and keeps its
    data; a client that goes away ends the session's stops (the script runs to its end)."""
    with dumpling_server.raw() as debug, dumpling_server.raw() as other:
        other.call("SET", "k", "before")
        assert debug.call("SCRIPT", "DEBUG", "YES") == b"+OK\r\n"
        debug.send(encode_request([b"EVAL", b"redis.call('set', 'k', 'inside') return 1", b"0"]))
        assert debug.read_reply().startswith(b"*2\r\n+* Stopped at 1")
        assert other.call("PING") == b"+PONG\r\n"
        debug.send(encode_request([b"step"]))
        assert b"<redis> set k inside" in debug.read_reply()
        assert other.call("GET", "k") == b"$6\r\nbefore\r\n"
    with dumpling_server.raw() as conn:
        assert conn.call("GET", "k") == b"$6\r\nbefore\r\n"


def test_refusals(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    for server in (dumpling_server, redis_server):
        with server.raw() as conn:
            assert conn.call("SCRIPT", "DEBUG", "maybe") == b"-ERR Use SCRIPT DEBUG YES/SYNC/NO\r\n"
            assert conn.call("SCRIPT", "DEBUG", "YES") == b"+OK\r\n"
            assert conn.call("EVALSHA", "a" * 40, "0") == b"-ERR Please use EVAL instead of EVALSHA for debugging\r\n"
            assert conn.call("SCRIPT", "DEBUG", "NO") == b"+OK\r\n"
            assert conn.call("EVAL", "return 1", "0") == b":1\r\n"


def test_client_gone_mid_session(dumpling_server: ServerProcess) -> None:
    """SYNC: the client closes while the script is stopped; the script runs on to its end,
    its changes kept, and the server serves again."""
    debug = RawConnection(dumpling_server.port)
    debug.call("SCRIPT", "DEBUG", "SYNC")
    debug.send(encode_request([b"EVAL", b"redis.call('set', 'gone', '1')\nredis.call('set', 'gone', '2')", b"0"]))
    assert debug.read_reply().startswith(b"*2\r\n+* Stopped at 1")
    debug.close()
    with dumpling_server.raw() as conn:
        assert conn.call("GET", "gone") == b"$1\r\n2\r\n"


def test_protocol_error_and_abort_texts(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    """A malformed debugger command ends the script with Redis's error."""
    results = []
    for server in (dumpling_server, redis_server):
        with RawConnection(server.port) as conn:
            conn.call("SCRIPT", "DEBUG", "SYNC")
            conn.send(encode_request([b"EVAL", b"return 1", b"0"]))
            conn.read_reply()
            conn.send(b"*1\r\n$0\r\n\r\n")
            results.append((conn.read_reply(), conn.read_reply()))
    assert results[0] == results[1]


# ------------------------------------------------------------------------------ pure parts


def test_parse_command() -> None:
    assert parse_command(b"") == (None, False)
    assert parse_command(b"*1\r\n$4\r\nstep\r\n") == ([b"step"], False)
    assert parse_command(b"junk*2\r\n$1\r\np\r\n$1\r\nx\r\n") == ([b"p", b"x"], False)
    assert parse_command(b"*2\r\n$1\r\np\r\n") == (None, False)
    assert parse_command(b"*1\r\n$4\r\nst") == (None, False)
    assert parse_command(b"no star") == (None, True)
    assert parse_command(b"*0\r\n") == (None, True)
    assert parse_command(b"*1025\r\n") == (None, True)
    assert parse_command(b"*1\r\n$0\r\n\r\n") == (None, True)
    assert parse_command(b"*1\r\n+step\r\n") == (None, True)
    assert parse_command(b"*1\r\n$4\r\nstepXX") == (None, True)


def test_reply_to_human() -> None:
    assert reply_to_human(b":12\r\n") == "12"
    assert reply_to_human(b"$-1\r\n") == "NULL"
    assert reply_to_human(b"$3\r\na\"\n\r\n") == '"a\\"\\n"'
    assert reply_to_human(b"+OK\r\n") == '"+OK"'
    assert reply_to_human(b"-ERR x\r\n") == '"-ERR x"'
    assert reply_to_human(b"*-1\r\n") == "NULL"
    assert reply_to_human(b"*2\r\n:1\r\n*1\r\n$1\r\nx\r\n") == '[1,["x"]]'
    assert reply_to_human(b"~2\r\n:1\r\n:2\r\n") == "~(1,2)"
    assert reply_to_human(b"%1\r\n$1\r\nk\r\n,1.5\r\n") == '{"k" => (double) 1.5}'
    assert reply_to_human(b"_\r\n") == "(null)"
    assert reply_to_human(b"#t\r\n") == "#true"
    assert repr_bytes(b"\x00\x7f\xff\t\x07\x08") == '"\\x00\\x7f\\xff\\t\\a\\b"'
    assert source_lines(b"a\nb\r\n\n") == [b"a", b"b"]
    assert source_lines(b"") == []


def test_sync_session_blocks_other_clients(dumpling_server: ServerProcess) -> None:
    """SYNC mode stops the server as Redis's does: another client's PING is answered only
    when the session ends."""
    debug = RawConnection(dumpling_server.port)
    debug.call("SCRIPT", "DEBUG", "SYNC")
    debug.send(encode_request([b"EVAL", b"return 1", b"0"]))
    assert debug.read_reply().startswith(b"*2\r\n+* Stopped at 1")
    answered = []
    other = RawConnection(dumpling_server.port)

    def ping() -> None:
        answered.append(other.call("PING"))

    thread = threading.Thread(target=ping)
    thread.start()
    thread.join(0.5)
    assert answered == []
    debug.send(encode_request([b"c"]))
    assert debug.read_reply() == b"*1\r\n+<endsession>\r\n"
    assert debug.read_reply() == b":1\r\n"
    thread.join(5)
    assert answered == [b"+PONG\r\n"]
    debug.close()
    other.close()


def test_shutdown_ends_forked_sessions() -> None:
    """SHUTDOWN kills the forked debugging sessions (ldbKillForkedSessions): the debugging
    client's connection, held only by the child, closes."""
    server = start_dumpling()
    try:
        debug = RawConnection(server.port)
        debug.call("SCRIPT", "DEBUG", "YES")
        debug.send(encode_request([b"EVAL", b"return 1", b"0"]))
        assert debug.read_reply().startswith(b"*2\r\n+* Stopped at 1")
        with server.raw() as conn:
            conn.send(encode_request([b"SHUTDOWN", b"NOSAVE"]))
        assert debug.is_closed(wait=5.0)
        debug.close()
    finally:
        server.stop()


@pytest.mark.parametrize("args", [["return +", "0"], ["return 1", "5"], ["return 1", "-1"],
                                  ["#!lua flags=no-writes\nreturn redis.call('set', 'x', 1)", "0"]])
def test_refused_runs_end_the_session(dumpling_server: ServerProcess, redis_server: ServerProcess,
                                      args: list[str]) -> None:
    """An EVAL refused before or while it runs (compile error, bad key count, a flag) ends
    the session as Redis's does: <endsession>, the error, the connection closed."""
    results = []
    for server in (dumpling_server, redis_server):
        with RawConnection(server.port) as conn:
            conn.call("SCRIPT", "DEBUG", "SYNC")
            conn.send(encode_request([b"EVAL", *(a.encode() for a in args)]))
            out = [conn.read_reply()]
            if out[0].startswith(b"*2\r\n+* Stopped"):
                conn.send(encode_request([b"s"]))
                out.append(conn.read_reply())
            if out[-1].endswith(b"+<endsession>\r\n"):
                out.append(conn.read_reply())
            out.append(b"closed" if conn.is_closed() else b"open")
            results.append(out)
    assert results[0] == results[1]


def test_script_debug_refused_in_a_pipeline(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    """SCRIPT DEBUG after another command of the same read is refused (clientHasPendingReplies)."""
    results = []
    for server in (dumpling_server, redis_server):
        with RawConnection(server.port) as conn:
            conn.send(b"PING\r\nSCRIPT DEBUG YES\r\nSCRIPT DEBUG NO\r\n")
            results.append(conn.read_all())
            conn.send(b"SCRIPT DEBUG NO\r\n")
            results.append(conn.read_all())
    assert results[0] == results[2] == (b"+PONG\r\n" + b"-ERR SCRIPT DEBUG must be called outside a pipeline\r\n" * 2)
    assert results[1] == results[3] == b"+OK\r\n"
