"""What ACL rules cost: redis-benchmark's default tests as the default user and as two restricted
users, on dumpling and on Redis in the same run.

- ``anywhere``: ``~* &* +@all -@dangerous`` (every key, not every command);
- ``keyed``: ``~key:* ~counter:* ~my* +@all -@dangerous`` (key patterns: every key is checked).

Printed per test: requests per second and the server's CPU microseconds per request for each
user, and each restricted user against the default user of the same server (issue 17's target:
no more than 10% below; the CPU ratio is the steadier figure on a shared machine).

    python bench/acl_users.py [--requests 200000] [--pipeline 16] [--rounds 3] [--tests get,set,...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import benchmark  # noqa: E402
from tests.servers import ServerProcess, start_dumpling, start_redis  # noqa: E402

USERS = {
    "default": [],
    "anywhere": ["~*", "&*", "+@all", "-@dangerous"],
    "keyed": ["~key:*", "~counter:*", "~my*", "+@all", "-@dangerous"],
}
TESTS = "get,set,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset"
# each measurement starts from an empty keyspace; these tests pop from (read) what another fills
FILLED_BY = {"lpop": "lpush", "rpop": "lpush", "spop": "sadd", "zpopmin": "zadd", "lrange_100": "lpush"}
ROWS = {"lrange_100": "LRANGE_100"}  # its run first prints the LPUSH that fills the list


def measure(server: ServerProcess, tests: list[str], requests: int, pipeline: int, rounds: int
            ) -> dict[tuple[str, str], tuple[float, float]]:
    """(user, test) → median (rate, CPU µs per request) over the rounds. Every measurement starts
    from the same keyspace (flushed, then filled when the test reads), and the users take turns
    going first."""
    with server.raw() as conn:
        for user, rules in USERS.items():
            if rules:
                conn.call("ACL", "SETUSER", user, "reset", "on", ">pw", *rules)
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    users = list(USERS)
    for n in range(rounds):
        for test in tests:
            for user in users[n % len(users):] + users[:n % len(users)]:
                with server.raw() as conn:
                    conn.call("FLUSHALL")
                if test in FILLED_BY:
                    benchmark(server, requests, pipeline, ["-t", FILLED_BY[test]], keyspace=100000)
                login = [] if user == "default" else ["--user", user, "-a", "pw"]
                samples.setdefault((user, test), []).append(
                    benchmark(server, requests, pipeline, [*login, "-t", test], keyspace=100000, row=ROWS.get(test, "")))
    return {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--pipeline", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tests", default=TESTS)
    args = parser.parse_args()
    tests = args.tests.split(",")
    results = {}
    for name, start in (("redis", start_redis), ("dumpling", start_dumpling)):
        server = start()
        try:
            results[name] = measure(server, tests, args.requests, args.pipeline, args.rounds)
        finally:
            server.stop()
    print(f"-P {args.pipeline}, {args.requests} requests, median of {args.rounds} rounds")
    print(f"{'test':12} {'server':9} " + " ".join(f"{u + ' rps':>14} {'µs':>5}" for u in USERS)
          + "  anywhere/default keyed/default (rate; CPU)")
    worst: dict[str, list[float]] = {"anywhere": [], "keyed": []}
    for test in tests:
        for name in ("redis", "dumpling"):
            r = results[name]
            cells = " ".join(f"{r[(u, test)][0]:14,.0f} {r[(u, test)][1]:5.2f}" for u in USERS)
            base_rate, base_cpu = r[("default", test)]
            ratios = []
            for user in ("anywhere", "keyed"):
                rate, cpu = r[(user, test)]
                ratios.append(f"{rate / base_rate:.2f}; {base_cpu / cpu:.2f}")
                if name == "dumpling":
                    worst[user].append(base_cpu / cpu)
            print(f"{test:12} {name:9} {cells}  {ratios[0]:>16} {ratios[1]:>16}")
    for user, values in worst.items():
        print(f"dumpling {user}/default CPU-per-request ratio: min {min(values):.2f}, "
              f"median {statistics.median(values):.2f} over {len(values)} tests")


if __name__ == "__main__":
    main()
