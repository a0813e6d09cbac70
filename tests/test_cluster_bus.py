"""The cluster bus between processes: clusters built by ``redis-cli --cluster create`` of
dumpling nodes, of real Redis 7.0 nodes (the oracle, built the same way) and of both
mixed; resharding between a real and a dumpling node under redis-py traffic; failure
detection, FAIL and rejoin from nodes.conf; replicas and failover; PUBLISH across
nodes; and malformed bus messages.

Node timeouts are short (1 s) so each test takes seconds.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from dumpling.cluster import busproto as bp
from tests.servers import ServerProcess, free_port, parse_reply, start_dumpling, start_redis

TIMEOUT = "1000"


def cli() -> str:
    path = shutil.which("redis-cli")
    if path is None:
        pytest.skip("redis-cli not installed")
    return path


def bus_port_for(port: int) -> int:
    """An explicit bus port: ephemeral client ports can exceed 55535 (port + 10000 would not fit)."""
    return free_port() if port > 55535 else port + 10000


def start_node(kind: str, *args: str) -> ServerProcess:
    port = free_port()
    while port > 55535:
        port = free_port()
    start = start_dumpling if kind == "dumpling" else start_redis
    node = start("--cluster-enabled", "yes", "--cluster-node-timeout", TIMEOUT, *args, port=port)
    node.kind = kind  # type: ignore[attr-defined]
    return node


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
        time.sleep(0.1)


def create(nodes: list[ServerProcess], replicas: int = 0) -> str:
    args = [cli(), "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes], "--cluster-yes"]
    if replicas:
        args += ["--cluster-replicas", str(replicas)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def check(node: ServerProcess) -> str:
    out = subprocess.run([cli(), "--cluster", "check", f"127.0.0.1:{node.port}"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout
    assert "[OK] All nodes agree about slots configuration." in out.stdout
    assert "[OK] All 16384 slots covered." in out.stdout
    return out.stdout


def cluster_ok(nodes: list[ServerProcess]) -> bool:
    return all("cluster_state:ok" in text(n, "CLUSTER", "INFO") for n in nodes)


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
        table[text(n, "CLUSTER", "MYID")] = f"ID{i}"
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


@pytest.fixture
def cleanup() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for node in started:
        node.stop()


def test_cluster_create_matches_redis(cleanup: list[ServerProcess]) -> None:
    """3 dumpling masters and 3 Redis 7.0 masters, each made by redis-cli --cluster create: same views."""
    ours = [start_node("dumpling") for _ in range(3)]
    cleanup += ours
    theirs = [start_node("redis") for _ in range(3)]
    cleanup += theirs
    create(ours)
    create(theirs)
    wait_for(lambda: cluster_ok(ours) and cluster_ok(theirs), what="cluster_state:ok")
    check(ours[1])
    lo, lt = labels_of(ours), labels_of(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert nodes_view(a, lo) == nodes_view(b, lt)
        info_a = text(a, "CLUSTER", "INFO").split("\r\n")[:9]
        info_b = text(b, "CLUSTER", "INFO").split("\r\n")[:9]
        assert info_a == info_b
        for sub in ("SLOTS", "SHARDS"):
            got = [labelled(x, lo, ours) for x in call(a, "CLUSTER", sub)]  # type: ignore[attr-defined]
            want = [labelled(x, lt, theirs) for x in call(b, "CLUSTER", sub)]  # type: ignore[attr-defined]
            if sub == "SHARDS":  # in node-table order: compare as sets
                got, want = sorted(got), sorted(want)
            assert got == want, sub
    # PUBLISH on one node reaches subscribers of the others
    sub = redis.Redis(port=ours[2].port).pubsub()
    sub.subscribe("news")
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    assert redis.Redis(port=ours[0].port).publish("news", "hello") == 0
    msg = sub.get_message(timeout=3)
    assert msg is not None and msg["data"] == b"hello"
    sub.close()


def test_mixed_cluster_and_reshard_under_traffic(cleanup: list[ServerProcess]) -> None:
    """dumpling + Redis 7.0 masters in one cluster; slots move both ways while redis-py writes and reads."""
    nodes = [start_node("dumpling"), start_node("redis"), start_node("dumpling")]
    cleanup += nodes
    create(nodes)
    wait_for(lambda: cluster_ok(nodes), what="cluster_state:ok")
    assert same_views(nodes)
    check(nodes[2])
    ids = [text(n, "CLUSTER", "MYID") for n in nodes]
    rc = RedisCluster(host="127.0.0.1", port=nodes[0].port)
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
        time.sleep(0.5)
        for source, target in ((0, 1), (1, 0), (1, 2)):  # dumpling -> Redis, back, Redis -> dumpling
            out = subprocess.run([cli(), "--cluster", "reshard", f"127.0.0.1:{nodes[0].port}", "--cluster-from",
                                  ids[source], "--cluster-to", ids[target], "--cluster-slots", "60",
                                  "--cluster-yes"], capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stdout[-2000:]
    finally:
        stop.set()
        worker.join()
    assert not errors, errors
    assert len(written) == 400
    for key, value in written.items():
        assert int(rc.get(key)) == value
    rc.close()
    wait_for(lambda: same_views(nodes), what="same views")
    check(nodes[1])


def test_failure_detection_and_restart_from_nodes_conf(cleanup: list[ServerProcess]) -> None:
    nodes = [start_node("dumpling") for _ in range(3)]
    cleanup += nodes
    create(nodes)
    wait_for(lambda: cluster_ok(nodes), what="cluster_state:ok")
    victim = nodes[2]
    victim_id = text(victim, "CLUSTER", "MYID")
    victim_slots = [line.split(" ")[8:] for line in text(victim, "CLUSTER", "NODES").splitlines() if "myself" in line]
    victim.proc.send_signal(19)  # SIGSTOP: a node that stops answering
    try:
        def flagged(flag: str) -> Callable[[], bool]:
            return lambda: all(f"master,{flag} " in text(n, "CLUSTER", "NODES") for n in nodes[:2])

        wait_for(flagged("fail"), timeout=20, what="FAIL")
        assert all("cluster_state:fail" in text(n, "CLUSTER", "INFO") for n in nodes[:2])
        assert f"Marking node {victim_id} () as failing (quorum reached)." in nodes[0].log() + nodes[1].log()
    finally:
        victim.proc.send_signal(18)  # SIGCONT
    # killed and started again from its nodes.conf: same id, same slots, the others clear FAIL
    victim.stop_process()
    again = ServerProcess([sys.executable, "-m", "dumpling", "--port", str(victim.port), "--cluster-enabled", "yes",
                           "--cluster-node-timeout", TIMEOUT, "--dir", victim.dir, "--save", ""],
                          victim.port, "dumpling")
    cleanup.append(again)
    assert text(again, "CLUSTER", "MYID") == victim_id
    wait_for(lambda: cluster_ok([*nodes[:2], again]), timeout=30, what="rejoined")
    line = next(x for x in text(nodes[0], "CLUSTER", "NODES").splitlines() if x.startswith(victim_id))
    assert line.split(" ")[8:] == victim_slots[0]
    assert "Clear FAIL state for node " + victim_id in nodes[0].log()


def test_replicas_and_failover(cleanup: list[ServerProcess]) -> None:
    """--cluster-replicas 1 with 6 dumpling nodes; a killed master's replica takes over; FAILOVER by hand."""
    nodes = [start_node("dumpling") for _ in range(6)]
    cleanup += nodes
    create(nodes, replicas=1)
    wait_for(lambda: cluster_ok(nodes) and all(
        text(n, "CLUSTER", "NODES").count("slave") == 3 for n in nodes), what="3 replicas everywhere")
    check(nodes[0])
    rc = RedisCluster(host="127.0.0.1", port=nodes[0].port)
    for i in range(100):
        rc.set(f"key{i}", i)
    master = nodes[0]
    master_id = text(master, "CLUSTER", "MYID")
    replica_ids = [line.split(" ")[0] for line in parse_reply_lines(call(master, "CLUSTER", "REPLICAS", master_id))]
    assert len(replica_ids) == 1
    replica = next(n for n in nodes if text(n, "CLUSTER", "MYID") == replica_ids[0])
    wait_for(lambda: "master_link_status:up" in text(replica, "INFO", "replication"), what="replica synced")
    # READONLY reads on the replica
    key = next(f"key{i}" for i in range(100) if int(call(master, "CLUSTER", "COUNTKEYSINSLOT",
                                                              call(master, "CLUSTER", "KEYSLOT", f"key{i}"))))
    with replica.raw() as conn:
        assert conn.call("GET", key).startswith(b"-MOVED")
        assert conn.call("READONLY") == b"+OK\r\n"
        wait_for(lambda: conn.call("GET", key) != b"$-1\r\n", what="replicated key")
    # manual failover, then kill the new master: the old one is promoted back
    assert call(replica, "CLUSTER", "FAILOVER") == b"OK"
    wait_for(lambda: "myself,master" in text(replica, "CLUSTER", "NODES"), timeout=20, what="manual failover")
    wait_for(lambda: "myself,slave" in text(master, "CLUSTER", "NODES"), timeout=20, what="old master follows")
    started = time.monotonic()
    replica.proc.kill()
    wait_for(lambda: "myself,master" in text(master, "CLUSTER", "NODES"), timeout=30, what="automatic failover")
    took = time.monotonic() - started
    others = [n for n in nodes if n not in (replica,)]
    wait_for(lambda: cluster_ok(others), timeout=30, what="cluster ok after failover")
    assert took < 15
    for i in range(100):
        assert int(rc.get(f"key{i}")) == i
    rc.close()


def parse_reply_lines(reply: object) -> list[str]:
    assert isinstance(reply, list)
    return [x.decode() for x in reply]


# ----------------------------------------------------------------------------- bad input on the bus


def test_malformed_bus_messages_close_only_that_link(cleanup: list[ServerProcess]) -> None:
    node = start_node("dumpling")
    cleanup.append(node)
    port = node.port + 10000
    my_id = text(node, "CLUSTER", "MYID")
    call(node, "CLUSTER", "ADDSLOTSRANGE", 0, 99)
    # a PING from an unknown node is answered with a PONG that carries our config, and creates nothing
    stranger = "f" * 40
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(bp.encode(bp.Message(bp.PING, sender=stranger, port=1, cport=2, flags=17)))
        pong = read_message(s)
        assert pong.type == bp.PONG and pong.sender == my_id
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


def read_message(s: socket.socket) -> bp.Message:
    buf = b""
    while len(buf) < 8:
        buf += s.recv(8 - len(buf))
    total = bp.frame_length(buf)
    while len(buf) < total:
        buf += s.recv(total - len(buf))
    return bp.decode(buf)
