"""Script throughput of dumpling against real Redis, measured by redis-benchmark in one run.

The workloads the scripting issue names: EVALSHA of a small script that makes two
redis.call (INCR then GET of a random key) and FCALL of the same body registered as
a function; plus EVAL of the script's text (the cache lookup by body) for
completeness.  50 clients, pipeline 1 and 16, alternating rounds; prints requests per
second and the dumpling/Redis ratio (median of the rounds).

usage: python bench/scripting.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import ServerProcess, start_dumpling, start_redis  # noqa: E402

BODY = "redis.call('incr', KEYS[1]) return redis.call('get', KEYS[1])"
LIBRARY = "#!lua name=benchlib\nredis.register_function('incr_get', function(keys, args) " \
          "redis.call('incr', keys[1]) return redis.call('get', keys[1]) end)"


def prepare(server: ServerProcess) -> str:
    with server.raw() as conn:
        conn.call("FUNCTION", "FLUSH")
        conn.call("FUNCTION", "LOAD", LIBRARY)
        sha = conn.call("SCRIPT", "LOAD", BODY).split(b"\r\n")[1].decode()
    return sha


def run(port: int, requests: int, pipeline: int, *command: str) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests), "-P", str(pipeline), "-r", "10000",
         "-q", "--csv", *command],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    for line in out.splitlines():
        m = re.match(r'"[^"]*","([0-9.]+)"', line)
        if m:
            return float(m.group(1))
    raise RuntimeError(f"no result from redis-benchmark: {out!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servers = {"redis": start_redis(), "dumpling": start_dumpling()}
    try:
        shas = {name: prepare(server) for name, server in servers.items()}
        assert shas["redis"] == shas["dumpling"]
        workloads = {
            "EVALSHA": ("EVALSHA", shas["redis"], "1", "key:__rand_int__"),
            "FCALL": ("FCALL", "incr_get", "1", "key:__rand_int__"),
            "EVAL": ("EVAL", BODY, "1", "key:__rand_int__"),
        }
        print(f"redis-benchmark -c 50 -n {args.requests} -r 10000, median of {args.rounds} alternating rounds")
        print(f"{'workload':10} {'pipeline':>8} {'redis rps':>12} {'dumpling rps':>13} {'ratio':>7}")
        for pipeline in (1, 16):
            for label, command in workloads.items():
                rps: dict[str, list[float]] = {name: [] for name in servers}
                for _ in range(args.rounds):
                    for name, server in servers.items():
                        rps[name].append(run(server.port, args.requests, pipeline, *command))
                redis_rps = statistics.median(rps["redis"])
                ours = statistics.median(rps["dumpling"])
                print(f"{label:10} {pipeline:>8} {redis_rps:>12,.0f} {ours:>13,.0f} {ours / redis_rps:>7.2f}")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
