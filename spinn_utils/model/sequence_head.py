"""Physics by construction (docs/physics.md): the head that integrates an MLP body's two outputs
per window, read as rates, along each experiment's time order into wear (a running sum of
non-negative increments) and displacement (the thermal ODE's exact solution over each window),
in float64. ``sequence_numpy.py`` holds the same recurrence for the torch-free predictor.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..core.errors import SpinnError
from .sequence_numpy import RESET_LOG

# Per row: 1 on an experiment's first window; 1 on a run's first window (cooling precedes it);
# the window's minutes; its cutting power in kW (1 where the data has no power input).
SEQUENCE_FIELDS = ("experiment_start", "run_start", "dt_min", "power_kw")
SCAN_BLOCK = 64  # rows per block of the blocked linear scan (a 64 x 64 matrix per block)


def linear_scan(a_log: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``h_i = exp(a_log_i) * h_{i-1} + b_i`` with ``h_{-1} = 0``, differentiable, in blocks:
    ``h_i = sum_{j <= i} exp(L_i - L_j) b_j + exp(L_i) h_carry`` with ``L`` the block's cumulative
    ``a_log``, every exponent <= 0 (nothing overflows), one Python step per block."""
    out, carry = [], b.new_zeros(())
    tri = torch.ones(SCAN_BLOCK, SCAN_BLOCK, dtype=torch.bool, device=b.device).tril()
    for start in range(0, len(b), SCAN_BLOCK):
        cum = torch.cumsum(a_log[start:start + SCAN_BLOCK], 0)
        diff, n = cum[:, None] - cum[None, :], len(cum)
        decay = torch.exp(torch.where(tri[:n, :n], diff, torch.full_like(diff, -math.inf)))
        out.append(decay @ b[start:start + SCAN_BLOCK] + torch.exp(cum) * carry)
        carry = out[-1][-1]
    return torch.cat(out) if out else b.new_zeros(0)


def segment_cumsum(values: torch.Tensor, experiment_start: torch.Tensor) -> torch.Tensor:
    """Cumulative sum that restarts at every experiment start (rows in time order)."""
    total = torch.cumsum(values, 0)
    before = total - values  # the sum of everything before each row
    start_idx = torch.cummax(torch.where(experiment_start > 0, torch.arange(len(values), device=values.device),
                                         torch.zeros_like(experiment_start, dtype=torch.long)), 0).values
    return total - before[start_idx]


def _inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class PhysicsHead(nn.Module):
    """Integrates the body's (wear rate, heat input) along time into targets scaled with the
    train-fitted ``y_mean``, ``y_std``. ``tau_min``, ``gain_um_per_kw`` (the thermal model's) and
    ``cooling_min`` (idle minutes before each run) are initial values, learned;
    ``wear_rate_mm_min`` is the wear rate per kW where the body outputs 0."""

    def __init__(self, y_mean=(0.0, 0.0), y_std=(1.0, 1.0), tau_min: float = 8.0, gain_um_per_kw: float = 14.04,
                 cooling_min: float = 5.0, wear_rate_mm_min: float = 0.02) -> None:
        super().__init__()
        for name, value in (("tau_min", tau_min), ("gain_um_per_kw", gain_um_per_kw),
                            ("cooling_min", cooling_min), ("wear_rate_mm_min", wear_rate_mm_min)):
            if not (math.isfinite(value) and value > 0):
                raise SpinnError(f"physics head: {name} must be a finite number > 0, got {value!r}")
        self.register_buffer("y_mean", torch.as_tensor(y_mean, dtype=torch.float64).reshape(2))
        self.register_buffer("y_std", torch.as_tensor(y_std, dtype=torch.float64).reshape(2))
        # softplus(0) = ln 2: a body output of 0 means the initial rate exactly.
        self.register_buffer("rate_scale", torch.tensor([wear_rate_mm_min, 1.0], dtype=torch.float64)
                             / math.log(2.0))
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau_min), dtype=torch.float64))
        self.log_gain = nn.Parameter(torch.tensor(math.log(gain_um_per_kw), dtype=torch.float64))
        self.log_cooling = nn.Parameter(torch.tensor(math.log(cooling_min), dtype=torch.float64))
        self.wear0 = nn.Parameter(torch.tensor(_inv_softplus(1e-3), dtype=torch.float64))

    def constants(self) -> dict:
        """Everything the head computes with, as plain numbers (checkpoint meta, ONNX sidecar)."""
        with torch.no_grad():
            return {"tau_min": float(self.log_tau.exp()), "gain_um_per_kw": float(self.log_gain.exp()),
                    "cooling_min": float(self.log_cooling.exp()),
                    "wear0_mm": float(nn.functional.softplus(self.wear0)),
                    "wear_rate_mm_min": float(self.rate_scale[0] * math.log(2.0)),
                    "y_mean": self.y_mean.tolist(), "y_std": self.y_std.tolist()}

    @classmethod
    def from_constants(cls, c: dict) -> PhysicsHead:
        """The head ``constants()`` describes (bit-for-bit up to float64 rounding)."""
        try:
            head = cls(c["y_mean"], c["y_std"], c["tau_min"], c["gain_um_per_kw"], c["cooling_min"],
                       c["wear_rate_mm_min"])
            with torch.no_grad():
                head.wear0.copy_(torch.tensor(_inv_softplus(float(c["wear0_mm"])), dtype=torch.float64))
        except (KeyError, TypeError, ValueError) as err:
            raise SpinnError(f"physics head constants are incomplete or malformed: {err!r}") from err
        return head

    def forward(self, raw: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
        """(n, 2) body outputs + (n, 4) sequence (``SEQUENCE_FIELDS``) -> (n, 2) scaled targets."""
        if sequence is None or sequence.shape != (len(raw), len(SEQUENCE_FIELDS)):
            got = None if sequence is None else tuple(sequence.shape)
            raise SpinnError(f"a hard-physics model needs the sequence of every row ({len(raw)}, "
                             f"{len(SEQUENCE_FIELDS)}: {', '.join(SEQUENCE_FIELDS)}), got {got}")
        exp_start, run_start, dt, power = sequence.to(torch.float64).unbind(1)
        # Both rates scale with cutting power (Archard: wear rate ~ F v; heat ~ P), the body
        # learns the factor: it starts at 1, and a cut with no power neither wears nor heats.
        rates = nn.functional.softplus(raw.to(torch.float64)) * self.rate_scale * power[:, None]
        wear = nn.functional.softplus(self.wear0) + segment_cumsum(rates[:, 0] * dt, exp_start)
        tau = self.log_tau.exp()
        idle = torch.where((run_start > 0) & (exp_start <= 0), self.log_cooling.exp(), torch.zeros_like(dt))
        a_log = torch.where(exp_start > 0, torch.full_like(dt, RESET_LOG), -(dt + idle) / tau)
        heat = self.log_gain.exp() * rates[:, 1] * (-torch.expm1(-dt / tau))
        physical = torch.stack([wear, linear_scan(a_log, heat)], dim=1)
        return ((physical - self.y_mean) / self.y_std).to(raw.dtype)


class WithHead(nn.Module):
    """A body (any module on scaled inputs: sparse, structured, ONNX) followed by a physics head:
    ``model(x)`` is the body alone, ``model(x, sequence)`` the prediction (scaled units)."""

    def __init__(self, body: nn.Module, head: PhysicsHead) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor, sequence: torch.Tensor | None = None) -> torch.Tensor:
        out = self.body(x)
        return out if sequence is None else self.head(out, sequence)


def head_of(model: nn.Module) -> PhysicsHead | None:
    """The model's physics head, or None for a model whose outputs are the targets (soft)."""
    head = getattr(model, "head", None)
    return head if isinstance(head, PhysicsHead) else None


def head_constants(model: nn.Module) -> dict | None:
    """``constants()`` of the model's head, or None: what checkpoint meta records."""
    head = head_of(model)
    return None if head is None else head.constants()


def with_saved_head(model: nn.Module, meta: dict) -> nn.Module:
    """``model`` followed by the head its checkpoint meta records (as it is when none is)."""
    if head_of(model) is not None or not meta.get("physics_head"):
        return model
    return WithHead(model, PhysicsHead.from_constants(meta["physics_head"]).to(torch.float64))


def body_of(model: nn.Module) -> nn.Module:
    """What maps inputs to the head's rates (the model itself when it has no head)."""
    if isinstance(model, WithHead):
        return model.body
    return getattr(model, "network", model) if head_of(model) is not None else model
