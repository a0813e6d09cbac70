"""Hash values: field -> value, plus per-field absolute expiry times (Redis 7.4 field TTLs)."""

from __future__ import annotations

from collections.abc import Iterable


class HashValue:
    TYPE = b"hash"
    __slots__ = ("fields", "field_expires", "encoding")

    def __init__(
        self,
        fields: Iterable[tuple[bytes, bytes]] | dict[bytes, bytes] = (),
        field_expires: dict[bytes, int] | None = None,
        encoding: str = "listpack",
    ) -> None:
        self.fields: dict[bytes, bytes] = dict(fields)
        # field -> absolute Unix ms; only fields that have a TTL appear here.
        self.field_expires: dict[bytes, int] = field_expires or {}
        self.encoding = encoding

    def __len__(self) -> int:
        return len(self.fields)

    def copy(self) -> HashValue:
        return HashValue(self.fields, dict(self.field_expires), self.encoding)
