"""Data: one table (a row per window), split by experiment, scaled with train statistics.

(Interface skeleton: Scaler and PreparedData are the contract later stages use.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import SpinnError

TARGETS = ("tool_wear_vb_mm", "thermal_displacement_um")
GROUP_COL = "experiment"  # split key: a case / insert set
RUN_COL = "run"
TIME_COL = "cut_time_min"  # cumulative cutting time within the experiment (an input, too)
SENSOR_CHANNELS = ("smc_ac", "smc_dc", "vib_table", "vib_spindle", "ae_table", "ae_spindle")
DEFAULT_FEATURES = (
    "depth_of_cut_mm",
    "feed_mm_rev",
    "material_code",  # 1 cast iron, 2 steel (as in mill.mat)
    "cutting_speed_m_min",
    TIME_COL,
    "run_index",
    *(f"{ch}_{stat}" for ch in SENSOR_CHANNELS for stat in ("mean", "rms")),
)
SPLITS = ("train", "val", "test")


@dataclass
class Scaler:
    """Standardise inputs and targets with statistics of the training split only."""

    feature_names: list[str]
    target_names: list[str]
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    fitted_on: str = "train"  # the leakage check refuses anything else

    @classmethod
    def fit(cls, frame: pd.DataFrame, feature_names, target_names, fitted_on: str = "train") -> Scaler:
        x = frame[list(feature_names)].to_numpy(np.float64)
        y = frame[list(target_names)].to_numpy(np.float64)
        # A constant column (e.g. one cutting speed) gets std 1 so it scales to 0, not NaN.
        x_std = x.std(axis=0)
        y_std = y.std(axis=0)
        return cls(
            list(feature_names), list(target_names),
            x.mean(axis=0), np.where(x_std > 0, x_std, 1.0),
            y.mean(axis=0), np.where(y_std > 0, y_std, 1.0),
            fitted_on,
        )

    def transform_x(self, x) -> np.ndarray:
        x = x[self.feature_names].to_numpy(np.float64) if isinstance(x, pd.DataFrame) else np.asarray(x)
        return ((x - self.x_mean) / self.x_std).astype(np.float32)

    def transform_y(self, y) -> np.ndarray:
        y = y[self.target_names].to_numpy(np.float64) if isinstance(y, pd.DataFrame) else np.asarray(y)
        return ((y - self.y_mean) / self.y_std).astype(np.float32)

    def inverse_y(self, y_scaled) -> np.ndarray:
        """Scaled model outputs -> physical units (mm, um)."""
        return np.asarray(y_scaled, dtype=np.float64) * self.y_std + self.y_mean

    def to_dict(self) -> dict:
        return {
            "feature_names": list(self.feature_names),
            "target_names": list(self.target_names),
            "x_mean": self.x_mean.tolist(), "x_std": self.x_std.tolist(),
            "y_mean": self.y_mean.tolist(), "y_std": self.y_std.tolist(),
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        try:
            return cls(
                list(d["feature_names"]), list(d["target_names"]),
                np.asarray(d["x_mean"], np.float64), np.asarray(d["x_std"], np.float64),
                np.asarray(d["y_mean"], np.float64), np.asarray(d["y_std"], np.float64),
                d.get("fitted_on", "train"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise SpinnError(f"scaler JSON is incomplete or malformed: {err}") from err


@dataclass
class PreparedData:
    """Splits in physical units plus the train-fitted scaler; ``arrays()`` gives model inputs."""

    frames: dict[str, pd.DataFrame]  # "train", "val", "test": every column, physical units
    feature_names: list[str]
    target_names: list[str]
    scaler: Scaler
    group_col: str = GROUP_COL
    time_col: str = TIME_COL
    meta: dict = field(default_factory=dict)  # source, generator settings, ...

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(X, Y) of one split, standardised, float32."""
        if split not in self.frames:
            raise SpinnError(f"no split {split!r}; have {sorted(self.frames)}")
        frame = self.frames[split]
        return self.scaler.transform_x(frame), self.scaler.transform_y(frame)

    def targets(self, split: str) -> np.ndarray:
        """Targets of one split in physical units."""
        return self.frames[split][self.target_names].to_numpy(np.float64)
