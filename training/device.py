"""Where and in what precision training runs: `--device auto|cpu|cuda|cuda:N`, `--precision fp32|bf16|fp16`.

Every stage uses the same `Compute`: the frozen trunk's feature pass, full fine-tuning, partial fine-tuning,
distillation and scoring. Weights stay fp32 (the optimizer's master copy); bf16/fp16 run the forward and
backward passes under torch.autocast, and fp16 on CUDA scales the loss (its range is too small for gradients
otherwise). Results always come back to the CPU as fp32: the cache, the checkpoints and the ONNX export do not
depend on where training ran. The served score (pipeline.served_dev_score) is computed in fp32, as Triton
serves it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from mtserve.core.errors import UserError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Compute:
    device: torch.device
    precision: str = "fp32"

    @property
    def dtype(self) -> torch.dtype | None:
        return DTYPES[self.precision]

    def autocast(self):
        """The forward pass's context: autocast to bf16/fp16, or nothing at fp32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """Loss scaling: on for fp16 on CUDA only (bf16 has fp32's range; CPU fp16 autocast is rarely used)."""
        return torch.amp.GradScaler(
            self.device.type, enabled=self.precision == "fp16" and self.device.type == "cuda"
        )

    def to(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.device, non_blocking=True) for t in tensors)


CPU = Compute(torch.device("cpu"))


def resolve(device: str = "auto", precision: str = "fp32") -> Compute:
    """`--device` and `--precision` checked against this machine: a clear error instead of a CUDA traceback."""
    if precision not in DTYPES:
        raise UserError(f"--precision must be one of {', '.join(DTYPES)}, got {precision!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return Compute(torch.device("cpu"), precision)
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device here (torch {torch.__version__}, CPU build?)")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise UserError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16 support")
        return Compute(torch.device(device), precision)
    raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
