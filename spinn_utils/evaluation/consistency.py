"""Physics consistency of each model's test predictions: does it keep the physics it was taught?

- ``wear_decrease_fraction``: the share of consecutive test predictions within an experiment,
  in time order (experiment, run, time: ``data/time_order.py``), where predicted wear drops by
  more than ``WEAR_DROP_TOL_MM`` (wear never heals, so a perfect model scores 0);
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
from ..data.schema import WEAR_DROP_TOL_MM
from ..data.time_order import step_falls
from ..model.physics import PhysicsConfig, thermal_residual_rms_um


def wear_decrease_fraction(pred: np.ndarray, frame: pd.DataFrame, group_col: str, time_col: str,
                           tol: float = WEAR_DROP_TOL_MM, run_col: str = "") -> float:
    """Share of consecutive (in time order, within an experiment) predictions that drop by > ``tol``.

    Time order is the frame's cumulative time where it has it, else (``run_col``, ``time_col``)."""
    falls, steps = step_falls(pred, frame, group_col, run_col, time_col, tol)
    return falls / steps if steps else float("nan")


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
            "wear_decrease_fraction": wear_decrease_fraction(wear, frame, data.group_col, data.time_col,
                                                             run_col=data.run_col),
            "thermal_ode_residual_rms_um": (thermal_residual_rms_um(model, x_t, data.scaler, physics)
                                            if thermal_supported else None),
        }
    return {"models": out, "wear_drop_tol_mm": WEAR_DROP_TOL_MM, "split": split}
