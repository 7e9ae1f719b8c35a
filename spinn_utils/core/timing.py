"""The one timing loop: untimed warm-up calls, then timed calls, with the garbage collector paused.
Torch-free, so the ONNX Runtime worker and the int8 quantizer use it as well as torch and CUDA."""
from __future__ import annotations

import gc
import time
from collections.abc import Callable


def perf_ms(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` as a call that returns its wall time in milliseconds (``time.perf_counter_ns``)."""
    def call() -> float:
        t0 = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - t0) / 1e6
    return call


def timed_block(call: Callable[[], float], warmup_ms: float = 0.0, timed_ms: float = 0.0,
                min_calls: int = 1) -> list[float]:
    """Untimed calls until ``warmup_ms`` is spent (at least one), then timed calls until
    ``timed_ms`` is spent and at least ``min_calls`` ran: [ms per timed call]. ``call()`` runs
    the code once and returns its milliseconds (``perf_ms``; CUDA passes one timed with events).

    The warm-up makes a block fair after another model ran: caches, the thread pool's wake-up
    and another process's pool still spinning land there, not in the samples."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        spent = call()
        while spent < warmup_ms:
            spent += call()
        samples: list[float] = []
        total = 0.0
        while len(samples) < min_calls or total < timed_ms:
            samples.append(call())
            total += samples[-1]
        return samples
    finally:
        if was_enabled:
            gc.enable()
