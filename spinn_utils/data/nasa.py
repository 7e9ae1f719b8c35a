"""The NASA milling data set (``mill.mat``, Goebel & Agogino, NASA Ames Prognostics Data
Repository, 2007) as the pipeline's window table; its layout and what is derived: docs/data.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import SpinnError, first_line
from .milling import (
    SPEED_M_MIN,
    cutting_power_kw,
    interpolate_vb,
    pass_minutes,
    thermal_history,
    window_stats,
)
from .schema import GROUP_COL, RUN_COL, TARGETS, TIME_COL
from .thermal import ThermalModel

NASA_FIELDS = ("case", "run", "VB", "time", "DOC", "feed", "material")
NASA_CHANNELS = {"smc_ac": "smcAC", "smc_dc": "smcDC", "vib_table": "vib_table",
                 "vib_spindle": "vib_spindle", "ae_table": "AE_table", "ae_spindle": "AE_spindle"}
NASA_COOLING_MIN = 5.0  # idle minutes between runs: mill.mat does not record them (assumption)
# A MATLAB 5 / 7 file opens with 116 bytes of text, 8 of subsystem offset, a 2-byte version and
# the byte-order mark "IM" or "MI" (MathWorks' MAT-File Format); scipy can fail on anything else
# with an IndexError or a MemoryError, so the header is checked first. 7.3 files are HDF5.
MAT_HEADER_BYTES = 128
MAT_V5_TEXT, MAT_V73_TEXT, MAT_BYTE_ORDERS = b"MATLAB 5.0 MAT-file", b"MATLAB 7.3 MAT-file", (b"IM", b"MI")
# What scipy raises, besides MatReadError, on a file whose header is right but whose body is damaged.
MAT_READ_ERRORS = (ValueError, OSError, NotImplementedError, TypeError, IndexError, KeyError, EOFError,
                   MemoryError, OverflowError)


def _scalar(value, field: str, index: int) -> float:
    """One number of a mill.mat field; empty means "not measured" (NaN), text is an error."""
    try:
        flat = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise SpinnError(f"mill.mat: field {field!r} of run {index + 1} is not a number "
                         f"({np.asarray(value).ravel()[:1].tolist()})") from err
    return float(flat[0]) if flat.size else float("nan")


def _run_end_times(t_end: np.ndarray, run_no: np.ndarray, run_min: float, notes: list, case) -> np.ndarray:
    """Cumulative cutting time at each run's end; missing or non-increasing ones filled in run order."""
    t = np.asarray(t_end, dtype=np.float64)
    # Keep the strictly increasing subsequence of known times: each above every known one before.
    t = np.where(t > np.fmax.accumulate(np.r_[0.0, t])[:-1], t, np.nan)
    known = np.isfinite(t)
    if known.all():
        return t
    notes.append(f"case {case}: cutting time of run(s) {run_no[~known].astype(int).tolist()} interpolated in run order")
    runs_k = np.concatenate([[0.0], run_no[known]])
    times_k = np.concatenate([[0.0], t[known]])
    filled = np.interp(run_no, runs_k, times_k)
    beyond = run_no > runs_k[-1]  # after the last known time: one pass per run
    filled[beyond] = times_k[-1] + (run_no[beyond] - runs_k[-1]) * run_min
    return filled


def check_mat_file(path: str | Path) -> None:
    """``path`` is a MATLAB 5 .mat file scipy can read (by its 128-byte header); else a SpinnError
    naming the file and what it is instead. Cheap: pre-flight can call it before any work."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SpinnError(f"data file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(MAT_HEADER_BYTES)
    if head.startswith(MAT_V73_TEXT):
        raise SpinnError(f"cannot read {path}: a MATLAB 7.3 (HDF5) .mat file, which scipy does not read; "
                         "save it again in MATLAB with save(name, 'mill', '-v7')")
    if len(head) < MAT_HEADER_BYTES or not head.startswith(MAT_V5_TEXT) or head[126:] not in MAT_BYTE_ORDERS:
        found = "an empty file" if not head else f"a file starting {head[:24]!r}"
        raise SpinnError(f"cannot read {path}: not a MATLAB .mat file ({found}, no 'MATLAB 5.0 MAT-file' "
                         "header); --data takes NASA's mill.mat or a .csv table")


def read_mill_mat(path: str | Path, window_samples: int) -> pd.DataFrame:
    """NASA ``mill.mat`` (struct array ``mill``) -> the window table: VB interpolated within each
    case (windows after its last measurement dropped), thermal displacement derived from the
    cutting power with ``NASA_COOLING_MIN`` of cooling between runs; ``attrs["notes"]`` say what
    was dropped or filled."""
    check_mat_file(path)
    import scipy.io  # here: pre-flight imports this module, and scipy.io takes ~0.4 s to import
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except (scipy.io.matlab.MatReadError, *MAT_READ_ERRORS) as err:
        raise SpinnError(f"cannot read {path}: it has a MATLAB header but its content is damaged or "
                         f"truncated ({type(err).__name__}: {first_line(err)})") from err
    if "mill" not in mat:
        raise SpinnError(f"{path} has no struct 'mill'; it holds {sorted(k for k in mat if not k.startswith('__'))}")
    mill = np.asarray(mat["mill"]).ravel()
    missing = [f for f in (*NASA_FIELDS, *NASA_CHANNELS.values()) if f not in (mill.dtype.names or ())]
    if missing:
        raise SpinnError(f"struct 'mill' in {path} lacks field(s) {missing}; has {list(mill.dtype.names or ())}")
    runs = pd.DataFrame([{f: _scalar(rec[f], f, i) for f in NASA_FIELDS} | {"index": i}
                         for i, rec in enumerate(mill)])
    for key in ("case", "run"):  # groupby would drop a record without one, and its experiment with it
        unnamed = runs.loc[runs[key].isna(), "index"].tolist()
        if unnamed:
            raise SpinnError(f"{path}: record(s) {unnamed[:5]} of 'mill' have no {key!r} number (empty or NaN); "
                             f"every record must name its {key}")
    thermal, notes, frames = ThermalModel(), [], []
    for case, runs_c in runs.sort_values(["case", "run"]).groupby("case", sort=True):
        doc, feed, material = (float(runs_c[c].iloc[0]) for c in ("DOC", "feed", "material"))
        vb = runs_c["VB"].to_numpy()
        if not np.isfinite(vb).any():
            notes.append(f"case {case:g}: no VB measured, all its runs dropped")
            continue
        run_no = runs_c["run"].to_numpy()
        t_end = _run_end_times(runs_c["time"].to_numpy(), run_no, float(pass_minutes(feed)), notes, f"{case:g}")
        t_start = np.concatenate([[0.0], t_end[:-1]])
        parts = []
        for k, i in enumerate(runs_c["index"]):
            stats = window_stats({ch: mill[i][f] for ch, f in NASA_CHANNELS.items()}, window_samples)
            n_win = len(stats["smc_dc_mean"])
            parts.append(pd.DataFrame({
                GROUP_COL: int(case), RUN_COL: int(run_no[k]), "window": np.arange(n_win),
                TIME_COL: t_start[k] + (t_end[k] - t_start[k]) * np.arange(1, n_win + 1) / n_win,
                "window_min": (t_end[k] - t_start[k]) / n_win, **stats, "vb_measured_mm": vb[k],
            }))
        rows = pd.concat(parts, ignore_index=True)
        keep = rows[TIME_COL] <= t_end[np.isfinite(vb)].max() + 1e-9
        if not keep.all():
            notes.append(f"case {case:g}: {int((~keep).sum())} window(s) after the last VB measurement dropped")
        rows = rows[keep].reset_index(drop=True)
        rows[TARGETS[0]] = interpolate_vb(rows[TIME_COL].to_numpy(), t_end, vb)
        power = cutting_power_kw(doc, feed, material, rows[TARGETS[0]].to_numpy())
        run_start = rows["window"].to_numpy() == 0
        rows[TARGETS[1]] = thermal_history(power, rows.pop("window_min").to_numpy(), run_start,
                                           np.full(int(run_start.sum()), NASA_COOLING_MIN), thermal)
        rows["depth_of_cut_mm"], rows["feed_mm_rev"], rows["material_code"] = doc, feed, material
        rows["cutting_speed_m_min"], rows["run_index"] = SPEED_M_MIN, rows[RUN_COL]
        frames.append(rows)
    if not frames:
        raise SpinnError(f"{path}: no case has a VB measurement, nothing to learn from")
    table = pd.concat(frames, ignore_index=True)
    table.attrs["notes"] = notes
    return table
