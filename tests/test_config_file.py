"""`--config FILE.yaml` on train, export and loadtest: the file's settings as the flags would parse them, the
command line winning, and every bad key or value of the file named at once (core/config_file.py)."""

from __future__ import annotations

import argparse
import importlib
import shlex
from pathlib import Path

import pytest

from mtserve.cli import COMMANDS, CONFIGURABLE
from mtserve.core.config_file import add_config_argument, apply_config_file
from mtserve.core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent

# The command the published reference ran (docs/results/glue-minilm.md), as one run from scratch.
GLUE_REFERENCE = (
    "--glue-dir ../shared/glue --tasks cola,sst2,mrpc,stsb,rte,qnli --max-train-examples 20000 "
    "--precision bf16 --peer-baseline --k 1,2,3,4 --max-student-layers 2 --pooling cls --branch-pooling mean "
    "--run-dir runs/glue --reports reports/glue --cache-dir cache"
)


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"mtserve {command}")
    importlib.import_module(COMMANDS[command][0]).configure(parser)
    add_config_argument(parser)
    apply_config_file(parser, argv, command)
    return parser.parse_args(argv)


def without_config(ns: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(ns).items() if k != "config"}


def test_the_glue_reference_config_is_its_command_line():
    from_file = parse("train", ["--config", str(ROOT / "configs" / "glue-minilm.yaml")])
    from_flags = parse("train", shlex.split(GLUE_REFERENCE))
    assert without_config(from_file) == without_config(from_flags)
    assert from_file.k_values == [1, 2, 3, 4] and from_file.peer_baseline is True


def test_the_command_line_wins_and_defaults_stay(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: 3\nlr_full: 1.0e-4\nprecision: bf16\n")
    ns = parse("train", ["--config", str(cfg), "--seed", "7"])
    assert ns.seed == 7  # the flag
    assert ns.lr_full == pytest.approx(1e-4) and ns.precision == "bf16"  # the file, under both spellings
    assert ns.epochs_full == parse("train", []).epochs_full  # neither: the default


@pytest.mark.parametrize("command", CONFIGURABLE)
def test_every_configurable_command_takes_a_file(command, tmp_path):
    parser = argparse.ArgumentParser()
    importlib.import_module(COMMANDS[command][0]).configure(parser)
    # one setting each command has, written as its flag is
    flag = next(s for a in parser._actions for s in a.option_strings if a.type is int)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"{flag.lstrip('-')}: 5\n")
    dest = next(a.dest for a in parser._actions if flag in a.option_strings)
    assert getattr(parse(command, ["--config", str(cfg)]), dest) == 5


def test_every_problem_of_the_file_is_named_at_once(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("seeed: 1\nprecision: fp8\npeer-baseline: maybe\nmax-train-examples: lots\n")
    with pytest.raises(UserError) as e:
        parse("train", ["--config", str(cfg)])
    msg = str(e.value)
    assert "4 problem(s)" in msg and str(cfg) in msg
    assert "'seeed'" in msg and "did you mean 'seed'" in msg
    assert "precision: must be one of fp32, bf16, fp16, got 'fp8'" in msg
    assert "peer-baseline: must be true or false" in msg
    assert "max-train-examples" in msg


def test_a_file_that_is_no_mapping_or_missing(tmp_path):
    cfg = tmp_path / "list.yaml"
    cfg.write_text("- seed\n- 1\n")
    with pytest.raises(UserError, match="must be a mapping"):
        parse("export", ["--config", str(cfg)])
    with pytest.raises(UserError, match="cannot read it"):
        parse("export", ["--config", str(tmp_path / "absent.yaml")])


def test_the_command_line_reports_a_bad_file_as_a_usage_error(tmp_path, capsys):
    from mtserve.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("no-such-setting: 1\n")
    assert main(["export", "--config", str(cfg)]) == 2
    assert "unknown setting 'no-such-setting' for `mtserve export`" in capsys.readouterr().err


def test_switches_both_ways(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("warmup: false\nfp16: true\nno-baseline: true\n")
    ns = parse("export", ["--config", str(cfg)])
    assert ns.warmup is False and ns.fp16 is True and ns.no_baseline is True
    assert parse("export", ["--config", str(cfg), "--warmup"]).warmup is True
