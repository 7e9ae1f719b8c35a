"""The model variants a benchmark times, and what each one costs before it is timed.

``load_variants`` reads the checkpoints of notebooks 02/03 and builds every representation
the pipeline produces: ``dense`` (dense_pinn.pt), ``spinn_masked`` (spinn_pruned.pt, dense
storage holding zeros), ``spinn_coo`` / ``spinn_csr`` (the masked model converted by
``sparse.convert_dense_to_sparse``), ``spinn_semi24`` (``sparse.semi_structured_model``: 2:4
in fp16, CUDA capability >= 8.0 only) and ``spinn_structured`` (spinn_structured.pt,
physically smaller layers). ``describe_variant`` counts what each one
stores and computes; ``check_outputs`` proves a converted variant still computes the model it
came from, so a fast but wrong variant can never be reported as a win (BENCHMARKING.md).

FLOPs count one multiply and one add per stored weight the kernel touches, plus one add per
bias; activations are not counted. A dense kernel touches every weight, zeros included, so
the masked model is charged the dense FLOPs (``flops``) and its useful work is reported
separately (``flops_nonzero``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import sparse
from .checkpoints import load_dense_model
from .config import ResultsPaths, SpinnError
from .models import count_parameters

# The dense-storage checkpoints a benchmark reads, as (variant name, checkpoint file, kind).
DENSE_STORAGE_VARIANTS = (
    ("dense", "dense_pinn", "dense"),
    ("spinn_masked", "spinn_pruned", "pruned"),
    ("spinn_structured", "spinn_structured", "structured"),
)
LOW_PRECISION = (torch.float16, torch.bfloat16)
SEMI24 = "semi24"  # 2:4 semi-structured: built by sparse.semi_structured_model, not a SparseLinear


@dataclass
class Variant:
    """One representation to time; ``module`` is None when it cannot run here (see skip_reason)."""

    name: str
    module: nn.Module | None
    format: str  # "dense" (strided storage), a sparse.FORMATS name or "semi24"
    reference: str  # the variant whose outputs this one must reproduce; its own name if none
    source: str = ""  # checkpoint path it came from
    skip_reason: str | None = None
    notes: dict = field(default_factory=dict)  # conversion details worth recording (2:4 layers)


def variant_dtype(module: nn.Module) -> torch.dtype:
    """The floating dtype of the module's weights (inputs are cast to it)."""
    return sparse.first_float_tensor(module).dtype


def weight_bias_pairs(module: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(weight, bias) of every layer that owns a 2-D ``weight`` (parameter or buffer), in order."""
    pairs = []
    for m in module.modules():
        own = dict(m.named_parameters(recurse=False))
        own.update(m.named_buffers(recurse=False))
        weight = own.get("weight")
        if weight is not None and weight.dim() == 2:
            pairs.append((weight.detach(), own.get("bias")))
    return pairs


def input_features(module: nn.Module) -> int:
    """Width of the input the first layer expects."""
    pairs = weight_bias_pairs(module)
    if not pairs:
        raise SpinnError(f"{type(module).__name__} has no layer with a 2-D weight")
    return int(pairs[0][0].shape[1])


def _dense_view(weight: torch.Tensor) -> torch.Tensor:
    """The weight as a strided tensor (sparse and 2:4 tensors support few ops directly)."""
    semi = isinstance(weight, torch.sparse.SparseSemiStructuredTensor)
    return weight.to_dense() if semi or weight.layout != torch.strided else weight


def flops_nonzero(module: nn.Module) -> int:
    """FLOPs per sample on non-zero weights only (2 per non-zero weight + 1 per bias): useful work."""
    total = 0
    for weight, bias in weight_bias_pairs(module):
        total += 2 * int(torch.count_nonzero(_dense_view(weight))) + (0 if bias is None else int(bias.numel()))
    return total


def params_of(module: nn.Module) -> dict:
    """``models.count_parameters``; for 2:4 weights (no count_nonzero op) the same count via dense views."""
    pairs = weight_bias_pairs(module)
    if not any(isinstance(w, torch.sparse.SparseSemiStructuredTensor) for w, _ in pairs):
        return count_parameters(module)
    tensors = [t for w, b in pairs for t in (_dense_view(w), b) if t is not None]
    total = sum(t.numel() for t in tensors)
    nonzero = sum(int(torch.count_nonzero(t)) for t in tensors)
    return {"total": total, "nonzero": nonzero, "sparsity": 1.0 - nonzero / total if total else 0.0}


def describe_variant(variant: Variant) -> dict:
    """Format, dtype, storage bytes (values + indices + offsets), FLOPs and parameters."""
    module = variant.module
    return {
        "format": variant.format,
        "dtype": str(variant_dtype(module)).removeprefix("torch."),
        "storage_bytes": int(sparse.storage_bytes(module)),
        "flops": int(sparse.flops_per_sample(module)),  # what the kernels execute, zeros included
        "flops_nonzero": flops_nonzero(module),
        "params": params_of(module),
        "reference": variant.reference,
        "source": variant.source,
        **({"notes": variant.notes} if variant.notes else {}),
    }


def make_inputs(batch_size: int, n_features: int, dtype: torch.dtype, device, seed: int) -> torch.Tensor:
    """Standard-normal inputs, like the scaled features the models were trained on; seeded."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, n_features, generator=gen)  # drawn on CPU: same values on any device
    return x.to(device=device, dtype=dtype)


def check_outputs(variants: list[Variant], device, n: int, atol: float, atol_low_precision: float, seed: int = 0) -> dict:
    """Compare each variant's outputs with its reference variant's on ``n`` seeded inputs.

    Returns:
        {name: {"outputs_match", "max_abs_diff", "atol", "n"}}; a variant that is its own
        reference matches when its outputs are finite. A variant whose forward raised gets
        ``{"error": message}`` instead (it cannot be timed).
    """
    outs, report = {}, {}
    with torch.inference_mode():
        for v in variants:
            x = make_inputs(n, input_features(v.module), variant_dtype(v.module), device, seed)
            try:
                outs[v.name] = v.module(x).float()
            except RuntimeError as err:  # a kernel this device/shape lacks (NotImplementedError too)
                if v.format == "dense":
                    raise  # plain Linear layers have every kernel: this is a bug, not a gap
                report[v.name] = {"error": (str(err).strip().splitlines() or [type(err).__name__])[0]}
    failed = set(report)
    for v in variants:
        if v.name in failed:
            continue
        out = outs[v.name]
        tol = atol_low_precision if variant_dtype(v.module) in LOW_PRECISION else atol
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
    name = f"spinn_{fmt}"
    if fmt != SEMI24:
        module = sparse.convert_dense_to_sparse(masked, format=fmt)  # new tensors; masked untouched
        return Variant(name, module.to(device).eval(), fmt, "spinn_masked", source)
    try:  # 2:4 runs only on CUDA >= 8.0 in half precision; the reason is recorded otherwise
        module, notes = sparse.semi_structured_model(masked, device)
    except (SpinnError, RuntimeError) as err:  # RuntimeError: torch's own 2:4 checks (shape, backend)
        return Variant(name, None, fmt, "spinn_masked", source, skip_reason=str(err).strip().split("\n")[0])
    # The 2:4 cut removes weights the masked model keeps, so its outputs are checked, not assumed.
    return Variant(name, module.eval(), fmt, "spinn_masked", source, notes=notes)


def load_variants(paths: ResultsPaths, device, formats: tuple[str, ...] = ("coo", "csr", "semi24")) -> list[Variant]:
    """Every representation to benchmark, built from the checkpoints of notebooks 02 and 03.

    Args:
        paths: where dense_pinn.pt, spinn_pruned.pt and spinn_structured.pt live.
        device: the device to time on (semi-structured 2:4 support depends on it).
        formats: what to convert the masked model to: names in sparse.FORMATS, or
            "semi24" (skipped, with the reason recorded, where 2:4 cannot run).

    Returns:
        Variants in the order dense, spinn_masked, spinn_<format>..., spinn_structured;
        ones that cannot run on ``device`` carry a ``skip_reason`` instead of a module.
    """
    device = torch.device(device)
    known = (*sparse.FORMATS, SEMI24)
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise SpinnError(f"unknown sparse format(s) {unknown}; known: {list(known)}")
    loaded = {}
    for name, file, kind in DENSE_STORAGE_VARIANTS:
        path = paths.checkpoint(file)
        model, _ = load_dense_model(path, kind)
        loaded[name] = (model.to(device).eval(), str(Path(path)))
    # Dense-storage models are their own reference; sparse ones must reproduce spinn_masked.
    own = {name: Variant(name, model, "dense", name, src) for name, (model, src) in loaded.items()}
    masked, masked_source = loaded["spinn_masked"]
    converted = [_converted_variant(masked, fmt, device, masked_source) for fmt in formats]
    return [own["dense"], own["spinn_masked"], *converted, own["spinn_structured"]]
