"""An AOF base file as commands (``aof-use-rdb-preamble no``): Redis's rewrite format.

What Redis 7.4's ``rewriteAppendOnlyFileRio`` writes, so the file replays on dumpling and
on Redis 7.0 alike: an optional ``#TS:<unix seconds>`` line (``aof-timestamp-enabled``),
``FUNCTION LOAD <source>`` per library, then per non-empty database ``SELECT <n>`` and
per key the commands that rebuild it - ``SET``; ``RPUSH``/``SADD``/``ZADD``/``HMSET`` of
at most 64 items each (AOF_REWRITE_ITEMS_PER_CMD); a hash with field TTLs as one
``HMSET`` per field plus ``HPEXPIREAT ... FIELDS 1 <field>``; a stream as ``XADD`` per
entry (``XADD key MAXLEN 0 0-1 x y`` when empty), ``XSETID ... ENTRIESADDED
MAXDELETEDID``, ``XGROUP CREATE ... ENTRIESREAD`` per group, ``XGROUP CREATECONSUMER``
for a consumer with no pending entries, ``XCLAIM ... TIME RETRYCOUNT JUSTID FORCE`` per
pending entry - and ``PEXPIREAT key <ms>`` after a key with a TTL.  Keys already expired
are written with their TTL, as Redis does: the loader keeps them until the expiry cycle.

Pure: writes to a binary file object; must not decide when a rewrite happens (``aof``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from dumpling.datatypes.hashes import HashValue
from dumpling.datatypes.lists import ListValue
from dumpling.datatypes.sets import SetValue
from dumpling.datatypes.streams import StreamValue
from dumpling.datatypes.zsets import ZSetValue
from dumpling.fpconv import fpconv_dtoa
from dumpling.protocol import encode_request

ITEMS_PER_CMD = 64  # AOF_REWRITE_ITEMS_PER_CMD
_FLUSH_AT = 1 << 20


def _id(stream_id: tuple[int, int]) -> bytes:
    return b"%d-%d" % stream_id


def timestamp_annotation(unix_seconds: int) -> bytes:
    """``#TS:<seconds>\\r\\n`` (genAofTimestampAnnotationIfNeeded)."""
    return b"#TS:%d\r\n" % unix_seconds


def _chunked(verb: bytes, key: bytes, items: Iterable[list[bytes]], count: int) -> Iterable[bytes]:
    """``verb key item...`` commands of at most ITEMS_PER_CMD items (an item: 1 or 2 args)."""
    left = count
    batch: list[bytes] = []
    in_batch = 0
    for item in items:
        batch += item
        in_batch += 1
        if in_batch == ITEMS_PER_CMD or in_batch == left:
            yield encode_request([verb, key, *batch])
            left -= in_batch
            batch, in_batch = [], 0


def key_commands(key: bytes, value: Any) -> Iterable[bytes]:
    """The RESP commands that rebuild ``value`` under ``key`` (no TTL); TypeError if unknown."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        yield encode_request([b"SET", key, bytes(value)])
    elif kind is ListValue:
        yield from _chunked(b"RPUSH", key, ([item] for item in value), len(value))
    elif kind is SetValue:
        yield from _chunked(b"SADD", key, ([member] for member in value), len(value))
    elif kind is ZSetValue:
        pairs = ([fpconv_dtoa(score), member] for member, score in value.items_by_score())
        yield from _chunked(b"ZADD", key, pairs, len(value))
    elif kind is HashValue:
        if not value.field_expires:
            yield from _chunked(b"HMSET", key, ([f, v] for f, v in value.fields.items()), len(value))
            return
        for f, v in value.fields.items():  # with field TTLs: one field per command, as Redis
            yield encode_request([b"HMSET", key, f, v])
            when = value.field_expires.get(f)
            if when is not None:
                yield encode_request([b"HPEXPIREAT", key, b"%d" % when, b"FIELDS", b"1", f])
    elif kind is StreamValue:
        yield from _stream_commands(key, value)
    else:
        raise TypeError(f"no AOF rewrite for a value of type {kind.__name__}")


def _stream_commands(key: bytes, s: StreamValue) -> Iterable[bytes]:
    if s.entries:
        for entry_id, flat in s.entries.items():
            yield encode_request([b"XADD", key, _id(entry_id), *flat])
    else:  # the XADD MAXLEN 0 trick makes an empty stream
        yield encode_request([b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"])
    yield encode_request([b"XSETID", key, _id(s.last_id), b"ENTRIESADDED", b"%d" % s.entries_added,
                    b"MAXDELETEDID", _id(s.max_deleted_id)])
    for name in sorted(s.groups):  # rax order
        group = s.groups[name]
        yield encode_request([b"XGROUP", b"CREATE", key, name, _id(group.last_id), b"ENTRIESREAD",
                        b"%d" % group.entries_read])
        for consumer_name in sorted(group.consumers):
            consumer = group.consumers[consumer_name]
            if not consumer.pending:
                yield encode_request([b"XGROUP", b"CREATECONSUMER", key, name, consumer_name])
                continue
            for entry_id, nack in consumer.pending.items():
                yield encode_request([b"XCLAIM", key, name, consumer_name, b"0", _id(entry_id), b"TIME",
                                b"%d" % nack.delivery_time_ms, b"RETRYCOUNT", b"%d" % nack.delivery_count,
                                b"JUSTID", b"FORCE"])


def write_command_base(out: BinaryIO, databases: Iterable[tuple[int, dict[bytes, Any], dict[bytes, int]]],
                       function_sources: Iterable[bytes], timestamp: int | None = None,
                       progress: Callable[[int], None] | None = None) -> None:
    """The whole dataset as commands (``databases``: (index, data, expires) triples);
    ``progress(keys written)`` is called after every key."""
    buf = bytearray()
    if timestamp is not None:
        buf += timestamp_annotation(timestamp)
    for source in function_sources:
        buf += encode_request([b"FUNCTION", b"LOAD", source])
    written = 0
    for index, data, expires in databases:
        if not data:
            continue
        buf += encode_request([b"SELECT", b"%d" % index])
        for key, value in data.items():
            for cmd in key_commands(key, value):
                buf += cmd
                if len(buf) >= _FLUSH_AT:
                    out.write(buf)
                    buf.clear()
            when = expires.get(key)
            if when is not None:
                buf += encode_request([b"PEXPIREAT", key, b"%d" % when])
            written += 1
            if progress is not None:
                progress(written)
    out.write(buf)
