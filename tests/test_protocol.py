"""RESP framing: the pure request parser, reply encoding, and raw-bytes edge cases
compared byte for byte with real Redis."""

from __future__ import annotations

import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpling.errors import ProtocolError
from dumpling.protocol import (
    NULL_ARRAY,
    Double,
    Map,
    Push,
    SetReply,
    Verbatim,
    encode,
    parse_request,
    split_args,
)
from tests.servers import RawConnection, encode_command

MAX = 512 * 1024 * 1024


# ----------------------------------------------------------------------------- pure parser


def test_multibulk_and_unchecked_bytes():
    assert parse_request(b"*1\r\n$4\r\nPING\r\n", 0, MAX) == ([b"PING"], 14)
    # Redis checks neither the byte after '\r' nor the two bytes after a payload.
    assert parse_request(b"*1\rx$4\rxPINGzz", 0, MAX) == ([b"PING"], 14)


def test_incomplete_requests_wait():
    for partial in (b"*", b"*1", b"*1\r", b"*1\r\n$4", b"*1\r\n$4\r\nPIN", b"*1\r\n$4\r\nPING\r", b"PING"):
        assert parse_request(partial, 0, MAX) == (None, 0)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"*x\r\n", "Protocol error: invalid multibulk length"),
        (b"*+1\r\n", "Protocol error: invalid multibulk length"),
        (b"*01\r\n", "Protocol error: invalid multibulk length"),
        (b"*3000000000\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$01\r\nx\r\n", "Protocol error: invalid bulk length"),
        (b'ECHO "unterminated\r\n', "Protocol error: unbalanced quotes in request"),
        (b'ECHO "ab"c\r\n', "Protocol error: unbalanced quotes in request"),
    ],
)
def test_protocol_errors(data, message):
    with pytest.raises(ProtocolError) as info:
        parse_request(data, 0, MAX)
    assert str(info.value) == message


def test_limits():
    with pytest.raises(ProtocolError, match="too big mbulk count string"):
        parse_request(b"*" + b"1" * 70000, 0, MAX)
    with pytest.raises(ProtocolError, match="too big inline request"):
        parse_request(b"x" * 65537, 0, MAX)
    assert parse_request(b"x" * 65536, 0, MAX) == (None, 0)
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        parse_request(b"*1\r\n$2000\r\n", 0, 1000)
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        parse_request(b"*11\r\n", 0, MAX, authenticated=False)
    with pytest.raises(ProtocolError, match="unauthenticated bulk length"):
        parse_request(b"*1\r\n$16385\r\n", 0, MAX, authenticated=False)


def test_empty_and_zero_requests_are_consumed():
    assert parse_request(b"*0\r\n", 0, MAX) == ([], 4)
    assert parse_request(b"*-1\r\n", 0, MAX) == ([], 5)
    assert parse_request(b"\r\n", 0, MAX) == ([], 2)


def test_inline_tokeniser_vectors():
    assert split_args(b'ECHO "a\\x41\\n"') == [b"ECHO", b"aA\n"]
    assert split_args(b"ECHO 'it\\'s'") == [b"ECHO", b"it's"]
    assert split_args(b"ECHO 'a\\nb'") == [b"ECHO", b"a\\nb"]
    assert split_args(b'ECHO ""') == [b"ECHO", b""]
    assert split_args(b'ECHO a"b c"') == [b"ECHO", b"ab c"]
    assert split_args(b'ECHO "\\q\\x4g"') == [b"ECHO", b"qx4g"]
    assert split_args(b"  a \t b ") == [b"a", b"b"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=6), st.integers(min_value=1, max_value=60))
def test_parser_matches_encoder_under_any_split(args, cut):
    """A request cut at any point parses once complete, and only then."""
    wire = encode_command(*args)
    cut = min(cut, len(wire))
    argv, pos = parse_request(wire[:cut], 0, MAX)
    if cut < len(wire):
        assert argv is None and pos == 0
    argv, pos = parse_request(wire, 0, MAX)
    assert argv == args and pos == len(wire)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parser_never_raises_anything_but_protocol_error(data):
    pos = 0
    try:
        while True:
            argv, new = parse_request(data, pos, 4096)
            if argv is None:
                break
            assert new > pos
            pos = new
    except ProtocolError:
        pass


# ----------------------------------------------------------------------------- encoding


def test_reply_encoding_resp2_and_resp3():
    assert encode(None, False) == b"$-1\r\n"
    assert encode(None, True) == b"_\r\n"
    assert encode(NULL_ARRAY, False) == b"*-1\r\n"
    assert encode(NULL_ARRAY, True) == b"_\r\n"
    assert encode(Map([(b"a", 1)]), False) == b"*2\r\n$1\r\na\r\n:1\r\n"
    assert encode(Map([(b"a", 1)]), True) == b"%1\r\n$1\r\na\r\n:1\r\n"
    assert encode(SetReply([1]), True) == b"~1\r\n:1\r\n"
    assert encode(Double(1.5), False) == b"$3\r\n1.5\r\n"
    assert encode(Double(float("inf")), True) == b",inf\r\n"
    assert encode(Double(0.1), True) == b",0.10000000000000001\r\n"
    assert encode(Verbatim("This is a verbatim\nstring"), True) == b"=29\r\ntxt:This is a verbatim\nstring\r\n"
    assert encode(Verbatim("x"), False) == b"$1\r\nx\r\n"
    assert encode(Push([b"a"]), True) == b">1\r\n$1\r\na\r\n"


# ----------------------------------------------------------------------------- raw bytes against both servers


def _raw_exchange(port: int, data: bytes, wait: float = 0.4) -> tuple[bytes, bool]:
    """Send ``data``; return everything the server answered and whether it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(wait)
        out = b""
        closed = False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                out += chunk
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed = True
        return out, closed


RAW_CASES = [
    b"PING\r\n",
    b"PING\n",
    b"ECHO \"a\\x41\\n\"\r\n",
    b"ECHO 'it\\'s'\r\n",
    b"\r\n\r\nPING\r\n",
    b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
    b"*0\r\n*-1\r\nPING\r\n",
    b"*1\rx$4\rxPINGzz",
    b"+PING\r\n",
    b"#f\r\nPING\r\n",
    b"_\r\nPING\r\n",
    b"$3\r\n",
    b"*1\r\n$0\r\n\r\n",
    b"*x\r\nPING\r\n",
    b"*1\r\n:1\r\n",
    b"*1\r\n$-1\r\n",
    b"PING\r\n*1\r\n$4\r\nPING\r\n" + b"*1\r\n$x\r\n" + b"PING\r\n",
    b'ECHO "unbalanced\r\nPING\r\n',
    b"SET k v\r\nGET k\r\nDEL k\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
]


@pytest.mark.parametrize("data", RAW_CASES)
def test_raw_requests_match_redis(data, dumpling_server, redis_server):
    ours = _raw_exchange(dumpling_server.port, data)
    theirs = _raw_exchange(redis_server.port, data)
    assert ours == theirs


def test_request_split_byte_by_byte(dumpling_server):
    wire = encode_command("SET", "split", "x" * 100) + b"GET split\r\n" + encode_command("DEL", "split")
    with RawConnection(dumpling_server.port) as conn:
        for i in range(len(wire)):
            conn.send(wire[i : i + 1])
        assert conn.read_reply() == b"+OK\r\n"
        assert conn.read_reply() == b"$100\r\n" + b"x" * 100 + b"\r\n"
        assert conn.read_reply() == b":1\r\n"


def test_too_big_mbulk_count_closes_only_that_connection(dumpling_server, redis_server):
    data = b"*1\r\n$4\r\nPING\r\n" + b"*" * 70000
    ours = _raw_exchange(dumpling_server.port, data)
    theirs = _raw_exchange(redis_server.port, data)
    assert ours == theirs == (b"+PONG\r\n-ERR Protocol error: too big mbulk count string\r\n", True)
    with RawConnection(dumpling_server.port) as conn:
        assert conn.call("PING") == b"+PONG\r\n"


def test_http_guard_closes_silently(dumpling_server, redis_server):
    data = b"PING\r\nPOST / HTTP/1.1\r\nHost: x\r\n\r\n"
    ours = _raw_exchange(dumpling_server.port, data)
    theirs = _raw_exchange(redis_server.port, data)
    assert ours == theirs == (b"", True)


def test_bulk_over_proto_max_bulk_len_is_refused_early(dumpling_server, redis_server):
    # The header alone is enough: Redis does not wait for 600 MB to arrive.
    data = b"*2\r\n$4\r\nECHO\r\n$600000000\r\n" + b"x" * 100
    ours = _raw_exchange(dumpling_server.port, data)
    theirs = _raw_exchange(redis_server.port, data)
    assert ours == theirs == (b"-ERR Protocol error: invalid bulk length\r\n", True)


def test_big_value_in_many_chunks(dumpling_server):
    value = b"v" * (3 * 1024 * 1024 + 7)
    with RawConnection(dumpling_server.port) as conn:
        wire = encode_command(b"SET", b"big", value)
        for i in range(0, len(wire), 65536):
            conn.send(wire[i : i + 65536])
        assert conn.read_reply() == b"+OK\r\n"
        assert conn.call("STRLEN", "big") in (b":%d\r\n" % len(value), b"-ERR unknown command 'STRLEN', with args beginning with: 'big' \r\n")
        assert conn.call("DEL", "big") == b":1\r\n"


def test_query_buffer_limit_closes_connection():
    from tests.servers import start_dumpling

    server = start_dumpling("--client-query-buffer-limit", "1mb")
    try:
        with RawConnection(server.port) as conn:
            conn.send(encode_command(b"SET", b"k", b"x" * (1024 * 1024 + 10))[: 1024 * 1024 + 5])
            assert conn.is_closed(wait=3)
        with RawConnection(server.port) as conn:
            assert conn.call("PING") == b"+PONG\r\n"
    finally:
        server.stop()


def test_maxclients():
    from tests.servers import start_dumpling

    server = start_dumpling("--maxclients", "2")
    try:
        a, b = RawConnection(server.port), RawConnection(server.port)
        assert a.call("PING") == b"+PONG\r\n" and b.call("PING") == b"+PONG\r\n"
        c = RawConnection(server.port)
        assert c.read_all(wait=0.5) == b"-ERR max number of clients reached\r\n"
        assert c.is_closed()
        a.close()
        time.sleep(0.2)
        with RawConnection(server.port) as d:
            assert d.call("PING") == b"+PONG\r\n"
        b.close()
        c.close()
    finally:
        server.stop()
