"""Timings -> numbers: robust summaries, the speedup within rotations, the fastest variant.

Pure functions, tested on known numbers. Median and IQR lead: a shared machine adds long one-sided
outliers. The speedup is median(dense) / median(variant) within each rotation, and its median over
rotations is reported: drift between rotations moves both sides of a ratio alike.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import SpinnError
from ..core.registry import VARIANTS


def summarize_ms(samples_ms: list[float]) -> dict:
    """Median, quartiles, IQR, mean, std (ddof=1), min and count of timings in milliseconds."""
    if not samples_ms:
        raise SpinnError("no timings to summarize (0 repeats)")
    a = np.asarray(samples_ms, dtype=np.float64)
    q1, median, q3 = (float(q) for q in np.percentile(a, [25, 50, 75]))
    return {"median_ms": median, "iqr_ms": q3 - q1, "q1_ms": q1, "q3_ms": q3, "mean_ms": float(a.mean()),
            "std_ms": float(a.std(ddof=1)) if a.size > 1 else 0.0, "min_ms": float(a.min()), "repeats": int(a.size)}


def rotation_speedups(samples: dict[str, list[list[float]]]) -> dict[str, list[float]]:
    """Per variant, median(dense) / median(variant) of each rotation; {} where dense was not timed."""
    dense = samples.get(VARIANTS.dense)
    if not dense:
        return {}
    medians = {name: [float(np.median(block)) for block in rotations] for name, rotations in samples.items()}
    return {name: [d / v for d, v in zip(medians[VARIANTS.dense], ms) if v > 0] for name, ms in medians.items()}


def summarize_point(samples: dict[str, list[list[float]]]) -> dict[str, dict]:
    """Per variant: ``summarize_ms`` of all its timed calls, ``speedup_vs_dense`` (the median of the
    per-rotation speedups; null without dense), ``speedup_iqr`` and ``rotations``."""
    ratios = rotation_speedups(samples)
    out = {}
    for name, rotations in samples.items():
        q1, median, q3 = np.percentile(ratios[name], [25, 50, 75]) if ratios.get(name) else (None,) * 3
        out[name] = {**summarize_ms([ms for block in rotations for ms in block]), "rotations": len(rotations),
                     "speedup_vs_dense": None if median is None else float(median),
                     "speedup_iqr": None if median is None else float(q3 - q1)}
    return out


def fastest_variants(rows: list[dict], variants: dict[str, dict]) -> list[dict]:
    """Per (threads, batch): the fastest variant other than dense whose outputs matched."""
    best: dict[tuple[int, int], dict] = {}
    for r in rows:
        key = (r["threads"], r["batch_size"])
        if (r["variant"] != VARIANTS.dense and variants[r["variant"]].get("outputs_match")
                and (key not in best or r["median_ms"] < best[key]["median_ms"])):
            best[key] = r
    return [{"device": r.get("device"), "threads": t, "batch_size": b, "variant": r["variant"],
             "median_ms": r["median_ms"], "speedup_vs_dense": r["speedup_vs_dense"],
             "beats_dense": r["speedup_vs_dense"] is not None and r["speedup_vs_dense"] > 1.0}
            for (t, b), r in sorted(best.items())]
