"""CRC-64/Jones as Redis computes it for the DUMP footer (reflected poly 0x95AC9329AC4BC9B5, init 0, no xor-out).

Uses ``anycrc`` (C, table-driven, GB/s) when importable; otherwise a pure-Python
table loop (about 1 µs per byte, fine for tests, slow for big payloads).
``crc64(data, crc)`` is incremental: ``crc64(b, crc64(a)) == crc64(a + b)``.
"""

from __future__ import annotations

POLY_REFLECTED = 0x95AC9329AC4BC9B5


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ POLY_REFLECTED if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc64_pure(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """Reference implementation; also the fallback when anycrc is missing."""
    table = _TABLE
    for b in bytes(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


try:
    import anycrc as _anycrc

    _MODEL = _anycrc.Model("CRC64-REDIS")

    def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
        return _MODEL.calc(data, crc)

    ACCELERATED = True
except ImportError:  # pragma: no cover - exercised only where anycrc is absent
    crc64 = crc64_pure
    ACCELERATED = False
