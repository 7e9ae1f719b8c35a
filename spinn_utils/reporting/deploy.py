"""Which deployable model Table 1 recommends: fp32 structured SPINN in ONNX Runtime, or its int8
version only if its mean per-output test R2 is at most ``max_r2_drop`` (0.01) below the fp32
export's and, where both were timed, it is faster; the reason says what int8 lost.
"""
from __future__ import annotations

from typing import NamedTuple

from ..core.registry import VARIANTS
from ..core.results_schema import RegressionReport
from .results import NOT_MEASURED, ReportConfig, RunResults, bench_measured, bench_point, timing


class DeployChoice(NamedTuple):
    recommended: str | None  # None: the fp32 deployable model was not scored
    reason: str


def recommend_deploy(fp32: RegressionReport | None, int8: RegressionReport | None, max_r2_drop: float,
                     fp32_ms: float | None = None, int8_ms: float | None = None) -> DeployChoice:
    """The rule on the test split's scores and, where timed, the median CPU ms at one point."""
    if fp32 is None:
        return DeployChoice(None, "the fp32 deployable model was not scored")
    if int8 is None:
        return DeployChoice(VARIANTS.structured_ort, "no int8 model was scored")
    drop = fp32.mean_r2 - int8.mean_r2
    fp32_only, within = VARIANTS.structured_ort, f"{drop:.4f} <= {max_r2_drop}"
    if drop > max_r2_drop + 1e-12:  # "<= 0.01" must hold for 0.85 - 0.84 in binary floating point too
        return DeployChoice(fp32_only, "int8 not recommended: mean per-output R2 drops by "
                                       f"{drop:.4f} > {max_r2_drop}")
    if fp32_ms is not None and int8_ms is not None and int8_ms >= fp32_ms:
        return DeployChoice(fp32_only, f"int8 not recommended: R2 drop {within}, but it is not "
                                       f"faster ({int8_ms:.3g} ms vs fp32 {fp32_ms:.3g} ms)")
    speed = f", {fp32_ms / int8_ms:.2f}x faster than fp32" if fp32_ms and int8_ms else ""
    return DeployChoice(VARIANTS.structured_int8_ort,
                        f"int8 recommended: mean per-output R2 drops by {within}{speed}")


def deploy_note(results: RunResults, cfg: ReportConfig) -> str:
    """Table 1's note: ``recommend_deploy`` on the run's test scores and CPU timings there."""
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
    return f"Deploy: {rec.recommended or NOT_MEASURED} ({rec.reason}; {where})."
