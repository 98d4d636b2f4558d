"""Will a repository fit in this machine's memory once Triton loads it? Checked before starting a server.

Locally every model but the ensembles is a python-backend model: its own process (a stub with
numpy and onnxruntime: ~35-45 MB proportional set size measured here, shared libraries split)
holding its own copy of the weights in an onnxruntime session (~1.05 x the .onnx size measured),
plus a shared-memory region. Measured on 2 demo-shape synthetic tasks (6 processes, 0.26 GiB of
ONNX): MemAvailable fell by 0.93 GiB; this estimate says 0.9 GiB, and at most 85% of MemAvailable is used. N full BERT-base baselines are
N x 440 MB of weights alone, so the per-task side of a many-task sweep is what runs out first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mtserve.core.errors import UserError

PROCESS_BYTES = 60 << 20  # one python-backend stub with numpy + onnxruntime, activations included
SHM_BYTES = 16 << 20  # serving.triton.SHM_DEFAULT_BYTES, one region per instance
WEIGHT_FACTOR = 1.1  # onnxruntime session vs file size
SERVER_BYTES = 200 << 20  # tritonserver itself
HEADROOM = 0.85  # use at most this fraction of what is available


@dataclass
class MemoryEstimate:
    processes: int
    weight_bytes: int

    @property
    def total_bytes(self) -> int:
        return (
            SERVER_BYTES
            + self.processes * (PROCESS_BYTES + SHM_BYTES)
            + int(self.weight_bytes * WEIGHT_FACTOR)
        )

    def describe(self) -> str:
        return (
            f"{self.total_bytes / 2**30:.1f} GiB ({self.processes} python-backend processes, "
            f"{self.weight_bytes / 2**30:.2f} GiB of ONNX weights)"
        )


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (the kernel's estimate of what can be allocated without swapping)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def estimate_repository(repo: str | Path) -> MemoryEstimate:
    """Count the python-backend models (and their instances) and the ONNX bytes they load."""
    repo = Path(repo)
    processes = 0
    weights = 0
    for cfg_path in sorted(repo.glob("*/config.pbtxt")):
        text = cfg_path.read_text()
        if 'platform: "ensemble"' in text:
            continue
        count = 1
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("count:"):
                try:
                    count = max(1, int(s.split(":", 1)[1]))
                except ValueError:
                    pass
        processes += count
        onnx = sorted(cfg_path.parent.glob("*/model.onnx"))
        if onnx:
            weights += count * onnx[-1].stat().st_size
    return MemoryEstimate(processes, weights)


def estimate_synthetic(
    n_tasks: int,
    full_bytes: int,
    head_bytes: int,
    trunk_bytes: int,
    baseline: bool = True,
    instances: dict[str, int] | None = None,
) -> MemoryEstimate:
    """Before exporting: N heads + trunk + tokenizer, and N full models for the per-task baseline, each model
    as many times as it has instances (`instances`: counts per kind, trunk / heads / tokenizer, the full models
    taking the trunk's, as the export writes them; absent kinds: 1), so that it agrees with what
    estimate_repository counts once the repository is written."""
    n = {"trunk": 1, "heads": 1, "tokenizer": 1} | dict(instances or {})
    fulls = n_tasks if baseline else 0
    processes = n["tokenizer"] + n["trunk"] + n_tasks * n["heads"] + fulls * n["trunk"]
    weights = n["trunk"] * trunk_bytes + n_tasks * n["heads"] * head_bytes + fulls * n["trunk"] * full_bytes
    return MemoryEstimate(processes, weights)


def check_fits(estimate: MemoryEstimate, what: str) -> None:
    """UserError when `estimate` exceeds HEADROOM x MemAvailable."""
    avail = available_bytes()
    if estimate.total_bytes > HEADROOM * avail:
        raise UserError(
            f"{what} needs about {estimate.describe()} but only {avail / 2**30:.1f} GiB is available "
            f"(limit {HEADROOM:.0%} of it): use fewer tasks or a smaller backbone shape, or free memory"
        )
