"""A stream range's reply written straight from the packed chunks (``datatypes.streams.range_wire``:
the C ``dumpling._collections.stream_range_reply`` and its Python reference ``_range_wire_py``).

The C writer must give the reference's bytes (or stop where it stops, past ``most`` bytes) on
random streams - the master's fields and others, many fields, empty and int-like values, IDs
near 2**64, XDEL tombstones, XTRIMs, restored streams (a real Redis DUMP read back) - for every
kind of range (inclusive, empty, one entry, whole), COUNT and direction; the reference must be
what the values path (``commands.streams.range_reply`` then the encoder) gives in both
protocols; a reply over the limit is never built whole; and XRANGE, XREVRANGE and XREAD must
answer as Redis does, in both protocols, in MULTI and in scripts, big replies included."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

import pytest

from dumpling import accel
from dumpling.commands.streams import range_reply
from dumpling.datatypes import streams as stream_values
from dumpling.datatypes.streams import MASK64, MAX_ID, EntryMap, IdMap, StreamID, StreamValue, range_wire
from dumpling.payload.decode import decode_payload
from dumpling.protocol import encode
from tests.servers import Pair, ServerProcess, encode_command, parse_reply, peak_rss_mb, start_dumpling, start_redis
from tests.streamgen import random_fields, random_stream

native = pytest.mark.skipif(accel.collections is None, reason="dumpling._collections not built")
MODES = ["python"] + (["c"] if accel.collections is not None else [])


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test with the C writer (when built) and with the Python reference alone."""
    if request.param == "python":
        monkeypatch.setattr(stream_values, "_native_range", None)
    yield request.param


def _stream(rng: random.Random, count: int, big_ids: bool = False) -> StreamValue:
    return random_stream(rng, count, 4096, (5, 100), big_ids)


def _bound(rng: random.Random, s: StreamValue) -> StreamID:
    """An ID of the stream, one next to it, or an extreme."""
    pick = rng.random()
    if pick < 0.1 or not s.entries:
        return rng.choice([(0, 0), MAX_ID, (1, 0), (MASK64, 0)])
    ms, seq = s.entries.key_at(rng.randrange(len(s.entries)))
    if pick < 0.6:
        return ms, seq
    return (ms, seq + 1) if seq < MASK64 and pick < 0.8 else (ms, max(seq - 1, 0))


def _ranges(rng: random.Random, s: StreamValue, n: int) -> Iterator[tuple[StreamID, StreamID, int, bool]]:
    for _ in range(n):
        start, end = _bound(rng, s), _bound(rng, s)
        if rng.random() < 0.7 and start > end:
            start, end = end, start
        yield start, end, rng.choice([0, 0, 1, 2, 7, 1000, 1001, 5000]), rng.random() < 0.5


def _values_reply(s: StreamValue, start: StreamID, end: StreamID, count: int, rev: bool, resp3: bool) -> bytes:
    """What the values path answers: range_reply's lists through the encoder."""
    return encode(range_reply(s, start, end, count, rev), resp3)


@native
@pytest.mark.parametrize("big_ids", [False, True])
def test_c_writes_the_python_bytes(big_ids: bool) -> None:
    rng = random.Random(3 + big_ids)
    checked = 0
    for count in (0, 1, 40, 700, 2600):
        s = _stream(rng, count, big_ids)
        for start, end, n, rev in _ranges(rng, s, 60):
            reference = stream_values._range_wire_py(s.entries, start, end, n, rev, -1)
            assert accel.collections.stream_range_reply(s.entries, start, end, n, rev, -1) == reference
            for most in (0, 3, 4, len(reference) - 1, len(reference), rng.randrange(len(reference) + 1)):
                ours = accel.collections.stream_range_reply(s.entries, start, end, n, rev, most)
                assert ours == stream_values._range_wire_py(s.entries, start, end, n, rev, most)
                assert ours == (reference if len(reference) <= most else False)
            checked += 1
    assert checked


@pytest.mark.parametrize("resp3", [False, True])
def test_the_reply_is_the_values_reply(mode: str, resp3: bool) -> None:
    """The written reply is what the entries as values encode to (the bytes are the same in
    both protocols: arrays all through)."""
    rng = random.Random(17)
    for count in (0, 3, 1500):
        s = _stream(rng, count)
        for start, end, n, rev in _ranges(rng, s, 40):
            assert range_wire(s.entries, start, end, n, rev, -1) == _values_reply(s, start, end, n, rev, resp3)


def test_entries_past_the_master_fields_and_edges(mode: str) -> None:
    """Same fields as the chunk's first entry (stored once), others, none shared; the first
    and last entries of chunks; an empty range; the greatest ID."""
    s = StreamValue()
    for i in range(2500):
        flat = [b"a", b"%d" % i, b"b", b""] if i % 3 else [b"a", b"x" * (i % 200)]
        s.append((i // 2, i % 2), flat, 4096, 100)
    s.append((MASK64, MASK64), [b"last", b"-1"], 4096, 100)
    for start, end in [((0, 0), MAX_ID), ((499, 1), (500, 0)), ((500, 0), (499, 1)), ((999, 1), (1000, 0)),
                       ((1249, 1), MAX_ID), ((MASK64, MASK64), MAX_ID), ((7, 0), (7, 0))]:
        for n in (0, 1, 2, 1001):
            for rev in (False, True):
                assert range_wire(s.entries, start, end, n, rev, -1) == _values_reply(s, start, end, n, rev, False)
    assert range_wire(s.entries, (500, 0), (499, 1), 0, False, -1) == b"*0\r\n"
    assert range_wire(s.entries, (MASK64, 0), MAX_ID, 0, True, -1) == \
        b"*1\r\n*2\r\n$41\r\n18446744073709551615-18446744073709551615\r\n*2\r\n$4\r\nlast\r\n$2\r\n-1\r\n"


@native
def test_an_idmap_of_lists_is_declined_and_written_by_the_reference() -> None:
    """A map whose chunks are not packed (no stream keeps one) is not the C code's case."""
    entries = IdMap([((1, 0), [b"a", b"1"]), ((2, 5), [b"b", b"2", b"c", b""])])
    assert accel.collections.stream_range_reply(entries, (0, 0), MAX_ID, 0, False, -1) is None
    assert range_wire(entries, (0, 0), MAX_ID, 0, True, -1) == \
        b"*2\r\n*2\r\n$3\r\n2-5\r\n*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$0\r\n\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"


def test_a_reply_past_the_limit_is_not_built_whole(mode: str) -> None:
    """With ``most`` bytes allowed, the writer stops at the first entry past them: what it
    allocates stays near ``most``, not the whole reply's ~24 MB."""
    s = StreamValue()
    value = b"v" * 200
    for i in range(100_000):
        s.append((i + 1, 0), [b"field", value], 4096, 100)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert range_wire(s.entries, (0, 0), MAX_ID, 0, False, 1 << 20) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    assert len(range_wire(s.entries, (0, 0), MAX_ID, 0, True, -1) or b"") > 23_000_000


@pytest.fixture(scope="module")
def redis_dumps() -> Iterator[list[bytes]]:
    """DUMPs of streams made by a real Redis: XADDs of several shapes, XDELs and XTRIMs."""
    server: ServerProcess = start_redis()
    rng = random.Random(23)
    try:
        payloads = []
        with server.raw() as conn:
            for k in range(4):
                key = b"s%d" % k
                ids = []
                for i in range(rng.choice([5, 300, 2500])):
                    entry_id = b"%d-%d" % (i // 3 + 1, i % 3)
                    conn.call("XADD", key, entry_id, *random_fields(rng))
                    ids.append(entry_id)
                for entry_id in rng.sample(ids, len(ids) // 4):
                    conn.call("XDEL", key, entry_id)
                if k % 2:
                    conn.call("XTRIM", key, "MAXLEN", "~", str(len(ids) // 2))
                payload = conn.call("DUMP", key)
                head, _, rest = payload.partition(b"\r\n")
                payloads.append(rest[:int(head[1:])])
        yield payloads
    finally:
        server.stop()


def test_restored_streams(mode: str, redis_dumps: list[bytes]) -> None:
    rng = random.Random(29)
    for payload in redis_dumps:
        s = decode_payload(payload).value
        assert type(s.entries) is EntryMap
        for start, end, n, rev in _ranges(rng, s, 40):
            assert range_wire(s.entries, start, end, n, rev, -1) == _values_reply(s, start, end, n, rev, True)


# ----------------------------------------------------------------------------- against Redis


def _fill(pair: Pair, rng: random.Random, key: str, count: int) -> list[bytes]:
    ids = []
    for i in range(count):
        entry_id = b"%d-%d" % (i // 4 + 1, i % 4)
        pair.same("XADD", key, entry_id, *random_fields(rng))
        ids.append(entry_id)
    for entry_id in rng.sample(ids, len(ids) // 5):
        pair.same("XDEL", key, entry_id)
    return ids


def test_ranges_like_redis(pairs: Pair) -> None:
    """XRANGE / XREVRANGE with inclusive, exclusive and incomplete IDs, COUNT 0/1/N, in both
    protocols; also inside MULTI and from a script (values there)."""
    rng = random.Random(31 + pairs.resp)
    ids = _fill(pairs, rng, "s", 1200)
    pairs.same("XTRIM", "s", "MAXLEN", "1100")
    bounds = [b"-", b"+", b"0", b"0-0", b"18446744073709551615-18446744073709551615", b"(0-0", b"(1-0", b"5"]
    for _ in range(150):
        start, end = (rng.choice(ids + bounds) for _ in range(2))
        if rng.random() < 0.3 and start not in (b"-", b"+"):
            start = b"(" + start
        if rng.random() < 0.3 and end not in (b"-", b"+"):
            end = b"(" + end
        count = rng.choice([None, 0, 1, 3, 1000, -1])
        extra = () if count is None else ("COUNT", count)
        pairs.same("XRANGE", "s", start, end, *extra)
        pairs.same("XREVRANGE", "s", end, start, *extra)
    pairs.same("XRANGE", "missing", "-", "+")
    pairs.same("XRANGE", "s", "-", "+", "COUNT", "0")
    pairs.same("MULTI")
    pairs.same("XRANGE", "s", "-", "+", "COUNT", "5")
    pairs.same("XREVRANGE", "s", "+", "-", "COUNT", "5")
    pairs.same("EXEC")
    pairs.same("EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 3)", "1", "s")
    pairs.same("EVAL", "return redis.call('XREVRANGE', KEYS[1], '+', '-')", "1", "s")


def test_big_replies_like_redis(pairs: Pair) -> None:
    """Replies over a megabyte (written again without a limit: none is set) and XREAD /
    XREADGROUP of several streams, one of them big, with and without COUNT or NOACK, and the
    PELs and groups they leave."""
    rng = random.Random(37)
    blob = b"".join(bytes([rng.randrange(256)]) for _ in range(1000))
    for i in range(3000):
        pairs.same("XADD", "big", "%d-1" % (i + 1), "f", blob[: rng.randrange(1000)], "g", str(i))
    _fill(pairs, rng, "small", 50)
    assert len(pairs.same("XRANGE", "big", "-", "+")) > 1_000_000
    pairs.same("XREVRANGE", "big", "+", "-")
    pairs.same("XREVRANGE", "big", "+", "-", "COUNT", "2999")
    pairs.same("XREAD", "STREAMS", "small", "big", "missing", "0", "0", "0")
    pairs.same("XREAD", "COUNT", "10", "STREAMS", "big", "small", "1500-0", "3-1")
    pairs.same("EVAL", "return redis.call('XREAD', 'COUNT', 2, 'STREAMS', KEYS[1], KEYS[2], '0', '0')", "2", "small",
               "big")
    for key in ("big", "small"):
        pairs.same("XGROUP", "CREATE", key, "g", "0")
        pairs.same("XGROUP", "CREATE", key, "quiet", "0")
    pairs.same("XREADGROUP", "GROUP", "g", "c1", "COUNT", "5", "STREAMS", "big", "small", ">", ">")
    pairs.same("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "big", "small", ">", ">")
    pairs.same("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "big", "small", ">", ">")
    pairs.same("XREADGROUP", "GROUP", "quiet", "c", "NOACK", "COUNT", "2000", "STREAMS", "small", "big", ">", ">")
    pairs.same("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "big", "small", "0", "0")
    for key in ("big", "small"):
        pairs.same("XPENDING", key, "g")
        ours, theirs = (parse_reply(reply) for reply in pairs.both("XPENDING", key, "g", "-", "+", "3", "c2"))
        assert [entry[:2] + entry[3:] for entry in ours] == [entry[:2] + entry[3:] for entry in theirs]  # (not idle)
        pairs.same("XINFO", "GROUPS", key)


def test_restored_redis_stream_like_redis(pair: Pair) -> None:
    """A stream RESTOREd from Redis's own DUMP (its nodes, tombstones and master fields)."""
    rng = random.Random(41)
    _fill(pair, rng, "s", 900)
    pair.same("XTRIM", "s", "MINID", "~", "40")
    payload = pair.theirs.call("DUMP", "s")
    head, _, rest = payload.partition(b"\r\n")
    pair.ours.call("DEL", "s")
    assert pair.ours.call("RESTORE", "s", "0", rest[:int(head[1:])]) == b"+OK\r\n"
    for start, end in [("-", "+"), ("(40-0", "+"), ("100", "(200-3"), ("5-3", "5-3")]:
        pair.same("XRANGE", "s", start, end)
        pair.same("XREVRANGE", "s", end, start, "COUNT", "77")
    pair.same("XREAD", "COUNT", "100", "STREAMS", "s", "150-2")


# ----------------------------------------------------------------------------- the output-buffer limit

LIMIT = ("--client-output-buffer-limit", "normal 4mb 0 0")


def test_a_limited_client_is_closed_without_the_whole_reply_built() -> None:
    """XRANGE / XREAD / XREADGROUP of a ~40 MB stream by a client whose hard limit is 4 MB:
    closed with nothing sent (XREADGROUP's deliveries made all the same), as Redis does, after the server wrote about the limit's worth (its peak RSS
    grows by far less than the reply), while a client under the limit gets the whole reply."""
    value = b"w" * 1000
    ours, theirs = start_dumpling(*LIMIT), start_redis(*LIMIT)
    try:
        for server in (ours, theirs):
            with server.raw() as conn:
                for batch in range(40):
                    conn.send(b"".join(encode_command("XADD", "s", "%d-0" % (batch * 1000 + i + 1), "f", value)
                                       for i in range(1000)))
                    for _ in range(1000):
                        conn.read_reply()
        for server in (ours, theirs):
            with server.raw() as conn:
                assert conn.call("XGROUP", "CREATE", "s", "g", "0") == b"+OK\r\n"
        before = peak_rss_mb(ours)
        for command in (("XRANGE", "s", "-", "+"), ("XREVRANGE", "s", "+", "-"), ("XREAD", "STREAMS", "s", "0"),
                        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")):
            for server in (ours, theirs):
                with server.raw() as victim, server.raw() as other:
                    victim.send(encode_command(*command))
                    assert other.call("PING") == b"+PONG\r\n"
                    assert victim.read_all(2.0) == b""
                    assert victim.is_closed(2.0)
            if command[0] == "XREAD":  # (XREADGROUP's PEL of 40k entries is memory of its own)
                assert peak_rss_mb(ours) - before < 20
        for server in (ours, theirs):
            with server.raw() as conn:
                assert conn.call("XRANGE", "s", "-", "+", "COUNT", "3000").startswith(b"*3000\r\n")
        with ours.raw() as mine, theirs.raw() as real:  # (the closed reader's entries were delivered)
            assert mine.call("XPENDING", "s", "g") == real.call("XPENDING", "s", "g")
            assert mine.call("XINFO", "GROUPS", "s") == real.call("XINFO", "GROUPS", "s")
    finally:
        ours.stop()
        theirs.stop()
