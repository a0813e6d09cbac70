"""The payload codec's last corpus mismatches (issue 13, "while here"), against redis-server."""

from __future__ import annotations

from dumpling.payload import decode_payload, ziplist
from dumpling.payload.envelope import seal
from dumpling.payload.primitives import append_string


def _ziplist_zset_payload(entries: list[bytes], version: int = 9) -> bytes:
    body = bytearray([12])  # ZSET_ZIPLIST, as Redis 5.0 .. 6.2 write it
    append_string(body, ziplist.encode(entries), False)
    return seal(bytes(body), version)


def test_negative_zero_score_of_an_old_ziplist_stays_negative_zero(pair) -> None:
    payload = _ziplist_zset_payload([b"a", b"-0", b"c", b"0", b"b", b"1"])  # in score order, as written
    pair.same("RESTORE", "z", "0", payload)
    pair.same("ZSCORE", "z", "a")  # -0
    pair.same("ZSCORE", "z", "c")  # 0
    pair.same("ZRANGE", "z", "0", "-1", "WITHSCORES")
    pair.same("DUMP", "z")  # the "-0" entry is kept as text
    pair.same("ZADD", "n", "-0", "x")
    pair.same("ZSCORE", "n", "x")  # ZADD's -0 is 0
    pair.same("DUMP", "n")


def test_negative_zero_survives_decode() -> None:
    value = decode_payload(_ziplist_zset_payload([b"a", b"-0"])).value
    assert str(value.scores[b"a"]) == "-0.0"
