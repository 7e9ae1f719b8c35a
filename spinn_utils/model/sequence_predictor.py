"""A hard-physics export in deployment (torch-free): the ONNX body, then the NumPy head along
each experiment, with the constants and columns of the sidecar's ``physics`` block.
``predict_rows`` predicts a table in its own row order; ``step`` a live machine's next window(s)
from the state the previous call returned (``HeadState()`` to start).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import SpinnError
from ..data.time_order import cumulative_time, in_time_order, mark_run_starts
from .onnx_predictor import OnnxPredictor
from .sequence_numpy import HeadState, apply_head, integrate, power_kw, step_one

PIECE_ROWS = 4096  # rows per ONNX Runtime call along the ordered table (the state carries between)


def physics_of(meta: dict) -> dict:
    """The sidecar's physics block (``{"mode": "soft"}`` for an export that predates it)."""
    return meta.get("physics") or {"mode": "soft"}


def is_hard(predictor: OnnxPredictor) -> bool:
    return physics_of(predictor.meta).get("mode") == "hard"


class SequencePredictor:
    """The body in ONNX Runtime and the head in NumPy (module docstring)."""

    def __init__(self, predictor: OnnxPredictor) -> None:
        if not is_hard(predictor):
            raise SpinnError(f"{predictor.path.name} is not a hard-physics export (its sidecar's physics "
                             "mode is not 'hard'); predict it row by row")
        self.predictor = predictor
        self.physics = physics_of(predictor.meta)
        self.constants = self.physics["head"]
        self.y_mean = np.asarray(self.constants["y_mean"], dtype=np.float64)
        self.y_std = np.asarray(self.constants["y_std"], dtype=np.float64)

    def rates(self, x: np.ndarray, threads: int = 1, stop_spinning: bool = False) -> np.ndarray:
        """The body's outputs in its own (scaled) units for float32 raw features."""
        y = self.predictor.run(x, threads, stop_spinning).astype(np.float64)
        return (y - self.y_mean) / self.y_std

    def power(self, x: np.ndarray, power=None) -> np.ndarray:
        """Cutting power (kW) of the rows ``x`` from the power column's values: given, a model
        input, or 1 without one (the head's rates are then the body's alone)."""
        column = self.physics.get("power_col")
        if power is not None:
            values = np.broadcast_to(np.asarray(power, dtype=np.float64), (len(x),))
        elif column and column in self.predictor.feature_names:
            values = x[:, self.predictor.feature_names.index(column)]
        elif column:
            raise SpinnError(f"the model's physics needs the power column {column!r}, which is not a model "
                             "input: pass its values")
        else:
            return np.ones(len(x))
        return power_kw(values, self.physics.get("power_unit", "A"))

    def step(self, state: HeadState, features, group, cum_time_min, run_start,
             power=None, threads: int = 1) -> tuple[np.ndarray, HeadState]:
        """Predictions (k, 2) in physical units for the next ``k`` windows of one group, in time
        order, and the state to pass to the next call. ``power``: the power column's values when
        it is not one of the model's inputs."""
        x = self.predictor.checked(np.atleast_2d(np.asarray(features, dtype=np.float64)), "step")
        k, kw = len(x), self.power(x, power)
        if k == 1 and np.ndim(group) == 0:  # a live machine's next window: the head in plain floats
            raw = self.rates(x, threads)[0]
            t, run = float(np.ravel(cum_time_min)[0]), bool(np.ravel(run_start)[0])
            wear, delta, state = step_one(raw[0], raw[1], group, t, run, float(kw[0]), self.constants, state)
            return np.array([[wear, delta]]), state
        groups, t, starts = (np.broadcast_to(np.asarray(v, dtype=d), (k,)) for v, d in
                             ((group, object), (cum_time_min, np.float64), (run_start, None)))
        return integrate(self.rates(x, threads), groups, t, starts, kw, self.constants, state)

    def order(self, groups, times, runs=None, source: str = "the CSV") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row positions in time order, cumulative time, run starts), both in that order."""
        frame = pd.DataFrame({"g": np.asarray(groups), "t": np.asarray(times, dtype=np.float64),
                              "_row": np.arange(len(groups))})
        if runs is not None:
            frame["r"] = np.asarray(runs, dtype=np.float64)
        run_col = "r" if runs is not None else ""
        ordered = in_time_order(frame, "g", run_col, "t").reset_index(drop=True)
        cum, _ = cumulative_time(ordered, "g", run_col, "t", float(self.physics.get("run_gap_min", 0.0)))
        same = ordered["g"].to_numpy()[1:] == ordered["g"].to_numpy()[:-1]
        bad = np.flatnonzero(same & ~(np.diff(cum) > 0))
        if len(bad):
            g = ordered["g"].iloc[bad[0] + 1]
            raise SpinnError(f"{source}: time {self.physics['time_col']!r} repeats or restarts within group "
                             f"{g!r} ({len(bad)} time(s) in all); give the run column (--run-col) so runs "
                             "are put in order, as the model was trained")
        return ordered["_row"].to_numpy(), cum, mark_run_starts(ordered, "g", run_col)

    def predict_rows(self, x: np.ndarray, groups, times, runs=None, power=None, threads: int = 1,
                     source: str = "the CSV") -> np.ndarray:
        """(n, 2) predictions in the rows' own order for float32 features ``x``: rows are put in
        time order within each group (run, then time; a time that restarts in every run is joined
        into cumulative time as notebook 01 does) and predicted with the state carried along."""
        rows, cum, starts = self.order(groups, times, runs, source)
        groups = np.asarray(groups, dtype=object)[rows]
        kw = self.power(x[rows], None if power is None else np.asarray(power)[rows])
        out = np.empty((len(rows), 2))
        state = HeadState()
        for i in range(0, len(rows), PIECE_ROWS):
            piece = slice(i, i + PIECE_ROWS)
            raw = self.rates(x[rows[piece]], threads)
            out[rows[piece]], state = integrate(raw, groups[piece], cum[piece], starts[piece],
                                                kw[piece], self.constants, state)
        return out


def predictions(predictor: OnnxPredictor, x: np.ndarray, sequence: np.ndarray | None, threads: int = 1) -> np.ndarray:
    """Physical predictions of an export for rows whose sequence is known (a prepared split,
    ``sequences.sequence_of``): the head applied for a hard export, the outputs as they are otherwise."""
    if not is_hard(predictor):
        return predictor.run(x, threads)
    head = SequencePredictor(predictor)
    return apply_head(head.rates(x, threads), sequence, head.constants)


def deployed_call(predictor: OnnxPredictor, x: np.ndarray, threads: int, stop_spinning: bool = False):
    """The call a deployment makes for the rows ``x``, ready to time: ``run`` for a per-window
    export; for a hard-physics export ``SequencePredictor.step`` over them as one experiment's
    consecutive windows (body and head, as a live machine streams them)."""
    if not is_hard(predictor):
        return lambda: predictor.run(x, threads, stop_spinning)
    head = SequencePredictor(predictor)
    times = np.arange(1, len(x) + 1) * 0.05  # consecutive windows of one run
    starts, start = np.zeros(len(x), dtype=np.int64), HeadState(0, 0.0)
    if len(x) == 1:  # one live window: what step() does at batch 1
        return lambda: head.step(start, x, 0, times, starts, threads=threads)
    return lambda: integrate(head.rates(x, threads, stop_spinning), np.zeros(len(x)), times, starts,
                             head.power(x), head.constants, start)
