"""What machine a measurement ran on, for the results files (reliability, the GLUE reference, benchmarks): one
reading of /proc, so every report names the CPU the same way."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo; platform.processor() elsewhere, often empty)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> dict:
    """Host, CPU, the cores this process may use, memory, Python and kernel."""
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024  # MemTotal, in kB
    try:
        cores = len(os.sched_getaffinity(0))  # a container's share, not the host's count
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return {
        "host": platform.node(),
        "cpu": cpu_name(),
        "cores": cores,
        "memory_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
