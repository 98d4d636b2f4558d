"""A traffic mix for the load test (`mtserve loadtest --mix mix.yaml`): which tasks an utterance needs, how often.

A platform's clients each need a few tasks. A mix file lists those needs, each a task set or a declared task
group, with its share of the traffic:

    zipf: 1.0                 # optional: the entries' shares by rank, in file order: entry k gets k^-s / sum
    entries:
      - group: search         # a task group the repository serves (group_<name>): its tasks
      - tasks: [t00, t03]     # a task set
        share: 0.2            # without zipf: every entry's share (weights, normalised to sum 1)
        name: intent+topic    # optional: its label in the reports (default: the group, or the tasks joined by +)

(a bare list of entries is the same as `entries:`). One utterance of the mix needs the tasks of one entry, drawn
by share. The multitask side sends it where the client would (core/routing.py over the paths the server
serves: one path, a group, several paths in parallel, or `multitask`), the per-task side to `single_<task>` of
each of its tasks, and the every-head side to `multitask`, asking for the entry's outputs (every head runs).

The ideal for a mix is the layer count's: per entry, 1 - (layers of its routed calls) / (len(tasks) x the
backbone's layers); for the mix, the same with both costs weighted by share (a capacity in utterances per
second is the inverse of the share-weighted cost per utterance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mtserve.core import names, routing
from mtserve.core.errors import UserError
from mtserve.loadtest import protocol

ENTRY_FIELDS = ("tasks", "group", "share", "name")
TOP_FIELDS = ("entries", "zipf")


@dataclass(frozen=True)
class Entry:
    """One kind of utterance in the mix: the tasks it needs (or the group that names them) and its share."""

    name: str
    tasks: tuple[str, ...]
    share: float
    group: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "tasks": list(self.tasks), "share": self.share, "group": self.group}


@dataclass(frozen=True)
class Mix:
    """The entries of a mix file, shares normalised to sum 1. A group entry's tasks are empty until `resolve`."""

    entries: tuple[Entry, ...]
    source: str = "mix"
    zipf: float | None = None

    @property
    def tasks(self) -> list[str]:
        """Every task some entry needs, in the order they first appear."""
        return list(dict.fromkeys(t for e in self.entries for t in e.tasks))

    def to_dict(self) -> dict:
        return {"source": self.source, "zipf": self.zipf, "entries": [e.to_dict() for e in self.entries]}


def zipf_shares(n: int, s: float) -> list[float]:
    """Rank k (1-based) gets k^-s, normalised to sum 1."""
    weights = [k**-s for k in range(1, n + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{where}: must be a number, got {value!r}")
    return float(value)


def parse(data, source: str = "mix") -> Mix:
    """A mix from a mix file's content (the YAML above); a UserError names the file, the entry and the field."""
    zipf = None
    if isinstance(data, dict):
        unknown = sorted(set(map(str, data)) - set(TOP_FIELDS))
        if unknown:
            raise UserError(f"{source}: unknown field(s) {unknown} (a mix file has {', '.join(TOP_FIELDS)})")
        if "zipf" in data:
            zipf = _number(data["zipf"], f"{source}: zipf")
            if zipf < 0:
                raise UserError(f"{source}: zipf must be >= 0 (0: equal shares), got {zipf:g}")
        raw = data.get("entries")
    else:
        raw = data
    if not isinstance(raw, list) or not raw:
        raise UserError(
            f"{source}: needs a non-empty list of entries (`entries:` with `- tasks: [a, b]` or `- group: g` items)"
        )
    entries, shares = [], []
    for i, item in enumerate(raw, 1):
        where = f"{source}: entry {i}"
        if not isinstance(item, dict):
            raise UserError(
                f"{where}: must be a mapping (tasks: [..] or group: NAME, and share), got {item!r}"
            )
        unknown = sorted(set(map(str, item)) - set(ENTRY_FIELDS))
        if unknown:
            raise UserError(f"{where}: unknown field(s) {unknown} (an entry has {', '.join(ENTRY_FIELDS)})")
        if ("tasks" in item) == ("group" in item):
            raise UserError(
                f"{where}: give exactly one of `tasks` (a list of tasks) and `group` (a group's name)"
            )
        group, tasks = None, ()
        if "group" in item:
            group = item["group"]
            if not isinstance(group, str) or not names.TASK_NAME.match(group):
                raise UserError(f"{where}: group {group!r} is not a group name ({names.TASK_NAME_RULE})")
        else:
            value = item["tasks"]
            if isinstance(value, str):
                value = [t.strip() for t in value.split(",") if t.strip()]
            if not isinstance(value, list) or not value:
                raise UserError(
                    f"{where}: tasks must be a non-empty list of task names, got {item['tasks']!r}"
                )
            for t in value:
                names.check_task_name(t, f"{where}: tasks")
            if len(set(value)) != len(value):
                raise UserError(f"{where}: tasks {value} name a task twice")
            tasks = tuple(value)
        if zipf is not None and "share" in item:
            raise UserError(
                f"{where}: share given, but the file's zipf sets every share: give one or the other"
            )
        if zipf is None:
            if "share" not in item:
                raise UserError(f"{where}: share missing (or give `zipf: s` at the top for Zipf shares)")
            share = _number(item["share"], f"{where}: share")
            if share <= 0:
                raise UserError(f"{where}: share must be > 0, got {share:g}")
            shares.append(share)
        name = item.get("name", group or "+".join(tasks))
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"{where}: name must be a non-empty string, got {name!r}")
        entries.append(Entry(name.strip(), tasks, 0.0, group))
    labels = [e.name for e in entries]
    twice = sorted({n for n in labels if labels.count(n) > 1})
    if twice:
        raise UserError(f"{source}: entry name(s) {twice} used twice (give each entry its own `name`)")
    shares = zipf_shares(len(entries), zipf) if zipf is not None else [s / sum(shares) for s in shares]
    return Mix(
        tuple(Entry(e.name, e.tasks, s, e.group) for e, s in zip(entries, shares, strict=True)), source, zipf
    )


def read(path: str | Path) -> Mix:
    """A mix file (YAML), parsed and checked; a UserError names the file, the entry and the field."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise UserError(f"--mix {p}: cannot read it ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise UserError(f"--mix {p}: not valid YAML: {e}") from None
    return parse(data, str(p))


def resolve(mix: Mix, paths: list[routing.ServedPath]) -> Mix:
    """The mix with every group entry's tasks, from the served group_<name> paths; every task checked against
    what is served. A UserError names the file, the entry and what the server has."""
    served = list(dict.fromkeys(t for p in paths for t in p.tasks))
    groups = {
        p.model[len(names.GROUP_PREFIX) :]: p.tasks for p in paths if p.model.startswith(names.GROUP_PREFIX)
    }
    out = []
    for i, e in enumerate(mix.entries, 1):
        where = f"{mix.source}: entry {i} ({e.name})"
        tasks = e.tasks
        if e.group is not None:
            if e.group not in groups:
                raise UserError(
                    f"{where}: group {e.group!r} is not served (groups: {sorted(groups) or 'none'}; "
                    "`mtserve export --group` or `mtserve task group` declare one)"
                )
            tasks = tuple(groups[e.group])
        unknown = [t for t in tasks if t not in served]
        if unknown:
            raise UserError(f"{where}: tasks: unknown task(s) {unknown}: served are {served}")
        out.append(Entry(e.name, tasks, e.share, e.group))
    return Mix(tuple(out), mix.source, mix.zipf)


@dataclass(frozen=True)
class RoutedEntry:
    """An entry and the calls its utterance makes on the multitask side (the client's routing)."""

    entry: Entry
    calls: tuple[routing.Call, ...]

    @property
    def layers(self) -> int:
        return routing.cost(list(self.calls))

    def to_dict(self) -> dict:
        return {**self.entry.to_dict(), "calls": [c.to_dict() for c in self.calls], "layers": self.layers}


def route(mix: Mix, paths: list[routing.ServedPath]) -> list[RoutedEntry]:
    """Each entry's calls: the cheapest served paths that cover its tasks, as `MultitaskClient.route` picks."""
    return [RoutedEntry(e, tuple(routing.plan(list(e.tasks), paths))) for e in mix.entries]


def ideal(entries: list[dict], num_layers: int, every_head_layers: int | None = None) -> dict:
    """The saving by layer counts, per entry and for the mix (share-weighted costs), of routed entries
    (RoutedEntry.to_dict: "name", "share", "tasks", "layers") and, given `every_head_layers` (what one call of
    `multitask` costs), of sending every utterance to `multitask` instead."""
    entries_out = []
    served = baseline = 0.0
    for e in entries:
        own = len(e["tasks"]) * num_layers
        row = {
            "name": e["name"],
            "share": e["share"],
            "layers_served": e["layers"],
            "layers_baseline": own,
            "ideal_cost_reduction": 1.0 - e["layers"] / own,
        }
        if every_head_layers is not None:
            row["ideal_every_head_reduction"] = 1.0 - every_head_layers / own
        entries_out.append(row)
        served += e["share"] * e["layers"]
        baseline += e["share"] * own
    out = {
        "layers_served": served,
        "layers_baseline": baseline,
        "ideal_cost_reduction": 1.0 - served / baseline,
        "entries": entries_out,
    }
    if every_head_layers is not None:
        out["every_head_layers"] = every_head_layers
        out["ideal_every_head_reduction"] = 1.0 - every_head_layers / baseline
    return out


def served_paths(endpoint, timeout: float = 10.0) -> list[routing.ServedPath]:
    """The paths the multitask deployment serves, read the way the client reads them (its model configs'
    parameters): the same catalogue `MultitaskClient.route` plans over."""
    from mtserve.serving.client import MultitaskClient

    with MultitaskClient(endpoint.address, timeout, authority=endpoint.authority, tls=endpoint.tls) as client:
        try:
            paths = client.served_paths()
        except UserError as e:
            raise UserError(f"the multitask deployment: {e}") from None
    if not any(p.model.startswith(names.PATH_PREFIX) for p in paths):
        raise UserError(
            f"the multitask deployment at {endpoint.describe()} serves no path_<task>: a mix needs a repository "
            "exported with trunk segments and task paths (registry schema 2)"
        )
    return paths


def make_plan(
    targets, mix: Mix, timeout: float = 10.0
) -> tuple[protocol.Plan, Mix, list[routing.ServedPath]]:
    """The load test's plan for a mix: the pre-flight checks of both deployments for every task the mix needs
    (protocol.make_plan), and the routed calls of each entry, every routed path checked at the multitask
    endpoint. Returns (plan, the mix with groups resolved, the served paths)."""
    mt = targets.multitask()
    paths = served_paths(mt, timeout)
    mix = resolve(mix, paths)
    routed = route(mix, paths)
    plan = protocol.make_plan(targets, mix.tasks, timeout=timeout)
    wanted = set(plan.outputs[protocol.MULTITASK])
    for model in dict.fromkeys(c.model for r in routed for c in r.calls):
        if model in plan.outputs:
            continue
        outs = protocol.model_outputs(mt, model, timeout, "the multitask deployment")
        plan.outputs[model] = [o for o in outs if o in wanted]
        plan.endpoints[model] = mt
    plan.mix = [r.to_dict() for r in routed]
    return plan, mix, paths
