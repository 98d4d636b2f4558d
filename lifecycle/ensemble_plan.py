"""What a change does to the served paths: every ensemble of the repository as the state after the change means
it (export/ensembles.py `ensemble_configs`, the one builder the export uses too), against what the repository
holds now.

    multitask, multitask_graph   a new version for every task change (the version folder and the configs
                                 selecting it; the old version retired), as before paths existed; a group change
                                 leaves them as they are
    path_<task>, graph_<g>,      version 1 always: a config that changes (the trunk cut at a new depth, a task's
    group_<g>                    depth, outputs or layer count, a group's tasks) is rewritten in place and reloaded;
                                 a new one comes in as a complete folder; one no longer served (a removed task, a
                                 deleted group) is unloaded after the swap and retired to the archive

Each config is written just before its own load (lifecycle/apply.py), in dependency order: paths, then each
group's graph and wrapper, `multitask` last; a wrapper and its graph in the order that keeps the served graph
producing every output the served wrapper asks for (loading one reloads the other from its files).
Configuration only (Triton's protobuf): a serving host without torch removes tasks and changes groups.
"""

from __future__ import annotations

from pathlib import Path

from mtserve.core import names, registry
from mtserve.core.errors import UserError
from mtserve.lifecycle.plan import Change, config_bytes, spec_of, versioned

PAIR = (names.MULTITASK_GRAPH, names.MULTITASK)  # the graph, then the wrapper that runs it


def served_tasks(tasks: dict[str, registry.TaskEntry]):
    from mtserve.export.ensembles import ServedTask

    return {n: ServedTask(spec_of(e), e.branch_depth, e.task_layers) for n, e in tasks.items()}


def ensembles_after(
    tasks: dict[str, registry.TaskEntry],
    groups: dict[str, list[str]],
    depths: list[int],
    serving: dict | None,
) -> dict:
    """model name -> config: multitask, its graph, every path_<task>, graph_<g> and group_<g> (the baselines'
    single_<task> are the task's own: plan.baseline_steps)."""
    from mtserve.export.ensembles import ensemble_configs
    from mtserve.export.model_config import ServingOptions

    opts = ServingOptions.from_registry(serving)
    return ensemble_configs(served_tasks(tasks), groups, opts, depths=depths)


def _outputs(cfg) -> set[str]:
    return {t.name for t in cfg.output}


def _pair_order(graph: str, wrapper: str, before: set[str], after: set[str]) -> tuple[str, str]:
    """Loading one of a wrapper and its graph reloads the other from its files, so at every moment the graph must
    produce at least the outputs the wrapper maps: when outputs go away the wrapper (which stops asking for them)
    is loaded first, otherwise the graph."""
    return (graph, wrapper) if before <= after else (wrapper, graph)


def plan_ensembles(
    change: Change,
    repo: Path,
    reg: registry.Registry,
    tasks_after: dict[str, registry.TaskEntry],
    groups_after: dict[str, list[str]],
    depths_after: list[int],
    new_multitask: bool,
) -> int:
    """Add the ensembles' steps to `change` (folders, configs, loads after the change's own, retired folders,
    unloads). Returns the multitask version the registry names after the change."""
    from mtserve.export.model_config import read_config

    cfgs = ensembles_after(tasks_after, groups_after, depths_after, reg.serving)
    loads: list[tuple[str, int | None]] = []

    # paths and groups: version 1, rewritten in place where they change
    served_before = {names.path(t) for t in reg.tasks}
    for g in reg.groups:
        served_before |= {names.group_graph(g), names.group(g)}
    touched = set()
    for m, cfg in cfgs.items():
        if m in PAIR:
            continue
        data = config_bytes(cfg)
        if m in served_before and (repo / m / "config.pbtxt").is_file():
            if (repo / m / "config.pbtxt").read_bytes() != data:
                change.files.append((repo / m / "config.pbtxt", data))
                touched.add(m)
            continue
        if (repo / m).exists():
            raise UserError(f"{repo / m} exists but registry.json does not serve it; move it away first")
        d = change.staging / "ensembles" / m
        (d / "1").mkdir(parents=True)
        (d / "1" / names.ENSEMBLE_PLACEHOLDER).touch()
        (d / "config.pbtxt").write_bytes(data)
        change.dirs.append((d, repo / m))
        touched.add(m)
    gone = sorted(m for m in served_before - set(cfgs) if (repo / m).exists())
    change.retire += gone  # unloaded after the swap, when served (apply_change)

    loads += [(m, None) for m in cfgs if m.startswith(names.PATH_PREFIX) and m in touched]
    for g in groups_after:
        graph, wrapper = names.group_graph(g), names.group(g)
        if not {graph, wrapper} & touched:
            continue
        before = (
            _outputs(read_config(repo / wrapper)) if (repo / wrapper / "config.pbtxt").is_file() else set()
        )
        order = _pair_order(graph, wrapper, before, _outputs(cfgs[graph]))
        loads += [(m, None) for m in order if m in touched]

    # multitask: a new version of the graph and the wrapper for every task change
    mv = reg.multitask_version
    if new_multitask:
        old = mv
        mv = registry.next_version(old, *(registry.version_dirs(repo / m) for m in PAIR))
        for m in PAIR:
            d = change.staging / f"{m}_version"
            d.mkdir()
            (d / names.ENSEMBLE_PLACEHOLDER).touch()
            change.dirs.append((d, repo / m / str(mv)))
            change.files.append((repo / m / "config.pbtxt", config_bytes(versioned(cfgs[m], mv))))
            if (repo / m / str(old)).is_dir():
                change.retire.append(f"{m}/{old}")
        before = _outputs(read_config(repo / names.MULTITASK))
        loads += [(m, mv) for m in _pair_order(*PAIR, before, _outputs(cfgs[names.MULTITASK]))]
    change.loads += loads
    return mv
