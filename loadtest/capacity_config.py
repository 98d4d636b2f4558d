"""The capacity search's settings (`CapacitySearchConfig`), declared once: each option's default, help and check
here, and `mtserve loadtest`'s (and `mtserve bench`'s) search flags generated from them (core/options.py);
saved beside every search's results (capacity.json `settings`). `SHORT` is the preset `--short` (make demo)
lays the given flags over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mtserve.core.errors import UserError
from mtserve.core.options import NON_NEGATIVE, POSITIVE, Options, option
from mtserve.loadtest import stability

AT_LEAST_ONE = (lambda v: v >= 1, "must be >= 1")


@dataclass
class CapacitySearchConfig(Options):
    """Everything that bounds and shapes one capacity search (saved beside its results). The fields without
    a flag are set by the commands that need them (`--short`, mtserve bench's sweep)."""

    slo_p99_ms: float = option(
        200.0, "p99 latency SLO per utterance", flag="--slo-ms", check=POSITIVE, show="{:g}".format
    )
    min_rps: float = option(
        0.25,
        "lowest rate tried; failing there = no rate meets the SLO",
        check=POSITIVE,
        show="{:g}".format,
    )
    max_rps: float = option(2000.0, "highest rate tried", check=POSITIVE, show="{:g}".format)
    start_rps: float = option(
        0.0,
        "first rate tried",
        check=NON_NEGATIVE,
        show=lambda v: f"{v:g}" if v else "half the unloaded rate",
    )
    start_factor: float = 0.5  # start_rps 0: start at start_factor x the unloaded rate (1 / p50)
    growth: float = option(
        2.0,
        "step factor before a bracket is found",
        check=(lambda v: v > 1, "must be > 1"),
        show="{:g}".format,
    )
    rel_tol: float = option(0.1, "bisect until fail/pass <= 1 + this", check=POSITIVE, show="{:g}".format)
    confirm_fail: bool = True  # measure every failing rate once more before it counts (rate_search.py)
    paired_rounds: int = option(
        2,
        "rounds of the paired check: every bracket measured again back to back, reopened where it does not hold "
        "(0: none)",
        check=NON_NEGATIVE,
    )
    max_steps: int = option(10, "steps per workload", check=AT_LEAST_ONE)
    min_duration_s: float = option(
        5.0, "shortest measurement window, s", flag="--duration", check=POSITIVE, show="{:g}".format
    )
    max_duration_s: float = option(
        30.0, "longest measurement window, s", flag="--max-duration", check=POSITIVE, show="{:g}".format
    )
    min_samples: int = option(200, "utterances a window aims for", check=AT_LEAST_ONE)
    warmup_s: float = option(
        2.0, "seconds before each step's windows", flag="--warmup", check=NON_NEGATIVE, show="{:g}".format
    )
    # each step repeats its window until the last `stable_windows` agree within `stability_tolerance` (throughput
    # and p99; loadtest/stability.py: perf_analyzer's rule, 3 windows and 10% there too), at most `max_windows`
    stable_windows: int = option(
        stability.STABLE_WINDOWS,
        "windows per step that must agree (1: one window decides)",
        check=AT_LEAST_ONE,
    )
    stability_tolerance: float = option(
        stability.TOLERANCE,
        "how far apart (fraction) their served rates and p99s may be (perf_analyzer's: 10%%)",
        check=POSITIVE,
        show="{:g}".format,
    )
    max_windows: int = option(
        10,  # perf_analyzer's --max-trials
        "windows per step at most; not stable by then = unstable, judged on every window pooled",
        check=AT_LEAST_ONE,
    )
    max_users: int = option(256, "Locust users per step at most", check=AT_LEAST_ONE)
    max_time_s: float = option(
        900.0, "seconds for the whole search", flag="--max-time", check=POSITIVE, show="{:g}".format
    )
    max_requests: int = option(500_000, "utterances for the whole search", check=POSITIVE)
    request_timeout_s: float = option(
        0.0,
        "seconds per Triton call",
        flag="--request-timeout",
        check=NON_NEGATIVE,
        show=lambda v: f"{v:g}" if v else "10 x SLO, 2..30",
    )
    probe_n: int = 8  # utterances sent one at a time per workload: the unloaded latency
    slo_auto_factor: float = 0.0  # > 0: raise the SLO to this x the slower workload's unloaded p50 (sweeps)

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (self.min_rps <= self.max_rps, "need 0 < --min-rps <= --max-rps"),
            (self.min_duration_s <= self.max_duration_s, "need 0 < --duration <= --max-duration"),
            (self.start_factor > 0, "start_factor must be > 0"),
            (self.probe_n >= 1, "probe_n must be >= 1"),
            (self.max_windows >= self.stable_windows, "need --max-windows >= --stable-windows"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    @property
    def timeout_s(self) -> float:
        if self.request_timeout_s > 0:
            return self.request_timeout_s
        return min(30.0, max(2.0, 10 * self.slo_p99_ms / 1000.0))

    def users(self, rate: float) -> int:
        """Enough users that each paces at most one utterance per max(2 x SLO, 0.25 s): a user only falls
        behind its schedule when its latency is over twice the SLO, i.e. when the step fails anyway."""
        pace = max(2 * self.slo_p99_ms / 1000.0, 0.25)
        return int(min(self.max_users, max(1, math.ceil(rate * pace))))

    def duration(self, rate: float) -> float:
        return float(min(self.max_duration_s, max(self.min_duration_s, self.min_samples / rate)))

    def warmup(self, rate: float) -> float:
        """At least one pacing interval (every user has started) plus half a second, at most warmup + 5 s."""
        interval = self.users(rate) / rate
        return float(min(self.warmup_s + 5.0, max(self.warmup_s, interval + 0.5)))


# The short search (make demo, --short): windows of 3-4 s (3 agreeing ones pooled per step: 450+ utterances at
# 50/s), at most 5 windows a step, bisecting to 5%, at most 12 steps per workload (room for each fail's retry),
# 450 s in all (each run took 240-445 s, its server start included, in docs/results/capacity-stability-short.md;
# the paired check adds a round of 4 steps, and a reopened search up to 6 more). It starts at twice the unloaded
# rate (the batching server's capacity is several times it), not half, to spend no steps at rates far below
# capacity.
SHORT = {
    # 3 s windows, not 2: with 2 s ones the farthest of five runs was 4.3 points off their median, with 3 s
    # 2.5 to 3.7 (docs/results/capacity-stability-paired.md against -windows3.md, -short.md, -gallop.md)
    "min_duration_s": 3.0,
    "max_duration_s": 4.0,
    "min_samples": 100,
    "warmup_s": 1.0,
    "start_factor": 2.0,
    "rel_tol": 0.05,
    "max_steps": 12,
    "max_windows": 5,
    # room for the paired check to reopen a search and let it converge again (a 360 s budget stopped two
    # reopened searches short in capacity-stability-windows3.md)
    "max_time_s": 450.0,
    "probe_n": 5,
}


@dataclass
class SearchPreset(Options):
    """Which preset the given search flags are laid over (loadtest/capacity_cli.py `search_config`)."""

    short: bool = option(False, "the short search make demo runs (< 8 minutes)")
