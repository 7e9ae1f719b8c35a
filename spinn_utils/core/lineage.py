"""Lineage: every notebook records the sha256 of what it read and wrote in ``results/lineage.json``;
the next ones refuse a mixed or altered folder in one line (docs/architecture.md, "Lineage")."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .env import resolve_device, set_seed
from .errors import SpinnError
from .io import file_sha256, read_json, write_json
from .paths import ResultsPaths
from .stages import STAGES

LINEAGE = "lineage.json"


def _read(paths: ResultsPaths) -> dict:
    """The record; one that is not {notebook: {"inputs": {...}, "outputs": {...}}} is named corrupt."""
    path = paths.root / LINEAGE
    record = read_json(path, "lineage record") if path.is_file() else {}
    if not isinstance(record, dict):
        raise SpinnError(f"lineage record {path} is corrupt: it holds a {type(record).__name__}, not "
                         f"{{notebook: entry}}; delete it and re-run from notebook 01")
    for nb, entry in record.items():
        if not (isinstance(entry, dict) and all(isinstance(entry.get(k), dict) for k in ("inputs", "outputs"))):
            raise SpinnError(f"lineage record {path} is corrupt: the entry of notebook {nb} lacks "
                             f"\"inputs\"/\"outputs\"; delete it and re-run from notebook 01")
    return record


def _sha(paths: ResultsPaths, rel: str) -> str | None:
    path = paths.root / rel
    return file_sha256(path) if path.is_file() else None


def upstream(notebook: str) -> list[str]:
    """The notebooks whose outputs ``notebook`` reads, in pipeline order."""
    reads = set(STAGES[notebook].reads)
    return [nb for nb, stage in STAGES.items() if nb != notebook and reads & set(stage.writes)]


def stale(paths: ResultsPaths, notebook: str) -> str | None:
    """Why ``notebook``'s inputs cannot be trusted (one line), or None when the chain holds."""
    record, reads = _read(paths), set(STAGES[notebook].reads)
    for dep in upstream(notebook):
        entry = record.get(dep)
        if entry is None:
            left = sorted(rel for rel in reads & set(STAGES[dep].writes) if (paths.root / rel).is_file())
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
        write_json(paths.root / LINEAGE, record)


def finish_stage(paths: ResultsPaths, notebook: str, extra_inputs: dict[str, str] | None = None) -> dict:
    """Record the sha256 of what ``notebook`` read and wrote, plus ``extra_inputs`` (files
    outside the results folder, by path: notebook 01's data file); returns its entry."""
    stage = STAGES[notebook]
    missing = [rel for rel in stage.writes if not (paths.root / rel).is_file()]
    if missing:
        raise SpinnError(f"notebook {notebook} did not write {missing}; its run is not recorded")
    inputs = {rel: _sha(paths, rel) for rel in stage.reads if (paths.root / rel).is_file()}
    for path in (extra_inputs or {}).values():
        inputs[str(Path(path).resolve())] = file_sha256(path)
    entry = {"inputs": inputs, "outputs": {rel: _sha(paths, rel) for rel in stage.writes},
             "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record = _read(paths)
    record[notebook] = entry
    write_json(paths.root / LINEAGE, record)
    return entry


def begin_stage(notebook: str, results_dir, *, seed: int, device: str | None = None):
    """A notebook's set-up in one call: seed everything, make the results folders, refuse a mixed
    or altered folder (``start_stage``) and pick the device. Returns ``(paths, device)``; device is
    None for a notebook that uses none."""
    set_seed(seed)
    paths = ResultsPaths.at(results_dir).ensure()
    start_stage(paths, notebook)
    chosen = resolve_device(device) if device is not None else None
    print(f"notebook {notebook} ({STAGES[notebook].title}): results in {paths.root}"
          + (f", device {chosen}" if chosen is not None else ""))
    return paths, chosen


def recorded_hashes(paths: ResultsPaths) -> dict[str, str]:
    """``{path relative to the results folder: sha256}`` of every file a finished notebook wrote,
    as lineage recorded it (the archive takes its hashes from here instead of hashing again)."""
    return {rel: sha for entry in _read(paths).values() for rel, sha in entry["outputs"].items()}
