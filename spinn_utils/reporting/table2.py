"""Table 2: the variants against baselines, with each model's physics consistency.

Is the network worth it (vs the training mean and ridge regression), and the physics loss
(vs the same network trained without it)? Every cell is read from ``test_evaluation.json``
(``models``, ``baselines``, ``physics_consistency``); "not measured" where a part was skipped.
"""
from __future__ import annotations

import pandas as pd

from ..core.paths import ResultsPaths
from ..core.registry import BASELINES, LABELS, TABLE2, VARIANTS
from ..core.results_schema_eval import TestEvaluation
from ..core.spread import mean_sem
from .results import NOT_MEASURED, RunResults, load_results, ran
from .table1 import mark_leakage, write_table

COLUMNS = {  # column -> (where in test_evaluation.json, model name)
    "Train mean": ("baselines", BASELINES.train_mean),
    "Linear (ridge)": ("baselines", BASELINES.linear),
    "Physics only": ("baselines", BASELINES.physics_only),
    "Dense PINN, no physics": ("baselines", BASELINES.no_physics),
    "Dense PINN, soft physics": ("physics", "soft"),  # the run's dense model or a baseline: _where
    "Dense PINN, hard physics": ("physics", "hard"),
    **{LABELS[v]: ("models", v) for v in (VARIANTS.masked, VARIANTS.structured)},
    "Measured (test data)": ("measured", ""),
}
ROWS = (
    ("Tool wear R2 (test)", "r2"), ("Thermal R2 (test)", "r2"), ("Mean per-output R2 (test)", "r2"),
    ("Tool wear RMSE", "float"), ("Thermal RMSE", "float"),
    ("Wear decreases (share of time steps)", "share"), ("Thermal ODE residual RMS (um)", "float"),
)


def _where(evaluation: TestEvaluation, physics: str) -> tuple[str, str]:
    """Where the dense PINN with ``physics`` ("soft" | "hard") is: the run's own dense model, or
    the baseline trained with the other option ("none" where baselines were skipped)."""
    if evaluation.physics == physics:
        return "models", VARIANTS.dense
    other = {"soft": BASELINES.soft_physics, "hard": BASELINES.hard_physics}[physics]
    baselines = ran(evaluation.baselines)
    return ("baselines", other) if baselines is not None and other in baselines.models else ("none", "")


def _column(evaluation: TestEvaluation | None, where: str, model: str) -> list:
    """A model's cells; None (shown "not measured") where 08 has not run or the part was skipped."""
    if evaluation is not None and where == "physics":
        where, model = _where(evaluation, model)
    if evaluation is None or where == "none":
        return [None] * len(ROWS)
    baselines, consistency = ran(evaluation.baselines), ran(evaluation.physics_consistency)
    scored = {"models": evaluation.models,
              "baselines": {} if baselines is None else baselines.models}
    metrics = scored.get(where, {}).get(model)
    physics = (None if consistency is None else consistency.measured if where == "measured"
               else consistency.models.get(model))
    cells = [None] * 5
    if metrics is not None:
        wear, thermal = (metrics.per_output[t] for t in list(metrics.per_output)[:2])
        cells = [wear.r2, thermal.r2, metrics.mean_r2, wear.rmse, thermal.rmse]
    return cells + ([None, None] if physics is None else
                    [physics.wear_decrease_fraction, physics.thermal_ode_residual_rms_um])


def table2(results: RunResults) -> pd.DataFrame:
    """Rows ``ROWS``, one column per model of ``COLUMNS``; cells are the JSON values."""
    evaluation = results.test_evaluation
    cells = {col: _column(evaluation, *where) for col, where in COLUMNS.items()}
    frame = pd.DataFrame({col: [NOT_MEASURED if v is None else v for v in values]
                          for col, values in cells.items()},
                         index=pd.Index([label for label, _ in ROWS], name="Metric"), dtype=object)
    consistency = None if evaluation is None else ran(evaluation.physics_consistency)
    tol = None if consistency is None else consistency.wear_drop_tol_mm
    units = {} if evaluation is None else evaluation.units
    frame.attrs.update(name=TABLE2, row_format=dict(ROWS),
                       title="Table 2: baselines, the physics ablation and physics consistency (this run)",
                       notes=[
        "Train mean predicts the training split's mean; Linear is ridge regression on the same "
        "scaled inputs; Physics only is the lumped thermal model and Archard's law with no learning "
        "(wear coefficient and idle minutes between runs fitted on the training split); 'no physics' "
        "is the dense PINN trained with every physics weight 0; soft physics puts the physics in the "
        "loss, hard physics builds it in (wear integrates a non-negative rate, displacement is the "
        "thermal ODE's exact solution). Same widths, schedule and seed; all on the same test experiments.",
        f"RMSE in the targets' units ({', '.join(f'{t}: {u}' for t, u in units.items()) or 'see JSON'}).",
        "Wear decreases: share of consecutive test predictions within an experiment, in time order, "
        f"where predicted wear drops by more than {tol if tol is not None else NOT_MEASURED} mm (0 is "
        "physical). Thermal ODE residual: RMS over consecutive windows of one run of delta_i minus the "
        "thermal model's exact step from delta_(i-1) (textbook tau and G, the power input); the "
        "measured data's own value is the floor its noise sets.",
    ])
    if consistency is not None and consistency.measured is not None \
            and consistency.measured.thermal_ode_residual_rms_um is None:
        frame.attrs["notes"].append(
            "The data has no power input the thermal model can use (notebook 01's record): the physics-only "
            "thermal prediction runs on 1 kW and is not a physical one, and no thermal residual is measured.")
    return mark_leakage(frame, results)


def table2_over_runs(runs: list[RunResults]) -> pd.DataFrame:
    """Table 2 of several runs (seeds) of one setting: each cell ``mean +- std`` over the runs
    that measured it (``core.spread.mean_sem``: one run has no spread and says so)."""
    frames = [table2(r) for r in runs]
    first = frames[0]

    def cell(row: str, col: str) -> str:
        values = [f.loc[row, col] for f in frames if isinstance(f.loc[row, col], (int, float))]
        stats = mean_sem(values)
        if stats["mean"] is None:
            return NOT_MEASURED
        share = first.attrs["row_format"][row] == "share"
        fmt = (lambda v: f"{100 * v:.1f}%") if share else (lambda v: f"{v:.3g}" if abs(v) < 1e-2 else f"{v:.3f}")
        return fmt(stats["mean"]) + ("" if stats["std"] is None else f" +- {fmt(stats['std'])}")

    out = pd.DataFrame({c: [cell(r, c) for r in first.index] for c in first.columns}, index=first.index)
    out.attrs.update(first.attrs, name=f"{TABLE2}_seeds", row_format={r: "text" for r in first.index},
                     title=f"Table 2 over {len(runs)} runs: mean +- std (sample std, ddof 1)")
    return out


def build_table2(paths: ResultsPaths) -> pd.DataFrame:
    """Table 2 of the run in ``paths`` (reads only its results JSONs)."""
    return table2(load_results(paths))


write_table2 = write_table  # tables/table2.{md,tex,csv}, the name notebook 09 calls
