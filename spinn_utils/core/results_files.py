"""Write and read a run's metrics JSONs through their schema, and the schema's reference page.

``write_result(path, record)`` writes a schema record (``results_schema*.py``) with its
``schema_version``; ``read_result(paths, METRICS.x)`` reads one back into its record. A file
from another schema version, or with a missing, unexpected or mistyped key, is refused with
one line naming the file, the key and the notebook to re-run, e.g.
``metrics/test_evaluation.json: missing key 'cross_validation' (schema v1); re-run notebook 08``.
``schema_reference()`` renders docs/results_schema.md from the dataclasses.
"""
from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

from .errors import SpinnError
from .io import read_json, write_json
from .paths import ResultsPaths, metric_file
from .registry import METRICS, SWEEP_DIR, SWEEP_FILE
from .results_schema import (
    Artifacts,
    DataSummary,
    DenseTraining,
    ModelVerification,
    Pruning,
    SparseConversion,
)
from .results_schema_eval import BenchmarkResult, TestEvaluation, ValidationChecklist
from .results_schema_sweep import Sweep
from .stages import STAGES
from .typed_json import KeyProblem, decode_value, encode, fields_of, nested_types, type_name

SCHEMA_KEY = "schema_version"
SCHEMAS = {  # every metrics JSON (``METRICS``) -> its record type
    METRICS.data_summary: DataSummary,
    METRICS.dense_training: DenseTraining,
    METRICS.pruning: Pruning,
    METRICS.artifacts: Artifacts,
    METRICS.model_verification: ModelVerification,
    METRICS.sparse_conversion: SparseConversion,
    METRICS.gpu_benchmark: BenchmarkResult,
    METRICS.cpu_benchmark: BenchmarkResult,
    METRICS.test_evaluation: TestEvaluation,
    METRICS.validation_checklist: ValidationChecklist,
}


def schema_for(name: str):
    """The record type of ``metrics/<name>.json``; a conversion report to another format
    (``sparse_conversion_report_csr``) has the conversion report's."""
    if name in SCHEMAS:
        return SCHEMAS[name]
    if name.startswith(f"{METRICS.sparse_conversion}_"):
        return SparseConversion
    raise SpinnError(f"no results schema for {name!r}; known: {', '.join(SCHEMAS)}")


def _version(tp) -> int:
    members = [tp] if isinstance(tp, type) else list(tp.__args__)
    return members[0].SCHEMA_VERSION


def writer_of(name: str) -> str:
    """The notebook that writes ``metrics/<name>.json`` (from the stage table, ``core/stages.py``)."""
    rel = metric_file(name)
    return next((nb for nb, stage in STAGES.items() if rel in stage.writes), "that wrote it")


def decode_result(name: str, data, label: str | None = None):
    """A parsed metrics JSON as its record; one-line ``SpinnError`` where it does not fit."""
    return decode_record(schema_for(name), data, label or metric_file(name), f"re-run notebook {writer_of(name)}")


def decode_record(tp, data, label: str, rerun: str):
    """Parsed JSON as the versioned record ``tp`` (one-line ``SpinnError`` naming ``label``,
    the key and ``rerun``, what makes the file anew, where it does not fit)."""
    version = _version(tp)
    found = data.get(SCHEMA_KEY) if isinstance(data, dict) else None
    if found != version:
        what = "no schema_version" if found is None else f"schema_version {found!r}"
        raise SpinnError(f"{label}: written with {what}, this code reads schema v{version}; {rerun}")
    body = {k: v for k, v in data.items() if k != SCHEMA_KEY}
    try:
        return decode_value(tp, body)
    except KeyProblem as err:
        raise SpinnError(f"{label}: {err} (schema v{version}); {rerun}") from None


def require_keys(name: str, block: dict, keys, where: str) -> None:
    """A free-form block (a config) read by key: a missing key is the same one-line error as
    a missing schema field (``metrics/<name>.json: missing key 'where.key' ...``)."""
    missing = [k for k in keys if k not in block]
    if missing:
        raise SpinnError(f"{metric_file(name)}: missing key '{where}.{missing[0]}' "
                         f"(schema v{_version(schema_for(name))}); re-run notebook {writer_of(name)}")


def read_result(paths: ResultsPaths, name: str):
    """``metrics/<name>.json`` of the run in ``paths`` as its schema record (``SCHEMAS``)."""
    return read_result_file(paths.metric(name), name)


def read_result_file(path: str | os.PathLike, name: str):
    """A metrics JSON at any path, read as the record of ``name``."""
    path = Path(path)
    return decode_result(name, read_json(path, path.name), f"{path.parent.name}/{path.name}")


def write_result(path: str | os.PathLike, record) -> Path:
    """Write a schema record atomically with its ``schema_version``; a record that would not
    read back (a missing or mistyped field) is refused before anything is written."""
    return write_json(path, encode_result(record, f"{Path(path).parent.name}/{Path(path).name}"))


def encode_result(record, label: str) -> dict:
    """A schema record as plain JSON with its ``schema_version``, refused (one line naming
    ``label``) if it would not read back: a missing or mistyped field."""
    body = encode(record)
    try:
        decode_value(type(record), body)
    except KeyProblem as err:
        raise SpinnError(f"{label}: cannot write, {err}") from None
    return {SCHEMA_KEY: record.SCHEMA_VERSION, **body}


def write_metric(paths: ResultsPaths, name: str, body) -> Path:
    """Write ``metrics/<name>.json`` through its schema: ``body`` is its record, or a dict a
    producer built, checked key by key against the record type first (``typed_json.parse``)."""
    path = paths.metric(name)
    if isinstance(body, dict):
        body = parse_record(name, body, f"{path.parent.name}/{path.name}")
    return write_result(path, body)


def parse_record(name: str, body: dict, label: str | None = None):
    """A dict a producer built, as the record of ``metrics/<name>.json`` (strict)."""
    try:
        return decode_value(schema_for(name), encode(body))
    except KeyProblem as err:
        raise SpinnError(f"{label or metric_file(name)}: cannot write, {err}") from None


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _field_comments(cls) -> dict[str, str]:
    """The ``# comment`` after each field in the class source: what the field means."""
    found = (re.match(r"\s+(\w+): [^#]*#\s*(.*)$", line) for line in inspect.getsource(cls).splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def _describe(cls) -> list[str]:
    doc = " ".join((cls.__doc__ or "").split())
    lines = [f"### `{cls.__name__}`", ""] + ([doc, ""] if doc and not doc.startswith(cls.__name__ + "(") else [])
    notes = _field_comments(cls)
    lines += ["| key | type | required | meaning |", "|---|---|---|---|"]
    lines += [f"| `{name}` | `{_cell(type_name(tp))}` | {'yes' if req else 'no'} | {_cell(notes.get(name, ''))} |"
              for name, tp, req in fields_of(cls)]
    return [*lines, ""]


def schema_reference() -> str:
    """docs/results_schema.md: every metrics JSON and the records it holds, from the dataclasses."""
    lines = ["# Results schema", "",
             "Generated by `spinn_utils.core.results_files.schema_reference()` from the dataclasses in",
             "`spinn_utils/core/results_schema.py`, `results_schema_eval.py` and `results_schema_sweep.py`; "
             "`tests/test_results_schema.py` fails when this file differs. Do not edit by hand.", "",
             f"Every file carries `\"{SCHEMA_KEY}\"`. A reader refuses a file of another version, or one",
             "with a missing, unexpected or mistyped key, with one line naming the file, the key and",
             "the notebook to re-run. `X | null` may be null (a NaN is written as null); a key that",
             "is not required may be absent. A `Skipped` or `BenchmarkSkipped` record",
             "(`\"skipped\": true` and a `reason`) stands where a step was skipped by design.", "",
             "| file | record | version | written by notebook |", "|---|---|---|---|"]
    for name, tp in SCHEMAS.items():
        lines.append(f"| `{metric_file(name)}` | `{_cell(type_name(tp))}` | {_version(tp)} | {writer_of(name)} |")
    lines.append(f"| `{SWEEP_DIR}/{SWEEP_FILE}` | `{type_name(Sweep)}` | {_version(Sweep)} | `spinn-run sweep` |")
    lines.append("")
    seen, queue = [], [t for tp in (*SCHEMAS.values(), Sweep) for t in nested_types(tp)]
    while queue:
        cls = queue.pop(0)
        if cls in seen:
            continue
        seen.append(cls)
        queue += [t for _, tp, _ in fields_of(cls) for t in nested_types(tp)]
    for cls in seen:
        lines += _describe(cls)
    return "\n".join(lines).rstrip() + "\n"
