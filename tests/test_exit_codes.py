"""Every exit status of docs/exit-codes.md, from the real command line: 0 success, 1 a check or the SLO failed,
2 usage, 3 server unreachable, 130 interrupted."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtserve.cli import main
from mtserve.core import exit_codes
from mtserve.serving.triton import free_port

ROOT = Path(__file__).resolve().parent.parent
MTSERVE = [sys.executable, "-m", "mtserve"]


def test_the_codes_are_distinct_and_documented():
    codes = {
        exit_codes.OK,
        exit_codes.FAILED,
        exit_codes.USAGE,
        exit_codes.UNREACHABLE,
        exit_codes.INTERRUPTED,
    }
    assert codes == {0, 1, 2, 3, 130}
    doc = (ROOT / "docs" / "exit-codes.md").read_text()
    for code in codes:
        assert f"| {code} |" in doc, code
    from mtserve.cli import COMMANDS

    for name in COMMANDS:  # one row per command
        assert f"`mtserve {name}" in doc, name


def test_success_and_failed_checks(tmp_path, capsys):
    assert main(["k8s", "validate", str(ROOT / "k8s" / "base")]) == exit_codes.OK
    bad = tmp_path / "k8s"
    shutil.copytree(ROOT / "k8s", bad)
    isvc = bad / "base" / "inferenceservice" / "inferenceservice.yaml"
    isvc.write_text(isvc.read_text().replace("- multitask\n", "- single_intent\n"))  # probes the wrong model
    assert main(["k8s", "validate", str(bad / "base")]) == exit_codes.FAILED
    assert "checks ['single_intent'], but the service serves 'multitask'" in capsys.readouterr().err
    empty = tmp_path / "repo"
    empty.mkdir()
    assert main(["export", "--check", str(empty)]) == exit_codes.FAILED


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as e:  # argparse's own: a mistyped flag
        main(["k8s", "validate", "--no-such-flag"])
    assert e.value.code == exit_codes.USAGE
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == exit_codes.USAGE
    assert main(["loadtest", "--url", "127.0.0.1:1", "--repo", "x"]) == exit_codes.USAGE  # both: wrong
    assert main(["predict", "--retries", "9", "hi"]) == exit_codes.USAGE


def test_an_unreachable_server_exits_3(capsys):
    port = free_port()  # nobody listens there
    assert main(["predict", "--url", f"127.0.0.1:{port}", "--timeout", "3", "hi"]) == exit_codes.UNREACHABLE
    assert main(["loadtest", "--url", f"127.0.0.1:{port}", "--short"]) == exit_codes.UNREACHABLE
    err = capsys.readouterr().err
    assert f"cannot reach Triton at 127.0.0.1:{port}" in err


def test_interrupted_exits_130():
    """Ctrl-C while `mtserve predict` waits for utterances on stdin: SIGINT, as a terminal sends it."""
    p = subprocess.Popen(
        [*MTSERVE, "predict"],
        # a terminal's Ctrl-C: SIGINT at its default, even where this test runs in a background job (whose
        # children inherit SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)  # past the imports, blocked reading stdin
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == exit_codes.INTERRUPTED, err
    assert "interrupted" in err


@pytest.mark.triton
def test_loadtest_exits_1_when_no_rate_meets_the_slo(tiny_repo, tmp_path):
    """A 1 ms p99 SLO: no rate meets it, the reports are written all the same, and the exit says so (CI gates on it).
    --require-rps over what was met fails likewise."""
    code = main(
        ["loadtest", "--repo", str(tiny_repo), "--short", "--slo-ms", "1", "--out", str(tmp_path / "r")]
    )
    assert code == exit_codes.FAILED
    assert (tmp_path / "r" / "capacity.json").is_file()
    from mtserve.loadtest.capacity_cli import slo_failures

    met = {"slo_p99_ms": 200.0, "multitask": {"max_rps": 50.0, "p99_ms": 90.0}}
    met["per_task"] = {"max_rps": 20.0, "p99_ms": 150.0}
    assert slo_failures(met) == [] and slo_failures(met, require_rps=40) == []
    assert "under the --require-rps 60" in slo_failures(met, require_rps=60)[0]
