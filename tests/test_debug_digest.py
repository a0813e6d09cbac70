"""DEBUG DIGEST and DEBUG DIGEST-VALUE (``dumpling.digest``): Redis's SHA1 digests, equal across servers.

The same dataset of every type and encoding (TTLs, several databases, logically expired keys)
must digest the same in dumpling and in the Redis 7.0 oracle, as long as zset scores print the
same with 7.0's ``%.17g`` and 7.4's ``fpconv_dtoa`` (integers, halves).  Scores such as 0.1 and
hash-field TTLs (7.4 only) are checked with digests recorded from Redis 7.4.1.
"""

from __future__ import annotations

import pytest

from tests.servers import Pair, ServerProcess

ZEROS = b"+" + b"0" * 40 + b"\r\n"


def _load_every_type(p: Pair) -> list[str]:
    """Write the dataset to both servers; return the keys of database 0."""
    big = "x" * 100  # longer than the listpack value limits
    p.run([
        ("SET", "str", "hello"),
        ("SET", "int", "12345"),
        ("SET", "raw", "abc"),
        ("APPEND", "raw", "def"),
        ("SET", "ttl", "v", "EX", "1000"),
        ("RPUSH", "list", "a", "b", "1", "2", "c"),
        ("RPUSH", "biglist", *[f"e{i}" for i in range(300)], big),
        ("SADD", "intset", "1", "2", "3", "-100000"),
        ("SADD", "lpset", "a", "b", "7"),
        ("SADD", "htset", *[f"m{i}" for i in range(200)]),
        ("ZADD", "lpzset", "1", "a", "2.5", "b", "-3", "c", "0.25", "d", "inf", "e", "-inf", "f", "7", "8"),
        ("ZADD", "slzset", *[x for i in range(200) for x in (str(i / 2), f"m{i}")]),
        ("HSET", "lphash", "f1", "v1", "f2", "2", "3", "v3"),
        ("HSET", "hthash", *[x for i in range(200) for x in (f"f{i}", f"v{i}")]),
        ("XADD", "stream", "1-1", "f", "v", "g", "w"),
        ("XADD", "stream", "2-0", "f", "v2", "g", "w2"),
        ("XADD", "stream", "3-0", "other", "1"),
        ("XDEL", "stream", "2-0"),
        ("XGROUP", "CREATE", "stream", "grp", "0"),
        ("EXPIRE", "list", "5000"),
        ("PEXPIRE", "slzset", "90000"),
        ("SELECT", "5"),
        ("SET", "str", "hello"),
        ("LPUSH", "l", "a"),
        ("SELECT", "0"),
    ])
    return ["str", "int", "raw", "ttl", "list", "biglist", "intset", "lpset", "htset", "lpzset", "slzset",
            "lphash", "hthash", "stream", "nokey"]


def test_empty_dataset_is_forty_zeros(pair: Pair) -> None:
    assert pair.same("DEBUG", "DIGEST") == ZEROS
    assert pair.same("DEBUG", "DIGEST-VALUE", "nokey") == b"*1\r\n" + ZEROS
    pair.same("DEBUG", "DIGEST-VALUE")


def test_same_digest_as_redis(pair: Pair) -> None:
    keys = _load_every_type(pair)
    pair.same("OBJECT", "ENCODING", "slzset")
    digest = pair.same("DEBUG", "DIGEST")
    assert digest != ZEROS
    pair.same("DEBUG", "DIGEST-VALUE", *keys)
    # the order of list elements counts, the order of set members does not
    pair.same("RPUSH", "list", "z")
    assert pair.same("DEBUG", "DIGEST") != digest
    pair.same("SREM", "lpset", "a")
    pair.same("SADD", "lpset", "a")
    pair.same("DEBUG", "DIGEST-VALUE", "lpset")
    # a TTL is part of the digest; the database index too
    pair.same("PERSIST", "list")
    pair.same("DEBUG", "DIGEST")
    pair.same("MOVE", "str", "3")
    pair.same("DEBUG", "DIGEST")
    pair.same("DEBUG", "DIGEST", "extra")


def test_logically_expired_keys_are_digested(pair: Pair) -> None:
    pair.same("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        pair.same("SET", "gone", "v", "PX", "1")
        pair.same("SET", "kept", "v")
        pair.same("DEBUG", "SLEEP", "0.01")
        assert pair.same("DEBUG", "DIGEST-VALUE", "gone") != b"*1\r\n" + ZEROS
        pair.same("DEBUG", "DIGEST")
    finally:
        pair.both("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_digests_match_redis_7_4(dumpling_server: ServerProcess) -> None:
    """Recorded from Redis 7.4.1: fpconv score texts (7.0 digests 0.1 as 0.10000000000000001)
    and a hash field with a TTL (``!!hexpire!!``)."""
    with dumpling_server.raw() as conn:
        conn.call("FLUSHALL")
        conn.call("ZADD", "z", "0.1", "a", "814.389837", "b", "3", "c")
        conn.call("HSET", "h", "f", "v", "g", "w")
        conn.call("HPEXPIREAT", "h", "4102444800000", "FIELDS", "1", "f")
        for entry in ("1-1", "1-2"):
            conn.call("XADD", "x", entry, "a", entry[-1])
        conn.call("XADD", "x", "1-3", "b", "3")
        conn.call("XDEL", "x", "1-2")
        try:
            assert conn.call("DEBUG", "DIGEST-VALUE", "z", "h", "x") == (
                b"*3\r\n+fb6ded4aaf141bad1fe01faa6a2cc588952a4635\r\n"
                b"+355879033a5e790f0e021f3025ccea7312d9d282\r\n"
                b"+18b0588bf3204714ca497ff6c2930939bd09b6c3\r\n")
            assert conn.call("DEBUG", "DIGEST") == b"+0d07e12a3c30b5ba37e67406c0e08caddd4b16ec\r\n"
        finally:
            conn.call("FLUSHALL")


@pytest.mark.parametrize("resp", [2, 3])
def test_reply_shapes(dumpling_server: ServerProcess, resp: int) -> None:
    with dumpling_server.raw() as conn:
        if resp == 3:
            conn.call("HELLO", "3")
        conn.call("FLUSHALL")
        assert conn.call("DEBUG", "DIGEST-VALUE") == b"*0\r\n"
        assert conn.call("DEBUG", "DIGEST-VALUE", "a", "b") == b"*2\r\n" + ZEROS * 2
