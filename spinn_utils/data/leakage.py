"""The leakage check: ten ways test experiments or targets could leak into the inputs.

``check_leakage`` runs them all; each returns a check row that can fail. docs/data.md
("Leakage rules") says what each one catches, its limit and how close honest data comes.
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

from ..core.checks import check_problems
from .dataset import PreparedData
from .splits import shared_groups

CORR_LIMIT = 0.99  # |corr| above this makes an input a stand-in for a target
RATIO_RTOL = 1e-6  # relative spread below which target / input counts as a constant
ID_TOKENS = {"id", "ids", "case", "experiment", "exp", "idx", "uuid", "key", "serial"}
ID_NAMES = {"index", "row", "row_index", "row_number", "rownum", "unnamed: 0", "level_0"}
MIN_ROWS_FOR_ROW_ID = 20  # below this, "unique per row" says little
NN_R2_LIMIT = 0.95  # (thermal - mean)^2 scores 0.9996 on the default data, 0.99 on the smoke table
MAX_SHIFT = 3  # rows: the previous or next windows' targets copied into an input
SPLIT_CORR_LIMIT = 0.9999  # an affine copy of a target within one split
# Two inputs that add up to a target fit it to float precision. Not 0.99: on the smoke table
# the acoustic-emission mean and RMS of one channel legitimately predict wear with R2 0.996.
LINEAR_R2_LIMIT = 0.999
# A leak spread over inputs is exact (R2 1 - 1e-12); honest data stays below 0.9995.
COMBO_R2_LIMIT = 0.9999
# Relative eigenvalue below which a Gram direction is collinear (round-off of float64 at a condition
# number of 1e15 made an honest split's R2 1.012); a real leak fits to ~1e-12 in well-posed directions.
GRAM_RCOND = 1e-9
# A monotone function of a target ranks exactly like it; honest data reaches 0.984 (smoke table).
PAIR_RANK_LIMIT = 0.999
PAIR_OPS = ("/", "-", "x")  # a/b, a-b, a*b; b/a and b-a rank the same up to sign


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


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _constant_ratio(x: np.ndarray, y: np.ndarray) -> float | None:
    """The constant ``y / x`` when there is one (relative spread <= ``RATIO_RTOL``), else None."""
    nonzero = np.abs(x) > 1e-12
    ratio = y[nonzero] / x[nonzero]
    if (nonzero.sum() >= 3 and x[nonzero].std() > 0 and abs(ratio.mean()) > 0
            and ratio.std() <= RATIO_RTOL * abs(ratio.mean())):
        return float(ratio.mean())
    return None


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
            ranks = _rank_columns(np.column_stack([x, y]))
            pearson, spearman = _corr(x, y), float(ranks[:, 0] @ ranks[:, 1])
            ratio = _constant_ratio(x, y)
            if ratio is not None:
                problems.append(f"target {target!r} = {ratio:.6g} x input {col!r} "
                                "(a target copied into an input)")
            elif max(abs(pearson), abs(spearman)) > CORR_LIMIT:
                problems.append(f"input {col!r} is a near-deterministic function of target "
                                f"{target!r} (|Pearson| {abs(pearson):.4f}, |Spearman| "
                                f"{abs(spearman):.4f} > {CORR_LIMIT})")
    return check_problems("target_inputs", problems,
                          f"no input equals or tracks a target (|corr| <= {CORR_LIMIT}, no constant ratio)")


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
    """No input may be a target of the previous or next 1-3 windows of the same experiment
    (``table`` in time order as loaded: after the smoke cap, a one-row lag is not one window)."""
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
                r = abs(_corr(x, y))
                if col != target and (r > SPLIT_CORR_LIMIT or _constant_ratio(x, y) is not None):
                    problems.append(f"in the {split} split, input {col!r} copies target {target!r} "
                                    f"(|Pearson| {r:.6f} > {SPLIT_CORR_LIMIT} or a constant ratio)")
    return check_problems("split_copies", problems,
                          f"no input copies a target within any split (|corr| <= {SPLIT_CORR_LIMIT})")


def _gram(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Normal equations of standardised columns ``z`` and centred ``y``: (z'z, z'y, y'y)."""
    yc = y - y.mean()
    return z.T @ z, z.T @ yc, float(yc @ yc)


def _explained(gram: np.ndarray, zy: np.ndarray, ss: float) -> np.ndarray:
    """R2 of least squares from (stacked) normal equations of standardised columns; collinear
    directions (``GRAM_RCOND``: an input with two values makes ``a``, ``ab`` and ``b/a`` dependent)
    are dropped, so round-off cannot push R2 above the true fit."""
    if ss <= 0:
        return np.zeros(gram.shape[:-2])
    coef = np.linalg.pinv(gram, rtol=GRAM_RCOND, hermitian=True) @ zy[..., None]
    return np.clip((zy * coef[..., 0]).sum(axis=-1) / ss, 0.0, 1.0)


def _standard(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _subset_r2(z: np.ndarray, y: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """R2 of ``y`` fitted linearly on each row of ``subsets`` (columns of standardised ``z``)."""
    gram, zy, ss = _gram(z, y)
    return _explained(gram[subsets[:, :, None], subsets[:, None, :]], zy[subsets], ss)


def _subsets(columns, size: int) -> np.ndarray:
    return np.array(list(itertools.combinations(columns, size)), dtype=int).reshape(-1, size)


def linear_combinations(data: PreparedData) -> dict:
    """No target may be a linear combination of two inputs (fitted on the training split)."""
    train, names, problems = data.frames["train"], data.feature_names, []
    pairs = _subsets(range(len(names)), 2)
    z = _standard(train[names].to_numpy(np.float64))
    for target in data.target_names:
        r2s = _subset_r2(z, train[target].to_numpy(np.float64), pairs)
        for (i, j), r2 in zip(pairs, r2s):
            if r2 > LINEAR_R2_LIMIT:
                problems.append(f"target {target!r} = linear combination of inputs {names[i]!r} "
                                f"and {names[j]!r} (train R2 {r2:.4f} > {LINEAR_R2_LIMIT})")
    return check_problems("linear_combinations", problems,
                          f"no target is a linear combination of two inputs (R2 <= {LINEAR_R2_LIMIT})")


def _pair_terms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[a, b, ab, a/b, b/a]`` standardised (a ratio only where its divisor is never ~0)."""
    cols = [a, b, a * b]
    for num, den in ((a, b), (b, a)):
        if np.all(np.abs(den) > 1e-12 * max(np.abs(den).max(), 1.0)):
            cols.append(num / den)
    return _standard(np.column_stack(cols))


def _combo_problems(frame: pd.DataFrame, data: PreparedData, split: str) -> list[str]:
    """Targets recovered by a product or ratio of two inputs, or linearly by three, in one split."""
    names, problems = data.feature_names, []
    x = frame[names].to_numpy(np.float64)
    varies = [i for i in range(len(names)) if x[:, i].std() > 0]
    if len(x) <= 8 or len(varies) < 2:
        return []
    pairs = list(itertools.combinations(varies, 2))
    terms = [_pair_terms(x[:, i], x[:, j]) for i, j in pairs]
    trios, z = _subsets(varies, 3), _standard(x)
    for target in data.target_names:
        y = frame[target].to_numpy(np.float64)
        for (i, j), t in zip(pairs, terms):
            r2 = float(_explained(*_gram(t, y)))
            if r2 > COMBO_R2_LIMIT:
                problems.append(f"target {target!r} = a product or ratio of inputs {names[i]!r} and "
                                f"{names[j]!r} ({split} R2 {r2:.6f} > {COMBO_R2_LIMIT})")
        r2s = _subset_r2(z, y, trios)
        for k in np.flatnonzero(r2s > COMBO_R2_LIMIT):
            problems.append(f"target {target!r} = linear combination of inputs "
                            f"{[names[c] for c in trios[k]]} ({split} R2 {r2s[k]:.6f} > {COMBO_R2_LIMIT})")
    return problems


def input_combinations(data: PreparedData) -> dict:
    """No target may be a product or ratio of two inputs, or a linear combination of three,
    in any split (a leak in the test rows alone counts)."""
    problems = [p for split, frame in sorted(data.frames.items())
                for p in _combo_problems(frame, data, split)]
    return check_problems("input_combinations", problems,
                          f"no target is a product or ratio of two inputs or a sum of three (R2 <= {COMBO_R2_LIMIT})")


def _rank_columns(values: np.ndarray) -> np.ndarray:
    """Average ranks of each column, centred and scaled to unit norm (a constant column: zeros), so
    that the Spearman correlation of two columns is their dot product."""
    r = pd.DataFrame(values).rank().to_numpy(copy=True)  # pandas: scipy.stats costs ~1 s to import
    r -= r.mean(axis=0)
    norm = np.sqrt((r * r).sum(axis=0))
    return r / np.where(norm > 0, norm, np.inf)


def pair_combinations(x: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """(n, 3 x pairs) columns ``a/b``, ``a-b``, ``a*b`` of every pair of columns of ``x``, and what
    each is; a ratio whose divisor comes near 0 is left out (it has no honest ranking)."""
    i, j = _subsets(range(x.shape[1]), 2).T
    a, b = x[:, i], x[:, j]
    usable = np.all(np.abs(b) > 1e-12 * np.maximum(np.abs(b).max(axis=0), 1.0), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = a[:, usable] / b[:, usable]
    columns = np.concatenate([ratio, a - b, a * b], axis=1)
    labels = ([(p, q, "/") for p, q, ok in zip(i, j, usable) if ok]
              + [(p, q, op) for op in PAIR_OPS[1:] for p, q in zip(i, j)])
    return columns, labels


def pair_ranks(data: PreparedData, table: pd.DataFrame) -> dict:
    """No ratio, difference or product of two inputs may rank like a target (|Spearman| above
    ``PAIR_RANK_LIMIT``); the detail gives the highest value found, leak or not, as the margin."""
    names = data.feature_names
    x = table[names].to_numpy(np.float64)
    if len(x) < 3 or len(names) < 2:
        return check_problems("pair_ranks", [], "fewer than two inputs or three rows: nothing to rank")
    columns, labels = pair_combinations(x)
    ranked = _rank_columns(columns)
    text = [f"{names[p]!r} {op} {names[q]!r}" for p, q, op in labels]
    problems, best = [], (0.0, "", "")
    for target in data.target_names:
        rho = np.abs(_rank_columns(table[[target]].to_numpy(np.float64))[:, 0] @ ranked)
        k = int(np.argmax(rho))
        best = max(best, (float(rho[k]), text[k], target))
        problems += [f"{text[m]} ranks like target {target!r} (|Spearman| {rho[m]:.5f} > {PAIR_RANK_LIMIT}): "
                     "a monotone function of it" for m in np.flatnonzero(rho > PAIR_RANK_LIMIT)]
    return check_problems("pair_ranks", problems,
                          f"no ratio, difference or product of two inputs ranks like a target (highest "
                          f"|Spearman| {best[0]:.4f}: {best[1]} vs {best[2]!r}; limit {PAIR_RANK_LIMIT})")


def check_leakage(data: PreparedData, loaded: pd.DataFrame | None = None) -> dict:
    """Every check on ``data``; the lag check on ``loaded`` (the table before a smoke cap, in time
    order) where given. Returns ``{"passed", "problems": [failed details], "checks": [rows]}``."""
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
