"""Where the table comes from (the synthetic generator, NASA ``mill.mat`` or a user's CSV), and
``validate_table``: columns present, numeric and finite, groups named, rows in time order.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import SpinnError, first_line
from ..core.overrides import with_overrides
from .nasa import read_mill_mat
from .schema import DataConfig
from .synthetic import SyntheticConfig, generate_milling
from .time_order import default_run_col, order_in_time

MAX_ABS_VALUE = 1e12  # beyond this a value is a unit or parsing error, and float32 scaling breaks
MIN_ROWS_PER_EXPERIMENT = 2  # one row has no time order: no wear trend, no thermal history


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
    """The validated table of ``cfg.data_path`` (or the synthetic data), one row per window in time
    order with ``CUM_TIME_COL`` and ``RUN_START_COL``; ``attrs`` hold the loader's ``notes``, the
    synthetic ``generator`` settings and how the rows were put in ``time_order``."""
    kind = source_kind(cfg)
    cfg = with_overrides(cfg, run_col=default_run_col(cfg, kind))
    if kind == "synthetic":
        generator = SyntheticConfig(seed=cfg.seed, window_samples=cfg.window_samples)
        table = generate_milling(generator)
        table.attrs["generator"] = generator.model_dump()
    else:
        path = Path(cfg.data_path).expanduser()
        if not path.is_file():
            raise SpinnError(f"data file not found: {path}")
        table = read_mill_mat(path, cfg.window_samples) if kind == "nasa_mat" else read_csv_strict(path)
    return validate_table(table, cfg)


def read_csv_strict(path: Path) -> pd.DataFrame:
    """A CSV with a header and rows, or one-line SpinnError (empty, unparsable, a column named
    twice: pandas would silently rename the second ``x.1``)."""
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise SpinnError(f"CSV file is empty: {path}") from err
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as err:
        raise SpinnError(f"cannot parse CSV {path}: {first_line(err)}") from err
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise SpinnError(f"{path} names column(s) {duplicated} more than once")
    if table.empty:
        raise SpinnError(f"CSV file has a header but no rows: {path}")
    return table


def validate_table(table: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    """Columns present, numeric and finite; returns a copy in time order (``cfg.run_col`` None:
    no run column; ``load_table`` resolves the source's own)."""
    if table.empty:
        raise SpinnError("the data table has no rows")
    if len(set(cfg.feature_cols)) != len(cfg.feature_cols):
        raise SpinnError(f"feature_cols names a column twice: {list(cfg.feature_cols)}")
    run_col = cfg.run_col or ""
    required = [cfg.group_col, cfg.time_col, run_col, *cfg.feature_cols, *cfg.target_cols,
                cfg.split_col]
    missing = [c for c in dict.fromkeys(required) if c and c not in table.columns]
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
    finite = np.isfinite(table[numeric])
    rows, cols = np.nonzero((finite & (table[numeric].abs() > MAX_ABS_VALUE)).to_numpy())
    if len(rows):
        row, col = table.index[rows[0]], numeric[cols[0]]
        raise SpinnError(f"column {col!r} has {table.at[row, col]:g} in row {row}: beyond "
                         f"+-{MAX_ABS_VALUE:g}, it cannot be standardised in float32 (a unit or parsing error?)")
    not_finite = {c: int(n) for c, n in (~finite).sum().items() if n}
    if not_finite:
        raise SpinnError(f"NaN or inf values (column: rows) {not_finite}; fill or drop them first")
    if table[cfg.group_col].isna().any():
        raise SpinnError(f"group column {cfg.group_col!r} has {int(table[cfg.group_col].isna().sum())} empty value(s)")
    for col in cfg.target_cols:
        if table[col].nunique() < 2:
            raise SpinnError(f"target {col!r} is constant ({table[col].iloc[0]:g} in every row): there is "
                             "nothing to learn; check the column (is it the right one?)")
    per_group = table.groupby(cfg.group_col).size()
    few = per_group[per_group < MIN_ROWS_PER_EXPERIMENT]
    if len(few):
        raise SpinnError(f"{len(few)} experiment(s) (e.g. {few.index.tolist()[0]!r}) have only {int(few.min())} row(s); "
                         f"each needs at least {MIN_ROWS_PER_EXPERIMENT} windows in time order")
    if run_col and table[run_col].isna().any():
        raise SpinnError(f"run column {run_col!r} has {int(table[run_col].isna().sum())} empty value(s)")
    table, order = order_in_time(table, cfg, run_col)
    table.attrs.update(attrs)
    table.attrs["time_order"] = order
    return table


def thermal_source(kind: str, cfg: DataConfig) -> str:
    """Where the thermal target comes from, in words (the report must say it)."""
    return {
        "synthetic": "simulated: thermal.ThermalModel driven by the synthetic cutting power",
        "nasa_mat": "derived: thermal.ThermalModel driven by process power and VB "
                    "(mill.mat has no thermal measurement)",
    }.get(kind, f"measured: as given in the CSV (targets {list(cfg.target_cols)})")
