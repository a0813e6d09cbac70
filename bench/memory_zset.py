"""Bytes per member of a big sorted set: dumpling against real Redis.

Starts one dumpling and one redis-server on loopback, fills a zset with N members
(``member:0000001`` …, pseudo-random scores) in pipelined ZADD batches, and reports
per member: the growth of the process RSS (both servers), Redis's ``used_memory``
growth, and each server's ``MEMORY USAGE`` for the key.  Ratios are dumpling / Redis.

    python bench/memory_zset.py [--members 1000000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import SETTLE_SECONDS, rss_bytes, used_memory  # noqa: E402

from tests.servers import ServerProcess, encode_command, parse_reply, start_dumpling, start_redis  # noqa: E402


def fill(server: ServerProcess, members: int, batch: int, seed: int) -> float:
    rng = random.Random(seed)
    start = time.perf_counter()
    with server.raw() as conn:
        pending = 0
        for first in range(0, members, batch):
            args: list[bytes | str] = ["ZADD", "big"]
            for i in range(first, min(first + batch, members)):
                args.append(repr(rng.uniform(-1e6, 1e6)))
                args.append(f"member:{i:07d}")
            conn.send(encode_command(*args))
            pending += 1
            if pending == 64:
                for _ in range(pending):
                    conn.read_reply()
                pending = 0
        for _ in range(pending):
            conn.read_reply()
        assert parse_reply(conn.call("ZCARD", "big")) == members
    return time.perf_counter() - start


def measure(server: ServerProcess, members: int, batch: int) -> dict[str, float]:
    before_rss = rss_bytes(server.proc.pid)
    before_used = used_memory(server)
    seconds = fill(server, members, batch, seed=42)
    time.sleep(SETTLE_SECONDS)
    with server.raw() as conn:
        usage = parse_reply(conn.call("MEMORY", "USAGE", "big", "SAMPLES", "0"))
        encoding = parse_reply(conn.call("OBJECT", "ENCODING", "big"))
    return {
        "rss_per_member": (rss_bytes(server.proc.pid) - before_rss) / members,
        "used_per_member": (used_memory(server) - before_used) / members,
        "usage_per_member": (usage or 0) / members,
        "load_seconds": seconds,
        "encoding": encoding,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    results = {}
    for name, starter in (("dumpling", start_dumpling), ("redis", start_redis)):
        server = starter()
        try:
            results[name] = measure(server, args.members, args.batch)
        finally:
            server.stop()
    ours, theirs = results["dumpling"], results["redis"]
    print(f"zset with {args.members:,} members (encoding: {ours['encoding']!r} / {theirs['encoding']!r})")
    print(f"{'':28}{'dumpling':>12}{'redis':>12}{'ratio':>9}")
    for label, key in (("RSS growth, bytes/member", "rss_per_member"),
                       ("used_memory growth", "used_per_member"),
                       ("MEMORY USAGE, bytes/member", "usage_per_member"),
                       ("load time, seconds", "load_seconds")):
        a, b = ours[key], theirs[key]
        ratio = f"{a / b:8.2f}x" if b else "      n/a"
        print(f"{label:28}{a:12.1f}{b:12.1f}{ratio}")


if __name__ == "__main__":
    main()
