"""The cluster bus between processes, each step compared with a real Redis 7.0 cluster
built the same way.

Clusters are module fixtures shared by the tests that follow one another in this file
(pytest keeps file order): ``twins`` is a cluster of 3 dumpling masters and one of 3
Redis masters that go through the same ``redis-cli --cluster`` operations side by side
(create, add-node, rebalance, del-node, fix, import), then the same failovers (manual,
with its write pause; automatic, to a real Redis replica of a dumpling master and to a
dumpling replica of a real Redis master; old masters rejoin as replicas); ours, mixed by
then, reshards slots both ways between a Redis and a dumpling master under redis-py
traffic, then detects a stopped node and takes it back from its nodes.conf.  ``six`` is 6
dumpling nodes made with ``--cluster-replicas 1``.  Node processes start in parallel;
node timeouts are 1 s; waits poll every 50 ms.

Longer runs (a full rebalance of 4096 slots, kills and stops under traffic) are marked
``slow``, and so are the failovers between Redis and dumpling nodes with the reshard under
traffic that follows them: Redis's fixed 5 s manual-failover window ran out now and then on a
loaded CI machine, on both servers alike (run them with ``-m 'slow or not slow'``);
``bench/cluster_faults.py`` measures failover times against Redis.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from dumpling.cluster import busproto as bp
from dumpling.cluster.slots import key_slot
from tests.servers import (
    ROOT,
    ServerProcess,
    encode_command,
    free_port,
    parse_reply,
    require_redis,
    start_dumpling,
    start_redis,
    wait_for_port,
)

TIMEOUT = "1000"
POLL = 0.05
# How long a wait for gossip to converge may take before it fails: it ends as soon as the views
# agree (~1-2 s with 1 s node timeouts), but a loaded 2-core CI machine stretched Redis's own
# cluster past 10 s once, and a dumpling node's view of a Redis replica's new role past 10 s.
EVENTUALLY = 60.0


# ----------------------------------------------------------------------------- helpers


def cli() -> str:
    path = shutil.which("redis-cli")
    if path is None:
        pytest.skip("redis-cli not installed")
    return path


def start_node(kind: str, *args: str) -> ServerProcess:
    start = start_dumpling if kind == "dumpling" else start_redis
    for attempt in range(3):
        port = free_port()  # (its bus port, port + 10000, is free too)
        try:
            node = start("--cluster-enabled", "yes", "--cluster-node-timeout", TIMEOUT, *args, port=port)
        except RuntimeError:  # the port was taken meanwhile, or a loaded machine was slow
            if attempt == 2:
                raise
            continue
        try:  # the bus listens a moment after the client port (a test may connect to it at once)
            wait_for_port(port + 10000, node.proc)
        except RuntimeError:
            node.stop()
            if attempt == 2:
                raise
            continue
        node.kind = kind  # type: ignore[attr-defined]
        return node
    raise AssertionError("unreachable")


def start_nodes(kinds: list[str], *args: str) -> list[ServerProcess]:
    """Start nodes three at a time (a dumpling process spends most of a second importing); if
    one fails, the others are stopped before the error goes on (no server outlives the test)."""
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(start_node, kind, *args) for kind in kinds]
    failures = [f.exception() for f in futures if f.exception() is not None]
    if failures:
        for future in futures:
            if future.exception() is None:
                future.result().stop()
        raise failures[0]
    return [future.result() for future in futures]


def both(fn: Callable[..., Any], *calls: tuple[Any, ...]) -> list[Any]:
    """Run ``fn(*args)`` for each argument tuple at the same time; the results in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda args: fn(*args), calls))


def call(node: ServerProcess, *args: str | int | bytes) -> object:
    with node.raw() as conn:
        return parse_reply(conn.call(*args))


def text(node: ServerProcess, *args: str | int) -> str:
    reply = call(node, *args)
    assert isinstance(reply, bytes), reply
    return reply.decode()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(POLL)


def addr(node: ServerProcess) -> str:
    return f"127.0.0.1:{node.port}"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``redis-cli --cluster ...``; a question redis-cli asks even with --cluster-yes gets 'yes'."""
    return subprocess.run([cli(), "--cluster", *args], capture_output=True, text=True, timeout=120, input="yes\n")


def create(nodes: list[ServerProcess], replicas: int = 0) -> str:
    args = ["create", *[addr(n) for n in nodes], "--cluster-yes"]
    if replicas:
        args += ["--cluster-replicas", str(replicas)]
    out = run_cli(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def check_clean(node: ServerProcess) -> bool:
    out = run_cli("check", addr(node))
    return (out.returncode == 0 and "[OK] All nodes agree about slots configuration." in out.stdout
            and "[OK] All 16384 slots covered." in out.stdout)


def settle(node: ServerProcess, timeout: float = EVENTUALLY) -> None:
    """Until ``--cluster check`` is clean (views converge by gossip, in Redis too)."""
    wait_for(lambda: check_clean(node), timeout, what=f"--cluster check clean from {node.port}")


def cluster_ok(nodes: list[ServerProcess]) -> bool:
    return all("cluster_state:ok" in text(n, "CLUSTER", "INFO") for n in nodes)


def my_id(node: ServerProcess) -> str:
    return text(node, "CLUSTER", "MYID")


def node_line(node: ServerProcess, node_id: str) -> str:
    """The CLUSTER NODES line of ``node_id`` as ``node`` sees it ('' if unknown)."""
    return next((x for x in text(node, "CLUSTER", "NODES").splitlines() if x.startswith(node_id)), "")


def role_of(node: ServerProcess) -> str:
    """'master' or 'slave' as the node sees itself."""
    flags = node_line(node, my_id(node)).split(" ")[2].split(",")
    return "master" if "master" in flags else "slave"


def restart(node: ServerProcess) -> ServerProcess:
    """Stop ``node`` (if it still runs) and start the same kind again from its directory
    (its nodes.conf) on the same port."""
    node.stop_process()
    args = ["--port", str(node.port), "--cluster-enabled", "yes", "--cluster-node-timeout", TIMEOUT, "--dir",
            node.dir, "--save", ""]
    if node.kind == "dumpling":  # type: ignore[attr-defined]
        argv = [sys.executable, "-m", "dumpling", *args]
    else:
        argv = [require_redis(), *args, "--bind", "127.0.0.1", "--appendonly", "no"]
    again = ServerProcess(argv, node.port, node.kind)  # type: ignore[attr-defined]
    again.kind = node.kind  # type: ignore[attr-defined]
    return again


def nodes_view(node: ServerProcess, labels: dict[str, str]) -> list[str]:
    """CLUSTER NODES without times, ids and ports replaced by labels, sorted."""
    lines = []
    for line in text(node, "CLUSTER", "NODES").splitlines():
        f = line.split(" ")
        f[4] = f[5] = "T"
        line = " ".join(f)
        for old, new in labels.items():
            line = line.replace(old, new)
        lines.append(line)
    return sorted(lines)


def same_views(nodes: list[ServerProcess]) -> bool:
    """Every node prints the same CLUSTER NODES (but for which line is "myself")."""
    labels = labels_of(nodes)
    views = {tuple(line.replace("myself,", "") for line in nodes_view(n, labels)) for n in nodes}
    return len(views) == 1


def labels_of(nodes: list[ServerProcess]) -> dict[str, str]:
    table = {}
    for i, n in enumerate(nodes):
        table[my_id(n)] = f"ID{i}"
        table[f":{n.port}@{n.port + 10000}"] = f":P{i}@B{i}"
    return table


def labelled(value: object, table: dict[str, str], nodes: list[ServerProcess]) -> str:
    """A reply's repr with ids and ports as labels and replication offsets hidden."""
    out = repr(value)
    for old, new in table.items():
        out = out.replace(old, new)
    for i, node in enumerate(nodes):
        out = out.replace(str(node.port), f"P{i}")
    return re.sub(r"b'replication-offset', \d+", "OFF", out)


def stop_all(nodes: list[ServerProcess]) -> None:
    for node in nodes:
        if node.proc.poll() is None and node.proc.returncode is None:
            try:
                node.proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
        node.stop()


# ----------------------------------------------------------------------------- twins


@dataclass
class Side:
    """One cluster of the ``twins``: its nodes by label (None once removed) and standalone helpers."""

    kind: str
    nodes: list[ServerProcess | None]
    extra: list[ServerProcess] = field(default_factory=list)  # processes outside the cluster

    @property
    def members(self) -> list[ServerProcess]:
        return [n for n in self.nodes if n is not None]

    @property
    def entry(self) -> ServerProcess:
        return self.nodes[1] or self.members[0]  # node 1 stays a master with slots throughout

    def settle(self) -> None:
        """``--cluster check`` clean from the entry node, and every node that is in a
        cluster (knows another node) known to the entry: a node just introduced is in
        the check only once the entry has it."""
        def joined() -> bool:
            seen = {line.split(" ")[0] for line in text(self.entry, "CLUSTER", "NODES").splitlines()
                    if "handshake" not in line}
            inside = {my_id(n) for n in self.members if "cluster_known_nodes:1\r\n" not in text(n, "CLUSTER", "INFO")}
            return inside <= seen and check_clean(self.entry)

        wait_for(joined, EVENTUALLY, what=f"{self.kind} cluster settled")

    def ids(self) -> dict[str, int]:
        return {my_id(n): i for i, n in enumerate(self.nodes) if n is not None}

    def picture(self, anyone: tuple[int, ...] = ()) -> list[tuple[int, str, int, int | None]]:
        """(label, role, slots, label of its master) per member, as the entry node sees them;
        the nodes labelled in ``anyone`` may follow any master (-1 shown).  Which slots a
        rebalance moves depends on redis-cli's order of equally balanced nodes (by chance),
        so slots are counted, not listed."""
        labels = self.ids()
        rows = []
        for line in text(self.entry, "CLUSTER", "NODES").splitlines():
            f = line.split(" ")
            if f[0] not in labels:
                continue
            slots = 0
            for part in f[8:]:
                if part.startswith("["):
                    continue
                first, _, last = part.partition("-")
                slots += int(last or first) - int(first) + 1
            master = labels.get(f[3]) if f[3] != "-" else None
            if master is not None and labels[f[0]] in anyone:
                master = -1
            rows.append((labels[f[0]], "master" if "master" in f[2] else "slave", slots, master))
        return sorted(rows)


def converge(ours: Side, theirs: Side, anyone: tuple[int, ...] = (), timeout: float = EVENTUALLY) -> None:
    """The same picture on both sides once gossip has spread the last change (a role
    change reaches the other nodes with the next ping, in Redis too)."""
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: ours.picture(anyone) == theirs.picture(anyone), timeout, what="same picture")
    assert ours.picture(anyone) == theirs.picture(anyone)


def outcome(out: subprocess.CompletedProcess[str], side: Side) -> tuple[int, list[str]]:
    """redis-cli's exit status and its [OK]/[ERR]/*** lines with ports and ids as labels."""
    lines = []
    table = {str(n.port): f"P{i}" for i, n in enumerate(side.nodes + side.extra) if n is not None}
    for line in re.sub(r"\x1b\[[0-9;]*m", "", out.stdout).splitlines():
        if line.startswith(("[OK]", "[ERR]", "***")):
            for old, new in table.items():
                line = line.replace(old, new)
            lines.append(line)
    return out.returncode, lines


@pytest.fixture(scope="module")
def twins() -> Iterator[tuple[Side, Side]]:
    """3 dumpling masters and 3 Redis masters, each made by ``--cluster create``."""
    started = start_nodes(["dumpling"] * 3 + ["redis"] * 3)
    ours, theirs = Side("dumpling", list(started[:3])), Side("redis", list(started[3:]))
    try:
        both(create, (ours.members,), (theirs.members,))
        wait_for(lambda: cluster_ok(ours.members) and cluster_ok(theirs.members), what="cluster_state:ok")
        yield ours, theirs
    finally:
        for side in (ours, theirs):
            stop_all(side.members + side.extra)


def test_cluster_create_matches_redis(twins: tuple[Side, Side]) -> None:
    """Same CLUSTER NODES/INFO/SLOTS/SHARDS on both; PUBLISH on one node reaches the others."""
    ours, theirs = (side.members for side in twins)
    settle(ours[1])
    lo, lt = labels_of(ours), labels_of(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert nodes_view(a, lo) == nodes_view(b, lt)
        assert text(a, "CLUSTER", "INFO").split("\r\n")[:9] == text(b, "CLUSTER", "INFO").split("\r\n")[:9]
        for sub in ("SLOTS", "SHARDS"):
            got = [labelled(x, lo, ours) for x in call(a, "CLUSTER", sub)]  # type: ignore[attr-defined]
            want = [labelled(x, lt, theirs) for x in call(b, "CLUSTER", sub)]  # type: ignore[attr-defined]
            if sub == "SHARDS":  # in node-table order: compare as sets
                got, want = sorted(got), sorted(want)
            assert got == want, sub
    sub = redis.Redis(port=ours[2].port).pubsub()
    sub.subscribe("news")
    assert sub.get_message(timeout=20)["type"] == "subscribe"
    assert redis.Redis(port=ours[0].port).publish("news", "hello") == 0
    msg = sub.get_message(timeout=20)  # (over the bus from node 0)
    assert msg is not None and msg["data"] == b"hello"
    sub.close()


def test_cli_operations_match_redis(twins: tuple[Side, Side]) -> None:
    """add-node (master; replica of a given master; replica of the least replicated one),
    rebalance --cluster-use-empty-masters, rebalance to weight 0, del-node, fix (an open
    slot, an uncovered slot) and import give the same outcome on both clusters.

    The dumpling cluster gets real Redis replicas and imports from a Redis server; the
    Redis cluster imports from a dumpling server: both directions of MIGRATE."""
    ours, theirs = twins
    ours.nodes += start_nodes(["dumpling", "redis", "redis"])
    theirs.nodes += start_nodes(["redis", "redis", "redis"])
    ours.extra.append(start_redis())
    theirs.extra.append(start_dumpling())

    def step(side: Side, *args: str) -> tuple[int, list[str]]:
        out = run_cli(*args)
        side.settle()
        return outcome(out, side)

    def same(make: Callable[[Side], tuple[str, ...]], anyone: tuple[int, ...] = (), timeout: float = EVENTUALLY) -> None:
        """One operation on both clusters at once: same redis-cli outcome, same picture."""
        results = both(lambda side: step(side, *make(side)), (ours,), (theirs,))
        assert results[0] == results[1]
        assert results[0][0] == 0, results[0]
        converge(ours, theirs, anyone, timeout)

    def at(side: Side, i: int) -> ServerProcess:
        node = side.nodes[i]
        assert node is not None
        return node

    same(lambda s: ("add-node", addr(at(s, 3)), addr(s.entry)))
    same(lambda s: ("add-node", addr(at(s, 4)), addr(s.entry), "--cluster-slave", "--cluster-master-id",
                    my_id(at(s, 0))))
    same(lambda s: ("rebalance", addr(s.entry), "--cluster-use-empty-masters", "--cluster-weight",
                    f"{my_id(at(s, 3))}=0.02"))
    picture = ours.picture()
    assert picture[3][2] > 0 and picture[4][1:4] == ("slave", 0, 0)
    # emptied by weight 0, node 3 turns into a replica of the last taker (Redis 7.4's SETSLOT
    # rule), whichever master that was: redis-cli orders equally balanced nodes by chance
    same(lambda s: ("rebalance", addr(s.entry), "--cluster-weight", f"{my_id(at(s, 3))}=0"), anyone=(3,))
    for side in twins:  # it turns replica with the gossip that follows, on both (converge may see it before)
        wait_for(lambda side=side: side.picture((3,))[3][1:3] == ("slave", 0), EVENTUALLY,
                 what="node 3 became a replica")
    converge(ours, theirs, anyone=(3,))
    same(lambda s: ("del-node", addr(s.entry), my_id(at(s, 3))))
    for side in twins:  # forgotten by the others, and CLUSTER RESET SOFT: alone again
        assert "cluster_known_nodes:1\r\n" in text(at(side, 3), "CLUSTER", "INFO")
        at(side, 3).stop()
        side.nodes[3] = None
    # a replica of whichever master has fewest (a tie among masters 1 and 2: compare the shape)
    for side in twins:
        assert step(side, "add-node", addr(at(side, 5)), addr(side.entry), "--cluster-slave")[0] == 0
    for side in twins:
        def follows_one(side: Side = side) -> bool:
            row = side.picture()[-1]
            return row[0] == 5 and row[1:3] == ("slave", 0) and row[3] in (1, 2)

        wait_for(follows_one, EVENTUALLY, what="node 5 replicates master 1 or 2")
    same(lambda s: ("del-node", addr(s.entry), my_id(at(s, 5))))
    for side in twins:
        at(side, 5).stop()
        side.nodes[5] = None
    # fix: a slot of node 0 left MIGRATING, then another one uncovered everywhere while node 0
    # holds a key of it, so fix gives it back to node 0 (a slot without keys would go to a
    # random master)
    held: dict[str, str] = {}
    for side in twins:
        first, _, last = node_line(side.entry, my_id(at(side, 0))).split(" ")[8].partition("-")
        assert int(last) > int(first)
        assert call(at(side, 0), "CLUSTER", "SETSLOT", first, "MIGRATING", my_id(at(side, 1))) == b"OK"
        held[side.kind] = next(f"{{t{i}}}" for i in range(100000) if key_slot(f"t{i}".encode()) == int(last))
    same(lambda s: ("fix", addr(s.entry)))
    for side in twins:
        assert call(at(side, 0), "SET", held[side.kind], "kept") == b"OK"
        for node in side.members:
            call(node, "CLUSTER", "DELSLOTS", key_slot(held[side.kind].encode()))
        wait_for(lambda side=side: not check_clean(side.entry), what="slot uncovered")
    same(lambda s: ("fix", addr(s.entry)))
    for side in twins:  # node 0 serves that slot again (no redirection)
        assert call(at(side, 0), "GET", held[side.kind]) == b"kept"
    # import: keys of a standalone server land on their slots' owners
    for side in twins:
        source = redis.Redis(port=side.extra[0].port)
        source.mset({f"imp{i}": i for i in range(60)})
        source.close()
    same(lambda s: ("import", addr(s.entry), "--cluster-from", addr(s.extra[0]), "--cluster-copy"))
    for side in twins:
        rc = RedisCluster(host="127.0.0.1", port=side.entry.port)
        assert [rc.get(f"imp{i}") for i in range(60)] == [str(i).encode() for i in range(60)]
        assert rc.get(held[side.kind]) == b"kept"
        rc.close()
        assert sum(int(call(n, "DBSIZE")) for n in side.members if role_of(n) == "master") == 61  # type: ignore[misc]


@pytest.mark.slow
def test_failovers_with_real_redis_match_redis(twins: tuple[Side, Side]) -> None:
    """Node 0 (dumpling in ours) and its replica node 4 (a real Redis in both):

    1. CLUSTER FAILOVER on the replica: the master holds writes under the failover's own
       pause, which CLIENT UNPAUSE does not end; a held write is redirected once done.
    2. Kill the new master (Redis): the dumpling replica takes over, and the restarted
       Redis rejoins as its replica.
    3. Kill the dumpling master: the Redis replica takes over within the time Redis needs,
       and the restarted dumpling rejoins as a replica."""
    ours, theirs = twins
    for side in twins:
        wait_for(lambda side=side: "master_link_status:up" in text(side.nodes[4], "INFO", "replication"),
                 what="replica synced")

    def manual(side: Side) -> tuple[bytes, bool, bytes]:
        """One manual failover; tried again (up to three times) when it timed out, as a
        failover does on both servers when a loaded machine keeps the replica from catching
        up within Redis's fixed 5 s manual-failover window."""
        for _ in range(3):
            outcome = manual_once(side)
            if outcome[2] != b"+OK\r\n" or role_of(side.nodes[4]) == "master":  # type: ignore[arg-type]
                return outcome
            wait_for(lambda: "master_link_status:up" in text(side.nodes[4], "INFO", "replication"),  # type: ignore[arg-type]
                     what="replica synced again")
        return outcome

    def manual_once(side: Side) -> tuple[bytes, bool, bytes]:
        master, replica = side.nodes[0], side.nodes[4]
        assert master is not None and replica is not None
        first, _, last = node_line(master, my_id(master)).split(" ")[8].partition("-")
        tag = next(f"t{i}" for i in range(100000) if int(first) <= key_slot(f"t{i}".encode()) <= int(last or first))
        mine = [f"{{{tag}}}a", f"{{{tag}}}b"]
        requested = master.log().count("Manual failover requested by replica")
        # cut replication (the bus stays up) and move the master's offset on: the failover
        # waits for an offset the replica cannot reach while the master holds writes
        call(master, "CONFIG", "SET", "requirepass", "pw")
        with master.raw() as admin:
            admin.call("AUTH", "pw")
            admin.call("CLIENT", "KILL", "TYPE", "replica")
            wait_for(lambda: b"connected_slaves:0" in admin.call("INFO", "replication"), what="replica cut")
            assert admin.call("SET", mine[0], "x") == b"+OK\r\n"
            assert call(replica, "CLUSTER", "FAILOVER") == b"OK"
            wait_for(lambda: master.log().count("Manual failover requested by replica") > requested,
                     what="MFSTART received")
            unpause = admin.call("CLIENT", "UNPAUSE")
            with master.raw() as held:
                held.call("AUTH", "pw")
                held.sock.settimeout(0.5)
                held.send(encode_command("SET", mine[1], "v"))
                try:
                    held.read_reply()
                    blocked = False
                except TimeoutError:
                    blocked = True
                admin.call("CONFIG", "SET", "requirepass", "")  # the replica catches up; the failover ends
                held.sock.settimeout(20)
                after = held.read_reply()
        return unpause, blocked, after.split(b" ")[0]

    results = both(manual, (ours,), (theirs,))
    assert results[0] == results[1]
    assert results[0] == (b"+OK\r\n", True, b"-MOVED")
    for side in twins:
        wait_for(lambda side=side: role_of(side.nodes[4]) == "master" and role_of(side.nodes[0]) == "slave",
                 what="manual failover done")
        side.settle()
    converge(ours, theirs)

    def kill_and_rejoin(side: Side, victim: int, heir: int) -> float:
        node, successor = side.nodes[victim], side.nodes[heir]
        assert node is not None and successor is not None
        wait_for(lambda: "master_link_status:up" in text(successor, "INFO", "replication"), what="synced")
        started = time.monotonic()
        node.proc.kill()
        node.proc.wait()
        wait_for(lambda: role_of(successor) == "master", what=f"{successor.kind} replica promoted")  # type: ignore[attr-defined]
        took = time.monotonic() - started
        again = restart(node)
        side.nodes[victim] = again
        wait_for(lambda: role_of(again) == "slave" and f" {my_id(successor)} " in node_line(again, my_id(again)),
                 what="old master rejoins as a replica")
        side.settle()
        return took

    # a real Redis master (ours) dies: its dumpling replica takes over
    times = both(kill_and_rejoin, (ours, 4, 0), (theirs, 4, 0))
    converge(ours, theirs)
    assert times[0] < max(2 * times[1], times[1] + 2), times
    # a dumpling master (ours) dies: its real Redis replica takes over
    times = both(kill_and_rejoin, (ours, 0, 4), (theirs, 0, 4))
    converge(ours, theirs)
    assert times[0] < max(2 * times[1], times[1] + 2), times
    rc = RedisCluster(host="127.0.0.1", port=ours.entry.port)
    assert [rc.get(f"imp{i}") for i in range(60)] == [str(i).encode() for i in range(60)]
    rc.close()


@pytest.mark.slow
def test_mixed_cluster_reshards_under_traffic(twins: tuple[Side, Side]) -> None:
    """After the failovers ours is mixed: a real Redis master (node 4) beside dumpling masters.
    Slots move both ways between them while redis-py writes and reads: nothing lost, every
    MOVED/ASK followed."""
    ours, _ = twins
    redis_master, dumpling_master = ours.nodes[4], ours.nodes[1]
    assert redis_master is not None and dumpling_master is not None
    assert redis_master.kind == "redis" and role_of(redis_master) == "master"  # type: ignore[attr-defined]
    rc = RedisCluster(host="127.0.0.1", port=dumpling_master.port)
    stop = threading.Event()
    written: dict[str, int] = {}
    errors: list[BaseException] = []

    def traffic() -> None:
        i = 0
        try:
            while not stop.is_set():
                key = f"k{i % 400}"
                rc.set(key, i)
                written[key] = i
                assert int(rc.get(key)) == i
                i += 1
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        wait_for(lambda: len(written) == 400, what="traffic")
        ids = {"redis": my_id(redis_master), "dumpling": my_id(dumpling_master)}
        for source, target in (("redis", "dumpling"), ("dumpling", "redis")):
            out = run_cli("reshard", addr(ours.entry), "--cluster-from", ids[source], "--cluster-to", ids[target],
                          "--cluster-slots", "60", "--cluster-yes")
            assert out.returncode == 0, out.stdout[-2000:]
    finally:
        stop.set()
        worker.join()
    assert not errors, errors
    for key, value in written.items():
        assert int(rc.get(key)) == value
    rc.close()
    ours.settle()
    assert same_views(ours.members)


def test_failure_detection_and_restart_from_nodes_conf(twins: tuple[Side, Side]) -> None:
    """A stopped dumpling master is marked PFAIL then FAIL by the masters' reports (one of
    them a real Redis when the slow failover tests ran before); restarted from its nodes.conf
    it keeps its id and slots."""
    ours, _ = twins
    victim = ours.nodes[2]
    assert victim is not None and victim.kind == "dumpling"  # type: ignore[attr-defined]
    others = [n for n in ours.members if n is not victim]
    victim_id = my_id(victim)
    slots = node_line(victim, victim_id).split(" ")[8:]
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: all(" master,fail " in f" {node_line(n, victim_id)} " for n in others), timeout=EVENTUALLY,
                 what="FAIL")
        assert all("cluster_state:fail" in text(n, "CLUSTER", "INFO") for n in others)
        assert any(f"Marking node {victim_id}" in n.log() and "as failing (quorum reached)." in n.log()
                   for n in others)
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    again = restart(victim)
    ours.nodes[2] = again
    assert my_id(again) == victim_id
    wait_for(lambda: cluster_ok(ours.members), what="rejoined")
    assert node_line(others[0], victim_id).split(" ")[8:] == slots
    dumpling_peer = next(n for n in others if n.kind == "dumpling")  # type: ignore[attr-defined]
    assert f"Clear FAIL state for node {victim_id}" in dumpling_peer.log()


# ----------------------------------------------------------------------------- six


def test_six_nodes_with_replicas() -> None:
    """--cluster-replicas 1 with 6 dumpling nodes: 3 replicas, check clean, READONLY reads, and
    replica migration to an orphaned master."""
    nodes = start_nodes(["dumpling"] * 6)
    try:
        create(nodes, replicas=1)
        wait_for(lambda: cluster_ok(nodes) and all(text(n, "CLUSTER", "NODES").count("slave") == 3 for n in nodes),
                 what="3 replicas everywhere")
        settle(nodes[0])
        rc = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        rc.mset_nonatomic({f"key{i}": i for i in range(100)})
        rc.close()
        master = nodes[0]
        replica_lines = call(master, "CLUSTER", "REPLICAS", my_id(master))
        assert isinstance(replica_lines, list) and len(replica_lines) == 1
        replica = next(n for n in nodes if replica_lines[0].decode().startswith(my_id(n)))
        wait_for(lambda: "master_link_status:up" in text(replica, "INFO", "replication"), what="replica synced")
        key = next(f"key{i}" for i in range(100)
                   if call(master, "CLUSTER", "COUNTKEYSINSLOT", call(master, "CLUSTER", "KEYSLOT", f"key{i}")))
        with replica.raw() as conn:
            assert conn.call("GET", key).startswith(b"-MOVED")
            assert conn.call("READONLY") == b"+OK\r\n"
            wait_for(lambda: conn.call("GET", key) != b"$-1\r\n", what="replicated key")
            assert conn.call("SET", key, "x").startswith(b"-MOVED")
        # replica migration: a master left without replicas gets one back from a master with two
        # (clusterHandleSlaveMigration: the smallest id among them, after 5 s orphaned)
        masters = [n for n in nodes if role_of(n) == "master"]
        orphan = next(m for m in masters if m is not master)
        mover = next(n for n in nodes if node_line(n, my_id(n)).split(" ")[3] == my_id(orphan))
        assert call(mover, "CLUSTER", "REPLICATE", my_id(master)) == b"OK"
        wait_for(lambda: len(call(master, "CLUSTER", "REPLICAS", my_id(master))) == 2,  # type: ignore[arg-type]
                 what="two replicas")
        wait_for(lambda: len(call(master, "CLUSTER", "REPLICAS", my_id(orphan))) == 1,  # type: ignore[arg-type]
                 timeout=EVENTUALLY, what="a replica migrates to the orphaned master")
        migrated = next(n for n in nodes if f"Migrating to orphaned master {my_id(orphan)}" in n.log())
        assert my_id(migrated) == min(my_id(n) for n in (mover, replica))
    finally:
        stop_all(nodes)


# ----------------------------------------------------------------------------- long versions


@pytest.mark.slow
def test_full_rebalance_to_an_empty_master_matches_redis() -> None:
    """rebalance --cluster-use-empty-masters without weights: 4096 slots move to a new master."""
    started = start_nodes(["dumpling"] * 4 + ["redis"] * 4)
    ours, theirs = Side("dumpling", list(started[:4])), Side("redis", list(started[4:]))
    try:
        both(create, (ours.members[:3],), (theirs.members[:3],))
        for side in (ours, theirs):
            node = side.nodes[3]
            assert node is not None
            assert run_cli("add-node", addr(node), addr(side.entry)).returncode == 0
            side.settle()
        times = both(lambda side: timed(lambda: run_cli("rebalance", addr(side.entry), "--cluster-use-empty-masters")),
                     (ours,), (theirs,))
        for side in (ours, theirs):
            side.settle()
        converge(ours, theirs)
        assert [row[2] for row in ours.picture()] == [4096] * 4
        print(f"rebalance of 4096 slots: dumpling {times[0]:.1f} s, Redis {times[1]:.1f} s")
    finally:
        stop_all(ours.members + theirs.members)


def timed(fn: Callable[[], subprocess.CompletedProcess[str]]) -> float:
    started = time.monotonic()
    out = fn()
    assert out.returncode == 0, out.stdout[-2000:]
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_master_fault_under_traffic_matches_redis(fault: str) -> None:
    """bench/cluster_faults.py's round on 6-node clusters of both kinds: the replica is promoted
    within the time Redis needs, the client carries on, the old master rejoins as a replica."""
    sys.path.insert(0, str(ROOT / "bench"))
    import cluster_faults  # bench/ is not a package

    rounds = {}
    for kind in ("dumpling", "redis"):
        nodes = cluster_faults.build(kind, int(TIMEOUT))
        try:
            rounds[kind], nodes = cluster_faults.one_round(nodes, fault, int(TIMEOUT))
        finally:
            stop_all(nodes)
    ours, theirs = rounds["dumpling"], rounds["redis"]
    assert ours.promotion < max(2 * theirs.promotion, theirs.promotion + 2), rounds
    assert ours.outage < max(2 * theirs.outage, theirs.outage + 2), rounds


# ----------------------------------------------------------------------------- bad input on the bus


def test_malformed_bus_messages_close_only_that_link() -> None:
    node = start_node("dumpling")
    try:
        port = node.port + 10000
        me = my_id(node)
        call(node, "CLUSTER", "ADDSLOTSRANGE", 0, 99)
        # a PING from an unknown node is answered with a PONG that carries our config, and creates nothing
        stranger = "f" * 40
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(bp.encode(bp.Message(bp.PING, sender=stranger, port=1, cport=2, flags=17)))
            pong = read_message(s)
            assert pong.type == bp.PONG and pong.sender == me
            assert bp.bitmap_slots(pong.myslots) == list(range(100))
            assert [e.kind for e in pong.extensions] == [bp.EXT_SHARDID]
            assert pong.extensions[0].node_id() == text(node, "CLUSTER", "MYSHARDID")
            # a FAIL without its body is dropped with Redis's line, the link stays up
            bad = bytearray(bp.encode(bp.Message(bp.PING, sender=stranger)))
            bad[12:14] = bp.FAIL.to_bytes(2, "big")
            s.sendall(bytes(bad))
            s.sendall(bp.encode(bp.Message(bp.PING, sender=stranger)))
            assert read_message(s).type == bp.PONG
            # a bad signature closes the link
            s.sendall(b"XXXX" + bytes(2300))
            assert s.recv(10) == b""
        assert "cluster_known_nodes:1" in text(node, "CLUSTER", "INFO")
        assert "cluster_stats_messages_ping_received:2" in text(node, "CLUSTER", "INFO")
        log = node.log()
        assert "Received invalid fail packet of length 2256 but expected length 2296" in log
        assert "Bad message length or signature received on the Cluster bus from 127.0.0.1:" in log
        assert call(node, "PING") == b"PONG"
    finally:
        node.stop()


def read_message(s: socket.socket) -> bp.Message:
    buf = b""
    while len(buf) < 8:
        buf += s.recv(8 - len(buf))
    total = bp.frame_length(buf)
    while len(buf) < total:
        buf += s.recv(total - len(buf))
    return bp.decode(buf)
