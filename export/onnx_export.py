"""ONNX graphs of the trained models: the trunk (hidden states at every branch depth), each head (scores, and
the label name as a string output), each full fine-tuned baseline; optional fp16 inside with fp32 edges.

Every export is checked against PyTorch on sample inputs (the returned max abs diff goes into registry.json's
`export_checks`). export/export.py places the files in a repository; export/model_config.py writes their
configs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from mtserve.core import names
from mtserve.core.errors import UserError
from mtserve.training.backbone import Branch, TaskModel, Trunk, TrunkSegment

OPSET = 17  # LayerNormalization is native from 17; onnxruntime in Triton 23.x-25.x runs it
# --fp16: onnxruntime (fp16 inside, fp32 at the graph's edges) against PyTorch fp32. A tolerance, not a
# measurement: on CPU onnxruntime the tiny test BERT's trunk differs by ~4e-3, all-MiniLM-L6's by ~8e-3 (hidden
# states up to ~10 in magnitude), the heads' probabilities by ~1e-5.
FP16_TOL = 5e-2


# ---------------------------------------------------------------- ONNX
class _HeadForExport(nn.Module):
    def __init__(self, branch: Branch):
        super().__init__()
        self.branch = branch

    def forward(self, hidden, attention_mask):
        return self.branch.scores(hidden, attention_mask)


class _FullForExport(nn.Module):
    def __init__(self, model: TaskModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.model.scores(input_ids, token_type_ids, attention_mask)


def _add_label_output(model: onnx.ModelProto, labels: list[str]) -> onnx.ModelProto:
    """Append label = labels[argmax(scores)] as a [B, 1] string output, so the label name is served by the
    same ONNX model (no extra python step in production)."""
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.array(labels, dtype=object), "label_names"))
    g.node.append(
        helper.make_node("ArgMax", ["scores"], ["label_index"], axis=1, keepdims=1, name="label_argmax")
    )
    g.node.append(
        helper.make_node("Gather", ["label_names", "label_index"], ["label"], axis=0, name="label_gather")
    )
    g.output.append(helper.make_tensor_value_info("label", TensorProto.STRING, ["batch", 1]))
    return model


def _export(
    module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict
) -> None:
    module = module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )


def _check_against_torch(
    path: Path, module: nn.Module, feeds: dict[str, torch.Tensor], tol: float = 1e-4
) -> float:
    """onnx.checker, then onnxruntime against PyTorch on the same inputs; returns the max abs difference."""
    import onnxruntime as ort

    onnx.checker.check_model(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})
    with torch.no_grad():
        ref = module.eval()(*feeds.values())
    ref = ref if isinstance(ref, tuple) else (ref,)
    # the ONNX graph may carry extra outputs PyTorch does not compute (a head's `label`): compare the shared ones
    numeric = [sess.get_outputs()[i].name for i in range(len(ref))]
    got = dict(zip([o.name for o in sess.get_outputs()], got, strict=True))
    diff = max(float(np.abs(got[name] - r.numpy()).max()) for name, r in zip(numeric, ref, strict=True))
    if not np.isfinite(diff) or diff > tol:  # NaN compares False with everything: test finiteness first
        raise RuntimeError(f"{path}: onnxruntime differs from PyTorch by {diff:.2e} (> {tol})")
    return diff


def _toposort(graph: onnx.GraphProto) -> None:
    """Order the nodes so each one follows its inputs' producers (the fp16 converter appends its Casts at
    the end, which onnx.checker rejects although onnxruntime accepts it)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise RuntimeError(f"graph has a cycle or an unproduced input near node {rest[0].name!r}")
        pending = rest
    nodes = []
    for node in ordered:  # detached copies: the originals go with the cleared field
        nodes.append(onnx.NodeProto())
        nodes[-1].CopyFrom(node)
    del graph.node[:]
    graph.node.extend(nodes)


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and compute, fp32 graph inputs and outputs (keep_io_types): the model's config is unchanged."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        try:
            from onnxconverter_common.float16 import convert_float_to_float16
        except ImportError:
            raise UserError(
                "--fp16 needs onnxruntime's transformers tools (onnxruntime.transformers.float16) "
                "or onnxconverter-common"
            ) from None
    model = convert_float_to_float16(model, keep_io_types=True)
    _toposort(model.graph)
    return model


def _fp16_file(path: Path) -> None:
    onnx.save(to_fp16(onnx.load(str(path))), str(path))


def _sample_ids(vocab_size: int, batch: int = 3, seq: int = 11) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[1, seq - 4 :] = 0  # one padded row, so masking is exercised
    return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask}


def export_segment(
    trunk: Trunk, start: int, end: int, path: Path, vocab_size: int, *, fp16: bool = False
) -> float:
    """The trunk's layers start+1..end (names.segment): token ids (start 0) or `hidden` and `attention_mask` in,
    `hidden_out` (the hidden state at `end`) out."""
    module = TrunkSegment(trunk, start, end).eval()
    ids = _sample_ids(vocab_size)
    if start == 0:
        feeds = ids
    else:
        g = torch.Generator().manual_seed(1)
        h = trunk.embeddings.word_embeddings.embedding_dim
        feeds = {"hidden": torch.randn(3, 11, h, generator=g), "attention_mask": ids["attention_mask"]}
    dyn = {n: {0: "batch", 1: "seq"} for n in [*feeds, names.SEGMENT_OUTPUT]}
    _export(module, tuple(feeds.values()), path, list(feeds), [names.SEGMENT_OUTPUT], dyn)
    if fp16:
        _fp16_file(path)
        return _check_against_torch(path, module, feeds, tol=FP16_TOL)
    return _check_against_torch(path, module, feeds)


def export_head(branch: Branch, labels: list[str] | None, path: Path, *, fp16: bool = False) -> float:
    h = branch.config.hidden_size
    g = torch.Generator().manual_seed(1)
    feeds = {
        "hidden": torch.randn(3, 11, h, generator=g),
        "attention_mask": _sample_ids(10)["attention_mask"],
    }
    module = _HeadForExport(branch)
    _export(
        module,
        tuple(feeds.values()),
        path,
        list(feeds),
        ["scores"],
        {"hidden": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "scores": {0: "batch"}},
    )
    if fp16:
        _fp16_file(path)  # before the label output, whose ArgMax then reads the fp32 scores
    if labels is not None:
        onnx.save(_add_label_output(onnx.load(str(path)), labels), str(path))
    return _check_against_torch(path, module, feeds, **({"tol": FP16_TOL} if fp16 else {}))


def export_full(
    model: TaskModel, labels: list[str] | None, path: Path, vocab_size: int, *, fp16: bool = False
) -> float:
    feeds = _sample_ids(vocab_size)
    module = _FullForExport(model)
    dyn = {n: {0: "batch", 1: "seq"} for n in feeds} | {"scores": {0: "batch"}}
    _export(module, tuple(feeds.values()), path, list(feeds), ["scores"], dyn)
    if fp16:
        _fp16_file(path)
    if labels is not None:
        onnx.save(_add_label_output(onnx.load(str(path)), labels), str(path))
    return _check_against_torch(path, module, feeds, **({"tol": FP16_TOL} if fp16 else {}))


def infer_shapes(path: Path) -> None:
    """onnxruntime's symbolic shape inference, saved into the file: every intermediate tensor gets a (symbolic)
    shape, which the TensorRT execution provider needs to take whole graphs instead of falling back to CUDA
    for the parts it cannot size."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = SymbolicShapeInference.infer_shapes(onnx.load(str(path)), auto_merge=True)
    if model is None:
        raise RuntimeError(f"{path}: onnxruntime's symbolic shape inference failed")
    onnx.save(model, str(path))
