"""Replication against real Redis 7.0, both ways: full sync, the command stream, partial
resync after a dropped link, promotion, and every key compared on both sides."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from tests.servers import RawConnection, ServerProcess, encode_command, require_redis, start_dumpling, start_redis

FAST_SYNC = ("--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0")  # (stopping never waits for replicas)


def client(server: ServerProcess, db: int = 0) -> redis.Redis:
    return redis.Redis(port=server.port, db=db, socket_timeout=10)


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def link_up(replica: ServerProcess) -> bool:
    return client(replica).info("replication").get("master_link_status") == "up"


def offset(server: ServerProcess) -> int:
    return int(client(server).info("replication")["master_repl_offset"])


def caught_up(master: ServerProcess, *replicas: ServerProcess) -> Callable[[], bool]:
    def check() -> bool:
        target = offset(master)
        return all(link_up(r) and offset(r) == target for r in replicas)
    return check


@contextmanager
def servers(*starts: Callable[[], ServerProcess]) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for start in starts:
            started.append(start())
        yield started
    finally:
        for server in started:
            server.stop()


# -- the dataset, key by key --------------------------------------------------------------------


def key_state(c: redis.Redis, key: bytes) -> tuple[Any, ...]:
    kind = c.type(key)
    if kind == b"string":
        value: Any = c.get(key)
    elif kind == b"list":
        value = c.lrange(key, 0, -1)
    elif kind == b"hash":
        value = sorted(c.hgetall(key).items())
    elif kind == b"set":
        value = sorted(c.smembers(key))
    elif kind == b"zset":
        value = c.zrange(key, 0, -1, withscores=True)
    elif kind == b"stream":
        value = c.xrange(key)
    else:
        value = None
    return kind, value, c.pttl(key)


def dataset(server: ServerProcess, dbs: tuple[int, ...] = (0, 1)) -> dict[tuple[int, bytes], tuple[Any, ...]]:
    out = {}
    for db in dbs:
        c = client(server, db)
        for key in c.scan_iter(count=1000):
            out[(db, key)] = key_state(c, key)
    return out


def assert_same_dataset(master: ServerProcess, replica: ServerProcess) -> int:
    """Every key equal (type, value) with TTLs within a second of each other, plus the time the
    two reads took (a key's TTL is read later on the replica); returns the key count."""
    started = time.monotonic()
    left, right = dataset(master), dataset(replica)
    slack = 1000 + (time.monotonic() - started) * 1000
    assert set(left) == set(right), (set(left) ^ set(right))
    for item, (kind, value, ttl) in left.items():
        other_kind, other_value, other_ttl = right[item]
        assert (kind, value) == (other_kind, other_value), item
        if ttl < 0:
            assert other_ttl == ttl, item
        else:
            assert other_ttl > 0 and abs(ttl - other_ttl) < slack, (item, ttl, other_ttl, slack)
    return len(left)


def workload(c: redis.Redis, rounds: int, seed: int = 7) -> None:
    """Writes over every type: TTLs (some expiring during the run), MULTI, scripts, two DBs."""
    rng = random.Random(seed)
    other = redis.Redis(port=c.connection_pool.connection_kwargs["port"], db=1)
    for i in range(rounds):
        k = i % 40
        c.set(f"s:{k}", rng.randbytes(rng.randint(0, 40)))
        c.incrby("counter", rng.randint(-5, 5))
        c.append(f"s:{k}", "tail")
        c.set(f"px:{i}", "short", px=rng.randint(20, 200))  # expire during the run: DEL from the master
        c.set(f"ex:{k}", "long", ex=1000)
        c.rpush(f"l:{k % 7}", *[rng.randint(0, 99) for _ in range(3)])
        if i % 3 == 0:
            c.lpop(f"l:{k % 7}")
        c.hset(f"h:{k % 5}", mapping={f"f{rng.randint(0, 20)}": rng.randint(0, 1000)})
        c.hincrbyfloat(f"h:{k % 5}", "float", 1.5)
        c.sadd(f"set:{k % 5}", *[rng.randint(0, 50) for _ in range(4)])
        if i % 4 == 0:
            c.spop(f"set:{k % 5}")
        c.zadd(f"z:{k % 5}", {f"m{rng.randint(0, 30)}": rng.random() * 100})
        c.zincrby(f"z:{k % 5}", 2, "m1")
        c.xadd(f"x:{k % 3}", {"i": i})
        c.pfadd("hll", f"e{i}")
        c.setbit("bits", rng.randint(0, 500), 1)
        c.expire(f"h:{k % 5}", 500 + i)
        if i % 10 == 0:
            c.persist(f"h:{k % 5}")
            c.getex(f"s:{k}", px=900_000)
        if i % 5 == 0:
            with c.pipeline(transaction=True) as p:
                p.incr("tx:a")
                p.lpush("tx:l", i)
                p.sadd("tx:s", i)
                p.execute()
        if i % 7 == 0:
            c.eval("redis.call('set', KEYS[1], ARGV[1]); redis.call('hincrby', KEYS[2], 'n', 1)", 2,
                   f"lua:{k}", "lua:h", i)
        if i % 11 == 0:
            c.delete(f"l:{k % 7}")
            c.rename(f"s:{k}", f"renamed:{k}")
        other.set(f"db1:{k}", i)
        other.zadd("db1:z", {f"m{k}": i})
    other.close()


# -- dumpling as a replica ------------------------------------------------------------------------


def test_dumpling_replica_of_redis_master() -> None:
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC), start_dumpling) as (master, replica):
        m, r = client(master), client(replica)
        workload(m, 60, seed=1)  # before the sync: arrives in the RDB
        assert r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        workload(m, 200, seed=2)  # after it: arrives as the stream
        time.sleep(0.3)  # the short TTLs run out on the master; its DELs follow
        wait_until(caught_up(master, replica), what="offsets equal")
        assert assert_same_dataset(master, replica) > 100
        info = r.info("replication")
        assert info["role"] == "slave" and info["master_link_status"] == "up"
        assert info["slave_repl_offset"] == info["master_repl_offset"] == offset(master)
        assert r.role()[:4] == [b"slave", b"127.0.0.1", master.port, b"connected"]
        with pytest.raises(redis.ReadOnlyError, match="You can't write against a read only replica."):
            r.set("x", 1)
        assert m.wait(1, 2000) == 1  # our REPLCONF ACK answers Redis's GETACK


def test_dumpling_replica_reconnects_with_partial_resync_under_load() -> None:
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC), start_dumpling) as (master, replica):
        m, r = client(master), client(replica)
        m.set("before", 1)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        stop = threading.Event()
        writer = threading.Thread(target=_write_until, args=(master, stop))
        writer.start()
        try:
            time.sleep(0.3)
            stats = m.info("stats")
            assert r.client_kill_filter(_type="master") == 1  # the replica drops its master link
            wait_until(lambda: m.info("stats")["sync_partial_ok"] == stats["sync_partial_ok"] + 1, what="PSYNC")
            time.sleep(0.3)
        finally:
            stop.set()
            writer.join()
        wait_until(caught_up(master, replica), what="offsets equal")
        after = m.info("stats")
        assert after["sync_full"] == stats["sync_full"]
        assert "Successful partial resynchronization with master." in replica.log()
        assert assert_same_dataset(master, replica) > 10


def test_corrupt_or_truncated_transfer_is_refused_and_retried() -> None:
    """A master whose RDB arrives damaged: nothing of it is applied, the old data stays,
    the sync is retried; the next (good) transfer loads."""
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC), start_dumpling) as (master, replica):
        m, r = client(master), client(replica)
        m.set("from-master", 1)
        r.set("mine", 1)
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        fake = _FakeMaster(damage="crc")
        try:
            r.replicaof("127.0.0.1", fake.port)
            wait_until(lambda: "refusing the RDB received from the master" in replica.log(), what="refusal")
            assert r.get("mine") == b"1"  # not flushed, nothing half-loaded
            fake.damage = "truncated"
            wait_until(lambda: fake.attempts >= 2, what="retry")
            time.sleep(0.2)
            assert r.get("mine") == b"1"
        finally:
            fake.close()
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        assert r.get("from-master") == b"1" and r.get("mine") is None


def test_replica_serve_stale_data_no() -> None:
    with servers(lambda: start_dumpling("--replica-serve-stale-data", "no")) as (replica,):
        r = client(replica)
        r.replicaof("127.0.0.1", 1)  # nobody there: the link stays down
        with replica.raw() as conn:
            assert conn.call("GET", "k") == (b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is "
                                             b"set to 'no'.\r\n")
            assert conn.call("PING").startswith(b"-MASTERDOWN")  # (not flagged stale, as in Redis)
            assert conn.call("ROLE").startswith(b"*5\r\n$5\r\nslave\r\n")  # flagged stale: served
            assert conn.call("REPLICAOF", "no", "one") == b"+OK\r\n"
            assert conn.call("GET", "k") == b"$-1\r\n"


# -- dumpling as a master ---------------------------------------------------------------------------


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_redis_replica_of_dumpling_master(diskless: str) -> None:
    require_redis()
    with servers(lambda: start_dumpling("--repl-diskless-sync", diskless, *FAST_SYNC), start_redis) as (
            master, replica):
        m, r = client(master), client(replica)
        workload(m, 60, seed=3)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        workload(m, 200, seed=4)
        time.sleep(0.3)
        wait_until(caught_up(master, replica), what="offsets equal")
        assert assert_same_dataset(master, replica) > 100
        assert m.wait(1, 5000) == 1
        info = m.info("replication")
        assert info["connected_slaves"] == 1 and info["slave0"]["state"] == "online"
        role = m.role()
        assert role[0] == b"master" and role[1] == offset(master) and len(role[2]) == 1
        assert m.info("stats")["sync_full"] == 1
        log = master.log()
        assert ("Starting BGSAVE for SYNC with target: replicas sockets" if diskless == "yes"
                else "Starting BGSAVE for SYNC with target: disk") in log


def test_redis_replica_partial_resync_after_client_kill() -> None:
    require_redis()
    with servers(lambda: start_dumpling(*FAST_SYNC), start_redis) as (master, replica):
        m, r = client(master), client(replica)
        m.set("before", 1)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        stop = threading.Event()
        writer = threading.Thread(target=_write_until, args=(master, stop))
        writer.start()
        try:
            time.sleep(0.3)
            assert m.client_kill_filter(_type="replica") == 1
            wait_until(lambda: m.info("stats")["sync_partial_ok"] == 1, what="PSYNC")
            time.sleep(0.3)
        finally:
            stop.set()
            writer.join()
        wait_until(caught_up(master, replica), what="offsets equal")
        assert m.info("stats")["sync_full"] == 1
        assert assert_same_dataset(master, replica) > 10


def test_dumpling_chain_promotion_keeps_partial_resync() -> None:
    """dumpling master -> two dumpling replicas; one is promoted (REPLICAOF NO ONE) and the
    other follows it: PSYNC2 continues partially on the old ID (replid2)."""
    with servers(lambda: start_dumpling(*FAST_SYNC), lambda: start_dumpling(*FAST_SYNC), start_dumpling) as (
            master, first, second):
        m = client(master)
        for replica in (first, second):
            client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(first) and link_up(second), what="links up")
        workload(m, 40, seed=5)
        wait_until(caught_up(master, first, second), what="offsets equal")
        old_id = m.info("replication")["master_replid"]
        f = client(first)
        assert f.replicaof("no", "one") == b"OK"
        info = f.info("replication")
        assert info["role"] == "master" and info["master_replid2"] == old_id
        assert info["second_repl_offset"] == info["master_repl_offset"] + 1
        client(second).replicaof("127.0.0.1", first.port)
        wait_until(lambda: link_up(second), what="second follows first")
        assert f.info("stats")["sync_partial_ok"] == 1 and f.info("stats")["sync_full"] == 0
        workload(f, 30, seed=6)
        time.sleep(0.3)  # the short TTLs run out
        wait_until(caught_up(first, second), what="offsets equal")
        assert assert_same_dataset(first, second) > 50


def test_wait_and_min_replicas() -> None:
    with servers(lambda: start_dumpling(*FAST_SYNC), start_dumpling) as (master, replica):
        m = client(master)
        m.set("k", 1)
        assert m.wait(1, 100) == 0  # no replica yet: the timeout answers how many acknowledged
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        m.set("k", 2)
        assert m.wait(1, 5000) == 1
        m.config_set("min-replicas-to-write", 2)
        with pytest.raises(redis.ResponseError, match="NOREPLICAS Not enough good replicas to write."):
            m.set("k", 3)
        m.config_set("min-replicas-to-write", 1)
        assert m.set("k", 4)
        with pytest.raises(redis.ResponseError, match="WAIT cannot be used with replica instances"):
            client(replica).wait(1, 10)


# -- helpers ---------------------------------------------------------------------------------------


def _write_until(server: ServerProcess, stop: threading.Event) -> None:
    c = client(server)
    i = 0
    while not stop.is_set():
        try:
            c.incr("load:counter")
            c.set(f"load:{i % 100}", i)
            c.rpush("load:list", i)
        except redis.ConnectionError:
            time.sleep(0.01)
        i += 1


class _FakeMaster:
    """A listening socket that plays a master: handshake replies, then a damaged RDB."""

    def __init__(self, damage: str) -> None:
        import socket

        self.damage = damage
        self.attempts = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import hiredis

        from dumpling.payload.crc64 import crc64

        body = b"REDIS0010\xfe\x00\xfb\x01\x00\x00\x01k\x01v\xff"
        good = body + crc64(body).to_bytes(8, "little")
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.attempts += 1
            reader = hiredis.Reader()
            with conn:
                conn.settimeout(2)
                try:
                    while True:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        reader.feed(chunk)
                        while (request := reader.gets()) is not False:
                            name = request[0].upper()
                            if name == b"PING":
                                conn.sendall(b"+PONG\r\n")
                            elif name != b"PSYNC":
                                conn.sendall(b"+OK\r\n")
                            else:
                                damaged = good[:-1] + bytes([good[-1] ^ 0xFF]) if self.damage == "crc" else good[:-4]
                                conn.sendall(b"+FULLRESYNC " + b"f" * 40 + b" 0\r\n\n$%d\r\n" % len(good) + damaged)
                                if self.damage == "truncated":
                                    conn.close()  # the transfer ends short
                                    raise OSError("closed")
                except OSError:
                    continue

    def close(self) -> None:
        self.stopped = True
        self.thread.join(2)
        self.sock.close()


def test_read_only_replica_refusals_match_redis() -> None:
    """The same refusals, byte for byte, from a Redis replica and a dumpling replica."""
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC), start_redis, start_dumpling) as (master, theirs, ours):
        replies = []
        for replica in (theirs, ours):
            client(replica).replicaof("127.0.0.1", master.port)
            wait_until(lambda r=replica: link_up(r), what="link up")
            with replica.raw() as conn:
                replies.append([
                    conn.call("SET", "k", "v"),
                    conn.call("EVAL", "return redis.call('set', 'k', 'v')", "0"),
                    conn.call("EVAL", "#!lua\nreturn redis.call('set', 'k', 'v')", "0"),
                    conn.call("EVAL", "return redis.call('get', 'k')", "0"),
                    conn.call("MULTI"), conn.call("SET", "k", "v"), conn.call("EXEC"),
                    conn.call("WAIT", "1", "10"),
                    conn.call("REPLICAOF", "127.0.0.1", str(master.port)),
                    conn.call("REPLICAOF", "127.0.0.1", "99999"),
                    conn.call("REPLCONF", "listening-port"),
                    conn.call("REPLCONF", "nosuch", "1"),
                    conn.call("GET", "k"),
                ])
        assert replies[0] == replies[1]


def test_restarted_replica_continues_partially_from_its_rdb(tmp_path: Any) -> None:
    """A replica saved with its replication ID, offset and stream database (RDB AUX fields)
    restarts with ``replicaof`` and continues with PSYNC, in the right database."""
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC)) as (master,):
        m3 = client(master, 3)
        m3.set("a", 1)
        replica = start_dumpling("--dir", str(tmp_path), "--replicaof", "127.0.0.1", str(master.port))
        try:
            wait_until(lambda: link_up(replica), what="link up")
            m3.set("b", 2)
            wait_until(caught_up(master, replica), what="offsets equal")
            client(replica).save()
        finally:
            replica.stop()
        m3.set("c", 3)  # written while the replica is down: in the backlog
        replica = start_dumpling("--dir", str(tmp_path), "--replicaof", "127.0.0.1", str(master.port))
        try:
            wait_until(lambda: link_up(replica), what="link up again")
            m3.set("d", 4)  # the stream goes on in database 3, no SELECT needed
            wait_until(caught_up(master, replica), what="offsets equal")
            stats = client(master).info("stats")
            assert stats["sync_partial_ok"] == 1 and stats["sync_full"] == 1
            r3 = client(replica, 3)
            assert [r3.get(k) for k in "abcd"] == [b"1", b"2", b"3", b"4"]
        finally:
            replica.stop()


def test_publish_reaches_subscribers_of_replicas() -> None:
    with servers(lambda: start_dumpling(*FAST_SYNC), start_dumpling) as (master, replica):
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        pubsub = client(replica).pubsub()
        pubsub.subscribe("news")
        assert pubsub.get_message(timeout=2)["type"] == "subscribe"
        client(master).publish("news", "hello")
        message = pubsub.get_message(timeout=5)
        assert message is not None and message["data"] == b"hello"
        pubsub.close()


def test_chain_redis_dumpling_redis_keeps_offsets() -> None:
    """A dumpling replica proxies its master's stream verbatim: a Redis replica of it has
    the master's offsets and data."""
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC), lambda: start_dumpling(*FAST_SYNC), start_redis) as (
            master, middle, leaf):
        workload(client(master), 30, seed=8)
        client(middle).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(middle), what="middle up")
        client(leaf).replicaof("127.0.0.1", middle.port)
        wait_until(lambda: link_up(leaf), what="leaf up")
        workload(client(master), 80, seed=9)
        time.sleep(0.3)
        wait_until(caught_up(master, middle, leaf), what="offsets equal along the chain")
        assert client(leaf).info("replication")["master_replid"] == client(master).info("replication")["master_replid"]
        assert assert_same_dataset(master, leaf) > 100


def test_slow_replica_dropped_at_output_buffer_limit() -> None:
    import socket

    with servers(lambda: start_dumpling(*FAST_SYNC, "--client-output-buffer-limit", "replica 1mb 0 0")) as (master,):
        m = client(master)
        sock = socket.create_connection(("127.0.0.1", master.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
        wait_until(lambda: m.info("replication")["connected_slaves"] == 1, what="replica attached")
        value = b"x" * 100_000
        for i in range(300):  # 30 MB the replica never reads
            m.set(f"big:{i}", value)
            if not m.info("replication")["connected_slaves"]:
                break
        wait_until(lambda: m.info("replication")["connected_slaves"] == 0, what="replica dropped")
        assert "scheduled to be closed ASAP for overcoming of output buffer limits" in master.log()
        sock.close()
        assert m.ping()


def test_replica_with_aof_restarts_with_the_synced_dataset(tmp_path: Any) -> None:
    """The AOF of a replica is a new generation after each full sync (no stale incr file)."""
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC)) as (master,):
        m = client(master)
        workload(m, 20, seed=10)
        replica = start_dumpling("--dir", str(tmp_path), "--appendonly", "yes")
        try:
            client(replica).set("stale", "from before the sync")
            client(replica).replicaof("127.0.0.1", master.port)
            wait_until(lambda: link_up(replica), what="link up")
            workload(m, 40, seed=11)
            time.sleep(0.3)
            wait_until(caught_up(master, replica), what="offsets equal")
        finally:
            replica.stop()
        manifest = (tmp_path / "appendonlydir" / "appendonly.aof.manifest").read_text()
        assert ".1." not in manifest  # the generation before the sync is gone
        replica = start_dumpling("--dir", str(tmp_path), "--appendonly", "yes")
        try:
            assert client(replica).get("stale") is None
            assert assert_same_dataset(master, replica) > 50
        finally:
            replica.stop()


@pytest.mark.parametrize("delete", ["yes", "no"])
def test_rdb_del_sync_files_on_a_persistence_less_replica(delete: str) -> None:
    with servers(lambda: start_dumpling(*FAST_SYNC), lambda: start_dumpling("--rdb-del-sync-files", delete)) as (
            master, replica):
        client(master).set("k", "v")
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        import os

        assert os.path.exists(os.path.join(replica.dir, "dump.rdb")) == (delete == "no")
        assert client(replica).get("k") == b"v"


def test_live_migration_example_loses_no_acknowledged_write() -> None:
    import subprocess
    import sys
    from pathlib import Path

    require_redis()
    script = Path(__file__).resolve().parent.parent / "examples" / "live_migration.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no acknowledged write lost, none applied twice" in done.stdout


def _info_fields(server: ServerProcess) -> list[str]:
    with server.raw() as conn:
        text = conn.call("INFO", "replication").decode()
    return [line.split(":", 1)[0] for line in text.splitlines()[1:] if line and not line.startswith("#")]


def test_info_replication_fields_as_redis() -> None:
    """INFO replication names and orders its fields as Redis does, for a master with an
    online replica, for the replica, and for a replica whose link is down."""
    require_redis()
    fields = []
    for start in (start_redis, start_dumpling):
        with servers(lambda s=start: s(*FAST_SYNC), lambda s=start: s("--min-replicas-to-write", "1")) as (
                master, replica):
            client(replica).replicaof("127.0.0.1", master.port)
            wait_until(lambda r=replica: link_up(r), what="link up")
            client(master).set("k", 1)
            wait_until(lambda m=master, r=replica: caught_up(m, r)(), what="offsets equal")
            up = (_info_fields(master), _info_fields(replica))
            master.stop_process()
            wait_until(lambda r=replica: not link_up(r), what="link down")
            fields.append((*up, _info_fields(replica)))
    assert fields[0] == fields[1]


def test_masterauth_and_masteruser() -> None:
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC, "--requirepass", "secret", "--user", "repl", "on",
                                     ">replpw", "+psync", "+replconf", "+ping"),
                 lambda: start_dumpling("--masterauth", "wrong"),
                 lambda: start_dumpling("--masterauth", "secret"),
                 lambda: start_dumpling("--masteruser", "repl", "--masterauth", "replpw")) as (
            master, refused, by_password, by_user):
        m = redis.Redis(port=master.port, password="secret")
        m.set("k", "v")
        for replica in (refused, by_password, by_user):
            client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(by_password) and link_up(by_user), what="links up")
        assert client(by_password).get("k") == client(by_user).get("k") == b"v"
        wait_until(lambda: "Unable to AUTH to MASTER: -WRONGPASS" in refused.log(), what="refusal logged")
        assert not link_up(refused)


def test_waitaof_counts_replicas_that_fsynced() -> None:
    with servers(lambda: start_dumpling(*FAST_SYNC, "--appendonly", "yes"),
                 lambda: start_dumpling("--appendonly", "yes"), start_dumpling) as (master, with_aof, without_aof):
        m = client(master)
        for replica in (with_aof, without_aof):
            client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(with_aof) and link_up(without_aof), what="links up")
        m.set("k", "v")
        assert m.execute_command("WAITAOF", 1, 1, 5000) == [1, 1]
        assert m.execute_command("WAITAOF", 0, 2, 300) == [1, 1]  # the replica without an AOF never fsyncs
        assert m.wait(2, 5000) == 2
        with pytest.raises(redis.ResponseError, match="WAITAOF cannot be used with replica instances"):
            client(with_aof).execute_command("WAITAOF", 0, 1, 10)
        # a replica acknowledges what its AOF fsynced, no more: under appendfsync no, nothing new
        client(with_aof).config_set("appendfsync", "no")
        time.sleep(1.2)  # (an everysec fsync still due)
        m.set("k", "w")
        assert m.execute_command("WAITAOF", 0, 1, 1500) == [1, 0]
        client(with_aof).config_set("appendfsync", "always")
        assert m.execute_command("WAITAOF", 0, 1, 5000) == [1, 1]


def _redis_74() -> str:
    import os

    path = os.environ.get("REDIS_74_SERVER", "/tmp/redis74/src/redis-server")
    if not os.path.exists(path):
        pytest.skip("no Redis 7.4 binary (REDIS_74_SERVER)")
    return path


def start_redis_74(*args: str) -> ServerProcess:
    from tests.servers import _start

    path = _redis_74()
    return _start(lambda p: [path, "--port", str(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--enable-debug-command", "yes", *args], "redis74", None)


@pytest.mark.parametrize("direction", ["redis74->dumpling", "dumpling->redis74"])
def test_redis_74_both_ways_with_hash_field_ttls(direction: str) -> None:
    """Redis 7.4 (RDB 12, hash field TTLs) as master and as replica."""
    _redis_74()
    starts = ((lambda: start_redis_74(*FAST_SYNC), start_dumpling) if direction.startswith("redis74")
              else (lambda: start_dumpling(*FAST_SYNC), start_redis_74))
    with servers(*starts) as (master, replica):
        m = client(master)
        workload(m, 30, seed=12)
        m.hset("hf", mapping={"a": 1, "b": 2})
        m.execute_command("HEXPIRE", "hf", 1000, "FIELDS", 1, "a")
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        workload(m, 60, seed=13)
        m.execute_command("HPEXPIRE", "hf", 2_000_000, "FIELDS", 1, "b")
        time.sleep(0.3)
        wait_until(caught_up(master, replica), what="offsets equal")
        assert assert_same_dataset(master, replica) > 100
        ttls = client(replica).execute_command("HTTL", "hf", "FIELDS", 2, "a", "b")
        assert abs(ttls[0] - 1000) <= 2 and abs(ttls[1] - 2000) <= 2


def test_writable_replica_expiry_as_redis() -> None:
    """Redis's integration/replication-3 cases: a writable replica expires the keys its own
    clients gave a TTL, and a write to a key of the master's that is past its TTL replaces it."""
    with servers(lambda: start_dumpling(*FAST_SYNC), start_dumpling) as (master, replica):
        r5 = client(replica, 5)
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        r5.config_set("replica-read-only", "no")
        for i in range(3):
            r5.set(f"local{i}", i, px=300)
        assert r5.dbsize() == 3 and r5.info("stats")["slave_expires_tracked_keys"] == 3
        wait_until(lambda: r5.dbsize() == 0, what="the replica expires its own keys")
        m5 = client(master, 5)
        m5.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
        m5.set("key1", 5, px=10)
        m5.set("key2", 5, px=10)
        wait_until(lambda: r5.dbsize() == 2 and r5.exists("key1", "key2") == 0, what="replicated, logically expired")
        assert r5.incr("key1") == 1 and r5.ttl("key1") == -1  # the write replaced the expired key
        assert r5.get("key2") is None and r5.dbsize() == 2  # a read leaves it for the master's DEL


def test_config_get_replicaof_follows_the_role() -> None:
    with servers(start_dumpling) as (server,):
        c = client(server)
        assert c.config_get("replicaof") == {"replicaof": ""}
        c.replicaof("127.0.0.1", 1)
        assert c.config_get("replicaof") == {"replicaof": "127.0.0.1 1"}
        assert c.config_get("slaveof") == {"slaveof": "127.0.0.1 1"}
        c.replicaof("no", "one")
        assert c.config_get("replicaof") == {"replicaof": ""}


def test_blocked_pop_served_later_reaches_the_replica() -> None:
    require_redis()
    with servers(lambda: start_dumpling(*FAST_SYNC), start_redis) as (master, replica):
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        popped: list[Any] = []
        waiter = threading.Thread(target=lambda: popped.append(client(master).blpop(["queue"], 5)))
        waiter.start()
        wait_until(lambda: client(master).info("clients")["blocked_clients"] == 1, what="blocked")
        client(master).rpush("queue", "a", "b", "c")
        waiter.join()
        assert popped == [(b"queue", b"a")]
        wait_until(caught_up(master, replica), what="offsets equal")
        assert client(replica).lrange("queue", 0, -1) == [b"b", b"c"]
        # propagated as Redis does (LPOP, RPOPLPUSH), not as an image of the whole list
        assert client(replica).info("commandstats")["cmdstat_lpop"]["calls"] == 1
        moved: list[Any] = []
        waiter = threading.Thread(target=lambda: moved.append(client(master).brpoplpush("empty", "dst", 5)))
        waiter.start()
        wait_until(lambda: client(master).info("clients")["blocked_clients"] == 1, what="blocked again")
        client(master).rpush("empty", "x")
        waiter.join()
        assert moved == [b"x"]
        wait_until(caught_up(master, replica), what="offsets equal")
        assert client(replica).info("commandstats")["cmdstat_rpoplpush"]["calls"] == 1
        assert client(replica).lrange("dst", 0, -1) == [b"x"] and not client(replica).exists("empty")
        moved = []
        waiter = threading.Thread(target=lambda: moved.append(client(master).blmove("empty", "dst", 5, "LEFT", "LEFT")))
        waiter.start()
        wait_until(lambda: client(master).info("clients")["blocked_clients"] == 1, what="blocked on BLMOVE")
        client(master).rpush("empty", "y")
        waiter.join()
        client(master).rpush("src", "z")
        assert client(master).brpoplpush("src", "dst", 1) == b"z"  # served at once: RPOPLPUSH as well
        wait_until(caught_up(master, replica), what="offsets equal")
        stats = client(replica).info("commandstats")
        assert stats["cmdstat_lmove"]["calls"] == 1 and stats["cmdstat_rpoplpush"]["calls"] == 2
        assert client(replica).lrange("dst", 0, -1) == client(master).lrange("dst", 0, -1) == [b"z", b"y", b"x"]


def test_master_restart_keeps_its_history_for_partial_resync(tmp_path: Any) -> None:
    """A master restarted from an RDB with replication info continues with its replicas
    partially (its old ID becomes replid2), as Redis 7 does."""
    require_redis()
    master = start_dumpling(*FAST_SYNC, "--dir", str(tmp_path))
    port = master.port
    try:
        with servers(start_redis) as (replica,):
            client(replica).replicaof("127.0.0.1", port)
            wait_until(lambda: link_up(replica), what="link up")
            workload(client(master), 20, seed=14)
            wait_until(caught_up(master, replica), what="offsets equal")
            client(master).execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)  # no DEL after the offset is read
            before = client(master).info("replication")
            client(master).config_set("save", "3600 1")  # saved by SHUTDOWN, after the GETACK it may send
            client(master).shutdown()
            master.proc.wait(10)
            master.stop()
            master = start_dumpling(*FAST_SYNC, "--dir", str(tmp_path), port=port)
            after = client(master).info("replication")
            assert after["master_replid2"] == before["master_replid"]
            saved = after["second_repl_offset"] - 1  # (beyond ``before`` by the GETACK a shutdown may send)
            assert before["master_repl_offset"] <= saved <= before["master_repl_offset"] + 37
            assert after["master_repl_offset"] == saved + after["repl_backlog_histlen"]  # (+ DELs of expired keys)
            wait_until(lambda: link_up(replica), timeout=15, what="link up again")
            assert client(master).info("stats")["sync_partial_ok"] == 1
            client(master).set("after-restart", 1)
            wait_until(caught_up(master, replica), what="offsets equal")
            assert client(replica).get("after-restart") == b"1"
    finally:
        master.stop()


def test_replica_times_out_a_silent_master_during_the_handshake() -> None:
    """The master stops answering after PSYNC (it is waiting to fork): the replica's
    repl-timeout, as set now, ends the attempt (Redis's integration/replication)."""
    with servers(lambda: start_dumpling("--repl-diskless-sync-delay", "30"), start_dumpling) as (master, replica):
        r = client(replica)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: client(master).info("replication").get("slave0", {}).get("state") == "wait_bgsave",
                   what="wait_bgsave")
        assert r.role()[3] == b"handshake"
        r.config_set("repl-timeout", 1)
        client(master).execute_command("DEBUG", "SLEEP", 0)  # (the master is alive; it only sends newlines)
        stopped = threading.Thread(target=lambda: client(master).execute_command("DEBUG", "SLEEP", 4))
        stopped.start()
        wait_until(lambda: "Timeout connecting to the MASTER..." in replica.log(), what="timeout logged")
        stopped.join()


def test_diskless_transfer_finishes_while_writes_pile_up() -> None:
    """Stream bytes held for a replica during a slow diskless transfer (here 30 MB) must not
    stall the transfer (only the socket's backlog paces it)."""
    with servers(lambda: start_dumpling(*FAST_SYNC, "--rdb-key-save-delay", "20000"), start_dumpling) as (
            master, replica):
        m = client(master)
        for i in range(50):
            m.set(f"k{i}", b"v" * 100_000)  # 50 keys x 20 ms: a one-second transfer of 5 MB (several pipe reads)
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: m.info("persistence")["rdb_bgsave_in_progress"] == 1  # (the transfer is under way:
                   and m.info("replication").get("slave0", {}).get("state") == "wait_bgsave", what="transfer")  # Redis's state)
        value = b"x" * 100_000
        for i in range(300):
            m.set(f"big:{i % 10}", value)
        wait_until(lambda: link_up(replica), timeout=20, what="link up")
        wait_until(caught_up(master, replica), what="offsets equal")
        assert client(replica).dbsize() == 60


def test_backlog_freed_after_ttl_without_replicas() -> None:
    with servers(lambda: start_dumpling(*FAST_SYNC, "--repl-backlog-ttl", "1"), start_dumpling) as (master, replica):
        m = client(master)
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        replid = m.info("replication")["master_replid"]
        assert m.info("replication")["repl_backlog_active"] == 1
        client(replica).replicaof("no", "one")
        wait_until(lambda: m.info("replication")["repl_backlog_active"] == 0, timeout=5, what="backlog freed")
        assert m.info("replication")["master_replid"] != replid  # a new history: nobody can continue the old one
        assert "Replication backlog freed after 1 seconds without connected replicas." in master.log()


def test_killed_transfer_child_never_completes_a_sync() -> None:
    import os
    import re
    import signal

    with servers(lambda: start_dumpling(*FAST_SYNC, "--rdb-key-save-delay", "100000"), start_dumpling) as (
            master, replica):
        m = client(master)
        for i in range(20):
            m.set(f"k{i}", i)
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: "Background RDB transfer started by pid" in master.log(), what="transfer child")
        pid = int(re.findall(r"Background RDB transfer started by pid (\d+)", master.log())[-1])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: "Background RDB transfer terminated by signal 9" in master.log(), what="child reaped")
        assert "Finished with success" not in replica.log()
        m.config_set("rdb-key-save-delay", 0)
        wait_until(lambda: link_up(replica), timeout=15, what="a later sync succeeds")
        assert client(replica).dbsize() == 20


def test_replica_stuck_during_diskless_transfer_times_out() -> None:
    import os
    import socket

    with servers(lambda: start_dumpling(*FAST_SYNC, "--repl-timeout", "1")) as (master,):
        m = client(master)
        for i in range(30):
            m.set(f"big:{i}", os.urandom(1_000_000))  # 30 MB that does not compress
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", master.port))
        sock.sendall(b"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n")
        wait_until(lambda: "Disconnecting timedout replica (full sync)" in master.log(), timeout=15, what="timeout")
        wait_until(lambda: m.info("replication")["connected_slaves"] == 0, what="dropped")
        sock.close()
        assert m.ping()


# -- the stream's bytes ---------------------------------------------------------------------------


def _attach_as_replica(server: ServerProcess) -> RawConnection:
    """A raw replica (PSYNC without capa eof: a disk-based transfer); returns the socket
    with the RDB read, so what follows is the command stream."""
    conn = RawConnection(server.port)
    assert conn.call("REPLCONF", "listening-port", "1") == b"+OK\r\n"
    conn.send(b"PSYNC ? -1\r\n")
    while b"\r\n" not in conn.buf or not conn.buf.lstrip(b"\n").startswith(b"+FULLRESYNC"):
        conn.buf += conn.sock.recv(65536)
    conn.buf = conn.buf.lstrip(b"\n")
    conn.buf = conn.buf[conn.buf.index(b"\r\n") + 2:]
    while not conn.buf.lstrip(b"\n").startswith(b"$") or b"\r\n" not in conn.buf:
        conn.buf += conn.sock.recv(65536)  # (newlines keep the link alive while the RDB is made)
    conn.buf = conn.buf.lstrip(b"\n")
    head, _, rest = conn.buf.partition(b"\r\n")
    size = int(head[1:])
    while len(rest) < size:
        rest += conn.sock.recv(65536)
    conn.buf = rest[size:]
    return conn


def _stream_after(server: ServerProcess, requests: bytes) -> bytes:
    with _attach_as_replica(server) as replica, RawConnection(server.port) as writer:
        writer.send(requests)
        replies = b""
        while replies.count(b"\r\n") < requests.count(b"*"):
            replies += writer.sock.recv(65536)
        return replica.read_all(0.5)


@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_pipelined_stream_is_byte_identical_to_redis(appendonly: str) -> None:
    """One pipelined read of plain writes (the C request loop with propagation hooks):
    commands as sent, SELECT where the database changes - the replicas' stream byte for
    byte as Redis 7.0 sends it, with the AOF sharing the encoding or not."""
    require_redis()
    commands: list[tuple[bytes | str | int, ...]] = [
        ("SET", "a", "1"), ("set", "b", "x" * 300), ("INCR", "a"), ("LPUSH", "l", "1", "2"), ("HSET", "h", "f", "v"),
        ("SELECT", "3"), ("SET", "a", "db3"), ("SADD", "s", "m"), ("ZADD", "z", "1", "m"), ("DEL", "nothing"),
        ("MSET", "k1", "v1", "k2", "v2"), ("SELECT", "0"), ("SET", "t", "1"), ("INCR", "t"),
        ("APPEND", "b", "tail"), ("RPOP", "l"), ("SET", "a", "2"), ("GET", "a"), ("SETNX", "a", "3"), ("DEL", "a"),
    ]
    requests = b"".join(encode_command(*c) for c in commands)
    options = ("--repl-ping-replica-period", "3600")
    with servers(lambda: start_redis(*options), lambda: start_dumpling(*options, "--appendonly", appendonly)) as (
            redis_master, dumpling_master):
        expected = _stream_after(redis_master, requests)
        assert expected.startswith(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n")
        assert _stream_after(dumpling_master, requests) == expected


# -- SHUTDOWN and lagging replicas ----------------------------------------------------------------


def _shutdown_waits_for_replica(master_kind: str, abort: bool) -> list[Any]:
    """A master with a stopped replica: SHUTDOWN waits with writes paused; ``abort``: SHUTDOWN
    ABORT ends the wait (the waiting client gets an error, the paused write runs), else the
    shutdown finishes once the resumed replica acknowledged the last write."""
    start = start_redis if master_kind == "redis" else start_dumpling
    seen: list[Any] = []
    with servers(lambda: start(*FAST_SYNC, "--shutdown-timeout", "60"), start_redis) as (master, replica):
        m, r = client(master), client(replica)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        m.set("k", 1)
        wait_until(caught_up(master, replica), what="offsets equal")
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            m.incr("k")
            with RawConnection(master.port) as waiting, RawConnection(master.port) as writer:
                waiting.send(encode_command("SHUTDOWN"))
                wait_until(lambda: int(m.info("server").get("shutdown_in_milliseconds", 0)) > 0, what="waiting")
                writer.send(encode_command("INCR", "k"))  # paused while the shutdown waits
                # once the server has read it (not a 0.2 s sleep): held, not answered
                wait_until(lambda: m.info("clients")["blocked_clients"] >= 2, 20, what="INCR held")
                seen.append(m.info("clients")["blocked_clients"])
                if abort:
                    seen.append(m.execute_command("SHUTDOWN", "ABORT"))
                    seen.append(waiting.read_reply())
                    seen.append(writer.read_reply())  # ran once the pause ended
                    seen.append("shutdown_in_milliseconds" in m.info("server"))
                    seen.append(_error(m, "SHUTDOWN", "ABORT"))
                else:
                    replica.proc.send_signal(signal.SIGCONT)
                    seen.append(waiting.is_closed(10))
                    seen.append(writer.is_closed(10))
                    master.proc.wait(10)
                    seen.append(r.get("k"))
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        log = master.log()
        seen += [line in log for line in ("Waiting for replicas before shutting down.", "Shutdown manually aborted.",
                                          "1 of 1 replicas are in sync when shutting down.", "Lagging replica")]
    return seen


def _error(c: redis.Redis, *args: str) -> str:
    try:
        return repr(c.execute_command(*args))
    except redis.ResponseError as e:
        return str(e)


@pytest.mark.parametrize("abort", [False, True])
def test_shutdown_waits_for_lagging_replicas_as_redis(abort: bool) -> None:
    require_redis()
    expected = _shutdown_waits_for_replica("redis", abort)
    assert expected[0] == 2 and expected[-4] is True, expected  # (the SHUTDOWN and the INCR wait)
    assert _shutdown_waits_for_replica("dumpling", abort) == expected


def _restart_with_expired_keys(kind: str, directory: str) -> list[Any]:
    """A master with a replica saves keys that expire before it restarts: the load drops
    them and feeds their DELs to the backlog, after the saved offset (RDBFLAGS_FEED_REPL)."""
    start = start_redis if kind == "redis" else start_dumpling
    master = start(*FAST_SYNC, "--dir", directory)
    port = master.port
    try:
        with servers(start_redis) as (replica,):
            client(replica).replicaof("127.0.0.1", port)
            wait_until(lambda: link_up(replica), what="link up")
            m = client(master)
            m.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
            for i in range(40):
                client(master, i % 3).set(f"k{i}", "v", px=10 if i % 2 else 100_000)
            wait_until(caught_up(master, replica), what="offsets equal")
            before = m.info("replication")
            m.config_set("save", "3600 1")  # saved by SHUTDOWN, after any GETACK it sends
            m.shutdown()  # (redis-py takes the closed connection as success)
            master.proc.wait(10)
            master.stop()
            master = start(*FAST_SYNC, "--dir", directory, port=port)
            m = client(master)
            after = m.info("replication")
            wait_until(lambda: link_up(replica) and caught_up(master, replica)(), timeout=15, what="link up again")
            saved = after["second_repl_offset"] - 1  # the offset in the RDB
            return [m.info("persistence")["rdb_last_load_keys_expired"], after["master_repl_offset"] - saved,
                    after["repl_backlog_histlen"], after["repl_backlog_first_byte_offset"] - saved,
                    after["master_replid2"] == before["master_replid"], m.info("stats")["sync_partial_ok"],
                    sorted(client(replica, 1).keys())]
    finally:
        master.stop()


def test_master_restart_feeds_keys_expired_on_load_to_its_backlog(tmp_path: Any) -> None:
    require_redis()
    (tmp_path / "r").mkdir()
    (tmp_path / "d").mkdir()
    expected = _restart_with_expired_keys("redis", str(tmp_path / "r"))
    assert expected[0] == 20 and expected[1] == expected[2] > 0 and expected[5] == 1, expected
    assert _restart_with_expired_keys("dumpling", str(tmp_path / "d")) == expected


# -- repl-diskless-load ------------------------------------------------------------------------------


def _swapdb_resync(replica_kind: str, outcome: str) -> list[Any]:
    """A replica with ``repl-diskless-load swapdb`` resyncs fully from the master it already
    follows: the old data (and functions) stay served during the transfer (async_loading),
    then are replaced (``done``), or stay when the transfer is cut (``aborted``)."""
    start = start_redis if replica_kind == "redis" else start_dumpling
    # (Redis answers clients while loading once per this many bytes; dumpling every ~20 ms)
    serve = ("--loading-process-events-interval-bytes", "1024") if replica_kind == "redis" else ()
    seen: list[Any] = []
    lua = "#!lua name=test\nredis.register_function('test', function() return '%s' end)"
    with servers(lambda: start_redis(*FAST_SYNC), lambda: start(
            "--repl-diskless-load", "swapdb", "--replica-read-only", "no", *serve)) as (master, replica):
        m, r = client(master), client(replica)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        m.execute_command("DEBUG", "POPULATE", 200, "master", 20000)  # (big keys: the transfer moves key by key)
        wait_until(caught_up(master, replica), what="offsets equal")
        r.set("mykey", "myvalue")
        r.function_load(lua % "old")
        m.function_load(lua % "new")
        m.config_set("rdb-key-save-delay", 5000 if outcome == "done" else 50_000)  # µs per key: a slow transfer
        with m.pipeline(transaction=True) as p:  # the backlog cannot serve the replica any more: a full sync
            p.client_kill_filter(_type="replica")
            p.config_set("repl-backlog-size", 16384)
            for i in range(10):
                p.set(f"big{i}", "A" * 16384)
            p.execute()
        wait_until(lambda: r.info("persistence")["async_loading"] == 1, what="async loading")
        info = r.info("persistence")
        seen += [info["loading"], r.get("mykey"), r.fcall("test", 0), r.dbsize()]
        with RawConnection(replica.port) as raw:  # (DENY_LOADING_CONFIG settings)
            seen.append(raw.call("CONFIG", "SET", "appendonly", "no"))
        if replica_kind == "dumpling":  # (Redis 7.4 refuses it while async loading; 7.0 ran it afterwards)
            with RawConnection(replica.port) as raw:
                assert raw.call("REPLICAOF", "NO", "ONE") == b"-LOADING Redis is loading the dataset in memory\r\n"
        if outcome == "aborted":
            m.config_set("repl-diskless-sync-delay", 5)  # (no new sync right away)
            m.client_kill_filter(_type="replica")
            wait_until(lambda: r.info("persistence")["async_loading"] == 0, what="load abandoned")
        else:
            wait_until(lambda: link_up(replica) and r.info("persistence")["async_loading"] == 0, timeout=30,
                       what="synced")
        seen += [r.get("mykey"), r.fcall("test", 0), r.dbsize()]
        m.config_set("rdb-key-save-delay", 0)
    return seen


@pytest.mark.parametrize("outcome", ["done", "aborted"])
def test_swapdb_serves_the_old_data_during_a_full_resync(outcome: str) -> None:
    require_redis()
    expected = _swapdb_resync("redis", outcome)
    assert expected[:4] == [0, b"myvalue", b"old", 1], expected  # (DEBUG POPULATE does not replicate)
    assert _swapdb_resync("dumpling", outcome) == expected


# -- FAILOVER -------------------------------------------------------------------------------------


def _failover(kind: str) -> list[Any]:
    """FAILOVER's refusals, then a coordinated failover to a named replica under writes: roles
    swap, the old master continues partially as a replica, nothing acknowledged is lost."""
    start = start_redis if kind == "redis" else start_dumpling
    seen: list[Any] = []
    with servers(lambda: start(*FAST_SYNC), lambda: start(*FAST_SYNC), lambda: start(*FAST_SYNC)) as (
            node0, node1, node2):
        m, r1, r2 = client(node0), client(node1), client(node2)
        with RawConnection(node0.port) as raw:
            seen.append(raw.call("FAILOVER", "TO", "127.0.0.1", node1.port))  # no replicas yet
            r1.replicaof("127.0.0.1", node0.port)
            r2.replicaof("127.0.0.1", node0.port)
            wait_until(lambda: link_up(node1) and link_up(node2), what="links up")
            wait_until(lambda: all(m.info("replication").get(f"slave{i}", {}).get("state") == "online"
                                   for i in (0, 1)), what="replicas online")
            for args in (("TO", "invalidhost", node1.port), ("TO", "127.0.0.1", "invalidport"),
                         ("FORCE", "TIMEOUT", 100), ("TO", "127.0.0.1", node1.port, "FORCE"), ("TIMEOUT", 0),
                         ("TIMEOUT", -1, "TIMEOUT", 5), ("ABORT",), ("BOGUS",)):
                seen.append(raw.call("FAILOVER", *args))
            seen.append(RawConnection(node1.port).call("FAILOVER", "TO", "127.0.0.1", node1.port))
            seen.append(RawConnection(node1.port).call("PSYNC", "wrong-id", 1, "FAILOVER"))
            for i in range(200):
                m.set(f"k{i}", i)
            partial_before = r1.info("stats")["sync_partial_ok"]
            seen.append(raw.call("FAILOVER", "TO", "127.0.0.1", node1.port, "TIMEOUT", 5000))
            seen.append(raw.call("FAILOVER"))  # already in progress
            wait_until(lambda: m.info("replication")["master_failover_state"] == "no-failover", what="failover done")
        wait_until(lambda: link_up(node0), what="old master follows")
        seen += [m.role()[0], r1.role()[0], r1.info("stats")["sync_partial_ok"] - partial_before,
                 r1.info("stats")["sync_full"], r1.dbsize()]
        r2.replicaof("127.0.0.1", node1.port)
        r1.set("after", 1)
        wait_until(caught_up(node1, node0, node2), what="offsets equal")
        seen += [m.get("after"), r2.get("after"), m.dbsize(), r2.dbsize()]
        with RawConnection(node1.port) as raw:
            seen.append(raw.call("FAILOVER", "ABORT"))
    return seen


def test_failover_as_redis() -> None:
    require_redis()
    expected = _failover("redis")
    assert expected[-10:-5] == [b"slave", b"master", 1, 0, 200], expected  # (one partial resync: the old master)
    assert _failover("dumpling") == expected


def _on_empty_db_writes_file(kind: str, filled: bool) -> bool:
    """``repl-diskless-load on-empty-db``: the transfer becomes ``dbfilename`` only when the
    replica had data (a diskless load needs an empty dataset)."""
    start = start_redis if kind == "redis" else start_dumpling
    with servers(lambda: start_redis(*FAST_SYNC), lambda: start("--repl-diskless-load", "on-empty-db")) as (
            master, replica):
        client(master).set("k", "v")
        if filled:
            client(replica).set("mine", "1")
        client(replica).replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        assert client(replica).keys() == [b"k"]
        return os.path.exists(os.path.join(replica.dir, "dump.rdb"))


@pytest.mark.parametrize("filled", [False, True])
def test_on_empty_db_loads_diskless_only_into_an_empty_dataset(filled: bool) -> None:
    require_redis()
    expected = _on_empty_db_writes_file("redis", filled)
    assert expected is filled
    assert _on_empty_db_writes_file("dumpling", filled) is expected


def test_replica_back_from_another_master_continues_in_the_selected_database() -> None:
    """REPLICAOF elsewhere and back: the partial resync continues the stream in the database
    it had SELECTed (the cached master keeps its client, as Redis's does)."""
    require_redis()
    with servers(lambda: start_redis(*FAST_SYNC), lambda: start_dumpling(*FAST_SYNC)) as (master, replica):
        m9, r = client(master, 9), client(replica)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        m9.set("before", 1)
        wait_until(caught_up(master, replica), what="offsets equal")
        r.replicaof("127.0.0.1", 1)  # nothing listens there
        m9.set("away", 1)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up again")
        m9.set("after", 1)
        wait_until(caught_up(master, replica), what="offsets equal")
        assert client(master).info("stats")["sync_partial_ok"] == 1
        assert sorted(client(replica, 9).keys()) == [b"after", b"away", b"before"]
        assert client(replica, 0).dbsize() == 0


def test_a_transaction_split_across_reads_counts_whole_in_the_offset() -> None:
    """The master's MULTI ... EXEC may arrive in several reads: the replica's offset moves
    past the whole block once EXEC ran, counting the bytes of every read (in-process)."""
    from dumpling.config import Config
    from dumpling.dispatch import Server
    from dumpling.replication.upstream import MasterLink
    from dumpling.replication.wire import CommandStream

    server = Server(Config())
    link = MasterLink(server.replication, "127.0.0.1", 1, None)
    link.client = link.new_client()
    stream = CommandStream()
    first = encode_command("MULTI") + encode_command("SET", "k", "v")
    second = encode_command("INCR", "n") + encode_command("EXEC")
    start = link.offset
    stream.feed(first)
    assert link._apply_available(stream) == 0 and link.offset == start
    stream.feed(second)
    assert link._apply_available(stream) == len(first) + len(second) == link.offset - start
    db = server.keyspace.dbs[0]
    assert db.data[b"k"] == b"v" and db.data[b"n"] == b"1"


def _replica_paused(kind: str) -> list[Any]:
    """CLIENT PAUSE WRITE on a replica holds its master's writes: slave_read_repl_offset
    grows, slave_repl_offset waits, and the stream goes on when the pause ends."""
    start = start_redis if kind == "redis" else start_dumpling
    with servers(lambda: start_redis(*FAST_SYNC), lambda: start(*FAST_SYNC)) as (master, replica):
        m, r = client(master), client(replica)
        r.replicaof("127.0.0.1", master.port)
        wait_until(lambda: link_up(replica), what="link up")
        m.set("foo", "bar")
        wait_until(caught_up(master, replica), what="offsets equal")
        before = offset(master)
        r.client_pause(100_000, all=False)
        m.set("foo2", "bar2")
        target = offset(master)
        wait_until(lambda: r.info("replication")["slave_read_repl_offset"] == target, what="received")
        seen: list[Any] = [r.info("replication")["slave_repl_offset"] == before, r.get("foo2")]
        r.client_unpause()
        wait_until(lambda: r.info("replication")["slave_repl_offset"] == target, what="applied")
        seen.append(r.get("foo2"))
        return seen


def test_client_pause_on_a_replica_holds_its_masters_writes() -> None:
    require_redis()
    expected = _replica_paused("redis")
    assert expected == [True, None, b"bar2"], expected
    assert _replica_paused("dumpling") == expected


def test_bind_source_addr() -> None:
    """A replica's link to its master leaves from ``bind-source-addr`` (unit/networking
    'CONFIG SET bind-source-addr'): the master sees the connection come from that address.
    dumpling master and replica, compared with Redis master and replica."""
    seen = []
    for start in (start_redis, start_dumpling):
        with servers(lambda s=start: s(*FAST_SYNC), lambda s=start: s(*FAST_SYNC)) as (master, replica):
            client(master).config_set("protected-mode", "no")
            r = client(replica)
            r.config_set("bind-source-addr", "127.0.0.2")
            seen.append(r.config_get("bind-source-addr"))
            r.replicaof("127.0.0.1", master.port)
            # the master sees the link come from there as soon as it connects (no need to wait for the sync)
            deadline = time.monotonic() + 10
            from_source = False
            while not from_source and time.monotonic() < deadline:
                from_source = b"addr=127.0.0.2:" in client(master).execute_command("CLIENT", "LIST")
                time.sleep(0.05)
            seen.append(from_source)
    assert seen == [{"bind-source-addr": "127.0.0.2"}, True] * 2
