"""scripts/start_to_start.py --from: the summary a planner reads (does a server's start move the ratio?) is the
arithmetic of the raw windows, and a start whose workloads have unequal windows is refused, naming its file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "start_to_start.py"


def _raw(mt: list[float], pt: list[float]) -> dict:
    windows = []
    for a, b in zip(mt, pt, strict=False):
        windows.append({"workload": "multitask", "utterances_per_s": a})
        windows.append({"workload": "per-task", "utterances_per_s": b})
    windows += [{"workload": "multitask", "utterances_per_s": a} for a in mt[len(pt) :]]
    return {"concurrency": 8, "seconds": 10.0, "loadavg": ["1.0", "2.0", "3.0"], "windows": windows}


def _run(tmp_path: Path, starts: list[tuple[list[float], list[float]]]) -> subprocess.CompletedProcess:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, (mt, pt) in enumerate(starts, 1):
        (raw / f"run{i}.json").write_text(json.dumps(_raw(mt, pt)))
    out = tmp_path / "out" / "s2s"
    return subprocess.run(
        [sys.executable, str(SCRIPT), "REPO", str(out), "--from", str(raw)], capture_output=True, text=True
    )


def test_the_summary_is_the_ratio_of_each_starts_means_and_their_spread(tmp_path):
    # start 1: ratio 2.0 in both windows; start 2: windows 2.0 and 2.5, means 225/100 = 2.25
    proc = _run(tmp_path, [([200, 200], [100, 100]), ([200, 250], [100, 100])])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "s2s.json").read_text())
    s = doc["summary"]
    assert s["ratio_of_means_per_start"] == [2.0, 2.25]
    assert s["throughput_saving_per_start"] == [0.5, round(1 - 1 / 2.25, 4)]
    assert s["ratio_spread_within_a_start_pct"] == [0.0, round(100 * 0.5 / 2.25, 1)]
    assert s["ratio_spread_between_starts_pct"] == round(100 * 0.25 / 2.125, 1)
    assert (tmp_path / "out" / "s2s.png").stat().st_size > 0
    assert "ratio of the means moved by 11.8% between starts" in (tmp_path / "out" / "s2s.md").read_text()


def test_unequal_windows_are_refused_naming_the_file(tmp_path):
    proc = _run(tmp_path, [([200, 200, 210], [100, 100])])
    assert proc.returncode != 0
    assert "run1.json: 3 multitask and 2 per-task windows" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_empty_folder_names_it(tmp_path):
    proc = _run(tmp_path, [])
    assert proc.returncode != 0
    assert "no run*.json in" in proc.stderr
