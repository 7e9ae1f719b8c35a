"""Timers and the rotation schedule (docs/benchmarking.md).

CPU calls are timed with ``time.perf_counter_ns``; CUDA calls between two
``torch.cuda.Event(enable_timing=True)`` records, read after the end event synchronizes
(kernel launches are asynchronous). A point is timed in rotations A B C A B C ...: each visits
every variant once, so a machine that drifts slows one rotation's numbers alike.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch

from .bench_config import BenchConfig

MIN_ROTATIONS = 3  # a point's budget never cuts it below this many rotations (or cfg.rotations)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)``; the previous count is restored, always."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_timer(device: torch.device) -> tuple[str, Callable[[Callable, object], float]]:
    """(timer name, ``time_call(fn, x) -> ms``) for the device."""
    if device.type != "cuda":
        def time_cpu(fn: Callable, x) -> float:
            t0 = time.perf_counter_ns()
            fn(x)
            return (time.perf_counter_ns() - t0) / 1e6
        return "time.perf_counter_ns", time_cpu
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def time_cuda(fn: Callable, x) -> float:
        start.record()
        fn(x)
        end.record()
        end.synchronize()  # wait for the kernels before reading the events
        return float(start.elapsed_time(end))
    return "torch.cuda.Event", time_cuda


def rotate(names: list[str], visit: Callable[[str], list[float]], cfg: BenchConfig,
           clock: Callable[[], float] = time.perf_counter) -> dict[str, list[list[float]]]:
    """{name: [ms per timed call] per rotation}: ``visit(name)`` (one block of one variant, wherever
    it lives) in rotations A B C A B C ..., ``cfg.rotations`` of them or fewer when the next would
    end (at the mean rotation so far) past ``cfg.seconds_per_point``, but ``MIN_ROTATIONS`` always."""
    out: dict[str, list[list[float]]] = {name: [] for name in names}
    t0 = clock()
    for r in range(cfg.rotations):
        spent = clock() - t0
        if r >= MIN_ROTATIONS and spent + spent / r > cfg.seconds_per_point:
            break
        for name in names:
            out[name].append(visit(name))
    return out
