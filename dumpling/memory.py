"""Memory accounting and eviction (maxmemory, maxmemory-policy).

dumpling reports memory in Redis's terms, not Python's: each key is charged an
estimate close to what Redis would use for it (``key_memory``), so ``used_memory``,
``MEMORY USAGE`` and the ``maxmemory`` limit all speak the same unit.  Summing every
key on every command would be O(n); instead each database keeps an average bytes
per key measured on a random sample, refreshed at most every 100 ms, and
``used_memory`` = startup overhead + Σ keys × average.  Eviction follows Redis:
sample ``maxmemory-samples`` keys per database into a pool of 16 candidates,
evict the best one by the policy's score, repeat until under the limit.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from dumpling.keyspace import Database, lfu_decayed, lru_idle_ms

if TYPE_CHECKING:
    from dumpling.dispatch import Server

STARTUP_BYTES = 900_000
SAMPLE_SIZE = 32
REFRESH_SECONDS = 0.1
POOL_SIZE = 16


def _round8(n: int) -> int:
    return (n + 7) & ~7


def key_memory(key: bytes, value: Any) -> int:
    """Approximate bytes Redis would use for ``key`` and its value (MEMORY USAGE)."""
    base = 24 + _round8(len(key) + 9)  # dict entry + key sds
    if type(value) is bytes or type(value) is bytearray:
        n = len(value)
        if n <= 20 and value.isdigit():
            return base + 16
        return base + 16 + _round8(n + 9)
    usage = getattr(value, "memory_usage", None)
    if usage is not None:
        return base + 16 + usage()
    return base + 16 + 64 * len(value)


class _Estimate:
    __slots__ = ("avg", "stamp")

    def __init__(self) -> None:
        self.avg = 0.0
        self.stamp = 0.0


_estimates: dict[int, _Estimate] = {}


def _db_bytes(db: Database) -> int:
    n = len(db.data)
    if not n:
        return 0
    est = _estimates.setdefault(id(db), _Estimate())
    now = time.monotonic()
    if now - est.stamp > REFRESH_SECONDS or not est.avg:
        order = db.scan_order()
        total = count = 0
        for _ in range(min(SAMPLE_SIZE, n)):
            key = order.random_key()
            if key is None:
                break
            total += key_memory(key, db.data[key])
            count += 1
        est.avg = total / count if count else 0.0
        est.stamp = now
    return int(n * est.avg)


def estimate_used_memory(server: Server) -> int:
    """used_memory: the datasets, and the clients' buffers (as Redis's allocator counts them;
    summed by the cron, ``refresh_clients_memory``)."""
    return STARTUP_BYTES + sum(_db_bytes(db) for db in server.keyspace.dbs) + server.clients_memory


def refresh_clients_memory(server: Server) -> None:
    """The memory of the normal and pub/sub clients (query buffers, arguments, output) for
    used_memory, which maxmemory compares; replicas' buffers are not counted for eviction."""
    from dumpling.commands.connection import client_memory

    total = 0
    for client in server.clients.values():
        if getattr(client, "repl_kind", None) != "replica":
            client.counted_memory = client_memory(client)
            total += client.counted_memory
    server.clients_memory = total


def _score(server: Server, db: Database, key: bytes, policy: str) -> float:
    ks = server.keyspace
    if policy.endswith("lru"):
        return lru_idle_ms(db.meta.get(key, 0), ks.now)
    if policy.endswith("lfu"):
        return 255 - lfu_decayed(db.meta.get(key, 0), ks.now, ks.lfu_decay_time)
    if policy == "volatile-ttl":
        return -db.expires.get(key, 0)
    return random.random()


def perform_evictions(server: Server) -> bool:
    """Free memory until under ``maxmemory``; False if nothing could be evicted."""
    cfg = server.config
    limit = cfg["maxmemory"]
    used = estimate_used_memory(server)
    if used <= limit:
        return True
    policy = cfg["maxmemory-policy"]
    if policy == "noeviction":
        return False
    ks = server.keyspace
    samples = cfg["maxmemory-samples"]
    volatile = policy.startswith("volatile")
    for _ in range(100_000):
        pool: list[tuple[float, Database, bytes]] = []
        for db in ks.dbs:
            source = db.expires if volatile else db.data
            if not source:
                continue
            order = db.expire_order() if volatile else db.scan_order()
            for _ in range(samples):
                key = order.random_key()
                if key is None or key not in db.data:
                    continue
                pool.append((_score(server, db, key, policy), db, key))
        if not pool:
            return False
        pool.sort(key=lambda item: item[0], reverse=True)
        _, db, key = pool[0]
        freed = key_memory(key, db.data[key])
        db.delete(key)
        ks.stat_evicted += 1
        ks.changed(db, key, b"evicted", "e", dirty=0)  # (nor for an eviction)
        used -= freed
        est = _estimates.get(id(db))
        if est is not None:
            est.stamp = 0.0
        if used <= limit:
            return True
    return estimate_used_memory(server) <= limit
