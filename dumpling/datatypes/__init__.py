"""In-memory values of every Redis type except strings.

Strings are stored as ``bytes`` (or ``bytearray`` once modified in place by APPEND
or SETRANGE, which Redis reports as ``raw``).  Every other type is a class here with
a ``TYPE`` name (what TYPE replies) and an ``encoding`` attribute holding the Redis
encoding name (``listpack``, ``quicklist``, ``intset``, ``hashtable``, ``skiplist``,
``listpackex``, ``stream``).  Encodings are sticky as in Redis: mutators convert
upward when a threshold is crossed; the payload codec reads ``encoding`` to write
the same RDB type Redis would.

This package owns the data structures only; command parsing lives in
``dumpling.commands`` and serialisation in ``dumpling.payload``.
"""

from dumpling import accel
from dumpling.datatypes.hashes import HashValue
from dumpling.datatypes.lists import ListValue
from dumpling.datatypes.sets import SetValue
from dumpling.datatypes.streams import StreamNode, StreamValue
from dumpling.datatypes.zsets import ZSetValue

if accel.collections is not None:  # the classes its native handlers accept
    accel.collections.configure(ListValue, HashValue, SetValue, StreamValue, StreamNode, ZSetValue)

__all__ = ["HashValue", "ListValue", "SetValue", "StreamValue", "ZSetValue"]
