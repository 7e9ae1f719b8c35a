"""Notebooks 06 and 07's tables of a benchmark record: latency and speedup, GFLOP/s, variants, fastest.

Each takes the ``Benchmark`` (or ``BenchmarkSkipped``, shown as its reason) that
``benchmark.run.run_benchmark`` returned or ``read_result`` read back.
"""
from __future__ import annotations

import pandas as pd

from ..core.results_schema_eval import Benchmark, BenchmarkSkipped


def _pivot(result: Benchmark | BenchmarkSkipped, cell) -> pd.DataFrame:
    """Rows (threads, batch), one column per timed variant, ``cell(row)`` in each."""
    if isinstance(result, BenchmarkSkipped):
        return pd.DataFrame({"skipped": [result.reason]})
    frame = pd.DataFrame([r.model_dump() for r in result.results])
    frame["cell"] = [cell(r) for r in frame.itertuples()]
    order = list(dict.fromkeys(frame["variant"]))
    return frame.pivot(index=["threads", "batch_size"], columns="variant", values="cell")[order]


def results_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """'median ms (speedup x, IQR of the per-rotation speedups)' per (threads, batch) and variant."""
    return _pivot(result, lambda r: f"{r.median_ms:.3g} ms" + (
        "" if pd.isna(r.speedup_vs_dense) else f" ({r.speedup_vs_dense:.2f}x, IQR {r.speedup_iqr:.2f})"))


def limits_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """Achieved GFLOP/s (% of the GEMM rate) per (threads, batch) and variant."""
    return _pivot(result, lambda r: "-" if pd.isna(r.gflops_per_s) else f"{r.gflops_per_s:.3g}" + (
        "" if pd.isna(r.pct_of_gemm_peak) else f" ({r.pct_of_gemm_peak:.0f}%)"))


def variants_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """One row per variant: format, storage, FLOPs, parameters and the outputs check."""
    if isinstance(result, BenchmarkSkipped):
        return pd.DataFrame({"skipped": [result.reason]})
    return pd.DataFrame([
        {"variant": name, "format": v.format, "dtype": v.dtype, "storage_kb": v.storage_bytes / 1024,
         "flops": v.flops, "flops_ratio_vs_dense": v.flops_ratio_vs_dense, "nonzero_params": v.params.nonzero,
         "reference": v.reference, "outputs_match": v.outputs_match, "max_abs_diff": v.max_abs_diff}
        for name, v in result.variants.items()]).set_index("variant")


def fastest_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """The fastest matching non-dense variant per (threads, batch)."""
    if isinstance(result, BenchmarkSkipped) or not result.fastest:
        return pd.DataFrame({"fastest": [getattr(result, "reason", "no non-dense variant matched its reference")]})
    return pd.DataFrame([f.model_dump() for f in result.fastest]).set_index(["threads", "batch_size"])
