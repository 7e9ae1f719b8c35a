"""Lumped first-order thermal model of the spindle/tool assembly: ``tau * d(delta)/dt + delta =
G * P`` with ``G = R * alpha * L`` (the constants and their basis: docs/data.md). One model serves
the synthetic generator, the NASA loader's derived target and the physics loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThermalModel:
    tau_min: float = 8.0  # thermal time constant (min): spindles heat over minutes
    resistance_k_per_kw: float = 6.0  # steady-state temperature rise per kW of cutting power
    alpha_per_k: float = 11.7e-6  # linear expansion of steel (1/K)
    length_mm: float = 200.0  # heated length that grows towards the workpiece
    idle_current_a: float = 2.0  # spindle motor current with no cut (synthetic sensor model)
    kw_per_amp: float = 0.5  # cutting power per amp above idle (synthetic sensor model)

    @property
    def gain_um_per_kw(self) -> float:
        """Steady-state displacement per kW: R * alpha * L, in micrometres."""
        return self.resistance_k_per_kw * self.alpha_per_k * self.length_mm * 1000.0

    def power_kw_from_current(self, smc_dc_mean):
        """Cutting power (kW) from the mean spindle motor current (A); works on arrays and tensors."""
        excess = smc_dc_mean - self.idle_current_a
        clipped = excess.clamp(min=0.0) if hasattr(excess, "clamp") else np.maximum(excess, 0.0)
        return clipped * self.kw_per_amp

    def step(self, delta_um, power_kw, dt_min):
        """Exact update of delta over ``dt_min`` at constant power (power 0 = cooling)."""
        steady = self.gain_um_per_kw * power_kw
        return steady + (delta_um - steady) * np.exp(-np.asarray(dt_min) / self.tau_min)

    def simulate(self, power_kw: np.ndarray, dt_min: np.ndarray, delta0_um: float = 0.0) -> np.ndarray:
        """Displacement after each interval of a piecewise-constant power history."""
        out = np.empty(len(power_kw), dtype=np.float64)
        delta = float(delta0_um)
        for i, (p, dt) in enumerate(zip(power_kw, dt_min)):
            delta = float(self.step(delta, p, dt))
            out[i] = delta
        return out

    def residual(self, delta_um, ddelta_dt_um_per_min, power_kw):
        """ODE residual ``tau * d(delta)/dt + delta - G * P`` (zero on the model's trajectories)."""
        return self.tau_min * ddelta_dt_um_per_min + delta_um - self.gain_um_per_kw * power_kw
