"""Running scripts: the EVAL script cache, Functions libraries, and what happens while
a script runs (``redis.call`` with Redis's checks, the busy-script state, SCRIPT KILL).

One ``Scripting`` object per server (``server.scripting``).  It owns two Lua states,
as Redis does: one for EVAL scripts, one for function libraries.  A run is described
by ``Run`` (Redis's ``scriptRunCtx``); commands a script calls execute through
``Server.call`` on the engine's own client, so statistics, keyspace events, WATCH,
MONITOR and blocked-client wake-ups behave as for any other command.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from dumpling import accel
from dumpling.commands.acl import refusal as acl_refusal
from dumpling.commands.registry import TABLE, Command
from dumpling.dispatch import Blocked, record_latency
from dumpling.errors import CommandError
from dumpling.keyspace import Database
from dumpling.persistence.propagation import TO_ALL
from dumpling.persistence.snapshots import exited_children
from dumpling.protocol import NO_REPLY, ErrorReply, encode
from dumpling.replication.manager import MASTERDOWN
from dumpling.scripting.accounting import eval_scripts_memory, functions_memory
from dumpling.scripting.debugger import Channel, Session
from dumpling.scripting.engine import (
    GC_CYCLE_PERIOD,
    STASHED,
    LuaState,
    ScriptCallError,
    ScriptFailure,
    engine_bridge_module,
    error_from_table,
    lua_number_arg,
    lua_number_to_int,
    lua_tonumber,
    lua_type_name,
    sha1hex,
    use_twins,
)
from dumpling.scripting.lib_common import MAX_DIRECT_ARGS

# The bridge's redis.call runs _fastpath's own twins of GET, SET, INCR, ... in a Run.twins run.
use_twins(getattr(accel.fastpath, "twin_call", None), record_latency, Database)

if TYPE_CHECKING:
    from dumpling.dispatch import Server
    from dumpling.server import Client

# Script flags (``#!lua flags=...`` and redis.register_function's flags)
NO_WRITES = 1
ALLOW_OOM = 2
ALLOW_STALE = 4
NO_CLUSTER = 8
ALLOW_CROSS_SLOT = 16
EVAL_COMPAT_MODE = 32  # an EVAL script without a shebang
FLAG_NAMES = {
    "no-writes": NO_WRITES,
    "allow-oom": ALLOW_OOM,
    "allow-stale": ALLOW_STALE,
    "no-cluster": NO_CLUSTER,
    "allow-cross-slot-keys": ALLOW_CROSS_SLOT,
}
LAZYFREE_THRESHOLD = 64  # an ASYNC flush of more than this many scripts or functions is counted as lazy freed
EVAL_LRU_LENGTH = 500  # EVAL-created scripts beyond this are evicted oldest first
HOOK_PERIOD_S = 0.1  # while busy, how often other clients are served (Redis: every 100k instructions)

BUSY_EVAL = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
_ERR_ARGS = b"ERR Lua redis lib command arguments must be strings or integers"


class Script:
    """An EVAL script in the cache."""

    __slots__ = ("sha", "body", "flags", "func", "from_eval", "handle")

    def __init__(self, sha: str, body: bytes, flags: int, func: Any, from_eval: bool) -> None:
        self.sha = sha
        self.body = body
        self.flags = flags
        self.func = func
        self.from_eval = from_eval  # evictable: created by EVAL, not SCRIPT LOAD
        self.handle: int | None = None  # how the C bridge finds func (LuaState.handle), from its first run


class Run:
    """The state of the script being run (Redis's ``scriptRunCtx``).  The fields every run
    sets are slots (the C bridge's ScriptCommand stores them directly); the rarely changed
    ones are class attributes, which a run overrides in its ``__dict__`` only when they
    differ (a run is made per call)."""

    # Set on each run by Scripting.invoke (made with object.__new__ and these stores, not an
    # __init__: a call through type() costs a run ~700 instructions more) or ScriptCommand.
    __slots__ = ("caller", "caller_argv", "client", "name", "eval_mode", "start", "write_dirty", "error_counted",
                 "timed_out", "repl_changed", "__dict__")
    caller: Client
    caller_argv: list[bytes]
    client: Client
    name: str
    eval_mode: bool
    start: float  # time.monotonic() at the run's start
    # (False at the start)
    write_dirty: bool  # the script wrote
    error_counted: bool  # its error reply was counted by redis.call
    timed_out: bool  # it went busy (BusyResponder)
    repl_changed: bool  # redis.set_repl was called

    read_only = False
    allow_oom = False
    allow_cross_slot = False
    kill_logged = False
    killed = False
    slot = -1
    next_check = 0.0
    oom_at_start = False
    # Nothing about the caller or the server can refuse a command this run calls, other
    # than the command's own arity, noscript flag and a first write (see redis_call_raise).
    unchecked = False
    writes_admitted = False  # ...nor a write (see redis_call_raise)
    # ...and no gate was up: the bridge's redis.call may run _fastpath's C twin of a command,
    # where Server.call would run only its handler and statistics (_luabridge.c: twins_ready).
    twins = False
    stale = False  # started on a replica serving no stale data, its link down


class PlainRun(Run):
    """The run of an unrestricted caller's script or function without flags (or an EVAL
    script without a shebang) on an ungated, unclustered server under no memory limit:
    nothing can refuse a command it calls but the command's arity and noscript flag
    (what Scripting._checked_run would find for it, set once here)."""

    __slots__ = ()
    unchecked = True
    writes_admitted = True


class PlainTwinsRun(PlainRun):
    """...with the C bridge: its redis.call may take the twins' route."""

    __slots__ = ()
    twins = True


class PlainEvalRun(PlainRun):
    """...of an EVAL script without a shebang (its keys may hash to any slot)."""

    __slots__ = ()
    allow_cross_slot = True


class PlainEvalTwinsRun(PlainTwinsRun):
    __slots__ = ()
    allow_cross_slot = True


# invoke's plain runs by (C bridge, EVAL script without a shebang)
_PLAIN_RUNS = {(False, False): PlainRun, (False, True): PlainEvalRun,
               (True, False): PlainTwinsRun, (True, True): PlainEvalTwinsRun}
_new_run = object.__new__
_monotonic = time.monotonic


def script_command(kind: str, reference: Callable[[Any, list[bytes]], Any]) -> Callable[[Any, list[bytes]], Any]:
    """The handler of EVALSHA, FCALL or EVAL (``kind``): with the C bridge built, its
    ``ScriptCommand``, which runs the plain run (``invoke``'s, for a script or function run
    before) itself and hands every other request to ``reference``, the Python handler; without
    it, the Python handler."""
    bridge = engine_bridge_module()
    if bridge is None:
        return reference
    from dumpling.scripting.functions import Function

    owner = Function if kind == "fcall" else Script
    return bridge.ScriptCommand({"evalsha": 0, "fcall": 1, "eval": 2}[kind], reference, PlainTwinsRun,
                                PlainEvalTwinsRun, owner, ErrorReply, EVAL_COMPAT_MODE)


def parse_shebang(body: bytes) -> tuple[int, int]:
    """``evalExtractShebangFlags``: (flags, length of the shebang line) or CommandError."""
    if not body.startswith(b"#!"):
        return EVAL_COMPAT_MODE, 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("Invalid script shebang")
    from dumpling.protocol import split_args

    parts = split_args(body[:end])
    if not parts:
        raise CommandError("Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise CommandError(f"Unexpected engine in script shebang: {_s(parts[0])}")
    flags = 0
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise CommandError(f"Unknown lua shebang option: {_s(part)}")
        for name in part[6:].split(b","):
            if not name:
                continue  # sdssplitlen of "" yields nothing; "a,,b" keeps an empty part in Redis
            flag = FLAG_NAMES.get(_s(name))
            if flag is None:
                raise CommandError(f"Unexpected flag in script shebang: {_s(name)}")
            flags |= flag
    return flags, end


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class Scripting:
    """Scripts, libraries, and the run in progress."""

    def __init__(self, server: Server) -> None:
        from dumpling.server import Client

        self.server = server
        # The engines' own clients (Redis creates them first: user clients start at id 3).
        self.eval_client = Client(server)
        self.function_client = Client(server)
        for client in (self.eval_client, self.function_client):
            client.addr = "lua"
            client.laddr = "lua"
            client.authenticated = True
            client.from_script = True
        self.scripts: OrderedDict[str, Script] = OrderedDict()  # by SHA, EVAL-created ones in LRU order
        self.scripts_by_sha: dict[bytes, Script] = {}  # the same, for EVALSHA's argument
        self.scripts_by_body: dict[bytes, Script] = {}  # and by body, for EVAL's
        self.evicted_scripts = 0
        self.eval_state = LuaState(self)
        # The functions' Lua state is made by the first library (FUNCTION LOAD/RESTORE, an RDB
        # file) and dropped by FUNCTION FLUSH: a server without functions keeps no VM for them
        # (INFO's used_memory_vm_functions is then 0; Redis's idle VM is ~32 KB).
        self._function_state: LuaState | None = None
        from dumpling.scripting.functions import Libraries

        self.libraries = Libraries(self)
        self.run: Run | None = None
        self.loading: Any = None  # the library being loaded (FUNCTION LOAD)
        self.load_deadline = 0.0
        self._lrand_state = 0x1234ABCD330E
        self._busy: Any = None
        self.disable_deny_script = False  # DEBUG SET-DISABLE-DENY-SCRIPTS
        self.ldb: Session | None = None  # the Lua debugger's session, while one runs
        self.ldb_children: set[int] = set()  # forked (SCRIPT DEBUG YES) sessions not reaped yet
        self.last_error_counted = False  # the last run's error reply was counted by redis.call

    # -- EVAL scripts ---------------------------------------------------------------------

    def create_script(self, body: bytes, from_eval: bool) -> Script:
        """``luaCreateFunction``: compile and cache ``body`` (or find it cached)."""
        script = self.scripts_by_body.get(body)  # EVAL of a cached body: no SHA1 to compute
        if script is not None:
            return script
        sha = sha1hex(body)
        script = self.scripts.get(sha)
        if script is not None:
            return script
        flags, shebang_len = parse_shebang(body)
        try:
            # The shebang line is skipped; its line feed stays, so line numbers hold.
            func = self.eval_state.compile(body[shebang_len:], b"@user_script")
        except ScriptFailure as e:
            raise CommandError(f"Error compiling script (new function): {e.message}") from None
        if from_eval:
            while sum(1 for s in self.scripts.values() if s.from_eval) >= EVAL_LRU_LENGTH:
                oldest = next(s for s in self.scripts.values() if s.from_eval)
                del self.scripts[oldest.sha]
                del self.scripts_by_sha[oldest.sha.encode()]
                del self.scripts_by_body[oldest.body]
                self.evicted_scripts += 1
        script = Script(sha, body, flags, func, from_eval)
        self.scripts[sha] = script
        self.scripts_by_sha[sha.encode()] = script
        self.scripts_by_body[body] = script
        self.eval_state.gc_tick()
        return script

    @property
    def function_state(self) -> LuaState:
        state = self._function_state
        if state is None:
            state = self._function_state = LuaState(self, library_api=True)
        return state

    def drop_function_state(self) -> None:
        self._function_state = None

    def functions_vm_memory(self) -> int:
        """used_memory_vm_functions: the functions' Lua heap (0 while there is none)."""
        return 0 if self._function_state is None else self._function_state.memory()

    def declares_writes(self, cmd: Command, argv: list[bytes]) -> bool:
        """Whether a queued EVAL/EVALSHA/FCALL (and _RO) counts as a write for its transaction
        (``evalGetCommandFlags``/``fcallGetCommandFlags``): a script or function whose flags
        do not say no-writes does, an EVAL script without a shebang does not; so does not
        anything unknown (a missing script, a bad shebang) or any other command."""
        name = cmd.name
        if name in ("fcall", "fcall_ro"):
            function = self.libraries.functions.get(argv[1]) if len(argv) > 1 else None
            return function is not None and not function.flags & NO_WRITES
        if name not in ("eval", "evalsha", "eval_ro", "evalsha_ro") or len(argv) < 2:
            return False
        if name.startswith("evalsha"):
            script = self.find_script(argv[1]) if len(argv[1]) == 40 else None
            if script is None:
                return False
            flags = script.flags
        else:
            script = self.scripts_by_body.get(argv[1])
            if script is not None:
                flags = script.flags
            else:
                try:
                    flags, _ = parse_shebang(argv[1])
                except CommandError:
                    return False
        return not flags & (EVAL_COMPAT_MODE | NO_WRITES)

    def find_script(self, sha: bytes) -> Script | None:
        """The cached script of an EVALSHA argument (any case)."""
        script = self.scripts_by_sha.get(sha)
        if script is None and not sha.islower():
            script = self.scripts_by_sha.get(sha.lower())
        return script

    def flush_scripts(self, lazy: bool = False) -> None:
        """SCRIPT FLUSH: a new Lua state and an empty cache (scriptingReset).  ``lazy`` (ASYNC):
        Redis frees more than 64 scripts in its lazyfree thread, counting them in INFO's
        lazyfreed_objects."""
        if lazy and len(self.scripts) > LAZYFREE_THRESHOLD:
            self.server.keyspace.stat_lazyfreed_objects += len(self.scripts)
        self.scripts.clear()
        self.scripts_by_sha.clear()
        self.scripts_by_body.clear()
        self.eval_state = LuaState(self)

    def touch(self, script: Script) -> None:
        if script.from_eval:
            self.scripts.move_to_end(script.sha)

    # -- running ---------------------------------------------------------------------------

    def admit(self, caller: Client, flags: int, ro: bool, stale: bool) -> None:
        """``scriptPrepareForRun``'s refusals: what a script's declared flags forbid now.  An
        EVAL script without a shebang declares none: only a stale replica refuses it."""
        server = self.server
        if flags & EVAL_COMPAT_MODE:
            if stale:
                raise CommandError("-" + MASTERDOWN)
            return
        if flags & NO_CLUSTER and server.cluster is not None:
            raise CommandError("Can not run script on cluster, 'no-cluster' flag is set.")
        if stale and not flags & ALLOW_STALE:
            # Redis's dispatch refuses it first (the command's flags follow the script's, so it
            # is not "stale"): the plain MASTERDOWN, not scriptPrepareForRun's longer text.
            raise CommandError("-" + MASTERDOWN)
        if not flags & NO_WRITES:
            # Without a command gate, no READONLY, MISCONF or NOREPLICAS refusal applies.
            gated = server.command_gate is not None
            if gated and self._read_only_replica(caller):
                raise CommandError("-READONLY You can't write against a read only replica.")  # (Redis: its dispatch)
            message = self.write_denied_message() if gated else None
            if message:
                raise CommandError(_script_misconf(message))
            if ro:
                raise CommandError("Can not execute a script with write flag using *_ro command.")
            if gated and not self._enough_replicas():
                raise CommandError("-NOREPLICAS Not enough good replicas to write.")
        if (server.maxmemory and not caller.no_evict and not flags & (ALLOW_OOM | NO_WRITES)
                and not server.evict_if_needed()):
            raise CommandError("-OOM allow-oom flag is not set on the script, "
                               "can not run it when used memory > 'maxmemory'")

    def invoke(self, caller: Client, caller_argv: list[bytes], numkeys: int, state: LuaState, func: Any, name: str,
               flags: int, ro: bool, debug: bool = False, owner: Any = None) -> Any:
        """Run a script or function (``scriptPrepareForRun`` + ``luaCallFunction``) and
        return its reply; its error reply is raised as the command's error.  An EVAL script
        (``state`` is the EVAL engine) sees KEYS and ARGV as globals, a function gets them
        as its two arguments.  ``owner`` (the Script or Function) keeps the bridge's handle
        of ``func``, made by its first run (a handle costs the Lua heap a table slot: only
        what runs gets one)."""
        server = self.server
        eval_mode = state is self.eval_state
        client = self.eval_client if eval_mode else self.function_client
        if ((flags == EVAL_COMPAT_MODE or not flags) and not ro and not debug and server.command_gate is None
                and not server.maxmemory and server.cluster is None and caller.unrestricted):
            # The plain run (most): nothing to refuse, no gate, no cluster, no OOM; what
            # _checked_run would find, set by the class.
            run = _new_run(_PLAIN_RUNS[state.bridge is not None, flags != 0])
        else:
            run = self._checked_run(caller, caller_argv, numkeys, state, flags, ro, debug)
        run.write_dirty = run.error_counted = run.timed_out = run.repl_changed = False
        run.caller = caller
        run.caller_argv = caller_argv
        run.client = client
        run.name = name
        run.eval_mode = eval_mode
        run.start = _monotonic()
        client.db = caller.db
        client.resp3 = False
        was_in_exec = server.in_exec
        server.in_exec = True  # one time snapshot; blocking commands answer at once
        self.run = run
        try:
            hook = server.config.values["busy-reply-threshold"] > 0
            if owner is not None and state.bridge is not None and not debug:  # the C bridge (_luabridge)
                handle = owner.handle
                if handle is None:
                    handle = owner.handle = state.handle(func)
                reply = state.bridge.run(handle, eval_mode, hook, numkeys, caller_argv, run)
                if reply is STASHED:  # not a string, a number or nil: converted here
                    reply = self.stashed_outcome(run, state)
            else:
                if debug:  # under the Lua debugger's line hook (debug_eval)
                    if state.bridge is not None:
                        state.bridge.resp3 = 0
                    ok, value = state.debugger()[b"run"](func, numkeys, state.table(caller_argv[3:]),
                                                         len(caller_argv) - 3)
                elif len(caller_argv) < MAX_DIRECT_ARGS:
                    ok, value = (state.run_eval if eval_mode else state.run_function)(func, hook, numkeys,
                                                                                      *caller_argv[3:])
                else:
                    ok, value = state.run_many(eval_mode, func, hook, numkeys, caller_argv[3:])
                if ok and type(value) is bytes:
                    reply = value
                else:
                    reply = self._outcome(run, state, ok, value)
        finally:
            self.run = None
            server.in_exec = was_in_exec
            server.current_client = caller
            if state.bridge is not None:  # Redis's luaGC (LuaState.gc_tick, inlined): counted in C
                state.bridge.gc_tick()
            else:
                state.gc_count += 1
                if state.gc_count >= GC_CYCLE_PERIOD:
                    state.gc_step()
            if run.timed_out or run.repl_changed:
                self.run_ended(run)
        self.last_error_counted = run.error_counted
        return reply

    def stashed_outcome(self, run: Run, state: LuaState) -> Any:
        """The reply of a bridge run whose outcome waits in the bridge's stash."""
        ok, value = state.take()
        return self._outcome(run, state, ok, value)

    def run_ended(self, run: Run) -> None:
        """The end of a run that went busy or called redis.set_repl (whose choice lasts for the run)."""
        if run.timed_out:
            self.end_busy(run)
        if run.repl_changed:
            self.server.propagator.retarget(TO_ALL)  # type: ignore[attr-defined]

    def _checked_run(self, caller: Client, caller_argv: list[bytes], numkeys: int, state: LuaState, flags: int,
                     ro: bool, debug: bool) -> Run:
        """invoke's Run when the plain one does not apply: ``scriptPrepareForRun``'s refusals
        (raised) and the run's checks as the flags, the caller and the server want them."""
        server = self.server
        # (Ungated, a function without flags or an EVAL script without a shebang has nothing to refuse.)
        gated = server.command_gate is not None
        stale = gated and self._running_stale()
        if gated or (flags != EVAL_COMPAT_MODE and (flags or ro or server.maxmemory)):
            self.admit(caller, flags, ro, stale)
        run = _new_run(Run)
        if ro or (flags & NO_WRITES and not flags & EVAL_COMPAT_MODE):
            run.read_only = True
        if flags & ALLOW_OOM and not flags & EVAL_COMPAT_MODE:
            run.allow_oom = True
        if flags & (EVAL_COMPAT_MODE | ALLOW_CROSS_SLOT):
            run.allow_cross_slot = True
        if server.maxmemory:
            run.oom_at_start = not server.evict_if_needed()
        if server.cluster is not None:
            if getattr(caller, "repl_kind", None) != "master" and not server.keyspace.loading:
                run.slot = _declared_slot(caller_argv, numkeys)  # (the master and the AOF are obeyed)
        elif caller.unrestricted and not run.read_only and not run.oom_at_start and not stale and not debug:
            run.unchecked = True
            run.writes_admitted = not gated
            if not gated and state.bridge is not None:
                run.twins = True  # (the bridge checks the rest of what that needs at the first call)
        run.stale = stale
        return run

    def raise_error(self, reply: ErrorReply) -> NoReturn:
        """A script's error reply as its command's error: counted like any command error,
        unless it came from a redis.call error the statistics counted already."""
        raise CommandError("-" + reply.message, counted=self.last_error_counted)

    def _outcome(self, run: Run, state: LuaState, ok: bool, value: Any) -> Any:
        """The reply for what a run returned (any value) or raised (an error table or text)."""
        if ok:
            state.error_counted = False
            reply = state.to_reply(value, run.client.resp3)
            run.error_counted = type(reply) is ErrorReply and state.error_counted
            return reply
        if state.type_of(value) == b"table":
            kind_err = state.helpers[b"inspect"](value)
            if type(kind_err) is tuple and kind_err[0] == b"err":
                _, message, source, line, ignore = (kind_err + (None,) * 5)[:5]
                reply, counted = error_from_table(message, source, line, ignore, run.name)
                if counted:
                    run.error_counted = True
                return reply
            return ErrorReply(f"ERR Error running script {run.name}, execution failure")
        text = value.decode("utf-8", "replace") if type(value) is bytes else "execution failure"
        return ErrorReply(f"ERR Error running script {run.name}, {text[:100]}")

    # -- callbacks from the sandbox ------------------------------------------------------------

    def redis_call(self, *args: Any) -> tuple[int, Any]:
        """``redis.pcall``: (0, value), or (1, error) for an error the stats already
        counted, (2, error) for a bad call that never reached a command."""
        try:
            return 0, self.redis_call_raise(*args)
        except ScriptCallError as e:
            return (1 if e.counted else 2), e.message

    def redis_call_raise(self, *args: Any) -> Any:
        """``redis.call`` on lupa's path: ``call_reply``'s reply as a Lua value."""
        reply = self.call_reply(*args)
        if reply.__class__ is bytes or reply.__class__ is int:
            return reply
        run = self.run
        return self.current_state().from_reply(reply, run is not None and run.client.resp3)

    def call_reply(self, *args: Any) -> Any:
        """``redis.call``: run a command with Redis's checks for scripts (``scriptCall``);
        its reply (ScriptCallError raised for an error).  The C bridge calls this with the
        arguments already bytes (None for an argument of another type) and converts the
        reply itself; lupa's path converts it in ``redis_call_raise``.

        Most calls need none of those checks: the run is ``unchecked`` (an unrestricted
        caller, no cluster, not read-only, not out of memory) and the command is known, of
        the right arity and allowed in scripts; a write also needs ``writes_admitted`` (the
        script wrote already, or no ``server.command_gate`` was up when it started: no
        MISCONF, read-only replica or min-replicas refusal can apply).  Those go straight to
        ``Server.call``; anything else takes ``_checked_call``, which applies every check."""
        run = self.run
        if run is not None and run.unchecked and args:
            name = args[0]
            cmd = self.server.fast_table.get(name) if name.__class__ is bytes else None
            if cmd is not None and not cmd.noscript and (not cmd.is_write or run.writes_admitted):
                arity = cmd.arity
                n = len(args)
                if n == arity or 0 < -arity <= n:
                    for a in args:
                        if a.__class__ is not bytes:
                            break
                    else:
                        if cmd.is_write:
                            run.write_dirty = True
                        reply = self.server.call(run.client, cmd, list(args))
                        if reply.__class__ is bytes or reply.__class__ is int:
                            return reply
                        return self.plain_reply(reply)
        return self._checked_call(run, args)

    def _checked_call(self, run: Run | None, args: tuple[Any, ...]) -> Any:
        """redis.call with every check of Redis's ``scriptCall``, in its order."""
        if run is None:
            raise ScriptCallError(b"ERR redis.call is only available inside a script run")
        if not args:
            self._ldb_error(b"ERR Please specify at least one argument for this redis lib call")
            raise ScriptCallError(b"ERR Please specify at least one argument for this redis lib call")
        argv = list(args)
        for a in args:
            if a.__class__ is not bytes:
                try:
                    argv = [_arg_bytes(x) for x in args]
                except ScriptCallError as e:
                    self._ldb_error(e.message)
                    raise
                break
        ldb = self.ldb
        if ldb is not None and ldb.logging:
            ldb.log_command(argv)
        server = self.server
        cmd = server.fast_table.get(argv[0]) or _lookup(argv)
        if cmd is None:
            self._refuse(None, "ERR Unknown Redis command called from script")
        arity = cmd.arity
        if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
            self._refuse(cmd, "ERR Wrong number of args calling Redis command from script")
        if cmd.noscript and not self.disable_deny_script:
            self._refuse(cmd, "ERR This Redis command is not allowed from script")
        if run.stale and "stale" not in cmd.flags:  # scriptVerifyAllowStale
            self._refuse(cmd, "ERR Can not execute the command on a stale replica")
        if not run.caller.unrestricted:  # scriptVerifyACL: the calling user's permissions
            denied = acl_refusal(run.caller, run.caller.user, cmd, argv, "lua")
            if denied is not None:
                self._refuse(cmd, "ERR ACL failure in script: " + denied)
        if cmd.is_write or cmd.may_replicate:
            self._check_write(run, cmd)
        if run.oom_at_start and cmd.denyoom and not run.allow_oom and not run.write_dirty:
            self._refuse(cmd, "OOM command not allowed when used memory > 'maxmemory'.")
        if cmd.is_write:
            run.write_dirty = run.writes_admitted = True
        if server.cluster is not None:
            err = self._cluster_check(run, cmd, argv)
            if err is not None:
                self._refuse(cmd, err)
        return self._called(run, cmd, argv)

    def _called(self, run: Run, cmd: Command, argv: list[bytes]) -> Any:
        """Run an admitted command on the engine's client; its reply as a Lua value."""
        reply = self.server.call(run.client, cmd, argv)
        ldb = self.ldb
        if ldb is not None and ldb.logging:
            shown = reply.timeout_reply if type(reply) is Blocked else reply
            wire = encode(shown, run.client.resp3)
            if type(shown) is ErrorReply:
                ldb.log_error(wire[:-2].decode("utf-8", "surrogateescape"))
            ldb.log_reply(wire)
        if reply.__class__ is bytes or reply.__class__ is int:
            return reply
        return self.plain_reply(reply)

    def _ldb_error(self, message: bytes) -> None:
        """A redis.call refused before it ran, in the debugger's log (``luaPushError``'s
        text: a code of its own keeps its '-', ERR is not shown)."""
        ldb = self.ldb
        if ldb is not None and ldb.logging:
            text = message.decode("utf-8", "surrogateescape")
            ldb.log_error(text[4:] if text.startswith("ERR ") else "-" + text)

    def plain_reply(self, reply: Any) -> Any:
        """A reply as redis.call sees it: a blocked command's timeout reply, an error raised."""
        t = type(reply)
        if t is Blocked:  # a handler that ignored in_exec: answer as on timeout
            return reply.timeout_reply
        if t is ErrorReply:
            raise ScriptCallError(reply.message.encode("utf-8", "surrogateescape"), counted=True)
        return reply

    def _check_write(self, run: Run, cmd: Command) -> None:
        """``scriptVerifyWriteCommandAllow``: read-only runs refuse writes; before the first
        write, so does a server that cannot persist (MISCONF)."""
        if run.read_only:
            self._refuse(cmd, "ERR Write commands are not allowed from read-only scripts.")
        if cmd.is_write and self._read_only_replica(run.caller):
            self._refuse(cmd, "READONLY You can't write against a read only replica.")
        if cmd.is_write and not run.write_dirty:
            message = self.write_denied_message()
            if message:
                self._refuse(cmd, message)
            if not self._enough_replicas():
                self._refuse(cmd, "NOREPLICAS Not enough good replicas to write.")

    def _read_only_replica(self, caller: Client) -> bool:
        """A read-only replica refuses writes from anyone but its master (dumpling.replication)."""
        replication = getattr(self.server, "replication", None)
        return (replication is not None and replication.link is not None and self.server.config["replica-read-only"]
                and getattr(caller, "repl_kind", None) != "master")

    def _running_stale(self) -> bool:
        """A replica whose link is down and that serves no stale data (``running_stale``)."""
        replication = getattr(self.server, "replication", None)
        link = replication.link if replication is not None else None
        return link is not None and link.state != "connected" and not self.server.config["replica-serve-stale-data"]

    def _enough_replicas(self) -> bool:
        """checkGoodReplicasStatus (min-replicas-to-write / -max-lag)."""
        replication = getattr(self.server, "replication", None)
        return replication is None or replication.enough_good_replicas()

    def write_denied_message(self) -> str | None:
        """The MISCONF error while writes are refused for failed persistence, else None."""
        snapshots = getattr(self.server, "snapshots", None)
        if snapshots is not None and snapshots.writes_refused():
            from dumpling.persistence.snapshots import MISCONF

            return MISCONF
        return None

    def _refuse(self, cmd: Command | None, message: str) -> NoReturn:
        """A command the script may not run: counted as Redis's rejected calls, raised into Lua."""
        self._ldb_error(message.encode())
        if cmd is not None:
            cmd.rejected_calls += 1
        self.server.count_error(message.split(" ", 1)[0])
        raise ScriptCallError(message.encode(), counted=True)

    def _cluster_check(self, run: Run, cmd: Command, argv: list[bytes]) -> str | None:
        """``scriptVerifyClusterState``: keys must be served here and, unless the script
        allows it, hash to the slot of the keys it declared."""
        from dumpling.cluster.slots import key_slot

        cluster = self.server.cluster
        err = cluster.check(run.caller, cmd, argv)
        if err is not None:
            code = err.split(" ", 1)[0]
            if code in ("MOVED", "ASK"):
                return "ERR Script attempted to access a non local key in a cluster node"
            if code == "CROSSSLOT":
                return f"ERR Command '{cmd.name}' in script attempted to access keys that don't hash to the same slot"
            if code == "TRYAGAIN":
                return (f"ERR Unable to execute command '{cmd.name}' in script because undeclared keys were "
                        "accessed during rehashing of the slot")
            if code == "CLUSTERDOWN":
                if "readonly" in err or "read only" in err:
                    return "ERR Script attempted to execute a write command while the cluster is down and readonly"
                if "not served" in err or "unbound" in err.lower():
                    return "ERR Script attempted to access a slot not served"
                return "ERR Script attempted to execute a command while the cluster is down"
            return "ERR " + err
        try:
            positions = cmd.key_indices(argv)
        except ValueError:
            return None
        if positions and not run.allow_cross_slot:
            slot = key_slot(argv[positions[0]])
            if run.slot == -1:
                run.slot = slot
            elif run.slot != slot:
                return "ERR Script attempted to access keys that do not hash to the same slot"
        return None

    def current_state(self) -> LuaState:
        run = self.run
        return self.eval_state if run is None or run.eval_mode else self.function_state

    # The ``redis`` API functions that can fail (Python callables: see sandbox.lua).

    def random(self, *args: Any) -> float:
        """math.random as Redis: ``redisLrand48() % INT32_MAX / INT32_MAX`` (one sequence
        per process), then Lua 5.1's scaling to [1, u] or [l, u]."""
        self._lrand_state = (self._lrand_state * 0x5DEECE66D + 0xB) & 0xFFFFFFFFFFFF
        r = ((self._lrand_state >> 17) % 0x7FFFFFFF) / 0x7FFFFFFF
        if not args:
            return r
        if len(args) == 1:
            u = _check_int(args, 0, "random")
            if u < 1:
                raise ScriptCallError(b"bad argument #1 to 'random' (interval is empty)", positional=True)
            return float(math.floor(r * u) + 1)
        if len(args) == 2:
            low, u = _check_int(args, 0, "random"), _check_int(args, 1, "random")
            if low > u:
                raise ScriptCallError(b"bad argument #2 to 'random' (interval is empty)", positional=True)
            return float(math.floor(r * (u - low + 1)) + low)
        raise ScriptCallError(b"wrong number of arguments", positional=True)

    def randomseed(self, *args: Any) -> None:
        seed = _check_int(args, 0, "randomseed") & 0xFFFFFFFF
        self._lrand_state = ((seed << 16) | 0x330E) & 0xFFFFFFFFFFFF

    def sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise ScriptCallError(b"ERR wrong number of arguments")
        value = args[0]
        data = value if type(value) is bytes else lua_number_arg(value) if type(value) in (int, float) else b""
        return sha1hex(data).encode()

    def log(self, *args: Any) -> None:
        if len(args) < 2:
            raise ScriptCallError(b"ERR redis.log() requires two arguments or more.")
        level = lua_tonumber(args[0])
        if level is None:
            raise ScriptCallError(b"ERR First argument must be a number (log level).")
        if not 0 <= int(level) <= 3:
            raise ScriptCallError(b"ERR Invalid log level.")
        parts = [a if type(a) is bytes else lua_number_arg(a) for a in args[1:] if type(a) in (bytes, int, float)]
        name = ("debug", "verbose", "notice", "warning")[int(level)]
        self.server.log(name, b" ".join(parts).decode("utf-8", "replace"))

    def setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise ScriptCallError(b"ERR redis.setresp() requires one argument.")
        version = lua_tonumber(args[0])
        if version not in (2.0, 3.0):
            raise ScriptCallError(b"ERR RESP version must be 2 or 3.")
        if self.run is not None:
            self.run.client.resp3 = version == 3.0
            bridge = self.current_state().bridge
            if bridge is not None:
                bridge.resp3 = version == 3.0

    def set_repl(self, *args: Any) -> None:
        """redis.set_repl: where the effects of the script's next commands go (the AOF,
        replicas, both or neither), until the run ends (``Propagator.retarget``)."""
        if len(args) != 1:
            raise ScriptCallError(b"ERR redis.set_repl() requires one argument.")
        number = lua_tonumber(args[0]) or 0.0
        flags = lua_number_to_int(number)  # lua_tonumber then a C int cast
        if flags & ~TO_ALL:
            raise ScriptCallError(b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
        run = self.run
        propagator = getattr(self.server, "propagator", None)
        if run is not None and propagator is not None:
            run.repl_changed = True
            propagator.retarget(flags)

    def acl_check(self, *args: Any) -> bool:
        """redis.acl_check_cmd: whether the calling user may run the command."""
        if not args:
            raise ScriptCallError(b"ERR Please specify at least one argument for this redis lib call")
        argv = []
        for a in args:
            if type(a) is bytes:
                argv.append(a)
            elif type(a) in (int, float):
                argv.append(lua_number_arg(a))
            else:
                raise ScriptCallError(b"ERR Lua redis lib command arguments must be strings or integers")
        cmd = _lookup(argv)
        if cmd is None:
            raise ScriptCallError(b"ERR Invalid command passed to redis.acl_check_cmd()")
        run = self.run
        if run is None or run.caller.unrestricted:
            return True
        return run.caller.user.check(cmd, argv)[0] == 0

    def register_function(self, *args: Any) -> tuple[int, Any]:
        return self.libraries.register_function(args)

    # -- busy scripts -----------------------------------------------------------------------------

    def hook(self) -> bool:
        """The count hook (every 100k Lua instructions): True to kill the script."""
        run = self.run
        if run is None:
            return False
        now = time.monotonic()
        if not run.timed_out:
            elapsed_ms = (now - run.start) * 1000
            if elapsed_ms < self.server.config["busy-reply-threshold"]:
                return False
            self.begin_busy(run, int(elapsed_ms))
        if now >= run.next_check:
            run.next_check = now + HOOK_PERIOD_S / 10
            try:
                self._busy.serve_others()
            except Exception:  # a bug here must not end the script or the server: log it
                import traceback

                self.server.log("warning", "error serving clients during a busy script:\n" + traceback.format_exc())
        if run.killed and not run.kill_logged:
            run.kill_logged = True
            self.server.log("notice", "Lua script killed by user with SCRIPT KILL.")
        return run.killed

    def load_hook(self) -> bool:
        """FUNCTION LOAD's hook: True once the library body ran past its 500 ms."""
        return self.load_deadline > 0 and time.monotonic() > self.load_deadline

    def begin_busy(self, run: Run, elapsed_ms: int) -> None:
        from dumpling.scripting.busy import BusyResponder

        run.timed_out = True
        self.server.log(
            "warning",
            f"Slow script detected: still in execution after {elapsed_ms} milliseconds. You can try killing the "
            f"script using the {'SCRIPT KILL' if run.eval_mode else 'FUNCTION KILL'} command. "
            f"Script name is: {run.name}.",
        )
        self._busy = BusyResponder(self.server, run)

    def end_busy(self, run: Run) -> None:
        if self._busy is not None:
            self._busy.finish()
            self._busy = None

    def busy_error(self) -> str:
        run = self.run
        return BUSY_EVAL if run is None or run.eval_mode else BUSY_FUNCTION

    def kill(self, eval_kill: bool) -> None:
        """SCRIPT KILL / FUNCTION KILL (``scriptKill``)."""
        run = self.run
        if run is None:
            raise CommandError("-NOTBUSY No scripts in execution right now.")
        if run.write_dirty:
            raise CommandError(
                "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either "
                "wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
            )
        if eval_kill and not run.eval_mode:
            raise CommandError("-" + BUSY_FUNCTION)
        if not eval_kill and run.eval_mode:
            raise CommandError("-" + BUSY_EVAL)
        run.killed = True

    # -- the Lua debugger (SCRIPT DEBUG) --------------------------------------------------------------

    def debug_eval(self, caller: Client, argv: list[bytes], ro: bool, prepare: Callable[[], tuple[int, Script]]) -> Any:
        """EVAL from a client in SCRIPT DEBUG mode (``evalGenericCommandWithDebugging``): the run
        talks to the client over its socket, then the client is closed.  YES: a forked child
        runs it (its changes die with it) and this side closes its copy of the connection at
        once; SYNC: the server waits for the session here, as Redis does.  ``prepare`` gives
        the key count and the compiled script, or refuses (inside the session, as Redis)."""
        mode = caller.lua_debug
        caller.lua_debug = None
        transport = caller.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            raise CommandError("Lua debugging needs a socket connection")
        fd = sock.fileno()
        pending = b"".join(caller._out)  # replies of the same read batch go first
        caller._out.clear()
        if mode == "yes":
            try:
                pid = os.fork()
            except OSError as e:
                raise CommandError(f"Fork() failed: can't run EVAL in debugging mode: {e.strerror}") from None
            if pid == 0:
                from dumpling.persistence.snapshots import run_forked_child

                run_forked_child(self.server, lambda: self._debug_child(caller, argv, ro, prepare, fd, pending))
            self.ldb_children.add(pid)
            if self._reap_children not in self.server.cron_hooks:
                self.server.cron_hooks.append(self._reap_children)
                self.server.before_shutdown.append(self._kill_children)
            caller.close()
            return NO_REPLY
        self.server.log("notice", "Redis synchronous debugging eval session started")
        self._debug_session(caller, argv, ro, prepare, fd, pending, forked=False)
        self.server.log("notice", "Redis synchronous debugging eval session ended")
        caller.close()
        return NO_REPLY

    def _debug_child(self, caller: Client, argv: list[bytes], ro: bool, prepare: Callable[[], tuple[int, Script]],
                     fd: int, pending: bytes) -> bool:
        """The forked session: nobody but the debugging client may hear from this copy of
        the server (other clients' transports dropped, propagation cut)."""
        server = self.server
        server.log("notice", "Redis forked for debugging eval")
        for client in list(server.clients.values()):
            client.transport = None
        server.call_hooks = None
        server.keyspace.change_hook = None
        self._debug_session(caller, argv, ro, prepare, fd, pending, forked=True)
        server.log("notice", "Lua debugging session child exiting")
        return True

    def _debug_session(self, caller: Client, argv: list[bytes], ro: bool, prepare: Callable[[], tuple[int, Script]],
                       fd: int, pending: bytes, forked: bool) -> None:
        channel = Channel(fd)
        session = Session(self.eval_state, channel, argv[1], forked, time.monotonic())
        session.timeout_ms = self.server.config["busy-reply-threshold"] or 5000
        if pending:
            channel.write(pending)
        self.ldb = session
        try:
            numkeys, script = prepare()
            reply = self.invoke(caller, argv, numkeys, self.eval_state, script.func, script.sha, script.flags, ro,
                                debug=True)
        except CommandError as e:
            reply = ErrorReply(e.message)
        finally:
            self.ldb = None
        session.end(encode(reply, caller.resp3))

    def _reap_children(self) -> None:
        self.ldb_children.difference_update(exited_children(list(self.ldb_children)))

    def _kill_children(self, flags: frozenset[str]) -> bool:
        """``ldbKillForkedSessions``: a shutdown ends the forked debugging sessions."""
        for pid in self.ldb_children:
            self.server.log("notice", f"Killing debugging session {pid}")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.ldb_children.clear()
        return True

    def ldb_line(self, count_event: bool, line: int) -> Any:
        session = self.ldb
        stop = None if session is None else session.line_hook(bool(count_event), int(line))
        return None if stop is None else stop.encode()

    def ldb_debug(self, line: int, text: bytes) -> None:
        if self.ldb is not None:
            self.ldb.debug(int(line), text.decode("utf-8", "surrogateescape"))

    def ldb_breakpoint(self) -> None:
        if self.ldb is not None:
            self.ldb.breakpoint()

    # -- introspection -------------------------------------------------------------------------------

    def memory(self) -> int:
        return self.eval_state.memory()

    def scripts_memory(self) -> int:
        """used_memory_scripts_eval (``evalScriptsMemory``, see ``accounting``)."""
        return eval_scripts_memory((len(s.body), s.from_eval) for s in self.scripts.values())

    def functions_memory(self) -> int:
        """used_memory_functions (``functionsMemoryOverhead``, see ``accounting``)."""
        libraries = self.libraries
        return functions_memory(
            ((len(lib.name), len(lib.code),
              [(len(f.name), None if f.description is None else len(f.description)) for f in lib.functions.values()])
             for lib in libraries.libraries.values()),
            libraries.engine_registrations)


def _check_int(args: tuple[Any, ...], index: int, name: str) -> int:
    """``luaL_checkint``: a number or numeric string, truncated."""
    value = args[index] if index < len(args) else None
    number = lua_tonumber(value)
    if number is None:
        got = "no value" if index >= len(args) else lua_type_name(value)
        raise ScriptCallError(f"bad argument #{index + 1} to '{name}' (number expected, got {got})".encode(),
                              positional=True)
    return int(number)


def _script_misconf(message: str) -> str:
    """The MISCONF text Redis gives a write script it refuses up front."""
    if "AOF" in message:
        return ("-MISCONF Redis is configured to persist data to AOF, but it's currently unable to persist to disk. "
                "Writable scripts are blocked. Use 'no-writes' flag for read only scripts. AOF error: "
                + message.rsplit(": ", 1)[-1])
    return ("-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
            "Writable scripts are blocked. Use 'no-writes' flag for read only scripts.")


def _arg_bytes(value: Any) -> bytes:
    """A redis.call argument: strings as they are, numbers as Redis prints them."""
    t = type(value)
    if t is bytes:
        return value
    if t is int or t is float:
        return lua_number_arg(value)
    raise ScriptCallError(_ERR_ARGS)


def _declared_slot(caller_argv: list[bytes], numkeys: int) -> int:
    """The slot of the keys an EVAL or FCALL declared (Redis's ``caller->slot``, set by its
    dispatch's cluster check, which refused declared keys in two slots with CROSSSLOT), or
    -1 if it declared none: unless the script allows cross-slot keys, every key it then
    touches must hash to that slot."""
    from dumpling.cluster.slots import key_slot

    return key_slot(caller_argv[3]) if numkeys > 0 else -1


def _lookup(argv: list[bytes]) -> Command | None:
    """``lookupCommand``: the command or subcommand, None if unknown."""
    cmd = TABLE.get(argv[0].lower())
    if cmd is None:
        return None
    if cmd.subcommands:
        if len(argv) < 2:
            return cmd if cmd.handler is not None else None
        return cmd.subcommands.get(argv[1].lower())
    return cmd
