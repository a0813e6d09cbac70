"""KeyTable (dumpling._keytable, a database's keys, values and LRU/LFU fields in one C hash
table rehashed incrementally) against its reference PyKeyTable (a dict plus a dict of fields):
random operation sequences on both, the same answers and contents after every step, through
expansions, shrinks and rehashes left half done."""

from __future__ import annotations

import gc
import random
import sys
import weakref
from typing import Any

import hiredis
import pytest

from dumpling.keytable import REPLY_ITEMS, REPLY_KEYS, PyKeyTable
from tests.fuzzing import scaled

try:
    from dumpling._keytable import KeyTable as Native
except ImportError:  # built without a compiler
    Native = None

needs_c = pytest.mark.skipif(Native is None, reason="dumpling._keytable not built")

MISSING = object()


def outcome(call: Any) -> Any:
    """What a call returned, or the type and text of what it raised."""
    try:
        return ("ok", call())
    except Exception as e:  # compared between the two tables, not swallowed
        return ("raised", type(e).__name__, str(e))


def contents(table: Any) -> list[tuple[bytes, Any, Any]]:
    return sorted((key, value, table.get_field(key)) for key, value in table.items())


def picked(table: Any) -> Any:
    """random_key's answer as comparable across tables: None when empty, else it is a key."""
    key = table.random_key()
    return None if key is None else (type(key) is bytes and key in table)


def random_value(rng: random.Random) -> Any:
    """bytes of every length around an inline-values table's limit (512), and other objects."""
    return rng.choice([b"v", b"%d" % rng.randrange(1000), [1, 2], b"", 3.5, b"x" * rng.randrange(400, 700),
                       rng.randbytes(rng.randrange(40))])


def random_step(rng: random.Random, keys: list[bytes], tables: list[Any], inline: bool = False) -> list[Any]:
    """One random operation applied to every table: what each answered.  ``inline``: the tables
    are a hash's (inline values, no LRU/LFU fields), so values are stored where fields were set."""
    key = rng.choice(keys)
    roll = rng.random()
    if roll < 0.30 or (inline and 0.67 <= roll < 0.84):
        value = random_value(rng)
        return [outcome(lambda t=t: t.__setitem__(key, value)) for t in tables]
    if roll < 0.45:
        return [outcome(lambda t=t: t.__delitem__(key)) for t in tables]
    if roll < 0.55:
        default = rng.choice([(), (None,), (b"d",)])
        return [outcome(lambda t=t: t.pop(key, *default)) for t in tables]
    if roll < 0.62:
        return [outcome(lambda t=t: (t.get(key), t.get(key, MISSING) is MISSING, key in t, len(t))) for t in tables]
    if roll < 0.67:
        return [outcome(lambda t=t: t[key]) for t in tables]
    if roll < 0.77:
        field = rng.randrange(1 << 24)
        return [outcome(lambda t=t: t.set_field(key, field)) for t in tables]
    if roll < 0.84:
        return [outcome(lambda t=t: (t.get_field(key), t.get_field(key, -1))) for t in tables]
    if roll < 0.88:
        n = rng.randrange(0, 20)
        for t in tables:
            t.rehash_steps(n)  # (the reference has nothing to move)
        return [None]
    if roll < 0.90:
        return [outcome(lambda t=t: sorted(t)) for t in tables]
    if roll < 0.92:
        return [outcome(lambda t=t: sorted(t.values(), key=repr)) for t in tables]
    if inline and roll < 0.93:  # values replaced while an iterator is live (no error in either)
        values = [random_value(rng) for _ in range(5)]

        def replaced_while_iterating(t: Any) -> Any:
            seen = []
            for k, v in t.items():
                seen.append((k, v))
                t[k] = values[k[-1] % 5]  # (by the key: the tables' orders differ)
            return sorted(seen, key=repr)
        return [outcome(lambda t=t: replaced_while_iterating(t)) for t in tables]
    if roll < 0.95:  # a change of size while iterating: dict's error, in both
        def changed_while_iterating(t: Any) -> Any:
            it = iter(t)
            first = next(it, None)
            t[b"new:" + key] = b"x"
            return first is None or sorted(it)
        answers = [outcome(lambda t=t: changed_while_iterating(t)) for t in tables]
        return [a if a[0] == "raised" else ("ok", "no error") for a in answers]
    if roll < 0.96:
        for t in tables:
            t.clear()
        return [None]
    if roll < 0.975:  # a whole SCAN with nothing changing: every key, pairs that match
        count, values = rng.choice([1, 3, 10, 100]), rng.random() < 0.5
        return [outcome(lambda t=t: full_scan(t, count, values)) for t in tables]
    if roll < 0.985:  # HGETALL/HKEYS/HVALS written by the table: its own order, the same contents
        kind, resp3 = rng.randrange(3), rng.random() < 0.5
        return [outcome(lambda t=t: replied(t, kind, resp3)) for t in tables]
    if roll < 0.99:
        return [outcome(lambda t=t: picked(t)) for t in tables]
    return [outcome(lambda t=t: (len(t), bool(t))) for t in tables]


def replied(table: Any, kind: int, resp3: bool) -> Any:
    """reply(kind, resp3) decoded: None (a value that is not bytes), or what it held sorted,
    after checking it is the table's iteration, in that order, under the right header."""
    wire = table.reply(kind, resp3)
    if wire is None:
        assert kind != REPLY_KEYS and any(type(v) is not bytes for v in table.values())
        return None
    reader = hiredis.Reader()
    reader.feed(wire)
    parsed = reader.gets()
    assert reader.gets() is False  # one reply, nothing after it
    if kind == REPLY_ITEMS:
        expected = list(table.items())
        got = list(parsed.items()) if resp3 else list(zip(parsed[::2], parsed[1::2], strict=True))
        assert type(parsed) is (dict if resp3 else list) and len(parsed) == (1 if resp3 else 2) * len(expected)
    else:
        expected = list(table.keys() if kind == REPLY_KEYS else table.values())
        got = parsed
    assert got == expected
    return sorted(got)


def full_scan(table: Any, count: int, values: bool) -> tuple[list[bytes], bool]:
    """The distinct keys a SCAN from 0 to 0 returned, and whether every pair held the value."""
    cursor, keys, pairs_right = 0, set(), True
    while True:
        cursor, found = table.scan(cursor, count, values)
        if values:
            pairs = list(zip(found[::2], found[1::2], strict=True))
            pairs_right = pairs_right and all(table[k] is v or (type(v) is bytes and table[k] == v) for k, v in pairs)
            found = [k for k, _ in pairs]
        assert all(type(k) is bytes for k in found)
        keys.update(found)
        if cursor == 0:
            return sorted(keys), pairs_right


@needs_c
@pytest.mark.parametrize("seed", range(6))
def test_random_sequences_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    # a small key space keeps keys colliding and coming back; a big one drives resizes
    keys = [b"k%d" % i for i in range(rng.choice([8, 300, 3000]))]
    native, reference = Native(), PyKeyTable()
    for step in range(scaled(40000, 4000)):
        answers = random_step(rng, keys, [native, reference])
        assert answers[0] == answers[-1], (seed, step)
        if step % 500 == 0:
            assert contents(native) == contents(reference), (seed, step)
    assert contents(native) == contents(reference)


@needs_c
@pytest.mark.parametrize("seed", range(4))
def test_inline_values_match_the_reference(seed: int) -> None:
    """A hash's table (inline_values): short bytes values live in the entries, others by
    reference, and an entry moves when its value outgrows it (not while a cursor is live); to
    Python it is the same mapping as the reference."""
    rng = random.Random(seed)
    keys = [b"f%d" % i for i in range(rng.choice([8, 300, 3000]))]
    native, reference = Native(inline_values=True), PyKeyTable(inline_values=True)
    for step in range(scaled(30000, 3000)):
        answers = random_step(rng, keys, [native, reference], inline=True)
        assert answers[0] == answers[-1], (seed, step)
        if step % 500 == 0:
            assert sorted(native.items(), key=repr) == sorted(reference.items(), key=repr), (seed, step)
    assert sorted(native.items(), key=repr) == sorted(reference.items(), key=repr)


@needs_c
def test_inline_values_are_copies_counted_in_the_entry() -> None:
    table = Native(inline_values=True)
    table[b"first"] = b""  # (the buckets made)
    del table[b"first"]
    value = b"value:0000001"
    base, size = sys.getrefcount(value), table.__sizeof__()
    table[b"field:0000001"] = value
    assert sys.getrefcount(value) == base  # kept as bytes in the entry, no reference
    got = table[b"field:0000001"]
    assert got == value and got is not value
    assert table.__sizeof__() - size >= 13 + 13
    long_value = b"v" * 513  # over the inline limit: held
    table[b"long"] = long_value
    assert table[b"long"] is long_value
    with pytest.raises(TypeError):
        table.get_field(b"long")
    with pytest.raises(TypeError):
        table.set_field(b"long", 1)
    del table[b"long"], table[b"field:0000001"]
    assert table.__sizeof__() == size and sys.getrefcount(long_value) == base


@needs_c
def test_growth_and_shrink_are_incremental() -> None:
    table = Native()
    for i in range(5000):
        table[b"key:%d" % i] = i
        size0, used0, size1, used1, rehashidx = table.stats()
        assert used0 + used1 == i + 1
        # never a whole-table move inside one insert: an expansion starts a rehash that
        # later operations carry on (one bucket each)
        if size1:
            assert rehashidx >= 0
    size0, used0, size1, used1, _ = table.stats()
    while table.rehash_steps(100):
        pass
    size0, used0, size1, used1, rehashidx = table.stats()
    assert (used0, size1, rehashidx) == (5000, 0, -1) and size0 >= 5000
    for i in range(4990):
        del table[b"key:%d" % i]
    assert table.rehash_for(100000) is False
    size0, used0, _, _, _ = table.stats()
    assert used0 == 10 and size0 <= 10 * 8  # shrunk (to at least 1/8 full) however the deletes fell
    assert sorted(table) == [b"key:%d" % i for i in range(4990, 5000)]


@needs_c
def test_iterators_hold_rehashing_back_and_see_every_key_once() -> None:
    table = Native()
    for i in range(1000):
        table[b"%d" % i] = i
    assert table.stats()[4] >= 0 or table.stats()[2] == 0
    it = iter(table)
    seen = [next(it) for _ in range(10)]
    before = table.stats()
    for i in range(1000):  # lookups step the rehash, but not while an iterator is live
        assert table.get(b"%d" % i) == i
        table.set_field(b"%d" % i, i)
    assert table.stats() == before
    seen += list(it)
    assert sorted(seen) == sorted(table) and len(seen) == 1000
    del it
    table.rehash_for(100000)
    assert table.stats()[2] == 0  # (rehashing went on once the iterator finished)


@pytest.mark.parametrize("make", [PyKeyTable, Native], ids=["reference", "native"])
def test_reply_encodes_fields_of_any_bytes(make: Any) -> None:
    if make is None:
        pytest.skip("dumpling._keytable not built")
    table = make()
    fields = {b"": b"", b"\r\n": b"\x00" * 70000, b"x" * 1000: b"1", b"k": b"\xff"}
    for field, value in fields.items():
        table[field] = value
    for kind in range(3):
        for resp3 in (False, True):
            assert replied(table, kind, resp3) is not None
    empty = make()
    assert [empty.reply(k, r) for k in range(3) for r in (False, True)] == [
        b"*0\r\n", b"*0\r\n", b"*0\r\n", b"*0\r\n", b"*0\r\n", b"%0\r\n"]
    with pytest.raises(ValueError):
        table.reply(3, False)


@needs_c
def test_non_bytes_keys() -> None:
    table = Native()
    with pytest.raises(TypeError):
        table["text"] = 1
    assert "text" not in table and table.get("text", 5) == 5 and table.pop(1, None) is None
    with pytest.raises(KeyError):
        table[b"absent"]
    with pytest.raises(KeyError):
        del table[b"absent"]
    assert table.set_field(b"absent", 3) is False and table.get_field(b"absent") is None


@needs_c
def test_references_are_released() -> None:
    class Value:
        pass

    table = Native()
    value = Value()
    ref = weakref.ref(value)
    table[b"a"] = value
    base = sys.getrefcount(value)
    table[b"a"] = value  # (a replacement keeps one reference)
    assert sys.getrefcount(value) == base
    del value
    assert ref() is not None
    assert table.pop(b"a") is ref()
    assert ref() is None
    # a value on a cycle of its own: the table holds it alive, and once deleted the cyclic
    # GC frees it (the table is no GC container, and nothing can refer back to it)
    cyclic = Value()
    cyclic.me = cyclic  # type: ignore[attr-defined]
    ref = weakref.ref(cyclic)
    table[b"c"] = cyclic
    del cyclic
    gc.collect()
    assert ref() is not None
    del table[b"c"]
    gc.collect()
    assert ref() is None
    table[b"d"] = Value()
    del table  # dealloc releases what it holds


TABLES = [pytest.param(PyKeyTable, id="reference"),
          pytest.param(Native, id="C", marks=needs_c)]


@pytest.mark.parametrize("make", TABLES)
@pytest.mark.parametrize("seed", range(4))
def test_scan_returns_every_key_present_throughout(make: Any, seed: int) -> None:
    """SCAN's guarantee under inserts, deletes, growth, shrinks and rehashes left half done
    between the calls: every key there from the first call to the last is returned at least
    once, and the scan ends (the cursor never goes back, however fast keys are added)."""
    rng = random.Random(seed)
    table = make()
    stable = [b"stable:%d" % i for i in range(rng.choice([5, 200, 2000]))]
    for key in stable:
        table[key] = key
    churn = [b"churn:%d" % i for i in range(4000)]
    for run in range(6):
        cursor, seen, calls = 0, set(), 0
        growing = run % 2 == 0
        while True:
            cursor, found = table.scan(cursor, rng.choice([1, 5, 10, 50]), run % 3 == 0)
            if run % 3 == 0:
                assert all(table[k] is v for k, v in zip(found[::2], found[1::2], strict=True))
                found = found[::2]
            seen.update(found)
            calls += 1
            assert calls < 20000, "the scan did not end"
            if cursor == 0:
                break
            for _ in range(rng.randrange(0, 30)):  # the table grows or shrinks meanwhile
                key = rng.choice(churn)
                if growing or rng.random() < 0.2:
                    table[key] = b"c"
                else:
                    table.pop(key, None)
            table.rehash_steps(rng.randrange(0, 3))
        missing = set(stable) - seen
        assert not missing, (run, sorted(missing)[:5])
        assert seen <= set(stable) | set(churn)


@pytest.mark.parametrize("make", TABLES)
def test_random_key_reaches_every_key(make: Any) -> None:
    rng = random.Random(7)
    table = make()
    assert table.random_key() is None
    keys = [b"r:%d" % i for i in range(50)]
    for key in keys:
        table[key] = 1
    for key in keys[10:]:  # sparse, and (C) shrinking while picked from
        del table[key]
    table.rehash_steps(rng.randrange(3))
    picks = [table.random_key() for _ in range(2000)]
    assert set(picks) == set(keys[:10])  # all of them, nothing deleted
    counts = sorted(picks.count(k) for k in keys[:10])
    assert counts[0] > 2000 / 10 / 4  # roughly fair: none starved


def test_scan_refuses_a_count_below_one() -> None:
    for make in [PyKeyTable] + ([Native] if Native is not None else []):
        with pytest.raises(ValueError):
            make().scan(0, 0)


@needs_c
def test_keys_are_stored_inline_not_held() -> None:
    """A key's bytes live in its entry: the table holds no reference to the key passed in,
    hands out equal new bytes objects, and keeps any bytes (empty, NULs, long) exactly."""
    table = Native()
    key = b"held?" * 3
    base = sys.getrefcount(key)
    table[key] = 1
    table.set_field(key, 5)
    assert sys.getrefcount(key) == base
    odd = [b"", b"\x00", b"a\x00b", b"\xff" * 300, b"k" * (1 << 20)]
    for i, k in enumerate(odd):
        table[k] = i
    assert sorted(table) == sorted([key, *odd])
    assert all(table[k] == i for i, k in enumerate(odd)) and b"a\x00" not in table and b"a\x00c" not in table
    out = next(k for k in table if k == key)
    assert out == key and out is not key and type(out) is bytes
    assert dict(table.items())[b"\x00"] == 1
    before = table.__sizeof__()
    table[b"x" * 1000] = 0
    assert table.__sizeof__() - before >= 1000  # the key's bytes are counted in the entry
    del table[b"x" * 1000]
    assert table.__sizeof__() == before
    assert table.pop(b"k" * (1 << 20)) == 4 and len(table) == len(odd)
