"""Busy scripts: a script running past ``busy-reply-threshold`` keeps the server usable.

The same scenarios run against dumpling and real Redis (each started with a 100 ms
threshold) and must produce the same replies: -BUSY for other clients (existing
connections and new ones), SCRIPT KILL / FUNCTION KILL, -UNKILLABLE after a write,
SHUTDOWN NOSAVE, and the killed script's own error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.servers import RawConnection, ServerProcess, start_dumpling, start_redis

THRESHOLD = ("--busy-reply-threshold", "100")
LOOP = "while true do end"
FUNCTION_LIB = "#!lua name=busylib\nredis.register_function('spin', function() while true do end end)"


@pytest.fixture(params=["dumpling", "redis"])
def busy_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    server = start_dumpling(*THRESHOLD) if request.param == "dumpling" else start_redis(*THRESHOLD)
    yield server
    server.stop()


def _send(conn: RawConnection, *args: str | int) -> None:
    from tests.servers import encode_command

    conn.send(encode_command(*args))


def _wait_busy(port: int) -> None:
    """Until another client gets -BUSY (the script passed the threshold)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with RawConnection(port) as probe:
            if probe.call("PING").startswith(b"-BUSY"):
                return
        time.sleep(0.05)
    raise AssertionError("the script never became busy")


def test_busy_eval_killed_by_new_and_existing_clients(busy_server: ServerProcess) -> None:
    port = busy_server.port
    with RawConnection(port) as runner, RawConnection(port) as other:
        other.call("PING")  # connected before the script starts
        _send(runner, "EVAL", LOOP, 0)
        _wait_busy(port)
        assert other.call("PING") == (b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
                                      b"SHUTDOWN NOSAVE.\r\n")
        assert other.call("GET", "x").startswith(b"-BUSY")
        assert other.call("FUNCTION", "KILL").startswith(b"-BUSY Redis is busy running a script. You can only call "
                                                         b"SCRIPT KILL")
        with RawConnection(port) as fresh:  # a new connection while the script runs
            assert fresh.call("SCRIPT", "KILL") == b"+OK\r\n"
        reply = runner.read_reply()
        assert reply.startswith(b"-ERR Script killed by user with SCRIPT KILL... script: ")
        assert reply.endswith(b", on @user_script:1.\r\n")
        assert other.call("PING") == b"+PONG\r\n"
        assert runner.call("PING") == b"+PONG\r\n"


def test_pcall_cannot_swallow_the_kill(busy_server: ServerProcess) -> None:
    port = busy_server.port
    with RawConnection(port) as runner, RawConnection(port) as other:
        other.call("PING")
        _send(runner, "EVAL", "while true do pcall(function() while true do end end) end", 0)
        _wait_busy(port)
        assert other.call("SCRIPT", "KILL") == b"+OK\r\n"
        assert runner.read_reply().startswith(b"-ERR Script killed by user with SCRIPT KILL...")


def test_write_script_is_unkillable_then_shutdown_nosave(busy_server: ServerProcess) -> None:
    port = busy_server.port
    with RawConnection(port) as runner, RawConnection(port) as other:
        other.call("PING")
        _send(runner, "EVAL", "redis.call('set', 'x', 'y') " + LOOP, 0)
        _wait_busy(port)
        assert other.call("SCRIPT", "KILL") == (
            b"-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either "
            b"wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n"
        )
        assert other.call("SHUTDOWN").startswith(b"-")  # only NOSAVE while busy
        other.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        assert other.is_closed(wait=10)
    busy_server.proc.wait(timeout=10)


def test_busy_function_and_function_kill(busy_server: ServerProcess) -> None:
    port = busy_server.port
    with RawConnection(port) as runner, RawConnection(port) as other:
        assert other.call("FUNCTION", "LOAD", FUNCTION_LIB) == b"$7\r\nbusylib\r\n"
        _send(runner, "FCALL", "spin", 0)
        _wait_busy(port)
        assert other.call("PING") == (b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                                      b"SHUTDOWN NOSAVE.\r\n")
        assert other.call("SCRIPT", "KILL").startswith(b"-BUSY Redis is busy running a script. You can only call "
                                                       b"FUNCTION KILL")
        stats = other.call("FUNCTION", "STATS")
        assert b"running_script" in stats and b"spin" in stats and b"FCALL" in stats
        assert other.call("FUNCTION", "KILL") == b"+OK\r\n"
        reply = runner.read_reply()
        assert reply.startswith(b"-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.")
        assert other.call("SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"


def test_function_load_timeout(busy_server: ServerProcess) -> None:
    with busy_server.raw() as conn:
        reply = conn.call("FUNCTION", "LOAD", "#!lua name=slow\nwhile true do end")
        assert reply == b"-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n"
        assert conn.call("FUNCTION", "LIST") == b"*0\r\n"


def test_after_a_kill_scripts_run_and_can_be_killed_again(busy_server: ServerProcess) -> None:
    """The kill turns the count hook into a line hook for the rest of that run only: the
    next runs (EVAL and FCALL, multi-line ones too) are untouched, and a later busy script
    is detected and killed again.  A FUNCTION LOAD (which sets its own hook) in between."""
    port = busy_server.port
    with RawConnection(port) as runner, RawConnection(port) as other:
        other.call("PING")
        for _ in range(2):
            _send(runner, "EVAL", LOOP, 0)
            _wait_busy(port)
            assert other.call("SCRIPT", "KILL") == b"+OK\r\n"
            assert runner.read_reply().startswith(b"-ERR Script killed by user with SCRIPT KILL...")
            assert runner.call("EVAL", "local a = 1\nlocal b = a + 1\nreturn b", 0) == b":2\r\n"
            assert runner.call("FUNCTION", "LOAD", "REPLACE", FUNCTION_LIB) == b"$7\r\nbusylib\r\n"
            assert runner.call("EVAL", "local n = 0\nfor i = 1, 300000 do n = n + 1 end\nreturn n", 0) == b":300000\r\n"
        _send(runner, "FCALL", "spin", 0)
        _wait_busy(port)
        assert other.call("FUNCTION", "KILL") == b"+OK\r\n"
        assert runner.read_reply().startswith(b"-ERR Script killed by user with SCRIPT KILL...")
        assert runner.call("EVAL", "return 'alive'", 0) == b"$5\r\nalive\r\n"


def test_blocked_client_is_served_after_the_busy_script(busy_server: ServerProcess) -> None:
    """A key the script made ready wakes its blocked client when the script ends, even when a
    command allowed while busy (HELLO) runs in between: BLPOP gets the script's last push."""
    port = busy_server.port
    script = ("redis.call('lpush', KEYS[1], 'y') "
              "while not string.find(redis.call('client', 'list'), 'abortscript') do end "
              "redis.call('lpush', KEYS[1], 'z') return 'done'")
    with RawConnection(port) as runner, RawConnection(port) as waiter, RawConnection(port) as other:
        assert other.call("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1") == b"+OK\r\n"  # CLIENT is noscript
        _send(waiter, "BLPOP", "x", 0)
        deadline = time.monotonic() + 10
        while b"blocked_clients:1" not in other.call("INFO", "clients") and time.monotonic() < deadline:
            time.sleep(0.02)
        _send(runner, "EVAL", script, 1, "x")
        _wait_busy(port)
        assert other.call("HELLO", "2", "SETNAME", "abortscript").startswith(b"*")
        assert runner.read_reply() == b"$4\r\ndone\r\n"
        assert waiter.read_reply() == b"*2\r\n$1\r\nx\r\n$1\r\nz\r\n"
        assert other.call("LRANGE", "x", 0, -1) == b"*1\r\n$1\r\ny\r\n"
        assert other.call("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0") == b"+OK\r\n"


@pytest.mark.parametrize("kind", ["dumpling", "redis"])
def test_replica_leaving_during_a_busy_script(kind: str) -> None:
    """A replica's link is served while a script is busy: the script sees the replica go
    (INFO's connected_slaves) and, having written before, may write again although
    min-replicas-to-write is no longer met (TCL 'not enough good replicas state change
    during long script')."""
    start = start_dumpling if kind == "dumpling" else start_redis
    master, replica = start(*THRESHOLD), start()
    try:
        with RawConnection(master.port) as m, RawConnection(replica.port) as r:
            assert r.call("REPLICAOF", "127.0.0.1", master.port) == b"+OK\r\n"
            deadline = time.monotonic() + 10
            while b"connected_slaves:1" not in m.call("INFO", "replication") or \
                    b"master_link_status:up" not in r.call("INFO", "replication"):
                assert time.monotonic() < deadline, "the replica never came online"
                time.sleep(0.05)
            assert m.call("CONFIG", "SET", "min-replicas-to-write", "1") == b"+OK\r\n"
            while m.call("SET", "probe", "1") != b"+OK\r\n":  # until the master counts the replica as good
                assert time.monotonic() < deadline + 10, "the replica never counted as good"
                time.sleep(0.05)
            with RawConnection(master.port) as runner:
                _send(runner, "EVAL", "redis.call('set', KEYS[1], 'script value') "
                      "while true do local info = redis.call('info', 'replication') "
                      "if string.match(info, 'connected_slaves:0') then redis.call('set', KEYS[1], info) break end "
                      "end return 1", 1, "x")
                deadline = time.monotonic() + 10
                while not m.call("PING").startswith(b"-BUSY"):  # (a connection made before the script)
                    assert time.monotonic() < deadline, "the script never became busy"
                    time.sleep(0.05)
                assert r.call("REPLICAOF", "NO", "ONE") == b"+OK\r\n"
                assert runner.read_reply() == b":1\r\n"
            assert b"connected_slaves:0" in m.call("GET", "x")
    finally:
        master.stop()
        replica.stop()


def test_second_runs_are_killed_and_unkillable_alike(busy_server: ServerProcess) -> None:
    """A script or function that ran before (dumpling: its next runs are set up in C by the
    commands' ScriptCommand handlers) goes busy, is killed, or is unkillable after a write."""
    port = busy_server.port
    spin_lib = ("#!lua name=spinlib\nredis.register_function('maybe', function(keys, args) "
                "if args[1] == 'spin' then while true do end end return 1 end)")
    writer = "redis.call('set', 'x', 'y') if ARGV[1] == 'spin' then while true do end end return 1"
    with RawConnection(port) as runner, RawConnection(port) as other:
        assert other.call("FUNCTION", "LOAD", spin_lib) == b"$7\r\nspinlib\r\n"
        sha = other.call("SCRIPT", "LOAD", writer).split(b"\r\n")[1].decode()
        assert runner.call("FCALL", "maybe", 0, "no") == b":1\r\n"
        _send(runner, "FCALL", "maybe", 0, "spin")
        _wait_busy(port)
        assert other.call("FUNCTION", "KILL") == b"+OK\r\n"
        assert runner.read_reply().startswith(b"-ERR Script killed by user with SCRIPT KILL... script: maybe")
        assert runner.call("EVALSHA", sha, 0, "no") == b":1\r\n"
        _send(runner, "EVALSHA", sha, 0, "spin")
        _wait_busy(port)
        assert other.call("SCRIPT", "KILL").startswith(b"-UNKILLABLE Sorry the script already executed write")
        other.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        assert other.is_closed(wait=10)
    busy_server.proc.wait(timeout=10)
