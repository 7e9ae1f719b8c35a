"""What a model stores and computes: its layers, parameters, bytes and FLOPs, counted once. A
layer is any module owning a 2-D ``weight`` (dense, COO/CSR buffer or 2:4), so one enumeration
serves every storage.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.errors import SpinnError
from ..core.results_schema import ParamCount


def is_semi_structured(t: torch.Tensor) -> bool:
    """True for a 2:4 ``SparseSemiStructuredTensor`` (which supports few ops directly)."""
    return isinstance(t, getattr(torch.sparse, "SparseSemiStructuredTensor", ()))


def dense_view(t: torch.Tensor) -> torch.Tensor:
    """``t`` as a strided tensor (sparse and 2:4 weights are densified, strided ones returned)."""
    t = t.detach()
    return t.to_dense() if is_semi_structured(t) or t.layout != torch.strided else t


def _own(module: nn.Module, name: str) -> torch.Tensor | None:
    """The module's own parameter or buffer ``name`` (not a submodule's), or None."""
    return module._parameters.get(name, module._buffers.get(name))


def weighted_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every submodule owning a 2-D ``weight`` (parameter or buffer), in order."""
    return [(name, m) for name, m in module.named_modules()
            if _own(m, "weight") is not None and _own(m, "weight").dim() == 2]


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's dense ``nn.Linear`` layers in forward order."""
    return [m for _, m in weighted_layers(model) if isinstance(m, nn.Linear)]


def weight_bias_pairs(module: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(weight, bias) of every layer, detached, in forward order."""
    pairs = [(_own(m, "weight"), _own(m, "bias")) for _, m in weighted_layers(module)]
    return [(w.detach(), None if b is None else b.detach()) for w, b in pairs]


def input_features(module: nn.Module) -> int:
    """Width of the input the first layer expects."""
    pairs = weight_bias_pairs(module)
    if not pairs:
        raise SpinnError(f"{type(module).__name__} has no layer with a 2-D weight")
    return int(pairs[0][0].shape[1])


def mlp_parameters(dims: tuple[int, ...]) -> int:
    """Weights plus biases of an MLP with layer widths ``dims`` (input ... output)."""
    return sum(d_in * d_out + d_out for d_in, d_out in zip(dims[:-1], dims[1:]))


def count_parameters(model: nn.Module) -> ParamCount:
    """Total and non-zero parameters of every layer's weight and bias, each counted once (a
    sparse weight stands for its dense shape); masks and other buffers are not parameters."""
    tensors = [dense_view(t) for pair in weight_bias_pairs(model) for t in pair if t is not None]
    total = sum(t.numel() for t in tensors)
    nonzero = sum(int(torch.count_nonzero(t)) for t in tensors)
    return ParamCount(total=total, nonzero=nonzero, sparsity=1.0 - nonzero / total if total else 0.0)


def storage_bytes(obj: torch.Tensor | nn.Module) -> int:
    """Every byte a weight takes: dense values; COO values + indices; CSR values + offsets +
    indices; 2:4 packed values + metadata. For a module: the sum over its weights and biases."""
    if isinstance(obj, nn.Module):
        return sum(storage_bytes(t) for pair in weight_bias_pairs(obj) for t in pair if t is not None)
    t = obj.detach()
    if is_semi_structured(t):
        parts = ("packed", "meta", "packed_t", "meta_t", "compressed_swizzled_bitmask")
        return sum(p.nbytes for p in (getattr(t, n, None) for n in parts) if p is not None)
    if t.layout == torch.strided:
        return t.nbytes
    if t.layout == torch.sparse_coo:
        return t._values().nbytes + t._indices().nbytes
    if t.layout == torch.sparse_csr:
        return t.values().nbytes + t.crow_indices().nbytes + t.col_indices().nbytes
    raise SpinnError(f"storage_bytes does not know layout {t.layout}")


def flops_per_sample(module: nn.Module) -> int:
    """What the kernels execute per input row: dense 2*in*out, sparse 2*nnz, 2:4 half; + bias adds."""
    flops = 0
    for w, b in weight_bias_pairs(module):
        out_features, in_features = w.shape
        if is_semi_structured(w):
            flops += in_features * out_features  # 2 of every 4 weights kept: 2 * (in*out/2)
        elif w.layout != torch.strided:
            flops += 2 * int(w._nnz())
        else:
            flops += 2 * in_features * out_features  # dense kernels multiply the zeros too
        flops += 0 if b is None else out_features
    return flops


def flops_nonzero(module: nn.Module) -> int:
    """FLOPs per sample on non-zero weights only (2 per non-zero weight + 1 per bias): useful work."""
    return sum(2 * int(torch.count_nonzero(dense_view(w))) + (0 if b is None else int(b.numel()))
               for w, b in weight_bias_pairs(module))
