"""The client retries what an overloaded deployment sheds (UNAVAILABLE, RESOURCE_EXHAUSTED) with backoff inside its
deadline, and nothing else, within a retry budget (gRPC's own retryPolicy and retryThrottling: serving/client.py).
The server is the real local Triton behind a gRPC proxy that sheds the first calls (or all of them), as Triton's
queue timeout or an ingress with no ready replica would."""

from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
import pytest

from mtserve.core.errors import UserError
from mtserve.serving.client import MultitaskClient


class SheddingProxy:
    """Forwards every call to Triton, except that the first `shed` ModelInfer calls get `code` at once."""

    def __init__(self, upstream: str, shed: int, code: grpc.StatusCode):
        self.upstream = grpc.insecure_channel(upstream)
        self.shed, self.code, self.infer_calls = shed, code, 0
        proxy = self

        class Forward(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method

                def handle(request: bytes, context):
                    if method.endswith("/ModelInfer"):
                        proxy.infer_calls += 1
                        if proxy.infer_calls <= proxy.shed:
                            context.abort(proxy.code, "shed by the test proxy")
                    try:
                        return proxy.upstream.unary_unary(method)(request, timeout=30)
                    except grpc.RpcError as e:
                        context.abort(e.code(), e.details())

                return grpc.unary_unary_rpc_method_handler(handle)

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers([Forward()])
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def close(self):
        self.server.stop(grace=None)
        self.upstream.close()


@pytest.mark.triton
@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_shed_calls_are_retried_within_the_deadline(triton, code):
    texts = ["turn on the kitchen lights"]
    with MultitaskClient(triton.grpc_url) as direct:
        want = direct.infer(texts)
    proxy = SheddingProxy(triton.grpc_url, shed=2, code=code)
    try:
        with MultitaskClient(proxy.address, timeout=20, retries=4, backoff_s=0.05) as client:
            got = client.infer(texts)
            assert proxy.infer_calls == 3  # two shed, the third answered
        for task in want:
            assert np.array_equal(got[task]["scores"], want[task]["scores"])
        proxy.infer_calls = 0  # no retries: the shed call is the answer, named clearly
        with MultitaskClient(proxy.address, timeout=20, retries=0) as client:
            with pytest.raises(UserError, match="shed by the test proxy"):
                client.infer(texts)
            assert proxy.infer_calls == 1
    finally:
        proxy.close()


@pytest.mark.triton
def test_other_errors_and_an_exhausted_deadline_are_not_retried(triton):
    proxy = SheddingProxy(triton.grpc_url, shed=10**6, code=grpc.StatusCode.INVALID_ARGUMENT)
    try:
        with MultitaskClient(proxy.address, timeout=20, retries=4, backoff_s=0.05) as client:
            with pytest.raises(UserError, match="shed by the test proxy"):
                client.infer(["hi"])
            assert proxy.infer_calls == 1  # a bad request stays bad: no retry
        proxy.code, proxy.infer_calls = grpc.StatusCode.UNAVAILABLE, 0
        # backoffs of up to 1, 2, 4, 8 s: four retries fit in a 0.5 s deadline with a chance under 1e-4
        with MultitaskClient(proxy.address, timeout=0.5, retries=4, backoff_s=1.0, max_backoff_s=8) as client:
            with pytest.raises(UserError, match="(?i)deadline exceeded|shed by the test proxy"):
                client.infer(["hi"])
            assert 1 <= proxy.infer_calls < 5  # the deadline, not the retry count, ended it
    finally:
        proxy.close()


@pytest.mark.triton
def test_the_retry_budget_keeps_attempts_near_one_per_call_against_a_server_that_sheds_everything(triton):
    """Before the budget, 40 calls against a server that sheds every request sent 200 attempts (5.0 per call, issue
    29). Now the first calls spend the budget (10 tokens, retries stop at half) and the rest go out once each."""
    proxy = SheddingProxy(triton.grpc_url, shed=10**6, code=grpc.StatusCode.UNAVAILABLE)
    try:
        with MultitaskClient(proxy.address, timeout=10, retries=4, backoff_s=0.01) as client:
            client.tasks()  # metadata goes through to Triton: only inference is shed
            for _ in range(40):
                with pytest.raises(UserError, match="shed by the test proxy"):
                    client.infer(["turn on the kitchen lights"])
        per_call = proxy.infer_calls / 40
        print(f"40 calls, {proxy.infer_calls} attempts: {per_call:.3f} per call")
        assert per_call <= 1.3, proxy.infer_calls
        assert proxy.infer_calls > 40  # the first calls were retried: the policy is on, the budget ran out
        # a healthy server earns the budget back (0.1 token per success): retries work again after it
        proxy.shed, proxy.infer_calls = 0, 0
        with MultitaskClient(proxy.address, timeout=10, retries=4, backoff_s=0.01) as client:
            for _ in range(3):
                client.infer(["book a table"])
            assert proxy.infer_calls == 3
    finally:
        proxy.close()


def test_retry_settings_are_checked_and_written_as_grpc_service_config():
    from mtserve.serving.client import service_config

    cfg = service_config(retries=2, backoff_s=0.05, max_backoff_s=1, retry_tokens=20, token_ratio=0.25)
    policy = cfg["methodConfig"][0]["retryPolicy"]
    assert policy["maxAttempts"] == 3 and policy["initialBackoff"] == "0.050s"
    assert set(policy["retryableStatusCodes"]) == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    assert cfg["retryThrottling"] == {"maxTokens": 20, "tokenRatio": 0.25}
    assert "retryPolicy" not in service_config(retries=0)["methodConfig"][0]
    for bad in ({"retries": 5}, {"retries": -1}, {"retry_tokens": 0}, {"token_ratio": 1.5}, {"backoff_s": 0}):
        with pytest.raises(UserError):
            service_config(**bad)
