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

Must not: know about expiry, databases or commands (``dumpling.keyspace`` does).
"""

from __future__ import annotations

from typing import Any

from dumpling import accel


class PyKeyTable(dict):  # type: ignore[type-arg]
    """The reference: a dict of values plus a dict of the fields set."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[bytes, int] = {}

    def __delitem__(self, key: bytes) -> None:
        dict.__delitem__(self, key)
        self.fields.pop(key, None)

    def pop(self, key: bytes, *default: Any) -> Any:
        if key in self:
            self.fields.pop(key, None)
            return dict.pop(self, key)
        if default:
            return default[0]
        raise KeyError(key)

    def clear(self) -> None:
        dict.clear(self)
        self.fields.clear()

    def get_field(self, key: bytes, default: Any = None) -> Any:
        return self.fields.get(key, 0) if key in self else default

    def set_field(self, key: bytes, field: int) -> bool:
        if key not in self:
            return False
        self.fields[key] = field
        return True

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
