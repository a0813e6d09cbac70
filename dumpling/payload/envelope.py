"""The DUMP envelope (§1): ``type+body | RDB version u16 LE | CRC-64 u64 LE`` and RESTORE's version gate (§1.4)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from dumpling.payload import bulk
from dumpling.payload.crc64 import crc64
from dumpling.payload.errors import BAD_ENVELOPE, PayloadError
from dumpling.payload.options import DEFAULT_OPTIONS, CodecOptions

FOOTER_SIZE = 10
# Valkey reserves 12..79 for "foreign" (Redis) RDB versions and uses 80+ itself.
FOREIGN_VERSION_MIN = 12
FOREIGN_VERSION_MAX = 79
VALKEY_VERSION_MIN = 80

_FOOTER_CRC = struct.Struct("<Q")
_VERSION_BYTES = [struct.pack("<H", v) for v in range(256)]


def footer_version(payload: bytes | bytearray | memoryview) -> int:
    """The RDB version in the footer (caller ensured len >= 10)."""
    return payload[-10] | (payload[-9] << 8)


def is_foreign_version(version: int) -> bool:
    return FOREIGN_VERSION_MIN <= version <= FOREIGN_VERSION_MAX


def version_accepted(version: int, options: CodecOptions = DEFAULT_OPTIONS) -> bool:
    """The footer-version rule of §1.4 for the configured server."""
    check = options.rdb_version_check
    if check == "redis":
        return version <= options.max_rdb_version
    if check == "strict":
        return 1 <= version <= options.max_rdb_version and not is_foreign_version(version)
    if check == "relaxed":
        return version >= 1
    raise ValueError(f"unknown rdb_version_check {check!r}")


def check_envelope(payload: bytes | bytearray | memoryview, options: CodecOptions = DEFAULT_OPTIONS) -> None:
    """verifyDumpPayload: length, footer version, CRC-64 over everything but the CRC itself."""
    size = len(payload)
    if size < FOOTER_SIZE:
        raise PayloadError(BAD_ENVELOPE, "payload shorter than its footer")
    version = payload[-10] | (payload[-9] << 8)
    if not (
        version <= options.max_rdb_version
        if options.rdb_version_check == "redis"
        else version_accepted(version, options)
    ):
        raise PayloadError(BAD_ENVELOPE, f"RDB version {version} not accepted")
    if options.skip_checksum:
        return
    # A small payload is cheaper to slice than to view; a big one must not be copied.
    covered = payload[: size - 8] if size < 4096 else memoryview(payload)[: size - 8]
    if crc64(covered) != _FOOTER_CRC.unpack_from(payload, size - 8)[0]:
        raise PayloadError(BAD_ENVELOPE, "CRC-64 mismatch")


_SEAL_JOIN_MIN = 1 << 16


def seal(body: bytes | bytearray, rdb_version: int) -> bytes:
    """Append the footer to ``type byte + body``."""
    speedups = bulk.speedups
    if speedups is not None:
        sealed = speedups.seal(body, rdb_version)  # small bodies: one C call
        if sealed is not None:
            return sealed
    if len(body) >= _SEAL_JOIN_MIN:
        # A big body is copied once (not twice): the CRC runs on as it would over the
        # concatenation.  Fresh pages cost a page fault each, more than the copying.
        version = _VERSION_BYTES[rdb_version] if rdb_version < 256 else struct.pack("<H", rdb_version)
        return b"".join((body, version, _FOOTER_CRC.pack(crc64(version, crc64(body)))))
    head = body + _VERSION_BYTES[rdb_version] if rdb_version < 256 else bytes(body) + struct.pack("<H", rdb_version)
    if type(head) is not bytes:
        head = bytes(head)
    return head + _FOOTER_CRC.pack(crc64(head))


# A footer for a writer that seals its own buffer: the version's bytes, the CRC-64 function.
Footer = tuple[bytes, Callable[[Any], int]]


def footer_parts(rdb_version: int) -> Footer:
    """``seal``'s footer for a writer that seals its own buffer (a big list's, written in C): the
    version's bytes to append, then the CRC-64 (the function given) of everything before them."""
    version = _VERSION_BYTES[rdb_version] if rdb_version < 256 else struct.pack("<H", rdb_version)
    return version, crc64


def reseal(payload: bytes | bytearray) -> bytes:
    """Recompute the CRC of a payload whose body was altered (tests, fuzzing)."""
    head = bytes(payload[:-8])
    return head + struct.pack("<Q", crc64(head))
