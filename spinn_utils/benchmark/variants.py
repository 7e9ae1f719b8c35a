"""The model variants a benchmark times, and what each one costs before it is timed.

``load_variants`` reads the checkpoints of notebooks 02/03 (through
``compression.run_models.load_run_models``) and builds every representation the pipeline produces: ``dense``, ``spinn_masked`` (dense
storage holding zeros), ``spinn_coo`` / ``spinn_csr`` (the masked model converted by
``compression.sparse.convert_dense_to_sparse``), ``spinn_semi24`` (``compression.semi24``: 2:4
in fp16, CUDA capability >= 8.0 only) and ``spinn_structured`` (spinn_structured.pt,
physically smaller layers). ``describe_variant`` counts what each one
stores and computes; ``check_outputs`` proves a converted variant still computes the model it
came from, so a fast but wrong variant can never be reported as a win (docs/benchmarking.md).

FLOPs count one multiply and one add per stored weight the kernel touches, plus one add per
bias; activations are not counted. A dense kernel touches every weight, zeros included, so
the masked model is charged the dense FLOPs (``flops``) and its useful work is reported
separately (``flops_nonzero``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import onnxruntime as ort
import torch
from torch import nn

from ..compression.quantize import initializer_bytes
from ..compression.run_models import RunModels, load_export, load_run_models
from ..compression.semi24 import semi_structured_model
from ..compression.sparse import FORMATS, convert_dense_to_sparse
from ..core.errors import SpinnError, first_line
from ..core.paths import ResultsPaths
from ..core.registry import (
    DENSE_STORAGE_VARIANTS,
    ORT_EXPORTS,
    ORT_VARIANTS,
    SEMI24_FORMAT,
    VARIANTS,
    sparse_variant,
)
from ..model.counting import (
    count_parameters,
    flops_nonzero,
    flops_per_sample,
    input_features,
    storage_bytes,
)
from ..model.inference import first_float_tensor

LOW_PRECISION = (torch.float16, torch.bfloat16)
INPUT_SEED = 0  # inputs are seeded so every run checks and times the same numbers
CHECK_ROWS = 256  # seeded inputs on which each variant's outputs are compared with its reference
# Largest |output - reference output| (scaled outputs, units of target std) that still matches:
# fp32 sparse vs masked sums the same terms in another order; fp16/bf16 (2:4) rounds at ~1e-3;
# int8 vs the fp32 model it was quantized from (QuantConfig.parity_rtol) catches a broken
# quantization, while accuracy itself is judged by test R2 (notebook 08).
ATOL = {"float32": 1e-4, "low_precision": 1e-2, "int8": 0.25}


@dataclass
class Variant:
    """One representation to time; ``module`` is None when it cannot run here (see skip_reason)."""

    name: str
    module: nn.Module | None
    format: str  # "dense" (strided storage), a compression.sparse.FORMATS name, "semi24" or "onnx"
    reference: str  # the variant whose outputs this one must reproduce; its own name if none
    source: str = ""  # checkpoint path it came from
    skip_reason: str | None = None
    notes: dict = field(default_factory=dict)  # conversion details worth recording (2:4 layers)
    # The call that is timed when it is not ``module(x)`` (ONNX Runtime: raw features in) and
    # how the shared scaled input becomes its input; both applied outside the timed region.
    timed: Callable | None = None
    to_input: Callable | None = None
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
    return {
        "format": variant.format,
        "dtype": variant.precision or str(variant_dtype(module)).removeprefix("torch."),
        "storage_bytes": int(storage_bytes(module) if variant.weight_bytes is None else variant.weight_bytes),
        "flops": int(flops_per_sample(module)),  # what the kernels execute, zeros included
        "flops_nonzero": flops_nonzero(module),
        "params": count_parameters(module),
        "reference": variant.reference,
        "source": variant.source,
        **({"notes": variant.notes} if variant.notes else {}),
    }


def make_inputs(batch_size: int, n_features: int, dtype: torch.dtype, device, seed: int) -> torch.Tensor:
    """Standard-normal inputs, like the scaled features the models were trained on; seeded."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, n_features, generator=gen)  # drawn on CPU: same values on any device
    return x.to(device=device, dtype=dtype)


def tolerance(variant: Variant) -> float:
    """The ``ATOL`` of what the variant computes in."""
    if variant.precision == "int8":
        return ATOL["int8"]
    return ATOL["low_precision"] if variant_dtype(variant.module) in LOW_PRECISION else ATOL["float32"]


def check_outputs(variants: list[Variant], device, n: int = CHECK_ROWS) -> dict:
    """Compare each variant's outputs with its reference variant's on ``n`` seeded inputs.

    Returns:
        {name: {"outputs_match", "max_abs_diff", "atol", "n"}}; a variant that is its own
        reference matches when its outputs are finite. A variant whose forward raised gets
        ``{"error": message}`` instead (it cannot be timed).
    """
    outs, report = {}, {}
    with torch.inference_mode():
        for v in variants:
            x = make_inputs(n, input_features(v.module), variant_dtype(v.module), device, INPUT_SEED)
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
        tol = tolerance(v)
        finite = bool(torch.isfinite(out).all())
        if v.reference == v.name:
            diff = 0.0
        elif v.reference in failed:
            report[v.name] = {"error": f"its reference {v.reference!r} failed to run"}
            continue
        elif v.reference not in outs:
            raise SpinnError(f"variant {v.name!r} names reference {v.reference!r}, which is not in the run")
        elif out.shape != outs[v.reference].shape:
            raise SpinnError(
                f"variant {v.name!r} outputs shape {tuple(out.shape)}, its reference "
                f"{v.reference!r} {tuple(outs[v.reference].shape)}"
            )
        else:
            diff = float((out - outs[v.reference]).abs().max())
        report[v.name] = {
            "outputs_match": finite and diff <= tol,
            "max_abs_diff": diff if finite else None,
            "atol": tol,
            "n": n,
        }
    return report


def _converted_variant(masked: nn.Module, fmt: str, device: torch.device, source: str) -> Variant:
    """The masked model in sparse format ``fmt`` on ``device``, or a skipped Variant saying why."""
    name = sparse_variant(fmt)
    if fmt != SEMI24_FORMAT:
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
    if device.type != "cpu":
        return Variant(name, None, "onnx", reference, str(path), skip_reason=(
            "ONNX Runtime variants run on the CPU provider; notebook 07 times them"))
    if not path.is_file():
        return Variant(name, None, "onnx", reference, str(path), skip_reason=(
            f"{path} not found: notebook 05.5 exports it"))
    module = load_export(paths, name, run.models[reference], run.metas[reference])
    precision = module.predictor.meta.get("precision")  # "int8" for a quantized export
    notes = {"runtime": f"onnxruntime {ort.__version__}, CPUExecutionProvider",
             "intra_op_threads": "torch.get_num_threads() of each measurement", "inter_op_threads": 1,
             "onnx_bytes": path.stat().st_size, "input": "raw features; outputs in physical units"}
    if precision:
        notes["quantization"] = module.predictor.meta.get("quantization", {}).get("mode")
    return Variant(name, module, "onnx", reference, str(path), notes=notes, timed=module.run_raw,
                   to_input=module.raw_inputs, precision=precision,
                   weight_bytes=initializer_bytes(path) if precision else None)


def load_variants(paths: ResultsPaths, device, formats: tuple[str, ...] = (*FORMATS, SEMI24_FORMAT)) -> list[Variant]:
    """Every representation to benchmark, built from the checkpoints of notebooks 02 and 03.

    Args:
        paths: the run whose dense, spinn_masked and spinn_structured checkpoints to load.
        device: the device to time on (semi-structured 2:4 support depends on it).
        formats: what to convert the masked model to: names in compression.sparse.FORMATS, or
            "semi24" (skipped, with the reason recorded, where 2:4 cannot run).

    Returns:
        Variants in the order dense, spinn_masked, spinn_<format>..., spinn_structured, then
        the ONNX Runtime exports of notebook 05.5 (CPU only); ones that cannot run on
        ``device`` carry a ``skip_reason`` instead of a module.
    """
    device = torch.device(device)
    known = (*FORMATS, SEMI24_FORMAT)
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
