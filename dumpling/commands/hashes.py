"""Hash commands, including hash-field expiration (Redis 7.4).

Handlers follow ``t_hash.c``'s argument-checking order and encoding rules (through
``HashValue``, fed by ``hash-max-listpack-*``).  Field TTLs live in the value
(``HashValue.field_expires``, what RDB types 24/25 carry).  A field past its TTL is
*logically* gone but stays stored until one of these deletes it, as in Redis 7.4:

* lazily, one field at a time: a command that looks a field up by name (HGET, HMGET,
  HEXISTS, HSTRLEN, HINCRBY*, HSETNX, SORT ... BY/GET ``->field``) deletes that field
  if it expired (``field_value``: ``hexpired`` event, ``del`` when the hash is left
  empty); HRANDFIELD deletes all of a hash's expired fields first;
* actively: ``FieldExpiry`` keeps, per database, the hashes that have field TTLs
  ordered by their earliest expiry, and a cron hook deletes due fields a bounded
  number at a time (a hash left empty is deleted).

Until then HLEN counts such fields, HDEL deletes them (reply 1), HEXPIRE sets them a new
TTL, and HGETALL/HKEYS/HVALS/HSCAN skip them; HTTL and HPERSIST answer -2 for them.
Every deleted expired field counts in INFO's ``expired_subkeys``.

Hashes with field TTLs that arrive by RENAME, MOVE, COPY or RESTORE are picked up
by a keyspace store hook.  ``hashes_with_field_ttls(db)`` feeds INFO keyspace's
``subexpiry``.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

from dumpling.commands.common import LONG_MAX, check_type, glob_match, to_int, to_range_long
from dumpling.commands.lists import attach_native_handlers, key_spec
from dumpling.commands.registry import command
from dumpling.commands.sets import parse_scan_cursor, parse_scan_options, scan_reply
from dumpling.datatypes.hashes import (
    EXPIRE_SET,
    FIELD_DELETED,
    HFE_MAX_ABS_TIME_MS,
    NO_FIELD,
    PERSIST_OK,
    HashLimits,
    HashValue,
)
from dumpling.errors import SYNTAX, CommandError
from dumpling.keyspace import StoreHook
from dumpling.keytable import REPLY_ITEMS, REPLY_KEYS, REPLY_VALUES
from dumpling.numbers import NotFinite, format_long_double, long_double_sum, parse_long_double
from dumpling.persistence.propagation import also_propagate, propagate_as
from dumpling.protocol import OK, Map, Raw
from dumpling.replybudget import bulk_size, repeat_within

HASH = {"group": "hash"}
_rng = random.Random()
ACTIVE_EXPIRE_FIELDS_PER_CYCLE = 1000  # fields deleted per cron tick, over all databases
FIELDS_MISSING = "Mandatory argument FIELDS is missing or not at the right position"
NUMFIELDS_MISMATCH = "The `numfields` parameter must match the number of arguments"
NUMFIELDS_POSITIVE = "Number of fields must be a positive integer"


# ----------------------------------------------------------------------------- active expiry index


class _DbFieldTTLs:
    """The hashes of one database's ``data`` dict that have field TTLs."""

    __slots__ = ("hashes", "scheduled", "heap")

    def __init__(self) -> None:
        self.hashes: dict[bytes, HashValue] = {}
        self.scheduled: dict[bytes, int] = {}  # key -> earliest expiry the heap holds for it
        self.heap: list[tuple[int, bytes]] = []

    def schedule(self, key: bytes, value: HashValue) -> None:
        when = value.min_expire()
        if when is None:
            return
        self.hashes[key] = value
        current = self.scheduled.get(key)
        if current is not None and current <= when:
            return  # an earlier check is already due; it re-reads the value then
        self.scheduled[key] = when
        heapq.heappush(self.heap, (when, key))
        if len(self.heap) > 2 * len(self.scheduled) + 64:
            self.heap = [(w, k) for k, w in self.scheduled.items()]
            heapq.heapify(self.heap)

    def forget(self, key: bytes) -> None:
        self.hashes.pop(key, None)
        self.scheduled.pop(key, None)


class FieldExpiry:
    """Per-database indexes, keyed by the identity of the database's ``data`` dict so
    they follow SWAPDB; indexes of flushed dicts are dropped by the cron hook."""

    def __init__(self, keyspace: Any, server: Any = None) -> None:
        self.keyspace = keyspace
        self.server = server  # (the propagation stream gets the HDELs of expired fields)
        self.by_data: dict[int, _DbFieldTTLs] = {}

    def index(self, db: Any) -> _DbFieldTTLs:
        idx = self.by_data.get(id(db.data))
        if idx is None:
            idx = self.by_data[id(db.data)] = _DbFieldTTLs()
        return idx

    def track(self, db: Any, key: bytes, value: HashValue) -> None:
        if value.field_expires:
            self.index(db).schedule(key, value)

    def stored(self, db: Any, key: bytes, value: HashValue) -> None:
        """Keyspace store hook: a hash with field TTLs just landed at ``key``."""
        self.index(db).schedule(key, value)

    def count(self, db: Any) -> int:
        idx = self.by_data.get(id(db.data))
        if idx is None:
            return 0
        data = db.data
        return sum(1 for key, value in idx.hashes.items() if data.get(key) is value and value.field_expires)

    def cron(self) -> None:
        """Delete due fields, at most ``ACTIVE_EXPIRE_FIELDS_PER_CYCLE`` per call."""
        ks = self.keyspace
        if not ks.active_expire_enabled or ks.loading or ks.expiry_by_master:  # (a replica: the master expires)
            return
        ks.tick()
        if not self.by_data:
            return  # (no hash has had fields with a TTL in these databases)
        live = {id(db.data) for db in ks.dbs}
        for ident in [i for i in self.by_data if i not in live]:
            del self.by_data[ident]
        budget = ACTIVE_EXPIRE_FIELDS_PER_CYCLE
        for db in ks.dbs:
            idx = self.by_data.get(id(db.data))
            if idx is None or not idx.heap:
                continue
            budget = self._expire_db(db, idx, budget)
            if budget <= 0:
                return

    def _expire_db(self, db: Any, idx: _DbFieldTTLs, budget: int) -> int:
        now = self.keyspace.now
        heap = idx.heap
        while heap and heap[0][0] < now and budget > 0:
            when, key = heapq.heappop(heap)
            if idx.scheduled.get(key) != when:
                continue
            value = idx.hashes.get(key)
            if value is None or db.data.get(key) is not value:
                idx.forget(key)
                continue
            gone = value.expire_due(now + 1, budget)  # (active expiry takes a field due at `now` too)
            budget -= len(gone)
            if gone:
                _fields_expired(self.server, db, key, value, gone)
            if db.data.get(key) is not value or value.min_expire() is None:
                idx.forget(key)
            else:
                idx.scheduled.pop(key, None)
                idx.schedule(key, value)
        return budget


def hashes_with_field_ttls(db: Any) -> int:
    """How many hashes of ``db`` have fields with a TTL (INFO keyspace ``subexpiry``)."""
    index = getattr(db.keyspace, "hash_field_ttls", None)
    return 0 if index is None else index.count(db)


def setup(server: Any) -> None:
    index = FieldExpiry(server.keyspace, server)
    server.keyspace.hash_field_ttls = index
    server.keyspace.store_hooks.append(StoreHook(HashValue, "field_expires", index.stored))
    server.cron_hooks.append(index.cron)
    server.subexpiry_count = hashes_with_field_ttls


def _field_expiry(c: Any) -> FieldExpiry:
    return c.keyspace.hash_field_ttls


def _fields_expired(server: Any, db: Any, key: bytes, value: HashValue, gone: list[bytes], notify: bool = True) -> bool:
    """After the expired fields ``gone`` were deleted: their HDELs for the AOF and replicas,
    the statistic, the ``hexpired`` event, and the hash's own deletion (``del``) if it is now
    empty (which the HDELs carry too).  True if the hash was deleted."""
    for field in gone:
        also_propagate(server, db.index, [b"HDEL", key, field], covers=(key,))
    ks = server.keyspace
    ks.stat_expired_subkeys += len(gone)
    ks.changed(db, key, b"hexpired" if notify else None, "h")
    if value.fields:
        return False
    if db.data.get(key) is value:
        db.delete(key)
    ks.changed(db, key, b"del" if notify else None, "g")
    return True


# ----------------------------------------------------------------------------- lookups


def _limits(c: Any) -> HashLimits:
    values = c.server.config.values
    key = (values["hash-max-listpack-entries"], values["hash-max-listpack-value"])
    limits = _LIMITS.get(key)
    if limits is None:
        limits = _LIMITS[key] = HashLimits(*key)
    return limits


_LIMITS: dict[tuple[int, int], HashLimits] = {}  # one HashLimits per setting pair in use


def _may_delete_expired(ks: Any) -> bool | None:
    """Whether a lookup may delete an expired field now (``hashTypeGetValue``'s rules):
    True; False while loading, paused or on a replica's own clients (the field reads as
    missing but stays); None for a replica applying its master's stream (it reads as valid)."""
    if ks.expiry_by_master:
        return None if ks.loading else False
    return not (ks.loading or ks.expire_paused)


# field_value's outcomes (t_hash.c's GetFieldRes)
FIELD_FOUND, FIELD_MISSING, FIELD_EXPIRED, HASH_EXPIRED = range(4)


def field_value(c: Any, key: bytes, value: HashValue, field: bytes, notify: bool = True) -> tuple[bytes | None, int]:
    """``hashTypeGetValue`` with lazy expiry: (the field's value or None, outcome).  An
    expired field reads as None and is deleted on the way (FIELD_EXPIRED), and the hash too
    when that empties it (HASH_EXPIRED).  ``notify=False`` leaves the events to the caller
    (HMGET sends one ``hexpired`` for all its fields)."""
    found = value.fields.get(field)
    if found is None:
        return None, FIELD_MISSING
    if not value.field_expires:
        return found, FIELD_FOUND
    ks = c.keyspace
    if not value.is_expired(field, ks.now):
        return found, FIELD_FOUND
    may_delete = _may_delete_expired(ks)
    if may_delete is None:
        return found, FIELD_FOUND
    if not may_delete:
        return None, FIELD_EXPIRED
    value.delete(field)
    return None, HASH_EXPIRED if _fields_expired(c.server, c.db, key, value, [field], notify) else FIELD_EXPIRED


def _expire_all_due(c: Any, key: bytes, value: HashValue | None) -> HashValue | None:
    """``hashTypeExpireIfNeeded`` (HRANDFIELD): delete every expired field of the hash;
    None if that deleted the hash."""
    if value is None or not value.field_expires:
        return value
    ks = c.keyspace
    if not _may_delete_expired(ks):
        return value
    gone = value.expire_due(ks.now)
    if gone and _fields_expired(c.server, c.db, key, value, gone):
        return None
    return value


def _read(c: Any, key: bytes) -> HashValue | None:
    return check_type(c.db.lookup_read(key), HashValue)


def _write(c: Any, key: bytes) -> HashValue | None:
    return check_type(c.db.lookup_write(key), HashValue)


def _create(c: Any, key: bytes) -> HashValue:
    db = c.db
    value = HashValue()
    db.add(key, value)
    c.keyspace.notify(db.index, "n", b"new", key)
    return value


def _write_or_create(c: Any, key: bytes) -> HashValue:
    value = _write(c, key)
    return _create(c, key) if value is None else value


def _delete_if_empty(c: Any, key: bytes, value: HashValue) -> bool:
    if value.fields:
        return False
    db = c.db
    if db.data.get(key) is value:
        db.delete(key)
        c.keyspace.changed(db, key, b"del", "g", dirty=0)  # (the write that emptied it counted)
    return True


# ----------------------------------------------------------------------------- basic commands


def _hset(c: Any, argv: list[bytes], name: str) -> tuple[int, HashValue]:
    # (HSET on an existing hash that changes no encoding also runs in C: _collections.c native_hset; change both)
    if len(argv) % 2 == 1:
        raise CommandError(f"wrong number of arguments for '{name}' command")
    key = argv[1]
    value = _write_or_create(c, key)
    limits = _limits(c)
    value.try_conversion(argv[2:], limits)
    created = 0
    for i in range(2, len(argv), 2):
        if value.set(argv[i], argv[i + 1], limits):
            created += 1
    c.keyspace.changed(c.db, key, b"hset", "h", dirty=(len(argv) - 2) // 2)
    return created, value


_HSET_KS = [key_spec("RW UPDATE")]


@command("hset", -4, "write denyoom fast", (1, 1, 1), **HASH, since="2.0.0",
         summary="Creates or modifies the value of a field in a hash.",
         complexity="O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is "
         "called with multiple field/value pairs.", args="key data=(field:string value:string)...",
         key_specs=_HSET_KS, history=(("4.0.0", "Accepts multiple `field` and `value` arguments."),), events="hset")
def hset(c: Any, argv: list[bytes]) -> Any:
    return _hset(c, argv, "hset")[0]


@command("hmset", -4, "write denyoom fast", (1, 1, 1), **HASH, since="2.0.0", summary="Sets the values of multiple fields.",
         complexity="O(N) where N is the number of fields being set.", args="key data=(field:string value:string)...",
         key_specs=_HSET_KS, doc_flags="deprecated", deprecated_since="4.0.0",
         replaced_by="`HSET` with multiple field-value pairs", events="hset")
def hmset(c: Any, argv: list[bytes]) -> Any:
    _hset(c, argv, "hmset")
    return OK


@command("hsetnx", 4, "write denyoom fast", (1, 1, 1), **HASH, since="2.0.0",
         summary="Sets the value of a field in a hash only when the field doesn't exist.",
         args="key field:string value:string", key_specs=[key_spec("RW INSERT")], events="hset")
def hsetnx(c: Any, argv: list[bytes]) -> Any:
    key = argv[1]
    value = _write_or_create(c, key)
    found, outcome = field_value(c, key, value, argv[2])
    if found is not None:
        return 0
    if outcome == HASH_EXPIRED:  # its only field had expired: a new hash takes its place
        value = _create(c, key)
    limits = _limits(c)
    value.try_conversion(argv[2:4], limits)
    value.set(argv[2], argv[3], limits)
    c.keyspace.changed(c.db, key, b"hset", "h")
    return 1


@command("hget", 3, "readonly fast", (1, 1, 1), **HASH, since="2.0.0", summary="Returns the value of a field in a hash.",
         args="key field:string", key_specs=[key_spec("RO ACCESS")])
def hget(c: Any, argv: list[bytes]) -> Any:
    value = _read(c, argv[1])
    return None if value is None else field_value(c, argv[1], value, argv[2])[0]


@command("hmget", -3, "readonly fast", (1, 1, 1), **HASH, since="2.0.0",
         summary="Returns the values of all fields in a hash.",
         complexity="O(N) where N is the number of fields being requested.", args="key field:string...",
         key_specs=[key_spec("RO ACCESS")])
def hmget(c: Any, argv: list[bytes]) -> Any:
    key = argv[1]
    value = _read(c, key)
    if value is None:
        return [None] * (len(argv) - 2)
    if not value.field_expires:
        fields = value.fields
        return [fields.get(f) for f in argv[2:]]
    return _lookup_fields(c, key, value, argv[2:])[0]


@command("hdel", -3, "write fast", (1, 1, 1), **HASH, since="2.0.0",
         summary="Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
         complexity="O(N) where N is the number of fields to be removed.", args="key field:string...",
         key_specs=[key_spec("RW DELETE")], history=(("2.4.0", "Accepts multiple `field` arguments."),),
         events="hdel del")
def hdel(c: Any, argv: list[bytes]) -> Any:
    key = argv[1]
    value = _write(c, key)
    if value is None:
        return 0
    deleted = 0
    for field in argv[2:]:
        if value.delete(field):
            deleted += 1
            if not value.fields:
                break
    if deleted:
        c.keyspace.changed(c.db, key, b"hdel", "h", dirty=deleted)
        _delete_if_empty(c, key, value)
    return deleted


@command("hlen", 2, "readonly fast", (1, 1, 1), **HASH, since="2.0.0", summary="Returns the number of fields in a hash.",
         args="key", key_specs=[key_spec("RO")])
def hlen(c: Any, argv: list[bytes]) -> Any:
    value = _read(c, argv[1])
    return 0 if value is None else len(value.fields)


@command("hstrlen", 3, "readonly fast", (1, 1, 1), **HASH, since="3.2.0",
         summary="Returns the length of the value of a field.", args="key field:string", key_specs=[key_spec("RO")])
def hstrlen(c: Any, argv: list[bytes]) -> Any:
    value = _read(c, argv[1])
    if value is None:
        return 0
    found = field_value(c, argv[1], value, argv[2])[0]
    return 0 if found is None else len(found)


@command("hexists", 3, "readonly fast", (1, 1, 1), **HASH, since="2.0.0",
         summary="Determines whether a field exists in a hash.", args="key field:string", key_specs=[key_spec("RO")])
def hexists(c: Any, argv: list[bytes]) -> Any:
    value = _read(c, argv[1])
    return 0 if value is None or field_value(c, argv[1], value, argv[2])[0] is None else 1


_ALL_KS = [key_spec("RO ACCESS")]


@command("hgetall", 2, "readonly", (1, 1, 1), **HASH, since="2.0.0", summary="Returns all fields and values in a hash.",
         complexity="O(N) where N is the size of the hash.", args="key", key_specs=_ALL_KS,
         tips="nondeterministic_output_order")
def hgetall(c: Any, argv: list[bytes]) -> Any:
    value = _read(c, argv[1])
    if value is None:
        return Map([])
    return _table_reply(c, value, REPLY_ITEMS) or Map(value.live_items(c.keyspace.now))


def _table_reply(c: Any, value: HashValue, kind: int) -> Raw | None:
    """A hashtable's HGETALL/HKEYS/HVALS written from its entries (a script wants values)."""
    if c.from_script:
        return None
    wire = value.table_reply(kind, c.resp3)
    return None if wire is None else Raw(wire)


@command("hkeys", 2, "readonly", (1, 1, 1), **HASH, since="2.0.0", summary="Returns all fields in a hash.",
         complexity="O(N) where N is the size of the hash.", args="key", key_specs=_ALL_KS,
         tips="nondeterministic_output_order")
def hkeys(c: Any, argv: list[bytes]) -> Any:
    value = _read(c, argv[1])
    if value is None:
        return []
    return _table_reply(c, value, REPLY_KEYS) or (
        list(value.fields) if not value.field_expires else [f for f, _ in value.live_items(c.keyspace.now)])


@command("hvals", 2, "readonly", (1, 1, 1), **HASH, since="2.0.0", summary="Returns all values in a hash.",
         complexity="O(N) where N is the size of the hash.", args="key", key_specs=_ALL_KS,
         tips="nondeterministic_output_order")
def hvals(c: Any, argv: list[bytes]) -> Any:
    value = _read(c, argv[1])
    if value is None:
        return []
    return _table_reply(c, value, REPLY_VALUES) or (
        list(value.fields.values()) if not value.field_expires else [v for _, v in value.live_items(c.keyspace.now)])


@command("hincrby", 4, "write denyoom fast", (1, 1, 1), **HASH, since="2.0.0",
         summary="Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field "
         "doesn't exist.", args="key field:string increment:integer", key_specs=[key_spec("RW ACCESS UPDATE")],
         events="hincrby")
def hincrby(c: Any, argv: list[bytes]) -> Any:
    incr = to_int(argv[3])
    key, field = argv[1], argv[2]
    value = _write_or_create(c, key)
    current, outcome = field_value(c, key, value, field)
    if outcome == HASH_EXPIRED:  # its only field had expired: a new hash takes its place
        value = _create(c, key)
    old = 0
    if current is not None:
        parsed = to_int(current, "hash value is not an integer")
        old = parsed
    if (incr < 0 and old < 0 and incr < -(1 << 63) - old) or (incr > 0 and old > 0 and incr > (1 << 63) - 1 - old):
        raise CommandError("increment or decrement would overflow")
    new = old + incr
    value.set(field, b"%d" % new, _limits(c), keep_ttl=True)
    c.keyspace.changed(c.db, key, b"hincrby", "h")
    return new


@command("hincrbyfloat", 4, "write denyoom fast", (1, 1, 1), **HASH, since="2.6.0",
         summary="Increments the floating point value of a field by a number. Uses 0 as initial value if the field "
         "doesn't exist.", args="key field:string increment:double", key_specs=[key_spec("RW ACCESS UPDATE")],
         events="hincrbyfloat")
def hincrbyfloat(c: Any, argv: list[bytes]) -> Any:
    incr = parse_long_double(argv[3])
    if incr is None:
        raise CommandError("value is not a valid float")
    if isinstance(incr, float):
        raise CommandError("value is NaN or Infinity")
    key, field = argv[1], argv[2]
    value = _write_or_create(c, key)
    current, outcome = field_value(c, key, value, field)
    if outcome == HASH_EXPIRED:  # its only field had expired: a new hash takes its place
        value = _create(c, key)
    base: Any = 0
    if current is not None:
        base = parse_long_double(current)
        if base is None:
            raise CommandError("hash value is not a float")
    try:
        total = long_double_sum(base, incr)
    except NotFinite:
        raise CommandError("increment would produce NaN or Infinity") from None
    text = format_long_double(total)
    value.set(field, text, _limits(c), keep_ttl=True)
    c.keyspace.changed(c.db, key, b"hincrbyfloat", "h")
    # as HSET of the result, so float formatting never differs on a replica or an AOF reload
    propagate_as(c, [b"HSET", key, field, text])
    return text


# ----------------------------------------------------------------------------- random and scan


def _pairs_reply(c: Any, value: HashValue, names: list[bytes], withvalues: bool) -> list[Any]:
    if not withvalues:
        return names
    fields = value.fields
    if c.resp3:
        return [[name, fields[name]] for name in names]
    out: list[Any] = []
    for name in names:
        out += (name, fields[name])
    return out


@command("hrandfield", -2, "readonly", (1, 1, 1), **HASH, since="6.2.0",
         summary="Returns one or more random fields from a hash.",
         complexity="O(N) where N is the number of fields returned", args="key [options=(count:integer [WITHVALUES])]",
         key_specs=[key_spec("RO ACCESS")], tips="nondeterministic_output")
def hrandfield(c: Any, argv: list[bytes]) -> Any:
    if len(argv) >= 3:
        count = to_range_long(argv[2], -LONG_MAX, LONG_MAX)
        withvalues = False
        if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
            raise CommandError(SYNTAX)
        if len(argv) == 4:
            withvalues = True
            if count < -(LONG_MAX // 2) or count > LONG_MAX // 2:
                raise CommandError("value is out of range")
        value = _expire_all_due(c, argv[1], _read(c, argv[1]))
        if value is None or count == 0:
            return []
        size = len(value.fields)
        if count < 0 or count == 1:
            # With repetitions the reply is as long as asked: up to 2**63 fields.
            fields = value.fields
            size = (lambda f: bulk_size(f) + bulk_size(fields[f]) + 4) if withvalues else bulk_size
            picked = repeat_within(c, abs(count), lambda: value.random_field(_rng), size)
            if picked is None:  # the client's output-buffer limit closed it
                return []
            names = picked
        elif count >= size:
            names = list(value.fields)
        else:
            names = value.sample_unique(count, _rng)
        return _pairs_reply(c, value, names, withvalues)
    value = _expire_all_due(c, argv[1], _read(c, argv[1]))
    return None if value is None else value.random_field(_rng)


@command("hscan", -3, "readonly", (1, 1, 1), **HASH, since="2.8.0",
         summary="Iterates over fields and values of a hash.",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the "
         "cursor to return back to 0. N is the number of elements inside the collection.",
         args="key cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [NOVALUES]",
         key_specs=[key_spec("RO ACCESS")], tips="nondeterministic_output")
def hscan(c: Any, argv: list[bytes]) -> Any:
    cursor = parse_scan_cursor(argv[2])
    value = _read(c, argv[1])
    if value is None:
        return scan_reply(0, [])
    pattern, count, novalues = parse_scan_options(argv, 3, True)
    fields = value.fields
    if value.encoding != "hashtable":
        names = [f for f in fields if pattern is None or glob_match(pattern, f)]
        next_cursor = 0
    else:  # the table's own walk (KeyTable.scan: Redis's reverse-binary cursor over its buckets)
        next_cursor, flat = fields.scan(cursor, count, True)
        if pattern is None and not value.field_expires:
            return scan_reply(next_cursor, flat[0::2] if novalues else flat)
        names = [f for f in flat[0::2] if pattern is None or glob_match(pattern, f)]
    if value.field_expires:  # expired fields are visited but not reported
        now = c.keyspace.now
        names = [f for f in names if not value.is_expired(f, now)]
    if novalues:
        return scan_reply(next_cursor, names)
    out: list[bytes] = []
    for name in names:
        out += (name, fields[name])
    return scan_reply(next_cursor, out)


# ----------------------------------------------------------------------------- field expiration


def _fields_block(argv: list[bytes], fields_at: int, numfields_msg: str) -> list[bytes]:
    """``FIELDS numfields field...`` starting at ``fields_at`` (the FIELDS keyword)."""
    if fields_at >= len(argv) or argv[fields_at].lower() != b"fields":
        raise CommandError(FIELDS_MISSING)
    if fields_at + 1 >= len(argv):
        raise CommandError(NUMFIELDS_MISMATCH)
    numfields = to_range_long(argv[fields_at + 1], 1, LONG_MAX, numfields_msg)
    if numfields != len(argv) - fields_at - 2:
        raise CommandError(NUMFIELDS_MISMATCH)
    return argv[fields_at + 2:]


def _expire_time(c: Any, arg: bytes, unit_seconds: bool, basetime: int, name: str) -> int:
    """``parseExpireTime``: the absolute expiry in ms for EX/PX/EXAT/PXAT style arguments."""
    when = to_int(arg)
    if when < 0:
        raise CommandError("invalid expire time, must be >= 0")
    if unit_seconds:
        if when > HFE_MAX_ABS_TIME_MS // 1000:
            raise CommandError(f"invalid expire time in '{name}' command")
        when *= 1000
    if when > HFE_MAX_ABS_TIME_MS - basetime:
        raise CommandError(f"invalid expire time in '{name}' command")
    return when + basetime


def _after_ttl_changes(c: Any, key: bytes, value: HashValue, updated: int, deleted: int) -> None:
    """``hashTypeSetExDone``: events, deletion of an emptied hash, expiry tracking."""
    if not updated and not deleted:
        return
    db = c.db
    ks = c.keyspace
    if deleted and not value.fields:
        if db.data.get(key) is value:
            db.delete(key)
        ks.changed(db, key, b"hdel", "h", dirty=updated + deleted)
        ks.changed(db, key, b"del", "g", dirty=0)
        return
    ks.changed(db, key, b"hdel" if deleted else b"hexpire", "h", dirty=updated + deleted)
    _field_expiry(c).track(db, key, value)


def _hexpire(c: Any, argv: list[bytes], unit_seconds: bool, relative: bool, name: str) -> Any:
    key = argv[1]
    value = _write(c, key)
    basetime = c.keyspace.now if relative else 0
    when = _expire_time(c, argv[2], unit_seconds, basetime, name)
    condition = argv[3].upper() if len(argv) > 3 else b""
    fields_at = 3
    if condition in (b"NX", b"XX", b"GT", b"LT"):
        fields_at = 4
    fields = _fields_block(argv, fields_at, "Parameter `numFields` should be greater than 0")
    if value is None:
        return [NO_FIELD] * len(fields)
    value.enable_field_ttls()
    cond = condition.decode() if fields_at == 4 else None
    # checkAlreadyExpired: while loading (an AOF replay) a past time is kept, not applied as a delete
    now = c.keyspace.now if not c.keyspace.loading else -1
    codes: list[int] = []
    updated: list[bytes] = []
    deleted = 0
    for field in fields:
        code = value.set_field_expire(field, when, cond, now)
        codes.append(code)
        if code == EXPIRE_SET:
            updated.append(field)
        elif code == FIELD_DELETED:  # a time already past: the field goes, as an HDEL of its own
            deleted += 1
            also_propagate(c.server, c.db.index, [b"HDEL", key, field])
    _after_ttl_changes(c, key, value, len(updated), deleted)
    # as HPEXPIREAT of the absolute time, naming only the fields it set (nothing if none)
    at = argv[2] if not (unit_seconds or relative) else b"%d" % when
    propagate_as(c, *([[b"HPEXPIREAT", key, at, *argv[3:fields_at + 1], b"%d" % len(updated), *updated]]
                      if updated else []))
    return codes


_EXPIRE_KS = [key_spec("RW UPDATE")]
_EXPIRE_CPLX = "O(N) where N is the number of specified fields"


def _expire_args(time_arg: str) -> str:
    return f"key {time_arg} [condition=(NX | XX | GT | LT)] fields=FIELDS (numfields:integer field:string...)"


@command("hexpire", -6, "write denyoom fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Set expiry for hash field using relative time to expire (seconds)", complexity=_EXPIRE_CPLX,
         args=_expire_args("seconds:integer"), key_specs=_EXPIRE_KS, events="hexpire hdel del")
def hexpire(c: Any, argv: list[bytes]) -> Any:
    return _hexpire(c, argv, True, True, "hexpire")


@command("hpexpire", -6, "write denyoom fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Set expiry for hash field using relative time to expire (milliseconds)", complexity=_EXPIRE_CPLX,
         args=_expire_args("milliseconds:integer"), key_specs=_EXPIRE_KS, events="hexpire hdel del")
def hpexpire(c: Any, argv: list[bytes]) -> Any:
    return _hexpire(c, argv, False, True, "hpexpire")


@command("hexpireat", -6, "write denyoom fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Set expiry for hash field using an absolute Unix timestamp (seconds)", complexity=_EXPIRE_CPLX,
         args=_expire_args("unix-time-seconds:unix-time"), key_specs=_EXPIRE_KS, events="hexpire hdel del")
def hexpireat(c: Any, argv: list[bytes]) -> Any:
    return _hexpire(c, argv, True, False, "hexpireat")


@command("hpexpireat", -6, "write denyoom fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Set expiry for hash field using an absolute Unix timestamp (milliseconds)", complexity=_EXPIRE_CPLX,
         args=_expire_args("unix-time-milliseconds:unix-time"), key_specs=_EXPIRE_KS, events="hexpire hdel del")
def hpexpireat(c: Any, argv: list[bytes]) -> Any:
    return _hexpire(c, argv, False, False, "hpexpireat")


def _httl(c: Any, argv: list[bytes], unit_seconds: bool, relative: bool) -> Any:
    value = _read(c, argv[1])
    fields = _fields_block(argv, 2, NUMFIELDS_POSITIVE)
    if value is None:
        return [NO_FIELD] * len(fields)
    now = c.keyspace.now
    basetime = now if relative else 0
    out: list[int] = []
    for field in fields:
        if field not in value.fields:
            out.append(NO_FIELD)
            continue
        when = value.field_expires.get(field)
        if when is None:
            out.append(-1)
        elif when < now or (when == now and value.encoding != "hashtable"):
            out.append(NO_FIELD)
        elif unit_seconds:
            out.append((when + 999 - basetime) // 1000)
        else:
            out.append(when - basetime)
    return out


_TTL_ARGS = "key fields=FIELDS (numfields:integer field:string...)"
_TTL_KS = [key_spec("RO ACCESS")]


@command("httl", -5, "readonly fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Returns the TTL in seconds of a hash field.", complexity=_EXPIRE_CPLX, args=_TTL_ARGS,
         key_specs=_TTL_KS)
def httl(c: Any, argv: list[bytes]) -> Any:
    return _httl(c, argv, True, True)


@command("hpttl", -5, "readonly fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Returns the TTL in milliseconds of a hash field.", complexity=_EXPIRE_CPLX, args=_TTL_ARGS,
         key_specs=_TTL_KS)
def hpttl(c: Any, argv: list[bytes]) -> Any:
    return _httl(c, argv, False, True)


@command("hexpiretime", -5, "readonly fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Returns the expiration time of a hash field as a Unix timestamp, in seconds.",
         complexity=_EXPIRE_CPLX, args=_TTL_ARGS, key_specs=_TTL_KS)
def hexpiretime(c: Any, argv: list[bytes]) -> Any:
    return _httl(c, argv, True, False)


@command("hpexpiretime", -5, "readonly fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Returns the expiration time of a hash field as a Unix timestamp, in msec.",
         complexity=_EXPIRE_CPLX, args=_TTL_ARGS, key_specs=_TTL_KS)
def hpexpiretime(c: Any, argv: list[bytes]) -> Any:
    return _httl(c, argv, False, False)


@command("hpersist", -5, "write fast", (1, 1, 1), **HASH, since="7.4.0",
         summary="Removes the expiration time for each specified field", complexity=_EXPIRE_CPLX, args=_TTL_ARGS,
         key_specs=[key_spec("RW UPDATE")], events="hpersist")
def hpersist(c: Any, argv: list[bytes]) -> Any:
    key = argv[1]
    value = _write(c, key)
    fields = _fields_block(argv, 2, NUMFIELDS_POSITIVE)
    if value is None:
        return [NO_FIELD] * len(fields)
    now = c.keyspace.now
    codes = [value.persist_field(field, now) for field in fields]
    if PERSIST_OK in codes:
        c.keyspace.changed(c.db, key, b"hpersist", "h")
    return codes


# ----------------------------------------------------------------------------- HMGET's lookup with lazy field expiry


def _lookup_fields(c: Any, key: bytes, value: HashValue, fields: list[bytes]) -> tuple[list[bytes | None], bool]:
    """The values of ``fields`` with lazy expiry (HMGET's loop): expired ones read as None and
    are deleted, with one ``hexpired`` event (and ``del`` if the hash went with them).  Returns
    the values and whether the hash was deleted by expiry."""
    out: list[bytes | None] = []
    expired = deleted = False
    for field in fields:
        if deleted:  # the hash expired with an earlier field
            out.append(None)
            continue
        found, outcome = field_value(c, key, value, field, notify=False)
        expired = expired or outcome == FIELD_EXPIRED
        deleted = outcome == HASH_EXPIRED
        out.append(found)
    if expired:  # one hexpired for all (as Redis: none if only the hash's last field expired)
        ks = c.keyspace
        ks.notify(c.db.index, "h", b"hexpired", key)
        if deleted:
            ks.notify(c.db.index, "g", b"del", key)
    return out, deleted


attach_native_handlers("hset")  # the C handler of its common forms (dumpling/_collections.c)
