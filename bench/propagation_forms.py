"""What propagating a write costs the master, dumpling against Redis in one run.

    python bench/propagation_forms.py [--requests 200000] [--pipeline 16]

Each master (Redis, dumpling) gets a Redis replica, then redis-benchmark runs writes whose
propagated form differs from what was sent (SET ... EX as SET ... PXAT, EXPIRE as PEXPIREAT,
INCRBYFLOAT as SET ... KEEPTTL, LMPOP as LPOP key count) and the plain SET that propagates as
sent (the propagation stream's short way).  Printed per workload: the master's requests per
second and CPU microseconds per request (all threads, /proc), and dumpling's CPU per request
as a multiple of Redis's measured in the same run.  Compare the ratios; the absolute figures
follow the machine's load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from measure import benchmark  # noqa: E402

from tests.servers import ServerProcess, start_dumpling, start_redis  # noqa: E402

WORKLOADS: list[tuple[str, list[str]]] = [
    ("SET (as sent)", ["SET", "k:__rand_int__", "v"]),
    ("SET EX -> SET PXAT", ["SET", "k:__rand_int__", "v", "EX", "1000"]),
    ("EXPIRE -> PEXPIREAT", ["EXPIRE", "k:__rand_int__", "1000"]),
    ("INCRBYFLOAT -> SET KEEPTTL", ["INCRBYFLOAT", "f:__rand_int__", "1.5"]),
    ("LMPOP -> LPOP count", ["LMPOP", "1", "l:__rand_int__", "LEFT", "COUNT", "2"]),
]


def with_replica(kind: str) -> tuple[ServerProcess, ServerProcess]:
    master = start_redis() if kind == "redis" else start_dumpling()
    replica = start_redis()
    r = redis.Redis(port=replica.port)
    r.replicaof("127.0.0.1", master.port)
    deadline = time.monotonic() + 30
    while r.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RuntimeError("replica did not connect")
        time.sleep(0.05)
    return master, replica


def run(kind: str, requests: int, pipeline: int) -> dict[str, tuple[float, float]]:
    master, replica = with_replica(kind)
    try:
        m = redis.Redis(port=master.port)
        for i in range(0, 10000, 500):  # lists for LMPOP to pop from (refilled between rounds)
            pipe = m.pipeline(transaction=False)
            for j in range(i, i + 500):
                pipe.rpush(f"l:{j:012d}", *range(64))
            pipe.execute()
        return {name: benchmark(master, requests, pipeline, command) for name, command in WORKLOADS}
    finally:
        master.stop()
        replica.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--pipeline", type=int, default=16)
    args = parser.parse_args()
    theirs = run("redis", args.requests, args.pipeline)
    ours = run("dumpling", args.requests, args.pipeline)
    print(f"master with a Redis replica, redis-benchmark -P {args.pipeline} -n {args.requests:,}")
    print(f"{'workload':30} {'Redis rps':>10} {'us/req':>7} {'dumpling rps':>13} {'us/req':>7} {'CPU ratio':>9}")
    for name, _ in WORKLOADS:
        (r_rps, r_cpu), (d_rps, d_cpu) = theirs[name], ours[name]
        print(f"{name:30} {r_rps:10.0f} {r_cpu:7.2f} {d_rps:13.0f} {d_cpu:7.2f} {d_cpu / r_cpu:8.1f}x")


if __name__ == "__main__":
    main()
