"""MODULE: dumpling loads no Redis modules (they are C shared objects written against
Redis's own internals).  MODULE LIST answers an empty list; LOAD, LOADEX and UNLOAD are
refused exactly as Redis refuses a module it cannot load or does not have, after the same
``enable-module-command`` check, with one log line saying why.

Must not: open, read or execute the file it is given.
"""

from __future__ import annotations

from typing import Any

from dumpling.commands.common import help_header, protected_action_allowed
from dumpling.commands.registry import command, container
from dumpling.errors import CommandError
from dumpling.protocol import Status

_MOD = {"group": "server"}
_PROTECTED = "admin noscript no_async_loading protected"

container("module", group="server", since="4.0.0", summary="A container for module commands.")


def _check_enabled(c: Any) -> None:
    if protected_action_allowed(c, c.server.config["enable-module-command"]):
        return
    raise CommandError(
        "MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from "
        "a local connection, otherwise you need to set this option in the configuration file, and then restart "
        "the server."
    )


def _refuse_load(c: Any, path: bytes) -> None:
    c.server.log("warning", f"Module {path.decode('utf-8', 'replace')} failed to load: "
                 "dumpling does not load Redis modules")
    raise CommandError("Error loading the extension. Please check the server logs.")


@command("module|list", 2, "admin noscript", **_MOD, since="4.0.0", summary="Returns all loaded modules.",
         complexity="O(N) where N is the number of loaded modules.", tips="nondeterministic_output_order")
def module_list(c: Any, argv: list[bytes]) -> Any:
    return []


@command("module|load", -3, _PROTECTED, **_MOD, since="4.0.0", summary="Loads a module.", complexity="O(1)",
         args="path:string [arg:string...]")
def module_load(c: Any, argv: list[bytes]) -> Any:
    _check_enabled(c)
    _refuse_load(c, argv[2])


@command("module|loadex", -3, _PROTECTED, **_MOD, since="7.0.0",
         summary="Loads a module using extended parameters.", complexity="O(1)",
         args="path [CONFIG configs=(name value)...] [ARGS args...]")
def module_loadex(c: Any, argv: list[bytes]) -> Any:
    _check_enabled(c)
    _refuse_load(c, argv[2])


@command("module|unload", 3, _PROTECTED, **_MOD, since="4.0.0", summary="Unloads a module.", complexity="O(1)",
         args="name:string")
def module_unload(c: Any, argv: list[bytes]) -> Any:
    _check_enabled(c)
    raise CommandError("Error unloading module: no such module with that name")


@command("module|help", 2, "loading stale", **_MOD, since="5.0.0",
         summary="Returns helpful text about the different subcommands.", complexity="O(1)")
def module_help(c: Any, argv: list[bytes]) -> Any:
    lines = [
        help_header(argv),
        "LIST", "    Return a list of loaded modules.",
        "LOAD <path> [<arg> ...]", "    Load a module library from <path>, passing to it any optional arguments.",
        "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
        "    Load a module library from <path>, while passing it module configurations and optional arguments.",
        "UNLOAD <name>", "    Unload a module.",
        "HELP", "    Print this help.",
    ]
    return [Status(line) for line in lines]
