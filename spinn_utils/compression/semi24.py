"""2:4 semi-structured sparsity for the benchmark's ``spinn_semi24`` variant (CUDA >= 8.0 only).

2 of every 4 weights along each row are kept and run on the sparse tensor cores in half
precision; shapes must fit the CUTLASS tile (rows % 32, cols % 64 for fp16). It is exactly 50%
sparse, so it is cut on top of the unstructured mask and its outputs are checked, not assumed.
Untested on a GPU: none was available. Reference: PyTorch's semi-structured (2:4) sparsity
tutorial (``torch.sparse.to_sparse_semi_structured``).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..core.errors import SpinnError
from ..model.mlp import DensePINN

SEMI24_DTYPES = (torch.float16, torch.bfloat16)  # the fast 2:4 kernels are half precision
SEMI24_MIN_SHAPE = (32, 64)  # fp16/bf16 CUTLASS: rows % 32, cols % 64 (torch semi_structured)


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
    """A 2:4 copy of ``model`` in ``dtype``: layers whose shape fits are cut to 2:4 by magnitude
    (so outputs differ from the masked model; validation says by how much), the others stay
    dense. Returns (model, ``{"semi24_layers", "dense_layers", "extra_pruned"}``); where 2:4
    cannot run, a SpinnError with ``semi_structured_supported``'s reason."""
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
