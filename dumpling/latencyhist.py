"""Per-command latency histograms: what Redis 7 keeps in each command's HdrHistogram
(``latency-tracking``) and reports in INFO ``latencystats`` and LATENCY HISTOGRAM.

Redis records every call's duration in microseconds, times 1000, into an HdrHistogram
made with ``hdr_init(1, 1000000000, 2)``: values from 1 ns to 1 s, two significant
figures.  That layout is plain arithmetic: the first 256 values are counted exactly,
then each power-of-two range [2^k, 2^(k+1)) (k >= 8) is cut into 128 slots of 2^(k-7).
A slot is an *index* (0 .. COUNTS_LEN-1), and everything reported is a function of the
(index, count) pairs, which is all a histogram object has to give:

- ``Histogram`` here is the pure-Python store; ``dumpling._fastpath.Histogram`` is its C
  twin (the request loop records into it without calling Python).  Both have
  ``record(usec)``, ``total`` and ``items()`` (sorted (index, count) pairs, counts > 0).
- ``percentile_ns`` is hdr_value_at_percentile, ``percentiles_line`` INFO's line,
  ``cumulative_usec`` LATENCY HISTOGRAM's ``histogram_usec`` (hdr_iter_log from 1024 ns,
  base 2, as Redis's fillCommandCDF walks it).

Pure: no server state; the caller decides whether tracking is on.
"""

from __future__ import annotations

from collections.abc import Iterable

LOWEST_NS = 1  # LATENCY_HISTOGRAM_MIN_VALUE
HIGHEST_NS = 1_000_000_000  # LATENCY_HISTOGRAM_MAX_VALUE
SUB_BUCKET_HALF_MAGNITUDE = 7  # 2 significant figures: 256 sub-buckets, 128 per half
SUB_BUCKET_HALF = 1 << SUB_BUCKET_HALF_MAGNITUDE
SUB_BUCKET_MASK = (2 * SUB_BUCKET_HALF) - 1
BUCKET_COUNT = 23  # buckets needed so that 256 << (23 - 1) > HIGHEST_NS
COUNTS_LEN = (BUCKET_COUNT + 1) * SUB_BUCKET_HALF  # 3072
FIRST_REPORT_NS = 1024  # fillCommandCDF: hdr_iter_log_init(&iter, histogram, 1024, 2)


def index_of(ns: int) -> int:
    """The slot counting ``ns`` (counts_index_for with unit magnitude 0)."""
    bucket = (ns | SUB_BUCKET_MASK).bit_length() - (SUB_BUCKET_HALF_MAGNITUDE + 1)
    return ((bucket + 1) << SUB_BUCKET_HALF_MAGNITUDE) + (ns >> bucket) - SUB_BUCKET_HALF


def value_at(index: int) -> int:
    """The lowest value a slot counts (hdr_value_at_index)."""
    bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) - 1
    sub = (index & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF
    if bucket < 0:
        sub -= SUB_BUCKET_HALF
        bucket = 0
    return sub << bucket


def highest_in_slot(index: int) -> int:
    """The highest value the slot of ``index`` counts (highest_equivalent_value)."""
    low = value_at(index)
    bucket = (low | SUB_BUCKET_MASK).bit_length() - (SUB_BUCKET_HALF_MAGNITUDE + 1)
    return low + (1 << bucket) - 1


def ns_of_usec(usec: int) -> int:
    """What Redis records for a call of ``usec`` microseconds (updateCommandLatencyHistogram)."""
    return min(max(usec * 1000, LOWEST_NS), HIGHEST_NS)


class Histogram:
    """One command's recorded durations: counts by slot (the pure twin of the C type)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    def record(self, usec: int) -> None:
        index = index_of(ns_of_usec(usec))
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1

    def items(self) -> list[tuple[int, int]]:
        return sorted(self.counts.items())


def percentile_ns(items: Iterable[tuple[int, int]], total: int, percentile: float) -> int:
    """hdr_value_at_percentile: the highest value of the first slot where the running count
    reaches ``percentile`` of ``total`` (rounded half up, at least 1); for 0 the lowest."""
    wanted = max(int(min(percentile, 100.0) / 100 * total + 0.5), 1)
    running = 0
    found = 0  # get_value_from_idx_up_to_count's answer when the counts fall short
    for index, count in items:
        running += count
        if running >= wanted:
            found = index
            break
    if percentile == 0.0:
        return value_at(found)
    return highest_in_slot(found)


def percentiles_line(name: str, histogram: Histogram, percentiles: list[str]) -> str:
    """INFO latencystats' line for one command: ``p50=1.003,p99=...`` (µs, %.3f)."""
    items = histogram.items()
    total = histogram.total
    values = ",".join(f"p{p}={percentile_ns(items, total, float(p)) / 1000:.3f}" for p in percentiles)
    return f"latency_percentiles_usec_{name}:{values}"


def cumulative_usec(items: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """LATENCY HISTOGRAM's ``histogram_usec``: (µs, calls so far) at 1024 ns, 2048 ns, ...

    Redis's log iterator stops at the slot holding each power of two and reports that
    slot's highest value (in µs, truncated) with the count up to and including that slot;
    levels that added nothing are left out, and the walk ends once every call is counted
    (or at the last slot, for durations past the last level)."""
    out: list[tuple[int, int]] = []
    level = FIRST_REPORT_NS
    running = previous = 0
    pos = 0
    while True:
        index = min(index_of(level), COUNTS_LEN - 1)
        while pos < len(items) and items[pos][0] <= index:
            running += items[pos][1]
            pos += 1
        if running > previous:
            out.append((highest_in_slot(index) // 1000, running))
        previous = running
        if running >= total or index == COUNTS_LEN - 1:
            return out
        level *= 2
