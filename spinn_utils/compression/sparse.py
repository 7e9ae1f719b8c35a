"""Sparse storage for pruned PINNs: SparseLinear (COO or CSR) and SparsePINN, conversion,
validation, bytes per format, and the benchmark's 2:4 semi-structured copy (CUDA only, cut on top
of the mask, so its outputs are checked). docs/original_design.md gives the design (weights and
biases are buffers), docs/benchmarking.md what 2:4 needs and that it has not yet run on a GPU.
"""
from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..core.errors import SpinnError
from ..core.registry import sparse_variant
from ..model.checkpoints import Checkpoint, checked_config, load_checkpoint, save_checkpoint
from ..model.counting import dense_view, storage_bytes, weight_bias_pairs, weighted_layers
from ..model.inference import batched_forward, first_float_tensor
from ..model.mlp import DensePINN, ModelConfig, load_strict, mlp_network

FORMATS = ("coo", "csr")  # SparseLinear layouts; 2:4 semi-structured is semi_structured_model's
SEMI24_MIN_SHAPE = (32, 64)  # fp16/bf16 CUTLASS: rows % 32, cols % 64 (torch semi_structured)


def to_format(weight: torch.Tensor, format: str) -> torch.Tensor:
    """A 2-D weight (dense or sparse) in ``format``; exact zeros are not stored."""
    if format not in FORMATS:
        raise SpinnError(f"sparse format must be one of {FORMATS}, got {format!r}")
    if weight.dim() != 2 or not weight.is_floating_point():
        raise SpinnError(f"a sparse weight must be a 2-D float matrix, got shape "
                         f"{tuple(weight.shape)} dtype {weight.dtype}")
    dense = dense_view(weight)  # via dense: drops stored zeros from any layout (~1 MB at 512x512)
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

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        # The default loader copies in place, which needs the same layout and nnz: a weight from
        # another run (or a dense one) replaces the buffer first, in this layer's format.
        key = prefix + "weight"
        if key in state_dict and tuple(state_dict[key].shape) == tuple(self.weight.shape):
            weight = state_dict[key].to(self.weight.device, self.weight.dtype)
            state_dict[key] = self._buffers["weight"] = to_format(weight, self.format)
        super()._load_from_state_dict(state_dict, prefix, *args)

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
        self.cfg = ModelConfig(input_dim=dims[0], hidden_dims=dims[1:-1], output_dim=dims[-1],
                               activation=activation)
        self.network = mlp_network(layers, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def convert_dense_to_sparse(model: DensePINN, format: str = "coo") -> SparsePINN:
    """A SparsePINN (eval mode, same device and dtype) computing what the (pruned) DensePINN
    ``model`` computes, storing only its non-zero weights in ``format`` (biases stay dense)."""
    if not isinstance(model, DensePINN):
        raise SpinnError(f"convert_dense_to_sparse needs a DensePINN, got {type(model).__name__}")
    layers = [SparseLinear(m.weight, m.bias, format) for m in model.network if isinstance(m, nn.Linear)]
    return SparsePINN(layers, model.cfg.activation).eval()


def validate_conversion(dense: nn.Module, sparse: nn.Module, inputs, atol: float = 1e-4) -> dict:
    """Compare the outputs of ``dense`` (the reference) and ``sparse`` on (n, input_dim)
    standardised ``inputs`` in eval + inference mode, each on its own device: ``{"max_abs_diff",
    "mean_abs_diff", "atol", "passed", "n"}``; non-finite outputs fail."""
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
            y = batched_forward(model, x.to(device=ref.device, dtype=ref.dtype), batch_size=4096)
        finally:
            model.train(was_training)
        outputs.append(y.detach().cpu().double())
    y_dense, y_sparse = outputs
    if y_dense.shape != y_sparse.shape:
        raise SpinnError(f"output shapes differ: {tuple(y_dense.shape)} vs {tuple(y_sparse.shape)}")
    diff = (y_dense - y_sparse).abs()
    finite = bool(torch.isfinite(y_dense).all() and torch.isfinite(y_sparse).all())
    max_diff = float(diff.max())
    return {"max_abs_diff": max_diff if finite else float("nan"),
            "mean_abs_diff": float(diff.mean()) if finite else float("nan"), "atol": float(atol),
            "passed": finite and max_diff <= atol, "n": int(len(x))}


def save_sparse_checkpoint(path: str | os.PathLike, model: SparsePINN, meta: dict | None = None):
    """Save ``model`` with its format's variant as kind (``spinn_coo``); meta (the source's
    ``scaler``, names, ...) gets ``model`` (its ModelConfig) and ``format``."""
    if not isinstance(model, SparsePINN):
        raise SpinnError(f"save_sparse_checkpoint needs a SparsePINN, got {type(model).__name__}")
    full = {**(meta or {}), "model": model.cfg, "format": model.format}
    return save_checkpoint(path, model, kind=sparse_variant(model.format), meta=full)


def load_sparse_model(path: str | os.PathLike, variant: str | None = None) -> tuple[SparsePINN, Checkpoint]:
    """(eval-mode SparsePINN on CPU, checkpoint) of a sparse checkpoint; ``variant``
    (``spinn_coo``) is the one expected, None takes any sparse format."""
    ckpt = load_checkpoint(path, variant or tuple(sparse_variant(f) for f in FORMATS))
    cfg = checked_config(ckpt)
    if ckpt.meta.get("format") not in FORMATS:
        raise SpinnError(f"{path}: sparse checkpoint meta lacks a 'format' in {FORMATS}")
    layers = [SparseLinear(torch.zeros(b, a), torch.zeros(b), ckpt.meta["format"])
              for a, b in zip(cfg.dims[:-1], cfg.dims[1:])]
    model = load_strict(SparsePINN(layers, cfg.activation), ckpt.state_dict,
                        f"{path}: weights do not match meta['model']")
    return model.eval(), ckpt


def weight_storage_report(model: nn.Module, formats: Sequence[str] = FORMATS) -> dict:
    """Per-layer counts and bytes: as stored now, and as the model would take dense or in each format.

    Returns ``{"per_layer": [{"layer", "shape", "layout", "total", "nonzero", "sparsity", "bias",
    "bias_bytes", "stored_bytes", "bytes": {"dense", fmt...}}], "bytes_by_format": {"dense",
    fmt...}}``; totals include the (dense) biases, per-layer bytes not.
    """
    rows = []
    totals = dict.fromkeys(("dense", *formats), 0)
    for (name, _), (w, b) in zip(weighted_layers(model), weight_bias_pairs(model)):
        dense_w = dense_view(w)
        bias_bytes = 0 if b is None else storage_bytes(b)
        nonzero = int(torch.count_nonzero(dense_w))
        layer_bytes = {"dense": storage_bytes(dense_w)}
        layer_bytes.update({f: storage_bytes(to_format(dense_w, f)) for f in formats})
        for key, n in layer_bytes.items():
            totals[key] += n + bias_bytes
        rows.append({
            "layer": name, "shape": list(dense_w.shape), "layout": str(w.layout).replace("torch.", ""),
            "total": dense_w.numel(), "nonzero": nonzero, "sparsity": 1.0 - nonzero / dense_w.numel(),
            "bias": 0 if b is None else b.numel(), "bias_bytes": bias_bytes,
            "stored_bytes": storage_bytes(w), "bytes": layer_bytes,
        })
    return {"per_layer": rows, "bytes_by_format": totals}


def semi_structured_supported(device) -> tuple[bool, str]:
    """Whether 2:4 semi-structured sparsity (float16) can run here, and why not (one line)."""
    device = torch.device(device)
    if not hasattr(torch.sparse, "to_sparse_semi_structured"):
        return False, f"torch {torch.__version__} has no torch.sparse.to_sparse_semi_structured"
    if device.type != "cuda" or not torch.cuda.is_available():
        return False, f"2:4 semi-structured sparsity needs a CUDA GPU; device is {device}"
    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    if (major, minor) < (8, 0):
        return False, f"2:4 needs compute capability >= 8.0; {name} has {major}.{minor}"
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


def semi_structured_model(model: DensePINN, device):
    """A 2:4 copy of ``model`` in float16 (the fast kernels' precision): layers whose shape fits
    are cut to 2:4 by magnitude (so outputs differ from the masked model; validation says by how
    much), the others stay dense. Returns (model, ``{"semi24_layers", "dense_layers",
    "extra_pruned"}``); where 2:4 cannot run, a SpinnError with ``semi_structured_supported``'s
    reason."""
    ok, reason = semi_structured_supported(device)
    if not ok:
        raise SpinnError(reason)
    semi = copy.deepcopy(model).to(device=device, dtype=torch.float16).eval()
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
