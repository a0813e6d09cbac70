"""Every object type through the codec: round trips per target version, post-RESTORE encodings, legacy
layouts Debian's Redis 7.0 cannot produce (zipmap, ziplists, quicklist v1, stream v1/v3, field TTLs,
Valkey 80), the version gate, and the never-lossy version bump."""

from __future__ import annotations

import math
import random
import struct

import pytest

from dumpling.datatypes import HashValue, ListValue, SetValue, StreamValue, ZSetValue
from dumpling.datatypes.streams import Consumer, ConsumerGroup, PendingEntry
from dumpling.payload import (
    CodecOptions,
    PayloadError,
    check_envelope,
    decode_payload,
    encode_payload,
    listpack,
    min_rdb_version_for,
    payload_version_for,
    string_encoding,
    ziplist,
)
from dumpling.payload.envelope import seal
from dumpling.payload.primitives import append_len, append_string

ALL_VERSIONS = [6, 7, 8, 9, 10, 11, 12, 80]


def rdb_string(s: bytes) -> bytes:
    out = bytearray()
    append_string(out, s, False)
    return bytes(out)


def rdb_len(n: int) -> bytes:
    out = bytearray()
    append_len(out, n)
    return bytes(out)


def decode(body: bytes, version: int = 9, **options: object) -> object:
    return decode_payload(seal(body, version), CodecOptions(**options)).value  # type: ignore[arg-type]


def refuses(body: bytes, version: int = 9, **options: object) -> None:
    with pytest.raises(PayloadError, match="Bad data format"):
        decode_payload(seal(body, version), CodecOptions(**options))  # type: ignore[arg-type]


def logical(value: object, active_from_seen: bool = False) -> object:
    """A comparable view of any value (``active_from_seen``: stream consumers' active time
    as a payload without it - types 15 and 19 - reloads it: the seen time)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, ListValue):
        return list(value.items)
    if isinstance(value, SetValue):
        return set(value.members)
    if isinstance(value, ZSetValue):
        return dict(value.scores)
    if isinstance(value, HashValue):
        return dict(value.fields), dict(value.field_expires)
    if isinstance(value, StreamValue):
        groups = {}
        for name, g in value.groups.items():
            pel = {i: (p.consumer, p.delivery_time_ms, p.delivery_count) for i, p in g.pending.items()}
            consumers = {n: (c.seen_time_ms, c.seen_time_ms if active_from_seen else c.active_time_ms, list(c.pending))
                         for n, c in g.consumers.items()}
            groups[name] = (g.last_id, g.entries_read, pel, consumers)
        return (
            dict(value.entries),
            value.last_id,
            value.first_id,
            value.entries_added,
            value.max_deleted_id,
            groups,
        )
    raise TypeError(value)


def sample_stream(active_equals_seen: bool = False) -> StreamValue:
    s = StreamValue()
    for i in range(250):
        fields = [b"a", b"%d" % i, b"b", b"x" * (i % 7)] if i % 5 else [b"other", b"%d" % i]
        s.entries[(1000 + i // 3, i % 3)] = fields
    s.last_id = s.entries.keys()[-1]
    s.first_id = s.entries.keys()[0]
    s.entries_added = len(s.entries)
    group = ConsumerGroup(b"g1", s.entries.keys()[10], 11)
    for name, ids in ((b"alice", [0, 3, 7]), (b"bob", [9])):
        seen = 1700000000000 + len(name)
        consumer = Consumer(name, seen, seen if active_equals_seen else seen + 5)
        for k in ids:
            entry_id = s.entries.keys()[k]
            nack = PendingEntry(name, 1700000000500 + k, k + 1)
            group.pending[entry_id] = nack
            consumer.pending[entry_id] = nack
        group.consumers[name] = consumer
    group.consumers[b"idle"] = Consumer(b"idle", 1, 1 if active_equals_seen else -1)
    s.groups[b"g1"] = group
    s.groups[b"g0"] = ConsumerGroup(b"g0", s.last_id, s.entries_added)
    return s


SAMPLES: dict[str, object] = {
    "string": b"hello",
    "string_int": b"-12345",
    "string_big": bytes(range(256)) * 40,
    "string_empty": b"",
    "list_small": ListValue([b"a", b"1", b"", b"-70000", b"x" * 100], "listpack"),
    "list_big": ListValue([b"e%d" % i for i in range(3000)] + [b"y" * 9000, b"z"], "quicklist"),
    "set_intset": SetValue([b"1", b"-40000", b"5000000000"], "intset"),
    "set_listpack": SetValue([b"a", b"b", b"12"], "listpack"),
    "set_hashtable": SetValue([b"m%d" % i for i in range(700)], "hashtable"),
    "zset_listpack": ZSetValue.from_pairs([(b"a", 1.0), (b"b", 0.1), (b"c", -math.inf), (b"d", 1e300)], "listpack"),
    "zset_skiplist": ZSetValue.from_pairs([(b"m%d" % i, i / 7) for i in range(300)] + [(b"i", math.inf)], "skiplist"),
    "hash_listpack": HashValue({b"f": b"v", b"1": b"2", b"e": b""}, None, "listpack"),
    "hash_hashtable": HashValue({b"f%d" % i: b"v" * (i % 80) for i in range(600)}, None, "hashtable"),
    "hash_ttl_listpackex": HashValue({b"a": b"1", b"b": b"2", b"c": b"3"}, {b"b": 5000, b"a": 9000}, "listpackex"),
    "hash_ttl_hashtable": HashValue({b"f%d" % i: b"v" for i in range(600)}, {b"f3": 123456, b"f9": 7}, "hashtable"),
    "stream": sample_stream(),
    "stream_v2_compatible": sample_stream(active_equals_seen=True),
}


@pytest.mark.parametrize("version", ALL_VERSIONS)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_every_type_every_version(name: str, version: int) -> None:
    value = SAMPLES[name]
    payload = encode_payload(value, version)  # type: ignore[arg-type]
    written = payload_version_for(value, version)  # type: ignore[arg-type]
    assert payload[-10] | payload[-9] << 8 == written
    assert written == version or written == min_rdb_version_for(value)  # type: ignore[arg-type]
    options = CodecOptions(max_rdb_version=80)
    expected = logical(value, active_from_seen=written < 11)
    assert logical(decode_payload(payload, options).value) == expected
    deep = CodecOptions(max_rdb_version=80, sanitize_payload="yes")
    assert logical(decode_payload(payload, deep).value) == expected


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_reencoding_a_decoded_value_is_stable(name: str) -> None:
    value = SAMPLES[name]
    payload = encode_payload(value, 12)  # type: ignore[arg-type]
    again = encode_payload(decode_payload(payload).value, 12)
    if not isinstance(value, (SetValue, HashValue)) or value.encoding != "hashtable":
        assert again == payload


def test_types_written_per_version() -> None:
    def type_of(name: str, version: int) -> int:
        return encode_payload(SAMPLES[name], version)[0]  # type: ignore[arg-type]

    # the 100-byte element makes it a linked list on 6
    assert [type_of("list_small", v) for v in (6, 7, 9, 10, 12)] == [1, 14, 14, 18, 18]
    assert encode_payload(ListValue([b"a", b"1"]), 6)[0] == 10
    assert type_of("list_big", 6) == 1
    assert [type_of("set_listpack", v) for v in (6, 10, 11, 12, 80)] == [2, 2, 20, 20, 20]
    assert [type_of("set_intset", v) for v in (6, 12)] == [11, 11]
    assert [type_of("zset_listpack", v) for v in (6, 9, 10, 12)] == [12, 12, 17, 17]
    assert [type_of("zset_skiplist", v) for v in (6, 7, 8, 12)] == [3, 3, 5, 5]
    assert [type_of("hash_listpack", v) for v in (6, 9, 10, 12)] == [13, 13, 16, 16]
    assert [type_of("hash_hashtable", v) for v in (6, 12)] == [4, 4]
    assert [type_of("hash_ttl_listpackex", v) for v in (6, 10, 12, 80)] == [25, 25, 25, 22]
    assert [type_of("hash_ttl_hashtable", v) for v in (9, 12, 80)] == [24, 24, 22]
    assert [type_of("stream", v) for v in (9, 10, 11, 12, 80)] == [19, 19, 21, 21, 21]
    assert [type_of("stream_v2_compatible", v) for v in (9, 10, 11)] == [19, 19, 21]


def test_min_rdb_version_for() -> None:
    assert min_rdb_version_for(b"x") == 6
    assert min_rdb_version_for(SAMPLES["hash_ttl_listpackex"]) == 12  # type: ignore[arg-type]
    assert min_rdb_version_for(HashValue({b"a": b"1"}, {}, "listpackex")) == 6
    # Active times do not raise the version: a type-19 stream reloads them from the seen times.
    assert min_rdb_version_for(SAMPLES["stream"]) == 10  # type: ignore[arg-type]
    assert min_rdb_version_for(SAMPLES["stream_v2_compatible"]) == 10  # type: ignore[arg-type]
    simple = StreamValue()
    simple.entries[(1, 0)] = [b"f", b"v"]
    simple.last_id = simple.first_id = (1, 0)
    simple.entries_added = 1
    assert min_rdb_version_for(simple) == 9
    simple.groups[b"g"] = ConsumerGroup(b"g", (1, 0), 1)  # entries_read equals the v1 estimate
    assert min_rdb_version_for(simple) == 9
    assert encode_payload(simple, 9)[0] == 15
    simple.groups[b"g"].entries_read = -1
    assert min_rdb_version_for(simple) == 10
    with pytest.raises(ValueError):
        encode_payload(b"x", 13)


# ---------------------------------------------------------------- post-RESTORE encodings


def test_string_encodings() -> None:
    assert string_encoding(b"123") == "int"
    assert string_encoding(b"x" * 44) == "embstr"
    assert string_encoding(b"x" * 45) == "raw"
    assert string_encoding(b"01") == "embstr"
    assert decode_payload(encode_payload(b"-5", 12)).encoding == "int"


def test_hash_conversions() -> None:
    small = HashValue({b"f%d" % i: b"v" for i in range(10)})
    assert decode_payload(encode_payload(small, 12)).encoding == "listpack"
    assert decode_payload(encode_payload(small, 12), CodecOptions(hash_max_listpack_entries=5)).encoding == "hashtable"
    # Type 4 with a long value switches to a hashtable while loading.
    table = HashValue({b"a": b"1", b"b": b"x" * 65}, None, "hashtable")
    assert decode_payload(encode_payload(table, 12)).encoding == "hashtable"
    short = HashValue({b"a": b"1", b"b": b"x"}, None, "hashtable")
    assert decode_payload(encode_payload(short, 12)).encoding == "listpack"
    # Listpack payloads only check the count, not value lengths.
    long_lp = HashValue({b"a": b"x" * 100}, None, "listpack")
    assert decode_payload(encode_payload(long_lp, 12)).encoding == "listpack"


def test_set_conversions() -> None:
    ints = SetValue([b"%d" % i for i in range(600)], "hashtable")
    assert decode_payload(encode_payload(ints, 12)).encoding == "hashtable"
    assert decode_payload(encode_payload(SetValue([b"1", b"2"], "hashtable"), 12)).encoding == "intset"
    assert decode_payload(encode_payload(SetValue([b"1", b"a"], "hashtable"), 12)).encoding == "listpack"
    assert decode_payload(encode_payload(SetValue([b"a" * 65], "hashtable"), 12)).encoding == "hashtable"
    mixed = SetValue([b"%d" % i for i in range(200)] + [b"x"], "hashtable")
    assert decode_payload(encode_payload(mixed, 12)).encoding == "hashtable"
    intset_value = SetValue([b"%d" % i for i in range(600)], "intset")
    assert decode_payload(encode_payload(intset_value, 12)).encoding == "hashtable"
    opts = CodecOptions(set_max_intset_entries=1000)
    assert decode_payload(encode_payload(intset_value, 12), opts).encoding == "intset"
    lp = SetValue([b"m%d" % i for i in range(100)], "listpack")
    assert decode_payload(encode_payload(lp, 12)).encoding == "listpack"
    assert decode_payload(encode_payload(lp, 12), CodecOptions(set_max_listpack_entries=50)).encoding == "hashtable"


def test_zset_conversions() -> None:
    small = ZSetValue.from_pairs([(b"a", 1.0)], "skiplist")
    assert decode_payload(encode_payload(small, 12)).encoding == "listpack"
    long_member = ZSetValue.from_pairs([(b"a" * 65, 1.0)], "skiplist")
    assert decode_payload(encode_payload(long_member, 12)).encoding == "skiplist"
    many = ZSetValue.from_pairs([(b"m%d" % i, float(i)) for i in range(200)], "listpack")
    assert decode_payload(encode_payload(many, 12)).encoding == "skiplist"
    opts = CodecOptions(zset_max_listpack_entries=300)
    assert decode_payload(encode_payload(many, 12), opts).encoding == "listpack"


def test_list_conversions() -> None:
    assert decode_payload(encode_payload(ListValue([b"x", b"5"], "quicklist"), 12)).encoding == "listpack"
    assert decode_payload(encode_payload(ListValue([b"x", b"5"], "quicklist"), 6)).value.encoding == "quicklist"
    linked = b"\x01" + rdb_len(2) + rdb_string(b"x") + rdb_string(b"5")
    assert decode(linked).encoding == "listpack"  # type: ignore[attr-defined]
    big = ListValue([b"v" * 100 for _ in range(200)], "quicklist")
    assert decode_payload(encode_payload(big, 12)).encoding == "quicklist"
    opts = CodecOptions(list_max_listpack_size=-5)
    assert decode_payload(encode_payload(big, 12), opts).encoding == "quicklist"  # still two nodes in the payload
    assert decode(b"\x01" + rdb_len(200) + rdb_string(b"v" * 100) * 200, list_max_listpack_size=-5).encoding == (
        "listpack"  # type: ignore[attr-defined]
    )
    assert decode(b"\x01" + rdb_len(3) + rdb_string(b"v") * 3, list_max_listpack_size=2).encoding == "quicklist"  # type: ignore[attr-defined]


# ---------------------------------------------------------------- legacy layouts


def test_zipmap_hash_type_9() -> None:
    zm = bytes.fromhex("02 03 666f6f 03 00 626172 05 68656c6c6f 05 00 776f726c64 ff".replace(" ", ""))
    value = decode(b"\x09" + rdb_string(zm), 9)
    assert value.fields == {b"foo": b"bar", b"hello": b"world"}  # type: ignore[attr-defined]
    assert value.encoding == "listpack"  # type: ignore[attr-defined]
    assert decode(b"\x09" + rdb_string(zm), 9, hash_max_listpack_value=4).encoding == "hashtable"  # type: ignore[attr-defined]
    refuses(b"\x09" + rdb_string(bytes.fromhex("00ff")))


def test_ziplist_list_type_10() -> None:
    elements = [b"a", b"b", b"12", b"-200", b"70000", b"5000000000"]
    value = decode(b"\x0a" + rdb_string(ziplist.encode(elements)), 9)
    assert list(value.items) == elements  # type: ignore[attr-defined]
    assert value.encoding == "quicklist"  # type: ignore[attr-defined]
    refuses(b"\x0a" + rdb_string(ziplist.encode([])))


def test_quicklist_v1_type_14() -> None:
    nodes = [ziplist.encode([b"a", b"1"]), ziplist.encode([]), ziplist.encode([b"b" * 300, b"-5"])]
    body = b"\x0e" + rdb_len(len(nodes)) + b"".join(rdb_string(n) for n in nodes)
    value = decode(body, 9)
    assert list(value.items) == [b"a", b"1", b"b" * 300, b"-5"]  # type: ignore[attr-defined]
    assert value.encoding == "quicklist"  # type: ignore[attr-defined]
    single = b"\x0e" + rdb_len(1) + rdb_string(ziplist.encode([b"a", b"1"]))
    assert decode(single, 7).encoding == "listpack"  # type: ignore[attr-defined]
    refuses(b"\x0e" + rdb_len(1) + rdb_string(ziplist.encode([])))


def test_ziplist_hash_and_zset_types_12_13() -> None:
    h = decode(b"\x0d" + rdb_string(ziplist.encode([b"f", b"1", b"g", b"x"])), 9)
    assert h.fields == {b"f": b"1", b"g": b"x"} and h.encoding == "listpack"  # type: ignore[attr-defined]
    z = decode(b"\x0c" + rdb_string(ziplist.encode([b"a", b"2.5", b"b", b"3"])), 9)
    assert z.scores == {b"a": 2.5, b"b": 3.0} and z.encoding == "listpack"  # type: ignore[attr-defined]
    refuses(b"\x0d" + rdb_string(ziplist.encode([b"f", b"1", b"f", b"2"])))  # duplicates, always checked
    refuses(b"\x0d" + rdb_string(ziplist.encode([b"f", b"1", b"g"])))  # odd count
    refuses(b"\x0c" + rdb_string(ziplist.encode([b"a", b"1", b"a", b"2"])))
    refuses(b"\x0d" + rdb_string(ziplist.encode([])))


def test_zset_v1_type_3_string_doubles() -> None:
    body = (
        b"\x03" + rdb_len(3) + rdb_string(b"a") + b"\x031.5" + rdb_string(b"b") + b"\xfe" + rdb_string(b"c") + b"\xff"
    )
    assert decode(body, 6).scores == {b"a": 1.5, b"b": math.inf, b"c": -math.inf}  # type: ignore[attr-defined]
    refuses(b"\x03" + rdb_len(1) + rdb_string(b"a") + b"\xfd")  # NaN
    refuses(b"\x03" + rdb_len(1) + rdb_string(b"a") + b"\x03abc")  # unparsable


def test_linked_list_with_int_encoded_element() -> None:
    body = b"\x01" + rdb_len(2) + b"\xc0\x05" + rdb_string(b"x")
    assert list(decode(body, 6).items) == [b"5", b"x"]  # type: ignore[attr-defined]


def stream_v1_body() -> bytes:
    """A Redis 5/6 (type 15) stream: entries 1-1 and 1-2 (deleted), group g at 1-1 with one pending entry."""
    node = listpack.encode_mixed([2, 1, 1, b"f", 0, 2, 0, 1, b"v1", 4, 3, 0, 2, b"v2", 4])
    body = b"\x0f" + rdb_len(1) + rdb_string(struct.pack(">QQ", 1, 0)) + rdb_string(node)
    body += rdb_len(1) + rdb_len(1) + rdb_len(2)  # length 1, last id 1-2
    body += rdb_len(1) + rdb_string(b"g") + rdb_len(1) + rdb_len(1)
    body += rdb_len(1) + struct.pack(">QQ", 1, 1) + struct.pack("<q", 1234) + rdb_len(1)
    body += rdb_len(1) + rdb_string(b"c") + struct.pack("<q", 999) + rdb_len(1) + struct.pack(">QQ", 1, 1)
    return body


def test_stream_v1_defaults() -> None:
    value = decode(stream_v1_body(), 9)
    assert dict(value.entries) == {(1, 1): [b"f", b"v1"]}  # type: ignore[attr-defined]
    assert value.first_id == (1, 1) and value.max_deleted_id == (0, 0)  # type: ignore[attr-defined]
    assert value.entries_added == 1  # type: ignore[attr-defined]
    group = value.groups[b"g"]  # type: ignore[attr-defined]
    assert group.entries_read == 1  # v1 estimate: the group is at the first entry
    consumer = group.consumers[b"c"]
    assert consumer.active_time_ms == consumer.seen_time_ms == 999
    assert group.pending[(1, 1)].consumer == b"c" and group.pending[(1, 1)].delivery_time_ms == 1234


def test_empty_stream_v1_first_id_is_maximal() -> None:
    body = b"\x0f" + rdb_len(0) + rdb_len(0) + rdb_len(0) + rdb_len(0) + rdb_len(0)
    value = decode(body, 9)
    assert value.first_id == (2**64 - 1, 2**64 - 1) and len(value.entries) == 0  # type: ignore[attr-defined]


def test_stream_v2_and_v3_consumer_times() -> None:
    s = sample_stream()
    v3 = decode_payload(encode_payload(s, 12)).value
    assert v3.groups[b"g1"].consumers[b"alice"].active_time_ms == 1700000000005 + 5  # type: ignore[attr-defined]
    assert v3.groups[b"g1"].consumers[b"idle"].active_time_ms == -1  # type: ignore[attr-defined]
    s2 = sample_stream(active_equals_seen=True)
    v2 = decode_payload(encode_payload(s2, 10)).value
    assert v2.groups[b"g1"].consumers[b"alice"].active_time_ms == 1700000000005  # type: ignore[attr-defined]


def test_stream_with_tombstones_and_other_node_sizes() -> None:
    s = sample_stream()
    opts = CodecOptions(stream_node_max_entries=7, stream_node_max_bytes=0)
    payload = encode_payload(s, 12, opts)
    assert logical(decode_payload(payload).value) == logical(s)
    tiny = CodecOptions(stream_node_max_bytes=50, stream_node_max_entries=0)
    assert logical(decode_payload(encode_payload(s, 12, tiny)).value) == logical(s)


def test_valkey_hash2_type_22_footer_80() -> None:
    body = b"\x16" + rdb_len(2)
    body += rdb_string(b"a") + rdb_string(b"1") + struct.pack("<q", 1700000000000)
    body += rdb_string(b"b") + rdb_string(b"2") + struct.pack("<q", -1)
    value = decode(body, 80, max_rdb_version=80)
    assert dict(value.fields) == {b"a": b"1", b"b": b"2"}  # type: ignore[attr-defined]
    assert value.field_expires == {b"a": 1700000000000} and value.encoding == "hashtable"  # type: ignore[attr-defined]
    bad = b"\x16" + rdb_len(1) + rdb_string(b"a") + rdb_string(b"1") + struct.pack("<q", -2)
    refuses(bad, 80, max_rdb_version=80)
    dup = b"\x16" + rdb_len(2) + (rdb_string(b"a") + rdb_string(b"1") + struct.pack("<q", -1)) * 2
    refuses(dup, 80, max_rdb_version=80)
    out = encode_payload(SAMPLES["hash_ttl_listpackex"], 80)  # type: ignore[arg-type]
    assert out[0] == 22 and out[-10:-8] == b"\x50\x00"
    assert logical(decode_payload(out, CodecOptions(max_rdb_version=80)).value) == logical(
        SAMPLES["hash_ttl_listpackex"]
    )
    with pytest.raises(PayloadError, match="version or checksum"):
        decode_payload(out)  # Redis 7.4 (RDB 12) refuses footer 80


def test_redis_pre_ga_types_22_23() -> None:
    body22 = b"\x16" + rdb_len(2) + rdb_len(1700000000000) + rdb_string(b"a") + rdb_string(b"1")
    body22 += rdb_len(0) + rdb_string(b"b") + rdb_string(b"2")
    value = decode(body22, 12)
    assert value.field_expires == {b"a": 1700000000000} and value.encoding == "listpackex"  # type: ignore[attr-defined]
    lp = listpack.encode_mixed([b"a", b"1", 1700000000000, b"b", b"2", 0])
    value = decode(b"\x17" + rdb_string(lp), 12)
    assert dict(value.fields) == {b"a": b"1", b"b": b"2"} and value.field_expires == {b"a": 1700000000000}  # type: ignore[attr-defined]
    refuses(b"\x17" + rdb_string(lp), 81, max_rdb_version=81)  # Valkey's 23 is PATH_HASH


def test_hash_metadata_ttl_range_and_order() -> None:
    too_big = b"\x18" + struct.pack("<q", 1) + rdb_len(1) + rdb_len(2**48) + rdb_string(b"a") + rdb_string(b"1")
    refuses(too_big, 12)
    body = b"\x18" + struct.pack("<q", 100) + rdb_len(3)
    body += rdb_len(0) + rdb_string(b"n") + rdb_string(b"1")
    body += rdb_len(51) + rdb_string(b"late") + rdb_string(b"2")
    body += rdb_len(1) + rdb_string(b"early") + rdb_string(b"3")
    value = decode(body, 12)
    assert value.field_expires == {b"late": 150, b"early": 100}  # type: ignore[attr-defined]
    assert list(value.fields) == [b"early", b"late", b"n"]  # listpackex order  # type: ignore[attr-defined]
    lpex = encode_payload(value, 12)  # type: ignore[arg-type]
    assert lpex[0] == 25 and lpex[1:9] == struct.pack("<q", 100)


# ---------------------------------------------------------------- envelope and type gate


def test_version_gate_modes() -> None:
    def payload(version: int) -> bytes:
        return seal(b"\x00\x03bar", version)

    check_envelope(payload(0))  # Redis accepts footer 0
    check_envelope(payload(12))
    for bad in (13, 80):
        with pytest.raises(PayloadError, match="DUMP payload version or checksum are wrong"):
            check_envelope(payload(bad))
    strict = CodecOptions(rdb_version_check="strict", max_rdb_version=80)
    check_envelope(payload(11), strict)
    check_envelope(payload(80), strict)
    for bad in (0, 12, 79, 81):
        with pytest.raises(PayloadError):
            check_envelope(payload(bad), strict)
    relaxed = CodecOptions(rdb_version_check="relaxed")
    for ok in (1, 12, 79, 222):
        check_envelope(payload(ok), relaxed)
    with pytest.raises(PayloadError):
        check_envelope(payload(0), relaxed)


def test_checksum_and_length() -> None:
    good = seal(b"\x00\x03bar", 10)
    bad = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(PayloadError, match="version or checksum"):
        decode_payload(bad)
    assert decode_payload(bad, CodecOptions(skip_checksum=True)).value == b"bar"
    for short in (b"", b"\x00" * 9):
        with pytest.raises(PayloadError, match="version or checksum"):
            decode_payload(short, CodecOptions(skip_checksum=True))
    with pytest.raises(PayloadError, match="Bad data format"):
        decode_payload(seal(b"", 10))  # footer only: no type byte


def test_foreign_types_under_valkey_relaxed() -> None:
    lpex = encode_payload(SAMPLES["hash_ttl_listpackex"], 12)  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="Unsupported foreign data type: 25"):
        decode_payload(lpex, CodecOptions(rdb_version_check="relaxed"))
    assert decode_payload(seal(b"\x00\x01a", 40), CodecOptions(rdb_version_check="relaxed")).value == b"a"


@pytest.mark.parametrize("type_byte", [6, 8, 26, 27, 28, 33, 243, 255])
def test_unknown_and_unsupported_types(type_byte: int) -> None:
    refuses(bytes([type_byte]) + b"\x00" * 4, 12)


def test_module_type_is_refused_with_its_name() -> None:
    name_bits = 0
    for ch in "mymodule1":
        name_bits = name_bits << 6 | "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(ch)
    body = b"\x07" + rdb_len(name_bits << 10 | 3) + rdb_len(2) + rdb_len(5) + rdb_len(0)
    with pytest.raises(PayloadError, match="Bad data format") as info:
        decode(body, 12)
    assert "mymodule1" in info.value.detail


def test_footer_and_type_never_cross_checked_and_trailing_bytes_ignored() -> None:
    assert decode_payload(seal(bytes.fromhex("100d0d000000020081660281760 2ff".replace(" ", "")), 6)).value.fields == {
        b"f": b"v"
    }
    assert decode_payload(seal(b"\x00\x03barEXTRAGARBAGE", 11)).value == b"bar"


def test_random_values_round_trip() -> None:
    rng = random.Random(42)
    for _ in range(60):
        members = {rng.randbytes(rng.randrange(0, 30)) for _ in range(rng.randrange(1, 80))}
        h = HashValue(
            {m: rng.randbytes(rng.randrange(0, 90)) for m in members}, None, rng.choice(["listpack", "hashtable"])
        )
        z = ZSetValue.from_pairs(
            [(m, rng.choice([rng.random(), float(rng.randrange(-9, 9)), math.inf])) for m in members],
            rng.choice(["listpack", "skiplist"]),
        )
        s = SetValue(members, rng.choice(["listpack", "hashtable"]))
        lst = ListValue(
            [rng.randbytes(rng.randrange(0, 3000)) for _ in range(rng.randrange(1, 40))],
            rng.choice(["listpack", "quicklist"]),
        )
        for value in (h, z, s, lst):
            for version in (7, 9, 10, 11, 12):
                assert logical(decode_payload(encode_payload(value, version)).value) == logical(value)


@pytest.mark.slow
def test_million_element_payloads_scale_linearly() -> None:
    """Decode time per element stays flat from 250k to 1M elements (listpack and hashtable hashes, lists)."""
    import time

    options = CodecOptions(hash_max_listpack_entries=2_000_000, sanitize_payload="yes")
    for encoding in ("listpack", "hashtable"):
        per_element = []
        for size in (250_000, 1_000_000):
            value = HashValue({b"field:%d" % i: b"%d" % i for i in range(size)}, None, encoding)
            payload = encode_payload(value, 12, options)
            started = time.process_time()
            decoded = decode_payload(payload, options).value
            per_element.append((time.process_time() - started) / size)
            assert len(decoded.fields) == size  # type: ignore[attr-defined]
        assert per_element[1] < per_element[0] * 2.5, (encoding, per_element)
    items = [b"item:%d" % i for i in range(1_000_000)]
    started = time.process_time()
    payload = encode_payload(ListValue(items, "quicklist"), 10)
    assert list(decode_payload(payload).value.items) == items  # type: ignore[attr-defined]
    assert time.process_time() - started < 10
