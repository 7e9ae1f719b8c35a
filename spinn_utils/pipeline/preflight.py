"""Checks before any notebook runs: parameter values, the results folder, and a lock on it.

papermill checks nothing about a value: without this step ``-p target_sparsity=1.5`` would run
notebooks 01 and 02 (overwriting data and the dense model) before notebook 03 refused it. Every ``-p``
value is put through the stage config that will receive it (its ``__post_init__`` holds the
ranges), the run's own settings must come from their flags (so the manifest records what ran),
the output folder must be a writable folder, and only one run may use it at a time.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..benchmark.bench_config import BenchConfig
from ..compression.convert import SparseConfig
from ..compression.export import ExportConfig
from ..compression.magnitude import PruneConfig
from ..core.errors import SpinnError
from ..core.overrides import with_overrides
from ..core.stages import STAGES
from ..data.schema import DataConfig
from ..evaluation.crossval import CrossValConfig
from ..evaluation.verify import VerifyConfig
from ..model.physics import PhysicsConfig
from ..reporting.figures import FigureConfig
from ..reporting.results import ReportConfig
from ..training.fit import TrainConfig
from .archive import ArtifactsConfig
from .notebooks import UsageError, notebook_id
from .staging import aside_path


def lock_path(output: Path) -> Path:
    """Beside the results folder, not in it: a run moves the folder aside while it works."""
    return output.parent / f".{output.name}.lock"
# The driver's own settings: a -p would bypass the flag and the manifest would not show it.
RESERVED = {"results_dir": "--output", "smoke": "--smoke", "seed": "--seed", "device": "--device",
            "data_path": "--data", "data_config": "--data-config"}
# The stage configs by the class name the stage table gives (a parameter sets the field of its name).
CONFIG_CLASSES = {cls.__name__: cls for cls in (
    DataConfig, TrainConfig, PhysicsConfig, PruneConfig, ArtifactsConfig, VerifyConfig, SparseConfig,
    ExportConfig, BenchConfig, CrossValConfig, ReportConfig, FigureConfig)}


def check_values(plan: dict[Path, dict], overrides: dict) -> None:
    """Every ``-p`` value through the config that receives it; a bad one is a UsageError."""
    for name in overrides:
        if name in RESERVED:
            raise UsageError(f"-p {name}: set it with {RESERVED[name]}, so the manifest records it")
    for nb, params in plan.items():
        nb_id = notebook_id(nb)
        stage = STAGES.get(nb_id)
        for name, value in params.items():
            if name not in overrides or value is None or stage is None:
                continue
            for cls in map(CONFIG_CLASSES.__getitem__, stage.configs):
                if name in cls.__dataclass_fields__:
                    try:
                        with_overrides(cls(), **{name: value})
                    except (SpinnError, TypeError, ValueError) as err:
                        raise UsageError(f"-p {name}={value!r} (notebook {nb_id}): {err}") from err


RESULTS_MARKERS = ("manifest.json", "lineage.json", "README.md")  # what a results folder may hold first


def check_output(output: Path) -> None:
    """The results folder is a folder this process may write (it is created if missing), and
    an existing one holds results: a run moves it aside and copies it, so a home folder named
    by mistake is refused rather than shuffled."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a folder")
    killed = aside_path(output).is_dir()  # a killed run's partial output: the run restores it first
    if not killed and output.is_dir() and any(output.iterdir()) and not any(
            (output / m).exists() for m in RESULTS_MARKERS[:2]):
        other = sorted(p.name for p in output.iterdir() if p.name not in RESULTS_MARKERS)
        if other:
            raise UsageError(f"--output {output} is not empty and holds no SPINN results "
                             f"(no manifest.json; found {other[:3]}): name a new folder or a results folder")
    existing = next(p for p in (output, *output.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--output {output}: {existing} is not writable")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is someone else's
    return True


@contextlib.contextmanager
def results_lock(output: Path, command: list[str]) -> Iterator[str | None]:
    """Hold ``.<output>.lock`` for the run; yields a note when a stale lock was taken over.

    A second run on a folder in use is a UsageError naming the process that holds it.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    lock, note = lock_path(output), None
    body = json.dumps({"pid": os.getpid(), "command": command})
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
            except (OSError, json.JSONDecodeError):
                holder = {"pid": -1}
            pid = int(holder.get("pid", -1))
            if pid > 0 and _alive(pid):
                raise UsageError(f"--output {output} is in use by process {pid} "
                                 f"({' '.join(holder.get('command', []))}); wait for it or use another folder") from None
            note = f"took over a stale lock left by process {pid}, which is no longer running"
            lock.unlink(missing_ok=True)
    else:
        raise UsageError(f"could not lock {output}")
    with os.fdopen(fd, "w") as f:
        f.write(body)
    try:
        yield note
    finally:
        lock.unlink(missing_ok=True)
