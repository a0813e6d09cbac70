"""The forms in which writes reach replicas and the AOF (``dumpling.persistence.propagation``).

Differential: a raw replica (``SYNC``, the snapshot skipped) is attached to dumpling and to
Redis 7.0, the same commands run on both, and the two replication streams must be the same
commands (absolute times and stream IDs, which differ by when they ran, are masked).  Where
Redis 7.4 writes another form than 7.0 (SELECT inside MULTI, XREADGROUP's XGROUP SETID,
hash-field expiry), the expected stream is a vector recorded from a Redis 7.4.1 server.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from tests.servers import RawConnection, ServerProcess, encode_command, start_dumpling, start_redis, wait_blocked

Command = tuple[bytes | str | int, ...]
OPTIONS = ("--repl-diskless-sync", "no", "--repl-ping-replica-period", "3600")
MARK = ("PUBLISH", "__mark__", "end")  # closes each case in the stream (propagated to replicas)


def parse_commands(data: bytes) -> tuple[list[list[bytes]], bytes]:
    """Pure: the complete RESP arrays at the start of ``data`` (a replication stream), and
    the bytes after them."""
    out: list[list[bytes]] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0 or data[pos:pos + 1] != b"*":
            return out, data[pos:]
        count = int(data[pos + 1:end])
        at = end + 2
        argv: list[bytes] = []
        for _ in range(count):
            line_end = data.find(b"\r\n", at)
            if line_end < 0:
                return out, data[pos:]
            size = int(data[at + 1:line_end])
            start = line_end + 2
            if len(data) < start + size + 2:
                return out, data[pos:]
            argv.append(data[start:start + size])
            at = start + size + 2
        out.append(argv)
        pos = at


def test_parse_commands_keeps_a_partial_tail() -> None:
    data = encode_command("SET", "a", "1") + encode_command("DEL", "a")
    assert parse_commands(data) == ([[b"SET", b"a", b"1"], [b"DEL", b"a"]], b"")
    assert parse_commands(data[:-3]) == ([[b"SET", b"a", b"1"]], data[len(encode_command("SET", "a", "1")):-3])


class ReplicaStream:
    """A replica in name only: SYNC, skip the snapshot, then read the command stream."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"SYNC\r\n")
        self.buf = b""
        while True:
            while b"\r\n" not in self.buf.lstrip(b"\n"):
                self._recv()
            self.buf = self.buf.lstrip(b"\n")  # keepalive newlines while the snapshot is made
            header, _, self.buf = self.buf.partition(b"\r\n")
            if header.startswith(b"$"):
                break
        size = int(header[1:])
        while len(self.buf) < size:
            self._recv()
        self.buf = self.buf[size:]

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("replication stream closed")
        self.buf += data

    def until_mark(self) -> list[list[bytes]]:
        """The commands up to the next MARK, without it and without PINGs."""
        commands: list[list[bytes]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            parsed, self.buf = parse_commands(self.buf)
            for argv in parsed:
                if argv[:2] == [b"PUBLISH", b"__mark__"]:
                    return commands
                if argv != [b"PING"]:
                    commands.append(argv)
            self._recv()
        raise AssertionError(f"no mark in the stream; so far {commands}")

    def close(self) -> None:
        self.sock.close()


_MASKS = (
    (re.compile(rb"^\d{13}-\d+$"), b"<id>"),  # stream IDs made from the clock
    (re.compile(rb"^\d{13}$"), b"<ms>"),  # absolute times in ms
)


def masked(commands: list[list[bytes]]) -> list[str]:
    """Commands as comparable text: names upper-cased, times and generated IDs masked."""
    out = []
    for argv in commands:
        words = [argv[0].upper()]
        for arg in argv[1:]:
            for pattern, mask in _MASKS:
                if pattern.match(arg):
                    arg = mask
                    break
            words.append(arg)
        out.append(b" ".join(words).decode("utf-8", "replace"))
    return out


class Side:
    """One server with a replica stream attached and a client connection."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.stream = ReplicaStream(server.port)
        self.conn = RawConnection(server.port)

    def run(self, commands: list[Command]) -> list[str]:
        """Run ``commands`` (``("SLEEP", ms)`` waits), then the stream they made."""
        for command in [("SELECT", 0), ("FLUSHALL",), *commands, MARK]:
            if command[0] == "SLEEP":
                time.sleep(int(command[1]) / 1000)
                continue
            reply = self.conn.call(*command)
            assert not reply.startswith(b"-"), (command, reply)
        forms = masked(self.stream.until_mark())
        assert forms[:1] == ["FLUSHALL"] or forms[:2] == ["SELECT 0", "FLUSHALL"], forms
        return forms[forms.index("FLUSHALL") + 1:]

    def close(self) -> None:
        self.stream.close()
        self.conn.close()


@pytest.fixture(scope="module")
def sides() -> Iterator[tuple[Side, Side]]:
    ours = start_dumpling(*OPTIONS)
    theirs = start_redis(*OPTIONS)
    try:
        pair = Side(ours), Side(theirs)
        for side in pair:
            side.conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # lazy expiry only: deterministic streams
        yield pair
        for side in pair:
            side.close()
    finally:
        ours.stop()
        theirs.stop()


def same_forms(sides: tuple[Side, Side], commands: list[Command]) -> list[str]:
    ours, theirs = sides
    expected = theirs.run(commands)
    assert ours.run(commands) == expected
    return expected


FUTURE_S = str(int(time.time()) + 100_000)
FUTURE_MS = FUTURE_S + "123"
# DUMP of the string "bar" as Redis 7.0 makes it (RDB 10), which every server here restores
RESTORE_PAYLOAD = b"\x00\x03bar\n\x00\xe6\xbeI`\xeef\xfd\x17"


def test_ttls_propagate_as_absolute_times(sides: tuple[Side, Side]) -> None:
    forms = same_forms(sides, [
        ("SET", "a", "1", "EX", 100), ("SET", "a", "1", "PX", 100000), ("SET", "a", "1", "EXAT", FUTURE_S),
        ("SET", "a", "1", "PXAT", FUTURE_MS), ("SETEX", "a", 100, "v"), ("PSETEX", "a", 100000, "v"),
        ("SET", "a", "1", "NX"), ("SET", "b", "1", "XX", "KEEPTTL"), ("SET", "a", "2", "GET"),
        ("SET", "a", "3", "GET", "PX", 5000), ("SET", "a", "4", "KEEPTTL", "get", "GET"),
        ("EXPIRE", "a", 100), ("PEXPIRE", "a", 200000, "GT"), ("EXPIREAT", "a", FUTURE_S, "XX"),
        ("PEXPIREAT", "a", FUTURE_MS), ("EXPIRE", "a", 10, "NX"), ("EXPIRE", "missing", 10),
        ("PERSIST", "a"), ("EXPIREAT", "a", 1000),
        ("SET", "g", "v"), ("GETEX", "g", "EX", 100), ("GETEX", "g", "PX", 100000), ("GETEX", "g", "EXAT", FUTURE_S),
        ("GETEX", "g", "PXAT", FUTURE_MS), ("GETEX", "g", "PERSIST"), ("GETEX", "g", "PERSIST"), ("GETEX", "g"),
        ("GETEX", "g", "EXAT", 1000),
        ("RESTORE", "r1", 100000, RESTORE_PAYLOAD), ("RESTORE", "r2", FUTURE_MS, RESTORE_PAYLOAD, "ABSTTL"),
        ("RESTORE", "r1", 1, RESTORE_PAYLOAD, "REPLACE", "ABSTTL"), ("RESTORE", "r3", 0, RESTORE_PAYLOAD),
    ])
    assert "SET a 1 PXAT <ms>" in forms and "DEL a" in forms and "PERSIST g" in forms


def test_rewritten_writes(sides: tuple[Side, Side]) -> None:
    same_forms(sides, [
        ("SET", "f", "10.5", "EX", 100), ("INCRBYFLOAT", "f", "0.1"), ("INCRBYFLOAT", "new", "3e2"),
        ("GETSET", "f", "x"), ("GETDEL", "f"), ("GETDEL", "f"),
        ("HSET", "h", "n", "1"), ("HINCRBYFLOAT", "h", "n", "1.5"), ("HINCRBYFLOAT", "h", "m", "-2"),
        ("SADD", "one", "m"), ("SPOP", "one"), ("SADD", "all", "a", "b", "c"), ("SPOP", "all", 5),
        ("SADD", "s", "x"), ("SPOP", "s", 0), ("SPOP", "missing", 2),
        ("SET", "o", "v"), ("RESTORE", "o", 1, RESTORE_PAYLOAD, "REPLACE", "ABSTTL"),
    ])


def test_pops_propagate_as_plain_pops(sides: tuple[Side, Side]) -> None:
    same_forms(sides, [
        ("RPUSH", "l", "a", "b", "c", "d"), ("LMPOP", 2, "none", "l", "LEFT", "COUNT", 9), ("RPUSH", "l", "a", "b", "c"),
        ("LMPOP", 1, "l", "RIGHT"), ("BLPOP", "none", "l", 0), ("BRPOP", "l", 0), ("RPUSH", "l", "a", "b", "c"),
        ("BLMPOP", 0, 1, "l", "LEFT", "COUNT", 2), ("RPUSH", "l", "x", "y"), ("BLMOVE", "l", "m", "left", "RIGHT", 0),
        ("BRPOPLPUSH", "l", "m", 0), ("LMOVE", "m", "l", "LEFT", "LEFT"), ("RPOPLPUSH", "m", "l"),
        ("ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d"), ("ZMPOP", 1, "z", "MIN"), ("ZMPOP", 1, "z", "MAX", "COUNT", 2),
        ("BZPOPMIN", "z", 0), ("ZADD", "z", 1, "a", 2, "b"), ("BZPOPMAX", "z", 0),
        ("BZMPOP", 0, 2, "none", "z", "MIN", "COUNT", 5), ("ZADD", "z", 5, "e"), ("ZPOPMIN", "z", 3),
    ])


def _served_later(side: Side, blocking: Command, feed: list[Command]) -> list[str]:
    """A blocking command that waits, then is served by ``feed`` from another client."""
    side.conn.call("SELECT", 0)
    side.conn.call("FLUSHALL")
    with RawConnection(side.server.port) as waiter:
        waiter.send(encode_command(*blocking))
        wait_blocked(side.conn)
        for command in feed:
            side.conn.call(*command)
        waiter.read_reply()
    side.conn.call(*MARK)
    forms = masked(side.stream.until_mark())
    return forms[forms.index("FLUSHALL") + 1:]


@pytest.mark.parametrize("blocking, feed", [
    (("BLPOP", "l", 0), [("RPUSH", "l", "a", "b")]),
    (("BLMPOP", 0, 1, "l", "RIGHT", "COUNT", 5), [("RPUSH", "l", "a", "b")]),
    (("BLMOVE", "l", "m", "right", "left", 0), [("RPUSH", "l", "a")]),
    (("BRPOPLPUSH", "l", "m", 0), [("RPUSH", "l", "a")]),
    (("BZPOPMIN", "z", 0), [("ZADD", "z", 1, "a", 2, "b")]),
    (("BZMPOP", 0, 1, "z", "MAX", "COUNT", 3), [("ZADD", "z", 1, "a", 2, "b")]),
], ids=["blpop", "blmpop", "blmove", "brpoplpush", "bzpopmin", "bzmpop"])
def test_blocked_commands_served_later_propagate_as_plain_pops(
        sides: tuple[Side, Side], blocking: Command, feed: list[Command]) -> None:
    ours, theirs = sides
    assert _served_later(ours, blocking, feed) == _served_later(theirs, blocking, feed)


def test_lazy_expiry_deletes_before_the_command(sides: tuple[Side, Side]) -> None:
    forms = same_forms(sides, [
        ("SET", "e1", "v", "PX", 1), ("SET", "e2", "v", "PX", 1), ("SET", "e3", "v", "PX", 1), ("SLEEP", 20),
        ("GET", "e1"),  # a read: DEL alone
        ("SET", "e2", "new"),  # a write over an expired key: MULTI DEL SET EXEC
        ("CONFIG", "SET", "lazyfree-lazy-expire", "yes"), ("EXISTS", "e3"),  # UNLINK
        ("CONFIG", "SET", "lazyfree-lazy-expire", "no"),
    ])
    assert forms == ["SET e1 v PXAT <ms>", "SET e2 v PXAT <ms>", "SET e3 v PXAT <ms>", "DEL e1",
                     "MULTI", "DEL e2", "SET e2 new", "EXEC", "UNLINK e3"]


def test_transactions(sides: tuple[Side, Side]) -> None:
    forms = same_forms(sides, [
        ("MULTI",), ("GET", "a"), ("EXEC",),  # only reads: nothing
        ("MULTI",), ("SET", "a", "1"), ("EXEC",),  # one write: no MULTI/EXEC
        ("MULTI",), ("EXEC",),
        ("MULTI",), ("SET", "a", "2", "NX"), ("EXEC",),  # a write that changed nothing
        ("MULTI",), ("SET", "a", "3", "EX", 100), ("INCR", "n"), ("SPOP", "none"), ("EXEC",),
        ("MULTI",), ("PUBLISH", "ch", "m"), ("EXEC",),
        ("MULTI",), ("SET", "b", "1"), ("EVAL", "redis.call('incr', 'n'); return redis.call('spop', 'none')", 0),
        ("EXEC",),  # a script inside a transaction: its effects inside the one MULTI/EXEC
    ])
    assert forms == ["SET a 1", "MULTI", "SET a 3 PXAT <ms>", "INCR n", "EXEC", "PUBLISH ch m",
                     "MULTI", "SET b 1", "INCR n", "EXEC"]


def test_streams(sides: tuple[Side, Side]) -> None:
    same_forms(sides, [
        ("XADD", "s", "1-*", "a", "1"), ("XADD", "s", "2-1", "b", "2"), ("XADD", "s", "MAXLEN", "~", 1, "3-*", "c", "3"),
        ("XADD", "s", "*", "d", "4"), ("XTRIM", "s", "MAXLEN", "~", 0), ("XTRIM", "s", "MAXLEN", 3),
        ("XGROUP", "CREATE", "s", "g", "0"), ("XGROUP", "CREATECONSUMER", "s", "g", "c0"),
        ("XCLAIM", "s", "g", "c2", 0, "2-1", "FORCE", "JUSTID"), ("XAUTOCLAIM", "s", "g", "c3", 0, 0),
        ("XCLAIM", "s", "g", "c3", 0, "2-1", "LASTID", "2-1"), ("XACK", "s", "g", "2-1"),
        ("XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", 0), ("XGROUP", "DELCONSUMER", "s", "g", "c0"),
    ])


def test_other_writes_and_scripts(sides: tuple[Side, Side]) -> None:
    same_forms(sides, [
        ("SET", "a", "1"), ("FLUSHALL", "ASYNC"), ("SET", "a", "1"), ("FLUSHDB", "SYNC"), ("SWAPDB", 0, 1),
        ("SWAPDB", 0, 1), ("SCRIPT", "LOAD", "return 1"), ("RPUSH", "l", 3, 1, 2), ("SORT", "l", "STORE", "dst"),
        ("SET", "m", "v"), ("MOVE", "m", 2), ("COPY", "dst", "d2", "DB", 3), ("RENAME", "dst", "d3"),
        ("PFADD", "h", "a", "b"), ("PFCOUNT", "h"), ("BITFIELD", "bf", "SET", "u8", 0, 255),
        ("GEOADD", "g", "CH", "13.36", "38.11", "p"), ("GEOSEARCHSTORE", "gd", "g", "FROMLONLAT", 13, 38, "BYRADIUS", 200, "km"),
        ("EVAL", "redis.call('set', KEYS[1], 'x'); redis.call('expire', KEYS[1], 100); return 1", 1, "ek"),
        ("EVAL", "redis.call('incr', 'n'); redis.call('get', 'n'); return 1", 0),
        ("EVAL", "return redis.call('get', 'n')", 0), ("DEL", "missing"), ("SETRANGE", "sr", 5, "x"),
    ])


def test_flushall_with_save_points_is_propagated(sides: tuple[Side, Side]) -> None:
    """With save points FLUSHALL saves the empty dataset at once, which zeroes the count of
    changes; it still reaches replicas and the AOF (Redis 7.0 and 7.4 force its propagation),
    also when nothing had changed since the last save (Side.run begins with a FLUSHALL)."""
    for side in sides:
        side.conn.call("CONFIG", "SET", "save", "3600 1")
    try:
        same_forms(sides, [("FLUSHALL",), ("FLUSHALL",), ("SET", "b", "1"), ("MULTI",), ("FLUSHALL",), ("EXEC",)])
        same_forms(sides, [("SET", "a", "1"), ("FLUSHALL",)])
        changes = [side.conn.call("INFO", "persistence").split(b"rdb_changes_since_last_save:")[1].split(b"\r\n")[0]
                   for side in sides]
        assert changes == [b"0", b"0"]
    finally:
        for side in sides:
            side.conn.call("CONFIG", "SET", "save", "")


# -- Redis 7.4's own forms (vectors recorded from a Redis 7.4.1 server) ----------------------------


def test_transaction_selects_inside_multi(sides: tuple[Side, Side]) -> None:
    """7.4 writes MULTI first, then the SELECT of its first command (7.0: SELECT, MULTI)."""
    ours, _ = sides
    assert ours.run([("MULTI",), ("SELECT", 2), ("SET", "a", "1"), ("SELECT", 3), ("SET", "b", "2"), ("EXEC",)]) == [
        "MULTI", "SELECT 2", "SET a 1", "SELECT 3", "SET b 2", "EXEC"]


def test_xreadgroup_propagates_claims_and_the_group_position(sides: tuple[Side, Side]) -> None:
    ours, _ = sides
    assert ours.run([
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "1-2", "b", "2"), ("XGROUP", "CREATE", "s", "g", "0"),
        ("MULTI",), ("XREADGROUP", "GROUP", "g", "c1", "COUNT", 1, "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"), ("EXEC",),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),  # history: nothing
        ("XREADGROUP", "GROUP", "g", "c9", "NOACK", "STREAMS", "s", ">"),
    ]) == [
        "XADD s 1-1 a 1", "XADD s 1-2 b 2", "XGROUP CREATE s g 0", "MULTI",
        "XCLAIM s g c1 0 1-1 TIME <ms> RETRYCOUNT 1 FORCE JUSTID LASTID 1-1", "XGROUP SETID s g 1-1 ENTRIESREAD 1",
        "XCLAIM s g c1 0 1-2 TIME <ms> RETRYCOUNT 1 FORCE JUSTID LASTID 1-2", "XGROUP SETID s g 1-2 ENTRIESREAD 2",
        "EXEC", "XGROUP CREATECONSUMER s g c9"]


def test_lazyfree_server_del_and_arguments_as_typed(sides: tuple[Side, Side]) -> None:
    """7.4 propagates an emptying SPOP as UNLINK under lazyfree-lazy-server-del, SET ... PXAT
    and a served BLMOVE with the arguments as typed (7.0: DEL, PXAT, its own spellings)."""
    ours, _ = sides
    assert ours.run([
        ("CONFIG", "SET", "lazyfree-lazy-server-del", "yes"), ("SADD", "all", "a", "b"), ("SPOP", "all", 2),
        ("SET", "o", "v"), ("RESTORE", "o", 1, RESTORE_PAYLOAD, "REPLACE", "ABSTTL"),
        ("CONFIG", "SET", "lazyfree-lazy-server-del", "no"),
        ("SET", "a", "1", "pxat", FUTURE_MS), ("SET", "a", "1", "PXAT", FUTURE_MS, "GET"),
    ]) == ["SADD all a b", "UNLINK all", "SET o v", "UNLINK o", "SET a 1 pxat <ms>", "SET a 1 PXAT <ms> GET"]
    assert _served_later(ours, ("BLMOVE", "l", "m", "RIGHT", "left", 0), [("RPUSH", "l", "a")]) == [
        "RPUSH l a", "LMOVE l m RIGHT left"]


def test_scan_lazy_expiry_is_not_wrapped(sides: tuple[Side, Side]) -> None:
    ours, _ = sides
    forms = ours.run([("SET", "k1", "v", "PX", 1), ("SET", "k2", "v", "PX", 1), ("SLEEP", 20), ("SCAN", 0)])
    assert forms[:2] == ["SET k1 v PXAT <ms>", "SET k2 v PXAT <ms>"]
    assert sorted(forms[2:]) == ["DEL k1", "DEL k2"]


def test_hash_field_expiry_forms(sides: tuple[Side, Side]) -> None:
    ours, _ = sides
    assert ours.run([
        ("HSET", "h", "f1", "v", "f2", "v", "f3", "v"),
        ("HEXPIRE", "h", 100, "NX", "FIELDS", 3, "f1", "f2", "nofield"),  # only the fields it set
        ("HEXPIRE", "h", 100, "NX", "FIELDS", 1, "f1"),  # none set: nothing
        ("HPEXPIREAT", "h", FUTURE_MS, "FIELDS", 1, "f3"), ("HPERSIST", "h", "FIELDS", 1, "f3"),
        ("HPERSIST", "h", "FIELDS", 1, "f3"), ("HEXPIREAT", "h", 1000, "FIELDS", 2, "f1", "nofield"),  # past: HDEL
        ("HSET", "x", "a", "1", "b", "2"), ("HPEXPIRE", "x", 1, "FIELDS", 2, "a", "b"), ("SLEEP", 20),
        ("HRANDFIELD", "x", 2),  # both expired on the way: HDELs in one transaction
        ("HSET", "y", "a", "1", "b", "2"), ("HPEXPIRE", "y", 1, "FIELDS", 1, "a"), ("SLEEP", 20), ("HGET", "y", "a"),
    ]) == [
        "HSET h f1 v f2 v f3 v", "HPEXPIREAT h <ms> NX FIELDS 2 f1 f2", "HPEXPIREAT h <ms> FIELDS 1 f3",
        "HPERSIST h FIELDS 1 f3", "HDEL h f1", "HSET x a 1 b 2", "HPEXPIREAT x <ms> FIELDS 2 a b",
        "MULTI", "HDEL x a", "HDEL x b", "EXEC", "HSET y a 1 b 2", "HPEXPIREAT y <ms> FIELDS 1 a", "HDEL y a"]


def _blocked_on_expired_key(side: Side) -> list[str]:
    """A client blocked on a list that arrives already expired (a transaction pushes it, sets
    a TTL and sleeps past it): it stays blocked, and the DEL comes with the command that meets
    the key next."""
    side.conn.call("SELECT", 0)
    side.conn.call("FLUSHALL")
    with RawConnection(side.server.port) as waiter:
        waiter.send(encode_command("CLIENT", "ID"))
        client_id = waiter.read_reply()[1:-2]
        waiter.send(encode_command("BRPOP", "k", 0))
        wait_blocked(side.conn)
        for command in [("MULTI",), ("RPUSH", "k", "v"), ("PEXPIRE", "k", 10), ("DEBUG", "SLEEP", "0.05"), ("EXEC",)]:
            side.conn.call(*command)
        assert b"flags=b" in side.conn.call("CLIENT", "LIST", "ID", client_id)
        side.conn.call("CLIENT", "UNBLOCK", client_id)
        assert waiter.read_reply() == b"*-1\r\n"
        side.conn.call("EXISTS", "k")
    side.conn.call(*MARK)
    forms = masked(side.stream.until_mark())
    return forms[forms.index("FLUSHALL") + 1:]


def test_blocked_pop_leaves_an_expired_key_to_the_next_command(sides: tuple[Side, Side]) -> None:
    """Vector from Redis 7.4.1 (unit/type/list's "key already expired" cases)."""
    ours, _ = sides
    assert _blocked_on_expired_key(ours) == ["MULTI", "RPUSH k v", "PEXPIREAT k <ms>", "EXEC", "DEL k"]


def _swapdb_onto_expired_key(side: Side) -> list[str]:
    """SWAPDB brings a key past its TTL under a client blocked on it: the client stays blocked
    (nothing is deleted by the attempt to serve it), and the DEL comes with the next command
    that meets the key."""
    side.conn.call("SELECT", 0)
    side.conn.call("FLUSHALL")
    side.conn.call("SELECT", 1)
    side.conn.call("RPUSH", "k", "v")
    side.conn.call("PEXPIRE", "k", 10)
    with RawConnection(side.server.port) as waiter:
        waiter.call("SELECT", 9)
        client_id = waiter.call("CLIENT", "ID")[1:-2]
        waiter.send(encode_command("BRPOP", "k", 0))
        wait_blocked(side.conn)
        time.sleep(0.05)
        side.conn.call("SWAPDB", 1, 9)
        assert b"flags=b" in side.conn.call("CLIENT", "LIST", "ID", client_id)
        side.conn.call("CLIENT", "UNBLOCK", client_id)
        assert waiter.read_reply() == b"*-1\r\n"
        waiter.call("EXISTS", "k")
    side.conn.call("SELECT", 0)
    side.conn.call(*MARK)
    forms = masked(side.stream.until_mark())
    return forms[forms.index("FLUSHALL") + 1:]


def test_swapdb_onto_an_expired_key_a_client_waits_for(sides: tuple[Side, Side]) -> None:
    """Vector from Redis 7.4.1 (unit/type/list's SWAPDB case)."""
    ours, _ = sides
    assert _swapdb_onto_expired_key(ours) == [
        "SELECT 1", "RPUSH k v", "PEXPIREAT k <ms>", "SWAPDB 1 9", "SELECT 9", "DEL k", "SELECT 0"]


def test_migrate_propagates_as_del_of_the_moved_keys(sides: tuple[Side, Side]) -> None:
    target = start_redis()
    try:
        host, port = "127.0.0.1", target.port
        same_forms(sides, [
            ("SET", "a", "1"), ("SET", "b", "2"), ("SET", "c", "3"),
            ("MIGRATE", host, port, "", 0, 5000, "REPLACE", "KEYS", "a", "b", "missing"),
            ("MIGRATE", host, port, "c", 0, 5000, "COPY", "REPLACE"),  # COPY: nothing
            ("MIGRATE", host, port, "c", 0, 5000, "REPLACE"),
        ])
    finally:
        target.stop()


def test_pfdebug_encoding_changes_propagate_as_sent(sides: tuple[Side, Side]) -> None:
    """PFDEBUG converts a sparse HLL to dense and forces propagation (``server.dirty++``):
    the command as sent, not an image of the key."""
    same_forms(sides, [
        ("PFADD", "h1", "a", "b"), ("PFDEBUG", "GETREG", "h1"), ("PFDEBUG", "GETREG", "h1"),
        ("PFADD", "h2", "x"), ("PFDEBUG", "TODENSE", "h2"), ("PFDEBUG", "TODENSE", "h2"),
        ("PFDEBUG", "ENCODING", "h2"),
    ])
