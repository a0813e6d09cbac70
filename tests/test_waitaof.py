"""WAITAOF's local count as Redis 7.4 keeps it (``fsynced_reploff``): a write counts once an
fsync covered it - at once under ``appendfsync always``, within a second under ``everysec``,
never under ``no`` -; turning the AOF off answers waiting clients with an error.  WAITAOF came
with Redis 7.2, so the expected replies were recorded from Redis 7.4.1 running this same
sequence (unit/wait's "WAITAOF local ..." tests)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.servers import RawConnection, ServerProcess, encode_command, start_dumpling, wait_blocked
from tests.test_propagation_forms import ReplicaStream

AOF_OFF = b"-ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.\r\n"


@pytest.fixture
def master(tmp_path) -> Iterator[ServerProcess]:
    port = os.environ.get("DUMPLING_WAITAOF_PORT")  # (to record from another server)
    if port:
        yield type("Remote", (), {"port": int(port)})()  # type: ignore[misc]
        return
    server = start_dumpling("--dir", str(tmp_path))
    try:
        yield server
    finally:
        server.stop()


def _rewritten(conn: RawConnection) -> bool:
    info = conn.call("INFO", "persistence")
    return b"aof_rewrite_in_progress:0" in info and b"aof_rewrite_scheduled:0" in info


def test_waitaof_local_follows_fsyncs(master: ServerProcess) -> None:
    stream = ReplicaStream(master.port)  # a replica (it never ACKs): the backlog exists and offsets move
    try:
        with RawConnection(master.port) as conn, RawConnection(master.port) as waiting:
            assert conn.call("CONFIG", "SET", "appendonly", "yes") == b"+OK\r\n"
            deadline = time.monotonic() + 30
            while not _rewritten(conn) and time.monotonic() < deadline:
                time.sleep(0.05)
            conn.call("CONFIG", "SET", "appendfsync", "no")
            conn.call("INCR", "foo")
            assert conn.call("WAITAOF", 1, 0, 50) == b"*2\r\n:0\r\n:0\r\n"  # no fsync: the timeout answers
            conn.call("CONFIG", "SET", "appendfsync", "everysec")
            conn.call("INCR", "foo")
            # the next second's fsync answers (within the connection's 10 s timeout: no time bound)
            assert conn.call("WAITAOF", 1, 0, 0) == b"*2\r\n:1\r\n:0\r\n"
            conn.call("CONFIG", "SET", "appendfsync", "always")
            conn.call("INCR", "foo")
            assert conn.call("WAITAOF", 1, 0, 0) == b"*2\r\n:1\r\n:0\r\n"
            conn.call("CONFIG", "SET", "appendfsync", "no")
            waiting.call("INCR", "foo")
            waiting.send(encode_command("WAITAOF", 1, 0, 0))
            wait_blocked(conn)
            assert b"blocked_clients:1\r\n" in conn.call("INFO", "clients")
            conn.call("CONFIG", "SET", "appendonly", "no")  # releases the waiting client with an error
            assert waiting.read_reply() == AOF_OFF
            assert conn.call("WAITAOF", 1, 0, 0) == AOF_OFF
            conn.call("CONFIG", "SET", "appendfsync", "everysec")
    finally:
        stream.close()


def test_waitaof_without_replicas_counts_fsyncs_too(tmp_path) -> None:
    """With no backlog, Redis still moves master_repl_offset by one per propagated command so
    WAITAOF can compare it with the fsynced offset (unit/wait "WAITAOF local copy before fsync",
    which runs on a server without replicas)."""
    server = start_dumpling("--dir", str(tmp_path), "--appendonly", "yes")
    try:
        with RawConnection(server.port) as conn:
            conn.call("CONFIG", "SET", "appendfsync", "no")
            conn.call("INCR", "foo")
            assert conn.call("WAITAOF", 1, 0, 50) == b"*2\r\n:0\r\n:0\r\n"
            conn.call("CONFIG", "SET", "appendfsync", "everysec")
            conn.call("INCR", "foo")
            assert conn.call("WAITAOF", 1, 0, 0) == b"*2\r\n:1\r\n:0\r\n"
            assert b"master_repl_offset:2\r\n" in conn.call("INFO", "replication")
    finally:
        server.stop()
