"""Restored type-18 lists stay packed (``PackedList``) until a command needs the elements.

Checked here at the codec level: the fast listpack entry count agrees with the walk
on every blob (valid or not), RESTORE refuses exactly the node blobs the eager decoder
refused and nothing accepted can fail later, ``len``/layout/encoding/memory answer
without decoding, and DUMP of an untouched restored list gives back the input bytes.
Also the C-speed helpers the codec now uses (bulk strings, listpack runs, LZF bound).
"""

from __future__ import annotations

import random
import struct

import pytest

from dumpling.datatypes import ListValue
from dumpling.datatypes.listelements import ElementList
from dumpling.payload import CodecOptions, PayloadError, bulk, compression, decode_payload, encode_payload, listpack
from dumpling.payload import quicklist as ql
from dumpling.payload.envelope import seal
from dumpling.payload.primitives import append_len, append_string, read_len, read_string
from tests.fuzzing import scaled

YES = CodecOptions(sanitize_payload="yes")
NO = CodecOptions(sanitize_payload="no")
ANY = CodecOptions(max_rdb_version=80)  # reads every footer dumpling writes
RNG_SEED = 20240611


def element(rng: random.Random) -> bytes:
    """Elements of every listpack kind: short/12-bit/32-bit strings, every int width, non-canonical numbers."""
    kind = rng.random()
    if kind < 0.45:
        return bytes(rng.choice(b"abcxyz:-_") for _ in range(rng.randrange(0, 40)))
    if kind < 0.7:
        return b"%d" % rng.choice([0, 7, 127, 128, -1, 4095, -4096, 32767, -32769, 8388607, 2**31, -(2**63), 2**63 - 1])
    if kind < 0.8:
        return rng.choice([b"007", b"-0", b"1e3", b" 1", b"+1", b"99999999999999999999"])
    if kind < 0.95:
        return b"q" * rng.randrange(40, 300)
    return b"L" * rng.randrange(4000, 9000)


def pushed(items: list[bytes], fill: int = -2) -> ListValue:
    value = ListValue()
    value.push(items, False, fill)
    return value


def body_of(payload: bytes) -> bytes:
    return payload[:-10]


# ----------------------------------------------------------------------------- the fast count


def test_count_entries_is_the_walk_on_valid_listpacks() -> None:
    rng = random.Random(RNG_SEED)
    for trial in range(600):
        items = [element(rng) for _ in range(rng.randrange(0, 120))]
        if trial % 2:
            items = [items[0]] * len(items) if items else []
        blob = listpack.encode(items)
        for deep in (False, True):
            kind = rng.choice([None, 0, 11, 63, listpack.INT_KIND, listpack.INT_KIND + 3])
            assert listpack.count_entries(blob, deep, kind) == len(listpack.decode(blob, deep)) == len(items)


def _mangled(blob: bytes, rng: random.Random) -> bytes:
    data = bytearray(blob)
    how = rng.randrange(7)
    if how == 0 and len(data) > 7:  # any byte of an entry
        data[rng.randrange(6, len(data) - 1)] = rng.randrange(256)
    elif how == 1:  # the element count
        data[4:6] = rng.randrange(65536).to_bytes(2, "little")
    elif how == 2 and len(data) > 7:  # a terminator too early
        data[rng.randrange(6, len(data) - 1)] = 0xFF
    elif how == 3 and len(data) > 8:  # cut, header fixed up
        del data[rng.randrange(6, len(data) - 1)]
        data[0:4] = len(data).to_bytes(4, "little")
    elif how == 4:  # an invalid encoding byte
        data[rng.randrange(6, len(data))] = rng.randrange(0xF5, 0xFF)
    elif how == 5:  # the total size
        data[0:4] = rng.randrange(len(data) + 3).to_bytes(4, "little")
    else:  # a byte inserted, header fixed up
        data.insert(rng.randrange(6, len(data)), rng.randrange(256))
        data[0:4] = len(data).to_bytes(4, "little")
    return bytes(data)


def _outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except PayloadError:
        return "refused"


def test_count_entries_refuses_exactly_what_the_walk_refuses() -> None:
    rng = random.Random(RNG_SEED + 1)
    for _ in range(6000):
        if rng.random() < 0.5:
            items = [element(rng) for _ in range(rng.randrange(0, 30))]
        else:  # one entry shape repeated: the strided check's case
            template = element(rng)
            items = [template] * rng.randrange(1, 30)
        blob = _mangled(listpack.encode(items), rng)
        for deep in (False, True):
            walk = _outcome(lambda b, d: len(listpack.decode(b, d)), blob, deep)
            assert _outcome(listpack.count_entries, blob, deep) == walk, (blob.hex(), deep)


def test_count_entries_on_same_shape_entries_with_different_contents() -> None:
    rng = random.Random(RNG_SEED + 7)
    makers = [
        lambda i: b"%d" % (i % 128),  # 7-bit uints
        lambda i: b"%d" % (i * 7 - 4000),  # 13-bit ints
        lambda i: b"%d" % (100000 + i * 13),  # 24-bit ints
        lambda i: b"%d" % (2**40 + i),  # 64-bit ints
        lambda i: b"k%010d" % i,  # 6-bit strings of one length
        lambda i: b"v" * 90 + b"%010d" % i,  # 12-bit strings of one length
    ]
    for make in makers:
        blob = listpack.encode([make(i) for i in range(rng.randrange(1, 400))])
        for _ in range(60):
            mangled = _mangled(blob, rng)
            for deep in (False, True):
                walk = _outcome(lambda b, d: len(listpack.decode(b, d)), mangled, deep)
                assert _outcome(listpack.count_entries, mangled, deep) == walk, (mangled.hex(), deep)
        assert listpack.count_entries(blob, True) == len(listpack.decode(blob, True))


def test_count_entries_numele_unknown_and_empty() -> None:
    assert listpack.count_entries(listpack.EMPTY, True) == 0
    blob = bytearray(listpack.encode([b"a"] * 70))
    blob[4:6] = b"\xff\xff"  # 65535: count by walking
    assert listpack.count_entries(bytes(blob), True) == 70


# ----------------------------------------------------------------------------- the eager decoder, for reference


def eager_elements(payload: bytes, deep: bool) -> list[bytes] | str:
    """What dumpling's decoder did before lists were kept packed: every node decoded at RESTORE."""
    buf, end = payload, len(payload) - 10
    try:
        node_count, pos = read_len(buf, 1, end)
        if node_count == 0 or node_count * 2 > end - pos:
            return "refused"
        items: list[bytes] = []
        for _ in range(node_count):
            container, pos = read_len(buf, pos, end)
            if container not in (1, 2):
                return "refused"
            data, pos = read_string(buf, pos, end)
            if not data:
                return "refused"
            items += [data] if container == 1 else listpack.decode(data, deep)
    except PayloadError:
        return "refused"
    return items or "refused"


def quicklist_payload(nodes: list[tuple[int, bytes]], version: int = 10, compress: bool = True) -> bytes:
    out = bytearray(b"\x12")
    append_len(out, len(nodes))
    for container, data in nodes:
        append_len(out, container)
        append_string(out, data, compress)
    return seal(out, version)


def test_restore_refuses_exactly_the_node_blobs_the_eager_decoder_refused() -> None:
    rng = random.Random(RNG_SEED + 2)
    for trial in range(scaled(1500)):
        nodes = []
        for _ in range(rng.randrange(1, 4)):
            if rng.random() < 0.1:
                nodes.append((1, b"P" * rng.randrange(1, 50)))
            else:
                nodes.append((2, listpack.encode([element(rng) for _ in range(rng.randrange(0, 25))])))
        target = rng.randrange(len(nodes))
        if nodes[target][0] == 2 and rng.random() < 0.8:
            nodes[target] = (2, _mangled(nodes[target][1], rng))
        payload = quicklist_payload(nodes, compress=rng.random() < 0.5)
        for options in (NO, YES):
            expected = eager_elements(payload, options.deep_sanitize)
            got = _outcome(lambda p, o: decode_payload(p, o).value, payload, options)
            if expected == "refused":
                assert got == "refused", (trial, payload.hex())
                continue
            assert isinstance(got, ListValue), (trial, payload.hex())
            assert len(got) == len(expected)  # from the node headers, before any decoding
            assert list(got.items) == expected  # first use: never fails
            exercise(got)


def exercise(value: ListValue) -> None:
    """Every ListValue operation a list command uses, on a restored list."""
    expected = list(value.items)
    for version in (9, 10, 11, 12, 80):
        assert list(decode_payload(encode_payload(value, version), ANY).value.items) == expected
    assert value.memory_usage() > 0 and value.nodes(-2) and value.listpack_bytes(-2) >= 0
    copy = value.copy()
    assert list(copy) == expected
    model = [b"y", *expected, b"x", b"12"]
    copy.push([b"x", b"12"], False, -2)
    copy.push([b"y"], True, -2)
    assert copy.insert(b"x", b"after-x", True, -2) == len(model) + 1
    model.insert(model.index(b"x") + 1, b"after-x")
    copy.replace(0, b"z" * 9000, -2)
    model[0] = b"z" * 9000
    copy.remove(0, b"x", -2)
    model = [item for item in model if item != b"x"]
    copy.trim(1, -2, -2)
    model = model[1:-1]
    copy.pop(2, True, -2)
    copy.shrunk(-2)
    assert list(copy.items) == model[2:]
    assert list(value.items) == expected  # the copy shares nothing mutable


# ----------------------------------------------------------------------------- packed until used


SHAPES = {
    "small": [b"a", b"b", b"c"],
    "many nodes": [b"item:%d" % i for i in range(5000)],
    "ints": [b"%d" % (i * 37 - 5000) for i in range(3000)],
    "mixed": [element(random.Random(3)) for _ in range(400)],
    "big element": [b"a", b"x" * 9000, b"b", b"c"],
}


@pytest.mark.parametrize("version", [10, 11, 12, 80])
@pytest.mark.parametrize("shape", SHAPES)
def test_dump_of_an_untouched_restored_list_is_the_input(shape: str, version: int) -> None:
    payload = encode_payload(pushed(SHAPES[shape]), version)
    value = decode_payload(payload, ANY).value
    assert isinstance(value, ListValue) and value.packed_source() is not None
    assert encode_payload(value, version) == payload
    # reads keep it untouched
    assert value.range(0, 3) == SHAPES[shape][:4] and value.index(-1) == SHAPES[shape][-1]
    assert list(value) == SHAPES[shape]
    assert encode_payload(value, version) == payload
    assert encode_payload(value.copy(), version) == payload
    # a write does not: the elements are re-encoded, and still right
    value.push([b"tail"], False, -2)
    assert value.packed_source() is None
    assert list(decode_payload(encode_payload(value, version), ANY).value.items) == SHAPES[shape] + [b"tail"]


@pytest.mark.parametrize("shape", SHAPES)
def test_len_layout_encoding_and_memory_without_decoding(shape: str) -> None:
    items = SHAPES[shape]
    for version in (10, 12):
        eager = pushed(items)
        value = decode_payload(encode_payload(eager, version)).value
        assert isinstance(value, ListValue)
        assert len(value) == len(items) and value._items is None
        encoding, nodes, memory = value.encoding, value.nodes(-2), value.memory_usage()
        size = value.listpack_bytes(-2)
        assert value._items is None  # none of that decoded anything
        assert list(value.items) == items
        assert (value.encoding, value.nodes(-2), value.memory_usage(), value.listpack_bytes(-2)) == (
            encoding, nodes, memory, size)  # fmt: skip
        if version == 12:  # the 7.4 layout is ListValue's own: same answers as the list it came from
            assert (encoding, nodes, memory) == (eager.encoding, eager.nodes(-2), eager.memory_usage())


def test_restored_quicklist_keeps_the_payload_layout() -> None:
    # An LPUSH-built list: its node cut is not the one RPUSH would make.
    lpushed = ListValue()
    for i in range(3000):
        lpushed.push([b"element-%d" % i], True, -2)
    payload = encode_payload(lpushed, 12)
    value = decode_payload(payload).value
    assert value.nodes(-2) == lpushed.nodes(-2) != pushed(list(lpushed.items)).nodes(-2)
    value.pop(1, True, -2)  # written: the layout it keeps is still the payload's, minus one
    assert value.nodes(-2)[0][0] == lpushed.nodes(-2)[0][0] - 1


def test_type_14_layout_is_adopted() -> None:
    items = [b"v%d" % i for i in range(2000)]
    payload = encode_payload(pushed(items), 9)  # ziplist nodes
    assert payload[0] == 14
    value = decode_payload(payload).value
    groups = [len(node.items) for node in ql.pack(items, "6.2", -2)]
    assert [count for count, _ in value.nodes(-2)] == groups


def test_plain_nodes_become_packed_for_targets_without_them() -> None:
    items = SHAPES["big element"]
    restored = decode_payload(encode_payload(pushed(items), 12)).value
    assert restored.nodes(-2) == [(1, False), (1, True), (2, False)]
    for version in (10, 11, 80):
        dumped = encode_payload(restored, version)
        assert list(decode_payload(dumped, ANY).value.items) == items
        with_layout = ListValue(items, "quicklist")
        with_layout.adopt_layout(restored._packed.layout())
        if version >= 11:
            assert dumped == encode_payload(with_layout, version)


def test_rdbcompression_no_rewrites_lzf_nodes_raw() -> None:
    payload = encode_payload(pushed(SHAPES["many nodes"]), 10)
    value = decode_payload(payload).value
    raw = encode_payload(value, 10, CodecOptions(rdbcompression=False))
    assert raw != payload and b"\xc3" not in raw[:4]
    assert raw == encode_payload(pushed(SHAPES["many nodes"]), 10, CodecOptions(rdbcompression=False))
    # and a raw payload restored under rdbcompression yes comes out compressed, as Redis writes it
    assert encode_payload(decode_payload(raw).value, 10) == payload


def test_deep_sanitization_counts_every_packed_node() -> None:
    payload = encode_payload(pushed(SHAPES["many nodes"]), 10)
    decoded = decode_payload(payload, YES)
    assert decoded.sanitizations == len(decoded.value.nodes(-2)) > 1


def test_empty_nodes_are_dropped_and_an_all_empty_list_refused() -> None:
    good = listpack.encode([b"a", b"b"])
    value = decode_payload(quicklist_payload([(2, listpack.EMPTY), (2, good), (2, listpack.EMPTY)])).value
    assert list(value.items) == [b"a", b"b"] and value.nodes(-2) == [(2, False)]
    assert encode_payload(value, 10) == quicklist_payload([(2, good)])
    with pytest.raises(PayloadError):
        decode_payload(quicklist_payload([(2, listpack.EMPTY)]))


# ----------------------------------------------------------------------------- C-speed helpers


def test_bulk_records_read_what_the_one_by_one_readers_read() -> None:
    rng = random.Random(RNG_SEED + 3)
    for _ in range(scaled(300)):
        run_len = rng.choice([1, 5, 20, 300])
        strings = []
        while len(strings) < 600:
            size = rng.choice([0, 3, 12, 20, 40, 70])
            strings += [bytes(rng.choice(b"ab1-") for _ in range(size)) for _ in range(run_len)]
        strings = strings[:600]
        body = bytearray()
        for s in strings:
            append_string(body, s, rng.random() < 0.5)
        payload = bytes(body) + b"\x00" * 10
        end = len(body)
        for shape in ("s", "ss"):
            count = len(strings) // len(shape)
            columns, pos = bulk.read_records(payload, 0, end, count, shape)
            flat = [value for record in zip(*columns, strict=True) for value in record]
            assert flat == strings[: count * len(shape)]
            one, one_pos = [], 0
            for _ in range(count * len(shape)):
                value, one_pos = read_string(payload, one_pos, end)
                one.append(value)
            assert (flat, pos) == (one, one_pos)
        with pytest.raises(PayloadError):
            bulk.read_records(payload, 0, end - 1, len(strings), "s")
        # member + binary double records (skiplist zsets)
        scores = [rng.choice([0.5, -1.0, 1e300, float("inf")]) for _ in strings]
        body = bytearray()
        for member, score in zip(strings, scores, strict=True):
            append_string(body, member, False)
            body += struct.pack("<d", score)
        (members, read_scores), pos = bulk.read_records(bytes(body) + b"\x00" * 10, 0, len(body), len(strings), "sd")
        assert members == strings and read_scores == scores and pos == len(body)


def test_bulk_strings_write_what_append_string_writes() -> None:
    rng = random.Random(RNG_SEED + 4)
    for _ in range(scaled(200)):
        items = [element(rng) for _ in range(rng.randrange(0, 5000))]
        for compress in (True, False):
            one = bytearray()
            for item in items:
                append_string(one, item, compress)
            many = bytearray()
            bulk.append_strings(many, items, compress)
            assert many == one


def test_listpack_runs_and_quicklist_cuts_match_one_by_one() -> None:
    rng = random.Random(RNG_SEED + 5)
    for _ in range(300):
        size = rng.choice([0, 5, 63, 64, 700, 3000])
        same = rng.random() < 0.5
        items = [b"item:%06d" % i if same else element(rng) for i in range(size)]
        assert listpack.encode(items) == listpack._encode_each(items)
        lens = list(map(len, items))
        assert listpack.entry_sizes(items, lens, bulk.odd_elements(items, lens, 64)) == list(
            map(listpack.entry_size, items))  # fmt: skip
        for profile in ("7.0", "7.2", "7.4"):
            fill = rng.choice([-1, -2, -5])
            packer = ql.NodePacker(profile, fill)
            for item in items:
                packer.push(item)
            expected = [(node.container, node.items, node.size) for node in packer.nodes]
            assert [(node.container, node.items, node.size) for node in ql.pack(items, profile, fill)] == expected


def test_lzf_bound_is_redis_s_exactly() -> None:
    """python-lzf's compress(data, n) runs lzf_compress with an output bound of n + 1."""
    rng = random.Random(RNG_SEED + 6)
    near = 0
    for _ in range(scaled(20000)):
        n = rng.randrange(21, 200)
        alphabet = bytes(rng.sample(range(256), rng.randrange(2, 30)))
        data = bytes(rng.choice(alphabet) for _ in range(n))
        if rng.random() < 0.5:
            data = data[: n // 2] * 2
        pure = compression.compress_pure(data, len(data) - 4)
        assert compression.compress_for_rdb(data) == pure
        near += pure is not None and len(pure) + 8 > len(data) - 4
    assert near > 100  # the bound itself was exercised


def test_elements_of_a_packed_list_are_an_element_list() -> None:
    value = decode_payload(encode_payload(pushed([b"a", b"b"]), 10)).value
    assert isinstance(value.items, ElementList) and list(value.items) == [b"a", b"b"]
