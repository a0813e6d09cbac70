"""``dumpling._hllgeo`` (the C HyperLogLog and GEO loops) against the pure-Python
reference in ``dumpling.hyperloglog`` / ``dumpling.geohash``, on random and forged
inputs: the same bytes, numbers and refusals, and no read outside a forged string.  Then
the commands end to end: the same random HLL and GEO commands to real Redis, to dumpling
and to dumpling with ``DUMPLING_PURE=1``, replies and values compared byte for byte.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator

import pytest

from dumpling import accel
from dumpling import geohash as gh
from dumpling import hyperloglog as hll
from tests.servers import ServerProcess, oracle_trio

C = accel.hllgeo
pytestmark = pytest.mark.skipif(C is None, reason="dumpling._hllgeo not built")


# ----------------------------------------------------------------------------- HyperLogLog


def _sparse_with(rng: random.Random, n: int, max_bytes: int = 3000) -> bytearray:
    value = hll.new_sparse()
    hll.add_all(value, [rng.randbytes(6) for _ in range(n)], max_bytes)
    return value


FORGED_BODIES = [b"", b"\x7f", b"\x40", b"\x7f\xff", b"\x7f\xfe", b"\x7f\xff\x00", b"\x7f\xff\x7f\xff",
                 b"\x3f" * 256, b"\x3f" * 257, b"\xff" * 4096, b"\xff" * 4097, b"\xfc\x7f\xfe", b"\x83\x83\x7f\xf7",
                 b"\x80\x84\x88\x7f\xfc", b"\x00" * (2 * hll.REGISTERS + 1), b"\x7f\xff" * 2]


def _hll_values(rng: random.Random) -> Iterator[bytearray]:
    """Valid sparse and dense HLLs, then forged sparse bodies: flipped bytes, truncations,
    random bytes, extra bytes and the hand-made ones above (all pass ``is_valid``)."""
    for n in (0, 1, 5, 50, 300, 1500, 5000):
        yield _sparse_with(rng, n)
    for body in FORGED_BODIES:
        yield bytearray(hll.new_sparse()[:16] + body)
    for _ in range(120):
        base = _sparse_with(rng, rng.choice([0, 3, 40, 300]))
        body = bytearray(base[16:])
        kind = rng.randrange(4)
        if kind == 0 and body:
            body[rng.randrange(len(body))] = rng.randrange(256)
        elif kind == 1:
            del body[rng.randrange(len(body) + 1):]
        elif kind == 2:
            body = bytearray(rng.randbytes(rng.randrange(1, 60)))
        else:
            body += rng.randbytes(rng.randrange(1, 4))
        yield bytearray(base[:16] + body)


def test_murmurhash_matches() -> None:
    rng = random.Random(1)
    for n in list(range(40)) + [1000, 4097]:
        data = rng.randbytes(n)
        assert C.murmurhash64a(data) == hll.murmurhash64a(data)


def test_pfadd_loop_edits_exactly_as_the_reference() -> None:
    rng = random.Random(2)
    outcomes = {"changed": 0, "corrupt": 0, "promoted": 0}
    for value in _hll_values(rng):
        assert hll.is_valid(value)
        for max_bytes in (3000, 30, len(value) + 3, 25000):
            elements = [rng.randbytes(rng.randrange(0, 9)) for _ in range(rng.choice([1, 2, 9, 40, 150]))]
            ours, theirs = bytearray(value), bytearray(value)
            assert C.hll_add(ours, elements, max_bytes) == hll.add_all(theirs, elements, max_bytes)
            assert ours == theirs
            outcomes["changed"] += ours != value
            outcomes["corrupt"] += C.hll_add(bytearray(value), elements, max_bytes)[1]
            outcomes["promoted"] += ours[4] == hll.DENSE and value[4] == hll.SPARSE
    assert all(n > 10 for n in outcomes.values()), outcomes  # every branch was exercised


def test_count_merge_and_estimate_match() -> None:
    rng = random.Random(3)
    refused = 0
    for value in _hll_values(rng):
        try:
            expected: int | None = hll.count(value)
        except hll.CorruptHLL:
            expected = None
        assert C.hll_count(value) == C.hll_count(bytes(value)) == expected
        registers = bytearray(rng.randrange(34) for _ in range(hll.REGISTERS)) if rng.random() < 0.5 \
            else bytearray(hll.REGISTERS)
        ours = bytearray(registers)
        try:
            theirs = hll.merge_into(registers, value)
            fine = True
        except hll.CorruptHLL:
            theirs, fine = bytes(registers), False
        assert C.hll_merge(ours, value) is fine
        assert ours == theirs
        refused += not fine
        assert C.hll_estimate(ours) == hll.estimate(hll.histogram_of_linear(ours))
    assert refused > 20
    for registers in (bytes(hll.REGISTERS), bytes([63]) * hll.REGISTERS, bytes([1]) * hll.REGISTERS,
                      bytes([51]) * hll.REGISTERS, bytes(range(64)) * 256):
        assert C.hll_estimate(registers) == hll.estimate(hll.histogram_of_linear(registers))


def test_entry_points_switch_between_c_and_pure() -> None:
    rng = random.Random(4)
    results = []
    for enabled in (True, False):
        hll.use_native(enabled)
        try:
            value = hll.new_sparse()
            added = hll.add_elements(value, [rng.randbytes(5) for _ in range(400)], 3000)
            registers = hll.new_registers()
            fine = hll.merge_registers(registers, value)
            forged = bytearray(value[:16] + b"\x7f")
            results.append((added, bytes(value), hll.count_or_none(value), fine, bytes(registers),
                            hll.estimate_registers(registers), hll.count_or_none(forged),
                            hll.merge_registers(registers, forged)))
        finally:
            hll.use_native(True)
        rng = random.Random(4)
    assert results[0] == results[1]


def test_c_refuses_what_is_not_an_hll() -> None:
    """What the commands check before calling (``is_valid``) C checks again: a wrong length
    or header is a ValueError, never a read past the end."""
    sparse = hll.new_sparse()
    dense = bytearray(sparse)
    hll.sparse_to_dense(dense)
    for bad in (b"", b"HYLL", sparse[:15], b"HYLX" + sparse[4:], dense[:-1], dense + b"\x00",
                bytes([*sparse[:4], 2]) + sparse[5:]):
        with pytest.raises(ValueError):
            C.hll_add(bytearray(bad), [b"x"], 3000)
        with pytest.raises(ValueError):
            C.hll_count(bad)
        with pytest.raises(ValueError):
            C.hll_merge(bytearray(hll.REGISTERS), bad)
    with pytest.raises(ValueError):
        C.hll_estimate(bytes(100))
    with pytest.raises(ValueError):
        C.hll_estimate(bytes([64]) * hll.REGISTERS)
    with pytest.raises(TypeError):
        C.hll_add(bytearray(sparse), ["text"], 3000)
    ours, theirs = bytearray(sparse), bytearray(sparse)
    elements = [bytearray(b"raw"), memoryview(b"view"), b"bytes"]
    assert C.hll_add(ours, elements, 3000) == hll.add_all(theirs, elements, 3000)  # bytes-like, as Python
    assert ours == theirs


# ----------------------------------------------------------------------------- the C loop's handlers


def _loop_reads(rng: random.Random) -> Iterator[list[tuple[bytes | str, ...]] | str]:
    """Reads of pipelined HLL commands for ``_run_loop``, and (as strings) the steps it
    takes between reads: every path the C handlers take or decline."""
    keys = ["h1", "h2", "h3", "gone"]
    sparse = hll.new_sparse()
    forged = bytes(sparse[:16]) + b"\x5f\xff"  # registers 0..8191 only: corrupt past them
    for round_ in range(12):
        read: list[tuple[bytes | str, ...]] = []
        for _ in range(rng.choice([1, 16, 40])):
            key = rng.choice(keys)
            op = rng.random()
            if op < 0.55:
                # enough distinct elements for h1 to go dense (h2, h3 stay sparse longer)
                spread = 10**6 if key == "h1" else 3000
                read.append(("PFADD", key, *[b"%d" % rng.randrange(spread) for _ in range(rng.choice([0, 1, 3, 30]))]))
            elif op < 0.85:
                read.append(("PFCOUNT", key))
            elif op < 0.9:
                read.append(("PFCOUNT", *rng.sample(keys, 2)))
            else:
                read.append(("GET", key))
        yield read
        if round_ == 3:
            yield [("SET", "bytes", bytes(sparse)), ("PFADD", "bytes", "a"), ("PFADD", "bytes", "b"),
                   ("SET", "forged", forged), ("PFCOUNT", "forged"), ("PFADD", "forged", "x"),
                   ("PFADD", "forged", *[b"%d" % i for i in range(300)]), ("GET", "forged"), ("PFCOUNT", "forged"),
                   ("SET", "short", "HYLL"), ("APPEND", "short", b"\x00"), ("PFADD", "short", "x"),
                   ("PFCOUNT", "short"), ("RPUSH", "list", "x"), ("PFADD", "list", "x"), ("PFCOUNT", "list"),
                   ("PFCOUNT", "nothing"), ("PFADD", "h1", "x", "y"), ("PFADD",), ("PFCOUNT",)]
        if round_ == 5:
            yield "ttls"  # h1 and h2 get a TTL that has passed, h3 one to come
        if round_ == 7:
            yield [("CONFIG", "SET", "slowlog-log-slower-than", "0"), ("SLOWLOG", "RESET")]
            yield [("PFADD", "h3", "s1"), ("PFCOUNT", "h3"), ("PFADD", "h3", "s1")]
            yield [("SLOWLOG", "LEN"), ("CONFIG", "SET", "slowlog-log-slower-than", "10000")]
        if round_ == 9:
            yield [("CONFIG", "SET", "hll-sparse-max-bytes", "40")]


def _run_loop(native: bool, resp: int) -> tuple:
    """The reads of ``_loop_reads`` through an in-process server's C request loop, with the C
    handlers attached or not: the bytes written back, the keyspace and the counters."""
    from dumpling.commands import hyperloglog as commands
    from dumpling.commands.registry import ORIGINAL
    from dumpling.config import Config
    from dumpling.dispatch import Server
    from dumpling.server import Client
    from tests.servers import encode_command
    from tests.test_fastpath_fuzz import Transport

    handled = {b"pfadd": 0, b"pfcount": 0}
    originals = {name: ORIGINAL[name].handler for name in handled}

    def counting(name: bytes):  # the Python handlers' calls: what the C handlers declined
        def handler(c, argv):
            handled[name] += 1
            return originals[name](c, argv)
        return handler

    commands.use_native_handlers(native)
    for name in handled:
        ORIGINAL[name].handler = counting(name)
    before = {name: ORIGINAL[name].calls for name in handled}
    try:
        server = Server(Config())
        client = Client(server)
        transport = Transport()
        client.connection_made(transport)  # type: ignore[arg-type]
        client.data_received(encode_command("HELLO", str(resp)))
        db = server.keyspace.dbs[0]
        for read in _loop_reads(random.Random(7 + resp)):
            if read == "ttls":
                db.set_expire(b"h1", 1)
                db.set_expire(b"h2", 1)
                db.set_expire(b"h3", 1 << 50)
                continue
            client.data_received(b"".join(encode_command(*cmd) for cmd in read))
        state = sorted((key, bytes(value) if isinstance(value, bytes | bytearray) else type(value).__name__,
                        type(value).__name__, db.expires.get(key), db.field(key) is not None) for key, value in db.data.items())
        calls = {name: ORIGINAL[name].calls - before[name] for name in handled}
        counters = (server.stat_commands, server.keyspace.dirty, server.keyspace.stat_hits,
                    server.keyspace.stat_misses, dict(server.errorstats), calls)
        return bytes(transport.data), state, counters, dict(handled)
    finally:
        for name, handler in originals.items():
            ORIGINAL[name].handler = handler
        commands.use_native_handlers(True)


@pytest.mark.skipif(accel.fastpath is None, reason="C fast path not built")
@pytest.mark.parametrize("resp", [2, 3])
def test_loop_handlers_do_what_the_python_handlers_do(resp: int) -> None:
    """PFADD and PFCOUNT run by their C handlers from the request loop, or declined to the
    Python handlers, leave the same replies, values, TTLs, counters and statistics as the
    Python handlers alone; most calls do not reach Python (the handlers do run)."""
    with_c, reference = _run_loop(True, resp), _run_loop(False, resp)
    assert with_c[0] == reference[0]
    assert with_c[1] == reference[1]
    assert with_c[2] == reference[2]
    declined, total = with_c[3], reference[3]
    assert total[b"pfadd"] > 100 and total[b"pfcount"] > 60
    assert declined[b"pfadd"] < total[b"pfadd"] / 4 and declined[b"pfcount"] < total[b"pfcount"] / 4
    assert b"INVALIDOBJ" in with_c[0] and b"WRONGTYPE" in with_c[0]


# ----------------------------------------------------------------------------- GEO


def _coordinate(rng: random.Random) -> tuple[float, float]:
    kind = rng.random()
    lon = rng.choice([-1, 1]) * rng.uniform(179.0, 180.0) if kind < 0.15 else rng.uniform(-180, 180)
    lat = rng.choice([-1, 1]) * rng.uniform(84.0, gh.LAT_MAX) if kind > 0.85 else rng.uniform(gh.LAT_MIN, gh.LAT_MAX)
    return lon, lat


def test_decode_matches_on_every_kind_of_score() -> None:
    rng = random.Random(5)
    scores = [0.0, -0.0, float((1 << 52) - 1), float(1 << 52), -1.0, -1e300, 1e300, 9.2e18, 9.3e18, 2.0**63,
              2.0**64, -(2.0**63), -(2.0**64), math.inf, -math.inf, math.nan, 0.5, 1e-300]
    scores += [float(gh.score_of(*_coordinate(rng))) for _ in range(2000)]
    scores += [rng.uniform(-1e20, 1e20) for _ in range(300)]
    for score in scores:
        assert C.geo_decode(score) == gh.decode_score(score), score


def _shape(rng: random.Random) -> gh.Shape:
    lon, lat = _coordinate(rng)
    return gh.Shape(kind=rng.choice([gh.CIRCLE, gh.BOX]), longitude=lon, latitude=lat,
                    conversion=rng.choice([1.0, 1000.0, 0.3048, 1609.34]),
                    radius=rng.choice([0.0, rng.uniform(0, 3e6), rng.uniform(0, 30)]),
                    width=rng.uniform(0, 6e6), height=rng.uniform(0, 6e6))


def test_search_cells_match() -> None:
    """The centre cell, its neighbours and which of them are left out, for circles and
    boxes anywhere (poles, antimeridian), of every size down to 0 and up to infinity."""
    rng = random.Random(11)
    for _ in range(5000):
        shape = _shape(rng)
        shape.radius = rng.choice([shape.radius, 1e-300, 1e308, math.inf])
        shape.width = rng.choice([shape.width, 0.0, math.inf])
        shape.longitude = rng.choice([shape.longitude, -180.0, 180.0])
        expected = gh.search_cells(shape)
        assert C.geo_cells(shape.kind, shape.longitude, shape.latitude, shape.conversion, shape.radius,
                           shape.width, shape.height) == expected, shape


def test_search_finds_sorts_and_cuts_the_same_points() -> None:
    """collect_points: the scan of each span (stopping at COUNT ... ANY's limit), the sort
    (none, ascending, descending: qsort of all or pqsort of the first COUNT) and the cut,
    C against the reference, ties included (repeated coordinates)."""
    rng = random.Random(6)
    hits = 0
    for _ in range(150):
        shape = _shape(rng)
        near = [(shape.longitude + rng.uniform(-3, 3), shape.latitude + rng.uniform(-3, 3)) for _ in range(100)]
        points = [(min(max(x, -180.0), 180.0), min(max(y, gh.LAT_MIN), gh.LAT_MAX)) for x, y in near]
        points += [_coordinate(rng) for _ in range(100)] + [points[0]] * 5
        items = sorted((float(gh.score_of(x, y)), b"m%d" % i) for i, (x, y) in enumerate(points))
        cut = rng.randrange(len(items))
        limit = rng.choice([0, 0, 1, 5])
        order = rng.choice([gh.SORT_NONE, gh.SORT_ASC, gh.SORT_DESC])
        count = rng.choice([0, 1, 3, 50, limit])
        found: dict[bool, list[gh.Point]] = {}
        for enabled in (True, False):
            gh.use_native(enabled)
            try:
                found[enabled] = gh.collect_points([iter(items[:cut]), (), items[cut:]], shape, limit, order, count)
            finally:
                gh.use_native(True)
        assert found[True] == found[False]
        hits += len(found[True])
    assert hits > 500


def test_search_with_nan_distances_is_sorted_by_the_reference() -> None:
    """A NaN centre (not reachable from a command, which checks coordinates) makes every
    distance NaN: C hands the points back unsorted and the reference sorts them."""
    rng = random.Random(12)
    items = sorted((float(gh.score_of(*_coordinate(rng))), b"m%d" % i) for i in range(60))
    for count in (0, 3):
        for order in (gh.SORT_ASC, gh.SORT_DESC):
            shape = gh.Shape(kind=gh.CIRCLE, longitude=math.nan, latitude=10.0, conversion=1.0, radius=1e6)
            members = []
            for enabled in (True, False):
                gh.use_native(enabled)
                try:
                    members.append([p[2] for p in gh.collect_points([items], shape, 0, order, count)])
                finally:
                    gh.use_native(True)
            assert members[0] == members[1] and len(members[0]) == (count or 60)


def _cmp(a: gh.Point, b: gh.Point) -> int:
    return 1 if a[0] > b[0] else (0 if a[0] == b[0] else -1)


def test_pqsort_moves_points_as_the_reference() -> None:
    """Same order of ties too: distances drawn from few values, NaNs among them."""
    rng = random.Random(7)
    for n in (0, 1, 2, 6, 7, 8, 40, 41, 100, 1000):
        for _ in range(6):
            values = [float(rng.randrange(8)) for _ in range(n)] if rng.random() < 0.5 \
                else [rng.uniform(0, 1e6) for _ in range(n)]
            if n and rng.random() < 0.2:
                values[rng.randrange(n)] = math.nan
            points = [(v, float(i), b"m%d" % i, 0.0, 0.0) for i, v in enumerate(values)]
            for descending in (False, True):
                count = rng.randint(1, max(1, n))
                ours, theirs = list(points), list(points)
                assert C.geo_pqsort(ours, descending, 0, count - 1)
                cmp = (lambda a, b: -_cmp(a, b)) if descending else _cmp
                gh.partial_sort(theirs, cmp, 0, count - 1)
                assert [p[2] for p in ours] == [p[2] for p in theirs]


def test_sort_nearest_switches_between_c_and_pure() -> None:
    rng = random.Random(8)
    points = [(float(rng.randrange(30)), 0.0, b"m%d" % i, 0.0, 0.0) for i in range(300)]
    for count in (1, 10, 299, 300, 400):
        for descending in (False, True):
            sorted_by: list[list[gh.Point]] = []
            for enabled in (True, False):
                gh.use_native(enabled)
                try:
                    work = list(points)
                    gh.sort_nearest(work, descending, count)
                    sorted_by.append(work)
                finally:
                    gh.use_native(True)
            assert sorted_by[0] == sorted_by[1]
            best = sorted(p[0] for p in points)
            best = best[::-1] if descending else best
            assert [p[0] for p in sorted_by[0][:count]] == best[:count]


def test_text_and_reply_bytes_match() -> None:
    rng = random.Random(9)
    values = [0.0, -0.0, 1e-5, 0.00005, 0.00004999, 1.23455, -2.5, 1e15, 9.3e14, 1e300, -1e300, math.nan,
              math.inf, -math.inf, 2.0**-18, 180.0, -180.0, gh.LAT_MAX, gh.LAT_MIN, 5e-324]
    values += [rng.uniform(-200, 200) for _ in range(500)] + [rng.uniform(0, 2e7) for _ in range(500)]
    # %.17f rounds exact ties to even: k * 2^-18 has 18 decimals ending in 5
    values += [sign * (whole + k * 2.0**-18) for k in range(1, 64) for whole in (0, 1, 13, 179) for sign in (1, -1)]
    values += [183.99999999999997, 184.0, -184.0, 1e-17, 5e-18, 1.5e-17, -5e-18]
    for value in values:
        assert C.format_distance(value) == gh.format_distance(value), value
        if not math.isnan(value):
            assert C.format_coordinate(value) == gh.format_coordinate(value), value
    points: list[gh.Point] = []
    for _ in range(60):
        lon, lat = _coordinate(rng)
        score = float(gh.score_of(lon, lat))
        x, y = gh.decode_score(score)
        points.append((rng.choice([0.0, rng.uniform(0, 2e7)]), score, rng.randbytes(rng.randrange(12)), x, y))
    points.append((1.0, 2.0**70, b"odd score", 0.0, 0.0))
    scores: list[float | None] = [p[1] for p in points] + [None, None]
    rng.shuffle(scores)
    for resp3 in (False, True):
        for flags in ((True, False, False), (False, True, False), (False, False, True), (True, True, True)):
            for conversion in (1.0, 1000.0, 0.3048):
                expected = []
                for enabled in (True, False):
                    gh.use_native(enabled)
                    try:
                        expected.append(gh.points_reply(points, conversion, *flags, resp3))
                    finally:
                        gh.use_native(True)
                assert expected[0] == expected[1]
        pure = []
        for enabled in (True, False):
            gh.use_native(enabled)
            try:
                pure.append(gh.positions_reply(scores, resp3))
            finally:
                gh.use_native(True)
        assert pure[0] == pure[1]


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def trio() -> Iterator[list[ServerProcess]]:
    with oracle_trio() as servers:
        yield servers


def _commands(rng: random.Random) -> Iterator[tuple[bytes | str, ...]]:
    keys = ["h1", "h2", "h3"]
    for _ in range(150):
        key = rng.choice(keys)
        op = rng.random()
        if op < 0.5:
            yield ("PFADD", key, *[b"%d" % rng.randrange(10**5) for _ in range(rng.choice([1, 5, 60, 400]))])
        elif op < 0.7:
            yield ("PFCOUNT", *rng.sample(keys, rng.randint(1, 3)))
        elif op < 0.8:
            yield ("PFMERGE", key, *rng.sample(keys, rng.randint(0, 3)))
        else:
            yield ("GET", key)
    forged = struct.pack("<4sB3sQ", b"HYLL", hll.SPARSE, bytes(3), 0) + b"\x7f\xfe\x80"
    yield ("SET", "forged", forged)
    yield ("PFADD", "forged", *[b"%d" % i for i in range(50)])
    yield ("GET", "forged")
    yield ("PFCOUNT", "forged")
    yield ("PFCOUNT", "h1", "forged")
    for head in (b"HYLL\x01", b"HYLL\x00" + bytes(11)):  # too short, as raw strings (APPEND)
        yield ("SET", "short", head[:4])
        yield ("APPEND", "short", head[4:] + b"\x00")
        yield ("PFCOUNT", "short")
        yield ("PFADD", "short", "x")
    places = []
    for i in range(400):
        lon, lat = _coordinate(rng) if i % 2 else (13.5 + rng.uniform(-2, 2), 38 + rng.uniform(-2, 2))
        places += [repr(lon), repr(lat), f"p{i}"]
    yield ("GEOADD", "geo", *places)
    for _ in range(40):
        lon, lat = (repr(v) for v in _coordinate(rng)) if rng.random() < 0.5 else ("13.5", "38")
        radius = repr(rng.choice([0, 10, 5000, 100_000, 500_000, 5_000_000]))
        extras = [flag for flag in ("WITHCOORD", "WITHDIST", "WITHHASH") if rng.random() < 0.4]
        order = rng.choice([[], ["ASC"], ["DESC"]])
        count = rng.choice([[], ["COUNT", "3"], ["COUNT", "20", "ANY"]])
        yield ("GEOSEARCH", "geo", "FROMLONLAT", lon, lat, "BYRADIUS", radius, "m", *order, *count, *extras)
        yield ("GEOSEARCH", "geo", "FROMMEMBER", f"p{rng.randrange(400)}", "BYBOX", radius, radius, "km", *order,
               *count, *extras)
        yield ("GEORADIUS_RO", "geo", lon, lat, radius, "ft", *extras, *count, *order)
        yield ("GEOPOS", "geo", *[f"p{rng.randrange(450)}" for _ in range(rng.randrange(5))])
    # replies built as bytes, seen by a script (RESP2 conversions to Lua and back)
    yield ("EVAL", "return redis.call('GEOPOS', KEYS[1], 'p1', 'nowhere', 'p2')", "1", "geo")
    yield ("EVAL", "return redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', 13.5, 38, 'BYRADIUS', 50, 'km', "
                   "'COUNT', 5, 'WITHDIST', 'WITHCOORD', 'WITHHASH')", "1", "geo")
    yield ("EVAL", "return {redis.call('PFADD', KEYS[1], ARGV[1], 5, 3.5), redis.call('PFCOUNT', KEYS[1])}", "1",
           "h1", "x")


@pytest.mark.parametrize("resp", [2, 3])
def test_commands_agree_with_redis_with_and_without_c(trio: list[ServerProcess], resp: int) -> None:
    conns = [server.raw() for server in trio]
    try:
        for conn in conns:
            conn.call("FLUSHALL")
            conn.call("HELLO", str(resp))
        for cmd in _commands(random.Random(10 + resp)):
            replies = [conn.call(*cmd) for conn in conns]
            assert replies[1] == replies[0], f"{cmd!r}\n  dumpling: {replies[1]!r}\n  redis:    {replies[0]!r}"
            assert replies[2] == replies[0], f"{cmd!r}\n  pure:     {replies[2]!r}\n  redis:    {replies[0]!r}"
        values = [[conn.call("GET", key) for key in ("h1", "h2", "h3", "forged")] for conn in conns]
        assert values[1] == values[2] == values[0]
    finally:
        for conn in conns:
            conn.close()
