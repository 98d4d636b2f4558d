"""gRPC client for the served ensembles, and `mtserve predict`.

The task list is read from the ensemble's own metadata (its `<task>_scores` outputs), so a
client never hard-codes which tasks are deployed. A request for some tasks goes to the cheapest served paths
that cover them (path_<task>, group_<g>, `multitask`: core/routing.py), read from the server's own model configs.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mtserve.core import names, routing
from mtserve.core.errors import Unreachable, UserError
from mtserve.serving.endpoint import TLS, Endpoint, add_connection_arguments, tls_from

# What an overloaded deployment answers instead of waiting: Triton's queue timeout (UNAVAILABLE), a full queue
# or rate limit (RESOURCE_EXHAUSTED), an ingress or KServe with no ready replica (UNAVAILABLE). Worth retrying.
RETRYABLE = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")
GRPC_SERVICE = "inference.GRPCInferenceService"
MAX_ATTEMPTS = 5  # gRPC's own cap on retryPolicy.maxAttempts (larger values are treated as 5)


def service_config(
    retries: int = 4,
    backoff_s: float = 0.1,
    max_backoff_s: float = 2.0,
    retry_tokens: int = 10,
    token_ratio: float = 0.1,
) -> dict:
    """The channel's gRPC service config: gRPC itself retries a call the server sheds (retryPolicy: `retries`
    more attempts, exponential backoff with full jitter from `backoff_s` up to `max_backoff_s`), within the call's
    deadline, and only while the channel's retry budget lasts (retryThrottling): every failed attempt costs a token,
    every success earns back `token_ratio`, and retries stop while half of the `retry_tokens` or more are spent.
    Against a server that sheds everything a client then sends about one attempt per call after its first few
    failures, instead of 1 + `retries`: clients do not multiply the load of a server that is already shedding."""
    if not 0 <= retries < MAX_ATTEMPTS:
        raise UserError(f"--retries {retries}: gRPC allows 0 to {MAX_ATTEMPTS - 1} retries per call")
    if backoff_s <= 0 or max_backoff_s < backoff_s:
        raise UserError(f"backoff {backoff_s} s up to {max_backoff_s} s: both > 0, the first no larger")
    if not 0 < retry_tokens <= 1000 or not 0 < token_ratio <= 1:
        raise UserError(
            f"retry budget {retry_tokens} tokens, {token_ratio} per success: gRPC takes 1..1000 and (0, 1]"
        )
    method = {"name": [{"service": GRPC_SERVICE, "method": "ModelInfer"}]}
    if retries:
        method["retryPolicy"] = {
            "maxAttempts": retries + 1,
            "initialBackoff": f"{backoff_s:.3f}s",
            "maxBackoff": f"{max_backoff_s:.3f}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": list(RETRYABLE),
        }
    return {
        "methodConfig": [method],
        "retryThrottling": {"maxTokens": retry_tokens, "tokenRatio": round(token_ratio, 3)},
    }


class MultitaskClient:
    """Calls the served paths over Triton gRPC: for some tasks, the cheapest that cover them (`route`); for every
    task, `multitask`; or a model named by the caller (any path, `single_<task>`). One channel per client.

    `timeout` is each call's whole deadline, retries included. Retries are gRPC's own (the channel's service
    config, `service_config` above): a call the server sheds (RETRYABLE) is tried again up to `retries` times with
    jittered exponential backoff, while the deadline and the client's retry budget (`retry_tokens`, `token_ratio`)
    allow; nothing else is retried."""

    def __init__(
        self,
        url: str = "127.0.0.1:8001",
        timeout: float = 30.0,
        authority: str | None = None,
        tls: TLS | None = None,
        retries: int = 4,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
        retry_tokens: int = 10,
        token_ratio: float = 0.1,
    ):
        import tritonclient.grpc as grpcclient
        from tritonclient.grpc._client import MAX_GRPC_MESSAGE_SIZE

        self._grpc = grpcclient
        # Behind a KServe/Knative ingress the gateway routes on the HTTP/2 :authority (the service's host
        # name), and with TLS its certificate names that host: serving/endpoint.py builds both.
        self.endpoint = Endpoint(url, authority, tls)
        self.url = self.endpoint.describe()
        self.timeout = timeout
        self.service_config = service_config(retries, backoff_s, max_backoff_s, retry_tokens, token_ratio)
        # Given channel args replace tritonclient's defaults: keep its message size limits.
        channel_args = self.endpoint.options(
            [
                ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
                ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
                ("grpc.enable_retries", 1),
                ("grpc.service_config", json.dumps(self.service_config)),
            ]
        )
        creds = tls.credentials() if tls is not None else None
        self.client = grpcclient.InferenceServerClient(
            url=self.endpoint.address, channel_args=channel_args, creds=creds
        )
        self._meta: dict[str, dict] = {}
        self._paths: list[routing.ServedPath] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
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

    def served_paths(self) -> list[routing.ServedPath]:
        """What the server offers clients: `multitask`, every path_<task> and group_<g> it has loaded, each with
        its tasks and cost from its config's parameters (read once per client).

        The candidates come from `multitask`'s own config (its `mtserve_tasks` and `mtserve_groups`), each then
        asked whether it is ready: the repository index would list them in one call, but a runtime that allows
        explicit load/unload restricts it (the ServingRuntime in k8s/ does), while readiness and configs stay
        open to every client. A path not loaded is not offered: its tasks go where else they are served."""
        if self._paths is None:
            from tritonclient.utils import InferenceServerException

            def params(model: str) -> dict[str, str]:
                cfg = self.client.get_model_config(model, as_json=True, client_timeout=self.timeout)
                return {k: v.get("string_value", "") for k, v in cfg["config"].get("parameters", {}).items()}

            paths = []
            try:
                if self.client.is_model_ready(names.MULTITASK, client_timeout=self.timeout):
                    for model in routing.candidates(params(names.MULTITASK)):
                        ready = model == names.MULTITASK or self.client.is_model_ready(
                            model, client_timeout=self.timeout
                        )
                        path = routing.from_parameters(model, params(model)) if ready else None
                        if path is not None:
                            paths.append(path)
            except InferenceServerException as e:
                raise UserError(f"the served paths at {self.url}: {e.message()}") from None
            self._paths = paths
        return self._paths

    def route(self, tasks: list[str]) -> list[routing.Call]:
        """The calls a request for `tasks` makes: the cheapest served paths covering them (core/routing.py).
        A server without paths (a repository exported before them) gets one call of `multitask`."""
        paths = self.served_paths()
        if not paths:
            return [routing.Call(names.MULTITASK, tuple(tasks), 0)]
        return routing.plan(tasks, paths)

    def infer(
        self,
        texts: list[str],
        pairs: list[str] | None = None,
        tasks: list[str] | None = None,
        model: str | None = None,
    ) -> dict[str, dict]:
        """{task: {"scores": float32 [B, C], "label": [str] * B (classification only)}}.

        `tasks` without `model`: the cheapest served paths that cover them, called in parallel (`route`); neither:
        `multitask`. With `model`, that model only: asking it for a subset of its tasks returns only their outputs,
        but runs every head it has (its wrapper asks its graph for every output: docs/overload.md)."""
        if model is None and tasks:
            calls = self.route(list(tasks))
            if len(calls) == 1:
                return self.infer(texts, pairs, list(calls[0].tasks), calls[0].model)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mtserve-route")
            futures = [self._pool.submit(self.infer, texts, pairs, list(c.tasks), c.model) for c in calls]
            answer: dict[str, dict] = {}
            for f in futures:
                answer |= f.result()
            return {t: answer[t] for t in dict.fromkeys(tasks)}
        model = model or names.MULTITASK
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
        """One call; gRPC retries it under the channel's service config (retries, backoff, budget)."""
        try:
            return self.client.infer(model, inputs, outputs=outputs, client_timeout=self.timeout)
        except exc_type as e:
            # a server that does not answer in time, or sheds the call after every retry, is out of reach for
            # this call (exit 3); anything else it answers is about the request (exit 2)
            down = str(e.status()).rpartition(".")[2] in (*RETRYABLE, "DEADLINE_EXCEEDED")
            raise (Unreachable if down else UserError)(f"{model} at {self.url}: {e.message()}") from None


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
    p.add_argument(
        "--model",
        help="call this model only (multitask, path_<task>, group_<g>, single_<task>); default: with --tasks, the "
        "cheapest served paths covering them, else multitask",
    )
    add_connection_arguments(p)
    p.add_argument(
        "--tasks",
        help="comma-separated tasks: only their outputs, through the cheapest served paths that cover them",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the calls --tasks would make (JSON: model, tasks, layers per utterance) and call nothing; "
        "with --repo, from its registry.json, else from the server's model configs",
    )
    p.add_argument("--repo", help="a model repository: --plan reads its registry.json instead of the server")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds for the whole call, retries included")
    p.add_argument(
        "--retries",
        type=int,
        default=4,
        help="retries of a call the server sheds (UNAVAILABLE, RESOURCE_EXHAUSTED), with jittered backoff, "
        "0..4 (gRPC's retryPolicy)",
    )
    p.add_argument(
        "--retry-tokens",
        type=int,
        default=10,
        help="the client's retry budget (gRPC retryThrottling maxTokens): each shed attempt spends one, each "
        "success earns --token-ratio back, retries stop while half are spent",
    )
    p.add_argument("--token-ratio", type=float, default=0.1, help="tokens a successful call earns back")


def print_plan(args, tasks: list[str] | None) -> int:
    """`--plan`: the calls a request for `tasks` would make and what they cost, as JSON; nothing is inferred."""
    if not tasks:
        raise UserError("--plan needs --tasks a,b,...")
    if args.model:
        raise UserError("--plan shows the routing of --tasks; --model names the call itself")
    if args.repo:
        from mtserve.core import registry

        calls = routing.plan(tasks, routing.catalogue(registry.load(args.repo)))
    else:
        with MultitaskClient(args.url, args.timeout, authority=args.authority, tls=tls_from(args)) as client:
            try:
                calls = client.route(tasks)
            except UserError:
                raise
            except Exception as e:
                raise Unreachable(f"cannot reach Triton at {args.url}: {e}") from None
    print(json.dumps([c.to_dict() for c in calls]))
    return 0


def run(args) -> int:
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    if args.plan:
        return print_plan(args, tasks)
    texts = args.text or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise UserError("give text as arguments or on stdin")
    try:
        with MultitaskClient(
            args.url,
            args.timeout,
            authority=args.authority,
            tls=tls_from(args),
            retries=args.retries,
            retry_tokens=args.retry_tokens,
            token_ratio=args.token_ratio,
        ) as client:
            if not client.client.is_server_live(client_timeout=5):
                raise Unreachable(f"no Triton server live at {client.url}")
            answer = client.infer(texts, args.pair, tasks, args.model)
    except UserError:
        raise
    except Exception as e:  # connection refused, a failed TLS handshake: one line, not a traceback
        where = args.url + (f" (authority {args.authority})" if args.authority else "")
        text = str(e).lower()
        if tls_from(args) is not None and any(k in text for k in ("ssl", "handshake", "certificate")):
            # the server answered; the certificates given do not fit it: a usage error (exit 2)
            hint = " (TLS: check --root-cert, and that the certificate names the --authority host)"
            raise UserError(f"cannot reach Triton at {where}: {e}{hint}") from None
        raise Unreachable(f"cannot reach Triton at {where}: {e}") from None
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
