"""When one step of the capacity search has measured enough: perf_analyzer's stability rule, on windows.

A step keeps its offered rate and measures window after window (loadtest/locust_process.py) until the last
`STABLE_WINDOWS` (3) windows agree, as Triton's perf_analyzer does (its `--stability-percentage`, 10% by default,
max / min over the last 3 measurements of both throughput and latency, at most `--max-trials` of them):

- throughput: max / min of the windows' served rates <= 1 + tolerance, or their utterance counts at most
  `count_slack` apart (the step's user count: each paced user starts k or k + 1 utterances in a window whatever
  the server does, which at a few utterances a window is more than 10%);
- p99: max / min of the windows' p99 latencies <= 1 + tolerance, or every one of them on the same side of the
  SLO by more than the tolerance (all <= (1 - tolerance) x SLO, or all >= (1 + tolerance) x SLO).

The p99 clause is perf_analyzer's, plus one case: windows that all clear the SLO (or all miss it) by a margin
give the same verdict whatever their spread. On a shared 2-core machine, p99s of 40 and 75 ms (87% apart, both
far under a 200 ms SLO) come and go with the neighbours' load: waiting for them to agree would spend every
window a step may have on a rate whose verdict is already plain. Near the SLO, where the verdict is decided, the
rule is perf_analyzer's. Errors end a step at once (an
error fails it whatever follows), and so does a window whose p99 is over `DOOMED_FACTOR` x the SLO: the queue is
growing, the rate is well past capacity, and more windows would only spend the search's time budget.

A step that is still not stable after `max_windows` windows is reported unstable and judged on every window it
measured, pooled. At the knee, where the search decides, a window's p99 rests on its two or three slowest
utterances (a 3 s window at 60/s holds 180), and windows at one rate differ by more than 10% whatever the server
does: per-task at 62.7/s measured p99s of 192, 170, 199, 162 and 177 ms, every window under a 200 ms SLO, and
failing such a step as unstable failed a rate that met the SLO five times over (docs/loadtest.md, "Unstable
steps"). Five windows pooled put the p99 on five times the samples. The step's figures (served rate, p50, p99)
are those of the windows' utterances pooled: the agreeing ones (the last 3) when it is stable, all of them when
it is unstable or ended early.
"""

from __future__ import annotations

import math

STABLE_WINDOWS = 3
TOLERANCE = 0.10  # perf_analyzer's default --stability-percentage
DOOMED_FACTOR = 2.0

MORE, STABLE, UNSTABLE, FAILED = "more", "stable", "unstable", "failed"


def spread(windows: list[dict]) -> tuple[float, float]:
    """(throughput spread, p99 spread) of `windows`: max / min - 1 of each (inf when a window has no sample)."""
    rates = [float(w["achieved_rps"]) for w in windows]
    p99s = [float(w["p99_ms"]) for w in windows]
    if not windows or min(rates) <= 0 or not all(math.isfinite(p) and p > 0 for p in p99s):
        return math.inf, math.inf
    return max(rates) / min(rates) - 1.0, max(p99s) / min(p99s) - 1.0


def settled(windows: list[dict], slo_ms: float, tolerance: float) -> bool:
    """Every window's p99 on the same side of the SLO by more than the tolerance: the verdict cannot change."""
    p99s = [float(w["p99_ms"]) for w in windows]
    if not p99s or not all(math.isfinite(p) for p in p99s):
        return False
    return max(p99s) <= (1 - tolerance) * slo_ms or min(p99s) >= (1 + tolerance) * slo_ms


def verdict(
    windows: list[dict],
    slo_ms: float,
    tolerance: float = TOLERANCE,
    max_windows: int = 10,
    need: int = STABLE_WINDOWS,
    count_slack: int = 0,
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
        last_n = windows[-need:]
        rate_spread, p99_spread = spread(last_n)
        clear = settled(last_n, slo_ms, tolerance)
        counts = [int(w.get("count") or 0) for w in last_n]
        rates_agree = rate_spread <= tolerance or max(counts) - min(counts) <= count_slack
        why = (
            f"last {need} windows: served rates {rate_spread:.0%} apart, p99s {p99_spread:.0%}"
            + (
                f", all {'under' if float(last['p99_ms']) < slo_ms else 'over'} the SLO by > {tolerance:.0%}"
                if clear
                else ""
            )
            + f" (tolerance {tolerance:.0%})"
        )
        if rates_agree and (p99_spread <= tolerance or clear):
            return STABLE, why
        if len(windows) >= max_windows:
            return UNSTABLE, f"not stable in {len(windows)} windows: {why}"
        return MORE, why
    return MORE, f"{len(windows)} of {need} windows"


def pooled(windows: list, state: str, need: int = STABLE_WINDOWS) -> list:
    """Which windows a step's figures come from: the last `need` when they agreed (stable), every window when
    none did (unstable: the most samples for its p99) or the step ended early."""
    if state == STABLE and len(windows) >= need:
        return windows[-need:]
    return list(windows)
