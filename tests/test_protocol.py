"""RESP framing: the pure request parser, reply encoding, and raw-bytes edge cases
compared byte for byte with real Redis."""

from __future__ import annotations

import functools
import random
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpling import accel
from dumpling.config import Config
from dumpling.dispatch import Server
from dumpling.errors import ProtocolError
from dumpling.protocol import (
    NULL_ARRAY,
    Double,
    Map,
    PartialRequest,
    Push,
    SetReply,
    Verbatim,
    encode,
    find_big_header,
    parse_request,
    split_args,
)
from dumpling.server import Client
from tests.fuzzing import examples
from tests.servers import RawConnection, ServerProcess, encode_command, info_int
from tests.test_fastpath_fuzz import Transport

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


@settings(max_examples=examples(300), deadline=None)
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


@settings(max_examples=examples(300), deadline=None)
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
    # Redis 7.4.1's addReplyDouble (d2string → fpconv); 7.0 printed ",0.10000000000000001".
    assert encode(Double(0.1), True) == b",0.1\r\n"
    assert encode(Double(0.1), False) == b"$3\r\n0.1\r\n"
    assert encode(Double(1e17), True) == b",100000000000000000\r\n"
    assert encode(Double(-0.0), True) == b",-0\r\n"
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
    # Big aggregate headers (never fed to hiredis before their elements can be there).
    b"*2147483648\r\n",
    b"*1\r\n*2147483647\r\n",
    b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n*1234567\r\n",
    b"*01234567\r\n",
    b"*1234567x\r\n",
    b"~2147483647\r\nPING\r\n",
    b">1234567\r\nPING\r\n",
    b"|1234567\r\nPING\r\n",
    b"*2147483647\r\n$4\r\nPING\r\n",
    encode_command("SET", "k", "x*1234567\r\n~7654321|1234567>1234567") + b"GET k\r\n" + encode_command("GET", "k"),
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


def wait_until_clients(conn: RawConnection, count: int) -> None:
    deadline = time.monotonic() + 20
    while info_int(conn, "clients", "connected_clients") != count:
        assert time.monotonic() < deadline, "connected_clients"
        time.sleep(0.01)


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
        wait_until_clients(b, 1)  # the server has seen a go (not 0.2 s later: a loaded machine may not have)
        with RawConnection(server.port) as d:
            assert d.call("PING") == b"+PONG\r\n"
        b.close()
        c.close()
    finally:
        server.stop()


# ----------------------------------------------------------------------------- big aggregate headers


def test_big_header_scan():
    assert find_big_header(b"*1\r\n$4\r\nPING\r\n") == -1
    assert find_big_header(b"PING\r\n*2147483647\r\n") == 6
    assert find_big_header(b"*123456\r\n") == -1  # under 10**6 slots hiredis may allocate
    assert find_big_header(b"x|1234567*7654321", 2) == 9
    assert find_big_header(bytearray(b">1234567~1234567"), 1) == 8


def test_partial_request_resumes():
    wire = encode_command("RPUSH", "k", *[b"v%d" % i for i in range(100)])
    partial = PartialRequest()
    buf = bytearray(b"junk")
    for i in range(len(wire) - 1):
        buf.append(wire[i])
        assert parse_request(buf, 4, MAX, True, partial) == (None, 4)
    assert partial.argv is not None and partial.count == 102 and len(partial.argv) == 101
    del buf[:2]  # bytes before the request may go: the progress is relative to it
    buf.append(wire[-1])
    argv, end = parse_request(buf, 2, MAX, True, partial)
    assert argv == [b"RPUSH", b"k", *[b"v%d" % i for i in range(100)]] and end == len(buf)
    assert partial.argv is None
    with pytest.raises(ProtocolError, match="expected '\\$', got ':'"):
        parse_request(b"*3\r\n$4\r\nECHO\r\n", 0, MAX, True, partial)
        parse_request(b"*3\r\n$4\r\nECHO\r\n:1\r\n", 0, MAX, True, partial)


@pytest.mark.skipif(accel.fastpath is None, reason="C fast path not built")
@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.sampled_from([b"*", b"~", b">", b"|", b"\r\n", b"1", b"9", b"0", b"1234567", b"x", b"$3"]), max_size=40),
       st.integers(-2, 50))
def test_big_header_scan_c_twin(parts, start):
    data = b"".join(parts)
    assert accel.fastpath.find_big_header(data, start) == find_big_header(data, start)
    assert accel.fastpath.find_big_header(bytearray(data), start) == find_big_header(bytearray(data), start)


def _ping_cpu(server: ServerProcess) -> float:
    """The server's CPU seconds while a PING waited for its answer: a stall's cost, not the
    wall time a loaded machine stretches."""
    with RawConnection(server.port) as conn:
        started = server.cpu_seconds()
        assert conn.call("PING") == b"+PONG\r\n"
        return server.cpu_seconds() - started


def test_huge_multibulk_count_does_not_stall_other_clients(dumpling_server):
    # hiredis would allocate (and later free, slot by slot) a 2**31-slot list for each of
    # these 13-byte headers: seconds of stall apiece.  Redis waits for the arguments.
    attackers = [RawConnection(dumpling_server.port) for _ in range(3)]
    try:
        for conn in attackers:
            conn.send(b"*2147483647\r\n")
        assert _ping_cpu(dumpling_server) < 3.0
        for conn in attackers:
            conn.send(b"$4\r\nPING\r\n")
            assert conn.read_all(0.2) == b""  # still waiting for the other arguments
    finally:
        for conn in attackers:
            conn.close()
    assert _ping_cpu(dumpling_server) < 3.0
    with RawConnection(dumpling_server.port) as conn:
        conn.send(b"*1\r\n*2147483647\r\n")
        assert conn.read_all(1.0) == b"-ERR Protocol error: expected '$', got '*'\r\n"
    assert _ping_cpu(dumpling_server) < 3.0


def test_big_request_counts_against_the_query_buffer_limit():
    from tests.servers import start_dumpling

    server = start_dumpling("--client-query-buffer-limit", "1mb")
    try:
        with RawConnection(server.port) as conn:
            conn.send(b"*2000000000\r\n")
            for _ in range(20):
                conn.send(b"$1\r\nx\r\n" * 10000)
            assert conn.is_closed(wait=30)  # (150k arguments parsed first: seconds on a loaded machine)
        assert _ping_cpu(server) < 3.0
    finally:
        server.stop()


@functools.cache
def _million_argument_sadd() -> bytes:
    """SADD s with 1,000,001 members (1000 distinct), encoded once for the tests that send it."""
    return encode_command("SADD", "s", *[b"%d" % (i % 1000) for i in range(1_000_003 - 2)])


def test_million_argument_request_in_many_reads(pair):
    # The reference parser resumes where it stopped: one pass over the request, however
    # many reads it takes (it used to parse the whole pending request again per read).
    wire = _million_argument_sadd()
    for conn in (pair.ours, pair.theirs):
        conn.sock.settimeout(60)
        for i in range(0, len(wire), 65536):
            conn.send(wire[i : i + 65536])
        assert conn.read_reply() == b":1000\r\n"
    pair.same("SCARD", "s")


def _in_process(reads: list[bytes]) -> tuple[bytes, bool]:
    """Replies and closed-or-not of an in-process client fed exactly these reads."""
    client = Client(Server(Config()))
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    for data in reads:
        if transport.closed:
            break
        client.data_received(data)
    return bytes(transport.data), transport.closed


def test_big_request_split_anywhere():
    wire = _million_argument_sadd()
    assert wire.startswith(b"*1000003\r\n")
    then = encode_command("SCARD", "s")
    assert _in_process([wire[:5], wire[5:12], wire[12:] + then]) == (b":1000\r\n:1000\r\n", False)
    assert _in_process([b"PING\r\n" + wire[:100], wire[100:] + then]) == (b"+PONG\r\n:1000\r\n:1000\r\n", False)


LOOKALIKES = [encode_command("SET", "k", "a*1234567\r\nb"), encode_command("ECHO", "~1234567|7654321>1000000"),
              b"*1\r\n$4\r\nPING\r\n", b"PING\r\n", encode_command("GET", "k"), b"*1234567\r\n", b"*1\r\n*1234567\r\n",
              b">1234567\r\n", b"*2147483648\r\n", b"*12345678"]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.sampled_from(LOOKALIKES), min_size=1, max_size=8), st.lists(st.integers(1, 200), max_size=5))
def test_big_header_handling_does_not_depend_on_read_boundaries(parts, cuts):
    data = b"".join(parts)
    reads, last = [], 0
    for cut in sorted(set(cuts)):
        if last < cut < len(data):
            reads.append(data[last:cut])
            last = cut
    reads.append(data[last:])
    assert _in_process(reads) == _in_process([data])


def test_flat_arrays_encode_the_same_in_c_and_python() -> None:
    """``protocol.encode`` hands flat arrays to ``_fastpath.encode_flat``: byte for byte the
    Python encoder's output, and None (Python's turn) for any other element or an int beyond int64."""
    from dumpling import protocol

    flat = protocol._encode_flat
    if flat is None:
        pytest.skip("C fast path not built")
    rng = random.Random(7)
    pool = [b"", b"x" * 300, bytearray(b"raw"), 0, -1, 254, 255, -(1 << 63), (1 << 63) - 1, None]
    for resp3 in (False, True):
        for _ in range(500):
            value = [rng.choice(pool) for _ in range(rng.randrange(0, 50))]
            out: list[bytes] = []
            protocol._encode_into(value, resp3, out)
            assert flat(value, resp3) == b"".join(out)
        for odd in ([1 << 64], [b"a", [b"nested"]], [b"a", protocol.Double(1.5)], [True], ["text"]):
            assert flat(odd, resp3, False) is None  # scalars only (replybudget walks the rest)
            out = []
            protocol._encode_into(odd, resp3, out)
            assert flat(odd, resp3) in (None, b"".join(out))  # nested: the read loop's encoder, or Python's turn
            assert protocol.encode(odd * 5, resp3) == (b"*%d\r\n" % (len(odd) * 5)) + b"".join(out[1:]) * 5


@pytest.mark.parametrize("resp3", [False, True])
def test_nested_arrays_encode_the_same_in_c_and_python(resp3: bool) -> None:
    """``encode_flat`` writes nested elements (XRANGE's entries, Maps, sets, doubles, deep
    arrays) with the read loop's encoder: byte for byte the Python encoder's output, or None."""
    from dumpling import protocol

    flat = protocol._encode_flat
    if flat is None:
        pytest.skip("C fast path not built")
    rng = random.Random(11)
    scalars = [b"", b"id-1", b"y" * 70, 7, -(1 << 63), None, protocol.Double(0.1), 1.5, True, protocol.OK]

    def value(depth: int) -> object:
        kind = rng.random()
        if depth > 8 or kind < 0.5:
            return rng.choice(scalars)
        items = [value(depth + 1) for _ in range(rng.randrange(0, 4))]
        if kind < 0.8:
            return items
        if kind < 0.9:
            return protocol.SetReply(items)
        return protocol.Map([(b"k%d" % i, item) for i, item in enumerate(items)])

    for _ in range(400):  # (Status, Double, Map, SetReply are the C encoder's once a server configures it)
        reply = [value(0) for _ in range(rng.randrange(9, 30))]
        out: list[bytes] = []
        protocol._encode_into(reply, resp3, out)
        assert flat(reply, resp3) in (None, b"".join(out))
        assert protocol.encode(reply, resp3) == b"".join(out)
    scalars[:] = [b"", b"id-1", b"y" * 70, 7, -(1 << 63), None]  # what it writes unconfigured
    for _ in range(200):
        reply = [[value(7), [value(7), value(7)]] for _ in range(rng.randrange(9, 30))]  # XRANGE's shape
        out = []
        protocol._encode_into(reply, resp3, out)
        assert flat(reply, resp3) == b"".join(out)


@pytest.mark.parametrize("resp3", [False, True])
def test_map_replies_encode_as_the_reference_encoder_does(resp3: bool) -> None:
    """A big Map goes through the C flat encoder (flattened; RESP3 swaps the header): the
    bytes must be the reference encoder's for every value shape, small Maps included."""
    from dumpling.protocol import _encode_into

    rng = random.Random(5)
    shapes = [lambda i: b"v" * i, lambda i: i - 3, lambda i: None, lambda i: Double(i / 7), lambda i: [b"x", i]]
    for n in (0, 1, 8, 9, 50, 3000):
        for shape in shapes:
            value = Map([(b"field:%d" % i, shape(rng.randrange(100))) for i in range(n)])
            reference: list[bytes] = []
            _encode_into(value, resp3, reference)
            assert encode(value, resp3) == b"".join(reference)
