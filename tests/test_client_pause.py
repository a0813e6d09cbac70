"""CLIENT PAUSE / UNPAUSE, differentially against real Redis: paused commands wait (never
refused), WRITE holds only commands that may write or replicate (EXEC of such a
transaction, scripts not flagged no-writes), ALL holds everything, the longer end time and
the stricter mode win, a pause given inside MULTI starts after EXEC, and expiry waits too
(keys read as missing but are not deleted until the pause ends).

Each scenario is a function run against both servers; what the clients saw must match.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from tests.servers import RawConnection, ServerProcess, encode_command

Scenario = Callable[[ServerProcess], list[object]]


def _waiting(conn: RawConnection, wait: float = 0.2) -> bool:
    """True if nothing arrived on ``conn`` within ``wait`` seconds (its command is held)."""
    conn.sock.settimeout(wait)
    try:
        data = conn.sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    finally:
        conn.sock.settimeout(10)
    return not data


def _info_field(conn: RawConnection, name: bytes) -> int:
    info = conn.call("INFO", "everything")
    return int(info.split(b"\r\n" + name + b":")[1].split(b"\r\n")[0])


def _held(admin: RawConnection, count: int) -> int:
    """blocked_clients once the server has read and held ``count`` clients' commands (a
    loaded machine may read a command sent a moment ago later than a sleep allows)."""
    deadline = time.monotonic() + 20
    while (held := _info_field(admin, b"blocked_clients")) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return held


def _both(dumpling_server: ServerProcess, redis_server: ServerProcess, scenario: Scenario) -> list[object]:
    for server in (dumpling_server, redis_server):
        with server.raw() as admin:
            admin.call("CLIENT", "UNPAUSE")
            admin.call("FLUSHALL")
    ours = scenario(dumpling_server)
    theirs = scenario(redis_server)
    assert ours == theirs
    return ours


def test_pause_errors(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as c:
            out = [c.call("CLIENT", "PAUSE", *args) for args in
                   [("abc",), ("-1",), ("100", "bogus"), ("100", "write", "x"), ("1.5",), ("0",), ("0", "ALL")]]
            out.append(c.call("CLIENT", "PAUSE"))
            out.append(c.call("CLIENT", "UNPAUSE", "x"))
            out.append(c.call("CLIENT", "UNPAUSE"))
            out.append(c.call("SET", "k", "v"))  # a pause of 0 ms paused nothing
            return out

    _both(dumpling_server, redis_server, scenario)
    with dumpling_server.raw() as c:  # 7.4 (7.0 took it and paused "forever")
        assert c.call("CLIENT", "PAUSE", "9223372036854775807") == b"-ERR timeout is out of range\r\n"


def test_write_pause_holds_writes_only(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as admin, server.raw() as w, server.raw() as r, server.raw() as p:
            out: list[object] = [admin.call("SET", "hll-src", "x"), admin.call("PFADD", "hll", "a")]
            out.append(admin.call("CLIENT", "PAUSE", "100000", "WRITE"))
            out += [r.call("GET", "k"), r.call("PING"), r.call("EXISTS", "k"), r.call("EVAL_RO", "return 1", "0")]
            out.append(r.call("EVAL", "#!lua flags=no-writes\nreturn 2", "0"))
            out.append(r.call("SET", "k"))  # an arity error is answered at once
            w.send(encode_command("SET", "k", "v"))
            p.send(encode_command("PFCOUNT", "hll"))  # may replicate
            out += [_waiting(w), _waiting(p), _held(admin, 2)]
            out.append(r.call("GET", "k"))
            out.append(admin.call("CLIENT", "UNPAUSE"))
            out += [w.read_reply(), p.read_reply(), r.call("GET", "k")]
            return out

    _both(dumpling_server, redis_server, scenario)


def test_all_pause_holds_reads_and_ends_by_itself(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as admin, server.raw() as r:
            out: list[object] = [admin.call("SET", "k", "v"), admin.call("CLIENT", "PAUSE", "300", "ALL")]
            start = time.monotonic()
            r.send(encode_command("GET", "k"))
            out.append(_waiting(r, 0.1))
            out.append(r.read_reply())
            out.append(0.2 < time.monotonic() - start)  # and read_reply's 10 s: it ended by itself
            return out

    _both(dumpling_server, redis_server, scenario)


def test_stricter_and_longer_pause_wins(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as admin, server.raw() as r:
            out: list[object] = [admin.call("CLIENT", "PAUSE", "60000", "WRITE")]
            out.append(admin.call("CLIENT", "PAUSE", "10", "WRITE"))
            time.sleep(0.05)
            r.send(encode_command("SET", "k", "v"))
            out.append(_waiting(r))
            out.append(admin.call("CLIENT", "UNPAUSE"))
            out.append(r.read_reply())
            return out

    _both(dumpling_server, redis_server, scenario)


def test_transactions_and_scripts_under_write_pause(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as admin, server.raw() as ro, server.raw() as wr, server.raw() as ev:
            out: list[object] = [ro.call("MULTI"), ro.call("GET", "k"), ro.call("PING")]
            out += [wr.call("MULTI"), wr.call("SET", "k", "v")]
            out.append(admin.call("CLIENT", "PAUSE", "100000", "WRITE"))
            out.append(ro.call("EXEC"))
            wr.send(encode_command("EXEC"))
            ev.send(encode_command("EVAL", "return 1", "0"))
            out += [_waiting(wr), _waiting(ev), _held(admin, 2)]
            out.append(admin.call("CLIENT", "UNPAUSE"))
            out += [wr.read_reply(), ev.read_reply()]
            return out

    _both(dumpling_server, redis_server, scenario)


def test_pause_starts_after_the_transaction(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as a, server.raw() as b:
            out: list[object] = [a.call("MULTI"), a.call("SET", "one", "1"), a.call("CLIENT", "PAUSE", "100000", "WRITE"),
                                 a.call("SET", "two", "2"), a.call("EXEC")]
            b.send(encode_command("SET", "three", "3"))
            out += [_waiting(b), a.call("MGET", "one", "two", "three"), a.call("CLIENT", "UNPAUSE"), b.read_reply()]
            return out

    _both(dumpling_server, redis_server, scenario)


def test_expiry_waits_for_the_pause(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as c:
            expired = _info_field(c, b"expired_keys")
            out: list[object] = [c.call("MULTI"), c.call("SET", "foo", "bar", "PX", "10"),
                                 c.call("SET", "bar", "foo", "PX", "10"), c.call("CLIENT", "PAUSE", "50000", "WRITE"),
                                 c.call("EXEC")]
            time.sleep(0.3)
            out += [c.call("GET", "foo"), c.call("GET", "bar"), c.call("EXISTS", "foo")]
            out.append(_info_field(c, b"expired_keys") - expired)  # logically gone, not deleted
            out.append(c.call("CLIENT", "UNPAUSE"))
            out += [c.call("GET", "foo"), c.call("GET", "bar")]
            out.append(_info_field(c, b"expired_keys") - expired)
            return out

    _both(dumpling_server, redis_server, scenario)


def test_all_pause_holds_unpause_too(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as admin:
            out: list[object] = [admin.call("CLIENT", "PAUSE", "300", "ALL")]
            start = time.monotonic()
            out.append(admin.call("CLIENT", "UNPAUSE"))
            out.append(time.monotonic() - start > 0.2)
            return out

    _both(dumpling_server, redis_server, scenario)


def test_unpause_wakes_every_held_client_in_order(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    def scenario(server: ServerProcess) -> list[object]:
        with server.raw() as admin, server.raw() as a, server.raw() as b, server.raw() as c:
            out: list[object] = [admin.call("CLIENT", "PAUSE", "100000", "WRITE")]
            for i, conn in enumerate((a, b, c)):
                conn.send(encode_command("RPUSH", "order", str(i)))
                _held(admin, i + 1)  # held in this order (not read together in one pass)
            out.append(admin.call("CLIENT", "UNPAUSE"))
            out += [a.read_reply(), b.read_reply(), c.read_reply(), admin.call("LRANGE", "order", "0", "-1")]
            return out

    _both(dumpling_server, redis_server, scenario)


def test_held_client_shows_as_blocked(dumpling_server: ServerProcess) -> None:
    with dumpling_server.raw() as admin, dumpling_server.raw() as w:
        try:
            assert admin.call("CLIENT", "PAUSE", "100000", "WRITE") == b"+OK\r\n"
            w.send(encode_command("SET", "k", "v"))
            assert _waiting(w)
            assert b" flags=b " in admin.call("CLIENT", "LIST")
        finally:
            assert admin.call("CLIENT", "UNPAUSE") == b"+OK\r\n"
        assert w.read_reply() == b"+OK\r\n"


def test_client_unblock_leaves_held_clients_alone(dumpling_server: ServerProcess) -> None:
    """Not differential: Redis 7.0 and 7.4.1 crash (bug report) on CLIENT UNBLOCK of a client
    held by CLIENT PAUSE.  dumpling answers 0, as for a client that is not blocked, and the
    held command runs when the pause ends."""
    with dumpling_server.raw() as admin, dumpling_server.raw() as w:
        admin.call("FLUSHALL")
        wid = int(w.call("CLIENT", "ID")[1:-2])
        try:
            assert admin.call("CLIENT", "PAUSE", "100000", "WRITE") == b"+OK\r\n"
            w.send(encode_command("SET", "k", "v"))
            assert _waiting(w)
            assert admin.call("CLIENT", "UNBLOCK", str(wid)) == b":0\r\n"
            assert admin.call("CLIENT", "UNBLOCK", str(wid), "ERROR") == b":0\r\n"
            assert _waiting(w)
        finally:
            assert admin.call("CLIENT", "UNPAUSE") == b"+OK\r\n"
        assert w.read_reply() == b"+OK\r\n"
        assert admin.call("GET", "k") == b"$1\r\nv\r\n"
