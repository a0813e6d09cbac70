"""The in-memory keyspace: databases, expiry, and LRU/LFU metadata.

A ``Database`` keeps its keys in a ``KeyTable`` (``dumpling.keytable``: each key's value
and the 24-bit LRU/LFU field Redis keeps in every object, in one C hash table rehashed
incrementally) and the absolute expiry times in Unix ms in a dict (only for keys that
have one).  All lookups go through ``lookup_read``/``lookup_write``/
``peek`` so lazy expiry, access tracking and hit/miss statistics happen in one
place.  Writers report what they did with ``Keyspace.changed`` (WATCH invalidation,
keyspace notifications, the dirty counter, waking blocked clients) so nothing is
forgotten per command.

Must not: parse commands or know about connections.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from dumpling import accel, collector
from dumpling.collector import stored
from dumpling.keytable import KeyTable
from dumpling.scan import ScanOrder

if TYPE_CHECKING:
    from dumpling.config import Config

LRU_CLOCK_MAX = (1 << 24) - 1
LFU_INIT_VAL = 5

STRING_TYPES = (bytes, bytearray)


class StoreHook(NamedTuple):
    """``call(db, key, value)`` once ``Database.add``/``set`` stored a value of exactly
    ``value_type`` whose attribute ``gate`` is truthy (a hash with field TTLs: ``field_expires``).
    The gate keeps the call off every other store: a new small hash is not worth a Python call
    (the C ``add`` reads the same three fields)."""

    value_type: type
    gate: str
    call: Callable[[Database, bytes, Any], None]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def type_name(value: Any) -> bytes:
    if type(value) is bytes or type(value) is bytearray:
        return b"string"
    return value.TYPE


# Redis frees a value in its lazyfree thread (counted in INFO's lazyfreed_objects) only when
# freeing it is more work than this (LAZYFREE_THRESHOLD).
LAZYFREE_THRESHOLD = 64


def free_effort(value: Any, list_fill: int) -> int:
    """``lazyfreeGetFreeEffort``: how many allocations freeing ``value`` takes, as Redis counts
    them (quicklist nodes, hashtable/skiplist elements, stream radix-tree nodes plus groups and
    their pending entries); 1 for a single allocation."""
    kind = type_name(value)
    encoding = getattr(value, "encoding", None)
    if kind == b"list" and encoding == "quicklist":
        return len(value.nodes(list_fill))
    if (kind in (b"set", b"hash") and encoding == "hashtable") or (kind == b"zset" and encoding == "skiplist"):
        return len(value)
    if kind == b"stream":
        effort = value.radix_tree_nodes()
        if value.groups:  # the first group's PEL stands in for every group's
            first = value.groups[min(value.groups)]
            effort += len(value.groups) * (1 + len(first.pending))
        return effort
    return 1


# ----------------------------------------------------------------------------- LRU / LFU


def lru_clock(ms: int) -> int:
    """Redis's 24-bit LRU clock: seconds, wrapping every 2^24 s."""
    return (ms // 1000) & LRU_CLOCK_MAX


def lru_idle_ms(field: int, ms: int) -> int:
    clock = lru_clock(ms)
    if clock >= field:
        return (clock - field) * 1000
    return (clock + (LRU_CLOCK_MAX - field)) * 1000  # Redis's off-by-one wrap formula


def lfu_minutes(ms: int) -> int:
    return (ms // 60000) & 0xFFFF


def lfu_decayed(field: int, ms: int, decay_time: int) -> int:
    """The counter after decay, as ``LFUDecrAndReturn`` computes it (not stored)."""
    ldt, counter = field >> 8, field & 255
    if not decay_time:
        return counter
    now = lfu_minutes(ms)
    elapsed = now - ldt if now >= ldt else 65535 - ldt + now
    periods = elapsed // decay_time
    return counter - periods if periods < counter else 0


def lfu_log_incr(counter: int, log_factor: int, rng: Callable[[], float] = random.random) -> int:
    if counter == 255:
        return 255
    base = counter - LFU_INIT_VAL
    if base < 0:
        base = 0
    if rng() < 1.0 / (base * log_factor + 1):
        counter += 1
    return counter


# ----------------------------------------------------------------------------- databases


class Database:
    __slots__ = ("keyspace", "index", "data", "expires", "_expire_order", "avg_ttl", "slot_index",
                 "memory_estimate")

    def __init__(self, keyspace: Keyspace, index: int) -> None:
        self.keyspace = keyspace
        self.index = index
        self.data: Any = KeyTable()  # key -> value, and each key's LRU/LFU field
        self.expires: dict[bytes, int] = {}
        self._expire_order: ScanOrder | None = None
        self.avg_ttl = 0
        self.slot_index: Any = None  # cluster mode: keys per hash slot (dumpling.cluster.slotindex)
        self.memory_estimate: Any = None  # its last memory count (dumpling.memory._Estimate)

    def __len__(self) -> int:
        return len(self.data)

    # -- lookups ----------------------------------------------------------------

    def expire_if_needed(self, key: bytes, write: bool = False) -> bool:
        """Delete ``key`` if it is logically expired; True if it was.  A replica keeps it
        for its master's DEL, except for a write on a writable replica (``write``)."""
        when = self.expires.get(key)
        ks = self.keyspace
        if when is None or ks.now <= when or ks.loading:
            return False
        if not (ks.expire_paused or (ks.expiry_by_master and not (write and not ks.replica_read_only))):
            ks.expire_key(self, key)
        return True  # while CLIENT PAUSE holds expiry: logically expired, still stored

    def lookup_read(self, key: bytes) -> Any:
        """GET-style lookup: lazy expiry, access tracking, hit/miss statistics."""
        ks = self.keyspace
        value = None if key in self.expires and self.expire_if_needed(key) else self.data.get(key)
        if value is None:
            ks.stat_misses += 1
            if ks.notify_flags and "m" in ks.notify_flags:
                ks.notify(self.index, "m", b"keymiss", key)
            return None
        ks.stat_hits += 1
        if not ks.no_touch:
            self.touch(key)
        return value

    def lookup_write(self, key: bytes) -> Any:
        value = None if key in self.expires and self.expire_if_needed(key, write=True) else self.data.get(key)
        if value is not None and not self.keyspace.no_touch:
            self.touch(key)
        return value

    def lookup_notouch(self, key: bytes, notify: bool = True) -> Any:
        """A read lookup that leaves LRU/LFU alone but counts hits/misses
        (EXISTS, TYPE, TTL; OBJECT passes ``notify=False``: no ``keymiss``)."""
        ks = self.keyspace
        value = None if key in self.expires and self.expire_if_needed(key) else self.data.get(key)
        if value is None:
            ks.stat_misses += 1
            if notify and ks.notify_flags and "m" in ks.notify_flags:
                ks.notify(self.index, "m", b"keymiss", key)
        else:
            ks.stat_hits += 1
        return value

    def peek(self, key: bytes) -> Any:
        """Lookup without touching LRU/LFU or statistics (MEMORY USAGE, DEBUG OBJECT)."""
        if key in self.expires and self.expire_if_needed(key):
            return None
        return self.data.get(key)

    def touch(self, key: bytes) -> None:
        ks = self.keyspace
        if ks.lfu:
            field = self.data.get_field(key, LFU_INIT_VAL)
            counter = lfu_decayed(field, ks.now, ks.lfu_decay_time)
            counter = lfu_log_incr(counter, ks.lfu_log_factor)
            self.data.set_field(key, (lfu_minutes(ks.now) << 8) | counter)
        else:
            self.data.set_field(key, lru_clock(ks.now))

    def field(self, key: bytes, default: Any = None) -> Any:
        """The key's LRU/LFU field (Redis's ``robj.lru``), ``default`` if the key is absent."""
        return self.data.get_field(key, default)

    def set_field(self, key: bytes, field: int) -> None:
        """Set a stored key's LRU/LFU field (RESTORE's IDLETIME/FREQ, a loaded record's)."""
        self.data.set_field(key, field)

    def fresh_field(self) -> int:
        ks = self.keyspace
        return (lfu_minutes(ks.now) << 8) | LFU_INIT_VAL if ks.lfu else lru_clock(ks.now)

    # -- writes -------------------------------------------------------------------

    def add(self, key: bytes, value: Any) -> None:
        """Store a key that does not exist (dbAdd)."""
        data = self.data
        data[key] = value
        if type(value) not in STRING_TYPES:
            stored(data, value)  # out of the cyclic GC's full collections (dumpling.collector)
        data.set_field(key, self.fresh_field())
        if self.slot_index is not None:
            self.slot_index.added(key)
        ks = self.keyspace
        if ks.blocked_keys and type(value) not in STRING_TYPES:
            ks.signal_ready(self, key)
        if ks.store_hooks and type(value) not in STRING_TYPES:
            for hook in ks.store_hooks:
                if type(value) is hook.value_type and getattr(value, hook.gate):
                    hook.call(self, key, value)

    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """setKey: add or overwrite; the TTL is cleared unless ``keep_ttl``.

        An overwrite keeps the old LRU/LFU field (the write lookup just touched it),
        which is what Redis 7.2+ does and what 7.0 does in LFU mode.
        """
        if key in self.data:
            old = self.data[key]
            self.data[key] = value
            if type(value) not in STRING_TYPES:
                stored(self.data, value)
            if not keep_ttl and key in self.expires:
                self._remove_expire(key)
            ks = self.keyspace
            if ks.blocked_keys and (type(value) not in STRING_TYPES or type(old) not in STRING_TYPES):
                ks.signal_ready(self, key)  # new data, or (signalDeletedKeyAsReady) a collection replaced
            if ks.store_hooks and type(value) not in STRING_TYPES:
                for hook in ks.store_hooks:
                    if type(value) is hook.value_type and getattr(value, hook.gate):
                        hook.call(self, key, value)
        else:
            self.add(key, value)

    def delete(self, key: bytes) -> bool:
        value = self.data.pop(key, None)
        if value is None:
            return False
        if key in self.expires:
            self._remove_expire(key)
        if self.slot_index is not None:
            self.slot_index.removed(key)
        ks = self.keyspace
        if ks.blocked_keys and type(value) not in STRING_TYPES:
            # signalDeletedKeyAsReady: a blocked XREADGROUP must learn its stream is gone
            ks.signal_ready(self, key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        if key not in self.expires and self._expire_order is not None:
            self._expire_order.added(key)
        self.expires[key] = when_ms
        ks = self.keyspace
        if ks.expiry_by_master and not ks.loading:  # a client's write on a writable replica: we expire it
            ks.replica_keys_with_expire[(self.index, key)] = None

    def persist(self, key: bytes) -> bool:
        if key in self.expires:
            self._remove_expire(key)
            return True
        return False

    def _remove_expire(self, key: bytes) -> None:
        del self.expires[key]

    def get_expire(self, key: bytes) -> int:
        """Absolute expiry in ms, or -1."""
        return self.expires.get(key, -1)

    def clear(self) -> None:
        ks = self.keyspace
        if ks.blocked_keys:
            # signalFlushedDb: a client blocked on a collection that goes away is told, so a
            # blocked XREADGROUP answers -NOGROUP (the others retry and keep waiting)
            for index, key in list(ks.blocked_keys):
                if index == self.index and key in self.data and type(self.data[key]) not in STRING_TYPES:
                    ks.signal_ready(self, key)
        self.data = KeyTable()
        self.expires = {}
        self._expire_order = None
        self.avg_ttl = 0
        if self.slot_index is not None:
            self.slot_index.cleared()

    def swap_contents(self, other: Database) -> None:
        """SWAPDB: the two databases exchange their keys (their indexes stay)."""
        ks = self.keyspace
        if ks.blocked_keys:
            # scanDatabaseForDeletedKeys both ways: a client blocked on a key that disappears or
            # changes type is told, so a blocked XREADGROUP answers -NOGROUP or -WRONGTYPE
            pair = {self.index: (self, other), other.index: (other, self)}
            for index, key in list(ks.blocked_keys):
                if index in pair:
                    emptied, replaced_with = pair[index]
                    before, after = emptied.data.get(key), replaced_with.data.get(key)
                    if (before is None) != (after is None) or (
                            before is not None and type_name(before) != type_name(after)):
                        ks.signal_ready(emptied, key)
        for name in ("data", "expires", "_expire_order", "avg_ttl"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs)
            setattr(other, name, mine)
        for db in (self, other):
            if db._expire_order is not None:
                db._expire_order.source = db.expires

    # -- iteration -------------------------------------------------------------------

    def expire_order(self) -> ScanOrder:
        if self._expire_order is None:
            self._expire_order = ScanOrder(self.expires)
        return self._expire_order

    def random_key(self) -> bytes | None:
        """A random key that is not expired (expired ones met on the way are deleted)."""
        for _ in range(100):
            key = self.data.random_key()
            if key is None:
                return None
            if not self.expire_if_needed(key):
                return key
        return key  # every try hit an expired key; Redis also gives up and returns one

    def live_keys(self) -> Iterator[bytes]:
        """Keys that are not logically expired, without deleting (KEYS)."""
        now, expires = self.keyspace.now, self.expires
        if not expires:
            yield from list(self.data)
            return
        for key in list(self.data):
            when = expires.get(key)
            if when is None or now <= when:
                yield key


class _PyKeyspaceCounters:
    """Keyspace's first base without the C accelerators (pure mode): its counters are plain attributes."""

    __slots__ = ()


# The C base whose members hold the counters reads and writes add to (stat_hits, stat_misses,
# dirty): the C read path and lookups add to them without writing the keyspace's __dict__, which
# its plain-state memo keeps by version (see _fastpath.c's keyspace_memo).
_KeyspaceBase: Any = getattr(accel.fastpath, "KeyspaceBase", None) or _PyKeyspaceCounters


class Keyspace(_KeyspaceBase):
    """All databases plus the hooks and counters shared by them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.dbs = [Database(self, i) for i in range(config["databases"])]
        self.now = now_ms()  # the command time snapshot
        self.loading = False
        self.no_touch = False  # set per command for CLIENT NO-TOUCH clients
        self.active_expire_enabled = True
        self.expire_paused = False  # CLIENT PAUSE (either mode) holds expiry back
        # A replica: keys past their TTL read as missing but are deleted only by the
        # master's DEL (Redis's replicas never expire keys themselves).
        self.expiry_by_master = False
        # Whether active expiry passes over a database's (or, for a key, its slot's) expires
        # dict: Redis skips one under 1% full (dumpling.dictstats sets it)
        self.sparse_expires: Callable[[Database, bytes | None], bool] | None = None
        self.replica_read_only = True  # (replica-read-only, kept here by dumpling.replication)
        # Keys a writable replica's own clients gave a TTL: the replica expires those itself
        # (Redis's slaveKeysWithExpire).
        self.replica_keys_with_expire: dict[tuple[int, bytes], None] = {}
        # statistics (INFO stats)
        self.stat_hits = 0
        self.stat_misses = 0
        self.stat_expired = 0
        self.stat_expired_subkeys = 0  # hash fields deleted because their TTL passed
        self.stat_lazyfreed_objects = 0  # what Redis would have freed in its lazyfree thread
        self.stat_evicted = 0
        self.stat_expired_stale_perc = 0.0
        self.stat_expired_time_cap_reached = 0
        self.dirty = 0
        # WATCH: (db index, key) -> set of clients watching it
        self.watched: dict[tuple[int, bytes], set[Any]] = {}
        # blocking: (db index, key) -> list of waiting clients, in arrival order
        self.blocked_keys: dict[tuple[int, bytes], list[Any]] = {}
        self.ready_keys: dict[tuple[int, bytes], None] = {}
        # StoreHooks: called when a value they name is stored (the hash module tracks hashes with
        # field TTLs that arrive by RENAME/MOVE/RESTORE)
        self.store_hooks: list[StoreHook] = []
        # keyspace notifications: set by the pub/sub module
        self.notify_flags = ""
        self.notify_hook: Callable[[int, str, bytes, bytes], None] | None = None
        # called as hook(db, key, event) for every change (the propagation stream collects them;
        # the event tells a key deleted by expiry or eviction)
        self.change_hook: Callable[[Database, bytes, bytes | None], None] | None = None
        # client-side caching: the ``dumpling.tracking.Tracking`` while anything is tracked
        self.tracking: Any = None
        # (db index, key) of every write since memory last looked, kept while maxmemory is set
        # (dumpling.memory sizes those keys again, so the next eviction check sees them)
        self.written: set[tuple[int, bytes]] | None = None
        self.refresh_config()

    def refresh_config(self) -> None:
        cfg = self.config
        if (cfg["maxmemory"] > 0) != (self.written is not None):
            self.written = set() if cfg["maxmemory"] > 0 else None
        self.lfu = cfg["maxmemory-policy"].endswith("lfu")
        self.lfu_log_factor = cfg["lfu-log-factor"]
        self.lfu_decay_time = cfg["lfu-decay-time"]
        self.notify_flags = cfg["notify-keyspace-events"]

    def tick(self) -> None:
        """Start a new command time snapshot."""
        self.now = time.time_ns() // 1_000_000

    # -- change reporting ----------------------------------------------------------

    def changed(self, db: Database, key: bytes, event: bytes | None = None, cls: str = "g", dirty: int = 1) -> None:
        """A write modified ``key``: invalidate WATCHes and client caches, count it, notify.
        ``dirty`` is what the write adds to the changes since the last save, as Redis counts
        them (e.g. one per element pushed; 0 for the ``del`` of a collection a write emptied)."""
        self.dirty += dirty
        if self.written is not None:
            self.written.add((db.index, key))
        if self.watched:
            self.touch_watched(db.index, key)
        if self.change_hook is not None:
            self.change_hook(db, key, event)
        if self.tracking is not None:
            self.tracking.invalidate(key, cls)
        if event is not None and self.notify_flags:
            self.notify(db.index, cls, event, key)

    def notify(self, db_index: int, cls: str, event: bytes, key: bytes) -> None:
        flags = self.notify_flags
        if self.notify_hook is not None and (cls in flags or (cls == "n" and "n" in flags)):
            self.notify_hook(db_index, cls, event, key)

    def is_expired(self, db: Database, key: bytes) -> bool:
        """Logically expired but not yet deleted (Redis's ``keyIsExpired``; no side effects)."""
        when = db.expires.get(key)
        return when is not None and not self.loading and self.now > when

    def touch_watched(self, db_index: int, key: bytes) -> None:
        """``key`` changed: clients WATCHing it will see EXEC fail.

        ``client.watched`` maps (db, key) to whether the key was already logically
        expired when WATCHed; deleting such a key is no logical change (Redis's
        ``touchWatchedKey``)."""
        clients = self.watched.get((db_index, key))
        if clients:
            item = (db_index, key)
            absent = key not in self.dbs[db_index].data
            for client in clients:
                if absent and client.watched.get(item):
                    client.watched[item] = False
                    continue
                client.watch_dirty = True

    def touch_watched_in_db(self, db_index: int, *holders: Database) -> None:
        """FLUSHDB/FLUSHALL/SWAPDB, called before the change: ``dbs[db_index]`` is
        emptied, and for SWAPDB replaced by the other holder (Redis's
        ``touchAllWatchedKeysInDb``, including its rules for already expired keys)."""
        emptied = self.dbs[db_index]
        replaced = next((db for db in holders if db is not emptied), None)
        for item, clients in self.watched.items():
            index, key = item
            if index != db_index:
                continue
            in_emptied = key in emptied.data
            in_replaced = replaced is not None and key in replaced.data
            if not (in_emptied or in_replaced):
                continue
            for client in clients:
                if client.watched.get(item):
                    if not in_replaced:
                        client.watched[item] = False  # the expired key is simply gone
                        continue
                    if replaced is not None and self.is_expired(replaced, key):
                        continue  # still an expired key
                elif not in_emptied and replaced is not None and self.is_expired(replaced, key):
                    client.watched[item] = True  # a missing key became an expired one
                    continue
                client.watch_dirty = True

    def freed_lazily(self, value: Any) -> None:
        """A value left the keyspace by UNLINK or another asynchronous delete: Redis hands it to
        its lazyfree thread (and counts it) when freeing it is more than a few allocations.
        dumpling frees at once, so nothing is ever pending."""
        if free_effort(value, self.config["list-max-listpack-size"]) > LAZYFREE_THRESHOLD:
            self.stat_lazyfreed_objects += 1

    def signal_ready(self, db: Database, key: bytes) -> None:
        if (db.index, key) in self.blocked_keys:
            self.ready_keys[(db.index, key)] = None

    def expire_key(self, db: Database, key: bytes) -> None:
        db.delete(key)
        self.stat_expired += 1
        self.changed(db, key, b"expired", "x", dirty=0)  # (Redis counts no change for an expiry)

    # -- incremental rehashing ----------------------------------------------------------

    def rehash_cron(self, budget_us: int = 1000) -> None:
        """``databasesCron``'s share of the key tables: a table under 1/8 full starts shrinking,
        and a rehash left half done by a resize moves on for up to ``budget_us`` (one database
        a tick that uses it all, as ``incrementallyRehash``)."""
        for db in self.dbs:
            if db.data.rehash_for(budget_us):
                break

    # -- active expiry ------------------------------------------------------------------

    def active_expire_cycle(self, time_limit_s: float, keys_per_loop: int = 20, stale_perc: int = 10) -> bool:
        """Sample volatile keys and delete expired ones; True if the time limit was hit."""
        if not self.active_expire_enabled or self.expire_paused or self.expiry_by_master:
            return False
        start = time.perf_counter()
        iterations = 0
        sparse = self.sparse_expires
        for db in self.dbs:
            if not db.expires:
                continue
            if sparse is not None and db.slot_index is None and sparse(db, None):
                continue  # (isExpiryDictValidForSamplingCb: resized before it is sampled)
            order = db.expire_order()
            cursor = order.cycle_cursor
            while True:
                self.tick()
                now = self.now
                cursor, sample = order.scan(cursor, min(keys_per_loop, len(db.expires)))
                expired = 0
                ttl_sum = ttl_count = 0
                for key in sample:
                    when = db.expires.get(key)
                    if when is None or (sparse is not None and db.slot_index is not None and sparse(db, key)):
                        continue
                    if now > when:
                        self.expire_key(db, key)
                        expired += 1
                    else:
                        ttl_sum += when - now
                        ttl_count += 1
                if ttl_count:
                    avg = ttl_sum // ttl_count
                    db.avg_ttl = avg if db.avg_ttl == 0 else (db.avg_ttl // 50) * 49 + avg // 50
                if sample:
                    ratio = expired / len(sample)
                    self.stat_expired_stale_perc = ratio * 0.05 + self.stat_expired_stale_perc * 0.95
                iterations += 1
                if iterations % 16 == 0 and time.perf_counter() - start > time_limit_s:
                    order.cycle_cursor = cursor
                    self.stat_expired_time_cap_reached += 1
                    return True
                if not sample or expired * 100 <= len(sample) * stale_perc or not db.expires:
                    break
            order.cycle_cursor = cursor
        return False


# Database.lookup_read/lookup_write/add and Keyspace.changed in C (dumpling._fastpath), for every
# handler's lookups and new keys: the methods above are the reference, which the C ones call for
# anything but the common case (a passed TTL, LFU, NO-TOUCH, notifications, WATCH, hooks, tracking,
# maxmemory, a SCAN order or slot index to keep, blocked clients, store hooks).
REFERENCE = {"lookup_read": Database.lookup_read, "lookup_write": Database.lookup_write, "add": Database.add,
             "changed": Keyspace.changed}
NATIVE_LOOKUPS = accel.fastpath is not None and hasattr(accel.fastpath, "install_keyspace") and \
    accel.fastpath.install_keyspace(Database, Keyspace, collector.untrack, collector.hide)
