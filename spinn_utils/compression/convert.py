"""Cell 5.5 and the CLI (``convert_cli.py``): ``convert_checkpoint`` converts a pruned
checkpoint (ours, or the earlier pipeline's plain ``nn.Sequential`` state_dict) to sparse
storage, validates it and reports every byte. Bad input is a SpinnError with nothing written; a
conversion that does not validate writes ``<report>.failed.json`` and leaves every file alone.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, ValidationInfo, field_validator

from ..core.env import environment_info, package_versions
from ..core.errors import SpinnError, first_line
from ..core.io import atomic_path, same_file
from ..core.overrides import Count, StageConfig
from ..core.results_files import write_result
from ..core.results_schema import SparseConversion
from ..data.dataset import Scaler
from ..data.schema import DEFAULT_FEATURES
from ..model.checkpoints import load_dense_model, load_state_dict_file
from ..model.counting import count_parameters, flops_per_sample
from ..model.mlp import DensePINN, model_from_state_dict
from .sparse import (
    FORMATS,
    SparsePINN,
    convert_dense_to_sparse,
    save_sparse_checkpoint,
    semi_structured_supported,
    validate_conversion,
    weight_storage_report,
)

LEGACY_ACTIVATION = "tanh"  # what the earlier pipeline's MLP used; its state_dict does not say


class SparseConfig(StageConfig):
    # The original design's format; the one notebook 05.5 saves (spinn_coo.pt).
    format: Literal[FORMATS] = "coo"
    # All validated and sized, so the report compares them (the saved format always among them).
    formats: tuple[Literal[FORMATS], ...] = FORMATS
    # The original design's checklist: "predictions match (max diff < 1e-4)".
    atol: float = Field(1e-4, gt=0)
    n_random_inputs: Count = 1000  # rows of N(0,1) inputs when no data is given (scaled inputs look so)
    random_seed: int = 0  # fixed so a report made without data can be repeated
    max_rows: Count | None = None  # validate on at most this many data rows (None: all)

    @field_validator("formats")
    @classmethod
    def _saved_format_first(cls, formats: tuple, info: ValidationInfo) -> tuple:
        return tuple(dict.fromkeys((info.data.get("format", "coo"), *formats)))

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
    """The dense-storage model to convert, its meta ({} for a plain state_dict) and its kind; a
    NaN or inf weight is a broken source, not a tolerance question: the error names the tensor."""
    state, meta = load_state_dict_file(path)
    if meta is None:  # the earlier pipeline's plain state_dict: widths from the shapes
        try:
            model = model_from_state_dict(fold_prune_masks(state), activation or LEGACY_ACTIVATION)
        except SpinnError as err:
            raise SpinnError(f"{path}: {err}") from err
        meta, kind = {}, "state_dict"
    else:
        model, ckpt = load_dense_model(path)
        if activation is not None and activation != model.cfg.activation:
            raise SpinnError(f"{path} was trained with activation {model.cfg.activation!r}, "
                             f"but {activation!r} was asked for")
        meta, kind = ckpt.meta, ckpt.kind
    for name, t in model.state_dict().items():
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise SpinnError(f"{path}: {name} has {bad} NaN/inf value(s); nothing was converted")
    return model.eval(), meta, kind


def inputs_from_csv(path: str | os.PathLike, meta: dict, input_dim: int,
                    features: list[str] | None = None) -> tuple[np.ndarray, str]:
    """(float32 (n, input_dim) inputs from a CSV's feature columns, standardised with the
    checkpoint's scaler if it has one; where they came from)."""
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
        raise SpinnError(f"the model takes {input_dim} inputs but {len(features)} feature names are "
                         "known; name the CSV's feature columns (--features a,b,...)")
    if scaler is not None and list(features) != list(scaler.feature_names):
        raise SpinnError(f"features {features} differ from the checkpoint's {scaler.feature_names}")
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise SpinnError(f"{path} lacks feature column(s) {missing[:5]} (found {list(frame.columns)[:8]}...)")
    values = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = [c for c, ok in zip(features, np.isfinite(values).all(axis=0)) if not ok]
    if bad or len(values) == 0:
        raise SpinnError(f"{path}: {len(values)} rows; missing or non-numeric values in {bad}")
    if scaler is None:
        return values.astype(np.float32), f"{path} ({len(values)} rows; no scaler in checkpoint, columns used as given)"
    return scaler.transform_x(values), f"{path} ({len(values)} rows, standardised with the checkpoint's scaler)"


def validation_inputs(cfg: SparseConfig, inputs, meta: dict, input_dim: int,
                      features: list[str] | None = None, inputs_label: str | None = None) -> tuple[np.ndarray, str]:
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
        "format": cfg.format, "dims": list(model.cfg.dims), "activation": model.cfg.activation,
        "params": count_parameters(model), "params_sparse": count_parameters(converted[cfg.format]),
        "per_layer": storage["per_layer"], "storage_bytes": storage["bytes_by_format"],
        "storage_vs_dense": {f: b / dense_bytes for f, b in storage["bytes_by_format"].items()},
        "storage_counts": ("values + int64 indices (COO) or row offsets + column indices (CSR); "
                           "dense biases in every total"),
        "flops_per_sample": {"dense": flops_per_sample(model),
                             **{f: flops_per_sample(m) for f, m in converted.items()}},
        "validation_by_format": checks, "conversion_ok": checks[cfg.format]["passed"],
        "all_formats_passed": all(c["passed"] for c in checks.values()),
        "semi_structured": {"supported": semi_ok, "reason": semi_reason}, "config": cfg,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(), "environment": environment_info(device),
    }


def convert_checkpoint(cfg: SparseConfig, source: str | os.PathLike, *,
                       checkpoint_out: str | os.PathLike, report_out: str | os.PathLike,
                       inputs: np.ndarray | str | os.PathLike | None = None,
                       inputs_label: str | None = None, features: list[str] | None = None,
                       activation: str | None = None,
                       device: str | torch.device = "cpu") -> SparseConversion:
    """Convert ``source`` to ``cfg.format``, validate every format on ``device``, write checkpoint
    + report (module docstring) and return the ``SparseConversion`` record. ``inputs``: standardised
    rows (``inputs_label`` names them), a CSV path (``features``: its columns, if the source does
    not name them) or None; ``activation``: a plain state_dict's (our checkpoints carry theirs)."""
    refuse_overwriting_inputs(source, inputs, [checkpoint_out, report_out, failed_report_path(report_out)])
    model, meta, kind = load_source(source, activation)
    x, label = validation_inputs(cfg, inputs, meta, model.cfg.input_dim, features, inputs_label)
    device = torch.device(device)
    model = model.to(device)
    converted = {f: convert_dense_to_sparse(model, f) for f in cfg.formats}
    checks = {f: validate_conversion(model, m, x, cfg.atol) for f, m in converted.items()}
    ok = checks[cfg.format]["passed"]
    report = SparseConversion(
        source=str(source), source_kind=kind, checkpoint=str(checkpoint_out) if ok else None,
        **conversion_report(cfg, model, converted, checks, device),
        validation={**checks[cfg.format], "inputs": label},
        report=None if ok else str(failed_report_path(report_out)))
    if not ok:  # a good checkpoint and report from before stay as they were
        write_result(report.report, report)
        return report
    keep = {k: meta[k] for k in ("feature_names", "target_names", "scaler", "seed", "physics_head") if k in meta}
    keep.update(source=str(source), source_kind=kind, validation=report.validation.model_dump())
    with atomic_path(checkpoint_out) as tmp:  # renamed only after the report is written too
        save_sparse_checkpoint(tmp, converted[cfg.format].cpu(), keep)
        write_result(report_out, report)
    return report


def refuse_overwriting_inputs(source, inputs, outputs: list) -> None:
    """No output may be the source checkpoint or the input CSV, however the path is spelled
    (relative, through a symlink or ``..``, a hard link): the conversion would destroy its input."""
    given = [source] + ([inputs] if isinstance(inputs, (str, os.PathLike)) else [])
    for out in outputs:
        for path in given:
            if same_file(out, path):
                raise SpinnError(f"the output {out} is the input {path} (the same file): writing it would "
                                 "destroy the input; name another --output-dir; nothing was written")


def failed_report_path(report_out) -> Path:
    """Where a conversion that did not validate writes its report (never over a good one)."""
    return Path(report_out).with_suffix(".failed.json")


def summary_rows(report: SparseConversion) -> list[dict]:
    """One row per storage: format, bytes, ratio to dense, max/mean abs diff, passed."""
    rows = [{"format": "dense", "bytes": report.storage_bytes["dense"], "vs_dense": 1.0,
             "max_abs_diff": None, "mean_abs_diff": None, "passed": None}]
    for fmt, check in report.validation_by_format.items():
        rows.append({"format": fmt, "bytes": report.storage_bytes[fmt], "vs_dense": report.storage_vs_dense[fmt],
                     "max_abs_diff": check.max_abs_diff, "mean_abs_diff": check.mean_abs_diff,
                     "passed": check.passed})
    return rows


