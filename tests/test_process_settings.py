"""Process-level settings as redis-server applies them: ``unixsocket``/``unixsocketperm``,
``daemonize`` and ``pidfile``; each checked on dumpling and on the real server alike."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port, require_redis

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def server_argv(kind: str, *args: str) -> list[str]:
    if kind == "dumpling":
        return [sys.executable, "-m", "dumpling", *args]
    return [require_redis(), *args]


def redis_cli(*args: str) -> str:
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli not installed")
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=10).stdout


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def unix_ping(path: Path) -> bool:
    return path.exists() and redis_cli("-s", str(path), "ping").strip() == "PONG"


@pytest.mark.parametrize("kind", ["dumpling", "redis"])
def test_unix_socket_listens_with_permissions_and_is_removed(kind: str, tmp_path: Path) -> None:
    sock = tmp_path / "server.sock"
    proc = subprocess.Popen(
        server_argv(kind, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "750", "--save", "",
                    "--dir", str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV, text=True,
    )
    try:
        wait_until(lambda: unix_ping(sock))
        assert stat.S_IMODE(sock.stat().st_mode) == 0o750  # read as octal
        assert redis_cli("-s", str(sock), "config", "get", "unixsocketperm").split() == ["unixsocketperm", "750"]
        assert redis_cli("-s", str(sock), "set", "k", "v").strip() == "OK"
        assert redis_cli("-s", str(sock), "get", "k").strip() == "v"
        line = redis_cli("-s", str(sock), "client", "list")
        assert re.search(rf"addr={re.escape(str(sock))}:0 laddr={re.escape(str(sock))}:0 ", line), line
        assert " flags=U " in line
        redis_cli("-s", str(sock), "shutdown", "nosave")
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "Removing the unix socket file." in output
    assert not sock.exists()


def test_unix_socket_next_to_tcp(tmp_path: Path) -> None:
    """Both listeners serve the same dataset; a stale socket file is replaced."""
    sock = tmp_path / "d.sock"
    sock.write_text("stale")
    port = free_port()
    proc = subprocess.Popen(
        server_argv("dumpling", "--port", str(port), "--unixsocket", str(sock), "--save", ""),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )
    try:
        wait_until(lambda: sock.is_socket() and unix_ping(sock))
        assert redis_cli("-p", str(port), "set", "shared", "1").strip() == "OK"
        assert redis_cli("-s", str(sock), "get", "shared").strip() == "1"
        tcp_line = redis_cli("-p", str(port), "client", "list")
        assert "addr=127.0.0.1:" in tcp_line and " flags=N " in tcp_line
    finally:
        proc.terminate()
        proc.wait(15)
    assert not sock.exists()


@pytest.mark.parametrize("kind", ["dumpling", "redis"])
def test_nowhere_to_listen(kind: str, tmp_path: Path) -> None:
    run = subprocess.run(server_argv(kind, "--port", "0", "--save", "", "--dir", str(tmp_path)),
                         capture_output=True, text=True, timeout=15, env=ENV)
    assert run.returncode == 1
    assert "Configured to not listen anywhere, exiting." in run.stdout
