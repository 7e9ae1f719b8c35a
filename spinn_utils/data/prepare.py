"""Notebook 01: where the table comes from (the synthetic generator, NASA ``mill.mat`` or a
user's CSV) and ``validate_table``; ``physics_support`` (which physics-loss terms the data
supports, recorded for notebook 02's ``physics_config_for``); ``prepare`` (load, validate, split by
experiment, scale, check for leakage), ``cv_folds`` and ``data_summary``
(``metrics/data_summary.json``). Rules: docs/data.md.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.env import environment_info
from ..core.errors import SpinnError, first_line
from ..core.overrides import with_overrides
from ..core.results_schema import DataSummary
from .dataset import PreparedData, make_prepared
from .leakage import check_leakage
from .nasa import read_mill_mat
from .schema import RUN_START_COL, SPLITS, DataConfig
from .splits import fold_groups, split_groups
from .synthetic import SyntheticConfig, generate_milling
from .time_order import (
    AS_GIVEN,
    default_run_col,
    in_time_order,
    mark_run_starts,
    order_in_time,
    time_order_summary,
    wear_falls_note,
)

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


def _split_frames(table: pd.DataFrame, group_col: str, members: dict) -> dict[str, pd.DataFrame]:
    """The rows of each split's experiments (``members``: split -> experiments)."""
    return {s: table[table[group_col].isin(members[s])].reset_index(drop=True) for s in SPLITS}


def cap_rows(table: pd.DataFrame, cfg: DataConfig) -> tuple[pd.DataFrame, list[str]]:
    """``cfg.max_experiments`` experiments (seeded, every split kept) and at most
    ``cfg.max_rows_per_experiment`` rows each, evenly spaced in time; with notes saying so.
    Cumulative time stays as loaded; run starts are marked again among the kept rows."""
    notes, g = [], cfg.group_col
    groups = pd.unique(table[g])
    if cfg.max_experiments and len(groups) > cfg.max_experiments:
        rng = np.random.default_rng(cfg.seed)
        by_split = (table.groupby(cfg.split_col)[g].unique() if cfg.split_col
                    else pd.Series({"all": groups}))
        share = cfg.max_experiments / len(groups)
        keep = [e for members in by_split for e in
                rng.permutation(members)[:max(1, round(share * len(members)))]]
        table = table[table[g].isin(keep)]
        notes.append(f"smoke: {len(keep)} of {len(groups)} experiments kept (seeded)")
    cap = cfg.max_rows_per_experiment
    if cap and table.groupby(g).size().max() > cap:
        keep = []  # the table is sorted by group and time, so positions are in time order
        for _, part in table.groupby(g, sort=False):
            keep += list(part.index[np.unique(np.linspace(0, len(part) - 1, min(cap, len(part))).round().astype(int))])
        notes.append(f"smoke: at most {cap} rows per experiment, evenly spaced in time "
                     f"({len(keep)} of {len(table)} rows)")
        table = table.loc[sorted(keep)]
    table = table.reset_index(drop=True)
    if notes:
        table[RUN_START_COL] = mark_run_starts(table, g, cfg.run_col or "")
    return table, notes


def prepare(cfg: DataConfig) -> PreparedData:
    """Load, validate, split by experiment, fit the scaler on train, check for leakage (a failure
    raises unless ``cfg.fail_on_leakage`` is false). ``meta`` records source, data_path,
    thermal_source, config, notes, generator, physics, time_order, leakage and load_seconds."""
    start = time.perf_counter()
    notes = []
    if cfg.time_col not in cfg.feature_cols:  # the physics differentiates by it: it must be an input
        cfg = with_overrides(cfg, feature_cols=(*cfg.feature_cols, cfg.time_col))
        notes.append(f"time column {cfg.time_col!r} added to the inputs (feature_cols omitted it)")
    kind = source_kind(cfg)
    cfg = with_overrides(cfg, run_col=default_run_col(cfg, kind))  # the config records the run order used
    physics = physics_support(cfg, kind)  # before loading: a term the data cannot have fails fast
    loaded = load_table(cfg)
    attrs = dict(loaded.attrs)  # loader notes and generator settings
    table, capped = cap_rows(loaded, cfg)
    meta = {"source": kind, "data_path": cfg.data_path, "thermal_source": thermal_source(kind, cfg),
            "config": cfg.model_dump(), "notes": [*notes, *attrs.get("notes", []), *capped],
            "generator": attrs.get("generator"), "physics": physics, "time_order": attrs["time_order"]}
    if attrs["time_order"]["cumulative_time"] == AS_GIVEN and cfg.run_col and cfg.run_gap_min:
        meta["notes"].append(f"run_gap_min ({cfg.run_gap_min:g}) not added: {cfg.time_col!r} is already "
                             f"cumulative across the runs")
    members = split_groups(table, cfg.group_col, cfg.val_experiments, cfg.test_experiments,
                           cfg.seed, cfg.split_col)
    data = make_prepared(_split_frames(table, cfg.group_col, members), cfg.feature_cols,
                         cfg.target_cols, cfg.group_col, cfg.time_col, meta, cfg.run_col)
    # Lags are checked on the table as loaded: the smoke cap keeps every k-th row.
    data.meta["leakage"] = leakage = check_leakage(data, loaded if capped else None)
    falls = wear_falls_note(time_order_summary(data.frames, meta["time_order"], cfg.group_col, cfg.time_col,
                                               cfg.target_cols[0]))
    data.meta["notes"] += [falls] if falls else []
    data.meta["load_seconds"] = time.perf_counter() - start
    if cfg.fail_on_leakage and not leakage["passed"]:
        raise SpinnError("leakage check failed: " + "; ".join(leakage["problems"]))
    return data


def cv_folds(data: PreparedData, n_folds: int, seed: int, val_experiments: int = 2) -> list[PreparedData]:
    """Leave-experiments-out folds over every experiment: each experiment is the "test" of one fold,
    "val" a seeded draw from the rest, each fold's scaler fitted on its train."""
    table = pd.concat([data.frames[s] for s in SPLITS if s in data.frames], ignore_index=True)
    g = data.group_col
    table = in_time_order(table, g, data.run_col, data.time_col).reset_index(drop=True)
    meta = {k: v for k, v in data.meta.items() if k != "leakage"}
    return [
        make_prepared(_split_frames(table, g, members), data.feature_names, data.target_names, g,
                      data.time_col, {**meta, "fold": k, "n_folds": n_folds, "cv_seed": seed},
                      data.run_col)
        for k, members in enumerate(fold_groups(table, g, n_folds, seed, val_experiments))
    ]


def data_summary(data: PreparedData) -> DataSummary:
    """The ``data_summary.json`` record (``core.results_schema.DataSummary``) plus provenance."""
    table = pd.concat(list(data.frames.values()), ignore_index=True)
    return DataSummary(
        source=data.meta.get("source", "unknown"),
        data_path=data.meta.get("data_path", ""),
        thermal_source=data.meta.get("thermal_source", ""),
        n_rows=int(len(table)),
        n_experiments=int(table[data.group_col].nunique()),
        feature_names=list(data.feature_names),
        target_names=list(data.target_names),
        group_col=data.group_col,
        time_col=data.time_col,
        splits={s: {"experiments": sorted(f[data.group_col].unique().tolist()), "rows": int(len(f))}
                for s, f in data.frames.items()},
        target_stats={t: table[t].agg(["mean", "std", "min", "max"]).to_dict()
                      for t in data.target_names},
        leakage=data.leakage,
        time_order=time_order_summary(data.frames, data.meta.get("time_order", {}), data.group_col,
                                      data.time_col, data.target_names[0]),
        physics=data.physics,
        notes=data.meta.get("notes", []),
        load_seconds=data.meta.get("load_seconds"),
        config=data.meta.get("config", {}),
        generator=data.meta.get("generator"),
        environment=environment_info(),
    )
