"""When one step of the capacity search has measured enough: perf_analyzer's stability rule, on windows.

A step keeps its offered rate and measures window after window (loadtest/worker.py) until the last
`STABLE_WINDOWS` (3) windows agree, as Triton's perf_analyzer does (its `--stability-percentage`, 10% by default,
over the last 3 measurements, at most `--max-trials` of them):

- throughput: max / min of the windows' served rates <= 1 + tolerance;
- p99: max - min of the windows' p99 latencies <= tolerance x max(min p99, SLO).

The p99 part is perf_analyzer's max / min <= 1 + tolerance wherever the p99 is at or above the SLO, which is
where the verdict is decided; below the SLO the spread is measured against the SLO instead, so 9 ms against
12 ms (33% apart, both far under a 200 ms SLO) is agreement, not a reason to measure again. Errors end a step at
once (an error fails it whatever follows), and so does a window whose p99 is over `DOOMED_FACTOR` x the SLO: the
queue is growing, the rate is well past capacity, and more windows would only spend the search's time budget.

A step that is still not stable after `max_windows` windows is reported unstable, and fails: a rate whose p99
does not settle is not one to plan on. The step's figures (served rate, p50, p99) are those of the agreeing
windows' utterances pooled (the last 3; all of them when a step ended early), so its p99 rests on 3 windows of
samples, not one.
"""

from __future__ import annotations

import math

STABLE_WINDOWS = 3
TOLERANCE = 0.10  # perf_analyzer's default --stability-percentage
DOOMED_FACTOR = 2.0

MORE, STABLE, UNSTABLE, FAILED = "more", "stable", "unstable", "failed"


def spread(windows: list[dict], slo_ms: float) -> tuple[float, float]:
    """(throughput spread, p99 spread) of `windows`, each as a fraction: max / min - 1 of the served rates, and
    (max - min) / max(min, SLO) of the p99s (see the module docstring). inf when a window has no sample."""
    rates = [float(w["achieved_rps"]) for w in windows]
    p99s = [float(w["p99_ms"]) for w in windows]
    if not windows or min(rates) <= 0 or not all(math.isfinite(p) for p in p99s):
        return math.inf, math.inf
    return max(rates) / min(rates) - 1.0, (max(p99s) - min(p99s)) / max(min(p99s), slo_ms)


def verdict(
    windows: list[dict],
    slo_ms: float,
    tolerance: float = TOLERANCE,
    max_windows: int = 10,
    need: int = STABLE_WINDOWS,
) -> tuple[str, str]:
    """After each window: (MORE, why) to measure another, or the step's end: (STABLE | UNSTABLE | FAILED, why).

    `windows`: what each window measured so far, in order ({"achieved_rps", "p99_ms", "errors", "count"}).
    `need` windows must agree (1: the first window decides, the search of old)."""
    if not windows:
        return MORE, "no window yet"
    last = windows[-1]
    if last.get("errors"):
        return FAILED, f"{last['errors']} error(s) in window {len(windows)}"
    p99 = float(last["p99_ms"])
    if math.isfinite(p99) and p99 > DOOMED_FACTOR * slo_ms:
        return FAILED, f"window {len(windows)}: p99 {p99:.0f} ms > {DOOMED_FACTOR:g} x SLO"
    if len(windows) >= need:
        rate_spread, p99_spread = spread(windows[-need:], slo_ms)
        why = (
            f"last {need} windows: served rates {rate_spread:.0%} apart, p99s {p99_spread:.0%} "
            f"(tolerance {tolerance:.0%})"
        )
        if rate_spread <= tolerance and p99_spread <= tolerance:
            return STABLE, why
        if len(windows) >= max_windows:
            return UNSTABLE, f"not stable in {len(windows)} windows: {why}"
        return MORE, why
    return MORE, f"{len(windows)} of {need} windows"


def pooled(windows: list, state: str, need: int = STABLE_WINDOWS) -> list:
    """Which windows a step's figures come from: the last `need` when it reached a verdict on them
    (stable or unstable), every window when it ended early."""
    if state in (STABLE, UNSTABLE) and len(windows) >= need:
        return windows[-need:]
    return list(windows)
