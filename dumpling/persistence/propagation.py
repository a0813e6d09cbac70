"""The propagation stream: what every write becomes for the AOF and for replicas.

One mechanism, two consumers, in Redis's model (``call()`` / ``alsoPropagate`` /
``propagatePendingCommands``).  ``Propagator`` (``server.propagator``) brackets every call
(``server.call_hooks``: ``begin``/``end``; the nested calls of an EXEC or a script, and a
blocked command served later, are calls too) and collects the keys each call wrote
(``keyspace.change_hook``).  When a call ends it adds its *records* ``(db index, argv)`` to
the execution unit's list:

* what its handler stated (``propagate_as``: Redis's ``rewriteClientCommandVector`` and
  ``alsoPropagate``): EXPIRE as PEXPIREAT, SET EX as SET PXAT, SPOP as SREM, BLPOP as
  LPOP, an already expired TTL as DEL/UNLINK ...;
* else, for a write: the command as sent when it is deterministic and wrote only keys it
  names (``VERBATIM``), a keyless write (FLUSHALL, SWAPDB, FUNCTION ...) as sent,
  and otherwise the final state of each key it touched (``SET key value [PXAT ms]``,
  ``RESTORE key <abs ms> <payload> REPLACE ABSTTL`` or ``DEL key``);
* a container (EXEC, EVAL, FCALL) adds nothing of its own: its nested calls did.

A key deleted because its TTL passed, or evicted, becomes ``DEL``/``UNLINK`` (by
``lazyfree-lazy-expire`` / ``lazyfree-lazy-eviction``) at once: before the command that
met it, or alone when no command runs.  ``also_propagate`` adds such side records
(an expired hash field's HDEL, MIGRATE's DEL of the keys it moved).  When the outermost call ends, the unit's records go to
every attached *sink* (the AOF, the replication backlog) as one batch; a sink wraps a
batch of several records in ``MULTI``/``EXEC`` and emits ``SELECT`` when the database
changes (``encode_records``), except for a command that touches arbitrary keys (SCAN,
RANDOMKEY), whose lazy-expiry deletions go out one by one.  A script's ``redis.set_repl``
sets the targets of the records its later calls make (``retarget``); PUBLISH goes to
replicas only.  Other changes made outside any command, with no stated form, are key
images handed out on the next event loop pass.

While no sink is attached the hooks are off (``server.call_hooks`` is None) and writes
cost nothing extra.

Must not: write files or sockets (the sinks do), decide whether a sink is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dumpling.protocol import encode_request

if TYPE_CHECKING:
    from dumpling.dispatch import Server
    from dumpling.keyspace import Database

Record = tuple[int, list[bytes]]
# A record of the execution unit in progress, with where it goes (TO_AOF | TO_REPLICAS).
Op = tuple[int, list[bytes], int]
# A sink gets the records of one call and the client that made it (None: expiry, eviction).
Sink = Callable[[list[Record], Any], None]
# A sink's short way for the common call, one command propagated as sent: (db index, argv,
# argv already encoded without SELECT, client).  Encoded once for all sinks.
OneSink = Callable[[int, list[bytes], bytes, Any], None]

# Deterministic given the dataset, and writing only the keys named in their arguments:
# propagated as sent unless the handler states another form (SET with EX: SET ... PXAT).
VERBATIM = frozenset({
    "set", "setnx", "mset", "msetnx", "append", "setrange", "incr", "decr", "incrby", "decrby", "del", "unlink",
    "lpush", "rpush", "lpushx", "rpushx", "linsert", "lset", "lrem", "ltrim", "lpop", "rpop", "rpoplpush", "lmove",
    "sadd", "srem", "smove", "sinterstore", "sunionstore", "sdiffstore", "hset", "hsetnx", "hmset", "hdel",
    "hincrby", "zadd", "zincrby", "zrem", "zremrangebyscore", "zremrangebyrank", "zremrangebylex", "zunionstore",
    "zinterstore", "zdiffstore", "zrangestore", "zpopmin", "zpopmax", "rename", "renamenx", "setbit", "bitop",
    "pfadd", "pfmerge", "xdel", "xack", "copy", "sintercard", "persist", "move", "bitfield", "geoadd",
    "georadius", "georadiusbymember", "geosearchstore", "sort", "xsetid", "xgroup|create", "xgroup|createconsumer",
    "xgroup|delconsumer", "xgroup|destroy", "xgroup|setid", "hpersist", "restore", "restore-asking",
    "xadd", "xtrim", "pfcount", "pfdebug",
})
_PUBLISHERS = frozenset({"publish", "spublish"})
# Where a record goes (redis.set_repl; Redis's PROPAGATE_AOF / PROPAGATE_REPL).
TO_AOF = 1
TO_REPLICAS = 2
TO_ALL = TO_AOF | TO_REPLICAS
_EMPTY: dict[tuple[int, bytes], None] = {}


def propagate_as(c: Any, *commands: list[bytes]) -> None:
    """A write handler states what its call propagates as, instead of its arguments as
    sent: each command (argv) in the client's database, in order; no command at all: the
    call propagates nothing (Redis's ``rewriteClientCommandVector``, or
    ``preventCommandPropagation`` with ``alsoPropagate``).  Cheap when nothing listens."""
    hooks = c.server.call_hooks
    if hooks is not None:
        hooks.state(c.db.index, commands)


def also_propagate(server: Any, db_index: int, argv: list[bytes], covers: Sequence[bytes] = ()) -> None:
    """A record beside the running call's own (Redis's ``alsoPropagate``): the HDEL of a
    hash field whose TTL passed, MIGRATE's DEL of the keys it moved.  Outside any call it goes
    out at once, alone.  ``covers``: the keys whose changes it states, so the changes reported
    for them (``hexpired``, an emptied hash's ``del``, a moved key's deletion) add nothing else."""
    hooks = server.call_hooks
    if hooks is not None:
        hooks.also(db_index, argv, covers)


def deletion(config: Any, key: bytes, lazy_option: str) -> list[bytes]:
    """``propagateDeletion``: UNLINK when the lazyfree option for that kind of deletion is
    on, else DEL."""
    return [b"UNLINK" if config[lazy_option] else b"DEL", key]


def encode_records(records: list[Record], selected: int) -> tuple[bytes, int]:
    """The wire form of one call's records for a stream whose SELECTed database is
    ``selected`` (-1: none yet): MULTI/EXEC around several records, SELECT where the
    database changes (inside the MULTI, as Redis 7 writes it).  Returns the bytes and the
    database selected after them."""
    if len(records) == 1 and records[0][0] == selected:  # the common case: one command, same database
        return encode_request(records[0][1]), selected
    out = bytearray()
    wrap = len(records) > 1
    if wrap:
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
        self.depth = 0
        # The running call: the keys it changed itself (its nested calls' are theirs), the
        # form its handler stated (None: none), the dirty counter when it began; the calls
        # it is nested in keep theirs in ``frames``.
        self.touched: dict[tuple[int, bytes], None] = {}
        self.form: list[Op] | None = None
        self.mark = 0
        self.frames: list[tuple[dict[tuple[int, bytes], None], list[Op] | None, int]] = []
        self.ops: list[Op] = []  # the execution unit's records so far (Redis's server.also_propagate)
        self.outer: tuple[Any, Any] | None = None  # (client, cmd) of the outermost call
        self.orphans: dict[tuple[int, bytes], None] = {}  # changed outside any call, with no form
        self.covered: set[tuple[int, bytes]] = set()  # keys whose expiry records are stated (also_propagate)
        self._settle_scheduled = False
        self._suspended = 0
        # command name -> how its argv may be propagated as sent (see _verbatim_kind)
        self._verbatim_kinds: dict[str, int] = {}
        # The batch being handed to the sinks and its wire form (see ``encode``): encoded
        # once, whatever the number of sinks that share its SELECT state.
        self._batch: list[Record] | None = None
        self._batch_wire: tuple[int, bytes, int] = (-2, b"", -1)
        # redis.set_repl: where the records of the calls made from now on go (see ``retarget``)
        self.targets = TO_ALL

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
            self.touched = {}
            self.form = None
            self.frames = []
            self.ops = []
            self.outer = None
            self.orphans = {}
            self.covered = set()
            self.targets = TO_ALL

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
            if self.orphans:
                self._finish_orphans()
            if self.covered:
                self.covered = set()
            self.outer = (client, cmd)
        else:
            self.frames.append((self.touched, self.form, self.mark))
            self.touched = {}
            self.form = None
        self.mark = self.keyspace.dirty
        self.depth += 1

    def end(self, client: Any, cmd: Any, argv: list[bytes], reply: Any = None) -> None:
        depth = self.depth - 1
        if depth < 0:
            return  # began before the first sink was attached (CONFIG SET appendonly yes)
        self.depth = depth
        touched = self.touched
        wrote = self.keyspace.dirty != self.mark
        if depth == 0 and wrote and len(touched) == 1 and self.form is None and not self.ops:
            # The common case, kept short: an outermost call that wrote one key of its own
            # and is propagated as sent (SET k v, LPUSH k ..., INCR k ...).
            kind = self._verbatim_kinds.get(cmd.name)
            if kind is None:
                kind = self._verbatim_kind(cmd)
            if kind == 1:
                item = (client.db.index, argv[1])
                if item in touched:
                    self.outer, self.touched = None, {}
                    wire = encode_request(argv)
                    for one in self._ones:
                        one(item[0], argv, wire, client)
                    return
        form = self.form
        if form is not None:
            if wrote:  # (a stated form of a call that changed nothing: nothing, as in Redis)
                self.ops += form
        elif wrote or touched or cmd.name in _PUBLISHERS:
            self._own_records(client, cmd, argv, reply, wrote, touched)
        if depth:
            self.touched, self.form, self.mark = self.frames.pop()
            return
        self.touched, self.form = {}, None
        outer, self.outer = self.outer, None
        if self.ops:
            self._finish_unit(client if outer is None else outer[0], cmd if outer is None else outer[1])

    def _own_records(self, client: Any, cmd: Any, argv: list[bytes], reply: Any, wrote: bool,
                     touched: dict[tuple[int, bytes], None]) -> None:
        """The records of a call whose handler stated no form."""
        targets = self.targets
        db_index = client.db.index
        if wrote and cmd.is_write and not (cmd.key_specs or cmd.movable or cmd.first_key):
            self.ops.append((db_index, argv, targets))  # FLUSHALL, FLUSHDB, SWAPDB, FUNCTION ...
            return
        if cmd.name in _PUBLISHERS:
            # subscribers of replicas get it too (in cluster mode the cluster bus carries it instead)
            if type(reply) is int and self.server.cluster is None and targets & TO_REPLICAS:
                self.ops.append((db_index, argv, TO_REPLICAS))
            return
        if self._verbatim(cmd, argv, db_index, touched):
            # (also a write that reported no key: XGROUP CREATE and the other consumer-group changes)
            self.ops.append((db_index, argv, targets))
        else:
            self.ops += [(*self._image(db, key), targets) for db, key in touched]

    def state(self, db_index: int, commands: Sequence[list[bytes]]) -> None:
        """``propagate_as`` from the running handler: its call's records are these."""
        ops = [(db_index, argv, self.targets) for argv in commands]
        if self.depth == 0:  # (a handler run outside any call: out at once)
            if ops:
                self._finish_unit(None, None, ops)
            return
        if self.form is None:
            self.form = ops
        else:
            self.form += ops

    def also(self, db_index: int, argv: list[bytes], covers: Sequence[bytes] = ()) -> None:
        """``also_propagate``: a side record of the execution unit (or alone, outside one)."""
        for key in covers:  # (changes reported before: dropped; after: skipped, see ``changed``)
            item = (db_index, key)
            self.covered.add(item)
            self.orphans.pop(item, None)
            self.touched.pop(item, None)
        if self.depth == 0:
            self._finish_unit(None, None, [(db_index, argv, TO_ALL)])
        else:
            self.ops.append((db_index, argv, TO_ALL))

    def retarget(self, targets: int) -> None:
        """``redis.set_repl(targets)`` in a script: the records of the calls it makes from
        now on go to ``targets`` only (TO_AOF, TO_REPLICAS, both or neither); what was
        recorded before keeps its targets.  A script's run ends with TO_ALL."""
        self.targets = targets

    def settle(self) -> None:
        """Hand out changes made outside any command now (before a sink goes away, at
        shutdown, before a served blocked client's reply)."""
        if self.depth == 0 and self.orphans:
            self._finish_orphans()

    def changed(self, db: Database, key: bytes, event: bytes | None = None) -> None:
        if event == b"expired":
            # deleted because its TTL passed: DEL/UNLINK before what the command does
            self._deleted(db.index, deletion(self.server.config, key, "lazyfree-lazy-expire"))
            return
        if event == b"evicted":
            self._deleted(db.index, deletion(self.server.config, key, "lazyfree-lazy-eviction"))
            return
        item = (db.index, key)
        if item in self.covered and (event is None or event == b"hexpired" or key not in db.data):
            return  # an expiry that stated its own records (the HDELs of expired hash fields)
        if self.depth:
            touched = self.touched
            if item in touched:
                del touched[item]
            touched[item] = None  # last touch last
            return
        orphans = self.orphans
        orphans.pop(item, None)
        orphans[item] = None
        if not self._settle_scheduled:
            loop = self.server.loop
            if loop is not None:  # out on the next loop pass
                self._settle_scheduled = True
                loop.call_soon(self._scheduled_settle)

    def _deleted(self, db_index: int, argv: list[bytes]) -> None:
        if self.depth:
            self.ops.append((db_index, argv, TO_ALL))
        else:  # active expiry, eviction: each deletion alone, never wrapped in MULTI/EXEC
            self._finish_unit(None, None, [(db_index, argv, TO_ALL)])

    def _scheduled_settle(self) -> None:
        self._settle_scheduled = False
        self.settle()

    # -- records ------------------------------------------------------------------------------------

    def _finish_unit(self, client: Any, cmd: Any, ops: list[Op] | None = None) -> None:
        """The end of an execution unit: its records to the sinks, as one batch (MULTI/EXEC
        when several) unless its command touches arbitrary keys (SCAN's lazy expiry)."""
        if ops is None:
            ops, self.ops = self.ops, []
        if all(op[2] == TO_ALL for op in ops):
            records = [(db_index, argv) for db_index, argv, _ in ops]
            if len(records) > 1 and cmd is not None and "touches_arbitrary_keys" in cmd.flags:
                for record in records:
                    self._emit([record], client)
            else:
                self._emit(records, client)
            return
        for sink in self.sinks:
            target = TO_REPLICAS if sink in self.replication_sinks else TO_AOF
            records = [(db_index, argv) for db_index, argv, targets in ops if targets & target]
            if records:
                sink(records, client)

    def _emit(self, records: list[Record], client: Any) -> None:
        self._batch = records
        try:
            for sink in self.sinks:
                sink(records, client)
        finally:
            self._batch = None
            self._batch_wire = (-2, b"", -1)

    def _finish_orphans(self) -> None:
        """Changes made outside any command with no stated form: the keys' final states."""
        orphans, self.orphans = self.orphans, {}
        self._emit([self._image(db, key) for db, key in orphans], None)

    def _verbatim_kind(self, cmd: Any) -> int:
        """0: not propagated as sent; 1: as sent, and its one key is argv[1] (SET k v, INCR,
        LPUSH ...); 2: as sent when every key it wrote is one of its arguments (MSET, DEL ...)."""
        name = cmd.name
        if name not in VERBATIM:
            kind = 0
        elif cmd.getkeys is None and not cmd.movable and cmd.first_key == 1 and cmd.last_key == 1:
            kind = 1
        else:
            kind = 2
        self._verbatim_kinds[name] = kind
        return kind

    def _verbatim(self, cmd: Any, argv: list[bytes], db_index: int, touched: dict[tuple[int, bytes], None]) -> bool:
        if cmd.name not in VERBATIM:
            return False
        try:  # (by name: MOVE and COPY ... DB write the same name in another database)
            own = {argv[i] for i in cmd.key_indices(argv) if i < len(argv)}
        except ValueError:
            return False
        return all(key in own for _, key in touched)

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
