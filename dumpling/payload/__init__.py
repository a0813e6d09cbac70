"""The DUMP/RESTORE payload codec: pure functions over bytes, byte-compatible with Redis 2.6 - 8.x and Valkey.

    check_envelope(payload, options)        -> None or PayloadError (§1.4 version gate + CRC-64)
    decode_payload(payload, options)        -> DecodedPayload(value, type_byte, rdb_version, ...)
    encode_payload(value, rdb_version, options) -> bytes (targets 6-12 and Valkey 80)
    min_rdb_version_for(value)              -> int

No sockets, no asyncio, no server state: everything configurable comes in through
``CodecOptions``.  Modules: ``primitives`` (lengths, strings, doubles), ``bulk`` (many
strings at once), ``crc64``, ``compression`` (LZF), ``listpack``/``ziplist``/``intset``/
``zipmap`` (blobs), ``quicklist`` (list node layout), ``packedlist`` (a restored list's
nodes, kept packed), ``stream``, ``decode``, ``encode``, ``envelope``.
"""

from dumpling.payload.decode import DecodedPayload, decode_payload, string_encoding
from dumpling.payload.encode import encode_payload, min_rdb_version_for, payload_version_for
from dumpling.payload.envelope import check_envelope
from dumpling.payload.errors import BAD_DATA_FORMAT, BAD_ENVELOPE, PayloadError
from dumpling.payload.options import DEFAULT_OPTIONS, CodecOptions

__all__ = [
    "BAD_DATA_FORMAT",
    "BAD_ENVELOPE",
    "DEFAULT_OPTIONS",
    "CodecOptions",
    "DecodedPayload",
    "PayloadError",
    "check_envelope",
    "decode_payload",
    "encode_payload",
    "min_rdb_version_for",
    "payload_version_for",
    "string_encoding",
]
