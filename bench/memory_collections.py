"""Bytes per element of big sets and hashes (and a list): dumpling against real Redis.

Starts one dumpling and one redis-server on loopback and, for each workload, fills
one key with N elements in pipelined batches (``SADD big member:0000001 …``,
``SADD ints 0 1 …``, ``HSET big field:0000001 value:0000001 …``, ``RPUSH big …``;
a stream gets one ``XADD big * field:0000001 value:0000001`` per entry, 64 pipelined),
then reports per element: the growth of the process RSS (both servers), Redis's
``used_memory`` growth and each server's ``MEMORY USAGE`` for the key (all
elements sampled).  Ratios are dumpling / Redis.  Every workload runs on freshly
started servers so memory freed by an earlier one is not reused.

    python bench/memory_collections.py [--elements 1000000] [--batch 1000] [--workloads set,intset,hash,list,stream,stream-same]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import SETTLE_SECONDS, on_fresh_servers, rss_bytes, used_memory  # noqa: E402

from tests.servers import ServerProcess, encode_command, parse_reply  # noqa: E402

Batches = Callable[[int, int], Iterator[list[str]]]




def set_batches(n: int, batch: int) -> Iterator[list[str]]:
    for first in range(0, n, batch):
        yield ["SADD", "big", *(f"member:{i:07d}" for i in range(first, min(first + batch, n)))]


def intset_batches(n: int, batch: int) -> Iterator[list[str]]:
    for first in range(0, n, batch):
        yield ["SADD", "big", *(str(i * 7) for i in range(first, min(first + batch, n)))]


def hash_batches(n: int, batch: int) -> Iterator[list[str]]:
    for first in range(0, n, batch):
        args = ["HSET", "big"]
        for i in range(first, min(first + batch, n)):
            args += (f"field:{i:07d}", f"value:{i:07d}")
        yield args


def list_batches(n: int, batch: int) -> Iterator[list[str]]:
    for first in range(0, n, batch):
        yield ["RPUSH", "big", *(f"element:{i:07d}" for i in range(first, min(first + batch, n)))]


def stream_batches(n: int, batch: int) -> Iterator[list[str]]:
    """One XADD per entry (a stream has no multi-entry add): ``fill`` sends 64 together."""
    for i in range(n):
        yield ["XADD", "big", "*", f"field:{i:07d}", f"value:{i:07d}"]


def stream_same_batches(n: int, batch: int) -> Iterator[list[str]]:
    """Entries with the same field name (a node's master field: Redis stores only the value)."""
    for i in range(n):
        yield ["XADD", "big", "*", "field", f"value:{i:07d}"]


WORKLOADS: dict[str, tuple[str, Batches, str]] = {
    "set": ("set of 'member:NNNNNNN' strings", set_batches, "SCARD"),
    "intset": ("set of integers", intset_batches, "SCARD"),
    "hash": ("hash 'field:NNNNNNN' -> 'value:NNNNNNN'", hash_batches, "HLEN"),
    "list": ("list of 'element:NNNNNNN' strings", list_batches, "LLEN"),
    "stream": ("stream of XADD * 'field:NNNNNNN' 'value:NNNNNNN'", stream_batches, "XLEN"),
    "stream-same": ("stream of XADD * 'field' 'value:NNNNNNN'", stream_same_batches, "XLEN"),
}


def fill(server: ServerProcess, batches: Iterator[list[str]], count_cmd: str, n: int) -> float:
    start = time.perf_counter()
    with server.raw() as conn:
        pending: list[bytes] = []
        for args in batches:
            pending.append(encode_command(*args))
            if len(pending) == 64:  # one send of 64 requests, then their replies
                conn.send(b"".join(pending))
                for _ in range(len(pending)):
                    conn.read_reply()
                pending = []
        conn.send(b"".join(pending))
        for _ in range(len(pending)):
            conn.read_reply()
        assert parse_reply(conn.call(count_cmd, "big")) == n
    return time.perf_counter() - start


def measure(server: ServerProcess, workload: str, n: int, batch: int) -> dict[str, object]:
    _, batches, count_cmd = WORKLOADS[workload]
    with server.raw() as conn:
        conn.call("DEL", "big")
    time.sleep(0.3)
    before_rss = rss_bytes(server.proc.pid)
    before_used = used_memory(server)
    seconds = fill(server, batches(n, batch), count_cmd, n)
    time.sleep(SETTLE_SECONDS)
    with server.raw() as conn:
        usage = parse_reply(conn.call("MEMORY", "USAGE", "big", "SAMPLES", "0"))
        encoding = parse_reply(conn.call("OBJECT", "ENCODING", "big"))
        after_rss = rss_bytes(server.proc.pid)
        after_used = used_memory(server)
        conn.call("DEL", "big")
    return {
        "rss": (after_rss - before_rss) / n,
        "used": (after_used - before_used) / n,
        "usage": (usage or 0) / n if isinstance(usage, int) else 0.0,
        "seconds": seconds,
        "encoding": encoding,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workloads", default="set,intset,hash,list")
    args = parser.parse_args()
    names = [w for w in args.workloads.split(",") if w]
    results = on_fresh_servers(names, lambda server, name: measure(server, name, args.elements, args.batch))
    for name in names:
        ours, theirs = results[name]["dumpling"], results[name]["redis"]
        print(f"{WORKLOADS[name][0]}, {args.elements:,} elements "
              f"(encoding: {ours['encoding']!r} / {theirs['encoding']!r})")
        print(f"  {'':30}{'dumpling':>12}{'redis':>12}{'ratio':>9}")
        for label, key in (("RSS growth, bytes/element", "rss"), ("used_memory growth", "used"),
                           ("MEMORY USAGE, bytes/element", "usage"), ("load time, seconds", "seconds")):
            a, b = float(ours[key]), float(theirs[key])  # type: ignore[arg-type]
            ratio = f"{a / b:8.2f}x" if b else "      n/a"
            print(f"  {label:30}{a:12.1f}{b:12.1f}{ratio}")


if __name__ == "__main__":
    main()
