"""Process-level settings as redis-server applies them: ``unixsocket``/``unixsocketperm``,
``daemonize`` and ``pidfile``; each checked on dumpling and on the real server alike."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
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
    # A path longer than CLIENT LIST's 77-byte address text (Redis's NET_ADDR_STR_LEN buffer) and
    # shorter than a unix socket's 107: the address loses its end, ":0" included.
    short = Path(tempfile.mkdtemp(prefix="us", dir="/tmp"))
    sock = short / ("s" * (89 - len(str(short))))
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
        shown = f"{sock}:0"[:77]
        assert len(str(sock)) == 90 and f" addr={shown} laddr={shown} " in f" {line}", line
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
    short.rmdir()


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


def read_pid(path: Path) -> int:
    text = path.read_text()
    assert re.fullmatch(r"\d+\n", text), text  # "%d\n", as Redis writes it
    return int(text)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("kind", ["dumpling", "redis"])
def test_daemonize_detaches_and_writes_the_pidfile(kind: str, tmp_path: Path) -> None:
    port = free_port()
    pidfile, logfile = tmp_path / "server.pid", tmp_path / "server.log"
    # The started process returns at once with success; its output pipe is left behind
    # (the daemon's stdio is /dev/null), so run() returns too.
    started = subprocess.run(
        server_argv(kind, "--port", str(port), "--daemonize", "yes", "--pidfile", str(pidfile),
                    "--logfile", str(logfile), "--save", "", "--dir", str(tmp_path)),
        capture_output=True, text=True, timeout=15, env=ENV,
    )
    assert started.returncode == 0 and started.stdout == started.stderr == ""
    wait_until(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
    pid = read_pid(pidfile)
    try:
        assert alive(pid)
        assert os.getsid(pid) != os.getsid(0)  # a session of its own: no controlling terminal
        wait_until(lambda: redis_cli("-p", str(port), "ping").strip() == "PONG")
        assert redis_cli("-p", str(port), "config", "get", "daemonize").split() == ["daemonize", "yes"]
        assert redis_cli("-p", str(port), "config", "get", "pidfile").split() == ["pidfile", str(pidfile)]
        assert redis_cli("-p", str(port), "info", "server").count(f"process_id:{pid}\n") == 1
        redis_cli("-p", str(port), "shutdown", "nosave")
        wait_until(lambda: not alive(pid))
    finally:
        if alive(pid):
            os.kill(pid, 9)
    assert not pidfile.exists()
    log = logfile.read_text()
    assert "Removing the pid file." in log


@pytest.mark.parametrize("kind", ["dumpling", "redis"])
def test_pidfile_without_daemonize(kind: str, tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "fg.pid"
    proc = subprocess.Popen(
        server_argv(kind, "--port", str(port), "--pidfile", str(pidfile), "--save", "", "--dir", str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
    )
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
        assert read_pid(pidfile) == proc.pid
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Removing the pid file." in output
    assert not pidfile.exists()


@pytest.mark.parametrize("kind", ["dumpling", "redis"])
def test_unwritable_pidfile_is_only_a_warning(kind: str, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        server_argv(kind, "--port", str(port), "--pidfile", str(tmp_path / "no" / "such.pid"), "--save", "",
                    "--dir", str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
    )
    try:
        wait_until(lambda: redis_cli("-p", str(port), "ping").strip() == "PONG")
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if kind == "dumpling":  # Redis 7.4's warning (7.0 says nothing)
        assert "Failed to write PID file: No such file or directory" in output


def test_info_lists_the_unix_listener(tmp_path: Path) -> None:
    """As Redis 7.4.1 shows them: no tcp listener on port 0, the unix one as listener1."""
    sock = tmp_path / "i.sock"
    proc = subprocess.Popen(server_argv("dumpling", "--port", "0", "--unixsocket", str(sock), "--save", ""),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        wait_until(lambda: unix_ping(sock))
        info = redis_cli("-s", str(sock), "info", "server")
        assert "tcp_port:0\n" in info and "listener0:" not in info
        assert f"listener1:name=unix,bind={sock}\n" in info
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.parametrize("kind", ["dumpling", "redis"])
def test_relative_pidfile_and_socket_are_in_dir(kind: str, tmp_path: Path) -> None:
    """Redis chdir()s to ``dir`` while reading its configuration: relative paths (pidfile, unix
    socket, log file) land there."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    proc = subprocess.Popen(
        server_argv(kind, "--port", "0", "--dir", str(data), "--pidfile", "rel.pid", "--unixsocket", "rel.sock",
                    "--logfile", "rel.log", "--save", ""),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=elsewhere,
    )
    try:
        wait_until(lambda: unix_ping(data / "rel.sock"))
        wait_until(lambda: (data / "rel.pid").exists())
        assert read_pid(data / "rel.pid") == proc.pid
        assert "oO0OoO0OoO0Oo" in (data / "rel.log").read_text()
        assert not list(elsewhere.iterdir())
    finally:
        proc.terminate()
        proc.wait(15)
    assert not (data / "rel.pid").exists() and not (data / "rel.sock").exists()
