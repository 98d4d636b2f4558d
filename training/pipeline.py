"""`mtserve train`: the whole training pipeline for a task set.

Per task, independently (a task team never touches another task):
  1. full fine-tuning            -> the reference dev score and the per-task baseline model
  2. partial fine-tuning, k = 1..K top layers, on cached frozen features
  3. distillation of each k-layer teacher into l < k layers (l <= 3), same trunk depth
  4. choice: the cheapest branch (fewest task layers, then the deepest trunk) whose dev score
     is >= retention_target x full; if none reaches it, the best-scoring branch (the report says so)
Then, across tasks (choose_jointly): the shared trunk is as deep as the deepest branch point, so one task
branching deeper than the others costs every utterance more trunk layers. The per-task choices are revised
to serve the fewest layers in all (trunk + every task's layers), each task still reaching its target.
Then reports/accuracy.{json,md,png}. A run directory holds everything export needs:
  run.json, trunk.safetensors (frozen embeddings + layers), tokenizer/, tasks/<task>/{spec,full,branch,search}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig

from mtserve.serving.errors import UserError
from mtserve.training.backbone import (
    DEFAULT_BACKBONE,
    Branch,
    TaskModel,
    Trunk,
    full_model,
    load_backbone,
    load_branch,
    make_trunk,
    resolve_backbone,
    save_branch,
)
from mtserve.training.features import FeatureCache, LiveFeatures, encode, trunk_fingerprint
from mtserve.training.finetune import Timer, TrainConfig, distil, train_full, train_partial
from mtserve.training.tasks import TaskData, TaskSpec


@dataclass
class SearchConfig:
    k_values: list[int] = field(default_factory=lambda: [1, 2, 3])  # fine-tuned top layers tried
    max_student_layers: int = 3
    retention_target: float = 0.995

    def to_dict(self) -> dict:
        return {
            "k_values": self.k_values,
            "max_student_layers": self.max_student_layers,
            "retention_target": self.retention_target,
        }


def _threshold(full_score: float, target: float) -> float:
    return target * full_score if full_score > 0 else full_score - abs(full_score) * (1 - target)


def choose(candidates: list[dict], full_score: float, target: float) -> tuple[dict, bool]:
    """Fewest task layers, then the deepest trunk, among those reaching target x full; else the best score."""
    threshold = _threshold(full_score, target)
    ok = [c for c in candidates if c["score"] >= threshold]
    if ok:
        return min(ok, key=lambda c: (c["task_layers"], -c["branch_depth"], -c["score"])), True
    return max(candidates, key=lambda c: (c["score"], -c["task_layers"])), False


def layers_served(choices: dict[str, dict]) -> int:
    """The trunk (as deep as the deepest branch point) plus every task's own layers."""
    return max(c["branch_depth"] for c in choices.values()) + sum(c["task_layers"] for c in choices.values())


def choose_jointly(
    searches: dict[str, tuple[list[dict], float]], target: float
) -> dict[str, tuple[dict, bool]]:
    """The choice for every task at once: the fewest layers served in all, each task reaching target x full.

    `searches` maps a task to (its candidates, its full fine-tuning score). A task none of whose candidates reaches
    its target keeps its best-scoring branch (as `choose` does), and its depth is a floor for the trunk. For each
    possible trunk depth D, every other task takes its fewest-layer candidate branching at <= D (the best score
    among equals): branching below D costs nothing more, since the trunk computes depth D anyway. The cheapest D
    wins; among equal costs, the highest summed retention."""
    if not searches:
        return {}
    fixed, ok = {}, {}
    for task, (cands, full) in searches.items():
        good = [c for c in cands if c["score"] >= _threshold(full, target)]
        if good:
            ok[task] = good
        else:
            fixed[task] = choose(cands, full, target)[0]
    floor = max((c["branch_depth"] for c in fixed.values()), default=0)
    depths = sorted({c["branch_depth"] for good in ok.values() for c in good} | {floor})
    best, best_key = None, None
    for depth in (d for d in depths if d >= floor):
        picks = dict(fixed)
        for task, good in ok.items():
            fit = [c for c in good if c["branch_depth"] <= depth]
            if not fit:
                break
            picks[task] = min(fit, key=lambda c: (c["task_layers"], -c["score"]))
        else:
            retention = sum(
                c["score"] / searches[t][1] if searches[t][1] > 0 else 0.0 for t, c in picks.items()
            )
            key = (layers_served(picks), -retention)
            if best_key is None or key < best_key:
                best, best_key = picks, key
    return {task: (best[task], task in ok) for task in searches}


def search_task(
    bert,
    spec: TaskSpec,
    feats: dict,
    gold_train,
    gold_dev,
    cfg: TrainConfig,
    search: SearchConfig,
    full_score: float,
) -> tuple[dict[tuple, Branch], dict, list[dict]]:
    """Steps 2-4 for one task, on cached features (or LiveFeatures, to time the search without them). Returns
    every candidate branch by (kind, k, l), this task's own choice, and every candidate's record."""
    num_layers = bert.config.num_hidden_layers
    candidates, branches = [], {}
    for k in search.k_values:
        depth = num_layers - k
        ftr, fdev = feats[("train", depth)], feats[("dev", depth)]
        with Timer() as t:
            teacher, s = train_partial(bert, spec, k, ftr, gold_train, fdev, gold_dev, cfg)
        candidates.append(
            {
                "kind": "partial",
                "k": k,
                "l": k,
                "branch_depth": depth,
                "task_layers": k,
                "score": s,
                "seconds": round(t.seconds, 2),
            }
        )
        branches[("partial", k, k)] = teacher
        for n_student in range(1, min(search.max_student_layers, k - 1) + 1):
            with Timer() as t:
                student, s = distil(teacher, spec, n_student, ftr, gold_train, fdev, gold_dev, cfg)
            candidates.append(
                {
                    "kind": "distilled",
                    "k": k,
                    "l": n_student,
                    "branch_depth": depth,
                    "task_layers": n_student,
                    "score": s,
                    "seconds": round(t.seconds, 2),
                }
            )
            branches[("distilled", k, n_student)] = student
    chosen, met = choose(candidates, full_score, search.retention_target)
    chosen = {**chosen, "meets_target": met}
    return branches, chosen, candidates


def candidate_path(task_dir: Path, c: dict) -> Path:
    return task_dir / "candidates" / f"{c['kind']}-k{c['k']}-l{c['l']}.safetensors"


@torch.no_grad()
def served_dev_score(
    trunk: Trunk, branch: Branch, enc_dev, gold_dev, spec: TaskSpec, batch_size: int = 64
) -> float:
    """The dev score of what the ensemble serves: the fp32 trunk up to the branch's depth, then the branch.

    The search scores candidates on the fp16 feature cache; a prediction near a decision boundary can flip
    between fp16 and fp32, so the reported `served` score is recomputed here the way Triton computes it."""
    from mtserve.training.features import batches
    from mtserve.training.tasks import score

    d = branch.config.depth
    model = TaskModel(trunk.truncated([d]), branch.eval())
    outs = torch.cat([model.scores(*enc_dev.batch(idx)) for idx in batches(len(enc_dev), batch_size, False)])
    return score(spec, outs.numpy(), gold_dev)


def rescore_served(run_dir: str | Path, datasets: dict[str, TaskData]) -> dict[str, float]:
    """Add the fp32 `served` score to an existing run's choices (runs trained before train_task computed it)."""
    run = Run(run_dir)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(run.root / "tokenizer"), local_files_only=True)
    out = {}
    for task in run.tasks():
        path = run.root / "tasks" / task / "search.json"
        result = json.loads(path.read_text())
        branch, _ = run.branch(task)
        enc_dev = encode(tokenizer, datasets[task].dev, run.meta["config"]["max_length"])
        trunk = run.trunk([branch.config.depth])
        result["chosen"]["served"] = out[task] = served_dev_score(
            trunk, branch, enc_dev, datasets[task].dev.labels, run.spec(task)
        )
        path.write_text(json.dumps(result, indent=2))
    return out


def save_full(model: TaskModel, path: Path, extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)
    path.with_suffix(".json").write_text(
        json.dumps({"branch": model.branch.config.to_dict(), **extra}, indent=2)
    )


def load_full(bert_config: BertConfig, path: Path) -> TaskModel:
    meta = json.loads(path.with_suffix(".json").read_text())
    from transformers import BertModel

    shell = BertModel(bert_config, add_pooling_layer=False)
    b = meta["branch"]
    model = full_model(shell, b["num_labels"], b["regression"], b["pooling"])
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as e:
        raise UserError(f"corrupt checkpoint {path}: {e}") from None
    return model.eval()


class Run:
    """A run directory: the frozen trunk, the tokenizer, and each task's checkpoints."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def meta(self) -> dict:
        p = self.root / "run.json"
        if not p.is_file():
            raise UserError(f"{self.root} is not a training run (no run.json); run `mtserve train` first")
        return json.loads(p.read_text())

    def bert_config(self) -> BertConfig:
        cfg = BertConfig(**json.loads((self.root / "bert_config.json").read_text()))
        cfg._attn_implementation = "eager"  # our trunk/branch pass BertLayer an additive mask
        return cfg

    def trunk(self, out_depths: list[int], depth: int | None = None) -> Trunk:
        from transformers import BertModel

        cfg = self.bert_config()
        shell = BertModel(cfg, add_pooling_layer=False)
        state = load_file(str(self.root / "trunk.safetensors"))
        shell.load_state_dict(state, strict=False)
        return make_trunk(shell, max(out_depths) if depth is None else depth, out_depths)

    def tasks(self) -> list[str]:
        return list(self.meta["tasks"])

    def spec(self, task: str) -> TaskSpec:
        return TaskSpec.from_dict(json.loads((self.root / "tasks" / task / "spec.json").read_text()))

    def branch(self, task: str) -> tuple[Branch, dict]:
        return load_branch(self.bert_config(), self.root / "tasks" / task / "branch.safetensors")

    def full(self, task: str) -> TaskModel:
        return load_full(self.bert_config(), self.root / "tasks" / task / "full.safetensors")

    def task_result(self, task: str) -> dict:
        return json.loads((self.root / "tasks" / task / "search.json").read_text())


def save_backbone(bert, tokenizer, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "bert_config.json").write_text(
        json.dumps(
            bert.config.to_diff_dict()
            | {
                "hidden_size": bert.config.hidden_size,
                "num_hidden_layers": bert.config.num_hidden_layers,
                "num_attention_heads": bert.config.num_attention_heads,
                "intermediate_size": bert.config.intermediate_size,
                "vocab_size": bert.config.vocab_size,
            },
            indent=2,
            default=str,
        )
    )
    state = {
        k: v.contiguous() for k, v in bert.state_dict().items() if k.startswith(("embeddings.", "encoder."))
    }
    save_file(state, str(run_dir / "trunk.safetensors"))
    tokenizer.save_pretrained(str(run_dir / "tokenizer"))


def _progress(line: str) -> None:
    # The tqdm bars stay off when stderr is not a terminal (CI logs); a logged run still shows each stage.
    print(line, file=sys.stderr, flush=True)


def _describe(c: dict) -> str:
    name = f"k{c['k']}" if c["kind"] == "partial" else f"k{c['k']}->l{c['l']}"
    return f"{name}={c['score']:.4f}"


def train_task(
    bert,
    tokenizer,
    data: TaskData,
    cfg: TrainConfig,
    search: SearchConfig,
    cache: FeatureCache,
    trunk: Trunk,
    fingerprint: str,
    run_dir: Path,
    measure_uncached: bool = False,
    keep_candidates: bool = False,
) -> dict:
    """Steps 1-4 for one task; writes tasks/<task>/ and returns its result record."""
    spec = data.spec
    task_dir = run_dir / "tasks" / spec.name
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2))
    enc_train = encode(tokenizer, data.train, cfg.max_length)
    enc_dev = encode(tokenizer, data.dev, cfg.max_length)
    num_layers = bert.config.num_hidden_layers

    with Timer() as t_full:
        full, full_score = train_full(bert, spec, enc_train, data.train.labels, enc_dev, data.dev.labels, cfg)
    save_full(
        full,
        task_dir / "full.safetensors",
        {"task": spec.to_dict(), "dev_score": full_score, "config": cfg.to_dict()},
    )
    del full
    _progress(f"{spec.name}: full fine-tuning {spec.metric} {full_score:.4f} ({t_full.seconds:.0f} s)")

    depths = sorted({num_layers - k for k in search.k_values})
    with Timer() as t_feat:
        f_train = cache.get(
            trunk, fingerprint, enc_train, depths, desc=f"{spec.name}: trunk features (train)"
        )
        f_dev = cache.get(trunk, fingerprint, enc_dev, depths, desc=f"{spec.name}: trunk features (dev)")
    feats = {("train", d): f_train[d] for d in depths} | {("dev", d): f_dev[d] for d in depths}
    with Timer() as t_search:
        branches, chosen, candidates = search_task(
            bert, spec, feats, data.train.labels, data.dev.labels, cfg, search, full_score
        )
        branch = branches[(chosen["kind"], chosen["k"], chosen["l"])]
        chosen["served"] = served_dev_score(trunk, branch, enc_dev, data.dev.labels, spec)
    _progress(
        f"{spec.name}: search {' '.join(_describe(c) for c in candidates)} -> {_describe(chosen)}"
        f"{'' if chosen['meets_target'] else ' (below target)'} ({t_search.seconds:.0f} s)"
    )
    result = {
        "task": spec.to_dict(),
        "metric": spec.metric,
        "full": full_score,
        "chosen": chosen,
        "candidates": candidates,
        "train_examples": len(data.train),
        "dev_examples": len(data.dev),
        "notes": data.notes,
        "seconds": {
            "full": round(t_full.seconds, 2),
            "features": round(t_feat.seconds, 2),
            "search": round(t_search.seconds, 2),
        },
    }
    if measure_uncached:
        # The same search (every k, every student) with the frozen trunk run over every batch instead of
        # read from the cache: what the cache saves, measured rather than estimated.
        live = {}
        for d in depths:
            shallow = trunk.truncated([d])
            live |= {
                ("train", d): LiveFeatures(shallow, enc_train),
                ("dev", d): LiveFeatures(shallow, enc_dev),
            }
        with Timer() as t_nc:
            _, chosen_nc, candidates_nc = search_task(
                bert, spec, live, data.train.labels, data.dev.labels, cfg, search, full_score
            )
        result["seconds"]["search_uncached"] = round(t_nc.seconds, 2)
        result["uncached"] = {"candidates": candidates_nc, "chosen": chosen_nc}
        _progress(
            f"{spec.name}: the same search without the cache {t_nc.seconds:.0f} s "
            f"(cached {t_search.seconds:.0f} s + features {t_feat.seconds:.0f} s)"
        )
    save_branch(
        branch,
        task_dir / "branch.safetensors",
        {"task": spec.to_dict(), "chosen": chosen, "config": cfg.to_dict()},
    )
    if keep_candidates:  # for the choice across tasks (train); removed once it is made
        for c in candidates:
            save_branch(
                branches[(c["kind"], c["k"], c["l"])],
                candidate_path(task_dir, c),
                {"task": spec.to_dict(), "chosen": c, "config": cfg.to_dict()},
            )
    (task_dir / "search.json").write_text(json.dumps(result, indent=2))
    return result


def revise_jointly(
    run_dir: Path,
    datasets: dict[str, TaskData],
    results: dict[str, dict],
    bert_config: BertConfig,
    tokenizer,
    trunk: Trunk,
    cfg: TrainConfig,
    search: SearchConfig,
) -> None:
    """Replace each task's own choice by the choice across tasks (choose_jointly) where they differ: its branch,
    its served score, its search.json (the task's own choice stays there as `chosen_alone`)."""
    joint = choose_jointly(
        {t: (r["candidates"], r["full"]) for t, r in results.items()}, search.retention_target
    )
    for task, (pick, met) in joint.items():
        result, task_dir = results[task], run_dir / "tasks" / task
        alone = result["chosen"]
        if (pick["kind"], pick["k"], pick["l"]) != (alone["kind"], alone["k"], alone["l"]):
            data = datasets[task]
            branch, _ = load_branch(bert_config, candidate_path(task_dir, pick))
            chosen = {**pick, "meets_target": met}
            chosen["served"] = served_dev_score(
                trunk, branch, encode(tokenizer, data.dev, cfg.max_length), data.dev.labels, data.spec
            )
            save_branch(
                branch,
                task_dir / "branch.safetensors",
                {"task": data.spec.to_dict(), "chosen": chosen, "config": cfg.to_dict()},
            )
            result["chosen"], result["chosen_alone"] = chosen, alone
            _progress(
                f"{task}: across tasks, {_describe(chosen)} at depth {chosen['branch_depth']} instead of "
                f"{_describe(alone)} at depth {alone['branch_depth']}"
            )
            (task_dir / "search.json").write_text(json.dumps(result, indent=2))  # train_task wrote the rest
        shutil.rmtree(task_dir / "candidates", ignore_errors=True)


def train(
    datasets: dict[str, TaskData],
    run_dir: str | Path,
    backbone: str = DEFAULT_BACKBONE,
    cfg: TrainConfig | None = None,
    search: SearchConfig | None = None,
    cache_dir: str | Path | None = "cache",
    bert=None,
    tokenizer=None,
    measure_uncached: bool = False,
    notes: list[str] | None = None,
) -> dict:
    """Train every task; returns run.json's content. `bert`/`tokenizer` override loading (tests' tiny BERTs)."""
    cfg = cfg or TrainConfig()
    search = search or SearchConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(run_dir)
    if bert is None:
        bert, tokenizer = load_backbone(backbone)
    num_layers = bert.config.num_hidden_layers
    bad = [k for k in search.k_values if not 1 <= k < num_layers]
    if bad:  # k = num_layers would leave no shared layer: that is full fine-tuning, the baseline itself
        raise UserError(f"--k values {bad} outside 1..{num_layers - 1} for this {num_layers}-layer backbone")
    save_backbone(bert, tokenizer, run_dir)
    trunk = make_trunk(bert, num_layers, list(range(num_layers + 1)))
    fingerprint = trunk_fingerprint(trunk)
    cache = FeatureCache(Path(cache_dir) / "features" if cache_dir else None)
    results = {}
    for name, data in datasets.items():
        results[name] = train_task(
            bert,
            tokenizer,
            data,
            cfg,
            search,
            cache,
            trunk,
            fingerprint,
            run_dir,
            measure_uncached,
            keep_candidates=True,
        )
        if cache.root is not None:
            cache.clear_memory()  # the next task reloads from disk what it shares with this one
    revise_jointly(run_dir, datasets, results, bert.config, tokenizer, trunk, cfg, search)
    meta = {
        "backbone": backbone,
        "backbone_path": resolve_backbone(backbone) if not isinstance(backbone, type) else "",
        "num_layers": num_layers,
        "hidden_size": bert.config.hidden_size,
        "config": cfg.to_dict(),
        "search": search.to_dict(),
        "tasks": list(results),
        "trunk_fingerprint": fingerprint,
        "notes": list(notes or []) + [n for r in results.values() for n in r["notes"]],
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    return meta


# ---------------------------------------------------------------- CLI
def load_datasets(
    tasks: list[str] | None,
    glue_dir: str | None,
    max_train: int | None,
    seed: int = 0,
    tasks_file: str | None = None,
    data_root: str | None = None,
) -> dict[str, TaskData]:
    """Every task's data, read and checked in full before anything trains (a bad file names its row and column)."""
    if tasks_file and glue_dir:
        raise UserError(
            "give --tasks-file or --glue-dir, not both (GLUE is training/glue.yaml with --data-root)"
        )
    if tasks_file:
        from mtserve.training.task_file import load_task_file

        return load_task_file(tasks_file, root=data_root, only=tasks, seed=seed, max_train=max_train)
    if glue_dir:
        from mtserve.training.task_file import load_glue

        names = tasks or ["cola", "sst2", "mrpc", "stsb", "rte", "qnli"]
        return {n: load_glue(n, glue_dir, max_train, seed) for n in names}
    from mtserve.training import corpus

    data = corpus.generate()
    unknown = [t for t in tasks or [] if t not in data]
    if unknown:
        raise UserError(
            f"unknown task(s) {unknown} in the embedded corpus (it has {list(data)}); "
            "give --glue-dir for GLUE tasks"
        )
    data = {t: data[t] for t in (tasks or list(data))}
    if max_train:
        for d in data.values():
            if len(d.train) > max_train:
                d.notes.append(f"training set capped at {max_train} of {len(d.train)} rows")
                d.train = d.train.head(max_train)
    return data


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", help="comma-separated task names (default: every task of the data source)")
    p.add_argument(
        "--tasks-file",
        help="YAML task file: your own tasks and data files (schema: README, training/task_file.py)",
    )
    p.add_argument(
        "--data-root", help="with --tasks-file: read its relative paths from here (default: its folder)"
    )
    p.add_argument(
        "--glue-dir", help="folder holding GLUE's task folders (CoLA, SST-2, ...); default: embedded corpus"
    )
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="BERT checkpoint: local path or cached HF id")
    p.add_argument("--run-dir", default="runs/latest", help="where checkpoints go")
    p.add_argument("--reports", default="reports", help="where accuracy.{json,md,png} go")
    p.add_argument("--max-train-examples", type=int, help="cap each training set (a seeded random sample)")
    p.add_argument("--k", default="1,2,3", help="numbers of fine-tuned top layers to try")
    p.add_argument("--max-student-layers", type=int, default=3)
    p.add_argument("--retention-target", type=float, default=0.995)
    p.add_argument("--epochs-full", type=float, default=3.0)
    p.add_argument("--epochs-partial", type=float, default=4.0)
    p.add_argument("--epochs-distil", type=float, default=4.0)
    p.add_argument("--lr-full", type=float, default=5e-5)
    p.add_argument("--lr-partial", type=float, default=2e-4)
    p.add_argument("--lr-distil", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default="cache", help="feature cache folder ('' for memory only)")
    p.add_argument(
        "--measure-uncached",
        action="store_true",
        help="also run and time each task's whole search without the feature cache",
    )


def config_from_args(args) -> tuple[TrainConfig, SearchConfig]:
    try:
        k_values = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        raise UserError(f"--k must be comma-separated integers, got {args.k!r}") from None
    cfg = TrainConfig(
        max_length=args.max_length,
        batch_size=args.batch_size,
        epochs_full=args.epochs_full,
        epochs_partial=args.epochs_partial,
        epochs_distil=args.epochs_distil,
        seed=args.seed,
        lr_full=args.lr_full,
        lr_partial=args.lr_partial,
        lr_distil=args.lr_distil,
    )
    return cfg, SearchConfig(k_values, args.max_student_layers, args.retention_target)


def run(args) -> int:
    from mtserve.training import report

    cfg, search = config_from_args(args)
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    datasets = load_datasets(
        tasks, args.glue_dir, args.max_train_examples, args.seed, args.tasks_file, args.data_root
    )
    run_dir = Path(args.run_dir)
    if run_dir.exists() and not (run_dir / "run.json").exists() and any(run_dir.iterdir()):
        raise UserError(f"{run_dir} exists and is not a training run: refusing to replace it")
    # Train into a temporary folder and swap it in at the end: a failed or interrupted run keeps the last good one.
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = run_dir.parent / f".{run_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        meta = train(
            datasets,
            tmp,
            args.backbone,
            cfg,
            search,
            args.cache_dir or None,
            measure_uncached=args.measure_uncached,
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if run_dir.exists():
        shutil.rmtree(run_dir)
    tmp.rename(run_dir)
    acc = report.write_accuracy(Run(run_dir), args.reports)
    print(report.accuracy_table(acc))
    print(
        f"run: {run_dir}   reports: {args.reports}/accuracy.{{json,md,png}}   tasks: {', '.join(meta['tasks'])}"
    )
    return 0
