"""The append-only file: Redis 7's multi-part layout, what is logged, loading, rewriting.

Layout (``appenddirname`` inside ``dir``): a manifest ``<appendfilename>.manifest`` whose
lines read ``file <name> seq <n> type <b|h|i>``; one base file (``.<n>.base.rdb``, an RDB
file with ``aof-base 1`` when ``aof-use-rdb-preamble yes``, else ``.<n>.base.aof`` of
the commands that rebuild the dataset, ``aofrewrite``) and incremental files ``.<n>.incr.aof`` of RESP commands.

What is logged: the propagation stream (``dumpling.persistence.propagation``), the same
records replicas receive.  The AOF is one of its sinks (``_emit``): plain deterministic
commands as sent, TTLs as ``PEXPIREAT``, everything else as the final state of each key
it touched (``SET ... PXAT`` / ``RESTORE ... REPLACE ABSTTL`` / ``DEL``), several records of
one command inside ``MULTI``/``EXEC``.  The file replays to the same dataset on dumpling
and on Redis 7 (which loads these commands).

With ``aof-timestamp-enabled yes`` a ``#TS:<unix seconds>`` line precedes the first
record of each new second (and opens a command base); loading skips such lines.

``appendfsync always`` writes and fsyncs before the command's reply is sent;
``everysec`` writes at once and fsyncs from the cron once a second; ``no`` leaves
fsync to the kernel.  At startup the files load in slices from the event loop
(``load_at_startup``): clients get ``-LOADING`` meanwhile, as while an RDB loads.
``BGREWRITEAOF`` forks like BGSAVE: the parent opens a new incr
file at once, the child writes the new base, and the manifest switches when it succeeds.

Must not: decide RDB matters (``snapshots``) or parse RDB bytes (``rdb``).
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from dumpling.persistence.aofrewrite import timestamp_annotation, write_command_base
from dumpling.persistence.propagation import Record
from dumpling.persistence.rdb import RdbError
from dumpling.persistence.snapshots import run_forked_child, run_to_end

if TYPE_CHECKING:
    from dumpling.dispatch import Server
    from dumpling.persistence.propagation import Propagator
    from dumpling.persistence.snapshots import Snapshots

MANIFEST_SUFFIX = ".manifest"
_YIELD_EVERY_S = 0.02  # while loading at startup, serve clients (-LOADING) this often


def parse_manifest(text: str) -> list[tuple[str, int, str]]:
    """``file <name> seq <n> type <t>`` lines -> [(name, seq, type)]; ValueError if malformed."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        fields = dict(zip(words[0::2], words[1::2], strict=False))
        if len(words) % 2 or not {"file", "seq", "type"} <= fields.keys() or fields["type"] not in ("b", "h", "i"):
            raise ValueError(f"Invalid AOF manifest file format: {line}")
        out.append((fields["file"], int(fields["seq"]), fields["type"]))
    return out


def parse_commands(buf: bytes, pos: int = 0, limit: int = -1) -> tuple[list[tuple[list[bytes], int]], int, bool]:
    """RESP commands from ``pos`` (at most ``limit`` if >= 0): [(argv, end offset)], the
    offset after the last complete one, and whether the data ended inside a command (a
    truncated file)."""
    out: list[tuple[list[bytes], int]] = []
    end = len(buf)
    while pos < end and len(out) != limit:
        if buf[pos] == 35:  # '#': an annotation line (aof-timestamp-enabled)
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                return out, pos, True
            pos = nl + 2
            continue
        if buf[pos] != 42:  # '*'
            raise ValueError(f"Bad file format reading the append only file at offset {pos}")
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return out, pos, True
        count = int(buf[pos + 1:nl])
        p = nl + 2
        argv = []
        for _ in range(count):
            if p >= end:
                return out, pos, True
            if buf[p] != 36:  # '$'
                raise ValueError(f"Bad file format reading the append only file at offset {p}")
            nl = buf.find(b"\r\n", p)
            if nl < 0:
                return out, pos, True
            n = int(buf[p + 1:nl])
            start = nl + 2
            if start + n + 2 > end:
                return out, pos, True
            argv.append(buf[start:start + n])
            p = start + n + 2
        pos = p
        out.append((argv, pos))
    return out, pos, False


class AppendOnly:
    """The AOF of one server (``server.aof``)."""

    def __init__(self, server: Server, snapshots: Snapshots, propagator: Propagator) -> None:
        self.server = server
        self.snapshots = snapshots
        self.enabled = False
        self.fd = -1  # the open incr file
        self.db = -1  # the database the file's command stream has SELECTed
        self.propagator = propagator
        self.unsynced = False
        self.last_fsync = time.monotonic()
        self.write_ok = True
        self.write_error = ""
        self.pending = bytearray()  # log bytes not yet written (this loop pass, or after a write error)
        self.drain_scheduled = False
        self.manifest: list[tuple[str, int, str]] = []
        self.base_size = 0
        self.cur_timestamp = 0  # aof_cur_timestamp: the last #TS annotation written
        self.loading_files = False  # the AOF is loading at startup (clients are served meanwhile)
        # BGREWRITEAOF
        self.child_pid = -1
        self.child_started = 0.0
        self.scheduled = False
        self.waiting_rewrite = False  # enabled, its first base still to be written (AOF_WAIT_REWRITE)
        self.fsynced_offset = 0  # the replication offset the last fsync covered (see fsynced_reploff)
        self.rewrites = 0
        self.last_rewrite_ok = True
        self.last_rewrite_seconds = -1
        self.consecutive_failures = 0
        self.last_cow_size = 0
        self._rewrite_seq = 1
        self._rewrite_suffix = "rdb"

    # -- paths and manifest -------------------------------------------------------------------

    def directory(self) -> str:
        return os.path.join(self.snapshots.directory(), self.server.config["appenddirname"])

    def path(self, name: str) -> str:
        return os.path.join(self.directory(), name)

    def manifest_name(self) -> str:
        return self.server.config["appendfilename"] + MANIFEST_SUFFIX

    def write_manifest(self) -> None:
        """Persist the manifest atomically (temp file, fsync, rename, directory fsync)."""
        text = "".join(f"file {name} seq {seq} type {kind}\n" for name, seq, kind in self.manifest)
        temp = self.path("temp-" + self.manifest_name())
        with open(temp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.path(self.manifest_name()))
        _fsync_dir(self.directory())

    def incr_files(self) -> list[tuple[str, int, str]]:
        return [m for m in self.manifest if m[2] == "i"]

    # -- logging ------------------------------------------------------------------------------------

    def _emit(self, records: list[Record], client: Any = None) -> None:
        """The propagation sink: one call's records appended to the incr file."""
        if not records or self.fd < 0:
            return
        self._count_offset(len(records), client)
        out = b""
        if self.server.config["aof-timestamp-enabled"]:
            now = int(time.time())
            if self.cur_timestamp < now:  # genAofTimestampAnnotationIfNeeded: once per second
                self.cur_timestamp = now
                out = timestamp_annotation(now)
        data, self.db = self.propagator.encode(records, self.db)
        self._write(out + data if out else data)

    def _emit_one(self, db_index: int, argv: list[bytes], wire: bytes, client: Any = None) -> None:
        """The sink's short way: one command propagated as sent, ``wire`` its encoding."""
        if db_index != self.db or self.fd < 0 or self.server.config["aof-timestamp-enabled"]:
            self._emit([(db_index, argv)], client)  # (a SELECT or a #TS annotation goes first)
            return
        self._count_offset(1, client)
        self._write(wire)

    def _count_offset(self, commands: int, client: Any) -> None:
        """A master with no backlog still moves master_repl_offset by one per propagated command
        (replicationFeedSlaves), which WAITAOF's local count compares with what was fsynced."""
        replication = self.server.replication  # type: ignore[attr-defined]
        if replication.backlog is None and replication.link is None:
            replication.offset += commands
            if client is not None:
                client.repl_woff = replication.offset

    def _write(self, data: bytes) -> None:
        self.pending += data
        if self.server.config["appendfsync"] == "always":
            self._drain()  # before this command's reply leaves
            return
        # everysec / no: one write() per event-loop pass, as Redis writes in beforeSleep
        loop = self.server.loop
        if loop is None:
            self._drain()
        elif not self.drain_scheduled:
            self.drain_scheduled = True
            loop.call_soon(self._scheduled_drain)

    def _scheduled_drain(self) -> None:
        self.drain_scheduled = False
        if self.fd >= 0 and self.pending:
            self._drain()

    def _drain(self) -> None:
        """Write what is pending (kept on failure and retried from the cron, as Redis keeps
        its AOF buffer); with ``always``, fsync too - failing that, exit like Redis."""
        always = self.server.config["appendfsync"] == "always"
        try:
            pending = self.pending
            while pending:
                n = os.write(self.fd, pending)
                del pending[:n]
            if always:
                os.fsync(self.fd)
            else:
                self.unsynced = True
            if not self.write_ok:
                self.write_ok = True
                self.server.log("warning", "AOF write error looks solved, Redis can write again.")
                self.snapshots.refresh_gate()
        except OSError as e:
            if self.write_ok:
                self.server.log("warning", f"Error writing to the AOF file: {e.strerror}")
            self.write_ok = False
            self.write_error = e.strerror or str(e)
            self.snapshots.refresh_gate()
            if always:
                self.server.log("warning", "Can't recover from AOF write error when the AOF fsync policy is "
                                "'always'. Exiting...")
                os._exit(1)

    def fsynced_reploff(self) -> int:
        """Redis's ``fsynced_reploff``: the replication offset up to which the AOF is on disk
        (-1: no AOF, or its first generation still being written).  When nothing is left to
        write or fsync, that is the current offset, except under ``appendfsync no``, where only
        the fsyncs done for other reasons count (flushAppendOnlyFile)."""
        if not self.enabled or self.waiting_rewrite:
            return -1
        if (not self.pending and not self.unsynced and self.write_ok
                and self.server.config["appendfsync"] != "no"):
            self.fsynced_offset = self.server.replication.offset  # type: ignore[attr-defined]
        return self.fsynced_offset

    def _fsynced(self) -> None:
        """An fsync covered everything written so far."""
        replication = getattr(self.server, "replication", None)
        self.fsynced_offset = replication.offset if replication is not None else 0
        self._wake_waitaof()

    def _wake_waitaof(self) -> None:
        replication = getattr(self.server, "replication", None)
        if replication is not None:
            replication.aof_changed()

    def cron(self) -> None:
        if self.enabled and self.pending:
            self._drain()
        if self.enabled:
            self.propagator.settle()
        fsync = self.server.config["appendfsync"]
        if self.enabled and self.unsynced and fsync != "no":
            now = time.monotonic()
            # (always: what was written under another policy, as flushAppendOnlyFile catches up)
            if fsync == "always" or now - self.last_fsync >= 1.0:
                self.last_fsync = now
                try:
                    os.fsync(self.fd)
                    self.unsynced = False
                    self._fsynced()
                    if not self.write_ok:
                        self.write_ok = True
                        self.snapshots.refresh_gate()
                except OSError as e:
                    self.write_ok = False
                    self.write_error = e.strerror or str(e)
                    self.server.log("warning", f"Fail to fsync the AOF file: {e.strerror}")
                    self.snapshots.refresh_gate()
        self._rewrite_cron()

    # -- switching on and off ---------------------------------------------------------------------

    def _hook(self, on: bool) -> None:
        if on:
            self.propagator.attach(self._emit, one=self._emit_one)
        else:
            self.propagator.detach(self._emit)
        self.enabled = on
        self.snapshots.refresh_gate()

    def _open_incr(self, seq: int) -> str:
        name = f"{self.server.config['appendfilename']}.{seq}.incr.aof"
        if self.fd >= 0:
            if self.pending:
                self._drain()  # pending bytes assume the old file's SELECTed database
            os.close(self.fd)
        self.fd = os.open(self.path(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.db = -1
        return name

    def base_suffix(self) -> str:
        """getNewBaseFileNameAndMarkPreAsHistory: ``.rdb`` with the RDB preamble, else ``.aof``."""
        return "rdb" if self.server.config["aof-use-rdb-preamble"] else "aof"

    def write_base_at(self, path: str, suffix: str) -> None:
        """The dataset as a base file at ``path``, fsynced: an RDB with ``aof-base 1``
        (``suffix`` "rdb") or Redis's rewrite commands ("aof"); raises OSError."""
        if suffix == "rdb":
            self.snapshots.write_file_at(path, aof_base=True)
            return
        cfg = self.server.config
        delay = cfg["rdb-key-save-delay"]
        progress = (lambda _: time.sleep(delay / 1_000_000)) if delay > 0 else None
        sources = self.snapshots.function_sources() if self.snapshots.function_sources is not None else []
        databases = ((db.index, db.data, db.expires) for db in self.server.keyspace.dbs)
        with open(path, "wb") as f:
            write_command_base(f, databases, sources, int(time.time()) if cfg["aof-timestamp-enabled"] else None,
                               progress)
            f.flush()
            os.fsync(f.fileno())

    def _write_base(self, name: str, suffix: str) -> None:
        """A base file of the current dataset, written in this process."""
        temp = self.path(f"temp-rewriteaof-{os.getpid()}.aof")
        try:
            self.write_base_at(temp, suffix)
        except BaseException:
            _unlink(temp)
            raise
        os.replace(temp, self.path(name))
        _fsync_dir(self.directory())

    def start_fresh(self, reason: str) -> None:
        """A new AOF generation of the current dataset (startup without an AOF, CONFIG SET
        appendonly yes, the end of a replica's full sync): base, first incr file, manifest;
        the files of an earlier generation (a sequence number below) are removed."""
        os.makedirs(self.directory(), exist_ok=True)
        prefix = self.server.config["appendfilename"]
        suffix = self.base_suffix()
        old = list(self.manifest)
        seq = max((s for _, s, _ in old), default=0) + 1
        base = f"{prefix}.{seq}.base.{suffix}"
        self.server.log("notice", f"Creating AOF base file {base} on {reason}")
        self._write_base(base, suffix)
        incr = self._open_incr(seq)
        self.server.log("notice", f"Creating AOF incr file {incr} on {reason}")
        self.manifest = [(base, seq, "b"), (incr, seq, "i")]
        self.base_size = os.path.getsize(self.path(base))
        self.write_manifest()
        for name, _, _ in old:
            if name not in (base, incr):
                _unlink(self.path(name))  # the replaced generation: the new manifest no longer names it
        self._hook(True)
        self._fsynced()  # (the base holds everything so far, on disk: a replica's FACK after a full sync)

    def stop(self) -> None:
        if self.child_pid != -1:
            self.kill_child()
        if self.waiting_rewrite:  # (stopAppendOnly: no first generation after all)
            self.waiting_rewrite = self.scheduled = False
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            _unlink(self.path(self._temp_incr()))
        if self.fd >= 0 and self.pending:
            self._drain()
        if self.fd >= 0:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)
        self.fd = -1
        self._hook(False)
        self.fsynced_offset = 0
        self._wake_waitaof()  # WAITAOF clients waiting on the local copy get an error

    def config_changed(self, name: str) -> None:
        if name != "appendonly" or self.loading_files:
            return  # (CONFIG SET while the AOF loads at startup: applied when the load ends)
        want = bool(self.server.config["appendonly"])
        if want and not self.enabled:
            if self.snapshots.child_pid != -1:
                self.enable("there is already another background operation")
            elif self.server.in_exec:
                self.enable("during a transaction")
            else:
                self.enable()
        elif not want and self.enabled:
            self.stop()

    def enable(self, why: str | None = None) -> None:
        """startAppendOnly at run time (AOF_WAIT_REWRITE): the AOF counts as on at once; a
        forked rewrite writes its first base while new writes go to a temporary incr file, and
        the two become the AOF's first generation when it ends (``_rewrite_cron``).  ``why``:
        the rewrite cannot start now (a transaction, another child), so the cron starts it."""
        server = self.server
        self.waiting_rewrite = True
        self._hook(True)  # (nothing is written before the rewrite forks: the base will hold it)
        if why is not None:
            what = "enabled but " if why.startswith("there") else "enabled "
            server.log("notice", f"AOF was {what}{why}. An AOF background was scheduled to start when possible.")
            self.scheduled = True
        elif not self.rewrite():
            server.log("warning", "Redis needs to enable the AOF but can't trigger a background AOF rewrite "
                       "operation. Check the above logs for more info about the error.")
            self.stop()

    def _temp_incr(self) -> str:
        return f"temp-{self.server.config['appendfilename']}.incr"

    # -- loading ----------------------------------------------------------------------------------

    def reload(self, client: Any) -> bool:
        """DEBUG LOADAOF: flush the log to disk, empty the dataset, load the AOF files back."""
        from dumpling.commands.keys import flush_db

        server = self.server
        if self.enabled:
            self.propagator.settle()
            if self.pending:
                self._drain()
            os.fsync(self.fd)
        try:
            with open(self.path(self.manifest_name())) as f:
                manifest = parse_manifest(f.read())
        except (OSError, ValueError) as e:
            server.log("warning", f"Can't load the AOF manifest: {e}")
            return False
        with self.propagator.suspended():  # replayed commands must not be logged again
            for db in server.keyspace.dbs:
                flush_db(client, db)
            if not self._load_all(manifest):
                return False
        server.log("notice", "Append Only File loaded by DEBUG LOADAOF")
        return True

    def _load_all(self, manifest: list[tuple[str, int, str]]) -> bool:
        """Load every file of ``manifest`` at once (DEBUG LOADAOF)."""
        return run_to_end(self._load_all_steps(manifest))

    def _load_all_steps(self, manifest: list[tuple[str, int, str]]) -> Generator[int, None, bool]:
        """loadAppendOnlyFiles: the base, then each incr file; yields the bytes read so far
        about every 20 ms (the caller may serve clients then); returns False (logged) when
        the server must not go on."""
        server = self.server
        files = [m for m in manifest if m[2] == "b"] + [m for m in manifest if m[2] == "i"]
        all_started = time.monotonic()
        total = 0
        for name, _, _ in files:
            try:
                total += os.path.getsize(self.path(name))
            except OSError:
                continue  # reported when the file is opened
        state = self.snapshots._begin_load(total, keep_expired=True)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        done = 0
        try:
            for index, (name, _, kind) in enumerate(files):
                started = time.monotonic()
                steps = self._load_file_steps(name, kind, index == len(files) - 1, state)
                while True:
                    try:
                        offset = next(steps)
                    except StopIteration as end:
                        ok = end.value
                        break
                    yield done + offset
                if not ok:
                    return False
                done += os.path.getsize(self.path(name))
                what = "base" if kind == "b" else "incr"
                server.log("notice", f"DB loaded from {what} file {name}: {time.monotonic() - started:.3f} seconds")
        finally:
            if gc_was_enabled:
                gc.enable()
            self.snapshots._end_load(state)
        server.log("notice", f"DB loaded from append only file: {time.monotonic() - all_started:.3f} seconds")
        return True

    async def load_at_startup(self) -> bool:
        """loadAppendOnlyFiles at start, in slices: clients connected meanwhile get
        ``-LOADING`` and INFO ``loading:1``, as while an RDB loads.  False (logged) when
        the server must exit; a shutdown requested meanwhile stops the load."""
        server = self.server
        manifest_path = self.path(self.manifest_name())
        try:
            with open(manifest_path) as f:
                self.manifest = parse_manifest(f.read())
        except FileNotFoundError:
            self.manifest = []
        except ValueError as e:
            server.log("warning", str(e))
            return False
        if not self.manifest:
            self.start_fresh("server start")
            return True
        result: list[bool] = []

        def steps() -> Generator[int, None, None]:
            result.append((yield from self._load_all_steps(self.manifest)))

        self.loading_files = True
        try:
            if not await self.snapshots.serve_while(steps()):
                return True  # shutting down: nothing more to open
        finally:
            self.loading_files = False
        if not result[0]:
            return False
        if not server.config["appendonly"]:
            return True  # switched off by CONFIG SET while loading
        base = next((m for m in self.manifest if m[2] == "b"), None)
        self.base_size = os.path.getsize(self.path(base[0])) if base else 0
        incrs = self.incr_files()
        seq = incrs[-1][1] if incrs else 1
        name = self._open_incr(seq)
        if not incrs:
            self.manifest.append((name, seq, "i"))
            self.write_manifest()
            server.log("notice", f"Creating AOF incr file {name} on server start")
        else:
            server.log("notice", f"Opening AOF incr file {name} on server start")
        self._hook(True)
        return True

    def _load_file_steps(self, name: str, kind: str, last: bool, state: dict[str, int]) -> Generator[int, None, bool]:
        """loadSingleAppendOnlyFile; yields the offset reached now and then."""
        from dumpling.server import Client

        server = self.server
        path = self.path(name)
        try:
            with open(path, "rb") as f:
                buf = f.read()
        except OSError as e:
            server.log("warning", f"The append log file {name} doesn't exist: {e.strerror}")
            return False
        pos = 0
        if buf[:5] == b"REDIS":
            server.log("notice", "Reading RDB base file on AOF loading...")
            try:
                pos = yield from self.snapshots.load_steps(self.snapshots._parser(buf), state)
            except RdbError as e:
                server.log("warning", e.message)
                server.log("warning", f"Error reading the RDB base file {name}, AOF loading aborted")
                return False
            if pos == len(buf):
                return True
        client = Client(server)
        progress = [pos]  # the end of the last command applied outside a transaction
        truncated = False
        while pos < len(buf) and not truncated:
            try:
                commands, pos, truncated = parse_commands(buf, pos, 1024)
            except ValueError as e:
                server.log("warning", str(e))
                return False
            if not (yield from self._replay_steps(client, commands, name, progress)):
                return False
        valid = progress[0]
        if client.multi is not None:  # ended inside MULTI: drop the unfinished transaction
            server.log("warning", f"Revert incomplete MULTI/EXEC transaction in AOF file {name}")
            truncated = True
        if truncated:
            if not (last and server.config["aof-load-truncated"]):
                server.log("warning", f"Bad file format reading the append only file {name}: make a backup of your "
                           "AOF file, then use ./redis-check-aof --fix <filename.manifest>")
                return False
            server.log("warning", f"!!! Warning: short read while loading the AOF file {name}!!!")
            server.log("warning", f"!!! Truncating the AOF {name} at offset {valid} !!!")
            os.truncate(path, valid)
        return True

    def _replay_steps(self, client: Any, commands: list[tuple[list[bytes], int]], name: str,
                      progress: list[int]) -> Generator[int, None, bool]:
        """Run the commands as ``client`` would (MULTI queued, EXEC applied), yielding the
        offset reached about every 20 ms; ``progress[0]`` follows the end of the last
        command applied outside a transaction (where a file ending inside a MULTI is
        cut, as Redis does).  ``key-load-delay``: µs slept per command."""
        server = self.server
        delay = server.config["key-load-delay"]
        slice_start = time.monotonic()
        for count, (argv, offset) in enumerate(commands, 1):
            found = server.lookup_command(argv)
            if not hasattr(found, "handler"):
                server.log("warning", f"Unknown command '{argv[0].decode('utf-8', 'replace')}' reading the append "
                           f"only file {name}")
                return False
            cmd = found
            word = cmd.name
            if client.multi is not None and word not in ("exec", "discard", "multi"):
                client.multi.append((cmd, argv))
            else:
                server.call(client, cmd, argv)  # type: ignore[arg-type]
            client._out.clear()
            if client.multi is None:
                progress[0] = offset
            if delay > 0:
                time.sleep(delay / 1_000_000)
            if not count & 63 and time.monotonic() - slice_start > _YIELD_EVERY_S:
                yield offset
                slice_start = time.monotonic()
        return True

    # -- BGREWRITEAOF -------------------------------------------------------------------------------

    def rewrite(self) -> bool:
        """rewriteAppendOnlyFileBackground: new incr file now, the child writes the new base."""
        server = self.server
        if self.child_pid != -1 or self.snapshots.child_pid != -1:
            return False
        os.makedirs(self.directory(), exist_ok=True)
        incrs = self.incr_files()
        seq = (incrs[-1][1] + 1) if incrs else 1
        if self.waiting_rewrite:
            # the first generation: writes from the fork on go to a temporary incr file
            seq = max((s for _, s, _ in self.manifest), default=0) + 1
            if self.fd >= 0:
                os.close(self.fd)
            temp = self._temp_incr()
            self.fd = os.open(self.path(temp), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
            self.db = -1
            self.fsynced_offset = getattr(getattr(server, "replication", None), "offset", 0)  # (the base's)
            server.log("notice", f"Creating AOF incr file {temp} on background rewrite")
        elif self.enabled:
            incr = self._open_incr(seq)
            server.log("notice", f"Creating AOF incr file {incr} on background rewrite")
            self.manifest.append((incr, seq, "i"))
            self.write_manifest()
        self._rewrite_seq = seq
        self._rewrite_suffix = self.base_suffix()  # the child writes this format whatever CONFIG SET does
        started = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as e:
            server.log("warning", f"Can't rewrite append only file in background: fork: {e.strerror}")
            self.last_rewrite_ok = False
            return False
        if pid == 0:
            self._child()
        server.stat_fork_usec = int((time.perf_counter() - started) * 1_000_000)  # type: ignore[attr-defined]
        server.stat_total_forks = getattr(server, "stat_total_forks", 0) + 1  # type: ignore[attr-defined]
        self.child_pid = pid
        self.child_started = time.time()
        self.rewrites += 1
        server.log("notice", f"Background append only file rewriting started by pid {pid}")
        return True

    def _child(self) -> None:
        """The BGREWRITEAOF child: the new base file, then ``os._exit``."""
        def work() -> bool:
            self.write_base_at(self.path(f"temp-rewriteaof-bg-{os.getpid()}.aof"), self._rewrite_suffix)
            return True

        run_forked_child(self.server, work)

    def _rewrite_cron(self) -> None:
        server = self.server
        if self.child_pid == -1:
            if self.scheduled and self.snapshots.child_pid == -1:
                self.scheduled = False
                if not self.rewrite() and self.waiting_rewrite:
                    self.scheduled = True  # (the first generation is retried on every tick, as Redis does)
            elif self.enabled and self.snapshots.child_pid == -1:
                self._auto_rewrite()
            return
        try:
            pid, status = os.waitpid(self.child_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.child_pid, 1 << 8
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        child, self.child_pid = self.child_pid, -1
        temp = self.path(f"temp-rewriteaof-bg-{child}.aof")
        self.last_rewrite_seconds = int(time.time() - self.child_started)
        if code != 0:
            _unlink(temp)
            self.last_rewrite_ok = False
            self.consecutive_failures += 1
            server.log("warning", "Background AOF rewrite terminated with error" if code > 0 else
                       f"Background AOF rewrite terminated by signal {-code}")
            if self.waiting_rewrite:  # the AOF still needs its first base: try again, afresh
                os.close(self.fd)
                self.fd = -1
                _unlink(self.path(self._temp_incr()))
                self.scheduled = True
            return
        prefix = server.config["appendfilename"]
        seq = self._rewrite_seq
        base = f"{prefix}.{seq}.base.{self._rewrite_suffix}"
        os.replace(temp, self.path(base))
        old = [m for m in self.manifest if not (m[2] == "i" and m[1] >= seq)]
        self.manifest = [(base, seq, "b")] + [m for m in self.manifest if m[2] == "i" and m[1] >= seq]
        if self.waiting_rewrite:
            incr = f"{prefix}.{seq}.incr.aof"
            os.replace(self.path(self._temp_incr()), self.path(incr))
            server.log("notice", f"Successfully renamed the temporary AOF incr file {self._temp_incr()} into {incr}")
            self.manifest = [(base, seq, "b"), (incr, seq, "i")]
        elif not self.enabled:
            self.manifest = [(base, seq, "b")]
        self.write_manifest()
        for name, _, _ in old:
            if name != base:
                _unlink(self.path(name))
        self.base_size = os.path.getsize(self.path(base))
        self.waiting_rewrite = False
        self._wake_waitaof()
        self.last_rewrite_ok = True
        self.consecutive_failures = 0
        server.log("notice", "Background AOF rewrite terminated with success")
        server.log("notice", "Background AOF rewrite finished successfully")

    def _auto_rewrite(self) -> None:
        cfg = self.server.config
        percentage = cfg["auto-aof-rewrite-percentage"]
        if not percentage or self.fd < 0:
            return
        size = self.current_size()
        base = self.base_size or 1
        if size >= cfg["auto-aof-rewrite-min-size"] and (size - base) * 100 // base >= percentage:
            self.server.log("notice", f"Starting automatic rewriting of AOF on {(size - base) * 100 // base}% growth")
            self.rewrite()

    def current_size(self) -> int:
        total = self.base_size
        for name, _, _ in self.incr_files():
            try:
                total += os.path.getsize(self.path(name))
            except OSError:
                continue
        return total

    def kill_child(self) -> None:
        if self.child_pid == -1:
            return
        self.server.log("notice", f"Killing running AOF rewrite child: {self.child_pid}")
        try:
            os.kill(self.child_pid, signal.SIGUSR1)
            os.waitpid(self.child_pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        _unlink(self.path(f"temp-rewriteaof-bg-{self.child_pid}.aof"))
        self.child_pid = -1

    def before_shutdown(self, flags: frozenset[str]) -> bool:
        if self.child_pid != -1 and self.waiting_rewrite:  # the AOF has no complete generation yet
            if "force" not in flags:
                self.server.log("warning", "Writing initial AOF, can't exit.")
                return False
            self.server.log("warning", "Writing initial AOF. Exit anyway.")
        if self.child_pid != -1:
            self.server.log("warning", "There is a child rewriting the AOF. Killing it!")
            self.kill_child()
        if self.enabled and self.fd >= 0:
            self.server.log("notice", "Calling fsync() on the AOF file.")
            self.propagator.settle()
            if self.pending:
                self._drain()
            try:
                os.fsync(self.fd)
            except OSError as e:
                self.server.log("warning", f"Fail to fsync the AOF file: {e.strerror}.")
        return True


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
