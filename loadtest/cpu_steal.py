"""How much of this machine's CPU time its hypervisor gave to other guests while a step ran: Linux's `steal`.

On a virtual machine the host may run other guests on the cores this one thinks it has. /proc/stat counts that
time per CPU as `steal` (its 8th field), in ticks, beside user, system and idle. Here, in 10 s samples beside five
`--short` searches, it was 0.9% at the median but 30% and 19% in the first two, while the first steps failed far
below capacity (docs/results/capacity-stability-repeats.md), and a search measures the machine it got. Each step
records the share stolen while it ran (capacity_steps.json, `extra.cpu_steal`), and capacity.md says how much was
stolen over the search, so a reader can tell a quiet machine's figures from a crowded one's.

It is this machine's steal: the server's with `--repo`, only the load generator's against a remote server.
"""

from __future__ import annotations

from pathlib import Path

PROC_STAT = Path("/proc/stat")
KEY = "cpu_steal"  # a step's `extra` key (capacity_steps.json)


def read(path: Path = PROC_STAT) -> tuple[int, int] | None:
    """(all CPU ticks, stolen ticks) since boot, over every CPU; None where there is no /proc/stat or no steal
    column in it (not Linux, or a kernel older than 2.6.11)."""
    try:
        line = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = line.split()
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    # user nice system idle iowait irq softirq steal; guest time is counted inside user already
    ticks = [int(x) for x in fields[1:9]]
    return sum(ticks), ticks[7]


def share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The stolen share of all CPU time between two readings (None when either is missing or no time passed)."""
    if before is None or after is None:
        return None
    total, stolen = after[0] - before[0], after[1] - before[1]
    return stolen / total if total > 0 else None


def of_step(step: dict) -> float | None:
    """The share a step recorded (capacity_steps.json), None for steps measured before steps recorded it."""
    return (step.get("extra") or {}).get(KEY)
