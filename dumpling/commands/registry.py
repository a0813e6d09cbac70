"""The one command table.

Every command is declared once with ``@command(...)``: name, arity, flags, key
positions, group, summary, since, complexity and an argument grammar.  Dispatch,
arity and unknown-command errors, ``COMMAND``/``COMMAND INFO``/``COMMAND DOCS``/
``COMMAND LIST``/``COMMAND GETKEYS``, cluster slot checks and ACL categories all
read this table.

Argument grammar (``args=``), a compact form of redis.io's syntax lines that gives the
same argument tree as Redis's command JSON (COMMAND DOCS; redis-cli builds its typing hints
from it):
``key`` / ``name:type`` (type: string integer double key pattern unix-time), and
``name:type/text`` when redis-cli should show ``text`` instead of the name;
``TOKEN`` (a pure token; ``'='`` / ``''`` for tokens that are not words),
``TOKEN name:type`` (an argument introduced by a token), ``TOKEN ( ... )`` (a block or
one-of introduced by a token), ``[ ... ]`` optional, ``a | b`` one of, ``( ... )`` a block;
``label=`` before any item names it (``limit=``, ``change=CH``).  After an item:
``...`` may repeat (``[GET pattern]...``: the token too), ``@6.2.0`` the version that added
it, ``!2.8.12`` the version that deprecated it, ``#1`` the key spec it names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dumpling import accel

Handler = Callable[[Any, list[bytes]], Any]

# Order in which COMMAND INFO prints flags and ACL categories (fixed by Redis).
FLAG_ORDER = (
    "write readonly denyoom module admin pubsub noscript blocking loading stale skip_monitor "
    "skip_slowlog asking fast no_auth no_mandatory_keys no_async_loading no_multi movablekeys allow_busy"
).split()
ACL_ORDER = (
    "keyspace read write set sortedset list hash string bitmap hyperloglog geo stream pubsub "
    "admin fast slow blocking dangerous connection transaction scripting"
).split()
GROUP_ACL = {
    "string": "string",
    "list": "list",
    "set": "set",
    "sorted-set": "sortedset",
    "hash": "hash",
    "stream": "stream",
    "pubsub": "pubsub",
    "generic": "keyspace",
    "connection": "connection",
    "transactions": "transaction",
    "bitmap": "bitmap",
    "geo": "geo",
    "hyperloglog": "hyperloglog",
    "scripting": "scripting",
}
HIDDEN_FLAGS = {"may_replicate", "sentinel", "only_sentinel", "protected", "touches_arbitrary_keys"}


@dataclass
class Arg:
    name: str
    type: str
    token: str | None = None
    optional: bool = False
    multiple: bool = False
    children: list[Arg] = field(default_factory=list)
    key_spec_index: int | None = None
    display: str | None = None  # display_text when it is not the name
    since: str | None = None
    deprecated_since: str | None = None
    multiple_token: bool = False


class _PyCommandCounters:
    """Command's first base without the C accelerators (pure mode): its call counts start at these
    class defaults and become instance attributes at the first call."""

    calls: int = 0
    usec: int = 0


# The C base whose members hold each command's INFO commandstats calls and usec: the C request
# loop adds a batch's counts without writing the command's __dict__ (see _fastpath.c's Memo).
_CommandBase: Any = getattr(accel.fastpath, "CommandBase", None) or _PyCommandCounters


@dataclass
class Command(_CommandBase):
    name: str  # full lower-case name: "get", "config|get"
    handler: Handler | None
    arity: int
    flags: tuple[str, ...]
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    group: str = "generic"
    since: str = "1.0.0"
    summary: str = ""
    complexity: str = ""
    acl: tuple[str, ...] = ()
    args: list[Arg] = field(default_factory=list)
    key_specs: list[dict[str, Any]] = field(default_factory=list)
    getkeys: Callable[[list[bytes]], list[int]] | None = None
    subcommands: dict[bytes, Command] = field(default_factory=dict)
    doc_flags: tuple[str, ...] = ()
    deprecated_since: str | None = None
    replaced_by: str | None = None
    history: tuple[tuple[str, str], ...] = ()
    tips: tuple[str, ...] = ()
    events: tuple[str, ...] = ()  # keyspace events this command can fire (documentation)
    # filled at registration
    name_bytes: bytes = b""
    is_write: bool = False
    is_readonly: bool = False
    denyoom: bool = False
    no_auth: bool = False
    movable: bool = False
    skip_slowlog: bool = False
    hidden_from_monitor: bool = False
    noscript: bool = False
    may_replicate: bool = False
    allow_busy: bool = False
    # Runs on the C general path (``dumpling._fastpath``) when the connection and the server
    # are in the plain state: a data command that cannot change that state (see PLAIN_GROUPS).
    plain: bool = False
    # A C function the fast path may run instead of the handler (a capsule, dumpling/_native.h)
    # or None: set by the command's module when its extension provides one (hyperloglog).
    native: Any = None
    # statistics (INFO commandstats; calls and usec are the base's: _CommandBase)
    rejected_calls: int = 0
    failed_calls: int = 0
    # INFO latencystats / LATENCY HISTOGRAM: the calls' durations (dumpling.latencyhist), made at
    # the first call recorded while latency-tracking is on, dropped by CONFIG RESETSTAT
    latency: Any = None

    @property
    def container(self) -> str | None:
        return self.name.split("|", 1)[0] if "|" in self.name else None

    def key_indices(self, argv: list[bytes]) -> list[int]:
        """Positions of the key arguments in ``argv`` (raises ValueError if malformed)."""
        if self.getkeys is not None:
            return self.getkeys(argv)
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else len(argv) + self.last_key
        return list(range(self.first_key, min(last, len(argv) - 1) + 1, self.key_step))

    def acl_categories(self) -> list[str]:
        cats = set(self.acl)
        if not cats and self.group in GROUP_ACL and self.handler is not None:  # containers: only @slow
            cats.add(GROUP_ACL[self.group])
        flags = set(self.flags)
        if "write" in flags:
            cats.add("write")
        if "readonly" in flags and "scripting" not in cats:
            cats.add("read")
        if "admin" in flags:
            cats.update(("admin", "dangerous"))
        if "pubsub" in flags:
            cats.add("pubsub")
        if "fast" in flags:
            cats.add("fast")
        if "blocking" in flags:
            cats.add("blocking")
        if "fast" not in flags:
            cats.add("slow")
        return [c for c in ACL_ORDER if c in cats]


# The groups whose commands only read and write keys: they cannot change the connection's or
# the server's state (selected DB, MULTI, subscriptions, authentication, gates, config), so the C
# general path may run them back to back.  Scripts qualify: a run restores what it sets (in_exec,
# current_client) and commands that change such state are noscript.  NOT_PLAIN: data commands that do change such state.
PLAIN_GROUPS = frozenset(
    ("generic", "string", "bitmap", "list", "set", "hash", "sorted-set", "stream", "hyperloglog", "geo", "scripting")
)
# MIGRATE sets server.key_gate while it waits on its target; WAIT/WAITAOF (in the generic group
# as Redis documents them) wait on replication and AOF acknowledgements, not on keys.
NOT_PLAIN = frozenset(("migrate", "wait", "waitaof"))

TABLE: dict[bytes, Command] = {}
# Every command under its own name, whatever rename-command did to TABLE (Redis's
# ``orig_commands``: ACL rules name commands this way).
ORIGINAL: dict[bytes, Command] = {}


def _split_flags(flags: str) -> tuple[str, ...]:
    return tuple(flags.split())


def command(
    name: str,
    arity: int,
    flags: str = "",
    keys: tuple[int, int, int] = (0, 0, 0),
    *,
    group: str = "generic",
    since: str = "1.0.0",
    summary: str = "",
    complexity: str = "O(1)",
    args: str = "",
    acl: str = "",
    getkeys: Callable[[list[bytes]], list[int]] | None = None,
    key_specs: list[dict[str, Any]] | None = None,
    key_flags: str | None = None,
    doc_flags: str = "",
    deprecated_since: str | None = None,
    replaced_by: str | None = None,
    history: tuple[tuple[str, str], ...] = (),
    tips: str = "",
    events: str = "",
) -> Callable[[Handler], Handler]:
    """Register a command (or ``container|sub`` subcommand) in the table."""

    def register(handler: Handler) -> Handler:
        flag_tuple = _split_flags(flags)
        cmd = Command(
            name=name,
            handler=handler,
            arity=arity,
            flags=flag_tuple,
            first_key=keys[0],
            last_key=keys[1],
            key_step=keys[2],
            group=group,
            since=since,
            summary=summary,
            complexity=complexity,
            acl=_split_flags(acl),
            args=parse_args(args),
            getkeys=getkeys,
            doc_flags=_split_flags(doc_flags),
            deprecated_since=deprecated_since,
            replaced_by=replaced_by,
            history=history,
            tips=_split_flags(tips),
            events=_split_flags(events),
        )
        _finish(cmd, key_specs, key_flags)
        add(cmd)
        return handler

    return register


def container(name: str, *, group: str, since: str, summary: str, complexity: str = "Depends on subcommand.") -> None:
    """Declare a container command such as CONFIG or CLIENT (its subcommands register separately)."""
    cmd = TABLE.get(name.encode())
    if cmd is None:
        cmd = Command(name=name, handler=None, arity=-2, flags=())
        TABLE[name.encode()] = cmd
        ORIGINAL[name.encode()] = cmd
    cmd.group, cmd.since, cmd.summary, cmd.complexity = group, since, summary, complexity
    cmd.name_bytes = name.encode()


def add(cmd: Command) -> None:
    cmd.name_bytes = cmd.name.encode()
    parent_name = cmd.container
    if parent_name is None:
        existing = TABLE.get(cmd.name_bytes)
        if existing is not None and existing.subcommands:
            raise ValueError(f"{cmd.name} is a container")
        TABLE[cmd.name_bytes] = cmd
        ORIGINAL[cmd.name_bytes] = cmd
        return
    parent = TABLE.get(parent_name.encode())
    if parent is None:
        container(parent_name, group=cmd.group, since=cmd.since, summary="")
        parent = TABLE[parent_name.encode()]
    parent.subcommands[cmd.name.split("|", 1)[1].encode()] = cmd


def rename(renames: list[tuple[bytes, bytes]]) -> None:
    """Apply ``rename-command`` directives (lower-case names, already checked by the config
    loader): the command leaves TABLE under its name and, unless the new name is empty, comes
    back under the new one.  The Command keeps its own name, so COMMAND INFO/LIST/DOCS show it
    as Redis shows a renamed command (by its real name).  The table starts over from the real
    names, so the renames of one configuration never leak into another's."""
    if len(TABLE) != len(ORIGINAL) or any(TABLE.get(name) is not cmd for name, cmd in ORIGINAL.items()):
        TABLE.clear()
        TABLE.update(ORIGINAL)
    for old, new in renames:
        cmd = TABLE.pop(old)
        if new:
            TABLE[new] = cmd


def _finish(cmd: Command, key_specs: list[dict[str, Any]] | None, key_flags: str | None) -> None:
    flags = set(cmd.flags)
    cmd.is_write = "write" in flags
    cmd.is_readonly = "readonly" in flags
    cmd.denyoom = "denyoom" in flags
    cmd.no_auth = "no_auth" in flags
    cmd.skip_slowlog = "skip_slowlog" in flags
    cmd.hidden_from_monitor = bool(flags & {"admin", "skip_monitor"})
    cmd.noscript = "noscript" in flags
    cmd.may_replicate = "may_replicate" in flags
    cmd.allow_busy = "allow_busy" in flags
    cmd.plain = cmd.group in PLAIN_GROUPS and cmd.name not in NOT_PLAIN and "admin" not in flags
    if key_specs is not None:
        cmd.key_specs = key_specs
    elif cmd.first_key:
        kf = key_flags or ("RW update" if cmd.is_write else "RO access")
        limit = 0
        lastkey = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
        cmd.key_specs = [
            {
                "flags": kf.split(),
                "begin_search": {"type": "index", "spec": {"index": cmd.first_key}},
                "find_keys": {"type": "range", "spec": {"lastkey": lastkey, "keystep": cmd.key_step, "limit": limit}},
            }
        ]
    cmd.movable = cmd.getkeys is not None
    # Key arguments point at the key specs in order; "#n" in the grammar sets one explicitly
    # (SORT's BY/GET patterns name keys too) and the ones after it count on from there.
    next_spec = 0
    for a in _walk(cmd.args):
        if a.key_spec_index is not None:
            next_spec = a.key_spec_index + 1
        elif a.type == "key":
            a.key_spec_index = min(next_spec, max(len(cmd.key_specs) - 1, 0))
            next_spec += 1


def _walk(args: list[Arg]):
    for a in args:
        yield a
        yield from _walk(a.children)


def info_flags(cmd: Command) -> list[str]:
    flags = set(cmd.flags) - HIDDEN_FLAGS
    if cmd.movable:
        flags.add("movablekeys")
    return [f for f in FLAG_ORDER if f in flags]


# ----------------------------------------------------------------------------- argument grammar

_TOKEN_RE = re.compile(
    r"""\s*(\.\.\.|[\[\]()|]|[@!#][0-9.]+|'[^']*'|[a-z0-9_\-]+=(?=\S)|(?:[^\s\[\]()|.@!#']|\.(?!\.\.))+)"""
)
_TYPES = {"string", "integer", "double", "key", "pattern", "unix-time", "pure-token", "oneof", "block"}
_SUFFIX = ("...", "@", "!", "#")


def parse_args(text: str) -> list[Arg]:
    """The argument tree of a grammar string (see the module docstring), shaped as Redis's
    command JSON shapes it, so COMMAND DOCS and redis-cli's hints read the same tree."""
    tokens = [t for t in _TOKEN_RE.findall(text) if t]
    pos = 0

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""

    def is_token_word(word: str) -> bool:
        if word.startswith("'"):
            return True
        return word.upper() == word and any(c.isalpha() for c in word) and ":" not in word

    def is_simple(word: str) -> bool:
        return bool(word) and word not in "[]()|" and not word.startswith(_SUFFIX) and not word.endswith("=") \
            and not is_token_word(word)

    def parse_seq(stop: set[str]) -> list[Arg]:
        nonlocal pos
        items: list[Arg] = []
        alternatives: list[list[Arg]] = []
        while pos < len(tokens) and tokens[pos] not in stop:
            if tokens[pos] == "|":
                alternatives.append(items)
                items = []
                pos += 1
                continue
            items.append(parse_item())
        if alternatives:
            alternatives.append(items)
            choices = [alt[0] if len(alt) == 1 else Arg(_block_name(alt), "block", children=alt) for alt in alternatives]
            return [Arg("-".join(c.name for c in choices)[:40], "oneof", children=choices)]
        return items

    def parse_group(label: str | None) -> Arg:
        nonlocal pos
        opener = tokens[pos]
        pos += 1
        inner = parse_seq({"]" if opener == "[" else ")"})
        pos += 1
        if len(inner) == 1 and (label is None or inner[0].type == "oneof"):
            arg = inner[0]
        else:
            arg = Arg(label or _block_name(inner), "block", children=inner)
        arg.optional = arg.optional or opener == "["
        return arg

    def parse_item() -> Arg:
        nonlocal pos
        label = None
        if tokens[pos].endswith("=") and len(tokens[pos]) > 1:
            label = tokens[pos][:-1]
            pos += 1
        tok = tokens[pos]
        grouped = tok in ("[", "(")
        if grouped:
            arg = parse_group(label)
        elif is_token_word(tok):
            token = tok[1:-1] if tok.startswith("'") else tok
            pos += 1
            if peek() == "(" or (peek().endswith("=") and pos + 1 < len(tokens) and tokens[pos + 1] == "("):
                # A token introducing a block or a one-of ("LIMIT (offset count)", "AGGREGATE
                # aggregate=(SUM|MIN|MAX)"): the group carries it, named after it unless labelled,
                # and a repeated group repeats the token ("[CONFIG (name value)...]").
                labelled = peek() != "("
                arg = parse_item()
                arg.token = token
                if not labelled:
                    arg.name = token.lower()
                arg.multiple_token = arg.multiple
                return arg
            elif is_simple(peek()):
                arg = _simple(peek())
                arg.token = token
                pos += 1
            else:
                arg = Arg(token.lower(), "pure-token", token=token)
        else:
            arg = _simple(tok)
            pos += 1
        if label is not None:
            arg.name = label
        while pos < len(tokens) and tokens[pos].startswith(_SUFFIX):
            suffix = tokens[pos]
            pos += 1
            if suffix == "...":
                arg.multiple = True
                # "[GET pattern]...": the token comes again before every repetition.
                arg.multiple_token = grouped and arg.token is not None
            elif suffix[0] == "@":
                arg.since = suffix[1:]
            elif suffix[0] == "!":
                arg.deprecated_since = suffix[1:]
            else:
                arg.key_spec_index = int(suffix[1:])
        return arg

    return parse_seq(set())


def _simple(word: str) -> Arg:
    """``name``, ``name:type`` or ``name:type/display text`` (the text redis-cli shows)."""
    word, _, display = word.partition("/")
    if ":" in word:
        name, typ = word.split(":", 1)
    else:
        name, typ = word, "key" if word in ("key", "source", "destination") else "string"
    if typ not in _TYPES:
        raise ValueError(f"unknown argument type {typ!r}")
    return Arg(name, typ, display=display or None)


def _block_name(args: list[Arg]) -> str:
    return "-".join(a.name for a in args)[:40] or "block"
