"""Client-side caching (CLIENT TRACKING), differentially against real Redis: every option
and error, invalidation as RESP3 pushes and as ``__redis__:invalidate`` messages of a RESP2
redirect client, expiry / eviction / flush invalidations, BCAST prefixes, OPTIN / OPTOUT
with CLIENT CACHING, NOLOOP, the table limit, the client introspection that shows it, and
redis-py's client-side cache working end to end.

Each scenario runs the same commands on several connections to dumpling and to Redis
(``World``); client ids differ between the servers, so a ``Conn(i)`` argument stands for
the id of connection ``i`` on each side.  Where Redis 7.0 (the oracle) and 7.4 differ, the
7.4 bytes are asserted explicitly.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.servers import RawConnection, ServerProcess, encode_command, info_int, start_dumpling, wait_blocked

_tokens = itertools.count()


class Conn:
    """Placeholder for the client id of connection ``index`` (per server)."""

    def __init__(self, index: int) -> None:
        self.index = index


class World:
    """Connections opened in pairs (dumpling, Redis); every exchange is compared."""

    def __init__(self, ours: ServerProcess, theirs: ServerProcess) -> None:
        self.servers = (ours, theirs)
        self.conns: list[tuple[RawConnection, RawConnection]] = []
        self.ids: list[tuple[int, int]] = []

    def connect(self, resp: int = 2) -> int:
        pair = (self.servers[0].raw(), self.servers[1].raw())
        if resp == 3:
            for c in pair:
                c.call("HELLO", "3")
        self.ids.append((int(pair[0].call("CLIENT", "ID")[1:-2]), int(pair[1].call("CLIENT", "ID")[1:-2])))
        self.conns.append(pair)
        return len(self.conns) - 1

    def close(self) -> None:
        for pair in self.conns:
            for c in pair:
                c.close()

    def _args(self, side: int, args: tuple[object, ...]) -> list[bytes | str | int]:
        return [self.ids[a.index][side] if isinstance(a, Conn) else a for a in args]  # type: ignore[misc]

    def hello(self, i: int, resp: int) -> None:
        """Switch protocol (HELLO's reply names each server's version: not compared)."""
        for c in self.conns[i]:
            c.call("HELLO", str(resp))

    def send(self, i: int, *args: object) -> None:
        for side, c in enumerate(self.conns[i]):
            c.send(encode_command(*self._args(side, args)))

    def read(self, i: int) -> bytes:
        ours, theirs = (c.read_reply() for c in self.conns[i])
        assert ours == theirs, f"conn {i}\n  dumpling: {ours!r}\n  redis:    {theirs!r}"
        return ours

    def call(self, i: int, *args: object) -> bytes:
        self.send(i, *args)
        return self.read(i)

    def stat(self, side: int, name: str) -> int:
        """An INFO stats field of one server, read through connection 0."""
        return info_int(self.conns[0][side], "stats", name)

    def eventually(self, check: Callable[[int], bool], what: str) -> None:
        """Poll until ``check(side)`` holds on both servers: what a timer or another
        connection does happens when the loaded machine gets to it, not within a sleep."""
        deadline = time.monotonic() + 20
        for side in (0, 1):
            while not check(side):
                assert time.monotonic() < deadline, f"{what} ({('dumpling', 'redis')[side]})"
                time.sleep(0.01)

    def pushes(self, i: int) -> list[bytes]:
        """Everything connection ``i`` received before the reply to a PING sent now."""
        token = b"sync-%d" % next(_tokens)
        seen = []
        for c in self.conns[i]:
            c.send(encode_command("PING", token))
            got = []
            while True:
                item = c.read_reply()
                if token in item and (item.startswith(b"$") or item.startswith(b"*2\r\n$4\r\npong")):
                    break
                got.append(item)
            seen.append(got)
        assert seen[0] == seen[1], f"conn {i}\n  dumpling: {seen[0]!r}\n  redis:    {seen[1]!r}"
        return seen[0]


def inv3(*keys: bytes) -> bytes:
    return b">2\r\n$10\r\ninvalidate\r\n" + _keys(keys)


def inv2(*keys: bytes) -> bytes:
    return b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" + _keys(keys)


def _keys(keys: tuple[bytes, ...]) -> bytes:
    return b"*%d\r\n" % len(keys) + b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in keys)


@pytest.fixture
def world(dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[World]:
    w = World(dumpling_server, redis_server)
    w.connect()  # connection 0: housekeeping
    w.call(0, "FLUSHALL")
    yield w
    w.call(0, "CONFIG", "SET", "tracking-table-max-keys", "1000000")
    w.close()


def redirect_target(w: World) -> int:
    """A RESP2 connection subscribed to ``__redis__:invalidate``."""
    s = w.connect()
    w.call(s, "SUBSCRIBE", "__redis__:invalidate")
    return s


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("resp", [2, 3])
def test_tracking_errors(world: World, resp: int) -> None:
    w = world
    a = w.connect(resp)
    other = w.connect()
    for args in [
        ("CLIENT", "TRACKING"),
        ("CLIENT", "TRACKING", "maybe"),
        ("CLIENT", "TRACKING", "on", "bogus"),
        ("CLIENT", "TRACKING", "on", "REDIRECT"),
        ("CLIENT", "TRACKING", "on", "PREFIX"),
        ("CLIENT", "TRACKING", "on", "REDIRECT", "notanumber"),
        ("CLIENT", "TRACKING", "on", "REDIRECT", "999999"),
        ("CLIENT", "TRACKING", "on", "REDIRECT", Conn(other), "REDIRECT", Conn(other)),
        ("CLIENT", "TRACKING", "on", "PREFIX", "a"),
        ("CLIENT", "TRACKING", "on", "BCAST", "OPTIN"),
        ("CLIENT", "TRACKING", "on", "BCAST", "OPTOUT"),
        ("CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"),
        ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a"),
        ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "ab"),
        ("CLIENT", "TRACKING", "off", "bogus"),
        ("CLIENT", "CACHING", "yes"),
        ("CLIENT", "CACHING"),
        ("CLIENT", "GETREDIR", "x"),
        ("CLIENT", "TRACKINGINFO", "x"),
    ]:
        w.call(a, *args)
    w.call(a, "CLIENT", "TRACKING", "on", "OPTIN")
    for args in [
        ("CLIENT", "CACHING", "no"),
        ("CLIENT", "CACHING", "maybe"),
        ("CLIENT", "TRACKING", "on", "OPTOUT"),
        ("CLIENT", "TRACKING", "on", "BCAST"),
        ("CLIENT", "CACHING", "yes"),
        ("CLIENT", "TRACKINGINFO"),
    ]:
        w.call(a, *args)
    w.call(a, "CLIENT", "TRACKING", "off")
    w.call(a, "CLIENT", "TRACKING", "on", "OPTOUT")
    for args in [
        ("CLIENT", "CACHING", "yes"),
        ("CLIENT", "TRACKING", "on", "OPTIN"),
        ("CLIENT", "CACHING", "no"),
        ("CLIENT", "TRACKINGINFO"),
    ]:
        w.call(a, *args)
    w.call(a, "CLIENT", "TRACKING", "off")
    w.call(a, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "abc")
    for args in [
        ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab"),
        ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "abcd"),
        ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x", "PREFIX", "abc"),
        ("CLIENT", "TRACKING", "on"),
        ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b", "PREFIX", "c", "NOLOOP"),
        ("CLIENT", "TRACKINGINFO"),
    ]:
        w.call(a, *args)


def test_trackinginfo_and_getredir(world: World) -> None:
    w = world
    a = w.connect()
    s = redirect_target(w)
    for resp in ("2", "3"):
        w.hello(a, int(resp))
        w.call(a, "CLIENT", "TRACKINGINFO")
        w.call(a, "CLIENT", "GETREDIR")
        w.call(a, "CLIENT", "TRACKING", "on")
        w.call(a, "CLIENT", "TRACKINGINFO")
        w.call(a, "CLIENT", "GETREDIR")
        w.call(a, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(s), "NOLOOP")
        for side, conn in enumerate(w.conns[a]):
            assert conn.call("CLIENT", "GETREDIR") == b":%d\r\n" % w.ids[s][side]
            info = conn.call("CLIENT", "TRACKINGINFO")
            assert info.replace(b":%d\r\n" % w.ids[s][side], b":ID\r\n") == (
                b"%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:ID\r\n"
                b"$8\r\nprefixes\r\n*0\r\n" if resp == "3" else
                b"*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:ID\r\n"
                b"$8\r\nprefixes\r\n*0\r\n")
        w.call(a, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x")
        w.call(a, "CLIENT", "TRACKING", "off")
        w.call(a, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x", "PREFIX", "b")
        w.call(a, "CLIENT", "TRACKINGINFO")
        w.call(a, "CLIENT", "TRACKING", "off")
        w.call(a, "CLIENT", "TRACKINGINFO")


# ----------------------------------------------------------------------------- invalidation


def test_resp3_push_and_redirect_to_resp2_subscriber(world: World) -> None:
    w = world
    a = w.connect(3)
    b = w.connect()
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on")
    w.call(b, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(s))
    w.call(a, "SET", "k", "1")
    for key in ("k", "h", "l", "z"):
        w.call(a, "EXISTS", key)
    w.call(a, "GET", "k")
    w.call(b, "MGET", "k", "m")
    w.call(a, "HGET", "h", "f")
    w.call(a, "LRANGE", "l", "0", "-1")
    w.call(b, "ZSCORE", "z", "m")
    assert w.pushes(a) == []
    w.call(0, "SET", "k", "2")
    assert w.pushes(a) == [inv3(b"k")]
    assert w.pushes(s) == [inv2(b"k")]
    w.call(0, "SET", "k", "3")  # no longer tracked: nothing
    assert w.pushes(a) == []
    w.call(0, "HSET", "h", "f", "v")
    w.call(0, "RPUSH", "l", "x")
    w.call(0, "ZADD", "z", "1", "m")
    w.call(0, "MSET", "m", "1", "unrelated", "2")
    assert w.pushes(a) == [inv3(b"h"), inv3(b"l"), inv3(b"z")]
    assert w.pushes(s) == [inv2(b"z"), inv2(b"m")]


def test_resp2_without_redirect_gets_nothing(world: World) -> None:
    w = world
    a = w.connect()
    w.call(a, "CLIENT", "TRACKING", "on")
    w.call(a, "GET", "k")
    w.call(0, "SET", "k", "1")
    w.call(a, "SET", "k", "2")
    assert w.pushes(a) == []
    ours, theirs = (c.call("INFO", "clients") for c in w.conns[0])
    assert b"tracking_clients:1" in ours and b"tracking_clients:1" in theirs


def test_redirect_to_resp3_client_and_broken_redirect(world: World) -> None:
    w = world
    a = w.connect(3)
    t = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(t))
    w.call(a, "GET", "k")
    w.call(0, "SET", "k", "1")
    assert w.pushes(t) == [inv3(b"k")]
    assert w.pushes(a) == []
    w.call(a, "GET", "k")
    w.call(t, "QUIT")
    w.eventually(lambda side: b"id=%d " % w.ids[t][side] not in w.conns[0][side].call("CLIENT", "LIST"),
                 "the redirect client freed")
    w.call(0, "SET", "k", "2")
    for side, conn in enumerate(w.conns[a]):
        assert conn.call("PING") == b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % w.ids[t][side]
        assert conn.read_reply() == b"+PONG\r\n"
    for side, conn in enumerate(w.conns[a]):
        info = conn.call("CLIENT", "TRACKINGINFO")
        assert b"~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n:%d\r\n" % w.ids[t][side] in info
        assert b" flags=tR " in conn.call("CLIENT", "INFO")


def test_own_write_invalidation_follows_reply(world: World) -> None:
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on")
    w.call(a, "HSET", "h", "f", "1")
    w.call(a, "HGET", "h", "f")
    assert w.call(a, "HDEL", "h", "f") == b":1\r\n"
    assert w.pushes(a) == [inv3(b"h")]
    # inside MULTI: after EXEC's reply
    w.call(a, "MSET", "a", "1", "b", "2")
    w.call(a, "GET", "a")
    w.call(a, "MULTI")
    w.call(a, "INCR", "a")
    w.call(a, "GET", "b")
    assert w.call(a, "EXEC") == b"*2\r\n:2\r\n$1\r\n2\r\n"
    assert w.pushes(a) == [inv3(b"a")]


def test_noloop(world: World) -> None:
    w = world
    a = w.connect(3)
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on", "NOLOOP")
    w.call(a, "MGET", "k", "j")
    w.call(a, "SET", "k", "1")
    assert w.pushes(a) == []
    w.call(0, "SET", "j", "1")
    assert w.pushes(a) == [inv3(b"j")]
    w.call(a, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(s), "NOLOOP")
    w.call(a, "GET", "k")
    w.call(a, "EVAL", "return redis.call('set', KEYS[1], '2')", "1", "k")  # a script of the client: its own
    assert w.pushes(s) == []
    w.call(a, "GET", "k")
    w.call(0, "DEL", "k")
    assert w.pushes(s) == [inv2(b"k")]


def test_bcast_prefixes_and_noloop(world: World) -> None:
    w = world
    a = w.connect(3)
    b = w.connect()
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on", "BCAST")
    w.call(b, "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", Conn(s), "PREFIX", "user:", "PREFIX", "obj:", "NOLOOP")
    w.call(b, "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", Conn(s), "PREFIX", "zz", "NOLOOP")
    w.call(0, "MSET", "user:2", "x", "obj:1", "y", "user:1", "z", "other", "w")
    w.call(b, "SET", "user:3", "mine")
    assert w.pushes(a) == [inv3(b"obj:1", b"other", b"user:1", b"user:2"), inv3(b"user:3")]
    assert w.pushes(s) == [inv2(b"obj:1"), inv2(b"user:1", b"user:2")]
    for side, conn in enumerate(w.conns[b]):
        info = conn.call("CLIENT", "TRACKINGINFO")
        assert info == (b"*6\r\n$5\r\nflags\r\n*3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n"
                        b":%d\r\n$8\r\nprefixes\r\n*3\r\n$4\r\nobj:\r\n$5\r\nuser:\r\n$2\r\nzz\r\n" % w.ids[s][side])
        assert b" flags=tB " in conn.call("CLIENT", "INFO")
    # MULTI: one broadcast per key, last writer decides NOLOOP
    w.call(b, "MULTI")
    w.call(b, "SET", "user:9", "1")
    w.call(b, "SET", "zz9", "1")
    w.call(b, "EXEC")
    w.call(0, "SET", "zz9", "2")
    assert w.pushes(s) == [inv2(b"zz9")]


def test_switching_to_bcast_drops_earlier_keys(world: World) -> None:
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on")
    w.call(a, "GET", "k")
    w.call(a, "CLIENT", "TRACKING", "off")
    w.call(a, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "x")
    w.call(0, "SET", "k", "1")
    assert w.pushes(a) == []


def test_optin_optout_with_caching(world: World) -> None:
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on", "OPTIN")
    w.call(a, "GET", "not-cached")
    w.call(a, "CLIENT", "CACHING", "yes")
    w.call(a, "CLIENT", "TRACKINGINFO")
    w.call(a, "GET", "cached")
    w.call(a, "CLIENT", "TRACKINGINFO")  # the flag lasted one command
    w.call(a, "GET", "also-not")
    w.call(a, "CLIENT", "CACHING", "yes")
    w.call(a, "MULTI")  # ... or one transaction
    w.call(a, "GET", "in-multi-1")
    w.call(a, "GET", "in-multi-2")
    w.call(a, "EXEC")
    w.call(a, "GET", "after-multi")
    w.call(0, "MSET", "not-cached", 1, "cached", 2, "also-not", 3, "in-multi-1", 4, "in-multi-2", 5, "after-multi", 6)
    assert w.pushes(a) == [inv3(b"cached"), inv3(b"in-multi-1"), inv3(b"in-multi-2")]
    w.call(a, "CLIENT", "TRACKING", "off")
    w.call(a, "CLIENT", "TRACKING", "on", "OPTOUT")
    w.call(a, "GET", "cached")
    w.call(a, "CLIENT", "CACHING", "no")
    w.call(a, "CLIENT", "TRACKINGINFO")
    w.call(a, "GET", "not-cached")
    w.call(a, "CLIENT", "CACHING", "no")
    w.call(a, "PING")  # any command uses the flag up
    w.call(a, "GET", "also-not")
    w.call(0, "MSET", "not-cached", 1, "cached", 2, "also-not", 3)
    assert w.pushes(a) == [inv3(b"cached"), inv3(b"also-not")]


def test_scripts_track_what_they_read(world: World) -> None:
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on")
    w.call(a, "EVAL", "redis.call('set', 'k3', 'bar')", "2", "k1", "k2")
    w.call(0, "MSET", "k1", 1, "k2", 2, "k3", 3)
    assert w.pushes(a) == []
    # 7.4 (7.0 tracked the script's declared keys): a script is tracked by what it reads
    ours, writer = w.conns[a][0], w.conns[0][0]
    ours.call("EVAL", "return redis.call('get', 'k2')", "2", "k1", "k2")
    ours.call("EVAL_RO", "return redis.call('get', 'k1')", "1", "k3")
    ours.call("EVAL_RO", "return redis.call('ping')", "1", "k4")
    writer.call("MSET", "k1", 1, "k2", 2, "k3", 3, "k4", 4)
    ours.send(encode_command("PING"))
    assert [ours.read_reply() for _ in range(3)] == [inv3(b"k1"), inv3(b"k2"), b"+PONG\r\n"]


def test_expiry_and_lazy_expiry(world: World) -> None:
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on")
    expired = [w.stat(side, "expired_keys") for side in (0, 1)]
    w.call(0, "SET", "short", "v", "PX", "500")  # alive for the GET however slow the machine
    w.call(a, "GET", "short")
    w.eventually(lambda side: w.stat(side, "expired_keys") > expired[side], "active expiry")
    assert w.pushes(a) == [inv3(b"short")]
    w.call(0, "DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        w.call(a, "MULTI")
        w.call(a, "MSET", "x", "1", "y", "2")
        w.call(a, "PEXPIRE", "y", "30")
        w.call(a, "GET", "y")
        w.call(a, "EXEC")
        time.sleep(0.1)
        # the lazy expiry of y happens in MGET: its invalidation follows MGET's reply
        assert w.call(a, "MGET", "x", "y") == b"*2\r\n$1\r\n1\r\n_\r\n"
        assert w.pushes(a) == [inv3(b"y")]
    finally:
        w.call(0, "DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_bcast_expired_key_not_filtered_by_noloop(world: World) -> None:
    w = world
    a = w.connect()
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", Conn(s), "NOLOOP")
    expired = [w.stat(side, "expired_keys") for side in (0, 1)]
    w.call(a, "SET", "mykey", "v", "PX", "1")
    w.call(a, "SET", "mykeyother", "v")
    w.eventually(lambda side: w.stat(side, "expired_keys") > expired[side], "active expiry")
    assert w.pushes(s) == [inv2(b"mykey")]


def test_flushall_and_flushdb_send_null(world: World) -> None:
    w = world
    a = w.connect(3)
    b = w.connect()
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on")
    w.call(b, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(s))
    w.call(a, "GET", "k")
    w.call(b, "GET", "k")
    w.call(0, "FLUSHALL")
    assert w.pushes(a) == [b">2\r\n$10\r\ninvalidate\r\n_\r\n"]
    assert w.pushes(s) == [b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"]
    w.call(0, "FLUSHDB", "ASYNC")  # every tracking client, tracked keys or not
    assert w.pushes(a) == [b">2\r\n$10\r\ninvalidate\r\n_\r\n"]
    assert w.pushes(s) == [b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"]
    w.call(a, "SET", "a", "1")
    w.call(a, "GET", "a")
    w.call(a, "MULTI")
    w.call(a, "FLUSHDB")
    assert w.call(a, "EXEC") == b"*1\r\n+OK\r\n"
    assert w.pushes(a) == [b">2\r\n$10\r\ninvalidate\r\n_\r\n"]


def test_info_fields(world: World) -> None:
    w = world
    a = w.connect()
    b = w.connect()
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(s))
    w.call(a, "GET", "key1")
    w.call(a, "GET", "key2")
    w.call(b, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "prefix:")
    w.call(0, "MSET", "prefix:key1", 1, "prefix:key2", 2)
    for side in (0, 1):
        info = w.conns[0][side].call("INFO")
        for field in (b"tracking_total_items:2", b"tracking_total_keys:2", b"tracking_total_prefixes:1",
                      b"tracking_clients:2"):
            assert b"\r\n" + field + b"\r\n" in info, (side, field)
    w.call(0, "FLUSHALL")
    for side in (0, 1):
        info = w.conns[0][side].call("INFO")
        assert b"\r\ntracking_total_keys:0\r\n" in info and b"\r\ntracking_total_items:0\r\n" in info


def test_table_limit_evicts_with_invalidations(world: World) -> None:
    w = world
    a = w.connect()
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(s))
    for i in range(250):
        w.call(a, "GET", f"key{i}")
    w.call(0, "CONFIG", "SET", "tracking-table-max-keys", "1")
    for side in (0, 1):  # which keys go is random in Redis: count them
        conn = w.conns[s][side]
        got = [conn.read_reply() for _ in range(249)]
        assert all(m.startswith(inv2(b"")[:40]) for m in got)
        assert conn.call("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        assert b"\r\ntracking_total_keys:1\r\n" in w.conns[0][side].call("INFO", "stats")


def test_reset_clears_tracking(world: World) -> None:
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p")
    w.call(a, "RESET")
    w.call(a, "CLIENT", "TRACKINGINFO")
    w.call(0, "SET", "pk", "1")
    assert w.pushes(a) == []
    ours, theirs = (c.call("CLIENT", "INFO") for c in w.conns[a])
    assert b" flags=N " in ours and b" flags=N " in theirs and b" redir=-1 " in ours


def test_client_list_shows_tracking(world: World) -> None:
    w = world
    a = w.connect()
    s = redirect_target(w)
    w.call(a, "CLIENT", "TRACKING", "on", "REDIRECT", Conn(s))
    for side in (0, 1):
        line = w.conns[a][side].call("CLIENT", "INFO")
        assert b" flags=t " in line and b" redir=%d " % w.ids[s][side] in line
        listing = w.conns[a][side].call("CLIENT", "LIST", "ID", str(w.ids[a][side]))
        assert b" flags=t " in listing


def test_eviction_invalidation_precedes_reply(dumpling_server: ServerProcess) -> None:
    """A key evicted before a command runs (any command, under maxmemory) is invalidated
    before that command's reply (Redis 7.4's unit/tracking, with a read)."""
    with dumpling_server.raw() as c, dumpling_server.raw() as admin:
        admin.call("FLUSHALL")
        c.call("HELLO", "3")
        c.call("CLIENT", "TRACKING", "on")
        admin.call("CONFIG", "SET", "maxmemory-policy", "volatile-random")
        try:
            c.call("SETEX", "volatile-key", "10000", "x")
            c.call("GET", "volatile-key")
            time.sleep(0.2)  # dumpling.memory's estimate forgets earlier tests' keys
            info = admin.call("INFO", "memory")
            now = int(info.split(b"used_memory:")[1].split(b"\r\n")[0])
            admin.call("CONFIG", "SET", "maxmemory", str(now + 100 * 1024))
            c.call("SETBIT", "big-key", "1600000", "0")  # now over the limit
            # dumpling.memory estimates from a sample refreshed every 100 ms: poll for the eviction
            for _ in range(30):
                time.sleep(0.15)
                first = c.call("GETBIT", "big-key", "0")
                if first != b":0\r\n":
                    break
            assert first == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$12\r\nvolatile-key\r\n"
            assert c.read_reply() == b":0\r\n"
            assert c.call("EXISTS", "volatile-key") == b":0\r\n"
        finally:
            admin.call("CONFIG", "SET", "maxmemory", "0")
            admin.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
            admin.call("FLUSHALL")


def test_unblocked_client_gets_invalidation_after_reply(world: World) -> None:
    w = world
    a = w.connect(3)
    w.call(0, "RPUSH", "list2", "a")
    w.call(a, "CLIENT", "TRACKING", "on")
    w.call(a, "LRANGE", "list2", "0", "-1")
    w.send(a, "BLMOVE", "list1", "list2", "LEFT", "LEFT", "0")
    for admin in w.conns[0]:
        wait_blocked(admin)  # BLMOVE is held on both servers
    w.call(0, "RPUSH", "list1", "foo")
    assert w.read(a) == b"$3\r\nfoo\r\n"
    assert w.pushes(a) == [inv3(b"list2")]


def test_fast_path_steps_aside(world: World) -> None:
    """GET/SET pipelines (the C fast path's commands) are tracked and invalidate."""
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on")
    for conn in w.conns[a]:
        conn.send(b"".join(encode_command("GET", f"k{i}") for i in range(5)))
        assert [conn.read_reply() for _ in range(5)] == [b"_\r\n"] * 5
    for conn in w.conns[0]:
        conn.send(b"".join(encode_command("SET", f"k{i}", "v") for i in range(5)))
        assert [conn.read_reply() for _ in range(5)] == [b"+OK\r\n"] * 5
    assert w.pushes(a) == [inv3(b"k%d" % i) for i in range(5)]
    w.call(a, "CLIENT", "TRACKING", "off")


# ----------------------------------------------------------------------------- redis-py


def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Invalidations travel on their own: poll until ``check`` holds."""
    deadline = time.time() + seconds
    while not check():
        if time.time() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_redis_py_client_side_cache(dumpling_server: ServerProcess) -> None:
    cache_config = pytest.importorskip("redis.cache").CacheConfig
    client = redis.Redis(port=dumpling_server.port, protocol=3, cache_config=cache_config())
    writer = redis.Redis(port=dumpling_server.port)
    try:
        client.flushall()
        writer.set("foo", "bar")
        assert client.get("foo") == b"bar"
        cache = client.get_cache()
        assert cache is not None and cache.size == 1
        assert client.get("foo") == b"bar"  # served from the cache
        writer.set("foo", "baz")
        assert _eventually(lambda: client.get("foo") == b"baz")
        writer.flushall()  # the null invalidation empties the cache
        assert _eventually(lambda: client.get("foo") is None)
        assert cache.size == 0
    finally:
        client.close()
        writer.close()


def test_tracking_survives_pure_python() -> None:
    """The same invalidations with the C accelerators off."""
    server = start_dumpling(env={"DUMPLING_PURE": "1"})
    try:
        with server.raw() as a, server.raw() as b:
            a.call("HELLO", "3")
            assert a.call("CLIENT", "TRACKING", "on") == b"+OK\r\n"
            a.call("GET", "k")
            b.call("SET", "k", "1")
            assert a.read_reply() == inv3(b"k")
    finally:
        server.stop()


def test_client_help_lists_tracking_and_pause(dumpling_server: ServerProcess) -> None:
    """Redis 7.4's CLIENT HELP (7.0's differs), in its order."""
    with dumpling_server.raw() as c:
        text = c.call("CLIENT", "HELP")
    lines = [line[1:] for line in text.split(b"\r\n")[1:-1]]
    for expected in (b"CACHING (YES|NO)", b"GETREDIR", b"UNPAUSE", b"PAUSE <timeout> [WRITE|ALL]",
                     b"TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]", b"TRACKINGINFO"):
        assert expected in lines
    assert lines.index(b"UNPAUSE") < lines.index(b"PAUSE <timeout> [WRITE|ALL]") < lines.index(b"REPLY (ON|OFF|SKIP)")
    assert len(lines) == 58


def test_active_expiry_while_the_client_is_blocked(world: World) -> None:
    """Expiry in cron is nobody's command: NOLOOP does not hide it from a blocked client."""
    w = world
    a = w.connect(3)
    w.call(a, "CLIENT", "TRACKING", "on", "NOLOOP")
    w.call(0, "SET", "k", "v", "PX", "500")  # alive for the GET however slow the machine
    w.call(a, "GET", "k")
    w.send(a, "BLPOP", "nothing", "0")
    assert w.read(a) == inv3(b"k")  # while blocked (the read waits for the cron's expiry)
    w.call(0, "RPUSH", "nothing", "x")
    assert w.read(a) == b"*2\r\n$7\r\nnothing\r\n$1\r\nx\r\n"
