"""The latency monitor (Redis's latency.c): per event ("command", "fast-command",
"expire-cycle"), the worst latency of each second over the last 160 seconds that had one at or
over ``latency-monitor-threshold``, and the all-time maximum; LATENCY LATEST / HISTORY / RESET /
GRAPH / DOCTOR read them.  Pure: the caller passes the time and the settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HISTORY_LEN = 160  # LATENCY_TS_LEN
GRAPH_COLUMNS = 80  # LATENCY_GRAPH_COLS

DISABLED_REPORT = (
    "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use "
    '"CONFIG SET latency-monitor-threshold <milliseconds>." in order to enable it. If we weren\'t in a deep '
    "space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
)


@dataclass
class Series:
    """One event: (unix second, ms) samples, oldest first, and the all-time maximum."""

    samples: list[tuple[int, int]] = field(default_factory=list)
    max: int = 0


class LatencyMonitor:
    def __init__(self) -> None:
        self.events: dict[str, Series] = {}

    def add(self, event: str, ms: int, now: int) -> None:
        """latencyAddSample: within one second only the worst sample is kept."""
        series = self.events.get(event)
        if series is None:
            series = self.events[event] = Series()
        series.max = max(series.max, ms)
        samples = series.samples
        if samples and samples[-1][0] == now:
            if ms > samples[-1][1]:
                samples[-1] = (now, ms)
            return
        samples.append((now, ms))
        if len(samples) > HISTORY_LEN:
            del samples[0]

    def _find(self, event: str) -> str | None:
        return event if event in self.events else None

    def reset(self, events: list[str] | None) -> int:
        """Forget the named events (all without names; names match without case): how many."""
        if events is None:
            count = len(self.events)
            self.events.clear()
            return count
        count = 0
        for wanted in events:
            for name in [n for n in self.events if n.lower() == wanted.lower()]:
                del self.events[name]
                count += 1
        return count

    def latest(self) -> list[list[object]]:
        return [[name.encode(), s.samples[-1][0], s.samples[-1][1], s.max] for name, s in self.events.items()]

    def history(self, event: str) -> list[list[int]]:
        series = self.events.get(event)
        return [[t, ms] for t, ms in series.samples] if series is not None else []

    def graph(self, event: str, now: int) -> str | None:
        """latencyCommandGenSparkeline: a title line, a rule, and a 4-row sparkline of the samples
        labelled with how long ago each happened (None: no such event)."""
        series = self.events.get(event)
        if series is None:
            return None
        values = [ms for _, ms in series.samples]
        labels = [_ago(now - t) for t, _ in series.samples]
        low, high = (min(values), max(values)) if values else (0, 0)
        head = f"{event} - high {high} ms, low {low} ms (all time high {series.max} ms)\n" + "-" * GRAPH_COLUMNS + "\n"
        return head + sparkline(values, labels, GRAPH_COLUMNS, 4)

    def doctor(self, now: int, threshold_ms: int, slowlog_us: int, slowlog_max_len: int, hz: int) -> str:
        """createLatencyReport, for the events dumpling records."""
        if not self.events and not threshold_ms:
            return DISABLED_REPORT
        out: list[str] = []
        advice: set[str] = set()
        for number, (name, series) in enumerate(self.events.items(), 1):
            if number == 1:
                out.append("Dave, I have observed latency spikes in this Redis instance. "
                           "You don't mind talking about it, do you Dave?\n\n")
            values = [ms for _, ms in series.samples]
            count = len(values)
            avg = sum(values) // count if count else 0
            mad = sum(abs(avg - v) for v in values) // count if count else 0
            period = max(now - min(t for t, _ in series.samples), 1) if count else 0
            out.append(f"{number}. {name}: {count} latency spikes (average {avg}ms, mean deviation {mad}ms, "
                       f"period {period / count if count else math.nan:.2f} sec). Worst all time event {series.max}ms.\n")
            if name == "command":
                if slowlog_us < 0 or slowlog_max_len == 0:
                    advice.add("slowlog-enable")
                elif slowlog_us // 1000 > threshold_ms:
                    advice.add("slowlog-tuning")
                advice.update(("slowlog-inspect", "large-objects"))
            elif name == "fast-command":
                advice.add("scheduler")
            elif name == "expire-cycle":
                advice.update(("hz", "large-objects"))
        if not self.events and not advice:
            out.append("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the "
                       "slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think "
                       "things over.\n")
        elif not advice:
            out.append("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the "
                       "Redis community to get some help, providing this report in your help request.\n")
        else:
            out.append("\nI have a few advices for you:\n\n")
            out.extend(_ADVICE[key](threshold_ms) for key in _ADVICE_ORDER if key in advice
                       and (key != "hz" or hz < 100))
        return "".join(out)


_ADVICE_ORDER = ("slowlog-enable", "slowlog-tuning", "slowlog-inspect", "scheduler", "hz", "large-objects")
_ADVICE = {
    "slowlog-enable": lambda t: (
        "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis "
        f"feature using the command 'CONFIG SET slowlog-log-slower-than {t * 1000}'. If the Slow log is disabled "
        "Redis is not able to log slow commands execution for you.\n"),
    "slowlog-tuning": lambda t: (
        "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor "
        f"threshold. Please use 'CONFIG SET slowlog-log-slower-than {t * 1000}'.\n"),
    "slowlog-inspect": lambda t: (
        "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. "
        "Please check https://redis.io/commands/slowlog for more information.\n"),
    "scheduler": lambda t: (
        "- The system is slow to execute Redis code paths not containing system calls. This usually means the system "
        "does not provide Redis CPU time to run for long periods. You should try to:\n"
        "  1) Lower the system load.\n"
        "  2) Use a computer / VM just for Redis if you are running other software in the same system.\n"
        "  3) Check if you have a \"noisy neighbour\" problem.\n"
        "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n"
        "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using "
        "Jemalloc. However this may create fragmentation problems.\n"),
    "hz": lambda t: (
        "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration "
        "parameter to 100 using 'CONFIG SET hz 100'.\n"),
    "large-objects": lambda t: (
        "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you "
        "have very large objects that are often deleted, expired, or evicted, try to fragment those objects into "
        "multiple smaller objects.\n"),
}


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def sparkline(values: list[int], labels: list[str], columns: int, rows: int) -> str:
    """sparklineRender with SPARKLINE_FILL: ``rows`` rows of ``_o#`` steps (``|`` below the top of a
    column), then each label written downwards under its sample, ``columns`` samples per block."""
    if not values:
        return ""
    low, high = min(values), max(values)
    blocks = []
    for start in range(0, len(values), columns):
        blocks.append(_render_range(values[start : start + columns], labels[start : start + columns], low, high, rows))
    return "\n".join(blocks)


def _render_range(values: list[int], labels: list[str], low: int, high: int, rows: int) -> str:
    charset = "_o#"
    span = (high - low) or 1
    steps = len(charset) * rows
    # (C's "(int) (relval*steps)/relmax": the product is truncated before the division)
    levels = [min(max(int(int((v - low) * steps) / span), 0), steps - 1) for v in values]
    lines = []
    for row in range(rows):
        chars = []
        for level in levels:
            index = level - (rows - row - 1) * len(charset)
            chars.append(charset[index] if 0 <= index < len(charset) else "|" if index >= len(charset) else " ")
        lines.append("".join(chars))
    has_labels = any(labels)
    depth = max((len(label) for label in labels), default=0)
    if has_labels:
        lines.append(" " * len(values))  # label_margin_top
        for row in range(depth):
            lines.append("".join(label[row] if len(label) > row else " " for label in labels))
    return "".join(line + "\n" for line in lines)
