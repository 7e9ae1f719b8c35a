"""CPU timing as deployed: each runtime in its own worker process, visited in rotation.

A user runs an ONNX Runtime export without torch beside it (``python -m spinn_utils.predict``)
and a PyTorch model in a torch process. So the coordinator (this module, in the notebook's
process) starts one **torch worker** (``torch_worker.py``: every PyTorch variant; torch has one
thread pool per process and runs one model at a time) and one **ONNX Runtime worker per export**
(``ort_worker.py``: never imports torch; each session owns a thread pool, and a second session's
pool spinning beside it would take its cores). The workers load once and stay up for the whole
run. At each (threads, batch) the coordinator visits the variants in rotation (``timing.rotate``):
it tells one worker at a time "visit X" over a pipe while the others block reading theirs.
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
from .variants import Variant, make_inputs

TORCH_WORKER, ORT_WORKER = "spinn_utils.benchmark.torch_worker", "spinn_utils.benchmark.ort_worker"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding spinn_utils/
# From this batch on, ONNX Runtime pools stop spinning when a run returns: an idle export's
# spinning pool otherwise took a core from the next visit (2-core VM, batch 1000: 7.5 against
# 3.5 ms), and alone it costs nothing there. At batch 1 stopping costs 30-90% per call, so
# small batches keep ONNX Runtime's default, as deployed.
STOP_SPINNING_FROM = 64


class Worker:
    """One worker process and its pipes; ``request`` sends a message and waits for the reply."""

    def __init__(self, module: str, name: str | None = None) -> None:
        self.module, self.name = module, name or label(module)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)

    def request(self, **msg) -> dict:
        self.send(**msg)
        return self.reply()

    def send(self, **msg) -> None:
        """Send a message without waiting (``reply`` reads the answer): workers started together
        load together."""
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
            raise SpinnError(f"benchmark worker {self.module}: {reply['error']}")
        return reply

    def _exited(self) -> SpinnError:
        return SpinnError(f"benchmark worker {self.module} exited (code {self.proc.poll()}): see its stderr above")

    def ask_to_exit(self) -> None:
        if self.proc.stdin.closed:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            pickle.dump({"op": "exit"}, self.proc.stdin)
            self.proc.stdin.close()

    def close(self) -> None:
        self.ask_to_exit()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def worker_for(variant: Variant) -> str:
    """ONNX Runtime variants run in a torch-free worker, everything else in the torch one."""
    return ORT_WORKER if variant.format == "onnx" else TORCH_WORKER


def _spec(variant: Variant):
    """What a worker needs to rebuild the variant: the .onnx path, or the pickled module."""
    if worker_for(variant) == ORT_WORKER:
        return str(variant.module.predictor.path)
    return pickle.dumps(variant.module, protocol=pickle.HIGHEST_PROTOCOL)


def worker_groups(variants: list[Variant]) -> list[tuple[str, list[Variant]]]:
    """(worker label, its variants): one torch worker for every PyTorch variant, and one ONNX
    Runtime worker per export."""
    torch_variants = [v for v in variants if worker_for(v) == TORCH_WORKER]
    groups = [(label(TORCH_WORKER), torch_variants)] if torch_variants else []
    return groups + [(f"{label(ORT_WORKER)}/{v.name}", [v]) for v in variants if worker_for(v) == ORT_WORKER]


def label(module: str) -> str:
    """``spinn_utils.benchmark.ort_worker`` -> ``ort_worker``."""
    return module.rsplit(".", 1)[-1]


def start_workers(variants: list[Variant], stack: contextlib.ExitStack) -> dict[str, Worker]:
    """{variant name: the worker that times it}. The workers start, import and load side by side
    (nothing is timed yet) and are told to exit together when ``stack`` closes: starting them
    costs the slowest one's start (torch's import), not the sum."""
    groups = worker_groups(variants)
    workers: list[Worker] = []
    stack.callback(close_all, workers)  # also the ones started before a failure
    for name, group in groups:
        workers.append(Worker(worker_for(group[0]), name))
    for worker, (_, group) in zip(workers, groups):
        worker.send(op="load", variants={v.name: _spec(v) for v in group})
    owner: dict[str, Worker] = {}
    for worker, (_, group) in zip(workers, groups):
        worker.reply()
        owner.update({v.name: worker for v in group})
    return owner


def close_all(workers: list[Worker]) -> None:
    """Ask every worker to exit, then wait for each (their shutdowns overlap)."""
    for worker in workers:
        worker.ask_to_exit()
    for worker in workers:
        worker.close()


def _worker_inputs(variants: list[Variant], batch: int, seed: int) -> dict[str, np.ndarray]:
    """Every variant's input as a float32 array, from one seeded standard-normal tensor."""
    x = make_inputs(batch, input_features(variants[0].module), torch.float32, "cpu", seed)
    return {v.name: np.ascontiguousarray(np.asarray(v.input_for(x), dtype=np.float32)) for v in variants}


def measure_point(variants: list[Variant], owner: dict[str, Worker], threads: int, batch: int,
                  cfg: BenchConfig, seed: int = 0) -> tuple[dict[str, list[list[float]]], dict[str, str]]:
    """({name: [ms per timed call] per rotation}, {name: kernel error}) at one (threads, batch).

    Each worker gets the point's inputs and runs each of its models once; a model whose kernel
    raised is reported and left out. The rest are timed in rotation (``timing.rotate``)."""
    inputs = _worker_inputs(variants, batch, seed)
    errors: dict[str, str] = {}
    for worker in dict.fromkeys(owner.values()):
        mine = {n: x for n, x in inputs.items() if owner[n] is worker}
        errors.update(worker.request(op="prepare", threads=threads, inputs=mine,
                                     stop_spinning=batch >= STOP_SPINNING_FROM)["errors"])
    names = [v.name for v in variants if v.name not in errors]

    def visit(name: str) -> list[float]:
        return owner[name].request(op="visit", name=name, warmup_ms=cfg.warmup_ms, visit_ms=cfg.visit_ms)["ms"]

    return rotate(names, visit, cfg), errors


def gemm_peaks(worker: Worker, threads: tuple[int, ...], cfg: BenchConfig) -> list[dict]:
    """The sustained fp32 GEMM rate at each thread count, measured in the torch worker."""
    return [gemm_summary(cfg.gemm_size, worker.request(op="gemm", n=cfg.gemm_size, repeats=GEMM_REPEATS,
                                                        threads=t)["ms"], t,
                         "torch.mm, fp32, in the torch worker process")
            for t in threads]


def check_isolation(owner: dict[str, Worker]) -> dict[str, dict]:
    """{worker label: {"variants", "imported"}}; an ONNX Runtime worker must not have torch."""
    seen = {}
    for worker in dict.fromkeys(owner.values()):
        imported = worker.request(op="modules")
        if worker.module == ORT_WORKER and imported.get("torch"):
            raise SpinnError(f"torch was imported in {worker.name}: its timings would not be as deployed")
        seen[worker.name] = {"variants": sorted(n for n, w in owner.items() if w is worker), "imported": imported}
    return seen
