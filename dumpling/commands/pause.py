"""CLIENT PAUSE / CLIENT UNPAUSE: commands wait (they are not refused) while clients are paused.

``ClientPause`` (``server.client_pause``) keeps Redis's pause state for the
PAUSE_BY_CLIENT_COMMAND purpose: the end time (a new pause never shortens it) and the
mode (ALL, or WRITE; a WRITE pause never weakens an ALL pause in force).  While a pause is
in force ``server.pause_gate`` is set: dispatch asks it about every command just before
running or queueing it (Redis's place in processCommand), and a command it holds back is
suspended as a blocked client (INFO ``blocked_clients`` counts it, as Redis counts
postponed clients) and re-run from the top of dispatch when the pause ends or weakens.

Other purposes hold a WRITE pause with no end time until they release it (``hold`` /
``release``: Redis's PAUSE_DURING_SHUTDOWN and PAUSE_DURING_FAILOVER); the strictest pause
in force applies.

WRITE pauses commands that may change the dataset or replicate: ``write`` and
``may_replicate`` commands, EXEC of a transaction holding one, and EVAL / EVALSHA / FCALL
unless the script or function is flagged ``no-writes``.  Both modes pause expiry
(``keyspace.expire_paused``): keys past their TTL read as missing but stay until the pause
ends.

Must not: refuse a command (Redis never does), or hold back a client's command in the
middle of a transaction or a script.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dumpling.commands.common import parse_timeout_ms
from dumpling.commands.registry import command
from dumpling.dispatch import Blocked
from dumpling.errors import CommandError
from dumpling.protocol import OK

if TYPE_CHECKING:
    from dumpling.commands.registry import Command
    from dumpling.dispatch import Server

_CLIENT = {"group": "connection"}
_SCRIPT_COMMANDS = frozenset(("eval", "evalsha", "fcall"))


def _never() -> None:
    return None


class ClientPause:
    """The pause in force (if any) and the clients waiting for it to end."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.end_ms = 0
        self.all = False  # False: WRITE
        self.waiters: list[tuple[Any, list[bytes], Blocked]] = []
        self._timer: Any = None
        self.held_by: set[str] = set()  # purposes holding a WRITE pause until released ("shutdown", "failover")
        # called when paused commands may run again (a replica's master link holding its stream)
        self.on_resume: list[Any] = []

    # -- state ------------------------------------------------------------------------

    def pause(self, end_ms: int, pause_all: bool) -> None:
        """pauseClientsByClient: the longer end time and the stricter mode win."""
        if not pause_all and self.all and self.active():
            pause_all = True
        weaker = self.active() and self.all and not pause_all
        self.all = pause_all
        self.end_ms = max(self.end_ms, end_ms)
        self._apply(weaker)

    def unpause(self) -> None:
        self.end_ms = 0
        self.all = False
        self._apply(True)

    def hold(self, purpose: str) -> None:
        """pauseActions(purpose, forever, WRITE): writes wait until ``release(purpose)``."""
        self.held_by.add(purpose)
        self._apply(False)

    def release(self, purpose: str) -> None:
        if purpose in self.held_by:
            self.held_by.discard(purpose)
            self._apply(True)

    def _client_paused(self) -> bool:
        return self.end_ms > time.time_ns() // 1_000_000

    def active(self) -> bool:
        return bool(self.held_by) or self._client_paused()

    def _apply(self, resume: bool) -> None:
        server = self.server
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.active():
            if not self._client_paused() and self.end_ms:  # CLIENT PAUSE over; a held WRITE pause remains
                resume = resume or self.all
                self.end_ms = 0
                self.all = False
            server.pause_gate = self.gate
            server.keyspace.expire_paused = True
            if server.loop is not None and self.end_ms:
                delay = (self.end_ms - time.time_ns() // 1_000_000) / 1000
                self._timer = server.loop.call_later(max(delay, 0.0) + 0.001, self._check_end)
        else:
            self.end_ms = 0
            self.all = False
            server.pause_gate = None
            server.keyspace.expire_paused = False
            resume = True
        if resume:
            self.resume_waiters()

    def _check_end(self) -> None:
        self._timer = None
        self._apply(False)

    # -- the gate -------------------------------------------------------------------------

    def gate(self, client: Any, cmd: Command, argv: list[bytes]) -> bool:
        """Suspend ``client`` if the pause covers ``cmd``; True if it did."""
        if not self.active():
            self._apply(True)
            return False
        if not self.all and not self._may_write(client, cmd, argv):
            return False
        if client.skip_this and client.reply_mode == 0:
            client.reply_mode = 2  # CLIENT REPLY SKIP applies to the re-run
        blocked = Blocked([], 0, _never, None)
        self.server.block(client, blocked, cmd)
        self.waiters.append((client, argv, blocked))
        return True

    def _may_write(self, client: Any, cmd: Command, argv: list[bytes]) -> bool:
        """Redis's ``is_may_replicate_command`` with the script's own flags for EVAL/FCALL."""
        if cmd.name == "exec":
            queued = client.multi or []
            return any(self._may_write(client, qcmd, qargv) for qcmd, qargv in queued)
        if cmd.name in _SCRIPT_COMMANDS:
            return not self._script_no_writes(cmd.name, argv)
        return cmd.is_write or cmd.may_replicate

    def _script_no_writes(self, name: str, argv: list[bytes]) -> bool:
        from dumpling.scripting.manager import NO_WRITES, parse_shebang

        scripting = self.server.scripting
        if len(argv) < 2:
            return False
        if name == "fcall":
            function = scripting.libraries.find(argv[1])
            return function is not None and bool(function.flags & NO_WRITES)
        if name == "evalsha":
            script = scripting.scripts.get(argv[1].lower().decode("ascii", "replace"))
            return script is not None and bool(script.flags & NO_WRITES)
        try:
            flags, _ = parse_shebang(argv[1])
        except CommandError:
            return False
        return bool(flags & NO_WRITES) and argv[1].startswith(b"#!")

    def covers(self, client: Any, cmd: Command, argv: list[bytes]) -> bool:
        """Whether the pause in force holds ``cmd`` back (without suspending anyone)."""
        return self.active() and (self.all or self._may_write(client, cmd, argv))

    def holds(self, client: Any) -> bool:
        """True if ``client`` is waiting here (CLIENT UNBLOCK leaves such clients alone)."""
        return any(waiter is client and client.blocked is blocked for waiter, _, blocked in self.waiters)

    def resume_waiters(self) -> None:
        """Re-run the held commands from the top of dispatch (they may be held again)."""
        if self.on_resume:
            callbacks, self.on_resume = self.on_resume, []
            for callback in callbacks:
                callback()
        if not self.waiters:
            return
        waiters, self.waiters = self.waiters, []
        self.server.rerun_held(waiters)


def setup(server: Server) -> None:
    server.client_pause = ClientPause(server)


@command("client|pause", -3, "admin noscript loading stale", **_CLIENT, since="3.0.0",
         summary="Suspends commands processing.", complexity="O(1)",
         history=(("6.2.0", "`CLIENT PAUSE WRITE` mode added along with the `mode` option."),),
         args="timeout:integer [mode=(WRITE | ALL)@6.2.0]")
def client_pause(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 4:
        raise CommandError(f"unknown subcommand or wrong number of arguments for '{argv[1].decode('utf-8', 'replace')}'."
                           " Try CLIENT HELP.")
    pause_all = True
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode == b"write":
            pause_all = False
        elif mode != b"all":
            raise CommandError("CLIENT PAUSE mode must be WRITE or ALL")
    now = time.time_ns() // 1_000_000
    timeout = parse_timeout_ms(argv[2], now)
    c.server.client_pause.pause(now + timeout, pause_all)
    return OK


@command("client|unpause", 2, "admin noscript loading stale", **_CLIENT, since="6.2.0",
         summary="Resumes processing commands from paused clients.",
         complexity="O(N) Where N is the number of paused clients")
def client_unpause(c: Any, argv: list[bytes]) -> Any:
    c.server.client_pause.unpause()
    return OK
