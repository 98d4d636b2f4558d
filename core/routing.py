"""Which served paths a request for some tasks calls: the cheapest set of them that covers the tasks.

A repository serves, besides `multitask` (every task), one path per task (path_<task>: its trunk segments and
its head) and one per declared group (group_<g>: the segments its deepest task needs and the group's heads).
A path costs, per utterance, the trunk layers up to its deepest task and every head it runs (registry.py
`layers_served`): the registry knows it, and the export writes it into each path's config (`parameters`
`mtserve_layers`, with `mtserve_tasks`), so a client reads the same catalogue from the server
(serving/client.py) that `mtserve predict --plan` reads from a repository. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from mtserve.core import names
from mtserve.core.errors import UserError
from mtserve.core.registry import Registry, layers_served

TASKS_PARAMETER = "mtserve_tasks"
LAYERS_PARAMETER = "mtserve_layers"
GROUPS_PARAMETER = (
    "mtserve_groups"  # on `multitask`: the groups served, for clients without the repository index
)
# Exact search over every combination of paths up to this many calls; beyond it, greedy (cheapest per task
# covered first). A request for more tasks than that is answered by `multitask` or a group in practice.
EXACT_CALLS = 4


def layers(tasks) -> int:
    """One utterance's cost through a path running `tasks` (objects with .depth and .layers), in BERT layers."""
    tasks = list(tasks)
    return layers_served(max(t.depth for t in tasks), (t.layers for t in tasks))


@dataclass(frozen=True)
class ServedPath:
    """A model a client may call for some tasks, and what one utterance costs through it."""

    model: str
    tasks: tuple[str, ...]
    layers: int


@dataclass(frozen=True)
class Call:
    """One call of a plan: `model`, asked for `tasks` (the requested ones it serves, each in one call only)."""

    model: str
    tasks: tuple[str, ...]
    layers: int

    def to_dict(self) -> dict:
        return {"model": self.model, "tasks": list(self.tasks), "layers": self.layers}


def parse_groups(values: list[str] | None) -> dict[str, list[str]]:
    """--group NAME=a,b,c (repeatable: `mtserve export`, `mtserve gpu-check`) -> {NAME: [a, b, c]}; the names
    checked here, the members by whoever knows the tasks (registry.validate_groups)."""
    groups: dict[str, list[str]] = {}
    for v in values or []:
        name, sep, members = v.partition("=")
        if not sep:
            raise UserError(
                f"--group {v!r}: give NAME=task,task,... (for example --group support=intent,urgency)"
            )
        names.check_task_name(name.strip(), f"--group {v!r}: group")
        if name.strip() in groups:
            raise UserError(f"--group {name.strip()!r} given twice")
        groups[name.strip()] = [t.strip() for t in members.split(",") if t.strip()]
    return groups


def catalogue(reg: Registry) -> list[ServedPath]:
    """Every path a repository serves to clients, from its registry."""
    paths = [ServedPath(names.MULTITASK, tuple(reg.tasks), reg.layers_served())]
    paths += [ServedPath(names.path(t), (t,), reg.layers_served([t])) for t in reg.tasks]
    paths += [ServedPath(names.group(g), tuple(m), reg.layers_served(m)) for g, m in reg.groups.items()]
    return paths


def from_parameters(model: str, parameters: dict[str, str]) -> ServedPath | None:
    """A served path from a model config's parameters (None: the model is not a path for clients)."""
    tasks, cost = parameters.get(TASKS_PARAMETER), parameters.get(LAYERS_PARAMETER)
    if not tasks or cost is None:
        return None
    try:
        return ServedPath(model, tuple(t for t in tasks.split(",") if t), int(cost))
    except ValueError:
        raise UserError(
            f"model {model!r}: parameter {LAYERS_PARAMETER} {cost!r} is not a layer count"
        ) from None


def candidates(parameters: dict[str, str]) -> list[str]:
    """The paths a repository serves, named from `multitask`'s config parameters: multitask, every path_<task>,
    every group_<g> (a client that may not read the repository index probes these)."""
    tasks = [t for t in parameters.get(TASKS_PARAMETER, "").split(",") if t]
    groups = [g for g in parameters.get(GROUPS_PARAMETER, "").split(",") if g]
    return [names.MULTITASK, *(names.path(t) for t in tasks), *(names.group(g) for g in groups)]


def plan(tasks: list[str], paths: list[ServedPath]) -> list[Call]:
    """The cheapest calls (fewest layers per utterance, then fewest calls) whose paths cover `tasks`."""
    wanted = list(dict.fromkeys(tasks))
    if not wanted:
        raise UserError("no task asked")
    served = {t for p in paths for t in p.tasks}
    unknown = [t for t in wanted if t not in served]
    if unknown:
        raise UserError(f"unknown task(s) {unknown}: served are {sorted(served)}")
    useful = [p for p in paths if set(p.tasks) & set(wanted)]
    useful.sort(key=lambda p: (p.layers, -len(set(p.tasks) & set(wanted)), p.model))
    best: tuple | None = None
    for n in range(1, min(EXACT_CALLS, len(wanted)) + 1):
        for combo in combinations(useful, n):
            if set(wanted) <= {t for p in combo for t in p.tasks}:
                key = (sum(p.layers for p in combo), n)
                if best is None or key < best[0]:
                    best = (key, combo)
    if best is None:  # more tasks than EXACT_CALLS paths cover: the cheapest per newly covered task first
        chosen, left = [], set(wanted)
        while left:
            covering = [p for p in useful if set(p.tasks) & left]
            p = min(covering, key=lambda p: (p.layers / len(set(p.tasks) & left), p.model))
            chosen.append(p)
            left -= set(p.tasks)
        best = (None, tuple(chosen))
    calls, assigned = [], set()
    for p in best[1]:
        mine = tuple(t for t in wanted if t in p.tasks and t not in assigned)
        assigned |= set(mine)
        if mine:
            calls.append(Call(p.model, mine, p.layers))
    return calls


def cost(calls: list[Call]) -> int:
    return sum(c.layers for c in calls)
