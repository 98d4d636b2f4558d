"""`mtserve loadtest --cross-check`: Triton's own perf_analyzer against the same server, beside our figures.

perf_analyzer (`make perf-analyzer` installs it into .tools/perf_analyzer/: scripts/install_perf_analyzer.sh)
measures one model at one request rate at a time (`--request-rate-range RATE`, constant intervals, `--percentile
99`), in windows until three agree within 10% (its `--stability-percentage`; at most `--max-trials` 10, else it
reports the rate unstable). Its own `--binary-search` gives up the whole search at the first unstable rate, which
on a shared 2-core machine is most runs, so the rates it measures are chosen by the Locust search's own
bracket-then-bisect (loadtest/rate_search.py; growth 1.5, to 5%), started at our figure: a rate passes when
perf_analyzer calls it stable, its p99 is within the SLO and it served 80% of the rate. It runs against
`multitask` and each `single_<task>` with the same utterances as the Locust search (`--input-data`).

What is compared:

- multitask: one call per utterance in both tools, so perf_analyzer's rate is directly our `max_rps`;
- per-task: perf_analyzer loads one model at a time, while an utterance of our per-task workload is one call
  to every `single_<task>` at once, done when the slowest answers. Run one after another on the same server,
  each model's capacity c_i is what the whole machine gives that model alone; if every utterance spends
  1/c_i of the machine in model i, the per-task deployments together serve 1 / sum_i (1 / c_i) utterances/s
  (`per_task_combined_rps`). That ignores that our utterance waits on the slowest of its calls (a stricter
  p99) and that the models share the batcher threads and cores when loaded together.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mtserve.core.errors import UserError
from mtserve.loadtest import protocol, stability
from mtserve.loadtest.rate_search import RateSearch, Step, judge
from mtserve.loadtest.workload import Utterance

ENV = "MTSERVE_PERF_ANALYZER"
INSTALLED = Path(".tools/perf_analyzer/perf_analyzer")  # where `make perf-analyzer` puts it
WINDOW_MS = 2000  # --measurement-interval: the short search's windows (perf_analyzer's default is 5000)
TOLERANCE_PCT = 10  # its default --stability-percentage
MAX_TRIALS = 10  # its default --max-trials
THREADS = 64  # --max-threads (default 4: at 60 ms a call, 4 synchronous threads cap the rate near 66/s)
GROWTH, REL_TOL, MAX_STEPS = 1.5, 0.05, 6  # the search over rates, started at our own figure
DISAGREE = 0.10  # the figures "disagree" beyond this relative difference


def find_perf_analyzer() -> str:
    """$MTSERVE_PERF_ANALYZER, .tools/perf_analyzer/perf_analyzer (make perf-analyzer), or perf_analyzer on PATH."""
    for candidate in (os.environ.get(ENV), str(INSTALLED), shutil.which("perf_analyzer")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(Path(candidate).resolve())
    raise UserError(
        f"perf_analyzer not found: run `make perf-analyzer` (installs it into {INSTALLED.parent}/), "
        f"or point {ENV} at one"
    )


def write_input_data(utterances: list[Utterance], path: Path, limit: int = 500) -> Path:
    """perf_analyzer's --input-data JSON: one batch-of-one request per utterance ("text", and "text_pair"
    when the utterance has one)."""
    rows = []
    for u in utterances[:limit]:
        row = {"text": [u.text]}
        if u.pair is not None:
            row["text_pair"] = [u.pair]
        rows.append(row)
    if not rows:
        raise UserError("no utterances for perf_analyzer's input data")
    path.write_text(json.dumps({"data": rows}))
    return path


def parse_csv(path: Path) -> list[dict]:
    """perf_analyzer's -f CSV: one row per rate it measured (latencies in microseconds) -> milliseconds."""
    points = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rate = row.get("Request Rate") or row.get("Concurrency")
            points.append(
                {
                    "offered_rps": float(rate),
                    "throughput_rps": float(row["Inferences/Second"]),
                    "p50_ms": float(row["p50 latency"]) / 1000.0,
                    "p99_ms": float(row["p99 latency"]) / 1000.0,
                }
            )
    return sorted(points, key=lambda p: p["offered_rps"])


def measure_rate(
    binary: str,
    url: str,
    model: str,
    rate: float,
    data: Path,
    work: Path,
    window_ms: int = WINDOW_MS,
    tolerance_pct: float = TOLERANCE_PCT,
    max_trials: int = MAX_TRIALS,
    timeout_s: float = 600.0,
) -> dict:
    """perf_analyzer at one request rate on one model: windows until 3 agree (or `max_trials`, then it reports
    the rate unstable). {"offered_rps", "throughput_rps", "p50_ms", "p99_ms", "stable", "seconds", ...}."""
    out = work / f"{model}-{rate:.2f}.csv"
    cmd = [
        binary,
        "-m",
        model,
        "-i",
        "grpc",
        "-u",
        url,
        "--input-data",
        str(data),
        "--request-rate-range",
        f"{rate:.2f}",
        "--request-distribution",
        "constant",
        "--percentile",
        "99",
        "--stability-percentage",
        f"{tolerance_pct:g}",
        "--max-trials",
        str(max_trials),
        "--measurement-interval",
        str(window_ms),
        # synchronous calls, one thread each in flight: enough threads that the rate is never capped by them
        "--max-threads",
        str(THREADS),
        "-f",
        str(out),
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    log = (proc.stdout or "") + (proc.stderr or "")
    (work / f"{model}-{rate:.2f}.log").write_text(log)
    points = parse_csv(out) if out.is_file() else []
    unstable = "failed to obtain stable measurement" in log.lower()
    # past capacity its calls time out and it stops with "Failed to maintain requested inference load": a fail
    errors = [
        line.strip() for line in log.splitlines() if "had error" in line or "Failed to maintain" in line
    ]
    if not points and not unstable and not errors:
        raise UserError(
            f"perf_analyzer on {model} at {rate:g}/s failed (exit {proc.returncode}):\n{log[-1500:]}"
        )
    point = (
        points[-1] if points else {"offered_rps": rate, "throughput_rps": 0.0, "p50_ms": None, "p99_ms": None}
    )
    return {
        **point,
        "offered_rps": rate,
        "stable": not unstable,
        "errors": len(errors),
        "error_examples": list(dict.fromkeys(errors))[:2],
        "exit_code": proc.returncode,
        "seconds": round(time.monotonic() - t0, 1),
        "command": " ".join(["perf_analyzer"] + cmd[1:])
        .replace(str(data), "INPUT.json")
        .replace(str(out), "OUT.csv"),
    }


def search_model(
    binary: str,
    url: str,
    model: str,
    slo_ms: float,
    start: float,
    data: Path,
    work: Path,
    window_ms: int = WINDOW_MS,
    rel_tol: float = REL_TOL,
    max_steps: int = MAX_STEPS,
    log=print,
) -> dict:
    """The highest rate perf_analyzer measures stable with p99 <= SLO on `model`: the Locust search's own
    bracket-then-bisect (loadtest/rate_search.py), starting at `start`, each rate one perf_analyzer run."""
    search = RateSearch(start, 1.0, 20.0 * start, growth=GROWTH, rel_tol=rel_tol, max_steps=max_steps)
    points = []
    while (rate := search.next_rate()) is not None:
        m = measure_rate(binary, url, model, rate, data, work, window_ms)
        points.append(m)
        st = Step(
            model,
            rate,
            m["throughput_rps"],
            int(m["throughput_rps"] * window_ms / 1000 * 3),
            m["errors"],
            math.nan if m["p50_ms"] is None else m["p50_ms"],
            math.nan if m["p99_ms"] is None else m["p99_ms"],
            duration_s=3 * window_ms / 1000,
            stability=stability.STABLE if m["stable"] else stability.UNSTABLE,
            stability_reason="perf_analyzer: failed to obtain stable measurement",
        )
        judge(st, slo_ms)
        if (
            not m["stable"] and not m["errors"]
        ):  # perf_analyzer reports no figures for a rate it could not stabilise
            st.passed = False
            st.reason = f"unstable: perf_analyzer found no 3 windows within {TOLERANCE_PCT}% in {MAX_TRIALS}"
        m["passed"], m["reason"] = st.passed, st.reason
        search.record(st)
        p99 = "n/a" if m["p99_ms"] is None else f"{m['p99_ms']:.1f} ms"
        log(
            f"loadtest: perf_analyzer {model:<14} {rate:7.1f}/s -> {m['throughput_rps']:7.1f}/s  p99 {p99}  "
            f"({m['seconds']:.0f} s) {'PASS' if st.passed else 'fail: ' + st.reason}"
        )
    r = search.result()
    return {
        "model": model,
        "max_rps": r["max_rps"],
        "max_rps_interval": r["max_rps_interval"],
        "p99_ms": r["p99_ms"] if r["max_rps"] > 0 else None,
        "outcome": r["outcome"],
        "unstable_rates": sum(1 for m in points if not m["stable"]),
        "seconds": round(sum(m["seconds"] for m in points), 1),
        "command": points[0]["command"] if points else "",
        "points": points,
    }


def cross_check(
    url: str,
    tasks: list[str],
    ours: dict,
    utterances: list[Utterance],
    slo_ms: float,
    *,
    window_ms: int = WINDOW_MS,
    log=print,
) -> dict:
    """perf_analyzer on `multitask` and each `single_<task>` at `url`, each search starting at our own figure
    (`ours`: capacity.json; a model alone at the tasks x our per-task rate). Returns crosscheck.json."""
    binary = find_perf_analyzer()
    mt_ours, pt_ours = ours["multitask"]["max_rps"], ours["per_task"]["max_rps"]
    with tempfile.TemporaryDirectory(prefix="mtserve-perf-analyzer-") as tmp:
        work = Path(tmp)
        data = write_input_data(utterances, work / "input.json")
        models = {}
        for model, start in [(protocol.MULTITASK, mt_ours)] + [
            (protocol.single_model(t), pt_ours * len(tasks)) for t in tasks
        ]:
            models[model] = search_model(
                binary, url, model, slo_ms, max(start, 5.0), data, work, window_ms, log=log
            )
    singles = [models[protocol.single_model(t)]["max_rps"] for t in tasks]
    combined = 1.0 / sum(1.0 / c for c in singles) if all(c > 0 for c in singles) else 0.0
    mt_pa = models[protocol.MULTITASK]["max_rps"]
    return {
        "slo_p99_ms": slo_ms,
        "perf_analyzer": {
            "version": perf_analyzer_version(binary),
            "window_ms": window_ms,
            "stability_percentage": TOLERANCE_PCT,
            "max_trials": MAX_TRIALS,
            "search": {"growth": GROWTH, "rel_tol": REL_TOL, "max_steps": MAX_STEPS},
            "models": models,
        },
        "multitask": {"ours_rps": mt_ours, "perf_analyzer_rps": mt_pa, "difference": _rel(mt_pa, mt_ours)},
        "per_task": {
            "ours_rps": pt_ours,
            "perf_analyzer_combined_rps": combined,
            "difference": _rel(combined, pt_ours),
            "combined_from": {protocol.single_model(t): c for t, c in zip(tasks, singles, strict=True)},
        },
        "cost_reduction": {
            "ours": ours.get("cost_reduction"),
            "perf_analyzer": (1.0 - combined / mt_pa) if mt_pa > 0 else None,
        },
    }


def perf_analyzer_version(binary: str) -> str:
    try:
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        out = proc.stdout + proc.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return next((line.strip() for line in out.splitlines() if "Version" in line), "")


def _rel(theirs: float, ours: float) -> float | None:
    """perf_analyzer's figure against ours: theirs / ours - 1."""
    return None if ours <= 0 else theirs / ours - 1.0


def crosscheck_markdown(x: dict) -> str:
    mt, pt, cr = x["multitask"], x["per_task"], x["cost_reduction"]
    pa = x["perf_analyzer"]

    def pct(v):
        return "n/a" if v is None or not math.isfinite(v) else f"{v:+.0%}"

    lines = [
        "# Cross-check: perf_analyzer against the Locust search",
        "",
        f"Same server, same utterances, SLO p99 <= {x['slo_p99_ms']:g} ms. {pa.get('version', 'perf_analyzer')}: "
        f"one run per request rate, windows of {pa['window_ms'] / 1000:g} s until 3 agree within "
        f"{pa['stability_percentage']}% (at most {pa['max_trials']}), the rates chosen by the Locust search's "
        "bracket-then-bisect (loadtest/crosscheck.py). Command per rate: "
        f"`{next(iter(pa['models'].values()))['command']}`.",
        "",
        "| | ours (Locust) | perf_analyzer | difference |",
        "|---|---:|---:|---:|",
        f"| multitask utterances/s | {mt['ours_rps']:.1f} | {mt['perf_analyzer_rps']:.1f} | {pct(mt['difference'])} |",
        f"| per-task utterances/s | {pt['ours_rps']:.1f} | {pt['perf_analyzer_combined_rps']:.1f} "
        f"(1 / sum of 1 / each model's) | {pct(pt['difference'])} |",
        f"| cost reduction | {_pct(cr['ours'])} | {_pct(cr['perf_analyzer'])} | |",
        "",
        "| model | perf_analyzer inferences/s within the SLO | interval | p99 there (ms) | rates tried "
        "| unstable rates | s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, r in pa["models"].items():
        iv = r["max_rps_interval"]
        lines.append(
            f"| {model} | {r['max_rps']:.1f} | {iv[0]:.1f} to {iv[1]:.1f} | "
            f"{'n/a' if r['p99_ms'] is None else format(r['p99_ms'], '.1f')} | {len(r['points'])} | "
            f"{r['unstable_rates']} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        "Every rate perf_analyzer measured:",
        "",
        "| model | offered/s | served/s | p50 ms | p99 ms | stable | result |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for model, r in pa["models"].items():
        for m in r["points"]:
            lines.append(
                f"| {model} | {m['offered_rps']:.1f} | {m['throughput_rps']:.1f} | {_ms(m['p50_ms'])} | "
                f"{_ms(m['p99_ms'])} | {'yes' if m['stable'] else 'no'} | {'pass' if m['passed'] else m['reason']} |"
            )
    far = [
        k
        for k, v in (("multitask", mt["difference"]), ("per-task", pt["difference"]))
        if v is not None and abs(v) > DISAGREE
    ]
    lines += [
        "",
        "Where the two differ by more than 10%: "
        + (", ".join(far) if far else "nowhere")
        + ". What differs between them by construction: perf_analyzer measures one model at a time, its p99 per "
        "call; our per-task utterance is one call to every `single_<task>` at once, held to the p99 of the "
        "slowest of them, with all the models loaded together; the per-task figure beside ours assumes each "
        "model's share of the machine adds up (1 / sum of 1 / c_i).",
        "",
    ]
    return "\n".join(lines)


def _ms(v) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.1%}"
