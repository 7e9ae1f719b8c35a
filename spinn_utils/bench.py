"""One timing harness for CPU and CUDA: every model variant, interleaved, honestly summarised.

Method (BENCHMARKING.md): ``model.eval()`` under ``torch.inference_mode()``; inputs made once
per (threads, batch) outside the timed region; warm-up calls first; then rounds in which every
variant runs once, in an order rotated each round, so drift and caches hit all variants alike
(round-robin interleaving). CPU calls are timed with ``time.perf_counter_ns``; CUDA calls
between two ``torch.cuda.Event(enable_timing=True)`` records, read after the end event
synchronizes (the torch CUDA semantics docs: kernel launches are asynchronous). Each
measurement reports median and IQR (robust to a shared machine) plus mean/std and the
number of repeats actually run: a per-measurement time budget stops slow variants (COO at
batch 10000) early. Speedup = median(dense) / median(variant) at the same threads and batch.

References: torch.utils.benchmark (warm-up, median/IQR, thread control); Torch-Pruning's
timing helper (warm-up + repeat + synchronize); PyTorch docs on CUDA events and threads.
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .bench_stats import add_speedups, fastest_variants, summarize_ms
from .bench_variants import (
    Variant,
    check_outputs,
    describe_variant,
    input_features,
    load_variants,
    make_inputs,
    variant_dtype,
)
from .config import SpinnError, environment_info

__all__ = ["BenchConfig", "Variant", "load_variants", "run_benchmark", "cuda_skip_reason", "skipped_result"]


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
    min_repeats: int = 5  # fewest timed calls per variant past the budget (capped at repeats)
    max_seconds_per_measurement: float = 2.0  # per variant per (threads, batch): keeps 07 ~2 min
    warmup: int = 5  # untimed calls first (allocator, thread pool, cuBLAS/cuSPARSE handles)
    formats: tuple[str, ...] = ("coo", "csr", "semi24")  # sparse formats to build from the masked model
    atol: float = 1e-4  # fp32 sparse vs masked: same sums in a different order
    atol_low_precision: float = 1e-2  # fp16/bf16 variants (2:4) round at ~1e-3
    check_batch: int = 256  # inputs for the outputs-match check
    input_seed: int = 0  # inputs are seeded so every run times the same numbers
    progress: bool = True  # tqdm bar over (threads, batch) measurements

    def __post_init__(self) -> None:
        # Notebook parameters arrive as lists; store tuples so the config stays hashable.
        for name in ("cpu_batch_sizes", "cuda_batch_sizes", "formats"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.threads is not None:
            object.__setattr__(self, "threads", tuple(int(t) for t in self.threads))
            if not self.threads or min(self.threads) < 1:
                raise SpinnError(f"threads must be counts >= 1, got {self.threads}")
        for name in ("cpu_batch_sizes", "cuda_batch_sizes"):
            sizes = getattr(self, name)
            if not sizes or min(sizes) < 1:
                raise SpinnError(f"{name} must be batch sizes >= 1, got {sizes}")
        if self.block < 1:
            raise SpinnError(f"block must be >= 1 timed call, got {self.block}")
        if self.repeats < 1 or self.min_repeats < 1:
            raise SpinnError(f"repeats and min_repeats must be >= 1, got {self.repeats} and {self.min_repeats}")
        if self.max_seconds_per_measurement <= 0 or self.warmup < 0:
            raise SpinnError("max_seconds_per_measurement must be > 0 and warmup >= 0")

    @classmethod
    def smoke_test(cls) -> BenchConfig:
        """Two small batches, one thread, a handful of repeats: seconds, not minutes."""
        return cls(cpu_batch_sizes=(1, 64), cuda_batch_sizes=(1, 64), threads=(1,), repeats=5,
                   min_repeats=2, max_seconds_per_measurement=0.05, warmup=1, check_batch=32, block=2)

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


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)``; the previous count is restored, always."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the garbage collector while timing (as timeit does) so a collection is not timed."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def round_robin_order(names: list[str], round_index: int) -> list[str]:
    """Every name once, rotated by the round so no variant always runs first (or after another)."""
    if not names:
        return []
    k = round_index % len(names)
    return names[k:] + names[:k]


def make_timer(device: torch.device) -> tuple[str, Callable]:
    """(timer name, ``time_call(fn, x) -> ms``) for the device."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def time_cuda(fn: Callable, x: torch.Tensor) -> float:
            start.record()
            fn(x)
            end.record()
            end.synchronize()  # wait for the kernels before reading the events
            return float(start.elapsed_time(end))

        return "torch.cuda.Event", time_cuda

    def time_cpu(fn: Callable, x: torch.Tensor) -> float:
        t0 = time.perf_counter_ns()
        fn(x)
        return (time.perf_counter_ns() - t0) / 1e6

    return "time.perf_counter_ns", time_cpu


def warm_up(fns: dict[str, Callable], inputs: dict[str, torch.Tensor], cfg: BenchConfig, time_call: Callable) -> dict[str, str]:
    """Untimed calls (at least one each, so every variant is proven to run at this batch).

    Returns:
        {name: error} for variants whose kernel raised (e.g. a sparse op this device or shape
        lacks); they are reported as failures, not timed.
    """
    budget_ms = cfg.max_seconds_per_measurement * 1e3
    errors = {}
    for name, fn in fns.items():
        spent = 0.0
        try:
            for _ in range(max(1, cfg.warmup)):
                spent += time_call(fn, inputs[name])
                if spent > budget_ms:  # a slow variant is warm after one call
                    break
        except RuntimeError as err:  # torch kernel errors (NotImplementedError included)
            errors[name] = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return errors


def time_interleaved(fns: dict[str, Callable], inputs: dict[str, torch.Tensor], cfg: BenchConfig, time_call: Callable) -> dict[str, list[float]]:
    """Time warmed-up functions in interleaved rounds until ``cfg.repeats`` calls or the budget.

    Each round visits every function once, in an order rotated per round; a visit is one
    untimed call (the other variants have just evicted this one's weights from the CPU
    caches, which a deployed model serving requests does not suffer) and then ``cfg.block``
    timed calls. Drift still hits all variants alike, round by round.

    Returns:
        {name: [ms per timed call]}; at least min(min_repeats, repeats) each.
    """
    budget_ms = cfg.max_seconds_per_measurement * 1e3
    floor = min(cfg.min_repeats, cfg.repeats)  # a notebook's small ``repeats`` wins over the floor
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    spent_ms = dict.fromkeys(names, 0.0)
    with _gc_paused():
        for r in itertools.count():
            active = [n for n in names if len(samples[n]) < cfg.repeats
                      and (len(samples[n]) < floor or spent_ms[n] < budget_ms)]
            if not active:
                break
            for name in round_robin_order(active, r):
                spent_ms[name] += time_call(fns[name], inputs[name])  # untimed re-warm
                for _ in range(min(cfg.block, cfg.repeats - len(samples[name]))):
                    ms = time_call(fns[name], inputs[name])
                    samples[name].append(ms)
                    spent_ms[name] += ms
    return samples


def _measure_all(variants: list[Variant], cfg: BenchConfig, device: torch.device, time_call: Callable) -> tuple[list[dict], list[dict]]:
    """(timing rows, failures) for every (threads, batch, variant); threads restored afterwards."""
    threads, batches = cfg.thread_counts(device), cfg.batch_sizes(device)
    fns = {v.name: v.module for v in variants}
    dtypes = {v.name: variant_dtype(v.module) for v in variants}
    n_features = input_features(variants[0].module)
    rows, failures = [], []
    bar = tqdm(total=len(threads) * len(batches), desc=f"bench {device.type}", disable=not cfg.progress)
    with torch.inference_mode():
        for n_threads in threads:
            with torch_threads(n_threads):
                for batch in batches:
                    bar.set_postfix(threads=n_threads, batch=batch)
                    # Same values for every variant; one tensor per dtype, made before timing.
                    by_dtype = {dt: make_inputs(batch, n_features, dt, device, cfg.input_seed) for dt in set(dtypes.values())}
                    inputs = {n: by_dtype[dt] for n, dt in dtypes.items()}
                    errors = warm_up(fns, inputs, cfg, time_call)
                    failures += [{"threads": n_threads, "batch_size": batch, "variant": n, "error": e}
                                 for n, e in errors.items()]
                    runs = {n: f for n, f in fns.items() if n not in errors}
                    samples = time_interleaved(runs, inputs, cfg, time_call)
                    rows += [{"device": str(device), "threads": n_threads, "batch_size": batch, "variant": name,
                              "dtype": str(dtypes[name]).removeprefix("torch."), **summarize_ms(ms)}
                             for name, ms in samples.items()]
                    del by_dtype, inputs
                    bar.update()
    bar.close()
    return add_speedups(rows), failures


def _load_average() -> float | None:
    """The OS's 1-minute load average (None where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _on_device(module: torch.nn.Module, device: torch.device) -> bool:
    """Whether the module's first tensor already lives on ``device`` ("cuda" matches "cuda:0")."""
    here = next(iter([*module.parameters(), *module.buffers()]), None)
    if here is None:
        return True
    return here.device.type == device.type and device.index in (None, here.device.index)


def run_benchmark(variants: list[Variant], cfg: BenchConfig, device) -> dict:
    """Check every variant's outputs, then time them all interleaved over threads and batches.

    Args:
        variants: from ``load_variants`` (or any Variants; one named ``dense`` is the baseline).
        cfg: the sweep and its budgets.
        device: where to time; CPU uses perf_counter_ns, CUDA uses events.

    Returns:
        The ``cpu_benchmark.json`` / ``gpu_benchmark.json`` dict (keys in results/README.md).
    """
    device = torch.device(device)
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise SpinnError(f"variant names must be unique, got {names}")
    skipped = {v.name: v.skip_reason for v in variants if v.skip_reason is not None}
    runnable = [v for v in variants if v.skip_reason is None]
    for v in runnable:
        # Move only what is elsewhere: 2:4 weights are built on the GPU and support few ops.
        if not _on_device(v.module, device):
            v.module.to(device)
        v.module.eval()
    t0, load_before = time.perf_counter(), _load_average()
    cuda_ctx = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with cuda_ctx:
        checks = check_outputs(runnable, device, cfg.check_batch, cfg.atol, cfg.atol_low_precision, cfg.input_seed)
        skipped.update({n: f"forward raised: {c['error']}" for n, c in checks.items() if "error" in c})
        runnable = [v for v in runnable if v.name not in skipped]
        if not runnable:
            raise SpinnError(f"no variant can run on {device}: {skipped}")
        info = {v.name: {**describe_variant(v), **checks[v.name]} for v in runnable}
        dense_flops = info["dense"]["flops"] if "dense" in info else None
        for entry in info.values():
            entry["flops_ratio_vs_dense"] = dense_flops / entry["flops"] if dense_flops else None
        timer_name, time_call = make_timer(device)
        rows, failures = _measure_all(runnable, cfg, device, time_call)
    return {
        "skipped": False,
        "device": str(device),
        "timer": timer_name,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "config": cfg,
        "threads": list(cfg.thread_counts(device)),
        "batch_sizes": list(cfg.batch_sizes(device)),
        "variants": info,
        "skipped_variants": skipped,  # name -> why it was not timed here
        "results": rows,
        "failures": failures,  # variants whose kernel raised at some (threads, batch): not timed
        "fastest": fastest_variants(rows, info),
        "seconds": time.perf_counter() - t0,
        # Other processes on the machine slow some variants more than others; say how busy it was.
        "load_average_1min": {"before": load_before, "after": _load_average()},
        "environment": environment_info(device),
    }


def cuda_skip_reason(device: str | torch.device) -> str | None:
    """Why a CUDA benchmark cannot run for ``device`` ("auto", "cuda", "cpu", ...); None if it can."""
    if not torch.cuda.is_available():
        return "no CUDA GPU: torch.cuda.is_available() is False, so there is nothing to time"
    if str(device) != "auto" and torch.device(device).type != "cuda":
        return f"device {str(device)!r} was asked for; this benchmark times CUDA only"
    return None


def skipped_result(reason: str, device) -> dict:
    """The benchmark JSON for a run that did not happen: the checklist shows 'not run'."""
    return {"skipped": True, "reason": reason, "device": str(torch.device(device)),
            "environment": environment_info(device)}
