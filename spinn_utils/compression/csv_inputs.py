"""Validation inputs from a CSV for the conversion CLI's ``--data``: the feature columns,
standardised with the checkpoint's scaler when it carries one."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import SpinnError, first_line
from ..data.dataset import Scaler
from ..data.schema import DEFAULT_FEATURES


def inputs_from_csv(
    path: str | os.PathLike, meta: dict, input_dim: int, features: list[str] | None = None
) -> tuple[np.ndarray, str]:
    """Model inputs from a CSV's feature columns, standardised with the checkpoint's scaler if any.

    Returns:
        (float32 array (n, input_dim), a description of where the inputs came from)
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError as err:
        raise SpinnError(f"data CSV not found: {path}") from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SpinnError(f"{path} is not a readable CSV: {first_line(err)}") from err
    scaler = Scaler.from_dict(meta["scaler"]) if meta.get("scaler") else None
    known = meta.get("feature_names") or (scaler.feature_names if scaler else None)
    if features is None:
        features = list(known or (DEFAULT_FEATURES if len(DEFAULT_FEATURES) == input_dim else []))
    if len(features) != input_dim:
        raise SpinnError(
            f"the model takes {input_dim} inputs but {len(features)} feature names are known; "
            "name the CSV's feature columns (--features a,b,...)"
        )
    if scaler is not None and list(features) != list(scaler.feature_names):
        raise SpinnError(f"features {features} differ from the checkpoint's {scaler.feature_names}")
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise SpinnError(
            f"{path} lacks feature column(s) {missing[:5]} (found {list(frame.columns)[:8]}...)"
        )
    values = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = [c for c, ok in zip(features, np.isfinite(values).all(axis=0)) if not ok]
    if bad or len(values) == 0:
        raise SpinnError(f"{path}: {len(values)} rows; missing or non-numeric values in {bad}")
    if scaler is None:
        return values.astype(np.float32), f"{path} ({len(values)} rows; no scaler in checkpoint, columns used as given)"
    return scaler.transform_x(values), f"{path} ({len(values)} rows, standardised with the checkpoint's scaler)"
