"""The load test's settings, declared once (core/options.py): `mtserve loadtest`'s flags are generated from the
Options dataclasses, `--config FILE.yaml` takes any of them (the command line winning), and the locustfile's
options for a plain `locust` run come from the same declarations."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mtserve.core.config_file import add_config_argument, apply_config_file
from mtserve.core.errors import UserError
from mtserve.core.options import flag, from_args, options
from mtserve.loadtest import capacity_cli
from mtserve.loadtest.capacity_config import SHORT, CapacitySearchConfig, SearchPreset
from mtserve.loadtest.protocol import TargetOptions
from mtserve.loadtest.workload import UtteranceOptions
from mtserve.serving.endpoint import ConnectionOptions

ROOT = Path(__file__).resolve().parent.parent
LOADTEST_SETTINGS = (
    capacity_cli.LoadtestOptions,
    SearchPreset,
    CapacitySearchConfig,
    TargetOptions,
    ConnectionOptions,
    UtteranceOptions,
)
SHARED_WITH_LOCUST = (TargetOptions, ConnectionOptions, UtteranceOptions)


def loadtest_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """`mtserve loadtest`'s parser as mtserve/cli.py builds it, --config included, and its parse of argv."""
    parser = argparse.ArgumentParser(prog="mtserve loadtest")
    capacity_cli.configure(parser)
    add_config_argument(parser)
    apply_config_file(parser, argv, "loadtest")
    return parser, parser.parse_args(argv)


def settings_flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        a.option_strings[0]: a
        for a in parser._actions
        if a.option_strings and a.dest not in ("help", "config")
    }


def test_every_loadtest_flag_is_generated_from_a_declaration():
    """No hand-written flag: each one is an option of a settings dataclass, with its help and its default."""
    parser, _ = loadtest_parser([])
    declared = {flag(f): (cls, f) for cls in LOADTEST_SETTINGS for f in options(cls)}
    flags = settings_flags(parser)
    assert sorted(flags) == sorted(declared)
    for name, action in flags.items():
        cls, f = declared[name]
        assert action.dest == f.name and action.help.startswith(f.metadata["help"]), name
        assert action.help.endswith(")") and "(default: " in action.help, name
    # the names users type today (and the scripts and docs use) are among them
    for name in ("--slo-ms", "--duration", "--warmup", "--max-time", "--request-timeout", "--short", "--url"):
        assert name in flags


def test_a_config_file_takes_search_workload_and_connection_settings_and_flags_win(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("turn the lights off in the hall\nwhat is the weather like\tin oslo tomorrow\n")
    ca = tmp_path / "ca.pem"
    cfg = tmp_path / "loadtest.yaml"
    cfg.write_text(
        "short: true\n"  # the preset, under ...
        "duration: 2.5\n"  # ... a search setting of the file (flag name) ...
        "max_users: 40\n"  # ... and one under its field's name
        f"utterances: [corpus, {lines}]\n"
        "mix: [3, 1]\n"
        "words: '8:16'\n"
        "pool-size: 50\n"
        "tasks: [a, b]\n"
        "per-task-authority: 'mtserve-{task_dns}.example.com'\n"
        "tls: true\n"
        f"root-cert: {ca}\n"
        "target-rps: 500\n"
    )
    _, ns = loadtest_parser(
        [
            "--config",
            str(cfg),
            "--max-time",
            "60",
            "--utterances",
            str(lines),
            "--utterances",
            "corpus",
            "--seed",
            "4",
        ]
    )
    search = capacity_cli.search_config(ns)
    assert search.min_duration_s == 2.5 and search.max_users == 40  # the file over the preset
    assert search.max_time_s == 60.0  # the flag over the preset
    assert search.max_duration_s == SHORT["max_duration_s"] and search.start_factor == SHORT["start_factor"]
    assert search.slo_p99_ms == CapacitySearchConfig().slo_p99_ms  # neither: the default
    words = from_args(UtteranceOptions, ns)
    # --utterances on the command line replaced the file's list (it did not append to it)
    assert (
        words.utterances == [str(lines), "corpus"]
        and words.mix == "3,1"
        and words.pool_size == 50
        and words.seed == 4
    )
    pool = words.pool()
    assert len(pool) == 50 and all(8 <= len(u.text.split()) <= 16 for u in pool)
    deployments = from_args(TargetOptions, ns)
    assert deployments.tasks == ["a", "b"]
    targets = deployments.targets("grpc://gw:443", from_args(ConnectionOptions, ns))
    assert targets.tls is not None and targets.tls.root_cert == str(ca)
    assert targets.per_task(["x_y"])["x_y"].authority == "mtserve-x-y.example.com"
    assert from_args(capacity_cli.LoadtestOptions, ns).target_rps == 500.0
    # and the flags alone, without the file: the preset's and the dataclass's defaults
    _, plain = loadtest_parser(["--short"])
    assert capacity_cli.search_config(plain) == CapacitySearchConfig(**SHORT)
    assert from_args(UtteranceOptions, plain) == UtteranceOptions()


# docs/loadtest.md's runbook: the search against the deployments behind an ingress, all on the command line
RUNBOOK = (
    "--url gw:443 --tls --authority mtserve.mtserve.example.com --per-task-url gw:443 "
    "--per-task-authority mtserve-{task_dns}.mtserve.example.com "
    "--registry model_repository/multitask/registry.json --slo-ms 200 --workers 4"
)


def test_the_committed_ingress_config_is_the_runbooks_command_line():
    _, from_file = loadtest_parser(
        [
            "--config",
            str(ROOT / "configs" / "loadtest-ingress.yaml"),
            "--url",
            "gw:443",
            "--per-task-url",
            "gw:443",
        ]
    )
    _, from_flags = loadtest_parser(RUNBOOK.split())
    assert {k: v for k, v in vars(from_file).items() if k != "config"} == {
        k: v for k, v in vars(from_flags).items() if k != "config"
    }
    assert from_file.tls is True and from_file.workers == 4


def test_bad_settings_fail_naming_the_flag(tmp_path):
    for argv, message in (
        (["--min-rps", "5", "--max-rps", "1"], "--min-rps <= --max-rps"),
        (["--growth", "1"], "--growth must be > 1"),
        (["--stability-tolerance", "0"], "--stability-tolerance must be > 0"),
        (["--words", "long"], "--words must be 'natural', N or MIN:MAX"),
        (["--mix", "1,2"], r"--mix gives 2 weight\(s\) for 1 source\(s\)"),
        (["--utilisation", "1.5"], r"--utilisation must be in \(0, 1\]"),
        (["--workers", "2", "--expect-workers", "2"], "not both"),
    ):
        _, ns = loadtest_parser(argv)
        with pytest.raises(UserError, match=message):
            capacity_cli.search_config(ns)
            from_args(UtteranceOptions, ns)
            from_args(capacity_cli.LoadtestOptions, ns)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("slo: 100\n")
    with pytest.raises(UserError, match="did you mean 'slo-ms'"):
        loadtest_parser(["--config", str(cfg)])


def test_the_user_bound_is_per_load_generator_unless_given():
    default = CapacitySearchConfig().max_users
    for argv, users in (
        ([], default),
        (["--workers", "3"], 3 * default),
        (["--expect-workers", "4"], 4 * default),
        (["--workers", "3", "--max-users", "7"], 7),
    ):
        _, ns = loadtest_parser(argv)
        opts = from_args(capacity_cli.LoadtestOptions, ns)
        assert capacity_cli.search_across_generators(ns, opts).max_users == users, argv


# Locust's own parser, with the locustfile's options, in a process of its own: importing the locustfile
# monkey-patches the whole process for gevent.
LOCUST_PARSER = """
import json, sys
ARGV = {argv!r}
sys.argv = ["locust"]
import locust
from mtserve.loadtest import locustfile
from locust.argument_parser import default_args_dict, get_parser
parser = get_parser()
locust_own = default_args_dict()
actions = {a.dest: {"flags": a.option_strings, "default": a.default, "help": a.help}
           for a in parser._actions if a.option_strings and a.dest not in locust_own and a.default != "==SUPPRESS=="}
ns = parser.parse_args(ARGV)
print(json.dumps({"actions": actions, "parsed": {k: getattr(ns, k) for k in actions}}))
"""


def locust_parse(argv: list[str]) -> dict:
    code = LOCUST_PARSER.replace("{argv!r}", repr(argv))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_locustfile_takes_the_same_declared_options():
    argv = [
        "--per-task-host",  # the older spelling of --per-task-url
        "{task}.models.example.com:443",
        "--tasks",
        "a,b",
        "--tls",
        "--utterances",
        "corpus",
        "--utterances",
        "sst2",
        "--words",
        "12",
        "--throughput",
        "2.5",
    ]
    got = locust_parse(argv)
    actions, parsed = got["actions"], got["parsed"]
    loadtest = {a.dest: a for a in settings_flags(loadtest_parser([])[0]).values()}
    for cls in SHARED_WITH_LOCUST:  # declared once: the same flags, defaults and help in both tools
        for f in options(cls):
            mine, theirs = loadtest[f.name], actions[f.name]
            assert theirs["flags"] == mine.option_strings, f.name
            assert theirs["help"] == mine.help and theirs["default"] == mine.default, f.name
    declared = {f.name for cls in SHARED_WITH_LOCUST for f in options(cls)}
    assert set(actions) - declared == {
        "throughput",
        "request_timeout",
        "utterance_stats",
        "utterance_samples",
    }
    assert parsed["per_task_url"] == "{task}.models.example.com:443" and parsed["tasks"] == ["a", "b"]
    assert parsed["tls"] is True and parsed["utterances"] == ["corpus", "sst2"] and parsed["words"] == "12"
    assert parsed["throughput"] == 2.5 and parsed["request_timeout"] == 10.0
