"""Memory accounting and eviction (maxmemory, maxmemory-policy).

dumpling reports memory in Redis's terms, not Python's: each key is charged an
estimate close to what Redis would use for it (``key_memory``), so ``used_memory``,
``MEMORY USAGE`` and the ``maxmemory`` limit all speak the same unit.  Summing every
key on every command would be O(n); instead each database keeps its last count
(``_Estimate``): every key sized while it holds at most ``EXACT_KEYS``, a random sample
beyond, and ``used_memory`` = startup overhead + Σ keys × that count's bytes per key.  A
count is taken again after 100 ms, or at once when the number of keys moved by more than
one in ``RECOUNT_SHARE``.  While maxmemory is set, the keys written since the last look
(``Keyspace.written``, filled by ``Keyspace.changed``) are sized again in a counted-key-by-key
database, so a write that grows memory counts at the next command's eviction check, as
Redis's allocator counts it at once, and the figure does not move between two looks unless
something was written.  Eviction follows Redis:
sample ``maxmemory-samples`` keys per database into a pool of 16 candidates,
evict the best one by the policy's score, repeat until under the limit.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from dumpling.commands.connection import client_memory
from dumpling.keyspace import Database, Keyspace, lfu_decayed, lru_idle_ms

if TYPE_CHECKING:
    from dumpling.dispatch import Server

STARTUP_BYTES = 900_000
SAMPLE_SIZE = 32
EXACT_KEYS = 4096  # databases up to this many keys are counted key by key
RECOUNT_SHARE = 8  # a change of more than 1/8 of the keys counted makes the next look count again
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
    """A database's last count: ``total`` bytes for ``keys`` keys (all of them, or a sample
    scaled up), taken at ``stamp`` of the dict ``data`` (its id).  ``sizes``: each key's bytes,
    when every key was sized while ``Keyspace.written`` was ``writes`` (kept up to date from
    it)."""

    __slots__ = ("keys", "total", "stamp", "data", "sizes", "writes")

    def __init__(self) -> None:
        self.keys = 0
        self.total = 0
        self.stamp = 0.0
        self.data = 0
        self.sizes: dict[bytes, int] | None = None
        self.writes: set[tuple[int, bytes]] | None = None


def _count(db: Database, est: _Estimate, n: int) -> None:
    data = db.data
    est.keys = n
    est.data = id(data)
    est.writes = db.keyspace.written
    if n <= EXACT_KEYS:
        sizes = {key: key_memory(key, value) for key, value in data.items()}
        est.total = sum(sizes.values())
        est.sizes = sizes if est.writes is not None else None
        return
    est.sizes = None
    total = count = 0
    for _ in range(SAMPLE_SIZE):
        key = data.random_key()
        if key is None:
            break
        total += key_memory(key, data[key])
        count += 1
    est.total = total * n // count if count else 0


def _resize_written(keyspace: Keyspace, written: set[tuple[int, bytes]]) -> None:
    """The keys written since the last look, sized again where their database was counted key
    by key (elsewhere the next count sees them)."""
    dbs = keyspace.dbs
    for index, key in written:
        db = dbs[index]
        est = db.memory_estimate
        if est is None or est.sizes is None or est.writes is not written or est.data != id(db.data):
            continue
        old = est.sizes.pop(key, 0)
        value = db.data.get(key)
        new = 0 if value is None else key_memory(key, value)
        if value is not None:
            est.sizes[key] = new
        est.total += new - old
        est.keys = len(est.sizes)
    written.clear()


def _db_bytes(db: Database) -> int:
    n = len(db.data)
    if not n:
        return 0
    est = db.memory_estimate
    if est is None:
        est = db.memory_estimate = _Estimate()
    now = time.monotonic()
    written = db.keyspace.written
    if est.sizes is not None and est.writes is written and est.data == id(db.data):
        stale = n != est.keys  # (a change that did not come through Keyspace.changed)
    else:
        # a small database is counted key by key at once when maxmemory starts watching writes
        stale = (abs(n - est.keys) * RECOUNT_SHARE > est.keys or est.data != id(db.data)
                 or (written is not None and est.writes is not written and n <= EXACT_KEYS))
    if stale or now - est.stamp > REFRESH_SECONDS:
        _count(db, est, n)
        est.stamp = now
    return est.total if n == est.keys else est.total * n // est.keys


def _forget(db: Database, key: bytes, freed: int) -> None:
    """An evicted key leaves its database's last count with its bytes."""
    est = db.memory_estimate
    if est is None or not est.keys:
        return
    if est.sizes is not None:
        freed = est.sizes.pop(key, 0)
        est.keys = len(est.sizes)
    else:
        est.keys -= 1
    est.total = max(0, est.total - freed)


def estimate_used_memory(server: Server) -> int:
    """used_memory: the datasets, and the clients' buffers (as Redis's allocator counts them;
    kept per client by ``update_client_memory``)."""
    keyspace = server.keyspace
    if keyspace.written:
        _resize_written(keyspace, keyspace.written)
    return STARTUP_BYTES + sum(_db_bytes(db) for db in keyspace.dbs) + server.clients_memory


def update_client_memory(server: Server, client: Any) -> None:
    """updateClientMemUsage: one client's memory (CLIENT LIST ``tot-mem``) counted again into the
    totals that hold what each client had when last counted: ``Server.clients_memory`` (used_memory,
    which maxmemory compares: normal, pub/sub and master clients; replicas' buffers are not
    counted for eviction) and ``Server.clients_eviction_memory`` (maxmemory-clients' total: normal
    and pub/sub; ``clienteviction.note`` keeps it too).  A total moves by the client's change, so
    keeping them costs a client, never a pass over all of them; the clients cron
    (``dumpling.clientscron``) calls this for the clients whose memory can have moved.  Values
    are only written when they changed (a write changes the dict's version: the C read path's
    memos of the client and the server would be read again)."""
    if client.closed:
        return  # (Server.client_disconnected took it out of both)
    kind = getattr(client, "repl_kind", None)
    memory = 0 if kind == "replica" else client_memory(client)
    if memory != client.counted_memory:
        server.clients_memory = max(0, server.clients_memory + memory - client.counted_memory)
        client.counted_memory = memory
    if kind is not None:
        memory = 0  # (nor the master link)
    if memory != client.eviction_memory:
        server.clients_eviction_memory += memory - client.eviction_memory
        client.eviction_memory = memory


def _score(server: Server, db: Database, key: bytes, policy: str) -> float:
    ks = server.keyspace
    if policy.endswith("lru"):
        return lru_idle_ms(db.field(key, 0), ks.now)
    if policy.endswith("lfu"):
        return 255 - lfu_decayed(db.field(key, 0), ks.now, ks.lfu_decay_time)
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
            pick = db.expire_order().random_key if volatile else db.data.random_key
            for _ in range(samples):
                key = pick()
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
        _forget(db, key, freed)
        if used <= limit:
            return True
    return estimate_used_memory(server) <= limit
