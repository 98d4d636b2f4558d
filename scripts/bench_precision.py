"""fp32 against bf16 on this machine's CPU (or a GPU): the frozen trunk's feature pass and a training step.

    python scripts/bench_precision.py [--device cpu] [--repeats 5] [--out docs/results/precision.json]

The default backbone (MiniLM-L6, 384 wide), SST-2-like rows of 13 tokens on average, batch 32: the feature pass
runs the 6-layer trunk over 1,024 rows; the training step is full fine-tuning's (every layer) and a 1-layer
branch's on cached features. The two precisions alternate, `--repeats` times each, and the medians are printed
as JSON. Time it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mtserve.training.backbone import full_model, make_branch, make_trunk
from mtserve.training.device import resolve
from mtserve.training.pipeline import DEFAULT_BACKBONE, load_backbone


def _time(fn, comp, repeats_inner: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeats_inner):
        with comp.autocast():
            fn()
    if comp.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats_inner


def _measure(comp, bert, ids, mask, lengths, rows: int) -> dict[str, float]:
    """One round at one precision: the feature pass over `rows` rows, a full and a branch training step."""
    n_layers, hidden = bert.config.num_hidden_layers, bert.config.hidden_size
    g = torch.Generator().manual_seed(1)
    width = ids.shape[1]
    order = torch.argsort(lengths)  # the cache's feature pass batches rows of similar length
    trunk = make_trunk(bert, n_layers, [n_layers]).to(comp.device).eval()
    model = full_model(bert, 2, False).to(comp.device).train()
    branch = make_branch(bert, n_layers - 1, 1, 2, False).to(comp.device).train()
    opt_full = torch.optim.AdamW(model.parameters(), lr=1e-5)
    opt_branch = torch.optim.AdamW(branch.parameters(), lr=1e-4)
    batch = [t.to(comp.device) for t in (ids[:32], torch.zeros_like(ids[:32]), mask[:32])]
    gold = torch.randint(0, 2, (32,), generator=g).to(comp.device)
    hidden_states = torch.randn(32, width, hidden, generator=g).to(comp.device)

    @torch.no_grad()
    def feature_pass():
        for s in range(0, rows, 64):
            idx = order[s : s + 64]
            w = int(lengths[idx].max())
            trunk(*(t[idx, :w].to(comp.device) for t in (ids, torch.zeros_like(ids), mask)))

    def step(module, opt, *inputs):
        loss = torch.nn.functional.cross_entropy(module(*inputs).float(), gold)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return {
        "feature_pass_s": _time(feature_pass, comp),
        "full_step_s": _time(lambda: step(model, opt_full, *batch), comp, 3),
        "branch_step_s": _time(lambda: step(branch, opt_branch, hidden_states, batch[2]), comp, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--out")
    args = ap.parse_args()
    bert, _ = load_backbone(DEFAULT_BACKBONE)
    g = torch.Generator().manual_seed(0)
    lengths = torch.clamp(torch.poisson(torch.full((args.rows,), 13.0), generator=g).long(), 3, 66)
    width = int(lengths.max())
    ids = torch.randint(1000, bert.config.vocab_size, (args.rows, width), generator=g)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    results: dict[str, dict[str, list[float]]] = {}
    for precision in ["fp32", "bf16"] * args.repeats:
        r = results.setdefault(precision, {"feature_pass_s": [], "full_step_s": [], "branch_step_s": []})
        for key, seconds in _measure(
            resolve(args.device, precision), bert, ids, mask, lengths, args.rows
        ).items():
            r[key].append(seconds)
    out = {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "rows": args.rows,
        "repeats": args.repeats,
        "median": {p: {k: statistics.median(v) for k, v in r.items()} for p, r in results.items()},
    }
    out["bf16_speedup"] = {
        k: out["median"]["fp32"][k] / out["median"]["bf16"][k] for k in out["median"]["fp32"]
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
