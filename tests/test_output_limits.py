"""Replies that would outgrow the client's output-buffer limit: built only as far as the
limit lets them (dumpling.replybudget), the client closed as Redis closes it, and the
server answering everyone else meanwhile.  Each scenario runs against real Redis too."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.servers import RawConnection, ServerProcess, encode_command, start_dumpling, start_redis

LIMIT = ("--client-output-buffer-limit", "normal 10mb 0 0")


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    ours, theirs = start_dumpling(*LIMIT), start_redis(*LIMIT)
    try:
        for server in (ours, theirs):
            with server.raw() as conn:
                conn.call("HSET", "h", "f1", "v1", "f2", "v2")
                conn.call("SADD", "s", "a", "b", "c")
                conn.call("ZADD", "z", "1", "a", "2", "b")
                conn.call("SET", "big", b"x" * 1_000_000)
                conn.call("RPUSH", "list", *[b"%d" % i for i in range(100_000)])
        yield ours, theirs
    finally:
        ours.stop()
        theirs.stop()


def _peak_rss_mb(server: ServerProcess) -> int:
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


def _outcome(server: ServerProcess, wire: bytes) -> tuple[bytes, bool, float]:
    """What the client gets, whether it is closed, and how long a PING from another
    client took meanwhile."""
    with RawConnection(server.port, timeout=120) as victim, server.raw() as other:
        victim.send(wire)
        started = time.monotonic()
        assert other.call("PING") == b"+PONG\r\n"
        ping = time.monotonic() - started
        received = victim.read_all(2.0)
        return received, victim.is_closed(2.0), ping


HUGE = [
    ("HRANDFIELD", "h", "-999999999"),
    ("HRANDFIELD", "h", "-999999999", "WITHVALUES"),
    ("SRANDMEMBER", "s", "-999999999"),
    ("ZRANDMEMBER", "z", "-999999999"),
    ("ZRANDMEMBER", "z", "-999999999", "WITHSCORES"),
    ("MGET", *["big"] * 100),  # one key, a hundred times: 100 MB of reply
]


@pytest.mark.parametrize("command", HUGE, ids=lambda c: " ".join(c)[:40])
def test_huge_reply_closes_the_client_like_redis(limited, command):
    ours, theirs = limited
    before = _peak_rss_mb(ours)
    got_ours = _outcome(ours, encode_command(*command))
    got_theirs = _outcome(theirs, encode_command(*command))
    assert got_ours[:2] == got_theirs[:2] == (b"", True)
    assert got_ours[2] < 10.0  # the others are served (Redis too is busy while it builds)
    assert _peak_rss_mb(ours) - before < 500  # it grew past 5 GB building the whole reply


def test_limit_reached_inside_exec_and_by_pipelined_replies(limited):
    ours, theirs = limited
    exec_wire = encode_command("MULTI") + encode_command("HRANDFIELD", "h", "-999999999") + encode_command("EXEC")
    pipeline = encode_command("LRANGE", "list", "0", "-1") * 40  # ~0.6 MB each
    for wire in (exec_wire, pipeline):
        assert _outcome(ours, wire)[:2] == _outcome(theirs, wire)[:2]
        assert _outcome(ours, wire)[1]


def test_replies_under_the_limit_are_whole(limited):
    ours, theirs = limited
    for server in (ours, theirs):
        with server.raw() as conn:
            reply = conn.call("HRANDFIELD", "h", "-100000")
            assert reply.startswith(b"*100000\r\n") and reply.count(b"$2\r\nf") == 100000
            reply = conn.call("LRANGE", "list", "0", "-1")
            assert reply.startswith(b"*100000\r\n")
            assert conn.call("MGET", "big", "big")[:14] == b"*2\r\n$1000000\r\n"
