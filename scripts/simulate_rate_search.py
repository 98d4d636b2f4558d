"""How far the saving of a `--short`-shaped search moves from run to run on a simulated machine: the real
RateSearch, `alternate` and `paired_check`, against a server whose knee drifts down over the run and is noisy
from step to step. A simulation, not a measurement: it compares search designs, it does not predict a machine.

    python scripts/simulate_rate_search.py [--runs 1000] [--drift 0.2] [--noise 0.04]

The machine: two workloads with capacities 180 and 68/s (about make demo's repository here, a 62.2% saving);
a step passes when its rate is under capacity x speed x (1 + N(0, noise)) and is not one of the 3% that fail
by chance; speed falls linearly by up to `--drift` (uniform per run) over 450 s, one step costing 11 s (3 s
windows, a few of them); `--short`'s settings (growth 2, rel_tol 0.05, 12 steps, every fail retried, two paired
rounds, a 450 s budget). Prints the median saving, its spread (population SD), the share of runs more than 3
points from the median, and the chance that five runs in a row all stay within 3 points.

To compare a design, run it against another loadtest/rate_search.py (git show COMMIT:loadtest/rate_search.py).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics

from mtserve.loadtest import rate_search
from mtserve.loadtest.rate_search import Budget, RateSearch, Step, alternate, paired_check

CAPACITY = {"multitask": 180.0, "per-task": 68.0}
STEP_S, BUDGET_S, SPURIOUS = 11.0, 450.0, 0.03


class SimulatedClock:
    """Budget reads time.monotonic(); here every step advances it by STEP_S."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t


def one_run(seed: int, drift_max: float, noise: float, clock: SimulatedClock) -> float:
    rng = random.Random(seed)
    clock.t = 0.0
    drift = rng.uniform(0, drift_max)

    def measure(workload: str, rate: float) -> Step:
        clock.t += STEP_S
        speed = (1 - drift * clock.t / BUDGET_S) * (1 + 0.02 * math.sin(clock.t / 60 + seed))
        ok = rate <= CAPACITY[workload] * speed * (1 + rng.gauss(0, noise)) and rng.random() > SPURIOUS
        return Step(workload, rate, rate, 100, 0, 1.0, 1.0, duration_s=3.0, passed=ok, reason="")

    # the start: multitask below its knee, per-task above it (as the probe's twice-the-unloaded-rate lands here)
    starts = {"multitask": 180 * rng.uniform(0.75, 0.95), "per-task": 68 * rng.uniform(1.2, 1.5)}
    searches = {
        w: RateSearch(starts[w], 0.25, 5000, growth=2.0, rel_tol=0.05, max_steps=12, confirm=True)
        for w in CAPACITY
    }
    budget = Budget(max_seconds=BUDGET_S, started=0.0)

    def cost(_w: str, _rate: float) -> tuple[float, int]:
        return STEP_S, 100

    alternate(searches, measure, cost, budget)
    paired_check(searches, measure, cost, budget, rounds=2)
    mt, pt = (searches[w].result()["max_rps"] for w in ("multitask", "per-task"))
    return 1 - pt / mt if mt and pt else math.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument(
        "--drift", type=float, default=0.2, help="the most the speed falls over a run (0.2: 20%%)"
    )
    ap.add_argument("--noise", type=float, default=0.04, help="SD of the knee from step to step (0.04: 4%%)")
    args = ap.parse_args()
    clock = SimulatedClock()
    real_time = rate_search.time
    rate_search.time = clock  # the Budget's clock; restored below
    try:
        savings = [one_run(i, args.drift, args.noise, clock) for i in range(args.runs)]
    finally:
        rate_search.time = real_time
    ok = [s for s in savings if not math.isnan(s)]
    median = statistics.median(ok)
    far = sum(abs(s - median) > 0.03 for s in ok) / len(ok)
    print(
        f"{args.runs} runs, drift up to {args.drift:.0%}, noise {args.noise:.0%}: median saving {median:.1%}, "
        f"SD {100 * statistics.pstdev(ok):.2f} points, {far:.1%} of runs more than 3 points from the median, "
        f"five in a row within 3 points {(1 - far) ** 5:.0%} of the time; "
        f"{len(savings) - len(ok)} run(s) ended with no passing rate"
    )


if __name__ == "__main__":
    main()
