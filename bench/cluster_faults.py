"""Cluster faults under client traffic: dumpling and Redis clusters side by side in one run.

    python bench/cluster_faults.py [--rounds 3] [--node-timeout 1000] [--fault kill|stop|both]
                                   [--kinds dumpling,redis]

Each kind builds the same cluster (``redis-cli --cluster create`` of 6 nodes with
``--cluster-replicas 1``, the same ``cluster-node-timeout``), and a redis-py
``RedisCluster`` client writes and reads counters over every slot range in a thread.  A
round picks a master and either kills it (SIGKILL) or stops it (SIGSTOP, resumed once its
replica took over); it measures:

- promotion: from the fault to the moment another node shows the master's replica as
  ``master`` in CLUSTER NODES;
- outage: the longest time between two acknowledged writes of the client (a write
  blocked in redis-py's retries counts as well as one that failed); errors: the
  exceptions that reached the application;
- rejoin: from the old master answering again (restarted from its nodes.conf, or resumed)
  to it showing ``slave`` for itself;
- lost: acknowledged writes whose value is gone after the failover (asynchronous
  replication may lose some; both servers are measured the same way).

Medians are printed per kind with dumpling/Redis ratios.  Noisy machines: compare the
ratios from one run, not absolute figures.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import ServerProcess  # noqa: E402
from tests.test_cluster_bus import cli, node_line, restart, start_node, text, wait_for  # noqa: E402


@dataclass
class Round:
    promotion: float = 0.0
    outage: float = 0.0
    errors: int = 0
    rejoin: float = 0.0
    lost: int = 0


@dataclass
class Traffic:
    """Writes ``key{i}`` = a counter in a loop; remembers acknowledged values and failures."""

    client: RedisCluster
    keys: int = 300
    acked: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    longest_gap: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        i = 0
        last_ok = time.monotonic()
        while not self.stop.is_set():
            key = f"key{i % self.keys}"
            try:
                self.client.set(key, i)
                self.acked[key] = i
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
            except (redis.RedisError, OSError):
                self.errors += 1
                time.sleep(0.01)
            i += 1


def build(kind: str, timeout: int) -> list[ServerProcess]:
    nodes = [start_node(kind, "--cluster-node-timeout", str(timeout)) for _ in range(6)]
    out = subprocess.run([cli(), "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                          "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True, timeout=120)
    if out.returncode:
        raise RuntimeError(out.stdout[-2000:])
    wait_for(lambda: all("cluster_state:ok" in text(n, "CLUSTER", "INFO") for n in nodes), timeout=60,
             what="cluster ok")
    wait_for(lambda: all("master_link_status:up" in text(n, "INFO", "replication") for n in nodes
                         if "myself,slave" in text(n, "CLUSTER", "NODES")), timeout=60, what="replicas synced")
    return nodes


def masters_with_replica(nodes: list[ServerProcess]) -> list[tuple[ServerProcess, ServerProcess]]:
    by_id = {text(n, "CLUSTER", "MYID"): n for n in nodes}
    pairs = []
    for node in nodes:
        line = node_line(node, text(node, "CLUSTER", "MYID")).split(" ")
        if "slave" in line[2] and line[3] in by_id:
            pairs.append((by_id[line[3]], node))
    return pairs


def one_round(nodes: list[ServerProcess], fault: str, timeout: int) -> tuple[Round, list[ServerProcess]]:
    master, replica = masters_with_replica(nodes)[0]
    observer = next(n for n in nodes if n is not master and n is not replica)
    replica_id = text(replica, "CLUSTER", "MYID")
    rc = RedisCluster(host="127.0.0.1", port=observer.port, socket_timeout=0.5, socket_connect_timeout=0.5)
    traffic = Traffic(rc)
    worker = threading.Thread(target=traffic.run)
    worker.start()
    result = Round()
    try:
        time.sleep(1.0)
        started = time.monotonic()
        if fault == "kill":
            master.proc.kill()
            master.proc.wait()
        else:
            master.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: " master " in f" {node_line(observer, replica_id).split(' ')[2].replace(',', ' ')} ",
                 timeout=timeout / 1000 * 20 + 30, what="promotion")
        result.promotion = time.monotonic() - started
        time.sleep(1.0)  # traffic continues against the new master
    finally:
        traffic.stop.set()
        worker.join()
    result.outage = traffic.longest_gap
    result.errors = traffic.errors
    check = RedisCluster(host="127.0.0.1", port=observer.port)
    result.lost = sum(1 for key, value in traffic.acked.items() if check.get(key) != str(value).encode())
    check.close()
    rc.close()
    if fault == "kill":
        again = restart(master)
        nodes = [again if n is master else n for n in nodes]
        master = again
    else:
        master.proc.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    master_id = text(master, "CLUSTER", "MYID")
    try:
        wait_for(lambda: "myself,slave" in node_line(master, master_id), timeout=60, what="old master rejoins")
    except TimeoutError:  # reported (as inf) rather than ending the run
        result.rejoin = float("inf")
        print(f"  the old master {master.port} did not turn into a replica within 60 s", flush=True)
        return result, nodes
    result.rejoin = time.monotonic() - resumed
    wait_for(lambda: all("cluster_state:ok" in text(n, "CLUSTER", "INFO") for n in nodes), timeout=60,
             what="cluster ok again")
    wait_for(lambda: "master_link_status:up" in text(master, "INFO", "replication"), timeout=60, what="resynced")
    return result, nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--node-timeout", type=int, default=1000)
    parser.add_argument("--fault", choices=("kill", "stop", "both"), default="both")
    parser.add_argument("--kinds", default="dumpling,redis")
    args = parser.parse_args()
    faults = ("kill", "stop") if args.fault == "both" else (args.fault,)
    kinds = args.kinds.split(",")
    results: dict[tuple[str, str], list[Round]] = {}
    for kind in kinds:
        nodes = build(kind, args.node_timeout)
        try:
            for fault in faults:
                for n in range(args.rounds):
                    r, nodes = one_round(nodes, fault, args.node_timeout)
                    results.setdefault((kind, fault), []).append(r)
                    print(f"{kind:8} {fault:4} round {n + 1}: promotion {r.promotion:.2f}s outage {r.outage:.2f}s "
                          f"errors {r.errors} rejoin {r.rejoin:.2f}s lost {r.lost}", flush=True)
        finally:
            for node in nodes:
                node.stop_process()
                node.stop()
    print(f"\ncluster-node-timeout {args.node_timeout} ms, {args.rounds} rounds, medians:")
    for fault in faults:
        row = {kind: results[(kind, fault)] for kind in kinds}
        for metric in ("promotion", "outage", "rejoin", "errors", "lost"):
            meds = {kind: statistics.median(getattr(r, metric) for r in rounds) for kind, rounds in row.items()}
            ratio = ""
            if "redis" in meds and "dumpling" in meds and meds["redis"]:
                ratio = f"  dumpling/redis {meds['dumpling'] / meds['redis']:.2f}"
            shown = "  ".join(f"{kind} {value:.2f}" for kind, value in meds.items())
            print(f"  {fault:4} {metric:9} {shown}{ratio}")


if __name__ == "__main__":
    main()
