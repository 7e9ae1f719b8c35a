"""DensePINN, the physics-informed MLP for tool wear and thermal displacement: layers in
``self.network`` (keys ``network.0.weight``, ...); with ``ModelConfig.physics == "hard"`` a
``sequence_head.PhysicsHead`` after it (docs/physics.md). ``model(x)`` is always the body,
``model(x, sequence)`` a hard model's prediction.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import model_validator
from torch import nn

from ..core.errors import SpinnError, first_line
from ..core.overrides import Count, StageConfig
from .sequence_head import PhysicsHead

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


class ModelConfig(StageConfig):
    input_dim: Count = 18  # 4 process + 2 time + 12 sensor statistics (docs/data.md)
    hidden_dims: tuple[Count, ...] = (512, 512, 512, 256)  # the paper's widths: 666,882 params
    output_dim: Count = 2  # tool_wear_vb_mm, thermal_displacement_um
    # Smooth, so d(output)/d(time) exists for the physics loss.
    activation: Literal[tuple(ACTIVATIONS)] = "tanh"
    # "soft": physics in the loss; "hard": by construction (module docstring).
    physics: Literal["soft", "hard"] = "soft"

    @model_validator(mode="after")
    def _hard_predicts_both(self) -> ModelConfig:
        if self.physics == "hard" and self.output_dim != 2:
            raise ValueError(f"a hard-physics model predicts wear and displacement (output_dim 2), "
                             f"got output_dim {self.output_dim}")
        return self

    @property
    def dims(self) -> tuple[int, ...]:
        return (self.input_dim, *self.hidden_dims, self.output_dim)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(**{k: d[k] for k in ("input_dim", "hidden_dims", "output_dim", "activation")},
                   physics=d.get("physics", "soft"))


class DensePINN(nn.Module):
    """An MLP body, plus a physics head when ``cfg.physics == "hard"`` (module docstring)."""

    def __init__(self, cfg: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        linears = [nn.Linear(a, b) for a, b in zip(cfg.dims[:-1], cfg.dims[1:])]
        self.network = mlp_network(linears, cfg.activation)
        self.head = PhysicsHead() if cfg.physics == "hard" else None

    def forward(self, x: torch.Tensor, sequence: torch.Tensor | None = None) -> torch.Tensor:
        out = self.network(x)
        return out if self.head is None or sequence is None else self.head(out, sequence)


def mlp_network(layers: list[nn.Module], activation: str) -> nn.Sequential:
    """``layers`` with ``activation`` between them (none after the last)."""
    modules = [m for layer in layers for m in (layer, ACTIVATIONS[activation]())]
    return nn.Sequential(*modules[:-1])


def config_from_state_dict(state_dict: dict, activation: str = "tanh") -> ModelConfig:
    """Infer widths from ``network.{i}.weight`` shapes (our checkpoints and the legacy ones)."""
    weights = sorted((int(k.split(".")[1]), v) for k, v in state_dict.items()
                     if k.startswith("network.") and k.endswith(".weight") and k.count(".") == 2)
    if not weights:
        raise SpinnError("state_dict has no 'network.N.weight' keys; expected an nn.Sequential MLP, "
                         f"found keys {sorted(state_dict)[:6]}")
    shapes = [tuple(w.shape) for _, w in weights]
    for (out_prev, _), (_, in_next) in zip(shapes[:-1], shapes[1:]):
        if out_prev != in_next:
            raise SpinnError(f"layer shapes do not chain: {shapes}")
    if any(len(s) != 2 for s in shapes):
        raise SpinnError(f"every network.N.weight must be 2-D, got shapes {shapes}")
    return ModelConfig(input_dim=shapes[0][1], hidden_dims=tuple(s[0] for s in shapes[:-1]),
                       output_dim=shapes[-1][0], activation=activation)


def load_strict(model: nn.Module, state_dict: dict, problem: str) -> nn.Module:
    """``load_state_dict(strict=True)``; a mismatch is a SpinnError ``problem: first line``."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        # torch's first line is a generic header; the sizes and key names follow it.
        details = [line.strip() for line in str(err).strip().splitlines()[1:] if line.strip()]
        raise SpinnError(f"{problem}: {'; '.join(details[:3]) or first_line(err)}") from err
    return model


def model_from_state_dict(state_dict: dict, activation: str = "tanh") -> DensePINN:
    """Build a DensePINN whose widths match ``state_dict`` and load it strictly."""
    model = DensePINN(config_from_state_dict(state_dict, activation))
    return load_strict(model, state_dict, "state_dict does not fit a DensePINN")
