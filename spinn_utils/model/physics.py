"""Soft physics (docs/physics.md): loss terms, each O(1) on standardised data: ``wear_nonneg``
(VB >= 0), ``wear_monotone`` (dVB/dt >= 0, by forward-mode autograd on the time input, never
differences along the shuffled batch), ``thermal_ode`` (the residual of ``data.thermal``'s lumped
ODE) and, off by default, ``wear_sequence`` (no drop between consecutive windows). References:
Raissi, Perdikaris & Karniadakis, "Physics-informed neural networks", J. Comput. Phys. 378
(2019); Archard, J. Appl. Phys. 24 (1953) for the wear law.
"""
from __future__ import annotations

from typing import Annotated

import torch
import torch.autograd.forward_ad as fwad
from pydantic import Field
from torch import nn

from ..core.errors import SpinnError
from ..core.overrides import Count, StageConfig, build_config
from ..data.dataset import PreparedData, Scaler
from ..data.schema import TARGETS, TIME_COL
from ..data.thermal import ThermalModel

TERMS = ("wear_nonneg", "wear_monotone", "thermal_ode", "wear_sequence")
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # a loss term's: finite, >= 0


class PhysicsConfig(StageConfig):
    # Weights multiply the O(1)-scaled terms; the data MSE (scaled targets) is ~1 at start.
    wear_nonneg_weight: Weight = 0.1  # negative wear is impossible; cheap, rarely active
    wear_monotone_weight: Weight = 0.1  # wear never decreases with cutting time
    thermal_ode_weight: Weight = 0.01  # modest: the ODE ignores cooling between runs
    # Option, off by default: wear must not drop between consecutive windows of one experiment.
    # wear_monotone holds the sensors fixed, so it cannot stop drops that window-to-window
    # sensor noise causes (44.5% of dense's test steps dropped without it).
    wear_sequence_weight: Weight = 0.0
    subsample: Count = 64  # rows per batch for the derivative terms: bounds the extra cost
    time_col: str = TIME_COL  # the input the derivatives are taken against
    power_col: str = "smc_dc_mean"  # spindle DC current (A) -> cutting power (kW)
    power_unit: str = "A"  # "A": current through the thermal model's sensor constants; "kW": power
    wear_target: str = TARGETS[0]  # tool_wear_vb_mm
    thermal_target: str = TARGETS[1]  # thermal_displacement_um
    # Same constants as the generator; a checkpoint's JSON dict of them is read back as one.
    thermal: ThermalModel = ThermalModel()

    @property
    def enabled(self) -> bool:
        return self.total_weight > 0

    @property
    def total_weight(self) -> float:
        return (self.wear_nonneg_weight + self.wear_monotone_weight + self.thermal_ode_weight
                + self.wear_sequence_weight)

    @classmethod
    def smoke_test(cls) -> PhysicsConfig:
        return cls(subsample=16)  # same weights, so smoke runs exercise every term

    @classmethod
    def off(cls) -> PhysicsConfig:
        """Data loss only (the ablation baseline)."""
        return cls(wear_nonneg_weight=0.0, wear_monotone_weight=0.0, thermal_ode_weight=0.0)


def _index(names: list[str], name: str, what: str) -> int:
    if name not in names:
        raise SpinnError(f"physics loss needs {what} {name!r}; the scaler has {list(names)}")
    return list(names).index(name)


def subsample_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """At most ``n`` evenly spaced rows (batches arrive shuffled, so these are random rows)."""
    if len(x) <= n:
        return x
    return x[(torch.arange(n, device=x.device, dtype=torch.float64) * (len(x) / n)).long()]


def physics_config_for(data: PreparedData, smoke: bool = False, **knobs) -> PhysicsConfig:
    """The PhysicsConfig notebook 01's record (``data.meta["physics"]``) prescribes for ``data``:
    its time, target and power columns; a term the data cannot support gets weight 0 (asking for
    it with a weight > 0 is an error that gives 01's reason)."""
    record = data.meta.get("physics")
    if not record:
        raise SpinnError("the prepared data has no physics record (written by an older version); "
                         "re-run notebook 01")
    for term, support in record["terms"].items():
        weight = f"{term}_weight"
        if not support["supported"]:
            if knobs.get(weight):
                raise SpinnError(f"{weight}={knobs[weight]} asked for, but notebook 01 found the data "
                                 f"cannot support {term}: {support['reason']}")
            knobs[weight] = 0.0
    return build_config(PhysicsConfig, smoke, time_col=record["time_col"],
                        wear_target=record["wear_target"], thermal_target=record["thermal_target"],
                        power_col=record["power_col"], power_unit=record["power_unit"], **knobs)


def time_derivative(model: nn.Module, x_scaled: torch.Tensor,
                    time_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, d outputs / d x[:, time_index]) per row by forward-mode autograd, both
    differentiable w.r.t. the parameters, in the model's scaled units."""
    tangent = torch.zeros_like(x_scaled)
    tangent[:, time_index] = 1.0
    with fwad.dual_level():
        out = model(fwad.make_dual(x_scaled, tangent))
        y, dy_dt = fwad.unpack_dual(out)
    if dy_dt is None:  # the output does not depend on the input at all
        dy_dt = torch.zeros_like(y)
    return y, dy_dt


def _stat(values, i: int, like: torch.Tensor) -> torch.Tensor:
    """One scaler statistic as a 0-d tensor on ``like``'s device and dtype."""
    return torch.as_tensor(float(values[i]), dtype=like.dtype, device=like.device)


def _thermal_ode(x: torch.Tensor, y: torch.Tensor, dy_dt: torch.Tensor, scaler: Scaler,
                 cfg: PhysicsConfig, t_i: int, d_i: int) -> torch.Tensor:
    """Mean squared ``tau d(delta)/dt + delta - G P`` in units of std(delta). Needs the power
    column only when the term is on: a CSV without one can still use the wear terms."""
    p_i = _index(scaler.feature_names, cfg.power_col, "the power input")
    d_mean, d_std = _stat(scaler.y_mean, d_i, x), _stat(scaler.y_std, d_i, x)
    delta_um = y[:, d_i] * d_std + d_mean
    ddelta_dt = dy_dt[:, d_i] * d_std / _stat(scaler.x_std, t_i, x)  # um per minute of cutting
    power = x[:, p_i] * _stat(scaler.x_std, p_i, x) + _stat(scaler.x_mean, p_i, x)
    power_kw = power if cfg.power_unit == "kW" else cfg.thermal.power_kw_from_current(power)
    return (cfg.thermal.residual(delta_um, ddelta_dt, power_kw) / d_std).pow(2).mean()


def _wear_sequence(model: nn.Module, pairs, w_i: int) -> torch.Tensor:
    """Mean squared drop of predicted (scaled) wear from each window to the next one."""
    if pairs is None:
        raise SpinnError("wear_sequence_weight > 0 needs consecutive window pairs (fit builds them)")
    earlier, later = pairs
    return torch.relu(model(earlier)[:, w_i] - model(later)[:, w_i]).pow(2).mean()


def physics_loss(model: nn.Module, x_scaled: torch.Tensor, scaler: Scaler, cfg: PhysicsConfig,
                 pairs: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The physics terms on (a subsample of) one batch ``x_scaled`` standardised with ``scaler``;
    ``pairs``: (earlier, later) inputs of consecutive windows, for ``wear_sequence``. Returns every
    term of ``TERMS`` (unweighted mean squared violation in units of the target's std; the ODE and
    sequence terms NaN at weight 0, all NaN when every weight is) and ``"total"`` (their weighted
    sum, to add to the data loss)."""
    nan = x_scaled.new_full((), float("nan"))
    if not cfg.enabled:
        return {**dict.fromkeys(TERMS, nan), "total": x_scaled.new_zeros(())}
    if x_scaled.ndim != 2 or x_scaled.shape[1] != len(scaler.feature_names):
        raise SpinnError(f"x_scaled must be (rows, {len(scaler.feature_names)}) standardised features, "
                         f"got shape {tuple(x_scaled.shape)}")
    t_i = _index(scaler.feature_names, cfg.time_col, "the time input")
    w_i = _index(scaler.target_names, cfg.wear_target, "the wear target")
    d_i = _index(scaler.target_names, cfg.thermal_target, "the thermal target")
    x = subsample_rows(x_scaled.detach(), int(cfg.subsample))
    y, dy_dt = time_derivative(model, x, t_i)
    w_mean, w_std = _stat(scaler.y_mean, w_i, x_scaled), _stat(scaler.y_std, w_i, x_scaled)
    weights = {name: getattr(cfg, f"{name}_weight") for name in TERMS}
    terms = {
        # VB >= 0: relu(-VB) / std(VB), in the scaled units the data loss uses.
        "wear_nonneg": torch.relu(-(y[:, w_i] * w_std + w_mean) / w_std).pow(2).mean(),
        # dVB/dt >= 0 on the scaled derivative dVB/dt * std(t)/std(VB): same sign, O(1) size.
        "wear_monotone": torch.relu(-dy_dt[:, w_i]).pow(2).mean(),
        "thermal_ode": (_thermal_ode(x, y, dy_dt, scaler, cfg, t_i, d_i)
                        if weights["thermal_ode"] > 0 else nan),
        "wear_sequence": _wear_sequence(model, pairs, w_i) if weights["wear_sequence"] > 0 else nan,
    }
    weighted = (weights[name] * term for name, term in terms.items() if weights[name] > 0)
    total = sum(weighted, x_scaled.new_zeros(()))
    return {**terms, "total": total}
