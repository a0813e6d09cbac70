"""Scripting commands: EVAL/EVALSHA (and _RO), SCRIPT, FUNCTION, FCALL (and _RO).

The engine lives in ``dumpling.scripting``; this module parses arguments and turns
the engine's outcomes into replies, with Redis's texts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dumpling.commands.admin import _help
from dumpling.commands.common import glob_match
from dumpling.commands.lists import key_spec
from dumpling.commands.registry import command, container
from dumpling.errors import CommandError
from dumpling.numbers import parse_int64
from dumpling.protocol import OK, ErrorReply, Map, SetReply, Status
from dumpling.scripting.manager import FLAG_NAMES, Scripting, script_command

SC = {"group": "scripting"}
NOSCRIPT_ERR = "-NOSCRIPT No matching script. Please use EVAL."
_RW_NOTES = "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"
_RO_NOTES = "We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"
_EVAL_FLAGS = "noscript stale skip_monitor may_replicate no_mandatory_keys"
_EVAL_RO_FLAGS = "readonly noscript stale skip_monitor no_mandatory_keys"


def setup(server: Any) -> None:
    scripting = Scripting(server)
    server.scripting = scripting
    snapshots = getattr(server, "snapshots", None)
    if snapshots is not None:  # function libraries travel in RDB files (and AOF bases)
        libraries = scripting.libraries
        snapshots.function_sources = libraries.records
        snapshots.function_loader = libraries.load_record
        snapshots.function_flusher = libraries.flush_and_reset


def _numkeys_keys(argv: list[bytes]) -> list[int]:
    """Key positions of EVAL-like commands (``evalGetKeys``)."""
    numkeys = parse_int64(argv[2]) if len(argv) > 2 else None
    if numkeys is None or numkeys < 0 or numkeys > len(argv) - 3:
        raise ValueError("bad numkeys")
    return list(range(3, 3 + numkeys))


# numkeys as most calls give it: canonical small counts (anything else goes through _numkeys)
_SMALL_COUNTS = {b"%d" % n: n for n in range(64)}


def _numkeys(argv: list[bytes], error: str = "value is not an integer or out of range") -> int:
    numkeys = parse_int64(argv[2])
    if numkeys is None:
        raise CommandError(error)
    if numkeys > len(argv) - 3:
        raise CommandError("Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("Number of keys can't be negative")
    return numkeys


def _rw_spec(ro: bool, notes: bool) -> list[dict[str, Any]]:
    flags = "RO access" if ro else "RW access update"
    return [key_spec(flags, index=2, keynum=(0, 1, 1), notes=(_RO_NOTES if ro else _RW_NOTES) if notes else None)]


# ----------------------------------------------------------------------------- EVAL


def _eval_handler(evalsha: bool, ro: bool) -> Callable[[Any, list[bytes]], Any]:
    """The handler of EVAL, EVALSHA or their _RO forms: one body, with the variant bound
    here so that a call is a single Python frame before the engine's."""

    def handler(c: Any, argv: list[bytes]) -> Any:
        server = c.server
        scripting: Scripting = server.scripting
        if server.monitors:
            server.feed_monitors(c, argv)  # the script before the commands it runs
        if evalsha and len(argv[1]) != 40:
            raise CommandError(NOSCRIPT_ERR)
        if c.lua_debug is not None:
            if evalsha:
                raise CommandError("Please use EVAL instead of EVALSHA for debugging")
            # (in the session: its refusals end it, as Redis's evalGenericCommand's do)
            return scripting.debug_eval(c, argv, ro, lambda: (_numkeys(argv), scripting.create_script(argv[1], True)))
        numkeys = _SMALL_COUNTS.get(argv[2], -1)
        if not 0 <= numkeys <= len(argv) - 3:
            numkeys = _numkeys(argv)
        if evalsha:
            script = scripting.scripts_by_sha.get(argv[1]) or scripting.find_script(argv[1])
            if script is None:
                raise CommandError(NOSCRIPT_ERR)
        else:
            script = scripting.create_script(argv[1], from_eval=True)
        reply = scripting.invoke(c, argv, numkeys, scripting.eval_state, script.func, script.sha, script.flags, ro,
                                 owner=script)
        if script.from_eval:
            scripting.touch(script)  # after the run (not when refused), as Redis keeps its LRU list
        if type(reply) is ErrorReply:
            scripting.raise_error(reply)
        return reply

    return handler


eval_ = command("eval", -3, _EVAL_FLAGS, **SC, since="2.6.0", summary="Executes a server-side Lua script.",
                complexity="Depends on the script that is executed.", args="script numkeys:integer [key...] [arg...]",
                key_specs=_rw_spec(False, True),
                getkeys=_numkeys_keys)(script_command("eval", _eval_handler(evalsha=False, ro=False)))
evalsha = command("evalsha", -3, _EVAL_FLAGS, **SC, since="2.6.0",
                  summary="Executes a server-side Lua script by SHA1 digest.",
                  complexity="Depends on the script that is executed.", args="sha1 numkeys:integer [key...] [arg...]",
                  key_specs=_rw_spec(False, False),
                  getkeys=_numkeys_keys)(script_command("evalsha", _eval_handler(evalsha=True, ro=False)))
eval_ro = command("eval_ro", -3, _EVAL_RO_FLAGS, **SC, since="7.0.0",
                  summary="Executes a read-only server-side Lua script.",
                  complexity="Depends on the script that is executed.", args="script numkeys:integer [key...] [arg...]",
                  key_specs=_rw_spec(True, True), getkeys=_numkeys_keys)(_eval_handler(evalsha=False, ro=True))
evalsha_ro = command("evalsha_ro", -3, _EVAL_RO_FLAGS, **SC, since="7.0.0",
                     summary="Executes a read-only server-side Lua script by SHA1 digest.",
                     complexity="Depends on the script that is executed.",
                     args="sha1 numkeys:integer [key...] [arg...]",
                     key_specs=_rw_spec(True, False), getkeys=_numkeys_keys)(_eval_handler(evalsha=True, ro=True))


# ----------------------------------------------------------------------------- SCRIPT

container("script", group="scripting", since="2.6.0", summary="A container for Lua scripts management commands.")


@command("script|help", 2, "loading stale", **SC, since="5.0.0",
         summary="Returns helpful text about the different subcommands.")
def script_help(c: Any, argv: list[bytes]) -> Any:
    return _help(argv, [
        "DEBUG (YES|SYNC|NO)", "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL", "    Kill the currently executing Lua script.",
        "LOAD <script>", "    Load a script into the scripts cache without executing it.",
    ])


@command("script|debug", 3, "noscript", **SC, since="3.2.0", summary="Sets the debug mode of server-side Lua scripts.",
         complexity="O(1)", args="mode=(YES | SYNC | NO)")
def script_debug(c: Any, argv: list[bytes]) -> Any:
    """The client's next EVALs run under the Lua debugger (``dumpling.scripting.debugger``):
    YES in a forked copy of the server, SYNC in the server itself."""
    if c._out:  # clientHasPendingReplies: earlier replies of the same read are still here
        raise CommandError("SCRIPT DEBUG must be called outside a pipeline")
    mode = argv[2].lower()
    if mode == b"no":
        c.lua_debug = None
        return OK
    if mode in (b"yes", b"sync"):
        c.lua_debug = mode.decode()
        return OK
    raise CommandError("Use SCRIPT DEBUG YES/SYNC/NO")


@command("script|exists", -3, "noscript", **SC, since="2.6.0",
         summary="Determines whether server-side Lua scripts exist in the script cache.",
         complexity="O(N) with N being the number of scripts to check (so checking a single script is an O(1) "
                    "operation).",
         args="sha1...", tips="request_policy:all_shards response_policy:agg_logical_and")
def script_exists(c: Any, argv: list[bytes]) -> Any:
    scripts = c.server.scripting.scripts
    return [1 if a.decode("latin-1") in scripts else 0 for a in argv[2:]]


@command("script|flush", -2, "noscript", **SC, since="2.6.0", summary="Removes all server-side Lua scripts from the script cache.",
         complexity="O(N) with N being the number of scripts in cache",
         args="[flush-type=(ASYNC | SYNC)@6.2.0]", tips="request_policy:all_nodes response_policy:all_succeeded",
         history=(("6.2.0", "Added the `ASYNC` and `SYNC` flushing mode modifiers."),))
def script_flush(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise CommandError("SCRIPT FLUSH only support SYNC|ASYNC option")
    c.server.scripting.flush_scripts(lazy=_lazy_flush(c, argv))
    return OK


def _lazy_flush(c: Any, argv: list[bytes]) -> bool:
    """SCRIPT/FUNCTION FLUSH's mode: ASYNC, or no argument with lazyfree-lazy-user-flush."""
    if len(argv) == 3:
        return argv[2].lower() == b"async"
    return bool(c.server.config["lazyfree-lazy-user-flush"])


@command("script|kill", 2, "noscript allow_busy", **SC, since="2.6.0",
         summary="Terminates a server-side Lua script during execution.",
         tips="request_policy:all_shards response_policy:one_succeeded")
def script_kill(c: Any, argv: list[bytes]) -> Any:
    c.server.scripting.kill(eval_kill=True)
    return OK


@command("script|load", 3, "noscript stale", **SC, since="2.6.0",
         summary="Loads a server-side Lua script to the script cache.",
         complexity="O(N) with N being the length in bytes of the script body.",
         args="script", tips="request_policy:all_nodes response_policy:all_succeeded")
def script_load(c: Any, argv: list[bytes]) -> Any:
    script = c.server.scripting.create_script(argv[2], from_eval=False)
    return script.sha.encode()


# ----------------------------------------------------------------------------- FCALL


def _fcall(c: Any, argv: list[bytes], ro: bool) -> Any:
    server = c.server
    scripting: Scripting = server.scripting
    if server.monitors:
        server.feed_monitors(c, argv)
    function = scripting.libraries.find(argv[1])
    if function is None:
        raise CommandError("Function not found")
    numkeys = _SMALL_COUNTS.get(argv[2], -1)
    if not 0 <= numkeys <= len(argv) - 3:
        numkeys = _numkeys(argv, "Bad number of keys provided")
    reply = scripting.invoke(c, argv, numkeys, scripting.function_state, function.func, function.label,
                             function.flags, ro, owner=function)
    if type(reply) is ErrorReply:
        scripting.raise_error(reply)
    return reply


def fcall(c: Any, argv: list[bytes]) -> Any:
    return _fcall(c, argv, ro=False)


command("fcall", -3, _EVAL_FLAGS, **SC, since="7.0.0", summary="Invokes a function.",
        complexity="Depends on the function that is executed.", args="function numkeys:integer [key...] [arg...]",
        key_specs=_rw_spec(False, True), getkeys=_numkeys_keys)(script_command("fcall", fcall))


@command("fcall_ro", -3, _EVAL_RO_FLAGS, **SC, since="7.0.0", summary="Invokes a read-only function.",
         complexity="Depends on the function that is executed.",
         args="function numkeys:integer [key...] [arg...]", key_specs=_rw_spec(True, True), getkeys=_numkeys_keys)
def fcall_ro(c: Any, argv: list[bytes]) -> Any:
    return _fcall(c, argv, ro=True)


# ----------------------------------------------------------------------------- FUNCTION

container("function", group="scripting", since="7.0.0", summary="A container for function commands.")
_ALL_SHARDS = "request_policy:all_shards response_policy:all_succeeded"


@command("function|load", -3, "write denyoom noscript", **SC, since="7.0.0", summary="Creates a library.",
         complexity="O(1) (considering compilation time is redundant)", args="[REPLACE] function-code",
         tips=_ALL_SHARDS)
def function_load(c: Any, argv: list[bytes]) -> Any:
    replace = False
    pos = 2
    while pos < len(argv) - 1:
        arg = argv[pos]
        pos += 1
        if arg.lower() == b"replace":
            replace = True
            continue
        raise CommandError(f"Unknown option given: {arg.decode('utf-8', 'replace')}")
    if pos >= len(argv):
        raise CommandError("Function code is missing")
    name = c.server.scripting.libraries.load(argv[pos], replace)
    _dirty(c)
    return name


@command("function|delete", 3, "write noscript", **SC, since="7.0.0", summary="Deletes a library and its functions.",
         complexity="O(1)", args="library-name", tips=_ALL_SHARDS)
def function_delete(c: Any, argv: list[bytes]) -> Any:
    c.server.scripting.libraries.delete(argv[2])
    _dirty(c)
    return OK


@command("function|flush", -2, "write noscript", **SC, since="7.0.0", summary="Deletes all libraries and functions.",
         complexity="O(N) where N is the number of functions deleted", args="[flush-type=(ASYNC | SYNC)]",
         tips=_ALL_SHARDS)
def function_flush(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(_subcommand_syntax(argv))
    if len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
        raise CommandError("FUNCTION FLUSH only supports SYNC|ASYNC option")
    c.server.scripting.libraries.flush_and_reset(lazy=_lazy_flush(c, argv))
    _dirty(c)
    return OK


@command("function|kill", 2, "noscript allow_busy", **SC, since="7.0.0", summary="Terminates a function during execution.",
         tips="request_policy:all_shards response_policy:one_succeeded")
def function_kill(c: Any, argv: list[bytes]) -> Any:
    c.server.scripting.kill(eval_kill=False)
    return OK


@command("function|dump", 2, "noscript", **SC, since="7.0.0",
         summary="Dumps all libraries into a serialized binary payload.", complexity="O(N) where N is the number of functions")
def function_dump(c: Any, argv: list[bytes]) -> Any:
    return c.server.scripting.libraries.dump(c.server.config["dump-rdb-version"])


@command("function|restore", -3, "write denyoom noscript", **SC, since="7.0.0",
         summary="Restores all libraries from a payload.", complexity="O(N) where N is the number of functions on the payload",
         args="serialized-value [policy=(FLUSH | APPEND | REPLACE)]", tips=_ALL_SHARDS)
def function_restore(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 4:
        raise CommandError(_subcommand_syntax(argv))
    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in (b"append", b"replace", b"flush"):
            raise CommandError("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
    c.server.scripting.libraries.restore(argv[2], policy)
    _dirty(c)
    return OK


@command("function|list", -2, "noscript", **SC, since="7.0.0", summary="Returns information about all libraries.",
         complexity="O(N) where N is the number of functions", args="[LIBRARYNAME library-name-pattern] [WITHCODE]",
         tips="nondeterministic_output_order")
def function_list(c: Any, argv: list[bytes]) -> Any:
    with_code = False
    pattern: bytes | None = None
    i = 2
    while i < len(argv):
        arg = argv[i]
        if not with_code and arg.lower() == b"withcode":
            with_code = True
        elif pattern is None and arg.lower() == b"libraryname":
            if i >= len(argv) - 1:
                raise CommandError("library name argument was not given")
            i += 1
            pattern = argv[i]
        else:
            raise CommandError(f"Unknown argument {arg.decode('utf-8', 'replace')}")
        i += 1
    out = []
    for library in c.server.scripting.libraries.libraries.values():
        if pattern is not None and not glob_match(pattern, library.name):
            continue
        functions = []
        for function in library.functions.values():
            flags = [Status(name) for name, bit in FLAG_NAMES.items() if function.flags & bit]
            functions.append(Map([(b"name", function.name), (b"description", function.description),
                                  (b"flags", SetReply(flags))]))
        fields: list[tuple[bytes, Any]] = [(b"library_name", library.name), (b"engine", library.engine),
                                           (b"functions", functions)]
        if with_code:
            fields.append((b"library_code", library.code))
        out.append(Map(fields))
    return out


@command("function|stats", 2, "noscript allow_busy", **SC, since="7.0.0",
         summary="Returns information about a function during execution.",
         tips="nondeterministic_output request_policy:all_shards response_policy:special")
def function_stats(c: Any, argv: list[bytes]) -> Any:
    scripting: Scripting = c.server.scripting
    run = scripting.run
    if run is not None and run.eval_mode:
        raise CommandError("-" + scripting.busy_error())
    running: Any = None
    if run is not None:
        import time

        running = Map([(b"name", run.name.encode()), (b"command", list(run.caller_argv)),
                       (b"duration_ms", int((time.monotonic() - run.start) * 1000))])
    libraries = scripting.libraries
    engines = Map([(b"LUA", Map([(b"libraries_count", len(libraries.libraries)),
                                 (b"functions_count", len(libraries.functions))]))])
    return Map([(b"running_script", running), (b"engines", engines)])


@command("function|help", 2, "loading stale", **SC, since="7.0.0",
         summary="Returns helpful text about the different subcommands.")
def function_help(c: Any, argv: list[bytes]) -> Any:
    return _help(argv, [
        "LOAD [REPLACE] <FUNCTION CODE>", "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>", "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]", "    Return general information on all the libraries:",
        "    * Library name", "    * The engine used to run the Library", "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS", "    Return information about the current function running:", "    * Function name",
        "    * Command used to run the function", "    * Duration in MS that the function is running",
        "    If no function is running, return nil", "    In addition, returns a list of available engines.",
        "KILL", "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]", "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.", "    * SYNC: Synchronously flush the libraries.",
        "DUMP", "    Return a serialized payload representing the current libraries, can be restored using FUNCTION "
                "RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
    ])


def _dirty(c: Any) -> None:
    """A library change counts as a change of the dataset (persistence, replication)."""
    c.keyspace.dirty += 1


def _subcommand_syntax(argv: list[bytes]) -> str:
    sub = argv[1].decode("utf-8", "replace")
    return f"unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."

