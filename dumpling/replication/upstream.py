"""This server as a replica: the link to its master (Redis's ``syncWithMaster`` and
``readSyncBulkPayload``, and the master client).

``MasterLink.run`` is one task per ``REPLICAOF host port``: connect, handshake (PING,
AUTH with ``masteruser``/``masterauth``, ``REPLCONF listening-port``, ``REPLCONF capa eof
capa psync2``, ``PSYNC <replid> <offset+1>`` or ``PSYNC ? -1``), then either

* ``+FULLRESYNC <replid> <offset>``: the RDB arrives (``$<len>`` or ``$EOF:<mark>``), is
  checked whole (length, EOF opcode, CRC64) *before* the old dataset is touched, written
  to ``dbfilename`` (``repl-diskless-load disabled``), the dataset flushed and the file
  loaded in slices while clients get ``-LOADING``; a file that fails to load leaves an
  empty dataset, never half of one, and the sync is retried;
* ``+CONTINUE [<new replid>]``: the stream resumes where the cached master state ended;

and then applies the command stream as the master client (no replies; the replication
offset moves only outside MULTI, as Redis's ``reploff``), answers ``REPLCONF GETACK``,
and proxies what it applied to its own backlog and sub-replicas (``Replication.proxy``).
A lost link is retried every second; while connected, the master's replication ID and
offset are cached so the next attempt asks for a partial resync.

Must not: decide what the dataset looks like to clients (``Replication.refusal``) or parse
wire bytes by hand (``wire``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dumpling.persistence.rdb import RdbError
from dumpling.protocol import ErrorReply
from dumpling.replication.wire import (
    BulkTransfer,
    CommandStream,
    LineReader,
    ReplicationProtocolError,
    check_rdb_payload,
    encode_command,
    parse_psync_reply,
)
from dumpling.server import Client

if TYPE_CHECKING:
    from dumpling.replication.manager import Replication

_READ_SIZE = 1 << 16


class LinkLost(Exception):
    """The link ended; the message (if any) is already logged or is the log line."""


class MasterClient(Client):
    """The client the master's commands run as (Redis's ``server.master``): registered
    in the client table while the link is up (CLIENT LIST flags ``M``, CLIENT KILL TYPE
    master); replies are never sent (``flush`` drops them)."""

    repl_kind = "master"

    def flush(self) -> None:
        self._out.clear()
        if self.flags_close_after_reply and not self.closed:
            self.close()


class MasterLink:
    """The replica side of one ``REPLICAOF host port``."""

    def __init__(self, replication: Replication, host: str, port: int,
                 cached: tuple[str, int, MasterClient | None] | None) -> None:
        self.replication = replication
        self.server = replication.server
        self.host = host
        self.port = port
        # (master replid, offset, master client) of the last connected master: PSYNC continues from there
        self.cached = cached
        self.state = "connect"  # connect, connecting, handshake, sync (transfer + load), connected
        self.loading = False
        self.diskless = False  # this full sync loads without writing dbfilename (repl-diskless-load)
        self.client: MasterClient | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.offset = cached[1] if cached else -1  # slave_repl_offset (applied)
        self.read_offset = self.offset  # slave_read_repl_offset (received)
        self.last_io = time.time()
        self.down_since = 0  # when a connected link was lost (0: never connected)
        self.transfer: BulkTransfer | None = None
        self.transfer_last_io = time.time()
        self.stopped = False
        self.task: asyncio.Task[None] | None = None
        self.last_newline = 0.0
        self.timed_out = False  # the cron ended the link for a timeout (already logged)
        self.connected_since = 0.0  # (a link up for a second or more reconnects at once when it drops)
        self._leftover = b""  # stream bytes that arrived behind a $<len> RDB
        self.pending_multi = 0  # bytes of a MULTI block received but not applied yet
        self.stream: CommandStream | None = None  # the command stream of the link that is up
        self.raw = bytearray()
        self.held: tuple[list[bytes], int] | None = None  # a command CLIENT PAUSE holds back

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        loop = self.server.loop
        if loop is not None:
            self.task = loop.create_task(self.run())

    def stop(self) -> None:
        """REPLICAOF NO ONE / another master: drop the link for good."""
        self.stopped = True
        self._close()
        if self.task is not None:
            self.task.cancel()

    def _close(self) -> None:
        client = self.client
        if client is not None and not client.closed:
            client.closed = True
            self.server.client_disconnected(client)
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None

    async def run(self) -> None:
        server = self.server
        while not self.stopped:
            was_connected = False
            try:
                was_connected = await self._session()
            except asyncio.CancelledError:
                self._close()
                raise
            except LinkLost as e:
                if str(e):
                    server.log("warning", str(e))
                was_connected = self.state == "connected"
            except ReplicationProtocolError as e:
                server.log("warning", str(e))
            except OSError as e:
                if self.state in ("connect", "connecting"):
                    server.log("warning", f"Error condition on socket for SYNC: {e.strerror or e}")
                else:
                    server.log("warning", f"I/O error with MASTER: {e.strerror or e}")
            except TimeoutError:
                if self.state == "connecting":
                    server.log("warning", "Timeout connecting to the MASTER...")
                elif self.state == "sync":
                    server.log("warning", "Timeout receiving bulk data from MASTER... If the problem persists try "
                               "to set the 'repl-timeout' parameter in redis.conf to a larger value.")
                else:
                    server.log("warning", "Master did not respond to command during SYNC handshake")
            except Exception as e:  # a bug must cost the link, never the server
                server.log("warning", f"Replication link error: {type(e).__name__}: {e}")
            was_connected = was_connected or self.state == "connected"
            if was_connected:
                self._cache_master()
                self.down_since = int(time.time())
            self._close()
            self.state = "connect"
            self.transfer = None
            if self.stopped:
                break
            if self.cached is not None and was_connected and time.time() - self.connected_since >= 1:
                # A link that was up reconnects at once (the backlog may not wait), as Redis does.
                server.log("notice", f"Reconnecting to MASTER {self.host}:{self.port}")
                await asyncio.sleep(0)
                continue
            await asyncio.sleep(1)
            if not self.stopped:
                server.log("notice", f"Reconnecting to MASTER {self.host}:{self.port} after failure")

    def _cache_master(self) -> None:
        """replicationCacheMaster: keep what a partial resync needs."""
        self.server.log("notice", "Caching the disconnected master state.")
        self.cached = (self.replication.replid, self.offset, self.client)
        self.client = None

    # -- one connection ----------------------------------------------------------------------------

    async def _session(self) -> bool:
        server = self.server
        cfg = server.config
        timeout = max(cfg["repl-timeout"], 1)
        self.state = "connecting"
        self.timed_out = False
        self.last_io = time.time()
        server.log("notice", f"Connecting to MASTER {self.host}:{self.port}")
        source = cfg["bind-source-addr"]  # (the address this link leaves from, if set)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=(source, 0) if source else None), timeout)
        self.writer = writer
        sock = writer.get_extra_info("socket")
        if sock is not None and not cfg["repl-disable-tcp-nodelay"]:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:
                server.log("verbose", f"Can't set TCP_NODELAY on the master link: {e.strerror}")
        server.log("notice", "MASTER <-> REPLICA sync started")
        self.state = "handshake"
        self.last_io = time.time()
        lines = LineReader()

        async def reply() -> bytes:
            while True:
                line = lines.next_line()
                if line is not None:
                    return line
                data = await reader.read(_READ_SIZE)  # (timeouts: cron, with the setting as it is then)
                if not data:
                    raise LinkLost("" if self.timed_out else "Master closed the connection during the SYNC handshake")
                self.last_io = time.time()
                lines.feed(data)

        writer.write(encode_command("PING"))
        pong = (await reply()).decode("utf-8", "replace")
        if pong.startswith("-") and not pong.startswith(("-NOAUTH", "-NOPERM", "-ERR operation not permitted")):
            raise LinkLost(f"Error reply to PING from master: '{pong}'")
        server.log("notice", "Master replied to PING, replication can continue...")
        if cfg["masterauth"]:
            auth = ["AUTH", cfg["masteruser"], cfg["masterauth"]] if cfg["masteruser"] else ["AUTH", cfg["masterauth"]]
            writer.write(encode_command(*auth))
            answer = (await reply()).decode("utf-8", "replace")
            if answer.startswith("-"):
                raise LinkLost(f"Unable to AUTH to MASTER: {answer}")
        port = cfg["replica-announce-port"] or cfg["port"]
        writer.write(encode_command("REPLCONF", "listening-port", port))
        answer = (await reply()).decode("utf-8", "replace")
        if answer.startswith("-"):
            server.log("notice", f"(Non critical) Master does not understand REPLCONF listening-port: {answer}")
        if cfg["replica-announce-ip"]:
            writer.write(encode_command("REPLCONF", "ip-address", cfg["replica-announce-ip"]))
            answer = (await reply()).decode("utf-8", "replace")
            if answer.startswith("-"):
                server.log("notice", f"(Non critical) Master does not understand REPLCONF ip-address: {answer}")
        writer.write(encode_command("REPLCONF", "capa", "eof", "capa", "psync2"))
        answer = (await reply()).decode("utf-8", "replace")
        if answer.startswith("-"):
            server.log("notice", f"(Non critical) Master does not understand REPLCONF capa: {answer}")
        # a master handing over (FAILOVER) asks its target to become the master
        failover = ("FAILOVER",) if self.replication.failover_state == "failover-in-progress" else ()
        if self.cached is not None:
            replid, offset = self.cached[0], self.cached[1] + 1
            server.log("notice", f"Trying a partial resynchronization (request {replid}:{offset}).")
            writer.write(encode_command("PSYNC", replid, offset, *failover))
        else:
            server.log("notice", "Partial resynchronization not possible (no cached master)")
            writer.write(encode_command("PSYNC", "?", "-1", *failover))
        answer_line = await reply()
        psync = parse_psync_reply(answer_line)
        rest = lines.take_rest()
        if failover:
            self.replication.failover_psync_answered(psync.kind in ("full", "continue"))
            if psync.kind not in ("full", "continue"):
                raise LinkLost("")  # (a master again: this link is over)
        if psync.kind == "retry":
            raise LinkLost(f"Master is currently unable to PSYNC but should be in the future: {psync.text}")
        if psync.kind == "error":
            raise LinkLost(f"Unexpected reply to PSYNC from master: {psync.text}")
        if psync.kind == "full":
            server.log("notice", f"Full resync from master: {psync.replid}:{psync.offset}")
            if self.cached is not None:
                server.log("notice", "Discarding previously cached master state.")
            self.cached = None
            self.state = "sync"
            if not await self._full_sync(reader, rest, psync.replid, psync.offset):
                return False
        else:
            self._partial_sync(psync.replid)
        return await self._stream(reader, rest if psync.kind == "continue" else self._leftover)

    # -- full synchronisation ----------------------------------------------------------------------

    async def _full_sync(self, reader: asyncio.StreamReader, rest: bytes, replid: str, offset: int) -> bool:
        server = self.server
        snapshots = server.snapshots  # type: ignore[attr-defined]
        # swapdb with our own history: the old data is served from the start of the transfer
        # (Redis loads from the socket as the bytes arrive; here the whole transfer comes first)
        # A diskless load (on-empty-db into an empty dataset, swapdb) is loading from the first
        # byte (-LOADING), or with swapdb and the same history serves the old data meanwhile.
        serve_old = self._swapdb() and replid == self.replication.replid
        refuse = not serve_old and self._diskless_load()
        if serve_old or refuse:
            snapshots.async_loading = serve_old
            snapshots.loading = refuse
            snapshots.loading_start = int(time.time())
            snapshots.loading_loaded_bytes = 0
            snapshots.refresh_gate()
        try:
            return await self._receive_and_load(reader, rest, replid, offset)
        finally:
            if (serve_old or refuse) and (snapshots.async_loading or snapshots.loading):
                snapshots.async_loading = snapshots.loading = False
                snapshots.refresh_gate()

    def _swapdb(self) -> bool:
        """repl-diskless-load swapdb, which dumpling honours outside cluster mode."""
        return self.server.config["repl-diskless-load"] == "swapdb" and all(
            db.slot_index is None for db in self.server.keyspace.dbs)

    async def _receive_and_load(self, reader: asyncio.StreamReader, rest: bytes, replid: str, offset: int) -> bool:
        server = self.server
        diskless = self.diskless = self._diskless_load()
        transfer = BulkTransfer()
        self.transfer = transfer
        self.transfer_last_io = time.time()
        announced = False
        data = rest
        while True:
            if data:
                done = transfer.feed(data)
                if transfer.started and not announced:
                    announced = True
                    where = "to parser" if diskless else "to disk"
                    if transfer.eof_mark is not None:
                        server.log("notice", f"MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF "
                                   f"{where}")
                    else:
                        server.log("notice", f"MASTER <-> REPLICA sync: receiving {transfer.size} bytes from master "
                                   f"{where}")
                    if diskless:  # (the load is under way from the first byte, as for Redis's socket load)
                        server.log("notice", "MASTER <-> REPLICA sync: Loading DB in memory")
                if done:
                    break
            data = await reader.read(1 << 20)
            if not data:
                if diskless and transfer.started:  # what Redis's socket load reports for a cut transfer
                    server.log("warning", f"Internal error in RDB reading offset {transfer.received}, function at "
                               "upstream.py -> Unexpected EOF reading RDB file")
                    server.log("warning", "Failed trying to load the MASTER synchronization DB from socket, check "
                               "server logs.")
                    if self._swapdb():
                        server.log("notice", "MASTER <-> REPLICA sync: Discarding temporary DB in background")
                    raise LinkLost("")
                raise LinkLost("" if self.timed_out else "I/O error trying to sync with MASTER: connection lost")
            self.transfer_last_io = self.last_io = time.time()
        self._leftover = transfer.leftover
        payload = transfer.payload()
        why = check_rdb_payload(payload)
        if why is not None:
            server.log("warning", f"MASTER <-> REPLICA sync: refusing the RDB received from the master: {why}; the "
                       "dataset is left as it was and the sync will be retried")
            raise LinkLost("")
        snapshots = server.snapshots  # type: ignore[attr-defined]
        if not diskless and not (server.config["rdb-del-sync-files"] and snapshots.persistence_off()):
            self._save_received(payload)  # (rdb-del-sync-files with persistence off: Redis deletes it after the load)
        return await self._load(payload, replid, offset)

    def _diskless_load(self) -> bool:
        """useDisklessLoad: ``swapdb``, or ``on-empty-db`` while the dataset is empty, loads
        the transfer without writing it to ``dbfilename``."""
        mode = self.server.config["repl-diskless-load"]
        return mode == "swapdb" or (mode == "on-empty-db" and not any(self.server.keyspace.dbs))

    def _save_received(self, payload: bytes) -> None:
        """repl-diskless-load disabled: the received file becomes ``dbfilename``, as Redis keeps it."""
        snapshots = self.server.snapshots  # type: ignore[attr-defined]
        temp = os.path.join(snapshots.directory(), f"temp-{int(time.time())}.{os.getpid()}.rdb")
        try:
            with open(temp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, snapshots.rdb_path())
        except OSError as e:
            self.server.log("warning", f"Failed trying to rename the temp DB into {self.server.config['dbfilename']} "
                            f"in MASTER <-> REPLICA synchronization: {e.strerror}")
            try:
                os.unlink(temp)
            except OSError:
                pass

    async def _load(self, payload: bytes, replid: str, offset: int) -> bool:
        """Flush, load ``payload`` in slices; on failure flush again (nothing half-loaded)."""
        from dumpling.commands.keys import flush_db

        server = self.server
        snapshots = server.snapshots  # type: ignore[attr-defined]
        replication = self.replication
        aof = server.aof  # type: ignore[attr-defined]
        aof_was_on = aof.enabled
        if aof_was_on:
            aof.stop()  # the file would miss the flush and the load: a new base follows the sync
        if self._swapdb():
            return await self._load_swapdb(payload, replid, offset, aof_was_on)
        if server.config["repl-diskless-load"] == "swapdb":
            server.log("notice", "repl-diskless-load swapdb: in cluster mode dumpling flushes and loads as with "
                       "'on-empty-db' (its slot index is not swapped)")
        replication.disconnect_replicas("full resync with a new master")  # they must resync with us
        server.log("notice", "MASTER <-> REPLICA sync: Flushing old data")
        eraser = Client(server)

        def flush_all() -> None:
            for db in server.keyspace.dbs:
                flush_db(eraser, db)
            if snapshots.function_flusher is not None:
                snapshots.function_flusher()
            if server.keyspace.tracking is not None:
                server.keyspace.tracking.flushed()

        flush_all()
        if not self.diskless:  # (else logged when the transfer began)
            server.log("notice", "MASTER <-> REPLICA sync: Loading DB in memory")
        self.loading = True
        started = time.monotonic()
        state = snapshots._begin_load(len(payload), keep_expired=True)  # the master expires keys, not us
        ok = await self._load_payload(payload, state, "disk")
        if ok is None:
            return False  # shutting down
        if not ok:
            flush_all()
            if aof_was_on and server.config["appendonly"]:
                aof.start_fresh("replication")
            raise LinkLost("")
        server.log("notice", f"MASTER <-> REPLICA sync: Finished with success ({time.monotonic() - started:.3f} "
                   "seconds loading)")
        replication.after_full_sync(replid, offset)
        self.offset = self.read_offset = offset
        self.client = self.new_client()
        if aof_was_on and server.config["appendonly"]:
            aof.start_fresh("replication")
        self.transfer = None
        return True

    async def _load_payload(self, payload: bytes, state: Any, source: str,
                            before_end: Callable[[], None] | None = None) -> bool | None:
        """The master's RDB loaded in slices (clients served between them) with the GC paused:
        True loaded, False refused (logged as Redis logs it), None the server is shutting down.
        ``before_end`` runs before the load is ended, whatever happened."""
        server = self.server
        snapshots = server.snapshots  # type: ignore[attr-defined]
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            if not await snapshots.serve_while(snapshots.load_steps(snapshots._parser(payload), state)):
                return None
            return True
        except RdbError as e:
            server.log("warning", e.message)
            server.log("warning", f"Failed trying to load the MASTER synchronization DB from {source}, "
                       "check server logs.")
            return False
        finally:
            if gc_was_enabled:
                gc.enable()
            if before_end is not None:
                before_end()
            snapshots._end_load(state)
            self.loading = False

    async def _load_swapdb(self, payload: bytes, replid: str, offset: int, aof_was_on: bool) -> bool:
        """repl-diskless-load swapdb: load into new databases (and a new set of functions)
        while the old ones stay in place, then swap them in; a failed load leaves the old
        dataset as it was.  Clients are served from the old data meanwhile (INFO
        ``async_loading:1``) when it is an earlier point of the same history (our
        replication ID is the master's); else they get -LOADING as with a flushing load."""
        from dumpling.keyspace import Database

        server = self.server
        ks = server.keyspace
        snapshots = server.snapshots  # type: ignore[attr-defined]
        replication = self.replication
        serve_old = replication.replid == replid
        temp = [Database(ks, db.index) for db in ks.dbs]
        functions: list[bytes] = []
        real_loader = snapshots.function_loader
        if real_loader is not None:  # the new libraries wait for the swap (a temporary functions context)
            snapshots.function_loader = lambda source, allow_duplicates: functions.append(source)
        snapshots.target_dbs = temp
        self.loading = True
        started = time.monotonic()
        state = snapshots._begin_load(len(payload), keep_expired=True, async_loading=serve_old)

        def restore_targets() -> None:
            snapshots.target_dbs = None
            snapshots.function_loader = real_loader

        ok = await self._load_payload(payload, state, "socket", restore_targets)
        if ok is None:
            return False  # shutting down
        if not ok:
            server.log("notice", "MASTER <-> REPLICA sync: Discarding temporary DB in background")
            raise LinkLost("")  # the old dataset is untouched; the sync is retried
        replication.disconnect_replicas("full resync with a new master")  # they must resync with us
        server.log("notice", "MASTER <-> REPLICA sync: Swapping active DB with loaded DB")
        for live, loaded in zip(ks.dbs, temp, strict=True):
            ks.touch_watched_in_db(live.index, live, loaded)
            live.swap_contents(loaded)
        if snapshots.function_flusher is not None:
            snapshots.function_flusher()
        for source in functions:
            try:
                real_loader(source, False)  # type: ignore[misc]
            except ValueError as e:
                server.log("warning", f"Failed loading library from the master's RDB: {e}")
        if ks.tracking is not None:
            ks.tracking.flushed()
        for index, key in list(ks.blocked_keys):  # clients blocked on keys the new data has may be served
            if key in ks.dbs[index].data:
                ks.ready_keys[(index, key)] = None
        if ks.ready_keys:
            server.serve_ready_keys()
        ks.dirty += 1
        server.log("notice", "MASTER <-> REPLICA sync: Discarding old DB in background")
        server.log("notice", f"MASTER <-> REPLICA sync: Finished with success ({time.monotonic() - started:.3f} "
                   "seconds loading)")
        replication.after_full_sync(replid, offset)
        self.offset = self.read_offset = offset
        self.client = self.new_client()
        if aof_was_on and server.config["appendonly"]:
            server.aof.start_fresh("replication")  # type: ignore[attr-defined]
        self.transfer = None
        return True

    def new_client(self) -> MasterClient:
        client = MasterClient(self.server)
        client.skip_this = True  # replies to the master are never sent
        client._in_batch = True  # (nor flushed on the way)
        return client

    def _partial_sync(self, new_replid: str) -> None:
        server = self.server
        server.log("notice", "Successful partial resynchronization with master.")
        cached = self.cached
        assert cached is not None
        self.offset = self.read_offset = cached[1]
        self.client = cached[2] if cached[2] is not None else self.new_client()
        self.client.closed = False
        self.client.multi = None
        self.cached = None
        self._leftover = b""
        self.replication.after_partial_sync(new_replid, cached[0], self.offset)
        server.log("notice", "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.")

    # -- the command stream --------------------------------------------------------------------------

    async def _stream(self, reader: asyncio.StreamReader, leftover: bytes) -> bool:
        server = self.server
        writer = self.writer
        client = self.client
        assert writer is not None and client is not None
        client.transport = writer.transport  # type: ignore[assignment]
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        client.addr = f"{peer[0]}:{peer[1]}" if peer else f"{self.host}:{self.port}"
        client.laddr = f"{local[0]}:{local[1]}" if local else "?:0"
        sock = writer.get_extra_info("socket")
        client.fd = sock.fileno() if sock is not None else -1
        server.clients[client.id] = client
        server.clients_in_flux.add(client)  # (counted into the clients' totals at the next tick)
        self.state = "connected"
        self.connected_since = time.time()
        self.replication.link_up()
        self.send_ack()
        self.stream = CommandStream()
        self.raw = bytearray()  # received, not applied yet
        self.pending_multi = 0
        self.held = None
        data = leftover
        while True:
            if data:
                self.read_offset += len(data)
                client.last_interaction = self.last_io = time.time()
                self.stream.feed(data)
                self.raw += data
                self._apply_received()
            if client.closed:
                raise LinkLost("Connection with master lost.")
            data = await reader.read(_READ_SIZE)
            if not data:
                raise LinkLost("" if self.timed_out else "Connection with master lost.")

    def _apply_received(self) -> None:
        """Apply what has been received and proxy it to our own backlog and replicas."""
        if self.stream is None or self.client is None or self.client.closed:
            return
        applied = self._apply_available(self.stream)
        if applied:
            self.replication.proxy(self.raw[:applied])
            del self.raw[:applied]

    def _paused(self, argv: list[bytes]) -> bool:
        """CLIENT PAUSE holds the master's writes too: the stream waits (slave_repl_offset
        stays while slave_read_repl_offset grows) and goes on when the pause ends."""
        server = self.server
        if server.pause_gate is None:
            return False
        found = server.lookup_command(argv)
        pause = server.client_pause  # type: ignore[attr-defined]
        if not hasattr(found, "handler") or not pause.covers(self.client, found, argv):
            return False
        if self._apply_received not in pause.on_resume:
            pause.on_resume.append(self._apply_received)
        return True

    def _apply_available(self, stream: CommandStream) -> int:
        """Run the complete commands received; returns the stream bytes applied (up to
        the end of the last command outside MULTI: Redis's ``reploff``)."""
        server = self.server
        client = self.client
        assert client is not None
        ks = server.keyspace
        applied = 0
        in_flight = self.pending_multi  # bytes of a MULTI ... received by earlier reads
        ks.loading = True  # the master's commands see keys past their TTL (the master expires them)
        try:
            while True:
                item, self.held = self.held, None
                if item is None:
                    item = stream.next_command()
                if item is None:
                    break
                argv, size = item
                if (client.multi is None or argv[0].lower() == b"exec") and self._paused(argv):
                    self.held = item  # (and what follows it waits too)
                    break
                self._apply(argv)
                if client.multi is None:
                    applied += in_flight + size
                    self.offset += in_flight + size
                    in_flight = 0
                else:
                    in_flight += size
        finally:
            ks.loading = False
            self.pending_multi = in_flight
        if ks.ready_keys:
            server.serve_ready_keys()
        return applied

    def _apply(self, argv: list[bytes]) -> None:
        server = self.server
        client = self.client
        assert client is not None
        name = argv[0].lower()
        if name == b"replconf":
            if len(argv) >= 2 and argv[1].lower() == b"getack":
                self.send_ack()
            return
        if name == b"ping":
            return  # the master's keepalive: counted in the offset, nothing to run
        found = server.lookup_command(argv)
        if not hasattr(found, "handler"):
            server.log("warning", f"== CRITICAL == This replica is unable to run a command from its master: "
                       f"{getattr(found, 'message', found)}")
            return
        cmd: Any = found
        if client.multi is not None and cmd.name not in ("exec", "discard", "multi"):
            client.multi.append((cmd, argv))
            return
        reply = server.call(client, cmd, argv)
        if type(reply) is ErrorReply:
            server.log("warning", f"== CRITICAL == This replica is sending an error to its master: "
                       f"'{reply.message}' after processing the command '{cmd.name}'")
        client._out.clear()
        if server.pending_pushes:
            server.send_pending_pushes(client)

    def send_ack(self) -> None:
        """REPLCONF ACK <applied offset> (every second, and when the master asks)."""
        writer = self.writer
        if writer is not None and self.state == "connected" and not writer.transport.is_closing():
            fsynced = self.server.aof.fsynced_reploff()  # type: ignore[attr-defined]
            if fsynced != -1:  # Redis 7.2's FACK: the offset our AOF has on disk (no fsync forced)
                writer.write(encode_command("REPLCONF", "ACK", self.offset, "FACK", fsynced))
            else:
                writer.write(encode_command("REPLCONF", "ACK", self.offset))

    def cron(self) -> None:
        """Once a second: ACK, timeouts (with ``repl-timeout`` as it is now), keepalive
        newlines while loading a big transfer."""
        now = time.time()
        timeout = self.server.config["repl-timeout"]
        if self.state == "connected":
            if now - self.last_io > timeout:
                self._time_out("MASTER timeout: no data nor PING received...")
                return
            self.send_ack()
        elif self.state in ("connecting", "handshake"):
            if now - self.last_io > timeout:
                self._time_out("Timeout connecting to the MASTER...")
        elif self.loading:
            if self.writer is not None and now - self.last_newline >= 1:
                self.last_newline = now
                self.writer.write(b"\n")  # replicationSendNewlineToMaster: we are alive, still loading
        elif self.state == "sync" and now - self.transfer_last_io > timeout:
            self._time_out("Timeout receiving bulk data from MASTER... If the problem persists try to set the "
                           "'repl-timeout' parameter in redis.conf to a larger value.")

    def _time_out(self, message: str) -> None:
        self.server.log("warning", message)
        self.timed_out = True
        if self.writer is not None:
            self.writer.transport.abort()  # the read in progress ends; run() reconnects
