"""Random big-hash command sequences against real Redis: a hashtable-encoded hash keeps its
fields in a ``KeyTable`` (``dumpling/datatypes/hashes.py``), compiled and in pure mode
(``PyKeyTable``).  The sequences cross the listpack -> hashtable threshold (set low here),
and run HSET/HDEL/HINCRBY, the reads, whole HSCANs (MATCH, COUNT, writes between calls),
HRANDFIELD (positive and negative counts, WITHVALUES), COPY, DUMP + RESTORE, RENAME and
OBJECT ENCODING.  Replies whose order Redis leaves unspecified are compared as mappings or
sets; the rest byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from dumpling import keytable
from tests.fuzzing import scaled
from tests.servers import RawConnection, ServerProcess, oracle_trio, parse_reply

MAX_ENTRIES = 24  # hash-max-listpack-entries on all three servers: conversions come often


@pytest.fixture(scope="module")
def trio() -> Iterator[list[ServerProcess]]:
    with oracle_trio(hash_max_listpack_entries=MAX_ENTRIES) as servers:
        yield servers


def _value(reply: bytes) -> object:
    return parse_reply(reply)


def _pairs(flat: object) -> dict[bytes, bytes]:
    assert isinstance(flat, list) and len(flat) % 2 == 0
    out = dict(zip(flat[0::2], flat[1::2], strict=True))
    assert len(out) == len(flat) // 2, "a field twice in one reply"
    return out


class Run:
    """One dumpling (compiled or pure) and Redis, fed the same commands."""

    def __init__(self, ours: RawConnection, theirs: RawConnection, rng: random.Random) -> None:
        self.ours, self.theirs, self.rng = ours, theirs, rng

    def both(self, *args: bytes | str | int) -> tuple[object, object]:
        return _value(self.ours.call(*args)), _value(self.theirs.call(*args))

    def same(self, *args: bytes | str | int) -> object:
        ours, theirs = self.ours.call(*args), self.theirs.call(*args)
        assert ours == theirs, f"{args!r}\n  dumpling: {ours!r}\n  redis:    {theirs!r}"
        return _value(ours)

    def same_mapping(self, *args: bytes | str | int) -> dict[bytes, bytes]:
        ours, theirs = self.both(*args)
        assert _pairs(ours) == _pairs(theirs), args
        return _pairs(ours)

    def same_set(self, *args: bytes | str | int) -> None:
        ours, theirs = self.both(*args)
        assert isinstance(ours, list) and isinstance(theirs, list)
        assert sorted(ours) == sorted(theirs), args  # (fields: distinct; HVALS: a multiset)

    def hscan_all(self, conn: RawConnection, key: str, match: str | None, count: int,
                  between: list[tuple[str, ...]]) -> dict[bytes, bytes]:
        """A whole HSCAN; ``between`` commands run (on both servers) between the calls."""
        seen: dict[bytes, bytes] = {}
        cursor = b"0"
        calls = 0
        while True:
            args: list[str | bytes] = ["HSCAN", key, cursor]
            if match is not None:
                args += ["MATCH", match]
            args += ["COUNT", str(count)]
            reply = _value(conn.call(*args))
            assert isinstance(reply, list) and len(reply) == 2
            cursor, flat = reply
            seen.update(_pairs(flat))
            calls += 1
            if between and calls <= len(between):
                self.same(*between[calls - 1])
            if cursor == b"0":
                return seen
            assert calls < 100_000


def _fields(rng: random.Random, n: int) -> list[str]:
    return [f"f{rng.randrange(400)}" + ("x" * rng.choice([0, 0, 0, 3])) for _ in range(n)]


def _step(run: Run, keys: list[str]) -> None:
    rng = run.rng
    key = rng.choice(keys)
    op = rng.random()
    if op < 0.30:
        pairs = [x for f in _fields(rng, rng.choice([1, 1, 3, 10, 30])) for x in (f, f"v{rng.randrange(10**6)}")]
        run.same("HSET", key, *pairs)
    elif op < 0.40:
        run.same("HDEL", key, *_fields(rng, rng.choice([1, 2, 8, 40])))
    elif op < 0.46:
        run.same("HINCRBY", key, f"n{rng.randrange(20)}", rng.randrange(-1000, 1000))
    elif op < 0.56:
        field = _fields(rng, 1)[0]
        run.same(rng.choice(["HGET", "HEXISTS", "HSTRLEN"]), key, field)
        run.same("HMGET", key, *_fields(rng, 5))
        run.same("HLEN", key)
    elif op < 0.62:
        run.same_mapping("HGETALL", key)
        run.same_set("HKEYS", key)
        run.same_set("HVALS", key)
        if run.same("EXISTS", key):
            run.same("OBJECT", "ENCODING", key)
    elif op < 0.70:
        match = rng.choice([None, None, "f1*", "*x", "n*"])
        count = rng.choice([1, 5, 10, 100, 1000])
        before = run.same_mapping("HGETALL", key)
        # writes between the calls: a field present throughout must still come back
        between = [("HSET", key, f, "w") for f in _fields(rng, 3)] + [("HDEL", key, f) for f in _fields(rng, 3)]
        touched = {x.encode() for cmd in between for x in cmd[2:3]}
        ours = run.hscan_all(run.ours, key, match, count, between if rng.random() < 0.5 else [])
        after = _pairs(_value(run.ours.call("HGETALL", key)))
        for field in ours:  # nothing that was never there
            assert field in before or field in after, field
        kept = {f for f in before if f not in touched and f in after and _glob(match, f)}
        assert kept <= set(ours), sorted(kept - set(ours))[:5]
        for field in kept:
            assert ours[field] == after[field]
        theirs = run.hscan_all(run.theirs, key, match, count, [])
        assert set(theirs) == {f for f in after if _glob(match, f)}
        assert set(run.hscan_all(run.ours, key, match, count, [])) == set(theirs)
    elif op < 0.80:
        count = rng.choice([1, 3, 20, 200, -1, -5, -300])
        withvalues = rng.random() < 0.5
        args = ["HRANDFIELD", key, str(count)] + (["WITHVALUES"] if withvalues else [])
        ours, theirs = run.both(*args)
        hash_now = _pairs(_value(run.ours.call("HGETALL", key)))
        assert isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs), args
        names = ours[0::2] if withvalues else ours
        assert all(name in hash_now for name in names)
        if withvalues:
            assert all(hash_now[f] == v for f, v in zip(ours[0::2], ours[1::2], strict=True))
        if count > 0:
            assert len(set(names)) == len(names)
        one, theirs_one = run.both("HRANDFIELD", key)
        assert (one is None) == (theirs_one is None) and (one is None or one in hash_now)
    elif op < 0.86:
        other = rng.choice(keys)
        run.same("COPY", key, other, *(["REPLACE"] if rng.random() < 0.7 else []))
        run.same_mapping("HGETALL", other)
    elif op < 0.93:
        payload = run.ours.call("DUMP", key)
        theirs_payload = run.theirs.call("DUMP", key)
        if payload == b"$-1\r\n":
            assert theirs_payload == payload
            return
        blob = _value(payload)
        assert isinstance(blob, bytes)
        target = rng.choice(keys)
        assert _value(run.ours.call("RESTORE", target, "0", blob, "REPLACE")) == b"OK"
        assert _pairs(_value(run.ours.call("HGETALL", target))) == _pairs(_value(run.ours.call("HGETALL", key)))
        run.same("COPY", key, target, "REPLACE")  # (Redis follows with its own copy)
        run.same_mapping("HGETALL", target)
        redis_blob = _value(theirs_payload)
        assert isinstance(redis_blob, bytes)
        assert _value(run.ours.call("RESTORE", "from-redis", "0", redis_blob, "REPLACE")) == b"OK"
        assert _pairs(_value(run.ours.call("HGETALL", "from-redis"))) == _pairs(
            _value(run.theirs.call("HGETALL", key)))
        run.ours.call("DEL", "from-redis")
        run.same("OBJECT", "ENCODING", target)
    else:
        other = rng.choice(keys)
        if run.same("EXISTS", key):
            run.same("RENAME", key, other)
        run.same("EXISTS", key)


def _glob(pattern: str | None, field: bytes) -> bool:
    if pattern is None:
        return True
    if pattern.endswith("*") and not pattern.startswith("*"):
        return field.startswith(pattern[:-1].encode())
    return field.endswith(pattern[1:].encode())


@pytest.mark.parametrize("mode", ["compiled", "pure"])
@pytest.mark.parametrize("seed", [1, 2])
def test_big_hash_sequences_against_redis(trio: list[ServerProcess], mode: str, seed: int) -> None:
    redis, compiled, pure = trio
    ours_server = compiled if mode == "compiled" else pure
    with ours_server.raw() as ours, redis.raw() as theirs:
        ours.call("FLUSHALL")
        theirs.call("FLUSHALL")
        rng = random.Random(seed)
        run = Run(ours, theirs, rng)
        keys = ["h", "g", "k"]
        # one hash far past the threshold from the start
        run.same("HSET", "h", *[x for i in range(300) for x in (f"f{i}", f"v{i}")])
        run.same("OBJECT", "ENCODING", "h")
        for _ in range(scaled(800, 200)):
            _step(run, keys)
        for key in keys:
            if run.same("EXISTS", key):
                run.same_mapping("HGETALL", key)
                run.same("OBJECT", "ENCODING", key)
        run.same("DBSIZE")


@pytest.mark.parametrize("make", [keytable.KeyTable, keytable.PyKeyTable])
def test_a_field_deleted_and_added_again_is_scanned_once(make: type) -> None:
    """HSCAN's walk over a big hash's table: a field deleted and set again between two scans is
    one field (the reference's order list reuses its slot instead of listing it twice)."""
    rng = random.Random(5)
    table = make()
    for i in range(300):
        table[b"f%d" % i] = b"v"
    table.scan(0, 10)  # (the reference's order is built by the first scan)
    for _ in range(2000):
        field = b"f%d" % rng.randrange(300)
        if field in table and rng.random() < 0.5:
            if rng.random() < 0.5:
                del table[field]
            else:
                table.pop(field)
        else:
            table[field] = b"w"
        if rng.random() < 0.02:
            cursor, seen = 0, []
            while True:
                cursor, keys = table.scan(cursor, rng.choice([7, 1000]))
                seen += keys
                if cursor == 0:
                    break
            assert sorted(seen) == sorted(table)
