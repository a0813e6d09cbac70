"""Crafted corrupt payloads: the codec-level cases of Redis's corrupt-dump.tcl (spec §11.2) and Valkey's additions.

R = must be refused with "Bad data format"; where Redis only refuses when sanitizing
(``sanitize-dump-payload yes``) the unsanitized outcome is asserted too.  Checksums are
always recomputed, so the body parser is what is being tested.
"""

from __future__ import annotations

import struct

import pytest

from dumpling.payload import CodecOptions, PayloadError, decode_payload, listpack, ziplist
from dumpling.payload.envelope import seal
from dumpling.payload.primitives import append_len

YES = CodecOptions(sanitize_payload="yes")
NO = CodecOptions(sanitize_payload="no")


def s(data: bytes) -> bytes:
    """rdbString, raw form (no INT or LZF), so byte positions stay predictable."""
    out = bytearray()
    append_len(out, len(data))
    return bytes(out) + data


def n(value: int) -> bytes:
    out = bytearray()
    append_len(out, value)
    return bytes(out)


def lp_raw(entries: str, count: int) -> bytes:
    body = bytes.fromhex(entries.replace(" ", ""))
    return struct.pack("<IH", 7 + len(body), count) + body + b"\xff"


def zl_raw(entries: str, count: int, tail: int) -> bytes:
    body = bytes.fromhex(entries.replace(" ", ""))
    return struct.pack("<IIH", 11 + len(body), tail, count) + body + b"\xff"


def refused(body: bytes, options: CodecOptions = NO, version: int = 12) -> None:
    with pytest.raises(PayloadError) as info:
        decode_payload(seal(body, version), options)
    assert info.value.message == "Bad data format"
    assert not info.value.detail.startswith("internal"), info.value.detail


def accepted(body: bytes, options: CodecOptions = NO, version: int = 12) -> object:
    return decode_payload(seal(body, version), options).value


def quicklist2(*nodes: bytes, container: int = 2) -> bytes:
    return b"\x12" + n(len(nodes)) + b"".join(n(container) + s(node) for node in nodes)


# ---------------------------------------------------------------- lists


def test_quicklist_listpack_corrupt_backlen_sanitized() -> None:  # 1, 22
    body = quicklist2(lp_raw("8161 03", 1))
    refused(body, YES)
    assert list(accepted(body).items) == [b"a"]


def test_quicklist_ziplist_prevlen_errors() -> None:  # 10, 11, 12, 13, 43
    good = "00 8161 03 8162"
    assert list(accepted(b"\x0e" + n(1) + s(zl_raw("00 0161 03 0162", 2, 13))).items) == [b"a", b"b"]
    for bad in ("00 0161 04 0162", "00 0161 02 0162"):
        refused(b"\x0e" + n(1) + s(zl_raw(bad, 2, 13)))
        refused(b"\x0e" + n(1) + s(zl_raw(bad, 2, 13)), YES)
    refused(b"\x0e" + n(1) + s(zl_raw("00 0161 03 0162", 3, 13)))  # wrong zllen
    assert good


def test_quicklist_empty_ziplist_and_zero_length_node() -> None:  # 14, 15, 66
    refused(b"\x0e" + n(1) + s(ziplist.encode([])))
    refused(b"\x12" + n(1) + n(2) + s(b""))
    refused(b"\x12" + n(1) + n(1) + s(b""))
    refused(b"\x12" + n(0))
    refused(b"\x12" + n(1) + n(3) + s(listpack.encode([b"a"])))  # unknown container


def test_quicklist_listpack_eof_right_after_header() -> None:  # 16
    body = quicklist2(lp_raw("", 1))
    refused(body, YES)
    refused(body)  # no elements at all -> empty key


def test_list_ziplist_corruptions() -> None:  # 17, 33, 41, 58
    refused(b"\x0a" + s(zl_raw("00 05 61", 1, 10)))  # entry past the end
    refused(b"\x0a" + s(zl_raw("00 0161 ff", 1, 10)[:-1] + b"\xff"))  # extra 0xFF after the tail
    refused(b"\x0a" + s(zl_raw("09 0161", 1, 10)))  # prevlen points before the blob
    refused(b"\x0e" + n(1) + s(zl_raw("00 0161 03 0162 ff", 2, 13)), YES)


def test_ziplist_wrong_zlbytes_and_tail() -> None:  # 3, 52
    blob = zl_raw("00 0161 03 0162", 2, 13)
    refused(b"\x0a" + s(b"\x20" + blob[1:]))
    refused(b"\x0c" + s(zl_raw("00 0161 03 f2", 2, 10)))  # tail at the first entry


# ---------------------------------------------------------------- hashes


def test_hash_ziplist_corruptions() -> None:  # 2, 4, 24, 27, 34, 49, 56
    refused(b"\x0d" + s(zl_raw("00 0566 02 0176", 2, 12)))  # entry length past the end
    refused(b"\x0d" + s(ziplist.encode([b"f", b"1", b"f", b"2"])))
    refused(b"\x0d" + s(ziplist.encode([b"f", b"1", b"f", b"2"])), YES)
    refused(b"\x0d" + s(ziplist.encode([b"f", b"1", b"g"])))
    refused(b"\x0d" + s(zl_raw("00 c5 02 0176", 2, 12)), YES)  # invalid encoding
    refused(b"\x0d" + s(ziplist.encode([])), YES)


def test_hash_listpack_duplicates() -> None:  # 25, 26
    body = b"\x10" + s(listpack.encode([b"f", b"1", b"f", b"2"]))
    refused(body, YES)
    value = accepted(body)
    assert value.fields == {b"f": b"1"}  # a listpack lookup finds the first


def test_hash_listpack_odd_count_and_bad_entries() -> None:  # 36, 69, 83
    refused(b"\x10" + s(listpack.encode([b"f", b"1", b"g"])))
    refused(b"\x10" + s(listpack.encode([b"f", b"1", b"g"])), YES)
    refused(b"\x10" + s(lp_raw("8f 66 02", 1)), YES)  # first element length too long
    wrong_count = b"\x10" + s(lp_raw("8166 02 8176 02", 7))
    assert accepted(wrong_count).fields == {b"f": b"v"}
    refused(wrong_count, YES)


def test_plain_hash_duplicates() -> None:  # 28, 13 (quirks)
    body = b"\x04" + n(2) + s(b"f") + s(b"1") + s(b"f") + s(b"2")
    refused(body, YES)
    assert accepted(body).fields == {b"f": b"1"}
    refused(body, CodecOptions(hash_max_listpack_entries=1))  # hashtable path always checks
    # a duplicate followed by a long value: Redis would convert a listpack holding duplicates
    long_after = b"\x04" + n(3) + s(b"f") + s(b"1") + s(b"f") + s(b"2") + s(b"g") + s(b"x" * 100)
    refused(long_after)


def test_empty_hashes() -> None:  # 29, 56, 68
    refused(b"\x04" + n(0))
    refused(b"\x10" + s(listpack.EMPTY))
    refused(b"\x09" + s(b"\x00\xff"))
    refused(b"\x18" + bytes(8) + n(0))
    refused(b"\x19" + bytes(8) + s(listpack.EMPTY))


def test_listpackex_ttl_rules() -> None:  # 5, 6, 7, 8
    def lpex(*entries: bytes | int) -> bytes:
        return b"\x19" + bytes(8) + s(listpack.encode_mixed(list(entries)))

    good = lpex(b"a", b"1", 100, b"b", b"2", 200, b"c", b"3", 0)
    assert accepted(good, YES).field_expires == {b"a": 100, b"b": 200}
    string_ttl = lpex(b"a", b"1", b"soon")
    refused(string_ttl, YES)
    refused(string_ttl)
    too_big = lpex(b"a", b"1", 2**48)
    refused(too_big, YES)
    refused(too_big)
    unordered = lpex(b"a", b"1", 200, b"b", b"2", 100)
    refused(unordered, YES)
    assert accepted(unordered).field_expires == {b"a": 200, b"b": 100}
    ttl_after_none = lpex(b"a", b"1", 0, b"b", b"2", 100)
    refused(ttl_after_none, YES)
    refused(lpex(b"a", b"1", 100, b"a", b"2", 200), YES)
    refused(lpex(b"a", b"1"), YES)  # not a multiple of 3


def test_hashtable_field_ttl_above_max() -> None:  # 9
    body = b"\x18" + struct.pack("<q", 2**48 - 10) + n(1) + n(100) + s(b"a") + s(b"1")
    refused(body, CodecOptions(sanitize_payload="yes", hash_max_listpack_entries=0))
    refused(body)


# ---------------------------------------------------------------- sets and zsets


def test_set_duplicates() -> None:  # 38, 79
    refused(b"\x02" + n(2) + s(b"a") + s(b"a"))
    refused(b"\x02" + n(2) + s(b"1") + s(b"1"))
    lp_dups = b"\x14" + s(listpack.encode([b"a", b"a", b"b"]))
    refused(lp_dups, YES)
    assert accepted(lp_dups).members == {b"a", b"b"}


def test_set_wrong_counts_do_not_hang() -> None:  # 80, 81, 82
    wrong = b"\x14" + s(lp_raw("8161 02 8162 02", 9))
    assert accepted(wrong).members == {b"a", b"b"}
    refused(wrong, YES)
    zwrong = b"\x11" + s(lp_raw("8161 02 01 01", 5))
    assert accepted(zwrong).scores == {b"a": 1.0}


def test_empty_sets_and_zsets() -> None:  # 39, 67, 78
    refused(b"\x0b" + s(struct.pack("<II", 2, 0)))
    refused(b"\x14" + s(listpack.EMPTY))
    refused(b"\x02" + n(0))
    refused(b"\x11" + s(listpack.EMPTY))
    refused(b"\x05" + n(0))
    refused(b"\x0c" + s(ziplist.encode([])))


def test_zset_corruptions() -> None:  # 40, 42, 75
    refused(b"\x05" + n(1) + s(b"a") + struct.pack("<d", float("nan")))
    refused(b"\x03" + n(1) + s(b"a") + b"\x02zz")
    refused(b"\x11" + s(listpack.encode([b"a", b"nan"])))
    refused(b"\x0c" + s(zl_raw("00 c1 02 0131", 2, 12)))  # zset ziplist entry with an invalid header
    refused(b"\x05" + n(2) + (s(b"a") + struct.pack("<d", 1.0)) * 2)


def test_zset_listpack_unparsable_score_is_zero_like_strtod() -> None:
    assert accepted(b"\x11" + s(listpack.encode([b"a", b"xyz"]))).scores == {b"a": 0.0}


def test_intset_order_when_sanitizing() -> None:
    body = b"\x0b" + s(struct.pack("<IIhh", 2, 2, 5, 1))
    refused(body, YES)
    assert accepted(body).members == {b"1", b"5"}


# ---------------------------------------------------------------- strings, lengths, LZF


def test_huge_lengths_do_not_allocate() -> None:  # 50, 51, 54, 59, 60
    refused(b"\x00" + b"\x81" + struct.pack(">Q", 2**62) + b"abc")
    refused(b"\x00" + b"\x80" + struct.pack(">I", 2**31) + b"abc")
    refused(b"\x04" + b"\x80" + struct.pack(">I", 2**32 - 1) + s(b"a") + s(b"b"))
    refused(b"\x02" + b"\x81" + struct.pack(">Q", 2**63) + s(b"a"))
    refused(b"\x12" + b"\x81" + struct.pack(">Q", 2**40))
    refused(b"\x00" + b"\xc3" + n(4) + b"\x81" + struct.pack(">Q", 2**60) + b"\x01ab\x00")


def test_lzf_corruptions() -> None:  # 37, 44
    refused(b"\x00" + b"\xc3" + n(4) + n(30) + bytes.fromhex("01616120"))
    refused(b"\x00" + b"\xc3" + n(9) + n(31) + bytes.fromhex("016161e01100016161"))
    refused(b"\x00" + b"\xc3" + n(9) + n(30) + bytes.fromhex("016161e01105016161"))  # reference before the start


# ---------------------------------------------------------------- streams


def stream_node(*elements: bytes | int) -> bytes:
    return listpack.encode_mixed(list(elements))


GOOD_NODE = stream_node(1, 0, 1, b"f", 0, 2, 0, 0, b"v", 4)


def stream_body(
    nodes: list[tuple[bytes, bytes]],
    length: int = 1,
    groups: bytes = b"\x00",
    type_byte: int = 21,
) -> bytes:
    body = bytes([type_byte]) + n(len(nodes))
    for key, node in nodes:
        body += s(key) + s(node)
    body += n(length) + n(1) + n(0)  # length, last id 1-0
    if type_byte != 15:
        body += n(1) + n(0) + n(0) + n(0) + n(1)
    return body + groups


KEY_1_0 = struct.pack(">QQ", 1, 0)


def group(name: bytes, pel: list[bytes], consumers: list[tuple[bytes, list[bytes]]]) -> bytes:
    out = s(name) + n(1) + n(0) + n(1) + n(len(pel))
    for entry_id in pel:
        out += entry_id + struct.pack("<q", 5) + n(1)
    out += n(len(consumers))
    for cname, ids in consumers:
        out += s(cname) + struct.pack("<q", 7) + struct.pack("<q", 8) + n(len(ids)) + b"".join(ids)
    return out


def test_valid_stream_baseline() -> None:
    body = stream_body([(KEY_1_0, GOOD_NODE)], groups=n(1) + group(b"g", [KEY_1_0], [(b"c", [KEY_1_0])]))
    value = accepted(body, YES)
    assert dict(value.entries) == {(1, 0): [b"f", b"v"]}


def test_stream_consumer_and_group_duplicates() -> None:  # 23, Valkey: PEL claimed twice
    dup_consumer = n(1) + group(b"g", [KEY_1_0], [(b"c", [KEY_1_0]), (b"c", [])])
    refused(stream_body([(KEY_1_0, GOOD_NODE)], groups=dup_consumer))
    twice = n(1) + group(b"g", [KEY_1_0], [(b"c", [KEY_1_0]), (b"d", [KEY_1_0])])
    refused(stream_body([(KEY_1_0, GOOD_NODE)], groups=twice))
    dup_group = n(2) + group(b"g", [], []) + group(b"g", [], [])
    refused(stream_body([(KEY_1_0, GOOD_NODE)], groups=dup_group))
    dup_pel = n(1) + group(b"g", [KEY_1_0, KEY_1_0], [(b"c", [KEY_1_0])])
    refused(stream_body([(KEY_1_0, GOOD_NODE)], groups=dup_pel))
    missing = n(1) + group(b"g", [], [(b"c", [KEY_1_0])])
    refused(stream_body([(KEY_1_0, GOOD_NODE)], groups=missing))


def test_stream_pel_without_consumer() -> None:  # 61
    body = stream_body([(KEY_1_0, GOOD_NODE)], groups=n(1) + group(b"g", [KEY_1_0], []))
    refused(body, YES)
    refused(body)  # the value model cannot hold an owner-less NACK


def test_stream_lp_count_and_structure() -> None:  # 45, 46, 47, 63, 65
    bad_count = stream_node(1, 0, 1, b"f", 0, 2, 0, 0, b"v", 9)
    refused(stream_body([(KEY_1_0, bad_count)]), YES)
    assert dict(accepted(stream_body([(KEY_1_0, bad_count)])).entries) == {(1, 0): [b"f", b"v"]}
    refused(stream_body([(KEY_1_0, stream_node(1, 0, 1, b"f", 5, 2, 0, 0, b"v", 4))]), YES)  # master not 0-terminated
    refused(stream_body([(KEY_1_0, stream_node(b"x", 0, 1, b"f", 0, 2, 0, 0, b"v", 4))]))  # count not integer
    refused(stream_body([(KEY_1_0, stream_node(1, 0, 1, b"f", 0, 2, b"id", 0, b"v", 4))]))  # ID not integer
    refused(stream_body([(KEY_1_0, stream_node(1, 0, 1, b"f", 0, 0, 0, 0, 5, b"v", 4))]))  # too few values
    refused(stream_body([(KEY_1_0, stream_node(2, 0, 1, b"f", 0, 2, 0, 0, b"v", 4))]), YES)  # count + deleted
    refused(stream_body([(KEY_1_0, stream_node(1, 0))]))
    refused(stream_body([(KEY_1_0, listpack.EMPTY)]))  # empty listpack inside stream


def test_stream_node_keys() -> None:  # 70, 76
    refused(stream_body([(KEY_1_0, GOOD_NODE), (KEY_1_0, GOOD_NODE)]), YES)
    refused(stream_body([(b"short", GOOD_NODE)]))
    refused(stream_body([], length=3))  # length > 0 without nodes
    dup_ids = [(KEY_1_0, GOOD_NODE), (struct.pack(">QQ", 0, 5), stream_node(1, 0, 1, b"f", 0, 2, 1, -5, b"v", 4))]
    refused(stream_body(dup_ids))


def test_empty_stream_is_legal() -> None:  # 57
    value = accepted(stream_body([], length=0))
    assert len(value.entries) == 0


def test_deleted_entries_are_skipped() -> None:
    node = stream_node(1, 1, 1, b"f", 0, 3, 0, 0, b"gone", 4, 2, 0, 1, b"kept", 4)
    value = accepted(stream_body([(KEY_1_0, node)]), YES)
    assert dict(value.entries) == {(1, 1): [b"f", b"kept"]}


def test_stream_truncated_everywhere() -> None:
    body = stream_body([(KEY_1_0, GOOD_NODE)], groups=n(1) + group(b"g", [KEY_1_0], [(b"c", [KEY_1_0])]))
    for cut in range(1, len(body)):
        with pytest.raises(PayloadError) as info:
            decode_payload(seal(body[:cut], 12), YES)
        assert not info.value.detail.startswith("internal"), (cut, info.value.detail)
