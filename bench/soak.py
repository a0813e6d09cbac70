"""Chaos soak: redis-benchmark traffic (SET/GET/INCR/MSET, pipelined, so mostly the C fast
path) while other clients keep changing the state the fast path must notice.

Two threads send FLUSHALL, SWAPDB, PEXPIRE, SCAN, CONFIG SET of notifications / eviction
policy / slowlog threshold, WATCH+MULTI+EXEC, RPUSH, APPEND, DEL and SET EX on the same
keys, and a MONITOR client comes and goes (the fast path must step aside while it is there).  At the end the server must answer, must not
have logged an unexpected error, and no command may have failed other than the
WRONGTYPE / not-an-integer replies the mix provokes.

    python bench/soak.py [--seconds 20] [--pure]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import start_dumpling  # noqa: E402

EXPECTED = ("WRONGTYPE", "not an integer")


def chaos(port: int, seed: int, until: float, errors: list[str], counts: list[int]) -> None:
    r = redis.Redis(port=port)
    rng = random.Random(seed)
    while time.time() < until:
        key = "key:%012d" % rng.randrange(200)  # redis-benchmark's -r 200 key space
        choice = rng.randrange(12)
        try:
            if choice == 0:
                r.flushall()
            elif choice == 1:
                r.swapdb(0, 1)
            elif choice == 2:
                r.pexpire(key, rng.randrange(1, 50))
            elif choice == 3:
                r.scan(0, count=50)
            elif choice == 4:
                r.config_set("notify-keyspace-events", rng.choice(["", "KEA"]))
            elif choice == 5:
                with r.pipeline() as pipe:
                    pipe.watch(key)
                    pipe.multi()
                    pipe.incr(key)
                    pipe.execute()
            elif choice == 6:
                r.config_set("maxmemory-policy", rng.choice(["noeviction", "allkeys-lfu", "allkeys-lru"]))
            elif choice == 7:
                r.rpush(key, "x")
            elif choice == 8:
                r.append(key, "z")
            elif choice == 9:
                r.config_set("slowlog-log-slower-than", rng.choice([0, 10000, -1]))
            elif choice == 10:
                r.delete(key)
            else:
                r.set(key, "7", ex=1)
        except redis.exceptions.WatchError:
            pass  # another client wrote the key: EXEC refused, as it should be
        except redis.exceptions.ResponseError as e:
            if not any(text in str(e) for text in EXPECTED):
                errors.append(str(e))
        counts[0] += 1


def monitor_now_and_then(port: int, until: float, lines: list[int]) -> None:
    """MONITOR for 0.3 s of every second: the fast path must step aside, then come back."""
    while time.time() < until:
        conn = redis.Redis(port=port, socket_timeout=1)
        with conn.monitor() as monitor:
            stop_at = time.time() + 0.3
            for _ in monitor.listen():
                lines[0] += 1
                if time.time() >= stop_at:
                    break
        conn.close()
        time.sleep(0.7)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--pure", action="store_true", help="without the C accelerators (DUMPLING_PURE=1)")
    args = parser.parse_args()
    server = start_dumpling(env={"DUMPLING_PURE": "1"} if args.pure else None)
    try:
        until = time.time() + args.seconds
        bench = subprocess.Popen(
            ["redis-benchmark", "-p", str(server.port), "-c", "20", "-n", "1000000000", "-r", "200", "-P", "16",
             "-t", "set,get,incr,mset", "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        errors: list[str] = []
        counts = [0]
        monitored = [0]
        threads = [threading.Thread(target=chaos, args=(server.port, seed, until, errors, counts)) for seed in (1, 2)]
        threads.append(threading.Thread(target=monitor_now_and_then, args=(server.port, until, monitored)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bench.terminate()
        bench.wait()
        r = redis.Redis(port=server.port)
        alive = r.ping()
        processed = r.info("stats")["total_commands_processed"]
        log = server.log()
        unexpected = [line for line in log.splitlines() if "Unexpected error" in line or "Traceback" in line]
        print(f"{processed:,} commands, {counts[0]:,} chaos operations, {monitored[0]:,} MONITOR lines; "
              f"server answers: {alive}; unexpected errors: {len(errors) + len(unexpected)}")
        for line in (errors + unexpected)[:10]:
            print("  ", line)
        return 0 if alive and not errors and not unexpected else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
