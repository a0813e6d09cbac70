"""Hash commands: the Redis 7.0 command set differentially against real Redis (RESP2 and
RESP3), and hash-field expiration (Redis 7.4) asserted explicitly against the replies 7.4
gives (the values were measured on 7.4.1 with the same command sequences)."""

from __future__ import annotations

import collections
import time

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.servers import Pair, parse_reply


def test_set_get_delete(pairs):
    pairs.run([
        ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "a", "3"), ("HGETALL", "h"), ("HSET", "h", "x"),
        ("HMSET", "h", "c", "3", "d"), ("HMSET", "h", "c", "3"), ("HSETNX", "h", "c", "4"), ("HSETNX", "h", "e", "5"),
        ("HGET", "h", "c"), ("HGET", "h", "zz"), ("HGET", "nokey", "a"), ("HMGET", "h", "a", "zz", "c"),
        ("HMGET", "nokey", "a", "b"), ("HLEN", "h"), ("HLEN", "nokey"), ("HSTRLEN", "h", "a"), ("HSTRLEN", "h", "zz"),
        ("HSTRLEN", "nokey", "a"), ("HEXISTS", "h", "a"), ("HEXISTS", "h", "zz"), ("HEXISTS", "nokey", "a"),
        ("HKEYS", "h"), ("HVALS", "h"), ("HKEYS", "nokey"), ("HVALS", "nokey"), ("HGETALL", "nokey"),
        ("HDEL", "h", "a", "zz", "a"), ("HDEL", "nokey", "a"), ("HGETALL", "h"), ("HDEL", "h", "b", "c", "e"),
        ("EXISTS", "h"), ("HSETNX", "new", "f", "v"), ("HGETALL", "new"), ("HSET", "h"), ("HGET", "h"),
        ("HSET", "bin", "\x00", "\xff\r\n", "", ""), ("HGETALL", "bin"), ("HSTRLEN", "bin", ""),
    ])


def test_incr(pairs):
    pairs.run([
        ("HINCRBY", "h", "n", "5"), ("HINCRBY", "h", "n", "-10"), ("HINCRBY", "h", "n", "x"), ("HSET", "h", "s", "abc"),
        ("HINCRBY", "h", "s", "1"), ("HSET", "h", "big", "9223372036854775807"), ("HINCRBY", "h", "big", "1"),
        ("HSET", "h", "small", "-9223372036854775808"), ("HINCRBY", "h", "small", "-1"), ("HINCRBY", "h", "small", "0"),
        ("HSET", "h", "sp", " 1"), ("HINCRBY", "h", "sp", "1"), ("HINCRBYFLOAT", "h", "f", "1.5"),
        ("HINCRBYFLOAT", "h", "f", "0.1"), ("HINCRBYFLOAT", "h", "f", "x"), ("HINCRBYFLOAT", "h", "s", "1"),
        ("HINCRBYFLOAT", "h", "f", "inf"), ("HINCRBYFLOAT", "h", "f", "3.0e3"), ("HINCRBYFLOAT", "h", "n", "0.25"),
        ("HINCRBYFLOAT", "h", "z", "-0"), ("HINCRBYFLOAT", "h", "hex", "0x10"), ("HINCRBYFLOAT", "h", "f", "-5e-17"),
        ("HINCRBYFLOAT", "h", "f", "10"), ("HGETALL", "h"), ("HINCRBYFLOAT", "h", "g", "1e308"),
        ("HINCRBYFLOAT", "h", "g", "1e308"), ("HGET", "h", "g"), ("HINCRBYFLOAT", "h", "e", "1e4932"),
        ("HINCRBYFLOAT", "h", "e", "1e4932"), ("HSTRLEN", "h", "e"), ("OBJECT", "ENCODING", "h"),
    ])


def test_encodings(pairs):
    pairs.run([
        ("HSET", "small", "a", "1"), ("OBJECT", "ENCODING", "small"),
        ("HSET", "wide", "a", "x" * 65), ("OBJECT", "ENCODING", "wide"),
        ("HSET", "longfield", "f" * 65, "1"), ("OBJECT", "ENCODING", "longfield"),
        ("HSET", "many", *[x for i in range(513) for x in (f"f{i}", str(i))]), ("OBJECT", "ENCODING", "many"),
        ("HSET", "grow", *[x for i in range(512) for x in (f"f{i}", str(i))]), ("OBJECT", "ENCODING", "grow"),
        ("HSET", "grow", "f512", "1"), ("OBJECT", "ENCODING", "grow"), ("HDEL", "grow", "f512", "f1"),
        ("OBJECT", "ENCODING", "grow"), ("HINCRBY", "small", "g" * 65, "1"), ("OBJECT", "ENCODING", "small"),
        ("HSET", "x", "a", "1"), ("HINCRBYFLOAT", "x", "a", "1e70"), ("OBJECT", "ENCODING", "x"),
    ])


def test_encoding_config(pairs):
    pairs.same("CONFIG", "SET", "hash-max-listpack-entries", "2")
    try:
        pairs.run([
            ("HSET", "h", "a", "1", "b", "2"), ("OBJECT", "ENCODING", "h"), ("HSET", "h", "c", "3"),
            ("OBJECT", "ENCODING", "h"), ("CONFIG", "SET", "hash-max-ziplist-value", "3"),
            ("CONFIG", "GET", "hash-max-listpack-value"), ("HSET", "k", "abc", "abc"), ("OBJECT", "ENCODING", "k"),
            ("HSET", "k", "abcd", "1"), ("OBJECT", "ENCODING", "k"),
        ])
    finally:
        pairs.same("CONFIG", "SET", "hash-max-listpack-entries", "512")
        pairs.same("CONFIG", "SET", "hash-max-listpack-value", "64")


def test_hrandfield_and_hscan(pairs):
    pairs.run([
        ("HRANDFIELD", "nokey"), ("HRANDFIELD", "nokey", "2"), ("HRANDFIELD", "nokey", "2", "WITHVALUES"),
        ("HSET", "h", "a", "1", "b", "2", "c", "3"), ("HRANDFIELD", "h", "0"), ("HRANDFIELD", "h", "100"),
        ("HRANDFIELD", "h", "3", "WITHVALUES"), ("HRANDFIELD", "h", "-0"), ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
        ("HRANDFIELD", "h", "1", "FOO"), ("HRANDFIELD", "h", "x"),
        ("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"), ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
        ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "MATCH", "[a-b]"), ("HSCAN", "h", "0", "COUNT", "0"),
        ("HSCAN", "nokey", "0"), ("HSCAN", "h", "x"), ("HSCAN", "h", "0", "MATCH"), ("HSCAN", "h", "0", "COUNT", "1"),
    ])


def _fields_of(reply: object) -> object:
    """A parsed HGETALL/HKEYS/HVALS reply with its order dropped (a RESP3 map's too)."""
    if isinstance(reply, dict):
        return sorted(reply.items())
    return sorted(reply)  # type: ignore[call-overload]


def test_hashtable_replies_written_by_the_table(pairs):
    """HGETALL/HKEYS/HVALS of a hashtable-encoded hash come from its table's own writer
    (KeyTable.reply): the same fields as Redis's in any order, alone, inside MULTI/EXEC and as a
    script's values; a field with a TTL is left out once it expired (the other path)."""
    fields = [x for i in range(700) for x in (b"f%d" % i, b"\x00\r\n%d" % i)] + [b"", b"", b"long", b"v" * 100]
    pairs.same("HSET", "big", *fields)
    pairs.same("OBJECT", "ENCODING", "big")
    for command in ("HGETALL", "HKEYS", "HVALS"):
        ours, theirs = (parse_reply(reply) for reply in pairs.both(command, "big"))
        assert _fields_of(ours) == _fields_of(theirs), command
        pairs.same("MULTI")
        pairs.same(command, "big")
        ours, theirs = (parse_reply(reply) for reply in pairs.both("EXEC"))
        assert len(ours) == len(theirs) == 1 and _fields_of(ours[0]) == _fields_of(theirs[0]), command
        script = f"return redis.call('{command}', KEYS[1])"
        ours, theirs = (parse_reply(reply) for reply in pairs.both("EVAL", script, "1", "big"))
        assert _fields_of(ours) == _fields_of(theirs), command
    ttl = pairs.ours.call("HPEXPIRE", "big", "1", "FIELDS", "1", "f0")  # (7.4: Redis 7.0 has no field TTLs)
    assert ttl == b"*1\r\n:1\r\n"
    time.sleep(0.01)
    got = parse_reply(pairs.ours.call("HKEYS", "big"))
    assert len(got) == 701 and b"f0" not in got


def test_hrandfield_rules_and_distribution(r):
    r.hset("h", mapping={f"f{i}": i for i in range(10)})
    r.hset("big", mapping={f"f{i}": i for i in range(1000)})
    for key, size in (("h", 10), ("big", 1000)):
        for count in (1, 4, size - 1):
            got = r.hrandfield(key, count)
            assert len(got) == count == len(set(got))
        assert len(r.hrandfield(key, size + 3)) == size
        assert len(r.hrandfield(key, -size * 2)) == size * 2
        pairs = r.hrandfield(key, 5, withvalues=True)
        assert len(pairs) == 10 and all(int(pairs[i + 1]) == int(pairs[i][1:]) for i in range(0, 10, 2))
    counts = collections.Counter(r.hrandfield("h", -20000))
    assert len(counts) == 10 and all(1500 < n < 2500 for n in counts.values()), counts
    r3 = redis.Redis(port=r.connection_pool.connection_kwargs["port"], protocol=3)
    try:
        nested = r3.hrandfield("h", -3, withvalues=True)
        assert len(nested) == 3 and all(len(p) == 2 for p in nested)
    finally:
        r3.close()


def test_hscan_large_hash_returns_every_field(r):
    r.hset("big", mapping={f"f{i}": i for i in range(3000)})
    seen = {}
    cursor = 0
    while True:
        cursor, batch = r.hscan("big", cursor, count=50)
        seen.update(batch)
        if cursor == 0:
            break
    assert len(seen) == 3000 and seen[b"f123"] == b"123"
    cursor, fields = r.hscan("big", 0, match="f299*", count=10000, no_values=True)
    assert sorted(fields) == sorted([b"f299"] + [b"f299%d" % i for i in range(10)])


def test_wrongtype(pairs):
    pairs.run([("SET", "str", "x")])
    for cmd in [
        ("HSET", "str", "a", "1"), ("HMSET", "str", "a", "1"), ("HSETNX", "str", "a", "1"), ("HGET", "str", "a"),
        ("HMGET", "str", "a"), ("HGETALL", "str"), ("HKEYS", "str"), ("HVALS", "str"), ("HLEN", "str"),
        ("HSTRLEN", "str", "a"), ("HEXISTS", "str", "a"), ("HDEL", "str", "a"), ("HINCRBY", "str", "a", "1"),
        ("HINCRBYFLOAT", "str", "a", "1"), ("HRANDFIELD", "str"), ("HRANDFIELD", "str", "2"), ("HSCAN", "str", "0"),
        ("HINCRBY", "str", "a", "x"),
    ]:
        pairs.same(*cmd)


def test_keyspace_events(pair, dumpling_server, redis_server):
    listeners = (dumpling_server.raw(), redis_server.raw())
    try:
        pair.same("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        for conn in listeners:
            conn.call("PSUBSCRIBE", "__key*")
        pair.run([
            ("HSET", "h", "a", "1", "b", "2"), ("HSETNX", "h", "c", "3"), ("HSETNX", "h", "c", "3"), ("HINCRBY", "h", "a", "1"),
            ("HINCRBYFLOAT", "h", "a", "1.5"), ("HDEL", "h", "a"), ("HDEL", "h", "zz"), ("HDEL", "h", "b", "c"),
            ("HMSET", "h2", "a", "1"), ("HGET", "nokey", "a"),
        ])
        ours, theirs = (conn.read_all(0.3) for conn in listeners)
        assert ours == theirs and b"hincrbyfloat" in ours
    finally:
        pair.same("CONFIG", "SET", "notify-keyspace-events", "")
        for conn in listeners:
            conn.close()


# ----------------------------------------------------------------------------- field expiration (7.4)


def call(r, *args):
    return r.execute_command(*args)


def test_hexpire_codes_and_errors(r):
    r.hset("h", mapping={"a": 1, "b": 2, "c": 3})
    assert call(r, "HEXPIRE", "h", 100, "FIELDS", 2, "a", "zz") == [1, -2]
    assert call(r, "HEXPIRE", "nokey", 100, "FIELDS", 2, "a", "b") == [-2, -2]
    assert call(r, "HEXPIRE", "h", 100, "NX", "FIELDS", 2, "a", "b") == [0, 1]
    assert call(r, "HEXPIRE", "h", 50, "GT", "FIELDS", 2, "a", "c") == [0, 0]
    assert call(r, "HEXPIRE", "h", 500, "GT", "FIELDS", 1, "a") == [1]
    assert call(r, "HEXPIRE", "h", 200, "LT", "FIELDS", 2, "a", "c") == [1, 1]
    assert call(r, "HEXPIRE", "h", 300, "XX", "FIELDS", 1, "c") == [1]
    assert call(r, "HEXPIRE", "h", 300, "xx", "fields", 1, "zz") == [-2]
    errors = {
        ("HEXPIRE", "h", -1, "FIELDS", 1, "a"): "invalid expire time, must be >= 0",
        ("HEXPIRE", "h", "x", "FIELDS", 1, "a"): "value is not an integer or out of range",
        ("HEXPIRE", "h", 100, "FIELD", 1, "a"): "Mandatory argument FIELDS is missing or not at the right position",
        ("HEXPIRE", "h", 100, "FOO", "FIELDS", 1, "a"): "Mandatory argument FIELDS is missing or not at the right position",
        ("HEXPIRE", "h", 100, "FIELDS", 0, "a"): "Parameter `numFields` should be greater than 0",
        ("HEXPIRE", "h", 100, "FIELDS", 2, "a"): "The `numfields` parameter must match the number of arguments",
        ("HEXPIRE", "h", 99999999999999, "FIELDS", 1, "a"): "invalid expire time in 'hexpire' command",
        ("HPEXPIRE", "h", 999999999999999999, "FIELDS", 1, "a"): "invalid expire time in 'hpexpire' command",
        ("HEXPIREAT", "h", 70368744177664, "FIELDS", 1, "a"): "invalid expire time in 'hexpireat' command",
        ("HTTL", "h", "FIELDS", 0): "wrong number of arguments",
        ("HTTL", "h", "FIELDS", 0, "a"): "Number of fields must be a positive integer",
        ("HTTL", "h", "FIELDS", 2, "a"): "The `numfields` parameter must match the number of arguments",
        ("HTTL", "h", "FOO", 1, "a"): "Mandatory argument FIELDS is missing or not at the right position",
        ("HPERSIST", "h", "FIELDS", "x", "a"): "Number of fields must be a positive integer",
    }
    for cmd, message in errors.items():
        with pytest.raises(redis.ResponseError, match=message.replace("(", r"\(")):
            call(r, *cmd)
    r.set("str", "x")
    for cmd in (("HEXPIRE", "str", 1, "FIELDS", 1, "a"), ("HTTL", "str", "FIELDS", 1, "a"),
                ("HPERSIST", "str", "FIELDS", 1, "a"), ("HEXPIRE", "str", -1, "FIELDS", 1, "a")):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call(r, *cmd)


def test_ttl_queries_and_persist(r):
    r.hset("h", mapping={"a": 1, "b": 2, "c": 3})
    now = time.time()
    call(r, "HEXPIREAT", "h", int(now) + 1000, "FIELDS", 1, "a")
    call(r, "HPEXPIRE", "h", 50_000, "FIELDS", 1, "b")
    ttl = call(r, "HTTL", "h", "FIELDS", 4, "a", "b", "c", "zz")
    assert 998 <= ttl[0] <= 1000 and 49 <= ttl[1] <= 50 and ttl[2:] == [-1, -2]
    pttl = call(r, "HPTTL", "h", "FIELDS", 2, "b", "c")
    assert 49_000 <= pttl[0] <= 50_000 and pttl[1] == -1
    at = call(r, "HEXPIRETIME", "h", "FIELDS", 2, "a", "c")
    assert at == [int(now) + 1000, -1]
    pat = call(r, "HPEXPIRETIME", "h", "FIELDS", 1, "b")[0]
    assert abs(pat - (now * 1000 + 50_000)) < 2000
    assert call(r, "HTTL", "nokey", "FIELDS", 2, "a", "b") == [-2, -2]
    assert call(r, "HPERSIST", "h", "FIELDS", 4, "a", "c", "zz", "a") == [1, -1, -2, -1]
    assert call(r, "HPERSIST", "nokey", "FIELDS", 1, "a") == [-2]
    assert call(r, "HTTL", "h", "FIELDS", 1, "a") == [-1]


def test_listpackex_encoding_and_order(r):
    """A listpack hash becomes listpackex on its first field TTL (even a failed one),
    fields with a TTL come first ordered by expiry, and an overwrite drops the TTL
    and moves the field to the end; HINCRBY keeps it (Redis 7.4)."""
    at = int(time.time() * 1000) + 1_000_000
    r.hset("h", mapping={"a": 1, "b": 2, "c": 3})
    assert r.object("encoding", "h") == b"listpack"
    call(r, "HEXPIRE", "h", 100, "XX", "FIELDS", 1, "a")  # condition not met, still converts
    assert r.object("encoding", "h") == b"listpackex"
    call(r, "HPEXPIREAT", "h", at, "FIELDS", 1, "c")
    call(r, "HPEXPIREAT", "h", at - 500_000, "FIELDS", 1, "b")
    assert r.hkeys("h") == [b"b", b"c", b"a"]
    r.hset("h", "b", 9)
    assert r.hkeys("h") == [b"c", b"a", b"b"] and call(r, "HTTL", "h", "FIELDS", 1, "b") == [-1]
    r.hincrby("h", "c", 1)
    assert r.hkeys("h") == [b"c", b"a", b"b"] and call(r, "HTTL", "h", "FIELDS", 1, "c")[0] > 0
    call(r, "HPEXPIREAT", "h", at, "FIELDS", 1, "a")  # same expiry as c: goes before it
    assert r.hkeys("h") == [b"a", b"c", b"b"]
    r.hset("h", "z", 0)
    assert r.hkeys("h") == [b"a", b"c", b"b", b"z"]
    call(r, "HPERSIST", "h", "FIELDS", 1, "a")
    assert r.hkeys("h") == [b"c", b"b", b"z", b"a"]
    call(r, "HPERSIST", "h", "FIELDS", 1, "c")
    assert r.object("encoding", "h") == b"listpackex"  # stays, even without TTLs
    r.hset("h", "big", "x" * 100)
    assert r.object("encoding", "h") == b"hashtable"
    r.hset("t", mapping={f"f{i}": i for i in range(600)})
    call(r, "HEXPIRE", "t", 100, "FIELDS", 1, "f1")
    assert r.object("encoding", "t") == b"hashtable"
    assert 0 < call(r, "HTTL", "t", "FIELDS", 1, "f1")[0] <= 100


def test_past_expiry_deletes_fields_and_key(r):
    r.hset("h", mapping={"a": 1, "b": 2})
    assert call(r, "HEXPIRE", "h", 0, "FIELDS", 1, "a") == [2]
    assert r.hgetall("h") == {b"b": b"2"}
    assert call(r, "HEXPIREAT", "h", 1, "FIELDS", 2, "b", "zz") == [2, -2]
    assert not r.exists("h")


# Redis 7.4.1's replies to one sequence (recorded on 7.4.1 with active expiry off, 50 ms after
# the setup): a field past its TTL stays stored until a lookup by name, HRANDFIELD or active
# expiry deletes it; meanwhile HLEN counts it, HDEL deletes it, HGETALL/HKEYS/HVALS/HSCAN skip it.
_LAZY_SETUP = [
    ("HSET", "h", "f1", "v1", "f2", "v2", "f3", "v3", "f4", "4", "keep", "k"),
    ("HPEXPIRE", "h", 1, "FIELDS", 4, "f1", "f2", "f3", "f4"),
    ("HSET", "one", "x", "1"), ("HPEXPIRE", "one", 1, "FIELDS", 1, "x"),
    ("HSET", "two", "x", "1"), ("HPEXPIRE", "two", 1, "FIELDS", 1, "x"),
    ("HSET", "three", "x", "1", "y", "2"), ("HPEXPIRE", "three", 1, "FIELDS", 2, "x", "y"),
    ("HSET", "four", "n", "5"), ("HPEXPIRE", "four", 1, "FIELDS", 1, "n"),
    ("HSET", "rand", "a", "1", "b", "2", "c", "3"), ("HPEXPIRE", "rand", 1, "FIELDS", 2, "a", "b"),
]
_LAZY_VECTORS_74 = [
    (("EXISTS", "h"), 1), (("HLEN", "h"), 5), (("HGETALL", "h"), [b"keep", b"k"]), (("HKEYS", "h"), [b"keep"]),
    (("HVALS", "h"), [b"k"]), (("HSCAN", "h", 0), [b"0", [b"keep", b"k"]]),
    (("HTTL", "h", "FIELDS", 2, "f1", "keep"), [-2, -1]), (("HPERSIST", "h", "FIELDS", 1, "f1"), [-2]),
    (("HLEN", "h"), 5), (("HGET", "h", "f1"), None), (("HLEN", "h"), 4), (("HEXISTS", "h", "f2"), 0),
    (("HSTRLEN", "h", "f3"), 0), (("HLEN", "h"), 2), (("HMGET", "h", "f4", "keep", "nope"), [None, b"k", None]),
    (("HLEN", "h"), 1), ("expired_subkeys", 4),
    (("EXISTS", "one"), 1), (("HDEL", "one", "x"), 1), (("EXISTS", "one"), 0),
    (("HSETNX", "two", "x", "new"), 1), (("HGETALL", "two"), [b"x", b"new"]), (("HTTL", "two", "FIELDS", 1, "x"), [-1]),
    (("HMGET", "three", "x", "y", "z"), [None, None, None]), (("EXISTS", "three"), 0),
    (("HINCRBY", "four", "n", 3), 3), (("HGETALL", "four"), [b"n", b"3"]),
    (("HLEN", "rand"), 3), (("HRANDFIELD", "rand", 5), [b"c"]), (("HLEN", "rand"), 1), ("expired_subkeys", 10),
]


def test_lazy_field_expiry_matches_redis_74(dumpling_server):
    with dumpling_server.raw() as conn:
        conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        conn.call("FLUSHALL")  # the session's shared server: no fields left by an earlier test
        conn.call("CONFIG", "RESETSTAT")
        try:
            for cmd in _LAZY_SETUP:
                conn.call(*cmd)
            time.sleep(0.05)
            for cmd, expected in _LAZY_VECTORS_74:
                if cmd == "expired_subkeys":
                    stats = parse_reply(conn.call("INFO", "stats")).decode()
                    assert f"expired_subkeys:{expected}\r\n" in stats
                    continue
                assert parse_reply(conn.call(*cmd)) == expected, cmd
        finally:
            conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_lazy_field_expiry_events_match_redis_74(r, dumpling_server):
    """HGET/HINCRBY/HSETNX send ``hexpired`` (and ``del`` for the last field) per field; HMGET sends
    one ``hexpired`` for all its expired fields, and none when only the hash's last field went
    (recorded on 7.4.1)."""
    setup = [("HSET", "a", "x", 1, "y", 2, "z", 3), ("HPEXPIRE", "a", 1, "FIELDS", 3, "x", "y", "z"),
             ("HSET", "b", "x", 1), ("HPEXPIRE", "b", 1, "FIELDS", 1, "x"),
             ("HSET", "c", "x", 1, "y", 1), ("HPEXPIRE", "c", 1, "FIELDS", 2, "x", "y"),
             ("HSET", "d", "x", 1), ("HPEXPIRE", "d", 1, "FIELDS", 1, "x"),
             ("HSET", "e", "x", 1), ("HPEXPIRE", "e", 1, "FIELDS", 1, "x"),
             ("HSET", "f", "x", 1, "y", 2), ("HPEXPIRE", "f", 1, "FIELDS", 1, "x")]
    lookups = [("HGET", "a", "x"), ("HMGET", "a", "y", "q"), ("HMGET", "a", "z"), ("HMGET", "b", "x", "q"),
               ("HMGET", "c", "x", "y"), ("HINCRBY", "d", "x", 1), ("HSETNX", "e", "x", 5), ("HRANDFIELD", "f"),
               ("HGETALL", "f")]
    expected = ["hexpired a", "hexpired a", "hexpired c", "del c", "hexpired d", "del d", "hincrby d", "hexpired e",
                "del e", "hset e", "hexpired f"]
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        for cmd in setup:
            r.execute_command(*cmd)
        time.sleep(0.05)
        with dumpling_server.raw() as listener:
            r.config_set("notify-keyspace-events", "KEA")
            listener.call("PSUBSCRIBE", "__keyevent@0__:*")
            for cmd in lookups:
                r.execute_command(*cmd)
            got = [f"{m[2].decode().split(':')[1]} {m[3].decode()}" for m in _pmessages(listener.read_all(0.3))]
        assert got == expected
    finally:
        r.config_set("notify-keyspace-events", "")
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_active_field_expiry_deletes_fields_and_emptied_hashes(r):
    r.config_resetstat()
    r.hset("active", mapping={f"f{i}": i for i in range(1000)})
    r.hset("active", "keep", 1)
    for i in range(1000):
        call(r, "HPEXPIRE", "active", 20 + i % 50, "FIELDS", 1, f"f{i}")
    r.hset("whole", mapping={"a": 1, "b": 2})
    call(r, "HPEXPIRE", "whole", 20, "FIELDS", 2, "a", "b")
    deadline = time.time() + 20
    while time.time() < deadline and (r.execute_command("DBSIZE") != 1 or r.hlen("active") != 1):
        time.sleep(0.05)
    assert r.execute_command("DBSIZE") == 1 and r.hgetall("active") == {b"keep": b"1"}
    assert r.info("stats")["expired_subkeys"] == 1002
    assert r.info("keyspace")["db0"]["subexpiry"] == 0


def test_big_listpackex_hash_converts_while_its_fields_expire(r):
    """HSET does not drop expired fields, so their count still decides the encoding (Redis's
    "listpack converts to ht and active expiry works")."""
    limit = r.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"]
    r.config_set("hash-max-listpack-entries", 128)
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        for i in range(40):
            r.hset("h", mapping={f"a{i}": 1, f"b{i}": 2, f"c{i}": 3, f"d{i}": 4})
            call(r, "HPEXPIRE", "h", 1, "FIELDS", 4, f"a{i}", f"b{i}", f"c{i}", f"d{i}")
        assert r.object("encoding", "h") == b"hashtable" and r.hlen("h") == 160
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        r.config_set("hash-max-listpack-entries", limit)
    deadline = time.time() + 20
    while time.time() < deadline and r.exists("h"):
        time.sleep(0.05)
    assert not r.exists("h")


def test_field_expiry_events(r, dumpling_server):
    with dumpling_server.raw() as listener:
        r.config_set("notify-keyspace-events", "KEA")
        try:
            listener.call("SUBSCRIBE", "__keyspace@0__:h")
            r.hset("h", mapping={"a": 1, "b": 2, "c": 3})
            call(r, "HEXPIRE", "h", 100, "FIELDS", 1, "a")
            call(r, "HPERSIST", "h", "FIELDS", 1, "a")
            call(r, "HEXPIRE", "h", 0, "FIELDS", 1, "a")
            call(r, "HPEXPIRE", "h", 20, "FIELDS", 1, "b")
            data = b""
            deadline = time.monotonic() + 20
            while b"hexpired" not in data and time.monotonic() < deadline:  # active expiry, when the cron gets to it
                data += listener.read_all(0.05)
            call(r, "HPEXPIRE", "h", 0, "FIELDS", 1, "c")
            messages = [m[2] for m in _messages(data + listener.read_all(0.3))]
            assert messages == [b"hset", b"hexpire", b"hpersist", b"hdel", b"hexpire", b"hexpired", b"hdel", b"del"]
        finally:
            r.config_set("notify-keyspace-events", "")


def _pmessages(data: bytes) -> list:
    import hiredis

    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    while (item := reader.gets()) is not False:
        if item[0] == b"pmessage":
            out.append(item)
    return out


def _messages(data: bytes) -> list:
    import hiredis

    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    while (item := reader.gets()) is not False:
        if item[0] == b"message":
            out.append(item)
    return out


def test_subexpiry_and_tracking_across_rename_and_move(r):
    r.hset("h", mapping={"a": 1, "b": 2})
    call(r, "HEXPIRE", "h", 1000, "FIELDS", 1, "a")
    r.hset("plain", "x", 1)
    assert r.info("keyspace")["db0"]["subexpiry"] == 1
    r.rename("h", "h2")
    call(r, "HPEXPIRE", "h2", 20, "FIELDS", 1, "b")
    r.copy("h2", "h3")
    r.move("h3", 1)
    keyspace = r.info("keyspace")
    assert keyspace["db0"]["subexpiry"] == 1 and keyspace["db1"]["subexpiry"] == 1
    deadline = time.time() + 20
    while time.time() < deadline and r.hexists("h2", "b"):
        time.sleep(0.05)
    r1 = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=1)
    try:
        while time.time() < deadline and r1.execute_command("HEXISTS", "h3", "b"):
            time.sleep(0.05)
        assert r1.hgetall("h3") == {b"a": b"1"}
        assert r1.hlen("h3") == 1
    finally:
        r1.close()
    assert call(r, "HTTL", "h2", "FIELDS", 2, "a", "b")[1] == -2


# ----------------------------------------------------------------------------- not in Redis 7.4


def test_redis_8_hash_commands_are_unknown(pair):
    """HGETDEL/HGETEX/HSETEX came with Redis 8.0: a server answering as 7.4 does not know them
    (7.4.1's command table has none of them; COMMAND COUNT equals its count)."""
    pair.same("HSET", "h", "a", "1")
    for cmd in (("HGETDEL", "h", "FIELDS", 1, "a"), ("HGETEX", "h", "EX", 10, "FIELDS", 1, "a"),
                ("HSETEX", "h", "FIELDS", 1, "a", 2), ("COMMAND", "INFO", "hgetdel", "hsetex", "hgetex")):
        pair.same(*cmd)
    pair.same("HGETALL", "h")


# ----------------------------------------------------------------------------- random sequences


def test_random_sequences_match_redis(dumpling_server, redis_server):
    fields = st.sampled_from(["a", "b", "c", "1", "-2", "f" * 70])
    values = st.sampled_from(["1", "x", "-5", "2.5", "v" * 70, ""])
    keys = st.sampled_from(["h1", "h2", "str"])

    def same_map(pair: Pair, *args: object) -> None:
        ours, theirs = pair.both(*args)
        if ours[:1] in (b"*", b"%") and theirs[:1] in (b"*", b"%"):
            a, b = parse_reply(ours), parse_reply(theirs)
            if isinstance(a, list) and args[0] == "HGETALL":
                a, b = dict(zip(a[::2], a[1::2], strict=True)), dict(zip(b[::2], b[1::2], strict=True))
            elif isinstance(a, list):
                a, b = sorted(map(repr, a)), sorted(map(repr, b))
            assert a == b, (args, ours, theirs)
        else:
            assert ours == theirs, (args, ours, theirs)

    class HashMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.pair = Pair(dumpling_server, redis_server)
            self.pair.same("FLUSHALL")
            self.pair.same("SET", "str", "v")

        def teardown(self) -> None:
            self.pair.close()

        @rule(key=keys, pairs=st.lists(st.tuples(fields, values), min_size=1, max_size=4))
        def hset(self, key, pairs):
            self.pair.same("HSET", key, *[x for p in pairs for x in p])

        @rule(key=keys, field=fields, value=values)
        def hsetnx(self, key, field, value):
            self.pair.same("HSETNX", key, field, value)

        @rule(key=keys, names=st.lists(fields, min_size=1, max_size=3))
        def hdel(self, key, names):
            self.pair.same("HDEL", key, *names)

        @rule(key=keys, field=fields, incr=st.integers(-5, 5))
        def incr(self, key, field, incr):
            self.pair.same("HINCRBY", key, field, incr)

        @rule(key=keys, field=fields, incr=st.sampled_from(["1.5", "-0.1", "3", "1e10"]))
        def incrfloat(self, key, field, incr):
            self.pair.same("HINCRBYFLOAT", key, field, incr)

        @rule(key=keys, field=fields)
        def reads(self, key, field):
            for cmd in (("HGET", key, field), ("HEXISTS", key, field), ("HSTRLEN", key, field), ("HLEN", key),
                        ("HMGET", key, field, "zz")):
                self.pair.same(*cmd)
            for cmd in (("HGETALL", key), ("HKEYS", key), ("HVALS", key)):
                same_map(self.pair, *cmd)

        @rule(key=keys)
        def encoding(self, key):
            self.pair.same("OBJECT", "ENCODING", key)

    run_state_machine_as_test(HashMachine, settings=settings(max_examples=25, stateful_step_count=40, deadline=None))
