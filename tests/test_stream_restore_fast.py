"""RESTORE (and RDB load) of a stream with each node listpack read in C
(``dumpling._collections.stream_load_node`` through ``payload.stream._decode_nodes_native``)
against the Python decoder it replaces (``_decode_node``/``_loaded_nodes``, the reference):
the same value to the byte - entries, the EntryMap's packed chunks, the radix-tree nodes with
their tombstones, counts and listpack sizes, consumer groups, DUMP bytes after - for random
streams (master fields or others, int-like and long values, wrapping ID deltas, XDEL and XTRIM
tombstones, groups), sanitized or not; the same refusals for corrupt node listpacks; the
reference's answer when a payload's IDs are out of order; and real Redis's DUMPs of streams
restored into us read back as Redis reads them."""

from __future__ import annotations

import gc
import random
import sys
from typing import Any

import pytest
import redis

from dumpling import accel
from dumpling.datatypes.streams import EntryMap, StreamValue
from dumpling.payload import compression
from dumpling.payload import stream as stream_payload
from dumpling.payload.decode import decode_payload
from dumpling.payload.encode import encode_payload
from dumpling.payload.errors import PayloadError
from dumpling.payload.options import CodecOptions
from tests.streamgen import random_stream
from tests.test_stream_node_listpack import _stream, _with_groups

native = pytest.mark.skipif(accel.collections is None, reason="dumpling._collections not built")

PLAIN = CodecOptions()
DEEP = CodecOptions(sanitize_payload="yes")


def _snapshot(v: StreamValue) -> tuple[Any, ...]:
    """Everything a restored stream holds, its packed layout included."""
    e = v.entries
    assert type(e) is EntryMap
    chunks = [(bytes(k), bytes(c.data), bytes(c.ends), c.master) for k, c in zip(e._keys, e._vals, strict=True)]
    nodes = None if v._nodes is None else [
        (n.master_id, n.master_fields, n.last_id, n.dead, n.live, n.deleted, n.entries_bytes, n.fields_bytes)
        for n in v._nodes.values()]
    groups = [(g.name, g.last_id, g.entries_read, [(i, p.consumer, p.delivery_time_ms, p.delivery_count)
                                                    for i, p in g.pending.items()],
               [(c.name, c.seen_time_ms, c.active_time_ms, list(c.pending)) for c in g.consumers.values()])
              for g in v.groups.values()]
    return (list(e.items()), chunks, bytes(e._maxes), len(e), nodes, v.last_id, v.first_id, v.entries_added,
            v.max_deleted_id, groups)


def _outcome(payload: bytes, options: CodecOptions) -> tuple[Any, ...] | str:
    try:
        decoded = decode_payload(payload, options)
    except PayloadError:
        return "refused"
    value = decoded.value
    return (_snapshot(value), encode_payload(value, 11), decoded.sanitizations)


def _both(monkeypatch: pytest.MonkeyPatch, payload: bytes, options: CodecOptions) -> tuple[Any, Any]:
    ours = _outcome(payload, options)
    with monkeypatch.context() as m:
        m.setattr(stream_payload, "_native_load_nodes", None)
        reference = _outcome(payload, options)
    return ours, reference


def _streams(seed: int) -> list[StreamValue]:
    rng = random.Random(seed)
    out = []
    for count, max_bytes, max_entries in [(400, 4096, 100), (300, 300, 5), (2600, 1 << 30, 0), (50, 4096, 100)]:
        for r in range(3):
            s = _stream(rng, count, max_bytes, max_entries, big_ids=r == 1)
            out.append(_with_groups(rng, s) if s.entries and r != 2 else s)
    return out


@native
@pytest.mark.parametrize("options", [PLAIN, DEEP], ids=["plain", "sanitized"])
def test_c_loads_what_the_reference_loads(monkeypatch: pytest.MonkeyPatch, options: CodecOptions) -> None:
    for s in _streams(3):
        for version in (9, 11):
            payload = encode_payload(s, version)
            ours, reference = _both(monkeypatch, payload, options)
            assert ours != "refused"
            assert ours == reference


@native
def test_the_c_path_runs_and_keeps_the_payload_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restored stream's nodes are the payload's (tombstones and all): DUMP gives the payload
    back; the whole node loop ran in C, its node map kept (no fallback to the reference)."""
    s = _stream(random.Random(8), 3000, 4096, 100)
    payload = encode_payload(s, 11)
    answers: list[Any] = []
    load_nodes = stream_payload._native_load_nodes

    def spy(*args: Any) -> Any:
        answers.append(load_nodes(*args))
        return answers[-1]

    monkeypatch.setattr(stream_payload, "_native_load_nodes", spy)
    restored = decode_payload(payload).value
    assert len(answers) == 1 and type(answers[0]) is tuple and answers[0][1] is not None
    assert restored._nodes is not None and any(n.dead for n in restored._nodes.values())
    assert encode_payload(restored, 11) == payload
    assert all(gc.is_tracked(n) == bool(n.dead) for n in restored._nodes.values())


@native
def test_loaded_chunks_are_exact_size_and_nodes_untracked() -> None:
    """The chunks' bytearrays, written in place while loading, are exact-size once full (as
    EntryMap._seal_last leaves them), whatever the entries' sizes; nodes without tombstones
    come out untracked by the cyclic GC, and what is loaded reads back as written."""
    rng = random.Random(5)
    s = StreamValue()
    for i in range(1, 3501):
        value = b"v" * rng.choice((1, 10, 70, 300)) if i % 500 else b"w" * 5000
        s.append((1000 + i, 0), [b"f", value] if i % 4 else [b"g%d" % i, b"%d" % i], 4096, 100)
    payload = encode_payload(s, 11)
    restored = decode_payload(payload).value
    e = restored.entries
    assert len(e._vals) == 4 and list(e.items()) == list(s.entries.items())
    for keys, chunk in list(zip(e._keys, e._vals, strict=True))[:-1]:
        for buf in (keys, chunk.data, chunk.ends):
            assert sys.getsizeof(buf) == sys.getsizeof(bytearray(buf))
    assert restored._nodes is not None and not any(gc.is_tracked(n) for n in restored._nodes.values())
    assert encode_payload(restored, 11) == payload


@native
def test_corrupt_node_listpacks_get_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every truncation point and random byte changes of small streams' bodies (uncompressed,
    checksum skipped): C and the reference both refuse, or both load the same value."""
    rng = random.Random(11)
    options = [CodecOptions(skip_checksum=True), CodecOptions(skip_checksum=True, sanitize_payload="yes")]
    raw = CodecOptions(rdbcompression=False)
    refused = loaded = 0
    for i in range(6):
        s = _stream(rng, 12, 4096, 5 if i % 2 else 100)
        if s.entries and i % 3 == 0:
            s = _with_groups(rng, s)
        payload = encode_payload(s, 11, raw)
        body = len(payload) - 10
        cases = [payload[:cut] + payload[body:] for cut in range(1, body, 3)]
        for _ in range(150):
            at = rng.randrange(1, body)
            cases.append(payload[:at] + bytes([rng.randrange(256)]) + payload[at + 1:])
        for case in cases:
            for opts in options:
                ours, reference = _both(monkeypatch, case, opts)
                assert ours == reference
                refused += ours == "refused"
                loaded += ours != "refused"
    assert refused and loaded


@native
def test_ids_out_of_order_are_the_references(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes in the wrong order (a payload no Redis writes): the C loop gives way and the
    reference sorts the entries and lays them out again; a duplicate ID is refused."""
    s = StreamValue()
    for i in range(1, 301):
        s.append((i, 0), [b"f", b"%d" % i], 4096, 100)
    payload = encode_payload(s, 11, CodecOptions(rdbcompression=False))
    nodes = list(s.nodes().values())
    assert len(nodes) == 3
    body = bytearray(payload[:-10])
    # type byte, node count (1 byte), then each node: key rdbString (1 + 16), listpack rdbString
    spans = []
    at = 2
    for _ in nodes:
        start = at
        at += 17
        first = body[at]
        assert first >> 6 == 1  # (a 14-bit length: the listpacks here are 256..16383 bytes)
        at += 2 + (((first & 0x3F) << 8) | body[at + 1])
        spans.append(bytes(body[start:at]))
    tail = bytes(body[at:])
    swapped = bytes([payload[0], 3]) + spans[1] + spans[0] + spans[2] + tail + payload[-10:]
    repeated = bytes([payload[0], 3]) + spans[0] + spans[1] + spans[1][:1] + b"\xff" * 16 + spans[1][17:] + tail + payload[-10:]
    for case in (swapped, repeated):
        for opts in (CodecOptions(skip_checksum=True), CodecOptions(skip_checksum=True, sanitize_payload="yes")):
            ours, reference = _both(monkeypatch, case, opts)
            assert ours == reference
    assert _both(monkeypatch, swapped, CodecOptions(skip_checksum=True))[0] != "refused"


def _without_active_time(reply: Any) -> Any:
    if not isinstance(reply, list):
        return reply
    out, i = [], 0
    while i < len(reply):
        if reply[i] == b"active-time":
            i += 2
            continue
        out.append(_without_active_time(reply[i]))
        i += 1
    return out


def test_redis_dumps_of_streams(monkeypatch: pytest.MonkeyPatch, real: redis.Redis, r: redis.Redis) -> None:
    """Streams built in real Redis (master fields and others, int values, XDEL, XTRIM, groups with
    a PEL): their DUMPs read the same through C and the reference, and once RESTOREd into us
    XRANGE, XINFO STREAM FULL and DUMP answer as Redis does."""
    rng = random.Random(4)
    pipe = real.pipeline(transaction=False)
    for i in range(1, 1500):
        fields = {"name": "n%d" % i, "n": i} if rng.random() < 0.7 else {"other": rng.choice(["", "-5", "x" * 70]), "k%d" % (i % 3): i}
        pipe.xadd("s", fields, id="%d-%d" % (1000 + i // 3, i % 3))
    pipe.execute()
    for i in rng.sample(range(1, 1500), 300):
        real.xdel("s", "%d-%d" % (1000 + i // 3, i % 3))
    real.xtrim("s", maxlen=1000, approximate=True)
    real.xgroup_create("s", "g", id="0")
    real.xreadgroup("g", "alice", {"s": ">"}, count=20)
    real.xreadgroup("g", "bob", {"s": ">"}, count=7)
    payload = real.dump("s")
    for opts in (PLAIN, DEEP):
        ours, reference = _both(monkeypatch, payload, opts)
        assert ours != "refused"
        assert ours == reference
    r.delete("s")
    r.restore("s", 0, payload)
    assert r.xrange("s") == real.xrange("s")
    # (Redis 7.0 has no consumer active-time; we answer as 7.2+ does)
    assert _without_active_time(r.execute_command("XINFO", "STREAM", "s", "FULL")) == real.execute_command(
        "XINFO", "STREAM", "s", "FULL")
    assert r.dump("s") == payload


@native
@pytest.mark.parametrize("options", [PLAIN, DEEP], ids=["plain", "sanitized"])
def test_random_streams_whole_node_loop(monkeypatch: pytest.MonkeyPatch, options: CodecOptions) -> None:
    """streamgen's random streams (nodes of mixed sizes, nodes over a chunk's 1000 entries,
    wrapping IDs, XDEL/XTRIM tombstones, groups), LZF-compressed or not, RDB 9 and 11: the one C
    call loads what the reference loads, sanitization counts included."""
    rng = random.Random(21)
    raw = CodecOptions(rdbcompression=False)
    for i in range(8):
        s = random_stream(rng, rng.choice([30, 700, 2500]), rng.choice([300, 4096, 1 << 30]),
                          rng.choice([(5,), (100,), (0,), (3, 100, 2000)]), big_ids=i % 3 == 1)
        if s.entries and i % 2 == 0:
            s = _with_groups(rng, s)
        for version in (9, 11):
            for encode_options in (CodecOptions(), raw):
                payload = encode_payload(s, version, encode_options)
                ours, reference = _both(monkeypatch, payload, options)
                assert ours != "refused"
                assert ours == reference


def _node_spans(payload: bytes) -> tuple[int, list[tuple[int, int, int]], int]:
    """An uncompressed stream payload's node count position and each node's (start, key end,
    listpack end), and where the nodes end (every rdbString here a 6- or 14-bit length)."""
    at = 1
    count = payload[at]
    assert count < 0x40
    at += 1
    spans = []
    for _ in range(count):
        start = at
        assert payload[at] == 16
        at += 17
        key_end = at
        first = payload[at]
        if first < 0x40:
            at += 1 + first
        else:
            assert first >> 6 == 1
            at += 2 + (((first & 0x3F) << 8) | payload[at + 1])
        spans.append((start, key_end, at))
    return 1, spans, at


@native
def test_node_strings_in_every_rdb_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node key or listpack stored LZF-compressed (a key Redis would store raw), as an
    integer, with a 32-bit length, or in an unknown encoding: C and the reference give the same
    answer (loaded, or refused) for each."""
    s = StreamValue()
    for i in range(1, 121):
        s.append((1000 + i, 0), [b"f", b"%d" % i, b"name", b"x" * (i % 7)], 4096, 50)
    payload = encode_payload(s, 11, CodecOptions(rdbcompression=False))
    _, spans, _ = _node_spans(payload)
    start, key_end, lp_end = spans[1]
    key = payload[start + 1:key_end]
    lp_head = payload[key_end]
    lp = payload[key_end + (1 if lp_head < 0x40 else 2):lp_end]
    lzf_key = bytes([0xC3, 17, 16, 15]) + key  # one literal run: 16 bytes from 17
    cases = {
        "lzf key": lzf_key,
        "lzf key, wrong size": bytes([0xC3, 17, 15, 15]) + key,
        "int8 key": b"\xc0\x05",
        "int32 key": b"\xc2\x01\x02\x03\x04",
        "unknown key form": b"\xc9" + key,
        "32-bit length key": b"\x80\x00\x00\x00\x10" + key,
        "64-bit length key": b"\x81" + (16).to_bytes(8, "big") + key,
    }
    for name, new_key in cases.items():
        case = payload[:start] + new_key + payload[key_end:]
        for opts in (CodecOptions(skip_checksum=True), CodecOptions(skip_checksum=True, sanitize_payload="yes")):
            ours, reference = _both(monkeypatch, case, opts)
            assert ours == reference, name
            assert (ours == "refused") == ("int" in name or "unknown" in name or "wrong" in name), name
    lzf_lp = bytes([0xC3]) + bytes([0x40 | ((len(lp) + 8) >> 8), (len(lp) + 8) & 0xFF]) + bytes([0x40 | (len(lp) >> 8), len(lp) & 0xFF])
    literal = b"".join(bytes([min(32, len(lp) - i) - 1]) + lp[i:i + 32] for i in range(0, len(lp), 32))
    lp_cases = {
        "lzf listpack": bytes([0xC3]) + _len14(len(literal)) + _len14(len(lp)) + literal,
        "lzf listpack, bad size": bytes([0xC3]) + _len14(len(literal)) + _len14(len(lp) + 1) + literal,
        "int listpack": b"\xc1\x01\x02",
        "32-bit length listpack": b"\x80" + len(lp).to_bytes(4, "big") + lp,
    }
    assert lzf_lp  # (the header form; the literal runs are the payload)
    for name, new_lp in lp_cases.items():
        case = payload[:key_end] + new_lp + payload[lp_end:]
        for opts in (CodecOptions(skip_checksum=True), CodecOptions(skip_checksum=True, sanitize_payload="yes")):
            ours, reference = _both(monkeypatch, case, opts)
            assert ours == reference, name
            assert (ours == "refused") == ("int" in name or "bad" in name), name


def _len14(n: int) -> bytes:
    assert n < 0x4000
    return bytes([0x40 | (n >> 8), n & 0xFF])


@native
def test_listpack_checks_folded_into_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """listpack.count's checks, now made by the loader's one walk: a wrong total size, a
    missing terminator, a terminator among the entries, a back-length that lies, an unknown
    encoding byte, a count of fields past the listpack's end: the same answer both ways, deep
    or not (a back-length is only looked at when sanitizing)."""
    def node_listpack(count: int) -> tuple[bytes, int, int, bytearray]:
        s = StreamValue()
        for i in range(1, count + 1):
            s.append((500 + i, 0), [b"field", b"v%d" % i] if i % 3 else [b"other", b"%d" % (i * 1000), b"k", b"v"], 4096, 100)
        payload = encode_payload(s, 11, CodecOptions(rdbcompression=False))
        _, spans, _ = _node_spans(payload)
        _, key_end, lp_end = spans[0]
        lp_start = key_end + (1 if payload[key_end] < 0x40 else 2)
        return payload, key_end, lp_end, bytearray(payload[lp_start:lp_end])

    payload, key_end, lp_end, lp = node_listpack(40)
    one_less = node_listpack(39)[3]  # (the same bytes up to where the 40th entry starts)

    def with_lp(new: bytes | bytearray) -> bytes:
        head = bytes([len(new)]) if len(new) < 0x40 else _len14(len(new))
        return payload[:key_end] + head + bytes(new) + payload[lp_end:]

    cases: dict[str, bytes] = {}
    bad_total = bytearray(lp)
    bad_total[0] ^= 1
    cases["total size"] = with_lp(bad_total)
    no_end = bytearray(lp)
    no_end[-1] = 0xFE
    cases["no terminator"] = with_lp(no_end)
    cut = len(one_less) - 1
    cases["terminator inside"] = with_lp(lp[:cut] + b"\xff" * (len(lp) - cut))
    # the last entry before the terminator is an lp-count, a small int (0x00-0x7f then backlen 1)
    lied = bytearray(lp)
    lied[-2] = 2
    cases["back-length"] = with_lp(lied)
    unknown = bytearray(lp)
    unknown[-3] = 0xF7
    cases["unknown encoding"] = with_lp(unknown)
    short = bytearray(lp[:6]) + b"\x01\x01\x00\x01\x7f\x01\xff"  # count 0, deleted 0, 127 fields
    short[0:4] = len(short).to_bytes(4, "little")
    cases["fields past end"] = with_lp(short)
    answers = {}
    for name, case in cases.items():
        for opts in (CodecOptions(skip_checksum=True), CodecOptions(skip_checksum=True, sanitize_payload="yes")):
            ours, reference = _both(monkeypatch, case, opts)
            assert ours == reference, name
            answers[name, opts.sanitize_payload] = ours == "refused"
    assert answers["back-length", "yes"] and not answers["back-length", "no"]
    assert all(answers[name, mode] for name in ("total size", "no terminator", "unknown encoding", "fields past end")
               for mode in ("yes", "no"))
    assert answers["terminator inside", "yes"] and not answers["terminator inside", "no"]


@native
def test_c_lzf_expansion_is_the_references() -> None:
    """stream_load_nodes' own LZF expansion (``lzf_expand``) against ``compression.decompress``
    (python-lzf, or the pure reader): the same bytes for liblzf's output of random, repetitive
    and short inputs at their exact size, and the same refusal (None / LzfError) for a size one
    off, truncations and random byte changes of those streams, and random bytes."""
    expand = accel.collections.lzf_expand
    rng = random.Random(12)

    def reference(data: bytes, ulen: int) -> bytes | None:
        try:
            return compression.decompress(data, ulen)
        except compression.LzfError:
            return None

    def same(data: bytes, ulen: int) -> None:
        assert expand(data, ulen) == reference(data, ulen), (data.hex(), ulen)
        if not compression.ACCELERATED:
            return
        try:
            pure = compression.decompress_pure(data, ulen) if ulen <= compression.MAX_EXPANSION * len(data) else None
        except compression.LzfError:
            pure = None
        if pure is not None and len(pure) != ulen:
            pure = None  # (decompress_pure stops where the data does: decompress compares the size)
        assert expand(data, ulen) == (pure if ulen else b""), (data.hex(), ulen)

    originals = [b"", b"a", b"abc", b"ab" * 300, bytes(5000), rng.randbytes(3000)]
    for _ in range(150):
        unit = rng.randbytes(rng.randint(1, 12))
        text = b"".join(unit if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 40)) for _ in range(rng.randint(1, 200)))
        originals.append(text)
    originals.append(b"".join(b"field:%d value:%d " % (i, i) for i in range(2000)))
    checked = 0
    for raw in originals:
        packed = compression.compress_pure(raw, len(raw) + 64) if raw else None
        if packed is None:
            continue
        assert expand(packed, len(raw)) == raw
        same(packed, len(raw))
        same(packed, len(raw) - 1)
        same(packed, len(raw) + 1)
        same(packed, 0)
        for cut in {1, len(packed) // 2, len(packed) - 1}:
            same(packed[:cut], len(raw))
        for _ in range(8):
            bad = bytearray(packed)
            bad[rng.randrange(len(bad))] = rng.randrange(256)
            same(bytes(bad), len(raw))
        checked += 1
    for _ in range(300):
        data = rng.randbytes(rng.randint(1, 60))
        same(data, rng.randint(0, 400))
    assert checked > 100
