"""Time order within an experiment: (experiment, run, time) with a run column, else
(experiment, time); a time that restarts is refused without a run column and joined into
cumulative cutting time with one. The rules: docs/data.md, "Time order and runs".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import SpinnError
from .schema import CUM_TIME_COL, RUN_COL, RUN_START_COL, WEAR_DROP_TOL_MM, DataConfig

AS_GIVEN, RUNS_JOINED = "as_given", "runs_joined"  # how cumulative time was built
# Above this share of falling steps the measured wear is noted as out of time order: interleaved
# runs fall about half the time (0.50 on the example with its time restarting and rows shuffled),
# the embedded data and the example never; measurement noise alone stays well below.
WEAR_FALLS_NOTE_SHARE = 0.25


def default_run_col(cfg: DataConfig, kind: str) -> str:
    """``cfg.run_col``, or where it is None the source's own: "run" (synthetic, mill.mat), none (CSV)."""
    if cfg.run_col is not None:
        return cfg.run_col
    return RUN_COL if kind in ("synthetic", "nasa_mat") else ""


def in_time_order(frame: pd.DataFrame, group_col: str, run_col: str, time_col: str) -> pd.DataFrame:
    """``frame`` sorted in time order within each experiment (stable: the index is kept), by
    cumulative time where the frame has it."""
    if CUM_TIME_COL in frame:
        keys = [group_col, CUM_TIME_COL]
    else:
        keys = [group_col, *([run_col] if run_col and run_col in frame else []), time_col]
    try:
        return frame.sort_values(keys, kind="stable")
    except TypeError as err:
        raise SpinnError(f"group column {group_col!r} mixes value types (e.g. numbers and text)") from err


def mark_run_starts(frame: pd.DataFrame, group_col: str, run_col: str) -> np.ndarray:
    """1 where a row (in time order) opens its experiment or its run, else 0: a row whose run
    differs from the previous row's, so a subset of rows (the smoke cap) keeps every run's start."""
    keys = frame[[group_col, *([run_col] if run_col else [])]]
    return (keys != keys.shift()).any(axis=1).to_numpy(np.int64)


def _plain(value):
    """A numpy scalar as the Python value it holds (messages show 3, not np.int64(3))."""
    return value.item() if isinstance(value, np.generic) else value


def _refuse_ties(table: pd.DataFrame, cfg: DataConfig, run_col: str) -> None:
    """A time repeated within an experiment (or within a run, when the runs are known) is refused."""
    keys = [cfg.group_col, *([run_col] if run_col else [])]
    counts = table.groupby([*keys, cfg.time_col], sort=False).size()
    repeated = counts[counts > 1]
    if repeated.empty:
        return
    t = cfg.time_col
    if run_col:
        (group, run, value), n = map(_plain, repeated.index[0]), int(repeated.iloc[0])
        raise SpinnError(f"time column {t!r} repeats within run {run!r} of experiment {group!r} "
                         f"({value:g} occurs {n} times; {len(repeated)} repeated value(s) in all): each "
                         f"window of a run needs its own time")
    worst = repeated.groupby(level=0, sort=False).max()  # restarts per experiment: most repeats of one time
    group, n = worst.idxmax(), int(worst.max())
    value = repeated.loc[group].idxmax()
    how = f"it restarts (or repeats) {n - 1} time(s) ({value:g} occurs {n} times)"
    _refuse_restarts(t, _plain(group), how, len(worst))


def _refuse_restarts(time_col: str, group, how: str, n_experiments: int) -> None:
    others = f" (and in {n_experiments - 1} other experiment(s))" if n_experiments > 1 else ""
    raise SpinnError(f"time column {time_col!r} is not strictly increasing within experiment {group!r}: {how}"
                     f"{others}; if time counts from 0 in each run, name the run column in the data config "
                     f"(\"run_col\": \"<column>\", docs/data.md) so time order is (run, time)")


def _refuse_file_order_restarts(table: pd.DataFrame, group_col: str, time_col: str) -> None:
    """Without a run column: refuse a time that, in the file's row order, drops back within an
    experiment whose rows are otherwise in time order (a restart with no repeated value, e.g.
    jittered time stamps). Fewer drops than a quarter of the rows tells restarts from rows in
    no particular order (about half the steps of a shuffled table drop), which sorting fixes."""
    previous = table.groupby(group_col, sort=False)[time_col].shift()
    drops = table[time_col] < previous
    per_group = drops.groupby(table[group_col], sort=False).sum()
    size = table.groupby(group_col, sort=False).size()
    restarting = per_group[(per_group > 0) & (per_group < size / 4)]
    if restarting.empty:
        return
    group = restarting.idxmax()
    row = drops.index[drops & (table[group_col] == group)][0]
    how = (f"in file order it restarts {int(restarting.max())} time(s) (row {row}: "
           f"{table.at[row, time_col]:g} after {previous[row]:g})")
    _refuse_restarts(time_col, _plain(group), how, len(restarting))


def cumulative_time(table: pd.DataFrame, group_col: str, run_col: str, time_col: str,
                    gap_min: float) -> tuple[np.ndarray, str]:
    """Cumulative cutting time of ``table`` (in time order) and how it was built: time as given
    where it already increases across the runs of every experiment, else the runs joined, each
    run's first window one window step (the median within runs) plus ``gap_min`` after the last."""
    time = table[time_col].to_numpy(np.float64)
    groups = table[group_col].to_numpy()
    same_group = groups[1:] == groups[:-1]
    if not run_col or (np.diff(time)[same_group] > 0).all():
        return time, AS_GIVEN
    run_key = [group_col, run_col]
    runs = table.groupby(run_key, sort=False)[time_col].agg(["first", "last"])
    within = pd.Series(np.diff(time, prepend=np.nan), index=table.index)
    within[mark_run_starts(table, group_col, run_col).astype(bool)] = np.nan
    step = within[within > 0].groupby(table[group_col], sort=False).median()
    run_groups = runs.index.get_level_values(0)
    span = runs["last"] - runs["first"] + step.reindex(run_groups).fillna(0.0).to_numpy() + gap_min
    by_group = span.groupby(level=0, sort=False)
    start = by_group.cumsum() - span + runs["first"].groupby(level=0, sort=False).transform("first")
    offset = (start - runs["first"]).rename("offset")
    rows = table[run_key].merge(offset.reset_index(), on=run_key, how="left")["offset"].to_numpy()
    return time + rows, RUNS_JOINED


def order_in_time(table: pd.DataFrame, cfg: DataConfig, run_col: str) -> tuple[pd.DataFrame, dict]:
    """``table`` sorted in time order with ``CUM_TIME_COL`` and ``RUN_START_COL``, and how; a
    SpinnError for a repeated time, a run column not numeric or runs that cannot be joined."""
    g, t = cfg.group_col, cfg.time_col
    if run_col:
        runs = pd.to_numeric(table[run_col], errors="coerce")
        bad = table[run_col][runs.isna()]
        if len(bad):
            raise SpinnError(f"run column {run_col!r} must hold a number per row (the run order); found "
                             f"{bad.iloc[0]!r} in row {bad.index[0]}")
        table = table.assign(**{run_col: runs})
    if not run_col:
        _refuse_file_order_restarts(table, g, t)
    table = in_time_order(table.drop(columns=[CUM_TIME_COL, RUN_START_COL], errors="ignore"),
                          g, run_col, t).reset_index(drop=True)
    _refuse_ties(table, cfg, run_col)
    cum, how = cumulative_time(table, g, run_col, t, cfg.run_gap_min)
    same_group = table[g].to_numpy()[1:] == table[g].to_numpy()[:-1]
    if not (np.diff(cum)[same_group] > 0).all():
        raise SpinnError(f"cannot join the runs of {run_col!r} into increasing cutting time (every run one "
                         f"window and run_gap_min 0?); give run_gap_min > 0 or a cumulative {t!r}")
    table[CUM_TIME_COL] = cum
    table[RUN_START_COL] = mark_run_starts(table, g, run_col)
    keys = [g, *([run_col] if run_col else []), t]
    if how == AS_GIVEN:
        rule = (f"{t!r} as given: it already increases within every experiment"
                + (f" across the runs of {run_col!r}" if run_col else ""))
    else:
        rule = (f"{t!r} restarts in the runs of {run_col!r}: runs joined in run order, each run's first "
                f"window one window step (the experiment's median step within runs) plus run_gap_min "
                f"({cfg.run_gap_min:g} min) after the previous run's last window")
    return table, {"order": keys, "run_col": run_col, "run_gap_min": cfg.run_gap_min,
                   "cumulative_time_col": CUM_TIME_COL, "cumulative_time": how, "cumulative_time_rule": rule}


def ensure_time_columns(frame: pd.DataFrame, group_col: str, run_col: str, time_col: str) -> pd.DataFrame:
    """``frame`` in time order with both time-order columns (computed, gap 0, where it lacks them)."""
    if CUM_TIME_COL in frame and RUN_START_COL in frame:
        return frame
    run_col = run_col if run_col in frame else ""
    frame = in_time_order(frame, group_col, run_col, time_col).reset_index(drop=True)
    cum, _ = cumulative_time(frame, group_col, run_col, time_col, 0.0)
    return frame.assign(**{CUM_TIME_COL: cum, RUN_START_COL: mark_run_starts(frame, group_col, run_col)})


def step_falls(values: np.ndarray, frame: pd.DataFrame, group_col: str, run_col: str, time_col: str,
               tol: float = WEAR_DROP_TOL_MM) -> tuple[int, int]:
    """(falls, steps): consecutive rows of one experiment, in time order, where ``values`` drops by > ``tol``."""
    keyed = frame.reset_index(drop=True).assign(_value=np.asarray(values, dtype=np.float64))
    ordered = in_time_order(keyed, group_col, run_col, time_col)
    steps = ordered.groupby(group_col, sort=False)["_value"].diff().dropna().to_numpy()
    return int((steps < -tol).sum()), int(steps.size)


def time_order_summary(frames: dict[str, pd.DataFrame], order: dict, group_col: str, time_col: str,
                       wear_target: str) -> dict:
    """The data summary's time-order block: ``order`` (from ``order_in_time``), runs per
    experiment and how often the measured wear falls between consecutive windows."""
    table = pd.concat(list(frames.values()), ignore_index=True)
    run_col = order.get("run_col", "")
    runs = table.groupby(group_col, sort=True)[RUN_START_COL].sum()
    falls = {}
    for split, frame in [*frames.items(), ("all", table)]:
        n_fall, n_steps = step_falls(frame[wear_target].to_numpy(), frame, group_col, run_col, time_col)
        falls[split] = {"steps": n_steps, "falls": n_fall, "share": n_fall / n_steps if n_steps else None}
    return {**order, "runs_per_experiment": {str(k): int(v) for k, v in runs.items()},
            "measured_wear_falls": falls, "wear_target": wear_target, "wear_drop_tol_mm": WEAR_DROP_TOL_MM}


def wear_falls_note(summary: dict) -> str | None:
    """A note when the measured wear falls often in time order (the order is likely wrong), else None."""
    share = summary["measured_wear_falls"]["all"]["share"]
    if share is None or share <= WEAR_FALLS_NOTE_SHARE:
        return None
    return (f"measured {summary['wear_target']!r} falls in {share:.0%} of steps in time order (wear never "
            f"heals): is the order right? A time that restarts in every run needs run_col (docs/data.md)")
