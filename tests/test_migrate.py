"""MIGRATE on dumpling: arguments and errors against Redis, what goes on the wire (seen by
a scripted fake target), the connection cache, retries, timeouts, partial
acknowledgements, and the asynchronous exchange (other clients keep being served,
writers of the migrated keys wait, readers do not; MULTI/EXEC runs it synchronously).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import hiredis
import pytest

from tests.servers import RawConnection, ServerProcess, encode_command, parse_reply, start_dumpling

Behaviour = Callable[[int, list[bytes]], "bytes | str | None"]


class FakeTarget:
    """A loopback server that records every request and answers as ``behaviour`` says:
    reply bytes, ``"close"`` (drop the connection), or None / ``"stall"`` (say nothing)."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or (lambda conn, argv: b"+OK\r\n")
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.requests: list[tuple[int, list[bytes]]] = []
        self.connections = 0
        self.open: list[socket.socket] = []
        self.trickle: tuple[int, float] | None = None  # answer in (bytes, pause) pieces
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(sock)
            threading.Thread(target=self._serve, args=(sock, self.connections), daemon=True).start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        reader = hiredis.Reader()
        with sock:
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                reader.feed(data)
                out = b""
                while (request := reader.gets()) is not False:
                    self.requests.append((index, request))
                    answer = self.behaviour(index, request)
                    if answer == "close":
                        sock.sendall(out)
                        sock.shutdown(socket.SHUT_RDWR)
                        return
                    if isinstance(answer, bytes):
                        out += answer
                if out and self.trickle is not None:
                    size, pause = self.trickle
                    for start in range(0, len(out), size):
                        time.sleep(pause)
                        sock.sendall(out[start : start + size])
                elif out:
                    sock.sendall(out)

    def commands(self) -> list[list[bytes]]:
        return [argv for _, argv in self.requests]

    def close(self) -> None:
        self._stop = True
        self.listener.close()
        for sock in self.open:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def target() -> Iterator[Callable[..., FakeTarget]]:
    made: list[FakeTarget] = []

    def make(behaviour: Behaviour | None = None) -> FakeTarget:
        fake = FakeTarget(behaviour)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()


@pytest.fixture(scope="module")
def node() -> Iterator[ServerProcess]:
    server = start_dumpling()
    yield server
    server.stop()


@pytest.fixture
def d(node: ServerProcess) -> Iterator[RawConnection]:
    with node.raw() as conn:
        conn.call("FLUSHALL")
        conn.call("CONFIG", "SET", "notify-keyspace-events", "")
        yield conn


def call(conn: RawConnection, *args: bytes | str | int) -> object:
    return parse_reply(conn.call(*args))


def snapshot(conn: RawConnection, key: bytes | str) -> tuple[object, ...]:
    """A key's type and value in a form independent of encoding and hashtable order."""
    kind = call(conn, "TYPE", key)
    if kind == b"string":
        value: object = call(conn, "GET", key)
    elif kind == b"list":
        value = call(conn, "LRANGE", key, 0, -1)
    elif kind == b"set":
        value = sorted(call(conn, "SMEMBERS", key))  # type: ignore[arg-type]
    elif kind == b"zset":
        # scores as numbers: the Redis 7.0 oracle prints %.17g, dumpling 7.4's shortest form
        flat = call(conn, "ZRANGE", key, 0, -1, "WITHSCORES")
        value = [item if i % 2 == 0 else float(item) for i, item in enumerate(flat)]  # type: ignore[arg-type]
    elif kind == b"hash":
        flat = call(conn, "HGETALL", key)
        value = sorted(zip(flat[::2], flat[1::2], strict=True))  # type: ignore[index]
    elif kind == b"stream":
        groups = call(conn, "XINFO", "GROUPS", key)
        consumers = [[c[:4] for c in call(conn, "XINFO", "CONSUMERS", key, g[1])] for g in groups]  # type: ignore
        value = (call(conn, "XRANGE", key, "-", "+"), groups, consumers)
    else:
        value = None
    return kind, value


# ----------------------------------------------------------------------------- arguments (vs Redis)


def test_argument_errors_match_redis(pair) -> None:
    pair.same("SET", "k", "v")
    port = 1  # nothing is ever contacted: every case fails (or answers NOKEY) before connecting
    for args in [
        ("MIGRATE", "127.0.0.1", port, "k", "0", "1000", "AUTH"),
        ("MIGRATE", "127.0.0.1", port, "k", "0", "1000", "AUTH2", "u"),
        ("MIGRATE", "127.0.0.1", port, "k", "0", "1000", "FOO"),
        ("MIGRATE", "127.0.0.1", port, "k", "0", "1000", "KEYS", "a"),
        ("MIGRATE", "127.0.0.1", port, "k", "x", "1000"),
        ("MIGRATE", "127.0.0.1", port, "k", "0", "x"),
        ("MIGRATE", "127.0.0.1", port, "k", "0", "1000", "COPY", "REPLACE", "FOO"),
        ("MIGRATE", "127.0.0.1", port, "nokey", "0", "1000"),
        ("MIGRATE", "127.0.0.1", port, "", "0", "1000", "KEYS"),
        ("MIGRATE", "127.0.0.1", port, "", "0", "1000", "KEYS", "a", "b", "AUTH"),
        ("MIGRATE", "127.0.0.1", port, "", "0", "1000", "COPY", "KEYS", "nokey"),
        ("MIGRATE", "127.0.0.1", port, "k", "0"),
        ("COMMAND", "GETKEYS", "MIGRATE", "h", "p", "k", "0", "1000"),
        ("COMMAND", "GETKEYS", "MIGRATE", "h", "p", "", "0", "1000", "COPY", "KEYS", "a", "b"),
        ("COMMAND", "GETKEYS", "MIGRATE", "h", "p", "", "0", "1000", "AUTH", "keys", "a", "b"),
        ("COMMAND", "GETKEYS", "MIGRATE", "h", "p", "", "0", "1000", "AUTH2", "u", "p", "KEYS", "a"),
    ]:
        pair.same(*args)


def test_connection_failures_match_redis(pair) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    pair.same("SET", "k", "v")
    for args in [
        ("MIGRATE", "127.0.0.1", port, "k", "0", "1000"),  # refused: reported as a write error after a retry
        ("MIGRATE", "nohost.invalid", port, "k", "0", "1000"),  # does not resolve: connecting
        ("MIGRATE", "127.0.0.1", "notaport", "k", "0", "1000"),  # atoi -> port 0
        ("MIGRATE", "127.0.0.1", "-5", "k", "0", "1000"),
        ("MIGRATE", "127.0.0.1", "65536", "k", "0", "1000"),  # wraps to 0
        ("MIGRATE", "", port, "k", "0", "1000"),
        ("MIGRATE", "::1", port, "k", "0", "1000"),
    ]:
        pair.same(*args)
    pair.same("GET", "k")


def _lazyfreed(conn: RawConnection) -> int:
    """INFO's lazyfreed_objects once nothing is pending (Redis's lazyfree thread counts a
    value when it has freed it)."""
    deadline = time.monotonic() + 10
    while True:
        info = conn.call("INFO", "memory").decode()
        fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
        if fields["lazyfree_pending_objects"] == "0" or time.monotonic() > deadline:
            return int(fields["lazyfreed_objects"])
        time.sleep(0.01)


@pytest.mark.parametrize("lazy", ["yes", "no"])
def test_moved_keys_are_deleted_as_server_deletions_like_redis(pair, target, lazy: str) -> None:
    """Redis deletes a moved key with dbDelete, which follows lazyfree-lazy-server-del: a big
    value is handed to the lazyfree thread and counted in INFO's lazyfreed_objects."""
    fake = target()
    fields = [item for i in range(600) for item in (f"f{i}", "v")]  # a hashtable: 600 frees
    before = {}
    try:
        pair.same("CONFIG", "SET", "lazyfree-lazy-server-del", lazy)
        for conn in (pair.ours, pair.theirs):
            before[conn] = _lazyfreed(conn)
        pair.same("HSET", "big", *fields)
        pair.same("SET", "small", "v")
        pair.same("MIGRATE", "127.0.0.1", fake.port, "", "0", "1000", "KEYS", "big", "small")
        pair.same("EXISTS", "big", "small")
        ours, theirs = (_lazyfreed(conn) - before[conn] for conn in (pair.ours, pair.theirs))
        assert ours == theirs == (1 if lazy == "yes" else 0)
    finally:
        pair.both("CONFIG", "SET", "lazyfree-lazy-server-del", "no")


# ----------------------------------------------------------------------------- on the wire


def test_wire_format_select_auth_replace(d: RawConnection, target) -> None:
    fake = target()
    d.call("SET", "a", "1")
    d.call("SET", "b", "2", "PX", "100000")
    d.call("SELECT", "0")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "", "3", "1000", "REPLACE", "AUTH2", "user", "pw",
                  "KEYS", "a", "b") == b"+OK\r\n"
    first = fake.commands()
    assert first[0] == [b"AUTH", b"user", b"pw"]
    assert first[1] == [b"SELECT", b"3"]
    assert first[2][:3] == [b"RESTORE", b"a", b"0"] and first[2][4:] == [b"REPLACE"]
    assert first[3][:2] == [b"RESTORE", b"b"] and 99_000 < int(first[3][2]) <= 100_000
    assert first[2][3].startswith(b"\x00\xc0\x01\x0a\x00")  # string "1" as an int, RDB 10 footer
    assert call(d, "EXISTS", "a", "b") == 0
    # Same target and db: the cached connection is reused, AUTH again, no SELECT.
    d.call("SET", "c", "3")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "c", "3", "1000", "AUTH", "pw") == b"+OK\r\n"
    assert fake.connections == 1
    assert fake.commands()[4] == [b"AUTH", b"pw"]
    assert fake.commands()[5][:3] == [b"RESTORE", b"c", b"0"] and len(fake.commands()) == 6
    # Another db: SELECT again.
    d.call("SET", "e", "5")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "e", "4", "1000") == b"+OK\r\n"
    assert fake.commands()[6] == [b"SELECT", b"4"]
    assert _cached(d) >= 1


def test_cluster_mode_sends_restore_asking(target) -> None:
    from tests.test_cluster import start_cluster_node, wait_state_ok

    fake = target()
    server = start_cluster_node("--cluster-node-timeout", "500")
    try:
        with server.raw() as conn:
            conn.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            wait_state_ok(conn)
            conn.call("SET", "k", "v")
            assert conn.call("MIGRATE", "127.0.0.1", fake.port, "k", "0", "1000") == b"+OK\r\n"
            assert fake.commands()[0] == [b"SELECT", b"0"]
            assert fake.commands()[1][:3] == [b"RESTORE-ASKING", b"k", b"0"]
    finally:
        server.stop()


def test_only_acknowledged_keys_are_deleted(d: RawConnection, target) -> None:
    def behaviour(conn: int, argv: list[bytes]) -> bytes:
        if argv[0] == b"RESTORE" and argv[1] == b"b":
            return b"-BUSYKEY Target key name already exists.\r\n"
        return b"+OK\r\n"

    fake = target(behaviour)
    d.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
    for key in (b"a", b"b", b"c"):
        d.call("SET", key, key)
    with RawConnection(d.sock.getpeername()[1]) as sub:
        sub.call("SUBSCRIBE", "__keyevent@0__:del")
        reply = d.call("MIGRATE", "127.0.0.1", fake.port, "", "0", "1000", "KEYS", "a", "b", "c")
        assert reply == b"-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"
        assert call(d, "EXISTS", "a") == 0 and call(d, "GET", "b") == b"b" and call(d, "EXISTS", "c") == 0
        events = [parse_reply(sub.read_reply())[2] for _ in range(2)]
        assert events == [b"a", b"c"]
    # An error resets the cached db: the next call SELECTs again.
    d.call("SET", "z", "1")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "z", "0", "1000") == b"+OK\r\n"
    assert [b"SELECT", b"0"] in fake.commands()[4:]
    assert b"errorstat_ERR" in d.call("INFO", "errorstats")


def test_copy_keeps_the_source_and_auth_error_deletes_nothing(d: RawConnection, target) -> None:
    def behaviour(conn: int, argv: list[bytes]) -> bytes:
        if argv[0] == b"AUTH":
            return b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        return b"-NOAUTH Authentication required.\r\n"

    fake = target()
    d.call("SET", "a", "1")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "a", "0", "1000", "COPY") == b"+OK\r\n"
    assert call(d, "GET", "a") == b"1"
    denied = target(behaviour)
    reply = d.call("MIGRATE", "127.0.0.1", denied.port, "a", "0", "1000", "AUTH", "bad")
    assert reply == b"-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is " \
                    b"disabled.\r\n"
    assert call(d, "GET", "a") == b"1"


def test_dead_cached_connection_is_retried_once(d: RawConnection, target) -> None:
    drops = {"left": 1}

    def behaviour(conn: int, argv: list[bytes]) -> bytes | str:
        if conn == 1 and len(fake.requests) > 2 and drops["left"]:
            drops["left"] -= 1
            return "close"  # the cached connection dies before answering the second MIGRATE
        return b"+OK\r\n"

    fake = target(behaviour)
    d.call("SET", "a", "1")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "a", "0", "1000") == b"+OK\r\n"
    d.call("SET", "b", "2")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "b", "0", "1000") == b"+OK\r\n"
    assert fake.connections == 2 and call(d, "EXISTS", "b") == 0
    assert fake.commands()[-2:] == [[b"SELECT", b"0"], fake.commands()[-1]]  # fresh connection: SELECT again


def test_batch_on_an_idle_cached_connection_is_written_from_the_handler(d: RawConnection, target) -> None:
    """With an idle cached connection the handler writes the requests itself (the task
    takes over from there): the target sees every key's RESTORE once, in order, each with the
    payload DUMP gives and its TTL, after the AUTH the call asked for."""
    fake = target()
    d.call("SET", "first", "1")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "first", "0", "1000") == b"+OK\r\n"  # caches it
    keys = [f"k{i}" for i in range(130)]
    for i, key in enumerate(keys):
        if i % 3:
            d.call("HSET", key, *[f"f{j}-{i}" for j in range(2 * (i % 7 + 1))])
        else:
            d.call("SET", key, f"value-{i}" * (i % 5 + 1), "PX", 100_000 + i)
    dumps = {key.encode(): call(d, "DUMP", key) for key in keys}
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "", "0", "1000", "REPLACE", "AUTH", "pw", "KEYS", *keys) == \
        b"+OK\r\n"
    assert fake.connections == 1
    sent = fake.commands()[2:]
    assert sent[0] == [b"AUTH", b"pw"]
    restores = sent[1:]
    assert [argv[1] for argv in restores] == [key.encode() for key in keys]
    for i, argv in enumerate(restores):
        assert argv[0] == b"RESTORE" and argv[3] == dumps[argv[1]] and argv[4:] == [b"REPLACE"]
        assert (99_000 < int(argv[2]) <= 100_000 + i) if i % 3 == 0 else argv[2] == b"0"
    assert call(d, "DBSIZE") == 0


def test_replies_in_many_reads_each_within_the_timeout(d: RawConnection, target) -> None:
    """The timeout bounds each read, as Redis's per-reply reads: replies trickling in over more
    than the timeout, never pausing that long, complete the MIGRATE (the batch written from the
    handler, its replies read by the event loop's reader callback)."""
    fake = target()
    d.call("SET", "first", "1")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "first", "0", "300") == b"+OK\r\n"  # caches it
    keys = [f"k{i}" for i in range(20)]
    for key in keys:
        d.call("SET", key, key)
    fake.trickle = (3, 0.012)  # 100 bytes of replies in 34 pieces: ~0.4 s, pauses of 12 ms
    start = time.monotonic()
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "", "0", "300", "KEYS", *keys) == b"+OK\r\n"
    assert time.monotonic() - start > 0.3  # longer than the timeout in all
    assert call(d, "DBSIZE") == 0 and fake.connections == 1


def test_batch_written_into_a_dead_cached_connection_is_retried_whole(d: RawConnection, target) -> None:
    closed = {"done": False}

    def behaviour(conn: int, argv: list[bytes]) -> bytes | str:
        if conn == 1 and argv[1:2] == [b"k0"] and not closed["done"]:
            closed["done"] = True
            return "close"  # the cached connection dies under the second MIGRATE, written by its handler
        return b"+OK\r\n"

    fake = target(behaviour)
    d.call("SET", "first", "1")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "first", "0", "1000") == b"+OK\r\n"
    keys = [f"k{i}" for i in range(100)]
    for key in keys:
        d.call("SET", key, key * 50)
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "", "0", "1000", "KEYS", *keys) == b"+OK\r\n"
    assert fake.connections == 2 and call(d, "DBSIZE") == 0
    fresh = [argv for conn, argv in fake.requests if conn == 2]
    assert fresh[0] == [b"SELECT", b"0"]
    assert [argv[1] for argv in fresh[1:]] == [key.encode() for key in keys]


def test_connection_closed_every_time_is_ioerr_reading(d: RawConnection, target) -> None:
    fake = target(lambda conn, argv: "close")
    d.call("SET", "a", "1")
    cached = _cached(d)
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "a", "0", "1000") == \
        b"-IOERR error or timeout reading to target instance\r\n"
    assert fake.connections == 2 and call(d, "GET", "a") == b"1"
    assert _cached(d) == cached  # the dead connection was dropped, not cached


def _cached(conn: RawConnection) -> int:
    info = call(conn, "INFO", "stats")
    assert isinstance(info, bytes)
    return int(info.split(b"migrate_cached_sockets:")[1].split(b"\r\n")[0])


def test_timeout_with_partial_acknowledgement(d: RawConnection, target) -> None:
    def behaviour(conn: int, argv: list[bytes]) -> bytes | None:
        if argv[0] == b"RESTORE" and argv[1] != b"a":
            return None  # never answered
        return b"+OK\r\n"

    fake = target(behaviour)
    d.call("SET", "a", "1")
    d.call("SET", "b", "2")
    start = time.monotonic()
    reply = d.call("MIGRATE", "127.0.0.1", fake.port, "", "0", "200", "KEYS", "a", "b")
    assert reply == b"-IOERR error or timeout reading to target instance\r\n"
    assert 0.15 < time.monotonic() - start  # the 200 ms timeout (no upper bound: the reply came)
    assert call(d, "EXISTS", "a") == 0 and call(d, "GET", "b") == b"2"  # a was acknowledged
    assert fake.connections == 1  # a timeout is never retried


def test_cache_holds_at_most_64_connections(d: RawConnection, target) -> None:
    fakes = [target() for _ in range(66)]
    for i, fake in enumerate(fakes):
        d.call("SET", "k", i)
        assert d.call("MIGRATE", "127.0.0.1", fake.port, "k", "0", "1000") == b"+OK\r\n"
    assert b"migrate_cached_sockets:64" in d.call("INFO", "stats")


@pytest.mark.slow
def test_idle_connections_are_closed_after_10_seconds(d: RawConnection, target) -> None:
    fake = target()
    d.call("SET", "k", "1")
    assert d.call("MIGRATE", "127.0.0.1", fake.port, "k", "0", "1000") == b"+OK\r\n"
    assert _cached(d) >= 1
    time.sleep(12)
    assert _cached(d) == 0


def test_auth_arguments_are_redacted(d: RawConnection, node: ServerProcess, target) -> None:
    fake = target()
    d.call("SET", "k", "1")
    with node.raw() as mon:
        assert mon.call("MONITOR") == b"+OK\r\n"
        d.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        try:
            d.call("MIGRATE", "127.0.0.1", fake.port, "k", "0", "1000", "AUTH2", "user", "secret")
            line = b""
            while b"MIGRATE" not in line.upper():
                line = mon.read_reply()
        finally:
            d.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    assert b'"(redacted)" "(redacted)"' in line and b"secret" not in line
    assert b"secret" not in d.call("SLOWLOG", "GET", "10")
    d.call("SLOWLOG", "RESET")


# ----------------------------------------------------------------------------- asynchronous


class Gate:
    """A fake target that holds every RESTORE reply until released."""

    def __init__(self, make: Callable[..., FakeTarget]) -> None:
        self.event = threading.Event()
        self.arrived = threading.Event()  # a RESTORE is held: the migration is under way
        self.fake = make(self.behaviour)

    def behaviour(self, conn: int, argv: list[bytes]) -> bytes:
        if argv[0] == b"RESTORE":
            self.arrived.set()
            self.event.wait(10)
        return b"+OK\r\n"

    def held(self) -> None:
        """Until a migration's RESTORE is held here (a fixed sleep may end before a loaded
        machine got the MIGRATE that far)."""
        assert self.arrived.wait(20), "no RESTORE arrived"


def test_loop_keeps_serving_and_writers_of_migrated_keys_wait(node: ServerProcess, d: RawConnection, target) -> None:
    gate = Gate(target)
    d.call("SET", "k", "old")
    d.call("SET", "other", "1")
    d.send(encode_command("MIGRATE", "127.0.0.1", gate.fake.port, "k", "0", "5000"))
    gate.held()
    with node.raw() as reader, node.raw() as writer, node.raw() as tx:
        assert reader.call("PING") == b"+PONG\r\n"  # not stalled
        assert reader.call("GET", "k") == b"$3\r\nold\r\n"  # reads go on
        assert reader.call("INCR", "other") == b":2\r\n"  # other keys too
        writer.send(encode_command("SET", "k", "new") + encode_command("GET", "k"))
        tx.call("MULTI")
        tx.call("APPEND", "k", "!")
        tx.send(encode_command("EXEC"))
        time.sleep(0.2)
        writer.sock.settimeout(0.1)
        with pytest.raises(TimeoutError):
            writer.sock.recv(1)  # SET k waits for the migration
        gate.event.set()
        assert d.read_reply() == b"+OK\r\n"
        writer.sock.settimeout(5)
        assert writer.read_reply() == b"+OK\r\n"  # ran after k was deleted here
        assert writer.read_reply() in (b"$3\r\nnew\r\n", b"$4\r\nnew!\r\n")
        assert tx.read_reply() in (b"*1\r\n:4\r\n", b"*1\r\n:1\r\n")
    assert call(d, "GET", "k") in (b"new!", b"new")


def test_swapdb_waits_for_a_migration(node: ServerProcess, d: RawConnection, target) -> None:
    gate = Gate(target)
    d.call("SET", "k", "v")
    d.send(encode_command("MIGRATE", "127.0.0.1", gate.fake.port, "k", "0", "5000"))
    gate.held()
    with node.raw() as other:
        other.send(encode_command("SWAPDB", "0", "1"))
        other.sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            other.sock.recv(1)
        gate.event.set()
        assert d.read_reply() == b"+OK\r\n"
        other.sock.settimeout(5)
        assert other.read_reply() == b"+OK\r\n"
        other.call("SWAPDB", "0", "1")
    assert call(d, "EXISTS", "k") == 0


def test_client_disconnecting_mid_migration_still_completes(node: ServerProcess, d: RawConnection, target) -> None:
    gate = Gate(target)
    d.call("SET", "k", "v")
    with node.raw() as gone:
        gone.send(encode_command("MIGRATE", "127.0.0.1", gate.fake.port, "k", "0", "5000"))
        gate.held()
    gate.event.set()
    deadline = time.monotonic() + 20
    while call(d, "EXISTS", "k"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_concurrent_migrations_to_one_target_take_turns(node: ServerProcess, d: RawConnection, target) -> None:
    gate = Gate(target)
    for key in ("a", "b"):
        d.call("SET", key, key)
    with node.raw() as other:
        d.send(encode_command("MIGRATE", "127.0.0.1", gate.fake.port, "a", "0", "5000"))
        other.send(encode_command("MIGRATE", "127.0.0.1", gate.fake.port, "b", "0", "5000"))
        gate.held()
        gate.event.set()
        assert d.read_reply() == b"+OK\r\n" and other.read_reply() == b"+OK\r\n"
    assert gate.fake.connections == 1  # the second waited for the cached connection
    assert call(d, "EXISTS", "a", "b") == 0


def test_migrate_inside_multi_is_synchronous(node: ServerProcess, d: RawConnection) -> None:
    dest = start_dumpling()
    try:
        d.call("SET", "a", "1")
        d.call("RPUSH", "l", "x", "y")
        d.call("MULTI")
        d.call("MIGRATE", "127.0.0.1", dest.port, "a", "0", "1000")
        d.call("MIGRATE", "127.0.0.1", dest.port, "", "2", "1000", "KEYS", "l", "nokey")
        d.call("MIGRATE", "127.0.0.1", 1, "l", "0", "100")
        d.call("EXISTS", "a", "l")
        assert call(d, "EXEC") == [b"OK", b"OK", b"NOKEY", 0]
        with dest.raw() as conn:
            assert call(conn, "GET", "a") == b"1"
            conn.call("SELECT", "2")
            assert call(conn, "LRANGE", "l", "0", "-1") == [b"x", b"y"]
        d.call("SET", "b", "2")
        d.call("MULTI")
        d.call("MIGRATE", "127.0.0.1", 1, "b", "0", "100")
        assert call(d, "EXEC")[0].args[0] == "IOERR error or timeout writing to target instance"  # type: ignore
    finally:
        dest.stop()


def test_every_type_between_two_dumpling_nodes(d: RawConnection) -> None:
    dest = start_dumpling()
    try:
        d.call("SET", "s", "x" * 100)
        d.call("SET", "i", "12345")
        d.call("RPUSH", "l", *[str(i) for i in range(300)])
        d.call("SADD", "si", "1", "2", "3")
        d.call("SADD", "ss", *[f"m{i}" for i in range(200)])
        d.call("ZADD", "z", "1.5", "a", "2", "b")
        d.call("HSET", "h", "f", "v", "g", "w" * 100)
        d.call("XADD", "x", "1-1", "f", "v")
        d.call("XGROUP", "CREATE", "x", "g", "0")
        d.call("PEXPIRE", "z", "50000")
        keys = ["s", "i", "l", "si", "ss", "z", "h", "x"]
        expected = {k: snapshot(d, k) for k in keys}
        assert d.call("MIGRATE", "127.0.0.1", dest.port, "", "0", "2000", "KEYS", *keys) == b"+OK\r\n"
        assert call(d, "DBSIZE") == 0
        with dest.raw() as conn:
            for key in keys:
                assert snapshot(conn, key) == expected[key], key
            assert 49_000 < call(conn, "PTTL", "z") <= 50_000  # type: ignore[operator]
            assert call(conn, "PTTL", "s") == -1
    finally:
        dest.stop()


# ----------------------------------------------------------------------------- the requests' bytes


def test_batch_of_restore_requests_matches_the_reference() -> None:
    """``_speedups.restore_requests`` (the whole batch in one C pass) writes exactly what the
    reference writes with ``encode_request`` and DUMP's encoder: every type and size (the
    payloads C writes itself and those it hands to encode_payload), TTLs, REPLACE, RESTORE-ASKING."""
    from dumpling.commands.dump import dump_value, dump_writer
    from dumpling.commands.migrate import restore_requests_py
    from dumpling.config import Config
    from dumpling.dispatch import Server
    from dumpling.payload import bulk, encode_payload
    from dumpling.server import Client
    from tests.test_fastpath_fuzz import Transport

    speedups = bulk.speedups
    if speedups is None:
        pytest.skip("payload speedups not built (pure mode)")
    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    setup = [
        ("SET", "s:small", "v"), ("SET", "s:int", "12345"), ("SET", "s:long", "x" * 5000),
        ("SET", "s:lzf", "ab" * 300), ("RPUSH", "l:small", "a", "1", "b"), ("RPUSH", "l:big", *[f"e{i}" * 9 for i in range(900)]),
        ("HSET", "h:small", *[f"f{i}" for i in range(32)]), ("HSET", "h:big", *[f"field{i}" for i in range(600)]),
        ("SADD", "set:int", 1, 2, 3), ("SADD", "set:text", "a", "b"), ("SADD", "set:big", *range(700)),
        ("ZADD", "z:small", 1, "a", "2.5", "b"), ("ZADD", "z:big", *[x for i in range(200) for x in (str(i / 3), f"m{i}")]),
        ("XADD", "x", "*", "f", "v"), ("PFADD", "hll", "a", "b"),
    ]
    for request in setup:
        client.data_received(encode_command(*request))
    db = server.keyspace.dbs[0]
    keys = sorted(db.data)
    values = [db.data[key] for key in keys]
    assert len(keys) == len(setup)
    version, options = dump_writer(server)
    for command in (b"RESTORE", b"RESTORE-ASKING"):
        for replace in (False, True):
            for ttls in (None, [i * 977 + 1 for i in range(len(keys))]):
                fast = speedups.restore_requests(command, keys, values, ttls, replace, version, options,
                                                 options.rdbcompression, encode_payload)
                reference = restore_requests_py(command, keys, values, ttls, replace,
                                                lambda value: dump_value(server, value))
                assert fast == reference
    # what it leaves to the reference: a key that is not bytes, a footer it does not write
    assert speedups.restore_requests(b"RESTORE", [bytearray(b"k")], [b"v"], None, False, version, options,
                                     False, encode_payload) is None
    assert speedups.restore_requests(b"RESTORE", [b"k"], [b"v"], None, False, 80, options, False,
                                     encode_payload) is None


_LISTS_EMPTIED_BY_A_TTL = """
from dumpling.payload import bulk, encode_payload
from dumpling.commands.dump import dump_writer
from dumpling.config import Config
from dumpling.dispatch import Server

version, options = dump_writer(Server(Config()))
keys, values = [b"k" * (1 << 21)], [b"v" * (1 << 21)]  # freed memory goes back to the system


class Ttl:
    def __index__(self) -> int:
        keys.clear()
        values.clear()
        return 5


try:
    bulk.speedups.restore_requests(b"RESTORE", keys, values, [Ttl()], False, version, options, False,
                                   encode_payload)
except RuntimeError as e:
    print("refused:", e)
"""


def test_batch_of_restore_requests_survives_a_ttl_that_runs_python() -> None:
    """A TTL's __index__ is Python that may change the lists: the C pass holds what it reads
    and refuses lists that changed size, never reading a freed key or value."""
    import subprocess
    import sys

    from dumpling.payload import bulk

    if bulk.speedups is None:
        pytest.skip("payload speedups not built (pure mode)")
    run = subprocess.run([sys.executable, "-c", _LISTS_EMPTIED_BY_A_TTL], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "refused: restore_requests: a list changed size\n"


def test_moved_values_are_freed_by_the_next_exchange_or_the_cron(node: ServerProcess) -> None:
    """MigrateCache.retire: a migration's values (their keys deleted) are held until the next
    exchange has written its requests, or the cron; nothing else keeps them."""
    from dumpling.config import Config
    from dumpling.dispatch import Server
    from dumpling.server import Client
    from tests.test_fastpath_fuzz import Transport

    server = Server(Config())  # no event loop: MIGRATE runs synchronously, as inside MULTI
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    cache = server.migrate_cache  # type: ignore[attr-defined]
    with node.raw() as conn:
        conn.call("FLUSHALL")
    for batch in ("a", "b"):
        client.data_received(encode_command("HSET", f"{batch}1", "f", "v") + encode_command("SET", f"{batch}2", "v"))
        client.data_received(encode_command("MIGRATE", "127.0.0.1", node.port, "", 0, 1000, "KEYS", f"{batch}1",
                                            f"{batch}2"))
        # this migration's values are held; the previous one's were freed once its requests were written
        assert [[type(value).__name__ for value in values] for values in cache.retired] == [["HashValue", "bytes"]]
    assert bytes(transport.data) == b":1\r\n+OK\r\n+OK\r\n" * 2
    assert server.keyspace.dbs[0].data.get(b"a1") is None
    cache.cron()
    assert cache.retired == []
    with node.raw() as conn:
        assert parse_reply(conn.call("DBSIZE")) == 4
