"""A deployed model without torch (``python -m spinn_utils.predict``): an ONNX file that takes
raw float32 features and returns physical units, and its JSON sidecar, all or nothing: the model
records the sha256 of the whole sidecar, so an edited or foreign sidecar is refused in one line.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from ..core.errors import SpinnError, first_line
from ..core.io import file_sha256

SIDECAR_FORMAT = "spinn-onnx-sidecar"
SIDECAR_KEYS = ("format", "feature_names", "targets", "input_name", "output_name", "onnx_sha256",
                "feature_ranges")
# Keys of the .onnx's metadata_props, written at export: the names and the sidecar's sha256.
META_FEATURES, META_TARGETS = "spinn_feature_names", "spinn_target_names"
META_SIDECAR = "spinn_sidecar_sha256"
FILE_KEYS = ("onnx_sha256", "onnx_bytes")  # describe the .onnx: checked against it, not hashed
REEXPORT = "re-export it with notebook 05_5"
RANGE_FACTOR = 1.0  # an input beyond the training range by more than this x its width is flagged
FLOAT32_MAX = float(np.finfo(np.float32).max)
# What ONNX Runtime raises for a file that is not a model it can run.
ORT_LOAD_ERRORS = (ort_errors.Fail, ort_errors.InvalidArgument, ort_errors.InvalidGraph,
                   ort_errors.InvalidProtobuf, ort_errors.NoSuchFile, ort_errors.NotImplemented,
                   ort_errors.RuntimeException, RuntimeError, ValueError, OSError)


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.json`` (the description that travels with the model)."""
    return Path(model_path).with_suffix(".json")


def sidecar_digest(meta: dict) -> str:
    """sha256 of the sidecar's canonical JSON (sorted keys, no spaces) without ``FILE_KEYS``:
    every other key, whatever the exporter adds later, is covered."""
    body = {k: v for k, v in meta.items() if k not in FILE_KEYS}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_sidecar(model_path: str | os.PathLike) -> dict:
    """The sidecar of ``model_path``; missing, unreadable (truncated) or foreign is a SpinnError."""
    path = sidecar_path(model_path)
    if not path.is_file():
        raise SpinnError(f"{path} not found: copy the .json sidecar together with {Path(model_path).name}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise SpinnError(f"{path} is not valid JSON (truncated or edited? {first_line(err)}): restore it from "
                         f"the export or {REEXPORT}") from err
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise SpinnError(f"{path} is not a SPINN ONNX sidecar (no \"format\": \"{SIDECAR_FORMAT}\")")
    return meta


def _dims(value) -> list:
    return [d if isinstance(d, int) else "batch" for d in value]


def check_binding(path: Path, meta: dict, session: ort.InferenceSession) -> None:
    """Refuse (SpinnError) a sidecar that is not, unedited, the one exported with this model: the
    sha256s both ways, then (for an export forged whole) the input/output names and shapes and the
    feature and target names."""
    side = sidecar_path(path).name
    if "onnx_sha256" not in meta:
        raise SpinnError(f"{side} records no sha256 of its model (an export older than that check): {REEXPORT}")
    if file_sha256(path) != meta["onnx_sha256"]:
        raise SpinnError(f"{path.name} is not the model {side} describes (its sha256 differs): copy the "
                         ".onnx and .json of one export together")
    props = session.get_modelmeta().custom_metadata_map
    if META_SIDECAR not in props:
        raise SpinnError(f"{path.name} records no hash of its sidecar (an export older than that check): {REEXPORT}")
    if props[META_SIDECAR] != sidecar_digest(meta) or meta.get("onnx_bytes") != path.stat().st_size:
        raise SpinnError(f"{side} was edited after export (it no longer matches the sha256 {path.name} records "
                         f"for it): restore it from the export or {REEXPORT}")
    missing = [k for k in SIDECAR_KEYS if k not in meta]
    if missing:
        raise SpinnError(f"{side} lacks {missing} (an export older than those keys): {REEXPORT}")
    n_f, n_t = len(meta["feature_names"]), len(meta["targets"])
    found = {"input": [(i.name, _dims(i.shape)) for i in session.get_inputs()],
             "output": [(o.name, _dims(o.shape)) for o in session.get_outputs()]}
    wanted = {"input": [(meta["input_name"], ["batch", n_f])], "output": [(meta["output_name"], ["batch", n_t])]}
    for kind in ("input", "output"):
        if found[kind] != wanted[kind]:
            raise SpinnError(f"{side} says the model's {kind} is {wanted[kind]} (name, shape); "
                             f"{path.name} has {found[kind]}")
    for key, names in ((META_FEATURES, meta["feature_names"]), (META_TARGETS, [t["name"] for t in meta["targets"]])):
        if key not in props or json.loads(props[key]) != list(names):
            what = "feature" if key == META_FEATURES else "target"
            raise SpinnError(f"{side} lists the {what} names {list(names)}, but {path.name} was exported "
                             f"with {props.get(key, 'none recorded')}: a sidecar edited or from another export")


def range_bounds(meta: dict, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) beyond which an input is flagged: the training range widened by ``RANGE_FACTOR``
    times its width each side; absent or malformed ranges are a SpinnError, never a silent skip."""
    ranges, n_f = meta.get("feature_ranges"), len(meta["feature_names"])
    try:
        lo, hi = (np.asarray(ranges[k], np.float64) for k in ("min", "max"))
    except (TypeError, KeyError, ValueError) as err:
        raise SpinnError(f"{side} records no usable feature_ranges, so inputs far outside the training range "
                         f"could not be flagged: {REEXPORT}") from err
    if lo.shape != (n_f,) or hi.shape != (n_f,) or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise SpinnError(f"{side}: feature_ranges must hold {n_f} finite min and max values: {REEXPORT}")
    width = np.maximum(hi - lo, 0.0)
    return lo - RANGE_FACTOR * width, hi + RANGE_FACTOR * width


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
        self._sessions: dict[tuple[int, bool], ort.InferenceSession] = {}
        check_binding(self.path, self.meta, self.session(1))  # fail now, not at the first prediction
        self.low, self.high = range_bounds(self.meta, sidecar_path(self.path).name)

    def session(self, threads: int, stop_spinning: bool = False) -> ort.InferenceSession:
        """The session with ``threads`` intra-op threads (built once, then reused); with
        ``stop_spinning`` its pool stops spinning when a run returns (the benchmark's large
        batches: an idle worker's pool must not take the core of the one being timed)."""
        key = (threads, stop_spinning)
        if key not in self._sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1  # one graph of sequential layers: nothing to overlap
            if stop_spinning:
                opts.add_session_config_entry("session.force_spinning_stop", "1")
            try:
                self._sessions[key] = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
            except ORT_LOAD_ERRORS as err:
                raise SpinnError(f"{self.path} is not an ONNX model ONNX Runtime can run: {first_line(err)}") from err
        return self._sessions[key]

    def run(self, features: np.ndarray, threads: int = 1, stop_spinning: bool = False) -> np.ndarray:
        """Targets (n, n_targets) in physical units for raw float32 features (n, n_features)."""
        session = self._sessions.get((threads, stop_spinning)) or self.session(threads, stop_spinning)
        return session.run(None, {self.input_name: features})[0]

    def outside_range(self, x: np.ndarray) -> np.ndarray:
        """(n, n_features) True where a value lies beyond ``range_bounds``."""
        return (x < self.low) | (x > self.high)

    def features_from(self, frame: pd.DataFrame, source: str = "the CSV", first_row: int = 0) -> np.ndarray:
        """The model's input columns of ``frame`` as float32; missing, non-numeric or a value
        float32 cannot hold is an error (``first_row``: the frame's first row in the file)."""
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise SpinnError(f"{source} lacks feature column(s) {missing}; the model needs {self.feature_names}")
        values = frame[self.feature_names].apply(pd.to_numeric, errors="coerce")
        bad = values.isna() & frame[self.feature_names].notna()
        if bad.any().any():
            col = bad.any().idxmax()
            row = int(bad[col].to_numpy().argmax())
            raise SpinnError(f"{source}: column {col!r} must be numeric; found {frame[col].iloc[row]!r} "
                             f"in row {first_row + row}")
        return self.checked(values.to_numpy(np.float64), source, first_row)

    def checked(self, x: np.ndarray, source: str = "the CSV", first_row: int = 0) -> np.ndarray:
        """Raw float64 features (n, n_features) as float32; a NaN, an inf or a value float32
        cannot hold is an error naming the column (and the row, ``first_row`` being the first)."""
        if not np.isfinite(x).all():
            col = self.feature_names[int(np.argmax(~np.isfinite(x).all(axis=0)))]
            raise SpinnError(f"{source}: column {col!r} has empty, NaN or inf values")
        huge = np.abs(x) > FLOAT32_MAX
        if huge.any():
            row, j = np.argwhere(huge)[0]
            raise SpinnError(f"{source}: column {self.feature_names[j]!r} holds {x[row, j]:g} in row "
                             f"{first_row + row}, beyond what the model's float32 input can hold")
        return x.astype(np.float32)
