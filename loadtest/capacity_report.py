"""Reports of the capacity search and the cost-vs-tasks sweep.

capacity.json          the schema of docs/design.md (intervals and `sizing` included), plus `server`: Triton's
                       per-model statistics at each workload's highest passing rate
capacity_steps.json    how it was measured: settings, unloaded latency, every step in the order it ran
                       (with the server's statistics of each step)
capacity.md            the fleet for a target rate at a utilisation, both ways, the saving, with intervals, and
                       where the server's time goes
crosscheck.json / .md  with --cross-check: Triton's perf_analyzer on the same server, beside our figures
latency_vs_rate.png    p50 / p99 against offered rate, both workloads, with the SLO
cost_vs_tasks.json     [{"tasks", "cost_reduction", "ideal_cost_reduction", "backbone"}], one per sweep point
cost_vs_tasks.png      measured and ideal cost reduction against the number of tasks
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from mtserve.core import names
from mtserve.loadtest import cpu_steal, protocol, sizing

LABELS = {
    "multitask": "multitask (one ensemble)",
    "per-task": "per-task (one deployment per task)",
    "every-head": "multitask for every utterance (every head runs)",
}


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def _fmt(x, spec: str = ".1f", none: str = "n/a") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return none
    return format(x, spec)


def _interval(iv, spec: str = ".1f") -> str:
    if not iv or any(x is None or not math.isfinite(x) for x in iv):
        return "n/a"
    return f"{format(iv[0], spec)} to {format(iv[1], spec)}"


def _count(n) -> str:
    return "none meets the SLO" if n is None else str(n)


def _count_interval(iv) -> str:
    if not iv or iv[0] is None:
        return "n/a"
    return str(iv[0]) if iv[0] == iv[1] else f"{iv[0]} to {_count(iv[1]) if iv[1] is not None else 'any'}"


def capacity_markdown(result: dict, target_rps: float, utilisation: float = sizing.UTILISATION) -> str:
    c, d = result["capacity"], result["details"]
    size = c.get("sizing") or sizing.sizing(c, target_rps, utilisation)
    target_rps, utilisation = size["target_rps"], size["utilisation"]
    lines = [
        "# Capacity: one multitask deployment against one deployment per task",
        "",
        f"Measured {d.get('finished_at', '')} against `{d['url']}`"
        + (f" (per-task: `{d['per_task_url']}`)" if d.get("per_task_url") not in (None, d["url"]) else "")
        + (f", repository `{d['repo']}`" if d.get("repo") else "")
        + ".",
        f"Backbone `{d.get('backbone')}` ({d.get('num_layers')} layers), {c['tasks']} task(s): "
        + ", ".join(f"`{t}`" for t in d["task_names"])
        + ".",
        (
            "Every utterance needs every task's prediction."
            if not c.get("mix")
            else f"Every utterance needs the tasks of one entry of the traffic mix `{c['mix']['source']}`, by share "
            "(the multitask side routes it like the client: below)."
        )
        + f" SLO: p99 <= {c['slo_p99_ms']:g} ms per utterance, no errors.",
        "",
        "| workload | max utterances/s within the SLO | interval | p99 at that rate (ms) | p99 over its windows "
        "| unloaded p50 (ms) | search |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for key, w in (("multitask", "multitask"), ("per_task", "per-task"), ("every_head", "every-head")):
        if key not in c:
            continue
        r = d["results"][key]
        lines.append(
            f"| {LABELS[w]} | {_fmt(c[key]['max_rps'], '.2f')} | {_interval(c[key].get('max_rps_interval'))} | "
            f"{_fmt(c[key]['p99_ms'])} | {_interval(c[key].get('p99_ms_interval'))} | "
            f"{_fmt(d['probe'][w]['p50_ms'])} | {r['steps']} steps, {r['outcome']} |"
        )
    iv = c.get("cost_reduction_interval")
    lines += [
        "",
        "Interval of a maximum rate: from the slowest window of the highest passing step to the lowest rate "
        "that failed above it (where the capacity lies, as measured); p99 over its windows: their lowest and "
        "highest p99. These intervals are this run's alone: on a shared 2-core machine the saving moved by more "
        "than them from one run to the next (docs/loadtest.md, 'How stable it is here'); to plan on a figure, "
        "take the median of several runs (`--repeats N`).",
        "",
        *paired_markdown(d.get("paired_check")),
        f"**Cost reduction (measured)**: {_fmt(c['cost_reduction'], '.1%')} "
        "= 1 - per_task.max_rps / multitask.max_rps"
        + (f"; interval {iv[0]:.1%} to {iv[1]:.1%} (the two capacities' intervals)." if iv else "."),
        f"**Ideal (layer count)**: {_fmt(c['ideal_cost_reduction'], '.1%')} = 1 - layers_served / layers_baseline"
        + (f" = 1 - {d['layers_served']:.4g} / {d['layers_baseline']:.4g}" if d.get("layers_served") else "")
        + ".",
        "",
    ]
    lines += repeats_markdown(c.get("repeats"))
    if c.get("mix"):
        from mtserve.loadtest.mix_report import mix_markdown

        lines += mix_markdown(c) + [""]
    lines += [
        f"## Replicas for {target_rps:g} utterances/s at {utilisation:.0%} utilisation",
        "",
        "A replica is one copy of the deployment measured here (this machine, or one GPU): the multitask "
        "ensemble, or the set of per-task deployments together, placed on the same hardware. Each is sized to "
        f"run at {utilisation:.0%} of its measured capacity (`--utilisation`; 70%, the default, is what the soak "
        "test holds for 20 minutes: docs/results/reliability.md); the intervals come from the capacities' "
        "intervals (fewest replicas at the top of the interval, most at the bottom).",
        "",
        "| target utterances/s | multitask replicas | interval | per-task replicas | interval | saving | interval |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    targets = sorted({target_rps, *(t for t in (10.0, 100.0, 1000.0, 10000.0) if t != target_rps)})
    for t in targets:
        row = sizing.sizing(c, t, utilisation)
        a, b = row["multitask"], row["per_task"]
        siv = row["saving_interval"]
        lines.append(
            f"| {t:g} | {_count(a['replicas'])} | {_count_interval(a['replicas_interval'])} | "
            f"{_count(b['replicas'])} | {_count_interval(b['replicas_interval'])} | "
            f"{_fmt(row['saving'], '.0%')} | {_interval(siv, '.0%') if siv else 'n/a'} |"
        )
    r_mt, r_pt = size["multitask"]["replicas"], size["per_task"]["replicas"]
    if r_mt is not None and r_pt is not None:
        lines += [
            "",
            f"At {target_rps:g} utterances/s and {utilisation:.0%} utilisation: **{r_mt}** multitask replica(s) "
            f"(interval {_count_interval(size['multitask']['replicas_interval'])}) instead of **{r_pt}** "
            f"({_count_interval(size['per_task']['replicas_interval'])}), {r_pt - r_mt} fewer "
            f"({_fmt(size['saving'], '.0%')}).",
        ]
    lines += server_markdown(c.get("server") or {}, per_utterance=not c.get("mix"))
    lines += [
        "",
        "## How it was measured",
        "",
        "Locust (loadtest/locustfile.py) over gRPC, constant-throughput users so the offered rate is controlled; "
        "per workload a step-then-bisect search on the offered rate, the two workloads alternating step by step. "
        "Each step repeats its measurement window until the last "
        f"{d['settings'].get('stable_windows', 1)} windows agree within "
        f"{d['settings'].get('stability_tolerance', 0.1):.0%} in served rate and p99 (perf_analyzer's rule; "
        "loadtest/stability.py), at most "
        f"{d['settings'].get('max_windows', 1)} windows, and pools them; a step that does not settle is reported "
        "unstable and judged on all its windows pooled. A step passes when its p99 <= SLO, no call failed and "
        "the offered rate was reached. Details: `capacity_steps.json`; plot: `latency_vs_rate.png`.",
        "",
        placement_line(d.get("cpus") or {}),
        *steal_lines(d["steps"]),
        "",
        "| # | workload | offered/s | served/s | users | p50 ms | p99 ms | n | windows | p99 per window (ms) | steal "
        "| result |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for i, s in enumerate(d["steps"], 1):
        windows = s.get("windows") or []
        lines.append(
            f"| {i} | {s['workload']} | {s['offered_rps']:.3g} | {s['achieved_rps']:.3g} | {s['users']} | "
            f"{_fmt(s['p50_ms'])} | {_fmt(s['p99_ms'])} | {s['count']} | "
            f"{len(windows)} {s.get('stability') or ''} | {', '.join(_fmt(w['p99_ms'], '.0f') for w in windows)} | "
            f"{_fmt(cpu_steal.of_step(s), '.0%')} | {'pass' if s['passed'] else s['reason']} |"
        )
    if d.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in d["notes"]]
    st = d["settings"]
    lines += [
        "",
        f"Bounds: {st['max_steps']} steps per workload, {st['max_time_s']:g} s and {st['max_requests']} "
        f"utterances in all, rates {st['min_rps']:g}..{st['max_rps']:g}/s, windows {st['min_duration_s']:g}.."
        f"{st['max_duration_s']:g} s; search took {d['wall_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def steal_lines(steps: list[dict]) -> list[str]:
    """How much CPU time this machine's hypervisor took during the steps (loadtest/cpu_steal.py); nothing where
    it could not be read."""
    shares = [(i, v) for i, v in enumerate(map(cpu_steal.of_step, steps), 1) if v is not None]
    if not shares:
        return []
    most_at, most = max(shares, key=lambda x: x[1])
    return [
        "",
        f"CPU steal on this machine during the steps (time its hypervisor gave other guests, /proc/stat): median "
        f"{statistics.median_low(v for _, v in shares):.0%}, the most {most:.0%} (step {most_at}). A search measures the machine it "
        "got: figures measured under steal are lower than the server's own.",
    ]


def placement_line(cpus: dict) -> str:
    """Where the server and the load generator ran (capacity.py `placement`)."""
    triton, locust = cpus.get("triton"), cpus.get("load_generator")
    if triton and locust:
        return (
            f"Triton ran on CPU(s) {', '.join(map(str, triton))} and Locust on CPU(s) {', '.join(map(str, locust))}: "
            "the load generator did not compete with the server for a CPU."
        )
    return "Triton and Locust shared every CPU (a remote server, or no `--load-generator-cpus`)."


def _is_ensemble(key: str) -> bool:
    model = key.split(" @ ", 1)[0]
    return model in (protocol.MULTITASK, names.MULTITASK_GRAPH) or model.startswith(
        (names.SINGLE_PREFIX, names.PATH_PREFIX, names.GROUP_PREFIX, names.GROUP_GRAPH_PREFIX)
    )


def time_per_utterance(models: dict) -> dict | None:
    """Server milliseconds per utterance, summed over the models that compute (not the ensembles, whose
    own statistics span their steps): {"utterances", "queue_ms", "compute_ms", "by_model": {model: ms}}.
    Compute is each model's execution time (a batch counted once) over the utterances served; queue is the
    request-milliseconds spent waiting, summed over every model an utterance passes through."""
    ensembles = {k: m for k, m in models.items() if _is_ensemble(k) and "requests" in m}
    if not ensembles:
        return None
    # multitask: one ensemble request per utterance; per-task: one single_<task> request per task
    utterances = sum(m["requests"] for m in ensembles.values()) / len(ensembles)
    if utterances <= 0:
        return None
    by_model, queue = {}, 0.0
    for k, m in models.items():
        if _is_ensemble(k) or "requests" not in m:
            continue
        by_model[k] = (m.get("exec_ms_total") or 0.0) / utterances
        queue += (m.get("queue_ms") or 0.0) * m["requests"] / utterances
    return {
        "utterances": utterances,
        "queue_ms": queue,
        "compute_ms": sum(by_model.values()),
        "by_model": dict(sorted(by_model.items(), key=lambda kv: -kv[1])),
    }


def server_markdown(server: dict, per_utterance: bool = True) -> list[str]:
    """capacity.md's per-model table of Triton's statistics at each workload's highest passing rate
    (`per_utterance`: and the compute per utterance, when every utterance makes the same calls)."""
    if not any(server.values()):
        return []
    lines = [
        "",
        "## Where the server's time goes",
        "",
        "Triton's own statistics (gRPC ModelStatistics, read before and after the step's window) at each "
        "workload's highest passing rate; milliseconds per request of that model (a request in a batch is "
        "charged the whole batch's compute). An ensemble's request time spans its steps; its composing "
        "models' rows say where that time goes.",
    ]
    totals = {}
    for key, label in (("multitask", "multitask"), ("per_task", "per-task"), ("every_head", "every-head")):
        entry = server.get(key)
        if not entry or not entry.get("models"):
            continue
        lines += [
            "",
            f"**{LABELS[label]}** at {entry['offered_rps']:.3g} utterances/s:",
            "",
            "| model | requests/s | avg batch | queue ms | input ms | infer ms | output ms | request ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for model, m in entry["models"].items():
            if "error" in m:
                lines.append(f"| {model} | statistics unavailable: {m['error']} | | | | | | |")
                continue
            lines.append(
                f"| {model} | {_fmt(m.get('requests_per_s'), '.1f')} | {_fmt(m.get('avg_batch'), '.2f')} | "
                f"{_fmt(m.get('queue_ms'), '.2f')} | {_fmt(m.get('compute_input_ms'), '.2f')} | "
                f"{_fmt(m.get('compute_infer_ms'), '.2f')} | {_fmt(m.get('compute_output_ms'), '.2f')} | "
                f"{_fmt(m.get('request_ms'), '.2f')} |"
            )
        t = time_per_utterance(entry["models"]) if per_utterance else None
        if t:
            totals[label] = t
            top = ", ".join(f"{k} {v:.2f}" for k, v in list(t["by_model"].items())[:4])
            lines += [
                "",
                f"Per utterance: {t['compute_ms']:.2f} ms of model execution ({top}; each batch counted once) "
                f"and {t['queue_ms']:.2f} request-ms queued, summed over the models that compute.",
            ]
    if len(totals) == 2 and totals["multitask"]["compute_ms"] > 0:
        mt, pt = totals["multitask"]["compute_ms"], totals["per-task"]["compute_ms"]
        lines += [
            "",
            f"Model compute per utterance: multitask {mt:.2f} ms against per-task {pt:.2f} ms "
            f"({1 - mt / pt:.0%} less): the saving the server sees, before queueing and batching."
            if pt > 0
            else "",
        ]
    return lines


def plot_latency_vs_rate(
    steps: list[dict],
    slo_ms: float,
    path: Path,
    title: str = "",
    xlabel: str = "offered rate (utterances/s, every task per utterance)",
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"multitask": "tab:blue", "per-task": "tab:orange", "every-head": "tab:red"}
    for w, color in colors.items():
        rows = sorted(
            (
                s
                for s in steps
                if s["workload"] == w and s["p99_ms"] is not None and math.isfinite(s["p99_ms"])
            ),
            key=lambda s: s["offered_rps"],
        )
        if not rows:
            continue
        x = [s["offered_rps"] for s in rows]
        ax.plot(x, [s["p99_ms"] for s in rows], "o-", color=color, label=f"{w} p99")
        ax.plot(x, [s["p50_ms"] for s in rows], "s--", color=color, alpha=0.6, label=f"{w} p50")
        bad = [s for s in rows if not s["passed"]]
        ax.scatter(
            [s["offered_rps"] for s in bad],
            [s["p99_ms"] for s in bad],
            marker="x",
            color="red",
            zorder=5,
            label=None,
        )
    ax.axhline(slo_ms, color="gray", linestyle=":", label=f"SLO p99 {slo_ms:g} ms")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("latency per utterance (ms)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Latency against offered rate (x: step failed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def repeats_markdown(rep: dict | None) -> list[str]:
    """capacity.md's table of every repeat (`mtserve loadtest --repeats N`, loadtest/repeats.py); none without."""
    if not rep:
        return []
    pct = lambda v: _fmt(v, ".1%")  # noqa: E731
    lines = [
        f"## {rep['n']} repeats: this report is repeat {rep['median_repeat']}, the median saving",
        "",
        "Every figure above and below comes from that one search; each repeat's own reports are in "
        "`repeats/<i>/`.",
        "",
        "| repeat | multitask max utterances/s | per-task | saving |",
        "|---:|---:|---:|---:|",
    ]
    for i, (mt, pt, cr) in enumerate(
        zip(rep["multitask_max_rps"], rep["per_task_max_rps"], rep["cost_reduction"], strict=True), 1
    ):
        mark = " (median)" if i == rep["median_repeat"] else ""
        lines.append(f"| {i}{mark} | {_fmt(mt, '.2f')} | {_fmt(pt, '.2f')} | {pct(cr)} |")
    if rep.get("cost_reduction_range"):
        lo, hi = rep["cost_reduction_range"]
        lines += [
            "",
            f"Savings {lo:.1%} to {hi:.1%}; the farthest {rep['farthest_from_median_points']:g} points from the "
            "median.",
        ]
    return lines + [""]


def write_capacity_reports(
    result: dict, out_dir: str | Path, target_rps: float = 1000.0, utilisation: float = sizing.UTILISATION
) -> dict[str, Path]:
    if "sizing" not in result["capacity"]:
        result["capacity"]["sizing"] = sizing.sizing(result["capacity"], target_rps, utilisation)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "capacity.json": out / "capacity.json",
        "capacity_steps.json": out / "capacity_steps.json",
        "capacity.md": out / "capacity.md",
        "latency_vs_rate.png": out / "latency_vs_rate.png",
    }
    _write_json(paths["capacity.json"], result["capacity"])
    if result.get("cross_check"):
        from mtserve.loadtest.crosscheck import crosscheck_markdown

        paths["crosscheck.json"] = out / "crosscheck.json"
        paths["crosscheck.md"] = out / "crosscheck.md"
        _write_json(paths["crosscheck.json"], protocol.json_safe(result["cross_check"]))
        paths["crosscheck.md"].write_text(crosscheck_markdown(result["cross_check"]))
    _write_json(paths["capacity_steps.json"], protocol.json_safe(result["details"]))
    paths["capacity.md"].write_text(capacity_markdown(protocol.json_safe(result), target_rps))
    d = result["details"]
    plot_latency_vs_rate(
        protocol.json_safe(d["steps"]),
        result["capacity"]["slo_p99_ms"],
        paths["latency_vs_rate.png"],
        f"{result['capacity']['tasks']} tasks, {d.get('backbone')}: latency against offered rate",
        **({"xlabel": "offered rate (utterances/s of the mix)"} if result["capacity"].get("mix") else {}),
    )
    if result["capacity"].get("mix"):
        from mtserve.loadtest.mix_report import plot_mix

        paths["mix.png"] = out / "mix.png"
        plot_mix(protocol.json_safe(result["capacity"]), paths["mix.png"])
    return paths


# ---------------------------------------------------------------- the sweep
def merge_points(old: list[dict], new: list[dict]) -> list[dict]:
    """Points keyed by (backbone, tasks); a new measurement replaces an old one."""
    by_key = {(p["backbone"], p["tasks"]): p for p in old}
    by_key.update({(p["backbone"], p["tasks"]): p for p in new})
    return sorted(by_key.values(), key=lambda p: (p["backbone"], p["tasks"]))


def plot_cost_vs_tasks(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = ["o", "s", "^", "D"]
    for i, backbone in enumerate(sorted({p["backbone"] for p in points})):
        rows = sorted((p for p in points if p["backbone"] == backbone), key=lambda p: p["tasks"])
        m = markers[i % len(markers)]
        xs = [p["tasks"] for p in rows]
        measured = [p["cost_reduction"] if p["cost_reduction"] is not None else float("nan") for p in rows]
        ideal = [
            p["ideal_cost_reduction"] if p["ideal_cost_reduction"] is not None else float("nan") for p in rows
        ]
        line = ax.plot(
            xs, [100 * v for v in measured], marker=m, linestyle="-", label=f"{backbone}: measured"
        )[0]
        ax.plot(
            xs,
            [100 * v for v in ideal],
            marker=m,
            linestyle="--",
            color=line.get_color(),
            alpha=0.6,
            label=f"{backbone}: ideal (layer count)",
        )
    # the paper's production figure (21 tasks on BERT-base), an estimate: what the measured points are held to
    ax.axhspan(86, 88, color="grey", alpha=0.15, label="paper: 86-88% fewer GPUs (21 tasks, estimated)")
    ax.set_xlabel("number of tasks N")
    ax.set_ylabel("cost reduction, multitask vs per-task (%)")
    ax.set_xscale("log", base=2)
    xt = sorted({p["tasks"] for p in points})
    ax.set_xticks(xt)
    ax.set_xticklabels([str(x) for x in xt])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Serving cost saved by one shared trunk, against the number of tasks")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_sweep_reports(points: list[dict], out_dir: str | Path, merge: bool = True) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath, ppath = out / "cost_vs_tasks.json", out / "cost_vs_tasks.png"
    keep = ("tasks", "cost_reduction", "ideal_cost_reduction", "backbone")
    # and, where the point says, the serving options its repository was exported with (mtserve bench)
    new = [{k: p[k] for k in keep} | ({"serving": p["serving"]} if p.get("serving") else {}) for p in points]
    if merge and jpath.is_file():
        try:
            new = merge_points(json.loads(jpath.read_text()), new)
        except (json.JSONDecodeError, KeyError, TypeError):
            pass
    _write_json(jpath, new)
    plot_cost_vs_tasks(new, ppath)
    return {"cost_vs_tasks.json": jpath, "cost_vs_tasks.png": ppath}


def paired_markdown(rounds: list[dict] | None) -> list[str]:
    """One line on the paired check (loadtest/rate_search.py `paired_check`), when it ran."""
    if not rounds:
        return []
    parts = []
    for r in rounds:
        edges = "; ".join(
            f"{w} at {m['rate']:.3g}/s {'pass' if m['passed'] else 'fail'}"
            + ("" if m.get("again") is None else f", again {'pass' if m['again'] else 'fail'}")
            for edge in ("lo", "hi")
            for w, m in r[edge].items()
        )
        parts.append(f"round {r['round']} ({edges}): {r['verdict']}")
    return [
        "Paired check (each workload's highest pass and lowest fail measured again back to back, so the saving "
        "divides capacities judged on one machine; a bracket that does not hold twice in a row is searched "
        "again): " + "; ".join(parts) + ".",
        "",
    ]
