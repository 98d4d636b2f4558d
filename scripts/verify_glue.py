"""Serve an exported GLUE run on a local Triton and check every task's dev score over gRPC against accuracy.json;
then serve each task's full fine-tuning (`single_<task>`) on the same rows and give every task's retention a
paired-bootstrap 95% interval: how far the dev set alone could move it.

python scripts/verify_glue.py RUN_DIR REPO ACCURACY_JSON GLUE_DIR MAX_TRAIN OUT_JSON
"""

import json
import sys
import time

from mtserve.core.tasks import score
from mtserve.serving.triton import TritonServer
from mtserve.training.evaluate import compare, retention_interval, served_outputs
from mtserve.training.pipeline import load_datasets
from mtserve.training.run_dir import Run

run_dir, repo, acc_path, glue_dir, max_train, out = sys.argv[1:7]
tasks = Run(run_dir).tasks()
datasets = load_datasets(tasks, glue_dir, int(max_train))
acc = json.loads(open(acc_path).read())
t0 = time.perf_counter()
with TritonServer(repo) as server:
    served = served_outputs(server.grpc_url, datasets)
    seconds = time.perf_counter() - t0
    full = served_outputs(server.grpc_url, datasets, single=True)
rows = compare(acc, {t: score(d.spec, served[t], d.dev.labels) for t, d in datasets.items()})
intervals = {}
for t, d in datasets.items():
    point, low, high = retention_interval(d.spec, served[t], full[t], d.dev.labels)
    # the full model as served (fp32 ONNX); accuracy.json's in-process full score ran in the run's precision
    full_score = score(d.spec, full[t], d.dev.labels)
    intervals[t] = {
        "dev_rows": len(d.dev),
        "full_served": full_score,
        "retention": point,
        "low": low,
        "high": high,
    }
for r in rows:
    iv = intervals[r["task"]]
    print(
        f"{r['task']:<8} in-process {r['in_process']:.4f}  triton {r['triton']:.4f}  diff {r['abs_diff']:.2e}  "
        f"{'ok' if r['ok'] else 'MISMATCH'}  retention {iv['retention']:.4f} [{iv['low']:.4f}, {iv['high']:.4f}]"
    )
doc = {
    "rows": rows,
    "seconds": round(seconds, 1),
    "retention_intervals": intervals,
    "intervals_how": "paired bootstrap over dev rows (2,000 resamples, seed 0): the served multitask outputs and "
    "the task's single_<task> (full fine-tuning) outputs, both through Triton, scored on the same resampled rows",
}
json.dump(doc, open(out, "w"), indent=2)
sys.exit(0 if all(r["ok"] for r in rows) else 1)
