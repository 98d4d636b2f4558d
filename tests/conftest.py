"""Shared fixtures: a tiny BERT (transformers' test shape) with a vocabulary built from the demo corpus,
a tiny trained run, its exported repository, and one real Triton serving it for the whole session."""

from __future__ import annotations

import os
import re
import string
import time
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
GLUE_DIR = ROOT.parent / "shared" / "glue"


def build_vocab(texts: list[str]) -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for t in texts for w in re.findall(r"[a-z0-9]+", t.lower())})
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return (
        specials
        + chars
        + ["##" + c for c in string.ascii_lowercase + string.digits]
        + [w for w in words if len(w) > 1]
    )


def first_segment(repo) -> str:
    """The repository's first trunk segment (from the token ids): what the single `trunk` model was before the trunk
    was cut at its branch depths."""
    from mtserve.core import names, registry

    return names.segment(*registry.load(repo).segments()[0])


def execution_counts(triton_client) -> dict[str, int]:
    """Every model's execution count, from Triton's own statistics."""
    stats = triton_client.get_inference_statistics(as_json=True)
    return {s["name"]: int(s.get("execution_count", 0) or 0) for s in stats["model_stats"]}


def models_that_ran(
    triton_client, before: dict[str, int], expected: set[str], wait_s: float = 5.0
) -> set[str]:
    """The models whose execution count has risen above `before` (from `execution_counts`). Triton can record a
    model's statistics after the reply has reached the client: once in a full test run, every model an ensemble
    composed had counted its run and the ensembles themselves not yet. So wait up to `wait_s` for `expected` to
    show, then return what ran, for the test to compare with `expected` exactly (an extra model still fails)."""
    deadline = time.monotonic() + wait_s
    while True:
        after = execution_counts(triton_client)
        ran = {m for m in after if after[m] > before.get(m, 0)}
        if expected <= ran or time.monotonic() > deadline:
            return ran
        time.sleep(0.05)


@pytest.fixture(scope="session")
def two_depth_repo(tmp_path_factory):
    """A synthetic repository of a tiny random 3-layer BERT: four tasks branching at depths 1 and 2 (two trunk
    segments), groups `pair` (t00, t02: one depth) and `mixed` (t00, t01: both), one instance of each model."""
    from mtserve.export import synthetic
    from mtserve.export.model_config import ServingOptions

    tiny = synthetic.Shape("tiny", 3, 32, 4, 37, 2, (1,))
    repo = tmp_path_factory.mktemp("two_depths") / "model_repository"
    synthetic.build_synthetic_repo(
        repo,
        4,
        tiny,
        max_length=32,
        depths=(1, 2),
        groups={"pair": ["t00", "t02"], "mixed": ["t00", "t01"]},
        serving=ServingOptions(instances={"trunk": 1, "heads": 1}),
        check_memory=False,
        log=lambda *_: None,
    )
    return repo


def tiny_bert(num_layers: int = 4, hidden: int = 32, heads: int = 4, vocab_size: int = 99, seed: int = 0):
    """A random tiny BERT (the transformers test suite's shape): the backbone of every training test."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=heads,
        intermediate_size=37,
        max_position_embeddings=512,
        attn_implementation="eager",
    )
    return BertModel(cfg).eval()


@pytest.fixture(scope="session")
def tiny_backbone():
    """(BertModel, tokenizer): 4 layers, hidden 32, a vocabulary covering the demo corpus."""
    from transformers import BertTokenizerFast

    from mtserve.core import corpus

    data = corpus.generate(n_train=400, n_dev=100)
    vocab = build_vocab(next(iter(data.values())).train.texts)
    # transformers 5 ignores `vocab_file=` here (and builds a 5-token vocabulary): pass the mapping itself.
    tokenizer = BertTokenizerFast(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True)
    assert len(tokenizer) == len(vocab)
    return tiny_bert(num_layers=4, hidden=32, heads=4, vocab_size=len(vocab)), tokenizer


@pytest.fixture(scope="session")
def tiny_data():
    from mtserve.core import corpus

    return corpus.generate(n_train=400, n_dev=100)


@pytest.fixture(scope="session")
def tiny_run(tiny_backbone, tiny_data, tmp_path_factory):
    """A trained run on the demo corpus's four tasks with the tiny BERT: seconds, not minutes."""
    from mtserve.training.config import SearchConfig, TrainConfig
    from mtserve.training.pipeline import train

    bert, tokenizer = tiny_backbone
    run_dir = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        max_length=32,
        epochs_full=1,
        epochs_partial=2,
        epochs_distil=1,
        lr_full=1e-3,
        lr_partial=1e-3,
        lr_distil=1e-3,
    )
    train(
        tiny_data,
        run_dir,
        backbone="tiny-test-bert",
        cfg=cfg,
        search=SearchConfig([1, 2], 1, 0.9),
        cache_dir=None,
        bert=bert,
        tokenizer=tokenizer,
    )
    return run_dir


@pytest.fixture(scope="session")
def tiny_repo(tiny_run, tmp_path_factory):
    from mtserve.export.export import export_run

    repo = tmp_path_factory.mktemp("repo") / "model_repository"
    export_run(tiny_run, repo, profile="local", progress=False)
    return repo


@pytest.fixture(scope="session")
def triton(tiny_repo):
    """One real Triton on the tiny repository for the whole session (explicit mode: tests may load/unload)."""
    from mtserve.serving.triton import TritonServer

    server = TritonServer(tiny_repo, model_control="explicit", load_models=["*"])
    server.start()
    yield server
    server.stop()
