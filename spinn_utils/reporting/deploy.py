"""Which deployable model to recommend: fp32 structured SPINN in ONNX Runtime, or its int8 version.

The int8 model is recommended only if its mean per-output test R2 is at most ``max_r2_drop``
(0.01) below the fp32 export's, and, where both were timed, it is faster at the
reporting point; otherwise the fp32 export is, and the reason says what int8 lost.
"""
from __future__ import annotations

from ..core.registry import VARIANTS
from ..core.results_schema import RegressionReport
from .results import ReportConfig, RunResults, bench_measured, bench_point, timing


def recommend_deploy(fp32: RegressionReport | None, int8: RegressionReport | None, max_r2_drop: float,
                     fp32_ms: float | None = None, int8_ms: float | None = None) -> dict:
    """The rule on known numbers.

    Args:
        fp32, int8: the test split's ``RegressionReport``s (``mean_r2``, ``per_output``).
        max_r2_drop: the largest allowed drop of the mean per-output R2 (fp32 - int8).
        fp32_ms, int8_ms: median CPU latencies at the same point, where timed.

    Returns:
        ``{"recommended", "int8_accepted", "mean_r2_drop", "per_output_r2_drop", "max_r2_drop",
        "reason"}``; ``recommended`` is None when no deployable model was scored.
    """
    out = {"recommended": None, "int8_accepted": False, "mean_r2_drop": None, "per_output_r2_drop": None,
           "max_r2_drop": max_r2_drop}
    if fp32 is None:
        return {**out, "reason": "the fp32 deployable model was not scored"}
    if int8 is None:
        return {**out, "recommended": VARIANTS.structured_ort, "reason": "no int8 model was scored"}
    drop = fp32.mean_r2 - int8.mean_r2
    per_output = {t: fp32.per_output[t].r2 - int8.per_output[t].r2 for t in fp32.per_output}
    out.update(mean_r2_drop=drop, per_output_r2_drop=per_output)
    if drop > max_r2_drop + 1e-12:  # "<= 0.01" must hold for 0.85 - 0.84 in binary floating point too
        return {**out, "recommended": VARIANTS.structured_ort,
                "reason": f"int8 not recommended: mean per-output R2 drops by {drop:.4f} > {max_r2_drop}"}
    if fp32_ms is not None and int8_ms is not None and int8_ms >= fp32_ms:
        return {**out, "recommended": VARIANTS.structured_ort,
                "reason": (f"int8 not recommended: R2 drop {drop:.4f} <= {max_r2_drop}, but it is not faster "
                           f"({int8_ms:.3g} ms vs fp32 {fp32_ms:.3g} ms)")}
    speed = f", {fp32_ms / int8_ms:.2f}x faster than fp32" if fp32_ms and int8_ms else ""
    return {**out, "recommended": VARIANTS.structured_int8_ort, "int8_accepted": True,
            "reason": f"int8 recommended: mean per-output R2 drops by {drop:.4f} <= {max_r2_drop}{speed}"}


def deploy_recommendation(results: RunResults, cfg: ReportConfig) -> dict:
    """``recommend_deploy`` on a run's test metrics and CPU timings (Table 1's point)."""
    models = {} if results.test_evaluation is None else results.test_evaluation.models
    bench = results.cpu_benchmark
    fp32_ms = int8_ms = None
    where = "not timed"
    if bench_measured(bench):
        batch, threads = bench_point(bench, cfg.batch_size)
        fp32_ms, int8_ms = (None if (row := timing(bench, v, batch, threads)) is None else row.median_ms
                            for v in (VARIANTS.structured_ort, VARIANTS.structured_int8_ort))
        where = f"CPU batch {batch}, threads={threads}"
    rec = recommend_deploy(models.get(VARIANTS.structured_ort), models.get(VARIANTS.structured_int8_ort),
                           cfg.max_int8_r2_drop, fp32_ms, int8_ms)
    return {**rec, "timed_at": where}
