"""The cluster bus: links to the other nodes, the 100 ms cron, and what each message does.

``ClusterBus`` (``server.cluster.bus``) listens on the bus port (``cluster-port``, else
client port + 10000), keeps one outbound link per known node (we connect, send
PING/MEET, get PONGs) and accepts inbound ones (we answer their PINGs), and follows
Redis's ``clusterProcessPacket``/``clusterCron`` (spec cluster.md §7.6-§7.10): handshakes,
gossip, epochs and slot ownership (UPDATE), PFAIL -> FAIL by the masters' reports,
FAIL/PUBLISH/PUBLISHSHARD messages, failover votes, and replica elections.

The wire format is ``busproto`` (pure); the node table is ``ClusterState``.  Every
change goes through ``runtime.changed()`` (state recomputed, nodes.conf saved once per
loop pass).  A malformed message is refused by the codec: a broken frame closes only
its link, a bad length drops only that message, each with Redis's log line.

Must not: block the event loop, or touch keys except to drop the keys of a slot lost to
a newer configuration (Redis's dirty slots).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from typing import TYPE_CHECKING, Any

from dumpling.cluster import busproto as bp
from dumpling.cluster.nodes import (
    FAIL,
    HANDSHAKE,
    MASTER,
    MEET,
    MIGRATE_TO,
    MYSELF,
    NOADDR,
    NOFAILOVER,
    PFAIL,
    SLAVE,
    ClusterNode,
    is_node_id,
    now_ms,
    random_node_id,
)

if TYPE_CHECKING:
    from dumpling.commands.cluster import ClusterRuntime

CRON_INTERVAL_S = 0.1
HANDSHAKE_MIN_MS = 1000
FAIL_REPORT_VALIDITY_MULT = 2
FAIL_UNDO_TIME_MULT = 2
MIN_REJOIN_DELAY = 500
MAX_REJOIN_DELAY = 5000
MF_TIMEOUT = 5000
REPLICA_MIGRATION_DELAY = 5000  # a master must stay orphaned this long before a replica moves to it


class BusLink(asyncio.Protocol):
    """One TCP connection of the bus: frames in, bytes out."""

    def __init__(self, bus: ClusterBus, node: ClusterNode | None, inbound: bool) -> None:
        self.bus = bus
        self.node = node
        self.inbound = inbound
        self.ctime = now_ms()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if self.inbound:
            self.bus.links.add(self)
        else:
            self.bus.outbound_connected(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        while not self.closed and len(buf) >= 8:
            try:
                total = bp.frame_length(bytes(buf[:8]))
            except bp.BusError as e:
                peer = self.peer()
                self.bus.log("warning", f"{e.log[:-1]} from {peer[0]}:{peer[1]}" if peer else e.log or "")
                self.close()
                return
            if len(buf) < total:
                return
            raw = bytes(buf[:total])
            del buf[:total]
            self.bus.receive(self, raw)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.bus.link_gone(self)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.bus.link_gone(self)

    def peer(self) -> tuple[str, int] | None:
        if self.transport is None:
            return None
        peer = self.transport.get_extra_info("peername")
        return (peer[0], peer[1]) if peer else None

    def local_ip(self) -> str:
        if self.transport is None:
            return ""
        local = self.transport.get_extra_info("sockname")
        return local[0] if local else ""

    def peer_ip(self) -> str:
        peer = self.peer()
        return peer[0] if peer else ""


class ClusterBus:
    """The bus of one node (Redis's clusterCron, clusterProcessPacket and the senders)."""

    def __init__(self, runtime: ClusterRuntime) -> None:
        self.runtime = runtime
        self.state = runtime.state
        self.server = runtime.server
        self.links: set[BusLink] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.iteration = 0
        self.cron_task: asyncio.Task[None] | None = None
        self.connecting: set[ClusterNode] = set()
        # failover (replica side) and manual failover (both sides)
        self.auth_time = 0  # when the next election may start / started
        self.auth_count = 0
        self.auth_sent = False
        self.auth_rank = 0
        self.auth_epoch = 0
        self.cant_failover_reason = 0
        self.mf_end = 0
        self.mf_can_start = False
        self.mf_replica: ClusterNode | None = None
        self.mf_master_offset = -1
        self.takeover_force = False

    # -- plumbing ----------------------------------------------------------------------

    @property
    def config(self) -> Any:
        return self.runtime.config

    def log(self, level: str, line: str) -> None:
        self.server.log(level, line)

    def node_timeout(self) -> int:
        return self.config["cluster-node-timeout"]

    async def start(self) -> bool:
        """Listen on the bus port of every bind address; False (startup fails) if none works."""
        loop = asyncio.get_running_loop()
        port = self.config["cluster-port"] or self.config["port"] + 10000
        binds = self.config["bind"].split() or ["127.0.0.1"]
        for addr in binds:
            optional = addr.startswith("-")
            host = addr.lstrip("-")
            if host == "*":
                host = "0.0.0.0"
            try:
                srv = await loop.create_server(lambda: BusLink(self, None, True), host, port, reuse_address=True)
            except OSError as e:
                if optional:
                    continue
                self.log("warning", f"Warning: Could not create server TCP listening socket {host}:{port}: "
                         f"{e.strerror}")
                self.log("warning", f"Failed listening on port {port} (cluster), aborting.")
                return False
            self.servers.append(srv)
        self.cron_task = loop.create_task(self._cron_loop())
        return True

    def stop(self) -> None:
        if self.cron_task is not None:
            self.cron_task.cancel()
        for srv in self.servers:
            srv.close()
        for link in list(self.links):
            link.close()

    async def _cron_loop(self) -> None:
        while True:
            await asyncio.sleep(CRON_INTERVAL_S)
            try:
                self.cron()
            except Exception as e:  # the bus must keep running whatever one pass does
                self.log("warning", f"cluster cron error: {type(e).__name__}: {e}")

    def link_gone(self, link: BusLink) -> None:
        self.links.discard(link)
        node = link.node
        if node is not None:
            if node.link is link:
                node.link = None
            if node.inbound_link is link:
                node.inbound_link = None

    def free_link(self, link: BusLink | None) -> None:
        if link is not None:
            link.close()

    def delete_node(self, node: ClusterNode) -> None:
        """clusterDelNode: also close its links."""
        self.connecting.discard(node)
        self.free_link(node.link)
        self.free_link(node.inbound_link)
        self.state.delete_node(node)

    # -- connecting --------------------------------------------------------------------

    def connect(self, node: ClusterNode) -> None:
        if node in self.connecting:
            return
        self.connecting.add(node)
        loop = self.server.loop
        assert loop is not None
        loop.create_task(self._connect(node))

    async def _connect(self, node: ClusterNode) -> None:
        loop = asyncio.get_running_loop()
        link = BusLink(self, node, False)
        try:
            timeout = max(self.node_timeout(), HANDSHAKE_MIN_MS) / 1000
            async with asyncio.timeout(timeout):
                source = self.server.config["bind-source-addr"]
                await loop.create_connection(lambda: link, node.ip, node.cport,
                                             local_addr=(source, 0) if source else None)
        except (OSError, TimeoutError) as e:
            if node.ping_sent == 0:
                node.ping_sent = now_ms()  # failure detection needs a pending ping
            self.log("verbose", f"Connection with Node {node.id} at {node.ip}:{node.cport} failed: "
                     f"{getattr(e, 'strerror', None) or e}")
        finally:
            self.connecting.discard(node)

    def outbound_connected(self, link: BusLink) -> None:
        node = link.node
        assert node is not None
        if node.id not in self.state.nodes or self.state.nodes[node.id] is not node or node.link is not None:
            link.closed = True  # forgotten meanwhile, or another link won
            if link.transport is not None:
                link.transport.close()
            return
        self.links.add(link)
        node.link = link
        old_ping_sent = node.ping_sent
        self.send_ping(link, bp.MEET if node.flags & MEET else bp.PING)
        if old_ping_sent:
            node.ping_sent = old_ping_sent
        node.flags &= ~MEET

    # -- building messages -------------------------------------------------------------

    def header(self, kind: int) -> bp.Message:
        """clusterBuildMessageHdr: who I am, what my master (or I) serve, epochs, offset."""
        state = self.state
        me = state.myself
        master = me.master if me.is_replica and me.master is not None else me
        cfg = self.config
        mflags = bp.MF_PAUSED if me.is_master and self.mf_end else 0
        return bp.Message(
            type=kind, sender=me.id, port=me.port, cport=me.cport, pport=0, flags=me.flags & 0xFFFF,
            state=0 if state.ok else 1, mflags=mflags, current_epoch=state.current_epoch,
            config_epoch=master.config_epoch, offset=self.repl_offset(), myslots=bytes(master.slots),
            slaveof=me.master.id if me.is_replica and me.master is not None else "",
            myip=cfg["cluster-announce-ip"],
        )

    def repl_offset(self) -> int:
        replication = getattr(self.server, "replication", None)
        if replication is None:
            return 0
        return int(getattr(replication, "offset", 0) or 0)

    def gossip_entry(self, node: ClusterNode) -> bp.Gossip:
        return bp.Gossip(node.id, node.ping_sent // 1000, node.pong_received // 1000, node.ip, node.port, node.cport,
                         node.flags & 0xFFFF, 0)

    def extensions(self) -> list[bp.Extension]:
        """writePingExt of Redis 7.4: hostname, human nodename, forgotten nodes, shard id."""
        me = self.state.myself
        exts = []
        if me.hostname:
            exts.append(bp.text_extension(bp.EXT_HOSTNAME, me.hostname))
        if me.human_nodename:
            exts.append(bp.text_extension(bp.EXT_HUMAN_NODENAME, me.human_nodename))
        now_s = time.time()
        for node_id, until in self.state.blacklist.items():
            if until >= now_s:
                exts.append(bp.forgotten_node_extension(node_id, int(until - now_s)))
        exts.append(bp.shard_id_extension(me.shard_id))
        return exts

    def send_ping(self, link: BusLink, kind: int) -> None:
        """clusterSendPing: a PING/PONG/MEET with gossip about some nodes and all PFAIL ones."""
        state = self.state
        nodes = list(state.nodes.values())
        fresh = len(nodes) - 2
        wanted = max(3, len(nodes) // 10)
        wanted = min(wanted, fresh)
        msg = self.header(kind)
        if not link.inbound and kind == bp.PING and link.node is not None:
            link.node.ping_sent = now_ms()
        chosen: set[str] = set()
        tries = wanted * 3
        while fresh > 0 and len(msg.gossip) < wanted and tries > 0:
            tries -= 1
            node = random.choice(nodes)
            if node.flags & MYSELF or node is link.node or node.flags & PFAIL:
                continue
            if node.flags & (HANDSHAKE | NOADDR) or (node.link is None and node.num_slots == 0):
                fresh -= 1
                continue
            if node.id in chosen:
                continue
            chosen.add(node.id)
            msg.gossip.append(self.gossip_entry(node))
            fresh -= 1
        for node in nodes:
            if node.flags & PFAIL and not node.flags & (HANDSHAKE | NOADDR):
                msg.gossip.append(self.gossip_entry(node))
        msg.extensions = self.extensions()
        self.send(link, msg)

    def send(self, link: BusLink | None, msg: bp.Message) -> None:
        if link is None or link.closed:
            return
        sent = self.state.messages_sent
        sent[msg.type] = sent.get(msg.type, 0) + 1
        link.send(bp.encode(msg))

    def broadcast(self, msg: bp.Message, only: Any = None) -> None:
        """clusterBroadcastMessage: to every node with an outbound link, not in handshake."""
        data = bp.encode(msg)
        sent = self.state.messages_sent
        for node in list(self.state.nodes.values()):
            if node.flags & (MYSELF | HANDSHAKE) or node.link is None or node.link.closed:
                continue
            if only is not None and not only(node):
                continue
            sent[msg.type] = sent.get(msg.type, 0) + 1
            node.link.send(data)

    def broadcast_pong(self, local_replicas_only: bool = False) -> None:
        """clusterBroadcastPong: everyone (or only the replicas of my shard) gets my new config."""
        me = self.state.myself
        master = me.master if me.is_replica and me.master is not None else me
        for node in list(self.state.nodes.values()):
            if node.flags & (MYSELF | HANDSHAKE) or node.link is None:
                continue
            if local_replicas_only and not (node.is_replica and node.master is master):
                continue
            self.send_ping(node.link, bp.PONG)

    def send_fail(self, node_id: str) -> None:
        msg = self.header(bp.FAIL)
        msg.about = node_id
        self.broadcast(msg)

    def send_update(self, link: BusLink | None, node: ClusterNode) -> None:
        if link is None:
            return
        msg = self.header(bp.UPDATE)
        msg.update_epoch = node.config_epoch
        msg.update_node = node.id
        msg.update_slots = bytes(node.slots)
        self.send(link, msg)

    def propagate_publish(self, channel: bytes, message: bytes, shard: bool = False) -> None:
        """PUBLISH reaches every node; SPUBLISH only the nodes of my shard."""
        msg = self.header(bp.PUBLISHSHARD if shard else bp.PUBLISH)
        msg.channel = channel
        msg.payload = message
        if not shard:
            self.broadcast(msg)
            return
        me = self.state.myself
        master = me.master if me.is_replica and me.master is not None else me
        self.broadcast(msg, only=lambda n: n is master or (n.is_replica and n.master is master))

    # -- receiving ---------------------------------------------------------------------

    def receive(self, link: BusLink, raw: bytes) -> None:
        kind = int.from_bytes(raw[12:14], "big")
        if kind < bp.TYPE_COUNT:
            received = self.state.messages_received
            received[kind] = received.get(kind, 0) + 1
        try:
            msg = bp.decode(raw)
        except bp.BusError as e:
            if e.log:
                self.log("warning", e.log)
            if e.close_link:
                link.close()
            return
        self.process(link, msg)

    def sender_of(self, link: BusLink, msg: bp.Message) -> ClusterNode | None:
        node = link.node
        if node is not None and not node.in_handshake:
            return node
        sender = self.state.lookup(msg.sender)
        if sender is not None and link.inbound and link.node is None:
            if sender.inbound_link is not None and sender.inbound_link is not link:
                self.free_link(sender.inbound_link)
            sender.inbound_link = link
            link.node = sender
        return sender

    def process(self, link: BusLink, msg: bp.Message) -> None:  # noqa: C901 - Redis's clusterProcessPacket
        state = self.state
        me = state.myself
        rt = self.runtime
        kind = msg.type
        now = now_ms()
        sender = self.sender_of(link, msg)
        if sender is not None:
            sender.data_received = now
        if sender is not None and not sender.in_handshake:
            if msg.current_epoch > state.current_epoch:
                state.current_epoch = msg.current_epoch
                rt.changed()
            if msg.config_epoch > sender.config_epoch:
                sender.config_epoch = msg.config_epoch
                rt.changed(fsync=True)
            sender.repl_offset = msg.offset
            if (self.mf_end and me.is_replica and me.master is sender and msg.mflags & bp.MF_PAUSED
                    and self.mf_master_offset == -1):
                self.mf_master_offset = sender.repl_offset
                self.log("notice", f"Received replication offset for paused master manual failover: "
                         f"{self.mf_master_offset}")
                self.handle_manual_failover()

        if kind in (bp.PING, bp.MEET):
            if (kind == bp.MEET or not me.ip) and not self.config["cluster-announce-ip"]:
                ip = link.local_ip()
                if ip and ip != me.ip:
                    me.ip = ip
                    self.log("notice", f"IP address for this node updated to {ip}")
                    rt.changed()
            if sender is None and kind == bp.MEET:
                node = ClusterNode(random_node_id(), flags=HANDSHAKE, ip=msg.myip or link.peer_ip(), port=msg.port,
                                   cport=msg.cport)
                state.add_node(node)
                rt.changed()
                self.process_gossip(msg, link, None)
            self.send_ping(link, bp.PONG)

        if kind in (bp.PING, bp.PONG, bp.MEET):
            if not link.inbound and link.node is not None:
                node = link.node
                if node.in_handshake:
                    if sender is not None:
                        self.update_address(sender, link, msg)
                        self.delete_node(node)
                        rt.changed()
                        return
                    if not is_node_id(msg.sender) or msg.sender == me.id:
                        self.delete_node(node)
                        rt.changed()
                        return
                    state.rename_node(node, msg.sender)
                    node.flags &= ~HANDSHAKE
                    node.flags |= msg.flags & (MASTER | SLAVE)
                    self.log("verbose", f"Handshake with node {node.id} completed.")
                    rt.changed()
                    sender = None  # like Redis, the rest of this message sees no known sender
                elif node.id != msg.sender:
                    node.flags |= NOADDR
                    node.ip, node.port, node.cport = "", 0, 0
                    self.free_link(link)
                    rt.changed()
                    return
            if sender is not None:
                sender.flags = (sender.flags & ~NOFAILOVER) | (msg.flags & NOFAILOVER)
                if kind == bp.PING and not sender.in_handshake and self.update_address(sender, link, msg):
                    rt.changed()
            if not link.inbound and kind == bp.PONG and link.node is not None:
                node = link.node
                node.pong_received = now
                node.ping_sent = 0
                if node.flags & PFAIL:
                    node.flags &= ~PFAIL
                    rt.changed()
                elif node.flags & FAIL:
                    self.clear_failure_if_needed(node)
            if sender is not None:
                self.update_role(sender, msg)
                sender_master = sender if sender.is_master else sender.master
                dirty = sender_master is not None and bytes(sender_master.slots) != msg.myslots
                if sender.is_master and dirty:
                    self.update_slots_config(sender, msg.config_epoch, msg.myslots)
                if dirty:
                    # only slots the sender claims that another node holds here can be stale
                    held_elsewhere = bp.bitmap_int(msg.myslots) & ~bp.bitmap_int(sender.slots)
                    for slot in bp.int_slots(held_elsewhere):
                        owner = state.owners[slot]
                        if owner is None or state.not_claiming[slot]:
                            continue
                        if owner.config_epoch > msg.config_epoch:
                            self.log("verbose", f"Node {sender.id} has old slots configuration, sending an UPDATE "
                                     f"message about {owner.id}")
                            self.send_update(sender.link, owner)
                            break
                if (me.is_master and sender.is_master and msg.config_epoch == me.config_epoch):
                    self.handle_epoch_collision(sender)
                self.process_gossip(msg, link, sender)
                self.process_extensions(msg, sender)
        elif kind == bp.FAIL:
            if sender is None:
                self.log("notice", f"Ignoring FAIL message from unknown node {msg.sender} about {msg.about}")
                return
            failing = state.lookup(msg.about)
            if failing is not None and not failing.flags & (FAIL | MYSELF):
                self.log("notice", f"FAIL message received from {msg.sender} ({sender.human_nodename}) about {msg.about} "
                         f"({failing.human_nodename})")
                failing.flags = (failing.flags | FAIL) & ~PFAIL
                failing.fail_time = now
                rt.changed()
        elif kind in (bp.PUBLISH, bp.PUBLISHSHARD):
            if sender is None:
                return
            pubsub = getattr(self.server, "pubsub", None)
            if pubsub is not None:
                pubsub.publish(msg.channel, msg.payload, shard=kind == bp.PUBLISHSHARD)
        elif kind == bp.AUTH_REQUEST:
            if sender is not None:
                self.send_failover_auth_if_needed(sender, msg)
        elif kind == bp.AUTH_ACK:
            if sender is None:
                return
            if sender.is_master and sender.num_slots > 0 and msg.current_epoch >= self.auth_epoch:
                self.auth_count += 1
                self.loop_soon(self.handle_replica_failover)
        elif kind == bp.MFSTART:
            if sender is None or sender.master is not me:
                return
            self.reset_manual_failover()
            self.mf_end = now + MF_TIMEOUT
            self.mf_replica = sender
            self.runtime.pause_writes()  # until the failover ends or times out (MF_TIMEOUT)
            self.log("notice", f"Manual failover requested by replica {sender.id} ({sender.human_nodename}).")
            self.send_ping(link, bp.PING)
        elif kind == bp.UPDATE:
            if sender is None:
                return
            node = state.lookup(msg.update_node)
            if node is None or node.config_epoch >= msg.update_epoch:
                return
            if node.is_replica:
                self.set_node_as_master(node)
            node.config_epoch = msg.update_epoch
            rt.changed(fsync=True)
            self.update_slots_config(node, msg.update_epoch, msg.update_slots)
        elif kind == bp.MODULE:
            return  # no module receivers in dumpling
        else:
            self.log("warning", f"Received unknown packet type: {kind}")

    def loop_soon(self, fn: Any) -> None:
        loop = self.server.loop
        if loop is not None:
            loop.call_soon(fn)

    def update_address(self, node: ClusterNode, link: BusLink, msg: bp.Message) -> bool:
        """nodeUpdateAddressIfNeeded: the address a node's own messages show wins."""
        if link is node.link:
            return False
        ip = msg.myip or link.peer_ip()
        if not ip:
            return False
        if (node.ip, node.port, node.cport) == (ip, msg.port, msg.cport):
            return False
        node.ip, node.port, node.cport = ip, msg.port, msg.cport
        self.free_link(node.link)
        node.flags &= ~NOADDR
        self.log("notice", f"Address updated for node {node.id} ({node.human_nodename}), now {node.ip}:{node.port}")
        me = self.state.myself
        if me.is_replica and me.master is node:
            self.runtime.replicate_from(node)
        return True

    def update_role(self, sender: ClusterNode, msg: bp.Message) -> None:
        state = self.state
        rt = self.runtime
        if not msg.slaveof:
            self.set_node_as_master(sender)
            return
        master = state.lookup(msg.slaveof)
        if sender.is_master:
            if master is not None and master.shard_id == sender.shard_id:
                if sender.config_epoch > msg.config_epoch:
                    self.log("notice", f"Ignore stale message from {sender.id} ({sender.human_nodename}) in shard {sender.shard_id}; "
                             f"gossip config epoch: {msg.config_epoch}, current config epoch: {sender.config_epoch}")
                else:
                    moved = 0
                    for slot in state.node_slots(sender):
                        state.bind(slot, master)
                        moved += 1
                    self.set_node_as_master(master)
                    master.config_epoch = msg.config_epoch
                    self.log("notice", f"A failover occurred in shard {sender.shard_id}; node {sender.id} ({sender.human_nodename}) lost "
                             f"{moved} slot(s) to node {master.id} ({master.human_nodename}) with a config epoch of {master.config_epoch}")
            else:
                removed = state.node_slots(sender)
                for slot in removed:
                    state.unbind(slot)
                self.log("notice", f"Node {sender.id} ({sender.human_nodename}) is no longer master of shard {sender.shard_id}; removed "
                         f"all {len(removed)} slot(s) it used to own")
            sender.flags = (sender.flags & ~(MASTER | MIGRATE_TO)) | SLAVE
            rt.changed()
        if master is not None and sender.master is not master:
            state.set_master(sender, master)
            sender.shard_id = master.shard_id
            rt.changed()

    def set_node_as_master(self, node: ClusterNode) -> None:
        """clusterSetNodeAsMaster (for another node)."""
        if node.is_master:
            return
        if node.master is not None and node is not self.state.myself:
            node.flags |= MIGRATE_TO
        self.state.set_master(node, None)
        self.runtime.changed()

    def update_slots_config(self, sender: ClusterNode, epoch: int, bitmap: bytes) -> None:
        """clusterUpdateSlotsConfigWith: rebind slots the sender claims with a newer epoch."""
        state = self.state
        me = state.myself
        rt = self.runtime
        if sender is me:
            self.log("notice", "Discarding UPDATE message about myself.")
            return
        current = me if me.is_master else me.master
        new_master: ClusterNode | None = None
        dirty: list[int] = []
        migrated = 0
        changed = False
        claimed = bp.bitmap_int(bitmap)
        held = bp.bitmap_int(sender.slots)
        sender_slots = claimed.bit_count()
        not_claiming = state.not_claiming
        if not_claiming.find(1) != -1:
            for slot in bp.int_slots(claimed & held):
                not_claiming[slot] = 0  # claimed again by its owner
        for slot in bp.int_slots(claimed & ~held):
            owner = state.owners[slot]
            if slot in state.importing:
                continue
            if owner is None or not_claiming[slot] or owner.config_epoch < epoch:
                if owner is me and rt.db.slot_index.count(slot):
                    dirty.append(slot)
                if owner is not None and owner is current:
                    new_master = sender
                    migrated += 1
                state.unbind(slot)
                state.bind(slot, sender)
                changed = True
        for slot in bp.int_slots(held & ~claimed):
            not_claiming[slot] = 1  # still bound to the sender, which no longer claims it
        if changed:
            rt.changed(fsync=True)
        if (new_master is not None and current is not None and current.num_slots == 0
                and (self.config["cluster-allow-replica-migration"] or sender_slots == migrated)):
            self.log("notice", f"Configuration change detected. Reconfiguring myself as a replica of {sender.id} ({sender.human_nodename})")
            rt.set_my_master(sender)
        elif (me.master is not None and me.master.master is not None and me.master.master is not me):
            grand = me.master.master
            self.log("notice", f"I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {grand.id} ({grand.human_nodename})")
            rt.set_my_master(grand)
        elif dirty:
            for slot in dirty:
                rt.delete_keys_in_slot(slot)

    def handle_epoch_collision(self, sender: ClusterNode) -> None:
        state = self.state
        me = state.myself
        if sender.config_epoch != me.config_epoch or not sender.is_master or not me.is_master:
            return
        if sender.id <= me.id:
            return
        state.current_epoch += 1
        me.config_epoch = state.current_epoch
        self.runtime.save_now(fsync=True)
        self.log("verbose", f"WARNING: configEpoch collision with node {sender.id} ({sender.human_nodename}). configEpoch set to "
                 f"{me.config_epoch}")

    def process_gossip(self, msg: bp.Message, link: BusLink, sender: ClusterNode | None) -> None:
        state = self.state
        rt = self.runtime
        if sender is None:
            sender = link.node if link.node is not None else state.lookup(msg.sender)
        invalid = sum(1 for g in msg.gossip if not is_node_id(g.node_id))
        if invalid:
            who = f"Node {sender.id} ({sender.human_nodename})" if sender is not None else "Unknown node"
            self.log("warning", f"{who} gossiped {invalid} nodes with invalid IDs.")
            return
        now = now_ms()
        for g in msg.gossip:
            node = state.lookup(g.node_id)
            if node is not None and node is not state.myself:
                if sender is not None and sender.is_master:
                    if g.flags & (FAIL | PFAIL):
                        if sender.id not in node.fail_reports:
                            self.log("verbose", f"Node {sender.id} ({sender.human_nodename}) reported node {node.id} ({node.human_nodename}) as not reachable.")
                        node.fail_reports[sender.id] = now
                        self.mark_failing_if_needed(node)
                    elif node.fail_reports.pop(sender.id, None) is not None:
                        self.log("verbose", f"Node {sender.id} ({sender.human_nodename}) reported node {node.id} ({node.human_nodename}) is back online.")
                if (not g.flags & (FAIL | PFAIL) and node.ping_sent == 0 and self.failure_reports(node) == 0):
                    pong = g.pong_received * 1000
                    if pong <= now + 500 and pong > node.pong_received:
                        node.pong_received = pong
                if (node.flags & (FAIL | PFAIL) and not g.flags & NOADDR and not g.flags & (FAIL | PFAIL)
                        and (node.ip != g.ip or node.port != g.port or node.cport != g.cport)):
                    self.free_link(node.link)
                    node.ip, node.port, node.cport = g.ip, g.port, g.cport
                    node.flags &= ~NOADDR
            elif node is None:
                if sender is not None and not g.flags & NOADDR and not state.blacklisted(g.node_id, time.time()):
                    flags = g.flags & ~(MYSELF | MEET | MIGRATE_TO)
                    state.add_node(ClusterNode(g.node_id, flags=flags, ip=g.ip, port=g.port, cport=g.cport))
                    rt.changed()

    def process_extensions(self, msg: bp.Message, sender: ClusterNode) -> None:
        state = self.state
        hostname = human = ""
        shard_id = ""
        for ext in msg.extensions:
            if ext.kind == bp.EXT_HOSTNAME:
                hostname = ext.text()
            elif ext.kind == bp.EXT_HUMAN_NODENAME:
                human = ext.text()
            elif ext.kind == bp.EXT_FORGOTTEN_NODE:
                node = state.lookup(ext.node_id())
                me = state.myself
                if node is not None and node is not me and not (me.is_replica and me.master is node):
                    state.blacklist[node.id] = time.time() + ext.ttl()
                    self.delete_node(node)
                    self.runtime.changed()
            elif ext.kind == bp.EXT_SHARDID:
                shard_id = ext.node_id()
            else:
                self.log("warning", f"Received unknown extension type {ext.kind}")
        if sender.hostname != hostname or sender.human_nodename != human:
            sender.hostname, sender.human_nodename = hostname, human
            self.runtime.changed()
        if not shard_id:
            master = sender.master if sender.is_replica and sender.master is not None else sender
            shard_id = master.shard_id
        if is_node_id(shard_id) and sender.shard_id != shard_id:
            self.runtime.update_shard_id(sender, shard_id)

    # -- failure detection -------------------------------------------------------------

    def failure_reports(self, node: ClusterNode) -> int:
        validity = self.node_timeout() * FAIL_REPORT_VALIDITY_MULT
        now = now_ms()
        for reporter in [r for r, when in node.fail_reports.items() if now - when > validity]:
            del node.fail_reports[reporter]
        return len(node.fail_reports)

    def mark_failing_if_needed(self, node: ClusterNode) -> None:
        state = self.state
        needed = state.size // 2 + 1
        if not node.flags & PFAIL or node.flags & FAIL:
            return
        failures = self.failure_reports(node)
        if state.myself.is_master:
            failures += 1
        if failures < needed:
            return
        self.log("notice", f"Marking node {node.id} ({node.human_nodename}) as failing (quorum reached).")
        node.flags = (node.flags & ~PFAIL) | FAIL
        node.fail_time = now_ms()
        self.send_fail(node.id)
        self.runtime.changed()

    def clear_failure_if_needed(self, node: ClusterNode) -> None:
        now = now_ms()
        if node.is_replica or node.num_slots == 0:
            kind = "replica" if node.is_replica else "master without slots"
            self.log("notice", f"Clear FAIL state for node {node.id} ({node.human_nodename}):{kind} is reachable again.")
            node.flags &= ~FAIL
            self.runtime.changed()
        if node.is_master and node.num_slots > 0 and now - node.fail_time > self.node_timeout() * FAIL_UNDO_TIME_MULT:
            self.log("notice", f"Clear FAIL state for node {node.id} ({node.human_nodename}): is reachable again and nobody is serving "
                     "its slots after some time.")
            node.flags &= ~FAIL
            self.runtime.changed()

    # -- the cron ----------------------------------------------------------------------

    def cron(self) -> None:  # noqa: C901 - Redis's clusterCron
        state = self.state
        me = state.myself
        rt = self.runtime
        self.iteration += 1
        now = now_ms()
        timeout = self.node_timeout()
        handshake_timeout = max(timeout, HANDSHAKE_MIN_MS)
        update = False
        for node in list(state.nodes.values()):
            if node.flags & (MYSELF | NOADDR):
                continue
            self.free_link_over_limit(node.link)
            self.free_link_over_limit(node.inbound_link)
            if node.in_handshake and now - node.ctime > handshake_timeout:
                self.delete_node(node)
                rt.changed()
                continue
            if node.link is None and node.ip and node.cport:
                self.connect(node)
        if self.iteration % 10 == 0:
            candidates = [n for n in state.nodes.values()
                          if n.link is not None and n.ping_sent == 0 and not n.flags & (MYSELF | HANDSHAKE)]
            sample = random.sample(candidates, min(5, len(candidates)))
            if sample:
                oldest = min(sample, key=lambda n: n.pong_received)
                self.send_ping(oldest.link, bp.PING)
        ping_interval = self.config["cluster-ping-interval"] or timeout // 2
        for node in list(state.nodes.values()):
            if node.flags & (MYSELF | NOADDR | HANDSHAKE):
                continue
            now = now_ms()
            ping_delay = now - node.ping_sent
            data_delay = now - node.data_received
            link = node.link
            if (link is not None and now - link.ctime > timeout and node.ping_sent and ping_delay > timeout // 2
                    and data_delay > timeout // 2):
                self.free_link(link)
                link = None
            if link is not None and node.ping_sent == 0 and now - node.pong_received > ping_interval:
                self.send_ping(link, bp.PING)
                continue
            if self.mf_end and me.is_master and self.mf_replica is node and link is not None:
                self.send_ping(link, bp.PING)
                continue
            if node.ping_sent == 0:
                continue
            if min(ping_delay, data_delay) > timeout and not node.flags & (PFAIL | FAIL):
                node.flags |= PFAIL
                update = True
                if me.is_master and state.size == 1:
                    self.mark_failing_if_needed(node)
                else:
                    self.log("debug", f"*** NODE {node.id} possibly failing")
        if me.is_replica and me.master is not None and me.master.ip and not rt.replicating():
            rt.replicate_from(me.master)
        self.manual_failover_check_timeout()
        if me.is_replica:
            self.handle_manual_failover()
            self.handle_replica_failover()
            self.replica_migration_if_needed()
        if update or not state.ok:
            rt.update_state()

    # -- replica migration (replica side) --------------------------------------------

    @staticmethod
    def working_replicas(node: ClusterNode) -> int:
        return sum(1 for r in node.replicas if not r.flags & FAIL)

    def replica_migration_if_needed(self) -> None:
        """clusterCron's orphaned-master count: a replica of one of the masters with the most
        working replicas may move to a master left without any (cluster-allow-replica-migration)."""
        me = self.state.myself
        orphaned = most = mine = 0
        for node in self.state.nodes.values():
            if not node.is_master or node.flags & FAIL:
                continue
            working = self.working_replicas(node)
            if working == 0 and node.num_slots > 0 and node.flags & MIGRATE_TO:
                orphaned += 1
            most = max(most, working)
            if me.master is node:
                mine = working
        if orphaned and most >= 2 and mine == most and self.config["cluster-allow-replica-migration"]:
            self.migrate_to_orphaned_master(most)

    def migrate_to_orphaned_master(self, most: int) -> None:
        """clusterHandleSlaveMigration: the replica with the smallest id among the best-served
        masters' replicas moves once a master has been orphaned for 5 s, if its own master
        keeps more than cluster-migration-barrier working replicas."""
        state = self.state
        me = state.myself
        master = me.master
        if not state.ok or master is None:
            return
        staying = sum(1 for r in master.replicas if not r.flags & (FAIL | PFAIL))
        if staying <= self.config["cluster-migration-barrier"]:
            return
        now = now_ms()
        candidate = me
        target: ClusterNode | None = None
        for node in state.nodes.values():
            working = self.working_replicas(node) if node.is_master else 0
            orphaned = node.is_master and not node.flags & FAIL and node.flags & MIGRATE_TO and working == 0
            if orphaned:
                if target is None and node.num_slots > 0:
                    target = node
                if not node.orphaned_time:
                    node.orphaned_time = now
            else:
                node.orphaned_time = 0
            if working == most:
                for replica in node.replicas:
                    if replica.id < candidate.id:
                        candidate = replica
        if target is not None and candidate is me and now - target.orphaned_time > REPLICA_MIGRATION_DELAY:
            self.log("notice", f"Migrating to orphaned master {target.id}")
            self.runtime.set_my_master(target)

    def free_link_over_limit(self, link: BusLink | None) -> None:
        """cluster-link-sendbuf-limit: a link whose unsent bytes exceed it is dropped (and reconnected)."""
        limit = self.config["cluster-link-sendbuf-limit"]
        if not limit or link is None or link.transport is None:
            return
        used = link.transport.get_write_buffer_size()
        if used > limit:
            who = link.node.id if link.node is not None else ""
            self.log("warning", f"Freeing cluster link({'from' if link.inbound else 'to'} node {who}, used memory: "
                     f"{used}) due to exceeding send buffer memory limit.")
            self.free_link(link)
            self.state.links_buffer_limit_exceeded += 1

    # -- votes (master side) -----------------------------------------------------------

    def send_failover_auth_if_needed(self, node: ClusterNode, request: bp.Message) -> None:
        """clusterSendFailoverAuthIfNeeded: vote for a replica whose master failed, once per epoch."""
        state = self.state
        me = state.myself
        master = node.master
        force_ack = request.mflags & bp.MF_FORCEACK
        if me.is_replica or me.num_slots == 0:
            return
        if request.current_epoch < state.current_epoch:
            self.log("warning", f"Failover auth denied to {node.id} ({node.human_nodename}): reqEpoch ({request.current_epoch}) < "
                     f"curEpoch({state.current_epoch})")
            return
        if state.last_vote_epoch == state.current_epoch:
            self.log("warning", f"Failover auth denied to {node.id} ({node.human_nodename}): already voted for epoch "
                     f"{state.current_epoch}")
            return
        if node.is_master or master is None or (not master.flags & FAIL and not force_ack):
            if node.is_master:
                why = "it is a master node"
            elif master is None:
                why = "I don't know its master"
            else:
                why = "its master is up"
            self.log("warning", f"Failover auth denied to {node.id} ({node.human_nodename}): {why}")
            return
        now = now_ms()
        if now - master.voted_time < self.node_timeout() * 2:
            self.log("warning", f"Failover auth denied to {node.id} ({node.human_nodename}): can't vote about this master before "
                     f"{self.node_timeout() * 2 - (now - master.voted_time)} milliseconds")
            return
        for slot in bp.bitmap_slots(request.myslots):
            owner = state.owners[slot]
            if owner is None or owner.config_epoch <= request.config_epoch:
                continue
            self.log("warning", f"Failover auth denied to {node.id} ({node.human_nodename}): slot {slot} epoch ({owner.config_epoch}) > "
                     f"reqEpoch ({request.config_epoch})")
            return
        state.last_vote_epoch = state.current_epoch
        master.voted_time = now
        self.runtime.changed(fsync=True)
        self.send(node.link, self.header(bp.AUTH_ACK))
        self.log("notice", f"Failover auth granted to {node.id} ({node.human_nodename}) for epoch {state.current_epoch}")

    # -- elections (replica side) ------------------------------------------------------

    def replica_rank(self) -> int:
        me = self.state.myself
        master = me.master
        if master is None:
            return 0
        mine = self.repl_offset()
        return sum(1 for r in master.replicas if r is not me and not r.flags & NOFAILOVER and r.repl_offset > mine)

    def handle_replica_failover(self) -> None:  # noqa: C901 - Redis's clusterHandleSlaveFailover
        state = self.state
        me = state.myself
        master = me.master
        rt = self.runtime
        if not me.is_replica or master is None:
            return
        timeout = self.node_timeout()
        manual = bool(self.mf_end and self.mf_can_start)
        needed = state.size // 2 + 1
        auth_timeout = max(timeout * 2, 2000)
        auth_retry = auth_timeout * 2
        if (not (master.flags & FAIL) and not manual) or (self.config["cluster-replica-no-failover"] and not manual) \
                or master.num_slots == 0:
            return
        now = now_ms()
        data_age = rt.master_link_down_ms()
        if data_age > timeout:
            data_age -= timeout
        factor = self.config["cluster-replica-validity-factor"]
        if factor and not manual:
            limit = self.config["repl-ping-replica-period"] * 1000 + timeout * factor
            if data_age > limit:
                if self.cant_failover_reason != 1:
                    self.cant_failover_reason = 1
                    self.log("notice", "Currently unable to failover: Disconnected from master for longer than "
                             "allowed. Please check the 'cluster-replica-validity-factor' configuration option.")
                return
        auth_age = now - self.auth_time
        if auth_age > auth_retry:
            self.auth_time = now + 500 + random.randrange(500)
            self.auth_count = 0
            self.auth_sent = False
            self.auth_rank = self.replica_rank()
            self.auth_time += self.auth_rank * 1000
            if self.mf_end:
                self.auth_time = now
                self.auth_rank = 0
                self.loop_soon(self.handle_replica_failover)
            self.log("notice", f"Start of election delayed for {self.auth_time - now} milliseconds (rank #"
                     f"{self.auth_rank}, offset {self.repl_offset()}).")
            self.broadcast_pong(local_replicas_only=True)
            return
        if not self.auth_sent and not self.mf_end:
            rank = self.replica_rank()
            if rank > self.auth_rank:
                added = (rank - self.auth_rank) * 1000
                self.auth_time += added
                self.auth_rank = rank
                self.log("notice", f"Replica rank updated to #{rank}, added {added} milliseconds of delay.")
        if now < self.auth_time:
            return
        if auth_age > auth_timeout:
            return
        if not self.auth_sent:
            state.current_epoch += 1
            self.auth_epoch = state.current_epoch
            self.log("notice", f"Starting a failover election for epoch {state.current_epoch}.")
            request = self.header(bp.AUTH_REQUEST)
            if self.mf_end:
                request.mflags |= bp.MF_FORCEACK
            self.broadcast(request)
            self.auth_sent = True
            rt.changed(fsync=True)
            return
        if self.auth_count >= needed:
            self.log("notice", "Failover election won: I'm the new master.")
            if me.config_epoch < self.auth_epoch:
                me.config_epoch = self.auth_epoch
                self.log("notice", f"configEpoch set to {me.config_epoch} after successful failover")
            self.failover_replace_master()
            self.reset_manual_failover()

    def failover_replace_master(self) -> None:
        """clusterFailoverReplaceYourMaster: take my master's slots and tell everyone."""
        state = self.state
        me = state.myself
        old = me.master
        if not me.is_replica or old is None:
            return
        self.runtime.set_my_master(None)
        for slot in state.node_slots(old):
            state.unbind(slot)
            state.bind(slot, me)
        self.runtime.update_state()
        self.runtime.save_now(fsync=True)
        self.broadcast_pong()
        self.reset_manual_failover()

    # -- manual failover ---------------------------------------------------------------

    def reset_manual_failover(self) -> None:
        if self.mf_replica is not None or self.mf_end:
            self.runtime.unpause_writes()
        self.mf_end = 0
        self.mf_can_start = False
        self.mf_replica = None
        self.mf_master_offset = -1

    def manual_failover_check_timeout(self) -> None:
        if self.mf_end and self.mf_end < now_ms():
            self.log("warning", "Manual failover timed out.")
            self.reset_manual_failover()

    def handle_manual_failover(self) -> None:
        if not self.mf_end or self.mf_can_start or self.mf_master_offset == -1:
            return
        if self.mf_master_offset == self.runtime.replica_offset():
            self.mf_can_start = True
            self.log("notice", "All master replication stream processed, manual failover can start.")
            self.loop_soon(self.handle_replica_failover)

    def start_manual_failover(self, force: bool, takeover: bool) -> None:
        """CLUSTER FAILOVER on a replica (checks done by the command)."""
        me = self.state.myself
        master = me.master
        assert master is not None
        self.reset_manual_failover()
        self.mf_end = now_ms() + MF_TIMEOUT
        if takeover:
            self.log("notice", "Taking over the master (user request).")
            self.state.bump_epoch()
            self.runtime.save_now(fsync=True)
            self.failover_replace_master()
        elif force:
            self.log("notice", "Forced failover user request accepted.")
            self.mf_can_start = True
            self.auth_time = 0  # start an election at once
            self.handle_replica_failover()
        else:
            self.log("notice", "Manual failover user request accepted.")
            self.send(master.link, self.header(bp.MFSTART))
