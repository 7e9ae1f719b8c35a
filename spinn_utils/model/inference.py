"""Running a trained model: batched forward passes, predictions and scores in physical units."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core.errors import SpinnError
from ..core.metrics import regression_report
from ..data.dataset import PreparedData
from .sequence_head import body_of, head_of
from .sequences import sequence_of


def first_float_tensor(model: nn.Module) -> torch.Tensor:
    """The module's first floating-point parameter or buffer (its device and dtype)."""
    found = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if found:
        return found[0]
    raise SpinnError(f"{type(model).__name__} has no floating-point weights")


@torch.inference_mode()
def batched_forward(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``model(x)`` in chunks of ``batch_size`` rows (bounds memory, not results)."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def predict(model: nn.Module, X_scaled: np.ndarray, device: str | torch.device = "cpu",
            batch_size: int = 4096, sequence: np.ndarray | None = None) -> np.ndarray:
    """Model outputs (scaled units, float32) for standardised inputs, in eval and inference mode
    on ``device`` (the model is moved there). A hard-physics model needs ``sequence``
    (``sequences.sequence_of``): its body runs in batches, its head once along the sequence."""
    head = head_of(model)
    if head is not None and sequence is None:
        raise SpinnError(f"{type(model).__name__} has a physics head: predict needs the rows' sequence")
    device = torch.device(device)
    model.to(device)
    x = torch.as_tensor(np.asarray(X_scaled, dtype=np.float32), device=device)
    if x.ndim != 2:
        raise SpinnError(f"X_scaled must be 2-D (rows, features), got shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        out = batched_forward(body_of(model), x, batch_size)
        if head is not None:
            with torch.inference_mode():
                out = head(out, torch.as_tensor(np.asarray(sequence), device=device))
    finally:
        model.train(was_training)
    return out.float().cpu().numpy()


def evaluate_model(model: nn.Module, data: PreparedData, split: str,
                   device: str | torch.device = "cpu") -> dict:
    """``core.metrics.regression_report`` of one split, in physical units (mm, um)."""
    x, _ = data.arrays(split)
    y_pred = data.scaler.inverse_y(predict(model, x, device, sequence=model_sequence(model, data, split)))
    return regression_report(data.targets(split), y_pred, data.target_names)


def model_sequence(model: nn.Module, data: PreparedData, split: str) -> np.ndarray | None:
    """The sequence ``predict`` needs for ``model`` on ``split`` (None for a model without a head)."""
    return sequence_of(data, split) if head_of(model) is not None else None
