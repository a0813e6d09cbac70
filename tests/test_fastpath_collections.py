"""``dumpling._collections``: a list's one-element push/pop bookkeeping in C and the native
handlers of LPUSH/RPUSH/LPUSHX/RPUSHX/LPOP/RPOP/HSET/SADD/ZADD/XADD, and XADD's append in C.

The Python code is the reference: the C helpers must leave a ``ListValue`` exactly as
``_push_one``/``pop`` do (elements, quicklist nodes, listpack bytes, encoding), and a request
stream must answer the same bytes and leave the same keyspace (DUMP images: node layout and
encodings) with the native handlers on, off, and with no C request loop at all.  Redis is the
oracle for the replies."""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sortedcontainers import SortedDict

from dumpling import accel, collector
from dumpling.commands import lists as list_commands
from dumpling.datatypes import lists
from dumpling.datatypes import streams as stream_values
from dumpling.datatypes.lists import ListValue, lp_entry_size
from dumpling.datatypes.streams import StreamValue
from tests.fuzzing import examples
from tests.servers import encode_command, parse_reply
from tests.test_fastpath_fuzz import run_stream

native = accel.collections
pytestmark = pytest.mark.skipif(native is None, reason="dumpling._collections not built")

ELEMENTS = [b"", b"0", b"7", b"-1", b"127", b"128", b"4096", b"-32769", b"2147483648", b"007", b"-0",
            b"9223372036854775807", b"9223372036854775808", b"x", b"ab" * 31, b"ab" * 32, b"z" * 200,
            b"w" * 5000, b"q" * 9000]


def _shape(value: ListValue) -> tuple[Any, ...]:
    return list(value.items), value.encoding, value._lp_bytes, value._nodes, value._shape_len


def test_entry_sizes_match_python() -> None:
    rng = random.Random(7)
    samples = ELEMENTS + [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70))) for _ in range(500)]
    samples += [str(rng.randrange(-(1 << 64), 1 << 64)).encode() for _ in range(500)]
    samples += [b"x" * n for n in (63, 64, 65, 4094, 4095, 4096, 16380, 16381, 2097149, 2097150)]
    assert [native.lp_entry_size(s) for s in samples] == [lp_entry_size(s) for s in samples]


@pytest.mark.parametrize("fill", [-2, -1, -5, 1, 3, 128, 0])
@pytest.mark.parametrize("threshold", [0, 100])
def test_push_pop_one_match_python(fill: int, threshold: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same random pushes and pops on two lists, C helpers and Python: same shape after each."""
    rng = random.Random(fill * 31 + threshold)
    lists.set_packed_threshold(threshold)
    try:
        fast, slow = ListValue(), ListValue()
        for step in range(1500):
            head = rng.random() < 0.5
            if rng.random() < 0.55 or not slow.items:
                element = rng.choice(ELEMENTS)
                fast.push([element], head, fill)
                with monkeypatch.context() as patch:
                    patch.setattr(lists, "_native_push_one", None)
                    slow.push([element], head, fill)
            else:
                got = fast.pop(1, head, fill)
                with monkeypatch.context() as patch:
                    patch.setattr(lists, "_native_pop_one", None)
                    assert slow.pop(1, head, fill) == got
                if step % 3 == 0:  # as LPOP does after a pop (fast: the handler's own shrink)
                    fast.shrunk(fill)
                    slow.shrunk(fill)
            assert _shape(fast) == _shape(slow), (fill, threshold, step)
    finally:
        lists.set_packed_threshold(0)


def test_helpers_decline_what_is_not_their_case() -> None:
    value = ListValue([b"a", b"b"])  # shape not yet known (built behind the mutators' back)
    assert native.list_push_one(value, b"c", True, -2) is False
    assert native.list_pop_one(value, True, -2) is None
    assert list(value.items) == [b"a", b"b"] and value._shape_len == -1
    value.push([b"c"], False, -2)  # the Python path syncs it
    assert native.list_push_one(value, bytearray(b"d"), True, -2) is False  # not bytes
    assert native.list_pop_one(ListValue(), True, -2) is None


# ----------------------------------------------------------------------------- whole streams

CONFIGS = [
    [],
    [("list-max-listpack-size", "3"), ("hash-max-listpack-entries", "3"), ("set-max-listpack-entries", "3"),
     ("set-max-intset-entries", "3"), ("hash-max-listpack-value", "8"), ("set-max-listpack-value", "8"),
     ("zset-max-listpack-entries", "3"), ("zset-max-listpack-value", "8")],
    [("zset-max-listpack-entries", "0")],
    [("list-max-listpack-size", "-1")],
]
KEYS = [b"l", b"h", b"s", b"k"]
VALUES = [b"a", b"1", b"-5", b"x" * 70, b"y" * 300, b"z" * 9000, b"12345678901", b"f", b"g", b"", b"2.5", b"-0",
          b"1e3"]
SHAPES = [(b"XADD", "kvvv"), (b"LPUSH", "kv"), (b"RPUSH", "kv"), (b"lpush", "kvv"), (b"LPUSHX", "kv"), (b"RPUSHX", "kv"),
          (b"LPOP", "k"), (b"RPOP", "k"), (b"rpop", "kv"), (b"HSET", "kvv"), (b"HSET", "kvvvv"), (b"hset", "kv"),
          (b"SADD", "kv"), (b"SADD", "kvvv"), (b"SET", "kv"), (b"DEL", "k"), (b"EXPIRE", "kv"), (b"OBJECT", "vk"),
          (b"LLEN", "k"), (b"HEXPIRE", "kvvv"), (b"SSCAN", "kv"), (b"HSCAN", "kv"), (b"ZADD", "kvv"), (b"ZADD", "kvv"),
          (b"zadd", "kvv"), (b"ZADD", "kvvvv"), (b"ZSCAN", "kv"), (b"ZREM", "kv"), (b"ZPOPMIN", "k"), (b"zpopmax", "k"),
          (b"ZPOPMAX", "kv"), (b"SPOP", "m"), (b"SPOP", "mv")]  # (m: keys nothing writes, SPOP's pick is random)


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    config = draw(st.sampled_from(CONFIGS))
    out = [encode_command(b"CONFIG", b"SET", name, value) for name, value in config]
    for _ in range(draw(st.integers(1, 60))):
        name, pattern = draw(st.sampled_from(SHAPES))
        args = [draw(st.sampled_from(KEYS if kind == "k" else [b"nokey", b"other"] if kind == "m" else VALUES))
                for kind in pattern]
        if name.upper() == b"OBJECT":
            args[0] = draw(st.sampled_from([b"ENCODING", b"FREQ"]))
        if name == b"HEXPIRE":  # a field with a TTL, at a fixed time (DUMP images carry it)
            name, args = b"HPEXPIREAT", [args[0], b"4000000000000", b"FIELDS", b"1", args[3]]
        out.append(encode_command(name, *args))
    data = b"".join(out)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=4))))
    pieces, last = [], 0
    for cut in [*cuts, len(data)]:
        if cut > last:
            pieces.append(data[last:cut])
            last = cut
    return pieces


@settings(max_examples=examples(150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(reads=streams())
def test_native_handlers_agree_with_python(reads: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies, keyspace (DUMP images: encodings and node layouts), statistics and counters:
    C loop with native handlers = C loop without them = the pure-Python dispatcher."""
    with_native = run_stream(reads, True, monkeypatch)
    list_commands.use_native_handlers(False)
    try:
        without = run_stream(reads, True, monkeypatch)
    finally:
        list_commands.use_native_handlers(True)
    assert with_native == without
    assert with_native == run_stream(reads, False, monkeypatch)


def test_long_list_history_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of one-element pushes and pops across quicklist nodes, plain nodes and the
    return to a listpack: the same DUMP image and replies either way."""
    rng = random.Random(12)
    reqs = []
    for _ in range(3000):
        op = rng.choice([b"LPUSH", b"RPUSH", b"LPOP", b"RPOP", b"LPUSH", b"RPUSH"])
        reqs.append(encode_command(op, b"l", rng.choice(VALUES)) if op.endswith(b"PUSH") else encode_command(op, b"l"))
    reqs.append(encode_command(b"OBJECT", b"ENCODING", b"l"))
    data = [b"".join(reqs[i:i + 100]) for i in range(0, len(reqs), 100)]
    with_native = run_stream(data, True, monkeypatch)
    list_commands.use_native_handlers(False)
    try:
        assert with_native == run_stream(data, True, monkeypatch)
    finally:
        list_commands.use_native_handlers(True)


def test_replies_match_redis(pair) -> None:
    """The native forms against Redis: pushes and pops on existing lists (one elements' pop
    included), LPUSHX/RPUSHX on missing keys, HSET and SADD new and existing, wrong types."""
    rng = random.Random(3)
    pair.same("RPUSH", "l", "seed")
    pair.same("HSET", "h", "f0", "v")
    pair.same("SADD", "s", "m0")
    pair.same("SADD", "i", "1")
    pair.same("ZADD", "z", "1", "m0")
    pair.same("ZADD", "zs", "1", "m0", "2", "x" * 70)
    pair.same("SET", "str", "x")
    for step in range(400):
        element = rng.choice(["a", "1", "-7", "x" * 80, "y" * 9000, ""])
        op = rng.randrange(14)
        if op < 4:
            pair.same(rng.choice(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), rng.choice(["l", "l", "missing", "str"]),
                      element)
        elif op < 7:
            pair.same(rng.choice(["LPOP", "RPOP"]), rng.choice(["l", "l", "missing", "str"]))
        elif op < 9:
            field = rng.choice(["f0", "f1", "f2", "big" * 30])
            pair.same("HSET", rng.choice(["h", "h", "str", f"new{step}"]), field, element, *(["f3", "w"] if op == 8 else []))
        elif op < 12:
            pair.same("SADD", rng.choice(["s", "i", "str"]), rng.choice(["m0", "m1", "2", element]))
        else:
            score = rng.choice(["1", "-0", "0", "2.5", "-7", "0.5", "-1.25", "1e2", "x", "inf"])  # (7.0 prints 0.1 with 17 digits)
            pair.same("ZADD", rng.choice(["z", "zs", "str", "z"]), score, rng.choice(["m0", "m1", "m2", "m3", element]))
            pair.same(rng.choice(["ZPOPMIN", "ZPOPMAX", "SPOP"]), rng.choice(["missing", "str"]))
    pair.same("LRANGE", "l", 0, -1)
    pair.same("LLEN", "l")
    pair.same_unordered("HGETALL", "h")
    pair.same_unordered("SMEMBERS", "s")
    pair.same_unordered("SMEMBERS", "i")
    pair.same("ZRANGE", "z", 0, -1, "WITHSCORES")
    pair.same("ZRANGE", "zs", 0, -1, "WITHSCORES")
    pair.same("OBJECT", "ENCODING", "z")
    pair.same("DBSIZE")
    keys = parse_reply(pair.both("KEYS", "new*")[0])
    pair.same_unordered("KEYS", "new*")
    assert isinstance(keys, list)
    for key in keys:  # hashes HSET created (in C while they stay listpacks)
        pair.same("OBJECT", "ENCODING", key)
        pair.same_unordered("HGETALL", key)
    ours, theirs = (parse_reply(r) for r in pair.both("SCAN", "0", "COUNT", "10000"))
    assert sorted(ours[1]) == sorted(theirs[1])  # type: ignore[index]


@pytest.mark.parametrize(("setup", "request_", "reply"), [
    ([b"RPUSH", b"l", b"a"], [b"LPUSH", b"l", b"b"], b":2\r\n"),
    ([b"RPUSH", b"l", b"a"], [b"RPUSH", b"l", b"b"], b":2\r\n"),
    ([b"RPUSH", b"l", b"a"], [b"LPUSHX", b"l", b"b"], b":2\r\n"),
    (None, [b"RPUSHX", b"l", b"b"], b":0\r\n"),
    ([b"RPUSH", b"l", b"a", b"b"], [b"LPOP", b"l"], b"$1\r\na\r\n"),
    ([b"RPUSH", b"l", b"a", b"b"], [b"RPOP", b"l"], b"$1\r\nb\r\n"),
    (None, [b"LPOP", b"l"], b"$-1\r\n"),
    ([b"HSET", b"h", b"f", b"v"], [b"HSET", b"h", b"f", b"w", b"g", b"v"], b":1\r\n"),
    (None, [b"HSET", b"h", b"f", b"v", b"g", b"w", b"f", b"x"], b":2\r\n"),  # a new key
    ([b"SADD", b"s", b"m", b"n"], [b"SADD", b"s", b"m"], b":0\r\n"),
    ([b"XADD", b"x", b"1-1", b"f", b"v"], [b"XADD", b"x", b"*", b"f", b"w"], b"-0\r\n"),
    ([b"ZADD", b"z", b"1", b"a", b"5", b"c"], [b"ZADD", b"z", b"1", b"a"], b":0\r\n"),
    ([b"ZADD", b"z", b"1", b"a", b"5", b"c"], [b"ZADD", b"z", b"-2.5", b"b"], b":1\r\n"),
    ([b"ZADD", b"z", b"1", b"a", b"5", b"c"], [b"ZADD", b"z", b"-0", b"a"], b":0\r\n"),
    (None, [b"SPOP", b"s"], b"$-1\r\n"),
    (None, [b"ZPOPMIN", b"z"], b"*0\r\n"),
    (None, [b"ZPOPMAX", b"z"], b"*0\r\n"),
])
def test_native_handler_runs_the_common_forms(setup: list[bytes] | None, request_: list[bytes], reply: bytes,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """These forms are answered in C: the Python handler is never called."""
    from dumpling.commands.registry import ORIGINAL

    cmd = ORIGINAL[request_[0].lower()]
    python_handler = cmd.handler

    def guarded(c: Any, argv: list[bytes]) -> Any:  # the setup may use the same command
        if argv[1:] == request_[1:]:
            raise AssertionError("the Python handler ran")
        return python_handler(c, argv)

    monkeypatch.setattr(cmd, "handler", guarded)
    first = [encode_command(*setup)] if setup else []
    out, closed, *_ = run_stream([*first, encode_command(*request_)], True, monkeypatch)
    assert out.endswith(reply) and not closed


def test_xadd_auto_ids_build_the_python_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """XADD key * in C (IDs from the clock) leaves the stream, node layout included, that the
    Python handler builds when given the same IDs; a stream someone waits on, other forms and
    a new key are the Python handler's."""
    rng = random.Random(5)
    reqs = [encode_command(b"XADD", b"x", b"1-1", b"f", b"v")]
    for _ in range(700):
        fields = rng.choice([[b"f", b"v"], [b"f", rng.choice(VALUES)], [b"g", b"1", b"h", b"x" * 300]])
        reqs.append(encode_command(b"XADD", b"x", b"*", *fields))
    out, closed, state, stats, counters = run_stream([b"".join(reqs[i:i + 50]) for i in range(0, len(reqs), 50)],
                                                     True, monkeypatch)
    ids = out.split(b"\r\n")[1::2]
    assert len(ids) == len(reqs) and not closed
    assert [tuple(map(int, i.split(b"-"))) for i in ids] == sorted({tuple(map(int, i.split(b"-"))) for i in ids})
    replay = [req.replace(b"$1\r\n*\r\n", b"$%d\r\n%s\r\n" % (len(i), i)) for req, i in zip(reqs, ids, strict=True)]
    out2, _, state2, _, counters2 = run_stream([b"".join(replay)], False, monkeypatch)
    assert out2 == out and state2 == state and counters2[1] == counters[1]  # replies, DUMP image, dirty


def test_hset_of_a_new_key_builds_the_python_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Native HSET of a new key makes its HashValue without the Python __init__, born packed
    (HashValue.packed: the listpack of its fields in ``_fields``): every other slot as
    HashValue() leaves it, untracked, and the fields those Python's HSET writes."""
    from dumpling.config import Config
    from dumpling.datatypes.hashes import NO_FIELD_TTLS, HashValue
    from dumpling.dispatch import Server
    from dumpling.payload import listpack
    from dumpling.server import Client
    from tests.test_fastpath_fuzz import Transport

    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    client.data_received(encode_command(b"HSET", b"h1", b"f", b"v") + encode_command(b"HSET", b"h2", b"g", b"w", b"f", b"x"))
    assert bytes(transport.data) == b":1\r\n:2\r\n"
    made = [server.keyspace.dbs[0].data[key] for key in (b"h1", b"h2")]
    reference = HashValue()
    for value, fields in zip(made, [{b"f": b"v"}, {b"g": b"w", b"f": b"x"}], strict=True):
        assert type(value) is HashValue and value.packed_listpack() == listpack.encode_dict_py(fields)
        assert [getattr(value, name) for name in HashValue.__slots__[1:]] == \
            [getattr(reference, name) for name in HashValue.__slots__[1:]]
        assert value.field_expires is NO_FIELD_TTLS and not gc.is_tracked(value)
        assert value.fields == fields


# ----------------------------------------------------------------------------- stream append

def _stream_shape(s: StreamValue) -> tuple[Any, ...]:
    nodes = [(n.master_id, n.master_fields, n.last_id, n.ids(s.entries), n.dead, n.live, n.deleted, n.entries_bytes,
              n.fields_bytes)
             for n in (s._nodes or {}).values()]
    return list(s.entries.items()), s.last_id, s.first_id, s.entries_added, nodes


@pytest.mark.parametrize(("max_bytes", "max_entries"), [(4096, 100), (120, 0), (0, 3), (60, 2), (1 << 31, 1)])
def test_stream_append_matches_python(max_bytes: int, max_entries: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same appends (master fields or not, integer-looking and long values), deletions,
    trims and positional node lookups on two streams, C append and the Python reference:
    the same entries, counters and node layout (listpack bytes per node) after each step."""
    rng = random.Random(max_bytes * 7 + max_entries)
    fast, slow = StreamValue(), StreamValue()
    ms = 1
    for step in range(1200):
        op = rng.random()
        if op < 0.7 or not slow.entries:
            ms += rng.choice([0, 1, 1, 1000, 1 << 40])
            entry_id = (ms, step)
            fields = rng.choice([[b"f", rng.choice(VALUES)], [b"f", b"1"], [b"g", b"1", b"h", rng.choice(VALUES)],
                                 [b"-7", b"x" * 70]])
            fast.append(entry_id, list(fields), max_bytes, max_entries)
            with monkeypatch.context() as patch:
                patch.setattr(stream_values, "_native_append", None)
                slow.append(entry_id, list(fields), max_bytes, max_entries)
        elif op < 0.85:
            victim = rng.choice(list(slow.entries))
            assert fast.delete(victim) == slow.delete(victim)
            fast.refresh_first_id()
            slow.refresh_first_id()
        elif op < 0.9:
            keep = max(0, len(slow) - rng.randrange(1, 20))
            approx = rng.random() < 0.5
            assert fast.trim(keep, None, approx, 0, max_bytes, max_entries) == \
                slow.trim(keep, None, approx, 0, max_bytes, max_entries)
        else:  # builds the nodes' positional index, which the C append then keeps
            probe = rng.choice(list(slow.entries))
            assert fast.node_of(probe).master_id == slow.node_of(probe).master_id  # type: ignore[union-attr]
        assert _stream_shape(fast) == _stream_shape(slow), (step, op)
    assert slow._nodes is not None and list(fast._nodes.keys()) == list(slow._nodes.keys())  # type: ignore[union-attr]


@pytest.mark.parametrize("chunk", [3, 1000])
def test_id_map_is_a_sorted_dict(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``IdMap`` (a stream's entries and nodes) against ``SortedDict`` under random sets, pops,
    deletions, ranges, positional reads and floor lookups, its chunk layout checked after each."""
    monkeypatch.setattr(stream_values, "CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(40):
        ours, reference = stream_values.IdMap(), SortedDict()
        for step in range(150):
            key = (rng.randrange(40), rng.randrange(3))
            op = rng.random()
            if op < 0.55:
                ours[key] = reference[key] = step
            elif op < 0.75:
                assert ours.pop(key, None) == reference.pop(key, None)
            elif op < 0.85 and reference:
                victim = rng.choice(list(reference))
                del ours[victim], reference[victim]
            low = (rng.randrange(42), rng.randrange(3)) if rng.random() < 0.8 else None
            high = (rng.randrange(42), rng.randrange(3)) if rng.random() < 0.8 else None
            rev = rng.random() < 0.5
            assert list(ours.irange(low, high, reverse=rev)) == list(reference.irange(low, high, reverse=rev))
            assert list(ours.items()) == list(reference.items()) and len(ours) == len(reference)
            if reference:
                i = rng.randrange(-len(reference), len(reference))
                assert ours.keys()[i] == reference.keys()[i] and ours.peekitem(i) == reference.peekitem(i)
                assert ours.keys()[i:i + 3] == list(reference.keys()[i:i + 3])
                pos = reference.bisect_right(key) - 1
                assert ours.floor_item(key) == (None if pos < 0 else reference.peekitem(pos))
            assert all(ours._vals) and b"".join(c[-16:] for c in ours._keys) == ours._maxes
            assert [len(c) for c in ours._keys] == [16 * len(v) for v in ours._vals]
            assert all(len(v) <= chunk for v in ours._vals) and ours._len == sum(map(len, ours._vals))
        assert list(stream_values.IdMap(reference.items()).items()) == list(reference.items())


def test_bisect_records_matches_python() -> None:
    """The C binary search over a chunk's ID records against the Python reference: every
    place, left and right, of present, absent and extreme keys (equal ms runs included)."""
    rng = random.Random(5)
    ids = sorted({(rng.choice([0, 7, 1 << 40, (1 << 64) - 1]), rng.randrange(4)) for _ in range(60)})
    records = bytearray(b"".join(stream_values.pack_id(*i) for i in ids))
    probes = ids + [(0, 0), (3, 9), (1 << 40, 5), ((1 << 64) - 1, (1 << 64) - 1)]
    for chunk in (records, bytes(records), bytearray()):
        for probe in probes:
            key = stream_values.pack_id(*probe)
            for right in (False, True):
                assert native.bisect_records(chunk, key, right) == stream_values._bisect_records_py(chunk, key, right)
    with pytest.raises(TypeError):
        native.bisect_records(records, b"short")


def test_stream_append_across_chunks_matches_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """2,500 C appends (three chunks of the ID index), deletions at chunk edges between them:
    the same value as the Python reference's."""
    fast, slow = StreamValue(), StreamValue()
    for i in range(2500):
        entry_id = (1000 + i // 7, i % 7)
        fast.append(entry_id, [b"f", b"%d" % i], 4096, 100)
        with monkeypatch.context() as patch:
            patch.setattr(stream_values, "_native_append", None)
            slow.append(entry_id, [b"f", b"%d" % i], 4096, 100)
        if i in (999, 1000, 1998, 2001):
            for s in (fast, slow):
                s.delete(s.entries.keys()[-1 if i % 2 else 0])
                s.refresh_first_id()
    assert _stream_shape(fast) == _stream_shape(slow) and len(fast.entries._keys) == 3
    if collector.ACCELERATED:  # the parts C made are hidden from the collector as Database.add hides a value's
        parts = [*fast.entries._keys[1:], *fast.entries._vals[1:], *list(fast.nodes().values())[1:]]
        assert not any(map(gc.is_tracked, parts))


def test_stream_append_declines_what_is_not_its_case() -> None:
    s = StreamValue()
    assert native.stream_append(s, (1, 1), [b"f", b"v"], 4096, 100) is False  # no layout yet: Python builds it
    s.append((1, 1), [b"f", b"v"], 4096, 100)
    before = _stream_shape(s)
    assert native.stream_append(s, (2, 1), [b"f", bytearray(b"v")], 4096, 100) is False  # not bytes
    assert native.stream_append(s, (2, 1), [b"f"], 4096, 100) is False  # odd
    assert native.stream_append(s, [2, 1], [b"f", b"v"], 4096, 100) is False  # not an ID tuple
    assert _stream_shape(s) == before
    assert native.stream_append(s, (2, 1), [b"f", b"v"], 4096, 100) is True


FUTURE_MS = 99_999_999_999_999
STREAM_CONFIGS = [[], [("stream-node-max-entries", "3")], [("stream-node-max-bytes", "90"), ("stream-node-max-entries", "0")]]
STREAM_SHAPES = [(b"XADD", "k*vv"), (b"XADD", "k*vvvv"), (b"XADD", "kivv"), (b"XADD", "kiff"), (b"XDEL", "ki"),
                 (b"XTRIM", "kMAXLEN~n"), (b"XTRIM", "kMAXLEN=n"), (b"XTRIM", "kMINIDi"), (b"XLEN", "k"),
                 (b"XRANGE", "k-+"), (b"XADD", "kNOMKSTREAM*vv")]  # (no DEL: a new key's "*" reads the clock)


@st.composite
def stream_requests(draw: st.DrawFn) -> list[bytes]:
    config = draw(st.sampled_from(STREAM_CONFIGS))
    out = [encode_command(b"CONFIG", b"SET", name, value) for name, value in config]
    out += [encode_command(b"XADD", key, b"%d-0" % FUTURE_MS, b"f", b"v") for key in (b"x", b"y")]
    for _ in range(draw(st.integers(1, 80))):
        name, pattern = draw(st.sampled_from(STREAM_SHAPES))
        args: list[bytes] = []
        for kind in pattern:
            if kind == "k":
                args.append(draw(st.sampled_from([b"x", b"x", b"y"])))
            elif kind == "v":
                args.append(draw(st.sampled_from(VALUES)))
            elif kind == "f":
                args.append(b"f")
            elif kind == "i":  # IDs past the clock: "*" then takes the next sequence number, as every run does
                args.append(b"%d-%d" % (FUTURE_MS + draw(st.integers(0, 3)), draw(st.integers(0, 3))))
            elif kind == "n":
                args.append(b"%d" % draw(st.integers(0, 6)))
            else:
                args.append(kind.encode())
        out.append(encode_command(name, *args))
    return [b"".join(out[i:i + 16]) for i in range(0, len(out), 16)]


@settings(max_examples=examples(100), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(reads=stream_requests())
def test_stream_writes_agree(reads: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """XADD (automatic and explicit IDs) / XDEL / XTRIM streams under small node limits: the same
    replies, DUMP images (node layout), statistics and counters with the native handlers and
    the C append, with the handlers off, and with neither (pure Python dispatcher and append).
    (The streams' IDs are past the clock, so "*" answers the same in every run.)"""
    with_native = run_stream(reads, True, monkeypatch)
    list_commands.use_native_handlers(False)
    try:
        without = run_stream(reads, True, monkeypatch)
    finally:
        list_commands.use_native_handlers(True)
    with monkeypatch.context() as patch:
        patch.setattr(stream_values, "_native_append", None)
        pure = run_stream(reads, False, monkeypatch)
    assert with_native == without == pure
