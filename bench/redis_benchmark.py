"""Throughput of dumpling against real Redis, measured by redis-benchmark in one run.

Starts a redis-server and a dumpling on loopback ports, runs redis-benchmark's whole
default test set (PING_INLINE ... XADD; 50 clients; pipeline 1 and 16) against each,
alternating so machine noise hits both, and prints requests per second, the
dumpling/Redis ratio per test and the minimum and median ratio per pipeline.  Both
servers are single-threaded (one core).

With ``--pure`` a third server, dumpling with ``DUMPLING_PURE=1`` (no C accelerators),
runs in the same rounds and gets its own ratio column.

usage: python bench/redis_benchmark.py [--requests N] [--rounds R] [--pure] [--tests a,b,...]
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

# redis-benchmark's default set (what it runs without -t), in its order.
TESTS = "ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset,xadd"


# Tests newer redis-benchmarks have and Debian's 7.0 lacks, as the command they send.
EXPLICIT = {"xadd": ["XADD", "mystream", "*", "myfield", "myvalue"]}


def run_benchmark(port: int, requests: int, pipeline: int, tests: str) -> dict[str, float]:
    base = ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests), "-P", str(pipeline), "-q", "--csv"]
    results: dict[str, float] = {}
    _collect(subprocess.run(base + ["-t", tests], capture_output=True, text=True, timeout=600, check=True).stdout,
             results)
    for test in tests.split(","):
        if test in EXPLICIT and test.upper() not in results:
            _collect(subprocess.run(base + EXPLICIT[test], capture_output=True, text=True, timeout=600,
                                    check=True).stdout, results)
    return results


def _collect(csv: str, results: dict[str, float]) -> None:
    for line in csv.splitlines():
        m = re.match(r'"([^"]+)","([0-9.]+)"', line)
        if m:
            name = m.group(1).split(" ")[0]  # "LPUSH (needed to benchmark LRANGE)" is not a test of its own
            results.setdefault(name, float(m.group(2)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pure", action="store_true", help="also measure dumpling without its C accelerators")
    parser.add_argument("--tests", default=TESTS, help="redis-benchmark -t list (default: its whole default set)")
    args = parser.parse_args()
    servers = {"redis": start_redis(), "dumpling": start_dumpling()}
    if args.pure:
        servers["pure"] = start_dumpling(env={"DUMPLING_PURE": "1"})
    try:
        print(f"redis-benchmark -c 50 -n {args.requests}, median of {args.rounds} alternating rounds")
        header = f"{'test':11} {'pipeline':>8} {'redis rps':>12} {'dumpling rps':>13} {'ratio':>7}"
        print(header + (f" {'pure rps':>12} {'ratio':>7}" if args.pure else ""))
        for pipeline in (1, 16):
            rps: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
            for _ in range(args.rounds):
                for name, server in servers.items():
                    for test, value in run_benchmark(server.port, args.requests, pipeline, args.tests).items():
                        rps[name].setdefault(test, []).append(value)
            ratios: dict[str, list[float]] = {name: [] for name in servers if name != "redis"}
            for test in rps["redis"]:
                theirs = statistics.median(rps["redis"][test])
                row = f"{test:11} {pipeline:>8} {theirs:>12,.0f}"
                for name in ratios:
                    ours = statistics.median(rps[name].get(test, [0.0]))
                    ratios[name].append(ours / theirs)
                    row += f" {ours:>13,.0f} {ours / theirs:>7.2f}" if name == "dumpling" else \
                        f" {ours:>12,.0f} {ours / theirs:>7.2f}"
                print(row, flush=True)
            for name, values in ratios.items():
                print(f"-P {pipeline} {name}: min ratio {min(values):.2f}, median {statistics.median(values):.2f} "
                      f"over {len(values)} tests", flush=True)
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
