"""What later stages code against: ``Scaler`` (train statistics) and ``PreparedData`` (the
splits in physical units and time order); ``save_prepared``/``load_prepared`` hand them on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import SpinnError
from ..core.io import atomic_path, read_json, write_json
from ..core.results_schema import Leakage, PhysicsSupport
from .schema import CUM_TIME_COL, GROUP_COL, RUN_START_COL, SPLITS, TIME_COL
from .splits import shared_groups
from .time_order import ensure_time_columns


def _standardise(values, names, mean, std) -> np.ndarray:
    """``names`` of a frame (or an array's columns) minus ``mean``, over ``std``, as float32."""
    if isinstance(values, pd.DataFrame):
        values = values[names].to_numpy(np.float64)
    return ((values - mean) / std).astype(np.float32)


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
    def fit(cls, frame: pd.DataFrame, feature_names, target_names) -> Scaler:
        """Means and stds of ``frame``; a constant column gets std 1, so it scales to 0."""
        x, y = (frame[list(names)].to_numpy(np.float64) for names in (feature_names, target_names))
        x_std, y_std = x.std(axis=0), y.std(axis=0)
        return cls(list(feature_names), list(target_names), x.mean(axis=0),
                   np.where(x_std > 0, x_std, 1.0), y.mean(axis=0), np.where(y_std > 0, y_std, 1.0))

    def transform_x(self, x) -> np.ndarray:
        return _standardise(x, self.feature_names, self.x_mean, self.x_std)

    def transform_y(self, y) -> np.ndarray:
        return _standardise(y, self.target_names, self.y_mean, self.y_std)

    def inverse_y(self, y_scaled) -> np.ndarray:
        """Scaled model outputs -> physical units (mm, um)."""
        return np.asarray(y_scaled, dtype=np.float64) * self.y_std + self.y_mean

    def to_dict(self) -> dict:
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        try:
            stats = (np.asarray(d[k], np.float64) for k in ("x_mean", "x_std", "y_mean", "y_std"))
            return cls(list(d["feature_names"]), list(d["target_names"]), *stats,
                       d.get("fitted_on", "train"))
        except (KeyError, TypeError, ValueError) as err:
            raise SpinnError(f"scaler JSON is incomplete or malformed: {err}") from err


@dataclass
class PreparedData:
    """Splits in physical units plus the train-fitted scaler; ``arrays()`` gives model inputs."""

    frames: dict[str, pd.DataFrame]  # "train", "val", "test": every column, physical units, time order
    feature_names: list[str]
    target_names: list[str]
    scaler: Scaler
    group_col: str = GROUP_COL
    time_col: str = TIME_COL
    meta: dict = field(default_factory=dict)  # source, generator settings, ...
    run_col: str = ""  # the run order within an experiment ("": none); see data/time_order.py

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(X, Y) of one split, standardised, float32."""
        if split not in self.frames:
            raise SpinnError(f"no split {split!r}; have {sorted(self.frames)}")
        frame = self.frames[split]
        return self.scaler.transform_x(frame), self.scaler.transform_y(frame)

    def targets(self, split: str) -> np.ndarray:
        """Targets of one split in physical units."""
        return self.frames[split][self.target_names].to_numpy(np.float64)

    @property
    def test(self) -> pd.DataFrame:
        """The test split, every column."""
        return self.frames["test"]

    @property
    def leakage(self) -> Leakage:
        """The leakage report ``prepare`` recorded (``leakage.check_leakage``)."""
        if "leakage" not in self.meta:
            raise SpinnError("this data has no leakage report (prepare() writes one)")
        return Leakage.model_validate(self.meta["leakage"])

    @property
    def physics(self) -> PhysicsSupport | None:
        """The physics terms the data supports (``prepare.physics_support``), or None."""
        record = self.meta.get("physics")
        return None if record is None else PhysicsSupport.model_validate(record)


def make_prepared(frames: dict[str, pd.DataFrame], feature_names, target_names,
                  group_col: str = GROUP_COL, time_col: str = TIME_COL, meta: dict | None = None,
                  run_col: str = "") -> PreparedData:
    """PreparedData with the scaler fitted on ``frames["train"]`` only; a frame without the
    time-order columns gets them (cumulative time built with no gap between runs)."""
    frames = {s: ensure_time_columns(f, group_col, run_col, time_col) for s, f in frames.items()}
    scaler = Scaler.fit(frames["train"], feature_names, target_names)
    return PreparedData(frames, list(feature_names), list(target_names), scaler,
                        group_col, time_col, dict(meta or {}), run_col)


def save_prepared(data: PreparedData, directory: str | Path) -> Path:
    """Write {train,val,test}.csv, scaler.json and features.json into ``directory`` atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for split, frame in data.frames.items():
        with atomic_path(directory / f"{split}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    write_json(directory / "scaler.json", data.scaler.to_dict())
    write_json(directory / "features.json", {
        "feature_names": data.feature_names, "target_names": data.target_names,
        "group_col": data.group_col, "time_col": data.time_col, "run_col": data.run_col,
        "splits": list(data.frames),
        "group_is_text": not pd.api.types.is_numeric_dtype(data.frames["train"][data.group_col]),
        "meta": data.meta,
    })
    return directory


def load_prepared(directory: str | Path) -> PreparedData:
    """Read what ``save_prepared`` wrote; a missing or incomplete directory is a SpinnError."""
    directory = Path(directory)
    info = read_json(directory / "features.json", "prepared-data description (notebook 01 writes it)")
    splits = info.get("splits", list(SPLITS))
    missing = [f"{s}.csv" for s in splits if not (directory / f"{s}.csv").is_file()]
    if missing:
        raise SpinnError(f"prepared data in {directory} lacks {missing} (run notebook 01 first)")
    scaler = Scaler.from_dict(read_json(directory / "scaler.json", "scaler (notebook 01 writes it)"))
    dtype = {info["group_col"]: str} if info.get("group_is_text") else None
    frames = {s: pd.read_csv(directory / f"{s}.csv", dtype=dtype) for s in splits}
    for s, frame in frames.items():
        absent = [c for c in (*info["feature_names"], *info["target_names"], CUM_TIME_COL, RUN_START_COL)
                  if c not in frame]
        if absent:
            raise SpinnError(f"{directory / (s + '.csv')} lacks column(s) {absent}")
    data = PreparedData(frames, list(info["feature_names"]), list(info["target_names"]), scaler,
                        info["group_col"], info["time_col"], info.get("meta", {}), info.get("run_col", ""))
    overlap = shared_groups(frames, data.group_col)
    if overlap:  # rows moved between the split files after notebook 01 wrote them
        raise SpinnError(f"the splits in {directory} share experiments ({'; '.join(overlap)}): "
                         "re-run notebook 01")
    return data


def split_table(data: PreparedData) -> pd.DataFrame:
    """One line per split: experiments, rows and target ranges (for display)."""
    return pd.DataFrame([
        {"split": split, "experiments": sorted(frame[data.group_col].unique().tolist()),
         "n_experiments": frame[data.group_col].nunique(), "rows": len(frame),
         **{f"{t} range": f"{frame[t].min():.3g} .. {frame[t].max():.3g}"
            for t in data.target_names}}
        for split, frame in data.frames.items()
    ])
