"""A database's keys, values and LRU/LFU fields: ``KeyTable``, one C hash table
(``dumpling._keytable``) when it is built, else ``PyKeyTable``, the reference with the same
interface.

The interface is a mapping of bytes keys (``len``, ``in``, ``[]``, ``get``, ``pop``,
assignment, ``del``, iteration over keys, ``values()``, ``items()``) plus the 24-bit LRU/LFU
field Redis keeps in every object: ``get_field(key, default)`` (0 for a key stored without
one, ``default`` for a missing key) and ``set_field(key, field)`` (False, nothing set, for a
missing key).  A new key starts with field 0; replacing a value keeps the field.
``rehash_steps(n)`` / ``rehash_for(us)`` let the cron move the C table's buckets after a
resize (the reference has nothing to move: a Python dict resizes whole).
``scan(cursor, count=10, values=False)`` -> ``(next_cursor, keys)`` (with ``values``, a flat
``[key, value, ...]``) is SCAN's walk: every key present from the first call (cursor 0) to the
last (next cursor 0) is returned at least once, some may repeat, and about ``count`` keys come
back a call; the C table walks its buckets with Redis's reverse-binary cursor, the reference a
``ScanOrder`` (its cursors mean something else: never hand one table's cursor to the other).
``random_key()`` is a random key (None if empty), what RANDOMKEY, eviction and memory sampling
take, without a list of every key.
``reply(kind, resp3)`` is the RESP reply of the keys (kind 0, an array), the values (1) or both
(2: a RESP3 map, a RESP2 flat array), in iteration order, or None when a value is not bytes:
HGETALL/HKEYS/HVALS of a big hash, which the C table writes from its entries with no object
per field.

Must not: know about expiry, databases or commands (``dumpling.keyspace`` does).
"""

from __future__ import annotations

from typing import Any

from dumpling import accel
from dumpling.scan import MemberScan

REPLY_KEYS, REPLY_VALUES, REPLY_ITEMS = range(3)  # reply()'s kinds


class PyKeyTable(dict):  # type: ignore[type-arg]
    """The reference: a dict of values plus a dict of the fields set, and the order
    (``MemberScan``: a deleted key added again reuses its slot) that serves
    ``scan``/``random_key`` once one is asked for (every new key then recorded)."""

    __slots__ = ("fields", "order")

    def __init__(self, *, inline_values: bool = False) -> None:
        """``inline_values``: the C table keeps short bytes values inside its entries (a hash's
        fields, to save memory); a dict holds them as it holds anything, so here it changes nothing."""
        super().__init__()
        self.fields: dict[bytes, int] = {}
        self.order: MemberScan | None = None

    def __setitem__(self, key: bytes, value: Any) -> None:
        order = self.order
        if order is None or key in self:
            dict.__setitem__(self, key, value)
            return
        dict.__setitem__(self, key, value)
        order.added(key)

    def __delitem__(self, key: bytes) -> None:
        dict.__delitem__(self, key)
        self.fields.pop(key, None)
        if self.order is not None:
            self.order.discarded(key)

    def pop(self, key: bytes, *default: Any) -> Any:
        if key in self:
            self.fields.pop(key, None)
            if self.order is not None:
                self.order.discarded(key)
            return dict.pop(self, key)
        if default:
            return default[0]
        raise KeyError(key)

    def clear(self) -> None:
        dict.clear(self)
        self.fields.clear()
        self.order = None

    def scan(self, cursor: int, count: int = 10, values: bool = False) -> tuple[int, list[Any]]:
        if count < 1:
            raise ValueError("count must be at least 1")
        if self.order is None:
            self.order = MemberScan(self)
        next_cursor, keys = self.order.order.scan(cursor, count)
        if not values:
            return next_cursor, keys
        flat: list[Any] = []
        for key in keys:
            flat += (key, dict.__getitem__(self, key))
        return next_cursor, flat

    def random_key(self) -> bytes | None:
        if self.order is None:
            self.order = MemberScan(self)
        key: bytes | None = self.order.order.random_key()
        return key

    def get_field(self, key: bytes, default: Any = None) -> Any:
        return self.fields.get(key, 0) if key in self else default

    def set_field(self, key: bytes, field: int) -> bool:
        if key not in self:
            return False
        self.fields[key] = field
        return True

    def reply(self, kind: int, resp3: bool) -> bytes | None:
        if kind not in (REPLY_KEYS, REPLY_VALUES, REPLY_ITEMS):
            raise ValueError("kind is 0 (keys), 1 (values) or 2 (items)")
        if kind != REPLY_KEYS and any(type(v) is not bytes for v in self.values()):
            return None
        items = self.keys() if kind == REPLY_KEYS else self.values() if kind == REPLY_VALUES else \
            (x for pair in self.items() for x in pair)
        n = len(self)
        head = b"%%%d\r\n" % n if kind == REPLY_ITEMS and resp3 else b"*%d\r\n" % (2 * n if kind == REPLY_ITEMS else n)
        return head + b"".join([b"$%d\r\n%s\r\n" % (len(x), x) for x in items])

    def rehash_steps(self, n: int) -> bool:
        return False

    def rehash_for(self, us: int) -> bool:
        return False


def _native() -> Any:
    if accel.PURE:
        return None
    try:
        from dumpling._keytable import KeyTable as native
    except ImportError:
        return None
    return native


NATIVE: Any = _native()
KeyTable: Any = PyKeyTable if NATIVE is None else NATIVE
