"""Shared plumbing for every stage: errors, seeds, devices, results paths, JSON I/O.

Stage settings live in a dataclass next to the code that uses them (``DataConfig`` in
``data.py``, ``TrainConfig`` in ``train.py``, ...), nanoGPT style; this module holds only
what all stages share. Paths follow the results contract in ARCHITECTURE.md.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


class SpinnError(Exception):
    """An error the user can cause (bad path, column, checkpoint, parameter): one clear line."""


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


def with_overrides(cfg: Any, **overrides: Any) -> Any:
    """``dataclasses.replace`` that names the unknown field instead of a bare TypeError."""
    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SpinnError(
            f"unknown {type(cfg).__name__} field(s) {unknown}; known: {sorted(names)}"
        )
    return dataclasses.replace(cfg, **overrides)


def build_config(cls: type, smoke: bool = False, **overrides: Any) -> Any:
    """A stage config: ``cls.smoke_test()`` or ``cls()``, then the non-None overrides.

    Notebook knobs default to ``None`` ("use the config's default"), so one notebook
    parameter cell serves both full and smoke runs without repeating the defaults.
    """
    base = cls.smoke_test() if smoke else cls()
    return with_overrides(base, **{k: v for k, v in overrides.items() if v is not None})


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples, paths, numpy and torch scalars -> plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.generic,)):
        return to_jsonable(obj.item())
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # JSON has no NaN/inf; null says "no number"
    return obj


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes 0600 files; results are meant to be shared like any other file.
        umask = os.umask(0)
        os.umask(umask)
        if tmp.exists():
            tmp.chmod(0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (nothing half-written on failure)."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def read_json(path: str | os.PathLike, what: str = "results file") -> Any:
    """Read a JSON written by an earlier stage; a missing or corrupt file is a SpinnError."""
    path = Path(path)
    if not path.is_file():
        raise SpinnError(f"{what} not found: {path} (run the notebook that writes it first)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SpinnError(f"{what} is not valid JSON: {path} ({err})") from err


@dataclass(frozen=True)
class ResultsPaths:
    """Where every stage reads and writes (the results contract in ARCHITECTURE.md)."""

    root: Path

    @classmethod
    def at(cls, results_dir: str | os.PathLike = "results") -> ResultsPaths:
        return cls(Path(results_dir).expanduser())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def executed(self) -> Path:
        return self.root / "executed"

    def checkpoint(self, name: str) -> Path:
        """``checkpoint("dense_pinn")`` -> results/checkpoints/dense_pinn.pt"""
        return self.checkpoints / f"{name}.pt"

    def metric(self, name: str) -> Path:
        """``metric("pruning")`` -> results/metrics/pruning.json"""
        return self.metrics / f"{name}.json"

    def ensure(self) -> ResultsPaths:
        for d in (self.data, self.checkpoints, self.metrics, self.figures, self.tables):
            d.mkdir(parents=True, exist_ok=True)
        return self


def cpu_model() -> str:
    """The CPU's marketing name where Linux tells it, else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment_info(device: str | torch.device | None = None) -> dict:
    """What a number was measured on; every results JSON carries this next to its numbers."""
    info = {
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
    }
    dev = torch.device(device) if device is not None else None
    info["device"] = str(dev) if dev is not None else None
    if dev is not None and dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(idx)
        info["gpu_name"] = torch.cuda.get_device_name(idx)
        info["gpu_capability"] = f"{major}.{minor}"
        info["cuda_version"] = torch.version.cuda
    info["device_name"] = info.get("gpu_name") or info["cpu_model"]
    return info
