"""Starting, configuring and stopping the server like redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.servers import ROOT, RawConnection, free_port, redis_server_path, start_dumpling


def run_dumpling(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "dumpling", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_redis(*args: str) -> subprocess.CompletedProcess:
    path = redis_server_path()
    if path is None:
        pytest.skip("redis-server not installed")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize(
    "args",
    [
        ("--port", "0", "--bogus", "1"),
        ("--port", "0", "--maxmemory", "10x"),
        ("--port", "0", "--maxmemory-policy", "foo"),
        ("--port", "0", "--hz", "abc"),
        ("--port",),
        ("--port", "0", "--appendonly", "maybe"),
    ],
)
def test_fatal_config_errors_match_redis(args):
    ours = run_dumpling(*args)
    theirs = run_redis(*args)
    assert ours.returncode == theirs.returncode == 1
    # Same text but the version in the banner.
    assert ours.stderr.replace("Redis 7.4.0", "Redis X") == theirs.stderr.replace("Redis 7.0.15", "Redis X")


def test_config_file_errors(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port 7891\n# comment\nmaxmemory 10x\n")
    ours = run_dumpling(str(conf))
    theirs = run_redis(str(conf))
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.replace("Redis 7.4.0", "Redis X") == theirs.stderr.replace("Redis 7.0.15", "Redis X")
    missing = run_dumpling("/nonexistent.conf")
    assert missing.returncode == 1
    assert "Fatal error, can't open config file '/nonexistent.conf': No such file or directory" in missing.stderr


def test_version_and_help():
    out = run_dumpling("--version")
    assert out.returncode == 0 and out.stdout.startswith("Redis server v=7.4.0 ")
    out = run_dumpling("--help")
    assert out.returncode == 1 and "Usage:" in out.stderr


def test_config_file_and_options(tmp_path):
    port = free_port()
    conf = tmp_path / "dumpling.conf"
    conf.write_text(f'# a comment\nport {port}\nmaxmemory-policy "allkeys-lru"\nhash-max-ziplist-entries 100\n'
                    'save 900 1\nsave 300 10\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "dumpling", str(conf), "--hz", "20", "--databases", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    try:
        line = ""
        deadline = time.time() + 15
        while "Ready to accept connections" not in line and time.time() < deadline:
            line = proc.stdout.readline()
        assert "Ready to accept connections tcp" in line
        assert line.split(" ")[5] == "*"  # Redis log format: "pid:M dd Mon yyyy hh:mm:ss.mmm * message"
        with RawConnection(port) as conn:
            assert conn.call("CONFIG", "GET", "hz") == b"*2\r\n$2\r\nhz\r\n$2\r\n20\r\n"
            assert conn.call("CONFIG", "GET", "maxmemory-policy").endswith(b"allkeys-lru\r\n")
            assert conn.call("CONFIG", "GET", "hash-max-listpack-entries").endswith(b"$3\r\n100\r\n")
            assert conn.call("SELECT", "3") == b"+OK\r\n"
            assert conn.call("SELECT", "4") == b"-ERR DB index is out of range\r\n"
            assert str(conf).encode() in conn.call("INFO", "server")
            # The first save line replaces the default save points, the second adds one.
            assert conn.call("CONFIG", "GET", "save") == b"*2\r\n$4\r\nsave\r\n$12\r\n900 1 300 10\r\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "Received SIGTERM scheduling shutdown..." in out
        assert "ready to exit, bye bye" in out
        assert "Saving the final RDB snapshot before exiting." in out  # save points: SIGTERM saves
        assert (tmp_path / "dump.rdb").read_bytes().startswith(b"REDIS0010")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_shutdown_command_closes_without_reply():
    server = start_dumpling()
    try:
        with RawConnection(server.port) as conn:
            conn.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            assert conn.read_all(wait=2) == b""
        assert server.proc.wait(10) == 0
        assert "User requested shutdown..." in server.log()
    finally:
        server.stop()


def test_sigint_shuts_down_gracefully():
    server = start_dumpling()
    try:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(10) == 0
        assert "Received SIGINT scheduling shutdown..." in server.log()
    finally:
        server.stop()


def test_logfile_and_loglevel(tmp_path):
    log = tmp_path / "d.log"
    server = start_dumpling("--logfile", str(log), "--loglevel", "warning")
    try:
        with RawConnection(server.port) as conn:
            assert conn.call("PING") == b"+PONG\r\n"
            assert conn.call("CONFIG", "SET", "logfile", "x") == (
                b"-ERR CONFIG SET failed (possibly related to argument 'logfile') - can't set immutable config\r\n"
            )
    finally:
        server.stop()
    text = log.read_text()
    assert "Ready to accept connections" not in text  # a notice, filtered by loglevel warning
    assert "bye bye" in text


def test_python_dash_m_and_console_script_agree():
    out = run_dumpling("-v")
    assert out.returncode == 0


def test_logo_carries_pid_and_port_for_log_watchers() -> None:
    """With always-show-logo (Redis's test framework sets it) the startup log has the
    " PID: <pid>" and "Port:" lines before "Server initialized", as Redis's logo has."""
    server = start_dumpling("--always-show-logo", "yes")
    try:
        log = server.wait_log("Ready to accept connections")
        pid = server.proc.pid
        assert f" PID: {pid}\n" in log and f"Port: {server.port}\n" in log
        assert log.index(" PID: ") < log.index("Server initialized")
    finally:
        server.stop()
    plain = start_dumpling()
    try:
        assert f"Running mode=standalone, port={plain.port}." in plain.wait_log("Ready to accept connections")
    finally:
        plain.stop()


def test_shutdown_on_signal_settings(pair, tmp_path) -> None:
    """shutdown-on-sigterm/-sigint: SHUTDOWN's options for the signals (CONFIG as Redis's),
    and SIGTERM with `save` saves although no save point is configured."""
    for value in ("save now", "now save", "nosave force", "default", "save nosave", "bad", "SAVE"):
        pair.same("CONFIG", "SET", "shutdown-on-sigterm", value)
        pair.same("CONFIG", "GET", "shutdown-on-sigterm")
    pair.same("CONFIG", "SET", "shutdown-on-sigterm", "default")
    pair.same("CONFIG", "GET", "propagation-error-behavior")
    pair.same("CONFIG", "SET", "propagation-error-behavior", "bad")
    server = start_dumpling("--dir", str(tmp_path), "--shutdown-on-sigterm", "save")
    try:
        with server.raw() as conn:
            assert conn.call("SET", "kept", "1") == b"+OK\r\n"
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=10)
    finally:
        server.stop()
    assert (tmp_path / "dump.rdb").exists()
