"""Cell 9's verdicts: the original design's validation checklist and its paper claims, from measurements.

Each item of the original design's checklist (docs/original_design.md) is judged "pass" / "fail" / "not run"
with the measured value and the threshold next to it; each key claim of the original paper
text is "supported" / "not supported" / "not measured" with the evidence. Speedups are read
at Table 1's point (batch 1000, all threads) for COO (the original design), for the fastest
representation of the pruned weights whose outputs matched, and for structured SPINN. A
skipped GPU benchmark gives "not run" / "not measured", never "pass". Reads only the
results dict of ``results.load_results``; ``build_checklist(paths)`` is the entry point.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.env import environment_info
from ..core.io import write_json
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, SPARSE_TENSOR_VARIANTS, VARIANTS
from ..core.stages import contract_files
from .results import (
    BENCHMARKS,
    NOT_MEASURED,
    ReportConfig,
    bench_measured,
    bench_point,
    cv_summary,
    dig,
    fastest_matching,
    load_results,
    model_params,
    timing,
    weight_bytes,
)

CONVERSION_KEYS = ("source", "format", "params", "storage_bytes", "validation", "conversion_ok")
SPEEDUP_ITEMS = (  # (key in _speedups, what the checklist calls it)
    ("coo", "COO, the original design"),
    ("fastest", "fastest matching unstructured"),
    ("structured", "structured SPINN"),
)


def _item(item: str, status: str, measured, threshold: str, detail: str = "") -> dict:
    return {"item": item, "status": status, "measured": measured, "threshold": threshold,
            "detail": detail}


def _judge(value, ok: bool) -> str:
    return "not run" if value is None else ("pass" if ok else "fail")


def _r3(value) -> str:
    return NOT_MEASURED if value is None else f"{value:.3f}"


def _speedups(results: dict, device: str, cfg: ReportConfig, threads: int | None = None) -> dict:
    """Timing rows of COO, the best sparse layout, the fastest matching and structured SPINN."""
    bench = results.get(BENCHMARKS[device])
    if not bench_measured(bench):
        return {"where": dig(bench, "reason") or f"{device}_benchmark.json not written"}
    batch, threads = bench_point(bench, cfg.batch_size, threads)

    def named(variant: str) -> dict | None:
        # A variant whose outputs differ from its reference is timed but never a win.
        row = timing(bench, variant, batch, threads)
        if row and dig(bench, "variants", variant, "outputs_match") is False:
            return {**row, "outputs_differ": True}
        return row

    return {
        "where": f"batch {batch}, threads={threads}",
        "coo": named(VARIANTS.coo),
        "sparse": fastest_matching(bench, batch, threads, SPARSE_TENSOR_VARIANTS),
        "fastest": fastest_matching(bench, batch, threads),
        "structured": named(VARIANTS.structured),
        "deployable": named(VARIANTS.structured_ort),
        "deployable_dense": named(VARIANTS.dense_ort),
    }


def _speed(row: dict | None) -> float | None:
    """A row's speedup, or None where it was not measured (no dense row at that point)."""
    return None if row is None else row.get("speedup_vs_dense")


def _test_r2(results: dict) -> tuple[float | None, float | None]:
    """(SPINN, dense) test mean per-output R2; SPINN is the COO model, else the masked one."""
    models = dig(results, METRICS.test_evaluation, "models") or {}
    spinn = dig(models, VARIANTS.coo, "mean_r2")
    if spinn is None:
        spinn = dig(models, VARIANTS.masked, "mean_r2")
    return spinn, dig(models, VARIANTS.dense, "mean_r2")


def _speed_items(results: dict, cfg: ReportConfig) -> list[dict]:
    """The speedup items (COO, fastest matching, structured) on GPU then CPU."""
    items = []
    for device, need in (("gpu", cfg.gpu_speedup_min), ("cpu", cfg.cpu_speedup_min)):
        found = _speedups(results, device, cfg)
        for key, what in SPEEDUP_ITEMS:
            row = found.get(key)
            value = _speed(row)
            detail = f"{row['variant']}, {found['where']}" if row else found["where"]
            status = _judge(value, value is not None and value >= need)
            if row and row.get("outputs_differ"):
                status, detail = "fail", detail + "; outputs differ from its reference: no win"
            items.append(_item(f"{device.upper()} speedup ({what})", status, value,
                               f">= {need}x", detail))
    return items


def _deployable_item(results: dict, cfg: ReportConfig) -> dict:
    """Structured SPINN in ONNX Runtime vs dense PyTorch eager, the same-runtime ratio beside it."""
    found = _speedups(results, "cpu", cfg)
    row, dense_ort = found.get("deployable"), found.get("deployable_dense")
    value = _speed(row)
    detail = found["where"]
    if row and dense_ort:
        detail += (f"; same runtime (dense / structured, both ONNX Runtime) "
                   f"{dense_ort['median_ms'] / row['median_ms']:.2f}x")
    status = _judge(value, value is not None and value >= cfg.cpu_speedup_min)
    if row and row.get("outputs_differ"):
        status, detail = "fail", detail + "; outputs differ from its reference: no win"
    return _item("CPU speedup (deployable SPINN: structured, ONNX Runtime)", status, value,
                 f">= {cfg.cpu_speedup_min}x vs dense PyTorch eager", detail)


def _physics_item(results: dict, cfg: ReportConfig) -> dict:
    """SPINN breaks the wear physics on the test inputs no more often than dense (plus a margin)."""
    models = dig(results, METRICS.test_evaluation, "physics_consistency", "models") or {}
    spinn, dense = (dig(models, v, "wear_decrease_fraction") for v in (VARIANTS.masked, VARIANTS.dense))
    ok = spinn is not None and dense is not None and spinn <= dense + cfg.physics_margin
    detail = ("" if spinn is None or dense is None else
              f"wear decreases in {spinn:.1%} of SPINN's test steps, {dense:.1%} of dense's; thermal ODE "
              f"residual RMS {dig(models, VARIANTS.masked, 'thermal_ode_residual_rms_um')} vs "
              f"{dig(models, VARIANTS.dense, 'thermal_ode_residual_rms_um')} um")
    return _item("SPINN keeps physics consistency no worse than dense", _judge(spinn, ok), spinn,
                 f"<= dense + {cfg.physics_margin:g} (share of test steps where wear drops)", detail)


def checklist_items(
    results: dict, missing: list[str], cfg: ReportConfig | None = None
) -> list[dict]:
    """The original design's checklist judged from measurements.

    Args:
        results: ``results.load_results(paths)`` (or a hand-made dict of the same shape).
        missing: contract files (``core.stages.contract_files()``) that do not exist.
        cfg: thresholds (default ``ReportConfig()``).

    Returns:
        ``[{"item", "status": "pass|fail|not run", "measured", "threshold", "detail"}]``
    """
    cfg = cfg or ReportConfig()
    conv = results.get(METRICS.sparse_conversion)
    ok = dig(conv, "conversion_ok")
    items = [_item("Sparse conversion completes without errors",
                   "not run" if conv is None else ("pass" if ok else "fail"), ok,
                   "conversion_ok is true")]
    diffs = {
        "conversion validation": dig(conv, "validation", "max_abs_diff"),
        "test set, sparse vs masked":
            dig(results, METRICS.test_evaluation, "sparse_vs_masked", "max_abs_diff"),
    }
    # A NaN difference is written as null: a check that says it failed fails, whatever is left.
    failed = False in (dig(conv, "validation", "passed"),
                       dig(results, METRICS.test_evaluation, "sparse_vs_masked", "passed"))
    diffs = {k: v for k, v in diffs.items() if v is not None}
    worst = max(diffs.values(), default=None)
    items.append(_item(
        "Predictions match dense pruned model",
        "fail" if failed else _judge(worst, worst is not None and worst < cfg.match_atol), worst,
        f"max abs diff < {cfg.match_atol:g}", "; ".join(f"{k}: {v:.3g}" for k, v in diffs.items())))
    items += [*_speed_items(results, cfg), _deployable_item(results, cfg), _physics_item(results, cfg)]
    spinn, dense = _test_r2(results)
    cv = cv_summary(results, "spinn")
    floor = cfg.seed_mean_r2 - cfg.r2_tolerance
    items.append(_item(
        f"R2 matches previous training ({cfg.seed_mean_r2} overall)",
        _judge(spinn, spinn is not None and spinn >= floor), spinn,
        f"SPINN test mean per-output R2 >= {floor:.2f}",
        f"dense reference {_r3(dense)}; CV SPINN "
        + (f"{cv['mean']:.3f} +- {cv['std']:.3f}" if cv else NOT_MEASURED)))
    n_files = len(contract_files())
    items.append(_item("All results saved (every contract file exists)",
                       "fail" if missing else "pass", f"{n_files - len(missing)}/{n_files}",
                       "all present", "missing: " + ", ".join(missing) if missing else ""))
    absent = [k for k in CONVERSION_KEYS if k not in (conv or {})]
    items.append(_item("Conversion report saved in results/metrics/", "fail" if absent else "pass",
                       conv is not None,
                       "sparse_conversion_report.json with " + ", ".join(CONVERSION_KEYS),
                       f"missing keys {absent}" if absent else ""))
    return items


def verdict(parts: list[bool | None]) -> str:
    """Any measured part failing: not supported; every part measured and holding: supported."""
    if any(p is False for p in parts):
        return "not supported"
    return "supported" if parts and all(p is True for p in parts) else NOT_MEASURED


def _speed_text(row: dict | None) -> str:
    return NOT_MEASURED if _speed(row) is None else f"{row['variant']} {_speed(row):.2f}x"


def _speed_claims(results: dict, cfg: ReportConfig) -> list[dict]:
    parts, evidence = [], []
    for device, claimed in (("gpu", cfg.claimed_gpu_speedup), ("cpu", cfg.claimed_cpu_speedup)):
        found = _speedups(results, device, cfg)
        best = found.get("sparse")
        parts.append(None if _speed(best) is None else _speed(best) >= claimed)
        evidence.append(
            f"{device.upper()} ({found['where']}): best sparse layout {_speed_text(best)}, "
            f"COO {_speed_text(found.get('coo'))}, "
            f"structured {_speed_text(found.get('structured'))}; claimed {claimed}x")
    edge = _speedups(results, "cpu", cfg, threads=cfg.edge_threads)
    best = edge.get("sparse")
    edge_ok = None if _speed(best) is None else _speed(best) >= cfg.claimed_cpu_speedup
    cpu = dig(results, METRICS.cpu_benchmark, "environment", "cpu_model") or "an unknown CPU"
    return [
        {"claim": "Sparse tensor operations achieve 2.5x GPU and 3.3x CPU inference speedup",
         "verdict": verdict(parts), "evidence": "; ".join(evidence)},
        {"claim": "CPU speedup validates feasibility for edge manufacturing IoT devices",
         "verdict": verdict([edge_ok]),
         "evidence": f"CPU ({edge['where']}): best sparse layout {_speed_text(best)}, structured "
                     f"{_speed_text(edge.get('structured'))}, deployable structured in ONNX Runtime "
                     f"{_speed_text(edge.get('deployable'))} (not the claim's sparse tensors); "
                     f"claimed {cfg.claimed_cpu_speedup}x; measured on {cpu}, not on an edge device"},
    ]


def paired_differences(results: dict) -> dict | None:
    """SPINN - dense mean per-output R2, paired per CV fold and per seed: mean, sem and counts."""
    values, counts = [], {}
    for over in ("cross_validation", "seed_runs"):
        found = dig(results, METRICS.test_evaluation, over, "difference", "mean_r2", "values") or []
        found = [v for v in found if v is not None]
        values += found
        counts[over] = len(found)
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    sem = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "sem": sem, "n": int(arr.size), "folds": counts["cross_validation"],
            "seeds": counts["seed_runs"]}


def _accuracy_claims(results: dict, cfg: ReportConfig) -> list[dict]:
    spinn, dense = _test_r2(results)
    diff = paired_differences(results)
    dense_p, spinn_p = model_params(results, VARIANTS.dense), model_params(results, VARIANTS.masked)
    compressed = None if not (dense_p and spinn_p) else spinn_p["nonzero"] < dense_p["nonzero"]
    better_test = None if spinn is None or dense is None else spinn > dense
    # Decision rule: a gain counts only when the mean paired difference over folds and seeds
    # exceeds one standard error; one test split or one seed is noise, not an improvement.
    better_cv = None if diff is None else diff["mean"] > diff["sem"]
    r2_text = (f"test mean per-output R2 dense {_r3(dense)} -> SPINN {_r3(spinn)}; paired difference "
               "(SPINN - dense) over CV folds and seeds "
               + (f"{diff['mean']:+.3f} (standard error {diff['sem']:.3f}, {diff['folds']} folds + "
                  f"{diff['seeds']} seeds)" if diff else NOT_MEASURED))
    tol = cfg.claimed_r2_tolerance
    as_claimed = (None if dense is None or spinn is None else
                  dense <= cfg.claimed_dense_r2 + tol and spinn >= cfg.claimed_spinn_r2 - tol)
    return [
        {"claim": "Pruning provides dual benefit: compression AND generalization improvement",
         "verdict": verdict([compressed, better_test, better_cv]),
         "evidence": f"non-zero parameters {dig(dense_p, 'nonzero')} -> {dig(spinn_p, 'nonzero')}; "
                     f"{r2_text}; decision rule: improvement only when the mean paired difference "
                     "exceeds one standard error"},
        {"claim": f"Pruning improves R2 {cfg.claimed_dense_r2} -> {cfg.claimed_spinn_r2}",
         "verdict": verdict([as_claimed]), "evidence": f"{r2_text}; tolerance {tol}"},
    ]


def _memory_claim(results: dict, cfg: ReportConfig) -> dict:
    dense_b, coo_b = weight_bytes(results, VARIANTS.dense), weight_bytes(results, VARIANTS.coo)
    limit_mb = cfg.claimed_spinn_mb * (1 + cfg.claimed_memory_tolerance)
    others = [f"{v} {b / 1e6:.2f} MB" for v in (VARIANTS.csr, VARIANTS.structured)
              if (b := weight_bytes(results, v)) is not None]
    evidence = (f"dense {dense_b / 1e6:.2f} MB -> COO {coo_b / 1e6:.2f} MB, indices counted"
                if dense_b and coo_b else f"COO storage {NOT_MEASURED}")
    structured = weight_bytes(results, VARIANTS.structured)
    if structured is not None and structured / 1e6 <= limit_mb:
        others.append("structured SPINN meets the figure with physically smaller layers")
    return {"claim": f"Memory {cfg.claimed_dense_mb} MB -> {cfg.claimed_spinn_mb} MB "
                     "(the original design's COO representation)",
            "verdict": verdict([None if coo_b is None else coo_b / 1e6 <= limit_mb]),
            "evidence": "; ".join([evidence, *others, "the claimed 0.84 MB counted values only"])}


def claims(results: dict, cfg: ReportConfig | None = None) -> list[dict]:
    """Each key claim of the original paper text: ``[{"claim", "verdict", "evidence"}]``."""
    cfg = cfg or ReportConfig()
    return [*_speed_claims(results, cfg), *_accuracy_claims(results, cfg),
            _memory_claim(results, cfg)]


def checklist(results: dict, missing: list[str], cfg: ReportConfig | None = None) -> dict:
    """``{"items", "claims", "config"}``: the body of validation_checklist.json."""
    cfg = cfg or ReportConfig()
    return {"items": checklist_items(results, missing, cfg), "claims": claims(results, cfg),
            "config": cfg}


def checklist_frames(check: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, claims) as DataFrames for a compact printed table."""
    items = pd.DataFrame(check["items"])[["item", "status", "measured", "threshold", "detail"]]
    items["measured"] = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in items["measured"]]
    return items, pd.DataFrame(check["claims"])[["claim", "verdict", "evidence"]]


def build_checklist(paths: ResultsPaths, cfg: ReportConfig | None = None) -> dict:
    """Validation checklist and claims verdict of the run in ``paths`` (reads only its results).

    Returns:
        ``{"items": [{"item", "status", "measured", "threshold", "detail"}],
        "claims": [{"claim", "verdict", "evidence"}], "config"}``
    """
    missing = [f for f in contract_files() if not (paths.root / f).is_file()]
    return checklist(load_results(paths), missing, cfg or ReportConfig())


def write_checklist(check: dict, paths: ResultsPaths, device=None) -> Path:
    """``metrics/validation_checklist.json`` with the environment it was judged in."""
    return write_json(paths.metric(METRICS.validation_checklist),
                      {**check, "environment": environment_info(device)})
