"""Set commands, and the SSCAN/HSCAN argument parsing and small-collection scan rules.

Handlers follow Redis 7.4's ``t_set.c``: the same argument-checking order, the same
encoding decisions (via ``SetValue``'s intset/listpack/hashtable rules, fed by the
``set-max-*`` settings) and the same member order in replies where the encoding
defines one (intset ascending, listpack insertion order).  The STORE forms build
their result exactly as Redis does (SUNION/SDIFF start from an empty intset,
SINTERSTORE from the smallest source's encoding) so the stored encoding matches.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from dumpling.bigops import WALK_COUNT, WALK_LIST, WALK_RESP2, WALK_RESP3, set_walk
from dumpling.commands.common import LONG_MAX, check_type, glob_match, to_int, to_positive_long, to_range_long
from dumpling.commands.lists import attach_native_handlers, key_spec
from dumpling.commands.registry import command
from dumpling.datatypes.lists import lp_int_value
from dumpling.datatypes.sets import SetLimits, SetValue
from dumpling.errors import SYNTAX, WRONGTYPE, CommandError
from dumpling.persistence.propagation import deletion, propagate_as
from dumpling.protocol import Raw, SetReply
from dumpling.replybudget import bulk_size, repeat_within

SET = {"group": "set"}
_rng = random.Random()


# ----------------------------------------------------------------------------- scanning (shared with HSCAN)

ULLONG_MAX = (1 << 64) - 1


def parse_scan_cursor(arg: bytes) -> int:
    """``parseScanCursorOrReply`` (7.4: strict integer first, then ``strtoull``)."""
    value = lp_int_value(arg)
    if value is not None:
        if value < 0:
            raise CommandError("invalid cursor")
        return value
    text = arg
    i = 0
    while i < len(text) and text[i] in b" \t\n\r\x0b\x0c":
        i += 1
    negative = False
    if i < len(text) and text[i] in b"+-":
        negative = text[i] == 45
        i += 1
    digits = text[i:]
    if not arg or not digits or not digits.isdigit():
        raise CommandError("invalid cursor")
    value = int(digits)
    if value > ULLONG_MAX:
        raise CommandError("invalid cursor")
    return (-value) & ULLONG_MAX if negative else value


def parse_scan_options(argv: list[bytes], start: int, is_hash: bool) -> tuple[bytes | None, int, bool]:
    """``scanGenericCommand`` options: (pattern or None, count, novalues)."""
    pattern: bytes | None = None
    count = 10
    novalues = False
    i = start
    while i < len(argv):
        left = len(argv) - i
        opt = argv[i].lower()
        if opt == b"count" and left >= 2:
            count = to_int(argv[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
            i += 2
        elif opt == b"match" and left >= 2:
            pattern = None if argv[i + 1] == b"*" else argv[i + 1]
            i += 2
        elif opt == b"novalues":
            if not is_hash:
                raise CommandError("NOVALUES option can only be used in HSCAN")
            novalues = True
            i += 1
        else:
            raise CommandError(SYNTAX)
    return pattern, count, novalues


def scan_reply(cursor: int, items: list[Any]) -> list[Any]:
    return [str(cursor).encode(), items]


def match_filter(pattern: bytes | None) -> Callable[[bytes], bool] | None:
    if pattern is None:
        return None
    return lambda member: glob_match(pattern, member)


# ----------------------------------------------------------------------------- helpers


def _limits(c: Any) -> SetLimits:
    values = c.server.config.values
    key = (values["set-max-intset-entries"], values["set-max-listpack-entries"], values["set-max-listpack-value"])
    limits = _LIMITS.get(key)
    if limits is None:
        limits = _LIMITS[key] = SetLimits(*key)
    return limits


_LIMITS: dict[tuple[int, int, int], SetLimits] = {}  # one SetLimits per setting triple in use (as hashes do)


def _read_set(c: Any, key: bytes) -> SetValue | None:
    return check_type(c.db.lookup_read(key), SetValue)


def _store(c: Any, dst_key: bytes, result: SetValue, event: bytes) -> int:
    """Store a SINTER/SUNION/SDIFF result (or delete the destination when empty)."""
    db = c.db
    ks = c.keyspace
    if result.members:
        existed = db.lookup_write(dst_key) is not None
        db.set(dst_key, result)
        if not existed:
            ks.notify(db.index, "n", b"new", dst_key)
        ks.changed(db, dst_key, event, "s")
        return len(result)
    if db.lookup_write(dst_key) is not None:
        db.delete(dst_key)
        ks.changed(db, dst_key, b"del", "g")
    return 0


def _walk_reply(c: Any, source: set[bytes] | list[bytes], others: list[set[bytes]] | None = None,
                keep: bool = True, as_set: bool = True) -> Any:
    """The reply of the members of ``source`` (``SetValue.walk_source()``) that every set of
    ``others`` holds (``keep``) or none does: a set (an array in RESP2, or with ``as_set`` false)
    written as RESP straight from the members by ``bigops.set_walk``, no list of them between;
    a script gets them as values."""
    if c.from_script:
        members = set_walk(source, others or [], keep, 0, WALK_LIST)
        return SetReply(members) if as_set else members
    return Raw(set_walk(source, others or [], keep, 0, WALK_RESP3 if c.resp3 and as_set else WALK_RESP2))


def _built(members: list[bytes], encoding: str, limits: SetLimits) -> SetValue:
    """A result set as Redis's dstset gets it: ``members`` (distinct) added one by one to an
    empty set of ``encoding``; when there are more than an intset or listpack holds, those adds
    end in a hashtable, made at once."""
    if len(members) > limits.small_most():
        return SetValue.adopt(set(members))
    result = SetValue((), encoding)
    for member in members:
        result.add(member, limits)
    return result


def _lookup_sets(c: Any, keys: Iterable[bytes]) -> list[SetValue | None]:
    """Read every source (WRONGTYPE on the first key of another type)."""
    out: list[SetValue | None] = []
    db = c.db
    for key in keys:
        value = db.lookup_read(key)
        if value is not None and type(value) is not SetValue:
            raise CommandError(WRONGTYPE)
        out.append(value)
    return out


# ----------------------------------------------------------------------------- single-set commands


@command("sadd", -3, "write denyoom fast", (1, 1, 1), **SET, since="1.0.0",
         summary="Adds one or more members to a set. Creates the key if it doesn't exist.",
         complexity="O(1) for each element added, so O(N) to add N elements when the command is called with "
         "multiple arguments.", args="key member:string...", key_specs=[key_spec("RW INSERT")],
         history=(("2.4.0", "Accepts multiple `member` arguments."),), events="sadd")
def sadd(c: Any, argv: list[bytes]) -> Any:
    # (an existing set that changes no encoding also runs in C: _collections.c native_sadd; change both)
    db = c.db
    key = argv[1]
    limits = _limits(c)
    value = check_type(db.lookup_write(key), SetValue)
    if value is None:
        value = SetValue.create(argv[2], len(argv) - 2, limits)
        db.add(key, value)
        c.keyspace.notify(db.index, "n", b"new", key)
    else:
        value.maybe_convert(len(argv) - 2, limits)
    added = 0
    for member in argv[2:]:
        if value.add(member, limits):
            added += 1
    if added:
        c.keyspace.changed(db, key, b"sadd", "s", dirty=added)
    return added


@command("srem", -3, "write fast", (1, 1, 1), **SET, since="1.0.0",
         summary="Removes one or more members from a set. Deletes the set if the last member was removed.",
         complexity="O(N) where N is the number of members to be removed.", args="key member:string...",
         key_specs=[key_spec("RW DELETE")], history=(("2.4.0", "Accepts multiple `member` arguments."),),
         events="srem del")
def srem(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    key = argv[1]
    value = check_type(db.lookup_write(key), SetValue)
    if value is None:
        return 0
    deleted = 0
    for member in argv[2:]:
        if value.remove(member):
            deleted += 1
            if not value.members:
                break
    if deleted:
        ks = c.keyspace
        ks.changed(db, key, b"srem", "s", dirty=deleted)
        if not value.members:
            db.delete(key)
            ks.changed(db, key, b"del", "g", dirty=0)
    return deleted


@command("smembers", 2, "readonly", (1, 1, 1), **SET, since="1.0.0", summary="Returns all members of a set.",
         complexity="O(N) where N is the set cardinality.", args="key", key_specs=[key_spec("RO ACCESS")],
         tips="nondeterministic_output_order")
def smembers(c: Any, argv: list[bytes]) -> Any:
    value = _read_set(c, argv[1])
    return SetReply([]) if value is None else _walk_reply(c, value.walk_source())


@command("sismember", 3, "readonly fast", (1, 1, 1), **SET, since="1.0.0",
         summary="Determines whether a member belongs to a set.", args="key member:string", key_specs=[key_spec("RO")])
def sismember(c: Any, argv: list[bytes]) -> Any:
    value = _read_set(c, argv[1])
    return 1 if value is not None and argv[2] in value.members else 0


@command("smismember", -3, "readonly fast", (1, 1, 1), **SET, since="6.2.0",
         summary="Determines whether multiple members belong to a set.",
         complexity="O(N) where N is the number of elements being checked for membership", args="key member:string...",
         key_specs=[key_spec("RO ACCESS")])
def smismember(c: Any, argv: list[bytes]) -> Any:
    value = _read_set(c, argv[1])
    members = value.members if value is not None else set()
    return [1 if m in members else 0 for m in argv[2:]]


@command("scard", 2, "readonly fast", (1, 1, 1), **SET, since="1.0.0", summary="Returns the number of members in a set.",
         args="key", key_specs=[key_spec("RO")])
def scard(c: Any, argv: list[bytes]) -> Any:
    value = _read_set(c, argv[1])
    return 0 if value is None else len(value)


@command("spop", -2, "write fast", (1, 1, 1), **SET, since="1.0.0",
         summary="Returns one or more random members from a set after removing them. Deletes the set if the last "
         "member was popped.", complexity="Without the count argument O(1), otherwise O(N) where N is the value of "
         "the passed count.", args="key [count:integer@3.2.0]", key_specs=[key_spec("RW ACCESS DELETE")],
         history=(("3.2.0", "Added the `count` argument."),), tips="nondeterministic_output", events="spop del")
def spop(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    db = c.db
    key = argv[1]
    ks = c.keyspace
    if len(argv) == 2:
        value = check_type(db.lookup_write(key), SetValue)
        if value is None:
            return None
        member = value.pop_random(_rng)
        ks.changed(db, key, b"spop", "s")
        propagate_as(c, [b"SREM", key, member])
        if not value.members:
            db.delete(key)
            ks.changed(db, key, b"del", "g", dirty=0)
        return member
    count = to_positive_long(argv[2])
    value = check_type(db.lookup_write(key), SetValue)
    if value is None or count == 0:
        return SetReply([])
    ks.changed(db, key, b"spop", "s", dirty=min(count, len(value)))
    if count >= len(value):
        whole = _union([value], _limits(c))
        db.delete(key)
        ks.changed(db, key, b"del", "g", dirty=0)
        propagate_as(c, deletion(c.server.config, key, "lazyfree-lazy-server-del"))
        return _walk_reply(c, whole.walk_source())
    popped = value.pop_many(count, _limits(c), _rng)
    # as SREMs of what it popped, at most 1024 members each (spopWithCountCommand)
    propagate_as(c, *([b"SREM", key, *popped[i:i + 1024]] for i in range(0, len(popped), 1024)))
    return SetReply(popped)


@command("srandmember", -2, "readonly", (1, 1, 1), **SET, since="1.0.0",
         summary="Get one or multiple random members from a set",
         complexity="Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed "
         "count.", args="key [count:integer@2.6.0]", key_specs=[key_spec("RO ACCESS")],
         history=(("2.6.0", "Added the optional `count` argument."),), tips="nondeterministic_output")
def srandmember(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    if len(argv) == 2:
        value = _read_set(c, argv[1])
        return None if value is None else value.random_member(_rng)
    count = to_range_long(argv[2], -LONG_MAX, LONG_MAX)
    value = _read_set(c, argv[1])
    if value is None or count == 0:
        return []
    size = len(value)
    if count < 0 or count == 1:
        # With repetitions the reply is as long as asked: up to 2**63 members.
        picks = abs(count)
        picked = repeat_within(c, picks, lambda: value.random_member(_rng), bulk_size, value.drawer(picks, _rng))
        return [] if picked is None else picked  # None: the output-buffer limit closed the client
    if count >= size:
        return _walk_reply(c, value.walk_source(), as_set=False)
    return value.sample_unique(count, _rng)


@command("smove", 4, "write fast", (1, 2, 1), **SET, since="1.0.0", summary="Moves a member from one set to another.",
         args="source:key destination:key member:string",
         key_specs=[key_spec("RW ACCESS DELETE"), key_spec("RW INSERT", index=2)], events="srem sadd del")
def smove(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = db.lookup_write(src_key)
    dst = db.lookup_write(dst_key)
    if src is None:
        return 0
    check_type(src, SetValue)
    check_type(dst, SetValue)
    if src is dst:
        return 1 if member in src.members else 0
    if not src.remove(member):
        return 0
    ks = c.keyspace
    ks.changed(db, src_key, b"srem", "s")
    if not src.members:
        db.delete(src_key)
        ks.changed(db, src_key, b"del", "g", dirty=0)
    limits = _limits(c)
    if dst is None:
        dst = SetValue.create(member, 1, limits)
        db.add(dst_key, dst)
        ks.notify(db.index, "n", b"new", dst_key)
    if dst.add(member, limits):
        ks.changed(db, dst_key, b"sadd", "s")
    return 1


@command("sscan", -3, "readonly", (1, 1, 1), **SET, since="2.8.0", summary="Iterates over members of a set.",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the "
         "cursor to return back to 0. N is the number of elements inside the collection.",
         args="key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]", key_specs=[key_spec("RO ACCESS")],
         tips="nondeterministic_output")
def sscan(c: Any, argv: list[bytes]) -> Any:
    cursor = parse_scan_cursor(argv[2])
    value = _read_set(c, argv[1])
    if value is None:
        return scan_reply(0, [])
    pattern, count, _ = parse_scan_options(argv, 3, False)
    accept = match_filter(pattern)
    if value.encoding != "hashtable":
        members = value.ordered()
        return scan_reply(0, members if accept is None else [m for m in members if accept(m)])
    next_cursor, found = value.scan_order().scan(cursor, count, accept)
    return scan_reply(next_cursor, found)


# ----------------------------------------------------------------------------- algebra


def _inter(c: Any, keys: list[bytes], want: str, limit: int = 0) -> Any:
    """``sinterGenericCommand``: the members of the smallest source the others all hold, walked
    in its order, as SINTER's reply (``want`` "reply"), their count up to ``limit`` ("count") or
    the result set SINTERSTORE stores ("store"); None when a source is missing (empty result)."""
    sets = _lookup_sets(c, keys)
    if any(s is None for s in sets):
        return None
    ordered = sorted(sets, key=len)  # stable, like glibc's merge-sort qsort
    first = ordered[0]
    assert first is not None
    others = [s.members for s in ordered[1:] if s is not first]  # type: ignore[union-attr]
    source = first.walk_source()
    if want == "store":  # the result set, as Redis builds it
        limits = _limits(c)
        hits = set_walk(source, others, True, 0, WALK_LIST)
        result = _built(hits, "intset" if first.encoding == "intset" else "listpack", limits)
        if hits and len(hits) <= limits.small_most() and all(lp_int_value(m) is not None for m in hits):
            result.maybe_to_intset(limits)
        return result
    if want == "reply":
        return _walk_reply(c, source, others)
    return set_walk(source, others, True, limit, WALK_COUNT)


def _union(sets: list[SetValue | None], limits: SetLimits) -> SetValue:
    """SUNION's result as Redis's dstset gets it: every member added to an empty intset."""
    present = [s for s in sets if s is not None]
    if sum(map(len, present)) > limits.small_most():
        members = set(present[0].members)
        members.update(*(s.members for s in present[1:]))
        if len(members) > limits.small_most():  # the adds would end in a hashtable
            return SetValue.adopt(members)
    result = SetValue((), "intset")
    for s in present:
        for member in s.ordered():
            result.add(member, limits)
    return result


def _diff(sets: list[SetValue | None], limits: SetLimits, store: bool) -> SetValue | list[bytes]:
    """SDIFF's result with Redis's choice of algorithm, as Redis's dstset gets it; for a reply
    (not ``store``) a result too big for an intset or listpack may come as its members in
    reply order instead."""
    result = SetValue((), "intset")
    first = sets[0]
    if first is None or any(s is first for s in sets[1:]):
        return result
    present = [s for s in sets if s is not None]
    algo_one = sum(len(first) for _ in present) // 2
    algo_two = sum(len(s) for s in present)
    rest = [s for s in sets[1:] if s is not None]
    if algo_one <= algo_two:  # first's members that no other set holds, added in first's order
        rest.sort(key=len, reverse=True)
        hits = set_walk(first.walk_source(), [s.members for s in rest], False, 0, WALK_LIST)
        if not store and len(hits) > limits.small_most():
            return hits  # a hashtable's worth: its order is unspecified
        return _built(hits, "intset", limits)
    if len(first) > limits.small_most():  # all of first added (a hashtable), then the rest removed
        members = set(first.members)
        for s in rest:
            if not members:
                break
            members.difference_update(s.members)
        return SetValue.adopt(members)
    for member in first.ordered():
        result.add(member, limits)
    for s in rest:
        if not result.members:
            break
        for member in s.ordered():
            result.remove(member)
    return result


_ALGEBRA_KS = [key_spec("RO ACCESS", lastkey=-1)]
_STORE_KS = [key_spec("OW UPDATE"), key_spec("RO ACCESS", index=2, lastkey=-1)]
# SINTERSTORE's destination is RW in Redis 7.0/7.2 (7.4 made it OW like the others);
# kept at 7.0's value so COMMAND matches the differential oracle.
_SINTERSTORE_KS = [key_spec("RW UPDATE"), key_spec("RO ACCESS", index=2, lastkey=-1)]


@command("sinter", -2, "readonly", (1, -1, 1), **SET, since="1.0.0", summary="Returns the intersect of multiple sets.",
         complexity="O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
         args="key...", key_specs=_ALGEBRA_KS, tips="nondeterministic_output_order")
def sinter(c: Any, argv: list[bytes]) -> Any:
    result = _inter(c, argv[1:], "reply")
    return SetReply([]) if result is None else result


def _intercard_keys(argv: list[bytes]) -> list[int]:
    numkeys = to_int(argv[1]) if len(argv) > 1 else -1
    if numkeys < 1 or 1 + numkeys >= len(argv):
        raise ValueError("bad numkeys")
    return list(range(2, 2 + numkeys))


@command("sintercard", -3, "readonly", **SET, since="7.0.0",
         summary="Returns the number of members of the intersect of multiple sets.",
         complexity="O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
         args="numkeys:integer key... [LIMIT limit:integer]", getkeys=_intercard_keys,
         key_specs=[key_spec("RO ACCESS", keynum=(0, 1, 1))])
def sintercard(c: Any, argv: list[bytes]) -> Any:
    numkeys = to_range_long(argv[1], 1, LONG_MAX, "numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise CommandError("Number of keys can't be greater than number of args")
    limit = 0
    j = 2 + numkeys
    while j < len(argv):
        more = len(argv) - 1 - j
        if argv[j].lower() == b"limit" and more:
            j += 1
            limit = to_positive_long(argv[j], "LIMIT can't be negative")
        else:
            raise CommandError(SYNTAX)
        j += 1
    result = _inter(c, argv[2:2 + numkeys], "count", limit)
    return result or 0


@command("sinterstore", -3, "write denyoom", (1, -1, 1), **SET, since="1.0.0",
         summary="Stores the intersect of multiple sets in a key.",
         complexity="O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.",
         args="destination:key key...", key_specs=_SINTERSTORE_KS, events="sinterstore del")
def sinterstore(c: Any, argv: list[bytes]) -> Any:
    result = _inter(c, argv[2:], "store")
    if result is None:
        result = SetValue((), "intset")
    assert isinstance(result, SetValue)
    return _store(c, argv[1], result, b"sinterstore")


@command("sunion", -2, "readonly", (1, -1, 1), **SET, since="1.0.0", summary="Returns the union of multiple sets.",
         complexity="O(N) where N is the total number of elements in all given sets.", args="key...",
         key_specs=_ALGEBRA_KS, tips="nondeterministic_output_order")
def sunion(c: Any, argv: list[bytes]) -> Any:
    return _walk_reply(c, _union(_lookup_sets(c, argv[1:]), _limits(c)).walk_source())


@command("sunionstore", -3, "write denyoom", (1, -1, 1), **SET, since="1.0.0",
         summary="Stores the union of multiple sets in a key.",
         complexity="O(N) where N is the total number of elements in all given sets.", args="destination:key key...",
         key_specs=_STORE_KS, events="sunionstore del")
def sunionstore(c: Any, argv: list[bytes]) -> Any:
    result = _union(_lookup_sets(c, argv[2:]), _limits(c))
    return _store(c, argv[1], result, b"sunionstore")


@command("sdiff", -2, "readonly", (1, -1, 1), **SET, since="1.0.0", summary="Returns the difference of multiple sets.",
         complexity="O(N) where N is the total number of elements in all given sets.", args="key...",
         key_specs=_ALGEBRA_KS, tips="nondeterministic_output_order")
def sdiff(c: Any, argv: list[bytes]) -> Any:
    result = _diff(_lookup_sets(c, argv[1:]), _limits(c), False)
    return _walk_reply(c, result if type(result) is list else result.walk_source())  # type: ignore[union-attr]


@command("sdiffstore", -3, "write denyoom", (1, -1, 1), **SET, since="1.0.0",
         summary="Stores the difference of multiple sets in a key.",
         complexity="O(N) where N is the total number of elements in all given sets.", args="destination:key key...",
         key_specs=_STORE_KS, events="sdiffstore del")
def sdiffstore(c: Any, argv: list[bytes]) -> Any:
    result = _diff(_lookup_sets(c, argv[2:]), _limits(c), True)
    assert isinstance(result, SetValue)
    return _store(c, argv[1], result, b"sdiffstore")


attach_native_handlers("sadd", "spop")  # C handlers of SADD's common forms and SPOP of a missing key (dumpling/_collections.c)
