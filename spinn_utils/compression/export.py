"""ONNX exports that take raw features and return physical units (the scaler folded into the
first and last layers), written node for node with ``onnx.helper`` (``Gemm`` and the activation,
opset 18, as ``torch.onnx.export`` writes them). An export is kept only when ONNX Runtime
reproduces the PyTorch model on the test split within ``parity_rtol`` of each target's std; its
JSON sidecar (results/README.md) is hashed whole into the model's ``metadata_props``.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from pydantic import ConfigDict, Field
from torch import nn

from ..core.errors import SpinnError
from ..core.io import atomic_path, file_sha256, to_jsonable, write_json
from ..core.overrides import StageConfig
from ..core.paths import ResultsPaths
from ..core.registry import EXPORTED_VARIANTS
from ..core.results_schema import Blob, Record
from ..core.version import __version__
from ..data.dataset import PreparedData, Scaler
from ..data.schema import RUN_COL, target_unit
from ..model.checkpoints import load_dense_model
from ..model.counting import count_parameters, linear_layers
from ..model.mlp import ACTIVATIONS, DensePINN
from ..model.onnx_predictor import (
    META_FEATURES,
    META_SIDECAR,
    META_TARGETS,
    RANGE_FACTOR,
    SIDECAR_FORMAT,
    sidecar_digest,
    sidecar_path,
)

INPUT_NAME, OUTPUT_NAME = "features", "targets"
# Torch's activations as ONNX ops (op, inputs): "x" is the activation's input, "y" the previous
# op's output. SiLU is x * sigmoid(x); GELU the erf form, 0.5 x (1 + erf(x / sqrt 2)).
ONNX_ACTIVATIONS = {
    "tanh": [("Tanh", "x")], "relu": [("Relu", "x")], "silu": [("Sigmoid", "x"), ("Mul", "x", "y")],
    "gelu": [("Mul", "x", "gelu_inv_sqrt2"), ("Erf", "y"), ("Add", "y", "gelu_one"), ("Mul", "x", "y"),
             ("Mul", "y", "gelu_half")],
}


class Parity(Record):
    """An export's outputs against its reference's: per target, in its unit, ``{"max_abs_diff",
    "mean_abs_diff", "unit", "limit"}`` (limit: ``rtol_of_target_std`` x the target's std)."""

    per_target: dict[str, dict[str, float | str]]
    passed: bool
    rtol_of_target_std: float
    n: int
    against: str


class Quantization(Record):
    """How an int8 export was made and why its mode was kept (``quantize.py``)."""

    mode: str
    why: str
    candidates: dict[str, Blob]  # by mode: val_mean_r2, median_ms, batch, threads, batch_dependence
    float_layers: list[str]
    calibration: str
    config: Blob


class OnnxExport(Record):
    """An export's sidecar (``export/<name>.json``): what readers use typed, the rest as written."""

    model_config = ConfigDict(frozen=True, extra="allow")
    onnx_bytes: int
    hidden_dims: list[int]
    parity: Parity
    quantization: Quantization | None = None  # int8 exports only


class ExportConfig(StageConfig):
    opset: int = 18  # what torch's exporter writes by default; ONNX Runtime 1.16+ runs it
    # ORT vs PyTorch: max |diff| per target <= this x the target's train std.
    parity_rtol: float = Field(1e-4, gt=0, lt=1)

    @classmethod
    def smoke_test(cls) -> ExportConfig:
        return cls()  # exporting takes seconds at any size; parity is the point


@torch.no_grad()
def fold_scaler(model: DensePINN, scaler: Scaler) -> DensePINN:
    """A float32 CPU copy of ``model`` that takes raw features and returns physical units."""
    folded = copy.deepcopy(model).cpu().float().eval()
    layers = linear_layers(folded)
    first, last = layers[0], layers[-1]
    x_mean, x_std = (torch.as_tensor(v, dtype=torch.float64) for v in (scaler.x_mean, scaler.x_std))
    y_mean, y_std = (torch.as_tensor(v, dtype=torch.float64) for v in (scaler.y_mean, scaler.y_std))
    w = first.weight.double() / x_std  # column j sees (x_j - mu_j) / sigma_j
    first.bias.copy_((first.bias.double() - w @ x_mean).float())
    first.weight.copy_(w.float())
    last.weight.copy_((last.weight.double() * y_std[:, None]).float())
    last.bias.copy_((last.bias.double() * y_std + y_mean).float())
    return folded


def build_graph(model: DensePINN, opset: int, props: dict[str, str] | None = None) -> onnx.ModelProto:
    """``model.network`` (Linear layers and its activation) as an ONNX model with a dynamic batch
    dimension; ``props`` go into its ``metadata_props`` (the names the sidecar must match)."""
    activations = {cls: name for name, cls in ACTIVATIONS.items()}
    initializers, nodes, x = [], [], INPUT_NAME
    if any(isinstance(m, nn.GELU) for m in model.network):  # its constants, once
        initializers += [numpy_helper.from_array(np.array(v, np.float32), name) for name, v in
                         (("gelu_inv_sqrt2", 2 ** -0.5), ("gelu_one", 1.0), ("gelu_half", 0.5))]
    modules = list(model.network.named_children())
    for i, (index, module) in enumerate(modules):
        tag = f"_{index}"
        y = OUTPUT_NAME if i == len(modules) - 1 else f"{type(module).__name__.lower()}{tag}"
        if isinstance(module, nn.Linear):
            w, b = f"network.{index}.weight", f"network.{index}.bias"
            initializers += [numpy_helper.from_array(module.weight.detach().cpu().float().numpy(), w),
                             numpy_helper.from_array(module.bias.detach().cpu().float().numpy(), b)]
            nodes.append(helper.make_node("Gemm", [x, w, b], [y], name=f"node_linear{tag}", transB=1))
        elif type(module) in activations:
            ops, prev = ONNX_ACTIVATIONS[activations[type(module)]], x
            for k, (op, *inputs) in enumerate(ops):
                step = f"{op.lower()}{tag}" + (f"_{k}" if k else "")
                out = y if k == len(ops) - 1 else step
                args = [{"x": x, "y": prev}.get(arg, arg) for arg in inputs]
                nodes.append(helper.make_node(op, args, [out], name=f"node_{step}"))
                prev = out
        else:
            raise SpinnError(f"cannot write {type(module).__name__} (network.{index}) to ONNX: "
                             "a DensePINN holds only Linear layers and its activation")
        x = y
    graph = helper.make_graph(
        nodes, "spinn_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", model.cfg.input_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", model.cfg.output_dim])],
        initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="spinn_utils", producer_version=__version__)
    proto.ir_version = min(proto.ir_version, 10)  # what ONNX Runtime 1.20+ reads
    if props:
        helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def parity(y: np.ndarray, y_ref: np.ndarray, target_names, y_std, rtol: float, against: str) -> Parity:
    """Per target, in its unit: max and mean |y - y_ref| and the limit ``rtol`` x the target's
    std; passed when every max is within its limit and ``y`` is finite."""
    diff = np.abs(np.asarray(y, np.float64) - np.asarray(y_ref, np.float64))
    limit = rtol * np.asarray(y_std, dtype=np.float64)
    per_target = {t: {"max_abs_diff": float(diff[:, j].max()), "mean_abs_diff": float(diff[:, j].mean()),
                      "unit": target_unit(t), "limit": float(limit[j])} for j, t in enumerate(target_names)}
    passed = bool(np.isfinite(y).all()) and all(p["max_abs_diff"] <= p["limit"] for p in per_target.values())
    return Parity(per_target=per_target, passed=passed, rtol_of_target_std=rtol, n=len(y), against=against)


def remove_export(path: Path) -> None:
    """Remove ``path`` and its sidecar: a stale export beside a failed one would be read as this run's."""
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)


def write_export(proto: onnx.ModelProto, body: dict, out_path: Path) -> OnnxExport:
    """Write ``proto`` to ``out_path`` with the sha256 of ``body`` in its metadata_props, and
    ``body`` plus the file's sha256 and size to its sidecar (first); returns the sidecar."""
    body = json.loads(json.dumps(to_jsonable(body), allow_nan=False))  # hashed as it will be read back
    props = {p.key: p.value for p in proto.metadata_props}
    helper.set_model_props(proto, {**props, META_SIDECAR: sidecar_digest(body)})
    with atomic_path(out_path) as tmp:
        onnx.save(proto, str(tmp))
        sidecar = {**body, "onnx_sha256": file_sha256(tmp), "onnx_bytes": tmp.stat().st_size}
        write_json(sidecar_path(out_path), sidecar)
    return OnnxExport.model_validate(sidecar)


def export_model(model: DensePINN, scaler: Scaler, out_path: str | Path, x_raw: np.ndarray,
                 cfg: ExportConfig, *, source: Path, id_columns: list[str], feature_ranges: dict,
                 physics: dict | None = None) -> OnnxExport:
    """Write ``out_path`` (.onnx) and its sidecar when ONNX Runtime reproduces ``model`` (trained
    with ``scaler``) on the raw rows ``x_raw``, else raise a SpinnError, keeping no export.
    ``source``: its checkpoint; ``id_columns``: the input columns a prediction CSV keeps;
    ``feature_ranges``: the training split's ``{"min", "max"}``; ``physics``: ``physics_block``."""
    out_path = Path(out_path)
    props = {META_FEATURES: json.dumps(list(scaler.feature_names)),
             META_TARGETS: json.dumps(list(scaler.target_names))}
    proto = build_graph(fold_scaler(model, scaler), cfg.opset, props)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    y_ort = session.run(None, {INPUT_NAME: x_raw.astype(np.float32)})[0]
    with torch.inference_mode():
        y_torch = model.cpu().float()(torch.as_tensor(scaler.transform_x(x_raw))).numpy()
    checked = parity(y_ort, scaler.inverse_y(y_torch), scaler.target_names, scaler.y_std,
                     cfg.parity_rtol, "the PyTorch model, test split raw features")
    if not checked.passed:
        remove_export(out_path)
        raise SpinnError(f"{out_path.name}: ONNX Runtime does not reproduce {source.name} "
                         f"(per target {checked.per_target}); no export written")
    # Every key but FILE_KEYS, hashed whole into the model: a key added here is covered too.
    n_features, n_targets = len(scaler.feature_names), len(scaler.target_names)
    body = {
        "format": SIDECAR_FORMAT, "feature_names": list(scaler.feature_names),
        "targets": [{"name": t, "unit": target_unit(t)} for t in scaler.target_names],
        "id_columns": list(id_columns), "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
        "input_shape": ["batch", n_features], "output_shape": ["batch", n_targets],
        "input": "raw features, float32, shape (batch, n_features) in feature_names order",
        "output": ("targets in physical units, float32, shape (batch, n_targets)" if not physics or
                   physics.get("mode") != "hard" else "the body's wear rate and heat input, float32, in the "
                   "targets' units (y * std + mean); the physics head integrates them along each group"),
        "physics": physics or {"mode": "soft"},
        "feature_ranges": {**feature_ranges, "flag_factor": RANGE_FACTOR,
                           "flagged": "beyond min/max by more than flag_factor x (max - min)"},
        "hidden_dims": list(model.cfg.hidden_dims), "params": count_parameters(model), "opset": cfg.opset,
        "exporter": f"spinn_utils {__version__} (onnx.helper {onnx.__version__}), from torch {torch.__version__}",
        "onnxruntime_version": ort.__version__,
        "source_checkpoint": str(source), "source_sha256": file_sha256(source), "parity": checked,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return write_export(proto, body, out_path)


def physics_block(meta: dict, data: PreparedData) -> dict:
    """The sidecar's ``physics``: soft, or hard with the head's constants and the columns that
    give time order and power (what ``model.sequence_predictor`` needs)."""
    if not meta.get("physics_head"):
        return {"mode": "soft"}
    record = data.meta.get("physics") or {}
    config = data.meta.get("config") or {}
    return {"mode": "hard", "head": meta["physics_head"], "group_col": data.group_col,
            "time_col": data.time_col, "run_col": data.run_col or "",
            "run_gap_min": float(config.get("run_gap_min") or 0.0),
            "power_col": record.get("power_col") or "", "power_unit": record.get("power_unit", "A")}


def export_checkpoints(paths: ResultsPaths, data: PreparedData, cfg: ExportConfig) -> dict[str, OnnxExport]:
    """Export every variant that has an ONNX Runtime twin (``EXPORTED_VARIANTS``): {variant: sidecar}."""
    x_raw = data.frames["test"][data.feature_names].to_numpy(np.float64)
    train = data.frames["train"][data.feature_names]
    ranges = {"min": train.min().astype(float).tolist(), "max": train.max().astype(float).tolist(),
              "from": "train split"}
    id_columns = [c for c in (data.group_col, RUN_COL, data.time_col) if c in data.frames["test"]]
    out = {}
    for variant in EXPORTED_VARIANTS:
        source = paths.stored_checkpoint(variant)
        model, ckpt = load_dense_model(source, variant)
        if "scaler" not in ckpt.meta:
            raise SpinnError(f"{source} has no scaler in its meta; re-run notebook 02")
        scaler = Scaler.from_dict(ckpt.meta["scaler"])
        out[variant] = export_model(model, scaler, paths.export(variant), x_raw, cfg,
                                    source=source, id_columns=id_columns, feature_ranges=ranges,
                                    physics=physics_block(ckpt.meta, data))
    return out


def export_rows(sidecars: dict[str, OnnxExport]) -> list[dict]:
    """One row per export: file size, widths, parity per target (for display)."""
    return [{"export": f"{name}.onnx", "bytes": s.onnx_bytes, "hidden_dims": s.hidden_dims,
             **{f"max |diff| {t}": p["max_abs_diff"] for t, p in s.parity.per_target.items()},
             "parity": s.parity.passed} for name, s in sidecars.items()]
