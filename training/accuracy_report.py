"""reports/accuracy.{json,md,png}: what the merged model serves against full fine-tuning, per task; and
reports/training_loss.png: every task's loss and learning rate, step by step (the run's loss logs)."""

from __future__ import annotations

import json
from pathlib import Path

from mtserve.training.chance import describe as describe_chance
from mtserve.training.progress import LOG_FILE, read_log
from mtserve.training.search import DISTILLED, PARTIAL, Candidate, layers_served, trunk_layers


def accuracy(run) -> dict:
    """The accuracy.json record of docs/design.md (plus detail fields) from a training run."""
    record = run.record
    num_layers = record.num_layers
    tasks, chosen, alone = {}, {}, {}
    reported = []  # what this report notes of a task, beside the data's notes (run.json holds those already)
    for name in record.tasks:
        r = run.search(name)
        c = chosen[name] = Candidate.from_dict(r.chosen)
        # the task's own choice, before the choice across tasks
        alone[name] = Candidate.from_dict(r.chosen_alone) if r.chosen_alone is not None else c
        candidates = [Candidate.from_dict(x) for x in r.candidates]
        # the best of each kind on dev (what the reports compare; the choice compared validation scores)
        best_p = max((x for x in candidates if x.kind == PARTIAL), key=lambda x: x.dev_score, default=None)
        best_d = max((x for x in candidates if x.kind == DISTILLED), key=lambda x: x.dev_score, default=None)
        full = r.full
        served = c.dev_score  # fp32 through the served trunk + branch, on dev
        notes, data_notes = list(r.notes), len(r.notes)
        if r.kept is not None:  # --from-run, or --resume with other search settings: step 1 was not repeated
            kept, was = r.kept, r.kept.get("search") or {}
            stages = " and ".join({"full": "full fine-tuning", "peer": "the peer"}[s] for s in kept["stages"])
            # a record without branch_pooling pooled its branches as full fine-tuning, which both runs share
            pooled = was.get("branch_pooling") or record.config.get("pooling", "mean")
            notes.append(
                f"{stages} kept from a run that searched k = {','.join(map(str, was.get('k_values', [])))} "
                f"(students of up to {was.get('max_student_layers')} layers, branches pooled {pooled}): the "
                "times given are that run's"
            )
        # whether full fine-tuning beat what no learning scores (training/chance.py; None: a run made before)
        check, learned = r.full_chance, r.full_learned
        retention = served / full if full > 0 else 0.0
        if learned is False:
            # the denominator says nothing: a ratio to it would read as a result (1.46 or 0.0 alike)
            retention = None
            notes.append(
                f"full fine-tuning did not learn: {describe_chance(r.metric, check)}; retention is "
                "meaningless and left out of the average"
            )
        elif full <= 0:
            # a full fine-tuning score <= 0 (e.g. MCC of a model that collapsed to one class) makes the ratio
            # meaningless: retention is then 0, rather than a flattering number
            notes.append(f"full fine-tuning scored {full:.4f} <= 0: retention reported as 0")
        reported += [f"{name}: {n}" for n in notes[data_notes:]]
        tasks[name] = {
            "metric": r.metric,
            "full": full,
            "served": served,
            "retention": retention,
            "full_learned": learned,
            "full_chance": check,
            "branch_depth": c.branch_depth,
            "task_layers": c.task_layers,
            "chosen": {"kind": c.kind, "k": c.k, "l": c.task_layers, "meets_target": c.meets_target},
            "best_partial": best_p and {"k": best_p.k, "score": best_p.dev_score},
            "best_distilled": best_d and {"k": best_d.k, "l": best_d.task_layers, "score": best_d.dev_score},
            "train_examples": r.train_examples,
            "dev_examples": r.dev_examples,
            "seconds": r.seconds,
            # what the choice compared: the validation split (runs before it: dev)
            "choice_on": "validation" if r.full_validation is not None else "dev",
            "validation_examples": r.validation_examples,
            "full_validation": r.full_validation,
            "search_score": c.score,
            "notes": notes,
        }
        if r.peer is not None:  # Hugging Face's own fine-tuning of the same data (--peer-baseline)
            tasks[name]["peer"] = r.peer["score"]
            tasks[name]["full_vs_peer"] = full - r.peer["score"]
        if r.chosen_alone is not None:
            a = alone[name].to_dict()
            tasks[name]["chosen_alone"] = {
                k: a[k] for k in ("kind", "k", "l", "branch_depth", "task_layers", "score")
            }
    n_served = layers_served(chosen)
    layers_baseline = len(tasks) * num_layers
    meaningful = [t["retention"] for t in tasks.values() if t["retention"] is not None]
    return {
        "backbone": record.backbone,
        "num_layers": num_layers,
        "tasks": tasks,
        # over the tasks whose full fine-tuning learned (None: none did)
        "average_retention": sum(meaningful) / len(meaningful) if meaningful else None,
        "retention_left_out": [n for n, t in tasks.items() if t["retention"] is None],
        "layers_served": n_served,
        "layers_baseline": layers_baseline,
        "layers_ratio": n_served / layers_baseline,
        "trunk_layers": trunk_layers(chosen),
        "layers_served_alone": layers_served(alone),
        "retention_target": record.search["retention_target"],
        "notes": record.notes + reported,
    }


def accuracy_table(acc: dict) -> str:
    peer = any("peer" in t for t in acc["tasks"].values())
    rows = [
        "| task | metric |"
        + (" peer: HF Trainer |" if peer else "")
        + " full FT | best partial (k) | best distilled (k->l) | served | retention | depth + task layers |",
        "|---|---|---|---|---|---|---|---|" + ("---|" if peer else ""),
    ]
    for name, t in acc["tasks"].items():
        bp = f"{t['best_partial']['score']:.4f} ({t['best_partial']['k']})" if t["best_partial"] else "-"
        bd = (
            f"{t['best_distilled']['score']:.4f} ({t['best_distilled']['k']}->{t['best_distilled']['l']})"
            if t["best_distilled"]
            else "-"
        )
        mark = "" if t["chosen"]["meets_target"] else " (below target)"
        if t["retention"] is None:
            retention = "**meaningless: full FT did not learn**"
        else:
            if not mark and t["retention"] < acc["retention_target"]:
                mark = " (met the target on validation, not on dev)"
            retention = f"{t['retention']:.4f}{mark}"
        peer_cell = (f" {t['peer']:.4f} |" if "peer" in t else " - |") if peer else ""
        full_cell = f"{t['full']:.4f}" + (" (did not learn)" if t.get("full_learned") is False else "")
        rows.append(
            f"| {name} | {t['metric']} |{peer_cell} {full_cell} | {bp} | {bd} | {t['served']:.4f} | "
            f"{retention} | {t['branch_depth']} + {t['task_layers']} |"
        )
    peers = [t["peer"] for t in acc["tasks"].values() if "peer" in t]
    peer_avg = (
        (f" {sum(peers) / len(peers):.4f} |" if len(peers) == len(acc["tasks"]) else " |") if peer else ""
    )
    rows.append(
        f"| **average** | |{peer_avg} {sum(t['full'] for t in acc['tasks'].values()) / len(acc['tasks']):.4f} | | | "
        f"{sum(t['served'] for t in acc['tasks'].values()) / len(acc['tasks']):.4f} | "
        f"{_average(acc)} | |"
    )
    return "\n".join(rows)


def _average(acc: dict) -> str:
    left_out = acc.get("retention_left_out") or []
    if acc["average_retention"] is None:
        return "**meaningless: no full FT learned**"
    return f"**{acc['average_retention']:.4f}**" + (f" (without {', '.join(left_out)})" if left_out else "")


def not_learned(acc: dict) -> list[str]:
    """The tasks whose full fine-tuning did not learn, one warning each (the console and accuracy.md)."""
    return [
        f"{name}: full fine-tuning did not learn: {describe_chance(t['metric'], t['full_chance'])}; its "
        "retention is meaningless (check its learning rate and epochs, and its loss in training_loss.png)"
        for name, t in acc["tasks"].items()
        if t.get("full_learned") is False
    ]


def timing_table(acc: dict) -> str:
    """Seconds per task and stage; the search without the feature cache where the run measured it."""
    uncached = any("search_uncached" in t["seconds"] for t in acc["tasks"].values())
    head = "| task | full fine-tuning | trunk features | search (cached features) |" + (
        " search without the cache (x cached search + features) |" if uncached else ""
    )
    rows = ["Time per task, seconds:", "", head, "|---" * (head.count("|") - 1) + "|"]
    for name, t in acc["tasks"].items():
        sec = t["seconds"]
        row = f"| {name} | {sec['full']:.0f} | {sec['features']:.0f} | {sec['search']:.0f} |"
        if uncached:
            nc = sec.get("search_uncached")
            row += f" {nc:.0f} ({nc / (sec['search'] + sec['features']):.2f}x) |" if nc else " - |"
        rows.append(row)
    return "\n".join(rows)


def choice_note(acc: dict) -> list[str]:
    """How the branches were chosen, and how that differs from the paper."""
    on_val = {n: t for n, t in acc["tasks"].items() if t.get("choice_on") == "validation"}
    if not on_val:
        return [
            "Each branch was chosen on dev (a run made before validation splits): its scores saw the choice.",
            "",
        ]
    sizes = ", ".join(f"{n} {t['validation_examples']}" for n, t in on_val.items())
    return [
        f"Each task's branch was chosen on a validation split ({sizes} rows: the task's validation file, or a "
        "seeded share of its training rows held out of training, as each task's notes say), against full "
        "fine-tuning's score on the same rows. Every score in the table is on dev, which the choice never saw. "
        "The paper chose on dev, so its retention is measured on the rows it was chosen on; here a branch that "
        "met the target on validation may fall short of it on dev, and the table says so where it does.",
        "",
    ]


def peer_note(acc: dict) -> list[str]:
    peers = {n: t for n, t in acc["tasks"].items() if "peer" in t}
    if not peers:
        return []
    worst = min(peers.items(), key=lambda nt: nt[1]["full_vs_peer"])
    return [
        "Peer: each task fine-tuned by Hugging Face's own `AutoModelForSequenceClassification` and `Trainer` "
        "(`--peer-baseline`) on the same training rows, with the same epochs, learning rate, batch size, warm-up, "
        "weight decay, maximum length and seed, scored on the same dev rows. Retention is measured against our "
        'full fine-tuning ("full FT"); this column shows that it is not a weak one: our full fine-tuning minus '
        f"the peer's is {min(t['full_vs_peer'] for t in peers.values()):+.4f} at worst ({worst[0]}), "
        f"{sum(t['full_vs_peer'] for t in peers.values()) / len(peers):+.4f} on average.",
        "",
    ]


def _branch(c: dict) -> str:  # an accuracy.json branch record ("chosen" / "chosen_alone")
    return f"partial k={c['k']}" if c["kind"] == PARTIAL else f"distilled k={c['k']}->l={c['l']}"


def write_accuracy(run, out_dir: str | Path) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    acc = accuracy(run)
    (out / "accuracy.json").write_text(json.dumps(acc, indent=2))
    md = [
        f"# Accuracy: {acc['backbone']} ({acc['num_layers']} layers)",
        "",
        accuracy_table(acc),
        "",
        f"Layers served: {acc['layers_served']} (trunk {acc['trunk_layers']} + task layers) against "
        f"{acc['layers_baseline']} for one model per task: **{acc['layers_ratio']:.1%}**.",
        f"Average retention (served / full fine-tuning): {_average(acc)} "
        f"(per-task target {acc['retention_target']}).",
        "",
    ]
    warnings = not_learned(acc)
    if warnings:
        md[2:2] = ["**Warning:**", ""] + [f"- {w}" for w in warnings] + [""]
    md += choice_note(acc)
    md += peer_note(acc)
    revised = {n: t["chosen_alone"] for n, t in acc["tasks"].items() if "chosen_alone" in t}
    if revised:
        md += [
            f"Chosen across tasks (the trunk is as deep as the deepest branch point): "
            f"{acc['layers_served']} layers served instead of {acc['layers_served_alone']} had each task "
            "taken its own cheapest branch:",
            "",
        ]
        md += [
            f"- {n}: {_branch(acc['tasks'][n]['chosen'])} at depth {acc['tasks'][n]['branch_depth']} "
            f"({acc['tasks'][n]['search_score']:.4f}) instead of {_branch(a)} at depth {a['branch_depth']} "
            f"({a['score']:.4f})"
            for n, a in revised.items()
        ]
        md += [""]
    md += [timing_table(acc), ""]
    if acc["notes"]:
        md += ["Notes:", ""] + [f"- {n}" for n in acc["notes"]] + [""]
    if plot_training_loss(run, out / "training_loss.png"):
        md += [
            "Loss and learning rate, step by step: training_loss.png (from each task's "
            f"tasks/<task>/{LOG_FILE} in the run directory).",
            "",
        ]
    (out / "accuracy.md").write_text("\n".join(md))
    plot_accuracy(run, out / "accuracy.png")
    return acc


def plot_accuracy(run, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = run.record
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in record.tasks:
        r = run.search(name)
        candidates = [Candidate.from_dict(c) for c in r.candidates]
        partial = sorted((c.k, c.dev_score) for c in candidates if c.kind == PARTIAL)
        xs = [k for k, _ in partial] + [record.num_layers]
        ys = [s for _, s in partial] + [r.full]
        (line,) = ax.plot(xs, ys, marker="o", label=f"{name} ({r.metric})")
        c = Candidate.from_dict(r.chosen)
        ax.scatter([c.task_layers], [c.dev_score], marker="*", s=160, color=line.get_color(), zorder=5)
    ax.set_xlabel("fine-tuned layers (rightmost point: full fine-tuning)")
    ax.set_ylabel("dev score")
    ax.set_title(f"Dev score vs fine-tuned layers ({record.backbone})\nstar = served branch (task layers)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training_loss(run, path: Path) -> bool:
    """One row per task: the loss of each training loop (full fine-tuning, each partial fine-tuning and
    student) against the share of its steps done, and the learning rate beside it. False (and no file) when no
    task has a loss log (a run made before them)."""
    logs = {}
    for name in run.record.tasks:
        f = run.task_dir(name) / LOG_FILE
        rows = read_log(f) if f.is_file() else []
        if rows:
            logs[name] = rows
    path.unlink(missing_ok=True)  # never an older run's plot beside this run's report
    if not logs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(logs), 2, figsize=(10, 2.6 * len(logs) + 0.6), squeeze=False)
    for (name, rows), (ax_loss, ax_lr) in zip(logs.items(), axes, strict=True):
        stages: dict[tuple[str, str], list[dict]] = {}
        for r in rows:
            stages.setdefault((r.get("phase", ""), r["stage"]), []).append(r)
        for (phase, stage), rs in stages.items():
            label = stage if phase != "the same search without the cache" else f"{stage} (uncached)"
            xs = [r["step"] / r["steps"] for r in rs]
            ax_loss.plot(
                xs, [r["loss"] for r in rs], label=label, lw=1.2 if stage == "full fine-tuning" else 0.8
            )
            ax_lr.plot(xs, [r["lr"] for r in rs], label=label, lw=0.8)
        ax_loss.set_title(f"{name}: training loss", fontsize=9)
        ax_lr.set_title(f"{name}: learning rate", fontsize=9)
        if all(r["loss"] > 0 for r in rows):
            ax_loss.set_yscale("log")
        for ax in (ax_loss, ax_lr):
            ax.grid(alpha=0.3)
            ax.set_xlabel("share of the stage's steps", fontsize=8)
        ax_loss.legend(fontsize=6, ncol=2)
    fig.suptitle(f"Training loss per task and stage ({run.record.backbone})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
