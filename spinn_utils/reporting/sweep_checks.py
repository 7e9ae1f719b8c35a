"""The checklist's sweep items, judged from ``sweep/sweep.json`` (only when a sweep exists).

- "Magnitude beats random pruning": per sparsity, the test mean per-output R2 of magnitude minus
  random pruning, paired over seeds (same seed, same dense model, same fine-tuning budget).
  Rule: magnitude beats random at a sparsity when the mean paired difference exceeds one standard
  error with >= 2 seeds; the item passes when it does at every sparsity of the sweep.
- "Sparse-storage break-even sparsity": the lowest measured sparsity from which COO or CSR is
  faster than dense (and stays faster at every higher one), at batch 1 and 1000. It passes when
  one of them breaks even at or below the original design's operating point (PruneConfig's
  default target sparsity, 68.5%) at Table 1's batch, which the original design assumed.
- The "pruning improves generalisation" claim also reports the sweep's paired SPINN - dense
  difference per sparsity (evidence only: the sweep's schedule is light).
"""
from __future__ import annotations

from ..compression.magnitude import PruneConfig
from ..core.registry import VARIANTS
from ..core.results_schema_sweep import Sweep
from .results import NOT_MEASURED, ReportConfig
from .sweep_report import (
    SHORT,
    SPARSE_STORAGE,
    break_even,
    percent,
    summary_of,
    timing_busy,
)

MAG_RULE = ("at every sparsity: mean paired difference (magnitude - random, test mean per-output R2, "
            "over seeds) > one standard error, with >= 2 seeds")


def _diff_text(row: dict) -> str:
    sem = "n/a" if row["sem"] is None else f"{row['sem']:.3f}"
    return f"{percent(row['sparsity'])}: {row['mean']:+.3f} (standard error {sem}, {row['n']} seeds)"


def magnitude_item(sweep: Sweep) -> dict:
    rows = summary_of(sweep)["magnitude_vs_random"]
    judged = [r for r in rows if r["beats"] is not None]
    if not judged:
        why = "no sparsity with both methods" if not rows else "fewer than 2 paired seeds"
        return {"item": "Magnitude beats random pruning (sweep)", "status": "not run", "measured": None,
                "threshold": MAG_RULE, "detail": f"{why} in sweep.json"}
    wins = sum(r["beats"] for r in judged)
    return {"item": "Magnitude beats random pruning (sweep)", "status": "pass" if wins == len(judged) else "fail",
            "measured": f"{wins}/{len(judged)} sparsities", "threshold": MAG_RULE,
            "detail": "; ".join(_diff_text(r) for r in rows)}


def break_even_item(sweep: Sweep, cfg: ReportConfig) -> dict:
    design = PruneConfig().target_sparsity
    stored = {(r["variant"], r["batch_size"]): r for r in summary_of(sweep)["break_even"]}
    found = {(v, b): stored.get((v, b)) or break_even(sweep, v, b) for b in (cfg.batch_size, 1) for v in SPARSE_STORAGE}
    at_table = [found[(v, cfg.batch_size)]["sparsity"] for v in SPARSE_STORAGE]
    measured = [s for s in at_table if s is not None]
    reached = any((found[(v, cfg.batch_size)]["max_measured"] or 0) >= design for v in SPARSE_STORAGE)
    # Passing needs a break-even at or below the design point; failing needs the sweep to have
    # measured that far (a sweep that stopped below 68.5% cannot say "none").
    status = "pass" if measured and min(measured) <= design else ("fail" if reached else "not run")
    status = "not run" if timing_busy(sweep) is not None else status  # noise is no measurement
    return {"item": "Sparse-storage break-even sparsity (sweep, measured)", "status": status,
            "measured": ", ".join(f"{SHORT[v]} b{b} {found[(v, b)]['text']}" for (v, b) in found),
            "threshold": f"COO or CSR faster than dense at or below the original design's {percent(design)} "
                         f"sparsity, batch {cfg.batch_size}",
            "detail": "break-even: the lowest measured sparsity from which the mean speedup over seeds is "
                      ">= 1 at it and every higher sparsity; " + "; ".join(
                          f"{SHORT[v]} b{b} speedups {found[(v, b)]['speedups']}" for (v, b) in found)}


def sweep_items(sweep: Sweep | None, cfg: ReportConfig) -> list[dict]:
    """The sweep's checklist items; none when no sweep was run."""
    return [] if sweep is None else [magnitude_item(sweep), break_even_item(sweep, cfg)]


def generalisation_evidence(sweep: Sweep | None) -> str:
    """The sweep's SPINN (magnitude, masked) - dense test R2 per sparsity, paired over seeds."""
    if sweep is None:
        return f"sweep: {NOT_MEASURED} (no sweep/sweep.json)"
    rows = summary_of(sweep)["pruned_vs_dense"]
    better = [r for r in rows if r["sem"] is not None and r["mean"] > r["sem"]]
    return (f"sweep (magnitude {SHORT[VARIANTS.masked]} - dense, paired over seeds; light schedule, "
            f"reported, not part of the verdict): " + ("; ".join(_diff_text(r) for r in rows) or NOT_MEASURED)
            + f"; improves beyond one standard error at {len(better)} of {len(rows)} sparsities")
