"""GEO commands, differentially against a real redis-server (RESP2 and RESP3):
GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS[BYMEMBER][_RO] with STORE/STOREDIST,
GEOSEARCH and GEOSEARCHSTORE over seeded random point sets (poles, the antimeridian,
tiny and huge radii, boxes, COUNT [ANY], ASC/DESC, WITH* options), their error texts,
keyspace events and RESTORE of GEO sets both ways; plus the pure geohash helpers.
"""

from __future__ import annotations

import random

import pytest

from dumpling import geohash as gh
from tests.servers import Pair, parse_reply
from tests.test_commands_strings import EventStream, assert_same_events, events

__all__ = ["events"]  # the fixture, re-used from the string tests

Cmd = tuple[str | bytes | int, ...]


def _same(pair: Pair, cmd: Cmd) -> None:
    """STOREDIST scores are distances: Redis 7.0 prints them with %.17g, 7.4 (dumpling) with
    fpconv, so those replies are compared as doubles (7.4 texts: tests/test_fpconv.py)."""
    if "WITHSCORES" in cmd:
        pair.same_doubles(*cmd)
    else:
        pair.same(*cmd)
UNITS = ["m", "km", "ft", "mi", "KM", "Mi"]


def _coord(rng: random.Random) -> tuple[str, str]:
    kind = rng.random()
    if kind < 0.1:  # near the antimeridian
        lon = rng.choice([-1, 1]) * rng.uniform(179.0, 180.0)
    else:
        lon = rng.uniform(-180, 180)
    if kind > 0.9:  # near the GEO latitude limits
        lat = rng.choice([-1, 1]) * rng.uniform(84.0, gh.LAT_MAX)
    else:
        lat = rng.uniform(gh.LAT_MIN, gh.LAT_MAX)
    return repr(lon), repr(lat)


def _clustered(rng: random.Random, n: int, lon: float, lat: float, spread: float) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        x = min(max(lon + rng.uniform(-spread, spread), -180.0), 180.0)
        y = min(max(lat + rng.uniform(-spread, spread), gh.LAT_MIN), gh.LAT_MAX)
        out.append((repr(x), repr(y)))
    return out


def _load(pair: Pair, key: str, points: list[tuple[str, str]]) -> list[str]:
    members = [f"m{i}" for i in range(len(points))]
    args: list[str] = []
    for (lon, lat), member in zip(points, members, strict=True):
        args += [lon, lat, member]
    for i in range(0, len(args), 300):
        pair.same("GEOADD", key, *args[i : i + 300])
    return members


# ----------------------------------------------------------------------------- pure helpers


def test_interleave_round_trip_and_known_scores() -> None:
    rng = random.Random(1)
    for _ in range(200):
        x, y = rng.getrandbits(32), rng.getrandbits(32)
        assert gh.deinterleave64(gh.interleave64(x, y)) == x | (y << 32)
    # Palermo, as in Redis's documentation: GEOADD Sicily 13.361389 38.115556 "Palermo"
    assert gh.score_of(13.361389, 38.115556) == 3479099956230698
    assert gh.geohash_string(3479099956230698.0) == b"sqc8b49rny0"
    assert gh.format_distance(166274.15156960033) == b"166274.1516"
    assert gh.format_distance(0.0) == b"0.0000"
    assert gh.format_coordinate(13.361389338970184) == b"13.36138933897018433"
    assert gh.format_coordinate(-0.0) == b"0"


def test_partial_sort_sorts_the_requested_prefix() -> None:
    rng = random.Random(2)
    for n in (0, 1, 5, 7, 8, 40, 41, 200):
        items = [rng.randrange(20) for _ in range(n)]
        for k in range(1, n + 1, max(1, n // 5)):
            work = list(items)
            gh.partial_sort(work, lambda a, b: (a > b) - (a < b), 0, k - 1)
            assert work[:k] == sorted(items)[:k]
            assert sorted(work) == sorted(items)


def test_fast_point_filter_matches_the_plain_port() -> None:
    """``point_filter`` (precomputed centre, table decode) must agree bit for bit
    with ``decode``/``within`` written straight from Redis's C."""
    rng = random.Random(4)
    for _ in range(200):
        lon, lat = (float(v) for v in _coord(rng))
        kind = rng.choice([gh.CIRCLE, gh.BOX])
        shape = gh.Shape(kind=kind, longitude=lon, latitude=lat, conversion=rng.choice([1.0, 1000.0, 0.3048]),
                         radius=rng.uniform(0, 3e6), width=rng.uniform(0, 6e6), height=rng.uniform(0, 6e6))
        test = gh.point_filter(shape)
        for _ in range(50):
            score = float(gh.score_of(*(float(v) for v in _coord(rng))))
            area = gh.decode(gh.double_to_uint64(score), gh.STEP_MAX)
            x = min(max((area.long_min + area.long_max) / 2, gh.LONG_MIN), gh.LONG_MAX)
            y = min(max((area.lat_min + area.lat_max) / 2, gh.LAT_MIN), gh.LAT_MAX)
            assert gh.decode_score(score) == (x, y)
            dist = gh.within(shape, x, y)
            assert test(score) == (None if dist is None else (x, y, dist))


# ----------------------------------------------------------------------------- GEOADD / GEOPOS / GEODIST / GEOHASH


def test_geoadd_options_and_scores(pairs: Pair) -> None:
    for cmd in (
        ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
        ("ZRANGE", "g", "0", "-1", "WITHSCORES"),
        ("GEOADD", "g", "NX", "1", "1", "Palermo", "2", "2", "new"),
        ("GEOADD", "g", "XX", "CH", "1", "1", "Palermo", "3", "3", "nope"),
        ("GEOADD", "g", "CH", "XX", "1", "1", "Palermo"),
        ("GEOADD", "g", "ch", "nx", "5", "5", "x5"),
        ("GEOADD", "g", "NX", "XX", "1", "1", "a"),
        ("GEOADD", "g", "GT", "1", "1", "a"),
        ("GEOADD", "g", "1", "1"),
        ("GEOADD", "g", "NX", "CH", "XX"),
        ("GEOADD", "g", "CH", "NX", "CH"),
        ("GEOADD", "g", "181", "1", "a"),
        ("GEOADD", "g", "1", "85.06", "a"),
        ("GEOADD", "g", "-180", "-85.05112878", "corner", "180", "85.05112878", "corner2"),
        ("GEOADD", "g", "x", "1", "a"),
        ("GEOADD", "g", "1", "nan", "a"),
        ("GEOADD", "g", "1", "1", "a", "200", "1", "b"),
        ("EXISTS", "a"),
        ("GEOADD", "new", "XX", "1", "1", "a"),
        ("EXISTS", "new"),
        ("ZRANGE", "g", "0", "-1", "WITHSCORES"),
        ("OBJECT", "ENCODING", "g"),
        ("SET", "str", "v"),
        ("GEOADD", "str", "1", "1", "a"),
        ("GEOADD", "str", "1", "100", "a"),
    ):
        pairs.same(*cmd)


def test_geopos_geodist_geohash(pairs: Pair) -> None:
    rng = random.Random(3)
    points = [_coord(rng) for _ in range(60)] + [("0", "0"), ("180", "0"), ("-180", "0"), ("0", repr(gh.LAT_MAX)),
                                                 ("-0.0", "-0.0"), ("1e-10", "-1e-10")]
    members = _load(pairs, "g", points)
    pairs.same("GEOPOS", "g", *members, "missing")
    pairs.same("GEOHASH", "g", *members, "missing")
    pairs.same("GEOPOS", "g")
    pairs.same("GEOHASH", "g")
    pairs.same("GEOPOS", "nokey", "a", "b")
    pairs.same("GEOHASH", "nokey", "a")
    for _ in range(40):
        a, b = rng.choice(members), rng.choice(members)
        pairs.same("GEODIST", "g", a, b)
        pairs.same("GEODIST", "g", a, b, rng.choice(UNITS))
    for cmd in (("GEODIST", "g", "m0", "missing"), ("GEODIST", "nokey", "a", "b"), ("GEODIST", "g", "m0", "m1", "yd"),
                ("GEODIST", "g", "m0", "m1", "km", "extra"), ("GEODIST", "nokey", "a", "b", "bad"),
                ("GEODIST", "g", "m0", "m0")):
        pairs.same(*cmd)
    # Scores that no GEOADD makes: any zset works, the score is read as a geohash.
    pairs.same("ZADD", "z", "0", "zero", "-1", "neg", "1e300", "huge", "4503599627370496", "top", "12.7", "frac",
               "-inf", "ninf", "inf", "pinf", "9.3e18", "over63")
    pairs.same("GEOPOS", "z", "zero", "neg", "huge", "top", "frac", "ninf", "pinf", "over63")
    pairs.same("GEOHASH", "z", "zero", "neg", "huge", "top", "frac", "ninf", "pinf", "over63")
    pairs.same("GEODIST", "z", "zero", "top")
    pairs.same("GEORADIUS", "z", "0", "0", "20000", "km", "WITHCOORD", "WITHHASH", "WITHDIST")
    pairs.same("RPUSH", "list", "a")
    for cmd in (("GEOPOS", "list", "a"), ("GEOHASH", "list", "a"), ("GEODIST", "list", "a", "b")):
        pairs.same(*cmd)


# ----------------------------------------------------------------------------- searches


def _random_search(rng: random.Random, members: list[str], source: str) -> list[Cmd]:
    """A GEOSEARCH and the equivalent GEORADIUS* calls with random options."""
    lon, lat = _coord(rng) if rng.random() < 0.7 else ("13.5", "38.0")
    unit = rng.choice(UNITS)
    scale = {"m": 1, "km": 1000, "ft": 0.3048, "mi": 1609.34}[unit.lower()]
    radius = repr(rng.choice([0, 0.01, 10, 5000, 100_000, 1_000_000, 5_000_000, 20_000_000]) / scale)
    opts: list[str] = []
    for flag in ("WITHCOORD", "WITHDIST", "WITHHASH"):
        if rng.random() < 0.4:
            opts.append(flag)
    order = rng.choice([[], ["ASC"], ["DESC"]])
    count: list[str] = []
    if rng.random() < 0.4:
        count = ["COUNT", str(rng.choice([1, 2, 5, 50]))]
        if rng.random() < 0.3:
            count.append("ANY")
    member = rng.choice(members)
    width, height = (repr(rng.choice([0, 1, 50, 800, 5000, 40000]) * 1000 / scale) for _ in range(2))
    return [
        ("GEORADIUS", source, lon, lat, radius, unit, *opts, *order, *count),
        ("GEORADIUS_RO", source, lon, lat, radius, unit, *opts, *count, *order),
        ("GEORADIUSBYMEMBER", source, member, radius, unit, *order, *opts, *count),
        ("GEORADIUSBYMEMBER_RO", source, member, radius, unit, *opts, *count, *order),
        ("GEOSEARCH", source, "FROMLONLAT", lon, lat, "BYRADIUS", radius, unit, *order, *count, *opts),
        ("GEOSEARCH", source, "FROMMEMBER", member, "BYBOX", width, height, unit, *order, *count, *opts),
        ("GEOSEARCH", source, "BYBOX", width, height, unit, "FROMLONLAT", lon, lat, *opts, *order, *count),
    ]


def _compare_search(pair: Pair, cmd: Cmd) -> None:
    """Exact bytes, except COUNT ... ANY without ASC/DESC, whose choice is
    deterministic too but worth reporting as a set difference when it is not."""
    pair.same(*cmd)


@pytest.mark.parametrize("seed", range(4))
def test_random_searches_match_redis(pairs: Pair, seed: int) -> None:
    rng = random.Random(seed)
    points = [_coord(rng) for _ in range(150)]
    points += _clustered(rng, 100, 13.5, 38.0, 2.0)
    points += _clustered(rng, 40, 179.9, rng.uniform(-60, 60), 0.3)
    points += _clustered(rng, 30, rng.uniform(-180, 180), 84.9, 0.5)
    points += [("13.5", "38.0")] * 3  # ties in distance
    if seed % 2:
        points = points[:100]  # a listpack-encoded set at the default limits? (128 entries)
    members = _load(pairs, "g", points)
    pairs.same("OBJECT", "ENCODING", "g")
    for _ in range(12):
        for cmd in _random_search(rng, members, "g"):
            _compare_search(pairs, cmd)


def test_small_listpack_set_searches(pairs: Pair) -> None:
    rng = random.Random(42)
    members = _load(pairs, "g", _clustered(rng, 20, -122.4, 37.8, 0.5))
    pairs.same("OBJECT", "ENCODING", "g")
    for radius in ("0", "1", "10", "50", "500"):
        pairs.same("GEORADIUS", "g", "-122.4", "37.8", radius, "km", "WITHDIST", "ASC")
        pairs.same("GEORADIUS", "g", "-122.4", "37.8", radius, "km", "WITHCOORD", "WITHHASH")
        pairs.same("GEOSEARCH", "g", "FROMMEMBER", members[0], "BYRADIUS", radius, "km", "DESC", "WITHDIST")
        pairs.same("GEOSEARCH", "g", "FROMMEMBER", members[3], "BYBOX", radius, radius, "km", "COUNT", "3")


def test_store_options(pair: Pair) -> None:
    rng = random.Random(5)
    _load(pair, "g", _clustered(rng, 200, 2.35, 48.85, 1.0))
    for cmd in (
        ("GEORADIUS", "g", "2.35", "48.85", "30", "km", "STORE", "dst"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("OBJECT", "ENCODING", "dst"),
        ("GEORADIUS", "g", "2.35", "48.85", "300", "km", "STOREDIST", "dst2", "COUNT", "7", "DESC"),
        ("ZRANGE", "dst2", "0", "-1", "WITHSCORES"),
        ("GEORADIUS", "g", "2.35", "48.85", "300", "km", "STORE", "a", "STOREDIST", "b"),
        ("EXISTS", "a"),
        ("ZRANGE", "b", "0", "-1", "WITHSCORES"),
        ("GEORADIUSBYMEMBER", "g", "m3", "40", "km", "STORE", "dst3", "ASC"),
        ("ZRANGE", "dst3", "0", "-1", "WITHSCORES"),
        ("OBJECT", "ENCODING", "dst3"),
        ("GEOSEARCHSTORE", "dst4", "g", "FROMLONLAT", "2.35", "48.85", "BYBOX", "50", "50", "km"),
        ("ZRANGE", "dst4", "0", "-1", "WITHSCORES"),
        ("GEOSEARCHSTORE", "dst5", "g", "FROMMEMBER", "m9", "BYRADIUS", "60", "km", "STOREDIST", "COUNT", "20"),
        ("ZRANGE", "dst5", "0", "-1", "WITHSCORES"),
        ("SET", "dst6", "x", "EX", "100"),
        ("GEOSEARCHSTORE", "dst6", "g", "FROMMEMBER", "m9", "BYRADIUS", "60", "km"),
        ("TTL", "dst6"),
        ("GEOSEARCHSTORE", "dst6", "g", "FROMLONLAT", "-50", "-50", "BYRADIUS", "1", "km"),
        ("EXISTS", "dst6"),
        ("GEOSEARCHSTORE", "dst5", "nokey", "FROMMEMBER", "m9", "BYRADIUS", "60", "km"),
        ("EXISTS", "dst5"),
        ("GEORADIUS", "nokey", "2.35", "48.85", "30", "km", "STORE", "dst4"),
        ("EXISTS", "dst4"),
        ("GEORADIUSBYMEMBER", "nokey", "m1", "x", "bad", "STORE", "dst3"),
        ("EXISTS", "dst3"),
        ("GEORADIUS", "g", "2.35", "48.85", "30", "km", "STORE", "dst", "WITHDIST"),
        ("GEOSEARCHSTORE", "dst", "g", "FROMMEMBER", "m1", "BYRADIUS", "1", "km", "WITHCOORD"),
        ("GEORADIUS_RO", "g", "2.35", "48.85", "30", "km", "STORE", "dst"),
        ("GEOSEARCH", "g", "FROMMEMBER", "m1", "BYRADIUS", "1", "km", "STOREDIST"),
        ("GEOSEARCHSTORE", "dst", "g", "FROMMEMBER", "m1", "BYRADIUS", "1", "km", "STORE", "x"),
    ):
        _same(pair, cmd)


SEARCH_ERRORS: list[Cmd] = [
    ("GEORADIUS", "g", "x", "0", "10", "km"),
    ("GEORADIUS", "g", "0", "91", "10", "km"),
    ("GEORADIUS", "g", "0", "0", "x", "km"),
    ("GEORADIUS", "g", "0", "0", "-1", "km"),
    ("GEORADIUS", "g", "0", "0", "10", "yd"),
    ("GEORADIUS", "g", "0", "0", "10", "km", "COUNT", "0"),
    ("GEORADIUS", "g", "0", "0", "10", "km", "COUNT", "-3"),
    ("GEORADIUS", "g", "0", "0", "10", "km", "COUNT", "x"),
    ("GEORADIUS", "g", "0", "0", "10", "km", "COUNT"),
    ("GEORADIUS", "g", "0", "0", "10", "km", "ANY"),
    ("GEORADIUS", "g", "0", "0", "10", "km", "bogus"),
    ("GEORADIUS", "g", "0", "0", "10", "km", "STORE"),
    ("GEORADIUSBYMEMBER", "g", "missing", "10", "km"),
    ("GEORADIUSBYMEMBER", "g", "m1", "-10", "km"),
    ("GEORADIUSBYMEMBER", "nokey", "m1", "-10", "km", "WITHDIST"),
    ("GEORADIUSBYMEMBER", "nokey", "m1", "-10", "km", "bogus"),
    ("GEOSEARCH", "g", "FROMMEMBER", "m1", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "FROMMEMBER", "m1", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"),
    ("GEOSEARCH", "g", "BYRADIUS", "1", "km", "WITHDIST"),
    ("geosearch", "g", "BYRADIUS", "1", "km", "WITHDIST"),
    ("GeoSearch", "g", "FROMLONLAT", "1", "1", "WITHDIST"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYBOX", "-1", "1", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYBOX", "x", "y", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYBOX", "1", "y", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYBOX", "1", "1", "parsec"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYBOX", "1", "1"),
    ("GEOSEARCH", "g", "FROMMEMBER", "missing", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "nokey", "FROMMEMBER", "missing", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "nokey", "FROMLONLAT", "500", "1", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "ANY"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "COUNT", "1", "ANY", "STORE", "x"),
    ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "WITHHASH"),
    ("GEOSEARCHSTORE", "d", "g", "BYRADIUS", "1", "km", "STOREDIST"),
    ("GEOSEARCHSTORE", "d", "list", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "list", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"),
    ("GEORADIUS", "list", "x", "0", "10", "km"),
    ("GEORADIUS", "g"),
    ("GEOSEARCH", "g", "FROMLONLAT", "1", "1"),
]


@pytest.mark.parametrize("cmd", SEARCH_ERRORS, ids=range(len(SEARCH_ERRORS)))
def test_search_errors(pair: Pair, cmd: Cmd) -> None:
    pair.same("GEOADD", "g", "1", "1", "m1", "2", "2", "m2")
    pair.same("RPUSH", "list", "x")
    pair.same(*cmd)


def test_poles_antimeridian_and_huge_radii(pairs: Pair) -> None:
    points = [("179.9999", "0"), ("-179.9999", "0"), ("180", "10"), ("-180", "-10"), ("0", "85.05"),
              ("90", "85.05"), ("-90", "-85.05"), ("0", "-85.05112878"), ("179.5", "84.9"), ("-179.5", "84.9")]
    members = _load(pairs, "g", points)
    for lon, lat in (("180", "0"), ("-180", "0"), ("0", "85.05112878"), ("0", "-85.05112878"), ("179.99", "84")):
        for radius in ("1", "100", "5000", "20000", "40000"):
            pairs.same("GEORADIUS", "g", lon, lat, radius, "km", "WITHDIST", "ASC")
            pairs.same("GEORADIUS", "g", lon, lat, radius, "km")
            pairs.same("GEOSEARCH", "g", "FROMLONLAT", lon, lat, "BYBOX", radius, radius, "km", "WITHCOORD")
    for member in members:
        pairs.same("GEOSEARCH", "g", "FROMMEMBER", member, "BYRADIUS", "500", "km", "WITHDIST", "WITHHASH", "ASC")
    pairs.same("GEORADIUS", "g", "0", "0", "inf", "km", "WITHDIST")
    pairs.same("GEOSEARCH", "g", "FROMLONLAT", "0", "0", "BYBOX", "inf", "1", "km")


def test_count_ties_and_any(pair: Pair) -> None:
    rng = random.Random(8)
    points = []
    for _ in range(60):
        spot = rng.choice([("10", "10"), ("10.001", "10"), ("10", "10.001"), ("9.999", "9.999")])
        points.append(spot)
    _load(pair, "g", points)
    for count in ("1", "3", "10", "59", "60", "100"):
        for order in ("ASC", "DESC"):
            pair.same("GEORADIUS", "g", "10", "10", "10", "km", "COUNT", count, order, "WITHDIST")
            pair.same("GEOSEARCH", "g", "FROMLONLAT", "10", "10", "BYRADIUS", "10", "km", "COUNT", count, "ANY",
                      order)
        pair.same("GEOSEARCH", "g", "FROMLONLAT", "10", "10", "BYRADIUS", "10", "km", "COUNT", count)
        pair.same("GEOSEARCH", "g", "FROMLONLAT", "10", "10", "BYRADIUS", "10", "km", "COUNT", count, "ANY")


def test_keyspace_events(pair: Pair, events: tuple[EventStream, EventStream]) -> None:
    assert_same_events(pair, events, [("GEOADD", "g", "1", "1", "a", "2", "2", "b"), ("GEOADD", "g", "1", "1", "a"),
                                      ("GEOADD", "g", "XX", "3", "3", "c")])
    assert_same_events(pair, events, [("GEORADIUS", "g", "1", "1", "500", "km", "STORE", "s"),
                                      ("GEORADIUS", "g", "1", "1", "500", "km", "STOREDIST", "s"),
                                      ("GEOSEARCHSTORE", "t", "g", "FROMMEMBER", "a", "BYRADIUS", "1", "m"),
                                      ("GEOSEARCHSTORE", "s", "g", "FROMLONLAT", "50", "50", "BYRADIUS", "1", "m"),
                                      ("GEORADIUS", "nokey", "1", "1", "500", "km", "STORE", "t"),
                                      ("GEOSEARCH", "g", "FROMMEMBER", "a", "BYRADIUS", "1", "m")])


def test_restore_geo_sets_both_ways(pair: Pair) -> None:
    rng = random.Random(12)
    for n in (5, 300):
        key = f"g{n}"
        args: list[str] = []
        for i, (lon, lat) in enumerate(_coord(rng) for _ in range(n)):
            args += [lon, lat, f"p{i}"]
        pair.theirs.call("GEOADD", key, *args)
        dump = parse_reply(pair.theirs.call("DUMP", key))
        assert isinstance(dump, bytes)
        assert pair.ours.call("RESTORE", key, "0", dump) == b"+OK\r\n"
        pair.same("GEOPOS", key, "p0", "p1", "p2")
        pair.same("GEORADIUSBYMEMBER", key, "p0", "3000", "km", "WITHDIST", "ASC")
        pair.same("GEOADD", key, "1", "2", "extra")
        back = parse_reply(pair.ours.call("DUMP", key))
        assert isinstance(back, bytes)
        assert pair.theirs.call("RESTORE", key, "0", back, "REPLACE") == b"+OK\r\n"
        pair.same("ZRANGE", key, "0", "-1", "WITHSCORES")


def test_getkeys_and_store_into_the_source(pair: Pair) -> None:
    for cmd in (
        ("COMMAND", "GETKEYS", "GEORADIUS", "src", "0", "0", "1", "km", "STORE", "dst"),
        ("COMMAND", "GETKEYS", "GEORADIUS", "src", "0", "0", "1", "km", "STORE", "a", "STOREDIST", "b"),
        ("COMMAND", "GETKEYS", "GEORADIUSBYMEMBER", "src", "m", "1", "km", "STOREDIST", "dst"),
        ("COMMAND", "GETKEYS", "GEORADIUS_RO", "src", "0", "0", "1", "km"),
        ("COMMAND", "GETKEYS", "GEOSEARCHSTORE", "dst", "src", "FROMMEMBER", "m", "BYRADIUS", "1", "km"),
        ("COMMAND", "GETKEYS", "PFMERGE", "dst", "a", "b"),
        ("COMMAND", "GETKEYS", "PFCOUNT", "a", "b"),
        ("GEOADD", "src", "1", "1", "a", "1.001", "1.001", "b", "50", "50", "far"),
        ("GEORADIUS", "src", "1", "1", "10", "km", "STOREDIST", "src"),
        ("ZRANGE", "src", "0", "-1", "WITHSCORES"),
        ("GEOADD", "s2", "1", "1", "a", "1.001", "1.001", "b", "50", "50", "far"),
        ("GEOSEARCHSTORE", "s2", "s2", "FROMMEMBER", "a", "BYBOX", "500", "500", "km"),
        ("ZRANGE", "s2", "0", "-1", "WITHSCORES"),
        ("TYPE", "s2"),
    ):
        _same(pair, cmd)
