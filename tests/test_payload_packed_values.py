"""Restored listpack hashes, zsets and sets and intsets stay packed (``HashValue.packed``,
``ZSetValue.packed``, ``SetValue.packed``) until a command uses them.

RESTORE of a type-16 (hash), type-17 (zset), type-20 (set) or type-11 (intset) payload whose
blob holds distinct fields or members within the encoding's limits (a zset in order without NaN
scores, an intset ascending at its narrowest width) keeps the blob instead of building a dict or
set (and a SortedList); the first command that reads or writes the value builds it.  Checked
here: the codec packs exactly those (C builder and Python reader alike), refuses what the eager
reader refused, answers ``len``, encoding and memory without building, and DUMPs an untouched
value as its input bytes; on live servers, every hash and zset command's first use of a value
RESTOREd from a Redis-made payload answers byte for byte as Redis 7.0 does (encodings, DUMP,
COPY, RENAME, scripts, sanitization), also with ``DUMPLING_PURE=1``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from dumpling.datatypes import HashValue, SetValue, ZSetValue
from dumpling.payload import CodecOptions, PayloadError, decode_payload, encode, encode_payload, listpack
from dumpling.payload import decode as decode_module
from dumpling.payload.envelope import seal
from dumpling.payload.primitives import append_string
from tests.servers import Pair, ServerProcess, parse_reply, start_dumpling

NO = CodecOptions(sanitize_payload="no")
YES = CodecOptions(sanitize_payload="yes")

# Hash shapes Redis makes as listpacks: every entry kind (7-bit, 13-bit, 16/24/32/64-bit ints,
# 6-bit, 12-bit strings), non-canonical numbers, empty and binary fields.
SHAPES: dict[str, list[tuple[bytes, bytes]]] = {
    "two": [(b"name", b"dumpling"), (b"age", b"7")],
    "sixteen": [(b"field:%02d" % i, b"value-%d" % (i * 7919)) for i in range(16)],
    "ints": [(b"%d" % n, b"%d" % -n) for n in (0, 1, 127, 128, 4095, -4096, 32767, 8388608, 2**31, 2**63 - 1)],
    "odd": [(b"", b""), (b"007", b"-0"), (b"1e3", b" 1"), (b"\x00\xff", b"x" * 63), (b"y" * 64, b"z" * 64)],
    "full": [(b"f%d" % i, b"v%d" % i) for i in range(128)],
}


def hash_payload(pairs: list[tuple[bytes, bytes]], version: int = 10, header: int | None = None) -> bytes:
    """A type-16 payload of ``pairs`` (repeats kept), its listpack's count optionally forged."""
    blob = bytearray(listpack.encode([x for pair in pairs for x in pair]))
    if header is not None:
        blob[4:6] = header.to_bytes(2, "little")
    out = bytearray(b"\x10")
    append_string(out, bytes(blob), True)
    return seal(bytes(out), version)


def eager_fields(payload: bytes, options: CodecOptions) -> dict[bytes, bytes] | str:
    """What the reader made of a payload before hashes were kept packed (or its refusal)."""
    try:
        value = decode_payload(payload, options).value
    except PayloadError as exc:
        return f"refused: {exc}"
    assert isinstance(value, HashValue)
    return dict(value.fields)


def codec_modes() -> Iterator[None]:
    """The C value builder, then the Python readers alone."""
    yield
    built = decode_module.values_built
    decode_module.values_built = False
    try:
        yield
    finally:
        decode_module.values_built = built


# ----------------------------------------------------------------------------- the codec


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_untouched_hash_is_packed_and_dumps_as_its_input(shape: str) -> None:
    pairs = SHAPES[shape]
    for _ in codec_modes():
        for version in (10, 11, 12):
            payload = hash_payload(pairs, version)
            value = decode_payload(payload, NO).value
            assert isinstance(value, HashValue)
            assert value.packed_listpack() is not None, "the hash was built at RESTORE"
            assert len(value) == len(pairs) and value.encoding == "listpack"
            memory = value.memory_usage()
            assert encode_payload(value, version) == payload
            copy = value.copy()
            assert value.packed_listpack() is not None and copy.packed_listpack() is value.packed_listpack()
            assert value.fields == dict(pairs)  # the first use builds it
            assert value.packed_listpack() is None and len(value) == len(pairs)
            assert value.memory_usage() == memory
            assert encode_payload(value, version) == payload  # rebuilt the same from the dict
            assert copy.fields == dict(pairs)


def test_what_is_not_kept_packed_is_built_as_before() -> None:
    """Duplicate fields, a forged count, over the entries limit, or a ziplist: the eager value."""
    cases = [
        (hash_payload([(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]), NO),
        (hash_payload([(b"1", b"x"), (b"1", b"y")]), NO),  # an int entry twice
        (hash_payload([(b"a", b"1"), (b"b", b"2")], header=65535), NO),
        (hash_payload([(b"a", b"1"), (b"b", b"2")], header=2), NO),
        (hash_payload([(b"f%d" % i, b"v") for i in range(129)]), CodecOptions(hash_max_listpack_entries=128)),
        (hash_payload([(b"a", b"1"), (b"b", b"2")]), CodecOptions(sanitize_payload="no", hash_max_listpack_entries=1)),
    ]
    for payload, options in cases:
        for _ in codec_modes():
            value = decode_payload(payload, options).value
            assert isinstance(value, HashValue) and value.packed_listpack() is None
    # deep sanitization checks the listpack and keeps it packed; duplicates are refused there
    for _ in codec_modes():
        assert decode_payload(hash_payload(SHAPES["sixteen"]), YES).value.packed_listpack() is not None
        with pytest.raises(PayloadError):
            decode_payload(cases[0][0], YES)


def _mangled(payload: bytes, rng: random.Random) -> bytes:
    blob = bytearray(listpack.encode([x for pair in SHAPES[rng.choice(sorted(SHAPES))] for x in pair]))
    how = rng.randrange(4)
    if how == 0:
        blob[rng.randrange(6, len(blob) - 1)] = rng.randrange(256)
    elif how == 1:
        blob[4:6] = rng.randrange(300).to_bytes(2, "little")
    elif how == 2:
        blob[rng.randrange(6, len(blob) - 1)] = 0xFF
    else:
        del blob[rng.randrange(6, len(blob) - 1)]
        blob[0:4] = len(blob).to_bytes(4, "little")
    out = bytearray(b"\x10")
    append_string(out, bytes(blob), False)
    return seal(bytes(out), 10)


def test_damaged_listpacks_are_refused_or_built_exactly_as_the_eager_reader_did() -> None:
    """Whatever is accepted packed builds to the fields the eager reader made, and the rest is
    refused with the eager reader's error (the comparison's reference is ``listpack.decode_hash``,
    the reader of every hash listpack before this change)."""
    rng = random.Random(20261207)
    for _ in range(400):
        payload = _mangled(b"", rng)
        blob = payload[2:-10] if payload[1] < 0x40 else payload[3:-10]
        try:
            reference: dict[bytes, bytes] | str = listpack.decode_hash(blob, False)
            if not reference:
                reference = "refused"
        except PayloadError:
            reference = "refused"
        for _ in codec_modes():
            got = eager_fields(payload, NO)
            if reference == "refused":
                assert isinstance(got, str)
            else:
                assert got == reference


# ----------------------------------------------------------------------------- live servers

# One command per line: its first use of a freshly restored hash ``h``, compared with Redis.
FIRST_USES: list[tuple[str, ...]] = [
    ("HGETALL", "h"), ("HGET", "h", "age"), ("HGET", "h", "field:03"), ("HMGET", "h", "name", "nope", "field:15"),
    ("HKEYS", "h"), ("HVALS", "h"), ("HLEN", "h"), ("HEXISTS", "h", "name"), ("HSTRLEN", "h", "name"),
    ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "MATCH", "f*", "COUNT", "2"), ("HRANDFIELD", "h", "-3"),
    ("HSET", "h", "name", "other"), ("HSET", "h", "new", "1"), ("HSETNX", "h", "name", "x"), ("HSETNX", "h", "n2", "x"),
    ("HDEL", "h", "name", "age"), ("HINCRBY", "h", "age", "5"), ("HINCRBYFLOAT", "h", "age", "0.5"),
    ("HINCRBY", "h", "name", "1"), ("HSET", "h", "long", "x" * 65), ("HMSET", "h", "a", "1", "b", "2"),
    ("TYPE", "h"), ("OBJECT", "ENCODING", "h"), ("EXISTS", "h"), ("DUMP", "h"), ("EXPIRE", "h", "100"),
    ("PERSIST", "h"), ("LPUSH", "h", "x"), ("GET", "h"), ("DEL", "h"), ("UNLINK", "h"),
    ("EVAL", "return redis.call('HGETALL', KEYS[1])", "1", "h"),
    ("EVAL", "return redis.call('HSET', KEYS[1], 'lua', 'v')", "1", "h"),
]
# Then everything a client could look at afterwards.
AFTER = [("HGETALL", "h"), ("OBJECT", "ENCODING", "h"), ("HLEN", "h"), ("DUMP", "h"), ("TYPE", "h")]

LIVE_SHAPES = ["two", "sixteen", "ints", "odd"]


def redis_payload(pair: Pair, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """Redis 7.0's DUMP of a hash HSET with ``pairs`` (then deleted there)."""
    pair.theirs.call("DEL", "src")
    pair.theirs.call("HSET", "src", *[x for p in pairs for x in p])
    payload = parse_reply(pair.theirs.call("DUMP", "src"))
    pair.theirs.call("DEL", "src")
    assert isinstance(payload, bytes) and payload[0] == 16
    return payload


def restore_both(pair: Pair, payload: bytes, key: str = "h") -> None:
    pair.both("DEL", key)
    assert pair.same("RESTORE", key, 0, payload) == b"+OK\r\n"


def check_first_uses(pair: Pair, shape: str) -> None:
    extended = [*SHAPES["sixteen"], (b"name", b"n"), (b"age", b"41")] if shape == "sixteen" else SHAPES[shape]
    payload = redis_payload(pair, extended)
    for command in FIRST_USES:
        restore_both(pair, payload)
        if command[0] == "HRANDFIELD":  # random picks: the same count of known fields
            ours, theirs = (parse_reply(reply) for reply in pair.both(*command))
            assert isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs) == 3
            assert set(ours) <= {f for f, _ in extended}
        elif command[0] == "HSCAN" and "MATCH" in command:
            pair.same_unordered(*command)
        else:
            pair.same(*command)
        hashtable = pair.same("OBJECT", "ENCODING", "h") == b"$9\r\nhashtable\r\n"
        for after in AFTER:
            if hashtable and after[0] in ("HGETALL", "DUMP"):  # Redis's order is its dict's
                if after[0] == "HGETALL":
                    pair.same_unordered(*after)
            else:
                pair.same(*after)


@pytest.mark.parametrize("shape", LIVE_SHAPES)
def test_first_use_of_a_restored_hash_answers_as_redis(pair: Pair, shape: str) -> None:
    check_first_uses(pair, shape)


def test_untouched_restored_hash_dumps_the_input_and_restores_into_redis(pair: Pair) -> None:
    for shape in ("two", "sixteen", "ints", "odd", "full"):
        payload = redis_payload(pair, SHAPES[shape])
        restore_both(pair, payload)
        assert parse_reply(pair.ours.call("DUMP", "h")) == payload
        # MEMORY USAGE: what the same hash made by HSET answers (Redis 7.0's differs from 7.4's)
        packed_memory = pair.ours.call("MEMORY", "USAGE", "h")
        pair.ours.call("HSET", "made", *[x for p in SHAPES[shape] for x in p])
        assert packed_memory == pair.ours.call("MEMORY", "USAGE", "made")
        pair.ours.call("DEL", "made")
        pair.same("OBJECT", "ENCODING", "h")
        pair.same("COPY", "h", "c")
        pair.same("RENAME", "h", "r")
        assert parse_reply(pair.ours.call("DUMP", "r")) == payload == parse_reply(pair.ours.call("DUMP", "c"))
        ours = parse_reply(pair.ours.call("DUMP", "c"))
        pair.theirs.call("DEL", "back")
        assert pair.theirs.call("RESTORE", "back", 0, ours) == b"+OK\r\n"
        pair.same("HGETALL", "c")
        assert pair.theirs.call("HGETALL", "back") == pair.ours.call("HGETALL", "r")
        assert pair.ours.call("MEMORY", "USAGE", "c") == packed_memory  # built now
        pair.both("DEL", "c", "r", "back")


def test_restored_hash_under_deep_sanitization_and_with_duplicates(pair: Pair) -> None:
    dups = hash_payload([(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
    try:
        pair.both("CONFIG", "SET", "sanitize-dump-payload", "yes")
        payload = redis_payload(pair, SHAPES["sixteen"])
        restore_both(pair, payload)
        pair.same("HGETALL", "h")
        pair.same("DUMP", "h")
        pair.same("RESTORE", "d", 0, dups)
        pair.both("CONFIG", "SET", "sanitize-dump-payload", "no")
        # unsanitized, Redis keeps the repeat in its listpack; dumpling keeps the first value
        assert pair.ours.call("RESTORE", "d", 0, dups) == b"+OK\r\n"
        assert parse_reply(pair.ours.call("HGETALL", "d")) == [b"a", b"1", b"b", b"2"]
        assert pair.ours.call("HLEN", "d") == b":2\r\n"
    finally:
        pair.both("CONFIG", "SET", "sanitize-dump-payload", "no")


def test_restored_hashes_watch_and_notifications(pair: Pair) -> None:
    """WATCH sees no change from reading a packed hash (building it is not a write)."""
    payload = redis_payload(pair, SHAPES["two"])
    restore_both(pair, payload)
    pair.same("WATCH", "h")
    pair.same("HGET", "h", "name")
    pair.same("MULTI")
    pair.same("HLEN", "h")
    pair.same("EXEC")


@pytest.fixture(scope="module")
def pure_dumpling() -> Iterator[ServerProcess]:
    server = start_dumpling(env={"DUMPLING_PURE": "1"})
    yield server
    server.stop()


def test_first_uses_in_the_pure_python_server(pure_dumpling: ServerProcess, redis_server: ServerProcess) -> None:
    pure_dumpling.raw().call("FLUSHALL")
    redis_server.raw().call("FLUSHALL")
    pair = Pair(pure_dumpling, redis_server)
    try:
        check_first_uses(pair, "sixteen")
        payload = redis_payload(pair, SHAPES["odd"])
        restore_both(pair, payload)
        assert parse_reply(pair.ours.call("DUMP", "h")) == payload
        packed_memory = pair.ours.call("MEMORY", "USAGE", "h")
        pair.same("HGETALL", "h")
        assert pair.ours.call("MEMORY", "USAGE", "h") == packed_memory
    finally:
        pair.close()



# ----------------------------------------------------------------------------- zsets

ZSHAPES: dict[str, list[tuple[bytes, float]]] = {
    "ten": [(b"%d" % (100 + j), j / 3 if j % 2 else float(j)) for j in range(10)],
    "ints": [(b"m%d" % j, float(n)) for j, n in enumerate((0, 1, -1, 127, 4096, -32769, 2**31, 2**52))],
    "odd": [(b"", 1.5), (b"007", 1e-300), (b"x" * 64, float("inf")), (b"y", float("-inf")), (b"-0", 2.0)],
    "full": [(b"m%03d" % j, j * 0.5) for j in range(128)],
}


def zset_payload(pairs: list[tuple[bytes, float]], version: int = 10, header: int | None = None,
                 texts: list[bytes] | None = None, sort: bool = True) -> bytes:
    """A type-17 payload of ``pairs`` sorted as Redis keeps them (or as given; repeats kept), scores as the writer for
    ``version`` writes them (or the given ``texts``), its listpack's count optionally forged."""
    if texts is None:
        pairs = sorted(pairs, key=lambda p: (p[1], p[0])) if sort else pairs
        entries = [x for m, sc in pairs for x in (m, encode._listpack_score(sc, version))]
    else:
        entries = [x for (m, _), t in zip(pairs, texts, strict=True) for x in (m, t)]
    blob = bytearray(listpack.encode_mixed(entries))
    if header is not None:
        blob[4:6] = header.to_bytes(2, "little")
    out = bytearray(b"\x11")
    append_string(out, bytes(blob), True)
    return seal(bytes(out), version)


@pytest.mark.parametrize("shape", sorted(ZSHAPES))
def test_untouched_zset_is_packed_and_dumps_as_its_input(shape: str) -> None:
    pairs = sorted(ZSHAPES[shape], key=lambda p: (p[1], p[0]))
    reference = ZSetValue.from_pairs(pairs)
    for _ in codec_modes():
        for version in (10, 11, 12):
            payload = zset_payload(pairs, version)
            value = decode_payload(payload, NO).value
            assert isinstance(value, ZSetValue)
            assert value.packed_listpack(version) is not None, "the zset was built at RESTORE"
            assert len(value) == len(pairs) and value.encoding == "listpack"
            assert encode_payload(value, version) == payload
            for other in (10, 11, 12):  # another era's score texts: written as the built value
                assert encode_payload(value.copy(), other) == encode_payload(reference, other)
            assert value.packed_listpack(version) is not None
            copy = value.copy()
            assert copy.packed_listpack(version) is value.packed_listpack(version)
            assert value.memory_usage() == reference.memory_usage()
            assert value.scores == reference.scores and list(value.index) == list(reference.index)
            assert value.packed_listpack(version) is None and len(value) == len(pairs)
            assert encode_payload(value, version) == payload
            assert list(copy.index) == list(reference.index)


def test_zsets_not_kept_packed_are_built_as_before() -> None:
    nan = [b"a", b"1", b"b", b"nan"]
    cases = [
        (zset_payload([(b"a", 1.0), (b"b", 2.0), (b"a", 3.0)]), NO),
        (zset_payload([(b"1", 1.0), (b"1", 2.0)]), NO),
        (zset_payload([(b"a", 1.0), (b"b", 2.0)], header=65535), NO),
        (zset_payload([(b"a", 1.0), (b"b", 2.0)], header=2), NO),
        (zset_payload([(b"b", 1.0), (b"a", 1.0)], sort=False), NO),
        (zset_payload([(b"a", 2.0), (b"b", 1.0)], sort=False), NO),
        (zset_payload(ZSHAPES["full"] + [(b"z", 1.0)]), CodecOptions(zset_max_listpack_entries=128)),
    ]
    for payload, options in cases:
        for _ in codec_modes():
            value = decode_payload(payload, options).value
            assert isinstance(value, ZSetValue) and value.packed_listpack(10) is None
    nan_payload = zset_payload([(b"a", 1.0), (b"b", 2.0)], texts=[nan[1], nan[3]])
    for _ in codec_modes():
        with pytest.raises(PayloadError):
            decode_payload(nan_payload, NO)
        assert decode_payload(zset_payload(ZSHAPES["ten"]), YES).value.packed_listpack(10) is not None
        with pytest.raises(PayloadError):
            decode_payload(cases[0][0], YES)


ZSET_FIRST_USES: list[tuple[str, ...]] = [
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZSCORE", "z", "103"), ("ZMSCORE", "z", "100", "nope", "109"),
    ("ZRANK", "z", "105"), ("ZREVRANK", "z", "105"), ("ZCARD", "z"), ("ZCOUNT", "z", "1", "(5"),
    ("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES", "LIMIT", "1", "3"), ("ZREVRANGE", "z", "0", "2"),
    ("ZRANGEBYLEX", "z", "-", "+"), ("ZLEXCOUNT", "z", "[101", "+"), ("ZSCAN", "z", "0"),
    ("ZADD", "z", "7", "new"), ("ZADD", "z", "0.5", "103"), ("ZADD", "z", "XX", "CH", "9", "100"),
    ("ZINCRBY", "z", "2.5", "101"), ("ZREM", "z", "100", "101"), ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "2"),
    ("ZREMRANGEBYRANK", "z", "0", "1"), ("ZREMRANGEBYSCORE", "z", "1", "4"), ("ZADD", "z", "1", "x" * 65),
    ("ZUNIONSTORE", "out", "1", "z"), ("ZRANGESTORE", "out", "z", "0", "-1"), ("ZINTERCARD", "1", "z"),
    ("TYPE", "z"), ("OBJECT", "ENCODING", "z"), ("DUMP", "z"), ("EXPIRE", "z", "100"), ("DEL", "z"),
    ("SORT", "z"), ("EVAL", "return redis.call('ZRANGE', KEYS[1], 0, -1)", "1", "z"),
]
ZSET_AFTER = [("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("OBJECT", "ENCODING", "z"), ("ZCARD", "z"), ("DUMP", "z")]


def redis_zset_payload(pair: Pair, pairs: list[tuple[bytes, float]]) -> bytes:
    pair.theirs.call("DEL", "src")
    pair.theirs.call("ZADD", "src", *[x for m, sc in pairs for x in (repr(sc), m)])
    payload = parse_reply(pair.theirs.call("DUMP", "src"))
    pair.theirs.call("DEL", "src")
    assert isinstance(payload, bytes) and payload[0] == 17
    return payload


def check_zset_first_uses(pair: Pair, shape: str) -> None:
    payload = redis_zset_payload(pair, ZSHAPES[shape])
    for command in ZSET_FIRST_USES:
        pair.both("DEL", "z", "out")
        assert pair.same("RESTORE", "z", 0, payload) == b"+OK\r\n"
        pair.same_doubles(*command)
        for after in ZSET_AFTER:
            pair.same_doubles(*after)
        pair.same_doubles("ZRANGE", "out", "0", "-1", "WITHSCORES")


@pytest.mark.parametrize("shape", ["ten", "ints", "odd"])
def test_first_use_of_a_restored_zset_answers_as_redis(pair: Pair, shape: str) -> None:
    check_zset_first_uses(pair, shape)


def test_untouched_restored_zset_dumps_the_input_and_restores_into_redis(pair: Pair) -> None:
    for shape in ZSHAPES:
        payload = redis_zset_payload(pair, ZSHAPES[shape])
        pair.both("DEL", "z", "c", "r", "back")
        assert pair.same("RESTORE", "z", 0, payload) == b"+OK\r\n"
        assert parse_reply(pair.ours.call("DUMP", "z")) == payload
        packed_memory = pair.ours.call("MEMORY", "USAGE", "z")
        pair.same("OBJECT", "ENCODING", "z")
        pair.same("COPY", "z", "c")
        pair.same("RENAME", "z", "r")
        assert parse_reply(pair.ours.call("DUMP", "r")) == payload == parse_reply(pair.ours.call("DUMP", "c"))
        assert pair.theirs.call("RESTORE", "back", 0, parse_reply(pair.ours.call("DUMP", "c"))) == b"+OK\r\n"
        assert pair.theirs.call("ZRANGE", "back", 0, -1, "WITHSCORES") == pair.theirs.call("ZRANGE", "c", 0, -1, "WITHSCORES")
        pair.same_doubles("ZRANGE", "c", 0, -1, "WITHSCORES")
        assert pair.ours.call("MEMORY", "USAGE", "c") == packed_memory  # built now


def test_zset_first_uses_in_the_pure_python_server(pure_dumpling: ServerProcess, redis_server: ServerProcess) -> None:
    pure_dumpling.raw().call("FLUSHALL")
    redis_server.raw().call("FLUSHALL")
    pair = Pair(pure_dumpling, redis_server)
    try:
        check_zset_first_uses(pair, "ten")
        payload = redis_zset_payload(pair, ZSHAPES["odd"])
        pair.both("DEL", "z")
        pair.same("RESTORE", "z", 0, payload)
        assert parse_reply(pair.ours.call("DUMP", "z")) == payload
    finally:
        pair.close()


# ----------------------------------------------------------------------------- sets

INTSETS: dict[str, list[int]] = {
    "small": [1, 2, 3, 10, 200],
    "wide": [-(2**40), 5, 2**40],
    "mid": list(range(-70000, 70000, 9999)),
    "full": list(range(0, 512 * 3, 3)),
}
LISTPACK_SETS: dict[str, list[bytes]] = {
    "words": [b"apple", b"pear", b"fig", b"kiwi"],
    "mixed": [b"a", b"1", b"-5", b"007", b"", b"x" * 64, b"4096"],
}


def intset_blob(values: list[int], width: int | None = None) -> bytes:
    if width is None:
        low, high = min(values), max(values)
        width = 2 if -32768 <= low and high <= 32767 else 4 if -(2**31) <= low and high < 2**31 else 8
    blob = width.to_bytes(4, "little") + len(values).to_bytes(4, "little")
    return blob + b"".join(v.to_bytes(width, "little", signed=True) for v in values)


def intset_payload(values: list[int], width: int | None = None, version: int = 10) -> bytes:
    out = bytearray(b"\x0b")
    append_string(out, intset_blob(values, width), True)
    return seal(bytes(out), version)


def set_listpack_payload(members: list[bytes], version: int = 11, header: int | None = None) -> bytes:
    blob = bytearray(listpack.encode(members))
    if header is not None:
        blob[4:6] = header.to_bytes(2, "little")
    out = bytearray(b"\x14")
    append_string(out, bytes(blob), True)
    return seal(bytes(out), version)


@pytest.mark.parametrize("shape", sorted(INTSETS) + sorted(LISTPACK_SETS))
def test_untouched_set_is_packed_and_dumps_as_its_input(shape: str) -> None:
    intset = shape in INTSETS
    members = [b"%d" % v for v in INTSETS[shape]] if intset else LISTPACK_SETS[shape]
    reference = SetValue(members, "intset" if intset else "listpack")
    for _ in codec_modes():
        for version in (10, 11, 12) if intset else (11, 12):
            payload = intset_payload(INTSETS[shape], version=version) if intset else set_listpack_payload(members, version)
            value = decode_payload(payload, CodecOptions(set_max_intset_entries=512)).value
            assert isinstance(value, SetValue)
            assert value.packed_blob(version) is not None, "the set was built at RESTORE"
            assert len(value) == len(members) and value.encoding == reference.encoding
            assert value.memory_usage() == reference.memory_usage()
            assert encode_payload(value, version) == payload
            for other in (10, 11, 12):
                assert encode_payload(value.copy(), other) == encode_payload(reference, other)
            copy = value.copy()
            assert value.packed_blob(version) is not None and copy.packed_blob(version) is value.packed_blob(version)
            assert list(value) == list(reference) and value.members == set(members)
            assert value.packed_blob(version) is None and len(value) == len(members)
            assert encode_payload(value, version) == payload
            assert list(copy) == list(reference)


def test_sets_not_kept_packed_are_built_as_before() -> None:
    cases = [
        intset_payload([3, 1, 2]),  # not ascending: a built intset DUMPs it sorted
        intset_payload([1, 1, 2]),
        intset_payload([1, 2, 3], width=4),  # wider than needed
        set_listpack_payload([b"a", b"b", b"a"]),
        set_listpack_payload([b"a", b"b"], header=65535),
        set_listpack_payload([b"a", b"b"], header=1),
    ]
    for payload in cases:
        for _ in codec_modes():
            value = decode_payload(payload, NO).value
            assert isinstance(value, SetValue) and value.packed_blob(11) is None
    too_many = intset_payload(list(range(600)))  # over set-max-intset-entries: a hashtable
    for _ in codec_modes():
        assert decode_payload(too_many, CodecOptions(set_max_intset_entries=512)).value.encoding == "hashtable"


SET_FIRST_USES: list[tuple[str, ...]] = [
    ("SMEMBERS", "s"), ("SISMEMBER", "s", "3"), ("SMISMEMBER", "s", "1", "4", "apple"), ("SCARD", "s"),
    ("SSCAN", "s", "0"), ("SADD", "s", "3"), ("SADD", "s", "7"), ("SREM", "s", "1", "2"),
    ("SMOVE", "s", "t", "10"), ("SINTERCARD", "1", "s"), ("SINTER", "s", "s"), ("SDIFF", "s", "t"),
    ("SUNIONSTORE", "u", "s"), ("TYPE", "s"), ("OBJECT", "ENCODING", "s"), ("DUMP", "s"), ("SORT", "s"),
    ("EXPIRE", "s", "100"), ("DEL", "s"), ("EVAL", "return redis.call('SMEMBERS', KEYS[1])", "1", "s"),
]
SET_AFTER = [("SMEMBERS", "s"), ("OBJECT", "ENCODING", "s"), ("SCARD", "s"), ("DUMP", "s"), ("SMEMBERS", "t")]


def check_set_first_uses(pair: Pair) -> None:
    for shape in ("small", "wide"):
        pair.theirs.call("DEL", "src")
        pair.theirs.call("SADD", "src", *INTSETS[shape])
        payload = parse_reply(pair.theirs.call("DUMP", "src"))
        assert isinstance(payload, bytes) and payload[0] == 11
        for command in SET_FIRST_USES:
            pair.both("DEL", "s", "t", "u")
            assert pair.same("RESTORE", "s", 0, payload) == b"+OK\r\n"
            pair.same(*command)
            for after in SET_AFTER:
                pair.same(*after)
        pair.both("DEL", "s")
        pair.same("RESTORE", "s", 0, payload)
        assert parse_reply(pair.ours.call("DUMP", "s")) == payload
        assert pair.ours.call("SPOP", "s") in {b"$%d\r\n%d\r\n" % (len(b"%d" % v), v) for v in INTSETS[shape]}


def test_first_use_of_a_restored_intset_answers_as_redis(pair: Pair) -> None:
    check_set_first_uses(pair)


def outcome(r: object, command: tuple[str, ...]) -> object:
    """A command's reply through redis-py, or its error's text."""
    import redis

    assert isinstance(r, redis.Redis)
    try:
        return r.execute_command(*command)
    except redis.ResponseError as exc:
        return str(exc)


def test_first_use_of_a_restored_listpack_set_answers_as_a_built_one(r: object) -> None:
    """Redis 7.0 has no listpack sets (7.2+, and an intset taking a word becomes one): a
    restored set against the same set made by SADD."""
    import redis

    assert isinstance(r, redis.Redis)
    shapes = [(m, set_listpack_payload(m, version=11)) for m in LISTPACK_SETS.values()]
    shapes += [([b"%d" % v for v in INTSETS[name]], intset_payload(INTSETS[name])) for name in ("small", "wide")]
    for members, payload in shapes:
        for command in [*SET_FIRST_USES, ("SADD", "s", "word"), ("SADD", "s", "x" * 65)]:
            r.delete("s", "m", "t", "u")
            r.config_set("dump-rdb-version", 11)
            try:
                assert r.restore("s", 0, payload) == b"OK"
                r.sadd("m", *members)
                assert r.object("encoding", "s") == r.object("encoding", "m")
                ours = outcome(r, command)
                r.delete("t", "u")
                theirs = outcome(r, tuple(a if a != "s" else "m" for a in command))
                assert ours == theirs, command
                assert r.smembers("s") == r.smembers("m") and r.object("encoding", "s") == r.object("encoding", "m")
                if r.exists("s"):
                    assert r.dump("s") == r.dump("m")
            finally:
                r.config_set("dump-rdb-version", 10)


def test_set_first_uses_in_the_pure_python_server(pure_dumpling: ServerProcess, redis_server: ServerProcess) -> None:
    pure_dumpling.raw().call("FLUSHALL")
    redis_server.raw().call("FLUSHALL")
    pair = Pair(pure_dumpling, redis_server)
    try:
        check_set_first_uses(pair)
    finally:
        pair.close()


def test_what_a_first_use_builds_is_hidden_from_the_collector() -> None:
    """A value built when stored was untracked then (collector.stored); one built from its packed
    blob later untracks what it builds the same way, so used restored values add nothing to the
    cyclic collector's full passes."""
    import gc

    from dumpling import collector

    if not collector.ACCELERATED:
        pytest.skip("untracking needs dumpling._untrack (not in the pure build)")
    zset = decode_payload(zset_payload(ZSHAPES["ten"]), NO).value
    intset = decode_payload(intset_payload(INTSETS["small"]), NO).value
    members = decode_payload(set_listpack_payload(LISTPACK_SETS["words"]), NO).value
    hashed = decode_payload(hash_payload(SHAPES["sixteen"]), NO).value
    assert isinstance(zset, ZSetValue) and isinstance(intset, SetValue) and isinstance(members, SetValue)
    assert isinstance(hashed, HashValue)
    assert not gc.is_tracked(zset.index) and not gc.is_tracked(zset.scores)
    assert not gc.is_tracked(intset.members) and not gc.is_tracked(members.members)
    assert not gc.is_tracked(members.ordered()) and not gc.is_tracked(hashed.fields)


def _damaged(blob: bytes, rng: random.Random) -> bytes:
    data = bytearray(blob)
    how = rng.randrange(5)
    if how == 0:
        data[rng.randrange(6, len(data) - 1)] = rng.randrange(256)
    elif how == 1:
        data[4:6] = rng.randrange(40).to_bytes(2, "little")
    elif how == 2:  # two entries' bytes swapped: order, duplicates
        i, j = sorted(rng.sample(range(6, len(data) - 1), 2))
        data[i], data[j] = data[j], data[i]
    elif how == 3:
        del data[rng.randrange(6, len(data) - 1)]
        data[0:4] = len(data).to_bytes(4, "little")
    return bytes(data)


def test_damaged_zset_and_set_blobs_build_what_the_eager_readers_built() -> None:
    """Zset listpacks, set listpacks and intsets, mangled: each payload is refused exactly when
    the eager reader's steps refuse it, and what is accepted (packed or not) builds to the
    eager value: the same scores and order, the same members and listpack order."""
    rng = random.Random(20261207)
    zblobs = [listpack.encode_mixed([x for m, sc in sorted(p, key=lambda q: (q[1], q[0]))
                                     for x in (m, encode._listpack_score(sc, 11))]) for p in ZSHAPES.values()]
    sblobs = [listpack.encode(m) for m in LISTPACK_SETS.values()]
    iblobs = [intset_blob(v) for v in (INTSETS["small"], INTSETS["wide"], INTSETS["mid"])]
    for _ in range(300):
        kind = rng.choice(["zset", "set", "intset"])
        blob = _damaged(rng.choice({"zset": zblobs, "set": sblobs, "intset": iblobs}[kind]), rng)
        head = {"zset": b"\x11", "set": b"\x14", "intset": b"\x0b"}[kind]
        out = bytearray(head)
        append_string(out, blob, False)
        payload = seal(bytes(out), 11)
        try:
            if kind == "zset":
                pairs = listpack.zset_pairs(blob, False)
                expected: object = list(decode_module._zset_from_pairs(pairs, "listpack", False).index) if pairs else None
            elif kind == "set":
                members = listpack.decode(blob, False)
                expected = SetValue(members, "listpack").ordered() if members else None
            else:
                expected = SetValue(decode_module.intset_members(blob, False), "intset").ordered()
        except PayloadError:
            expected = None
        for _ in codec_modes():
            try:
                value = decode_payload(payload, CodecOptions(max_rdb_version=11)).value
            except PayloadError:
                assert expected is None, (kind, blob)
                continue
            assert expected is not None, (kind, blob)
            got = list(value.index) if isinstance(value, ZSetValue) else value.ordered()  # type: ignore[union-attr]
            assert got == expected, (kind, blob)
