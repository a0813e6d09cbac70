"""String commands: GET/SET and their variants, MGET/MSET, counters, APPEND, ranges, LCS.

Owns the string value model shared with the rest of the server: a value is
``bytes`` (what SET, MSET, GETSET, INCR, INCRBYFLOAT and APPEND-to-a-missing-key
store; Redis's ``int``/``embstr``/``raw`` by content) or ``bytearray`` (what
APPEND/SETRANGE and the bit commands leave behind: Redis's ``raw``, and appends
become amortised O(1)).  ``string_encoding`` is the single place that maps a value
to its OBJECT ENCODING name.

A ``bytearray`` value is mutated in place, so handlers never hand one out as a
reply (a queued EXEC reply would change under it): replies copy it to ``bytes``.

Must not: know about sockets or reply framing (handlers return plain values).
"""

from __future__ import annotations

from typing import Any

from dumpling.commands.common import to_int
from dumpling.commands.registry import command
from dumpling.errors import NOT_FLOAT, NOT_INTEGER, OVERFLOW, SYNTAX, WRONGTYPE, CommandError
from dumpling.numbers import LLONG_MAX, LLONG_MIN, NotFinite, long_double_sum, parse_int64, parse_long_double
from dumpling.numbers import format_long_double as _format_ld
from dumpling.persistence.propagation import deletion, propagate_as
from dumpling.protocol import OK, Map

STR = {"group": "string"}
EMBSTR_SIZE_LIMIT = 44  # OBJ_ENCODING_EMBSTR_SIZE_LIMIT
TOO_BIG = "string exceeds maximum allowed size (proto-max-bulk-len)"

# SET / GETEX option flags (Redis's OBJ_* bits).
NX = 1
XX = 2
EX = 4
PX = 8
KEEPTTL = 16
GET = 32
EXAT = 64
PXAT = 128
PERSIST = 256
ANY_EXPIRE = EX | PX | EXAT | PXAT
# Per option: the flags that must not have been seen before it, and whether it takes a value.
_SET_OPTIONS: dict[bytes, tuple[int, int, bool]] = {
    b"nx": (NX, XX, False),
    b"xx": (XX, NX, False),
    b"get": (GET, 0, False),
    b"keepttl": (KEEPTTL, PERSIST | ANY_EXPIRE, False),
    b"ex": (EX, KEEPTTL | PERSIST | EXAT | PX | PXAT, True),
    b"px": (PX, KEEPTTL | PERSIST | EX | EXAT | PXAT, True),
    b"exat": (EXAT, KEEPTTL | PERSIST | EX | PX | PXAT, True),
    b"pxat": (PXAT, KEEPTTL | PERSIST | EX | EXAT | PX, True),
}
_GETEX_OPTIONS: dict[bytes, tuple[int, int, bool]] = {
    b"persist": (PERSIST, KEEPTTL | ANY_EXPIRE, False),
    b"ex": _SET_OPTIONS[b"ex"],
    b"px": _SET_OPTIONS[b"px"],
    b"exat": _SET_OPTIONS[b"exat"],
    b"pxat": _SET_OPTIONS[b"pxat"],
}


def string_encoding(value: bytes | bytearray) -> bytes:
    """OBJECT ENCODING of a string value: ``int``, ``embstr`` or ``raw``.

    ``bytes`` are what Redis's ``tryObjectEncoding`` sees: a canonical 64-bit
    integer of at most 20 characters is ``int``, otherwise up to 44 bytes
    ``embstr``, else ``raw``.  A ``bytearray`` (modified in place) is ``raw``.
    """
    if type(value) is bytearray:
        return b"raw"
    n = len(value)
    if n <= 20 and parse_int64(value) is not None:
        return b"int"
    return b"embstr" if n <= EMBSTR_SIZE_LIMIT else b"raw"


def key_spec(flags: str, index: int = 1, lastkey: int = 0, step: int = 1, notes: str | None = None) -> dict[str, Any]:
    """A COMMAND INFO key spec of the index + range kind (``notes`` first, as Redis prints it)."""
    spec: dict[str, Any] = {}
    if notes is not None:
        spec["notes"] = notes
    spec["flags"] = flags.split()
    spec["begin_search"] = {"type": "index", "spec": {"index": index}}
    spec["find_keys"] = {"type": "range", "spec": {"lastkey": lastkey, "keystep": step, "limit": 0}}
    return spec


def _wrongtype() -> CommandError:
    return CommandError(WRONGTYPE)


def check_string_length(c: Any, size: int) -> None:
    """``checkStringLength``: refuse growing a string beyond proto-max-bulk-len."""
    if size > c.server.config["proto-max-bulk-len"]:
        raise CommandError(TOO_BIG)


def _as_reply(value: Any) -> Any:
    """A string value as a reply: bytearrays are copied (they mutate in place)."""
    t = type(value)
    if t is bytes or value is None:
        return value
    if t is bytearray:
        return bytes(value)
    raise _wrongtype()


def add_new_key(c: Any, db: Any, key: bytes, value: bytes | bytearray) -> None:
    """Redis's ``dbAdd`` for a key known not to exist: store it and fire ``new``."""
    db.add(key, value)
    ks = c.keyspace
    if ks.notify_flags:
        ks.notify(db.index, "n", b"new", key)


# ----------------------------------------------------------------------------- GET / SET


@command("get", 2, "readonly fast", (1, 1, 1), **STR, summary="Returns the string value of a key.", args="key",
         key_flags="RO access")
def get(c: Any, argv: list[bytes]) -> Any:
    value = c.db.lookup_read(argv[1])
    if type(value) is bytes or value is None:
        return value
    return _as_reply(value)


def _parse_options(argv: list[bytes], start: int, table: dict[bytes, tuple[int, int, bool]]) -> tuple[int, bytes | None]:
    """``parseExtendedStringArgumentsOrReply``: (flags, expire argument)."""
    flags = 0
    expire: bytes | None = None
    n = len(argv)
    j = start
    while j < n:
        entry = table.get(argv[j].lower())
        if entry is None:
            raise CommandError(SYNTAX)
        flag, conflicts, takes_value = entry
        if flags & conflicts or (takes_value and j + 1 >= n):
            raise CommandError(SYNTAX)
        flags |= flag
        if takes_value:
            j += 1
            expire = argv[j]
        j += 1
    return flags, expire


def _expire_at_ms(c: Any, arg: bytes, flags: int, name: str) -> int:
    """``getExpireMillisecondsOrReply``: the absolute expiry in ms for EX/PX/EXAT/PXAT."""
    when = to_int(arg)
    seconds = not flags & (PX | PXAT)
    if when <= 0 or (seconds and when > LLONG_MAX // 1000):
        raise CommandError(f"invalid expire time in '{name}' command")
    if seconds:
        when *= 1000
    if flags & (EX | PX):
        when += c.keyspace.now
        if when > LLONG_MAX:
            raise CommandError(f"invalid expire time in '{name}' command")
    return when


def _set_generic(c: Any, key: bytes, value: bytes, flags: int, expire: bytes | None, name: str,
                 ok_reply: Any = OK, abort_reply: Any = None) -> Any:
    """``setGenericCommand`` for SET, SETNX, SETEX and PSETEX."""
    when = _expire_at_ms(c, expire, flags, name) if expire is not None else None
    db = c.db
    reply = ok_reply
    if flags & GET:
        old = db.lookup_read(key)
        if old is not None and type(old) is not bytes and type(old) is not bytearray:
            raise _wrongtype()
        reply = _as_reply(old)
    found = db.lookup_write(key) is not None
    if (flags & NX and found) or (flags & XX and not found):
        return reply if flags & GET else abort_reply
    ks = c.keyspace
    if found:
        db.set(key, value, keep_ttl=bool(flags & KEEPTTL) or when is not None)
    else:
        add_new_key(c, db, key, value)
    ks.changed(db, key, b"set", "$")
    if when is not None:
        db.set_expire(key, when)
        if ks.notify_flags:
            ks.notify(db.index, "g", b"expire", key)
        if not flags & PXAT:  # a relative or seconds TTL propagates as its absolute time in ms
            propagate_as(c, [b"SET", key, value, b"PXAT", b"%d" % when])
    return reply


@command("set", -3, "write denyoom", (1, 1, 1), **STR,
         summary="Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
         args=("key value [condition=(NX | XX)@2.6.12] [GET@6.2.0] [expiration=(EX seconds:integer@2.6.12 "
               "| PX milliseconds:integer@2.6.12 | EXAT unix-time-seconds:unix-time@6.2.0 | PXAT "
               "unix-time-milliseconds:unix-time@6.2.0 | KEEPTTL@6.0.0)]"),
         key_specs=[key_spec("RW access update variable_flags", notes="RW and ACCESS due to the optional `GET` argument")],
         history=(("2.6.12", "Added the `EX`, `PX`, `NX` and `XX` options."),
                  ("6.0.0", "Added the `KEEPTTL` option."),
                  ("6.2.0", "Added the `GET`, `EXAT` and `PXAT` option."),
                  ("7.0.0", "Allowed the `NX` and `GET` options to be used together.")),
         events="new set expire")
def set_(c: Any, argv: list[bytes]) -> Any:
    key = argv[1]
    if len(argv) == 3:  # the hot path: no options
        db = c.db
        ks = c.keyspace
        if db.lookup_write(key) is None:
            db.add(key, argv[2])
            if ks.notify_flags:
                ks.notify(db.index, "n", b"new", key)
        else:
            db.set(key, argv[2])
        ks.changed(db, key, b"set", "$")
        return OK
    flags, expire = _parse_options(argv, 3, _SET_OPTIONS)
    reply = _set_generic(c, key, argv[2], flags, expire, "set")
    if flags & GET and expire is None:  # propagated without its GET arguments
        propagate_as(c, [arg for j, arg in enumerate(argv) if j < 3 or arg.lower() != b"get"])
    return reply


@command("setnx", 3, "write denyoom fast", (1, 1, 1), **STR,
         summary="Set the string value of a key only when the key doesn't exist.", args="key value:string",
         key_flags="OW insert", doc_flags="deprecated", deprecated_since="2.6.12",
         replaced_by="`SET` with the `NX` argument", events="new set")
def setnx(c: Any, argv: list[bytes]) -> Any:
    return _set_generic(c, argv[1], argv[2], NX, None, "setnx", 1, 0)


@command("setex", 4, "write denyoom", (1, 1, 1), **STR,
         summary="Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
         since="2.0.0", args="key seconds:integer value:string", key_flags="OW update", doc_flags="deprecated",
         deprecated_since="2.6.12", replaced_by="`SET` with the `EX` argument", events="new set expire")
def setex(c: Any, argv: list[bytes]) -> Any:
    return _set_generic(c, argv[1], argv[3], EX, argv[2], "setex")


@command("psetex", 4, "write denyoom", (1, 1, 1), **STR,
         summary="Sets both string value and expiration time in milliseconds of a key. "
                 "The key is created if it doesn't exist.",
         since="2.6.0", args="key milliseconds:integer value:string", key_flags="OW update", doc_flags="deprecated",
         deprecated_since="2.6.12", replaced_by="`SET` with the `PX` argument", events="new set expire")
def psetex(c: Any, argv: list[bytes]) -> Any:
    return _set_generic(c, argv[1], argv[3], PX, argv[2], "psetex")


@command("getex", -2, "write fast", (1, 1, 1), **STR, since="6.2.0",
         summary="Returns the string value of a key after setting its expiration time.",
         args="key expiration=[EX seconds:integer | PX milliseconds:integer | EXAT unix-time-seconds:unix-time "
              "| PXAT unix-time-milliseconds:unix-time | PERSIST]",
         key_specs=[key_spec("RW access update", notes="RW and UPDATE because it changes the TTL")],
         events="expire del persist")
def getex(c: Any, argv: list[bytes]) -> Any:
    flags, expire = _parse_options(argv, 2, _GETEX_OPTIONS)
    db = c.db
    key = argv[1]
    value = db.lookup_read(key)
    if value is None:
        return None
    reply = _as_reply(value)
    ks = c.keyspace
    if expire is not None:
        when = _expire_at_ms(c, expire, flags, "getex")
        if flags & (EXAT | PXAT) and when <= ks.now and not ks.loading:
            db.delete(key)
            ks.changed(db, key, b"del", "g")
            propagate_as(c, deletion(c.server.config, key, "lazyfree-lazy-expire"))
        else:
            db.set_expire(key, when)
            ks.changed(db, key, b"expire", "g")
            propagate_as(c, [b"PEXPIREAT", key, b"%d" % when])
    elif flags & PERSIST and db.persist(key):
        ks.changed(db, key, b"persist", "g")
        propagate_as(c, [b"PERSIST", key])
    return reply


@command("getdel", 2, "write fast", (1, 1, 1), **STR, since="6.2.0",
         summary="Returns the string value of a key after deleting the key.", args="key",
         key_flags="RW access delete", events="del")
def getdel(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    key = argv[1]
    value = _as_reply(db.lookup_read(key))
    if value is not None and db.delete(key):
        c.keyspace.changed(db, key, b"del", "g")
        propagate_as(c, [b"DEL", key])
    return value


@command("getset", 3, "write denyoom fast", (1, 1, 1), **STR,
         summary="Returns the previous string value of a key after setting it to a new value.",
         args="key value:string", key_flags="RW access update", doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`SET` with the `!GET` argument", events="new set")
def getset(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    key = argv[1]
    old = _as_reply(db.lookup_read(key))
    if db.lookup_write(key) is None:
        add_new_key(c, db, key, argv[2])
    else:
        db.set(key, argv[2])
    c.keyspace.changed(db, key, b"set", "$")
    propagate_as(c, [b"SET", key, argv[2]])
    return old


# ----------------------------------------------------------------------------- MGET / MSET


@command("mget", -2, "readonly fast", (1, -1, 1), **STR, summary="Atomically returns the string values of one or "
         "more keys.", complexity="O(N) where N is the number of keys to retrieve.", args="key...",
         key_flags="RO access", tips="request_policy:multi_shard")
def mget(c: Any, argv: list[bytes]) -> Any:
    lookup = c.db.lookup_read
    out: list[Any] = []
    for key in argv[1:]:
        value = lookup(key)
        t = type(value)
        if t is bytes:
            out.append(value)
        elif t is bytearray:
            out.append(bytes(value))
        else:
            out.append(None)
    return out


def _mset(c: Any, argv: list[bytes], nx: bool) -> Any:
    if len(argv) % 2 == 0:
        raise CommandError(f"wrong number of arguments for '{'msetnx' if nx else 'mset'}' command")
    db = c.db
    ks = c.keyspace
    if nx:
        for j in range(1, len(argv), 2):
            if db.lookup_write(argv[j]) is not None:
                return 0
    lookup, overwrite, changed = db.lookup_write, db.set, ks.changed
    pairs = iter(argv)
    next(pairs)
    for key, value in zip(pairs, pairs, strict=False):  # argc parity checked above
        if lookup(key) is None:
            db.add(key, value)
            if ks.notify_flags:
                ks.notify(db.index, "n", b"new", key)
        else:
            overwrite(key, value)
        changed(db, key, b"set", "$")
    return 1 if nx else OK


@command("mset", -3, "write denyoom", (1, -1, 2), **STR, since="1.0.1",
         summary="Atomically creates or modifies the string values of one or more keys.",
         complexity="O(N) where N is the number of keys to set.", args="data=(key value:string)...",
         key_flags="OW update", tips="request_policy:multi_shard response_policy:all_succeeded", events="new set")
def mset(c: Any, argv: list[bytes]) -> Any:
    return _mset(c, argv, False)


@command("msetnx", -3, "write denyoom", (1, -1, 2), **STR, since="1.0.1",
         summary="Atomically modifies the string values of one or more keys only when all keys don't exist.",
         complexity="O(N) where N is the number of keys to set.", args="data=(key value:string)...",
         key_flags="OW insert", events="new set")
def msetnx(c: Any, argv: list[bytes]) -> Any:
    return _mset(c, argv, True)


# ----------------------------------------------------------------------------- counters


def _incr_by(c: Any, key: bytes, delta: int) -> int:
    """``incrDecrCommand``: add ``delta`` to the integer at ``key`` (TTL kept)."""
    db = c.db
    old = db.lookup_write(key)
    if old is None:
        value = delta
    else:
        t = type(old)
        if t is not bytes and t is not bytearray:
            raise _wrongtype()
        current = parse_int64(old)
        if current is None:
            raise CommandError(NOT_INTEGER)
        value = current + delta
        if value > LLONG_MAX or value < LLONG_MIN:
            raise CommandError(OVERFLOW)
    text = b"%d" % value
    if old is None:
        add_new_key(c, db, key, text)
    else:
        db.set(key, text, keep_ttl=True)
    c.keyspace.changed(db, key, b"incrby", "$")
    return value


_COUNTER = {"complexity": "O(1)", "key_flags": "RW access update", "events": "new incrby"}


@command("incr", 2, "write denyoom fast", (1, 1, 1), **STR, **_COUNTER, args="key",
         summary="Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.")
def incr(c: Any, argv: list[bytes]) -> Any:
    return _incr_by(c, argv[1], 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1), **STR, **_COUNTER, args="key",
         summary="Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.")
def decr(c: Any, argv: list[bytes]) -> Any:
    return _incr_by(c, argv[1], -1)


@command("incrby", 3, "write denyoom fast", (1, 1, 1), **STR, **_COUNTER, args="key increment:integer",
         summary="Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't "
                 "exist.")
def incrby(c: Any, argv: list[bytes]) -> Any:
    return _incr_by(c, argv[1], to_int(argv[2]))


@command("decrby", 3, "write denyoom fast", (1, 1, 1), **STR, **_COUNTER, args="key decrement:integer",
         summary="Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't "
                 "exist.")
def decrby(c: Any, argv: list[bytes]) -> Any:
    delta = to_int(argv[2])
    if delta == LLONG_MIN:
        raise CommandError("decrement would overflow")
    return _incr_by(c, argv[1], -delta)


@command("incrbyfloat", 3, "write denyoom fast", (1, 1, 1), **STR, since="2.6.0", args="key increment:double",
         summary="Increment the floating point value of a key by a number. Uses 0 as initial value if the key "
                 "doesn't exist.", key_flags="RW access update", events="new incrbyfloat")
def incrbyfloat(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    key = argv[1]
    old = db.lookup_write(key)
    if old is None:
        current: Any = 0
    else:
        if type(old) is not bytes and type(old) is not bytearray:
            raise _wrongtype()
        current = parse_long_double(old)
        if current is None:
            raise CommandError(NOT_FLOAT)
    increment = parse_long_double(argv[2])
    if increment is None:
        raise CommandError(NOT_FLOAT)
    try:
        text = _format_ld(long_double_sum(current, increment))
    except NotFinite:
        raise CommandError("increment would produce NaN or Infinity") from None
    if old is None:
        add_new_key(c, db, key, text)
    else:
        db.set(key, text, keep_ttl=True)
    c.keyspace.changed(db, key, b"incrbyfloat", "$")
    # as SET of the result, so float formatting never differs on a replica or an AOF reload
    propagate_as(c, [b"SET", key, text, b"KEEPTTL"])
    return text


# ----------------------------------------------------------------------------- APPEND / STRLEN / ranges


@command("append", 3, "write denyoom fast", (1, 1, 1), **STR, since="2.0.0", args="key value:string",
         summary="Appends a string to the value of a key. Creates the key if it doesn't exist.",
         complexity="O(1). The amortized time complexity is O(1) assuming the appended value is small and the "
                    "already present value is of any size, since the dynamic string library used by Redis will "
                    "double the free space available on every reallocation.",
         key_flags="RW insert", events="new append")
def append(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    key = argv[1]
    suffix = argv[2]
    old = db.lookup_write(key)
    if old is None:
        add_new_key(c, db, key, suffix)  # tryObjectEncoding'd like SET: int/embstr/raw by content
        total = len(suffix)
    else:
        t = type(old)
        if t is bytearray:
            check_string_length(c, len(old) + len(suffix))
            old += suffix
            total = len(old)
        elif t is bytes:
            check_string_length(c, len(old) + len(suffix))
            grown = bytearray(old)
            grown += suffix
            db.set(key, grown, keep_ttl=True)
            total = len(grown)
        else:
            raise _wrongtype()
    c.keyspace.changed(db, key, b"append", "$")
    return total


@command("strlen", 2, "readonly fast", (1, 1, 1), **STR, since="2.2.0", summary="Returns the length of a string value.",
         args="key", key_flags="RO")
def strlen(c: Any, argv: list[bytes]) -> Any:
    value = c.db.lookup_read(argv[1])
    if value is None:
        return 0
    if type(value) is not bytes and type(value) is not bytearray:
        raise _wrongtype()
    return len(value)


_RANGE_COMPLEXITY = ("O(N) where N is the length of the returned string. The complexity is ultimately determined by "
                     "the returned length, but because creating a substring from an existing string is very cheap, "
                     "it can be considered O(1) for small strings.")


def _getrange(c: Any, argv: list[bytes]) -> Any:
    start = to_int(argv[2])
    end = to_int(argv[3])
    value = c.db.lookup_read(argv[1])
    if value is None:
        return b""
    if type(value) is not bytes and type(value) is not bytearray:
        raise _wrongtype()
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return b""
    return bytes(value[start : end + 1])


@command("getrange", 4, "readonly", (1, 1, 1), **STR, since="2.4.0",
         summary="Returns a substring of the string stored at a key.", complexity=_RANGE_COMPLEXITY,
         args="key start:integer end:integer", key_flags="RO access")
def getrange(c: Any, argv: list[bytes]) -> Any:
    return _getrange(c, argv)


@command("substr", 4, "readonly", (1, 1, 1), **STR, summary="Returns a substring from a string value.",
         complexity=_RANGE_COMPLEXITY, args="key start:integer end:integer", key_flags="RO access",
         doc_flags="deprecated", deprecated_since="2.0.0", replaced_by="`GETRANGE`")
def substr(c: Any, argv: list[bytes]) -> Any:
    return _getrange(c, argv)


@command("setrange", 4, "write denyoom", (1, 1, 1), **STR, since="2.2.0",
         summary="Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
         complexity="O(1), not counting the time taken to copy the new string in place. Usually, this string is very "
                    "small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length "
                    "of the value argument.",
         args="key offset:integer value:string", key_flags="RW update", events="new setrange")
def setrange(c: Any, argv: list[bytes]) -> Any:
    offset = to_int(argv[2])
    if offset < 0:
        raise CommandError("offset is out of range")
    patch = argv[3]
    db = c.db
    key = argv[1]
    old = db.lookup_write(key)
    end = offset + len(patch)
    if old is None:
        if not patch:
            return 0
        check_string_length(c, end)
        buf = bytearray(end)
        buf[offset:end] = patch
        add_new_key(c, db, key, buf)
    else:
        t = type(old)
        if t is not bytes and t is not bytearray:
            raise _wrongtype()
        if not patch:
            return len(old)
        check_string_length(c, end)
        if t is bytes:
            buf = bytearray(old)
            db.set(key, buf, keep_ttl=True)
        else:
            buf = old
        if len(buf) < offset:
            buf.extend(bytes(offset - len(buf)))
        buf[offset:end] = patch
    c.keyspace.changed(db, key, b"setrange", "$")
    return len(buf)


# ----------------------------------------------------------------------------- LCS


def _bit_rows(x: bytes | bytearray, y: bytes | bytearray) -> tuple[list[int], dict[int, int]]:
    """Bit-parallel LCS table (Allison-Dix / Hyyrö): one ``len(y)``-bit row per prefix of ``x``.

    Row ``i`` (0…len(x)) has a 0 bit at position k where LCS(x[:i], y[:k+1]) exceeds
    LCS(x[:i], y[:k]), so LCS(x[:i], y[:k]) = k - popcount(row_i & (2^k - 1)).
    Also returns, for every byte of ``x``, the mask of its positions in ``y``.
    """
    width = len(y)
    full = (1 << width) - 1
    reversed_y = bytes(y)[::-1]
    masks: dict[int, int] = {}
    rows = [full]
    v = full
    for ch in x:
        mask = masks.get(ch)
        if mask is None:
            table = bytes(49 if byte == ch else 48 for byte in range(256))  # "1" where y[k] == ch
            mask = int(reversed_y.translate(table) or b"0", 2)
            masks[ch] = mask
        u = v & mask
        v = ((v + u) | (v - u)) & full
        rows.append(v)
    return rows, masks


def lcs_length(a: bytes | bytearray, b: bytes | bytearray) -> int:
    if len(a) > len(b):
        a, b = b, a
    v = (1 << len(b)) - 1
    full = v
    reversed_b = bytes(b)[::-1]
    masks: dict[int, int] = {}
    for ch in a:
        mask = masks.get(ch)
        if mask is None:
            mask = masks[ch] = int(reversed_b.translate(bytes(49 if x == ch else 48 for x in range(256))) or b"0", 2)
        u = v & mask
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def lcs_walk(
    a: bytes | bytearray, b: bytes | bytearray, minmatchlen: int = 0
) -> tuple[bytes, list[tuple[int, int, int, int, int]], int]:
    """Redis's LCS reconstruction: (lcs string, match ranges, lcs length).

    The walk starts at the end of both strings; on different bytes it steps in
    ``a`` only when LCS(i-1, j) > LCS(i, j-1), else in ``b`` (Redis's tie-break).
    Ranges are (start_a, end_a, start_b, end_b, length), last match first, keeping
    those of at least ``minmatchlen`` bytes (all when 0).

    The table is kept as bit rows over the longer string, one per byte of the
    shorter one; runs of steps along the longer string are taken in one big-int
    search, so the work is O(len(a) * len(b) / word) however lopsided the inputs.
    """
    n, m = len(a), len(b)
    transposed = n > m
    if transposed:
        rows, masks = _bit_rows(b, a)  # rows[j] over a: LCS(i, j) = i - popcount(rows[j] & (2^i - 1))
        total = n - rows[m].bit_count()
    else:
        rows, masks = _bit_rows(a, b)  # rows[i] over b: LCS(i, j) = j - popcount(rows[i] & (2^j - 1))
        total = m - rows[n].bit_count()
    i, j = n, m
    cur = total  # LCS(i, j) for the current cell
    out = bytearray(total)
    ranges: list[tuple[int, int, int, int, int]] = []
    unset = n  # arange_start == alen means "no range open"
    a_start, a_end, b_start, b_end = unset, 0, 0, 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out[cur - 1] = a[i - 1]
            if a_start == unset:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            cur -= 1
            i -= 1
            j -= 1
        else:
            if a_start != unset:
                emit = True
            if not transposed:
                row = rows[i]
                if (row >> (j - 1)) & 1:  # LCS(i, j-1) == LCS(i, j): step in b ...
                    j -= 1
                    # ... and keep stepping while the bytes differ and the value stays the same.
                    j = ((masks[a[i - 1]] | ~row) & ((1 << j) - 1)).bit_length()
                else:
                    up = j - (rows[i - 1] & ((1 << j) - 1)).bit_count()  # LCS(i-1, j)
                    if up > cur - 1:
                        i -= 1
                    else:
                        j -= 1
                        cur -= 1
            else:
                row = rows[j]
                left = i - (rows[j - 1] & ((1 << i) - 1)).bit_count()  # LCS(i, j-1)
                if (row >> (i - 1)) & 1 and left < cur:  # LCS(i-1, j) == cur > LCS(i, j-1): step in a ...
                    i -= 1
                    # ... and keep stepping while the bytes differ and LCS(i-1, j) stays the same
                    # (LCS(i, j-1) then stays cur - 1, so the tie-break keeps choosing a).
                    i = ((masks[b[j - 1]] | ~row) & ((1 << i) - 1)).bit_length()
                else:
                    j -= 1
                    cur = left
        if emit:
            length = a_end - a_start + 1
            if minmatchlen == 0 or length >= minmatchlen:
                ranges.append((a_start, a_end, b_start, b_end, length))
            a_start = unset
    return bytes(out), ranges, total


@command("lcs", -3, "readonly", (1, 2, 1), **STR, since="7.0.0", summary="Finds the longest common substring.",
         complexity="O(N*M) where N and M are the lengths of s1 and s2, respectively",
         args="key1:key key2:key [LEN] [IDX] [MINMATCHLEN min-match-len:integer] [WITHMATCHLEN]",
         key_flags="RO access")
def lcs(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    a = db.lookup_read(argv[1])
    b = db.lookup_read(argv[2])
    for value in (a, b):
        if value is not None and type(value) is not bytes and type(value) is not bytearray:
            raise CommandError("The specified keys must contain string values")
    a = a if a is not None else b""
    b = b if b is not None else b""
    want_len = want_idx = with_len = False
    minmatchlen = 0
    j = 3
    n = len(argv)
    while j < n:
        opt = argv[j].lower()
        if opt == b"idx":
            want_idx = True
        elif opt == b"len":
            want_len = True
        elif opt == b"withmatchlen":
            with_len = True
        elif opt == b"minmatchlen" and j + 1 < n:
            minmatchlen = max(to_int(argv[j + 1]), 0)
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    if want_len and want_idx:
        raise CommandError("If you want both the length and indexes, please just use IDX.")
    if len(a) >= 0xFFFFFFFF - 1 or len(b) >= 0xFFFFFFFF - 1:
        raise CommandError("String too long for LCS")
    if (len(a) + 1) * (len(b) + 1) * 4 > c.server.config["proto-max-bulk-len"]:
        raise CommandError("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    if want_len:
        return lcs_length(a, b)
    text, ranges, total = lcs_walk(a, b, minmatchlen)
    if not want_idx:
        return text
    matches: list[Any] = []
    for a_start, a_end, b_start, b_end, length in ranges:
        item: list[Any] = [[a_start, a_end], [b_start, b_end]]
        if with_len:
            item.append(length)
        matches.append(item)
    return Map([(b"matches", matches), (b"len", total)])
