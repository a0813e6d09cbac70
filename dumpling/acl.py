"""ACL users: Redis 7.4's rule language, permission checks and the security log.

Pure state and rules, no I/O and no sockets: a ``User`` is a set of flags, password
hashes and selectors (the root selector first); a ``Selector`` holds the commands it
allows (by full name, ``config|get``), first-argument exceptions, key patterns with
read/write flags and channel patterns, plus the ``command_rules`` text that GETUSER and
LIST print back, kept as Redis keeps it (``ACLUpdateCommandRules``).  ``Acl`` is the
server's registry of users and the ACL LOG.  Categories come from the one command table
(``Command.acl_categories``).  The ACL commands live in ``dumpling.commands.acl``; the
dispatcher calls ``Acl.check_command`` only for clients whose user is restricted
(``client.unrestricted`` is False), so the usual default user costs one attribute test.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dumpling.commands.registry import ACL_ORDER, ORIGINAL, Command
from dumpling.protocol import split_args
from dumpling.stringmatch import stringmatch

if TYPE_CHECKING:
    from dumpling.server import Client

READ = 1
WRITE = 2
ALL_PERMS = READ | WRITE

# ACLCheckAllUserCommandPerm results (Redis's ACL_DENIED_* values: the larger wins).
OK = 0
DENIED_CMD = 1
DENIED_KEY = 2
DENIED_AUTH = 3
DENIED_CHANNEL = 4

REASONS = {DENIED_CMD: "command", DENIED_KEY: "key", DENIED_CHANNEL: "channel", DENIED_AUTH: "auth"}
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."

# errno-style failures of one rule, with ACLSetUserStringError's texts.
ERR_WRONG = "Wrong format"
ERR_ENOENT = "Unknown command or category name in ACL"
ERR_EINVAL = "Syntax error"
ERR_EEXIST = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any "
              "effect. Try 'resetkeys' to start with an empty list of patterns")
ERR_EISDIR = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have "
              "any effect. Try 'resetchannels' to start with an empty list of channels")
ERR_ENODEV = "The password you are trying to remove from the user does not exist"
ERR_EBADMSG = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
ERR_EALREADY = "Duplicate user found. A user can only be defined once in config files"
ERR_ECHILD = "Allowing first-arg of a subcommand is not supported"

# Commands that name channels (Redis's commands_with_channels): (first arg, last arg or -1, pattern?).
# Only publish/subscribe forms are checked; the UNSUBSCRIBE family never is.
CHANNEL_ARGS: dict[str, tuple[int, int, bool]] = {
    "subscribe": (1, -1, False),
    "ssubscribe": (1, -1, False),
    "psubscribe": (1, -1, True),
    "publish": (1, 1, False),
    "spublish": (1, 1, False),
}
_SPACES = frozenset(b" \t\n\v\f\r\0")


class RuleError(Exception):
    """One rule that cannot be applied; ``reason`` is Redis's text for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def has_spaces(data: bytes) -> bool:
    """ACLStringHasSpaces: whitespace or NUL anywhere."""
    return any(b in _SPACES for b in data)


def hash_password(password: bytes) -> str:
    return hashlib.sha256(password).hexdigest()



def _rule_digest(op: bytes, plain: bool) -> str:
    """The SHA-256 hex of a ``>pass``/``<pass`` rule's password, or a ``#hash``/``!hash`` rule's
    own hash once it is checked to be one."""
    if plain:
        return hash_password(op[1:])
    if not _valid_hash(op[1:]):
        raise RuleError(ERR_EBADMSG)
    return op[1:].decode()

def _valid_hash(text: bytes) -> bool:
    return len(text) == 64 and all(c in b"0123456789abcdef" for c in text)


# -- the command table seen by ACL --------------------------------------------------------------

_categories: dict[str, frozenset[str]] = {}


def command_categories(cmd: Command) -> frozenset[str]:
    """The ACL categories of a (sub)command, from the command table (cached)."""
    cats = _categories.get(cmd.name)
    if cats is None:
        cats = _categories[cmd.name] = frozenset(cmd.acl_categories())
    return cats


def all_commands() -> Iterator[Command]:
    for cmd in ORIGINAL.values():  # Redis's orig_commands: rules name commands by their real names
        yield cmd
        yield from cmd.subcommands.values()


def lookup(name: bytes) -> Command | None:
    """ACLLookupCommand: ``cmd`` or ``container|sub`` (lower or upper case)."""
    parts = name.lower().split(b"|")
    if len(parts) > 2:
        return None
    cmd = ORIGINAL.get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    return cmd.subcommands.get(parts[1]) if cmd.subcommands else None


def category_commands(category: str) -> list[Command]:
    return [cmd for cmd in all_commands() if category in command_categories(cmd)]


# -- selectors ------------------------------------------------------------------------------------


class Selector:
    """One set of permissions (the root one of a user, or a ``(...)`` selector)."""

    __slots__ = ("allkeys", "allchannels", "allcommands", "future", "allowed", "firstargs", "patterns", "channels",
                 "rules")

    def __init__(self, allchannels: bool = False) -> None:
        self.allkeys = False
        self.allchannels = allchannels
        self.allcommands = False
        self.future = False  # Redis's reserved "future commands" bit: set by +@all only
        self.allowed: set[str] = set()
        self.firstargs: dict[str, list[bytes]] = {}
        self.patterns: list[list[Any]] = []  # [pattern, READ|WRITE flags]
        self.channels: list[bytes] = []
        self.rules = b""  # command_rules: "+get -@string ..." in the order given

    def copy(self) -> Selector:
        s = Selector.__new__(Selector)
        s.allkeys, s.allchannels, s.allcommands, s.future = self.allkeys, self.allchannels, self.allcommands, self.future
        s.allowed = set(self.allowed)
        s.firstargs = {k: list(v) for k, v in self.firstargs.items()}
        s.patterns = [list(p) for p in self.patterns]
        s.channels = list(self.channels)
        s.rules = self.rules
        return s

    @property
    def unrestricted(self) -> bool:
        return self.allcommands and self.allkeys and self.allchannels

    # -- rules ----------------------------------------------------------------------------------

    def apply(self, op: bytes) -> None:
        """ACLSetSelector: apply one rule; raises RuleError."""
        low = op.lower()
        if low in (b"allkeys", b"~*"):
            self.allkeys = True
            self.patterns = []
        elif low == b"resetkeys":
            self.allkeys = False
            self.patterns = []
        elif low in (b"allchannels", b"&*"):
            self.allchannels = True
            self.channels = []
        elif low == b"resetchannels":
            self.allchannels = False
            self.channels = []
        elif low in (b"allcommands", b"+@all"):
            self.allowed = {cmd.name for cmd in all_commands()}
            self.allcommands = True
            self.future = True
            self.rules = b""
            self.firstargs = {}
        elif low in (b"nocommands", b"-@all"):
            self.allowed = set()
            self.allcommands = False
            self.future = False
            self.rules = b""
            self.firstargs = {}
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise RuleError(ERR_EISDIR)
            pattern = op[1:]
            if has_spaces(pattern):
                raise RuleError(ERR_EINVAL)
            if pattern not in self.channels:
                self.channels.append(pattern)
            self.allchannels = False
        elif op[:1] == b"+" and op[1:2] != b"@":
            self._allow(op[1:])
        elif op[:1] == b"-" and op[1:2] != b"@":
            cmd = lookup(op[1:])
            if cmd is None:
                raise RuleError(ERR_ENOENT)
            self._change(cmd, False)
            self._update_rules(cmd.name.encode(), False)
        elif op[:1] in (b"+", b"-") and op[1:2] == b"@":
            category = op[2:].lower().decode("latin-1")
            if category not in ACL_ORDER:
                raise RuleError(ERR_ENOENT)
            allow = op[:1] == b"+"
            self._update_rules(op[1:], allow)
            for cmd in ORIGINAL.values():
                if category in command_categories(cmd):
                    self._change(cmd, allow)
                for sub in cmd.subcommands.values():
                    if category in command_categories(sub):
                        self._change(sub, allow)
        else:
            raise RuleError(ERR_EINVAL)

    def _add_key_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise RuleError(ERR_EEXIST)
        flags = 0
        offset = 1
        if op[:1] == b"%":
            while offset < len(op):
                c = op[offset:offset + 1].upper()
                if c == b"R" and not flags & READ:
                    flags |= READ
                elif c == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif c == b"~" and flags:
                    offset += 1
                    break
                else:
                    raise RuleError(ERR_EINVAL)
                offset += 1
        else:
            flags = ALL_PERMS
        pattern = op[offset:]
        if has_spaces(pattern):
            raise RuleError(ERR_EINVAL)
        for existing in self.patterns:
            if existing[0] == pattern:
                existing[1] |= flags
                break
        else:
            self.patterns.append([pattern, flags])
        self.allkeys = False

    def _allow(self, name: bytes) -> None:
        if b"|" not in name:
            cmd = lookup(name)
            if cmd is None:
                raise RuleError(ERR_ENOENT)
            self._change(cmd, True)
            self._update_rules(cmd.name.encode(), True)
            return
        base, sub = name.rsplit(b"|", 1)
        cmd = lookup(base)
        if cmd is None:
            raise RuleError(ERR_ENOENT)
        if cmd.container is not None:
            raise RuleError(ERR_ECHILD)
        if not sub:
            raise RuleError(ERR_EINVAL)
        if cmd.subcommands:
            subcmd = lookup(name)
            if subcmd is None:
                raise RuleError(ERR_ENOENT)
            self._change(subcmd, True)
        else:
            # +select|0: an allowed first argument of an otherwise blocked command.
            allowed = self.firstargs.setdefault(cmd.name, [])
            if all(a.lower() != sub.lower() for a in allowed):
                allowed.append(sub)
        self._update_rules(name, True)

    def _set_bit(self, name: str, allow: bool) -> None:
        if allow:
            self.allowed.add(name)
        else:
            self.allowed.discard(name)
            self.allcommands = False

    def _change(self, cmd: Command, allow: bool) -> None:
        """ACLChangeSelectorPerm: a command (a container: with all its subcommands)."""
        self._set_bit(cmd.name, allow)
        self.firstargs.pop(cmd.name, None)
        for sub in cmd.subcommands.values():
            self._set_bit(sub.name, allow)

    def _update_rules(self, rule: bytes, allow: bool) -> None:
        """ACLUpdateCommandRules: drop earlier rules for the same command (or its
        subcommands), then append this one."""
        rule = rule.lower()
        kept = [r for r in self.rules.split(b" ") if r and not (r[1:] == rule or r[1:].startswith(rule + b"|"))]
        kept.append((b"+" if allow else b"-") + rule)
        self.rules = b" ".join(kept)

    # -- description ------------------------------------------------------------------------------

    def command_rules(self) -> bytes:
        rules = b"+@all" if self.future else b"-@all"
        return rules + b" " + self.rules if self.rules else rules

    def keys_text(self) -> bytes:
        if self.allkeys:
            return b"~*"
        return b" ".join(pattern_string(p, f) for p, f in self.patterns)

    def channels_text(self) -> bytes:
        if self.allchannels:
            return b"&*"
        return b" ".join(b"&" + c for c in self.channels)

    def describe(self) -> bytes:
        """ACLDescribeSelector."""
        out = b""
        if self.allkeys:
            out += b"~* "
        else:
            for p, f in self.patterns:
                out += pattern_string(p, f) + b" "
        if self.allchannels:
            out += b"&* "
        else:
            out += b"resetchannels "
            for c in self.channels:
                out += b"&" + c + b" "
        return out + self.command_rules()

    # -- checks -----------------------------------------------------------------------------------

    def may_run(self, cmd: Command, argv: list[bytes]) -> bool:
        if self.allcommands or cmd.no_auth or cmd.name in self.allowed:
            return True
        firstargs = self.firstargs.get(cmd.name)
        if not firstargs or len(argv) < 2:
            return False
        arg = argv[2 if cmd.container else 1].lower()
        return any(a.lower() == arg for a in firstargs)

    def key_allowed(self, key: bytes, perms: int) -> bool:
        if self.allkeys:
            return True
        for pattern, flags in self.patterns:
            if flags & perms == perms and matches(pattern, key):
                return True
        return False

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        if self.allchannels:
            return True
        return channel_in_list(self.channels, channel, is_pattern)

    def check(self, cmd: Command, argv: list[bytes], keys: list[tuple[int, int]] | None) -> tuple[int, int]:
        """ACLSelectorCheckCmd: (result, argv index of the refused key or channel)."""
        if not self.may_run(cmd, argv):
            return DENIED_CMD, 0
        if not self.allkeys and keys:
            for idx, perms in keys:
                if not self.key_allowed(argv[idx], perms):
                    return DENIED_KEY, idx
        if not self.allchannels:
            for idx, is_pattern in channel_positions(cmd, argv):
                if not channel_in_list(self.channels, argv[idx], is_pattern):
                    return DENIED_CHANNEL, idx
        return OK, 0


_GLOB = frozenset(b"*?[\\")
_prefix_patterns: dict[bytes, bytes | None] = {}


def matches(pattern: bytes, text: bytes) -> bool:
    """stringmatch, with the usual ``prefix*`` and literal patterns answered by a
    prefix or equality test (what they mean to stringmatch too)."""
    prefix = _prefix_patterns.get(pattern, b"?")
    if prefix == b"?":
        body = pattern[:-1] if pattern.endswith(b"*") else None
        prefix = body if body is not None and not _GLOB.intersection(body) else None
        if len(_prefix_patterns) < 10000:
            _prefix_patterns[pattern] = prefix
    if prefix is not None:
        return text.startswith(prefix) and text != b""  # stringmatch: '*' never matches an empty string
    if not _GLOB.intersection(pattern):
        return pattern == text
    return stringmatch(pattern, text)


def pattern_string(pattern: bytes, flags: int) -> bytes:
    prefix = b"~" if flags == ALL_PERMS else b"%R~" if flags == READ else b"%W~"
    return prefix + pattern


def channel_in_list(channels: list[bytes], channel: bytes, is_pattern: bool) -> bool:
    """ACLCheckChannelAgainstList: a PSUBSCRIBE pattern must equal an allowed pattern;
    a channel name is matched against the patterns."""
    for pattern in channels:
        if (pattern == channel) if is_pattern else matches(pattern, channel):
            return True
    return False


def channel_positions(cmd: Command, argv: list[bytes]) -> list[tuple[int, bool]]:
    spec = CHANNEL_ARGS.get(cmd.name)
    if spec is None:
        return []
    first, last, is_pattern = spec
    end = len(argv) if last < 0 else min(last + 1, len(argv))
    return [(i, is_pattern) for i in range(first, end)]


_spec_perms: dict[str, tuple[int | None, ...]] = {}


def _perms_of_specs(cmd: Command) -> tuple[int | None, ...]:
    """Per key spec: the READ/WRITE permission it needs, None for a ``not_key`` spec (cached)."""
    perms = _spec_perms.get(cmd.name)
    if perms is None:
        out: list[int | None] = []
        for spec in cmd.key_specs:
            flags = {f.lower() for f in spec.get("flags", ())}
            if "not_key" in flags:
                out.append(None)
                continue
            p = READ if "access" in flags else 0
            if flags & {"insert", "delete", "update"}:
                p |= WRITE
            out.append(p)
        perms = _spec_perms[cmd.name] = tuple(out)
    return perms


def key_positions(cmd: Command, argv: list[bytes]) -> list[tuple[int, int]]:
    """Key arguments with the read/write permission their key spec asks for
    (getKeysFromCommandWithSpecs: ``not_key`` specs left out, variable flags resolved)."""
    if not cmd.key_specs and cmd.getkeys is None:
        return []
    try:
        indices = cmd.key_indices(argv)
    except (ValueError, IndexError):
        return []
    variable = VARIABLE_KEY_FLAGS.get(cmd.name)
    if variable is not None and indices:
        return [(i, _perms_of_flags(flags)) for i, flags in zip(indices, variable(argv, indices), strict=True)]
    specs = _perms_of_specs(cmd)
    last = len(specs) - 1
    out = []
    for n, i in enumerate(indices):
        perms = specs[n if n < last else last] if specs else 0
        if perms is None:
            continue
        out.append((i, perms))
    return out


def _perms_of_flags(flags: tuple[str, ...]) -> int:
    """The ACL permission a key with these key-spec flags needs: access reads, insert/delete/update write."""
    perms = READ if "access" in flags else 0
    if "insert" in flags or "delete" in flags or "update" in flags:
        perms |= WRITE
    return perms


def _set_key_flags(argv: list[bytes], indices: list[int]) -> list[tuple[str, ...]]:
    """setGetKeys: SET reads its key only with GET, and otherwise overwrites it."""
    if any(a.lower() == b"get" for a in argv[3:]):
        return [("RW", "access", "update")]
    return [("OW", "update")]


def _bitfield_key_flags(argv: list[bytes], indices: list[int]) -> list[tuple[str, ...]]:
    """bitfieldGetKeys: read-only while the operations read as GET/OVERFLOW only; a SET, an
    INCRBY or anything it cannot parse makes it a write."""
    i, n = 2, len(argv)
    while i < n:
        word, rest = argv[i].lower(), n - i - 1
        if word == b"get" and rest >= 2:
            i += 3
        elif word == b"overflow" and rest >= 1:
            i += 2
        else:
            return [("RW", "access", "update")]
    return [("RO", "access")]


def _sort_key_flags(argv: list[bytes], indices: list[int]) -> list[tuple[str, ...]]:
    """sortGetKeys: the sorted key is read, a STORE destination overwritten."""
    return [("RO", "access") if n == 0 else ("OW", "update") for n in range(len(indices))]


# Commands whose keys' flags depend on their arguments (Redis's VARIABLE_FLAGS and incomplete key
# specs, answered by their getkeys procs): key_positions (ACL) and COMMAND GETKEYSANDFLAGS read them.
VARIABLE_KEY_FLAGS = {"set": _set_key_flags, "bitfield": _bitfield_key_flags, "sort": _sort_key_flags}


def key_span(cmd: Command) -> tuple[int, int, int, int] | None:
    """The command's keys as one (first, last, step, permission) range when key_positions
    reads them that way for every argument list: no getkeys procedure, no channel arguments,
    every key spec asking the same permission (a command whose keys' flags depend on its
    arguments asks for both, which covers whatever its arguments ask). (0, 0, 0, 0): no keys.
    None: key_positions must be asked."""
    if cmd.name in CHANNEL_ARGS or cmd.getkeys is not None:
        return None
    if not cmd.key_specs or not cmd.first_key:
        return (0, 0, 0, 0)
    perms = {ALL_PERMS} if cmd.name in VARIABLE_KEY_FLAGS else set(_perms_of_specs(cmd))
    if len(perms) != 1 or None in perms or cmd.key_step < 1:
        return None
    return cmd.first_key, cmd.last_key, cmd.key_step, perms.pop()


PATTERN_PREFIX, PATTERN_EXACT, PATTERN_ANY = 0, 1, 2


def simple_patterns(s: Selector) -> tuple[tuple[bytes, int, int], ...] | None:
    """A selector's key patterns as (text, kind, permission) when each is a literal key or a
    literal prefix followed by one '*' (what ``matches`` answers without stringmatch): the C
    request loop can check those. None when some pattern needs stringmatch."""
    if s.allkeys:
        return ((b"", PATTERN_ANY, ALL_PERMS),)
    out = []
    for pattern, flags in s.patterns:
        prefix = pattern.endswith(b"*")
        body = pattern[:-1] if prefix else pattern
        if _GLOB.intersection(body):
            return None
        out.append((body, PATTERN_PREFIX if prefix else PATTERN_EXACT, flags))
    return tuple(out)


def pack_rule(span: tuple[int, int, int, int], alternatives: list[tuple[tuple[bytes, int, int], ...]]) -> bytes:
    """A keyed_commands rule as the C loop reads it (``keys_allowed`` in _fastpath.c), native
    32-bit integers: first, last, step, permission, the number of alternatives; then each
    alternative (a selector's patterns): its size in bytes after this field, the number of
    patterns, and for each pattern its kind, permission, length and text."""
    out = [struct.pack("=5i", *span, len(alternatives))]
    for patterns in alternatives:
        body = b"".join(struct.pack("=3i", kind, flags, len(text)) + text for text, kind, flags in patterns)
        out.append(struct.pack("=2i", len(body) + 4, len(patterns)) + body)
    return b"".join(out)


# -- users ------------------------------------------------------------------------------------------


class User:
    """An ACL user: flags, password hashes, and its selectors (root first)."""

    __slots__ = ("name", "enabled", "nopass", "skip_sanitize", "passwords", "selectors", "_described", "_free",
                 "_keyed")

    def __init__(self, name: bytes, pubsub_all: bool = False) -> None:
        self.name = name
        self.enabled = False
        self.nopass = False
        self.skip_sanitize = False
        self.passwords: list[str] = []
        self.selectors: list[Selector] = [Selector(pubsub_all)]
        self._described: bytes | None = None
        self._free: frozenset[str] | None = None  # free_commands(), until the rules change
        self._keyed: dict[str, bytes] | None = None  # keyed_commands(), until the rules change

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    @property
    def unrestricted(self) -> bool:
        """Every command, key and channel allowed: the dispatcher may skip the check."""
        return self.root.unrestricted

    def free_commands(self) -> frozenset[str]:
        """Names of the commands whose ACL check always passes for this user, whatever the arguments:
        the root selector allows them whole, on every key, and every channel they may name
        (the C request loop runs these without asking)."""
        if self._free is None:
            root = self.root
            self._free = frozenset() if not root.allkeys else frozenset(
                cmd.name for cmd in all_commands()
                if (root.allchannels or cmd.name not in CHANNEL_ARGS)
                and (root.allcommands or cmd.no_auth or cmd.name in root.allowed))
        return self._free

    def keyed_commands(self) -> dict[str, bytes]:
        """For the C request loop, the commands some selector allows whole whose keys lie in one
        range (key_span) and whose patterns are literal or prefixes (simple_patterns), each as a
        packed rule (pack_rule). The loop runs such a command unasked when every key matches a
        pattern of one selector; anything else, a refusal included, is left to ``check``."""
        if self._keyed is None:
            keyed: dict[str, bytes] = {}
            selectors = [(s, p) for s in self.selectors if (p := simple_patterns(s)) is not None]
            for cmd in all_commands() if selectors else ():
                span = key_span(cmd)
                if span is None:
                    continue
                alternatives = [p for s, p in selectors if s.allcommands or cmd.no_auth or cmd.name in s.allowed]
                if alternatives:
                    keyed[cmd.name] = pack_rule(span, alternatives)
            self._keyed = keyed
        return self._keyed

    def copy_from(self, other: User) -> None:
        self.enabled, self.nopass, self.skip_sanitize = other.enabled, other.nopass, other.skip_sanitize
        self.passwords = list(other.passwords)
        self.selectors = [s.copy() for s in other.selectors]
        self._described = None
        self._free = self._keyed = None

    def clone(self, name: bytes | None = None) -> User:
        u = User(self.name if name is None else name)
        u.copy_from(self)
        return u

    def apply(self, op: bytes, pubsub_all: bool) -> None:
        """ACLSetUser: one rule or flag; raises RuleError."""
        self._described = None
        self._free = self._keyed = None
        if not op:
            return
        low = op.lower()
        first = op[:1]
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low == b"skip-sanitize-payload":
            self.skip_sanitize = True
        elif low == b"sanitize-payload":
            self.skip_sanitize = False
        elif low == b"nopass":
            self.nopass = True
            self.passwords = []
        elif low == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif first in (b">", b"#"):
            digest = _rule_digest(op, plain=first == b">")
            if digest not in self.passwords:
                self.passwords.append(digest)
            self.nopass = False
        elif first in (b"<", b"!"):
            digest = _rule_digest(op, plain=first == b"<")
            if digest not in self.passwords:
                raise RuleError(ERR_ENODEV)
            self.passwords.remove(digest)
        elif first == b"(" and op[-1:] == b")":
            selector = Selector(pubsub_all)
            try:
                inner = split_args(op[1:-1])
            except ValueError:
                inner = []
            for rule in inner:
                selector.apply(rule)
            self.selectors.append(selector)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            for rule in (b"resetpass", b"resetkeys", b"resetchannels"):
                self.apply(rule, pubsub_all)
            if pubsub_all:
                self.apply(b"allchannels", pubsub_all)
            for rule in (b"off", b"sanitize-payload", b"clearselectors", b"-@all"):
                self.apply(rule, pubsub_all)
        else:
            self.root.apply(op)

    def flag_names(self) -> list[bytes]:
        flags = [b"on" if self.enabled else b"off"]
        if self.nopass:
            flags.append(b"nopass")
        flags.append(b"skip-sanitize-payload" if self.skip_sanitize else b"sanitize-payload")
        return flags

    def describe(self) -> bytes:
        """ACLDescribeUser: the rules as ACL LIST and ACL SAVE print them."""
        if self._described is None:
            out = b"".join(f + b" " for f in self.flag_names())
            out += b"".join(b"#" + p.encode() + b" " for p in self.passwords)
            out += self.root.describe()
            for s in self.selectors[1:]:
                out += b" (" + s.describe() + b")"
            self._described = out
        return self._described

    def password_ok(self, password: bytes) -> bool:
        if self.nopass:
            return True
        digest = hash_password(password)
        return any(hmac.compare_digest(digest, p) for p in self.passwords)

    # -- checks -------------------------------------------------------------------------------------

    def check(self, cmd: Command, argv: list[bytes]) -> tuple[int, int]:
        """ACLCheckAllUserCommandPerm: OK, or the most relevant refusal over all
        selectors (a key or channel beats the command; a later argument beats an earlier)."""
        keys: list[tuple[int, int]] | None = None
        relevant, last_idx = DENIED_CMD, 0
        for s in self.selectors:
            if keys is None and not s.allkeys:
                keys = key_positions(cmd, argv)
            result, idx = s.check(cmd, argv, keys)
            if result == OK:
                return OK, 0
            if result > relevant or (result == relevant and idx > last_idx):
                relevant, last_idx = result, idx
        return relevant, last_idx

    def key_allowed(self, key: bytes, perms: int) -> bool:
        return any(s.key_allowed(key, perms) for s in self.selectors)

    def unrestricted_key_access(self, cmd: Command, argv: list[bytes], perms: int) -> bool:
        """ACLUserCheckCmdWithUnrestrictedKeyAccess: a selector that allows the command
        also reaches every key with ``perms`` (``~*``, ``%R~*``, allkeys)."""
        keys: list[tuple[int, int]] | None = None
        for s in self.selectors:
            if keys is None and not s.allkeys:
                keys = key_positions(cmd, argv)
            if s.check(cmd, argv, keys)[0] == OK and (
                    s.allkeys or any(p == b"*" and f & perms == perms for p, f in s.patterns)):
                return True
        return False

    def channel_allowed(self, channel: bytes, is_pattern: bool) -> bool:
        return any(s.channel_allowed(channel, is_pattern) for s in self.selectors)


def merge_selector_args(args: list[bytes]) -> list[bytes]:
    """ACLMergeSelectorArguments: ``(`` … ``)`` spread over several arguments becomes one;
    raises RuleError naming the argument that opens an unmatched one."""
    merged: list[bytes] = []
    selector: bytes | None = None
    opener = b""
    for op in args:
        if selector is None and op[:1] == b"(" and op[-1:] != b")":
            selector, opener = op, op
            continue
        if selector is not None:
            selector += b" " + op
            if op[-1:] == b")":
                merged.append(selector)
                selector = None
            continue
        merged.append(op)
    if selector is not None:
        raise RuleError(opener.decode("utf-8", "surrogateescape"))
    return merged


def error_message(result: int, user: User, cmd: Command, value: bytes, verbose: bool) -> str:
    """getAclErrorMessage."""
    name = user.name.decode("utf-8", "surrogateescape")
    if result == DENIED_CMD:
        return f"User {name} has no permissions to run the '{cmd.name}' command"
    what = "key" if result == DENIED_KEY else "channel"
    if verbose:
        return f"User {name} has no permissions to access the '{value.decode('utf-8', 'surrogateescape')}' {what}"
    return f"No permissions to access a {what}"


# -- the server's users and log -----------------------------------------------------------------------


class LogEntry:
    __slots__ = ("count", "reason", "context", "object", "username", "ctime", "cinfo", "entry_id", "created")

    def __init__(self, reason: int, context: str, obj: bytes, username: bytes, now_ms: int, cinfo: bytes,
                 entry_id: int) -> None:
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.ctime = now_ms
        self.cinfo = cinfo
        self.entry_id = entry_id
        self.created = now_ms


class Acl:
    """The users (``default`` always there) and the ACL LOG of one server."""

    def __init__(self, pubsub_all: bool = False) -> None:
        self.pubsub_all = pubsub_all  # acl-pubsub-default allchannels
        self.users: dict[bytes, User] = {}
        self.default = self._create_default()
        self.users[b"default"] = self.default
        self.log: deque[LogEntry] = deque()
        self.log_entries_created = 0
        self.denied = {DENIED_AUTH: 0, DENIED_CMD: 0, DENIED_KEY: 0, DENIED_CHANNEL: 0}

    def _create_default(self) -> User:
        u = User(b"default", self.pubsub_all)
        for rule in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            u.apply(rule, self.pubsub_all)
        return u

    def new_user(self, name: bytes) -> User:
        return User(name, self.pubsub_all)

    def auth_required(self) -> bool:
        """Connections must AUTH when the default user has a password or is off."""
        return not self.default.nopass or not self.default.enabled

    def authenticate(self, name: bytes, password: bytes) -> User | None:
        """ACLCheckUserCredentials: the user, or None (unknown, off, or wrong password)."""
        user = self.users.get(name)
        if user is None or not user.enabled or not user.password_ok(password):
            return None
        return user

    def set_default_password(self, password: str) -> None:
        """requirepass: ACLUpdateDefaultUserPassword."""
        self.default.apply(b"resetpass", self.pubsub_all)
        if password:
            self.default.apply(b">" + password.encode("utf-8", "surrogateescape"), self.pubsub_all)
        else:
            self.default.apply(b"nopass", self.pubsub_all)

    def staged(self, user: User | None, name: bytes, rules: list[bytes]) -> User:
        """ACLStringSetUser's validation: ``user`` (or a new one) with ``rules`` applied to
        a copy; raises RuleError with the whole ERR text."""
        try:
            merged = merge_selector_args(rules)
        except RuleError as e:
            raise RuleError(f"Unmatched parenthesis in acl selector starting at '{e.reason}'.") from None
        temp = user.clone() if user is not None else self.new_user(name)
        for op in merged:
            try:
                temp.apply(op, self.pubsub_all)
            except RuleError as e:
                raise RuleError(f"Error in ACL SETUSER modifier '{op.decode('utf-8', 'surrogateescape')}': "
                                f"{e.reason}") from None
        return temp

    # -- the log ----------------------------------------------------------------------------------------

    def add_log(self, reason: int, context: str, obj: bytes, username: bytes, cinfo: bytes, max_len: int) -> None:
        """addACLLogEntry: bump a similar entry of the last minute, or add one."""
        self.denied[reason] += 1
        if max_len == 0:
            self.log.clear()
            return
        now = int(time.time() * 1000)
        for n, entry in enumerate(self.log):
            if n >= 10:
                break
            if (entry.reason == reason and entry.context == context and abs(entry.ctime - now) <= 60000
                    and entry.object == obj and entry.username == username):
                del self.log[n]
                self.log.appendleft(entry)
                entry.cinfo = cinfo
                entry.ctime = now
                entry.count += 1
                return
        self.log.appendleft(LogEntry(reason, context, obj, username, now, cinfo, self.log_entries_created))
        self.log_entries_created += 1
        while len(self.log) > max_len:
            self.log.pop()


def client_context(client: Client) -> str:
    return "multi" if client.multi is not None else "toplevel"
