"""One `mtserve loadtest --short --cross-check` run, kept as a committed result (needs `make perf-analyzer`).

    python scripts/capacity_crosscheck.py model_repository/multitask docs/results/capacity-crosscheck

Writes OUT.json (crosscheck.json with the command, commit, date, /proc/loadavg before and after, and our
capacity.json beside it) and OUT.md (crosscheck.md under the same header).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main() -> int:
    repo, out = sys.argv[1], Path(sys.argv[2])
    extra = sys.argv[3:]
    with tempfile.TemporaryDirectory(prefix="capacity-crosscheck-") as tmp:
        cmd = [
            str(ROOT / ".venv/bin/mtserve"),
            "loadtest",
            "--repo",
            repo,
            "--short",
            "--cross-check",
            "--out",
            tmp,
        ]
        before, t0 = loadavg(), time.monotonic()
        proc = subprocess.run([*cmd, *extra], capture_output=True, text=True)
        wall, after = time.monotonic() - t0, loadavg()
        if proc.returncode != 0:
            raise SystemExit(f"{shlex.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        x = json.loads((Path(tmp) / "crosscheck.json").read_text())
        cap = json.loads((Path(tmp) / "capacity.json").read_text())
        md = (Path(tmp) / "crosscheck.md").read_text()
        log = [
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith("loadtest:") and tmp not in line  # no machine paths in a committed result
        ]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    header = {
        "command": shlex.join(["mtserve", "loadtest", "--repo", repo, "--short", "--cross-check", *extra]),
        "script": shlex.join(["python", "scripts/capacity_crosscheck.py", *sys.argv[1:]]),
        "commit": commit.stdout.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_before": before,
        "loadavg_after": after,
        "wall_s": round(wall, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {**header, "capacity": cap, "cross_check": x, "log": log}
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = md.splitlines()
    lines[1:1] = [
        "",
        f"`{header['command']}` (`{header['script']}`), {header['date']}, commit {header['commit']}; "
        f"load average (1/5/15 min) {' '.join(map(str, before))} before, {' '.join(map(str, after))} after, on a "
        f"2-core machine shared with other engineers; {wall / 60:.1f} min.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
