"""Pub/Sub: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB, and the
keyspace-notification publisher.

``PubSub`` (installed as ``server.pubsub``) owns the server-side registry: channel,
pattern and shard channel -> subscribed clients, in subscription order.  Each
client keeps its own subscriptions in ``client.channels`` / ``patterns`` /
``shard_channels`` (dispatch reads them for the RESP2 subscribed context).

Delivery rules, as Redis 7.2:

* messages are pushes (``>`` in RESP3, plain arrays in RESP2), delivered even to
  clients under CLIENT REPLY OFF;
* a push for the client whose command is running is held back until that
  command's reply has been queued (``server.pending_pushes``), inside EXEC until
  after EXEC's reply; the SUBSCRIBE family is the exception (its confirmations are
  its reply, and inside EXEC they sit in EXEC's array);
* a subscriber that does not read is disconnected by ``client-output-buffer-limit
  pubsub`` (``Server.output_limit_exceeded``, checked before every write and from
  cron for the soft limit's seconds: ``Server.check_soft_output_limits``).

Keyspace notifications: ``Keyspace.notify`` filters by event class and calls
``notify_keyspace_event``, which publishes on ``__keyspace@<db>__:<key>`` (K) and
``__keyevent@<db>__:<event>`` (E).

Must not: decide which events a command fires (the command's handler does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dumpling.commands.common import glob_match
from dumpling.commands.registry import command, container
from dumpling.errors import CommandError
from dumpling.protocol import NO_REPLY, Push, Raw, Status, encode
from dumpling.stringmatch import MAX_NESTING

if TYPE_CHECKING:
    from dumpling.dispatch import Server

PS = {"group": "pubsub"}
Subscribers = dict[Any, None]  # clients in subscription order
Matcher = Callable[[bytes], bool]


def compile_pattern(pattern: bytes) -> Matcher:
    """A matcher with the semantics of Redis's plain ``stringmatchlen`` as pub/sub uses it.

    Unlike KEYS/SCAN there is no ``*`` shortcut: the empty channel name is matched only
    by the empty pattern.  Patterns whose only wildcard is ``*`` (``__keyspace@0__:*``,
    ``news.*``) are matched by searching their literal pieces in order, which gives the
    same answers as the general matcher and is much faster; anything else uses it (so do
    patterns with more stars than Redis's nesting limit, which the search would not know).
    """
    if b"?" in pattern or b"[" in pattern or b"\\" in pattern or pattern.count(b"*") > MAX_NESTING:
        return lambda name: glob_match(pattern, name) if name else not pattern
    pieces = pattern.split(b"*")
    if len(pieces) == 1:
        return lambda name: name == pattern
    first, last = pieces[0], pieces[-1]
    middle = [piece for piece in pieces[1:-1] if piece]
    fixed = len(first) + len(last)

    def match(name: bytes) -> bool:
        size = len(name)
        if not size or size < fixed or not name.startswith(first) or not name.endswith(last):
            return False
        pos, end = len(first), size - len(last)
        for piece in middle:
            found = name.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    return match


def encode_message(items: list[bytes], resp3: bool) -> Raw:
    """A message push whose items are all bulk strings (the hot path of PUBLISH)."""
    head = (b">%d\r\n" if resp3 else b"*%d\r\n") % len(items)
    return Raw(head + b"".join([b"$%d\r\n%s\r\n" % (len(item), item) for item in items]))


class Message:
    """One push sent to many clients, encoded at most once per protocol."""

    __slots__ = ("items", "_wire2", "_wire3")

    def __init__(self, items: list[bytes]) -> None:
        self.items = items
        self._wire2: Raw | None = None
        self._wire3: Raw | None = None

    def for_client(self, c: Any) -> Raw:
        if c.resp3:
            if self._wire3 is None:
                self._wire3 = encode_message(self.items, True)
            return self._wire3
        if self._wire2 is None:
            self._wire2 = encode_message(self.items, False)
        return self._wire2


def _script_caller(server: Any) -> Any:
    """The client whose EVAL/FCALL is running (a script's PUBLISH to it follows its reply)."""
    scripting = getattr(server, "scripting", None)
    run = scripting.run if scripting is not None else None
    return run.caller if run is not None else None


class PubSub:
    """The server-wide subscription registry and message delivery."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.channels: dict[bytes, Subscribers] = {}
        self.patterns: dict[bytes, Subscribers] = {}
        self.shard_channels: dict[bytes, Subscribers] = {}
        self.matchers: dict[bytes, Matcher] = {}  # one per subscribed pattern

    # -- counts (INFO, PUBSUB NUMPAT) ------------------------------------------------

    def channel_count(self) -> int:
        return len(self.channels)

    def pattern_count(self) -> int:
        return len(self.patterns)

    def shard_channel_count(self) -> int:
        return len(self.shard_channels)

    # -- subscriptions ------------------------------------------------------------------

    def _add(self, registry: dict[bytes, Subscribers], mine: dict[bytes, None], name: bytes, c: Any) -> None:
        if name in mine:
            return
        mine[name] = None
        self.server.pubsub_clients[c] = None  # (Server.pubsub_clients: every client with a subscription)
        clients = registry.get(name)
        if clients is None:
            registry[name] = {c: None}
        else:
            clients[c] = None

    def _remove(self, registry: dict[bytes, Subscribers], mine: dict[bytes, None], name: bytes, c: Any) -> bool:
        if name not in mine:
            return False
        del mine[name]
        if not (c.channels or c.patterns or c.shard_channels):
            self.server.pubsub_clients.pop(c, None)
        clients = registry.get(name)
        if clients is not None:
            clients.pop(c, None)
            if not clients:
                del registry[name]
        return True

    def subscribe(self, c: Any, channel: bytes) -> None:
        self._add(self.channels, c.channels, channel, c)

    def psubscribe(self, c: Any, pattern: bytes) -> None:
        self._add(self.patterns, c.patterns, pattern, c)
        if pattern not in self.matchers:
            self.matchers[pattern] = compile_pattern(pattern)

    def ssubscribe(self, c: Any, channel: bytes) -> None:
        self._add(self.shard_channels, c.shard_channels, channel, c)

    def unsubscribe(self, c: Any, channel: bytes) -> bool:
        return self._remove(self.channels, c.channels, channel, c)

    def punsubscribe(self, c: Any, pattern: bytes) -> bool:
        removed = self._remove(self.patterns, c.patterns, pattern, c)
        if pattern not in self.patterns:
            self.matchers.pop(pattern, None)
        return removed

    def sunsubscribe(self, c: Any, channel: bytes) -> bool:
        return self._remove(self.shard_channels, c.shard_channels, channel, c)

    def unsubscribe_all(self, c: Any) -> None:
        """RESET: drop every subscription without confirmations."""
        for channel in list(c.channels):
            self.unsubscribe(c, channel)
        for pattern in list(c.patterns):
            self.punsubscribe(c, pattern)
        for channel in list(c.shard_channels):
            self.sunsubscribe(c, channel)
        c.obuf_soft_limit_since = 0

    def client_gone(self, c: Any) -> None:
        self.unsubscribe_all(c)

    # -- delivery ----------------------------------------------------------------------

    def deliver(self, c: Any, message: Message) -> None:
        server = self.server
        # The client is running a command right now (it is the current client and inside its
        # own input batch): Redis 7.2 sends the push after that command's reply.
        # (A script's caller is running its EVAL/FCALL whichever path called it.)
        if (c is server.current_client and c._in_batch) or c is _script_caller(server):
            server.pending_pushes.append(message.for_client(c))
        else:
            c.push(message.for_client(c))

    def publish(self, channel: bytes, payload: bytes, shard: bool = False) -> int:
        """Send to channel subscribers, then (non-shard) to matching patterns; returns receivers."""
        receivers = 0
        clients = (self.shard_channels if shard else self.channels).get(channel)
        if clients:
            message = Message([b"smessage" if shard else b"message", channel, payload])
            for c in list(clients):
                self.deliver(c, message)
                receivers += 1
        if not shard and self.patterns:
            matchers = self.matchers
            for pattern, subscribers in list(self.patterns.items()):
                match = matchers.get(pattern)
                if match is None or not match(channel):  # None: dropped while delivering
                    continue
                message = Message([b"pmessage", pattern, channel, payload])
                for c in list(subscribers):
                    self.deliver(c, message)
                    receivers += 1
        return receivers

    def notify_keyspace_event(self, db_index: int, cls: str, event: bytes, key: bytes) -> None:
        """Keyspace hook: the event class is already known to be enabled."""
        if not (self.channels or self.patterns):
            return
        flags = self.server.keyspace.notify_flags
        if "K" in flags:
            self.publish(b"__keyspace@%d__:%s" % (db_index, key), event)
        if "E" in flags:
            self.publish(b"__keyevent@%d__:%s" % (db_index, event), key)


def setup(server: Server) -> None:
    pubsub = PubSub(server)
    server.pubsub = pubsub
    server.keyspace.notify_hook = pubsub.notify_keyspace_event


# ----------------------------------------------------------------------------- commands


def _confirm(c: Any, pushes: list[list[Any]]) -> Any:
    """The SUBSCRIBE family's reply is its confirmation pushes.

    Outside EXEC they are pushed (so CLIENT REPLY OFF does not hide them); inside EXEC
    they take the place of the command's reply in EXEC's array, all of them, as in
    Redis (one array element may then hold several pushes).
    """
    if c.server.in_exec:
        return Raw(b"".join(encode(Push(items), c.resp3) for items in pushes))
    for items in pushes:
        c.push(Push(items))
    return NO_REPLY


def _count(c: Any) -> int:
    return len(c.channels) + len(c.patterns)


@command("subscribe", -2, "pubsub noscript loading stale sentinel", **PS, since="2.0.0",
         summary="Listens for messages published to channels.",
         complexity="O(N) where N is the number of channels to subscribe to.", args="channel:string...")
def subscribe(c: Any, argv: list[bytes]) -> Any:
    pubsub = c.server.pubsub
    pushes = []
    for channel in argv[1:]:
        pubsub.subscribe(c, channel)
        pushes.append([b"subscribe", channel, _count(c)])
    return _confirm(c, pushes)


@command("psubscribe", -2, "pubsub noscript loading stale sentinel", **PS, since="2.0.0",
         summary="Listens for messages published to channels that match one or more patterns.",
         complexity="O(N) where N is the number of patterns to subscribe to.", args="pattern:pattern...")
def psubscribe(c: Any, argv: list[bytes]) -> Any:
    pubsub = c.server.pubsub
    pushes = []
    for pattern in argv[1:]:
        pubsub.psubscribe(c, pattern)
        pushes.append([b"psubscribe", pattern, _count(c)])
    return _confirm(c, pushes)


@command("ssubscribe", -2, "pubsub noscript loading stale", (1, -1, 1), **PS, since="7.0.0", key_flags="not_key",
         summary="Listens for messages published to shard channels.",
         complexity="O(N) where N is the number of shard channels to subscribe to.", args="shardchannel:string...")
def ssubscribe(c: Any, argv: list[bytes]) -> Any:
    if c.server.in_exec:  # unlike SUBSCRIBE, Redis makes no MULTI exception for SSUBSCRIBE
        raise CommandError("SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    pubsub = c.server.pubsub
    pushes = []
    for channel in argv[1:]:
        pubsub.ssubscribe(c, channel)
        pushes.append([b"ssubscribe", channel, len(c.shard_channels)])
    return _confirm(c, pushes)


def _unsubscribe(c: Any, argv: list[bytes], kind: bytes, mine: dict[bytes, None], remove: Any, count: Any) -> Any:
    names = argv[1:] if len(argv) > 1 else list(mine)
    pushes = []
    for name in names:
        remove(c, name)
        pushes.append([kind, name, count(c)])
    if not pushes:  # subscribed to nothing: still one confirmation
        pushes.append([kind, None, count(c)])
    return _confirm(c, pushes)


@command("unsubscribe", -1, "pubsub noscript loading stale sentinel", **PS, since="2.0.0",
         summary="Stops listening to messages posted to channels.",
         complexity="O(N) where N is the number of channels to unsubscribe.", args="[channel:string...]")
def unsubscribe(c: Any, argv: list[bytes]) -> Any:
    return _unsubscribe(c, argv, b"unsubscribe", c.channels, c.server.pubsub.unsubscribe, _count)


@command("punsubscribe", -1, "pubsub noscript loading stale sentinel", **PS, since="2.0.0",
         summary="Stops listening to messages published to channels that match one or more patterns.",
         complexity="O(N) where N is the number of patterns to unsubscribe.", args="[pattern:pattern...]")
def punsubscribe(c: Any, argv: list[bytes]) -> Any:
    return _unsubscribe(c, argv, b"punsubscribe", c.patterns, c.server.pubsub.punsubscribe, _count)


@command("sunsubscribe", -1, "pubsub noscript loading stale", (1, -1, 1), **PS, since="7.0.0", key_flags="not_key",
         summary="Stops listening to messages posted to shard channels.",
         complexity="O(N) where N is the number of shard channels to unsubscribe.", args="[shardchannel:string...]")
def sunsubscribe(c: Any, argv: list[bytes]) -> Any:
    return _unsubscribe(c, argv, b"sunsubscribe", c.shard_channels, c.server.pubsub.sunsubscribe,
                        lambda client: len(client.shard_channels))


@command("publish", 3, "pubsub loading stale fast may_replicate sentinel", **PS, since="2.0.0",
         summary="Posts a message to a channel.",
         complexity="O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total "
                    "number of subscribed patterns (by any client).",
         args="channel:string message:string")
def publish(c: Any, argv: list[bytes]) -> Any:
    receivers = c.server.pubsub.publish(argv[1], argv[2])
    if c.server.cluster is not None:
        c.server.cluster.bus.propagate_publish(argv[1], argv[2])  # every node's subscribers get it
    return receivers


@command("spublish", 3, "pubsub loading stale fast may_replicate", (1, 1, 1), **PS, since="7.0.0", key_flags="not_key",
         summary="Post a message to a shard channel",
         complexity="O(N) where N is the number of clients subscribed to the receiving shard channel.",
         args="shardchannel:string message:string")
def spublish(c: Any, argv: list[bytes]) -> Any:
    receivers = c.server.pubsub.publish(argv[1], argv[2], shard=True)
    if c.server.cluster is not None:
        c.server.cluster.bus.propagate_publish(argv[1], argv[2], shard=True)  # the nodes of this shard
    return receivers


# ----------------------------------------------------------------------------- PUBSUB

container("pubsub", group="pubsub", since="2.8.0", summary="A container for Pub/Sub commands.")


def _syntax(argv: list[bytes]) -> CommandError:
    sub = argv[1][:128].decode("utf-8", "replace")
    return CommandError(f"unknown subcommand or wrong number of arguments for '{sub}'. "
                        f"Try {argv[0].decode('utf-8', 'replace').upper()} HELP.")


def _channel_list(argv: list[bytes], registry: dict[bytes, Subscribers]) -> list[bytes]:
    if len(argv) > 3:
        raise _syntax(argv)
    if len(argv) == 2:
        return list(registry)
    match = compile_pattern(argv[2])
    return [name for name in registry if match(name)]


@command("pubsub|channels", -2, "pubsub loading stale", **PS, since="2.8.0", summary="Returns the active channels.",
         complexity="O(N) where N is the number of active channels, and assuming constant time pattern matching "
                    "(relatively short channels and patterns)", args="[pattern:pattern]")
def pubsub_channels(c: Any, argv: list[bytes]) -> Any:
    return _channel_list(argv, c.server.pubsub.channels)


@command("pubsub|shardchannels", -2, "pubsub loading stale", **PS, since="7.0.0",
         summary="Returns the active shard channels.",
         complexity="O(N) where N is the number of active shard channels, and assuming constant time pattern "
                    "matching (relatively short shard channels).", args="[pattern:pattern]")
def pubsub_shardchannels(c: Any, argv: list[bytes]) -> Any:
    return _channel_list(argv, c.server.pubsub.shard_channels)


def _numsub(argv: list[bytes], registry: dict[bytes, Subscribers]) -> list[Any]:
    out: list[Any] = []
    for name in argv[2:]:
        out.append(name)
        out.append(len(registry.get(name, ())))
    return out


@command("pubsub|numsub", -2, "pubsub loading stale", **PS, since="2.8.0",
         summary="Returns a count of subscribers to channels.",
         complexity="O(N) for the NUMSUB subcommand, where N is the number of requested channels",
         args="[channel:string...]")
def pubsub_numsub(c: Any, argv: list[bytes]) -> Any:
    return _numsub(argv, c.server.pubsub.channels)


@command("pubsub|shardnumsub", -2, "pubsub loading stale", **PS, since="7.0.0",
         summary="Returns the count of subscribers of shard channels.",
         complexity="O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
         args="[shardchannel:string...]")
def pubsub_shardnumsub(c: Any, argv: list[bytes]) -> Any:
    return _numsub(argv, c.server.pubsub.shard_channels)


@command("pubsub|numpat", 2, "pubsub loading stale", **PS, since="2.8.0",
         summary="Returns a count of unique pattern subscriptions.")
def pubsub_numpat(c: Any, argv: list[bytes]) -> Any:
    return len(c.server.pubsub.patterns)


_HELP = (
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Print this help.",
)


@command("pubsub|help", 2, "loading stale", **PS, since="6.2.0", acl="slow",  # no PUBSUB flag: only @slow
         summary="Returns helpful text about the different subcommands.")
def pubsub_help(c: Any, argv: list[bytes]) -> Any:
    header = argv[0].decode("utf-8", "replace").upper() + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [Status(header)] + [Status(line) for line in _HELP]
