"""A client's query buffer as Redis 7.4 allocates it: CLIENT LIST's ``qbuf-free`` (the buffer's
capacity beyond the bytes it holds) and how that capacity grows on reads and shrinks in the cron.

dumpling keeps its unread bytes in its own buffers; what this models is the sds string Redis
would hold them in (readQueryFromClient, processMultibulkBuffer, clientsCronResizeQueryBuffer,
with jemalloc's size classes):

- a read into a buffer of less than 16 KB capacity makes room for exactly 16 KB more
  (a fresh client shows ``qbuf-free=20448`` after a small command), otherwise for 16 KB more
  greedily (doubling under 1 MB);
- an argument of 32 KB or more whose ``$len`` has been read gets room for exactly its length,
  and once it has arrived the buffer goes to the argument and a new one of that size replaces it;
- every client's turn in the cron: past 4 KB unused, an idle client's buffer (more than 2 s) is
  cut to its contents, a busy one's to its recent peak when it is over 32 KB and twice that peak;
  then the peak restarts from the current length.

The model is fed at read granularity (``read`` before a read's requests run, ``settle`` after):
where Redis would have split one of our reads into several, the capacity can differ from
Redis's by what those intermediate reads would have added.  Pure: the caller passes lengths.
"""

from __future__ import annotations

from dumpling.datatypes.lists import jemalloc_size

IOBUF_LEN = 16 * 1024  # PROTO_IOBUF_LEN: what one read asks room for
BIG_ARG = 32 * 1024  # PROTO_MBULK_BIG_ARG
RESIZE_THRESHOLD = 32 * 1024  # PROTO_RESIZE_THRESHOLD
MAX_PREALLOC = 1024 * 1024  # SDS_MAX_PREALLOC
IDLE_SECONDS = 2  # a buffer idle longer than this is trimmed to its contents
UNUSED_BYTES = 4 * 1024  # nothing is trimmed unless this much is unused

# sds header types: 5, 8, 16, 32, 64 bits
_TYPE_8 = 1
_HEADER = (1, 3, 5, 9, 17)
_MAX = (31, 255, 65535, (1 << 32) - 1, (1 << 64) - 1)


def _sds_type(size: int) -> int:
    """sdsReqType, type 5 promoted to 8 as every query-buffer path does."""
    for kind, limit in ((_TYPE_8, 1 << 8), (2, 1 << 16), (3, 1 << 32)):
        if size < limit:
            return kind
    return 4


def _usable(kind: int, size: int) -> int:
    """The capacity a fresh allocation for ``size`` bytes of type ``kind`` gets (s_malloc_usable)."""
    return min(jemalloc_size(_HEADER[kind] + size + 1) - _HEADER[kind] - 1, _MAX[kind])


class QueryBuffer:
    """The capacity (``alloc``), header type and recent peak of a client's query buffer."""

    __slots__ = ("alloc", "kind", "peak", "bulk", "quiet")

    def __init__(self) -> None:
        self.alloc = 0  # sdsempty()
        self.kind = _TYPE_8
        self.peak = 0
        self.bulk = -1  # the length of the big argument (>= BIG_ARG) being received, if seen
        # The largest read that changes nothing here, onto an empty buffer (the caller's test
        # for skipping ``read`` and ``settle``): one within room and peak, no big argument.
        self.quiet = -1

    def _requiet(self) -> None:
        self.quiet = min(self.peak, BIG_ARG) if self.alloc >= IOBUF_LEN and self.bulk < 0 else -1

    # -- the sds operations ------------------------------------------------------

    def make_room(self, length: int, extra: int, greedy: bool) -> None:
        """sdsMakeRoomFor / sdsMakeRoomForNonGreedy on a buffer holding ``length`` bytes."""
        if self.alloc - length >= extra:
            return
        size = length + extra
        if greedy:
            size = size * 2 if size < MAX_PREALLOC else size + MAX_PREALLOC
        self.kind = _sds_type(size)
        self.alloc = _usable(self.kind, size)

    def resize(self, size: int) -> None:
        """sdsResize(s, size, would_regrow=1): the capacity becomes exactly ``size``; the header
        type changes only when the string is reallocated under a smaller type of 8 bits."""
        if self.alloc == size:
            return
        kind = _sds_type(size)
        if not (kind == self.kind or _TYPE_8 < kind < self.kind):
            self.kind = kind
        self.alloc = size

    def renew(self, size: int) -> None:
        """sdsnewlen(SDS_NOINIT, size) then sdsclear: a new, empty buffer of that capacity."""
        self.kind = _sds_type(size)
        self.alloc = _usable(self.kind, size)

    # -- what happens to it -----------------------------------------------------

    def read(self, length: int, nread: int) -> None:
        """readQueryFromClient: room made for a read of ``nread`` bytes onto ``length`` buffered."""
        if self.bulk >= BIG_ARG:  # reading the rest of a big argument: exactly what is missing
            wanted = max(self.bulk + 2 - length, 1)
            self.make_room(length, wanted, greedy=False)
            self.peak = max(self.peak, length + wanted)
        elif self.alloc < IOBUF_LEN:
            self.make_room(length, IOBUF_LEN, greedy=False)
            self.peak = max(self.peak, length + IOBUF_LEN)
        else:
            self.make_room(length, IOBUF_LEN, greedy=True)
        self.peak = max(self.peak, length + min(nread, self.alloc - length))
        self._requiet()

    def settle(self, length: int, arriving: int, last_argument: int = -1) -> None:
        """After a read's requests ran, ``length`` bytes wait and an argument of ``arriving``
        bytes is being received (-1: none; the caller need only look while ``bulk`` is set);
        ``last_argument`` is the length of a big argument the read ended with, if any (see
        ``big_argument_at_end``).  A big argument that arrived went to its command with the
        buffer (a new one of its size took its place), and the buffer holds what waits (grown
        as the reads Redis would have split ours into grow it)."""
        if self.bulk >= BIG_ARG and arriving != self.bulk:
            last_argument = self.bulk
            self.bulk = -1
        if last_argument >= BIG_ARG:
            self.renew(last_argument + 2)
        if length > self.alloc:
            self.make_room(length, IOBUF_LEN, greedy=True)
        self.peak = max(self.peak, length)
        self._requiet()

    def receiving(self, length: int, bulk: int) -> None:
        """processMultibulkBuffer: the argument being received is ``bulk`` bytes long (-1: none);
        a big one gets room for exactly itself, once."""
        if bulk < BIG_ARG or bulk == self.bulk:
            return
        self.bulk = bulk
        self.make_room(length, bulk + 2 - length, greedy=False)
        self.peak = max(self.peak, bulk + 2)
        self._requiet()

    def cron(self, length: int, idle_seconds: float, bulk: int) -> None:
        """clientsCronResizeQueryBuffer, for a buffer holding ``length`` bytes."""
        self.receiving(length, bulk)
        if self.alloc - length > UNUSED_BYTES:
            if idle_seconds > IDLE_SECONDS:
                self.resize(length)
            elif self.alloc > RESIZE_THRESHOLD and self.alloc // 2 > self.peak:
                size = max(length, self.peak)
                if bulk != -1:
                    size = max(size, bulk + 2)
                self.resize(size)
        self.peak = max(length, bulk + 2) if bulk != -1 else length
        self._requiet()

    @staticmethod
    def big_argument_at_end(data: bytes) -> int:
        """The length of the argument ``data`` ends with if it is a big one (``$N`` line, N bytes,
        CRLF at the very end, N >= BIG_ARG), else -1: Redis reads such an argument exactly to its
        end and hands its buffer over, however it arrived."""
        end = len(data) - 2 - BIG_ARG
        if end <= 0 or not data.endswith(b"\r\n"):
            return -1
        for _ in range(8):  # the payload may hold CRLF-$ itself: a few candidates, nearest first
            header = data.rfind(b"\r\n$", 0, end)
            if header < 0:
                return -1
            line_end = data.find(b"\r\n", header + 3, header + 24)
            digits = data[header + 3 : line_end] if line_end > 0 else b""
            if digits.isdigit() and line_end + 2 + int(digits) + 2 == len(data):
                return int(digits)
            end = header + 2
        return -1

    def free(self, length: int) -> int:
        """CLIENT LIST ``qbuf-free``."""
        return max(self.alloc - length, 0)
