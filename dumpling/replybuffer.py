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


def resize(client: Any, server: Server, now_ms: int) -> None:
    """One client's turn in the clients cron (dumpling.clientscron)."""
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
