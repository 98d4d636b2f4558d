"""`mtserve task add / retrain / remove` killed (SIGKILL) at several points of a live change, under load.

A real `mtserve serve` (explicit model control) serves a copy of the tiny test repository while an open loop
sends utterances to `multitask` throughout. Each case runs a real `mtserve task` process and kills it: during
training (from outside, once its staging folder exists in the run directory), or at a named point of the change
(MTSERVE_TASK_CRASH_AT: the process SIGKILLs itself there, lifecycle/journal.py). Afterwards:

1. the server still serves every task it served before (and no request of the open loop ever fails);
2. `mtserve export --check` says the repository has an unfinished change (from the point the journal exists);
3. `mtserve task recover` undoes the change (or finishes it, past the registry commit point) and puts the
   server back; then the repository passes `mtserve export --check` and the server serves exactly what the
   registry lists;
4. rerunning the same command completes the change.

Then two changes started at once: one fails at once with a clear error, the other completes, the registry is
valid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mtserve.core import registry
from tests.reliability.harness import MTSERVE, Client, Section, Serve, open_loop

pytestmark = pytest.mark.reliability

K = ["--k", "3"]  # one depth (1: inside the tiny run's first segment), so an add splits it too
# (action, task, kill point, expected outcome)
CASES = [
    ("add", "mood", "training", "undone"),
    ("add", "mood", "staged", "undone"),
    ("add", "mood", "step-1", "undone"),  # after the first rename
    ("add", "mood", "before-load", "undone"),  # folders in place, the heads' configs written, none loaded
    ("add", "mood", "before-retire", "undone"),  # the server already serves the new models
    ("add", "mood", "before-commit", "undone"),  # just before the registry write
    ("add", "mood", "committed", "finished"),  # registry written, run directory not yet updated
    ("retrain", "sentiment", "before-retire", "undone"),
    ("retrain", "sentiment", "committed", "finished"),
    ("remove", "domain", "before-unload", "undone"),  # the new ensemble serves, the old models still loaded
    ("remove", "domain", "before-retire", "undone"),  # unloaded, folders not yet archived
]


def write_tsv(path: Path, rows) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
    return path


def rows(data, split: str, n: int):
    s = getattr(data, split)
    return [(t, data.spec.labels[y]) for t, y in list(zip(s.texts, s.labels, strict=True))[:n]]


def outputs(url: str) -> dict[str, np.ndarray]:
    import tritonclient.grpc as g

    with g.InferenceServerClient(url) as c:
        inp = g.InferInput("text", [2, 1], "BYTES")
        inp.set_data_from_numpy(np.array([[b"turn on the lights"], [b"book a flight now"]], dtype=np.object_))
        r = c.infer("multitask", [inp], client_timeout=60)
        return {o.name: r.as_numpy(o.name) for o in r.get_response().outputs}


def ready(url: str) -> set[tuple[str, str]]:
    import tritonclient.grpc as g

    with g.InferenceServerClient(url) as c:
        index = c.get_model_repository_index(as_json=True)["models"]
    return {(m["name"], m["version"]) for m in index if m.get("state") == "READY"}


def mtserve(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MTSERVE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def check(repo: Path) -> subprocess.CompletedProcess:
    return mtserve("export", "--check", str(repo), timeout=300)


@pytest.fixture(scope="module")
def ws(tiny_run, tiny_repo, tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("taskcrash")
    run, repo = d / "run", d / "repo" / "model_repository"
    shutil.copytree(tiny_run, run)
    shutil.copytree(tiny_repo, repo)
    sentiment = tiny_data["sentiment"]
    files = {
        "mood": (
            write_tsv(d / "mood_train.tsv", rows(sentiment, "train", 160)),
            write_tsv(d / "mood_dev.tsv", rows(sentiment, "dev", 50)),
        ),
        "sentiment": (
            write_tsv(d / "sent_train.tsv", rows(sentiment, "train", 160)[::-1]),
            write_tsv(d / "sent_dev.tsv", rows(sentiment, "dev", 50)),
        ),
    }
    with Serve(repo, "--model-control", "explicit", "--load-model", "*") as serve:
        yield d, run, repo, files, serve


def command(action: str, task: str, run: Path, repo: Path, files: dict, url: str) -> list[str]:
    common = ["--repo", str(repo), "--run-dir", str(run), "--server", url]
    if action in ("add", "retrain"):
        train, dev = files[task]
        return [
            "task",
            action,
            task,
            "--train",
            str(train),
            "--dev",
            str(dev),
            *common,
            *K,
            "--cache-dir",
            "",
        ]
    return ["task", action, task, *common]


def killed_run(args: list[str], point: str, run: Path) -> tuple[int, str, float]:
    """Run `mtserve task ...` and have it killed at `point`: (exit code, its output, seconds)."""
    t0 = time.monotonic()
    if point == "training":  # from outside: once its staging folder exists in the run directory, plus 1 s
        p = subprocess.Popen(
            [str(MTSERVE), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        end = time.monotonic() + 300
        while time.monotonic() < end and p.poll() is None and not list(run.glob(f".task-{p.pid}-*")):
            time.sleep(0.05)
        time.sleep(1.0)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        out, _ = p.communicate(timeout=60)
        return p.returncode, out, time.monotonic() - t0
    r = mtserve(*args, env={"MTSERVE_TASK_CRASH_AT": point})
    return r.returncode, r.stdout + r.stderr, time.monotonic() - t0


def undo_for_next(action: str, task: str, run: Path, repo: Path, url: str) -> None:
    """Back to the starting repository's task set, through the normal commands."""
    back = {"add": "remove", "retrain": "rollback", "remove": "rollback"}[action]
    r = mtserve("task", back, task, "--repo", str(repo), "--run-dir", str(run), "--server", url)
    assert r.returncode == 0, r.stderr


def test_task_changes_killed_under_load(ws):
    d, run, repo, files, serve = ws
    url = serve.url
    sec = Section("task_crash", "`mtserve task` killed (SIGKILL) during a live change, under load")
    sec.measurements["repository"] = (
        "tiny test BERT, 4 tasks; a live Triton (explicit mode) serves it throughout"
    )
    client = Client(url)
    stop = threading.Event()
    box = {}
    traffic = threading.Thread(
        target=lambda: box.setdefault("t", open_loop(client, 20.0, 3000.0, 30.0, "during changes", stop=stop))
    )
    traffic.start()
    cases = []
    try:
        base_outputs, base_ready = set(outputs(url)), ready(url)
        for action, task, point, expected in CASES:
            args = command(action, task, run, repo, files, url)
            before_ready, before_out = ready(url), outputs(url)
            rev_before = registry.load(repo).revision
            code, out, took = killed_run(args, point, run)
            journal = registry.journal_path(repo).exists()
            during = set(outputs(url))  # the server answers, whatever the repository looks like now
            chk = check(repo)
            rec = mtserve("task", "recover", "--repo", str(repo), "--server", url, "--run-dir", str(run))
            chk2 = check(repo)
            reg = registry.load(repo)
            served = set(outputs(url))
            now_ready = ready(url)
            outcome = "undone" if reg.revision == rev_before else "finished"
            leftovers = [p.name for p in repo.parent.iterdir() if ".task-" in p.name] + [
                p.name for p in run.glob(".task-*")
            ]
            case = {
                "change": f"{action} {task}",
                "killed_at": point,
                "exit_code": code,
                "seconds_to_kill": round(took, 1),
                "journal_left": journal,
                "served_after_kill": sorted(during),
                "check_after_kill": chk.returncode,
                "check_after_kill_says": (chk.stdout.strip().splitlines() or [""])[0][:200],
                "recover_says": (rec.stdout + rec.stderr).strip()[-300:],
                "check_after_recover": chk2.returncode,
                "outcome": outcome,
                "server_matches_registry": served
                == {
                    f"{t}_{k}"
                    for t, e in reg.tasks.items()
                    for k in ("scores", "label")
                    if k == "scores" or e.labels
                },
                "ready_as_before": now_ready == before_ready,
                "leftovers": leftovers,
            }
            rerun = None
            if outcome == "undone":
                r = mtserve(*args)
                rerun = r.returncode
                case["rerun_exit_code"] = rerun
                case["check_after_rerun"] = check(repo).returncode
            cases.append(case)
            sec.measurements["cases"] = cases
            # served meanwhile: every task served before, but the one a removal takes away (once the new ensemble
            # is loaded it is no longer served, as the change intends)
            kept = {o for o in before_out if not (action == "remove" and o.startswith(f"{task}_"))}
            ok = (
                code == -signal.SIGKILL
                and kept <= during
                and chk2.returncode == 0
                and rec.returncode == 0
                and case["server_matches_registry"]
                and not leftovers
                and outcome == expected
                and (
                    outcome != "undone"
                    or (case["ready_as_before"] and rerun == 0 and case["check_after_rerun"] == 0)
                )
                and (point in ("training", "staged") or (journal and chk.returncode == 1))
            )
            sec.check(
                f"{action} {task} killed at {point}",
                outcome,
                expected,
                ok,
                "killed by SIGKILL; every task served meanwhile; check flags the journal; recover -> check ok, "
                "server = registry; undone: rerun completes",
            )
            sec.save()
            undo_for_next(action, task, run, repo, url)
        # two changes started at once
        a = subprocess.Popen(
            [str(MTSERVE), *command("add", "mood", run, repo, files, url)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        b = subprocess.Popen(
            [str(MTSERVE), "task", "remove", "domain", "--repo", str(repo), "--server", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        (_, ea), (_, eb) = a.communicate(timeout=900), b.communicate(timeout=900)
        codes = sorted([a.returncode, b.returncode])
        refused = ea if a.returncode else eb
        reg = registry.load(repo)
        both = {
            "exit_codes": {"add mood": a.returncode, "remove domain": b.returncode},
            "refusal": refused.strip()[-300:],
            "check": check(repo).returncode,
            "registry_valid": registry.validate(reg.to_dict()) == [],
        }
        sec.measurements["concurrent"] = both
        sec.check(
            "two changes at once",
            both["exit_codes"],
            "one 0, one 2",
            codes == [0, 2] and "another `mtserve task` is changing" in refused and both["check"] == 0,
            "the second fails at once with a clear error; the registry is valid and the repository passes the check",
        )
        if a.returncode == 0:
            undo_for_next("add", "mood", run, repo, url)
        if b.returncode == 0:
            undo_for_next("remove", "domain", run, repo, url)
        sec.check(
            "back where it started",
            sorted(set(outputs(url))),
            sorted(base_outputs),
            set(outputs(url)) == base_outputs and {m for m, _ in ready(url)} == {m for m, _ in base_ready},
            "the same outputs, and the same models ready, as at the start (versions move on)",
        )
    finally:
        stop.set()
        traffic.join(timeout=120)
        client.close()
        if "t" in box:
            t = box["t"].summary()
            sec.measurements["traffic"] = t
            sec.check(
                "no request failed during all the changes and kills",
                t["failed"],
                0,
                t["failed"] == 0 and t["ok"] > 0,
                f"open loop, 20 utterances/s to multitask, {t['sent']} sent: {t['codes']}",
            )
        sec.save()
    assert not sec.failed(), "\n".join(sec.failed())
