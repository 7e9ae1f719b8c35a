"""``run_benchmark``: check every variant's outputs, then time the ones that match, on CPU or CUDA.

Method (docs/benchmarking.md): ``model.eval()`` under ``torch.inference_mode()``; seeded inputs
made once per (threads, batch) outside the timed region; every variant proven to run at that
batch first; then rotations A B C A B C ..., each visit a warm-up and a block of timed calls
(``core.timing.timed_block``), the speedup vs dense taken within each rotation
(``stats.summarize_point``). On the CPU each runtime runs in its own worker process, as deployed
(``workers.py``); on CUDA everything runs in this process and calls are timed with CUDA events.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ..core.env import environment_info
from ..core.errors import SpinnError, first_line
from ..core.registry import VARIANTS
from ..core.results_schema_eval import Benchmark, BenchmarkSkipped
from ..core.timing import timed_block
from ..core.typed_json import parse
from ..model.counting import input_features
from .bench_config import BenchConfig
from .peak import GEMM_REPEATS, add_rates, gemm_samples, gemm_summary
from .stats import fastest_variants, summarize_point
from .timing import make_timer, rotate, torch_threads
from .variants import (
    INPUT_SEED,
    Variant,
    check_outputs,
    describe_variant,
    make_inputs,
    variant_dtype,
)
from .workers import TORCH_WORKER, check_isolation, gemm_peaks, measure_point, start_workers


def _rows(device, threads: int, batch: int, samples: dict[str, list[list[float]]], info: dict) -> list[dict]:
    return [{"device": str(device), "threads": threads, "batch_size": batch, "variant": name,
             "dtype": info[name]["dtype"], **summary} for name, summary in summarize_point(samples).items()]


def _failures(threads: int, batch: int, errors: dict[str, str]) -> list[dict]:
    return [{"threads": threads, "batch_size": batch, "variant": n, "error": e} for n, e in errors.items()]


def _points(cfg: BenchConfig, device: torch.device, label: str):
    """Every (threads, batch) of the sweep, with a progress bar."""
    threads, batches = cfg.thread_counts(device), cfg.batch_sizes(device)
    with tqdm(total=len(threads) * len(batches), desc=label, disable=not cfg.progress) as bar:
        for n_threads in threads:
            for batch in batches:
                bar.set_postfix(threads=n_threads, batch=batch)
                yield n_threads, batch
                bar.update()


def _measure_workers(variants: list[Variant], cfg: BenchConfig, info: dict) -> dict:
    """CPU: every (threads, batch) timed in rotation over the worker processes, and the GEMM
    rate per thread count in the torch worker."""
    cpu = torch.device("cpu")
    rows, failures = [], []
    with contextlib.ExitStack() as stack:
        owner = start_workers(variants, stack)
        processes = check_isolation(owner)
        torch_worker = next((w for w in owner.values() if w.module == TORCH_WORKER), None)
        peaks = gemm_peaks(torch_worker, cfg.thread_counts(cpu), cfg) if torch_worker else []
        for n_threads, batch in _points(cfg, cpu, "bench cpu"):
            samples, errors = measure_point(variants, owner, n_threads, batch, cfg, INPUT_SEED)
            failures += _failures(n_threads, batch, errors)
            rows += _rows(cpu, n_threads, batch, samples, info)
    return {"rows": rows, "failures": failures, "peaks": peaks, "processes": processes}


def _prepare_here(fns: dict[str, Callable], inputs: dict, time_call: Callable) -> dict[str, str]:
    """Run every function once at this point: {name: error} for kernels that raised."""
    errors = {}
    for name, fn in fns.items():
        try:
            time_call(fn, inputs[name])
        except RuntimeError as err:  # torch kernel errors (NotImplementedError included)
            errors[name] = first_line(err)
    return errors


def _visit_here(fns: dict[str, Callable], inputs: dict, cfg: BenchConfig, time_call: Callable) -> Callable:
    """``visit(name)`` for ``timing.rotate``: one block of calls of a function of this process."""
    def visit(name: str) -> list[float]:
        return timed_block(lambda: time_call(fns[name], inputs[name]), cfg.warmup_ms, cfg.visit_ms)
    return visit


def _measure_here(variants: list[Variant], cfg: BenchConfig, device: torch.device, info: dict,
                  time_call: Callable) -> dict:
    """CUDA (or a test's fake timer): every (threads, batch) timed in rotation in this process;
    threads restored afterwards."""
    fns = {v.name: v.timed or v.module for v in variants}
    dtypes = {v.name: variant_dtype(v.module) for v in variants}
    n_features = input_features(variants[0].module)
    rows, failures, peaks = [], [], []
    with torch.inference_mode():
        for n_threads, batch in _points(cfg, device, f"bench {device.type}"):
            with torch_threads(n_threads):
                # Same values for every variant; one tensor per dtype, made before timing.
                by_dtype = {dt: make_inputs(batch, n_features, dt, device, INPUT_SEED) for dt in set(dtypes.values())}
                inputs = {v.name: v.input_for(by_dtype[dtypes[v.name]]) for v in variants}
                errors = _prepare_here(fns, inputs, time_call)
                names = [n for n in fns if n not in errors]
                failures += _failures(n_threads, batch, errors)
                rows += _rows(device, n_threads, batch, rotate(names, _visit_here(fns, inputs, cfg, time_call), cfg), info)
        for n_threads in cfg.thread_counts(device):
            with torch_threads(n_threads):
                peaks.append(gemm_summary(cfg.gemm_size, gemm_samples(cfg.gemm_size, GEMM_REPEATS, device, time_call),
                                          n_threads, f"torch.mm, fp32, {device.type}, in the benchmark process"))
    return {"rows": rows, "failures": failures, "peaks": peaks, "processes": None}


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
    """Check every variant's outputs, then time those that match in rotation over threads and batches.

    Args:
        variants: from ``load_variants`` (or any Variants; ``VARIANTS.dense`` is the baseline).
        cfg: batches, threads and how long to time.
        device: where to time; CPU in worker processes (perf_counter_ns), CUDA here (events).

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
        checks = check_outputs(runnable, device)
        skipped.update({n: f"forward raised: {c['error']}" for n, c in checks.items() if "error" in c})
        runnable = [v for v in runnable if v.name not in skipped]
        info = {v.name: {**describe_variant(v), **checks[v.name]} for v in runnable}
        # A fast wrong answer is no result: a variant that does not reproduce its reference is not timed.
        skipped.update({v.name: f"outputs differ from {v.reference}: max abs diff {checks[v.name]['max_abs_diff']} "
                                f"> atol {checks[v.name]['atol']}; not timed"
                        for v in runnable if not checks[v.name]["outputs_match"]})
        timed = [v for v in runnable if v.name not in skipped]
        if not timed:
            raise SpinnError(f"no variant can be timed on {device}: {skipped}")
        dense_flops = info[VARIANTS.dense]["flops"] if VARIANTS.dense in info else None
        for entry in info.values():
            entry["flops_ratio_vs_dense"] = dense_flops / entry["flops"] if dense_flops else None
        timer_name, time_call = make_timer(device)
        measured = (_measure_workers(timed, cfg, info) if device.type == "cpu"
                    else _measure_here(timed, cfg, device, info, time_call))
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
        "skipped_variants": skipped,  # name -> why it was not timed here (cannot run, or outputs differ)
        "results": rows,
        "failures": measured["failures"],  # variants whose kernel raised at some (threads, batch): not timed
        "fastest": fastest_variants(rows, info),
        # Where each runtime ran: per worker process, its variants and whether torch/onnxruntime
        # were imported in it (null: everything ran in this process).
        "processes": measured["processes"],
        "gemm_peak": measured["peaks"],  # the sustained fp32 GEMM rate per thread count (peak.py)
        "flops_basis": "flops_nonzero per row x batch (useful work; gflops_per_s, pct_of_gemm_peak)",
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
