"""The replication wire formats and the backlog, without sockets (dumpling.replication.wire/backlog)."""

from __future__ import annotations

import pytest

from dumpling.payload.crc64 import crc64
from dumpling.replication.backlog import Backlog
from dumpling.replication.wire import (
    BulkTransfer,
    CommandStream,
    LineReader,
    ReplicationProtocolError,
    check_rdb_payload,
    encode_command,
    parse_psync_reply,
    wire_size,
)

# An empty RDB 10 file with its checksum (what SAVE writes for an empty dataset, minus AUX fields).
_BODY = b"REDIS0010\xff"
EMPTY_RDB = _BODY + crc64(_BODY).to_bytes(8, "little")


def test_line_reader_skips_keepalive_newlines() -> None:
    lines = LineReader()
    lines.feed(b"\n\n\n+FULLRESYNC ")
    assert lines.next_line() is None
    lines.feed(b"a" * 40 + b" 17\r\n$EOF:")
    assert lines.next_line() == b"+FULLRESYNC " + b"a" * 40 + b" 17"
    assert lines.take_rest() == b"$EOF:"


def test_psync_replies() -> None:
    full = parse_psync_reply(b"+FULLRESYNC " + b"b" * 40 + b" 1234")
    assert (full.kind, full.replid, full.offset) == ("full", "b" * 40, 1234)
    assert parse_psync_reply(b"+CONTINUE " + b"c" * 40).replid == "c" * 40
    assert parse_psync_reply(b"+CONTINUE").kind == "continue"
    assert parse_psync_reply(b"-NOMASTERLINK Can't SYNC while not connected with my master").kind == "retry"
    assert parse_psync_reply(b"-LOADING Redis is loading the dataset in memory").kind == "retry"
    assert parse_psync_reply(b"-ERR unknown command 'PSYNC'").kind == "error"
    with pytest.raises(ReplicationProtocolError):
        parse_psync_reply(b"+FULLRESYNC short 1")


def test_bulk_transfer_with_length_keeps_what_follows() -> None:
    transfer = BulkTransfer()
    assert not transfer.feed(b"\n\n$%d\r\n" % len(EMPTY_RDB) + EMPTY_RDB[:5])
    assert transfer.size == len(EMPTY_RDB) and transfer.received == 5
    assert transfer.feed(EMPTY_RDB[5:] + b"*1\r\n$4\r\nPING\r\n")
    assert transfer.payload() == EMPTY_RDB
    assert transfer.leftover == b"*1\r\n$4\r\nPING\r\n"


def test_bulk_transfer_eof_marked() -> None:
    mark = b"0123456789" * 4
    transfer = BulkTransfer()
    data = b"\n$EOF:" + mark + b"\r\n" + EMPTY_RDB + mark
    for i in range(len(data) - 1):  # byte by byte: the mark is found only at the very end
        assert not transfer.feed(data[i:i + 1])
    assert transfer.feed(data[-1:])
    assert transfer.payload() == EMPTY_RDB


def test_bulk_transfer_refusals() -> None:
    with pytest.raises(ReplicationProtocolError, match="the first byte is not"):
        BulkTransfer().feed(b"+OK\r\n")
    with pytest.raises(ReplicationProtocolError, match="aborted replication with an error: ERR boom"):
        BulkTransfer().feed(b"-ERR boom\r\n")
    with pytest.raises(ReplicationProtocolError, match="Bad bulk length"):
        BulkTransfer().feed(b"$abc\r\n")


def test_rdb_payload_checks() -> None:
    assert check_rdb_payload(EMPTY_RDB) is None
    assert "truncated" in (check_rdb_payload(EMPTY_RDB[:-3]) or "")
    corrupt = bytearray(EMPTY_RDB)
    corrupt[-1] ^= 0xFF
    assert "CRC64" in (check_rdb_payload(bytes(corrupt)) or "")
    assert "not an RDB" in (check_rdb_payload(b"HELLO WORLD AND MORE") or "")
    unchecked = _BODY + b"\0" * 8  # rdbchecksum no: a zero checksum is not checked
    assert check_rdb_payload(unchecked) is None


def test_command_stream_sizes_are_wire_sizes() -> None:
    stream = CommandStream()
    commands = [[b"SELECT", b"0"], [b"SET", b"k" * 300, b"v" * 70000], [b"PING"]]
    data = b"".join(encode_command(*c) for c in commands)
    stream.feed(data[:10])
    assert stream.next_command() is None
    stream.feed(data[10:])
    got = []
    while (item := stream.next_command()) is not None:
        got.append(item)
    assert [argv for argv, _ in got] == commands
    assert sum(size for _, size in got) == len(data)
    assert all(size == len(encode_command(*argv)) == wire_size(argv) for argv, size in got)


def test_command_stream_refuses_non_commands() -> None:
    stream = CommandStream()
    stream.feed(b":1\r\n")
    with pytest.raises(ReplicationProtocolError):
        stream.next_command()


def test_backlog_offsets() -> None:
    backlog = Backlog(16 * 1024, 100)
    assert backlog.first_offset == 101 and backlog.histlen == 0
    assert backlog.can_continue_from(101) and not backlog.can_continue_from(102)
    backlog.append(b"abc")
    assert backlog.since(102) == b"bc"
    backlog.append(b"x" * 40000)  # beyond the size: the oldest bytes go
    assert backlog.histlen <= 16 * 1024 + 4096
    assert backlog.first_offset + backlog.histlen == 101 + 40003
    assert not backlog.can_continue_from(101)
    assert backlog.since(backlog.first_offset + backlog.histlen) == b""


def test_backlog_keeps_what_a_replica_still_needs() -> None:
    """Beyond its size the backlog keeps the bytes a connected replica has not received
    (``keep``), and gives them up once it no longer needs them (``trim``)."""
    backlog = Backlog(16 * 1024, 0)
    for _ in range(10):
        backlog.append(b"x" * 8192, keep=60_000)
    assert backlog.histlen >= 60_000 and backlog.first_offset + backlog.histlen == 81_921
    assert backlog.can_continue_from(81_921 - 60_000)
    backlog.trim(keep=0)
    assert backlog.histlen == 16 * 1024 and backlog.first_offset == 81_921 - 16 * 1024
    assert not backlog.can_continue_from(81_921 - 60_000)
