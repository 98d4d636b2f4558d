"""`mtserve bench` (make bench): the full capacity search on the exported repository, then the cost curve
against the number of tasks, measured on synthetic repositories (export/synthetic.py).

    mtserve bench                                   # model_repository/multitask, then N = 2..32 (demo shape)
                                                    # and N = 21 on BERT-base's shape
    mtserve bench --no-main --sweep 2,4,8 --quick   # a small sweep with short searches

Every sweep point is a fresh synthetic repository served by its own local Triton, searched like the
main run (both workloads alternating; the sweep's own defaults, SWEEP_DEFAULTS, under every search flag given,
its SLO and time from --sweep-slo-ms and --sweep-max-time), and reported in reports/sweep/<point>/ with the
same files as the main run; reports/cost_vs_tasks.json / .png gather the points (merged with earlier runs:
a point is keyed by backbone shape and N). The memory every point needs is checked before
anything starts; a point that would not fit stops the bench with a clear error (or, with
--skip-unfit, is left out and listed).

Sweep repositories are exported with `mtserve export`'s serving options (--instances, --max-batch,
--queue-delay-us, --queue-timeout-us: the same flags, generated from export/model_config.py's ServingOptions),
whose defaults are export's. Every model is a python-backend process per instance, so the instances decide what
a point needs in memory: `--instances trunk=1,heads=1` serves 21 BERT-base tasks where export's default of two
of every head and full model does not fit this machine. What each repository was exported with (its
registry.json `serving`) is recorded beside its point, in cost_vs_tasks.json and in <out>/bench.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mtserve.core.errors import UserError
from mtserve.core.options import add_dataclass_arguments, given
from mtserve.core.registry import atomic_write
from mtserve.core.registry import load as load_registry
from mtserve.export.model_config import ServingOptions
from mtserve.export.synthetic import MAX_TASKS, SHAPES, estimate, get_shape, synthetic_repo
from mtserve.loadtest.capacity import SHORT, CapacitySearchConfig, run_capacity
from mtserve.loadtest.capacity_cli import (
    add_search_arguments,
    add_workload_arguments,
    search_config,
    utterances_from,
)
from mtserve.loadtest.capacity_report import write_sweep_reports
from mtserve.serving import memory

SWEEP_DEFAULTS = {
    "min_duration_s": 4.0,
    "max_duration_s": 15.0,
    "min_samples": 150,
    "rel_tol": 0.15,
    "max_steps": 8,
    "max_time_s": 420.0,
    "slo_auto_factor": 4.0,
}
# export's serving options a sweep point takes (the flags are ServingOptions' own); left out: --warmup (the load
# test's --warmup is seconds; a local repository warms up on its first requests), the response cache (a cache
# hit is no measure of serving cost) and the TensorRT cache (gpu profile only)
SWEEP_SERVING = ("instances", "max_batch", "queue_delay_us", "queue_timeout_us")


def parse_counts(text: str) -> list[int]:
    if not text or not text.strip():
        return []
    try:
        counts = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"task counts must be comma-separated integers, got {text!r}") from None
    bad = [n for n in counts if not 1 <= n <= MAX_TASKS]
    if bad:
        raise UserError(f"task counts must lie in 1..{MAX_TASKS}, got {bad}")
    return counts


def sweep_points(
    demo_counts: list[int], base_counts: list[int], shape: str = "demo"
) -> list[tuple[int, str]]:
    return [(n, shape) for n in demo_counts] + [(n, "bert-base") for n in base_counts]


def serving_options(args) -> ServingOptions:
    """The sweep repositories' serving options from the flags (checked as export checks them)."""
    return ServingOptions.from_dict({name: getattr(args, name) for name in SWEEP_SERVING})


def check_sweep_memory(
    points: list[tuple[int, str]], skip_unfit: bool, log=print, serving: ServingOptions | None = None
) -> list[tuple[int, str]]:
    """Points whose servers fit in memory (one server runs at a time), with `serving`'s instances (default:
    export's); UserError for the others unless skip_unfit."""
    limit = (
        memory.HEADROOM * memory.available_bytes()
    )  # read through the module: one place to stub it in tests
    fit, unfit = [], []
    for n, shape in points:
        est = estimate(n, get_shape(shape), serving=serving)
        (fit if est.total_bytes <= limit else unfit).append((n, shape, est))
    if unfit:
        lines = "; ".join(f"N={n} on {s}: {e.describe()}" for n, s, e in unfit)
        message = f"not enough memory ({limit / 2**30:.1f} GiB usable) for {lines}"
        if not skip_unfit:
            raise UserError(
                message
                + " (fewer tasks, fewer instances such as --instances trunk=1,heads=1, or --skip-unfit to "
                "leave them out)"
            )
        log(f"bench: skipping: {message}")
    return [(n, s) for n, s, _ in fit]


def run_sweep(
    points: list[tuple[int, str]],
    out_dir: Path,
    cfg: CapacitySearchConfig,
    cache_dir: Path,
    *,
    utterances=None,
    seed: int = 0,
    serving: ServingOptions | None = None,
    log=print,
) -> list[dict]:
    results = []
    for n, shape_name in points:
        shape = get_shape(shape_name)
        log(f"bench: sweep point N={n} on the {shape.backbone} shape")
        t0 = time.monotonic()
        repo = synthetic_repo(cache_dir, n, shape, seed=seed, serving=serving, log=log)
        point_dir = out_dir / "sweep" / f"{shape.name}-n{n}"
        result = run_capacity(
            repo=repo, out_dir=point_dir, cfg=cfg, utterances=utterances, seed=seed, log=log
        )
        c = result["capacity"]
        point = {
            "tasks": n,
            "cost_reduction": c["cost_reduction"],
            "ideal_cost_reduction": c["ideal_cost_reduction"],
            "backbone": shape.backbone,
            # what the served repository was exported with, read back from it (not what was asked)
            "serving": load_registry(repo).serving,
        }
        results.append(point)
        paths = write_sweep_reports([point], out_dir)
        log(
            f"bench: N={n} {shape.name}: multitask {c['multitask']['max_rps']:.2f}/s, per-task "
            f"{c['per_task']['max_rps']:.2f}/s at p99 <= {c['slo_p99_ms']:g} ms -> cost reduction "
            f"{_pct(c['cost_reduction'])} (ideal {_pct(c['ideal_cost_reduction'])}); {time.monotonic() - t0:.0f} s; "
            f"{paths['cost_vs_tasks.json']}"
        )
    return results


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def configure(p: argparse.ArgumentParser) -> None:
    where = p.add_argument_group("main run")
    where.add_argument(
        "--repo",
        default="model_repository/multitask",
        help="repository of the main run (default %(default)s)",
    )
    where.add_argument("--url", help="search a running endpoint instead of serving --repo")
    where.add_argument("--registry", help="registry.json (default: <repo>/registry.json)")
    where.add_argument("--no-main", action="store_true", help="skip the main run (only the sweep)")
    p.add_argument("--out", default="reports", help="reports folder (default %(default)s)")
    p.add_argument(
        "--target-rps", type=float, default=1000.0, help="fleet size for capacity.md (default 1000)"
    )
    p.add_argument("--quick", action="store_true", help="short searches everywhere (minutes, not an hour)")
    sweep = p.add_argument_group("cost against the number of tasks")
    sweep.add_argument(
        "--sweep", default="2,4,8,16,21,32", help="task counts on the --sweep-shape (default %(default)s)"
    )
    sweep.add_argument(
        "--sweep-shape", default="demo", choices=sorted(SHAPES), help="backbone shape of --sweep"
    )
    sweep.add_argument(
        "--base-tasks", default="21", help="task counts on BERT-base's shape ('' for none; default 21)"
    )
    sweep.add_argument("--no-sweep", action="store_true", help="skip the sweep")
    sweep.add_argument(
        "--sweep-slo-ms",
        default="auto",
        help="SLO of sweep points: auto (default: max(--slo-ms, 4 x the slower unloaded p50)) or ms",
    )
    sweep.add_argument("--sweep-max-time", type=float, default=None, help="seconds per sweep point's search")
    sweep.add_argument("--cache-dir", default="cache/synthetic", help="where synthetic repositories are kept")
    sweep.add_argument(
        "--skip-unfit", action="store_true", help="leave out sweep points that do not fit in memory"
    )
    add_dataclass_arguments(
        p.add_argument_group("serving options of the sweep repositories (as mtserve export takes them)"),
        ServingOptions,
        only=SWEEP_SERVING,
    )
    add_search_arguments(p)
    add_workload_arguments(p)


def sweep_config(args, main: CapacitySearchConfig) -> CapacitySearchConfig:
    base = {**SWEEP_DEFAULTS, **(SHORT if args.quick else {})}
    base["slo_p99_ms"] = main.slo_p99_ms
    if args.sweep_slo_ms != "auto":
        try:
            base["slo_p99_ms"], base["slo_auto_factor"] = float(args.sweep_slo_ms), 0.0
        except ValueError:
            raise UserError(f"--sweep-slo-ms must be 'auto' or a number, got {args.sweep_slo_ms!r}") from None
    else:
        base["slo_auto_factor"] = SWEEP_DEFAULTS["slo_auto_factor"]
    if args.sweep_max_time:
        base["max_time_s"] = args.sweep_max_time
    base["min_rps"], base["max_requests"] = main.min_rps, main.max_requests
    # every other search flag given applies to the sweep too, over its defaults (it once ignored them all, and
    # `--max-steps 12` left a 21-task point at the default 8); the SLO and the time have sweep flags of their own
    for name, value in given(CapacitySearchConfig, args).items():
        if name not in ("slo_p99_ms", "max_time_s"):
            base[name] = value
    return CapacitySearchConfig(**base)


def run(args) -> int:
    args.short = args.short or args.quick
    main_cfg = search_config(args)
    serving = serving_options(args)
    points: list[tuple[int, str]] = []
    if not args.no_sweep:
        points = sweep_points(parse_counts(args.sweep), parse_counts(args.base_tasks), args.sweep_shape)
        points = check_sweep_memory(
            points, args.skip_unfit, serving=serving
        )  # before hours of work, not after
    utterances = utterances_from(args)
    out = Path(args.out)
    summary: dict = {}
    if not args.no_main:
        repo = None if args.url else args.repo
        if repo is not None and not Path(repo).is_dir():
            raise UserError(
                f"model repository not found: {repo} (run `make demo` or `mtserve export` first, "
                "or --no-main for the sweep alone)"
            )
        result = run_capacity(
            repo=repo,
            url=args.url,
            out_dir=out,
            cfg=main_cfg,
            utterances=utterances,
            registry_path=args.registry,
            target_rps=args.target_rps,
            seed=args.seed,
        )
        summary["capacity"] = result["capacity"]
    if points:
        summary["sweep"] = run_sweep(
            points,
            out,
            sweep_config(args, main_cfg),
            Path(args.cache_dir),
            utterances=utterances,
            seed=args.seed,
            serving=serving,
        )
        summary["sweep_serving"] = {k: v for k, v in serving.to_registry().items() if k != "buckets"}
    text = json.dumps(summary, indent=2)
    atomic_write(out / "bench.json", (text + "\n").encode())
    print(text)
    return 0
