"""RDB snapshots on a running server: SAVE, BGSAVE, save points, loading, the gates.

``Snapshots`` (one per server, ``server.snapshots``) owns the persistence state INFO
reports and does what Redis's rdb.c/server.c do around the file format:

* ``save()`` - a synchronous save (SAVE, SHUTDOWN, FLUSHALL, DEBUG RELOAD): write
  ``temp-<pid>.rdb`` in ``dir``, fsync, rename over ``dbfilename``, fsync the directory.
* ``bgsave()`` - ``os.fork()``: the child writes the same way from its copy-on-write
  view of the keyspace and ``os._exit``s; the parent keeps serving, reads the child's
  progress/COW reports from a pipe and reaps it from the cron (``cron``), which also
  runs the save points and scheduled BGSAVEs.
* ``load_at_startup()`` - reads ``dir/dbfilename`` (or, with ``appendonly yes``, has the
  AOF load) in slices from the event loop (``load_steps`` yields, ``serve_while`` lets
  clients in) while they get ``-LOADING``; a damaged file makes the server exit with code 1.
* ``gate`` - installed as ``server.command_gate`` while loading (``-LOADING``) or
  while writes are refused after a failed BGSAVE (``-MISCONF``).

Function libraries are not ours: the scripting engine registers ``function_sources``
(returns the library sources to save) and ``function_loader``/``function_flusher``;
a file with libraries and no loader registered fails to load, loudly.

Must not: parse or encode file bytes itself (``dumpling.persistence.rdb`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from dumpling import REDIS_VERSION
from dumpling.keyspace import LFU_INIT_VAL, lfu_minutes, lru_clock
from dumpling.keytable import NATIVE as NATIVE_KEYTABLE
from dumpling.persistence.rdb import (
    Aux,
    DatabaseSnapshot,
    Function,
    KeyRecord,
    Loaded,
    RdbError,
    RdbParser,
    RdbWriter,
    SelectDb,
    file_version_for,
    write_databases,
)

if TYPE_CHECKING:
    from dumpling.dispatch import Server

MISCONF = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that "
    "may modify the data set are disabled, because this instance is configured to report errors during writes if "
    "RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the "
    "RDB error."
)
LOADING = "LOADING Redis is loading the dataset in memory"
BGSAVE_RETRY_DELAY = 5  # CONFIG_BGSAVE_RETRY_DELAY: seconds before a failed BGSAVE is retried by a save point
_YIELD_EVERY_S = 0.02  # while loading at startup, serve clients (-LOADING) this often


class LoadFailed(Exception):
    """The file could not be loaded; the reason has been logged."""


def parse_save_params(text: str) -> list[tuple[int, int]]:
    """``"3600 1 300 100"`` -> [(3600, 1), (300, 100)]; raises ValueError when malformed."""
    words = text.split()
    if len(words) % 2:
        raise ValueError("Invalid save parameters")
    params = []
    for i in range(0, len(words), 2):
        seconds, changes = int(words[i]), int(words[i + 1])
        if seconds < 1 or changes < 0:
            raise ValueError("Invalid save parameters")
        params.append((seconds, changes))
    return params


class _IncrementalSync:
    """rdb-save-incremental-fsync: fsync every 4 MB written (REDIS_AUTOSYNC_BYTES), so the
    kernel never holds a whole big file of dirty pages to flush at the end."""

    EVERY = 4 * 1024 * 1024

    def __init__(self, f: Any) -> None:
        self.f = f
        self.pending = 0

    def write(self, data: bytes | bytearray) -> int:
        n = self.f.write(data)
        self.pending += len(data)
        if self.pending >= self.EVERY:
            self.f.flush()
            os.fsync(self.f.fileno())
            self.pending = 0
        return n


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _private_dirty_bytes() -> int:
    """This process's Private_Dirty memory (Redis's ``zmalloc_get_private_dirty``): in a
    forked child, the pages copied on write so far."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # no /proc (or the child is gone): nothing measured
        return 0
    return 0


def exited_children(pids: Iterable[int]) -> list[int]:
    """The pids among ``pids`` that have exited (reaped here, without waiting) or are not our
    children any more: forked debugging sessions, replication transfers."""
    done = []
    for pid in pids:
        try:
            exited, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            exited = pid
        if exited:
            done.append(pid)
    return done



def run_forked_child(server: Any, work: Callable[[], bool]) -> None:
    """The body of a forked child (BGSAVE, BGREWRITEAOF, a diskless replication transfer), as
    Redis's ``closeChildUnusedResourceAfterFork``: default signal handling, no wake-ups of the
    parent's event loop, no cyclic GC (a collection would touch, so copy, every page of the
    parent's objects), the listening sockets closed (the port must not outlive the parent
    because of a child), and as redisFork, the background child's class of oom-score-adj;
    then ``work()``.  Never returns: exit status 0 if ``work`` returned True, else 1 (an
    exception's traceback goes to stderr)."""
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        server.apply_oom_score("bgchild")
        with contextlib.suppress(ValueError):  # raised only off the main thread: no wake-up fd there
            signal.set_wakeup_fd(-1)
        gc.disable()
        for listener in server.servers:
            for sock in listener.sockets or ():
                os.close(sock.fileno())
        if work():
            code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(code)

class Snapshots:
    """Persistence state and actions of one server (see the module docstring)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.bgsave_ok = True  # lastbgsave_status
        self.last_bgsave_try = 0.0
        self.dirty_before_bgsave = 0
        self.saves = 0  # stat_rdb_saves
        self.last_bgsave_seconds = -1
        self.last_cow_size = 0
        self.scheduled = False
        # the running BGSAVE child
        self.child_pid = -1
        self.child_started = 0.0
        self.child_pipe = -1
        self._child_buffer = b""
        self.current_cow = 0
        self.current_cow_peak = 0
        self.current_cow_updated = 0.0
        self.keys_processed = 0
        self.keys_total = 0
        # loading
        self.loading = False
        self.loading_start = 0
        self.loading_total_bytes = 0
        self.loading_loaded_bytes = 0
        self.loading_rdb_used_mem = 0
        self.last_load_keys_loaded = 0
        self.last_load_keys_expired = 0
        # function libraries: set by the scripting engine
        self.function_sources: Callable[[], list[bytes]] | None = None
        self.function_loader: Callable[[bytes, bool], None] | None = None  # (source, replace); raises ValueError
        self.function_flusher: Callable[[], None] | None = None
        # replication: AUX fields it adds to every file (repl-id, repl-offset), and what it
        # does when a BGSAVE it waits for ends (True: success)
        self.extra_aux: Callable[[], list[tuple[bytes, bytes]]] = list
        self.bgsave_done_hooks: list[Callable[[bool], None]] = []
        self.loaded_repl_info: dict[str, str] = {}  # repl-id / repl-offset of the file loaded at startup
        # (db, key) of the keys found expired while loading at startup a file with replication
        # info, as a master (None: not collected): they go to the backlog as DEL (RDBFLAGS_FEED_REPL)
        self.expired_on_load: list[tuple[int, bytes]] | None = None
        # A replica's swapdb load (repl-diskless-load swapdb): the databases it fills instead of
        # the keyspace's (None: the keyspace's), and whether clients are served meanwhile from
        # the old data (INFO async_loading) rather than refused with -LOADING.
        self.target_dbs: list[Any] | None = None
        self.async_loading = False
        self.save_params = parse_save_params(server.config["save"])
        server.config.listeners.append(self._config_changed)
        server.cron_hooks.append(self.cron)
        server.before_shutdown.append(self.before_shutdown)
        self.refresh_gate()

    # -- configuration and gates ---------------------------------------------------------

    def _config_changed(self, name: str) -> None:
        if name == "save":
            self.save_params = parse_save_params(self.server.config["save"])
        self.refresh_gate()

    def persistence_off(self) -> bool:
        """No save points and no AOF: rdb-del-sync-files then removes replication's RDB files."""
        return not self.save_params and not self.server.config["appendonly"]

    def writes_refused(self) -> bool:
        """writeCommandsDeniedByDiskError for RDB: stop-writes-on-bgsave-error, save points, last BGSAVE failed."""
        return not self.bgsave_ok and bool(self.save_params) and self.server.config["stop-writes-on-bgsave-error"]

    def refresh_gate(self) -> None:
        server = self.server
        aof = getattr(server, "aof", None)
        replication = getattr(server, "replication", None)
        if (self.loading or self.async_loading or self.writes_refused() or (aof is not None and aof.enabled and not aof.write_ok)
                or (replication is not None and replication.gate_needed())):  # (a replica, or a backlog to feed)
            server.command_gate = self.gate
        elif server.command_gate == self.gate:
            server.command_gate = None

    def gate(self, client: Any, cmd: Any, argv: list[bytes]) -> str | None:
        """The refusal for ``cmd`` while loading or after a failed BGSAVE, or None."""
        aof = self.server.aof  # type: ignore[attr-defined]
        aof_failed = aof.enabled and not aof.write_ok
        if self.writes_refused() or aof_failed:
            writes = cmd.is_write or cmd.name == "ping"
            if not writes and cmd.name == "exec" and client.multi:
                writes = any(q.is_write for q, _ in client.multi)
            if writes:
                # writeCommandsDeniedByDiskError: the RDB condition is checked first
                return MISCONF if self.writes_refused() else f"MISCONF Errors writing to the AOF file: {aof.write_error}"
        replication = getattr(self.server, "replication", None)
        if replication is not None:  # -NOREPLICAS, -READONLY, -MASTERDOWN (Redis checks them here)
            refusal = replication.refusal(client, cmd, argv)
            if refusal is not None:
                return refusal
        if self.loading and "loading" not in cmd.flags:
            return LOADING
        if self.async_loading and "no_async_loading" in cmd.flags:
            return LOADING
        return None

    # -- paths ------------------------------------------------------------------------------

    def directory(self) -> str:
        return self.server.config["dir"] or os.getcwd()

    def rdb_path(self) -> str:
        return os.path.join(self.directory(), self.server.config["dbfilename"])

    # -- writing ------------------------------------------------------------------------------

    def write_file_at(self, path: str, aof_base: bool = False) -> None:
        """An RDB file of the dataset at ``path`` (an AOF base: ``aof-base 1``), fsynced; raises OSError."""
        self._write_file(path, None, aof_base)

    def _write_file(self, path: str, progress: Callable[[int], None] | None, aof_base: bool = False) -> None:
        """The whole keyspace (and function libraries) as an RDB file at ``path``, fsynced."""
        with open(path, "wb") as f:
            sink = _IncrementalSync(f) if self.server.config["rdb-save-incremental-fsync"] else f
            self.write_to(sink, progress, aof_base)
            f.flush()
            os.fsync(f.fileno())

    def write_to(self, f: Any, progress: Callable[[int], None] | None = None, aof_base: bool = False) -> None:
        """The whole keyspace (and function libraries) as an RDB stream into the binary file
        object ``f`` (a file, or the pipe of a diskless replication transfer).

        ``used-mem`` is the resident size: INFO's estimate samples keys through an index
        whose first use copies every page a BGSAVE child shares with its parent."""
        from dumpling.commands.dump import codec_options

        server = self.server
        cfg = server.config
        ks = server.keyspace
        options = codec_options(server)
        version = file_version_for((db.data for db in ks.dbs), cfg["dump-rdb-version"])
        policy = cfg["maxmemory-policy"]
        kind = "lru" if policy.endswith("-lru") else "lfu" if policy.endswith("-lfu") else ""
        self.keys_total = sum(len(db.data) for db in ks.dbs)
        writer = RdbWriter(f, version, options, checksum=cfg["rdbchecksum"])
        writer.aux(b"redis-ver", REDIS_VERSION.encode())
        writer.aux(b"redis-bits", b"64")
        writer.aux(b"ctime", b"%d" % int(time.time()))
        writer.aux(b"used-mem", b"%d" % _resident_bytes())
        for key, value in self.extra_aux():
            writer.aux(key, value)
        writer.aux(b"aof-base", b"1" if aof_base else b"0")
        if self.function_sources is not None:
            for source in self.function_sources():
                writer.function(source)
        delay = cfg["rdb-key-save-delay"]
        if delay > 0:
            user_progress = progress

            def progress(done: int) -> None:
                time.sleep(delay / 1_000_000)
                if user_progress is not None and not done & 1023:
                    user_progress(done)

        snapshots = [DatabaseSnapshot(db.index, db.data, db.expires) for db in ks.dbs]
        write_databases(writer, snapshots, kind, ks.now if ks.now else int(time.time() * 1000),
                        ks.lfu_decay_time, progress, every=1 if delay > 0 else 1024)
        writer.finish()

    def write_rdb(self, progress: Callable[[int], None] | None = None) -> bool:
        """rdbSave: temp file, fsync, atomic rename, fsync of the directory; logs as Redis."""
        server = self.server
        directory = self.directory()
        temp_name = f"temp-{os.getpid()}.rdb"
        temp = os.path.join(directory, temp_name)
        final = self.rdb_path()
        try:
            self._write_file(temp, progress)
        except OSError as e:
            if not os.path.exists(temp):
                server.log("warning", f"Failed opening the temp RDB file {temp_name} (in server root dir "
                           f"{directory if os.path.isdir(directory) else 'unknown'}) for saving: {e.strerror}")
            else:
                server.log("warning", f"Write error while saving DB to the disk(rdbSaveRio): {e.strerror}")
                _unlink_quietly(temp)
            return False
        try:
            os.replace(temp, final)
        except OSError as e:
            server.log("warning", f"Error moving temp DB file {temp_name} on the final destination "
                       f"{server.config['dbfilename']} (in server root dir {directory}): {e.strerror}")
            _unlink_quietly(temp)
            return False
        try:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            server.log("warning", f"Failed to fsync directory while saving DB: {e.strerror}")
            return False
        server.log("notice", "DB saved on disk")
        return True

    def save(self) -> bool:
        """A synchronous save in this process; on success the dirty counter and LASTSAVE reset."""
        if not self.write_rdb():
            return False
        self.server.keyspace.dirty = 0
        self.server.last_save = int(time.time())
        self.bgsave_ok = True
        self.refresh_gate()
        return True

    # -- BGSAVE ---------------------------------------------------------------------------------

    def bgsave(self) -> bool:
        """rdbSaveBackground: fork a child that writes the file; False if the fork failed."""
        server = self.server
        aof = getattr(server, "aof", None)
        if self.child_pid != -1 or (aof is not None and aof.child_pid != -1):
            return False
        self.saves += 1
        self.dirty_before_bgsave = server.keyspace.dirty
        self.last_bgsave_try = time.time()
        read_fd, write_fd = os.pipe()
        started = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as e:
            os.close(read_fd)
            os.close(write_fd)
            self.bgsave_ok = False
            self.refresh_gate()
            server.log("warning", f"Can't save in background: fork: {e.strerror}")
            return False
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            self._child(write_fd)
        server.stat_fork_usec = int((time.perf_counter() - started) * 1_000_000)  # type: ignore[attr-defined]
        server.stat_total_forks = getattr(server, "stat_total_forks", 0) + 1  # type: ignore[attr-defined]
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.child_pid = pid
        self.child_pipe = read_fd
        self._child_buffer = b""
        self.child_started = time.time()
        self.current_cow = self.current_cow_peak = 0
        self.current_cow_updated = 0.0
        self.keys_processed = 0
        self.keys_total = sum(len(db.data) for db in server.keyspace.dbs)
        server.log("notice", f"Background saving started by pid {pid}")
        return True

    def _child(self, report_fd: int) -> None:
        """The BGSAVE child: write the file, report COW and key counts, ``os._exit``."""
        run_forked_child(self.server, lambda: self._child_work(report_fd))

    def _child_work(self, report_fd: int) -> bool:
        last_report = [time.monotonic()]

        def progress(done: int) -> None:
            now = time.monotonic()
            if now - last_report[0] >= 1.0:
                last_report[0] = now
                os.write(report_fd, b"P %d %d\n" % (done, _private_dirty_bytes()))

        if self.write_rdb(progress):
            keys = sum(len(db.data) for db in self.server.keyspace.dbs)
            cow = _private_dirty_bytes()
            if cow:
                self.server.log("notice", f"Fork CoW for RDB: current {cow // (1024 * 1024)} MB, "
                                f"peak {cow // (1024 * 1024)} MB, average {cow // (1024 * 1024)} MB")
            os.write(report_fd, b"D %d %d\n" % (keys, cow))
            return True
        return False

    def _read_child_reports(self) -> None:
        if self.child_pipe < 0:
            return
        try:
            chunk = os.read(self.child_pipe, 4096)
        except BlockingIOError:
            return
        except OSError:
            return
        self._child_buffer += chunk
        *lines, self._child_buffer = self._child_buffer.split(b"\n")
        for line in lines:
            parts = line.split()
            if len(parts) != 3:
                continue
            keys, cow = int(parts[1]), int(parts[2])
            self.keys_processed = keys
            self.current_cow = cow
            self.current_cow_peak = max(self.current_cow_peak, cow)
            self.current_cow_updated = time.time()
            if parts[0] == b"D":
                self.last_cow_size = cow

    def reap_child(self, block: bool = False) -> None:
        """checkChildrenDone: collect the exit status of a finished child and account for it."""
        if self.child_pid == -1:
            return
        self._read_child_reports()
        try:
            pid, status = os.waitpid(self.child_pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = self.child_pid, 1 << 8
        if pid == 0:
            return
        self._read_child_reports()
        self._child_done(os.waitstatus_to_exitcode(status))

    def _child_done(self, code: int) -> None:
        """backgroundSaveDoneHandlerDisk (``code`` < 0: killed by signal -code)."""
        server = self.server
        end = time.time()
        if code == 0:
            server.log("notice", "Background saving terminated with success")
            server.keyspace.dirty -= self.dirty_before_bgsave
            server.last_save = int(end)
            self.bgsave_ok = True
        elif code > 0:
            server.log("warning", "Background saving error")
            self.bgsave_ok = False
        else:
            server.log("warning", f"Background saving terminated by signal {-code}")
            _unlink_quietly(os.path.join(self.directory(), f"temp-{self.child_pid}.rdb"))
            if -code != signal.SIGUSR1:
                self.bgsave_ok = False
        self.last_bgsave_seconds = int(end - self.child_started)
        if self.child_pipe >= 0:
            os.close(self.child_pipe)
        self.child_pipe = -1
        self.child_pid = -1
        self.current_cow = self.current_cow_peak = 0
        self.keys_processed = self.keys_total = 0
        self.refresh_gate()
        for hook in list(self.bgsave_done_hooks):
            hook(code == 0)

    def kill_child(self) -> None:
        """killRDBChild: SIGUSR1 (not counted as an error), reap, remove its temp file."""
        if self.child_pid == -1:
            return
        try:
            os.kill(self.child_pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        self.reap_child(block=True)

    def cron(self) -> None:
        """serverCron's persistence part: reap the child, start scheduled BGSAVEs and save points."""
        if self.child_pid != -1:
            self.reap_child()
            return
        server = self.server
        if server.aof.child_pid != -1:  # type: ignore[attr-defined]
            return  # one child at a time; a scheduled BGSAVE waits
        if self.scheduled:
            self.scheduled = False
            self.bgsave()
            return
        dirty = server.keyspace.dirty
        if not self.save_params or not dirty:
            return
        now = time.time()
        for seconds, changes in self.save_params:
            if (dirty >= changes and now - server.last_save > seconds
                    and (self.bgsave_ok or now - self.last_bgsave_try > BGSAVE_RETRY_DELAY)):
                server.log("notice", f"{changes} changes in {seconds} seconds. Saving...")
                self.bgsave()
                return

    # -- SHUTDOWN / FLUSHALL ----------------------------------------------------------------------

    def before_shutdown(self, flags: frozenset[str]) -> bool:
        """finishShutdown's persistence part; False: the save failed and the shutdown is off."""
        server = self.server
        if self.loading:
            flags = (flags - {"save"}) | {"nosave"}
        if self.child_pid != -1:
            server.log("warning", "There is a child saving an .rdb. Killing it!")
            self.kill_child()
        if (self.save_params and "nosave" not in flags) or "save" in flags:
            server.log("notice", "Saving the final RDB snapshot before exiting.")
            with self._sigint_exits():
                saved = self.save()
            if not saved:
                if "force" in flags:
                    server.log("warning", "Error trying to save the DB. Exit anyway.")
                else:
                    server.log("warning", "Error trying to save the DB, can't exit.")
                    return False
        return True

    @contextlib.contextmanager
    def _sigint_exits(self) -> Iterator[None]:
        """While the final save blocks the event loop, a further SIGINT exits at once and removes
        the temp file (Redis's sigShutdownHandler: "You insist..."); the loop's own handler
        cannot run until the save returns."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def insist(signum: int, frame: Any) -> None:
            self.server.log("warning", "You insist... exiting now.")
            _unlink_quietly(os.path.join(self.directory(), f"temp-{os.getpid()}.rdb"))
            os._exit(1)

        previous = signal.signal(signal.SIGINT, insist)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def after_flushall(self) -> None:
        """flushAllDataAndResetRDB: a running child is killed and, with save points, the
        (now empty) dataset is saved at once."""
        if self.child_pid != -1:
            self.kill_child()
        replication = getattr(self.server, "replication", None)
        if replication is not None:
            replication.kill_transfer_child()  # (a diskless transfer's child is an RDB child too)
        if self.save_params:
            self.save()

    # -- loading ------------------------------------------------------------------------------------

    def _apply(self, record: KeyRecord, now: int, allow_duplicates: bool, state: dict[str, int]) -> None:
        """Put one loaded key in place (rdbLoadRioWithLoadingCtx's per-key part)."""
        from dumpling.commands.dump import lru_field_for_idle

        server = self.server
        ks = server.keyspace
        if record.value is None:
            state["empty"] += 1
            if state["empty"] <= 10:
                server.log("notice", f"rdbLoadObject skipping empty key: {record.key.decode('utf-8', 'replace')}")
            return
        if record.expire_ms != -1 and record.expire_ms < state["cut"]:
            self.last_load_keys_expired += 1
            if self.expired_on_load is not None and "repl-id" in self.loaded_repl_info:
                self.expired_on_load.append((record.db, record.key))
            return
        db = (self.target_dbs or ks.dbs)[record.db]
        key = record.key
        self.last_load_keys_loaded += 1
        if key in db.data:
            if not allow_duplicates:
                raise RdbError(f"RDB has duplicated key '{key.decode('utf-8', 'replace')}' in DB {record.db}")
            db.delete(key)
        db.add(key, record.value)
        if record.expire_ms != -1:
            db.set_expire(key, record.expire_ms)
        if ks.lfu:
            if record.freq >= 0:
                db.set_field(key, (lfu_minutes(now) << 8) | record.freq)
        elif record.idle_s >= 0:
            db.set_field(key, lru_field_for_idle(record.idle_s, state["lru_clock"]))

    def _aux(self, record: Aux) -> None:
        server = self.server
        key = record.key.lower()
        text = record.value.decode("utf-8", "replace")
        if key == b"redis-ver":
            server.log("notice", f"Loading RDB produced by version {text}")
        elif key == b"ctime" and text.lstrip("-").isdigit():
            server.log("notice", f"RDB age {int(time.time()) - int(text)} seconds")
        elif key == b"used-mem" and text.isdigit():
            self.loading_rdb_used_mem = int(text)
            server.log("notice", f"RDB memory usage when created {int(text) / (1024 * 1024):.2f} Mb")
        elif key in (b"repl-id", b"repl-offset", b"repl-stream-db"):
            self.loaded_repl_info[key.decode()] = text  # a restarted replica continues from there
        elif key == b"aof-base" and text == "1":
            server.log("notice", "RDB is base AOF")
        elif key.startswith(b"%"):
            server.log("notice", f"RDB '{record.key[1:].decode('utf-8', 'replace')}': {text}")

    def _function(self, record: Function, allow_duplicates: bool) -> None:
        if self.function_loader is None:
            raise RdbError("The RDB file contains function libraries (FUNCTION2), but this server has no function "
                           "engine registered to load them")
        try:
            self.function_loader(record.source, allow_duplicates)
        except ValueError as e:
            raise RdbError(f"Failed loading library, {e}") from None

    def _fast_target(self, parser: RdbParser, index: int, state: dict[str, int]) -> None:
        """Let plain string records go straight into database ``index`` when no index,
        slot map or order tracking must see each key (Database.add's bookkeeping)."""
        db = (self.target_dbs or self.server.keyspace.dbs)[index]
        collecting = self.expired_on_load is not None and "repl-id" in self.loaded_repl_info  # (names needed)
        if (db._expire_order is None and db.slot_index is None and not collecting
                and type(db.data) is NATIVE_KEYTABLE):
            parser.fast = (db.data, db.expires, state["field"], state["cut"])
        else:
            parser.fast = None

    def _parser(self, buf: bytes) -> RdbParser:
        from dumpling.commands.dump import codec_options

        server = self.server
        verify = server.config["rdbchecksum"] and not getattr(server, "skip_checksum", False)
        return RdbParser(buf, codec_options(server, caller_is_client=False), verify_checksum=verify)

    def _begin_load(self, size: int, keep_expired: bool = False, async_loading: bool = False) -> dict[str, int]:
        """Loading state on; ``keep_expired``: an AOF base keeps keys already expired (the
        commands after it were logged against them), as Redis does; ``async_loading``: into
        ``target_dbs`` while clients are served from the keyspace (a replica's swapdb load)."""
        if async_loading:
            self.async_loading = True
        else:
            self.loading = True
            self.server.keyspace.loading = True
        self.loading_start = int(time.time())
        self.loading_total_bytes = size
        self.loading_loaded_bytes = 0
        self.loading_rdb_used_mem = 0
        self.last_load_keys_loaded = self.last_load_keys_expired = 0
        self.refresh_gate()
        now = int(time.time() * 1000)
        ks = self.server.keyspace
        field = (lfu_minutes(now) << 8) | LFU_INIT_VAL if ks.lfu else lru_clock(now)  # Database.fresh_field
        cut = -(1 << 63) if keep_expired else now
        return {"empty": 0, "now": now, "lru_clock": lru_clock(now), "field": field, "cut": cut}

    def _end_load(self, state: dict[str, int]) -> None:
        self.loading = False
        self.async_loading = False
        self.server.keyspace.loading = False
        self.refresh_gate()

    def _log_done(self, state: dict[str, int]) -> None:
        done = f"Done loading RDB, keys loaded: {self.last_load_keys_loaded}, keys expired: {self.last_load_keys_expired}"
        if state["empty"]:
            done += f", empty keys skipped: {state['empty']}"
        self.server.log("notice", done + ".")

    def _handle(self, record: Any, state: dict[str, int], allow_duplicates: bool, databases: int,
                parser: RdbParser) -> None:
        if type(record) is Loaded:
            self.last_load_keys_loaded += record.keys
            self.last_load_keys_expired += record.expired
        elif type(record) is KeyRecord:
            self._apply(record, state["now"], allow_duplicates, state)
        elif type(record) is SelectDb:
            if record.index >= databases:
                raise RdbError(f"FATAL: Data file was created with a Redis server configured to handle more than "
                               f"{databases} databases. Exiting\n")
            self._fast_target(parser, record.index, state)
        elif type(record) is Aux:
            self._aux(record)
        elif type(record) is Function:
            self._function(record, allow_duplicates)

    def load(self, allow_duplicates: bool = False) -> bool:
        """rdbLoad of ``dir/dbfilename`` in one go (DEBUG RELOAD); False (logged) on failure."""
        server = self.server
        try:
            with open(self.rdb_path(), "rb") as f:
                buf = f.read()
        except OSError as e:
            server.log("warning", f"Fatal error: can't open the RDB file {server.config['dbfilename']} for reading: "
                       f"{e.strerror}")
            return False
        state = self._begin_load(len(buf))
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.load_records(buf, state, allow_duplicates)
            return True
        except RdbError as e:
            server.log("warning", e.message)
            return False
        finally:
            if gc_was_enabled:
                gc.enable()
            self._end_load(state)

    def load_records(self, buf: bytes, state: dict[str, int], allow_duplicates: bool = False) -> int:
        """Apply a whole RDB file held in ``buf`` (between ``_begin_load`` and ``_end_load``);
        returns the offset after its trailer.  Raises RdbError."""
        return run_to_end(self.load_steps(self._parser(buf), state, allow_duplicates))

    def load_steps(self, parser: RdbParser, state: dict[str, int],
                   allow_duplicates: bool = False) -> Generator[int, None, int]:
        """Apply the file ``parser`` walks, yielding its offset about every 20 ms (the
        caller serves clients then: ``-LOADING``); returns the offset after its trailer.
        ``key-load-delay`` sleeps that many µs per key (a test knob, as in Redis).
        Raises RdbError."""
        server = self.server
        databases = len(server.keyspace.dbs)
        handle = self._handle
        delay = server.config["key-load-delay"]
        slice_start = time.monotonic()
        count = 0
        if delay <= 0:
            self._fast_target(parser, 0, state)
        for record in parser.records():
            handle(record, state, allow_duplicates, databases, parser)
            count += 256 if type(record) is Loaded else 1  # (a Loaded stands for up to 1024 keys)
            if delay > 0:
                parser.fast = None  # key-load-delay: one key at a time
                time.sleep(delay / 1_000_000)
            if not count & 255 and time.monotonic() - slice_start > _YIELD_EVERY_S:
                yield parser.pos
                slice_start = time.monotonic()
        if parser.checksum_disabled:
            server.log("notice", "RDB file was saved with checksum disabled: no check performed.")
        self._log_done(state)
        return parser.pos

    async def load_at_startup(self) -> bool:
        """loadDataFromDisk for RDB: False means exit with code 1 (the reason is logged).

        Runs in slices of ~20 ms so clients connected meanwhile get ``-LOADING`` and INFO
        shows ``loading:1``.  A shutdown requested while loading stops it (nothing is saved)."""
        server = self.server
        if server.config["appendonly"]:  # the AOF is the dataset; dump.rdb is not read
            try:
                return await server.aof.load_at_startup()  # type: ignore[attr-defined]
            except OSError as e:
                server.log("warning", f"Can't open or create append-only dir {server.config['appenddirname']}: "
                           f"{e.strerror}")
                return False
        started = time.monotonic()
        try:
            with open(self.rdb_path(), "rb") as f:
                buf = f.read()
        except FileNotFoundError:
            return True
        except OSError as e:
            server.log("warning", f"Fatal error: can't open the RDB file {server.config['dbfilename']} for reading: "
                       f"{e.strerror}")
            server.log("warning", f"Fatal error loading the DB: {e.strerror}. Exiting.")
            return False
        state = self._begin_load(len(buf))
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            try:
                parser = self._parser(buf)
            except RdbError as e:
                server.log("warning", e.message)
                server.log("warning", f"Fatal error loading the DB: {os.strerror(errno.EINVAL)}. Exiting.")
                return False
            if not await self.serve_while(self.load_steps(parser, state)):
                return True  # a shutdown was requested while loading
            self.loading_loaded_bytes = len(buf)
            server.log("notice", f"DB loaded from disk: {time.monotonic() - started:.3f} seconds")
            return True
        except RdbError as e:
            if e.short_read:
                server.log("warning", "Short read or OOM loading DB. Unrecoverable error, aborting now.")
                server.log("warning", f"Internal error in RDB reading offset {e.offset}, function at rdb.py -> "
                           "Unexpected EOF reading RDB file")
            else:
                server.log("warning", e.message)
            server.log("warning", "Terminating server after rdb file reading failure.")
            return False
        finally:
            if gc_was_enabled:
                gc.enable()
            self._end_load(state)

    async def serve_while(self, steps: Generator[int, None, Any], base: int = 0) -> bool:
        """Run a loading generator, letting the event loop serve clients (``-LOADING``)
        at each of its yields (``base`` + the offset it yields is the progress INFO shows).
        False when a shutdown was requested meanwhile: the load stops there."""
        server = self.server
        while True:
            try:
                offset = next(steps)
            except StopIteration:
                return True
            self.loading_loaded_bytes = base + offset
            await asyncio.sleep(0)
            if server.shutdown_event is not None and server.shutdown_event.is_set():
                steps.close()
                return False

    # -- DEBUG RELOAD ---------------------------------------------------------------------------------

    def debug_reload(self, client: Any, merge: bool, flush: bool, save: bool) -> str | None:
        """DEBUG RELOAD: None on success, else the error reply text."""
        from dumpling.commands.keys import flush_db

        server = self.server
        if save and not self.write_rdb():
            return ""
        if save:
            server.keyspace.dirty = 0
            server.last_save = int(time.time())
            self.bgsave_ok = True
        if flush:
            for db in server.keyspace.dbs:
                flush_db(client, db)
            server.keyspace.dirty = 0 if save else server.keyspace.dirty
            if self.function_flusher is not None:
                self.function_flusher()
        if not self.load(allow_duplicates=merge):
            return "Error trying to load the RDB dump, check server logs."
        server.log("notice", "DB reloaded by DEBUG RELOAD")
        return None


T = TypeVar("T")


def run_to_end(steps: Generator[Any, None, T]) -> T:
    """Drive a loading generator without serving anyone (DEBUG RELOAD, DEBUG LOADAOF)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as e:  # leaving a stray temp file is not worth failing for, but say so
        sys.stderr.write(f"could not remove {path}: {e.strerror}\n")


def setup(server: Server) -> Snapshots:
    from dumpling.persistence.aof import AppendOnly
    from dumpling.persistence.propagation import Propagator

    snapshots = Snapshots(server)
    server.snapshots = snapshots  # type: ignore[attr-defined]
    propagator = Propagator(server)
    server.propagator = propagator  # type: ignore[attr-defined]
    aof = AppendOnly(server, snapshots, propagator)
    server.aof = aof  # type: ignore[attr-defined]
    server.cron_hooks.append(aof.cron)
    server.before_shutdown.insert(0, aof.before_shutdown)
    server.config.listeners.append(aof.config_changed)
    server.startup_tasks.append(snapshots.load_at_startup)
    return snapshots
