"""Throughput of dumpling against real Redis, measured by redis-benchmark in one run.

Starts a redis-server and a dumpling on loopback ports, runs the same
redis-benchmark workloads (SET, GET, INCR, MSET; 50 clients; pipeline 1 and 16)
against each, alternating so machine noise hits both, and prints requests per
second and the dumpling/Redis ratio.  Both servers are single-threaded (one core).

With ``--pure`` a third server, dumpling with ``DUMPLING_PURE=1`` (no C accelerators),
runs in the same rounds and gets its own ratio column.

usage: python bench/redis_benchmark.py [--requests N] [--rounds R] [--pure]
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
    parser.add_argument("--pure", action="store_true", help="also measure dumpling without its C accelerators")
    args = parser.parse_args()
    servers = {"redis": start_redis(), "dumpling": start_dumpling()}
    if args.pure:
        servers["pure"] = start_dumpling(env={"DUMPLING_PURE": "1"})
    try:
        print(f"redis-benchmark -c 50 -n {args.requests}, median of {args.rounds} alternating rounds")
        header = f"{'test':8} {'pipeline':>8} {'redis rps':>12} {'dumpling rps':>13} {'ratio':>7}"
        print(header + (f" {'pure rps':>12} {'ratio':>7}" if args.pure else ""))
        for pipeline in (1, 16):
            rps: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
            for _ in range(args.rounds):
                for name, server in servers.items():
                    for test, value in run_benchmark(server.port, args.requests, pipeline).items():
                        rps[name].setdefault(test, []).append(value)
            for test in rps["redis"]:
                theirs = statistics.median(rps["redis"][test])
                row = f"{test:8} {pipeline:>8} {theirs:>12,.0f}"
                for name in servers:
                    if name != "redis":
                        ours = statistics.median(rps[name].get(test, [0.0]))
                        row += f" {ours:>13,.0f} {ours / theirs:>7.2f}" if name == "dumpling" else \
                            f" {ours:>12,.0f} {ours / theirs:>7.2f}"
                print(row)
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
