"""The image's entrypoint and HEALTHCHECK (docker/), run on the host: no Docker needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, start_dumpling

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"


def entrypoint(tmp_path: Path, *args: str) -> list[str]:
    """The argv the entrypoint execs, with a stand-in dumpling-server that prints it."""
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "dumpling-server").write_text('#!/bin/sh\nfor a in dumpling-server "$@"; do echo "$a"; done\n')
    (stub / "dumpling-server").chmod(0o755)
    env = dict(os.environ, PATH=f"{stub}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, check=True)
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
