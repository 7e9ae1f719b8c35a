"""The checklist's physics items: does each model keep the physics it claims?

``physics_item`` compares SPINN with dense (pruning must not break the physics);
``physics_holds_item`` asks whether the run's models keep it at all: predicted wear never
falls, and the thermal residual is no larger than the measured data's own (its noise floor).
Both read notebook 08's ``physics_consistency`` block.
"""
from __future__ import annotations

from ..core.registry import DENSE_STORAGE_VARIANTS, VARIANTS
from ..core.results_schema_eval import ChecklistItem
from .results import ReportConfig, RunResults, check_item, evaluation_part, judge


def physics_item(results: RunResults, cfg: ReportConfig) -> ChecklistItem:
    """SPINN breaks the wear physics on the test inputs no more often than dense (plus a margin)."""
    block = evaluation_part(results, "physics_consistency")
    models = {} if block is None else block.models
    masked, dense_m = models.get(VARIANTS.masked), models.get(VARIANTS.dense)
    spinn, dense = (None if m is None else m.wear_decrease_fraction for m in (masked, dense_m))
    ok = spinn is not None and dense is not None and spinn <= dense + cfg.physics_margin
    detail = ("" if spinn is None or dense is None else
              f"wear decreases in {spinn:.1%} of SPINN's test steps, {dense:.1%} of dense's; thermal ODE "
              f"residual RMS {masked.thermal_ode_residual_rms_um} vs "
              f"{dense_m.thermal_ode_residual_rms_um} um")
    return check_item("SPINN keeps physics consistency no worse than dense", judge(spinn, ok), spinn,
                 f"<= dense + {cfg.physics_margin:g} (share of test steps where wear drops)", detail)


def physics_holds_item(results: RunResults) -> ChecklistItem:
    """The run's models keep the physics: predicted wear never falls, and the thermal residual is
    no larger than the measured data's own (its noise floor), for dense, masked and structured."""
    block = evaluation_part(results, "physics_consistency")
    if block is None:
        return check_item("Physics holds (wear never falls; thermal residual at the data's noise)", "not run",
                     None, "0% wear drops; residual <= the measured data's")
    rows = {v: block.models.get(v) for v in DENSE_STORAGE_VARIANTS}
    rows = {v: m for v, m in rows.items() if m is not None}
    drops = max((m.wear_decrease_fraction for m in rows.values() if m.wear_decrease_fraction is not None),
                default=None)
    floor = None if block.measured is None else block.measured.thermal_ode_residual_rms_um
    residuals = [m.thermal_ode_residual_rms_um for m in rows.values() if m.thermal_ode_residual_rms_um is not None]
    worst = max(residuals, default=None)
    thermal_ok = floor is None or worst is None or worst <= floor
    ok = drops is not None and drops == 0.0 and thermal_ok
    detail = (f"{results.test_evaluation.physics} physics; worst wear-drop share {drops:.1%}" if drops is not None else "")
    if worst is not None and floor is not None:
        detail += f"; worst thermal residual {worst:.3g} um vs the measured data's {floor:.3g} um"
    return check_item("Physics holds (wear never falls; thermal residual at the data's noise)",
                 judge(drops, ok), drops, "0% wear drops; residual <= the measured data's", detail)
