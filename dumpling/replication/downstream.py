"""This server as a master: the replicas attached to it and their full synchronisations.

A client becomes a replica with SYNC or PSYNC (``Replication.psync``).  A partial resync
(``+CONTINUE``) puts it online at once with the backlog from its offset.  A full resync
waits in ``wait_bgsave_start`` until ``FullSync`` starts for it:

* diskless (``repl-diskless-sync yes`` and every waiting replica announced ``capa eof``):
  after ``repl-diskless-sync-delay`` seconds (or once ``repl-diskless-sync-max-replicas``
  are waiting) a forked child writes the RDB into a pipe; the event loop relays it to each
  replica as ``$EOF:<40 random bytes>\\r\\n`` ... ``<the same 40 bytes>`` and the replica
  goes online, its command stream starting at its first ``REPLCONF ACK`` (a replica that
  finds the EOF mark at the end of what it read must not have stream bytes behind it);
* disk-based: a BGSAVE (``Snapshots.bgsave``) writes ``dbfilename``, then the file goes out
  as ``$<len>\\r\\n<bytes>`` and the stream follows at once.

``+FULLRESYNC <replid> <offset>`` is sent when the snapshot is taken (the fork), and
every stream byte from then on is kept for that replica until its RDB has been sent.

Must not: produce stream bytes (the propagator and ``Replication.feed`` do).
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from typing import TYPE_CHECKING, Any

from dumpling.persistence.snapshots import run_forked_child

if TYPE_CHECKING:
    from dumpling.replication.manager import Replication

_PIPE_READ = 1 << 20
_HIGH_WATER = 16 << 20  # stop relaying the RDB while a replica has this much unsent


def _die_with_parent() -> None:
    """Linux: the transfer child is killed if the server dies (PR_SET_PDEATHSIG), as a
    replication child must not outlive it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the child still ends at its next write into the closed pipe


class ReplicaConn:
    """A connected replica (Redis's client with CLIENT_SLAVE)."""

    def __init__(self, client: Any, listening_port: int, ip: str, capa_eof: bool, capa_psync2: bool,
                 pre_psync: bool, rdb_only: bool) -> None:
        self.client = client
        self.listening_port = listening_port
        self.ip = ip
        self.capa_eof = capa_eof
        self.capa_psync2 = capa_psync2
        self.pre_psync = pre_psync  # came with SYNC: no +FULLRESYNC line, no ACKs expected
        self.rdb_only = rdb_only  # REPLCONF rdb-only 1: the RDB and nothing after it
        self.state = "wait_bgsave_start"  # wait_bgsave_end, send_bulk, online
        self.since = time.time()
        self.last_progress = time.time()  # the transfer last moved (its socket backlog shrank or was empty)
        self.last_backlog = 0
        self.ack_offset = 0
        self.aof_offset = 0  # REPLCONF ACK ... FACK: what its AOF has fsynced (WAITAOF)
        self.ack_time = int(time.time())
        self.pending = bytearray()  # stream bytes held until the RDB has been sent
        self.stream_on_ack = False
        self.diskless = False

    @property
    def name(self) -> str:
        return f"{self.ip}:{self.listening_port}"

    @property
    def closed(self) -> bool:
        return bool(self.client.closed)

    def info_state(self) -> str:
        return {"wait_bgsave_start": "wait_bgsave", "wait_bgsave_end": "wait_bgsave"}.get(self.state, self.state)

    def write(self, data: bytes | bytearray) -> None:
        transport = self.client.transport
        if transport is not None and not self.client.closed:
            self.client.server.stat_net_repl_output = getattr(self.client.server, "stat_net_repl_output", 0) + len(data)
            transport.write(data)

    def socket_backlog(self) -> int:
        """Bytes written to the connection and not yet taken by the kernel."""
        transport = self.client.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def unsent(self) -> int:
        """All it has not received yet, held stream included (the output-buffer limit's measure)."""
        return self.socket_backlog() + len(self.pending)

    def start_stream(self) -> None:
        """Online: what accumulated during the sync goes out, then the live stream."""
        self.stream_on_ack = False
        if self.pending:
            data, self.pending = bytes(self.pending), bytearray()
            self.write(data)


class FullSync:
    """One RDB generation for the replicas waiting for it (at most one runs at a time)."""

    def __init__(self, replication: Replication, targets: list[ReplicaConn], diskless: bool) -> None:
        self.replication = replication
        self.server = replication.server
        self.targets = targets
        self.diskless = diskless
        self.child_pid = -1
        self.pipe = -1
        self.mark = b""
        self.reading = False
        self.done = False
        self.started = time.time()
        self.bytes = 0

    # -- starting ------------------------------------------------------------------------------------

    def start(self) -> bool:
        """Fork (diskless) or start a BGSAVE (disk); +FULLRESYNC to each target."""
        server = self.server
        replication = self.replication
        snapshots = server.snapshots  # type: ignore[attr-defined]
        server.propagator.settle()  # type: ignore[attr-defined]  # (changes made so far are in the snapshot)
        replication.flush_stream()  # bytes before the snapshot are not for these replicas
        replication.selected = -1  # the stream after a snapshot starts with SELECT
        offset = replication.offset
        what = "replicas sockets" if self.diskless else "disk"
        server.log("notice", f"Starting BGSAVE for SYNC with target: {what}")
        if self.diskless:
            if not self._fork_to_pipe():
                return False
        else:
            snapshots.bgsave_done_hooks.append(self._bgsave_done)
            if not snapshots.bgsave():
                snapshots.bgsave_done_hooks.remove(self._bgsave_done)
                server.log("warning", "BGSAVE for replication failed")
                return False
        for replica in self.targets:
            replica.state = "wait_bgsave_end"  # (a socket transfer stays there until online, as in Redis)
            replica.diskless = self.diskless
            replica.pending = bytearray()
            if not replica.pre_psync:
                replica.write(b"+FULLRESYNC %s %d\r\n" % (replication.replid.encode(), offset))
            if self.diskless:
                replica.write(b"$EOF:" + self.mark + b"\r\n")
        return True

    # -- diskless -------------------------------------------------------------------------------------

    def _fork_to_pipe(self) -> bool:
        server = self.server
        snapshots = server.snapshots  # type: ignore[attr-defined]
        self.mark = secrets.token_hex(20).encode()
        read_fd, write_fd = os.pipe()
        started = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as e:
            os.close(read_fd)
            os.close(write_fd)
            server.log("warning", f"Can't save in background: fork: {e.strerror}")
            return False
        if pid == 0:
            os.close(read_fd)
            self._child(write_fd, snapshots)
        server.stat_fork_usec = int((time.perf_counter() - started) * 1_000_000)  # type: ignore[attr-defined]
        server.stat_total_forks = getattr(server, "stat_total_forks", 0) + 1  # type: ignore[attr-defined]
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.child_pid = pid
        self.pipe = read_fd
        server.log("notice", f"Background RDB transfer started by pid {pid}")
        self._resume_reading()
        return True

    def _child(self, write_fd: int, snapshots: Any) -> None:
        """The diskless child: the RDB into the pipe, then ``os._exit``."""
        def work() -> bool:
            _die_with_parent()
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as f:
                snapshots.write_to(f)
            return True

        run_forked_child(self.server, work)

    def _resume_reading(self) -> None:
        loop = self.server.loop
        if loop is not None and self.pipe >= 0 and not self.reading:
            loop.add_reader(self.pipe, self._pipe_readable)
            self.reading = True

    def _pause_reading(self) -> None:
        loop = self.server.loop
        if loop is not None and self.reading:
            loop.remove_reader(self.pipe)
            self.reading = False

    def _pipe_readable(self) -> None:
        try:
            chunk = os.read(self.pipe, _PIPE_READ)
        except BlockingIOError:
            return
        except OSError as e:
            self.server.log("warning", f"Diskless rdb transfer, read error sending DB to replicas: {e.strerror}")
            self._finish(False)
            return
        live = [r for r in self.targets if not r.closed]
        if not live:
            self.server.log("warning", "Diskless rdb transfer, last replica dropped, killing fork child.")
            self._finish(False)
            return
        if not chunk:
            self.server.log("notice", f"Diskless rdb transfer, done reading from pipe, {len(live)} replicas still up.")
            if not self._child_succeeded():
                self.server.log("warning", "Background RDB transfer error: the child did not write the whole file")
                self._finish(False)  # a killed child's EOF: never the mark after a partial file
                return
            for replica in live:
                replica.write(self.mark)
            self._finish(True)
            return
        self.bytes += len(chunk)
        for replica in live:
            replica.write(chunk)
        if any(r.socket_backlog() > _HIGH_WATER for r in live):
            self._pause_reading()  # resumed by the cron once the sockets drained (held stream bytes do not count)

    def _child_succeeded(self) -> bool:
        """The child has closed the pipe: reap it (it is exiting) and read its status."""
        pid, self.child_pid = self.child_pid, -1
        if pid == -1:
            return False
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            return False
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            self.server.log("notice", "Background RDB transfer terminated with success")
        elif code < 0:
            self.server.log("warning", f"Background RDB transfer terminated by signal {-code}")
        return code == 0

    def cron(self) -> None:
        if self.done:
            return
        if self.diskless and not any(not r.closed for r in self.targets):
            self.server.log("warning", "Diskless rdb transfer, last replica dropped, killing fork child.")
            self._finish(False)  # nobody is left to receive it: the child's work is not useful
            return
        timeout = self.server.config["repl-timeout"]
        now = time.time()
        for replica in self.targets:
            if replica.closed:
                continue
            backlog = replica.socket_backlog()
            if backlog == 0 or backlog < replica.last_backlog:
                replica.last_progress = now
            replica.last_backlog = backlog
            if now - replica.last_progress > timeout:
                self.server.log("warning", f"Disconnecting timedout replica (full sync): {replica.name}")
                replica.client.close()
        if self.diskless and not self.reading:
            live = [r for r in self.targets if not r.closed]
            if not live or all(r.socket_backlog() <= _HIGH_WATER // 2 for r in live):
                self._resume_reading()

    def abort(self) -> None:
        """Shutdown: the child is killed, the replicas dropped."""
        if not self.done:
            self._finish(False)

    def _finish(self, ok: bool) -> None:
        self.done = True
        self.replication.flush_stream()  # what came before the end of the transfer is held for them
        self._pause_reading()
        if self.pipe >= 0:
            os.close(self.pipe)
            self.pipe = -1
        if self.child_pid != -1:
            if not ok:
                try:
                    os.kill(self.child_pid, signal.SIGUSR1)
                except ProcessLookupError:
                    pass
            self.replication.reap_later(self.child_pid)
            self.child_pid = -1
        for replica in self.targets:
            if replica.closed:
                continue
            if not ok:
                replica.client.close()
                continue
            self._online(replica)
        self.replication.full_sync_finished(self)

    def _online(self, replica: ReplicaConn) -> None:
        server = self.server
        replica.state = "online"
        replica.ack_time = int(time.time())
        if replica.rdb_only:
            replica.client.flags_close_after_reply = True
            replica.client.close()
            return
        if replica.diskless:
            replica.stream_on_ack = True  # replicaStartCommandStream on the first ACK
        else:
            replica.start_stream()
        server.log("notice", f"Synchronization with replica {replica.name} succeeded")

    # -- disk-based --------------------------------------------------------------------------------

    def _bgsave_done(self, ok: bool) -> None:
        server = self.server
        snapshots = server.snapshots  # type: ignore[attr-defined]
        if self._bgsave_done in snapshots.bgsave_done_hooks:
            snapshots.bgsave_done_hooks.remove(self._bgsave_done)
        if self.done:
            return  # aborted meanwhile (shutdown)
        if not ok:
            server.log("warning", "SYNC failed. BGSAVE child returned an error")
            self._finish(False)
            return
        try:
            with open(snapshots.rdb_path(), "rb") as f:
                payload = f.read()
        except OSError as e:
            server.log("warning", f"SYNC failed. Can't open/stat DB after BGSAVE: {e.strerror}")
            self._finish(False)
            return
        for replica in self.targets:
            if not replica.closed:
                replica.state = "send_bulk"
                replica.write(b"$%d\r\n" % len(payload))
                replica.write(payload)
        self.bytes = len(payload)
        if server.config["rdb-del-sync-files"] and snapshots.persistence_off():
            try:  # removeRDBUsedToSyncReplicas: made only for this sync
                os.unlink(snapshots.rdb_path())
                server.log("notice", "Removing the RDB file used to feed replicas in a persistence-less instance")
            except OSError as e:
                server.log("warning", f"Can't remove the RDB file used to feed replicas: {e.strerror}")
        self._finish(True)
