"""Timings -> numbers and tables: robust summaries, speedups vs dense, the fastest variant.

Pure functions over the samples ``timing.rotate`` returns and the rows ``run.run_benchmark``
writes (one row per threads, batch and variant), so the statistics are tested on known numbers,
apart from any timing. Median and IQR (not mean) lead because a shared machine adds long
one-sided outliers. The speedup is taken within each rotation, median(dense) / median(variant)
of that rotation's calls, and the median over rotations is reported: a machine that drifts
between rotations moves both numbers of a ratio alike (docs/benchmarking.md). The fastest
variant is never ``dense`` itself and never one whose outputs differ from its reference.
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


def rotation_speedups(samples: dict[str, list[list[float]]]) -> dict[str, list[float]]:
    """Per variant, median(dense) / median(variant) within each rotation; {} where dense was not timed."""
    dense = samples.get(VARIANTS.dense)
    if not dense:
        return {}
    out = {}
    for name, rotations in samples.items():
        pairs = [(np.median(d), np.median(v)) for d, v in zip(dense, rotations) if d and v]
        out[name] = [float(d / v) for d, v in pairs if v > 0]
    return out


def summarize_point(samples: dict[str, list[list[float]]]) -> dict[str, dict]:
    """Per variant: ``summarize_ms`` of all its timed calls, ``speedup_vs_dense`` (the median of
    the per-rotation speedups, null without dense), ``speedup_iqr`` and ``rotations``."""
    ratios = rotation_speedups(samples)
    out = {}
    for name, rotations in samples.items():
        row = summarize_ms([ms for block in rotations for ms in block])
        q1, median, q3 = np.percentile(ratios[name], [25, 50, 75]) if ratios.get(name) else (None,) * 3
        row.update(speedup_vs_dense=None if median is None else float(median),
                   speedup_iqr=None if median is None else float(q3 - q1), rotations=len(rotations))
        out[name] = row
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
