"""Accept/read/write glue: the asyncio server, one ``Client`` protocol per connection.

Reads are fed chunk by chunk to a ``hiredis.Reader``; whatever hiredis cannot
represent exactly (inline commands, malformed or oversized requests, clients not
yet authenticated) goes through ``protocol.parse_request`` so errors carry
Redis's texts.  All replies produced by one read are written with one ``write()``.
Command execution lives in ``dumpling.dispatch``; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import hiredis

from dumpling import REDIS_VERSION
from dumpling.accel import fastpath
from dumpling.config import Config, ConfigFileError, StartupError
from dumpling.errors import ProtocolError
from dumpling.memory import update_client_memory
from dumpling.numbers import wrap_int64
from dumpling.protocol import (
    NO_REPLY,
    PartialRequest,
    Status,
    encode,
    encode_error,
    find_big_header,
    parse_request,
    wire_size,
)
from dumpling.querybuf import BIG_ARG, QueryBuffer
from dumpling.replybudget import encode_reply

if TYPE_CHECKING:
    from dumpling.dispatch import Server

_fast_run = fastpath.run if fastpath is not None else None
_find_big_header = getattr(fastpath, "find_big_header", None) or find_big_header
_INT64_SIGN = 1 << 63
REPLY_CHUNK_BYTES = 16 * 1024  # Redis's PROTO_REPLY_CHUNK_BYTES: the least size of a reply list block
_INCOMPLETE = object()  # hiredis' "need more data" marker (False is a valid RESP3 value)
_NOT_FETCHED = object()
_PROTOCOL_ERROR = object()


class _PyReads:
    """Client's first base without the C accelerators (pure mode): data_received is ``Client.received``."""

    __slots__ = ()

    def write_directly(self, transport: asyncio.BaseTransport | None, fd: int, signals: bool = False) -> None:
        """Pure mode writes every reply through the transport (``Client.flush``)."""


# The C base class whose data_received runs a read's common case (see Client.received)
_ReadBase: Any = fastpath.ClientBase if fastpath is not None else _PyReads


class Client(_ReadBase, asyncio.Protocol):
    """One connection: framing state, per-connection settings and its reply buffer."""

    repl_kind: str | None = None  # "replica" once it syncs, "master" for the master link (dumpling.replication)

    def __init__(self, server: Server) -> None:
        self.server = server
        self.keyspace = server.keyspace
        self.transport: asyncio.Transport | None = None
        self.id = server.next_client_id()
        self.db = server.keyspace.dbs[0]
        self.resp3 = False
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.user = server.acl.default  # the dumpling.acl.User this connection runs as
        self.authenticated = not server.acl.auth_required()
        # Authenticated as a user every command, key and channel is open to: the fast paths
        # (dispatch's and _fastpath.c's) test only this; other clients go through the ACL check.
        self.unrestricted = self.authenticated and self.user.unrestricted
        # A restricted user the C twins (GET, SET, INCR...) need not ask: see commands.acl.set_access
        self.twins_ok = self.unrestricted
        self.acl_free: frozenset[Any] = frozenset()  # commands its ACL check always passes
        self.acl_keyed: dict[str, Any] = {}  # commands the C loop checks by key patterns (User.keyed_commands)
        self.created = time.time()
        self.last_interaction = self.created
        self.addr = "?:0"
        self.laddr = "?:0"
        self.unix_socket = False  # connected through the ``unixsocket`` listener (flag U)
        self.local = False  # connIsLocal: a unix socket or a loopback peer (protected mode, "local" settings)
        self.fd = -1
        self.last_cmd = "NULL"
        self.flags_close_after_reply = False
        self.lua_debug: str | None = None  # SCRIPT DEBUG: "yes" (forked) or "sync"
        self.closed = False
        self.reply_mode = 0  # 0 on, 1 off, 2 skip-next
        self.skip_this = False
        self.no_evict = False
        self.no_touch = False
        self.monitor = False
        self.from_script = False  # the Lua engines' own clients (Redis's CLIENT_SCRIPT)
        self.readonly_cluster = False
        self.asking = False
        # transactions
        self.multi: list[tuple[Any, list[bytes]]] | None = None
        self.multi_error = False
        self.watched: dict[tuple[int, bytes], bool] = {}  # (db, key) -> already expired when WATCHed
        self.watch_dirty = False
        # pub/sub: subscriptions in the order they were made (dicts used as ordered sets)
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard_channels: dict[bytes, None] = {}
        self.obuf_soft_limit_since = 0  # unix seconds when the output buffer went over the soft limit
        # blocking
        self.blocked: Any = None  # a dispatch.Blocked while waiting
        # client-side caching (dumpling.tracking): settings while CLIENT TRACKING is on, and
        # CLIENT CACHING yes|no given for the next command
        self.tracking: Any = None
        self.tracking_caching = False
        # framing
        self._reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
        # Bytes fed to hiredis and not yet known consumed: the read itself while one
        # read is pending (no copy), a bytearray once reads accumulate.
        self._retained: bytes | bytearray = b""
        self._consumed = 0  # wire bytes of those requests (hiredis may hold a partial one)
        # Bytes from a big aggregate header on: not for hiredis (see protocol).  Empty, it is the
        # shared b"" (as _carry and _retained are): the C read path tests all three on every read,
        # and a per-client object would be one more cold cache line a read.
        self._held: bytes | bytearray = b""
        self._strict = not self.authenticated
        self._carry = b""  # bytes after a request the reference parser finished, not yet taken
        self._buf = bytearray()  # strict-mode buffer
        self._pos = 0
        self._partial = PartialRequest()  # the reference parser's progress in the request at _pos
        self._out: list[bytes] = []
        # Redis's reply buffer: its size and the most it held this period (dumpling.replybuffer)
        self.reply_buffer_size = 16 * 1024
        self.reply_buffer_peak = 0
        self.reply_peak_reset_at = int(self.created * 1000)
        self.counted_memory = 0  # its part of Server.clients_memory (used_memory), as last counted
        self.eviction_memory = 0  # its part of Server.clients_eviction_memory (dumpling.clienteviction)
        # Redis's query buffer: its capacity and recent peak (dumpling.querybuf; CLIENT LIST qbuf-free)
        self.query_buffer = QueryBuffer()
        self._queued: tuple[Any, int, int] = (None, 0, 0)  # queued_bytes' cache: (multi list, entries, bytes)
        # Bytes of this read already run and gone from the buffers above (by the C fast path, or
        # by the reference parser before it handed back): Redis still holds them (qbuf) until
        # the read's requests have run.
        self._batch_ran = 0
        self._in_batch = False
        self._flush_scheduled = False

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        limits = getattr(transport, "set_write_buffer_limits", None)
        if limits is not None:
            limits(0)  # pause_writing at the first byte the socket does not take (below)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            self.fd = sock.fileno()
            if transport.get_extra_info("sslcontext") is None:
                # the C read path may write a read's replies to this socket itself while nothing
                # is queued in this transport (ClientBase.write_directly), until close or
                # connection_lost; anything that gives the client another transport turns it off.
                # Under limits(0) an asyncio transport calls pause_writing at its first held byte
                # and resume_writing once it holds none, so _write_held says when it holds any
                # (one that does not, signals_backlog False, is asked on every write)
                signals = limits is not None and getattr(transport, "signals_backlog", True)
                self.write_directly(transport, self.fd, signals)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if sock is not None and sock.family == socket.AF_UNIX:
            # Redis shows the socket's path as both ends of a unix connection, in a buffer of
            # NET_ADDR_STR_LEN (78) bytes: a long path loses its end, ":0" included.
            self.unix_socket = self.local = True
            path = os.fsencode(self.server.config["unixsocket"]) + b":0"
            self.addr = self.laddr = os.fsdecode(path[:77])
        else:
            self.addr = _fmt_addr(peer)
            self.laddr = _fmt_addr(local)
            # connSocketIsLocal compares the peer's address text: "127.*" or "::1" (an IPv4-mapped
            # "::ffff:127.0.0.1" is not local; IPv6 listeners are V6ONLY, so it never comes up).
            host = peer[0] if isinstance(peer, tuple) and peer else ""
            self.local = host.startswith("127.") or host == "::1"
        refusal = self.server.client_connected(self)
        if refusal is not None:
            transport.write(refusal)
            self.write_directly(None, -1)
            self.closed = True
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.write_directly(None, -1)
        self.closed = True
        self.server.client_disconnected(self)

    def pause_writing(self) -> None:
        """The socket left output unsent: this client's memory moves with no read or write of ours
        (the transport sends it later), so the clients cron counts it every tick until it is
        sent (dumpling.clientscron); and the C read path's replies follow it through the
        transport (``_write_held``) until ``resume_writing``."""
        self._write_held = True
        if not self.closed:
            self.server.clients_in_flux.add(self)

    def resume_writing(self) -> None:
        """All output sent: counted once more at the next tick."""
        self._write_held = False
        if not self.closed:
            self.server.clients_in_flux.add(self)

    def received(self, data: bytes) -> None:
        """A read of the connection, all of it through Python: ``data_received`` in pure mode, and
        the reference for ``_fastpath.ClientBase.data_received``, which does this read's work in C
        when it starts on a request boundary for the fast readers and the C loop runs all of it
        (the replies written as ``flush`` writes them; when ``sized``, the query buffer model's
        ``read`` and ``settle`` called around it as here); it hands the rest of a read the loop
        stopped in to ``_read_rest`` and any other read to this method."""
        server = self.server
        server.stat_net_input += len(data)
        server.stat_reads += 1  # (and a cycle of the event loop: Server.loop_cycles)
        self._batch_ran = 0
        # Redis's query buffer (dumpling.querybuf): most reads change nothing there
        query_buffer = self.query_buffer
        size = len(data)
        sized = size > query_buffer.quiet
        if sized:
            query_buffer.read(self._pending_len(), size)
        if self._strict:
            self._buf += data
        elif not self._take(self._carry + data if self._carry else data):
            self.flush()  # the C fast path answered the whole read
            if sized:
                query_buffer.settle(0, -1, query_buffer.big_argument_at_end(data) if size > BIG_ARG else -1)
            return
        self._after_read(data, sized)

    if fastpath is None:
        data_received = received

    def _read_rest(self, data: bytes, done: int, sized: bool = False) -> None:
        """The rest of a read ClientBase.data_received began (``received``'s work up to the C loop
        done: the read counted, the query buffer's model told of it when ``sized``, the loop ran
        its first ``done`` bytes): hiredis and ``process_input`` take what follows."""
        if done:
            self._batch_ran += done
        self._feed(data[done:] if done else data)
        self._after_read(data, sized)

    def _after_read(self, data: bytes, sized: bool) -> None:
        """The requests of a read the fast readers hold run, then the query buffer's model settled."""
        server = self.server
        query_buffer = self.query_buffer
        size = len(data)
        self.process_input()
        if not self.closed:
            # what a read through Python may have changed (an unfinished request, MULTI, WATCH,
            # subscriptions...) is counted into the clients' totals at the next tick
            server.clients_in_flux.add(self)
        if sized or self._retained or self._held or self._carry or self._buf:
            pending = self._pending_len()
            query_buffer.settle(pending, self.argument_arriving() if query_buffer.bulk >= 0 else -1,
                                query_buffer.big_argument_at_end(data) if size > BIG_ARG and not pending else -1)
            if pending and server.maxmemory and not self.closed:
                # An unfinished request's bytes count for key eviction at once, as Redis's
                # allocator counts a growing query buffer (CLIENT LIST's tot-mem and
                # maxmemory-clients compute a client's memory when they look, with or without
                # this).  unit/client-eviction's 'client evicted due to percentage of maxmemory'
                # is a race between two connections, which Redis loses too (upstream #13433):
                # the test writes a request on one and CLIENT LIST on another at once, and the
                # kernel's level-triggered epoll reports the CLIENT LIST connection first when
                # the server had not polled again since its last reply (it stays on the ready
                # list once reported), whatever this line does.
                update_client_memory(server, self)

    def _take(self, data: bytes) -> bool:
        """Hand bytes that start on a request boundary (or continue hiredis' pending
        request) to the readers; False if the C fast path ran all of them."""
        self._carry = b""
        if self._held:  # the reference parser takes over there once hiredis is drained
            self._held += data
            return True
        if not self._retained and _fast_run is not None:
            # The C fast path runs the leading plain GET/SET/INCR/MSET... requests
            # (when this connection and the server are in the plain state it knows).
            done = _fast_run(self, data)
            if done:
                if done == len(data):
                    return False
                self._batch_ran += done
                data = data[done:]
        self._feed(data)
        return True

    def _feed(self, data: bytes) -> None:
        """Bytes on a request boundary (or continuing hiredis' pending request) to hiredis, and from
        a big aggregate header on to the reference parser (``_held``)."""
        cut = _find_big_header(data, 0)
        if cut >= 0:
            self._held = bytearray(data[cut:])
            if not cut:
                return
            data = data[:cut]
        self._reader.feed(data)
        if not self._retained:
            self._retained = data
        else:
            if type(self._retained) is bytes:
                self._retained = bytearray(self._retained)
            self._retained += data

    # -- input ------------------------------------------------------------------------

    def process_input(self) -> None:
        """Execute every complete request (until the client blocks or must close)."""
        server = self.server
        if self._over_query_limit():
            # Redis checks the query buffer after each read, before running what it holds.
            server.query_buffer_limit_reached(self)
            self._out.clear()
            self.close()
            return
        if server.client_eviction:
            # maxmemory-clients counts what was read before it runs (Redis: argv, query buffer).
            evict_clients(server, self)
            if self.closed:
                return
        self._in_batch = True
        execute = server.execute
        self.last_interaction = time.time()
        started, commands_before = time.perf_counter_ns(), server.stat_commands
        try:
            while self.blocked is None and not self.flags_close_after_reply and not self.closed:
                if self._carry:
                    # What followed a request the reference parser finished: back to the fast readers.
                    carry, self._carry = self._carry, b""
                    self._take(carry)
                fetched: Any = _NOT_FETCHED
                if not self._strict:
                    # Fast path: hiredis hands back a whole request of bulk strings.
                    try:
                        fetched = self._reader.gets()
                    except hiredis.ProtocolError:
                        fetched = _PROTOCOL_ERROR
                    if type(fetched) is list and fetched:
                        for item in fetched:
                            if type(item) is not bytes:
                                break
                        else:
                            self._consumed += wire_size(fetched)
                            execute(self, fetched)
                            continue
                    elif (
                        fetched is _INCOMPLETE
                        and self._consumed == len(self._retained)
                        and not self._reader.has_data()
                        and not self._held
                    ):
                        # The read ended on a request boundary: nothing is pending.
                        self._retained = b""
                        self._consumed = 0
                        break
                try:
                    argv = self._next_request(fetched)
                except ProtocolError as e:
                    self.write_raw(encode_error("ERR " + str(e)))
                    server.stat_error_replies += 1
                    server.count_error("ERR")
                    self.flags_close_after_reply = True
                    break
                if argv is None:
                    break
                if argv:
                    execute(self, argv)
            if not self.closed and self._over_query_limit():
                server.query_buffer_limit_reached(self)
                self._out.clear()
                self.close()
                return
        finally:
            self._in_batch = False
            server.loop_stats.measured((time.perf_counter_ns() - started) // 1000, server.stat_commands - commands_before)
        self.flush()
        if server.client_eviction and not self.closed:
            # ...and what the batch left (MULTI commands, WATCHed keys, subscriptions, output),
            # once flush applied the output-buffer limits, which take precedence.
            evict_clients(server, self)

    def _over_query_limit(self) -> bool:
        """client-query-buffer-limit as Redis 7.4 applies it: the commands queued in MULTI count as
        part of the query buffer, and a client that still has to authenticate may hold 1 MB."""
        held = self._pending_len() + (self.queued_bytes() if self.multi else 0)
        return held > self.server.config["client-query-buffer-limit"] or (not self.authenticated and held > 1 << 20)

    def queued_bytes(self) -> int:
        """MULTI's queued commands as Redis counts them (mstate.argv_len_sums): their arguments'
        bytes and argv pointers; summed once per command queued, not on every read."""
        multi = self.multi
        if not multi:
            return 0
        cached, counted, total = self._queued
        if cached is not multi or counted > len(multi):
            counted = total = 0
        for _, argv in multi[counted:]:
            total += sum(map(len, argv)) + 8 * len(argv)
        self._queued = (multi, len(multi), total)
        return total

    def _pending_len(self) -> int:
        return len(self._buf) - self._pos if self._strict else len(self._retained) + len(self._held) + len(self._carry)

    def _next_request(self, fetched: Any = _NOT_FETCHED) -> list[bytes] | None:
        """The next request, from hiredis (``fetched`` if the caller already asked it)
        or from the reference parser."""
        if self._strict:
            return self._next_strict()
        if fetched is _NOT_FETCHED:
            try:
                fetched = self._reader.gets()
            except hiredis.ProtocolError:
                fetched = _PROTOCOL_ERROR
        request = fetched
        if request is _PROTOCOL_ERROR:
            self._to_strict()
            return self._next_strict()
        if request is _INCOMPLETE:
            # has_data() is False also when hiredis has consumed the leading elements of
            # a request it has not finished; only the byte count tells them apart.
            if not self._reader.has_data() and self._consumed == len(self._retained):
                self._retained = b""
                self._consumed = 0
                if not self._held:
                    return None
            # A request is pending.  Hand it to the reference parser, which knows what
            # hiredis cannot: inline commands, headers ending in a bare CR, and bulk
            # lengths over the limits (checked before the payload arrives).
            self._to_strict()
            return self._next_strict()
        if type(request) is list:
            for item in request:
                if type(item) is not bytes:
                    break
            else:
                self._consumed += wire_size(request)
                return request
        self._to_strict()
        return self._next_strict()

    def _to_strict(self) -> None:
        """Continue with the reference parser from the first request hiredis did not finish."""
        # hiredis only accepts canonical headers, so the wire size of what it returned
        # is exact: no need to parse those requests again.
        self._batch_ran += self._consumed
        self._buf = bytearray(self._retained[self._consumed :])
        self._buf += self._held
        self._held = b""
        self._partial.argv = None
        self._pos = 0
        self._retained = b""
        self._consumed = 0
        self._reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
        self._strict = True

    def _next_strict(self) -> list[bytes] | None:
        server = self.server
        argv, pos = parse_request(
            self._buf, self._pos, server.config["proto-max-bulk-len"], self.authenticated, self._partial
        )
        if argv is None:
            if self._pos > 4096:
                del self._buf[: self._pos]
                self._pos = 0
            return None
        self._pos = pos
        if self.authenticated:
            # Back to the fast path for whatever follows this request.
            self._batch_ran += pos
            self._carry = bytes(self._buf[pos:])  # taken at the top of process_input's next pass
            self._buf = bytearray()
            self._pos = 0
            self._strict = False
        return argv

    # -- output -----------------------------------------------------------------------

    def reply(self, value: Any) -> None:
        """Queue a command reply (honours CLIENT REPLY OFF/SKIP)."""
        if self.skip_this:
            return
        t = type(value)
        if t is Status:  # the common shapes first: no generic encoder call
            self._out.append(value.wire)
        elif t is bytes:
            self._out.append(b"$%d\r\n%s\r\n" % (len(value), value))
        elif t is int:  # (not bool: a RESP3 boolean); outside int64: C's wrap, as Redis prints it
            self._out.append(b":%d\r\n" % (value if -_INT64_SIGN <= value < _INT64_SIGN else wrap_int64(value)))
        elif value is None:
            self._out.append(b"_\r\n" if self.resp3 else b"$-1\r\n")
        elif value is NO_REPLY:
            return
        else:
            data = encode_reply(self, value)  # aggregates against the output-buffer limit (replybudget)
            if data is not None:
                self._out.append(data)

    def push(self, value: Any) -> None:
        """Queue an out-of-band message (pub/sub, MONITOR); delivered even under REPLY OFF.

        Outside the client's own batch the write happens once per event-loop pass (as
        Redis writes in beforeSleep): a burst of messages costs one write(), and a reply
        queued later in the same pass still follows the message."""
        self._out.append(encode(value, self.resp3))
        if self.server.client_eviction:
            # maxmemory-clients: counted at once, as Redis's pubsub/tracking update the receiver
            note_client_memory(self.server, self)
        if not self._in_batch and not self._flush_scheduled:
            loop = self.server.loop
            if loop is None:
                self.flush()
            else:
                self._flush_scheduled = True
                loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        if not self._in_batch:
            self.flush()
            if self.server.client_eviction and not self.closed:
                # maxmemory-clients: what was pushed to it outside its own batch (pub/sub,
                # invalidations, MONITOR), once the output-buffer limits had their say
                evict_clients(self.server, self)

    def write_raw(self, data: bytes) -> None:
        self._out.append(data)
        if not self._in_batch:
            self.flush()

    def flush(self) -> None:
        out = self._out
        if out and self.transport is not None and not self.closed:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            transport = self.transport
            server = self.server
            size = len(data)
            # client-output-buffer-limit.  Redis checks it as replies are queued, before any is
            # written: replies that take the client's output (unsent backlog included) to the
            # hard limit are never sent, and a running soft-limit timer is checked (or reset).
            # (And maxmemory-clients: Server.output_check_from says from which size on, 0: never.)
            if (
                self.obuf_soft_limit_since or size + transport.get_write_buffer_size() >= server.output_check_from > 0
            ) and server.output_limit_exceeded(self, size + transport.get_write_buffer_size()):
                return
            server.stat_net_output += size
            server.stat_writes += 1
            if size > self.reply_buffer_peak:
                self.reply_buffer_peak = min(size, self.reply_buffer_size)
            transport.write(data)
        elif out:
            out.clear()
        if self.flags_close_after_reply and not self.closed:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.write_directly(None, -1)
            self.closed = True
            self.transport.close()
            self.server.client_disconnected(self)

    def output_buffer_size(self) -> int:
        """Bytes the server holds for this client (CLIENT LIST ``omem``, what the output-buffer
        limits measure): the transport's unsent backlog plus replies not yet handed to it."""
        t = self.transport
        backlog = t.get_write_buffer_size() if t is not None else 0
        return backlog + sum(map(len, self._out)) if self._out else backlog

    def output_buffer_layout(self) -> tuple[int, int, int]:
        """CLIENT LIST's ``obl``, ``oll`` and ``omem``.  Redis queues replies in a 16 KB buffer
        (obl: its used bytes) and, past it or behind a backlog, in a list of blocks of at least
        16 KB (oll: their count).  Here replies wait in ``_out`` until the read batch ends (obl)
        and what the socket did not take waits in the transport (oll: in 16 KB blocks)."""
        t = self.transport
        backlog = t.get_write_buffer_size() if t is not None else 0
        unsent = sum(map(len, self._out)) if self._out else 0
        return unsent, -(-backlog // REPLY_CHUNK_BYTES), backlog + unsent

    def pending_arguments(self) -> tuple[int, int]:
        """Bytes and number of the arguments of an unfinished request that Redis would already
        hold parsed in ``argv`` (counted in tot-mem, so in client eviction and used_memory)."""
        if self._strict:
            argv = self._partial.argv
            return (sum(map(len, argv)), len(argv)) if argv else (0, 0)
        if len(self._retained) > self._consumed:
            if self._held:
                return 0, 0
            _, size, count, _ = _parsed_request(self._retained, self._consumed)
        else:
            _, size, count, _ = _parsed_request(self._held, 0)
        return size, count

    def argument_arriving(self) -> int:
        """The length of the argument of an unfinished request whose bytes are arriving (its
        ``$len`` line read: Redis sizes the query buffer for it), or -1."""
        if self._strict:
            return _parsed_request(self._buf, self._pos, self._partial)[3]
        if len(self._retained) > self._consumed:
            return -1 if self._held else _parsed_request(self._retained, self._consumed)[3]
        return _parsed_request(self._held, 0)[3]

    def query_buffer_head(self, size: int) -> bytes:
        """The first ``size`` bytes of what is buffered and not yet run (a log line shows them)."""
        if self._strict:
            return bytes(self._buf[self._pos : self._pos + size])
        pending = bytes(self._retained[self._consumed : self._consumed + size])
        return (pending + bytes(self._held[:size]) + self._carry[:size])[:size]

    def input_at_rest(self) -> bool:
        """Nothing read and not yet run, outside a batch: ``query_buffer_size`` is 0,
        ``pending_arguments`` (0, 0) and ``argument_arriving`` -1 (the common case, cheaply)."""
        return not (self._strict or self._retained or self._held or self._carry or self._in_batch)

    def query_buffer_size(self) -> int:
        """CLIENT LIST ``qbuf``: bytes read and not yet run, as Redis counts them: of an unfinished
        request, the lines and arguments its parser already took (``*N``, ``$len``, whole
        arguments) are no longer in the query buffer."""
        if self._strict:
            size = len(self._buf) - self._pos - _parsed_request(self._buf, self._pos, self._partial)[0]
            return size + self._pos + self._batch_ran if self._in_batch else size
        pending = len(self._retained) - self._consumed
        if pending:
            parsed = _parsed_prefix(self._retained, self._consumed) if not self._held else 0
        else:
            parsed = _parsed_prefix(self._held, 0)
        size = pending + len(self._held) + len(self._carry) - parsed
        if self._in_batch:
            # Redis trims the query buffer only once it has run the requests of a read: while one
            # of them runs, its own bytes and those of the requests before it are still there.
            size += self._consumed + self._batch_ran
        return size




def _parsed_prefix(buf: bytes | bytearray, start: int) -> int:
    """Bytes of the unfinished multibulk request at ``buf[start:]`` that Redis's
    processMultibulkBuffer has already consumed: its ``*N`` line, then each whole argument and
    the ``$len`` line of the one still arriving.  0 for an inline request, a malformed one, or a
    whole request (Redis parses it only when it runs it)."""
    return _parsed_request(buf, start)[0]


def _parsed_request(buf: bytes | bytearray, start: int, partial: PartialRequest | None = None) -> tuple[int, int, int, int]:
    """``_parsed_prefix``, with the bytes and number of the whole arguments among them (Redis's
    ``argv_len_sum`` and ``argc`` of the request it is still reading), and the length of the
    argument whose payload is arriving (-1: none).  ``partial``, the reference parser's progress
    in that request, skips the arguments it already holds: a request of 150k arguments took
    0.75 s a look to walk again (a CLIENT LIST, the log line of its query-buffer-limit close)."""
    if partial is not None and partial.argv is not None:
        argv = partial.argv
        return _arguments_parsed(buf, start, start + partial.offset, partial.count - len(argv),
                                 sum(map(len, argv)), len(argv))
    if buf[start : start + 1] != b"*":
        return 0, 0, 0, -1
    end = buf.find(b"\r\n", start)
    count = _header_int(buf, start + 1, end)
    if count is None:
        return 0, 0, 0, -1
    return _arguments_parsed(buf, start, end + 2, count, 0, 0)


def _arguments_parsed(buf: bytes | bytearray, start: int, pos: int, count: int, args: int,
                      argc: int) -> tuple[int, int, int, int]:
    """``_parsed_request`` of the request at ``start`` from its argument at ``pos`` on, with
    ``count`` arguments left and ``args``/``argc`` counted before ``pos``."""
    for _ in range(count):
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return pos - start, args, argc, -1
        length = _header_int(buf, pos + 1, end) if buf[pos : pos + 1] == b"$" else None
        if length is None:
            return 0, 0, 0, -1
        if end + 2 + length + 2 > len(buf):
            return end + 2 - start, args, argc, length  # the argument's payload is still arriving
        pos = end + 2 + length + 2
        args += length
        argc += 1
    return 0, 0, 0, -1


def _header_int(buf: bytes | bytearray, start: int, end: int) -> int | None:
    """The number of a ``*N``/``$len`` line whose digits are buf[start:end], if it is one."""
    if end < 0 or not 0 < end - start <= 19:
        return None
    digits = bytes(buf[start:end])
    return int(digits) if digits.isdigit() else None


def evict_clients(server: Server, client: Client) -> None:
    """maxmemory-clients, after ``client``'s buffers changed (dumpling.clienteviction, imported
    when eviction is first on)."""
    from dumpling.clienteviction import evict_clients as evict

    evict(server, client)


def note_client_memory(server: Server, client: Client) -> None:
    """maxmemory-clients: ``client``'s memory counted again (dumpling.clienteviction.note)."""
    from dumpling.clienteviction import note

    note(server, client)


if fastpath is not None:
    fastpath.configure_reads(Client, globals())


def disable_fastpath() -> None:
    """Stop offering reads to the C fast path (it matches commands by their real names)."""
    global _fast_run
    _fast_run = None


def _fmt_addr(addr: Any) -> str:
    if not addr:
        return "?:0"
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return f"{addr}:0"


# ----------------------------------------------------------------------------- entry point


def fatal_config(reason: str, line_number: int, line: str) -> None:
    where = f"Reading the configuration file, at line {line_number}\n>>> '{line}'\n" if line_number else ""
    sys.stderr.write(f"\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}) ***\n{where}{reason}\n")


def main(argv: list[str] | None = None) -> int:
    from dumpling import buildinfo
    from dumpling.dispatch import Server

    args = sys.argv[1:] if argv is None else argv
    # As redis-server: only the first argument is looked at; the version on stdout (exit 0),
    # the usage on stderr (exit 1).
    if args and args[0] in ("-v", "--version"):
        print(buildinfo.version_line())
        return 0
    if args and args[0] in ("-h", "--help"):
        sys.stderr.write(buildinfo.usage())
        return 1
    config = Config()
    try:
        config.load_argv(args)
    except ConfigFileError as e:
        fatal_config(e.reason, e.line_number, e.line)
        return 1
    except StartupError as e:
        sys.stderr.write(f"{os.getpid()}:C {_log_time()} # {e}\n")
        return 1
    if config["daemonize"]:
        daemonize()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is a hard dependency; this only helps odd platforms
        pass
    server = Server(config, argv0=sys.argv[0], had_config=bool(args))
    return asyncio.run(server.serve_forever())


def daemonize() -> None:
    """Detach as a daemon: fork twice (the session leader exits, so the server can never
    reacquire a terminal), new session, stdin/stdout/stderr on /dev/null.  As in Redis, a log
    going to standard output then goes nowhere; ``logfile`` is written as usual."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork():
        os._exit(0)  # the process that was started returns at once, with success
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _log_time() -> str:
    now = time.time()
    return time.strftime("%d %b %Y %H:%M:%S", time.localtime(now)) + ".%03d" % (int(now * 1000) % 1000)


def install_signal_handlers(loop: asyncio.AbstractEventLoop, server: Server) -> None:
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        loop.add_signal_handler(sig, server.signal_shutdown, name)
