"""Event-loop and instantaneous statistics of INFO (Redis's ``eventloop_*`` fields and
``trackInstantaneousMetric``): counters the server bumps, sampled by its cron.  Pure: the
caller passes the clock readings.

A "cycle" here is one pass of the loop that did work for Redis-visible reasons: a read handed
to a client, or a cron tick.  Durations are measured for cron ticks and for reads the Python
path runs; reads the C request loop answers whole count as cycles and in the CPU time total.
"""

from __future__ import annotations

from collections import deque

SAMPLES = 16  # STATS_METRIC_SAMPLES


class Rate:
    """trackInstantaneousMetric: the average of the last 16 per-second rates of a counter."""

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=SAMPLES)
        self.last_value = 0
        self.last_ms = -1.0

    def sample(self, value: int, now_ms: float) -> None:
        if self.last_ms >= 0 and now_ms > self.last_ms:
            self.samples.append((value - self.last_value) * 1000 / (now_ms - self.last_ms))
        self.last_value, self.last_ms = value, now_ms

    def value(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else 0.0


class LoopStats:
    def __init__(self) -> None:
        self.ticks = 0  # cron ticks (the server adds its reads for eventloop_cycles)
        self.cron_us = 0  # eventloop_duration_cron_sum
        self.max_us = 0  # eventloop_duration_max (of the passes measured)
        self.commands_per_cycle_max = 0
        self.cycle_rate = Rate()  # instantaneous_eventloop_cycles_per_sec
        self.busy_rate = Rate()  # busy µs per second: with the cycle rate, µs per cycle
        self.input_rate = Rate()
        self.output_rate = Rate()

    def measured(self, duration_us: int, commands: int) -> None:
        """One pass of the loop whose duration was measured (a cron tick, a Python-run read)."""
        if duration_us > self.max_us:
            self.max_us = duration_us
        if commands > self.commands_per_cycle_max:
            self.commands_per_cycle_max = commands

    def sample(self, now_ms: float, cycles: int, busy_us: int, net_input: int, net_output: int) -> None:
        self.cycle_rate.sample(cycles, now_ms)
        self.busy_rate.sample(busy_us, now_ms)
        self.input_rate.sample(net_input, now_ms)
        self.output_rate.sample(net_output, now_ms)

    def duration_per_cycle_us(self) -> int:
        """instantaneous_eventloop_duration_usec: busy time per cycle over the sampled window."""
        cycles = self.cycle_rate.value()
        return int(self.busy_rate.value() / cycles) if cycles > 0 else 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]
