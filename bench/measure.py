"""Measurements shared by the benchmarks: process RSS, INFO used_memory, a process's CPU time and
one redis-benchmark workload's rate (with the server's CPU per request)."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.servers import RawConnection, ServerProcess, parse_reply, start_dumpling, start_redis

# How long the memory benchmarks wait after filling before they read RSS: Redis's jemalloc hands
# freed dirty pages (a rehashed table's old buckets, reallocated listpacks) back to the kernel over
# its dirty_decay_ms, 10 s by default, so an RSS read 0.3 s after the fill still counts memory
# Redis has freed (7 B a field of a 1M-field hash: 82 B then, 75 B settled).  Both servers wait.
SETTLE_SECONDS = 11.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def used_memory(server: ServerProcess) -> int:
    with server.raw() as conn:
        info = parse_reply(conn.call("INFO", "memory"))
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


def on_fresh_servers(names: list[str], run: Callable[[ServerProcess, str], dict[str, object]]
                     ) -> dict[str, dict[str, dict[str, object]]]:
    """``run(server, name)`` for each workload on a dumpling and then a Redis of its own (a
    fresh process per workload, so memory freed by one is not reused by the next):
    {name: {"dumpling": result, "redis": result}}."""
    results: dict[str, dict[str, dict[str, object]]] = {name: {} for name in names}
    for name in names:
        for server_name, starter in (("dumpling", start_dumpling), ("redis", start_redis)):
            server = starter()
            try:
                results[name][server_name] = run(server, name)
            finally:
                server.stop()
    return results


def expect_replies(conn: RawConnection, want: bytes, what: str) -> None:
    """Read the exact bytes ``want`` of a pipelined batch's replies in bulk (parsing them one by
    one would make the client the bottleneck)."""
    got = b""
    while len(got) < len(want):
        chunk = conn.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError(f"closed while {what}")
        got += chunk
    if got != want:
        raise RuntimeError(f"unexpected replies while {what}: {got[:200]!r}")


def cpu_seconds(pid: int) -> float:
    """CPU time every thread of ``pid`` has run so far (``/proc/<pid>/task/*/schedstat``, in ns)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def user_seconds(pid: int) -> float:
    """User-mode CPU time of ``pid`` (all its threads) so far: ``/proc/<pid>/stat``'s utime, in clock
    ticks (10 ms: measure a run of a second or more).  With the kernel's share of a -P 1 request
    at ~2/3 of its CPU (two system calls), this is where a server's own work shows."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK")  # (field 14 of the whole line: utime)


def benchmark(server: ServerProcess, requests: int, pipeline: int, command: list[str],
              keyspace: int = 10000, row: str = "") -> tuple[float, float]:
    """One redis-benchmark workload (50 clients, ``-r keyspace``): (requests per second, the
    server's CPU microseconds per request). ``row``: the title of the CSV row to read (``-t
    lrange_100`` prints the LPUSH that fills the list first); the first row otherwise."""
    before = cpu_seconds(server.proc.pid)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(server.port), "-c", "50", "-n", str(requests), "-P", str(pipeline),
         "-r", str(keyspace), "-q", "--csv", *command],
        capture_output=True, text=True, timeout=900, check=True,
    ).stdout
    cpu_us = (cpu_seconds(server.proc.pid) - before) * 1e6 / requests
    for line in out.splitlines():
        m = re.match(r'"([^"]*)","([0-9.]+)"', line)
        if m and m.group(1).startswith(row):
            return float(m.group(2)), cpu_us
    raise RuntimeError(f"no result from redis-benchmark: {out!r}")


def callgrind_totals(script: str, args: list[str], builtin: str = "builtin_exec", floor: int = 0) -> list[int]:
    """Run ``python script args`` under callgrind, counting only inside each call of ``builtin``
    (the script's measured loops are ``exec``/``eval`` of compiled text), and return the
    instruction total of each such call in order; calls of ``floor`` instructions or fewer
    (imports and set-ups run small ones too) are left out."""
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}", "--collect-atstart=no",
                        f"--toggle-collect={builtin}", f"--dump-after={builtin}", sys.executable,
                        os.path.abspath(script), *args],
                       check=True, capture_output=True)
        totals = []
        for path in sorted(glob.glob(prefix + ".*"), key=lambda p: int(p.rsplit(".", 1)[1])):
            m = re.search(r"^(?:summary|totals): (\d+)", Path(path).read_text(), re.M)
            if m and int(m.group(1)) > floor:
                totals.append(int(m.group(1)))
    return totals
