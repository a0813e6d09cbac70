"""clientsCron: the clients' share of a cron tick, as Redis's.

A tick visits ``numclients / hz`` clients, at least ``MIN_ITERATIONS`` (Redis's
CLIENTS_CRON_MIN_ITERATIONS), so each client gets a turn about once a second whatever the tick
rate, and a tick costs a few clients, not all of them.  A turn (``visit``) does what Redis's does
there: the idle ``timeout``, the query buffer's resize (``dumpling.querybuf``: the turn restarts
its peak, so the client's next read is one its model looks at), the reply buffer's
(``dumpling.replybuffer``), then the client's memory counted again into the totals used_memory
and maxmemory-clients read (``memory.update_client_memory``).  The turns follow a snapshot of the
clients taken when the last one was used up (``Server.cron_round``): a client that connects waits
for the next round, one that left is skipped.

Between two turns a client's memory moves only through its reads and its output; Redis counts it
again after each command and each write.  Here a plain read run by the C loop leaves it as it
was (whole requests, replies handed to the socket), so nothing is counted per request; what can
move it is put in ``Server.clients_in_flux``, which every tick counts again: a read through
Python (a partial request, MULTI, subscriptions, ...: ``Client._after_read``), and output the
socket did not take (the transport's ``pause_writing``, at its first unsent byte; such a client
stays in the set until the transport drained, whose ``resume_writing`` puts it in once more).
So the totals are as fresh as a tick for every client, and an idle one costs its turn a second.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dumpling import replybuffer
from dumpling.memory import update_client_memory

if TYPE_CHECKING:
    from dumpling.dispatch import Server

MIN_ITERATIONS = 5  # CLIENTS_CRON_MIN_ITERATIONS (7.0 and 7.4: 5)


def visit(server: Server, client: Any, now_ms: int) -> None:
    """One client's turn (clientsCronHandleTimeout, clientsCronResizeQueryBuffer,
    clientsCronResizeOutputBuffer, updateClientMemUsageAndBucket)."""
    timeout = server.config["timeout"]
    if timeout and now_ms / 1000 - client.last_interaction > timeout and idle_may_close(client):
        server.log("verbose", "Closing idle client")
        client.close()
        return
    if client.input_at_rest():
        length, arriving = 0, -1
    else:
        length, arriving = client.query_buffer_size(), client.argument_arriving()
    client.query_buffer.cron(length, now_ms // 1000 - int(client.last_interaction), arriving)
    replybuffer.resize(client, server, now_ms)
    update_client_memory(server, client)


def idle_may_close(client: Any) -> bool:
    """Whether ``timeout`` applies: not to replicas, the master link, blocked clients (their own
    timeout runs), subscribers or monitors."""
    return (client.blocked is None and getattr(client, "repl_kind", None) is None
            and not (client.channels or client.patterns or client.shard_channels or client.monitor))


def cron(server: Server, now_ms: int | None = None) -> None:
    """The clients cron of one tick: the clients in flux counted again, then this tick's turns."""
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    flux = server.clients_in_flux
    if flux:
        for client in list(flux):
            update_client_memory(server, client)
            transport = client.transport
            if client.closed or transport is None or not transport.get_write_buffer_size():
                flux.discard(client)  # (at rest: reads and writes bring it back)
    numclients = len(server.clients)
    if not numclients:
        server.cron_round = []
        return
    iterations = numclients // server.hz
    if iterations < MIN_ITERATIONS:
        iterations = min(numclients, MIN_ITERATIONS)
    clients = server.cron_round
    cursor = server.cron_cursor
    renewed = False
    while iterations:
        if cursor >= len(clients):
            if renewed:
                break  # (every client had its turn this tick)
            clients = server.cron_round = list(server.clients.values())
            cursor = 0
            renewed = True
        client = clients[cursor]
        cursor += 1
        if client.closed:
            continue  # (left since the round began)
        visit(server, client, now_ms)
        iterations -= 1
    server.cron_cursor = cursor
