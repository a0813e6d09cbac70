"""Lists restored from real Redis 7.0 payloads, on a live dumpling, differentially.

dumpling keeps a restored list's node listpacks packed until a command needs the
elements.  Every list command, run first thing on a freshly restored list, must
answer exactly as Redis does; DUMP of a restored list that was only read returns the
payload it came from; a corrupt node is refused by RESTORE (no key left behind)
exactly when the eager decoder refused it, and nothing accepted breaks a command later.
"""

from __future__ import annotations

import random

import pytest

from dumpling.payload import listpack
from dumpling.payload.envelope import seal
from dumpling.payload.primitives import append_len, append_string, read_len, read_string
from tests.fuzzing import scaled
from tests.servers import Pair, RawConnection, ServerProcess, parse_reply
from tests.test_payload_lazy_list import _mangled, eager_elements

BAD_DATA = b"-ERR Bad data format\r\n"


def _shapes() -> dict[str, list[tuple[object, ...]]]:
    rng = random.Random(11)
    many = [b"item:%d" % i for i in range(5000)]
    mixed = [rng.choice([b"%d" % rng.randrange(-70000, 70000), b"s" * rng.randrange(0, 90), b"x" * 9000])
             for _ in range(600)]  # fmt: skip
    return {
        "small": [("RPUSH", "L", "a", "b", "c", "12")],
        "many": [("RPUSH", "L", *many[i : i + 500]) for i in range(0, len(many), 500)],
        "lpushed": [("LPUSH", "L", *many[i : i + 40]) for i in range(0, 3000, 40)],
        "inserted": [("RPUSH", "L", *many[:2000])]
        + [("LINSERT", "L", "BEFORE", b"item:%d" % (i * 37), b"in:%d" % i) for i in range(50)],  # fmt: skip
        "mixed": [("RPUSH", "L", *mixed)],
    }


SHAPES = _shapes()


@pytest.fixture(scope="module")
def payloads(redis_server: ServerProcess) -> dict[str, bytes]:
    """Redis 7.0's DUMP of every shape."""
    out = {}
    with redis_server.raw() as conn:
        for name, commands in SHAPES.items():
            conn.call("DEL", "L")
            for cmd in commands:
                assert not conn.call(*cmd).startswith(b"-")  # type: ignore[arg-type]
            payload = parse_reply(conn.call("DUMP", "L"))
            assert isinstance(payload, bytes) and payload[0] == 18
            out[name] = payload
        conn.call("DEL", "L")
    return out


def _probe(shape: str) -> tuple[bytes, bytes]:
    """Two elements of the shape, to search for."""
    items = [x for cmd in SHAPES[shape] if cmd[0] in ("RPUSH", "LPUSH") for x in cmd[2:]]
    return items[len(items) // 3], items[-1]  # type: ignore[return-value]


def commands(shape: str) -> list[tuple[object, ...]]:
    a, b = _probe(shape)
    return [
        ("LLEN", "L"), ("LRANGE", "L", 0, -1), ("LRANGE", "L", 5, 20), ("LRANGE", "L", -30, -1),
        ("LINDEX", "L", 0), ("LINDEX", "L", -1), ("LINDEX", "L", 1500), ("LINDEX", "L", -2000),
        ("LPOS", "L", a), ("LPOS", "L", b, "RANK", -1, "COUNT", 0), ("LPOS", "L", a, "MAXLEN", 10),
        ("LPOP", "L"), ("RPOP", "L"), ("LPOP", "L", 3), ("RPOP", "L", 3), ("LPOP", "L", 100000),
        ("LPUSH", "L", "new"), ("RPUSH", "L", "new", "7", b"z" * 9000), ("LPUSHX", "L", "x"), ("RPUSHX", "L", "x"),
        ("LSET", "L", 0, "set0"), ("LSET", "L", -1, "set-1"), ("LSET", "L", 1000, b"m" * 9000), ("LSET", "L", 2, "7"),
        ("LINSERT", "L", "BEFORE", a, "ins"), ("LINSERT", "L", "AFTER", b, b"i" * 9000),
        ("LINSERT", "L", "AFTER", "missing", "x"),
        ("LREM", "L", 0, a), ("LREM", "L", -2, b), ("LREM", "L", 1, "missing"),
        ("LTRIM", "L", 1, -2), ("LTRIM", "L", 100, 50), ("LTRIM", "L", -3, -1),
        ("LMOVE", "L", "D", "LEFT", "RIGHT"), ("LMOVE", "L", "L", "RIGHT", "LEFT"), ("RPOPLPUSH", "L", "D"),
        ("LMPOP", 1, "L", "LEFT", "COUNT", 2), ("LMPOP", 2, "nokey", "L", "RIGHT"),
        ("BLPOP", "L", 0), ("BRPOP", "nokey", "L", 0), ("BLMOVE", "L", "D", "RIGHT", "LEFT", 0),
        ("BLMPOP", 0, 1, "L", "RIGHT", "COUNT", 5), ("BRPOPLPUSH", "L", "D", 0),
        ("SORT", "L", "ALPHA", "LIMIT", 0, 10), ("SORT", "L", "ALPHA", "DESC", "STORE", "D"), ("SORT_RO", "L", "ALPHA"),
        ("TYPE", "L"), ("EXISTS", "L"), ("COPY", "L", "D"), ("RENAME", "L", "D"), ("DEL", "L"), ("UNLINK", "L"),
        ("DUMP", "L"), ("GET", "L"), ("SADD", "L", "x"),
    ]  # fmt: skip


def _restore_both(pair: Pair, payload: bytes) -> None:
    pair.same("DEL", "L", "D")
    pair.same("RESTORE", "L", 0, payload)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_list_command_on_a_restored_untouched_list(pair: Pair, payloads: dict[str, bytes], shape: str) -> None:
    for cmd in commands(shape):
        _restore_both(pair, payloads[shape])
        pair.same(*cmd)  # type: ignore[arg-type]
        pair.same("LRANGE", "L", 0, -1)
        pair.same("LRANGE", "D", 0, -1)
        pair.same("LLEN", "L")


@pytest.mark.parametrize("shape", SHAPES)
def test_dump_of_a_restored_list_that_was_only_read_is_the_payload(
    pair: Pair, payloads: dict[str, bytes], shape: str
) -> None:
    payload = payloads[shape]
    _restore_both(pair, payload)
    assert parse_reply(pair.ours.call("DUMP", "L")) == payload
    encoding = pair.ours.call("OBJECT", "ENCODING", "L")
    memory = pair.ours.call("MEMORY", "USAGE", "L")
    a, _ = _probe(shape)
    for cmd in (("LLEN", "L"), ("LRANGE", "L", 0, -1), ("LINDEX", "L", -3), ("LPOS", "L", a),
                ("SORT", "L", "ALPHA", "LIMIT", 0, 3), ("COPY", "L", "C"), ("TYPE", "L")):  # fmt: skip
        pair.same(*cmd)  # type: ignore[arg-type]
    assert parse_reply(pair.ours.call("DUMP", "L")) == payload
    assert parse_reply(pair.ours.call("DUMP", "C")) == payload
    # decoding for the reads changed nothing MEMORY USAGE or OBJECT ENCODING see
    assert pair.ours.call("OBJECT", "ENCODING", "L") == encoding
    assert pair.ours.call("MEMORY", "USAGE", "L") == memory
    expected = b"$8\r\nlistpack\r\n" if shape == "small" else b"$9\r\nquicklist\r\n"
    assert encoding == expected  # the 7.2+ rule: one packed node within the limits is a listpack
    # Redis, restoring the same payload, DUMPs the same nodes back
    pair.same("DUMP", "L")


def _corrupted(payload: bytes, rng: random.Random) -> bytes:
    """The payload with one node listpack mangled (node strings rewritten raw, CRC fixed)."""
    end = len(payload) - 10
    count, pos = read_len(payload, 1, end)
    nodes = []
    for _ in range(count):
        container, pos = read_len(payload, pos, end)
        data, pos = read_string(payload, pos, end)
        nodes.append((container, data))
    target = rng.randrange(len(nodes))
    if nodes[target][0] == 2:
        nodes[target] = (2, _mangled(nodes[target][1], rng))
    out = bytearray(b"\x12")
    append_len(out, len(nodes))
    for container, data in nodes:
        append_len(out, container)
        append_string(out, data, False)
    return seal(out, payload[-10])


def test_corrupt_nodes_are_refused_at_restore_or_never_break_a_command(
    dumpling_server: ServerProcess, payloads: dict[str, bytes]
) -> None:
    rng = random.Random(5)
    outcomes = {"refused": 0, "accepted": 0}
    with RawConnection(dumpling_server.port) as conn:
        try:
            _corrupt_trials(conn, payloads, rng, outcomes)
        finally:
            conn.call("CONFIG", "SET", "sanitize-dump-payload", "no")
        assert conn.call("PING") == b"+PONG\r\n"
    assert min(outcomes.values()) > 20, outcomes  # both kinds were exercised


def _corrupt_trials(
    conn: RawConnection, payloads: dict[str, bytes], rng: random.Random, outcomes: dict[str, int]
) -> None:
    for trial in range(scaled(120, floor=40)):
        shape = rng.choice(["small", "many", "inserted", "mixed"])
        payload = _corrupted(payloads[shape], rng)
        for sanitize in ("no", "yes"):
            conn.call("CONFIG", "SET", "sanitize-dump-payload", sanitize)
            conn.call("DEL", "L", "D")
            expected = eager_elements(payload, sanitize == "yes")
            reply = conn.call("RESTORE", "L", 0, payload)
            outcomes["refused" if expected == "refused" else "accepted"] += 1
            if expected == "refused":
                assert reply == BAD_DATA, (trial, sanitize)
                assert conn.call("EXISTS", "L") == b":0\r\n"  # nothing partially restored
                continue
            assert reply == b"+OK\r\n", (trial, sanitize)
            assert parse_reply(conn.call("LLEN", "L")) == len(expected)
            assert parse_reply(conn.call("LRANGE", "L", 0, -1)) == expected
            for cmd in commands(shape):
                assert b"internal error" not in conn.call(*cmd), (trial, cmd)  # type: ignore[arg-type]
                conn.call("RESTORE", "L", 0, payload, "REPLACE")


def test_listpack_blob_checks_still_apply(pair: Pair) -> None:
    """A node whose header size is wrong is refused by both (the check Redis always runs)."""
    blob = bytearray(listpack.encode([b"a", b"b"]))
    blob[0] += 1
    out = bytearray(b"\x12\x01\x02")
    append_string(out, bytes(blob), False)
    pair.same("RESTORE", "L", 0, seal(out, 10))
    pair.same("EXISTS", "L")
