"""The C fast path fuzzed without sockets: the same byte streams, cut into the same reads,
go to two in-process servers, one with ``dumpling._fastpath`` and one without; every
byte written back, whether the connection closes, and the keyspace left behind must be
identical.  (``tests/test_fastpath.py`` compares both with real Redis over TCP.)
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dumpling import accel
from dumpling import server as server_module
from dumpling.commands.dump import dump_value
from dumpling.config import Config
from dumpling.dispatch import Server
from dumpling.server import Client
from tests.fuzzing import examples
from tests.servers import encode_command

pytestmark = pytest.mark.skipif(accel.fastpath is None, reason="C fast path not built")


class Transport:
    """What ``Client`` needs of an asyncio transport: the bytes it writes and whether it closed."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        # a loopback peer: protected mode serves it (a peer of unknown address would be refused)
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed


def connected_client() -> tuple[Server, Client, Transport]:
    """A new in-process server and one client connected to it through a ``Transport``."""
    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    return server, client, transport


def run_stream(reads: list[bytes], fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bool, list]:
    """Feed ``reads`` to a fresh in-process server; its replies, whether it closed, its keyspace."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(server_module, "_fast_run", None)
        server = Server(Config())
        # Command objects are shared by every Server in the process: count the change.
        commands = {cmd.name: cmd for cmd in server.fast_table.values()}
        before = {name: (cmd.calls, cmd.failed_calls, cmd.rejected_calls) for name, cmd in commands.items()}
        client = Client(server)
        transport = Transport()
        client.connection_made(transport)  # type: ignore[arg-type]
        assert client.id in server.clients  # admitted (a refusal would make both sides agree vacuously)
        for data in reads:
            if transport.closed:
                break
            client.data_received(data)
        db = server.keyspace.dbs[0]
        state = sorted((key, _plain(server, value), key in db.expires) for key, value in db.data.items())
        after = {name: (cmd.calls, cmd.failed_calls, cmd.rejected_calls) for name, cmd in commands.items()}
        stats = sorted((name, *(a - b for a, b in zip(after[name], before[name], strict=True)))
                       for name in commands if after[name] != before[name])
        counters = (server.stat_commands, server.keyspace.dirty, server.keyspace.stat_hits,
                    server.keyspace.stat_misses, dict(server.errorstats))
        return bytes(transport.data), transport.closed, state, stats, counters


def _plain(server: Server, value: Any) -> Any:
    """A stored value as something comparable: strings as bytes, other types as their DUMP
    payload (elements, encoding and layout)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return dump_value(server, value)


KEYS = [b"a", b"b", b"", b"n"]
VALUES = [b"encoding", b"2.5", b"-1", b"1-1", b"1", b"-5", b"0", b"x", b"", b"9223372036854775807", b"-9223372036854775808", b"9223372036854775806",
          b"007", b"-0", b"12345678901234567890123"]
# Name and the arguments it takes (k: a key, v: a value; "*" repeats the pattern after it).
SHAPES = [(b"GET", "k"), (b"get", "k"), (b"SET", "kv"), (b"sEt", "kv"), (b"INCR", "k"), (b"DECR", "k"),
          (b"INCRBY", "kv"), (b"decrby", "kv"), (b"MSET", "*kv"), (b"MGET", "*k"), (b"PING", ""),
          (b"APPEND", "kv"), (b"EXPIRE", "kv"), (b"DEL", "k"), (b"RPUSH", "kv"), (b"SET", "kvv"),
          # the C general path: plain commands through their Python handlers, every reply shape
          (b"LPUSH", "k*v"), (b"lpop", "k"), (b"RPOP", "kv"), (b"LRANGE", "kvv"), (b"LLEN", "k"),
          (b"HSET", "k*vv"), (b"HGET", "kv"), (b"HGETALL", "k"), (b"HINCRBYFLOAT", "kvv"), (b"SADD", "k*v"),
          (b"SMEMBERS", "k"), (b"SREM", "k*v"), (b"ZADD", "k*vv"), (b"ZRANGE", "kvv"), (b"ZSCORE", "kv"),
          (b"ZPOPMIN", "k"), (b"EXISTS", "*k"), (b"TYPE", "k"), (b"TTL", "k"), (b"OBJECT", "vk"),
          (b"GETDEL", "k"), (b"STRLEN", "k"), (b"INCRBYFLOAT", "kv"), (b"SELECT", "v"), (b"ECHO", "v"),
          (b"MULTI", ""), (b"EXEC", ""), (b"XADD", "kvvv"), (b"XLEN", "k"), (b"SETRANGE", "kvv"),
          # nested replies, doubles, booleans (w: WITHSCORES, r: a range end)
          (b"ZRANGE", "kvvw"), (b"ZMSCORE", "k*v"), (b"XRANGE", "krr"),
          (b"SMISMEMBER", "k*v"), (b"ZINCRBY", "kvv")]
TOKENS = {"k": KEYS, "v": VALUES, "w": [b"WITHSCORES"], "r": [b"-", b"+"]}


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:  # anything: wrong arity, unknown names
        name = draw(st.sampled_from([shape[0] for shape in SHAPES] + [b"NOSUCH", b"ECHO"]))
        return encode_command(name, *draw(st.lists(st.sampled_from(KEYS + VALUES), max_size=5)))
    name, pattern = draw(st.sampled_from(SHAPES))
    if "*" in pattern:
        head, tail = pattern.split("*")
        pattern = head + tail * draw(st.integers(1, 3))
    args = [draw(st.sampled_from(TOKENS[kind])) for kind in pattern]
    if draw(st.integers(0, 3)) == 0:  # inline, as typed into telnet: odd spacing, quotes, bare LF
        gap = draw(st.sampled_from([b" ", b"  ", b"\t", b" \t "]))
        word = draw(st.sampled_from([b"", b"'q'", b'"a b"', b"\x01"]))
        return gap.join([name, *args, word]) + draw(st.sampled_from([b"\r\n", b"\n", b" \r\n"]))
    return encode_command(name, *args)


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    hello = encode_command("HELLO", "3") if draw(st.booleans()) else b""  # RESP3 nulls from the C replies too
    data = bytearray(hello + b"".join(draw(st.lists(requests(), min_size=1, max_size=30))))
    for _ in range(draw(st.integers(0, 2))):  # some damage: protocol errors, inline commands
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.sampled_from(b"*$\r\n0123456789-x "))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6))))
    pieces, last = [], 0
    for cut in [*cuts, len(data)]:
        if cut > last:
            pieces.append(bytes(data[last:cut]))
            last = cut
    return pieces


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(reads=streams())
def test_fast_and_pure_agree_on_any_stream(reads: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_stream(reads, True, monkeypatch) == run_stream(reads, False, monkeypatch)


@pytest.mark.parametrize("resp3", [False, True])
def test_nested_double_and_map_replies_are_encoded_in_c(resp3: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Doubles, maps, sets and nested arrays leave the C general path as the Python encoder
    writes them, without ending the call in Python (Server.finish_plain)."""
    setup = (encode_command("HELLO", "3" if resp3 else "2") + encode_command("ZADD", "z", "1.5", "a", "-0.1", "b")
             + encode_command("HSET", "h", "f", "v", "g", "1") + encode_command("SADD", "s", "m")
             + encode_command("XADD", "x", "1-1", "f", "v"))
    requests = [("ZSCORE", "z", "a"), ("ZSCORE", "z", "b"), ("ZINCRBY", "z", "0.25", "a"), ("ZMSCORE", "z", "a", "no"),
                ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("HGETALL", "h"), ("SMEMBERS", "s"), ("XRANGE", "x", "-", "+"),
                ("SMISMEMBER", "s", "m", "n"), ("INCRBYFLOAT", "f", "1.5")]
    data = b"".join(encode_command(*request) for request in requests)
    fast, pure = run_stream([setup, data], True, monkeypatch), run_stream([setup, data], False, monkeypatch)
    assert fast == pure
    ended: list[Any] = []
    with monkeypatch.context() as patch:
        patch.setattr(Server, "finish_plain", lambda self, *args: ended.append(args[1].name))
        assert run_stream([setup, data], True, monkeypatch)[0] == pure[0]
    assert ended == []


def test_the_fast_path_really_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guard for the test above: with the extension in place, GET/SET bypass the Python handlers
    (and a SET with an option reaches its handler through the C general path)."""
    calls: list[bytes] = []
    server = Server(Config())
    set_command = server.fast_table[b"set"]
    original = set_command.handler
    monkeypatch.setattr(set_command, "handler", lambda c, argv: calls.append(argv[0]) or original(c, argv))
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    client.data_received(encode_command("SET", "k", "v") + encode_command("SET", "k", "v", "XX"))
    assert bytes(transport.data) == b"+OK\r\n+OK\r\n"
    assert calls == [b"SET"]  # only the form with an option reached Python


INT_TEXTS = st.one_of(
    st.binary(max_size=22),
    st.integers(-(1 << 64), 1 << 64).map(lambda n: b"%d" % n),
    st.sampled_from([b"0", b"-0", b"00", b"+1", b" 1", b"1 ", b"9223372036854775807", b"9223372036854775808",
                     b"-9223372036854775808", b"-9223372036854775809", b"99999999999999999999", b"-"]),
)


@settings(max_examples=examples(500), deadline=None)
@given(text=INT_TEXTS, mutable=st.booleans())
def test_argument_integers_parse_as_the_reference(text: bytes, mutable: bool) -> None:
    """The C string2ll every argument parser uses (numbers.parse_int64, common.to_int) answers as
    the Python reference, for bytes and bytearray, and raises the same CommandError."""
    from dumpling import numbers
    from dumpling.commands import common
    from dumpling.errors import CommandError

    arg = bytearray(text) if mutable else text
    expected = numbers.py_parse_int64(arg)
    assert numbers.parse_int64 is accel.fastpath.parse_int64
    assert numbers.parse_int64(arg) == expected
    if expected is not None:
        assert common.to_int(arg) == expected
        return
    for error in ([], ["custom message"]):
        with pytest.raises(CommandError) as raised:
            common.to_int(arg, *error)
        assert raised.value.message == "ERR " + (error[0] if error else "value is not an integer or out of range")
