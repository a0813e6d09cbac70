"""The running server: its state, and how one parsed command is executed.

``Server.execute`` applies Redis's dispatch order (unknown command, arity, AUTH,
MULTI queueing, cluster redirection, OOM, pub/sub context) and then ``call``
runs the handler with the command time snapshot, records statistics, SLOWLOG
and MONITOR, and wakes clients blocked on keys the command made ready.

Blocking commands return ``Blocked``; the client stops reading commands until
the retry succeeds, the timeout fires, or it is unblocked/disconnected.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from dumpling import REDIS_VERSION, accel, clientscron, collector, commands, replybuffer
from dumpling.clienteviction import CHECK_FROM, evict_clients, eviction_limit
from dumpling.clienteviction import forget as forget_client_memory
from dumpling.commands.acl import check_command as acl_check
from dumpling.commands.acl import guard_blocked as acl_guard_blocked
from dumpling.commands.acl import redacted as redacted_args
from dumpling.commands.registry import ORIGINAL, TABLE, Command, rename
from dumpling.config import HZ_RANGE, Config
from dumpling.errors import NOAUTH, PROTECTED_MODE_DENIED, CommandError
from dumpling.keyspace import Keyspace
from dumpling.latency import LatencyMonitor
from dumpling.latencyhist import Histogram
from dumpling.listeners import ListenError, open_tcp
from dumpling.loopstats import LoopStats
from dumpling.oomscore import OomScore
from dumpling.protocol import NO_REPLY, NULL_ARRAY, QUEUED, Double, ErrorReply, Map, Raw, SetReply, Status, repr_bytes
from dumpling.server import Client, disable_fastpath, install_signal_handlers

MULTI_PASSTHROUGH = {b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"}
SUBSCRIBED_ALLOWED = {
    b"subscribe",
    b"unsubscribe",
    b"psubscribe",
    b"punsubscribe",
    b"ssubscribe",
    b"sunsubscribe",
    b"ping",
    b"quit",
    b"reset",
}
ERROR_STATS_NUMBER = 128  # distinct error codes INFO errorstats counts before it turns itself off
DEFAULT_PID_FILE = "/var/run/redis.pid"  # Redis's CONFIG_DEFAULT_PID_FILE, used when daemonized without one
MIN_HZ, MAX_HZ = HZ_RANGE  # CONFIG_MIN_HZ, CONFIG_MAX_HZ
MAX_CLIENTS_PER_TICK = 200  # MAX_CLIENTS_PER_CLOCK_TICK: dynamic-hz raises the rate beyond
LOG_LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
LOG_MARKS = {"debug": ".", "verbose": "-", "notice": "*", "warning": "#"}


_new_histogram: Callable[[], Any] = accel.fastpath.histogram if accel.fastpath is not None else Histogram


def record_latency(cmd: Command, usec: int) -> None:
    """One call into the command's latency histogram, made at its first call (the C request
    loop records its own calls the same way, into the same objects)."""
    if cmd.latency is None:
        cmd.latency = _new_histogram()
    cmd.latency.record(usec)


class Blocked:
    """Returned by a blocking handler: retry ``retry()`` when a key becomes ready."""

    __slots__ = ("client", "keys", "retry", "timeout_reply", "deadline", "timer", "cmd", "usec", "rejected", "argv")

    def __init__(
        self,
        keys: list[bytes],
        timeout_s: float,
        retry: Callable[[], Any],
        timeout_reply: Any = NULL_ARRAY,
    ) -> None:
        self.keys = keys
        self.retry = retry  # returns a reply, or None to keep waiting
        self.timeout_reply = timeout_reply
        self.deadline = timeout_s  # 0 = forever
        self.timer: asyncio.TimerHandle | None = None
        self.client: Client | None = None
        self.cmd: Command | None = None
        self.usec = 0  # the blocking call's time, counted when it is answered
        self.argv: list[bytes] = []  # the call's arguments: its SLOWLOG entry, made when it is answered
        self.rejected = False  # refused when reprocessed (ACL): a rejected call, not a call


class _PyServerCounters:
    """Server's first base without the C accelerators (pure mode): its counters are plain attributes."""

    __slots__ = ()


# The C base whose members hold the counters every read and command adds to (stat_commands,
# stat_net_input/output, stat_reads/writes): the C read path adds to them without writing the
# server's __dict__, which its plain-state memo keeps by version (see _fastpath.c's Memo).
_ServerBase: Any = accel.fastpath.ServerBase if accel.fastpath is not None else _PyServerCounters


class Server(_ServerBase):
    def __init__(self, config: Config, argv0: str = "dumpling-server", had_config: bool = True) -> None:
        self.config = config
        self.keyspace = Keyspace(config)
        config.listeners.append(self._config_changed)
        self.clients: dict[int, Client] = {}
        self.monitors: list[Client] = []
        self._next_id = 0
        self.start_time = time.time()
        self.run_id = secrets.token_hex(20)
        self.replid = secrets.token_hex(20)
        self.argv0 = argv0
        self.had_config = had_config
        self.executable = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        self.last_save = int(self.start_time)
        # statistics
        self.stat_connections = 0
        self.stat_rejected = 0
        self.stat_commands = 0
        self.stat_net_input = 0
        self.stat_net_output = 0
        self.stat_error_replies = 0
        self.stat_unexpected_errors = 0
        self.errorstats: dict[str, int] = {}
        self.errorstats_enabled = True  # until more than ERROR_STATS_NUMBER codes (CONFIG RESETSTAT: again)
        self.ops_samples: deque[tuple[float, int]] = deque(maxlen=16)
        # slowlog
        self.slowlog: deque[list[Any]] = deque()
        self.slowlog_next_id = 0
        self.latency = LatencyMonitor()  # LATENCY LATEST/HISTORY/GRAPH/DOCTOR (latency-monitor-threshold)
        self.oom_score = OomScore()
        # shutdown / lifecycle
        self.shutdown_event: asyncio.Event | None = None
        self.exit_code = 0
        # A shutdown waiting for lagging replicas (Redis's shutdown_mstime): when it gives up
        # waiting (ms, 0: none), with the SHUTDOWN flags; clients whose SHUTDOWN waits with it.
        self.shutdown_deadline_ms = 0
        self.shutdown_flags: frozenset[str] = frozenset()
        self.shutdown_waiters: list[Client] = []
        # SIGTERM/SIGINT's SHUTDOWN flags until the cron acts on them (Redis's shutdown_asap;
        # SHUTDOWN ABORT can cancel it first); the cron runs once the dataset is loaded.
        self.shutdown_asap: frozenset[str] | None = None
        self.cron_started = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.servers: list[asyncio.base_events.Server] = []
        self.tcp_listeners: dict[tuple[str, int], Any] = {}  # (bind word, port) -> its server (listen_tcp)
        self.unix_socket_path = ""  # the unix socket this server created (removed at exit)
        self.in_exec = False
        self.cmd_time_ns = time.time_ns()  # the time snapshot of the outermost command (TIME in scripts)
        self.current_client: Client | None = None
        self.serving_blocked: Client | None = None  # a blocked client being served (serve_ready_keys)
        self.cluster: Any = None  # set by the cluster module when cluster-enabled
        # Set while keys are locked (a MIGRATE waiting on its target): returns True when it
        # suspended the client because the command would write a locked key.
        self.key_gate: Callable[[Client, Command, list[bytes]], bool] | None = None
        # Set while CLIENT PAUSE is in force (dumpling.commands.pause): the same contract.
        self.pause_gate: Callable[[Client, Command, list[bytes]], bool] | None = None
        self.client_pause: Any = None
        self.cron_paused = False  # DEBUG PAUSE-CRON: serverCron does nothing
        self.pubsub: Any = None  # set by the pub/sub module
        # The clients with a subscription of any kind (Redis's pubsub clients), kept by dumpling.
        # commands.pubsub's registry: while it is empty no client is in the RESP2 subscribed
        # context or the pubsub output-limit class, which the C read path learns from this one
        # shared dict instead of three of each client's.
        self.pubsub_clients: dict[Client, None] = {}
        self.acl: Any = None  # users and the ACL LOG (dumpling.acl.Acl), set by dumpling.commands.acl
        self.tracking: Any = None  # client-side caching (dumpling.tracking), set by its command module
        # Pushes for the client whose command is running; sent after its reply (Redis 7.2+ order).
        self.pending_pushes: list[Any] = []
        self._obuf_limits: tuple[str, dict[str, tuple[int, int, int]]] = ("", {})
        self.obuf_soft_clients: set[Client] = set()  # clients whose soft-limit timer runs
        self.stat_obuf_disconnections = 0  # INFO client_output_buffer_limit_disconnections
        self.stat_qbuf_disconnections = 0  # INFO client_query_buffer_limit_disconnections
        self.stat_reads = 0  # reads handed to clients (total_reads_processed)
        self.stat_writes = 0  # writes to clients' transports (total_writes_processed)
        self.loop_stats = LoopStats()  # INFO eventloop_* and instantaneous rates, sampled by the cron
        self._busy_base_ns = time.thread_time_ns()
        # the normal, pub/sub and master clients' memory in used_memory and INFO mem_clients_normal,
        # as last counted (memory.update_client_memory)
        self.clients_memory = 0
        # maxmemory-clients: the normal and pub/sub clients' memory as last counted, and the limit
        # it was kept for (dumpling.clienteviction.note)
        self.clients_eviction_memory = 0
        self.clients_eviction_limit = 0
        # reply buffer sizes (dumpling.replybuffer; DEBUG REPLYBUFFER)
        self.reply_buffer_resizing = True
        self.reply_buffer_peak_reset_ms = replybuffer.DEFAULT_PEAK_RESET_MS
        self.stat_reply_buffer_shrinks = self.stat_reply_buffer_expands = 0
        # the clients cron (dumpling.clientscron): the round of turns it is in, and the clients
        # whose memory it counts again every tick (their buffers moved since their turn)
        self.cron_round: list[Client] = []
        self.cron_cursor = 0
        self.clients_in_flux: set[Client] = set()
        self.hz = min(max(config["hz"], MIN_HZ), MAX_HZ)  # the tick rate in force (tick_rate, each tick)
        self.cron_hooks: list[Callable[[], None]] = [
            self.check_soft_output_limits, lambda: clientscron.cron(self), lambda: evict_clients(self),
            self.keyspace.rehash_cron,
        ]
        self.stat_evicted_clients = 0  # INFO evicted_clients (maxmemory-clients)
        # Set while whole classes of commands are refused (persistence: -LOADING while the
        # dataset loads, -MISCONF after a failed BGSAVE): returns the error text or None.
        self.command_gate: Callable[[Client, Command, list[bytes]], str | None] | None = None
        # Set while the append-only file is on: ``begin``/``end`` bracket every call (nested
        # ones too: EXEC, scripts) so it can log what the outermost command wrote.
        self.call_hooks: Any = None
        # Awaited once the listeners exist, before the cron starts (loading the RDB file);
        # False makes the server exit with code 1.
        self.startup_tasks: list[Callable[[], Awaitable[bool]]] = []
        # Called with the SHUTDOWN flags ("save", "nosave", "now", "force") before exiting;
        # False cancels the shutdown (a failed final save without FORCE).
        self.before_shutdown: list[Callable[[frozenset[str]], bool]] = []
        self._cache_config()
        commands.install(self)
        self.fastpath_off_for_renames = False
        rename(config.renames)
        if config.renames:
            # The C fast path knows its commands by their real names: it steps aside for good
            # once a rename touches one of them (either as the old or the new name).
            fast_names = {name.encode() for name in accel.fastpath.commands()} if accel.fastpath else set()
            if fast_names & {name for pair in config.renames for name in pair}:
                disable_fastpath()
                self.fastpath_off_for_renames = True
        self.build_fast_table()

    # -- clients ------------------------------------------------------------------

    def next_client_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def client_connected(self, client: Client) -> bytes | None:
        """Admit a new connection as acceptCommonHandler and then clientAcceptHandler do:
        None once it is registered, else the bytes it gets before it is closed."""
        if len(self.clients) >= self.config["maxclients"]:
            self.stat_rejected += 1
            return b"-ERR max number of clients reached\r\n"
        # Protected mode: while the default user has no password, only loopback and unix
        # socket peers are served (Redis 7 no longer exempts an explicit ``bind``).
        if self.config["protected-mode"] and self.acl.default.nopass and not client.local:
            self.stat_rejected += 1
            return PROTECTED_MODE_DENIED.encode()
        self.clients[client.id] = client
        self.clients_in_flux.add(client)  # (counted into the clients' totals at the next tick)
        self.stat_connections += 1
        return None

    def client_disconnected(self, client: Client) -> None:
        if self.clients.pop(client.id, None) is None:
            return
        # its buffers leave used_memory now, not at its next turn in the clients cron
        self.clients_memory = max(0, self.clients_memory - client.counted_memory)
        client.counted_memory = 0
        forget_client_memory(self, client)  # (and maxmemory-clients' total)
        self.clients_in_flux.discard(client)
        if client.blocked is not None:
            self.unblock(client, None)
        self.unwatch_all(client)
        if client.monitor and client in self.monitors:
            self.monitors.remove(client)
        if self.pubsub is not None:
            self.pubsub.client_gone(client)
        if client.tracking is not None:
            self.tracking.disable(client)

    def output_limit_exceeded(self, client: Client, used: int | None = None) -> bool:
        """Apply ``client-output-buffer-limit`` to the client's class (Redis's
        ``checkClientOutputBufferLimits``): at or over the hard limit, or at or over the
        soft limit for more than its seconds, the client is dropped with its unsent output.
        ``used``: the bytes to measure (the output about to be written included), else the
        client's current output.  Replicas are the replication module's (``replica`` class)."""
        if getattr(client, "repl_kind", None) == "replica":
            return False
        pubsub = bool(client.channels or client.patterns or client.shard_channels)
        hard, soft, seconds = self.output_buffer_limits()["pubsub" if pubsub else "normal"]
        if used is None:
            used = client.output_buffer_size()
        # What Redis measures is its reply list: the first bytes sit in the client's reply buffer
        # (dumpling.replybuffer) and count for no limit, so a small reply never trips one.
        listed = used - client.reply_buffer_size
        over = bool(hard and listed >= hard)
        if soft and listed >= soft:
            now = int(time.time())
            if not client.obuf_soft_limit_since:
                client.obuf_soft_limit_since = now
                self.obuf_soft_clients.add(client)  # cron checks it even if nothing more is written
            elif now - client.obuf_soft_limit_since > seconds:
                over = True
        elif client.obuf_soft_limit_since:
            client.obuf_soft_limit_since = 0
            self.obuf_soft_clients.discard(client)
        if over:
            self.drop_for_output_limit(client)
            return True
        if used >= CHECK_FROM and self.client_eviction:
            # maxmemory-clients: the output about to be written counts for its client already.
            evict_clients(self, client, used - client.output_buffer_size())
            return client.closed
        return False

    def check_soft_output_limits(self) -> None:
        """Cron (Redis's clientsCron): a client that went over its soft limit is dropped once its
        seconds pass even if nothing more is written to it, and forgotten once it is back under."""
        for client in list(self.obuf_soft_clients):
            if client.closed or not client.obuf_soft_limit_since:
                self.obuf_soft_clients.discard(client)
                client.obuf_soft_limit_since = 0
            else:
                self.output_limit_exceeded(client)

    def query_buffer_limit_reached(self, client: Client) -> None:
        """A client past client-query-buffer-limit is closed (the caller closes it)."""
        from dumpling.commands.connection import client_info_line

        self.stat_qbuf_disconnections += 1
        self.log("warning", f"Closing client that reached max query buffer length: {client_info_line(client)[:-1]} "
                 f"(qbuf initial bytes: {repr_bytes(client.query_buffer_head(64))})")

    def drop_for_output_limit(self, client: Client) -> None:
        """Close a client over its output-buffer limit (also while a reply is being built:
        ``dumpling.replybudget``)."""
        from dumpling.commands.connection import client_info_line

        self.log("warning", f"Client {client_info_line(client)[:-1]} scheduled to be closed ASAP for overcoming "
                 "of output buffer limits.")
        self.stat_obuf_disconnections += 1
        self.obuf_soft_clients.discard(client)
        transport = client.transport
        client.close()
        if transport is not None:
            transport.abort()  # Redis frees the client: what it has not read is dropped

    def output_buffer_limits(self) -> dict[str, tuple[int, int, int]]:
        """``client-output-buffer-limit`` as class -> (hard bytes, soft bytes, soft seconds)."""
        text = self.config["client-output-buffer-limit"]
        if self._obuf_limits[0] != text or not self._obuf_limits[1]:
            from dumpling.config import parse_memory

            limits = {"normal": (0, 0, 0), "replica": (268435456, 67108864, 60), "pubsub": (33554432, 8388608, 60)}
            parts = text.lower().split()
            for i in range(0, len(parts) - 3, 4):
                name = "replica" if parts[i] == "slave" else parts[i]
                hard, soft = parse_memory(parts[i + 1]), parse_memory(parts[i + 2])
                if name in limits and hard is not None and soft is not None and parts[i + 3].isdigit():
                    limits[name] = (hard, soft, int(parts[i + 3]))
            self._obuf_limits = (text, limits)
        return self._obuf_limits[1]

    # -- execution ------------------------------------------------------------------

    def lookup_command(self, argv: list[bytes]) -> Command | CommandError:
        """Resolve argv to a (sub)command, or the unknown/arity error Redis gives."""
        name = argv[0].lower()
        cmd = TABLE.get(name)
        if cmd is None:
            return CommandError(unknown_command_message(argv))
        if cmd.subcommands:
            if len(argv) >= 2:
                sub = cmd.subcommands.get(argv[1].lower())
                if sub is None:
                    text = argv[1][:128].decode("utf-8", "replace")
                    typed = argv[0].decode("utf-8", "replace").upper()  # the name used (rename-command)
                    return CommandError(f"unknown subcommand '{text}'. Try {typed} HELP.")
                cmd = sub
            elif cmd.handler is None:  # a bare container (CONFIG) has arity -2; COMMAND alone is a command
                return CommandError(f"wrong number of arguments for '{cmd.name}' command")
        arity = cmd.arity
        if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
            return ArityError(cmd)
        return cmd

    def execute(self, client: Client, argv: list[bytes]) -> None:
        """Run one request from ``client`` and queue its reply."""
        cmd = self.fast_table.get(argv[0])
        if (
            cmd is not None
            and client.reply_mode == 0
            and client.multi is None
            and client.unrestricted
            and self.cluster is None
            and self.key_gate is None
            and self.command_gate is None
            and self.pause_gate is None
            and not self.maxmemory
            and (client.resp3 or not (client.channels or client.patterns or client.shard_channels))
        ):
            # The common case: a plain command on a plain connection.  Same checks as
            # below, minus the ones that cannot apply.
            arity = cmd.arity
            if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
                self.reject(client, f"ERR wrong number of arguments for '{cmd.name}' command", argv, cmd)
                return
            client.skip_this = False
            self.run(client, cmd, argv)
            return
        self.execute_checked(client, argv)

    def execute_checked(self, client: Client, argv: list[bytes]) -> None:
        """``execute`` with every check of Redis's dispatch order."""
        first = argv[0]
        if len(first) in (4, 5) and first.lower() in (b"post", b"host:"):
            self.log("warning", "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: "
                     "commands to Redis. This is likely due to an attacker attempting to use Cross Protocol "
                     "Scripting to compromise your Redis instance. Connection aborted.")
            client._out.clear()
            client.close()
            return
        # CLIENT REPLY SKIP suppresses exactly the next command's reply.
        if client.reply_mode == 2:
            client.skip_this = True
            client.reply_mode = 0
        elif client.reply_mode == 1:
            client.skip_this = True
        else:
            client.skip_this = False
        found = self.lookup_command(argv)
        if isinstance(found, CommandError):
            # (a known command with the wrong arity counts in its rejected_calls, in MULTI too)
            self.reject(client, found.message, argv, found.command if isinstance(found, ArityError) else None)
            return
        cmd = found
        if not client.authenticated and not cmd.no_auth and self.acl.auth_required():
            self.reject(client, NOAUTH[1:], argv, cmd)
            return
        if not client.unrestricted and not (
            client.multi is not None and "no_multi" in cmd.flags and cmd.name_bytes not in MULTI_PASSTHROUGH
        ):
            refusal = acl_check(client, cmd, argv)  # -NOPERM (dumpling.commands.acl)
            if refusal is not None:
                self.reject(client, refusal, argv, cmd)
                return
        queued = client.multi is not None and cmd.name_bytes not in MULTI_PASSTHROUGH  # by command, not name
        if queued and "no_multi" in cmd.flags:
            self.reject(client, "ERR Command not allowed inside a transaction", argv, cmd)
            return
        if self.cluster is not None:
            # Redis redirects before LOADING/MISCONF/NOREPLICAS/READONLY and before a pause holds
            # the command: a write held through a manual failover, or queued in MULTI on a
            # replica, gets MOVED, not READONLY
            err = self.cluster.check(client, cmd, argv)
            if err is not None:
                self.reject(client, err, argv, cmd, wrap_exec=False)  # Redis: EXEC gets the bare redirection
                return
        if self.command_gate is not None:
            refusal = self.command_gate(client, cmd, argv)
            if refusal is not None:
                self.reject(client, refusal, argv, cmd)
                return
        if self.pause_gate is not None and self.pause_gate(client, cmd, argv):
            return  # CLIENT PAUSE: held until the pause ends, then run from the top again
        if queued:
            # Queuing costs memory: under maxmemory every queued command is refused (not only denyoom).
            if self.config["maxmemory"] and not self.evict_if_needed():
                self.reject(client, "OOM command not allowed when used memory > 'maxmemory'.", argv, cmd)
                return
            client.multi.append((cmd, argv))
            client.reply(QUEUED)
            return
        # Redis evicts before every command under maxmemory; only denyoom ones are refused.
        if self.maxmemory and not self.evict_if_needed() and cmd.denyoom:
            self.reject(client, "OOM command not allowed when used memory > 'maxmemory'.", argv, cmd)
            return
        if (
            not client.resp3
            and (client.channels or client.patterns or client.shard_channels)
            and cmd.name_bytes not in SUBSCRIBED_ALLOWED
        ):
            self.reject(
                client,
                f"ERR Can't execute '{cmd.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
                "are allowed in this context",
                argv,
                cmd,
            )
            return
        if self.key_gate is not None and self.key_gate(client, cmd, argv):
            return  # suspended until the keys it writes are unlocked; then run from the top again
        self.run(client, cmd, argv)

    def run(self, client: Client, cmd: Command, argv: list[bytes]) -> None:
        """Call an admitted command and deliver what follows it."""
        self.deliver(client, cmd, argv, self.call(client, cmd, argv))

    def deliver(self, client: Client, cmd: Command, argv: list[bytes], reply: Any) -> None:
        """What follows a call: its reply (or the client blocks), pushes it caused for
        this client, and wake-ups of clients blocked on keys it made ready."""
        if not client.unrestricted and type(reply) is Blocked:
            acl_guard_blocked(client, cmd, argv, reply)  # re-checked when it is served, as Redis reprocesses it
        if client.tracking_caching and client.multi is None and cmd.container != "client":
            client.tracking_caching = False  # CLIENT CACHING applies to the next command (or EXEC) only
        if type(reply) is Blocked:
            self.block(client, reply, cmd)
            if self.pending_pushes:
                self.send_pending_pushes(client)
            return
        client.reply(reply)
        if self.pending_pushes:
            self.send_pending_pushes(client)
        if self.keyspace.ready_keys:
            self.serve_ready_keys()

    def reject(self, client: Client, message: str, argv: list[bytes], cmd: Command | None = None,
               wrap_exec: bool = True) -> None:
        """A command refused before running: error reply, stats, and EXECABORT marking."""
        if cmd is not None:
            cmd.rejected_calls += 1
        if client.multi is None and client.asking:
            client.asking = False  # resetClient: a refused command consumes the one-shot ASKING too
        if client.multi is None:
            client.tracking_caching = False  # and CLIENT CACHING's
        if client.multi is not None:
            client.multi_error = True
        target = cmd if cmd is not None else TABLE.get(argv[0].lower())
        if target is not None and target.name == "exec":  # execCommandAbort: a refused EXEC ends the transaction
            client.multi = None
            client.multi_error = False
            self.unwatch_all(client)
            if wrap_exec:
                message = "EXECABORT Transaction discarded because of: " + message.removeprefix("ERR ")
        self.count_error(message.split(" ", 1)[0])
        client.reply(ErrorReply(message))

    def count_error(self, code: str) -> None:
        self.stat_error_replies += 1
        errorstats = self.errorstats
        if not self.errorstats_enabled:
            return
        if code in errorstats:
            errorstats[code] += 1
        elif len(errorstats) < ERROR_STATS_NUMBER:
            errorstats[code] = 1
        else:
            # incrementErrorCount: a script's error_reply can make any code up, so past 128 codes
            # the table is dropped (freed as Redis frees it, lazily) and stays off until RESETSTAT.
            self.log("warning", "Errorstats stopped adding new errors because the number of errors reached the "
                     "limit, may be misuse of lua error_reply, please check INFO ERRORSTATS, this can be "
                     "re-enabled via CONFIG RESETSTAT.")
            self.log("warning", "Current errors code list: " + ", ".join(sorted(errorstats)))
            self.keyspace.stat_lazyfreed_objects += len(errorstats)
            errorstats.clear()
            errorstats["ERRORSTATS_DISABLED"] = 1
            self.errorstats_enabled = False

    def call(self, client: Client, cmd: Command, argv: list[bytes]) -> Any:
        """Run a handler with the time snapshot; returns its reply (errors as ErrorReply)."""
        ks = self.keyspace
        start = time.time_ns()  # one clock read: the time snapshot and the duration's start
        if not self.in_exec:
            ks.now = start // 1_000_000  # the command time snapshot (ms)
            self.cmd_time_ns = start
        if client.no_touch:
            ks.no_touch = cmd.name != "touch"
        self.current_client = client
        client.last_cmd = cmd.name
        hooks = self.call_hooks
        if hooks is not None:
            hooks.begin(client, cmd, argv)
        try:
            reply = cmd.handler(client, argv)  # type: ignore[misc]
        except Exception as e:  # a bug must cost one reply, never the server
            reply = self.handler_error(cmd, e)
        if hooks is not None:
            hooks.end(client, cmd, argv, reply)
        if ks.tracking is not None and cmd.is_readonly:
            ks.tracking.remember(client, cmd, argv)  # client-side caching: the keys it read
        ks.no_touch = False
        self.account(client, cmd, argv, reply, max(time.time_ns() // 1000 - start // 1000, 0))  # (elapsedUs)
        return reply

    def handler_error(self, cmd: Command, e: Exception) -> ErrorReply:
        """The reply for an exception a handler raised: its CommandError's text, or an
        internal error (logged) for anything else."""
        cmd.failed_calls += 1
        if isinstance(e, CommandError):
            if not e.counted:
                self.count_error(e.code)
            return ErrorReply(e.message)
        self.stat_unexpected_errors += 1
        self.log("warning", f"Unexpected error in '{cmd.name}': {type(e).__name__}: {e}")
        self.count_error("ERR")
        return ErrorReply(f"ERR internal error in '{cmd.name}': {type(e).__name__}")

    def account(self, client: Client, cmd: Command, argv: list[bytes], reply: Any, elapsed_us: int) -> None:
        """A call's statistics, SLOWLOG entry and MONITOR lines."""
        if type(reply) is not Blocked:
            cmd.calls += 1
            cmd.usec += elapsed_us
            if self.latency_tracking:
                record_latency(cmd, elapsed_us)
        else:  # a command that blocks is counted once, when it is answered (unblock)
            reply.usec = elapsed_us
            reply.argv = argv
        self.stat_commands += 1
        if elapsed_us >= self.slowlog_threshold >= 0 and type(reply) is not Blocked:
            self.slow_call(client, cmd, argv, elapsed_us)
        if self.monitors and not cmd.hidden_from_monitor:
            self.feed_monitors(client, redacted_args(cmd, argv))  # nor in MONITOR

    def finish_plain(self, client: Client, cmd: Command, argv: list[bytes], outcome: Any, elapsed_us: int) -> None:
        """The end of a call the C general path (``dumpling._fastpath``) ran, when the
        outcome is more than a simple reply it encodes itself: an exception, another reply
        shape, a blocked client, a slow call, pushes or clients to wake."""
        reply = self.handler_error(cmd, outcome) if isinstance(outcome, Exception) else outcome
        self.account(client, cmd, argv, reply, elapsed_us)
        self.deliver(client, cmd, argv, reply)

    # -- blocking -------------------------------------------------------------------

    def block(self, client: Client, blocked: Blocked, cmd: Command) -> None:
        ks = self.keyspace
        blocked.client = client
        blocked.cmd = cmd
        client.blocked = blocked
        for key in blocked.keys:
            ks.blocked_keys.setdefault((client.db.index, key), []).append(client)
        if blocked.deadline > 0:
            assert self.loop is not None
            blocked.timer = self.loop.call_later(blocked.deadline, self._block_timeout, client, blocked)

    def _block_timeout(self, client: Client, blocked: Blocked) -> None:
        if client.blocked is blocked:
            self.unblock(client, blocked.timeout_reply)

    def unblock(self, client: Client, reply: Any) -> None:
        """Stop waiting; ``reply`` (if not None) is sent, then pending input resumes."""
        blocked = client.blocked
        if blocked is None:
            return
        client.blocked = None
        if reply is not None and blocked.cmd is not None and not blocked.rejected:
            blocked.cmd.calls += 1  # served, timed out or CLIENT UNBLOCKed: Redis's updateStatsOnUnblock
            blocked.cmd.usec += blocked.usec
            if self.latency_tracking:
                record_latency(blocked.cmd, blocked.usec)
            if type(reply) is ErrorReply:
                blocked.cmd.failed_calls += 1
            if blocked.usec >= self.slowlog_log_slower_than >= 0 and blocked.argv and not blocked.cmd.skip_slowlog:
                self.add_slowlog_entry(client, redacted_args(blocked.cmd, blocked.argv), blocked.usec)
        if blocked.timer is not None:
            blocked.timer.cancel()
        ks = self.keyspace
        for key in blocked.keys:
            waiters = ks.blocked_keys.get((client.db.index, key))
            if waiters is not None:
                if client in waiters:
                    waiters.remove(client)
                if not waiters:
                    del ks.blocked_keys[(client.db.index, key)]
        if reply is not None and not client.closed:
            if self.call_hooks is not None:
                self.call_hooks.settle()  # a served blocking pop is in the AOF before its reply
            client.reply(reply)
            client.flush()
            if self.loop is not None:
                self.loop.call_soon(client.process_input)

    def rerun_held(self, waiters: list[tuple[Client, list[bytes], Blocked]]) -> None:
        """Re-run commands that a gate held (CLIENT PAUSE, a MIGRATE key lock) from the top of
        dispatch, in arrival order; each may be held again.  Then the client's pending input."""
        for client, argv, blocked in waiters:
            if client.closed or client.blocked is not blocked:
                continue
            self.unblock(client, None)
            self.execute_checked(client, argv)
            client.flush()
            if client.blocked is None and not client.closed and self.loop is not None:
                self.loop.call_soon(client.process_input)

    def serve_ready_keys(self) -> None:
        """Give data that just arrived to blocked clients, first come first served."""
        ks = self.keyspace
        rounds = 0
        while ks.ready_keys and rounds < 1000:
            rounds += 1
            ready = list(ks.ready_keys)
            ks.ready_keys.clear()
            for db_index, key in ready:
                waiters = ks.blocked_keys.get((db_index, key))
                if not waiters:
                    continue
                for client in list(waiters):
                    blocked = client.blocked
                    if blocked is None or client.db.index != db_index:
                        continue
                    ks.tick()
                    self.current_client = client
                    self.serving_blocked = client  # its command is running now (dumpling.tracking asks)
                    # its run is a call for the propagation stream (Redis re-runs the command)
                    hooks = self.call_hooks if blocked.cmd is not None else None
                    if hooks is not None:
                        hooks.begin(client, blocked.cmd, blocked.argv)
                    reply = None
                    try:
                        reply = blocked.retry()
                    finally:
                        self.serving_blocked = None
                        if hooks is not None:
                            hooks.end(client, blocked.cmd, blocked.argv, reply)
                    if reply is None:
                        continue
                    if type(reply) is ErrorReply:  # (-NOGROUP, -WRONGTYPE on the re-run): in errorstats
                        self.count_error(reply.message.split(" ", 1)[0])
                    self.unblock(client, reply)
                    if self.pending_pushes:
                        self.send_pending_pushes(client)  # what its command caused, after its reply
                    if key not in ks.dbs[db_index].data:
                        break

    def send_pending_pushes(self, client: Client) -> None:
        """Pushes made for ``client`` while its command ran follow the command's reply (7.2+)."""
        pushes, self.pending_pushes = self.pending_pushes, []
        for push in pushes:
            if callable(push):
                push()  # a tracking invalidation: it finds its destination (REDIRECT) now
            else:
                client.push(push)

    def unwatch_all(self, client: Client) -> None:
        ks = self.keyspace
        for item in client.watched:
            watchers = ks.watched.get(item)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del ks.watched[item]
        client.watched.clear()
        client.watch_dirty = False

    # -- eviction -------------------------------------------------------------------------

    def used_memory(self) -> int:
        from dumpling.memory import estimate_used_memory

        return estimate_used_memory(self)

    def evict_if_needed(self) -> bool:
        from dumpling.memory import perform_evictions

        tracking = self.keyspace.tracking
        if tracking is None:
            return perform_evictions(self)
        tracking.evicting = True  # before the command: its invalidations precede the reply
        try:
            return perform_evictions(self)
        finally:
            tracking.evicting = False

    # -- slowlog / monitor ------------------------------------------------------------------

    def slow_call(self, client: Client, cmd: Command, argv: list[bytes], elapsed_us: int) -> None:
        """A call that took ``slowlog_threshold`` or more: a latency event ("command", or
        "fast-command" for a fast one) past latency-monitor-threshold, an entry in the SLOWLOG
        past slowlog-log-slower-than."""
        if self.latency_threshold_ms and elapsed_us // 1000 >= self.latency_threshold_ms:
            self.latency.add("fast-command" if "fast" in cmd.flags else "command", elapsed_us // 1000, int(time.time()))
        if elapsed_us >= self.slowlog_log_slower_than >= 0 and not cmd.skip_slowlog:
            self.add_slowlog_entry(client, redacted_args(cmd, argv), elapsed_us)  # no passwords in SLOWLOG

    def slowlog_push(self, client: Client, argv: list[bytes], elapsed_us: int) -> None:
        """A slow call of one of the C twins (GET, SET, INCR...: nothing to redact)."""
        cmd = self.fast_table.get(argv[0]) or TABLE.get(argv[0].lower())
        if cmd is not None:
            self.slow_call(client, cmd, argv, elapsed_us)

    def add_slowlog_entry(self, client: Client, argv: list[bytes], elapsed_us: int) -> None:
        if not self.config["slowlog-max-len"]:
            return  # (Redis 7.4: no entry is made, so entry IDs do not advance either)
        args: list[bytes] = []
        shown = argv if len(argv) <= 32 else argv[:31]
        for a in shown:
            if len(a) > 128:
                a = a[:128] + b"... (%d more bytes)" % (len(a) - 128)
            args.append(a)
        if len(argv) > 32:
            args.append(b"... (%d more arguments)" % (len(argv) - 31))
        self.slowlog.appendleft(
            [self.slowlog_next_id, int(time.time()), elapsed_us, args, client.addr.encode(), client.name]
        )
        self.slowlog_next_id += 1
        while len(self.slowlog) > self.config["slowlog-max-len"]:
            self.slowlog.pop()

    def feed_monitors(self, client: Client, argv: list[bytes]) -> None:
        now = time.time()
        text = "%d.%06d [%d %s] %s" % (
            int(now),
            int((now % 1) * 1_000_000),
            client.db.index,
            client.addr,
            " ".join(repr_bytes(a) for a in argv),
        )
        status = Status(text.encode("utf-8", "surrogateescape"))
        for m in list(self.monitors):
            if m is not client or True:
                m.push(status)

    # -- logging ---------------------------------------------------------------------------

    def log(self, level: str, message: str) -> None:
        if LOG_LEVELS[level] < LOG_LEVELS.get(self.config["loglevel"], 2):
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now)) + ".%03d" % (int(now * 1000) % 1000)
        self._write_log(f"{os.getpid()}:M {stamp} {LOG_MARKS[level]} {message}\n")

    def _write_log(self, line: str) -> None:
        path = self.config["logfile"]
        if path:
            with open(self.in_dir(path), "a") as f:  # a relative logfile is in dir, as in Redis
                f.write(line)
        else:
            sys.stdout.write(line)
            sys.stdout.flush()

    # -- lifecycle -----------------------------------------------------------------------------

    def _config_changed(self, name: str) -> None:
        self.keyspace.refresh_config()
        self._cache_config()
        if name == "hz":
            self.hz = min(max(self.config["hz"], MIN_HZ), MAX_HZ)  # (updateHZ: INFO shows it at once)
        if name == "maxmemory" and self.maxmemory:
            used = self.used_memory()
            if self.maxmemory < used:
                self.log("warning", f"WARNING: the new maxmemory value set via CONFIG SET ({self.maxmemory}) is smaller "
                         f"than the current memory usage ({used}). This will result in key eviction and/or the "
                         "inability to accept new write commands depending on the maxmemory-policy.")
            if self.loop is not None:
                # updateMaxmemory's startEvictionTimeProc: eviction goes on without waiting for a command
                self.loop.call_soon(self._eviction_time_proc)

    def _eviction_time_proc(self) -> None:
        from dumpling.memory import perform_evictions

        if self.maxmemory:
            perform_evictions(self)
            if self.keyspace.ready_keys:
                self.serve_ready_keys()

    def _cache_config(self) -> None:
        """Settings read on every command, kept as plain attributes."""
        self.slowlog_log_slower_than = self.config["slowlog-log-slower-than"]
        self.latency_threshold_ms = self.config["latency-monitor-threshold"]
        self.latency_tracking = self.config["latency-tracking"]  # the C request loop reads it too
        # What makes a call slow (slow_call): either log wants it.  The C request loop compares
        # with this too, and hands such calls back.
        limits = [self.slowlog_log_slower_than] if self.slowlog_log_slower_than >= 0 else []
        if self.latency_threshold_ms:
            limits.append(self.latency_threshold_ms * 1000)
        self.slowlog_threshold = min(limits, default=-1)
        self.maxmemory = self.config["maxmemory"]
        # Client.flush consults output_limit_exceeded only from this many bytes of output on:
        # the lowest normal/pubsub limit set, or less when maxmemory-clients may evict.
        limits = self.output_buffer_limits()
        self.client_eviction = bool(eviction_limit(self.config))
        lowest = min((n for kind in ("normal", "pubsub") for n in limits[kind][:2] if n), default=0)
        normal = min((n for n in limits["normal"][:2] if n), default=0)
        if self.client_eviction:
            lowest = min(lowest, CHECK_FROM) if lowest else CHECK_FROM
            normal = min(normal, CHECK_FROM) if normal else CHECK_FROM
        self.output_check_from = lowest
        # the same for a client of the normal class, which every client is while pubsub_clients is
        # empty (the C read path's write then asks the transport nothing under Redis's defaults)
        self.output_check_from_normal = normal

    def build_fast_table(self) -> None:
        """Exact-case names (lower and upper) of plain commands, for one dict lookup per request."""
        self.fast_table = {}
        for name, cmd in TABLE.items():
            if not cmd.subcommands and cmd.handler is not None:
                self.fast_table[name] = cmd
                self.fast_table[name.upper()] = cmd
        if accel.fastpath is not None:
            accel.fastpath.configure({name: ORIGINAL[name.encode()] for name in accel.fastpath.commands()})
            # The C general path runs the plain commands through these same handlers.
            plain = {name: cmd for name, cmd in self.fast_table.items() if cmd.plain}
            accel.fastpath.configure_general(plain, Status, NO_REPLY, acl_check, Raw, Double, Map, SetReply)

    async def serve_forever(self) -> int:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.shutdown_event = asyncio.Event()
        pid = os.getpid()
        for line in (
            "oO0OoO0OoO0Oo dumpling is starting oO0OoO0OoO0Oo",
            f"dumpling version={REDIS_VERSION}, bits=64, commit=00000000, modified=0, pid={pid}, just started",
        ):
            self.log("notice", line)
        if not self.had_config:
            self.log(
                "warning",
                "Warning: no config file specified, using the default config. In order to specify a config file "
                f"use {self.argv0} /path/to/redis.conf",
            )
        else:
            self.log("notice", "Configuration loaded")
        for name in self.config.inert_directives():
            self.log("notice", f"Config directive '{name}' is accepted for compatibility and has no effect in dumpling")
        if self.fastpath_off_for_renames:
            self.log("notice", "rename-command touches a command of the C fast path: the fast path is off")
        loaded = accel.loaded()
        self.log("notice", "C accelerators: " + ", ".join(loaded) if loaded else
                 "C accelerators not loaded: running the pure-Python paths")
        port = self.config["port"]
        try:
            await asyncio.gather(*self.listen_tcp())
        except ListenError as e:
            self.log("warning", f"Warning: Could not create server TCP listening socket {e.host}:{port}: {e.strerror}")
            self.log("warning", f"Failed listening on port {port} (tcp), aborting.")
            return 1
        if not await self._listen_unix(loop):
            return 1
        if not self.servers:
            self.log("warning", "Configured to not listen anywhere, exiting.")
            return 1
        self._create_pid_file()
        self.apply_oom_score()
        self._startup_banner(port)
        self.log("notice", "Server initialized")
        install_signal_handlers(loop, self)
        for task in self.startup_tasks:
            if not await task():
                for srv in self.servers:
                    srv.close()
                self._remove_unix_socket()
                return 1
        collector.settle()  # what start-up made lives as long as the server: out of full collections
        self._busy_base_ns = time.thread_time_ns()  # the loop's time counts from here (not the imports)
        cron = loop.create_task(self._cron())
        self.cron_started = True
        if port:
            self.log("notice", "Ready to accept connections tcp")
        if self.config["unixsocket"]:
            self.log("notice", "Ready to accept connections unix")
        await self.shutdown_event.wait()
        cron.cancel()
        for srv in self.servers:
            srv.close()
        for client in list(self.clients.values()):
            client.flush()
            client.close()
        if self.config["pidfile"]:
            self.log("notice", "Removing the pid file.")
            try:
                os.unlink(self.in_dir(self.config["pidfile"]))
            except OSError as e:
                self.log("warning", f"Error removing the pid file: {e.strerror}")
        self._remove_unix_socket()
        self.log("warning", "dumpling is now ready to exit, bye bye...")
        return self.exit_code

    def listen_tcp(self) -> list[asyncio.Task[Any]]:
        """Listen on ``port`` at the ``bind`` addresses (at startup, and when CONFIG SET changes
        them: Redis's changeListener).  Listeners already open for an address and port stay; the
        others close once every new one is open (or first, when a new address overlaps an old one:
        0.0.0.0 and 127.0.0.1 on one port).  Raises ListenError, the listeners as they were, when
        one cannot be opened.  Port 0 or bind "": no TCP listener.  Returns the loop's tasks that
        take the new sockets over."""
        port = self.config["port"]
        wanted = [(addr, port) for addr in self.config["bind"].split()] if port else []
        stale = [where for where in self.tcp_listeners if where not in wanted]
        new = [where for where in wanted if where not in self.tcp_listeners]
        try:
            opened = self._open_listeners(new)
        except ListenError as e:
            if e.errno != errno.EADDRINUSE or not stale:
                raise
            self._close_listeners(stale)
            try:
                opened = self._open_listeners(new)
            except ListenError:
                self._serve_listeners(self._open_listeners(stale))  # back as they were
                raise
            return self._serve_listeners(opened)
        self._close_listeners(stale)
        return self._serve_listeners(opened)

    def _open_listeners(self, places: list[tuple[str, int]]) -> list[tuple[tuple[str, int], socket.socket | None]]:
        opened: list[tuple[tuple[str, int], socket.socket | None]] = []
        try:
            for where in places:
                opened.append((where, open_tcp(*where, self.config["tcp-backlog"])))
        except ListenError:
            for _, sock in opened:
                if sock is not None:
                    sock.close()
            raise
        return opened

    def _close_listeners(self, places: list[tuple[str, int]]) -> None:
        for where in places:
            srv = self.tcp_listeners.pop(where)
            if srv is not None:
                srv.close()
                self.servers.remove(srv)

    def _serve_listeners(self, opened: list[tuple[tuple[str, int], socket.socket | None]]) -> list[asyncio.Task[Any]]:
        assert self.loop is not None
        tasks = []
        for where, sock in opened:
            self.tcp_listeners[where] = None  # (an optional address that is not there: None)
            if sock is not None:
                # The socket listens already; the loop takes its connections from the next pass.
                task = self.loop.create_task(
                    self.loop.create_server(lambda: Client(self), sock=sock, backlog=self.config["tcp-backlog"]))
                task.add_done_callback(lambda t, where=where: self._listening(where, t))
                tasks.append(task)
        return tasks

    def _listening(self, where: tuple[str, int], task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        srv = task.result()
        if where in self.tcp_listeners:
            self.tcp_listeners[where] = srv
            self.servers.append(srv)
        else:  # moved away again before the loop took it
            srv.close()

    def apply_oom_score(self, process_class: str = "") -> bool:
        """oom-score-adj for this process as a master or a replica (``process_class``: another, such
        as "bgchild"); False if the kernel refused it."""
        cfg = self.config
        kind = process_class or ("replica" if cfg["replicaof"] else "master")
        return self.oom_score.apply(cfg["oom-score-adj"], cfg["oom-score-adj-values"], kind,
                                    lambda text: self.log("warning", text))

    def in_dir(self, path: str) -> str:
        """A path as Redis opens it: relative to ``dir`` (Redis chdir()s there while it reads
        its configuration)."""
        return os.path.join(self.config.render("dir"), path)

    def _startup_banner(self, port: int) -> None:
        """Redis's startup banner: the mode and port in one log line, or, with
        ``always-show-logo yes`` (or a terminal on stdout), a logo block carrying the version,
        mode, port and ``PID:`` lines that Redis's test framework and log watchers read."""
        mode = "cluster" if self.cluster else "standalone"
        show = self.config["always-show-logo"] or (not self.config["logfile"] and sys.stdout.isatty())
        if not show:
            self.log("notice", f"Running mode={mode}, port={port}.")
            return
        if LOG_LEVELS["notice"] < LOG_LEVELS.get(self.config["loglevel"], 2):
            return
        self._write_log(
            "\n"
            f"      .-\"\"\"-.        dumpling {REDIS_VERSION} (Redis-compatible, Python)\n"
            f"     /  o o  \\       Running in {mode} mode\n"
            f"    |  \\___/  |      Port: {port}\n"
            f"     \\_______/       PID: {os.getpid()}\n"
            "\n"
        )

    def _create_pid_file(self) -> None:
        """createPidFile: written when daemonized (Redis's default path when none is set) or
        when ``pidfile`` is set; best effort, as in Redis."""
        if not self.config["daemonize"] and not self.config["pidfile"]:
            return
        if not self.config["pidfile"]:
            self.config.values["pidfile"] = DEFAULT_PID_FILE
        try:
            with open(self.in_dir(self.config["pidfile"]), "w") as f:
                f.write(f"{os.getpid()}\n")
        except OSError as e:
            self.log("warning", f"Failed to write PID file: {e.strerror}")

    async def _listen_unix(self, loop: asyncio.AbstractEventLoop) -> bool:
        """The ``unixsocket`` listener (a stale file at its path is replaced, as Redis unlinks
        it first), with ``unixsocketperm`` applied when set; False if it cannot be opened."""
        if not self.config["unixsocket"]:
            return True
        path = self.in_dir(self.config["unixsocket"])
        try:
            if os.path.lexists(path):
                os.unlink(path)
            srv = await loop.create_unix_server(lambda: Client(self), path, backlog=self.config["tcp-backlog"])
        except OSError as e:
            self.log("warning", f"Failed opening Unix socket: {e.strerror}")
            return False
        perm = self.config["unixsocketperm"]
        if perm:
            os.chmod(path, perm)
        self.servers.append(srv)
        self.unix_socket_path = path
        return True

    def _remove_unix_socket(self) -> None:
        path = self.unix_socket_path
        if path:
            self.log("notice", "Removing the unix socket file.")
            try:
                os.unlink(path)
            except OSError as e:
                self.log("warning", f"Error removing the unix socket file: {e.strerror}")
            self.unix_socket_path = ""

    def request_shutdown(self, reason: str = "User requested shutdown...",
                         flags: frozenset[str] = frozenset()) -> bool | None:
        """prepareForShutdown.  Unless NOW (or ``shutdown-timeout 0``), a master whose
        replicas have not acknowledged its whole stream first waits for them, up to
        ``shutdown-timeout`` seconds with writes paused: None, and the cron finishes the
        shutdown (``shutdown_cron``).  Else ``finish_shutdown``: True if exiting, False
        (the server keeps running) if it failed.  Already waiting: False."""
        if self.shutdown_deadline_ms:
            return False
        self.log("warning", reason)
        replication = getattr(self, "replication", None)
        timeout = self.config["shutdown-timeout"]
        if "now" not in flags and timeout and replication is not None and not replication.ready_to_shutdown():
            self.shutdown_flags = flags
            self.shutdown_deadline_ms = time.time_ns() // 1_000_000 + timeout * 1000
            replication.request_acks()
            self.client_pause.hold("shutdown")  # type: ignore[attr-defined]
            self.log("notice", "Waiting for replicas before shutting down.")
            return None
        return self.finish_shutdown(flags)

    def finish_shutdown(self, flags: frozenset[str]) -> bool:
        """finishShutdown: report lagging replicas, run the ``before_shutdown`` hooks (the
        final save), then stop serving; False (the shutdown is cancelled) if a hook refused."""
        replication = getattr(self, "replication", None)
        if replication is not None:
            replication.report_lagging()
        for hook in self.before_shutdown:
            if not hook(flags):
                self.log("warning", "Errors trying to shut down the server. Check the logs for more information.")
                self.cancel_shutdown()
                return False
        if self.shutdown_event is not None:
            self.shutdown_event.set()
        return True

    def cancel_shutdown(self) -> None:
        """cancelShutdown: the clients waiting in SHUTDOWN get an error, writes resume."""
        self.shutdown_deadline_ms = 0
        self.shutdown_flags = frozenset()
        waiters, self.shutdown_waiters = self.shutdown_waiters, []
        for client in waiters:
            if client.blocked is not None and not client.closed:
                self.count_error("ERR")
                self.unblock(client, ErrorReply("ERR Errors trying to SHUTDOWN. Check logs."))
        self.client_pause.release("shutdown")  # type: ignore[attr-defined]

    def abort_shutdown(self) -> bool:
        """SHUTDOWN ABORT: False if no shutdown is waiting or requested by a signal."""
        if self.shutdown_deadline_ms:
            self.cancel_shutdown()
        elif self.shutdown_asap is not None:
            self.shutdown_asap = None
        else:
            return False
        self.log("notice", "Shutdown manually aborted.")
        return True

    def shutdown_cron(self) -> None:
        """A signal's shutdown starts here; a waiting shutdown finishes once every replica
        caught up or the time is up."""
        if self.shutdown_event is not None and self.shutdown_event.is_set():
            return
        if self.shutdown_asap is not None and not self.shutdown_deadline_ms:
            flags, self.shutdown_asap = self.shutdown_asap, None
            self.request_shutdown("User requested shutdown...", flags)
            return
        if not self.shutdown_deadline_ms:
            return
        replication = getattr(self, "replication", None)
        if time.time_ns() // 1_000_000 >= self.shutdown_deadline_ms or replication is None or \
                replication.ready_to_shutdown():
            self.finish_shutdown(self.shutdown_flags)

    def signal_shutdown(self, name: str) -> None:
        """SIGTERM/SIGINT: a SHUTDOWN with the options of ``shutdown-on-sigterm``/``-sigint``."""
        if name == "SIGINT" and self.shutdown_deadline_ms:
            self.log("warning", "You insist... exiting now.")  # a second Ctrl+C: no more waiting
            os._exit(1)
        if name == "SIGINT" and self.shutdown_asap is not None:
            self.log("warning", "You insist... exiting now.")
            os._exit(1)
        self.log("warning", f"Received {name} scheduling shutdown...")
        setting = "shutdown-on-sigterm" if name == "SIGTERM" else "shutdown-on-sigint"
        flags = frozenset(self.config[setting].split()) - {"default"}
        if self.cron_started:
            self.shutdown_asap = flags  # the cron starts it (not while DEBUG PAUSE-CRON holds it)
        else:
            self.request_shutdown(flags=flags)  # (loading at startup: stop now)

    async def _cron(self) -> None:
        """serverCron: active expiry, stats sampling, idle timeouts, migrate socket cleanup."""
        ks = self.keyspace
        while True:
            hz = self.tick_rate()
            if hz != self.hz:
                self.hz = hz  # (written only when it changes: the C read path's memo of the server holds)
            await asyncio.sleep(1.0 / hz)
            if self.cron_paused:
                continue  # DEBUG PAUSE-CRON
            tick_started = time.perf_counter_ns()
            try:
                effort = self.config["active-expire-effort"] - 1
                started = time.monotonic()
                ks.active_expire_cycle(
                    time_limit_s=(25 + 2 * effort) / 100 / hz,
                    keys_per_loop=20 + 5 * effort,
                    stale_perc=10 - effort,
                )
                if self.latency_threshold_ms:
                    spent_ms = int((time.monotonic() - started) * 1000)
                    if spent_ms >= self.latency_threshold_ms:
                        self.latency.add("expire-cycle", spent_ms, int(time.time()))
                self.ops_samples.append((time.monotonic(), self.stat_commands))
                for hook in self.cron_hooks:  # (the clients cron's turns apply ``timeout``)
                    hook()
                self.shutdown_cron()
                stats = self.loop_stats
                stats.sample(time.monotonic() * 1000, self.loop_cycles(), self.busy_us(), self.stat_net_input,
                             self.stat_net_output)
            except Exception as e:  # cron must keep running whatever a hook does
                self.log("warning", f"cron error: {type(e).__name__}: {e}")
            spent_us = (time.perf_counter_ns() - tick_started) // 1000
            self.loop_stats.ticks += 1
            self.loop_stats.cron_us += spent_us
            self.loop_stats.measured(spent_us, 0)

    def tick_rate(self) -> int:
        """server.hz: the configured ``hz`` (within 1..500) and, with ``dynamic-hz``, doubled while
        there are more than 200 clients a tick to visit (MAX_CLIENTS_PER_CLOCK_TICK), up to 500."""
        hz = min(max(self.config["hz"], MIN_HZ), MAX_HZ)
        if self.config["dynamic-hz"]:
            clients = len(self.clients)
            while clients // hz > MAX_CLIENTS_PER_TICK and hz < MAX_HZ:
                hz = min(hz * 2, MAX_HZ)
        return hz

    def busy_us(self) -> int:
        """eventloop_duration_sum: the CPU time of the event loop's thread since the start (or
        CONFIG RESETSTAT), in µs."""
        return (time.thread_time_ns() - self._busy_base_ns) // 1000

    def loop_cycles(self) -> int:
        """eventloop_cycles: the passes of the loop that did work (reads, cron ticks)."""
        return self.stat_reads + self.loop_stats.ticks

    def reset_loop_stats(self) -> None:
        self.stat_reads = self.stat_writes = 0
        self.loop_stats.reset()
        self._busy_base_ns = time.thread_time_ns()

    def instantaneous_ops(self) -> int:
        if len(self.ops_samples) < 2:
            return 0
        (t0, c0), (t1, c1) = self.ops_samples[0], self.ops_samples[-1]
        return int((c1 - c0) / (t1 - t0)) if t1 > t0 else 0


class ArityError(CommandError):
    """A known (sub)command called with the wrong number of arguments."""

    def __init__(self, command: Command) -> None:
        super().__init__(f"wrong number of arguments for '{command.name}' command")
        self.command = command


def unknown_command_message(argv: list[bytes]) -> str:
    name = argv[0][:128].decode("utf-8", "replace")
    args = ""
    for a in argv[1:]:
        if len(args) >= 128:
            break
        room = 128 - len(args)
        args += "'" + a[:room].decode("utf-8", "replace") + "' "
    return f"unknown command '{name}', with args beginning with: {args}"
