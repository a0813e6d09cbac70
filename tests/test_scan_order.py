"""ScanOrder (dumpling/scan.py): the cursor order kept beside a dict that cannot be seeked,
used by the expiry dict's active cycle and by big sets and zsets."""

from __future__ import annotations

import random

import pytest

from dumpling.scan import ScanOrder


def whole_scan(order: ScanOrder, count: int) -> list[object]:
    cursor, seen = 0, []
    while True:
        cursor, found = order.scan(cursor, count)
        seen += found
        if cursor == 0:
            return seen


def test_a_key_recorded_before_it_is_stored_survives_the_compaction_it_triggers() -> None:
    # Database.set_expire records the key, then stores it: the compaction that this very
    # record triggers must not drop the key as stale (the active expiry cycle never saw it).
    source: dict[bytes, int] = {}
    order = ScanOrder(source)
    for i in range(100):
        order.added(b"old:%d" % i)
        source[b"old:%d" % i] = i
    source.clear()  # all stale in the order list now
    order.added(b"new")
    source[b"new"] = 1
    assert whole_scan(order, 10) == [b"new"]
    assert order.random_key() == b"new"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("record_first", [True, False])
def test_every_present_key_is_scanned_through_compactions(seed: int, record_first: bool) -> None:
    rng = random.Random(seed)
    source: dict[int, int] = {}
    order = ScanOrder(source)
    for step in range(3000):
        key = rng.randrange(300)
        if key in source and rng.random() < 0.6:
            del source[key]
        elif key not in source:
            if record_first:
                order.added(key)
                source[key] = step
            else:
                source[key] = step
                order.added(key)
        if step % 97 == 0:
            assert set(whole_scan(order, rng.randrange(1, 40))) == set(source)
    assert set(whole_scan(order, 7)) == set(source)
