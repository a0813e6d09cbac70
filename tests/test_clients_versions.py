"""Older redis-py releases (5.x, 6.x, 7.x) against dumpling, each in its own install dir.

redis-py 5–7 open connections with CLIENT SETINFO (and SETNAME/SELECT); 8 starts with
HELLO 3 (covered by test_clients.py with the installed version)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VERSIONS = ["5.0.8", "6.4.0", "7.0.1"]
CACHE = Path(os.environ.get("DUMPLING_TEST_CACHE", "/tmp/dumpling-test-cache"))

SCRIPT = r"""
import sys, redis, asyncio
port = int(sys.argv[1])
for protocol in (2, 3):
    r = redis.Redis(port=port, protocol=protocol, client_name="old", db=1)
    assert r.ping() is True
    assert r.set("v", "1") is True and r.get("v") == b"1"
    with r.pipeline() as p:
        p.incr("n").incr("n")
        assert p.execute() == [1, 2]
    assert r.delete("v", "n") == 2
    r.close()

async def main():
    import redis.asyncio as aioredis
    a = aioredis.Redis(port=port)
    assert await a.set("x", "y") and await a.get("x") == b"y"
    await a.delete("x")
    await a.aclose() if hasattr(a, "aclose") else await a.close()
asyncio.run(main())
print("ok", redis.__version__)
"""


def _install(version: str) -> Path:
    target = CACHE / f"redis-py-{version}"
    if not (target / "redis").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "--target", str(target), f"redis=={version}"], check=True, timeout=180)
    return target


@pytest.mark.parametrize("version", VERSIONS)
def test_old_redis_py(dumpling_server, version):
    try:
        target = _install(version)
    except subprocess.CalledProcessError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"cannot install redis=={version} here")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(dumpling_server.port)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok {version}"
