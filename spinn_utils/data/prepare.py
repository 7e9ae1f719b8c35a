"""Notebook 01: ``prepare`` (load, validate, split by experiment, scale, check for leakage),
``cv_folds`` and ``data_summary`` (``metrics/data_summary.json``). Rules: docs/data.md.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..core.env import environment_info
from ..core.errors import SpinnError
from ..core.overrides import with_overrides
from ..core.results_schema import DataSummary
from .dataset import PreparedData, make_prepared
from .leakage import check_leakage
from .physics_terms import physics_support
from .schema import RUN_START_COL, SPLITS, DataConfig
from .sources import load_table, source_kind, thermal_source
from .splits import fold_groups, split_groups
from .time_order import (
    AS_GIVEN,
    default_run_col,
    in_time_order,
    mark_run_starts,
    time_order_summary,
    wear_falls_note,
)


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
