"""`mtserve loadtest`'s command line, generated from the settings it takes (core/options.py): the command's own
(`LoadtestOptions`, here), the search's (loadtest/capacity_config.py), the utterances (loadtest/workload.py), the
deployments (loadtest/protocol.py `TargetOptions`) and the connection (serving/endpoint.py). Any of them may come
from `--config FILE.yaml` too (mtserve/cli.py). loadtest/capacity.py runs the search; mtserve/bench.py reuses the
search and utterance arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass

from mtserve.core import exit_codes
from mtserve.core.errors import UserError
from mtserve.core.options import (
    NON_NEGATIVE,
    POSITIVE,
    Options,
    add_dataclass_arguments,
    from_args,
    given,
    option,
)
from mtserve.loadtest import mix as mixes
from mtserve.loadtest.capacity import LOAD_GENERATOR_CPUS, run_capacity
from mtserve.loadtest.capacity_config import SHORT, CapacitySearchConfig, SearchPreset
from mtserve.loadtest.protocol import TargetOptions
from mtserve.loadtest.repeats import run_repeats
from mtserve.loadtest.sizing import UTILISATION
from mtserve.loadtest.workload import Utterance, UtteranceOptions, is_mix_file
from mtserve.serving.endpoint import ConnectionOptions


@dataclass
class LoadtestOptions(Options):
    """`mtserve loadtest`'s own settings: the server, the load generators, the reports and the CI gate."""

    repo: str | None = option(
        None,
        "model repository: start a local Triton on it (and stop it afterwards)",
        show=lambda v: v or "none",
        metavar="DIR",
    )
    url: str | None = option(
        None,
        "gRPC address HOST:PORT of a running Triton / KServe endpoint",
        show=lambda v: v or "none",
        metavar="HOST:PORT",
    )
    registry: str | None = option(
        None,
        "registry.json of the served repository",
        show=lambda v: v or "<repo>/registry.json",
        metavar="FILE",
    )
    ready_timeout: float = option(
        300.0, "seconds to wait for a local Triton", check=POSITIVE, show="{:g}".format
    )
    load_generator_cpus: int = option(
        LOAD_GENERATOR_CPUS,
        "with --repo: CPUs kept for Locust alone, the local Triton runs on the others (0: they share every CPU, "
        "as they do with fewer than two CPUs; docs/loadtest.md, 'Where the load generator runs')",
        check=NON_NEGATIVE,
    )
    workers: int = option(
        1,
        "Locust processes generating the load: 1 runs the users in the measuring process, "
        "N > 1 starts N local `locust --worker` processes under a Locust master",
        check=(lambda n: n >= 1, "must be >= 1"),
    )
    expect_workers: int = option(
        0,
        "run as a Locust master and wait for this many workers started elsewhere "
        "(`locust -f <locustfile> --worker --master-host THIS_HOST`; k8s/loadtest)",
        check=NON_NEGATIVE,
    )
    master_bind: str = option(
        "",
        "HOST:PORT the Locust master listens on (0.0.0.0:5557 for workers on other machines)",
        show=lambda v: v or "127.0.0.1 and a free port",
        metavar="HOST:PORT",
    )
    out: str = option(
        "reports",
        "folder for capacity.json / capacity.md / latency_vs_rate.png (and Locust's per-step reports in locust/)",
        metavar="DIR",
    )
    require_rps: float | None = option(
        None,
        "exit 1 unless the multitask deployment meets the SLO at this rate or more (a CI gate)",
        check=(lambda v: v is None or v > 0, "must be > 0"),
        show=lambda v: (
            f"{v:g}" if v else "none: the exit is 1 only when a deployment meets the SLO at no rate"
        ),
        metavar="RPS",
    )
    target_rps: float = option(
        1000.0,
        "utterances per second to size the fleet for in capacity.md",
        check=POSITIVE,
        show="{:g}".format,
        metavar="RPS",
    )
    cross_check: bool = option(
        False,
        "after the search, run Triton's perf_analyzer (make perf-analyzer) on multitask and each "
        "single_<task> at the same SLO, on the same server: crosscheck.{json,md} beside capacity.md",
    )
    utilisation: float = option(
        UTILISATION,
        "the fraction of its measured capacity each replica is sized to run at (the soak test holds it)",
        check=(lambda u: 0 < u <= 1, "must be in (0, 1]"),
        show="{:g}".format,
    )
    repeats: int = option(
        1,
        "whole searches, one after another (with --repo, each on its own Triton): the reports are the median "
        "one's, every repeat's figures beside them and each repeat's reports in <out>/repeats/<i>/ "
        "(loadtest/repeats.py)",
        check=(lambda n: n >= 1, "must be >= 1"),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.repeats > 1 and self.cross_check:
            raise UserError("--cross-check runs perf_analyzer after one search: give it without --repeats")
        if self.expect_workers > 0 and self.workers > 1:
            raise UserError(
                "give --workers (local processes) or --expect-workers (started elsewhere), not both"
            )

    def server(self) -> tuple[str | None, str | None]:
        """(repo, url): exactly one of them."""
        if not self.repo and not self.url:
            raise UserError("give --repo DIR (start a local Triton) or --url HOST:PORT (a running endpoint)")
        if self.repo and self.url:
            raise UserError("give --repo or --url, not both")
        return self.repo, self.url


def add_search_arguments(p: argparse.ArgumentParser) -> None:
    """The search's flags and --short. A search flag not given stays None: search_config lays the given ones
    over the preset."""
    g = p.add_argument_group("search bounds")
    add_dataclass_arguments(g, SearchPreset)
    add_dataclass_arguments(g, CapacitySearchConfig, given_only=True)


def search_config(args) -> CapacitySearchConfig:
    """The search the flags ask for: the preset (--short: SHORT), then every search flag given."""
    return from_args(CapacitySearchConfig, args, SHORT if from_args(SearchPreset, args).short else {})


def search_across_generators(args, opts: LoadtestOptions) -> CapacitySearchConfig:
    """The search, its user bound (--max-users, unless given) per load generator: N generators, N x the users."""
    cfg = search_config(args)
    generators = max(opts.workers, opts.expect_workers)
    if generators > 1 and "max_users" not in given(CapacitySearchConfig, args):
        cfg = dataclasses.replace(cfg, max_users=cfg.max_users * generators)
    return cfg


def add_workload_arguments(p: argparse.ArgumentParser) -> None:
    add_dataclass_arguments(p.add_argument_group("utterances"), UtteranceOptions)


def configure(p: argparse.ArgumentParser) -> None:
    where = p.add_argument_group("server")
    add_dataclass_arguments(where, LoadtestOptions, only=("repo", "url"))
    add_dataclass_arguments(where, TargetOptions, only=("per_task_url",))
    add_dataclass_arguments(where, ConnectionOptions)
    add_dataclass_arguments(where, TargetOptions, only=("per_task_authority", "tasks"))
    add_dataclass_arguments(where, LoadtestOptions, only=("registry", "ready_timeout", "load_generator_cpus"))
    gen = p.add_argument_group("load generators")
    add_dataclass_arguments(gen, LoadtestOptions, only=("workers", "expect_workers", "master_bind"))
    add_dataclass_arguments(
        p, LoadtestOptions, only=("out", "require_rps", "target_rps", "cross_check", "utilisation", "repeats")
    )
    add_search_arguments(p)
    add_workload_arguments(p)


def utterances_from(args) -> list[Utterance]:
    return from_args(UtteranceOptions, args).pool()


def run(args) -> int:
    opts = from_args(LoadtestOptions, args)
    repo, url = opts.server()
    cfg = search_across_generators(args, opts)
    utterances = from_args(UtteranceOptions, args)
    connection = from_args(ConnectionOptions, args)
    deployments = from_args(TargetOptions, args)
    search = dict(
        repo=repo,
        url=url,
        out_dir=opts.out,
        cfg=cfg,
        per_task_url=deployments.per_task_url,
        tasks=deployments.tasks or None,
        utterances=utterances.pool(),
        registry_path=opts.registry,
        target_rps=opts.target_rps,
        utilisation=opts.utilisation,
        seed=utterances.seed,
        ready_timeout=opts.ready_timeout,
        authority=connection.authority,
        per_task_authority=deployments.per_task_authority,
        tls=connection.tls_config(),
        workers=opts.workers,
        expect_workers=opts.expect_workers,
        master_bind=opts.master_bind or None,
        cross_check=opts.cross_check,
        mix=mixes.read(utterances.mix) if is_mix_file(utterances.mix) else None,
        load_generator_cpus=opts.load_generator_cpus,
    )
    result = run_repeats(opts.repeats, **search) if opts.repeats > 1 else run_capacity(**search)
    c = result["capacity"]
    print(json.dumps(c, indent=2))
    failed = slo_failures(c, opts.require_rps)
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
