"""Training, per task and independently: full fine-tuning, partial fine-tuning, and distillation.

- full: every weight of a copy of the backbone (the reference score, and the per-task baseline model).
- partial: the embeddings and bottom `depth` layers frozen; the top k layers, pooling and classifier
  trained on the trunk's cached hidden states (training/features.py).
- distil: a student of l <= 3 layers on the same trunk depth, initialised from the teacher's lowest
  task layers, trained on T^2 * KL(teacher/T || student/T) + the hard-label loss
  (regression: MSE to the teacher + MSE to the label).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from mtserve.core.tasks import TaskSpec, score
from mtserve.training.backbone import Branch, TaskModel, full_model, make_branch, student_from_teacher
from mtserve.training.config import TrainConfig
from mtserve.training.device import CPU, Compute
from mtserve.training.features import Encoded, Features, LiveFeatures, batches
from mtserve.training.progress import current


def _optimizer(params, lr: float, cfg: TrainConfig, total_steps: int):
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )
    warm = max(1, int(cfg.warmup * total_steps))

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to zero
        return (
            (step + 1) / warm if step < warm else max(0.0, (total_steps - step) / max(1, total_steps - warm))
        )

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def task_loss(spec: TaskSpec, logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    if spec.is_regression:
        return F.mse_loss(logits.squeeze(-1), gold.float())
    return F.cross_entropy(logits, gold.long())


def distil_loss(
    spec: TaskSpec, student: torch.Tensor, teacher: torch.Tensor, gold: torch.Tensor, t: float
) -> torch.Tensor:
    """T^2 * KL(teacher_T || student_T) + hard-label loss; regression: MSE to teacher + MSE to label."""
    if spec.is_regression:
        return F.mse_loss(student, teacher) + task_loss(spec, student, gold)
    soft = F.kl_div(
        F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="batchmean", log_target=True
    )
    return t * t * soft + task_loss(spec, student, gold)


def train_units(rows: int, layers: int, epochs: float) -> float:
    """A training loop's work for the progress estimate (training/progress.py): forward and backward through
    `layers` layers, `epochs` times over `rows` rows, in layer-rows."""
    return 3.0 * rows * layers * epochs


def _steps(n: int, cfg: TrainConfig, epochs: float) -> int:
    return max(1, math.ceil(epochs * math.ceil(n / cfg.batch_size)))


def _epochs_iter(n: int, cfg: TrainConfig, epochs: float, rng: np.random.Generator, lengths: np.ndarray):
    """Index batches for `epochs` (fractional epochs allowed), stopping at the exact step count; rows of similar
    length share a batch (features.batches)."""
    total, done = _steps(n, cfg, epochs), 0
    while done < total:
        for idx in batches(n, cfg.batch_size, True, rng, lengths):
            if done == total:
                return
            done += 1
            yield idx


# ---------------------------------------------------------------- full fine-tuning
def train_full(
    bert, spec: TaskSpec, train: Encoded, gold_train, dev: Encoded, gold_dev, cfg: TrainConfig, desc: str = ""
) -> tuple[TaskModel, float]:
    torch.manual_seed(cfg.seed)
    model = full_model(bert, spec.num_labels, spec.is_regression, cfg.pooling, cfg.seed)
    comp = cfg.compute()
    model.to(comp.device).train()  # before the optimizer is built over its parameters
    gold = torch.tensor(gold_train).to(comp.device)
    scaler = comp.scaler()
    total = _steps(len(train), cfg, cfg.epochs_full)
    opt, sched = _optimizer(model.parameters(), cfg.lr_full, cfg, total)
    rng = np.random.default_rng(cfg.seed)
    layers = bert.config.num_hidden_layers
    steps = current().loop(
        _epochs_iter(len(train), cfg, cfg.epochs_full, rng, train.lengths()),
        total,
        desc or "full fine-tuning",
        units=train_units(len(train), layers, cfg.epochs_full),
    )
    for idx in steps:
        with comp.autocast():
            logits = model(*comp.to(*train.batch(idx)))
        loss = task_loss(spec, logits.float(), gold[idx.to(comp.device)])
        steps.record(loss, opt.param_groups[0]["lr"])  # the rate this step applies
        _step(loss, model, opt, sched, scaler)
    model.eval()
    dev_score = score(spec, predict_full(model, dev, comp=comp), gold_dev)
    return model.cpu(), dev_score


def _step(loss: torch.Tensor, module: torch.nn.Module, opt, sched, scaler: torch.amp.GradScaler) -> None:
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
    scaler.step(opt)
    scaler.update()
    sched.step()


@torch.no_grad()
def predict_full(model: TaskModel, enc: Encoded, batch_size: int = 64, comp: Compute = CPU) -> np.ndarray:
    model.eval().to(comp.device)
    outs = []
    # a pass over a large dev set can take minutes on a CPU: it reports like a training loop
    passes = math.ceil(len(enc) / batch_size)
    for idx in current().loop(batches(len(enc), batch_size, False), passes, "scoring (full model)"):
        with comp.autocast():
            outs.append(model.scores(*comp.to(*enc.batch(idx))).float().cpu())
    return torch.cat(outs).numpy()


# ---------------------------------------------------------------- branches: partial fine-tuning, distillation
def _train_branch(
    branch: Branch,
    spec: TaskSpec,
    feats: Features | LiveFeatures,
    gold,
    cfg: TrainConfig,
    epochs: float,
    lr: float,
    desc: str,
    teacher_logits: torch.Tensor | None = None,
) -> Branch:
    """Train a branch on the trunk's hidden states: cached (Features) or computed every step (LiveFeatures)."""
    torch.manual_seed(cfg.seed)
    comp = cfg.compute()
    branch.to(comp.device).train()
    gold_t = torch.tensor(gold).to(comp.device)
    if teacher_logits is not None:
        teacher_logits = teacher_logits.to(comp.device)
    scaler = comp.scaler()
    total = _steps(len(feats), cfg, epochs)
    opt, sched = _optimizer(branch.parameters(), lr, cfg, total)
    rng = np.random.default_rng(cfg.seed)
    steps = current().loop(
        _epochs_iter(len(feats), cfg, epochs, rng, feats.lengths()),
        total,
        desc,
        units=train_units(len(feats), branch.config.num_layers, epochs),
    )
    for idx in steps:
        idx_d = idx.to(comp.device)
        with comp.autocast():
            logits = branch(*comp.to(*feats.batch(idx))).float()
        if teacher_logits is not None:
            loss = distil_loss(spec, logits, teacher_logits[idx_d], gold_t[idx_d], cfg.temperature)
        else:
            loss = task_loss(spec, logits, gold_t[idx_d])
        steps.record(loss, opt.param_groups[0]["lr"])
        _step(loss, branch, opt, sched, scaler)
    return branch.eval()


@torch.no_grad()
def branch_outputs(
    branch: Branch,
    feats: Features | LiveFeatures,
    batch_size: int = 128,
    scores: bool = True,
    comp: Compute = CPU,
) -> torch.Tensor:
    """Scores (probabilities / value) or raw logits of a branch over the trunk's hidden states, on the CPU in
    fp32 whatever `comp` ran them on."""
    branch.eval().to(comp.device)
    fn = branch.scores if scores else branch.forward
    outs = []
    for idx in batches(len(feats), batch_size, False):
        with comp.autocast():
            outs.append(fn(*comp.to(*feats.batch(idx))).float().cpu())
    return torch.cat(outs)


def train_partial(
    bert,
    spec: TaskSpec,
    k: int,
    feats_train: Features | LiveFeatures,
    gold_train,
    feats_dev: Features | LiveFeatures,
    gold_dev,
    cfg: TrainConfig,
    pooling: str | None = None,
) -> tuple[Branch, float]:
    """Fine-tune the top k layers (initialised from the backbone's) plus a new classifier; `pooling`: the
    branch's (default: cfg.pooling, full fine-tuning's)."""
    depth = bert.config.num_hidden_layers - k
    branch = make_branch(
        bert, depth, k, spec.num_labels, spec.is_regression, pooling or cfg.pooling, cfg.seed
    )
    _train_branch(
        branch,
        spec,
        feats_train,
        gold_train,
        cfg,
        cfg.epochs_partial,
        cfg.lr_partial,
        f"partial k={k}",
    )
    dev_score = score(spec, branch_outputs(branch, feats_dev, comp=cfg.compute()).numpy(), gold_dev)
    return branch.cpu(), dev_score


def distil(
    teacher: Branch,
    spec: TaskSpec,
    num_layers: int,
    feats_train: Features | LiveFeatures,
    gold_train,
    feats_dev: Features | LiveFeatures,
    gold_dev,
    cfg: TrainConfig,
) -> tuple[Branch, float]:
    """Compress a teacher branch into `num_layers` layers on the same trunk depth."""
    student = student_from_teacher(teacher, num_layers)
    # the teacher is frozen: its logits over the training set are computed once, not every epoch
    teacher_logits = branch_outputs(teacher, feats_train, scores=False, comp=cfg.compute())
    _train_branch(
        student,
        spec,
        feats_train,
        gold_train,
        cfg,
        cfg.epochs_distil,
        cfg.lr_distil,
        f"distil k={teacher.config.num_layers}->l={num_layers}",
        teacher_logits=teacher_logits,
    )
    dev_score = score(spec, branch_outputs(student, feats_dev, comp=cfg.compute()).numpy(), gold_dev)
    return student.cpu(), dev_score


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def __exit__(self, *exc):
        self.seconds = self.elapsed()
