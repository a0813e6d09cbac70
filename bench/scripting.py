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

``--callgrind`` counts instead the instructions per request in process (no sockets, no
Redis: repeatable on a shared machine), as bench/request_instructions.py does: a fresh
server and client per workload, 16-request pipelines fed to ``Client.data_received`` inside
one ``eval`` that callgrind counts on its own (``--toggle-collect=builtin_eval``); RET1 is
EVALSHA of ``return 1`` (the run without any redis.call).  The batches are a multiple of 25
(``--batches``, default 50): 16 x 25 runs hold exactly 8 of Redis's GC steps (one every 50
runs, ~150k instructions each) wherever the count stood, so the figure does not move by
~500 with the steps' phase.

usage: python bench/scripting.py [--requests N] [--rounds R] | --callgrind [--batches N]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import benchmark, callgrind_totals  # noqa: E402

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


IN_PROCESS = {
    "EVALSHA": [b"EVALSHA", hashlib.sha1(BODY.encode()).hexdigest().encode(), b"1", b"key:1"],
    "FCALL": [b"FCALL", b"incr_get", b"1", b"key:1"],
    "RET1": [b"EVALSHA", hashlib.sha1(b"return 1").hexdigest().encode(), b"0"],
}


def run_in_process(batches: int) -> None:
    """Each workload's loop inside one eval() (what --callgrind counts)."""
    from dumpling.config import Config
    from dumpling.dispatch import Server
    from dumpling.server import Client
    from tests.servers import encode_command
    from tests.test_fastpath_fuzz import Transport

    for request in IN_PROCESS.values():
        server = Server(Config())
        client = Client(server)
        transport = Transport()
        client.connection_made(transport)  # type: ignore[arg-type]
        for setup in ([b"SCRIPT", b"LOAD", BODY.encode()], [b"SCRIPT", b"LOAD", b"return 1"],
                      [b"FUNCTION", b"LOAD", LIBRARY.encode()]):
            client.data_received(encode_command(*setup))
        data = encode_command(*request) * 16
        for _ in range(50):  # warm: the key exists, the handles and histograms are made
            client.data_received(data)
        assert not transport.data.startswith(b"-"), bytes(transport.data[:200])
        transport.data.clear()
        loop = f"for _ in range({batches}):\n    client.data_received(data)\n    transport.data.clear()\n"
        eval(compile(loop, "loop", "exec"), {"client": client, "data": data, "transport": transport})


def under_callgrind(batches: int) -> None:
    # (imports and set-ups eval small things too: a loop costs thousands per request)
    totals = callgrind_totals(__file__, ["--in-process", "--batches", str(batches)], "builtin_eval",
                              floor=batches * 16 * 2000)
    for label, total in zip(IN_PROCESS, totals, strict=True):
        print(f"{label:8} {total / (batches * 16):9,.0f} instructions per request")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="instructions per request in process (valgrind)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=50, help="16-request batches counted (a multiple of 25)")
    args = parser.parse_args()
    if args.in_process:
        run_in_process(args.batches)
        return
    if args.callgrind:
        if args.batches % 25:
            parser.error("--batches must be a multiple of 25 (whole GC periods)")
        under_callgrind(args.batches)
        return
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
