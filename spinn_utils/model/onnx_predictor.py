"""A deployed model without torch: an ONNX file, its JSON sidecar and ONNX Runtime's CPU provider.

The exported graph takes raw features (float32, in the sidecar's order) and returns the targets
in physical units: the train-fitted scaler is folded into the first and last layers at export
(``compression/export.py``), so nothing else is needed at run time. This module imports only
numpy, pandas and onnxruntime, so ``python -m spinn_utils.predict`` runs on a machine without
torch (tests/test_export.py checks that torch is never imported).

Reference: ONNX Runtime Python API (``InferenceSession``, ``SessionOptions``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from ..core.errors import SpinnError, first_line

SIDECAR_FORMAT = "spinn-onnx-sidecar"
SIDECAR_KEYS = ("format", "feature_names", "targets", "input_name", "output_name")
# What ONNX Runtime raises for a file that is not a model it can run.
ORT_LOAD_ERRORS = (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.InvalidGraph,
                   ort_errors.InvalidProtobuf, ort_errors.NoSuchFile, ort_errors.NotImplemented,
                   ort_errors.RuntimeException, RuntimeError, ValueError, OSError)


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.json`` (the description that travels with the model)."""
    return Path(model_path).with_suffix(".json")


def read_sidecar(model_path: str | os.PathLike) -> dict:
    """The sidecar of ``model_path``; missing, unreadable or foreign is a SpinnError."""
    path = sidecar_path(model_path)
    if not path.is_file():
        raise SpinnError(f"{path} not found: copy the .json sidecar together with {Path(model_path).name}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SpinnError(f"{path} is not valid JSON ({first_line(err)})") from err
    missing = [k for k in SIDECAR_KEYS if k not in meta] if isinstance(meta, dict) else list(SIDECAR_KEYS)
    if missing or meta.get("format") != SIDECAR_FORMAT:
        raise SpinnError(f"{path} is not a SPINN ONNX sidecar (missing {missing or ['format']})")
    return meta


class OnnxPredictor:
    """Raw features in, physical units out; one ONNX Runtime session per thread count."""

    def __init__(self, model_path: str | os.PathLike) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise SpinnError(f"ONNX model not found: {self.path}")
        self.meta = read_sidecar(self.path)
        self.feature_names = list(self.meta["feature_names"])
        self.target_names = [t["name"] for t in self.meta["targets"]]
        self.input_name = self.meta["input_name"]
        self._sessions: dict[int, ort.InferenceSession] = {}
        self.session(1)  # fail now on a file that is not a model, not at the first prediction

    def session(self, threads: int) -> ort.InferenceSession:
        """The session with ``threads`` intra-op threads (built once, then reused)."""
        if threads not in self._sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1  # one graph of sequential layers: nothing to overlap
            try:
                self._sessions[threads] = ort.InferenceSession(
                    str(self.path), opts, providers=["CPUExecutionProvider"])
            except ORT_LOAD_ERRORS as err:
                raise SpinnError(f"{self.path} is not an ONNX model ONNX Runtime can run: {first_line(err)}") from err
        return self._sessions[threads]

    def run(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Targets (n, n_targets) in physical units for raw float32 features (n, n_features)."""
        session = self._sessions.get(threads) or self.session(threads)  # a lookup on the timed path
        return session.run(None, {self.input_name: features})[0]

    def features_from(self, frame: pd.DataFrame, source: str = "the CSV") -> np.ndarray:
        """The model's input columns of ``frame`` as float32; missing or non-numeric is an error."""
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise SpinnError(f"{source} lacks feature column(s) {missing}; the model needs {self.feature_names}")
        values = frame[self.feature_names].apply(pd.to_numeric, errors="coerce")
        bad = values.isna() & frame[self.feature_names].notna()
        if bad.any().any():
            col = bad.any().idxmax()
            row = int(bad[col].to_numpy().argmax())
            raise SpinnError(f"{source}: column {col!r} must be numeric; found {frame[col].iloc[row]!r} in row {row}")
        x = values.to_numpy(np.float64)
        if not np.isfinite(x).all():
            col = self.feature_names[int(np.argmax(~np.isfinite(x).all(axis=0)))]
            raise SpinnError(f"{source}: column {col!r} has empty, NaN or inf values")
        return x.astype(np.float32)
