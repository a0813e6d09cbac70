"""``dumpling-payload`` (dumpling.payload.cli.main): decode to JSON, encode from JSON, binary-safe strings."""

from __future__ import annotations

import io
import json
import sys

import pytest

from dumpling.payload import decode_payload, encode_payload
from dumpling.payload.cli import main

BAR_70 = "0003626172 0a00 e6be4960ee66fd17"


def run(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        code = main(argv)
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    return code, out, err


def test_decode_hex_argument(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["decode", *BAR_70.split()], capsys)
    assert code == 0
    assert json.loads(out) == {
        "type": "string",
        "type_byte": 0,
        "encoding": "embstr",
        "rdb_version": 10,
        "value": "bar",
    }


def test_decode_raw_stdin_with_trailing_newline(capsys: pytest.CaptureFixture[str]) -> None:
    payload = encode_payload(b"\xff\x00binary", 12)
    code, out, _ = run(["decode"], capsys, stdin=payload + b"\n")
    assert code == 0
    assert json.loads(out)["value"] == {"hex": "ff0062696e617279"}


def test_decode_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.bin"
    path.write_bytes(
        bytes.fromhex(
            "12 01 02 10 10 00 00 00 03 00 81 61 02 81 62 02 81 63 02 ff 0a 00 c8 18 b9 0c 95 33 52 9e".replace(" ", "")
        )
    )
    code, out, _ = run(["decode", "--file", str(path)], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["type"] == "list" and doc["value"] == ["a", "b", "c"] and doc["type_byte"] == 18


def test_decode_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["decode", "0003626172 0a00 e6be4960ee66fd18"], capsys)
    assert code == 1 and "DUMP payload version or checksum are wrong" in err
    code, _, err = run(["decode", "--skip-checksum", "0803626172 0a00 e6be4960ee66fd18"], capsys)
    assert code == 1 and "Bad data format" in err
    code, out, _ = run(["decode", "--skip-checksum", "0003626172 0a00 e6be4960ee66fd18"], capsys)
    assert code == 0 and json.loads(out)["value"] == "bar"


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "string", "value": "hello"},
        {"type": "string", "value": {"hex": "00ff"}},
        {"type": "list", "value": ["a", "1", {"hex": "80"}]},
        {"type": "set", "value": ["1", "2", "3"]},
        {"type": "set", "value": ["a", "b"]},
        {"type": "zset", "value": [["a", 1.0], ["b", 2.5], ["c", "inf"], ["d", "-inf"]]},
        {"type": "hash", "value": [["f", "v"], ["g", "1", 2524600800000]]},
        {"type": "hash", "encoding": "hashtable", "value": [["f", "v"]]},
        {
            "type": "stream",
            "value": {
                "entries": [["1-1", ["f", "v"]], ["2-0", ["g", "w"]]],
                "groups": [
                    {
                        "name": "g",
                        "last_id": "1-1",
                        "entries_read": 1,
                        "pending": [{"id": "1-1", "consumer": "c", "delivery_time_ms": 5, "delivery_count": 1}],
                        "consumers": [{"name": "c", "seen_time_ms": 5, "active_time_ms": 5, "pending": ["1-1"]}],
                    }
                ],
            },
        },
    ],
)
def test_encode_then_decode_round_trip(doc: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["encode", "--rdb-version", "12", json.dumps(doc)], capsys)
    assert code == 0
    payload_hex = out.strip()
    decode_payload(bytes.fromhex(payload_hex))
    code, out, _ = run(["decode", payload_hex], capsys)
    back = json.loads(out)
    assert code == 0 and back["type"] == doc["type"]
    expected = doc["value"]
    if doc["type"] == "set":
        expected = sorted(expected)
    if doc["type"] in ("zset", "hash"):  # zsets come back by score, listpackex hashes by TTL
        expected = sorted(map(str, expected))
        back["value"] = sorted(map(str, back["value"]))
    if doc["type"] == "stream":
        assert back["value"]["entries"] == expected["entries"]
        assert back["value"]["groups"] == expected["groups"]
        return
    assert back["value"] == expected


def test_encode_picks_redis_encodings_and_versions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["encode", "--rdb-version", "10", '{"type": "set", "value": ["a"]}'], capsys)
    assert code == 0 and out.strip() == "020101610a006296e97e44d21a6d"
    code, out, _ = run(["encode", "--rdb-version", "11", '{"type": "set", "value": ["a"]}'], capsys)
    assert out.strip() == "140a0a0000000100816102ff0b00f7df7fdb99ef7b74"
    code, out, _ = run(["encode", "--rdb-version", "9", '{"type": "hash", "value": [["a", "1", 5]]}'], capsys)
    assert bytes.fromhex(out.strip())[-10] == 12  # field TTLs need RDB 12
    code, out, _ = run(
        ["encode", "--no-compression", '{"type": "string", "value": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}'], capsys
    )
    assert bytes.fromhex(out.strip())[:2] == b"\x00\x1e"


def test_encode_from_stdin_and_bad_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["encode", "--rdb-version", "10"], capsys, stdin=b'{"type": "string", "value": "bar"}')
    assert code == 0 and out.strip() == BAR_70.replace(" ", "")
    code, _, err = run(["encode", '{"type": "nope", "value": 1}'], capsys)
    assert code == 1 and "invalid value JSON" in err
    code, _, err = run(["encode", "not json"], capsys)
    assert code == 1


def test_encode_defaults_to_dumps_version_and_takes_hash_objects(capsys: pytest.CaptureFixture[str]) -> None:
    """The default footer is DUMP's (10, restorable by Redis 7.0); a hash may be a JSON object;
    malformed rows are an error message, not a traceback."""
    code, out, _ = run(["encode", '{"type": "string", "value": "bar"}'], capsys)
    assert code == 0 and out.strip() == BAR_70.replace(" ", "")
    code, out, _ = run(["encode", '{"type": "hash", "value": {"f": "v"}}'], capsys)
    code2, out2, _ = run(["encode", '{"type": "hash", "value": [["f", "v"]]}'], capsys)
    assert code == code2 == 0 and out == out2 and bytes.fromhex(out.strip())[-10] == 10
    for bad in ('{"type": "hash", "value": ["x"]}', '{"type": "hash", "value": [["only-field"]]}'):
        code, _, err = run(["encode", bad], capsys)
        assert code == 1 and err.startswith("ERR invalid value JSON: ")
