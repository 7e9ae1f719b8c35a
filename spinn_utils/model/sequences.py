"""The sequence a hard-physics head integrates along, from a prepared split (``sequence_of``),
and the model notebook 02 builds for the data (``model_config_for``, ``build_model``).
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.errors import SpinnError
from ..core.overrides import build_config, with_overrides
from ..data.dataset import PreparedData
from ..data.schema import CUM_TIME_COL, RUN_START_COL
from ..data.thermal import ThermalModel
from .mlp import DensePINN, ModelConfig
from .sequence_head import PhysicsHead
from .sequence_numpy import power_kw, sequence_columns

# The pipeline's model (docs/physics.md); ModelConfig's default stays "soft" for old checkpoints.
DEFAULT_PHYSICS = "hard"
COOLING_MIN = 5.0  # idle minutes between runs where the data does not say (the head learns its own)


def sequence_of(data: PreparedData, split: str) -> np.ndarray:
    """The (rows, 4) ``SEQUENCE_FIELDS`` of one prepared split, from notebook 01's cumulative
    time and run starts; without a power input, 1 kW."""
    frame, record = data.frames[split], data.meta.get("physics") or {}
    missing = [c for c in (data.group_col, CUM_TIME_COL, RUN_START_COL) if c not in frame]
    if missing:
        raise SpinnError(f"a hard-physics model needs the time order notebook 01 records; the data "
                         f"lacks {missing}: re-run notebook 01")
    power_col = record.get("power_col")
    power = (power_kw(frame[power_col].to_numpy(), record.get("power_unit", "A"))
             if power_col and power_col in frame else np.ones(len(frame)))
    return sequence_columns(frame[data.group_col].to_numpy(), frame[CUM_TIME_COL].to_numpy(np.float64),
                            frame[RUN_START_COL].to_numpy(), power)


def initial_wear_rate(data: PreparedData, sequence: np.ndarray) -> float:
    """Mean wear rise per kW-minute of cutting over the train split (the head's starting rate)."""
    wear = data.targets("train")[:, 0]
    same = sequence[1:, 0] <= 0
    energy = float((sequence[1:, 2] * sequence[1:, 3])[same].sum())
    rise = float(np.clip(np.diff(wear)[same], 0.0, None).sum())
    return rise / energy if energy > 0 and rise > 0 else 0.02


def model_config_for(data: PreparedData, physics: str | None = None) -> tuple[ModelConfig, str | None]:
    """(notebook 02's ModelConfig for ``data``: its widths, ``physics`` or ``DEFAULT_PHYSICS``;
    a one-line note when the data has no time order, so a hard model falls back to soft)."""
    cfg = build_config(ModelConfig, False, input_dim=len(data.feature_names),
                       output_dim=len(data.target_names), physics=physics or DEFAULT_PHYSICS)
    frame = data.frames["train"]
    if cfg.physics != "hard" or (CUM_TIME_COL in frame and RUN_START_COL in frame):
        return cfg, None
    return with_overrides(cfg, physics="soft"), (
        "note: the prepared data has no time order (cumulative time, run starts), so the model "
        "keeps its physics in the loss (soft); re-run notebook 01 for the hard model")


def build_model(cfg: ModelConfig, data: PreparedData) -> DensePINN:
    """A fresh DensePINN for ``data``; a hard model's head starts from the thermal model's
    constants, the data's scaler and the train split's mean wear rate per kW-minute."""
    model = DensePINN(cfg)
    if cfg.physics == "hard":
        thermal = ThermalModel()
        model.head = PhysicsHead(data.scaler.y_mean, data.scaler.y_std, thermal.tau_min,
                                 thermal.gain_um_per_kw, COOLING_MIN,
                                 initial_wear_rate(data, sequence_of(data, "train")))
        # The body's last layer starts at 0: the untrained model is the physics-only one.
        last = model.network[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
    return model
