# Over 500 lines: one device check that must run alone on a lent GPU (no mtserve install there): building the modules, timing them, the report and its plot.
"""`mtserve gpu-check` (`make gpu-check`): on a CUDA device, what a request costs through the shared trunk's
segments and the served paths, against one full model per task, timed with PyTorch in fp16.

The models are torch modules: a training run's own (`--run-dir`, by default runs/latest where it holds one), or a
random-weight BERT of a synthetic shape (BertConfig, no download; `--shape bert-base --tasks 16 --depths 6,8
--task-layers 1,2`). What it times, at each batch size (`--batches`) and one sequence length (`--seq`):

    segments  the trunk cut at every distinct depth where a task's branch leaves it: embeddings..d1, d1..d2, ...
    heads     each task's branch: its BERT layers, pooling and classifier
    paths     each task's path (the segments up to its depth, then its head), each group's (the segments up to its
              deepest task, then its heads) and multitask's (every segment, every head), run as one call each
    full      each task's full model, the per-task baseline (embeddings and every layer)

and from those, the cost ratio a one-task request, each group and every task pay against the per-task models
(the path's time / the sum of its tasks' full models'), beside the ratio the layer counts give (trunk layers up to
the deepest task + the tasks' branch layers, against the tasks' full models' layers). It writes gpu-check.json
and gpu-check.png into `--out` and prints a table.

It needs PyTorch and transformers with a CUDA device, nothing else: no onnxruntime-gpu, no Triton, no weights to
carry (docs/measurements.md, "On a GPU", says how it runs on a lent GPU machine). Where torch sees no CUDA device
it says why and exits 0 without measuring anything: skipped, not failed; `--require-gpu` makes that exit 1 (a
failed check, docs/exit-codes.md), for a GPU job that must not pass vacuously. `--allow-cpu` runs the same
measurement on the CPU, labelled as such: a test of the procedure (tests/test_gpu_check.py), not a GPU figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from mtserve.core.errors import UserError

SKIPPED, NO_GPU_REQUIRED = 0, 1  # 1: a check failed (core/exit_codes.py): no GPU where one is required
DEFAULT_RUN = Path("runs/latest")
PRECISIONS = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}
MIN_GROUP = 2  # a group of one task is that task's path


# ---------------------------------------------------------------- what is timed
@dataclass
class TaskModules:
    """One task's modules: its branch (depth, layers) and its full model; `full_key` names the module object, so a
    full model shared by several synthetic tasks (one per label shape, as the synthetic repositories hard-link
    them) is timed once."""

    depth: int
    layers: int
    head: object
    full: object
    full_key: str


@dataclass
class Plan:
    """The modules of a measurement: the trunk's embeddings and layers (as deep as the deepest branch), each
    task's modules, the groups, and where they came from."""

    source: dict
    num_layers: int  # of a full model
    vocab_size: int
    embeddings: object
    trunk_layers: list
    tasks: dict[str, TaskModules]
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def depths(self) -> list[int]:
        return sorted({t.depth for t in self.tasks.values()})

    def segment_bounds(self) -> list[tuple[int, int]]:
        """(from, to) trunk layers of each segment: 0..d1 (with the embeddings), d1..d2, ..."""
        ends = self.depths
        return list(zip([0, *ends[:-1]], ends, strict=True))

    def ideal_ratio(self, tasks: list[str]) -> float:
        """Layers a request for `tasks` runs on the served path, over the layers of their full models."""
        served = max(self.tasks[t].depth for t in tasks) + sum(self.tasks[t].layers for t in tasks)
        return served / (self.num_layers * len(tasks))


def segment_modules(plan: Plan):
    """The trunk's segments as modules, in order (the first holds the embeddings)."""
    import torch
    from torch import nn

    from mtserve.training.backbone import extended_mask

    class Segment(nn.Module):
        """Trunk layers lo..hi; the first segment starts from the token ids (its embeddings), each other from the
        hidden states the one below returned. Each computes its own attention mask, as a served segment model
        does."""

        def __init__(self, embeddings, layers):
            super().__init__()
            self.embeddings = embeddings
            self.layers = nn.ModuleList(layers)

        def forward(self, x: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None) -> torch.Tensor:
            hidden = (
                x if self.embeddings is None else self.embeddings(input_ids=x, token_type_ids=token_type_ids)
            )
            mask = extended_mask(attention_mask, hidden.dtype)
            for layer in self.layers:
                out = layer(hidden, attention_mask=mask)
                hidden = out[0] if isinstance(out, tuple) else out
            return hidden

    return [
        Segment(plan.embeddings if i == 0 else None, plan.trunk_layers[lo:hi]).eval()
        for i, (lo, hi) in enumerate(plan.segment_bounds())
    ]


def priced_requests(plan: Plan) -> list[tuple[str, str, list[str]]]:
    """(kind, name, tasks) of every request the check prices: each task alone, each group, every task."""
    out = [("task", t, [t]) for t in plan.tasks]
    out += [("group", g, list(ts)) for g, ts in plan.groups.items()]
    return out + [("multitask", "multitask", list(plan.tasks))]


# ---------------------------------------------------------------- building the modules
def parse_shape(text: str) -> dict:
    """A synthetic repository's shape name (export/synthetic.py's SHAPES) or LxH (layers x hidden; BERT's
    proportions: hidden/64 attention heads, at least 1, and a 4 x hidden feed-forward)."""
    from mtserve.export.synthetic import SHAPES

    if text in SHAPES:
        s = SHAPES[text]
        return {
            "name": text,
            "layers": s.num_layers,
            "hidden": s.hidden,
            "heads": s.heads,
            "intermediate": s.intermediate,
        }
    layers, sep, hidden = text.lower().partition("x")
    if not sep or not layers.isdigit() or not hidden.isdigit() or int(layers) < 1 or int(hidden) < 1:
        raise UserError(
            f"--shape must be one of {', '.join(SHAPES)} or LAYERSxHIDDEN (e.g. 12x768), got {text!r}"
        )
    h = int(hidden)
    heads = max(1, h // 64)
    if h % heads:
        raise UserError(f"--shape {text}: hidden {h} is not a multiple of its {heads} attention heads")
    return {"name": text, "layers": int(layers), "hidden": h, "heads": heads, "intermediate": 4 * h}


def parse_counts(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise UserError(f"{flag} must list one or more integers >= 0, got {text!r}")
    return values


def parse_groups(items: list[str] | None, tasks: list[str]) -> dict[str, list[str]]:
    """--group NAME=a,b,c (repeatable), parsed as `mtserve export --group` parses it (core/routing.py), each group
    of two tasks or more of this plan."""
    from mtserve.core.registry import validate_groups
    from mtserve.core.routing import parse_groups as parse

    groups = parse(items)
    problems = validate_groups(groups, tasks)
    if problems:
        raise UserError("--group: " + "; ".join(problems))
    return groups


def default_groups(tasks: dict[str, TaskModules]) -> dict[str, list[str]]:
    """For a synthetic plan without --group: groups of 2 to 6 tasks, one of shallow tasks only (its path stops at
    the first depth), one of the deepest, and two that mix depths."""
    by_depth = sorted(tasks, key=lambda t: tasks[t].depth)
    shallow = [t for t in by_depth if tasks[t].depth == tasks[by_depth[0]].depth]
    deep = [t for t in by_depth if tasks[t].depth == tasks[by_depth[-1]].depth]
    names = list(tasks)
    candidates = {"shallow": shallow[:2], "deep": deep[:3]}
    candidates |= {f"mixed{n}": names[:n] for n in (4, 6) if len(names) > n}
    groups: dict[str, list[str]] = {}
    for name, ts in candidates.items():
        if len(ts) >= MIN_GROUP and ts not in groups.values() and ts != names:
            groups[name] = ts
    return groups


def synthetic_plan(
    shape: dict, n_tasks: int, depths: list[int], task_layers: list[int], device, seed: int = 0
) -> Plan:
    """Random weights of `shape`, built on `device` (nothing to download or carry): task k leaves the trunk at
    depths[k % len] with task_layers[(k // len(depths)) % len] layers, so every depth gets every branch size;
    labels cycle as the synthetic repositories' (export/synthetic.py), and tasks of one label shape share one full
    model, as the repositories hard-link them."""
    import torch
    from transformers import BertConfig, BertModel

    from mtserve.export.synthetic import LABEL_COUNTS, VOCAB_SIZE
    from mtserve.training.backbone import full_model, make_branch

    if not 1 <= n_tasks <= 64:
        raise UserError(f"--tasks must be in 1..64, got {n_tasks}")
    worst = max(depths) + max(task_layers)
    if min(task_layers) < 1 or worst > shape["layers"]:
        raise UserError(
            f"--depths {','.join(map(str, depths))} with --task-layers {','.join(map(str, task_layers))}: every "
            f"branch must have >= 1 layer and fit in the {shape['layers']} layers of --shape {shape['name']}"
        )
    torch.manual_seed(seed)
    with torch.device(device):  # weights initialised where they run: seconds, not minutes, for BERT-base
        bert = BertModel(
            BertConfig(
                vocab_size=VOCAB_SIZE,
                hidden_size=shape["hidden"],
                num_hidden_layers=shape["layers"],
                num_attention_heads=shape["heads"],
                intermediate_size=shape["intermediate"],
                max_position_embeddings=512,
                attn_implementation="eager",
            )
        ).eval()
        tasks: dict[str, TaskModules] = {}
        fulls: dict[tuple, object] = {}
        for k in range(n_tasks):
            labels = LABEL_COUNTS[k % len(LABEL_COUNTS)]
            regression, num_labels = labels == 0, max(labels, 1)
            depth = depths[k % len(depths)]
            layers = task_layers[(k // len(depths)) % len(task_layers)]
            key = (num_labels, regression)
            if key not in fulls:
                fulls[key] = full_model(bert, num_labels, regression, seed=seed + k).eval()
            head = make_branch(bert, depth, layers, num_labels, regression, seed=seed + k).eval()
            tasks[f"t{k:02d}"] = TaskModules(depth, layers, head, fulls[key], f"full_labels{num_labels}")
    trunk_layers = list(bert.encoder.layer)[: max(depths)]
    source = {
        "kind": "synthetic",
        "shape": shape,
        "tasks": n_tasks,
        "depths": depths,
        "task_layers": task_layers,
        "weights": f"random (seed {seed})",
    }
    return Plan(source, shape["layers"], VOCAB_SIZE, bert.embeddings, trunk_layers, tasks)


def run_plan(run_dir: Path) -> Plan:
    """A training run's own modules (training/run_dir.py): its frozen trunk, each task's chosen branch and its
    full fine-tuning."""
    from mtserve.training.run_dir import Run

    run = Run(run_dir)
    record = run.record  # a UserError naming the folder where it is no run
    tasks: dict[str, TaskModules] = {}
    for name in record.tasks:
        branch, _ = run.branch(name)
        full = run.full(name)
        tasks[name] = TaskModules(branch.config.depth, branch.config.num_layers, branch, full, f"full_{name}")
    if not tasks:
        raise UserError(f"{run_dir}: the run has no tasks")
    trunk = run.trunk(sorted({t.depth for t in tasks.values()}))
    source = {"kind": "run", "run_dir": str(run_dir), "backbone": record.backbone}
    return Plan(
        source,
        record.num_layers,
        run.bert_config().vocab_size,
        trunk.embeddings,
        list(trunk.layers),
        tasks,
    )


# ---------------------------------------------------------------- timing
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device, repeats: int, inner: int, warmup: int = 3) -> float:
    """Median milliseconds of one call of `fn`: `repeats` trials of `inner` calls back to back (on a GPU the
    launches of one call overlap the work of the last, as under load), each trial ended by a device sync; after
    `warmup` untimed calls (kernel selection, allocator growth)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    trials = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        trials.append((time.perf_counter() - t0) * 1000 / inner)
    return statistics.median(trials)


def measure(
    plan: Plan, device, dtype, batches: list[int], seq: int, repeats: int, inner: int, log=print
) -> dict:
    """Every segment, head, path and full model of `plan` timed on `device` in `dtype`, per batch size."""
    import torch

    for t in plan.tasks.values():
        t.head.to(device=device, dtype=dtype)
        t.full.to(device=device, dtype=dtype)
    segments = [s.to(device=device, dtype=dtype) for s in segment_modules(plan)]
    gen = torch.Generator(device="cpu").manual_seed(0)
    rows = []
    for b in batches:
        ids = torch.randint(1, plan.vocab_size, (b, seq), generator=gen).to(
            device
        )  # any ids: cost, not values
        with torch.inference_mode():
            row = time_batch(plan, segments, ids, device, repeats, inner)
        rows.append(row)
        s = row["summary"]
        log(
            f"gpu-check: batch {b}: multitask {s['multitask']['cost_ratio']:.3f} of per-task (ideal "
            f"{s['multitask']['ideal_cost_ratio']:.3f}), one task {s['one_task']['cost_ratio']:.3f} "
            f"(ideal {s['one_task']['ideal_cost_ratio']:.3f})"
        )
    return {
        "seq": seq,
        "batches": batches,
        "repeats": repeats,
        "inner": inner,
        "segments": [
            {"from": lo, "to": hi, "layers": hi - lo, "embeddings": i == 0}
            for i, (lo, hi) in enumerate(plan.segment_bounds())
        ],
        "tasks": {n: {"depth": t.depth, "layers": t.layers} for n, t in plan.tasks.items()},
        "groups": plan.groups,
        "num_layers": plan.num_layers,
        "ideal_cost_ratio": round(plan.ideal_ratio(list(plan.tasks)), 4),
        "rows": rows,
    }


def time_batch(plan: Plan, segments: list, ids, device, repeats: int, inner: int) -> dict:
    """One batch of token ids (every token real) through every module and every priced request's path."""
    import torch

    types, mask = torch.zeros_like(ids), torch.ones_like(ids)
    seg_end = {hi: i for i, (_, hi) in enumerate(plan.segment_bounds())}  # depth -> the segment ending there

    def run_segment(i: int, x):
        return segments[i](x, mask, types) if i == 0 else segments[i](x, mask)

    def path(tasks: list[str]) -> None:
        """One request's served path: the segments up to its deepest task, each head where its branch leaves."""
        at: dict[int, list] = {}
        for t in tasks:
            at.setdefault(seg_end[plan.tasks[t].depth], []).append(plan.tasks[t].head)
        hidden = ids
        for i in range(max(at) + 1):
            hidden = run_segment(i, hidden)
            for head in at.get(i, []):
                head.scores(hidden, mask)

    inputs = [ids]  # each segment's input, for timing it alone; inputs[i + 1]: the hidden states at its end
    for i in range(len(segments)):
        inputs.append(run_segment(i, inputs[i]))
    seg_ms = [
        time_ms(lambda i=i: run_segment(i, inputs[i]), device, repeats, inner) for i in range(len(segments))
    ]
    head_ms = {
        name: time_ms(lambda t=t: t.head.scores(inputs[seg_end[t.depth] + 1], mask), device, repeats, inner)
        for name, t in plan.tasks.items()
    }
    fulls = {t.full_key: t.full for t in plan.tasks.values()}
    full_ms = {
        key: time_ms(lambda m=m: m.scores(ids, types, mask), device, repeats, inner)
        for key, m in fulls.items()
    }
    out = []
    for kind, name, tasks in priced_requests(plan):
        path_ms = time_ms(lambda ts=tasks: path(ts), device, repeats, inner)
        last = max(seg_end[plan.tasks[t].depth] for t in tasks)
        parts = sum(seg_ms[: last + 1]) + sum(head_ms[t] for t in tasks)
        per_task = sum(full_ms[plan.tasks[t].full_key] for t in tasks)
        out.append(
            {
                "kind": kind,
                "name": name,
                "tasks": tasks,
                "segments": last + 1,
                "path_ms": round(path_ms, 4),
                "parts_ms": round(parts, 4),
                "per_task_ms": round(per_task, 4),
                "cost_ratio": round(path_ms / per_task, 4),
                "ideal_cost_ratio": round(plan.ideal_ratio(tasks), 4),
            }
        )
    return {
        "batch": int(ids.shape[0]),
        "segments_ms": [round(x, 4) for x in seg_ms],
        "heads_ms": {k: round(v, 4) for k, v in head_ms.items()},
        "full_ms": {t: round(full_ms[m.full_key], 4) for t, m in plan.tasks.items()},
        "requests": out,
        "summary": summarise(out),
    }


def summarise(reqs: list[dict]) -> dict:
    """Per kind of request: one task (the mean over tasks), each group, every task (multitask)."""
    one = [r for r in reqs if r["kind"] == "task"]
    out = {
        "one_task": {
            "cost_ratio": round(statistics.fmean(r["cost_ratio"] for r in one), 4),
            "ideal_cost_ratio": round(statistics.fmean(r["ideal_cost_ratio"] for r in one), 4),
        }
    }
    for r in reqs:
        if r["kind"] != "task":
            out[r["name"] if r["kind"] == "multitask" else f"group {r['name']}"] = {
                "cost_ratio": r["cost_ratio"],
                "ideal_cost_ratio": r["ideal_cost_ratio"],
            }
    return out


# ---------------------------------------------------------------- results
def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    rows = result["rows"]
    batches = [r["batch"] for r in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, key in enumerate(rows[0]["summary"]):
        color, label = f"C{i}", "one task (mean over tasks)" if key == "one_task" else key
        ax.plot(batches, [r["summary"][key]["cost_ratio"] for r in rows], "o-", color=color, label=label)
        ax.axhline(rows[0]["summary"][key]["ideal_cost_ratio"], color=color, ls="--", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="batch size",
        ylabel="served path / per-task models",
        title="cost ratio (dashed: by layer counts)",
    )
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xticks([], minor=True)
    ax.legend(fontsize=8)
    n_seg = len(result["segments"])
    for k in range(n_seg):
        seg = result["segments"][k]
        bx.plot(
            batches, [r["segments_ms"][k] for r in rows], "s-", label=f"segment {seg['from']}..{seg['to']}"
        )
    bx.plot(batches, [statistics.fmean(r["heads_ms"].values()) for r in rows], "^-", label="a head (mean)")
    bx.plot(
        batches, [statistics.fmean(r["full_ms"].values()) for r in rows], "D-", label="a full model (mean)"
    )
    bx.plot(
        batches,
        [next(q["path_ms"] for q in r["requests"] if q["kind"] == "multitask") for r in rows],
        "o-",
        label="multitask path",
    )
    bx.set(xscale="log", yscale="log", xlabel="batch size", ylabel="ms per batch", title="time per call")
    bx.set_xticks(batches, [str(b) for b in batches])
    bx.set_xticks([], minor=True)
    bx.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    bx.legend(fontsize=8)
    fig.suptitle(f"gpu-check on {result['device']['name']}, {result['precision']}, sequence {result['seq']}")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def print_table(result: dict) -> None:
    segments = ", ".join(f"{s['from']}..{s['to']}" for s in result["segments"])
    print(
        f"gpu-check on {result['device']['name']} ({result['precision']}): {len(result['tasks'])} tasks, "
        f"trunk segments {segments}, sequence {result['seq']}; ms per batch"
    )
    print(f"{'batch':>6} {'request':<22} {'path':>9} {'per-task':>9} {'ratio':>7} {'ideal':>7}")
    for r in result["rows"]:
        shown = [q for q in r["requests"] if q["kind"] != "task"]
        one = r["summary"]["one_task"]
        per_task = statistics.fmean(q["per_task_ms"] for q in r["requests"] if q["kind"] == "task")
        path = statistics.fmean(q["path_ms"] for q in r["requests"] if q["kind"] == "task")
        print(
            f"{r['batch']:>6} {'one task (mean)':<22} {path:>9.3f} {per_task:>9.3f} {one['cost_ratio']:>7.3f} "
            f"{one['ideal_cost_ratio']:>7.3f}"
        )
        for q in shown:
            label = q["name"] if q["kind"] == "multitask" else f"group {q['name']} ({len(q['tasks'])})"
            print(
                f"{'':>6} {label:<22} {q['path_ms']:>9.3f} {q['per_task_ms']:>9.3f} {q['cost_ratio']:>7.3f} "
                f"{q['ideal_cost_ratio']:>7.3f}"
            )


def write_results(result: dict, out: Path) -> dict[str, Path]:
    from mtserve.core.registry import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "gpu-check.json", "png": out / "gpu-check.png"}
    atomic_write(paths["json"], (json.dumps(result, indent=2) + "\n").encode())
    plot(result, paths["png"])
    return paths


# ---------------------------------------------------------------- the command
def why_no_cuda() -> str:
    import torch

    built = torch.version.cuda
    return (
        f"torch {torch.__version__} sees no CUDA device ("
        + (
            f"built for CUDA {built}; "
            + (
                "nvidia-smi is present"
                if shutil.which("nvidia-smi")
                else "no NVIDIA driver (nvidia-smi) found"
            )
            if built
            else "a CPU-only build of torch"
        )
        + ")"
    )


def device_info(device) -> dict:
    import torch

    from mtserve.core.machine import describe

    info = {"type": device.type, "torch": torch.__version__, "host": describe()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "name": props.name,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
        }
    else:
        info["name"] = f"CPU ({info['host']['cpu']}; no GPU: a test of the procedure, not a GPU figure)"
    return info


def load_average() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def configure(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group(
        "what to time (default: runs/latest where it holds a run, else the synthetic shape)"
    )
    src.add_argument("--run-dir", type=Path, help="a training run whose own modules to time")
    src.add_argument(
        "--synthetic", action="store_true", help="the synthetic shape even where runs/latest exists"
    )
    src.add_argument(
        "--shape",
        default="bert-base",
        help="synthetic shape: bert-base, demo, ... or LAYERSxHIDDEN (e.g. 4x32)",
    )
    src.add_argument("--tasks", type=int, default=16, help="synthetic tasks (default 16)")
    src.add_argument(
        "--depths", default="6,8", help="synthetic branch depths, cycled over the tasks (default 6,8)"
    )
    src.add_argument(
        "--task-layers",
        default="1,2",
        help="synthetic branch layers, cycled over each depth's tasks (default 1,2)",
    )
    src.add_argument(
        "--group",
        action="append",
        metavar="NAME=a,b,c",
        help="a group of tasks to price (repeatable; synthetic default: four groups of 2 to 6 tasks)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("reports/gpu-check"), help="results folder (gpu-check.json, .png)"
    )
    p.add_argument("--batches", default="1,4,16,64", help="batch sizes (default: the warm-up's 1,4,16,64)")
    p.add_argument("--seq", type=int, default=32, help="sequence length (default 32: short utterances)")
    p.add_argument("--precision", choices=sorted(PRECISIONS), default="fp16", help="weights and activations")
    p.add_argument("--repeats", type=int, default=10, help="timed trials per module and batch (default 10)")
    p.add_argument("--inner", type=int, default=5, help="calls per trial, back to back (default 5)")
    p.add_argument("--require-gpu", action="store_true", help=f"exit {NO_GPU_REQUIRED} (not 0) without a GPU")
    p.add_argument(
        "--allow-cpu", action="store_true", help="without a GPU, measure on CPU (tests the procedure)"
    )


def build_plan(args, device) -> Plan:
    run_dir = args.run_dir
    if run_dir is None and not args.synthetic and (DEFAULT_RUN / "run.json").is_file():
        run_dir = DEFAULT_RUN
    if run_dir is not None:
        if args.synthetic:
            raise UserError("--run-dir and --synthetic: choose one")
        plan = run_plan(Path(run_dir))
        plan.groups = parse_groups(args.group, list(plan.tasks))
        return plan
    plan = synthetic_plan(
        parse_shape(args.shape),
        args.tasks,
        parse_counts(args.depths, "--depths"),
        parse_counts(args.task_layers, "--task-layers"),
        device,
    )
    plan.groups = parse_groups(args.group, list(plan.tasks)) if args.group else default_groups(plan.tasks)
    return plan


def run(args) -> int:
    import torch

    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif args.allow_cpu:
        device = torch.device("cpu")
    else:
        print(f"gpu-check: skipped: no GPU here: {why_no_cuda()}. Nothing was measured.")
        return NO_GPU_REQUIRED if args.require_gpu else SKIPPED
    batches = parse_counts(args.batches, "--batches")
    if min(batches) < 1 or args.seq < 1 or args.repeats < 1 or args.inner < 1:
        raise UserError("--batches, --seq, --repeats and --inner must be >= 1")
    t0 = time.monotonic()
    load_before = load_average()
    plan = build_plan(args, device)
    print(
        f"gpu-check: {len(plan.tasks)} task(s) from {plan.source['kind']}"
        + (f" {plan.source['run_dir']}" if plan.source["kind"] == "run" else f" shape {args.shape}")
        + f", branch depths {plan.depths}, {len(plan.groups)} group(s), on {device.type}; built in "
        f"{time.monotonic() - t0:.1f} s"
    )
    result = {"device": device_info(device), "precision": args.precision, "source": plan.source}
    result |= measure(
        plan, device, getattr(torch, PRECISIONS[args.precision]), batches, args.seq, args.repeats, args.inner
    )
    result["seconds"] = round(time.monotonic() - t0, 1)
    result["load_average"] = {"before": load_before, "after": load_average()}
    paths = write_results(result, args.out)
    print_table(result)
    print(f"gpu-check: {result['seconds']:.0f} s; {paths['json']}, {paths['png']}")
    return 0
