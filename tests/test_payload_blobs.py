"""Container blobs: listpack, ziplist, intset, zipmap - layouts, writer rules and validation."""

from __future__ import annotations

import random
import struct

import pytest

from dumpling.payload import intset, listpack, ziplist, zipmap
from dumpling.payload.errors import PayloadError


def lp(*entries: str, count: int | None = None) -> bytes:
    """A listpack from hex-encoded entries (each including its backlen)."""
    body = bytes.fromhex("".join(entries).replace(" ", ""))
    n = len(entries) if count is None else count
    return struct.pack("<IH", 7 + len(body), n) + body + b"\xff"


# ---------------------------------------------------------------- listpack


def test_listpack_spec_example() -> None:
    assert listpack.encode([b"f", b"v"]).hex() == "0d0000000200816602817602ff"
    assert listpack.encode([]) == listpack.EMPTY
    assert listpack.decode(listpack.EMPTY, deep=True) == []


@pytest.mark.parametrize(
    ("element", "entry"),
    [
        (b"0", "0001"),
        (b"127", "7f01"),
        (b"128", "c08002"),
        (b"-1", "dfff02"),
        (b"-2", "dffe02"),
        (b"4095", "cfff02"),
        (b"-4096", "d00002"),
        (b"4096", "f1001003"),
        (b"-32768", "f1008003"),
        (b"32768", "f200800004"),
        (b"-8388608", "f200008004"),
        (b"8388608", "f30000800005"),
        (b"2147483648", "f4000000800000000009"),
        (b"-9223372036854775808", "f4000000000000008009"),
        (b"", "8001"),
        (b"a", "816102"),
        (b"-0", "822d3003"),
        (b"9223372036854775808", "93" + b"9223372036854775808".hex() + "14"),
    ],
)
def test_listpack_entry_encodings(element: bytes, entry: str) -> None:
    assert listpack.entry_bytes(element).hex() == entry
    assert listpack.entry_size(element) == len(entry) // 2
    blob = listpack.encode([element])
    assert blob == lp(entry)
    assert listpack.decode(blob, deep=True) == [element]


@pytest.mark.parametrize("size", [63, 64, 125, 126, 127, 4095, 4096, 16376, 16377, 16378, 16379, 70000])
def test_listpack_string_lengths_and_backlen_thresholds(size: int) -> None:
    element = b"s" * size
    blob = listpack.encode([b"x", element, b"y"])
    assert listpack.decode(blob, deep=True) == [b"x", element, b"y"]
    entry = listpack.entry_bytes(element)
    header = 1 if size < 64 else 2 if size < 4096 else 5
    assert len(entry) == header + size + listpack.backlen_size(header + size)


def test_backlen_thresholds_are_strict() -> None:
    assert listpack.backlen_bytes(127) == b"\x7f"
    assert listpack.backlen_bytes(128) == bytes((1, 128))
    assert len(listpack.backlen_bytes(16382)) == 2
    assert len(listpack.backlen_bytes(16383)) == 3
    assert len(listpack.backlen_bytes(2097150)) == 3
    assert len(listpack.backlen_bytes(2097151)) == 4


def test_listpack_integers_can_come_back_as_ints() -> None:
    blob = listpack.encode_mixed([b"m", 5, b"2.5", -70000])
    assert listpack.decode(blob, deep=True, ints_as_bytes=False) == [b"m", 5, b"2.5", -70000]
    assert listpack.decode(blob, deep=True) == [b"m", b"5", b"2.5", b"-70000"]


def test_listpack_count_65535_means_unknown() -> None:
    elements = [b"%d" % (i % 100) for i in range(70000)]
    blob = listpack.encode(elements)
    assert struct.unpack_from("<H", blob, 4)[0] == 65535
    assert listpack.decode(blob, deep=True) == elements


def test_listpack_random_round_trip() -> None:
    rng = random.Random(2)
    elements = []
    for _ in range(2000):
        kind = rng.randrange(4)
        if kind == 0:
            elements.append(b"%d" % rng.randrange(-(2**63), 2**63))
        elif kind == 1:
            elements.append(b"%d" % rng.randrange(-5000, 5000))
        else:
            elements.append(rng.randbytes(rng.choice((0, 1, 5, 63, 64, 200, 5000))))
    assert listpack.decode(listpack.encode(elements), deep=True) == elements


@pytest.mark.parametrize(
    ("blob", "always"),
    [
        (b"\x06\x00\x00\x00\x00\x00", True),  # smaller than header + EOF
        (lp("816102")[:-1] + b"\xfe", True),  # not terminated by 0xFF
        (b"\x09" + lp("816102")[1:], True),  # header total mismatch
        (lp("f5"), True),  # invalid encoding byte
        (lp("8561"), True),  # 6-bit string runs past the end
        (lp("e1"), True),  # 12-bit string header truncated
        (lp("f1ff"), True),  # int16 runs into the terminator
        (lp("816103"), False),  # backlen says 3 for a 2-byte entry
        (lp("816102", count=2), False),  # header count wrong
        (lp("816102ff816202"), False),  # terminator in the middle
    ],
)
def test_listpack_validation(blob: bytes, always: bool) -> None:
    with pytest.raises(PayloadError):
        listpack.decode(blob, deep=True)
    if always:
        with pytest.raises(PayloadError):
            listpack.decode(blob, deep=False)
    else:
        listpack.decode(blob, deep=False)  # Redis only checks the header unless sanitizing


def test_listpack_early_terminator_unsanitized_stops_there() -> None:
    assert listpack.decode(lp("816102ff816202"), deep=False) == [b"a"]


# ---------------------------------------------------------------- ziplist


def test_ziplist_spec_example() -> None:
    blob = bytes.fromhex("0f0000000c000000020000f302f6ff")
    assert ziplist.encode([b"2", b"5"]) == blob
    assert ziplist.decode(blob) == [b"2", b"5"]


@pytest.mark.parametrize(
    ("element", "payload"),
    [
        (b"0", "f1"),
        (b"12", "fd"),
        (b"13", "fe0d"),
        (b"-128", "fe80"),
        (b"-129", "c07fff"),
        (b"32768", "f0008000"),
        (b"8388608", "d000008000"),
        (b"2147483648", "e00000008000000000"),
        (b"abc", "03616263"),
        (b"", "00"),
    ],
)
def test_ziplist_entry_encodings(element: bytes, payload: str) -> None:
    blob = ziplist.encode([element])
    assert blob[10:-1].hex() == "00" + payload
    assert ziplist.decode(blob) == [element]


def test_ziplist_long_strings_and_big_prevlen() -> None:
    elements = [b"a" * 300, b"b", b"c" * 20000, b"d", b"1"]
    blob = ziplist.encode(elements)
    assert ziplist.decode(blob) == elements
    second = 10 + 3 + 300  # prevlen 1 + 2-byte header + data
    assert blob[second] == 0xFE  # 5-byte prevlen after a 303-byte entry
    assert ziplist.decode(blob, ints_as_bytes=False)[-1] == 1


def _zl(entries: str, count: int | None = None, tail: int | None = None) -> bytes:
    body = bytes.fromhex(entries.replace(" ", ""))
    return (
        struct.pack("<IIH", 11 + len(body), 10 if tail is None else tail, 0 if count is None else count)
        + body
        + b"\xff"
    )


@pytest.mark.parametrize(
    "blob",
    [
        _zl("00 f3 02 f6", count=2, tail=12)[:-1] + b"\x00",  # no terminator
        b"\x10" + _zl("00 f3 02 f6", count=2, tail=12)[1:],  # zlbytes wrong
        _zl("00 f3 02 f6", count=2, tail=10),  # tail points at the first entry
        _zl("00 f3 02 f6", count=2, tail=99),  # tail out of range
        _zl("00 f3 02 f6", count=3, tail=12),  # count wrong
        _zl("00 f3 03 f6", count=2, tail=12),  # prevlen too big
        _zl("00 f3 01 f6", count=2, tail=12),  # prevlen too small
        _zl("05 f3", count=1, tail=10),  # first prevlen not 0
        _zl("00 c5", count=1, tail=10),  # invalid encoding
        _zl("00 05 61", count=1, tail=10),  # string past the end
        _zl("00 e0 0000", count=1, tail=10),  # int64 past the end
        _zl("fe 00 00", count=1, tail=10),  # 5-byte prevlen past the end
    ],
)
def test_ziplist_validation_is_always_deep(blob: bytes) -> None:
    with pytest.raises(PayloadError):
        ziplist.decode(blob)


def test_ziplist_count_65535_means_unknown() -> None:
    blob = _zl("00 f3 02 f6", count=0xFFFF, tail=12)
    assert ziplist.decode(blob) == [b"2", b"5"]


# ---------------------------------------------------------------- intset


@pytest.mark.parametrize(
    ("values", "encoded"),
    [
        ([1, 2, 3], "02000000 03000000 0100 0200 0300"),
        ([1, 70000, -5], "04000000 03000000 fbffffff 01000000 70110100"),
        ([1, 1099511627776], "08000000 02000000 0100000000000000 0000000000010000"),
    ],
)
def test_intset_widths(values: list[int], encoded: str) -> None:
    blob = bytes.fromhex(encoded.replace(" ", ""))
    assert intset.encode(values) == blob
    assert intset.decode(blob, deep=True) == sorted(values)


@pytest.mark.parametrize(
    "blob",
    [
        "0200000000000000",  # empty
        "0300000001000000 010000",  # width 3
        "0200000002000000 0100",  # short
        "02000000",  # no length
        "0200000001000000 01000200",  # long
    ],
)
def test_intset_always_checked(blob: str) -> None:
    with pytest.raises(PayloadError):
        intset.decode(bytes.fromhex(blob.replace(" ", "")), deep=False)


def test_intset_order_checked_only_when_sanitizing() -> None:
    unordered = bytes.fromhex("02000000 02000000 0200 0100".replace(" ", ""))
    duplicate = bytes.fromhex("02000000 02000000 0100 0100".replace(" ", ""))
    for blob in (unordered, duplicate):
        intset.decode(blob, deep=False)
        with pytest.raises(PayloadError):
            intset.decode(blob, deep=True)


# ---------------------------------------------------------------- zipmap

ZIPMAP = bytes.fromhex("02 03 666f6f 03 00 626172 05 68656c6c6f 05 00 776f726c64 ff".replace(" ", ""))


def test_zipmap_spec_example() -> None:
    assert zipmap.decode(ZIPMAP) == [(b"foo", b"bar"), (b"hello", b"world")]


def test_zipmap_big_lengths_free_space_and_unknown_count() -> None:
    key = b"k" * 300
    blob = b"\xfe" + b"\xfe" + struct.pack("<I", 300) + key + b"\x02\x03" + b"abxyz" + b"\xff"
    assert zipmap.decode(blob) == [(key, b"ab")]


@pytest.mark.parametrize(
    "blob",
    [
        "00 ff",  # empty
        "01 03 666f6f 03 00 626172",  # no terminator
        "03 03 666f6f 03 00 626172 ff",  # count wrong
        "02 01 61 01 00 62 01 61 01 00 63 ff",  # duplicate key
        "01 fe 01000000 61 01 00 62 ff",  # 5-byte length for a short key (Valkey CVE fix)
        "01 05 6161 ff",  # key past the end
        "01 01 61 05 00 6262 ff",  # value past the end
        "01 01 61 01 09 62 ff",  # free space past the end
        "ff",  # too small
    ],
)
def test_zipmap_validation(blob: str) -> None:
    with pytest.raises(PayloadError):
        zipmap.decode(bytes.fromhex(blob.replace(" ", "")))
