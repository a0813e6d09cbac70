"""Small hashes HSET keeps packed: native HSET (``dumpling/_collections.c``) makes a new small hash
as its listpack bytes (``HashValue.packed``) and edits that listpack on later HSETs, where the
Python path (pure mode) builds a dict.  Random HSET-heavy sequences run on Redis, a compiled
dumpling and a pure one: replies byte for byte (HGETALL too: a listpack's order is its
insertion order), DUMP bodies byte for byte against Redis's (the listpack itself), and
MEMORY USAGE compiled against pure.  Redis's DUMPs are RESTOREd on all three (a restored listpack
hash is packed too, which HSET then edits).  Fields and values include canonical and non-canonical
integers (stored as integer entries or strings), the empty string and lengths on both sides
of ``hash-max-listpack-value``; the entry limit is low, so conversions come often.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from dumpling import accel
from dumpling.datatypes.hashes import HashValue
from dumpling.payload import listpack
from tests.fuzzing import scaled
from tests.servers import RawConnection, ServerProcess, encode_command, oracle_trio, parse_reply

MAX_ENTRIES = 6
MAX_VALUE = 16
TEXTS = ["f", "g", "h", "", "1", "0", "-1", "007", "-0", "127", "128", "-4096", "4095", "32767", "-32769",
         "8388608", "2147483648", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "1.5",
         "x" * MAX_VALUE, "y" * (MAX_VALUE + 1), "a b"]


@pytest.fixture(scope="module")
def trio() -> Iterator[list[ServerProcess]]:
    with oracle_trio(hash_max_listpack_entries=MAX_ENTRIES, hash_max_listpack_value=MAX_VALUE) as servers:
        yield servers


def _text(rng: random.Random) -> str:
    return rng.choice(TEXTS[:-3]) if rng.random() < 0.85 else rng.choice(TEXTS)


def _same(conns: list[RawConnection], *args: str) -> bytes:
    replies = [conn.call(*args) for conn in conns]
    assert replies[1:] == replies[:1] * 2, f"{args!r}: redis, compiled, pure: {replies!r}"
    return replies[0]


def _same_fields(conns: list[RawConnection], key: str) -> None:
    """HGETALL: byte for byte for a listpack (its order is defined), as mappings for a hashtable."""
    if _same(conns, "OBJECT", "ENCODING", key) != b"$9\r\nhashtable\r\n":
        _same(conns, "HGETALL", key)
        return
    replies = [parse_reply(conn.call("HGETALL", key)) for conn in conns]
    maps = [dict(zip(r[0::2], r[1::2], strict=True)) for r in replies]  # type: ignore[index]
    assert maps[1:] == maps[:1] * 2, key


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_packed_hset_sequences_against_redis(trio: list[ServerProcess], seed: int) -> None:
    rng = random.Random(seed)
    with trio[0].raw() as redis, trio[1].raw() as compiled, trio[2].raw() as pure:
        conns = [redis, compiled, pure]
        for conn in conns:
            conn.call("FLUSHALL")
        keys = [f"k{i}" for i in range(10)]
        for _ in range(scaled(1500, 300)):
            key = rng.choice(keys)
            op = rng.random()
            if op < 0.7:
                pairs = [x for _ in range(rng.choice([1, 1, 1, 2, 3])) for x in (_text(rng), _text(rng))]
                _same(conns, "HSET", key, *pairs)
            elif op < 0.76:
                _same_fields(conns, key)
            elif op < 0.8:
                _same(conns, "HLEN", key)
                _same(conns, "OBJECT", "ENCODING", key)
            elif op < 0.86:
                if _same(conns, "OBJECT", "ENCODING", key) != b"$8\r\nlistpack\r\n":
                    continue  # (a hashtable's DUMP lists its fields in its table's order)
                dumps = [parse_reply(conn.call("DUMP", key)) for conn in conns]
                bodies = [d[:-10] for d in dumps]  # type: ignore[index]  # (the footer: RDB version, CRC)
                assert bodies[1:] == bodies[:1] * 2, f"DUMP {key}: {dumps!r}"
                assert compiled.call("MEMORY", "USAGE", key) == pure.call("MEMORY", "USAGE", key)
            elif op < 0.9:
                _same(conns, "HDEL", key, _text(rng))
            elif op < 0.92:
                _same(conns, "COPY", key, rng.choice(keys), "REPLACE")
            elif op < 0.94:  # Redis's DUMP restored everywhere: a packed hash (or built, in pure mode) to edit
                payload = parse_reply(redis.call("DUMP", key))
                if payload is not None:
                    _same(conns, "RESTORE", rng.choice(keys), "0", payload, "REPLACE")  # type: ignore[arg-type]
            elif op < 0.96:
                _same(conns, "HGET", key, _text(rng))
            else:
                _same(conns, "DEL", key)
        for key in keys:
            _same_fields(conns, key)


@pytest.mark.skipif(accel.collections is None, reason="dumpling._collections not built")
def test_new_hash_is_born_packed_and_hset_keeps_it_packed() -> None:
    """In process: native HSET's new hash holds the listpack a dict of its fields encodes to, and
    an HSET that keeps it a listpack edits it there (a new bytes each time, never the old one
    changed: COPY shares it); a read builds the dict, after which HSET writes the dict."""
    from dumpling.config import Config
    from dumpling.dispatch import Server
    from dumpling.server import Client
    from tests.test_fastpath_fuzz import Transport

    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    data = server.keyspace.dbs[0].data

    def run(*args: bytes | str) -> bytes:
        transport.data.clear()
        client.data_received(encode_command(*args))
        return bytes(transport.data)

    assert run("HSET", "h", "f", "v", "n", "12", "f", "w") == b":2\r\n"
    value = data[b"h"]
    assert type(value) is HashValue
    first = value.packed_listpack()
    assert first == listpack.encode_dict_py({b"f": b"w", b"n": b"12"})
    assert run("COPY", "h", "c") == b":1\r\n"
    assert run("HSET", "h", "n", "-700", "g", "") == b":1\r\n"
    assert value.packed_listpack() == listpack.encode_dict_py({b"f": b"w", b"n": b"-700", b"g": b""})
    assert data[b"c"].packed_listpack() is first and first == listpack.encode_dict_py({b"f": b"w", b"n": b"12"})
    assert len(value) == 3 and run("OBJECT", "ENCODING", "h") == b"$8\r\nlistpack\r\n"
    assert run("HGET", "h", "n") == b"$4\r\n-700\r\n"  # built by the read
    assert value.packed_listpack() is None
    assert run("HSET", "h", "z", "1") == b":1\r\n" and value.fields == {b"f": b"w", b"n": b"-700", b"g": b"", b"z": b"1"}
    # past hash-max-listpack-entries: Python's conversion
    assert run("CONFIG", "SET", "hash-max-listpack-entries", "3") == b"+OK\r\n"
    assert run("HSET", "big", *[x for i in range(4) for x in (f"f{i}", "v")]) == b":4\r\n"
    assert run("HSET", "three", "a", "1", "b", "2", "c", "3") == b":3\r\n" and data[b"three"].packed_listpack()
    assert run("HSET", "three", "d", "4") == b":1\r\n"
    assert data[b"big"].encoding == data[b"three"].encoding == "hashtable"
