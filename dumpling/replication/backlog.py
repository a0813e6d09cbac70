"""The replication backlog, pure: the last ``size`` bytes of the stream and their offsets.

Offsets follow Redis: the stream's first byte is offset 1; ``master_repl_offset`` is the
offset of the last byte written; the backlog holds ``histlen`` bytes starting at
``first_offset`` (``repl_backlog_first_byte_offset``).  A replica asking to continue from
offset ``o`` (PSYNC's argument: its own offset + 1) can if ``first_offset <= o <=
first_offset + histlen``.  ``keep``: the backlog holds at least that many of the last bytes
even beyond ``size`` - what a connected replica has not received yet, which Redis 7 keeps
in the backlog's shared buffer (so that replica, reconnecting, continues partially).
"""

from __future__ import annotations


class Backlog:
    def __init__(self, size: int, master_offset: int) -> None:
        self.size = max(size, 16 * 1024)
        self.data = bytearray()
        self.first_offset = master_offset + 1  # offset of data[0] (and of the next byte while empty)

    @property
    def histlen(self) -> int:
        return len(self.data)

    def append(self, chunk: bytes | bytearray | memoryview, keep: int = 0) -> None:
        self.data += chunk
        # Trim with some slack so a stream of small writes does not move the buffer each time.
        excess = len(self.data) - max(self.size, keep)
        if excess > max(self.size >> 4, 4096):
            del self.data[:excess]
            self.first_offset += excess

    def trim(self, keep: int = 0) -> None:
        """Back to ``size`` (or ``keep``) once the replicas no longer need more."""
        excess = len(self.data) - max(self.size, keep)
        if excess > 0:
            del self.data[:excess]
            self.first_offset += excess

    def resize(self, size: int) -> None:
        self.size = max(size, 16 * 1024)
        excess = len(self.data) - self.size
        if excess > 0:
            del self.data[:excess]
            self.first_offset += excess

    def can_continue_from(self, offset: int) -> bool:
        return self.first_offset <= offset <= self.first_offset + len(self.data)

    def since(self, offset: int) -> bytes:
        """The stream from ``offset`` on (``can_continue_from(offset)`` must hold)."""
        return bytes(self.data[offset - self.first_offset:])
