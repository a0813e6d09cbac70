"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

Queuing happens in ``dispatch.Server.execute`` while ``client.multi`` is a list (it
answers ``+QUEUED`` and sets ``client.multi_error`` when it refuses a command); this
module opens, runs and closes transactions and owns the WATCH bookkeeping:

* ``client.watched`` maps ``(db index, key)`` to whether the key was already logically
  expired when it was watched (such a key being deleted later is no change);
* ``keyspace.watched`` maps ``(db index, key)`` to the clients watching it;
* ``Keyspace.touch_watched`` / ``touch_watched_in_db`` set ``client.watch_dirty`` for
  every write, deletion, expiry, flush or swap that reaches a watched key.

EXEC runs the queued commands back to back through ``Server.call`` under the single
time snapshot taken when EXEC started.  Handlers are synchronous, so no other
client's command can run in between; blocking commands answer at once
(``server.in_exec``).

Must not: queue commands itself or touch other clients' state.
"""

from __future__ import annotations

from typing import Any

from dumpling.commands.acl import check_queued
from dumpling.commands.registry import command
from dumpling.dispatch import Blocked
from dumpling.errors import CommandError
from dumpling.protocol import NULL_ARRAY, OK, ErrorReply

TX = {"group": "transactions"}
EXECABORT = "-EXECABORT Transaction discarded because of previous errors."
EXECABORT_OOM = "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'."


def discard_transaction(c: Any) -> None:
    """Leave MULTI state and forget every WATCH (Redis's ``discardTransaction``)."""
    c.multi = None
    c.multi_error = False
    c.server.unwatch_all(c)


def watched_key_expired(c: Any) -> bool:
    """A watched key has expired since WATCH, even if nothing deleted it yet."""
    ks = c.keyspace
    for (index, key), expired_at_watch in c.watched.items():
        if not expired_at_watch and ks.is_expired(ks.dbs[index], key):
            return True
    return False


@command("multi", 1, "noscript loading stale fast allow_busy", **TX, since="1.2.0", summary="Starts a transaction.")
def multi(c: Any, argv: list[bytes]) -> Any:
    if c.multi is not None:
        raise CommandError("MULTI calls can not be nested")
    c.multi = []
    c.multi_error = False
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog", **TX, since="1.2.0",
         summary="Executes all commands in a transaction.", complexity="Depends on commands in the transaction")
def exec_(c: Any, argv: list[bytes]) -> Any:
    if c.multi is None:
        raise CommandError("EXEC without MULTI")
    server = c.server
    queued: list[tuple[Any, list[bytes]]] = c.multi
    # Redis refuses EXEC itself (before running it) when it would run a denyoom command out of memory.
    if server.config["maxmemory"] and any(cmd.denyoom for cmd, _ in queued) and not server.evict_if_needed():
        discard_transaction(c)
        raise CommandError(EXECABORT_OOM)
    if not c.watch_dirty and c.watched and watched_key_expired(c):
        c.watch_dirty = True
    if c.multi_error:
        discard_transaction(c)
        raise CommandError(EXECABORT)
    if c.watch_dirty:
        discard_transaction(c)
        return NULL_ARRAY
    server.unwatch_all(c)
    replies: list[Any] = []
    server.in_exec = True
    try:
        for cmd, args in queued:
            if not c.unrestricted:  # ACL rules may have changed since the command was queued
                refusal = check_queued(c, cmd, args)
                if refusal is not None:
                    server.count_error("NOPERM")
                    replies.append(ErrorReply(refusal))
                    continue
            reply = server.call(c, cmd, args)
            if type(reply) is Blocked:  # a handler that ignored in_exec: answer as on timeout
                reply = reply.timeout_reply
            replies.append(reply)
    finally:
        server.in_exec = False
        c.multi = None
        c.multi_error = False
        c.last_cmd = "exec"
    return replies


@command("discard", 1, "noscript loading stale fast allow_busy", **TX, since="2.0.0",
         summary="Discards a transaction.", complexity="O(N), when N is the number of queued commands")
def discard(c: Any, argv: list[bytes]) -> Any:
    if c.multi is None:
        raise CommandError("DISCARD without MULTI")
    discard_transaction(c)
    return OK


@command("watch", -2, "noscript loading stale fast allow_busy", (1, -1, 1), **TX, since="2.2.0", key_flags="RO",
         summary="Monitors changes to keys to determine the execution of a transaction.",
         complexity="O(1) for every key.", args="key...")
def watch(c: Any, argv: list[bytes]) -> Any:
    if c.multi is not None:
        raise CommandError("WATCH inside MULTI is not allowed")
    if c.watch_dirty:
        return OK  # EXEC will fail anyway; Redis does not record more keys
    ks = c.keyspace
    db = c.db
    watchers = ks.watched
    for key in argv[1:]:
        item = (db.index, key)
        if item in c.watched:
            continue
        c.watched[item] = ks.is_expired(db, key)
        clients = watchers.get(item)
        if clients is None:
            watchers[item] = {c}
        else:
            clients.add(c)
    return OK


@command("unwatch", 1, "noscript loading stale fast allow_busy", **TX, since="2.2.0",
         summary="Forgets about watched keys of a transaction.")
def unwatch(c: Any, argv: list[bytes]) -> Any:
    c.server.unwatch_all(c)
    return OK
