"""Generic keyspace commands: DEL, EXISTS, TYPE, the EXPIRE/TTL family, KEYS, SCAN,
RANDOMKEY, RENAME, COPY, MOVE, TOUCH, DBSIZE, FLUSHDB/FLUSHALL and OBJECT.

They work on every type through the value protocol (``TYPE``, ``encoding``,
``copy()``) and the string encoding rules of ``commands.strings``.
"""

from __future__ import annotations

from typing import Any

from dumpling.commands.common import LLONG_MAX, LLONG_MIN, glob_match, to_int
from dumpling.commands.registry import command, container
from dumpling.errors import DB_INDEX, NO_SUCH_KEY, NOT_INTEGER, SYNTAX, CommandError
from dumpling.keyspace import Database, lfu_decayed, lru_idle_ms, type_name
from dumpling.persistence.propagation import also_propagate, deletion, propagate_as
from dumpling.protocol import OK, Status

GEN = {"group": "generic"}
SHARED_INTEGERS = 10000
REFCOUNT_SHARED = 2147483647


def encoding_of(value: Any) -> bytes:
    if type(value) is bytes or type(value) is bytearray:
        from dumpling.commands.strings import string_encoding

        return string_encoding(value)
    return value.encoding.encode()


def copy_value(value: Any) -> Any:
    if type(value) is bytes:
        return value
    if type(value) is bytearray:
        return bytearray(value)
    return value.copy()


# ----------------------------------------------------------------------------- DEL / EXISTS / TYPE


def _delete_keys(c: Any, argv: list[bytes], lazy: bool) -> int:
    db, ks = c.db, c.keyspace
    deleted = 0
    for key in argv[1:]:
        db.expire_if_needed(key)
        value = db.data.get(key) if lazy else None
        if db.delete(key):
            if value is not None:
                ks.freed_lazily(value)
            ks.changed(db, key, b"del")
            deleted += 1
    return deleted


@command("del", -2, "write", (1, -1, 1), **GEN, summary="Deletes one or more keys.", args="key...",
         complexity=("O(N) where N is the number of keys that will be removed. When a key to remove holds a "
                     "value other than a string, the individual complexity for this key is O(M) where M is the "
                     "number of elements in the list, set, sorted set or hash. Removing a single key that holds "
                     "a string value is O(1)."), key_flags="RM delete", events="del", tips="request_policy:multi_shard response_policy:agg_sum")
def del_(c: Any, argv: list[bytes]) -> Any:
    return _delete_keys(c, argv, c.server.config["lazyfree-lazy-user-del"])


@command("unlink", -2, "write fast", (1, -1, 1), **GEN, since="4.0.0", args="key...",
         summary="Asynchronously deletes one or more keys.", key_flags="RM delete", events="del", tips="request_policy:multi_shard response_policy:agg_sum",
         complexity=("O(1) for each key removed regardless of its size. Then the command does O(N) work in a "
                     "different thread in order to reclaim memory, where N is the number of allocations the "
                     "deleted objects where composed of."))
def unlink(c: Any, argv: list[bytes]) -> Any:
    return _delete_keys(c, argv, True)


@command("exists", -2, "readonly fast", (1, -1, 1), **GEN, summary="Determines whether one or more keys exist.",
         args="key...", history=(("3.0.3", "Accepts multiple `key` arguments."),), key_flags="RO", tips="request_policy:multi_shard response_policy:agg_sum",
         complexity="O(N) where N is the number of keys to check.")
def exists(c: Any, argv: list[bytes]) -> Any:
    lookup = c.db.lookup_notouch
    found = 0
    for i in range(1, len(argv)):
        if lookup(argv[i]) is not None:
            found += 1
    return found


@command("type", 2, "readonly fast", (1, 1, 1), **GEN, summary="Determines the type of value stored at a key.",
         args="key", key_flags="RO")
def type_(c: Any, argv: list[bytes]) -> Any:
    value = c.db.lookup_notouch(argv[1])
    return Status(b"none" if value is None else type_name(value))


@command("touch", -2, "readonly fast", (1, -1, 1), **GEN, since="3.2.1", args="key...",
         summary="Returns the number of existing keys out of those specified after updating the time they were last accessed.",
         key_flags="RO", tips="request_policy:multi_shard response_policy:agg_sum",
         complexity="O(N) where N is the number of keys that will be touched.")
def touch(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    count = 0
    for key in argv[1:]:
        if db.lookup_read(key) is not None:
            count += 1
    return count


# ----------------------------------------------------------------------------- expiry


def _ttl(c: Any, key: bytes, milliseconds: bool, absolute: bool) -> int:
    db = c.db
    if db.lookup_notouch(key) is None:
        return -2
    when = db.get_expire(key)
    if when == -1:
        return -1
    if absolute:
        return when if milliseconds else (when + 500) // 1000
    remaining = max(when - c.keyspace.now, 0)
    return remaining if milliseconds else (remaining + 500) // 1000


@command("ttl", 2, "readonly fast", (1, 1, 1), **GEN, summary="Returns the expiration time in seconds of a key.",
         args="key", tips="nondeterministic_output",
         history=(("2.8.0", "Added the -2 reply."),))
def ttl(c: Any, argv: list[bytes]) -> Any:
    return _ttl(c, argv[1], False, False)


@command("pttl", 2, "readonly fast", (1, 1, 1), **GEN, since="2.6.0", args="key", tips="nondeterministic_output",
         summary="Returns the expiration time in milliseconds of a key.",
         history=(("2.8.0", "Added the -2 reply."),))
def pttl(c: Any, argv: list[bytes]) -> Any:
    return _ttl(c, argv[1], True, False)


@command("expiretime", 2, "readonly fast", (1, 1, 1), **GEN, since="7.0.0", args="key",
         summary="Returns the expiration time of a key as a Unix timestamp.")
def expiretime(c: Any, argv: list[bytes]) -> Any:
    return _ttl(c, argv[1], False, True)


@command("pexpiretime", 2, "readonly fast", (1, 1, 1), **GEN, since="7.0.0", args="key",
         summary="Returns the expiration time of a key as a Unix milliseconds timestamp.")
def pexpiretime(c: Any, argv: list[bytes]) -> Any:
    return _ttl(c, argv[1], True, True)


def _expire(c: Any, argv: list[bytes], unit_ms: int, relative: bool) -> int:
    nx = xx = gt = lt = False
    for opt in argv[3:]:
        low = opt.lower()
        if low == b"nx":
            nx = True
        elif low == b"xx":
            xx = True
        elif low == b"gt":
            gt = True
        elif low == b"lt":
            lt = True
        else:
            raise CommandError(f"Unsupported option {opt.decode('utf-8', 'replace')}")
    if nx and (xx or gt or lt):
        raise CommandError("NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise CommandError("GT and LT options at the same time are not compatible")
    when = to_int(argv[2])
    name = argv[0].lower().decode()
    if unit_ms == 1000:
        # C's LLONG_MIN / 1000 truncates toward zero (-9223372036854775); Python's // floors.
        if when > LLONG_MAX // 1000 or when < -(-LLONG_MIN // 1000):
            raise CommandError(f"invalid expire time in '{name}' command")
        when *= 1000
    ks = c.keyspace
    if relative:
        if when > LLONG_MAX - ks.now:
            raise CommandError(f"invalid expire time in '{name}' command")
        when += ks.now
    db = c.db
    key = argv[1]
    if db.lookup_write(key) is None:
        return 0
    current = db.get_expire(key)
    if nx and current != -1:
        return 0
    if xx and current == -1:
        return 0
    if gt and (current == -1 or when <= current):
        return 0
    if lt and current != -1 and when >= current:
        return 0
    if when <= ks.now and not ks.loading:
        db.delete(key)
        ks.changed(db, key, b"del")
        propagate_as(c, deletion(c.server.config, key, "lazyfree-lazy-expire"))
        return 1
    db.set_expire(key, when)
    ks.changed(db, key, b"expire")
    # as PEXPIREAT of the absolute time (its options kept), whatever the unit and base
    propagate_as(c, [b"PEXPIREAT", key, argv[2] if unit_ms == 1 and not relative else b"%d" % when, *argv[3:]])
    return 1


_EXPIRE_ARGS = "[condition=(NX | XX | GT | LT)@7.0.0]"
_EXPIRE_HISTORY = (("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),)


@command("expire", -3, "write fast", (1, 1, 1), **GEN, summary="Sets the expiration time of a key in seconds.",
         args="key seconds:integer " + _EXPIRE_ARGS, history=_EXPIRE_HISTORY, events="expire del")
def expire(c: Any, argv: list[bytes]) -> Any:
    return _expire(c, argv, 1000, True)


@command("pexpire", -3, "write fast", (1, 1, 1), **GEN, since="2.6.0", history=_EXPIRE_HISTORY,
         summary="Sets the expiration time of a key in milliseconds.",
         args="key milliseconds:integer " + _EXPIRE_ARGS, events="expire del")
def pexpire(c: Any, argv: list[bytes]) -> Any:
    return _expire(c, argv, 1, True)


@command("expireat", -3, "write fast", (1, 1, 1), **GEN, since="1.2.0", history=_EXPIRE_HISTORY,
         summary="Sets the expiration time of a key to a Unix timestamp.",
         args="key unix-time-seconds:unix-time " + _EXPIRE_ARGS, events="expire del")
def expireat(c: Any, argv: list[bytes]) -> Any:
    return _expire(c, argv, 1000, False)


@command("pexpireat", -3, "write fast", (1, 1, 1), **GEN, since="2.6.0", history=_EXPIRE_HISTORY,
         summary="Sets the expiration time of a key to a Unix milliseconds timestamp.",
         args="key unix-time-milliseconds:unix-time " + _EXPIRE_ARGS, events="expire del")
def pexpireat(c: Any, argv: list[bytes]) -> Any:
    return _expire(c, argv, 1, False)


@command("persist", 2, "write fast", (1, 1, 1), **GEN, since="2.2.0", args="key", events="persist",
         summary="Removes the expiration time of a key.")
def persist(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    key = argv[1]
    if db.lookup_write(key) is None or not db.persist(key):
        return 0
    c.keyspace.changed(db, key, b"persist")
    return 1


# ----------------------------------------------------------------------------- KEYS / SCAN / RANDOMKEY


@command("keys", 2, "readonly", **GEN, summary="Returns all key names that match a pattern.", args="pattern:pattern",
         complexity=("O(N) with N being the number of keys in the database, under the assumption that the key "
                     "names in the database and the given pattern have limited length."), acl="keyspace dangerous",
         tips="request_policy:all_shards nondeterministic_output_order")
def keys(c: Any, argv: list[bytes]) -> Any:
    pattern = argv[1]
    live = c.db.live_keys()
    if pattern == b"*":
        return list(live)
    return [k for k in live if glob_match(pattern, k)]


def parse_cursor(arg: bytes) -> int:
    """Redis 7.0's ``strtoul`` cursor: no leading space; '+', '-' and '' accepted."""
    text = arg
    if text and text[:1] in b" \t\n\r\x0b\x0c":
        raise CommandError("invalid cursor")
    neg = text[:1] == b"-"
    if text[:1] in b"+-" and text:
        text = text[1:]
    if not text:
        return 0
    if not text.isdigit():
        raise CommandError("invalid cursor")
    value = int(text)
    if value >= 1 << 64:
        raise CommandError("invalid cursor")
    return ((1 << 64) - value) % (1 << 64) if neg else value


def parse_scan_options(argv: list[bytes], start: int, allow_type: bool) -> tuple[bytes | None, int, bytes | None]:
    pattern: bytes | None = None
    count = 10
    type_filter: bytes | None = None
    i = start
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        if opt == b"count":
            count = to_int(argv[i + 1], NOT_INTEGER)
            if count < 1:
                raise CommandError(SYNTAX)
        elif opt == b"match":
            pattern = argv[i + 1]
            if pattern == b"*":
                pattern = None
        elif opt == b"type" and allow_type:
            type_filter = argv[i + 1].lower()
        else:
            raise CommandError(SYNTAX)
        i += 2
    return pattern, count, type_filter


@command("scan", -2, "readonly touches_arbitrary_keys", **GEN, since="2.8.0", summary="Iterates over the key names in the database.",
         args="cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [TYPE type@6.0.0]",
         complexity=("O(1) for every call. O(N) for a complete iteration, including enough command calls for "
                     "the cursor to return back to 0. N is the number of elements inside the collection."),
         tips="nondeterministic_output request_policy:special",
         history=(("6.0.0", "Added the `TYPE` subcommand."),))
def scan(c: Any, argv: list[bytes]) -> Any:
    cursor = parse_cursor(argv[1])
    pattern, count, type_filter = parse_scan_options(argv, 2, True)
    db: Database = c.db
    next_cursor, found = db.data.scan(cursor, count)
    out = []
    for key in found:
        if db.expire_if_needed(key):
            continue
        if pattern is not None and not glob_match(pattern, key):
            continue
        if type_filter is not None:
            value = db.data.get(key)
            if value is None or type_name(value) != type_filter:
                continue
        out.append(key)
    return [str(next_cursor).encode(), out]


@command("randomkey", 1, "readonly touches_arbitrary_keys", **GEN, summary="Returns a random key name from the database.",
         tips="request_policy:all_shards nondeterministic_output")
def randomkey(c: Any, argv: list[bytes]) -> Any:
    return c.db.random_key()


# ----------------------------------------------------------------------------- RENAME / COPY / MOVE


def _rename(c: Any, argv: list[bytes], nx: bool) -> Any:
    db, ks = c.db, c.keyspace
    src, dst = argv[1], argv[2]
    value = db.lookup_write(src)
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    expire_at = db.get_expire(src)
    if db.lookup_write(dst) is not None:
        if nx:
            return 0
        db.delete(dst)
    field = db.field(src)
    db.delete(src)
    db.add(dst, value)
    if field is not None:
        db.set_field(dst, field)  # Redis 7.0 keeps the object (and its LRU/LFU field) on RENAME
    if expire_at != -1:
        db.set_expire(dst, expire_at)
    ks.notify(db.index, "n", b"new", dst)
    ks.changed(db, src, b"rename_from")
    ks.changed(db, dst, b"rename_to")
    return 1 if nx else OK


@command("rename", 3, "write", (1, 2, 1), **GEN, summary="Renames a key and overwrites the destination.",
         args="key newkey:key", events="rename_from rename_to",
         key_specs=[
             {"flags": ["RW", "access", "delete"], "begin_search": {"type": "index", "spec": {"index": 1}},
              "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
             {"flags": ["OW", "update"], "begin_search": {"type": "index", "spec": {"index": 2}},
              "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
         ])
def rename(c: Any, argv: list[bytes]) -> Any:
    return _rename(c, argv, False)


@command("renamenx", 3, "write fast", (1, 2, 1), **GEN, summary="Renames a key only when the target key name doesn't exist.",
         args="key newkey:key", events="rename_from rename_to",
         history=(("3.2.0", "The command no longer returns an error when source and destination names are the same."),),
         key_specs=[
             {"flags": ["RW", "access", "delete"], "begin_search": {"type": "index", "spec": {"index": 1}},
              "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
             {"flags": ["OW", "insert"], "begin_search": {"type": "index", "spec": {"index": 2}},
              "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
         ])
def renamenx(c: Any, argv: list[bytes]) -> Any:
    return _rename(c, argv, True)


def _db_index(c: Any, arg: bytes) -> Database:
    index = to_int(arg)
    dbs = c.keyspace.dbs
    if not 0 <= index < len(dbs):
        raise CommandError(DB_INDEX)
    return dbs[index]


@command("copy", -3, "write denyoom", (1, 2, 1), **GEN, since="6.2.0",
         summary="Copies the value of a key to a new key.", args="source:key destination:key [DB destination-db:integer] [REPLACE]",
         complexity="O(N) worst case for collections, where N is the number of nested items. O(1) for string values.",
         events="copy_to",
         key_specs=[
             {"flags": ["RO", "access"], "begin_search": {"type": "index", "spec": {"index": 1}},
              "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
             {"flags": ["OW", "update"], "begin_search": {"type": "index", "spec": {"index": 2}},
              "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}},
         ])
def copy(c: Any, argv: list[bytes]) -> Any:
    src, dst = argv[1], argv[2]
    target = c.db
    replace = False
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < len(argv):
            if c.server.cluster is not None:
                raise CommandError("Copying to another database is not allowed in cluster mode")
            target = _db_index(c, argv[i + 1])
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    db, ks = c.db, c.keyspace
    if target is db and src == dst:
        raise CommandError("source and destination objects are the same")
    value = db.lookup_write(src)
    if value is None:
        return 0
    expire_at = db.get_expire(src)
    if target.lookup_write(dst) is not None:
        if not replace:
            return 0
        target.delete(dst)
    target.add(dst, copy_value(value))
    if expire_at != -1:
        target.set_expire(dst, expire_at)
    ks.notify(target.index, "n", b"new", dst)
    ks.changed(target, dst, b"copy_to")
    return 1


@command("move", 3, "write fast", (1, 1, 1), **GEN, summary="Moves a key to another database.",
         args="key db:integer", events="move_from move_to", key_flags="RW access update")
def move(c: Any, argv: list[bytes]) -> Any:
    if c.server.cluster is not None:
        raise CommandError("MOVE is not allowed in cluster mode")
    db, ks = c.db, c.keyspace
    target = _db_index(c, argv[2])
    if target is db:
        raise CommandError("source and destination objects are the same")
    key = argv[1]
    value = db.lookup_write(key)
    if value is None:
        return 0
    expire_at = db.get_expire(key)
    if target.lookup_write(key) is not None:
        return 0
    field = db.field(key)
    db.delete(key)
    target.add(key, value)
    if field is not None:
        target.set_field(key, field)
    if expire_at != -1:
        target.set_expire(key, expire_at)
    ks.notify(target.index, "n", b"new", key)
    ks.changed(db, key, b"move_from")
    ks.changed(target, key, b"move_to")
    return 1


# ----------------------------------------------------------------------------- DBSIZE / FLUSH


@command("dbsize", 1, "readonly fast", group="server", summary="Returns the number of keys in the database.",
         acl="keyspace", tips="request_policy:all_shards response_policy:agg_sum")
def dbsize(c: Any, argv: list[bytes]) -> Any:
    return len(c.db)


def _flush_option(argv: list[bytes]) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() not in (b"async", b"sync")):
        raise CommandError(SYNTAX)


def _flush_is_lazy(c: Any, argv: list[bytes]) -> bool:
    """Whether Redis frees the flushed keys in its lazyfree thread (each counts in INFO's
    ``lazyfreed_objects``): ASYNC; no argument with lazyfree-lazy-user-flush; and, since 7.4,
    a SYNC or plain flush outside MULTI and scripts, which Redis runs as a blocking ASYNC one."""
    if len(argv) == 2 and argv[1].lower() == b"async":
        return True
    if len(argv) == 1 and c.server.config["lazyfree-lazy-user-flush"]:
        return True
    return not c.server.in_exec


def flush_db(c: Any, db: Database, lazy: bool = False) -> None:
    ks = c.keyspace
    ks.touch_watched_in_db(db.index, db)
    ks.dirty += len(db)
    if lazy:
        ks.stat_lazyfreed_objects += len(db)
    db.clear()


_FLUSH_HISTORY = (("4.0.0", "Added the `ASYNC` flushing mode modifier."),
                  ("6.2.0", "Added the `SYNC` flushing mode modifier."))


@command("flushdb", -1, "write", group="server", since="1.0.0", summary="Remove all keys from the current database.",
         args="[flush-type=(ASYNC@4.0.0 | SYNC@6.2.0)]", acl="keyspace dangerous", complexity="O(N) where N is the number of keys in the selected database",
         tips="request_policy:all_shards response_policy:all_succeeded",
         history=_FLUSH_HISTORY)
def flushdb(c: Any, argv: list[bytes]) -> Any:
    _flush_option(argv)
    flush_db(c, c.db, _flush_is_lazy(c, argv))
    c.keyspace.dirty += 1
    if c.keyspace.tracking is not None:
        c.keyspace.tracking.flushed()  # caches are not per database: one null invalidation
    return OK


@command("flushall", -1, "write", group="server", since="1.0.0", summary="Removes all keys from all databases.",
         args="[flush-type=(ASYNC@4.0.0 | SYNC@6.2.0)]", acl="keyspace dangerous", complexity="O(N) where N is the total number of keys in all databases",
         tips="request_policy:all_shards response_policy:all_succeeded",
         history=_FLUSH_HISTORY)
def flushall(c: Any, argv: list[bytes]) -> Any:
    _flush_option(argv)
    lazy = _flush_is_lazy(c, argv)
    dirty_before = c.keyspace.dirty
    for db in c.keyspace.dbs:
        flush_db(c, db, lazy)
    c.keyspace.dirty += 1
    if c.keyspace.tracking is not None:
        c.keyspace.tracking.flushed()
    if c.server.cluster is not None:
        c.server.cluster.keys_flushed()
    c.server.snapshots.after_flushall()  # with save points: the empty dataset is saved at once
    if c.keyspace.dirty == dirty_before:
        # That save zeroed the count the call's propagation compares with: FLUSHALL is
        # propagated all the same (Redis's forceCommandPropagation).
        also_propagate(c.server, c.db.index, argv)
    return OK


# ----------------------------------------------------------------------------- OBJECT

container("object", group="generic", since="2.2.3", summary="A container for object introspection commands.")

_IDLE_ERR = (
    "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies "
    "at runtime LRU and LFU data will take some time to adjust."
)
_FREQ_ERR = (
    "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between "
    "policies at runtime LRU and LFU data will take some time to adjust."
)


@command("object|encoding", 3, "readonly", (2, 2, 1), **GEN, key_flags="RO", since="2.2.3", args="key",
         summary="Returns the internal encoding of a Redis object.", tips="nondeterministic_output")
def object_encoding(c: Any, argv: list[bytes]) -> Any:
    value = c.db.lookup_notouch(argv[2], notify=False)
    return None if value is None else encoding_of(value)


def shares_integer(c: Any, value: Any) -> bool:
    """Redis shares the objects of integers 0..9999 unless an LRU/LFU maxmemory needs per-key fields."""
    if type(value) is not bytes or len(value) > 4:
        return False
    cfg = c.server.config
    if cfg["maxmemory"] and cfg["maxmemory-policy"].endswith(("lru", "lfu")):
        return False
    return value.isdigit() and (value == b"0" or value[0] != 48) and int(value) < SHARED_INTEGERS


@command("object|refcount", 3, "readonly", (2, 2, 1), **GEN, key_flags="RO", since="2.2.3", args="key",
         summary="Returns the reference count of a value of a key.", tips="nondeterministic_output")
def object_refcount(c: Any, argv: list[bytes]) -> Any:
    value = c.db.lookup_notouch(argv[2], notify=False)
    if value is None:
        return None
    return REFCOUNT_SHARED if shares_integer(c, value) else 1


@command("object|idletime", 3, "readonly", (2, 2, 1), **GEN, key_flags="RO", since="2.2.3", args="key",
         summary="Returns the time since the last access to a Redis object.", tips="nondeterministic_output")
def object_idletime(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    value = db.lookup_notouch(argv[2], notify=False)
    if value is None:
        return None
    if c.keyspace.lfu:
        raise CommandError(_IDLE_ERR)
    return lru_idle_ms(db.field(argv[2], 0), c.keyspace.now) // 1000


@command("object|freq", 3, "readonly", (2, 2, 1), **GEN, key_flags="RO", since="4.0.0", args="key",
         summary="Returns the logarithmic access frequency counter of a Redis object.", tips="nondeterministic_output")
def object_freq(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    value = db.lookup_notouch(argv[2], notify=False)
    if value is None:
        return None
    ks = c.keyspace
    if not ks.lfu:
        raise CommandError(_FREQ_ERR)
    if shares_integer(c, value):
        return 0  # the shared object's field is never touched
    return lfu_decayed(db.field(argv[2], 0), ks.now, ks.lfu_decay_time)


@command("object|help", 2, "loading stale", **GEN, since="6.2.0", summary="Returns helpful text about the different subcommands.")
def object_help(c: Any, argv: list[bytes]) -> Any:
    lines = [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Print this help.",
    ]
    return [Status(line) for line in lines]
