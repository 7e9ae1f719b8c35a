"""Synthetic milling data: a seeded stand-in for the NASA milling set. 16 experiments run until
flank wear passes a limit; each run's six 250 Hz signals are cut into windows like ``mill.mat``'s
(``milling.window_stats``). docs/data.md ("Embedded synthetic milling data") gives the model
behind every constant below and which values are assumptions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import model_validator

from ..core.errors import SpinnError
from ..core.overrides import Count, StageConfig
from .milling import (
    BETA_F_PER_MM,
    CUTTER_DIAMETER_MM,
    N_INSERTS,
    SAMPLE_RATE_HZ,
    SPEED_M_MIN,
    SPINDLE_RPM,
    WORKPIECE_LENGTH_MM,
    cutting_power_kw,
    interpolate_vb,
    pass_minutes,
    thermal_history,
    window_stats,
)
from .schema import DEFAULT_FEATURES, GROUP_COL, RUN_COL, TARGETS, TIME_COL
from .thermal import ThermalModel

MAINS_HZ = 60.0
DEPTHS_MM = (0.75, 1.5)
FEEDS_MM_REV = (0.25, 0.5)
MATERIALS = {1: "cast iron", 2: "steel"}
BREAK_IN_MM, BREAK_IN_MIN = 0.08, 1.5
ACCEL_VB_MM, ACCEL_GAIN = 0.5, 1.5
K_W_MM_PER_KW_MIN = 0.03
VB_NOISE_MM = 0.01
THERMAL_NOISE_UM = 0.05


class SyntheticConfig(StageConfig):
    seed: int = 42  # one seed fixes every random draw: same seed, same table
    window_samples: Count = 250  # 1 s windows: 36 per run, ~6,000 rows (trains in minutes on CPU)
    samples_per_run: int = 9000  # as in mill.mat (36 s at 250 Hz)
    wear_limit_mm: float = 0.7  # docs/data.md: runs go until VB passes ~0.6-0.8 mm
    extra_runs_max: int = 2  # 1..this many runs past the limit, like the real data
    vb_missing_fraction: float = 0.1  # share of runs without a VB measurement (NaN)
    cooling_min: tuple[float, float] = (3.0, 8.0)  # idle minutes between runs (uniform)
    insert_spread: float = 0.15  # log-normal scatter of the wear coefficient per insert set

    @model_validator(mode="after")
    def _window_fits_run(self) -> SyntheticConfig:
        if self.window_samples > self.samples_per_run:
            raise ValueError(f"window_samples must be in 1..{self.samples_per_run}, "
                             f"got {self.window_samples}")
        return self

    @classmethod
    def smoke_test(cls) -> SyntheticConfig:
        return cls(window_samples=1500)  # 6 windows per run: ~1,000 rows, all 16 experiments


def experiment_settings() -> pd.DataFrame:
    """The 16 experiments: full factorial of DOC x feed x material, repeated per insert set."""
    levels = {"insert_set": (1, 2), "material_code": list(MATERIALS), "depth_of_cut_mm": DEPTHS_MM,
              "feed_mm_rev": FEEDS_MM_REV}
    grid = pd.MultiIndex.from_product(list(levels.values()), names=list(levels))
    grid = grid.to_frame(index=False)
    return grid.assign(**{GROUP_COL: np.arange(1, len(grid) + 1)})


def wear_mm(t_min, p0_kw: float, k_w: float) -> np.ndarray:
    """True flank wear VB(t): break-in plus the Archard steady/accelerated stage (monotone)."""
    # t(W) = integral of dW / (K_W * P0 * g(W)) is one cumulative integral of 1/g, so
    # W(t) is its inverse by interpolation: exact, vectorised, and monotone by construction.
    w_grid = np.linspace(0.0, 3.0, 3001)
    x2 = (w_grid / ACCEL_VB_MM) ** 2
    inv_g = 1.0 / ((1.0 + BETA_F_PER_MM * w_grid) * (1.0 + ACCEL_GAIN * x2 / (1.0 + x2)))
    g_int = np.concatenate([[0.0], np.cumsum((inv_g[1:] + inv_g[:-1]) / 2 * np.diff(w_grid))])
    t_min = np.asarray(t_min, dtype=np.float64)
    steady = np.interp(t_min * k_w * p0_kw, g_int, w_grid)
    return BREAK_IN_MM * (1.0 - np.exp(-t_min / BREAK_IN_MIN)) + steady


def _run_signals(rng, p0_kw, vb_of_u, n_samples, thermal: ThermalModel) -> dict[str, np.ndarray]:
    """Six sensor channels of one pass plus the true ``power_kw`` (docs/data.md, "Sensors")."""
    u = (np.arange(n_samples) + 0.5) / n_samples  # fraction of the pass
    t_s = np.arange(n_samples) / SAMPLE_RATE_HZ
    vb = vb_of_u(u)
    engage_frac = CUTTER_DIAMETER_MM / (WORKPIECE_LENGTH_MM + CUTTER_DIAMETER_MM)
    engaged = np.clip(np.minimum(u, 1.0 - u) / engage_frac, 0.0, 1.0)
    power = p0_kw * (1.0 + BETA_F_PER_MM * vb) * engaged
    burst = np.exp(-u / 0.01) + np.exp(-(1.0 - u) / 0.01)  # entry and exit impacts
    current = thermal.idle_current_a + power / thermal.kw_per_amp
    mains = np.sin(2 * np.pi * MAINS_HZ * t_s + rng.uniform(0, 2 * np.pi))
    tooth = 2 * np.pi * SPINDLE_RPM * N_INSERTS / 60.0 * t_s + rng.uniform(0, 2 * np.pi)

    def noise(scale):
        return rng.normal(0.0, scale, n_samples)

    vib_t = 0.05 + 0.3 * power * (1.0 + 1.5 * vb) + 0.4 * burst
    vib_s = 0.03 + 0.2 * power * (1.0 + 2.5 * vb) + 0.3 * burst
    ae_t = 0.10 + engaged * (0.05 * p0_kw + 0.6 * vb) + 0.2 * burst
    ae_s = 0.08 + engaged * (0.03 * p0_kw + 0.9 * vb) + 0.2 * burst
    return {
        "smc_ac": np.sqrt(2.0) * current * mains + noise(0.05),
        "smc_dc": current + noise(0.05),
        "vib_table": 0.2 + vib_t * np.sin(tooth) + noise(0.05),
        "vib_spindle": 0.1 + vib_s * np.sin(tooth + 0.7) + noise(0.05),
        "ae_table": ae_t * np.exp(noise(0.15)),
        "ae_spindle": ae_s * np.exp(noise(0.15)),
        "power_kw": power,
    }


def _experiment_rows(rng, setting: pd.Series, cfg: SyntheticConfig, thermal: ThermalModel) -> pd.DataFrame:
    """Every window of one experiment: features, targets, raw VB measurement."""
    doc, feed, mat = setting["depth_of_cut_mm"], setting["feed_mm_rev"], int(setting["material_code"])
    p0 = float(cutting_power_kw(doc, feed, mat, 0.0))
    k_w = K_W_MM_PER_KW_MIN * float(np.exp(rng.normal(0.0, cfg.insert_spread)))
    run_min = float(pass_minutes(feed))
    ends = run_min * np.arange(1, 401)
    past = np.flatnonzero(wear_mm(ends, p0, k_w) >= cfg.wear_limit_mm)
    if len(past) == 0:
        raise SpinnError("wear never reaches the limit within 400 runs; lower wear_limit_mm")
    n_runs = int(past[0]) + 1 + int(rng.integers(1, cfg.extra_runs_max + 1))
    run_ends = ends[:n_runs]

    measured = wear_mm(run_ends, p0, k_w) + rng.normal(0.0, VB_NOISE_MM, n_runs)
    measured = np.maximum.accumulate(np.clip(measured, 0.0, None))
    missing = rng.random(n_runs) < cfg.vb_missing_fraction
    missing[-1] = False  # the last run is measured, so VB is always interpolated, never extrapolated
    measured[missing] = np.nan

    n_win = cfg.samples_per_run // cfg.window_samples
    frames = []
    for r in range(n_runs):
        t0 = r * run_min
        sig = _run_signals(rng, p0, lambda u, t0=t0: wear_mm(t0 + u * run_min, p0, k_w),
                           cfg.samples_per_run, thermal)
        stats = window_stats(sig, cfg.window_samples)
        stats.pop("power_kw_rms")
        frames.append(pd.DataFrame({
            RUN_COL: r + 1, "window": np.arange(n_win),
            TIME_COL: t0 + run_min * np.arange(1, n_win + 1) / n_win,
            **stats,
            "vb_measured_mm": measured[r],
        }))
    rows = pd.concat(frames, ignore_index=True)
    # Heat comes from the true mean power of each window; the current sensor reads it with noise.
    displacement = thermal_history(
        rows.pop("power_kw_mean").to_numpy(), np.full(len(rows), run_min / n_win), rows["window"].to_numpy() == 0,
        rng.uniform(*cfg.cooling_min, n_runs), thermal,
    )
    rows.insert(0, GROUP_COL, int(setting[GROUP_COL]))
    rows["depth_of_cut_mm"], rows["feed_mm_rev"], rows["material_code"] = doc, feed, mat
    rows["cutting_speed_m_min"] = SPEED_M_MIN
    rows["run_index"] = rows[RUN_COL]
    rows[TARGETS[0]] = interpolate_vb(rows[TIME_COL].to_numpy(), run_ends, measured)
    rows[TARGETS[1]] = displacement + rng.normal(0.0, THERMAL_NOISE_UM, len(rows))
    return rows


def generate_milling(cfg: SyntheticConfig = SyntheticConfig()) -> pd.DataFrame:
    """One row per window: ``experiment``, ``run``, ``window``, the 18 ``DEFAULT_FEATURES``, the 2
    ``TARGETS`` and ``vb_measured_mm`` (the run's raw VB measurement, NaN if not measured)."""
    thermal = ThermalModel()
    # One generator per experiment: the window size changes how many draws an experiment
    # takes, not the others' runs, so the smoke table is the default one at coarser windows.
    table = pd.concat(
        [_experiment_rows(np.random.default_rng([cfg.seed, int(s[GROUP_COL])]), s, cfg, thermal)
         for _, s in experiment_settings().iterrows()],
        ignore_index=True,
    )
    return table[[GROUP_COL, RUN_COL, "window", *DEFAULT_FEATURES, *TARGETS, "vb_measured_mm"]]
