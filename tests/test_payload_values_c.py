"""The small values built in C (``_listpack.small_value``) and their DUMP bodies written in C
(``_listpack.dump_parts`` sealed by ``_speedups.small_payload``) against the Python readers and
writers of ``dumpling/payload/decode.py`` / ``encode.py``, which stay the reference.

Every payload of a corpus (values made by commands at each DUMP version, and forged blobs: unsorted
or duplicated zset entries, ``-0``/``inf`` scores, repeated set members and hash fields, lists cut
by every fill) is opened both ways under several limit settings: C must build an object whose
class and every slot (the SortedList's and PackedList's attributes too, floats by their sign) equal
the reader's, or decline; it must never make a value of a payload the reader refuses.  Then every
value's DUMP, at footers 10-12 with and without compression, must be the Python encoder's bytes
whenever C writes it.  The request-level comparison (natives, Python handlers, pure dispatcher) is
tests/test_dump_native.py.
"""

from __future__ import annotations

import gc
import random
from typing import Any

import pytest
from sortedcontainers import SortedList

from dumpling import collector, keytable
from dumpling.commands import dump as dump_commands
from dumpling.config import Config
from dumpling.datatypes import scoreindex
from dumpling.datatypes.sets import SetLimits
from dumpling.dispatch import Server
from dumpling.payload import PayloadError, bulk, decode, encode_payload, listpack
from dumpling.payload.envelope import reseal, seal
from dumpling.payload.options import CodecOptions
from dumpling.payload.packedlist import PackedList
from dumpling.payload.primitives import append_len, append_string, read_string
from dumpling.server import Client
from tests.fuzzing import scaled
from tests.servers import encode_command
from tests.test_fastpath_fuzz import Transport

pytestmark = pytest.mark.skipif(not decode.values_built or bulk.small_payload is None,
                                reason="the C builders need the payload accelerators")

OPTIONS = [
    CodecOptions(),
    CodecOptions(zset_max_listpack_entries=3, set_max_listpack_entries=3, set_max_intset_entries=4,
                 hash_max_listpack_entries=3, set_max_listpack_value=4, list_max_listpack_size=3),
    CodecOptions(list_max_listpack_size=-1, set_max_intset_entries=10_000),
    CodecOptions(list_max_listpack_size=0),
    CodecOptions(sanitize_payload="yes"),  # deep: C declines everything
]


def _plain(x: Any) -> Any:
    """A comparable picture of ``x``: types, order, float signs and nested attributes included."""
    if isinstance(x, SortedList):
        return ("SortedList", type(x), [(k, _plain(v)) for k, v in vars(x).items()])
    if type(x) is scoreindex.ScoreIndex:  # the C index: its entries in order (no Python attributes)
        x._check()
        return ("ScoreIndex", [_plain(item) for item in x])
    if isinstance(x, PackedList):
        return ("PackedList", [(name, _plain(getattr(x, name))) for name in PackedList.__slots__])
    if type(x) is keytable.KeyTable:  # a hashtable hash's fields: no defined order
        return (type(x), sorted((k, _plain(v)) for k, v in x.items()))
    if isinstance(x, dict):
        return (type(x), [(_plain(k), _plain(v)) for k, v in x.items()])
    if isinstance(x, set | frozenset):
        return (type(x), sorted(x))
    if isinstance(x, list | tuple):
        return (type(x), [_plain(i) for i in x])
    if isinstance(x, float):
        return (float, repr(x))
    return (type(x), x)


def state(value: Any) -> Any:
    """The class and every slot of a datatype value."""
    return (type(value), [(name, _plain(getattr(value, name, "<unset>"))) for name in type(value).__slots__])


def _body(type_byte: int, blob: bytes, compress: bool = True) -> bytes:
    out = bytearray((type_byte,))
    append_string(out, blob, compress)
    return seal(out, 10)


def _set_body(members: list[bytes]) -> bytes:
    out = bytearray((2,))
    append_len(out, len(members))
    for member in members:
        append_string(out, member, True)
    return seal(out, 10)


def _made_by_commands() -> list[bytes]:
    """DUMPs of values built by commands, at footers 10, 11 and 12."""
    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    rng = random.Random(12)
    setup: list[list[Any]] = []
    for n in (1, 2, 5, 10, 40, 200):
        setup.append(["HSET", f"h{n}", *[x for i in range(n) for x in (f"f{i}", rng.choice(["v", "12", "-3", "x" * 30]))]])
        setup.append(["ZADD", f"z{n}", *[x for i in range(n) for x in (rng.choice(["1", "-2.5", "0.1", "3e300", "inf",
                                                                                  "-inf", "0", "7"]), f"m{i}")]])
        setup.append(["RPUSH", f"l{n}", *[rng.choice(["a", "17", "-99999", "y" * 70]) + str(i) for i in range(n)]])
        setup.append(["SADD", f"i{n}", *[str(rng.randrange(-10**12, 10**12)) for _ in range(n)]])
        setup.append(["SADD", f"s{n}", *[f"member-{i}" for i in range(n)]])
        setup.append(["SADD", f"x{n}", *[str(i) for i in range(n - 1)], "not-int"])
    for argv in setup:
        client.data_received(encode_command(*argv))
    out = []
    db = server.keyspace.dbs[0]
    for version in (10, 11, 12):
        client.data_received(encode_command("CONFIG", "SET", "dump-rdb-version", version))
        server.dump_state.writer = None  # type: ignore[attr-defined]
        out += [dump_commands.dump_value(server, value) for value in db.data.values()]
    return out


def _forged() -> list[bytes]:
    """Blobs commands do not make: what a writer other than Redis (or a damaged one) may send."""
    lp = listpack.encode
    mixed = listpack.encode_mixed
    out = [
        _body(17, mixed([b"b", 2, b"a", 1])),  # unsorted
        _body(17, mixed([b"a", 1, b"b", 1, b"a", 3])),  # a duplicate member
        _body(17, mixed([b"a", b"-0", b"b", 0, b"c", b"-inf", b"d", b"1e400", b"e", b"x"])),
        _body(17, mixed([b"a", b"nan"])), _body(17, mixed([b"a"])), _body(17, mixed([])),
        _body(17, mixed([5, 1, 7, 2, -3, 3])),  # integer members
        _body(20, lp([b"a", b"b", b"a"])), _body(20, lp([b"1", b"x" * 100])), _body(20, lp([])),
        _body(11, bytes.fromhex("02000000" "03000000" "0100" "0200" "0100")),  # a repeated value
        _body(11, bytes.fromhex("0200000002000000ffff0100")), _body(11, b"\x03\x00\x00\x00"),
        _body(16, lp([b"f", b"1", b"g", b"2", b"f", b"3"])), _body(16, lp([b"f"])), _body(16, lp([])),
        _set_body([b"1", b"2", b"3"]), _set_body([b"a", b"b", b"a"]), _set_body([b"1", b"-0", b"x"]),
        _set_body([b"10", b"9", b"8", b"7", b"6"]), _set_body([b"abcdef", b"b"]), _set_body([b"1", b"1"]),
        _body(16, b"\x00" * 8), _body(17, b"\x07\x00\x00\x00\x01\x00\xff"),
    ]
    for items in ([b"a"], [b"x" * 5000, b"y"], [b"%d" % i for i in range(100)], [b"z" * 9000]):
        node = bytearray((18, 1, 2))
        append_string(node, lp(items), True)
        out.append(seal(node, 10))
        node = bytearray((18, 1, 2))
        append_string(node, lp(items), False)
        out.append(seal(node, 10))
    return out


CORPUS = _made_by_commands() + _forged()


def _opened(payload: bytes, options: CodecOptions, built_in_c: bool) -> Any:
    """The value ``open_value`` makes (C builders on or off), or the PayloadError's text."""
    saved = decode.values_built
    decode.values_built = built_in_c
    try:
        return decode.open_value(payload, options)[0]
    except PayloadError as exc:
        return str(exc)
    finally:
        decode.values_built = saved


def _c_value(payload: bytes, options: CodecOptions) -> Any:
    """What the native RESTORE builds of ``payload`` (None: declined, or not a type C builds):
    the body's one rdbString (a type-2 set's members) handed to ``small_value``."""
    end = len(payload) - 10
    if payload[0] == 2:
        if payload[1] >= 0x40:
            return None
        (members,), _ = bulk.read_records(payload, 2, end, payload[1], "s")
        blob, blob_end = members, 0
    elif payload[0] in (11, 16, 17, 20) or (payload[0] == 18 and payload[1:3] == b"\x01\x02"):
        blob, blob_end = read_string(payload, 3 if payload[0] == 18 else 1, end)
    else:
        return None
    return listpack.native.small_value(payload[0], blob, options, payload, blob_end)  # type: ignore[union-attr]


def _outcome(value: Any) -> Any:
    return value if isinstance(value, str) else state(value)


def test_c_builds_what_the_readers_build_or_declines() -> None:
    built = 0
    for payload in CORPUS:
        for options in OPTIONS:
            reference = _opened(payload, options, False)
            value = _c_value(payload, options)
            if isinstance(reference, str):  # the reader refuses it: C never makes a value of it
                assert value is None, (payload.hex(), reference)
            elif value is not None:
                assert not options.deep_sanitize
                built += 1
                assert state(value) == state(reference), (payload.hex(), options)
            # open_value with the builders on: the reader's outcome, refusals worded alike
            assert _outcome(_opened(payload, options, True)) == _outcome(reference)
    assert built > len(CORPUS)  # C built most of them (under several settings)


def test_the_common_small_values_are_built_in_c() -> None:
    """Redis's own forms of small values (each type of the small-key benchmark) never decline."""
    for payload in _made_by_commands():
        if payload[0] in (11, 16, 17, 20) or (payload[0] == 18 and payload[1:3] == b"\x01\x02"):
            assert _c_value(payload, CodecOptions()) is not None, payload.hex()


def test_dumps_written_in_c_are_the_encoders_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    values = []
    for payload in CORPUS:
        for options in OPTIONS[:2]:
            for built_in_c in (True, False):
                value = _opened(payload, options, built_in_c)
                if not isinstance(value, str):
                    values.append(value)
    written = 0
    for value in values:
        for version in (10, 11, 12):
            for compress in (True, False):
                c_payload = bulk.small_payload(value, version, compress)  # type: ignore[misc]
                with monkeypatch.context() as patch:
                    patch.setattr(bulk, "small_payload", None)
                    reference = encode_payload(value, version, CodecOptions(rdbcompression=compress))
                if c_payload is not None:
                    written += 1
                    assert c_payload == reference, (state(value), version, compress)
    assert written > len(values)


def test_a_written_value_is_dumped_from_its_new_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a write, a restored list's nodes no longer describe it (C declines) and the other
    values are written from their new state, never from the payload they came from."""
    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    for argv in (["RPUSH", "l", "a", "b"], ["SADD", "s", "a", "b"], ["SADD", "i", 1, 2], ["ZADD", "z", 1, "a"],
                 ["HSET", "h", "f", "v"]):
        client.data_received(encode_command(*argv))
    db = server.keyspace.dbs[0]
    writes = {
        b"l": lambda v: v.push([b"c"], False, -2),
        b"s": lambda v: v.add(b"c", SetLimits(512, 128, 64)),
        b"i": lambda v: v.add(b"3", SetLimits(512, 128, 64)),
        b"z": lambda v: v.add_checked(b"b", 2.0, 128, 64),
        b"h": lambda v: v.fields.__setitem__(b"g", b"w"),
    }
    for key, write in writes.items():
        payload = dump_commands.dump_value(server, db.data[key])
        value = decode.open_value(payload)[0]
        assert bulk.small_payload(value, 10, True) == payload  # type: ignore[misc]
        write(value)
        written = bulk.small_payload(value, 10, True)  # type: ignore[misc]
        with monkeypatch.context() as patch:
            patch.setattr(bulk, "small_payload", None)
            reference = encode_payload(value, 10)
        assert reference != payload
        assert written == (None if key == b"l" else reference)


@pytest.mark.skipif(not collector.ACCELERATED, reason="untracking needs dumpling._untrack")
def test_stored_small_values_leave_the_collectors_sight() -> None:
    """A zset built in C holds its (score, member) tuples untracked from the start, so
    collector.stored can untrack the whole value (a tracked tuple shared by the SortedList's
    sublist and _maxes kept every restored zset, its SortedList and lists tracked: each young
    and full collection walked them)."""
    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    payloads = [p for p in _made_by_commands() if p[0] in (2, 11, 16, 17, 18, 20)][:40]
    for n, payload in enumerate(payloads):
        client.data_received(encode_command("RESTORE", f"k{n}", 0, payload))
    assert transport.data.count(b"+OK") == len(payloads)
    values = list(server.keyspace.dbs[0].data.values())
    assert {type(v).__name__ for v in values} == {"HashValue", "ZSetValue", "ListValue", "SetValue"}
    assert [v for v in values if gc.is_tracked(v)] == []


def test_damaged_payloads_are_refused_alike() -> None:
    """Random byte changes inside the bodies (CRC fixed up): C builds the reader's value or
    declines, and never makes a value of a payload the reader refuses."""
    rng = random.Random(77)
    pool = [p for p in CORPUS if p[0] in (2, 11, 16, 17, 18, 20)]
    for _ in range(scaled(800)):
        payload = bytearray(rng.choice(pool))
        for _ in range(rng.randint(1, 3)):
            payload[rng.randrange(1, len(payload) - 10)] = rng.randrange(256)
        damaged = reseal(bytes(payload))
        options = rng.choice(OPTIONS[:4])
        reference = _opened(damaged, options, False)
        try:
            value = _c_value(damaged, options)
        except PayloadError:  # the members' rdbStrings of a type-2 body, read before C builds
            value = None
        if isinstance(reference, str):
            assert value is None, (damaged.hex(), reference)
        elif value is not None:
            assert state(value) == state(reference), damaged.hex()
        assert _outcome(_opened(damaged, options, True)) == _outcome(reference)


def test_score_text_for_footer_10_is_printf_17g() -> None:
    """A listpack score's text for footers <= 10 (%.17g) made in C without PyOS_double_to_string
    for 1e-4 <= |score| < 1e16: the same bytes on random doubles, halves and binary fractions."""
    rng = random.Random(17)
    scores = [1e-4, 9.999999999999999e15, 0.1, 0.67, 2.669, 1e15 + 0.5, 1234567890123456.25, 5e-324, 1e300]
    for _ in range(scaled(40_000)):
        scores.append(rng.uniform(-1, 1) * 10 ** rng.uniform(-6, 17))
        scores.append(rng.randrange(1, 10**12) + rng.randrange(1, 1 << 20) / (1 << 20))
        scores.append(float(f"{rng.randrange(1, 10**6)}e{rng.randrange(-9, 12)}"))
    for score in scores:
        for value in (score, -score):
            got = listpack.native.zset_entries([(value, b"m")], None)  # type: ignore[union-attr]
            if not isinstance(got[1], int):
                assert got[1] == b"%.17g" % value, repr(value)
