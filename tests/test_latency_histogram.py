"""Per-command latency histograms (``latency-tracking``): INFO latencystats and LATENCY HISTOGRAM.

Durations differ between servers, so the differential tests compare what must agree: which
commands have a histogram, how many calls each recorded (calls inside MULTI/EXEC and scripts,
a blocked call once when served, failed calls; rejected ones not), the reply's shape in RESP2
and RESP3, the percentiles named, and that every bucket and value is one Redis's HdrHistogram
can print.  The arithmetic itself is pinned by vectors recorded from Redis 7.4.1's
hdr_histogram (``hdr_init(1, 1e9, 2)``, the calls Redis makes), for the Python store and its C twin.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest

from dumpling import accel
from dumpling.latencyhist import (
    COUNTS_LEN,
    FIRST_REPORT_NS,
    Histogram,
    cumulative_usec,
    highest_in_slot,
    index_of,
    percentile_ns,
    percentiles_line,
    value_at,
)
from tests.servers import RawConnection, ServerProcess, encode_command, parse_reply, start_dumpling

# (durations in µs) -> hdr_value_at_percentile for 0, 50, 99, 99.9, 100 and 33.3, in µs as Redis
# prints them, and fillCommandCDF's (µs, cumulative) pairs: from Redis 7.4.1's hdr_histogram.c.
VECTORS = [
    ([0, 1, 5], "0.001 1.003 5.023 5.023 5.023 0.001", [(1, 2), (8, 3)]),
    ([0] * 8 + [2, 131], "0.001 0.001 131.071 131.071 131.071 0.001", [(1, 8), (2, 9), (132, 10)]),
    ([132, 255, 1023, 1024, 4096, 70000], "131.072 1023.999 70254.591 70254.591 70254.591 255.999",
     [(132, 1), (264, 2), (1056, 4), (4227, 5), (135266, 6)]),
    ([536870, 536871, 1000000, 2000000], "534773.760 541065.215 1002438.655 1002438.655 1002438.655 536870.911",
     [(541065, 2), (1073741, 4)]),
    ([999], "995.328 999.423 999.423 999.423 999.423 999.423", [(1056, 1)]),
]
PERCENTILES = [0.0, 50.0, 99.0, 99.9, 100.0, 33.3]

# Every bucket LATENCY HISTOGRAM can print: the highest value of the slot of each power of two
# from 1024 ns on, in µs, and the last slot's (durations past the last level).
BUCKETS_USEC = {highest_in_slot(min(index_of(FIRST_REPORT_NS << k), COUNTS_LEN - 1)) // 1000 for k in range(21)}
# Every value INFO can print: a slot's highest value (or, for p0, its lowest), in µs with 3 decimals.
SLOT_VALUES = {f"{highest_in_slot(i) / 1000:.3f}" for i in range(COUNTS_LEN)} | {
    f"{value_at(i) / 1000:.3f}" for i in range(COUNTS_LEN)}


def stores() -> list[type]:
    kinds: list = [Histogram]
    if accel.fastpath is not None:
        kinds.append(accel.fastpath.histogram)
    return kinds


@pytest.mark.parametrize("make", stores(), ids=lambda m: "python" if m is Histogram else "c")
def test_vectors_from_redis_hdr_histogram(make) -> None:  # type: ignore[no-untyped-def]
    for durations, percentiles, cdf in VECTORS:
        histogram = make()
        for usec in durations:
            histogram.record(usec)
        items = histogram.items()
        assert histogram.total == len(durations)
        assert " ".join(f"{percentile_ns(items, histogram.total, p) / 1000:.3f}" for p in PERCENTILES) == percentiles
        assert cumulative_usec(items, histogram.total) == cdf


@pytest.mark.skipif(accel.fastpath is None, reason="no C accelerator")
def test_c_store_matches_python_store() -> None:
    rng = random.Random(18)
    for _ in range(200):
        ours, reference = accel.fastpath.histogram(), Histogram()
        for _ in range(rng.randrange(1, 40)):
            usec = rng.choice([rng.randrange(300), int(10 ** rng.uniform(0, 7.5)), -1, 0, 10**12])
            ours.record(usec)
            reference.record(usec)
        assert ours.items() == reference.items() and ours.total == reference.total
        line = percentiles_line("x", ours, ["50", "99.9"])
        assert line == percentiles_line("x", reference, ["50", "99.9"])


# ----------------------------------------------------------------------------- against Redis


@pytest.fixture(scope="module")
def pure_server() -> Iterator[ServerProcess]:
    server = start_dumpling(env={"DUMPLING_PURE": "1"})
    yield server
    server.stop()


@pytest.fixture(params=["c", "pure"])
def ours(request: pytest.FixtureRequest, dumpling_server: ServerProcess) -> ServerProcess:
    """dumpling with its C request loop (its twins and general path record calls) and without."""
    if request.param == "pure":
        return request.getfixturevalue("pure_server")
    if accel.fastpath is None:
        pytest.skip("no C accelerator")
    return dumpling_server


def run_workload(server: ServerProcess) -> None:
    """The same calls on each server: pipelined (the C loop's twins and plain handlers), a
    transaction, a script, a served BLPOP, a failed call, a rejected one, a subcommand."""
    with server.raw() as conn, server.raw() as blocker:
        conn.call("CONFIG", "RESETSTAT")
        conn.call("DEL", "list", "h")
        batch = [("SET", f"k{i}", i) for i in range(30)] + [("GET", "k1")] * 10 + [("HSET", "h", "f", "v")] * 5
        batch += [("HGET", "h", "f")] * 5 + [("INCR", "k1")] * 3
        conn.send(b"".join(encode_command(*args) for args in batch))
        for _ in batch:
            conn.read_reply()
        for args in [("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("EXEC",),
                     ("EVAL", "redis.call('set', KEYS[1], 'x'); return redis.call('get', KEYS[1])", "1", "s"),
                     ("HSET", "k1", "f", "v"),  # WRONGTYPE: a failed call is recorded
                     ("GET",),  # arity: rejected, not recorded
                     ("CLIENT", "ID")]:
            conn.call(*args)
        blocker.send(encode_command("BLPOP", "list", "0"))
        while b"cmd=blpop" not in conn.call("CLIENT", "LIST"):
            pass
        conn.call("LPUSH", "list", "x")
        assert blocker.read_reply() == b"*2\r\n$4\r\nlist\r\n$1\r\nx\r\n"


def histograms(conn: RawConnection, *names: str) -> list[tuple[bytes, int, list[tuple[int, int]]]]:
    """LATENCY HISTOGRAM in RESP2, checked for its shape: [(name, calls, buckets)] in reply order."""
    reply = parse_reply(conn.call("LATENCY", "HISTOGRAM", *names))
    assert isinstance(reply, list) and len(reply) % 2 == 0
    out = []
    for name, body in zip(reply[::2], reply[1::2], strict=True):
        assert isinstance(body, list) and body[0] == b"calls" and body[2] == b"histogram_usec"
        flat = body[3]
        buckets = list(zip(flat[::2], flat[1::2], strict=True))
        out.append((name, body[1], buckets))
    return out


def check_buckets(calls: int, buckets: list[tuple[int, int]]) -> None:
    """Cumulative counts at known buckets, growing, ending at the number of calls."""
    assert buckets and buckets[-1][1] == calls
    assert all(usec in BUCKETS_USEC for usec, _ in buckets), buckets
    assert [usec for usec, _ in buckets] == sorted({usec for usec, _ in buckets})
    assert all(a[1] < b[1] for a, b in zip(buckets, buckets[1:], strict=False))


def test_latency_histogram_against_redis(ours: ServerProcess, redis_server: ServerProcess) -> None:
    seen = []
    for server in (ours, redis_server):
        run_workload(server)
        with server.raw() as conn:
            everything = histograms(conn)
            chosen = histograms(conn, "set", "BLPOP", "client", "nosuchcommand", "config|resetstat", "set", "get|x")
        for _, calls, buckets in everything + chosen:
            check_buckets(calls, buckets)
        # (CLIENT LIST polled until BLPOP blocked: any number of calls)
        seen.append((sorted((name, calls) for name, calls, _ in everything if name != b"client|list"),
                     [(n, c) for n, c, _ in chosen if n != b"client|list"]))
    assert seen[0] == seen[1]
    everything, chosen = seen[0]
    assert (b"set", 32) in everything and (b"get", 11) in everything and (b"blpop", 1) in everything
    assert (b"hset", 6) in everything and (b"exec", 1) in everything and (b"eval", 1) in everything
    assert (b"incr", 4) in everything and (b"get|x", 1) not in everything
    assert chosen == [(b"set", 32), (b"blpop", 1), (b"client|id", 1), (b"config|resetstat", 1), (b"set", 32)]


HISTOGRAM_RESP3 = re.compile(rb"%1\r\n\$3\r\nset\r\n%2\r\n\$5\r\ncalls\r\n:(\d+)\r\n\$14\r\nhistogram_usec\r\n"
                             rb"%(\d+)\r\n((?::\d+\r\n)*)")


def test_latency_histogram_resp3_shape(ours: ServerProcess, redis_server: ServerProcess) -> None:
    """RESP3: maps all the way down, the buckets integer keys."""
    seen = []
    for server in (ours, redis_server):
        with server.raw() as conn:
            conn.call("HELLO", "3")
            conn.call("CONFIG", "RESETSTAT")
            for i in range(5):
                conn.call("SET", "k", i)
            raw = conn.call("LATENCY", "HISTOGRAM", "set")
        match = HISTOGRAM_RESP3.fullmatch(raw)
        assert match is not None, raw
        numbers = [int(n) for n in match[3][1:-2].split(b"\r\n:")]
        assert len(numbers) == 2 * int(match[2])
        check_buckets(int(match[1]), list(zip(numbers[::2], numbers[1::2], strict=True)))
        seen.append(int(match[1]))
    assert seen == [5, 5]


def latencystats(conn: RawConnection) -> dict[str, list[tuple[str, str]]]:
    text = parse_reply(conn.call("INFO", "latencystats"))
    assert isinstance(text, bytes)
    lines = text.decode().split("\r\n")
    assert lines[0] == "# Latencystats" and lines[-1] == ""
    out = {}
    for line in lines[1:-1]:
        name, values = line.removeprefix("latency_percentiles_usec_").split(":")
        out[name] = [tuple(v.split("=")) for v in values.split(",")]
        assert all(value in SLOT_VALUES for _, value in out[name]), line
    return out


def test_info_latencystats_against_redis(ours: ServerProcess, redis_server: ServerProcess) -> None:
    seen = []
    for server in (ours, redis_server):
        run_workload(server)
        with server.raw() as conn:
            default = latencystats(conn)
            conn.call("CONFIG", "SET", "latency-tracking-info-percentiles", "0 50.5 100")
            try:
                chosen = latencystats(conn)
                conn.call("CONFIG", "SET", "latency-tracking-info-percentiles", "")
                nothing = sorted(parse_reply(conn.call("INFO", "latencystats")).split(b"\r\n"))  # type: ignore[union-attr]
            finally:
                conn.call("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")
        assert all([p for p, _ in values] == ["p50", "p99", "p99.9"] for values in default.values())
        assert all([p for p, _ in values] == ["p0", "p50.5", "p100"] for values in chosen.values())
        for values in chosen.values():  # p0 <= p50.5 <= p100
            assert sorted(float(v) for _, v in values) == [float(v) for _, v in values]
        seen.append((sorted(default), sorted(chosen), nothing))
    assert seen[0] == seen[1]
    assert {"set", "get", "hset", "blpop", "exec", "eval", "client|id", "config|resetstat"} <= set(seen[0][0])


def test_latency_tracking_off(ours: ServerProcess, redis_server: ServerProcess) -> None:
    """latency-tracking no: no call is recorded (not the CONFIG SET that turns it off either),
    INFO's section is empty, the histograms kept so far still answer; on again, calls count."""
    seen = []
    for server in (ours, redis_server):
        with server.raw() as conn:
            conn.call("CONFIG", "RESETSTAT")
            conn.call("SET", "k", "v")
            conn.call("CONFIG", "SET", "latency-tracking", "no")
            try:
                conn.send(encode_command("SET", "k", "v") * 5 + encode_command("HSET", "h", "f", "v") * 3)
                for _ in range(8):
                    conn.read_reply()
                conn.call("GET", "k")
                off = ([(n, c) for n, c, _ in histograms(conn)], parse_reply(conn.call("INFO", "latencystats")))
            finally:
                conn.call("CONFIG", "SET", "latency-tracking", "yes")
            conn.call("SET", "k", "v")
            on = sorted((n, c) for n, c, _ in histograms(conn))
            cmdstat = [line for line in parse_reply(conn.call("INFO", "commandstats")).split(b"\r\n")  # type: ignore[union-attr]
                       if line.startswith(b"cmdstat_set:")]
        seen.append((sorted(off[0]), off[1], on, cmdstat[0].split(b",")[0]))
    assert seen[0] == seen[1]
    off_histograms, off_info, on, set_calls = seen[0]
    assert off_histograms == [(b"config|resetstat", 1), (b"set", 1)] and off_info == b"# Latencystats\r\n"
    assert (b"set", 2) in on and (b"config|set", 1) in on and (b"hset", 0) not in on
    assert set_calls == b"cmdstat_set:calls=7"  # commandstats counted them all


def test_resetstat_drops_histograms(ours: ServerProcess, redis_server: ServerProcess) -> None:
    """CONFIG RESETSTAT drops every histogram; it records itself after it ran."""
    seen = []
    for server in (ours, redis_server):
        with server.raw() as conn:
            conn.call("SET", "k", "v")
            conn.call("CONFIG", "RESETSTAT")
            seen.append([(n, c) for n, c, _ in histograms(conn)])
    assert seen[0] == seen[1] == [(b"config|resetstat", 1)]
