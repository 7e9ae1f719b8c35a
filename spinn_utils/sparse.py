"""Sparse storage for pruned PINNs: SparseLinear (COO or CSR), SparsePINN, conversion, bytes.

The seed design (SEED_NOTES.md) stores each pruned weight as a coalesced
``torch.sparse_coo_tensor`` and computes ``torch.sparse.mm(W, x.t()).t() + b``; CSR is the
same layer with ``W.to_sparse_csr()``. Weights and biases are registered as *buffers* named
``weight`` and ``bias``, so ``.to()``, ``.double()`` and ``state_dict()`` see them (an earlier
version kept the weight as a plain attribute and ``.to(device)`` silently left it behind).

Storage is counted honestly: values *and* indices *and* offsets (BENCHMARKING.md). At 31.5 %
density a COO weight (two int64 indices per value) is ~1.6x larger than dense, and CSR with
int64 indices is about dense size; only the FLOPs shrink. Whether that is faster is measured
in bench.py, not assumed here.

References: PyTorch sparse docs (https://pytorch.org/docs/stable/sparse.html); semi-structured
2:4 sparsity tutorial (``torch.sparse.to_sparse_semi_structured``), which needs CUDA compute
capability >= 8.0.
"""
from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from .config import SpinnError
from .models import DensePINN, ModelConfig, make_activation

FORMATS = ("coo", "csr")  # SparseLinear layouts; "semi24" is separate (CUDA only, see below)
SEMI24_DTYPES = (torch.float16, torch.bfloat16)  # the fast 2:4 kernels are half precision
SEMI24_MIN_SHAPE = (32, 64)  # fp16/bf16 CUTLASS: rows % 32, cols % 64 (torch semi_structured)


def to_format(weight: torch.Tensor, format: str) -> torch.Tensor:
    """A 2-D weight (dense or sparse) in ``format``; exact zeros are not stored."""
    if format not in FORMATS:
        raise SpinnError(f"sparse format must be one of {FORMATS}, got {format!r}")
    if weight.dim() != 2 or not weight.is_floating_point():
        raise SpinnError(
            f"a sparse weight must be a 2-D float matrix, got shape {tuple(weight.shape)} "
            f"dtype {weight.dtype}"
        )
    # Via dense: drops stored zeros from any source layout; a 512x512 matrix costs ~1 MB.
    dense = weight.detach().to_dense() if weight.layout != torch.strided else weight.detach()
    if format == "coo":
        return dense.to_sparse_coo().coalesce()
    with warnings.catch_warnings():  # torch's once-per-process "CSR is beta" notice: tested here
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return dense.to_sparse_csr()


class SparseLinear(nn.Module):
    """``y = W x + b`` with ``W`` stored sparse (COO or CSR) as a buffer named ``weight``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, format: str = "coo"):
        super().__init__()
        self.format = format
        self.register_buffer("weight", to_format(weight, format))
        self.out_features, self.in_features = (int(n) for n in weight.shape)
        if bias is not None and tuple(bias.shape) != (self.out_features,):
            raise SpinnError(f"bias must have shape ({self.out_features},), got {tuple(bias.shape)}")
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @property
    def nnz(self) -> int:
        """Stored (non-zero) weight entries."""
        return int(self.weight._nnz())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # .contiguous(): sparse.mm is ~8x faster on a contiguous dense operand (measured
        # 188 -> 25 ms for a 512x512 COO layer at batch 1000); after the first layer x is a
        # transposed view, so x.t() is already contiguous and nothing is copied.
        y = torch.sparse.mm(self.weight, x.t().contiguous()).t()
        return y if self.bias is None else y + self.bias

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # The default loader copies in place, which needs the same nnz (CSR) or layout;
        # a pruned weight from another run has a different nnz, so replace the buffer.
        key = prefix + "weight"
        incoming = state_dict.get(key)
        if incoming is not None:
            if tuple(incoming.shape) != (self.out_features, self.in_features):
                error_msgs.append(
                    f"size mismatch for {key}: expected {(self.out_features, self.in_features)}, "
                    f"found {tuple(incoming.shape)}"
                )
            else:
                current = self.weight
                self._buffers["weight"] = to_format(
                    incoming.to(device=current.device, dtype=current.dtype), self.format
                )
            state_dict = {k: v for k, v in state_dict.items() if k != key}
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if incoming is not None and key in missing_keys:
            missing_keys.remove(key)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"format={self.format}, nnz={self.nnz}, bias={self.bias is not None}")


class SparsePINN(nn.Module):
    """DensePINN's forward with SparseLinear layers; state_dict keys match (``network.N.*``)."""

    def __init__(self, layers: Sequence[SparseLinear], activation: str = "tanh"):
        super().__init__()
        layers = list(layers)
        if not layers or not all(isinstance(m, SparseLinear) for m in layers):
            raise SpinnError("SparsePINN needs a non-empty list of SparseLinear layers")
        dims = [layers[0].in_features] + [m.out_features for m in layers]
        if any(a.out_features != b.in_features for a, b in zip(layers[:-1], layers[1:])):
            raise SpinnError(f"layer widths do not chain: {[(m.in_features, m.out_features) for m in layers]}")
        formats = {m.format for m in layers}
        if len(formats) != 1:
            raise SpinnError(f"all layers must share one format, found {sorted(formats)}")
        self.format = formats.pop()
        self.cfg = ModelConfig(dims[0], tuple(dims[1:-1]), dims[-1], activation)
        modules: list[nn.Module] = []
        for i, layer in enumerate(layers):
            modules.append(layer)
            if i < len(layers) - 1:  # activation between layers, none after the last
                modules.append(make_activation(activation))
        self.network = nn.Sequential(*modules)

    @property
    def dims(self) -> tuple[int, ...]:
        return self.cfg.dims

    @property
    def activation(self) -> str:
        return self.cfg.activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def convert_dense_to_sparse(model: DensePINN, format: str = "coo") -> SparsePINN:
    """A SparsePINN (eval mode, same device and dtype) computing what ``model`` computes.

    Args:
        model: a DensePINN, typically pruned (dense storage with zeros).
        format: ``"coo"`` (the seed's) or ``"csr"``.
    Returns:
        SparsePINN storing only the non-zero weights (biases stay dense).
    """
    if not isinstance(model, DensePINN):
        raise SpinnError(f"convert_dense_to_sparse needs a DensePINN, got {type(model).__name__}")
    layers = [
        SparseLinear(m.weight, m.bias, format) for m in model.network if isinstance(m, nn.Linear)
    ]
    return SparsePINN(layers, model.cfg.activation).eval()


def first_float_tensor(model: nn.Module) -> torch.Tensor:
    """The module's first floating-point parameter or buffer (its device and dtype)."""
    found = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if found:
        return found[0]
    raise SpinnError(f"{type(model).__name__} has no floating-point weights")


@torch.inference_mode()
def _outputs(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def validate_conversion(
    dense: nn.Module, sparse: nn.Module, inputs, atol: float = 1e-4, batch_size: int = 4096
) -> dict:
    """Compare two models' outputs on ``inputs`` in eval + inference mode, each on its own device.

    Args:
        dense: the reference (the pruned DensePINN).
        sparse: the converted model.
        inputs: (n, input_dim) array or tensor of standardised inputs.
        atol: largest allowed absolute difference in (scaled) outputs.
    Returns:
        ``{"max_abs_diff", "mean_abs_diff", "atol", "passed", "n"}``; non-finite outputs fail.
    """
    x = torch.as_tensor(inputs if torch.is_tensor(inputs) else np.asarray(inputs))
    in_dim = getattr(getattr(sparse, "cfg", None), "input_dim", x.shape[-1])
    if x.dim() != 2 or len(x) == 0 or x.shape[1] != in_dim:
        raise SpinnError(f"validation inputs must be (n >= 1, {in_dim}), got {tuple(x.shape)}")
    outputs = []
    for model in (dense, sparse):
        ref = first_float_tensor(model)
        was_training = model.training
        model.eval()
        try:
            y = _outputs(model, x.to(device=ref.device, dtype=ref.dtype), batch_size)
        finally:
            model.train(was_training)
        outputs.append(y.detach().cpu().double())
    y_dense, y_sparse = outputs
    if y_dense.shape != y_sparse.shape:
        raise SpinnError(f"output shapes differ: {tuple(y_dense.shape)} vs {tuple(y_sparse.shape)}")
    diff = (y_dense - y_sparse).abs()
    finite = bool(torch.isfinite(y_dense).all() and torch.isfinite(y_sparse).all())
    max_diff = float(diff.max())
    return {
        "max_abs_diff": max_diff if finite else float("nan"),
        "mean_abs_diff": float(diff.mean()) if finite else float("nan"),
        "atol": float(atol),
        "passed": finite and max_diff <= atol,
        "n": int(len(x)),
    }


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def storage_bytes(obj: torch.Tensor | nn.Module) -> int:
    """Every byte a weight takes: dense values; COO values + indices; CSR values + offsets + indices.

    For a module: the sum over its ``weight`` and ``bias`` tensors (parameters or buffers),
    each counted once. Semi-structured 2:4 tensors count packed values + metadata.
    """
    if isinstance(obj, nn.Module):
        seen: dict[int, torch.Tensor] = {}
        for name, t in list(obj.named_parameters()) + list(obj.named_buffers()):
            if name.rsplit(".", 1)[-1] in ("weight", "bias"):
                seen.setdefault(id(t), t)
        return sum(storage_bytes(t) for t in seen.values())
    t = obj.detach()
    if hasattr(t, "packed") and hasattr(t, "meta"):  # SparseSemiStructuredTensor
        parts = ("packed", "meta", "packed_t", "meta_t", "compressed_swizzled_bitmask")
        return sum(_nbytes(p) for p in (getattr(t, n, None) for n in parts) if p is not None)
    if t.layout == torch.strided:
        return _nbytes(t)
    if t.layout == torch.sparse_coo:
        return _nbytes(t._values()) + _nbytes(t._indices())
    if t.layout in (torch.sparse_csr, torch.sparse_bsr):
        return _nbytes(t.values()) + _nbytes(t.crow_indices()) + _nbytes(t.col_indices())
    if t.layout in (torch.sparse_csc, torch.sparse_bsc):
        return _nbytes(t.values()) + _nbytes(t.ccol_indices()) + _nbytes(t.row_indices())
    raise SpinnError(f"storage_bytes does not know layout {t.layout}")


def _weights_and_biases(model: nn.Module) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
    """(name, weight, bias) per Linear or SparseLinear layer, forward order."""
    return [
        (name, m.weight, m.bias)
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, SparseLinear))
    ]


def weight_storage_report(model: nn.Module, formats: Sequence[str] = FORMATS) -> dict:
    """Per-layer counts and bytes: as stored now, and as the model would take dense or in each format.

    Returns:
        ``{"per_layer": [{"layer", "shape", "layout", "total", "nonzero", "sparsity", "bias",
        "stored_bytes", "bias_bytes", "bytes": {"dense", fmt...}}], "total_bytes": int (as
        stored), "bytes_by_format": {"dense", fmt...}}``; totals include the (dense) biases.
    """
    rows = []
    totals = dict.fromkeys(("dense", *formats), 0)
    for name, w, b in _weights_and_biases(model):
        dense_w = w.detach().to_dense() if w.layout != torch.strided else w.detach()
        bias_bytes = 0 if b is None else storage_bytes(b)
        nonzero = int(torch.count_nonzero(dense_w))
        layer_bytes = {"dense": _nbytes(dense_w)}
        layer_bytes.update({f: storage_bytes(to_format(dense_w, f)) for f in formats})
        for key, n in layer_bytes.items():
            totals[key] += n + bias_bytes
        rows.append({
            "layer": name, "shape": list(dense_w.shape), "layout": str(w.layout).replace("torch.", ""),
            "total": dense_w.numel(), "nonzero": nonzero, "sparsity": 1.0 - nonzero / dense_w.numel(),
            "bias": 0 if b is None else b.numel(), "bias_bytes": bias_bytes,
            "stored_bytes": storage_bytes(w),  # weights only, as the model holds them now
            "bytes": layer_bytes,  # weights only, per format
        })
    stored = sum(r["stored_bytes"] + r["bias_bytes"] for r in rows)
    return {"per_layer": rows, "total_bytes": stored, "bytes_by_format": totals}


def flops_per_sample(module: nn.Module) -> int:
    """Multiply-adds x 2 per input row: dense Linear 2*in*out, sparse 2*nnz, 2:4 half; + bias adds."""
    flops = 0
    for _, w, b in _weights_and_biases(module):
        out_features, in_features = w.shape
        if isinstance(w, getattr(torch.sparse, "SparseSemiStructuredTensor", ())):
            flops += in_features * out_features  # 2 of every 4 weights kept: 2 * (in*out/2)
        elif w.layout != torch.strided:
            flops += 2 * int(w._nnz())
        else:
            flops += 2 * in_features * out_features  # dense kernels multiply the zeros too
        flops += 0 if b is None else out_features
    return flops


def semi_structured_supported(device, dtype: torch.dtype = torch.float16) -> tuple[bool, str]:
    """Whether 2:4 semi-structured sparsity can run here, and why not (one line)."""
    device = torch.device(device)
    if not hasattr(torch.sparse, "to_sparse_semi_structured"):
        return False, f"torch {torch.__version__} has no torch.sparse.to_sparse_semi_structured"
    if device.type != "cuda" or not torch.cuda.is_available():
        return False, f"2:4 semi-structured sparsity needs a CUDA GPU; device is {device}"
    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    if (major, minor) < (8, 0):
        return False, f"2:4 needs compute capability >= 8.0; {name} has {major}.{minor}"
    if dtype not in SEMI24_DTYPES:
        return False, f"2:4 fast path needs float16/bfloat16, got {dtype}"
    return True, f"supported on {name} (capability {major}.{minor})"


def two_four_mask(weight: torch.Tensor) -> torch.Tensor:
    """Boolean mask keeping the 2 largest |w| in every group of 4 along each row."""
    rows, cols = weight.shape
    if cols % 4:
        raise SpinnError(f"2:4 needs the input width divisible by 4, got {cols}")
    groups = weight.detach().abs().reshape(rows, cols // 4, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(-1, groups.topk(2, dim=-1).indices, True)
    return keep.reshape(rows, cols) & (weight.detach() != 0)


def semi_structured_model(model: DensePINN, device, dtype: torch.dtype = torch.float16):
    """UNTESTED ON GPU (none was available): a 2:4 copy of ``model`` for the bench's semi24 variant.

    Layers whose shape fits (rows % 32, cols % 64) are cut to 2:4 by magnitude (on top of the
    unstructured mask, so outputs differ from the masked model and validation says by how
    much) and stored with ``to_sparse_semi_structured``; the others stay dense in ``dtype``.

    Returns:
        (model, info) where info has ``"semi24_layers"``, ``"dense_layers"``, ``"extra_pruned"``.
    Raises:
        SpinnError: with ``semi_structured_supported``'s reason where 2:4 cannot run.
    """
    ok, reason = semi_structured_supported(device, dtype)
    if not ok:
        raise SpinnError(reason)
    semi = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    info = {"semi24_layers": [], "dense_layers": [], "extra_pruned": 0}
    for name, m in semi.named_modules():
        if not isinstance(m, nn.Linear):
            continue
        rows, cols = m.weight.shape
        if rows % SEMI24_MIN_SHAPE[0] or cols % SEMI24_MIN_SHAPE[1]:
            info["dense_layers"].append(name)
            continue
        keep = two_four_mask(m.weight)
        info["extra_pruned"] += int(torch.count_nonzero(m.weight)) - int(keep.sum())
        packed = torch.sparse.to_sparse_semi_structured((m.weight * keep).contiguous())
        m.weight = nn.Parameter(packed, requires_grad=False)
        info["semi24_layers"].append(name)
    return semi, info


def save_sparse_checkpoint(path: str | os.PathLike, model: SparsePINN, meta: dict | None = None):
    """Save ``model`` as kind "sparse"; meta gets ``model``, ``dims``, ``activation``, ``format``.

    Pass the source checkpoint's ``scaler``, ``feature_names`` and ``target_names`` in ``meta``.
    """
    if not isinstance(model, SparsePINN):
        raise SpinnError(f"save_sparse_checkpoint needs a SparsePINN, got {type(model).__name__}")
    full = {**(meta or {}), "model": model.cfg, "dims": list(model.dims),
            "activation": model.activation, "format": model.format}
    return save_checkpoint(path, model, kind="sparse", meta=full)


def load_sparse_model(path: str | os.PathLike) -> tuple[SparsePINN, Checkpoint]:
    """Load a kind-"sparse" checkpoint (weights_only) as an eval-mode SparsePINN on CPU.

    Returns:
        (model, checkpoint)
    """
    ckpt = load_checkpoint(path, "sparse")
    try:
        cfg = ModelConfig.from_dict(ckpt.meta["model"])
        format = ckpt.meta["format"]
    except (KeyError, TypeError) as err:
        raise SpinnError(f"{path}: sparse checkpoint meta lacks 'model' or 'format' ({err})") from err
    layers = []
    for i, (d_in, d_out) in enumerate(zip(cfg.dims[:-1], cfg.dims[1:])):
        prefix = f"network.{2 * i}."
        weight, bias = ckpt.state_dict.get(prefix + "weight"), ckpt.state_dict.get(prefix + "bias")
        if weight is None or tuple(weight.shape) != (d_out, d_in):
            found = None if weight is None else tuple(weight.shape)
            raise SpinnError(f"{path}: {prefix}weight should be {(d_out, d_in)}, found {found}")
        layers.append(SparseLinear(weight, bias, format))
    model = SparsePINN(layers, cfg.activation)
    expected = set(model.state_dict())
    if set(ckpt.state_dict) != expected:
        extra = sorted(set(ckpt.state_dict) ^ expected)
        raise SpinnError(f"{path}: state_dict keys do not match meta['model'] (differ: {extra[:4]})")
    return model.eval(), ckpt
