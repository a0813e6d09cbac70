"""AOF bases as commands (``aof-use-rdb-preamble no``) and ``#TS`` annotations
(``aof-timestamp-enabled yes``): the files Redis 7.4's rewrite writes, checked by
redis-check-aof and loaded by redis-server 7.0 both ways."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import redis

from dumpling.datatypes.hashes import HashValue
from dumpling.datatypes.lists import ListValue
from dumpling.datatypes.streams import StreamValue
from dumpling.persistence.aofrewrite import key_commands, write_command_base
from tests.servers import require_redis, start_redis
from tests.test_persistence_aof import client
from tests.test_persistence_rdb import contents, dumpling, info, populate, shutdown, wait_for

LIBRARY = "#!lua name=rewritelib\nredis.register_function('f', function() return 1 end)"


def more_keys(c: redis.Redis) -> None:
    """What a rewrite must carry beyond populate(): a list longer than 64 items (two
    RPUSHes), a stream with deleted entries, an empty stream with a group, a consumer
    with nothing pending, an integer-looking member, a function library."""
    c.rpush("long", *range(150))
    c.xadd("trimmed", {"a": "1"}, id="5-1")
    c.xadd("trimmed", {"a": "2"}, id="6-1")
    c.xdel("trimmed", "6-1")
    c.xadd("empty", {"x": "y"}, id="1-1")
    c.xdel("empty", "1-1")
    c.xgroup_create("empty", "g", id="0")
    c.xgroup_createconsumer("stream", "grp", "idle-bob")
    c.zadd("zints", {"1": 1e300, "2": -0.5})
    c.function_load(LIBRARY)


def check_aof(directory: Path) -> None:
    check = subprocess.run(["redis-check-aof", str(directory / "appendonly.aof.manifest")], capture_output=True,
                           text=True, timeout=30)
    assert "is valid" in check.stdout, check.stdout + check.stderr


def pending(c: redis.Redis) -> object:
    return (c.xpending_range("stream", "grp", "-", "+", 10), c.xinfo_consumers("stream", "grp"),
            c.xinfo_stream("trimmed")["max-deleted-entry-id"], c.function_list())


def without_times(value: object) -> object:
    """XPENDING/XINFO CONSUMERS minus the idle/inactive times, which a reload resets."""
    if isinstance(value, (list, tuple)):
        return [without_times(v) for v in value]
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items()
                if k not in ("time_since_delivered", "idle", "inactive")}
    return value


def test_key_commands_follow_redis_rewrite() -> None:
    long_list = ListValue([b"%d" % i for i in range(130)])
    lines = list(key_commands(b"l", long_list))
    assert [line.split(b"\r\n")[0] for line in lines] == [b"*66", b"*66", b"*4"]  # 64 + 64 + 2 items
    hashed = HashValue({b"a": b"1", b"b": b"2"}, field_expires={b"b": 4102444800000})
    assert b"".join(key_commands(b"h", hashed)) == (
        b"*4\r\n$5\r\nHMSET\r\n$1\r\nh\r\n$1\r\na\r\n$1\r\n1\r\n"
        b"*4\r\n$5\r\nHMSET\r\n$1\r\nh\r\n$1\r\nb\r\n$1\r\n2\r\n"
        b"*6\r\n$10\r\nHPEXPIREAT\r\n$1\r\nh\r\n$13\r\n4102444800000\r\n$6\r\nFIELDS\r\n$1\r\n1\r\n$1\r\nb\r\n")
    assert b"".join(key_commands(b"s", StreamValue())) == (
        b"*7\r\n$4\r\nXADD\r\n$1\r\ns\r\n$6\r\nMAXLEN\r\n$1\r\n0\r\n$3\r\n0-1\r\n$1\r\nx\r\n$1\r\ny\r\n"
        b"*7\r\n$6\r\nXSETID\r\n$1\r\ns\r\n$3\r\n0-0\r\n$12\r\nENTRIESADDED\r\n$1\r\n0\r\n$12\r\nMAXDELETEDID\r\n"
        b"$3\r\n0-0\r\n")

    class Sink:
        data = b""

        def write(self, chunk: bytes) -> None:
            Sink.data += bytes(chunk)

    write_command_base(Sink(), [(0, {}, {}), (3, {b"k": b"v"}, {b"k": 5})], [b"lib"], timestamp=1700000000)  # type: ignore[arg-type]
    assert Sink.data == (b"#TS:1700000000\r\n*3\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n$3\r\nlib\r\n"
                         b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                         b"*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nk\r\n$1\r\n5\r\n")


def test_command_base_round_trip_and_redis_loads_it(tmp_path: Path) -> None:
    require_redis()
    with dumpling(tmp_path, "--appendonly", "yes", "--aof-use-rdb-preamble", "no") as server:
        c = client(server)
        populate(c)
        more_keys(c)
        c.execute_command("HSET", "fieldttl", "a", "1", "b", "2")
        c.execute_command("HPEXPIREAT", "fieldttl", 4102444800000, "FIELDS", 1, "b")
        assert c.bgrewriteaof()
        wait_for(lambda: info(server)["aof_rewrite_in_progress"] == "0" and info(server)["aof_rewrites"] == "1")
        assert info(server)["aof_last_bgrewrite_status"] == "ok"
        c.rpush("long", "after")  # in the new incr file
        expected, extra = contents(c), without_times(pending(c))
        assert c.execute_command("HPEXPIRETIME", "fieldttl", "FIELDS", 1, "b") == [4102444800000]
        shutdown(server, "NOSAVE")
    directory = tmp_path / "appendonlydir"
    assert (directory / "appendonly.aof.manifest").read_text() == (
        "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n")
    base = (directory / "appendonly.aof.2.base.aof").read_bytes()
    assert base.startswith(b"*3\r\n$8\r\nFUNCTION\r\n$4\r\nLOAD\r\n")
    assert b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n" in base and b"REDIS" not in base[:5]
    assert b"$9\r\nPEXPIREAT\r\n$3\r\nstr\r\n$13\r\n4102444800123\r\n" in base
    assert b"$6\r\nXCLAIM\r\n$6\r\nstream\r\n$3\r\ngrp\r\n$5\r\nalice\r\n" in base
    assert b"$6\r\nXGROUP\r\n$14\r\nCREATECONSUMER\r\n$6\r\nstream\r\n$3\r\ngrp\r\n$8\r\nidle-bob\r\n" in base
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        c = client(server)
        assert contents(c) == expected and without_times(pending(c)) == extra
        assert c.execute_command("HPEXPIRETIME", "fieldttl", "FIELDS", 1, "b") == [4102444800000]
        c.delete("fieldttl")  # Redis 7.0 has no field TTLs (HPEXPIREAT)
        del expected[(0, b"fieldttl")]
        assert c.bgrewriteaof()
        wait_for(lambda: info(server)["aof_rewrite_in_progress"] == "0" and info(server)["aof_rewrites"] == "1")
        shutdown(server, "NOSAVE")
    check_aof(directory)
    theirs = start_redis("--dir", str(tmp_path), "--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    try:
        c = client(theirs)
        assert contents(c) == expected and without_times(pending(c)) == extra
    finally:
        theirs.stop()


def test_redis_command_base_loads_into_dumpling(tmp_path: Path) -> None:
    require_redis()
    theirs = start_redis("--dir", str(tmp_path), "--appendonly", "yes", "--aof-use-rdb-preamble", "no",
                         "--aof-timestamp-enabled", "yes")
    try:
        c = client(theirs)
        populate(c)
        more_keys(c)
        c.bgrewriteaof()
        wait_for(lambda: c.info("persistence")["aof_rewrite_in_progress"] == 0
                 and c.info("persistence")["aof_rewrites"] == 1)
        c.rpush("long", "after")
        expected, extra = contents(c), without_times(pending(c))
    finally:
        theirs.stop()
    assert (tmp_path / "appendonlydir" / "appendonly.aof.2.base.aof").read_bytes().startswith(b"#TS:")
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        c = client(server)
        assert contents(c) == expected and without_times(pending(c)) == extra


def test_config_set_appendonly_writes_a_command_base(tmp_path: Path) -> None:
    with dumpling(tmp_path, "--aof-use-rdb-preamble", "no") as server:
        c = client(server)
        c.mset({"a": 1, "b": 2})
        c.expire("a", 1000)
        c.config_set("appendonly", "yes")
        c.set("c", 3)
        expected = contents(c)
        wait_for(lambda: info(server)["aof_rewrite_in_progress"] == "0")  # (SHUTDOWN waits for the first base)
        shutdown(server, "NOSAVE")
    directory = tmp_path / "appendonlydir"
    assert (directory / "appendonly.aof.1.base.aof").read_bytes().startswith(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n")
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert contents(client(server)) == expected


def test_timestamp_annotations_as_redis_writes_them(tmp_path: Path) -> None:
    require_redis()
    with dumpling(tmp_path, "--appendonly", "yes", "--aof-timestamp-enabled", "yes", "--aof-use-rdb-preamble",
                  "no") as server:
        c = client(server)
        c.set("first", 1)
        c.set("same-second", 2)
        time.sleep(1.1)
        c.set("next-second", 3)
        with c.pipeline(transaction=True) as p:
            p.set("t1", 1).incr("t1").execute()
        directory = tmp_path / "appendonlydir"
        wait_for(lambda: b"t1" in (directory / "appendonly.aof.1.incr.aof").read_bytes())
        first = (directory / "appendonly.aof.1.incr.aof").read_bytes()
        assert c.bgrewriteaof()
        wait_for(lambda: info(server)["aof_rewrite_in_progress"] == "0" and info(server)["aof_rewrites"] == "1")
        c.set("after", 4)
        expected = contents(c)
        shutdown(server, "NOSAVE")
    base = (directory / "appendonly.aof.2.base.aof").read_bytes()
    assert re.match(rb"#TS:\d{10}\r\n\*2\r\n\$6\r\nSELECT\r\n", base)  # forced at the start of a rewrite
    stamps = re.findall(rb"#TS:(\d+)\r\n", first)
    assert len(stamps) >= 2 and [int(t) for t in stamps] == sorted({int(t) for t in stamps})  # once a second
    assert first.startswith(b"#TS:") and first.index(b"#TS:", 1) < first.index(b"next-second")
    assert first.index(b"#TS:", 1) > first.index(b"same-second")
    check_aof(directory)
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert contents(client(server)) == expected
        shutdown(server, "NOSAVE")
    theirs = start_redis("--dir", str(tmp_path), "--appendonly", "yes")
    try:
        assert contents(client(theirs)) == expected
    finally:
        theirs.stop()
