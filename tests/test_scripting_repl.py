"""redis.set_repl: a script chooses where the effects of its next commands go (the AOF,
replicas, both or neither), for the rest of its run.

Each scenario runs on a master with the AOF on and one replica, once with dumpling for
both and once with Redis for both; what the replica holds and what the master holds after
reloading its AOF (DEBUG LOADAOF) must be the same for both implementations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import Pair, ServerProcess, require_redis, start_dumpling, start_redis

SELECTIVE = """
redis.call('set', KEYS[1], '1')
redis.set_repl(redis.REPL_NONE)
redis.call('set', KEYS[2], '2')
redis.set_repl(redis.REPL_AOF)
redis.call('set', KEYS[3], '3')
redis.set_repl(redis.REPL_REPLICA)
redis.call('set', KEYS[4], '4')
redis.call('set', KEYS[1], 'not for the AOF')
redis.set_repl(redis.REPL_ALL)
redis.call('set', KEYS[5], '5')
"""
# A script's choice ends with its run: the SET after it in the transaction goes everywhere.
QUIET = "redis.set_repl(redis.REPL_NONE) redis.call('set', KEYS[1], 'quiet')"
KEYS = ["a", "b", "c", "d", "e", "f", "g"]


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _scenario(start: Callable[..., ServerProcess], directory: Path) -> tuple[bytes, bytes, bytes, bytes]:
    """(the master's replies, the replica's MGET, the master's MGET, the MGET after DEBUG LOADAOF)."""
    directory.mkdir()
    master = start("--dir", str(directory), "--appendonly", "yes", "--enable-debug-command", "yes",
                   "--repl-diskless-sync-delay", "0")
    replica = start("--replicaof", "127.0.0.1", str(master.port))
    try:
        with master.raw() as m, replica.raw() as r:
            _wait(lambda: b"master_link_status:up" in r.call("INFO", "replication"), "the replica's link")
            replies = m.call("EVAL", SELECTIVE, 5, *KEYS[:5])
            replies += m.call("MULTI") + m.call("EVAL", QUIET, 1, "f") + m.call("SET", "g", "7") + m.call("EXEC")
            replies += m.call("SET", "done", "1")  # the last write: once it is on the replica, all is
            _wait(lambda: r.call("GET", "done") == b"$1\r\n1\r\n", "the replica to catch up")
            on_replica = r.call("MGET", *KEYS)
            on_master = m.call("MGET", *KEYS)
            replies += m.call("DEBUG", "LOADAOF")
            from_aof = m.call("MGET", *KEYS)
        return replies, on_replica, on_master, from_aof
    finally:
        replica.stop()
        master.stop()


@pytest.mark.parametrize("impl", ["dumpling", "redis"])
def test_set_repl_chooses_aof_and_replicas(impl: str, tmp_path: Path) -> None:
    if impl == "redis":
        require_redis()
    replies, on_replica, on_master, from_aof = _scenario(start_dumpling if impl == "dumpling" else start_redis,
                                                         tmp_path / impl)
    assert replies == b"$-1\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n$-1\r\n+OK\r\n+OK\r\n+OK\r\n"
    assert on_master == b"*7\r\n$15\r\nnot for the AOF\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$5\r\nquiet\r\n$1\r\n7\r\n"
    # replicas: a (its last value), d, e, g; not b (none), c (AOF only), f (none)
    assert on_replica == b"*7\r\n$15\r\nnot for the AOF\r\n$-1\r\n$-1\r\n$1\r\n4\r\n$1\r\n5\r\n$-1\r\n$1\r\n7\r\n"
    # the AOF: a as it was before the replica-only SET, c, e, g; not b, d, f
    assert from_aof == b"*7\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n$-1\r\n$1\r\n5\r\n$-1\r\n$1\r\n7\r\n"


STALE_LIBRARY = """#!lua name=stale
redis.register_function{function_name='f1', callback=function() return 'hello' end, flags={'no-writes'}}
redis.register_function{function_name='f2', callback=function() return 'hello' end, flags={'allow-stale', 'no-writes'}}
redis.register_function{function_name='f3', callback=function() return redis.call('get', 'x') end,
                        flags={'allow-stale', 'no-writes'}}
redis.register_function{function_name='f4', callback=function() return type(redis.call('time')) end,
                        flags={'allow-stale', 'no-writes'}}
"""


@pytest.mark.parametrize("impl", ["dumpling", "redis"])
def test_scripts_on_a_stale_replica(impl: str) -> None:
    """A replica whose link is down and that serves no stale data runs only scripts flagged
    allow-stale, and inside them only commands flagged stale (scriptPrepareForRun,
    scriptVerifyAllowStale); the others get Redis's plain MASTERDOWN."""
    if impl == "redis":
        require_redis()
    server = start_dumpling() if impl == "dumpling" else start_redis()
    try:
        with server.raw() as conn:
            assert conn.call("FUNCTION", "LOAD", STALE_LIBRARY) == b"$5\r\nstale\r\n"
            assert conn.call("CONFIG", "SET", "replica-serve-stale-data", "no") == b"+OK\r\n"
            assert conn.call("REPLICAOF", "127.0.0.1", "1") == b"+OK\r\n"
            replies = [conn.call("FCALL", name, 0) for name in ("f1", "f2", "f3", "f4")]
            replies.append(conn.call("EVAL", "return 1", 0))
            replies.append(conn.call("EVAL", "#!lua flags=no-writes,allow-stale\nreturn redis.call('lastsave') > 0", 0))
            replies.append(conn.call("EVAL", "#!lua flags=no-writes\nreturn 1", 0))
            assert conn.call("REPLICAOF", "NO", "ONE") == b"+OK\r\n"
            replies.append(conn.call("FCALL", "f1", 0))
    finally:
        server.stop()
    masterdown = b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
    assert replies == [
        masterdown,
        b"$5\r\nhello\r\n",
        b"-ERR Can not execute the command on a stale replica script: f3, on @user_function:4.\r\n",
        b"$5\r\ntable\r\n",
        masterdown,
        b":1\r\n",
        masterdown,
        b"$5\r\nhello\r\n",
    ]


def test_queued_scripts_count_as_writes_by_their_flags(pair: Pair) -> None:
    """A transaction holding a script whose flags do not say no-writes (or a function) is a
    write for the server's refusals at EXEC, as Redis's evalGetCommandFlags makes it: here
    min-replicas-to-write refuses it (EXECABORT ... NOREPLICAS); a no-writes script or one
    without a shebang runs."""
    pair.same("FUNCTION", "LOAD", "#!lua name=wlib\nredis.register_function('w', function() return 1 end)\n"
                                  "redis.register_function{function_name='r', callback=function() return 2 end, "
                                  "flags={'no-writes'}}")
    pair.same("CONFIG", "SET", "min-replicas-to-write", "1")
    try:
        for queued in (["EVAL", "#!lua\nreturn 1", "0"], ["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
                       ["EVAL", "return 1", "0"], ["FCALL", "w", "0"], ["FCALL", "r", "0"],
                       ["FCALL_RO", "r", "0"], ["EVAL", "#!lua flags=bogus\nreturn 1", "0"]):
            pair.same("MULTI")
            pair.same(*queued)
            pair.same("EXEC")
    finally:
        pair.same("CONFIG", "SET", "min-replicas-to-write", "0")
        pair.same("FUNCTION", "FLUSH")
