"""Replication commands: REPLICAOF/SLAVEOF, SYNC/PSYNC, REPLCONF, ROLE, WAIT.

The state they act on is ``server.replication`` (``dumpling.replication.manager``); this
module parses arguments and shapes replies.
"""

from __future__ import annotations

from typing import Any

from dumpling.commands.common import parse_timeout_ms, to_int
from dumpling.commands.registry import command
from dumpling.errors import CommandError
from dumpling.protocol import NO_REPLY, OK, Status

SRV = {"group": "server"}


def setup(server: Any) -> None:
    from dumpling.replication.manager import Replication

    server.replication = Replication(server)


def _replicaof(c: Any, argv: list[bytes]) -> Any:
    server = c.server
    replication = server.replication
    if server.cluster is not None:
        raise CommandError("REPLICAOF not allowed in cluster mode.")
    if replication.failover_state != "no-failover":
        raise CommandError("REPLICAOF not allowed while failing over.")
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if replication.link is not None:
            replication.unset_master()
            server.log("notice", f"MASTER MODE enabled (user request from 'id={c.id} addr={c.addr} "
                       f"laddr={c.laddr}')")
        return OK
    if getattr(c, "repl_kind", None) == "replica":
        raise CommandError("Command is not valid when client is a replica.")
    port = to_int(argv[2], "Invalid master port")
    if not 0 <= port <= 65535:
        raise CommandError("Invalid master port")
    host = argv[1].decode("utf-8", "replace")
    link = replication.link
    if link is not None and link.host.lower() == host.lower() and link.port == port:
        server.log("notice", "REPLICAOF would result into synchronization with the master we are already connected "
                   "with. No operation performed.")
        return Status("OK Already connected to specified master")
    replication.set_master(host, port)
    server.log("notice", f"REPLICAOF {host}:{port} enabled (user request from 'id={c.id} addr={c.addr} "
               f"laddr={c.laddr}')")
    return OK


@command("replicaof", 3, "admin noscript stale no_async_loading", **SRV, since="5.0.0",
         summary="Configures a server as replica of another, or promotes it to a master.",
         args="args=(host-port=(host port:integer) | no-one=(NO ONE))", complexity="O(1)")
def replicaof(c: Any, argv: list[bytes]) -> Any:
    return _replicaof(c, argv)


@command("slaveof", 3, "admin noscript stale no_async_loading", **SRV, since="1.0.0",
         summary="Sets a Redis server as a replica of another, or promotes it to being a master.",
         args="args=(host-port=(host port:integer) | no-one=(NO ONE))", complexity="O(1)", doc_flags="deprecated",
         deprecated_since="5.0.0",
         replaced_by="`REPLICAOF`")
def slaveof(c: Any, argv: list[bytes]) -> Any:
    return _replicaof(c, argv)


def _sync(c: Any, argv: list[bytes]) -> Any:
    error = c.server.replication.sync(c, argv)
    if error is not None:
        raise CommandError(error if error.startswith(("NOMASTERLINK", "ERR")) else error)
    return NO_REPLY


@command("sync", 1, "admin noscript no_async_loading no_multi", **SRV, since="1.0.0",
         summary="An internal command used in replication.",
         complexity="")
def sync(c: Any, argv: list[bytes]) -> Any:
    return _sync(c, argv)


@command("psync", -3, "admin noscript no_async_loading no_multi", **SRV, since="2.8.0",
         summary="An internal command used in replication.", args="replicationid offset:integer",
         complexity="")
def psync(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3 and argv[3].lower() == b"failover":
        # Our master hands over (its FAILOVER): with our history, we become the master and
        # it continues as our replica.
        server = c.server
        replication = server.replication
        server.log("notice", f"Failover request received for replid {argv[1].decode('utf-8', 'replace')}.")
        if replication.link is None:
            raise CommandError("PSYNC FAILOVER can't be sent to a master.")
        if argv[1].decode("utf-8", "replace") != replication.replid:
            raise CommandError("PSYNC FAILOVER replid must match my replid.")
        replication.unset_master()
        server.log("notice", f"MASTER MODE enabled (failover request from 'id={c.id} addr={c.addr} "
                   f"laddr={c.laddr}')")
    return _sync(c, argv)


@command("failover", -1, "admin noscript stale", **SRV, since="6.2.0",
         summary="Starts a coordinated failover from a server to one of its replicas.",
         args="[TO target=(host port:integer [FORCE])] [ABORT] [TIMEOUT milliseconds:integer]", complexity="O(1)")
def failover(c: Any, argv: list[bytes]) -> Any:
    """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (Redis's failoverCommand)."""
    server = c.server
    replication = server.replication
    if server.cluster is not None:
        raise CommandError("FAILOVER not allowed in cluster mode.")
    if len(argv) == 2 and argv[1].lower() == b"abort":
        if replication.failover_state == "no-failover":
            raise CommandError("No failover in progress.")
        replication.abort_failover("Failover manually aborted")
        return OK
    timeout_ms = 0
    force = False
    target: tuple[str, int] | None = None
    j = 1
    while j < len(argv):
        word = argv[j].lower()
        if word == b"timeout" and j + 1 < len(argv) and timeout_ms == 0:
            timeout_ms = to_int(argv[j + 1])
            if timeout_ms <= 0:
                raise CommandError("FAILOVER timeout must be greater than 0")
            j += 2
        elif word == b"to" and j + 2 < len(argv) and target is None:
            target = (argv[j + 1].decode("utf-8", "replace"), to_int(argv[j + 2]))
            j += 3
        elif word == b"force" and not force:
            force = True
            j += 1
        else:
            raise CommandError("syntax error")
    if replication.failover_state != "no-failover":
        raise CommandError("FAILOVER already in progress.")
    if replication.link is not None:
        raise CommandError("FAILOVER is not valid when server is a replica.")
    replication.flush_stream()
    if not [r for r in replication.replicas if not r.closed]:
        raise CommandError("FAILOVER requires connected replicas.")
    if force and (not timeout_ms or target is None):
        raise CommandError("FAILOVER with force option requires both a timeout and target HOST and IP.")
    if target is not None:
        replica = replication.find_replica(*target)
        if replica is None:
            raise CommandError("FAILOVER target HOST and PORT is not a replica.")
        if replica.state != "online":
            raise CommandError("FAILOVER target replica is not online.")
        server.log("notice", f"FAILOVER requested to {target[0]}:{target[1]}.")
    else:
        server.log("notice", "FAILOVER requested to any replica.")
    replication.start_failover(target, timeout_ms, force)
    return OK


@command("replconf", -1, "admin noscript loading stale allow_busy", **SRV, since="3.0.0",
         summary="An internal command for configuring the replication stream.",
         doc_flags="syscmd")
def replconf(c: Any, argv: list[bytes]) -> Any:
    if len(argv) % 2 == 0:
        raise CommandError("syntax error")
    replication = c.server.replication
    for j in range(1, len(argv), 2):
        option, value = argv[j].lower(), argv[j + 1]
        if option == b"listening-port":
            c.repl_listening_port = to_int(value)
        elif option == b"ip-address":
            if len(value) >= 256:
                raise CommandError(f"REPLCONF ip-address provided by replica instance is too long: {len(value)} "
                                   "bytes")
            c.repl_ip = value.decode("utf-8", "replace")
        elif option == b"capa":
            capa = getattr(c, "repl_capa", set())
            if value.lower() in (b"eof", b"psync2"):
                capa.add(value.lower().decode())
            c.repl_capa = capa
        elif option == b"ack":
            try:
                offset = int(value)
                fack = int(argv[j + 3]) if len(argv) > j + 3 and argv[j + 2].lower() == b"fack" else -1
            except ValueError:
                return NO_REPLY
            replication.ack(c, offset, fack)
            return NO_REPLY
        elif option == b"getack":
            link = replication.link
            if link is not None and getattr(c, "repl_kind", None) == "master":
                link.send_ack()
            return NO_REPLY
        elif option == b"rdb-only":
            flag = to_int(value)
            if flag not in (0, 1):
                raise CommandError("value is out of range")
            c.repl_rdb_only = bool(flag)
        elif option == b"rdb-filter-only":
            words = value.split()
            for word in words:
                if word.lower() != b"functions":
                    raise CommandError(f"Unsupported rdb-filter-only option: {word.decode('utf-8', 'replace')}")
            raise CommandError("REPLCONF rdb-filter-only is not supported by dumpling")
        else:
            raise CommandError(f"Unrecognized REPLCONF option: {argv[j].decode('utf-8', 'replace')}")
    return OK


@command("role", 1, "noscript loading stale fast", **SRV, since="2.8.12", acl="admin dangerous",
         summary="Returns the replication role.")
def role(c: Any, argv: list[bytes]) -> Any:
    return c.server.replication.role_reply()


@command("wait", 3, "blocking", group="generic", since="3.0.0",
         summary="Blocks until the asynchronous replication of all preceding write commands sent by the connection "
                 "is completed.",
         args="numreplicas:integer timeout:integer", acl="connection",
         tips="request_policy:all_shards response_policy:agg_min")
def wait(c: Any, argv: list[bytes]) -> Any:
    replication = c.server.replication
    if replication.link is not None:
        raise CommandError("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a "
                           "replica is configured to be writable (which is not the default) writes to replicas are "
                           "just local and are not propagated.")
    numreplicas = to_int(argv[1])
    timeout_ms = parse_timeout_ms(argv[2], c.keyspace.now)  # getTimeoutFromObjectOrReply's checks
    return replication.wait(c, numreplicas, timeout_ms)


@command("waitaof", 4, "blocking", group="generic", since="7.2.0",
         summary="Blocks until all of the preceding write commands sent by the connection are written to the "
                 "append-only file of the master and/or replicas.",
         args="numlocal:integer numreplicas:integer timeout:integer", acl="connection",
         tips="request_policy:all_shards response_policy:agg_min")
def waitaof(c: Any, argv: list[bytes]) -> Any:
    numlocal = to_int(argv[1])
    numreplicas = to_int(argv[2])
    timeout_ms = parse_timeout_ms(argv[3], c.keyspace.now)
    server = c.server
    if server.replication.link is not None:
        raise CommandError("WAITAOF cannot be used with replica instances. Please also note that writes to replicas "
                           "are just local and are not propagated.")
    if numlocal and not server.aof.enabled:
        raise CommandError("WAITAOF cannot be used when numlocal is set but appendonly is disabled.")
    return server.replication.wait_aof(c, numlocal, numreplicas, timeout_ms)
