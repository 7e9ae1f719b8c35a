"""Lineage: every notebook records the sha256 of what it read and wrote; the next ones check it.

``results/lineage.json`` holds one entry per notebook: ``{"inputs": {path: sha256}, "outputs":
{path: sha256}}``. A notebook starts with ``start_stage`` (every notebook whose outputs it reads
must have an entry whose inputs and outputs still match the files on disk; then its own entry
is dropped, so a notebook that fails leaves none) and ends with ``finish_stage`` (its entry
written). A folder mixed from two runs, an output changed by hand (one weight moved by 1e-3),
or a notebook that failed half-way is then refused with one line that names the stale file and
the notebook to re-run. This protects Colab users, who run notebooks one by one into one
Drive folder, as much as ``run_all.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import SpinnError
from .io import file_sha256, read_json, write_json
from .paths import (
    DATA_PATHS,
    EXPORT_PATHS,
    FIGURE_PATHS,
    PREDICTIONS_PATH,
    TABLE_PATHS,
    ResultsPaths,
    checkpoint_file,
    metric_file,
)
from .registry import CHECKPOINTS, METRICS, names

LINEAGE = "lineage.json"


def _ckpt(*stems: str) -> tuple[str, ...]:
    return tuple(map(checkpoint_file, stems))


def _metric(*stems: str) -> tuple[str, ...]:
    return tuple(map(metric_file, stems))


DENSE_STORAGE = _ckpt(CHECKPOINTS.dense, CHECKPOINTS.pruned, CHECKPOINTS.structured)


@dataclass(frozen=True)
class Stage:
    """What one notebook reads from and writes to the results folder (paths relative to it)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


STAGES = {
    "01": Stage((), (*DATA_PATHS, *_metric(METRICS.data_summary))),
    "02": Stage(DATA_PATHS, (*_ckpt(CHECKPOINTS.dense), *_metric(METRICS.dense_training))),
    "03": Stage((*DATA_PATHS, *_ckpt(CHECKPOINTS.dense)),
                (*_ckpt(CHECKPOINTS.pruned, CHECKPOINTS.structured), *_metric(METRICS.pruning))),
    "04": Stage((*DATA_PATHS, *DENSE_STORAGE, *_metric(METRICS.data_summary, METRICS.dense_training, METRICS.pruning)),
                _metric(METRICS.artifacts)),
    "05": Stage((*DATA_PATHS, *DENSE_STORAGE, *_metric(METRICS.pruning)), _metric(METRICS.model_verification)),
    "05_5": Stage((*DATA_PATHS, *DENSE_STORAGE),
                  (*_ckpt(CHECKPOINTS.sparse), *_metric(METRICS.sparse_conversion), *EXPORT_PATHS)),
    "06": Stage((*DENSE_STORAGE, *EXPORT_PATHS), _metric(METRICS.gpu_benchmark)),
    "07": Stage((*DENSE_STORAGE, *EXPORT_PATHS), _metric(METRICS.cpu_benchmark)),
    "08": Stage((*DATA_PATHS, *DENSE_STORAGE, *_ckpt(CHECKPOINTS.sparse), *EXPORT_PATHS, *_metric(METRICS.pruning)),
                (*_metric(METRICS.test_evaluation), PREDICTIONS_PATH)),
    "09": Stage((*_metric(*(n for n in names(METRICS)
                            if n not in (METRICS.validation_checklist, METRICS.artifacts))),
                 PREDICTIONS_PATH),
                (*_metric(METRICS.validation_checklist), *TABLE_PATHS, *FIGURE_PATHS)),
}


def _read(paths: ResultsPaths) -> dict:
    path = paths.root / LINEAGE
    return read_json(path, "lineage record") if path.is_file() else {}


def _write(paths: ResultsPaths, record: dict) -> None:
    write_json(paths.root / LINEAGE, record)


def _sha(paths: ResultsPaths, rel: str) -> str | None:
    path = paths.root / rel
    return file_sha256(path) if path.is_file() else None


def upstream(notebook: str) -> list[str]:
    """The notebooks whose outputs ``notebook`` reads, in pipeline order."""
    reads = set(STAGES[notebook].inputs)
    return [nb for nb, stage in STAGES.items() if nb != notebook and reads & set(stage.outputs)]


def stale(paths: ResultsPaths, notebook: str) -> str | None:
    """Why ``notebook``'s inputs cannot be trusted (one line), or None when the chain holds."""
    record, reads = _read(paths), set(STAGES[notebook].inputs)
    for dep in upstream(notebook):
        entry = record.get(dep)
        if entry is None:
            left = sorted(rel for rel in reads & set(STAGES[dep].outputs) if (paths.root / rel).is_file())
            if not left:
                continue  # never ran here: what needs its files says so (or reports "not measured")
            return (f"{left[0]} is left from a run of notebook {dep} that did not finish (or predates "
                    f"lineage records): re-run notebook {dep} and the ones after it")
        for kind, files in (("wrote", entry["outputs"]), ("read", entry["inputs"])):
            for rel, sha in files.items():
                now = _sha(paths, rel)
                if now != sha:
                    what = "is missing" if now is None else "has changed"
                    return (f"{rel}, which notebook {dep} {kind}, {what} since notebook {dep} ran "
                            f"(a mixed or altered results folder): re-run notebook {dep} and the ones after it")
    return None


def start_stage(paths: ResultsPaths, notebook: str) -> None:
    """Refuse stale inputs (one-line SpinnError); then forget this notebook's previous run."""
    problem = stale(paths, notebook)
    if problem:
        raise SpinnError(f"notebook {notebook} refuses its inputs: {problem}")
    record = _read(paths)
    if record.pop(notebook, None) is not None:
        _write(paths, record)


def finish_stage(paths: ResultsPaths, notebook: str, extra_inputs: dict[str, str] | None = None) -> dict:
    """Record the sha256 of what ``notebook`` read and wrote; returns its entry.

    ``extra_inputs`` adds files outside the results folder (notebook 01's data file), by path.
    """
    stage = STAGES[notebook]
    missing = [rel for rel in stage.outputs if not (paths.root / rel).is_file()]
    if missing:
        raise SpinnError(f"notebook {notebook} did not write {missing}; its run is not recorded")
    inputs = {rel: _sha(paths, rel) for rel in stage.inputs if (paths.root / rel).is_file()}
    for path in (extra_inputs or {}).values():
        inputs[str(Path(path).resolve())] = file_sha256(path)
    entry = {"inputs": inputs, "outputs": {rel: _sha(paths, rel) for rel in stage.outputs},
             "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record = _read(paths)
    record[notebook] = entry
    _write(paths, record)
    return entry


def lineage_summary(paths: ResultsPaths) -> dict:
    """The whole record (for reviewers); {} when nothing was recorded yet."""
    return _read(paths)


def recorded_hashes(paths: ResultsPaths) -> dict[str, str]:
    """``{path relative to the results folder: sha256}`` of every file a finished notebook wrote,
    as lineage recorded it (the archive takes its hashes from here instead of hashing again)."""
    return {rel: sha for entry in _read(paths).values() for rel, sha in entry["outputs"].items()}
