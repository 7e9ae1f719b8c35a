"""Keeping test experiments unseen: seeded choice of split experiments, and the leakage check.

Splits are by experiment, never by row (rows of one experiment are near-duplicates);
``stratified_order`` deals experiments out alternating materials, so a test split or a
cross-validation fold is not all one material when the data allows.

An earlier version of this pipeline scored well on test data because a target had been
copied into an input (``thermal_displacement`` was an exact multiple of the input
``cumulative_heat``). Four checks, each of which can fail (DATA.md, "Splits and leakage"):

1. group overlap: an experiment's rows are near-duplicates, so no experiment may sit in
   two splits;
2. identifiers as inputs: the group column, names like id/case/experiment/index, or an
   integer column unique per row (a row number) let a model memorise rows;
3. targets as inputs: an input equal to, or (nearly) a deterministic function of, a target
   (|Pearson| or |Spearman| > 0.99, or a constant ratio);
4. scaler: statistics must come from the training split only (stored means = train means).

``check_leakage`` reads a ``data.PreparedData`` by its attributes only, so this module
does not import ``data`` (which calls it).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import SpinnError

if TYPE_CHECKING:
    from .data import PreparedData

CORR_LIMIT = 0.99  # DATA.md: |corr| above this makes an input a stand-in for a target
RATIO_RTOL = 1e-6  # relative spread below which target / input counts as a constant
ID_TOKENS = {"id", "ids", "case", "experiment", "exp", "idx", "uuid", "key", "serial"}
ID_NAMES = {"index", "row", "row_index", "row_number", "rownum", "unnamed: 0", "level_0"}
MIN_ROWS_FOR_ROW_ID = 20  # below this, "unique per row" says little
STRATIFY_COL = "material_code"  # split experiments are spread over materials
SPLITS = ("train", "val", "test")  # as data.SPLITS (not imported: data imports this module)


def stratified_order(table: pd.DataFrame, group_col: str, rng: np.random.Generator,
                     interleave: bool = True) -> list:
    """Groups in a seeded order, by material: alternating (any prefix mixes materials) or
    one material after the other (dealing them round-robin gives every fold a mix)."""
    try:
        groups = sorted(pd.unique(table[group_col]).tolist())
    except TypeError as err:
        raise SpinnError(f"group column {group_col!r} mixes value types (e.g. numbers and text)") from err
    groups = [groups[i] for i in rng.permutation(len(groups))]
    strata = table.groupby(group_col)[STRATIFY_COL].first() if STRATIFY_COL in table else None
    buckets: dict = {}
    for g in groups:
        buckets.setdefault(strata[g] if strata is not None else 0, []).append(g)
    keys = sorted(buckets)
    start = int(rng.integers(len(keys)))  # which material leads is seeded, too
    keys = keys[start:] + keys[:start]
    if not interleave:
        return [g for k in keys for g in buckets[k]]
    order = []
    while any(buckets.values()):
        order += [buckets[k].pop(0) for k in keys if buckets[k]]
    return order


def split_groups(table: pd.DataFrame, group_col: str, n_val: int, n_test: int, seed: int,
                 split_col: str = "") -> dict[str, set]:
    """Experiments of each split: the user's ``split_col``, else a seeded material-mixed draw."""
    if split_col:
        unknown = sorted(set(table[split_col].astype(str)) - set(SPLITS))
        if unknown:
            raise SpinnError(f"split column {split_col!r} may hold only {list(SPLITS)}, found {unknown}")
        per_group = table.groupby(group_col)[split_col].nunique()
        if (per_group > 1).any():
            raise SpinnError(
                f"experiment(s) {per_group[per_group > 1].index.tolist()} appear in more than one "
                f"split of {split_col!r}; split by experiment, never by row"
            )
        members = {s: set(table.loc[table[split_col] == s, group_col]) for s in SPLITS}
    else:
        n_groups, need = table[group_col].nunique(), n_val + n_test + 1
        if n_groups < need:
            raise SpinnError(
                f"too few experiments to split: {n_groups} in {group_col!r}, need at least {need} "
                f"({n_test} test + {n_val} val + 1 train)"
            )
        order = stratified_order(table, group_col, np.random.default_rng(seed))
        members = {"test": set(order[:n_test]), "val": set(order[n_test:n_test + n_val]),
                   "train": set(order[n_test + n_val:])}
    empty = [s for s in SPLITS if not members[s]]
    if empty:
        raise SpinnError(f"split(s) {empty} have no experiments")
    return members


def fold_groups(table: pd.DataFrame, group_col: str, n_folds: int, seed: int,
                n_val: int = 2) -> list[dict[str, set]]:
    """Leave-experiments-out folds: each experiment is "test" once; "val" drawn from the rest."""
    rng = np.random.default_rng(seed)
    order = stratified_order(table, group_col, rng, interleave=False)
    if not 2 <= n_folds <= len(order):
        raise SpinnError(f"n_folds must be between 2 and the {len(order)} experiments, got {n_folds}")
    if len(order) - -(-len(order) // n_folds) < n_val + 1:
        raise SpinnError(f"too few experiments ({len(order)}) for {n_folds} folds with {n_val} val + 1 train")
    folds = []
    for k in range(n_folds):
        test = set(order[k::n_folds])  # dealt round-robin, material by material
        rest = table[~table[group_col].isin(test)]
        val = set(stratified_order(rest, group_col, rng)[:n_val])
        folds.append({"train": set(rest[group_col]) - val, "val": val, "test": test})
    return folds


def _check(name: str, problems: list[str], ok_detail: str) -> dict:
    return {"name": name, "passed": not problems, "detail": "; ".join(problems) or ok_detail}


def group_overlap(data: PreparedData) -> dict:
    """No group (experiment) may appear in two splits."""
    groups = {s: set(f[data.group_col].unique()) for s, f in data.frames.items()}
    names = sorted(groups)
    problems = [
        f"experiment(s) {sorted(groups[a] & groups[b])} are in both {a!r} and {b!r}"
        for i, a in enumerate(names) for b in names[i + 1:] if groups[a] & groups[b]
    ]
    sizes = ", ".join(f"{s}: {len(groups[s])}" for s in names)
    return _check("group_overlap", problems, f"experiments per split are disjoint ({sizes})")


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
    return _check("identifier_inputs", problems, "no identifier among the inputs")


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
    return _check(
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
    return _check("scaler_fitted_on_train", problems, "scaler statistics equal the train split's")


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
