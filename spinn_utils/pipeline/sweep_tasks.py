"""What a Dask worker runs for the sweep: a seed's notebooks 01-02, or a point's 03, 05_5 and 08.

Each task runs the pipeline's own notebooks through the driver's own ``runner.run_plan`` into one
results folder, so a point is a complete run with the driver's manifest that can be opened and
re-run alone (``run_all.py --output <point> --from 03``): its ``lineage.json`` holds notebooks 01
to 08, its manifest lists them (01-02 from the seed's run) and ``executed/`` has the notebooks. A
point's data and dense model are its seed's, linked (a hard link where the file system allows,
else a copy) with their lineage entries, so every sparsity and method of a seed starts from the
same dense model. Kernels get the thread counts in their environment (``OMP_NUM_THREADS``...):
one worker, one thread, one torch thread; the training of several points in parallel then does
not oversubscribe the cores.

A task never raises: it returns a record ``{"status": "ok" | "failed" | "skipped", "error"}``,
and a failed notebook is named with its failing cell. A folder whose lineage is complete, whose
files still match it and whose recorded parameters equal the planned ones is skipped (resume).
Workers need this package installed and the results folder on a shared file system.
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

from ..core.errors import first_line
from ..core.io import file_sha256, read_json, write_json
from ..core.lineage import LINEAGE
from ..core.paths import ResultsPaths
from ..core.registry import MANIFEST
from .notebooks import notebook_id
from .runner import RunPlan, run_plan

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
RECORD = MANIFEST  # the folder's manifest, in the driver's shape, plus "sweep": the task's parameters


# Dask's nanny gives its workers MALLOC_TRIM_THRESHOLD_=65536 (glibc hands every freed block
# over 64 KB back to the OS). Inherited by a kernel, torch re-faults its activation buffers on
# every step: in the timing phase COO timed up to 3x and dense 1.3x slower under it. Kernels get glibc's default.
UNSET = ("MALLOC_TRIM_THRESHOLD_",)


def kernel_env(threads: int) -> dict[str, str | None]:
    """Environment a task's kernels get: ``threads`` for every BLAS/OpenMP pool, no display,
    and the variables in ``UNSET`` removed (None)."""
    return {**{v: str(threads) for v in THREAD_VARS}, "MPLBACKEND": "Agg", **dict.fromkeys(UNSET)}


def _plain(obj):
    """JSON round trip: tuples and lists compare equal, as they will once written."""
    return json.loads(json.dumps(obj))


def _lineage(folder: Path) -> dict:
    path = folder / LINEAGE
    try:
        return read_json(path, "lineage record") if path.is_file() else {}
    except Exception:  # noqa: BLE001 - a corrupt record means "not complete": the task re-runs
        return {}


def _entry_holds(folder: Path, entry: dict) -> bool:
    """Every file an entry read or wrote (inside the folder) still has its recorded sha256."""
    for files in (entry.get("inputs", {}), entry.get("outputs", {})):
        for rel, sha in files.items():
            path = folder / rel
            if Path(rel).is_absolute():
                continue  # notebook 01's own data file is checked by notebook 01
            if not path.is_file() or file_sha256(path) != sha:
                return False
    return True


def is_complete(folder: Path, notebooks: tuple[str, ...], parameters: dict) -> bool:
    """The folder finished ``notebooks`` with exactly ``parameters`` and nothing changed since."""
    record_path = folder / RECORD
    if not record_path.is_file():
        return False
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError:
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
    """Execute ``notebooks`` (id -> path) into ``folder`` with the driver's own ``runner.run_plan``
    (the same execution and manifest as ``run_all.py``; the manifest adds ``"sweep"``: ``about``
    and the parameters, which resume compares). Returns ``{"status", "error", "seconds"}``."""
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
    shared = tuple(_lineage(seed_folder))
    try:
        if seed_record.get("status") not in ("ok", "skipped"):
            return {**point, "status": "failed", "seconds": 0.0,
                    "error": f"seed {point['seed']} (notebooks 01-02) failed: {seed_record.get('error')}"}
        same_seed = all(_lineage(folder).get(nb) == _lineage(seed_folder)[nb] for nb in shared)
        if same_seed and is_complete(folder, (*shared, *notebooks), parameters):
            return {**point, "status": "skipped", "error": None, "seconds": 0.0}
        _fresh(folder)
        share_seed(seed_folder, folder, shared)
        return {**point, **run_notebooks(folder, notebooks, parameters, threads, kernel, point)}
    except Exception as err:  # noqa: BLE001 - recorded with its one-line error, shown as failed
        return {**point, "status": "failed", "error": f"{type(err).__name__}: {first_line(err)}", "seconds": 0.0}
