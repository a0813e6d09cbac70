"""Stream commands: XADD … XSETID, consumer groups, XREAD/XREADGROUP with BLOCK.

Argument parsing, error texts and reply shapes follow Redis 7.4's ``t_stream.c``:
the 7.2+ consumer seen/active times, XINFO CONSUMERS ``inactive``, ``XREAD … +``
and blocked reads that re-run the command when a key becomes ready (so a deleted
stream or a destroyed group answers a blocked XREADGROUP with -NOGROUP).  The
stream structure, its listpack node layout and the lag arithmetic live in
``dumpling.datatypes.streams``.
"""

from __future__ import annotations

from typing import Any

from dumpling.commands.common import LLONG_MAX, check_type, help_header, parse_timeout_ms, to_int
from dumpling.commands.lists import attach_native_handlers
from dumpling.commands.registry import command, container
from dumpling.datatypes.streams import (
    INVALID_ENTRIES_READ,
    MASK64,
    MAX_ID,
    Consumer,
    ConsumerGroup,
    PendingEntry,
    StreamID,
    StreamValue,
    range_wire,
)
from dumpling.errors import SYNTAX, CommandError
from dumpling.numbers import wrap_int64
from dumpling.persistence.propagation import propagate_as
from dumpling.protocol import NULL_ARRAY, OK, ErrorReply, Map, Raw, Status, parse_strict_int
from dumpling.replybudget import SMALL_REPLY, reply_budget

ST: dict[str, Any] = {"group": "stream"}
INVALID_ID = "Invalid stream ID specified as stream command argument"
NO_SUCH_KEY = "no such key"
_C_SPACE = b" \t\n\r\x0b\x0c"


# ----------------------------------------------------------------------------- IDs


def fmt_id(entry_id: StreamID) -> bytes:
    return b"%d-%d" % entry_id


def _string2ull(text: bytes) -> int | None:
    """Redis's ``string2ull``: strict ``string2ll`` first, then C ``strtoull``."""
    value = parse_strict_int(text)
    if value is not None:
        return value if value >= 0 else None
    body = text.lstrip(_C_SPACE)
    neg = body[:1] == b"-"
    if body[:1] in (b"+", b"-"):
        body = body[1:]
    if not body or not body.isdigit() or not text:
        return None
    number = int(body)
    if number > MASK64:
        return None
    return (-number) & MASK64 if neg else number


def parse_id(arg: bytes, missing_seq: int, strict: bool, allow_seq_star: bool = False) -> tuple[StreamID, bool]:
    """``streamGenericParseIDOrReply``: returns (id, seq_given); raises on invalid input."""
    if len(arg) > 127:
        raise CommandError(INVALID_ID)
    nul = arg.find(b"\x00")
    text = arg[:nul] if nul >= 0 else arg
    if strict and text in (b"-", b"+"):
        raise CommandError(INVALID_ID)
    if text == b"-":
        return (0, 0), True
    if text == b"+":
        return MAX_ID, True
    ms_text, dash, seq_text = text.partition(b"-")
    ms = _string2ull(ms_text)
    if ms is None:
        raise CommandError(INVALID_ID)
    if not dash:
        return (ms, missing_seq), True
    if allow_seq_star and seq_text == b"*":
        return (ms, 0), False
    seq = _string2ull(seq_text)
    if seq is None:
        raise CommandError(INVALID_ID)
    return (ms, seq), True


def parse_interval_id(arg: bytes, missing_seq: int) -> tuple[StreamID, bool]:
    """An XRANGE bound: ``(`` makes it exclusive (and forbids ``-``/``+``)."""
    if len(arg) > 1 and arg[:1] == b"(":
        return parse_id(arg[1:], missing_seq, True)[0], True
    return parse_id(arg, missing_seq, False)[0], False


def incr_id(entry_id: StreamID) -> StreamID | None:
    ms, seq = entry_id
    if seq == MASK64:
        if ms == MASK64:
            return None
        return (ms + 1, 0)
    return (ms, seq + 1)


def decr_id(entry_id: StreamID) -> StreamID | None:
    ms, seq = entry_id
    if seq == 0:
        if ms == 0:
            return None
        return (ms - 1, MASK64)
    return (ms, seq - 1)


# ----------------------------------------------------------------------------- helpers


def stream_of(value: Any) -> StreamValue | None:
    return check_type(value, StreamValue)


def node_limits(c: Any) -> tuple[int, int]:
    cfg = c.server.config
    return cfg["stream-node-max-bytes"], cfg["stream-node-max-entries"]


def entry_reply(entry_id: StreamID, flat: list[bytes]) -> list[Any]:
    """``flat`` as read from the entries: a list of its own (they are stored packed), not copied."""
    return [fmt_id(entry_id), flat]


def range_reply(s: StreamValue, start: StreamID, end: StreamID, count: int, rev: bool) -> list[Any]:
    out: list[Any] = []
    if start > end:
        return out
    for entry_id, flat in s.entries.irange_items(start, end, reverse=rev):
        out.append(entry_reply(entry_id, flat))
        if count and len(out) == count:
            break
    return out


def range_items(c: Any, s: StreamValue, start: StreamID, end: StreamID, count: int, rev: bool, spent: int = 0) -> Any:
    """``range_reply``'s entries as the reply carries them: for a client, their RESP written
    straight from the packed chunks (``streams.range_wire``: a ``Raw``, no object per entry);
    a big one only as far as the client's output-buffer hard limit lets it, less ``spent``
    bytes of the same reply already written (XREAD's other streams).  None: the limit closed
    the client (what is past it was never written).  A script gets values."""
    if c.from_script:
        return range_reply(s, start, end, count, rev)
    wire = range_wire(s.entries, start, end, count, rev, SMALL_REPLY)
    if wire is None:  # over SMALL_REPLY: written again, against the budget when there is one
        budget = reply_budget(c)
        wire = range_wire(s.entries, start, end, count, rev, -1 if budget is None else max(budget.left - spent, 0))
        if wire is None:
            assert budget is not None
            budget.spend(budget.left + 1)  # (past the limit: the client is closed as the limit closes it)
            return None
    return Raw(wire)


def subcommand_syntax_error(argv: list[bytes]) -> CommandError:
    sub = argv[1][:128].decode("utf-8", "replace")
    return CommandError(f"unknown subcommand or wrong number of arguments for '{sub}'. "
                        f"Try {argv[0].decode('utf-8', 'replace').upper()} HELP.")


def _spec(flags: list[str], index: int) -> dict[str, Any]:
    return {"flags": flags, "begin_search": {"type": "index", "spec": {"index": index}},
            "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}}


def _streams_keyword_keys(argv: list[bytes]) -> list[int]:
    """Keys of XREAD/XREADGROUP: the first half of the arguments after STREAMS."""
    for i in range(1, len(argv)):
        if argv[i].lower() == b"streams":
            rest = len(argv) - i - 1
            if rest <= 0 or rest % 2:
                raise ValueError("unbalanced STREAMS")
            return list(range(i + 1, i + 1 + rest // 2))
    raise ValueError("no STREAMS")


def _event(c: Any, key: bytes, event: bytes) -> None:
    """Dirty counter and a stream keyspace event, without invalidating WATCH: Redis's
    consumer-group commands never call ``signalModifiedKey``."""
    ks = c.keyspace
    ks.dirty += 1
    if ks.notify_flags:
        ks.notify(c.db.index, "t", event, key)


# ----------------------------------------------------------------------------- trimming options


class TrimArgs:
    __slots__ = ("maxlen", "minid", "approx", "limit", "nomkstream", "id", "id_given", "seq_given", "id_pos",
                 "threshold_pos")

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: StreamID | None = None
        self.approx = False
        self.limit = 0
        self.nomkstream = False
        self.id: StreamID = (0, 0)
        self.id_given = False
        self.seq_given = True
        self.id_pos = 0
        self.threshold_pos = 0  # where the MAXLEN/MINID threshold is in argv

    @property
    def strategy(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def parse_trim_args(c: Any, argv: list[bytes], xadd: bool) -> TrimArgs:
    """``streamParseAddOrTrimArgsOrReply``."""
    args = TrimArgs()
    limit_given = False
    i = 2
    n = len(argv)
    while i < n:
        more = n - 1 - i
        opt = argv[i]
        low = opt.lower()
        if xadd and opt == b"*":
            break
        if (low == b"maxlen" or low == b"minid") and more:
            if args.strategy:
                raise CommandError("syntax error, MAXLEN and MINID options at the same time are not compatible")
            args.approx = False
            if more >= 2 and argv[i + 1] in (b"~", b"="):  # optional exactness operator
                args.approx = argv[i + 1] == b"~"
                i += 1
            args.threshold_pos = i + 1
            if low == b"maxlen":
                maxlen = to_int(argv[i + 1])
                if maxlen < 0:
                    raise CommandError("The MAXLEN argument must be >= 0.")
                args.maxlen = maxlen
            else:
                args.minid = parse_id(argv[i + 1], 0, True)[0]
            i += 1
        elif low == b"limit" and more:
            limit = to_int(argv[i + 1])
            if limit < 0:
                raise CommandError("The LIMIT argument must be >= 0.")
            args.limit = limit
            limit_given = True
            i += 1
        elif xadd and low == b"nomkstream":
            args.nomkstream = True
        elif xadd:
            args.id, args.seq_given = parse_id(opt, 0, True, allow_seq_star=True)
            args.id_given = True
            break
        else:
            raise CommandError(SYNTAX)
        i += 1
    if args.limit and not args.strategy:
        raise CommandError("syntax error, LIMIT cannot be used without specifying a trimming strategy")
    if not xadd and not args.strategy:
        raise CommandError("syntax error, XTRIM must be called with a trimming strategy")
    if c.keyspace.loading:
        # mustObeyClient (the AOF, a master): the trim was rewritten exact where it ran, and
        # may still carry the LIMIT it was sent with (streamRewriteTrimArgument keeps it)
        args.limit = 0
    elif limit_given:
        if not args.approx:
            raise CommandError("syntax error, LIMIT cannot be used without the special ~ option")
    elif args.approx:
        limit = 100 * c.server.config["stream-node-max-entries"]
        if limit <= 0:
            limit = 10000
        args.limit = min(limit, 1000000)
    else:
        args.limit = 0
    args.id_pos = i
    return args


def _trim(c: Any, s: StreamValue, args: TrimArgs) -> int:
    return s.trim(args.maxlen, args.minid, args.approx, args.limit, *node_limits(c))


def _exact_trim(argv: list[bytes], s: StreamValue, args: TrimArgs) -> list[bytes]:
    """``streamRewriteApproxSpecifier`` + ``streamRewriteTrimArgument``: an approximate trim
    (``~``) propagates as the exact trim to what it left (``= <length>`` / ``= <first ID>``),
    so a replica or an AOF reload keeps the same entries."""
    exact = list(argv)
    exact[args.threshold_pos - 1] = b"="
    if args.maxlen is not None:
        exact[args.threshold_pos] = b"%d" % len(s)
    else:
        exact[args.threshold_pos] = fmt_id(s.entries.keys()[0] if s.entries else MAX_ID)
    return exact


# ----------------------------------------------------------------------------- XADD / XLEN / XDEL / XTRIM


@command("xadd", -5, "write denyoom fast", (1, 1, 1), **ST, since="5.0.0",
         summary="Appends a new message to a stream. Creates the key if it doesn't exist.",
         complexity="O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.",
         args=("key [NOMKSTREAM@6.2.0] [trim=(strategy=(MAXLEN | MINID@6.2.0) [operator=(equal='=' | "
               "approximately='~')] threshold [LIMIT count:integer@6.2.0])] id-selector=(auto-id='*' | "
               "id) data=(field value)..."),
         history=(("6.2.0", "Added the `NOMKSTREAM` option, `MINID` trimming strategy and the `LIMIT` option."),
                  ("7.0.0", "Added support for the `<ms>-*` explicit ID form.")),
         tips="nondeterministic_output", events="xadd xtrim",
         key_specs=[{"notes": "UPDATE instead of INSERT because of the optional trimming feature",
                     **_spec(["RW", "update"], 1)}])
def xadd(c: Any, argv: list[bytes]) -> Any:
    # (XADD key * field value... on an existing stream also runs in C: _collections.c native_xadd; change both)
    args = parse_trim_args(c, argv, True)
    field_pos = args.id_pos + 1
    nargs = len(argv) - field_pos
    if nargs < 2 or nargs % 2:
        raise CommandError("wrong number of arguments for 'xadd' command")
    if args.id_given and args.seq_given and args.id == (0, 0):
        raise CommandError("The ID specified in XADD must be greater than 0-0")
    db, key = c.db, argv[1]
    s = stream_of(db.lookup_write(key))
    created = False
    if s is None:
        if args.nomkstream:
            return None
        s = StreamValue()
        db.add(key, s)
        created = True
        c.keyspace.notify(db.index, "n", b"new", key)
    if s.last_id == MAX_ID:
        raise CommandError("The stream has exhausted the last possible ID, unable to add more items")
    last = s.last_id
    if args.id_given:
        if args.seq_given:
            new_id = args.id
        elif last[0] == args.id[0]:
            if last[1] == MASK64:
                raise CommandError("The ID specified in XADD is equal or smaller than the target stream top item")
            new_id = (last[0], last[1] + 1)
        else:
            new_id = args.id
    else:
        now = c.keyspace.now
        if now > last[0]:
            new_id = (now, 0)
        else:
            nxt = incr_id(last)
            new_id = nxt if nxt is not None else (0, 0)
    if new_id <= last:
        raise CommandError("The ID specified in XADD is equal or smaller than the target stream top item")
    flat = argv[field_pos:]
    if sum(map(len, flat)) > 1 << 30:
        raise CommandError("Elements are too large to be stored")
    s.append(new_id, flat, *node_limits(c))
    c.keyspace.changed(db, key, b"xadd", "t")
    if args.strategy and _trim(c, s, args):
        c.keyspace.notify(db.index, "t", b"xtrim", key)
    # propagated with the ID it made and an approximate trim made exact
    if args.approx or not (args.id_given and args.seq_given):
        form = _exact_trim(argv, s, args) if args.approx else list(argv)
        form[args.id_pos] = fmt_id(new_id)
        propagate_as(c, form)
    if not created and c.keyspace.blocked_keys:
        c.keyspace.signal_ready(db, key)
    return fmt_id(new_id)


@command("xlen", 2, "readonly fast", (1, 1, 1), **ST, since="5.0.0", summary="Return the number of messages in a stream.",
         args="key", key_flags="RO")
def xlen(c: Any, argv: list[bytes]) -> Any:
    s = stream_of(c.db.lookup_read(argv[1]))
    return 0 if s is None else len(s)


@command("xdel", -3, "write fast", (1, 1, 1), **ST, since="5.0.0",
         summary="Returns the number of messages after removing them from a stream.",
         complexity="O(1) for each single item to delete in the stream, regardless of the stream size.",
         args="key id:string...", key_flags="RW delete", events="xdel")
def xdel(c: Any, argv: list[bytes]) -> Any:
    db, key = c.db, argv[1]
    s = stream_of(db.lookup_write(key))
    if s is None:
        return 0
    ids = [parse_id(a, 0, True)[0] for a in argv[2:]]
    s.nodes(*node_limits(c))
    deleted = 0
    first_deleted = False
    for entry_id in ids:
        if s.delete(entry_id):
            if entry_id == s.first_id:
                first_deleted = True
            if entry_id > s.max_deleted_id:
                s.max_deleted_id = entry_id
            deleted += 1
    if deleted:
        if not s.entries:
            s.first_id = (0, 0)
        elif first_deleted:
            s.refresh_first_id()
        c.keyspace.changed(db, key, b"xdel", "t")
        c.keyspace.dirty += deleted - 1
    return deleted


@command("xtrim", -4, "write", (1, 1, 1), **ST, since="5.0.0", summary="Deletes messages from the beginning of a stream.",
         complexity="O(N), with N being the number of evicted entries. Constant times are very small however, since "
                    "entries are organized in macro nodes containing multiple entries that can be released with a "
                    "single deallocation.",
         args=("key trim=(strategy=(MAXLEN | MINID@6.2.0) [operator=(equal='=' | approximately='~')] "
               "threshold [LIMIT count:integer@6.2.0])"),
         history=(("6.2.0", "Added the `MINID` trimming strategy and the `LIMIT` option."),),
         key_flags="RW delete", tips="nondeterministic_output", events="xtrim")
def xtrim(c: Any, argv: list[bytes]) -> Any:
    args = parse_trim_args(c, argv, False)
    db, key = c.db, argv[1]
    s = stream_of(db.lookup_write(key))
    if s is None:
        return 0
    deleted = _trim(c, s, args)
    if deleted:
        c.keyspace.changed(db, key, b"xtrim", "t")
        c.keyspace.dirty += deleted - 1
        if args.approx:
            propagate_as(c, _exact_trim(argv, s, args))
    return deleted


# ----------------------------------------------------------------------------- XRANGE


def _xrange(c: Any, argv: list[bytes], rev: bool) -> Any:
    start_arg, end_arg = (argv[3], argv[2]) if rev else (argv[2], argv[3])
    start, start_ex = parse_interval_id(start_arg, 0)
    if start_ex:
        nxt = incr_id(start)
        if nxt is None:
            raise CommandError("invalid start ID for the interval")
        start = nxt
    end, end_ex = parse_interval_id(end_arg, MASK64)
    if end_ex:
        prv = decr_id(end)
        if prv is None:
            raise CommandError("invalid end ID for the interval")
        end = prv
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].lower() == b"count" and len(argv) - j - 1 >= 1:
            count = to_int(argv[j + 1])
            if count < 0:
                count = 0
            j += 2
        else:
            raise CommandError(SYNTAX)
    s = stream_of(c.db.lookup_read(argv[1]))
    if s is None:
        return []
    if count == 0:
        return NULL_ARRAY
    items = range_items(c, s, start, end, 0 if count == -1 else count, rev)
    return [] if items is None else items  # (None: the client was closed)


_RANGE_COMPLEXITY = ("O(N) with N being the number of elements being returned. If N is constant (e.g. always asking "
                     "for the first 10 elements with COUNT), you can consider it O(1).")


@command("xrange", -4, "readonly", (1, 1, 1), **ST, since="5.0.0",
         summary="Returns the messages from a stream within a range of IDs.", complexity=_RANGE_COMPLEXITY,
         args="key start:string end:string [COUNT count:integer]", history=(("6.2.0", "Added exclusive ranges."),))
def xrange(c: Any, argv: list[bytes]) -> Any:
    return _xrange(c, argv, False)


@command("xrevrange", -4, "readonly", (1, 1, 1), **ST, since="5.0.0",
         summary="Returns the messages from a stream within a range of IDs in reverse order.",
         complexity=_RANGE_COMPLEXITY.replace("being returned", "returned"),
         args="key end:string start:string [COUNT count:integer]", history=(("6.2.0", "Added exclusive ranges."),))
def xrevrange(c: Any, argv: list[bytes]) -> Any:
    return _xrange(c, argv, True)


# ----------------------------------------------------------------------------- XREAD / XREADGROUP


GROUP_NEW = MAX_ID  # the ">" marker


def _create_consumer(c: Any, key: bytes, group: ConsumerGroup, name: bytes) -> Consumer:
    consumer = Consumer(name, c.keyspace.now)
    group.consumers[name] = consumer
    _event(c, key, b"xgroup-createconsumer")
    return consumer


def _elapsed(now: int, since: int) -> int:
    """``now - since`` in mstime_t (int64) arithmetic: a payload may hold any time."""
    return wrap_int64(now - since)


def deliver_new(c: Any, s: StreamValue, start: StreamID, count: int, group: ConsumerGroup,
                consumer: Consumer, noack: bool, key: bytes, records: list[list[bytes]]) -> int:
    """``streamReplyWithRange`` with a group: move last_id, entries_read and the PELs along
    over the entries from ``start`` (at most ``count``; 0: all), reading their IDs only; how
    many.  Their reply is ``range_items``'s over the same span.  What it changed is added to
    ``records`` as Redis propagates it: an XCLAIM ... JUSTID LASTID for each entry it put in
    the PEL, then XGROUP SETID ... ENTRIESREAD if the group's last ID moved."""
    now = c.keyspace.now
    delivered = 0
    moved = False
    for entry_id in s.entries.irange(start, None):
        if entry_id > group.last_id:
            if group.entries_read != INVALID_ENTRIES_READ and not s.range_has_tombstones(entry_id):
                group.entries_read = wrap_int64(group.entries_read + 1)  # a long long in Redis
            elif s.entries_added:
                group.entries_read = s.estimate_distance(entry_id)
            group.last_id = entry_id
            moved = True
        delivered += 1
        if not noack:
            nack = group.pending.get(entry_id)
            if nack is None:
                nack = PendingEntry(consumer.name, now, 1)
                group.pending[entry_id] = nack
            else:
                old = group.consumers.get(nack.consumer)
                if old is not None:
                    old.pending.pop(entry_id, None)
                nack.consumer = consumer.name
                nack.delivery_time_ms = now
                nack.delivery_count = 1
            consumer.pending[entry_id] = nack
            consumer.active_time_ms = now
            records.append(xclaim_record(key, group, fmt_id(entry_id), nack))
        if count and delivered == count:
            break
    if moved:
        records.append(setid_record(key, group))
    return delivered


def xclaim_record(key: bytes, group: ConsumerGroup, entry_id: bytes, nack: PendingEntry) -> list[bytes]:
    """``streamPropagateXCLAIM``: the idempotent XCLAIM that gives a replica this PEL entry."""
    return [b"XCLAIM", key, group.name, nack.consumer, b"0", entry_id, b"TIME", b"%d" % nack.delivery_time_ms,
            b"RETRYCOUNT", b"%d" % nack.delivery_count, b"FORCE", b"JUSTID", b"LASTID", fmt_id(group.last_id)]


def setid_record(key: bytes, group: ConsumerGroup) -> list[bytes]:
    """``streamPropagateGroupID``: the group's last ID and read counter."""
    return [b"XGROUP", b"SETID", key, group.name, fmt_id(group.last_id), b"ENTRIESREAD", b"%d" % group.entries_read]


def deliver_history(c: Any, s: StreamValue, start: StreamID, count: int, consumer: Consumer) -> list[Any]:
    """``streamReplyWithRangeFromConsumerPEL``: re-deliver this consumer's pending entries."""
    now = c.keyspace.now
    out: list[Any] = []
    for entry_id in list(consumer.pending.irange(start, None)):
        if count and len(out) >= count:
            break
        flat = s.entries.get(entry_id)
        if flat is None:
            out.append([fmt_id(entry_id), NULL_ARRAY])
        else:
            out.append(entry_reply(entry_id, flat))
            nack = consumer.pending[entry_id]
            nack.delivery_time_ms = now
            nack.delivery_count = (nack.delivery_count + 1) & MASK64  # a uint64_t in Redis
    return out


class ReadRequest:
    __slots__ = ("keys", "ids", "count", "group", "consumer", "noack", "timeout_ms", "raw_ids")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.raw_ids: list[bytes] = []
        self.ids: list[StreamID | None] = []
        self.count = 0
        self.group: bytes | None = None
        self.consumer = b""
        self.noack = False
        self.timeout_ms = -1


def _parse_read(c: Any, argv: list[bytes], readgroup: bool) -> ReadRequest:
    req = ReadRequest()
    name = "xreadgroup" if readgroup else "xread"
    streams_at = 0
    i = 1
    n = len(argv)
    while i < n:
        more = n - i - 1
        opt = argv[i].lower()
        if opt == b"block" and more:
            i += 1
            req.timeout_ms = parse_timeout_ms(argv[i], c.keyspace.now)
        elif opt == b"count" and more:
            i += 1
            req.count = max(0, to_int(argv[i]))
        elif opt == b"streams" and more:
            streams_at = i + 1
            total = n - streams_at
            if total % 2:
                symbol = ">" if readgroup else "$"
                raise CommandError(f"Unbalanced '{name}' list of streams: for each stream key an ID or '{symbol}' "
                                   "must be specified.")
            half = total // 2
            req.keys = argv[streams_at:streams_at + half]
            req.raw_ids = argv[streams_at + half:]
            break
        elif opt == b"group" and more >= 2:
            if not readgroup:
                raise CommandError("The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
            req.group = argv[i + 1]
            req.consumer = argv[i + 2]
            i += 2
        elif opt == b"noack":
            if not readgroup:
                raise CommandError("The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
            req.noack = True
        else:
            raise CommandError(SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(SYNTAX)
    if readgroup and req.group is None:
        raise CommandError("Missing GROUP option for XREADGROUP")
    return req


def _resolve_ids(c: Any, req: ReadRequest, readgroup: bool) -> list[StreamID]:
    """Turn the ID arguments into IDs ($ and + resolved now); checks keys and groups."""
    db = c.db
    ids: list[StreamID] = []
    for key, raw in zip(req.keys, req.raw_ids, strict=True):
        s = stream_of(db.lookup_read(key))
        if req.group is not None and (s is None or req.group not in s.groups):
            raise CommandError(
                f"-NOGROUP No such key '{key.decode('utf-8', 'replace')}' or consumer group "
                f"'{req.group.decode('utf-8', 'replace')}' in XREADGROUP with GROUP option")
        if raw == b"$":
            if readgroup:
                raise CommandError(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
                    "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just "
                    "return an empty result set.")
            ids.append(s.last_id if s is not None else (0, 0))
        elif raw == b"+":
            if readgroup:
                raise CommandError(
                    "The + ID is meaningless in the context of XREADGROUP: you want to read the history of this "
                    "consumer by specifying a proper ID, or use the > ID to get new messages. The + ID would just "
                    "return an empty result set.")
            if s is not None:
                prv = decr_id(s.last_id)
                if prv is None:
                    raise CommandError("the stream last element ID is 0-0")
                ids.append(prv)
            else:
                ids.append((0, 0))
        elif raw == b">":
            if not readgroup:
                raise CommandError("The > ID can be specified only when calling XREADGROUP using the GROUP <group> "
                                   "<consumer> option.")
            ids.append(GROUP_NEW)
        else:
            ids.append(parse_id(raw, 0, True)[0])
    return ids


def serve_read(c: Any, req: ReadRequest, ids: list[StreamID]) -> Any:
    """Serve what is available now; None when nothing could be served."""
    db = c.db
    served: list[tuple[bytes, Any]] = []  # (entries as values or written: Raw)
    records: list[list[bytes]] = []  # XREADGROUP's effects, as Redis propagates them
    spent = 0  # bytes of the entries written for the streams before (the reply's budget)
    closed = False
    for key, gt in zip(req.keys, ids, strict=True):
        s = stream_of(db.lookup_read(key))
        if s is None:
            continue
        serve = history = False
        group = consumer = None
        if req.group is not None:
            group = s.groups.get(req.group)
            if group is None:
                raise CommandError(
                    f"-NOGROUP No such key '{key.decode('utf-8', 'replace')}' or consumer group "
                    f"'{req.group.decode('utf-8', 'replace')}' in XREADGROUP with GROUP option")
            if gt != GROUP_NEW:
                serve = history = True
            elif s.entries and s.last_valid_id() > group.last_id:
                serve = True
                gt = group.last_id
            consumer = group.consumers.get(req.consumer)
            if consumer is None:
                consumer = _create_consumer(c, key, group, req.consumer)
                if req.noack:  # (else the XCLAIMs of what it reads create it)
                    records.append([b"XGROUP", b"CREATECONSUMER", key, req.group, req.consumer])
            consumer.seen_time_ms = c.keyspace.now
        elif s.entries and s.last_valid_id() > gt:
            serve = True
        if not serve:
            continue
        start = incr_id(gt) or (0, 0)
        if history and consumer is not None:
            items = deliver_history(c, s, start, req.count, consumer)
        else:
            if group is not None and consumer is not None and \
                    deliver_new(c, s, start, req.count, group, consumer, req.noack, key, records):
                c.keyspace.dirty += 1
            items = [] if closed else range_items(c, s, start, MAX_ID, req.count, False, spent)
            if items is None:  # the client's output-buffer limit closed it: nothing more is written
                closed, items = True, []
            elif type(items) is Raw:
                spent += len(items.wire)
        served.append((key, items))
    if req.group is not None:
        propagate_as(c, *records)
    if closed:
        return []
    if not served:
        return None
    if c.resp3:
        return Map(served)
    return [[key, items] for key, items in served]


def _xread(c: Any, argv: list[bytes], readgroup: bool) -> Any:
    req = _parse_read(c, argv, readgroup)
    ids = _resolve_ids(c, req, readgroup)
    reply = serve_read(c, req, ids)
    if reply is not None:
        return reply
    if req.timeout_ms == -1 or c.server.in_exec:
        return NULL_ARRAY
    from dumpling.dispatch import Blocked

    keys = list(dict.fromkeys(req.keys))

    def attempt() -> Any:
        # As Redis 7.4 re-runs the command: "$" stays the ID captured at block time,
        # "+" and ">" are evaluated again.
        again = list(ids)
        for n, raw in enumerate(req.raw_ids):
            if raw == b"+":
                s = stream_of(c.db.lookup_read(req.keys[n]))
                again[n] = (decr_id(s.last_id) or (0, 0)) if s is not None else (0, 0)
        if req.group is not None:
            for key in req.keys:
                s = stream_of(c.db.lookup_read(key))
                if s is None or req.group not in s.groups:
                    raise CommandError(
                        f"-NOGROUP No such key '{key.decode('utf-8', 'replace')}' or consumer group "
                        f"'{req.group.decode('utf-8', 'replace')}' in XREADGROUP with GROUP option")
        elif not any(type(c.db.data.get(k)) is StreamValue for k in keys):
            return None
        return serve_read(c, req, again)

    def retry() -> Any:
        try:
            return attempt()
        except CommandError as e:
            # Every client blocked on a vanished stream or group must hear about it:
            # keep the keys ready so the next waiters are retried too.
            for key in keys:
                c.keyspace.signal_ready(c.db, key)
            return ErrorReply(e.message)

    return Blocked(keys, req.timeout_ms / 1000.0, retry, NULL_ARRAY)


@command("xread", -4, "readonly blocking", (0, 0, 0), **ST, since="5.0.0",
         summary="Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a "
                 "message is available otherwise.",
         complexity="", args="[COUNT count:integer] [BLOCK milliseconds:integer] STREAMS (key... id...)",
         key_specs=[{"flags": ["RO", "access"], "begin_search": {"type": "keyword", "spec": {"keyword": "STREAMS",
                     "startfrom": 1}}, "find_keys": {"type": "range", "spec": {"lastkey": -1, "keystep": 1,
                                                                                "limit": 2}}}],
         getkeys=_streams_keyword_keys)
def xread(c: Any, argv: list[bytes]) -> Any:
    return _xread(c, argv, False)


@command("xreadgroup", -7, "write blocking", (0, 0, 0), **ST, since="5.0.0",
         summary="Returns new or historical messages from a stream for a consumer in a group. Blocks until a message "
                 "is available otherwise.",
         complexity="For each stream mentioned: O(M) with M being the number of elements returned. If M is constant "
                    "(e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other "
                    "side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked "
                    "on the stream getting new data.",
         args=("GROUP group-block=(group consumer) [COUNT count:integer] [BLOCK milliseconds:integer] "
               "[NOACK] STREAMS (key... id...)"),
         key_specs=[{"flags": ["RO", "access"], "begin_search": {"type": "keyword", "spec": {"keyword": "STREAMS",
                     "startfrom": 4}}, "find_keys": {"type": "range", "spec": {"lastkey": -1, "keystep": 1,
                                                                                "limit": 2}}}],
         getkeys=_streams_keyword_keys, events="xgroup-createconsumer")
def xreadgroup(c: Any, argv: list[bytes]) -> Any:
    return _xread(c, argv, True)


# ----------------------------------------------------------------------------- XGROUP

container("xgroup", group="stream", since="5.0.0", summary="A container for consumer groups commands.")


def _xgroup_prelude(c: Any, argv: list[bytes], sub: bytes) -> tuple[StreamValue | None, ConsumerGroup | None, bool, int]:
    """The checks XGROUP runs before dispatching: options, key, group."""
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i = 5
    while i < len(argv):
        opt = argv[i].lower()
        if sub == b"create" and opt == b"mkstream":
            mkstream = True
            i += 1
        elif sub in (b"create", b"setid") and opt == b"entriesread" and i + 1 < len(argv):
            entries_read = to_int(argv[i + 1])
            if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                raise CommandError("value for ENTRIESREAD must be positive or -1")
            i += 2
        else:
            raise subcommand_syntax_error(argv)
    s = stream_of(c.db.lookup_write(argv[2]))
    group = None
    if not mkstream:
        if s is None:
            raise CommandError("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want "
                               "to use the MKSTREAM option to create an empty stream automatically.")
        group = s.groups.get(argv[3])
        if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
            raise CommandError(f"-NOGROUP No such consumer group '{argv[3].decode('utf-8', 'replace')}' for key "
                               f"name '{argv[2].decode('utf-8', 'replace')}'")
    return s, group, mkstream, entries_read


@command("xgroup|create", -5, "write denyoom", (2, 2, 1), **ST, since="5.0.0", summary="Creates a consumer group.",
         args=("key group id-selector=(id | new-id='$') [MKSTREAM] [ENTRIESREAD "
               "entriesread:integer/entries-read]"),
         history=(("7.0.0", "Added the `entries_read` named argument."),), key_flags="RW insert",
         events="xgroup-create")
def xgroup_create(c: Any, argv: list[bytes]) -> Any:
    s, _, mkstream, entries_read = _xgroup_prelude(c, argv, b"create")
    if len(argv) > 8:
        raise subcommand_syntax_error(argv)
    if argv[4] == b"$":
        last = s.last_id if s is not None else (0, 0)
    else:
        last = parse_id(argv[4], 0, True)[0]
    db, key = c.db, argv[2]
    if s is None:
        s = StreamValue()
        db.add(key, s)
        c.keyspace.notify(db.index, "n", b"new", key)
        c.keyspace.touch_watched(db.index, key)
    if argv[3] in s.groups:
        raise CommandError("-BUSYGROUP Consumer Group name already exists")
    s.groups[argv[3]] = ConsumerGroup(argv[3], last, entries_read)
    _event(c, key, b"xgroup-create")
    return OK


@command("xgroup|setid", -5, "write", (2, 2, 1), **ST, since="5.0.0", summary="Sets the last-delivered ID of a consumer group.",
         args="key group id-selector=(id | new-id='$') [ENTRIESREAD entriesread:integer/entries-read]",
         history=(("7.0.0", "Added the optional `entries_read` argument."),), events="xgroup-setid")
def xgroup_setid(c: Any, argv: list[bytes]) -> Any:
    s, group, _, entries_read = _xgroup_prelude(c, argv, b"setid")
    if len(argv) not in (5, 7):
        raise subcommand_syntax_error(argv)
    assert s is not None and group is not None
    last = s.last_id if argv[4] == b"$" else parse_id(argv[4], 0, False)[0]
    group.last_id = last
    group.entries_read = entries_read
    _event(c, argv[2], b"xgroup-setid")
    return OK


@command("xgroup|destroy", 4, "write", (2, 2, 1), **ST, since="5.0.0", summary="Destroys a consumer group.",
         complexity="O(N) where N is the number of entries in the group's pending entries list (PEL).",
         args="key group:string", key_flags="RW delete", events="xgroup-destroy")
def xgroup_destroy(c: Any, argv: list[bytes]) -> Any:
    s, group, _, _ = _xgroup_prelude(c, argv, b"destroy")
    assert s is not None
    if group is None:
        return 0
    del s.groups[argv[3]]
    _event(c, argv[2], b"xgroup-destroy")
    c.keyspace.signal_ready(c.db, argv[2])
    return 1


@command("xgroup|createconsumer", 5, "write denyoom", (2, 2, 1), **ST, since="6.2.0",
         summary="Creates a consumer in a consumer group.", args="key group:string consumer:string",
         key_flags="RW insert", events="xgroup-createconsumer")
def xgroup_createconsumer(c: Any, argv: list[bytes]) -> Any:
    _, group, _, _ = _xgroup_prelude(c, argv, b"createconsumer")
    assert group is not None
    if argv[4] in group.consumers:
        return 0
    _create_consumer(c, argv[2], group, argv[4])
    return 1


@command("xgroup|delconsumer", 5, "write", (2, 2, 1), **ST, since="5.0.0",
         summary="Deletes a consumer from a consumer group.", args="key group:string consumer:string",
         key_flags="RW delete", events="xgroup-delconsumer")
def xgroup_delconsumer(c: Any, argv: list[bytes]) -> Any:
    _, group, _, _ = _xgroup_prelude(c, argv, b"delconsumer")
    assert group is not None
    consumer = group.consumers.pop(argv[4], None)
    if consumer is None:
        return 0
    for entry_id in consumer.pending:
        group.pending.pop(entry_id, None)
    _event(c, argv[2], b"xgroup-delconsumer")
    return len(consumer.pending)


@command("xgroup|help", 2, "loading stale", **ST, since="5.0.0", summary="Returns helpful text about the different subcommands.")
def xgroup_help(c: Any, argv: list[bytes]) -> Any:
    lines = [
        help_header(argv),
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Print this help.",
    ]
    return [Status(line) for line in lines]


# ----------------------------------------------------------------------------- XSETID / XACK / XPENDING


@command("xsetid", -3, "write denyoom fast", (1, 1, 1), **ST, since="5.0.0",
         summary="An internal command for replicating stream values.",
         args="key last-id [ENTRIESADDED entries-added:integer@7.0.0] [MAXDELETEDID max-deleted-id@7.0.0]",
         history=(("7.0.0", "Added the `entries_added` and `max_deleted_entry_id` arguments."),), events="xsetid")
def xsetid(c: Any, argv: list[bytes]) -> Any:
    new_id = parse_id(argv[2], 0, True)[0]
    entries_added = -1
    max_xdel: StreamID = (0, 0)
    i = 3
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].lower()
        if opt == b"entriesadded" and more:
            entries_added = to_int(argv[i + 1])
            if entries_added < 0:
                raise CommandError("entries_added must be positive")
            i += 2
        elif opt == b"maxdeletedid" and more:
            max_xdel = parse_id(argv[i + 1], 0, True)[0]
            if new_id < max_xdel:
                raise CommandError("The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
            i += 2
        else:
            raise CommandError(SYNTAX)
    db, key = c.db, argv[1]
    s = stream_of(db.lookup_write(key))
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    if new_id < s.max_deleted_id:
        raise CommandError("The ID specified in XSETID is smaller than current max_deleted_entry_id")
    if s.entries:
        if new_id < s.last_valid_id():
            raise CommandError("The ID specified in XSETID is smaller than the target stream top item")
        if entries_added != -1 and len(s) > entries_added:
            raise CommandError("The entries_added specified in XSETID is smaller than the target stream length")
    s.last_id = new_id
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel != (0, 0):
        s.max_deleted_id = max_xdel
    _event(c, key, b"xsetid")
    return OK


@command("xack", -4, "write fast", (1, 1, 1), **ST, since="5.0.0",
         summary="Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
         complexity="O(1) for each message ID processed.", args="key group:string id:string...")
def xack(c: Any, argv: list[bytes]) -> Any:
    s = stream_of(c.db.lookup_read(argv[1]))
    group = s.groups.get(argv[2]) if s is not None else None
    if group is None:
        return 0
    ids = [parse_id(a, 0, True)[0] for a in argv[3:]]
    acked = 0
    for entry_id in ids:
        nack = group.pending.pop(entry_id, None)
        if nack is not None:
            owner = group.consumers.get(nack.consumer)
            if owner is not None:
                owner.pending.pop(entry_id, None)
            acked += 1
            c.keyspace.dirty += 1
    return acked


def _nogroup(key: bytes, group: bytes) -> CommandError:
    return CommandError(f"-NOGROUP No such key '{key.decode('utf-8', 'replace')}' or consumer group "
                        f"'{group.decode('utf-8', 'replace')}'")


@command("xpending", -3, "readonly", (1, 1, 1), **ST, since="5.0.0",
         summary="Returns the information and entries from a stream consumer group's pending entries list.",
         complexity="O(N) with N being the number of elements returned, so asking for a small fixed number of entries "
                    "per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE "
                    "filter. When the command returns just the summary and the list of consumers is small, it runs in "
                    "O(1) time; otherwise, an additional O(N) time for iterating every consumer.",
         args=("key group [filters=([IDLE min-idle-time:integer@6.2.0] start end count:integer "
               "[consumer])]"),
         history=(("6.2.0", "Added the `IDLE` option and exclusive range intervals."),), tips="nondeterministic_output")
def xpending(c: Any, argv: list[bytes]) -> Any:
    argc = len(argv)
    justinfo = argc == 3
    if argc != 3 and (argc < 6 or argc > 9):
        raise CommandError(SYNTAX)
    minidle = 0
    consumer_name: bytes | None = None
    start: StreamID = (0, 0)
    end: StreamID = MAX_ID
    count = 0
    if argc >= 6:
        at = 3
        if argv[3].lower() == b"idle":
            minidle = to_int(argv[4])
            if argc < 8:
                raise CommandError(SYNTAX)
            at += 2
        count = max(0, to_int(argv[at + 2]))
        start, start_ex = parse_interval_id(argv[at], 0)
        if start_ex:
            nxt = incr_id(start)
            if nxt is None:
                raise CommandError("invalid start ID for the interval")
            start = nxt
        end, end_ex = parse_interval_id(argv[at + 1], MASK64)
        if end_ex:
            prv = decr_id(end)
            if prv is None:
                raise CommandError("invalid end ID for the interval")
            end = prv
        if at + 3 < argc:
            consumer_name = argv[at + 3]
    s = stream_of(c.db.lookup_read(argv[1]))
    group = s.groups.get(argv[2]) if s is not None else None
    if group is None:
        raise _nogroup(argv[1], argv[2])
    if justinfo:
        if not group.pending:
            return [0, None, None, NULL_ARRAY]
        owners = []
        for name in sorted(group.consumers):
            consumer = group.consumers[name]
            if consumer.pending:
                owners.append([name, b"%d" % len(consumer.pending)])
        return [len(group.pending), fmt_id(group.pending.keys()[0]), fmt_id(group.pending.keys()[-1]), owners]
    pel = group.pending
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pending
    now = c.keyspace.now
    out: list[Any] = []
    if start > end:
        return out
    for entry_id in pel.irange(start, end):
        if not count:
            break
        nack = pel[entry_id]
        if minidle and _elapsed(now, nack.delivery_time_ms) < minidle:
            continue
        count -= 1
        out.append([fmt_id(entry_id), nack.consumer, max(0, _elapsed(now, nack.delivery_time_ms)), nack.delivery_count])
    return out


# ----------------------------------------------------------------------------- XCLAIM / XAUTOCLAIM


def _claim_consumer(c: Any, key: bytes, group: ConsumerGroup, name: bytes) -> Consumer:
    consumer = group.consumers.get(name)
    if consumer is None:
        consumer = _create_consumer(c, key, group, name)
    consumer.seen_time_ms = c.keyspace.now
    return consumer


def _take(group: ConsumerGroup, entry_id: StreamID, nack: PendingEntry, consumer: Consumer) -> None:
    if nack.consumer != consumer.name:
        old = group.consumers.get(nack.consumer)
        if old is not None:
            old.pending.pop(entry_id, None)
        nack.consumer = consumer.name
    consumer.pending[entry_id] = nack


def _drop_nack(group: ConsumerGroup, entry_id: StreamID) -> None:
    nack = group.pending.pop(entry_id)
    owner = group.consumers.get(nack.consumer)
    if owner is not None:
        owner.pending.pop(entry_id, None)


@command("xclaim", -6, "write fast", (1, 1, 1), **ST, since="5.0.0",
         summary="Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a "
                 "consumer group member.",
         complexity="O(log N) with N being the number of messages in the PEL of the consumer group.",
         args="key group:string consumer:string min-idle-time:string id:string... [IDLE ms:integer] "
              "[TIME unix-time-milliseconds:unix-time] [RETRYCOUNT count:integer] [FORCE] [JUSTID] "
              "[LASTID lastid:string]",
         tips="nondeterministic_output")
def xclaim(c: Any, argv: list[bytes]) -> Any:
    db, key = c.db, argv[1]
    s = stream_of(db.lookup_read(key))
    group = s.groups.get(argv[2]) if s is not None else None
    if s is None or group is None:
        raise _nogroup(key, argv[2])
    minidle = max(0, to_int(argv[4], "Invalid min-idle-time argument for XCLAIM"))
    ids: list[StreamID] = []
    j = 5
    while j < len(argv):
        try:
            ids.append(parse_id(argv[j], 0, True)[0])
        except CommandError:
            break
        j += 1
    raw_ids = argv[5:j]
    now = c.keyspace.now
    retrycount = -1
    deliverytime = -1
    force = justid = False
    last_id: StreamID = (0, 0)
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            deliverytime = now - to_int(argv[j], "Invalid IDLE option argument for XCLAIM")
        elif opt == b"time" and more:
            j += 1
            deliverytime = to_int(argv[j], "Invalid TIME option argument for XCLAIM")
        elif opt == b"retrycount" and more:
            j += 1
            retrycount = to_int(argv[j], "Invalid RETRYCOUNT option argument for XCLAIM")
        elif opt == b"lastid" and more:
            j += 1
            last_id = parse_id(argv[j], 0, True)[0]
        else:
            raise CommandError(f"Unrecognized XCLAIM option '{argv[j].decode('utf-8', 'replace')}'")
        j += 1
    propagate_last = last_id > group.last_id
    if propagate_last:
        group.last_id = last_id
    if deliverytime != -1:
        if deliverytime < 0 or deliverytime > now:
            deliverytime = now
    else:
        deliverytime = now
    consumer = _claim_consumer(c, key, group, argv[3])
    out: list[Any] = []
    records: list[list[bytes]] = []  # what it changed, as Redis propagates it (never the XCLAIM as sent)
    for entry_id, raw_id in zip(ids, raw_ids, strict=True):
        nack = group.pending.get(entry_id)
        flat = s.entries.get(entry_id)
        if flat is None:
            if nack is not None:
                records.append(xclaim_record(key, group, raw_id, nack))
                _drop_nack(group, entry_id)
                propagate_last = False
                c.keyspace.dirty += 1
            continue
        fresh = False
        if force and nack is None:
            nack = PendingEntry(b"", now, 1)
            group.pending[entry_id] = nack
            fresh = True
        if nack is None:
            continue
        if not fresh and minidle and _elapsed(now, nack.delivery_time_ms) < minidle:
            continue
        if fresh:
            nack.consumer = consumer.name
            consumer.pending[entry_id] = nack
        else:
            _take(group, entry_id, nack, consumer)
        nack.delivery_time_ms = deliverytime
        if retrycount >= 0:
            nack.delivery_count = retrycount
        elif not justid:
            nack.delivery_count = (nack.delivery_count + 1) & MASK64  # a uint64_t in Redis
        out.append(fmt_id(entry_id) if justid else entry_reply(entry_id, flat))
        consumer.active_time_ms = now
        records.append(xclaim_record(key, group, raw_id, nack))
        propagate_last = False
        c.keyspace.dirty += 1
    if propagate_last:
        records.append(setid_record(key, group))
        c.keyspace.dirty += 1
    propagate_as(c, *records)
    return out


@command("xautoclaim", -6, "write fast", (1, 1, 1), **ST, since="6.2.0",
         summary="Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered "
                 "to as consumer group member.",
         complexity="O(1) if COUNT is small.",
         args="key group:string consumer:string min-idle-time:string start:string [COUNT count:integer] [JUSTID]",
         history=(("7.0.0", "Added an element to the reply array, containing deleted entries the command cleared "
                            "from the PEL"),),
         key_flags="RW delete", tips="nondeterministic_output")
def xautoclaim(c: Any, argv: list[bytes]) -> Any:
    minidle = max(0, to_int(argv[4], "Invalid min-idle-time argument for XAUTOCLAIM"))
    start, start_ex = parse_interval_id(argv[5], 0)
    if start_ex:
        nxt = incr_id(start)
        if nxt is None:
            raise CommandError("invalid start ID for the interval")
        start = nxt
    count = 100
    justid = False
    j = 6
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and more:
            count = to_int(argv[j + 1], "COUNT must be > 0")
            if not 1 <= count <= LLONG_MAX // 16:
                raise CommandError("COUNT must be > 0")
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(SYNTAX)
        j += 1
    db, key = c.db, argv[1]
    s = stream_of(db.lookup_read(key))
    group = s.groups.get(argv[2]) if s is not None else None
    if s is None or group is None:
        raise _nogroup(key, argv[2])
    consumer = _claim_consumer(c, key, group, argv[3])
    now = c.keyspace.now
    attempts = count * 10
    candidates = list(group.pending.irange(start, None))
    claimed: list[Any] = []
    deleted: list[bytes] = []
    records: list[list[bytes]] = []  # an XCLAIM ... JUSTID per entry claimed or cleared
    i = 0
    eof = False
    while True:
        if attempts == 0:
            break
        attempts -= 1
        if not count:
            break
        if i >= len(candidates):
            eof = True
            break
        entry_id = candidates[i]
        i += 1
        nack = group.pending[entry_id]
        flat = s.entries.get(entry_id)
        if flat is None:
            records.append(xclaim_record(key, group, fmt_id(entry_id), nack))
            _drop_nack(group, entry_id)
            deleted.append(fmt_id(entry_id))
            count -= 1
            c.keyspace.dirty += 1
            continue
        if minidle and _elapsed(now, nack.delivery_time_ms) < minidle:
            continue
        _take(group, entry_id, nack, consumer)
        nack.delivery_time_ms = now
        if not justid:
            nack.delivery_count = (nack.delivery_count + 1) & MASK64  # a uint64_t in Redis
        claimed.append(fmt_id(entry_id) if justid else entry_reply(entry_id, flat))
        count -= 1
        consumer.active_time_ms = now
        records.append(xclaim_record(key, group, fmt_id(entry_id), nack))
        c.keyspace.dirty += 1
    propagate_as(c, *records)
    cursor = candidates[i] if not eof and i < len(candidates) else (0, 0)
    return [fmt_id(cursor), claimed, deleted]


# ----------------------------------------------------------------------------- XINFO

container("xinfo", group="stream", since="5.0.0", summary="A container for stream introspection commands.")


def _xinfo_stream(c: Any, key: bytes) -> StreamValue:
    s = stream_of(c.db.lookup_read(key))
    if s is None:
        raise CommandError(NO_SUCH_KEY)
    return s


def _lag_reply(s: StreamValue, group: ConsumerGroup) -> Any:
    return s.lag(group)


def _entries_read_reply(group: ConsumerGroup) -> Any:
    return None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read


@command("xinfo|stream", -3, "readonly", (2, 2, 1), **ST, since="5.0.0", summary="Returns information about a stream.",
         args="key [full-block=(FULL [COUNT count:integer])]",
         history=(("6.0.0", "Added the `FULL` modifier."),
                  ("7.0.0", "Added the `max-deleted-entry-id`, `entries-added`, `recorded-first-entry-id`, "
                            "`entries-read` and `lag` fields"),
                  ("7.2.0", "Added the `active-time` field, and changed the meaning of `seen-time`.")))
def xinfo_stream(c: Any, argv: list[bytes]) -> Any:
    s = _xinfo_stream(c, argv[2])
    opts = argv[3:]
    full = bool(opts)
    count = 10
    if opts:
        if len(opts) not in (1, 3) or opts[0].lower() != b"full":
            raise subcommand_syntax_error(argv)
        if len(opts) == 3:
            if opts[1].lower() != b"count":
                raise subcommand_syntax_error(argv)
            count = to_int(opts[2])
            if count < 0:
                count = 10
    nodes = s.nodes(*node_limits(c))
    pairs: list[tuple[bytes, Any]] = [
        (b"length", len(s)),
        (b"radix-tree-keys", len(nodes)),
        (b"radix-tree-nodes", s.radix_tree_nodes()),
        (b"last-generated-id", fmt_id(s.last_id)),
        (b"max-deleted-entry-id", fmt_id(s.max_deleted_id)),
        (b"entries-added", s.entries_added),
        (b"recorded-first-entry-id", fmt_id(s.first_id)),
    ]
    if not full:
        first = last = None
        if s.entries:
            first = entry_reply(*s.entries.peekitem(0))
            last = entry_reply(*s.entries.peekitem(-1))
        pairs += [(b"groups", len(s.groups)), (b"first-entry", first), (b"last-entry", last)]
        return Map(pairs)
    pairs.append((b"entries", range_reply(s, (0, 0), MAX_ID, count, False)))
    groups: list[Any] = []
    for name in sorted(s.groups):
        group = s.groups[name]
        pel = []
        for entry_id, nack in group.pending.items():
            if count and len(pel) >= count:
                break
            pel.append([fmt_id(entry_id), nack.consumer, nack.delivery_time_ms, nack.delivery_count])
        consumers = []
        for cname in sorted(group.consumers):
            consumer = group.consumers[cname]
            cpel = []
            for entry_id, nack in consumer.pending.items():
                if count and len(cpel) >= count:
                    break
                cpel.append([fmt_id(entry_id), nack.delivery_time_ms, nack.delivery_count])
            consumers.append(Map([(b"name", cname), (b"seen-time", consumer.seen_time_ms),
                                  (b"active-time", consumer.active_time_ms), (b"pel-count", len(consumer.pending)),
                                  (b"pending", cpel)]))
        groups.append(Map([(b"name", name), (b"last-delivered-id", fmt_id(group.last_id)),
                           (b"entries-read", _entries_read_reply(group)), (b"lag", _lag_reply(s, group)),
                           (b"pel-count", len(group.pending)), (b"pending", pel), (b"consumers", consumers)]))
    pairs.append((b"groups", groups))
    return Map(pairs)


@command("xinfo|groups", 3, "readonly", (2, 2, 1), **ST, since="5.0.0",
         summary="Returns a list of the consumer groups of a stream.", args="key",
         history=(("7.0.0", "Added the `entries-read` and `lag` fields"),))
def xinfo_groups(c: Any, argv: list[bytes]) -> Any:
    s = _xinfo_stream(c, argv[2])
    out = []
    for name in sorted(s.groups):
        group = s.groups[name]
        out.append(Map([(b"name", name), (b"consumers", len(group.consumers)), (b"pending", len(group.pending)),
                        (b"last-delivered-id", fmt_id(group.last_id)), (b"entries-read", _entries_read_reply(group)),
                        (b"lag", _lag_reply(s, group))]))
    return out


@command("xinfo|consumers", 4, "readonly", (2, 2, 1), **ST, since="5.0.0",
         summary="Returns a list of the consumers in a consumer group.", args="key group:string",
         history=(("7.2.0", "Added the `inactive` field, and changed the meaning of `idle`."),),
         tips="nondeterministic_output")
def xinfo_consumers(c: Any, argv: list[bytes]) -> Any:
    s = _xinfo_stream(c, argv[2])
    group = s.groups.get(argv[3])
    if group is None:
        raise CommandError(f"-NOGROUP No such consumer group '{argv[3].decode('utf-8', 'replace')}' for key name "
                           f"'{argv[2].decode('utf-8', 'replace')}'")
    now = c.keyspace.now
    out = []
    for name in sorted(group.consumers):
        consumer = group.consumers[name]
        inactive = _elapsed(now, consumer.active_time_ms) if consumer.active_time_ms != -1 else -1
        idle = max(0, _elapsed(now, consumer.seen_time_ms))
        out.append(Map([(b"name", name), (b"pending", len(consumer.pending)), (b"idle", idle),
                        (b"inactive", inactive)]))
    return out


@command("xinfo|help", 2, "loading stale", **ST, since="5.0.0", summary="Returns helpful text about the different subcommands.")
def xinfo_help(c: Any, argv: list[bytes]) -> Any:
    lines = [
        help_header(argv),
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Print this help.",
    ]
    return [Status(line) for line in lines]


attach_native_handlers("xadd")  # the C handler of its plainest form (dumpling/_collections.c)
