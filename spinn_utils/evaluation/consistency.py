"""Physics consistency of each model's test predictions: does it keep the physics it was taught?

- ``wear_decrease_fraction``: the share of consecutive test predictions within an experiment,
  in time order, where predicted wear drops by more than ``WEAR_DROP_TOL_MM`` (wear never heals,
  so a perfect model scores 0);
- ``thermal_ode_residual_rms_um``: the RMS of the lumped thermal model's residual
  ``tau * d(delta)/dt + delta - G * P`` on the test inputs, by forward-mode autograd (only where
  notebook 01 found the data supports the thermal term, and for models with a time derivative).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.dataset import PreparedData
from ..model.physics import PhysicsConfig, thermal_residual_rms_um

WEAR_DROP_TOL_MM = 1e-3  # a tenth of the 0.01 mm resolution VB is measured with


def wear_decrease_fraction(pred: np.ndarray, frame: pd.DataFrame, group_col: str, time_col: str,
                           tol: float = WEAR_DROP_TOL_MM) -> float:
    """Share of consecutive (in time, within an experiment) predictions that drop by > ``tol``."""
    order = pd.DataFrame({"g": frame[group_col].to_numpy(), "t": frame[time_col].to_numpy(), "p": pred})
    order = order.sort_values(["g", "t"], kind="stable")
    steps = order.groupby("g", sort=False)["p"].diff().dropna().to_numpy()
    return float((steps < -tol).mean()) if steps.size else float("nan")


def physics_consistency(models: dict[str, nn.Module], data: PreparedData, physics: PhysicsConfig,
                        thermal_supported: bool, split: str = "test", device="cpu") -> dict:
    """``{model: {"wear_decrease_fraction", "thermal_ode_residual_rms_um"}}`` on ``split``.

    The thermal residual is None where the data cannot support the term (notebook 01's record).
    """
    x, _ = data.arrays(split)
    frame = data.frames[split]
    x_t = torch.as_tensor(x, device=device)
    out = {}
    for name, model in models.items():
        model.to(device).eval()
        with torch.inference_mode():
            y = model(x_t).float().cpu().numpy()
        wear = data.scaler.inverse_y(y)[:, data.target_names.index(physics.wear_target)]
        out[name] = {
            "wear_decrease_fraction": wear_decrease_fraction(wear, frame, data.group_col, data.time_col),
            "thermal_ode_residual_rms_um": (thermal_residual_rms_um(model, x_t, data.scaler, physics)
                                            if thermal_supported else None),
        }
    return {"models": out, "wear_drop_tol_mm": WEAR_DROP_TOL_MM, "split": split}
