"""The plain-state check of the C request loop (``_fastpath.c``'s ``eligible``) and its memo.

The loop runs a read only while the connection and the server are in the plain state (no MULTI,
CLIENT REPLY, RESP2 subscriptions, MONITOR, WATCH, notifications, LFU, maxmemory, cluster, pause,
key gates, tracking...).  It remembers the values it read under the version tag of the ``__dict__``
they came from, so each state below is flipped *after* a read that filled the memo, by the same
kind of write the server makes (an assignment, or a container filled in place), and the loop must
then leave the read to Python; restored, it runs the read again.  The counters the read path keeps
in C members (``ServerBase``, ``ClientBase``) read the same as attributes in both modes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dumpling.accel import fastpath
from dumpling.dispatch import Server
from dumpling.server import Client
from tests.servers import encode_command
from tests.test_fastpath_fuzz import connected_client as _connected

needs_c = pytest.mark.skipif(fastpath is None, reason="the C loop is not built (pure mode)")
PING = encode_command("PING")


def _assign(owner: str, name: str, value: Any) -> Callable[[Server, Client], Callable[[], None]]:
    """Sets ``owner.name`` to ``value``; returns what puts the old value back."""

    def flip(server: Server, client: Client) -> Callable[[], None]:
        target = {"client": client, "server": server, "keyspace": server.keyspace}[owner]
        was = getattr(target, name)
        setattr(target, name, value)
        return lambda: setattr(target, name, was)

    return flip


def _fill(owner: str, name: str) -> Callable[[Server, Client], Callable[[], None]]:
    """Adds an item to the container ``owner.name`` in place (its owner's __dict__ unchanged)."""

    def flip(server: Server, client: Client) -> Callable[[], None]:
        target = {"client": client, "server": server, "keyspace": server.keyspace}[owner]
        container = getattr(target, name)
        if isinstance(container, list):
            container.append(Client(server))
            return container.clear
        container[b"item"] = None
        return lambda: container.pop(b"item")

    return flip


def _subscribe(kind: str) -> Callable[[Server, Client], Callable[[], None]]:
    """Subscribes the client through the server's registry (``pubsub.subscribe`` and its kin: the
    client's own dict filled in place, and ``server.pubsub_clients``)."""

    def flip(server: Server, client: Client) -> Callable[[], None]:
        getattr(server.pubsub, kind)(client, b"item")
        undo = {"subscribe": "unsubscribe", "psubscribe": "punsubscribe", "ssubscribe": "sunsubscribe"}[kind]
        return lambda: getattr(server.pubsub, undo)(client, b"item")

    return flip


# Every state the check covers that makes the loop leave a read to Python.
FLIPS: dict[str, Callable[[Server, Client], Callable[[], None]]] = {
    "CLIENT REPLY OFF": _assign("client", "reply_mode", 1),
    "CLIENT REPLY SKIP's next": _assign("client", "skip_this", True),
    "MULTI": _assign("client", "multi", []),
    "not authenticated": _assign("client", "authenticated", False),
    "blocked": _assign("client", "blocked", object()),
    "closed": _assign("client", "closed", True),
    "close after reply": _assign("client", "flags_close_after_reply", True),
    "CLIENT NO-TOUCH": _assign("client", "no_touch", True),
    "the reference parser's turn": _assign("client", "_strict", True),
    "CLIENT CACHING": _assign("client", "tracking_caching", True),
    "SUBSCRIBE (RESP2)": _subscribe("subscribe"),
    "PSUBSCRIBE (RESP2)": _subscribe("psubscribe"),
    "SSUBSCRIBE (RESP2)": _subscribe("ssubscribe"),
    "cluster": _assign("server", "cluster", object()),
    "key gate": _assign("server", "key_gate", lambda *args: False),
    "CLIENT PAUSE": _assign("server", "pause_gate", lambda *args: False),
    "maxmemory": _assign("server", "maxmemory", 1 << 30),
    "MONITOR": _fill("server", "monitors"),
    "EXEC": _assign("server", "in_exec", True),
    "WATCH": _fill("keyspace", "watched"),
    "notifications": _assign("keyspace", "notify_flags", "KEA"),
    "LFU": _assign("keyspace", "lfu", True),
    "loading": _assign("keyspace", "loading", True),
    "tracking": _assign("keyspace", "tracking", object()),
}


@needs_c
@pytest.mark.parametrize("name", list(FLIPS))
def test_a_state_change_after_a_read_sends_the_next_to_python(name: str) -> None:
    server, client, transport = _connected()
    assert fastpath.run(client, PING) == len(PING)  # the memo is filled
    assert fastpath.run(client, PING) == len(PING)
    restore = FLIPS[name](server, client)
    assert fastpath.run(client, PING) == 0  # nothing run: Python's
    restore()
    assert fastpath.run(client, PING) == len(PING)


@needs_c
def test_resp3_subscribers_stay_plain() -> None:
    """A RESP3 client may run any command while subscribed: its subscriptions are not looked at."""
    server, client, transport = _connected()
    client.resp3 = True
    assert fastpath.run(client, PING) == len(PING)
    server.pubsub.subscribe(client, b"news")
    assert fastpath.run(client, PING) == len(PING)
    client.resp3 = False
    assert fastpath.run(client, PING) == 0


@needs_c
def test_another_clients_subscription_leaves_this_one_plain() -> None:
    """The loop looks at a client's own subscriptions only while some client has one
    (``server.pubsub_clients``): another client's SUBSCRIBE does not stop it, this one's does, and
    the last UNSUBSCRIBE empties the registry again."""
    server, client, transport = _connected()
    other = Client(server)
    assert fastpath.run(client, PING) == len(PING)
    server.pubsub.subscribe(other, b"news")
    server.pubsub.psubscribe(other, b"n*")
    assert list(server.pubsub_clients) == [other]
    assert fastpath.run(client, PING) == len(PING)
    server.pubsub.ssubscribe(client, b"shard")
    assert fastpath.run(client, PING) == 0
    server.pubsub.sunsubscribe(client, b"shard")
    assert fastpath.run(client, PING) == len(PING)
    server.pubsub.unsubscribe(other, b"news")
    assert list(server.pubsub_clients) == [other]  # (a pattern left)
    server.pubsub.client_gone(other)
    assert server.pubsub_clients == {}


class Flag:
    """A value whose truth changes in place (no assignment reaches the owner's __dict__)."""

    def __init__(self) -> None:
        self.on = False

    def __bool__(self) -> bool:
        return self.on


@needs_c
@pytest.mark.parametrize(("owner", "name"), [("client", "reply_mode"), ("client", "no_touch"),
                                             ("server", "maxmemory"), ("server", "in_exec"),
                                             ("keyspace", "loading"), ("keyspace", "notify_flags")])
def test_a_truth_that_changes_in_place_is_tested_each_read(owner: str, name: str) -> None:
    server, client, transport = _connected()
    flag = Flag()
    setattr({"client": client, "server": server, "keyspace": server.keyspace}[owner], name, flag)
    assert fastpath.run(client, PING) == len(PING)
    flag.on = True
    assert fastpath.run(client, PING) == 0
    flag.on = False
    assert fastpath.run(client, PING) == len(PING)


@needs_c
def test_the_gate_and_the_hooks_set_after_a_read_are_honoured() -> None:
    """command_gate and call_hooks do not stop the loop: its general path asks the gate and calls
    the hooks around each command (the twins step aside)."""
    server, client, transport = _connected()
    get = encode_command("GET", "k")
    assert fastpath.run(client, get) == len(get)
    asked: list[bytes] = []
    server.command_gate = lambda c, cmd, argv: asked.append(argv[0])  # (None: allowed)
    assert fastpath.run(client, get) == len(get)
    assert asked == [b"GET"]

    class Hooks:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def begin(self, c: Client, cmd: Any, argv: list[bytes]) -> None:
            self.calls.append("begin")

        def end(self, c: Client, cmd: Any, argv: list[bytes], reply: Any) -> None:
            self.calls.append("end")

    server.command_gate = None
    hooks = Hooks()
    server.call_hooks = hooks
    assert fastpath.run(client, get) == len(get)
    assert hooks.calls == ["begin", "end"]
    server.call_hooks = None
    assert fastpath.run(client, get) == len(get)
    assert hooks.calls == ["begin", "end"]


@needs_c
def test_settings_changed_between_reads_take_effect() -> None:
    """The slowlog threshold and latency-tracking the loop reads from its memo follow CONFIG SET."""
    server, client, transport = _connected()
    client.data_received(encode_command("SET", "k", "v"))
    client.data_received(encode_command("GET", "k"))
    client.data_received(encode_command("CONFIG", "SET", "slowlog-log-slower-than", "0"))
    client.data_received(encode_command("GET", "k"))
    assert [entry[3][0] for entry in server.slowlog][:1] == [b"GET"]
    client.data_received(encode_command("CONFIG", "SET", "slowlog-log-slower-than", "-1"))
    count = len(server.slowlog)
    client.data_received(encode_command("GET", "k"))
    assert len(server.slowlog) == count
    client.data_received(encode_command("CONFIG", "SET", "latency-tracking", "no"))
    transport.data.clear()
    client.data_received(encode_command("GET", "k"))
    client.data_received(encode_command("INFO", "latencystats"))
    assert b"latency_percentiles_usec_get" not in transport.data


# What a stream of real commands leaves, with the states set and cleared by the commands themselves.
STREAM = [encode_command(*args) for args in [
    ("SET", "k", "v"), ("GET", "k"),
    ("MULTI",), ("GET", "k"), ("EXEC",), ("GET", "k"),
    ("CLIENT", "REPLY", "SKIP"), ("GET", "k"), ("GET", "k"),
    ("CLIENT", "REPLY", "OFF"), ("GET", "k"), ("CLIENT", "REPLY", "ON"), ("GET", "k"),
    ("WATCH", "k"), ("SET", "k", "w"), ("UNWATCH",), ("GET", "k"),
    ("CLIENT", "NO-TOUCH", "ON"), ("GET", "k"), ("CLIENT", "NO-TOUCH", "OFF"),
    ("CONFIG", "SET", "notify-keyspace-events", "KEA"), ("SET", "k", "x"),
    ("CONFIG", "SET", "notify-keyspace-events", ""), ("GET", "k"),
    ("CONFIG", "SET", "maxmemory", "100000000"), ("SET", "k", "y"), ("CONFIG", "SET", "maxmemory", "0"),
    ("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"), ("GET", "k"), ("OBJECT", "FREQ", "k"),
    ("CONFIG", "SET", "maxmemory-policy", "noeviction"), ("GET", "k"),
    ("SUBSCRIBE", "c"), ("GET", "k"), ("PING",), ("UNSUBSCRIBE", "c"), ("GET", "k"),
    ("CLIENT", "TRACKING", "ON"), ("GET", "k"), ("CLIENT", "TRACKING", "OFF"), ("GET", "k"),
    ("ACL", "SETUSER", "u", "on", "nopass", "+get", "~k*"), ("AUTH", "u", "x"), ("GET", "k"), ("GET", "other"),
    ("SET", "k", "z"), ("AUTH", "default", "x"), ("GET", "k"),
    ("HELLO", "3"), ("SUBSCRIBE", "c"), ("GET", "k"), ("UNSUBSCRIBE", "c"), ("HELLO", "2"), ("GET", "k"),
    ("QUIT",),
]]


def _stream(through_c: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, tuple[int, ...], bool]:
    with monkeypatch.context() as patch:
        if not through_c:
            patch.setattr(Client, "data_received", Client.received)
        server, client, transport = _connected()
        for data in STREAM:
            if transport.closed:
                break
            client.data_received(data)
        stats = (server.stat_net_input, server.stat_net_output, server.stat_reads, server.stat_writes,
                 server.stat_commands, server.keyspace.stat_hits, server.keyspace.stat_misses)
        return bytes(transport.data), stats, transport.closed


@needs_c
def test_commands_that_change_the_state_give_the_replies_of_the_python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = _stream(True, monkeypatch)
    theirs = _stream(False, monkeypatch)
    assert ours == theirs
    assert b"+QUEUED" in ours[0] and b"NOPERM" in ours[0] and ours[2]  # (the stream did what it says)


def test_counters_read_as_attributes() -> None:
    """The counters (C members with the accelerators, plain attributes without) add and reset alike."""
    server, client, transport = _connected()
    client.data_received(PING)
    assert (server.stat_reads, server.stat_writes, server.stat_commands) == (1, 1, 1)
    assert server.stat_net_input == len(PING) and server.stat_net_output == len(b"+PONG\r\n")
    assert client.reply_buffer_peak == len(b"+PONG\r\n")
    assert client._batch_ran == 0
    assert client.last_interaction >= client.created
    client.data_received(encode_command("CONFIG", "RESETSTAT"))
    assert server.stat_commands == 1 and server.stat_net_input == 0  # (RESETSTAT counted after, as in Redis)
    server.stat_commands += 5
    assert server.stat_commands == 6


def test_keyspace_counters_read_as_attributes() -> None:
    """The keyspace's hits, misses and dirty (KeyspaceBase's members with the accelerators, plain
    attributes without) count the twins', the handlers' and the C lookups' work alike, and reset."""
    server, client, transport = _connected()
    ks = server.keyspace
    for request in (("SET", "k", "1"), ("GET", "k"), ("GET", "nope"), ("INCR", "k"), ("LPUSH", "l", "a", "b"),
                    ("LRANGE", "l", "0", "-1"), ("STRLEN", "nope"), ("HSET", "h", "f", "v")):
        client.data_received(encode_command(*request))
    # hits: GET k, INCR's lookup is a write lookup (none), LRANGE l; misses: GET nope, STRLEN nope
    assert (ks.stat_hits, ks.stat_misses, ks.dirty) == (2, 2, 5)
    for counter in ("stat_hits", "stat_misses", "dirty"):
        assert counter not in vars(ks) or fastpath is None
    ks.dirty += 3
    assert ks.dirty == 8
    client.data_received(encode_command("CONFIG", "RESETSTAT"))
    assert (ks.stat_hits, ks.stat_misses) == (0, 0) and ks.dirty == 8
    ks.dirty = 0
    client.data_received(encode_command("DEL", "k"))
    assert ks.dirty == 1


@needs_c
def test_a_commands_handler_and_histogram_replaced_between_reads_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop remembers a command's arity, handler and latency histogram under its __dict__'s tag:
    a handler wrapped after a read is the one the next read calls, and CONFIG RESETSTAT's dropped
    histogram is made anew at the next call."""
    from dumpling.commands.registry import ORIGINAL

    server, client, transport = _connected()
    scard = ORIGINAL[b"scard"]
    get = ORIGINAL[b"get"]
    client.data_received(encode_command("SCARD", "s"))
    client.data_received(encode_command("SCARD", "s"))
    seen: list[list[bytes]] = []
    handler = scard.handler

    def wrapped(c: Client, argv: list[bytes]) -> Any:
        seen.append(argv)
        return handler(c, argv)  # type: ignore[misc]

    monkeypatch.setattr(scard, "handler", wrapped)
    client.data_received(encode_command("SCARD", "s"))
    assert seen == [[b"SCARD", b"s"]]
    client.data_received(encode_command("GET", "k"))
    client.data_received(encode_command("CONFIG", "RESETSTAT"))
    assert get.latency is None and get.calls == 0
    client.data_received(encode_command("GET", "k"))
    assert get.calls == 1 and get.latency is not None and get.latency.total == 1


@needs_c
def test_current_client_is_the_last_reader() -> None:
    """server.current_client (ServerBase's member with the C loop, a plain attribute in pure mode)
    names the client whose read the loop ran last, as Server.call leaves it."""
    server, client, transport = _connected()
    other = Client(server)
    other.connection_made(type(transport)())  # type: ignore[arg-type]
    assert fastpath.run(client, PING) == len(PING)
    assert server.current_client is client
    assert fastpath.run(other, PING) == len(PING)
    assert server.current_client is other
    server.current_client = None
    assert server.current_client is None
    client.data_received(encode_command("GET", "k"))
    assert server.current_client is client
