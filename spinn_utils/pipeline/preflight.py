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
from ..core.errors import SpinnError, first_line
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
from .staging import BACKUP, LOCK, MANIFEST, is_results_folder


def lock_path(output: Path) -> Path:
    """Inside the results folder: it works on a mount point and under a read-only parent."""
    return output / LOCK


MANIFEST_FORMAT = "spinn-run-manifest"  # the marker of a manifest the driver wrote
LEGACY_MANIFEST_KEYS = ("started", "command", "notebooks", "versions")  # before the marker existed


def read_manifest(path: Path) -> dict | None:
    """A results folder's manifest (None when absent); corrupt or foreign is a UsageError.

    A folder holding someone else's ``manifest.json`` (a web app's, a package's) is not a
    results folder: a run would replace that file.
    """
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is corrupt (not JSON: {first_line(err)}); move it away or use another "
                         "--output") from err
    if not isinstance(record, dict):
        raise UsageError(f"{path} is corrupt: it holds a {type(record).__name__}, not a SPINN run manifest; "
                         "move it away or use another --output")
    if record.get("format") != MANIFEST_FORMAT and not all(k in record for k in LEGACY_MANIFEST_KEYS):
        raise UsageError(f"{path} was not written by SPINN (no \"format\": \"{MANIFEST_FORMAT}\"); a run "
                         "would replace it: use another --output")
    if not isinstance(record.get("notebooks", []), list):
        raise UsageError(f"{path} is corrupt: \"notebooks\" is not a list; move it away or use another --output")
    return record
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


# What a results folder may hold before its first run: the repository's results/README.md.
BEFORE_FIRST_RUN = ("README.md",)


def check_output(output: Path) -> None:
    """The results folder is a folder this process may write (it is created if missing), and
    an existing one holds results: a run backs it up and writes into it, so a home folder named
    by mistake, or one holding a manifest.json SPINN did not write, is refused rather than
    overwritten. Results folders nested inside (``results/smoke``) are their own runs' and
    never block, nor are touched by, a run on the folder around them."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a folder")
    if output.is_dir():
        manifest = read_manifest(output / MANIFEST)
        ours = manifest is not None or (output / "lineage.json").is_file() or (output / BACKUP).is_dir()
        other = sorted(p.name for p in output.iterdir() if p.name not in BEFORE_FIRST_RUN
                       and not p.name.startswith((".spinn", "failed-")) and not is_results_folder(p))
        if not ours and other:
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
    """Hold ``<output>/.spinn.lock`` for the run; yields a note when a stale lock was taken over.

    A second run on a folder in use is a UsageError naming the process that holds it.
    """
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--output {output}: cannot create it ({first_line(err)})") from err
    lock, note = lock_path(output), None
    body = json.dumps({"pid": os.getpid(), "command": command})
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except PermissionError as err:
            raise UsageError(f"--output {output} is not writable: cannot create {lock} ({first_line(err)})") from err
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                holder = {}
            holder = holder if isinstance(holder, dict) else {}
            pid = holder.get("pid") if isinstance(holder.get("pid"), int) else -1
            if pid > 0 and _alive(pid):
                raise UsageError(f"--output {output} is in use by process {pid} "
                                 f"({' '.join(holder.get('command', []))}); wait for it or use another folder "
                                 f"(if no such run is going on, the lock is stale: delete {lock})") from None
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
