"""Cluster mode: key slots, nodes.conf, the CLUSTER commands and request routing.

Where Redis 7.0's replies are deterministic the same commands run against real
redis-server cluster nodes and the reply bytes are compared after node ids and ports
are replaced by labels: a fresh node's errors, and the whole live-migration matrix
of spec cluster.md §2.5 on a two-node cluster of each kind.  The helpers at the top
(static dumpling clusters from nodes.conf files, real Redis clusters joined with
MEET) are shared by the reshard and MIGRATE interop tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from dumpling.cluster.layout import NodeSpec, split_slots, static_cluster
from dumpling.cluster.nodes import CLUSTER_SLOTS, MASTER, MYSELF, ClusterNode, ClusterState
from dumpling.cluster.nodesconf import NodesConfError, describe_node, parse_nodes_conf, render_file, render_nodes
from dumpling.cluster.slots import crc16, key_slot, slot_ranges
from tests.servers import (
    ROOT,
    RawConnection,
    ServerProcess,
    encode_command,
    free_port,
    parse_reply,
    start_dumpling,
    start_redis,
    wait_blocked,
)

# ----------------------------------------------------------------------------- cluster helpers


def start_dumpling_cluster(ranges: list[list[tuple[int, int]]], *args: str) -> list[ServerProcess]:
    """dumpling nodes described by static nodes.conf files (everyone knows everyone)."""
    # An explicit bus port: ephemeral client ports can exceed 55535 (port + 10000 would not fit).
    specs = [NodeSpec("127.0.0.1", free_port(), r, cport=free_port()) for r in ranges]
    files = static_cluster(specs)
    conf_dir = tempfile.mkdtemp(prefix="dumpling-cluster-")
    nodes: list[ServerProcess] = []
    try:
        for spec in specs:
            path = os.path.join(conf_dir, f"nodes-{spec.port}.conf")
            with open(path, "w") as f:
                f.write(files[spec.port])
            node = start_dumpling("--cluster-enabled", "yes", "--cluster-config-file", path,
                                  "--cluster-port", str(spec.cport), *args, port=spec.port)
            node.node_id = spec.node_id  # type: ignore[attr-defined]
            node.bus_port = spec.cport  # type: ignore[attr-defined]
            node.conf_path = path  # type: ignore[attr-defined]
            nodes.append(node)
        nodes[0].conf_dir = conf_dir  # type: ignore[attr-defined]
    except Exception:
        stop_cluster(nodes)
        shutil.rmtree(conf_dir, ignore_errors=True)
        raise
    return nodes


def stop_cluster(nodes: list[ServerProcess]) -> None:
    for node in nodes:
        node.stop()
        conf_dir = getattr(node, "conf_dir", None)
        if conf_dir:
            shutil.rmtree(conf_dir, ignore_errors=True)


def start_redis_cluster(ranges: list[list[tuple[int, int]]]) -> list[ServerProcess]:
    """Real redis-server cluster nodes: slots added, epochs set, joined with MEET (as redis-cli does)."""
    nodes: list[ServerProcess] = []
    try:
        for i, node_ranges in enumerate(ranges):
            bus = free_port()
            node = start_redis("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                               "--cluster-port", str(bus), "--cluster-node-timeout", "1000")
            node.bus_port = bus  # type: ignore[attr-defined]
            with node.raw() as conn:
                if node_ranges:
                    flat = [str(x) for r in node_ranges for x in r]
                    assert conn.call("CLUSTER", "ADDSLOTSRANGE", *flat) == b"+OK\r\n"
                conn.call("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                node.node_id = parse_reply(conn.call("CLUSTER", "MYID")).decode()  # type: ignore[attr-defined]
            nodes.append(node)
        first = nodes[0]
        for node in nodes[1:]:
            with node.raw() as conn:
                assert conn.call("CLUSTER", "MEET", "127.0.0.1", first.port, first.bus_port) == b"+OK\r\n"  # type: ignore[attr-defined]
        wait_cluster_ok(nodes)
    except Exception:
        stop_cluster(nodes)
        raise
    return nodes


def wait_cluster_ok(nodes: list[ServerProcess], timeout: float = 20.0, known: int = 0) -> None:
    known = known or len(nodes)
    deadline = time.monotonic() + timeout
    while True:
        ready = True
        for node in nodes:
            with node.raw() as conn:
                info = parse_reply(conn.call("CLUSTER", "INFO")).decode()
                text = parse_reply(conn.call("CLUSTER", "NODES")).decode()
            if ("cluster_state:ok" not in info or f"cluster_known_nodes:{known}" not in info
                    or "handshake" in text or "fail" in text.replace("fail?", "fail")):
                ready = False
        if ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("cluster did not converge")
        time.sleep(0.1)


def labeller(nodes: list[ServerProcess]) -> dict[bytes, bytes]:
    """Node ids and ports -> N0, N1, ... so two clusters' replies can be compared."""
    table: dict[bytes, bytes] = {}
    for i, node in enumerate(nodes):
        table[node.node_id.encode()] = b"ID%d" % i  # type: ignore[attr-defined]
        table[b"%d" % node.port] = b"PORT%d" % i
        bus = getattr(node, "bus_port", None)
        if bus:
            table[b"@%d" % bus] = b"@BUS%d" % i
    return table


def normalise(reply: bytes, table: dict[bytes, bytes]) -> bytes:
    """Labels for ids/ports, re-encoded so bulk lengths stay right (RESP2 replies)."""

    def sub(data: bytes) -> bytes:
        for old, new in table.items():
            data = data.replace(old, new)
        return data

    def encode(value: object) -> bytes:
        if isinstance(value, list):
            return b"*%d\r\n" % len(value) + b"".join(encode(v) for v in value)
        if isinstance(value, bytes):
            value = sub(value)
            return b"$%d\r\n%s\r\n" % (len(value), value)
        if isinstance(value, int):
            return b":" + table.get(b"%d" % value, b"%d" % value) + b"\r\n"  # ports in CLUSTER SLOTS
        if value is None:
            return b"$-1\r\n"
        return b"-" + sub(str(value).encode()) + b"\r\n"

    if reply[:1] in (b"+", b"-"):
        return sub(reply)
    return encode(parse_reply(reply))


HALF = [[(0, 8191)], [(8192, CLUSTER_SLOTS - 1)]]


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[list[ServerProcess], list[ServerProcess]]]:
    """A two-node dumpling cluster and a two-node Redis 7.0 cluster with the same slot split."""
    ours = start_dumpling_cluster(HALF)
    try:
        theirs = start_redis_cluster(HALF)
    except Exception:
        stop_cluster(ours)
        raise
    yield ours, theirs
    stop_cluster(ours)
    stop_cluster(theirs)


class ClusterPair:
    """One raw connection per node label on each cluster; compare normalised reply bytes."""

    def __init__(self, ours: list[ServerProcess], theirs: list[ServerProcess]) -> None:
        self.ours = [n.raw() for n in ours]
        self.theirs = [n.raw() for n in theirs]
        self.table_ours = labeller(ours)
        self.table_theirs = labeller(theirs)

    def close(self) -> None:
        for conn in self.ours + self.theirs:
            conn.close()

    def both(self, node: int, *args: bytes | str | int) -> tuple[bytes, bytes]:
        def sub(table: dict[bytes, bytes]) -> list[bytes | str | int]:
            out: list[bytes | str | int] = []
            inverse = {v: k for k, v in table.items()}
            for a in args:
                if isinstance(a, str) and a.encode() in inverse:
                    out.append(inverse[a.encode()])
                else:
                    out.append(a)
            return out

        a = normalise(self.ours[node].call(*sub(self.table_ours)), self.table_ours)
        b = normalise(self.theirs[node].call(*sub(self.table_theirs)), self.table_theirs)
        return a, b

    def same(self, node: int, *args: bytes | str | int) -> bytes:
        a, b = self.both(node, *args)
        assert a == b, f"N{node} {args!r}\n  dumpling: {a!r}\n  redis:    {b!r}"
        return a


@pytest.fixture
def cpair(clusters: tuple[list[ServerProcess], list[ServerProcess]]) -> Iterator[ClusterPair]:
    ours, theirs = clusters
    for node in ours + theirs:
        with node.raw() as conn:
            conn.call("FLUSHALL")
    pair = ClusterPair(ours, theirs)
    yield pair
    pair.close()


# ----------------------------------------------------------------------------- key -> slot


@pytest.mark.parametrize("key,slot", [
    (b"123456789", 12739), (b"foo", 12182), (b"bar", 5061), (b"key:1", 6657), (b"{user1}:a", 8106),
    (b"{}foo", 9500), (b"foo{}{bar}", 8363), (b"foo{{bar}}zap", 4015), (b"foo{bar}{zap}", 5061),
    (b"{", 4092), (b"}", 12090), (b"a{b", 13340), (b"{a}}", 15495), (b"", 0),
])
def test_key_slot_vectors(key: bytes, slot: int) -> None:
    assert key_slot(key) == slot


def test_crc16_check_value_and_ranges() -> None:
    assert crc16(b"123456789") == 0x31C3
    assert slot_ranges([0, 1, 2, 5, 7, 8]) == [(0, 2), (5, 5), (7, 8)]
    assert split_slots(3) == [(0, 5460), (5461, 10922), (10923, 16383)]


def test_keyslot_matches_redis(cpair: ClusterPair) -> None:
    for key in ("foo", "{user1}:a", "", "{}x", "a{b}c", "\xff{\x00}"):
        cpair.same(0, "CLUSTER", "KEYSLOT", key)


# ----------------------------------------------------------------------------- nodes.conf

REDIS_70_FILE = """\
bb360069110fe3d9f9d4bd130d508163e73d89ca 127.0.0.1:30002@40002 myself,master - 0 1795238411000 7 connected 20-22 5461-10922 [20->-68b8b564c7e4c4d17d9740c2207a1c84e75d43ea]
68b8b564c7e4c4d17d9740c2207a1c84e75d43ea 127.0.0.1:30007@40007 master - 0 1795238412000 8 connected 0-19
1d9971125dfa48af3af5fb8ee7cf558677246cee 127.0.0.1:30004@40004 slave bb360069110fe3d9f9d4bd130d508163e73d89ca 0 1795238382000 1 connected
56f44dbe727932ae34f5076a16ec5fe252929696 127.0.0.1:24002@35002,nodeb.example master - 0 1795238502638 0 connected 16383
vars currentEpoch 8 lastVoteEpoch 0
"""

REDIS_74_FILE = """\
787c820a4cf9cb2b602ca2c0bd1c8bcfac64d118 127.0.0.1:22001@32001,,tls-port=0,shard-id=12ce6067cf2b7f9729381bc4c9129bb0bbc97c51 myself,master - 0 0 1 connected 0-5460 [7-<-7bda9dac5afb3e200859f24113abb1c2ce71464f]
7bda9dac5afb3e200859f24113abb1c2ce71464f 127.0.0.1:25002@37002,nodeb.example,tls-port=0,nodename=humanB,shard-id=a53319df0474d6c78c24e67c441262d062bab635 master - 0 0 2 connected 16383
vars currentEpoch 3 lastVoteEpoch 0
"""


def test_nodes_conf_from_redis_70() -> None:
    state = parse_nodes_conf(REDIS_70_FILE)
    me = state.myself
    assert me.id == "bb360069110fe3d9f9d4bd130d508163e73d89ca" and me.config_epoch == 7
    assert state.node_ranges(me) == [(20, 22), (5461, 10922)]
    assert state.migrating[20].id.startswith("68b8b5")
    replica = state.lookup("1d9971125dfa48af3af5fb8ee7cf558677246cee")
    assert replica is not None and replica.master is me and replica.shard_id == me.shard_id
    assert state.lookup("56f44dbe727932ae34f5076a16ec5fe252929696").hostname == "nodeb.example"
    assert state.current_epoch == 8
    lines = render_nodes(state).splitlines()
    # CLUSTER NODES keeps Redis's shape (ping/pong are "now" after a load, as in Redis).
    first = lines[0].split(" ")
    assert first[:4] == ["bb360069110fe3d9f9d4bd130d508163e73d89ca", "127.0.0.1:30002@40002", "myself,master", "-"]
    assert first[6:] == ["7", "connected", "20-22", "5461-10922", "[20->-68b8b564c7e4c4d17d9740c2207a1c84e75d43ea]"]
    assert lines[2].split(" ")[2:4] == ["slave", "bb360069110fe3d9f9d4bd130d508163e73d89ca"]
    assert lines[2].split(" ")[6] == "7"  # a replica shows its master's epoch
    assert lines[3].split(" ")[1] == "127.0.0.1:24002@35002,nodeb.example"


def test_nodes_conf_from_redis_74_round_trips() -> None:
    state = parse_nodes_conf(REDIS_74_FILE)
    assert state.myself.shard_id == "12ce6067cf2b7f9729381bc4c9129bb0bbc97c51"
    assert state.importing[7].id.startswith("7bda9d")
    again = parse_nodes_conf(render_file(state))
    assert render_file(again) == render_file(state)
    assert describe_node(again, again.myself).endswith("0-5460 [7-<-7bda9dac5afb3e200859f24113abb1c2ce71464f]")


def test_nodes_conf_loading_rules() -> None:
    # vars anywhere, blank lines, missing @cport, unknown vars, placeholder masters
    text = ("vars currentEpoch 2 lastVoteEpoch 1 foo 3\n\n"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:31600 myself,slave "
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 0 0 5 connected\n")
    state = parse_nodes_conf(text)
    assert state.myself.cport == 41600 and state.myself.config_epoch == 0
    placeholder = state.lookup("b" * 40)
    assert placeholder is not None and placeholder.flag_text() == "noflags" and placeholder.ip == ""
    assert (state.current_epoch, state.last_vote_epoch) == (2, 1)
    for bad in ("garbage line\n", "x" * 40 + " 1.2.3.4:1@2 myself,master - 0 0 0\n",
                "a" * 40 + " 1.2.3.4:1@2 master - 0 0 0 connected 0-5\n",  # no myself
                "a" * 40 + " 1.2.3.4:1@2 myself,master - 0 0 0 connected 16384\n",
                "vars currentEpoch\n" + "a" * 40 + " 1.2.3.4:1@2 myself,master - 0 0 0 connected\n",
                "a" * 40 + " 1.2.3.4:1@2,,bogus=1 myself,master - 0 0 0 connected\n"):
        with pytest.raises(NodesConfError):
            parse_nodes_conf(bad)


def test_cluster_state_bookkeeping() -> None:
    me = ClusterNode("a" * 40, flags=MASTER)
    state = ClusterState(me)
    assert me.flags & MYSELF
    state.update_state(True)
    assert not state.ok and state.size == 0
    other = state.add_node(ClusterNode("b" * 40, flags=MASTER, config_epoch=3))
    for slot in range(CLUSTER_SLOTS):
        state.bind(slot, me if slot < 100 else other)
    state.update_state(True)
    assert state.ok and state.size == 2 and state.assigned == CLUSTER_SLOTS
    assert [(a, b, n.id[0]) for a, b, n in state.slot_runs()] == [(0, 99, "a"), (100, 16383, "b")]
    state.current_epoch = 3  # currentEpoch is never below a known configEpoch
    assert state.bump_epoch() and me.config_epoch == 4 and not state.bump_epoch()
    state.delete_node(other)
    state.update_state(True)
    assert not state.ok and state.assigned == 100


def start_cluster_node(*args: str, port: int | None = None) -> ServerProcess:
    """A dumpling cluster node (explicit bus port: ephemeral client ports can exceed 55535)."""
    return start_dumpling("--cluster-enabled", "yes", "--cluster-port", str(free_port()), *args, port=port)


def wait_state_ok(conn: RawConnection, timeout: float = 10.0) -> None:
    """Until CLUSTER INFO says ok: as in Redis, a master that just got its slots waits out the
    start-up delay (2 s) and the rejoin delay (node-timeout clamped to 0.5-5 s)."""
    deadline = time.monotonic() + timeout
    while b"cluster_state:ok" not in conn.call("CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "cluster_state stayed fail"
        time.sleep(0.05)


def _run_dumpling(*args: str, cwd: str, timeout: float = 10) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "dumpling", "--port", str(free_port()), "--cluster-port", str(free_port()), *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_corrupt_nodes_conf_exits(tmp_path) -> None:
    (tmp_path / "nodes.conf").write_text("garbage line\n")
    result = _run_dumpling("--cluster-enabled", "yes", cwd=str(tmp_path))
    assert result.returncode == 1
    assert 'Unrecoverable error: corrupted cluster config file "garbage line".' in result.stdout
    (tmp_path / "nodes.conf").write_text("a" * 40 + " :0@0 myself,master,bogus - 0 0 0 connected\n")
    result = _run_dumpling("--cluster-enabled", "yes", cwd=str(tmp_path))
    assert result.returncode == 1 and "Unknown flag in redis cluster config file" in result.stdout


def test_config_file_is_locked_and_survives_restart(tmp_path) -> None:
    conf = str(tmp_path / "nodes-a.conf")
    bus = str(free_port())
    node = start_cluster_node("--cluster-config-file", conf, "--cluster-port", bus)
    try:
        with node.raw() as conn:
            assert conn.call("CLUSTER", "ADDSLOTSRANGE", 0, 99, 200, 200) == b"+OK\r\n"
            conn.call("CLUSTER", "SETSLOT", 5, "MIGRATING", parse_reply(conn.call("CLUSTER", "MYID")).decode())
            assert conn.call("CLUSTER", "BUMPEPOCH") == b"+BUMPED 1\r\n"
            before = parse_reply(conn.call("CLUSTER", "NODES"))
            shard = conn.call("CLUSTER", "MYSHARDID")
        time.sleep(0.1)
        # A second server on the same file is refused (the lock follows the rewritten file).
        second = _run_dumpling("--cluster-enabled", "yes", "--cluster-config-file", conf, cwd=str(tmp_path))
        assert second.returncode == 1 and "is already used by a different Redis Cluster node" in second.stdout
    finally:
        node.stop()
    text = open(conf).read()
    assert text.endswith("vars currentEpoch 1 lastVoteEpoch 0\n") and ",,tls-port=0,shard-id=" in text
    node = start_cluster_node("--cluster-config-file", conf, "--cluster-port", bus, port=node.port)
    try:
        with node.raw() as conn:
            assert parse_reply(conn.call("CLUSTER", "NODES")) == before
            assert conn.call("CLUSTER", "MYSHARDID") == shard
    finally:
        node.stop()
    assert b"0-99 200 [5->-" in before


# ----------------------------------------------------------------------------- CLUSTER commands


def test_cluster_mode_off_matches_redis(pair) -> None:
    for args in (("CLUSTER", "INFO"), ("CLUSTER", "HELP"), ("CLUSTER", "KEYSLOT", "x"), ("CLUSTER", "NODES"),
                 ("CLUSTER",), ("CLUSTER", "FOO"), ("CLUSTER", "INFO", "x"), ("CLUSTER", "SETSLOT", "1"),
                 ("ASKING",), ("READONLY",), ("READWRITE",), ("ASKING", "x"), ("RESTORE-ASKING", "k")):
        pair.same(*args)


@pytest.fixture(scope="module")
def fresh() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A fresh dumpling cluster node and a fresh Redis 7.0 cluster node."""
    ours_bus, theirs_bus = free_port(), free_port()
    ours = start_cluster_node("--cluster-port", str(ours_bus))
    theirs = start_redis("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-port", str(theirs_bus), "--cluster-node-timeout", "500")
    ours.bus_port, theirs.bus_port = ours_bus, theirs_bus  # type: ignore[attr-defined]
    for node in (ours, theirs):
        with node.raw() as conn:
            node.node_id = parse_reply(conn.call("CLUSTER", "MYID")).decode()  # type: ignore[attr-defined]
    yield ours, theirs
    ours.stop()
    theirs.stop()


def test_fresh_node_commands_match_redis(fresh) -> None:
    pair = ClusterPair([fresh[0]], [fresh[1]])
    try:
        info_ours, info_theirs = pair.both(0, "CLUSTER", "INFO")
        drop = re.compile(rb"cluster_size:\d+\r\n")  # Redis shows 1 for the first 2 s, then 0
        assert drop.sub(b"", info_ours) == drop.sub(b"", info_theirs)
        for args in [
            ("CLUSTER", "COUNTKEYSINSLOT", "x"), ("CLUSTER", "COUNTKEYSINSLOT", "16384"),
            ("CLUSTER", "COUNTKEYSINSLOT", "-1"), ("CLUSTER", "COUNTKEYSINSLOT", "7"),
            ("CLUSTER", "GETKEYSINSLOT", "7", "x"), ("CLUSTER", "GETKEYSINSLOT", "x", "1"),
            ("CLUSTER", "GETKEYSINSLOT", "16384", "1"), ("CLUSTER", "GETKEYSINSLOT", "7", "-1"),
            ("CLUSTER", "GETKEYSINSLOT", "7", "0"),
            ("CLUSTER", "ADDSLOTS", "x"), ("CLUSTER", "ADDSLOTS", "1.5"), ("CLUSTER", "ADDSLOTS", "16384"),
            ("CLUSTER", "ADDSLOTS", "1", "1"), ("CLUSTER", "ADDSLOTS", "1", "2", "x"),
            ("CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"), ("CLUSTER", "ADDSLOTSRANGE", "5", "1"),
            ("CLUSTER", "ADDSLOTSRANGE", "1", "5", "4", "8"),
            ("CLUSTER", "ADDSLOTS", "10", "11", "12"), ("CLUSTER", "ADDSLOTS", "12"),
            ("CLUSTER", "ADDSLOTSRANGE", "20", "30", "40", "40"), ("CLUSTER", "DELSLOTS", "13"),
            ("CLUSTER", "DELSLOTS", "12", "12"), ("CLUSTER", "DELSLOTSRANGE", "25", "27"),
            ("CLUSTER", "DELSLOTSRANGE", "25", "27"),
            ("CLUSTER", "SETSLOT", "1"), ("CLUSTER", "SETSLOT", "x", "STABLE"),
            ("CLUSTER", "SETSLOT", "1", "bogus"), ("CLUSTER", "SETSLOT", "1", "STABLE", "x"),
            ("CLUSTER", "SETSLOT", "1", "NODE"), ("CLUSTER", "SETSLOT", "1", "MIGRATING", "ID0"),
            ("CLUSTER", "SETSLOT", "10", "MIGRATING", "nobody"), ("CLUSTER", "SETSLOT", "10", "IMPORTING", "ID0"),
            ("CLUSTER", "SETSLOT", "1", "IMPORTING", "nobody"), ("CLUSTER", "SETSLOT", "1", "NODE", "nobody"),
            ("CLUSTER", "SETSLOT", "10", "MIGRATING", "ID0"), ("CLUSTER", "SETSLOT", "1", "IMPORTING", "ID0"),
            ("CLUSTER", "SETSLOT", "11", "STABLE"), ("CLUSTER", "SETSLOT", "2", "NODE", "ID0"),
            ("CLUSTER", "FORGET", "ID0"), ("CLUSTER", "FORGET", "nobody"),
            ("CLUSTER", "COUNT-FAILURE-REPORTS", "ID0"), ("CLUSTER", "COUNT-FAILURE-REPORTS", "nobody"),
            ("CLUSTER", "SET-CONFIG-EPOCH", "x"), ("CLUSTER", "SET-CONFIG-EPOCH", "-1"),
            ("CLUSTER", "BUMPEPOCH"), ("CLUSTER", "BUMPEPOCH"), ("CLUSTER", "SET-CONFIG-EPOCH", "5"),
            ("CLUSTER", "REPLICAS", "ID0"), ("CLUSTER", "SLAVES", "nobody"),
            ("CLUSTER", "RESET", "bogus"), ("CLUSTER", "RESET", "SOFT", "x"),
            ("CLUSTER", "MEET", "nohost", "1234"), ("CLUSTER", "MEET", "127.0.0.1", "0"),
            ("CLUSTER", "MEET", "127.0.0.1", "70000"), ("CLUSTER", "MEET", "127.0.0.1", "1", "2", "3"),
            ("CLUSTER", "LINKS"), ("CLUSTER", "SLOTS"), ("CLUSTER", "NODES"),
            ("SET", "{x}a", "1"), ("CLUSTER", "FLUSHSLOTS"), ("DEL", "{x}a"),
            ("CLUSTER", "FLUSHSLOTS"), ("CLUSTER", "NODES"), ("CLUSTER", "SLOTS"),
            ("CLUSTER", "ADDSLOTSRANGE", "0", "16383"), "wait-ok",
            ("SET", "{x}a", "1"), ("SET", "{x}b", "2"), ("SET", "c", "3"),
            ("CLUSTER", "COUNTKEYSINSLOT", "16287"), ("CLUSTER", "GETKEYSINSLOT", "16287", "5"),
            ("CLUSTER", "GETKEYSINSLOT", "16287", "1"), ("CLUSTER", "RESET"),
            ("CLUSTER", "SETSLOT", "16287", "NODE", "ID0"), ("FLUSHALL",),
            ("CLUSTER", "RESET", "SOFT"), ("CLUSTER", "NODES"), ("CLUSTER", "INFO", "x"),
            ("CONFIG", "SET", "cluster-announce-hostname", "x" * 256),
            ("CONFIG", "SET", "cluster-announce-hostname", "?.com"),
            ("CONFIG", "SET", "cluster-announce-hostname", "a_b"),
            ("CONFIG", "SET", "cluster-announce-hostname", "x" * 255),
            ("CONFIG", "GET", "cluster-announce-hostname"), ("CONFIG", "SET", "cluster-announce-hostname", ""),
        ]:
            if args == "wait-ok":  # Redis stays "fail" for its rejoin delay after gaining the last slots
                wait_cluster_ok(list(fresh), known=1)
                continue
            pair.same(0, *args)
    finally:
        pair.close()


def test_meet_errors_are_redis_72_texts(fresh) -> None:
    with fresh[0].raw() as conn:
        assert conn.call("CLUSTER", "MEET", "127.0.0.1", "x") == b"-ERR Invalid base port specified: x\r\n"
        assert conn.call("CLUSTER", "MEET", "127.0.0.1", "1", "y") == b"-ERR Invalid bus port specified: y\r\n"
        assert conn.call("CLUSTER", "REPLICATE", "x") == b"-ERR Unknown node x\r\n"
        assert conn.call("CLUSTER", "FAILOVER", "bogus") == b"-ERR syntax error\r\n"
        assert conn.call("CLUSTER", "SHARDS").startswith(b"*1\r\n*4\r\n$5\r\nslots\r\n")
        help_lines = parse_reply(conn.call("CLUSTER", "HELP"))
        assert b"MYSHARDID" in help_lines and help_lines[-1] == b"    Print this help."  # 7.2+'s footer


def test_meet_completes_over_the_bus() -> None:
    a = start_cluster_node("--cluster-node-timeout", "1000")
    b = start_cluster_node("--cluster-node-timeout", "1000")
    try:
        with a.raw() as ca, b.raw() as cb:
            assert ca.call("CLUSTER", "ADDSLOTSRANGE", 0, 8191) == b"+OK\r\n"
            assert cb.call("CLUSTER", "ADDSLOTSRANGE", 8192, 16383) == b"+OK\r\n"
            bus_a, bus_b = (int(parse_reply(c.call("CLUSTER", "NODES")).split(b"@")[1].split(b" ")[0]) for c in (ca, cb))
            assert ca.call("CLUSTER", "MEET", "127.0.0.1", b.port, bus_b) == b"+OK\r\n"
            assert cb.call("CLUSTER", "MEET", "127.0.0.1", a.port, bus_a) == b"+OK\r\n"
            deadline = time.monotonic() + 20
            while b"cluster_state:ok" not in ca.call("CLUSTER", "INFO") or b"cluster_state:ok" not in cb.call(
                    "CLUSTER", "INFO"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            nodes_a = parse_reply(ca.call("CLUSTER", "NODES")).decode()
            id_b = parse_reply(cb.call("CLUSTER", "MYID")).decode()
            assert f"{id_b} 127.0.0.1:{b.port}@{bus_b} master - 0 " in nodes_a
            assert nodes_a.split("\n")[0].split(" ")[1] == f"127.0.0.1:{a.port}@{bus_a}"  # learnt its own IP
            assert ca.call("SET", "foo", "x") == b"-MOVED 12182 127.0.0.1:%d\r\n" % b.port
            ca.call("CLUSTER", "SAVECONFIG")
            shard_b = parse_reply(cb.call("CLUSTER", "MYSHARDID")).decode()  # type: ignore[union-attr]
            assert f"shard-id={shard_b} master" in open(os.path.join(a.dir, "nodes.conf")).read()
            # A MEET to a port nobody listens on stays in handshake, then is dropped.
            dead = free_port()
            assert ca.call("CLUSTER", "MEET", "127.0.0.1", dead, 1) == b"+OK\r\n"
            assert ca.call("CLUSTER", "MEET", "127.0.0.1", dead, 1) == b"+OK\r\n"  # already in progress
            assert b"cluster_known_nodes:3" in ca.call("CLUSTER", "INFO")
            deadline = time.monotonic() + 20
            while b"cluster_known_nodes:2" not in ca.call("CLUSTER", "INFO"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert ca.call("CLUSTER", "FORGET", id_b) == b"+OK\r\n"
            assert ca.call("CLUSTER", "FORGET", id_b) == b"+OK\r\n"  # blacklisted: already forgotten (7.2+)
            assert b"cluster_state:fail" in ca.call("CLUSTER", "INFO")
    finally:
        a.stop()
        b.stop()


# ----------------------------------------------------------------------------- routing (differential)


def _dump(conn: RawConnection, value: str) -> bytes:
    conn.call("SET", "{bar}dump-source", value)
    payload = parse_reply(conn.call("DUMP", "{bar}dump-source"))
    conn.call("DEL", "{bar}dump-source")
    assert isinstance(payload, bytes)
    return payload


def test_routing_matrix_matches_redis(cpair: ClusterPair) -> None:
    """Spec cluster.md §2.5, step by step on both clusters.  Tag {t} -> slot 15891 (node 1)."""
    same = cpair.same
    assert key_slot(b"{t}") == 15891
    same(0, "SET", "{t}x", "1")  # MOVED to node 1
    same(1, "SET", "{t}x", "1")
    same(1, "MGET", "{t}x", "foo")  # CROSSSLOT
    same(0, "MGET", "{t}x", "{t}y")  # MOVED (same slot, other node)
    same(0, "GET", "bar")  # node 0 owns slot 5061
    same(0, "PING")
    same(0, "DBSIZE")
    same(0, "ZUNIONSTORE", "bar", "2", "bar", "foo")  # movable keys: CROSSSLOT
    same(0, "ZUNIONSTORE", "{t}d", "1", "{t}x")  # MOVED
    same(0, "SORT", "bar", "BY", "nosort")
    same(0, "MULTI")
    same(0, "SET", "bar", "1")
    same(0, "SET", "{t}q", "1")  # MOVED at queue time
    same(0, "EXEC")  # EXECABORT
    same(1, "MULTI")
    same(1, "SET", "{t}a", "1")
    same(1, "SET", "foo", "2")  # slot 12182, also node 1
    same(1, "EXEC")  # CROSSSLOT at EXEC
    same(1, "EXEC")  # the transaction is gone
    # Open slot 15891: node 1 (owner) migrates it to node 0.
    same(0, "CLUSTER", "SETSLOT", "15891", "IMPORTING", "ID1")
    same(1, "CLUSTER", "SETSLOT", "15891", "MIGRATING", "ID0")
    same(1, "CLUSTER", "COUNTKEYSINSLOT", "15891")
    same(1, "GET", "{t}x")  # present: served
    same(1, "GET", "{t}y")  # ASK
    same(1, "SET", "{t}y", "v")  # ASK
    same(1, "EXISTS", "{t}y")
    same(1, "MGET", "{t}x", "{t}y")  # TRYAGAIN
    same(1, "MGET", "{t}y", "{t}y")  # ASK
    same(1, "MGET", "{t}x", "{t}x")
    same(1, "MIGRATE", "127.0.0.1", "PORT0", "", "0", "1000", "KEYS", "{t}y")  # NOKEY, no ASK for MIGRATE
    same(1, "MULTI")
    same(1, "GET", "{t}x")
    same(1, "GET", "{t}y")  # ASK at queue time
    same(1, "EXEC")
    same(0, "GET", "{t}y")  # MOVED without ASKING
    same(0, "ASKING")
    same(0, "GET", "{t}y")  # served
    same(0, "GET", "{t}y")  # ASKING is one-shot
    same(0, "ASKING")
    same(0, "PING")  # consumes it
    same(0, "GET", "{t}y")
    same(0, "ASKING")
    same(0, "MGET", "{t}y", "foo")  # CROSSSLOT
    same(0, "ASKING")
    same(0, "SET", "{t}y", "v0")
    same(0, "ASKING")
    same(0, "MGET", "{t}y", "{t}x")  # y here, x not: TRYAGAIN
    same(0, "ASKING")
    same(0, "MGET", "{t}y", "{t}y")
    same(0, "ASKING")
    same(0, "GET")  # refused before routing (arity) ...
    same(0, "GET", "{t}y")  # ... and still consumed ASKING (resetClient): MOVED
    payload = _dump(cpair.ours[0], "restored")
    same(0, "RESTORE", "{t}r", "0", payload)  # MOVED
    same(0, "RESTORE-ASKING", "{t}r", "0", payload)  # the asking flag: served
    same(0, "RESTORE-ASKING", "{t}r", "0", payload)  # BUSYKEY
    same(0, "GET", "{t}r")  # MOVED: RESTORE-ASKING did not leave the client flag set
    same(0, "ASKING")
    same(0, "MULTI")
    same(0, "SET", "{t}m", "m1")
    same(0, "GET", "{t}m")
    same(0, "EXEC")  # ASKING before MULTI survives until EXEC
    same(0, "MULTI")
    same(0, "ASKING")  # queued: does nothing for what follows
    same(0, "SET", "{t}m", "m2")  # MOVED
    same(0, "EXEC")
    same(0, "READONLY")
    same(0, "GET", "{t}y")  # READONLY only matters on replicas
    same(0, "READWRITE")
    # Move {t}x with MIGRATE (RESTORE-ASKING on the target), then close the slot.
    same(1, "MIGRATE", "127.0.0.1", "PORT0", "", "0", "5000", "KEYS", "{t}x")
    same(1, "GET", "{t}x")  # ASK: gone from the source
    same(1, "CLUSTER", "GETKEYSINSLOT", "15891", "10")
    same(0, "ASKING")
    same(0, "GET", "{t}x")
    same(0, "CLUSTER", "COUNTKEYSINSLOT", "15891")
    same(1, "CLUSTER", "SETSLOT", "15891", "NODE", "ID0")
    same(0, "CLUSTER", "SETSLOT", "15891", "NODE", "ID0")
    same(0, "GET", "{t}x")
    same(1, "GET", "{t}x")  # MOVED to node 0
    same(0, "CLUSTER", "SETSLOT", "15891", "NODE", "ID1")  # give it back: still holding keys here
    same(0, "DEL", "{t}x", "{t}y", "{t}r", "{t}m")
    same(0, "CLUSTER", "SETSLOT", "15891", "NODE", "ID1")
    same(1, "CLUSTER", "SETSLOT", "15891", "NODE", "ID1")
    same(1, "SET", "{t}x", "back")


def test_cluster_topology_replies_match_redis(cpair: ClusterPair) -> None:
    for node in (0, 1):
        ours, theirs = cpair.both(node, "CLUSTER", "NODES")
        def fields(text: bytes) -> list[list[bytes]]:
            rows = []
            for line in sorted(parse_reply(text).split(b"\n")):
                if line:
                    parts = line.split(b" ")
                    rows.append(parts[:4] + parts[8:])  # ping/pong/epoch/link-state vary with the bus
            return rows
        assert fields(ours) == fields(theirs)
        cpair.same(node, "CLUSTER", "SLOTS")
        cpair.same(node, "CLUSTER", "MYID")
        info_ours, info_theirs = cpair.both(node, "CLUSTER", "INFO")
        keep = re.compile(rb"cluster_(state|slots_\w+|known_nodes|size):\S+")
        assert keep.findall(info_ours) == keep.findall(info_theirs)
    shards_ours = parse_reply(cpair.ours[0].call("CLUSTER", "SHARDS"))
    shards_theirs = parse_reply(cpair.theirs[0].call("CLUSTER", "SHARDS"))

    def label(value: object, table: dict[bytes, bytes]) -> object:
        if isinstance(value, list):
            return [label(v, table) for v in value]
        if isinstance(value, int):
            return table.get(b"%d" % value, value)
        return table.get(value, value) if isinstance(value, bytes) else value

    assert sorted(repr(label(s, cpair.table_ours)) for s in shards_ours) == sorted(
        repr(label(s, cpair.table_theirs)) for s in shards_theirs)


def test_cluster_replies_in_resp3_match_redis(clusters) -> None:
    ours, theirs = clusters
    tables = labeller(ours), labeller(theirs)
    with ours[1].raw() as a, theirs[1].raw() as b:
        a.call("HELLO", "3")
        b.call("HELLO", "3")

        def both(*args: str) -> tuple[bytes, bytes]:
            raw = a.call(*args), b.call(*args)
            out = []
            for reply, table in zip(raw, tables, strict=True):
                for old, new in table.items():
                    reply = reply.replace(old, new)  # ids keep their length; ports are RESP3 integers here
                out.append(reply)
            return out[0], out[1]

        slots = both("CLUSTER", "SLOTS")
        assert slots[0] == slots[1] and b"%0\r\n" in slots[0]
        for args in (("CLUSTER", "INFO"), ("CLUSTER", "NODES")):
            ours_reply, theirs_reply = both(*args)
            assert ours_reply[:1] == theirs_reply[:1] == b"=" and ours_reply.split(b"\r\n")[1][:4] == b"txt:"
        shards = both("CLUSTER", "SHARDS")
        assert shards[0].count(b"%2\r\n") == shards[1].count(b"%2\r\n") == 2
        assert shards[0].count(b"%7\r\n") == shards[1].count(b"%7\r\n") == 2


def test_scripts_keep_to_the_slot_of_their_declared_keys(cpair: ClusterPair) -> None:
    """A script with a shebang, or a function, that declared keys may touch only keys of
    their slot (Redis 7.0 and 7.4 agree; the 7.0 suite's unit/cluster-scripting).  On node 1:
    '123456789' is slot 12739, 'foo' and '{foo}x' 12182."""
    write_foo = "#!lua\nredis.call('set', 'foo', 'bar')\nreturn 'OK'"
    cpair.same(1, "EVAL", write_foo, 1, "123456789")  # another slot than the declared key's
    cpair.same(1, "EVAL", "#!lua\nreturn redis.call('get', 'foo')", 1, "123456789")
    cpair.same(1, "EVAL", write_foo, 1, "{foo}x")  # the declared key's slot
    cpair.same(1, "EVAL", "#!lua flags=allow-cross-slot-keys\nreturn redis.call('get', 'foo')", 1, "123456789")
    cpair.same(1, "EVAL", "return redis.call('set', 'foo', 'baz')", 1, "123456789")  # no shebang: allowed
    cpair.same(1, "EVAL", "#!lua\nreturn redis.call('get', '123456789')", 1, "123456789")
    cpair.same(1, "FUNCTION", "LOAD", "REPLACE",
               "#!lua name=slotlib\nredis.register_function('getfoo', function() return redis.call('get', 'foo') end)")
    cpair.same(1, "FCALL", "getfoo", 1, "123456789")
    cpair.same(1, "FCALL", "getfoo", 1, "{foo}y")
    cpair.same(1, "FCALL", "getfoo", 0)
    cpair.same(1, "GET", "foo")
    cpair.same(1, "FUNCTION", "DELETE", "slotlib")


def test_clusterdown_and_reads_when_down(cpair: ClusterPair) -> None:
    cpair.same(0, "SET", "bar", "1")
    cpair.same(0, "CLUSTER", "DELSLOTS", "100")
    cpair.same(0, "GET", "bar")  # whole cluster down (full coverage)
    for conn in cpair.ours[:1] + cpair.theirs[:1]:
        conn.call("CONFIG", "SET", "cluster-allow-reads-when-down", "yes")
    try:
        cpair.same(0, "GET", "bar")
        cpair.same(0, "SET", "bar", "2")  # only reads
        key100 = "{" + next(f"k{i}" for i in range(100000) if key_slot(f"k{i}".encode()) == 100) + "}"
        cpair.same(0, "GET", key100)  # unowned slot
        cpair.same(0, "PING")
        cpair.same(0, "DBSIZE")
    finally:
        for conn in cpair.ours[:1] + cpair.theirs[:1]:
            conn.call("CONFIG", "SET", "cluster-allow-reads-when-down", "no")
        cpair.same(0, "CLUSTER", "ADDSLOTS", "100")
    cpair.same(0, "GET", "bar")


def test_blocked_clients_follow_their_slot(clusters, cpair: ClusterPair) -> None:
    """clusterRedirectBlockedClientIfNeeded: a BLPOP whose slot moves away gets MOVED."""
    waiting = [clusters[0][0].raw(), clusters[1][0].raw()]
    try:
        for conn in waiting:
            conn.send(encode_command("BLPOP", "bar", "0"))
        for node in (clusters[0][0], clusters[1][0]):
            with node.raw() as admin:
                wait_blocked(admin)
        # The giver first: a real node that still claimed the slot with a newer epoch would
        # UPDATE the receiver back over the bus.
        cpair.same(0, "CLUSTER", "SETSLOT", "5061", "NODE", "ID1")
        cpair.same(1, "CLUSTER", "SETSLOT", "5061", "NODE", "ID1")
        replies = []
        for conn, table in zip(waiting, (cpair.table_ours, cpair.table_theirs), strict=True):
            conn.sock.settimeout(5)
            replies.append(normalise(conn.read_reply(), table))
        assert replies[0] == replies[1] == b"-MOVED 5061 127.0.0.1:PORT1\r\n"
    finally:
        for conn in waiting:
            conn.close()
        cpair.same(1, "CLUSTER", "SETSLOT", "5061", "NODE", "ID0")
        cpair.same(0, "CLUSTER", "SETSLOT", "5061", "NODE", "ID0")
    cpair.same(0, "GET", "bar")


def test_select_and_cluster_only_db0(cpair: ClusterPair) -> None:
    for args in (("SELECT", "0"), ("SELECT", "1"), ("SWAPDB", "0", "1"), ("MOVE", "bar", "1"),
                 ("COPY", "bar", "baz", "DB", "1"), ("COPY", "bar", "{t}z")):
        cpair.same(0, *args)


# ----------------------------------------------------------------------------- clients


@pytest.fixture(scope="module")
def three() -> Iterator[list[ServerProcess]]:
    nodes = start_dumpling_cluster([[r] for r in split_slots(3)])
    yield nodes
    stop_cluster(nodes)


def test_redis_py_cluster_client(three: list[ServerProcess]) -> None:
    for protocol in (2, 3):
        rc = RedisCluster(host="127.0.0.1", port=three[0].port, protocol=protocol)
        try:
            for i in range(300):
                rc.set(f"key:{i}", i)
            assert [int(rc.get(f"key:{i}")) for i in range(300)] == list(range(300))
            assert rc.mget("{u}a", "{u}b") == [None, None]
            rc.hset("{u}h", mapping={"f": "v"})
            assert rc.hgetall("{u}h") == {b"f": b"v"}
            sizes = [redis.Redis(port=n.port).dbsize() for n in three]
            assert sum(sizes) == 301 and all(s > 50 for s in sizes)
            rc.flushall()
        finally:
            rc.close()


def test_redis_cli_follows_redirections(three: list[ServerProcess]) -> None:
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli not installed")
    port = three[0].port
    out = subprocess.run([cli, "-c", "-p", str(port), "SET", "foo", "bar"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "OK"
    out = subprocess.run([cli, "-c", "-p", str(port), "GET", "foo"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "bar"
    out = subprocess.run([cli, "--cluster", "check", f"127.0.0.1:{port}"], capture_output=True, text=True,
                         timeout=20)
    assert out.returncode == 0, out.stdout
    assert "[OK] All nodes agree about slots configuration." in out.stdout
    assert "[OK] All 16384 slots covered." in out.stdout
    with three[0].raw() as conn:
        conn.call("FLUSHALL")
    for node in three[1:]:
        with node.raw() as conn:
            conn.call("FLUSHALL")

