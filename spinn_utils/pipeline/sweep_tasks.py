"""What a Dask worker runs for the sweep: a seed's notebooks 01-02, or a point's 03, 05_5 and 08.

A task runs the notebooks through the driver's own ``runner.run_plan`` into one results folder,
so a point can be re-run alone (``run_all.py --output <point> --from 03``); a point starts from
its seed's data and dense model, linked in (docs/sweeps.md, "One code path"). A task never
raises: it returns ``{"status": "ok" | "failed" | "skipped", "error", "seconds"}``, and a folder
complete with the same parameters is skipped (resume).
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

THREADS = 1  # a task's kernels: one thread each (one one-thread worker per core)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Dask's nanny gives its workers MALLOC_TRIM_THRESHOLD_=65536; under it a kernel's torch re-faults
# its activation buffers on every step (docs/sweeps.md, "Dask"). Kernels get glibc's default.
UNSET = ("MALLOC_TRIM_THRESHOLD_",)
# A task's kernels' environment: THREADS for every BLAS/OpenMP pool, no display, no UNSET (None).
KERNEL_ENV = {**dict.fromkeys(THREAD_VARS, str(THREADS)), "MPLBACKEND": "Agg",
              **dict.fromkeys(UNSET)}


def error_text(err: BaseException) -> str:
    """``ValueError: its first line``: a failure as sweep.json records it."""
    return f"{type(err).__name__}: {first_line(err)}"


def failed(about: dict, error: str) -> dict:
    """``about`` as a failed record: the driver shows it as a row, never a gap."""
    return {**about, "status": "failed", "error": error, "seconds": 0.0}


def _lineage(folder: Path) -> dict:
    try:
        return read_json(folder / LINEAGE, "lineage record")
    except (SpinnError, ValueError):  # missing or corrupt: "not complete", the task re-runs
        return {}


def is_complete(folder: Path, notebooks: tuple[str, ...], parameters: dict) -> bool:
    """The folder's manifest finished ``notebooks`` with exactly ``parameters``, and every file
    their lineage entries name inside it still has its recorded sha256."""
    try:
        record = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    planned = json.loads(json.dumps(parameters))  # tuples read back as lists
    if record.get("status") != "ok" or record.get("sweep", {}).get("parameters") != planned:
        return False
    lineage = _lineage(folder)
    if not all(nb in lineage for nb in notebooks):
        return False
    files = [f for nb in notebooks for f in (*lineage[nb].get("inputs", {}).items(),
                                            *lineage[nb].get("outputs", {}).items())]
    return all((folder / rel).is_file() and file_sha256(folder / rel) == sha
               for rel, sha in files if not Path(rel).is_absolute())


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: a copy holds the same bytes
        shutil.copy2(src, dst)


def share_seed(seed_folder: Path, folder: Path, notebooks: tuple[str, ...]) -> None:
    """Give ``folder`` the seed's outputs of ``notebooks``, their executed copies and lineage
    entries, and the seed's manifest (the point's then lists the seed's notebooks too)."""
    lineage = _lineage(seed_folder)
    for nb in notebooks:
        for rel in lineage[nb]["outputs"]:
            _link(seed_folder / rel, folder / rel)
    for nb in sorted(ResultsPaths(seed_folder).executed.glob("*.ipynb")):
        _link(nb, ResultsPaths(folder).executed / nb.name)
    write_json(folder / LINEAGE, {nb: lineage[nb] for nb in notebooks})
    if (seed_folder / MANIFEST).is_file():
        shutil.copy2(seed_folder / MANIFEST, folder / MANIFEST)


def run_notebooks(folder: Path, notebooks: dict[str, str], parameters: dict[str, dict],
                  kernel: str, about: dict) -> dict:
    """``notebooks`` (id -> path) into ``folder`` by ``runner.run_plan``, the manifest adding
    ``"sweep"`` (``about`` and the parameters, which resume compares): ``{"status", "error",
    "seconds"}``."""
    paths = [Path(nb) for nb in notebooks.values()]
    record = {"command": ["spinn-run", "sweep"], "threads": THREADS, "host": platform.node(),
              "sweep": {**about, "parameters": parameters}}
    plan = RunPlan(folder, paths, {Path(notebooks[i]): parameters[i] for i in notebooks},
                   paths[0].parent.parent, KERNEL_ENV, record)
    shared = {k: v for p in parameters.values() for k, v in p.items()}  # smoke, seed, device
    args = argparse.Namespace(smoke=shared.get("smoke", False), seed=shared.get("seed"),
                              device=shared.get("device", "cpu"), kernel=kernel, progress=False,
                              verbose=False)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = run_plan(plan, args)  # its progress lines belong to a terminal, not to a worker's log
    manifest = read_json(folder / MANIFEST, "sweep task manifest")
    bad = next((e for e in manifest["notebooks"] if e["status"] != "ok"), None)
    error = bad and f"notebook {notebook_id(Path(bad['notebook']))}: {bad.get('error')}"
    return {"status": "ok" if rc == 0 else "failed", "error": error,
            "seconds": round(time.perf_counter() - start, 2)}


def _task(about: dict, folder: Path, notebooks: dict[str, str], parameters: dict[str, dict],
          kernel: str, seed_folder: Path | None = None) -> dict:
    try:
        shared = _lineage(seed_folder) if seed_folder else {}
        same_seed = all(_lineage(folder).get(nb) == entry for nb, entry in shared.items())
        if same_seed and is_complete(folder, (*shared, *notebooks), parameters):
            return {**about, "status": "skipped", "error": None, "seconds": 0.0}
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        if seed_folder:
            share_seed(seed_folder, folder, tuple(shared))
        return {**about, **run_notebooks(folder, notebooks, parameters, kernel, about)}
    except Exception as err:  # noqa: BLE001 - recorded with its one-line error
        return failed(about, error_text(err))


def seed_task(seed: int, folder: str, notebooks: dict[str, str], parameters: dict[str, dict],
              kernel: str) -> dict:
    """Notebooks 01-02 of one seed into ``folder`` (skipped when complete with these parameters)."""
    return _task({"seed": seed}, Path(folder), notebooks, parameters, kernel)


def point_task(point: dict, seed_record: dict, seed_folder: str, folder: str,
               notebooks: dict[str, str], parameters: dict[str, dict], kernel: str) -> dict:
    """Notebooks 03, 05_5 and 08 of one point on its seed's data and dense model (failed, without
    running, when the seed failed)."""
    if seed_record.get("status") not in ("ok", "skipped"):
        return failed(point, f"seed {point['seed']} (notebooks 01-02) failed: "
                             f"{seed_record.get('error')}")
    return _task(point, Path(folder), notebooks, parameters, kernel, Path(seed_folder))
