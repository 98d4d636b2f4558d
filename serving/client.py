"""gRPC client for the served ensembles, and `mtserve predict`.

The task list is read from the ensemble's own metadata (its `<task>_scores` outputs), so a
client never hard-codes which tasks are deployed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np

from mtserve.core.errors import UserError
from mtserve.serving.endpoint import TLS, Endpoint, add_connection_arguments, tls_from

# What an overloaded deployment answers instead of waiting: Triton's queue timeout (UNAVAILABLE), a full queue
# or rate limit (RESOURCE_EXHAUSTED), an ingress or KServe with no ready replica (UNAVAILABLE). Worth retrying.
RETRYABLE = ("StatusCode.UNAVAILABLE", "StatusCode.RESOURCE_EXHAUSTED")


class MultitaskClient:
    """Calls `multitask` (or any `single_<task>`) over Triton gRPC. One channel per client.

    `timeout` is each call's whole deadline, retries included: a call the server sheds (RETRYABLE) is tried
    again up to `retries` times, after an exponential backoff with full jitter (so shed clients do not come back
    in step), as long as the deadline leaves time for it."""

    def __init__(
        self,
        url: str = "127.0.0.1:8001",
        timeout: float = 30.0,
        authority: str | None = None,
        tls: TLS | None = None,
        retries: int = 4,
        backoff_s: float = 0.1,
    ):
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        # Behind a KServe/Knative ingress the gateway routes on the HTTP/2 :authority (the service's host
        # name), and with TLS its certificate names that host: serving/endpoint.py builds both.
        self.endpoint = Endpoint(url, authority, tls)
        self.url = self.endpoint.describe()
        self.timeout = timeout
        self.retries, self.backoff_s = retries, backoff_s
        self.attempts = 0  # of the last infer call
        channel_args = self.endpoint.options() or None
        creds = tls.credentials() if tls is not None else None
        self.client = grpcclient.InferenceServerClient(
            url=self.endpoint.address, channel_args=channel_args, creds=creds
        )
        self._meta: dict[str, dict] = {}

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def tasks(self, model: str = "multitask") -> list[str]:
        """Task names served by `model`, from its outputs."""
        if model not in self._meta:
            from tritonclient.utils import InferenceServerException

            try:
                self._meta[model] = self.client.get_model_metadata(
                    model, as_json=True, client_timeout=self.timeout
                )
            except InferenceServerException as e:
                raise UserError(f"model {model!r} at {self.url}: {e.message()}") from None
        outs = [o["name"] for o in self._meta[model]["outputs"]]
        return [o[: -len("_scores")] for o in outs if o.endswith("_scores")]

    def infer(
        self,
        texts: list[str],
        pairs: list[str] | None = None,
        tasks: list[str] | None = None,
        model: str = "multitask",
    ) -> dict[str, dict]:
        """{task: {"scores": float32 [B, C], "label": [str] * B (classification only)}}.

        Asking for a subset of tasks returns only their outputs (every head still runs: docs/overload.md)."""
        from tritonclient.utils import InferenceServerException

        served = self.tasks(model)
        tasks = tasks or served
        unknown = [t for t in tasks if t not in served]
        if unknown:
            raise UserError(f"unknown task(s) {unknown}: {model} serves {served}")
        if not texts:
            raise UserError("no text given")
        g = self._grpc
        text = g.InferInput("text", [len(texts), 1], "BYTES")
        text.set_data_from_numpy(np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_))
        inputs = [text]
        if pairs is not None:
            if len(pairs) != len(texts):
                raise UserError(f"{len(pairs)} text pairs for {len(texts)} texts")
            pair = g.InferInput("text_pair", [len(pairs), 1], "BYTES")
            pair.set_data_from_numpy(np.array([[p.encode("utf-8")] for p in pairs], dtype=np.object_))
            inputs.append(pair)
        out_names = {o["name"] for o in self._meta[model]["outputs"]}
        outputs = [
            g.InferRequestedOutput(f"{t}_{kind}")
            for t in tasks
            for kind in ("scores", "label")
            if f"{t}_{kind}" in out_names
        ]
        result = self._infer_with_retries(model, inputs, outputs, InferenceServerException)
        answer = {}
        for t in tasks:
            entry = {"scores": result.as_numpy(f"{t}_scores")}
            if f"{t}_label" in out_names:
                entry["label"] = [v.decode("utf-8") for v in result.as_numpy(f"{t}_label").reshape(-1)]
            answer[t] = entry
        return answer

    def _infer_with_retries(self, model: str, inputs, outputs, exc_type):
        deadline = time.monotonic() + self.timeout
        for attempt in range(self.retries + 1):
            self.attempts = attempt + 1
            left = deadline - time.monotonic()
            try:
                return self.client.infer(model, inputs, outputs=outputs, client_timeout=max(left, 0.001))
            except exc_type as e:
                pause = random.uniform(0, self.backoff_s * 2**attempt)
                if (
                    e.status() not in RETRYABLE
                    or attempt == self.retries
                    or time.monotonic() + pause >= deadline
                ):
                    tries = f" (after {attempt + 1} attempts)" if attempt else ""
                    raise UserError(f"{model} at {self.url}: {e.message()}{tries}") from None
                time.sleep(pause)


def format_predictions(texts: list[str], answer: dict[str, dict]) -> str:
    lines = []
    for i, text in enumerate(texts):
        lines.append(f"{text!r}")
        for task, entry in answer.items():
            scores = entry["scores"][i]
            if "label" in entry:
                lines.append(
                    f"  {task:<16} {entry['label'][i]:<20} p={float(scores.max()):.3f}  "
                    "scores=[" + ", ".join(f"{float(x):.3f}" for x in scores) + "]"
                )
            else:
                lines.append(f"  {task:<16} {float(scores[0]):.4f}")
    return "\n".join(lines)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="*", help="utterances (default: one per line on stdin)")
    p.add_argument("--pair", action="append", help="text_pair for pair tasks, once per text")
    p.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC address")
    p.add_argument("--model", default="multitask", help="multitask or single_<task>")
    add_connection_arguments(p)
    p.add_argument("--tasks", help="comma-separated subset of tasks (only their outputs are returned)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds for the whole call, retries included")
    p.add_argument(
        "--retries",
        type=int,
        default=4,
        help="retries of a call the server sheds (UNAVAILABLE, RESOURCE_EXHAUSTED), with jittered backoff",
    )


def run(args) -> int:
    texts = args.text or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise UserError("give text as arguments or on stdin")
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    try:
        with MultitaskClient(
            args.url, args.timeout, authority=args.authority, tls=tls_from(args), retries=args.retries
        ) as client:
            if not client.client.is_server_live(client_timeout=5):
                raise UserError(f"no Triton server live at {client.url}")
            answer = client.infer(texts, args.pair, tasks, args.model)
    except UserError:
        raise
    except Exception as e:  # connection refused, a failed TLS handshake: one line, not a traceback
        where = args.url + (f" (authority {args.authority})" if args.authority else "")
        hint = ""
        text = str(e).lower()
        if tls_from(args) is not None and any(k in text for k in ("ssl", "handshake", "certificate")):
            hint = " (TLS: check --root-cert, and that the certificate names the --authority host)"
        raise UserError(f"cannot reach Triton at {where}: {e}{hint}") from None
    if args.json:
        print(
            json.dumps(
                [
                    {
                        t: {
                            "scores": e["scores"][i].tolist(),
                            **({"label": e["label"][i]} if "label" in e else {}),
                        }
                        for t, e in answer.items()
                    }
                    for i in range(len(texts))
                ],
                indent=2,
            )
        )
    else:
        print(format_predictions(texts, answer))
    return 0
