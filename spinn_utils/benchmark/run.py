"""One timing harness for CPU and CUDA: every model variant, interleaved, honestly summarised.

Method (docs/benchmarking.md): ``model.eval()`` under ``torch.inference_mode()``; inputs made once
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
import os
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ..core.env import environment_info
from ..core.errors import SpinnError
from ..core.registry import DEPLOYABLE_VARIANTS, VARIANTS
from ..core.results_schema_eval import Benchmark, BenchmarkSkipped
from ..core.typed_json import parse
from ..model.counting import input_features
from .bench_config import BenchConfig
from .isolated import (
    TORCH_WORKER,
    check_isolation,
    gemm_peaks,
    label,
    measure_point,
    start_workers,
)
from .peak import add_rates, gemm_samples, gemm_summary
from .stats import add_speedups, as_deployed, fastest_variants, summarize_ms
from .timing import make_timer, time_interleaved, torch_threads, warm_up
from .variants import Variant, check_outputs, describe_variant, make_inputs, variant_dtype


def _row(device, threads: int, batch: int, name: str, dtype: str, samples: list[float]) -> dict:
    return {"device": str(device), "threads": threads, "batch_size": batch, "variant": name, "dtype": dtype,
            **summarize_ms(samples)}


def _measure_isolated(variants: list[Variant], cfg: BenchConfig, info: dict) -> dict:
    """CPU: every (threads, batch, variant) timed in per-runtime worker processes, interleaved;
    the GEMM rate per thread count; and, at ``cfg.standalone_batch_sizes``, the deployable models
    and dense each alone in a fresh process, in segments alternating with the harness's rounds."""
    cpu = torch.device("cpu")
    threads, batches = cfg.thread_counts(cpu), cfg.batch_sizes(cpu)
    alone = [v for v in variants if v.name in (VARIANTS.dense, *DEPLOYABLE_VARIANTS)]
    rows, failures, standalone = [], [], []
    with contextlib.ExitStack() as stack:
        owner, solo = start_workers(variants, stack, alone if set(cfg.standalone_batch_sizes) & set(batches) else [])
        processes = {**check_isolation(owner), **check_isolation(solo)}
        torch_worker = next((w for w in owner.values() if w.module == TORCH_WORKER), None)
        peaks = gemm_peaks(torch_worker, threads, cfg) if torch_worker else []
        bar = tqdm(total=len(threads) * len(batches), desc="bench cpu (workers)", disable=not cfg.progress)
        for n_threads in threads:
            for batch in batches:
                bar.set_postfix(threads=n_threads, batch=batch)
                samples, errors, by_alone = measure_point(variants, owner, n_threads, batch, cfg,
                                                          solo if batch in cfg.standalone_batch_sizes else None)
                failures += [{"threads": n_threads, "batch_size": batch, "variant": n, "error": e} for n, e in errors.items()]
                rows += [_row(cpu, n_threads, batch, n, info[n]["dtype"], ms) for n, ms in samples.items()]
                standalone += [{"variant": n, "threads": n_threads, "batch_size": batch, "process": label(solo[n].module),
                                **summarize_ms(ms)} for n, ms in by_alone.items()]
                bar.update()
        bar.close()
    order = [v.name for v in alone]
    standalone.sort(key=lambda r: (order.index(r["variant"]), r["threads"], r["batch_size"]))
    rows = add_speedups(rows)
    return {"rows": rows, "failures": failures, "peaks": peaks, "standalone": standalone,
            "as_deployed": as_deployed(rows, standalone),
            "processes": processes}


def _peaks_in_process(cfg: BenchConfig, device: torch.device, time_call: Callable) -> list[dict]:
    """The sustained fp32 GEMM rate at each thread count, in this process (CUDA, or CPU in-process)."""
    where = f"torch.mm, fp32, {device.type}, in the benchmark process"
    out = []
    for n_threads in cfg.thread_counts(device):
        with torch_threads(n_threads):
            out.append(gemm_summary(cfg.gemm_size, gemm_samples(cfg.gemm_size, cfg.gemm_repeats, device, time_call),
                                    n_threads, where))
    return out


def _measure_all(variants: list[Variant], cfg: BenchConfig, device: torch.device, time_call: Callable) -> tuple[list[dict], list[dict]]:
    """(timing rows, failures) for every (threads, batch, variant); threads restored afterwards."""
    threads, batches = cfg.thread_counts(device), cfg.batch_sizes(device)
    fns = {v.name: v.timed or v.module for v in variants}
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
                    inputs = {v.name: v.input_for(by_dtype[dtypes[v.name]]) for v in variants}
                    errors = warm_up(fns, inputs, cfg, time_call)
                    failures += [{"threads": n_threads, "batch_size": batch, "variant": n, "error": e}
                                 for n, e in errors.items()]
                    runs = {n: f for n, f in fns.items() if n not in errors}
                    samples = time_interleaved(runs, inputs, cfg, time_call)
                    rows += [_row(device, n_threads, batch, name, str(dtypes[name]).removeprefix("torch."), ms)
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


def run_benchmark(variants: list[Variant], cfg: BenchConfig, device) -> Benchmark:
    """Check every variant's outputs, then time them all interleaved over threads and batches.

    Args:
        variants: from ``load_variants`` (or any Variants; ``VARIANTS.dense`` is the baseline).
        cfg: the sweep and its budgets.
        device: where to time; CPU uses perf_counter_ns, CUDA uses events.

    Returns:
        The ``cpu_benchmark.json`` / ``gpu_benchmark.json`` record (``core.results_schema_eval.Benchmark``).
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
        checks = check_outputs(runnable, device, cfg.check_batch, cfg.atol, cfg.atol_low_precision, cfg.input_seed,
                               cfg.atol_int8)
        skipped.update({n: f"forward raised: {c['error']}" for n, c in checks.items() if "error" in c})
        runnable = [v for v in runnable if v.name not in skipped]
        if not runnable:
            raise SpinnError(f"no variant can run on {device}: {skipped}")
        info = {v.name: {**describe_variant(v), **checks[v.name]} for v in runnable}
        dense_flops = info[VARIANTS.dense]["flops"] if VARIANTS.dense in info else None
        for entry in info.values():
            entry["flops_ratio_vs_dense"] = dense_flops / entry["flops"] if dense_flops else None
        timer_name, time_call = make_timer(device)
        if device.type == "cpu" and cfg.isolate_runtimes:
            measured = _measure_isolated(runnable, cfg, info)
        else:
            rows, failures = _measure_all(runnable, cfg, device, time_call)
            measured = {"rows": rows, "failures": failures, "peaks": _peaks_in_process(cfg, device, time_call),
                        "standalone": [], "as_deployed": [], "processes": None}
    peaks = {p["threads"]: p["gflops_per_s"] for p in measured["peaks"]}
    rows = add_rates(measured["rows"], info, peaks)
    return parse(Benchmark, {
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
        "failures": measured["failures"],  # variants whose kernel raised at some (threads, batch): not timed
        "fastest": fastest_variants(rows, info),
        # Where each runtime ran: per worker process, its variants and whether torch/onnxruntime
        # were imported in it (null: everything ran in this process).
        "processes": measured["processes"],
        "gemm_peak": measured["peaks"],  # the sustained fp32 GEMM rate per thread count (peak.py)
        "flops_basis": "flops_nonzero per row x batch (useful work; gflops_per_s, pct_of_gemm_peak)",
        "standalone": measured["standalone"],  # deployable models and dense, each alone in a fresh process
        "as_deployed": measured["as_deployed"],  # standalone vs in-harness, per point
        "seconds": time.perf_counter() - t0,
        # Other processes on the machine slow some variants more than others; say how busy it was.
        "load_average_1min": {"before": load_before, "after": _load_average()},
        "environment": environment_info(device),
    }, f"{device.type} benchmark")


def cuda_skip_reason(device: str | torch.device) -> str | None:
    """Why a CUDA benchmark cannot run for ``device`` ("auto", "cuda", "cpu", ...); None if it can."""
    if not torch.cuda.is_available():
        return "no CUDA GPU: torch.cuda.is_available() is False, so there is nothing to time"
    if str(device) != "auto" and torch.device(device).type != "cuda":
        return f"device {str(device)!r} was asked for; this benchmark times CUDA only"
    return None


def skipped_result(reason: str, device) -> BenchmarkSkipped:
    """The benchmark record of a run that did not happen: the checklist shows 'not run'."""
    return BenchmarkSkipped(skipped=True, reason=reason, device=str(torch.device(device)),
                            environment=environment_info(device))
