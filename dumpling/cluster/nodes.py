"""The cluster node table and slot map: who exists, who owns which slot, open slots, epochs.

Pure state, no I/O: the CLUSTER commands (``dumpling.commands.cluster``) and the
nodes.conf reader (``dumpling.cluster.nodesconf``) change it through these methods.
Node flags are the bit values of the cluster-bus header (spec cluster.md §7.3) and a
node keeps the fields a PING/PONG carries (ports, epochs, ping/pong times, links, failure
reports), so the gossip bus can be added on top of this table without reshaping it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from dumpling.cluster.busproto import bitmap_runs
from dumpling.cluster.slots import CLUSTER_SLOTS

# Flag bits as on the cluster bus.
MASTER = 1
SLAVE = 2
PFAIL = 4
FAIL = 8
MYSELF = 16
HANDSHAKE = 32
NOADDR = 64
MEET = 128
MIGRATE_TO = 256
NOFAILOVER = 512

# CLUSTER NODES prints these, in this order; MEET and MIGRATE_TO are internal.
FLAG_NAMES = (
    (MYSELF, "myself"),
    (MASTER, "master"),
    (SLAVE, "slave"),
    (PFAIL, "fail?"),
    (FAIL, "fail"),
    (HANDSHAKE, "handshake"),
    (NOADDR, "noaddr"),
    (NOFAILOVER, "nofailover"),
)
FLAG_BY_NAME = {name: bit for bit, name in FLAG_NAMES} | {"noflags": 0}
NODE_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
WRITABLE_DELAY_MS = 2000  # a master stays "fail" this long after its first evaluation
FORGET_BLACKLIST_TTL = 60  # seconds a FORGotten node stays ignored (gossip about it is dropped)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def random_node_id() -> str:
    """40 lowercase hex characters, as Redis generates node and shard ids."""
    return secrets.token_hex(20)


def is_node_id(text: str) -> bool:
    return len(text) == 40 and all(ch in NODE_ID_CHARS for ch in text)


@dataclass(eq=False)
class ClusterNode:
    """One node as this node sees it (Redis's ``clusterNode``)."""

    id: str
    flags: int = 0
    ip: str = ""
    port: int = 0
    cport: int = 0
    hostname: str = ""
    shard_id: str = field(default_factory=random_node_id)
    master: ClusterNode | None = None  # set for replicas
    replicas: list[ClusterNode] = field(default_factory=list)
    config_epoch: int = 0
    ping_sent: int = 0  # unix ms of the pending PING, 0 if none
    pong_received: int = 0  # unix ms of the last PONG
    fail_time: int = 0
    ctime: int = field(default_factory=now_ms)
    repl_offset: int = 0
    num_slots: int = 0
    human_nodename: str = ""
    # Bus state: the outbound link (we connect, PING, get PONGs), the inbound one (it
    # connects to us), when any data last came from it, the failure reports other
    # masters sent about it (reporter id -> unix ms), and when we last voted for a
    # failover of it (as its master's voter).
    link: Any = None
    inbound_link: Any = None
    data_received: int = 0
    fail_reports: dict[str, int] = field(default_factory=dict)
    voted_time: int = 0
    orphaned_time: int = 0  # since when this master has no working replica (replica migration)
    # The slots this node owns as a bus bitmap (slot j is bit j % 8 of byte j / 8).
    slots: bytearray = field(default_factory=lambda: bytearray(CLUSTER_SLOTS // 8))

    @property
    def is_master(self) -> bool:
        return bool(self.flags & MASTER)

    @property
    def is_replica(self) -> bool:
        return bool(self.flags & SLAVE)

    @property
    def is_myself(self) -> bool:
        return bool(self.flags & MYSELF)

    @property
    def in_handshake(self) -> bool:
        return bool(self.flags & HANDSHAKE)

    @property
    def failed(self) -> bool:
        return bool(self.flags & (FAIL | PFAIL))

    def flag_text(self) -> str:
        names = [name for bit, name in FLAG_NAMES if self.flags & bit]
        return ",".join(names) if names else "noflags"


class ClusterState:
    """The node table, the slot -> owner map, open (migrating/importing) slots and epochs."""

    def __init__(self, myself: ClusterNode) -> None:
        myself.flags |= MYSELF
        self.myself = myself
        self.nodes: dict[str, ClusterNode] = {myself.id: myself}
        self.owners: list[ClusterNode | None] = [None] * CLUSTER_SLOTS
        # Slots whose owner stopped claiming them in its PINGs (bound until someone claims them).
        self.not_claiming = bytearray(CLUSTER_SLOTS)
        self.migrating: dict[int, ClusterNode] = {}
        self.importing: dict[int, ClusterNode] = {}
        self.current_epoch = 0
        self.last_vote_epoch = 0
        self.ok = False  # cluster_state
        self.first_update = 0  # unix ms of the first state evaluation with the bus running
        self.among_minority_time = 0  # unix ms we last saw a minority of masters reachable
        self.assigned = 0  # slots with an owner
        self.size = 1  # masters serving at least one slot (Redis starts at 1 until computed)
        self.blacklist: dict[str, float] = {}  # FORGotten node id -> unix s when it may return
        self.messages_sent: dict[int, int] = {}  # bus message type -> count
        self.messages_received: dict[int, int] = {}
        self.links_buffer_limit_exceeded = 0
        self._runs: dict[ClusterNode, list[tuple[int, int]]] | None = None
        self._slot_runs: list[tuple[int, int, ClusterNode]] | None = None

    # -- nodes ------------------------------------------------------------------

    def lookup(self, node_id: str) -> ClusterNode | None:
        return self.nodes.get(node_id)

    def add_node(self, node: ClusterNode) -> ClusterNode:
        self.nodes[node.id] = node
        return node

    def placeholder(self, node_id: str) -> ClusterNode:
        """The node with ``node_id``, created without flags or address if unknown (nodes.conf refs)."""
        node = self.nodes.get(node_id)
        if node is None:
            node = self.add_node(ClusterNode(node_id))
        return node

    def delete_node(self, node: ClusterNode) -> None:
        """clusterDelNode: unassign its slots, close open slots naming it, drop it."""
        for slot in [s for s, n in self.importing.items() if n is node]:
            del self.importing[slot]
        for slot in [s for s, n in self.migrating.items() if n is node]:
            del self.migrating[slot]
        for slot in range(CLUSTER_SLOTS):
            if self.owners[slot] is node:
                self.unbind(slot)
        for other in self.nodes.values():
            other.fail_reports.pop(node.id, None)
        if node.master is not None and node in node.master.replicas:
            node.master.replicas.remove(node)
        for replica in node.replicas:
            replica.master = None
        node.replicas = []
        self.nodes.pop(node.id, None)

    def rename_node(self, node: ClusterNode, new_id: str) -> None:
        """A handshake node learnt its real id."""
        self.nodes.pop(node.id, None)
        node.id = new_id
        self.nodes[new_id] = node

    def set_master(self, replica: ClusterNode, master: ClusterNode | None) -> None:
        """Make ``replica`` a replica of ``master`` (None: it becomes a master)."""
        if replica.master is not None and replica in replica.master.replicas:
            replica.master.replicas.remove(replica)
        replica.master = master
        if master is None:
            replica.flags = (replica.flags & ~SLAVE) | MASTER
            return
        replica.flags = (replica.flags & ~MASTER) | SLAVE
        if replica not in master.replicas:
            master.replicas.append(replica)
            master.flags |= MIGRATE_TO  # clusterNodeAddSlave: it had a replica, so it should have one

    def forget(self, node: ClusterNode, now_s: float) -> None:
        self.blacklist[node.id] = now_s + FORGET_BLACKLIST_TTL
        self.delete_node(node)

    def blacklisted(self, node_id: str, now_s: float) -> bool:
        for nid in [nid for nid, until in self.blacklist.items() if until <= now_s]:
            del self.blacklist[nid]
        return node_id in self.blacklist

    # -- slots -------------------------------------------------------------------

    def bind(self, slot: int, node: ClusterNode) -> None:
        old = self.owners[slot]
        if old is node:
            return
        if old is not None:
            old.num_slots -= 1
            old.slots[slot >> 3] &= ~(1 << (slot & 7))
        else:
            self.assigned += 1
        self.owners[slot] = node
        self.not_claiming[slot] = 0
        node.num_slots += 1
        node.slots[slot >> 3] |= 1 << (slot & 7)
        self._runs = self._slot_runs = None

    def unbind(self, slot: int) -> None:
        old = self.owners[slot]
        if old is None:
            return
        old.num_slots -= 1
        old.slots[slot >> 3] &= ~(1 << (slot & 7))
        self.assigned -= 1
        self.owners[slot] = None
        self.not_claiming[slot] = 0
        self._runs = self._slot_runs = None

    def slot_runs(self) -> list[tuple[int, int, ClusterNode]]:
        """Maximal runs of consecutive slots with one owner: (first, last, owner), slot order."""
        if self._slot_runs is None:
            # groupby walks the 16384 owners in C (owners compare by identity): a save of
            # nodes.conf after each SETSLOT must not cost a Python loop over every slot.
            runs: list[tuple[int, int, ClusterNode]] = []
            start = 0
            for owner, group in groupby(self.owners):
                length = len(list(group))
                if owner is not None:
                    runs.append((start, start + length - 1, owner))
                start += length
            self._slot_runs = runs
        return self._slot_runs

    def node_ranges(self, node: ClusterNode) -> list[tuple[int, int]]:
        """The slot runs ``node`` owns, ascending (from its bitmap; cached until a slot moves)."""
        if self._runs is None:
            self._runs = {}
        runs = self._runs.get(node)
        if runs is None:
            runs = self._runs[node] = bitmap_runs(node.slots)
        return runs

    def node_slots(self, node: ClusterNode) -> list[int]:
        return [s for first, last in self.node_ranges(node) for s in range(first, last + 1)]

    # -- epochs ------------------------------------------------------------------

    def max_epoch(self) -> int:
        return max([self.current_epoch] + [n.config_epoch for n in self.nodes.values()])

    def bump_epoch(self) -> bool:
        """clusterBumpConfigEpochWithoutConsensus: a new, unique-highest configEpoch for me."""
        me = self.myself
        if me.config_epoch == 0 or me.config_epoch != self.max_epoch():
            self.current_epoch += 1
            me.config_epoch = self.current_epoch
            return True
        return False

    def my_epoch(self) -> int:
        me = self.myself
        if me.is_replica and me.master is not None:
            return me.master.config_epoch
        return me.config_epoch

    # -- health ------------------------------------------------------------------

    def update_state(self, require_full_coverage: bool, now: int = 0, rejoin_delay: int = 0) -> bool:
        """clusterUpdateState; True when cluster_state changed.

        With ``now`` (unix ms, the bus is running) Redis's delays apply to a master: it stays
        ``fail`` for 2 s after the first evaluation, and for ``rejoin_delay`` ms after it was
        last in a minority partition."""
        if now:
            if not self.first_update:
                self.first_update = now
            if self.myself.is_master and not self.ok and now - self.first_update < WRITABLE_DELAY_MS:
                return False
        ok = not require_full_coverage or self.assigned == CLUSTER_SLOTS
        size = reachable = 0
        for node in self.nodes.values():
            if require_full_coverage and node.num_slots and node.flags & FAIL:
                ok = False
            if node.is_master and node.num_slots:
                size += 1
                if not node.failed:
                    reachable += 1
        self.size = size
        if reachable < size // 2 + 1:
            ok = False
            self.among_minority_time = now
        if ok == self.ok:
            return False
        if ok and now and self.myself.is_master and now - self.among_minority_time < rejoin_delay:
            return False
        self.ok = ok
        return True

    # -- reset -------------------------------------------------------------------

    def reset(self, hard: bool) -> None:
        """CLUSTER RESET: forget every other node, unassign every slot, close open slots."""
        me = self.myself
        if me.is_replica:
            self.set_master(me, None)
        self.migrating.clear()
        self.importing.clear()
        for slot in range(CLUSTER_SLOTS):
            self.unbind(slot)
        for node in list(self.nodes.values()):
            if node is not me:
                self.delete_node(node)
        if hard:
            self.current_epoch = 0
            self.last_vote_epoch = 0
            me.config_epoch = 0
            self.rename_node(me, random_node_id())
            me.shard_id = random_node_id()
