"""MIGRATE between dumpling and a real Redis 7.0, both ways, standalone and in cluster mode.

Every data type (and the encodings Redis picks for them), TTLs, COPY, REPLACE, AUTH /
AUTH2 and KEYS go from real Redis into dumpling (dumpling receives RESTORE, or
RESTORE-ASKING when the real server runs in cluster mode) and from dumpling into real
Redis.  Replies are compared across all four source/target combinations: whatever
Redis -> Redis answers (``+OK``, ``+NOKEY``, the wrapped BUSYKEY / NOAUTH / WRONGPASS
texts), every other combination must answer byte for byte.

Payload versions: dumpling DUMPs at ``dump-rdb-version`` 10, which Redis 7.0 reads.
Values that need a newer version (hash field TTLs: 12; a stream consumer whose
active-time differs from its seen-time: 11) are written at that version, and Redis 7.0
refuses them the way it refuses a 7.4 payload: MIGRATE passes back ``ERR Target
instance replied with error: ERR DUMP payload version or checksum are wrong`` and the
key stays on the source.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator

import pytest

from dumpling.cluster.slots import key_slot
from tests.servers import RawConnection, ServerProcess, parse_reply, start_dumpling, start_redis
from tests.test_cluster import start_cluster_node, start_redis_cluster, stop_cluster
from tests.test_migrate import snapshot

TAG = "{m}"  # every key in one slot, so the cluster tests can move them together
SLOT = key_slot(TAG.encode())


def fill(conn: RawConnection) -> list[str]:
    """Keys of every type, in the encodings Redis chooses for small and large values."""
    rng = random.Random(7)
    k = TAG
    commands: list[tuple[object, ...]] = [
        ("SET", f"{k}int", "12345"), ("SET", f"{k}neg", "-9000000000"), ("SET", f"{k}emb", "x" * 30),
        ("SET", f"{k}raw", "y" * 200), ("SET", f"{k}bin", bytes(rng.randrange(256) for _ in range(5000))),
        ("SET", f"{k}lzf", "abc" * 3000),
        ("RPUSH", f"{k}list", "a", "1", "-2", "x" * 70),
        ("RPUSH", f"{k}biglist", *[f"item-{i}-" + "z" * (i % 90) for i in range(2000)]),
        ("SADD", f"{k}intset", "1", "2", "300", "-70000"),
        ("SADD", f"{k}lpset", "a", "b", "c"),
        ("SADD", f"{k}bigset", *[f"member:{i}" for i in range(400)]),
        ("ZADD", f"{k}lpzset", "1", "a", "2.5", "b", "-3", "c"),
        ("ZADD", f"{k}bigzset", *itertools.chain.from_iterable((str(i / 7), f"m{i}") for i in range(300))),
        ("HSET", f"{k}lphash", "f1", "v1", "f2", "2"),
        ("HSET", f"{k}bighash", *itertools.chain.from_iterable((f"field{i}", "v" * (i % 100)) for i in range(600))),
        ("XADD", f"{k}stream", "1-1", "a", "1"), ("XADD", f"{k}stream", "2-1", "b", "2"),
        ("XADD", f"{k}stream", "3-1", "c", "3"), ("XDEL", f"{k}stream", "2-1"),
        ("XGROUP", "CREATE", f"{k}stream", "grp", "0"),
        ("XREADGROUP", "GROUP", "grp", "alice", "COUNT", "1", "STREAMS", f"{k}stream", ">"),
        ("SET", f"{k}ttl", "expiring"), ("PEXPIRE", f"{k}ttl", "100000"),
        ("RPUSH", f"{k}ttllist", "a"), ("EXPIRE", f"{k}ttllist", "2000"),
    ]
    for cmd in commands:
        reply = conn.call(*cmd)  # type: ignore[arg-type]
        assert not reply.startswith(b"-"), (cmd, reply)
    keys = sorted(k.decode() for k in parse_reply(conn.call("KEYS", "*")))  # type: ignore[union-attr]
    assert len(keys) == 18
    return keys


def snapshots(conn: RawConnection, keys: list[str]) -> dict[str, tuple[object, ...]]:
    return {key: snapshot(conn, key) for key in keys}


def pttls(conn: RawConnection, keys: list[str]) -> dict[str, int]:
    return {key: parse_reply(conn.call("PTTL", key)) for key in keys}  # type: ignore[misc]


def assert_ttls_close(before: dict[str, int], after: dict[str, int]) -> None:
    for key, ttl in before.items():
        if ttl < 0:
            assert after[key] == ttl, key
        else:
            assert ttl - 5000 < after[key] <= ttl, (key, ttl, after[key])


@pytest.fixture(scope="module")
def fleet() -> Iterator[dict[str, ServerProcess]]:
    servers: dict[str, ServerProcess] = {}
    try:
        servers["redis"] = start_redis()
        servers["dumpling"] = start_dumpling()
        servers["redis-dst"] = start_redis()
        servers["dumpling-dst"] = start_dumpling()
        servers["redis-auth"] = start_redis("--requirepass", "secret")
        servers["dumpling-auth"] = start_dumpling("--requirepass", "secret")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def flush(server: ServerProcess) -> None:
    with server.raw() as conn:
        if conn.call("FLUSHALL").startswith(b"-NOAUTH"):
            conn.call("AUTH", "secret")
            conn.call("FLUSHALL")


COMBOS = [("redis", "dumpling-dst"), ("dumpling", "redis-dst"), ("dumpling", "dumpling-dst"), ("redis", "redis-dst")]


@pytest.mark.parametrize("source,target", COMBOS, ids=["redis>dumpling", "dumpling>redis", "dumpling>dumpling",
                                                       "redis>redis"])
def test_every_type_with_ttls(fleet: dict[str, ServerProcess], source: str, target: str) -> None:
    src, dst = fleet[source], fleet[target]
    flush(src)
    flush(dst)
    with src.raw() as s, dst.raw() as t:
        keys = fill(s)
        expected = snapshots(s, keys)
        ttls = pttls(s, keys)
        assert s.call("MIGRATE", "127.0.0.1", dst.port, "", "0", "5000", "KEYS", *keys) == b"+OK\r\n"
        assert parse_reply(s.call("DBSIZE")) == 0
        assert snapshots(t, keys) == expected
        assert_ttls_close(ttls, pttls(t, keys))
        # And back again, one key per call, into another db (COPY keeps the source).
        t.call("SELECT", "0")
        for key in keys:
            assert t.call("MIGRATE", "127.0.0.1", src.port, key, "3", "5000", "COPY") == b"+OK\r\n"
        s.call("SELECT", "3")
        assert snapshots(s, keys) == expected
        assert parse_reply(t.call("DBSIZE")) == len(keys)


def _scenario(src: RawConnection, dst_port: int) -> list[bytes]:
    """One fixed sequence of MIGRATE calls; the replies are what must match Redis's."""
    replies = []
    src.call("SET", "a", "1")
    src.call("SET", "b", "2")
    src.call("SET", "c", "3", "PX", "60000")
    run = [
        ("MIGRATE", "127.0.0.1", dst_port, "a", "0", "5000", "COPY"),
        ("MIGRATE", "127.0.0.1", dst_port, "a", "0", "5000"),  # BUSYKEY: a is there already
        ("MIGRATE", "127.0.0.1", dst_port, "a", "0", "5000", "REPLACE"),
        ("MIGRATE", "127.0.0.1", dst_port, "", "0", "5000", "KEYS", "b", "nokey", "c"),
        ("MIGRATE", "127.0.0.1", dst_port, "", "0", "5000", "KEYS", "nokey"),
        ("MIGRATE", "127.0.0.1", dst_port, "a", "0", "5000"),
        ("SET", "b", "again"),
        ("MIGRATE", "127.0.0.1", dst_port, "", "0", "5000", "COPY", "REPLACE", "KEYS", "b"),
        ("MIGRATE", "127.0.0.1", dst_port, "b", "7", "5000", "REPLACE"),
        ("EXISTS", "a", "b", "c"),
    ]
    for cmd in run:
        replies.append(src.call(*cmd))
    return replies


def test_options_and_errors_match_redis_in_every_direction(fleet: dict[str, ServerProcess]) -> None:
    results = {}
    for source, target in COMBOS:
        flush(fleet[source])
        flush(fleet[target])
        with fleet[source].raw() as src, fleet[target].raw() as dst:
            replies = _scenario(src, fleet[target].port)
            state = [dst.call("MGET", "a", "b", "c"), dst.call("PTTL", "c") > b":59000", dst.call("SELECT", "7"),
                     dst.call("GET", "b")]
        results[(source, target)] = (replies, state)
    reference = results[("redis", "redis-dst")]
    assert b"BUSYKEY" in reference[0][1]
    for combo, got in results.items():
        assert got == reference, combo


def test_auth_and_auth2_match_redis(fleet: dict[str, ServerProcess]) -> None:
    results = {}
    for source, target in itertools.product(("redis", "dumpling"), ("redis-auth", "dumpling-auth")):
        flush(fleet[source])
        flush(fleet[target])
        port = fleet[target].port
        with fleet[source].raw() as src:
            replies = []
            for key in ("k1", "k2", "k3", "k4", "k5"):
                src.call("SET", key, key)
            for cmd in [
                ("MIGRATE", "127.0.0.1", port, "k1", "0", "5000"),  # NOAUTH from the target
                ("MIGRATE", "127.0.0.1", port, "k1", "0", "5000", "AUTH", "wrong"),
                ("MIGRATE", "127.0.0.1", port, "k1", "0", "5000", "AUTH", "secret"),
                ("MIGRATE", "127.0.0.1", port, "k2", "0", "5000", "AUTH2", "default", "secret"),
                ("MIGRATE", "127.0.0.1", port, "k3", "0", "5000", "AUTH2", "nobody", "secret"),
                ("MIGRATE", "127.0.0.1", port, "", "0", "5000", "AUTH", "secret", "KEYS", "k3", "k4"),
                ("MIGRATE", "127.0.0.1", port, "k5", "0", "5000"),  # the cached connection is authenticated
                ("DBSIZE",),
            ]:
                replies.append(src.call(*cmd))
        results[(source, target)] = replies
    reference = results[("redis", "redis-auth")]
    assert reference[0].startswith(b"-ERR Target instance replied with error: NOAUTH")
    for combo, got in results.items():
        assert got == reference, combo


def test_payloads_newer_than_redis_70_are_refused(fleet: dict[str, ServerProcess]) -> None:
    src, redis_dst, dumpling_dst = fleet["dumpling"], fleet["redis-dst"], fleet["dumpling-dst"]
    for server in (src, redis_dst, dumpling_dst):
        flush(server)
    with src.raw() as s:
        s.call("HSET", "fieldttl", "f", "v", "g", "w")
        assert s.call("HEXPIRE", "fieldttl", "1000", "FIELDS", "1", "f") == b"*1\r\n:1\r\n"
        s.call("XADD", "st", "1-1", "a", "1")
        s.call("XGROUP", "CREATE", "st", "g", "0")
        s.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">")
        time.sleep(0.01)
        s.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "st", ">")  # seen-time moves on, active-time not
        refused = b"-ERR Target instance replied with error: ERR DUMP payload version or checksum are wrong\r\n"
        # A stream with consumer active-times is written as type 19 at version 10 (7.0 takes
        # it; 7.2+ derive the active time from the seen time), so only field TTLs need 12.
        payload = parse_reply(s.call("DUMP", "st"))
        assert isinstance(payload, bytes) and payload[-10] == 10
        for key, version in (("fieldttl", 12),):
            payload = parse_reply(s.call("DUMP", key))
            assert isinstance(payload, bytes) and payload[-10] == version, key
            assert s.call("MIGRATE", "127.0.0.1", redis_dst.port, key, "0", "5000") == refused
            assert parse_reply(s.call("EXISTS", key)) == 1  # kept on the source
            expected = snapshot(s, key)
            assert s.call("MIGRATE", "127.0.0.1", dumpling_dst.port, key, "0", "5000") == b"+OK\r\n"
            with dumpling_dst.raw() as t:
                assert snapshot(t, key) == expected
                if key == "fieldttl":
                    assert parse_reply(t.call("HPEXPIRETIME", key, "FIELDS", "2", "f", "g"))[1] == -1  # type: ignore
                    assert parse_reply(t.call("HTTL", key, "FIELDS", "1", "f"))[0] > 900  # type: ignore


# ----------------------------------------------------------------------------- cluster mode


@pytest.fixture
def redis_cluster_node() -> Iterator[ServerProcess]:
    """A real one-node Redis cluster owning every slot (one per test: a dumpling node that met it
    over the bus and took a slot leaves it in a 2-master cluster that fails once that node stops)."""
    nodes = start_redis_cluster([[(0, 16383)]])
    yield nodes[0]
    stop_cluster(nodes)


def _wait(conn: RawConnection, text: bytes, *args: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in conn.call(*args):
        assert time.monotonic() < deadline, f"{args} never showed {text!r}"
        time.sleep(0.05)


def test_redis_cluster_node_sends_restore_asking_to_dumpling(redis_cluster_node: ServerProcess) -> None:
    real = redis_cluster_node
    node = start_cluster_node()
    try:
        with real.raw() as r, node.raw() as d:
            r.call("FLUSHALL")
            real_id = parse_reply(r.call("CLUSTER", "MYID")).decode()  # type: ignore[union-attr]
            bus = real.bus_port  # type: ignore[attr-defined]
            assert d.call("CLUSTER", "MEET", "127.0.0.1", real.port, bus) == b"+OK\r\n"
            _wait(d, b"cluster_state:ok", "CLUSTER", "INFO")  # learnt that the real node owns every slot
            keys = fill(r)
            expected = snapshots(r, keys)
            ttls = pttls(r, keys)
            # Not importing here: RESTORE-ASKING is refused with MOVED, which MIGRATE passes back.
            moved = r.call("MIGRATE", "127.0.0.1", node.port, "", "0", "5000", "KEYS", *keys)
            assert moved == b"-ERR Target instance replied with error: MOVED %d 127.0.0.1:%d\r\n" % (SLOT, real.port)
            assert d.call("SET", f"{TAG}x", "1") == b"-MOVED %d 127.0.0.1:%d\r\n" % (SLOT, real.port)
            assert d.call("CLUSTER", "SETSLOT", SLOT, "IMPORTING", real_id) == b"+OK\r\n"
            assert r.call("MIGRATE", "127.0.0.1", node.port, "", "0", "5000", "KEYS", *keys) == b"+OK\r\n"
            assert parse_reply(r.call("DBSIZE")) == 0
            assert b"cmdstat_restore-asking:calls=%d," % len(keys) in d.call("INFO", "commandstats")
            assert d.call("GET", f"{TAG}int") == b"-MOVED %d 127.0.0.1:%d\r\n" % (SLOT, real.port)
            assert d.call("ASKING") == b"+OK\r\n"
            assert d.call("GET", f"{TAG}int") == b"$5\r\n12345\r\n"
            assert parse_reply(d.call("CLUSTER", "COUNTKEYSINSLOT", SLOT)) == len(keys)
            my_id = parse_reply(d.call("CLUSTER", "MYID")).decode()  # type: ignore[union-attr]
            assert d.call("CLUSTER", "SETSLOT", SLOT, "NODE", my_id) == b"+OK\r\n"  # close the slot here
            assert snapshots(d, keys) == expected
            assert_ttls_close(ttls, pttls(d, keys))
    finally:
        node.stop()


def test_dumpling_cluster_node_sends_restore_asking_to_redis(redis_cluster_node: ServerProcess) -> None:
    real = redis_cluster_node
    node = start_cluster_node()
    try:
        with real.raw() as r, node.raw() as d:
            r.call("FLUSHALL")
            r.call("CONFIG", "RESETSTAT")
            assert d.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383) == b"+OK\r\n"
            _wait(d, b"cluster_state:ok", "CLUSTER", "INFO")  # a new master waits out Redis's start-up delay
            keys = fill(d)
            expected = snapshots(d, keys)
            ttls = pttls(d, keys)
            assert d.call("MIGRATE", "127.0.0.1", real.port, "", "0", "5000", "KEYS", *keys) == b"+OK\r\n"
            assert parse_reply(d.call("DBSIZE")) == 0
            assert b"cmdstat_restore-asking:calls=%d," % len(keys) in r.call("INFO", "commandstats")
            assert snapshots(r, keys) == expected
            assert_ttls_close(ttls, pttls(r, keys))
            # REPLACE and COPY go through RESTORE-ASKING as well.
            d.call("SET", f"{TAG}int", "777")
            assert d.call("MIGRATE", "127.0.0.1", real.port, f"{TAG}int", "0", "5000").startswith(
                b"-ERR Target instance replied with error: BUSYKEY")
            assert d.call("MIGRATE", "127.0.0.1", real.port, f"{TAG}int", "0", "5000", "REPLACE", "COPY") == b"+OK\r\n"
            assert r.call("GET", f"{TAG}int") == b"$3\r\n777\r\n" and d.call("EXISTS", f"{TAG}int") == b":1\r\n"
    finally:
        node.stop()
