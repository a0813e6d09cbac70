"""The image's entrypoint and HEALTHCHECK (docker/), run on the host: no Docker needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, RawConnection, free_port, start_dumpling, wait_for_port

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"
REDIS_CLI = ROOT / "docker" / "redis-cli.py"


def _clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_") and k != "ALLOW_EMPTY_PASSWORD"}
    return dict(env, **variables)


def run_entrypoint(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """The entrypoint with a stand-in dumpling-server that prints the argv it is given."""
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "dumpling-server").write_text('#!/bin/sh\nfor a in dumpling-server "$@"; do echo "$a"; done\n')
    (stub / "dumpling-server").chmod(0o755)
    env = _clean_env(PATH=f"{stub}{os.pathsep}{os.environ['PATH']}", **variables)
    return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=env)


def entrypoint(tmp_path: Path, *args: str, **variables: str) -> list[str]:
    """The argv the entrypoint execs."""
    out = run_entrypoint(tmp_path, *args, **variables)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_entrypoint_takes_what_the_official_redis_image_takes(tmp_path: Path) -> None:
    everywhere = ["--bind", "0.0.0.0", "--protected-mode", "no"]
    assert entrypoint(tmp_path) == ["dumpling-server", *everywhere]
    assert entrypoint(tmp_path, "dumpling-server") == ["dumpling-server", *everywhere]
    assert entrypoint(tmp_path, "--port", "7000") == ["dumpling-server", "--port", "7000", *everywhere]
    # testcontainers' RedisContainer(password=...) runs "redis-server --requirepass <password>".
    assert entrypoint(tmp_path, "redis-server", "--requirepass", "a b") == [
        "dumpling-server", "--requirepass", "a b", *everywhere]
    # bind / protected-mode chosen by the arguments or the config file are left alone.
    assert entrypoint(tmp_path, "--bind", "10.0.0.1") == [
        "dumpling-server", "--bind", "10.0.0.1", "--protected-mode", "no"]
    conf = tmp_path / "my.conf"
    conf.write_text("port 7000\n  bind 127.0.0.1\nprotected-mode yes\n")
    assert entrypoint(tmp_path, str(conf)) == ["dumpling-server", str(conf)]
    # Anything else runs as given.
    assert entrypoint(tmp_path, "echo", "hello") == ["hello"]


@pytest.mark.parametrize("args", [(), ("--requirepass", "s3cret")])
def test_healthcheck_pings_where_the_server_listens(args: tuple[str, ...]) -> None:
    server = start_dumpling(*args)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        check = subprocess.run([sys.executable, str(HEALTHCHECK), str(server.proc.pid)], capture_output=True,
                               text=True, env=env, cwd=server.dir, timeout=20)
        assert check.returncode == 0, check.stdout + check.stderr
        if args == ("--requirepass", "s3cret"):
            # A password changed at run time: the configured one is refused, so unhealthy.
            with server.raw() as conn:
                conn.call("AUTH", "s3cret")
                conn.call("CONFIG", "SET", "requirepass", "other")
            check = subprocess.run([sys.executable, str(HEALTHCHECK), str(server.proc.pid)], capture_output=True,
                                   env=env, cwd=server.dir, timeout=20)
            assert check.returncode == 1
    finally:
        server.stop()


EVERYWHERE = ["--bind", "0.0.0.0", "--protected-mode", "no"]


def test_entrypoint_takes_redis_stack_and_bitnami_variables(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file\n")
    # REDIS_ARGS (redis-stack) and REDIS_EXTRA_FLAGS (Bitnami): options split at white space.
    assert entrypoint(tmp_path, REDIS_ARGS="--maxmemory 100mb  --appendonly yes") == [
        "dumpling-server", "--maxmemory", "100mb", "--appendonly", "yes", *EVERYWHERE]
    # Bitnami's named variables, each one the directive it stands for.
    assert entrypoint(tmp_path, REDIS_PASSWORD="s e*cret", REDIS_PORT_NUMBER="7000", REDIS_AOF_ENABLED="yes",
                      REDIS_RDB_POLICY="900#1 60#1000", REDIS_DISABLE_COMMANDS="FLUSHDB, FLUSHALL",
                      REDIS_ACLFILE="/data/users.acl", REDIS_IO_THREADS="2") == [
        "dumpling-server", "--port", "7000", "--requirepass", "s e*cret", "--appendonly", "yes",
        "--save", "900 1 60 1000", "--aclfile", "/data/users.acl", "--io-threads", "2",
        "--rename-command", "FLUSHDB", "", "--rename-command", "FLUSHALL", "", *EVERYWHERE]
    assert entrypoint(tmp_path, REDIS_PASSWORD="x", REDIS_PASSWORD_FILE=str(tmp_path / "secret"),
                      REDIS_RDB_POLICY_DISABLED="yes", REDIS_RDB_POLICY="900#1") == [
        "dumpling-server", "--requirepass", "from-file", "--save", "", *EVERYWHERE]
    assert entrypoint(tmp_path, REDIS_REPLICATION_MODE="replica", REDIS_MASTER_HOST="primary",
                      REDIS_PASSWORD="pw") == [
        "dumpling-server", "--requirepass", "pw", "--replicaof", "primary", "6379", "--masterauth", "pw",
        *EVERYWHERE]
    # The command line comes last (it wins); a config file stays first; bind chosen by the
    # environment is left alone.
    conf = tmp_path / "my.conf"
    conf.write_text("port 7000\n")
    assert entrypoint(tmp_path, str(conf), "--port", "7001", REDIS_PORT_NUMBER="7002",
                      REDIS_ARGS="--bind 127.0.0.1") == [
        "dumpling-server", str(conf), "--port", "7002", "--bind", "127.0.0.1", "--port", "7001",
        "--protected-mode", "no"]
    # REDIS_ARGS is not expanded as file names.
    assert entrypoint(tmp_path, REDIS_ARGS="--save *") == ["dumpling-server", "--save", "*", *EVERYWHERE]


def test_entrypoint_refuses_what_it_cannot_honour(tmp_path: Path) -> None:
    out = run_entrypoint(tmp_path, REDIS_TLS_ENABLED="yes")
    assert out.returncode == 1 and "no TLS" in out.stderr and not out.stdout
    out = run_entrypoint(tmp_path, REDIS_REPLICATION_MODE="replica")
    assert out.returncode == 1 and "REDIS_MASTER_HOST" in out.stderr
    out = run_entrypoint(tmp_path, REDIS_PASSWORD_FILE=str(tmp_path / "missing"))
    assert out.returncode == 1 and "cannot read" in out.stderr
    out = run_entrypoint(tmp_path, ALLOW_EMPTY_PASSWORD="yes")
    assert out.returncode == 0 and "ALLOW_EMPTY_PASSWORD has no effect" in out.stderr


def test_entrypoint_starts_a_server_configured_by_the_environment(tmp_path: Path) -> None:
    """The real dumpling-server, started the way the image starts it, with its settings from
    the environment; the HEALTHCHECK finds it through the same arguments."""
    port = free_port()
    env = _clean_env(REDIS_PORT_NUMBER=str(port), REDIS_PASSWORD="s3cret", REDIS_DISABLE_COMMANDS="FLUSHALL",
                     REDIS_ARGS="--bind 127.0.0.1 --maxmemory 10mb --save",
                     PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # "--save" alone at the end of REDIS_ARGS: the empty value comes from the command line.
    proc = subprocess.Popen(["sh", str(ENTRYPOINT), "--save", ""], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        with RawConnection(port) as conn:
            assert conn.call("PING").startswith(b"-NOAUTH")
            assert conn.call("AUTH", "s3cret") == b"+OK\r\n"
            assert conn.call("FLUSHALL").startswith(b"-ERR unknown command 'FLUSHALL'")
            assert conn.call("CONFIG", "GET", "maxmemory") == b"*2\r\n$9\r\nmaxmemory\r\n$8\r\n10485760\r\n"
            assert conn.call("CONFIG", "GET", "protected-mode").endswith(b"$2\r\nno\r\n")
        check = subprocess.run([sys.executable, str(HEALTHCHECK), str(proc.pid)], capture_output=True, text=True,
                               env=env, cwd=tmp_path, timeout=20)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def _cli(program: list[str], *args: str) -> tuple[str, str, int]:
    out = subprocess.run([*program, *args], capture_output=True, text=True, timeout=20)
    return out.stdout, out.stderr, out.returncode


@pytest.mark.parametrize("args", [
    ("ping",), ("get", "cli:string"), ("get", "cli:missing"), ("lrange", "cli:list", "0", "-1"),
    ("hgetall", "cli:missing"), ("nosuch", "x"), ("-n", "1", "ping"), ("-a", "pw", "ping"),
    ("--no-auth-warning", "-a", "pw", "ping"), ("echo", "two words"),
])
def test_image_redis_cli_answers_as_redis_cli(dumpling_server, args: tuple[str, ...]) -> None:
    """The image's stand-in redis-cli (testcontainers' RedisContainer waits on `redis-cli ping`
    inside the container) prints and exits as the real redis-cli does without a terminal."""
    with dumpling_server.raw() as conn:
        conn.call("SET", "cli:string", "hello")
        conn.call("RPUSH", "cli:list", "a", "b")
    port = ("-p", str(dumpling_server.port))
    assert _cli([sys.executable, str(REDIS_CLI)], *port, *args) == _cli(["redis-cli"], *port, *args)


def test_image_redis_cli_with_a_password_and_without_a_server(tmp_path: Path) -> None:
    server = start_dumpling("--requirepass", "s3cret")
    try:
        port = ("-p", str(server.port))
        for args in (("-a", "s3cret", "ping"), ("ping",), ("--user", "default", "--pass", "s3cret", "ping")):
            assert _cli([sys.executable, str(REDIS_CLI)], *port, *args) == _cli(["redis-cli"], *port, *args)
    finally:
        server.stop()
    stdout, stderr, code = _cli([sys.executable, str(REDIS_CLI)], "-p", str(free_port()), "ping")
    assert (stdout, code) == ("", 1) and stderr.startswith("Could not connect to Redis at 127.0.0.1:")

    # SHUTDOWN: the connection closing is the answer.
    for program in ([sys.executable, str(REDIS_CLI)], ["redis-cli"]):
        server = start_dumpling()
        try:
            assert _cli(program, "-p", str(server.port), "shutdown", "nosave") == ("", "", 0)
            assert server.proc.wait(10) == 0
        finally:
            server.stop()
