"""What ``maxmemory-clients`` costs a command while many clients are connected, dumpling against
real Redis in one run.

Each server gets ``--idle`` connections that send nothing, then redis-benchmark's GET and SET
(50 clients, pipeline 1) with maxmemory set (1 GB; it keeps the C request loop out of the way,
so every read goes through the Python read path and its eviction checks) and
``maxmemory-clients`` 0 and 50%; prints each server's CPU microseconds per request (schedstat)
and Redis's / dumpling's ("cost ratio"; the rates move too much on a shared machine).  Redis
keeps a running total of its clients' memory; dumpling summed every client's memory on every
read while the limit was set, so the cost grew with the number of connected clients.

usage: python bench/client_eviction.py [--idle N] [--requests N]
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import benchmark  # noqa: E402

from tests.servers import ServerProcess, start_dumpling, start_redis  # noqa: E402


def cost(server: ServerProcess, idle: int, requests: int) -> dict[str, float]:
    """CPU µs per request of each workload, with ``idle`` extra clients connected."""
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(idle)]
    try:
        time.sleep(0.5)  # (every connection accepted before the clock starts)
        return {name: benchmark(server, requests, 1, ["-t", name])[1] for name in ("get", "set")}
    finally:
        for sock in socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    print(f"{args.idle} idle clients, {args.requests} requests a workload, maxmemory 1gb; CPU µs per request")
    print(f"{'maxmemory-clients':<18} {'command':<8} {'Redis':>8} {'dumpling':>9} {'cost ratio':>11}")
    for limit in ("0", "50%"):
        results = {}
        for name, start in (("redis", start_redis), ("dumpling", start_dumpling)):
            server = start("--maxmemory", "1gb", "--maxmemory-clients", limit)
            try:
                results[name] = cost(server, args.idle, args.requests)
            finally:
                server.stop()
        for command in ("get", "set"):
            theirs, ours = results["redis"][command], results["dumpling"][command]
            print(f"{limit:<18} {command.upper():<8} {theirs:8.1f} {ours:9.1f} {theirs / ours:11.2f}")


if __name__ == "__main__":
    main()
