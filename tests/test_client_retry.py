"""The client retries what an overloaded deployment sheds (UNAVAILABLE, RESOURCE_EXHAUSTED) with backoff inside its
deadline, and nothing else. The server is the real local Triton behind a gRPC proxy that sheds the first calls,
as Triton's queue timeout or an ingress with no ready replica would."""

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
            assert client.attempts == 3 and proxy.infer_calls == 3
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
        with MultitaskClient(proxy.address, timeout=0.5, retries=50, backoff_s=0.2) as client:
            with pytest.raises(UserError, match=r"after \d+ attempts"):
                client.infer(["hi"])
            assert 1 < proxy.infer_calls < 50  # the deadline, not the retry count, ended it
    finally:
        proxy.close()
