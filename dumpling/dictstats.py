"""The hash tables Redis 7.4 would hold for each database (DEBUG HTSTATS, DEBUG
DICT-RESIZING, INFO/MEMORY STATS dict overheads).

dumpling keeps keys in Python dicts, which say nothing of Redis's tables.  This module
models them from what Redis's ``dict.c``/``kvstore.c`` do with a key count: two tables
of power-of-two sizes, the expand rule (``used >= size``, or ``>= 4 * size`` while a fork
child makes resizing "avoided"), the shrink rule (``used * 8 <= size``, or ``* 32``),
incremental rehashing one bucket per access and in the cron (not while a child runs),
``dict_resizing`` (DEBUG DICT-RESIZING 0 blocks both), one dict per database or, in
cluster mode, one per hash slot freed when empty.

The model follows counts, not individual accesses: ``TableModel.sync`` replays the change
from the count it saw last as that many adds (or deletes), each with its rehash step, so
table sizes are Redis's for any sequence that only grows or only shrinks between two
observations (the cron observes ten times a second, and every fork and stats command
does).  While a table rehashes, which elements are in which table is estimated as if the
buckets held them evenly; ``full`` statistics place the actual keys with Python's
(seeded SipHash) ``hash`` in tables of the modelled sizes.

Pure: counts in, sizes and texts out; the server glue is ``DictStats``.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Iterable
from typing import Any

ENABLE, AVOID, FORBID = 0, 1, 2  # dict_can_resize
INITIAL_EXP = 2  # DICT_HT_INITIAL_EXP: a table of 4 buckets
FORCE_RATIO = 4  # dict_force_resize_ratio
MIN_FILL = 8  # HASHTABLE_MIN_FILL
PTR = 8  # sizeof(dictEntry *)
ENTRY = 24  # dictEntryMemUsage()
DICT = 56 + 8  # sizeof(dict) + kvstoreDictMetadata
KVSTORE = 216  # sizeof(kvstore)
LIST_NODE = 24  # sizeof(listNode): a rehashing dict's place in the kvstore's list
ROBJ = 16  # sizeof(robj): counted per key in overhead.hashtable.main
CRON_DBS_PER_CALL = 16
CRON_DICTS_PER_DB = 16
CRON_REHASH_BUCKETS = 20_000  # about what dictRehashMicroseconds moves in its 1 ms
STATS_VECTLEN = 50  # DICT_STATS_VECTLEN
def _never_held_keys(source: Any) -> bool:
    """Whether a database's table of keys (a KeyTable: it has no buckets until its first key)
    or expires dict (a dict keeps its table after deletes) never held a key."""
    if isinstance(source, dict):  # (the pure PyKeyTable too: a dict subclass, with a slot)
        return dict.__sizeof__(source) <= dict.__sizeof__(type(source)())
    return source.stats()[0] == 0


def next_exp(size: int) -> int:
    """``_dictNextExp``: the exponent of the smallest power of two >= size (at least 4)."""
    if size <= 1 << INITIAL_EXP:
        return INITIAL_EXP
    return (size - 1).bit_length()


class TableModel:
    """One Redis dict: table 0 (and table 1 while rehashing) as exponents and counts."""

    __slots__ = ("exp0", "used0", "exp1", "used1", "rehashidx")

    def __init__(self) -> None:
        self.exp0 = -1  # -1: no table yet
        self.used0 = 0
        self.exp1 = -1
        self.used1 = 0
        self.rehashidx = -1

    @property
    def size0(self) -> int:
        return 0 if self.exp0 < 0 else 1 << self.exp0

    @property
    def size1(self) -> int:
        return 0 if self.exp1 < 0 else 1 << self.exp1

    @property
    def used(self) -> int:
        return self.used0 + self.used1

    def rehashing(self) -> bool:
        return self.rehashidx != -1

    def state(self) -> tuple[int, int, int, int, int]:
        return self.exp0, self.used0, self.exp1, self.used1, self.rehashidx

    def buckets(self) -> int:
        return self.size0 + self.size1

    # -- dict.c's rules ---------------------------------------------------------------------------

    def _resize(self, size: int) -> None:
        """``_dictResize``: a new table; rehashing unless table 0 is empty."""
        exp = next_exp(size)
        if exp == self.exp0:
            return
        if self.exp0 < 0 or self.used0 == 0:
            self.exp0, self.used0 = exp, 0
            return
        self.exp1, self.used1, self.rehashidx = exp, 0, 0

    def expand_if_needed(self, policy: int, allowed: bool) -> bool:
        """``dictExpandIfNeeded``; True when nothing else is to be done (DICT_OK)."""
        if self.rehashing():
            return True
        if self.exp0 < 0:
            self._resize(1 << INITIAL_EXP)
            return True
        size = self.size0
        if (policy == ENABLE and self.used0 >= size) or (policy != FORBID and self.used0 >= FORCE_RATIO * size):
            if allowed:
                self._resize(self.used0 + 1)
            return True
        return False

    def shrink_if_needed(self, policy: int, allowed: bool) -> bool:
        """``dictShrinkIfNeeded``; True when nothing else is to be done (DICT_OK)."""
        if self.rehashing() or self.size0 <= 1 << INITIAL_EXP:
            return True
        size = self.size0
        if (policy == ENABLE and self.used0 * MIN_FILL <= size) or (
                policy != FORBID and self.used0 * MIN_FILL * FORCE_RATIO <= size):
            if allowed:
                self._resize(self.used0)
            return True
        return False

    def may_rehash(self, policy: int) -> bool:
        """``dictRehash``'s guard: never in a child; with a child running, only past the ratios."""
        if policy == FORBID or not self.rehashing():
            return False
        if policy == AVOID:
            s0, s1 = self.size0, self.size1
            if (s1 > s0 and s1 < FORCE_RATIO * s0) or (s1 < s0 and s0 < MIN_FILL * FORCE_RATIO * s1):
                return False
        return True

    def rehash(self, steps: int, policy: int) -> None:
        """``dictRehash(d, steps)``: each step moves one non-empty bucket of table 0 (empty ones
        are passed over).  The unmoved buckets are taken to hold their elements as a hash
        spreads them: a share ``1 - e**-load`` of them is non-empty."""
        if steps <= 0 or not self.may_rehash(policy):
            return
        remaining = self.size0 - self.rehashidx
        load = self.used0 / remaining
        occupied = 1.0 - math.exp(-load) if load > 0 else 1.0
        buckets = min(remaining, math.ceil(steps / occupied))
        moved = min(self.used0, -(-self.used0 * buckets // remaining))
        self.used0 -= moved
        self.used1 += moved
        self.rehashidx += buckets
        if self.used0 == 0 or self.rehashidx >= self.size0:
            self.exp0, self.used0 = self.exp1, self.used0 + self.used1
            self.exp1, self.used1, self.rehashidx = -1, 0, -1

    def add(self, count: int, policy: int, allowed: bool) -> None:
        """``count`` insertions (``dictFindPositionForInsert``: a rehash step, the expand check,
        then the element in the newest table), replayed a stretch at a time."""
        while count > 0:
            if self.rehashing():
                if not self.may_rehash(policy):
                    self.used1 += count  # (no step can move anything: all of them into table 1)
                    return
                remaining = self.size0 - self.rehashidx
                if remaining > 1 and count > 1:
                    # insertions whose step cannot finish the rehash: no expand check matters
                    stretch = min(count - 1, remaining - 1)
                    self.rehash(stretch, policy)
                    if self.rehashing():
                        self.used1 += stretch
                    else:
                        self.used0 += stretch
                    count -= stretch
                    continue
                self.rehash(1, policy)  # (may end the rehash: this insertion then checks expansion)
                if self.rehashing():
                    self.used1 += 1
                    count -= 1
                    continue
            self.expand_if_needed(policy, allowed)
            if self.rehashing():
                self.used1 += 1
                count -= 1
                continue
            if allowed and policy != FORBID:
                limit = self.size0 * (1 if policy == ENABLE else FORCE_RATIO)
                stretch = max(1, min(count, limit - self.used0))  # until the next check expands
            else:
                stretch = count
            self.used0 += stretch
            count -= stretch

    def delete(self, count: int, policy: int, allowed: bool) -> None:
        """``count`` deletions (a rehash step, the element out, the shrink check)."""
        count = min(count, self.used)
        while count > 0:
            if self.rehashing():
                if self.may_rehash(policy):
                    stretch = min(count, self.size0 - self.rehashidx)
                    self.rehash(stretch, policy)
                else:
                    stretch = count
                if self.rehashing():  # out of both tables, in proportion
                    first = min(self.used0, round(stretch * self.used0 / self.used))
                    second = min(self.used1, stretch - first)
                    first = stretch - second
                    self.used0 -= first
                    self.used1 -= second
                else:
                    self.used0 -= stretch
                count -= stretch
                if not self.rehashing():
                    self.shrink_if_needed(policy, allowed)
                continue
            if allowed and policy != FORBID and self.size0 > 1 << INITIAL_EXP:
                floor = self.size0 // (MIN_FILL if policy == ENABLE else MIN_FILL * FORCE_RATIO)
                stretch = max(1, min(count, self.used0 - floor))  # until the shrink check fires
            else:
                stretch = count
            self.used0 -= stretch
            count -= stretch
            self.shrink_if_needed(policy, allowed)

    def sync(self, count: int, policy: int, allowed: bool) -> None:
        """Replay the change from the last observed count to ``count``."""
        if count > self.used:
            self.add(count - self.used, policy, allowed)
        elif count < self.used:
            self.delete(self.used - count, policy, allowed)


# ----------------------------------------------------------------------------- texts


def chain_lengths(hashes: Iterable[int], exp: int) -> list[int]:
    """Per bucket of a table of 2**exp buckets, how many of ``hashes`` fall in it."""
    mask = (1 << exp) - 1
    buckets = [0] * (1 << exp)
    for h in hashes:
        buckets[h & mask] += 1
    return buckets


def stats_text(index: int, size: int, used: int, chains: list[int] | None = None) -> str:
    """``dictGetStatsMsg`` for one table (``chains``: its buckets' lengths, for ``full``)."""
    name = "main hash table" if index == 0 else "rehashing target"
    if used == 0:
        return f"Hash table {index} stats ({name}):\nNo stats available for empty dictionaries\n"
    text = f"Hash table {index} stats ({name}):\n table size: {size}\n number of elements: {used}\n"
    if chains is None:
        return text
    vector = [0] * STATS_VECTLEN
    slots = total = longest = 0
    for length in chains:
        vector[min(length, STATS_VECTLEN - 1)] += 1
        if length:
            slots += 1
            total += length
            longest = max(longest, length)
    text += (f" different slots: {slots}\n max chain length: {longest}\n"
             f" avg chain length (counted): {total / slots if slots else 0:.2f}\n"
             f" avg chain length (computed): {used / slots if slots else 0:.2f}\n"
             " Chain length distribution:\n")
    for length, buckets in enumerate(vector[:-1]):
        if buckets:
            text += f"   {length}: {buckets} ({buckets / size * 100:.2f}%)\n"
    return text


def _combined(tables: list[tuple[int, int, list[int] | None]], index: int) -> str:
    """``dictCombineStats`` over several dicts' table ``index`` (a cluster-mode kvstore)."""
    size = sum(t[0] for t in tables)
    used = sum(t[1] for t in tables)
    chains: list[int] | None = None
    if tables and tables[0][2] is not None:
        chains = [length for t in tables for length in (t[2] or [])]
    return stats_text(index, size, used, chains)


def _split_hashes(model: TableModel, hashes: list[int]) -> tuple[list[int], list[int]]:
    """Which keys a rehashing table still holds in table 0: those whose table-0 bucket the
    rehash has not reached."""
    if not model.rehashing():
        return hashes, []
    mask = model.size0 - 1
    first = [h for h in hashes if h & mask >= model.rehashidx]
    return first, [h for h in hashes if h & mask < model.rehashidx]


def table_stats(models: list[tuple[TableModel, list[bytes] | None]]) -> str:
    """``kvstoreGetStats`` for dicts (``dictGetStats`` for one); with keys given, ``full``."""
    main: list[tuple[int, int, list[int] | None]] = []
    rehash: list[tuple[int, int, list[int] | None]] = []
    for model, keys in models:
        if keys is None:
            main.append((model.size0, model.used0, None))
            if model.rehashing():
                rehash.append((model.size1, model.used1, None))
            continue
        first, second = _split_hashes(model, [hash(key) for key in keys])
        main.append((model.size0, len(first), chain_lengths(first, model.exp0)))
        if model.rehashing():
            rehash.append((model.size1, len(second), chain_lengths(second, model.exp1)))
    text = _combined(main, 0) if main else ""
    return text + (_combined(rehash, 1) if rehash else "")


# ----------------------------------------------------------------------------- the server's tables


class KvStore:
    """One database's keys or expires: one dict, or one per hash slot in cluster mode."""

    __slots__ = ("dicts", "rehashing", "source_id", "resize_cursor", "cluster", "settled")

    def __init__(self, cluster: bool) -> None:
        self.dicts: dict[int, TableModel] = {}
        self.rehashing: set[int] = set()  # the dicts rehashing (kvstore's rehashing list)
        self.source_id = 0  # id() of the Python dict it models; another one means a flush or swap
        self.resize_cursor = 0
        self.cluster = cluster
        # (count, resizing, the model's state) with which the cron's resize step last changed
        # nothing in the one dict of a database outside cluster mode: while they hold, it would
        # change nothing again, and is skipped
        self.settled: tuple[int, bool, tuple[int, int, int, int, int] | None] | None = None

    def memory(self, with_objects: bool) -> int:
        """``kvstoreMemUsage`` (plus a robj per key for the main dict's overhead)."""
        keys = sum(d.used for d in self.dicts.values())
        mem = KVSTORE + keys * ENTRY + sum(d.buckets() for d in self.dicts.values()) * PTR
        mem += len(self.dicts) * DICT + sum(d.rehashing() for d in self.dicts.values()) * LIST_NODE
        if self.cluster:
            mem += PTR * (16384 + 1)  # dict_size_index
        return mem + (keys * ROBJ if with_objects else 0)

    def note(self, index: int, model: TableModel) -> None:
        """Keep ``rehashing`` in step with dict ``index`` after a change."""
        if model.rehashing():
            self.rehashing.add(index)
        else:
            self.rehashing.discard(index)


class DictStats:
    """``server.dictstats``: the models of every database's two kvstores, kept in step with the
    key counts by the cron, before every fork, and before any statistics are read."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.resizing = True  # server.dict_resizing (DEBUG DICT-RESIZING)
        self.stores: dict[tuple[int, str], KvStore] = {}
        self._resize_db = 0
        self._rehash_db = 0
        self._sparse: dict[tuple[int, int], bool] = {}  # this tick's answers of sparse_expires
        # The models' changes outside the cron's own steps (counts synced, stores made), and what
        # the cron saw when its last pass changed nothing (``_quiet_since``): no pass is needed
        # while nothing moved since.
        self.changes = 0
        self._quiet: tuple[Any, ...] | None = None
        server.keyspace.sparse_expires = self.sparse_expires
        ref = weakref.ref(self)

        def before_fork() -> None:
            me = ref()
            if me is not None:
                me.sync_all()

        os.register_at_fork(before=before_fork)

    # -- state ------------------------------------------------------------------------------------

    def policy(self) -> int:
        """``updateDictResizePolicy`` in the parent: AVOID while a fork child runs."""
        server = self.server
        snapshots = getattr(server, "snapshots", None)
        aof = getattr(server, "aof", None)
        busy = (snapshots is not None and snapshots.child_pid != -1) or (aof is not None and aof.child_pid != -1)
        return AVOID if busy else ENABLE

    @staticmethod
    def _count(db: Any, which: str, index: int) -> int:
        """How many keys (or expires) the dict ``index`` of ``db`` holds."""
        source = db.data if which == "keys" else db.expires
        if db.slot_index is None:
            return len(source)
        bucket = db.slot_index.slots[index]
        if not bucket:
            return 0
        return len(bucket) if which == "keys" else sum(key in source for key in bucket)

    def store(self, db: Any, which: str) -> KvStore:
        """The kvstore of ``db`` (``which``: "keys" or "expires"), a new one when the Python
        dict it models was replaced (FLUSHALL/FLUSHDB, SWAPDB, a load)."""
        source_id = id(db.data if which == "keys" else db.expires)
        cluster = db.slot_index is not None
        key = (db.index, which)
        store = self.stores.get(key)
        if store is None or store.source_id != source_id or store.cluster != cluster:
            store = self.stores[key] = KvStore(cluster)
            store.source_id = source_id
            self.changes += 1
        return store

    def sync_dict(self, db: Any, store: KvStore, which: str, index: int) -> TableModel | None:
        """Bring dict ``index`` up to its key count (creating it, or freeing an emptied one in
        cluster mode, as the kvstore does)."""
        count = self._count(db, which, index)
        model = store.dicts.get(index)
        if model is None:
            if not count:
                source = db.data if which == "keys" else db.expires
                if store.cluster or _never_held_keys(source):
                    return None
                # Emptied since the last look: a Python dict keeps its table after deletes,
                # so it did hold keys, and Redis's dict was made (and shrank back to 4 buckets).
                model = store.dicts[index] = TableModel()
                model.add(1, ENABLE, True)
            else:
                model = store.dicts[index] = TableModel()  # createDictIfNeeded
            self.changes += 1
        if count != model.used:
            self.changes += 1
            model.sync(count, self.policy(), self.resizing)
        if not count and store.cluster:
            del store.dicts[index]  # KVSTORE_FREE_EMPTY_DICTS
            store.rehashing.discard(index)
            return None
        store.note(index, model)
        return model

    def synced(self, db: Any, which: str) -> KvStore:
        """The kvstore with every dict brought up to date."""
        store = self.store(db, which)
        if store.cluster:
            indexes = set(db.slot_index.occupied()) | set(store.dicts)
        else:
            indexes = {0}
        for index in sorted(indexes):
            self.sync_dict(db, store, which, index)
        return store

    def sync_all(self) -> None:
        """Before a fork: the tables as they were when the child started (the expires of a
        cluster-mode database, whose per-slot counts cost a pass over its keys, catch up later)."""
        for db in self.server.keyspace.dbs:
            self.synced(db, "keys")
            if db.slot_index is None:
                self.synced(db, "expires")

    def set_resizing(self, allowed: bool) -> None:
        """DEBUG DICT-RESIZING: every table first catches up with its count under the setting in
        force while those keys came and went (a slot's expires grown by its adds stays that big
        when its keys are deleted with resizing off, as in Redis)."""
        for db in self.server.keyspace.dbs:
            self.synced(db, "keys")
            self.synced(db, "expires")
        self.resizing = allowed

    # -- the cron ---------------------------------------------------------------------------------

    def sparse_expires(self, db: Any, key: bytes | None) -> bool:
        """``isExpiryDictValidForSamplingCb`` failing: the expires dict of ``db`` (of ``key``'s
        slot in cluster mode) is under 1% full, so active expiry leaves it for now (the
        cron shrinks it first).  Answers are kept for the rest of the cron tick."""
        index = 0
        if key is not None:
            from dumpling.cluster.slots import key_slot

            index = key_slot(key)
        item = (db.index, index)
        answer = self._sparse.get(item)
        if answer is None:
            model = self.sync_dict(db, self.store(db, "expires"), "expires", index)
            buckets = model.buckets() if model is not None else 0
            answer = self._sparse[item] = buckets > 1 << INITIAL_EXP and model is not None and \
                model.used * 100 // buckets < 1
        return answer

    def cron(self) -> None:
        """``databasesCron``'s part: try resizing (16 dicts per kvstore from a cursor), then
        rehash incrementally, for 16 databases a call; nothing while a child runs."""
        if self._sparse:
            self._sparse.clear()
        if self.policy() != ENABLE:
            return
        dbs = self.server.keyspace.dbs
        per_call = min(CRON_DBS_PER_CALL, len(dbs))
        allowed = self.resizing
        quiet = self._quiet_since(dbs, allowed)
        if quiet is not None and quiet == self._quiet:
            return  # (the same counts and models as a pass that changed nothing: nor would this one)
        self._quiet = None
        for _ in range(per_call):
            db = dbs[self._resize_db % len(dbs)]
            self._resize_db += 1
            for which in ("keys", "expires"):
                store = self.store(db, which)
                if not store.cluster:
                    self._resize_one(db, store, which, allowed)
                    continue
                slots = 16384
                for _ in range(min(CRON_DICTS_PER_DB, slots)):
                    model = self.sync_dict(db, store, which, store.resize_cursor)
                    if model is not None:
                        if not model.shrink_if_needed(ENABLE, allowed):
                            model.expand_if_needed(ENABLE, allowed)
                        store.note(store.resize_cursor, model)
                    store.resize_cursor = (store.resize_cursor + 1) % slots
        if not self.server.config["activerehashing"]:
            return
        if not any(store.rehashing for store in self.stores.values()):
            if quiet is not None and all(store.settled is not None for store in self.stores.values()):
                self._quiet = self._quiet_since(dbs, allowed)
            return  # (the rehash cursor would go round all the databases, back where it is)
        budget = CRON_REHASH_BUCKETS
        for _ in range(per_call):
            db = dbs[self._rehash_db % len(dbs)]
            for which in ("keys", "expires"):
                store = self.store(db, which)
                for index in sorted(store.rehashing):
                    model = self.sync_dict(db, store, which, index)
                    if model is not None and model.rehashing() and budget > 0:
                        step = min(budget, model.size0 - model.rehashidx)
                        model.rehash(step, ENABLE)
                        budget -= step
                        store.note(index, model)
            if budget <= 0:
                return
            self._rehash_db += 1

    def _quiet_since(self, dbs: list[Any], allowed: bool) -> tuple[Any, ...] | None:
        """What a pass over every database depends on, when one pass covers them all outside
        cluster mode: the dicts' identities and counts, the models' changes, the setting."""
        if len(dbs) > CRON_DBS_PER_CALL:
            return None
        shape = []
        for db in dbs:
            if db.slot_index is not None:
                return None
            data, expires = db.data, db.expires
            shape.append((id(data), len(data), id(expires), len(expires)))
        return self.changes, allowed, shape

    def _resize_one(self, db: Any, store: KvStore, which: str, allowed: bool) -> None:
        """The cron's resize step for the one dict of a database outside cluster mode: nothing
        when it changed nothing last time under the same count and settings."""
        count = len(db.data if which == "keys" else db.expires)
        settled = store.settled
        if settled is not None and settled[0] == count and settled[1] == allowed:
            model = store.dicts.get(0)
            if settled[2] == (None if model is None else model.state()):
                return
        store.settled = None
        model = self.sync_dict(db, store, which, 0)
        if model is None:
            store.settled = (count, allowed, None)  # (an empty dict that never held a key)
            return
        before = model.state()
        if not model.shrink_if_needed(ENABLE, allowed):
            model.expand_if_needed(ENABLE, allowed)
        store.note(0, model)
        if model.state() == before and not model.rehashing():
            store.settled = (count, allowed, before)

    # -- what the commands read -------------------------------------------------------------------

    def htstats(self, db: Any, full: bool) -> str:
        """DEBUG HTSTATS <dbid> [full]."""
        out = []
        for which, title in (("keys", "[Dictionary HT]\n"), ("expires", "[Expires HT]\n")):
            store = self.synced(db, which)
            models: list[tuple[TableModel, list[bytes] | None]] = []
            for index, model in sorted(store.dicts.items()):
                keys = None
                if full:
                    source = db.data if which == "keys" else db.expires
                    if store.cluster:
                        from dumpling.cluster.slots import key_slot

                        keys = [k for k in (db.slot_index.all_keys(index) if which == "keys" else source)
                                if (which == "keys" or key_slot(k) == index)]
                    else:
                        keys = list(source)
                models.append((model, keys))
            out.append(title + table_stats(models))
        return "".join(out)

    def overheads(self) -> tuple[list[tuple[int, int, int]], int, int, int]:
        """MEMORY STATS / INFO: per allocated database (index, main, expires overhead), and the
        tables' lookup-table bytes, the bytes of tables being rehashed, the rehashing dicts."""
        per_db: list[tuple[int, int, int]] = []
        lut = rehashing = count = 0
        for db in self.server.keyspace.dbs:
            keys, expires = self.synced(db, "keys"), self.synced(db, "expires")
            if not keys.dicts:
                continue
            per_db.append((db.index, keys.memory(True), expires.memory(False)))
            for store in (keys, expires):
                for model in store.dicts.values():
                    lut += model.buckets() * PTR
                    if model.rehashing():
                        rehashing += model.size0 * PTR
                        count += 1
        return per_db, lut, rehashing, count


def value_table(length: int) -> TableModel:
    """DEBUG HTSTATS-KEY: the table of a hashtable-encoded value of ``length`` elements, as a
    dict grown from empty by insertions would be (dumpling keeps no history per value)."""
    model = TableModel()
    model.add(length, ENABLE, True)
    model.rehash(model.size0, ENABLE)
    return model
