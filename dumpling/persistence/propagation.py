"""The propagation stream: what every write becomes for the AOF and for replicas.

One mechanism, two consumers.  ``Propagator`` (``server.propagator``) brackets every
outermost call (``server.call_hooks``: ``begin``/``end``, nested calls of an EXEC or a
script included) and collects the keys it wrote (``keyspace.change_hook``).  When the
outermost call ends it turns the call into *records* ``(db index, argv)``:

* a plain deterministic command that wrote only its own keys, as sent (``VERBATIM``:
  SET without options, LPUSH, HSET, ZADD, INCR, DEL ...);
* a TTL-only command (EXPIRE family, PERSIST) as ``PEXPIREAT key <abs ms>`` / ``PERSIST``;
* keyless writes (FLUSHALL, FLUSHDB, SWAPDB, FUNCTION ...) as sent;
* XADD with an automatic ID as XADD with the ID it made, SPOP as SREM of what it popped,
  HINCRBYFLOAT as HSET of the new value (what Redis propagates for them);
* anything else - relative times, randomness, scripts, transactions, blocking pops
  served later, expiry and eviction - as the final state of each key it touched
  (``SET key value [PXAT ms]``, ``RESTORE key <abs ms> <payload> REPLACE ABSTTL``, or
  ``DEL key``): Redis's "effects replication".

and hands the records of one call to every attached *sink* (the AOF, the replication
backlog) as one batch; a sink wraps a batch of several records in ``MULTI``/``EXEC``
and emits ``SELECT`` when the database changes (``encode_records``).  A script that
calls ``redis.set_repl`` splits its call into parts headed for the AOF, the replicas,
both or neither (``retarget``); each sink gets only its parts.  Changes made
outside any command (active expiry, eviction) are images handed out on the next event
loop pass, or before the next command, whichever comes first.

While no sink is attached the hooks are off (``server.call_hooks`` is None) and writes
cost nothing extra.

Must not: write files or sockets (the sinks do), decide whether a sink is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dumpling.protocol import SetReply, encode_request

if TYPE_CHECKING:
    from dumpling.dispatch import Server
    from dumpling.keyspace import Database

Record = tuple[int, list[bytes]]
# A sink gets the records of one call and the client that made it (None: expiry, eviction).
Sink = Callable[[list[Record], Any], None]
# A sink's short way for the common call, one command propagated as sent: (db index, argv,
# argv already encoded without SELECT, client).  Encoded once for all sinks.
OneSink = Callable[[int, list[bytes], bytes, Any], None]

# Deterministic given the dataset, and writing only the keys named in their arguments.
VERBATIM = frozenset({
    "setnx", "mset", "msetnx", "append", "setrange", "incr", "decr", "incrby", "decrby", "del", "unlink",
    "lpush", "rpush", "lpushx", "rpushx", "linsert", "lset", "lrem", "ltrim", "lpop", "rpop", "rpoplpush", "lmove",
    "sadd", "srem", "smove", "sinterstore", "sunionstore", "sdiffstore", "hset", "hsetnx", "hmset", "hdel",
    "hincrby", "zadd", "zincrby", "zrem", "zremrangebyscore", "zremrangebyrank", "zremrangebylex", "zunionstore",
    "zinterstore", "zdiffstore", "zrangestore", "zpopmin", "zpopmax", "rename", "renamenx", "setbit", "bitop",
    "pfadd", "pfmerge", "xdel", "xack", "copy", "lmpop", "zmpop", "sintercard",
})
TTL_ONLY = frozenset({"expire", "pexpire", "expireat", "pexpireat", "persist"})
_TRANSLATED = frozenset({"xadd", "spop", "hincrbyfloat"})  # see Propagator._translated
_PUBLISHERS = frozenset({"publish", "spublish"})
_SERVED_POPS = {"blpop": b"LPOP", "brpop": b"RPOP", "bzpopmin": b"ZPOPMIN", "bzpopmax": b"ZPOPMAX"}
_BLOCKING = frozenset({*_SERVED_POPS, "brpoplpush", "blmove"})  # propagated as their non-blocking form
# Where a script's effects go (redis.set_repl; Redis's PROPAGATE_AOF / PROPAGATE_REPL).
TO_AOF = 1
TO_REPLICAS = 2
TO_ALL = TO_AOF | TO_REPLICAS


def encode_records(records: list[Record], selected: int) -> tuple[bytes, int]:
    """The wire form of one call's records for a stream whose SELECTed database is
    ``selected`` (-1: none yet): SELECT where the database changes, MULTI/EXEC around
    several records.  Returns the bytes and the database selected after them."""
    if len(records) == 1 and records[0][0] == selected:  # the common case: one command, same database
        return encode_request(records[0][1]), selected
    out = bytearray()
    wrap = len(records) > 1
    if wrap:
        first_db = records[0][0]
        if first_db != selected:
            out += encode_request([b"SELECT", b"%d" % first_db])
            selected = first_db
        out += encode_request([b"MULTI"])
    for db_index, argv in records:
        if db_index != selected:
            out += encode_request([b"SELECT", b"%d" % db_index])
            selected = db_index
        out += encode_request(argv)
    if wrap:
        out += encode_request([b"EXEC"])
    return bytes(out), selected


def _as_batch(sink: Sink) -> OneSink:
    """The short way of a sink that has none: a batch of one record."""
    def one(db_index: int, argv: list[bytes], wire: bytes, client: Any) -> None:
        sink([(db_index, argv)], client)
    return one


class Propagator:
    """Turns calls into records and fans them out to the attached sinks."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.keyspace = server.keyspace
        self.sinks: list[Sink] = []
        self.replication_sinks: list[Sink] = []
        self._one_ways: dict[Sink, OneSink] = {}
        self._ones: list[OneSink] = []  # each sink's short way, in the order of ``sinks``
        self.published: list[Record] = []  # PUBLISH/SPUBLISH of this call: for replicas only, as Redis does
        self.depth = 0
        self.dirty_marks: list[int] = []
        self.outer: tuple[Any, Any, list[bytes], int] | None = None  # (client, cmd, argv, db index)
        self.touched: dict[tuple[int, bytes], None] = {}
        self.keyless: list[Record] = []
        self._settle_scheduled = False
        self._suspended = 0
        # a blocked command being served outside any call (serve_ready_keys): its changes
        self.served: Any = None
        self.served_touched: dict[tuple[int, bytes], None] = {}
        self.served_marks = (0, 0)
        # client id -> (Blocked, argv, db index) of its call that blocked
        self.blocked_calls: dict[int, tuple[Any, list[bytes], int]] = {}
        # command name -> how its argv may be propagated as sent (see _verbatim_kind)
        self._verbatim_kinds: dict[str, int] = {}
        # The batch being handed to the sinks and its wire form (see ``encode``): encoded
        # once, whatever the number of sinks that share its SELECT state.
        self._batch: list[Record] | None = None
        self._batch_wire: tuple[int, bytes, int] = (-2, b"", -1)
        # redis.set_repl: the targets of what the call changes from now on, and the records of
        # its earlier parts that went to other targets (see ``retarget``).
        self.targets = TO_ALL
        self.segments: list[tuple[int, list[Record]]] = []

    # -- sinks --------------------------------------------------------------------------------------

    def attach(self, sink: Sink, replication: bool = False, one: OneSink | None = None) -> None:
        """``replication``: the sink also gets what only replicas receive (PUBLISH).
        ``one``: its short way for a single command propagated as sent (else it gets that
        as a batch of one record)."""
        if sink not in self.sinks:
            self.sinks.append(sink)
        if one is not None:
            self._one_ways[sink] = one
        if replication and sink not in self.replication_sinks:
            self.replication_sinks.append(sink)
        self._install()

    def detach(self, sink: Sink) -> None:
        if sink in self.sinks:
            self.settle()  # what is collected so far still reaches it
            self.sinks.remove(sink)
        if sink in self.replication_sinks:
            self.replication_sinks.remove(sink)
        self._one_ways.pop(sink, None)
        self._install()

    def _install(self) -> None:
        on = bool(self.sinks) and not self._suspended
        self._ones = [self._one_ways.get(sink) or _as_batch(sink) for sink in self.sinks]
        server = self.server
        server.call_hooks = self if on else None
        server.keyspace.change_hook = self.changed if on else None
        if not self.sinks:  # (suspended: the calls in progress still end through these hooks)
            self.depth = 0
            self.dirty_marks.clear()
            self.outer = None
            self.touched = {}
            self.keyless = []
            self.served = None
            self.served_touched = {}
            self.targets = TO_ALL
            self.segments = []

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Nothing is recorded inside (DEBUG LOADAOF replays the file it would log to)."""
        self.settle()
        self._suspended += 1
        self._install()
        try:
            yield
        finally:
            self._suspended -= 1
            self._install()

    def encode(self, records: list[Record], selected: int) -> tuple[bytes, int]:
        """``encode_records`` for a sink: the batch being emitted is encoded once and the
        same bytes go to every sink whose stream has the same database SELECTed."""
        if records is self._batch:
            wire = self._batch_wire
            if wire[0] == selected:
                return wire[1], wire[2]
            data, after = encode_records(records, selected)
            self._batch_wire = (selected, data, after)
            return data, after
        return encode_records(records, selected)

    # -- the hooks ----------------------------------------------------------------------------------

    def begin(self, client: Any, cmd: Any, argv: list[bytes]) -> None:
        if self.depth == 0:
            if self.touched:
                self._finish_orphans()
            if self.served_touched:
                self._finish_served()
            self.outer = (client, cmd, argv, client.db.index)
        self.dirty_marks.append(self.keyspace.dirty)
        self.depth += 1

    def end(self, client: Any, cmd: Any, argv: list[bytes], reply: Any = None) -> None:
        marks = self.dirty_marks
        if not marks:
            return  # began before the first sink was attached (CONFIG SET appendonly yes)
        self.depth -= 1
        wrote = self.keyspace.dirty != marks.pop()
        if self.depth == 0 and wrote and len(self.touched) == 1 and not self.keyless and not self.published:
            # The common case, kept short: an outermost call that wrote one key of its own
            # and is propagated as sent (SET k v, LPUSH k ..., INCR k ...).
            kind = self._verbatim_kinds.get(cmd.name)
            if kind is None:
                kind = self._verbatim_kind(cmd)
            if kind == 1 and (cmd.name != "set" or len(argv) == 3):
                outer = self.outer
                item = (outer[3], argv[1])  # type: ignore[index]
                if item in self.touched:
                    self.outer, self.touched = None, {}
                    wire = encode_request(argv)
                    for one in self._ones:
                        one(item[0], argv, wire, client)
                    return
        if wrote and cmd.is_write and not (cmd.key_specs or cmd.movable or cmd.first_key):
            self.keyless.append((client.db.index, argv))  # FLUSHALL, FLUSHDB, SWAPDB, FUNCTION ...
        elif (cmd.name in _PUBLISHERS and self.replication_sinks and type(reply) is int and self.server.cluster is None
              and self.targets & TO_REPLICAS):
            # subscribers of replicas get it too (in cluster mode the cluster bus carries it instead)
            self.published.append((client.db.index, argv))
        if self.depth == 0:
            if cmd.name in _BLOCKING and type(reply).__name__ == "Blocked":  # (dispatch.Blocked; no import cycle)
                self._remember_blocked(client, reply, argv)
            self._finish_outer(wrote, reply)

    def retarget(self, targets: int) -> None:
        """``redis.set_repl(targets)`` in a script: what the call changed so far goes where
        it was headed (as the keys' states now), what it changes next goes to ``targets``
        only (TO_AOF, TO_REPLICAS, both or neither).  A script's run ends with TO_ALL."""
        if targets == self.targets:
            return
        if self.depth:  # (else no call is being recorded: nothing to close)
            self._close_segment()
        self.targets = targets

    def _close_segment(self) -> None:
        touched, keyless = self.touched, self.keyless
        if touched or keyless:
            self.touched, self.keyless = {}, []
            self.segments.append((self.targets, keyless + [self._image(db, key) for db, key in touched]))

    def _finish_segments(self, client: Any) -> None:
        """The end of a call whose script chose targets: each sink gets the records of the
        parts headed its way (the AOF: TO_AOF, replicas: TO_REPLICAS), in order."""
        self._close_segment()
        segments, self.segments = self.segments, []
        self.targets = TO_ALL
        published, self.published = self.published, []
        for sink in self.sinks:
            replica = sink in self.replication_sinks
            target = TO_REPLICAS if replica else TO_AOF
            records = [record for targets, part in segments if targets & target for record in part]
            if replica:
                records += published
            if records:
                sink(records, client)

    def settle(self) -> None:
        """Hand out changes made outside any command now (before a served blocked client's
        reply, before a sink goes away, at shutdown)."""
        if self.depth == 0 and self.touched:
            self._finish_orphans()
        if self.depth == 0 and self.served_touched:
            self._finish_served()

    # -- blocked commands served later ------------------------------------------------------------

    def _served_change(self, blocked: Any, item: tuple[int, bytes]) -> None:
        """A change made while a blocked command is served (its retry runs outside any call)."""
        ks = self.server.keyspace
        if self.served is not blocked:
            if self.served_touched:
                self._finish_served()
            self.served = blocked
            self.served_marks = (ks.stat_expired, ks.stat_evicted)
        self.served_touched.pop(item, None)
        self.served_touched[item] = None
        if not self._settle_scheduled and self.server.loop is not None:
            self._settle_scheduled = True
            self.server.loop.call_soon(self._scheduled_settle)

    def _finish_served(self) -> None:
        blocked, touched = self.served, self.served_touched
        self.served, self.served_touched = None, {}
        ks = self.server.keyspace
        records = None
        if (ks.stat_expired, ks.stat_evicted) == self.served_marks:  # (else an expiry was mixed in: images)
            records = self._served_records(blocked, touched)
        if records is None:
            records = [self._image(db, key) for db, key in touched]
        self._emit(records, getattr(blocked, "client", None))

    def _served_records(self, blocked: Any, touched: dict[tuple[int, bytes], None]) -> list[Record] | None:
        """What Redis propagates for a blocked command served later: the command's
        non-blocking form (BLPOP as LPOP, BLMOVE as LMOVE ...), not the whole value."""
        client = getattr(blocked, "client", None)
        entry = self.blocked_calls.pop(client.id, None) if client is not None else None
        if entry is None or entry[0] is not blocked or blocked.cmd is None:
            return None
        return self._as_non_blocking(blocked.cmd.name, entry[1], entry[2], touched)

    def _remember_blocked(self, client: Any, blocked: Any, argv: list[bytes]) -> None:
        calls = self.blocked_calls
        calls[client.id] = (blocked, argv, client.db.index)
        if len(calls) > 1024:  # drop the entries of clients no longer blocked on that call
            for client_id in [i for i, (b, _, _) in calls.items() if getattr(b, "client", None) is None
                              or b.client.blocked is not b]:
                del calls[client_id]

    def _as_non_blocking(self, name: str, argv: list[bytes], db_index: int,
                         touched: dict[tuple[int, bytes], None]) -> list[Record] | None:
        """A blocking list/zset command that popped (at once or when served later), as the
        non-blocking command Redis propagates for it; None if the changes do not fit."""
        if name in _SERVED_POPS:
            if len(touched) == 1:
                index, key = next(iter(touched))
                if index == db_index and key in argv[1:-1]:
                    return [(db_index, [_SERVED_POPS[name], key])]
            return None
        if name == "brpoplpush" and len(argv) == 4:
            src, dst = argv[1], argv[2]
            command = [b"RPOPLPUSH", src, dst]
        elif name == "blmove" and len(argv) == 6:
            src, dst = argv[1], argv[2]
            command = [b"LMOVE", *argv[1:5]]
        else:
            return None
        if (db_index, src) in touched and set(touched) <= {(db_index, src), (db_index, dst)}:
            return [(db_index, command)]
        return None

    def changed(self, db: Database, key: bytes) -> None:
        item = (db.index, key)
        if self.depth == 0:
            served = self.server.serving_blocked
            if served is not None and served.blocked is not None:
                self._served_change(served.blocked, item)
                return
        touched = self.touched
        if item in touched:
            del touched[item]
        touched[item] = None  # last touch last: images follow keyless records anyway
        if self.depth == 0 and not self._settle_scheduled:
            loop = self.server.loop
            if loop is not None:  # expiry/eviction outside a command: out on the next loop pass
                self._settle_scheduled = True
                loop.call_soon(self._scheduled_settle)

    def _scheduled_settle(self) -> None:
        self._settle_scheduled = False
        self.settle()

    # -- records ------------------------------------------------------------------------------------

    def _emit(self, records: list[Record], client: Any) -> None:
        published = self.published
        if published:
            self.published = []
            for sink in self.sinks:
                if sink in self.replication_sinks:
                    sink(records + published, client)
                elif records:
                    sink(records, client)
            return
        if records:
            self._batch = records
            try:
                for sink in self.sinks:
                    sink(records, client)
            finally:
                self._batch = None
                self._batch_wire = (-2, b"", -1)

    def _finish_outer(self, wrote: bool, reply: Any) -> None:
        if self.segments:
            outer, self.outer = self.outer, None
            self._finish_segments(outer[0] if outer is not None else None)
            return
        outer, touched, keyless = self.outer, self.touched, self.keyless
        self.outer, self.touched, self.keyless = None, {}, []
        if outer is None or not (wrote or touched or keyless):
            if self.published:
                self._emit([], outer[0] if outer is not None else None)
            return
        client, cmd, argv, db_index = outer
        records: list[Record] = list(keyless)
        name = cmd.name
        translated = None
        if not keyless and name in _BLOCKING:
            translated = self._as_non_blocking(name, argv, db_index, touched)
        elif not keyless:
            try:
                translated = self._translated(cmd, argv, reply, db_index, touched)
            except Exception as e:  # a translation bug must not lose the write: images are always right
                self.server.log("warning", f"Propagation: could not translate '{name}' ({type(e).__name__}: {e}); "
                                "propagating its keys' final states")
        if translated is not None:
            records += translated
        elif not keyless and touched and self._verbatim(cmd, argv, db_index, touched):
            records.append((db_index, argv))
        elif name in TTL_ONLY and not keyless:
            records += [self._ttl_record(db, key) for db, key in touched]
        else:
            records += [self._image(db, key) for db, key in touched]
        self._emit(records, client)

    def _finish_orphans(self) -> None:
        """Changes made outside any command (expiry, eviction, blocked clients served)."""
        touched, self.touched = self.touched, {}
        self._emit([self._image(db, key) for db, key in touched], None)

    def _verbatim_kind(self, cmd: Any) -> int:
        """0: not propagated as sent; 1: as sent, and its one key is argv[1] (SET k v, INCR,
        LPUSH ...); 2: as sent when every key it wrote is one of its arguments (MSET, DEL ...)."""
        name = cmd.name
        if name != "set" and name not in VERBATIM:
            kind = 0
        elif cmd.getkeys is None and not cmd.movable and cmd.first_key == 1 and cmd.last_key == 1:
            kind = 1
        else:
            kind = 2
        self._verbatim_kinds[name] = kind
        return kind

    def _verbatim(self, cmd: Any, argv: list[bytes], db_index: int, touched: dict[tuple[int, bytes], None]) -> bool:
        name = cmd.name
        if name == "set":
            if len(argv) != 3:
                return False
        elif name not in VERBATIM:
            return False
        try:
            own = {(db_index, argv[i]) for i in cmd.key_indices(argv) if i < len(argv)}
        except ValueError:
            return False
        return all(item in own for item in touched)

    def _translated(self, cmd: Any, argv: list[bytes], reply: Any, db_index: int,
                    touched: dict[tuple[int, bytes], None]) -> list[Record] | None:
        """Commands Redis rewrites for propagation, whose key image would cost the whole
        value: XADD * -> XADD <id>, SPOP -> SREM <members>, HINCRBYFLOAT -> HSET <value>."""
        name = cmd.name
        if name not in _TRANSLATED or len(argv) < 2 or set(touched) != {(db_index, argv[1])}:
            return None
        key = argv[1]
        db = self.server.keyspace.dbs[db_index]
        if name == "xadd" and type(reply) is bytes:
            words = [a.upper() for a in argv[2:]]
            if b"MAXLEN" in words or b"MINID" in words:
                return None  # approximate trimming may differ on another server: image instead
            at = 3 if words and words[0] == b"NOMKSTREAM" else 2
            return [(db_index, argv[:at] + [reply] + argv[at + 1:])]
        if name == "spop" and reply is not None:
            if key not in db.data:
                return [(db_index, [b"DEL", key])]
            members = list(reply.items) if isinstance(reply, SetReply) else reply if isinstance(reply, list) else [reply]
            if not all(type(m) is bytes for m in members):
                return None
            # in SREMs of at most 1024 members, as Redis's spopWithCountCommand propagates them
            return [(db_index, [b"SREM", key, *members[i:i + 1024]]) for i in range(0, len(members), 1024)] or None
        if name == "hincrbyfloat" and type(reply) is bytes and len(argv) == 4:
            value = db.data.get(key)
            if value is None or getattr(value, "field_expires", None):
                return None
            return [(db_index, [b"HSET", key, argv[2], reply])]
        return None

    def _ttl_record(self, db_index: int, key: bytes) -> Record:
        db = self.server.keyspace.dbs[db_index]
        if key not in db.data:
            return db_index, [b"DEL", key]
        when = db.expires.get(key)
        if when is None:
            return db_index, [b"PERSIST", key]
        return db_index, [b"PEXPIREAT", key, b"%d" % when]

    def _image(self, db_index: int, key: bytes) -> Record:
        """The key's final state as one command that recreates it (or DEL)."""
        from dumpling.commands.dump import dump_value

        db = self.server.keyspace.dbs[db_index]
        value = db.data.get(key)
        if value is None:
            return db_index, [b"DEL", key]
        when = db.expires.get(key)
        if type(value) is bytes or type(value) is bytearray:
            argv = [b"SET", key, bytes(value)]
            if when is not None:
                argv += [b"PXAT", b"%d" % when]
            return db_index, argv
        payload = dump_value(self.server, value)
        return db_index, [b"RESTORE", key, b"%d" % (when if when is not None else 0), payload, b"REPLACE", b"ABSTTL"]
