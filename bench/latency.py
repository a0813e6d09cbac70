"""Unpipelined latency under load: a PING's round trip while redis-benchmark loads the server.

For real Redis and for dumpling, in the same run and alternating: redis-benchmark runs a
pipelined workload (`-c 50 -P 16`, the whole default set's write commands by default) in the
background, and one extra connection sends PINGs one at a time, each waiting for its reply.
Prints p50 / p99 / p99.9 / max of those round trips and dumpling's p99 over Redis's (issue 12's
target: at most 2), and each server's CPU time (user + system, /proc) per command it ran under
that load, its keys and its RSS at the end: a PING waits behind the batches in progress, so its
latency follows what they cost.  Both servers are single-threaded; the load generator shares the machine's
cores.  ``--preload N`` first stores N small hashes and N small sets in each server: a keyspace
of collections is what Python's cyclic GC used to stop the world for (dumpling.collector).

``--grow N`` loads with HSETs that keep creating small hashes (up to N) instead of ``--tests``:
a keyspace growing in collections is what triggers full collections.

usage: python bench/latency.py [--pings N] [--tests lpush,sadd,...] [--rounds R] [--preload N] [--grow N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import expect_replies, rss_bytes  # noqa: E402
from redis_benchmark import EXPLICIT  # noqa: E402

from tests.servers import ServerProcess, encode_command, info_int, start_dumpling, start_redis  # noqa: E402


def preload(server: ServerProcess, keys: int, batch: int = 1000) -> None:
    """``keys`` hashes (two fields) and ``keys`` sets (three members), pipelined."""
    with server.raw() as conn:
        for first in range(0, keys, batch):
            last = min(first + batch, keys)
            chunk = b"".join(
                encode_command("HSET", f"hash:{i}", "f1", "v1", "f2", "v2") + encode_command("SADD", f"set:{i}", "a", "b", "c")
                for i in range(first, last))
            conn.send(chunk)
            expect_replies(conn, (b":2\r\n" + b":3\r\n") * (last - first), "preloading")


def load_commands(port: int, tests: str, grow: int) -> list[list[str]]:
    """The redis-benchmark processes of a load, 50 clients in all: with ``grow`` one HSET of new
    small hashes (``grow:<rand>``, ``-r grow``); else one for the ``-t`` tests Debian's 7.0 runs and
    one per test it lacks (``redis_benchmark.EXPLICIT``: ``-t xadd`` would silently run nothing)."""
    if grow:
        workloads = [["-r", str(grow), "HSET", "grow:__rand_int__", "f", "v"]]
    else:
        names = [t for t in tests.split(",") if t]
        plain = [t for t in names if t not in EXPLICIT]
        workloads = ([["-t", ",".join(plain)]] if plain else []) + [EXPLICIT[t] for t in names if t in EXPLICIT]
    if not workloads:
        raise SystemExit("no load: --tests is empty")
    clients = [50 // len(workloads) + (i < 50 % len(workloads)) for i in range(len(workloads))]
    return [["redis-benchmark", "-p", str(port), "-c", str(c), "-P", "16", "-n", "100000000", "-l", "-q", *w]
            for c, w in zip(clients, workloads, strict=True)]


def ping_latencies(server: ServerProcess, pings: int, tests: str, grow: int = 0) -> tuple[list[float], float, int]:
    """Round trips (ms) of ``pings`` PINGs sent one by one while redis-benchmark loads ``server``
    (``load_commands``), with the server's CPU seconds and commands over the same span."""
    loads = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for cmd in load_commands(server.port, tests, grow)]
    try:
        time.sleep(1.0)  # let the load settle
        if any(load.poll() is not None for load in loads):
            raise RuntimeError("a redis-benchmark load process exited early")
        out: list[float] = []
        with server.raw() as conn:
            commands = info_int(conn, "stats", "total_commands_processed")
            cpu = server.cpu_seconds()
            for _ in range(pings):
                start = time.perf_counter()
                reply = conn.call("PING")
                out.append((time.perf_counter() - start) * 1000)
                if reply != b"+PONG\r\n":
                    raise RuntimeError(f"unexpected reply {reply!r}")
                time.sleep(0.001)
            cpu = server.cpu_seconds() - cpu
            commands = info_int(conn, "stats", "total_commands_processed") - commands
        return out, cpu, commands
    finally:
        for load in loads:
            load.terminate()
            load.wait()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--tests", default="lpush,sadd,hset,zadd,lrange_100")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--preload", type=int, default=0, help="small hashes and sets stored first (each)")
    parser.add_argument("--grow", type=int, default=0, help="load: HSET of new hashes among N keys, not --tests")
    args = parser.parse_args()
    servers = {"redis": start_redis(), "dumpling": start_dumpling()}
    try:
        for server in servers.values():
            preload(server, args.preload)
        samples: dict[str, list[float]] = {name: [] for name in servers}
        spent = {name: [0.0, 0] for name in servers}  # CPU seconds, commands
        for _ in range(args.rounds):
            for name, server in servers.items():
                pings, cpu, commands = ping_latencies(server, args.pings, args.tests, args.grow)
                samples[name] += pings
                spent[name][0] += cpu
                spent[name][1] += commands
        load = f"HSET grow:<rand> among {args.grow:,} keys" if args.grow else f"-t {args.tests}"
        print(f"PING round trips (ms) under redis-benchmark -c 50 -P 16 {load}, "
              f"{args.rounds} alternating rounds of {args.pings}, {args.preload:,} hashes and sets preloaded")
        print(f"{'server':10} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'cpu us/cmd':>11} {'keys':>10} {'rss MB':>8}")
        for name, values in samples.items():
            with servers[name].raw() as conn:
                keys = conn.call("DBSIZE")
            cpu, commands = spent[name]
            print(f"{name:10} {statistics.median(values):8.3f} {percentile(values, 0.99):8.3f} "
                  f"{percentile(values, 0.999):8.3f} {max(values):8.3f} {cpu / max(commands, 1) * 1e6:11.2f} "
                  f"{int(keys[1:]):10,} {rss_bytes(servers[name].proc.pid) / 1e6:8.0f}")
        ratio = percentile(samples["dumpling"], 0.99) / percentile(samples["redis"], 0.99)
        print(f"p99 dumpling / redis: {ratio:.2f}")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
