"""The deployable SPINN in int8: ONNX Runtime quantization of the structured export (Cell 5.5).

Two ways are built and measured, and one is kept (``QuantConfig``):

- **static** (QDQ format): the scales of every activation are fixed once, calibrated with a
  ``CalibrationDataReader`` on training rows (min/max); ONNX Runtime fuses each
  DequantizeLinear -> Gemm -> QuantizeLinear into one integer ``QGemm``.
- **dynamic**: weights are int8, each activation's scale is computed from the batch at run time
  (``DynamicQuantizeLinear`` before every ``MatMulInteger``).

The first layer (its inputs are raw features whose ranges differ by orders of magnitude, so one
per-tensor scale erases the small ones) and the last (two outputs in physical units) stay fp32:
quantizing them cost R2 0.8 on a smoke model, they hold ~3% of the FLOPs. Hidden layers see tanh
outputs in [-1, 1], which int8 represents well. Weights are per-tensor: per-channel scales
measured worse here (R2 -0.01, ONNX Runtime 1.32).

The two candidates are scored on the **validation** split (the test split stays for notebook 08),
timed at ``choice_batch`` rows in alternation, and the faster one is kept when its validation
mean per-output R2 is within ``accuracy_tie`` of the more accurate one; the sidecar records both
measurements and why. Parity against the fp32 export is reported per target in physical units
on the test split and must stay within ``parity_rtol`` of each target's train std.

Reference: ONNX Runtime, "Quantize ONNX models" (``onnxruntime.quantization.quantize_static``,
``quantize_dynamic``, ``CalibrationDataReader``, QDQ format).
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from ..core.errors import SpinnError
from ..core.io import atomic_path, file_sha256
from ..core.metrics import regression_report
from ..core.paths import ResultsPaths
from ..core.registry import QUANTIZED_EXPORTS
from ..core.timing import perf_ms, timed_block
from ..data.dataset import PreparedData
from ..data.schema import target_unit
from ..model.onnx_predictor import FILE_KEYS, OnnxPredictor, read_sidecar, sidecar_path
from ..model.sequence_predictor import is_hard, predictions
from ..model.sequences import sequence_of
from .export import remove_export, write_export

MODES = ("static", "dynamic")


@dataclass(frozen=True)
class QuantConfig:
    modes: tuple[str, ...] = MODES  # both are built and measured; one is kept
    calibration_rows: int = 2000  # training rows (seeded sample) that fix the static scales
    calibration_batch: int = 256  # rows per calibration batch the data reader hands out
    accuracy_tie: float = 0.002  # val mean R2 this close to the best counts as equal accuracy
    # int8 vs fp32 on the test split: max |diff| per target <= this x the target's train std. It
    # catches a broken quantization (quantizing the raw-feature layer was off by ~1 std); accuracy
    # is judged by test R2. A trained smoke model's int8 was at 0.07, a random tiny one's at 0.17.
    parity_rtol: float = 0.25
    choice_batch: int = 1000  # rows per call when timing the candidates (the benchmark's batch)
    choice_rounds: int = 15  # alternating rounds of 1 untimed + 3 timed calls per candidate
    seed: int = 0  # which training rows calibrate

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(self.modes))
        if not self.modes or any(m not in MODES for m in self.modes):
            raise SpinnError(f"modes must be a non-empty subset of {MODES}, got {self.modes}")
        if self.calibration_rows < 1 or self.calibration_batch < 1 or self.choice_batch < 1:
            raise SpinnError("calibration_rows, calibration_batch and choice_batch must be >= 1")
        if not 0 < self.parity_rtol < 10 or self.accuracy_tie < 0 or self.choice_rounds < 1:
            raise SpinnError("parity_rtol must be in (0, 10), accuracy_tie >= 0, choice_rounds >= 1")

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


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantizer logs "consider pre-processing" to the root logger on every call."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def initializer_bytes(model_path: Path) -> int:
    """Bytes of every weight stored in the graph (int8 values, fp32 scales, int32 biases, ...)."""
    return sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(model_path)).graph.initializer)


def quantize_file(src: Path, out: Path, mode: str, x_calib: np.ndarray, cfg: QuantConfig) -> None:
    """Write ``out``: ``src`` quantized the ``mode`` way, first and last layers kept fp32."""
    with _quiet_root_logger():
        _quantize(src, out, mode, x_calib, cfg, float_layers(src))
    _copy_metadata(src, out)


def _copy_metadata(src: Path, out: Path) -> None:
    """The fp32 export's ``metadata_props`` (feature and target names the predictor checks its
    sidecar against) onto the quantized model, where the quantizer did not keep them."""
    source, model = onnx.load(str(src)), onnx.load(str(out))
    have = {p.key for p in model.metadata_props}
    missing = [p for p in source.metadata_props if p.key not in have]
    if missing:
        for p in missing:
            model.metadata_props.add(key=p.key, value=p.value)
        onnx.save(model, str(out))


def _quantize(src: Path, out: Path, mode: str, x_calib: np.ndarray, cfg: QuantConfig, keep: list[str]) -> None:
    if mode == "static":
        input_name = onnx.load(str(src)).graph.input[0].name
        quantize_static(str(src), str(out), RowsReader(input_name, x_calib, cfg.calibration_batch),
                        quant_format=QuantFormat.QDQ, per_channel=False, nodes_to_exclude=keep,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    else:  # the dynamic quantizer rewrites each Gemm as <name>_MatMul + <name>_Add first
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=False,
                         nodes_to_exclude=[*keep, *(f"{k}_MatMul" for k in keep)])


def parity_vs_fp32(y_int8: np.ndarray, y_fp32: np.ndarray, target_names: list[str], y_std, rtol: float) -> dict:
    """Per target, in its physical unit: max and mean |int8 - fp32|, and the limit rtol x std."""
    diff = np.abs(y_int8.astype(np.float64) - y_fp32.astype(np.float64))
    limit = rtol * np.asarray(y_std, dtype=np.float64)
    per_target = {t: {"max_abs_diff": float(diff[:, j].max()), "mean_abs_diff": float(diff[:, j].mean()),
                      "unit": target_unit(t), "limit": float(limit[j])}
                  for j, t in enumerate(target_names)}
    finite = bool(np.isfinite(y_int8).all())
    return {"per_target": per_target, "passed": finite and all(p["max_abs_diff"] <= p["limit"] for p in per_target.values()),
            "rtol_of_target_std": rtol, "against": "the fp32 export, same raw features"}


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


def time_alternating(predictors: dict[str, OnnxPredictor], x: np.ndarray, rounds: int, threads: int) -> dict[str, float]:
    """Median ms per call of each predictor, in alternating rounds (1 untimed + 3 timed calls)."""
    samples: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, p in predictors.items():
            samples[name] += timed_block(perf_ms(lambda p=p: p.run(x, threads)), min_calls=3)
    return {name: float(np.median(ms)) for name, ms in samples.items()}


def _measure_candidates(paths: dict[str, Path], data: PreparedData, cfg: QuantConfig) -> dict[str, dict]:
    """Validation mean R2 and median ms at ``choice_batch`` of each candidate file."""
    x_val = data.frames["val"][data.feature_names].to_numpy(np.float32)
    y_val = data.frames["val"][data.target_names].to_numpy(np.float64)
    predictors = {m: OnnxPredictor(p) for m, p in paths.items()}
    rng = np.random.default_rng(cfg.seed)
    x_train = data.frames["train"][data.feature_names].to_numpy(np.float32)
    x_time = x_train[rng.integers(0, len(x_train), cfg.choice_batch)]
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ms = time_alternating(predictors, x_time, cfg.choice_rounds, threads)
    out = {}
    sequence = sequence_of(data, "val") if is_hard(next(iter(predictors.values()))) else None
    for m, p in predictors.items():
        y = p.run(x_val, 1)
        report = regression_report(y_val, predictions(p, x_val, sequence).astype(np.float64), data.target_names)
        out[m] = {"val_mean_r2": report.mean_r2, "median_ms": ms[m], "batch": cfg.choice_batch,
                  "threads": threads, "batch_dependence": batch_dependence(p, x_val, y, data.target_names)}
    return out


BATCH_DEPENDENCE_ROWS = 2000


def batch_dependence(predictor: OnnxPredictor, x: np.ndarray, y_whole: np.ndarray, target_names) -> dict:
    """Per target, in its unit: max |prediction in one call of all rows - prediction row by row|
    (over the first ``BATCH_DEPENDENCE_ROWS`` rows: a large split would take seconds alone).

    Zero for fp32 and static int8; dynamic int8 computes each activation's scale from the whole
    call, so a row's prediction depends on the rows sent with it."""
    n = min(len(x), BATCH_DEPENDENCE_ROWS)
    y_single = np.concatenate([predictor.run(x[i:i + 1], 1) for i in range(n)])
    diff = np.abs(y_whole[:n].astype(np.float64) - y_single).max(axis=0)
    return {t: {"max_abs_diff": float(d), "unit": target_unit(t)} for t, d in zip(target_names, diff)}


def quantize_export(fp32_path: Path, out_path: Path, data: PreparedData, cfg: QuantConfig) -> dict:
    """Write ``out_path`` (int8 .onnx) and its sidecar, quantized from ``fp32_path``.

    Args:
        fp32_path: the structured fp32 export of notebook 05.5 (its sidecar beside it).
        out_path: the int8 .onnx to write; the sidecar is the same name with .json.
        data: the prepared splits (train calibrates, val chooses, test checks parity).
        cfg: modes, calibration rows, the tie and parity tolerances.

    Returns:
        The sidecar. Raises SpinnError, keeping no file, when parity vs fp32 fails.
    """
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    meta = read_sidecar(fp32_path)
    described = {k: v for k, v in meta.items() if k not in FILE_KEYS}  # names, units, ranges: fp32's
    x_train = data.frames["train"][data.feature_names].to_numpy(np.float32)
    rng = np.random.default_rng(cfg.seed)
    x_calib = x_train[np.sort(rng.permutation(len(x_train))[:cfg.calibration_rows])]
    work = out_path.parent / f".{out_path.stem}.candidates"
    work.mkdir(parents=True, exist_ok=True)
    try:
        files = {m: work / f"{m}.onnx" for m in cfg.modes}
        for m, f in files.items():
            quantize_file(fp32_path, f, m, x_calib, cfg)
            write_export(onnx.load(str(f)), described, f, sidecar_path(f))
        candidates = _measure_candidates(files, data, cfg)
        mode, why = choose(candidates, cfg.accuracy_tie)
        moved = {t: d for t, d in candidates[mode]["batch_dependence"].items() if d["max_abs_diff"] > 0}
        if moved:  # a deployer must know that the same row can come back with another prediction
            why += ("; its predictions depend on the other rows of a call (validation split, one call vs "
                    "row by row): up to " + ", ".join(f"{d['max_abs_diff']:.3g} {d['unit']}" for d in moved.values()))
        x_test = data.frames["test"][data.feature_names].to_numpy(np.float32)
        y_fp32 = OnnxPredictor(fp32_path).run(x_test, 1)
        y_int8 = OnnxPredictor(files[mode]).run(x_test, 1)
        parity = parity_vs_fp32(y_int8, y_fp32, data.target_names, data.scaler.y_std, cfg.parity_rtol)
        parity["n"] = len(x_test)
        if not parity["passed"]:
            remove_export(out_path)
            raise SpinnError(f"{out_path.name}: int8 differs from {fp32_path.name} by more than "
                             f"{cfg.parity_rtol} x each target's std ({parity['per_target']}); no export written")
        body = {**described, "precision": "int8", "parity": parity, "weight_bytes": initializer_bytes(files[mode]),
                "quantization": {"mode": mode, "why": why, "candidates": candidates,
                                 "float_layers": float_layers(fp32_path),
                                 "calibration": f"{len(x_calib)} training rows (seed {cfg.seed}), min/max",
                                 "config": asdict(cfg)},
                "source_onnx": str(fp32_path), "source_sha256": file_sha256(fp32_path),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with atomic_path(out_path) as tmp:  # the model is renamed in just after its sidecar is written
            sidecar = write_export(onnx.load(str(files[mode])), body, tmp, sidecar_path(out_path))
    finally:
        for f in work.glob("*"):
            f.unlink()
        work.rmdir()
    return sidecar


def quantize_exports(paths: ResultsPaths, data: PreparedData, cfg: QuantConfig) -> dict[str, dict]:
    """Every quantized export in the registry, from its fp32 export: {export name: sidecar}."""
    return {name: quantize_export(paths.export(source), paths.export(name), data, cfg)
            for name, source in QUANTIZED_EXPORTS.items()}
