"""Leakage checks 7, 8 and 9: a target recovered from several inputs together (``leakage.py``).

7. linear from two inputs (``A = wear + N``, ``B = N``): least squares on the training split;
8. through a product or a ratio of two inputs (``A = thermal x N``, ``B = N``), or linearly from
   three: least squares on ``[a, b, ab, a/b, b/a]`` or ``[a, b, c]``, in every split;
9. a ratio, difference or product of two inputs that is a monotone function of a target
   (``A = thermal^2 x N``, ``B = N``: ``A / B`` is the target squared; ``A = log(|thermal| + 1) + N``,
   ``B = N``: ``A - B``), which no least-squares fit finds: the rank (Spearman) correlation of each
   of the 153 pairs' three combinations (18 inputs) with each target, on all rows, in one matrix
   product of average ranks.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..core.checks import check_problems
from .dataset import PreparedData

# Two inputs that add up to a target fit it to float precision. Not 0.99: on the smoke table
# (1,500-sample windows) the acoustic-emission mean and RMS of one channel legitimately
# predict wear with R2 0.996, their noise averaged away.
LINEAR_R2_LIMIT = 0.999
# A leak spread over inputs is exact (R2 1 - 1e-12); honest data stays below 0.9995 (the smoke
# table's acoustic-emission channels, see above), so four nines separate the two.
COMBO_R2_LIMIT = 0.9999
# Relative eigenvalue below which a Gram direction is collinear (round-off of float64 at a condition
# number of 1e15 made an honest split's R2 1.012); a real leak fits to ~1e-12 in well-posed directions.
GRAM_RCOND = 1e-9
# A monotone function of a target ranks exactly like it (|Spearman| 1 up to round-off). Honest data
# reaches 0.984 (the smoke table: wear vs ae_table_mean - ae_spindle_rms; 0.93-0.96 on the full
# default data for seeds 42-44 and the example CSV), recorded in the check's detail on every run.
PAIR_RANK_LIMIT = 0.999
PAIR_OPS = ("/", "-", "x")  # a/b, a-b, a*b; b/a and b-a rank the same up to sign


def linear_combinations(data: PreparedData) -> dict:
    """No target may be a linear combination of two inputs (fitted on the training split)."""
    train = data.frames["train"]
    x = train[data.feature_names].to_numpy(np.float64)
    problems = []
    for target in data.target_names:
        y = train[target].to_numpy(np.float64)
        ss = ((y - y.mean()) ** 2).sum()
        for i, j in itertools.combinations(range(len(data.feature_names)), 2):
            design = np.column_stack([x[:, i], x[:, j], np.ones(len(y))])
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            r2 = 1.0 - ((y - design @ coef) ** 2).sum() / ss if ss > 0 else 0.0
            if r2 > LINEAR_R2_LIMIT:
                problems.append(f"target {target!r} = linear combination of inputs {data.feature_names[i]!r} "
                                f"and {data.feature_names[j]!r} (train R2 {r2:.4f} > {LINEAR_R2_LIMIT})")
    return check_problems("linear_combinations", problems,
                          f"no target is a linear combination of two inputs (R2 <= {LINEAR_R2_LIMIT})")


def _gram(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Normal equations of standardised columns ``z`` and centred ``y``: (z'z, z'y, y'y)."""
    yc = y - y.mean()
    return z.T @ z, z.T @ yc, float(yc @ yc)


def _explained(gram: np.ndarray, zy: np.ndarray, ss: float) -> np.ndarray:
    """R2 of least squares from (stacked) normal equations of standardised columns.

    Directions of the Gram matrix with eigenvalues below ``GRAM_RCOND`` times its largest are
    dropped: they are collinear columns (an input with two values makes ``a``, ``ab`` and
    ``b/a`` dependent), where solving would amplify round-off into an R2 above 1 (seen: 1.012
    on an honest split). The fit in the remaining directions is never more than the true R2."""
    if ss <= 0:
        return np.zeros(gram.shape[:-2])
    coef = np.linalg.pinv(gram, rtol=GRAM_RCOND, hermitian=True) @ zy[..., None]
    return np.clip((zy * coef[..., 0]).sum(axis=-1) / ss, 0.0, 1.0)


def _standard(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


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
    trios = np.array(list(itertools.combinations(varies, 3)), dtype=int).reshape(-1, 3)
    z = _standard(x)
    for target in data.target_names:
        y = frame[target].to_numpy(np.float64)
        for (i, j), t in zip(pairs, terms):
            r2 = float(_explained(*_gram(t, y)))
            if r2 > COMBO_R2_LIMIT:
                problems.append(f"target {target!r} = a product or ratio of inputs {names[i]!r} and "
                                f"{names[j]!r} ({split} R2 {r2:.6f} > {COMBO_R2_LIMIT})")
        gram, zy, ss = _gram(z, y)
        r2s = _explained(gram[trios[:, :, None], trios[:, None, :]], zy[trios], ss)
        for k in np.flatnonzero(r2s > COMBO_R2_LIMIT):
            problems.append(f"target {target!r} = linear combination of inputs "
                            f"{[names[c] for c in trios[k]]} ({split} R2 {r2s[k]:.6f} > {COMBO_R2_LIMIT})")
    return problems


def input_combinations(data: PreparedData) -> dict:
    """No target may be a product or ratio of two inputs, or a linear combination of three,
    in any split (a leak in the test rows alone counts)."""
    problems = []
    for split, frame in sorted(data.frames.items()):
        problems += [p for p in _combo_problems(frame, data, split) if p not in problems]
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
    i, j = (np.array(v, dtype=int) for v in zip(*itertools.combinations(range(x.shape[1]), 2)))
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
