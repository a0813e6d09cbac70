"""Live resharding of a dumpling cluster while a client reads and writes, at small scale:
the SETSLOT / GETKEYSINSLOT / MIGRATE ... KEYS / SETSLOT NODE sequence driven by
``examples/cluster_reshard.py``, and the same job done by ``redis-cli --cluster reshard``.
No key may be lost, every value must be the last one written, and every key must end
up on the node that owns its slot.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from types import ModuleType

import pytest
import redis
from redis.cluster import RedisCluster

from dumpling.cluster.layout import split_slots
from dumpling.cluster.slots import key_slot
from tests.fuzzing import scaled
from tests.servers import ROOT, ServerProcess
from tests.test_cluster import start_dumpling_cluster, stop_cluster


def _example() -> ModuleType:
    path = ROOT / "examples" / "cluster_reshard.py"
    spec = importlib.util.spec_from_file_location("cluster_reshard_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_reshard_under_traffic_loses_nothing() -> None:
    result = _example().run(keys=3000, slots=80, batch=20, quiet=True)
    assert result["problems"] == []
    assert result["moved"] > 100 and result["reads"] > 0 and result["writes"] > 0
    assert result["redirections"]["MOVED"] > 0  # type: ignore[index]


def test_redis_cli_reshard_of_a_dumpling_cluster() -> None:
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli not installed")
    example = _example()
    moving = scaled(600, floor=320)  # slots 0..moving-1, which must include slot 313 of {tag8}
    nodes = start_dumpling_cluster([[r] for r in split_slots(3)])
    try:
        rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
        names = [f"k{i}" for i in range(1500)] + [f"{{tag8}}:{i}" for i in range(200)]  # {tag8} -> slot 313
        assert key_slot(b"tag8") == 313
        expected = {name: f"{name}:0" for name in names}
        pipe = rc.pipeline()
        for name, value in expected.items():
            pipe.set(name, value)
        pipe.execute()
        rc.close()
        hot = [n for n in names if key_slot(n.encode()) < moving]
        traffic = example.Traffic(nodes[0].port, names, hot, expected=expected)
        traffic.start()
        target_id = nodes[1].node_id  # type: ignore[attr-defined]
        source_id = nodes[0].node_id  # type: ignore[attr-defined]
        out = subprocess.run([cli, "--cluster", "reshard", f"127.0.0.1:{nodes[0].port}", "--cluster-from", source_id,
                              "--cluster-to", target_id, "--cluster-slots", str(moving), "--cluster-yes",
                              "--cluster-pipeline", "25"], capture_output=True, text=True, timeout=120)
        traffic.stop()
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr
        assert "Moving slot 313 from" in out.stdout
        check = subprocess.run([cli, "--cluster", "check", f"127.0.0.1:{nodes[2].port}"], capture_output=True,
                               text=True, timeout=30)
        assert "[OK] All nodes agree about slots configuration." in check.stdout
        assert "[OK] All 16384 slots covered." in check.stdout
        assert f"slots:[0-{moving - 1}],[5461-10922]" in check.stdout
        problems = traffic.errors + _check(nodes, traffic.expected)
        assert problems == []
    finally:
        stop_cluster(nodes)


class _Wrapped:
    """What the example's ``check`` needs of a node: its port and a client."""

    def __init__(self, node: ServerProcess) -> None:
        self.port = node.port
        self.client = redis.Redis(port=node.port, decode_responses=True)


def _check(nodes: list[ServerProcess], expected: dict[str, str]) -> list[str]:
    wrapped = [_Wrapped(n) for n in nodes]
    try:
        return _example().check(wrapped, expected)
    finally:
        for w in wrapped:
            w.client.close()
