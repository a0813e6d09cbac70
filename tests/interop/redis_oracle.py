"""A real ``redis-server`` as the oracle for payload interop tests: start it on a free loopback port, stop it.

Missing ``redis-server`` skips the calling test, except under ``CI=true`` where it
is a failure: the interop tests are the proof of byte compatibility and must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis

# RDB version written into DUMP footers by each Redis release line (spec §1.3).
RDB_VERSION_BY_RELEASE = {
    (2, 6): 6,
    (2, 8): 6,
    (3, 0): 6,
    (3, 2): 7,
    (4, 0): 8,
    (5, 0): 9,
    (6, 0): 9,
    (6, 2): 9,
    (7, 0): 10,
    (7, 2): 11,
    (7, 4): 12,
}


def require_redis_server() -> str:
    """Path of redis-server, or skip (fail under CI=true)."""
    path = shutil.which("redis-server")
    if path:
        return path
    message = "redis-server is not installed (apt-get install -y redis-server redis-tools)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisOracle:
    """One redis-server process with a redis-py client (RESP3, bytes), plus ``raw`` for callback-free replies."""

    def __init__(self, *extra_args: str) -> None:
        path = require_redis_server()
        self.dir = tempfile.mkdtemp(prefix="redis-oracle-")
        self.log_path = os.path.join(self.dir, "redis.log")
        last_error = ""
        for _ in range(3):  # a freshly picked free port can be taken before we bind it
            self.port = _free_port()
            argv = [
                path,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--enable-debug-command", "yes",
                "--dir", self.dir,
                "--logfile", self.log_path,
                *extra_args,
            ]  # fmt: skip
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._wait_ready():
                break
            last_error = self._stop_process()
        else:
            raise RuntimeError(f"redis-server did not start: {last_error}")
        self.client = redis.Redis(port=self.port, protocol=3)
        version = self.client.info("server")["redis_version"]
        self.version = tuple(int(part) for part in str(version).split(".")[:2])
        self.rdb_version = RDB_VERSION_BY_RELEASE.get(self.version, 12)

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _stop_process(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        if self.proc.stderr:
            self.proc.stderr.close()
        return err

    def raw(self, *args: object) -> object:
        """A command's reply as parsed RESP3, without redis-py's per-command reshaping."""
        conn = self.client.connection_pool.get_connection()
        try:
            conn.send_command(*args)
            return conn.read_response()
        finally:
            self.client.connection_pool.release(conn)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.client.close()
        self._stop_process()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
