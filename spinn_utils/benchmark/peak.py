"""The machine's limit beside every number: the sustained fp32 GEMM rate, and each variant's share.

A large square fp32 matmul (``torch.mm``, n x n by n x n: 2 n^3 FLOPs) runs a few times at each
thread count the benchmark uses; the median call is the **sustained GEMM rate**, what the BLAS
library (oneDNN/MKL on CPU, cuBLAS on CUDA) reaches on this machine when the work is large and
regular. A variant's **achieved rate** at a (threads, batch) point is its useful FLOPs per call
(``flops_nonzero`` per row x batch: 2 per non-zero weight + 1 per bias) over its median time,
and ``pct_of_gemm_peak`` is that rate as a share of the GEMM rate at the same thread count. A
small MLP is far from the GEMM rate at batch 1 (call overhead dominates) and close to it at
large batches; int8 kernels can pass 100% because their limit is not the fp32 one.

Pure arithmetic (``gemm_gflops``, ``add_rates``) is separate from the measurement, so it is
tested on known numbers.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..core.timing import timed_block

GEMM_REPEATS = 5  # timed matmuls per thread count (after one untimed); the median is the rate


def gemm_gflops(n: int, ms: float) -> float:
    """GFLOP/s of one n x n x n matmul (2 n^3 FLOPs) that took ``ms`` milliseconds."""
    return 2.0 * n ** 3 / (ms * 1e6)


def rate_gflops(flops: float, ms: float) -> float:
    """GFLOP/s of ``flops`` floating-point operations done in ``ms`` milliseconds."""
    return flops / (ms * 1e6)


def gemm_summary(n: int, samples_ms: list[float], threads: int, where: str) -> dict:
    """The JSON record of one GEMM measurement: median (sustained) and best rate."""
    median = float(np.median(samples_ms))
    return {"threads": threads, "n": n, "repeats": len(samples_ms), "median_ms": median,
            "gflops_per_s": gemm_gflops(n, median), "best_gflops_per_s": gemm_gflops(n, min(samples_ms)),
            "where": where}


def gemm_samples(n: int, repeats: int, device: torch.device, time_call: Callable) -> list[float]:
    """ms per call of ``torch.mm`` on two seeded n x n fp32 matrices, after one untimed call
    (thread pool, BLAS handles)."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device) for _ in range(2))
    with torch.inference_mode():
        return timed_block(lambda: time_call(lambda x: torch.mm(x, b), a), min_calls=repeats)


def add_rates(rows: list[dict], variants: dict[str, dict], peaks: dict[int, float] | None) -> list[dict]:
    """Set ``gflops_per_s`` (useful FLOPs / median time) and ``pct_of_gemm_peak`` on every row.

    Args:
        rows: timing rows (``threads``, ``batch_size``, ``variant``, ``median_ms``).
        variants: per variant, ``flops_nonzero`` (per row of input).
        peaks: sustained GEMM GFLOP/s per thread count; None or a missing count gives null.
    """
    for r in rows:
        flops = variants[r["variant"]]["flops_nonzero"] * r["batch_size"]
        r["gflops_per_s"] = rate_gflops(flops, r["median_ms"]) if r["median_ms"] > 0 else None
        peak = (peaks or {}).get(r["threads"])
        r["pct_of_gemm_peak"] = 100.0 * r["gflops_per_s"] / peak if peak and r["gflops_per_s"] else None
    return rows
