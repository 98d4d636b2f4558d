"""Triton python-backend model that runs the `model.onnx` beside it with onnxruntime on CPU.

This is the `local` profile's stand-in for Triton's onnxruntime backend (which the pip-installed
Triton lacks): the same .onnx file, the same config.pbtxt apart from the backend line and the
instance kind. Tensor names, dtypes and shapes are read from the model config Triton passes in,
never repeated here. Each request gets exactly one response; a failing request gets an error
response and the rest of the batch is still answered.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.config = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        opts = ort.SessionOptions()
        # Every python-backend instance is its own process: one intra-op thread each, or they thrash the cores.
        opts.intra_op_num_threads = int(os.environ.get("MTSERVE_ORT_THREADS", "1"))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.inputs = [i["name"] for i in self.config["input"]]
        self.outputs = [o["name"] for o in self.config["output"]]
        self.np_dtype = {
            i["name"]: pb_utils.triton_string_to_numpy(i["data_type"]) for i in self.config["input"]
        }

    def execute(self, requests):
        # Requests of one shape are run as one onnxruntime call (Triton's dynamic batcher grouped them);
        # requests whose sequence length differs run on their own.
        responses = [None] * len(requests)
        groups = {}
        for n, request in enumerate(requests):
            try:
                feeds = {}
                for name in self.inputs:
                    t = pb_utils.get_input_tensor_by_name(request, name)
                    if t is None:
                        raise ValueError(f"missing input {name!r}")
                    feeds[name] = t.as_numpy().astype(self.np_dtype[name], copy=False)
                key = tuple(v.shape[1:] for v in feeds.values())
                groups.setdefault(key, []).append((n, feeds))
            except Exception as e:  # noqa: BLE001 - becomes this request's error response
                responses[n] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(f"{type(e).__name__}: {e}")
                )
        for members in groups.values():
            try:
                sizes = [f[self.inputs[0]].shape[0] for _, f in members]
                feeds = {name: np.concatenate([f[name] for _, f in members]) for name in self.inputs}
                requested = self.outputs
                results = dict(zip(requested, self.session.run(requested, feeds), strict=True))
                start = 0
                for (n, _), size in zip(members, sizes, strict=True):
                    tensors = []
                    for name in requested:
                        value = results[name][start : start + size]
                        if value.dtype == object:
                            value = np.array(
                                [
                                    [s.encode("utf-8") if isinstance(s, str) else s for s in row]
                                    for row in value
                                ],
                                dtype=np.object_,
                            )
                        tensors.append(pb_utils.Tensor(name, value))
                    responses[n] = pb_utils.InferenceResponse(output_tensors=tensors)
                    start += size
            except Exception as e:  # noqa: BLE001
                for n, _ in members:
                    responses[n] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"{type(e).__name__}: {e}")
                    )
        return responses
