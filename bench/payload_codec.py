"""Payload codec throughput against a real redis-server's own DUMP/RESTORE, in the same run.

For each value (1M-member hash, zset, set and list, a large string, many small
payloads) the value is built in a real redis-server, which DUMPs and RESTOREs it;
its time is the server-side time from INFO commandstats (no network, no client).
Our time is ``encode_payload`` / ``decode_payload`` on the same payload.  Ratios are
ours / Redis (lower is better; 1.0 = as fast as Redis).  Also prints CRC-64 and LZF
throughput (accelerated and pure-Python fallback).

    python bench/payload_codec.py [--size 1000000] [--small 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from dumpling.payload import compression, crc64, decode_payload, encode_payload  # noqa: E402


def free_port(base: int | None = None) -> int:
    """An unused loopback port: the first bindable one from ``base`` on (100 tried), else any."""
    for port in range(base, base + 100) if base else ():
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port_base: int | None = None) -> tuple[subprocess.Popen, redis.Redis, str]:
    path = shutil.which("redis-server")
    if not path:
        sys.exit("redis-server not found (apt-get install -y redis-server)")
    port = free_port(port_base)
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir,
         "--proto-max-bulk-len", "1gb", "--client-query-buffer-limit", "1gb"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, protocol=2, socket_timeout=600)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, client, workdir


def server_usec(client: redis.Redis, command: str, action: Callable[[], object]) -> tuple[float, object]:
    """Run ``action`` and return the server-side microseconds spent in ``command`` (commandstats)."""
    client.config_resetstat()
    result = action()
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return float(stats.get("usec", 0)), result


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best * 1e6, result


def fill(client: redis.Redis, key: str, kind: str, size: int) -> None:
    batch = 10000
    for start in range(0, size, batch):
        chunk = range(start, min(size, start + batch))
        if kind == "hash":
            client.hset(key, mapping={b"field:%d" % i: b"value:%d" % i for i in chunk})
        elif kind == "zset":
            client.zadd(key, {b"member:%d" % i: i * 0.37 for i in chunk})
        elif kind == "set":
            client.sadd(key, *[b"member:%d" % i for i in chunk])
        elif kind == "list":
            client.rpush(key, *[b"item:%d" % i for i in chunk])


def row(name: str, redis_us: float, ours_us: float) -> str:
    ratio = ours_us / redis_us if redis_us else float("inf")
    return f"  {name:<34} redis {redis_us / 1000:9.1f} ms   ours {ours_us / 1000:9.1f} ms   ratio {ratio:6.2f}x"


def bench_values(client: redis.Redis, size: int, small: int, repeat: int) -> None:
    print(f"DUMP (ours: encode_payload) and RESTORE (ours: decode_payload), {size:,} elements")
    cases = [("hash", "hash"), ("zset", "zset"), ("set", "set"), ("list", "list")]
    for kind, key in cases:
        fill(client, key, kind, size)
    rng = random.Random(7)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"%d" % rng.randrange(10**6)]
    big = b" ".join(rng.choice(words) for _ in range(6_000_000))[: 32 * 1024 * 1024]
    client.set("string", big)
    cases.append(("string (32 MiB, LZF)", "string"))
    for name, key in cases:
        dump_us, payload = server_usec(client, "dump", lambda k=key: client.dump(k))
        decode_us, decoded = timed(lambda p=payload: decode_payload(p), repeat)
        encode_us, ours = timed(lambda v=decoded.value: encode_payload(v, 10), repeat)
        restore_us, _ = server_usec(client, "restore", lambda p=ours: client.restore("restored", 0, p, replace=True))
        print(row(f"{name} DUMP / encode", dump_us, encode_us))
        print(row(f"{name} RESTORE / decode", restore_us, decode_us))
        if key == "list":
            # A restored list keeps its nodes packed: the elements are decoded on first use.
            first_us, _ = timed(lambda v=decoded.value: v.items)
            print(f"  {'':<34} ours: first access decodes the elements in {first_us / 1000:.1f} ms")
        print(f"  {'':<34} payload {len(payload) / 1e6:8.2f} MB, type {payload[0]}, same bytes: {ours == payload}")
        client.delete(key, "restored")

    print(f"{small:,} small payloads (10-field listpack hashes, 20-byte strings)")
    pipe = client.pipeline(transaction=False)
    for i in range(small):
        if i % 2:
            pipe.hset(f"h{i}", mapping={b"f%d" % j: b"v%d" % (i + j) for j in range(10)})
        else:
            pipe.set(f"s{i}", b"value-%014d" % i)
    pipe.execute()
    keys = [f"h{i}" if i % 2 else f"s{i}" for i in range(small)]

    def dump_all() -> list[bytes]:
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.dump(k)
        return pipe.execute()

    dump_us, payloads = server_usec(client, "dump", dump_all)
    decode_us, values = timed(lambda: [decode_payload(p).value for p in payloads], repeat)
    encode_us, ours = timed(lambda: [encode_payload(v, 10) for v in values], repeat)

    def restore_all() -> None:
        pipe = client.pipeline(transaction=False)
        for k, p in zip(keys, ours, strict=True):
            pipe.restore(k, 0, p, replace=True)
        pipe.execute()

    restore_us, _ = server_usec(client, "restore", restore_all)
    print(row("small DUMP / encode", dump_us, encode_us))
    print(row("small RESTORE / decode", restore_us, decode_us))
    print(f"  {'':<34} per payload: ours decode {decode_us / small:.2f} us, encode {encode_us / small:.2f} us")
    client.flushall()


def bench_primitives() -> None:
    print("CRC-64 and LZF")
    data = os.urandom(64 * 1024 * 1024)
    us, _ = timed(lambda: crc64.crc64(data), 3)
    print(f"  CRC-64 ({'anycrc' if crc64.ACCELERATED else 'pure'}): {len(data) / us:10.1f} MB/s")
    sample = data[: 256 * 1024]
    us, _ = timed(lambda: crc64.crc64_pure(sample))
    print(f"  CRC-64 pure-Python fallback:  {len(sample) / us:10.2f} MB/s")
    rng = random.Random(3)
    text = b" ".join(rng.choice([b"alpha", b"beta", b"gamma", b"%d" % rng.randrange(999)]) for _ in range(3_000_000))
    us, packed = timed(lambda: compression.compress_for_rdb(text), 3)
    assert packed is not None
    print(f"  LZF compress ({'python-lzf' if compression.ACCELERATED else 'pure'}): {len(text) / us:8.1f} MB/s "
          f"(ratio {len(packed) / len(text):.2f})")  # fmt: skip
    us, _ = timed(lambda: compression.decompress(packed, len(text)), 3)
    print(f"  LZF decompress:               {len(text) / us:10.1f} MB/s")
    small_text = text[:200_000]
    us, small_packed = timed(lambda: compression.compress_pure(small_text, len(small_text) - 4))
    print(f"  LZF compress pure fallback:   {len(small_text) / us:10.2f} MB/s")
    us, _ = timed(lambda: compression.decompress_pure(small_packed, len(small_text)))
    print(f"  LZF decompress pure fallback: {len(small_text) / us:10.2f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="elements in the big collections")
    parser.add_argument("--small", type=int, default=100_000, help="number of small payloads")
    parser.add_argument("--repeat", type=int, default=1, help="best of N for our side")
    parser.add_argument("--port-base", type=int, default=None, help="first loopback port to try (default: any)")
    args = parser.parse_args()
    proc, client, workdir = start_redis(args.port_base)
    try:
        version = client.info("server")["redis_version"]
        print(f"redis-server {version}, Python {sys.version.split()[0]}")
        bench_values(client, args.size, args.small, args.repeat)
        bench_primitives()
    finally:
        client.close()
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
