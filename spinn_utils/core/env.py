"""Where a number was measured: seeds, devices, package versions and the environment record."""
from __future__ import annotations

import contextlib
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from .errors import SpinnError
from .results_schema_eval import Environment
from .version import DIST_NAME, installed_version

PACKAGES = ("torch", "numpy", "pandas", "matplotlib", "scipy", "papermill", "nbformat", DIST_NAME)
# The vector-instruction flags that decide kernel speed: one CPU model name can differ here.
SIMD_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "amx_int8")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run can be repeated exactly on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error, not a fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SpinnError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpinnError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    return torch.device(device)


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict:
    """Python's version and each installed package's (None where a package is missing)."""
    return {"python": platform.python_version(), **{p: installed_version(p) for p in packages}}


def _cpuinfo(key: str) -> str | None:
    """The value of the first ``key`` line of Linux's /proc/cpuinfo (None elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    return None


def environment_info(device: str | torch.device | None = None) -> Environment:
    """What a number was measured on; every results JSON carries this next to its numbers."""
    cpu = _cpuinfo("model name") or platform.processor() or platform.machine()
    flags = set((_cpuinfo("flags") or "").split())
    dev = torch.device(device) if device is not None else None
    gpu = {}
    if dev is not None and dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(idx)
        gpu = {"gpu_name": torch.cuda.get_device_name(idx), "gpu_capability": f"{major}.{minor}",
               "cuda_version": torch.version.cuda}
    return Environment(
        torch_version=torch.__version__, python_version=platform.python_version(),
        platform=platform.platform(), cpu_model=cpu,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cpu_flags=[f for f in SIMD_FLAGS if f in flags], cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(), cuda_available=torch.cuda.is_available(),
        device=None if dev is None else str(dev), **gpu, device_name=gpu.get("gpu_name") or cpu)
