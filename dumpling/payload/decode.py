"""RESTORE's reading side: a verified payload -> an in-memory value with the encoding Redis 7.4 would give it.

Dispatches on the type byte (never on the footer version, except to tell Valkey's
type 22 from Redis's), parses the body with bounds checks everywhere, applies the
checks Redis always applies and, when sanitizing, the deep ones (§6.5), then picks
the post-load encoding from the configured thresholds (§6.4).  Anything wrong ->
``PayloadError("Bad data format")``; nothing else escapes.

Where Redis (unsanitized) would accept a body it could not actually use - an odd
number of hash listpack entries, a PEL entry without an owner, duplicate IDs - we
refuse it: the value model cannot hold it and the client gets a clean error.
"""

from __future__ import annotations

import gc
import math
import struct
from collections import deque
from collections.abc import Callable
from functools import partial

from dumpling.accel import PURE_PAYLOAD
from dumpling.datatypes import HashValue, ListValue, SetValue, StreamValue, ZSetValue, hashes, sets, zsets
from dumpling.datatypes.hashes import NO_FIELD_TTLS
from dumpling.datatypes.scoreindex import ScoreIndex
from dumpling.payload import bulk, intset, listpack, packedlist, quicklist, stream, ziplist, zipmap
from dumpling.payload.envelope import FOOTER_SIZE, VALKEY_VERSION_MIN, check_envelope, is_foreign_version
from dumpling.payload.errors import FOREIGN_TYPE, PayloadError, bad_data
from dumpling.payload.options import DEFAULT_OPTIONS, CodecOptions
from dumpling.payload.primitives import (
    MASK64,
    parse_canonical_int,
    read_count,
    read_len,
    read_millis,
    read_string,
    read_string_double,
    score_text,
)

Value = bytes | ListValue | SetValue | HashValue | ZSetValue | StreamValue

# RDB object type bytes (§4.1).
TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE_PRE_GA = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19
TYPE_SET_LISTPACK = 20
TYPE_STREAM_LISTPACKS_3 = 21
TYPE_HASH_22 = 22  # Redis: HASH_METADATA_PRE_GA; Valkey >= 9 (footer >= 80): HASH_2
TYPE_HASH_LISTPACK_EX_PRE_GA = 23
TYPE_HASH_METADATA = 24
TYPE_HASH_LISTPACK_EX = 25

EB_EXPIRE_TIME_MAX = (1 << 48) - 1
_LP_SAFE = listpack.MAX_SAFE_SIZE
_GC_PAUSE_THRESHOLD = 1 << 16
_F64 = struct.Struct("<d")
_MODULE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class DecodedPayload:
    """What RESTORE needs from a payload (a plain slotted class: built once per RESTORE)."""

    __slots__ = ("value", "type_byte", "rdb_version", "sanitizations")

    def __init__(self, value: Value, type_byte: int, rdb_version: int, sanitizations: int = 0) -> None:
        self.value = value
        self.type_byte = type_byte
        self.rdb_version = rdb_version
        # How many blobs were deep-validated (Redis's INFO dump_payload_sanitizations).
        self.sanitizations = sanitizations

    def __repr__(self) -> str:
        return f"DecodedPayload(type_byte={self.type_byte}, rdb_version={self.rdb_version}, value={self.value!r:.60})"

    @property
    def encoding(self) -> str:
        """OBJECT ENCODING after RESTORE."""
        value = self.value
        if isinstance(value, (bytes, bytearray)):
            return string_encoding(value)
        return value.encoding


def string_encoding(value: bytes | bytearray) -> str:
    """OBJECT ENCODING of a restored string: int, embstr (<= 44 bytes) or raw."""
    if isinstance(value, bytearray):
        return "raw"
    if parse_canonical_int(value) is not None:
        return "int"
    return "embstr" if len(value) <= 44 else "raw"


class DecodeContext:
    """What every body reader needs: the buffer, its usable end and the validation mode."""

    __slots__ = ("buf", "end", "deep", "options", "rdb_version", "sanitizations", "blob_end")

    def __init__(self, buf: bytes, end: int, options: CodecOptions, rdb_version: int, blob_end: int = 0) -> None:
        self.buf = buf
        self.end = end
        self.deep = options.deep_sanitize
        self.options = options
        self.rdb_version = rdb_version
        self.sanitizations = 0
        # A body that is one rdbString (``_FROM_BLOB``): where that rdbString ends in ``buf``.
        self.blob_end = blob_end

    def blob(self, pos: int) -> tuple[bytes, int]:
        return read_string(self.buf, pos, self.end)


def decode_payload(payload: bytes | bytearray | memoryview, options: CodecOptions = DEFAULT_OPTIONS) -> DecodedPayload:
    """Verify the envelope (§1.4) and decode the value; raises PayloadError with Redis's reply text."""
    return DecodedPayload(*open_value(payload, options))


def open_value(
    payload: bytes | bytearray | memoryview, options: CodecOptions = DEFAULT_OPTIONS
) -> tuple[Value, int, int, int]:
    """``decode_payload`` as a plain tuple: (value, type byte, footer version, sanitizations)
    (RESTORE of small keys is hot: no object to build around the value)."""
    speedups = bulk.speedups
    opened = None
    if speedups is not None and options.rdb_version_check == "redis":
        # A small payload's envelope (and its body, when that is one rdbString) in one C call.
        opened = speedups.open_payload(payload, options.max_rdb_version, not options.skip_checksum, BLOB_MASK)
    if opened is None:
        check_envelope(payload, options)
        buf = payload if type(payload) is bytes else bytes(payload)
        version = buf[-10] | (buf[-9] << 8)
        if len(buf) < 11:
            raise bad_data("payload has no type byte")
        type_byte = buf[0]
        body = read_string(buf, 1, len(buf) - 10)[0] if type_byte == TYPE_STRING else None
        body_end = 0
    else:
        buf = payload  # bytes: open_payload takes nothing else
        type_byte, version, body, body_end = opened
    if type_byte == TYPE_STRING:  # the common small case, without the reader machinery
        return body, TYPE_STRING, version, 0
    if options.rdb_version_check != "redis" and is_foreign_version(version) and type_byte >= TYPE_HASH_22:
        raise PayloadError(FOREIGN_TYPE.format(type_byte=type_byte), "foreign RDB version")
    value, sanitizations = body_value(buf, type_byte, version, body, body_end, options)
    # Like Redis, bytes left between the body and the footer are ignored.
    return value, type_byte, version, sanitizations


def body_value(
    buf: bytes, type_byte: int, version: int, body: bytes | None, body_end: int, options: CodecOptions
) -> tuple[Value, int]:
    """The value of a payload whose envelope was verified (not a string), and how many
    sanitizations it took.  ``body``: the one rdbString ``open_payload`` read (a ``_FROM_BLOB``
    type; ``body_end``: where it ends in ``buf``), or None: the type's reader reads the body.
    ``open_value`` and the native RESTORE (``_speedups``) share it."""
    if body is not None and values_built and listpack.native is not None:
        # The small listpack/intset values built in C (the readers below stay the reference).
        value = listpack.native.small_value(type_byte, body, options, buf, body_end)
        if value is not None:
            return value, 0
    end = len(buf) - FOOTER_SIZE
    ctx = DecodeContext(buf, end, options, version, body_end)
    if body is not None:
        try:
            return _FROM_BLOB[type_byte](ctx, body, type_byte), ctx.sanitizations
        except PayloadError:
            raise
        except Exception as exc:  # a missed check must still surface as a clean refusal
            raise bad_data(f"internal: {exc!r}") from exc
    reader = _READERS.get(type_byte)
    if reader is None:
        raise bad_data(f"unknown object type {type_byte}")
    # Big collections allocate millions of tuples; the cyclic GC finds nothing to free
    # in them, so it is paused while they are built (as pickle users often do).
    gc_was_enabled = gc.isenabled()
    if gc_was_enabled and end > _GC_PAUSE_THRESHOLD:
        gc.disable()
    try:
        value, _ = reader(ctx, 1, type_byte)
    except PayloadError:
        raise
    except Exception as exc:  # a missed check must still surface as a clean refusal
        raise bad_data(f"internal: {exc!r}") from exc
    finally:
        if gc_was_enabled:
            gc.enable()
    return value, ctx.sanitizations


def decode_body(
    buf: bytes, pos: int, end: int, type_byte: int, options: CodecOptions, rdb_version: int
) -> tuple[Value, int]:
    """One value body inside a larger buffer (an RDB file): ``(value, position after it)``.

    The same readers and checks as ``decode_payload``, without an envelope; the caller
    supplies the RDB version of the file (it only tells Valkey's type 22 from Redis's)."""
    if type_byte == TYPE_STRING:
        return read_string(buf, pos, end)
    reader = _READERS.get(type_byte)
    if reader is None:
        raise bad_data(f"Unknown RDB encoding type {type_byte}")
    ctx = DecodeContext(buf, end, options, rdb_version)
    try:
        return reader(ctx, pos, type_byte)
    except PayloadError:
        raise
    except Exception as exc:  # a missed check must still surface as a clean refusal
        raise bad_data(f"internal: {exc!r}") from exc


# ---------------------------------------------------------------------------
# strings


def _read_string_value(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[bytes, int]:
    return read_string(ctx.buf, pos, ctx.end)


def _read_strings(ctx: DecodeContext, pos: int, count: int) -> tuple[list[bytes], int]:
    """``count`` consecutive rdbStrings."""
    return bulk.read_strings(ctx.buf, pos, ctx.end, count)


def _read_pairs(ctx: DecodeContext, pos: int, count: int) -> tuple[list[bytes], list[bytes], int]:
    """``count`` (rdbString, rdbString) pairs as two parallel lists."""
    (firsts, seconds), pos = bulk.read_records(ctx.buf, pos, ctx.end, count, "ss")
    return firsts, seconds, pos


# ---------------------------------------------------------------------------
# lists


def _list_encoding_after_load(nodes: list[tuple[int, int, int]], options: CodecOptions) -> str:
    """listTypeTryConversion(LIST_CONV_AUTO) for loaded nodes given as (container, bytes, count)."""
    if len(nodes) != 1 or nodes[0][0] != quicklist.CONTAINER_PACKED:
        return "quicklist"
    return _one_node_encoding(nodes[0][1], nodes[0][2], options)


def _one_node_encoding(size: int, count: int, options: CodecOptions) -> str:
    """``_list_encoding_after_load`` of one PACKED node of ``size`` bytes and ``count`` elements."""
    fill = options.list_max_listpack_size
    if fill < 0:  # the default: a size limit
        return "quicklist" if size > quicklist.node_limits(fill)[0] else "listpack"  # type: ignore[operator]
    size_limit, count_limit = quicklist.node_limits(fill)
    if (size_limit is not None and size > size_limit) or (count_limit is not None and count > count_limit):
        return "quicklist"
    return "listpack"


def _pushed_nodes(items: list[bytes], options: CodecOptions) -> list[tuple[int, int, int]]:
    """The first nodes quicklistPushTail (7.4 rules) makes of ``items``; stops once there are two."""
    packer = quicklist.NodePacker("7.4", options.list_max_listpack_size, start_as_listpack=False)
    for item in items:
        packer.push(item)
        if len(packer.nodes) > 1:
            break
    return [(n.container, n.size, len(n.items)) for n in packer.nodes]


def _read_list(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[ListValue, int]:
    count, pos = read_count(ctx.buf, pos, ctx.end)
    if count == 0:
        raise bad_data("empty list")
    items, pos = _read_strings(ctx, pos, count)
    return ListValue(items, _list_encoding_after_load(_pushed_nodes(items, ctx.options), ctx.options)), pos


def _read_list_ziplist(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[ListValue, int]:
    blob, pos = ctx.blob(pos)
    return _list_from_ziplist(ctx, blob, type_byte), pos


def _list_from_ziplist(ctx: DecodeContext, blob: bytes, type_byte: int) -> ListValue:
    items = ziplist.decode(blob)
    if not items:
        raise bad_data("empty list ziplist")
    # Redis 7.4 leaves a type-10 list as a quicklist (no conversion call on this path).
    return ListValue(items, "quicklist")


def _read_quicklist_2(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[ListValue, int]:
    """Type 18: the nodes are checked and kept as they are; elements are decoded on first use."""
    packed, pos, sanitizations = packedlist.read_nodes(ctx.buf, pos, ctx.end, ctx.deep)
    ctx.sanitizations += sanitizations
    value = ListValue.from_packed(packed, _list_encoding_after_load(packed.shape(), ctx.options))
    value.adopt_layout(packed.layout())
    return value, pos


def _list_from_one_node(ctx: DecodeContext, blob: bytes, type_byte: int) -> ListValue:
    """Type 18 of one PACKED node (``open_payload`` read its listpack): ``_read_quicklist_2``'s value."""
    packed = packedlist.one_node(ctx.buf, 3, ctx.blob_end, blob, ctx.deep)
    if ctx.deep:
        ctx.sanitizations += 1
    count = packed.length
    value = ListValue.from_packed(packed, _one_node_encoding(len(blob), count, ctx.options))
    value.adopt_layout(((count, len(blob), False),))
    return value


def _read_quicklist(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[ListValue, int]:
    """Type 14: every ziplist node becomes a listpack node, the node cut kept (as Redis >= 7.0 loads it)."""
    buf, end = ctx.buf, ctx.end
    node_count, pos = read_count(buf, pos, end)
    if node_count == 0:
        raise bad_data("empty quicklist")
    items: deque[bytes] = deque()
    nodes: list[tuple[int, int, int]] = []
    for _ in range(node_count):
        data, pos = read_string(buf, pos, end)
        if not data:
            raise bad_data("quicklist node of zero bytes")
        elements = ziplist.decode(data)
        if not elements:
            continue  # Redis silently skips empty nodes
        items.extend(elements)
        size = listpack.HEADER_SIZE + 1 + sum(map(listpack.entry_size, elements))
        nodes.append((quicklist.CONTAINER_PACKED, size, len(elements)))
    if not items:
        raise bad_data("quicklist without elements")
    value = ListValue((), _list_encoding_after_load(nodes, ctx.options))
    value.items = items
    value.adopt_layout([(count, size, False) for _, size, count in nodes])
    return value, pos


# ---------------------------------------------------------------------------
# sets


def _read_set(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[SetValue, int]:
    count, pos = read_count(ctx.buf, pos, ctx.end)
    if count == 0:
        raise bad_data("empty set")
    opts = ctx.options
    # rdbLoadObject RDB_TYPE_SET: hashtable up front if too many for an intset, else
    # intset -> listpack -> hashtable as members arrive.
    if count > min(opts.set_max_intset_entries, 1 << 30):
        unique, pos = bulk.read_set(ctx.buf, pos, ctx.end, count)
        if len(unique) != count:
            raise bad_data("duplicate set members")
        value = SetValue((), "hashtable")
        value.members = unique
        return value, pos
    members, pos = _read_strings(ctx, pos, count)
    # The encoding the member-by-member conversion ends in (intset -> listpack -> hashtable,
    # each step checked as the member arrives): intset if every member is a canonical
    # integer; else listpack if the whole set fits the listpack limits (reaching the end
    # as a listpack means every member from the first non-integer on passed the checks,
    # which cover the lengths of all the members before it too); else hashtable.
    encoding = "intset"
    for member in members:
        if parse_canonical_int(member) is None:
            lengths = list(map(len, members))
            total = sum(lengths)
            small = count <= opts.set_max_listpack_entries and max(lengths) <= opts.set_max_listpack_value
            encoding = "listpack" if small and total <= _LP_SAFE else "hashtable"
            break
    value = SetValue(members, encoding)
    if len(value.members) != count:
        raise bad_data("duplicate set members")
    return value, pos


def _read_set_intset(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[SetValue, int]:
    blob, pos = ctx.blob(pos)
    return _set_from_intset(ctx, blob, type_byte), pos


def _set_from_intset(ctx: DecodeContext, blob: bytes, type_byte: int) -> SetValue:
    if ctx.deep:
        ctx.sanitizations += 1
    members = intset_members(blob, ctx.deep)
    encoding = "hashtable" if len(members) > ctx.options.set_max_intset_entries else "intset"
    if encoding == "intset" and type(blob) is bytes and _intset_packable(blob, members):
        # ascending at its narrowest width: kept as it came until first used (SetValue.packed)
        return SetValue.packed(blob, "intset")
    return SetValue(members, encoding)


def _intset_packable(blob: bytes, members: list[bytes]) -> bool:
    """The intset's values strictly ascend and its width is the narrowest that holds them (what
    Redis writes; what a built intset set DUMPs and sizes)."""
    values = list(map(int, members))
    if any(a >= b for a, b in zip(values, values[1:], strict=False)):
        return False
    low, high = values[0], values[-1]
    width = 2 if -32768 <= low and high <= 32767 else 4 if -(1 << 31) <= low and high < (1 << 31) else 8
    return blob[0] == width


def intset_members(blob: bytes, deep: bool) -> list[bytes]:
    """An intset blob's values as decimal texts (``intset.decode``'s checks and refusals)."""
    native = listpack.native
    if native is not None and type(blob) is bytes:
        return native.intset_members(blob, deep)
    return intset_members_py(blob, deep)


def intset_members_py(blob: bytes, deep: bool) -> list[bytes]:
    """``intset_members`` in pure Python (the reference for the C one)."""
    return list(map(b"%d".__mod__, intset.decode(blob, deep)))


def _read_set_listpack(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[SetValue, int]:
    blob, pos = ctx.blob(pos)
    return _set_from_listpack(ctx, blob, type_byte), pos


def _set_from_listpack(ctx: DecodeContext, blob: bytes, type_byte: int) -> SetValue:
    if ctx.deep:
        ctx.sanitizations += 1
    members = listpack.decode(blob, ctx.deep)
    if not members:
        raise bad_data("empty set listpack")
    value = SetValue(members, "hashtable" if len(members) > ctx.options.set_max_listpack_entries else "listpack")
    if ctx.deep and len(value.members) != len(members):
        raise bad_data("duplicate set listpack members")
    if (value.encoding == "listpack" and type(blob) is bytes
            and len(value.members) == len(members) == blob[4] | blob[5] << 8):
        # distinct members, the header's count exact: kept as it came until first used
        return SetValue.packed(blob, "listpack")
    return value


def _unpack_set_blob(blob: bytes) -> SetValue:
    """A packed set's value, built (``_set_from_intset``'s or ``_set_from_listpack``'s, not
    deep): an intset's blob starts with its width (2, 4 or 8), a listpack's with its total size
    (at least 9 bytes when it holds a member)."""
    native = listpack.native
    built = native.set_built(blob) if values_built and native is not None else None
    if built is not None:
        return built  # type: ignore[no-any-return]
    if blob[0] in (2, 4, 8) and blob[1:4] == b"\0\0\0":
        return SetValue(intset_members(blob, False), "intset")
    return SetValue(listpack.decode(blob, False), "listpack")


sets.unpack_blob = _unpack_set_blob


# ---------------------------------------------------------------------------
# sorted sets


def _zset_from_pairs(pairs: list[tuple[bytes, float]], encoding: str, deep_dups: bool) -> ZSetValue:
    """Build the value; duplicates keep the first occurrence (what a listpack lookup finds)."""
    zset = ZSetValue.from_pairs(pairs, encoding)
    if len(zset.scores) != len(pairs):
        if deep_dups:
            raise bad_data("duplicate sorted set members")
        first: dict[bytes, float] = {}
        for member, score in pairs:
            first.setdefault(member, score)
        zset = ZSetValue.from_pairs(first.items(), encoding)
    if encoding == "listpack" and 0.0 in zset.scores.values():
        # from_pairs stores 0 for -0 (ZADD's rule), but a loaded "-0" entry stays -0:
        # Redis reads the listpack/ziplist text back with strtod (ZSCORE answers -0).
        scores = zset.scores
        for member, score in pairs:
            if score == 0 and math.copysign(1.0, score) < 0 and member in scores and scores[member] == 0:
                zset.index.remove((scores[member], member))
                zset.index.add((-0.0, member))
                scores[member] = -0.0
    return zset


def _read_zset(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[ZSetValue, int]:
    buf, end = ctx.buf, ctx.end
    count, pos = read_count(buf, pos, end, 2)
    if count == 0:
        raise bad_data("empty sorted set")
    if type_byte == TYPE_ZSET_2:
        (members, scores), pos = bulk.read_records(buf, pos, end, count, "sd")
    else:
        members = []
        scores = []
        for _ in range(count):
            member, pos = read_string(buf, pos, end)
            score, pos = read_string_double(buf, pos, end)
            members.append(member)
            scores.append(score)
    if any(map(math.isnan, scores)):
        raise bad_data("zset with NaN score")
    opts = ctx.options
    small = (
        count <= opts.zset_max_listpack_entries
        and max(map(len, members)) <= opts.zset_max_listpack_value
        and sum(map(len, members)) <= _LP_SAFE
    )
    zset = ZSetValue.from_pairs(zip(members, scores, strict=True), "listpack" if small else "skiplist")
    if len(zset.scores) != count:
        raise bad_data("duplicate sorted set members")
    return zset, pos


def _read_zset_listpack(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[ZSetValue, int]:
    blob, pos = ctx.blob(pos)
    return _zset_from_listpack(ctx, blob, type_byte), pos


def _zset_from_listpack(ctx: DecodeContext, blob: bytes, type_byte: int) -> ZSetValue:
    if type_byte == TYPE_ZSET_LISTPACK:
        if ctx.deep:
            ctx.sanitizations += 1
        pairs = listpack.zset_pairs(blob, ctx.deep)
        deep_dups = ctx.deep
    else:
        pairs = listpack.zset_pairs_from_elements(ziplist.decode(blob, ints_as_bytes=False))
        deep_dups = True  # ziplist pairs are always checked for duplicates
    if not pairs:
        raise bad_data("empty sorted set")
    encoding = "skiplist" if len(pairs) > ctx.options.zset_max_listpack_entries else "listpack"
    zset = _zset_from_pairs(pairs, encoding, deep_dups)
    if (type_byte == TYPE_ZSET_LISTPACK and encoding == "listpack" and type(blob) is bytes
            and 2 * len(pairs) == 2 * len(zset) == blob[4] | blob[5] << 8
            and list(zset.index) == [(score, member) for member, score in pairs]):
        # distinct members in order, the header's count exact: kept as it came until first
        # used (ZSetValue.packed), so DUMP writes these bytes back
        return ZSetValue.packed(blob, ctx.rdb_version)
    return zset


def _unpack_zset_listpack(blob: bytes) -> ZSetValue:
    """A packed zset's value, built (``_zset_from_listpack``'s, not deep)."""
    native = listpack.native
    built = native.zset_built(blob) if values_built and native is not None else None
    if built is None:
        built = _zset_from_pairs(listpack.zset_pairs(blob, False), "listpack", False)
    return built  # type: ignore[no-any-return]


zsets.unpack_listpack = _unpack_zset_listpack


# ---------------------------------------------------------------------------
# hashes


def _read_hash(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    count, pos = read_count(ctx.buf, pos, ctx.end, 2)
    if count == 0:
        raise bad_data("empty hash")
    opts = ctx.options
    if count > opts.hash_max_listpack_entries:  # a hashtable from the start: read into its table
        value = HashValue((), None, "hashtable")
        table, pos = bulk.read_dict(ctx.buf, pos, ctx.end, count, value.fields)
        if len(table) != count:
            raise bad_data("duplicate hash fields")
        return value, pos
    keys, values, pos = _read_pairs(ctx, pos, count)
    limit = opts.hash_max_listpack_value
    fields: dict[bytes, bytes] = {}
    encoding = "listpack"
    # Pairs go into a listpack until one is too long; duplicates there are only
    # caught when sanitizing (Redis keeps both; a lookup finds the first).
    listpack_dups = False
    total = 0
    for start in range(count):
        field, val = keys[start], values[start]
        total += len(field) + len(val)
        if len(field) > limit or len(val) > limit or total > _LP_SAFE:
            if listpack_dups or field in fields:
                raise bad_data("duplicate hash fields")
            # a hashtable from here on: the rest must be new and distinct
            encoding = "hashtable"
            before = len(fields)
            fields.update(zip(keys[start:], values[start:], strict=True))
            if len(fields) != before + count - start:
                raise bad_data("duplicate hash fields")
            break
        if field in fields:
            if ctx.deep:
                raise bad_data("hash with duplicate fields")
            listpack_dups = True
            continue
        fields[field] = val
    value = HashValue((), None, encoding)
    value.fields = fields
    return value, pos


def _read_hash_zipmap(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    blob, pos = ctx.blob(pos)
    pairs = zipmap.decode(blob)
    opts = ctx.options
    max_len = max(max(len(k), len(v)) for k, v in pairs)
    big = len(pairs) > opts.hash_max_listpack_entries or max_len > opts.hash_max_listpack_value
    return HashValue(pairs, None, "hashtable" if big else "listpack"), pos


def _read_hash_listpack(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    blob, pos = ctx.blob(pos)
    return _hash_from_listpack(ctx, blob, type_byte), pos


def _hash_from_listpack(ctx: DecodeContext, blob: bytes, type_byte: int) -> HashValue:
    entries = -1
    if type_byte == TYPE_HASH_LISTPACK:
        if ctx.deep:
            ctx.sanitizations += 1
        elements = listpack.decode(blob, ctx.deep)
        entries = len(elements)
        fields = listpack.hash_from_elements(elements, ctx.deep)
    else:
        fields = listpack.hash_from_elements(ziplist.decode(blob), True)
    if not fields:
        raise bad_data("empty hash")
    if len(fields) > ctx.options.hash_max_listpack_entries:
        value = HashValue((), None, "hashtable")
    elif entries == 2 * len(fields) == blob[4] | blob[5] << 8 and type(blob) is bytes:
        # A listpack hash of distinct fields whose header counts them: kept as it came until
        # first used (HashValue.packed), so DUMP writes these bytes back.
        return HashValue.packed(blob)
    else:
        value = HashValue((), None, "listpack")
    value.fields = fields
    return value


def _unpack_hash_listpack(blob: bytes) -> dict[bytes, bytes]:
    """A packed hash's fields (``HashValue.fields`` of a hash ``_hash_from_listpack`` packed)."""
    return listpack.decode_hash(blob, False)


hashes.unpack_listpack = _unpack_hash_listpack


def _read_hash_listpack_ex(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    """Types 25 (minExpire + listpack of field, value, expireAt) and 23 (the 7.4-RC form without minExpire)."""
    if type_byte == TYPE_HASH_LISTPACK_EX:
        _, pos = read_millis(ctx.buf, pos, ctx.end)  # minExpire: read, not used (as Redis)
    blob, pos = ctx.blob(pos)
    deep = ctx.deep
    if deep:
        ctx.sanitizations += 1
    elements = listpack.decode(blob, deep, ints_as_bytes=False)
    if len(elements) % 3:
        raise bad_data("hash listpackex entry count not a multiple of 3")
    fields: dict[bytes, bytes] = {}
    expires: dict[bytes, int] = {}
    last_expire = -1
    for i in range(0, len(elements), 3):
        raw_field, raw_value, raw_ttl = elements[i], elements[i + 1], elements[i + 2]
        field = raw_field if isinstance(raw_field, bytes) else b"%d" % raw_field
        value = raw_value if isinstance(raw_value, bytes) else b"%d" % raw_value
        expire_at = listpack.as_int(raw_ttl)
        if expire_at is None or expire_at < 0 or expire_at > EB_EXPIRE_TIME_MAX:
            raise bad_data("invalid listpackex TTL")
        if deep and expire_at and (last_expire == 0 or expire_at < last_expire):
            raise bad_data("listpackex TTLs out of order")
        last_expire = expire_at
        if field in fields:
            if deep:
                raise bad_data("hash with duplicate fields")
            continue
        fields[field] = value
        if expire_at:
            expires[field] = expire_at
    if not fields:
        raise bad_data("empty hash")
    encoding = "hashtable" if len(elements) // 3 > ctx.options.hash_max_listpack_entries else "listpackex"
    return HashValue(fields, expires, encoding), pos


def _read_hash_metadata(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    """Type 24 (minExpire + relative TTLs) and Redis's type 22 (7.4-RC, absolute TTLs)."""
    buf, end = ctx.buf, ctx.end
    relative = type_byte == TYPE_HASH_METADATA
    min_expire = 0
    if relative:
        min_expire, pos = read_millis(buf, pos, end)
        min_expire &= MASK64
    count, pos = read_count(buf, pos, end, 3)
    if count == 0:
        raise bad_data("empty hash")
    opts = ctx.options
    limit = opts.hash_max_listpack_value
    listpackex = count <= opts.hash_max_listpack_entries
    triples: list[tuple[bytes, bytes, int]] = []
    seen: set[bytes] = set()
    listpack_dups = False
    for _ in range(count):
        ttl, pos = read_len(buf, pos, end)
        expire_at = ((ttl + min_expire - 1) & MASK64) if relative and ttl else ttl
        if expire_at > EB_EXPIRE_TIME_MAX:
            raise bad_data("hash field expireAt above EB_EXPIRE_TIME_MAX")
        field, pos = read_string(buf, pos, end)
        value, pos = read_string(buf, pos, end)
        duplicate = field in seen
        if listpackex:
            if duplicate and ctx.deep:
                raise bad_data("hash with duplicate fields")
            if len(field) > limit or len(value) > limit:
                if listpack_dups:
                    raise bad_data("duplicate hash fields")
                listpackex = False
            elif duplicate:
                listpack_dups = True
                continue
        if not listpackex and duplicate:
            raise bad_data("duplicate hash fields")
        seen.add(field)
        triples.append((field, value, expire_at))
    if listpackex:
        # listpackExAddNew keeps the listpack ordered by TTL: a TTL'd field goes before the
        # first field with an equal or later TTL, fields without TTL go at the end.
        with_ttl = [t for t in triples if t[2]]
        with_ttl.reverse()
        with_ttl.sort(key=lambda t: t[2])
        triples = with_ttl + [t for t in triples if not t[2]]
    fields = {f: v for f, v, _ in triples}
    expires = {f: e for f, _, e in triples if e}
    return HashValue(fields, expires, "listpackex" if listpackex else "hashtable"), pos


def _read_valkey_hash2(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    """Valkey >= 9 HASH_2: N x (field, value, int64 expire or -1); always a hashtable."""
    buf, end = ctx.buf, ctx.end
    count, pos = read_count(buf, pos, end, 10)
    if count == 0:
        raise bad_data("empty hash")
    fields: dict[bytes, bytes] = {}
    expires: dict[bytes, int] = {}
    for _ in range(count):
        field, pos = read_string(buf, pos, end)
        value, pos = read_string(buf, pos, end)
        expire, pos = read_millis(buf, pos, end)
        if expire < -1:
            raise bad_data("invalid HASH_2 field expire")
        if field in fields:
            raise bad_data("duplicate hash fields")
        fields[field] = value
        if expire != -1:
            expires[field] = expire
    return HashValue(fields, expires, "hashtable"), pos


def _read_hash_22(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    if ctx.rdb_version >= VALKEY_VERSION_MIN:
        return _read_valkey_hash2(ctx, pos, type_byte)
    return _read_hash_metadata(ctx, pos, type_byte)


def _read_hash_23(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[HashValue, int]:
    if ctx.rdb_version >= VALKEY_VERSION_MIN:
        raise bad_data("Valkey PATH_HASH is not supported")
    return _read_hash_listpack_ex(ctx, pos, type_byte)


# ---------------------------------------------------------------------------
# streams and modules


def _read_stream(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[StreamValue, int]:
    return stream.decode_stream(ctx, pos, type_byte)


def module_type_name(module_id: int) -> str:
    """moduleTypeNameByID: nine 6-bit characters above the 10-bit encoding version."""
    name_bits = module_id >> 10
    return "".join(_MODULE_CHARSET[(name_bits >> (6 * (8 - i))) & 63] for i in range(9))


def _read_module(ctx: DecodeContext, pos: int, type_byte: int) -> tuple[Value, int]:
    if type_byte == TYPE_MODULE_PRE_GA:
        raise bad_data("pre-release module format not supported")
    module_id, pos = read_len(ctx.buf, pos, ctx.end)
    raise bad_data(f"no matching module type '{module_type_name(module_id)}'")


_Reader = Callable[[DecodeContext, int, int], tuple[Value, int]]
_BlobReader = Callable[[DecodeContext, bytes, int], Value]

# Bodies that are one rdbString (a ziplist, listpack or intset blob): what to make of the blob.
_FROM_BLOB: dict[int, _BlobReader] = {
    TYPE_LIST_ZIPLIST: _list_from_ziplist,
    TYPE_SET_INTSET: _set_from_intset,
    TYPE_ZSET_ZIPLIST: _zset_from_listpack,
    TYPE_HASH_ZIPLIST: _hash_from_listpack,
    TYPE_HASH_LISTPACK: _hash_from_listpack,
    TYPE_ZSET_LISTPACK: _zset_from_listpack,
    TYPE_SET_LISTPACK: _set_from_listpack,
    TYPE_LIST_QUICKLIST_2: _list_from_one_node,  # only when open_payload found one PACKED node
}
# open_payload's mask: the string type and the blob types (1), and type 18, whose body is one
# rdbString after "01 02" when the list has one PACKED node (2)
BLOB_MASK = bytes(
    2 if t == TYPE_LIST_QUICKLIST_2 else 1 if t == TYPE_STRING or t in _FROM_BLOB else 0 for t in range(256)
)

_READERS: dict[int, _Reader] = {
    TYPE_STRING: _read_string_value,
    TYPE_LIST: _read_list,
    TYPE_SET: _read_set,
    TYPE_ZSET: _read_zset,
    TYPE_HASH: _read_hash,
    TYPE_ZSET_2: _read_zset,
    TYPE_MODULE_PRE_GA: _read_module,
    TYPE_MODULE_2: _read_module,
    TYPE_HASH_ZIPMAP: _read_hash_zipmap,
    TYPE_LIST_ZIPLIST: _read_list_ziplist,
    TYPE_SET_INTSET: _read_set_intset,
    TYPE_ZSET_ZIPLIST: _read_zset_listpack,
    TYPE_HASH_ZIPLIST: _read_hash_listpack,
    TYPE_LIST_QUICKLIST: _read_quicklist,
    TYPE_STREAM_LISTPACKS: _read_stream,
    TYPE_HASH_LISTPACK: _read_hash_listpack,
    TYPE_ZSET_LISTPACK: _read_zset_listpack,
    TYPE_LIST_QUICKLIST_2: _read_quicklist_2,
    TYPE_STREAM_LISTPACKS_2: _read_stream,
    TYPE_SET_LISTPACK: _read_set_listpack,
    TYPE_STREAM_LISTPACKS_3: _read_stream,
    TYPE_HASH_22: _read_hash_22,
    TYPE_HASH_LISTPACK_EX_PRE_GA: _read_hash_23,
    TYPE_HASH_METADATA: _read_hash_metadata,
    TYPE_HASH_LISTPACK_EX: _read_hash_listpack_ex,
}


def _register_values() -> bool:
    """Hand the datatype classes to the C builder of small values (``_listpack.small_value``,
    ``dump_parts``): False when there is none (pure, or a build without it).  A zset's index is
    made with ``ScoreIndex.from_sorted``, whichever index class is in use."""
    try:
        from dumpling.payload import _listpack
    except ImportError:
        return False
    register = getattr(_listpack, "register_values", None)
    if PURE_PAYLOAD or register is None:
        return False
    register(
        ZSetValue, SetValue, HashValue, ListValue, packedlist.PackedList, ScoreIndex, NO_FIELD_TTLS,
        partial(score_text, rdb_version=11),
    )
    return True


values_built = _register_values()
if values_built and listpack.native is not None:
    # a packed hash's first use straight into C (the same dict decode_hash makes)
    hashes.unpack_listpack = listpack.native.hash_fields
