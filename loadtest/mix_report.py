"""capacity.md's part for a traffic mix (loadtest/mix.py), and mix.png: the saving per entry and for the mix
beside the ideal by layer counts, the same mix sent to `multitask` (every head), and each task's share of the
serving cost (loadtest/mix_costs.py)."""

from __future__ import annotations

import math
from pathlib import Path


def _pct(x, spec: str = ".1%") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _ms(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def mix_markdown(capacity: dict) -> list[str]:
    m = capacity["mix"]
    mt, pt, eh = (capacity[k]["max_rps"] for k in ("multitask", "per_task", "every_head"))
    zipf = f", shares by Zipf s = {m['zipf']:g} in file order" if m.get("zipf") is not None else ""
    lines = [
        "## The mix",
        "",
        f"Traffic mix `{m['source']}`{zipf}: an utterance needs the tasks of one entry, drawn by share. The "
        "multitask side calls what the client routes it to (core/routing.py over the server's served paths; "
        "several calls in parallel), the per-task side `single_<task>` for each of its tasks, and *every head* "
        "calls `multitask` for the entry's outputs (every head runs).",
        "",
        "| | utterances/s within the SLO | saving against per-task (measured) | ideal (layer count) |",
        "|---|---:|---:|---:|",
        f"| routed (the client's paths) | {mt:.2f} | **{_pct(capacity['cost_reduction'])}** | "
        f"{_pct(capacity['ideal_cost_reduction'])} |",
        f"| `multitask` for every utterance (every head) | {eh:.2f} | {_pct(capacity['every_head_reduction'])} | "
        f"{_pct(capacity['ideal_every_head_reduction'])} |",
        f"| per-task (`single_<task>` each) | {pt:.2f} | | |",
        "",
    ]
    ratio = (
        (capacity["cost_reduction"] or 0) / capacity["ideal_cost_reduction"]
        if capacity.get("ideal_cost_reduction")
        else None
    )
    if ratio is not None and capacity["cost_reduction"] is not None:
        lines += [f"Measured saving = {ratio:.2f} x the ideal for this mix.", ""]
    if m.get("layers_served") is not None:
        lines += [
            f"Ideal for the mix: 1 - {m['layers_served']:.2f} / {m['layers_baseline']:.2f} layers per utterance "
            "(both weighted by share); every head: "
            f"1 - {m['every_head_layers']} / {m['layers_baseline']:.2f}.",
            "",
        ]
    lines += [
        "Per entry: the layer counts' ideal, and the saving Triton's own statistics show (each model's execution "
        "time over the requests it served, at each workload's highest passing rate, summed over the models an "
        "utterance of the entry runs: compute only, no queueing).",
        "",
        "| entry | share | tasks | routed calls | layers (routed / own models) | ideal | compute ms routed "
        "| per-task | every head | saving (compute) | every head saving (compute) |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in m["entries"]:
        calls = ", ".join(f"`{c['model']}`" for c in e["calls"])
        lines.append(
            f"| {e['name']} | {e['share']:.3f} | {', '.join(e['tasks'])} | {calls} | "
            f"{e['layers']} / {e.get('layers_baseline', 'n/a')} | {_pct(e.get('ideal_cost_reduction'))} | "
            f"{_ms(e.get('multitask_ms'))} | {_ms(e.get('per_task_ms'))} | {_ms(e.get('every_head_ms'))} | "
            f"{_pct(e.get('compute_reduction'))} | {_pct(e.get('every_head_compute_reduction'))} |"
        )
    c = m.get("compute")
    if c:
        lines += [
            f"| **mix** | 1 | | | {_ms(m.get('layers_served'))} / {_ms(m.get('layers_baseline'))} | "
            f"{_pct(capacity['ideal_cost_reduction'])} | {_ms(c['multitask_ms'])} | {_ms(c['per_task_ms'])} | "
            f"{_ms(c['every_head_ms'])} | {_pct(c['compute_reduction'])} | "
            f"{_pct(c['every_head_compute_reduction'])} |",
        ]
    lines += charge_back_markdown(capacity.get("charge_back") or {})
    return lines


def charge_back_markdown(charge: dict) -> list[str]:
    """Each task's share of the serving cost, on the routed side (and every head beside it)."""
    routed, every = charge.get("multitask"), charge.get("every_head")
    if not routed:
        return []
    lines = [
        "",
        "## Charge-back: each task's share of the serving cost",
        "",
        f"Model compute of the multitask deployment at the routed workload's highest passing rate "
        f"({routed['offered_rps']:.3g} utterances/s offered), from Triton's per-model statistics: a task pays "
        "its head's execution time, plus its part of each model it shares (the tokenizer, each trunk segment), "
        "split by the requests it sent through it (a request through a segment split evenly among the called "
        "path's tasks that need that segment). A head runs for every call of a path that has it, asked or not: "
        "its owner pays. Beside it, the same split when every utterance goes to `multitask` (every head runs).",
        "",
        "| task | requests | head ms | shared ms | total ms | share of the cost | every head: share |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t, r in routed["tasks"].items():
        other = (every or {}).get("tasks", {}).get(t, {})
        lines.append(
            f"| {t} | {r['requests']} | {r['head_ms']:.0f} | {r['shared_ms']:.0f} | {r['total_ms']:.0f} | "
            f"{_pct(r['share'])} | {_pct(other.get('share'))} |"
        )
    lines += [
        "",
        f"Total {routed['total_ms']:.0f} ms of model execution"
        + (
            f" ({routed['unattributed_ms']:.0f} ms on models no served path accounts for)"
            if routed["unattributed_ms"] > 0.5
            else ""
        )
        + ".",
    ]
    return lines


def plot_mix(capacity: dict, path: Path) -> None:
    """Per entry and for the mix: the ideal saving (layers) and the compute saving measured, routed and every
    head; the capacities' saving for the mix as the last group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = capacity["mix"]
    labels = [f"{e['name']}\n({e['share']:.0%})" for e in m["entries"]] + ["mix\n(capacity)"]
    pct = lambda v: float("nan") if v is None else 100 * v  # noqa: E731
    ideal = [pct(e.get("ideal_cost_reduction")) for e in m["entries"]] + [
        pct(capacity["ideal_cost_reduction"])
    ]
    routed = [pct(e.get("compute_reduction")) for e in m["entries"]] + [pct(capacity["cost_reduction"])]
    every = [pct(e.get("every_head_compute_reduction")) for e in m["entries"]] + [
        pct(capacity["every_head_reduction"])
    ]
    x = range(len(labels))
    w = 0.27
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(labels)), 4.5))
    ax.bar([i - w for i in x], ideal, w, label="ideal (layer count), routed", color="tab:gray", alpha=0.6)
    ax.bar(list(x), routed, w, label="measured, routed", color="tab:blue")
    ax.bar([i + w for i in x], every, w, label="measured, multitask for every utterance", color="tab:red")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("saving against per-task models (%)")
    ax.set_title("Saving per mix entry (compute, Triton statistics) and for the mix (capacity)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
