"""`mtserve loadtest`'s command line: the search's settings, the workload, the endpoints (loadtest/capacity.py runs
the search; mtserve/bench.py reuses these arguments)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import fields

from mtserve.core import exit_codes
from mtserve.core.errors import UserError
from mtserve.loadtest import mix as mixes
from mtserve.loadtest.capacity import SHORT, CapacitySearchConfig, run_capacity
from mtserve.loadtest.sizing import UTILISATION
from mtserve.loadtest.workload import POOL_SIZE, WORDS, Utterance, build_pool
from mtserve.serving.endpoint import add_connection_arguments, tls_from


def add_search_arguments(p: argparse.ArgumentParser, defaults: CapacitySearchConfig | None = None) -> None:
    d = defaults or CapacitySearchConfig()
    g = p.add_argument_group("search bounds")
    g.add_argument(
        "--slo-ms",
        type=float,
        default=d.slo_p99_ms,
        help=f"p99 latency SLO per utterance (default {d.slo_p99_ms:g})",
    )
    g.add_argument("--short", action="store_true", help="the short search make demo runs (< 3 minutes)")
    g.add_argument(
        "--min-rps",
        type=float,
        help=f"lowest rate tried; failing there = no rate meets the SLO (default {d.min_rps:g})",
    )
    g.add_argument("--max-rps", type=float, help=f"highest rate tried (default {d.max_rps:g})")
    g.add_argument("--start-rps", type=float, help="first rate tried (default: half the unloaded rate)")
    g.add_argument(
        "--growth", type=float, help=f"step factor before a bracket is found (default {d.growth:g})"
    )
    g.add_argument(
        "--rel-tol", type=float, help=f"bisect until fail/pass <= 1 + this (default {d.rel_tol:g})"
    )
    g.add_argument("--max-steps", type=int, help=f"steps per workload (default {d.max_steps})")
    g.add_argument(
        "--duration",
        type=float,
        dest="min_duration",
        help=f"shortest measurement window, s (default {d.min_duration_s:g})",
    )
    g.add_argument(
        "--max-duration", type=float, help=f"longest measurement window, s (default {d.max_duration_s:g})"
    )
    g.add_argument("--min-samples", type=int, help=f"utterances a window aims for (default {d.min_samples})")
    g.add_argument(
        "--warmup", type=float, help=f"seconds before each step's windows (default {d.warmup_s:g})"
    )
    g.add_argument(
        "--stable-windows",
        type=int,
        help=f"windows per step that must agree (default {d.stable_windows}; 1: one window decides)",
    )
    g.add_argument(
        "--stability-tolerance",
        type=float,
        help=f"how far apart (fraction) their served rates and p99s may be (default {d.stability_tolerance:g}, "
        "perf_analyzer's 10%%)",
    )
    g.add_argument(
        "--max-windows",
        type=int,
        help=f"windows per step at most; not stable by then = unstable, a fail (default {d.max_windows})",
    )
    g.add_argument("--max-users", type=int, help=f"Locust users per step at most (default {d.max_users})")
    g.add_argument("--max-time", type=float, help=f"seconds for the whole search (default {d.max_time_s:g})")
    g.add_argument(
        "--max-requests", type=int, help=f"utterances for the whole search (default {d.max_requests})"
    )
    g.add_argument("--request-timeout", type=float, help="seconds per Triton call (default 10 x SLO, 2..30)")


def search_config(args) -> CapacitySearchConfig:
    base = dict(SHORT) if getattr(args, "short", False) else {}
    mapping = {
        "min_rps": "min_rps",
        "max_rps": "max_rps",
        "start_rps": "start_rps",
        "growth": "growth",
        "rel_tol": "rel_tol",
        "max_steps": "max_steps",
        "min_duration": "min_duration_s",
        "max_duration": "max_duration_s",
        "min_samples": "min_samples",
        "warmup": "warmup_s",
        "stable_windows": "stable_windows",
        "stability_tolerance": "stability_tolerance",
        "max_windows": "max_windows",
        "max_users": "max_users",
        "max_time": "max_time_s",
        "max_requests": "max_requests",
        "request_timeout": "request_timeout_s",
    }
    for arg, field_name in mapping.items():
        v = getattr(args, arg, None)
        if v is not None:
            base[field_name] = v
    base["slo_p99_ms"] = args.slo_ms
    known = {f.name for f in fields(CapacitySearchConfig)}
    return CapacitySearchConfig(**{k: v for k, v in base.items() if k in known})


def add_workload_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("utterances")
    g.add_argument(
        "--utterances",
        action="append",
        metavar="SRC",
        help="corpus (default), a GLUE task name (with --glue-dir) or a file of lines (text<TAB>pair); repeatable",
    )
    g.add_argument(
        "--mix",
        help="a traffic mix file (YAML: task sets and groups, each with its share, or zipf: s; docs/loadtest.md): "
        "utterances need one entry's tasks instead of every task; or, as numbers, the weights of the --utterances "
        "sources, e.g. 3,1",
    )
    g.add_argument(
        "--words", default=WORDS, help=f"utterance length in words: natural, N or MIN:MAX (default {WORDS})"
    )
    g.add_argument("--glue-dir", help="folder holding GLUE's task folders")
    g.add_argument(
        "--pool-size", type=int, default=POOL_SIZE, help=f"utterances drawn for the run (default {POOL_SIZE})"
    )
    g.add_argument("--seed", type=int, default=0)


def configure(p: argparse.ArgumentParser) -> None:
    where = p.add_argument_group("server")
    where.add_argument("--repo", help="model repository: start a local Triton on it (and stop it afterwards)")
    where.add_argument("--url", help="gRPC address HOST:PORT of a running Triton / KServe endpoint")
    where.add_argument(
        "--per-task-url",
        help="the per-task deployments, when they are other endpoints: one HOST:PORT, a map "
        "'a=HOST:PORT,b=HOST:PORT' or a template '{task}.models.example.com:443' ({task_dns}: _ as -)",
    )
    add_connection_arguments(where)
    where.add_argument(
        "--per-task-authority",
        help="the per-task deployments' :authority: a host, a map or a template, e.g. "
        "'mtserve-{task_dns}.mtserve.example.com' (default: none; --authority when --per-task-url is not given)",
    )
    where.add_argument(
        "--registry", help="registry.json of the served repository (default: <repo>/registry.json)"
    )
    where.add_argument(
        "--tasks", help="comma-separated tasks every utterance needs (default: all the ensemble serves)"
    )
    where.add_argument(
        "--ready-timeout", type=float, default=300.0, help="seconds to wait for a local Triton (default 300)"
    )
    gen = p.add_argument_group("load generators")
    gen.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Locust processes generating the load: 1 (default) runs the users in the measuring process, "
        "N > 1 starts N local `locust --worker` processes under a Locust master",
    )
    gen.add_argument(
        "--expect-workers",
        type=int,
        default=0,
        help="run as a Locust master and wait for this many workers started elsewhere "
        "(`locust -f <locustfile> --worker --master-host THIS_HOST`; k8s/loadtest)",
    )
    gen.add_argument(
        "--master-bind",
        default="",
        help="HOST:PORT the Locust master listens on (default 127.0.0.1 and a free port; "
        "0.0.0.0:5557 for workers on other machines)",
    )
    p.add_argument(
        "--out",
        default="reports",
        help="folder for capacity.json / capacity.md / latency_vs_rate.png (and Locust's per-step reports in locust/)",
    )
    p.add_argument(
        "--require-rps",
        type=float,
        default=None,
        metavar="RPS",
        help="exit 1 unless the multitask deployment meets the SLO at this rate or more (a CI gate; without it, "
        "the exit is 1 only when a deployment meets the SLO at no rate)",
    )
    p.add_argument(
        "--target-rps",
        type=float,
        default=1000.0,
        help="utterances per second to size the fleet for in capacity.md (default 1000)",
    )
    p.add_argument(
        "--cross-check",
        action="store_true",
        help="after the search, run Triton's perf_analyzer (make perf-analyzer) on multitask and each "
        "single_<task> at the same SLO, on the same server: crosscheck.{json,md} beside capacity.md",
    )
    p.add_argument(
        "--utilisation",
        type=float,
        default=UTILISATION,
        help=f"the fraction of its measured capacity each replica is sized to run at (default {UTILISATION:g}: "
        "what the soak test holds)",
    )
    add_search_arguments(p)
    add_workload_arguments(p)


def utterances_from(args) -> list[Utterance]:
    weights = None if mixes.is_mix_file(args.mix) else args.mix
    return build_pool(
        args.utterances or ["corpus"], weights, args.words, args.pool_size, args.seed, args.glue_dir
    )


def run(args) -> int:
    if not args.repo and not args.url:
        raise UserError("give --repo DIR (start a local Triton) or --url HOST:PORT (a running endpoint)")
    if args.repo and args.url:
        raise UserError("give --repo or --url, not both")
    if args.target_rps <= 0:
        raise UserError("--target-rps must be > 0")
    if args.require_rps is not None and args.require_rps <= 0:
        raise UserError("--require-rps must be > 0")
    if not 0 < args.utilisation <= 1:
        raise UserError(f"--utilisation must be in (0, 1], got {args.utilisation:g}")
    cfg = search_config(args)
    if args.expect_workers > 0 and args.workers > 1:
        raise UserError("give --workers (local processes) or --expect-workers (started elsewhere), not both")
    if args.expect_workers > 0 and args.max_users is None:
        cfg = dataclasses.replace(cfg, max_users=cfg.max_users * args.expect_workers)
    elif args.workers > 1 and args.max_users is None:
        cfg = dataclasses.replace(cfg, max_users=cfg.max_users * args.workers)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    result = run_capacity(
        repo=args.repo,
        url=args.url,
        out_dir=args.out,
        cfg=cfg,
        per_task_url=args.per_task_url,
        tasks=tasks,
        utterances=utterances_from(args),
        registry_path=args.registry,
        target_rps=args.target_rps,
        utilisation=args.utilisation,
        seed=args.seed,
        ready_timeout=args.ready_timeout,
        authority=args.authority,
        per_task_authority=args.per_task_authority,
        tls=tls_from(args),
        workers=args.workers,
        expect_workers=args.expect_workers,
        master_bind=args.master_bind or None,
        cross_check=args.cross_check,
        mix=mixes.read(args.mix) if mixes.is_mix_file(args.mix) else None,
    )
    c = result["capacity"]
    print(json.dumps(c, indent=2))
    failed = slo_failures(c, args.require_rps)
    for line in failed:
        print(f"mtserve loadtest: {line}", file=sys.stderr)
    return exit_codes.FAILED if failed else exit_codes.OK


def _ms(x) -> str:
    return "unknown" if x is None else f"{x:.1f} ms"


def slo_failures(capacity: dict, require_rps: float | None = None) -> list[str]:
    """Why the run fails its gate (exit 1): a deployment that met the p99 SLO at no rate, or a multitask rate under
    --require-rps. Empty: it passed."""
    slo = capacity["slo_p99_ms"]
    out = [
        f"{name}: no rate meets the p99 SLO of {slo:g} ms (p99 {_ms(capacity[key]['p99_ms'])} at the lowest rate)"
        for key, name in (("multitask", "multitask"), ("per_task", "per-task"))
        if not capacity[key]["max_rps"] > 0
    ]
    if require_rps is not None and capacity["multitask"]["max_rps"] < require_rps:
        out.append(
            f"multitask meets the SLO up to {capacity['multitask']['max_rps']:g} utterances/s, under the "
            f"--require-rps {require_rps:g}"
        )
    return out
