"""``maxmemory-clients`` (dumpling.clienteviction): a client whose unread output takes the
clients' memory over the limit is evicted, CLIENT NO-EVICT clients are not, and the setting
takes bytes or a percentage of maxmemory.  Every scenario runs against real Redis too."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.servers import (
    RawConnection,
    ServerProcess,
    encode_command,
    info_int,
    parse_reply,
    start_dumpling,
    start_redis,
    wait_read,
)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    ours, theirs = start_dumpling(), start_redis()
    try:
        for server in (ours, theirs):
            with server.raw() as conn:
                conn.call("SET", "v1m", b"y" * 1_000_000)
        yield ours, theirs
    finally:
        ours.stop()
        theirs.stop()


def _both(servers: tuple[ServerProcess, ServerProcess], *command: str) -> bytes:
    replies = []
    for server in servers:
        with server.raw() as conn:
            replies.append(conn.call(*command))
    assert replies[0] == replies[1], (command, replies)
    return replies[0]


def _evicted_clients(conn: RawConnection) -> int:
    for line in conn.call("INFO", "stats").decode().split("\r\n"):
        if line.startswith("evicted_clients:"):
            return int(line.split(":")[1])
    raise AssertionError("no evicted_clients")


def _stuck_client(server: ServerProcess, no_evict: bool, wait: float = 1.0) -> tuple[bool, int]:
    """A client that asks for 8 MB and reads none of it: (still connected after ``wait`` seconds
    (it is left as soon as it is gone: a wait for an eviction may be long), evicted_clients added
    meanwhile)."""
    with server.raw() as conn:
        # The observer is out of reach too: with the stuck client over the limit on its own, every
        # evictable client would go.
        conn.call("CLIENT", "NO-EVICT", "on")
        before = _evicted_clients(conn)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        try:
            setup = encode_command("CLIENT", "SETNAME", "stuck")
            if no_evict:
                setup += encode_command("CLIENT", "NO-EVICT", "on")
            sock.sendall(setup)
            time.sleep(0.2)
            sock.sendall(encode_command("GET", "v1m") * 8)
            deadline = time.monotonic() + wait
            while b"name=stuck" in conn.call("CLIENT", "LIST") and time.monotonic() < deadline:
                time.sleep(0.05)
            connected = b"name=stuck" in conn.call("CLIENT", "LIST")
            return connected, _evicted_clients(conn) - before
        finally:
            sock.close()


@pytest.mark.parametrize("setting", [("maxmemory-clients", "1mb"), ("maxmemory", "100mb", "maxmemory-clients", "1%")],
                         ids=["bytes", "percent"])
def test_client_over_the_limit_is_evicted_unless_no_evict(servers, setting):
    try:
        _both(servers, "CONFIG", "SET", *setting)
        outcomes = [_stuck_client(server, no_evict=False, wait=20) for server in servers]
        assert outcomes[0] == outcomes[1] == (False, 1)
        outcomes = [_stuck_client(server, no_evict=True) for server in servers]
        assert outcomes[0] == outcomes[1] == (True, 0)
    finally:
        _both(servers, "CONFIG", "SET", "maxmemory-clients", "0", "maxmemory", "0")


def test_without_a_limit_nobody_is_evicted(servers):
    outcomes = [_stuck_client(server, no_evict=False) for server in servers]
    assert outcomes[0] == outcomes[1] == (True, 0)


def test_maxmemory_clients_values(servers):
    try:
        for value in ("10%", "0%", "100%", "1mb", "128k", "0"):
            _both(servers, "CONFIG", "SET", "maxmemory-clients", value)
            _both(servers, "CONFIG", "GET", "maxmemory-clients")
        for bad in ("101%", "-1%", "%", "abc", "1.5%", "-1", "10 %"):
            reply = _both(servers, "CONFIG", "SET", "maxmemory-clients", bad)
            assert reply.startswith(b"-ERR CONFIG SET failed"), reply
    finally:
        _both(servers, "CONFIG", "SET", "maxmemory-clients", "0")


@pytest.mark.parametrize("partial", [
    b"*2\r\n$3\r\nSET\r\n$300000\r\n" + b"v" * 1000,  # the arguments' lines are parsed: 1000 left
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nabc",  # a small argument still arriving
    b"*1\r\n$40000",  # an unfinished $len line
    b"GET abc",  # inline: nothing is parsed before the newline
], ids=["big-argument", "small-argument", "length-line", "inline"])
def test_qbuf_of_an_unfinished_request(servers, partial):
    """CLIENT LIST qbuf counts what Redis's parser has not consumed yet (tot-mem, and so
    eviction, build on it)."""
    seen = []
    for server in servers:
        with socket.create_connection(("127.0.0.1", server.port)) as sock, server.raw() as conn:
            sock.sendall(encode_command("CLIENT", "SETNAME", "partial"))
            assert sock.recv(100) == b"+OK\r\n"
            read_before = info_int(conn, "stats", "total_net_input_bytes")
            sock.sendall(partial)
            wait_read(conn, read_before, len(partial))
            line = next(x for x in conn.call("CLIENT", "LIST").split(b"\n") if b"name=partial" in x)
            seen.append(next(f for f in line.split() if f.startswith(b"qbuf=")))
    assert seen[0] == seen[1]


def test_a_big_argument_counts_whole_once_its_length_is_read(servers):
    """Redis makes room for an argument of 32 KB or more as soon as its $len line is read, so
    a client's tot-mem is the same however much of it has arrived (unit/client-eviction 'evict
    clients in right order' and 'evict clients only until below limit' read tot-mem while the
    requests still arrive; dumpling counted the bytes arrived, so clients of one size differed
    and the wrong ones were evicted)."""
    seen = []
    for server in servers:
        totals = []
        with server.raw() as conn:
            socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
            try:
                for j, (sock, arrived) in enumerate(zip(socks, (0, 50_000, 199_000), strict=True)):
                    sock.sendall(encode_command("CLIENT", "SETNAME", f"big{j}"))
                    assert sock.recv(100) == b"+OK\r\n"
                    sock.sendall(b"*2\r\n$200000\r\n" + b"v" * arrived)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    lines = [x for x in conn.call("CLIENT", "LIST").split(b"\n") if b"name=big" in x]
                    qbufs = sorted(int(next(f for f in x.split() if f.startswith(b"qbuf="))[5:]) for x in lines)
                    if qbufs == [0, 50_000, 199_000]:
                        break
                    time.sleep(0.02)
                for line in lines:
                    totals.append(int(next(f for f in line.split() if f.startswith(b"tot-mem="))[8:]))
            finally:
                for sock in socks:
                    sock.close()
        seen.append((len(totals), len(set(totals)), min(totals) > 200_000))
    assert seen[0] == seen[1] == (3, 1, True)


def _client_fields(conn: RawConnection, name: str) -> dict[str, int] | None:
    """qbuf and tot-mem of the client named ``name`` in CLIENT LIST, or None if it is gone."""
    for line in conn.call("CLIENT", "LIST").decode().splitlines():
        if f" name={name} " in line:
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            return {"qbuf": int(fields["qbuf"]), "tot-mem": int(fields["tot-mem"])}
    return None


def _half_then_whole(server: ServerProcess, limit: int) -> tuple[dict[str, int] | None, bool, int]:
    """unit/client-eviction 'client evicted due to percentage of maxmemory': a client sends half
    of a ``limit``-byte argument and another connection reads its CLIENT LIST line once the
    server has read it all (7.4.1's version of the test waits so; 7.0.15's raced); then a
    client sends a whole ``limit``-byte argument.  Returns (the first client's qbuf and tot-mem,
    whether the second was disconnected before its argument was read whole, evicted_clients
    added)."""
    half = limit // 2
    with server.raw() as conn:
        before = _evicted_clients(conn)
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(encode_command("CLIENT", "SETNAME", "half"))
            assert sock.recv(100) == b"+OK\r\n"
            sock.sendall(b"*1\r\n$%d\r\n" % half + b"v" * half)
            deadline = time.monotonic() + 20
            while (seen := _client_fields(conn, "half")) and seen["qbuf"] < half and time.monotonic() < deadline:
                time.sleep(0.01)
        with RawConnection(server.port) as whole:
            whole.call("CLIENT", "SETNAME", "whole")
            try:
                whole.send(b"*1\r\n$%d\r\n" % limit + b"v" * limit)
            except (BrokenPipeError, ConnectionResetError):
                pass  # evicted while sending
            deadline = time.monotonic() + 20  # until it is gone or the server has read it all
            while (listed := _client_fields(conn, "whole")) and listed["qbuf"] < limit and time.monotonic() < deadline:
                time.sleep(0.01)
            gone = listed is None and whole.is_closed()
        return seen, gone, _evicted_clients(conn) - before


@pytest.mark.parametrize("clients_limit", ["7%", "0"], ids=["maxmemory-clients", "no-limit"])
def test_an_unfinished_request_counts_at_once(servers, clients_limit):
    """tot-mem counts half of a big argument as soon as it is read, with maxmemory-clients set
    or not; with the limit (7% of a 6 MB maxmemory), a client whose unfinished argument alone
    reaches it is evicted, without one it is not."""
    maxmemory = 6 * 1024 * 1024
    limit = maxmemory * 7 // 100
    try:
        _both(servers, "CONFIG", "SET", "maxmemory", str(maxmemory), "maxmemory-clients", clients_limit)
        outcomes = []
        for server in servers:
            seen, closed, evicted = _half_then_whole(server, limit)
            assert seen is not None, server.name
            outcomes.append((seen["qbuf"], limit // 2 <= seen["tot-mem"] < limit, closed, evicted))
        evicts = clients_limit != "0"
        assert outcomes[0] == outcomes[1] == (limit // 2, True, evicts, int(evicts))
    finally:
        _both(servers, "CONFIG", "SET", "maxmemory-clients", "0", "maxmemory", "0")


def _listed_memory(conn: RawConnection, name: str) -> int | None:
    seen = _client_fields(conn, name)
    return None if seen is None else seen["tot-mem"]


def _invalidated_over_the_limit(server: ServerProcess, limit: int) -> tuple[bool, bool, int]:
    """unit/client-eviction 'client evicted due to tracking redirection': a client that reads
    nothing receives the BCAST invalidations of a 200 KB key another client keeps changing, with
    the cron paused; after each change, is it either gone or under the limit when a third client
    looks (CLIENT LIST)?  Returns (that, whether it went, evicted_clients added)."""
    with server.raw() as conn, server.raw() as writer:
        before = _evicted_clients(conn)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        try:
            sock.sendall(encode_command("CLIENT", "SETNAME", "redirected") + encode_command("CLIENT", "ID"))
            deadline = time.monotonic() + 20
            while (replies := sock.recv(100)).count(b"\r\n") < 2 and time.monotonic() < deadline:
                pass
            redirect = int(replies.split(b"\r\n")[1][1:])
            sock.sendall(encode_command("SUBSCRIBE", "__redis__:invalidate"))
            assert writer.call("CLIENT", "TRACKING", "on", "REDIRECT", redirect, "BCAST") == b"+OK\r\n"
            sha = parse_reply(writer.call("SCRIPT", "LOAD", f"redis.call('incr', '{'k' * 200_000}')")).decode()
            conn.call("DEBUG", "PAUSE-CRON", "1")
            under = True
            for _ in range(100):  # (the kernel's socket buffers take the first few MB)
                writer.call("EVALSHA", sha, "0")
                memory = _listed_memory(conn, "redirected")
                if memory is None:
                    break
                under = under and memory < limit
            conn.call("DEBUG", "PAUSE-CRON", "0")
            return under, _listed_memory(conn, "redirected") is None, _evicted_clients(conn) - before
        finally:
            sock.close()
            conn.call("DEL", "k" * 200_000)


def test_pushed_output_counts_at_once(servers):
    """Output pushed to a client outside its own requests (here tracking invalidations, sent
    once per event-loop pass) counts in its memory as it is queued, as Redis updates the
    receiver when it sends them: no other client sees it over maxmemory-clients before it is
    evicted.  (dumpling's running total first counted such a client only when its output was
    written, a loop pass later, after a CLIENT LIST had seen it over.)"""
    limit = 1_000_000
    try:
        _both(servers, "CONFIG", "SET", "maxmemory-clients", str(limit))
        outcomes = [_invalidated_over_the_limit(server, limit) for server in servers]
        assert outcomes[0] == outcomes[1] == (True, True, 1)
    finally:
        _both(servers, "CONFIG", "SET", "maxmemory-clients", "0")


def test_lowering_the_limit_evicts_at_once(servers):
    """CONFIG SET maxmemory-clients below what a client holds (an unfinished 300 KB argument)
    evicts it before the next command (dumpling then counts every client again: the total it
    keeps was not kept while eviction was off)."""
    outcomes = []
    for server in servers:
        with server.raw() as conn, socket.create_connection(("127.0.0.1", server.port)) as sock:
            before = _evicted_clients(conn)
            sock.sendall(encode_command("CLIENT", "SETNAME", "holder"))
            assert sock.recv(100) == b"+OK\r\n"
            sock.sendall(b"*2\r\n$3\r\nGET\r\n$300000\r\n" + b"v" * 200_000)
            deadline = time.monotonic() + 20
            while (seen := _client_fields(conn, "holder")) and seen["qbuf"] < 200_000 and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                conn.call("CONFIG", "SET", "maxmemory-clients", "128kb")
                outcomes.append((_client_fields(conn, "holder") is None, _evicted_clients(conn) - before))
            finally:
                conn.call("CONFIG", "SET", "maxmemory-clients", "0")
    assert outcomes[0] == outcomes[1] == (True, 1)
