"""Blocking BZPOPMIN/BZPOPMAX/BZMPOP/XREAD/XREADGROUP with concurrent clients.

Each scenario runs the same byte sequence against dumpling and real Redis from
several raw connections and compares every reply: who is served, in which order,
with what, and what the others see when they time out.  The server must keep
answering other clients while some are blocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.servers import RawConnection, ServerProcess, encode_command, parse_reply, wait_blocked


def on_both(dumpling_server: ServerProcess, redis_server: ServerProcess, resp: int,
            scenario: Callable[[Callable[[], RawConnection]], list[bytes]]) -> list[bytes]:
    results = []
    for server in (dumpling_server, redis_server):
        conns: list[RawConnection] = []

        def connect(server: ServerProcess = server, conns: list[RawConnection] = conns) -> RawConnection:
            conn = server.raw()
            if resp == 3:
                conn.call("HELLO", "3")
            conns.append(conn)
            return conn

        admin = connect()
        admin.call("FLUSHALL")
        try:
            results.append(scenario(connect))
        finally:
            for conn in conns:
                conn.close()
    assert results[0] == results[1], f"\n  dumpling: {results[0]!r}\n  redis:    {results[1]!r}"
    return results[0]


def send(conn: RawConnection, *args: object) -> None:
    conn.send(encode_command(*args))  # type: ignore[arg-type]


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def resp(request: pytest.FixtureRequest) -> int:
    return request.param


# ----------------------------------------------------------------------------- sorted sets


def test_bzpop_served_by_zadd_in_arrival_order(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        waiters = [connect() for _ in range(3)]
        send(waiters[0], "BZPOPMIN", "z", "0")
        wait_blocked(admin, 1)
        send(waiters[1], "BZPOPMAX", "other", "z", "0")
        wait_blocked(admin, 2)
        send(waiters[2], "BZMPOP", "0.3", "1", "z", "MIN", "COUNT", "5")
        wait_blocked(admin, 3)
        out = [admin.call("PING"), admin.call("ZADD", "z", "1", "a", "2", "b", "3", "c")]
        out.append(waiters[0].read_reply())
        out.append(waiters[1].read_reply())
        out.append(waiters[2].read_reply())
        out.append(admin.call("EXISTS", "z"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_bzpop_fairness_and_timeout(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        waiters = [connect() for _ in range(3)]
        # the first two wait long enough for the ZADD however slow the machine; the third
        # times out 0.4 s after it blocked, so no sooner than 0.4 s after it was sent
        for i, w in enumerate(waiters):
            sent = time.monotonic()
            send(w, "BZPOPMIN", "z", "0.4" if i == 2 else "30")
            wait_blocked(admin, i + 1)
        out = [admin.call("ZADD", "z", "1", "a", "2", "b")]
        out += [waiters[0].read_reply(), waiters[1].read_reply()]
        out.append(waiters[2].read_reply())
        assert time.monotonic() - sent >= 0.39
        out.append(admin.call("EXISTS", "z"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_bzpop_multiple_keys_and_types(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        w = connect()
        send(w, "BZPOPMAX", "k1", "k2", "k3", "0")
        wait_blocked(admin, 1)
        out = [admin.call("RPUSH", "k4", "x"), admin.call("ZADD", "k3", "5", "m", "7", "n")]
        out.append(w.read_reply())
        out.append(admin.call("ZRANGE", "k3", "0", "-1", "WITHSCORES"))
        send(w, "BZMPOP", "0", "2", "k6", "k3", "MAX", "COUNT", "10")
        out.append(w.read_reply())
        send(w, "BZMPOP", "0", "2", "k6", "k5", "MIN")
        wait_blocked(admin, 1)
        out.append(admin.call("ZADD", "k5", "1", "q"))
        out.append(w.read_reply())
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_blocked_client_released_on_disconnect_and_kill(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        gone = connect()
        send(gone, "BZPOPMIN", "z", "0")
        wait_blocked(admin, 1)
        gone.close()
        wait_blocked(admin, 0)
        out = [admin.call("ZADD", "z", "1", "a"), admin.call("ZCARD", "z")]
        killed = connect()
        killed.call("CLIENT", "SETNAME", "victim")
        send(killed, "BZPOPMIN", "y", "0")
        wait_blocked(admin, 1)
        ident = parse_reply(killed_id_of(admin, b"victim"))
        out.append(admin.call("CLIENT", "KILL", "ID", str(ident)))
        assert killed.is_closed()
        wait_blocked(admin, 0)
        out.append(admin.call("ZADD", "y", "1", "b"))
        out.append(admin.call("ZCARD", "y"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def killed_id_of(admin: RawConnection, name: bytes) -> bytes:
    listing = parse_reply(admin.call("CLIENT", "LIST"))
    text = listing if isinstance(listing, bytes) else str(listing).encode()
    for line in text.splitlines():
        fields = dict(f.split(b"=", 1) for f in line.split(b" ") if b"=" in f)
        if fields.get(b"name") == name:
            return b":" + fields[b"id"] + b"\r\n"
    raise AssertionError("client not found")


def test_blocked_pop_rerun_sees_wrong_type_is_7_4(dumpling_server, resp) -> None:
    """7.4 re-runs a blocked BZPOP* when a key becomes ready: an earlier key that became a
    list now answers WRONGTYPE (7.0 served the ready key directly)."""
    admin, w = dumpling_server.raw(), dumpling_server.raw()
    try:
        if resp == 3:
            w.call("HELLO", "3")
        admin.call("FLUSHALL")
        send(w, "BZPOPMAX", "k1", "k2", "0")
        wait_blocked(admin, 1)
        admin.call("RPUSH", "k1", "x")
        wait_blocked(admin, 1)
        admin.call("ZADD", "k2", "1", "m")
        assert w.read_reply() == b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        assert admin.call("ZCARD", "k2") == b":1\r\n"
    finally:
        admin.close()
        w.close()


def test_client_unblock(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        w = connect()
        w_id = parse_reply(w.call("CLIENT", "ID"))
        out = []
        send(w, "BZPOPMIN", "z", "0")
        wait_blocked(admin, 1)
        out.append(admin.call("CLIENT", "UNBLOCK", str(w_id)))
        out.append(w.read_reply())
        send(w, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        wait_blocked(admin, 1)
        out.append(admin.call("CLIENT", "UNBLOCK", str(w_id), "ERROR"))
        out.append(w.read_reply())
        out.append(w.call("PING"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_server_keeps_serving_while_clients_block(dumpling_server) -> None:
    conns = [dumpling_server.raw() for _ in range(20)]
    admin = dumpling_server.raw()
    try:
        admin.call("FLUSHALL")
        for conn in conns:
            send(conn, "BZPOPMIN", "never", "0")
        wait_blocked(admin, 20)
        start = dumpling_server.cpu_seconds()
        for _ in range(200):
            assert admin.call("PING") == b"+PONG\r\n"
        assert dumpling_server.cpu_seconds() - start < 2.0  # CPU, not wall time: a loaded machine stretches that
        for i, conn in enumerate(conns):
            admin.call("ZADD", "never", str(i), f"m{i}")
            reply = parse_reply(conn.read_reply())
            assert reply == [b"never", f"m{i}".encode(), str(i).encode()]
    finally:
        for conn in conns:
            conn.close()
        admin.close()


# ----------------------------------------------------------------------------- streams


def test_xread_block_dollar_remembers_last_id(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        r1, r2 = connect(), connect()
        out = [admin.call("XADD", "s", "1-1", "a", "1")]
        send(r1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        send(r2, "XREAD", "BLOCK", "0", "COUNT", "5", "STREAMS", "nokey", "s", "0", "$")
        wait_blocked(admin, 2)
        out.append(admin.call("XADD", "s", "2-1", "b", "2"))
        out.append(r1.read_reply())
        out.append(r2.read_reply())
        send(r1, "XREAD", "BLOCK", "100", "STREAMS", "s", "$")
        start = time.monotonic()
        out.append(r1.read_reply())
        assert time.monotonic() - start >= 0.05
        send(r1, "XREAD", "BLOCK", "0", "STREAMS", "s", "5-0")
        wait_blocked(admin, 1)
        out.append(admin.call("XADD", "s", "3-0", "c", "3"))
        out.append(admin.call("XADD", "s", "6-0", "d", "4"))
        out.append(r1.read_reply())
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_xreadgroup_block_new_entries(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        c1, c2 = connect(), connect()
        out = [admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")]
        out.append(admin.call("XGROUP", "CREATECONSUMER", "s", "g", "alice"))
        out.append(admin.call("XGROUP", "CREATECONSUMER", "s", "g", "bob"))
        send(c1, "XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        send(c2, "XREADGROUP", "GROUP", "g", "bob", "BLOCK", "0", "COUNT", "1", "STREAMS", "s", ">")
        wait_blocked(admin, 2)
        out.append(admin.call("XADD", "s", "1-0", "f", "v"))
        out.append(c1.read_reply())
        wait_blocked(admin, 1)
        out.append(admin.call("XADD", "s", "2-0", "f", "w"))
        out.append(c2.read_reply())
        out.append(admin.call("XPENDING", "s", "g"))
        out.append(admin.call("XINFO", "GROUPS", "s"))
        send(c1, "XREADGROUP", "GROUP", "g", "alice", "NOACK", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        out.append(admin.call("XADD", "s", "3-0", "f", "x"))
        out.append(c1.read_reply())
        out.append(admin.call("XPENDING", "s", "g"))
        send(c1, "XREADGROUP", "GROUP", "g", "alice", "BLOCK", "50", "STREAMS", "s", ">")
        out.append(c1.read_reply())
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_xreadgroup_unblocked_when_stream_or_group_vanishes_is_7_4(dumpling_server, resp) -> None:
    """7.4 re-runs a blocked XREADGROUP when its key is deleted or its group destroyed,
    which answers -NOGROUP (7.0 sent '-UNBLOCKED the stream key no longer exists')."""
    admin, a, b = dumpling_server.raw(), dumpling_server.raw(), dumpling_server.raw()
    try:
        for conn in (admin, a, b):
            if resp == 3:
                conn.call("HELLO", "3")
        admin.call("FLUSHALL")
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        send(a, "XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "s", ">")
        send(b, "XREADGROUP", "GROUP", "g", "y", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 2)
        admin.call("DEL", "s")
        expected = (b"-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n")
        assert a.read_reply() == expected
        assert b.read_reply() == expected
        admin.call("XGROUP", "CREATE", "t", "g", "$", "MKSTREAM")
        send(a, "XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "t", ">")
        wait_blocked(admin, 1)
        assert admin.call("XGROUP", "DESTROY", "t", "g") == b":1\r\n"
        assert a.read_reply() == b"-NOGROUP No such key 't' or consumer group 'g' in XREADGROUP with GROUP option\r\n"
        admin.call("XGROUP", "CREATE", "u", "g", "$", "MKSTREAM")
        send(a, "XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "u", ">")
        wait_blocked(admin, 1)
        admin.call("SET", "u", "now a string")
        assert a.read_reply() == b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    finally:
        for conn in (admin, a, b):
            conn.close()


def test_xreadgroup_unblocked_by_flush_is_7_4(dumpling_server, resp) -> None:
    """Recorded from Redis 7.4.1: FLUSHALL and FLUSHDB of the stream's database release a blocked
    XREADGROUP (signalFlushedDb) with -NOGROUP; a flush of another database does not."""
    admin, a = dumpling_server.raw(), dumpling_server.raw()
    expected = b"-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n"
    try:
        for conn in (admin, a):
            if resp == 3:
                conn.call("HELLO", "3")
        for flush in (("FLUSHALL",), ("FLUSHDB",), ("FLUSHALL", "ASYNC")):
            admin.call("FLUSHALL")
            admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            send(a, "XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "s", ">")
            wait_blocked(admin, 1)
            admin.call("SELECT", "1")
            admin.call("FLUSHDB")  # another database: still blocked
            admin.call("SELECT", "0")
            wait_blocked(admin, 1)
            admin.call(*flush)
            assert a.read_reply() == expected, flush
            wait_blocked(admin, 0)
    finally:
        for conn in (admin, a):
            conn.close()


@pytest.mark.parametrize("in_other_db,expected", [
    (None, b"-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n"),
    (("LPUSH", "s", "e1"), b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
], ids=["key-gone", "key-not-a-stream"])
def test_xreadgroup_unblocked_by_swapdb_is_7_4(dumpling_server, in_other_db, expected) -> None:
    """Recorded from Redis 7.4.1: SWAPDB that takes the stream away from a blocked XREADGROUP's
    database (scanDatabaseForDeletedKeys) releases it with -NOGROUP, or -WRONGTYPE when the key
    it gets in its place is not a stream (7.0 answered '-UNBLOCKED the stream key no longer exists')."""
    admin, a = dumpling_server.raw(), dumpling_server.raw()
    try:
        admin.call("FLUSHALL")
        if in_other_db:
            admin.call("SELECT", "4")
            admin.call(*in_other_db)
        admin.call("SELECT", "9")
        admin.call("XADD", "s", "666", "f", "v")
        admin.call("XGROUP", "CREATE", "s", "g", "$")
        a.call("SELECT", "9")
        send(a, "XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        admin.call("SWAPDB", "4", "9")
        assert a.read_reply() == expected
        wait_blocked(admin, 0)
    finally:
        admin.call("FLUSHALL")
        for conn in (admin, a):
            conn.close()


def test_other_blocked_clients_stay_blocked_after_flush(dumpling_server, redis_server, resp) -> None:
    """Only XREADGROUP is released by a flush: BLPOP, BZPOPMIN and XREAD keep waiting."""
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin, a, b, c = connect(), connect(), connect(), connect()
        admin.call("XADD", "x", "1-1", "f", "v")
        admin.call("ZADD", "z", "1", "m")
        admin.call("ZPOPMIN", "z")
        send(a, "BLPOP", "l", "0")
        send(b, "BZPOPMIN", "z", "0")
        send(c, "XREAD", "BLOCK", "0", "STREAMS", "x", "$")
        wait_blocked(admin, 3)
        admin.call("FLUSHALL")
        wait_blocked(admin, 3)
        admin.call("RPUSH", "l", "1")
        admin.call("ZADD", "z", "2", "n")
        admin.call("XADD", "x", "2-1", "f", "w")
        return [a.read_reply(), b.read_reply(), c.read_reply()]

    on_both(dumpling_server, redis_server, resp, scenario)


def test_blocking_inside_multi_is_immediate(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        c = connect()
        return [c.call("MULTI"), c.call("BZPOPMIN", "z", "0"), c.call("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
                c.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
                c.call("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"),
                c.call("BZMPOP", "0", "1", "z", "MIN"), c.call("EXEC")]

    on_both(dumpling_server, redis_server, resp, scenario)


def test_many_xread_clients_served_by_one_xadd(dumpling_server, redis_server, resp) -> None:
    def scenario(connect: Callable[[], RawConnection]) -> list[bytes]:
        admin = connect()
        readers = [connect() for _ in range(5)]
        for i, r in enumerate(readers):
            send(r, "XREAD", "BLOCK", "0", "STREAMS", "s", "0")
            wait_blocked(admin, i + 1)
        out = [admin.call("XADD", "s", "1-0", "a", "b")]
        out += [r.read_reply() for r in readers]
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_info_blocking_keys_on_nokey_is_7_4(dumpling_server) -> None:
    """Recorded from Redis 7.4.1: INFO clients counts the blocked keys (total_blocking_keys) and,
    of those, the ones with an XREADGROUP waiting, which a deletion releases
    (total_blocking_keys_on_nokey); BLPOP and XREAD do not count in the latter."""
    admin = dumpling_server.raw()
    waiting = [dumpling_server.raw() for _ in range(3)]

    def counts() -> tuple[int, int]:
        info = parse_reply(admin.call("INFO", "clients")).decode()
        fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
        return int(fields["total_blocking_keys"]), int(fields["total_blocking_keys_on_nokey"])

    try:
        admin.call("FLUSHALL")
        send(waiting[0], "BLPOP", "s", "0")
        wait_blocked(admin, 1)
        seen = [counts()]
        admin.call("XADD", "s", "666", "k", "v")
        admin.call("XGROUP", "CREATE", "s", "g", "$")
        send(waiting[1], "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 2)
        seen.append(counts())
        send(waiting[2], "XREAD", "BLOCK", "0", "STREAMS", "s3", "$")
        wait_blocked(admin, 3)
        seen.append(counts())
        admin.call("DEL", "s")
        assert waiting[1].read_reply().startswith(b"-NOGROUP")
        seen.append(counts())
        admin.call("LPUSH", "s", "x")
        admin.call("XADD", "s3", "*", "a", "1")
        waiting[0].read_reply()
        waiting[2].read_reply()
        wait_blocked(admin, 0)
        seen.append(counts())
        assert seen == [(1, 0), (1, 1), (2, 1), (2, 0), (0, 0)]
    finally:
        for conn in (admin, *waiting):
            conn.close()


def test_error_to_unblocked_client_is_counted_is_7_4(dumpling_server) -> None:
    """Recorded from Redis 7.4.1 (unit/type/stream-cgroups): the -NOGROUP a destroyed group sends
    to a blocked XREADGROUP counts in errorstats, total_error_replies and the command's
    failed_calls, like a -WRONGTYPE from a re-run BLPOP."""
    admin, a = dumpling_server.raw(), dumpling_server.raw()

    def info(section: str) -> str:
        return parse_reply(admin.call("INFO", section)).decode()

    try:
        admin.call("FLUSHALL")
        admin.call("CONFIG", "RESETSTAT")
        admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
        send(a, "XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "s", ">")
        wait_blocked(admin, 1)
        admin.call("XGROUP", "DESTROY", "s", "g")
        assert a.read_reply().startswith(b"-NOGROUP")
        send(a, "BLPOP", "k1", "k2", "0")
        wait_blocked(admin, 1)
        admin.call("SET", "k1", "x")
        admin.call("LPUSH", "k2", "v")
        assert a.read_reply().startswith(b"-WRONGTYPE")
        assert "errorstat_NOGROUP:count=1\r\n" in info("errorstats")
        assert "errorstat_WRONGTYPE:count=1\r\n" in info("errorstats")
        stats = info("commandstats")
        assert "cmdstat_xreadgroup:calls=1," in stats and "rejected_calls=0,failed_calls=1" in stats
        assert "cmdstat_blpop:calls=1," in stats
        assert "total_error_replies:2\r\n" in info("stats")
    finally:
        for conn in (admin, a):
            conn.close()
