"""node-redis's client-side cache (v5 ``clientSideCache``: RESP3 and CLIENT TRACKING) against
dumpling, compared step by step with the same script against real Redis.

node-redis is installed once into a temporary directory named after its version and reused;
without node, npm or the npm registry the test is skipped, saying which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.servers import ROOT

NODE_REDIS = "5.12.4"
SCRIPT = ROOT / "tests" / "js" / "node_redis_cache.js"


def node_redis() -> Path:
    """node_modules holding node-redis NODE_REDIS (installed on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run node-redis")
    home = Path(tempfile.gettempdir()) / f"dumpling-node-redis-{NODE_REDIS}"
    if (home / "node_modules" / "redis" / "package.json").exists():
        return home / "node_modules"
    staging = Path(tempfile.mkdtemp(prefix=home.name + "-", dir=home.parent))
    try:
        out = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(staging),
                              f"redis@{NODE_REDIS}"], capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"npm install redis@{NODE_REDIS} timed out (is the npm registry reachable?)")
    if out.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"npm could not install redis@{NODE_REDIS}: {out.stderr.strip()[-300:]}")
    try:
        staging.rename(home)  # atomic: a concurrent run either wins or finds it there
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return home / "node_modules"


def run_script(modules: Path, port: int) -> dict:
    out = subprocess.run(["node", str(SCRIPT), str(port)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, NODE_PATH=str(modules)))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_node_redis_client_side_cache_as_with_redis(dumpling_server, redis_server):
    modules = node_redis()
    ours = run_script(modules, dumpling_server.port)
    theirs = run_script(modules, redis_server.port)
    assert ours == theirs
    # And what that means, so that both being wrong alike cannot pass.
    steps = {s["name"]: s for s in ours["steps"]}
    assert steps["second GET: a hit"]["hits"] == 1
    assert steps["GET after another client's SET"]["value"] == "v2"
    assert steps["HGETALL still cached"]["hits"] == steps["MGET after that SET"]["hits"] + 1
    assert steps["GET after FLUSHALL"]["value"] is None
    assert steps["HGETALL after FLUSHALL"]["value"] == {}
    assert ours["tracking"]["flags"] == ["on"]
