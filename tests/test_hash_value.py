"""``HashValue``'s per-hash and per-field memory without a server: a hash without field TTLs
shares one read-only empty ``field_expires`` (``NO_FIELD_TTLS``) and builds its TTL heap only
when asked, and a new field's name is a shared object when another hash has the same one
(``shared_name``, a bounded table)."""

from __future__ import annotations

import pytest

from dumpling.datatypes import hashes
from dumpling.datatypes.hashes import NO_FIELD_TTLS, SHARED_NAMES_MAX, HashLimits, HashValue, shared_name

LIMITS = HashLimits(128, 64)


def test_hashes_without_ttls_share_one_empty_field_expires() -> None:
    a, b = HashValue({b"f": b"v"}), HashValue()
    assert a.field_expires is NO_FIELD_TTLS and b.field_expires is NO_FIELD_TTLS
    assert a.copy().field_expires is NO_FIELD_TTLS
    assert a.min_expire() is None and a.expire_due(10**15) == []
    assert not a.delete(b"absent") and a.delete(b"f")  # pop of an absent TTL: no write
    with pytest.raises(TypeError):
        NO_FIELD_TTLS[b"x"] = 1
    with pytest.raises(TypeError):
        NO_FIELD_TTLS.update({b"x": 1})
    assert not NO_FIELD_TTLS


def test_first_field_ttl_gives_the_hash_its_own_dict() -> None:
    h, other = HashValue({b"a": b"1", b"b": b"2"}), HashValue({b"a": b"1"})
    h.enable_field_ttls()
    assert h.set_field_expire(b"b", 2000, None, 1000) == 1
    assert h.field_expires == {b"b": 2000} and other.field_expires is NO_FIELD_TTLS and not NO_FIELD_TTLS
    assert list(h.fields) == [b"b", b"a"]  # listpackex order: fields with a TTL first
    assert h.set_field_expire(b"a", 1500, None, 1000) == 1
    assert h.min_expire() == 1500
    assert h.copy().field_expires == {b"a": 1500, b"b": 2000}
    assert h.expire_due(1800) == [b"a"] and h.min_expire() == 2000
    assert h.persist_field(b"b", 1800) == 1 and h.min_expire() is None


def test_new_fields_share_one_name_object() -> None:
    a, b = HashValue(), HashValue()
    a.set(b"name", b"x", LIMITS)
    b.set(bytes(bytearray(b"name")), b"y", LIMITS)  # an equal name in another object
    (name_a,), (name_b,) = a.fields, b.fields
    assert name_a is name_b and a.fields == {b"name": b"x"} and b.fields == {b"name": b"y"}
    long_name = b"n" * 40
    b.set(long_name, b"z", LIMITS)
    assert any(f is long_name for f in b.fields)  # past SHARED_NAME_MAX_LEN: kept as it came
    assert not b.set(b"name", b"w", LIMITS) and b.fields[b"name"] == b"w"


def test_the_shared_name_table_stays_bounded() -> None:
    names = [b"f%d" % i for i in range(SHARED_NAMES_MAX + 10)]
    shared = [shared_name(n) for n in names]
    assert shared == names
    assert len(hashes._shared_names) <= SHARED_NAMES_MAX
    assert shared_name(bytes(bytearray(names[-1]))) is shared[-1]  # shared since the table was emptied
