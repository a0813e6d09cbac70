"""Where a value's bytes go: dumpling's value representations measured in process.

A breakdown behind ``bench/memory_keys.py`` / ``memory_collections.py`` / ``memory_zset.py``
(which compare whole servers' RSS with Redis's in the same run): the bytes Python allocates
(``tracemalloc``, requested sizes; pymalloc rounds each object up to 16 bytes) for many small
values of each type, and per element of one big value, built through the value types' own
methods as the commands build them.  No server is started.

    python bench/memory_values.py [--small 20000] [--big 200000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dumpling.datatypes.hashes import HashLimits, HashValue  # noqa: E402
from dumpling.datatypes.lists import ListValue  # noqa: E402
from dumpling.datatypes.sets import SetValue  # noqa: E402
from dumpling.datatypes.zsets import ZSetValue  # noqa: E402

LIMITS = HashLimits(128, 64)


def allocated(make: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes allocated while ``make`` runs and stay allocated, and what it made (kept alive)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    made = make()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, made


def per_small_value(build: Callable[[int], Any], n: int) -> float:
    """Bytes per value for ``n`` values (the list holding them excluded)."""
    holder: list[Any] = [None] * n

    def fill() -> None:
        for i in range(n):
            holder[i] = build(i)

    size, _ = allocated(fill)
    return size / n


def small_hash(i: int) -> HashValue:
    h = HashValue()
    h.set(b"name", b"%03d" % (i % 999), LIMITS)  # the names are shared (hashes.shared_name)
    h.set(b"age", b"%03d" % (i % 100), LIMITS)
    return h


def small_zset(i: int) -> ZSetValue:
    z = ZSetValue("listpack")
    z.insert(b"a%d" % i, 1.0)
    z.insert(b"b%d" % i, 2.0)
    return z


def small_set(i: int) -> SetValue:
    return SetValue([b"a%d" % i, b"b%d" % i], "listpack")


def small_list(i: int) -> ListValue:
    return ListValue([b"a%d" % i, b"b%d" % i])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000, help="small values per type")
    parser.add_argument("--big", type=int, default=200_000, help="elements of each big value")
    args = parser.parse_args()
    gc.disable()  # no collection between the two looks
    n, big = args.small, args.big
    print(f"small values, bytes per value ({n:,} each; the value alone: no key, no dict entries)")
    for label, build in (("hash, 2 fields", small_hash), ("zset, 2 members (listpack)", small_zset),
                         ("set, 2 members (listpack)", small_set), ("list, 2 elements", small_list)):
        print(f"  {label:32}{per_small_value(build, n):10.1f}")
    print(f"  {'key bytes, 16 characters':32}{per_small_value(lambda i: b'key:%012d' % i, n):10.1f}")
    print(f"  {'string value, 3 bytes':32}{per_small_value(lambda i: b'%03d' % (i % 1000) + b'', n):10.1f}")
    print(f"one big value, bytes per element ({big:,} elements)")
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("hash (hashtable)", lambda: HashValue(((b"field:%07d" % i, b"value:%07d" % i) for i in range(big)),
                                               encoding="hashtable")),
        ("zset (skiplist)", lambda: ZSetValue.from_pairs(((b"member:%07d" % i, float(i * 7919 % big) + 0.5)
                                                          for i in range(big)), "skiplist")),
        ("list (quicklist)", lambda: ListValue(b"element:%07d" % i for i in range(big))),
        ("set (hashtable)", lambda: SetValue(b"member:%07d" % i for i in range(big))),
    ]
    for label, make in cases:
        size, _ = allocated(make)
        print(f"  {label:32}{size / big:10.1f}")


if __name__ == "__main__":
    main()
