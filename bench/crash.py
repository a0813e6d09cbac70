"""Crash safety: SIGKILL dumpling at random moments under a write load, restart, count losses.

    python bench/crash.py [--rounds 10] [--modes always,everysec,rdb]

Each round starts a server in a fresh directory, runs one client that pipelines RPUSH
of increasing sequence numbers (plus INCR/HSET/EXPIRE traffic on other keys) and
remembers, for every acknowledged sequence number, when its reply arrived; the server is
SIGKILLed after a random 0.5-2.5 s, restarted on the same directory, and the recovered
list must be exactly 1..n (no gap, nothing invented).  Reported per mode:

* ``always``   (appendonly, appendfsync always): acknowledged writes lost - must be 0;
* ``everysec`` (appendonly, appendfsync everysec): writes lost, and how long before the
  kill the last lost one was acknowledged (Redis's promise: about one second);
* ``rdb``      (save "1 1" only): writes lost relative to the last completed BGSAVE.

Any restart that fails to load is reported as a failure.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, wait_for_port  # noqa: E402

MODES = {
    "always": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    "everysec": ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
    "rdb": ["--appendonly", "no", "--save", "1 1"],
}


def start(directory: str, args: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = open(os.path.join(directory, "server.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "dumpling", "--port", str(port), "--dir", directory, *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=directory)
    wait_for_port(port, proc, timeout=60)
    return proc, port


def one_round(mode: str, rng: random.Random) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix=f"crash-{mode}-")
    try:
        proc, port = start(directory, MODES[mode])
        acked: list[tuple[int, float]] = []
        stop = threading.Event()

        def writer() -> None:
            c = redis.Redis(port=port, socket_timeout=5)
            seq = 0
            try:
                while not stop.is_set():
                    p = c.pipeline(transaction=False)
                    batch = list(range(seq + 1, seq + 11))
                    for n in batch:
                        p.rpush("seq", n)
                    p.incr("counter").hset("h", f"f{seq % 100}", seq).expire("h", 3600)
                    p.execute()
                    now = time.monotonic()
                    acked.extend((n, now) for n in batch)
                    seq = batch[-1]
            except (redis.ConnectionError, redis.TimeoutError, ConnectionResetError):
                return

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(rng.uniform(0.5, 2.5))
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        stop.set()
        t.join()
        for child in Path(directory).glob("temp-*.rdb"):  # a BGSAVE child killed with its parent
            child.unlink()
        proc, port = start(directory, MODES[mode])
        c = redis.Redis(port=port, socket_timeout=30)
        while True:
            try:
                recovered = [int(x) for x in c.lrange("seq", 0, -1)]
                break
            except redis.BusyLoadingError:
                time.sleep(0.05)
        proc.terminate()
        proc.wait(30)
        ok = recovered == list(range(1, len(recovered) + 1))
        last_acked = acked[-1][0] if acked else 0
        lost = max(0, last_acked - len(recovered))
        lost_window = 0.0
        if lost:
            first_lost_ack = next(at for n, at in acked if n == len(recovered) + 1)
            lost_window = killed_at - first_lost_ack
        return {"ok": float(ok), "acked": float(last_acked), "lost": float(lost), "window_s": lost_window}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--modes", default="always,everysec,rdb")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failures = 0
    print(f"{'mode':10} {'rounds':>6} {'acked (mean)':>13} {'lost (max)':>11} {'lost (mean)':>12} "
          f"{'oldest lost ack before kill (max s)':>36} {'loads':>6}")
    for mode in args.modes.split(","):
        results = [one_round(mode, rng) for _ in range(args.rounds)]
        bad = sum(1 for r in results if not r["ok"])
        failures += bad
        if mode == "always":
            failures += sum(1 for r in results if r["lost"])
        print(f"{mode:10} {len(results):6d} {sum(r['acked'] for r in results) / len(results):13.0f} "
              f"{max(r['lost'] for r in results):11.0f} {sum(r['lost'] for r in results) / len(results):12.1f} "
              f"{max(r['window_s'] for r in results):36.2f} {len(results) - bad:3d}/{len(results)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
