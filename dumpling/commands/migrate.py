"""MIGRATE: move keys to another Redis-compatible server with one pipelined batch of
AUTH / SELECT / RESTORE (RESTORE-ASKING in cluster mode), Redis's ``migrateCommand``
(spec dump-restore.md §9).

Flow: options and numbers are parsed, the keys looked up (none: ``+NOKEY``), every
payload built with DUMP's encoder (``dump_value``: ``dump-rdb-version``, raised when a
value needs a newer version), then the exchange with the target runs on the event loop
while the client waits (``dispatch.Blocked`` with no keys): with an idle cached
connection the handler writes the batch and a reader callback collects the replies
(``ReplyWatch``), otherwise an asyncio task does both; the loop keeps serving everyone
else.  Meanwhile the migrated keys are *locked*: a command of another
client that would write one of them is suspended by ``server.key_gate`` and re-run
from the top when the migration ends (so it sees the key gone, or gets its ASK), as
if MIGRATE had been atomic the way it is in Redis; reads go on.

Redis's details kept: relative TTLs (>= 1 ms, keys expired meanwhile skipped), REPLACE,
AUTH / AUTH2 on every call, SELECT only when the cached connection's db differs; the
first target error comes back as ``ERR Target instance replied with error: ...`` and
resets the cached db; only acknowledged keys are deleted (unless COPY), each with a
``del`` event; ``IOERR error or timeout {connecting to the client | writing to target
instance | reading to target instance}``; one retry on a fresh connection when nothing
was read and the failure was not a timeout.  Connections are cached per literal
``host:port`` (at most 64, a random one closed when full, closed after 10 s idle; INFO
``migrate_cached_sockets``).  A refused connect is reported the way Redis's
non-blocking connect reports it: as a write failure, after the retry; any other connect
failure (no such host, unreachable, timeout) is ``connecting to the client``.

Payloads are written at ``dump-rdb-version`` (default 10, what Redis 7.0 reads); a value
that needs a newer version (hash field TTLs: 12, a stream consumer whose active-time
differs from its seen-time: 11) is written at that version, and a target that cannot
read it refuses it: MIGRATE answers ``ERR Target instance replied with error: ERR DUMP
payload version or checksum are wrong`` and keeps the key, exactly like Redis 7.4 -> 7.2.

Inside MULTI/EXEC the client cannot be suspended halfway through the transaction, so
there MIGRATE runs synchronously with blocking socket I/O bounded by its timeout, exactly
like Redis does everywhere (the event loop waits for at most the timeout per step).
The same coroutine drives both modes; the synchronous one never suspends.

Must not: touch sockets outside this module, or wait on the target in the handler.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

import hiredis

from dumpling.commands.common import to_int
from dumpling.commands.dump import dump_writer
from dumpling.commands.registry import command
from dumpling.dispatch import Blocked
from dumpling.errors import NOT_INTEGER, SYNTAX, CommandError
from dumpling.payload import bulk, encode_payload
from dumpling.persistence.propagation import also_propagate
from dumpling.protocol import OK, ErrorReply, Status, encode_request

if TYPE_CHECKING:
    from dumpling.dispatch import Server

SOCKET_CACHE_ITEMS = 64
SOCKET_CACHE_TTL = 10  # seconds
WRITE_CHUNK = 64 * 1024
READ_CHUNK = 64 * 1024
NOKEY = Status("NOKEY")
IOERR_CONNECT = ErrorReply("IOERR error or timeout connecting to the client")
IOERR_WRITE = ErrorReply("IOERR error or timeout writing to target instance")
IOERR_READ = ErrorReply("IOERR error or timeout reading to target instance")
# What CLIENT UNBLOCK makes a command that waited for a migrated key answer: it never ran.
GATE_UNBLOCKED = ErrorReply("UNBLOCKED the command waited for a MIGRATE of its keys and was not executed")
KEYS_NEEDS_EMPTY_KEY = "When using MIGRATE KEYS option, the key argument must be set to the empty string"
REDACTED = b"(redacted)"


class ConnectFailed(Exception):
    """Connect timed out or the host did not resolve: ``IOERR ... connecting to the client``."""


# ----------------------------------------------------------------------------- arguments


@dataclass(slots=True)
class MigrateArgs:
    host: str
    port: int
    name: str  # the cache key: the literal "host:port"
    db: int
    timeout: float  # seconds
    copy: bool = False
    replace: bool = False
    auth: list[bytes] | None = None  # [password] or [username, password]
    keys: list[bytes] = field(default_factory=list)


def _atoi(arg: bytes) -> int:
    digits = b""
    text = arg.strip()
    sign = -1 if text[:1] == b"-" else 1
    for ch in text.lstrip(b"+-"):
        if not 48 <= ch <= 57:
            break
        digits += bytes((ch,))
    return sign * int(digits) if digits else 0


def parse_args(argv: list[bytes]) -> MigrateArgs:
    """Options from argv[6] on, then timeout and db, with Redis's texts and order."""
    copy = replace = False
    auth: list[bytes] | None = None
    keys = [argv[3]]
    j = 6
    n = len(argv)
    while j < n:
        word = argv[j].lower()
        more = n - 1 - j
        if word == b"copy":
            copy = True
        elif word == b"replace":
            replace = True
        elif word == b"auth":
            if more < 1:
                raise CommandError(SYNTAX)
            auth = [argv[j + 1]]
            argv[j + 1] = REDACTED  # MONITOR and SLOWLOG see "(redacted)", as in Redis 7
            j += 1
        elif word == b"auth2":
            if more < 2:
                raise CommandError(SYNTAX)
            auth = [argv[j + 1], argv[j + 2]]
            argv[j + 1] = argv[j + 2] = REDACTED
            j += 2
        elif word == b"keys":
            if argv[3]:
                raise CommandError(KEYS_NEEDS_EMPTY_KEY)
            keys = argv[j + 1 :]
            break
        else:
            raise CommandError(SYNTAX)
        j += 1
    timeout_ms = to_int(argv[5], NOT_INTEGER)
    db = to_int(argv[4], NOT_INTEGER)
    host = argv[1].decode("utf-8", "surrogateescape")
    name = host + ":" + argv[2].decode("utf-8", "surrogateescape")
    return MigrateArgs(host, _atoi(argv[2]), name, db, (timeout_ms if timeout_ms > 0 else 1000) / 1000,
                       copy, replace, auth, keys)


def migrate_keys(argv: list[bytes]) -> list[int]:
    """migrateGetKeys: argv[3], or everything after KEYS (skipping AUTH/AUTH2 values before it)."""
    skips = {b"copy": 0, b"replace": 0, b"auth": 1, b"auth2": 2}
    i = 6
    while i < len(argv):
        word = argv[i].lower()
        if word == b"keys":
            if argv[3]:
                return []
            return list(range(i + 1, len(argv)))
        i += skips.get(word, 0) + 1
    return [3]


# ----------------------------------------------------------------------------- connections


class MigrateConnection:
    """One cached connection to a target, and the db it last SELECTed (-1: unknown)."""

    __slots__ = ("sock", "last_db", "last_use", "reader")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last_db = -1
        self.last_use = time.monotonic()
        self.reader = hiredis.Reader()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError as e:  # already gone; nothing else to release
            del e


class MigrateCache:
    """``server.migrate_cache``: cached target connections, per-target turns, and the key locks."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conns: dict[str, MigrateConnection] = {}
        self.busy: set[str] = set()  # targets with an exchange in flight
        self.turns: dict[str, deque[asyncio.Future[None]]] = {}
        # the keys of each migration in flight, with their db index (a set each: made and
        # dropped whole, where a count per key cost a tuple and two dict updates a key)
        self.locks: list[tuple[int, set[bytes]]] = []
        self.waiters: list[tuple[Any, list[bytes], Blocked]] = []
        self.retired: list[list[Any]] = []  # values of finished migrations, not yet freed
        self._last_cron = 0.0

    def size(self) -> int:
        return len(self.conns)

    # -- connections ------------------------------------------------------------------

    def take(self, name: str) -> MigrateConnection | None:
        conn = self.conns.get(name)
        if conn is not None:
            conn.last_use = time.monotonic()
        return conn

    def store(self, name: str, conn: MigrateConnection) -> None:
        if len(self.conns) >= SOCKET_CACHE_ITEMS:
            idle = [n for n in self.conns if n not in self.busy]
            if idle:
                self.drop(random.choice(idle))
        self.conns[name] = conn

    def drop(self, name: str) -> None:
        conn = self.conns.pop(name, None)
        if conn is not None:
            conn.close()

    async def acquire(self, name: str) -> None:
        """Wait for our turn on ``name`` (one exchange per target at a time, FIFO)."""
        if name not in self.busy:
            self.busy.add(name)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.turns.setdefault(name, deque()).append(waiter)
        await waiter  # ownership is handed over by release()

    def release(self, name: str) -> None:
        queue = self.turns.get(name)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.turns.pop(name, None)
        self.busy.discard(name)

    def retire(self, values: list[Any]) -> None:
        """Hold a finished migration's values (the moved keys' last references) until
        ``free_retired``: the next exchange calls it once its requests are sent, so the
        deallocations run while the target works rather than before this MIGRATE's reply;
        the cron frees what no later exchange did."""
        self.retired.append(values)

    def free_retired(self) -> None:
        if self.retired:
            self.retired = []

    def cron(self) -> None:
        """Free retired values; migrateCloseTimedoutSockets, once a second."""
        self.free_retired()
        now = time.monotonic()
        if now - self._last_cron < 1:
            return
        self._last_cron = now
        for name, conn in list(self.conns.items()):
            if name not in self.busy and now - conn.last_use > SOCKET_CACHE_TTL:
                self.drop(name)

    # -- key locks ----------------------------------------------------------------------

    def lock(self, db_index: int, keys: list[bytes]) -> tuple[int, set[bytes]]:
        """Lock ``keys`` of database ``db_index``; the token ``unlock`` takes."""
        token = (db_index, set(keys))
        self.locks.append(token)
        self.server.key_gate = self.gate
        return token

    def unlock(self, token: tuple[int, set[bytes]]) -> None:
        locks = self.locks
        for i, held in enumerate(locks):
            if held is token:
                del locks[i]
                break
        if not locks:
            self.server.key_gate = None

    def gate(self, client: Any, cmd: Any, argv: list[bytes]) -> bool:
        """Suspend ``client`` if ``cmd`` (or, for EXEC, a queued command) writes a locked key."""
        if cmd.is_readonly:
            return False
        queued = client.multi if cmd.name == "exec" and client.multi else ((cmd, argv),)
        db_index = client.db.index
        locked = [keys for index, keys in self.locks if index == db_index]
        for qcmd, qargv in queued:
            if qcmd.name == "swapdb":  # the migration deletes acknowledged keys from its Database object
                self._suspend(client, cmd, argv)
                return True
            if qcmd.is_readonly or not (qcmd.key_specs or qcmd.movable):
                continue
            try:
                positions = qcmd.key_indices(qargv)
            except ValueError:
                continue
            for pos in positions:
                if pos < len(qargv) and any(qargv[pos] in keys for keys in locked):
                    self._suspend(client, cmd, argv)
                    return True
        return False

    def _suspend(self, client: Any, cmd: Any, argv: list[bytes]) -> None:
        server = self.server
        cluster = server.cluster
        if cluster is not None and cluster.last_asking_client is client:
            client.asking = True  # the routing check will run again
        if client.skip_this and client.reply_mode == 0:
            client.reply_mode = 2  # CLIENT REPLY SKIP applies to the re-run
        blocked = Blocked([], 0, _never, GATE_UNBLOCKED)
        server.block(client, blocked, cmd)
        self.waiters.append((client, argv, blocked))

    def resume_waiters(self) -> None:
        """Re-run, from the top of dispatch, the commands suspended on keys now unlocked."""
        if not self.waiters:
            return
        waiters, self.waiters = self.waiters, []
        self.server.rerun_held(waiters)


def _never() -> None:
    return None


# ----------------------------------------------------------------------------- I/O drivers


@contextmanager
def _connecting(sock: socket.socket) -> Iterator[None]:
    """A connect attempt's failures as MIGRATE reports them: a refused connection as it is,
    a timeout or any other error as ``ConnectFailed``; the socket is closed either way."""
    try:
        yield
    except TimeoutError:
        sock.close()
        raise ConnectFailed("timeout") from None
    except ConnectionRefusedError:
        sock.close()
        raise
    except OSError as e:
        sock.close()
        raise ConnectFailed(str(e)) from None


class AsyncIO:
    """Non-blocking sockets on the event loop: the normal mode."""

    async def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        loop = asyncio.get_running_loop()
        port = _service_port(host, port)
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError) as e:
            raise ConnectFailed(str(e)) from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        with _connecting(sock):
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    async def send(self, sock: socket.socket, data: bytes | memoryview, timeout: float) -> None:
        view = memoryview(data)
        try:
            sent = sock.send(view)  # usually the whole batch fits in the socket buffer: no waiting
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent == len(view):
            return
        view = view[sent:]
        loop = asyncio.get_running_loop()
        for start in range(0, len(view), WRITE_CHUNK):
            async with asyncio.timeout(timeout):
                await loop.sock_sendall(sock, view[start : start + WRITE_CHUNK])

    async def recv(self, sock: socket.socket, timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            return await loop.sock_recv(sock, READ_CHUNK)


class BlockingIO:
    """Blocking socket calls bounded by the timeout (inside EXEC); never suspends."""

    async def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        port = _service_port(host, port)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:
            raise ConnectFailed(str(e)) from None
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        with _connecting(sock):
            sock.connect(address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock

    async def send(self, sock: socket.socket, data: bytes | memoryview, timeout: float) -> None:
        view = memoryview(data)
        sock.settimeout(timeout)
        try:
            for start in range(0, len(view), WRITE_CHUNK):
                sock.sendall(view[start : start + WRITE_CHUNK])
        finally:
            sock.setblocking(False)

    async def recv(self, sock: socket.socket, timeout: float) -> bytes:
        sock.settimeout(timeout)
        try:
            return sock.recv(READ_CHUNK)
        finally:
            sock.setblocking(False)


def _service_port(host: str, port: int) -> int:
    """The port Redis's connect ends up using: ``atoi`` printed back as the service, so a
    negative one does not resolve and anything above 65535 wraps (as ``htons`` does)."""
    if port < 0 or not host:
        raise ConnectFailed(f"cannot resolve {host}:{port}")
    return port & 0xFFFF


def run_to_completion(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never suspends (BlockingIO) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a synchronous MIGRATE tried to suspend")


# ----------------------------------------------------------------------------- one MIGRATE


def restore_requests_py(command: bytes, keys: list[bytes], values: list[Any], ttls: list[int] | None,
                        replace: bool, dump: Callable[[Any], bytes]) -> bytes:
    """The reference of ``_speedups.restore_requests``: ``command key ttl payload [REPLACE]``
    for every key, one RESP request each, ``dump(value)`` the payload, ``ttls`` None for all 0."""
    suffix = [b"REPLACE"] if replace else []
    return b"".join(encode_request([command, key, b"%d" % ttl, dump(value), *suffix])
                    for key, value, ttl in zip(keys, values, repeat(0) if ttls is None else ttls, strict=False))


def restore_requests(server: Server, command: bytes, keys: list[bytes], values: list[Any], ttls: list[int] | None,
                     replace: bool) -> bytes:
    """MIGRATE's RESTORE requests, the payloads DUMP's: written in one C pass when the payload
    speedups are in use (no request or argument list per key), else by the reference."""
    version, options = dump_writer(server)
    speedups = bulk.speedups
    if speedups is not None:
        body = speedups.restore_requests(command, keys, values, ttls, replace, version, options,
                                         options.rdbcompression, encode_payload)
        if body is not None:
            return body
    return restore_requests_py(command, keys, values, ttls, replace,
                               lambda value: encode_payload(value, version, options))


class Migration:
    """One MIGRATE call: the payloads built at call time, then the exchange with the target."""

    def __init__(self, c: Any, args: MigrateArgs, keys: list[bytes], values: list[Any]) -> None:
        self.client = c
        self.server: Server = c.server
        self.cache: MigrateCache = c.server.migrate_cache
        self.db = db = c.db
        self.args = args
        self.now = now = c.keyspace.now  # the command time snapshot: TTLs are relative to it
        self.blocked: Blocked | None = None
        ttls: list[int] | None = None
        expires = db.expires
        if expires and not expires.keys().isdisjoint(keys):
            ttls = []
            kept_keys, kept_values = [], []
            for key, value in zip(keys, values, strict=True):
                ttl = 0
                when = expires.get(key)
                if when is not None:
                    ttl = when - now
                    if ttl < 0:
                        continue  # expired since the lookup: skipped
                    ttl = max(ttl, 1)
                ttls.append(ttl)
                kept_keys.append(key)
                kept_values.append(value)
            keys, values = kept_keys, kept_values
        self.keys = keys
        # The moved values are held until the next exchange has sent its requests (or the cron):
        # their deallocation (a built hash is dozens of objects) then overlaps the target's work
        # instead of delaying this reply (MigrateCache.retire).
        self.values = values
        command_name = b"RESTORE-ASKING" if self.server.cluster is not None else b"RESTORE"
        self.body = restore_requests(self.server, command_name, keys, values, ttls, args.replace)
        self.owned = False  # start() took the target's turn for the task
        # start()'s write: (connection, head + body, bytes of it written, the error that stopped it)
        self.written: tuple[MigrateConnection, bytes, int, OSError | None] | None = None

    def _head(self, conn: MigrateConnection) -> bytes:
        """AUTH (every time) and SELECT (when the connection's db differs) before the requests."""
        args = self.args
        head = b""
        if args.auth is not None:
            head += encode_request([b"AUTH", *args.auth])
        if conn.last_db != args.db:
            head += encode_request([b"SELECT", b"%d" % args.db])
        return head

    def _write_now(self, conn: MigrateConnection) -> None:
        """Write the requests to the idle cached connection from the handler, as much as the
        socket takes (``_talk`` writes the rest, or reports the error): the target starts on
        them an event-loop pass earlier.  Then free the values earlier migrations moved,
        while the target works."""
        wire = self._head(conn) + self.body
        error: OSError | None = None
        try:
            written = conn.sock.send(wire)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError as e:  # _talk reports it (and retries) as a failed write
            written, error = 0, e
        self.written = (conn, wire, written, error)
        self.cache.free_retired()

    # -- modes ----------------------------------------------------------------------------

    def run_sync(self) -> Any:
        """Inside MULTI/EXEC: the whole exchange now, with blocking I/O; errors raised as errors."""
        temporary = self.args.name in self.cache.busy  # an asynchronous MIGRATE owns the cached socket
        reply = run_to_completion(self.exchange(BlockingIO(), use_cache=not temporary))
        self.cache.retire(self.values)
        if isinstance(reply, ErrorReply):
            raise CommandError("-" + reply.message)
        return reply

    def start(self) -> Blocked:
        """Lock the keys, start the exchange as a task, and suspend the client until it ends.
        With an idle cached connection to the target, the requests are written here
        (``_write_now``) and the task takes over from there."""
        cache = self.cache
        lock = cache.lock(self.db.index, self.keys)
        self.blocked = Blocked([], 0, _never, IOERR_READ)
        name = self.args.name
        conn = None if name in cache.busy else cache.take(name)
        loop = self.server.loop
        assert loop is not None
        if conn is not None:
            cache.busy.add(name)  # this migration's turn from now: its task does not queue for it
            self.owned = True
            self._write_now(conn)
            assert self.written is not None
            if self.written[3] is None and self.written[2] == len(self.written[1]):
                ReplyWatch(self, conn, lock, loop)
                return self.blocked
        loop.create_task(self._run(lock))
        return self.blocked

    async def _run(self, lock: tuple[int, set[bytes]], may_retry: bool = True) -> None:
        cache = self.cache
        name = self.args.name
        try:
            if not self.owned:
                await cache.acquire(name)
            try:
                reply = await self.exchange(AsyncIO(), use_cache=True, may_retry=may_retry)
            finally:
                cache.release(name)
        except Exception as e:  # a bug must cost this MIGRATE its reply, never the server
            reply = self._internal_error(e)
        finally:
            cache.unlock(lock)
            cache.retire(self.values)
        self._answer(reply)

    def _internal_error(self, e: Exception) -> ErrorReply:
        self.server.log("warning", f"MIGRATE to {self.args.name} failed unexpectedly: {type(e).__name__}: {e}")
        return ErrorReply(f"ERR internal error in 'migrate': {type(e).__name__}")

    def _answer(self, reply: Any) -> None:
        """The exchange is over (the keys unlocked): answer the client and wake what waited."""
        server = self.server
        client = self.client
        if isinstance(reply, ErrorReply):
            server.count_error(reply.message.split(" ", 1)[0])
            if self.blocked is not None and self.blocked.cmd is not None:
                self.blocked.cmd.failed_calls += 1
        if client.blocked is self.blocked:
            server.unblock(client, reply)
        if server.keyspace.ready_keys:
            server.serve_ready_keys()  # deleted collections wake XREADGROUP waiters, as after any command
        self.cache.resume_waiters()

    # -- the exchange (Redis's migrateCommand from try_again on) ---------------------------

    async def exchange(self, io: AsyncIO | BlockingIO, use_cache: bool, may_retry: bool = True) -> Any:
        args = self.args
        cache = self.cache
        timeout = args.timeout
        while True:
            conn = cache.take(args.name) if use_cache else None
            if conn is None:
                try:
                    sock = await io.connect(args.host, args.port, timeout)
                except ConnectFailed:
                    return IOERR_CONNECT
                except OSError:
                    # Redis connects without blocking and learns of a refusal on the first write.
                    if may_retry:
                        may_retry = False
                        continue
                    return IOERR_WRITE
                conn = MigrateConnection(sock)
                if use_cache:
                    cache.store(args.name, conn)
            outcome = await self._talk(io, conn, may_retry)
            if not use_cache and conn is not cache.conns.get(args.name):
                conn.close()
            if outcome is _RETRY:
                may_retry = False
                continue
            return outcome

    async def _talk(self, io: AsyncIO | BlockingIO, conn: MigrateConnection, may_retry: bool) -> Any:
        args = self.args
        timeout = args.timeout
        select = conn.last_db != args.db
        written, self.written = self.written, None  # a retry writes everything again
        try:
            if written is None or written[0] is not conn:
                await io.send(conn.sock, self._head(conn) + self.body, timeout)
            elif written[3] is not None:
                raise written[3]
            elif written[2] < len(written[1]):
                await io.send(conn.sock, memoryview(written[1])[written[2]:], timeout)
        except (OSError, TimeoutError) as e:
            return self._socket_error(conn, may_retry, timed_out=isinstance(e, TimeoutError), writing=True)
        self.cache.free_retired()  # while the target restores

        async def read() -> Any:
            return await _read_reply(io, conn, timeout)

        # Every reply first (those a read brought are taken without a round through the event
        # loop), then the deletions in one pass.
        got: list[Any] = []
        wanted = (args.auth is not None) + select + len(self.keys)
        gets = conn.reader.gets
        socket_error = timed_out = False
        try:
            while len(got) < wanted:
                reply = gets()
                got.append(await read() if reply is False else reply)
        except (OSError, TimeoutError, hiredis.ProtocolError) as e:
            socket_error = True
            timed_out = isinstance(e, TimeoutError)
        return self._conclude(conn, select, got, socket_error, timed_out, may_retry)

    def _conclude(self, conn: MigrateConnection, select: bool, got: list[Any], socket_error: bool,
                  timed_out: bool, may_retry: bool) -> Any:
        """The replies read (AUTH's, SELECT's, then one a key; fewer after a socket error):
        delete the acknowledged keys and pick MIGRATE's reply, or ``_RETRY``."""
        args = self.args
        heads = (args.auth is not None) + select
        if len(got) < heads:
            return self._socket_error(conn, may_retry, timed_out=timed_out, writing=False)
        errors = [str(reply) for reply in got[:heads] if isinstance(reply, hiredis.ReplyError)]
        error_from_target: str | None = errors[0] if errors else None
        keys = self.keys
        replies = got[heads:]
        failed = [reply for reply in replies if isinstance(reply, hiredis.ReplyError)]
        if error_from_target is None and failed:
            error_from_target = str(failed[0])
        if not errors and not args.copy:
            acked = keys if len(replies) == len(keys) and not failed else [
                key for key, reply in zip(keys, replies, strict=False) if not isinstance(reply, hiredis.ReplyError)]
            self._delete(acked)
        if error_from_target is not None:
            conn.last_db = -1
        if error_from_target is None and socket_error and not replies and may_retry and not timed_out:
            self._close(conn)
            return _RETRY
        if socket_error:
            self._close(conn)
        if error_from_target is not None:
            return ErrorReply(f"ERR Target instance replied with error: {error_from_target}")
        if socket_error:
            return IOERR_READ
        conn.last_db = args.db
        return OK

    def _delete(self, keys: list[bytes]) -> None:
        """Delete the keys the target acknowledged: a ``del`` event each, one DEL of them all
        propagated, as Redis rewrites MIGRATE.  A server deletion (``dbDelete``): with
        lazyfree-lazy-server-del a big value counts as freed lazily, as Redis's would."""
        db, ks = self.db, self.client.keyspace
        delete, changed = db.delete, ks.changed
        lazy = self.server.config["lazyfree-lazy-server-del"]
        moved = []
        for key in keys:
            value = db.data.get(key) if lazy else None
            if delete(key):
                if value is not None:
                    ks.freed_lazily(value)
                changed(db, key, b"del", "g")
                moved.append(key)
        if moved:
            also_propagate(self.server, db.index, [b"DEL", *moved], covers=moved)

    def _close(self, conn: MigrateConnection) -> None:
        if conn is self.cache.conns.get(self.args.name):
            self.cache.drop(self.args.name)
        else:
            conn.close()

    def _socket_error(self, conn: MigrateConnection, may_retry: bool, *, timed_out: bool, writing: bool) -> Any:
        """Redis's socket_err label: drop the socket; retry once unless it was a timeout."""
        self._close(conn)
        if may_retry and not timed_out:
            return _RETRY
        return IOERR_WRITE if writing else IOERR_READ


_RETRY = object()


class ReplyWatch:
    """The replies to a batch the handler wrote whole into an idle cached connection, read by
    a reader callback on the event loop: no task, no future or timeout scope a read, the
    socket polled only while the replies are due (the common MIGRATE is one read, one call).
    Redis's read timeout applies to each read, as in ``_talk``; what is not the happy end (a
    socket error, end of file, a timeout) is concluded by ``Migration._conclude`` as there,
    and the one retry (nothing read, no timeout) runs as ``_talk``'s task on a new connection."""

    __slots__ = ("migration", "conn", "lock", "loop", "fd", "select", "wanted", "got", "timer")

    def __init__(self, migration: Migration, conn: MigrateConnection, lock: tuple[int, set[bytes]],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.migration = migration
        self.conn = conn
        self.lock = lock
        self.loop = loop
        migration.written = None  # a retry writes everything again
        args = migration.args
        self.select = conn.last_db != args.db  # what _head wrote
        self.wanted = (args.auth is not None) + self.select + len(migration.keys)
        self.got: list[Any] = []
        self.fd = conn.sock.fileno()
        loop.add_reader(self.fd, self.readable)
        self.timer = loop.call_later(args.timeout, self.timed_out)

    def readable(self) -> None:
        try:
            data = self.conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.end(socket_error=True)
            return
        if not data:  # the target closed the connection
            self.end(socket_error=True)
            return
        reader = self.conn.reader
        reader.feed(data)
        got, wanted = self.got, self.wanted
        try:
            while len(got) < wanted:
                item = reader.gets()
                if item is False:
                    break
                got.append(item)
        except hiredis.ProtocolError:
            self.end(socket_error=True)
            return
        if len(got) == wanted:
            self.end()
        else:  # more to come: the timeout runs from this read
            self.timer.cancel()
            self.timer = self.loop.call_later(self.migration.args.timeout, self.timed_out)

    def timed_out(self) -> None:
        self.end(socket_error=True, timed_out=True)

    def end(self, socket_error: bool = False, timed_out: bool = False) -> None:
        self.loop.remove_reader(self.fd)
        self.timer.cancel()
        migration = self.migration
        cache = migration.cache
        try:
            reply = migration._conclude(self.conn, self.select, self.got, socket_error, timed_out, True)
        except Exception as e:  # a bug must cost this MIGRATE its reply, never the server
            reply = migration._internal_error(e)
        if reply is _RETRY:  # the turn stays ours: the task retries on a fresh connection
            self.loop.create_task(migration._run(self.lock, may_retry=False))
            return
        cache.release(migration.args.name)
        cache.unlock(self.lock)
        cache.retire(migration.values)
        migration._answer(reply)


async def _read_reply(io: AsyncIO | BlockingIO, conn: MigrateConnection, timeout: float) -> Any:
    reader = conn.reader
    while True:
        item = reader.gets()
        if item is not False:
            return item
        data = await io.recv(conn.sock, timeout)
        if not data:
            raise ConnectionResetError("target closed the connection")
        reader.feed(data)


# ----------------------------------------------------------------------------- the command

_MIGRATE_ARGS = (
    "host port:integer key-selector=(key | empty-string='') destination-db:integer timeout:integer [COPY@3.0.0] "
    "[REPLACE@3.0.0] [authentication=(AUTH auth/password@4.0.7 | AUTH2 (username password)@6.0.0)] "
    "[KEYS keys:key/key...@3.0.6]"
)


@command("migrate", -6, "write", (3, 3, 1), group="generic", since="2.6.0", args=_MIGRATE_ARGS,
         acl="keyspace dangerous", getkeys=migrate_keys, tips="nondeterministic_output", events="del",
         key_specs=[
             {"flags": ["RW", "access", "delete"], "begin_search": {"type": "index", "spec": {"index": 3}},
              "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
             {"flags": ["RW", "access", "delete", "incomplete"],
              "begin_search": {"type": "keyword", "spec": {"keyword": "KEYS", "startfrom": -2}},
              "find_keys": {"type": "range", "spec": {"lastkey": -1, "keystep": 1, "limit": 0}}},
         ],
         history=(("3.0.0", "Added the `COPY` and `REPLACE` options."), ("3.0.6", "Added the `KEYS` option."),
                  ("4.0.7", "Added the `AUTH` option."), ("6.0.0", "Added the `AUTH2` option.")),
         complexity="This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target "
                    "instance. See the pages of these commands for time complexity. Also an O(N) data transfer "
                    "between the two instances is performed.",
         summary="Atomically transfers a key from one Redis instance to another.")
def migrate(c: Any, argv: list[bytes]) -> Any:
    args = parse_args(argv)
    lookup = c.db.lookup_read
    keys, values = [], []
    for key in args.keys:
        value = lookup(key)
        if value is not None:
            keys.append(key)
            values.append(value)
    if not keys:
        return NOKEY
    migration = Migration(c, args, keys, values)
    server = c.server
    if server.in_exec or server.loop is None:
        return migration.run_sync()
    return migration.start()


def setup(server: Server) -> None:
    """Attach the connection cache (INFO reads ``migrate_cache.size()``) and its cron."""
    cache = MigrateCache(server)
    server.migrate_cache = cache  # type: ignore[attr-defined]
    server.cron_hooks.append(cache.cron)

