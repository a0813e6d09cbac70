"""Client-side caching: the key tracking table and invalidation messages (Redis's tracking.c).

``Tracking`` (``server.tracking``) owns the server-wide state: the tracking table (key ->
ids of the clients that may hold it in their cache; keys are global, not per database, as
in Redis), the BCAST prefix table (prefix -> keys changed in this event-loop pass and the
clients subscribed to it) and the count of tracking clients.  Each client's own settings
are a ``ClientTracking`` in ``client.tracking`` (None when tracking is off).

While anything is tracked, ``keyspace.tracking`` points at this object: ``Keyspace.changed``
then calls ``invalidate`` for every write, expiry and eviction, ``Server.call`` calls
``remember`` after every read-only command, and the C fast path steps aside.  When nothing
is tracked it is None, and a write costs one attribute test.

Delivery rules, as Redis 7.4:

* RESP3 clients get ``>2 invalidate [keys]`` pushes on their own connection; with
  REDIRECT the message goes to the redirect client instead, as a push if it speaks RESP3,
  or as a ``message`` on ``__redis__:invalidate`` if it is a RESP2 subscriber (otherwise
  nothing is sent).  A redirect client that is gone turns into ``tracking-redir-broken``
  (RESP3 only) on the tracking client.
* An invalidation for the client whose command is running follows that command's reply
  (inside EXEC, EXEC's reply); other clients get theirs at once.  Eviction happens before
  the command runs, so its invalidations come first.
* BCAST keys are collected and sent once per event-loop pass (Redis's beforeSleep).
* FLUSHALL / FLUSHDB send one null invalidation to every tracking client and empty the
  table.
* ``tracking-table-max-keys`` bounds the table: keys over the limit are dropped with an
  invalidation, as if they had changed (checked after reads, on CONFIG SET and in cron).

Must not: decide which keys a command reads (the command table's key specs do) or which
writes happened (the handlers report them through ``Keyspace.changed``).
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

from dumpling.protocol import Raw

if TYPE_CHECKING:
    from dumpling.commands.registry import Command
    from dumpling.dispatch import Server

INVALIDATE3 = b">2\r\n$10\r\ninvalidate\r\n"
INVALIDATE2 = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
NULL3 = b"_\r\n"
NULL2 = b"$-1\r\n"
# Read-only scripts are not tracked themselves: the commands they run are.
UNTRACKED_READS = frozenset(("eval_ro", "evalsha_ro", "fcall_ro"))


class ClientTracking:
    """One client's CLIENT TRACKING settings (Redis's CLIENT_TRACKING_* flags)."""

    __slots__ = ("redirect", "bcast", "optin", "optout", "noloop", "broken_redirect", "prefixes")

    def __init__(self) -> None:
        self.redirect = 0
        self.bcast = False
        self.optin = False
        self.optout = False
        self.noloop = False
        self.broken_redirect = False
        self.prefixes: dict[bytes, None] = {}  # BCAST prefixes, in the order given


class Prefix:
    """A BCAST prefix: keys changed since the last broadcast (key -> the client that
    changed it last, None for expiry and eviction) and its subscribers."""

    __slots__ = ("keys", "clients")

    def __init__(self) -> None:
        self.keys: dict[bytes, Any] = {}
        self.clients: dict[Any, None] = {}


def _bulk_array(keys: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(keys) + b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in keys)


class Tracking:
    """The tracking and prefix tables, and the delivery of invalidation messages."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.table: dict[bytes, dict[int, None]] = {}  # key -> ids of clients that read it
        self.total_items = 0  # ids summed over the table (INFO tracking_total_items)
        self.prefixes: dict[bytes, Prefix] = {}
        self.clients = 0  # clients with tracking on (INFO tracking_clients)
        self.evicting = False  # keys evicted before a command runs: delivered at once
        self._bcast_scheduled = False
        self._limit_rounds = 0  # Redis's timeout_counter: effort grows while over the limit
        server.config.listeners.append(self._config_changed)
        server.cron_hooks.append(self.limit_table)

    # -- state ----------------------------------------------------------------------------

    def _activate(self) -> None:
        self.server.keyspace.tracking = self

    def _maybe_retire(self) -> None:
        """Nothing tracked any more: writes go back to costing one attribute test."""
        if not self.clients and not self.table and not self.prefixes:
            self.server.keyspace.tracking = None

    def enable(self, c: Any, redirect: int, bcast: bool, optin: bool, optout: bool, noloop: bool,
               prefixes: list[bytes]) -> None:
        """enableTracking: (re)enable with these options; BCAST prefixes add to existing ones."""
        state = c.tracking
        if state is None:
            state = c.tracking = ClientTracking()
            self.clients += 1
        state.broken_redirect = False
        state.redirect = redirect
        state.bcast = bcast
        state.optin = optin
        state.optout = optout
        state.noloop = noloop
        if bcast:
            for prefix in prefixes or [b""]:
                entry = self.prefixes.get(prefix)
                if entry is None:
                    entry = self.prefixes[prefix] = Prefix()
                if c not in entry.clients:
                    entry.clients[c] = None
                    state.prefixes[prefix] = None
        self._activate()

    def disable(self, c: Any) -> None:
        """disableTracking: the client's ids stay in the table (dropped lazily, as in Redis)."""
        state = c.tracking
        if state is None:
            return
        for prefix in state.prefixes:
            entry = self.prefixes.get(prefix)
            if entry is not None:
                entry.clients.pop(c, None)
                if not entry.clients:
                    del self.prefixes[prefix]
        c.tracking = None
        c.tracking_caching = False
        self.clients -= 1
        self._maybe_retire()

    # -- reads --------------------------------------------------------------------------

    def acting_client(self) -> Any:
        """The client whose command is running (a script's caller for the script's
        commands; a blocked client while it is served), or None."""
        server = self.server
        c = server.current_client
        if c is None:
            return None
        if c.from_script:
            run = server.scripting.run
            c = run.caller if run is not None else None
            if c is None:
                return None
        return c if c._in_batch or c is server.serving_blocked else None

    def remember(self, executing: Any, cmd: Command, argv: list[bytes]) -> None:
        """trackingRememberKeys: a read-only command ran; its keys go in the table for the
        tracking client that issued it (the script's caller for a script's commands)."""
        c = executing
        if c.from_script:
            run = self.server.scripting.run
            if run is None:
                return
            c = run.caller
        state = c.tracking
        if state is None or state.bcast or cmd.name in UNTRACKED_READS:
            return
        if (state.optin and not c.tracking_caching) or (state.optout and c.tracking_caching):
            return
        if "pubsub" in cmd.flags:
            return
        try:
            positions = cmd.key_indices(argv)
        except ValueError:
            return
        if not positions:
            return
        table = self.table
        cid = c.id
        added = 0
        for pos in positions:
            if pos >= len(argv):
                continue
            key = argv[pos]
            ids = table.get(key)
            if ids is None:
                ids = table[key] = {}
            if cid not in ids:
                ids[cid] = None
                added += 1
        self.total_items += added
        if len(table) > self.server.config["tracking-table-max-keys"] > 0:
            self.limit_table()

    # -- writes -------------------------------------------------------------------------

    def invalidate(self, key: bytes, cls: str = "g", bcast: bool = True) -> None:
        """trackingInvalidateKey: ``key`` changed (expiry and eviction: ``cls`` "x"/"e").
        Every client that may cache it is told, once; the key leaves the table."""
        if bcast and self.prefixes:
            writer = None if cls in ("x", "e") else self.acting_client()
            for prefix, entry in self.prefixes.items():
                if key.startswith(prefix):
                    entry.keys.pop(key, None)  # Redis's rax keeps one entry, the last writer's
                    entry.keys[key] = writer
                    if not self._bcast_scheduled:
                        self._schedule_broadcast()
        ids = self.table.pop(key, None)
        if ids is None:
            return
        self.total_items -= len(ids)
        clients = self.server.clients
        acting = self.acting_client()
        for cid in ids:
            target = clients.get(cid)
            if target is None:
                continue
            state = target.tracking
            if state is None or state.bcast:
                continue
            if state.noloop and target is acting:
                continue
            body = b"*1\r\n$%d\r\n%s\r\n" % (len(key), key)
            if target is acting and not self.evicting:
                self.server.pending_pushes.append(_Deferred(self, target, body))
            else:
                self.send(target, body)
        if not self.clients:
            self._maybe_retire()

    def flushed(self) -> None:
        """trackingInvalidateKeysOnFlush: one null invalidation to every tracking client."""
        acting = self.acting_client()
        for c in list(self.server.clients.values()):
            if c.tracking is None:
                continue
            if c is acting:
                self.server.pending_pushes.append(_Deferred(self, c, None))
            else:
                self.send(c, NULL3 if c.resp3 else NULL2)
        self.table = {}
        self.total_items = 0
        self._maybe_retire()

    def send(self, c: Any, body: bytes) -> None:
        """sendTrackingMessage: ``body`` (the keys array, or a null) to ``c`` or its redirect."""
        state = c.tracking
        if state is None:
            return
        dest = c
        if state.redirect:
            dest = self.server.clients.get(state.redirect)
            if dest is None or dest.closed:
                state.broken_redirect = True
                if c.resp3:
                    self._push(c, b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % state.redirect)
                return
            if dest.resp3:
                self._push(dest, INVALIDATE3 + body)
            elif dest.channels or dest.patterns or dest.shard_channels:
                self._push(dest, INVALIDATE2 + body)
            return
        if c.resp3:
            self._push(c, INVALIDATE3 + body)

    def _push(self, dest: Any, wire: bytes) -> None:
        dest.push(Raw(wire))

    # -- BCAST ----------------------------------------------------------------------------

    def _schedule_broadcast(self) -> None:
        loop = self.server.loop
        if loop is None:
            self.broadcast()
            return
        self._bcast_scheduled = True
        loop.call_soon(self.broadcast)

    def broadcast(self) -> None:
        """trackingBroadcastInvalidationMessages: once per event-loop pass, each prefix's
        changed keys to its subscribers (NOLOOP ones without the keys they changed)."""
        self._bcast_scheduled = False
        for _, entry in sorted(self.prefixes.items()):  # Redis's radix trees iterate in byte order
            if not entry.keys:
                continue
            keys, entry.keys = dict(sorted(entry.keys.items())), {}
            common: bytes | None = None
            for c in list(entry.clients):
                state = c.tracking
                if state is None:
                    continue
                if state.noloop:
                    mine = [k for k, writer in keys.items() if writer is not c]
                    if mine:
                        self.send(c, _bulk_array(mine))
                else:
                    if common is None:
                        common = _bulk_array(list(keys))
                    self.send(c, common)
        self._maybe_retire()

    # -- the table limit --------------------------------------------------------------------

    def limit_table(self) -> None:
        """trackingLimitUsedSlots: over ``tracking-table-max-keys``, drop keys (with
        invalidations), up to 100 per round more for every round that did not get under."""
        limit = self.server.config["tracking-table-max-keys"]
        table = self.table
        if not limit or len(table) <= limit:
            self._limit_rounds = 0
            return
        effort = 100 * (self._limit_rounds + 1)
        # The oldest entries go first (Redis walks its radix tree to random keys; which
        # keys go is not part of the contract, and a slice costs nothing per key kept).
        for key in list(islice(table, effort)):
            self.invalidate(key, bcast=False)
            if len(table) <= limit:
                self._limit_rounds = 0
                return
        self._limit_rounds += 1

    def _config_changed(self, name: str) -> None:
        # Redis applies a lowered limit before the next command or in cron: outside the
        # CONFIG SET, so NOLOOP does not hide the evictions from the client that set it.
        if name == "tracking-table-max-keys":
            loop = self.server.loop
            if loop is None:
                self.limit_table()
            else:
                loop.call_soon(self.limit_table)


class _Deferred:
    """An invalidation held back until the running command has replied (Redis's
    ``tracking_pending_keys``): sent through ``Tracking.send`` then, so the redirect is
    resolved at that moment.  ``body`` None is a flush (a null in the client's protocol)."""

    __slots__ = ("tracking", "client", "body")

    def __init__(self, tracking: Tracking, client: Any, body: bytes | None) -> None:
        self.tracking = tracking
        self.client = client
        self.body = body

    def __call__(self) -> None:
        c = self.client
        if c.closed:
            return
        body = self.body if self.body is not None else (NULL3 if c.resp3 else NULL2)
        self.tracking.send(c, body)
