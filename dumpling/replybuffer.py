"""The size of a client's reply buffer as Redis manages it (clientsCronResizeOutputBuffer): each
client starts with 16 KB; the cron halves it (down to 1 KB) while the peak of the last period
used less than half of it, and doubles it (up to 16 KB) when a period filled it.  The peak is
the most reply bytes the buffer held at once (``Client.flush`` records it) and restarts every
``reply-buffer peak reset time`` (5 s; DEBUG REPLYBUFFER changes it, or turns resizing off).

Nothing is allocated by these sizes: they are what CLIENT LIST (``rbs``, ``rbp``) and tot-mem
report, so client eviction weighs clients as Redis does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dumpling.dispatch import Server

MIN_BYTES = 1024  # PROTO_REPLY_MIN_BYTES
CHUNK_BYTES = 16 * 1024  # PROTO_REPLY_CHUNK_BYTES: the initial size and the most it grows to
DEFAULT_PEAK_RESET_MS = 5000  # REPLY_BUFFER_DEFAULT_PEAK_RESET_TIME
CRON_MIN_CLIENTS = 5  # CLIENTS_CRON_MIN_ITERATIONS (7.0 and 7.4: 5)


def resize(client: Any, server: Server, now_ms: int) -> None:
    """One client's turn in the cron."""
    size = client.reply_buffer_size
    peak = client.reply_buffer_peak
    new_size = 0
    if server.reply_buffer_resizing:
        if size // 2 >= MIN_BYTES and peak < size // 2:
            new_size = max(MIN_BYTES, peak + 1)
            server.stat_reply_buffer_shrinks += 1
        elif size * 2 < CHUNK_BYTES * 2 and peak == size:
            new_size = min(CHUNK_BYTES, size * 2)
            server.stat_reply_buffer_expands += 1
    reset_ms = server.reply_buffer_peak_reset_ms
    if reset_ms >= 0 and now_ms - client.reply_peak_reset_at >= reset_ms:
        client.reply_buffer_peak = 0  # (the buffer is empty between reads here)
        client.reply_peak_reset_at = now_ms
    if new_size:
        client.reply_buffer_size = new_size


def cron(server: Server, now_ms: int) -> None:
    """clientsCron's share of a tick: every client about once a second (at least 5 a tick, as Redis: a
    turn restarts the query buffer's peak, so the client's next read takes the Python read path)."""
    clients = list(server.clients.values())
    if not clients:
        return
    count = min(len(clients), max(CRON_MIN_CLIENTS, len(clients) // max(server.config["hz"], 1)))
    start = server.reply_buffer_cursor % len(clients)
    now_s = now_ms // 1000
    for i in range(count):
        client = clients[(start + i) % len(clients)]
        # clientsCronResizeQueryBuffer, then clientsCronResizeOutputBuffer (dumpling.querybuf)
        client.query_buffer.cron(client.query_buffer_size(), now_s - int(client.last_interaction),
                                 client.argument_arriving())
        resize(client, server, now_ms)
    server.reply_buffer_cursor = start + count
