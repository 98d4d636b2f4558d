"""Latency of the per-task and multitask paths at a low, steady rate: the check for the 500 ms batcher stalls.

    python scripts/per_task_low_rate.py model_repository/multitask [--rate 3] [--seconds 30]

Starts a local Triton on the repository and sends one utterance every 1/rate seconds for `--seconds`: on the
per-task path as the load test does (every single_<task> ensemble called at once, from one thread each), then to
`multitask`. Prints p50, p99, the maximum and how many utterances took over 200 ms. With a queue policy on the
tokenizer (which every single_<task> shares) 11 of 84 utterances took about 500 ms here: any policy turns off
Triton's batcher prefetching, and its wait for a free instance (500 ms timeout) can miss its wake-up
(docs/overload.md).
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import tritonclient.grpc as g

from mtserve.core import names, registry
from mtserve.serving.triton import TritonServer

TEXTS = ["turn on the kitchen lights please", "what's the weather tomorrow in oslo", "play some jazz"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repo")
    ap.add_argument("--rate", type=float, default=3.0, help="utterances per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    tasks = list(registry.load(args.repo).tasks)
    server = TritonServer(args.repo)
    server.start()
    try:
        client = g.InferenceServerClient(server.grpc_url)

        def call(model: str, text: str) -> None:
            inp = g.InferInput(names.TEXT, [1, 1], "BYTES")
            inp.set_data_from_numpy(np.array([[text.encode()]], dtype=np.object_))
            client.infer(model, [inp], client_timeout=10)

        for label, models in (
            ("per-task", [names.single(t) for t in tasks]),
            ("multitask", [names.MULTITASK]),
        ):
            latencies, end, i = [], time.monotonic() + args.seconds, 0
            while time.monotonic() < end:
                t0 = time.perf_counter()
                threads = [threading.Thread(target=call, args=(m, TEXTS[i % len(TEXTS)])) for m in models]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                latencies.append((time.perf_counter() - t0) * 1000)
                i += 1
                time.sleep(max(0.0, 1 / args.rate - (time.perf_counter() - t0)))
            a = np.array(latencies)
            print(
                f"{label}: {len(a)} utterances at {args.rate:g}/s: p50 {np.median(a):.1f} ms, "
                f"p99 {np.percentile(a, 99):.1f} ms, max {a.max():.1f} ms, over 200 ms: {int((a > 200).sum())}",
                flush=True,
            )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
