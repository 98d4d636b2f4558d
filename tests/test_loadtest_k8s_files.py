"""k8s/loadtest's files around the manifests: the image's lock agrees with the project's, the worker count lives in
one place (kustomize replacements), the image is set with kustomize `images:`, and the reports leave the master
Job through its log (run-search.sh prints them, fetch-reports.sh extracts them; both run here for real, with
`mtserve` and `kubectl` stood in by scripts that do what the pod's and the cluster's would)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from mtserve.deploy import kustomize as k8s_kustomize

ROOT = Path(__file__).resolve().parent.parent
LT = ROOT / "k8s" / "loadtest"


def _pins(lock: Path) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, hashes) of a pip-compile'd lock."""
    out, name = {}, None
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m:
            name = m.group(1).lower().replace("_", "-")
            out[name] = (m.group(2), set())
        for h in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            out[name][1].add(h)
    return out


def test_the_image_lock_is_the_project_locks_loadtest_subset():
    main, image = _pins(ROOT / "requirements.lock"), _pins(LT / "requirements.lock")
    assert {"locust", "grpcio", "tritonclient", "gevent"} <= set(image)
    assert "torch" not in image  # the loadtest role never imports it
    for name, (version, hashes) in image.items():
        assert name in main, f"{name} is in k8s/loadtest/requirements.lock but not in requirements.lock"
        assert version == main[name][0], (
            f"{name}: {version} in the image's lock, {main[name][0]} in the project's"
        )
        assert hashes and hashes <= main[name][1], name
    dockerfile = (LT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile and "--no-deps ." in dockerfile


def test_workers_and_image_are_set_in_one_place_each(tmp_path):
    copy = tmp_path / "loadtest"
    shutil.copytree(LT, copy)
    workers = copy / "workers.yaml"
    workers.write_text(workers.read_text().replace("parallelism: 4", "parallelism: 7"))
    kfile = copy / "kustomization.yaml"
    k = yaml.safe_load(kfile.read_text())
    k["images"] = [{"name": "mtserve-loadtest", "newName": "registry.example.com/lt", "newTag": "0.2.0"}]
    kfile.write_text(yaml.safe_dump(k))
    docs = k8s_kustomize.build(copy)
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Job"}
    spec = jobs["mtserve-loadtest-workers"]["spec"]
    assert spec["parallelism"] == spec["completions"] == 7 and cm["data"]["WORKERS"] == "7"
    for job in jobs.values():
        assert [c["image"] for c in job["spec"]["template"]["spec"]["containers"]] == [
            "registry.example.com/lt:0.2.0"
        ]
    for f in ("master.yaml", "workers.yaml", "kustomization.yaml", "run-search.sh"):
        text = (LT / f).read_text()
        assert "kubectl cp" not in text and "LINGER_S" not in text, f


def test_the_reports_leave_the_job_in_its_log(tmp_path):
    """run-search.sh with a stand-in `mtserve` that writes reports and fails the SLO (exit 1): the pod's exit is 1,
    and fetch-reports.sh, with a stand-in `kubectl logs` that prints that log, gets every file back intact."""
    bin_dir, reports, log = tmp_path / "bin", tmp_path / "reports", tmp_path / "master.log"
    bin_dir.mkdir()
    reports.mkdir()
    (bin_dir / "mtserve").write_text(
        "#!/bin/sh\n"
        'echo "mtserve $*" >&2\n'
        'out=$(echo "$*" | sed "s/.*--out \\([^ ]*\\).*/\\1/")\n'
        'mkdir -p "$out/locust"\n'
        'printf \'{"multitask": {"max_rps": 0.0}}\\n\' > "$out/capacity.json"\n'
        'printf "# capacity\\n" > "$out/capacity.md"\n'
        'head -c 5000 /dev/urandom > "$out/latency_vs_rate.png"\n'
        'printf "step,rps\\n1,2\\n" > "$out/locust/step1.csv"\n'
        "exit 1\n"
    )
    (bin_dir / "kubectl").write_text(
        f'#!/bin/sh\n[ "$1 $4" = "logs job/mtserve-loadtest-master" ] || exit 9\ncat {log}\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "REPORTS": str(reports),
        "MULTITASK_URL": "gw:80",
        "WORKERS": "4",
        "SLO_MS": "200",
        "TARGET_RPS": "1000",
        "EXTRA_ARGS": "--max-time 60",
    }
    p = subprocess.run(["sh", str(LT / "run-search.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr  # the SLO failed: the Job fails with it
    assert "--expect-workers 4" in p.stderr and "--max-time 60" in p.stderr
    log.write_text(p.stdout)
    got = tmp_path / "fetched"
    f = subprocess.run(
        ["sh", str(LT / "fetch-reports.sh"), "mtserve", str(got)], env=env, capture_output=True, text=True
    )
    assert f.returncode == 0, f.stderr
    want = sorted(x.relative_to(reports) for x in reports.rglob("*") if x.is_file())
    assert sorted(x.relative_to(got) for x in got.rglob("*") if x.is_file()) == want
    assert len(want) == 4
    for rel in want:
        assert (got / rel).read_bytes() == (reports / rel).read_bytes(), rel
    assert json.loads((got / "capacity.json").read_text())["multitask"]["max_rps"] == 0.0
