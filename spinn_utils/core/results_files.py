"""Write and read a run's results JSONs through their schema records (a file that does not fit
is one line naming file, key and what to re-run), and render docs/results_schema.md."""
from __future__ import annotations

import inspect
import json
import os
import re
import types
import typing
from functools import cache
from pathlib import Path

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import SpinnError
from .io import read_json, to_jsonable, write_json
from .paths import ResultsPaths, metric_file
from .registry import METRICS, SWEEP_DIR, SWEEP_FILE
from .results_schema import (
    RAN,
    SKIPPED,
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


def members(tp) -> list:
    """The types a field type is made of: ``X | None`` -> [X, None], a ``skippable`` -> its two."""
    if typing.get_origin(tp) is typing.Annotated:
        return members(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in members(arg)]
    return [tp]


def _version(tp) -> int:
    return members(tp)[0].SCHEMA_VERSION


def writer_of(name: str) -> str:
    """The notebook that writes ``metrics/<name>.json`` (from the stage table, ``core/stages.py``)."""
    rel = metric_file(name)
    return next((nb for nb, stage in STAGES.items() if rel in stage.writes), "that wrote it")


@cache
def _adapter(tp) -> TypeAdapter:
    return TypeAdapter(tp)


def _problem(err: ValidationError) -> str:
    """The first problem of ``err`` in one line: what, and the dotted key path."""
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"] if p not in (RAN, SKIPPED))
    if first["type"] == "missing":
        return f"missing key {key!r}"
    if first["type"] == "extra_forbidden":
        return f"unexpected key {key!r}"
    what = first["msg"].replace("Input should be a valid ", "expected ").replace("Input should be ", "expected ")
    return f"{what}, found {type(first['input']).__name__} at key {key!r}"


def read_result(where: ResultsPaths | str | os.PathLike, kind):
    """A results JSON as its record: ``kind`` is a ``METRICS`` name (``read_result(paths,
    METRICS.pruning)``, or a file at any path read as that name's record) or a ``Versioned`` type.
    A file that does not fit is a one-line ``SpinnError`` naming the file, the key and what to re-run."""
    path = where.metric(kind) if isinstance(where, ResultsPaths) else Path(where)
    tp = schema_for(kind) if isinstance(kind, str) else kind
    rerun = f"re-run notebook {writer_of(kind)}" if isinstance(kind, str) else tp.RERUN
    label, version = f"{path.parent.name}/{path.name}", _version(tp)
    data = read_json(path, path.name)
    found = data.get(SCHEMA_KEY) if isinstance(data, dict) else None
    if found != version:
        what = "no schema_version" if found is None else f"schema_version {found!r}"
        raise SpinnError(f"{label}: written with {what}, this code reads schema v{version}; {rerun}")
    data.pop(SCHEMA_KEY)
    try:
        return _adapter(tp).validate_json(json.dumps(data), strict=True)
    except ValidationError as err:
        raise SpinnError(f"{label}: {_problem(err)} (schema v{version}); {rerun}") from None


def write_result(path: str | os.PathLike, record: BaseModel) -> Path:
    """Write a schema record atomically with its ``schema_version``; a record that would not
    read back (a NaN where a number is required, say) is refused before anything is written.
    An optional field left at its default is left out."""
    body = to_jsonable(record.model_dump(exclude_defaults=True))
    try:
        _adapter(type(record)).validate_json(json.dumps(body), strict=True)
    except ValidationError as err:
        raise SpinnError(f"{Path(path).parent.name}/{Path(path).name}: cannot write, {_problem(err)}") from None
    return write_json(path, {SCHEMA_KEY: record.SCHEMA_VERSION, **body})


def require_keys(name: str, block: dict, keys, where: str) -> None:
    """A free-form block (a config) read by key: a missing key is the same one-line error as
    a missing schema field (``metrics/<name>.json: missing key 'where.key' ...``)."""
    missing = [k for k in keys if k not in block]
    if missing:
        raise SpinnError(f"{metric_file(name)}: missing key '{where}.{missing[0]}' "
                         f"(schema v{_version(schema_for(name))}); re-run notebook {writer_of(name)}")


def type_name(tp) -> str:
    """How the schema reference writes a field type (``list[RegressionReport] | null``)."""
    parts = members(tp)
    if len(parts) > 1:
        return " | ".join(type_name(m) for m in parts)
    tp = parts[0]
    if tp is type(None):
        return "null"
    if tp is typing.Any:
        return "any"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, dict) and args:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def nested_types(tp) -> list:
    """The records a field type refers to, in order of appearance."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [t for arg in typing.get_args(tp) for t in nested_types(arg)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _field_comments(cls) -> dict[str, str]:
    """The ``# comment`` after each field in the class source: what the field means."""
    found = (re.match(r"\s+(\w+): [^#]*#\s*(.*)$", line) for line in inspect.getsource(cls).splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def _describe(cls) -> list[str]:
    """A record's heading, docstring and table of keys."""
    doc, notes = " ".join((cls.__doc__ or "").split()), _field_comments(cls)
    return [f"### `{cls.__name__}`", "", *([doc, ""] if doc else []),
            "| key | type | required | meaning |", "|---|---|---|---|",
            *(f"| `{name}` | `{_cell(type_name(f.annotation))}` | "
              f"{'yes' if f.is_required() else 'no'} | {_cell(notes.get(name, ''))} |"
              for name, f in cls.model_fields.items()), ""]


def schema_reference() -> str:
    """docs/results_schema.md: every metrics JSON and the records it holds, from the models."""
    lines = ["# Results schema", "",
             "Generated by `spinn_utils.core.results_files.schema_reference()` from the models in",
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
        if cls not in seen:
            seen.append(cls)
            queue += [t for f in cls.model_fields.values() for t in nested_types(f.annotation)]
    for cls in seen:
        lines += _describe(cls)
    return "\n".join(lines).rstrip() + "\n"
