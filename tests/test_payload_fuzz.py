"""Hypothesis fuzzing of the payload decoder, plus a round-trip property for the encoder.

Seeds are real-format payloads (the §12 vectors and our byte-identical encodings of
every type, compressed and not); mutations flip, insert, delete, overwrite and
truncate bytes and the CRC is recomputed so the body parser is what gets hit.  The
only outcomes allowed are a value or a ``PayloadError`` raised by an explicit check
(never the internal safety net), and each decode must be fast.  The default run is
short; ``-m slow`` runs the long soak.
"""

from __future__ import annotations

import math
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpling.datatypes import HashValue, ListValue, SetValue, StreamValue, ZSetValue
from dumpling.datatypes.streams import Consumer, ConsumerGroup, PendingEntry
from dumpling.payload import CodecOptions, PayloadError, decode_payload, encode_payload, listpack, ziplist
from dumpling.payload.envelope import reseal, seal
from tests.fuzzing import examples
from tests.mutations import mutate


def _stream() -> StreamValue:
    s = StreamValue()
    for i in range(12):
        s.entries[(100 + i // 4, i % 4)] = [b"a", b"%d" % i] if i % 3 else [b"b", b"x", b"c", b"-7"]
    s.last_id, s.first_id, s.entries_added = s.entries.keys()[-1], s.entries.keys()[0], 12
    g = ConsumerGroup(b"grp", (101, 0), 5)
    nack = PendingEntry(b"c1", 10, 2)
    c = Consumer(b"c1", 11, 12)
    g.pending[(100, 1)] = nack
    c.pending[(100, 1)] = nack
    g.consumers[b"c1"] = c
    s.groups[b"grp"] = g
    return s


SEED_VALUES = [
    b"bar",
    b"12345",
    b"a" * 40,
    ListValue([b"a", b"1", b"-300", b"x" * 70], "listpack"),
    ListValue([b"e%d" % i for i in range(300)] + [b"y" * 9000], "quicklist"),
    SetValue([b"1", b"70000", b"-5"], "intset"),
    SetValue([b"a", b"b", b"7"], "listpack"),
    SetValue([b"m%d" % i for i in range(20)], "hashtable"),
    ZSetValue.from_pairs([(b"a", 1.0), (b"b", 2.5), (b"c", -math.inf)], "listpack"),
    ZSetValue.from_pairs([(b"a", 1.0), (b"b", 0.1)], "skiplist"),
    HashValue({b"f": b"v", b"n": b"1"}, None, "listpack"),
    HashValue({b"f%d" % i: b"v%d" % i for i in range(10)}, None, "hashtable"),
    HashValue({b"a": b"1", b"b": b"2"}, {b"a": 2524600800000}, "listpackex"),
    HashValue({b"a": b"1", b"b": b"2"}, {b"a": 2524600800000}, "hashtable"),
    _stream(),
]


def _seeds() -> list[bytes]:
    seeds = [bytes.fromhex("0003626172de000f59557a61d3ece0")]
    for value in SEED_VALUES:
        for version in (6, 9, 10, 11, 12, 80):
            for compress in (True, False):
                seeds.append(encode_payload(value, version, CodecOptions(rdbcompression=compress)))  # type: ignore[arg-type]
    zipmap_hash = bytes.fromhex("02 03 666f6f 03 00 626172 05 68656c6c6f 05 00 776f726c64 ff".replace(" ", ""))
    seeds.append(seal(b"\x09" + bytes([len(zipmap_hash)]) + zipmap_hash, 9))
    zl = ziplist.encode([b"a", b"12", b"-200", b"x" * 300])
    seeds.append(seal(b"\x0a" + b"\x41" + bytes([len(zl) - 256]) + zl, 9))
    lp = listpack.encode_mixed([b"a", b"1", 1700000000000])
    seeds.append(seal(b"\x17" + bytes([len(lp)]) + lp, 12))
    return seeds


SEEDS = _seeds()
INTERESTING = [0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0x81, 0xBF, 0xC0, 0xC1, 0xC2, 0xC3, 0xF0, 0xF4, 0xFE, 0xFF]
OPTIONS = [
    CodecOptions(max_rdb_version=80),
    CodecOptions(max_rdb_version=80, sanitize_payload="yes"),
    CodecOptions(
        max_rdb_version=80, hash_max_listpack_entries=1, zset_max_listpack_entries=1, set_max_intset_entries=1
    ),
]


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    payload = bytearray(draw(st.sampled_from(SEEDS)))
    footer = payload[-10:-8]
    body = payload[:-10]
    mutate(draw, body, INTERESTING)
    return reseal(bytes(body) + bytes(footer) + bytes(8))


def _check(payload: bytes, options: CodecOptions) -> None:
    started = time.perf_counter()
    try:
        decode_payload(payload, options)
    except PayloadError as exc:
        assert not exc.detail.startswith("internal"), exc.detail
    assert time.perf_counter() - started < 2.0


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(), options=st.sampled_from(OPTIONS))
def test_fuzz_only_payload_errors(payload: bytes, options: CodecOptions) -> None:
    _check(payload, options)


@pytest.mark.slow
@settings(max_examples=30000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(), options=st.sampled_from(OPTIONS))
def test_fuzz_only_payload_errors_long(payload: bytes, options: CodecOptions) -> None:
    _check(payload, options)


@settings(max_examples=examples(300), deadline=None)
@given(
    type_byte=st.integers(0, 255),
    body=st.binary(max_size=64),
    version=st.sampled_from([0, 6, 9, 10, 11, 12, 80]),
)
def test_fuzz_random_bodies(type_byte: int, body: bytes, version: int) -> None:
    for options in OPTIONS:
        _check(seal(bytes([type_byte]) + body, version), options)


def test_every_truncation_and_single_byte_change_of_every_seed() -> None:
    """Exhaustive over small seeds: every prefix, and each byte set to a few interesting values."""
    options = OPTIONS[1]
    for seed in SEEDS:
        body, footer = seed[:-10], seed[-10:]
        if len(body) > 400:
            continue
        for cut in range(len(body)):
            _check(reseal(body[:cut] + footer), options)
        for at in range(len(body)):
            for value in (0x00, 0xFF, 0xC3, 0x81):
                mutated = body[:at] + bytes([value]) + body[at + 1 :]
                _check(reseal(mutated + footer), options)


# ---------------------------------------------------------------- encoder property

members = st.binary(max_size=20) | st.integers(-(2**63), 2**63 - 1).map(lambda i: b"%d" % i)
scores = st.floats(allow_nan=False) | st.integers(-(2**53), 2**53).map(float)


@settings(max_examples=examples(150), deadline=None)
@given(
    kind=st.sampled_from(["list", "set", "zset", "hash", "string"]),
    elements=st.lists(members, min_size=1, max_size=40),
    score_list=st.lists(scores, min_size=40, max_size=40),
    encoding_pick=st.booleans(),
    version=st.sampled_from([6, 7, 8, 9, 10, 11, 12, 80]),
)
def test_encode_decode_round_trip(
    kind: str, elements: list[bytes], score_list: list[float], encoding_pick: bool, version: int
) -> None:
    options = CodecOptions(max_rdb_version=80, sanitize_payload="yes")
    if kind == "string":
        value: object = elements[0]
    elif kind == "list":
        value = ListValue(elements, "listpack" if encoding_pick else "quicklist")
    elif kind == "set":
        value = SetValue(elements, "listpack" if encoding_pick else "hashtable")
    elif kind == "zset":
        value = ZSetValue.from_pairs(
            zip(elements, score_list, strict=False), "listpack" if encoding_pick else "skiplist"
        )
    else:
        value = HashValue(
            dict(zip(elements, reversed(elements), strict=True)), None, "listpack" if encoding_pick else "hashtable"
        )
    got = decode_payload(encode_payload(value, version), options).value  # type: ignore[arg-type]
    if isinstance(value, bytes):
        assert got == value
    elif isinstance(value, ListValue):
        assert list(got.items) == list(value.items)
    elif isinstance(value, SetValue):
        assert got.members == value.members
    elif isinstance(value, ZSetValue):
        assert got.scores.keys() == value.scores.keys()
        for member, score in value.scores.items():
            assert got.scores[member] == score or (score == 0 and got.scores[member] == 0)
            assert math.copysign(1, got.scores[member]) == math.copysign(1, score) or score == 0
    else:
        assert dict(got.fields) == dict(value.fields)  # (a hashtable's fields are a KeyTable)


def test_zero_scores_keep_their_sign_in_skiplists() -> None:
    z = ZSetValue.from_pairs([(b"a", -0.0)], "skiplist")
    payload = encode_payload(z, 12)
    assert payload[:4] == b"\x05\x01\x01a"
    assert math.copysign(1.0, struct.unpack("<d", payload[4:12])[0]) == -1.0
