"""Sorted-set commands: ZADD … ZSCAN, the Z*STORE algebra and the blocking pops.

Parsing order, error texts, reply shapes (RESP2 flat pairs, RESP3 nested pairs with
doubles) and encoding conversions follow Redis 7.4 (``t_zset.c``).  Scores are
printed as Redis 7.4's ``addReplyDouble`` prints doubles (``protocol.format_double``:
fpconv's form, ``0.1``), except in ZSCAN of a skiplist zset (``%.17Lg``, as 7.4 still
does).  The data structure itself lives in ``dumpling.datatypes.zsets``; this module must
not reach into its internals beyond the documented methods.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from dumpling.bigops import flat_pairs, flat_pairs_of_chunks
from dumpling.commands.common import (
    LLONG_MAX,
    check_type,
    glob_match,
    parse_double,
    parse_mpop,
    parse_timeout,
    to_float,
    to_int,
    to_positive_long,
    to_range_long,
)
from dumpling.commands.keys import parse_cursor, parse_scan_options
from dumpling.commands.lists import attach_native_handlers
from dumpling.commands.registry import command
from dumpling.datatypes.sets import SetValue
from dumpling.datatypes.zsets import MAX_LEX, MIN_LEX, ZSetValue, d2string, lex_gte_min, lex_lte_max
from dumpling.errors import NOT_FLOAT, SYNTAX, WRONGTYPE, CommandError
from dumpling.lazyfree import release
from dumpling.numbers import index_span
from dumpling.persistence.propagation import propagate_as
from dumpling.protocol import NULL_ARRAY, Double, ErrorReply
from dumpling.replybudget import bulk_size, repeat_within

ZS: dict[str, Any] = {"group": "sorted-set"}
LONG_MIN = -(1 << 63)

NAN_ERROR = "resulting score is not a number (NaN)"
NOT_FLOAT_RANGE = "min or max is not a float"
NOT_LEX_RANGE = "min or max not valid string range item"


# ----------------------------------------------------------------------------- helpers


def limits(c: Any) -> tuple[int, int]:
    values = c.server.config.values
    return values["zset-max-listpack-entries"], values["zset-max-listpack-value"]


def zset_of(value: Any) -> ZSetValue | None:
    return check_type(value, ZSetValue)


def with_scores(c: Any, items: Iterable[tuple[float, bytes]], scores: bool) -> list[Any]:
    """ZRANGE-style reply: members, or pairs (RESP2 flat, RESP3 nested)."""
    if not scores:
        return [member for _, member in items]
    if c.resp3:
        return [[member, Double(score)] for score, member in items]
    return _flat_pairs(items)


def _flat_pairs(items: Iterable[tuple[float, bytes]]) -> list[Any]:
    """RESP2's member, score, member, score ... with each score already as its reply text
    (what a Double encodes to in RESP2): a flat list of bytes the C encoder writes in one
    pass, and no object per score for a reply of a million pairs (``bigops.flat_pairs``)."""
    return flat_pairs(items)


_STRTOD_DEC = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_STRTOD_HEX = re.compile(rb"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")
_STRTOD_INF = re.compile(rb"[+-]?(inf|infinity)", re.IGNORECASE)
_C_SPACE = b" \t\n\r\x0b\x0c"


def strtod_whole(text: bytes) -> float | None:
    """C ``strtod`` that must consume the whole C string (ZRANGEBYSCORE bounds).

    Unlike ``string2d`` this accepts leading whitespace, overflow to inf, underflow
    to zero and the empty string (0); NaN is refused by the caller's rule.
    """
    nul = text.find(b"\x00")
    if nul >= 0:
        text = text[:nul]
    body = text.lstrip(_C_SPACE)
    if not text:
        return 0.0
    if not body:
        return None
    if _STRTOD_DEC.fullmatch(body):
        try:
            return float(body)
        except (OverflowError, ValueError):
            return None
    if _STRTOD_INF.fullmatch(body):
        return -math.inf if body[:1] == b"-" else math.inf
    if _STRTOD_HEX.fullmatch(body):
        sign = -1.0 if body[:1] == b"-" else 1.0
        digits = body.lstrip(b"+-").decode()
        if "p" not in digits.lower():
            digits += "p0"
        try:
            return sign * float.fromhex(digits)
        except OverflowError:
            return sign * math.inf
    return None


def parse_score_bound(arg: bytes) -> tuple[float, bool]:
    """A ZRANGEBYSCORE bound: ``1.5``, ``(1.5``, ``-inf`` …"""
    exclusive = arg[:1] == b"("
    value = strtod_whole(arg[1:] if exclusive else arg)
    if value is None or value != value:
        raise CommandError(NOT_FLOAT_RANGE)
    return value, exclusive


def parse_score_range(low: bytes, high: bytes) -> tuple[float, bool, float, bool]:
    lo, lo_ex = parse_score_bound(low)
    hi, hi_ex = parse_score_bound(high)
    return lo, lo_ex, hi, hi_ex


def _lex_item(arg: bytes) -> tuple[Any, bool]:
    first = arg[:1]
    if first == b"+" and len(arg) == 1:
        return MAX_LEX, True
    if first == b"-" and len(arg) == 1:
        return MIN_LEX, True
    if first == b"(":
        return arg[1:], True
    if first == b"[":
        return arg[1:], False
    raise CommandError(NOT_LEX_RANGE)


def parse_lex_range(low: bytes, high: bytes) -> tuple[Any, bool, Any, bool]:
    lo, lo_ex = _lex_item(low)
    hi, hi_ex = _lex_item(high)
    return lo, lo_ex, hi, hi_ex








def dedupe(keys: Iterable[bytes]) -> list[bytes]:
    return list(dict.fromkeys(keys))


def _retry_safely(fn: Callable[[], Any]) -> Callable[[], Any]:
    """A blocked client's retry: a command error becomes its reply."""

    def retry() -> Any:
        try:
            return fn()
        except CommandError as e:
            return ErrorReply(e.message)

    return retry


def _numkeys_keys(argv: list[bytes], at: int) -> list[int]:
    """Key positions of a ``numkeys key [key ...]`` command (ValueError if malformed)."""
    n = to_int(argv[at]) if argv[at:at + 1] else 0
    if n < 1 or at + 1 + n > len(argv):
        raise ValueError("bad numkeys")
    return list(range(at + 1, at + 1 + n))


def _keys_zunion(argv: list[bytes]) -> list[int]:
    try:
        return _numkeys_keys(argv, 1)
    except CommandError:
        raise ValueError("bad numkeys") from None


def _keys_zunionstore(argv: list[bytes]) -> list[int]:
    try:
        return [1, *_numkeys_keys(argv, 2)]
    except CommandError:
        raise ValueError("bad numkeys") from None


def _keys_bzmpop(argv: list[bytes]) -> list[int]:
    try:
        return _numkeys_keys(argv, 2)
    except CommandError:
        raise ValueError("bad numkeys") from None


def _spec(flags: list[str], index: int, lastkey: int = 0) -> dict[str, Any]:
    return {"flags": flags, "begin_search": {"type": "index", "spec": {"index": index}},
            "find_keys": {"type": "range", "spec": {"lastkey": lastkey, "keystep": 1, "limit": 0}}}


def _keynum_spec(flags: list[str], index: int) -> dict[str, Any]:
    return {"flags": flags, "begin_search": {"type": "index", "spec": {"index": index}},
            "find_keys": {"type": "keynum", "spec": {"keynumidx": 0, "firstkey": 1, "keystep": 1}}}


def _delete_emptied(c: Any, db: Any, key: bytes, z: ZSetValue) -> None:
    if not z.scores:
        db.delete(key)
        c.keyspace.changed(db, key, b"del", "g", dirty=0)  # (the removal counted)


# ----------------------------------------------------------------------------- ZADD / ZINCRBY

ADDED, UPDATED, NOP, NONE = 1, 2, 4, 0


def zset_add(z: ZSetValue, score: float, member: bytes, nx: bool, xx: bool, gt: bool, lt: bool, incr: bool,
             lim: tuple[int, int]) -> tuple[int, float]:
    """Redis's ``zsetAdd``: returns (outcome flag, new score); raises on NaN."""
    if score != score:
        raise CommandError(NAN_ERROR)
    cur = z.scores.get(member)
    if cur is not None:
        if nx:
            return NOP, score
        if incr:
            score += cur
            if score != score:
                raise CommandError(NAN_ERROR)
        if (lt and score >= cur) or (gt and score <= cur):
            return NOP, score
        if score != cur:
            z.update(member, cur, score)
            return UPDATED, score
        return NONE, score
    if xx:
        return NOP, score
    z.add_checked(member, score, *lim)
    return ADDED, score


# ZADD's option words: the bits of ``_zadd_generic``'s flags.
NX, XX, CH, INCR, GT, LT = 1, 2, 4, 8, 16, 32
_ZADD_OPTIONS = {b"nx": NX, b"xx": XX, b"ch": CH, b"incr": INCR, b"gt": GT, b"lt": LT}


def _zadd_generic(c: Any, argv: list[bytes], incr: bool) -> Any:
    """``zaddGenericCommand``.  Kept lean (ZADD is a hot command): options are looked up in
    one table, scores parsed in one pass, and a plain ZADD (no option word) adds or updates
    members inline; any option goes through ``zset_add``, Redis's ``zsetAdd``."""
    argc = len(argv)
    flags = INCR if incr else 0
    i = 2
    option = _ZADD_OPTIONS.get
    while i < argc:
        bit = option(argv[i].lower()) if len(argv[i]) <= 4 else None
        if bit is None:
            break
        flags |= bit
        i += 1
    elements = argc - i
    if elements % 2 or not elements:
        raise CommandError(SYNTAX)
    elements //= 2
    if flags:
        if flags & NX and flags & XX:
            raise CommandError("XX and NX options at the same time are not compatible")
        if (flags & GT and flags & (NX | LT)) or (flags & LT and flags & NX):
            raise CommandError("GT, LT, and/or NX options at the same time are not compatible")
        if flags & INCR and elements > 1:
            raise CommandError("INCR option supports a single increment-element pair")
    scores: list[float] = []
    for j in range(i, argc, 2):
        score = parse_double(argv[j])
        if score is None:
            raise CommandError(NOT_FLOAT)
        scores.append(score)
    key = argv[1]
    db = c.db
    z = db.lookup_write(key)
    if z is not None and type(z) is not ZSetValue:
        raise CommandError(WRONGTYPE)
    values = c.server.config.values
    max_entries = values["zset-max-listpack-entries"]
    created = False
    if z is None:
        if flags & XX:
            return None if flags & INCR else 0
        z = ZSetValue.create(elements, len(argv[i + 1]), max_entries, values["zset-max-listpack-value"])
        db.add(key, z)
        created = True
        c.keyspace.notify(db.index, "n", b"new", key)
    elif elements > max_entries:
        z.maybe_grow(elements, max_entries)
    added = updated = processed = 0
    score = 0.0
    try:
        if not flags & (NX | XX | INCR | GT | LT):
            current = z.scores.get
            for j, score in enumerate(scores):
                member = argv[i + 1 + 2 * j]
                old = current(member)
                if old is None:
                    z.add_checked(member, score, max_entries, values["zset-max-listpack-value"])
                    added += 1
                elif old != score:
                    z.update(member, old, score)
                    updated += 1
        else:
            lim = (max_entries, values["zset-max-listpack-value"])
            nx, xx, gt, lt = flags & NX, flags & XX, flags & GT, flags & LT
            for j, score in enumerate(scores):
                flag, score = zset_add(z, score, argv[i + 1 + 2 * j], nx, xx, gt, lt, flags & INCR, lim)
                if flag == ADDED:
                    added += 1
                elif flag == UPDATED:
                    updated += 1
                if flag != NOP:
                    processed += 1
    finally:
        if added or updated:
            c.keyspace.changed(db, key, b"zincr" if flags & INCR else b"zadd", "z", dirty=added + updated)
            if not created and c.keyspace.blocked_keys:
                c.keyspace.signal_ready(db, key)
    if flags & INCR:
        return Double(score) if processed else None
    return added + updated if flags & CH else added


@command("zadd", -4, "write denyoom fast", (1, 1, 1), **ZS, since="1.2.0",
         summary="Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.",
         complexity="O(log(N)) for each item added, where N is the number of elements in the sorted set.",
         args=("key [condition=(NX | XX)@3.0.2] [comparison=(GT | LT)@6.2.0] [change=CH@3.0.2] "
               "[increment=INCR@3.0.2] data=(score:double member)..."),
         history=(("2.4.0", "Accepts multiple elements."), ("3.0.2", "Added the `XX`, `NX`, `CH` and `INCR` options."),
                  ("6.2.0", "Added the `GT` and `LT` options.")),
         events="zadd zincr")
def zadd(c: Any, argv: list[bytes]) -> Any:
    if len(argv) == 4:
        # ZADD key score member on an existing zset, the hot form: a score that parses means
        # argv[2] is no option word, so this is _zadd_generic's plain path for one member
        score = parse_double(argv[2])
        db = c.db
        z = None if score is None else db.lookup_write(argv[1])
        # (a listpack that zset-max-listpack-entries 0 converts even for a no-op: the general path)
        if type(z) is ZSetValue and (z.encoding != "listpack" or limits(c)[0] > 0):
            member = argv[3]
            old = z.scores.get(member)
            if old == score:
                return 0
            if old is None:
                z.add_checked(member, score, *limits(c))
            else:
                z.update(member, old, score)
            ks = c.keyspace
            ks.changed(db, argv[1], b"zadd", "z")
            if ks.blocked_keys:
                ks.signal_ready(db, argv[1])
            return 1 if old is None else 0
    return _zadd_generic(c, argv, False)


@command("zincrby", 4, "write denyoom fast", (1, 1, 1), **ZS, since="1.2.0",
         summary="Increments the score of a member in a sorted set.",
         complexity="O(log(N)) where N is the number of elements in the sorted set.",
         args="key increment:integer member", key_flags="RW access update", events="zincr")
def zincrby(c: Any, argv: list[bytes]) -> Any:
    return _zadd_generic(c, argv, True)


# ----------------------------------------------------------------------------- simple reads / ZREM


@command("zrem", -3, "write fast", (1, 1, 1), **ZS, since="1.2.0",
         summary="Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.",
         complexity="O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.",
         args="key member...", key_flags="RW delete", history=(("2.4.0", "Accepts multiple elements."),),
         events="zrem del")
def zrem(c: Any, argv: list[bytes]) -> Any:
    db, key = c.db, argv[1]
    z = zset_of(db.lookup_write(key))
    if z is None:
        return 0
    deleted = 0
    for member in argv[2:]:
        if z.remove(member):
            deleted += 1
        if not z.scores:
            break
    if deleted:
        c.keyspace.changed(db, key, b"zrem", "z", dirty=deleted)
        _delete_emptied(c, db, key, z)
    return deleted


@command("zcard", 2, "readonly fast", (1, 1, 1), **ZS, since="1.2.0", summary="Returns the number of members in a sorted set.",
         args="key", key_flags="RO")
def zcard(c: Any, argv: list[bytes]) -> Any:
    z = zset_of(c.db.lookup_read(argv[1]))
    return 0 if z is None else len(z)


@command("zscore", 3, "readonly fast", (1, 1, 1), **ZS, since="1.2.0", summary="Returns the score of a member in a sorted set.",
         args="key member")
def zscore(c: Any, argv: list[bytes]) -> Any:
    z = zset_of(c.db.lookup_read(argv[1]))
    if z is None:
        return None
    score = z.scores.get(argv[2])
    return None if score is None else Double(score)


@command("zmscore", -3, "readonly fast", (1, 1, 1), **ZS, since="6.2.0",
         summary="Returns the score of one or more members in a sorted set.",
         complexity="O(N) where N is the number of members being requested.", args="key member...")
def zmscore(c: Any, argv: list[bytes]) -> Any:
    z = zset_of(c.db.lookup_read(argv[1]))
    out: list[Any] = []
    for member in argv[2:]:
        score = None if z is None else z.scores.get(member)
        out.append(None if score is None else Double(score))
    return out


def _zrank(c: Any, argv: list[bytes], reverse: bool) -> Any:
    if len(argv) > 4:
        raise CommandError(f"wrong number of arguments for '{argv[0].lower().decode('utf-8', 'replace')}' command")
    withscore = False
    if len(argv) > 3:
        if argv[3].lower() != b"withscore":
            raise CommandError(SYNTAX)
        withscore = True
    z = zset_of(c.db.lookup_read(argv[1]))
    if z is None:
        return NULL_ARRAY if withscore else None
    rank = z.rank(argv[2])
    if rank is None:
        return NULL_ARRAY if withscore else None
    if reverse:
        rank = len(z) - 1 - rank
    if withscore:
        return [rank, Double(z.scores[argv[2]])]
    return rank


@command("zrank", -3, "readonly fast", (1, 1, 1), **ZS, since="2.0.0",
         summary="Returns the index of a member in a sorted set ordered by ascending scores.", complexity="O(log(N))",
         args="key member [WITHSCORE]", history=(("7.2.0", "Added the optional `WITHSCORE` argument."),))
def zrank(c: Any, argv: list[bytes]) -> Any:
    return _zrank(c, argv, False)


@command("zrevrank", -3, "readonly fast", (1, 1, 1), **ZS, since="2.0.0",
         summary="Returns the index of a member in a sorted set ordered by descending scores.", complexity="O(log(N))",
         args="key member [WITHSCORE]", history=(("7.2.0", "Added the optional `WITHSCORE` argument."),))
def zrevrank(c: Any, argv: list[bytes]) -> Any:
    return _zrank(c, argv, True)


@command("zcount", 4, "readonly fast", (1, 1, 1), **ZS, since="2.0.0",
         summary="Returns the count of members in a sorted set that have scores within a range.",
         complexity="O(log(N)) with N being the number of elements in the sorted set.", args="key min:double max:double")
def zcount(c: Any, argv: list[bytes]) -> Any:
    lo, lo_ex, hi, hi_ex = parse_score_range(argv[2], argv[3])
    z = zset_of(c.db.lookup_read(argv[1]))
    if z is None:
        return 0
    start, stop = z.score_span(lo, lo_ex, hi, hi_ex)
    return stop - start


def lex_range_possible(z: ZSetValue, lo: Any, lo_ex: bool, hi: Any, hi_ex: bool) -> bool:
    """``zslIsInLexRange``: a non-empty interval overlapping the first/last members."""
    if lo is MAX_LEX or hi is MIN_LEX:
        return False
    if lo is not MIN_LEX and hi is not MAX_LEX and (lo > hi or (lo == hi and (lo_ex or hi_ex))):
        return False
    if not z.index:
        return False
    return lex_gte_min(z.index[-1][1], lo, lo_ex) and lex_lte_max(z.index[0][1], hi, hi_ex)


def _lex_span(z: ZSetValue, lo: Any, lo_ex: bool, hi: Any, hi_ex: bool, walk: bool) -> tuple[int, int]:
    """Positions ``[start, stop)`` of the lex range from its first element: walked
    forward while <= max, or (ZLEXCOUNT on a skiplist) up to the last element in range."""
    n = len(z)
    # zslDeleteRangeByLex descends without the quick range check the other paths make
    if not (walk and z.encoding == "skiplist") and not lex_range_possible(z, lo, lo_ex, hi, hi_ex):
        return 0, 0
    start = z.lex_first(lo, lo_ex)
    if start >= n or not lex_lte_max(z.index[start][1], hi, hi_ex):
        return start, start
    if z.encoding == "skiplist" and not walk:
        last = z.lex_last(hi, hi_ex)
        if last < 0 or not lex_gte_min(z.index[last][1], lo, lo_ex):
            return start, start
        return start, max(start, last + 1)
    stop = start
    while stop < n and lex_lte_max(z.index[stop][1], hi, hi_ex):
        stop += 1
    return start, stop


@command("zlexcount", 4, "readonly fast", (1, 1, 1), **ZS, since="2.8.9",
         summary="Returns the number of members in a sorted set within a lexicographical range.",
         complexity="O(log(N)) with N being the number of elements in the sorted set.", args="key min:string max:string")
def zlexcount(c: Any, argv: list[bytes]) -> Any:
    lo, lo_ex, hi, hi_ex = parse_lex_range(argv[2], argv[3])
    z = zset_of(c.db.lookup_read(argv[1]))
    if z is None:
        return 0
    start, stop = _lex_span(z, lo, lo_ex, hi, hi_ex, False)
    return stop - start


# ----------------------------------------------------------------------------- ZRANGE family

RANK, SCORE, LEX = 1, 2, 3


def _range_span(z: ZSetValue, rangetype: int, reverse: bool, bounds: tuple[Any, ...],
                offset: int, limit: int) -> tuple[int, int, int]:
    """The selected elements as positions ``[lo, hi)`` (every range is one run of positions;
    the reply reads it from ``hi - 1`` down for REV), and the length hint ZRANGESTORE starts
    with."""
    n = len(z)
    if rangetype == RANK:
        span = index_span(*bounds, n)
        if span is None:
            return 0, 0, 0
        start, end = span
        if reverse:
            return n - 1 - end, n - start, end - start + 1
        return start, end + 1, end - start + 1
    if offset > 0 and offset >= n:
        return 0, 0, -1
    if offset < 0:
        return 0, 0, -1
    if rangetype == SCORE:
        lo, hi = z.score_span(*bounds)
        if reverse:
            first = hi - 1 - offset
            last = lo if limit < 0 else max(lo, first - limit + 1)
            return (last, first + 1, -1) if first >= lo else (0, 0, -1)
        first = lo + offset
        last = hi if limit < 0 else min(hi, first + limit)
        return (first, last, -1) if first < last else (0, 0, -1)
    lo_v, lo_ex, hi_v, hi_ex = bounds
    if not lex_range_possible(z, lo_v, lo_ex, hi_v, hi_ex):
        return 0, 0, -1
    index = z.index
    if reverse:
        pos = z.lex_last(hi_v, hi_ex)
        if pos < 0 or not lex_gte_min(index[pos][1], lo_v, lo_ex):
            return 0, 0, -1
        top = pos = pos - offset
        while pos >= 0 and limit != 0 and lex_gte_min(index[pos][1], lo_v, lo_ex):
            limit -= 1
            pos -= 1
        return (pos + 1, top + 1, -1) if top > pos else (0, 0, -1)
    pos = z.lex_first(lo_v, lo_ex)
    if pos >= n or not lex_lte_max(index[pos][1], hi_v, hi_ex):
        return 0, 0, -1
    bottom = pos = pos + offset
    while pos < n and limit != 0 and lex_lte_max(index[pos][1], hi_v, hi_ex):
        limit -= 1
        pos += 1
    return (bottom, pos, -1) if pos > bottom else (0, 0, -1)


def span_reply(c: Any, z: ZSetValue, lo: int, hi: int, reverse: bool, scores: bool) -> list[Any]:
    """``with_scores`` of positions ``[lo, hi)`` (descending if ``reverse``), read off the index
    without a (score, member) item each where the reply needs none (members; RESP2 pairs)."""
    index = z.index
    if not scores:
        return index.members(lo, hi, reverse)  # type: ignore[no-any-return]
    if not c.resp3:
        pairs = index.flat_pairs(lo, hi, reverse)
        if pairs is not None:
            return pairs  # type: ignore[no-any-return]
    return with_scores(c, index.islice(lo, hi, reverse=reverse), scores)


def zrange_generic(c: Any, argv: list[bytes], start_at: int, store: bool, rangetype: int, direction: int) -> Any:
    """ZRANGE, ZRANGESTORE and the legacy Z[REV]RANGE[BYSCORE|BYLEX] (``zrangeGenericCommand``)."""
    key = argv[start_at]
    minidx, maxidx = start_at + 1, start_at + 2
    withscores = False
    offset, limit = 0, -1
    j = start_at + 3
    while j < len(argv):
        left = len(argv) - j - 1
        opt = argv[j].lower()
        if not store and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset = to_int(argv[j + 1])
            limit = to_int(argv[j + 2])
            j += 2
        elif direction == 0 and opt == b"rev":
            direction = -1
        elif rangetype == 0 and opt == b"bylex":
            rangetype = LEX
        elif rangetype == 0 and opt == b"byscore":
            rangetype = SCORE
        else:
            raise CommandError(SYNTAX)
        j += 1
    reverse = direction == -1
    if rangetype == 0:
        rangetype = RANK
    if limit != -1 and rangetype == RANK:
        raise CommandError("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    if withscores and rangetype == LEX:
        raise CommandError("syntax error, WITHSCORES not supported in combination with BYLEX")
    if reverse and rangetype in (SCORE, LEX):
        minidx, maxidx = maxidx, minidx
    bounds: tuple[Any, ...]
    if rangetype == RANK:
        bounds = (to_int(argv[minidx]), to_int(argv[maxidx]))
    elif rangetype == SCORE:
        bounds = parse_score_range(argv[minidx], argv[maxidx])
    else:
        bounds = parse_lex_range(argv[minidx], argv[maxidx])
    db = c.db
    z = zset_of(db.lookup_read(key))
    if z is None:
        return [] if not store else _store_range(c, argv[1], [], -1, reverse)
    lo, hi, hint = _range_span(z, rangetype, reverse, bounds, offset, limit)
    if not store:
        return span_reply(c, z, lo, hi, reverse, withscores)
    items = list(z.index.islice(lo, hi, reverse=reverse)) if hi > lo else []
    return _store_range(c, argv[1], items, hint, reverse)


def _store_range(c: Any, dst: bytes, items: list[tuple[float, bytes]], hint: int, descending: bool) -> int:
    """ZRANGESTORE's write of ``items`` (in the reply's order: descending for REV)."""
    db = c.db
    if not items:
        if db.lookup_write(dst) is not None:
            db.delete(dst)
            c.keyspace.changed(db, dst, b"del", "g")
        return 0
    lim = limits(c)
    out = ZSetValue.create(max(hint, 0), 0, *lim).added_in_order(items, descending, *lim)
    existed = db.lookup_write(dst) is not None
    db.set(dst, out)
    if not existed:
        c.keyspace.notify(db.index, "n", b"new", dst)
    c.keyspace.changed(db, dst, b"zrangestore", "z")
    return len(items)


_RANGE_ARGS = ("key start stop [sortby=(BYSCORE | BYLEX)@6.2.0] [REV@6.2.0] "
               "[LIMIT (offset:integer count:integer)@6.2.0] [WITHSCORES]")


@command("zrange", -4, "readonly", (1, 1, 1), **ZS, since="1.2.0",
         summary="Returns members in a sorted set within a range of indexes.",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
         args=_RANGE_ARGS, history=(("6.2.0", "Added the `REV`, `BYSCORE`, `BYLEX` and `LIMIT` options."),))
def zrange(c: Any, argv: list[bytes]) -> Any:
    return zrange_generic(c, argv, 1, False, 0, 0)


@command("zrangestore", -5, "write denyoom", (1, 2, 1), **ZS, since="6.2.0",
         summary="Stores a range of members from sorted set in a key.",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.",
         args=("dst:key src:key min max [sortby=(BYSCORE | BYLEX)] [REV] [LIMIT (offset:integer "
               "count:integer)]"),
         key_specs=[_spec(["OW", "update"], 1), _spec(["RO", "access"], 2)], events="zrangestore del")
def zrangestore(c: Any, argv: list[bytes]) -> Any:
    return zrange_generic(c, argv, 2, True, 0, 0)


@command("zrevrange", -4, "readonly", (1, 1, 1), **ZS, since="1.2.0",
         summary="Returns members in a sorted set within a range of indexes in reverse order.",
         complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.",
         args="key start:integer stop:integer [WITHSCORES]", doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`ZRANGE` with the `REV` argument")
def zrevrange(c: Any, argv: list[bytes]) -> Any:
    return zrange_generic(c, argv, 1, False, RANK, -1)


_BYSCORE_COMPLEXITY = ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
                       "elements being returned. If M is constant (e.g. always asking for the first 10 elements with "
                       "LIMIT), you can consider it O(log(N)).")


@command("zrangebyscore", -4, "readonly", (1, 1, 1), **ZS, since="1.0.5",
         summary="Returns members in a sorted set within a range of scores.", complexity=_BYSCORE_COMPLEXITY,
         args="key min:double max:double [WITHSCORES@2.0.0] [LIMIT (offset:integer count:integer)]",
         history=(("2.0.0", "Added the `WITHSCORES` modifier."),), doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`ZRANGE` with the `BYSCORE` argument")
def zrangebyscore(c: Any, argv: list[bytes]) -> Any:
    return zrange_generic(c, argv, 1, False, SCORE, 1)


@command("zrevrangebyscore", -4, "readonly", (1, 1, 1), **ZS, since="2.2.0",
         summary="Returns members in a sorted set within a range of scores in reverse order.",
         complexity=_BYSCORE_COMPLEXITY,
         args="key max:double min:double [WITHSCORES] [LIMIT (offset:integer count:integer)]",
         history=(("2.1.6", "`min` and `max` can be exclusive."),), doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`ZRANGE` with the `REV` and `BYSCORE` arguments")
def zrevrangebyscore(c: Any, argv: list[bytes]) -> Any:
    return zrange_generic(c, argv, 1, False, SCORE, -1)


@command("zrangebylex", -4, "readonly", (1, 1, 1), **ZS, since="2.8.9",
         summary="Returns members in a sorted set within a lexicographical range.", complexity=_BYSCORE_COMPLEXITY,
         args="key min max [LIMIT (offset:integer count:integer)]", doc_flags="deprecated",
         deprecated_since="6.2.0", replaced_by="`ZRANGE` with the `BYLEX` argument")
def zrangebylex(c: Any, argv: list[bytes]) -> Any:
    return zrange_generic(c, argv, 1, False, LEX, 1)


@command("zrevrangebylex", -4, "readonly", (1, 1, 1), **ZS, since="2.8.9",
         summary="Returns members in a sorted set within a lexicographical range in reverse order.",
         complexity=_BYSCORE_COMPLEXITY, args="key max min [LIMIT (offset:integer count:integer)]",
         doc_flags="deprecated", deprecated_since="6.2.0", replaced_by="`ZRANGE` with the `REV` and `BYLEX` arguments")
def zrevrangebylex(c: Any, argv: list[bytes]) -> Any:
    return zrange_generic(c, argv, 1, False, LEX, -1)


# ----------------------------------------------------------------------------- ZREMRANGEBY*


def _zremrange(c: Any, argv: list[bytes], rangetype: int) -> Any:
    db, key = c.db, argv[1]
    if rangetype == RANK:
        start, end = to_int(argv[2]), to_int(argv[3])
        event = b"zremrangebyrank"
    elif rangetype == SCORE:
        bounds = parse_score_range(argv[2], argv[3])
        event = b"zremrangebyscore"
    else:
        lex = parse_lex_range(argv[2], argv[3])
        event = b"zremrangebylex"
    z = zset_of(db.lookup_write(key))
    if z is None:
        return 0
    n = len(z)
    if rangetype == RANK:
        span = index_span(start, end, n)
        if span is None:
            return 0
        lo, hi = span[0], span[1] + 1
    elif rangetype == SCORE:
        lo, hi = z.score_span(*bounds)
    else:
        lo, hi = _lex_span(z, *lex, True)
    deleted = z.remove_span(lo, hi)
    if deleted:
        c.keyspace.changed(db, key, event, "z", dirty=deleted)
        _delete_emptied(c, db, key, z)
    return deleted


_REM_COMPLEXITY = ("O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements "
                   "removed by the operation.")


@command("zremrangebyrank", 4, "write", (1, 1, 1), **ZS, since="2.0.0",
         summary="Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.",
         complexity=_REM_COMPLEXITY, args="key start:integer stop:integer", key_flags="RW delete",
         events="zremrangebyrank del")
def zremrangebyrank(c: Any, argv: list[bytes]) -> Any:
    return _zremrange(c, argv, RANK)


@command("zremrangebyscore", 4, "write", (1, 1, 1), **ZS, since="1.2.0",
         summary="Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.",
         complexity=_REM_COMPLEXITY, args="key min:double max:double", key_flags="RW delete",
         events="zremrangebyscore del")
def zremrangebyscore(c: Any, argv: list[bytes]) -> Any:
    return _zremrange(c, argv, SCORE)


@command("zremrangebylex", 4, "write", (1, 1, 1), **ZS, since="2.8.9",
         summary="Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.",
         complexity=_REM_COMPLEXITY, args="key min:string max:string", key_flags="RW delete",
         events="zremrangebylex del")
def zremrangebylex(c: Any, argv: list[bytes]) -> Any:
    return _zremrange(c, argv, LEX)


# ----------------------------------------------------------------------------- pops


def pop_generic(c: Any, keys: list[bytes], where_max: bool, emit_key: bool, count: int, nested: bool,
                nil_when_empty: bool) -> Any:
    """``genericZpopCommand``: pop from the first existing key; count -1 = single pop."""
    db = c.db
    z: ZSetValue | None = None
    key = b""
    for key in keys:
        value = db.lookup_write(key)
        if value is None:
            continue
        z = zset_of(value)
        break
    if z is None:
        return NULL_ARRAY if nil_when_empty else []
    if count == 0:
        return []
    taken = min(1 if count == -1 else count, len(z))
    pairs = None
    if taken > 1 and not nested and not c.resp3:  # RESP2 pairs read straight off the index
        n = len(z)
        lo, hi = (n - taken, n) if where_max else (0, taken)
        pairs = z.index.flat_pairs(lo, hi, where_max)
    if pairs is not None:
        z.remove_span(lo, hi)
        chunks = []
    else:
        chunks = z.pop_chunks(taken, where_max)  # ascending; the pop's order is the reverse for a max
    c.keyspace.changed(db, key, b"zpopmax" if where_max else b"zpopmin", "z", dirty=taken)
    _delete_emptied(c, db, key, z)
    if emit_key:  # BZPOPMIN/MAX, ZMPOP, BZMPOP: propagated as the plain pop, with how many it took
        pop = [b"ZPOPMAX" if where_max else b"ZPOPMIN", key]
        propagate_as(c, pop if count == -1 else [*pop, b"%d" % taken])
    reply: list[Any]
    if not nested and not c.resp3:
        if pairs is None:
            pairs = flat_pairs_of_chunks(chunks, where_max)
        reply = [key, *pairs] if emit_key else pairs
    else:
        popped = chain.from_iterable(map(reversed, reversed(chunks)) if where_max else chunks)
        if nested:
            nested_pairs: list[Any] = [[m, Double(s)] for s, m in popped]
            reply = [key, nested_pairs] if emit_key else nested_pairs
        else:
            reply = [key] if emit_key else []
            for s, m in popped:
                reply.append(m)
                reply.append(Double(s))
    release(chunks, 1000)  # the popped items' last references (beside the reply's): freed in slices
    return reply


def _zpop(c: Any, argv: list[bytes], where_max: bool) -> Any:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = -1
    if len(argv) == 3:
        count = to_positive_long(argv[2])
    elif argv[1] not in c.db.data:
        return []  # no key (a drained queue, the hot case): pop_generic's reply, and its lookup has no effect
    return pop_generic(c, [argv[1]], where_max, False, count, c.resp3 and count != -1, False)


_POP_COMPLEXITY = "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped."


@command("zpopmin", -2, "write fast", (1, 1, 1), **ZS, since="5.0.0",
         summary="Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
         complexity=_POP_COMPLEXITY, args="key [count:integer]", key_flags="RW access delete", events="zpopmin del")
def zpopmin(c: Any, argv: list[bytes]) -> Any:
    return _zpop(c, argv, False)


@command("zpopmax", -2, "write fast", (1, 1, 1), **ZS, since="5.0.0",
         summary="Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.",
         complexity=_POP_COMPLEXITY, args="key [count:integer]", key_flags="RW access delete", events="zpopmax del")
def zpopmax(c: Any, argv: list[bytes]) -> Any:
    return _zpop(c, argv, True)


def _has_zset_data(c: Any, keys: list[bytes]) -> bool:
    """Whether a blocked pop can be served: a key past its TTL counts as missing and stays
    for a command to delete (Redis looks with LOOKUP_NOEFFECTS)."""
    db = c.db
    for key in keys:
        value = db.data.get(key)
        if type(value) is ZSetValue and value.scores and not c.keyspace.is_expired(db, key):
            return True
    return False


def blocking_pop(c: Any, keys: list[bytes], where_max: bool, timeout: float, count: int, nested: bool) -> Any:
    """``blockingGenericZpopCommand``: serve now, or block until a key has members."""
    db = c.db
    for key in keys:
        value = db.lookup_write(key)
        if value is None:
            continue
        z = zset_of(value)
        if not z.scores:
            continue
        return pop_generic(c, [key], where_max, True, count, nested, nested)
    if c.server.in_exec:
        return NULL_ARRAY
    from dumpling.dispatch import Blocked

    def attempt() -> Any:
        if not _has_zset_data(c, keys):
            return None
        for key in keys:
            value = c.db.lookup_write(key)
            if value is None:
                continue
            z = zset_of(value)
            if not z.scores:
                continue
            return pop_generic(c, [key], where_max, True, count, nested, nested)
        return None

    return Blocked(dedupe(keys), timeout, _retry_safely(attempt), NULL_ARRAY)


def _bzpop(c: Any, argv: list[bytes], where_max: bool) -> Any:
    timeout = parse_timeout(argv[-1], c.keyspace.now)
    return blocking_pop(c, argv[1:-1], where_max, timeout, -1, False)


@command("bzpopmin", -3, "write fast blocking", (1, -2, 1), **ZS, since="5.0.0",
         summary="Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
         complexity="O(log(N)) with N being the number of elements in the sorted set.", args="key... timeout:double",
         key_flags="RW access delete", history=(("6.0.0", "`timeout` is interpreted as a double instead of an integer."),),
         events="zpopmin del")
def bzpopmin(c: Any, argv: list[bytes]) -> Any:
    return _bzpop(c, argv, False)


@command("bzpopmax", -3, "write fast blocking", (1, -2, 1), **ZS, since="5.0.0",
         summary="Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
         complexity="O(log(N)) with N being the number of elements in the sorted set.", args="key... timeout:double",
         key_flags="RW access delete", history=(("6.0.0", "`timeout` is interpreted as a double instead of an integer."),),
         events="zpopmax del")
def bzpopmax(c: Any, argv: list[bytes]) -> Any:
    return _bzpop(c, argv, True)


def _zmpop(c: Any, argv: list[bytes], numkeys_at: int, blocking: bool) -> Any:
    keys, lowest, count = parse_mpop(argv, numkeys_at, b"min", b"max")
    if blocking:
        timeout = parse_timeout(argv[1], c.keyspace.now)
        return blocking_pop(c, keys, not lowest, timeout, count, True)
    return pop_generic(c, keys, not lowest, True, count, True, True)


_MPOP_COMPLEXITY = ("O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the "
                    "sorted set, and M being the number of elements popped.")


@command("zmpop", -4, "write", (0, 0, 0), **ZS, since="7.0.0",
         summary="Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.",
         complexity=_MPOP_COMPLEXITY, args="numkeys:integer key... where=(MIN|MAX) [COUNT count:integer]",
         key_specs=[_keynum_spec(["RW", "access", "delete"], 1)], getkeys=_keys_zunion, events="zpopmin zpopmax del")
def zmpop(c: Any, argv: list[bytes]) -> Any:
    return _zmpop(c, argv, 1, False)


@command("bzmpop", -5, "write blocking", (0, 0, 0), **ZS, since="7.0.0",
         summary="Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
         complexity=_MPOP_COMPLEXITY,
         args="timeout:double numkeys:integer key... where=(MIN|MAX) [COUNT count:integer]",
         key_specs=[_keynum_spec(["RW", "access", "delete"], 2)], getkeys=_keys_bzmpop, events="zpopmin zpopmax del")
def bzmpop(c: Any, argv: list[bytes]) -> Any:
    return _zmpop(c, argv, 2, True)


# ----------------------------------------------------------------------------- ZRANDMEMBER


@command("zrandmember", -2, "readonly", (1, 1, 1), **ZS, since="6.2.0",
         summary="Returns one or more random members from a sorted set.",
         complexity="O(N) where N is the number of members returned", args="key [options=(count:integer [WITHSCORES])]",
         tips="nondeterministic_output")
def zrandmember(c: Any, argv: list[bytes]) -> Any:
    rng = random.random
    if len(argv) >= 3:
        count = to_range_long(argv[2], -LLONG_MAX, LLONG_MAX, None)
        withscores = False
        if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
            raise CommandError(SYNTAX)
        if len(argv) == 4:
            withscores = True
            if count < -LLONG_MAX // 2 or count > LLONG_MAX // 2:
                raise CommandError("value is out of range")
        z = zset_of(c.db.lookup_read(argv[1]))
        if z is None or count == 0:
            return []
        n = len(z)
        index = z.index
        if count < 0 or count == 1:
            # With repetitions the reply is as long as asked: up to 2**63 members.
            extra = (30 if c.resp3 else 32) if withscores else 0  # a score: a double, or its text as a bulk

            def size(pick: tuple[float, bytes]) -> int:
                return bulk_size(pick[1]) + extra

            picked = repeat_within(c, abs(count), lambda: index[int(rng() * n)], size)
            if picked is None:  # the client's output-buffer limit closed it
                return []
            picks = picked
        elif count >= n:
            return span_reply(c, z, 0, n, True, withscores)  # zsets are iterated from the tail (zuiInitIterator)
        elif z.encoding == "listpack":
            picks = [index[p] for p in sorted(random.sample(range(n), count))]
        else:
            picks = [index[p] for p in random.sample(range(n), count)]
        return with_scores(c, picks, withscores)
    z = zset_of(c.db.lookup_read(argv[1]))
    if z is None:
        return None
    return z.index[int(rng() * len(z))][1]


# ----------------------------------------------------------------------------- set algebra

UNION, INTER, DIFF = 1, 2, 3
AGG_SUM, AGG_MIN, AGG_MAX = 1, 2, 3


def _aggregate(target: float, value: float, how: int) -> float:
    if how == AGG_SUM:
        total = target + value
        return 0.0 if total != total else total
    if how == AGG_MIN:
        return value if value < target else target
    return value if value > target else target


def _source_items(value: Any) -> list[tuple[bytes, float]]:
    """(member, score) pairs of a zset (score order) or a set (score 1)."""
    if value is None:
        return []
    if type(value) is ZSetValue:
        return [(m, s) for s, m in value.index]
    return [(m, 1.0) for m in value.members]


def _source_find(value: Any, member: bytes) -> float | None:
    if value is None:
        return None
    if type(value) is ZSetValue:
        return value.scores.get(member)
    return 1.0 if member in value.members else None


def algebra(c: Any, argv: list[bytes], dst: bytes | None, numkeys_at: int, op: int, card_only: bool) -> Any:
    """``zunionInterDiffGenericCommand``."""
    setnum = to_int(argv[numkeys_at])
    name = argv[0].lower().decode("utf-8", "replace")
    if setnum < 1:
        raise CommandError(f"at least 1 input key is needed for '{name}' command")
    if setnum > len(argv) - (numkeys_at + 1):
        raise CommandError(SYNTAX)
    db = c.db
    sources: list[Any] = []
    j = numkeys_at + 1
    for _ in range(setnum):
        value = db.lookup_read(argv[j])
        if value is not None and type(value) is not ZSetValue and type(value) is not SetValue:
            raise CommandError(WRONGTYPE)
        sources.append(value)
        j += 1
    weights = [1.0] * setnum
    aggregate = AGG_SUM
    withscores = False
    limit = 0
    remaining = len(argv) - j
    while remaining:
        opt = argv[j].lower()
        if op != DIFF and not card_only and remaining >= setnum + 1 and opt == b"weights":
            j += 1
            remaining -= 1
            for i in range(setnum):
                weights[i] = to_float(argv[j], "weight value is not a float")
                j += 1
                remaining -= 1
        elif op != DIFF and not card_only and remaining >= 2 and opt == b"aggregate":
            how = argv[j + 1].lower()
            if how == b"sum":
                aggregate = AGG_SUM
            elif how == b"min":
                aggregate = AGG_MIN
            elif how == b"max":
                aggregate = AGG_MAX
            else:
                raise CommandError(SYNTAX)
            j += 2
            remaining -= 2
        elif remaining >= 1 and dst is None and not card_only and opt == b"withscores":
            j += 1
            remaining -= 1
            withscores = True
        elif card_only and remaining >= 2 and opt == b"limit":
            limit = to_positive_long(argv[j + 1], "LIMIT can't be negative")
            j += 2
            remaining -= 2
        else:
            raise CommandError(SYNTAX)
    src = list(zip(sources, weights, strict=True))
    if op != DIFF:
        src.sort(key=lambda sw: 0 if sw[0] is None else len(sw[0]))
    result: dict[bytes, float] = {}
    if op == INTER:
        first, w0 = src[0]
        if first is not None and len(first):
            cardinality = 0
            for member, score0 in _source_items(first):
                score = w0 * score0
                if score != score:
                    score = 0.0
                for other, w in src[1:]:
                    if other is first:
                        score = _aggregate(score, score0 * w, aggregate)
                        continue
                    found = _source_find(other, member)
                    if found is None:
                        break
                    score = _aggregate(score, found * w, aggregate)
                else:
                    if card_only:
                        cardinality += 1
                        if limit and cardinality >= limit:
                            break
                    else:
                        result[member] = score
            if card_only:
                return cardinality
        elif card_only:
            return 0
    elif op == UNION:
        for value, w in src:
            for member, s in _source_items(value):
                score = w * s
                if score != score:
                    score = 0.0
                if member in result:
                    result[member] = _aggregate(result[member], score, aggregate)
                else:
                    result[member] = score
    else:
        first = src[0][0]
        # membership only: a zset's scores dict or a set's members answer `in` in C
        others = [v.scores if type(v) is ZSetValue else v.members for v, _ in src[1:] if v is not None]
        for member, s in _source_items(first):
            for other in others:
                if member in other:
                    break
            else:
                result[member] = s
    out = ZSetValue.from_pairs(result.items(), "skiplist")
    if dst is None:
        return span_reply(c, out, 0, len(out), False, withscores)
    if out.scores:
        out.shrink_if_small(*limits(c))
        existed = db.lookup_write(dst) is not None
        db.set(dst, out)
        if not existed:
            c.keyspace.notify(db.index, "n", b"new", dst)
        event = {UNION: b"zunionstore", INTER: b"zinterstore", DIFF: b"zdiffstore"}[op]
        c.keyspace.changed(db, dst, event, "z")
        return len(out)
    if db.lookup_write(dst) is not None:
        db.delete(dst)
        c.keyspace.changed(db, dst, b"del", "g")
    return 0


_STORE_SPECS = [_spec(["OW", "update"], 1), _keynum_spec(["RO", "access"], 2)]
_READ_SPECS = [_keynum_spec(["RO", "access"], 1)]
_AGG_ARGS = "[WEIGHTS weight:integer...] [AGGREGATE (SUM | MIN | MAX)]"


@command("zunion", -3, "readonly", (0, 0, 0), **ZS, since="6.2.0", summary="Returns the union of multiple sorted sets.",
         complexity="O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
         args=f"numkeys:integer key... {_AGG_ARGS} [WITHSCORES]", key_specs=_READ_SPECS, getkeys=_keys_zunion)
def zunion(c: Any, argv: list[bytes]) -> Any:
    return algebra(c, argv, None, 1, UNION, False)


@command("zinter", -3, "readonly", (0, 0, 0), **ZS, since="6.2.0", summary="Returns the intersect of multiple sorted sets.",
         complexity="O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
         args=f"numkeys:integer key... {_AGG_ARGS} [WITHSCORES]", key_specs=_READ_SPECS, getkeys=_keys_zunion)
def zinter(c: Any, argv: list[bytes]) -> Any:
    return algebra(c, argv, None, 1, INTER, False)


@command("zdiff", -3, "readonly", (0, 0, 0), **ZS, since="6.2.0", summary="Returns the difference between multiple sorted sets.",
         complexity="O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
         args="numkeys:integer key... [WITHSCORES]", key_specs=_READ_SPECS, getkeys=_keys_zunion)
def zdiff(c: Any, argv: list[bytes]) -> Any:
    return algebra(c, argv, None, 1, DIFF, False)


@command("zintercard", -3, "readonly", (0, 0, 0), **ZS, since="7.0.0",
         summary="Returns the number of members of the intersect of multiple sorted sets.",
         complexity="O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.",
         args="numkeys:integer key... [LIMIT limit:integer]", key_specs=_READ_SPECS, getkeys=_keys_zunion)
def zintercard(c: Any, argv: list[bytes]) -> Any:
    return algebra(c, argv, None, 1, INTER, True)


@command("zunionstore", -4, "write denyoom", (1, 1, 1), **ZS, since="2.0.0",
         summary="Stores the union of multiple sorted sets in a key.",
         complexity="O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.",
         args=f"destination numkeys:integer key... {_AGG_ARGS}", key_specs=_STORE_SPECS, getkeys=_keys_zunionstore,
         events="zunionstore del")
def zunionstore(c: Any, argv: list[bytes]) -> Any:
    return algebra(c, argv, argv[1], 2, UNION, False)


@command("zinterstore", -4, "write denyoom", (1, 1, 1), **ZS, since="2.0.0",
         summary="Stores the intersect of multiple sorted sets in a key.",
         complexity="O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.",
         args=f"destination numkeys:integer key... {_AGG_ARGS}", key_specs=_STORE_SPECS, getkeys=_keys_zunionstore,
         events="zinterstore del")
def zinterstore(c: Any, argv: list[bytes]) -> Any:
    return algebra(c, argv, argv[1], 2, INTER, False)


@command("zdiffstore", -4, "write denyoom", (1, 1, 1), **ZS, since="6.2.0",
         summary="Stores the difference of multiple sorted sets in a key.",
         complexity="O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.",
         args="destination numkeys:integer key...", key_specs=_STORE_SPECS, getkeys=_keys_zunionstore,
         events="zdiffstore del")
def zdiffstore(c: Any, argv: list[bytes]) -> Any:
    return algebra(c, argv, argv[1], 2, DIFF, False)


# ----------------------------------------------------------------------------- ZSCAN


@command("zscan", -3, "readonly", (1, 1, 1), **ZS, since="2.8.0", summary="Iterates over members and scores of a sorted set.",
         complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
         args="key cursor:integer [MATCH pattern:pattern] [COUNT count:integer]", tips="nondeterministic_output")
def zscan(c: Any, argv: list[bytes]) -> Any:
    cursor = parse_cursor(argv[2])
    z = zset_of(c.db.lookup_read(argv[1]))
    if z is None:
        return [b"0", []]
    pattern, count, _ = parse_scan_options(argv, 3, False)
    out: list[Any] = []
    if z.encoding == "listpack":
        for score, member in z.index:
            if pattern is None or glob_match(pattern, member):
                out.append(member)
                out.append(d2string(score))
        return [b"0", out]
    next_cursor, found = z.scan_order().scan(cursor, count)
    scores = z.scores
    for member in found:
        score = scores.get(member)
        if score is None:
            continue
        if pattern is None or glob_match(pattern, member):
            out.append(member)
            # db.c's scan callback prints a skiplist score with ld2string(LD_STR_AUTO), %.17Lg,
            # even in 7.4 (a listpack one is the stored d2string text): for a double %.17g.
            out.append(b"%.17g" % score)
    return [str(next_cursor).encode(), out]


attach_native_handlers("zadd", "zpopmin", "zpopmax")  # C handlers of ZADD key score member and a pop of a missing key (dumpling/_collections.c)
