"""Throughput of dumpling against real Redis, measured by redis-benchmark in one run.

Starts a redis-server and a dumpling on loopback ports, runs the same
redis-benchmark workloads (SET, GET, INCR, MSET; 50 clients; pipeline 1 and 16)
against each, alternating so machine noise hits both, and prints requests per
second and the dumpling/Redis ratio.  Both servers are single-threaded (one core).

usage: python bench/redis_benchmark.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import start_dumpling, start_redis  # noqa: E402

TESTS = "set,get,incr,mset"


def run_benchmark(port: int, requests: int, pipeline: int) -> dict[str, float]:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests), "-P", str(pipeline), "-t", TESTS,
         "-q", "--csv"],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    results = {}
    for line in out.splitlines():
        m = re.match(r'"([^"]+)","([0-9.]+)"', line)
        if m:
            name = m.group(1).split(" ")[0]
            results[name] = float(m.group(2))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    redis = start_redis()
    dumpling = start_dumpling()
    try:
        print(f"redis-benchmark -c 50 -n {args.requests}, median of {args.rounds} alternating rounds")
        print(f"{'test':8} {'pipeline':>8} {'redis rps':>12} {'dumpling rps':>13} {'ratio':>7}")
        for pipeline in (1, 16):
            theirs: dict[str, list[float]] = {}
            ours: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for name, rps in run_benchmark(redis.port, args.requests, pipeline).items():
                    theirs.setdefault(name, []).append(rps)
                for name, rps in run_benchmark(dumpling.port, args.requests, pipeline).items():
                    ours.setdefault(name, []).append(rps)
            for name in theirs:
                r, d = statistics.median(theirs[name]), statistics.median(ours.get(name, [0.0]))
                print(f"{name:8} {pipeline:>8} {r:>12,.0f} {d:>13,.0f} {d / r:>7.2f}")
    finally:
        dumpling.stop()
        redis.stop()


if __name__ == "__main__":
    main()
