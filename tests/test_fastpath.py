"""The C fast path (``dumpling._fastpath``) against real Redis and against itself switched off.

Every read of a plain connection is offered to the C code first; it runs the leading
GET/SET/INCR/DECR/INCRBY/DECRBY/MSET/MGET/PING requests and leaves everything else
(errors included) to the Python dispatcher.  So the same pipelined stream is sent to
real Redis, to dumpling and to dumpling with ``DUMPLING_PURE=1``: replies, the final
keyspace and the statistics must agree, however the stream is cut into reads.
"""

from __future__ import annotations

import os
import random
import re
import socket
import time
from collections.abc import Iterator

import hiredis
import pytest

from dumpling import accel
from tests.servers import RawConnection, ServerProcess, encode_command, info_int, start_dumpling, start_redis

KEYS = [b"k%d" % i for i in range(12)] + [b"", b"K\x00\xff", b"list", b"ttl:live", b"ttl:gone", b"big"]
VALUES = [b"0", b"1", b"-1", b"007", b"-0", b" 1", b"1 ", b"+1", b"", b"abc", b"\x00\r\n$3\r\n", b"9223372036854775807",
          b"-9223372036854775808", b"9223372036854775808", b"12345678901234567890", b"3.5", b"x" * 300]


def random_command(rng: random.Random) -> tuple[bytes, ...]:
    """One request of the fast path's commands, sometimes in a form it must refuse."""
    def key() -> bytes:
        return rng.choice(KEYS)

    def value() -> bytes:
        return rng.choice(VALUES)

    def case(name: str) -> bytes:
        return "".join(rng.choice((ch.lower(), ch.upper())) for ch in name).encode()

    kind = rng.randrange(14)
    if kind == 0:
        return (case("get"), key())
    if kind == 1:
        return (case("set"), key(), value())
    if kind == 2:
        return (case("incr"), key())
    if kind == 3:
        return (case("decr"), key())
    if kind == 4:
        return (case("incrby"), key(), rng.choice([b"5", b"-3", b"9223372036854775807", b"x", b"1.5", b"007"]))
    if kind == 5:
        return (case("decrby"), key(), rng.choice([b"2", b"-9223372036854775808", b"-1", b"", b"9223372036854775807"]))
    if kind == 6:
        pairs = rng.randrange(0, 5)
        return (case("mset"), *[x for _ in range(pairs) for x in (key(), value())]) + ((key(),) if rng.random() < 0.1 else ())
    if kind == 7:
        return (case("mget"), *[key() for _ in range(rng.randrange(0, 6))])
    if kind == 8:
        return (case("ping"),) + ((b"hello",) if rng.random() < 0.3 else ())
    if kind == 9:  # wrong arity / options: the Python dispatcher answers
        return rng.choice([(b"get",), (b"get", key(), key()), (b"set", key()), (b"incr",), (b"set", key(), value(), b"NX"),
                           (b"set", key(), value(), b"GET"), (b"set", key(), value(), b"PX", b"100000")])
    if kind == 10:  # other types and TTLs on the same keys
        return rng.choice([(b"rpush", b"list", b"a"), (b"pexpire", b"ttl:live", b"100000"), (b"pexpire", key(), b"200000"),
                           (b"persist", key()), (b"del", key())])
    if kind == 11:
        return (b"append", key(), b"z")  # leaves a bytearray value behind
    if kind == 12:
        return (b"type", key())
    return (b"exists", key())


# ttl:gone is made by SET ... PX 1, not SET then PEXPIRE 1: Redis 7.0's PEXPIRE reads the clock
# twice (the base, then checkAlreadyExpired), and when a loaded machine moved it 1 ms in between,
# it deleted the key at once as a DEL (15 of 20,000 PEXPIREs under load): no expired_keys then,
# while dumpling (7.4: one time snapshot) expires it in the workload.
SETUP = [(b"set", b"ttl:gone", b"1", b"px", b"1"), (b"set", b"ttl:live", b"5"),
         (b"pexpire", b"ttl:live", b"100000"), (b"rpush", b"list", b"x")]


def workload(seed: int, n: int) -> list[tuple[bytes, ...]]:
    rng = random.Random(seed)
    return [random_command(rng) for _ in range(n)]


def send_in_reads(port: int, stream: bytes, cuts: list[int]) -> bytes:
    """Send ``stream`` split at ``cuts`` (each piece its own read) and return all replies."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        last = 0
        for cut in [*cuts, len(stream)]:
            if cut > last:
                sock.sendall(stream[last:cut])
                time.sleep(0.002)  # let the server read this piece on its own
                last = cut
        sock.sendall(encode_command("ECHO", "end-of-stream"))
        data = b""
        sock.settimeout(10)
        while not data.endswith(b"$13\r\nend-of-stream\r\n"):
            chunk = sock.recv(1 << 16)
            assert chunk, "connection closed"
            data += chunk
        return data[: -len(b"$13\r\nend-of-stream\r\n")]


def keyspace_state(conn: RawConnection) -> list[bytes]:
    """Every key of the workload: its type, value (strings), and whether it has a TTL."""
    state = []
    for key in KEYS:
        kind = conn.call("TYPE", key)
        state.append(kind)
        if kind == b"+string\r\n":
            state.append(conn.call("GET", key))
            state.append(conn.call("OBJECT", "ENCODING", key))
        state.append(b"none" if conn.call("PTTL", key).startswith(b":-") else b"ttl")
    return state


def stats(conn: RawConnection) -> dict[str, str]:
    """keyspace hits/misses and calls per command (usec differs, of course)."""
    info = conn.call("INFO", "all").decode()
    found = dict(re.findall(r"^(keyspace_hits|keyspace_misses|expired_keys):(\d+)", info, re.M))
    for name, calls in re.findall(r"^cmdstat_(\w+):calls=(\d+)", info, re.M):
        if name not in ("info", "flushall", "config", "hello"):
            found["calls_" + name] = calls
    return found


@pytest.fixture(scope="module")
def three() -> Iterator[tuple[ServerProcess, ServerProcess, ServerProcess]]:
    servers = [start_redis(), start_dumpling(), start_dumpling(env={"DUMPLING_PURE": "1"})]
    yield servers[0], servers[1], servers[2]
    for server in servers:
        server.stop()


def reset(*servers: ServerProcess, setup: list[tuple[bytes, ...]] = ()) -> None:
    for server in servers:
        with server.raw() as conn:
            # no active expiry: whether the cron deleted ttl:gone before or after RESETSTAT would
            # decide expired_keys (a race on a loaded machine); the workload's lookups expire it
            conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
            conn.call("FLUSHALL")
            for command in setup:
                conn.call(*command)
            conn.call("CONFIG", "RESETSTAT")


def test_the_extension_is_built_in_ci() -> None:
    if os.environ.get("CI") == "true":
        assert accel.fastpath is not None, "dumpling._fastpath did not build: setup.py / compiler problem"
    if accel.fastpath is None:
        pytest.skip("C fast path not built (pure Python)")
    assert set(accel.fastpath.commands()) == {"get", "set", "incr", "decr", "incrby", "decrby", "mset", "mget", "ping"}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reads", ["one", "random", "bytewise-prefix"])
def test_pipelined_stream_matches_redis_and_pure(three, seed: int, reads: str) -> None:
    redis_srv, fast, pure = three
    reset(redis_srv, fast, pure, setup=SETUP)
    stream = b"".join(encode_command(*cmd) for cmd in workload(seed, 400))
    rng = random.Random(seed)
    if reads == "one":
        cuts: list[int] = []
    elif reads == "random":
        cuts = sorted(rng.sample(range(1, len(stream)), 60))
    else:  # every cut position in the first requests: each header and bulk boundary
        cuts = list(range(1, 200, 3))
    time.sleep(0.01)  # ttl:gone (1 ms) has expired everywhere
    replies = [send_in_reads(s.port, stream, cuts) for s in (redis_srv, fast, pure)]
    assert replies[1] == replies[0]
    assert replies[2] == replies[0]
    with redis_srv.raw() as a, fast.raw() as b, pure.raw() as c:
        states = [keyspace_state(x) for x in (a, b, c)]
        assert states[1] == states[0]
        assert states[2] == states[0]
        counted = [stats(x) for x in (a, b, c)]
    assert counted[1] == counted[0]
    assert counted[2] == counted[0]


def test_reads_by_the_requests_bytes_match_redis_and_pure(three) -> None:
    """GET and MGET find a key by the request's bytes, without a bytes object, while the
    database has no TTL at all: keys with NULs, empty, long, missing, just overwritten; then
    the same once a TTL exists (the object path)."""
    redis_srv, fast, pure = three
    keys = [b"", b"\x00", b"a\x00b", b"k" * 300, b"plain", b"\xff\xfe"]
    rng = random.Random(5)
    stream = []
    for _ in range(300):
        key, other = rng.choice(keys + [b"missing"]), rng.choice(keys)
        stream.append(rng.choice([("SET", key, b"v%d" % rng.randrange(9)), ("GET", key), ("MGET", key, other, b"no"),
                                  ("INCR", key), ("GET", other)]))
    for with_ttl in (False, True):
        reset(redis_srv, fast, pure, setup=[("SET", b"ttl:far", b"1", b"EX", b"1000")] if with_ttl else [])
        data = b"".join(encode_command(*cmd) for cmd in stream)
        replies = [send_in_reads(s.port, data, []) for s in (redis_srv, fast, pure)]
        assert replies[1] == replies[0] and replies[2] == replies[0], with_ttl
        with redis_srv.raw() as a, fast.raw() as b, pure.raw() as c:
            counted = [stats(x) for x in (a, b, c)]
        assert counted[1] == counted[0] and counted[2] == counted[0], with_ttl


def test_inline_requests_match_redis(three) -> None:
    """Lines typed into telnet (and redis-benchmark's PING_INLINE): plain words run in C,
    quotes and odd bytes in Python; both as Redis answers them."""
    redis_srv, fast, pure = three
    reset(redis_srv, fast, pure)
    lines = [b"PING", b"SET a 1", b"set\tb   2", b"INCR a", b"MGET a b c", b"GET  a ", b"MSET x 1 y 2",
             b"SET q \"two words\"", b"GET q", b"SET p 'single'", b"GET p", b"INCRBY a x", b"GET", b"PING",
             b"DECRBY b 5", b"GET b"]
    stream = b"".join(line + (b"\n" if i % 3 else b"\r\n") for i, line in enumerate(lines))
    replies = [send_in_reads(s.port, stream, [7, 30]) for s in (redis_srv, fast, pure)]
    assert replies[1] == replies[0]
    assert replies[2] == replies[0]


@pytest.mark.parametrize("resp", [2, 3])
def test_replies_of_each_shape(three, resp: int) -> None:
    redis_srv, fast, _ = three
    reset(redis_srv, fast)
    commands = [("SET", "a", "1"), ("GET", "a"), ("GET", "missing"), ("MGET", "a", "missing", "l"), ("RPUSH", "l", "x"),
                ("MGET", "a", "missing", "l"), ("INCR", "a"), ("DECRBY", "a", "10"), ("MSET", "a", "x", "b", ""),
                ("GET", "b"), ("PING",), ("INCR", "a"), ("GET", "l"), ("SET", "l", "v"), ("GET", "l")]
    replies = []
    for server in (redis_srv, fast):
        with server.raw() as conn:
            if resp == 3:
                conn.call("HELLO", "3")
            conn.send(b"".join(encode_command(*c) for c in commands))
            replies.append([conn.read_reply() for _ in commands])
    assert replies[1] == replies[0]


def test_lru_idle_time_is_refreshed_by_fast_reads(three) -> None:
    _, fast, _ = three
    reset(fast)
    with fast.raw() as conn:
        conn.call("SET", "a", "1")
        conn.call("DEBUG", "SLEEP", "0")
        conn.call("OBJECT", "IDLETIME", "a")
        conn.call("DEBUG", "OBJECT", "a")
        # A key untouched for 2 s reports idle >= 1; a GET through the fast path resets it.
        time.sleep(2.1)
        assert int(conn.call("OBJECT", "IDLETIME", "a")[1:-2]) >= 1
        conn.call("GET", "a")
        assert conn.call("OBJECT", "IDLETIME", "a") == b":0\r\n"


# ---------------------------------------------------------------------------
# the states in which the C code must step aside (each answered like Redis)


def test_watch_sees_a_fast_write(three) -> None:
    for server in three[:2]:
        reset(server)
        with server.raw() as watcher, server.raw() as writer:
            watcher.call("WATCH", "w")
            watcher.call("MULTI")
            watcher.call("GET", "w")
            assert writer.call("SET", "w", "1") == b"+OK\r\n"
            assert watcher.call("EXEC") == b"*-1\r\n"


def test_monitor_sees_fast_commands(three) -> None:
    outputs = []
    for server in three[:2]:
        reset(server)
        with server.raw() as monitor, server.raw() as conn:
            assert monitor.call("MONITOR") == b"+OK\r\n"
            conn.send(encode_command("SET", "m", "1") + encode_command("GET", "m"))
            assert conn.read_reply() == b"+OK\r\n"
            assert conn.read_reply() == b"$1\r\n1\r\n"
            lines = monitor.read_all(0.3).decode().splitlines()
            outputs.append([line.split("] ", 1)[1] for line in lines])
    assert outputs[0] == outputs[1] == ['"SET" "m" "1"', '"GET" "m"']


def test_keyspace_notifications_of_fast_writes(three) -> None:
    published = []
    for server in three[:2]:
        reset(server)
        with server.raw() as conn, server.raw() as sub:
            conn.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
            sub.call("PSUBSCRIBE", "__key*__:*")
            conn.send(b"".join(encode_command(*c) for c in [("SET", "n", "1"), ("INCR", "n"), ("MSET", "n", "2", "o", "3"),
                                                             ("GET", "missing")]))
            for _ in range(4):
                conn.read_reply()
            published.append(sub.read_all(0.3))
            conn.call("CONFIG", "SET", "notify-keyspace-events", "")
    assert published[0] == published[1]


def test_client_reply_off_and_skip(three) -> None:
    for server in three[:2]:
        reset(server)
        with server.raw() as conn:
            stream = b"".join(encode_command(*c) for c in [("CLIENT", "REPLY", "OFF"), ("SET", "r", "1"), ("GET", "r"),
                                                           ("CLIENT", "REPLY", "ON"), ("CLIENT", "REPLY", "SKIP"),
                                                           ("INCR", "r"), ("GET", "r")])
            conn.send(stream)
            assert conn.read_all(0.3) == b"+OK\r\n$1\r\n2\r\n"


def test_slowlog_records_fast_commands(three) -> None:
    entries = []
    for server in three[:2]:
        reset(server)
        with server.raw() as conn:
            conn.call("SLOWLOG", "RESET")
            conn.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
            conn.send(encode_command("SET", "s", "1") + encode_command("MGET", "s", "t"))
            conn.read_reply()
            conn.read_reply()
            conn.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
            reader = hiredis.Reader()
            reader.feed(conn.call("SLOWLOG", "GET", "10"))
            entries.append([entry[3] for entry in reader.gets() if entry[3][0] in (b"SET", b"MGET")])
            conn.call("SLOWLOG", "RESET")
    assert entries[0] == entries[1] == [[b"MGET", b"s", b"t"], [b"SET", b"s", b"1"]]


def test_multi_queues_instead_of_running(three) -> None:
    redis_srv, fast, _ = three
    reset(redis_srv, fast)
    stream = b"".join(encode_command(*c) for c in [("MULTI",), ("SET", "q", "1"), ("INCR", "q"), ("GET", "q"), ("EXEC",),
                                                   ("GET", "q")])
    assert send_in_reads(fast.port, stream, []) == send_in_reads(redis_srv.port, stream, [])


def test_scan_started_before_fast_inserts_still_returns_every_old_key(three) -> None:
    _, fast, _ = three
    reset(fast)
    with fast.raw() as conn:
        conn.send(b"".join(encode_command("SET", "old:%d" % i, "v") for i in range(200)))
        for _ in range(200):
            conn.read_reply()
        seen: set[bytes] = set()
        cursor = b"0"
        first = True
        while first or cursor != b"0":
            first = False
            reply = conn.call("SCAN", cursor, "COUNT", "20")
            parts = reply.split(b"\r\n")
            cursor = parts[2]
            seen.update(p for p in parts[4:] if p and not p.startswith((b"$", b"*")))
            # New keys arriving between calls, through the fast path.
            conn.send(b"".join(encode_command("MSET", "new:%d:%d" % (len(seen), i), "v") for i in range(30)))
            for _ in range(30):
                conn.read_reply()
        assert {b"old:%d" % i for i in range(200)} <= seen


def test_lfu_policy_counts_through_python(three) -> None:
    redis_srv, fast, _ = three
    for server in (redis_srv, fast):
        reset(server)
        with server.raw() as conn:
            conn.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
            conn.call("SET", "f", "v")
            # New keys start at LFU 5 and reads only raise it (probabilistically).
            conn.send(encode_command("GET", "f") * 50)
            for _ in range(50):
                conn.read_reply()
            freq = int(conn.call("OBJECT", "FREQ", "f")[1:-2])
            conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        assert freq >= 5


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` in one write; everything the server answers until it closes or goes quiet,
    once it has read those bytes (a loaded machine kept a server quiet for more than the 0.1 s
    before it read them, and one side of the comparison came back empty)."""
    with RawConnection(port) as admin, RawConnection(port) as conn:
        before = info_int(admin, "stats", "total_net_input_bytes")
        asking = len(encode_command("INFO", "stats"))
        conn.send(data)
        deadline = time.monotonic() + 20  # (a server that closed before reading all of it: go on)
        polls = 1
        while info_int(admin, "stats", "total_net_input_bytes") < before + len(data) + polls * asking:
            if time.monotonic() > deadline:
                break
            polls += 1
            time.sleep(0.01)
        return conn.read_all(0.1)


@pytest.mark.parametrize("tail", [b"*1\r\n$4\r\nPINGx\r\n", b"*2\r\n$3\r\nGET\r\n$-5\r\n", b"PING\r\n", b"*-1\r\n*0\r\n",
                                  b"*1\r\n$04\r\nPING\r\n", b"*01\r\n$4\r\nPING\r\n", b"*1\r\n:4\r\n", b"\r\n\r\n"])
def test_fast_requests_then_something_else(three, tail: bytes) -> None:
    """Whatever follows the requests the C code ran is answered as Redis answers it."""
    redis_srv, fast, _ = three
    reset(redis_srv, fast)
    head = encode_command("SET", "a", "1") + encode_command("GET", "a")
    assert exchange(fast.port, head + tail) == exchange(redis_srv.port, head + tail)


def test_mutated_streams_fast_equals_pure(three) -> None:
    """Random byte damage to a pipelined stream: the C path and the Python path give the
    same replies (and the same connection closing) and both servers stay up."""
    _, fast, pure = three
    rng = random.Random(7)
    base = b"".join(encode_command(*cmd) for cmd in workload(99, 40))
    for _ in range(30):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.choice(b"*$\r\n0123456789-x")
        reset(fast, pure)
        assert exchange(fast.port, bytes(data)) == exchange(pure.port, bytes(data))
    for server in (fast, pure):
        with server.raw() as conn:
            assert conn.call("PING") == b"+PONG\r\n"
