"""DEBUG OBJECT's quicklist fields and DEBUG LISTPACK, against the Redis 7.0 oracle where the two
versions agree and against replies recorded from Redis 7.4.1 where they do not (the size of a
plain quicklist node: 7.0 counts it differently)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Pair, ServerProcess


def _tail(reply: bytes, field: str) -> bytes:
    """DEBUG OBJECT from ``field`` on (the address, LRU and serialized length differ by nature)."""
    return reply[reply.index(field.encode()):]


@pytest.fixture
def quicklist_settings(pair: Pair) -> Iterator[Pair]:
    pair.same("CONFIG", "SET", "list-max-listpack-size", "-1")
    pair.same("CONFIG", "SET", "list-compress-depth", "12")
    yield pair
    pair.both("CONFIG", "SET", "list-max-listpack-size", "-2")
    pair.both("CONFIG", "SET", "list-compress-depth", "0")


def test_debug_object_quicklist_fields(quicklist_settings: Pair) -> None:
    """Redis's unit/sort.tcl "SORT STORE quicklist with the right options" looks for
    ``ql_listpack_max:-1 ql_compressed:1``."""
    p = quicklist_settings
    p.same("LPUSH", "lst", *["1"] * 6000)
    ours, theirs = p.both("DEBUG", "OBJECT", "lst")
    assert _tail(ours, "ql_nodes") == _tail(theirs, "ql_nodes")
    # SORT STORE builds its list with 7.4's quicklist pushes (7.0 made 2 nodes of it, 7.4.1 3)
    p.same("SORT", "lst", "STORE", "dst")
    assert _tail(p.ours.call("DEBUG", "OBJECT", "dst"), "ql_nodes") == (
        b"ql_nodes:3 ql_avg_node:2000.00 ql_listpack_max:-1 ql_compressed:1 ql_uncompressed_size:12021\r\n")
    p.same("RPUSH", "small", "a")
    # a listpack in 7.2+ (7.0 made every list a quicklist): no quicklist fields
    assert b" encoding:listpack " in p.ours.call("DEBUG", "OBJECT", "small")
    assert b"ql_" not in p.ours.call("DEBUG", "OBJECT", "small")


def test_debug_object_plain_node_size_as_7_4(dumpling_server: ServerProcess) -> None:
    """Recorded from Redis 7.4.1: a 10000-byte element in a plain node counts its own length."""
    with dumpling_server.raw() as conn:
        conn.call("FLUSHALL")
        conn.call("CONFIG", "SET", "list-max-listpack-size", "-1")
        try:
            conn.call("RPUSH", "big", "x" * 10000, "a", "b")
            assert _tail(conn.call("DEBUG", "OBJECT", "big"), "ql_nodes") == (
                b"ql_nodes:2 ql_avg_node:1.50 ql_listpack_max:-1 ql_compressed:0 ql_uncompressed_size:10013\r\n")
        finally:
            conn.call("CONFIG", "SET", "list-max-listpack-size", "-2")
            conn.call("FLUSHALL")


def test_debug_listpack(pair: Pair) -> None:
    pair.run([
        ("HSET", "h", "a", "1", "b", "2"),
        ("DEBUG", "LISTPACK", "h"),
        ("ZADD", "z", "1.5", "m"),
        ("DEBUG", "LISTPACK", "z"),
        ("SET", "s", "v"),
        ("DEBUG", "LISTPACK", "s"),
        ("SADD", "intset", "1"),
        ("DEBUG", "LISTPACK", "intset"),
        ("DEBUG", "LISTPACK", "nokey"),
        ("DEBUG", "LISTPACK"),
        ("DEBUG", "LISTPACK", "h", "extra"),
    ])


def test_debug_listpack_7_4_encodings(dumpling_server: ServerProcess) -> None:
    """Recorded from Redis 7.4.1: a small list or set is a listpack since 7.2, and a hash with field
    TTLs a listpackex (Redis's unit/type/hash-field-expire.tcl "Test listpack debug listpack")."""
    with dumpling_server.raw() as conn:
        conn.call("FLUSHALL")
        conn.call("RPUSH", "l", "x")
        assert conn.call("DEBUG", "LISTPACK", "l") == b"+Listpack structure printed on stdout\r\n"
        conn.call("SADD", "set", "a", "b")
        assert conn.call("DEBUG", "LISTPACK", "set") == b"+Listpack structure printed on stdout\r\n"
        conn.call("HSET", "myhash", "f1", "v1", "f2", "v2")
        conn.call("HEXPIRE", "myhash", "100", "FIELDS", "1", "f1")
        assert conn.call("OBJECT", "ENCODING", "myhash") == b"$10\r\nlistpackex\r\n"
        assert conn.call("DEBUG", "LISTPACK", "myhash") == b"+Listpack structure printed on stdout\r\n"
        conn.call("FLUSHALL")


def test_debug_quicklist_packed_threshold_as_7_4(dumpling_server: ServerProcess) -> None:
    """Recorded from Redis 7.4.1 (Debian's 7.0 has no such threshold rule for 7.4's lists):
    the argument check, and elements at or above the threshold getting PLAIN nodes of their own
    in a quicklist (node count and sizes from DEBUG OBJECT after each command)."""
    bad = b"-ERR argument must be a memory value bigger than 1 and smaller than 4gb\r\n"
    with dumpling_server.raw() as conn:
        conn.call("FLUSHALL")
        try:
            for arg in ("5g", "x", "-1", "4294967296"):
                assert conn.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD", arg) == bad
            conn.call("RPUSH", "l3", *[str(i) for i in range(1, 3000)])
            assert conn.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1b") == b"+OK\r\n"
            nodes = []
            for command in (("RPUSH", "l3", "aaa", "bbb"), ("LPUSH", "l3", "zz"),
                            ("LINSERT", "l3", "BEFORE", "100", "mid"), ("LSET", "l3", "5", "xx")):
                conn.call(*command)
                nodes.append(_tail(conn.call("DEBUG", "OBJECT", "l3"), "ql_nodes").split()[0])
            assert nodes == [b"ql_nodes:4", b"ql_nodes:5", b"ql_nodes:7", b"ql_nodes:9"]
            assert _tail(conn.call("DEBUG", "OBJECT", "l3"), "ql_nodes") == (
                b"ql_nodes:9 ql_avg_node:333.67 ql_listpack_max:-2 ql_compressed:0 ql_uncompressed_size:8909\r\n")
            assert conn.call("LRANGE", "l3", "0", "5") == (
                b"*6\r\n$2\r\nzz\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$2\r\nxx\r\n")
        finally:
            assert conn.call("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0") == b"+OK\r\n"
            conn.call("FLUSHALL")


def _object_fields(reply: bytes) -> dict[str, str]:
    return dict(word.split(":", 1) for word in reply.decode().split()[1:] if ":" in word)


def test_debug_object_address_and_refcount_as_redis_objects(pair: Pair) -> None:
    """Which DEBUG OBJECT addresses are equal is the same on both servers: INCR edits an
    int-encoded object in place (unit/type/incr), integers 0..9999 are one shared object per
    value (refcount 2147483647), a string value made by APPEND is another object."""
    steps: list[tuple[object, ...]] = [
        ("SET", "foo", "20000"), ("INCR", "foo"), ("INCRBY", "foo", "5"), ("DECR", "foo"),
        ("SET", "one", "1"), ("SET", "uno", "1"), ("SET", "neg", "-7"), ("INCR", "neg"),
    ]
    views: list[list[str]] = []
    for conn in (pair.ours, pair.theirs):
        seen: list[str] = []
        for step in steps:
            conn.call(*step)
            fields = _object_fields(conn.call("DEBUG", "OBJECT", step[1])[1:-2])
            seen.append(f"{step[1]} {fields['at']} {fields['refcount']} {fields['encoding']}")
        conn.call("APPEND", "foo", "x")
        fields = _object_fields(conn.call("DEBUG", "OBJECT", "foo")[1:-2])
        seen.append(f"foo {fields['at']} {fields['refcount']} {fields['encoding']}")
        addresses: dict[str, str] = {}
        views.append([" ".join(addresses.setdefault(w, f"@{len(addresses)}") if w.startswith("0x") else w
                               for w in line.split()) for line in seen])
    assert views[0] == views[1]
    assert views[0][0].split()[1] == views[0][3].split()[1]  # in place through INCR/INCRBY/DECR
    assert views[0][4].split()[1:3] == views[0][5].split()[1:3] == ["@1", "2147483647"]
