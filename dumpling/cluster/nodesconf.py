"""nodes.conf: CLUSTER NODES lines, the file Redis keeps them in, its parser and writer.

The same node description serves CLUSTER NODES (Redis 7.0 shape: ``ip:port@cport``
plus ``,hostname`` when there is one) and the file (Redis 7.2+ shape: always a
hostname slot, then the ``tls-port`` and ``shard-id`` aux fields).  The parser reads
both shapes with Redis's rules (spec cluster.md §4.3).  ``NodesConfFile`` owns the
file on disk: an exclusive ``flock`` held for the life of the process, and rewrites
by temp file + rename (re-locking the new inode, so a second server on the same path
is refused even after a rewrite).

Must not: know about the server or sockets beyond the file itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable

from dumpling.cluster.nodes import (
    FAIL,
    FLAG_BY_NAME,
    HANDSHAKE,
    MYSELF,
    ClusterNode,
    ClusterState,
    is_node_id,
    now_ms,
    random_node_id,
)
from dumpling.cluster.slots import CLUSTER_SLOTS, format_ranges
from dumpling.protocol import split_args

AUX_FIELDS = ("shard-id", "nodename", "tcp-port", "tls-port")


class NodesConfError(Exception):
    """The file is corrupt (Redis exits with 'Unrecoverable error: corrupted cluster config file')."""

    def __init__(self, line: str, reason: str = "") -> None:
        super().__init__(reason or line)
        self.line = line
        self.reason = reason


class UnknownFlagError(NodesConfError):
    """An unknown node flag: Redis panics instead of reporting a corrupt file."""


# ----------------------------------------------------------------------------- writing


def describe_node(state: ClusterState, node: ClusterNode, *, for_file: bool = False) -> str:
    """One CLUSTER NODES line (no line end), or the nodes.conf line with aux fields."""
    address = f"{node.ip}:{node.port}@{node.cport}"
    if for_file:
        address += f",{node.hostname},tls-port=0,shard-id={node.shard_id}"
    elif node.hostname:
        address += f",{node.hostname}"
    master = node.master.id if node.is_replica and node.master is not None else "-"
    epoch = node.master.config_epoch if node.is_replica and node.master is not None else node.config_epoch
    link = "connected" if node.flags & MYSELF or node.link is not None else "disconnected"
    parts = [node.id, address, node.flag_text(), master, str(node.ping_sent), str(node.pong_received), str(epoch), link]
    parts += format_ranges(state.node_ranges(node))
    if node is state.myself:
        for slot in sorted(set(state.migrating) | set(state.importing)):
            if slot in state.migrating:
                parts.append(f"[{slot}->-{state.migrating[slot].id}]")
            else:
                parts.append(f"[{slot}-<-{state.importing[slot].id}]")
    return " ".join(parts)


def render_nodes(state: ClusterState) -> str:
    """CLUSTER NODES: every known node, one LF-terminated line each, table order."""
    return "".join(describe_node(state, node) + "\n" for node in state.nodes.values())


def render_file(state: ClusterState) -> str:
    """nodes.conf: every node not in handshake, then the ``vars`` line."""
    lines = [describe_node(state, n, for_file=True) for n in state.nodes.values() if not n.flags & HANDSHAKE]
    lines.append(f"vars currentEpoch {state.current_epoch} lastVoteEpoch {state.last_vote_epoch}")
    return "".join(line + "\n" for line in lines)


# ----------------------------------------------------------------------------- reading


def _atoi(text: str) -> int:
    """C ``atoi``: leading digits (after an optional sign), 0 when there are none."""
    text = text.strip()
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = ""
    for ch in text:
        if not ch.isdigit():
            break
        digits += ch
    return sign * int(digits) if digits else 0


def _strtoull(text: str) -> int:
    value = _atoi(text)
    return value if value >= 0 else value & ((1 << 64) - 1)


def parse_nodes_conf(text: str) -> ClusterState:
    """Build the cluster state a nodes.conf describes (Redis's clusterLoadConfig rules)."""
    nodes: dict[str, ClusterNode] = {}
    myself: ClusterNode | None = None
    owners: dict[int, ClusterNode] = {}
    migrating: dict[int, ClusterNode] = {}
    importing: dict[int, ClusterNode] = {}
    replica_of: dict[ClusterNode, ClusterNode] = {}
    current_epoch = last_vote_epoch = 0
    has_shard_id: set[ClusterNode] = set()
    now = now_ms()

    def node_for(node_id: str) -> ClusterNode:
        node = nodes.get(node_id)
        if node is None:
            node = nodes[node_id] = ClusterNode(node_id)
        return node

    for raw in text.split("\n"):
        if not raw.strip("\r"):
            continue
        try:
            argv = [a.decode("utf-8", "surrogateescape") for a in split_args(raw.encode("utf-8", "surrogateescape"))]
        except ValueError:
            raise NodesConfError(raw, "unbalanced quotes") from None
        if not argv:
            continue
        if argv[0].lower() == "vars":
            if len(argv) % 2 == 0:
                raise NodesConfError(raw, "odd number of vars tokens expected")
            for name, value in zip(argv[1::2], argv[2::2], strict=True):
                if name.lower() == "currentepoch":
                    current_epoch = _strtoull(value)
                elif name.lower() == "lastvoteepoch":
                    last_vote_epoch = _strtoull(value)
            continue
        if len(argv) < 8:
            raise NodesConfError(raw, "fewer than 8 fields")
        if not is_node_id(argv[0]):
            raise NodesConfError(raw, "invalid node id")
        node = node_for(argv[0])
        fields = argv[1].split(",")
        address = fields[0]
        colon = address.rfind(":")
        if colon == -1:
            raise NodesConfError(raw, "address without port")
        node.ip = address[:colon]
        port_part, _, bus_part = address[colon + 1 :].partition("@")
        node.port = _atoi(port_part)
        node.cport = _atoi(bus_part) if bus_part else node.port + 10000
        node.hostname = fields[1] if len(fields) > 1 else ""
        for aux in fields[2:]:
            name, eq, value = aux.partition("=")
            if not eq or name not in AUX_FIELDS or "=" in value:
                raise NodesConfError(raw, f"invalid aux field {aux!r}")
            if name == "shard-id":
                if not is_node_id(value):
                    raise NodesConfError(raw, "invalid shard id")
                node.shard_id = value
                has_shard_id.add(node)
        for flag in argv[2].split(","):
            bit = FLAG_BY_NAME.get(flag.lower())
            if bit is None:
                raise UnknownFlagError(raw, "Unknown flag in redis cluster config file")
            node.flags |= bit
            if bit == MYSELF:
                myself = node
            elif bit == FAIL:
                node.fail_time = now
        if argv[3] != "-" and not argv[3].startswith("-"):
            replica_of[node] = node_for(argv[3])
        if _atoi(argv[4]):
            node.ping_sent = now
        if _atoi(argv[5]):
            node.pong_received = now
        node.config_epoch = _strtoull(argv[6])
        for token in argv[8:]:
            if token.startswith("["):
                dash = token.find("-")
                end = token.find("]")
                if dash == -1 or end == -1 or len(token) < dash + 3:
                    raise NodesConfError(raw, f"bad open slot {token!r}")
                slot = _atoi(token[1:dash])
                direction = token[dash + 1]
                peer_id = token[dash + 3 : end]
                if not 0 <= slot < CLUSTER_SLOTS or len(peer_id) != 40 or direction not in "<>":
                    raise NodesConfError(raw, f"bad open slot {token!r}")
                (migrating if direction == ">" else importing)[slot] = node_for(peer_id)
                continue
            first, dash, last = token.partition("-")
            start = _atoi(first)
            stop = _atoi(last) if dash else start
            if not (0 <= start < CLUSTER_SLOTS and 0 <= stop < CLUSTER_SLOTS):
                raise NodesConfError(raw, f"slot out of range {token!r}")
            for slot in range(start, stop + 1):
                owners[slot] = node
    if myself is None:
        raise NodesConfError("", "no 'myself' node")
    state = ClusterState(myself)
    for node in nodes.values():
        state.add_node(node)
    for replica, master in replica_of.items():
        state.set_master(replica, master)
        replica.config_epoch = 0  # a replica with a known master advertises its master's epoch
    for node in nodes.values():  # 7.2+: replicas share their master's shard id
        if node.master is not None and node not in has_shard_id:
            node.shard_id = node.master.shard_id
    for slot, node in owners.items():
        state.bind(slot, node)
    state.migrating.update(migrating)
    state.importing.update(importing)
    state.current_epoch = max(current_epoch, state.max_epoch())
    state.last_vote_epoch = last_vote_epoch
    return state


def fresh_state() -> ClusterState:
    """A node that has never been configured: a master with a random id and no slots."""
    from dumpling.cluster.nodes import MASTER

    return ClusterState(ClusterNode(random_node_id(), flags=MYSELF | MASTER))


# ----------------------------------------------------------------------------- the file


class ConfigLockedError(Exception):
    """Another process holds the lock on this nodes.conf."""


class NodesConfFile:
    """nodes.conf on disk, locked for as long as this server runs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self._saved: bytes | None = None  # the content last written (and whether it was fsynced)
        self._saved_synced = False
        # Closing the lock's descriptor on the replaced file frees that inode, which costs
        # about a millisecond on ext4; the server hands it to a worker thread.
        self.close_fd: Callable[[int], object] = os.close

    def lock(self) -> None:
        """Open (creating if needed) and ``flock`` the file; ConfigLockedError if taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigLockedError(self.path) from None
        old, self._lock_fd = self._lock_fd, fd
        if old is not None:
            self.close_fd(old)

    def read(self) -> str:
        """The file's text ('' when it is empty or was just created)."""
        with open(self.path, encoding="utf-8", errors="surrogateescape", newline="") as f:
            return f.read()

    def save(self, state: ClusterState, fsync: bool = False, force: bool = False) -> None:
        """Write the whole file to a temp file and rename it over the real one (not when
        the file already holds exactly this text, fsynced if ``fsync`` asks for it)."""
        content = render_file(state).encode("utf-8", "surrogateescape")
        if not force and content == self._saved and (self._saved_synced or not fsync):
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        tmp = f"{self.path}.tmp-{os.getpid()}-{int(time.time() * 1000)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(content)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if fsync:
                os.fsync(fd)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)
        try:
            os.rename(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if fsync:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._saved, self._saved_synced = content, fsync
        if self._lock_fd is not None:
            with contextlib.suppress(ConfigLockedError):
                self.lock()  # the lock must follow the new inode

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
