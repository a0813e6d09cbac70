"""COMMAND and its subcommands, all rendered from the one command table."""

from __future__ import annotations

from typing import Any

from dumpling import acl
from dumpling.commands.common import glob_match, help_header
from dumpling.commands.registry import ACL_ORDER, TABLE, Arg, Command, command, container, info_flags
from dumpling.errors import SYNTAX, CommandError
from dumpling.protocol import Map, SetReply, Status

SRV = {"group": "server"}
KEYSPEC_FLAG_ORDER = ("RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete",
                      "variable_flags")


def keyspec_flags(spec: dict[str, Any]) -> list[str]:
    """A key spec's flags in Redis's print order (RO/RW/OW/RM upper-case, the rest lower-case)."""
    given = {f.upper() if f.upper() in ("RO", "RW", "OW", "RM") else f.lower() for f in spec["flags"]}
    return [f for f in KEYSPEC_FLAG_ORDER if f in given]


def _key_spec_reply(spec: dict[str, Any]) -> Map:
    pairs: list[tuple[bytes, Any]] = []
    if "notes" in spec:
        pairs.append((b"notes", spec["notes"].encode()))
    pairs.append((b"flags", SetReply(Status(f) for f in keyspec_flags(spec))))
    for part in ("begin_search", "find_keys"):
        inner = spec[part]
        pairs.append(
            (
                part.encode(),
                Map(
                    [
                        (b"type", inner["type"].encode()),
                        (b"spec", Map((k.encode(), v.encode() if isinstance(v, str) else v)
                                      for k, v in inner["spec"].items())),
                    ]
                ),
            )
        )
    return Map(pairs)


def command_info(cmd: Command) -> list[Any]:
    return [
        cmd.name.encode(),
        cmd.arity,
        SetReply(Status(f) for f in info_flags(cmd)),
        cmd.first_key,
        cmd.last_key,
        cmd.key_step,
        SetReply(Status("@" + cat) for cat in cmd.acl_categories()),
        SetReply(t.encode() for t in cmd.tips),
        SetReply(_key_spec_reply(s) for s in cmd.key_specs),
        [command_info(sub) for sub in cmd.subcommands.values()] if cmd.subcommands else SetReply([]),
    ]


def _arg_reply(arg: Arg) -> Map:
    """One argument as ``addReplyCommandArgList`` gives it (its keys in that order)."""
    pairs: list[tuple[bytes, Any]] = [(b"name", arg.name.encode()), (b"type", arg.type.encode())]
    if arg.type not in ("oneof", "block"):
        pairs.append((b"display_text", (arg.display or arg.name).encode()))
    if arg.key_spec_index is not None:
        pairs.append((b"key_spec_index", arg.key_spec_index))
    if arg.token is not None:
        pairs.append((b"token", arg.token.encode()))
    if arg.since is not None:
        pairs.append((b"since", arg.since.encode()))
    if arg.deprecated_since is not None:
        pairs.append((b"deprecated_since", arg.deprecated_since.encode()))
    flags = [f for f, on in (("optional", arg.optional), ("multiple", arg.multiple),
                             ("multiple_token", arg.multiple_token)) if on]
    if flags:
        pairs.append((b"flags", SetReply(Status(f) for f in flags)))
    if arg.children:
        pairs.append((b"arguments", [_arg_reply(child) for child in arg.children]))
    return Map(pairs)


def command_docs(cmd: Command) -> Map:
    pairs: list[tuple[bytes, Any]] = []
    if cmd.summary:
        pairs.append((b"summary", cmd.summary.encode()))
    pairs.append((b"since", cmd.since.encode()))
    pairs.append((b"group", cmd.group.encode()))
    if cmd.complexity:
        pairs.append((b"complexity", cmd.complexity.encode()))
    if cmd.doc_flags:
        pairs.append((b"doc_flags", SetReply(Status(f) for f in cmd.doc_flags)))
    if cmd.deprecated_since:
        pairs.append((b"deprecated_since", cmd.deprecated_since.encode()))
    if cmd.replaced_by:
        pairs.append((b"replaced_by", cmd.replaced_by.encode()))
    if cmd.history:
        pairs.append((b"history", SetReply([v.encode(), t.encode()] for v, t in cmd.history)))
    if cmd.args:
        pairs.append((b"arguments", [_arg_reply(a) for a in cmd.args]))
    if cmd.subcommands:
        pairs.append((b"subcommands", Map((sub.name.encode(), command_docs(sub)) for sub in cmd.subcommands.values())))
    return Map(pairs)


def find_command(name: bytes) -> Command | None:
    """Resolve ``name`` or ``container|sub`` (case-insensitive)."""
    low = name.lower()
    if b"|" in low:
        parent, _, sub = low.partition(b"|")
        cmd = TABLE.get(parent)
        return cmd.subcommands.get(sub) if cmd is not None else None
    return TABLE.get(low)


container("command", group="server", since="2.8.13", summary="Returns detailed information about all commands.",
          complexity="O(N) where N is the total number of Redis commands")
TABLE[b"command"].flags = ("loading", "stale")
TABLE[b"command"].acl = ("connection",)
TABLE[b"command"].tips = ("nondeterministic_output_order",)
TABLE[b"command"].arity = -1


def _command_all(c: Any, argv: list[bytes]) -> Any:
    return [command_info(cmd) for cmd in TABLE.values()]


TABLE[b"command"].handler = _command_all


@command("command|count", 2, "loading stale", **SRV, since="2.8.13", summary="Returns a count of commands.",
         acl="connection")
def command_count(c: Any, argv: list[bytes]) -> Any:
    return len(TABLE)


@command("command|info", -2, "loading stale", **SRV, since="2.8.13",
         summary="Returns information about one, multiple or all commands.", args="[command-name...]",
         acl="connection", complexity="O(N) where N is the number of commands to look up",
         tips="nondeterministic_output_order",
         history=(("7.0.0", "Allowed to be called with no argument to get info on all commands."),))
def command_info_cmd(c: Any, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return [command_info(cmd) for cmd in TABLE.values()]
    out = []
    for name in argv[2:]:
        cmd = find_command(name)
        out.append(command_info(cmd) if cmd is not None else None)
    return out


@command("command|docs", -2, "loading stale", **SRV, since="7.0.0",
         summary="Returns documentary information about one, multiple or all commands.", args="[command-name...]",
         acl="connection", complexity="O(N) where N is the number of commands to look up",
         tips="nondeterministic_output_order")
def command_docs_cmd(c: Any, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return Map((cmd.name.encode(), command_docs(cmd)) for cmd in TABLE.values())
    pairs = []
    for name in argv[2:]:
        cmd = find_command(name)
        if cmd is not None:
            pairs.append((cmd.name.encode(), command_docs(cmd)))
    return Map(pairs)


@command("command|list", -2, "loading stale", **SRV, since="7.0.0",
         summary="Returns a list of command names.",
         args="[FILTERBY (MODULE module-name | ACLCAT category | PATTERN pattern:pattern)]",
         acl="connection", complexity="O(N) where N is the total number of Redis commands",
         tips="nondeterministic_output_order")
def command_list(c: Any, argv: list[bytes]) -> Any:
    names: list[Command] = []
    for cmd in TABLE.values():
        names.append(cmd)
        names.extend(cmd.subcommands.values())
    if len(argv) == 2:
        return [cmd.name.encode() for cmd in names]
    if len(argv) != 5 or argv[2].lower() != b"filterby":
        raise CommandError(SYNTAX)
    kind, value = argv[3].lower(), argv[4]
    if kind == b"module":
        return []
    if kind == b"aclcat":
        cat = value.lower().decode("utf-8", "replace")
        if cat not in ACL_ORDER:
            return []
        return [cmd.name.encode() for cmd in names if cat in cmd.acl_categories()]
    if kind == b"pattern":
        return [cmd.name.encode() for cmd in names if glob_match(value, cmd.name.encode(), nocase=True)]
    raise CommandError(SYNTAX)


def _getkeys(argv: list[bytes]) -> tuple[Command, list[int]]:
    target = argv[2:]
    cmd = TABLE.get(target[0].lower())
    if cmd is None:
        raise CommandError("Invalid command specified")
    if cmd.subcommands and len(target) > 1:
        sub = cmd.subcommands.get(target[1].lower())
        if sub is not None:
            cmd = sub
    if (cmd.arity > 0 and len(target) != cmd.arity) or len(target) < -cmd.arity:
        raise CommandError("Invalid number of arguments specified for command")
    if not cmd.key_specs and cmd.getkeys is None:
        raise CommandError("The command has no key arguments")
    try:
        indices = cmd.key_indices(target)
    except (ValueError, IndexError):
        if "no_mandatory_keys" in cmd.flags:
            return cmd, []
        raise CommandError("Invalid arguments specified for command") from None
    if not indices and "no_mandatory_keys" not in cmd.flags:
        raise CommandError("Invalid arguments specified for command")
    return cmd, indices


@command("command|getkeys", -3, "loading stale", **SRV, since="2.8.13",
         summary="Extracts the key names from an arbitrary command.", args="command:string [arg:string...]",
         acl="connection", complexity="O(N) where N is the number of arguments to the command")
def command_getkeys(c: Any, argv: list[bytes]) -> Any:
    _, indices = _getkeys(argv)
    target = argv[2:]
    return [target[i] for i in indices]


@command("command|getkeysandflags", -3, "loading stale", **SRV, since="7.0.0",
         summary="Extracts the key names and access flags for an arbitrary command.",
         args="command:string [arg:string...]", acl="connection",
         complexity="O(N) where N is the number of arguments to the command")
def command_getkeysandflags(c: Any, argv: list[bytes]) -> Any:
    cmd, indices = _getkeys(argv)
    target = argv[2:]
    variable = acl.VARIABLE_KEY_FLAGS.get(cmd.name)
    if variable is not None and indices:
        flags_of_keys = zip(indices, variable(target, indices), strict=True)
        return [[target[i], SetReply(Status(f) for f in flags)] for i, flags in flags_of_keys]
    out = []
    for n, i in enumerate(indices):
        spec = cmd.key_specs[min(n, len(cmd.key_specs) - 1)] if cmd.key_specs else {"flags": []}
        out.append([target[i], SetReply(Status(f) for f in keyspec_flags(spec))])
    return out


@command("command|help", 2, "loading stale", **SRV, since="5.0.0",
         summary="Returns helpful text about the different subcommands.", acl="connection")
def command_help(c: Any, argv: list[bytes]) -> Any:
    lines = [
        help_header(argv),
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Print this help.",
    ]
    return [Status(line) for line in lines]
