"""The model repository's names: models, tensors, the ensemble placeholder, the task-name rule.

One owner for every name a repository, its registry, the load test and the manifests agree on.
Standard library only: every role (serve, loadtest, k8s) imports it without torch.
"""

from __future__ import annotations

import re

from mtserve.core.errors import UserError

# ---------------------------------------------------------------- tasks
TASK_NAME_RULE = "[a-z][a-z0-9_]*"
TASK_NAME = re.compile(rf"{TASK_NAME_RULE}\Z")


def check_task_name(name: str, where: str = "") -> str:
    """`name` if it is a valid task name; else a UserError (prefixed with `where`, e.g. a file and row)."""
    if not isinstance(name, str) or not TASK_NAME.match(name):
        raise UserError(f"{where + ': ' if where else ''}task name {name!r} must match {TASK_NAME_RULE}")
    return name


# ---------------------------------------------------------------- models
TOKENIZER = "tokenizer"
TRUNK = "trunk"
MULTITASK = "multitask"
# What `multitask` runs: tokenizer -> trunk -> every head. Clients call `multitask`, a one-step wrapper, so that a
# cancelled request never reaches the heads (export/export.py multitask_config says why).
MULTITASK_GRAPH = "multitask_graph"
RESERVED_MODELS = (TOKENIZER, TRUNK, MULTITASK, MULTITASK_GRAPH)
FULL_PREFIX = "full_"
SINGLE_PREFIX = "single_"
# The trunk is served as segments, cut at every depth a task branches from: trunk_0_<d1> (embeddings and the
# first d1 layers, from the token ids), trunk_<d1>_<d2>, ...; a request stops after the deepest one it needs.
# A segment's name says which layers it runs, and the trunk's weights are frozen, so a name always means the same
# weights: a task at a new depth adds segments under new names instead of changing a served one.
SEGMENT_PREFIX = "trunk_"
SEGMENT = re.compile(rf"{SEGMENT_PREFIX}(\d+)_(\d+)\Z")
# What a request for some tasks calls: path_<task> (its segments, its head: a linear chain) and group_<name>
# (a one-step wrapper, like `multitask`, around graph_<name>: the segments and the group's heads).
PATH_PREFIX = "path_"
GROUP_PREFIX = "group_"
GROUP_GRAPH_PREFIX = "graph_"
RESERVED_PREFIXES = (
    FULL_PREFIX,
    SINGLE_PREFIX,
    SEGMENT_PREFIX,
    PATH_PREFIX,
    GROUP_PREFIX,
    GROUP_GRAPH_PREFIX,
)


def full(task: str) -> str:
    """The per-task baseline's BERT (one fully fine-tuned model)."""
    return FULL_PREFIX + task


def single(task: str) -> str:
    """The per-task baseline's ensemble: text -> full_<task>."""
    return SINGLE_PREFIX + task


def segment(start: int, end: int) -> str:
    """The trunk's layers start+1..end (start 0: from the token ids, embeddings included)."""
    return f"{SEGMENT_PREFIX}{start}_{end}"


def segment_bounds(model: str) -> tuple[int, int] | None:
    m = SEGMENT.match(model)
    return (int(m.group(1)), int(m.group(2))) if m else None


def segments(depths) -> list[tuple[int, int]]:
    """The trunk's segments for the depths tasks branch from: (0, d1), (d1, d2), ... Every depth is >= 1 (a
    branch reads at least one trunk layer: training's k is below the backbone's layer count)."""
    ds = sorted(set(depths))
    if ds and ds[0] < 1:
        raise UserError(f"a task branches from depth {ds[0]}: every branch depth must be at least 1")
    return list(zip([0, *ds[:-1]], ds, strict=True))


def segments_to(depth: int, depths) -> list[tuple[int, int]]:
    """The segments a request for a task at `depth` runs: those up to it."""
    return [s for s in segments(depths) if s[1] <= depth]


def path(task: str) -> str:
    """One task's served path: tokenizer -> its segments -> its head."""
    return PATH_PREFIX + task


def group(name: str) -> str:
    """A task group's served path (the one-step wrapper clients call)."""
    return GROUP_PREFIX + name


def group_graph(name: str) -> str:
    """What a group's wrapper runs: tokenizer -> the segments its deepest task needs -> every head of the group."""
    return GROUP_GRAPH_PREFIX + name


def task_of_full(model: str) -> str | None:
    return model[len(FULL_PREFIX) :] if model.startswith(FULL_PREFIX) else None


def task_of_single(model: str) -> str | None:
    return model[len(SINGLE_PREFIX) :] if model.startswith(SINGLE_PREFIX) else None


# An ensemble's version folder holds no file; object stores (S3, GCS) have no empty folders, so the exporter
# writes this placeholder and uploads keep it.
ENSEMBLE_PLACEHOLDER = ".keep"

# Where TensorRT engines are cached in the serving container: `mtserve export --tensorrt` writes it into the
# configs (trt_engine_cache_path) and the InferenceService mounts its engine-cache volume there.
TRT_CACHE_PATH = "/var/cache/mtserve/tensorrt"

# ---------------------------------------------------------------- tensors
TEXT = "text"
TEXT_PAIR = "text_pair"
ID_TENSORS = ("input_ids", "token_type_ids", "attention_mask")
ATTENTION_MASK = "attention_mask"
HIDDEN_PREFIX = "hidden_"
HIDDEN = re.compile(rf"{HIDDEN_PREFIX}(\d+)\Z")


SEGMENT_INPUT = (
    "hidden"  # a trunk segment's input after the first (the first reads the token ids), as a head's
)
SEGMENT_OUTPUT = "hidden_out"  # a segment's output: the hidden state at its end depth


def hidden(depth: int) -> str:
    """The trunk's output after `depth` layers: the input of every head branching there."""
    return f"{HIDDEN_PREFIX}{depth}"


def scores(task: str) -> str:
    return f"{task}_scores"


def label(task: str) -> str:
    return f"{task}_label"
