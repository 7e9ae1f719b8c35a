"""The int8 deployable model: ONNX Runtime quantization of the structured export (Cell 5.5).

Static (QDQ, scales calibrated on training rows) and dynamic int8 are built, scored on the
validation split and timed alternately; the faster at equal accuracy is kept
(docs/benchmarking.md). The first and last layers stay fp32 (quantizing them cost R2 0.8 on a
smoke model); weights are per-tensor (per-channel measured worse).
"""
from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from pydantic import Field

from ..core.errors import SpinnError
from ..core.io import file_sha256
from ..core.metrics import regression_report
from ..core.overrides import Count, StageConfig
from ..core.paths import ResultsPaths
from ..core.registry import QUANTIZED_EXPORTS
from ..core.timing import perf_ms, timed_block
from ..data.dataset import PreparedData
from ..data.schema import target_unit
from ..model.onnx_predictor import FILE_KEYS, OnnxPredictor, read_sidecar
from ..model.sequence_predictor import is_hard, predictions
from ..model.sequences import sequence_of
from .export import OnnxExport, parity, remove_export, write_export

MODES = ("static", "dynamic")
BATCH_DEPENDENCE_ROWS = 2000  # rows predicted one by one (a large split would take seconds alone)


class QuantConfig(StageConfig):
    # Both are built and measured; one is kept.
    modes: Annotated[tuple[Literal[MODES], ...], Field(min_length=1)] = MODES
    calibration_rows: Count = 2000  # training rows (seeded sample) that fix the static scales
    calibration_batch: Count = 256  # rows per calibration batch the data reader hands out
    # Val mean R2 this close to the best counts as equal accuracy.
    accuracy_tie: float = Field(0.002, ge=0)
    # int8 vs fp32 on the test split: max |diff| per target <= this x the target's train std. It
    # catches a broken quantization (quantizing the raw-feature layer was off by ~1 std); accuracy
    # is judged by test R2. A trained smoke model's int8 was at 0.07, a random tiny one's at 0.17.
    parity_rtol: float = Field(0.25, gt=0, lt=10)
    choice_batch: Count = 1000  # rows per call when timing the candidates (the benchmark's batch)
    choice_rounds: Count = 15  # alternating rounds of 1 untimed + 3 timed calls per candidate
    seed: int = 0  # which training rows calibrate

    @classmethod
    def smoke_test(cls) -> QuantConfig:
        return cls(calibration_rows=256, choice_batch=64, choice_rounds=3)


class RowsReader(CalibrationDataReader):
    """Hands ``x`` to the calibrator in batches of ``batch`` rows under the graph's input name."""

    def __init__(self, input_name: str, x: np.ndarray, batch: int) -> None:
        self._batches = iter([{input_name: x[i:i + batch]} for i in range(0, len(x), batch)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def float_layers(model_path: Path) -> list[str]:
    """Names of the first and last Gemm/MatMul nodes: the layers kept in fp32."""
    nodes = [n.name for n in onnx.load(str(model_path)).graph.node if n.op_type in ("Gemm", "MatMul")]
    if len(nodes) < 3:
        raise SpinnError(f"{model_path} has {len(nodes)} linear layers; int8 needs hidden ones")
    return [nodes[0], nodes[-1]]


def quantize_file(src: Path, out: Path, mode: str, x_calib: np.ndarray,
                  cfg: QuantConfig) -> onnx.ModelProto:
    """``src`` quantized the ``mode`` way (through the file ``out``), first and last layers fp32,
    with ``src``'s ``metadata_props`` (the names the predictor checks; the quantizer drops them)."""
    keep, source = float_layers(src), onnx.load(str(src))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs "consider pre-processing" on every call
    try:
        if mode == "static":
            reader = RowsReader(source.graph.input[0].name, x_calib, cfg.calibration_batch)
            quantize_static(str(src), str(out), reader, quant_format=QuantFormat.QDQ,
                            per_channel=False, nodes_to_exclude=keep,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        else:  # the dynamic quantizer rewrites each Gemm as <name>_MatMul + <name>_Add first
            quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=False,
                             nodes_to_exclude=[*keep, *(f"{k}_MatMul" for k in keep)])
    finally:
        root.setLevel(level)
    model = onnx.load(str(out))
    props = {p.key: p.value for p in [*source.metadata_props, *model.metadata_props]}
    helper.set_model_props(model, props)
    return model


def choose(candidates: dict[str, dict], accuracy_tie: float) -> tuple[str, str]:
    """(mode kept, why): the fastest among those within ``accuracy_tie`` of the best val R2."""
    best_r2 = max(c["val_mean_r2"] for c in candidates.values())
    tied = [m for m, c in candidates.items() if c["val_mean_r2"] >= best_r2 - accuracy_tie]
    pick = min(tied, key=lambda m: candidates[m]["median_ms"])
    others = [m for m in candidates if m != pick]
    if not others:
        return pick, f"{pick} was the only mode built"
    why = "; ".join(
        f"{m}: val mean R2 {candidates[m]['val_mean_r2']:.4f} vs {candidates[pick]['val_mean_r2']:.4f}, "
        f"{candidates[m]['median_ms']:.3g} vs {candidates[pick]['median_ms']:.3g} ms"
        + (" (equal accuracy, slower)" if m in tied else f" (less accurate by more than {accuracy_tie})")
        for m in others)
    return pick, f"{pick} kept: {why}"


def _measure_candidates(paths: dict[str, Path], data: PreparedData, cfg: QuantConfig) -> dict[str, dict]:
    """Validation mean R2 and median ms at ``choice_batch`` of each candidate file."""
    x_val = data.frames["val"][data.feature_names].to_numpy(np.float32)
    y_val = data.frames["val"][data.target_names].to_numpy(np.float64)
    predictors = {m: OnnxPredictor(p) for m, p in paths.items()}
    rng = np.random.default_rng(cfg.seed)
    x_train = data.frames["train"][data.feature_names].to_numpy(np.float32)
    x_time = x_train[rng.integers(0, len(x_train), cfg.choice_batch)]
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    samples: dict[str, list[float]] = {m: [] for m in predictors}
    for _ in range(cfg.choice_rounds):  # alternating rounds of 1 untimed + 3 timed calls each
        for m, p in predictors.items():
            samples[m] += timed_block(perf_ms(lambda p=p: p.run(x_time, threads)), min_calls=3)
    ms = {m: float(np.median(t)) for m, t in samples.items()}
    out = {}
    sequence = sequence_of(data, "val") if is_hard(next(iter(predictors.values()))) else None
    for m, p in predictors.items():
        y = p.run(x_val, 1)
        report = regression_report(y_val, predictions(p, x_val, sequence).astype(np.float64), data.target_names)
        out[m] = {"val_mean_r2": report.mean_r2, "median_ms": ms[m], "batch": cfg.choice_batch,
                  "threads": threads, "batch_dependence": batch_dependence(p, x_val, y, data.target_names)}
    return out


def batch_dependence(predictor: OnnxPredictor, x: np.ndarray, y_whole: np.ndarray, target_names) -> dict:
    """Per target, in its unit: max |prediction in one call of all rows - prediction row by row|
    over the first ``BATCH_DEPENDENCE_ROWS`` rows. Zero for fp32 and static int8; dynamic int8
    takes each activation's scale from the whole call, so a row depends on the rows sent with it."""
    n = min(len(x), BATCH_DEPENDENCE_ROWS)
    y_single = np.concatenate([predictor.run(x[i:i + 1], 1) for i in range(n)])
    diff = np.abs(y_whole[:n].astype(np.float64) - y_single).max(axis=0)
    return {t: {"max_abs_diff": float(d), "unit": target_unit(t)} for t, d in zip(target_names, diff)}


def quantize_export(fp32_path: Path, out_path: Path, data: PreparedData, cfg: QuantConfig) -> OnnxExport:
    """Write ``out_path`` (int8 .onnx) and its sidecar, quantized from the fp32 export
    ``fp32_path``: train rows calibrate, val chooses the mode, test checks parity (a failure
    raises a SpinnError and keeps no file)."""
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    meta = read_sidecar(fp32_path)
    described = {k: v for k, v in meta.items() if k not in FILE_KEYS}  # names, units, ranges: fp32's
    x_train = data.frames["train"][data.feature_names].to_numpy(np.float32)
    rng = np.random.default_rng(cfg.seed)
    x_calib = x_train[np.sort(rng.permutation(len(x_train))[:cfg.calibration_rows])]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_path.stem}.", dir=out_path.parent) as work:
        files = {m: Path(work) / f"{m}.onnx" for m in cfg.modes}
        for m, f in files.items():
            write_export(quantize_file(fp32_path, f, m, x_calib, cfg), described, f)
        candidates = _measure_candidates(files, data, cfg)
        mode, why = choose(candidates, cfg.accuracy_tie)
        moved = {t: d for t, d in candidates[mode]["batch_dependence"].items() if d["max_abs_diff"] > 0}
        if moved:  # a deployer must know that the same row can come back with another prediction
            why += ("; its predictions depend on the other rows of a call (validation split, one call vs "
                    "row by row): up to " + ", ".join(f"{d['max_abs_diff']:.3g} {d['unit']}" for d in moved.values()))
        x_test = data.frames["test"][data.feature_names].to_numpy(np.float32)
        y_int8, y_fp32 = (OnnxPredictor(f).run(x_test, 1) for f in (files[mode], fp32_path))
        checked = parity(y_int8, y_fp32, data.target_names, data.scaler.y_std, cfg.parity_rtol,
                         "the fp32 export, same raw features")
        if not checked.passed:
            remove_export(out_path)
            raise SpinnError(f"{out_path.name}: int8 differs from {fp32_path.name} by more than "
                             f"{cfg.parity_rtol} x each target's std ({checked.per_target}); no export written")
        chosen = onnx.load(str(files[mode]))
        # Every weight the graph stores: int8 values, fp32 scales, int32 biases, ...
        weight_bytes = sum(numpy_helper.to_array(t).nbytes for t in chosen.graph.initializer)
        body = {**described, "precision": "int8", "parity": checked, "weight_bytes": weight_bytes,
                "quantization": {"mode": mode, "why": why, "candidates": candidates,
                                 "float_layers": float_layers(fp32_path),
                                 "calibration": f"{len(x_calib)} training rows (seed {cfg.seed}), min/max",
                                 "config": cfg.model_dump()},
                "source_onnx": str(fp32_path), "source_sha256": file_sha256(fp32_path),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        return write_export(chosen, body, out_path)


def quantize_exports(paths: ResultsPaths, data: PreparedData, cfg: QuantConfig) -> dict[str, OnnxExport]:
    """Every quantized export in the registry, from its fp32 export: {export name: sidecar}."""
    return {name: quantize_export(paths.export(source), paths.export(name), data, cfg)
            for name, source in QUANTIZED_EXPORTS.items()}
