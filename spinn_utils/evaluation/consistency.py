"""Physics consistency of each model's test predictions, and of the measured data by the same rules
(docs/physics.md): the share of consecutive predictions of an experiment, in time order
(``data/time_order.py``), where wear drops by more than ``WEAR_DROP_TOL_MM`` (0 is physical); and
the RMS residual of the lumped thermal model's exact step ``delta_i - [G P_i + (delta_{i-1} - G P_i)
exp(-dt_i / tau)]`` between consecutive windows of one run, only where notebook 01 found the data
supports the thermal term. The measured data's residual is the floor its noise sets.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from ..core.results_schema_eval import PhysicsConsistency
from ..data.dataset import PreparedData
from ..data.schema import WEAR_DROP_TOL_MM
from ..data.thermal import ThermalModel
from ..data.time_order import step_falls
from ..model.inference import model_sequence, predict
from ..model.physics import PhysicsConfig
from ..model.sequences import sequence_of


def wear_decrease_fraction(pred: np.ndarray, frame: pd.DataFrame, group_col: str, time_col: str,
                           tol: float = WEAR_DROP_TOL_MM, run_col: str = "") -> float:
    """Share of consecutive (in time order, within an experiment) predictions that drop by > ``tol``.

    Time order is the frame's cumulative time where it has it, else (``run_col``, ``time_col``)."""
    falls, steps = step_falls(pred, frame, group_col, run_col, time_col, tol)
    return falls / steps if steps else float("nan")


def thermal_step_residual_rms_um(delta_um: np.ndarray, sequence: np.ndarray) -> float:
    """RMS (um) of the discrete thermal residual (module docstring) over consecutive windows of
    one run; ``sequence`` is ``sequences.sequence_of`` of the same rows, in time order."""
    thermal = ThermalModel()
    delta = np.asarray(delta_um, dtype=np.float64)
    inside = (sequence[1:, 0] <= 0) & (sequence[1:, 1] <= 0)  # same experiment, same run
    steady = thermal.gain_um_per_kw * sequence[1:, 3]
    expected = steady + (delta[:-1] - steady) * np.exp(-sequence[1:, 2] / thermal.tau_min)
    residual = (delta[1:] - expected)[inside]
    return float(np.sqrt(np.mean(residual ** 2))) if residual.size else float("nan")


def _physics_of(physical: np.ndarray, data: PreparedData, physics: PhysicsConfig, split: str,
                sequence: np.ndarray | None) -> dict:
    frame = data.frames[split]
    wear = physical[:, data.target_names.index(physics.wear_target)]
    delta = physical[:, data.target_names.index(physics.thermal_target)]
    return {"wear_decrease_fraction": wear_decrease_fraction(wear, frame, data.group_col, data.time_col,
                                                             run_col=data.run_col),
            "thermal_ode_residual_rms_um": (None if sequence is None
                                            else thermal_step_residual_rms_um(delta, sequence))}


def physics_consistency(models: dict[str, nn.Module], data: PreparedData, physics: PhysicsConfig,
                        thermal_supported: bool, split: str = "test", device="cpu") -> PhysicsConsistency:
    """The ``PhysicsConsistency`` record: each model's wear decrease fraction and thermal ODE
    residual on ``split``, and the same for the measured targets (``measured``).

    The thermal residual is None where the data cannot support the term (notebook 01's record).
    """
    x, _ = data.arrays(split)
    sequence = sequence_of(data, split) if thermal_supported else None
    out = {}
    for name, model in models.items():
        scaled = predict(model, x, device, sequence=model_sequence(model, data, split))
        out[name] = _physics_of(data.scaler.inverse_y(scaled), data, physics, split, sequence)
    measured = _physics_of(data.targets(split), data, physics, split, sequence)
    return PhysicsConsistency(models=out, measured=measured, wear_drop_tol_mm=WEAR_DROP_TOL_MM, split=split)
