"""Keyspace notifications: the same command stream against dumpling and real Redis,
with a subscriber on ``__key*__:*`` on each; the notification sequences must match
byte for byte (RESP2 and RESP3 subscribers).

``EVENT_CASES`` is the table to extend when a command family lands: a row runs as
soon as dumpling knows all of its commands (until then it is skipped, naming the
missing command).  ``EXPECTED_74`` holds rows for commands newer than the 7.0
oracle (hash-field expiry), asserted against Redis 7.4's documented events.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import (
    Pair,
    RawConnection,
    ServerProcess,
    encode_command,
    free_port,
    parse_reply,
    require_redis,
    start_dumpling,
    start_redis,
)

Cmd = tuple[str | bytes | int, ...]
_tokens = itertools.count()


# ----------------------------------------------------------------------------- helpers


def drain(conn: RawConnection) -> list[bytes]:
    """Every push received before the reply to a PING sent now."""
    token = b"sync-%d" % next(_tokens)
    conn.send(encode_command("PING", token))
    bulk = b"$%d\r\n%s\r\n" % (len(token), token)
    pong2 = b"*2\r\n$4\r\npong\r\n" + bulk
    out: list[bytes] = []
    while True:
        reply = conn.read_reply()
        if reply in (bulk, pong2):
            return out
        out.append(reply)


def set_flags(servers: tuple[ServerProcess, ...], flags: str) -> None:
    for server in servers:
        with server.raw() as conn:
            assert conn.call("CONFIG", "SET", "notify-keyspace-events", flags) == b"+OK\r\n"


@pytest.fixture
def servers(dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The shared servers; notifications are switched off again afterwards."""
    both = (dumpling_server, redis_server)
    for server in both:
        with server.raw() as conn:
            conn.call("FLUSHALL")
    yield both
    set_flags(both, "")
    for server in both:
        with server.raw() as conn:
            conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")


class Watcher:
    """A subscriber to every keyspace/keyevent channel on both servers."""

    def __init__(self, servers: tuple[ServerProcess, ServerProcess], resp: int = 2) -> None:
        self.pair = Pair(*servers, resp=resp)
        self.pair.same("PSUBSCRIBE", "__key*__:*")

    def events(self) -> list[bytes]:
        ours, theirs = drain(self.pair.ours), drain(self.pair.theirs)
        assert ours == theirs, "\n  dumpling: %r\n  redis:    %r" % (_show(ours), _show(theirs))
        return ours

    def close(self) -> None:
        self.pair.close()


def _show(frames: list[bytes]) -> list[tuple[bytes, bytes]]:
    out = []
    for frame in frames:
        msg = parse_reply(frame)
        out.append((msg[2], msg[3]))  # type: ignore[index]
    return out


def missing_commands(conn: RawConnection, commands: list[Cmd]) -> list[str]:
    missing = []
    for name in {str(cmd[0]).upper() for cmd in commands}:
        if conn.call("COMMAND", "INFO", name) in (b"*1\r\n$-1\r\n", b"*1\r\n*-1\r\n"):
            missing.append(name)
    return sorted(missing)


def run_stream(servers, flags: str, commands: list[Cmd], resp: int = 2, check_replies: bool = True) -> list[bytes]:
    """Enable ``flags``, run ``commands`` on both servers, return the (identical) notifications."""
    set_flags(servers, flags)
    watcher = Watcher(servers, resp)
    actor = Pair(*servers)
    try:
        missing = missing_commands(actor.ours, commands)
        if missing:
            pytest.skip("dumpling has no " + ", ".join(missing) + " yet")
        # The active cycle would race the sequence (SET ... EXAT 1 stores an already
        # expired key): only what the commands themselves fire is compared here.
        actor.both("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        for cmd in commands:
            if check_replies:
                actor.same(*cmd)
            else:
                actor.both(*cmd)
        return watcher.events()
    finally:
        actor.both("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        actor.close()
        watcher.close()


def ke(event: str, key: str, db: int = 0) -> list[tuple[bytes, bytes]]:
    """The two messages one event produces with K and E enabled (keyspace first)."""
    return [
        (b"__keyspace@%d__:%s" % (db, key.encode()), event.encode()),
        (b"__keyevent@%d__:%s" % (db, event.encode()), key.encode()),
    ]


# ----------------------------------------------------------------------------- per-command events

# Redis fires ``keymiss`` (and counts a miss) for EXISTS/TYPE/TTL too: their lookups only skip the
# LRU/LFU touch (``Database.lookup_notouch``).

# (id, commands[, marks]).  All run with KEA + n + m on a flushed server; the whole sequence is compared.
EVENT_ROWS: list[tuple[Any, ...]] = [
    # strings
    ("set", [("SET", "k", "v"), ("SET", "k", "w"), ("SET", "k", "x", "NX"), ("SET", "n", "1", "XX"), ("SET", "k", "y", "GET")]),
    ("set-ttl", [("SET", "k", "v", "EX", "100"), ("SET", "k", "v", "KEEPTTL"),
                 ("SETEX", "e", "100", "v"), ("PSETEX", "p", "100000", "v"), ("SET", "x", "v", "EXAT", "1")]),
    ("setnx-mset", [("SETNX", "a", "1"), ("SETNX", "a", "2"), ("MSET", "a", "1", "b", "2"), ("MSETNX", "c", "1", "a", "1"),
                    ("MSETNX", "c", "1", "d", "2"), ("GETSET", "a", "9"), ("GETSET", "new", "1")]),
    ("getdel-getex", [("SET", "a", "1"), ("GETDEL", "a"), ("GETDEL", "a"), ("SET", "b", "1"), ("GETEX", "b", "EX", "100"),
                      ("GETEX", "b", "PERSIST"), ("GETEX", "b", "PERSIST"), ("GETEX", "b"), ("GETEX", "b", "PXAT", "1")]),
    ("counters", [("INCR", "i"), ("INCRBY", "i", "5"), ("DECR", "i"), ("DECRBY", "i", "2"), ("INCRBYFLOAT", "f", "1.5"),
                  ("INCR", "f")]),
    ("append-setrange", [("APPEND", "a", "x"), ("APPEND", "a", "y"), ("SETRANGE", "a", "5", "z"), ("SETRANGE", "b", "0", ""),
                         ("SETRANGE", "c", "3", "")]),
    ("bits", [("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "1"), ("SET", "x", "a"), ("BITOP", "AND", "d", "b", "x"),
              ("BITOP", "OR", "d", "missing1", "missing2"), ("BITFIELD", "bf", "SET", "u8", "0", "1"),
              ("BITFIELD", "bf", "GET", "u8", "0")]),
    # generic
    ("del", [("SET", "a", "1"), ("SET", "b", "1"), ("DEL", "a", "b", "c"), ("DEL", "a"), ("SET", "u", "1"), ("UNLINK", "u", "x")]),
    ("expire", [("SET", "a", "1"), ("EXPIRE", "a", "100"), ("PEXPIRE", "a", "100000"), ("EXPIRE", "a", "100", "NX"),
                ("EXPIREAT", "a", "9999999999"), ("PERSIST", "a"), ("PERSIST", "a"), ("EXPIRE", "missing", "10"),
                ("PEXPIREAT", "a", "1"), ("SET", "b", "1"), ("EXPIRE", "b", "0")]),
    ("rename", [("SET", "a", "1"), ("RENAME", "a", "b"), ("SET", "c", "1"), ("RENAME", "b", "c"), ("RENAMENX", "c", "d"),
                ("SET", "e", "1"), ("RENAMENX", "d", "e"), ("RENAME", "d", "d")]),
    ("move-copy", [("SET", "a", "1"), ("MOVE", "a", "3"), ("SET", "b", "1"), ("COPY", "b", "c"), ("COPY", "b", "c"),
                   ("COPY", "b", "c", "REPLACE"), ("COPY", "b", "z", "DB", "4")]),
    ("no-events", [("SET", "a", "1"), ("TOUCH", "a"), ("DUMP", "a"), ("TYPE", "a"), ("EXISTS", "a"), ("TTL", "a"),
                   ("OBJECT", "ENCODING", "a"), ("FLUSHDB",)]),
    ("keymiss", [("GET", "nope"), ("SET", "a", "1"), ("GET", "a"), ("MGET", "a", "nope2"), ("STRLEN", "nope3"),
                 ("GETRANGE", "nope4", "0", "1"), ("LRANGE", "nolist", "0", "-1"), ("GETDEL", "nope5"), ("GETEX", "nope6"),
                 ("SET", "nope7", "v", "GET"), ("OBJECT", "ENCODING", "nope8"), ("ZSCORE", "nozset", "m")]),
    ("keymiss-peek", [("EXISTS", "nope"), ("TYPE", "nope"), ("TTL", "nope"), ("PTTL", "nope"), ("EXPIRETIME", "nope")]),
    ("multi-db", [("SELECT", "5"), ("SET", "k", "v"), ("DEL", "k"), ("SELECT", "0")]),
    ("binary-key", [("SET", b"sp ace\x00\xff", "v"), ("DEL", b"sp ace\x00\xff")]),
    ("sort-store", [("RPUSH", "l", "3", "1", "2"), ("SORT", "l", "STORE", "dst"), ("SORT", "missing", "STORE", "dst")]),
    # transactions: events fire as each queued command runs
    ("exec", [("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("DEL", "a"), ("EXEC",)]),
    # lists
    ("lists", [("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPUSHX", "l", "d"), ("RPUSHX", "nol", "d"),
               ("LINSERT", "l", "BEFORE", "a", "x"), ("LSET", "l", "0", "y"), ("LREM", "l", "1", "x"), ("LTRIM", "l", "0", "1"),
               ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l")]),
    ("lists-move", [("RPUSH", "s", "1", "2", "3"), ("RPOPLPUSH", "s", "d"), ("LMOVE", "s", "d", "LEFT", "RIGHT"),
                    ("LMOVE", "s", "s", "LEFT", "LEFT"), ("LMPOP", "2", "x", "s", "RIGHT", "COUNT", "5"),
                    ("BLPOP", "d", "0"), ("BRPOP", "d", "0"), ("LTRIM", "nol", "0", "1")]),
    # sets
    ("sets", [("SADD", "s", "a", "b", "c"), ("SADD", "s", "a"), ("SREM", "s", "a", "zz"), ("SMOVE", "s", "t", "b"),
              ("SPOP", "s"), ("SMOVE", "t", "u", "b"), ("SADD", "v", "1"), ("SINTERSTORE", "i", "u", "v"),
              ("SUNIONSTORE", "i", "u", "v"), ("SDIFFSTORE", "i", "u", "u"), ("SINTERSTORE", "i", "u", "v"),
              ("SPOP", "v", "5"), ("SREM", "u", "b")]),
    # hashes
    ("hashes", [("HSET", "h", "f", "1", "g", "2"), ("HSETNX", "h", "f", "x"), ("HSETNX", "h", "n", "x"), ("HMSET", "h", "a", "b"),
                ("HINCRBY", "h", "f", "2"), ("HINCRBYFLOAT", "h", "g", "0.5"), ("HDEL", "h", "f", "zz"),
                ("HDEL", "h", "g", "n", "a")]),
    # sorted sets
    ("zsets", [("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"), ("ZADD", "z", "1", "a"), ("ZADD", "z", "INCR", "5", "a"),
               ("ZINCRBY", "z", "1", "b"), ("ZREM", "z", "b", "zz"), ("ZPOPMIN", "z"), ("ZPOPMAX", "z"),
               ("ZADD", "z", "1", "x", "2", "y", "3", "w"), ("ZREMRANGEBYSCORE", "z", "0", "1"), ("ZREMRANGEBYRANK", "z", "0", "0"),
               ("ZADD", "lex", "0", "a", "0", "b"), ("ZREMRANGEBYLEX", "lex", "-", "+"), ("ZMPOP", "1", "z", "MIN", "COUNT", "9"),
               ("ZADD", "p", "1", "a"), ("BZPOPMIN", "p", "0")]),
    ("zsets-store", [("ZADD", "a", "1", "x", "2", "y"), ("ZADD", "b", "3", "y"), ("ZUNIONSTORE", "u", "2", "a", "b"),
                     ("ZINTERSTORE", "i", "2", "a", "b"), ("ZDIFFSTORE", "d", "2", "a", "b"), ("ZRANGESTORE", "r", "a", "0", "-1"),
                     ("ZINTERSTORE", "i", "2", "a", "missing"), ("ZRANGESTORE", "r", "missing", "0", "-1")]),
    ("geo", [("GEOADD", "g", "13.361389", "38.115556", "Palermo"), ("GEOADD", "g", "15.087269", "37.502669", "Catania"),
             ("GEOSEARCHSTORE", "gs", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "500", "km", "ASC"),
             ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gr")]),
    # streams
    ("streams", [("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "MAXLEN", "1", "2-1", "f", "v"), ("XADD", "s", "3-1", "f", "v"),
                 ("XDEL", "s", "3-1", "9-9"), ("XTRIM", "s", "MAXLEN", "0"), ("XSETID", "s", "5-0"),
                 ("XGROUP", "CREATE", "s", "g", "$"), ("XGROUP", "SETID", "s", "g", "0"),
                 ("XGROUP", "CREATECONSUMER", "s", "g", "c"), ("XADD", "s", "6-0", "a", "b"),
                 ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"), ("XGROUP", "DELCONSUMER", "s", "g", "c"),
                 ("XGROUP", "DESTROY", "s", "g"), ("XADD", "nos", "NOMKSTREAM", "*", "a", "b")]),

]
EVENT_CASES = [pytest.param(name, commands, id=name, marks=marks) for name, commands, *marks in EVENT_ROWS]


@pytest.mark.parametrize("name,commands", EVENT_CASES)
def test_command_events(servers, name, commands):
    events = run_stream(servers, "KEAnm", commands)
    if name == "no-events":
        assert len(events) == 4  # only SET's new + set
    else:
        assert events


def test_restore_events(servers, real):
    real.set("src", "payload")
    payload = real.dump("src")
    real.delete("src")
    commands: list[Cmd] = [
        ("RESTORE", "k", "0", payload),
        ("RESTORE", "k", "0", payload, "REPLACE"),
        ("RESTORE", "t", "100000", payload),
        ("RESTORE", "k", "1", payload, "REPLACE", "ABSTTL"),  # already expired: only del
        ("RESTORE", "gone", "1", payload, "ABSTTL"),  # nothing
    ]
    run_stream(servers, "KEAn", commands)


@pytest.mark.parametrize("resp", [2, 3])
def test_subscriber_protocols(servers, resp):
    events = run_stream(servers, "KEA", [("SET", "k", "v"), ("DEL", "k")], resp=resp)
    assert events[0] == (
        b"%s4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n" % (
            b">" if resp == 3 else b"*")
    )
    assert len(events) == 4


# ----------------------------------------------------------------------------- flags

# One stream touching every class; commands dumpling lacks are left out on both servers.
CLASS_STREAM: list[Cmd] = [
    ("SET", "str", "v"),  # $ (+ n)
    ("EXPIRE", "str", "100"),  # g
    ("PERSIST", "str"),  # g
    ("RENAME", "str", "str2"),  # g (+ n)
    ("GET", "missing"),  # m
    ("LPUSH", "list", "a"),  # l
    ("SADD", "set", "a"),  # s
    ("HSET", "hash", "f", "v"),  # h
    ("ZADD", "zset", "1", "a"),  # z
    ("XADD", "stream", "1-1", "f", "v"),  # t
    ("DEL", "list", "set", "hash", "zset", "stream"),  # g
    ("SET", "exp", "v", "PX", "1"),
    ("DEBUG", "SLEEP", "0.01"),
    ("GET", "exp"),  # x (lazy) + m
]

FLAG_SETS = ["KEA", "KEAnm", "K$", "Eg", "Kx", "El", "Ks", "Eh", "Kz", "Et", "Kn", "Em", "KEgm", "K$lshzxetd",
             "E$lshzxetdn", "Ag", "KE", "A", "nm", "Km$"]


@pytest.mark.parametrize("flags", FLAG_SETS)
def test_event_classes(servers, flags):
    actor = Pair(*servers)
    try:
        present = [cmd for cmd in CLASS_STREAM if not missing_commands(actor.ours, [cmd])]
    finally:
        actor.close()
    events = run_stream(servers, flags, present)
    if not ({"K", "E"} & set(flags)) or not (set(flags) - {"K", "E"}):
        assert events == []
    else:
        if "K" not in flags:
            assert all(b"__keyspace@" not in e for e in events)
        if "E" not in flags:
            assert all(b"__keyevent@" not in e for e in events)


@pytest.mark.parametrize("value", ["KEA", "AKE", "$lshzxeKEtmdn", "gE", "Kx$", "A", "nmA", "", "KEAnm"])
def test_config_get_rendering(pairs, servers, value):
    pairs.same("CONFIG", "SET", "notify-keyspace-events", value)
    pairs.same("CONFIG", "GET", "notify-keyspace-events")


def test_config_set_rejects_unknown_class(pairs, servers):
    pairs.same("CONFIG", "SET", "notify-keyspace-events", "KEq")
    pairs.same("CONFIG", "GET", "notify-keyspace-events")


def _start_with_config_file(name: str, conf: str) -> ServerProcess:
    """``start_dumpling``/``start_redis`` put their flags first; a config file must come first."""
    port = free_port()
    if name == "dumpling":
        argv = [sys.executable, "-m", "dumpling", conf, "--port", str(port)]
    else:
        argv = [require_redis(), conf, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return ServerProcess(argv, port, name)


@pytest.mark.parametrize("source", ["command-line", "config-file"])
def test_flags_from_startup_configuration(tmp_path, source):
    if source == "command-line":
        servers = (start_dumpling("--notify-keyspace-events", "Kg$"), start_redis("--notify-keyspace-events", "Kg$"))
    else:
        conf = tmp_path / "notify.conf"
        conf.write_text("notify-keyspace-events Kg$\n")
        servers = (_start_with_config_file("dumpling", str(conf)), _start_with_config_file("redis", str(conf)))
    try:
        watcher = Watcher(servers)
        actor = Pair(*servers)
        assert actor.same("CONFIG", "GET", "notify-keyspace-events").endswith(b"$3\r\ng$K\r\n")
        actor.same("SET", "k", "v")
        actor.same("EXPIRE", "k", "100")
        actor.same("DEL", "k")
        assert _show(watcher.events()) == [(b"__keyspace@0__:k", b"set"), (b"__keyspace@0__:k", b"expire"),
                                           (b"__keyspace@0__:k", b"del")]
        watcher.close()
        actor.close()
    finally:
        for server in servers:
            server.stop()


# ----------------------------------------------------------------------------- expiry


def _no_active_expire(servers) -> None:
    for server in servers:
        with server.raw() as conn:
            conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")


@pytest.mark.parametrize(
    "access",
    [("GET", "k"), ("EXISTS", "k"), ("TTL", "k"), ("TYPE", "k"), ("SET", "k", "new"), ("DEL", "k"), ("EXPIRE", "k", "10"),
     ("RENAME", "k", "j"), ("SCAN", "0"), ("RANDOMKEY",), ("INCR", "k"), ("APPEND", "k", "x"), ("LPUSH", "k", "x"),
     ("OBJECT", "ENCODING", "k")],
    ids=lambda a: " ".join(map(str, a)),
)
def test_lazy_expired_event(servers, access):
    _no_active_expire(servers)
    commands: list[Cmd] = [("SET", "k", "v", "PX", "1"), ("DEBUG", "SLEEP", "0.01"), access]
    events = run_stream(servers, "KEAnm", commands)
    assert any(b"expired" in e for e in events)


def test_keys_does_not_expire(servers):
    _no_active_expire(servers)
    events = run_stream(servers, "KEA", [("SET", "k", "v", "PX", "1"), ("DEBUG", "SLEEP", "0.01"), ("KEYS", "*"),
                                         ("DBSIZE",)])
    assert not any(b"expired" in e for e in events)


def test_active_expired_event(servers):
    set_flags(servers, "KEx")
    watcher = Watcher(servers)
    actor = Pair(*servers)
    try:
        actor.same("SET", "gone", "v", "PX", "30")
        actor.same("SET", "stays", "v", "PX", "100000")
        collected: tuple[list[bytes], list[bytes]] = ([], [])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(len(c) == 2 for c in collected):
            time.sleep(0.05)
            collected[0].extend(drain(watcher.pair.ours))
            collected[1].extend(drain(watcher.pair.theirs))
        assert collected[0] == collected[1]
        assert _show(collected[0]) == [(b"__keyspace@0__:gone", b"expired"), (b"__keyevent@0__:expired", b"gone")]
    finally:
        actor.close()
        watcher.close()


def test_eviction_events(servers):
    """maxmemory far below usage with allkeys-*: every key is evicted, each with an ``evicted`` event."""
    set_flags(servers, "KEe")
    watcher = Watcher(servers)
    actor = Pair(*servers)
    try:
        for i in range(5):
            actor.same("SET", "key%d" % i, "v")
        actor.same("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
        actor.both("CONFIG", "SET", "maxmemory", "1")
        actor.both("SET", "trigger", "v")  # refused with OOM once everything is gone
        ours, theirs = drain(watcher.pair.ours), drain(watcher.pair.theirs)
        assert sorted(_show(ours)) == sorted(_show(theirs))
        assert len(ours) == 10
    finally:
        for server in servers:
            with server.raw() as conn:
                conn.call("CONFIG", "SET", "maxmemory", "0")
                conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        actor.close()
        watcher.close()


# ----------------------------------------------------------------------------- delivery order


def test_own_notification_follows_reply_72(servers):
    """A RESP3 client watching its own keys gets the events after its command's reply (Redis 7.2+;
    7.0 sends them first).  Same frames as Redis, 7.2 order asserted explicitly."""
    set_flags(servers, "KE$")
    pair = Pair(*servers, resp=3)
    try:
        pair.same("SUBSCRIBE", "__keyevent@0__:set")
        for conn in (pair.ours, pair.theirs):
            conn.send(encode_command("SET", "k", "v"))
        ours = [pair.ours.read_reply(), pair.ours.read_reply()]
        theirs = [pair.theirs.read_reply(), pair.theirs.read_reply()]
        assert ours == [b"+OK\r\n", b">3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n"]
        assert sorted(ours) == sorted(theirs)
    finally:
        pair.close()


# ----------------------------------------------------------------------------- Redis 7.4 events (no 7.0 oracle)

# (id, commands, sleep before the last command, expected (channel, message) with KEA)
EXPECTED_74: list[tuple[str, list[Cmd], list[tuple[bytes, bytes]]]] = [
    ("hexpire", [("HSET", "h", "f", "1", "g", "2"), ("HEXPIRE", "h", "100", "FIELDS", "1", "f"),
                 ("HPERSIST", "h", "FIELDS", "1", "f"), ("HPERSIST", "h", "FIELDS", "1", "f")],
     ke("hset", "h") + ke("hexpire", "h") + ke("hpersist", "h")),
    ("hexpire-past", [("HSET", "h", "f", "1", "g", "2"), ("HEXPIRE", "h", "0", "FIELDS", "1", "f"),
                      ("HPEXPIRE", "h", "0", "FIELDS", "1", "g")],
     ke("hset", "h") + ke("hdel", "h") + ke("hdel", "h") + ke("del", "h")),
    ("hexpired-lazy", [("HSET", "h", "f", "1", "g", "2"), ("HPEXPIRE", "h", "1", "FIELDS", "2", "f", "g"),
                       ("DEBUG", "SLEEP", "0.01"), ("HGET", "h", "f")],  # (g stays stored: no del)
     ke("hset", "h") + ke("hexpire", "h") + ke("hexpired", "h")),
    ("hexpired-last-field", [("HSET", "h", "f", "1"), ("HPEXPIRE", "h", "1", "FIELDS", "1", "f"),
                             ("DEBUG", "SLEEP", "0.01"), ("HEXISTS", "h", "f")],
     ke("hset", "h") + ke("hexpire", "h") + ke("hexpired", "h") + ke("del", "h")),
]


@pytest.mark.parametrize("name,commands,expected", EXPECTED_74, ids=[c[0] for c in EXPECTED_74])
def test_hash_field_expiry_events_74(dumpling_server, name, commands, expected):
    with dumpling_server.raw() as conn:
        missing = missing_commands(conn, commands)
        if missing:
            pytest.skip("dumpling has no " + ", ".join(missing) + " yet")
        conn.call("FLUSHALL")
        conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        conn.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
    try:
        with dumpling_server.raw() as sub, dumpling_server.raw() as actor:
            sub.call("PSUBSCRIBE", "__key*__:*")
            for cmd in commands:
                actor.call(*cmd)
            assert _show(drain(sub)) == expected
    finally:
        with dumpling_server.raw() as conn:
            conn.call("CONFIG", "SET", "notify-keyspace-events", "")
            conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")

