# Over 500 lines: `mtserve train` end to end - one task's search, the joint choice, resume and --from-run, its CLI.
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
import hashlib
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import torch
from transformers import BertConfig

from mtserve.core.errors import UserError
from mtserve.core.options import add_dataclass_arguments, from_args
from mtserve.core.registry import atomic_write
from mtserve.core.tasks import TaskData, TaskSpec, cap_training, score, with_validation
from mtserve.training.backbone import (
    DEFAULT_BACKBONE,
    Branch,
    TaskModel,
    Trunk,
    load_backbone,
    load_branch,
    make_trunk,
    resolve_backbone,
    save_branch,
    save_full,
)
from mtserve.training.config import ProgressConfig, SearchConfig, TrainConfig
from mtserve.training.device import CPU, Compute
from mtserve.training.features import FeatureCache, LiveFeatures, encode, trunk_fingerprint
from mtserve.training.finetune import (
    Timer,
    branch_outputs,
    distil,
    predict_full,
    train_full,
    train_partial,
    train_units,
)
from mtserve.training.progress import VERBOSE, Progress, current, duration, using
from mtserve.training.run_dir import Run, RunRecord, SearchRecord, save_backbone
from mtserve.training.search import DISTILLED, PARTIAL, Candidate, choose, choose_jointly


def search_task(
    bert,
    spec: TaskSpec,
    feats: dict,
    gold: dict,
    cfg: TrainConfig,
    search: SearchConfig,
    full_validation: float,
) -> tuple[dict[tuple, Branch], Candidate, list[Candidate]]:
    """Steps 2-4 for one task, on cached features (or LiveFeatures, to time the search without them). `feats`:
    (split, depth) -> features and `gold`: split -> labels, for the splits train, validation and dev. Every
    candidate is scored on validation (what the choice compares, against full fine-tuning's validation score)
    and on dev (what the reports give: rows the choice never saw). Returns every candidate branch by
    Candidate.key, this task's own choice, and every candidate."""
    num_layers = bert.config.num_hidden_layers
    comp = cfg.compute()
    candidates, branches = [], {}
    sizes = {split: len(g) for split, g in gold.items()}
    p = current()

    def scored(kind: str, k: int, layers: int, branch: Branch, s_val: float, seconds: float) -> str:
        s_dev = score(
            spec, branch_outputs(branch, feats[("dev", num_layers - k)], comp=comp).numpy(), gold["dev"]
        )
        candidates.append(Candidate(kind, k, layers, num_layers - k, s_val, round(seconds, 2), dev=s_dev))
        branches[candidates[-1].key] = branch
        return f"{spec.metric} {s_val:.4f} on validation, {s_dev:.4f} on dev"

    for k in search.k_values:
        depth = num_layers - k
        ftr, fval = feats[("train", depth)], feats[("validation", depth)]
        units = candidate_work(sizes, k, k, cfg)
        with p.stage(f"partial k={k}", units, VERBOSE) as out, Timer() as t:
            teacher, s = train_partial(
                bert,
                spec,
                k,
                ftr,
                gold["train"],
                fval,
                gold["validation"],
                cfg,
                search.pooling_of_branches(cfg),
            )
            seconds = t.elapsed()  # training only, as before the scoring
            out["text"] = scored(PARTIAL, k, k, teacher, s, seconds)
        for n_student in range(1, min(search.max_student_layers, k - 1) + 1):
            units = candidate_work(sizes, k, n_student, cfg)
            with p.stage(f"distil k={k}->l={n_student}", units, VERBOSE) as out, Timer() as t:
                student, s = distil(
                    teacher, spec, n_student, ftr, gold["train"], fval, gold["validation"], cfg
                )
                seconds = t.elapsed()
                out["text"] = scored(DISTILLED, k, n_student, student, s, seconds)
    chosen, met = choose(candidates, full_validation, search.retention_target)
    return branches, replace(chosen, meets_target=met), candidates


def candidate_path(task_dir: Path, c: Candidate) -> Path:
    return task_dir / "candidates" / f"{c.kind}-k{c.k}-l{c.task_layers}.safetensors"


# ---------------------------------------------------------------- planned work, for the time left
def candidate_work(sizes: dict[str, int], k: int, layers: int, cfg: TrainConfig) -> float:
    """One candidate of the search in layer-rows (training/progress.py): a partial fine-tuning of k layers
    (layers == k) or a student of `layers` layers distilled from it (its teacher's logits over train first),
    then both evaluation splits scored."""
    evaluated = sizes["validation"] + sizes["dev"]
    teacher = 0.0 if layers == k else k * sizes["train"]
    epochs = cfg.epochs_partial if layers == k else cfg.epochs_distil
    return teacher + train_units(sizes["train"], layers, epochs) + layers * evaluated


def stage_work(
    sizes: dict[str, int],
    num_layers: int,
    cfg: TrainConfig,
    search: SearchConfig,
    peer: bool = False,
    uncached: bool = False,
) -> dict[str, float]:
    """Each stage of one task's training in layer-rows: what the estimate of the time left counts."""
    evaluated = sizes["validation"] + sizes["dev"]
    full = train_units(sizes["train"], num_layers, cfg.epochs_full) + num_layers * evaluated
    pairs = [(k, k) for k in search.k_values] + [
        (k, n) for k in search.k_values for n in range(1, min(search.max_student_layers, k - 1) + 1)
    ]
    searched = sum(candidate_work(sizes, k, n, cfg) for k, n in pairs) + num_layers * sizes["dev"]
    # without the cache the trunk runs under every training step and every scoring
    live = sum(
        (num_layers - k)
        * (sizes["train"] * (cfg.epochs_partial if k == n else cfg.epochs_distil) + evaluated)
        for k, n in pairs
    )
    return {
        "full": full,
        "peer": full if peer else 0.0,
        "features": float(sum(sizes.values()) * (num_layers - min(search.k_values))),
        "search": searched,
        "uncached": searched + live if uncached else 0.0,
    }


@torch.no_grad()
def served_dev_score(
    trunk: Trunk, branch: Branch, enc_dev, gold_dev, spec: TaskSpec, batch_size: int = 64, comp: Compute = CPU
) -> float:
    """The dev score of what the ensemble serves: the fp32 trunk up to the branch's depth, then the branch.

    The search scores candidates on the fp16 feature cache; a prediction near a decision boundary can flip
    between fp16 and fp32, so the reported `served` score is recomputed here the way Triton computes it:
    in fp32 whatever --precision trained in (on comp's device)."""
    from mtserve.core.tasks import score
    from mtserve.training.finetune import predict_full

    d = branch.config.depth
    model = TaskModel(trunk.truncated([d]), branch.eval())
    fp32 = Compute(comp.device)
    outs = predict_full(model, enc_dev, batch_size, comp=fp32)
    model.cpu()
    return score(spec, outs, gold_dev)


def _progress(line: str) -> None:
    # The tqdm bars stay off when stderr is not a terminal (CI logs); a logged run still shows each stage.
    current().line(line)


def _describe(c: Candidate) -> str:
    return f"{c.name}={c.score:.4f}"


def _save_branch(branch: Branch, path: Path, spec: TaskSpec, c: Candidate, cfg: TrainConfig) -> None:
    save_branch(branch, path, {"task": spec.to_dict(), "chosen": c.to_dict(), "config": cfg.to_dict()})


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
    peer_baseline: bool = False,
    baseline: dict | None = None,
) -> SearchRecord:
    """Steps 1-4 for one task; writes tasks/<task>/ and returns its result record (its search.json).

    `baseline`: step 1 as an earlier run of the same settings and data finished it (`_baseline_of`: full
    fine-tuning's scores and time, the peer's result); its full.safetensors must be in the task's folder already.
    The search settings do not change step 1, so a run that only widens the search does not repeat it.

    Progress goes to training/progress.py's current() Progress: its lines, and tasks/<task>/train_log.jsonl."""
    task_dir = run_dir / "tasks" / data.spec.name
    task_dir.mkdir(parents=True, exist_ok=True)
    kept = () if baseline is None else ("full fine-tuning", "peer")  # their loss records stay in the log
    p = current()
    if data.spec.name not in p.work:  # trained on its own (mtserve task add / retrain): its plan alone
        d = with_validation(data, cfg.seed)
        sizes = {"train": len(d.train), "validation": len(d.validation), "dev": len(d.dev)}
        work = stage_work(sizes, bert.config.num_hidden_layers, cfg, search, peer_baseline, measure_uncached)
        if baseline is not None:
            work["full"] = work["peer"] = 0.0
        p.plan({data.spec.name: work})
    with p.task(data.spec.name, task_dir, keep=kept):
        return _train_task(
            bert,
            tokenizer,
            data,
            cfg,
            search,
            cache,
            trunk,
            fingerprint,
            task_dir,
            measure_uncached,
            keep_candidates,
            peer_baseline,
            baseline,
        )


def _train_task(
    bert,
    tokenizer,
    data: TaskData,
    cfg: TrainConfig,
    search: SearchConfig,
    cache: FeatureCache,
    trunk: Trunk,
    fingerprint: str,
    task_dir: Path,
    measure_uncached: bool,
    keep_candidates: bool,
    peer_baseline: bool,
    baseline: dict | None,
) -> SearchRecord:
    from mtserve.training import chance

    p = current()
    spec = data.spec
    data = with_validation(data, cfg.seed)  # every loader holds one out already; data built elsewhere too
    (task_dir / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2))
    splits = {"train": data.train, "validation": data.validation, "dev": data.dev}
    enc = {name: encode(tokenizer, s, cfg.max_length) for name, s in splits.items()}
    gold = {name: s.labels for name, s in splits.items()}
    num_layers = bert.config.num_hidden_layers
    comp = cfg.compute()
    work = stage_work(
        {n: len(g) for n, g in gold.items()}, num_layers, cfg, search, peer_baseline, measure_uncached
    )

    if baseline is not None:
        full_score, full_validation, full_seconds = (
            baseline[k] for k in ("full", "full_validation", "seconds")
        )
        peer, full_chance = baseline.get("peer"), baseline.get("full_chance")
        p.line(
            f"{p.where()}: full fine-tuning kept from the earlier run: {spec.metric} {full_score:.4f} on dev, "
            f"{full_validation:.4f} on validation"
        )
    else:
        with p.stage("full fine-tuning", work["full"], kind="full") as out, Timer() as t_full:
            full, full_score = train_full(
                bert, spec, enc["train"], gold["train"], enc["dev"], gold["dev"], cfg
            )
            full_validation = score(
                spec, predict_full(full, enc["validation"], comp=comp), gold["validation"]
            )
            # against what no learning scores on the same rows (training/chance.py)
            full_chance = chance.check(spec, predict_full(full, enc["dev"], comp=comp), gold["dev"], cfg.seed)
            out["text"] = f"{spec.metric} {full_score:.4f} on dev, {full_validation:.4f} on validation"
        save_full(
            full,
            task_dir / "full.safetensors",
            {"task": spec.to_dict(), "dev_score": full_score, "config": cfg.to_dict()},
        )
        del full
        full_seconds, peer = t_full.seconds, None
    if full_chance is not None and not full_chance["learned"]:
        p.warn(
            f"{spec.name}: full fine-tuning did not learn: {chance.describe(spec.metric, full_chance)}; "
            "its retentions are meaningless (the reports mark them so)"
        )

    if peer_baseline and peer is None:
        from mtserve.training.peer import peer_finetune

        with p.stage("peer", work["peer"], kind="peer") as out:
            peer = peer_finetune(bert, tokenizer, data, cfg)
            out["text"] = (
                f"Hugging Face Trainer's {spec.metric} {peer['score']:.4f} on dev (ours {full_score:.4f})"
            )

    depths = sorted({num_layers - k for k in search.k_values})
    feats = {}
    with p.stage("trunk features", work["features"], kind="features") as out, Timer() as t_feat:
        for name in splits:
            f = cache.get(trunk, fingerprint, enc[name], depths, desc=f"trunk features ({name})", comp=comp)
            feats |= {(name, d): f[d] for d in depths}
        out["text"] = f"depths {', '.join(map(str, depths))} of {sum(map(len, splits.values()))} rows"
    with p.stage("search", work["search"], kind="search") as out, Timer() as t_search:
        branches, chosen, candidates = search_task(bert, spec, feats, gold, cfg, search, full_validation)
        branch = branches[chosen.key]
        chosen = replace(
            chosen, served=served_dev_score(trunk, branch, enc["dev"], gold["dev"], spec, comp=comp)
        )
        out["text"] = (
            f"(validation) {' '.join(_describe(c) for c in candidates)} -> {_describe(chosen)}"
            f"{'' if chosen.meets_target else ' (below target)'}, served dev {chosen.served:.4f}"
        )
    result = SearchRecord(
        task=spec.to_dict(),
        metric=spec.metric,
        full=full_score,
        full_validation=full_validation,
        full_chance=full_chance,
        chosen=chosen.to_dict(),
        candidates=[c.to_dict() for c in candidates],
        train_examples=len(data.train),
        validation_examples=len(data.validation),
        dev_examples=len(data.dev),
        notes=data.notes,
        search=search.to_dict(),  # what --resume compares: a task searched with other settings searches again
        seconds={
            "full": round(full_seconds, 2),
            "features": round(t_feat.seconds, 2),
            "search": round(t_search.seconds, 2),
        },
        kept=None if baseline is None else baseline["kept"],
        peer=peer,
    )
    if peer is not None:
        result.seconds["peer"] = peer["seconds"]
    if measure_uncached:
        # The same search (every k, every student) with the frozen trunk run over every batch instead of
        # read from the cache: what the cache saves, measured rather than estimated.
        live = {}
        for d in depths:
            shallow = trunk.truncated([d])
            live |= {(name, d): LiveFeatures(shallow, enc[name], comp) for name in splits}
        with (
            p.stage("the same search without the cache", work["uncached"], kind="uncached") as out,
            Timer() as t_nc,
        ):
            _, chosen_nc, candidates_nc = search_task(bert, spec, live, gold, cfg, search, full_validation)
            out["text"] = f"cached: {t_search.seconds:.0f} s + features {t_feat.seconds:.0f} s"
        result.seconds["search_uncached"] = round(t_nc.seconds, 2)
        result.uncached = {
            "candidates": [c.to_dict() for c in candidates_nc],
            "chosen": chosen_nc.to_dict(),
        }
    _save_branch(branch, task_dir / "branch.safetensors", spec, chosen, cfg)
    if keep_candidates:  # for the choice across tasks (train); removed once it is made
        for c in candidates:
            _save_branch(branches[c.key], candidate_path(task_dir, c), spec, c, cfg)
    result.write(task_dir / "search.json")
    return result


def revise_jointly(
    run_dir: Path,
    datasets: dict[str, TaskData],
    results: dict[str, SearchRecord],
    bert_config: BertConfig,
    tokenizer,
    trunk: Trunk,
    cfg: TrainConfig,
    search: SearchConfig,
) -> None:
    """Replace each task's own choice by the choice across tasks (choose_jointly) where they differ: its branch,
    its served score, its search.json (the task's own choice stays there as `chosen_alone`)."""
    joint = choose_jointly(
        {t: ([Candidate.from_dict(c) for c in r.candidates], r.choice_score) for t, r in results.items()},
        search.retention_target,
    )
    for task, (pick, met) in joint.items():
        result, task_dir = results[task], run_dir / "tasks" / task
        alone = Candidate.from_dict(result.chosen)
        if pick.key != alone.key:
            data = datasets[task]
            branch, _ = load_branch(bert_config, candidate_path(task_dir, pick))
            enc_dev = encode(tokenizer, data.dev, cfg.max_length)
            served = served_dev_score(trunk, branch, enc_dev, data.dev.labels, data.spec, comp=cfg.compute())
            chosen = replace(pick, meets_target=met, served=served)
            _save_branch(branch, task_dir / "branch.safetensors", data.spec, chosen, cfg)
            result.chosen, result.chosen_alone = chosen.to_dict(), alone.to_dict()
            _progress(
                f"{task}: across tasks, {_describe(chosen)} at depth {chosen.branch_depth} instead of "
                f"{_describe(alone)} at depth {alone.branch_depth}"
            )
            result.write(task_dir / "search.json")
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
    resume: bool = False,
    peer_baseline: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Train every task; returns run.json's content. `bert`/`tokenizer` override loading (tests' tiny BERTs).
    `resume`: `run_dir` holds an interrupted run of the same training settings and data; every task it finished
    is kept and the rest train (a finished task is one whose search.json was written: its last step). Where the
    search settings differ, a finished task keeps its full fine-tuning and peer (step 1) and searches again.
    `progress`: where the progress lines go (default: stderr at the normal level)."""
    with using(progress or Progress()):
        return _train(
            datasets,
            Path(run_dir),
            backbone,
            cfg or TrainConfig(),
            search or SearchConfig(),
            cache_dir,
            bert,
            tokenizer,
            measure_uncached,
            notes,
            resume,
            peer_baseline,
        )


def _train(
    datasets, run_dir: Path, backbone, cfg, search, cache_dir, bert, tokenizer, measure_uncached, notes, resume,
    peer_baseline,
) -> dict:  # fmt: skip
    cfg = cfg or TrainConfig()
    search = search or SearchConfig()
    run_dir = Path(run_dir)
    unrecorded_search = _check_resume(run_dir, backbone, cfg, search, datasets, resume, peer_baseline)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if bert is None:
        bert, tokenizer = load_backbone(backbone)
    num_layers = bert.config.num_hidden_layers
    search.check_against(num_layers)
    save_backbone(bert, tokenizer, run_dir)
    trunk = make_trunk(bert, num_layers, list(range(num_layers + 1)))
    fingerprint = trunk_fingerprint(trunk)
    cache = FeatureCache(Path(cache_dir) / "features" if cache_dir else None)
    p = current()
    p.plan(
        {
            name: _planned_work(
                run_dir / "tasks" / name,
                data,
                num_layers,
                cfg,
                search,
                resume,
                unrecorded_search,
                peer_baseline,
                measure_uncached,
            )  # fmt: skip
            for name, data in datasets.items()
        }
    )
    p.line(
        f"training {len(datasets)} task(s) ({', '.join(datasets)}) on a {num_layers}-layer backbone into {run_dir}; "
        f"a progress line at least every {duration(p.every_s)} during a stage"
    )
    results = {}
    for name, data in datasets.items():
        task_dir, baseline = run_dir / "tasks" / name, None
        done, step1 = task_dir / "search.json", task_dir / BASELINE_FILE
        if resume and done.is_file():
            finished = SearchRecord.read(done)
            if _searched_with(finished, unrecorded_search) == search.to_dict() and _has_candidates(
                task_dir, finished
            ):
                # the choice across tasks runs again below, from the task's own
                if finished.chosen_alone is not None:
                    finished.chosen, finished.chosen_alone = finished.chosen_alone, None
                results[name] = finished
                step1.unlink(missing_ok=True)  # left if a stop came between search.json and its removal
                _progress(f"{name}: finished before the interruption; kept")
                continue
            # Searched with other settings, or finished in a run whose choice across tasks was made (its
            # candidates are gone): search again. Until that search writes its search.json, step 1 lives in
            # baseline.json, so an interruption never leaves a search.json beside another search's branches.
            if finished.full_validation is None:  # its search compared dev scores, a new one validation
                raise UserError(
                    f"{done}: written before validation splits (no full_validation): its full fine-tuning "
                    "cannot be kept for a new search; train without --resume"
                )
            baseline = _baseline_of(finished, _searched_with(finished, unrecorded_search))
            atomic_write(step1, json.dumps(baseline, indent=2).encode())
            done.unlink()
            shutil.rmtree(task_dir / "candidates", ignore_errors=True)
        elif resume and step1.is_file():
            baseline = json.loads(step1.read_text())
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
            peer_baseline=peer_baseline,
            baseline=baseline,
        )
        step1.unlink(missing_ok=True)  # search.json holds it now
        if cache.root is not None:
            cache.clear_memory()  # the next task reloads from disk what it shares with this one
    with p.stage("choice across tasks"):
        revise_jointly(run_dir, datasets, results, bert.config, tokenizer, trunk, cfg, search)
    record = RunRecord(
        backbone=backbone,
        backbone_path=resolve_backbone(backbone) if not isinstance(backbone, type) else "",
        num_layers=num_layers,
        hidden_size=bert.config.hidden_size,
        config=cfg.to_dict(),
        search=search.to_dict(),
        tasks=list(results),
        trunk_fingerprint=fingerprint,
        notes=list(notes or []) + [n for r in results.values() for n in r.notes],
    )
    record.write(run_dir / "run.json")
    return record.to_dict()


def _planned_work(
    task_dir: Path, data: TaskData, num_layers, cfg, search, resume, unrecorded_search, peer, uncached
) -> dict[str, float]:
    """A task's work in layer-rows by kind of stage, as the loop below will find it: none for a task an interrupted run finished,
    no step 1 for one whose full fine-tuning is kept."""
    d = with_validation(data, cfg.seed)
    sizes = {"train": len(d.train), "validation": len(d.validation), "dev": len(d.dev)}
    work = stage_work(sizes, num_layers, cfg, search, peer, uncached)
    done, step1 = task_dir / "search.json", task_dir / BASELINE_FILE
    if resume and done.is_file():
        finished = SearchRecord.read(done)
        if _searched_with(finished, unrecorded_search) == search.to_dict() and _has_candidates(
            task_dir, finished
        ):
            return {}
    if resume and (done.is_file() or step1.is_file()):
        work["full"] = work["peer"] = 0.0
    return work


RESUME_FILE = "resume.json"


def _data_hash(datasets: dict[str, TaskData]) -> dict[str, str]:
    out = {}
    for name, d in datasets.items():
        h = hashlib.sha256(json.dumps(d.spec.to_dict()).encode())
        for s in (d.train, d.validation, d.dev):
            if s is not None:
                h.update(json.dumps([s.texts, s.pairs, s.labels]).encode())
        out[name] = h.hexdigest()[:16]
    return out


BASELINE_FILE = "baseline.json"  # a task's step 1 while its search runs again (train)


def _searched_with(finished: SearchRecord, unrecorded_search: dict | None) -> dict | None:
    """The search settings of a finished task: its own record of them, or (a search.json written before it
    recorded them) the run's, from resume.json."""
    return unrecorded_search if finished.search is None else finished.search


def _has_candidates(task_dir: Path, finished: SearchRecord) -> bool:
    """Whether every candidate branch of a finished task is on disk: true of a task finished in the run being
    resumed, whose choice across tasks (revise_jointly, which needs them) has not been made yet."""
    return all(candidate_path(task_dir, Candidate.from_dict(c)).is_file() for c in finished.candidates)


def _baseline_of(finished: SearchRecord, its_search: dict | None) -> dict:
    """Step 1 of a finished task that searches again: what train_task's `baseline` takes."""
    seconds = finished.seconds
    return {
        "full": finished.full,
        "full_validation": finished.full_validation,
        "seconds": seconds["full"],
        **({"peer": finished.peer} if finished.peer is not None else {}),
        **({"full_chance": finished.full_chance} if finished.full_chance is not None else {}),
        # search.json says so: its full fine-tuning (and peer) come from a run that searched otherwise (the
        # first such run, when it was widened more than once)
        "kept": finished.kept
        or {
            "stages": ["full"] + (["peer"] if finished.peer is not None else []),
            "search": its_search,
            "seconds": {k: seconds[k] for k in ("full", "peer") if k in seconds},
        },
    }


def _resume_record(backbone, cfg, search, datasets, peer_baseline: bool) -> dict:
    """What resume.json records of a run: what a resumed run must train the same (all but the search)."""
    return {
        "backbone": str(backbone),
        "config": cfg.to_dict(),
        "search": search.to_dict(),
        "peer_baseline": peer_baseline,
        "data": _data_hash(datasets),
    }


def _settings_differ(had: dict, want: dict) -> list[str]:
    """What of a recorded run (resume.json) differs from this command, but for the search settings; a task the
    recorded run did not train may be new."""
    had = {"peer_baseline": False} | had  # written before the option existed: a run without the peer
    differ = [k for k in want if k not in ("data", "search", "unrecorded_search") and had.get(k) != want[k]]
    return differ + [
        f"task {t}'s data"
        for t in want["data"]
        if t in had.get("data", {}) and had["data"][t] != want["data"][t]
    ]


def _check_resume(
    run_dir: Path, backbone, cfg, search, datasets, resume: bool, peer_baseline: bool = False
) -> dict | None:
    """Record what this run trains (resume.json); a resumed run must train the same: training settings and
    data. The search settings may differ. Returns those a finished task's search.json without its own record of
    them was searched with (None for a new run)."""
    want = _resume_record(backbone, cfg, search, datasets, peer_baseline)
    path, unrecorded_search = run_dir / RESUME_FILE, None
    if resume and path.is_file():
        had = json.loads(path.read_text())
        # what a search.json without its own record was searched with (every one written before it had one)
        unrecorded_search = had.get("unrecorded_search", had.get("search"))
        want["unrecorded_search"] = unrecorded_search
        differ = _settings_differ(had, want)
        if differ:
            raise UserError(
                f"--resume: {run_dir} was started with other settings ({', '.join(differ)} differ); "
                "rerun with the same command, or without --resume to start over"
            )
        want["data"] = had.get("data", {}) | want["data"]
        if had.get("search") != want["search"]:
            _progress(
                f"--resume: the search settings differ from the run's ({had.get('search')} -> "
                f"{want['search']}): finished tasks keep their full fine-tuning and search again"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(want, indent=2))
    return unrecorded_search


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
        raise UserError("give --tasks-file or --glue-dir, not both (GLUE is core/glue.yaml with --data-root)")
    if tasks_file:
        from mtserve.core.task_file import load_task_file

        return load_task_file(tasks_file, root=data_root, only=tasks, seed=seed, max_train=max_train)
    if glue_dir:
        from mtserve.core.task_file import load_glue

        names = tasks or ["cola", "sst2", "mrpc", "stsb", "rte", "qnli"]
        return {n: load_glue(n, glue_dir, max_train, seed) for n in names}
    from mtserve.core import corpus

    data = corpus.generate()
    unknown = [t for t in tasks or [] if t not in data]
    if unknown:
        raise UserError(
            f"unknown task(s) {unknown} in the embedded corpus (it has {list(data)}); "
            "give --glue-dir for GLUE tasks"
        )
    # held out before the cap; the cap a seeded sample, as everywhere (tasks.cap_training)
    return {t: cap_training(with_validation(data[t], seed), max_train, seed) for t in (tasks or list(data))}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", help="comma-separated task names (default: every task of the data source)")
    p.add_argument(
        "--tasks-file",
        help="YAML task file: your own tasks and data files (schema: README, core/task_file.py)",
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
    p.add_argument("--cache-dir", default="cache", help="feature cache folder ('' for memory only)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run an interruption left in <run-dir>'s partial folder (same command): "
        "finished tasks are kept",
    )
    p.add_argument("--fresh", action="store_true", help="discard an interrupted run and start over")
    p.add_argument(
        "--from-run",
        metavar="RUN_DIR",
        help="search again, with this command's search settings (e.g. a wider --k), on a copy of a finished "
        "run of the same training settings and data: each of its tasks keeps its full fine-tuning and peer "
        "(a task it lacks trains in full). RUN_DIR is only read, unless it is --run-dir too: then it is "
        "replaced when the new search finishes",
    )
    p.add_argument(
        "--peer-baseline",
        action="store_true",
        help="also fine-tune every task with Hugging Face's AutoModelForSequenceClassification and Trainer "
        "(same data and settings) and report its dev score beside ours",
    )
    p.add_argument(
        "--measure-uncached",
        action="store_true",
        help="also run and time each task's whole search without the feature cache",
    )
    # every setting of the search and of training, with its default and help, from the dataclasses
    add_dataclass_arguments(p.add_argument_group("search (SearchConfig)"), SearchConfig)
    add_dataclass_arguments(p.add_argument_group("training (TrainConfig)"), TrainConfig)
    add_dataclass_arguments(p.add_argument_group("progress (ProgressConfig)"), ProgressConfig)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, SearchConfig]:
    return from_args(TrainConfig, args), from_args(SearchConfig, args)


def _start_from(source: Path, partial: Path, want: dict, tasks: list[str]) -> None:
    """--from-run: the partial folder starts as a copy of a finished run (its folders of `tasks` only), to be
    resumed with new search settings. Everything that would refuse the resume is checked before the copy."""
    recorded = source / RESUME_FILE
    if not (source / "run.json").is_file() or not recorded.is_file():
        raise UserError(
            f"--from-run: {source} is not a finished training run with its settings recorded "
            f"(run.json and {RESUME_FILE})"
        )
    if json.loads((source / "run.json").read_text()).get("task_versions"):
        raise UserError(
            f"--from-run: `mtserve task` changed tasks of {source} after it was trained (run.json's "
            "task_versions), with settings or data its record does not hold: train without --from-run"
        )
    had = json.loads(recorded.read_text())
    differ = _settings_differ(had, want)
    if differ:
        raise UserError(
            f"--from-run: {source} was trained with other settings ({', '.join(differ)} differ); give its "
            "training settings and data, and other search settings"
        )
    if had.get("search") == want["search"]:
        raise UserError(
            f"--from-run: {source} was searched with these settings already; give other search settings "
            "(e.g. --k) or train without --from-run"
        )
    others = (
        {p.name for p in (source / "tasks").iterdir()} - set(tasks) if (source / "tasks").is_dir() else set()
    )
    shutil.copytree(source, partial, ignore=lambda d, names: others if Path(d) == source / "tasks" else [])


def run(args) -> int:
    from mtserve.training import accuracy_report as report

    cfg, search = config_from_args(args)
    progress = from_args(ProgressConfig, args).progress()
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    datasets = load_datasets(
        tasks, args.glue_dir, args.max_train_examples, cfg.seed, args.tasks_file, args.data_root
    )
    run_dir = Path(args.run_dir)
    if run_dir.exists() and not (run_dir / "run.json").exists() and any(run_dir.iterdir()):
        raise UserError(f"{run_dir} exists and is not a training run: refusing to replace it")
    # Train into a partial folder and swap it in at the end: a failed or interrupted run keeps the last good one,
    # and the partial folder keeps every task finished so far for --resume.
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = run_dir.parent / f".{run_dir.name}.partial"
    if args.from_run and args.resume:
        raise UserError("give --resume (an interrupted run) or --from-run (a finished one), not both")
    if tmp.exists() and not args.resume:
        if not args.fresh:
            raise UserError(
                f"an interrupted run is in {tmp}: --resume to continue it (same command), --fresh to discard it"
            )
        shutil.rmtree(tmp)
    if args.from_run:
        record = _resume_record(args.backbone, cfg, search, datasets, args.peer_baseline)
        _start_from(Path(args.from_run), tmp, record, list(datasets))
    try:
        meta = train(
            datasets,
            tmp,
            args.backbone,
            cfg,
            search,
            args.cache_dir or None,
            measure_uncached=args.measure_uncached,
            peer_baseline=args.peer_baseline,
            resume=args.resume or bool(args.from_run),
            progress=progress,
        )
    except BaseException as e:
        searching = any(tmp.glob(f"tasks/*/{BASELINE_FILE}"))  # step 1 of a task searching again
        searched = [json.loads(f.read_text()) for f in tmp.glob("tasks/*/search.json")]
        # nothing worth resuming: no task finished its search or its step 1, or (--from-run) the copy alone
        if not searching and (
            not searched or (args.from_run and all(r.get("search") != search.to_dict() for r in searched))
        ):
            shutil.rmtree(tmp, ignore_errors=True)
        elif not isinstance(e, UserError):
            print(
                f"mtserve train: interrupted; finished tasks are kept in {tmp}: rerun with --resume"
                + (" in place of --from-run" if args.from_run else ""),
                file=sys.stderr,
            )
        raise
    if run_dir.exists():
        shutil.rmtree(run_dir)
    tmp.rename(run_dir)
    acc = report.write_accuracy(Run(run_dir), args.reports)
    print(report.accuracy_table(acc))
    for warning in report.not_learned(acc):
        progress.warn(warning)
    print(
        f"run: {run_dir}   reports: {args.reports}/accuracy.{{json,md,png}}   tasks: {', '.join(meta['tasks'])}"
    )
    return 0
