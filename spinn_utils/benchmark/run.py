"""``run_benchmark``: check every variant's outputs, then time the ones that match, on CPU or CUDA.

Method (docs/benchmarking.md): ``model.eval()`` under ``torch.inference_mode()``; seeded inputs
made once per (threads, batch); every variant run once there, then rotations A B C A B C ...,
each visit an untimed warm-up and a block of timed calls; the speedup vs dense taken within each
rotation. CPU: each runtime in its own worker process, as deployed; CUDA: in this process.
"""
from __future__ import annotations

import contextlib
import os
import time

import torch
from tqdm.auto import tqdm

from ..core.env import environment_info
from ..core.errors import SpinnError
from ..core.registry import VARIANTS
from ..core.results_schema_eval import Benchmark, BenchmarkSkipped
from . import workers
from .bench_config import BenchConfig
from .peak import add_rates
from .stats import fastest_variants, summarize_point
from .timing import make_timer, torch_threads
from .variants import Variant, check_outputs, describe_variant


def measure(variants: list[Variant], cfg: BenchConfig, device: torch.device, info: dict,
            owner: dict | None = None) -> dict:
    """Every (threads, batch) timed in rotation, and the GEMM rate per thread count. ``owner``
    ({name: worker}): worker processes on the CPU, this process on CUDA, unless given."""
    threads, batches = cfg.thread_counts(device), cfg.batch_sizes(device)
    rows, failures = [], []
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch_threads(torch.get_num_threads()))
        stack.enter_context(torch.inference_mode())
        processes = None  # CUDA (or a given owner): everything in this process
        if owner is None and device.type == "cpu":
            owner = workers.start_workers(variants, stack)
            processes = workers.check_isolation(owner)
        owner = owner or workers.local_workers(variants, device)
        torch_worker = next((w for w in owner.values() if w.kind == workers.TORCH_WORKER), None)
        peaks = workers.gemm_peaks(torch_worker, threads, cfg) if torch_worker else []
        bar = stack.enter_context(tqdm(total=len(threads) * len(batches), desc=f"bench {device.type}",
                                       disable=not cfg.progress))
        for n_threads in threads:
            for batch in batches:
                bar.set_postfix(threads=n_threads, batch=batch)
                samples, errors = workers.measure_point(variants, owner, n_threads, batch, cfg)
                failures += [{"threads": n_threads, "batch_size": batch, "variant": n, "error": e}
                             for n, e in errors.items()]
                rows += [{"device": str(device), "threads": n_threads, "batch_size": batch, "variant": name,
                          "dtype": info[name]["dtype"], **summary} for name, summary in summarize_point(samples).items()]
                bar.update()
    return {"rows": rows, "failures": failures, "peaks": peaks, "processes": processes}


def _load_average() -> float | None:  # None where the OS has none
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _checked(variants: list[Variant], device: torch.device) -> tuple[dict, dict[str, str]]:
    """({name: description and output check} of every variant that ran, {name: why not timed})."""
    skipped = {v.name: v.skip_reason for v in variants if v.skip_reason is not None}
    runnable = [v for v in variants if v.skip_reason is None]
    for v in runnable:
        here = next(iter([*v.module.parameters(), *v.module.buffers()]), None)
        if here is not None and not (here.device.type == device.type and device.index in (None, here.device.index)):
            v.module.to(device)  # only what is elsewhere: 2:4 weights are built on the GPU and support few ops
        v.module.eval()
    checks = check_outputs(runnable, device)
    skipped.update({n: f"forward raised: {c['error']}" for n, c in checks.items() if "error" in c})
    info = {v.name: {**describe_variant(v), **checks[v.name]} for v in runnable if v.name not in skipped}
    # A fast wrong answer is no result: a variant that does not reproduce its reference is not timed.
    skipped.update({n: f"outputs differ from {d['reference']}: max abs diff {d['max_abs_diff']} > atol {d['atol']}; "
                       "not timed" for n, d in info.items() if not d["outputs_match"]})
    dense_flops = info[VARIANTS.dense]["flops"] if VARIANTS.dense in info else None
    for entry in info.values():
        entry["flops_ratio_vs_dense"] = dense_flops / entry["flops"] if dense_flops else None
    return info, skipped


def run_benchmark(variants: list[Variant], cfg: BenchConfig, device) -> Benchmark:
    """The ``cpu_benchmark.json`` / ``gpu_benchmark.json`` record of ``variants`` (from
    ``load_variants``; ``VARIANTS.dense`` is the baseline) on ``device``: outputs checked, then
    the matching ones timed in rotation over ``cfg``'s threads and batches."""
    device = torch.device(device)
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise SpinnError(f"variant names must be unique, got {names}")
    t0, load_before = time.perf_counter(), _load_average()
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        info, skipped = _checked(variants, device)
        timed = [v for v in variants if v.name in info and v.name not in skipped]
        if not timed:
            raise SpinnError(f"no variant can be timed on {device}: {skipped}")
        measured = measure(timed, cfg, device, info)
    rows = add_rates(measured["rows"], info, {p["threads"]: p["gflops_per_s"] for p in measured["peaks"]})
    return Benchmark(  # the fields are described in core/results_schema_eval.py
        skipped=False, device=str(device), timer=make_timer(device)[0],
        float32_matmul_precision=torch.get_float32_matmul_precision(), config=cfg,
        threads=list(cfg.thread_counts(device)), batch_sizes=list(cfg.batch_sizes(device)),
        variants=info, skipped_variants=skipped, results=rows, failures=measured["failures"],
        fastest=fastest_variants(rows, info), processes=measured["processes"], gemm_peak=measured["peaks"],
        flops_basis="flops_nonzero per row x batch (useful work; gflops_per_s, pct_of_gemm_peak)",
        seconds=time.perf_counter() - t0, load_average_1min={"before": load_before, "after": _load_average()},
        environment=environment_info(device))


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
