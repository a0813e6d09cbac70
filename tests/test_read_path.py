"""The read path: ``Client.data_received`` (``_fastpath.ClientBase``'s C method when built) against
``Client.received``, the Python path it stands for, and the statistics it keeps against Redis.

The C method does a common read's whole work (the read counted, the C loop, the replies written as
``Client.flush`` writes them) and hands every other case to Python; what a read leaves behind
(replies, INFO's byte/read/write counters, the reply buffer's peak, the query buffer's model,
CLIENT LIST's fields, a close after QUIT, an output-buffer limit's drop) must be the same both ways.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

import dumpling.server as server_module
from dumpling import clientscron
from dumpling.accel import fastpath
from dumpling.commands.connection import client_info_line
from dumpling.config import Config
from dumpling.dispatch import Server
from dumpling.server import Client
from tests.servers import RawConnection, ServerProcess, encode_command, parse_reply
from tests.test_fastpath_fuzz import Transport

BIG = b"v" * 40_000


class BackloggedTransport(Transport):
    """A transport whose socket has not taken ``backlog`` bytes yet."""

    def __init__(self, backlog: int = 0) -> None:
        super().__init__()
        self.backlog = backlog

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def abort(self) -> None:
        self.closed = True


def _cmd(*args: bytes | str | int) -> bytes:
    return encode_command(*args)


# Each a list of reads (one data_received each), on one fresh connection; CRON: the clients cron's
# turn (it restarts the query buffer's peak, so the next read is one its model does not ignore).
CRON = None
STREAMS: dict[str, list[bytes | None]] = {
    "one request a read": [_cmd("SET", "k", "v"), _cmd("GET", "k"), _cmd("PING"), _cmd("INCR", "n")] * 3,
    "pipelines": [_cmd("SET", "a", "1") + _cmd("INCR", "a") * 5 + _cmd("MGET", "a", "b"), _cmd("LPUSH", "l", "x") * 4],
    "general path and replies of every size": [
        _cmd("HSET", "h", "f", "v"), _cmd("HGETALL", "h"), _cmd("SET", "big", BIG), _cmd("GET", "big"),
        _cmd("GET", "big") * 3, _cmd("STRLEN", "big"), _cmd("PING"),
    ],
    "requests split across reads": [
        _cmd("SET", "k", "v")[:5], _cmd("SET", "k", "v")[5:] + _cmd("GET", "k")[:9], _cmd("GET", "k")[9:],
        _cmd("PING"), _cmd("SET", "big", BIG)[:20_000], _cmd("SET", "big", BIG)[20_000:], _cmd("GET", "k"),
    ],
    "inline and non-plain commands": [
        b"PING\r\n", b"SET k v\r\n", _cmd("CLIENT", "SETNAME", "x"), _cmd("GET", "k"),
        _cmd("MULTI"), _cmd("INCR", "n"), _cmd("EXEC"), _cmd("GET", "n"), _cmd("SELECT", "1"), _cmd("GET", "k"),
    ],
    "a plain run stopped by another command": [_cmd("INCR", "n") * 3 + _cmd("CLIENT", "GETNAME") + _cmd("INCR", "n")],
    "twin names in any case, and names next to them": [
        _cmd("sEt", "k", "5"), _cmd("gEt", "k"), _cmd("PiNg"), _cmd("iNcRbY", "k", "2"), _cmd("DeCr", "k"),
        _cmd("mSeT", "a", "1", "b", "2"), _cmd("MgEt", "a", "b"), _cmd("InCr", "k"), _cmd("dEcRbY", "k", "3"),
        _cmd("GETT", "k"), _cmd("GE", "k"), _cmd("PIN"), _cmd(b"G\xc5T", "k"), _cmd(b"GE\x14", "k"), _cmd("INCRBYX", "k", "1"),
        _cmd("GETSET", "k", "1"), _cmd("SETNX", "n", "1"), _cmd("DECRBYY", "k", "1"),
    ],
    "errors": [_cmd("GET"), _cmd("NOSUCH", "x"), _cmd("INCR", "k") + _cmd("SET", "k", "v") + _cmd("INCR", "k")],
    "quit": [_cmd("PING"), _cmd("QUIT"), _cmd("PING")],
    "quit inside a read": [_cmd("PING") + _cmd("QUIT") + _cmd("PING")],
    "protocol error": [_cmd("PING"), b"*1\r\n$x\r\n", _cmd("PING")],
    "reads after the clients cron's turn": [
        _cmd("PING"), CRON, _cmd("GET", "k"), CRON, _cmd("INCR", "n") * 3 + _cmd("CLIENT", "GETNAME") + _cmd("INCR", "n"),
        CRON, _cmd("SET", "k", "v") * 40, _cmd("GET", "k"), CRON, _cmd("SET", "big", BIG), CRON, _cmd("GET", "big"),
        CRON, CRON, _cmd("MULTI"), _cmd("PING"), _cmd("EXEC"),
    ],
    "output-buffer limit": [
        _cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 20000 0 0"), _cmd("SET", "big", BIG),
        _cmd("GET", "k"), _cmd("GET", "big"), _cmd("PING"),
    ],
}


def _run(reads: list[bytes | None], through_c: bool, monkeypatch: pytest.MonkeyPatch,
         transport: BackloggedTransport | None = None) -> dict[str, Any]:
    """Feed ``reads`` to a fresh in-process server (CRON: the client's turn in the clients cron);
    everything a read leaves behind."""
    with monkeypatch.context() as patch:
        if not through_c:
            patch.setattr(Client, "data_received", Client.received)
        server = Server(Config())
        client = Client(server)
        transport = transport if transport is not None else BackloggedTransport()
        client.connection_made(transport)  # type: ignore[arg-type]
        for data in reads:
            if transport.closed:
                break
            if data is CRON:
                assert list(server.clients.values()) == [client]
                clientscron.cron(server, time.time_ns() // 1_000_000)
            else:
                client.data_received(data)
        qb = client.query_buffer
        listing = [field for field in client_info_line(client).split(" ")
                   if field.split("=")[0] not in ("age", "idle", "id")]
        return {
            "replies": bytes(transport.data), "closed": transport.closed,
            "stats": (server.stat_net_input, server.stat_net_output, server.stat_reads, server.stat_writes,
                      server.stat_commands),
            "reply buffer peak": client.reply_buffer_peak, "last command": client.last_cmd,
            "query buffer": (qb.alloc, qb.kind, qb.peak, qb.bulk, qb.quiet), "client list": listing,
            "pending": client._pending_len(), "queued replies": list(client._out),
        }


@pytest.mark.skipif(fastpath is None, reason="the C read path is not built (pure mode)")
@pytest.mark.parametrize("name", list(STREAMS))
def test_c_read_path_leaves_what_the_python_path_leaves(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Client.data_received is fastpath.ClientBase.data_received
    reads = STREAMS[name]
    theirs = _run(reads, False, monkeypatch)
    ours = _run(reads, True, monkeypatch)
    assert ours == theirs
    assert ours["replies"]  # (the stream did something)


@pytest.mark.skipif(fastpath is None, reason="the C read path is not built (pure mode)")
def test_backlog_takes_the_python_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unsent bytes waiting in the transport count towards the output-buffer limit (Client.flush)."""
    reads = [_cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 30000 0 0"), _cmd("PING"), _cmd("PING")]
    theirs = _run(reads, False, monkeypatch, BackloggedTransport(60_000))
    ours = _run(reads, True, monkeypatch, BackloggedTransport(60_000))
    assert ours == theirs
    assert ours["closed"]


def test_pure_data_received_is_received() -> None:
    if fastpath is None:
        assert Client.data_received is Client.received
    else:
        assert Client.data_received is fastpath.ClientBase.data_received


@pytest.mark.skipif(fastpath is None, reason="the C read path is not built (pure mode)")
def test_fast_path_switched_off_reads_through_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_fast_run`` None in dumpling.server (disable_fastpath, renamed commands) sends every read to
    ``Client.received``, which then runs no C loop either."""
    calls: list[bytes] = []
    received = Client.received

    def counting(self: Client, data: bytes) -> None:
        calls.append(data)
        received(self, data)

    monkeypatch.setattr(Client, "received", counting)
    monkeypatch.setattr(server_module, "_fast_run", None)
    out = _run([_cmd("PING")] * 3, True, monkeypatch)
    assert out["replies"] == b"+PONG\r\n" * 3
    assert len(calls) == 3


def _stats(conn: RawConnection) -> tuple[dict[bytes, int], int]:
    """INFO's traffic counters, and the size of the reply that told them."""
    reply = conn.call("INFO", "stats")
    text = parse_reply(reply)
    assert isinstance(text, bytes)
    names = (b"total_net_input_bytes", b"total_net_output_bytes", b"total_reads_processed", b"total_writes_processed")
    lines = (line.split(b":", 1) for line in text.split(b"\r\n") if b":" in line)
    return {k: int(v) for k, v in lines if k in names}, len(reply)


def _traffic_counters(server: ServerProcess) -> dict[bytes, int]:
    """INFO's counters over known traffic on one connection, INFO's own reply bytes taken out."""
    with RawConnection(server.port) as conn:
        conn.call("SET", "rp:big", b"x" * 20_000)
        before, first_info = _stats(conn)  # (its reply is counted as output by the INFO after it)
        for request in ([b"SET", b"rp:k", b"v"], [b"GET", b"rp:k"], [b"INCR", b"rp:n"], [b"GET", b"rp:big"],
                        [b"HSET", b"rp:h", b"f", b"v"], [b"PING"], [b"GET", b"rp:missing"], [b"NOSUCHCOMMAND"]):
            conn.call(*request)
        conn.send(encode_command("PING") * 5)  # one read of five requests, one write
        while conn.read_reply() != b"+PONG\r\n":
            pass
        for _ in range(4):
            conn.read_reply()
        after = _stats(conn)[0]
        conn.call("DEL", "rp:big", "rp:k", "rp:n", "rp:h")
    delta = {k: after[k] - before[k] for k in after}
    delta[b"total_net_output_bytes"] -= first_info
    return delta


def test_info_traffic_counters_match_redis(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    """total_net_input/output_bytes and the reads and writes counted for the same traffic (the C read
    path counts them for the reads it answers whole)."""
    assert _traffic_counters(dumpling_server) == _traffic_counters(redis_server)


class SocketTransport(BackloggedTransport):
    """A transport on one end of a socket pair: what it is given to write waits in ``data`` (its
    queue, the backlog it reports) until ``send_queued``, so the peer receives only what the C read
    path wrote to the socket itself (``ClientBase.write_directly``) and what ``send_queued`` sent.
    As asyncio's and uvloop's transports under ``set_write_buffer_limits(0)``, it calls the
    protocol's ``pause_writing`` when it comes to hold bytes and ``resume_writing`` when it holds
    none again (the C path then asks no backlog while it holds none); ``NonSignallingTransport``
    does not (the C path asks it every write)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.protocol: Client | None = None
        self.paused = False
        self.high_water: int | None = None

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.protocol is not None and not self.paused and len(self.data) > (self.high_water or 0):
            self.paused = True
            self.protocol.pause_writing()

    def send_queued(self) -> None:
        """What the socket takes of the queue now; resume_writing once it is all sent."""
        while self.data:
            try:
                sent = self.sock.send(self.data)
            except BlockingIOError:
                return
            del self.data[:sent]
        if self.paused and self.protocol is not None:
            self.paused = False
            self.protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return len(self.data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else super().get_extra_info(name, default)


class NonSignallingTransport(SocketTransport):
    """One that calls neither pause_writing nor resume_writing (as the busy-script responder's)."""

    signals_backlog = False


def _socket_replies(reads: list[bytes | None], monkeypatch: pytest.MonkeyPatch, send_buffer: int | None = None,
                    transport_type: type[SocketTransport] = SocketTransport, drain_every: int = 0,
                    ) -> tuple[bytes, bytes, tuple[int, ...]]:
    """``reads`` through the C read path on a socket pair: (what the peer received, what the transport
    was left to send, INFO's traffic counters).  ``drain_every`` N: after every N reads the peer
    reads all it can and the transport sends what it holds (resume_writing when all of it went)."""
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        if send_buffer is not None:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        transport = transport_type(ours)
        with monkeypatch.context():
            server = Server(Config())
            client = Client(server)
            transport.protocol = client
            client.connection_made(transport)  # type: ignore[arg-type]
            received = bytearray()
            for i, data in enumerate(reads):
                if transport.closed:
                    break
                assert data is not None
                client.data_received(data)
                if send_buffer is None:  # (a peer that reads as it goes; else one that reads at the end)
                    received += _drain(peer)
                elif drain_every and (i + 1) % drain_every == 0:
                    for _ in range(64):  # (the socket's buffer refills as the peer reads)
                        received += _drain(peer)
                        transport.send_queued()
                        if not transport.data:
                            break
            received += _drain(peer)
        stats = (server.stat_net_input, server.stat_net_output, server.stat_reads, server.stat_writes,
                 server.stat_commands)
        return bytes(received), bytes(transport.data), stats


def _drain(peer: socket.socket) -> bytes:
    peer.setblocking(False)
    got = bytearray()
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk


@pytest.mark.skipif(fastpath is None, reason="the C read path is not built (pure mode)")
@pytest.mark.parametrize("name", ["one request a read", "general path and replies of every size", "quit", "errors"])
def test_replies_written_to_the_socket_itself(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing queued in the transport, the C path writes a read's replies to the socket: the
    peer receives the Python path's replies, in order, and the counters are the same."""
    reads = STREAMS[name]
    theirs = _run(reads, False, monkeypatch)
    received, queued, stats = _socket_replies(reads, monkeypatch)
    assert received + queued == theirs["replies"]
    assert stats == theirs["stats"]
    assert received or name == "errors"  # (the C path wrote to the socket; error replies are Python's)
    if name == "one request a read":
        assert not queued


@pytest.mark.skipif(fastpath is None, reason="the C read path is not built (pure mode)")
@pytest.mark.parametrize("transport_type", [SocketTransport, NonSignallingTransport])
def test_a_full_socket_leaves_the_rest_to_the_transport(transport_type: type[SocketTransport],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A reply the socket takes only part of: the rest goes to transport.write, and while the
    transport holds anything every later reply follows it there (nothing overtakes it), whether
    the transport signals its backlog (pause_writing) or is asked for it."""
    reads: list[bytes | None] = [_cmd("SET", "big", BIG)] + [_cmd("GET", "big"), _cmd("PING"), _cmd("GET", "k")] * 20
    theirs = _run(reads, False, monkeypatch)
    received, queued, stats = _socket_replies(reads, monkeypatch, send_buffer=4096, transport_type=transport_type)
    assert received and queued
    assert received + queued == theirs["replies"]
    assert stats == theirs["stats"]


@pytest.mark.skipif(fastpath is None, reason="the C read path is not built (pure mode)")
@pytest.mark.parametrize("transport_type", [SocketTransport, NonSignallingTransport])
def test_replies_go_back_to_the_socket_once_the_transport_drained(transport_type: type[SocketTransport],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The transport's backlog is sent now and then (resume_writing after the last byte): the peer
    gets every reply in order, and the direct writes take up again once it held nothing."""
    reads: list[bytes | None] = [_cmd("SET", "big", BIG)] + [_cmd("GET", "big"), _cmd("PING"), _cmd("GET", "k")] * 20
    theirs = _run(reads, False, monkeypatch)
    received, queued, stats = _socket_replies(reads, monkeypatch, send_buffer=4096, transport_type=transport_type,
                                              drain_every=5)
    assert received + queued == theirs["replies"]
    assert stats == theirs["stats"]


@pytest.mark.skipif(fastpath is None, reason="the C read path is not built (pure mode)")
def test_write_held_follows_the_transports_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_write_held`` is set by pause_writing and cleared by resume_writing: a direct send waits for
    the transport's queue while it is set."""
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport = SocketTransport(ours)
        client = Client(Server(Config()))
        transport.protocol = client
        client.connection_made(transport)  # type: ignore[arg-type]
        assert not client._write_held
        client.data_received(_cmd("SET", "big", BIG))
        client.data_received(_cmd("GET", "big"))
        assert transport.data and client._write_held
        client.data_received(_cmd("PING"))
        assert transport.data.endswith(b"+PONG\r\n")  # (behind the queue, not on the socket)
        received = bytearray()
        while transport.data:
            received += _drain(peer)
            transport.send_queued()
        assert not client._write_held
        received += _drain(peer)  # (room in the socket's buffer again)
        client.data_received(_cmd("PING"))
        received += _drain(peer)
        assert not transport.data
        assert received == b"+OK\r\n$40000\r\n" + BIG + b"\r\n+PONG\r\n+PONG\r\n"
