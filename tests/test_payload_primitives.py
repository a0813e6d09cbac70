"""Payload codec primitives: CRC-64, rdbLen, rdbString (INTn / LZF / raw), LZF itself, doubles."""

from __future__ import annotations

import math
import random

import pytest

from dumpling.payload import compression, crc64, primitives
from dumpling.payload.errors import PayloadError
from dumpling.payload.primitives import (
    append_len,
    append_string,
    c_strtod_prefix,
    fpconv_dtoa,
    parse_canonical_int,
    read_len,
    read_string,
    read_string_double,
    score_text,
)

LOREM = (
    b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    b"dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
    b"ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
    b"fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt "
    b"mollit anim id est laborum."
)


def _string(data: bytes) -> bytes:
    value, pos = read_string(data, 0, len(data))
    assert pos == len(data)
    return value


def _written(s: bytes, compress: bool = True) -> bytes:
    out = bytearray()
    append_string(out, s, compress)
    return bytes(out)


# ---------------------------------------------------------------- CRC-64


def test_crc64_check_values() -> None:
    assert crc64.crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert len(LOREM) == 445
    assert crc64.crc64(LOREM + b"\0") == 0xC7794709E69683B3
    assert crc64.crc64_pure(b"123456789") == 0xE9C6D914C4B8D9CA


def test_crc64_incremental_and_fallback_agree() -> None:
    data = random.Random(1).randbytes(5000)
    assert crc64.crc64(data[1234:], crc64.crc64(data[:1234])) == crc64.crc64(data)
    assert crc64.crc64_pure(data) == crc64.crc64(data)
    assert crc64.crc64(memoryview(data)) == crc64.crc64(data)


@pytest.mark.parametrize(
    "payload_hex",
    [
        "000461 6a61 79 0600 4817ffd32db9c9d9",  # Redis 2.6 SET name ajay
        "00c001 0600 b0958f3624542d6f",  # Redis 3.0.7 SET foo 1
        "00c001 0b00 4fa75ac52c9ef875",  # Redis 7.2 SET a 1
        "0003626172 0a00 e6be4960ee66fd17",  # Redis 7.0.15 SET k bar
        "0003626172 0c00 2dc87da0144c635e",  # Redis 7.4.1 SET k bar
    ],
)
def test_crc64_reproduces_real_footers(payload_hex: str) -> None:
    payload = bytes.fromhex(payload_hex.replace(" ", ""))
    assert crc64.crc64(payload[:-8]) == int.from_bytes(payload[-8:], "little")


# ---------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (63, "3f"),
        (64, "4040"),
        (16383, "7fff"),
        (16384, "8000004000"),
        (2**32 - 1, "80ffffffff"),
        (2**32, "810000000100000000"),
        (2**64 - 1, "81ffffffffffffffff"),
    ],
)
def test_lengths_shortest_form_and_back(n: int, encoded: str) -> None:
    out = bytearray()
    append_len(out, n)
    assert out.hex() == encoded
    assert read_len(bytes(out), 0, len(out)) == (n, len(out))


def test_lengths_non_minimal_forms_are_read() -> None:
    assert read_len(bytes.fromhex("4005"), 0, 2) == (5, 2)
    assert read_len(bytes.fromhex("8000000005"), 0, 5) == (5, 5)
    assert read_len(bytes.fromhex("810000000000000005"), 0, 9) == (5, 9)


def test_length_quirk_special_marker_reads_low_bits() -> None:
    # rdbLoadLen callers ignore the "encoded" flag: 0xC5 is read as length 5.
    assert read_len(b"\xc5", 0, 1) == (5, 1)


@pytest.mark.parametrize("data", ["82", "bf00000000", "40", "80000000", "8100", ""])
def test_bad_or_truncated_lengths(data: str) -> None:
    raw = bytes.fromhex(data)
    with pytest.raises(PayloadError):
        read_len(raw, 0, len(raw))


# ---------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        (b"", "00"),
        (b"bar", "03626172"),
        (b"1", "c001"),
        (b"0", "c000"),
        (b"-1", "c0ff"),
        (b"127", "c07f"),
        (b"-128", "c080"),
        (b"128", "c18000"),
        (b"-129", "c17fff"),
        (b"-4096", "c100f0"),
        (b"32767", "c1ff7f"),
        (b"32768", "c200800000"),
        (b"100000", "c2a0860100"),
        (b"2147483647", "c2ffffff7f"),
        (b"-2147483648", "c200000080"),
        (b"2147483648", "0a32313437343833363438"),
        (b"12345678901", "0b3132333435363738393031"),
        (b"-0", "022d30"),
        (b"01", "023031"),
        (b"+1", "022b31"),
        (b" 1", "022031"),
        (b"1 ", "023120"),
        (b"1_0", "03315f30"),
    ],
)
def test_string_writer_rules(text: bytes, encoded: str) -> None:
    assert _written(text).hex() == encoded
    assert _string(bytes.fromhex(encoded)) == text


def test_lzf_vectors_from_real_dumps() -> None:
    assert _written(b"a" * 30).hex() == "c3091e016161e01100016161"
    assert _written(b"x" * 100).hex() == "c30940640178" + "78e0570001" + "7878"
    assert _string(bytes.fromhex("c3091e016161e01100016161")) == b"a" * 30


def test_lzf_only_when_it_saves_four_bytes_and_len_above_20() -> None:
    assert _written(b"a" * 20) == b"\x14" + b"a" * 20
    incompressible = random.Random(5).randbytes(200)
    assert _written(incompressible) == b"\x40\xc8" + incompressible
    assert _written(b"a" * 30, compress=False) == b"\x1e" + b"a" * 30


def test_lzf_compressor_matches_liblzf_exactly() -> None:
    rng = random.Random(7)
    for n in list(range(5, 90)) + [255, 256, 1000, 9000]:
        for alphabet in (b"ab", b"abcdefgh", bytes(range(256)), b"a"):
            data = bytes(rng.choice(alphabet) for _ in range(n))
            pure = compression.compress_pure(data, n - 4)
            assert compression.compress_for_rdb(data) == pure
            if pure is not None:
                assert compression.decompress_pure(pure, n) == data
                assert compression.decompress(pure, n) == data


def test_lzf_empty_target_quirk() -> None:
    # lzf_decompress returns 0 for an empty target and Redis compares it with 0: "".
    assert _string(bytes.fromhex("c30000")) == b""
    assert _string(bytes.fromhex("c30200abcd")) == b""


@pytest.mark.parametrize(
    "data",
    [
        "c3 03 05 016162",  # literal run longer than input
        "c3 02 05 2000",  # back-reference before the start
        "c3 04 1e 016161e0",  # truncated back-reference
        "c3 09 1f 016161e01100016161",  # decompresses to 30, announced 31
        "c3 09 1d 016161e01100016161",  # output overflow
        "c3 0a 1e 016161e01100016161",  # compressed length past end
        "c3 01 81ffffffffffffffff 00",  # absurd expansion
    ],
)
def test_bad_lzf_is_refused(data: str) -> None:
    raw = bytes.fromhex(data.replace(" ", ""))
    with pytest.raises(PayloadError):
        read_string(raw, 0, len(raw))


@pytest.mark.parametrize("data", ["05616263", "c0", "c1ff", "c2000000", "c4", "ff", "4005ab", "40"])
def test_truncated_or_unknown_strings(data: str) -> None:
    raw = bytes.fromhex(data)
    with pytest.raises(PayloadError):
        read_string(raw, 0, len(raw))


def test_pure_lzf_decompressor_agrees_with_python_lzf_on_garbage() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(1, 40))
        ulen = rng.randrange(1, 120)
        try:
            fast = compression.decompress(data, ulen)
        except compression.LzfError:
            fast = None
        try:
            pure = compression.decompress_pure(data, ulen)
            pure = pure if len(pure) == ulen else None
        except compression.LzfError:
            pure = None
        assert fast == pure, data.hex()


# ---------------------------------------------------------------- integers as text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"0", 0),
        (b"-1", -1),
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"9223372036854775808", None),
        (b"-0", None),
        (b"00", None),
        (b"", None),
        (b"-", None),
        (b"+5", None),
        (b"5 ", None),
        (b"1e3", None),
        (b"\xd9\xa1", None),
        (b"123456789012345678901", None),
    ],
)
def test_canonical_integers(text: bytes, value: int | None) -> None:
    assert parse_canonical_int(text) == value


# ---------------------------------------------------------------- doubles


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"1.5", 1.5),
        (b"  2.5xyz", 2.5),
        (b"-3e2", -300.0),
        (b"0x1p3", 8.0),
        (b"0x1p99999", math.inf),  # strtod: HUGE_VAL (float.fromhex would raise)
        (b"-0x1p99999", -math.inf),
        (b"inf", math.inf),
        (b"-Infinity", -math.inf),
        (b".5", 0.5),
        (b"1e", 1.0),
        (b"0x", 0.0),
        (b"7\x009", 7.0),
        (b"abc", None),
        (b"", None),
        (b"   ", None),
    ],
)
def test_c_strtod_prefix(text: bytes, value: float | None) -> None:
    assert c_strtod_prefix(text) == value


def test_string_doubles() -> None:
    assert read_string_double(b"\xfe", 0, 1) == (math.inf, 1)
    assert read_string_double(b"\xff", 0, 1) == (-math.inf, 1)
    assert math.isnan(read_string_double(b"\xfd", 0, 1)[0])
    assert read_string_double(b"\x031.5", 0, 4) == (1.5, 4)
    for bad in (b"\x00", b"\x03abc", b"\x051.5"):
        with pytest.raises(PayloadError):
            read_string_double(bad, 0, len(bad))


def test_string_double_writer_round_trips() -> None:
    rng = random.Random(3)
    values = [0.1, -2.0, 1e300, 5e-324, 2.0**52, 2.0**53 + 2, -(2.0**60), math.inf, -math.inf]
    values += [rng.uniform(-1e9, 1e9) for _ in range(200)]
    for v in values:
        out = bytearray()
        primitives.append_string_double(out, v)
        assert read_string_double(bytes(out), 0, len(out)) == (v, len(out))
    out = bytearray()
    primitives.append_string_double(out, 3.0)
    assert bytes(out) == b"\x013"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, b"0.1"),
        (1e300, b"1e+300"),
        (2.5, b"2.5"),
        (1e-7, b"1e-7"),
        (1e-5, b"0.00001"),
        (1.5e-7, b"1.5e-7"),
        (123.456, b"123.456"),
        (1e21, b"1e+21"),
        (4.611686018427388e18, b"4611686018427388000"),
        (-0.25, b"-0.25"),
        (5e-324, b"5e-324"),
    ],
)
def test_fpconv_shortest_form(value: float, text: bytes) -> None:
    assert fpconv_dtoa(value) == text


def test_score_text_per_version() -> None:
    assert score_text(0.1, 10) == b"0.10000000000000001"
    assert score_text(0.1, 11) == b"0.1"
    assert score_text(math.inf, 12) == b"inf"
    assert score_text(-math.inf, 10) == b"-inf"
    assert score_text(-0.0, 12) == b"-0"
    rng = random.Random(9)
    for _ in range(500):
        v = rng.uniform(-1e6, 1e6) * 10 ** rng.randrange(-20, 20)
        assert float(score_text(v, 11)) == v
        assert float(score_text(v, 10)) == v


def test_pure_python_fallbacks_when_extensions_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "_lzf", None)
    assert _written(b"a" * 30).hex() == "c3091e016161e01100016161"
    assert _string(bytes.fromhex("c3091e016161e01100016161")) == b"a" * 30
    with pytest.raises(PayloadError):
        _string(bytes.fromhex("c3091f016161e01100016161"))


def test_seal_appends_version_and_crc_for_every_body_size() -> None:
    """Big bodies are sealed with one join and a CRC continued over the version: same bytes."""
    import struct

    from dumpling.payload import envelope

    rng = random.Random(99)
    for size in (0, 1, 100, envelope._SEAL_JOIN_MIN - 1, envelope._SEAL_JOIN_MIN, envelope._SEAL_JOIN_MIN + 7, 300000):
        body = bytes(rng.randrange(256) for _ in range(min(size, 64))) * (size // 64) + b"z" * (size % 64)
        for version in (6, 10, 12, 80, 300):
            head = body + struct.pack("<H", version)
            expected = head + struct.pack("<Q", crc64.crc64_pure(head) if size < 5000 else crc64.crc64(head))
            for given in (body, bytearray(body)):
                sealed = envelope.seal(given, version)
                assert type(sealed) is bytes and sealed == expected, (size, version)
