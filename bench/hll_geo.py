"""HyperLogLog and GEO throughput of dumpling against real Redis, by redis-benchmark in one run.

Both servers get the same preloaded data (a dense HLL, two sparse ones, a 10,000-point
GEO set), then the same redis-benchmark workloads (50 clients, pipeline 1 and 16),
alternating rounds so machine noise hits both; prints requests per second and the
dumpling/Redis ratio, and each server's CPU time per request (its main thread's
``used_cpu_*`` from INFO before and after the run): on a loaded machine that cost is
steadier than the rate, and the cost ratio is the rate ratio a server gets when it has a
core to itself.

usage: python bench/hll_geo.py [--requests N] [--rounds R] [--only WORKLOAD ...] [--pipelines 1 16]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import benchmark  # noqa: E402

from tests.servers import ServerProcess, start_dumpling, start_redis  # noqa: E402

WORKLOADS = {
    "PFADD": ["PFADD", "hll:bench", "element:__rand_int__"],
    "PFCOUNT 1 key": ["PFCOUNT", "hll:dense"],
    "PFCOUNT 3 keys": ["PFCOUNT", "hll:dense", "hll:sparse1", "hll:sparse2"],
    "GEOSEARCH": ["GEOSEARCH", "geo", "FROMLONLAT", "13.5", "38", "BYRADIUS", "50", "km", "COUNT", "10", "ASC"],
    "GEORADIUS": ["GEORADIUS_RO", "geo", "13.5", "38", "20", "km", "WITHDIST"],
    "GEOPOS": ["GEOPOS", "geo", "p1", "p2", "p3"],
}


def preload(server: ServerProcess) -> None:
    rng = random.Random(1)
    with server.raw() as conn:
        conn.call("FLUSHALL")
        for start in range(0, 20_000, 500):
            conn.call("PFADD", "hll:dense", *[b"d%d" % i for i in range(start, start + 500)])
        conn.call("PFADD", "hll:sparse1", *[b"a%d" % i for i in range(300)])
        conn.call("PFADD", "hll:sparse2", *[b"b%d" % i for i in range(300)])
        for start in range(0, 10_000, 500):
            args: list[str] = []
            for i in range(start, start + 500):
                args += [repr(rng.uniform(11, 16)), repr(rng.uniform(36, 40)), f"p{i}"]
            conn.call("GEOADD", "geo", *args)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), metavar="WORKLOAD", default=list(WORKLOADS),
                        help="workloads to run (names as printed, quoted)")
    parser.add_argument("--pipelines", nargs="+", type=int, default=[1, 16])
    args = parser.parse_args()
    servers = {"redis": start_redis(), "dumpling": start_dumpling()}
    try:
        for server in servers.values():
            preload(server)
        print(f"redis-benchmark -c 50 -n {args.requests}, median of {args.rounds} alternating rounds")
        print(f"{'workload':16} {'pipeline':>8} {'redis rps':>12} {'dumpling rps':>13} {'ratio':>7}"
              f" {'redis us/req':>13} {'dumpling us/req':>16} {'cpu ratio':>10}")
        for pipeline in args.pipelines:
            for name in args.only:
                command = WORKLOADS[name]
                rps: dict[str, list[float]] = {server: [] for server in servers}
                cpu: dict[str, list[float]] = {server: [] for server in servers}
                for _ in range(args.rounds):
                    for server_name, server in servers.items():
                        rate, cost = benchmark(server, args.requests, pipeline, command, keyspace=1000000)
                        rps[server_name].append(rate)
                        cpu[server_name].append(cost)
                theirs, ours = statistics.median(rps["redis"]), statistics.median(rps["dumpling"])
                their_cost, our_cost = statistics.median(cpu["redis"]), statistics.median(cpu["dumpling"])
                print(f"{name:16} {pipeline:>8} {theirs:>12,.0f} {ours:>13,.0f} {ours / theirs:>7.2f}"
                      f" {their_cost:>13.2f} {our_cost:>16.2f} {their_cost / our_cost:>10.2f}")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
