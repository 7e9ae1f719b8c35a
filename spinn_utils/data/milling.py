"""Milling physics and signal windowing shared by the synthetic generator and the NASA reader.

The NASA milling setup (Goebel & Agogino, "Milling Data Set", NASA Ames Prognostics Data
Repository, 2007): 200 m/min = 826 rev/min, 70 mm face mill with 6 KC710 inserts, workpiece
483 x 178 x 51 mm, six channels at 250 Hz. One run is one pass over the workpiece: (483 + 70)
mm of travel at feed x 826 mm/min. Cutting power P = u * MRR * (1 + BETA_F * VB) with specific
cutting energy u = 1.6 (cast iron) / 2.7 (steel) W s/mm^3 (the low ends of Kalpakjian &
Schmid's table of specific energies) and BETA_F = 0.8 per mm of flank wear (assumption: a worn
flank rubs). Both sources cut runs into windows with ``window_stats``, interpolate VB within
one experiment with ``interpolate_vb`` and derive displacement with ``thermal_history``, so
they produce the same table (docs/data.md).
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
    """VB at ``t_min`` by linear interpolation between one experiment's measurements.

    A new insert has no wear, so (0 min, 0 mm) anchors the start; callers pass one
    experiment at a time, so gaps are never bridged across experiments.
    """
    ok = np.isfinite(np.asarray(measured_vb_mm, dtype=np.float64))
    t_known = np.concatenate([[0.0], np.asarray(measured_t_min, dtype=np.float64)[ok]])
    vb_known = np.concatenate([[0.0], np.asarray(measured_vb_mm, dtype=np.float64)[ok]])
    return np.interp(t_min, t_known, vb_known)


def thermal_history(
    power_kw: np.ndarray, window_min: np.ndarray, run_start: np.ndarray,
    cooling_min: np.ndarray, thermal: ThermalModel,
) -> np.ndarray:
    """Displacement (um) at the end of each window of one experiment, cooling between runs.

    Args:
        power_kw, window_min: cutting power and duration of each window, in time order.
        run_start: True for each run's first window (a cooling interval precedes it).
        cooling_min: idle minutes before each run start (len = run_start.sum()); the
            first run starts at ambient temperature whatever its entry says.
    """
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

