"""The leakage check: four ways test experiments could leak into training, each able to fail.

An earlier version of this pipeline scored well on test data because a target had been
copied into an input (``thermal_displacement`` was an exact multiple of the input
``cumulative_heat``). Four checks (docs/data.md, "Splits and leakage"):

1. group overlap: an experiment's rows are near-duplicates, so no experiment may sit in
   two splits;
2. identifiers as inputs: the group column, names like id/case/experiment/index, or an
   integer column unique per row (a row number) let a model memorise rows;
3. targets as inputs: an input equal to, or (nearly) a deterministic function of, a target
   (|Pearson| or |Spearman| > 0.99, or a constant ratio);
4. scaler: statistics must come from the training split only (stored means = train means).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..core.checks import check_problems
from .prepared import PreparedData

CORR_LIMIT = 0.99  # |corr| above this makes an input a stand-in for a target
RATIO_RTOL = 1e-6  # relative spread below which target / input counts as a constant
ID_TOKENS = {"id", "ids", "case", "experiment", "exp", "idx", "uuid", "key", "serial"}
ID_NAMES = {"index", "row", "row_index", "row_number", "rownum", "unnamed: 0", "level_0"}
MIN_ROWS_FOR_ROW_ID = 20  # below this, "unique per row" says little


def group_overlap(data: PreparedData) -> dict:
    """No group (experiment) may appear in two splits."""
    groups = {s: set(f[data.group_col].unique()) for s, f in data.frames.items()}
    names = sorted(groups)
    problems = [
        f"experiment(s) {sorted(groups[a] & groups[b])} are in both {a!r} and {b!r}"
        for i, a in enumerate(names) for b in names[i + 1:] if groups[a] & groups[b]
    ]
    sizes = ", ".join(f"{s}: {len(groups[s])}" for s in names)
    return check_problems("group_overlap", problems, f"experiments per split are disjoint ({sizes})")


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


def check_leakage(data: PreparedData) -> dict:
    """Run every check on prepared data.

    Args:
        data: a ``data.PreparedData`` (splits, feature/target names, the scaler).

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
    ]
    problems = [c["detail"] for c in checks if not c["passed"]]
    return {"passed": not problems, "problems": problems, "checks": checks}
