"""Serve an exported GLUE run on a local Triton and check every task's dev score over gRPC against accuracy.json.

python scripts/verify_glue.py RUN_DIR REPO ACCURACY_JSON GLUE_DIR MAX_TRAIN OUT_JSON
"""

import json
import sys
import time

from mtserve.serving.triton import TritonServer
from mtserve.training.evaluate import compare, served_scores
from mtserve.training.pipeline import load_datasets
from mtserve.training.run_dir import Run

run_dir, repo, acc_path, glue_dir, max_train, out = sys.argv[1:7]
tasks = Run(run_dir).tasks()
datasets = load_datasets(tasks, glue_dir, int(max_train))
acc = json.loads(open(acc_path).read())
t0 = time.perf_counter()
with TritonServer(repo) as server:
    rows = compare(acc, served_scores(server.grpc_url, datasets))
for r in rows:
    print(
        f"{r['task']:<8} in-process {r['in_process']:.4f}  triton {r['triton']:.4f}  diff {r['abs_diff']:.2e}  "
        f"{'ok' if r['ok'] else 'MISMATCH'}"
    )
json.dump({"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}, open(out, "w"), indent=2)
sys.exit(0 if all(r["ok"] for r in rows) else 1)
