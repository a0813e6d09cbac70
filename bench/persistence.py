"""RDB persistence on a big dataset: what BGSAVE costs the serving process, against
Redis measured in the same run.

    python bench/persistence.py [--keys 1000000] [--redis-server redis-server]

For real redis-server and for dumpling, one after the other on the same machine: fill
``--keys`` keys with ``DEBUG POPULATE`` (``key:N`` -> ``value:N``), then

* **pause**: a client sends PING back to back during the whole BGSAVE and records the
  slowest round trip (the fork happens inside the command that starts it, so the
  longest stall a client sees is the fork plus one command); ``latest_fork_usec`` from
  INFO is the fork call alone.  A run of the same probe without BGSAVE gives the
  baseline round trip;
* **memory**: the child's ``Private_Dirty`` (pages copied on write), sampled from
  ``/proc/<child>/smaps_rollup`` every 20 ms until it exits (peak), and the server's
  own ``rdb_last_cow_size``; next to the parent's RSS;
* **time**: BGSAVE duration (start to ``rdb_bgsave_in_progress:0``), SAVE duration,
  file size, and the time a restart needs to load the file and answer.

Numbers vary with the machine's load (it is shared); the ratios are the point.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def private_dirty(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0
    return 0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Server:
    def __init__(self, kind: str, redis_server: str, directory: str) -> None:
        self.kind = kind
        self.directory = directory
        self.port = free_port()
        if kind == "redis":
            argv = [redis_server, "--port", str(self.port), "--save", "", "--appendonly", "no",
                    "--enable-debug-command", "yes", "--dir", directory]
        else:
            argv = [sys.executable, "-m", "dumpling", "--port", str(self.port), "--save", "",
                    "--enable-debug-command", "yes", "--dir", directory]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = open(os.path.join(directory, f"{kind}.log"), "ab")
        started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=directory)
        wait_for_port(self.port, self.proc, timeout=600)
        self.client = redis.Redis(port=self.port, socket_timeout=600)
        while True:  # answers only once the dataset is loaded
            try:
                self.client.ping()
                break
            except redis.BusyLoadingError:
                time.sleep(0.01)
        self.ready_seconds = time.perf_counter() - started

    def info(self) -> dict[str, object]:
        return self.client.info("all")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def probe(port: int, stop: threading.Event, out: list[float]) -> None:
    """PING back to back; every round trip in seconds."""
    c = redis.Redis(port=port, socket_timeout=600)
    while not stop.is_set():
        t = time.perf_counter()
        c.ping()
        out.append(time.perf_counter() - t)


def measure(kind: str, keys: int, redis_server: str) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix=f"bench-persist-{kind}-")
    try:
        server = Server(kind, redis_server, directory)
        c = server.client
        t = time.perf_counter()
        c.execute_command("DEBUG", "POPULATE", keys)
        fill = time.perf_counter() - t
        assert c.dbsize() == keys
        parent_rss = rss(server.proc.pid)

        # baseline probe, same length as a BGSAVE will take (measured below; use 2 s)
        stop, base = threading.Event(), []
        th = threading.Thread(target=probe, args=(server.port, stop, base))
        th.start()
        time.sleep(2.0)
        stop.set()
        th.join()

        stop, rtts = threading.Event(), []
        th = threading.Thread(target=probe, args=(server.port, stop, rtts))
        th.start()
        time.sleep(0.3)
        bg = redis.Redis(port=server.port, socket_timeout=600)
        t0 = time.perf_counter()
        bg.bgsave()
        fork_call = time.perf_counter() - t0
        peak_dirty = 0
        while True:
            for child in children(server.proc.pid):
                peak_dirty = max(peak_dirty, private_dirty(child))
            if bg.info("persistence")["rdb_bgsave_in_progress"] == 0:
                break
            time.sleep(0.02)
        bgsave_seconds = time.perf_counter() - t0
        time.sleep(0.2)
        stop.set()
        th.join()
        info = server.info()
        assert info["rdb_last_bgsave_status"] == "ok"
        size = os.path.getsize(os.path.join(directory, "dump.rdb"))

        t = time.perf_counter()
        c.save()
        save_seconds = time.perf_counter() - t
        server.stop()

        again = Server(kind, redis_server, directory)
        loaded = again.client.dbsize()
        again.stop()
        assert loaded == keys, (kind, loaded)
        return {
            "fill_s": fill,
            "parent_rss_mb": parent_rss / 2**20,
            "fork_us": float(info["latest_fork_usec"]),
            "bgsave_cmd_ms": fork_call * 1000,
            "max_rtt_ms": max(rtts) * 1000,
            "base_max_rtt_ms": max(base) * 1000,
            "p50_rtt_us": sorted(rtts)[len(rtts) // 2] * 1e6,
            "p99_rtt_ms": sorted(rtts)[len(rtts) * 99 // 100] * 1000,
            "slow_pings": float(sum(1 for r in rtts if r > 0.010)),
            "pings_during": float(len(rtts)),
            "cow_peak_mb": peak_dirty / 2**20,
            "cow_reported_mb": float(info["rdb_last_cow_size"]) / 2**20,
            "bgsave_s": bgsave_seconds,
            "save_s": save_seconds,
            "file_mb": size / 2**20,
            "load_ready_s": again.ready_seconds,
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    args = parser.parse_args()
    results = {kind: measure(kind, args.keys, args.redis_server) for kind in ("redis", "dumpling")}
    rows = [
        ("fill_s", "DEBUG POPULATE (s)"),
        ("parent_rss_mb", "server RSS after fill (MB)"),
        ("fork_us", "latest_fork_usec"),
        ("bgsave_cmd_ms", "BGSAVE command round trip (ms)"),
        ("max_rtt_ms", "slowest PING during BGSAVE (ms)"),
        ("base_max_rtt_ms", "slowest PING, no BGSAVE (ms)"),
        ("p50_rtt_us", "median PING during BGSAVE (us)"),
        ("p99_rtt_ms", "p99 PING during BGSAVE (ms)"),
        ("slow_pings", "PINGs slower than 10 ms"),
        ("pings_during", "PINGs answered during BGSAVE"),
        ("cow_peak_mb", "child Private_Dirty peak (MB)"),
        ("cow_reported_mb", "rdb_last_cow_size (MB)"),
        ("bgsave_s", "BGSAVE duration (s)"),
        ("save_s", "SAVE duration (s)"),
        ("file_mb", "dump.rdb size (MB)"),
        ("load_ready_s", "restart until serving (s)"),
    ]
    print(f"{args.keys} keys (DEBUG POPULATE), redis-server vs dumpling, same run")
    print(f"{'':34} {'redis':>12} {'dumpling':>12} {'ratio':>8}")
    for key, label in rows:
        r, d = results["redis"][key], results["dumpling"][key]
        ratio = f"{d / r:.2f}x" if r else "-"
        print(f"{label:34} {r:12.2f} {d:12.2f} {ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
