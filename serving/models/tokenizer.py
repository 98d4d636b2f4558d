"""Triton python-backend model: text (and optional text_pair) -> BERT input ids.

Runs in NVIDIA's stock Triton image: numpy and the standard library only (wordpiece.py sits
beside this file, with vocab.txt and tokenizer_settings.json). Sequences are padded to a
power-of-two bucket so the trunk's dynamic batcher sees few distinct shapes and can batch
requests together. Bad text (invalid UTF-8) fails that request alone, with a clear error.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils
from wordpiece import WordPieceTokenizer, decode_utf8


def _texts(tensor, name):
    if tensor is None:
        return None
    values = tensor.as_numpy().reshape(-1)
    out = []
    for v in values:
        if isinstance(v, bytes):
            out.append(decode_utf8(v))
        elif isinstance(v, str):
            out.append(v)
        else:
            raise ValueError(f"{name} must be BYTES/string, got a {type(v).__name__}")
    return out


class TritonPythonModel:
    def initialize(self, args):
        here = os.path.join(args["model_repository"], args["model_version"])
        self.tokenizer = WordPieceTokenizer.from_dir(here)
        settings = json.loads(open(os.path.join(here, "tokenizer_settings.json")).read())
        self.bucket = bool(settings.get("bucket", True))

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                texts = _texts(pb_utils.get_input_tensor_by_name(request, "text"), "text")
                if texts is None:
                    raise ValueError("missing input 'text'")
                pairs = _texts(pb_utils.get_input_tensor_by_name(request, "text_pair"), "text_pair")
                if pairs is not None and len(pairs) != len(texts):
                    raise ValueError(f"text_pair has {len(pairs)} rows but text has {len(texts)}")
                enc = self.tokenizer.encode_batch(texts, pairs, bucket=self.bucket)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor(name, np.ascontiguousarray(enc[name], dtype=np.int64))
                            for name in ("input_ids", "token_type_ids", "attention_mask")
                        ]
                    )
                )
            except Exception as e:  # noqa: BLE001 - this request's error; the batch goes on
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tokenizer: {e}")))
        return responses
