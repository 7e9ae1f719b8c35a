"""The checklist's sweep items, judged from ``sweep/sweep.json`` when a sweep exists: magnitude
beats random pruning, and the sparse-storage break-even sparsity (the rules: docs/sweeps.md); and
the sweep's paired SPINN - dense difference as evidence for the generalisation claim.
"""
from __future__ import annotations

from ..compression.magnitude import PruneConfig
from ..core.registry import VARIANTS
from ..core.results_schema_eval import ChecklistItem
from ..core.results_schema_sweep import Sweep
from .results import NOT_MEASURED, ReportConfig, check_item
from .sweep_report import (
    SHORT,
    SPARSE_STORAGE,
    PairedDifference,
    break_even,
    percent,
    summary_of,
    timing_busy,
)

MAG_RULE = ("at every sparsity: mean paired difference (magnitude - random, test mean per-output R2, "
            "over seeds) > one standard error, with >= 2 seeds")


def _diff_text(row: PairedDifference) -> str:
    sem = "n/a" if row.sem is None else f"{row.sem:.3f}"
    return f"{percent(row.sparsity)}: {row.mean:+.3f} (standard error {sem}, {row.n} seeds)"


def magnitude_item(sweep: Sweep) -> ChecklistItem:
    item = "Magnitude beats random pruning (sweep)"
    rows = summary_of(sweep).magnitude_vs_random
    judged = [r for r in rows if r.beats is not None]
    if not judged:
        why = "no sparsity with both methods" if not rows else "fewer than 2 paired seeds"
        return check_item(item, "not run", None, MAG_RULE, f"{why} in sweep.json")
    wins = sum(r.beats for r in judged)
    status = "pass" if wins == len(judged) else "fail"
    return check_item(item, status, f"{wins}/{len(judged)} sparsities", MAG_RULE,
                      "; ".join(_diff_text(r) for r in rows))


def break_even_item(sweep: Sweep, cfg: ReportConfig) -> ChecklistItem:
    design = PruneConfig().target_sparsity
    stored = {(r.variant, r.batch_size): r for r in summary_of(sweep).break_even}
    found = {(v, b): stored.get((v, b)) or break_even(sweep, v, b)
             for b in (cfg.batch_size, 1) for v in SPARSE_STORAGE}
    at_table = [found[(v, cfg.batch_size)] for v in SPARSE_STORAGE]
    measured = [r.sparsity for r in at_table if r.sparsity is not None]
    # Passing needs a break-even at or below the design point; failing needs the sweep to have
    # measured that far (a sweep that stopped below 68.5% cannot say "none"); noise is no measure.
    reached = any((r.max_measured or 0) >= design for r in at_table)
    status = "pass" if measured and min(measured) <= design else ("fail" if reached else "not run")
    return check_item(
        "Sparse-storage break-even sparsity (sweep, measured)",
        "not run" if timing_busy(sweep) is not None else status,
        ", ".join(f"{SHORT[v]} b{b} {r.text}" for (v, b), r in found.items()),
        f"COO or CSR faster than dense at or below the original design's {percent(design)} "
        f"sparsity, batch {cfg.batch_size}",
        "break-even: the lowest measured sparsity from which the mean speedup over seeds is >= 1 "
        "at it and every higher sparsity; "
        + "; ".join(f"{SHORT[v]} b{b} speedups {r.speedups}" for (v, b), r in found.items()))


def sweep_items(sweep: Sweep | None, cfg: ReportConfig) -> list[ChecklistItem]:
    """The sweep's checklist items; none when no sweep was run."""
    return [] if sweep is None else [magnitude_item(sweep), break_even_item(sweep, cfg)]


def generalisation_evidence(sweep: Sweep | None) -> str:
    """The sweep's SPINN (magnitude, masked) - dense test R2 per sparsity, paired over seeds."""
    if sweep is None:
        return f"sweep: {NOT_MEASURED} (no sweep/sweep.json)"
    rows = summary_of(sweep).pruned_vs_dense
    better = [r for r in rows if r.sem is not None and r.mean > r.sem]
    return (f"sweep (magnitude {SHORT[VARIANTS.masked]} - dense, paired over seeds; light schedule, "
            f"reported, not part of the verdict): " + ("; ".join(_diff_text(r) for r in rows) or NOT_MEASURED)
            + f"; improves beyond one standard error at {len(better)} of {len(rows)} sparsities")
