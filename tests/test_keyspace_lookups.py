"""``Database.lookup_read``/``lookup_write``/``add`` and ``Keyspace.changed`` in C (``dumpling._fastpath``'s
``install_keyspace``) against their Python reference (``keyspace.REFERENCE``): random sequences of
stores, TTLs, clock moves, setting switches (LFU, NO-TOUCH, notifications, WATCH, hooks, maxmemory's
written keys) and lookups run on two keyspaces, one through the class's methods and one through the
reference; every return value and the whole state after each step must be the same.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpling import keyspace as keyspace_module
from dumpling.config import Config
from dumpling.datatypes.hashes import HashValue
from dumpling.keyspace import REFERENCE, Keyspace, StoreHook, lru_clock
from tests.fuzzing import examples

pytestmark = pytest.mark.skipif(not keyspace_module.NATIVE_LOOKUPS, reason="C fast path not built")

KEYS = [b"a", b"b", b"c"]
START_MS = 1_700_000_000_500

OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), st.sampled_from([b"v", b"w"])),
    st.tuples(st.just("expire"), st.sampled_from(KEYS), st.integers(-3000, 3000)),
    st.tuples(st.just("clock"), st.integers(0, 2500)),
    st.tuples(st.just("read"), st.sampled_from(KEYS)),
    st.tuples(st.just("write"), st.sampled_from(KEYS)),
    st.tuples(st.just("changed"), st.sampled_from(KEYS), st.sampled_from([None, b"set"]), st.sampled_from([0, 1, 3]),
              st.booleans()),
    st.tuples(st.just("add"), st.sampled_from(KEYS), st.sampled_from(["bytes", "bytearray", "hash"])),
    st.tuples(st.just("switch"), st.sampled_from(["lfu", "no_touch", "notify", "watch", "hook", "written", "blocked",
                                                   "store_hook", "scan"])),
)


class Twin:
    """One keyspace and what its hooks saw."""

    def __init__(self, native: bool) -> None:
        self.ks = Keyspace(Config())
        self.ks.now = START_MS
        self.db = self.ks.dbs[0]
        self.native = native
        self.seen: list[Any] = []

    def call(self, name: str, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(obj, name)(*args, **kwargs) if self.native else REFERENCE[name](obj, *args, **kwargs)

    def step(self, op: tuple) -> Any:
        ks, db = self.ks, self.db
        kind = op[0]
        if kind == "set":
            db.set(op[1], op[2])
        elif kind == "expire":
            if op[1] in db.data:
                db.set_expire(op[1], ks.now + op[2])
        elif kind == "clock":
            ks.now += op[1]
        elif kind == "add":
            if op[1] not in db.data:  # (add is for keys that do not exist)
                value = {"bytes": b"v", "bytearray": bytearray(b"w"), "hash": HashValue()}[op[2]]
                self.call("add", db, op[1], value)
                self.seen.append(("tracked", gc.is_tracked(value), gc.is_tracked(db.data)))
        elif kind in ("read", "write"):
            return self.call("lookup_read" if kind == "read" else "lookup_write", db, op[1])
        elif kind == "changed":
            _, key, event, dirty, keyword = op
            if keyword:
                return self.call("changed", ks, db, key, event, dirty=dirty)
            return self.call("changed", ks, db, key, event, "g", dirty)
        elif op[1] == "lfu":
            ks.lfu = not ks.lfu
        elif op[1] == "no_touch":
            ks.no_touch = not ks.no_touch
        elif op[1] == "notify":
            ks.notify_flags = "" if ks.notify_flags else "KEA"
            ks.notify_hook = lambda *event: self.seen.append(("notify", *event))
        elif op[1] == "watch":
            ks.watched = {} if ks.watched else {(0, b"a"): set()}
        elif op[1] == "hook":
            ks.change_hook = None if ks.change_hook else lambda db, key, event: self.seen.append(("change", key, event))
        elif op[1] == "written":
            ks.written = None if ks.written is not None else set()
        elif op[1] == "blocked":
            ks.blocked_keys = {} if ks.blocked_keys else {(0, b"a"): []}
        elif op[1] == "store_hook":
            # one hook whose gate is open for every hash, one whose gate (no field TTLs) stays shut
            ks.store_hooks = [] if ks.store_hooks else [
                StoreHook(HashValue, "encoding", lambda db, key, value: self.seen.append(("stored", key))),
                StoreHook(HashValue, "field_expires", lambda db, key, value: self.seen.append(("ttls", key)))]
        else:  # a SCAN walk between lookups (it changes nothing, but holds no iterator either)
            return db.data.scan(0, 10)[0] == 0
        return None

    def state(self) -> Any:
        ks, db = self.ks, self.db
        lfu_free = {key: db.field(key) for key in db.data} if not ks.lfu else sorted(db.data)  # (LFU is random)
        data = {key: comparable(value) for key, value in db.data.items()}
        return (data, dict(db.expires), lfu_free, ks.stat_hits, ks.stat_misses, ks.stat_expired, ks.dirty,
                sorted(ks.written) if ks.written is not None else None, list(self.seen), dict(ks.ready_keys))


def comparable(value: Any) -> Any:
    return value if value is None or isinstance(value, bytes | bytearray | int) else type(value)


@settings(max_examples=examples(300), deadline=None)
@given(ops=st.lists(OPS, max_size=40))
def test_native_lookups_agree_with_the_reference(ops: list[tuple]) -> None:
    native, reference = Twin(True), Twin(False)
    for op in ops:
        assert comparable(native.step(op)) == comparable(reference.step(op)), op
        assert native.state() == reference.state(), op


def test_the_native_methods_are_installed() -> None:
    """The classes hold the C methods (a guard for the test above), and an LRU touch sets the
    second's clock as the key's field."""
    assert type(Keyspace.changed).__name__ == "method_descriptor"
    twin = Twin(True)
    for key in KEYS:
        twin.db.set(key, b"v")
    twin.ks.now += 5000
    for key in KEYS:
        assert twin.db.lookup_read(key) == b"v"
    assert {twin.db.field(key) for key in KEYS} == {lru_clock(twin.ks.now)}
