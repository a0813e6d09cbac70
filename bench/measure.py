"""Measurements shared by the memory benchmarks: process RSS and INFO used_memory."""

from __future__ import annotations

from pathlib import Path

from tests.servers import ServerProcess, parse_reply


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
