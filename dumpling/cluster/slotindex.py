"""Per-slot key index of a database (Redis's ``slots_to_keys``), for CLUSTER COUNTKEYSINSLOT /
GETKEYSINSLOT, FLUSHSLOTS and the "keys still in this slot" checks of SETSLOT.

The keyspace calls ``added``/``removed``/``cleared`` when a key is created, deleted or
the database emptied (``Database.slot_index``, set only in cluster mode).  Each slot
keeps its keys in insertion order, so GETKEYSINSLOT can answer newest first as Redis
7.0 does.
"""

from __future__ import annotations

from collections.abc import Iterable

from dumpling.cluster.slots import CLUSTER_SLOTS, key_slot


class SlotIndex:
    __slots__ = ("slots",)

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        self.slots: list[dict[bytes, None] | None] = [None] * CLUSTER_SLOTS
        for key in keys:
            self.added(key)

    def added(self, key: bytes) -> None:
        slot = key_slot(key)
        bucket = self.slots[slot]
        if bucket is None:
            self.slots[slot] = {key: None}
        else:
            bucket[key] = None

    def removed(self, key: bytes) -> None:
        slot = key_slot(key)
        bucket = self.slots[slot]
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                self.slots[slot] = None

    def cleared(self) -> None:
        self.slots = [None] * CLUSTER_SLOTS

    def count(self, slot: int) -> int:
        bucket = self.slots[slot]
        return len(bucket) if bucket is not None else 0

    def keys(self, slot: int, count: int) -> list[bytes]:
        """Up to ``count`` keys of ``slot``, newest first."""
        bucket = self.slots[slot]
        if bucket is None or count <= 0:
            return []
        out: list[bytes] = []
        for key in reversed(bucket):
            out.append(key)
            if len(out) >= count:
                break
        return out

    def all_keys(self, slot: int) -> list[bytes]:
        bucket = self.slots[slot]
        return list(bucket) if bucket is not None else []

    def occupied(self) -> list[int]:
        """Slots holding at least one key."""
        return [slot for slot, bucket in enumerate(self.slots) if bucket]
