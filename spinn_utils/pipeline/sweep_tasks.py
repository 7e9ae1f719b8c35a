"""What a Dask worker runs for the sweep: a seed's notebooks 01-02, or a point's 03, 05_5 and 08.

Each task runs the pipeline's notebooks through the driver's own ``runner.run_plan`` into one
results folder, with the driver's manifest, so a point can be re-run alone
(``run_all.py --output <point> --from 03``); a point starts from its seed's data and dense model,
linked in (docs/sweeps.md, "One code path"). A task never raises: it returns
``{"status": "ok" | "failed" | "skipped", "error", "seconds"}``; a folder that is complete with the
same parameters is skipped (resume). Workers need the package and a shared file system.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import time
from pathlib import Path

from ..core.errors import SpinnError, first_line
from ..core.io import file_sha256, read_json, write_json
from ..core.lineage import LINEAGE
from ..core.paths import ResultsPaths
from ..core.registry import MANIFEST
from .notebooks import notebook_id
from .preflight import RunPlan
from .runner import run_plan

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
RECORD = MANIFEST  # the folder's manifest, in the driver's shape, plus "sweep": the task's parameters


# Dask's nanny gives its workers MALLOC_TRIM_THRESHOLD_=65536; under it a kernel's torch re-faults
# its activation buffers on every step (docs/sweeps.md, "Dask"). Kernels get glibc's default.
UNSET = ("MALLOC_TRIM_THRESHOLD_",)


def kernel_env(threads: int) -> dict[str, str | None]:
    """A task's kernels' environment: ``threads`` for every BLAS/OpenMP pool, no display, no
    ``UNSET``."""
    return {**{v: str(threads) for v in THREAD_VARS}, "MPLBACKEND": "Agg", **dict.fromkeys(UNSET)}


def _plain(obj):
    """JSON round trip: tuples and lists compare equal, as they will once written."""
    return json.loads(json.dumps(obj))


def _lineage(folder: Path) -> dict:
    try:
        return read_json(folder / LINEAGE, "lineage record")
    except (SpinnError, ValueError):  # missing or corrupt: "not complete", the task re-runs
        return {}


def _entry_holds(folder: Path, entry: dict) -> bool:
    """Every file an entry read or wrote inside the folder (notebook 01 checks its own data file)
    still has its recorded sha256."""
    files = [*entry.get("inputs", {}).items(), *entry.get("outputs", {}).items()]
    paths = [(folder / rel, sha) for rel, sha in files if not Path(rel).is_absolute()]
    return all(path.is_file() and file_sha256(path) == sha for path, sha in paths)


def is_complete(folder: Path, notebooks: tuple[str, ...], parameters: dict) -> bool:
    """The folder finished ``notebooks`` with exactly ``parameters`` and nothing changed since."""
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if record.get("status") != "ok" or record.get("sweep", {}).get("parameters") != _plain(parameters):
        return False
    lineage = _lineage(folder)
    return all(nb in lineage and _entry_holds(folder, lineage[nb]) for nb in notebooks)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: a copy holds the same bytes
        shutil.copy2(src, dst)


def share_seed(seed_folder: Path, folder: Path, notebooks: tuple[str, ...]) -> None:
    """Give ``folder`` the seed's outputs of ``notebooks``, their executed copies and lineage entries."""
    lineage = _lineage(seed_folder)
    for nb in notebooks:
        for rel in lineage[nb]["outputs"]:
            _link(seed_folder / rel, folder / rel)
    executed = ResultsPaths(seed_folder).executed
    for nb in sorted(executed.glob("*.ipynb")):
        _link(nb, ResultsPaths(folder).executed / nb.name)
    write_json(folder / LINEAGE, {nb: lineage[nb] for nb in notebooks})
    if (seed_folder / RECORD).is_file():  # the point's manifest then lists the seed's notebooks too
        shutil.copy2(seed_folder / RECORD, folder / RECORD)


def run_notebooks(folder: Path, notebooks: dict[str, str], parameters: dict[str, dict], threads: int,
                  kernel: str, about: dict) -> dict:
    """``notebooks`` (id -> path) into ``folder`` by ``runner.run_plan``, the manifest adding
    ``"sweep"`` (``about`` and the parameters, which resume compares): ``{"status", "error",
    "seconds"}``."""
    paths = [Path(nb) for nb in notebooks.values()]
    plan = RunPlan(folder, paths, {Path(notebooks[i]): parameters[i] for i in notebooks}, paths[0].parent.parent,
                   kernel_env(threads), {"command": ["spinn-run", "sweep"], "threads": threads, "host": platform.node(),
                                         "sweep": {**about, "parameters": parameters}})
    first = {k: v for p in parameters.values() for k, v in p.items()}  # the values every notebook shares
    args = argparse.Namespace(smoke=first.get("smoke", False), seed=first.get("seed"), device=first.get("device", "cpu"),
                              kernel=kernel, progress=False, verbose=False)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = run_plan(plan, args)  # its progress lines belong to a terminal, not to a worker's log
    manifest = read_json(folder / RECORD, "sweep task manifest")
    failed = next((e for e in manifest["notebooks"] if e["status"] != "ok"), None)
    error = None if failed is None else f"notebook {notebook_id(Path(failed['notebook']))}: {failed.get('error')}"
    return {"status": "ok" if rc == 0 else "failed", "error": error, "seconds": round(time.perf_counter() - start, 2)}


def _fresh(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def seed_task(seed: int, folder: str, notebooks: dict[str, str], parameters: dict[str, dict],
              threads: int, kernel: str) -> dict:
    """Notebooks 01-02 of one seed into ``folder`` (skipped when complete with these parameters)."""
    folder, about = Path(folder), {"seed": seed}
    try:
        if is_complete(folder, tuple(notebooks), parameters):
            return {**about, "status": "skipped", "error": None, "seconds": 0.0}
        _fresh(folder)
        return {**about, **run_notebooks(folder, notebooks, parameters, threads, kernel, about)}
    except Exception as err:  # noqa: BLE001 - the driver shows every failure as a row, never a gap
        return {**about, "status": "failed", "error": f"{type(err).__name__}: {first_line(err)}", "seconds": 0.0}


def point_task(point: dict, seed_record: dict, seed_folder: str, folder: str, notebooks: dict[str, str],
               parameters: dict[str, dict], threads: int, kernel: str) -> dict:
    """Notebooks 03, 05_5 and 08 of one point on its seed's data and dense model."""
    folder, seed_folder = Path(folder), Path(seed_folder)
    try:
        seed_lineage, own = _lineage(seed_folder), _lineage(folder)
        shared = tuple(seed_lineage)
        if seed_record.get("status") not in ("ok", "skipped"):
            return {**point, "status": "failed", "seconds": 0.0,
                    "error": f"seed {point['seed']} (notebooks 01-02) failed: {seed_record.get('error')}"}
        same_seed = all(own.get(nb) == seed_lineage[nb] for nb in shared)
        if same_seed and is_complete(folder, (*shared, *notebooks), parameters):
            return {**point, "status": "skipped", "error": None, "seconds": 0.0}
        _fresh(folder)
        share_seed(seed_folder, folder, shared)
        return {**point, **run_notebooks(folder, notebooks, parameters, threads, kernel, point)}
    except Exception as err:  # noqa: BLE001 - recorded with its one-line error, shown as failed
        return {**point, "status": "failed", "error": f"{type(err).__name__}: {first_line(err)}", "seconds": 0.0}
