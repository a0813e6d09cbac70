"""Golden vectors captured from real servers (spec §12, §4.8, §4.10): we decode them and write them byte for byte."""

from __future__ import annotations

import math

import pytest

from dumpling.datatypes import HashValue, ListValue, SetValue, StreamValue, ZSetValue
from dumpling.datatypes.streams import Consumer, ConsumerGroup, PendingEntry
from dumpling.payload import CodecOptions, PayloadError, decode_payload, encode_payload, listpack
from dumpling.payload.envelope import seal


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# name -> (value, body, {footer version: footer}) from §12: 7.0.15 (10), 7.2.6 = valkey 8.0.1 (11), 7.4.1 (12)
VECTORS = {
    "set_bar": (
        b"bar",
        "00 03 62 61 72",
        {10: "0a 00 e6 be 49 60 ee 66 fd 17", 11: "0b 00 8f 61 f4 13 13 f9 14 9e", 12: "0c 00 2d c8 7d a0 14 4c 63 5e"},
    ),
    "set_1": (
        b"1",
        "00 c0 01",
        {10: "0a 00 26 78 e7 b6 d1 01 11 fc", 11: "0b 00 4f a7 5a c5 2c 9e f8 75", 12: "0c 00 ed 0e d3 76 2b 2b 8f b5"},
    ),
    "set_-129": (
        b"-129",
        "00 c1 7f ff",
        {10: "0a 00 17 60 82 28 54 80 84 80", 11: "0b 00 7e bf 3f 5b a9 1f 6d 09", 12: "0c 00 dc 16 b6 e8 ae aa 1a c9"},
    ),
    "set_100000": (
        b"100000",
        "00 c2 a0 86 01 00",
        {10: "0a 00 f1 24 03 50 6f 2f a6 74", 11: "0b 00 98 fb be 23 92 b0 4f fd", 12: "0c 00 3a 52 37 90 95 05 38 3d"},
    ),
    "set_12345678901": (
        b"12345678901",
        "00 0b 31 32 33 34 35 36 37 38 39 30 31",
        {10: "0a 00 30 4e 52 d7 27 17 65 10", 11: "0b 00 59 91 ef a4 da 88 8c 99", 12: "0c 00 fb 38 66 17 dd 3d fb 59"},
    ),
    "set_empty": (
        b"",
        "00 00",
        {10: "0a 00 5d 9b 5c 40 0f 7f a2 da", 11: "0b 00 34 44 e1 33 f2 e0 4b 53", 12: "0c 00 96 ed 68 80 f5 55 3c 93"},
    ),
    "set_30a": (
        b"a" * 30,
        "00 c3 09 1e 01 61 61 e0 11 00 01 61 61",
        {10: "0a 00 45 73 7c bb 2b 64 7b bb", 11: "0b 00 2c ac c1 c8 d6 fb 92 32", 12: "0c 00 8e 05 48 7b d1 4e e5 f2"},
    ),
    "rpush_abc": (
        ListValue([b"a", b"b", b"c"]),
        "12 01 02 10 10 00 00 00 03 00 81 61 02 81 62 02 81 63 02 ff",
        {10: "0a 00 c8 18 b9 0c 95 33 52 9e", 11: "0b 00 a1 c7 04 7f 68 ac bb 17", 12: "0c 00 03 6e 8d cc 6f 19 cc d7"},
    ),
    "rpush_123": (
        ListValue([b"1", b"2", b"3"]),
        "12 01 02 0d 0d 00 00 00 03 00 01 01 02 01 03 01 ff",
        {10: "0a 00 ca ba 35 84 f9 8a d7 ae", 11: "0b 00 a3 65 88 f7 04 15 3e 27", 12: "0c 00 01 cc 01 44 03 a0 49 e7"},
    ),
    "sadd_123": (
        SetValue([b"1", b"2", b"3"], "intset"),
        "0b 0e 02 00 00 00 03 00 00 00 01 00 02 00 03 00",
        {10: "0a 00 a5 02 5c e2 6d 6e 4d 1b", 11: "0b 00 cc dd e1 91 90 f1 a4 92", 12: "0c 00 6e 74 68 22 97 44 d3 52"},
    ),
    "zadd_1a_2.5b": (
        ZSetValue.from_pairs([(b"a", 1.0), (b"b", 2.5)], "listpack"),
        "11 14 14 00 00 00 04 00 81 61 02 01 01 81 62 02 83 32 2e 35 04 ff",
        {10: "0a 00 d4 4c 6e a4 f6 44 d9 d7", 11: "0b 00 bd 93 d3 d7 0b db 30 5e", 12: "0c 00 1f 3a 5a 64 0c 6e 47 9e"},
    ),
    "hset_f_v": (
        HashValue({b"f": b"v"}),
        "10 0d 0d 00 00 00 02 00 81 66 02 81 76 02 ff",
        {10: "0a 00 20 f1 3d 44 23 54 08 9d", 11: "0b 00 49 2e 80 37 de cb e1 14", 12: "0c 00 eb 87 09 84 d9 7e 96 d4"},
    ),
    "hset_f_1": (
        HashValue({b"f": b"1"}),
        "10 0c 0c 00 00 00 02 00 81 66 02 01 01 ff",
        {10: "0a 00 31 ba 08 19 49 a0 e3 dd", 11: "0b 00 58 65 b5 6a b4 3f 0a 54", 12: "0c 00 fa cc 3c d9 b3 8a 7d 94"},
    ),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
@pytest.mark.parametrize("version", [10, 11, 12])
def test_vector_both_directions(name: str, version: int) -> None:
    value, body, footers = VECTORS[name]
    payload = h(body + footers[version])
    assert encode_payload(value, version) == payload
    decoded = decode_payload(payload)
    assert decoded.rdb_version == version
    assert decoded.type_byte == payload[0]
    got = decoded.value
    if isinstance(value, bytes):
        assert got == value
    elif isinstance(value, ListValue):
        assert list(got.items) == list(value.items)
    elif isinstance(value, SetValue):
        assert got.members == value.members
    elif isinstance(value, ZSetValue):
        assert got.scores == value.scores
    elif isinstance(value, HashValue):
        assert dict(got.fields) == dict(value.fields)  # (a hashtable's fields are a KeyTable)


def test_sadd_single_member_per_version() -> None:
    value = SetValue([b"a"], "listpack")
    assert encode_payload(value, 10) == h("02 01 01 610a 00 62 96 e9 7e 44 d2 1a 6d")
    assert encode_payload(value, 11) == h("14 0a 0a 00 00 00 01 00 81 61 02 ff0b 00 f7 df 7f db 99 ef 7b 74")
    assert encode_payload(value, 12) == h("14 0a 0a 00 00 00 01 00 81 61 02 ff0c 00 55 76 f6 68 9e 5a 0c b4")
    assert decode_payload(h("14 0a 0a 00 00 00 01 00 81 61 02 ff 0b 00 f7 df 7f db 99 ef 7b 74")).value.members == {
        b"a"
    }


STREAM_70 = (
    "13 01 10 00000000000000010000000000000001 1d 1d000000 0a00 01 01 00 01 01 01 8166 02 00 01 02 01 00 01 00 01"
    " 8176 02 04 01 ff 01 01 01 01 01 00 00 01 00"
)


def _stream_1_1() -> StreamValue:
    s = StreamValue()
    s.entries[(1, 1)] = [b"f", b"v"]
    s.last_id = (1, 1)
    s.first_id = (1, 1)
    s.entries_added = 1
    return s


def test_stream_xadd_vector() -> None:
    body70 = bytes.fromhex(STREAM_70.replace(" ", ""))
    p70 = body70 + bytes.fromhex("0a00ff55ab626ac035db")
    p72 = b"\x15" + body70[1:] + bytes.fromhex("0b00e55aacd2a8048c73")
    p74 = b"\x15" + body70[1:] + bytes.fromhex("0c0047f32561afb1fbb3")
    stream = _stream_1_1()
    assert encode_payload(stream, 10) == p70
    assert encode_payload(stream, 11) == p72
    assert encode_payload(stream, 12) == p74
    for payload in (p70, p72, p74):
        got = decode_payload(payload).value
        assert dict(got.entries) == {(1, 1): [b"f", b"v"]}
        assert got.last_id == (1, 1) and got.first_id == (1, 1) and got.entries_added == 1


def test_stream_with_group_worked_example() -> None:
    """§4.10's 7.2.6 example: three entries over two field sets, one group, one pending entry."""
    s = StreamValue()
    s.entries[(5, 0)] = [b"a", b"1", b"b", b"2"]
    s.entries[(5, 1)] = [b"a", b"3", b"b", b"4"]
    s.entries[(6, 0)] = [b"c", b"x"]
    s.last_id, s.first_id, s.entries_added = (6, 0), (5, 0), 3
    nack = PendingEntry(b"alice", 1700000000123, 1)
    alice = Consumer(b"alice", 1700000000123, 1700000000123)
    alice.pending[(5, 0)] = nack
    group = ConsumerGroup(b"g", (5, 0), 1)
    group.pending[(5, 0)] = nack
    group.consumers[b"alice"] = alice
    s.groups[b"g"] = group
    payload = encode_payload(s, 11)
    node = decode_payload(payload)
    lp_elements = [3, 0, 2, b"a", b"b", 0, 2, 0, 0, 1, 2, 5, 2, 0, 1, 3, 4, 5, 0, 1, 0, 1, b"c", b"x", 6]
    assert len(listpack.encode_mixed(lp_elements)) == 61
    body = payload[:-10]
    assert body.startswith(bytes.fromhex("15 01 10 0000000000000005 0000000000000000".replace(" ", "")))
    # the 61-byte listpack is LZF-compressed like in the real dump (c3 37 3d ...)
    assert body[19:22] == bytes.fromhex("c3373d")
    tail = bytes.fromhex("03 0600 0500 0000 03 01 0167 0500 01 01".replace(" ", ""))
    assert tail in body
    got = node.value
    assert list(got.entries) == [(5, 0), (5, 1), (6, 0)]
    assert got.groups[b"g"].consumers[b"alice"].pending[(5, 0)] is got.groups[b"g"].pending[(5, 0)]


def test_group_created_at_dollar_has_entries_read_minus_one() -> None:
    s = _stream_1_1()
    s.groups[b"g2"] = ConsumerGroup(b"g2", (1, 1), -1)
    body = encode_payload(s, 12)[:-10]
    assert body.endswith(bytes.fromhex("01 02 6732 01 01 81 ffffffffffffffff 00 00".replace(" ", "")))
    assert decode_payload(encode_payload(s, 12)).value.groups[b"g2"].entries_read == -1


def test_zset_score_texts_per_version() -> None:
    z = ZSetValue.from_pairs([(b"a", 0.1), (b"b", -2.0), (b"c", 1e300)], "listpack")
    body72 = "11 20 20000000 0600 8162 02 dffe 02 8161 02 83302e31 04 8163 02 86 31652b333030 07 ff"
    assert encode_payload(z, 11)[:-10].hex() == body72.replace(" ", "")
    assert encode_payload(z, 12)[:-10].hex() == body72.replace(" ", "")
    v70 = decode_payload(encode_payload(z, 10)).value
    assert v70.scores == z.scores
    assert b"0.10000000000000001" in encode_payload(z, 10, CodecOptions(rdbcompression=False))


def test_skiplist_zset_is_written_highest_first() -> None:
    z = ZSetValue.from_pairs([(b"a", 0.1), (b"b", math.inf)], "skiplist")
    expected = "05 02 01 62 000000000000f07f 01 61 9a9999999999b93f".replace(" ", "")
    assert encode_payload(z, 10)[:-10].hex() == expected
    assert decode_payload(encode_payload(z, 10), CodecOptions(zset_max_listpack_entries=0)).value.scores == z.scores


def test_intset_vectors() -> None:
    assert encode_payload(SetValue([b"1", b"70000", b"-5"], "intset"), 12)[:-10].hex() == (
        "0b14" + "04000000 03000000 fbffffff 01000000 70110100".replace(" ", "")
    )
    assert encode_payload(SetValue([b"1", b"1099511627776"], "intset"), 12)[:-10].hex() == (
        "0b18" + "08000000 02000000 0100000000000000 0000000000010000".replace(" ", "")
    )


def test_long_string_vector() -> None:
    assert encode_payload(b"x" * 100, 12)[:-10] == h("00 c3 09 40 64 01 78 78 e0 57 00 01 78 78")


def test_hash_field_ttl_vectors_74() -> None:
    """§4.8: HSET k a 1 b 2 c 3 with a/b TTLs (type 25), and the hashtable form (type 24)."""
    lpex = HashValue({b"a": b"1", b"b": b"2", b"c": b"3"}, {b"a": 2524600800000, b"b": 2524600801000}, "listpackex")
    body = (
        "19 0013efcd4b020000 2c 2c00000009 00 8161 02 0101 f40013efcd4b020000 09 8162 02 0201"
        " f4e816efcd4b020000 09 8163 02 0301 0001 ff"
    )
    assert encode_payload(lpex, 12)[:-10].hex() == body.replace(" ", "")
    got = decode_payload(encode_payload(lpex, 12)).value
    assert got.encoding == "listpackex"
    assert got.field_expires == lpex.field_expires and got.fields == lpex.fields

    table = HashValue({b"b": b"2", b"a": b"1"}, {b"a": 2524600800000}, "hashtable")
    # (a hashtable's fields in its table's order, as Redis writes its dict's)
    entries = {b"b": "00 0162 c002", b"a": "01 0161 c001"}
    body24 = "18 0013efcd4b020000 02 " + " ".join(entries[field] for field in table.fields)
    payload = encode_payload(table, 12)
    assert payload[:-10].hex() == body24.replace(" ", "")
    got = decode_payload(payload, CodecOptions(hash_max_listpack_entries=0)).value
    assert got.encoding == "hashtable" and got.field_expires == {b"a": 2524600800000}
    assert decode_payload(payload).value.encoding == "listpackex"


def test_listpackex_with_all_ttls_persisted_stays_25() -> None:
    value = HashValue({b"a": b"1"}, {}, "listpackex")
    payload = encode_payload(value, 12)
    assert payload[0] == 25 and payload[1:9] == bytes(8)
    got = decode_payload(payload).value
    assert got.encoding == "listpackex" and got.field_expires == {}


def test_plain_node_vector_74() -> None:
    value = ListValue([b"x" * 9000, b"y"], "quicklist")
    body = encode_payload(value, 12)[:-10]
    assert body.startswith(bytes.fromhex("12 02 01 c3 40 6f 63 28 01 78 78 e0 ff 00".replace(" ", "")))
    assert body.endswith(bytes.fromhex("02 0a 0a000000 0100 8179 02 ff".replace(" ", "")))
    # Redis 7.2 writes the big element in a packed node of its own.
    body72 = encode_payload(value, 11)[:-10]
    assert body72[:3] == bytes.fromhex("120202")
    got = decode_payload(encode_payload(value, 12)).value
    assert list(got.items) == [b"x" * 9000, b"y"] and got.encoding == "quicklist"


def test_valkey_future_version_vector() -> None:
    payload = bytes.fromhex("0003626172de000f59557a61d3ece0")
    with pytest.raises(PayloadError, match="version or checksum"):
        decode_payload(payload, CodecOptions(rdb_version_check="strict"))
    assert decode_payload(payload, CodecOptions(rdb_version_check="relaxed")).value == b"bar"


def test_seal_helper_matches_real_footer() -> None:
    assert seal(bytes.fromhex("0003626172"), 10).hex() == "00036261720a00e6be4960ee66fd17"
