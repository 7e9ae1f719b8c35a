"""Regression metrics per output, in the units they are given. The summary across outputs is the
*mean of per-output R2* (``mean_r2``), never a pooled R2 over outputs with different units."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .results_schema import RegressionReport


def _as_2d(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    return y[:, None] if y.ndim == 1 else y


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column (1 - SS_res / SS_tot)."""
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)
    ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)


def regression_report(y_true: np.ndarray, y_pred: np.ndarray,
                      target_names: Sequence[str]) -> RegressionReport:
    """Per-output R2/RMSE/MAE (units of the targets) plus ``mean_r2`` over outputs (a NaN R2,
    a constant target, stays NaN here and is written as null)."""
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    if y_true.shape != y_pred.shape or y_true.shape[1] != len(target_names):
        raise ValueError(f"shapes {y_true.shape} vs {y_pred.shape} do not fit targets {list(target_names)}")
    r2, err = r2_score(y_true, y_pred), y_true - y_pred
    e_rmse, e_mae = np.sqrt((err ** 2).mean(axis=0)), np.abs(err).mean(axis=0)
    per_output = {name: {"r2": float(r2[i]), "rmse": float(e_rmse[i]), "mae": float(e_mae[i])}
                  for i, name in enumerate(target_names)}
    return RegressionReport(per_output=per_output, mean_r2=float(np.nanmean(r2)), n=int(len(y_true)))
