"""Data: one table (a row per window), split by experiment, scaled with train statistics.

Three sources end as the same table (DATA.md): the embedded synthetic milling data
(``synthetic.py``, the default), the NASA milling set ``mill.mat`` (Goebel & Agogino, NASA
Ames Prognostics Data Repository; read with ``scipy.io.loadmat``; it has no thermal
measurement, so thermal displacement is derived with ``thermal.ThermalModel`` and the
summary says so), and a user's CSV. ``prepare`` loads, validates, splits by experiment
(never by row), fits the ``Scaler`` on train only and runs the leakage check
(``leakage.py``); ``cv_folds`` gives leave-experiments-out folds over all experiments.
``Scaler`` and ``PreparedData`` are the contract every later stage codes against.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import SpinnError, atomic_path, environment_info, read_json, write_json
from .leakage import check_leakage, fold_groups, split_groups

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


@dataclass(frozen=True)
class DataConfig:
    data_path: str = ""  # "" = embedded synthetic milling data; *.mat = NASA mill.mat; *.csv = your table
    group_col: str = GROUP_COL  # rows of one experiment are near-duplicates: splits never share one
    time_col: str = TIME_COL  # cumulative cutting time (min): orders rows; physics differentiates by it
    feature_cols: tuple[str, ...] = DEFAULT_FEATURES  # DATA.md's 18 inputs (18 -> ... gives 666,882 params)
    target_cols: tuple[str, ...] = TARGETS  # flank wear VB (mm), thermal displacement (um)
    split_col: str = ""  # CSV column giving each row's split (train/val/test); "" = seeded split
    val_experiments: int = 2  # early stopping needs unseen experiments; 16 in all is few
    test_experiments: int = 3  # 3 of 16: room for both materials, 11 left to train on
    seed: int = 42  # fixes the synthetic data and which experiments go to val/test
    window_samples: int = 250  # samples per window (synthetic and mill.mat): 1 s at 250 Hz
    fail_on_leakage: bool = True  # a failed leakage check stops the run unless you opt out

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_cols", tuple(self.feature_cols))
        object.__setattr__(self, "target_cols", tuple(self.target_cols))
        for name in ("val_experiments", "test_experiments", "window_samples"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise SpinnError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.feature_cols or not self.target_cols:
            raise SpinnError("feature_cols and target_cols must each name at least one column")

    @classmethod
    def smoke_test(cls) -> DataConfig:
        return cls(window_samples=1500)  # 6 windows per run: ~1,000 rows, all 16 experiments


def source_kind(cfg: DataConfig) -> str:
    """'synthetic', 'nasa_mat' or 'csv', from ``cfg.data_path``."""
    if not cfg.data_path:
        return "synthetic"
    suffix = Path(cfg.data_path).suffix.lower()
    kinds = {".mat": "nasa_mat", ".csv": "csv"}
    if suffix not in kinds:
        raise SpinnError(
            f"data_path must be '' (synthetic data), a .mat (NASA mill.mat) or a .csv file; "
            f"got {cfg.data_path!r} with extension {suffix or '(none)'!r}"
        )
    return kinds[suffix]


def load_table(cfg: DataConfig) -> pd.DataFrame:
    """The validated table of ``cfg.data_path`` (or the synthetic data), sorted by group and time.

    Args:
        cfg: which source, column names, window size, seed.

    Returns:
        One row per window with ``cfg.group_col``, ``cfg.time_col``, the feature and target
        columns (float64), and whatever else the source has. ``attrs["notes"]`` lists rows the
        loader dropped or filled; ``attrs["generator"]`` holds the synthetic settings.
    """
    kind = source_kind(cfg)
    if kind == "synthetic":
        from .synthetic import SyntheticConfig, generate_milling  # synthetic imports this module

        generator = SyntheticConfig(seed=cfg.seed, window_samples=cfg.window_samples)
        table = generate_milling(generator)
        table.attrs["generator"] = dataclasses.asdict(generator)
    else:
        path = Path(cfg.data_path).expanduser()
        if not path.is_file():
            raise SpinnError(f"data file not found: {path}")
        table = load_nasa_mat(path, cfg) if kind == "nasa_mat" else load_csv(path, cfg)
    return validate_table(table, cfg)


def load_csv(path: str | Path, cfg: DataConfig) -> pd.DataFrame:
    """A user's CSV as it is (``validate_table`` checks columns and values)."""
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise SpinnError(f"CSV file is empty: {path}") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise SpinnError(f"cannot parse CSV {path}: {err}") from err
    if table.empty:
        raise SpinnError(f"CSV file has a header but no rows: {path}")
    return table


def load_nasa_mat(path: str | Path, cfg: DataConfig) -> pd.DataFrame:
    """NASA ``mill.mat`` -> the window table (``synthetic.read_mill_mat``: shared signal physics)."""
    from .synthetic import read_mill_mat  # synthetic imports this module's constants

    return read_mill_mat(path, cfg.window_samples)


def validate_table(table: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    """Columns present, numeric and finite; returns a copy sorted by group and time."""
    if table.empty:
        raise SpinnError("the data table has no rows")
    if len(set(cfg.feature_cols)) != len(cfg.feature_cols):
        raise SpinnError(f"feature_cols names a column twice: {list(cfg.feature_cols)}")
    required = [cfg.group_col, cfg.time_col, *cfg.feature_cols, *cfg.target_cols]
    required += [cfg.split_col] if cfg.split_col else []
    missing = [c for c in dict.fromkeys(required) if c not in table.columns]
    if missing:
        raise SpinnError(f"missing column(s) {missing}; the table has {list(table.columns)}")
    attrs = dict(table.attrs)  # loader notes and generator settings, kept through the copy
    table = table.copy()
    numeric = list(dict.fromkeys([cfg.time_col, *cfg.feature_cols, *cfg.target_cols]))
    for col in numeric:
        coerced = pd.to_numeric(table[col], errors="coerce")
        bad = table[col][coerced.isna() & table[col].notna()]
        if len(bad):
            raise SpinnError(f"column {col!r} must be numeric; found {bad.iloc[0]!r} in row {bad.index[0]}")
        table[col] = coerced.astype(np.float64)
    not_finite = {c: int((~np.isfinite(table[c].to_numpy())).sum()) for c in numeric}
    not_finite = {c: n for c, n in not_finite.items() if n}
    if not_finite:
        raise SpinnError(f"NaN or inf values (column: rows) {not_finite}; fill or drop them first")
    if table[cfg.group_col].isna().any():
        raise SpinnError(f"group column {cfg.group_col!r} has {int(table[cfg.group_col].isna().sum())} empty value(s)")
    table = table.sort_values([cfg.group_col, cfg.time_col], kind="stable").reset_index(drop=True)
    table.attrs.update(attrs)
    return table


def split_by_experiment(table: pd.DataFrame, cfg: DataConfig) -> dict[str, pd.DataFrame]:
    """Train/val/test frames with no experiment in two splits (seeded, or ``cfg.split_col``)."""
    members = split_groups(table, cfg.group_col, cfg.val_experiments, cfg.test_experiments,
                           cfg.seed, cfg.split_col)
    return {s: table[table[cfg.group_col].isin(members[s])].reset_index(drop=True) for s in SPLITS}


def make_prepared(frames: dict[str, pd.DataFrame], feature_names, target_names,
                  group_col: str = GROUP_COL, time_col: str = TIME_COL, meta: dict | None = None) -> PreparedData:
    """PreparedData with the scaler fitted on ``frames["train"]`` only."""
    scaler = Scaler.fit(frames["train"], feature_names, target_names, fitted_on="train")
    return PreparedData(dict(frames), list(feature_names), list(target_names), scaler,
                        group_col, time_col, dict(meta or {}))


def thermal_source(kind: str, cfg: DataConfig) -> str:
    """Where the thermal target comes from, in words (the report must say it)."""
    return {
        "synthetic": "simulated: thermal.ThermalModel driven by the synthetic cutting power",
        "nasa_mat": "derived: thermal.ThermalModel driven by process power and VB "
                    "(mill.mat has no thermal measurement)",
    }.get(kind, f"measured: as given in the CSV (targets {list(cfg.target_cols)})")


def prepare(cfg: DataConfig) -> PreparedData:
    """Load, validate, split by experiment, fit the scaler on train, check for leakage.

    Args:
        cfg: source, columns, split sizes, seed; ``fail_on_leakage`` decides whether a
            failed leakage check raises (default) or is only recorded in ``meta``.

    Returns:
        PreparedData with ``meta``: source, data_path, thermal_source, config, notes,
        generator (synthetic settings, else None), load_seconds and the ``leakage`` report.
    """
    start = time.perf_counter()
    kind = source_kind(cfg)
    table = load_table(cfg)
    meta = {"source": kind, "data_path": cfg.data_path, "thermal_source": thermal_source(kind, cfg),
            "config": dataclasses.asdict(cfg), "notes": list(table.attrs.get("notes", [])),
            "generator": table.attrs.get("generator")}
    data = make_prepared(split_by_experiment(table, cfg), cfg.feature_cols, cfg.target_cols,
                         cfg.group_col, cfg.time_col, meta)
    data.meta["leakage"] = leakage = check_leakage(data)
    data.meta["load_seconds"] = time.perf_counter() - start
    if cfg.fail_on_leakage and not leakage["passed"]:
        raise SpinnError("leakage check failed: " + "; ".join(leakage["problems"]))
    return data


def cv_folds(data: PreparedData, n_folds: int, seed: int, val_experiments: int = 2) -> list[PreparedData]:
    """Leave-experiments-out folds over every experiment of all three splits.

    Each experiment is the "test" of exactly one fold; "val" (for early stopping) is a
    seeded draw of ``val_experiments`` from the rest; each fold's scaler sees its train only.
    """
    table = pd.concat([data.frames[s] for s in SPLITS if s in data.frames], ignore_index=True)
    g = data.group_col
    meta = {k: v for k, v in data.meta.items() if k != "leakage"}
    return [
        make_prepared({s: table[table[g].isin(members[s])].reset_index(drop=True) for s in SPLITS},
                      data.feature_names, data.target_names, g, data.time_col,
                      {**meta, "fold": k, "n_folds": n_folds, "cv_seed": seed})
        for k, members in enumerate(fold_groups(table, g, n_folds, seed, val_experiments))
    ]


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
        "group_col": data.group_col, "time_col": data.time_col, "splits": list(data.frames),
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
        absent = [c for c in (*info["feature_names"], *info["target_names"]) if c not in frame]
        if absent:
            raise SpinnError(f"{directory / (s + '.csv')} lacks column(s) {absent}")
    return PreparedData(frames, list(info["feature_names"]), list(info["target_names"]), scaler,
                        info["group_col"], info["time_col"], info.get("meta", {}))


def split_table(data: PreparedData) -> pd.DataFrame:
    """One line per split: experiments, rows and target ranges (for display)."""
    rows = []
    for split, frame in data.frames.items():
        row = {"split": split, "experiments": sorted(frame[data.group_col].unique().tolist()),
               "n_experiments": frame[data.group_col].nunique(), "rows": len(frame)}
        for t in data.target_names:
            row[f"{t} range"] = f"{frame[t].min():.3g} .. {frame[t].max():.3g}"
        rows.append(row)
    return pd.DataFrame(rows)


def data_summary(data: PreparedData, leakage: dict) -> dict:
    """The ``data_summary.json`` contract (results/README.md) plus provenance."""
    table = pd.concat(list(data.frames.values()), ignore_index=True)
    return {
        "source": data.meta.get("source", "unknown"),
        "data_path": data.meta.get("data_path", ""),
        "thermal_source": data.meta.get("thermal_source", ""),
        "n_rows": int(len(table)),
        "n_experiments": int(table[data.group_col].nunique()),
        "feature_names": list(data.feature_names),
        "target_names": list(data.target_names),
        "group_col": data.group_col,
        "time_col": data.time_col,
        "splits": {s: {"experiments": sorted(f[data.group_col].unique().tolist()), "rows": int(len(f))}
                   for s, f in data.frames.items()},
        "target_stats": {t: {"mean": float(table[t].mean()), "std": float(table[t].std()),
                             "min": float(table[t].min()), "max": float(table[t].max())}
                         for t in data.target_names},
        "leakage": leakage,
        "notes": data.meta.get("notes", []),
        "load_seconds": data.meta.get("load_seconds"),
        "config": data.meta.get("config", {}),
        "generator": data.meta.get("generator"),
        "environment": environment_info(),
    }
