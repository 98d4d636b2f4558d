"""The ensembles of a model repository, as Triton configs: `multitask` (the one-step wrapper clients call),
the multitask graph behind it (tokenizer -> trunk -> every head) and each task's `single_<task>` (tokenizer ->
its full model). Pure configuration (Triton's protobuf): the export, the synthetic repositories and the task
lifecycle all build their ensembles here, and a serving host changes them (`mtserve task remove/rollback`)
without the training stack."""

from __future__ import annotations

from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from mtserve.core import names
from mtserve.core.tasks import TaskSpec
from mtserve.export.model_config import (
    TEXT_INPUTS,
    ServingOptions,
    ensemble_config,
    task_outputs,
    write_config,
)


def _tok_step() -> tuple[str, dict, dict]:
    ids = {n: n for n in ("input_ids", "token_type_ids", "attention_mask")}
    return names.TOKENIZER, {names.TEXT: names.TEXT, names.TEXT_PAIR: names.TEXT_PAIR}, ids


def multitask_graph_config(
    tasks: dict[str, tuple[TaskSpec, int]], serving: ServingOptions | None = None
) -> mc.ModelConfig:
    """tasks: name -> (spec, branch depth): tokenizer -> trunk -> every head, each head reading the trunk's hidden
    state at its own depth. Clients call the `multitask` wrapper around it (multitask_config), never this."""
    depths = sorted({d for _, d in tasks.values()})
    steps = [
        _tok_step(),
        (
            "trunk",
            {n: n for n in ("input_ids", "token_type_ids", "attention_mask")},
            {names.hidden(d): names.hidden(d) for d in depths},
        ),
    ]
    outputs = []
    for name, (spec, depth) in tasks.items():
        out_map = {"scores": f"{name}_scores"} | ({} if spec.is_regression else {"label": f"{name}_label"})
        steps.append(
            (name, {"hidden": names.hidden(depth), names.ATTENTION_MASK: names.ATTENTION_MASK}, out_map)
        )
        outputs += task_outputs(name, spec)
    return ensemble_config(names.MULTITASK_GRAPH, TEXT_INPUTS, outputs, steps, serving)


def multitask_config(
    tasks: dict[str, tuple[TaskSpec, int]], serving: ServingOptions | None = None
) -> mc.ModelConfig:
    """`multitask`, what clients call: one step, the multitask graph, with the same inputs and outputs (and the
    same batch size and response cache setting).

    Why a wrapper: Triton marks the steps an ensemble schedules after its request was cancelled (a client's
    deadline or cancel, through gRPC) as cancelled too, and the heads' dynamic batchers answer those CANCELLED at
    once, while the trunk's thread is still scheduling the other heads. Triton 2.51's ensemble scheduler (and
    25.03's) then releases the client's request and uses it again: SIGSEGV in TRITONBACKEND_ResponseSend. It only
    passes a cancellation on to steps it schedules later, never to one already running, so the graph's request,
    created by this single step when the client's request arrives, is either cancelled before its tokenizer step
    (which its batcher then rejects alone: no heads run) or never. The price: the step asks the graph for every
    output, so a request for some tasks runs every head. docs/overload.md has the upstream references.
    """
    graph = multitask_graph_config(tasks, serving)
    cfg = mc.ModelConfig()
    cfg.CopyFrom(graph)
    cfg.name = names.MULTITASK
    del cfg.ensemble_scheduling.step[:]
    step = cfg.ensemble_scheduling.step.add(model_name=names.MULTITASK_GRAPH, model_version=-1)
    step.input_map.update({t.name: t.name for t in graph.input})
    step.output_map.update({t.name: t.name for t in graph.output})
    return cfg


def write_multitask(
    tasks: dict[str, tuple[TaskSpec, int]],
    repo: Path,
    serving: ServingOptions | None = None,
    version: int = 1,
) -> None:
    """The multitask graph and its `multitask` wrapper, both at `version`."""
    write_ensemble(multitask_graph_config(tasks, serving), repo, version)
    write_ensemble(multitask_config(tasks, serving), repo, version)


def single_config(name: str, spec: TaskSpec, serving: ServingOptions | None = None) -> mc.ModelConfig:
    out_map = {"scores": f"{name}_scores"} | ({} if spec.is_regression else {"label": f"{name}_label"})
    steps = [
        _tok_step(),
        (names.full(name), {n: n for n in names.ID_TENSORS}, out_map),
    ]
    return ensemble_config(names.single(name), TEXT_INPUTS, task_outputs(name, spec), steps, serving)


def write_ensemble(cfg: mc.ModelConfig, repo: Path, version: int = 1) -> None:
    # An ensemble's version folder holds nothing, but Triton needs it to exist; object stores (S3, GCS) keep
    # no empty folders, so a zero-byte placeholder makes it survive `mtserve k8s upload` / `aws s3 sync`.
    vdir = repo / cfg.name / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    (vdir / names.ENSEMBLE_PLACEHOLDER).touch()
    write_config(cfg, repo / cfg.name)
