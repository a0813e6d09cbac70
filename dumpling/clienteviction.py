"""``maxmemory-clients``: client eviction, as Redis's ``evictClients``.

While the normal and pub/sub clients together use ``maxmemory-clients`` or more (each one's
CLIENT LIST ``tot-mem``: ``connection.client_memory``), clients are freed from the biggest
first, their unsent output dropped.  Redis sorts clients into power-of-two memory buckets
(32 KB and up) as it updates them after every command, and frees from the top bucket down, in
the order clients entered it; here the same order is worked out when it matters.

The clients' total is kept as Redis keeps its per-type sums (``updateClientMemUsageAndBucket``):
``note`` counts one client again when its buffers changed (its read, before and after the
requests run; each write to it, ``Client.flush``), ``forget`` takes a gone client out, and the
clients cron counts a client again at its turn and while its buffers move
(``memory.update_client_memory``, ``dumpling.clientscron``: output the transport sent since).
A check against the limit then costs nothing per client; only a total at or over it (or a
limit just changed) counts every client exactly and evicts.  Checks: after each read and after
its batch (``Client.process_input``), after a write that leaves a client holding
``CHECK_FROM`` bytes or more of output (``Server.output_limit_exceeded``), and from cron.

Never evicted (``clientEvictionAllowed``): CLIENT NO-EVICT clients, replicas, the master link, and
clients without a connection (scripts').  Must not: apply output-buffer limits (dispatch's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dumpling.commands.connection import client_info_line, client_memory

if TYPE_CHECKING:
    from dumpling.dispatch import Server

BUCKET_MIN_LOG = 15  # CLIENT_MEM_USAGE_BUCKET_MIN_LOG: every client under 32 KB is in the lowest bucket
BUCKET_MAX_LOG = 33  # CLIENT_MEM_USAGE_BUCKET_MAX_LOG: 8 GB and up share the top one
MIN_LIMIT = 128 * 1024  # a smaller maxmemory-clients would leave no room to talk to the server
CHECK_FROM = 1 << BUCKET_MIN_LOG  # output a write must leave for Client.flush to look at eviction


def eviction_limit(config: Any) -> int:
    """getClientEvictionLimit: the bytes clients may use, or 0 when eviction is off.  A
    percentage (stored negative) is of maxmemory, and means nothing without one."""
    clients, maxmemory = config["maxmemory-clients"], config["maxmemory"]
    if clients < 0 and maxmemory > 0:
        limit = int(maxmemory * -clients / 100)
    elif clients > 0:
        limit = clients
    else:
        return 0
    return max(limit, MIN_LIMIT)


def _bucket(memory: int) -> int:
    return min(max(memory.bit_length() - 1, BUCKET_MIN_LOG), BUCKET_MAX_LOG)


def _evictable(client: Any) -> bool:
    """clientEvictionAllowed: normal and pub/sub clients with a connection, not NO-EVICT."""
    return not client.no_evict and client.transport is not None and not client.closed


def note(server: Server, client: Any) -> None:
    """This client's memory counted again into the clients' total (masters and replicas are not
    counted, nor a client already gone: ``forget`` took it out)."""
    if client.closed or getattr(client, "repl_kind", None) is not None:
        return
    memory = client_memory(client)
    server.clients_eviction_memory += memory - client.eviction_memory
    client.eviction_memory = memory


def forget(server: Server, client: Any) -> None:
    """A gone client leaves the clients' total."""
    server.clients_eviction_memory -= client.eviction_memory
    client.eviction_memory = 0


def evict_clients(server: Server, writing: Any = None, extra: int = 0) -> None:
    """Free clients, biggest bucket first, until the clients' memory is under the limit.
    ``extra``: bytes ``writing`` is about to have written (not in its buffers yet)."""
    limit = eviction_limit(server.config)
    kept = limit == server.clients_eviction_limit  # (else eviction just turned on, or a new limit)
    server.clients_eviction_limit = limit
    if not limit:
        return
    if kept:
        if writing is not None:
            note(server, writing)
        if server.clients_eviction_memory + extra < limit:
            return
    counted: list[tuple[int, Any]] = []
    total = counted_memory = 0  # (the latter without ``extra``: the clients' total to keep)
    for client in server.clients.values():
        if getattr(client, "repl_kind", None) is not None:  # masters and replicas are not counted
            continue
        client.eviction_memory = memory = client_memory(client)
        counted_memory += memory
        if client is writing:
            memory += extra
        counted.append((memory, client))
        total += memory
    server.clients_eviction_memory = counted_memory
    if total < limit:
        return
    # Top bucket first; within a bucket, the client that has been there longest (Redis's list
    # order), which the client id approximates.
    candidates = sorted((c for c in counted if _evictable(c[1])), key=lambda c: (-_bucket(c[0]), c[1].id))
    for memory, client in candidates:
        server.log("notice", f"Evicting client: {client_info_line(client)[:-1]}")
        transport = client.transport
        client.close()  # (Server.client_disconnected forgets it)
        if transport is not None:
            transport.abort()  # freeClient: what it has not read is dropped
        server.stat_evicted_clients += 1
        total -= memory
        if total < limit:
            return
    server.log("warning", "Over client maxmemory after evicting all evictable clients")
