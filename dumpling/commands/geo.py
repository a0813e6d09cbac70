"""GEO commands on ordinary sorted sets: GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH,
GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and the two ``_RO`` forms.

A GEO set is a zset whose scores are 52-bit geohashes (``dumpling.geohash``).  As in
Redis, GEOADD is ZADD with computed scores (it hands a rewritten argument vector to
the ZADD implementation), and every search runs ``georadiusGeneric``'s argument
parsing, error order, cell walk, sorting and reply shapes; distances print with four
decimals, coordinates as Redis's "human" long doubles (bulk strings in RESP2,
doubles in RESP3).

Must not: reach into the zset structure beyond ``ZSetValue``'s documented methods and its
``index`` (a ``ScoreIndex`` read as ``(score, member)`` items with ``irange``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dumpling import geohash as gh
from dumpling.commands.common import to_float, to_int
from dumpling.commands.registry import command
from dumpling.commands.strings import key_spec
from dumpling.commands.zsets import _zadd_generic, limits, zset_of
from dumpling.datatypes.zsets import ZSetValue
from dumpling.errors import SYNTAX, CommandError
from dumpling.persistence.propagation import propagate_as
from dumpling.protocol import Raw

GEO: dict[str, Any] = {"group": "geo"}
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
BAD_UNIT = "unsupported unit provided. please use M, KM, FT, MI"
BAD_MEMBER = "could not decode requested zset member"

RADIUS_COORDS, RADIUS_MEMBER, RADIUS_NOSTORE, GEOSEARCH, GEOSEARCHSTORE = 1, 2, 4, 8, 16
SORT_NONE, SORT_ASC, SORT_DESC = gh.SORT_NONE, gh.SORT_ASC, gh.SORT_DESC


# ----------------------------------------------------------------------------- argument helpers


def _lonlat(lon_arg: bytes, lat_arg: bytes) -> tuple[float, float]:
    """``extractLongLatOrReply``."""
    longitude = to_float(lon_arg)
    latitude = to_float(lat_arg)
    if longitude < gh.LONG_MIN or longitude > gh.LONG_MAX or latitude < gh.LAT_MIN or latitude > gh.LAT_MAX:
        raise CommandError("-ERR invalid longitude,latitude pair %f,%f" % (longitude, latitude))
    return longitude, latitude


def _unit(arg: bytes) -> float:
    """``extractUnitOrReply``: metres per unit."""
    factor = UNITS.get(arg.lower())
    if factor is None:
        raise CommandError(BAD_UNIT)
    return factor


def _radius(radius_arg: bytes, unit_arg: bytes) -> tuple[float, float]:
    """``extractDistanceOrReply``: (conversion, radius)."""
    radius = to_float(radius_arg, "need numeric radius")
    if radius < 0:
        raise CommandError("radius cannot be negative")
    return _unit(unit_arg), radius


def _box(width_arg: bytes, height_arg: bytes, unit_arg: bytes) -> tuple[float, float, float]:
    """``extractBoxOrReply``: (conversion, width, height)."""
    width = to_float(width_arg, "need numeric width")
    height = to_float(height_arg, "need numeric height")
    if height < 0 or width < 0:
        raise CommandError("height or width cannot be negative")
    return _unit(unit_arg), width, height


def _member_position(z: ZSetValue, member: bytes) -> tuple[float, float]:
    """``longLatFromMember``."""
    score = z.score(member)
    if score is None:
        raise CommandError(BAD_MEMBER)
    return gh.decode_score(score)


# ----------------------------------------------------------------------------- GEOADD


@command("geoadd", -5, "write denyoom", (1, 1, 1), **GEO, since="3.2.0",
         summary="Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
         complexity="O(log(N)) for each item added, where N is the number of elements in the sorted set.",
         args=("key [condition=(NX | XX)@6.2.0] [change=CH@6.2.0] data=(longitude:double latitude:double "
               "member)..."),
         key_flags="RW update", history=(("6.2.0", "Added the `CH`, `NX` and `XX` options."),), events="new zadd")
def geoadd(c: Any, argv: list[bytes]) -> Any:
    nx = xx = False
    first = 2
    while first < len(argv):
        option = argv[first].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option != b"ch":
            break
        first += 1
    if (len(argv) - first) % 3 or (xx and nx):
        raise CommandError(SYNTAX)
    zadd_argv = [b"zadd", *argv[1:first]]
    for i in range(first, len(argv), 3):
        longitude, latitude = _lonlat(argv[i], argv[i + 1])
        zadd_argv.append(b"%d" % gh.score_of(longitude, latitude))
        zadd_argv.append(argv[i + 2])
    reply = _zadd_generic(c, zadd_argv, False)
    propagate_as(c, zadd_argv)  # as the ZADD it ran (replaceClientCommandVector)
    return reply


# ----------------------------------------------------------------------------- GEODIST / GEOHASH / GEOPOS


@command("geodist", -4, "readonly", (1, 1, 1), **GEO, since="3.2.0",
         summary="Returns the distance between two members of a geospatial index.",
         args="key member1:string member2:string [unit=(M|KM|FT|MI)]", key_flags="RO access")
def geodist(c: Any, argv: list[bytes]) -> Any:
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = _unit(argv[4])
    elif len(argv) > 5:
        raise CommandError(SYNTAX)
    value = c.db.lookup_read(argv[1])
    if value is None:
        return None
    z = zset_of(value)
    score1, score2 = z.score(argv[2]), z.score(argv[3])
    if score1 is None or score2 is None:
        return None
    lon1, lat1 = gh.decode_score(score1)
    lon2, lat2 = gh.decode_score(score2)
    return gh.format_distance(gh.distance(lon1, lat1, lon2, lat2) / to_meter)


@command("geohash", -2, "readonly", (1, 1, 1), **GEO, since="3.2.0",
         summary="Returns members from a geospatial index as geohash strings.",
         complexity="O(1) for each member requested.", args="key [member:string...]", key_flags="RO access")
def geohash(c: Any, argv: list[bytes]) -> Any:
    z = zset_of(c.db.lookup_read(argv[1]))
    out: list[Any] = []
    for member in argv[2:]:
        score = None if z is None else z.score(member)
        out.append(None if score is None else gh.geohash_string(score))
    return out


@command("geopos", -2, "readonly", (1, 1, 1), **GEO, since="3.2.0",
         summary="Returns the longitude and latitude of members from a geospatial index.",
         complexity="O(1) for each member requested.", args="key [member:string...]", key_flags="RO access")
def geopos(c: Any, argv: list[bytes]) -> Any:
    z = zset_of(c.db.lookup_read(argv[1]))
    scores = [None] * (len(argv) - 2) if z is None else list(map(z.scores.get, argv[2:]))  # z.score per member
    return Raw(gh.positions_reply(scores, c.resp3))


# ----------------------------------------------------------------------------- searches


def _cell_spans(z: ZSetValue, cells: list[tuple[int, int]]) -> list[Iterable[tuple[float, bytes]]]:
    """``membersOfAllNeighbors``'s walk: the ``(score, member)`` items of each cell to
    visit, in score order (lazy: a search stopped by COUNT ... ANY reads no further)."""
    spans: list[Iterable[tuple[float, bytes]]] = []
    last_processed = 0
    for i, cell in enumerate(cells):
        if cell == (0, 0):
            continue
        # Huge radii can make neighbours coincide; only a repeat of the cell processed
        # just before is skipped (and never right after the centre, as in Redis).
        if last_processed and cell == cells[last_processed]:
            continue
        low, high = gh.score_range(*cell)
        # scores in [low, high): what score_span + range_by_rank give, in one bisection each
        spans.append(z.index.irange((float(low), b""), (float(high), b""), inclusive=(True, False)))
        last_processed = i
    return spans


def _search(c: Any, argv: list[bytes], src_index: int, flags: int) -> Any:
    """``georadiusGeneric``."""
    db = c.db
    z = zset_of(db.lookup_read(argv[src_index]))
    store_key: bytes | None = None
    store_dist = False
    shape = gh.Shape(kind=0, longitude=0.0, latitude=0.0, conversion=0.0)
    if flags & RADIUS_COORDS:
        base = 6
        shape.kind = gh.CIRCLE
        shape.longitude, shape.latitude = _lonlat(argv[2], argv[3])
        shape.conversion, shape.radius = _radius(argv[4], argv[5])
    elif flags & RADIUS_MEMBER and z is None:
        base = 5  # nothing to look up; the options are still parsed
    elif flags & RADIUS_MEMBER:
        assert z is not None
        base = 5
        shape.kind = gh.CIRCLE
        shape.longitude, shape.latitude = _member_position(z, argv[2])
        shape.conversion, shape.radius = _radius(argv[3], argv[4])
    else:
        base = 2
        if flags & GEOSEARCHSTORE:
            base = 3
            store_key = argv[1]
    withdist = withhash = withcoords = False
    frommember = fromloc = byradius = bybox = False
    order = SORT_NONE
    any_ = False
    count = 0
    remaining = len(argv) - base
    i = 0
    while i < remaining:
        arg = argv[base + i].lower()
        if arg == b"withdist":
            withdist = True
        elif arg == b"withhash":
            withhash = True
        elif arg == b"withcoord":
            withcoords = True
        elif arg == b"any":
            any_ = True
        elif arg == b"asc":
            order = SORT_ASC
        elif arg == b"desc":
            order = SORT_DESC
        elif arg == b"count" and i + 1 < remaining:
            count = to_int(argv[base + i + 1])
            if count <= 0:
                raise CommandError("COUNT must be > 0")
            i += 1
        elif arg in (b"store", b"storedist") and i + 1 < remaining and not flags & (RADIUS_NOSTORE | GEOSEARCH):
            store_key = argv[base + i + 1]
            store_dist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & GEOSEARCH and flags & GEOSEARCHSTORE:
            store_dist = True
        elif arg == b"frommember" and i + 1 < remaining and flags & GEOSEARCH and not fromloc:
            if z is not None:
                shape.longitude, shape.latitude = _member_position(z, argv[base + i + 1])
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and i + 2 < remaining and flags & GEOSEARCH and not frommember:
            shape.longitude, shape.latitude = _lonlat(argv[base + i + 1], argv[base + i + 2])
            fromloc = True
            i += 2
        elif arg == b"byradius" and i + 2 < remaining and flags & GEOSEARCH and not bybox:
            shape.conversion, shape.radius = _radius(argv[base + i + 1], argv[base + i + 2])
            shape.kind = gh.CIRCLE
            byradius = True
            i += 2
        elif arg == b"bybox" and i + 3 < remaining and flags & GEOSEARCH and not byradius:
            shape.conversion, shape.width, shape.height = _box(argv[base + i + 1], argv[base + i + 2],
                                                               argv[base + i + 3])
            shape.kind = gh.BOX
            bybox = True
            i += 3
        else:
            raise CommandError(SYNTAX)
        i += 1
    if store_key is not None and (withdist or withhash or withcoords):
        what = "GEOSEARCHSTORE" if flags & GEOSEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(f"{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    name = argv[0].decode(errors="replace")
    if flags & GEOSEARCH and not (frommember or fromloc):
        raise CommandError(f"exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if flags & GEOSEARCH and not (byradius or bybox):
        raise CommandError(f"exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise CommandError("the ANY argument requires COUNT argument")
    if z is None:
        if store_key is not None:
            if db.delete(store_key):
                c.keyspace.changed(db, store_key, b"del", "g")
            return 0
        return []
    if count and order == SORT_NONE and not any_:
        order = SORT_ASC
    points = gh.collect_points(_cell_spans(z, gh.cells_to_scan(shape)), shape, count if any_ else 0, order, count)
    if not points and store_key is None:
        return []
    if store_key is not None:
        return _store(c, store_key, points, shape.conversion, store_dist, flags)
    if withdist or withhash or withcoords:
        return Raw(gh.points_reply(points, shape.conversion, withdist, withhash, withcoords, c.resp3))
    return [p[2] for p in points]


def _store(c: Any, key: bytes, points: list[gh.Point], conversion: float, store_dist: bool, flags: int) -> int:
    db = c.db
    if points:
        pairs = [(p[2], p[0] / conversion if store_dist else p[1]) for p in points]
        out = ZSetValue.from_pairs(pairs, "skiplist")
        out.shrink_if_small(*limits(c))
        existed = db.lookup_write(key) is not None
        db.set(key, out)
        if not existed:
            c.keyspace.notify(db.index, "n", b"new", key)
        c.keyspace.changed(db, key, b"geosearchstore" if flags & GEOSEARCH else b"georadiusstore", "z")
    elif db.delete(key):
        c.keyspace.changed(db, key, b"del", "g")
    return len(points)


def _radius_keys(start: int) -> Callable[[list[bytes]], list[int]]:
    """Key positions as Redis 7 finds them from GEORADIUS*'s key specs: the source,
    then the key after the first STORE and after the first STOREDIST found from
    ``start`` on (the keyword search stops before the last argument)."""

    def keys(argv: list[bytes]) -> list[int]:
        found = [1]
        for keyword in (b"store", b"storedist"):
            for i in range(start, len(argv) - 1):
                if argv[i].lower() == keyword:
                    found.append(i + 1)
                    break
        return found

    return keys


def _keyword_spec(keyword: str, start: int) -> dict[str, Any]:
    return {"flags": ["OW", "update"], "begin_search": {"type": "keyword", "spec": {"keyword": keyword,
                                                                                    "startfrom": start}},
            "find_keys": {"type": "range", "spec": {"lastkey": 0, "keystep": 1, "limit": 0}}}


_RADIUS_COMPLEXITY = ("O(N+log(M)) where N is the number of elements inside the bounding box of the circular area "
                      "delimited by center and radius and M is the number of items inside the index.")
_SEARCH_COMPLEXITY = ("O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around "
                      "the shape provided as the filter and M is the number of items inside the shape")
_UNIT = "unit=(M | KM | FT | MI)"
_RADIUS_OPTIONS = "[WITHCOORD] [WITHDIST] [WITHHASH] [count-block=(COUNT count:integer [ANY])] [order=(ASC | DESC)]"
# Redis's GEORADIUS and GEORADIUS_RO docs date ANY (6.2.0); the BYMEMBER ones do not.
_RADIUS_OPTIONS_DATED = _RADIUS_OPTIONS.replace("[ANY]", "[ANY@6.2.0]")
_STORE_OPTIONS = "[store=(STORE storekey:key/key | STOREDIST storedistkey:key/key)]"
_RADIUS_HISTORY = (("6.2.0", "Added the `ANY` option for `COUNT`."), ("7.0.0", "Added support for uppercase unit names."))
_SEARCH_SHAPE = (f"from=(FROMMEMBER member | FROMLONLAT (longitude:double latitude:double)) "
                 f"by=(circle=(BYRADIUS radius:double {_UNIT}) | box=(BYBOX width:double height:double {_UNIT})) "
                 f"[order=(ASC | DESC)] [count-block=(COUNT count:integer [ANY])]")


@command("georadius", -6, "write denyoom", (1, 1, 1), **GEO, since="3.2.0",
         summary="Queries a geospatial index for members within a distance from a coordinate, optionally stores "
                 "the result.",
         complexity=_RADIUS_COMPLEXITY,
         args=f"key longitude:double latitude:double radius:double {_UNIT} {_RADIUS_OPTIONS_DATED} {_STORE_OPTIONS}",
         key_specs=[key_spec("RO access"), _keyword_spec("STORE", 6), _keyword_spec("STOREDIST", 6)],
         getkeys=_radius_keys(6), history=_RADIUS_HISTORY, doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` argument", events="georadiusstore del")
def georadius(c: Any, argv: list[bytes]) -> Any:
    return _search(c, argv, 1, RADIUS_COORDS)


@command("georadiusbymember", -5, "write denyoom", (1, 1, 1), **GEO, since="3.2.0",
         summary="Queries a geospatial index for members within a distance from a member, optionally stores the "
                 "result.",
         complexity=_RADIUS_COMPLEXITY,
         args=f"key member radius:double {_UNIT} {_RADIUS_OPTIONS} {_STORE_OPTIONS}",
         key_specs=[key_spec("RO access"), _keyword_spec("STORE", 5), _keyword_spec("STOREDIST", 5)],
         getkeys=_radius_keys(5), history=_RADIUS_HISTORY, doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` and `FROMMEMBER` arguments",
         events="georadiusstore del")
def georadiusbymember(c: Any, argv: list[bytes]) -> Any:
    return _search(c, argv, 1, RADIUS_MEMBER)


@command("georadius_ro", -6, "readonly", (1, 1, 1), **GEO, since="3.2.10",
         summary="Returns members from a geospatial index that are within a distance from a coordinate.",
         complexity=_RADIUS_COMPLEXITY,
         args=f"key longitude:double latitude:double radius:double {_UNIT} {_RADIUS_OPTIONS_DATED}",
         key_flags="RO access", history=_RADIUS_HISTORY, doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` with the `BYRADIUS` argument")
def georadius_ro(c: Any, argv: list[bytes]) -> Any:
    return _search(c, argv, 1, RADIUS_COORDS | RADIUS_NOSTORE)


@command("georadiusbymember_ro", -5, "readonly", (1, 1, 1), **GEO, since="3.2.10",
         summary="Returns members from a geospatial index that are within a distance from a member.",
         complexity=_RADIUS_COMPLEXITY, args=f"key member:string radius:double {_UNIT} {_RADIUS_OPTIONS}",
         key_flags="RO access", history=_RADIUS_HISTORY, doc_flags="deprecated", deprecated_since="6.2.0",
         replaced_by="`GEOSEARCH` with the `BYRADIUS` and `FROMMEMBER` arguments")
def georadiusbymember_ro(c: Any, argv: list[bytes]) -> Any:
    return _search(c, argv, 1, RADIUS_MEMBER | RADIUS_NOSTORE)


@command("geosearch", -7, "readonly", (1, 1, 1), **GEO, since="6.2.0",
         summary="Queries a geospatial index for members inside an area of a box or a circle.",
         complexity=_SEARCH_COMPLEXITY, args=f"key {_SEARCH_SHAPE} [WITHCOORD] [WITHDIST] [WITHHASH]",
         key_flags="RO access", history=(("7.0.0", "Added support for uppercase unit names."),))
def geosearch(c: Any, argv: list[bytes]) -> Any:
    return _search(c, argv, 1, GEOSEARCH)


@command("geosearchstore", -8, "write denyoom", (1, 2, 1), **GEO, since="6.2.0",
         summary="Queries a geospatial index for members inside an area of a box or a circle, optionally stores "
                 "the result.",
         complexity=_SEARCH_COMPLEXITY, args=f"destination source {_SEARCH_SHAPE} [STOREDIST]",
         key_specs=[key_spec("OW update", 1), key_spec("RO access", 2)],
         history=(("7.0.0", "Added support for uppercase unit names."),), events="new geosearchstore del")
def geosearchstore(c: Any, argv: list[bytes]) -> Any:
    return _search(c, argv, 2, GEOSEARCH | GEOSEARCHSTORE)

