"""``CodecOptions``: every server setting that changes how a payload is checked, read or written.

Defaults are Redis 7.4's defaults.  The codec never reads global state; the server
builds one of these from its config (and from who is calling) and passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SanitizeMode = Literal["no", "yes", "clients"]
# "redis": Redis >= 3.2.1 rule, footer <= max_rdb_version (0 accepted).
# "strict"/"relaxed": Valkey's rdb-version-check (Valkey 9 semantics).
VersionCheck = Literal["redis", "strict", "relaxed"]


@dataclass(frozen=True, slots=True)
class CodecOptions:
    # sanitize-dump-payload; "clients" deep-checks only when caller_is_client.
    sanitize_payload: SanitizeMode = "no"
    # False for the master link, AOF/RDB loading and ACL users with skip-sanitize-payload.
    caller_is_client: bool = True
    rdb_version_check: VersionCheck = "redis"
    # Our own RDB version: the highest footer RESTORE accepts (12 = Redis 7.4 .. 8.4).
    max_rdb_version: int = 12
    # DEBUG SET-SKIP-CHECKSUM-VALIDATION 1
    skip_checksum: bool = False
    # rdbcompression: LZF for strings and blobs longer than 20 bytes.
    rdbcompression: bool = True
    hash_max_listpack_entries: int = 512
    hash_max_listpack_value: int = 64
    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64
    set_max_intset_entries: int = 512
    set_max_listpack_entries: int = 128
    set_max_listpack_value: int = 64
    list_max_listpack_size: int = -2
    stream_node_max_bytes: int = 4096
    stream_node_max_entries: int = 100

    # Whether RESTORE runs Redis's deep integrity validation for this caller (derived, not
    # an argument: computed once here, read on every RESTORE).
    deep_sanitize: bool = field(init=False, repr=False, compare=False)
    # What the C builder of small values reads (``_listpack.small_value``), in one tuple:
    # (deep_sanitize, zset entries, intset entries, set listpack entries, hash entries, list fill,
    # set listpack value).
    small_limits: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        deep = self.sanitize_payload == "yes" or (self.sanitize_payload == "clients" and self.caller_is_client)
        object.__setattr__(self, "deep_sanitize", deep)
        limits = (
            int(deep),
            self.zset_max_listpack_entries,
            self.set_max_intset_entries,
            self.set_max_listpack_entries,
            self.hash_max_listpack_entries,
            self.list_max_listpack_size,
            self.set_max_listpack_value,
        )
        object.__setattr__(self, "small_limits", limits)


DEFAULT_OPTIONS = CodecOptions()
