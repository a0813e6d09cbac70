"""DUMP and RESTORE throughput of a live dumpling against a real redis-server, in one run.

Both servers get the same payloads (Redis's own DUMPs) over loopback from the same
client code; for every case the script prints the wall time seen by the client and
the server-side time from INFO commandstats (for the small keys also the server's CPU time),
and the ratio dumpling / Redis (lower is better, 1.0 = as fast as Redis):

* many small keys of every small payload type (20-byte and integer strings; 10-element
  listpack hashes, zsets, lists and sets, intsets), RESTORE then DUMP pipelined in batches of
  ``--batch`` (100), mixed and each type alone;
* a 1M-member hash, zset, set and list (one RESTORE / one DUMP each; ``--built``: also
  the DUMP of the same collection built by HSET/ZADD/SADD/RPUSH on each server);
* a 256 MiB string (random bytes: LZF is tried and gives up, as for real blobs).

    python bench/payload_server.py [--size 1000000] [--small 100000] [--batch 100] [--kinds string,hash,...]
        [--small-only] [--string-mib 256] [--built] [--port-base N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import hiredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measure import cpu_seconds  # noqa: E402

_INCOMPLETE = object()


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


def encode(*args: bytes | str | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class PortTaken(RuntimeError):
    """The port we picked was answered by a process that is not ours."""


class Server:
    """A server process plus one raw connection that pipelines and counts replies."""

    def __init__(self, name: str, argv: list[str], port: int) -> None:
        self.name = name
        self.port = port
        self.dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if self.proc.poll() is not None:  # most likely: the port was taken meanwhile
                    shutil.rmtree(self.dir, ignore_errors=True)
                    raise PortTaken(f"{name} exited with {self.proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.05)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
        info = self.call("INFO", "server")
        # a free port can be taken by someone else's server before ours binds it
        if b"process_id:%d\r\n" % self.proc.pid not in info:  # type: ignore[operator]
            self.stop()
            raise PortTaken(f"port {port} answered by another process")

    def pipeline(self, commands: Iterable[bytes], count: int) -> list[object]:
        """Send pre-encoded commands (from a writer thread) and collect ``count`` replies."""
        buffer = b"".join(commands)
        writer = threading.Thread(target=self.sock.sendall, args=(buffer,))
        writer.start()
        replies: list[object] = []
        while len(replies) < count:
            reply = self.reader.gets()
            if reply is _INCOMPLETE:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError(f"{self.name} closed the connection")
                self.reader.feed(chunk)
                continue
            if isinstance(reply, hiredis.ReplyError):
                raise RuntimeError(f"{self.name}: {reply}")
            replies.append(reply)
        writer.join()
        return replies

    def call(self, *args: bytes | str | int) -> object:
        return self.pipeline([encode(*args)], 1)[0]

    def command_usec(self, name: str) -> float:
        info = self.call("INFO", "commandstats")
        assert isinstance(info, bytes)
        for line in info.split(b"\r\n"):
            if line.startswith(b"cmdstat_%s:" % name.encode()):
                fields = dict(kv.split(b"=") for kv in line.split(b":", 1)[1].split(b","))
                return float(fields[b"usec"])
        return 0.0

    def stop(self) -> None:
        self.sock.close()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def start(name: str, argv: list[str], port_base: int | None = None) -> Server:
    for _ in range(5):
        port = free_port(port_base)
        try:
            return Server(name, [*argv, "--port", str(port)], port)
        except PortTaken:
            continue
    raise RuntimeError(f"could not start {name}")


def start_servers(port_base: int | None = None) -> tuple[Server, Server]:
    redis_path = shutil.which("redis-server")
    if not redis_path:
        sys.exit("redis-server not found (apt-get install -y redis-server)")
    common = ["--proto-max-bulk-len", "1gb", "--client-query-buffer-limit", "1gb"]
    real = start("redis", [redis_path, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *common], port_base)
    ours = start("dumpling", [sys.executable, "-m", "dumpling", *common], port_base and port_base + 1)
    return real, ours


def measure(server: Server, command: str, commands: Sequence[bytes]) -> tuple[float, float, list[object]]:
    """(wall ms, server ms, replies) for a pipelined batch of ``command`` calls."""
    server.call("CONFIG", "RESETSTAT")
    started = time.perf_counter()
    replies = server.pipeline(commands, len(commands))
    wall = (time.perf_counter() - started) * 1000
    return wall, server.command_usec(command) / 1000, replies


def report(name: str, results: dict[str, tuple[float, ...]]) -> None:
    (rw, rs, *rc), (ow, os_, *oc) = results["redis"], results["dumpling"]
    line = (f"  {name:<30} wall: redis {rw:9.1f} ms  dumpling {ow:9.1f} ms  ratio {ow / rw:6.2f}x   |"
            f"  server: redis {rs:9.1f} ms  dumpling {os_:9.1f} ms  ratio {os_ / max(rs, 1e-3):6.2f}x")
    if rc and oc:
        line += f"   |  cpu: redis {rc[0]:8.1f} ms  dumpling {oc[0]:8.1f} ms  ratio {oc[0] / max(rc[0], 1e-3):6.2f}x"
    print(line)


def fill(server: Server, key: str, kind: str, size: int) -> None:
    batch = 10_000
    commands = []
    for start in range(0, size, batch):
        chunk = range(start, min(size, start + batch))
        if kind == "hash":
            args = [x for i in chunk for x in (b"field:%d" % i, b"value:%d" % i)]
            commands.append(encode("HSET", key, *args))
        elif kind == "zset":
            args = [x for i in chunk for x in (repr(i * 0.37).encode(), b"member:%d" % i)]
            commands.append(encode("ZADD", key, *args))
        elif kind == "set":
            commands.append(encode("SADD", key, *[b"member:%d" % i for i in chunk]))
        else:
            commands.append(encode("RPUSH", key, *[b"item:%d" % i for i in chunk]))
    server.pipeline(commands, len(commands))


def bench_one_value(servers: tuple[Server, Server], name: str, payload: bytes) -> None:
    restore = [encode("RESTORE", "restored", 0, payload, "REPLACE")]
    dump = [encode("DUMP", "restored")]
    restored: dict[str, tuple[float, float]] = {}
    dumped: dict[str, tuple[float, float]] = {}
    sizes = {}
    for server in servers:
        wall, srv, _ = measure(server, "restore", restore)
        restored[server.name] = (wall, srv)
        wall, srv, replies = measure(server, "dump", dump)
        dumped[server.name] = (wall, srv)
        sizes[server.name] = len(replies[0])  # type: ignore[arg-type]
        server.call("DEL", "restored")
    report(f"{name} RESTORE", restored)
    report(f"{name} DUMP", dumped)
    print(f"  {'':<30} payload {len(payload) / 1e6:.2f} MB (type {payload[0]}); re-DUMP redis "
          f"{sizes['redis'] / 1e6:.2f} MB, dumpling {sizes['dumpling'] / 1e6:.2f} MB")


def bench_built(servers: tuple[Server, Server], kind: str, size: int) -> None:
    """DUMP of the value each server built itself from the same commands (no payload to re-emit)."""
    dumped: dict[str, tuple[float, float]] = {}
    for server in servers:
        fill(server, "built", kind, size)
        wall, srv, _ = measure(server, "dump", [encode("DUMP", "built")])
        dumped[server.name] = (wall, srv)
        server.call("DEL", "built")
    report(f"{kind} {size:,} DUMP (built)", dumped)


# The small-key mix: (name, how to build the key on Redis) - every payload type a small key gets.
SMALL_KINDS = ("string", "int", "hash", "zset", "list", "intset", "set")


def small_setup(kind: str, key: bytes, i: int) -> bytes:
    """The command that builds small key number ``i`` of ``kind`` on Redis (whose DUMP is the payload)."""
    if kind == "string":
        return encode("SET", key, b"value-%014d" % i)  # 20 bytes
    if kind == "int":
        return encode("SET", key, i * 7919)
    if kind == "hash":
        return encode("HSET", key, *[x for j in range(10) for x in (b"f%d" % j, b"v%d" % (i + j))])
    if kind == "zset":
        return encode("ZADD", key, *[x for j in range(10) for x in (b"%d" % (i + j) if j % 2 else b"%.2f" % (j / 3),
                                                                    b"m%d" % j)])
    if kind == "list":
        return encode("RPUSH", key, *[b"item-%d" % (i + j) for j in range(10)])
    if kind == "intset":
        return encode("SADD", key, *[i + j * 13 for j in range(10)])
    return encode("SADD", key, *[b"member-%d" % (i + j) for j in range(10)])


def measure_batched(server: Server, command: str, commands: Sequence[bytes], batch: int) -> tuple[float, float, float]:
    """(wall ms, server ms, server CPU ms) for ``commands`` sent ``batch`` at a time (each batch's
    replies read before the next is sent, as a client pipelining in batches does).  The CPU time
    is the server process's own (``/proc/<pid>/task/*/schedstat``): on a shared machine it moves
    far less than the wall and commandstats times, which count the time the server waited for a core."""
    server.call("CONFIG", "RESETSTAT")
    cpu_before = cpu_seconds(server.proc.pid)
    started = time.perf_counter()
    for at in range(0, len(commands), batch):
        chunk = commands[at:at + batch]
        server.pipeline(chunk, len(chunk))
    wall = (time.perf_counter() - started) * 1000
    cpu = (cpu_seconds(server.proc.pid) - cpu_before) * 1000
    return wall, server.command_usec(command) / 1000, cpu


def bench_small(servers: tuple[Server, Server], count: int, batch: int, kinds: Sequence[str]) -> None:
    """RESTORE then DUMP of ``count`` small keys of ``kinds`` (taking turns), ``batch`` requests a
    pipeline; then each kind alone (``count // len(kinds)`` keys).  Payloads are Redis's own DUMPs."""
    real = servers[0]
    keys = [b"%s:%d" % (kinds[i % len(kinds)].encode(), i) for i in range(count)]
    setup = [small_setup(kinds[i % len(kinds)], key, i) for i, key in enumerate(keys)]
    real.call("FLUSHALL")
    real.pipeline(setup, len(setup))
    payloads = real.pipeline([encode("DUMP", k) for k in keys], len(keys))
    real.call("FLUSHALL")
    restore = [encode("RESTORE", k, 0, p, "REPLACE") for k, p in zip(keys, payloads, strict=True)]  # type: ignore[arg-type]
    dump = [encode("DUMP", k) for k in keys]
    print(f"{count:,} small keys ({', '.join(kinds)} taking turns; 20-byte strings, 10-element collections), "
          f"pipelined {batch} a batch")
    rows = [("mixed", range(count))] + [(kind, range(n, count, len(kinds))) for n, kind in enumerate(kinds)]
    for name, picked in rows:
        restored: dict[str, tuple[float, ...]] = {}
        dumped: dict[str, tuple[float, ...]] = {}
        for server in servers:
            server.call("FLUSHALL")
            restored[server.name] = measure_batched(server, "restore", [restore[i] for i in picked], batch)
            dumped[server.name] = measure_batched(server, "dump", [dump[i] for i in picked], batch)
            server.call("FLUSHALL")
        report(f"small {name} RESTORE", restored)
        report(f"small {name} DUMP", dumped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="members of the big collections")
    parser.add_argument("--small", type=int, default=100_000, help="number of small keys")
    parser.add_argument("--batch", type=int, default=100, help="small-key requests per pipelined batch")
    parser.add_argument("--kinds", default=",".join(SMALL_KINDS), help="small-key payload kinds, comma-separated")
    parser.add_argument("--small-only", action="store_true", help="only the small keys")
    parser.add_argument("--string-mib", type=int, default=256, help="size of the big string")
    parser.add_argument("--port-base", type=int, default=None, help="first loopback port to try (default: any)")
    parser.add_argument("--built", action="store_true", help="also DUMP each collection built by commands")
    args = parser.parse_args()
    servers = start_servers(args.port_base)
    real = servers[0]
    try:
        version = real.call("INFO", "server")
        assert isinstance(version, bytes)
        line = next(x for x in version.split(b"\r\n") if x.startswith(b"redis_version:"))
        print(f"redis-server {line.split(b':')[1].decode()} vs dumpling, Python {sys.version.split()[0]}")
        print("ratios are dumpling / redis (lower is better)")
        bench_small(servers, args.small, args.batch, args.kinds.split(","))
        if args.small_only:
            return
        print(f"big values ({args.size:,} members; payload = Redis's own DUMP)")
        for kind in ("hash", "zset", "set", "list"):
            fill(real, kind, kind, args.size)
            payload = real.call("DUMP", kind)
            real.call("DEL", kind)
            assert isinstance(payload, bytes)
            bench_one_value(servers, f"{kind} {args.size:,}", payload)
            if args.built:
                bench_built(servers, kind, args.size)
        real.pipeline([encode("SET", "string", os.urandom(args.string_mib << 20))], 1)
        payload = real.call("DUMP", "string")
        real.call("DEL", "string")
        assert isinstance(payload, bytes)
        bench_one_value(servers, f"string {args.string_mib} MiB", payload)
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
