"""Query-buffer sizing (dumpling.querybuf): CLIENT LIST ``qbuf``/``qbuf-free`` as Redis's sds query
buffer shows them, compared with Redis 7.0 (Debian's, jemalloc: the same size classes as the
model) in states both versions reach alike, with the cron paused so its timing does not decide.
"""

from __future__ import annotations

import time

import pytest

from dumpling.querybuf import BIG_ARG, QueryBuffer
from tests.servers import RawConnection, ServerProcess, parse_reply


def test_model_arithmetic() -> None:
    """jemalloc classes and sds headers, as Redis 7.4 with jemalloc sizes them."""
    qb = QueryBuffer()
    qb.read(0, 26)
    assert qb.alloc == 20474 and qb.free(26) == 20448  # 16 KB + 5-byte header + NUL -> the 20 KB class
    qb.receiving(0, 1_000_000)  # a $1000000 line: room for exactly the argument
    assert qb.alloc == 1_048_566 and qb.peak == 1_000_002
    qb.cron(0, 0, 1_000_000)  # its peak protects it while it arrives
    assert qb.alloc == 1_048_566
    qb.cron(0, 3, 1_000_000)  # idle for more than 2 s: cut to its contents
    assert qb.alloc == 0
    qb.read(0, 100)  # the rest of the argument: room for exactly what is missing
    assert qb.alloc == 1_048_566
    qb.settle(0, -1)  # it arrived: a new buffer of its size
    assert qb.alloc == 1_048_566 and qb.bulk == -1

    qb = QueryBuffer()
    qb.read(10, 30_000)
    qb.settle(30_010, -1)  # what Redis would have read in a second read: greedy (twice what is needed)
    assert qb.alloc == 98294  # (30_010 + 16_384) * 2 needs a 32-bit header: the 96 KB class
    qb.cron(0, 0, -1)  # busy, over 32 KB and over twice its peak (30_010): cut to the peak
    assert qb.alloc == 30_010
    qb.cron(0, 0, -1)  # under 32 KB only idleness cuts it
    assert qb.alloc == 30_010
    qb.cron(0, 3, -1)
    assert qb.alloc == 0
    qb.read(0, 100)  # and 16 KB of room on the next read
    assert qb.alloc == 20474


@pytest.mark.parametrize(("data", "expected"), [
    (b"*3\r\n$3\r\nset\r\n$1\r\na\r\n$40000\r\n" + b"y" * 40000 + b"\r\n", 40000),
    (b"*2\r\n$1\r\nx\r\n$32768\r\n" + b"y" * 32740 + b"\r\n$99\r\n" * 4 + b"\r\n", 32768),  # CRLF-$ inside
    (b"*3\r\n$3\r\nset\r\n$1\r\na\r\n$40000\r\n" + b"y" * 40000 + b"\r\n*1\r\n$4\r\nping\r\n", -1),
    (b"*2\r\n$4\r\nping\r\n$30000\r\n" + b"y" * 30000 + b"\r\n", -1),  # under 32 KB
    (b"y" * 50000 + b"\r\n", -1),
], ids=["at-end", "crlf-in-payload", "followed", "small", "no-header"])
def test_big_argument_at_end(data: bytes, expected: int) -> None:
    assert QueryBuffer.big_argument_at_end(data) == expected
    assert expected < 0 or expected >= BIG_ARG


def qbuf_of(observer: RawConnection, name: str) -> tuple[int, int]:
    text = parse_reply(observer.call("CLIENT", "LIST"))
    assert isinstance(text, bytes)
    for line in text.decode().splitlines():
        if f" name={name} " in line:
            fields = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
            return int(fields["qbuf"]), int(fields["qbuf-free"])
    raise AssertionError(f"no client {name}")


def settle() -> None:
    time.sleep(0.05)  # the server has read what was sent (cron paused: nothing else moves)


def scenario(server: ServerProcess) -> list[tuple[int, int]]:
    seen = []
    with server.raw() as client, server.raw() as observer:
        observer.call("DEBUG", "PAUSE-CRON", "1")
        try:
            client.call("CLIENT", "SETNAME", "probe")
            own = parse_reply(client.call("CLIENT", "LIST"))
            assert isinstance(own, bytes)
            line = next(x for x in own.decode().splitlines() if " name=probe " in x)
            seen.append(tuple(int(line.split(f" {f}=")[1].split(" ")[0]) for f in ("qbuf", "qbuf-free")))
            seen.append(qbuf_of(observer, "probe"))  # after its first small read
            client.send(b"*3\r\n$3\r\nset\r\n$1\r\na\r\n$1000000\r\n")  # a big argument announced
            settle()
            seen.append(qbuf_of(observer, "probe"))
            client.send(b"x" * 500_000)  # half of it
            settle()
            seen.append(qbuf_of(observer, "probe"))
            client.send(b"x" * 500_000 + b"\r\n")  # the rest: the buffer goes with it, a new one
            assert client.read_reply() == b"+OK\r\n"
            seen.append(qbuf_of(observer, "probe"))
            client.send(b"*3\r\n$3\r\nset\r\n$1\r\nb\r\n$40000\r\n" + b"y" * 40_000 + b"\r\n")  # in one read
            assert client.read_reply() == b"+OK\r\n"
            seen.append(qbuf_of(observer, "probe"))
            client.send(b"*3\r\n$3\r\nset\r\n$1\r\nc\r\n$20000\r\n" + b"y" * 10_000)  # half a small one
            settle()
            seen.append(qbuf_of(observer, "probe"))
            client.send(b"y" * 10_000 + b"\r\n")
            assert client.read_reply() == b"+OK\r\n"
            seen.append(qbuf_of(observer, "probe"))
        finally:
            observer.call("DEBUG", "PAUSE-CRON", "0")
    return seen


def test_qbuf_free_against_redis(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    ours, theirs = scenario(dumpling_server), scenario(redis_server)
    assert ours == theirs
    assert ours[:5] == [(26, 20448), (0, 20474), (0, 1_048_566), (500_000, 548_566), (0, 1_048_566)]


def test_idle_buffer_shrinks_against_redis(dumpling_server: ServerProcess, redis_server: ServerProcess) -> None:
    """The cron cuts a buffer idle for more than 2 s to its contents (0 here), and the next read
    makes 16 KB of room again (hz 100: the cron visits every client often)."""
    servers = (dumpling_server, redis_server)
    observers = [server.raw() for server in servers]
    clients = [server.raw() for server in servers]
    try:
        for observer, client in zip(observers, clients, strict=True):
            observer.call("CONFIG", "SET", "hz", "100")
            client.call("CLIENT", "SETNAME", "idler")
        assert [qbuf_of(o, "idler") for o in observers] == [(0, 20474)] * 2
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(qbuf_of(o, "idler") != (0, 0) for o in observers):
            time.sleep(0.1)
        assert [qbuf_of(o, "idler") for o in observers] == [(0, 0)] * 2
        for client in clients:
            client.call("PING")
        assert [qbuf_of(o, "idler") for o in observers] == [(0, 20474)] * 2
    finally:
        for observer in observers:
            observer.call("CONFIG", "SET", "hz", "10")
            observer.close()
        for client in clients:
            client.close()


def test_queued_commands_count_against_the_limit(dumpling_server: ServerProcess) -> None:
    """Redis 7.4 counts MULTI's queued commands in client-query-buffer-limit (recorded from 7.4.1:
    the third 400 KB SET queued under a 1 MB limit closes the client and counts in
    client_query_buffer_limit_disconnections; 7.0 counts only the buffer and would queue it)."""
    value = b"x" * 400_000
    with dumpling_server.raw() as admin:
        admin.call("CONFIG", "SET", "client-query-buffer-limit", "1mb")
        try:
            before = parse_reply(admin.call("INFO", "stats"))
            assert isinstance(before, bytes)
            with dumpling_server.raw() as conn:  # under the limit: the transaction runs
                assert conn.call("MULTI") == b"+OK\r\n"
                assert conn.call("SET", "a", value) == b"+QUEUED\r\n"
                assert conn.call("SET", "b", b"y" * 100_000) == b"+QUEUED\r\n"
                assert conn.call("EXEC") == b"*2\r\n+OK\r\n+OK\r\n"
            with dumpling_server.raw() as conn:
                conn.call("MULTI")
                for key in ("a", "b"):
                    assert conn.call("SET", key, value) == b"+QUEUED\r\n"
                conn.send(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$400000\r\n" + value + b"\r\n")
                assert conn.is_closed(5)
            after = parse_reply(admin.call("INFO", "stats"))
            assert isinstance(after, bytes)
            count = [int(text.split(b"client_query_buffer_limit_disconnections:")[1].split(b"\r\n")[0])
                     for text in (before, after)]
            assert count[1] == count[0] + 1
        finally:
            admin.call("CONFIG", "SET", "client-query-buffer-limit", "1gb")


def test_unfinished_request_counts_resume_where_the_parser_stopped() -> None:
    """qbuf, argv-mem and the arriving argument of an unfinished request, read from the reference
    parser's progress (PartialRequest) plus the bytes it has not seen yet, equal a walk over the
    whole request from its first byte, at every cut of random requests."""
    import random

    from dumpling.protocol import PartialRequest, parse_request
    from dumpling.server import _parsed_request
    from tests.servers import encode_command

    rng = random.Random(12)
    for _ in range(60):
        args = [bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 3, 40]))) for _ in range(rng.randrange(1, 30))]
        wire = b"xx" + encode_command(*args)  # the request starts at 2, as past one already run
        cuts = sorted(rng.sample(range(3, len(wire)), min(6, len(wire) - 3)))
        for seen_at, look_at in zip(cuts, cuts[1:] + [len(wire) - 1], strict=True):
            partial = PartialRequest()
            assert parse_request(wire[:seen_at], 2, 1 << 20, True, partial) == (None, 2)
            assert _parsed_request(wire[:look_at], 2, partial) == _parsed_request(wire[:look_at], 2)


def test_a_look_at_a_long_unfinished_request_walks_only_the_new_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLIENT LIST (and the log line of a client closed for its query buffer) of a client whose
    unfinished request holds 100k arguments: the header lines read are those past the parser's
    progress, not 100k (a look walked the whole request: ~0.2 s of CPU per look at 150k
    arguments, four looks in the close log line; the query-buffer-limit test went past its 10 s
    on a loaded machine)."""
    from dumpling import server as server_module
    from dumpling.commands.connection import client_info_line
    from tests.test_fastpath_fuzz import connected_client

    _, client, _ = connected_client()
    client.data_received(b"*2000000000\r\n" + b"$1\r\nx\r\n" * 100_000)
    client.data_received(b"$1\r\nx\r\n" * 3 + b"$5\r\nab")
    lines = 0
    header_int = server_module._header_int

    def counted(*args: object) -> int | None:
        nonlocal lines
        lines += 1
        return header_int(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(server_module, "_header_int", counted)
    line = client_info_line(client)
    assert " argv-mem=100003 " in line and " qbuf=2 " in line  # "$5\r\n" taken; "ab" arriving
    assert lines <= 8  # the arriving argument's line, for each of the line's few looks
