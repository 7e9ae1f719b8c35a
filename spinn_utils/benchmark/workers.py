"""The timed processes, as deployed: a torch worker and one torch-free ONNX Runtime worker per export.

A user runs an export without torch beside it (``python -m spinn_utils.predict``) and a PyTorch
model in a torch process. So on the CPU one **torch worker** holds every PyTorch variant (one
thread pool per process, one model running at a time) and each export gets its own **ONNX
Runtime worker** (a session owns a pool; another's spinning beside it would take its cores).
They load once and stay up for the run; on CUDA the torch runtime serves in this process
(``LocalWorker``). ``measure_point`` visits the variants in rotation, one worker at a time.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from ..core.errors import SpinnError
from ..model.counting import input_features
from .bench_config import BenchConfig
from .peak import GEMM_REPEATS, gemm_summary
from .timing import rotate
from .torch_worker import TorchRuntime
from .variants import INPUT_SEED, Variant, make_inputs
from .worker_loop import handle

TORCH_WORKER, ORT_WORKER = "torch_worker", "ort_worker"  # spinn_utils.benchmark.<module>
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding spinn_utils/
# From this batch on, ONNX Runtime pools stop spinning when a run returns: an idle export's pool
# took a core from the next visit (2-core VM, batch 1000: 7.5 against 3.5 ms) and alone it costs
# nothing there; at batch 1 stopping costs 30-90% a call, so small batches keep the default.
STOP_SPINNING_FROM = 64


class Worker:
    """One worker process; ``send`` a message, read the ``reply`` (``request``: both)."""

    def __init__(self, kind: str, name: str | None = None) -> None:
        self.kind, self.name = kind, name or kind
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT),
                                                                          os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-m", f"spinn_utils.benchmark.{kind}"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def request(self, **msg) -> dict:
        self.send(**msg)
        return self.reply()

    def send(self, **msg) -> None:
        try:
            pickle.dump(msg, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except BrokenPipeError as err:
            raise self._exited() from err

    def reply(self) -> dict:
        try:
            reply = pickle.load(self.proc.stdout)
        except EOFError as err:
            raise self._exited() from err
        if "error" in reply:
            raise SpinnError(f"benchmark worker {self.name}: {reply['error']}")
        return reply

    def _exited(self) -> SpinnError:
        return SpinnError(f"benchmark worker {self.name} exited (code {self.proc.poll()}): see its stderr")

    def close(self, wait: bool = True) -> None:
        """Ask the worker to exit (its pipe closes), then reap it unless ``wait`` is False."""
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):  # ValueError: asked before
            pickle.dump({"op": "exit"}, self.proc.stdin)
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30) if wait else None
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LocalWorker:
    """The torch runtime in this process, behind a worker's ``request`` (CUDA, and tests)."""

    kind, name = TORCH_WORKER, "this process"

    def __init__(self, runtime: TorchRuntime) -> None:
        self.runtime = runtime

    def request(self, **msg) -> dict:
        return handle(self.runtime, msg)


def local_workers(variants: list[Variant], device: torch.device, time_call=None) -> dict[str, LocalWorker]:
    """{variant name: the one LocalWorker holding every variant's module}."""
    worker = LocalWorker(TorchRuntime(device, {v.name: v.module for v in variants}, time_call))
    return dict.fromkeys((v.name for v in variants), worker)


def start_workers(variants: list[Variant], stack: contextlib.ExitStack) -> dict[str, Worker]:
    """{variant name: the worker process that times it}, closed with ``stack``. The workers start,
    import and load side by side (nothing is timed yet): starting them costs the slowest one's
    start (torch's import), not the sum."""
    torch_group = [v for v in variants if v.format != "onnx"]
    groups = [(TORCH_WORKER, TORCH_WORKER, torch_group)] if torch_group else []
    groups += [(ORT_WORKER, f"{ORT_WORKER}/{v.name}", [v]) for v in variants if v.format == "onnx"]
    workers: list[Worker] = []
    stack.callback(_close_all, workers)  # also the ones started before a failure
    for kind, name, group in groups:
        workers.append(Worker(kind, name))
        workers[-1].send(op="load", variants={v.name: _spec(v) for v in group})
    for worker in workers:
        worker.reply()
    return {v.name: worker for worker, (*_, group) in zip(workers, groups) for v in group}


def _spec(variant: Variant):
    """What a worker needs to rebuild the variant: the .onnx path, or the pickled module."""
    if variant.format == "onnx":
        return str(variant.module.predictor.path)
    return pickle.dumps(variant.module, protocol=pickle.HIGHEST_PROTOCOL)


def _close_all(workers: list[Worker]) -> None:
    for worker in workers:  # all asked first, so their shutdowns overlap
        worker.close(wait=False)
    for worker in workers:
        worker.close()


def measure_point(variants: list[Variant], owner: dict, threads: int, batch: int,
                  cfg: BenchConfig) -> tuple[dict[str, list[list[float]]], dict[str, str]]:
    """({name: [ms per timed call] per rotation}, {name: kernel error}) at one (threads, batch):
    every model gets its form of one seeded input and runs once; one whose kernel raised is left
    out, the rest are timed in rotation."""
    x = make_inputs(batch, input_features(variants[0].module), torch.float32, "cpu", INPUT_SEED)
    inputs = {v.name: np.ascontiguousarray(np.asarray(v.input_for(x), dtype=np.float32)) for v in variants}
    errors: dict[str, str] = {}
    for worker in dict.fromkeys(owner.values()):
        mine = {n: a for n, a in inputs.items() if owner[n] is worker}
        errors.update(worker.request(op="prepare", threads=threads, inputs=mine,
                                     stop_spinning=batch >= STOP_SPINNING_FROM)["errors"])

    def visit(name: str) -> list[float]:
        return owner[name].request(op="visit", name=name, warmup_ms=cfg.warmup_ms, visit_ms=cfg.visit_ms)["ms"]

    return rotate([v.name for v in variants if v.name not in errors], visit, cfg), errors


def gemm_peaks(worker, threads: tuple[int, ...], cfg: BenchConfig) -> list[dict]:
    """The sustained fp32 GEMM rate at each thread count, measured by the torch runtime."""
    ms = {t: worker.request(op="gemm", n=cfg.gemm_size, repeats=GEMM_REPEATS, threads=t)["ms"] for t in threads}
    return [gemm_summary(cfg.gemm_size, ms[t], t, f"torch.mm, fp32, in {worker.name}") for t in threads]


def check_isolation(owner: dict[str, Worker]) -> dict[str, dict]:
    """{worker name: {"variants", "imported"}}; an ONNX Runtime worker must not have torch."""
    seen = {}
    for worker in dict.fromkeys(owner.values()):
        imported = worker.request(op="modules")
        if worker.kind == ORT_WORKER and imported["torch"]:
            raise SpinnError(f"torch was imported in {worker.name}: its timings would not be as deployed")
        seen[worker.name] = {"variants": sorted(n for n, w in owner.items() if w is worker), "imported": imported}
    return seen
