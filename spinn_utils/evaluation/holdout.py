"""Notebook 08's test-set evaluation: every model variant scored on the held-out experiments.

The saved variants (dense, unstructured SPINN in dense storage with zeros, the same weights
in sparse COO storage, structured SPINN, and structured SPINN as exported to ONNX) are
reloaded from their files (``compression.run_models``) and predict the test experiments; predictions are mapped back to
physical units with the train-fitted scaler and scored with ``core.metrics.regression_report`` (R2, RMSE, MAE per
output; ``mean_r2`` is the mean of the per-output R2, never a pooled R2). The COO model must
reproduce the masked one (the original design's tolerance, 1e-4 in scaled outputs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from ..core.env import environment_info
from ..core.io import atomic_path
from ..core.metrics import regression_report
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, ORT_EXPORTS, ORT_VARIANTS, TEST_VARIANTS, VARIANTS
from ..core.results_files import write_result
from ..core.results_schema import RegressionReport, Skipped
from ..core.results_schema_eval import (
    Baselines,
    CrossValidation,
    PhysicsConsistency,
    SeedRuns,
    SparseMatch,
    TestEvaluation,
)
from ..data.dataset import PreparedData
from ..data.schema import CUM_TIME_COL, target_unit
from ..model.inference import model_sequence, predict
from .crossval import CrossValConfig


@dataclass(frozen=True)
class HeldOutScores:
    """``evaluate_test``'s result: each model's scores, the sparse-vs-masked check (None without
    both models) and the measured-vs-predicted frame that ``write_results`` saves as CSV."""

    models: dict[str, RegressionReport]
    sparse_vs_masked: SparseMatch | None
    predictions: pd.DataFrame


def evaluate_test(
    models: dict[str, nn.Module], data: PreparedData, device, cfg: CrossValConfig,
    split: str = "test",
) -> dict:
    """Score every model on ``split`` and compare the sparse model with the masked one.

    Args:
        models: name -> model mapping standardised inputs to standardised targets.
        data: the prepared splits and the train-fitted scaler.
        device: where to predict.
        cfg: ``match_atol`` for the sparse-vs-masked comparison.
        split: which split to score.

    Returns:
        ``HeldOutScores``; its predictions frame is long: one row per (model, sample, target).
    """
    x, _ = data.arrays(split)
    scaled = {name: predict(m.to(device), x, device, sequence=model_sequence(m, data, split))
              for name, m in models.items()}
    physical = {name: data.scaler.inverse_y(y) for name, y in scaled.items()}
    measured = data.targets(split)
    reports = {name: regression_report(measured, y, data.target_names)
               for name, y in physical.items()}
    match = None
    if {VARIANTS.coo, VARIANTS.masked} <= set(scaled):
        diff = np.abs(scaled[VARIANTS.coo].astype(np.float64) - scaled[VARIANTS.masked])
        worst = float(diff.max()) if diff.size else 0.0
        match = {"max_abs_diff": worst, "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
                 "atol": cfg.match_atol, "passed": bool(worst < cfg.match_atol),
                 "n": int(len(x)), "units": "scaled model outputs"}
    return HeldOutScores(reports, match and SparseMatch(**match), predictions_frame(data, physical, split))


def predictions_frame(
    data: PreparedData, physical: dict[str, np.ndarray], split: str
) -> pd.DataFrame:
    """Long table of measured vs predicted values (physical units) for figures.py."""
    frame = data.frames[split].reset_index(drop=True)
    keys = pd.DataFrame({
        "sample": np.arange(len(frame)),
        "experiment": frame[data.group_col].to_numpy(),
        "run": frame[data.run_col].to_numpy() if data.run_col in frame else np.full(len(frame), -1),
        data.time_col: frame[data.time_col].to_numpy(),
        CUM_TIME_COL: frame[CUM_TIME_COL].to_numpy(),  # the wear-over-time figure's x
    })
    parts = []
    for model, y in physical.items():
        for j, target in enumerate(data.target_names):
            parts.append(keys.assign(model=model, target=target, predicted=y[:, j],
                                     measured=frame[target].to_numpy(np.float64)))
    return pd.concat(parts, ignore_index=True)


def metrics_table(reports: dict[str, RegressionReport]) -> pd.DataFrame:
    """Rows model, columns R2/RMSE/MAE per output and mean_r2: for printing."""
    rows = {}
    for name, rep in reports.items():
        row = {f"{t} {k}": v for t, m in rep.per_output.items() for k, v in m.model_dump().items()}
        rows[name] = {**row, "mean_r2": rep.mean_r2}
    return pd.DataFrame.from_dict(rows, orient="index")


def write_results(paths: ResultsPaths, test: HeldOutScores, cv: CrossValidation | None, cfg: CrossValConfig,
                  data: PreparedData, device, baselines: Baselines | None = None,
                  consistency: PhysicsConsistency | None = None, seeds: SeedRuns | None = None,
                  physics: str = "soft") -> list:
    """Write ``metrics/test_evaluation.json`` (the ``TestEvaluation`` record) and
    ``metrics/test_predictions.csv`` atomically; a part not run (None) is a ``Skipped`` with its reason."""
    split = data.frames["test"]
    record = TestEvaluation(
        split="test",
        test_experiments=sorted(split[data.group_col].unique().tolist()),
        models=test.models,
        sparse_vs_masked=test.sparse_vs_masked,
        cross_validation=cv or Skipped(skipped=True, reason="run_cv=False"),
        seed_runs=seeds or Skipped(skipped=True, reason="run_cv=False"),
        baselines=baselines or Skipped(skipped=True, reason="run_baselines=False"),
        physics_consistency=consistency or Skipped(skipped=True, reason="run_baselines=False"),
        checkpoints={name: str(paths.export(ORT_EXPORTS[name]) if name in ORT_VARIANTS
                               else paths.stored_checkpoint(name)) for name in TEST_VARIANTS},
        config=cfg,
        units={t: target_unit(t) for t in data.target_names},
        environment=environment_info(device),
        physics=physics,
    )
    json_path = write_result(paths.metric(METRICS.test_evaluation), record)
    csv_path = paths.predictions
    with atomic_path(csv_path) as tmp:
        test.predictions.to_csv(tmp, index=False)
    return [json_path, csv_path]
