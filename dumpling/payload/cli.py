"""``dumpling-payload``: inspect and build DUMP payloads from the command line.

    dumpling-payload decode 0003626172 0a00e6be4960ee66fd17
    redis-cli --raw DUMP k | dumpling-payload decode
    dumpling-payload decode --file payload.bin --sanitize yes
    echo '{"type": "hash", "value": [["f", "v"]]}' | dumpling-payload encode --rdb-version 11

JSON strings stand for byte strings when they are valid UTF-8; any other byte
string is written (and may be given) as ``{"hex": "..."}``.  Scores that are not
finite are the strings ``"inf"`` / ``"-inf"``.  Stream IDs are ``"ms-seq"`` strings.
Only argument parsing and JSON live here; the codec does the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from dumpling.datatypes import HashValue, ListValue, SetValue, StreamValue, ZSetValue
from dumpling.datatypes.streams import Consumer, ConsumerGroup, PendingEntry
from dumpling.payload import listpack
from dumpling.payload.decode import Value, decode_payload
from dumpling.payload.encode import SUPPORTED_VERSIONS, encode_payload
from dumpling.payload.errors import PayloadError
from dumpling.payload.options import CodecOptions
from dumpling.payload.primitives import parse_canonical_int

# ---------------------------------------------------------------- bytes <-> JSON


def bytes_to_json(data: bytes | bytearray) -> Any:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": bytes(data).hex()}


def bytes_from_json(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, bool):
        raise ValueError("booleans are not strings")
    if isinstance(item, int):
        return b"%d" % item
    if isinstance(item, dict) and set(item) == {"hex"}:
        return bytes.fromhex(item["hex"])
    raise ValueError(f"not a byte string: {item!r}")


def _score_to_json(score: float) -> float | str:
    return score if math.isfinite(score) else ("inf" if score > 0 else "-inf")


def _score_from_json(item: Any) -> float:
    score = float(item)
    if math.isnan(score):
        raise ValueError("NaN is not a valid score")
    return score


def _id_to_json(entry_id: tuple[int, int]) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def _id_from_json(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


# ---------------------------------------------------------------- values <-> JSON


def type_name(value: Value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "string"
    return value.TYPE.decode()


def value_to_json(value: Value) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes_to_json(value)
    if isinstance(value, ListValue):
        return [bytes_to_json(x) for x in value.items]
    if isinstance(value, SetValue):
        return [bytes_to_json(x) for x in sorted(value.members)]
    if isinstance(value, ZSetValue):
        return [[bytes_to_json(m), _score_to_json(s)] for m, s in value.items_by_score()]
    if isinstance(value, HashValue):
        rows = []
        for field, val in value.fields.items():
            row = [bytes_to_json(field), bytes_to_json(val)]
            if field in value.field_expires:
                row.append(value.field_expires[field])
            rows.append(row)
        return rows
    return _stream_to_json(value)


def _stream_to_json(stream: StreamValue) -> dict[str, Any]:
    groups = []
    for name, group in stream.groups.items():
        groups.append(
            {
                "name": bytes_to_json(name),
                "last_id": _id_to_json(group.last_id),
                "entries_read": group.entries_read,
                "pending": [
                    {
                        "id": _id_to_json(entry_id),
                        "consumer": bytes_to_json(nack.consumer),
                        "delivery_time_ms": nack.delivery_time_ms,
                        "delivery_count": nack.delivery_count,
                    }
                    for entry_id, nack in group.pending.items()
                ],
                "consumers": [
                    {
                        "name": bytes_to_json(consumer.name),
                        "seen_time_ms": consumer.seen_time_ms,
                        "active_time_ms": consumer.active_time_ms,
                        "pending": [_id_to_json(i) for i in consumer.pending],
                    }
                    for consumer in group.consumers.values()
                ],
            }
        )
    return {
        "entries": [[_id_to_json(i), [bytes_to_json(x) for x in flat]] for i, flat in stream.entries.items()],
        "last_id": _id_to_json(stream.last_id),
        "first_id": _id_to_json(stream.first_id),
        "max_deleted_id": _id_to_json(stream.max_deleted_id),
        "entries_added": stream.entries_added,
        "groups": groups,
    }


def _stream_from_json(doc: dict[str, Any]) -> StreamValue:
    stream = StreamValue()
    for entry_id, flat in doc.get("entries", []):
        stream.entries[_id_from_json(entry_id)] = [bytes_from_json(x) for x in flat]
    keys = stream.entries.keys()
    stream.last_id = _id_from_json(doc["last_id"]) if "last_id" in doc else (keys[-1] if keys else (0, 0))
    stream.first_id = _id_from_json(doc["first_id"]) if "first_id" in doc else (keys[0] if keys else (0, 0))
    stream.max_deleted_id = _id_from_json(doc.get("max_deleted_id", "0-0"))
    stream.entries_added = int(doc.get("entries_added", len(stream.entries)))
    for g in doc.get("groups", []):
        group = ConsumerGroup(bytes_from_json(g["name"]), _id_from_json(g["last_id"]), int(g.get("entries_read", -1)))
        for p in g.get("pending", []):
            nack = PendingEntry(bytes_from_json(p["consumer"]), int(p["delivery_time_ms"]), int(p["delivery_count"]))
            group.pending[_id_from_json(p["id"])] = nack
        for c in g.get("consumers", []):
            consumer = Consumer(bytes_from_json(c["name"]), int(c["seen_time_ms"]), int(c.get("active_time_ms", -1)))
            for entry_id in c.get("pending", []):
                consumer.pending[_id_from_json(entry_id)] = group.pending[_id_from_json(entry_id)]
            group.consumers[consumer.name] = consumer
        stream.groups[group.name] = group
    return stream


def default_encoding(kind: str, value: Any, options: CodecOptions) -> str:
    """The encoding Redis gives a value of this shape when it is built from scratch with these thresholds."""
    if kind == "list":
        fits = listpack.HEADER_SIZE + 1 + sum(map(listpack.entry_size, value)) <= 8192
        return "listpack" if fits else "quicklist"
    if kind == "set":
        if len(value) <= options.set_max_intset_entries and all(parse_canonical_int(m) is not None for m in value):
            return "intset"
        small = len(value) <= options.set_max_listpack_entries
        return "listpack" if small and all(len(m) <= options.set_max_listpack_value for m in value) else "hashtable"
    if kind == "zset":
        small = len(value) <= options.zset_max_listpack_entries
        return "listpack" if small and all(len(m) <= options.zset_max_listpack_value for m in value) else "skiplist"
    fields, expires = value
    small = len(fields) <= options.hash_max_listpack_entries and all(
        len(f) <= options.hash_max_listpack_value and len(v) <= options.hash_max_listpack_value
        for f, v in fields.items()
    )
    if not small:
        return "hashtable"
    return "listpackex" if expires else "listpack"


def value_from_json(doc: dict[str, Any], options: CodecOptions) -> Value:
    kind = doc["type"]
    raw = doc["value"]
    encoding = doc.get("encoding")
    if kind == "string":
        return bytes_from_json(raw)
    if kind == "list":
        items = [bytes_from_json(x) for x in raw]
        return ListValue(items, encoding or default_encoding("list", items, options))
    if kind == "set":
        members = {bytes_from_json(x) for x in raw}
        return SetValue(members, encoding or default_encoding("set", members, options))
    if kind == "zset":
        pairs = {bytes_from_json(m): _score_from_json(s) for m, s in raw}
        return ZSetValue.from_pairs(pairs.items(), encoding or default_encoding("zset", pairs, options))
    if kind == "hash":
        fields: dict[bytes, bytes] = {}
        expires: dict[bytes, int] = {}
        if isinstance(raw, dict):  # {"field": "value", ...}: no field TTLs
            raw = list(raw.items())
        for row in raw:
            if not isinstance(row, (list, tuple)) or len(row) < 2:
                raise ValueError(f"a hash row is [field, value] or [field, value, expire_ms], not {row!r}")
            field = bytes_from_json(row[0])
            fields[field] = bytes_from_json(row[1])
            if len(row) > 2 and row[2] is not None:
                expires[field] = int(row[2])
        return HashValue(fields, expires, encoding or default_encoding("hash", (fields, expires), options))
    if kind == "stream":
        return _stream_from_json(raw)
    raise ValueError(f"unknown type {kind!r}")


# ---------------------------------------------------------------- command line


def _read_input(text_args: list[str], file: str | None) -> bytes:
    if file:
        with open(file, "rb") as fh:
            return fh.read()
    if text_args:
        return "".join(text_args).encode()
    return sys.stdin.buffer.read()


def _payload_bytes(data: bytes) -> list[bytes]:
    """Candidate payloads for raw input: hex text, or binary (with and without a trailing newline)."""
    stripped = data.strip()
    candidates = []
    compact = b"".join(stripped.split())
    if compact and len(compact) % 2 == 0:
        try:
            candidates.append(bytes.fromhex(compact.decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            pass
    candidates.append(data)
    if data.endswith(b"\n"):
        candidates.append(data[:-1])
    return candidates


def _decode_options(args: argparse.Namespace) -> CodecOptions:
    return CodecOptions(
        sanitize_payload=args.sanitize,
        rdb_version_check=args.version_check,
        max_rdb_version=args.max_rdb_version,
        skip_checksum=args.skip_checksum,
    )


def _cmd_decode(args: argparse.Namespace) -> int:
    options = _decode_options(args)
    error: PayloadError | None = None
    for candidate in _payload_bytes(_read_input(args.payload, args.file)):
        try:
            decoded = decode_payload(candidate, options)
        except PayloadError as exc:
            error = error or exc
            continue
        doc = {
            "type": type_name(decoded.value),
            "type_byte": decoded.type_byte,
            "encoding": decoded.encoding,
            "rdb_version": decoded.rdb_version,
            "value": value_to_json(decoded.value),
        }
        print(json.dumps(doc, indent=args.indent, ensure_ascii=False))
        return 0
    assert error is not None
    print(f"ERR {error.message}" + (f" ({error.detail})" if error.detail else ""), file=sys.stderr)
    return 1


def _cmd_encode(args: argparse.Namespace) -> int:
    options = CodecOptions(rdbcompression=not args.no_compression)
    try:
        doc = json.loads(_read_input(args.json, args.file))
        value = value_from_json(doc, options)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        print(f"ERR invalid value JSON: {exc}", file=sys.stderr)
        return 1
    print(encode_payload(value, args.rdb_version, options).hex())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dumpling-payload", description="Decode or build Redis DUMP payloads.")
    sub = parser.add_subparsers(dest="command", required=True)

    dec = sub.add_parser("decode", help="payload (hex argument, --file or stdin; hex or raw bytes) -> JSON")
    dec.add_argument("payload", nargs="*", help="payload as hex (spaces allowed)")
    dec.add_argument("--file", help="read the payload (raw or hex) from this file")
    dec.add_argument("--sanitize", choices=["no", "yes"], default="no", help="sanitize-dump-payload")
    dec.add_argument("--version-check", choices=["redis", "strict", "relaxed"], default="redis")
    dec.add_argument("--max-rdb-version", type=int, default=80, help="highest footer version accepted (default 80)")
    dec.add_argument("--skip-checksum", action="store_true")
    dec.add_argument("--indent", type=int, default=None)
    dec.set_defaults(handler=_cmd_decode)

    enc = sub.add_parser("encode", help="JSON {type, value[, encoding]} -> payload hex")
    enc.add_argument("json", nargs="*", help="the JSON document (else --file or stdin)")
    enc.add_argument("--file", help="read the JSON from this file")
    # The default is DUMP's (dump-rdb-version 10): every Redis >= 7.0 restores it; a value that
    # needs more (field TTLs) is still written at the lowest version that holds it.
    enc.add_argument("--rdb-version", type=int, default=10, choices=sorted(SUPPORTED_VERSIONS))
    enc.add_argument("--no-compression", action="store_true", help="rdbcompression no")
    enc.set_defaults(handler=_cmd_encode)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
