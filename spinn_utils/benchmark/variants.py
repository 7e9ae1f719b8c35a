"""The model variants a benchmark times (``load_variants``), what each stores and computes
(``describe_variant``), and whether it computes its reference (``check_outputs``: a fast wrong
variant is never timed). FLOPs and methods: docs/benchmarking.md.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import onnxruntime as ort
import torch
from torch import nn

from ..compression.run_models import RunModels, load_export, load_run_models
from ..compression.sparse import FORMATS, convert_dense_to_sparse, semi_structured_model
from ..core import registry
from ..core.errors import SpinnError, first_line
from ..core.paths import ResultsPaths
from ..core.registry import DENSE_STORAGE_VARIANTS, ORT_EXPORTS, ORT_VARIANTS, VARIANTS
from ..model import counting
from ..model.inference import first_float_tensor

INPUT_SEED = 0  # inputs are seeded so every run checks and times the same numbers
CHECK_ROWS = 256  # seeded inputs on which each variant's outputs are compared with its reference
# Largest |output - reference output| (scaled outputs, units of target std) that still matches:
# fp32 sparse vs masked sums the same terms in another order; fp16/bf16 (2:4) rounds at ~1e-3;
# int8 vs the fp32 model it was quantized from (QuantConfig.parity_rtol) catches a broken
# quantization, while accuracy itself is judged by test R2 (notebook 08).
ATOL = {"float32": 1e-4, "low_precision": 1e-2, "int8": 0.25}


@dataclass
class Variant:
    """One representation to time; ``module`` is None when it cannot run here (``skip_reason``)."""

    name: str
    module: nn.Module | None
    format: str  # "dense" (strided storage), a compression.sparse.FORMATS name, "semi24" or "onnx"
    reference: str  # the variant whose outputs this one must reproduce; its own name if none
    source: str = ""  # checkpoint path it came from
    skip_reason: str | None = None
    notes: dict = field(default_factory=dict)  # conversion details worth recording (2:4 layers)
    to_input: Callable | None = None  # the shared scaled input -> this variant's (ONNX: raw features)
    precision: str | None = None  # what the kernels compute in when not the weights' dtype ("int8")
    weight_bytes: int | None = None  # storage when not that of ``module`` (int8: the graph's weights)

    def input_for(self, x: torch.Tensor):
        """The variant's own form of the shared input tensor ``x`` (``x`` itself for PyTorch)."""
        return x if self.to_input is None else self.to_input(x)


def variant_dtype(module: nn.Module) -> torch.dtype:
    """The floating dtype of the module's weights (inputs are cast to it)."""
    return first_float_tensor(module).dtype


def describe_variant(variant: Variant) -> dict:
    """Format, dtype, storage bytes (values + indices + offsets), FLOPs and parameters."""
    module = variant.module
    return {"format": variant.format, "dtype": variant.precision or str(variant_dtype(module)).removeprefix("torch."),
            "storage_bytes": int(counting.storage_bytes(module) if variant.weight_bytes is None else variant.weight_bytes),
            "flops": int(counting.flops_per_sample(module)), "flops_nonzero": counting.flops_nonzero(module),
            "params": counting.count_parameters(module), "reference": variant.reference, "source": variant.source,
            **({"notes": variant.notes} if variant.notes else {})}


def make_inputs(batch_size: int, n_features: int, dtype: torch.dtype, device, seed: int) -> torch.Tensor:
    """Standard-normal inputs, like the scaled features the models were trained on; seeded."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, n_features, generator=gen)  # drawn on CPU: same values on any device
    return x.to(device=device, dtype=dtype)


def tolerance(variant: Variant) -> float:
    """The ``ATOL`` of what the variant computes in."""
    low = variant_dtype(variant.module) in (torch.float16, torch.bfloat16)
    return ATOL["int8" if variant.precision == "int8" else "low_precision" if low else "float32"]


def check_outputs(variants: list[Variant], device, n: int = CHECK_ROWS) -> dict:
    """{name: {"outputs_match", "max_abs_diff", "atol", "n"}}: each variant's outputs on ``n``
    seeded inputs against its reference's (its own: finite outputs match); ``{"error": message}``
    where its forward raised."""
    outs, report = {}, {}
    with torch.inference_mode():
        for v in variants:
            x = make_inputs(n, counting.input_features(v.module), variant_dtype(v.module), device, INPUT_SEED)
            try:
                outs[v.name] = v.module(x).float()
            except RuntimeError as err:  # a kernel this device/shape lacks (NotImplementedError too)
                if v.format == "dense":
                    raise  # plain Linear layers have every kernel: this is a bug, not a gap
                report[v.name] = {"error": first_line(err)}
    failed = set(report)
    for v in variants:
        if v.name in failed:
            continue
        out = outs[v.name]
        finite = bool(torch.isfinite(out).all())
        if v.reference == v.name:
            diff = 0.0
        elif v.reference in failed:
            report[v.name] = {"error": f"its reference {v.reference!r} failed to run"}
            continue
        elif v.reference not in outs:
            raise SpinnError(f"variant {v.name!r} names reference {v.reference!r}, which is not in the run")
        elif out.shape != outs[v.reference].shape:
            raise SpinnError(f"variant {v.name!r} outputs shape {tuple(out.shape)}, its reference "
                             f"{v.reference!r} {tuple(outs[v.reference].shape)}")
        else:
            diff = float((out - outs[v.reference]).abs().max())
        report[v.name] = {"outputs_match": finite and diff <= tolerance(v), "max_abs_diff": diff if finite else None,
                          "atol": tolerance(v), "n": n}
    return report


def _converted_variant(masked: nn.Module, fmt: str, device: torch.device, source: str) -> Variant:
    """The masked model in sparse format ``fmt`` on ``device``, or a skipped Variant saying why."""
    name = registry.sparse_variant(fmt)
    if fmt != registry.SEMI24_FORMAT:
        module = convert_dense_to_sparse(masked, format=fmt)  # new tensors; masked untouched
        return Variant(name, module.to(device).eval(), fmt, VARIANTS.masked, source)
    try:  # 2:4 runs only on CUDA >= 8.0 in half precision; the reason is recorded otherwise
        module, notes = semi_structured_model(masked, device)
    except (SpinnError, RuntimeError) as err:  # RuntimeError: torch's own 2:4 checks (shape, backend)
        return Variant(name, None, fmt, VARIANTS.masked, source, skip_reason=first_line(err))
    # The 2:4 cut removes weights the masked model keeps, so its outputs are checked, not assumed.
    return Variant(name, module.eval(), fmt, VARIANTS.masked, source, notes=notes)


def _ort_variant(name: str, paths: ResultsPaths, device: torch.device, run: RunModels | None) -> Variant:
    """An exported model in ONNX Runtime (CPU provider), or a skipped Variant saying why;
    ``run`` holds the PyTorch model it was exported from."""
    reference = ORT_VARIANTS[name]
    path = paths.export(ORT_EXPORTS[name])
    why = ("ONNX Runtime variants run on the CPU provider; notebook 07 times them" if device.type != "cpu"
           else None if path.is_file() else f"{path} not found: notebook 05.5 exports it")
    if why:
        return Variant(name, None, "onnx", reference, str(path), skip_reason=why)
    module = load_export(paths, name, run.models[reference], run.metas[reference])
    precision = module.predictor.meta.get("precision")  # "int8" for a quantized export
    notes = {"runtime": f"onnxruntime {ort.__version__}, CPUExecutionProvider",
             "intra_op_threads": "the thread count of each point", "inter_op_threads": 1,
             "onnx_bytes": path.stat().st_size, "input": "raw features; outputs in physical units"}
    weight_bytes = module.predictor.meta.get("weight_bytes")  # an int8 graph's, from its sidecar
    if precision:
        notes["quantization"] = module.predictor.meta.get("quantization", {}).get("mode")
        if weight_bytes is None:  # a sidecar without them: count the graph's weights (onnx takes ~1 s to import)
            import onnx
            weight_bytes = sum(onnx.numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)
    return Variant(name, module, "onnx", reference, str(path), notes=notes, to_input=module.raw_inputs,
                   precision=precision, weight_bytes=weight_bytes)


def load_variants(paths: ResultsPaths, device, formats: tuple[str, ...] = (*FORMATS, registry.SEMI24_FORMAT)) -> list[Variant]:
    """Every representation to benchmark on ``device``: dense, spinn_masked, the masked model in
    each of ``formats`` (compression.sparse.FORMATS or "semi24"), spinn_structured, then the ONNX
    Runtime exports of notebook 05.5 (CPU only). One that cannot run here carries a
    ``skip_reason`` instead of a module."""
    device = torch.device(device)
    known = (*FORMATS, registry.SEMI24_FORMAT)
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise SpinnError(f"unknown sparse format(s) {unknown}; known: {list(known)}")
    run = load_run_models(paths, DENSE_STORAGE_VARIANTS, device)
    # Dense-storage models are their own reference; sparse ones must reproduce spinn_masked.
    own = {name: Variant(name, run.models[name], "dense", name, str(run.paths[name]))
           for name in DENSE_STORAGE_VARIANTS}
    masked = own[VARIANTS.masked]
    converted = [_converted_variant(masked.module, fmt, device, masked.source) for fmt in formats]
    deployed = [_ort_variant(name, paths, device, run) for name in ORT_VARIANTS]
    return [own[VARIANTS.dense], masked, *converted, own[VARIANTS.structured], *deployed]
