"""RDB files: the envelope around the payload codec's value bodies.

A file is ``REDIS`` + 4 version digits, AUX fields, FUNCTION2 libraries, then per
non-empty database SELECTDB + RESIZEDB + key records (``[EXPIRETIME_MS] [IDLE|FREQ]
type key body``), EOF and the CRC-64 of everything before it (``spec/rdb-file.md``).
Value bodies are exactly DUMP bodies, so this module only frames them:
``dumpling.payload`` encodes and decodes every type.

* ``RdbWriter`` streams a file to a binary file object (CRC-64 computed on the way,
  8 zero bytes when ``rdbchecksum no``), buffering about 1 MB at a time.
* ``write_databases`` writes a whole keyspace snapshot given plain dicts.
* ``RdbParser`` walks a file held in memory and yields records; every inconsistency
  raises ``RdbError`` with the log text Redis prints for it.

Pure: no server, no sockets, no clock reads except through arguments.  Must not
decide policy (which keys to drop, what a function record means): the caller does.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from dumpling import accel
from dumpling.datatypes import HashValue, StreamValue
from dumpling.keyspace import lfu_decayed, lru_idle_ms
from dumpling.keytable import NATIVE as NATIVE_KEYTABLE
from dumpling.payload import CodecOptions, PayloadError, min_rdb_version_for
from dumpling.payload.crc64 import crc64
from dumpling.payload.decode import (
    TYPE_HASH,
    TYPE_HASH_LISTPACK,
    TYPE_HASH_ZIPLIST,
    TYPE_HASH_ZIPMAP,
    TYPE_LIST,
    TYPE_LIST_QUICKLIST,
    TYPE_LIST_QUICKLIST_2,
    TYPE_LIST_ZIPLIST,
    TYPE_SET,
    TYPE_SET_INTSET,
    TYPE_SET_LISTPACK,
    TYPE_ZSET,
    TYPE_ZSET_2,
    TYPE_ZSET_LISTPACK,
    TYPE_ZSET_ZIPLIST,
    Value,
    decode_body,
    module_type_name,
)
from dumpling.payload.encode import SUPPORTED_VERSIONS, encode_body
from dumpling.payload.primitives import append_len, append_string, read_len, read_string

# Opcodes (spec §3).
OP_SLOT_INFO = 0xF4
OP_FUNCTION2 = 0xF5
OP_FUNCTION_PRE_GA = 0xF6
OP_MODULE_AUX = 0xF7
OP_IDLE = 0xF8
OP_FREQ = 0xF9
OP_AUX = 0xFA
OP_RESIZEDB = 0xFB
OP_EXPIRETIME_MS = 0xFC
OP_EXPIRETIME = 0xFD
OP_SELECTDB = 0xFE
OP_EOF = 0xFF

# The newest Redis RDB version read here (Redis 7.4), and Valkey 9's own (9.0: 80, 9.2: 81).
MAX_REDIS_RDB_VERSION = 12
VALKEY_RDB_VERSION = 80
MAX_VALKEY_RDB_VERSION = 81

# The C loop over plain string keys (see _snapshot.c: it leaves the objects untouched,
# which keeps a BGSAVE child's copy-on-write small).  Tests switch it with ``use_native``.
native = None if accel.PURE else accel._load("dumpling.persistence._snapshot")
use_native = native is not None

_I64 = struct.Struct("<q")
_I32 = struct.Struct("<i")
_U64 = struct.Struct("<Q")
_FLUSH_AT = 1 << 20
# Types whose body is one count (0 means an empty key, skipped on load as Redis does).
_COUNTED_TYPES = frozenset({TYPE_LIST, TYPE_SET, TYPE_ZSET, TYPE_HASH, TYPE_ZSET_2, TYPE_LIST_QUICKLIST,
                            TYPE_LIST_QUICKLIST_2})
# Types whose body is one blob (an empty blob is an empty key).
_BLOB_TYPES = frozenset({TYPE_HASH_ZIPMAP, TYPE_LIST_ZIPLIST, TYPE_SET_INTSET, TYPE_ZSET_ZIPLIST, TYPE_HASH_ZIPLIST,
                         TYPE_HASH_LISTPACK, TYPE_ZSET_LISTPACK, TYPE_SET_LISTPACK})


class RdbError(Exception):
    """A file that must not be loaded.  ``message`` is the line Redis logs for it;
    ``short_read`` marks a truncated file (Redis's "Short read or OOM loading DB")."""

    def __init__(self, message: str, offset: int = 0, short_read: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.short_read = short_read


# ----------------------------------------------------------------------------- writing


def magic(version: int) -> bytes:
    """``REDIS0010``; Valkey 9 writes ``VALKEY`` + 3 digits for its own versions (>= 80)."""
    if version >= VALKEY_RDB_VERSION:
        return b"VALKEY%03d" % version
    return b"REDIS%04d" % version


def file_version_for(databases: Iterable[Mapping[bytes, Value]], wanted: int) -> int:
    """The version a file must carry so that every value is written without loss: ``wanted``
    (``dump-rdb-version``) raised to the lowest version that holds each value (as DUMP)."""
    if wanted not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported target RDB version {wanted}")
    if wanted >= VALKEY_RDB_VERSION:
        return wanted
    version = wanted
    for data in databases:
        values = native.non_strings(data) if use_native and type(data) is NATIVE_KEYTABLE else data.values()
        for value in values:
            if type(value) is bytes or type(value) is bytearray:
                continue
            if isinstance(value, (HashValue, StreamValue)):
                need = min_rdb_version_for(value)
                if need > version:
                    version = need
    return version


class RdbWriter:
    """Streams one RDB file to ``stream``; call ``finish()`` to write EOF and the CRC."""

    def __init__(self, stream: BinaryIO, version: int, options: CodecOptions, checksum: bool = True) -> None:
        self.stream = stream
        self.version = version
        self.options = options
        self.compress = options.rdbcompression
        self.checksum = checksum
        self.crc = 0
        self.written = 0
        self.out = bytearray(magic(version))

    def flush(self) -> None:
        out = self.out
        if out:
            if self.checksum:
                self.crc = crc64(out, self.crc)
            self.stream.write(out)
            self.written += len(out)
            self.out = bytearray()

    def append_raw(self, chunk: bytes) -> None:
        """Bytes already framed as records (the C string loop's output)."""
        self.out += chunk
        if len(self.out) >= _FLUSH_AT:
            self.flush()

    def aux(self, key: bytes, value: bytes) -> None:
        out = self.out
        out.append(OP_AUX)
        append_string(out, key, self.compress)
        append_string(out, value, self.compress)

    def function(self, source: bytes) -> None:
        """One function library (FUNCTION2: its full source, ``#!lua name=...``)."""
        self.out.append(OP_FUNCTION2)
        append_string(self.out, source, self.compress)

    def select_db(self, index: int, size: int, expires: int) -> None:
        out = self.out
        out.append(OP_SELECTDB)
        append_len(out, index)
        out.append(OP_RESIZEDB)
        append_len(out, size)
        append_len(out, expires)

    def key(self, key: bytes, value: Value, expire_ms: int = -1, idle_s: int = -1, freq: int = -1) -> None:
        out = self.out
        if expire_ms != -1:
            out.append(OP_EXPIRETIME_MS)
            out += _I64.pack(expire_ms)
        if idle_s >= 0:
            out.append(OP_IDLE)
            append_len(out, idle_s)
        elif freq >= 0:
            out.append(OP_FREQ)
            out.append(freq)
        if type(value) is bytes:
            out.append(0)
            append_string(out, key, self.compress)
            append_string(out, value, self.compress)
        else:
            body = encode_body(value, self.version, self.options)
            out.append(body[0])
            append_string(out, key, self.compress)
            out += memoryview(body)[1:]
        if len(out) >= _FLUSH_AT:
            self.flush()

    def finish(self) -> int:
        """EOF and the CRC-64 trailer (zeros without checksum); returns the file size."""
        self.out.append(OP_EOF)
        self.flush()
        self.stream.write(_U64.pack(self.crc if self.checksum else 0))
        self.written += 8
        return self.written


@dataclass
class DatabaseSnapshot:
    """What the writer needs of one database (read only): its number, its KeyTable (values and
    LRU/LFU fields, ``dumpling.keytable``) and expiry dict."""

    index: int
    data: Any
    expires: Mapping[bytes, int]


def write_databases(
    writer: RdbWriter,
    databases: Iterable[DatabaseSnapshot],
    policy: str,
    now_ms: int,
    lfu_decay_time: int,
    progress: Callable[[int], None] | None = None,
    every: int = 1024,
) -> int:
    """Every non-empty database as SELECTDB + RESIZEDB + key records; returns the key count.

    ``policy``: ``"lru"`` writes IDLE (seconds idle), ``"lfu"`` writes FREQ (the decayed
    counter), anything else neither - what Redis does for its maxmemory-policy.
    ``progress(keys_done)`` is called every ``every`` keys (a power of two)."""
    done = 0
    mask = every - 1
    policy_code = 1 if policy == "lru" else 2 if policy == "lfu" else 0
    for db in databases:
        data = db.data
        if not data:
            continue
        expires = db.expires
        writer.select_db(db.index, len(data), len(expires))
        key_record = writer.key
        if use_native and every == 1024 and type(data) is NATIVE_KEYTABLE and type(expires) is dict:
            done += native.write_strings(data, expires, policy_code, now_ms, lfu_decay_time, writer.compress,
                                         writer.append_raw, key_record)
            if progress is not None:
                progress(done)
            continue
        for key, value in data.items():
            when = expires.get(key, -1) if expires else -1
            idle = freq = -1
            if policy == "lru":
                idle = lru_idle_ms(data.get_field(key, 0), now_ms) // 1000
            elif policy == "lfu":
                freq = lfu_decayed(data.get_field(key, 0), now_ms, lfu_decay_time)
            key_record(key, value, when, idle, freq)
            done += 1
            if progress is not None and not done & mask:
                progress(done)
    return done


# ----------------------------------------------------------------------------- reading


@dataclass
class Aux:
    key: bytes
    value: bytes


@dataclass
class Function:
    source: bytes


@dataclass
class SelectDb:
    index: int


@dataclass
class KeyRecord:
    db: int
    key: bytes
    value: Value | None  # None: an empty collection, skipped (Redis logs and goes on)
    expire_ms: int
    idle_s: int
    freq: int


@dataclass
class Loaded:
    """Plain string records the C loop put straight into ``RdbParser.fast``'s dicts."""

    keys: int
    expired: int


Record = Aux | Function | SelectDb | KeyRecord | Loaded


def read_version(buf: bytes) -> int:
    """Check the signature and version of a file (``REDIS0001``..``REDIS0012``, ``VALKEY080``/``081``)."""
    if len(buf) < 9:
        raise RdbError("Short read or OOM loading DB. Unrecoverable error, aborting now.", 0, short_read=True)
    if buf[:5] == b"REDIS" and buf[5:9].isdigit():
        version = int(buf[5:9])
        if 1 <= version <= MAX_REDIS_RDB_VERSION:
            return version
    elif buf[:6] == b"VALKEY" and buf[6:9].isdigit():
        version = int(buf[6:9])
        if VALKEY_RDB_VERSION <= version <= MAX_VALKEY_RDB_VERSION:
            return version
    else:
        raise RdbError("Wrong signature trying to load DB from file")
    raise RdbError(f"Can't handle RDB format version {version}")


class RdbParser:
    """Walks a whole file held in memory.  ``records()`` yields what the caller must apply;
    ``pos`` tells how far it got (for progress); the CRC is checked after EOF."""

    def __init__(self, buf: bytes, options: CodecOptions, verify_checksum: bool = True) -> None:
        self.buf = buf
        self.options = options
        self.verify_checksum = verify_checksum
        self.version = read_version(buf)
        self.pos = 9
        self.checksum_disabled = False  # a stored CRC of 0: "saved with checksum disabled"
        # (data, expires, a new key's LRU/LFU field, now ms) of the current database when the
        # caller lets plain string records skip the record objects (see _snapshot.load_strings;
        # data a C KeyTable): they arrive as ``Loaded`` counts.  Set it again after each ``SelectDb``.
        self.fast: tuple[Any, dict, int, int] | None = None

    def _short(self) -> RdbError:
        return RdbError("Short read or OOM loading DB. Unrecoverable error, aborting now.", self.pos,
                        short_read=True)

    def records(self) -> Iterator[Record]:
        buf, end, version, options = self.buf, len(self.buf), self.version, self.options
        pos = self.pos
        db = 0
        expire = idle = freq = -1
        try:
            while True:
                self.pos = pos
                if pos >= end:
                    raise self._short()
                op = buf[pos]
                fast = self.fast
                if (fast is not None and use_native and (op == 0 or op == OP_EXPIRETIME_MS)
                        and expire == -1 and idle == -1 and freq == -1):
                    data, expires, field, now = fast
                    taken, loaded, expired = native.load_strings(buf, pos, 1024, data, expires, field, now)
                    if taken != pos:
                        pos = self.pos = taken
                        yield Loaded(loaded, expired)
                        continue
                pos += 1
                if op == OP_EXPIRETIME_MS:
                    if pos + 8 > end:
                        raise self._short()
                    expire = _I64.unpack_from(buf, pos)[0]
                    pos += 8
                elif op == OP_EXPIRETIME:
                    if pos + 4 > end:
                        raise self._short()
                    expire = _I32.unpack_from(buf, pos)[0] * 1000
                    pos += 4
                elif op == OP_FREQ:
                    if pos >= end:
                        raise self._short()
                    freq = buf[pos]
                    pos += 1
                elif op == OP_IDLE:
                    idle, pos = read_len(buf, pos, end)
                elif op == OP_EOF:
                    break
                elif op == OP_SELECTDB:
                    db, pos = read_len(buf, pos, end)
                    yield SelectDb(db)
                elif op == OP_RESIZEDB:
                    _, pos = read_len(buf, pos, end)
                    _, pos = read_len(buf, pos, end)
                elif op == OP_SLOT_INFO:
                    for _ in range(3):
                        _, pos = read_len(buf, pos, end)
                elif op == OP_AUX:
                    key, pos = read_string(buf, pos, end)
                    value, pos = read_string(buf, pos, end)
                    yield Aux(key, value)
                elif op == OP_FUNCTION2:
                    source, pos = read_string(buf, pos, end)
                    self.pos = pos
                    yield Function(source)
                elif op == OP_FUNCTION_PRE_GA:
                    raise RdbError("Pre-release function format not supported.", pos - 1)
                elif op == OP_MODULE_AUX:
                    module_id, pos = read_len(buf, pos, end)
                    raise RdbError("The RDB file contains AUX module data I can't load: no matching module "
                                   f"'{module_type_name(module_id)}'", pos)
                else:
                    key, pos = read_string(buf, pos, end)
                    value: Value | None
                    empty_at = _empty_body_end(buf, pos, end, op)
                    if empty_at is not None:
                        value, pos = None, empty_at
                    else:
                        try:
                            value, pos = decode_body(buf, pos, end, op, options, version)
                        except PayloadError as e:
                            if op in _BLOB_TYPES and e.detail.startswith("empty"):
                                _, pos = read_string(buf, pos, end)
                                value = None
                            else:
                                raise
                    self.pos = pos
                    yield KeyRecord(db, key, value, expire, idle, freq)
                    expire = idle = freq = -1
        except PayloadError as e:
            detail = e.detail or e.message
            if "past end" in detail:
                raise self._short() from None
            raise RdbError(f"Internal error in RDB reading offset {self.pos}, function at rdb.py -> {detail}",
                           self.pos) from None
        self.pos = pos
        if version >= 5:
            if pos + 8 > end:
                raise self._short()
            stored = _U64.unpack_from(buf, pos)[0]
            self.pos = pos + 8
            if stored == 0:
                self.checksum_disabled = True
            elif self.verify_checksum:
                expected = crc64(memoryview(buf)[:pos])
                if expected != stored:
                    raise RdbError(f"Wrong RDB checksum expected: ({expected:x}) but got ({stored:x}). Aborting now.",
                                   pos)


def _empty_body_end(buf: bytes, pos: int, end: int, type_byte: int) -> int | None:
    """Where an empty counted collection's body ends, or None if it is not one."""
    if type_byte in _COUNTED_TYPES and pos < end and buf[pos] == 0:
        return pos + 1
    return None
