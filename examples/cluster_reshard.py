"""Live resharding of a 3-node dumpling cluster while a client keeps reading and writing.

    python examples/cluster_reshard.py [--keys 20000] [--slots 1000] [--batch 100]

1. Describes a 3-master cluster in nodes.conf files (``dumpling.cluster.layout``) and
   starts three ``python -m dumpling --cluster-enabled yes`` nodes on loopback.
2. Fills it through redis-py's ``RedisCluster``.
3. Starts a client thread that keeps reading (checking every value it reads against
   what it last wrote) and writing (updating keys, creating new ones), half of it in
   the slots being moved.
4. Moves ``--slots`` slots from node 1 to node 2 with the sequence ``redis-cli --cluster
   reshard`` uses, per slot: SETSLOT IMPORTING on the target, SETSLOT MIGRATING on the
   source, GETKEYSINSLOT + ``MIGRATE ... KEYS`` until the slot is empty, then SETSLOT
   NODE on the target, the source and the other master.
5. Stops the client and checks every key: its value is the last one written, it lives
   on the node that owns its slot, and nothing was lost.  The redirections the client
   followed are read from the nodes' INFO errorstats (MOVED, ASK).

Everything runs on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dumpling.cluster.layout import NodeSpec, split_slots, static_cluster  # noqa: E402
from dumpling.cluster.slots import key_slot  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    spec: NodeSpec
    proc: subprocess.Popen
    client: redis.Redis

    @property
    def id(self) -> str:
        return self.spec.node_id

    @property
    def port(self) -> int:
        return self.spec.port


def start_cluster(workdir: str, masters: int = 3) -> list[Node]:
    """Start ``masters`` dumpling nodes that know each other from their nodes.conf files."""
    specs = [NodeSpec("127.0.0.1", free_port(), [r], cport=free_port()) for r in split_slots(masters)]
    files = static_cluster(specs)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nodes = []
    for spec in specs:
        conf = os.path.join(workdir, f"nodes-{spec.port}.conf")
        Path(conf).write_text(files[spec.port])
        log = open(os.path.join(workdir, f"node-{spec.port}.log"), "wb")
        proc = subprocess.Popen([sys.executable, "-m", "dumpling", "--port", str(spec.port), "--cluster-enabled", "yes",
                                 "--cluster-config-file", conf, "--cluster-port", str(spec.cport)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
        nodes.append(Node(spec, proc, redis.Redis(port=spec.port, decode_responses=True)))
    for node in nodes:
        deadline = time.monotonic() + 15
        while True:
            try:
                if node.client.cluster("info")["cluster_state"] == "ok":
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline or node.proc.poll() is not None:
                raise RuntimeError(f"node {node.port} did not come up")
            time.sleep(0.05)
    return nodes


def stop_cluster(nodes: list[Node]) -> None:
    for node in nodes:
        node.client.close()
        if node.proc.poll() is None:
            node.proc.terminate()
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()


def move_slot(slot: int, source: Node, target: Node, others: list[Node], batch: int = 100,
              timeout_ms: int = 10000) -> int:
    """redis-cli --cluster reshard's sequence for one slot; returns the number of keys moved."""
    target.client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id)
    source.client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)
    moved = 0
    while True:
        keys = source.client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
        if not keys:
            break
        reply = source.client.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, timeout_ms, "KEYS", *keys)
        if reply not in ("OK", "NOKEY", b"OK", b"NOKEY", True):
            raise RuntimeError(f"MIGRATE answered {reply!r}")
        moved += len(keys)
    for node in (target, source, *others):
        node.client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.id)
    return moved


@dataclass
class Traffic:
    """A client that keeps reading and writing through RedisCluster and remembers what it wrote."""

    port: int
    keys: list[str]
    hot: list[str]  # keys in the slots being moved
    seed: int = 1
    expected: dict[str, str] = field(default_factory=dict)
    reads: int = 0
    writes: int = 0
    created: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        rc = RedisCluster(host="127.0.0.1", port=self.port, decode_responses=True)
        try:
            step = 0
            while not self._stop.is_set():
                step += 1
                key = rng.choice(self.hot if step % 2 else self.keys)
                if step % 3 == 0:
                    value = f"{key}:{step}"
                    rc.set(key, value)
                    self.expected[key] = value
                    self.writes += 1
                elif step % 50 == 0:
                    new = f"new:{{{rng.choice(self.hot)}}}:{step}"
                    rc.set(new, new)
                    self.expected[new] = new
                    self.created += 1
                else:
                    got = rc.get(key)
                    self.reads += 1
                    if got != self.expected[key]:
                        self.errors.append(f"GET {key}: {got!r}, expected {self.expected[key]!r}")
        except Exception as e:  # reported by the checks, never swallowed
            self.errors.append(f"client failed: {type(e).__name__}: {e}")
        finally:
            rc.close()


def redirections(nodes: list[Node]) -> dict[str, int]:
    counts = {"MOVED": 0, "ASK": 0, "TRYAGAIN": 0}
    for node in nodes:
        stats = node.client.info("errorstats")
        for code in counts:
            counts[code] += stats.get(f"errorstat_{code}", {}).get("count", 0)
    return counts


def check(nodes: list[Node], expected: dict[str, str]) -> list[str]:
    """Every key has its last value and lives on its slot's owner; nothing else exists."""
    problems = []
    views = [node.client.execute_command("CLUSTER", "SLOTS") for node in nodes]
    if any(view != views[0] for view in views):
        problems.append("the nodes disagree about slot ownership")
    owner = {}
    for first, last, (_host, port, *_), *_ in views[0]:
        for slot in range(first, last + 1):
            owner[slot] = port
    found = {}
    for node in nodes:
        for key in node.client.scan_iter(count=1000):
            if owner.get(key_slot(key.encode())) != node.port:
                problems.append(f"{key} is on :{node.port}, its slot is owned by :{owner.get(key_slot(key.encode()))}")
            found[key] = node
    for key, value in expected.items():
        node = found.get(key)
        if node is None:
            problems.append(f"{key} is lost")
        elif node.client.get(key) != value:
            problems.append(f"{key}: {node.client.get(key)!r} != {value!r}")
    extra = set(found) - set(expected)
    if extra:
        problems.append(f"{len(extra)} unexpected keys, e.g. {sorted(extra)[:3]}")
    return problems


def run(keys: int, slots: int, batch: int, quiet: bool = False) -> dict[str, object]:
    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    workdir = tempfile.mkdtemp(prefix="dumpling-reshard-")
    nodes: list[Node] = []
    try:
        nodes = start_cluster(workdir)
        say(f"cluster up: {', '.join(f'127.0.0.1:{n.port}' for n in nodes)}")
        source, target, other = nodes
        first_slot = source.spec.ranges[0][0]
        moving = range(first_slot, first_slot + slots)
        rc = RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
        names = [f"key:{i}" for i in range(keys)]
        # Plus a few crowded slots in the range being moved (hash tags), so that the
        # client meets keys already on the target while their slot is still open (ASK).
        tags = [t for t in (f"tag{i}" for i in range(100000)) if key_slot(t.encode()) in moving][:10]
        names += [f"{{{tag}}}:{i}" for tag in tags for i in range(max(keys // 100, 10))]
        expected = {}
        pipe = rc.pipeline()
        for i, name in enumerate(names):
            pipe.set(name, f"{name}:0")
            expected[name] = f"{name}:0"
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
        rc.close()
        hot = [n for n in names if key_slot(n.encode()) in moving]
        say(f"filled {len(names)} keys through RedisCluster; {len(hot)} of them in slots {moving.start}-{moving.stop - 1}")
        traffic = Traffic(nodes[0].port, names, hot or names, expected=expected)
        traffic.start()
        time.sleep(0.3)
        start = time.monotonic()
        moved = 0
        for slot in moving:
            moved += move_slot(slot, source, target, [other], batch=batch)
        elapsed = time.monotonic() - start
        time.sleep(0.3)
        traffic.stop()
        say(f"moved {slots} slots ({moved} keys) from :{source.port} to :{target.port} in {elapsed:.2f} s "
            f"({moved / elapsed:.0f} keys/s) while the client did {traffic.reads} reads, {traffic.writes} writes, "
            f"created {traffic.created} keys")
        seen = redirections(nodes)
        say(f"redirections the client followed: {seen}")
        problems = traffic.errors + check(nodes, traffic.expected)
        say("all keys present with their last written values" if not problems else "PROBLEMS:\n" + "\n".join(
            problems[:20]))
        return {"moved": moved, "seconds": elapsed, "reads": traffic.reads, "writes": traffic.writes,
                "created": traffic.created, "redirections": seen, "problems": problems, "keys": len(traffic.expected)}
    finally:
        stop_cluster(nodes)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100, help="keys per GETKEYSINSLOT/MIGRATE")
    args = parser.parse_args()
    result = run(args.keys, args.slots, args.batch)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
