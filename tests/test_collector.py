"""Stored values leave the cyclic GC's sight (dumpling.collector), and nothing that may be on
a cycle does.

A full collection traverses every tracked object; before this, a million stored collections
made each one a pause of a second or more (``bench/latency.py --preload`` measures a PING's
wait against Redis's). The replies are unchanged by construction (only the collector's view
changes); these tests check the mechanism and its safety rule in process.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from dumpling import collector
from dumpling.config import Config
from dumpling.datatypes.hashes import HashValue
from dumpling.datatypes.lists import ListValue
from dumpling.datatypes.sets import SetValue
from dumpling.datatypes.zsets import ZSetValue
from dumpling.keyspace import Database, Keyspace

needs_untrack = pytest.mark.skipif(not collector.ACCELERATED, reason="dumpling._untrack not built (pure mode)")


class Probe:
    """A stand-in value whose lifetime a test can watch."""

    TYPE = b"probe"
    __slots__ = ("parts", "__weakref__")

    def __init__(self, parts: Any) -> None:
        self.parts = parts


def database() -> Database:
    return Keyspace(Config()).dbs[0]


@needs_untrack
def test_stored_collections_and_the_dict_are_untracked() -> None:
    db = database()
    values: list[Any] = [HashValue({b"f": b"v"}), SetValue([b"a", b"b"]), ListValue(), ZSetValue()]
    for i, value in enumerate(values):
        db.add(b"k%d" % i, value)
    for value in values:
        assert not gc.is_tracked(value), type(value).__name__
        assert not any(gc.is_tracked(part) for part in gc.get_referents(value) if not isinstance(part, type))
    assert not gc.is_tracked(db.data)
    replacement = HashValue({b"g": b"w"})
    db.set(b"k0", replacement)
    assert not gc.is_tracked(replacement) and not gc.is_tracked(db.data)


@needs_untrack
def test_keys_add_no_tracked_objects() -> None:
    db = database()
    gc.collect()
    before = len(gc.get_objects())
    for i in range(5000):
        db.add(b"h%d" % i, HashValue({b"f": b"v"}))
        db.add(b"l%d" % i, ListValue())
    assert len(gc.get_objects()) - before < 50


@needs_untrack
def test_untracked_value_is_freed_when_deleted() -> None:
    db = database()
    probe = Probe([[b"a", 1], (b"b", 2.5), {b"c"}])
    gone = weakref.ref(probe)
    db.add(b"k", probe)
    assert not gc.is_tracked(probe)
    del probe
    gc.disable()
    try:
        assert db.delete(b"k")
        assert gone() is None  # reference counting, no collection needed
    finally:
        gc.enable()


@needs_untrack
def test_a_value_on_a_cycle_stays_tracked_and_is_collected() -> None:
    db = database()
    probe = Probe(None)
    probe.parts = [probe]  # refers to itself through a list it owns
    gone = weakref.ref(probe)
    db.add(b"k", probe)
    assert gc.is_tracked(probe)
    del probe
    db.delete(b"k")
    gc.collect()
    assert gone() is None


@needs_untrack
def test_a_value_sharing_a_container_stays_tracked() -> None:
    db = database()
    shared = [b"x", [b"y"]]
    probe = Probe(shared)
    db.add(b"k", probe)
    assert gc.is_tracked(probe) and gc.is_tracked(shared)  # someone else holds the list
    assert gc.is_tracked(shared[1])  # what a shared container holds is not looked into


def test_settle_freezes_what_exists_and_later_garbage_is_still_collected() -> None:
    early = Probe(None)
    try:
        collector.settle()
        assert gc.get_freeze_count() > 0
        assert not any(o is early for o in gc.get_objects())  # frozen: out of every generation
        late = Probe(None)
        late.parts = [late]  # a cycle made after start-up
        gone = weakref.ref(late)
        del late
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()  # the test process goes on as before
