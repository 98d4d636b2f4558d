"""The capacity search, free of Locust and Triton: a measurement is any function (workload, rate) -> Step.

Per workload, `RateSearch` finds the highest offered rate that passes (p99 <= SLO, no errors, the
offered rate actually reached):

    1. bracket: start at `start`; after a pass multiply by `growth`, after a fail divide by it,
       until a pass and a fail bracket the answer (or a fail at `min_rate`: no rate meets the SLO;
       or a pass at `max_rate`: capped);
    2. bisect: try the geometric mean of the bracket until fail / pass <= 1 + `rel_tol`;
    3. with `confirm`: every failing rate is measured once more (as this search's next step) before it counts.
       A fail there again stands; a pass means the first fail was the machine's, not the server's (a
       neighbour's burst, the backlog of an overloaded step, the load generator's own hiccup): every fail at or
       below that rate is set aside and the search goes on upwards. Without it, one spurious fail caps the result
       for good, and on a shared machine which step fails spuriously is what moved the saving from run to run
       (docs/results/capacity-stability.md: confirming only the last bracket's fail left 8.6 points between
       five runs).

Every rate tried lies strictly inside the current bracket, so results stay consistent on a noisy
machine (a pass is never above a fail). `alternate` runs several searches round-robin, one step
each, so every workload sees the same machine conditions, and stops all of them at the step,
time or request budget.

Round-robin is not enough when the machine's speed moves (a shared host): the searches converge at different
steps, and a bracket one workload found while the machine was fast is divided by one another found while it was
slow (docs/results/capacity-stability-retry.md: four runs within 2.2 points, the fifth 10.9 off). `paired_check`
then measures every bracket again in one tight round, back to back, and reopens the searches whose bracket does
not hold on the machine as it is then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from mtserve.loadtest import stability

NO_RATE_MEETS_SLO = "no rate meets the SLO"


@dataclass
class Step:
    """One measurement at one offered rate."""

    workload: str
    offered_rps: float
    achieved_rps: float
    count: int
    errors: int
    p50_ms: float
    p99_ms: float
    users: int = 1
    duration_s: float = 0.0
    passed: bool = False
    reason: str = ""
    error_examples: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    # every window the step measured ({"achieved_rps", "p99_ms", ...}) and the stability rule's verdict on them
    # (loadtest/stability.py); the figures above pool the windows stability.pooled() names
    windows: list[dict] = field(default_factory=list)
    stability: str = ""
    stability_reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def pooled_windows(self) -> list[dict]:
        return stability.pooled(self.windows, self.stability) if self.stability else list(self.windows)

    def rate_range(self) -> tuple[float, float]:
        """(lowest, highest) served rate over the windows the step's figures pool."""
        rates = [float(w["achieved_rps"]) for w in self.pooled_windows()] or [self.achieved_rps]
        return min(rates), max(rates)

    def p99_range(self) -> tuple[float, float]:
        """(lowest, highest) p99 over the windows the step's figures pool, widened to hold the step's own p99:
        an interpolated percentile of the pooled sample can sit just outside every window's (ten windows of
        nine 1 ms and one 100 ms utterance each have a p99 of 91 ms; pooled, it is 100 ms)."""
        p99s = [float(w["p99_ms"]) for w in self.pooled_windows()] + [self.p99_ms]
        return min(p99s), max(p99s)


def judge(
    step: Step, slo_p99_ms: float, min_count: int = 1, reach: float = 0.8, reach_min_expected: float = 50
) -> Step:
    """Set step.passed and step.reason. `reach`: the achieved rate must be at least this fraction of the
    offered one (checked once enough utterances were expected for the count to mean something). An unstable
    step is judged like any other, on the figures of all its windows pooled (loadtest/stability.py)."""
    expected = step.offered_rps * step.duration_s
    if step.count < min_count:
        step.passed, step.reason = False, f"only {step.count} utterance(s) measured"
    elif step.errors:
        step.passed, step.reason = False, f"{step.errors} error(s)"
    elif not math.isfinite(step.p99_ms) or step.p99_ms > slo_p99_ms:
        step.passed, step.reason = False, f"p99 {step.p99_ms:.1f} ms > SLO {slo_p99_ms:g} ms"
    elif expected >= reach_min_expected and step.achieved_rps < reach * step.offered_rps:
        step.passed, step.reason = (
            False,
            (
                f"offered {step.offered_rps:.3g}/s but only {step.achieved_rps:.3g}/s "
                "were started (the load generator fell behind)"
            ),
        )
    else:
        step.passed, step.reason = True, "ok"
    if step.stability == stability.UNSTABLE and step.windows:
        # judged on every window pooled (loadtest/stability.py says why), and the report says so
        step.reason += f" (unstable, {len(step.windows)} windows pooled: {step.stability_reason})"
    return step


class RateSearch:
    """Step-then-bisect search for one workload (see the module docstring). Feed it with `record`."""

    def __init__(
        self,
        start: float,
        min_rate: float,
        max_rate: float,
        growth: float = 2.0,
        rel_tol: float = 0.1,
        max_steps: int = 10,
        confirm: bool = False,
    ):
        if not 0 < min_rate <= max_rate:
            raise ValueError(f"need 0 < min_rate <= max_rate, got {min_rate}, {max_rate}")
        if growth <= 1 or rel_tol <= 0 or max_steps < 1:
            raise ValueError("need growth > 1, rel_tol > 0, max_steps >= 1")
        self.start = min(max(start, min_rate), max_rate)
        self.min_rate, self.max_rate = min_rate, max_rate
        self.growth, self.rel_tol, self.max_steps = growth, rel_tol, max_steps
        # the step before a bracket is found: growth; once a paired check reopened the search, twice rel_tol,
        # squared at each step that still finds no bracket (`_gallop`)
        self.step_factor = growth
        self.reopened = False
        self.lo: Step | None = None  # highest pass
        self.hi: Step | None = None  # lowest fail above it (fails a later pass set aside do not count)
        self.steps: list[Step] = []
        self.confirm = confirm
        self.outcome = ""  # why it stopped

    @property
    def done(self) -> bool:
        return self.next_rate() is None

    def next_rate(self) -> float | None:
        if self.outcome:
            return None
        if not self.steps:
            return self.start
        last = self.steps[-1]
        if self._needs_retry(last):
            return last.offered_rps
        lo, hi = self.lo, self.hi
        if lo is not None and hi is not None and hi.offered_rps / lo.offered_rps <= 1 + self.rel_tol:
            if self._needs_retry(hi):
                return hi.offered_rps
            self.outcome = "converged"
            return None
        if len(self.steps) >= self.max_steps:
            self.outcome = f"step limit ({self.max_steps}) reached"
            return None
        if lo is None:  # only fails so far: step down
            if hi.offered_rps <= self.min_rate * (1 + 1e-9):
                self.outcome = NO_RATE_MEETS_SLO
                return None
            return max(hi.offered_rps / self.step_factor, self.min_rate)
        if hi is None:  # only passes so far: step up
            if lo.offered_rps >= self.max_rate * (1 - 1e-9):
                self.outcome = f"capped at max rate {self.max_rate:g}/s"
                return None
            return min(lo.offered_rps * self.step_factor, self.max_rate)
        return math.sqrt(lo.offered_rps * hi.offered_rps)

    def _needs_retry(self, step: Step) -> bool:
        """A fail measured once (with `confirm`). Counted from the steps, not marked when asked: next_rate is also
        asked for progress lines (steps_left), and a mark made there once ate the retry it announced."""
        if not self.confirm or step.passed or len(self.steps) >= self.max_steps:
            return False
        rate = step.offered_rps
        return sum(1 for s in self.steps if abs(s.offered_rps - rate) <= 1e-9 * rate) < 2

    def steps_left(self) -> int:
        """An estimate of the steps this search still takes (for progress lines): bisections until the bracket
        is within rel_tol (each halves its log-width), plus one to find a bracket when there is none yet."""
        if self.next_rate() is None:
            return 0
        left = self.max_steps - len(self.steps)
        if self.lo is not None and self.hi is not None:
            width = math.log(self.hi.offered_rps / self.lo.offered_rps)
            bracket = 0
        else:
            width, bracket = math.log(self.step_factor), 1
        bisections = math.ceil(math.log2(max(width / math.log(1 + self.rel_tol), 1.0)))
        return max(1, min(left, bracket + bisections))

    def record(self, step: Step) -> None:
        self.steps.append(step)
        self._gallop(step)
        if step.passed:
            if self.lo is None or step.offered_rps > self.lo.offered_rps:
                self.lo = step
            if self.hi is not None and self.hi.offered_rps <= step.offered_rps * (1 + 1e-9):
                # a pass where it failed before (a confirmed retry): set aside every fail at or below it
                above = [
                    s for s in self.steps if not s.passed and s.offered_rps > step.offered_rps * (1 + 1e-9)
                ]
                self.hi = min(above, key=lambda s: s.offered_rps, default=None)
        elif (self.lo is None or step.offered_rps > self.lo.offered_rps) and (
            self.hi is None or step.offered_rps < self.hi.offered_rps
        ):
            self.hi = step

    def reopen_below(self, fail: Step, extra_steps: int) -> None:
        """The highest pass failed twice in a row in a paired check: it was a pass the machine was faster for. Every
        pass is set aside, and the search steps down from the failing rate."""
        self.steps.append(fail)  # measured twice at that rate already: no retry of its own
        # the passes below were measured on that faster machine too: none is trusted as the new bracket's floor
        self.lo, self.hi = None, fail
        self._reopen(extra_steps)

    def reopen_above(self, passed: Step, extra_steps: int) -> None:
        """The lowest fail passed twice in a row in a paired check: the fail was the machine's. `record` sets it
        (and every fail at or below it) aside; the search goes on upwards."""
        self.record(passed)
        self._reopen(extra_steps)

    def _reopen(self, extra_steps: int) -> None:
        """A reopened edge has usually moved by a few percent (the machine's drift): the search steps from it by
        twice rel_tol, not by growth, so it brackets again in a step or two rather than bisecting back up from
        far below. Simulated with that drift and 4% noise on the knee (scripts/simulate_rate_search.py), this cut
        the saving's spread from run to run from 2.1 to 1.7 points (sqrt(growth) before). Where the edge moved
        further, `_gallop` widens it."""
        self.outcome = ""
        self.reopened = True
        self.step_factor = min((1 + self.rel_tol) ** 2, self.growth)
        self.max_steps = max(self.max_steps, len(self.steps) + extra_steps)

    def _gallop(self, step: Step) -> None:
        """After a reopening, each step that still finds no bracket (a fail that will not be retried again while
        stepping down, a pass while stepping up) squares the step, up to growth: an edge a third lower is
        bracketed at the third rate down (1.05^2, ^4, ^8 below the fail), where a fixed 1.05^2 takes five."""
        if not self.reopened:
            return
        down = not step.passed and self.lo is None and not self._needs_retry(step)
        up = step.passed and self.hi is None
        if down or up:
            self.step_factor = min(self.step_factor**2, self.growth)

    def stop(self, why: str) -> None:
        if not self.outcome:
            self.outcome = why

    def result(self) -> dict:
        """max_rps: the utterance rate actually served at the highest passing step (0 when none passed);
        p99_ms: that step's p99 (when none passed: the p99 at the lowest rate tried).

        max_rps_interval: where the capacity lies, as measured: from the slowest window of the highest passing
        step up to the lowest rate that failed above it (the search's bracket), or to the step's fastest window
        when nothing above it failed (capped, or stopped by a budget). p99_ms_interval: that step's windows'
        lowest and highest p99 (widened to hold the step's own: `Step.p99_range`)."""
        if self.lo is not None:
            best = self.lo
            lo, hi = best.rate_range()
            if self.hi is not None and self.hi.offered_rps > best.offered_rps:
                hi = self.hi.offered_rps
            return {
                "max_rps": best.achieved_rps,
                "max_rps_interval": [min(lo, best.achieved_rps), max(hi, best.achieved_rps)],
                "p99_ms": best.p99_ms,
                "p99_ms_interval": list(best.p99_range()),
                "offered_rps": best.offered_rps,
                "failed_rps": self.hi.offered_rps if self.hi is not None else None,
                "outcome": self.outcome,
                "steps": len(self.steps),
            }
        lowest = min(self.steps, key=lambda s: s.offered_rps) if self.steps else None
        return {
            "max_rps": 0.0,
            "max_rps_interval": [0.0, lowest.offered_rps if lowest else 0.0],
            "p99_ms": lowest.p99_ms if lowest else float("nan"),
            "p99_ms_interval": list(lowest.p99_range()) if lowest else [float("nan")] * 2,
            "offered_rps": 0.0,
            "failed_rps": lowest.offered_rps if lowest else None,
            "outcome": self.outcome or NO_RATE_MEETS_SLO,
            "steps": len(self.steps),
        }


@dataclass
class Budget:
    """Bounds on a whole search: wall time (seconds) and utterances sent (all steps together)."""

    max_seconds: float = 900.0
    max_requests: int = 500_000
    started: float = field(default_factory=time.monotonic)
    requests: int = 0

    def refuse(self, seconds: float, requests: int) -> str:
        """Why a step of this length and size may not run ('' when it may)."""
        if time.monotonic() - self.started + seconds > self.max_seconds:
            return f"time budget ({self.max_seconds:g} s) reached"
        if self.requests + requests > self.max_requests:
            return f"request budget ({self.max_requests} utterances) reached"
        return ""


def _measure_within(
    budget: Budget,
    cost: Callable[[str, float], tuple[float, int]],
    measure: Callable[[str, float], Step],
    on_step: Callable[[Step], None] | None,
    name: str,
    rate: float,
) -> tuple[Step | None, str]:
    """One step, when the budget has room for it: (the step, "") or (None, why not)."""
    seconds, requests = cost(name, rate)
    why = budget.refuse(seconds, requests)
    if why:
        return None, why
    step = measure(name, rate)
    budget.requests += requests
    if on_step is not None:
        on_step(step)
    return step, ""


def alternate(
    searches: dict[str, RateSearch],
    measure: Callable[[str, float], Step],
    cost: Callable[[str, float], tuple[float, int]],
    budget: Budget,
    on_step: Callable[[Step], None] | None = None,
) -> None:
    """Round-robin: one step of each unfinished search per round, until all are done or a budget stops them.

    `cost(workload, rate)` -> (seconds, utterances) the step would take, checked against `budget` first."""
    while True:
        progressed = False
        for name, s in searches.items():
            rate = s.next_rate()
            if rate is None:
                continue
            step, why = _measure_within(budget, cost, measure, None, name, rate)
            if step is None:
                for other in searches.values():
                    other.stop(why)
                return
            s.record(step)  # before on_step: its progress line asks every search what is left
            progressed = True
            if on_step is not None:
                on_step(step)
        if not progressed:
            return


def paired_check(
    searches: dict[str, RateSearch],
    measure: Callable[[str, float], Step],
    cost: Callable[[str, float], tuple[float, int]],
    budget: Budget,
    on_step: Callable[[Step], None] | None = None,
    rounds: int = 2,
    extra_steps: int = 6,
) -> list[dict]:
    """After `alternate`: check that every converged search's bracket holds on one machine, and reopen those that
    do not. Returns one record per round ({"round", "lo", "hi", "verdict", "reopened"}).

    A round measures each converged workload at its highest pass (lo), one after another, then each at its
    lowest fail (hi): a few steps back to back, so every bracket is judged at about the same machine speed.
    - Every lo passes and every hi fails: consistent; the results stand.
    - A lo that fails: that pass was measured on a faster machine than the one now. It is measured once more at
      once (a single spurious fail must not move a result); failing again, its search reopens below it, on the
      machine as it is now. Likewise a hi that passes, passing again, reopens its search above. Where every
      workload's lo failed, every search reopens: the machine slowed for all of them, but nothing says that
      their brackets were found at one speed, and a search run again on the same machine is.
    - A workload whose lo failed and whose hi passed in the same round is noise; it is left alone.
    - With no budget left for a reopened search to converge (it could end with no passing rate), none reopens.
    Reopened searches run on (`alternate`) until they converge, then the next round checks again; at most
    `rounds` rounds. The steps are recorded with the searches (and passed to `on_step`) like any other."""
    log: list[dict] = []

    def run(name: str, rate: float) -> Step | None:
        return _measure_within(budget, cost, measure, on_step, name, rate)[0]

    for n in range(1, rounds + 1):
        checked = {
            w: s
            for w, s in searches.items()
            if s.outcome == "converged" and s.lo is not None and s.hi is not None
        }
        if len(checked) < 2:  # nothing to pair (one workload, or the others ended without a bracket)
            break
        record: dict = {"round": n, "lo": {}, "hi": {}, "verdict": "", "reopened": {}}
        log.append(record)
        steps: dict[tuple[str, str], Step] = {}
        for edge in ("lo", "hi"):
            for w, s in checked.items():
                rate = getattr(s, edge).offered_rps
                step = run(w, rate)
                if step is None:
                    record["verdict"] = "stopped by the budget"
                    return log
                steps[w, edge] = step
                record[edge][w] = {"rate": rate, "passed": step.passed}
        lo_failed = [w for w in checked if not steps[w, "lo"].passed]
        hi_passed = [w for w in checked if steps[w, "hi"].passed]
        for (w, _edge), st in steps.items():
            checked[w].steps.append(st)
        suspects = {w: "lo" for w in lo_failed}
        for w in hi_passed:
            # a lo that failed and a hi that passed in one round contradict each other: noise, left alone
            suspects[w] = "" if w in suspects else "hi"
        for w, edge in suspects.items():
            if not edge:
                continue
            s = checked[w]
            rate = getattr(s, edge).offered_rps
            seconds, requests = cost(w, rate)
            if budget.refuse(seconds * (1 + extra_steps), requests * (1 + extra_steps)):
                # no room to search again: a reopened search stopped by the budget could end with nothing
                record[edge][w]["again"] = None
                continue
            again = run(w, rate)
            assert again is not None  # the budget had room for more than this step
            record[edge][w]["again"] = again.passed
            if edge == "lo" and not again.passed:
                s.reopen_below(again, extra_steps)
                record["reopened"][w] = "below"
            elif edge == "hi" and again.passed:
                s.reopen_above(again, extra_steps)
                record["reopened"][w] = "above"
            else:
                s.steps.append(again)
        if not record["reopened"]:
            if not lo_failed and not hi_passed:
                record["verdict"] = "consistent"
            elif any(e and record[e][w].get("again") is None for w, e in suspects.items()):
                record["verdict"] = "inconsistent, but no budget left to search again; results stand"
            else:
                record["verdict"] = "a pass or fail its repeat did not confirm; results stand"
            break
        record["verdict"] = "reopened " + ", ".join(f"{w} {d}" for w, d in record["reopened"].items())
        alternate(searches, measure, cost, budget, on_step)
    return log
