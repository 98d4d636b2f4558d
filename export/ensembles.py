"""The ensembles of a model repository, as Triton configs: every served path from text to scores.

    multitask        the one-step wrapper clients call for every task, around
    multitask_graph  tokenizer -> every trunk segment -> every head
    path_<task>      tokenizer -> the segments up to its depth -> its head (a linear chain: no wrapper needed)
    group_<g>        the one-step wrapper around graph_<g>: tokenizer -> the segments up to its deepest task ->
                     the group's heads
    single_<task>    the per-task baseline: tokenizer -> full_<task>

Every path a client may call carries what it serves and costs in its config's `parameters` (`mtserve_tasks`,
`mtserve_layers`), so a client routes by what the server says (serving/routing.py), registry or not.
Pure configuration (Triton's protobuf): the export, the synthetic repositories and the task lifecycle all
build their ensembles here (`ensemble_configs`), and a serving host changes them (`mtserve task remove/rollback`)
without the training stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from tritonclient.grpc import model_config_pb2 as mc

from mtserve.core import names, routing
from mtserve.core.tasks import TaskSpec
from mtserve.export.model_config import (
    TEXT_INPUTS,
    ServingOptions,
    ensemble_config,
    task_outputs,
    write_config,
)


class ServedTask(NamedTuple):
    """What the ensembles need of a task: its outputs (spec), where it leaves the trunk, its own layers."""

    spec: TaskSpec
    depth: int
    layers: int


def _tok_step() -> tuple[str, dict, dict]:
    ids = {n: n for n in names.ID_TENSORS}
    return names.TOKENIZER, {names.TEXT: names.TEXT, names.TEXT_PAIR: names.TEXT_PAIR}, ids


def _segment_steps(depth: int, depths) -> list[tuple[str, dict, dict]]:
    """The trunk segments a request for a task at `depth` runs, each writing hidden_<end> into the ensemble."""
    steps = []
    for a, b in names.segments_to(depth, depths):
        if a == 0:
            inputs = {n: n for n in names.ID_TENSORS}
        else:
            inputs = {names.SEGMENT_INPUT: names.hidden(a), names.ATTENTION_MASK: names.ATTENTION_MASK}
        steps.append((names.segment(a, b), inputs, {names.SEGMENT_OUTPUT: names.hidden(b)}))
    return steps


def _head_step(name: str, task: ServedTask) -> tuple[str, dict, dict]:
    out_map = {"scores": names.scores(name)} | (
        {} if task.spec.is_regression else {"label": names.label(name)}
    )
    return name, {"hidden": names.hidden(task.depth), names.ATTENTION_MASK: names.ATTENTION_MASK}, out_map


def _describe(cfg: mc.ModelConfig, tasks: list[str], layers: int) -> mc.ModelConfig:
    """What a client may call carries what it serves and what one utterance costs through it (BERT layers)."""
    cfg.parameters[routing.TASKS_PARAMETER].string_value = ",".join(tasks)
    cfg.parameters[routing.LAYERS_PARAMETER].string_value = str(layers)
    return cfg


def graph_config(
    model: str,
    chosen: list[str],
    tasks: dict[str, ServedTask],
    serving: ServingOptions | None = None,
    *,
    depths=None,
) -> mc.ModelConfig:
    """tokenizer -> the segments up to the deepest chosen task -> each chosen task's head. `depths`: where the
    trunk is cut (default: the tasks' own depths; a repository a task was removed from may keep a cut no task
    uses any more: registry.json trunk.depths)."""
    depths = sorted(set(depths) if depths is not None else {t.depth for t in tasks.values()})
    steps = [_tok_step(), *_segment_steps(max(tasks[n].depth for n in chosen), depths)]
    outputs = []
    for name in chosen:
        steps.append(_head_step(name, tasks[name]))
        outputs += task_outputs(name, tasks[name].spec)
    return ensemble_config(model, TEXT_INPUTS, outputs, steps, serving)


def wrapper_config(model: str, graph: mc.ModelConfig) -> mc.ModelConfig:
    """A one-step ensemble around a fan-out graph, with the same inputs, outputs, batch size and cache setting.

    Why a wrapper: Triton marks the steps an ensemble schedules after its request was cancelled (a client's
    deadline or cancel, through gRPC) as cancelled too, and the heads' dynamic batchers answer those CANCELLED at
    once, while the trunk's thread is still scheduling the other heads. Triton 2.51's ensemble scheduler (and
    25.03's) then releases the client's request and uses it again: SIGSEGV in TRITONBACKEND_ResponseSend. It only
    passes a cancellation on to steps it schedules later, never to one already running, so the graph's request,
    created by this single step when the client's request arrives, is either cancelled before its tokenizer step
    (which its batcher then rejects alone: no heads run) or never. The price: the step asks the graph for every
    output, so a request for some of the graph's tasks runs all its heads (a client asks the cheapest path that
    covers its tasks instead: serving/routing.py). A linear path (path_<task>) schedules one step at a time and
    needs none. docs/overload.md has the upstream references.
    """
    cfg = mc.ModelConfig()
    cfg.CopyFrom(graph)
    cfg.name = model
    del cfg.ensemble_scheduling.step[:]
    step = cfg.ensemble_scheduling.step.add(model_name=graph.name, model_version=-1)
    step.input_map.update({t.name: t.name for t in graph.input})
    step.output_map.update({t.name: t.name for t in graph.output})
    return cfg


def multitask_graph_config(
    tasks: dict[str, ServedTask], serving: ServingOptions | None = None, *, depths=None
) -> mc.ModelConfig:
    """tokenizer -> every segment -> every head. Clients call the `multitask` wrapper around it, never this."""
    return graph_config(names.MULTITASK_GRAPH, list(tasks), tasks, serving, depths=depths)


def multitask_config(
    tasks: dict[str, ServedTask], serving: ServingOptions | None = None, groups=(), *, depths=None
) -> mc.ModelConfig:
    """`multitask`, what clients call for every task (wrapper_config says why it is a wrapper). Its parameters
    also name the groups (`mtserve_groups`): where a runtime restricts the repository index (the ServingRuntime
    does, since explicit model control opens load/unload), a client finds the paths from here (every
    path_<task> of `mtserve_tasks`, every group_<g> of `mtserve_groups`)."""
    cfg = wrapper_config(names.MULTITASK, multitask_graph_config(tasks, serving, depths=depths))
    cfg.parameters[routing.GROUPS_PARAMETER].string_value = ",".join(groups)
    return _describe(cfg, list(tasks), routing.layers(tasks.values()))


def path_config(
    name: str, tasks: dict[str, ServedTask], serving: ServingOptions | None = None, *, depths=None
) -> mc.ModelConfig:
    """path_<task>: tokenizer -> the segments up to the task's depth -> its head, one step after another."""
    cfg = graph_config(names.path(name), [name], tasks, serving, depths=depths)
    return _describe(cfg, [name], routing.layers([tasks[name]]))


def group_configs(
    group: str,
    members: list[str],
    tasks: dict[str, ServedTask],
    serving: ServingOptions | None = None,
    *,
    depths=None,
) -> dict[str, mc.ModelConfig]:
    """graph_<g> (the group's fan-out) and group_<g>, the wrapper clients call."""
    graph = graph_config(names.group_graph(group), members, tasks, serving, depths=depths)
    wrapper = _describe(
        wrapper_config(names.group(group), graph), members, routing.layers([tasks[t] for t in members])
    )
    return {graph.name: graph, wrapper.name: wrapper}


def single_config(name: str, spec: TaskSpec, serving: ServingOptions | None = None) -> mc.ModelConfig:
    out_map = {"scores": names.scores(name)} | ({} if spec.is_regression else {"label": names.label(name)})
    steps = [
        _tok_step(),
        (names.full(name), {n: n for n in names.ID_TENSORS}, out_map),
    ]
    return ensemble_config(names.single(name), TEXT_INPUTS, task_outputs(name, spec), steps, serving)


def ensemble_configs(
    tasks: dict[str, ServedTask],
    groups: dict[str, list[str]] | None = None,
    serving: ServingOptions | None = None,
    baseline: set[str] | bool = False,
    *,
    depths=None,
) -> dict[str, mc.ModelConfig]:
    """Every ensemble of a repository serving `tasks` and `groups`: model name -> config, the graphs before the
    wrappers that run them. `baseline`: the tasks (or True: all) whose single_<task> it serves. `depths`: where
    the trunk is cut (graph_config)."""
    cfgs = {names.MULTITASK_GRAPH: multitask_graph_config(tasks, serving, depths=depths)}
    cfgs[names.MULTITASK] = multitask_config(tasks, serving, list(groups or {}), depths=depths)
    for name in tasks:
        cfgs[names.path(name)] = path_config(name, tasks, serving, depths=depths)
    for g, members in (groups or {}).items():
        cfgs |= group_configs(g, members, tasks, serving, depths=depths)
    for name, t in tasks.items():
        if baseline is True or (baseline and name in baseline):
            cfgs[names.single(name)] = single_config(name, t.spec, serving)
    return cfgs


def write_ensemble(cfg: mc.ModelConfig, repo: Path, version: int = 1) -> None:
    # An ensemble's version folder holds nothing, but Triton needs it to exist; object stores (S3, GCS) keep
    # no empty folders, so a zero-byte placeholder makes it survive `mtserve k8s upload` / `aws s3 sync`.
    vdir = repo / cfg.name / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    (vdir / names.ENSEMBLE_PLACEHOLDER).touch()
    write_config(cfg, repo / cfg.name)
