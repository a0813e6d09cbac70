"""Cluster mode: the CLUSTER command family, ASKING / READONLY / READWRITE, and the
routing check dispatch runs before every keyed command.

``setup`` creates ``server.cluster`` (a ``ClusterRuntime``) when ``cluster-enabled
yes``: it loads (or creates) ``cluster-config-file`` under ``dir`` and keeps it locked,
rewrites it after every change (once per event-loop pass, like Redis's beforeSleep),
indexes DB 0's keys per slot, and answers ``check(client, cmd, argv)`` with Redis's
``getNodeByQuery`` rules (``dumpling.cluster.routing``).

The cluster bus (``dumpling.cluster.bus``, ``runtime.bus``) joins nodes: ``CLUSTER MEET``
adds a node in ``handshake`` state and the bus completes the handshake, gossips the
other nodes, propagates slot ownership by config epoch, detects failures and runs
replica elections.  Replicas replicate through ``server.replication`` (the same
PSYNC link REPLICAOF uses).

Must not: block the event loop, or touch keys itself (slots never move keys; MIGRATE
does that), except the keys of a slot lost to a newer configuration (the bus asks).
"""

from __future__ import annotations

import ipaddress
import os
import time
from typing import TYPE_CHECKING, Any

from dumpling.cluster.bus import MAX_REJOIN_DELAY, MIN_REJOIN_DELAY, ClusterBus
from dumpling.cluster.nodes import (
    FAIL,
    HANDSHAKE,
    MEET,
    NOFAILOVER,
    PFAIL,
    ClusterNode,
    ClusterState,
    now_ms,
    random_node_id,
)
from dumpling.cluster.nodesconf import (
    ConfigLockedError,
    NodesConfError,
    NodesConfFile,
    UnknownFlagError,
    describe_node,
    fresh_state,
    parse_nodes_conf,
    render_nodes,
)
from dumpling.cluster.routing import DOWN_STATE, DOWN_UNBOUND, route
from dumpling.cluster.slotindex import SlotIndex
from dumpling.cluster.slots import CLUSTER_SLOTS, key_slot
from dumpling.commands.common import help_header
from dumpling.commands.registry import command, container
from dumpling.errors import NOT_INTEGER, SYNTAX, CommandError
from dumpling.protocol import OK, ErrorReply, Map, Status, Verbatim, parse_strict_int

if TYPE_CHECKING:
    from dumpling.dispatch import Server

DISABLED = "This instance has cluster support disabled"
INVALID_SLOT = "Invalid or out of range slot"
HANDSHAKE_MIN_MS = 1000
BUS_PORT_OFFSET = 10000

CL = {"group": "cluster"}
ADMIN = "admin stale no_async_loading"


# ----------------------------------------------------------------------------- runtime


class ClusterRuntime:
    """``server.cluster``: the state, its file, and the routing check."""

    def __init__(self, server: Server, state: ClusterState, conf: NodesConfFile) -> None:
        self.server = server
        self.state = state
        self.conf = conf
        self.db = server.keyspace.dbs[0]
        self._save_scheduled = False
        self._fsync = False
        self.last_asking_client: Any = None  # the client whose ASKING flag the last check consumed
        self.bus: ClusterBus | None = None  # set by setup; None in pure unit tests
        self.refresh_myself()
        state.update_state(self.config["cluster-require-full-coverage"])

    @property
    def config(self) -> Any:
        return self.server.config

    # -- routing -------------------------------------------------------------------

    def check(self, client: Any, cmd: Any, argv: list[bytes]) -> str | None:
        """Dispatch's cluster check: None to run the command here, else the error line."""
        asking = client.asking
        self.last_asking_client = None
        name = cmd.name
        if asking and (name == "exec" or (client.multi is None and name not in ("asking", "multi"))):
            client.asking = False  # one-shot: consumed by this command (it survives inside MULTI)
            self.last_asking_client = client
        if name == "exec":
            if client.multi is None:
                return None
            commands: Any = client.multi
        elif cmd.key_specs or cmd.movable:
            commands = ((cmd, argv),)
        else:
            return None
        return route(
            self.state,
            commands,
            key_exists=self.key_exists,
            endpoint=self.endpoint,
            asking=asking,
            readonly_client=client.readonly_cluster,
            is_migrate=name == "migrate",
            allow_reads_when_down=self.config["cluster-allow-reads-when-down"],
            allow_pubsubshard_when_down=self.config["cluster-allow-pubsubshard-when-down"],
        )

    def key_exists(self, key: bytes) -> bool:
        """Present and not logically expired, without touching anything (LOOKUP_NOTOUCH|NOEXPIRE)."""
        db = self.db
        if key not in db.data:
            return False
        when = db.expires.get(key)
        return when is None or now_ms() <= when

    def endpoint(self, node: ClusterNode) -> str:
        """``host:port`` of a redirection, per ``cluster-preferred-endpoint-type``."""
        return f"{self.preferred_endpoint(node) or ''}:{node.port}"

    def preferred_endpoint(self, node: ClusterNode) -> str | None:
        kind = self.config["cluster-preferred-endpoint-type"]
        if kind == "ip":
            return node.ip
        if kind == "hostname":
            return node.hostname or "?"
        return None

    # -- changes -------------------------------------------------------------------

    def changed(self, *, fsync: bool = False) -> None:
        """The state changed: recompute cluster_state now, save the file once this loop pass."""
        if self.bus is not None and self.server.loop is not None:
            self.update_state()
        else:
            self.state.update_state(self.config["cluster-require-full-coverage"])
        self._fsync = self._fsync or fsync
        loop = self.server.loop
        if loop is None:
            self.save_or_die()
        elif not self._save_scheduled:
            self._save_scheduled = True
            loop.call_soon(self.save_or_die)

    def save_or_die(self) -> None:
        """clusterSaveConfigOrDie: a background save that fails stops the server."""
        self._save_scheduled = False
        fsync, self._fsync = self._fsync, False
        try:
            self.conf.save(self.state, fsync)
        except OSError as e:
            self.server.log("warning", f"Fatal: can't update cluster config file: {e.strerror or e}")
            os._exit(1)

    def refresh_myself(self) -> None:
        """Ports, IP and hostname of ``myself`` from the config (announced values win)."""
        cfg = self.config
        me = self.state.myself
        port = cfg["port"]
        me.port = cfg["cluster-announce-port"] or port
        me.cport = cfg["cluster-announce-bus-port"] or cfg["cluster-port"] or port + BUS_PORT_OFFSET
        if cfg["cluster-announce-ip"]:
            me.ip = cfg["cluster-announce-ip"]
        me.hostname = cfg["cluster-announce-hostname"]
        me.human_nodename = cfg["cluster-announce-human-nodename"]
        if cfg["cluster-replica-no-failover"]:
            me.flags |= NOFAILOVER
        else:
            me.flags &= ~NOFAILOVER

    def config_changed(self, name: str) -> None:
        if name.startswith("cluster-announce-") or name == "cluster-replica-no-failover":
            self.refresh_myself()
            self.changed()
        elif name == "cluster-require-full-coverage":
            self.state.update_state(self.config["cluster-require-full-coverage"])

    def keys_flushed(self) -> None:
        """DB 0 was emptied some other way than ``Database.clear``: rebuild the slot index."""
        self.db.slot_index = SlotIndex(self.db.data)

    def cron(self) -> None:
        """Redirect clients blocked on keys whose slot is no longer served here (the bus has
        its own 100 ms cron for everything else)."""
        for client in list(self.server.clients.values()):
            blocked = client.blocked
            if blocked is not None and blocked.keys:
                error = self.blocked_redirect(client, blocked)
                if error is not None:
                    self.server.count_error(error.split(" ", 1)[0])
                    self.server.unblock(client, ErrorReply(error))

    def blocked_redirect(self, client: Any, blocked: Any) -> str | None:
        """clusterRedirectBlockedClientIfNeeded: CLUSTERDOWN, or MOVED once the slot left."""
        state = self.state
        if not state.ok:
            return DOWN_STATE
        slot = key_slot(blocked.keys[0])  # all keys of a blocking command share one slot
        owner = state.owners[slot]
        me = state.myself
        cmd = blocked.cmd
        if (client.readonly_cluster and cmd is not None and not cmd.is_write and me.is_replica
                and me.master is owner):
            owner = me
        if owner is not me and slot not in state.importing:
            return DOWN_UNBOUND if owner is None else f"MOVED {slot} {self.endpoint(owner)}"
        return None

    # -- the bus's hooks ---------------------------------------------------------------

    def start_handshake(self, ip: str, port: int, cport: int) -> None:
        """clusterStartHandshake: a node in ``handshake,meet`` the bus cron will connect to."""
        state = self.state
        for node in state.nodes.values():
            if node.in_handshake and (node.ip, node.port, node.cport) == (ip, port, cport):
                return  # already in progress
        state.add_node(ClusterNode(random_node_id(), flags=HANDSHAKE | MEET, ip=ip, port=port, cport=cport))

    def update_state(self) -> None:
        """clusterUpdateState with Redis's start-up and rejoin delays (the bus is running)."""
        timeout = self.config["cluster-node-timeout"]
        rejoin = min(max(timeout, MIN_REJOIN_DELAY), MAX_REJOIN_DELAY)
        state = self.state
        if state.update_state(self.config["cluster-require-full-coverage"], now_ms(), rejoin):
            self.server.log("notice" if state.ok else "warning", f"Cluster state changed: {'ok' if state.ok else 'fail'}")

    async def start_bus(self) -> bool:
        """A startup task: listen on the bus port; a replica in nodes.conf replicates again."""
        assert self.bus is not None
        if not await self.bus.start():
            return False
        me = self.state.myself
        if me.is_replica and me.master is not None:
            self.replicate_from(me.master)
        self.update_state()
        return True

    def close_fd_later(self, fd: int) -> None:
        """nodes.conf's replaced lock descriptor is closed by a worker thread (freeing the
        old inode takes about a millisecond that the event loop need not wait for)."""
        loop = self.server.loop
        if loop is None or loop.is_closed():
            os.close(fd)
        else:
            loop.run_in_executor(None, os.close, fd)

    def save_now(self, fsync: bool = False) -> None:
        self._fsync = self._fsync or fsync
        self.save_or_die()

    def update_shard_id(self, node: ClusterNode, shard_id: str) -> None:
        """updateShardId: a node and its replicas (or its master's shard) move to ``shard_id``."""
        state = self.state
        node.shard_id = shard_id
        for replica in node.replicas:
            replica.shard_id = shard_id
        me = state.myself
        if me.is_replica and me.master is node and me.shard_id != shard_id:
            me.shard_id = shard_id
        self.changed()

    def delete_keys_in_slot(self, slot: int) -> None:
        """delKeysInSlot: the keys of a slot lost to a newer configuration go (as DELs)."""
        db = self.db
        for key in db.slot_index.keys(slot, db.slot_index.count(slot)):
            if db.delete(key):
                self.server.keyspace.changed(db, key, b"del", "g")

    # -- replicas ------------------------------------------------------------------------

    def set_my_master(self, master: ClusterNode | None) -> None:
        """clusterSetMaster / becoming a master: the node table and the replication link."""
        state = self.state
        me = state.myself
        replication = self.server.replication
        if master is None:
            if me.is_replica:
                state.set_master(me, None)
                replication.unset_master()
            self.changed(fsync=True)
            return
        if me.is_master:
            for slot in state.node_slots(me):
                state.unbind(slot)
            state.migrating.clear()
            state.importing.clear()
        state.set_master(me, master)
        me.shard_id = master.shard_id
        self.replicate_from(master)
        if self.bus is not None:
            self.bus.reset_manual_failover()
        self.changed(fsync=True)

    def replicate_from(self, master: ClusterNode) -> None:
        if master.ip and master.port:
            self.server.replication.set_master(master.ip, master.port)

    def replicating(self) -> bool:
        return self.server.replication.link is not None

    def master_link_down_ms(self) -> int:
        """How long the replica has had no data from its master (ms)."""
        link = self.server.replication.link
        if link is None:
            return 0
        if link.state == "connected":
            return int((time.time() - link.last_io) * 1000)
        since = link.down_since or link.last_io
        return int((time.time() - since) * 1000)

    def replica_offset(self) -> int:
        return self.server.replication.offset

    def pause_writes(self) -> None:
        """A manual failover holds writes under its own purpose (Redis's PAUSE_DURING_FAILOVER):
        CLIENT UNPAUSE does not end it; the failover's end or timeout does."""
        self.server.client_pause.hold("failover")

    def unpause_writes(self) -> None:
        self.server.client_pause.release("failover")


# ----------------------------------------------------------------------------- setup


def setup(server: Server) -> None:
    """Create ``server.cluster`` when ``cluster-enabled yes`` (else leave it None)."""
    cfg = server.config
    if not cfg["cluster-enabled"]:
        return
    if cfg["port"] > 65535 - BUS_PORT_OFFSET and not cfg["cluster-port"]:
        server.log("warning", "Redis port number too high. Cluster communication port is 10,000 port numbers higher "
                   "than your Redis port. Your Redis port number must be 55535 or less.")
        raise SystemExit(1)
    path = cfg["cluster-config-file"]
    if not os.path.isabs(path) and cfg["dir"]:
        path = os.path.join(cfg["dir"], path)
    conf = NodesConfFile(path)
    try:
        conf.lock()
    except ConfigLockedError:
        server.log("warning", f"Sorry, the cluster configuration file {path} is already used by a different Redis "
                   "Cluster node. Please make sure that different nodes use different cluster configuration files.")
        raise SystemExit(1) from None
    except OSError as e:
        server.log("warning", f"Can't open {path} in order to acquire a lock: {e.strerror}")
        raise SystemExit(1) from None
    text = conf.read()
    created = not text.strip()
    try:
        state = fresh_state() if created else parse_nodes_conf(text)
    except UnknownFlagError:
        server.log("warning", "Unknown flag in redis cluster config file")
        raise SystemExit(1) from None
    except NodesConfError as e:
        server.log("warning", f'Unrecoverable error: corrupted cluster config file "{e.line}".')
        raise SystemExit(1) from None
    runtime = ClusterRuntime(server, state, conf)
    if created:
        server.log("notice", f"No cluster configuration found, I'm {state.myself.id}")
        conf.save(state, fsync=True)
    else:
        server.log("notice", f"Node configuration loaded, I'm {state.myself.id}")
    db = server.keyspace.dbs[0]
    db.slot_index = SlotIndex(db.data)
    cfg.listeners.append(runtime.config_changed)
    server.cron_hooks.append(runtime.cron)
    runtime.bus = ClusterBus(runtime)
    conf.close_fd = runtime.close_fd_later
    server.startup_tasks.append(runtime.start_bus)
    server.cluster = runtime


def _runtime(c: Any) -> ClusterRuntime:
    runtime = c.server.cluster
    if runtime is None:
        raise CommandError(DISABLED)
    return runtime


def _bad_arity(argv: list[bytes]) -> CommandError:
    sub = argv[1].decode("utf-8", "replace")
    return CommandError(f"unknown subcommand or wrong number of arguments for '{sub}'. Try CLUSTER HELP.")


def _slot_arg(arg: bytes) -> int:
    """getSlotOrReply: an integer in 0..16383."""
    slot = parse_strict_int(arg)
    if slot is None or not 0 <= slot < CLUSTER_SLOTS:
        raise CommandError(INVALID_SLOT)
    return slot


def _int_arg(arg: bytes) -> int:
    value = parse_strict_int(arg)
    if value is None:
        raise CommandError(NOT_INTEGER)
    return value


def _node_arg(runtime: ClusterRuntime, arg: bytes) -> ClusterNode | None:
    return runtime.state.lookup(arg.decode("utf-8", "surrogateescape"))


def _text(arg: bytes) -> str:
    return arg.decode("utf-8", "surrogateescape")


# ----------------------------------------------------------------------------- ASKING / READONLY / READWRITE


@command("asking", 1, "fast", **CL, since="3.0.0", acl="connection",
         summary="Signals that a cluster client is following an -ASK redirect.")
def asking(c: Any, argv: list[bytes]) -> Any:
    _runtime(c)
    if not c.server.in_exec:  # set inside EXEC it would be cleared right after (Redis's resetClient)
        c.asking = True
    return OK


@command("readonly", 1, "loading stale fast", **CL, since="3.0.0", acl="connection",
         summary="Enables read-only queries for a connection to a Redis Cluster replica node.")
def readonly(c: Any, argv: list[bytes]) -> Any:
    _runtime(c)
    c.readonly_cluster = True
    return OK


@command("readwrite", 1, "loading stale fast", **CL, since="3.0.0", acl="connection",
         # Redis 7.4.1's summary, typo included (COMMAND DOCS is compared byte for byte).
         summary="Enables read-write queries for a connection to a Reids Cluster replica node.")
def readwrite(c: Any, argv: list[bytes]) -> Any:
    _runtime(c)
    c.readonly_cluster = False
    return OK


# ----------------------------------------------------------------------------- CLUSTER

container("cluster", group="cluster", since="3.0.0", summary="A container for Redis Cluster commands.")

HELP_LINES = (
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "HELP",
    "    Print this help.",
)


@command("cluster|help", 2, "loading stale", **CL, since="5.0.0",
         summary="Returns helpful text about the different subcommands.")
def cluster_help(c: Any, argv: list[bytes]) -> Any:
    _runtime(c)
    return [Status(help_header(argv)), *(Status(line) for line in HELP_LINES[1:])]


@command("cluster|info", 2, "stale", **CL, since="3.0.0", tips="nondeterministic_output",
         summary="Returns information about the state of a node.")
def cluster_info(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    state = rt.state
    ok_slots = pfail = fail = 0
    for node in state.nodes.values():
        if not node.num_slots:
            continue
        if node.flags & FAIL:
            fail += node.num_slots
        elif node.flags & PFAIL:
            pfail += node.num_slots
        else:
            ok_slots += node.num_slots
    lines = [
        f"cluster_state:{'ok' if state.ok else 'fail'}",
        f"cluster_slots_assigned:{state.assigned}",
        f"cluster_slots_ok:{ok_slots}",
        f"cluster_slots_pfail:{pfail}",
        f"cluster_slots_fail:{fail}",
        f"cluster_known_nodes:{len(state.nodes)}",
        f"cluster_size:{state.size}",
        f"cluster_current_epoch:{state.current_epoch}",
        f"cluster_my_epoch:{state.my_epoch()}",
    ]
    for counts, direction in ((state.messages_sent, "sent"), (state.messages_received, "received")):
        for kind in sorted(counts):
            if counts[kind] and kind < len(MESSAGE_TYPES):
                lines.append(f"cluster_stats_messages_{MESSAGE_TYPES[kind]}_{direction}:{counts[kind]}")
        lines.append(f"cluster_stats_messages_{direction}:{sum(counts.values())}")
    lines.append(f"total_cluster_links_buffer_limit_exceeded:{state.links_buffer_limit_exceeded}")
    return Verbatim("".join(line + "\r\n" for line in lines))


MESSAGE_TYPES = ("ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module",
                 "publishshard")


@command("cluster|myid", 2, "stale", **CL, since="3.0.0", summary="Returns the ID of a node.")
def cluster_myid(c: Any, argv: list[bytes]) -> Any:
    return _runtime(c).state.myself.id.encode()


@command("cluster|myshardid", 2, "stale", **CL, since="7.2.0", tips="nondeterministic_output",
         summary="Returns the shard ID of a node.")
def cluster_myshardid(c: Any, argv: list[bytes]) -> Any:
    return _runtime(c).state.myself.shard_id.encode()


@command("cluster|nodes", 2, "stale", **CL, since="3.0.0", tips="nondeterministic_output",
         complexity="O(N) where N is the total number of Cluster nodes",
         summary="Returns the cluster configuration for a node.")
def cluster_nodes(c: Any, argv: list[bytes]) -> Any:
    return Verbatim(render_nodes(_runtime(c).state))


def _node_entry(rt: ClusterRuntime, node: ClusterNode) -> list[Any]:
    """One node of a CLUSTER SLOTS range: endpoint, port, id, extra networking metadata."""
    kind = rt.config["cluster-preferred-endpoint-type"]
    endpoint = rt.preferred_endpoint(node)
    meta: list[tuple[bytes, bytes]] = []
    if kind != "ip":
        meta.append((b"ip", node.ip.encode()))
    if kind != "hostname" and node.hostname:
        meta.append((b"hostname", node.hostname.encode()))
    return [None if endpoint is None else endpoint.encode(), node.port, node.id.encode(), Map(meta)]


@command("cluster|slots", 2, "stale", **CL, since="3.0.0", tips="nondeterministic_output",
         complexity="O(N) where N is the total number of Cluster nodes",
         deprecated_since="7.0.0", replaced_by="`CLUSTER SHARDS`", doc_flags="deprecated",
         history=(("4.0.0", "Added node IDs."), ("7.0.0", "Added additional networking metadata field.")),
         summary="Returns the mapping of cluster slots to nodes.")
def cluster_slots(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    reply = []
    for first, last, owner in rt.state.slot_runs():
        entry: list[Any] = [first, last, _node_entry(rt, owner)]
        for replica in owner.replicas:
            if not replica.flags & FAIL and replica.repl_offset:  # available replicas only
                entry.append(_node_entry(rt, replica))
        reply.append(entry)
    return reply


def _shard_node(rt: ClusterRuntime, node: ClusterNode) -> Map:
    fields: list[tuple[bytes, Any]] = [(b"id", node.id.encode())]
    if node.port:
        fields.append((b"port", node.port))
    fields.append((b"ip", node.ip.encode()))
    fields.append((b"endpoint", (rt.preferred_endpoint(node) or "").encode()))
    if node.hostname:
        fields.append((b"hostname", node.hostname.encode()))
    fields.append((b"role", b"replica" if node.is_replica else b"master"))
    fields.append((b"replication-offset", node.repl_offset))
    if node.flags & FAIL:
        health = b"fail"
    elif node.is_replica and node.repl_offset == 0:
        health = b"loading"
    else:
        health = b"online"
    fields.append((b"health", health))
    return Map(fields)


@command("cluster|shards", 2, "stale", **CL, since="7.0.0", tips="nondeterministic_output",
         complexity="O(N) where N is the total number of cluster nodes",
         summary="Returns the mapping of cluster slots to shards.")
def cluster_shards(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    state = rt.state
    shards: dict[str, list[ClusterNode]] = {}
    for node in state.nodes.values():
        if node.in_handshake:
            continue
        shards.setdefault(node.shard_id, []).append(node)
    reply = []
    for members in shards.values():
        primary = next((n for n in members if n.is_master), None)
        members.sort(key=lambda n: 0 if n is primary else 1)
        slots: list[int] = []
        if primary is not None:
            for first, last in state.node_ranges(primary):
                slots += [first, last]
        reply.append(Map([(b"slots", slots), (b"nodes", [_shard_node(rt, n) for n in members])]))
    return reply


@command("cluster|keyslot", 3, "stale", **CL, since="3.0.0", args="key:string",
         complexity="O(N) where N is the number of bytes in the key",
         summary="Returns the hash slot for a key.")
def cluster_keyslot(c: Any, argv: list[bytes]) -> Any:
    _runtime(c)
    return key_slot(argv[2])


@command("cluster|countkeysinslot", 3, "stale", **CL, since="3.0.0", args="slot:integer",
         summary="Returns the number of keys in a hash slot.")
def cluster_countkeysinslot(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    slot = _int_arg(argv[2])
    if not 0 <= slot < CLUSTER_SLOTS:
        raise CommandError("Invalid slot")
    return rt.db.slot_index.count(slot)


@command("cluster|getkeysinslot", 4, "stale", **CL, since="3.0.0", args="slot:integer count:integer",
         tips="nondeterministic_output", complexity="O(N) where N is the number of requested keys",
         summary="Returns the key names in a hash slot.")
def cluster_getkeysinslot(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    count = _int_arg(argv[3])
    slot = _int_arg(argv[2])
    if not 0 <= slot < CLUSTER_SLOTS or count < 0:
        raise CommandError("Invalid slot or number of keys")
    return rt.db.slot_index.keys(slot, count)


def _check_assignments(rt: ClusterRuntime, marked: bytearray, delete: bool, first: int, last: int) -> None:
    """checkSlotAssignmentsOrReply for one range."""
    owners = rt.state.owners
    for slot in range(first, last + 1):
        if delete and owners[slot] is None:
            raise CommandError(f"Slot {slot} is already unassigned")
        if not delete and owners[slot] is not None:
            raise CommandError(f"Slot {slot} is already busy")
        if marked[slot]:
            raise CommandError(f"Slot {slot} specified multiple times")
        marked[slot] = 1


def _update_slots(rt: ClusterRuntime, marked: bytearray, delete: bool) -> None:
    state = rt.state
    for slot in range(CLUSTER_SLOTS):
        if marked[slot]:
            state.importing.pop(slot, None)
            if delete:
                state.unbind(slot)
            else:
                state.bind(slot, state.myself)
    rt.changed()


def _slots_command(c: Any, argv: list[bytes], delete: bool) -> Any:
    rt = _runtime(c)
    slots = [_slot_arg(a) for a in argv[2:]]
    marked = bytearray(CLUSTER_SLOTS)
    for slot in slots:
        _check_assignments(rt, marked, delete, slot, slot)
    _update_slots(rt, marked, delete)
    return OK


def _ranges_command(c: Any, argv: list[bytes], delete: bool) -> Any:
    rt = _runtime(c)
    if len(argv) % 2:
        raise CommandError(f"wrong number of arguments for 'cluster|{argv[1].lower().decode()}' command")
    marked = bytearray(CLUSTER_SLOTS)
    for i in range(2, len(argv), 2):
        first, last = _slot_arg(argv[i]), _slot_arg(argv[i + 1])
        if first > last:
            raise CommandError(f"start slot number {first} is greater than end slot number {last}")
        _check_assignments(rt, marked, delete, first, last)
    _update_slots(rt, marked, delete)
    return OK


@command("cluster|addslots", -3, ADMIN, **CL, since="3.0.0", args="slot:integer...",
         complexity="O(N) where N is the total number of hash slot arguments",
         summary="Assigns new hash slots to a node.")
def cluster_addslots(c: Any, argv: list[bytes]) -> Any:
    return _slots_command(c, argv, False)


@command("cluster|delslots", -3, ADMIN, **CL, since="3.0.0", args="slot:integer...",
         complexity="O(N) where N is the total number of hash slot arguments",
         summary="Sets hash slots as unbound for a node.")
def cluster_delslots(c: Any, argv: list[bytes]) -> Any:
    return _slots_command(c, argv, True)


@command("cluster|addslotsrange", -4, ADMIN, **CL, since="7.0.0",
         args="range=(start-slot:integer end-slot:integer)...",
         complexity="O(N) where N is the total number of the slots between the start slot and end slot arguments.",
         summary="Assigns new hash slot ranges to a node.")
def cluster_addslotsrange(c: Any, argv: list[bytes]) -> Any:
    return _ranges_command(c, argv, False)


@command("cluster|delslotsrange", -4, ADMIN, **CL, since="7.0.0",
         args="range=(start-slot:integer end-slot:integer)...",
         complexity="O(N) where N is the total number of the slots between the start slot and end slot arguments.",
         summary="Sets hash slot ranges as unbound for a node.")
def cluster_delslotsrange(c: Any, argv: list[bytes]) -> Any:
    return _ranges_command(c, argv, True)


@command("cluster|flushslots", 2, ADMIN, **CL, since="3.0.0", summary="Deletes all slots information from a node.")
def cluster_flushslots(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    if len(rt.db):
        raise CommandError("DB must be empty to perform CLUSTER FLUSHSLOTS.")
    state = rt.state
    for slot in state.node_slots(state.myself):
        state.unbind(slot)
    rt.changed()
    return OK


@command("cluster|setslot", -4, ADMIN, **CL, since="3.0.0",
         args=("slot:integer subcommand=(IMPORTING importing/node-id | MIGRATING migrating/node-id | NODE "
               "node/node-id | STABLE)"),
         summary="Binds a hash slot to a node.")
def cluster_setslot(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    state = rt.state
    me = state.myself
    if me.is_replica:
        raise CommandError("Please use SETSLOT only with masters.")
    slot = _slot_arg(argv[2])
    action = argv[3].lower()
    if action == b"migrating" and len(argv) == 5:
        if state.owners[slot] is not me:
            raise CommandError(f"I'm not the owner of hash slot {slot}")
        node = _node_arg(rt, argv[4])
        if node is None:
            raise CommandError(f"I don't know about node {_text(argv[4])}")
        if node.is_replica:
            raise CommandError("Target node is not a master")
        state.migrating[slot] = node
    elif action == b"importing" and len(argv) == 5:
        if state.owners[slot] is me:
            raise CommandError(f"I'm already the owner of hash slot {slot}")
        node = _node_arg(rt, argv[4])
        if node is None:
            raise CommandError(f"I don't know about node {_text(argv[4])}")
        if node.is_replica:
            raise CommandError("Target node is not a master")
        state.importing[slot] = node
    elif action == b"stable" and len(argv) == 4:
        state.importing.pop(slot, None)
        state.migrating.pop(slot, None)
    elif action == b"node" and len(argv) == 5:
        node = _node_arg(rt, argv[4])
        if node is None:
            raise CommandError(f"Unknown node {_text(argv[4])}")
        if node.is_replica:
            raise CommandError("Target node is not a master")
        keys = rt.db.slot_index.count(slot)
        if state.owners[slot] is me and node is not me and keys:
            raise CommandError(f"Can't assign hashslot {slot} to a different node while I still hold keys for this "
                               "hash slot.")
        if not keys:
            state.migrating.pop(slot, None)
        was_mine = state.owners[slot] is me
        state.unbind(slot)
        state.bind(slot, node)
        if was_mine and node is not me and me.num_slots == 0 and rt.config["cluster-allow-replica-migration"]:
            # a master left without slots follows the node that took the last one (Redis 7.4)
            c.server.log("notice", f"Configuration change detected. Reconfiguring myself as a replica of {node.id} "
                         f"({node.human_nodename})")
            rt.set_my_master(node)
        if node is me and slot in state.importing:
            if state.bump_epoch():
                c.server.log("notice", f"configEpoch updated after importing slot {slot}")
                rt.changed(fsync=True)
            del state.importing[slot]
            if rt.bus is not None:
                rt.bus.broadcast_pong()  # let the others know as soon as possible
    else:
        raise CommandError("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    rt.changed()
    return OK


@command("cluster|meet", -4, ADMIN, **CL, since="3.0.0", args="ip port:integer [cluster-bus-port:integer@4.0.0]",
         history=(("4.0.0", "Added the optional `cluster_bus_port` argument."),),
         summary="Forces a node to handshake with another node.")
def cluster_meet(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    if len(argv) > 5:
        raise _bad_arity(argv)
    port = parse_strict_int(argv[3])
    if port is None:
        raise CommandError(f"Invalid base port specified: {_text(argv[3])}")
    if len(argv) == 5:
        cport = parse_strict_int(argv[4])
        if cport is None:
            raise CommandError(f"Invalid bus port specified: {_text(argv[4])}")
    else:
        cport = port + BUS_PORT_OFFSET
    try:
        ip = str(ipaddress.ip_address(_text(argv[2])))
    except ValueError:
        ip = ""
    if not ip or not (0 < port <= 65535 and 0 < cport <= 65535):
        raise CommandError(f"Invalid node address specified: {_text(argv[2])}:{_text(argv[3])}")
    rt.start_handshake(ip, port, cport)
    rt.changed()
    return OK


@command("cluster|forget", 3, ADMIN, **CL, since="3.0.0", args="node-id:string",
         summary="Removes a node from the nodes table.")
def cluster_forget(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    state = rt.state
    node = _node_arg(rt, argv[2])
    now = time.time()
    if node is None:
        if state.blacklisted(_text(argv[2]), now):
            return OK  # already forgotten
        raise CommandError(f"Unknown node {_text(argv[2])}")
    if node is state.myself:
        raise CommandError("I tried hard but I can't forget myself...")
    if state.myself.is_replica and state.myself.master is node:
        raise CommandError("Can't forget my master!")
    if rt.bus is not None:
        rt.bus.free_link(node.link)
        rt.bus.free_link(node.inbound_link)
    state.forget(node, now)
    rt.changed()
    return OK


@command("cluster|reset", -2, "admin noscript stale", **CL, since="3.0.0", args="[reset-type=(HARD | SOFT)]",
         complexity="O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
         summary="Resets a node.")
def cluster_reset(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    if len(argv) > 3:
        raise _bad_arity(argv)
    hard = False
    if len(argv) == 3:
        word = argv[2].lower()
        if word not in (b"hard", b"soft"):
            raise CommandError(SYNTAX)
        hard = word == b"hard"
    if rt.state.myself.is_master and len(rt.db):
        raise CommandError("CLUSTER RESET can't be called with master nodes containing keys")
    me = rt.state.myself
    if me.is_replica:
        rt.set_my_master(None)  # stops replicating; Redis then empties the dataset
        for db in c.server.keyspace.dbs:
            db.clear()
    if rt.bus is not None:
        rt.bus.reset_manual_failover()
        for node in list(rt.state.nodes.values()):
            if node is not me:
                rt.bus.free_link(node.link)
                rt.bus.free_link(node.inbound_link)
    rt.state.reset(hard)
    rt.changed(fsync=True)
    return OK


@command("cluster|saveconfig", 2, ADMIN, **CL, since="3.0.0", summary="Forces a node to save the cluster configuration "
         "to disk.")
def cluster_saveconfig(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    try:
        rt.conf.save(rt.state, fsync=True, force=True)
    except OSError as e:
        raise CommandError(f"error saving the cluster node config: {e.strerror or e}") from None
    return OK


@command("cluster|set-config-epoch", 3, ADMIN, **CL, since="3.0.0", args="config-epoch:integer",
         summary="Sets the configuration epoch for a new node.")
def cluster_set_config_epoch(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    state = rt.state
    epoch = _int_arg(argv[2])
    if epoch < 0:
        raise CommandError(f"Invalid config epoch specified: {epoch}")
    if len(state.nodes) > 1:
        raise CommandError("The user can assign a config epoch only when the node does not know any other node.")
    if state.myself.config_epoch != 0:
        raise CommandError("Node config epoch is already non-zero")
    state.myself.config_epoch = epoch
    c.server.log("warning", f"configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH")
    state.current_epoch = max(state.current_epoch, epoch)
    rt.changed()
    return OK


@command("cluster|bumpepoch", 2, ADMIN, **CL, since="3.0.0", tips="nondeterministic_output",
         summary="Advances the cluster config epoch.")
def cluster_bumpepoch(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    bumped = rt.state.bump_epoch()
    if bumped:
        rt.changed(fsync=True)
    return Status(f"{'BUMPED' if bumped else 'STILL'} {rt.state.myself.config_epoch}")


@command("cluster|count-failure-reports", 3, "admin stale", **CL, since="3.0.0", args="node-id:string",
         tips="nondeterministic_output", complexity="O(N) where N is the number of failure reports",
         summary="Returns the number of active failure reports active for a node.")
def cluster_count_failure_reports(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    node = _node_arg(rt, argv[2])
    if node is None:
        raise CommandError(f"Unknown node {_text(argv[2])}")
    validity = rt.config["cluster-node-timeout"] * 2
    now = now_ms()
    for reporter in [r for r, when in node.fail_reports.items() if now - when > validity]:
        del node.fail_reports[reporter]
    return len(node.fail_reports)


@command("cluster|links", 2, "stale", **CL, since="7.0.0", tips="nondeterministic_output",
         complexity="O(N) where N is the total number of Cluster nodes",
         summary="Returns a list of all TCP links to and from peer nodes.")
def cluster_links(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    reply = []
    for node in rt.state.nodes.values():
        for direction, link in ((b"to", node.link), (b"from", node.inbound_link)):
            if link is None or link.transport is None:
                continue
            buffered = link.transport.get_write_buffer_size()
            reply.append(Map([(b"direction", direction), (b"node", node.id.encode()), (b"create-time", link.ctime),
                              (b"events", b"rw" if buffered else b"r"), (b"send-buffer-allocated", buffered),
                              (b"send-buffer-used", buffered)]))
    return reply


def _replicas(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    node = _node_arg(rt, argv[2])
    if node is None:
        raise CommandError(f"Unknown node {_text(argv[2])}")
    if node.is_replica:
        raise CommandError("The specified node is not a master")
    return [describe_node(rt.state, r).encode() for r in node.replicas]


@command("cluster|replicas", 3, "admin stale", **CL, since="5.0.0", args="node-id:string",
         tips="nondeterministic_output", summary="Lists the replica nodes of a master node.",
         complexity="O(N) where N is the number of replicas.")
def cluster_replicas(c: Any, argv: list[bytes]) -> Any:
    return _replicas(c, argv)


@command("cluster|slaves", 3, "admin stale", **CL, since="3.0.0", args="node-id:string",
         tips="nondeterministic_output", deprecated_since="5.0.0", replaced_by="`CLUSTER REPLICAS`",
         doc_flags="deprecated", summary="Lists the replica nodes of a master node.",
         complexity="O(N) where N is the number of replicas.")
def cluster_slaves(c: Any, argv: list[bytes]) -> Any:
    return _replicas(c, argv)


@command("cluster|replicate", 3, ADMIN, **CL, since="3.0.0", args="node-id:string",
         summary="Configure a node as replica of a master node.")
def cluster_replicate(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    state = rt.state
    node = _node_arg(rt, argv[2])
    if node is None:
        raise CommandError(f"Unknown node {_text(argv[2])}")
    me = state.myself
    if node is me:
        raise CommandError("Can't replicate myself")
    if node.is_replica:
        raise CommandError("I can only replicate a master, not a replica.")
    if me.is_master and (me.num_slots or len(rt.db)):
        raise CommandError("To set a master the node must be empty and without assigned slots.")
    rt.set_my_master(node)
    return OK


@command("cluster|failover", -2, ADMIN, **CL, since="3.0.0", args="[options=(FORCE | TAKEOVER)]",
         summary="Forces a replica to perform a manual failover of its master.")
def cluster_failover(c: Any, argv: list[bytes]) -> Any:
    rt = _runtime(c)
    if len(argv) > 3:
        raise _bad_arity(argv)
    force = takeover = False
    if len(argv) == 3:
        word = argv[2].lower()
        if word == b"force":
            force = True
        elif word == b"takeover":
            force = takeover = True
        else:
            raise CommandError(SYNTAX)
    me = rt.state.myself
    if me.is_master:
        raise CommandError("You should send CLUSTER FAILOVER to a replica")
    master = me.master
    if master is None:
        raise CommandError("I'm a replica but my master is unknown to me")
    if not force and (master.failed or master.link is None):
        raise CommandError("Master is down or failed, please use CLUSTER FAILOVER FORCE")
    assert rt.bus is not None
    rt.bus.start_manual_failover(force, takeover)
    return OK
