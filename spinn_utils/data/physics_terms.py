"""Which physics-loss terms a data set supports, decided once by notebook 01 and recorded; notebook
02 builds its ``PhysicsConfig`` from the record (``model.physics.physics_config_for``), so a term
the data cannot support never fails training (docs/data.md, "Your own CSV").
"""
from __future__ import annotations

from ..core.errors import SpinnError
from .schema import DataConfig


def physics_support(cfg: DataConfig, source: str) -> dict:
    """``{term: {"supported": bool, "reason": str}}`` plus the columns the terms use."""
    terms = {
        "wear_nonneg": {"supported": True, "reason": f"wear target {cfg.target_cols[0]!r}"},
        "wear_monotone": {"supported": True, "reason": f"time input {cfg.time_col!r}"},
    }
    if len(cfg.target_cols) < 2:
        thermal = (False, "only one target: there is no thermal displacement to constrain")
    elif source == "nasa_mat":
        thermal = (False, "mill.mat: its spindle current is not in the sensor model's units and its "
                          "thermal target is derived from the same model")
    elif cfg.power_col not in cfg.feature_cols:
        thermal = (False, f"no power input: power_col {cfg.power_col!r} is not among the feature columns")
    else:
        thermal = (True, f"power from input {cfg.power_col!r} in {cfg.power_unit}")
    if cfg.thermal_ode is False:
        thermal = (False, "turned off in the data description (thermal_ode: false)")
    elif cfg.thermal_ode and not thermal[0]:
        raise SpinnError(f"thermal_ode was asked for, but the data cannot support it: {thermal[1]}")
    terms["thermal_ode"] = {"supported": thermal[0], "reason": thermal[1]}
    return {"terms": terms, "time_col": cfg.time_col, "wear_target": cfg.target_cols[0],
            "thermal_target": cfg.target_cols[-1], "power_col": cfg.power_col, "power_unit": cfg.power_unit}
