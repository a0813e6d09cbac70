"""Replication state of one server (``server.replication``): role, IDs, offsets, backlog.

* Role: a master, or a replica of ``master_host:master_port`` while ``link`` (an
  ``upstream.MasterLink``) exists.  ``set_master`` / ``unset_master`` are REPLICAOF.
* IDs (PSYNC2): ``replid`` names the stream this server's offset counts; after a
  promotion the old one stays valid as ``replid2`` up to ``second_offset`` - 1, so the
  former master's other replicas continue partially.
* The stream: as a master, the propagation records (``dumpling.persistence.propagation``)
  encoded with SELECT and MULTI/EXEC (``_sink``); as a replica, the bytes applied from the
  master, verbatim (``proxy``), so offsets agree along a chain.  Both go through ``_feed``
  into the backlog and to the attached replicas (``downstream.ReplicaConn``).
* While this server is a replica or has a backlog, ``gate_needed`` keeps
  ``server.command_gate`` installed (the C fast path steps aside: every write must be seen)
  and ``refusal`` answers -READONLY, -MASTERDOWN and -NOREPLICAS.
* A replica does not expire keys itself (``keyspace.expiry_by_master``): keys past their
  TTL read as missing until the master's DEL arrives, as in Redis.

Must not: parse wire bytes (``wire``) or touch sockets other than the replicas' transports.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from dumpling.persistence.propagation import Record, encode_records
from dumpling.persistence.snapshots import exited_children
from dumpling.protocol import ErrorReply, encode_request
from dumpling.replication.backlog import Backlog
from dumpling.replication.downstream import FullSync, ReplicaConn
from dumpling.replication.upstream import MasterLink

AOF_OFF_FOR_WAITAOF = "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."

if TYPE_CHECKING:
    from dumpling.dispatch import Server

NO_REPLID = "0" * 40
READONLY = "READONLY You can't write against a read only replica."
MASTERDOWN = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."


class Replication:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.replid2 = NO_REPLID
        self.second_offset = -1
        self.offset = 0  # master_repl_offset
        self.backlog: Backlog | None = None
        self.replicas: list[ReplicaConn] = []
        self.link: MasterLink | None = None
        self.selected = -1  # the database the stream has SELECTed (-1: SELECT before the next record)
        self.full_sync: FullSync | None = None
        self.no_replicas_since = time.time()
        self.to_reap: list[int] = []
        self.stat_sync_full = 0
        self.stat_sync_partial_ok = 0
        self.stat_sync_partial_err = 0
        self.stat_repl_input = 0
        # WAIT/WAITAOF: (client, Blocked, offset, check() -> (reply now, satisfied))
        self.waiters: list[tuple[Any, Any, int, Any]] = []
        self.getack_scheduled = False
        self.good_replicas = 0
        # FAILOVER (coordinated failover): no-failover, waiting-for-sync, failover-in-progress
        self.failover_state = "no-failover"
        self.failover_target: tuple[str, int] | None = None
        self.failover_end_ms = 0
        self.failover_force = False
        self._last_second = 0.0
        self._cron_loops = 0
        self._sink_attached = False
        self._unflushed = bytearray()  # stream bytes of this event-loop pass, not yet given to replicas
        self._flush_scheduled = False
        server.cron_hooks.append(self.cron)
        server.before_shutdown.append(self._before_shutdown)
        server.config.listeners.append(self._config_changed)
        server.startup_tasks.append(self._startup)
        server.snapshots.extra_aux = self.rdb_aux  # type: ignore[attr-defined]
        if not server.config["replicaof"]:  # a master feeds the keys its RDB has expired to its backlog
            server.snapshots.expired_on_load = []  # type: ignore[attr-defined]
        server.keyspace.replica_read_only = bool(server.config["replica-read-only"])

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT's share (resetServerStats): full/partial sync counts, replication bytes."""
        self.stat_sync_full = self.stat_sync_partial_ok = self.stat_sync_partial_err = 0
        self.stat_repl_input = 0
        self.server.stat_net_repl_output = 0  # type: ignore[attr-defined]

    # -- IDs ----------------------------------------------------------------------------------------

    @property
    def replid(self) -> str:
        return self.server.replid

    @replid.setter
    def replid(self, value: str) -> None:
        self.server.replid = value

    def change_replid(self) -> None:
        self.replid = secrets.token_hex(20)

    def clear_replid2(self) -> None:
        self.replid2 = NO_REPLID
        self.second_offset = -1

    def shift_replid(self) -> None:
        """shiftReplicationId: the current history stays continuable under replid2."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.change_replid()
        self.server.log("notice", f"Setting secondary replication ID to {self.replid2}, valid up to offset: "
                        f"{self.second_offset}. New replication ID is {self.replid}")

    def rdb_aux(self) -> list[tuple[bytes, bytes]]:
        """AUX fields Redis writes in an RDB while the server is in a replication chain (a
        master with a backlog, a replica with master state): what a restart PSYNCs with."""
        stream_db = max(self.selected, 0)
        link = self.link
        if link is None and self.backlog is None:
            return []  # (rdbPopulateSaveInfo gives no replication info)
        if link is not None:  # a replica: the database its master's stream has selected
            client = link.client if link.client is not None else link.cached[2] if link.cached else None
            if client is None and link.cached is None:
                return []
            stream_db = client.db.index if client is not None else 0
        return [(b"repl-stream-db", b"%d" % stream_db), (b"repl-id", self.replid.encode()),
                (b"repl-offset", b"%d" % self.offset)]

    # -- role ---------------------------------------------------------------------------------------

    @property
    def is_replica(self) -> bool:
        return self.link is not None

    def set_master(self, host: str, port: int, from_config: bool = False) -> None:
        """replicationSetMaster (``from_config``: ``replicaof`` in the configuration, at startup)."""
        server = self.server
        was_master = self.link is None and not from_config
        cached: tuple[str, int, Any] | None = None
        stream_db = "0"
        if self.link is not None:
            old = self.link
            # the cached master keeps its client: the stream continues in the database it SELECTed
            if old.state == "connected":
                cached = (self.replid, old.offset, old.client)
            elif old.cached is not None:
                cached = old.cached
            old.stop()
        self._unblock_all("UNBLOCKED force unblock from blocking operation, instance state changed (master -> "
                          "replica?)")
        if was_master:
            cached = (self.replid, self.offset, None)  # replicationCacheMasterUsingMyself
        elif from_config:
            saved = server.snapshots.loaded_repl_info  # type: ignore[attr-defined]
            if len(saved.get("repl-id", "")) == 40 and saved.get("repl-offset", "").isdigit():
                self.replid = saved["repl-id"]  # the RDB of a replica: continue where it stopped
                self.offset = int(saved["repl-offset"])
                cached = (self.replid, self.offset, None)
                stream_db = saved.get("repl-stream-db", "0")
        self.link = MasterLink(self, host, port, cached)
        server.config.values["replicaof"] = f"{host} {port}"  # CONFIG GET / REWRITE show the master
        server.apply_oom_score()  # (the replica class of oom-score-adj-values)
        if from_config and cached is not None and stream_db.isdigit() and int(stream_db) < len(server.keyspace.dbs):
            master_client = self.link.new_client()  # its stream continues in the database it had selected
            master_client.db = server.keyspace.dbs[int(stream_db)]
            self.link.cached = (cached[0], cached[1], master_client)
        self._detach_sink()  # a replica proxies its master's stream; it produces none
        server.keyspace.expiry_by_master = True
        server.snapshots.refresh_gate()  # type: ignore[attr-defined]
        self.link.start()

    def unset_master(self) -> None:
        """replicationUnsetMaster (REPLICAOF NO ONE)."""
        server = self.server
        link, self.link = self.link, None
        if link is None:
            return
        link.stop()
        server.config.values["replicaof"] = ""
        server.apply_oom_score()
        self.shift_replid()
        self.disconnect_replicas("the replication ID changed")
        self.selected = -1
        self.no_replicas_since = time.time()
        server.keyspace.expiry_by_master = False
        server.keyspace.replica_keys_with_expire.clear()
        if self.backlog is not None:
            self._attach_sink()
        server.snapshots.refresh_gate()  # type: ignore[attr-defined]

    def _unblock_all(self, message: str) -> None:
        server = self.server
        pause = server.client_pause
        for client in list(server.clients.values()):
            blocked = client.blocked
            # a command held by a pause starts again from the top when released (Redis skips
            # BLOCKED_POSTPONE clients): after a manual failover it gets its redirection
            if blocked is not None and not getattr(client, "repl_kind", None) and not pause.holds(client):
                server.count_error(message.split(" ", 1)[0])
                server.unblock(client, ErrorReply(message))

    def link_up(self) -> None:
        self.server.snapshots.refresh_gate()  # type: ignore[attr-defined]

    def after_full_sync(self, replid: str, offset: int) -> None:
        """A full sync from the master loaded: its history is ours."""
        self.flush_stream()  # (the old stream's last bytes, before its backlog goes)
        self.replid = replid
        self.clear_replid2()
        self.offset = offset
        self.backlog = Backlog(self.server.config["repl-backlog-size"], offset)
        self.selected = -1

    def after_partial_sync(self, new_replid: str, asked_replid: str, offset: int) -> None:
        self.offset = offset
        if new_replid and new_replid != asked_replid:
            self.replid2 = asked_replid
            self.second_offset = offset + 1
            self.replid = new_replid
            self.server.log("notice", f"Master replication ID changed to {new_replid}")
            self.disconnect_replicas("the master's replication ID changed")
        else:
            self.replid = asked_replid
        if self.backlog is None:
            self.backlog = Backlog(self.server.config["repl-backlog-size"], offset)

    # -- the stream ----------------------------------------------------------------------------------

    def _attach_sink(self) -> None:
        if not self._sink_attached:
            self.server.propagator.attach(self._sink, replication=True, one=self._sink_one)  # type: ignore[attr-defined]
            self._sink_attached = True

    def _detach_sink(self) -> None:
        if self._sink_attached:
            self.server.propagator.detach(self._sink)  # type: ignore[attr-defined]
            self._sink_attached = False

    def _sink(self, records: list[Record], client: Any) -> None:
        """Propagation records of one call (master role)."""
        if self.link is not None or self.backlog is None:
            return
        data, self.selected = self.server.propagator.encode(records, self.selected)  # type: ignore[attr-defined]
        self._unflushed += data  # (_feed, inlined: this runs for every write)
        self.offset += len(data)
        if not self._flush_scheduled:
            self._schedule_flush()
        if client is not None:
            client.repl_woff = self.offset  # WAIT waits for this much

    def _sink_one(self, db_index: int, argv: list[bytes], wire: bytes, client: Any) -> None:
        """One command propagated as sent, already encoded (the common write)."""
        if self.link is not None or self.backlog is None:
            return
        if db_index != self.selected:
            self._sink([(db_index, argv)], client)
            return
        self._unflushed += wire
        self.offset += len(wire)
        if not self._flush_scheduled:
            self._schedule_flush()
        if client is not None:
            client.repl_woff = self.offset

    def proxy(self, data: bytes | bytearray) -> None:
        """Replica role: the master's stream as applied (replicationFeedStreamFromMasterStream)."""
        self.stat_repl_input += len(data)
        if self.backlog is None:
            self.backlog = Backlog(self.server.config["repl-backlog-size"], self.offset)
        self._feed(data)

    def _feed(self, data: bytes | bytearray) -> None:
        """The stream of this event-loop pass is one buffer: the backlog and every replica
        take it as one slice when the pass ends (``flush_stream``, as Redis writes to its
        replicas in beforeSleep); the offset counts it at once."""
        assert self.backlog is not None
        self._unflushed += data
        self.offset += len(data)
        if not self._flush_scheduled:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        loop = self.server.loop
        if loop is None:
            self.flush_stream()
        else:
            self._flush_scheduled = True
            loop.call_soon(self.flush_stream)

    def flush_stream(self) -> None:
        """Hand the stream bytes of this pass to the backlog and the replicas (called before
        anyone reads the backlog and before any replica changes state, so each gets exactly
        the bytes after its own starting offset)."""
        self._flush_scheduled = False
        if not self._unflushed:
            return
        data, self._unflushed = bytes(self._unflushed), bytearray()
        for replica in self.replicas:
            if replica.closed or replica.rdb_only:
                continue
            if replica.state == "online" and not replica.stream_on_ack:
                replica.write(data)
            elif replica.state != "wait_bgsave_start":
                replica.pending += data  # after the RDB it is waiting for
            else:
                continue
            self._check_output_limit(replica)
        if self.backlog is not None:
            self.backlog.append(data, self._replicas_need())

    def _replicas_need(self) -> int:
        """The most stream bytes a connected replica has not received yet: the backlog keeps
        them even beyond repl-backlog-size (Redis 7's shared replication buffer)."""
        return max((r.unsent() for r in self.replicas if not r.closed and not r.rdb_only
                    and r.state != "wait_bgsave_start"), default=0)

    def _check_output_limit(self, replica: ReplicaConn) -> None:
        """client-output-buffer-limit replica: a replica this far behind is dropped."""
        hard, soft, seconds = self.server.output_buffer_limits()["replica"]
        if not (hard or soft):
            return
        if hard:  # a hard limit below repl-backlog-size counts as that size (a partial resync must not trip it)
            hard = max(hard, self.server.config["repl-backlog-size"])
        used = replica.unsent()
        client = replica.client
        over = bool(hard and used >= hard)
        if soft and used >= soft:
            now = int(time.time())
            if not client.obuf_soft_limit_since:
                client.obuf_soft_limit_since = now
            elif now - client.obuf_soft_limit_since > seconds:
                over = True
        else:
            client.obuf_soft_limit_since = 0
        if over:
            replica.pending = bytearray()
            self.server.drop_for_output_limit(client)

    def feed_command(self, *argv: bytes) -> None:
        """A command of the master's own (PING, REPLCONF GETACK) into the stream, no SELECT."""
        if self.backlog is not None and self.link is None:
            self._feed(encode_request(argv))

    # -- gates -----------------------------------------------------------------------------------------

    def gate_needed(self) -> bool:
        """A replica (READONLY, MASTERDOWN) or min-replicas-to-write (NOREPLICAS).  A master
        feeding a backlog needs no gate: its propagation hooks already keep every write on
        the paths that report it."""
        return self.link is not None or bool(self.server.config["min-replicas-to-write"])

    def refusal(self, client: Any, cmd: Any, argv: list[bytes] | None = None) -> str | None:
        cfg = self.server.config
        link = self.link
        scripting = self.server.scripting  # a script counts by its flags (evalGetCommandFlags)
        writes = cmd.is_write or (argv is not None and scripting.declares_writes(cmd, argv))
        if not writes and cmd.name == "exec" and client.multi:
            writes = any(q.is_write or scripting.declares_writes(q, a) for q, a in client.multi)
        if link is None:
            return NOREPLICAS if writes and not self.enough_good_replicas() else None
        if writes and cfg["replica-read-only"] and getattr(client, "repl_kind", None) != "master":
            return READONLY
        if link.state != "connected" and not cfg["replica-serve-stale-data"]:
            stale_ok = "stale" in cmd.flags
            if cmd.name == "exec" and client.multi:
                stale_ok = all("stale" in q.flags for q, _ in client.multi)
            if not stale_ok:
                return MASTERDOWN
        return None

    def enough_good_replicas(self) -> bool:
        """checkGoodReplicasStatus: min-replicas-to-write met (always, on a replica)."""
        cfg = self.server.config
        return (self.link is not None or not cfg["min-replicas-max-lag"] or not cfg["min-replicas-to-write"]
                or self.good_replicas >= cfg["min-replicas-to-write"])

    # -- replicas (master side) -----------------------------------------------------------------------

    def replica_of(self, client: Any) -> ReplicaConn | None:
        for replica in self.replicas:
            if replica.client is client:
                return replica
        return None

    def sync(self, client: Any, argv: list[bytes]) -> str | None:
        """SYNC / PSYNC from ``client``; None when handled (replies written), else an error text."""
        server = self.server
        if self.replica_of(client) is not None:
            return None  # already a replica: ignored, as Redis does
        if self.failover_state != "no-failover":
            return "NOMASTERLINK Can't SYNC while failing over"
        self.flush_stream()
        if self.link is not None and self.link.state != "connected":
            return "NOMASTERLINK Can't SYNC while not connected with my master"
        capa = getattr(client, "repl_capa", set())
        ip = getattr(client, "repl_ip", "") or client.addr.rsplit(":", 1)[0]
        replica = ReplicaConn(client, getattr(client, "repl_listening_port", 0), ip, "eof" in capa,
                              "psync2" in capa, argv[0].lower() == b"sync", getattr(client, "repl_rdb_only", False))
        server.log("notice", f"Replica {replica.name} asks for synchronization")
        if not replica.pre_psync:
            try:
                psync_offset = int(argv[2])
            except ValueError:
                server.log("warning", f"Replica {replica.name} asks for synchronization but with a wrong offset")
                return "ERR value is not an integer or out of range"
            if self._try_partial(replica, argv[1].decode("utf-8", "replace"), psync_offset):
                self.stat_sync_partial_ok += 1
                return None
            if argv[1] != b"?":
                self.stat_sync_partial_err += 1
        self.stat_sync_full += 1
        client.repl_kind = "replica"
        self.replicas.append(replica)
        if self.backlog is None:
            self.change_replid()
            self.clear_replid2()
            self.backlog = Backlog(server.config["repl-backlog-size"], self.offset)
            server.log("notice", f"Replication backlog created, my new replication IDs are '{self.replid}' and "
                       f"'{self.replid2}'")
        if self.link is None:
            self._attach_sink()
        server.snapshots.refresh_gate()  # type: ignore[attr-defined]
        self._maybe_start_full_sync()
        return None

    def _try_partial(self, replica: ReplicaConn, replid: str, offset: int) -> bool:
        """masterTryPartialResynchronization."""
        server = self.server
        if replid != self.replid and (replid != self.replid2 or offset > self.second_offset):
            if replid != "?":
                if replid not in (self.replid, self.replid2):
                    server.log("notice", f"Partial resynchronization not accepted: Replication ID mismatch (Replica "
                               f"asked for '{replid}', my replication IDs are '{self.replid}' and '{self.replid2}')")
                else:
                    server.log("notice", f"Partial resynchronization not accepted: Requested offset for second ID "
                               f"was {offset}, but I can reply up to {self.second_offset}")
            else:
                server.log("notice", f"Full resync requested by replica {replica.name}")
            return False
        if self.backlog is None or not self.backlog.can_continue_from(offset):
            server.log("notice", f"Unable to partial resync with replica {replica.name} for lack of backlog (Replica "
                       f"request was: {offset}).")
            if offset > self.offset:
                server.log("warning", f"Warning: replica {replica.name} tried to PSYNC with an offset that is "
                           "greater than the master replication offset.")
            return False
        client = replica.client
        client.repl_kind = "replica"
        replica.state = "online"
        replica.ack_time = int(time.time())
        self.replicas.append(replica)
        head = b"+CONTINUE %s\r\n" % self.replid.encode() if replica.capa_psync2 else b"+CONTINUE\r\n"
        data = self.backlog.since(offset)
        client.write_raw(head + data)
        server.log("notice", f"Partial resynchronization request from {replica.name} accepted. Sending {len(data)} "
                   f"bytes of backlog starting from offset {offset}.")
        if self.link is None:
            self._attach_sink()
        server.snapshots.refresh_gate()  # type: ignore[attr-defined]
        self._refresh_good_replicas()
        return True

    def _maybe_start_full_sync(self) -> None:
        if self.full_sync is not None:
            return
        waiting = [r for r in self.replicas if r.state == "wait_bgsave_start" and not r.closed]
        if not waiting:
            return
        server = self.server
        cfg = server.config
        snapshots = server.snapshots  # type: ignore[attr-defined]
        if snapshots.child_pid != -1 or server.aof.child_pid != -1:  # type: ignore[attr-defined]
            return  # one child at a time: the cron tries again
        diskless = bool(cfg["repl-diskless-sync"]) and all(r.capa_eof for r in waiting)
        if diskless:
            delay = cfg["repl-diskless-sync-delay"]
            most = cfg["repl-diskless-sync-max-replicas"]
            oldest = min(r.since for r in waiting)
            if delay and time.time() - oldest < delay and not (most and len(waiting) >= most):
                return
        sync = FullSync(self, waiting, diskless)
        self.full_sync = sync
        if not sync.start():
            self.full_sync = None
            for replica in waiting:
                replica.client.close()

    def full_sync_finished(self, sync: FullSync) -> None:
        if self.full_sync is sync:
            self.full_sync = None
        self._refresh_good_replicas()
        self._maybe_start_full_sync()

    def reap_later(self, pid: int) -> None:
        self.to_reap.append(pid)

    def ack(self, client: Any, offset: int, aof_offset: int = -1) -> None:
        """REPLCONF ACK <offset> [FACK <aof offset>] from a replica."""
        replica = self.replica_of(client)
        if replica is None:
            return
        self.flush_stream()
        if offset > replica.ack_offset:
            replica.ack_offset = offset
        if aof_offset > replica.aof_offset:
            replica.aof_offset = aof_offset
        replica.ack_time = int(time.time())
        if replica.stream_on_ack and replica.state == "online":
            replica.start_stream()
        if self.failover_state == "waiting-for-sync":
            self.failover_check()
        self._refresh_good_replicas()
        if self.waiters:
            self._wake_waiters()

    def disconnect_replicas(self, why: str) -> None:
        self.flush_stream()
        for replica in list(self.replicas):
            if not replica.closed:
                self.server.log("notice", f"Disconnecting replica {replica.name}: {why}")
                replica.client.close()
        self._purge_replicas()

    def _purge_replicas(self) -> None:
        gone = [r for r in self.replicas if r.closed]
        if not gone:
            return
        for replica in gone:
            self.server.log("notice", f"Connection with replica {replica.name} lost.")
        self.replicas = [r for r in self.replicas if not r.closed]
        if not self.replicas:
            self.no_replicas_since = time.time()
        self._refresh_good_replicas()
        sync = self.full_sync
        snapshots = self.server.snapshots  # type: ignore[attr-defined]
        if (sync is not None and not sync.diskless and not sync.done and not snapshots.save_params
                and all(r.closed for r in sync.targets) and snapshots.child_pid != -1):
            snapshots.kill_child()  # the BGSAVE only those replicas waited for is not useful any more

    def kill_transfer_child(self) -> None:
        """FLUSHALL kills the RDB child, a diskless transfer's too: its replicas sync again."""
        sync = self.full_sync
        if sync is not None and sync.diskless and sync.child_pid != -1:
            sync.abort()

    def _refresh_good_replicas(self) -> None:
        max_lag = self.server.config["min-replicas-max-lag"]
        now = int(time.time())
        self.good_replicas = sum(1 for r in self.replicas
                                 if r.state == "online" and not r.closed and now - r.ack_time <= max_lag)

    # -- WAIT ----------------------------------------------------------------------------------------

    def acked(self, offset: int, aof: bool = False) -> int:
        """Replicas online that acknowledged ``offset`` (``aof``: as fsynced to their AOF)."""
        return sum(1 for r in self.replicas if r.state == "online" and not r.closed
                   and (r.aof_offset if aof else r.ack_offset) >= offset)

    def wait(self, client: Any, numreplicas: int, timeout_ms: int) -> Any:
        from dumpling.dispatch import Blocked

        offset = getattr(client, "repl_woff", 0)
        acked = self.acked(offset)
        if acked >= numreplicas or self.server.in_exec:
            return acked
        blocked = Blocked([], timeout_ms / 1000, lambda: None, acked)
        self.waiters.append((client, blocked, offset, lambda: self._wait_reply(offset, numreplicas)))
        self._schedule_getack()
        return blocked

    def _wait_reply(self, offset: int, numreplicas: int) -> tuple[Any, bool]:
        acked = self.acked(offset)
        return acked, acked >= numreplicas

    def wait_aof(self, client: Any, numlocal: int, numreplicas: int, timeout_ms: int) -> Any:
        """WAITAOF: [local fsynced, replicas that fsynced] for the client's last write."""
        from dumpling.dispatch import Blocked

        offset = getattr(client, "repl_woff", 0)
        aof = self.server.aof  # type: ignore[attr-defined]

        def reply() -> tuple[Any, bool]:
            if numlocal and not aof.enabled:  # (AOF turned off while it waited)
                return ErrorReply(AOF_OFF_FOR_WAITAOF), True
            local = 1 if aof.fsynced_reploff() >= offset else 0
            replicas = self.acked(offset, aof=True)
            return [local, replicas], local >= numlocal and replicas >= numreplicas

        now, done = reply()
        if done or self.server.in_exec:
            return now
        blocked = Blocked([], timeout_ms / 1000, lambda: None, now)
        self.waiters.append((client, blocked, offset, reply))
        if numreplicas:
            self._schedule_getack()
        return blocked

    def _schedule_getack(self) -> None:
        loop = self.server.loop
        if self.getack_scheduled or loop is None:
            return
        self.getack_scheduled = True

        def send() -> None:
            self.getack_scheduled = False
            if self.replicas:
                self.feed_command(b"REPLCONF", b"GETACK", b"*")

        loop.call_soon(send)

    def aof_changed(self) -> None:
        """The AOF was fsynced or turned off: WAITAOF waiters may be answered."""
        if self.waiters:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        still = []
        for client, blocked, offset, check in self.waiters:
            if client.blocked is not blocked or client.closed:
                continue
            reply, done = check()
            blocked.timeout_reply = reply  # what a timeout answers now
            if done:
                if type(reply) is ErrorReply:
                    self.server.count_error("ERR")  # type: ignore[attr-defined]
                self.server.unblock(client, reply)
            else:
                still.append((client, blocked, offset, check))
        self.waiters = still

    # -- cron ------------------------------------------------------------------------------------------

    def cron(self) -> None:
        """replicationCron: reaping, full syncs to start, and once a second ACKs, PINGs,
        keepalives, timeouts, the backlog's time to live."""
        server = self.server
        if self.failover_state == "waiting-for-sync":
            self.failover_check()
        if self.to_reap:
            for pid in exited_children(list(self.to_reap)):
                self.to_reap.remove(pid)
        if self.replicas:
            self._purge_replicas()
        if self.full_sync is not None:
            self.full_sync.cron()
        elif self.replicas:
            self._maybe_start_full_sync()
        now = time.time()
        if now - self._last_second < 1:
            return
        self._last_second = now
        self._cron_loops += 1
        cfg = server.config
        if self.link is not None:
            self.link.cron()
        if (self.link is None and self.replicas and self._cron_loops % max(cfg["repl-ping-replica-period"], 1) == 0
                and server.pause_gate is None):  # (paused writes pause the PINGs too: offsets stay still)
            self.feed_command(b"PING")
        timeout = cfg["repl-timeout"]
        for replica in self.replicas:
            if replica.closed:
                continue
            if replica.state == "wait_bgsave_start" or (replica.state == "wait_bgsave_end" and not replica.diskless):
                replica.write(b"\n")  # alive while the RDB is prepared
            elif replica.state == "online" and not replica.pre_psync and now - replica.ack_time > timeout:
                server.log("warning", f"Disconnecting timedout replica (streaming sync): {replica.name}")
                replica.client.close()
        self._purge_replicas()
        if self.backlog is not None and self.backlog.histlen > self.backlog.size:
            self.flush_stream()
            self.backlog.trim(self._replicas_need())
        if server.keyspace.replica_keys_with_expire:
            self._expire_replica_keys()
        self._refresh_good_replicas()  # refreshGoodSlavesCount: a replica silent for max-lag stops counting
        if (self.link is None and self.backlog is not None and not self.replicas and cfg["repl-backlog-ttl"]
                and now - self.no_replicas_since > cfg["repl-backlog-ttl"]):
            self.flush_stream()
            self.change_replid()
            self.clear_replid2()
            self.backlog = None
            self._detach_sink()
            server.snapshots.refresh_gate()  # type: ignore[attr-defined]
            server.log("notice", f"Replication backlog freed after {cfg['repl-backlog-ttl']} seconds without "
                       "connected replicas.")
        if self.waiters:
            self._wake_waiters()

    # -- FAILOVER -----------------------------------------------------------------------------------

    def find_replica(self, host: str, port: int) -> ReplicaConn | None:
        """findReplica: by the address and listening port it announced."""
        self._purge_replicas()
        for replica in self.replicas:
            if replica.ip.lower() == host.lower() and replica.listening_port == port:
                return replica
        return None

    def start_failover(self, target: tuple[str, int] | None, timeout_ms: int, force: bool) -> None:
        """FAILOVER accepted: writes pause until a replica (``target``, or any) has the whole
        stream, then this master becomes its replica, asking it to take over (PSYNC FAILOVER)."""
        self.failover_target = target
        self.failover_end_ms = time.time_ns() // 1_000_000 + timeout_ms if timeout_ms else 0
        self.failover_force = force
        self.failover_state = "waiting-for-sync"
        self.server.client_pause.hold("failover")  # type: ignore[attr-defined]

    def failover_check(self) -> None:
        """updateFailoverStatus: time out (or, with FORCE, fail over anyway), or fail over to
        the first replica that acknowledged everything."""
        server = self.server
        self.flush_stream()
        if self.failover_end_ms and self.failover_end_ms <= time.time_ns() // 1_000_000:
            if self.failover_force and self.failover_target is not None:
                host, port = self.failover_target
                server.log("notice", f"FAILOVER to {host}:{port} time out exceeded, failing over.")
                self._fail_over_to(host, port)
            else:
                self.abort_failover("Replica never caught up before timeout")
            return
        if self.failover_target is not None:
            replica = self.find_replica(*self.failover_target)
            if replica is None or replica.ack_offset != self.offset:
                return
        else:
            replica = next((r for r in self.replicas if not r.closed and r.ack_offset == self.offset), None)
            if replica is None:
                return
            self.failover_target = (replica.ip, replica.listening_port)
        host, port = self.failover_target
        server.log("notice", f"Failover target {host}:{port} is synced, failing over.")
        self._fail_over_to(host, port)

    def _fail_over_to(self, host: str, port: int) -> None:
        self.failover_state = "failover-in-progress"
        self.set_master(host, port)  # its handshake sends PSYNC ... FAILOVER

    def failover_psync_answered(self, accepted: bool) -> None:
        """The target answered our PSYNC FAILOVER: done (it is our master now), or refused."""
        if self.failover_state != "failover-in-progress":
            return
        if accepted:
            self.clear_failover()
        else:
            self.abort_failover("Failover target rejected psync request")

    def clear_failover(self) -> None:
        self.failover_state = "no-failover"
        self.failover_target = None
        self.failover_end_ms = 0
        self.failover_force = False
        self.server.client_pause.release("failover")  # type: ignore[attr-defined]

    def abort_failover(self, why: str) -> None:
        if self.failover_state == "no-failover":
            return
        target = self.failover_target
        where = f"to {target[0]}:{target[1]}" if target is not None else "to any replica"
        self.server.log("notice", f"FAILOVER {where} aborted: {why}")
        if self.failover_state == "failover-in-progress":
            self.unset_master()  # a master again
        self.clear_failover()

    # -- shutdown -----------------------------------------------------------------------------------

    def ready_to_shutdown(self) -> bool:
        """isReadyToShutdown: every replica acknowledged the whole stream."""
        self.flush_stream()
        self._purge_replicas()
        return all(r.ack_offset == self.offset for r in self.replicas)

    def request_acks(self) -> None:
        """sendGetackToReplicas (a shutdown about to wait for them)."""
        if self.replicas and self.link is None:
            self.feed_command(b"REPLCONF", b"GETACK", b"*")
            self.flush_stream()

    def report_lagging(self) -> None:
        """finishShutdown's report: each lagging replica, then how many are in sync."""
        self.flush_stream()
        self._purge_replicas()
        now = int(time.time())
        lagging = 0
        for replica in self.replicas:
            if replica.ack_offset != self.offset:
                lagging += 1
                lag = now - replica.ack_time if replica.state == "online" else 0
                self.server.log("notice", f"Lagging replica {replica.name} reported offset "
                                f"{self.offset - replica.ack_offset} behind master, lag={lag}, "
                                f"state={replica.info_state()}.")
        if self.replicas:
            total = len(self.replicas)
            self.server.log("notice", f"{total - lagging} of {total} replicas are in sync when shutting down.")

    def _before_shutdown(self, flags: frozenset[str]) -> bool:
        """No child of ours outlives the server; the master link closes."""
        if self.full_sync is not None:
            self.full_sync.abort()
        if self.link is not None:
            self.link.stop()
        self.flush_stream()
        return True

    def _expire_replica_keys(self) -> None:
        """expireSlaveKeys: the keys a writable replica's clients set a TTL on."""
        ks = self.server.keyspace
        ks.tick()
        for item in list(ks.replica_keys_with_expire):
            db = ks.dbs[item[0]]
            when = db.expires.get(item[1])
            if when is None:
                del ks.replica_keys_with_expire[item]
            elif when < ks.now:
                ks.expire_key(db, item[1])
                del ks.replica_keys_with_expire[item]

    # -- configuration ----------------------------------------------------------------------------------

    def _config_changed(self, name: str) -> None:
        self.server.keyspace.replica_read_only = bool(self.server.config["replica-read-only"])
        if name == "repl-backlog-size" and self.backlog is not None:
            self.flush_stream()
            self.backlog.resize(self.server.config["repl-backlog-size"])
        elif name in ("min-replicas-to-write", "min-replicas-max-lag"):
            self._refresh_good_replicas()
            self.server.snapshots.refresh_gate()  # type: ignore[attr-defined]

    async def _startup(self) -> bool:
        """Once the dataset is loaded: ``replicaof host port`` in the configuration makes
        this server a replica; a master whose RDB carries replication info (it was in a
        chain when it saved) keeps that history as replid2, so its replicas continue
        partially after its restart (Redis 7's loadDataFromDisk)."""
        text = self.server.config["replicaof"]
        if text:
            host, _, port = text.rpartition(" ")
            if host and port.isdigit():
                self.set_master(host, int(port), from_config=True)
            return True
        snapshots = self.server.snapshots  # type: ignore[attr-defined]
        saved = snapshots.loaded_repl_info
        expired, snapshots.expired_on_load = snapshots.expired_on_load or [], None
        if len(saved.get("repl-id", "")) == 40 and saved.get("repl-offset", "").isdigit():
            self.replid2 = saved["repl-id"]
            self.offset = int(saved["repl-offset"])
            self.second_offset = self.offset + 1
            self.backlog = Backlog(self.server.config["repl-backlog-size"], self.offset)
            self.no_replicas_since = time.time()
            for db_index, key in expired:  # the keys the load dropped as expired, as the DELs Redis feeds
                data, self.selected = encode_records([(db_index, [b"DEL", key])], self.selected)
                self._feed(data)
            self.flush_stream()
            self._attach_sink()
            snapshots.refresh_gate()
        return True

    # -- reports ---------------------------------------------------------------------------------------

    def info_lines(self) -> list[str]:
        cfg = self.server.config
        link = self.link
        lines = ["role:slave" if link is not None else "role:master"]
        now = time.time()
        if link is not None:
            if link.state == "connected":
                offset, read_offset = link.offset, link.read_offset
            elif link.cached is not None:
                offset = read_offset = link.cached[1]
            else:
                offset = read_offset = 1  # (Redis's default when there is no master state at all)
            lines += [
                f"master_host:{link.host}",
                f"master_port:{link.port}",
                f"master_link_status:{'up' if link.state == 'connected' else 'down'}",
                f"master_last_io_seconds_ago:{int(now - link.last_io) if link.state == 'connected' else -1}",
                f"master_sync_in_progress:{int(link.state == 'sync')}",
                f"slave_read_repl_offset:{read_offset}",
                f"slave_repl_offset:{offset}",
            ]
            transfer = link.transfer
            if link.state == "sync" and transfer is not None:
                total = transfer.size if transfer.size >= 0 else 0
                read = transfer.received
                perc = read / total * 100 if total else 0.0
                lines += [
                    f"master_sync_total_bytes:{total if transfer.size >= 0 else -1}",
                    f"master_sync_read_bytes:{read}",
                    f"master_sync_left_bytes:{total - read if transfer.size >= 0 else -1}",
                    f"master_sync_perc:{perc:.2f}",
                    f"master_sync_last_io_seconds_ago:{int(now - link.transfer_last_io)}",
                ]
            if link.state != "connected":
                lines.append(f"master_link_down_since_seconds:{int(now) - link.down_since if link.down_since else -1}")
            lines += [
                f"slave_priority:{cfg['replica-priority']}",
                f"slave_read_only:{int(cfg['replica-read-only'])}",
                f"replica_announced:{int(cfg['replica-announced']) if 'replica-announced' in cfg.by_name else 1}",
            ]
        self._purge_replicas()
        lines.append(f"connected_slaves:{len(self.replicas)}")
        if cfg["min-replicas-to-write"] and cfg["min-replicas-max-lag"]:
            lines.append(f"min_slaves_good_slaves:{self.good_replicas}")
        for index, replica in enumerate(self.replicas):
            lag = int(now) - replica.ack_time if replica.state == "online" else 0
            lines.append(f"slave{index}:ip={replica.ip},port={replica.listening_port},state={replica.info_state()},"
                         f"offset={replica.ack_offset},lag={lag}")
        self.flush_stream()  # (the backlog's figures include this pass's stream)
        backlog = self.backlog
        lines += [
            f"master_failover_state:{self.failover_state}",
            f"master_replid:{self.replid}",
            f"master_replid2:{self.replid2}",
            f"master_repl_offset:{self.offset}",
            f"second_repl_offset:{self.second_offset}",
            f"repl_backlog_active:{int(backlog is not None)}",
            f"repl_backlog_size:{cfg['repl-backlog-size']}",
            f"repl_backlog_first_byte_offset:{backlog.first_offset if backlog is not None else 0}",
            f"repl_backlog_histlen:{backlog.histlen if backlog is not None else 0}",
        ]
        return lines

    def backlog_bytes(self) -> int:
        return self.backlog.histlen + len(self._unflushed) if self.backlog is not None else 0

    def replica_buffer_bytes(self) -> int:
        """What the replicas have not received yet (held stream and socket backlogs)."""
        return sum(r.unsent() for r in self.replicas if not r.closed)

    def transfer_child_running(self) -> bool:
        sync = self.full_sync
        return sync is not None and sync.child_pid != -1

    def role_reply(self) -> list[Any]:
        link = self.link
        if link is None:
            self._purge_replicas()
            return [b"master", self.offset,
                    [[r.ip.encode(), b"%d" % r.listening_port, b"%d" % r.ack_offset]
                     for r in self.replicas if r.state == "online"]]
        state = {"connect": "connect", "connecting": "connecting", "handshake": "handshake", "sync": "sync",
                 "connected": "connected"}[link.state]
        return [b"slave", link.host.encode(), link.port, state.encode(),
                link.offset if link.state == "connected" else -1]
