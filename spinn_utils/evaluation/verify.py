"""Verify saved models (notebook 05): reload every checkpoint and check what was claimed.

Each dense-storage checkpoint (dense, pruned, structured) is reloaded from disk, its total
and non-zero parameters counted from the tensors (``model.counting.count_parameters``), and checked
against what notebook 03 recorded: the pruned sparsity reaches its target, the pruned
zeros are exactly the zeros that were saved (sha256 of the zero pattern), the structured
model's parameter count is within tolerance of its target, and every reloaded model
reproduces the validation metrics stored with it. Each check is a row ``{"name", "passed",
"detail"}`` so a failure says what was expected and what was found.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from ..compression.magnitude import mask_digest, masks_from_zeros
from ..compression.run_models import load_run_models
from ..core.checks import check_row
from ..core.env import environment_info
from ..core.errors import SpinnError
from ..core.overrides import StageConfig
from ..core.paths import ResultsPaths
from ..core.registry import DENSE_STORAGE_VARIANTS, METRICS, VARIANTS
from ..core.results_files import read_result
from ..core.results_schema import ModelVerification, Pruning, RegressionReport, VerifiedModel
from ..model.counting import count_parameters, mlp_parameters
from ..model.inference import evaluate_model
from ..model.mlp import ModelConfig


class VerifyConfig(StageConfig):
    # None: the target recorded in pruning.json.
    target_sparsity: float | None = Field(None, ge=0, lt=1)
    sparsity_tolerance_pp: float = 0.5  # pruned sparsity within 0.5 percentage points of target
    param_tolerance: float = 0.02  # structured params within 2% of their target
    metric_rtol: float = 1e-4  # reloaded metrics equal the saved ones up to float noise
    metric_atol: float = 1e-6  # (CSV round trip of the data, CPU vs GPU summation order)

    @classmethod
    def smoke_test(cls) -> VerifyConfig:
        return cls()  # the checks are the point; smoke only shrinks the models upstream


def metrics_close(saved: RegressionReport, reloaded: RegressionReport, rtol: float, atol: float) -> tuple[bool, float]:
    """Whether two regression reports agree per output and metric; (ok, largest abs diff)."""
    worst, ok = 0.0, set(saved.per_output) == set(reloaded.per_output)
    for target, row in saved.per_output.items():
        for metric, value in row.model_dump().items():
            new = getattr(reloaded.per_output.get(target), metric, None)
            if value is None or new is None:
                ok = ok and value is None and new is None
                continue
            worst = max(worst, abs(new - value))
            ok = ok and bool(np.isclose(new, value, rtol=rtol, atol=atol))
    return ok, worst


def _scaler_matches(meta_scaler: dict, data) -> bool:
    """The checkpoint's scaler is the data's scaler (same columns in order, same statistics)."""
    own = data.scaler.to_dict()
    if any(meta_scaler.get(k) != own[k] for k in ("feature_names", "target_names")):
        return False
    return all(np.allclose(meta_scaler[k], own[k], rtol=1e-9) for k in ("x_mean", "x_std", "y_mean", "y_std"))


def _reload(name: str, model, meta: dict, path, data, cfg: VerifyConfig, device) -> tuple[VerifiedModel, list[dict]]:
    """Re-evaluate one reloaded checkpoint: (its models entry, its own checks)."""
    reloaded = evaluate_model(model, data, "val", device)
    entry = VerifiedModel(path=str(path), kind=name, params=count_parameters(model),
                          hidden_dims=list(model.cfg.hidden_dims), val_metrics=reloaded)
    saved = meta.get("val_metrics")
    if saved is None:
        checks = [check_row(f"{name}_val_metrics_reproduced", False, "no val_metrics in meta")]
    else:
        ok, worst = metrics_close(RegressionReport(**saved), reloaded, cfg.metric_rtol, cfg.metric_atol)
        checks = [check_row(f"{name}_val_metrics_reproduced", ok,
                            f"largest |reloaded - saved| over outputs and metrics = {worst:.3g}")]
    checks.append(check_row(f"{name}_scaler_matches_data", _scaler_matches(meta.get("scaler", {}), data),
                            "checkpoint scaler vs data/scaler.json"))
    return entry, checks


def _dense_checks(loaded: dict, models: dict) -> list[dict]:
    dense_cfg = loaded[VARIANTS.dense][0].cfg
    total = models[VARIANTS.dense].params.total
    default = dense_cfg.dims == ModelConfig().dims
    expected = mlp_parameters(dense_cfg.dims)  # 666,882 for the default dims
    return [check_row("dense_total_params", total == expected,
                      f"{total} counted, {expected} expected for dims {list(dense_cfg.dims)}"
                      + ("" if default else " (not the default dims)"))]


def verify_models(paths: ResultsPaths, cfg: VerifyConfig, data, device="cpu") -> ModelVerification:
    """Reload every dense-storage checkpoint present and run the checks.

    Args:
        paths: the run's results folder (checkpoints/ and metrics/pruning.json).
        cfg: tolerances; ``target_sparsity`` None reads the target from pruning.json.
        data: PreparedData (notebook 01's saved splits) for re-evaluating "val".
        device: where to evaluate.

    Returns:
        The ``model_verification.json`` record (``core.results_schema.ModelVerification``):
        per variant its path, kind, params, hidden_dims and val_metrics; the checks; passed.
    """
    pruning_path = paths.metric(METRICS.pruning)
    pruning = read_result(paths, METRICS.pruning) if pruning_path.is_file() else None
    present = [name for name in DENSE_STORAGE_VARIANTS if paths.stored_checkpoint(name).is_file()]
    models, checks = {}, [
        check_row(f"{name}_present", False,
                  f"{paths.stored_checkpoint(name)} missing (run notebooks 02 and 03)")
        for name in DENSE_STORAGE_VARIANTS if name not in present]
    # Not data=: a checkpoint with another scaler is a failed check here, not a refusal.
    run = load_run_models(paths, present, device)
    loaded = {name: (run.models[name], run.metas[name]) for name in present}
    for name in present:
        models[name], own = _reload(name, *loaded[name], run.paths[name], data, cfg, device)
        checks += own
    if VARIANTS.dense in loaded:
        checks += _dense_checks(loaded, models)
    if VARIANTS.masked in loaded:
        checks += _pruned_checks(loaded, models, pruning, cfg)
    if VARIANTS.structured in loaded:
        checks += _structured_checks(loaded, models, pruning, cfg)
    return ModelVerification(models=models, checks=checks, passed=all(c["passed"] for c in checks),
                             environment=environment_info(device))


def _pruned_checks(loaded: dict, models: dict, pruning: Pruning | None, cfg: VerifyConfig) -> list[dict]:
    model, meta = loaded[VARIANTS.masked]
    params = models[VARIANTS.masked].params
    recorded = pruning.unstructured if pruning else None
    target = cfg.target_sparsity
    if target is None and pruning:
        target = pruning.config.get("target_sparsity")
    if target is None:
        raise SpinnError("no target_sparsity given and none recorded in pruning.json (run notebook 03)")
    gap_pp = 100 * abs(params.sparsity - target)
    out = [check_row("pruned_sparsity_on_target", gap_pp <= cfg.sparsity_tolerance_pp,
                  f"sparsity {params.sparsity:.4%} vs target {target:.4%}: {gap_pp:.3f} pp "
                  f"(tolerance {cfg.sparsity_tolerance_pp} pp)")]
    digest = mask_digest(masks_from_zeros(model))
    saved = meta.get("mask_sha256")
    out.append(check_row("pruned_zeros_still_zero", saved is not None and digest == saved
                      and digest == (recorded.mask_sha256 if recorded else digest),
                      f"zero-pattern sha256 {digest[:12]}... vs saved {str(saved)[:12]}..."))
    nonzero = recorded.params.nonzero if recorded else None
    out.append(check_row("pruned_nonzero_as_recorded", nonzero == params.nonzero,
                      f"{params.nonzero} non-zero counted, {nonzero} in pruning.json"))
    if VARIANTS.dense in loaded:
        same = loaded[VARIANTS.dense][0].cfg.dims == model.cfg.dims
        out.append(check_row("pruned_keeps_dense_shapes", same,
                          f"pruned dims {list(model.cfg.dims)} vs dense {list(loaded[VARIANTS.dense][0].cfg.dims)}"))
    return out


def _structured_checks(loaded: dict, models: dict, pruning: Pruning | None, cfg: VerifyConfig) -> list[dict]:
    model, meta = loaded[VARIANTS.structured]
    total = models[VARIANTS.structured].params.total
    target = meta.get("target_params") or (pruning.structured.target_params if pruning else None)
    if not target:
        return [check_row("structured_params_on_target", False, "no target_params in meta or pruning.json")]
    rel = (total - target) / target
    out = [check_row("structured_params_on_target", abs(rel) <= cfg.param_tolerance,
                  f"{total} params vs target {target}: {rel:+.3%} (tolerance {cfg.param_tolerance:.0%})")]
    if VARIANTS.dense in loaded:
        dense_hidden = loaded[VARIANTS.dense][0].cfg.hidden_dims
        smaller = all(s <= d for s, d in zip(model.cfg.hidden_dims, dense_hidden)) and \
            len(model.cfg.hidden_dims) == len(dense_hidden)
        out.append(check_row("structured_layers_shrunk", smaller,
                          f"hidden {list(model.cfg.hidden_dims)} vs dense {list(dense_hidden)}"))
    return out


def checks_table(result: ModelVerification) -> pd.DataFrame:
    """The checks as a table for display."""
    return pd.DataFrame([c.model_dump() for c in result.checks]).set_index("name")


def models_table(result: ModelVerification) -> pd.DataFrame:
    """One row per reloaded model: kind, widths, total/non-zero params, val R2."""
    rows = [{"model": name, "kind": m.kind, "hidden_dims": m.hidden_dims, **m.params.model_dump(),
             "val_mean_r2": m.val_metrics.mean_r2} for name, m in result.models.items()]
    return pd.DataFrame(rows).set_index("model")
