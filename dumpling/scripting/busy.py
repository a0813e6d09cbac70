"""Serving other clients while a script runs past ``busy-reply-threshold``.

A script runs on the event loop's thread, so the loop cannot turn while it runs.
Redis solves this by processing events from inside the Lua count hook
(``processEventsWhileBlocked``); this module does the same with the loop's own
sockets: from the hook, ``serve_others`` polls every client socket (but the
caller's) and the listening sockets with a zero timeout, reads what is there and
feeds it to the clients' ordinary ``data_received``.  While the responder is
installed, ``Server.execute`` is replaced by one that answers ``-BUSY`` to every
command not flagged ``allow-busy`` (SCRIPT KILL, FUNCTION KILL, FUNCTION STATS,
SHUTDOWN NOSAVE, MULTI/EXEC, AUTH, HELLO, ...), and replies leave at once through
the transports (uvloop writes straight to the socket when nothing is queued).

New connections are accepted too (a user's ``redis-cli SCRIPT KILL`` connects
afresh): they get a ``Client`` on a small blocking-free socket transport, handed to
the event loop when the script ends.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
from typing import TYPE_CHECKING, Any

from dumpling.errors import CommandError

if TYPE_CHECKING:
    from dumpling.dispatch import Server
    from dumpling.scripting.manager import Run
    from dumpling.server import Client

_READ_SIZE = 65536


class _SocketTransport(asyncio.Transport):
    """Enough of a transport for a client accepted while the loop is blocked."""

    signals_backlog = False  # (no pause_writing when it holds bytes: Client.connection_made)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.pending = bytearray()
        self.closing = False

    def write(self, data: Any) -> None:
        self.pending += data
        self._drain()

    def _drain(self) -> None:
        while self.pending:
            try:
                sent = self.sock.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.pending.clear()
                self.closing = True
                return
            del self.pending[:sent]

    def get_write_buffer_size(self) -> int:
        return len(self.pending)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """No pause_writing/resume_writing from here: the clients cron counts such a client's
        unsent output at its turns (dumpling.clientscron)."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        try:
            if name == "socket":
                return self.sock
            if name == "peername":
                return self.sock.getpeername()
            if name == "sockname":
                return self.sock.getsockname()
        except OSError:
            return default
        return default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


class _Handover(asyncio.Protocol):
    """The event loop's protocol for a client first served by the responder."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client.write_directly(None, -1)  # (its socket was _SocketTransport's: every write through this one)
        self.client.transport = transport  # type: ignore[assignment]
        if self.client.closed:
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.client.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.connection_lost(exc)


class BusyResponder:
    def __init__(self, server: Server, run: Run) -> None:
        self.server = server
        self.run = run
        self.accepted: list[tuple[socket.socket, Client, _SocketTransport]] = []
        self.gone: set[int] = set()
        self.listening: dict[int, socket.socket] | None = None
        server.execute = self.execute  # type: ignore[method-assign]
        server.script_busy = True

    def execute(self, client: Client, argv: list[bytes]) -> None:
        """Dispatch while busy: allow-busy commands run, everything else gets -BUSY."""
        server = self.server
        found = server.lookup_command(argv)
        if not isinstance(found, CommandError) and (
            not found.allow_busy
            or (found.name == "shutdown" and b"nosave" not in (a.lower() for a in argv[1:]))
        ):
            server.reject(client, server.scripting.busy_error(), argv, found)
            return
        # Keys the script made ready wake their blocked clients when it ends, not in the middle
        # of it (what a command allowed now delivers would otherwise serve them).
        keyspace = server.keyspace
        made_ready, keyspace.ready_keys = keyspace.ready_keys, {}
        try:
            type(server).execute(server, client, argv)
        finally:
            made_ready.update(keyspace.ready_keys)
            keyspace.ready_keys = made_ready
        if server.shutdown_event is not None and server.shutdown_event.is_set():
            self.run.killed = True  # SHUTDOWN NOSAVE: end the script now, whatever it wrote

    def serve_others(self) -> None:
        server = self.server
        caller = self.run.caller
        by_fd: dict[int, Any] = {}
        for client in list(server.clients.values()):
            if client is caller or client.closed or client.fd < 0 or client.fd in self.gone:
                continue
            by_fd[client.fd] = client
        for sock, client, _ in self.accepted:
            if not client.closed and sock.fileno() >= 0:
                by_fd[sock.fileno()] = (sock, client)
        listeners = self._listeners()
        try:
            ready, _, _ = select.select(list(by_fd) + list(listeners), [], [], 0)
        except (OSError, ValueError):
            return
        for fd in ready:
            if fd in listeners:
                self._accept(listeners[fd])
                continue
            target = by_fd[fd]
            try:
                data = os.read(fd, _READ_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if isinstance(target, tuple):
                sock, client = target
                if not data:
                    client.closed = True
                    server.client_disconnected(client)
                    continue
                client.data_received(data)
                continue
            if not data:
                self.gone.add(fd)  # the loop sees the EOF again once it runs
                if getattr(target, "repl_kind", None) == "replica":
                    # A replica that went away is gone now, as Redis frees it while a script is
                    # busy: INFO's connected_slaves and min-replicas-to-write see it at once (the
                    # loop's connection_lost then finds it gone already).
                    target.closed = True
                    server.client_disconnected(target)
                continue
            target.data_received(data)

    def _listeners(self) -> dict[int, socket.socket]:
        """The listening sockets, as plain sockets on duplicated descriptors (the loop's
        own socket objects cannot accept)."""
        if self.listening is None:
            self.listening = {}
            for srv in self.server.servers:
                for lsock in srv.sockets or ():
                    dup = socket.socket(fileno=os.dup(lsock.fileno()))
                    dup.setblocking(False)
                    self.listening[dup.fileno()] = dup
        return self.listening

    def _accept(self, listener: socket.socket) -> None:
        from dumpling.server import Client

        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        transport = _SocketTransport(sock)
        client = Client(self.server)
        client.connection_made(transport)
        self.accepted.append((sock, client, transport))

    def finish(self) -> None:
        """The script ended: normal dispatch again; accepted sockets go to the event loop."""
        server = self.server
        del server.execute
        server.script_busy = False
        for dup in (self.listening or {}).values():
            dup.close()
        loop = server.loop
        for sock, client, transport in self.accepted:
            transport._drain()
            if client.closed or transport.closing or loop is None:
                client.closed = True
                server.client_disconnected(client)
                sock.close()
                continue
            loop.create_task(self._hand_over(loop, sock, client))
        self.accepted.clear()

    @staticmethod
    async def _hand_over(loop: asyncio.AbstractEventLoop, sock: socket.socket, client: Client) -> None:
        await loop.connect_accepted_socket(lambda: _Handover(client), sock)
