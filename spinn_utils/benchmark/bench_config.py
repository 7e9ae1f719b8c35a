"""Notebooks 06 and 07's settings: which batches, threads and variants, and the time budgets."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..core.errors import SpinnError


@dataclass(frozen=True)
class BenchConfig:
    cpu_batch_sizes: tuple[int, ...] = (1, 64, 1000, 10000)  # single request to offline batch
    cuda_batch_sizes: tuple[int, ...] = (1, 64, 1000, 10000, 65536)  # 65536: past launch-bound
    threads: tuple[int, ...] | None = None  # CPU threads; None: 1 and all cores (CUDA: as set)
    repeats: int = 200  # most timed calls per variant; enough for a stable median at batch 1
    # Timed calls per variant per round, after one untimed call. Interleaving single calls
    # times every model right after the others evicted its weights from cache: on 2 cores at
    # batch 1000 that cost the structured model (0.84 MB of weights, cache-resident when
    # it runs alone) ~25% and dense ~5%, a penalty no deployed model pays.
    block: int = 5
    # A visit also lasts at least this long (more calls for a fast variant, sized from its last
    # visit): a deployed model serving a stream keeps its thread pool and cores busy. With
    # 5-call visits (~12 ms) the int8 export timed 2.7x and the fp32 export 1.3x slower than
    # alone in its own process on a 2-core AVX2 EPYC VM (batch 1000, 2 threads); with ~50 ms
    # visits within 5% (issue 17). 0: ``block`` calls only.
    visit_ms: float = 50.0
    # Idle pause before each variant's visit. It let the thread pools of other variants in the
    # same process fall asleep (``isolate_runtimes=False``: 20-25 ms were needed on 2 cores);
    # with each runtime in its own worker it only lets the cores go idle, which made batch-1
    # calls 15-30% slower than alone (issue 17), so it is off by default.
    switch_pause_ms: float = 0.0
    min_repeats: int = 5  # fewest timed calls per variant past the budget (capped at repeats)
    # Per variant per (threads, batch). 2.0 s made notebook 07 take 151 s in a default run on a 2-core
    # AVX2 VM (budget 150 s); 1.5 s still gives dense at batch 1000 about 80 timed calls.
    max_seconds_per_measurement: float = 1.5
    warmup: int = 5  # untimed calls first (allocator, thread pool, cuBLAS/cuSPARSE handles)
    # CPU: each runtime in its own worker process, as deployed (benchmark/isolated.py): in one
    # process, torch's and ONNX Runtime's thread pools shared 2 cores and the deployable model
    # timed 15-25% slow (issue 17). False: everything in this process, as before.
    isolate_runtimes: bool = True
    # Batches at which the deployable models and dense eager are also timed standalone, each in a
    # fresh process running only that model (the number a deployer measures).
    standalone_batch_sizes: tuple[int, ...] = (1, 1000)
    standalone_seconds: float = 1.0  # budget per standalone point (100+ calls at batch 1000)
    # The standalone visits alternate with the harness's rounds in this many segments per point:
    # on a 2-core VM dense eager stepped between 12.9 and 17.3 ms (batch 1000) every 3-6 s, so
    # standalone numbers taken after the harness compared two speeds of the machine.
    standalone_segments: int = 4
    # Each visit of a worker process starts with untimed calls for at least this long: the
    # thread pools of the process visited before keep spinning for a while after their run.
    lead_ms: float = 20.0
    # From this batch size on, ONNX Runtime sessions stop their pool's spinning when a run
    # returns. An idle worker's spinning pool otherwise took a core from the export being timed:
    # on a 2-core AVX2 VM the structured export timed 7.5 ms interleaved with the other exports
    # against 3.5 ms alone (batch 1000, 2 threads); with the spinning stopped, 3.6 against 3.5 ms,
    # and alone it is as fast as with the default (2.7-2.8 ms either way in another run). At batch
    # 1 stopping costs 30-90% per call, so small batches keep ONNX Runtime's default, as deployed.
    stop_spinning_from: int = 64
    # The machine's limit: an n x n fp32 matmul (2 n^3 FLOPs; n 2048 is 17 GFLOP, ~90 ms at
    # ~200 GFLOP/s) timed this many times per thread count; the median is the sustained rate.
    gemm_size: int = 2048
    gemm_repeats: int = 5
    formats: tuple[str, ...] = ("coo", "csr", "semi24")  # sparse formats to build from the masked model
    atol: float = 1e-4  # fp32 sparse vs masked: same sums in a different order
    atol_low_precision: float = 1e-2  # fp16/bf16 variants (2:4) round at ~1e-3
    # int8 ONNX vs the fp32 model it was quantized from, scaled outputs (units of target std), as
    # QuantConfig.parity_rtol: catches a broken quantization; accuracy is judged by test R2 (08).
    atol_int8: float = 0.25
    check_batch: int = 256  # inputs for the outputs-match check
    input_seed: int = 0  # inputs are seeded so every run times the same numbers
    progress: bool = True  # tqdm bar over (threads, batch) measurements

    def __post_init__(self) -> None:
        # Notebook parameters arrive as lists; store tuples so the config stays hashable.
        for name in ("cpu_batch_sizes", "cuda_batch_sizes", "formats", "standalone_batch_sizes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.threads is not None:
            object.__setattr__(self, "threads", tuple(int(t) for t in self.threads))
            if not self.threads or min(self.threads) < 1:
                raise SpinnError(f"threads must be counts >= 1, got {self.threads}")
        for name in ("cpu_batch_sizes", "cuda_batch_sizes"):
            sizes = getattr(self, name)
            if not sizes or min(sizes) < 1:
                raise SpinnError(f"{name} must be batch sizes >= 1, got {sizes}")
        if self.standalone_seconds <= 0:
            raise SpinnError(f"standalone_seconds must be > 0, got {self.standalone_seconds}")
        if self.gemm_size < 1 or self.gemm_repeats < 1:
            raise SpinnError(f"gemm_size and gemm_repeats must be >= 1, got {self.gemm_size}, {self.gemm_repeats}")
        if self.standalone_segments < 1 or self.lead_ms < 0 or self.stop_spinning_from < 1:
            raise SpinnError(f"standalone_segments and stop_spinning_from must be >= 1 and lead_ms >= 0, got "
                             f"{self.standalone_segments}, {self.stop_spinning_from}, {self.lead_ms}")
        if self.block < 1:
            raise SpinnError(f"block must be >= 1 timed call, got {self.block}")
        if self.repeats < 1 or self.min_repeats < 1:
            raise SpinnError(f"repeats and min_repeats must be >= 1, got {self.repeats} and {self.min_repeats}")
        if self.max_seconds_per_measurement <= 0 or self.warmup < 0 or self.switch_pause_ms < 0 or self.visit_ms < 0:
            raise SpinnError("max_seconds_per_measurement must be > 0, warmup, switch_pause_ms and visit_ms >= 0")

    @classmethod
    def smoke_test(cls) -> BenchConfig:
        """Two small batches, one thread, a handful of repeats: seconds, not minutes."""
        return cls(cpu_batch_sizes=(1, 64), cuda_batch_sizes=(1, 64), threads=(1,), repeats=5,
                   min_repeats=2, max_seconds_per_measurement=0.05, warmup=1, check_batch=32, block=2, visit_ms=0.0,
                   switch_pause_ms=0.0, standalone_batch_sizes=(1,), standalone_seconds=0.05, standalone_segments=2,
                   lead_ms=0.0,
                   gemm_size=256, gemm_repeats=5)

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
