"""Replication throughput: full sync and steady-state lag, dumpling against Redis in one run.

    python bench/replication.py [--keys 500000] [--ops 300000] [--only sync|steady]

Full sync: the master holds ``--keys`` string keys (DEBUG POPULATE, 3-byte values) plus a few
big collections; the time from REPLICAOF to ``master_link_status:up`` on the replica gives
keys/s and MB/s (the RDB's size as SAVE writes it on the master).  Every master/replica pair
of {Redis, dumpling} is measured.

Steady state: redis-benchmark runs SET (-P 16, random keys) against the master while the
replica follows; reported are the master's throughput (and its ratio to a Redis master's
with the same kind of replica, measured in the same run), the master's CPU time per SET
(user + system, from /proc: what bounds its throughput on an idle machine, and much less
sensitive than throughput to other load on a shared one), how long after the benchmark ends
the replica's offset reaches the master's (the lag drained), and the replica's average apply
rate.  Noisy machines: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from measure import cpu_seconds  # noqa: E402

from tests.servers import ServerProcess, start_dumpling, start_redis  # noqa: E402

SYNC = ("--repl-diskless-sync-delay", "0")


def start(kind: str, *args: str) -> ServerProcess:
    return start_redis(*SYNC, *args) if kind == "redis" else start_dumpling(*SYNC, *args)


def wait_link(replica: redis.Redis, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while replica.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RuntimeError("replica did not sync")
        time.sleep(0.005)


def fill(master: redis.Redis, keys: int) -> None:
    master.execute_command("DEBUG", "POPULATE", keys, "key", 3)
    with master.pipeline(transaction=False) as p:
        for i in range(0, 100_000, 1000):
            p.rpush("big:list", *range(i, i + 1000))
            p.hset("big:hash", mapping={f"f{j}": j for j in range(i, i + 1000)})
            p.zadd("big:zset", {f"m{j}": j for j in range(i, i + 1000)})
            p.sadd("big:set", *range(i, i + 1000))
        p.execute()


def rdb_size(server: ServerProcess) -> int:
    c = redis.Redis(port=server.port)
    c.save()
    directory = c.config_get("dir")["dir"]
    return os.path.getsize(os.path.join(directory, c.config_get("dbfilename")["dbfilename"]))


def full_sync(master_kind: str, replica_kind: str, keys: int) -> tuple[float, int, int]:
    master = start(master_kind)
    replica = start(replica_kind)
    try:
        m, r = redis.Redis(port=master.port), redis.Redis(port=replica.port)
        fill(m, keys)
        total = m.dbsize()
        size = rdb_size(master)
        started = time.perf_counter()
        r.replicaof("127.0.0.1", master.port)
        wait_link(r)
        elapsed = time.perf_counter() - started
        assert r.dbsize() == total, (r.dbsize(), total)
        return elapsed, total, size
    finally:
        master.stop()
        replica.stop()


def steady(master_kind: str, replica_kind: str, ops: int) -> tuple[float, float, float, float]:
    master = start(master_kind)
    replica = start(replica_kind)
    try:
        m, r = redis.Redis(port=master.port), redis.Redis(port=replica.port)
        r.replicaof("127.0.0.1", master.port)
        wait_link(r)
        cpu_before = cpu_seconds(master.proc.pid)
        started = time.perf_counter()
        subprocess.run(["redis-benchmark", "-p", str(master.port), "-t", "set", "-n", str(ops), "-P", "16", "-r",
                        "100000", "-q"], check=True, capture_output=True)
        bench_done = time.perf_counter()
        cpu_per_op = (cpu_seconds(master.proc.pid) - cpu_before) / ops
        target = m.info("replication")["master_repl_offset"]
        while r.info("replication")["master_repl_offset"] < target:
            time.sleep(0.002)
        drained = time.perf_counter()
        return ops / (bench_done - started), cpu_per_op, drained - bench_done, ops / (drained - started)
    finally:
        master.stop()
        replica.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=500_000)
    parser.add_argument("--ops", type=int, default=300_000)
    parser.add_argument("--only", choices=["sync", "steady"])
    args = parser.parse_args()
    pairs = [("redis", "redis"), ("redis", "dumpling"), ("dumpling", "redis"), ("dumpling", "dumpling")]
    if args.only != "steady":
        full_syncs(pairs, args.keys)
    if args.only != "sync":
        steady_states(pairs, args.ops)


def full_syncs(pairs: list[tuple[str, str]], keys: int) -> None:
    print(f"full sync: {keys:,} string keys + 4 collections of 100,000 elements")
    print("| master -> replica | seconds | keys/s | MB/s | vs Redis->Redis |")
    print("|---|---|---|---|---|")
    base = 0.0
    for master_kind, replica_kind in pairs:
        elapsed, total, size = full_sync(master_kind, replica_kind, keys)
        base = base or elapsed
        print(f"| {master_kind} -> {replica_kind} | {elapsed:.2f} | {total / elapsed:,.0f} | "
              f"{size / elapsed / 1e6:.1f} | {base / elapsed:.2f} |")


def steady_states(pairs: list[tuple[str, str]], ops: int) -> None:
    print(f"\nsteady state: redis-benchmark SET -P 16 -n {ops:,}")
    print("| master -> replica | master rps | vs Redis master | master CPU µs/SET | vs Redis master | lag drained "
          "after (s) | replica applied/s |")
    print("|---|---|---|---|---|---|---|")
    redis_rps: dict[str, tuple[float, float]] = {}
    for master_kind, replica_kind in pairs:
        rps, cpu, lag, applied = steady(master_kind, replica_kind, ops)
        if master_kind == "redis":
            redis_rps[replica_kind] = (rps, cpu)
        base_rps, base_cpu = redis_rps.get(replica_kind, (float("nan"), float("nan")))
        print(f"| {master_kind} -> {replica_kind} | {rps:,.0f} | {rps / base_rps:.2f} | {cpu * 1e6:.2f} | "
              f"{base_cpu / cpu:.2f} | {lag:.2f} | {applied:,.0f} |")


if __name__ == "__main__":
    main()
