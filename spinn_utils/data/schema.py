"""The table every data source ends as (column names, targets, splits; docs/data.md) and
``DataConfig``, its description: the source and its columns, read from a data description file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, Strict, StrictBool, TypeAdapter, ValidationError, model_validator

from ..core.errors import SpinnError, first_line
from ..core.overrides import Count, StageConfig, build_config

TARGETS = ("tool_wear_vb_mm", "thermal_displacement_um")
GROUP_COL = "experiment"  # split key: a case / insert set
RUN_COL = "run"
TIME_COL = "cut_time_min"  # cumulative cutting time within the experiment (an input, too)
# Not inputs: added to every prepared split by data/time_order.py, in time order (experiment, run, time).
CUM_TIME_COL = "cumulative_time_min"  # cutting time since the experiment's start, strictly increasing
RUN_START_COL = "run_start"  # 1 on the first window of each run (and of each experiment), else 0
WEAR_DROP_TOL_MM = 1e-3  # a wear step below this is noise: a tenth of the 0.01 mm VB resolution
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
UNITS = ("mm", "um", "min", "s", "kw", "w", "a", "v", "c", "k", "hz")  # name suffixes read as units


def target_unit(name: str) -> str:
    """The unit a column name ends with ("tool_wear_vb_mm" -> "mm"), or "" when it names none."""
    suffix = name.rsplit("_", 1)[-1].lower() if "_" in name else ""
    return suffix if suffix in UNITS else ""


POWER_UNITS = ("A", "kW")
Columns = Annotated[tuple[str, ...], Field(min_length=1)]  # one or more column names
Cap = Annotated[int, Strict(), Field(ge=2)]  # a smoke run's cap: a whole number >= 2


class DataConfig(StageConfig):
    data_path: str = ""  # "" = embedded synthetic milling data; *.mat = NASA mill.mat; *.csv = your table
    group_col: str = GROUP_COL  # rows of one experiment are near-duplicates: splits never share one
    time_col: str = TIME_COL  # cutting time (min): orders rows; physics differentiates by it
    # The order of runs within an experiment: rows go in (run, time) order, and a time that
    # restarts in every run is joined into cumulative time. None: "run" for the synthetic data
    # and mill.mat (both have one), none for a CSV; "": none.
    run_col: str | None = None
    # Cutting minutes added between joined runs (idle time is not cutting).
    run_gap_min: Annotated[float, Strict()] = Field(0.0, ge=0, allow_inf_nan=False)
    feature_cols: Columns = DEFAULT_FEATURES  # the 18 inputs of docs/data.md (18 -> ... gives 666,882 params)
    target_cols: Columns = TARGETS  # flank wear VB (mm), thermal displacement (um)
    split_col: str = ""  # CSV column giving each row's split (train/val/test); "" = seeded split
    val_experiments: Count = 2  # early stopping needs unseen experiments; 16 in all is few
    test_experiments: Count = 3  # 3 of 16: room for both materials, 11 left to train on
    seed: int = 42  # fixes the synthetic data and which experiments go to val/test
    window_samples: Count = 250  # samples per window (synthetic and mill.mat): 1 s at 250 Hz
    fail_on_leakage: StrictBool = True  # a failed leakage check stops the run unless you opt out
    # The thermal ODE term turns this input into cutting power: "A" = spindle motor current
    # through the thermal model's sensor constants (2 A idle, 0.5 kW per A), "kW" = power itself.
    power_col: str = "smc_dc_mean"
    power_unit: Literal[POWER_UNITS] = "A"
    # None: on where the data supports it; True: required; False: off.
    thermal_ode: StrictBool | None = None
    # Smoke runs cap the table so the chain takes seconds on any data (None: no cap).
    max_rows_per_experiment: Cap | None = None  # evenly spaced in time within each experiment
    max_experiments: Cap | None = None  # a seeded subset, every split kept

    @model_validator(mode="after")
    def _check_columns(self) -> DataConfig:
        if len(self.target_cols) != len(TARGETS):
            raise ValueError(f"target_cols must name {len(TARGETS)} columns, [wear (mm), thermal "
                             f"displacement (um)] in that order (the model, its physics and the "
                             f"figures are built for both); got {list(self.target_cols)}")
        named = {"group_col": self.group_col, "time_col": self.time_col, "run_col": self.run_col or "",
                 "split_col": self.split_col, "power_col": self.power_col}
        named.update({f"feature_cols[{i}]": c for i, c in enumerate(self.feature_cols)})
        named.update({f"target_cols[{i}]": c for i, c in enumerate(self.target_cols)})
        for key, column in named.items():
            if column in (CUM_TIME_COL, RUN_START_COL):
                raise ValueError(f"{key} is {column!r}, a name the pipeline adds to every split "
                                 f"({CUM_TIME_COL!r}, {RUN_START_COL!r}); rename that column")
        if self.run_col and self.run_col in (self.group_col, self.time_col):
            raise ValueError(f"run_col {self.run_col!r} must differ from group_col and time_col")
        return self

    @classmethod
    def smoke_test(cls) -> DataConfig:
        # 6 windows per run: ~1,000 rows from the 16 synthetic experiments; any other table is
        # capped to about as many rows, so the smoke chain takes as long on it.
        return cls(window_samples=1500, max_rows_per_experiment=64, max_experiments=24)


# ``data_path`` and ``seed`` are the run's, not the data's: they come from --data and --seed.
RESERVED_DATA_KEYS = {"data_path": "--data (or notebook 01's data_path)", "seed": "--seed"}


def read_data_config(path: str | os.PathLike) -> dict:
    """A data description (JSON, or YAML by extension) of DataConfig fields naming the columns
    once (``data.example`` writes one). An unknown key, a missing or unparsable file, a key given
    elsewhere (``data_path``: ``--data``) or a value its DataConfig field refuses is a one-line
    SpinnError naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SpinnError(f"data config not found: {path}")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            loaded = yaml.safe_load(path.read_text())
        elif path.suffix.lower() == ".json":
            loaded = json.loads(path.read_text())
        else:
            raise SpinnError(f"data config must be .json, .yaml or .yml, got {path.name}")
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise SpinnError(f"data config {path} does not parse: {first_line(err)}") from err
    if not isinstance(loaded, dict):
        raise SpinnError(f"data config {path} must hold a mapping of DataConfig fields")
    for key in loaded:
        if key in RESERVED_DATA_KEYS:
            raise SpinnError(f"data config {path}: {key!r} is not a column description; give it with "
                             f"{RESERVED_DATA_KEYS[key]}")
    known = [k for k in DataConfig.model_fields if k not in RESERVED_DATA_KEYS]
    unknown = sorted(str(k) for k in set(loaded) - set(known))
    if unknown:
        raise SpinnError(f"data config {path}: unknown key(s) {unknown}; known: {known}")
    for key, value in loaded.items():
        field = DataConfig.model_fields[key]
        try:
            TypeAdapter(Annotated[field.annotation, field]).validate_python(value)
        except ValidationError as err:
            first = err.errors()[0]
            where, msg = "".join(f"[{p}]" for p in first["loc"]), first["msg"]
            raise SpinnError(f"data config {path}: {key}{where}: {msg[0].lower()}{msg[1:]}, "
                             f"got {value!r}") from None
    return loaded


def data_config_for(smoke: bool, data_config: str = "", **knobs) -> DataConfig:
    """The run's DataConfig: defaults (full or smoke) < the data description file < ``knobs``
    (notebook 01's parameters; None: not given)."""
    described = read_data_config(data_config) if data_config else {}
    return build_config(DataConfig, smoke, **{**described, **{k: v for k, v in knobs.items() if v is not None}})
