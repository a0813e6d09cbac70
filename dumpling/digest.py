"""DEBUG DIGEST and DEBUG DIGEST-VALUE: Redis's SHA1 digests of values and of the dataset.

Redis 7.4's debug.c, step for step, so a digest taken from dumpling equals the one a real server
computes for the same data (its test suite compares datasets across servers with it):
* ``xorDigest`` — digest ^= SHA1(data): order-free, for set members, hash fields, zset elements
  and the keys of a database.
* ``mixDigest`` — digest = SHA1(digest ^ SHA1(data)): order-preserving, for strings, list
  elements, stream entries and the parts of one element.
* ``value_digest`` (``xorObjectDigest`` from a zero digest): the type as a big-endian uint32, then
  the value, then ``!!expire!!`` xored in when the key has a TTL.  A zset or hash element is a
  digest of its own (mix of member and score text, of field and value; a hash field with a TTL
  xors in ``!!hexpire!!``), which is then xorDigest-ed, i.e. its SHA1 is xored in.  Zset scores are printed with ``fpconv_dtoa`` (7.2+;
  7.0 used ``%.17g``, so 7.0 and 7.4 disagree on zsets with scores such as 0.1).
* ``dataset_digest`` (``computeDatasetDigest``): per non-empty database, its index is mixed in,
  then xorDigest of each key's digest (mix(key) followed by the value digest).

Keys are taken as stored, logically expired or not (Redis iterates the dict, not lookups).
Must not: look keys up through the keyspace (no LRU touch, no lazy expiry), reply, or format.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import Any

from dumpling.datatypes.hashes import HashValue
from dumpling.datatypes.lists import ListValue
from dumpling.datatypes.sets import SetValue
from dumpling.datatypes.streams import StreamValue
from dumpling.datatypes.zsets import ZSetValue
from dumpling.fpconv import fpconv_dtoa

ZERO = bytes(20)

# server.h's OBJ_* type numbers, mixed in as htonl(o->type)
_OBJ_STRING, _OBJ_LIST, _OBJ_SET, _OBJ_ZSET, _OBJ_HASH, _OBJ_STREAM = 0, 1, 2, 3, 4, 6


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(20, "big")


def xor_digest(digest: bytes, data: bytes) -> bytes:
    """``xorDigest``: ``digest`` xor SHA1(``data``)."""
    return _xor(digest, hashlib.sha1(data).digest())


def mix_digest(digest: bytes, data: bytes) -> bytes:
    """``mixDigest``: SHA1(``digest`` xor SHA1(``data``))."""
    return hashlib.sha1(xor_digest(digest, data)).digest()


def _mix_all(digest: bytes, parts: Iterable[bytes]) -> bytes:
    for part in parts:
        digest = mix_digest(digest, part)
    return digest


def _xor_all(digest: bytes, parts: Iterable[bytes]) -> bytes:
    """``xorDigest`` of many parts (order-free): ``digest`` xor SHA1(part) for each."""
    acc = int.from_bytes(digest, "big")
    for part in parts:
        acc ^= int.from_bytes(hashlib.sha1(part).digest(), "big")
    return acc.to_bytes(20, "big")


def value_digest(value: Any, has_ttl: bool, digest: bytes = ZERO) -> bytes:
    """``xorObjectDigest``: mix the type and the value into ``digest``; TypeError if unknown."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        digest = mix_digest(mix_digest(digest, struct.pack(">I", _OBJ_STRING)), bytes(value))
    elif kind is ListValue:
        digest = _mix_all(mix_digest(digest, struct.pack(">I", _OBJ_LIST)), value)
    elif kind is SetValue:
        digest = mix_digest(digest, struct.pack(">I", _OBJ_SET))
        digest = _xor_all(digest, value)
    elif kind is ZSetValue:
        digest = mix_digest(digest, struct.pack(">I", _OBJ_ZSET))
        # each element digest (mix of member and score text) is itself xorDigest-ed in
        digest = _xor_all(digest, (_mix_all(ZERO, (member, fpconv_dtoa(score)))
                                   for member, score in value.items_by_score()))
    elif kind is HashValue:
        digest = mix_digest(digest, struct.pack(">I", _OBJ_HASH))
        digest = _xor_all(digest, _hash_elements(value))
    elif kind is StreamValue:
        digest = mix_digest(digest, struct.pack(">I", _OBJ_STREAM))
        for (ms, seq), flat in value.entries.items():
            digest = _mix_all(mix_digest(digest, b"%d.%d" % (ms, seq)), flat)
    else:
        raise TypeError(f"no digest for a value of type {kind.__name__}")
    if has_ttl:
        digest = xor_digest(digest, b"!!expire!!")
    return digest


def _hash_elements(value: HashValue) -> Iterable[bytes]:
    expires = value.field_expires
    for field, field_value in value.fields.items():  # expired fields too (hashTypeNext(hi, 0))
        element = _mix_all(ZERO, (field, field_value))
        if field in expires:
            element = xor_digest(element, b"!!hexpire!!")
        yield element


def dataset_digest(databases: Iterable[Any]) -> bytes:
    """``computeDatasetDigest`` over ``Database`` objects (``data`` and ``expires`` dicts), in
    index order; 20 zero bytes for an empty dataset."""
    final = ZERO
    for db in databases:
        if not db.data:
            continue
        final = mix_digest(final, struct.pack(">I", db.index))
        expires = db.expires
        final = _xor_all(final, (value_digest(value, key in expires, mix_digest(ZERO, key))
                                 for key, value in db.data.items()))
    return final
