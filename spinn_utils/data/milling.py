"""Milling physics and signal windowing shared by the synthetic generator and the NASA reader, so
both produce the same table: the NASA setup's constants (Goebel & Agogino, NASA Ames, 2007), cutting
power ``u * MRR * (1 + BETA_F * VB)`` (docs/data.md gives the sources and assumptions).
"""
from __future__ import annotations

import numpy as np

from ..core.errors import SpinnError
from .thermal import ThermalModel

SPEED_M_MIN = 200.0
SPINDLE_RPM = 826.0  # as NASA states it for 200 m/min
N_INSERTS = 6
CUTTER_DIAMETER_MM = 70.0
WORKPIECE_LENGTH_MM = 483.0
SAMPLE_RATE_HZ = 250.0
SPECIFIC_ENERGY_W_S_MM3 = {1: 1.6, 2: 2.7}  # 1 cast iron, 2 steel (material codes of mill.mat)
BETA_F_PER_MM = 0.8


def pass_minutes(feed_mm_rev) -> np.ndarray:
    """Cutting time of one pass: workpiece length plus one cutter diameter at the table feed."""
    return (WORKPIECE_LENGTH_MM + CUTTER_DIAMETER_MM) / (np.asarray(feed_mm_rev) * SPINDLE_RPM)


def cutting_power_kw(depth_mm, feed_mm_rev, material_code, vb_mm) -> np.ndarray:
    """Spindle cutting power at full engagement: u * MRR * (1 + BETA_F * VB), in kW."""
    material_code = np.asarray(material_code).astype(int)
    if not np.isin(material_code, list(SPECIFIC_ENERGY_W_S_MM3)).all():
        raise SpinnError(f"material_code must be 1 (cast iron) or 2 (steel), got {np.unique(material_code)}")
    u = np.where(material_code == 1, SPECIFIC_ENERGY_W_S_MM3[1], SPECIFIC_ENERGY_W_S_MM3[2])
    mrr_mm3_s = np.asarray(depth_mm) * CUTTER_DIAMETER_MM * np.asarray(feed_mm_rev) * SPINDLE_RPM / 60.0
    return u * mrr_mm3_s / 1000.0 * (1.0 + BETA_F_PER_MM * np.asarray(vb_mm))


def window_stats(signals: dict[str, np.ndarray], window_samples: int) -> dict[str, np.ndarray]:
    """Mean and RMS of each channel over consecutive windows; a trailing remainder is dropped."""
    out: dict[str, np.ndarray] = {}
    for name, x in signals.items():
        x = np.asarray(x, dtype=np.float64).ravel()
        n_windows = len(x) // window_samples
        if n_windows == 0:
            raise SpinnError(
                f"channel {name!r} has {len(x)} samples, fewer than one window of {window_samples}"
            )
        w = x[: n_windows * window_samples].reshape(n_windows, window_samples)
        out[f"{name}_mean"] = w.mean(axis=1)
        out[f"{name}_rms"] = np.sqrt((w**2).mean(axis=1))
    return out


def interpolate_vb(t_min, measured_t_min, measured_vb_mm) -> np.ndarray:
    """VB at ``t_min`` interpolated linearly between one experiment's measurements, from
    (0 min, 0 mm): a new insert has no wear."""
    ok = np.isfinite(np.asarray(measured_vb_mm, dtype=np.float64))
    t_known = np.concatenate([[0.0], np.asarray(measured_t_min, dtype=np.float64)[ok]])
    vb_known = np.concatenate([[0.0], np.asarray(measured_vb_mm, dtype=np.float64)[ok]])
    return np.interp(t_min, t_known, vb_known)


def thermal_history(
    power_kw: np.ndarray, window_min: np.ndarray, run_start: np.ndarray,
    cooling_min: np.ndarray, thermal: ThermalModel,
) -> np.ndarray:
    """Displacement (um) at the end of each window of one experiment (in time order), with
    ``cooling_min`` idle minutes before each window where ``run_start`` is True (one per run start;
    the first run starts at ambient temperature whatever its entry says)."""
    n_starts = int(np.sum(run_start))
    if len(cooling_min) != n_starts:
        raise SpinnError(f"need one cooling time per run start ({n_starts}), got {len(cooling_min)}")
    gaps = np.zeros(len(power_kw))
    gaps[np.flatnonzero(run_start)] = cooling_min
    gaps[0] = 0.0
    # Interleave [cooling, window] pairs; a zero-length cooling step changes nothing.
    power = np.column_stack([np.zeros(len(power_kw)), power_kw]).ravel()
    dt = np.column_stack([gaps, window_min]).ravel()
    return thermal.simulate(power, dt)[1::2]

