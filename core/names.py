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
RESERVED_PREFIXES = (FULL_PREFIX, SINGLE_PREFIX)


def full(task: str) -> str:
    """The per-task baseline's BERT (one fully fine-tuned model)."""
    return FULL_PREFIX + task


def single(task: str) -> str:
    """The per-task baseline's ensemble: text -> full_<task>."""
    return SINGLE_PREFIX + task


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


def hidden(depth: int) -> str:
    """The trunk's output after `depth` layers: the input of every head branching there."""
    return f"{HIDDEN_PREFIX}{depth}"


def scores(task: str) -> str:
    return f"{task}_scores"


def label(task: str) -> str:
    return f"{task}_label"
