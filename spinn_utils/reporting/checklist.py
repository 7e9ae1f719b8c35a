"""Cell 9's verdicts: the original design's validation checklist and its paper claims, from measurements.

Each checklist item (docs/original_design.md) is "pass" / "fail" / "not run" with its measured
value and threshold; each claim is "supported" / "not supported" / "not measured" with evidence.
Speedups are read at Table 1's point; a skipped benchmark is never a "pass".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.env import environment_info
from ..core.paths import ResultsPaths
from ..core.registry import DENSE_STORAGE_VARIANTS, METRICS, SPARSE_TENSOR_VARIANTS, VARIANTS
from ..core.results_files import write_result
from ..core.results_schema_eval import ChecklistItem, Claim, TimingRow, ValidationChecklist
from ..core.results_schema_sweep import Sweep
from ..core.spread import mean_sem
from ..core.stages import contract_files
from .results import (
    NOT_MEASURED,
    ReportConfig,
    RunResults,
    bench_measured,
    bench_point,
    check_item,
    cv_summary,
    evaluation_part,
    fastest_matching,
    judge,
    leakage_item,
    load_results,
    model_params,
    outputs_match,
    skip_reason,
    timing,
    weight_bytes,
)
from .sweep_checks import generalisation_evidence, sweep_items
from .sweep_report import load_sweep

CONVERSION_KEYS = ("source", "format", "params", "storage_bytes", "validation", "conversion_ok")
SPEEDUP_ITEMS = (  # (key in Speedups, what the checklist calls it); the last one on the CPU only
    ("coo", "COO, the original design"),
    ("fastest", "fastest matching unstructured"),
    ("structured", "structured SPINN"),
    ("deployable", "deployable SPINN: structured, ONNX Runtime"),
)


def _r3(value) -> str:
    return NOT_MEASURED if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class Timed:
    """A timing row the checklist judges; a variant whose outputs differ is not timed (``row``
    None) and never a win."""

    row: TimingRow | None
    variant: str
    outputs_differ: bool = False


@dataclass(frozen=True)
class Speedups:
    """Timing rows at Table 1's point (``where``); None: not timed there (or not measured)."""

    where: str
    coo: Timed | None = None
    sparse: Timed | None = None  # the best torch.sparse layout whose outputs matched
    fastest: Timed | None = None  # the fastest matching unstructured representation
    structured: Timed | None = None
    deployable: Timed | None = None  # structured SPINN in ONNX Runtime
    deployable_dense: Timed | None = None  # dense in ONNX Runtime


def _speedups(results: RunResults, device: str, cfg: ReportConfig, threads: int | None = None) -> Speedups:
    """Timing rows of COO, the best sparse layout, the fastest matching and structured SPINN."""
    bench = results.benchmark(device)
    if not bench_measured(bench):
        return Speedups(where=skip_reason(bench, device))
    batch, threads = bench_point(bench, cfg.batch_size, threads)

    def named(variant: str) -> Timed | None:
        row, differ = timing(bench, variant, batch, threads), outputs_match(bench, variant) is False
        return None if row is None and not differ else Timed(row, variant, differ)

    def plain(row: TimingRow | None) -> Timed | None:
        return None if row is None else Timed(row, row.variant)

    return Speedups(
        where=f"batch {batch}, threads={threads}",
        coo=named(VARIANTS.coo),
        sparse=plain(fastest_matching(bench, batch, threads, SPARSE_TENSOR_VARIANTS)),
        fastest=plain(fastest_matching(bench, batch, threads)),
        structured=named(VARIANTS.structured),
        deployable=named(VARIANTS.structured_ort),
        deployable_dense=named(VARIANTS.dense_ort),
    )


def _speed(timed: Timed | None) -> float | None:
    """A row's speedup, or None where it was not measured (no dense row at that point)."""
    return None if timed is None or timed.row is None else timed.row.speedup_vs_dense


def _test_r2(results: RunResults) -> tuple[float | None, float | None]:
    """(SPINN, dense) test mean per-output R2; SPINN is the COO model, else the masked one."""
    models = {} if results.test_evaluation is None else results.test_evaluation.models
    r2 = {v: m.mean_r2 for v, m in models.items()}
    spinn = r2.get(VARIANTS.coo)
    return (r2.get(VARIANTS.masked) if spinn is None else spinn), r2.get(VARIANTS.dense)


def _speed_items(results: RunResults, cfg: ReportConfig) -> list[ChecklistItem]:
    """The speedup items (COO, fastest matching, structured) on GPU then CPU, and the deployable
    model's on CPU (against dense PyTorch eager, the same-runtime ratio beside it)."""
    items = []
    for device, need in (("gpu", cfg.gpu_speedup_min), ("cpu", cfg.cpu_speedup_min)):
        found = _speedups(results, device, cfg)
        for key, what in SPEEDUP_ITEMS if device == "cpu" else SPEEDUP_ITEMS[:-1]:
            row = getattr(found, key)
            value, versus = _speed(row), ""
            detail = f"{row.variant}, {found.where}" if row and key != "deployable" else found.where
            if key == "deployable":
                versus, ort = " vs dense PyTorch eager", found.deployable_dense
                if value is not None and ort and ort.row:
                    detail += (f"; same runtime (dense / structured, both ONNX Runtime) "
                               f"{ort.row.median_ms / row.row.median_ms:.2f}x")
            status = judge(value, value is not None and value >= need)
            if row and row.outputs_differ:
                status, detail = "fail", detail + "; outputs differ from its reference: no win"
            items.append(check_item(f"{device.upper()} speedup ({what})", status, value,
                                    f">= {need}x{versus}", detail))
    return items


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
    item = "Physics holds (wear never falls; thermal residual at the data's noise)"
    rule = "0% wear drops; residual <= the measured data's"
    block = evaluation_part(results, "physics_consistency")
    if block is None:
        return check_item(item, "not run", None, rule)
    rows = [m for v in DENSE_STORAGE_VARIANTS if (m := block.models.get(v)) is not None]
    drops = max((m.wear_decrease_fraction for m in rows if m.wear_decrease_fraction is not None),
                default=None)
    worst = max((m.thermal_ode_residual_rms_um for m in rows
                 if m.thermal_ode_residual_rms_um is not None), default=None)
    floor = None if block.measured is None else block.measured.thermal_ode_residual_rms_um
    ok = drops == 0.0 and (floor is None or worst is None or worst <= floor)
    detail = ("" if drops is None else
              f"{results.test_evaluation.physics} physics; worst wear-drop share {drops:.1%}")
    if worst is not None and floor is not None:
        detail += f"; worst thermal residual {worst:.3g} um vs the measured data's {floor:.3g} um"
    return check_item(item, judge(drops, ok), drops, rule, detail)


def checklist_items(
    results: RunResults, missing: list[str], cfg: ReportConfig | None = None
) -> list[ChecklistItem]:
    """The original design's checklist judged from ``results``, each item "pass", "fail" or "not
    run"; ``missing``: the contract files (``core.stages.contract_files()``) that do not exist."""
    cfg = cfg or ReportConfig()
    conv = results.sparse_conversion_report
    ok = None if conv is None else conv.conversion_ok
    items = [leakage_item(results), check_item("Sparse conversion completes without errors",
                   "not run" if conv is None else ("pass" if ok else "fail"), ok,
                   "conversion_ok is true")]
    evaluation = results.test_evaluation
    match = None if evaluation is None else evaluation.sparse_vs_masked
    diffs = {
        "conversion validation": None if conv is None else conv.validation.max_abs_diff,
        "test set, sparse vs masked": None if match is None else match.max_abs_diff,
    }
    # A NaN difference is written as null: a check that says it failed fails, whatever is left.
    failed = False in (None if conv is None else conv.validation.passed,
                       None if match is None else match.passed)
    diffs = {k: v for k, v in diffs.items() if v is not None}
    worst = max(diffs.values(), default=None)
    items.append(check_item(
        "Predictions match dense pruned model",
        "fail" if failed else judge(worst, worst is not None and worst < cfg.match_atol), worst,
        f"max abs diff < {cfg.match_atol:g}", "; ".join(f"{k}: {v:.3g}" for k, v in diffs.items())))
    items += [*_speed_items(results, cfg), physics_item(results, cfg),
              physics_holds_item(results)]
    spinn, dense = _test_r2(results)
    cv = cv_summary(results, "spinn")
    floor = cfg.seed_mean_r2 - cfg.r2_tolerance
    items.append(check_item(
        f"R2 matches previous training ({cfg.seed_mean_r2} overall)",
        judge(spinn, spinn is not None and spinn >= floor), spinn,
        f"SPINN test mean per-output R2 >= {floor:.2f}",
        f"dense reference {_r3(dense)}; CV SPINN "
        + (f"{cv.mean:.3f} +- {cv.std:.3f}" if cv and cv.mean is not None else NOT_MEASURED)))
    n_files = len(contract_files())
    items.append(check_item("All results saved (every contract file exists)",
                       "fail" if missing else "pass", f"{n_files - len(missing)}/{n_files}",
                       "all present", "missing: " + ", ".join(missing) if missing else ""))
    # A report read through its schema holds every key; only a missing file fails here.
    items.append(check_item("Conversion report saved in results/metrics/", "pass" if conv else "fail",
                       conv is not None,
                       "sparse_conversion_report.json with " + ", ".join(CONVERSION_KEYS),
                       "" if conv else "not written (run notebook 05_5)"))
    return items


def verdict(parts: list[bool | None]) -> str:
    """Any measured part failing: not supported; every part measured and holding: supported."""
    if any(p is False for p in parts):
        return "not supported"
    return "supported" if parts and all(p is True for p in parts) else NOT_MEASURED


def _speed_text(timed: Timed | None) -> str:
    return NOT_MEASURED if _speed(timed) is None else f"{timed.variant} {_speed(timed):.2f}x"


def _speed_claims(results: RunResults, cfg: ReportConfig) -> list[Claim]:
    parts, evidence = [], []
    for device, claimed in (("gpu", cfg.claimed_gpu_speedup), ("cpu", cfg.claimed_cpu_speedup)):
        found = _speedups(results, device, cfg)
        best = found.sparse
        parts.append(None if _speed(best) is None else _speed(best) >= claimed)
        evidence.append(
            f"{device.upper()} ({found.where}): best sparse layout {_speed_text(best)}, "
            f"COO {_speed_text(found.coo)}, "
            f"structured {_speed_text(found.structured)}; claimed {claimed}x")
    edge = _speedups(results, "cpu", cfg, threads=cfg.edge_threads)
    best = edge.sparse
    edge_ok = None if _speed(best) is None else _speed(best) >= cfg.claimed_cpu_speedup
    bench = results.cpu_benchmark
    cpu = (None if bench is None else bench.environment.cpu_model) or "an unknown CPU"
    return [
        Claim(claim="Sparse tensor operations achieve 2.5x GPU and 3.3x CPU inference speedup",
              verdict=verdict(parts), evidence="; ".join(evidence)),
        Claim(claim="CPU speedup validates feasibility for edge manufacturing IoT devices",
              verdict=verdict([edge_ok]),
              evidence=f"CPU ({edge.where}): best sparse layout {_speed_text(best)}, structured "
                       f"{_speed_text(edge.structured)}, deployable structured in ONNX Runtime "
                       f"{_speed_text(edge.deployable)} (not the claim's sparse tensors); "
                       f"claimed {cfg.claimed_cpu_speedup}x; measured on {cpu}, not on an edge device"),
    ]


def _paired_values(results: RunResults, over: str) -> list[float]:
    """SPINN - dense mean per-output R2 per CV fold (``over="cross_validation"``) or per seed."""
    block = evaluation_part(results, over)
    return [] if block is None else [v for v in block.difference.mean_r2.values if v is not None]


def _accuracy_claims(results: RunResults, cfg: ReportConfig, sweep: Sweep | None = None) -> list[Claim]:
    spinn, dense = _test_r2(results)
    folds, seeds = _paired_values(results, "cross_validation"), _paired_values(results, "seed_runs")
    diff = mean_sem(folds + seeds)
    dense_p, spinn_p = model_params(results, VARIANTS.dense), model_params(results, VARIANTS.masked)
    compressed = None if not (dense_p and spinn_p) else spinn_p.nonzero < dense_p.nonzero
    better_test = None if spinn is None or dense is None else spinn > dense
    # Decision rule: a gain counts only when the mean paired difference over folds and seeds
    # exceeds one standard error; one test split or one seed is noise, not an improvement.
    better_cv = None if diff["sem"] is None else diff["mean"] > diff["sem"]
    sem = "n/a" if diff["sem"] is None else f"{diff['sem']:.3f}"
    r2_text = (f"test mean per-output R2 dense {_r3(dense)} -> SPINN {_r3(spinn)}; paired difference "
               "(SPINN - dense) over CV folds and seeds "
               + (NOT_MEASURED if diff["mean"] is None else f"{diff['mean']:+.3f} (standard error "
                  f"{sem}, {len(folds)} folds + {len(seeds)} seeds)"))
    tol = cfg.claimed_r2_tolerance
    as_claimed = (None if dense is None or spinn is None else
                  dense <= cfg.claimed_dense_r2 + tol and spinn >= cfg.claimed_spinn_r2 - tol)
    nonzero = [None if p is None else p.nonzero for p in (dense_p, spinn_p)]
    return [
        Claim(claim="Pruning provides dual benefit: compression AND generalization improvement",
              verdict=verdict([compressed, better_test, better_cv]),
              evidence=f"non-zero parameters {nonzero[0]} -> {nonzero[1]}; "
                       f"{r2_text}; decision rule: improvement only when the mean paired difference "
                       "exceeds one standard error"
                       + (f"; {generalisation_evidence(sweep)}" if sweep is not None else "")),
        Claim(claim=f"Pruning improves R2 {cfg.claimed_dense_r2} -> {cfg.claimed_spinn_r2}",
              verdict=verdict([as_claimed]), evidence=f"{r2_text}; tolerance {tol}"),
    ]


def _memory_claim(results: RunResults, cfg: ReportConfig) -> Claim:
    dense_b, coo_b = weight_bytes(results, VARIANTS.dense), weight_bytes(results, VARIANTS.coo)
    limit_mb = cfg.claimed_spinn_mb * (1 + cfg.claimed_memory_tolerance)
    others = [f"{v} {b / 1e6:.2f} MB" for v in (VARIANTS.csr, VARIANTS.structured)
              if (b := weight_bytes(results, v)) is not None]
    evidence = (f"dense {dense_b / 1e6:.2f} MB -> COO {coo_b / 1e6:.2f} MB, indices counted"
                if dense_b and coo_b else f"COO storage {NOT_MEASURED}")
    structured = weight_bytes(results, VARIANTS.structured)
    if structured is not None and structured / 1e6 <= limit_mb:
        others.append("structured SPINN meets the figure with physically smaller layers")
    return Claim(claim=f"Memory {cfg.claimed_dense_mb} MB -> {cfg.claimed_spinn_mb} MB "
                       "(the original design's COO representation)",
                 verdict=verdict([None if coo_b is None else coo_b / 1e6 <= limit_mb]),
                 evidence="; ".join([evidence, *others, "the claimed 0.84 MB counted values only"]))


def claims(results: RunResults, cfg: ReportConfig | None = None, sweep: Sweep | None = None) -> list[Claim]:
    """Each key claim of the original paper text, with its verdict and evidence."""
    cfg = cfg or ReportConfig()
    return [*_speed_claims(results, cfg), *_accuracy_claims(results, cfg, sweep),
            _memory_claim(results, cfg)]


def checklist(results: RunResults, missing: list[str], cfg: ReportConfig | None = None,
              device=None, sweep: Sweep | None = None) -> ValidationChecklist:
    """The ``validation_checklist.json`` record: items, claims, thresholds, the environment;
    ``sweep`` (a ``sweep/sweep.json``) adds its items (``sweep_checks``) and its evidence."""
    cfg = cfg or ReportConfig()
    items = [*checklist_items(results, missing, cfg), *sweep_items(sweep, cfg)]
    return ValidationChecklist(items=items, claims=claims(results, cfg, sweep),
                               config=cfg.model_dump(), environment=environment_info(device))


def checklist_frames(check: ValidationChecklist) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, claims) as DataFrames for a compact printed table."""
    items = pd.DataFrame([i.model_dump() for i in check.items])[["item", "status", "measured", "threshold", "detail"]]
    items["measured"] = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in items["measured"]]
    return items, pd.DataFrame([c.model_dump() for c in check.claims])[["claim", "verdict", "evidence"]]


def build_checklist(paths: ResultsPaths, cfg: ReportConfig | None = None, device=None) -> ValidationChecklist:
    """Validation checklist and claims verdict of the run in ``paths`` (reads only its results)."""
    missing = [f for f in contract_files() if not (paths.root / f).is_file()]
    return checklist(load_results(paths), missing, cfg or ReportConfig(), device, load_sweep(paths.root))


def write_checklist(check: ValidationChecklist, paths: ResultsPaths) -> Path:
    """``metrics/validation_checklist.json`` through its schema."""
    return write_result(paths.metric(METRICS.validation_checklist), check)
