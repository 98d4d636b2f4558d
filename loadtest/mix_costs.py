"""What a traffic mix costs on the server, from Triton's own per-model statistics (read around each step).

Per entry: the model compute one of its utterances takes, on each side. An utterance's routed calls run the
models of their paths (the tokenizer, the trunk segments up to the path's deepest task, the path's heads); the
per-task side runs the tokenizer and `full_<task>` for each task. Each model's cost per request is its own
execution time (a batch counted once) over the requests it served at that workload's highest passing rate, so
an entry's cost is what its share of the load paid, batching included.

Per task, its share of the serving cost (charge-back): its head's execution time, plus its part of every model
it shares (the tokenizer, each segment): a shared model's time is split by the requests each task sent through it,
a request through a segment split evenly between the tasks of the called path that need that segment (those
branching at or past its end). A head runs for every request of a path that has it, asked or not (a group, or
`multitask`): its owner pays for it, which is what routing saves them. Standard library only.
"""

from __future__ import annotations

from collections import defaultdict

from mtserve.core import names, routing
from mtserve.loadtest import mix as mixes
from mtserve.loadtest import protocol

ENSEMBLE_PREFIXES = (names.SINGLE_PREFIX, names.PATH_PREFIX, names.GROUP_PREFIX, names.GROUP_GRAPH_PREFIX)


def is_ensemble(model: str) -> bool:
    """An ensemble's own statistics span its steps: its composing models' rows hold the compute."""
    return model in (names.MULTITASK, names.MULTITASK_GRAPH) or model.startswith(ENSEMBLE_PREFIXES)


def plain(models: dict) -> dict[str, dict]:
    """A step's server view by model name (a view over several endpoints labels keys 'model @ endpoint'):
    requests and execution milliseconds summed per name."""
    out: dict[str, dict] = {}
    for key, m in (models or {}).items():
        if "requests" not in m:
            continue
        row = out.setdefault(key.split(" @ ", 1)[0], {"requests": 0, "exec_ms_total": 0.0})
        row["requests"] += m.get("requests") or 0
        row["exec_ms_total"] += m.get("exec_ms_total") or 0.0
    return out


def per_request(models: dict[str, dict], model: str) -> float | None:
    """A model's execution milliseconds per request it served (None: it served none)."""
    m = models.get(model)
    if not m or not m["requests"]:
        return None
    return m["exec_ms_total"] / m["requests"]


def shared_models(path: routing.ServedPath, depth: dict[str, int], trunk_depths) -> dict[str, list[str]]:
    """The models a call of `path` shares with other paths, each with the tasks of the path that need it: the
    tokenizer (all of them) and every segment up to the deepest (the tasks branching at or past its end)."""
    deepest = max(depth[t] for t in path.tasks)
    out = {names.TOKENIZER: list(path.tasks)}
    for a, b in names.segments_to(deepest, trunk_depths):
        out[names.segment(a, b)] = [t for t in path.tasks if depth[t] >= b]
    return out


def composing(path: routing.ServedPath, depth: dict[str, int], trunk_depths) -> list[str]:
    """Every model a call of `path` runs besides ensembles: its shared models, then its heads."""
    return [*shared_models(path, depth, trunk_depths), *path.tasks]


def entry_costs(
    entries: list[dict],
    paths: list[routing.ServedPath],
    depth: dict[str, int],
    trunk_depths,
    views: dict[str, dict | None],
) -> dict:
    """Per entry and for the mix, the model compute per utterance on each side (ms) and the saving it implies.
    `views`: {"multitask", "per_task", "every_head"} -> that workload's server view (None: not measured)."""
    catalogue = {p.model: p for p in paths}
    sides = {k: plain(v) if v else None for k, v in views.items()}

    def routed(models, calls) -> float | None:
        if models is None:
            return None
        ms = [per_request(models, m) for c in calls for m in composing(catalogue[c], depth, trunk_depths)]
        return None if any(x is None for x in ms) else sum(ms)

    def per_task(models, tasks) -> float | None:
        if models is None:
            return None
        ms = [per_request(models, m) for t in tasks for m in (names.TOKENIZER, names.full(t))]
        return None if any(x is None for x in ms) else sum(ms)

    rows = []
    for e in entries:
        row = {
            "name": e["name"],
            "share": e["share"],
            "multitask_ms": routed(sides.get("multitask"), [c["model"] for c in e["calls"]]),
            "per_task_ms": per_task(sides.get("per_task"), e["tasks"]),
            "every_head_ms": routed(sides.get("every_head"), [protocol.MULTITASK]),
        }
        row["compute_reduction"] = _saving(row["multitask_ms"], row["per_task_ms"])
        row["every_head_compute_reduction"] = _saving(row["every_head_ms"], row["per_task_ms"])
        rows.append(row)
    out = {"entries": rows}
    for key in ("multitask_ms", "per_task_ms", "every_head_ms"):
        values = [r[key] for r in rows]
        out[key] = None if any(v is None for v in values) else sum(r["share"] * r[key] for r in rows)
    out["compute_reduction"] = _saving(out["multitask_ms"], out["per_task_ms"])
    out["every_head_compute_reduction"] = _saving(out["every_head_ms"], out["per_task_ms"])
    return out


def _saving(served: float | None, baseline: float | None) -> float | None:
    return None if served is None or not baseline else 1.0 - served / baseline


def charge_back(models: dict, paths: list[routing.ServedPath], depth: dict[str, int], trunk_depths) -> dict:
    """Each task's share of the multitask deployment's model compute in one step (see the module docstring):
    {"tasks": {task: {"requests", "head_ms", "shared_ms", "total_ms", "share"}}, "total_ms", "unattributed_ms"}.
    `models`: the step's server view; `paths`: what clients call (multitask, path_<task>, group_<g>)."""
    m = plain(models)
    units: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    asked: dict[str, int] = defaultdict(int)
    for p in paths:
        n = (m.get(p.model) or {}).get("requests") or 0
        if not n:
            continue
        for t in p.tasks:
            asked[t] += n
        for model, tasks in shared_models(p, depth, trunk_depths).items():
            for t in tasks:
                units[model][t] += n / len(tasks)
    rows = {
        t: {"requests": asked.get(t, 0), "head_ms": m.get(t, {}).get("exec_ms_total", 0.0), "shared_ms": 0.0}
        for t in depth
    }
    attributed = {t for t in depth}
    for model, by_task in units.items():
        total_units = sum(by_task.values())
        ms = m.get(model, {}).get("exec_ms_total", 0.0)
        attributed.add(model)
        for t, u in by_task.items():
            rows[t]["shared_ms"] += ms * u / total_units
    total = 0.0
    for r in rows.values():
        r["total_ms"] = r["head_ms"] + r["shared_ms"]
        total += r["total_ms"]
    for r in rows.values():
        r["share"] = r["total_ms"] / total if total > 0 else None
    everything = sum(v["exec_ms_total"] for k, v in m.items() if not is_ensemble(k))
    return {
        "tasks": dict(sorted(rows.items(), key=lambda kv: -kv[1]["total_ms"])),
        "total_ms": total,
        # compute of models no path accounts for (none, when every call went through a served path)
        "unattributed_ms": everything - total,
    }


def mix_capacity(
    capacity: dict, plan: protocol.Plan, mix: mixes.Mix, paths: list[routing.ServedPath], reg
) -> dict:
    """capacity.json for a mix: the mix's measured saving and its ideal at the top, the every-head workload's
    saving beside them, then the usual keys, the mix (entries, their calls, ideal and measured compute per
    entry) and the charge-back per task."""
    mt, pt = capacity["multitask"]["max_rps"], capacity["per_task"]["max_rps"]
    eh = capacity["every_head"]["max_rps"]
    every_head_layers = next((p.layers for p in paths if p.model == protocol.MULTITASK), None)
    ideal = mixes.ideal(plan.mix, reg.num_layers, every_head_layers) if reg is not None else None
    server = capacity.get("server") or {}
    views = {k: (server.get(k) or {}).get("models") for k in ("multitask", "per_task", "every_head")}
    compute = charge = None
    if reg is not None:
        depth = {t: e.branch_depth for t, e in reg.tasks.items()}
        compute = entry_costs(plan.mix, paths, depth, reg.trunk.depths, views)
        charge = {
            k: {
                "offered_rps": server[k]["offered_rps"],
                **charge_back(views[k], paths, depth, reg.trunk.depths),
            }
            for k in ("multitask", "every_head")
            if views.get(k)
        }
    head = {
        "cost_reduction": capacity["cost_reduction"],
        "ideal_cost_reduction": capacity["ideal_cost_reduction"],
        "every_head_reduction": 1.0 - pt / eh if eh > 0 else None,
        "ideal_every_head_reduction": None if ideal is None else ideal["ideal_every_head_reduction"],
        "multitask_over_every_head": mt / eh if eh > 0 else None,
    }
    entries = []
    for i, e in enumerate(plan.mix):
        row = dict(e)
        if ideal is not None:
            row.update({k: v for k, v in ideal["entries"][i].items() if k not in row})
        if compute is not None:
            row.update({k: v for k, v in compute["entries"][i].items() if k not in row})
        entries.append(row)
    rest = {k: v for k, v in capacity.items() if k not in head}
    return {
        **head,
        **rest,
        "mix": {
            "source": mix.source,
            "zipf": mix.zipf,
            "layers_served": None if ideal is None else ideal["layers_served"],
            "layers_baseline": None if ideal is None else ideal["layers_baseline"],
            "every_head_layers": every_head_layers,
            "compute": None if compute is None else {k: v for k, v in compute.items() if k != "entries"},
            "entries": entries,
        },
        "charge_back": charge,
    }


def mix_ideal(reg, plan: protocol.Plan, paths) -> tuple[float | None, float | None, float | None]:
    """(ideal saving, share-weighted layers served, baseline) of the plan's mix; Nones without a registry."""
    if reg is None:
        return None, None, None
    i = mixes.ideal(plan.mix, reg.num_layers)
    return i["ideal_cost_reduction"], i["layers_served"], i["layers_baseline"]
