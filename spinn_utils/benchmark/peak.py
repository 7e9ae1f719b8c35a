"""The machine's limit beside every number: the sustained fp32 GEMM rate, and each variant's share.

An n x n by n x n fp32 ``torch.mm`` (2 n^3 FLOPs) runs ``GEMM_REPEATS`` times at each thread
count; its median is what the BLAS library (oneDNN/MKL, cuBLAS) sustains on this machine. A
variant's achieved rate is its useful FLOPs per call (``flops_nonzero`` per row x batch) over
its median time, and ``pct_of_gemm_peak`` that rate as a share of the GEMM rate at the same
threads: far below 100% at batch 1 (call overhead), near it at large batches; int8 can pass it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..core.timing import timed_block

GEMM_REPEATS = 5  # timed matmuls per thread count (after one untimed); the median is the rate


def rate_gflops(flops: float, ms: float) -> float:
    """GFLOP/s of ``flops`` floating-point operations done in ``ms`` milliseconds."""
    return flops / (ms * 1e6)


def gemm_gflops(n: int, ms: float) -> float:
    """GFLOP/s of one n x n x n matmul (2 n^3 FLOPs) that took ``ms`` milliseconds."""
    return rate_gflops(2.0 * n ** 3, ms)


def gemm_summary(n: int, samples_ms: list[float], threads: int, where: str) -> dict:
    """The JSON record of one GEMM measurement: median (sustained) and best rate."""
    median = float(np.median(samples_ms))
    return {"threads": threads, "n": n, "repeats": len(samples_ms), "median_ms": median, "where": where,
            "gflops_per_s": gemm_gflops(n, median), "best_gflops_per_s": gemm_gflops(n, min(samples_ms))}


def gemm_samples(n: int, repeats: int, device: torch.device, time_call: Callable) -> list[float]:
    """ms per ``torch.mm`` of two seeded n x n fp32 matrices, after one untimed call."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
    with torch.inference_mode():
        return timed_block(lambda: time_call(lambda x: torch.mm(x, b), a), min_calls=repeats)


def add_rates(rows: list[dict], variants: dict[str, dict], peaks: dict[int, float]) -> list[dict]:
    """Set ``gflops_per_s`` and ``pct_of_gemm_peak`` (null where the thread count has no GEMM
    rate) on every timing row, from each variant's ``flops_nonzero`` per row."""
    for r in rows:
        flops = variants[r["variant"]]["flops_nonzero"] * r["batch_size"]
        r["gflops_per_s"] = rate_gflops(flops, r["median_ms"]) if r["median_ms"] > 0 else None
        peak = peaks.get(r["threads"])
        r["pct_of_gemm_peak"] = 100.0 * r["gflops_per_s"] / peak if peak and r["gflops_per_s"] else None
    return rows
