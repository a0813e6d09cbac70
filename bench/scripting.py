"""Script throughput of dumpling against real Redis, measured by redis-benchmark in one run.

The workloads the scripting issue names: EVALSHA of a small script that makes two
redis.call (INCR then GET of a random key) and FCALL of the same body registered as
a function; plus EVAL of the script's text (the cache lookup by body) for
completeness.  50 clients, pipeline 1 and 16, alternating rounds; prints requests per
second and the dumpling/Redis ratio (median of the rounds).

Throughput on a machine shared with other work swings with the load, so each round
also reads the CPU time each server process spent (``/proc/<pid>/task/*/schedstat``,
nanoseconds on a CPU, all threads) and divides it by the requests: "cpu µs/req".  The
cost ratio Redis/dumpling of those is what the throughput ratio tends to when both
servers get a CPU of their own; it moves much less with the load than requests per
second do.

usage: python bench/scripting.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import benchmark  # noqa: E402

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
        print(f"{'workload':10} {'pipeline':>8} {'redis rps':>12} {'dumpling rps':>13} {'ratio':>7}"
              f" {'redis cpu µs/req':>17} {'dumpling cpu µs/req':>20} {'cost ratio':>11}")
        for pipeline in (1, 16):
            for label, command in workloads.items():
                rps: dict[str, list[float]] = {name: [] for name in servers}
                cpu: dict[str, list[float]] = {name: [] for name in servers}
                for _ in range(args.rounds):
                    for name, server in servers.items():
                        r, c = benchmark(server, args.requests, pipeline, list(command))
                        rps[name].append(r)
                        cpu[name].append(c)
                redis_rps, ours = statistics.median(rps["redis"]), statistics.median(rps["dumpling"])
                redis_cpu, our_cpu = statistics.median(cpu["redis"]), statistics.median(cpu["dumpling"])
                print(f"{label:10} {pipeline:>8} {redis_rps:>12,.0f} {ours:>13,.0f} {ours / redis_rps:>7.2f}"
                      f" {redis_cpu:>17.2f} {our_cpu:>20.2f} {redis_cpu / our_cpu:>11.2f}")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
