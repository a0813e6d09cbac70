"""RDB persistence: files dumpling writes and loads, both ways with the real redis-server.

Every test starts its own servers with ``--dir`` in a temporary directory: saving,
restarting and SIGTERM are server-wide.  The pure file layer (``dumpling.persistence.rdb``)
is checked against the annotated Redis 7.0.15 file of ``spec/rdb-file.md`` §12.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from dumpling.datatypes import HashValue, ListValue, SetValue, ZSetValue
from dumpling.keytable import KeyTable
from dumpling.payload import DEFAULT_OPTIONS
from dumpling.persistence.rdb import (
    Aux,
    DatabaseSnapshot,
    Function,
    KeyRecord,
    RdbError,
    RdbParser,
    RdbWriter,
    SelectDb,
    file_version_for,
    write_databases,
)
from tests.servers import (
    ROOT,
    ServerProcess,
    encode_command,
    free_port,
    require_redis,
    start_dumpling,
    start_redis,
)

# spec/rdb-file.md §12: SAVE of a Redis 7.0.15 server (10 keys, 2 TTLs, a function, 2 DBs).
REDIS_70_FILE = base64.b64decode(
    "UkVESVMwMDEw+glyZWRpcy12ZXIGNy4wLjE1+gpyZWRpcy1iaXRzwED6BWN0aW1lwhQrAWv6CHVzZWQtbWVtwkBwEQD6CGFvZi1iYXNl"
    "wAD1QEYjIWx1YSBuYW1lPW15bGliCnJlZGlzLnJlZ2lzdGVyX2Z1bmN0aW9uKCdmJywgZnVuY3Rpb24oKSByZXR1cm4gMSBlbmQp/gD7"
    "CQIAA2ludME5MAIEaHNldAIBeQF4EgRsaXN0AQIPDwAAAAMAgWECgWICAQH//HvYwyy7AwAAEARoYXNoDQ0AAAACAIFmAoF2Av8RBHpz"
    "ZXQUFAAAAAQAgWECAQGBYgKDMi41BP8AA2x6ZsMJHgFhYeARAAFhYQsEaXNldA4CAAAAAwAAAAEAAgADAPwA2MMsuwMAAAADc3RyBWhl"
    "bGxvEwZzdHJlYW0BEAAAAAAAAAABAAAAAAAAAAEdHQAAAAoAAQEAAQEBgWYCAAECAQABAAGBdgIEAf8BAQEBAQAAAQD+AfsBAAAGZGIx"
    "a2V5AXb/XAamK92J9Jo="
)


# ----------------------------------------------------------------------------- helpers


def key_table(data: dict[bytes, object], fields: dict[bytes, int] | None = None) -> Any:
    """A database's KeyTable (the C one when built) holding ``data`` and the LRU/LFU fields given."""
    table = KeyTable()
    for key, value in data.items():
        table[key] = value
    for key, field in (fields or {}).items():
        table.set_field(key, field)
    return table


def client(server: ServerProcess) -> redis.Redis:
    return redis.Redis(port=server.port, decode_responses=False, socket_timeout=10)


def info(server: ServerProcess, section: str = "persistence") -> dict[str, str]:
    with server.raw() as conn:
        text = conn.call("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def raw_call(server: ServerProcess, *args: str) -> bytes:
    with server.raw() as conn:
        return conn.call(*args)


def shutdown(server: ServerProcess, *flags: str) -> None:
    """SHUTDOWN [flags]: no reply, the process exits 0."""
    with server.raw() as conn:
        conn.send(encode_command("SHUTDOWN", *flags))
        assert conn.read_all(wait=2) == b""
    assert server.proc.wait(10) == 0


@contextmanager
def dumpling(directory: Path, *args: str) -> Iterator[ServerProcess]:
    server = start_dumpling("--dir", str(directory), *args)
    try:
        yield server
    finally:
        server.stop()


def run_dumpling(directory: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """A dumpling that is expected to exit by itself (a file it refuses to load)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "dumpling", "--port", str(free_port()), "--dir", str(directory), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=directory)


def populate(c: redis.Redis) -> None:
    """One key of every type and encoding, TTLs, three databases."""
    c.set("str", "hello")
    c.set("int", 12345)
    c.set("big-int", 2**40)
    c.set("lzf", "a" * 300)
    c.append("raw", "x" * 50)
    c.pexpireat("str", 4102444800123)
    c.rpush("list", "a", "b", 1, 2, "c" * 100)
    c.rpush("biglist", *[f"item-{i}" * 3 for i in range(1000)])
    c.sadd("intset", 1, 2, 3, -7)
    c.sadd("set", "x", "y", "z")
    c.sadd("bigset", *[f"m{i}" for i in range(300)])
    c.zadd("zset", {"a": 1, "b": 2.5, "c": -3})
    c.zadd("bigzset", {f"m{i}": i / 7 for i in range(300)})
    c.hset("hash", mapping={"f": "v", "n": 5})
    c.hset("bighash", mapping={f"f{i}": "v" * (i % 90) for i in range(600)})
    c.expire("bighash", 10_000)
    c.xadd("stream", {"f": "v"}, id="1-1")
    c.xadd("stream", {"f": "w", "g": "x"}, id="2-0")
    c.xgroup_create("stream", "grp", id="0")
    c.xreadgroup("grp", "alice", {"stream": ">"}, count=1)
    c.execute_command("SELECT", 3)
    c.set("db3", "three")
    c.execute_command("SELECT", 15)
    c.hset("db15", "k", "v")
    c.execute_command("SELECT", 0)


def ordered_dumps(c: redis.Redis) -> dict[bytes, bytes]:
    """DUMP of every key of DB 0 whose payload has a defined order (not hashtable sets or
    hashes: their table's order, which a restart changes, as Redis's dict seed does)."""
    return {key: c.dump(key) for key in c.keys("*")
            if c.type(key) not in (b"set", b"hash") or c.object("encoding", key) != b"hashtable"}


def contents(c: redis.Redis) -> dict[tuple[int, bytes], object]:
    """Every key of every database as (type, comparable value, has TTL)."""
    out: dict[tuple[int, bytes], object] = {}
    for db in range(16):
        c.execute_command("SELECT", db)
        for key in c.keys("*"):
            kind = c.type(key)
            if kind == b"string":
                value: object = c.get(key)
            elif kind == b"list":
                value = c.lrange(key, 0, -1)
            elif kind == b"set":
                value = sorted(c.smembers(key))
            elif kind == b"zset":
                value = c.zrange(key, 0, -1, withscores=True)
            elif kind == b"hash":
                value = sorted(c.hgetall(key).items())
            else:
                value = (c.xrange(key), c.execute_command("XINFO", "GROUPS", key))
            ttl = c.pttl(key)
            out[(db, key)] = (kind, value, ttl > 0)
    c.execute_command("SELECT", 0)
    return out


# ----------------------------------------------------------------------------- the file layer


def test_parses_redis_70_file_record_by_record() -> None:
    parser = RdbParser(REDIS_70_FILE, DEFAULT_OPTIONS)
    records = list(parser.records())
    assert parser.version == 10 and parser.pos == len(REDIS_70_FILE)
    aux = {r.key: r.value for r in records if isinstance(r, Aux)}
    assert aux == {b"redis-ver": b"7.0.15", b"redis-bits": b"64", b"ctime": b"1795238676",
                   b"used-mem": b"1142848", b"aof-base": b"0"}
    functions = [r.source for r in records if isinstance(r, Function)]
    assert functions == [b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)"]
    assert [r.index for r in records if isinstance(r, SelectDb)] == [0, 1]
    keys = {(r.db, r.key): r for r in records if isinstance(r, KeyRecord)}
    assert len(keys) == 10
    assert keys[(0, b"int")].value == b"12345"
    assert keys[(0, b"lzf")].value == b"a" * 30
    assert keys[(0, b"str")].expire_ms == 4102444800000
    assert keys[(0, b"hash")].expire_ms == 4102444800123
    assert list(keys[(0, b"list")].value.items) == [b"a", b"b", b"1"]
    assert keys[(1, b"db1key")].value == b"v"


def test_damaged_files_are_refused_with_redis_reasons() -> None:
    with pytest.raises(RdbError, match="Wrong signature"):
        RdbParser(b"RADIS0010" + REDIS_70_FILE[9:], DEFAULT_OPTIONS)
    with pytest.raises(RdbError, match="Can't handle RDB format version 13"):
        RdbParser(b"REDIS0013" + REDIS_70_FILE[9:], DEFAULT_OPTIONS)
    for cut in (20, 200, len(REDIS_70_FILE) - 3):
        with pytest.raises(RdbError) as err:
            list(RdbParser(REDIS_70_FILE[:cut], DEFAULT_OPTIONS).records())
        assert err.value.short_read, cut
    flipped = bytearray(REDIS_70_FILE)
    flipped[0x13A] ^= 0x01  # inside the value "hello"
    with pytest.raises(RdbError, match=r"Wrong RDB checksum expected: \(\w+\) but got \(9af489dd2ba6065c\)"):
        list(RdbParser(bytes(flipped), DEFAULT_OPTIONS).records())
    unchecked = RdbParser(bytes(flipped), DEFAULT_OPTIONS, verify_checksum=False)
    assert sum(isinstance(r, KeyRecord) for r in unchecked.records()) == 10
    module_aux = REDIS_70_FILE[:0x99] + b"\xf7\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    with pytest.raises(RdbError, match="AUX module data I can't load"):
        list(RdbParser(module_aux, DEFAULT_OPTIONS).records())


def test_writer_round_trip_and_exact_framing() -> None:
    data = {
        b"s": b"hello",
        b"n": b"12345",
        b"l": ListValue([b"a", b"b"], "listpack"),
        b"z": ZSetValue.from_pairs([(b"a", 1.0)]),
        b"h": HashValue({b"f": b"v"}, {}, "listpack"),
        b"t": SetValue([b"1", b"2"], "intset"),
    }
    expires = {b"s": 4102444800000}
    out = io.BytesIO()
    version = file_version_for([data], 10)
    writer = RdbWriter(out, version, DEFAULT_OPTIONS)
    writer.aux(b"redis-bits", b"64")
    writer.function(b"#!lua name=x\nredis.register_function('f', function() return 1 end)")
    count = write_databases(writer, [DatabaseSnapshot(0, key_table(data), expires),
                                     DatabaseSnapshot(2, key_table({}), {})], "", 0, 1)
    writer.finish()
    blob = out.getvalue()
    assert count == len(data)
    assert blob.startswith(b"REDIS0010\xfa\x0aredis-bits\xc0\x40\xf5")
    assert b"\xfe\x00\xfb\x06\x01" in blob and b"\xfe\x02" not in blob  # empty DBs are not written
    assert b"\xfc\x00\xd8\xc3\x2c\xbb\x03\x00\x00\x00\x01s\x05hello" in blob
    parser = RdbParser(blob, DEFAULT_OPTIONS)
    keys = {r.key: r for r in parser.records() if isinstance(r, KeyRecord)}
    assert keys[b"s"].expire_ms == 4102444800000 and keys[b"n"].value == b"12345"
    assert list(keys[b"l"].value.items) == [b"a", b"b"]
    # rdbchecksum no: eight zero bytes, and loaders skip the check.
    out = io.BytesIO()
    RdbWriter(out, 10, DEFAULT_OPTIONS, checksum=False).finish()
    assert out.getvalue() == b"REDIS0010\xff" + bytes(8)
    empty = RdbParser(out.getvalue(), DEFAULT_OPTIONS)
    assert list(empty.records()) == [] and empty.checksum_disabled


def test_function_records_need_a_registered_loader() -> None:
    from types import SimpleNamespace

    from dumpling.config import Config
    from dumpling.persistence.snapshots import Snapshots

    server = SimpleNamespace(config=Config(), cron_hooks=[], before_shutdown=[], command_gate=None)
    snapshots = Snapshots(server)  # type: ignore[arg-type]
    assert snapshots.function_loader is None
    with pytest.raises(RdbError, match="no function engine registered"):
        snapshots._function(Function(b"#!lua name=x\n"), False)
    seen: list[tuple[bytes, bool]] = []
    snapshots.function_loader = lambda source, replace: seen.append((source, replace))
    snapshots._function(Function(b"#!lua name=x\n"), True)
    assert seen == [(b"#!lua name=x\n", True)]


# ----------------------------------------------------------------------------- round trips


def test_save_restart_round_trip_every_type_ttl_and_db(tmp_path: Path) -> None:
    with dumpling(tmp_path) as first:
        c = client(first)
        populate(c)
        c.hset("fieldttl", mapping={"a": "1", "b": "2"})
        c.execute_command("HPEXPIREAT", "fieldttl", 4102444800000, "FIELDS", 1, "a")
        before = contents(c)
        dumps = ordered_dumps(c)
        assert c.save() is True
        assert info(first)["rdb_changes_since_last_save"] == "0"
        assert c.lastsave().timestamp() >= time.time() - 5
        saves = int(info(first)["rdb_saves"])
        assert saves == 1
        shutdown(first, "NOSAVE")
    assert (tmp_path / "dump.rdb").read_bytes().startswith(b"REDIS0012")  # field TTLs need RDB 12
    with dumpling(tmp_path) as second:
        c = client(second)
        assert contents(c) == before
        assert ordered_dumps(c) == dumps  # byte-identical payloads
        assert c.pttl("str") > 0 and c.execute_command("HPEXPIRETIME", "fieldttl", "FIELDS", 1, "a") == [4102444800000]
        fields = info(second)
        assert fields["rdb_last_load_keys_loaded"] == str(len(before))
        assert fields["loading"] == "0"
        assert "Done loading RDB, keys loaded: %d, keys expired: 0." % len(before) in second.log()


def test_dumpling_file_loads_into_redis_and_passes_redis_check_rdb(tmp_path: Path) -> None:
    require_redis()
    with dumpling(tmp_path, "--rdbcompression", "yes") as ours:
        c = client(ours)
        populate(c)
        expected = contents(c)
        c.save()
    path = tmp_path / "dump.rdb"
    assert path.read_bytes().startswith(b"REDIS0010")
    check = subprocess.run(["redis-check-rdb", str(path)], capture_output=True, text=True, timeout=30)
    assert "RDB looks OK" in check.stdout, check.stdout
    theirs = start_redis("--dir", str(tmp_path), "--dbfilename", "dump.rdb")
    try:
        assert contents(client(theirs)) == expected
    finally:
        theirs.stop()


def test_a_big_stream_saved_loads_into_redis(tmp_path: Path) -> None:
    """A stream of many radix nodes (tombstones, a trim, a group with a PEL) that SAVE writes
    through the C node loop: real Redis loads the same entries and groups, and DUMPs it with
    the bytes dumpling's DUMP gave."""
    require_redis()

    def pending(c: redis.Redis) -> list[tuple[bytes, bytes, int]]:  # (not the time since delivery)
        return [(p["message_id"], p["consumer"], p["times_delivered"]) for p in c.xpending_range("s", "g", "-", "+", 100)]

    with dumpling(tmp_path, "--rdbcompression", "yes") as ours:
        c = client(ours)
        pipe = c.pipeline(transaction=False)
        for i in range(6000):
            fields = {f"f{i % 3}": f"value-{i}"} if i % 5 else {"a": i, "b": "x" * (i % 70)}
            pipe.xadd("s", fields, id=f"{1000 + i // 4}-{i % 4}")
        pipe.execute()
        c.xdel("s", *[f"{1000 + i // 4}-{i % 4}" for i in range(7, 6000, 11)])
        c.xtrim("s", minid="1100-0")
        c.xgroup_create("s", "g", id="0")
        c.xreadgroup("g", "alice", {"s": ">"}, count=40)
        c.xreadgroup("g", "bob", {"s": ">"}, count=25)
        expected = (c.xrange("s"), c.xinfo_groups("s"), pending(c))
        dump = c.dump("s")
        c.save()
    theirs = start_redis("--dir", str(tmp_path), "--dbfilename", "dump.rdb")
    try:
        r = client(theirs)
        assert (r.xrange("s"), r.xinfo_groups("s"), pending(r)) == expected
        assert r.dump("s") == dump
    finally:
        theirs.stop()


def test_redis_file_loads_into_dumpling(tmp_path: Path) -> None:
    require_redis()
    theirs = start_redis("--dir", str(tmp_path))
    try:
        c = client(theirs)
        populate(c)
        c.set("gone", "x", px=400)  # expired by the time dumpling loads: dropped, counted
        expected = contents(c)
        del expected[(0, b"gone")]
        c.save()
    finally:
        theirs.stop()
    time.sleep(0.5)
    with dumpling(tmp_path) as ours:
        c = client(ours)
        assert contents(c) == expected
        assert info(ours)["rdb_last_load_keys_expired"] == "1"
        assert "Loading RDB produced by version 7.0" in ours.log()


def test_lru_idle_and_lfu_freq_travel_both_ways(tmp_path: Path) -> None:
    require_redis()
    lru = tmp_path / "lru"
    lru.mkdir()
    with dumpling(lru, "--maxmemory-policy", "allkeys-lru") as ours:
        c = client(ours)
        c.restore("cold", 0, c.dump("missing") or _payload_of(c, b"v"), idletime=5000)
        c.save()
    assert b"\xf8" in (lru / "dump.rdb").read_bytes()
    with dumpling(lru, "--maxmemory-policy", "allkeys-lru") as ours:
        assert 5000 <= client(ours).object("idletime", "cold") <= 5003
    theirs = start_redis("--dir", str(lru), "--maxmemory-policy", "allkeys-lru")
    try:
        assert 5000 <= client(theirs).object("idletime", "cold") <= 5003
    finally:
        theirs.stop()
    lfu = tmp_path / "lfu"
    lfu.mkdir()
    theirs = start_redis("--dir", str(lfu), "--maxmemory-policy", "allkeys-lfu")
    try:
        c = client(theirs)
        c.restore("hot", 0, _payload_of(c, b"v"), frequency=77)
        c.save()
    finally:
        theirs.stop()
    with dumpling(lfu, "--maxmemory-policy", "allkeys-lfu") as ours:
        assert client(ours).object("freq", "hot") == 77


def _payload_of(c: redis.Redis, value: bytes) -> bytes:
    c.set("__tmp", value)
    payload = c.dump("__tmp")
    c.delete("__tmp")
    return payload


# ----------------------------------------------------------------------------- BGSAVE


def test_bgsave_snapshot_is_point_in_time_while_writes_continue(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--rdb-key-save-delay", "10000") as server:  # 400 keys: 4 s of saving
        c = client(server)
        c.mset({f"k{i}": "old" for i in range(400)})
        with pytest.raises(redis.ResponseError, match="^syntax error$"):
            c.execute_command("BGSAVE", "FOO")
        assert raw_call(server, "BGSAVE") == b"+Background saving started\r\n"
        fields = info(server)
        assert fields["rdb_bgsave_in_progress"] == "1"
        assert fields["rdb_current_bgsave_time_sec"] in ("0", "1")
        assert fields["rdb_last_bgsave_time_sec"] == "-1"
        with pytest.raises(redis.ResponseError, match="^Background save already in progress$"):
            c.execute_command("BGSAVE")
        with pytest.raises(redis.ResponseError, match="^Background save already in progress$"):
            c.execute_command("SAVE")
        for i in range(400):  # the server keeps serving while the child writes (still writing after)
            c.set(f"k{i}", "new")
        c.set("late", "1")
        assert info(server)["rdb_bgsave_in_progress"] == "1"
        wait_for(lambda: info(server)["rdb_bgsave_in_progress"] == "0", timeout=30)
        fields = info(server)
        assert fields["rdb_last_bgsave_status"] == "ok"
        assert fields["rdb_changes_since_last_save"] == "401"  # writes made during the save stay dirty
        assert int(fields["rdb_last_bgsave_time_sec"]) >= 1
        assert int(fields["rdb_last_cow_size"]) > 0
        assert fields["rdb_saves"] == "1"
        log = server.log()
        assert "Background saving started by pid" in log and "Background saving terminated with success" in log
        shutdown(server, "NOSAVE")
    assert not list(tmp_path.glob("temp-*.rdb"))
    with dumpling(tmp_path) as server:
        c = client(server)
        assert c.dbsize() == 400 and c.get("k399") == b"old" and c.get("late") is None


def test_save_points_run_from_the_cron_and_flushall_saves(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--save", "1 2") as server:
        c = client(server)
        assert c.config_get("save") == {"save": "1 2"}
        c.set("a", 1)
        time.sleep(1.3)
        assert info(server)["rdb_saves"] == "0"  # one change: below the save point
        c.set("b", 2)
        wait_for(lambda: info(server)["rdb_saves"] == "1" and info(server)["rdb_bgsave_in_progress"] == "0")
        assert "2 changes in 1 seconds. Saving..." in server.log()
        c.flushall()
        assert info(server)["rdb_changes_since_last_save"] == "0"
        assert (tmp_path / "dump.rdb").stat().st_size < 120  # the empty dataset, saved by FLUSHALL
        with pytest.raises(redis.ResponseError, match="Invalid save parameters"):
            c.config_set("save", "100")
        c.config_set("save", "")
        assert c.config_get("save") == {"save": ""}


# ----------------------------------------------------------------------------- MISCONF


def _fail_bgsave(c: redis.Redis, server: ServerProcess, directory: Path) -> None:
    shutil.rmtree(directory)
    assert raw_call(server, "BGSAVE") == b"+Background saving started\r\n"
    wait_for(lambda: info(server)["rdb_bgsave_in_progress"] == "0")


def test_misconf_after_failed_bgsave_matches_redis(tmp_path: Path) -> None:
    require_redis()
    replies = []
    for name, start in (("dumpling", start_dumpling), ("redis", start_redis)):
        directory = tmp_path / name
        directory.mkdir()
        server = start("--dir", str(directory), "--save", "3600 1")
        try:
            c = client(server)
            c.set("k", "v")
            _fail_bgsave(c, server, directory)
            assert info(server)["rdb_last_bgsave_status"] == "err"
            with server.raw() as conn:
                got = [conn.call("SET", "k", "w"), conn.call("PING"), conn.call("GET", "k"),
                       conn.call("MULTI"), conn.call("INCR", "n"), conn.call("EXEC")]
                conn.call("CONFIG", "SET", "stop-writes-on-bgsave-error", "no")
                got.append(conn.call("SET", "k", "w"))
                conn.call("CONFIG", "SET", "stop-writes-on-bgsave-error", "yes")
                got.append(conn.call("SET", "k", "w"))
                got.append(conn.call("SAVE"))  # a failed SAVE: bare -ERR, no change of status
                got.append(conn.call("SET", "k", "w"))
                if name == "dumpling":  # (Redis chdir()s into dir: a re-created one is not its cwd)
                    directory.mkdir()
                    assert conn.call("SAVE") == b"+OK\r\n"  # any successful save lifts MISCONF
                    assert conn.call("SET", "k", "x") == b"+OK\r\n"
            replies.append(got)
            shutdown(server, "NOSAVE")  # (SIGTERM would try to save into the missing dir and stay up)
        finally:
            server.stop()
    ours, theirs = replies
    assert ours == theirs
    assert ours[0].startswith(b"-MISCONF Redis is configured to save RDB snapshots")
    assert ours[-2] == b"-ERR\r\n"


# ----------------------------------------------------------------------------- SHUTDOWN and signals


def test_shutdown_variants(tmp_path: Path) -> None:
    # No save points: SHUTDOWN does not save, SHUTDOWN SAVE does.
    with dumpling(tmp_path) as server:
        client(server).set("a", 1)
        with server.raw() as conn:
            assert conn.call("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
            assert conn.call("SHUTDOWN", "SAVE", "NOSAVE") == b"-ERR syntax error\r\n"
            conn.send(b"*1\r\n$8\r\nSHUTDOWN\r\n")
            assert conn.read_all(wait=2) == b""
        assert server.proc.wait(10) == 0
    assert not (tmp_path / "dump.rdb").exists()
    with dumpling(tmp_path) as server:
        client(server).set("a", 1)
        with server.raw() as conn:
            conn.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n")
            assert conn.read_all(wait=2) == b""
        assert server.proc.wait(10) == 0
        assert "Saving the final RDB snapshot before exiting." in server.log()
    # Save points, NOSAVE: the file keeps the old dataset.
    with dumpling(tmp_path, "--save", "3600 1") as server:
        c = client(server)
        assert c.get("a") == b"1"
        c.set("a", 2)
        with server.raw() as conn:
            conn.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            conn.read_all(wait=2)
        assert server.proc.wait(10) == 0
    # A save that fails keeps the server up, unless FORCE.
    gone = tmp_path / "gone"
    gone.mkdir()
    shutil.copy(tmp_path / "dump.rdb", gone / "dump.rdb")
    with dumpling(gone, "--save", "3600 1") as server:
        c = client(server)
        assert c.get("a") == b"1"
        shutil.rmtree(gone)
        with server.raw() as conn:
            assert conn.call("SHUTDOWN") == b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
            assert conn.call("PING") == b"+PONG\r\n"
            conn.send(b"*3\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n$5\r\nFORCE\r\n")
            conn.read_all(wait=2)
        assert server.proc.wait(10) == 0
        log = server.log()
        assert "Error trying to save the DB, can't exit." in log
        assert "Error trying to save the DB. Exit anyway." in log


def test_sigterm_saves_when_save_points_exist(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--save", "3600 1") as server:
        client(server).set("kept", "yes")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0
        log = server.log()
        assert "Received SIGTERM scheduling shutdown..." in log and "DB saved on disk" in log
    with dumpling(tmp_path) as server:
        assert client(server).get("kept") == b"yes"


# ----------------------------------------------------------------------------- loading


def test_loading_replies_while_a_big_file_loads(tmp_path: Path) -> None:
    with dumpling(tmp_path) as server:
        c = client(server)
        c.execute_command("DEBUG", "POPULATE", 1500)
        c.save()
    server = start_dumpling("--dir", str(tmp_path), "--key-load-delay", "1000")  # ~1.5 s of loading
    try:
        with server.raw() as conn:
            reply = conn.call("GET", "key:1")
            text = conn.call("INFO", "persistence")
        if reply.startswith(b"-LOADING"):
            assert reply == b"-LOADING Redis is loading the dataset in memory\r\n"
            assert b"loading:1\r\n" in text and b"loading_total_bytes:" in text
        else:  # the machine was fast enough to finish first; still a complete dataset
            assert reply == b"$7\r\nvalue:1\r\n"
        wait_for(lambda: info(server)["loading"] == "0", timeout=20)
        assert client(server).dbsize() == 1500
    finally:
        server.stop()


@pytest.mark.parametrize("damage", ["truncated", "checksum", "signature", "version"])
def test_damaged_file_at_startup_exits_with_code_1(tmp_path: Path, damage: str) -> None:
    with dumpling(tmp_path) as server:
        client(server).mset({f"k{i}": f"value-{i}" for i in range(50)})
        client(server).save()
    path = tmp_path / "dump.rdb"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
        expected = "Short read or OOM loading DB. Unrecoverable error, aborting now."
    elif damage == "checksum":
        # a letter inside the last value written: the file still parses (where the
        # last key's length byte sits depends on the table's order, so find the text)
        data[data.rindex(b"value-")] ^= 0x20
        expected = "Wrong RDB checksum expected"
    elif damage == "signature":
        data[0:5] = b"RADIS"
        expected = "Wrong signature trying to load DB from file"
    else:
        data[5:9] = b"0099"
        expected = "Can't handle RDB format version 99"
    path.write_bytes(bytes(data))
    result = run_dumpling(tmp_path)
    assert result.returncode == 1
    assert expected in result.stdout
    assert "Ready to accept connections" not in result.stdout


def test_debug_reload_matches_redis(tmp_path: Path) -> None:
    require_redis()
    replies = []
    for name, start in (("dumpling", start_dumpling), ("redis", start_redis)):
        directory = tmp_path / name
        directory.mkdir()
        server = start("--dir", str(directory))
        try:
            with server.raw() as conn:
                got = [conn.call("SET", "a", "1"), conn.call("RPUSH", "l", "x", "y"), conn.call("DEBUG", "RELOAD"),
                       conn.call("GET", "a"), conn.call("LRANGE", "l", "0", "-1"), conn.call("SET", "b", "2"),
                       conn.call("DEBUG", "RELOAD", "NOSAVE"), conn.call("EXISTS", "b"), conn.call("SET", "a", "9"),
                       conn.call("DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"), conn.call("GET", "a"),
                       conn.call("DEBUG", "RELOAD", "BOGUS"), conn.call("MULTI"), conn.call("SAVE"),
                       conn.call("EXEC"), conn.call("BGSAVE", "SCHEDULE", "X")]
            replies.append(got)
        finally:
            server.stop()
    assert replies[0] == replies[1]


def test_info_persistence_fields_match_redis(tmp_path: Path) -> None:
    require_redis()
    with dumpling(tmp_path) as ours:
        theirs = start_redis()
        try:
            assert list(info(ours)) == list(info(theirs))
        finally:
            theirs.stop()


@pytest.mark.parametrize("policy", ["", "lru", "lfu"])
@pytest.mark.parametrize("compress", [True, False])
def test_c_string_loop_matches_the_python_writer(policy: str, compress: bool) -> None:
    """``_snapshot.write_strings`` (keeps a BGSAVE child's copy-on-write small) writes the
    bytes ``RdbWriter.key`` writes, whatever the keys, values, TTLs and LRU/LFU fields."""
    import random
    from dataclasses import replace

    from dumpling.persistence import rdb

    if rdb.native is None:
        pytest.skip("C accelerator not built")
    rng = random.Random(f"{policy}{compress}")
    texts = [b"", b"0", b"-0", b"007", b"-1", b"127", b"128", b"-129", b"32767", b"-32768", b"65536",
             b"2147483647", b"2147483648", b"-2147483648", b"-2147483649", b"12345678901", b"1a", b"+1", b" 1",
             b"x" * 20, b"y" * 21, b"z" * 63, b"w" * 64, b"v" * 16383, b"u" * 16384, b"abc" * 30]
    data: dict[bytes, object] = {}
    expires: dict[bytes, int] = {}
    meta: dict[bytes, int] = {}
    for i in range(3000):
        key = rng.choice([b"k%d" % i, b"%d" % i, b"key-" + b"q" * rng.randrange(30) + b"%d" % i])
        roll = rng.random()
        value: object = rng.choice(texts) if roll < 0.6 else b"%d" % rng.randrange(-2**40, 2**40)
        if roll > 0.9:
            value = bytearray(rng.choice(texts))
        if roll > 0.97:
            value = ListValue([b"a", b"%d" % i], "listpack")
        data[key] = value
        if rng.random() < 0.3:
            expires[key] = rng.randrange(-2**40, 2**45)
        if rng.random() < 0.8:
            meta[key] = rng.randrange(0, 1 << 24)
    options = replace(DEFAULT_OPTIONS, rdbcompression=compress)
    outputs = []
    for native in (True, False):
        rdb.use_native = native
        try:
            out = io.BytesIO()
            writer = RdbWriter(out, 10, options)
            write_databases(writer, [DatabaseSnapshot(0, key_table(data, meta), expires)], policy, 1_800_000_000_123,
                            1)
            writer.finish()
            outputs.append(out.getvalue())
        finally:
            rdb.use_native = rdb.native is not None
    assert outputs[0] == outputs[1]
    assert len(list(RdbParser(outputs[0], options).records())) == len(data) + 1


def test_c_string_loader_matches_the_python_loader(tmp_path: Path) -> None:
    """``_snapshot.load_strings`` (plain string records straight into the dicts) leaves the
    keyspace and the counters exactly as the record-by-record Python path does."""
    import random
    from types import SimpleNamespace

    from dumpling.config import Config
    from dumpling.keyspace import Keyspace
    from dumpling.persistence import rdb
    from dumpling.persistence.snapshots import Snapshots

    if rdb.native is None:
        pytest.skip("C accelerator not built")
    rng = random.Random(7)
    now = int(time.time() * 1000)
    databases = []
    for index in (0, 5):
        data: dict[bytes, object] = {}
        expires: dict[bytes, int] = {}
        for i in range(5000):
            key = b"k%d-%d" % (index, i) if rng.random() < 0.9 else b"%d" % (i * 7919)
            roll = rng.random()
            data[key] = (b"%d" % rng.randrange(-2**33, 2**33) if roll < 0.3 else b"v" * rng.randrange(0, 300)
                         if roll < 0.95 else ListValue([b"x"], "listpack"))
            if rng.random() < 0.2:
                expires[key] = now + rng.choice([-60_000, 3_600_000])
        databases.append(DatabaseSnapshot(index, key_table(data), expires))
    with open(tmp_path / "dump.rdb", "wb") as f:
        writer = RdbWriter(f, 10, DEFAULT_OPTIONS)
        write_databases(writer, databases, "", now, 1)
        writer.finish()
    results = []
    for native in (True, False):
        rdb.use_native = native
        try:
            config = Config()
            config.load_argv(["--dir", str(tmp_path)])
            server = SimpleNamespace(config=config, keyspace=Keyspace(config), cron_hooks=[], before_shutdown=[],
                                     command_gate=None, log=lambda level, text: None, skip_checksum=False)
            snapshots = Snapshots(server)  # type: ignore[arg-type]
            assert snapshots.load()
            dbs = server.keyspace.dbs
            results.append(([(len(db.data), {k: v for k, v in db.data.items() if isinstance(v, bytes)}, dict(db.expires),
                              {k: db.field(k) for k in db.data}) for db in dbs],
                            snapshots.last_load_keys_loaded, snapshots.last_load_keys_expired))
        finally:
            rdb.use_native = rdb.native is not None
    (c_dbs, *c_counts), (py_dbs, *py_counts) = results
    assert c_counts == py_counts
    assert c_counts[1] > 0 and c_counts[0] > 8000
    for (c_len, c_strings, c_expires, c_fields), (py_len, py_strings, py_expires, py_fields) in zip(c_dbs, py_dbs, strict=True):
        # Compared piece by piece, never as one structure: pytest's diff of two 5,000-key dicts runs for minutes.
        assert c_len == py_len
        assert c_strings.keys() == py_strings.keys()
        assert [k for k in c_strings if c_strings[k] != py_strings[k]] == []
        assert [k for k in c_expires if c_expires[k] != py_expires.get(k)] == [] and len(c_expires) == len(py_expires)
        # A loaded key's LRU field is the load's LRU clock (1 s ticks): the second load may read a later tick.
        assert c_fields.keys() == py_fields.keys()
        assert [k for k in c_fields if not 0 <= py_fields[k] - c_fields[k] <= 2] == []


def _file(version: bytes, aux: list[tuple[bytes, bytes]], db_section: bytes) -> bytes:
    """An RDB file around real Redis/Valkey bytes (header, AUX, one DB section, EOF, CRC)."""
    from dumpling.payload.crc64 import crc64
    from dumpling.payload.primitives import append_string

    out = bytearray(version)
    for key, value in aux:
        out.append(0xFA)
        append_string(out, key)
        append_string(out, value)
    out += db_section + b"\xff"
    return bytes(out) + crc64(bytes(out)).to_bytes(8, "little")


def _load_in_process(tmp_path: Path, blob: bytes, *args: str) -> tuple[object, list[str]]:
    from types import SimpleNamespace

    from dumpling.config import Config
    from dumpling.keyspace import Keyspace
    from dumpling.persistence.snapshots import Snapshots

    (tmp_path / "dump.rdb").write_bytes(blob)
    config = Config()
    config.load_argv(["--dir", str(tmp_path), *args])
    logged: list[str] = []
    server = SimpleNamespace(config=config, keyspace=Keyspace(config), cron_hooks=[], before_shutdown=[],
                             command_gate=None, log=lambda level, text: logged.append(text), skip_checksum=False)
    assert Snapshots(server).load(), logged  # type: ignore[arg-type]
    return server.keyspace, logged


@pytest.mark.parametrize("version", [b"REDIS0009", b"REDIS0010", b"REDIS0011", b"REDIS0012"])
def test_files_of_other_redis_and_valkey_versions_load(tmp_path: Path, version: bytes) -> None:
    """Bodies written by Redis 7.0/7.2/7.4 (the DUMP vectors), 7.2's listpack set, 7.4's
    cluster SLOT_INFO opcode and Valkey 8's ``valkey-ver`` / in-section ``slot-info`` AUX."""
    from tests.test_payload_vectors import VECTORS, h

    section = bytearray(b"\xfe\x00\xfb" + bytes([len(VECTORS) + 1, 1]))
    if version == b"REDIS0012":
        section += b"\xf4\x53\xc5\x02\x00"  # SLOT_INFO slot 5061: 2 keys, 0 expires
    if version == b"REDIS0011":
        section += b"\xfa\x09slot-info\x085061,2,0"  # Valkey 8 cluster mode
    for name, (_, body, _) in VECTORS.items():
        raw = h(body)
        section += raw[:1] + bytes([len(name)]) + name.encode() + raw[1:]
    section += b"\xfc\x00\xd8\xc3\x2c\xbb\x03\x00\x00"  # 2100-01-01
    section += b"\x14\x01s\x0d\x0d\x00\x00\x00\x02\x00\x81a\x02\x81b\x02\xff"  # 7.2: SET_LISTPACK
    if version == b"REDIS0009":  # 5.0..6.2 have no listpack sets: the same set as an intset-free SET
        section = section.replace(b"\x14\x01s\x0d\x0d\x00\x00\x00\x02\x00\x81a\x02\x81b\x02\xff",
                                  b"\x02\x01s\x02\x01a\x01b")
    ver = b"valkey-ver" if version == b"REDIS0011" else b"redis-ver"
    blob = _file(version, [(ver, b"8.0.1" if version == b"REDIS0011" else b"7.x"), (b"redis-bits", b"64"),
                           (b"aof-base", b"0")], bytes(section))
    keyspace, logged = _load_in_process(tmp_path, blob)
    db = keyspace.dbs[0]  # type: ignore[attr-defined]
    assert len(db.data) == len(VECTORS) + 1
    for name, (value, _, _) in VECTORS.items():
        got = db.data[name.encode()]
        assert got == value if isinstance(value, bytes) else type(got) is type(value)
    assert sorted(db.data[b"s"]) == [b"a", b"b"] and db.expires == {b"s": 4102444800000}
    assert any("Done loading RDB, keys loaded: 14" in line for line in logged)


def test_sigkill_mid_bgsave_leaves_the_last_good_file(tmp_path: Path) -> None:
    """Crash safety with RDB only: killing the server (and its child) during a BGSAVE
    leaves the last completed file, which loads."""
    with dumpling(tmp_path, "--rdb-key-save-delay", "20000") as server:
        c = client(server)
        c.mset({f"k{i}": "first" for i in range(100)})
        c.config_set("rdb-key-save-delay", 0)
        c.save()
        good = (tmp_path / "dump.rdb").read_bytes()
        c.mset({f"k{i}": "second" for i in range(100)})
        c.config_set("rdb-key-save-delay", 20000)  # 100 keys: 2 s of saving
        assert raw_call(server, "BGSAVE") == b"+Background saving started\r\n"
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
        wait_for(lambda: bool(children.read_text().split()) and bool(list(tmp_path.glob("temp-*.rdb"))))
        child = int(children.read_text().split()[0])  # the child is writing
        os.kill(child, signal.SIGKILL)
        server.proc.kill()
        server.proc.wait(10)
    assert (tmp_path / "dump.rdb").read_bytes() == good
    with dumpling(tmp_path) as server:
        assert client(server).get("k7") == b"first" and client(server).dbsize() == 100


def test_second_sigint_during_the_final_save_exits_and_removes_the_temp_file(tmp_path: Path) -> None:
    """SIGINT starts a shutdown whose final save takes 2 s (rdb-key-save-delay); a second SIGINT
    exits at once, removing temp-<pid>.rdb, and the old dump stays as it was (unit/shutdown)."""
    require_redis()
    outcomes = []
    for name, start in (("dumpling", start_dumpling), ("redis", start_redis)):
        directory = tmp_path / name
        directory.mkdir()
        server = start("--dir", str(directory), "--save", "900 1")
        try:
            c = redis.Redis(port=server.port)
            c.mset({str(i): i for i in range(20)})
            c.config_set("rdb-key-save-delay", 100_000)
            c.close()
            pid = server.proc.pid
            temp = directory / f"temp-{pid}.rdb"
            os.kill(pid, signal.SIGINT)
            wait_for(temp.exists)
            os.kill(pid, signal.SIGINT)
            code = server.proc.wait(5)
            outcomes.append((code, temp.exists(), (directory / "dump.rdb").exists(),
                             "You insist... exiting now." in server.log()))
        finally:
            server.stop()
    assert outcomes[0] == outcomes[1] == (1, False, False, True)
