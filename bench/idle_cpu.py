"""The CPU a server spends on its timers alone: dumpling against real Redis, idle with 0 and with
N connected clients that send nothing.

Every tick of the cron (``hz`` a second) does some work whatever the load; with many clients
connected that work grows with them, and under ``redis-benchmark -P 1`` it is paid between the
requests.  This measures it where nothing else runs: each server's CPU time
(``/proc/<pid>/task/*/schedstat``, bench/measure.py) over ``--seconds``, in ms per second, for
each client count.  With ``--against DIR`` a dumpling from another checkout is measured too
(before/after).

usage: python bench/idle_cpu.py [--clients 0,50] [--seconds 10] [--hz 10] [--against DIR]
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import cpu_seconds  # noqa: E402
from bench.redis_benchmark import start_checkout  # noqa: E402
from tests.servers import ServerProcess, start_dumpling, start_redis  # noqa: E402


def idle_ms_per_second(server: ServerProcess, clients: int, seconds: float) -> float:
    """CPU ms a second of ``server`` with ``clients`` idle connections (each sent one PING, so it
    is a registered client the server has read from)."""
    socks = []
    try:
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"PING\r\n")
            sock.recv(64)
            socks.append(sock)
        time.sleep(1.5)  # (past the connections' own work and a first cron turn each)
        before = cpu_seconds(server.proc.pid)
        time.sleep(seconds)
        return (cpu_seconds(server.proc.pid) - before) * 1000 / seconds
    finally:
        for sock in socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="0,50", help="client counts to measure, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=int, default=10)
    parser.add_argument("--against", help="also measure a dumpling from this checkout")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",")]
    hz = ("--hz", str(args.hz))
    starters = [("dumpling", lambda: start_dumpling(*hz)), ("redis", lambda: start_redis(*hz))]
    if args.against:
        against = args.against

        def start_against() -> ServerProcess:
            server = start_checkout(against)
            with server.raw() as conn:
                conn.call("CONFIG", "SET", "hz", str(args.hz))
            return server

        starters.insert(1, ("against", start_against))
    print(f"{'server':10}" + "".join(f" {f'{n} clients':>12}" for n in counts) + "   (CPU ms per second)")
    for name, start in starters:
        server = start()
        try:
            row = [idle_ms_per_second(server, n, args.seconds) for n in counts]
        finally:
            server.stop()
        print(f"{name:10}" + "".join(f" {ms:12.2f}" for ms in row))


if __name__ == "__main__":
    main()
