"""Blocking list pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) with several concurrent clients.

Each scenario runs the same commands against dumpling and real Redis from several
raw connections and compares every reply byte for byte: who is served, in what
order, with which element, and what the others get when they time out.  Other
clients keep being answered while some are blocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.servers import RawConnection, ServerProcess, encode_command, parse_reply, wait_blocked

Connect = Callable[[], RawConnection]


def on_both(dumpling_server: ServerProcess, redis_server: ServerProcess, resp: int,
            scenario: Callable[[Connect], list[object]]) -> list[object]:
    results = []
    for server in (dumpling_server, redis_server):
        conns: list[RawConnection] = []

        def connect(server: ServerProcess = server, conns: list[RawConnection] = conns) -> RawConnection:
            conn = server.raw()
            if resp == 3:
                conn.call("HELLO", "3")
            conns.append(conn)
            return conn

        connect().call("FLUSHALL")
        try:
            results.append(scenario(connect))
        finally:
            for conn in conns:
                conn.close()
    assert results[0] == results[1], f"\n  dumpling: {results[0]!r}\n  redis:    {results[1]!r}"
    return results[0]


def send(conn: RawConnection, *args: object) -> None:
    conn.send(encode_command(*args))  # type: ignore[arg-type]


def blocked_clients(conn: RawConnection) -> int:
    text = parse_reply(conn.call("INFO", "clients"))
    text = text.decode() if isinstance(text, bytes) else str(text)
    for line in text.splitlines():
        if line.startswith("blocked_clients:"):
            return int(line.split(":")[1])
    raise AssertionError("no blocked_clients in INFO")


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def resp(request: pytest.FixtureRequest) -> int:
    return request.param


def test_waiters_served_in_arrival_order(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin = connect()
        waiters = [connect() for _ in range(3)]
        send(waiters[0], "BLPOP", "k", "0")
        wait_blocked(admin, 1)
        send(waiters[1], "BRPOP", "other", "k", "0")
        wait_blocked(admin, 2)
        send(waiters[2], "BLPOP", "k", "0.5")
        wait_blocked(admin, 3)
        out: list[object] = [admin.call("PING"), admin.call("LPUSH", "k", "a", "b")]
        out += [waiters[0].read_reply(), waiters[1].read_reply()]
        out.append(waiters[2].read_reply())  # nothing left for it: times out
        out.append(admin.call("EXISTS", "k"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_one_push_serves_several_waiters_with_all_elements(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin = connect()
        waiters = [connect() for _ in range(4)]
        for i, w in enumerate(waiters):
            send(w, "BRPOP", "q", "0")
            wait_blocked(admin, i + 1)
        out: list[object] = [admin.call("RPUSH", "q", "1", "2", "3")]
        out += [w.read_reply() for w in waiters[:3]]
        out.append(blocked_clients(admin))
        out.append(admin.call("RPUSH", "q", "4"))
        out.append(waiters[3].read_reply())
        out.append(admin.call("LLEN", "q"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_woken_client_reruns_the_pop_in_key_order(dumpling_server):
    """Redis 7.2+ re-executes the blocked command when a key becomes ready, so it pops
    from the first non-empty key in argument order (7.0 popped from the key that
    became ready first: here ``c``).  Asserted against 7.4.1's measured replies."""
    with dumpling_server.raw() as admin, dumpling_server.raw() as waiter:
        admin.call("FLUSHALL")
        send(waiter, "BLPOP", "a", "b", "c", "0")
        wait_blocked(admin, 1)
        assert admin.call("MULTI") == b"+OK\r\n"
        admin.call("RPUSH", "c", "x")
        admin.call("RPUSH", "b", "y")
        assert admin.call("EXEC") == b"*2\r\n:1\r\n:1\r\n"
        assert waiter.read_reply() == b"*2\r\n$1\r\nb\r\n$1\r\ny\r\n"
        assert admin.call("LRANGE", "c", "0", "-1") == b"*1\r\n$1\r\nx\r\n"
        assert waiter.call("BLPOP", "a", "b", "c", "0") == b"*2\r\n$1\r\nc\r\n$1\r\nx\r\n"


def test_ready_key_in_argument_order_when_signalled_in_order(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, waiter = connect(), connect()
        send(waiter, "BLPOP", "a", "b", "c", "0")
        wait_blocked(admin, 1)
        out: list[object] = [admin.call("MULTI"), admin.call("RPUSH", "b", "y"), admin.call("RPUSH", "c", "x"),
                             admin.call("EXEC")]
        out.append(waiter.read_reply())
        out.append(admin.call("LRANGE", "b", "0", "-1"))
        out.append(admin.call("LRANGE", "c", "0", "-1"))
        out.append(waiter.call("BLPOP", "a", "b", "c", "0"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_timeouts_fractional_and_null_replies(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, waiter = connect(), connect()
        out: list[object] = []
        for cmd in (("BLPOP", "k", "0.05"), ("BRPOP", "k", "j", "0.05"), ("BLMOVE", "k", "d", "LEFT", "RIGHT", "0.05"),
                    ("BRPOPLPUSH", "k", "d", "0.05"), ("BLMPOP", "0.05", "2", "k", "j", "LEFT", "COUNT", "3")):
            start = time.monotonic()
            out.append(waiter.call(*cmd))
            elapsed = time.monotonic() - start
            assert 0.04 <= elapsed, (cmd, elapsed)  # no upper bound: the reply came, a loaded machine may be late
        out.append(blocked_clients(admin))
        return out

    assert on_both(dumpling_server, redis_server, resp, scenario)[0] in (b"*-1\r\n", b"_\r\n")


def test_timeout_is_measured_and_server_stays_responsive(dumpling_server):
    with dumpling_server.raw() as waiter, dumpling_server.raw() as other:
        other.call("FLUSHALL")
        start = time.monotonic()
        send(waiter, "BLPOP", "k", "0.3")
        for _ in range(20):
            assert other.call("PING") == b"+PONG\r\n"
        assert waiter.read_reply() == b"*-1\r\n"
        assert 0.28 <= time.monotonic() - start  # (no upper bound: the reply came)


def test_timeout_argument_errors(pairs):
    pairs.run([
        ("BLPOP", "k", "-1"), ("BLPOP", "k", "abc"), ("BLPOP", "k", "-inf"), ("BLPOP", "k", "-1e400"),
        ("BRPOP", "k", ""), ("BLMOVE", "a", "b", "LEFT", "RIGHT", "-0.5"), ("BLMOVE", "a", "b", "UP", "RIGHT", "x"),
        ("BRPOPLPUSH", "a", "b", "nan"), ("BLMPOP", "x", "1", "k", "LEFT"), ("BLMPOP", "0", "0", "k", "LEFT"),
        ("BLMPOP", "0", "1", "k", "MIDDLE"), ("BLMPOP", "-1", "1", "k", "LEFT"), ("BLMPOP", "0", "2", "k", "LEFT"),
        ("BLMPOP", "0.01", "1", "k", "LEFT", "COUNT", "0"), ("BLPOP", "k"),
    ])


def test_timeout_out_of_range_is_reported_as_such(r):
    """7.0 reported a too large timeout as negative (a long long overflow); 7.2+ says
    ``timeout is out of range`` (measured on 7.4.1)."""
    for timeout in ("inf", "1e400", "9223372036854775.807"):
        with pytest.raises(Exception, match="timeout is out of range"):
            r.execute_command("BLPOP", "k", timeout)


def test_nonblocking_paths_and_wrongtype(pairs):
    pairs.run([
        ("RPUSH", "l", "a", "b", "c", "d", "e", "f", "g"), ("SET", "s", "x"),
        ("BLPOP", "nokey", "l", "0"), ("BRPOP", "l", "0"), ("BLPOP", "s", "l", "0"), ("BLPOP", "l", "s", "0"),
        ("BLMPOP", "0", "2", "nokey", "l", "RIGHT", "COUNT", "5"), ("EXISTS", "l"),
        ("RPUSH", "l", "1", "2"), ("BLMOVE", "l", "m", "RIGHT", "LEFT", "0"), ("BRPOPLPUSH", "l", "m", "0"),
        ("LRANGE", "m", "0", "-1"), ("RPUSH", "l", "3"), ("BLMOVE", "l", "s", "LEFT", "LEFT", "0"), ("BLMOVE", "s", "m", "LEFT", "LEFT", "0"),
        ("BLMPOP", "0", "2", "s", "l", "LEFT"),
    ])


def test_blocking_commands_inside_multi_do_not_block(pairs):
    pairs.run([
        ("MULTI",), ("BLPOP", "k", "0"), ("BRPOP", "k", "0"), ("BLMOVE", "k", "d", "LEFT", "LEFT", "0"),
        ("BRPOPLPUSH", "k", "d", "0"), ("BLMPOP", "0", "1", "k", "LEFT"), ("RPUSH", "k", "x"), ("BLPOP", "k", "0"),
        ("EXEC",),
    ])


def test_blmove_chain_wakes_the_destination_waiter(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, mover, popper = connect(), connect(), connect()
        send(mover, "BLMOVE", "src", "dst", "LEFT", "RIGHT", "0")
        wait_blocked(admin, 1)
        send(popper, "BLPOP", "dst", "0")
        wait_blocked(admin, 2)
        out: list[object] = [admin.call("RPUSH", "src", "x", "y")]
        out += [mover.read_reply(), popper.read_reply()]
        out += [admin.call("LRANGE", "src", "0", "-1"), admin.call("EXISTS", "dst"), blocked_clients(admin)]
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_brpoplpush_and_lmove_into_blocked_key(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, a, b = connect(), connect(), connect()
        send(a, "BRPOPLPUSH", "s", "d", "0")
        wait_blocked(admin, 1)
        send(b, "BLPOP", "d", "0")
        wait_blocked(admin, 2)
        out: list[object] = [admin.call("RPUSH", "t", "1", "2"), admin.call("LMOVE", "t", "s", "LEFT", "LEFT")]
        out += [a.read_reply(), b.read_reply(), admin.call("LRANGE", "t", "0", "-1")]
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_blmpop_count_and_direction(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, a, b = connect(), connect(), connect()
        send(a, "BLMPOP", "0", "2", "x", "y", "RIGHT", "COUNT", "2")
        wait_blocked(admin, 1)
        send(b, "BLMPOP", "0", "1", "y", "LEFT", "COUNT", "10")
        wait_blocked(admin, 2)
        out: list[object] = [admin.call("RPUSH", "y", "1", "2", "3", "4", "5")]
        out += [a.read_reply(), b.read_reply(), admin.call("EXISTS", "y")]
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_wrong_type_key_does_not_serve_and_client_keeps_waiting(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, waiter = connect(), connect()
        send(waiter, "BLPOP", "k", "0.4")
        wait_blocked(admin, 1)
        out: list[object] = [admin.call("SET", "k", "str"), blocked_clients(admin), admin.call("DEL", "k")]
        out += [admin.call("SADD", "k", "m"), blocked_clients(admin)]
        out.append(waiter.read_reply())
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_woken_by_rename_move_and_swapdb(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, a, b = connect(), connect(), connect()
        send(a, "BLPOP", "target", "0")
        wait_blocked(admin, 1)
        out: list[object] = [admin.call("RPUSH", "tmp", "r1"), admin.call("RENAME", "tmp", "target"), a.read_reply()]
        b.call("SELECT", "1")
        send(b, "BRPOP", "moved", "0")
        wait_blocked(admin, 1)
        out += [admin.call("RPUSH", "moved", "m1"), admin.call("MOVE", "moved", "1"), b.read_reply()]
        out.append(admin.call("EXISTS", "moved"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_disconnected_waiter_is_released_and_takes_nothing(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, gone, stays = connect(), connect(), connect()
        send(gone, "BLPOP", "k", "0")
        wait_blocked(admin, 1)
        send(stays, "BLPOP", "k", "0")
        wait_blocked(admin, 2)
        gone.close()
        wait_blocked(admin, 1)
        out: list[object] = [admin.call("RPUSH", "k", "v1", "v2"), stays.read_reply(), admin.call("LRANGE", "k", "0", "-1")]
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_client_kill_and_unblock(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, killed, unblocked, errored = connect(), connect(), connect(), connect()
        ids = [parse_reply(c.call("CLIENT", "ID")) for c in (killed, unblocked, errored)]
        for i, conn in enumerate((killed, unblocked, errored)):
            send(conn, "BLPOP", "k", "0")
            wait_blocked(admin, i + 1)
        out: list[object] = [admin.call("CLIENT", "KILL", "ID", str(ids[0]))]
        out.append(killed.is_closed())
        out.append(admin.call("CLIENT", "UNBLOCK", str(ids[1])))
        out.append(unblocked.read_reply())
        out.append(admin.call("CLIENT", "UNBLOCK", str(ids[2]), "ERROR"))
        out.append(errored.read_reply())
        out.append(blocked_clients(admin))
        out.append(admin.call("RPUSH", "k", "v"))
        out.append(admin.call("LLEN", "k"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_queued_commands_run_after_unblock(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, waiter = connect(), connect()
        waiter.send(encode_command("BLPOP", "k", "0") + encode_command("RPUSH", "after", "1")
                    + encode_command("LLEN", "after"))
        wait_blocked(admin, 1)
        out: list[object] = [admin.call("EXISTS", "after"), admin.call("RPUSH", "k", "go")]
        out += [waiter.read_reply(), waiter.read_reply(), waiter.read_reply()]
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_many_waiters_on_many_keys(dumpling_server, redis_server):
    def scenario(connect: Connect) -> list[object]:
        admin = connect()
        waiters = [connect() for _ in range(12)]
        for i, w in enumerate(waiters):
            send(w, "BLPOP", f"k{i % 3}", f"k{(i + 1) % 3}", "0")
            wait_blocked(admin, i + 1)
        out: list[object] = []
        for i in range(3):
            out.append(admin.call("RPUSH", f"k{i}", *[f"{i}-{j}" for j in range(6)]))
        out += [w.read_reply() for w in waiters]
        out.append(blocked_clients(admin))
        out.append(admin.call("DBSIZE"))
        return out

    on_both(dumpling_server, redis_server, 2, scenario)


def test_woken_by_restore(dumpling_server, redis_server, resp):
    def scenario(connect: Connect) -> list[object]:
        admin, waiter = connect(), connect()
        admin.call("RPUSH", "src", "r1", "r2")
        payload = parse_reply(admin.call("DUMP", "src"))
        send(waiter, "BRPOP", "restored", "0")
        wait_blocked(admin, 1)
        out: list[object] = [admin.call("RESTORE", "restored", "0", payload), waiter.read_reply()]
        out.append(admin.call("LRANGE", "restored", "0", "-1"))
        return out

    on_both(dumpling_server, redis_server, resp, scenario)


def test_rerun_on_wake_reports_an_earlier_wrong_type_key(dumpling_server):
    """Redis 7.2+ re-runs the blocked command when a list key becomes ready, so a key of
    another type before it is a WRONGTYPE error and nothing is popped (7.0 popped from
    the ready key).  Measured on 7.4.1."""
    with dumpling_server.raw() as admin, dumpling_server.raw() as waiter:
        admin.call("FLUSHALL")
        send(waiter, "BLPOP", "a", "b", "0")
        wait_blocked(admin, 1)
        admin.call("SET", "a", "str")
        assert blocked_clients(admin) == 1
        admin.call("RPUSH", "b", "x")
        assert waiter.read_reply() == b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        assert admin.call("LLEN", "b") == b":1\r\n"


def test_blocked_command_counts_once_in_commandstats(dumpling_server, redis_server):
    """A blocking command is counted when it is answered (served, timed out or CLIENT
    UNBLOCKed), once: Redis's updateStatsOnUnblock."""
    import re

    def calls(conn: RawConnection, name: str) -> int:
        info = conn.call("INFO", "commandstats").decode()
        m = re.search(rf"^cmdstat_{name}:calls=(\d+)", info, re.M)
        return int(m.group(1)) if m else 0

    counts = []
    for server in (dumpling_server, redis_server):
        with server.raw() as control, server.raw() as waiter:
            control.call("CONFIG", "RESETSTAT")
            control.call("DEL", "bl_stats")
            assert waiter.call("BLPOP", "bl_stats", "0.05") == b"*-1\r\n"  # timed out
            waiter.send(encode_command("BLPOP", "bl_stats", "5"))
            wait_blocked(control)
            control.call("RPUSH", "bl_stats", "x")  # served
            assert waiter.read_reply() == b"*2\r\n$8\r\nbl_stats\r\n$1\r\nx\r\n"
            waiter.send(encode_command("BLPOP", "bl_stats", "5"))
            wait_blocked(control)
            waiter_id = parse_reply(control.call("CLIENT", "LIST")).decode()  # type: ignore[union-attr]
            ids = re.findall(r"id=(\d+) .*cmd=blpop", waiter_id)
            control.call("CLIENT", "UNBLOCK", ids[0])  # unblocked by another client
            waiter.read_reply()
            counts.append(calls(control, "blpop"))
    assert counts[0] == counts[1] == 3
