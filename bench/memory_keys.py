"""Bytes per small string key: dumpling against real Redis.

Starts one dumpling and one redis-server on loopback and, for each workload, writes N
keys named as redis-benchmark names them (``key:000000000042``) with pipelined SETs
(the command redis-benchmark's SET test sends), then reports per key: the growth of the
process RSS (both servers), ``used_memory`` growth and ``MEMORY USAGE`` of one key.
Ratios are dumpling / Redis.  Every workload runs on freshly started servers.

Workloads: ``same`` — every key holds ``xxx`` (redis-benchmark's 3-byte value);
``distinct`` — every key its own 3-byte value; ``populate`` — ``DEBUG POPULATE N``
(``key:N`` -> ``value:N``, the server's own loop, no network); ``hash`` — every key a small
hash of two fields (``HSET key name <3 bytes> age <3 bytes>``, a listpack in both servers);
``list`` — every key a list of two elements (``RPUSH key <3 bytes> <3 digits>``, a listpack);
``restored-hash`` — the same hashes RESTOREd from their DUMP payloads (dumpling keeps a restored
listpack hash packed until first use).

    python bench/memory_keys.py [--keys 1000000] [--batch 1000] [--workloads same,distinct,populate,hash]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import SETTLE_SECONDS, expect_replies, on_fresh_servers, rss_bytes, used_memory  # noqa: E402

from dumpling.datatypes import HashValue  # noqa: E402
from dumpling.payload import encode_payload  # noqa: E402
from tests.servers import ServerProcess, encode_command, parse_reply  # noqa: E402


def set_requests(n: int, batch: int, workload: str) -> Iterator[tuple[int, bytes, bytes]]:
    """Pipelined writes: (how many, their bytes, each one's reply), ``batch`` requests a chunk."""
    for first in range(0, n, batch):
        chunk = []
        for i in range(first, min(first + batch, n)):
            value = i.to_bytes(3, "big") if workload != "same" else b"xxx"  # distinct for n < 2**24
            key = f"key:{i:012d}"
            if workload == "hash":
                chunk.append(encode_command("HSET", key, "name", value, "age", b"%03d" % (i % 100)))
            elif workload == "list":
                chunk.append(encode_command("RPUSH", key, value, b"%03d" % (i % 100)))
            elif workload == "restored-hash":  # the payload Redis DUMPs for that hash (byte-identical)
                payload = encode_payload(HashValue({b"name": value, b"age": b"%03d" % (i % 100)}), 10)
                chunk.append(encode_command("RESTORE", key, 0, payload))
            else:
                chunk.append(encode_command("SET", key, value))
        yield len(chunk), b"".join(chunk), b":2\r\n" if workload in ("hash", "list") else b"+OK\r\n"


def fill(server: ServerProcess, workload: str, n: int, batch: int) -> float:
    start = time.perf_counter()
    with server.raw() as conn:
        if workload == "populate":
            reply = conn.call("DEBUG", "POPULATE", n)
            if reply != b"+OK\r\n":
                raise RuntimeError(f"DEBUG POPULATE: {reply!r}")
        else:
            for count, chunk, reply in set_requests(n, batch, workload):
                conn.send(chunk)
                expect_replies(conn, reply * count, "filling")
        size = parse_reply(conn.call("DBSIZE"))
        if size != n:
            raise RuntimeError(f"DBSIZE {size!r}, expected {n}")
    return time.perf_counter() - start


def measure(server: ServerProcess, workload: str, n: int, batch: int) -> dict[str, object]:
    time.sleep(0.3)
    before_rss = rss_bytes(server.proc.pid)
    before_used = used_memory(server)
    seconds = fill(server, workload, n, batch)
    time.sleep(SETTLE_SECONDS)
    with server.raw() as conn:
        usage = parse_reply(conn.call("MEMORY", "USAGE", "key:000000000001" if workload != "populate" else "key:1"))
        after_rss = rss_bytes(server.proc.pid)
        after_used = used_memory(server)
    return {
        "rss": (after_rss - before_rss) / n,
        "used": (after_used - before_used) / n,
        "usage": float(usage) if isinstance(usage, int) else 0.0,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workloads", default="same,distinct,populate,hash")
    args = parser.parse_args()
    names = [w for w in args.workloads.split(",") if w]
    results = on_fresh_servers(names, lambda server, name: measure(server, name, args.keys, args.batch))
    for name in names:
        ours, theirs = results[name]["dumpling"], results[name]["redis"]
        print(f"{name}: {args.keys:,} keys")
        print(f"  {'':30}{'dumpling':>12}{'redis':>12}{'ratio':>9}")
        for label, key in (("RSS growth, bytes/key", "rss"), ("used_memory growth, bytes/key", "used"),
                           ("MEMORY USAGE of one key", "usage"), ("load time, seconds", "seconds")):
            a, b = float(ours[key]), float(theirs[key])  # type: ignore[arg-type]
            ratio = f"{a / b:8.2f}x" if b else "      n/a"
            print(f"  {label:30}{a:12.1f}{b:12.1f}{ratio}")


if __name__ == "__main__":
    main()
