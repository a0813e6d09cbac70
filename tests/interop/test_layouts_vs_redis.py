"""DUMP bytes that depend on a value's history: stream tombstones and listpack set order.

Streams: Redis keeps XDEL'd and XTRIM'd entries inside their node as tombstones and
drops a node when its last live entry goes; DUMP writes that layout.  The same
commands on Redis 7.0 and dumpling must give byte-identical DUMPs, a Redis payload
restored on dumpling must DUMP back to itself, and the layout must carry on from
there.  Sets: a listpack set (RDB type 20, Redis >= 7.2, so checked against the
spec's vectors) is written in its member order, not sorted.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dumpling.payload import listpack
from dumpling.payload.envelope import seal
from dumpling.payload.primitives import append_string
from tests.servers import Pair, parse_reply


def _xadds(key: str, ids: range, fields: int = 2) -> list[tuple[object, ...]]:
    return [
        ("XADD", key, b"%d-1" % i, *[x for f in range(fields) for x in (b"f%d" % f, b"v%d" % (i * f))]) for i in ids
    ]


HISTORIES: dict[str, list[tuple[object, ...]]] = {
    "xdel middle, first and last": [*_xadds("S", range(1, 31)), ("XDEL", "S", "5-1", "1-1", "30-1")],
    "xdel a whole node": [*_xadds("S", range(1, 251)), ("XDEL", "S", *[b"%d-1" % i for i in range(101, 201)])],
    "xdel then xadd": [*_xadds("S", range(1, 21)), ("XDEL", "S", "7-1", "20-1"), *_xadds("S", range(21, 40))],
    "xtrim maxlen exact": [*_xadds("S", range(1, 251)), ("XTRIM", "S", "MAXLEN", 130)],
    "xtrim minid exact": [*_xadds("S", range(1, 251)), ("XTRIM", "S", "MINID", "77-1")],
    "xtrim approximate": [*_xadds("S", range(1, 351)), ("XTRIM", "S", "MAXLEN", "~", 120)],
    "xadd with trimming": [("XADD", "S", "MAXLEN", 50, b"%d-1" % i, "k", i) for i in range(1, 200)],
    "fields differ from master": [
        *_xadds("S", range(1, 11)),
        ("XADD", "S", "11-1", "other", "x"),
        ("XADD", "S", "12-1", "f0", "a"),
        ("XDEL", "S", "11-1", "1-1"),
    ],
    "big entries": [("XADD", "S", b"%d-1" % i, "blob", b"x" * 1500) for i in range(1, 12)] + [("XDEL", "S", "3-1")],
    "group and pending": [
        *_xadds("S", range(1, 41)),
        ("XGROUP", "CREATE", "S", "g", "0"),
        ("XDEL", "S", "2-1", "39-1"),
        ("XTRIM", "S", "MAXLEN", 30),
    ],
    "deleted down to empty": [*_xadds("S", range(1, 4)), ("XDEL", "S", "1-1", "2-1", "3-1")],
}


@pytest.mark.parametrize("history", HISTORIES)
def test_stream_dump_after_xdel_xtrim_is_byte_identical(pair: Pair, history: str) -> None:
    pair.run(HISTORIES[history])  # type: ignore[arg-type]
    pair.same("DUMP", "S")
    pair.same("XINFO", "STREAM", "S")
    pair.same("XLEN", "S")


@pytest.mark.parametrize("history", HISTORIES)
def test_restored_stream_keeps_its_layout_and_tombstones(pair: Pair, history: str) -> None:
    pair.run(HISTORIES[history])  # type: ignore[arg-type]
    payload = parse_reply(pair.theirs.call("DUMP", "S"))
    assert isinstance(payload, bytes)
    pair.same("RESTORE", "C", 0, payload)
    assert parse_reply(pair.ours.call("DUMP", "C")) == payload
    pair.same("XINFO", "STREAM", "C")  # radix-tree keys and nodes come from the layout
    # and the layout carries on from there: appends, deletions, approximate trims
    pair.run(_xadds("C", range(500, 530)))  # type: ignore[arg-type]
    pair.same("XDEL", "C", "501-1", "510-1")
    pair.same("XTRIM", "C", "MAXLEN", "~", 20)
    pair.same("XLEN", "C")
    pair.same("DUMP", "C")


def test_restored_stream_with_tombstones_and_sanitization(pair: Pair) -> None:
    pair.run(HISTORIES["xdel middle, first and last"])  # type: ignore[arg-type]
    payload = parse_reply(pair.theirs.call("DUMP", "S"))
    assert isinstance(payload, bytes)
    pair.same("CONFIG", "SET", "sanitize-dump-payload", "yes")
    try:
        pair.same("RESTORE", "C", 0, payload)
        assert parse_reply(pair.ours.call("DUMP", "C")) == payload
    finally:
        pair.same("CONFIG", "SET", "sanitize-dump-payload", "no")


# ----------------------------------------------------------------------------- listpack sets (type 20)


def _set_payload(members: list[bytes], version: int) -> bytes:
    out = bytearray(b"\x14")
    append_string(out, listpack.encode(members), True)
    return seal(out, version)


@pytest.fixture
def version_11(pair: Pair) -> Iterator[Pair]:
    pair.ours.call("CONFIG", "SET", "dump-rdb-version", 11)
    yield pair
    pair.ours.call("CONFIG", "SET", "dump-rdb-version", 10)


def test_listpack_set_dump_is_the_spec_vector(version_11: Pair) -> None:
    conn = version_11.ours
    conn.call("SADD", "k", "a")
    # spec §12: Redis 7.2.6 / Valkey 8.0.1 DUMP of SADD k a
    expected = bytes.fromhex("140a0a00000001008161 02ff 0b00 f7df7fdb99ef7b74".replace(" ", ""))
    assert parse_reply(conn.call("DUMP", "k")) == expected


def test_listpack_set_is_written_in_member_order(version_11: Pair) -> None:
    conn = version_11.ours
    conn.call("SADD", "k", "b", "a", "c")
    conn.call("SREM", "k", "a")
    conn.call("SADD", "k", "d", "aa")
    # Redis 7.2+: members appended as added, removed in place - the listpack is b c d aa
    expected = _set_payload([b"b", b"c", b"d", b"aa"], 11)
    assert parse_reply(conn.call("DUMP", "k")) == expected
    # and a restored type-20 payload keeps its order (replies and the next DUMP)
    shuffled = _set_payload([b"zz", b"m", b"a", b"q"], 11)
    assert conn.call("RESTORE", "r", 0, shuffled) == b"+OK\r\n"
    assert parse_reply(conn.call("SMEMBERS", "r")) == [b"zz", b"m", b"a", b"q"]
    assert parse_reply(conn.call("DUMP", "r")) == shuffled
    conn.call("CONFIG", "SET", "dump-rdb-version", 12)
    assert parse_reply(conn.call("DUMP", "r")) == _set_payload([b"zz", b"m", b"a", b"q"], 12)


def test_listpack_set_for_redis_70_is_a_plain_set_in_member_order(pair: Pair) -> None:
    pair.ours.call("SADD", "k", "b", "a", "c")
    payload = parse_reply(pair.ours.call("DUMP", "k"))
    assert isinstance(payload, bytes)
    assert payload[:8] == b"\x02\x03\x01b\x01a\x01c"  # type 2, three members, in order
    pair.theirs.call("RESTORE", "k", 0, payload)
    pair.same_unordered("SMEMBERS", "k")
