"""Timing primitives: threads, timers, warm-up and interleaved rounds (docs/benchmarking.md).

CPU calls are timed with ``time.perf_counter_ns``; CUDA calls between two
``torch.cuda.Event(enable_timing=True)`` records, read after the end event synchronizes
(kernel launches are asynchronous). Every variant is timed in rounds rotated so that no
variant always runs first; the garbage collector is paused while timing, as timeit does.
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from ..core.errors import first_line
from .bench_config import BenchConfig


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
            errors[name] = first_line(err)
    return errors


def time_rounds(names: list[str], visit: Callable[[str, int], tuple[float, list[float]]],
                cfg: BenchConfig) -> dict[str, list[float]]:
    """Interleaved rounds of visits until ``cfg.repeats`` timed calls or the budget, per name.

    Each round visits every active name once, in an order rotated per round, after an idle
    pause of ``cfg.switch_pause_ms`` (so the pools the previous visit left spinning are asleep).
    ``visit(name, calls)`` runs one untimed call (the other variants have just evicted this
    one's weights from the CPU caches, which a deployed model serving requests does not
    suffer) and then ``calls`` timed ones, wherever the variant lives (this process or a
    worker); it returns (untimed ms, [ms per timed call]). Drift hits all variants alike.

    Returns:
        {name: [ms per timed call]}; at least min(min_repeats, repeats) each.
    """
    budget_ms = cfg.max_seconds_per_measurement * 1e3
    floor = min(cfg.min_repeats, cfg.repeats)  # a notebook's small ``repeats`` wins over the floor
    samples: dict[str, list[float]] = {name: [] for name in names}
    spent_ms = dict.fromkeys(names, 0.0)
    last_ms: dict[str, float] = {}  # each name's latest call time: sizes its next visit
    for r in itertools.count():
        active = [n for n in names if len(samples[n]) < cfg.repeats
                  and (len(samples[n]) < floor or spent_ms[n] < budget_ms)]
        if not active:
            break
        for name in round_robin_order(active, r):
            if cfg.switch_pause_ms > 0:
                time.sleep(cfg.switch_pause_ms / 1e3)
            untimed, ms = visit(name, visit_calls(cfg, len(samples[name]), spent_ms[name], last_ms.get(name)))
            samples[name] += ms
            spent_ms[name] += untimed + sum(ms)
            last_ms[name] = statistics.median(ms) if ms else untimed
    return samples


def visit_calls(cfg: BenchConfig, done: int, spent_ms: float, last_ms: float | None) -> int:
    """Timed calls in the next visit: ``cfg.block``, or as many as fill ``cfg.visit_ms`` (at
    the variant's last measured speed) when more, within the repeats and the time budget left."""
    calls = cfg.block
    if last_ms and cfg.visit_ms > 0:
        calls = max(calls, math.ceil(cfg.visit_ms / last_ms))
        left_ms = cfg.max_seconds_per_measurement * 1e3 - spent_ms
        calls = min(calls, max(cfg.block, math.ceil(left_ms / last_ms)))
    return max(1, min(calls, cfg.repeats - done))


def visit_block(fn: Callable, x, calls: int, time_call: Callable) -> tuple[float, list[float]]:
    """One untimed call, then ``calls`` timed ones: (untimed ms, [ms per timed call])."""
    untimed = time_call(fn, x)
    return untimed, [time_call(fn, x) for _ in range(calls)]


def time_interleaved(fns: dict[str, Callable], inputs: dict[str, torch.Tensor], cfg: BenchConfig, time_call: Callable) -> dict[str, list[float]]:
    """Time warmed-up functions of this process in interleaved rounds (``time_rounds``)."""
    with _gc_paused():
        return time_rounds(list(fns), lambda name, calls: visit_block(fns[name], inputs[name], calls, time_call), cfg)
