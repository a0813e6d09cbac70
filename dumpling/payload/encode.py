"""DUMP's writing side: an in-memory value -> the payload a real Redis/Valkey of a given RDB version writes.

The type byte follows the value's ``encoding`` and what the target version writes
for it (§5.2, §5.4); bodies follow Redis's writer rules (§2-§4), so listpacks,
intsets, strings and skiplist zsets come out byte-identical to Redis's DUMP.
Hashtable-backed collections have no canonical order; we write dict/set order.
A value the requested version cannot hold (field TTLs below 12, streams below 9,
stream metadata older stream types drop) is written at the lowest version that
holds it: never lossy.
"""

from __future__ import annotations

import math
from functools import partial
from itertools import islice

from dumpling.datatypes import HashValue, ListValue, SetValue, StreamValue, ZSetValue, listelements
from dumpling.payload import bulk, intset, listpack, quicklist, stream, ziplist
from dumpling.payload.decode import (
    TYPE_HASH,
    TYPE_HASH_22,
    TYPE_HASH_LISTPACK,
    TYPE_HASH_LISTPACK_EX,
    TYPE_HASH_METADATA,
    TYPE_HASH_ZIPLIST,
    TYPE_LIST,
    TYPE_LIST_QUICKLIST,
    TYPE_LIST_QUICKLIST_2,
    TYPE_LIST_ZIPLIST,
    TYPE_SET,
    TYPE_SET_INTSET,
    TYPE_SET_LISTPACK,
    TYPE_STRING,
    TYPE_ZSET,
    TYPE_ZSET_2,
    TYPE_ZSET_LISTPACK,
    TYPE_ZSET_ZIPLIST,
    Value,
)
from dumpling.payload.envelope import VALKEY_VERSION_MIN, Footer, footer_parts, seal
from dumpling.payload.options import DEFAULT_OPTIONS, CodecOptions
from dumpling.payload.primitives import (
    append_len,
    append_string,
    append_string_double,
    legacy_score_integer,
    millis_bytes,
    score_fits_long,
    score_text,
)

SUPPORTED_VERSIONS = frozenset({6, 7, 8, 9, 10, 11, 12, 80})
# Redis <= 3.0 list-max-ziplist-entries / -value defaults (type 10 vs type 1).
LEGACY_LIST_ZIPLIST_ENTRIES = 512
LEGACY_LIST_ZIPLIST_VALUE = 64
_STRING_TYPE = bytes((TYPE_STRING,))
_QUICKLIST_2_TYPE = bytes((TYPE_LIST_QUICKLIST_2,))
# Types every supported RDB version holds as they are (min_rdb_version_for is 6).
_ANY_VERSION = frozenset({bytes, bytearray, ListValue, SetValue, ZSetValue})


def min_rdb_version_for(value: Value) -> int:
    """The lowest RDB version whose DUMP format holds ``value`` without losing anything."""
    if isinstance(value, StreamValue):
        return stream.min_stream_version(value)
    if isinstance(value, HashValue) and value.field_expires and any(f in value.fields for f in value.field_expires):
        return 12
    return 6


def payload_version_for(value: Value, rdb_version: int) -> int:
    """The footer version ``encode_payload`` writes when asked for ``rdb_version``."""
    if rdb_version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported target RDB version {rdb_version}")
    if rdb_version >= VALKEY_VERSION_MIN:
        return rdb_version
    return max(rdb_version, min_rdb_version_for(value))


def encode_payload(value: Value, rdb_version: int, options: CodecOptions = DEFAULT_OPTIONS) -> bytes:
    """The DUMP payload (type byte, body, footer) of ``value`` for a target RDB version (6-12 or 80)."""
    if type(value) is bytes and rdb_version in SUPPORTED_VERSIONS:  # the common small case
        string_payload = bulk.string_payload
        if string_payload is not None:  # the same bytes in one C call (None: not a case it takes)
            payload = string_payload(value, rdb_version, options.rdbcompression)
            if payload is not None:
                return payload
        out = bytearray(_STRING_TYPE)
        append_string(out, value, options.rdbcompression)
        return seal(out, rdb_version)
    small_payload = bulk.small_payload
    if small_payload is not None and rdb_version in SUPPORTED_VERSIONS:
        # a small listpack/intset value or a restored one-node list, written in C (None: below)
        payload = small_payload(value, rdb_version, options.rdbcompression)
        if payload is not None:
            return payload
    kind = type(value)
    if rdb_version in SUPPORTED_VERSIONS and (kind in _ANY_VERSION or (kind is HashValue and not value.field_expires)):
        version = rdb_version  # payload_version_for's answer for these, without its checks
    else:
        version = payload_version_for(value, rdb_version)
    if kind is ListValue and version >= 10 and len(value) and value.packed_source() is None:
        # a list whose nodes C writes: the body and its footer written in one buffer
        payload = _write_nodes_native(value, version, options, footer_parts(version))
        if payload is not None:
            return payload
    return seal(encode_body(value, version, options), version)


def encode_body(value: Value, version: int, options: CodecOptions = DEFAULT_OPTIONS) -> bytes | bytearray:
    """Type byte + body, without the footer."""
    compress = options.rdbcompression
    if isinstance(value, (bytes, bytearray, memoryview)):
        out = bytearray((TYPE_STRING,))
        append_string(out, bytes(value) if isinstance(value, memoryview) else value, compress)
        return bytes(out)
    if isinstance(value, ListValue):
        return _encode_list(value, version, options)
    if isinstance(value, SetValue):
        return _encode_set(value, version, compress)
    if isinstance(value, ZSetValue):
        return _encode_zset(value, version, compress)
    if isinstance(value, HashValue):
        return _encode_hash(value, version, compress)
    if isinstance(value, StreamValue):
        type_byte = stream.TYPE_STREAM_V3 if version >= 11 else stream.TYPE_STREAM_V2 if version == 10 else 15
        return stream.encode_stream(value, type_byte, options, bytes((type_byte,)))
    raise TypeError(f"cannot DUMP a {type(value).__name__}")


def _require_nonempty(value: ListValue | SetValue | ZSetValue | HashValue) -> None:
    if not len(value):
        raise ValueError("empty collections are never stored, so never dumped")


# ---------------------------------------------------------------------------
# lists


def _encode_list(value: ListValue, version: int, options: CodecOptions) -> bytes:
    _require_nonempty(value)
    compress = options.rdbcompression
    if version >= 10:
        packed = value.packed_source()
        if packed is not None:
            # Restored and not written since: the payload's nodes, re-emitted.
            out = bytearray((TYPE_LIST_QUICKLIST_2,))
            packed.write_body(out, version, compress)
            return bytes(out)
    items = value.items
    if version >= 10:
        written = _write_nodes_native(value, version, options)
        if written is not None:
            return written
        out = bytearray((TYPE_LIST_QUICKLIST_2,))
        if value.encoding == "listpack":
            nodes = [quicklist.Node(quicklist.CONTAINER_PACKED, list(items))]
        else:
            nodes = _quicklist_nodes(value, version, options.list_max_listpack_size)
        append_len(out, len(nodes))
        for node in nodes:
            append_len(out, node.container)
            if node.container == quicklist.CONTAINER_PLAIN:
                append_string(out, node.items[0], compress)
            else:
                append_string(out, listpack.encode(node.items), compress)
        return bytes(out)
    if version >= 7:
        out = bytearray((TYPE_LIST_QUICKLIST,))
        if value.encoding == "listpack":
            groups = [list(items)]
        else:
            groups = [node.items for node in quicklist.pack(items, "6.2", options.list_max_listpack_size)]
        append_len(out, len(groups))
        for group in groups:
            append_string(out, ziplist.encode(group), compress)
        return bytes(out)
    if len(items) <= LEGACY_LIST_ZIPLIST_ENTRIES and all(len(s) <= LEGACY_LIST_ZIPLIST_VALUE for s in items):
        out = bytearray((TYPE_LIST_ZIPLIST,))
        append_string(out, ziplist.encode(items), compress)
        return bytes(out)
    out = bytearray((TYPE_LIST,))
    append_len(out, len(items))
    bulk.append_strings(out, items, compress)
    return bytes(out)


def _write_nodes_native(value: ListValue, version: int, options: CodecOptions,
                        footer: Footer | None = None) -> bytes | None:
    """The type-18 type byte and body ``_encode_list`` writes, in C (``quicklist.write_body``):
    the same nodes ``_quicklist_nodes`` picks, written in one pass over the elements; with
    ``footer`` (``envelope.footer_parts``) the whole payload, sealed where it was written.
    None when C is off or does not take the list (or, asked for a footer, does not write one)."""
    if listpack.native is None:
        return None
    items = value.items
    compress = options.rdbcompression
    if value.encoding == "listpack":
        containers: list[tuple[int, int]] | None = [(len(items), quicklist.CONTAINER_PACKED)]
    else:
        containers = _layout_containers(value, version, options.list_max_listpack_size)
    if containers is not None and listelements.PACKED:  # the nodes' entries copied as they lie
        return quicklist.write_node_blobs(_QUICKLIST_2_TYPE, items, compress, containers, footer)
    if containers is not None:
        return None if footer else quicklist.write_body(_QUICKLIST_2_TYPE, items, compress, containers, None)
    fill = options.list_max_listpack_size
    rule = quicklist.size_rule(quicklist.profile_for_version(version), fill)
    if rule is not None and listelements.PACKED:  # cut from the entries' sizes, then copied
        plain, packed = quicklist.CONTAINER_PLAIN, quicklist.CONTAINER_PACKED
        containers = [(count, plain if is_plain else packed) for count, is_plain in items.cut_nodes(*rule)]
        return quicklist.write_node_blobs(_QUICKLIST_2_TYPE, items, compress, containers, footer)
    if rule is None or footer:
        return None
    return quicklist.write_body(_QUICKLIST_2_TYPE, items, compress, None, rule)


def _layout_containers(value: ListValue, version: int, fill: int) -> list[tuple[int, int]] | None:
    """(element count, container) per node from the value's own node layout, for 7.2+
    targets (7.2 keeps oversized elements in packed nodes, Valkey has no plain ones);
    None when the layout does not apply and the list is cut as RPUSHes would."""
    layout = getattr(value, "nodes", None)
    if version < 11 or layout is None:
        return None
    shape = layout(fill)
    if sum(count for count, _ in shape) != len(value.items):
        return None
    plain_allowed = 12 <= version < VALKEY_VERSION_MIN
    plain, packed = quicklist.CONTAINER_PLAIN, quicklist.CONTAINER_PACKED
    return [(count, plain if is_plain and plain_allowed else packed) for count, is_plain in shape]


def _quicklist_nodes(value: ListValue, version: int, fill: int) -> list[quicklist.Node]:
    """The nodes to write for a quicklist-encoded list.

    For 7.2+ targets the value's own node layout (kept by ``ListValue`` as Redis 7.4
    would have it after the same history) decides the cut; 7.2 has the same cut but
    keeps oversized elements in packed nodes.  Otherwise, or for 7.0, the list is laid
    out as consecutive RPUSHes on the target would have done.
    """
    items = value.items
    containers = _layout_containers(value, version, fill)
    if containers is not None:
        it = iter(items)
        return [quicklist.Node(container, list(islice(it, count))) for count, container in containers]
    return quicklist.pack(items, quicklist.profile_for_version(version), fill)


# ---------------------------------------------------------------------------
# sets


def _intset_numbers(members: set[bytes]) -> list[int] | None:
    """The members as int64s if every one is a canonical integer (else the set is not an intset)."""
    ordered = list(members)
    try:
        numbers = list(map(int, ordered))
    except ValueError:
        return None
    if list(map(b"%d".__mod__, numbers)) != ordered:
        return None  # " 1", "+1", "01", "1_0" ... parse but are not canonical
    if numbers and (min(numbers) < -(1 << 63) or max(numbers) > (1 << 63) - 1):
        return None
    return numbers


def intset_blob(members: set[bytes]) -> bytes | None:
    """The intset blob of ``members`` if every one is a canonical int64, else None."""
    native = listpack.native
    if native is not None:
        blob = native.intset_blob(members)
        if blob is not None:
            return blob
    return intset_blob_py(members)


def intset_blob_py(members: set[bytes]) -> bytes | None:
    """``intset_blob`` in pure Python (the reference for the C one)."""
    numbers = _intset_numbers(members)
    return None if numbers is None else intset.encode(numbers)


def _encode_set(value: SetValue, version: int, compress: bool) -> bytes:
    _require_nonempty(value)
    packed = value.packed_blob(version)
    if packed is not None:
        # Restored and not used since: the payload's intset or listpack, written back as it came.
        out = bytearray((TYPE_SET_INTSET if value.encoding == "intset" else TYPE_SET_LISTPACK,))
        bulk.append_blob(out, packed, compress)
        return bytes(out)
    members = value.members
    if value.encoding == "intset":
        blob = intset_blob(members)
        if blob is not None:
            out = bytearray((TYPE_SET_INTSET,))
            bulk.append_blob(out, blob, compress)
            return bytes(out)
    if value.encoding == "listpack":
        # Redis's listpack order (insertion order, kept by SetValue), also for the
        # type-2 form older targets get, so our DUMPs are stable.
        ordered = value.ordered()
        if version >= 11:
            out = bytearray((TYPE_SET_LISTPACK,))
            bulk.append_blob(out, listpack.encode(ordered), compress)
            return bytes(out)
    else:
        ordered = members
    out = bytearray((TYPE_SET,))
    append_len(out, len(ordered))
    bulk.append_strings(out, ordered, compress)
    return bytes(out)


# ---------------------------------------------------------------------------
# sorted sets


def _listpack_score(score: float, version: int) -> bytes | int:
    if score == 0 and math.copysign(1.0, score) < 0:
        return b"-0"  # only a loaded "-0" entry is -0 (ZADD stores 0): Redis keeps that text
    as_long = score_fits_long(score)
    return as_long if as_long is not None else score_text(score, version)


def _ziplist_score(score: float) -> bytes | int:
    if score == 0 and math.copysign(1.0, score) < 0:
        return b"-0"
    as_long = legacy_score_integer(score)
    return as_long if as_long is not None else score_text(score, 9)


def zset_entries(value: ZSetValue, version: int) -> list[bytes | int]:
    """The entries of a listpack zset's blob for target ``version`` (>= 10): member, score, ..."""
    native = listpack.native
    if native is not None:
        entries = native.zset_entries(value.index, None if version <= 10 else partial(_score_text, version))
        if entries is not None:
            return entries
    return zset_entries_py(value, version)


def _score_text(version: int, score: float) -> bytes:
    return score_text(score, version)


def zset_entries_py(value: ZSetValue, version: int) -> list[bytes | int]:
    """``zset_entries`` in pure Python (the reference for the C one)."""
    elements: list[bytes | int] = []
    for member, score in value.items_by_score():
        elements.append(member)
        elements.append(_listpack_score(score, version))
    return elements


def _encode_zset(value: ZSetValue, version: int, compress: bool) -> bytes:
    _require_nonempty(value)
    packed = value.packed_listpack(version) if version >= 10 else None
    if packed is not None:
        # Restored and not used since: the payload's listpack, written back as it came.
        out = bytearray((TYPE_ZSET_LISTPACK,))
        bulk.append_blob(out, packed, compress)
        return bytes(out)
    if value.encoding == "listpack":
        elements: list[bytes | int] = []
        if version >= 10:
            out = bytearray((TYPE_ZSET_LISTPACK,))
            bulk.append_blob(out, listpack.encode_mixed(zset_entries(value, version)), compress)
        else:
            for member, score in value.items_by_score():
                elements.append(member)
                elements.append(_ziplist_score(score))
            out = bytearray((TYPE_ZSET_ZIPLIST,))
            append_string(out, ziplist.encode(elements), compress)
        return bytes(out)
    # Skiplists are written from the highest to the lowest element.
    ordered = reversed(value.index)
    if version >= 8:
        out = bytearray((TYPE_ZSET_2,))
        append_len(out, len(value))
        bulk.append_scored(out, ordered, compress)
        return bytes(out)
    out = bytearray((TYPE_ZSET,))
    append_len(out, len(value))
    for score, member in ordered:
        append_string(out, member, compress)
        append_string_double(out, score)
    return bytes(out)


# ---------------------------------------------------------------------------
# hashes


def _encode_hash(value: HashValue, version: int, compress: bool) -> bytes:
    _require_nonempty(value)
    packed = value.packed_listpack()
    if packed is not None and version >= 10:
        # Restored and not used since: the payload's listpack, written back as it came.
        out = bytearray((TYPE_HASH_LISTPACK,))
        bulk.append_blob(out, packed, compress)
        return bytes(out)
    fields = value.fields
    expires = {f: at for f, at in value.field_expires.items() if f in fields} if value.field_expires else {}
    if expires and version >= VALKEY_VERSION_MIN:
        out = bytearray((TYPE_HASH_22,))
        append_len(out, len(fields))
        for field, val in fields.items():
            append_string(out, field, compress)
            append_string(out, val, compress)
            out += millis_bytes(expires.get(field, -1))
        return bytes(out)
    if expires or (value.encoding == "listpackex" and 12 <= version < VALKEY_VERSION_MIN):
        min_expire = min(expires.values()) if expires else 0
        if value.encoding == "hashtable" and expires:
            out = bytearray((TYPE_HASH_METADATA,))
            out += millis_bytes(min_expire)
            append_len(out, len(fields))
            for field, val in fields.items():
                expire_at = expires.get(field)
                append_len(out, 0 if expire_at is None else expire_at - min_expire + 1)
                append_string(out, field, compress)
                append_string(out, val, compress)
            return bytes(out)
        # listpackex: triples ordered by expiry, fields without TTL last.
        timed = sorted((f for f in fields if f in expires), key=expires.__getitem__)
        elements: list[bytes | int] = []
        for field in timed:
            elements += (field, fields[field], expires[field])
        for field, val in fields.items():
            if field not in expires:
                elements += (field, val, 0)
        out = bytearray((TYPE_HASH_LISTPACK_EX,))
        out += millis_bytes(min_expire)
        append_string(out, listpack.encode_mixed(elements), compress)
        return bytes(out)
    if value.encoding in ("listpack", "listpackex"):
        if version >= 10:
            out = bytearray((TYPE_HASH_LISTPACK,))
            bulk.append_blob(out, listpack.encode_dict(fields), compress)
        else:
            out = bytearray((TYPE_HASH_ZIPLIST,))
            append_string(out, ziplist.encode([x for pair in fields.items() for x in pair]), compress)
        return bytes(out)
    out = bytearray((TYPE_HASH,))
    append_len(out, len(fields))
    bulk.append_mapping(out, fields, compress)
    return bytes(out)
