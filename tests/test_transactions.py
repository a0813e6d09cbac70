"""MULTI / EXEC / DISCARD / WATCH / UNWATCH, differentially against real Redis.

WATCH cases are tables: add a row when a command family lands.  A row whose
commands dumpling does not know yet is skipped (with the missing command named),
so the table runs in full as soon as the command exists.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from tests.servers import Pair, ServerProcess, encode_command

Cmd = tuple[str | bytes | int, ...]


@pytest.fixture
def other(request: pytest.FixtureRequest, dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[Pair]:
    """A second connection to each server, same protocol as ``pairs`` when used with it."""
    resp = 3 if "resp3" in request.node.name else 2
    p = Pair(dumpling_server, redis_server, resp=resp)
    yield p
    p.close()


def require(pair: Pair, *names: str) -> None:
    """Skip while dumpling lacks one of the commands a case needs (a family still being written)."""
    for name in names:
        reply = pair.ours.call("COMMAND", "INFO", name)
        if reply in (b"*1\r\n$-1\r\n", b"*1\r\n_\r\n", b"*1\r\n*-1\r\n"):
            pytest.skip(f"dumpling has no {name.upper()} yet")


@pytest.fixture
def no_active_expire(dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[None]:
    """Keys expire only when looked up, so expiry timing is deterministic."""
    for server in (dumpling_server, redis_server):
        with server.raw() as conn:
            assert conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
    yield
    for server in (dumpling_server, redis_server):
        with server.raw() as conn:
            conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def null_array(pair: Pair) -> bytes:
    return b"_\r\n" if pair.resp == 3 else b"*-1\r\n"


# ----------------------------------------------------------------------------- MULTI / EXEC basics


def test_queue_and_exec(pairs):
    pairs.same("MULTI")
    pairs.same("SET", "a", "1")
    pairs.same("GET", "a")
    pairs.same("INCR", "a")
    pairs.same("PING")
    assert pairs.same("EXEC") == b"*4\r\n+OK\r\n$1\r\n1\r\n:2\r\n+PONG\r\n"
    pairs.same("GET", "a")


def test_empty_transaction(pairs):
    pairs.same("MULTI")
    assert pairs.same("EXEC") == b"*0\r\n"


def test_state_errors(pairs):
    pairs.same("EXEC")
    pairs.same("DISCARD")
    pairs.same("MULTI")
    pairs.same("MULTI")  # nested: error, transaction still open and not flagged
    pairs.same("WATCH", "a")  # error, not flagged either
    pairs.same("SET", "a", "1")
    assert pairs.same("EXEC") == b"*1\r\n+OK\r\n"
    pairs.same("EXEC")


def test_discard(pairs):
    pairs.same("MULTI")
    pairs.same("SET", "a", "1")
    pairs.same("DISCARD")
    pairs.same("GET", "a")
    pairs.same("EXEC")


@pytest.mark.parametrize(
    "bad",
    [
        ("NOSUCHCOMMAND", "x"),
        ("SET", "a"),  # arity
        ("GET",),
        ("CONFIG", "NOSUCHSUB"),
        ("CONFIG",),
        ("SAVE",),  # no_multi
    ],
    ids=lambda v: " ".join(map(str, v)),
)
def test_rejected_while_queuing_aborts_exec(pairs, bad):
    pairs.same("MULTI")
    pairs.same("SET", "a", "1")
    pairs.same(*bad)
    pairs.same("SET", "b", "2")
    assert pairs.same("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    pairs.same("GET", "a")
    pairs.same("EXEC")  # the transaction is over either way


def test_runtime_errors_stay_in_place(pairs):
    pairs.same("SET", "s", "notanumber")
    pairs.same("MULTI")
    pairs.same("INCR", "s")
    pairs.same("RENAME", "missing", "x")
    pairs.same("SELECT", "99")
    pairs.same("SET", "after", "1")
    pairs.same("GET", "after")
    reply = pairs.same("EXEC")
    assert reply.startswith(b"*5\r\n-ERR value is not an integer")
    pairs.same("GET", "after")


def test_select_inside_transaction(pairs):
    pairs.same("MULTI")
    pairs.same("SELECT", "2")
    pairs.same("SET", "k", "db2")
    pairs.same("SELECT", "0")
    pairs.same("GET", "k")
    pairs.same("EXEC")
    pairs.same("SELECT", "2")
    pairs.same("GET", "k")
    pairs.same("SELECT", "0")


def test_quit_and_reset_are_not_queued(pairs):
    pairs.same("MULTI")
    pairs.same("SET", "a", "1")
    assert pairs.same("RESET") == b"+RESET\r\n"
    pairs.same("EXEC")
    pairs.same("GET", "a")
    if pairs.resp == 3:
        pairs.both("HELLO", "3")
    pairs.same("MULTI")
    assert pairs.same("QUIT") == b"+OK\r\n"
    assert pairs.ours.is_closed() and pairs.theirs.is_closed()


def test_time_is_frozen_inside_exec(pairs):
    pairs.same("MULTI")
    pairs.same("SET", "k", "v", "PX", "5")
    pairs.same("DEBUG", "SLEEP", "0.02")
    pairs.same("GET", "k")
    pairs.same("EXISTS", "k")
    assert pairs.same("EXEC") == b"*4\r\n+OK\r\n+OK\r\n$1\r\nv\r\n:1\r\n"
    time.sleep(0.01)
    pairs.same("GET", "k")


def test_commands_inside_exec_see_the_transaction(pairs):
    pairs.same("MULTI")
    pairs.same("CLIENT", "SETNAME", "tx")
    pairs.same("CLIENT", "GETNAME")
    pairs.same("ECHO", "x")
    pairs.same("EXEC")


def test_oom_refuses_queuing(pairs, dumpling_server, redis_server):
    try:
        pairs.same("CONFIG", "SET", "maxmemory", "1")
        pairs.same("MULTI")
        # Under maxmemory every queued command is refused, also read-only ones.
        assert pairs.same("GET", "a") == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
        pairs.same("PING")
        assert pairs.same("EXEC").startswith(b"-EXECABORT")
    finally:
        for server in (dumpling_server, redis_server):
            with server.raw() as conn:
                conn.call("CONFIG", "SET", "maxmemory", "0")


def test_oom_at_exec_aborts(pairs, other, dumpling_server, redis_server):
    pairs.same("MULTI")
    pairs.same("SET", "a", "1")
    pairs.same("GET", "a")
    try:
        other.same("CONFIG", "SET", "maxmemory", "1")
        assert pairs.same("EXEC") == (
            b"-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n"
        )
    finally:
        for server in (dumpling_server, redis_server):
            with server.raw() as conn:
                conn.call("CONFIG", "SET", "maxmemory", "0")
    pairs.same("EXEC")
    pairs.same("GET", "a")


def test_exec_is_not_interleaved(dumpling_server):
    """A reader pipelining GETs while a long EXEC runs sees the value before or after it, never between."""
    n = 2000
    with dumpling_server.raw() as writer, dumpling_server.raw() as reader:
        writer.call("SET", "counter", "start")
        tx = [encode_command("MULTI")] + [encode_command("SET", "counter", i) for i in range(n)]
        tx.append(encode_command("EXEC"))
        gets = encode_command("GET", "counter") * 400
        writer.send(b"".join(tx[:-1]))
        for _ in range(n + 1):
            writer.read_reply()
        writer.send(tx[-1])
        reader.send(gets)
        seen = {reader.read_reply() for _ in range(400)}
        exec_reply = writer.read_reply()
    assert exec_reply.startswith(b"*%d\r\n" % n)
    last = b"$%d\r\n%d\r\n" % (len(str(n - 1)), n - 1)
    assert seen <= {b"$5\r\nstart\r\n", last}, seen


# ----------------------------------------------------------------------------- WATCH

# Each row: (id, setup run by the watcher before WATCH k, commands another client runs,
#            whether EXEC must fail).  ``k`` is the watched key, in db 0.
WATCH_CASES: list[tuple[str, list[Cmd], list[Cmd], bool]] = [
    ("set", [("SET", "k", "v")], [("SET", "k", "w")], True),
    ("set-same-value", [("SET", "k", "v")], [("SET", "k", "v")], True),
    ("set-creates", [], [("SET", "k", "v")], True),
    ("setnx-fails", [("SET", "k", "v")], [("SETNX", "k", "w")], False),
    ("set-nx-fails", [("SET", "k", "v")], [("SET", "k", "w", "NX")], False),
    ("set-xx-missing", [], [("SET", "k", "w", "XX")], False),
    ("mset", [], [("MSET", "a", "1", "k", "2")], True),
    ("append", [("SET", "k", "v")], [("APPEND", "k", "x")], True),
    ("incr", [("SET", "k", "1")], [("INCR", "k")], True),
    ("setrange", [("SET", "k", "v")], [("SETRANGE", "k", "0", "w")], True),
    ("getdel", [("SET", "k", "v")], [("GETDEL", "k")], True),
    ("getex-ex", [("SET", "k", "v")], [("GETEX", "k", "EX", "100")], True),
    ("getex-plain", [("SET", "k", "v")], [("GETEX", "k")], False),
    ("del", [("SET", "k", "v")], [("DEL", "k")], True),
    ("del-missing", [], [("DEL", "k")], False),
    ("unlink", [("SET", "k", "v")], [("UNLINK", "k")], True),
    ("expire", [("SET", "k", "v")], [("EXPIRE", "k", "100")], True),
    ("expire-past", [("SET", "k", "v")], [("EXPIRE", "k", "-1")], True),
    ("expire-missing", [], [("EXPIRE", "k", "100")], False),
    ("persist", [("SET", "k", "v", "EX", "100")], [("PERSIST", "k")], True),
    ("persist-no-ttl", [("SET", "k", "v")], [("PERSIST", "k")], False),
    ("rename-from", [("SET", "k", "v")], [("RENAME", "k", "k2")], True),
    ("rename-to", [("SET", "src", "v")], [("RENAME", "src", "k")], True),
    ("renamenx-to", [("SET", "src", "v")], [("RENAMENX", "src", "k")], True),
    ("move-out", [("SET", "k", "v")], [("MOVE", "k", "1")], True),
    ("move-in", [], [("SELECT", "1"), ("SET", "k", "v"), ("MOVE", "k", "0"), ("SELECT", "0")], True),
    ("copy-to", [("SET", "src", "v")], [("COPY", "src", "k")], True),
    ("other-key", [("SET", "k", "v")], [("SET", "k2", "w"), ("DEL", "k3")], False),
    ("same-key-other-db", [("SET", "k", "v")], [("SELECT", "1"), ("SET", "k", "w"), ("SELECT", "0")], False),
    ("reads", [("SET", "k", "v")], [("GET", "k"), ("EXISTS", "k"), ("TTL", "k"), ("TYPE", "k"), ("TOUCH", "k")], False),
    ("flushdb", [("SET", "k", "v")], [("FLUSHDB",)], True),
    ("flushdb-missing-key", [("SET", "x", "v")], [("FLUSHDB",)], False),
    ("flushdb-other-db", [("SET", "k", "v")], [("SELECT", "1"), ("FLUSHDB",), ("SELECT", "0")], False),
    ("flushall", [("SET", "k", "v")], [("FLUSHALL",)], True),
    ("flushall-missing-key", [("SET", "x", "v")], [("FLUSHALL",)], False),
    ("swapdb", [("SET", "k", "v")], [("SWAPDB", "0", "1")], True),
    ("swapdb-key-in-other", [], [("SELECT", "1"), ("SET", "k", "v"), ("SELECT", "0"), ("SWAPDB", "0", "1")], True),
    ("swapdb-key-nowhere", [("SET", "x", "v")], [("SWAPDB", "0", "1")], False),
    ("lpush", [], [("LPUSH", "k", "a")], True),
    ("rpop", [("RPUSH", "k", "a", "b")], [("RPOP", "k")], True),
    ("sadd", [], [("SADD", "k", "a")], True),
    ("srem-missing-member", [("SADD", "k", "a")], [("SREM", "k", "zz")], False),
    ("hset", [], [("HSET", "k", "f", "v")], True),
    ("hdel", [("HSET", "k", "f", "v")], [("HDEL", "k", "f")], True),
    ("zadd", [], [("ZADD", "k", "1", "m")], True),
    ("zincrby", [("ZADD", "k", "1", "m")], [("ZINCRBY", "k", "1", "m")], True),
    ("xadd", [], [("XADD", "k", "1-1", "f", "v")], True),
    ("sort-store", [("RPUSH", "src", "2", "1")], [("SORT", "src", "STORE", "k")], True),
]


def _commands_of(rows: list[Cmd]) -> list[str]:
    return [str(cmd[0]) for cmd in rows]


@pytest.mark.parametrize("name,setup,change,fails", WATCH_CASES, ids=[c[0] for c in WATCH_CASES])
def test_watch_invalidation(pairs, other, name, setup, change, fails):
    require(pairs, *_commands_of(setup + change))
    for cmd in setup:
        pairs.same(*cmd)
    pairs.same("WATCH", "k")
    for cmd in change:
        other.same(*cmd)
    pairs.same("MULTI")
    pairs.same("SET", "k", "from-tx")
    reply = pairs.same("EXEC")
    assert (reply == null_array(pairs)) is fails
    pairs.same("GET", "k")


def test_watch_restore(pairs, other, real):
    require(pairs, "RESTORE")
    real.set("tmp", "payload")
    payload = real.dump("tmp")
    for replace in (False, True):
        pairs.same("SET", "k", "v")
        if not replace:
            pairs.same("DEL", "k")
        pairs.same("WATCH", "k")
        other.same("RESTORE", "k", "0", payload, *(["REPLACE"] if replace else []))
        pairs.same("MULTI")
        pairs.same("GET", "k")
        assert pairs.same("EXEC") == null_array(pairs)


def test_watch_own_write_invalidates(pairs):
    pairs.same("WATCH", "k")
    pairs.same("SET", "k", "mine")
    pairs.same("MULTI")
    pairs.same("GET", "k")
    assert pairs.same("EXEC") == null_array(pairs)


def test_watch_write_inside_own_transaction_is_fine(pairs):
    pairs.same("WATCH", "k")
    pairs.same("MULTI")
    pairs.same("SET", "k", "1")
    pairs.same("SET", "k", "2")
    assert pairs.same("EXEC") == b"*2\r\n+OK\r\n+OK\r\n"


def test_unwatch_and_exec_forget_keys(pairs, other):
    pairs.same("WATCH", "k", "j")
    pairs.same("UNWATCH")
    other.same("SET", "k", "x")
    pairs.same("MULTI")
    pairs.same("GET", "k")
    assert pairs.same("EXEC") != null_array(pairs)
    # EXEC (successful or not) and DISCARD unwatch everything.
    pairs.same("WATCH", "k")
    pairs.same("MULTI")
    pairs.same("EXEC")
    other.same("SET", "k", "y")
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") != null_array(pairs)
    pairs.same("WATCH", "k")
    pairs.same("MULTI")
    pairs.same("DISCARD")
    other.same("SET", "k", "z")
    pairs.same("MULTI")
    assert pairs.same("EXEC") == b"*0\r\n"
    # A dirty watch is cleared by UNWATCH (also when queued inside the transaction it is too late).
    pairs.same("WATCH", "k")
    other.same("SET", "k", "again")
    pairs.same("MULTI")
    pairs.same("UNWATCH")
    assert pairs.same("EXEC") == null_array(pairs)


def test_watch_is_per_database(pairs, other):
    pairs.same("SELECT", "3")
    pairs.same("WATCH", "k")
    other.same("SET", "k", "db0")
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == b"*1\r\n+PONG\r\n"
    pairs.same("WATCH", "k")
    other.same("SELECT", "3")
    other.same("SET", "k", "db3")
    other.same("SELECT", "0")
    pairs.same("MULTI")
    assert pairs.same("EXEC") == null_array(pairs)
    pairs.same("SELECT", "0")


def test_watch_after_dirty_and_multiple_keys(pairs, other):
    pairs.same("WATCH", "a", "b", "c")
    pairs.same("WATCH", "a", "d")  # watching again is harmless
    other.same("SET", "d", "1")
    pairs.same("WATCH", "e")  # already dirty: OK without effect
    pairs.same("MULTI")
    assert pairs.same("EXEC") == null_array(pairs)


def test_watch_arity(pairs):
    pairs.same("WATCH")
    pairs.same("UNWATCH", "x")
    pairs.same("MULTI", "x")
    pairs.same("EXEC", "x")
    pairs.same("DISCARD", "x")


# -- expiry -----------------------------------------------------------------------------


def _watch_expiring(pairs, other, ttl_ms: int = 200) -> None:
    """WATCH a key that is still alive and will expire ``ttl_ms`` later (retried if a slow
    machine let it expire before WATCH, which would make it an already-expired watch)."""
    for _ in range(5):
        pairs.same("SET", "k", "v", "PX", ttl_ms)
        pairs.same("WATCH", "k")
        ttls = other.both("PTTL", "k")
        if all(int(t[1:-2]) > 0 for t in ttls):
            return
        pairs.same("UNWATCH")
    pytest.fail("could not WATCH the key before it expired")


def test_watched_key_expired_at_exec(pairs, other, no_active_expire):
    """Nobody touches the key: EXEC itself notices it expired after WATCH."""
    _watch_expiring(pairs, other)
    time.sleep(0.3)
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == null_array(pairs)


def test_watched_key_expired_lazily_by_other_client(pairs, other, no_active_expire):
    _watch_expiring(pairs, other)
    time.sleep(0.3)
    other.same("GET", "k")  # lazy expiry deletes it
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == null_array(pairs)


def test_watched_key_expired_by_active_cycle(pairs, other):
    _watch_expiring(pairs, other)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # DBSIZE counts the key until the active cycle deletes it
        if other.ours.call("DBSIZE") == b":0\r\n" and other.theirs.call("DBSIZE") == b":0\r\n":
            break
        time.sleep(0.02)
    else:
        pytest.fail("active expiry did not delete the key")
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == null_array(pairs)


def test_watching_an_already_expired_key(pairs, other, no_active_expire):
    """A key already logically expired at WATCH: its deletion is no change, its re-creation is."""
    pairs.same("SET", "k", "v", "PX", "20")
    time.sleep(0.05)
    pairs.same("WATCH", "k")
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == b"*1\r\n+PONG\r\n"

    pairs.same("SET", "k", "v", "PX", "20")
    time.sleep(0.05)
    pairs.same("WATCH", "k")
    other.same("GET", "k")  # deletes the expired key
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == b"*1\r\n+PONG\r\n"

    pairs.same("SET", "k", "v", "PX", "20")
    time.sleep(0.05)
    pairs.same("WATCH", "k")
    other.same("SET", "k", "new")
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == null_array(pairs)


@pytest.mark.parametrize("flush", [("FLUSHDB",), ("FLUSHALL",), ("SWAPDB", "0", "1")], ids=lambda f: f[0])
def test_flush_of_an_already_expired_watched_key(pairs, other, no_active_expire, flush):
    pairs.same("SET", "k", "v", "PX", "20")
    time.sleep(0.05)
    pairs.same("WATCH", "k")
    other.same(*flush)
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == b"*1\r\n+PONG\r\n"


def test_swapdb_brings_in_an_expired_key(pairs, other, no_active_expire):
    other.same("SELECT", "1")
    other.same("SET", "k", "v", "PX", "20")
    other.same("SELECT", "0")
    time.sleep(0.05)
    pairs.same("WATCH", "k")  # missing in db 0
    other.same("SWAPDB", "0", "1")  # now an expired key: no logical change
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == b"*1\r\n+PONG\r\n"


# -- blocking commands inside MULTI ---------------------------------------------------------

BLOCKING_CASES: list[tuple[str, list[Cmd], Cmd]] = [
    ("blpop-empty", [], ("BLPOP", "l", "0")),
    ("blpop-data", [("RPUSH", "l", "a")], ("BLPOP", "l", "0")),
    ("brpoplpush", [], ("BRPOPLPUSH", "l", "d", "0")),
    ("blmove", [], ("BLMOVE", "l", "d", "LEFT", "RIGHT", "0")),
    ("blmpop", [], ("BLMPOP", "0", "1", "l", "LEFT")),
    ("bzpopmin", [], ("BZPOPMIN", "z", "0")),
    ("bzmpop", [], ("BZMPOP", "0", "1", "z", "MIN")),
    ("xread-block", [], ("XREAD", "BLOCK", "0", "STREAMS", "s", "$")),
]


@pytest.mark.parametrize("name,setup,cmd", BLOCKING_CASES, ids=[c[0] for c in BLOCKING_CASES])
def test_blocking_commands_do_not_block_in_exec(pairs, name, setup, cmd):
    require(pairs, *_commands_of(setup), str(cmd[0]))
    for c in setup:
        pairs.same(*c)
    pairs.same("MULTI")
    pairs.same(*cmd)
    pairs.same("PING")
    pairs.same("EXEC")


# ----------------------------------------------------------------------------- redis-py


def test_redis_py_pipeline(r, real):
    results = []
    for client in (r, real):
        with client.pipeline() as pipe:  # transaction=True: MULTI ... EXEC
            pipe.set("a", "1").incr("a").get("a").rename("missing", "x").set("b", "2")
            results.append(pipe.execute(raise_on_error=False))
    ours, theirs = results
    assert [repr(x) for x in ours] == [repr(x) for x in theirs]
    assert ours[:3] == [True, 2, b"2"] and isinstance(ours[3], redis.ResponseError)


def test_redis_py_pipeline_watch_error(r, real):
    for client in (r, real):
        with client.pipeline() as pipe:
            pipe.watch("w")
            client.set("w", "changed")  # another connection of the pool
            pipe.multi()
            pipe.set("w", "mine")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        assert client.get("w") == b"changed"


def test_redis_py_transaction_helper(r):
    def body(pipe: redis.client.Pipeline) -> None:
        value = int(pipe.get("n") or 0)
        pipe.multi()
        pipe.set("n", value + 1)

    for _ in range(5):
        r.transaction(body, "n")
    assert r.get("n") == b"5"


def _optimistic_increments(port: int, clients: int, per_client: int) -> tuple[int, int]:
    retries = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal retries
        conn = redis.Redis(port=port)
        try:
            for _ in range(per_client):
                while True:
                    with conn.pipeline() as pipe:
                        try:
                            pipe.watch("counter")
                            value = int(pipe.get("counter") or 0)
                            time.sleep(0)  # let other threads interleave between read and write
                            pipe.multi()
                            pipe.set("counter", value + 1)
                            pipe.execute()
                            break
                        except redis.WatchError:
                            with lock:
                                retries += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    final = int(redis.Redis(port=port).get("counter") or 0)
    return final, retries


def test_optimistic_locking_never_loses_an_increment(r, dumpling_server):
    final, _retries = _optimistic_increments(dumpling_server.port, clients=8, per_client=40)
    assert final == 8 * 40


async def test_optimistic_locking_asyncio_clients(r, dumpling_server):
    """Eight asyncio connections interleave at every await: conflicts are certain, losses are not allowed."""
    conflicts = 0

    async def worker(client: aioredis.Redis) -> None:
        nonlocal conflicts
        for _ in range(25):
            while True:
                async with client.pipeline() as pipe:
                    try:
                        await pipe.watch("acounter")
                        value = int(await pipe.get("acounter") or 0)
                        await asyncio.sleep(0)
                        pipe.multi()
                        pipe.set("acounter", value + 1)
                        await pipe.execute()
                        break
                    except redis.WatchError:
                        conflicts += 1

    clients = [aioredis.Redis(port=dumpling_server.port) for _ in range(8)]
    try:
        await asyncio.gather(*(worker(c) for c in clients))
        assert int(await clients[0].get("acounter")) == 8 * 25
    finally:
        for c in clients:
            await c.aclose()
    assert conflicts > 0


def test_lost_update_without_watch_is_detected(dumpling_server):
    """Control for the locking tests: the same read-modify-write without WATCH does lose updates."""
    with dumpling_server.raw() as a, dumpling_server.raw() as b:
        a.call("SET", "c", "0")
        va = int(a.call("GET", "c").split(b"\r\n")[1])
        vb = int(b.call("GET", "c").split(b"\r\n")[1])
        a.call("SET", "c", va + 1)
        b.call("SET", "c", vb + 1)
        assert a.call("GET", "c") == b"$1\r\n1\r\n"  # two increments, one survives
        # With WATCH the second writer is told.
        a.call("WATCH", "c")
        b.call("WATCH", "c")
        a.call("MULTI")
        b.call("MULTI")
        a.call("SET", "c", "2")
        b.call("SET", "c", "2")
        assert a.call("EXEC") == b"*1\r\n+OK\r\n"
        assert b.call("EXEC") == b"*-1\r\n"


def test_refused_exec_ends_the_transaction(pairs, other):
    """A refused EXEC (here: arity) answers EXECABORT with the reason and discards, as execCommandAbort."""
    pairs.same("EXEC", "x")  # even outside MULTI
    pairs.same("WATCH", "k")
    pairs.same("MULTI")
    pairs.same("SET", "k", "1")
    assert pairs.same("EXEC", "x").startswith(b"-EXECABORT Transaction discarded because of: wrong number")
    pairs.same("EXEC")  # no transaction any more
    other.same("SET", "k", "2")  # and no watch either
    pairs.same("MULTI")
    pairs.same("GET", "k")
    assert pairs.same("EXEC") == b"*1\r\n$1\r\n2\r\n"


def test_exec_refused_in_resp2_subscribed_context(pair):
    pair.same("SUBSCRIBE", "ch")
    pair.same("EXEC")
    pair.same("MULTI")


def test_watch_eviction(pairs, other, dumpling_server, redis_server):
    pairs.same("SET", "k", "v")
    pairs.same("WATCH", "k")
    try:
        other.same("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
        other.both("CONFIG", "SET", "maxmemory", "1")
        other.both("SET", "trigger", "v")  # eviction empties the keyspace before refusing it
    finally:
        for server in (dumpling_server, redis_server):
            with server.raw() as conn:
                conn.call("CONFIG", "SET", "maxmemory", "0")
                conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
    other.same("EXISTS", "k")
    pairs.same("MULTI")
    pairs.same("PING")
    assert pairs.same("EXEC") == null_array(pairs)
