"""`mtserve train --peer-baseline`: every task also fine-tuned by Hugging Face's own tools -
`AutoModelForSequenceClassification` and `Trainer` - on the same training rows, with the same settings, and
scored on the same dev rows by the same metric.

Why: retention is measured against our full fine-tuning (training/finetune.py), and a weak full fine-tuning
would flatter every retention. The peer is what a team would get from the standard tools, so a reader can see
where ours stands (reports/accuracy.{json,md}: the "peer" column). Nothing of it is served.

The same settings: epochs (epochs_full), peak learning rate (lr_full), batch size, linear warm-up then decay
(warmup), AdamW weight decay, maximum length, seed, device and precision. What differs is each tool's own: the
peer uses BERT's pooler and its dropout-regularised head on the [CLS] token, Trainer's optimizer defaults, and
its length-grouped sampler (`train_sampling_strategy="group_by_length"`, where ours buckets by length too).
"""

from __future__ import annotations

import math
import tempfile

import numpy as np
import torch

from mtserve.core.tasks import Split, TaskData, score
from mtserve.training.config import TrainConfig
from mtserve.training.finetune import Timer, train_units
from mtserve.training.progress import current


class _Rows(torch.utils.data.Dataset):
    """A split tokenized without padding (the collator pads each batch), with its labels."""

    def __init__(self, tokenizer, split: Split, max_length: int, regression: bool):
        args = (split.texts, split.pairs) if split.pairs is not None else (split.texts,)
        self.enc = tokenizer(*args, truncation=True, max_length=max_length)
        self.labels = [float(y) if regression else int(y) for y in split.labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.enc.items()} | {"labels": self.labels[i]}


def peer_finetune(bert, tokenizer, data: TaskData, cfg: TrainConfig) -> dict:
    """Fine-tune a fresh copy of `bert` (a BertModel: the run's backbone) with AutoModelForSequenceClassification
    and Trainer on data.train; returns {"score": dev score, "seconds": ..., "settings": ...}."""
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )
    from transformers.trainer_callback import PrinterCallback

    class Report(TrainerCallback):
        """Trainer's steps and logged loss to our progress lines and loss log (training/progress.py)."""

        def on_step_end(self, args, state, control, **kwargs):
            steps.tick()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                steps.record_mean(
                    state.global_step, float(logs["loss"]), float(logs.get("learning_rate", 0.0))
                )

    spec, comp = data.spec, cfg.compute()
    config = bert.config.__class__.from_dict(bert.config.to_dict())
    config.num_labels = spec.num_labels
    config.problem_type = "regression" if spec.is_regression else "single_label_classification"
    torch.manual_seed(cfg.seed)  # the head's initialisation
    model = AutoModelForSequenceClassification.from_config(config)
    missing = model.base_model.load_state_dict(bert.state_dict(), strict=False)
    # only the pooler may be absent (a backbone saved without one); every encoder weight must come across
    if [k for k in missing.missing_keys if not k.startswith("pooler.")] or missing.unexpected_keys:
        raise RuntimeError(
            f"peer baseline: the backbone's weights do not fit {type(model).__name__}: {missing}"
        )
    train = _Rows(tokenizer, data.train, cfg.max_length, spec.is_regression)
    total = max(1, math.ceil(cfg.epochs_full * math.ceil(len(train) / cfg.batch_size)))
    steps = current().loop(
        (), total, "peer", units=train_units(len(train), bert.config.num_hidden_layers, cfg.epochs_full)
    )
    dev = _Rows(tokenizer, data.dev, cfg.max_length, spec.is_regression)
    with tempfile.TemporaryDirectory(prefix="mtserve-peer-") as out:
        args = TrainingArguments(
            output_dir=out,
            num_train_epochs=cfg.epochs_full,
            learning_rate=cfg.lr_full,
            per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=64,
            weight_decay=cfg.weight_decay,
            warmup_steps=cfg.warmup,  # a float in [0, 1): the share of the steps
            lr_scheduler_type="linear",
            seed=cfg.seed,
            data_seed=cfg.seed,
            train_sampling_strategy="group_by_length",
            use_cpu=comp.device.type == "cpu",
            bf16=comp.precision == "bf16",
            fp16=comp.precision == "fp16",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="steps",  # the loss, to Report: every few steps, as our own loops record it
            logging_steps=steps.every,
            report_to=[],
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[Report()],
        )
        trainer.remove_callback(PrinterCallback)  # it would print every logged loss as a dict to stdout
        with Timer() as t:
            trainer.train()
        out = trainer.predict(dev)
    pred = np.asarray(
        out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions, np.float32
    )
    # scored against the labels that came back with the predictions: with group_by_length, transformers 5 also
    # orders the evaluation rows by length, so the predictions are not in the dev file's order
    gold = np.asarray(out.label_ids).reshape(len(data.dev), -1)[:, 0]
    if sorted(gold.tolist()) != sorted(np.asarray(data.dev.labels, dtype=gold.dtype).tolist()):
        raise RuntimeError("peer baseline: Trainer.predict did not return every dev row once")
    return {
        "score": score(spec, pred, gold.tolist()),
        "seconds": round(t.seconds, 2),
        "tool": "transformers AutoModelForSequenceClassification + Trainer",
        "settings": {
            "epochs": cfg.epochs_full,
            "learning_rate": cfg.lr_full,
            "batch_size": cfg.batch_size,
            "warmup": cfg.warmup,
            "weight_decay": cfg.weight_decay,
            "max_length": cfg.max_length,
            "seed": cfg.seed,
            "train_examples": len(data.train),
            "dev_examples": len(data.dev),
        },
    }
