# Over 500 lines: the capacity search as one procedure - pre-flight, the alternating steps, the local server.
"""`mtserve loadtest`: how many utterances per second the multitask deployment serves within a p99 SLO,
against one deployment per task, measured in the same run on a real Triton over gRPC.

    mtserve loadtest --repo model_repository/multitask --slo-ms 200          # starts and stops a local Triton
    mtserve loadtest --url triton.example:9000 --registry registry.json       # a running endpoint (KServe)
    mtserve loadtest --url gw:443 --tls --authority mtserve.mtserve.example.com \
        --per-task-url gw:443 --per-task-authority 'mtserve-{task_dns}.mtserve.example.com' --workers 4

1. pre-flight: every address answers, `multitask` is served at --url and each task's `single_<task>` at
   its own per-task endpoint (a clear error naming the task, the address and the model if not);
2. a Locust worker process (loadtest/locust_process.py) sends a few utterances one at a time per workload: the
   unloaded latency. A workload whose unloaded p50 is already over the SLO has no rate that meets it;
3. the search (loadtest/rate_search.py): per workload, step then bisect on the offered utterance rate,
   both workloads alternating step by step; each step runs Locust headless with constant-throughput
   users, in the worker process or spread over Locust workers (--workers N local processes, or
   --expect-workers N started elsewhere, e.g. k8s/loadtest); bounded in steps, time and utterances.
   Each step repeats its window until three agree (loadtest/stability.py, perf_analyzer's rule) or reports
   itself unstable; every maximum rate and the saving carry an interval. Triton's own statistics are read
   before and after each step's windows;
4. reports (loadtest/capacity_report.py): capacity.json, capacity.md (replicas at --utilisation, loadtest/sizing.py),
   latency_vs_rate.png, and Locust's own CSV and HTML reports of every step under locust/;
5. with --cross-check, Triton's perf_analyzer on the same server (loadtest/crosscheck.py): crosscheck.{json,md}.

`short_capacity` is the < 3 minute version `make demo` runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

from mtserve.core import registry
from mtserve.core.errors import Unreachable, UserError
from mtserve.loadtest import cpu_steal, protocol
from mtserve.loadtest.capacity_config import SHORT, CapacitySearchConfig
from mtserve.loadtest.locust_driver import LocustWorker
from mtserve.loadtest.mix import Mix
from mtserve.loadtest.mix import make_plan as mix_plan
from mtserve.loadtest.mix_costs import mix_capacity, mix_ideal
from mtserve.loadtest.rate_search import (
    NO_RATE_MEETS_SLO,
    Budget,
    RateSearch,
    Step,
    alternate,
    judge,
    paired_check,
)
from mtserve.loadtest.sizing import UTILISATION, sizing
from mtserve.loadtest.workload import Utterance, build_pool
from mtserve.serving.endpoint import TLS

# With --repo, Locust and the local Triton share every CPU unless told otherwise: on this 2-core machine a CPU of
# Locust's own halved the server and did not steady the saving (docs/results/capacity-stability-split2.md)
LOAD_GENERATOR_CPUS = 0
SETTLE_S = 5.0  # at most this long before each step, waiting for the server to be idle again
WORKERS_TIMEOUT_S = 300.0  # Locust workers (local or in a cluster) must connect within this
WORKLOAD_KEYS = {
    protocol.MULTITASK: "multitask",
    protocol.PER_TASK: "per_task",
    protocol.EVERY_HEAD: "every_head",
}


# ---------------------------------------------------------------- pre-flight
def check_reachable(url: str, timeout: float = 3.0) -> None:
    """A TCP connection to host:port, so an unreachable address fails in seconds with a clear message."""
    protocol.check_reachable(url, "Triton", timeout)


def preflight(
    url: str,
    per_task_url: str | None = None,
    tasks: list[str] | None = None,
    timeout: float = 10.0,
    targets: protocol.Targets | None = None,
) -> protocol.Plan:
    """The plan of both workloads, checked: `targets` (endpoints with authority and TLS), or the plain
    addresses `url` and `per_task_url` (an address, a map or a template)."""
    if targets is None:
        targets = protocol.Targets(protocol.normalize_url(url), per_task_url=per_task_url or None)
    check_reachable(targets.multitask().address)
    return protocol.make_plan(targets, tasks, timeout=timeout)


def ideal_cost_reduction(
    reg: registry.Registry | None, tasks: list[str]
) -> tuple[float | None, int | None, int | None]:
    """1 - layers_served / layers_baseline: (trunk layers + each task's own layers) against a full BERT per task."""
    if reg is None or not tasks or any(t not in reg.tasks for t in tasks):
        return None, None, None
    served, baseline = reg.layers_served(tasks), reg.layers_baseline(tasks)
    return 1.0 - served / baseline, served, baseline


def load_registry(path: str | Path | None) -> registry.Registry | None:
    """The served repository's registry (validated), or None when there is no such file."""
    if path is None or not Path(path).is_file():
        return None
    return registry.read(path)


# ---------------------------------------------------------------- the search
def _step_from(reply: dict) -> Step:
    nan = float("nan")
    num = lambda k: nan if reply.get(k) is None else float(reply[k])  # noqa: E731
    extra = {
        k: reply.get(k)
        for k in (
            "p90_ms",
            "max_ms",
            "warmup_s",
            "undrained",
            "client_cpu_warning",
            "models",
            "server",
            "server_window_s",
            "generators",
            "locust_reports",
            "window_s",
            "pooled_windows",
        )
    }
    return Step(
        reply["workload"],
        float(reply["offered_rps"]),
        float(reply["achieved_rps"]),
        int(reply["count"]),
        int(reply["errors"]),
        num("p50_ms"),
        num("p99_ms"),
        int(reply["users"]),
        float(reply["duration_s"]),
        error_examples=list(reply.get("error_examples") or []),
        extra=extra,
        windows=list(reply.get("windows") or []),
        stability=str(reply.get("stability") or ""),
        stability_reason=str(reply.get("stability_reason") or ""),
    )


def measure_capacity(
    url: str,
    cfg: CapacitySearchConfig,
    *,
    per_task_url: str | None = None,
    tasks: list[str] | None = None,
    utterances: list[Utterance] | None = None,
    reg: registry.Registry | None = None,
    seed: int = 0,
    log=print,
    targets: protocol.Targets | None = None,
    workers: int = 1,
    expect_workers: int = 0,
    master_bind: str | None = None,
    locust_dir: str | Path | None = None,
    mix: Mix | None = None,
    load_generator_cpus: frozenset[int] | None = None,
) -> dict:
    """Run the whole search against running deployments. Returns {"capacity": <capacity.json>, "details"}.

    `mix` (loadtest/mix.py): utterances need the tasks of the mix's entries, by share, instead of every task
    (`tasks`); the multitask side routes them like the client, and a third workload sends them to `multitask`.

    `targets` says where each deployment is (endpoints, authority, TLS); without it, `url` and
    `per_task_url`. `workers` > 1 runs the users in that many local Locust worker processes,
    `expect_workers` > 0 waits for that many started elsewhere (connecting to `master_bind`).
    `load_generator_cpus`: the CPUs Locust's processes may run on (None: every CPU)."""
    t_start = time.monotonic()
    if targets is None:
        targets = protocol.Targets(protocol.normalize_url(url), per_task_url=per_task_url or None)
    url = targets.multitask().address
    if mix is not None:
        if tasks:
            raise UserError("give --tasks (every utterance needs them) or --mix (a traffic mix), not both")
        check_reachable(url)
        plan, mix, paths = mix_plan(targets, mix)
        for e in plan.mix:
            calls = " + ".join(f"{c['model']}({','.join(c['tasks'])})" for c in e["calls"])
            log(f"loadtest: mix entry {e['name']!r} share {e['share']:.3f}: {calls}, {e['layers']} layers")
    else:
        plan = preflight(url, tasks=tasks, targets=targets)
    pt_url = targets.per_task_url or url
    pool = utterances or build_pool(seed=seed)
    log(
        f"loadtest: {len(plan.tasks)} task(s) {plan.tasks}; SLO p99 <= {cfg.slo_p99_ms:g} ms; {len(pool)} utterances"
    )
    notes: list[str] = []
    if workers < 1 or expect_workers < 0:
        raise UserError("--workers must be >= 1 and --expect-workers >= 0")
    if workers > (os.cpu_count() or 1):
        log(f"loadtest: {workers} worker processes on {os.cpu_count()} CPUs: they will compete for them")
    with LocustWorker(load_generator_cpus) as worker:
        setup = worker.call(
            {
                "op": "setup",
                "plan": plan.to_dict(),
                "utterances": [u.to_list() for u in pool],
                "timeout": cfg.timeout_s,
                "seed": seed,
                "workers": workers,
                "expect_workers": expect_workers,
                "master_bind": master_bind or "",
                "workers_timeout": WORKERS_TIMEOUT_S,
            },
            timeout=60 + WORKERS_TIMEOUT_S,
        )
        generators = int(setup.get("load_generators", 1))
        if generators > 1:
            log(f"loadtest: {generators} Locust workers connected")
        budget = Budget(cfg.max_time_s, cfg.max_requests)  # the search's time: from here, workers are up

        # 1. unloaded latency, one utterance at a time (a couple first to warm every model up)
        probe = {}
        for w in plan.workloads():
            worker.call({"op": "probe", "workload": w, "n": 2}, timeout=cfg.timeout_s * 4 + 60)
            p = worker.call(
                {"op": "probe", "workload": w, "n": cfg.probe_n},
                timeout=cfg.timeout_s * 2 * (cfg.probe_n + 1) + 60,
            )
            if p["errors"]:
                raise UserError(
                    f"{w}: {p['errors']} of {p['count']} probe utterances failed: "
                    f"{'; '.join(p['error_examples'])}"
                )
            probe[w] = {k: p[k] for k in ("count", "p50_ms", "p99_ms", "max_ms")}
            log(f"loadtest: {w:<9} unloaded p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms")

        if cfg.slo_auto_factor > 0:
            slowest = max(p["p50_ms"] for p in probe.values())
            slo = max(cfg.slo_p99_ms, 10.0 * math.ceil(cfg.slo_auto_factor * slowest / 10.0))
            if slo != cfg.slo_p99_ms:
                notes.append(
                    f"SLO raised from {cfg.slo_p99_ms:g} to {slo:g} ms: {cfg.slo_auto_factor:g} x the "
                    f"slower workload's unloaded p50 ({slowest:.1f} ms)"
                )
                log(f"loadtest: {notes[-1]}")
                cfg = dataclasses.replace(cfg, slo_p99_ms=slo)

        # 2. the searches, alternating
        searches = {}
        for w in plan.workloads():
            p50 = probe[w]["p50_ms"]
            start = cfg.start_rps or cfg.start_factor * 1000.0 / max(p50, 1e-3)
            s = RateSearch(
                start,
                cfg.min_rps,
                cfg.max_rps,
                cfg.growth,
                cfg.rel_tol,
                cfg.max_steps,
                confirm=cfg.confirm_fail,
            )
            if p50 > cfg.slo_p99_ms:
                s.stop(f"{NO_RATE_MEETS_SLO} (unloaded p50 {p50:.1f} ms > SLO {cfg.slo_p99_ms:g} ms)")
            searches[w] = s

        def cost(w: str, rate: float) -> tuple[float, int]:
            # a stable step's time (a step that needs more windows runs over the budget by those)
            seconds = cfg.warmup(rate) + cfg.stable_windows * (cfg.duration(rate) + 0.3) + 2.0
            return seconds, int(math.ceil(rate * seconds))

        def measure(w: str, rate: float) -> Step:
            duration, warmup = cfg.duration(rate), cfg.warmup(rate)
            csv_prefix = (
                str(Path(locust_dir) / f"step{len(measured) + 1:02d}-{w}-{rate:.4g}rps")
                if locust_dir is not None
                else ""
            )
            stolen_before = cpu_steal.read()
            reply = worker.call(
                {
                    "op": "measure",
                    "workload": w,
                    "rate": rate,
                    "users": cfg.users(rate),
                    "duration": duration,
                    "warmup": warmup,
                    "spawn": min(1.0, warmup),
                    "settle_ms": 2 * probe[w]["p50_ms"] + 5.0,
                    "settle_s": SETTLE_S,
                    "timeout": cfg.timeout_s,
                    "csv_prefix": csv_prefix,
                    "windows": {
                        "need": cfg.stable_windows,
                        "max": cfg.max_windows,
                        "tolerance": cfg.stability_tolerance,
                        "slo_ms": cfg.slo_p99_ms,
                    },
                },
                timeout=SETTLE_S + warmup + cfg.max_windows * (duration + 3 * cfg.timeout_s) + 90,
            )
            step = judge(_step_from(reply), cfg.slo_p99_ms)
            step.extra[cpu_steal.KEY] = cpu_steal.share(stolen_before, cpu_steal.read())
            if step.errors:  # a server that went away is a failed run, not a rate that fails the SLO
                for u in dict.fromkeys(e.address for e in plan.endpoints.values()):
                    try:
                        check_reachable(u)
                    except UserError as e:
                        raise Unreachable(f"Triton stopped answering during the search ({e})") from None
            return step

        measured: list[Step] = []

        def on_step(st: Step) -> None:
            measured.append(st)
            n = len(measured) + sum(s.steps_left() for s in searches.values())
            elapsed = time.monotonic() - budget.started
            log(
                f"loadtest: {time.strftime('%H:%M:%S')} step {len(measured)} of ~{n} "
                f"({elapsed:.0f} s of {budget.max_seconds:g} s)  {st.workload:<9} offered {st.offered_rps:7.2f}/s  "
                f"served {st.achieved_rps:7.2f}/s  p50 {st.p50_ms:6.1f} ms  p99 {st.p99_ms:6.1f} ms  "
                f"n={st.count:<5} {len(st.windows)} window(s) {st.stability or ''}  "
                f"{'PASS' if st.passed else 'fail: ' + st.reason}"
            )
            if st.extra.get("client_cpu_warning"):
                notes.append(f"{st.workload} at {st.offered_rps:.3g}/s: the Locust process hit 90% CPU")

        alternate(searches, measure, cost, budget, on_step)
        # 3. every bracket measured again back to back: the saving divides capacities judged on one machine
        paired = paired_check(searches, measure, cost, budget, on_step, rounds=cfg.paired_rounds)
        for rec in paired:
            log(f"loadtest: paired check, round {rec['round']}: {rec['verdict']}")

    results = {w: s.result() for w, s in searches.items()}
    for w, r in results.items():
        if r["max_rps"] == 0.0:
            if not math.isfinite(r["p99_ms"]):
                r["p99_ms"] = probe[w]["p99_ms"]
            notes.append(f"{w}: {NO_RATE_MEETS_SLO} (p99 <= {cfg.slo_p99_ms:g} ms); {r['outcome']}")
    mt, pt = results[protocol.MULTITASK], results[protocol.PER_TASK]
    cost_reduction_interval = reduction_interval(mt["max_rps_interval"], pt["max_rps_interval"])
    if mt["max_rps"] > 0:
        cost_reduction = 1.0 - pt["max_rps"] / mt["max_rps"]
    else:
        cost_reduction = None
        notes.append("cost_reduction is undefined: the multitask deployment met the SLO at no rate")
    if mix is None:
        ideal, served, baseline = ideal_cost_reduction(reg, plan.tasks)
    else:
        ideal, served, baseline = mix_ideal(reg, plan, paths)
    if ideal is None:
        notes.append("ideal_cost_reduction unknown: no registry.json (give --registry)")
    best = {
        WORKLOAD_KEYS[w]: max(
            (st for st in measured if st.workload == w and st.passed),
            key=lambda st: st.offered_rps,
            default=None,
        )
        for w in plan.workloads()
    }
    capacity = {
        "tasks": len(plan.tasks),
        "slo_p99_ms": float(cfg.slo_p99_ms),
        "multitask": _workload_capacity(mt),
        "per_task": _workload_capacity(pt),
        "cost_reduction": cost_reduction,
        "cost_reduction_interval": cost_reduction_interval,
        "ideal_cost_reduction": ideal,
        # beside the DESIGN schema: Triton's per-model statistics at each workload's highest passing rate
        "server": {
            k: None if st is None else {"offered_rps": st.offered_rps, "models": st.extra.get("server") or {}}
            for k, st in best.items()
        },
    }
    if mix is not None:
        eh = results[protocol.EVERY_HEAD]
        capacity["every_head"] = _workload_capacity(eh)
        if eh["max_rps"] == 0.0:
            notes.append("every_head_reduction is undefined: multitask for every head met the SLO at no rate")
        capacity = mix_capacity(capacity, plan, mix, paths, reg)
    details = {
        "url": url,
        "per_task_url": pt_url,
        "endpoints": {m: e.describe() for m, e in plan.endpoints.items()},
        "load_generators": generators,
        "task_names": plan.tasks,
        "backbone": reg.backbone if reg else None,
        "num_layers": reg.num_layers if reg else None,
        "layers_served": served,
        "layers_baseline": baseline,
        "settings": asdict(cfg),
        "request_timeout_s": cfg.timeout_s,
        "probe": probe,
        "results": {WORKLOAD_KEYS[w]: r for w, r in results.items()},
        "steps": [st.to_dict() for st in measured],  # in the order they ran (the workloads alternate)
        "paired_check": paired,
        "notes": notes,
        "wall_s": time.monotonic() - t_start,
        "utterances": len(pool),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return {"capacity": capacity, "details": details}


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _workload_capacity(r: dict) -> dict:
    return {
        "max_rps": float(r["max_rps"]),
        "max_rps_interval": [float(x) for x in r["max_rps_interval"]],
        "p99_ms": _finite(r["p99_ms"]),
        "p99_ms_interval": [_finite(x) for x in r["p99_ms_interval"]],
    }


def reduction_interval(multitask: list[float], per_task: list[float]) -> list[float] | None:
    """The saving 1 - per_task / multitask over the two capacities' intervals: [lowest, highest] (null when the
    multitask interval reaches 0)."""
    if multitask[0] <= 0:
        return None
    return [1.0 - per_task[1] / multitask[0], 1.0 - per_task[0] / multitask[1]]


def placement(load_generator_cpus: int) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(a local server's CPUs, the load generator's): the last `load_generator_cpus` of the CPUs this process may
    use go to Locust, the others to Triton. (None, None), every CPU shared, for 0 or when fewer would be left to
    the server than one CPU."""
    usable = sorted(os.sched_getaffinity(0))
    if load_generator_cpus <= 0 or load_generator_cpus >= len(usable):
        return None, None
    return frozenset(usable[:-load_generator_cpus]), frozenset(usable[-load_generator_cpus:])


@contextlib.contextmanager
def serving(
    repo: str | Path | None,
    url: str | None,
    ready_timeout: float = 300.0,
    log=print,
    cpus: frozenset[int] | None = None,
):
    """Yields the gRPC address: `url` as given, or a local Triton started on `repo` (stopped afterwards), on `cpus`
    when given."""
    if (repo is None) == (url is None):
        raise UserError("give exactly one of --repo (start a local Triton) and --url (a running endpoint)")
    if url is not None:
        yield protocol.normalize_url(url)
        return
    from mtserve.serving.memory import check_fits, estimate_repository
    from mtserve.serving.triton import TritonServer

    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise UserError(f"model repository not found: {repo}")
    check_fits(estimate_repository(repo), f"serving {repo}")
    server = TritonServer(repo, cpus=cpus)
    on = f" on CPUs {','.join(map(str, sorted(cpus)))}" if cpus else ""
    log(f"loadtest: starting Triton on {repo}{on} ...")
    try:
        server.start(timeout=ready_timeout)
    except RuntimeError as e:
        raise UserError(f"Triton did not start on {repo}: {e}") from None
    log(f"loadtest: Triton ready at {server.grpc_url} ({server.startup_seconds:.0f} s)")
    try:
        yield server.grpc_url
    finally:
        server.stop()


def run_capacity(
    *,
    repo: str | Path | None = None,
    url: str | None = None,
    out_dir: str | Path | None = "reports",
    cfg: CapacitySearchConfig | None = None,
    per_task_url: str | None = None,
    tasks: list[str] | None = None,
    utterances: list[Utterance] | None = None,
    registry_path: str | Path | None = None,
    target_rps: float = 1000.0,
    utilisation: float = UTILISATION,
    seed: int = 0,
    ready_timeout: float = 300.0,
    log=print,
    authority: str | None = None,
    per_task_authority: str | None = None,
    tls: TLS | None = None,
    workers: int = 1,
    expect_workers: int = 0,
    master_bind: str | None = None,
    cross_check: bool = False,
    mix: Mix | None = None,
    load_generator_cpus: int = LOAD_GENERATOR_CPUS,
) -> dict:
    """Serve (or reach), search, and write the reports into `out_dir` (None: write nothing).

    `load_generator_cpus` (with `repo`): that many CPUs are kept for Locust alone, the local Triton gets the others
    (`placement`); 0 lets them share every CPU.

    `mix`: a traffic mix (loadtest/mix.py) instead of every task per utterance.

    `cross_check`: then run Triton's perf_analyzer on the same server (loadtest/crosscheck.py) and write its
    figures beside ours (crosscheck.json / crosscheck.md).

    `per_task_url` / `per_task_authority`: an address, a map or a template (protocol.Targets)."""
    cfg = cfg or CapacitySearchConfig()
    if repo is not None and not Path(repo).expanduser().is_dir():
        raise UserError(f"model repository not found: {repo}")
    if registry_path is None and repo is not None:
        registry_path = registry.path(repo)
    reg = load_registry(registry_path)
    if registry_path is not None and reg is None:
        log(f"loadtest: no registry at {registry_path}: ideal_cost_reduction will be null")
    if cross_check and mix is not None:
        raise UserError("--cross-check runs perf_analyzer on every-task requests: not with --mix")
    if cross_check:
        from mtserve.loadtest.crosscheck import find_perf_analyzer

        find_perf_analyzer()  # before the search: a missing tool is an error now, not after minutes
    server_cpus, generator_cpus = placement(load_generator_cpus) if repo is not None else (None, None)
    if repo is not None and load_generator_cpus > 0 and server_cpus is None:
        log(f"loadtest: {len(os.sched_getaffinity(0))} CPU(s): Triton and Locust share them")
    with serving(repo, url, ready_timeout, log, cpus=server_cpus) as grpc_url:
        targets = protocol.Targets(grpc_url, authority, per_task_url or None, per_task_authority, tls)
        result = measure_capacity(
            grpc_url,
            cfg,
            tasks=tasks,
            utterances=utterances,
            reg=reg,
            seed=seed,
            log=log,
            targets=targets,
            workers=workers,
            expect_workers=expect_workers,
            master_bind=master_bind,
            locust_dir=None if out_dir is None else Path(out_dir) / "locust",
            mix=mix,
            load_generator_cpus=generator_cpus,
        )
        if cross_check:
            from mtserve.loadtest.crosscheck import cross_check as perf_analyzer_check

            result["cross_check"] = perf_analyzer_check(
                grpc_url,
                result["details"]["task_names"],
                result["capacity"],
                utterances or build_pool(seed=seed),
                cfg.slo_p99_ms,
                log=log,
            )
    if repo is not None:
        result["details"]["repo"] = str(repo)
    result["details"]["cpus"] = {
        "triton": sorted(server_cpus) if server_cpus else None,
        "load_generator": sorted(generator_cpus) if generator_cpus else None,
    }
    result["capacity"]["sizing"] = sizing(result["capacity"], target_rps, utilisation)
    if out_dir is not None:
        from mtserve.loadtest.capacity_report import write_capacity_reports

        paths = write_capacity_reports(result, out_dir, target_rps=target_rps, utilisation=utilisation)
        result["paths"] = {k: str(v) for k, v in paths.items()}
        log(f"loadtest: wrote {', '.join(str(p) for p in paths.values())}")
    return result


def short_capacity(
    repo_or_url: str | Path,
    out_dir: str | Path | None = "reports",
    slo_p99_ms: float = 200.0,
    *,
    registry_path: str | Path | None = None,
    tasks: list[str] | None = None,
    max_time_s: float = SHORT["max_time_s"],
    target_rps: float = 1000.0,
    utterances: list[Utterance] | None = None,
    log=print,
    mix: Mix | None = None,
    **overrides,
) -> dict:
    """The short search `make demo` runs: at most `max_time_s` of searching (450 s, steps that need more windows
    than 3 run over it by those), on top of the server's start when `repo_or_url` is a repository folder
    (anything else is a running endpoint's gRPC address; give `registry_path` then, for the ideal).
    Extra keyword arguments override CapacitySearchConfig fields. Returns run_capacity's result:
    result["capacity"] is what capacity.json holds; reports are written to `out_dir` (None: not written)."""
    cfg = CapacitySearchConfig(**{**SHORT, "slo_p99_ms": slo_p99_ms, "max_time_s": max_time_s, **overrides})
    is_repo = Path(str(repo_or_url)).expanduser().is_dir()
    return run_capacity(
        repo=repo_or_url if is_repo else None,
        url=None if is_repo else str(repo_or_url),
        out_dir=out_dir,
        cfg=cfg,
        tasks=tasks,
        utterances=utterances,
        registry_path=registry_path,
        target_rps=target_rps,
        log=log,
        mix=mix,
    )
