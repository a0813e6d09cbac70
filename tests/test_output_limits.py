"""Replies that would outgrow the client's output-buffer limit: built only as far as the
limit lets them (dumpling.replybudget), the client closed as Redis closes it, and the
server answering everyone else meanwhile; what CLIENT LIST shows of a client's output
(obl, oll, omem) and the soft limit's time window.  Each scenario runs against real Redis too."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dumpling.protocol import Map, SetReply, encode
from dumpling.replybudget import ReplyBudget, _encode_within
from tests.servers import (
    RawConnection,
    ServerProcess,
    encode_command,
    parse_reply,
    peak_rss_mb,
    start_dumpling,
    start_redis,
)

LIMIT = ("--client-output-buffer-limit", "normal 10mb 0 0")


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    ours, theirs = start_dumpling(*LIMIT), start_redis(*LIMIT)
    try:
        for server in (ours, theirs):
            with server.raw() as conn:
                conn.call("HSET", "h", "f1", "v1", "f2", "v2")
                conn.call("SADD", "s", "a", "b", "c")
                conn.call("ZADD", "z", "1", "a", "2", "b")
                conn.call("SET", "big", b"x" * 1_000_000)
                conn.call("RPUSH", "list", *[b"%d" % i for i in range(100_000)])
        yield ours, theirs
    finally:
        ours.stop()
        theirs.stop()


def _outcome(server: ServerProcess, wire: bytes) -> tuple[bytes, bool, float]:
    """What the client gets, whether it is closed, and the CPU seconds the server spent
    before it answered a PING from another client meanwhile."""
    with RawConnection(server.port, timeout=120) as victim, RawConnection(server.port, timeout=120) as other:
        started = server.cpu_seconds()
        victim.send(wire)
        assert other.call("PING") == b"+PONG\r\n"
        ping = server.cpu_seconds() - started
        received = victim.read_all(2.0)
        return received, victim.is_closed(2.0), ping


HUGE = [
    ("HRANDFIELD", "h", "-999999999"),
    ("HRANDFIELD", "h", "-999999999", "WITHVALUES"),
    ("SRANDMEMBER", "s", "-999999999"),
    ("ZRANDMEMBER", "z", "-999999999"),
    ("ZRANDMEMBER", "z", "-999999999", "WITHSCORES"),
    ("MGET", *["big"] * 100),  # one key, a hundred times: 100 MB of reply
]


@pytest.mark.parametrize("command", HUGE, ids=lambda c: " ".join(c)[:40])
def test_huge_reply_closes_the_client_like_redis(limited, command):
    ours, theirs = limited
    before = peak_rss_mb(ours)
    got_ours = _outcome(ours, encode_command(*command))
    got_theirs = _outcome(theirs, encode_command(*command))
    assert got_ours[:2] == got_theirs[:2] == (b"", True)
    assert got_ours[2] < 10.0  # the others are served after seconds of work at most, not minutes
    assert peak_rss_mb(ours) - before < 500  # it grew past 5 GB building the whole reply


def test_limit_reached_inside_exec_and_by_pipelined_replies(limited):
    ours, theirs = limited
    exec_wire = encode_command("MULTI") + encode_command("HRANDFIELD", "h", "-999999999") + encode_command("EXEC")
    pipeline = encode_command("LRANGE", "list", "0", "-1") * 40  # ~0.6 MB each
    for wire in (exec_wire, pipeline):
        got = _outcome(ours, wire)  # (each outcome builds replies of many MB: one run per server)
        assert got[:2] == _outcome(theirs, wire)[:2]
        assert got[1]


def test_replies_under_the_limit_are_whole(limited):
    ours, theirs = limited
    for server in (ours, theirs):
        with server.raw() as conn:
            reply = conn.call("HRANDFIELD", "h", "-100000")
            assert reply.startswith(b"*100000\r\n") and reply.count(b"$2\r\nf") == 100000
            reply = conn.call("LRANGE", "list", "0", "-1")
            assert reply.startswith(b"*100000\r\n")
            assert conn.call("MGET", "big", "big")[:14] == b"*2\r\n$1000000\r\n"


# -- what CLIENT LIST shows, and the limits on replies too small for the reply budget -----------

SMALL = ("--client-output-buffer-limit", "normal 100000 0 0")


@pytest.fixture(scope="module")
def small_limit() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    ours, theirs = start_dumpling(*SMALL), start_redis(*SMALL)
    try:
        for server in (ours, theirs):
            with server.raw() as conn:
                conn.call("SET", "v10k", b"x" * 10_000)
                conn.call("SET", "v1m", b"y" * 1_000_000)
                conn.call("RPUSH", "l150k", *[b"z" * 1000] * 150)
                conn.call("HSET", "h2m", *[x for i in range(2000) for x in (b"f%d" % i, b"w" * 1000)])
        yield ours, theirs
    finally:
        ours.stop()
        theirs.stop()


def _client_fields(line: bytes) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.decode().split() if "=" in part)


def _info_field(conn: RawConnection, section: str, name: str) -> int:
    for line in conn.call("INFO", section).decode().split("\r\n"):
        if line.startswith(name + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"no {name} in INFO {section}")


def _slow_reader(port: int) -> socket.socket:
    """A connection with a tiny receive window, so unread replies stay in the server."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def test_batch_of_small_replies_over_the_hard_limit_gets_nothing(small_limit):
    """Fifteen 10 KB replies in one read: over 100 KB before anything is written, so the client
    is closed with none of them (Redis checks the limit as replies are queued)."""
    ours, theirs = small_limit
    inline = b"".join(b"set k%d %d\r\nget k%d\r\ndel k%d\r\nget v10k\r\n" % (i, i, i, i) for i in range(15))
    assert _outcome(ours, inline)[:2] == _outcome(theirs, inline)[:2] == (b"", True)
    under = encode_command("GET", "v10k") * 5  # 50 KB: sent whole
    with ours.raw() as mine, theirs.raw() as real:
        mine.send(under)
        real.send(under)
        assert [mine.read_reply() for _ in range(5)] == [real.read_reply() for _ in range(5)]


def test_big_hash_replies_written_by_its_table_meet_the_limit(small_limit):
    """HGETALL/HVALS of a hashtable hash are written whole by its table (KeyTable.reply): 2 MB,
    over the hard limit, closes the client as Redis does; HKEYS (~20 KB) comes whole, in each
    protocol."""
    for command in (("HGETALL", "h2m"), ("HVALS", "h2m")):
        assert _outcome(small_limit[0], encode_command(*command))[:2] == \
            _outcome(small_limit[1], encode_command(*command))[:2] == (b"", True)
    for resp in (2, 3):
        with small_limit[0].raw() as mine, small_limit[1].raw() as real:
            for conn in (mine, real):
                conn.call("HELLO", str(resp))
            ours, theirs = (parse_reply(conn.call("HKEYS", "h2m")) for conn in (mine, real))
            assert len(ours) == 2000 and sorted(ours) == sorted(theirs)
            assert not mine.is_closed(0.1)


def test_transaction_runs_whole_when_its_reply_is_over_the_limit(small_limit):
    wire = b"".join(encode_command(*c) for c in (
        ("SET", "k1", "v1"), ("MULTI",), ("SET", "k2", "v2"), ("LRANGE", "l150k", "0", "-1"), ("SET", "k3", "v3"),
        ("DEL", "k1"), ("EXEC",)))
    for server in small_limit:
        received, closed, _ = _outcome(server, wire)
        assert (received, closed) == (b"", True)
        with server.raw() as conn:
            assert [conn.call("GET", k) for k in ("k1", "k2", "k3")] == [b"$-1\r\n", b"$2\r\nv2\r\n", b"$2\r\nv3\r\n"]
            conn.call("DEL", "k2", "k3")


def test_idle_client_shows_empty_output_buffers(small_limit):
    for server in small_limit:
        with server.raw() as conn:
            fields = _client_fields(conn.call("CLIENT", "INFO"))
            assert (fields["obl"], fields["oll"], fields["omem"]) == ("0", "0", "0")


def test_omem_counts_replies_queued_in_the_same_read(small_limit):
    """GET of a 1 MB value and CLIENT INFO in one write (limit lifted): CLIENT INFO sees the
    megabyte still queued, as Redis does (its layout: 16 KB in obl, the rest in list blocks)."""
    omem = []
    for server in small_limit:
        with server.raw() as conn:
            conn.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0")
            try:
                conn.send(encode_command("GET", "v1m") + encode_command("CLIENT", "INFO"))
                assert len(conn.read_reply()) == 1_000_012
                fields = _client_fields(conn.read_reply())
            finally:
                conn.call("CONFIG", "SET", *SMALL[1:])
            omem.append(int(fields["omem"]))
            assert int(fields["obl"]) > 0
    assert abs(omem[0] - omem[1]) < 50_000 and min(omem) > 950_000


def test_unread_output_is_omem_and_mem_clients_normal(small_limit):
    """A client that does not read: its backlog is omem (and oll > 0) in CLIENT LIST and
    counts in INFO mem_clients_normal; read, it goes back to 0."""
    for server in small_limit:
        with server.raw() as conn:
            conn.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0")
            baseline = _info_field(conn, "memory", "mem_clients_normal")
            slow = _slow_reader(server.port)
            try:
                slow.sendall(encode_command("CLIENT", "SETNAME", "slow") + encode_command("GET", "v1m") * 8)
                deadline = time.monotonic() + 10
                while True:
                    line = [x for x in conn.call("CLIENT", "LIST").split(b"\n") if b"name=slow" in x]
                    fields = _client_fields(line[0]) if line else {}
                    if fields and int(fields["omem"]) > 2_000_000 or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                assert int(fields["omem"]) > 2_000_000 and int(fields["oll"]) > 0, (server.name, fields)
                # (Redis adds a client's memory up in clientsCron, so give it a moment)
                deadline = time.monotonic() + 20
                while _info_field(conn, "memory", "mem_clients_normal") - baseline <= 2_000_000:
                    assert time.monotonic() < deadline, server.name
                    time.sleep(0.05)
                received = b""
                while len(received) < 8 * 1_000_012 + 5:
                    received += slow.recv(1 << 20)
                deadline = time.monotonic() + 20  # once the server has seen the socket drained
                while True:
                    line = [x for x in conn.call("CLIENT", "LIST").split(b"\n") if b"name=slow" in x]
                    if _client_fields(line[0])["omem"] == "0" or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                assert _client_fields(line[0])["omem"] == "0"
            finally:
                slow.close()
                conn.call("CONFIG", "SET", *SMALL[1:])


def test_soft_limit_drops_a_stuck_client_after_its_seconds_without_more_traffic(small_limit):
    """normal 0 1mb 2: 8 MB of replies the client does not read.  Over the soft limit, it is
    kept for the 2 seconds, then dropped although nothing more is written to it (cron)."""
    def observe(server: ServerProcess) -> tuple[bool, bool, int]:
        with server.raw() as conn:
            conn.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 1mb 2")
            # (a 7.4 field: Redis 7.0 does not count these disconnections)
            counted = server is small_limit[0]
            before = _info_field(conn, "stats", "client_output_buffer_limit_disconnections") if counted else 0
            slow = _slow_reader(server.port)
            try:
                slow.sendall(encode_command("CLIENT", "SETNAME", "stuck") + encode_command("GET", "v1m") * 8)
                started = time.monotonic()
                time.sleep(1.0)
                alive_at_1s = b"name=stuck" in conn.call("CLIENT", "LIST")
                # dropped once its 2 s are over: not before (a lower bound holds on any machine),
                # and eventually (no upper bound: a loaded machine runs the cron late)
                while (kept := b"name=stuck" in conn.call("CLIENT", "LIST")) and time.monotonic() - started < 30:
                    time.sleep(0.05)
                gone_after = time.monotonic() - started
                dropped = _info_field(conn, "stats", "client_output_buffer_limit_disconnections") - before \
                    if counted else 1
                return alive_at_1s, not kept and 2.0 <= gone_after, dropped
            finally:
                slow.close()
                conn.call("CONFIG", "SET", *SMALL[1:])

    with ThreadPoolExecutor(2) as pool:  # both servers wait out their 2 seconds at the same time
        results = list(pool.map(observe, small_limit))
    assert results[0] == results[1] == (True, True, 1)


def test_pubsub_hard_limit_with_omem_growing_to_it(small_limit):
    """Redis's obuf-limits scenario: a subscriber that does not read is dropped at the pubsub
    hard limit, and CLIENT LIST shows its omem climbing to it first."""
    seen = []
    for server in small_limit:
        with server.raw() as conn:
            conn.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 100000 0 0")
            slow = _slow_reader(server.port)
            try:
                slow.sendall(encode_command("SUBSCRIBE", "foo"))
                time.sleep(0.1)
                highest, payload = 0, b"p" * 1000
                for _ in range(20_000):
                    conn.call("PUBLISH", "foo", payload)
                    line = [x for x in conn.call("CLIENT", "LIST").split(b"\n") if b"sub=1" in x]
                    if not line:
                        break
                    highest = max(highest, int(_client_fields(line[0])["omem"]))
                seen.append((bool(line), highest))
            finally:
                slow.close()
                conn.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
    for dropped_late, highest in seen:
        assert not dropped_late and 50_000 <= highest < 120_000, seen


# -- the budgeted encoder in process ------------------------------------------------------------


class _Closable:
    closed = False


class _Budget(ReplyBudget):
    """A budget whose running out is only recorded (no server to close a client with)."""

    def spend(self, nbytes: int) -> bool:
        self.left -= nbytes
        return self.left > 0


@pytest.mark.parametrize("resp3", [False, True])
def test_budgeted_encoding_is_the_plain_encoding(resp3):
    """Encoded against a budget (flat chunks through the C encoder, nested items one by one), a
    reply is byte for byte what ``protocol.encode`` writes, and spends exactly its size."""
    flat = [b"m:%d" % i for i in range(5000)] + [7, None, -3, b""] * 300
    mixed = flat[:2500] + [[b"a", 1.5], Map([(b"k", b"v")]), SetReply([b"x"])] + flat[2500:]
    for value in (flat, SetReply(flat), mixed, SetReply(mixed), Map([(m, m) for m in flat[:3000]]), [mixed, flat]):
        out: list[bytes] = []
        budget = _Budget(_Closable(), 1 << 40)
        assert _encode_within(value, resp3, out, budget)
        wire = b"".join(out)
        assert wire == encode(value, resp3)
        assert (1 << 40) - budget.left == len(wire)


def test_budgeted_encoding_stops_once_the_budget_is_spent():
    out: list[bytes] = []
    assert not _encode_within([b"x" * 100] * 100_000, False, out, _Budget(_Closable(), 50_000))
    assert sum(map(len, out)) < 50_000 + 1024 * 110  # a chunk past the limit at most
