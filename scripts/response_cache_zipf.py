"""Triton's response cache under a skewed utterance mix: throughput with and without it, both workloads.

    python scripts/response_cache_zipf.py REPO OUT_JSON [UTTERANCES] [ZIPF_S] [CONCURRENCY] [SECONDS] [ROUNDS]

REPO is a local-profile repository (e.g. `mtserve loadtest --synthetic 4`'s, or `mtserve export`'s). Two copies
are made beside OUT_JSON: one with `response_cache { enable: true }` on every ensemble (multitask, single_<task>),
what `mtserve export --response-cache` writes, and one without. Each is served by its own local Triton started
with the same flags (`--cache-config local,size=256 MiB`), on 127.0.0.1 only. Each workload runs closed-loop
(CONCURRENCY utterances in flight; per-task: one request per task, concurrently, the utterance done when all
answer; loadtest/closed_loop.py) for SECONDS, alternating cache off/on, ROUNDS times. Utterances: UTTERANCES distinct ones from the
embedded corpus, drawn with Zipf weights (rank k has weight k^-ZIPF_S), one seeded sequence per client, so
both settings see the same requests. Cache hits and misses come from Triton's own statistics.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from mtserve.loadtest.closed_loop import closed_loop, utterance_caller
from mtserve.loadtest.protocol import make_plan
from mtserve.loadtest.workload import build_pool
from mtserve.serving.triton import TritonServer

repo, out = Path(sys.argv[1]), Path(sys.argv[2])
n_utt = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
zipf_s = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else 16
seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 20.0
rounds = int(sys.argv[7]) if len(sys.argv) > 7 else 2
CACHE = "local,size=268435456"


def copy_with_cache(enable: bool) -> Path:
    dst = out.parent / f"{repo.name}-cache-{'on' if enable else 'off'}"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(repo, dst, ignore=shutil.ignore_patterns("__pycache__"))
    for cfg_path in dst.glob("*/config.pbtxt"):
        cfg = text_format.Parse(cfg_path.read_text(), mc.ModelConfig())
        if cfg.platform == "ensemble":
            cfg.ClearField("response_cache")
            if enable:
                cfg.response_cache.enable = True
            cfg_path.write_text(text_format.MessageToString(cfg))
    return dst


seen, utterances = set(), []
for u in build_pool(size=4 * n_utt):
    if u.text not in seen:
        seen.add(u.text)
        utterances.append(u)
utterances = utterances[:n_utt]
weights = np.arange(1, len(utterances) + 1, dtype=float) ** -zipf_s
weights /= weights.sum()


def cache_counts(url: str) -> tuple[int, int]:
    client = grpcclient.InferenceServerClient(url)
    hits = misses = 0
    for s in client.get_inference_statistics("").model_stats:
        hits += s.inference_stats.cache_hit.count
        misses += s.inference_stats.cache_miss.count
    return hits, misses


def window(server: TritonServer, workload: str, plan, seed: int) -> dict:
    url = server.grpc_url

    def caller(
        k: int,
    ):  # caller k's own seeded Zipf sequence: the same requests whether the cache is on or off
        order = iter(np.random.default_rng([seed, k]).choice(len(utterances), size=200_000, p=weights))
        return utterance_caller(url, plan, workload, lambda: utterances[next(order)])

    h0, m0 = cache_counts(url)
    run = closed_loop(concurrency, seconds, caller)
    elapsed, done = run.elapsed, len(run.ok())
    h1, m1 = cache_counts(url)
    hits, misses = h1 - h0, m1 - m0
    return {
        "workload": workload,
        "utterances_per_s": round(done / elapsed, 2),
        "utterances": done,
        "failed": len(run.failed()),
        "cache_hits": hits,
        "cache_misses": misses,
        "hit_ratio": round(hits / (hits + misses), 3) if hits + misses else None,
    }


results = []
repos = {False: copy_with_cache(False), True: copy_with_cache(True)}
servers = {}
try:
    for enable, path in repos.items():
        servers[enable] = TritonServer(path, cache_config=CACHE).start(timeout=600)
    plan = make_plan(servers[False].grpc_url)
    for r in range(rounds):
        for workload in ("multitask", "per-task"):
            for enable in (False, True):
                # the cache starts empty in every round's first window only: later windows find it warm, as a
                # long-running service would
                res = window(servers[enable], workload, plan, seed=r) | {"response_cache": enable, "round": r}
                results.append(res)
                print(
                    f"round {r} {workload:<9} cache {'on ' if enable else 'off'} {res['utterances_per_s']:8.1f} utt/s"
                    + (f"  hit ratio {res['hit_ratio']:.3f}" if res["hit_ratio"] is not None else ""),
                    flush=True,
                )
finally:
    for s in servers.values():
        s.stop()
    for p in repos.values():
        shutil.rmtree(p, ignore_errors=True)

summary = {}
for workload in ("multitask", "per-task"):
    off = [r["utterances_per_s"] for r in results if r["workload"] == workload and not r["response_cache"]]
    on = [r["utterances_per_s"] for r in results if r["workload"] == workload and r["response_cache"]]
    summary[workload] = {
        "off_utt_per_s": round(float(np.median(off)), 2),
        "on_utt_per_s": round(float(np.median(on)), 2),
        "speedup": round(float(np.median(on) / np.median(off)), 2),
    }
json.dump(
    {
        "what": "throughput with and without Triton's response cache on the ensembles, Zipf utterance mix",
        "command": "python scripts/response_cache_zipf.py " + " ".join(sys.argv[1:]),
        "repo": str(repo),
        "distinct_utterances": len(utterances),
        "zipf_s": zipf_s,
        "concurrency": concurrency,
        "seconds": seconds,
        "cache_config": CACHE,
        "summary": summary,
        "windows": results,
    },
    open(out, "w"),
    indent=2,
)
print(json.dumps(summary, indent=2))
