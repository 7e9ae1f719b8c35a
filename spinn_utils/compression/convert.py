"""Cell 5.5: convert a pruned checkpoint to sparse storage, validate it, report every byte.

One code path for notebook 05.5 and the command line (the original design's ``convert_to_sparse.py``)::

    python -m spinn_utils.convert_to_sparse --checkpoint results/checkpoints/spinn_masked.pt \\
        [--format coo|csr] [--output-dir DIR] [--data test.csv] [--activation tanh] [--atol 1e-4]

Sources: our checkpoints (``spinn_masked``; ``dense`` and ``spinn_structured`` also work, and
files an earlier version wrote, such as ``spinn_pruned.pt``) and a plain
``state_dict`` of the earlier pipeline's ``nn.Sequential`` MLP (``network.0.weight``, ...;
widths from the shapes; ``*_orig``/``*_mask`` pairs left by ``torch.nn.utils.prune`` are
multiplied out). Writes ``spinn_coo.pt`` (the variant's name is its kind too) and
``sparse_conversion_report.json`` (keys in results/README.md) for COO, ``spinn_csr.pt`` and
``sparse_conversion_report_csr.json`` for CSR, so one format never replaces another's files. Bad input (a
missing file, malformed metadata, NaN/inf weights) is one line on stderr, exit code 2 and
nothing written; a conversion that does not validate writes ``<report>.failed.json``, leaves
every existing file alone and exits 1.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.env import environment_info, package_versions
from ..core.errors import SpinnError, first_line
from ..core.io import atomic_path
from ..core.registry import METRICS, sparse_report, sparse_variant
from ..core.results_files import parse_record, write_result
from ..data.dataset import Scaler
from ..data.schema import DEFAULT_FEATURES
from ..model.checkpoints import load_dense_model, load_state_dict_file
from ..model.counting import count_parameters, flops_per_sample
from ..model.mlp import DensePINN, model_from_state_dict
from .semi24 import semi_structured_supported
from .sparse import (
    FORMATS,
    SparsePINN,
    convert_dense_to_sparse,
    save_sparse_checkpoint,
    validate_conversion,
)
from .storage import weight_storage_report

LEGACY_ACTIVATION = "tanh"  # what the earlier pipeline's MLP used; its state_dict does not say


@dataclass(frozen=True)
class SparseConfig:
    format: str = "coo"  # the original design's format; the one notebook 05.5 saves (spinn_coo.pt)
    formats: tuple[str, ...] = FORMATS  # all validated and sized, so the report compares them
    atol: float = 1e-4  # the original design's checklist: "predictions match (max diff < 1e-4)"
    n_random_inputs: int = 1000  # rows of N(0,1) inputs when no data is given (scaled inputs look so)
    random_seed: int = 0  # fixed so a report made without data can be repeated
    max_rows: int | None = None  # validate on at most this many data rows (None: all)

    def __post_init__(self) -> None:
        formats = tuple(dict.fromkeys((self.format, *self.formats)))  # saved format always checked
        object.__setattr__(self, "formats", formats)
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise SpinnError(f"unknown sparse format(s) {unknown}; known: {list(FORMATS)}")
        if not self.atol > 0:
            raise SpinnError(f"atol must be > 0, got {self.atol}")
        if self.n_random_inputs < 1 or (self.max_rows is not None and self.max_rows < 1):
            raise SpinnError("n_random_inputs and max_rows must be >= 1")

    @classmethod
    def smoke_test(cls) -> SparseConfig:
        return cls(n_random_inputs=64, max_rows=256)  # COO on CPU is slow; a few rows show a bug


def fold_prune_masks(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``X_orig * X_mask`` -> ``X`` for tensors saved with ``torch.nn.utils.prune`` hooks attached."""
    out = {k: v for k, v in state.items() if not k.endswith(("_orig", "_mask"))}
    for key in (k for k in state if k.endswith("_orig")):
        base = key[: -len("_orig")]
        mask = state.get(base + "_mask")
        if mask is None or mask.shape != state[key].shape:
            raise SpinnError(f"{key} has no matching {base}_mask of shape {tuple(state[key].shape)}")
        out[base] = state[key] * mask
    return out


def load_source(path: str | os.PathLike, activation: str | None = None) -> tuple[DensePINN, dict, str]:
    """The dense-storage model to convert, its meta ({} for a plain state_dict) and its kind."""
    state, meta = load_state_dict_file(path)
    if meta is None:  # a plain state_dict from the earlier pipeline
        try:
            model = model_from_state_dict(fold_prune_masks(state), activation or LEGACY_ACTIVATION)
        except SpinnError as err:
            raise SpinnError(f"{path}: {err}") from err
        return model.eval(), {}, "state_dict"
    model, ckpt = load_dense_model(path)
    if activation is not None and activation != model.cfg.activation:
        raise SpinnError(
            f"{path} was trained with activation {model.cfg.activation!r}, but {activation!r} was asked for"
        )
    return model, ckpt.meta, ckpt.kind


def check_finite(model: nn.Module, path) -> None:
    """A NaN or inf weight is a broken source, not a tolerance question: say which tensor."""
    for name, t in model.state_dict().items():
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise SpinnError(f"{path}: {name} has {bad} NaN/inf value(s); nothing was converted")


def inputs_from_csv(
    path: str | os.PathLike, meta: dict, input_dim: int, features: list[str] | None = None
) -> tuple[np.ndarray, str]:
    """Model inputs from a CSV's feature columns, standardised with the checkpoint's scaler if any.

    Returns:
        (float32 array (n, input_dim), a description of where the inputs came from)
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError as err:
        raise SpinnError(f"data CSV not found: {path}") from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SpinnError(f"{path} is not a readable CSV: {first_line(err)}") from err
    scaler = Scaler.from_dict(meta["scaler"]) if meta.get("scaler") else None
    known = meta.get("feature_names") or (scaler.feature_names if scaler else None)
    if features is None:
        features = list(known or (DEFAULT_FEATURES if len(DEFAULT_FEATURES) == input_dim else []))
    if len(features) != input_dim:
        raise SpinnError(
            f"the model takes {input_dim} inputs but {len(features)} feature names are known; "
            "name the CSV's feature columns (--features a,b,...)"
        )
    if scaler is not None and list(features) != list(scaler.feature_names):
        raise SpinnError(f"features {features} differ from the checkpoint's {scaler.feature_names}")
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise SpinnError(
            f"{path} lacks feature column(s) {missing[:5]} (found {list(frame.columns)[:8]}...)"
        )
    values = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = [c for c, ok in zip(features, np.isfinite(values).all(axis=0)) if not ok]
    if bad or len(values) == 0:
        raise SpinnError(f"{path}: {len(values)} rows; missing or non-numeric values in {bad}")
    if scaler is None:
        return values.astype(np.float32), f"{path} ({len(values)} rows; no scaler in checkpoint, columns used as given)"
    return scaler.transform_x(values), f"{path} ({len(values)} rows, standardised with the checkpoint's scaler)"


def validation_inputs(
    cfg: SparseConfig, inputs, meta: dict, input_dim: int, features: list[str] | None = None,
    inputs_label: str | None = None,
) -> tuple[np.ndarray, str]:
    """(standardised inputs, where they came from): an array, a CSV path, or seeded N(0, 1) rows."""
    if inputs is None:
        gen = torch.Generator().manual_seed(cfg.random_seed)
        x = torch.randn(cfg.n_random_inputs, input_dim, generator=gen).numpy()
        label = f"random: N(0, 1) standardised inputs, seed {cfg.random_seed}"
    elif isinstance(inputs, (str, os.PathLike)):
        x, label = inputs_from_csv(inputs, meta, input_dim, features)
    else:
        x, label = np.asarray(inputs, dtype=np.float32), inputs_label or "given array"
    if x.ndim != 2 or x.shape[1] != input_dim or len(x) == 0:
        raise SpinnError(f"validation inputs must be (n >= 1, {input_dim}), got {x.shape}")
    if not np.isfinite(x).all():
        raise SpinnError(f"validation inputs ({label}) contain NaN or inf")
    if cfg.max_rows is not None and len(x) > cfg.max_rows:
        x, label = x[: cfg.max_rows], f"{label}; first {cfg.max_rows} of {len(x)} rows"
    return x, label


def conversion_report(cfg: SparseConfig, model: DensePINN, converted: dict[str, SparsePINN],
                      checks: dict[str, dict], device: torch.device) -> dict:
    """The body of ``sparse_conversion_report.json`` (source fields are added by the caller)."""
    storage = weight_storage_report(model.cpu(), cfg.formats)
    dense_bytes = storage["bytes_by_format"]["dense"]
    semi_ok, semi_reason = semi_structured_supported(device)
    return {
        "format": cfg.format,
        "dims": list(model.cfg.dims),
        "activation": model.cfg.activation,
        "params": count_parameters(model),
        "params_sparse": count_parameters(converted[cfg.format]),
        "per_layer": storage["per_layer"],
        "storage_bytes": storage["bytes_by_format"],
        "storage_vs_dense": {f: b / dense_bytes for f, b in storage["bytes_by_format"].items()},
        "storage_counts": "values + int64 indices (COO) or row offsets + column indices (CSR); dense biases in every total",
        "flops_per_sample": {"dense": flops_per_sample(model),
                             **{f: flops_per_sample(m) for f, m in converted.items()}},
        "validation_by_format": checks,
        "conversion_ok": checks[cfg.format]["passed"],
        "all_formats_passed": all(c["passed"] for c in checks.values()),
        "semi_structured": {"supported": semi_ok, "reason": semi_reason},
        "config": cfg,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "environment": environment_info(device),
    }


def convert_checkpoint(
    cfg: SparseConfig,
    source: str | os.PathLike,
    *,
    checkpoint_out: str | os.PathLike,
    report_out: str | os.PathLike,
    inputs: np.ndarray | str | os.PathLike | None = None,
    inputs_label: str | None = None,
    features: list[str] | None = None,
    activation: str | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """Convert ``source`` to ``cfg.format``, validate every format, write checkpoint + report.

    Args:
        cfg: formats, tolerance, validation rows.
        source: a SPINN checkpoint (pruned/dense/structured) or a plain MLP state_dict file.
        checkpoint_out, report_out: where the sparse checkpoint and the JSON report go.
        inputs: standardised inputs (n, input_dim), a CSV path (scaled with the source's
            scaler), or None for ``cfg.n_random_inputs`` seeded N(0,1) rows.
        inputs_label: how the report names array inputs (e.g. "test split").
        features: CSV feature columns when the source does not name them.
        activation: the legacy MLP's activation (our checkpoints carry theirs).
        device: where both models run during validation.
    Returns:
        The report. When the saved format validated, the checkpoint and ``report_out`` are
        written (both renamed into place only when complete); when it did not, the report goes
        to ``<report_out>.failed.json`` and existing files are left alone; when the input is bad
        (SpinnError), nothing is written.
    """
    model, meta, kind = load_source(source, activation)
    check_finite(model, source)
    x, label = validation_inputs(cfg, inputs, meta, model.cfg.input_dim, features, inputs_label)
    device = torch.device(device)
    model = model.to(device)
    converted = {f: convert_dense_to_sparse(model, f) for f in cfg.formats}
    checks = {f: validate_conversion(model, m, x, cfg.atol) for f, m in converted.items()}
    ok = checks[cfg.format]["passed"]
    report = {"source": str(source), "source_kind": kind,
              "checkpoint": str(checkpoint_out) if ok else None,
              **conversion_report(cfg, model, converted, checks, device)}
    report["validation"] = {**checks[cfg.format], "inputs": label}
    if not ok:  # a good checkpoint and report from before stay as they were
        report["report"] = str(failed_report_path(report_out))
        write_result(report["report"], parse_record(METRICS.sparse_conversion, report, report["report"]))
        return report
    keep = {k: meta[k] for k in ("feature_names", "target_names", "scaler", "seed") if k in meta}
    keep.update(source=str(source), source_kind=kind, validation=report["validation"])
    with atomic_path(checkpoint_out) as tmp:  # renamed only after the report is written too
        save_sparse_checkpoint(tmp, converted[cfg.format].cpu(), keep)
        write_result(report_out, parse_record(METRICS.sparse_conversion, report, str(report_out)))
    return report


def failed_report_path(report_out) -> Path:
    """Where a conversion that did not validate writes its report (never over a good one)."""
    report_out = Path(report_out)
    return report_out.with_name(f"{report_out.stem}.failed.json")


def summary_rows(report: dict) -> list[dict]:
    """One row per storage: format, bytes, ratio to dense, max/mean abs diff, passed."""
    rows = [{"format": "dense", "bytes": report["storage_bytes"]["dense"], "vs_dense": 1.0,
             "max_abs_diff": None, "mean_abs_diff": None, "passed": None}]
    for fmt, check in report["validation_by_format"].items():
        rows.append({"format": fmt, "bytes": report["storage_bytes"][fmt],
                     "vs_dense": report["storage_vs_dense"][fmt],
                     "max_abs_diff": check["max_abs_diff"], "mean_abs_diff": check["mean_abs_diff"],
                     "passed": check["passed"]})
    return rows


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, like every other bad input
        raise SpinnError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m spinn_utils.convert_to_sparse", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="pruned checkpoint or plain MLP state_dict (.pt)")
    p.add_argument("--format", default="coo", choices=FORMATS, help="format to save (default: coo)")
    p.add_argument("--output-dir", help="where to write (default: the checkpoint's folder)")
    p.add_argument("--data", help="CSV with the feature columns to validate on (default: random)")
    p.add_argument("--features", help="comma-separated CSV feature columns, if the checkpoint lacks names")
    p.add_argument("--activation", help=f"activation of a plain state_dict (default: {LEGACY_ACTIVATION})")
    p.add_argument("--atol", type=float, default=SparseConfig.atol, help="max abs output difference")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: 0 converted and validated, 1 did not validate, 2 bad input."""
    try:
        args = _parser().parse_args(argv)
        cfg = SparseConfig(format=args.format, atol=args.atol)
        out_dir = Path(args.output_dir) if args.output_dir else Path(args.checkpoint).parent
        ckpt_stem, report_stem = sparse_variant(cfg.format), sparse_report(cfg.format)
        report_out = out_dir / f"{report_stem}.json"
        report = convert_checkpoint(
            cfg, args.checkpoint, checkpoint_out=out_dir / f"{ckpt_stem}.pt", report_out=report_out,
            inputs=args.data, features=args.features.split(",") if args.features else None,
            activation=args.activation,
        )
    except (SpinnError, OSError) as err:
        print(f"convert_to_sparse: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(pd.DataFrame(summary_rows(report)).to_string(index=False))
    print(f"validated on {report['validation']['inputs']}")
    failed = [f for f, c in report["validation_by_format"].items() if not c["passed"]]
    if not report["conversion_ok"]:
        print(f"convert_to_sparse: {cfg.format} did not match the source within atol {cfg.atol:g} "
              f"(max abs diff {report['validation']['max_abs_diff']}); nothing replaced; "
              f"report: {report['report']}", file=sys.stderr)
        return 1
    if failed:
        print(f"convert_to_sparse: note: {failed} (validated for comparison, not saved) did not match "
              f"within atol {cfg.atol:g}", file=sys.stderr)
    print(f"wrote {report['checkpoint']} and {report_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
