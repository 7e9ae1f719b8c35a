"""Timings -> numbers and tables: robust summaries, speedups vs dense, the fastest variant.

Pure functions over the rows ``run.run_benchmark`` writes (one row per threads, batch and
variant), so the statistics are tested on known numbers, apart from any timing. Median and
IQR (not mean) lead because a shared machine adds long one-sided outliers; speedup is
median(dense) / median(variant) at the same threads and batch; the fastest variant is never
``dense`` itself and never one whose outputs differ from its reference (docs/benchmarking.md).
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from ..core.errors import SpinnError
from ..core.registry import VARIANTS
from ..core.results_schema_eval import Benchmark, BenchmarkSkipped


def summarize_ms(samples_ms: list[float]) -> dict:
    """Median, quartiles, IQR, mean, std (ddof=1), min and count of timings in milliseconds."""
    if not samples_ms:
        raise SpinnError("no timings to summarize (0 repeats)")
    a = np.asarray(samples_ms, dtype=np.float64)
    q1, median, q3 = np.percentile(a, [25, 50, 75])
    return {
        "median_ms": float(median),
        "iqr_ms": float(q3 - q1),
        "q1_ms": float(q1),
        "q3_ms": float(q3),
        "mean_ms": float(a.mean()),
        "std_ms": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "min_ms": float(a.min()),
        "repeats": int(a.size),
    }


def add_speedups(rows: list[dict]) -> list[dict]:
    """Set ``speedup_vs_dense`` = median(dense) / median(row) at the row's threads and batch."""
    dense = {(r["threads"], r["batch_size"]): r["median_ms"] for r in rows if r["variant"] == VARIANTS.dense}
    for r in rows:
        base = dense.get((r["threads"], r["batch_size"]))
        r["speedup_vs_dense"] = base / r["median_ms"] if base and r["median_ms"] > 0 else None
    return rows


def as_deployed(in_harness: list[dict], standalone: list[dict]) -> list[dict]:
    """Per standalone row: the in-harness median of the same variant and point beside it.

    ``standalone_over_in_harness`` above 1 means the harness timed the variant faster than it
    runs alone. Speedups are against dense PyTorch eager of the same kind of measurement
    (in the harness, or dense itself alone in its own process).
    """
    harness = {(r["variant"], r["threads"], r["batch_size"]): r for r in in_harness}
    dense_alone = {(r["threads"], r["batch_size"]): r["median_ms"] for r in standalone if r["variant"] == VARIANTS.dense}
    out = []
    for s in standalone:
        h = harness.get((s["variant"], s["threads"], s["batch_size"]))
        base = dense_alone.get((s["threads"], s["batch_size"]))
        out.append({
            "variant": s["variant"], "threads": s["threads"], "batch_size": s["batch_size"],
            "in_harness_median_ms": h["median_ms"] if h else None,
            "standalone_median_ms": s["median_ms"], "standalone_repeats": s["repeats"],
            "standalone_over_in_harness": s["median_ms"] / h["median_ms"] if h and h["median_ms"] > 0 else None,
            "in_harness_speedup_vs_dense": h.get("speedup_vs_dense") if h else None,
            "standalone_speedup_vs_dense": base / s["median_ms"] if base and s["median_ms"] > 0 else None,
        })
    return out


def fastest_variants(rows: list[dict], variants: dict[str, dict]) -> list[dict]:
    """Per (threads, batch): the fastest variant other than dense whose outputs matched."""
    best: dict[tuple[int, int], dict] = {}
    for r in rows:
        if r["variant"] == VARIANTS.dense or not variants[r["variant"]].get("outputs_match"):
            continue
        key = (r["threads"], r["batch_size"])
        if key not in best or r["median_ms"] < best[key]["median_ms"]:
            best[key] = r
    return [
        {"device": r.get("device"), "threads": t, "batch_size": b, "variant": r["variant"], "median_ms": r["median_ms"],
         "speedup_vs_dense": r["speedup_vs_dense"],
         "beats_dense": r["speedup_vs_dense"] is not None and r["speedup_vs_dense"] > 1.0}
        for (t, b), r in sorted(best.items())
    ]


def results_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """Rows (threads, batch), one column per variant: 'median ms (speedup x)'."""
    if isinstance(result, BenchmarkSkipped):
        return pd.DataFrame({"skipped": [result.reason]})
    frame = pd.DataFrame([asdict(r) for r in result.results])
    frame["cell"] = [
        f"{m:.3g} ms" + (f" ({s:.2f}x)" if s is not None else "")
        for m, s in zip(frame["median_ms"], frame["speedup_vs_dense"])
    ]
    order = list(dict.fromkeys(frame["variant"]))
    table = frame.pivot(index=["threads", "batch_size"], columns="variant", values="cell")
    return table[order]


def as_deployed_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """In-harness vs standalone medians of the deployable models and dense eager."""
    if isinstance(result, BenchmarkSkipped):
        return pd.DataFrame({"as_deployed": [result.reason]})
    if not result.as_deployed:
        return pd.DataFrame({"as_deployed": ["not measured (in-process or CUDA run)"]})
    return pd.DataFrame([asdict(r) for r in result.as_deployed]).set_index(["variant", "threads", "batch_size"])


def limits_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """Rows (threads, batch), one column per variant: achieved GFLOP/s (% of the GEMM rate)."""
    if isinstance(result, BenchmarkSkipped):
        return pd.DataFrame({"skipped": [result.reason]})
    frame = pd.DataFrame([asdict(r) for r in result.results])
    frame["cell"] = [f"{g:.3g} ({p:.0f}%)" if pd.notna(g) and pd.notna(p) else
                     (f"{g:.3g}" if pd.notna(g) else "-")
                     for g, p in zip(frame["gflops_per_s"], frame["pct_of_gemm_peak"])]
    order = list(dict.fromkeys(frame["variant"]))
    return frame.pivot(index=["threads", "batch_size"], columns="variant", values="cell")[order]


def variants_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """One row per variant: format, storage, FLOPs, parameters and the outputs check."""
    if isinstance(result, BenchmarkSkipped):
        return pd.DataFrame({"skipped": [result.reason]})
    return pd.DataFrame([
        {"variant": name, "format": v.format, "dtype": v.dtype,
         "storage_kb": v.storage_bytes / 1024, "flops": v.flops,
         "flops_ratio_vs_dense": v.flops_ratio_vs_dense, "nonzero_params": v.params.nonzero,
         "reference": v.reference, "outputs_match": v.outputs_match, "max_abs_diff": v.max_abs_diff}
        for name, v in result.variants.items()
    ]).set_index("variant")


def fastest_table(result: Benchmark | BenchmarkSkipped) -> pd.DataFrame:
    """The fastest matching non-dense variant per (threads, batch)."""
    if isinstance(result, BenchmarkSkipped):
        return pd.DataFrame({"fastest": [result.reason]})
    if not result.fastest:
        return pd.DataFrame({"fastest": ["no non-dense variant matched its reference"]})
    return pd.DataFrame([asdict(f) for f in result.fastest]).set_index(["threads", "batch_size"])
