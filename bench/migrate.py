"""MIGRATE throughput: keys per second moved between two servers, as ratios against
Redis -> Redis measured in the same run.

    python bench/migrate.py [--keys 50000] [--batches 1,10,100] [--redis-server redis-server]

For every (source, target) pair among real redis-server and dumpling - Redis->Redis
(the reference), dumpling->dumpling, dumpling->Redis and Redis->dumpling - the source
is filled with ``--keys`` keys of one workload (100-byte strings; 16-field hashes), then
everything is moved with ``MIGRATE host port "" 0 5000 KEYS k1 .. kB`` calls of B keys
each, issued back to back by one client exactly as ``redis-cli --cluster reshard``
does (its default pipeline is 10).

The machine is shared, and its load moves a pair's rate by 2x between runs a minute apart,
so the pairs take turns: each of ``--repeat`` rounds runs every pair once, and a pair's
ratio to Redis->Redis is taken within each round (runs seconds apart, under the same load)
and reported as the median over the rounds, with the lowest and highest.  Also reported:
the median keys/s, and the CPU time per key the source and the target spent
(``/proc/<pid>/task/*/schedstat``) with Redis->Redis's total over the pair's, per round,
median (keys per CPU-second relative to Redis->Redis; it moves less than the wall rate when
the machine is busy).  The load average is printed at the start and the end.
All servers run on loopback and are stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measure import cpu_seconds  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, kind: str, redis_server: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-migrate-{kind}-")
        if kind == "redis":
            argv = [redis_server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", self.dir]
        else:
            argv = [sys.executable, "-m", "dumpling", "--port", str(self.port)]
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{kind} did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def fill(server: Server, keys: int, workload: str) -> list[bytes]:
    names = [b"key:%d" % i for i in range(keys)]
    pipe = server.client.pipeline(transaction=False)
    for i, name in enumerate(names):
        if workload == "string":
            pipe.set(name, b"v" * 100)
        else:
            pipe.hset(name, mapping={f"field{j}": f"value-{i}-{j}" for j in range(16)})
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    return names


def migrate_all(source: Server, target: Server, names: list[bytes], batch: int) -> tuple[float, float, float]:
    """(wall seconds, source CPU seconds, target CPU seconds) of moving ``names``."""
    cpu_source, cpu_target = cpu_seconds(source.proc.pid), cpu_seconds(target.proc.pid)
    start = time.perf_counter()
    execute = source.client.execute_command
    for i in range(0, len(names), batch):
        reply = execute("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *names[i : i + batch])
        if reply not in (b"OK", True, "OK"):
            raise RuntimeError(f"MIGRATE {source.kind}->{target.kind}: {reply!r}")
    elapsed = time.perf_counter() - start
    cpu_source, cpu_target = cpu_seconds(source.proc.pid) - cpu_source, cpu_seconds(target.proc.pid) - cpu_target
    if source.client.dbsize() != 0 or target.client.dbsize() != len(names):
        raise RuntimeError("keys went missing")
    return elapsed, cpu_source, cpu_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=50000)
    parser.add_argument("--batches", default="1,10,100", help="keys per MIGRATE call, comma-separated")
    parser.add_argument("--workloads", default="string,hash")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (every pair once each); medians are reported")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    servers = {}
    try:
        for name in ("redis-a", "redis-b", "dumpling-a", "dumpling-b"):
            servers[name] = Server(name.split("-")[0], args.redis_server)
        version = servers["redis-a"].client.info("server")["redis_version"]
        pairs = [("redis-a", "redis-b"), ("dumpling-a", "dumpling-b"), ("dumpling-a", "redis-b"),
                 ("redis-a", "dumpling-b")]
        print(f"MIGRATE throughput, {args.keys} keys per run, {args.repeat} rounds, Redis {version} as the "
              f"reference; load average {os.getloadavg()[0]:.1f}")
        print(f"{'workload':9} {'keys/call':>9}  {'source -> target':22} {'keys/s':>10}  {'vs Redis->Redis':>22}"
              f"  {'CPU us/key source + target':>27}  {'CPU vs Redis->Redis':>19}")
        for workload in args.workloads.split(","):
            for batch in batches:
                keys = args.keys if batch > 1 else min(args.keys, 20000)
                # runs[pair] = [(wall s, source CPU s, target CPU s) per round]; the pairs take turns
                runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {pair: [] for pair in pairs}
                for _ in range(args.repeat):
                    for src_name, dst_name in pairs:
                        src, dst = servers[src_name], servers[dst_name]
                        for s in servers.values():
                            s.client.flushall()
                        names = fill(src, keys, workload)
                        runs[(src_name, dst_name)].append(migrate_all(src, dst, names, batch))
                reference = runs[pairs[0]]
                for pair in pairs:
                    mine = runs[pair]
                    # within a round: Redis->Redis's time over the pair's, CPU and wall
                    ratios = [ref[0] / run[0] for ref, run in zip(reference, mine, strict=True)]
                    cpu_ratios = [(ref[1] + ref[2]) / (run[1] + run[2]) for ref, run in zip(reference, mine, strict=True)]
                    rate = statistics.median(keys / run[0] for run in mine)
                    cpu_src = statistics.median(run[1] for run in mine) * 1e6 / keys
                    cpu_dst = statistics.median(run[2] for run in mine) * 1e6 / keys
                    spread = f"({min(ratios):.2f}-{max(ratios):.2f})"
                    label = f"{servers[pair[0]].kind} -> {servers[pair[1]].kind}"
                    print(f"{workload:9} {batch:>9}  {label:22} {rate:>10.0f}  {statistics.median(ratios):>8.2f}x "
                          f"{spread:>12}  {cpu_src:>12.1f} + {cpu_dst:>12.1f}  "
                          f"{statistics.median(cpu_ratios):>18.2f}x", flush=True)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        for server in servers.values():
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
