"""Stream values: entries ordered by ID plus everything RDB stream type 21 stores.

An ID is a tuple ``(ms, seq)`` of unsigned 64-bit integers.  Entries map an ID to a
flat list ``[field1, value1, field2, value2, ...]``.  Consumer groups keep their last
delivered ID, entries-read counter, pending entries list (PEL) and consumers, each
consumer with its own PEL subset and seen/active times, exactly the facts DUMP needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sortedcontainers import SortedDict

StreamID = tuple[int, int]


@dataclass(slots=True)
class PendingEntry:
    consumer: bytes
    delivery_time_ms: int
    delivery_count: int


@dataclass(slots=True)
class Consumer:
    name: bytes
    seen_time_ms: int
    active_time_ms: int = -1
    # IDs this consumer owns in the group PEL (the PendingEntry lives in the group).
    pending: SortedDict = field(default_factory=SortedDict)  # StreamID -> PendingEntry


@dataclass(slots=True)
class ConsumerGroup:
    name: bytes
    last_id: StreamID
    entries_read: int = -1  # -1: unknown (SCG_INVALID_ENTRIES_READ)
    pending: SortedDict = field(default_factory=SortedDict)  # StreamID -> PendingEntry
    consumers: dict[bytes, Consumer] = field(default_factory=dict)


class StreamValue:
    TYPE = b"stream"
    __slots__ = ("entries", "last_id", "first_id", "entries_added", "max_deleted_id", "groups", "encoding")

    def __init__(self) -> None:
        self.entries: SortedDict = SortedDict()  # StreamID -> list[bytes] (flat field/value)
        self.last_id: StreamID = (0, 0)
        self.first_id: StreamID = (0, 0)
        self.entries_added: int = 0
        self.max_deleted_id: StreamID = (0, 0)
        self.groups: dict[bytes, ConsumerGroup] = {}
        self.encoding = "stream"

    def __len__(self) -> int:
        return len(self.entries)
