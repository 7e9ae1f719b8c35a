"""Which experiments go where: the seeded, material-mixed split and cross-validation folds (by
experiment, never by row: rows of one experiment are near-duplicates).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import SpinnError
from .schema import SPLITS

STRATIFY_COL = "material_code"  # split experiments are spread over materials


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


def shared_groups(frames: dict[str, pd.DataFrame], group_col: str) -> list[str]:
    """One line per pair of splits that share experiments ([] when the splits are disjoint)."""
    groups = {s: set(f[group_col].unique()) for s, f in frames.items()}
    names = sorted(groups)
    return [f"experiment(s) {sorted(groups[a] & groups[b])} are in both {a!r} and {b!r}"
            for i, a in enumerate(names) for b in names[i + 1:] if groups[a] & groups[b]]
