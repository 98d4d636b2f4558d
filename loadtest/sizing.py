"""Replicas for a target rate, both ways, with headroom: capacity.json's `sizing` and capacity.md's table.

A replica is run at `utilisation` of the capacity the search measured, never at 100%: at the capacity itself the
p99 sits at the SLO and any burst or noisy neighbour breaks it. The default, 70%, is what the soak test holds for
20 minutes with zero errors and a flat p99 (tests/reliability/test_soak.py, LOAD = 0.7;
docs/results/reliability.md). Every count comes with the interval the capacities' intervals give: the fewest
replicas if the capacity is at the top of its interval, the most if it is at the bottom.
"""

from __future__ import annotations

import math

UTILISATION = 0.7  # tests/reliability/test_soak.py: the soak runs at 70% of capacity


def replicas(target_rps: float, max_rps: float, utilisation: float = 1.0) -> int | None:
    """ceil(target / (utilisation x capacity)); None when the capacity is 0 (nothing meets the SLO)."""
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation}")
    usable = max_rps * utilisation
    return None if usable <= 0 else max(1, int(math.ceil(target_rps / usable - 1e-9)))


def _saving(multitask: int | None, per_task: int | None) -> float | None:
    return None if multitask is None or per_task is None else 1.0 - multitask / per_task


def workload_sizing(target_rps: float, capacity: dict, utilisation: float) -> dict:
    """{"replicas", "replicas_interval": [fewest, most]} for one workload's capacity.json entry."""
    lo, hi = capacity.get("max_rps_interval") or [capacity["max_rps"]] * 2
    return {
        "replicas": replicas(target_rps, capacity["max_rps"], utilisation),
        "replicas_interval": [replicas(target_rps, hi, utilisation), replicas(target_rps, lo, utilisation)],
    }


def sizing(capacity: dict, target_rps: float, utilisation: float = UTILISATION) -> dict:
    """capacity.json's `sizing`: both fleets for `target_rps` at `utilisation`, and the saving in replicas."""
    if target_rps <= 0:
        raise ValueError(f"target rate must be > 0, got {target_rps}")
    mt = workload_sizing(target_rps, capacity["multitask"], utilisation)
    pt = workload_sizing(target_rps, capacity["per_task"], utilisation)
    (mt_few, mt_most), (pt_few, pt_most) = mt["replicas_interval"], pt["replicas_interval"]
    return {
        "target_rps": float(target_rps),
        "utilisation": float(utilisation),
        "multitask": mt,
        "per_task": pt,
        "saving": _saving(mt["replicas"], pt["replicas"]),
        # worst: the most multitask replicas against the fewest per-task ones; best: the other way round
        "saving_interval": None
        if None in (mt_few, mt_most, pt_few, pt_most)
        else [_saving(mt_most, pt_few), _saving(mt_few, pt_most)],
    }
