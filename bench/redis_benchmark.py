"""Throughput of dumpling against real Redis, measured by redis-benchmark in one run.

Starts a redis-server and a dumpling on loopback ports and runs redis-benchmark's whole default
test set (PING_INLINE ... XADD; 50 clients; pipeline 1 and 16) against each.  Every test runs on
its own, against each server in turn, the order flipping from one test to the next (Redis then
dumpling, dumpling then Redis, ...), so the two runs of a test are seconds apart and machine noise
hits both alike.  It prints requests per second (the median over the rounds), the ratio per test
(the median of the rounds' paired ratios, dumpling's rate over Redis's in the same round) and the
minimum and median ratio per pipeline.  Before the rounds of each pipeline every server gets a short
untimed pass of the whole set (a tenth of the requests), so no server's first test also pays for
its first connections and first runs.  Both servers are single-threaded (one core).

With ``--pure`` a third server, dumpling with ``DUMPLING_PURE=1`` (no C accelerators),
runs in the same rounds and gets its own ratio column.

With ``--against DIR`` another dumpling, started from the checkout DIR (its C extensions built
in place, e.g. ``git worktree add DIR HEAD~1`` then ``python setup.py build_ext --inplace``),
runs in the same rounds and gets its own columns: a before/after comparison under one load.

With ``--cpu`` the servers' CPU time per request is printed too (``/proc/<pid>/task/*/schedstat``,
bench/measure.py): the "cost" column is Redis's CPU per request over dumpling's, which a machine
shared with other work disturbs far less than the rates (the load generator competes for the same
two cores).  The "usr" columns are the user-mode part of it (``/proc/<pid>/stat``'s utime): at -P 1
the kernel's two system calls a request are most of the CPU and much of its noise, and the user
part is where the servers differ.

usage: python bench/redis_benchmark.py [--requests N] [--rounds R] [--pure] [--against DIR] [--cpu]
                                       [--pipelines 1,16] [--tests a,b,...]
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import cpu_seconds, user_seconds  # noqa: E402
from tests.servers import ServerProcess, free_port, start_dumpling, start_redis  # noqa: E402

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


def run_with_cpu(server: ServerProcess, requests: int, pipeline: int,
                 tests: str) -> dict[str, tuple[float, float, float]]:
    """Each test on its own: (requests per second, the server's CPU microseconds per request, the
    user-mode part of them)."""
    results: dict[str, tuple[float, float, float]] = {}
    for test in tests.split(","):
        before, user_before = cpu_seconds(server.proc.pid), user_seconds(server.proc.pid)
        rates = run_benchmark(server.port, requests, pipeline, test)
        cpu_us = (cpu_seconds(server.proc.pid) - before) * 1e6
        user_us = (user_seconds(server.proc.pid) - user_before) * 1e6
        for name, rate in rates.items():
            # one run of several rows (-t lrange: the LPUSH filling the list, LRANGE_100...600) has
            # no CPU per row; a row met before (that LPUSH) keeps its own test's figures
            one = len(rates) == 1
            results.setdefault(name, (rate, cpu_us / requests if one else math.nan,
                                      user_us / requests if one else math.nan))
    return results


def start_checkout(checkout: str) -> ServerProcess:
    """A dumpling run from another checkout (its own package ahead of this one on sys.path)."""
    port = free_port()
    boot = f"import runpy, sys; sys.path.insert(0, {str(Path(checkout).resolve())!r}); " \
           "runpy.run_module('dumpling', run_name='__main__')"
    return ServerProcess([sys.executable, "-c", boot, "--port", str(port), "--save", ""], port, "against")


def _collect(csv: str, results: dict[str, float]) -> None:
    for line in csv.splitlines():
        m = re.match(r'"([^"]+)","([0-9.]+)"', line)
        if m and "(needed" not in m.group(1):  # "LPUSH (needed to benchmark LRANGE)" is not a test of its own
            results.setdefault(m.group(1).split(" ")[0], float(m.group(2)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pure", action="store_true", help="also measure dumpling without its C accelerators")
    parser.add_argument("--against", metavar="DIR", help="also measure a dumpling from the checkout DIR")
    parser.add_argument("--cpu", action="store_true", help="run the tests one by one and compare CPU per request")
    parser.add_argument("--pipelines", default="1,16", help="the -P values to run (default: 1,16)")
    parser.add_argument("--tests", default=TESTS, help="redis-benchmark -t list (default: its whole default set)")
    args = parser.parse_args()
    servers = {"redis": start_redis(), "dumpling": start_dumpling()}
    if args.pure:
        servers["pure"] = start_dumpling(env={"DUMPLING_PURE": "1"})
    if args.against:
        servers["against"] = start_checkout(args.against)
    try:
        print(f"redis-benchmark -c 50 -n {args.requests}, median of {args.rounds} rounds, each test paired")
        header = f"{'test':11} {'pipeline':>8} {'redis rps':>12} {'dumpling rps':>13} {'ratio':>7}"
        if args.cpu:
            header += f" {'redis us':>9} {'ours us':>8} {'cost':>6} {'redis usr':>9} {'ours usr':>8}"
        for name in servers:
            if name not in ("redis", "dumpling"):
                header += f" {name + ' rps':>12} {'ratio':>7}" + (f" {name[:5] + ' us':>9} {name[:5] + ' usr':>9}"
                                                                  if args.cpu else "")
        print(header)
        for pipeline in map(int, args.pipelines.split(",")):
            rps: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
            cpu: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
            user: dict[str, dict[str, list[float]]] = {name: {} for name in servers}
            paired: dict[str, dict[str, list[float]]] = {name: {} for name in servers if name != "redis"}
            order = list(servers.items())
            for server in servers.values():  # a short untimed pass first: the first connections and code paths
                run_benchmark(server.port, max(args.requests // 10, 1000), pipeline, args.tests)
            for _ in range(args.rounds):
                for unit in args.tests.split(","):
                    measured: dict[str, dict[str, tuple[float, float, float]]] = {}
                    for name, server in order:
                        try:
                            measured[name] = run_with_cpu(server, args.requests, pipeline, unit)
                        except subprocess.CalledProcessError as e:  # say which server and why
                            print(f"redis-benchmark failed against {name}: {e.stdout[-500:]}{e.stderr[-500:]}\n"
                                  f"its log ends:\n{server.log()[-2000:]}", flush=True)
                            raise
                    order.reverse()  # the next test starts with the server that ran this one last
                    for name, results in measured.items():
                        for test, (rate, cpu_us, user_us) in results.items():
                            rps[name].setdefault(test, []).append(rate)
                            cpu[name].setdefault(test, []).append(cpu_us)
                            user[name].setdefault(test, []).append(user_us)
                            if name in paired and test in measured["redis"]:
                                paired[name].setdefault(test, []).append(rate / measured["redis"][test][0])
            ratios: dict[str, list[float]] = {name: [] for name in servers if name != "redis"}
            costs: list[float] = []
            for test in rps["redis"]:
                theirs = statistics.median(rps["redis"][test])
                row = f"{test:11} {pipeline:>8} {theirs:>12,.0f}"
                for name in ratios:
                    ours = statistics.median(rps[name].get(test, [0.0]))
                    ratio = statistics.median(paired[name].get(test, [0.0]))
                    ratios[name].append(ratio)
                    if name == "dumpling":
                        row += f" {ours:>13,.0f} {ratio:>7.2f}"
                        if args.cpu:
                            redis_us = statistics.median(cpu["redis"][test])
                            ours_us = statistics.median(cpu["dumpling"].get(test, [float("inf")]))
                            if not math.isnan(redis_us / ours_us):
                                costs.append(redis_us / ours_us)
                            row += f" {redis_us:>9.2f} {ours_us:>8.2f} {redis_us / ours_us:>6.2f}"
                            row += f" {statistics.median(user['redis'][test]):>9.2f}"
                            row += f" {statistics.median(user['dumpling'].get(test, [math.nan])):>8.2f}"
                    else:
                        row += f" {ours:>12,.0f} {ratio:>7.2f}"
                        if args.cpu:
                            row += f" {statistics.median(cpu[name].get(test, [math.nan])):>9.2f}"
                            row += f" {statistics.median(user[name].get(test, [math.nan])):>9.2f}"
                print(row, flush=True)
            for name, values in ratios.items():
                print(f"-P {pipeline} {name}: min ratio {min(values):.2f}, median {statistics.median(values):.2f} "
                      f"over {len(values)} tests", flush=True)
            if costs:
                print(f"-P {pipeline} cost (Redis CPU / dumpling CPU per request): min {min(costs):.2f}, "
                      f"median {statistics.median(costs):.2f}", flush=True)
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
