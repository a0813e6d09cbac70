"""List commands, including the blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP).

Each handler follows the argument-checking order of Redis 7.4's ``t_list.c`` so the
first error reported is the same one, keeps ``ListValue``'s listpack/quicklist shape
up to date through its mutators (``list-max-listpack-size`` is read per command),
and reports every keyspace event in Redis's order.

A blocking command that finds nothing returns ``dispatch.Blocked``; its ``retry``
re-runs the pop against the keys when one becomes ready and returns the reply, or
None to keep waiting.  Inside MULTI (``server.in_exec``) they answer as timed out.

Also home of the small helpers the collection families share: key-spec builders
and Redis's ``getLongFromObjectOrReply`` family of integer parsers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dumpling import accel
from dumpling.commands.common import (
    LONG_MAX,
    check_type,
    parse_mpop,
    parse_timeout,
    to_int,
    to_positive_long,
    to_range_long,
)
from dumpling.commands.registry import ORIGINAL, command
from dumpling.datatypes.lists import ListValue, lp_int_value
from dumpling.dispatch import Blocked
from dumpling.errors import SYNTAX, WRONGTYPE, CommandError
from dumpling.persistence.propagation import propagate_as
from dumpling.protocol import NULL_ARRAY, OK, ErrorReply, Raw

LIST = {"group": "list"}


# ----------------------------------------------------------------------------- shared helpers


def key_spec(
    flags: str,
    index: int | None = 1,
    lastkey: int = 0,
    keystep: int = 1,
    limit: int = 0,
    keynum: tuple[int, int, int] | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """One COMMAND INFO key specification (``index=None``: unknown begin/find)."""
    spec: dict[str, Any] = {}
    if notes is not None:
        spec["notes"] = notes
    spec["flags"] = flags.split()
    if index is None:
        spec["begin_search"] = {"type": "unknown", "spec": {}}
        spec["find_keys"] = {"type": "unknown", "spec": {}}
        return spec
    spec["begin_search"] = {"type": "index", "spec": {"index": index}}
    if keynum is not None:
        spec["find_keys"] = {
            "type": "keynum",
            "spec": {"keynumidx": keynum[0], "firstkey": keynum[1], "keystep": keynum[2]},
        }
    else:
        spec["find_keys"] = {"type": "range", "spec": {"lastkey": lastkey, "keystep": keystep, "limit": limit}}
    return spec


def arity_error(name: str) -> CommandError:
    return CommandError(f"wrong number of arguments for '{name}' command")


def _fill(c: Any) -> int:
    return c.server.config.values["list-max-listpack-size"]


def _where(arg: bytes) -> bool:
    """LEFT/RIGHT -> head?"""
    low = arg.lower()
    if low == b"left":
        return True
    if low == b"right":
        return False
    raise CommandError(SYNTAX)


def _create(c: Any, db: Any, key: bytes) -> ListValue:
    value = ListValue()
    db.add(key, value)
    c.keyspace.notify(db.index, "n", b"new", key)
    return value


def _elements_removed(c: Any, db: Any, key: bytes, value: ListValue, head: bool, count: int = 1) -> None:
    """``listElementsRemoved``: pop event, delete an emptied list, else maybe shrink back;
    ``count`` elements popped count as that many changes."""
    ks = c.keyspace
    ks.changed(db, key, b"lpop" if head else b"rpop", "l", dirty=count)
    if not value.items:
        db.delete(key)
        ks.changed(db, key, b"del", "g", dirty=0)
    else:
        value.shrunk(_fill(c))


def _move_push(c: Any, db: Any, key: bytes, dst: ListValue | None, element: bytes, head: bool,
                          counted: int) -> ListValue:
    """``lmoveHandlePush``."""
    if dst is None:
        dst = _create(c, db, key)
    dst.push([element], head, _fill(c), counted)
    c.keyspace.changed(db, key, b"lpush" if head else b"rpush", "l", dirty=0)  # (the pop counts the move)
    ks = c.keyspace
    if ks.blocked_keys:
        ks.signal_ready(db, key)
    return dst


# ----------------------------------------------------------------------------- push / pop


def _push(c: Any, argv: list[bytes], head: bool, only_existing: bool) -> Any:
    # (one element on an existing list also runs in C: dumpling/_collections.c native_push; change both)
    db = c.db
    key = argv[1]
    value = check_type(db.lookup_write(key), ListValue)
    if value is None:
        if only_existing:
            return 0
        value = _create(c, db, key)
    value.push(argv[2:], head, _fill(c))
    c.keyspace.changed(db, key, b"lpush" if head else b"rpush", "l", dirty=len(argv) - 2)
    return len(value)


_PUSH_ARGS = "key element:string..."
_PUSH_KS = [key_spec("RW INSERT")]


@command("lpush", -3, "write denyoom fast", (1, 1, 1), **LIST, since="1.0.0",
         summary="Prepends one or more elements to a list. Creates the key if it doesn't exist.",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called with "
         "multiple arguments.", args=_PUSH_ARGS, key_specs=_PUSH_KS,
         history=(("2.4.0", "Accepts multiple `element` arguments."),), events="lpush")
def lpush(c: Any, argv: list[bytes]) -> Any:
    return _push(c, argv, True, False)


@command("rpush", -3, "write denyoom fast", (1, 1, 1), **LIST, since="1.0.0",
         summary="Appends one or more elements to a list. Creates the key if it doesn't exist.",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called with "
         "multiple arguments.", args=_PUSH_ARGS, key_specs=_PUSH_KS,
         history=(("2.4.0", "Accepts multiple `element` arguments."),), events="rpush")
def rpush(c: Any, argv: list[bytes]) -> Any:
    return _push(c, argv, False, False)


@command("lpushx", -3, "write denyoom fast", (1, 1, 1), **LIST, since="2.2.0",
         summary="Prepends one or more elements to a list only when the list exists.",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called with "
         "multiple arguments.", args=_PUSH_ARGS, key_specs=_PUSH_KS,
         history=(("4.0.0", "Accepts multiple `element` arguments."),), events="lpush")
def lpushx(c: Any, argv: list[bytes]) -> Any:
    return _push(c, argv, True, True)


@command("rpushx", -3, "write denyoom fast", (1, 1, 1), **LIST, since="2.2.0",
         summary="Appends an element to a list only when the list exists.",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called with "
         "multiple arguments.", args=_PUSH_ARGS, key_specs=_PUSH_KS,
         history=(("4.0.0", "Accepts multiple `element` arguments."),), events="rpush")
def rpushx(c: Any, argv: list[bytes]) -> Any:
    return _push(c, argv, False, True)


def _pop(c: Any, argv: list[bytes], head: bool) -> Any:
    # (no count, a list that keeps an element: also in C, dumpling/_collections.c native_pop; change both)
    if len(argv) > 3:
        raise arity_error("lpop" if head else "rpop")
    count = to_positive_long(argv[2]) if len(argv) == 3 else None
    db = c.db
    key = argv[1]
    value = check_type(db.lookup_write(key), ListValue)
    if value is None:
        return NULL_ARRAY if count is not None else None
    if count == 0:
        return []
    popped = value.pop(1 if count is None else count, head, _fill(c))
    _elements_removed(c, db, key, value, head, len(popped))
    return popped[0] if count is None else popped


_POP_KS = [key_spec("RW ACCESS DELETE")]


@command("lpop", -2, "write fast", (1, 1, 1), **LIST, since="1.0.0",
         summary="Returns the first elements in a list after removing it. Deletes the list if the last element "
         "was popped.", complexity="O(N) where N is the number of elements returned", args="key [count:integer@6.2.0]",
         key_specs=_POP_KS, history=(("6.2.0", "Added the `count` argument."),), events="lpop del")
def lpop(c: Any, argv: list[bytes]) -> Any:
    return _pop(c, argv, True)


@command("rpop", -2, "write fast", (1, 1, 1), **LIST, since="1.0.0",
         summary="Returns and removes the last elements of a list. Deletes the list if the last element was "
         "popped.", complexity="O(N) where N is the number of elements returned", args="key [count:integer@6.2.0]",
         key_specs=_POP_KS, history=(("6.2.0", "Added the `count` argument."),), events="rpop del")
def rpop(c: Any, argv: list[bytes]) -> Any:
    return _pop(c, argv, False)


# ----------------------------------------------------------------------------- reads


@command("llen", 2, "readonly fast", (1, 1, 1), **LIST, since="1.0.0", summary="Returns the length of a list.",
         args="key", key_specs=[key_spec("RO")])
def llen(c: Any, argv: list[bytes]) -> Any:
    value = check_type(c.db.lookup_read(argv[1]), ListValue)
    return 0 if value is None else len(value)


@command("lrange", 4, "readonly", (1, 1, 1), **LIST, since="1.0.0", summary="Returns a range of elements from a list.",
         complexity="O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end "
         "(HEAD or TAIL) for large lists; and N is the number of elements in the specified range.",
         args="key start:integer stop:integer", key_specs=[key_spec("RO ACCESS")])
def lrange(c: Any, argv: list[bytes]) -> Any:
    start = to_int(argv[2])
    end = to_int(argv[3])
    value = check_type(c.db.lookup_read(argv[1]), ListValue)
    if value is None:
        return []
    if not c.from_script:  # the reply written from the packed entries (a script wants values)
        wire = value.range_reply(start, end, _WIRE_MOST)
        if wire is not None:
            return Raw(wire)
    return value.range(start, end)  # a big one: encoded against the reply budget (replybudget)


_WIRE_MOST = 4096  # LRANGE replies of more elements go as a list, encoded within the reply budget


@command("lindex", 3, "readonly", (1, 1, 1), **LIST, since="1.0.0", summary="Returns an element from a list by its index.",
         complexity="O(N) where N is the number of elements to traverse to get to the element at index. This makes "
         "asking for the first or the last element of the list O(1).", args="key index:integer",
         key_specs=[key_spec("RO ACCESS")])
def lindex(c: Any, argv: list[bytes]) -> Any:
    value = check_type(c.db.lookup_read(argv[1]), ListValue)
    if value is None:
        return None
    return value.index(to_int(argv[2]))


@command("lpos", -3, "readonly", (1, 1, 1), **LIST, since="6.0.6",
         summary="Returns the index of matching elements in a list.",
         complexity="O(N) where N is the number of elements in the list, for the average case. When searching for "
         "elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may "
         "run in constant time.",
         args="key element:string [RANK rank:integer] [COUNT num-matches:integer] [MAXLEN len:integer]",
         key_specs=[key_spec("RO ACCESS")])
def lpos(c: Any, argv: list[bytes]) -> Any:
    element = argv[2]
    rank, count, maxlen = 1, -1, 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        more = len(argv) - 1 - j
        if opt == b"rank" and more:
            j += 1
            rank = to_range_long(argv[j], -LONG_MAX, LONG_MAX)
            if rank == 0:
                raise CommandError("RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
                                   "or use negative to start from the end of the list")
        elif opt == b"count" and more:
            j += 1
            count = to_positive_long(argv[j], "COUNT can't be negative")
        elif opt == b"maxlen" and more:
            j += 1
            maxlen = to_positive_long(argv[j], "MAXLEN can't be negative")
        else:
            raise CommandError(SYNTAX)
        j += 1
    from_tail = rank < 0
    rank = abs(rank)
    value = check_type(c.db.lookup_read(argv[1]), ListValue)
    if value is None:
        return [] if count != -1 else None
    # one scan over the packed entries, no element read back (RANK r: r - 1 matches skipped)
    found: list[int] = value.items.find(element, from_tail, rank - 1, 1 if count == -1 else count, maxlen)
    if count != -1:
        return found
    return found[0] if found else None


# ----------------------------------------------------------------------------- in-place writes


@command("lset", 4, "write denyoom", (1, 1, 1), **LIST, since="1.0.0",
         summary="Sets the value of an element in a list by its index.",
         complexity="O(N) where N is the length of the list. Setting either the first or the last element of the "
         "list is O(1).", args="key index:integer element:string", key_specs=[key_spec("RW UPDATE")], events="lset")
def lset(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    value = check_type(db.lookup_write(argv[1]), ListValue)
    if value is None:
        raise CommandError("no such key")
    index = to_int(argv[2])
    if not value.replace(index, argv[3], _fill(c)):
        raise CommandError("index out of range")
    c.keyspace.changed(db, argv[1], b"lset", "l")
    return OK


@command("linsert", 5, "write denyoom", (1, 1, 1), **LIST, since="2.2.0",
         summary="Inserts an element before or after another element in a list.",
         complexity="O(N) where N is the number of elements to traverse before seeing the value pivot. This means "
         "that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere "
         "on the right end (tail) is O(N).", args="key where=(BEFORE | AFTER) pivot:string element:string",
         key_specs=[key_spec("RW INSERT")], events="linsert")
def linsert(c: Any, argv: list[bytes]) -> Any:
    where = argv[2].lower()
    if where not in (b"after", b"before"):
        raise CommandError(SYNTAX)
    db = c.db
    value = check_type(db.lookup_write(argv[1]), ListValue)
    if value is None:
        return 0
    result = value.insert(argv[3], argv[4], where == b"after", _fill(c))
    if result != -1:
        c.keyspace.changed(db, argv[1], b"linsert", "l")
    return result


@command("lrem", 4, "write", (1, 1, 1), **LIST, since="1.0.0",
         summary="Removes elements from a list. Deletes the list if the last element was removed.",
         complexity="O(N+M) where N is the length of the list and M is the number of elements removed.",
         args="key count:integer element:string", key_specs=[key_spec("RW DELETE")], events="lrem del")
def lrem(c: Any, argv: list[bytes]) -> Any:
    count = to_range_long(argv[2], -LONG_MAX, LONG_MAX)
    db = c.db
    key = argv[1]
    value = check_type(db.lookup_write(key), ListValue)
    if value is None:
        return 0
    removed = value.remove(count, argv[3], _fill(c))
    if removed:
        ks = c.keyspace
        ks.changed(db, key, b"lrem", "l", dirty=removed)
        if not value.items:
            db.delete(key)
            ks.changed(db, key, b"del", "g", dirty=0)
        else:
            value.shrunk(_fill(c))
    return removed


@command("ltrim", 4, "write", (1, 1, 1), **LIST, since="1.0.0",
         summary="Removes elements from both ends a list. Deletes the list if all elements were trimmed.",
         complexity="O(N) where N is the number of elements to be removed by the operation.",
         args="key start:integer stop:integer", key_specs=[key_spec("RW DELETE")], events="ltrim del")
def ltrim(c: Any, argv: list[bytes]) -> Any:
    start = to_int(argv[2])
    end = to_int(argv[3])
    db = c.db
    key = argv[1]
    value = check_type(db.lookup_write(key), ListValue)
    if value is None:
        return OK
    before = len(value)
    value.trim(start, end, _fill(c))
    ks = c.keyspace
    ks.changed(db, key, b"ltrim", "l", dirty=before - len(value))
    if not value.items:
        db.delete(key)
        ks.changed(db, key, b"del", "g", dirty=0)
    else:
        value.shrunk(_fill(c))
    return OK


# ----------------------------------------------------------------------------- moves


def _lmove(c: Any, src_key: bytes, dst_key: bytes, head_from: bool, head_to: bool) -> Any:
    """``lmoveGenericCommand`` once the source is known to exist (or not)."""
    db = c.db
    src = check_type(db.lookup_write(src_key), ListValue)
    if src is None:
        return None
    dst = check_type(db.lookup_write(dst_key), ListValue)
    was_quicklist = src.encoding == "quicklist"
    element = src.pop(1, head_from, _fill(c))[0]
    # A quicklist pops integers as integer objects, which the growing check does not count.
    counted = 0 if was_quicklist and lp_int_value(element) is not None else len(element)
    _move_push(c, db, dst_key, dst, element, head_to, counted)
    _elements_removed(c, db, src_key, src, head_from)
    return element


_MOVE_KS = [key_spec("RW ACCESS DELETE"), key_spec("RW INSERT", index=2)]


@command("lmove", 5, "write denyoom", (1, 2, 1), **LIST, since="6.2.0",
         summary="Returns an element after popping it from one list and pushing it to another. Deletes the list if "
         "the last element was moved.", complexity="O(1)",
         args="source:key destination:key wherefrom=(LEFT | RIGHT) whereto=(LEFT | RIGHT)", key_specs=_MOVE_KS,
         events="lpush rpush lpop rpop del")
def lmove(c: Any, argv: list[bytes]) -> Any:
    head_from = _where(argv[3])
    head_to = _where(argv[4])
    return _lmove(c, argv[1], argv[2], head_from, head_to)


@command("rpoplpush", 3, "write denyoom", (1, 2, 1), **LIST, since="1.2.0",
         summary="Returns the last element of a list after removing and pushing it to another list. Deletes the "
         "list if the last element was popped.", complexity="O(1)", args="source:key destination:key",
         key_specs=_MOVE_KS, doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`LMOVE` with the `RIGHT` and `LEFT` arguments", events="lpush rpop del")
def rpoplpush(c: Any, argv: list[bytes]) -> Any:
    return _lmove(c, argv[1], argv[2], False, True)


# ----------------------------------------------------------------------------- multi-key pops


def _pop_first(c: Any, keys: list[bytes], head: bool, count: int, strict: bool) -> Any:
    """Pop from the first non-empty list of ``keys``: ``[key, element]`` (count -1) or
    ``[key, [elements]]``; None when every key is missing.  With ``strict`` a key of
    another type met first is WRONGTYPE; otherwise it is skipped.
    """
    db = c.db
    for key in keys:
        value = db.lookup_write(key)
        if value is None:
            continue
        if type(value) is not ListValue:
            if strict:
                raise CommandError(WRONGTYPE)
            continue
        if not value.items:
            continue
        popped = value.pop(1 if count == -1 else count, head, _fill(c))
        _elements_removed(c, db, key, value, head, len(popped))
        # propagated as the plain pop it was: [LR]POP key, or [LR]POP key <how many> (LMPOP, BLMPOP)
        pop = [b"LPOP" if head else b"RPOP", key]
        propagate_as(c, pop if count == -1 else [*pop, b"%d" % len(popped)])
        return [key, popped[0]] if count == -1 else [key, popped]
    return None


def _mpop_keys(numkeys_at: int) -> Callable[[list[bytes]], list[int]]:
    def getkeys(argv: list[bytes]) -> list[int]:
        numkeys = to_int(argv[numkeys_at]) if numkeys_at < len(argv) else -1
        if numkeys < 1 or numkeys_at + numkeys >= len(argv):
            raise ValueError("bad numkeys")
        return list(range(numkeys_at + 1, numkeys_at + 1 + numkeys))

    return getkeys


@command("lmpop", -4, "write", **LIST, since="7.0.0",
         summary="Returns multiple elements from a list after removing them. Deletes the list if the last element "
         "was popped.",
         complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned.",
         args="numkeys:integer key... where=(LEFT | RIGHT) [COUNT count:integer]", getkeys=_mpop_keys(1),
         key_specs=[key_spec("RW ACCESS DELETE", keynum=(0, 1, 1))], events="lpop rpop del")
def lmpop(c: Any, argv: list[bytes]) -> Any:
    keys, head, count = parse_mpop(argv, 1, b"left", b"right")
    reply = _pop_first(c, keys, head, count, strict=True)
    return NULL_ARRAY if reply is None else reply


# ----------------------------------------------------------------------------- blocking


def _block_or_null(c: Any, keys: list[bytes], timeout: float, retry: Callable[[], Any]) -> Any:
    if c.server.in_exec:
        return NULL_ARRAY
    return Blocked(keys, timeout, retry)


def _blocking_pop(c: Any, keys: list[bytes], head: bool, timeout: float, count: int) -> Any:
    reply = _pop_first(c, keys, head, count, strict=True)
    if reply is not None:
        return reply

    def retry() -> Any:
        # Redis 7.2+ wakes the client only for a key that now holds a list, then re-runs
        # the command: keys are tried in order again, so an earlier key of another type
        # is a WRONGTYPE error (7.0 served the ready key instead).  A key past its TTL counts as
        # missing and stays for a command to delete (Redis looks with LOOKUP_NOEFFECTS).
        db = c.db
        if not any(type(db.data.get(key)) is ListValue and not c.keyspace.is_expired(db, key) for key in keys):
            return None
        try:
            return _pop_first(c, keys, head, count, strict=True)
        except CommandError as e:
            return ErrorReply(e.message)

    return _block_or_null(c, keys, timeout, retry)


_BPOP_KS = [key_spec("RW ACCESS DELETE", lastkey=-2)]
_BPOP_HISTORY = (("6.0.0", "`timeout` is interpreted as a double instead of an integer."),)


@command("blpop", -3, "write blocking", (1, -2, 1), **LIST, since="2.0.0",
         summary="Removes and returns the first element in a list. Blocks until an element is available otherwise. "
         "Deletes the list if the last element was popped.", complexity="O(N) where N is the number of provided keys.",
         args="key... timeout:double", key_specs=_BPOP_KS, history=_BPOP_HISTORY, events="lpop del")
def blpop(c: Any, argv: list[bytes]) -> Any:
    timeout = parse_timeout(argv[-1], c.keyspace.now)
    return _blocking_pop(c, argv[1:-1], True, timeout, -1)


@command("brpop", -3, "write blocking", (1, -2, 1), **LIST, since="2.0.0",
         summary="Removes and returns the last element in a list. Blocks until an element is available otherwise. "
         "Deletes the list if the last element was popped.", complexity="O(N) where N is the number of provided keys.",
         args="key... timeout:double", key_specs=_BPOP_KS, history=_BPOP_HISTORY, events="rpop del")
def brpop(c: Any, argv: list[bytes]) -> Any:
    timeout = parse_timeout(argv[-1], c.keyspace.now)
    return _blocking_pop(c, argv[1:-1], False, timeout, -1)


@command("blmpop", -5, "write blocking", **LIST, since="7.0.0",
         summary="Pops the first element from one of multiple lists. Blocks until an element is available otherwise. "
         "Deletes the list if the last element was popped.",
         complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned.",
         args="timeout:double numkeys:integer key... where=(LEFT | RIGHT) [COUNT count:integer]",
         getkeys=_mpop_keys(2), key_specs=[key_spec("RW ACCESS DELETE", index=2, keynum=(0, 1, 1))],
         events="lpop rpop del")
def blmpop(c: Any, argv: list[bytes]) -> Any:
    keys, head, count = parse_mpop(argv, 2, b"left", b"right")
    timeout = parse_timeout(argv[1], c.keyspace.now)
    return _blocking_pop(c, keys, head, timeout, count)


def _blocking_move(c: Any, src_key: bytes, dst_key: bytes, head_from: bool, head_to: bool, timeout: float,
                   form: list[bytes]) -> Any:
    """BLMOVE / BRPOPLPUSH; a move made propagates as ``form`` (LMOVE / RPOPLPUSH)."""
    db = c.db
    src = check_type(db.lookup_write(src_key), ListValue)
    if src is not None:
        moved = _lmove(c, src_key, dst_key, head_from, head_to)
        propagate_as(c, form)
        return moved
    if c.server.in_exec:
        return None

    def retry() -> Any:
        db = c.db
        if type(db.data.get(src_key)) is not ListValue or c.keyspace.is_expired(db, src_key):
            return None  # (a key past its TTL: missing, not deleted here)
        current = db.lookup_write(src_key)
        if type(current) is not ListValue or not current.items:
            return None
        try:
            moved = _lmove(c, src_key, dst_key, head_from, head_to)
        except CommandError as e:
            return ErrorReply(e.message)
        propagate_as(c, form)
        return moved

    return Blocked([src_key], timeout, retry)


@command("blmove", 6, "write denyoom blocking", (1, 2, 1), **LIST, since="6.2.0",
         summary="Pops an element from a list, pushes it to another list and returns it. Blocks until an element is "
         "available otherwise. Deletes the list if the last element was moved.", complexity="O(1)",
         args="source:key destination:key wherefrom=(LEFT | RIGHT) whereto=(LEFT | RIGHT) timeout:double",
         key_specs=_MOVE_KS, events="lpush rpush lpop rpop del")
def blmove(c: Any, argv: list[bytes]) -> Any:
    head_from = _where(argv[3])
    head_to = _where(argv[4])
    timeout = parse_timeout(argv[5], c.keyspace.now)
    return _blocking_move(c, argv[1], argv[2], head_from, head_to, timeout, [b"LMOVE", *argv[1:5]])


@command("brpoplpush", 4, "write denyoom blocking", (1, 2, 1), **LIST, since="2.2.0",
         summary="Pops an element from a list, pushes it to another list and returns it. Block until an element is "
         "available otherwise. Deletes the list if the last element was popped.", complexity="O(1)",
         args="source:key destination:key timeout:double", key_specs=_MOVE_KS, history=_BPOP_HISTORY,
         doc_flags="deprecated", deprecated_since="6.2.0", replaced_by="`BLMOVE` with the `RIGHT` and `LEFT` arguments",
         events="lpush rpop del")
def brpoplpush(c: Any, argv: list[bytes]) -> Any:
    timeout = parse_timeout(argv[3], c.keyspace.now)
    return _blocking_move(c, argv[1], argv[2], False, True, timeout, [b"RPOPLPUSH", argv[1], argv[2]])


# ----------------------------------------------------------------------------- native handlers


def attach_native_handlers(*names: str) -> None:
    """Give these commands their C handlers from ``dumpling._collections`` (``Command.native``:
    the C request loop offers them a request first; they run it with these handlers' effects
    or decline it to them).  Each family attaches its own at import, as the loop reads
    ``Command.native`` when it caches a lookup."""
    if accel.collections is not None:
        handlers = accel.collections.native_handlers()
        for name in names:
            ORIGINAL[name.encode()].native = handlers[name]


def setup(server: Any) -> None:
    """The C handlers keep the settings they read (``dumpling._collections``): a CONFIG SET has
    them read those again."""
    if accel.collections is not None:
        server.config.listeners.append(accel.collections.settings_changed)


def use_native_handlers(enabled: bool) -> None:
    """Run the C handlers of the list/hash/set writes, or have them decline every call so the
    Python handlers run (tests compare both)."""
    if accel.collections is not None:
        accel.collections.set_native_handlers(enabled)


attach_native_handlers("lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop")
