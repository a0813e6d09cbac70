"""DUMP, RESTORE and RESTORE-ASKING: the keyspace side of the payload codec.

The codec (``dumpling.payload``) turns bytes into values and back; this module
applies Redis's RESTORE processing order (spec §6.1) around it - options, BUSYKEY,
TTL, envelope, body, REPLACE, already-expired TTLs, LRU/LFU metadata, events - and
builds the ``CodecOptions`` a RESTORE or DUMP runs with from the server config.

Helpers for other families (MIGRATE, cluster), kept stable:

* ``dump_value(server, value) -> bytes`` - the payload DUMP would reply for ``value``.
* ``restore_key(c, argv) -> reply`` - RESTORE / RESTORE-ASKING on client ``c``
  (``argv[0]`` is the command name); raises ``CommandError`` with Redis's texts.
* ``load_payload(server, payload) -> DecodedPayload`` - envelope + body checks only,
  no keyspace change; raises ``CommandError``.
* ``codec_options(server, footer_version)`` - the options this server decodes with.

Version gates (§1.4, config ``rdb-version-check``): ``strict`` (default) accepts
every footer dumpling can read, i.e. Redis's rule for Redis 7.4 (footer <= 12, 0
included) plus Valkey 9.0's 80 and 9.2's 81; ``relaxed`` additionally accepts any other footer >= 1
the way Valkey 9 does (types >= 22 of a foreign 12-79 version are refused with
``Unsupported foreign data type``).  Redis 7.0 itself refuses footers 11 and 12.

DUMP writes at ``dump-rdb-version`` (default 10, Redis 7.0's), with ``rdbcompression``.
A value that version cannot hold without loss (hash field TTLs below 12, stream
metadata older stream types drop) is written at the lowest version that holds it
(``payload_version_for``): DUMP never silently drops data.

Must not: touch sockets, or decode anything itself (that is the codec's job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dumpling import collector
from dumpling.accel import PURE_PAYLOAD
from dumpling.commands.common import to_int
from dumpling.commands.registry import ORIGINAL, command
from dumpling.errors import BUSYKEY, SYNTAX, CommandError
from dumpling.keyspace import LRU_CLOCK_MAX, lfu_minutes, lru_clock
from dumpling.payload import CodecOptions, DecodedPayload, PayloadError, bulk, encode_payload, listpack
from dumpling.payload.decode import BLOB_MASK, body_value, open_value, values_built
from dumpling.payload.envelope import FOOTER_SIZE, VALKEY_VERSION_MIN, footer_version
from dumpling.persistence.propagation import deletion, propagate_as
from dumpling.protocol import OK

if TYPE_CHECKING:
    from dumpling.dispatch import Server

# The newest Redis RDB version dumpling reads (Redis 7.4 .. 8.4), and Valkey's (9.0 is 80, 9.2 is 81).
REDIS_MAX_RDB_VERSION = 12
VALKEY_MAX_RDB_VERSION = 81
INVALID_TTL = "Invalid TTL value, must be >= 0"
INVALID_IDLETIME = "Invalid IDLETIME value, must be >= 0"
INVALID_FREQ = "Invalid FREQ value, must be >= 0 and <= 255"
LRU_FIELD_MASK = (1 << 24) - 1
_U64 = (1 << 64) - 1
_I64_SIGN = 1 << 63

_RESTORE_ARGS = ("key ttl:integer serialized-value [REPLACE@3.0.0] [ABSTTL@5.0.0] [IDLETIME seconds:integer@5.0.0] "
                 "[FREQ frequency:integer@5.0.0]")
_RESTORE_HISTORY = (
    ("3.0.0", "Added the `REPLACE` modifier."),
    ("5.0.0", "Added the `ABSTTL` modifier."),
    ("5.0.0", "Added the `IDLETIME` and `FREQ` options."),
)
_RESTORE_COMPLEXITY = (
    "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number "
    "of Redis objects composing the value and M their average size. For small string values the time complexity is "
    "thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is "
    "O(N*M*log(N)) because inserting values into sorted sets is O(log(N))."
)
_DUMP_COMPLEXITY = (
    "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing "
    "the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is "
    "small, so simply O(1)."
)


def _int64(n: int) -> int:
    """``n`` wrapped to a signed 64-bit integer (C arithmetic on ``long long``)."""
    n &= _U64
    return n - (1 << 64) if n & _I64_SIGN else n


# ----------------------------------------------------------------------------- codec options


class DumpState:
    """Per-server cache of ``CodecOptions``, rebuilt when the config changes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._cache: dict[tuple[str, bool, bool], CodecOptions] = {}
        # DUMP's (dump-rdb-version, options), read on every DUMP and MIGRATE key
        self.writer: tuple[int, CodecOptions] | None = None
        # A client's options for the footers every server reads, by skip_checksum (RESTORE's common case)
        self.known_options: list[CodecOptions | None] = [None, None]
        server.config.listeners.append(self._config_changed)

    def _config_changed(self, name: str) -> None:
        self._cache.clear()
        self.writer = None
        self.known_options = [None, None]

    def options(self, gate: str, skip_checksum: bool, caller_is_client: bool) -> CodecOptions:
        key = (gate, skip_checksum, caller_is_client)
        options = self._cache.get(key)
        if options is None:
            options = self._cache[key] = _build_options(self.server, gate, skip_checksum, caller_is_client)
        return options


def _build_options(server: Server, gate: str, skip_checksum: bool, caller_is_client: bool) -> CodecOptions:
    cfg = server.config
    if gate == "known":  # Redis's "<= own version" rule; every footer we read passes it
        check, max_version = "redis", VALKEY_MAX_RDB_VERSION
    elif gate == "relaxed":
        check, max_version = "relaxed", VALKEY_MAX_RDB_VERSION
    else:  # refused: Redis's rule with our Redis version makes check_envelope say why
        check, max_version = "redis", REDIS_MAX_RDB_VERSION
    return CodecOptions(
        sanitize_payload=cfg["sanitize-dump-payload"],
        caller_is_client=caller_is_client,
        rdb_version_check=check,  # type: ignore[arg-type]
        max_rdb_version=max_version,
        skip_checksum=skip_checksum,
        rdbcompression=cfg["rdbcompression"],
        hash_max_listpack_entries=cfg["hash-max-listpack-entries"],
        hash_max_listpack_value=cfg["hash-max-listpack-value"],
        zset_max_listpack_entries=cfg["zset-max-listpack-entries"],
        zset_max_listpack_value=cfg["zset-max-listpack-value"],
        set_max_intset_entries=cfg["set-max-intset-entries"],
        set_max_listpack_entries=cfg["set-max-listpack-entries"],
        set_max_listpack_value=cfg["set-max-listpack-value"],
        list_max_listpack_size=cfg["list-max-listpack-size"],
        stream_node_max_bytes=cfg["stream-node-max-bytes"],
        stream_node_max_entries=cfg["stream-node-max-entries"],
    )


def _state(server: Server) -> DumpState:
    state = getattr(server, "dump_state", None)
    if state is None:
        setup(server)
        state = server.dump_state  # type: ignore[attr-defined]
    return state


def codec_options(server: Server, footer: int | None = None, *, caller_is_client: bool = True) -> CodecOptions:
    """The ``CodecOptions`` this server decodes a payload with footer version ``footer``
    (None: the options for writing, which ignore the version gate)."""
    if footer is None or footer <= REDIS_MAX_RDB_VERSION or VALKEY_VERSION_MIN <= footer <= VALKEY_MAX_RDB_VERSION:
        gate = "known"
    elif server.config["rdb-version-check"] == "relaxed":
        gate = "relaxed"
    else:
        gate = "refused"
    skip = bool(getattr(server, "skip_checksum", False))
    return _state(server).options(gate, skip, caller_is_client)


# ----------------------------------------------------------------------------- DUMP


def dump_value(server: Server, value: Any) -> bytes:
    """The DUMP payload of ``value`` as this server writes it: footer ``dump-rdb-version``
    (raised to the lowest version that holds the value, see the module docstring),
    LZF per ``rdbcompression``.  ``value`` must be a stored (non-empty) value."""
    return encode_payload(value, *dump_writer(server))


def dump_writer(server: Server) -> tuple[int, CodecOptions]:
    """What DUMP writes with: (``dump-rdb-version``, the codec options), cached until the
    config changes."""
    state = getattr(server, "dump_state", None) or _state(server)
    writer = state.writer
    if writer is None:
        writer = state.writer = (server.config["dump-rdb-version"], codec_options(server))
    return writer


@command("dump", 2, "readonly", (1, 1, 1), group="generic", since="2.6.0", args="key", key_flags="RO access",
         summary="Returns a serialized representation of the value stored at a key.",
         complexity=_DUMP_COMPLEXITY, tips="nondeterministic_output")
def dump(c: Any, argv: list[bytes]) -> Any:
    value = c.db.lookup_read(argv[1])  # a normal read: LRU/LFU, hits/misses, keymiss
    if value is None:
        return None
    writer = c.server.dump_state.writer  # dump_value's common case, inlined: DUMP of small keys is hot
    return encode_payload(value, *writer) if writer is not None else dump_value(c.server, value)


# ----------------------------------------------------------------------------- RESTORE


@dataclass(slots=True)
class RestoreOptions:
    """RESTORE's options after ``key ttl serialized-value`` (-1: not given)."""

    replace: bool = False
    absttl: bool = False
    idle_seconds: int = -1
    freq: int = -1
    lru_clock: int = -1  # the LRU clock sampled when IDLETIME was parsed


# Shared, never modified: RESTORE without options, or with only REPLACE, is the common case.
_NO_OPTIONS = RestoreOptions()
_REPLACE_ONLY = RestoreOptions(replace=True)


def parse_restore_options(c: Any, argv: list[bytes]) -> RestoreOptions:
    """Options from argv[4] on, left to right, Redis's checks and texts (§6.1 step 2)."""
    n = len(argv)
    if n == 4:
        return _NO_OPTIONS
    if n == 5 and (argv[4] == b"REPLACE" or argv[4].lower() == b"replace"):
        return _REPLACE_ONLY
    opts = RestoreOptions()
    j = 4
    while j < n:
        word = argv[j].lower()
        has_value = j + 1 < n
        if word == b"replace":
            opts.replace = True
        elif word == b"absttl":
            opts.absttl = True
        elif word == b"idletime" and has_value and opts.freq == -1:
            idle = to_int(argv[j + 1])
            if idle < 0:
                raise CommandError(INVALID_IDLETIME)
            opts.idle_seconds = idle
            opts.lru_clock = lru_clock(c.keyspace.now)
            j += 1
        elif word == b"freq" and has_value and opts.idle_seconds == -1:
            freq = to_int(argv[j + 1])
            if not 0 <= freq <= 255:
                raise CommandError(INVALID_FREQ)
            opts.freq = freq
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    return opts


def load_payload(server: Server, payload: bytes, *, caller_is_client: bool = True) -> DecodedPayload:
    """Verify and decode a DUMP payload with this server's settings; count sanitizations.

    Raises ``CommandError`` with ``DUMP payload version or checksum are wrong``,
    ``Bad data format`` (or Valkey's foreign-type text under ``relaxed``)."""
    footer = footer_version(payload) if len(payload) >= FOOTER_SIZE else REDIS_MAX_RDB_VERSION
    return DecodedPayload(*_open(server, payload, codec_options(server, footer, caller_is_client=caller_is_client)))


def _open(server: Server, payload: bytes, options: CodecOptions) -> tuple[Any, int, int, int]:
    """``open_value`` with Redis's reply texts for a refusal, sanitizations counted."""
    try:
        opened = open_value(payload, options)
    except PayloadError as e:
        if e.detail:
            server.log("verbose", f"RESTORE refused a payload: {e.detail}")
        raise CommandError(e.message) from None
    if opened[3]:
        server.stat_sanitizations = getattr(server, "stat_sanitizations", 0) + opened[3]
    return opened


def _client_options(server: Server, payload: bytes) -> CodecOptions:
    """The options a client's RESTORE decodes ``payload`` with (``codec_options`` for its footer)."""
    state = getattr(server, "dump_state", None) or _state(server)
    if len(payload) >= FOOTER_SIZE and payload[-9] == 0 and payload[-10] <= REDIS_MAX_RDB_VERSION:
        # A footer every server reads: one cached object per skip_checksum setting.
        options = state.known_options[server.skip_checksum]
        if options is None:
            options = state.known_options[server.skip_checksum] = state.options("known", server.skip_checksum, True)
        return options
    return codec_options(server, footer_version(payload) if len(payload) >= FOOTER_SIZE else None)


def lru_field_for_idle(idle_seconds: int, clock: int) -> int:
    """``objectSetLRUOrLFU``'s LRU field for IDLETIME, C overflow and wrap included."""
    idle = _int64(idle_seconds * 1000)
    idle = -(-idle // 1000) if idle < 0 else idle // 1000  # C division truncates
    absolute = _int64(clock - idle)
    if absolute < 0:
        absolute = _int64(absolute + LRU_CLOCK_MAX)
    return absolute & LRU_FIELD_MASK  # stored into a 24-bit field


def restore_key(c: Any, argv: list[bytes]) -> Any:
    """RESTORE / RESTORE-ASKING ``key ttl serialized-value [options]`` on client ``c``.

    Redis's order: options, BUSYKEY, TTL, envelope, body, REPLACE, already-expired
    TTL (``+OK`` and no key), create, LRU/LFU, ``restore`` event.  A refused payload
    changes nothing."""
    n = len(argv)
    if n == 4:
        opts = _NO_OPTIONS
    elif n == 5 and (argv[4] == b"REPLACE" or argv[4].lower() == b"replace"):
        opts = _REPLACE_ONLY
    else:
        opts = parse_restore_options(c, argv)
    db, ks = c.db, c.keyspace
    key = argv[1]
    if not opts.replace and db.lookup_write(key) is not None:
        raise CommandError(BUSYKEY)
    ttl = 0 if argv[2] == b"0" else to_int(argv[2])
    if ttl < 0:
        raise CommandError(INVALID_TTL)
    server = c.server
    payload = argv[3]
    value = _open(server, payload, _client_options(server, payload))[0]
    deleted = db.delete(key) if opts.replace else False
    now = ks.now
    when = ttl
    if ttl and not opts.absttl:
        when = _int64(ttl + now)  # a huge relative TTL overflows into the past, as in Redis
    if ttl and when <= now and not ks.loading:
        if deleted:
            ks.changed(db, key, b"del", "g")
            propagate_as(c, deletion(c.server.config, key, "lazyfree-lazy-server-del"))
        return OK
    db.add(key, value)
    if ks.notify_flags:
        ks.notify(db.index, "n", b"new", key)
    if ttl:
        db.set_expire(key, when)
    if ks.lfu:
        if opts.freq >= 0:
            db.set_field(key, (lfu_minutes(now) << 8) | opts.freq)
    elif opts.idle_seconds >= 0:
        db.set_field(key, lru_field_for_idle(opts.idle_seconds, opts.lru_clock))
    ks.changed(db, key, b"restore", "g")
    if ttl and not opts.absttl:  # a relative TTL propagates as its absolute time
        propagate_as(c, [*argv[:2], b"%d" % when, *argv[3:], b"ABSTTL"])
    return OK


# RESTORE and RESTORE-ASKING run restore_key itself (no wrapper frame: RESTORE of small keys
# is hot); the ``asking`` flag only matters to cluster routing.
restore = command(
    "restore", -4, "write denyoom", (1, 1, 1), group="generic", since="2.6.0", args=_RESTORE_ARGS,
    key_flags="OW update", acl="keyspace dangerous", history=_RESTORE_HISTORY, complexity=_RESTORE_COMPLEXITY,
    summary="Creates a key from the serialized representation of a value.", events="new restore del",
)(restore_key)
restore_asking = command(
    "restore-asking", -4, "write denyoom asking", (1, 1, 1), group="server", since="3.0.0",
    args=_RESTORE_ARGS, key_flags="OW update", acl="keyspace dangerous", history=_RESTORE_HISTORY,
    complexity=_RESTORE_COMPLEXITY, doc_flags="syscmd", summary="An internal command for migrating keys in a cluster.",
    events="new restore del",
)(restore_key)


# ----------------------------------------------------------------------------- native handlers


def _attach_native_handlers() -> None:
    """RESTORE's, RESTORE-ASKING's and DUMP's C handlers (``payload/_speedups.c``,
    ``Command.native``): the C request loop offers them a request first; they run the common
    form with these handlers' effects (the codec's own readers and writers, ``Database.add``'s
    steps) or decline it to them.  Attached once, at import (the loop reads ``Command.native``
    when it caches a lookup); not at all when the payload codec runs pure."""
    attach = getattr(bulk.speedups, "native_handlers", None)  # (None: pure, or a build without them)
    if PURE_PAYLOAD or attach is None:
        return
    builders = listpack.native if values_built else None  # small values built and dumped in C
    handlers = attach(
        OK, body_value, (collector.untrack, collector.hide), encode_payload, PayloadError, BLOB_MASK,
        getattr(builders, "small_value", None), getattr(builders, "dump_parts", None),
    )
    for name, handler in handlers.items():
        ORIGINAL[name.encode()].native = handler


def use_native_handlers(enabled: bool) -> None:
    """Run the native RESTORE/DUMP, or have them decline every call (tests compare both)."""
    switch = getattr(bulk.speedups, "set_native_handlers", None)
    if switch is not None:
        switch(enabled)


_attach_native_handlers()


def setup(server: Server) -> None:
    """Attach the option cache and the counters INFO and DEBUG read."""
    server.dump_state = DumpState(server)  # type: ignore[attr-defined]
    if not hasattr(server, "stat_sanitizations"):
        server.stat_sanitizations = 0  # type: ignore[attr-defined]
    if not hasattr(server, "skip_checksum"):
        server.skip_checksum = False  # type: ignore[attr-defined]
