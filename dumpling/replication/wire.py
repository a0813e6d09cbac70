"""Replication wire formats, pure: bytes in, values out (no sockets, no server).

* ``encode_command`` - a request as RESP multibulk (handshake commands, ``REPLCONF ACK``).
* ``LineReader`` - the one-line replies of the handshake (``+PONG``, ``+FULLRESYNC <id>
  <offset>``, ``-NOAUTH ...``), skipping the bare ``\\n`` keepalives a master sends while
  it prepares a full sync.
* ``BulkTransfer`` - the RDB of a full sync: ``$<len>\\r\\n<bytes>`` (disk-based) or
  ``$EOF:<40 bytes>\\r\\n<bytes><the same 40 bytes>`` (diskless), with the keepalives before it.
* ``CommandStream`` - the command stream after the sync: complete requests with the
  exact number of stream bytes each took (the replication offset moves by that much).
* ``parse_psync_reply`` - what a master answered to PSYNC.
* ``check_rdb_payload`` - a received RDB is complete and its checksum right, before any
  of it touches the dataset.

Errors are ``ReplicationProtocolError`` (the peer broke the rules); its text is the line
Redis logs for the same case.
"""

from __future__ import annotations

from dataclasses import dataclass

import hiredis

from dumpling.payload.crc64 import crc64
from dumpling.protocol import encode_request, wire_size

EOF_MARK_SIZE = 40  # RDB_EOF_MARK_SIZE
_INCOMPLETE = object()


class ReplicationProtocolError(Exception):
    """The other side sent something the replication protocol does not allow."""


def encode_command(*args: bytes | str | int) -> bytes:
    """``encode_request`` of handshake arguments given as text or numbers too."""
    return encode_request(b"%d" % a if isinstance(a, int) else a.encode() if isinstance(a, str) else a for a in args)


class LineReader:
    """One-line replies, keepalive newlines skipped."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        self.buf += data

    def next_line(self) -> bytes | None:
        """The next reply line without its CRLF, or None until one is complete."""
        buf = self.buf
        skip = 0
        while skip < len(buf) and buf[skip] == 10:  # '\n': a keepalive
            skip += 1
        if skip:
            del buf[:skip]
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > 65536:
                raise ReplicationProtocolError("Reply line from MASTER too long")
            return None
        line = bytes(buf[:end])
        del buf[:end + 2]
        return line

    def take_rest(self) -> bytes:
        rest = bytes(self.buf)
        self.buf.clear()
        return rest


@dataclass
class PsyncReply:
    kind: str  # "full", "continue", "retry" (-NOMASTERLINK / -LOADING), "error"
    replid: str = ""
    offset: int = -1
    text: str = ""


def parse_psync_reply(line: bytes) -> PsyncReply:
    text = line.decode("utf-8", "replace")
    if text.startswith("+FULLRESYNC"):
        words = text.split()
        if len(words) != 3 or len(words[1]) != 40:
            raise ReplicationProtocolError(f"Master replied with wrong +FULLRESYNC syntax: {text}")
        try:
            offset = int(words[2])
        except ValueError:
            raise ReplicationProtocolError(f"Master replied with wrong +FULLRESYNC syntax: {text}") from None
        return PsyncReply("full", words[1], offset, text)
    if text.startswith("+CONTINUE"):
        words = text.split()
        replid = words[1] if len(words) > 1 and len(words[1]) == 40 else ""
        return PsyncReply("continue", replid, -1, text)
    if text.startswith("-NOMASTERLINK") or text.startswith("-LOADING"):
        return PsyncReply("retry", text=text)
    return PsyncReply("error", text=text)


class BulkTransfer:
    """The RDB payload of a full sync, fed as it arrives."""

    def __init__(self) -> None:
        self.header = bytearray()
        self.started = False
        self.eof_mark: bytes | None = None
        self.size = -1  # declared length ($<len>), -1 for the EOF-marked form
        self.body = bytearray()
        self.done = False
        self.leftover = b""  # bytes after a $<len> payload (the stream that follows)
        self.received_total = 0  # the payload's size once it has been taken

    @property
    def received(self) -> int:
        return len(self.body) or self.received_total

    def feed(self, data: bytes) -> bool:
        """Take bytes; True once the payload is complete (``payload()``)."""
        if self.done:
            self.leftover += data
            return True
        if not self.started:
            self.header += data
            while self.header[:1] == b"\n":
                del self.header[:1]
            if not self.header:
                return False
            if self.header[:1] == b"-":
                end = self.header.find(b"\r\n")
                if end < 0:
                    return False
                raise ReplicationProtocolError(
                    f"MASTER aborted replication with an error: {self.header[1:end].decode('utf-8', 'replace')}")
            if self.header[:1] != b"$":
                shown = bytes(self.header[:64]).decode("utf-8", "replace")
                raise ReplicationProtocolError(f"Bad protocol from MASTER, the first byte is not '$' (we received "
                                               f"'{shown}'), are you sure the host and port are right?")
            end = self.header.find(b"\r\n")
            if end < 0:
                if len(self.header) > 1024:
                    raise ReplicationProtocolError("Bad bulk header from MASTER")
                return False
            head = bytes(self.header[1:end])
            data = bytes(self.header[end + 2:])
            self.header = bytearray()
            self.started = True
            if head.startswith(b"EOF:") and len(head) == 4 + EOF_MARK_SIZE:
                self.eof_mark = head[4:]
            else:
                try:
                    self.size = int(head)
                except ValueError:
                    raise ReplicationProtocolError(f"Bad bulk length from MASTER: {head!r}") from None
                if self.size < 0:
                    raise ReplicationProtocolError(f"Bad bulk length from MASTER: {head!r}")
        if self.eof_mark is not None:
            self.body += data
            if len(self.body) >= EOF_MARK_SIZE and self.body[-EOF_MARK_SIZE:] == self.eof_mark:
                del self.body[-EOF_MARK_SIZE:]
                self.done = True
        else:
            room = self.size - len(self.body)
            self.body += data[:room]
            if len(data) > room:
                self.leftover = data[room:]
            self.done = len(self.body) == self.size
        return self.done

    def payload(self) -> bytes:
        """The RDB received (once: the buffer is released, a big transfer is not held twice)."""
        payload = bytes(self.body)
        self.received_total = len(payload)
        self.body = bytearray()
        return payload


def check_rdb_payload(payload: bytes) -> str | None:
    """Why a received RDB must not be loaded (truncated, bad magic, bad CRC), or None.
    Checked before the old dataset is flushed, so a damaged transfer changes nothing."""
    if len(payload) < 9 + 1 or not (payload.startswith(b"REDIS") or payload.startswith(b"VALKEY")):
        return "the transfer is not an RDB file (bad magic or too short)"
    try:
        version = int(payload[5:9]) if payload.startswith(b"REDIS") else int(payload[6:9])
    except ValueError:
        return "the transfer is not an RDB file (bad version)"
    if version >= 5:
        if len(payload) < 9 + 1 + 8 or payload[-9] != 0xFF:
            return "the RDB transfer is truncated (no EOF opcode at its end)"
        expected = int.from_bytes(payload[-8:], "little")
        if expected and crc64(payload[:-8]) != expected:
            return "the RDB transfer is corrupt (wrong CRC64 checksum)"
    elif payload[-1] != 0xFF:
        return "the RDB transfer is truncated (no EOF opcode at its end)"
    return None


_ONLY_BYTES = {bytes}


class CommandStream:
    """The command stream of a master: complete requests and their stream size."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(notEnoughData=_INCOMPLETE)

    def feed(self, data: bytes) -> None:
        self.reader.feed(data)

    def next_command(self) -> tuple[list[bytes], int] | None:
        """The next request and its size in the stream, or None until one is complete."""
        try:
            request = self.reader.gets()
        except hiredis.ProtocolError as e:
            raise ReplicationProtocolError(f"Protocol error in the replication stream: {e}") from None
        if request is _INCOMPLETE:
            return None
        if type(request) is not list or not request or set(map(type, request)) != _ONLY_BYTES:
            raise ReplicationProtocolError(f"Unexpected value in the replication stream: {request!r:.80}")
        return request, wire_size(request)
