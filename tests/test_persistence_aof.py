"""The append-only file: dumpling's AOF directories load into redis-server 7.0 (and pass
redis-check-aof), Redis's load into dumpling, ``appendfsync always`` survives SIGKILL,
BGREWRITEAOF, truncated tails, CONFIG SET appendonly at run time."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from functools import partial
from pathlib import Path

import redis

from tests.fuzzing import scaled
from tests.servers import ServerProcess, encode_command, require_redis, start_dumpling, start_redis
from tests.test_persistence_rdb import contents, dumpling, info, raw_call, run_dumpling, shutdown, wait_for


def client(server: ServerProcess) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10)


def workload(c: redis.Redis) -> None:
    """Writes of every kind the log must get right: plain, relative TTLs, random pops,
    floats, transactions, other databases, flushes and swaps, expiry, a served BLPOP."""
    c.set("plain", "v")
    c.set("ttl", "v", ex=1000)
    c.setex("setex", 1000, "v")
    c.rpush("list", *range(10))
    c.expire("list", 2000)
    c.incrbyfloat("float", 1.1)
    c.incrbyfloat("float", 2.2)
    c.sadd("set", *range(20))
    c.spop("set", 5)
    c.hset("hash", mapping={"a": 1, "b": 2})
    c.hincrby("hash", "a", 5)
    c.hincrbyfloat("hash", "f", 0.5)
    c.zadd("zset", {"a": 1, "b": 2})
    c.zincrby("zset", 2.5, "a")
    c.xadd("stream", {"f": "v"})
    c.set("short", "v", px=50)
    with c.pipeline(transaction=True) as p:
        p.incr("counter").lpush("list", "m").persist("ttl").execute()
    c.execute_command("SELECT", 2)
    c.set("db2", "x")
    c.execute_command("SELECT", 0)
    c.execute_command("SWAPDB", 2, 3)
    c.execute_command("SELECT", 4)
    c.set("gone", "x")
    c.execute_command("FLUSHDB")
    c.execute_command("SELECT", 0)
    c.delete("plain")
    c.set("plain", "again")
    waiter = redis.Redis(port=c.connection_pool.connection_kwargs["port"], socket_timeout=10)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(waiter.blpop(["queue"], timeout=5)))
    t.start()
    time.sleep(0.2)
    c.rpush("queue", "job1", "job2")
    t.join()
    assert got == [(b"queue", b"job1")]
    time.sleep(0.3)  # "short" expires: a DEL in the log


def test_aof_round_trip_and_redis_loads_it(tmp_path: Path) -> None:
    require_redis()
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        c = client(server)
        workload(c)
        wait_for(lambda: c.exists("short") == 0)
        expected = contents(c)
        assert (0, b"short") not in expected and (3, b"db2") in expected
        fields = info(server)
        assert fields["aof_enabled"] == "1" and fields["aof_last_write_status"] == "ok"
        shutdown(server)
    directory = tmp_path / "appendonlydir"
    assert sorted(p.name for p in directory.iterdir()) == [
        "appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof", "appendonly.aof.manifest"]
    log = (directory / "appendonly.aof.1.incr.aof").read_bytes()
    # What Redis propagates for these, not whole-value images:
    assert b"$4\r\nSREM\r\n$3\r\nset\r\n" in log and b"$9\r\nPEXPIREAT\r\n$4\r\nlist\r\n" in log
    assert b"$4\r\nHSET\r\n$4\r\nhash\r\n$1\r\nf\r\n$3\r\n0.5\r\n" in log
    assert b"XADD\r\n$6\r\nstream\r\n$" in log and b"XADD\r\n$6\r\nstream\r\n$1\r\n*" not in log  # the ID made
    assert b"$3\r\nDEL\r\n$5\r\nshort\r\n" in log  # expired by the cron
    check = subprocess.run(["redis-check-aof", str(directory / "appendonly.aof.manifest")], capture_output=True,
                           text=True, timeout=30)
    assert "is valid" in check.stdout, check.stdout
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert contents(client(server)) == expected
        assert "DB loaded from append only file" in server.log()
        shutdown(server, "NOSAVE")
    theirs = start_redis("--dir", str(tmp_path), "--appendonly", "yes")
    try:
        assert contents(client(theirs)) == expected
    finally:
        theirs.stop()


def test_redis_aof_directory_loads_into_dumpling(tmp_path: Path) -> None:
    require_redis()
    theirs = start_redis("--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always")
    try:
        c = client(theirs)
        workload(c)
        c.bgrewriteaof()
        wait_for(lambda: c.info("persistence")["aof_rewrite_in_progress"] == 0)
        c.rpush("list", "after-rewrite")
        c.set("ttl2", "v", ex=500)
        expected = contents(c)
    finally:
        theirs.stop()
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert contents(client(server)) == expected


def test_appendfsync_always_keeps_every_acknowledged_write_through_sigkill(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--appendonly", "yes", "--appendfsync", "always") as server:
        c = client(server)
        acknowledged = 0
        for i in range(300):
            c.set(f"k{i}", i)
            c.rpush("log", i)
            acknowledged = i + 1
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        c = client(server)
        assert c.llen("log") == acknowledged
        assert all(c.get(f"k{i}") == str(i).encode() for i in range(acknowledged))


def test_bgrewriteaof_while_writing_and_truncated_tail(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--appendonly", "yes", "--rdb-key-save-delay", "2000") as server:
        c = client(server)
        c.mset({f"k{i}": "old" for i in range(300)})
        assert raw_call(server, "BGREWRITEAOF") == b"+Background append only file rewriting started\r\n"
        assert raw_call(server, "BGREWRITEAOF") == (
            b"-ERR Background append only file rewriting already in progress\r\n")
        assert raw_call(server, "BGSAVE") == (
            b"-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to "
            b"schedule a BGSAVE whenever possible.\r\n")
        for i in range(300):
            c.set(f"k{i}", "new")
        wait_for(lambda: info(server)["aof_rewrite_in_progress"] == "0", timeout=20)
        assert info(server)["aof_last_bgrewrite_status"] == "ok"
        c.set("last", "1")
        expected = contents(c)
        shutdown(server, "NOSAVE")
    directory = tmp_path / "appendonlydir"
    manifest = (directory / "appendonly.aof.manifest").read_text()
    assert manifest == "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
    assert not (directory / "appendonly.aof.1.incr.aof").exists()
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert contents(client(server)) == expected
        shutdown(server, "NOSAVE")
    incr = directory / "appendonly.aof.2.incr.aof"
    incr.write_bytes(incr.read_bytes() + b"*3\r\n$3\r\nSET\r\n$4\r\nhalf")  # a write cut by a crash
    result = run_dumpling(tmp_path, "--appendonly", "yes", "--aof-load-truncated", "no", timeout=20)
    assert result.returncode == 1 and "Bad file format reading the append only file" in result.stdout
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert contents(client(server)) == expected
        assert "!!! Warning: short read while loading the AOF file appendonly.aof.2.incr.aof!!!" in server.log()


def test_config_set_appendonly_at_run_time(tmp_path: Path) -> None:
    with dumpling(tmp_path) as server:
        c = client(server)
        c.mset({"a": 1, "b": 2})
        assert info(server)["aof_enabled"] == "0"
        c.config_set("appendonly", "yes")
        assert info(server)["aof_enabled"] == "1"
        c.set("c", 3)
        wait_for(partial(_no_child_or_scheduled_rewrite, c))  # (the first base is a forked rewrite)
        c.config_set("appendonly", "no")
        c.set("d", 4)  # not logged any more
        shutdown(server, "NOSAVE")
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        c = client(server)
        assert sorted(c.keys("*")) == [b"a", b"b", b"c"]


def _no_child_or_scheduled_rewrite(c: redis.Redis) -> bool:
    state = c.info("persistence")
    return not (state["aof_rewrite_scheduled"] or state["aof_rewrite_in_progress"] or state["rdb_bgsave_in_progress"])


def test_appendonly_enabled_in_a_transaction_or_beside_a_child_is_scheduled(tmp_path: Path) -> None:
    """CONFIG SET appendonly yes inside EXEC, or while a BGSAVE child runs, cannot rewrite at
    once: Redis logs that the AOF's background rewrite is scheduled and the cron forks it
    later (startAppendOnly).  Same log lines, a fork, and an AOF that loads back everything,
    on both servers."""
    require_redis()
    lines = {
        "during a transaction": "AOF was enabled during a transaction. An AOF background was scheduled to start "
                                "when possible.",
        "beside a child": "AOF was enabled but there is already another background operation. An AOF background was "
                          "scheduled to start when possible.",
    }
    for name, start in (("dumpling", start_dumpling), ("redis", start_redis)):
        for case, line in lines.items():
            directory = tmp_path / name / case.replace(" ", "-")
            directory.mkdir(parents=True)
            server = start("--dir", str(directory))
            try:
                c = client(server)
                c.set("a", 1)
                forks = c.info("stats")["total_forks"]
                if case == "beside a child":
                    c.config_set("rdb-key-save-delay", 200_000)
                    c.bgsave()
                    c.config_set("appendonly", "yes")
                    assert c.info("persistence")["aof_rewrite_scheduled"] == 1
                    c.config_set("rdb-key-save-delay", 0)  # (the running child keeps its 0.2 s)
                else:
                    p = c.pipeline(transaction=True)
                    p.set("foo", "bar").config_set("appendonly", "yes")
                    assert p.execute() == [True, True]
                c.set("after", 2)
                c.incr("n")  # (before the rewrite forks: in the base, and only there)
                assert c.info("persistence")["aof_enabled"] == 1
                wait_for(partial(_no_child_or_scheduled_rewrite, c), timeout=30)
                assert c.info("stats")["total_forks"] > forks + (case == "beside a child"), (name, case)
                assert line in server.log(), (name, case)
                c.set("later", 3)
                assert c.execute_command("DEBUG", "LOADAOF") == b"OK"
                assert sorted(c.keys("*")) == sorted([b"a", b"after", b"later", b"n"] + [b"foo"] * (case != "beside a child"))
                assert c.get("n") == b"1"
            finally:
                server.stop()


def test_shutdown_waits_for_the_initial_aof_rewrite(tmp_path: Path) -> None:
    """CONFIG SET appendonly yes at run time writes the first base in a forked rewrite; until it
    ends the AOF is incomplete, so SHUTDOWN refuses unless FORCE (the log line unit/shutdown
    waits for), on both servers; writes made meanwhile reach the AOF's first incr file."""
    require_redis()
    replies = []
    for name, start in (("dumpling", start_dumpling), ("redis", start_redis)):
        directory = tmp_path / name
        directory.mkdir()
        server = start("--dir", str(directory))
        try:
            c = client(server)
            c.mset({str(i): i for i in range(10)})
            c.config_set("rdb-key-save-delay", 10_000_000)
            c.config_set("appendonly", "yes")
            wait_for(lambda c=c: c.info("persistence")["aof_rewrite_in_progress"] == 1)
            c.incr("counter")
            with server.raw() as conn:
                replies.append((conn.call("SHUTDOWN"), conn.call("INFO", "persistence").count(b"aof_enabled:1")))
            assert "Writing initial AOF, can't exit." in server.log(), name
            assert c.config_set("appendonly", "no")  # (kills the rewrite)
            assert c.info("persistence")["aof_rewrite_in_progress"] == 0
        finally:
            server.stop()
    assert replies[0] == replies[1] == (b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n", 1)


def test_info_persistence_fields_with_aof_match_redis(tmp_path: Path) -> None:
    require_redis()
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    with dumpling(tmp_path / "ours", "--appendonly", "yes") as ours:
        theirs = start_redis("--dir", str(tmp_path / "theirs"), "--appendonly", "yes")
        try:
            assert list(info(ours)) == list(info(theirs))
        finally:
            theirs.stop()



def test_debug_loadaof_matches_redis(tmp_path: Path) -> None:
    require_redis()
    replies = []
    for name, start in (("dumpling", start_dumpling), ("redis", start_redis)):
        directory = tmp_path / name
        directory.mkdir()
        server = start("--dir", str(directory), "--appendonly", "yes")
        try:
            with server.raw() as conn:
                replies.append([conn.call("SET", "a", "1"), conn.call("RPUSH", "l", "x", "y"),
                                conn.call("EXPIRE", "l", "1000"), conn.call("DEBUG", "LOADAOF"),
                                conn.call("GET", "a"), conn.call("LRANGE", "l", "0", "-1"), conn.call("TTL", "l"),
                                conn.call("DBSIZE")])
        finally:
            server.stop()
    assert replies[0] == replies[1]


def test_approximate_stream_trims_with_limit_reload_from_the_aof(tmp_path: Path) -> None:
    """XADD/XTRIM with ``~ ... LIMIT`` are logged as exact trims that keep their LIMIT
    (streamRewriteTrimArgument); the AOF loader, like a master's stream, must accept LIMIT
    without ``~`` (mustObeyClient) or the reload drops the entry (unit/type/stream)."""
    require_redis()
    lengths = []
    for name, start in (("dumpling", start_dumpling), ("redis", start_redis)):
        directory = tmp_path / name
        directory.mkdir()
        server = start("--dir", str(directory), "--appendonly", "yes", "--stream-node-max-entries", "4")
        try:
            with server.raw() as conn:
                for i in range(1, 21):
                    conn.call("XADD", "s", f"{i}-0", "f", "v")
                seen = [conn.call("XADD", "s", "MAXLEN", "~", "5", "LIMIT", "4", "21-0", "f", "v"),
                        conn.call("XTRIM", "s", "MINID", "~", "15", "LIMIT", "4"), conn.call("XLEN", "s")]
                seen += [conn.call("DEBUG", "LOADAOF"), conn.call("XLEN", "s"), conn.call("XRANGE", "s", "-", "+", "COUNT", "1")]
                lengths.append(seen)
        finally:
            server.stop()
    assert lengths[0] == lengths[1]
    assert lengths[0][2] == lengths[0][4]


def test_c_request_loop_logs_what_python_logs(tmp_path: Path) -> None:
    """With the AOF on, the C request loop runs every plain command through the same call hooks
    as Server.call (its string twins step aside): the same pipelined stream gives the same replies
    and a byte-identical incremental AOF with the C accelerators and without them (DUMPLING_PURE)."""
    requests = []
    for i in range(scaled(300, floor=75)):  # 75 rounds already cycle every key, list, member and field
        k = f"k{i % 7}"
        requests += [
            ("SET", k, f"v{i}"), ("INCR", f"n{i % 3}"), ("MSET", "a", i, "b", i + 1), ("GET", k),
            ("LPUSH", f"l{i % 4}", i, i + 1), ("RPOP", f"l{i % 4}"), ("HSET", "h", f"f{i % 9}", i),
            ("ZADD", "z", i % 11, f"m{i % 13}"), ("SADD", "s", i % 17), ("SREM", "s", (i + 3) % 17),
            ("SET", k, "x", "NX"), ("SET", k, "y", "XX", "GET"), ("APPEND", k, "+"), ("INCR", k),
            ("PEXPIREAT", k, 4102444800000 + i), ("PERSIST", f"k{(i + 1) % 7}"), ("HINCRBYFLOAT", "h", "f", "0.5"),
            ("XADD", "st", f"{i + 1}-1", "f", i), ("LPUSH", "h", "wrongtype"), ("GET",), ("DEL", f"l{(i + 2) % 4}"),
        ]
    wire = b"".join(encode_command(*cmd) for cmd in requests)
    results = []
    for env in ({}, {"DUMPLING_PURE": "1"}):
        directory = tmp_path / ("pure" if env else "c")
        directory.mkdir()
        server = start_dumpling("--dir", str(directory), "--appendonly", "yes", "--appendfsync", "always", env=env)
        try:
            with server.raw() as conn:
                conn.sock.settimeout(60)
                for at in range(0, len(wire), 4096):  # reads of many requests, cut anywhere
                    conn.send(wire[at:at + 4096])
                replies = [conn.read_reply() for _ in requests]
        finally:
            server.stop()
        incr = sorted((directory / "appendonlydir").glob("*.incr.aof"))
        results.append((replies, [f.read_bytes() for f in incr]))
    assert results[0] == results[1]
    assert results[0][1] and b"HINCRBYFLOAT" not in results[0][1][0]  # translated as Redis does (HSET)
