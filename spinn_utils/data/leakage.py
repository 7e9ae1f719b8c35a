"""The leakage check: ten ways test experiments or targets could leak into the inputs, each able to fail.

A target copied into an input (say ``thermal_displacement`` an exact multiple of an input
``cumulative_heat``) scores well on any test split. The checks (docs/data.md, "Splits and
leakage"), in four groups:

the splits and the scaler

1. group overlap: an experiment's rows are near-duplicates, so no experiment may sit in
   two splits;
2. scaler: statistics must come from the training split only (stored means = train means);

a target or an identifier in one input

3. identifiers as inputs: the group column, names like id/case/experiment/index, or an
   integer column unique per row (a row number) let a model memorise rows;
4. targets as inputs: an input equal to, or (nearly) a deterministic function of, a target
   (|Pearson| or |Spearman| > 0.99, or a constant ratio);
5. an input that is a non-monotonic function of a target (say ``(thermal - mean)^2``): sorted
   by the target, each row's input is predicted by its neighbour's; a nearest-neighbour R2
   above ``NN_R2_LIMIT`` means the input is (nearly) determined by the target;
6. an input equal to a target shifted by 1-3 rows back or forward within an experiment (the
   previous or next window's value): |Pearson| above ``CORR_LIMIT`` against the shifted
   target, on the table as loaded (before a smoke run thins it, which breaks adjacency);

a target spread over several inputs (``leakage_combos.py``)

7. linear from two inputs (``A = wear + N``, ``B = N``): train R2 above ``LINEAR_R2_LIMIT``;
8. through a product or a ratio of two inputs, or linearly from three: R2 above
   ``COMBO_R2_LIMIT`` in every split;
9. a ratio, difference or product of two inputs that is a monotone function of a target
   (``A = thermal^2 x N``, ``B = N``): |Spearman| above ``PAIR_RANK_LIMIT`` on all rows; the
   detail records the highest value found, so the data summary shows the margin on honest data;

a target copied into one split only

10. an input whose |Pearson| with a target within one split exceeds ``SPLIT_CORR_LIMIT``
   (stricter than 4's 0.99: two experiments can honestly track wear closely, not to four
   nines), or a constant ratio, in any split.

On the embedded data the largest values are 0.56 (nearest-neighbour R2; 0.82 on the smoke
table), 0.83 (shifted |Pearson|), 0.82 (two-input R2; 0.996 on the smoke table) and 0.96 (pair
|Spearman|; 0.984 on the smoke table); the largest of checks 8 and 9 are in
``tests/test_leakage.py``'s honest-data test. ``check_leakage`` runs them all.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..core.checks import check_problems
from .dataset import PreparedData
from .leakage_combos import input_combinations, linear_combinations, pair_ranks
from .splits import shared_groups

CORR_LIMIT = 0.99  # |corr| above this makes an input a stand-in for a target
RATIO_RTOL = 1e-6  # relative spread below which target / input counts as a constant
ID_TOKENS = {"id", "ids", "case", "experiment", "exp", "idx", "uuid", "key", "serial"}
ID_NAMES = {"index", "row", "row_index", "row_number", "rownum", "unnamed: 0", "level_0"}
MIN_ROWS_FOR_ROW_ID = 20  # below this, "unique per row" says little
NN_R2_LIMIT = 0.95  # (thermal - mean)^2 scores 0.9996 on the default data, 0.99 on the smoke table
MAX_SHIFT = 3  # rows: the previous or next windows' targets copied into an input
SPLIT_CORR_LIMIT = 0.9999  # an affine copy of a target within one split


def group_overlap(data: PreparedData) -> dict:
    """No group (experiment) may appear in two splits."""
    sizes = ", ".join(f"{s}: {f[data.group_col].nunique()}" for s, f in sorted(data.frames.items()))
    return check_problems("group_overlap", shared_groups(data.frames, data.group_col),
                          f"experiments per split are disjoint ({sizes})")


def _looks_like_id(name: str) -> bool:
    """``experiment_id``, ``caseID``, ``index``: yes; ``run_index``, ``fluid_temp``: no."""
    words = {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)}
    return name.strip().lower() in ID_NAMES or bool(words & ID_TOKENS)


def identifier_inputs(data: PreparedData, table: pd.DataFrame) -> dict:
    """The group column, id-like names, or integer columns unique per row must not be inputs."""
    problems = []
    for col in data.feature_names:
        if col == data.group_col:
            problems.append(f"the group column {col!r} is an input")
        elif _looks_like_id(col):
            problems.append(f"input {col!r} is named like an identifier (id/case/experiment/index)")
        else:
            values = table[col].to_numpy(np.float64)
            integer = np.all(np.isfinite(values)) and np.all(values == np.round(values))
            if integer and len(values) >= MIN_ROWS_FOR_ROW_ID and len(np.unique(values)) == len(values):
                problems.append(f"input {col!r} is an integer unique to every row (a row id)")
    return check_problems("identifier_inputs", problems, "no identifier among the inputs")


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank(method="average").to_numpy()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def target_inputs(data: PreparedData, table: pd.DataFrame) -> dict:
    """No input may be a target or (nearly) a deterministic function of one."""
    problems = []
    for target in data.target_names:
        y = table[target].to_numpy(np.float64)
        for col in data.feature_names:
            if col == target:
                problems.append(f"target {target!r} is also an input")
                continue
            x = table[col].to_numpy(np.float64)
            pearson, spearman = _corr(x, y), _corr(_ranks(x), _ranks(y))
            nonzero = np.abs(x) > 1e-12
            ratio = y[nonzero] / x[nonzero]
            constant_ratio = (
                nonzero.sum() >= 3 and x[nonzero].std() > 0 and abs(ratio.mean()) > 0
                and ratio.std() <= RATIO_RTOL * abs(ratio.mean())
            )
            if constant_ratio:
                problems.append(
                    f"target {target!r} = {ratio.mean():.6g} x input {col!r} (a target copied into an input)"
                )
            elif max(abs(pearson), abs(spearman)) > CORR_LIMIT:
                problems.append(
                    f"input {col!r} is a near-deterministic function of target {target!r} "
                    f"(|Pearson| {abs(pearson):.4f}, |Spearman| {abs(spearman):.4f} > {CORR_LIMIT})"
                )
    return check_problems(
        "target_inputs", problems,
        f"no input equals or tracks a target (|corr| <= {CORR_LIMIT}, no constant ratio)",
    )


def scaler_fitted_on_train(data: PreparedData) -> dict:
    """The scaler's statistics must be those of the training split (and say so)."""
    scaler, train = data.scaler, data.frames.get("train")
    problems = []
    if scaler.fitted_on != "train":
        problems.append(f"scaler says it was fitted on {scaler.fitted_on!r}, not 'train'")
    if list(scaler.feature_names) != list(data.feature_names):
        problems.append("scaler feature names differ from the data's inputs")
    elif list(scaler.target_names) != list(data.target_names):
        problems.append("scaler target names differ from the data's targets")
    elif train is None or train.empty:
        problems.append("there is no training split to compare the scaler with")
    else:
        for label, cols, mean in (
            ("input", data.feature_names, scaler.x_mean), ("target", data.target_names, scaler.y_mean)
        ):
            own = train[list(cols)].to_numpy(np.float64).mean(axis=0)
            scale = np.maximum(np.abs(own), 1.0)
            worst = float(np.max(np.abs(np.asarray(mean) - own) / scale))
            if worst > 1e-9:
                problems.append(f"scaler {label} means differ from the train split's (max rel. diff {worst:.3g})")
    return check_problems("scaler_fitted_on_train", problems, "scaler statistics equal the train split's")


def _nn_r2(key: np.ndarray, value: np.ndarray, rng: np.random.Generator) -> float:
    """R2 of ``value`` predicted by its neighbour's after sorting by ``key`` (ties in random order)."""
    order = np.lexsort((rng.random(len(key)), key))
    v = value[order]
    ss = ((v - v.mean()) ** 2).sum()
    return float(1.0 - ((v - np.r_[v[1], v[:-1]]) ** 2).sum() / ss) if ss > 0 and len(v) > 2 else 0.0


def target_functions(data: PreparedData, table: pd.DataFrame) -> dict:
    """No input may be (nearly) determined by a target, monotonic or not."""
    rng, problems = np.random.default_rng(0), []
    for target in data.target_names:
        y = table[target].to_numpy(np.float64)
        for col in data.feature_names:
            r2 = _nn_r2(y, table[col].to_numpy(np.float64), rng)
            if col != target and r2 > NN_R2_LIMIT:
                problems.append(f"input {col!r} is (nearly) a function of target {target!r}: sorted by the "
                                f"target, neighbours predict it with R2 {r2:.4f} > {NN_R2_LIMIT}")
    return check_problems("target_functions", problems,
                          f"no input is a function of a target (nearest-neighbour R2 <= {NN_R2_LIMIT})")


def shifted_targets(data: PreparedData, table: pd.DataFrame) -> dict:
    """No input may be a target of the previous or next 1-3 windows of the same experiment.

    ``table`` should be the table as loaded, sorted by experiment and time: a smoke run keeps
    every k-th row, after which a one-row lag is no longer one window.
    """
    problems = []
    for target in data.target_names:
        for shift in (s for k in range(1, MAX_SHIFT + 1) for s in (k, -k)):
            moved = table.groupby(data.group_col, sort=False)[target].shift(-shift)
            rows = moved.notna().to_numpy()
            for col in data.feature_names:
                r = _corr(table[col].to_numpy(np.float64)[rows], moved.to_numpy(np.float64)[rows])
                if abs(r) > CORR_LIMIT:
                    when = f"{shift} row(s) later" if shift > 0 else f"{-shift} row(s) earlier"
                    problems.append(f"input {col!r} tracks target {target!r} {when} in the "
                                    f"same experiment (|Pearson| {abs(r):.4f} > {CORR_LIMIT})")
    return check_problems("shifted_targets", problems,
                          f"no input tracks a target 1-{MAX_SHIFT} rows earlier or later (|corr| <= {CORR_LIMIT})")


def split_copies(data: PreparedData) -> dict:
    """No input may copy a target (affinely or as a constant ratio) within any one split."""
    problems = []
    for split, frame in sorted(data.frames.items()):
        for target in data.target_names:
            y = frame[target].to_numpy(np.float64)
            for col in data.feature_names:
                x = frame[col].to_numpy(np.float64)
                r, nonzero = _corr(x, y), np.abs(x) > 1e-12
                ratio = y[nonzero] / x[nonzero]
                constant = (nonzero.sum() >= 3 and x[nonzero].std() > 0 and abs(ratio.mean()) > 0
                            and ratio.std() <= RATIO_RTOL * abs(ratio.mean()))
                if col != target and (abs(r) > SPLIT_CORR_LIMIT or constant):
                    problems.append(f"in the {split} split, input {col!r} copies target {target!r} "
                                    f"(|Pearson| {abs(r):.6f} > {SPLIT_CORR_LIMIT} or a constant ratio)")
    return check_problems("split_copies", problems,
                          f"no input copies a target within any split (|corr| <= {SPLIT_CORR_LIMIT})")


def check_leakage(data: PreparedData, loaded: pd.DataFrame | None = None) -> dict:
    """Run every check on prepared data.

    Args:
        data: a ``data.PreparedData`` (splits, feature/target names, the scaler).
        loaded: the table as loaded, before a smoke run capped it (sorted by experiment and
            time); the lag check runs on it. None: the splits' rows.

    Returns:
        ``{"passed": bool, "problems": [str], "checks": [{"name", "passed", "detail"}]}``;
        ``problems`` holds the detail of every failed check.
    """
    table = pd.concat(list(data.frames.values()), ignore_index=True)
    checks = [
        group_overlap(data),
        identifier_inputs(data, table),
        target_inputs(data, table),
        scaler_fitted_on_train(data),
        target_functions(data, table),
        shifted_targets(data, table if loaded is None else loaded),
        linear_combinations(data),
        input_combinations(data),
        split_copies(data),
        pair_ranks(data, table),
    ]
    problems = [c["detail"] for c in checks if not c["passed"]]
    return {"passed": not problems, "problems": problems, "checks": checks}
