"""Mean and spread over repeated runs (folds, seeds, sweep points): one rule for every table and verdict.

The spread is the sample standard deviation (ddof=1) and the standard error of the mean
(std / sqrt(n)). One value has no spread: its std and standard error are None, shown as such,
never 0.0, which would read as a perfectly repeatable result and let any difference beat it.
"""
from __future__ import annotations

import math

import numpy as np


def mean_sem(values) -> dict:
    """``{"mean", "std", "sem", "n"}`` of the finite values (None and NaN are skipped); ``mean``
    is None without values, ``std`` and ``sem`` are None with fewer than two."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(arr.size)
    std = float(arr.std(ddof=1)) if n > 1 else None
    return {"mean": float(arr.mean()) if n else None, "std": std,
            "sem": None if std is None else std / math.sqrt(n), "n": n}
