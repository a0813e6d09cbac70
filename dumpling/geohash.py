"""Geohashes and distances exactly as Redis computes them (``geohash.c``,
``geohash_helper.c`` and the numeric parts of ``geo.c``).

A GEO member's sorted-set score is a 52-bit geohash: latitude (over
-85.05112878..85.05112878) and longitude (over -180..180) each scaled to 26 bits and
interleaved, latitude bits in the even positions.  A radius or box search looks at
the geohash cell of the centre plus its eight neighbours, at a precision chosen from
the search size, and filters the candidates by haversine distance (earth radius
6372797.560856 m).  Every step keeps C's double arithmetic, its evaluation order and
its integer conversions, so the same members come back in the same order with the
same distances; ``partial_sort`` is Redis's ``pqsort`` (what GEOSEARCH ... COUNT uses).

Also here: Redis's text forms of distances (``fixedpoint_d2string`` with 4 digits)
and coordinates (``%.17Lf`` with trailing zeros trimmed).

A search's candidates become points ``(distance, score, member, longitude, latitude)``.
The entry points ``cells_to_scan``, ``collect_points``, ``points_reply`` and
``positions_reply`` run ``dumpling._hllgeo``'s C twins of this code when it is loaded
(``native``; ``DUMPLING_PURE=1`` or ``use_native(False)`` turns them off); the Python
here stays the reference they must match (``tests/test_hllgeo_c.py``).

Must not: know about keys or sorted sets (a search gets its candidates as iterables of
``(score, member)``).  The only reply bytes built here are the two GEO-specific shapes
(``points_reply``, ``positions_reply``), so that C can build them in one call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from dumpling import accel

STEP_MAX = 26
LAT_MIN = -85.05112878
LAT_MAX = 85.05112878
LONG_MIN = -180.0
LONG_MAX = 180.0
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
D_R = math.pi / 180.0

U64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA

CIRCLE, BOX = 1, 2


# ----------------------------------------------------------------------------- C maths


def _sin(x: float) -> float:
    return math.sin(x) if math.isfinite(x) else math.nan


def _cos(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan


def _asin(x: float) -> float:
    return math.asin(x) if -1.0 <= x <= 1.0 else math.nan


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


def _div(a: float, b: float) -> float:
    """IEEE division (Python raises on a zero divisor; C gives inf or nan)."""
    if b != 0:
        return a / b
    if a != a or a == 0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def deg_rad(angle: float) -> float:
    return angle * D_R


def rad_deg(angle: float) -> float:
    return angle / D_R


def double_to_uint64(value: float) -> int:
    """C's ``(uint64_t)value`` as gcc compiles it for x86-64 (out-of-range values
    give the "integer indefinite" pattern, as Redis sees them for odd scores)."""
    two63 = 9.223372036854775808e18
    if value >= two63:
        rest = value - two63
        return int(rest) | (1 << 63) if rest < two63 else 0  # indefinite, high bit flipped back
    if value != value or value < -two63:
        return 1 << 63  # cvttsd2si's "integer indefinite"
    return int(value) & U64


# ----------------------------------------------------------------------------- interleaving


def interleave64(xlo: int, ylo: int) -> int:
    """Bits of ``xlo`` in the even positions, bits of ``ylo`` in the odd ones (32 bits each)."""
    x = xlo & 0xFFFFFFFF
    y = ylo & 0xFFFFFFFF
    x = (x | (x << 16)) & 0x0000FFFF0000FFFF
    y = (y | (y << 16)) & 0x0000FFFF0000FFFF
    x = (x | (x << 8)) & 0x00FF00FF00FF00FF
    y = (y | (y << 8)) & 0x00FF00FF00FF00FF
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y << 4)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x << 2)) & 0x3333333333333333
    y = (y | (y << 2)) & 0x3333333333333333
    x = (x | (x << 1)) & 0x5555555555555555
    y = (y | (y << 1)) & 0x5555555555555555
    return x | (y << 1)


def deinterleave64(interleaved: int) -> int:
    """The inverse: even bits in the low 32 bits, odd bits in the high 32 bits."""
    x = interleaved & U64
    y = x >> 1
    x &= 0x5555555555555555
    y &= 0x5555555555555555
    x = (x | (x >> 1)) & 0x3333333333333333
    y = (y | (y >> 1)) & 0x3333333333333333
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0F
    y = (y | (y >> 2)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FF
    y = (y | (y >> 4)) & 0x00FF00FF00FF00FF
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFF
    y = (y | (y >> 8)) & 0x0000FFFF0000FFFF
    x = (x | (x >> 16)) & 0x00000000FFFFFFFF
    y = (y | (y >> 16)) & 0x00000000FFFFFFFF
    return x | (y << 32)


# ----------------------------------------------------------------------------- encode / decode


def encode(longitude: float, latitude: float, step: int = STEP_MAX,
           long_range: tuple[float, float] = (LONG_MIN, LONG_MAX),
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> int | None:
    """``geohashEncode``: the ``2*step``-bit hash, or None outside the GEO limits."""
    if longitude > LONG_MAX or longitude < LONG_MIN or latitude > LAT_MAX or latitude < LAT_MIN:
        return None
    if latitude < lat_range[0] or latitude > lat_range[1] or longitude < long_range[0] or longitude > long_range[1]:
        return None
    lat_offset = (latitude - lat_range[0]) / (lat_range[1] - lat_range[0])
    long_offset = (longitude - long_range[0]) / (long_range[1] - long_range[0])
    lat_offset *= float(1 << step)
    long_offset *= float(1 << step)
    return interleave64(int(lat_offset), int(long_offset))


def align52(bits: int, step: int) -> int:
    """``geohashAlign52Bits``: a ``2*step``-bit hash as a 52-bit score."""
    return (bits << (52 - step * 2)) & U64


def score_of(longitude: float, latitude: float) -> int:
    """The sorted-set score GEOADD stores for a (valid) coordinate pair."""
    bits = encode(longitude, latitude)
    assert bits is not None
    return align52(bits, STEP_MAX)


@dataclass
class Area:
    long_min: float
    long_max: float
    lat_min: float
    lat_max: float


def decode(bits: int, step: int, long_range: tuple[float, float] = (LONG_MIN, LONG_MAX),
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> Area:
    """``geohashDecode``: the cell a hash stands for."""
    separated = deinterleave64(bits)
    lat_scale = lat_range[1] - lat_range[0]
    long_scale = long_range[1] - long_range[0]
    ilato = separated & 0xFFFFFFFF
    ilono = separated >> 32
    cells = float(1 << step)
    return Area(
        long_min=long_range[0] + (ilono * 1.0 / cells) * long_scale,
        long_max=long_range[0] + (((ilono + 1) & 0xFFFFFFFF) * 1.0 / cells) * long_scale,
        lat_min=lat_range[0] + (ilato * 1.0 / cells) * lat_scale,
        lat_max=lat_range[0] + (((ilato + 1) & 0xFFFFFFFF) * 1.0 / cells) * lat_scale,
    )


_CELLS26 = float(1 << STEP_MAX)
_LAT_SCALE = LAT_MAX - LAT_MIN
_LONG_SCALE = LONG_MAX - LONG_MIN
_SPREAD: list[int] = []  # 16-bit chunk -> its even bits | its odd bits << 32


def _spread_table() -> list[int]:
    """Built on first use (about 65,000 entries, from a 256-entry byte table)."""
    if not _SPREAD:
        byte = [deinterleave64(b) for b in range(256)]
        _SPREAD.extend(low | byte[high] << 4 for high in range(256) for low in byte)
    return _SPREAD


@functools.lru_cache(maxsize=1 << 14)
def decode_score(score: float) -> tuple[float, float]:
    """``decodeGeohash``: the (longitude, latitude) a sorted-set score stands for
    (the centre of its step-26 cell, clamped to the GEO limits).  Memoised: repeated
    searches over the same points (the usual "what is near me" load) skip the decode;
    16384 entries cost about 3 MB."""
    bits = int(score) if 0.0 <= score < 9.2e18 else double_to_uint64(score)
    table = _SPREAD or _spread_table()
    separated = (table[bits & 0xFFFF] | table[(bits >> 16) & 0xFFFF] << 8 | table[(bits >> 32) & 0xFFFF] << 16
                 | table[bits >> 48] << 24)
    ilato = separated & 0xFFFFFFFF
    ilono = separated >> 32
    longitude = (LONG_MIN + (ilono * 1.0 / _CELLS26) * _LONG_SCALE
                 + (LONG_MIN + (((ilono + 1) & 0xFFFFFFFF) * 1.0 / _CELLS26) * _LONG_SCALE)) / 2
    if longitude > LONG_MAX:
        longitude = LONG_MAX
    elif longitude < LONG_MIN:
        longitude = LONG_MIN
    latitude = (LAT_MIN + (ilato * 1.0 / _CELLS26) * _LAT_SCALE
                + (LAT_MIN + (((ilato + 1) & 0xFFFFFFFF) * 1.0 / _CELLS26) * _LAT_SCALE)) / 2
    if latitude > LAT_MAX:
        latitude = LAT_MAX
    elif latitude < LAT_MIN:
        latitude = LAT_MIN
    return longitude, latitude


_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_string(score: float) -> bytes:
    """GEOHASH's 11-character standard geohash (latitude over -90..90, last char '0')."""
    longitude, latitude = decode_score(score)
    bits = encode(longitude, latitude, STEP_MAX, (-180.0, 180.0), (-90.0, 90.0)) or 0
    chars = bytearray(_ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10))
    chars.append(_ALPHABET[0])
    return bytes(chars)


# ----------------------------------------------------------------------------- neighbours


def _move_x(bits: int, step: int, d: int) -> int:
    x = bits & _ODD
    y = bits & _EVEN
    zz = _EVEN >> (64 - step * 2)
    if d > 0:
        x = x + (zz + 1)
    else:
        x = (x | zz) - (zz + 1)
    x &= _ODD >> (64 - step * 2)
    return (x & U64) | y


def _move_y(bits: int, step: int, d: int) -> int:
    x = bits & _ODD
    y = bits & _EVEN
    zz = _ODD >> (64 - step * 2)
    if d > 0:
        y = y + (zz + 1)
    else:
        y = (y | zz) - (zz + 1)
    y &= _EVEN >> (64 - step * 2)
    return x | (y & U64)


def neighbours(bits: int, step: int) -> dict[str, int]:
    """``geohashNeighbors``: the eight cells around ``bits`` at the same step."""
    def at(dx: int, dy: int) -> int:
        moved = _move_x(bits, step, dx) if dx else bits
        return _move_y(moved, step, dy) if dy else moved

    return {"north": at(0, 1), "south": at(0, -1), "east": at(1, 0), "west": at(-1, 0),
            "north_east": at(1, 1), "north_west": at(-1, 1), "south_east": at(1, -1), "south_west": at(-1, -1)}


# ----------------------------------------------------------------------------- search areas


@dataclass
class Shape:
    """A search: centre, unit conversion (metres per unit) and a radius or a box."""

    kind: int
    longitude: float
    latitude: float
    conversion: float
    radius: float = 0.0
    width: float = 0.0
    height: float = 0.0
    bounds: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))


def estimate_steps_by_radius(range_meters: float, latitude: float) -> int:
    """``geohashEstimateStepsByRadius``."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if latitude > 66 or latitude < -66:
        step -= 1
        if latitude > 80 or latitude < -80:
            step -= 1
    return min(max(step, 1), 26)


def bounding_box(shape: Shape) -> tuple[float, float, float, float]:
    """``geohashBoundingBox``: (min lon, min lat, max lon, max lat)."""
    longitude, latitude = shape.longitude, shape.latitude
    height = shape.conversion * (shape.radius if shape.kind == CIRCLE else shape.height / 2)
    width = shape.conversion * (shape.radius if shape.kind == CIRCLE else shape.width / 2)
    lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS)
    long_delta_top = rad_deg(_div(width / EARTH_RADIUS_IN_METERS, _cos(deg_rad(latitude + lat_delta))))
    long_delta_bottom = rad_deg(_div(width / EARTH_RADIUS_IN_METERS, _cos(deg_rad(latitude - lat_delta))))
    delta = long_delta_bottom if latitude < 0 else long_delta_top
    return (longitude - delta, latitude - lat_delta, longitude + delta, latitude + lat_delta)


def search_cells(shape: Shape) -> list[tuple[int, int]]:
    """``geohashCalculateAreasByShapeWGS84`` then ``membersOfAllNeighbors``'s list:
    (bits, step) of the centre cell and its neighbours in Redis's visiting order
    (centre, N, S, E, W, NE, NW, SE, SW), useless cells left out as Redis zeroes them;
    also stores the bounding box in ``shape.bounds``."""
    shape.bounds = bounding_box(shape)
    min_lon, min_lat, max_lon, max_lat = shape.bounds
    if shape.kind == CIRCLE:
        radius_meters = shape.radius
    else:
        radius_meters = _sqrt((shape.width / 2) * (shape.width / 2) + (shape.height / 2) * (shape.height / 2))
    radius_meters *= shape.conversion
    steps = estimate_steps_by_radius(radius_meters, shape.latitude)
    bits = encode(shape.longitude, shape.latitude, steps) or 0
    around = neighbours(bits, steps)
    area = decode(bits, steps)
    # A step too coarse for the neighbours to reach the box's edges: one step coarser.
    decrease = (decode(around["north"], steps).lat_max < max_lat
                or decode(around["south"], steps).lat_min > min_lat
                or decode(around["east"], steps).long_max < max_lon
                or decode(around["west"], steps).long_min > min_lon)
    if steps > 1 and decrease:
        steps -= 1
        bits = encode(shape.longitude, shape.latitude, steps) or 0
        around = neighbours(bits, steps)
        area = decode(bits, steps)
    useless: set[str] = set()
    if steps >= 2:
        if area.lat_min < min_lat:
            useless.update(("south", "south_west", "south_east"))
        if area.lat_max > max_lat:
            useless.update(("north", "north_east", "north_west"))
        if area.long_min < min_lon:
            useless.update(("west", "south_west", "north_west"))
        if area.long_max > max_lon:
            useless.update(("east", "south_east", "north_east"))
    cells = [(bits, steps)]
    for name in ("north", "south", "east", "west", "north_east", "north_west", "south_east", "south_west"):
        cells.append((0, 0) if name in useless else (around[name], steps))
    return cells


def score_range(bits: int, step: int) -> tuple[int, int]:
    """``scoresOfGeoHashBox``: scores [min, max) of every point inside a cell."""
    return align52(bits, step), align52(bits + 1, step)


def lat_distance(lat1: float, lat2: float) -> float:
    """``geohashGetLatDistance``."""
    return EARTH_RADIUS_IN_METERS * abs(deg_rad(lat2) - deg_rad(lat1))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """``geohashGetDistance``: haversine great-circle distance in metres."""
    lon1r = deg_rad(lon1)
    lon2r = deg_rad(lon2)
    v = _sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r = deg_rad(lat1)
    lat2r = deg_rad(lat2)
    u = _sin((lat2r - lat1r) / 2)
    a = u * u + _cos(lat1r) * _cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * _asin(_sqrt(a))


def within(shape: Shape, longitude: float, latitude: float) -> float | None:
    """``geoWithinShape`` for a decoded point: its distance from the centre, or None."""
    if shape.kind == CIRCLE:
        dist = distance(shape.longitude, shape.latitude, longitude, latitude)
        return None if dist > shape.radius * shape.conversion else dist
    width_m = shape.width * shape.conversion
    height_m = shape.height * shape.conversion
    if lat_distance(latitude, shape.latitude) > height_m / 2:
        return None
    if distance(longitude, latitude, shape.longitude, latitude) > width_m / 2:
        return None
    return distance(shape.longitude, shape.latitude, longitude, latitude)


def point_filter(shape: Shape) -> Callable[[float], tuple[float, float, float] | None]:
    """``decodeGeohash`` + ``geoWithinShape`` for one score, with the centre's
    radians and cosine computed once: (longitude, latitude, distance) or None.
    Same operations in the same order as ``distance``/``within`` (coordinates are
    finite here, so only asin's domain needs care)."""
    sin, cos, sqrt, asin = math.sin, math.cos, math.sqrt, math.asin
    radius_r = EARTH_RADIUS_IN_METERS
    two_r = 2.0 * EARTH_RADIUS_IN_METERS
    lon1r = shape.longitude * D_R
    lat1r = shape.latitude * D_R
    cos1 = cos(lat1r)
    decode_point = decode_score

    def centre_distance(lon2: float, lat2: float) -> float:
        v = sin((lon2 * D_R - lon1r) / 2)
        if v == 0.0:
            return radius_r * abs(lat2 * D_R - lat1r)
        lat2r = lat2 * D_R
        u = sin((lat2r - lat1r) / 2)
        root = sqrt(u * u + cos1 * cos(lat2r) * v * v)
        return two_r * asin(root) if root <= 1.0 else math.nan

    if shape.kind == CIRCLE:
        limit = shape.radius * shape.conversion

        def circle(score: float) -> tuple[float, float, float] | None:
            lon, lat = decode_point(score)
            dist = centre_distance(lon, lat)
            return None if dist > limit else (lon, lat, dist)

        return circle

    half_width = shape.width * shape.conversion / 2
    half_height = shape.height * shape.conversion / 2

    def box(score: float) -> tuple[float, float, float] | None:
        lon, lat = decode_point(score)
        latr = lat * D_R
        if radius_r * abs(lat1r - latr) > half_height:
            return None
        v = sin((lon1r - lon * D_R) / 2)
        if v != 0.0:
            u = sin((latr - latr) / 2)
            root = sqrt(u * u + cos(latr) * cos(latr) * v * v)
            across = two_r * asin(root) if root <= 1.0 else math.nan
            if across > half_width:
                return None
        return lon, lat, centre_distance(lon, lat)

    return box


# ----------------------------------------------------------------------------- text forms


_LLONG_MIN = -(1 << 63)


def _llrint(value: float) -> int:
    """C ``llrint`` (round half to even); unrepresentable values give LLONG_MIN."""
    if not math.isfinite(value) or not -9.223372036854775808e18 <= value < 9.223372036854775808e18:
        return _LLONG_MIN
    return round(value)


def format_distance(value: float) -> bytes:
    """``fixedpoint_d2string(..., 4)``: a distance with exactly four decimals."""
    if value == 0:
        return b"0.0000"
    scaled = _llrint(value * 10000.0)
    sign = b"-" if scaled < 0 else b""
    scaled = abs(scaled)
    return b"%s%d.%04d" % (sign, scaled // 10000, scaled % 10000)


def format_coordinate(value: float) -> bytes:
    """``ld2string(..., LD_STR_HUMAN)`` of a double: ``%.17Lf`` without trailing zeros."""
    text = b"%.17f" % value
    text = text.rstrip(b"0").rstrip(b".") if b"." in text else text
    return b"0" if text == b"-0" else text


# ----------------------------------------------------------------------------- Redis's pqsort


def partial_sort(items: list[Any], cmp: Callable[[Any, Any], int], lrange: int, rrange: int) -> None:
    """Redis's ``pqsort`` (Bentley-McIlroy quicksort that only recurses into parts
    overlapping positions ``lrange``..``rrange``), in place, with the same element
    moves, so ties come out in Redis's order.  Offsets are kept in units of
    ``_ES`` "bytes" to reproduce the pointer arithmetic of the range tests."""
    _pqsort(items, 0, len(items), cmp, lrange * _ES, (rrange + 1) * _ES - 1)


_ES = 8


def _med3(items: list[Any], a: int, b: int, c: int, cmp: Callable[[Any, Any], int]) -> int:
    ia, ib, ic = items[a // _ES], items[b // _ES], items[c // _ES]
    if cmp(ia, ib) < 0:
        return b if cmp(ib, ic) < 0 else (c if cmp(ia, ic) < 0 else a)
    return b if cmp(ib, ic) > 0 else (a if cmp(ia, ic) < 0 else c)


def _swap(items: list[Any], a: int, b: int) -> None:
    i, j = a // _ES, b // _ES
    items[i], items[j] = items[j], items[i]


def _vecswap(items: list[Any], a: int, b: int, n: int) -> None:
    for k in range(0, n, _ES):
        _swap(items, a + k, b + k)


def _pqsort(items: list[Any], a: int, n: int, cmp: Callable[[Any, Any], int], lrange: int, rrange: int) -> None:
    es = _ES
    while True:
        if n < 7:
            pm = a + es
            while pm < a + n * es:
                pl = pm
                while pl > a and cmp(items[(pl - es) // es], items[pl // es]) > 0:
                    _swap(items, pl, pl - es)
                    pl -= es
                pm += es
            return
        pm = a + (n // 2) * es
        if n > 7:
            pl = a
            pn = a + (n - 1) * es
            if n > 40:
                d = (n // 8) * es
                pl = _med3(items, pl, pl + d, pl + 2 * d, cmp)
                pm = _med3(items, pm - d, pm, pm + d, cmp)
                pn = _med3(items, pn - 2 * d, pn - d, pn, cmp)
            pm = _med3(items, pl, pm, pn, cmp)
        _swap(items, a, pm)
        pa = pb = a + es
        pc = pd = a + (n - 1) * es
        while True:
            while pb <= pc:
                result = cmp(items[pb // es], items[a // es])
                if result > 0:
                    break
                if result == 0:
                    _swap(items, pa, pb)
                    pa += es
                pb += es
            while pb <= pc:
                result = cmp(items[pc // es], items[a // es])
                if result < 0:
                    break
                if result == 0:
                    _swap(items, pc, pd)
                    pd -= es
                pc -= es
            if pb > pc:
                break
            _swap(items, pb, pc)
            pb += es
            pc -= es
        pn = a + n * es
        r = min(pa - a, pb - pa)
        _vecswap(items, a, pb - r, r)
        r = min(pd - pc, pn - pd - es)
        _vecswap(items, pb, pn - r, r)
        r = pb - pa
        if r > es:
            left, right = a, a + r - 1
            if not ((lrange < left and rrange < left) or (lrange > right and rrange > right)):
                _pqsort(items, a, r // es, cmp, lrange, rrange)
        r = pd - pc
        if r <= es:
            return
        a = pn - r
        n = r // es
        left, right = a, a + r - 1
        if (lrange < left and rrange < left) or (lrange > right and rrange > right):
            return


# ----------------------------------------------------------------------------- entry points

Point = tuple[float, float, bytes, float, float]  # (distance, score, member, longitude, latitude)
Scanner = Callable[[Iterable[tuple[float, bytes]], int, list[Point]], None]

native: ModuleType | None = accel.hllgeo


def use_native(enabled: bool) -> None:
    """Switch the C twins on or off at run time (tests compare both)."""
    global native
    native = accel.hllgeo if enabled else None


def cells_to_scan(shape: Shape) -> list[tuple[int, int]]:
    """``search_cells`` (without setting ``shape.bounds``)."""
    if native is not None:
        return native.geo_cells(shape.kind, shape.longitude, shape.latitude, shape.conversion, shape.radius,
                                shape.width, shape.height)
    return search_cells(shape)


def cell_scanner(shape: Shape) -> Scanner:
    """``membersOfGeoHashBox``'s filter for this search: ``scan(items, limit, found)``
    appends the points of ``(score, member)`` items inside the shape to ``found``,
    stopping once it holds ``limit`` points (0: no limit)."""
    test = point_filter(shape)

    def scan(items: Iterable[tuple[float, bytes]], limit: int, found: list[Point]) -> None:
        for score, member in items:
            hit = test(score)
            if hit is not None:
                found.append((hit[2], score, member, hit[0], hit[1]))
                if limit and len(found) >= limit:
                    break

    return scan


SORT_NONE, SORT_ASC, SORT_DESC = 0, 1, 2


def collect_points(spans: list[Iterable[tuple[float, bytes]]], shape: Shape, limit: int, order: int,
                   count: int) -> list[Point]:
    """``membersOfAllNeighbors`` then the sort: the points of the cells' ``(score,
    member)`` spans inside the shape, span by span, stopping at ``limit`` points when it
    is not 0 (COUNT ... ANY); sorted by distance (``order``); the first ``count`` (0: all)."""
    if native is not None:
        if shape.kind == CIRCLE:
            a, b = shape.radius * shape.conversion, 0.0
        else:
            a, b = shape.width * shape.conversion / 2, shape.height * shape.conversion / 2
        points, done = native.geo_search(spans, shape.kind, shape.longitude, shape.latitude, a, b, limit, order,
                                         count)
        if done:
            return points
        # C left them unsorted (a NaN distance, or a pqsort too deep for it): sorted below
    else:
        points = []
        scan = cell_scanner(shape)
        for items in spans:
            if points and limit and len(points) >= limit:
                break
            scan(items, limit, points)
    returned = len(points) if count == 0 or len(points) < count else count
    if order != SORT_NONE:
        sort_nearest(points, order == SORT_DESC, returned)
    del points[returned:]
    return points


def _ascending(a: Point, b: Point) -> int:
    if a[0] > b[0]:
        return 1
    if a[0] == b[0]:
        return 0
    return -1


def _descending(a: Point, b: Point) -> int:
    return -_ascending(a, b)


def sort_nearest(points: list[Point], descending: bool, count: int) -> None:
    """Sort by distance as Redis does: qsort (glibc's stable merge sort) of everything,
    or ``pqsort`` when only the first ``count`` points matter."""
    cmp = _descending if descending else _ascending
    if count >= len(points):
        if any(p[0] != p[0] for p in points):  # NaN: only the comparator's answers count
            points.sort(key=functools.cmp_to_key(cmp))
        else:
            points.sort(key=_distance_of, reverse=descending)
    elif native is None or not native.geo_pqsort(points, descending, 0, count - 1):
        partial_sort(points, cmp, 0, count - 1)


def _distance_of(point: Point) -> float:
    return point[0]


def points_reply(points: list[Point], conversion: float, withdist: bool, withhash: bool, withcoord: bool,
                 resp3: bool) -> bytes:
    """The encoded reply of a search with WITHDIST, WITHHASH or WITHCOORD: per point an
    array of the member, its distance in the unit, its score as an integer, its
    coordinates (bulk strings in RESP2, doubles in RESP3)."""
    if native is not None:
        return native.geo_reply(points, len(points), conversion, withdist, withhash, withcoord, resp3)
    out = [b"*%d\r\n" % len(points)]
    fields = 1 + withdist + withhash + withcoord
    for dist, score, member, longitude, latitude in points:
        out.append(b"*%d\r\n$%d\r\n%s\r\n" % (fields, len(member), member))
        if withdist:
            text = format_distance(dist / conversion)
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
        if withhash:
            out.append(b":%d\r\n" % score_as_long_long(score))
        if withcoord:
            out.append(b"*2\r\n" + _coordinate_wire(longitude, resp3) + _coordinate_wire(latitude, resp3))
    return b"".join(out)


def positions_reply(scores: list[float | None], resp3: bool) -> bytes:
    """GEOPOS's encoded reply: ``[longitude, latitude]`` per score, a null array for None."""
    if native is not None:
        return native.geo_pos(scores, resp3)
    out = [b"*%d\r\n" % len(scores)]
    for score in scores:
        if score is None:
            out.append(b"_\r\n" if resp3 else b"*-1\r\n")
        else:
            longitude, latitude = decode_score(score)
            out.append(b"*2\r\n" + _coordinate_wire(longitude, resp3) + _coordinate_wire(latitude, resp3))
    return b"".join(out)


def _coordinate_wire(value: float, resp3: bool) -> bytes:
    """``addReplyHumanLongDouble``: a bulk string in RESP2, a double in RESP3."""
    text = format_coordinate(value)
    return b",%s\r\n" % text if resp3 else b"$%d\r\n%s\r\n" % (len(text), text)


def score_as_long_long(score: float) -> int:
    """C's ``(long long)score`` (x86-64: unrepresentable values give LLONG_MIN)."""
    if not -9.223372036854775808e18 <= score < 9.223372036854775808e18:
        return _LLONG_MIN
    return int(score)
