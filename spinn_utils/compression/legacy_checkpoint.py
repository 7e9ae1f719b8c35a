"""The earlier pipeline's checkpoints: a plain ``state_dict`` of its ``nn.Sequential`` MLP.

Keys ``network.0.weight``, ``network.0.bias``, ... (widths read from the shapes); ``*_orig`` /
``*_mask`` pairs left by ``torch.nn.utils.prune`` are multiplied out. The state_dict does not
name its activation: the earlier pipeline used tanh. Used by the conversion (``convert.py``).
"""
from __future__ import annotations

import torch

from ..core.errors import SpinnError
from ..model.mlp import DensePINN, model_from_state_dict

LEGACY_ACTIVATION = "tanh"  # what the earlier pipeline's MLP used; its state_dict does not say


def fold_prune_masks(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``X_orig * X_mask`` -> ``X`` for tensors saved with ``torch.nn.utils.prune`` hooks attached."""
    out = {k: v for k, v in state.items() if not k.endswith(("_orig", "_mask"))}
    for key in (k for k in state if k.endswith("_orig")):
        base = key[: -len("_orig")]
        mask = state.get(base + "_mask")
        if mask is None or mask.shape != state[key].shape:
            raise SpinnError(f"{key} has no matching {base}_mask of shape {tuple(state[key].shape)}")
        out[base] = state[key] * mask
    return out


def legacy_model(state: dict[str, torch.Tensor], path, activation: str | None = None) -> DensePINN:
    """The eval-mode DensePINN a plain state_dict read from ``path`` describes."""
    try:
        model = model_from_state_dict(fold_prune_masks(state), activation or LEGACY_ACTIVATION)
    except SpinnError as err:
        raise SpinnError(f"{path}: {err}") from err
    return model.eval()
