"""Notebooks 06 and 07's settings: which batches, threads and formats, and how long to time."""
from __future__ import annotations

import os
from typing import Annotated

import torch
from pydantic import Field

from ..core.overrides import Count, StageConfig

Counts = Annotated[tuple[Count, ...], Field(min_length=1)]  # one or more counts


class BenchConfig(StageConfig):
    cpu_batch_sizes: Counts = (1, 64, 1000, 10000)  # single request to offline batch
    cuda_batch_sizes: Counts = (1, 64, 1000, 10000, 65536)  # 65536: past launch-bound
    threads: Counts | None = None  # CPU threads; None: 1 and all cores (CUDA: as set)
    # Most rotations per (threads, batch); each rotation visits every variant once and gives one
    # speedup per variant, so a drifting machine slows a rotation's numbers alike.
    rotations: Count = 20
    # A point stops starting rotations once the next would end past this (after 3 rotations):
    # 8 points x 12 s keep notebook 07 near 110 s, under its 150 s budget on 2 cores.
    seconds_per_point: float = Field(12.0, gt=0)
    # Timed calls of one visit last at least this long (at least one): a model serving a stream
    # keeps its pool busy, and a rotation's median needs a few calls (dense, batch 1000: 3-5).
    visit_ms: float = Field(60.0, ge=0)
    # Untimed calls opening every visit (at least one): the model just visited before evicted
    # this one's weights from the caches and may still be spinning its thread pool.
    warmup_ms: float = Field(20.0, ge=0)
    gemm_size: Count = 2048  # n x n fp32 matmul for the machine's limit (n 2048: 17 GFLOP a call)
    formats: tuple[str, ...] = ("coo", "csr", "semi24")  # sparse formats to build from the masked model
    progress: bool = True  # tqdm bar over (threads, batch) points

    @classmethod
    def smoke_test(cls) -> BenchConfig:
        """Two small batches, one thread, two short rotations: seconds, not minutes."""
        return cls(cpu_batch_sizes=(1, 64), cuda_batch_sizes=(1, 64), threads=(1,), rotations=2,
                   seconds_per_point=0.2, visit_ms=1.0, warmup_ms=0.0, gemm_size=256)

    def batch_sizes(self, device: torch.device) -> tuple[int, ...]:
        return self.cuda_batch_sizes if device.type == "cuda" else self.cpu_batch_sizes

    def thread_counts(self, device: torch.device) -> tuple[int, ...]:
        """Threads to sweep; CPU threads barely matter to CUDA kernels, so CUDA keeps the current."""
        if self.threads is not None:
            return tuple(dict.fromkeys(self.threads))
        if device.type == "cuda":
            return (torch.get_num_threads(),)
        return tuple(dict.fromkeys((1, available_cores())))


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
