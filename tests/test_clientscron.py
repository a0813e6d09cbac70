"""The clients cron (dumpling.clientscron): how many clients a tick visits, that every client gets
its turn about once a second, that the memory totals used_memory, INFO mem_clients_normal and
maxmemory-clients read stay equal to what the clients hold (counted at turns and for the clients
whose buffers moved), the idle ``timeout`` it applies, and ``hz``/``dynamic-hz``.  In process where
the tick is the subject, against real Redis where behaviour shows from outside."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from dumpling import clientscron
from dumpling.commands.connection import client_memory
from dumpling.config import Config
from dumpling.dispatch import Server
from dumpling.server import Client
from tests.servers import RawConnection, ServerProcess, encode_command, parse_reply, start_dumpling, start_redis
from tests.test_read_path import BackloggedTransport


def _server_with_clients(count: int, hz: int = 10) -> tuple[Server, list[Client]]:
    config = Config()
    config.apply("hz", hz)
    server = Server(config)
    clients = []
    for _ in range(count):
        client = Client(server)
        client.connection_made(BackloggedTransport())  # type: ignore[arg-type]
        clients.append(client)
    return server, clients


def _turns(server: Server, monkeypatch: pytest.MonkeyPatch, ticks: int) -> list[list[int]]:
    """The ids of the clients each of ``ticks`` ticks visited."""
    seen: list[list[int]] = []
    real = clientscron.visit

    def visit(server: Server, client: Any, now_ms: int) -> None:
        seen[-1].append(client.id)
        real(server, client, now_ms)

    with monkeypatch.context() as patch:
        patch.setattr(clientscron, "visit", visit)
        for _ in range(ticks):
            seen.append([])
            clientscron.cron(server)
    return seen


@pytest.mark.parametrize(("count", "hz", "per_tick"), [(3, 10, 3), (30, 10, 5), (120, 10, 12), (120, 100, 5)])
def test_a_tick_visits_numclients_over_hz_at_least_five(count, hz, per_tick, monkeypatch):
    server, clients = _server_with_clients(count, hz)
    turns = _turns(server, monkeypatch, 2 * max(count // per_tick, 1))
    assert all(len(tick) == per_tick for tick in turns)
    first_round = [cid for tick in turns[: -(-count // per_tick)] for cid in tick][:count]
    assert sorted(first_round) == sorted(c.id for c in clients)  # every client once, none twice


def test_gone_clients_are_skipped_and_new_ones_join_the_next_round(monkeypatch):
    server, clients = _server_with_clients(20)
    _turns(server, monkeypatch, 1)  # (a round begins: its snapshot holds these 20)
    for client in clients[5:10]:
        client.close()
    newcomer = Client(server)
    newcomer.connection_made(BackloggedTransport())  # type: ignore[arg-type]
    turns = _turns(server, monkeypatch, 6)  # (16 clients, 5 a tick: 10 left of this round, then 16)
    visited = [cid for tick in turns for cid in tick]
    assert not {c.id for c in clients[5:10]} & set(visited)
    assert visited[:10] == [c.id for c in clients[10:20]]  # the rest of the round first
    assert sorted(visited[10:26]) == sorted(server.clients) and newcomer.id in server.clients


def _expected_totals(server: Server) -> tuple[int, int]:
    normal = sum(client_memory(c) for c in server.clients.values() if c.repl_kind is None)
    return normal, normal  # (no replicas or master link here)


def test_totals_follow_turns_reads_and_unsent_output(monkeypatch):
    """The totals equal the clients' own memory after a tick, whatever moved it: connecting,
    a read through Python that leaves an unfinished request, output the socket did not take (and
    then took), MULTI, a disconnection (at once)."""
    server, clients = _server_with_clients(40)
    clientscron.cron(server)
    assert (server.clients_memory, server.clients_eviction_memory) == _expected_totals(server)
    assert server.clients_memory > 40 * 16 * 1024  # (each at least its reply buffer)
    busy, slow, queued, gone = clients[1], clients[2], clients[3], clients[4]
    busy.data_received(encode_command("SET", "k", b"v" * 50_000)[:30_000])  # an unfinished request
    slow.transport.backlog = 300_000  # type: ignore[union-attr]
    slow.pause_writing()  # (the transport: a write left bytes unsent)
    queued.data_received(encode_command("MULTI") + encode_command("SET", "a", b"x" * 5000))
    clientscron.cron(server)
    assert (server.clients_memory, server.clients_eviction_memory) == _expected_totals(server)
    assert slow in server.clients_in_flux and busy not in server.clients_in_flux
    slow.transport.backlog = 120_000  # type: ignore[union-attr]  # (sent in part: no event)
    clientscron.cron(server)
    assert (server.clients_memory, server.clients_eviction_memory) == _expected_totals(server)
    slow.transport.backlog = 0  # type: ignore[union-attr]
    slow.resume_writing()
    clientscron.cron(server)
    assert (server.clients_memory, server.clients_eviction_memory) == _expected_totals(server)
    assert not server.clients_in_flux
    before = server.clients_memory
    gone.close()
    assert before - server.clients_memory == client_memory(gone) > 0
    assert (server.clients_memory, server.clients_eviction_memory) == _expected_totals(server)


def _info(conn: RawConnection, section: str) -> dict[str, str]:
    text = parse_reply(conn.call("INFO", section))
    assert isinstance(text, bytes)
    return dict(line.split(":", 1) for line in text.decode().split("\r\n") if ":" in line)


def _wait_for(condition: Any, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("start", [start_redis, start_dumpling], ids=["redis", "dumpling"])
def test_used_memory_and_mem_clients_normal_follow_unsent_output(start):
    """A client that does not read 8 MB of replies: used_memory and mem_clients_normal grow by
    them (the cron counts it), and once it has read them they come back."""
    server: ServerProcess = start()
    try:
        with server.raw() as setter:
            setter.call("SET", "v1m", b"y" * 1_000_000)
        with server.raw() as conn:
            time.sleep(1)  # (the setter's buffers gone)
            info = _info(conn, "memory")
            base_used, base_clients = int(info["used_memory"]), int(info["mem_clients_normal"])
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(("127.0.0.1", server.port))
            try:
                slow.sendall(encode_command("GET", "v1m") * 8)
                _wait_for(lambda: int(_info(conn, "memory")["mem_clients_normal"]) - base_clients > 4_000_000,
                          "the unsent replies counted")
                assert int(_info(conn, "memory")["used_memory"]) - base_used > 4_000_000
                received = 0
                while received < 8 * 1_000_012:
                    received += len(slow.recv(1 << 20))
                _wait_for(lambda: int(_info(conn, "memory")["mem_clients_normal"]) - base_clients < 100_000,
                          "the sent replies no longer counted")
                assert int(_info(conn, "memory")["used_memory"]) - base_used < 200_000
            finally:
                slow.close()
    finally:
        server.stop()


@pytest.mark.parametrize("start", [start_redis, start_dumpling], ids=["redis", "dumpling"])
def test_idle_timeout_closes_idle_clients_not_subscribers(start):
    server: ServerProcess = start("--hz", "100")
    try:
        with server.raw() as admin, RawConnection(server.port) as idle, RawConnection(server.port) as subscriber:
            idle.call("PING")
            subscriber.send(encode_command("SUBSCRIBE", "ch"))
            _wait_for(lambda: b"sub=1" in admin.call("CLIENT", "LIST"), "the subscription")
            admin.call("CONFIG", "SET", "timeout", "1")
            _wait_for(lambda: admin.call("PING") == b"+PONG\r\n" and idle.is_closed(0.2), "the idle client closed")
            time.sleep(0.5)
            assert not subscriber.is_closed(0.2)
            admin.call("CONFIG", "SET", "timeout", "0")
    finally:
        server.stop()


def test_hz_is_kept_within_its_range(pair):
    """CONFIG SET hz takes any int and keeps it within 1..500 (updateHZ): CONFIG GET and INFO's
    hz and configured_hz show what is in force."""
    try:
        for value in ("0", "1000", "7", "500", "1"):
            pair.same("CONFIG", "SET", "hz", value)
            pair.same("CONFIG", "GET", "hz")
            ours, theirs = (_info(conn, "server") for conn in (pair.ours, pair.theirs))
            assert (ours["hz"], ours["configured_hz"]) == (theirs["hz"], theirs["configured_hz"])
    finally:
        pair.same("CONFIG", "SET", "hz", "10")


def test_dynamic_hz_doubles_the_rate_past_200_clients_a_tick():
    """serverCron's dynamic-hz: the rate doubles while more than 200 clients would share a tick,
    up to 500; off, the configured rate holds."""
    server, _ = _server_with_clients(0, hz=10)
    stand_ins = {n: object() for n in range(2_010)}
    server.clients = stand_ins  # type: ignore[assignment]
    assert server.tick_rate() == 20
    server.config.apply("dynamic-hz", False)
    assert server.tick_rate() == 10
    server.config.apply("dynamic-hz", True)
    server.config.apply("hz", 400)
    server.clients = {n: object() for n in range(200_000)}  # type: ignore[assignment]
    assert server.tick_rate() == 500
    server.clients = {}
