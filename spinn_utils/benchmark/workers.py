"""CPU timing with each runtime in its own process, as deployed (docs/benchmarking.md).

In one process, torch's OpenMP workers and every ONNX Runtime session's thread pool share the
cores: on a 2-core machine that under-reported the deployable model by 15-25% (issue 17). A user
runs ONNX Runtime without torch beside it. So the coordinator (this module, in the notebook's
process) starts one **torch worker** (``torch_worker.py``: PyTorch variants, no ONNX Runtime
session) and one **ONNX Runtime worker** per export (``ort_worker.py``: never imports torch) and drives the
same interleaved rounds as in-process timing (``timing.time_rounds``): it tells one worker at a
time "visit variant X for N calls" over a pipe while the other blocks reading its own, so drift
still hits every variant alike.

It also times the deployable models **standalone**: a fresh process running only that model
(and dense PyTorch, the baseline), no other variant ever loaded, so the JSON can say how far the
interleaved harness is from what a deployer measures. The standalone visits alternate with the
harness's rounds at each point (``measure_point``): a shared VM's speed steps by 10-30% every few
seconds, and a comparison made a minute apart measured that drift, not the harness.
"""
from __future__ import annotations

import contextlib
import math
import os
import pickle
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..core.errors import SpinnError
from ..model.counting import input_features
from .bench_config import BenchConfig
from .peak import gemm_summary
from .timing import time_rounds
from .variants import Variant, make_inputs

TORCH_WORKER, ORT_WORKER = "spinn_utils.benchmark.torch_worker", "spinn_utils.benchmark.ort_worker"
ALONE = "standalone"  # label prefix of the processes that each run one model alone
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding spinn_utils/


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
    """ONNX Runtime variants run in the torch-free worker, everything else in the torch one."""
    return ORT_WORKER if variant.format == "onnx" else TORCH_WORKER


def _spec(variant: Variant):
    """What a worker needs to rebuild the variant: the .onnx path, or the pickled module."""
    if worker_for(variant) == ORT_WORKER:
        return str(variant.module.predictor.path)
    return pickle.dumps(variant.module, protocol=pickle.HIGHEST_PROTOCOL)


def worker_groups(variants: list[Variant]) -> list[tuple[str, list[Variant]]]:
    """(worker label, its variants): one torch worker for every PyTorch variant, and one ONNX
    Runtime worker per export, as each is deployed. Sessions sharing a process share the
    cores with each other's thread pools: on a 2-core AVX2 machine that timed the int8 model
    2.7x slower than it runs alone."""
    torch_variants = [v for v in variants if worker_for(v) == TORCH_WORKER]
    groups = [(label(TORCH_WORKER), torch_variants)] if torch_variants else []
    return groups + [(f"{label(ORT_WORKER)}/{v.name}", [v]) for v in variants if worker_for(v) == ORT_WORKER]


def label(module: str) -> str:
    """``spinn_utils.benchmark.ort_worker`` -> ``ort_worker``."""
    return module.rsplit(".", 1)[-1]


def start_workers(variants: list[Variant], stack: contextlib.ExitStack, alone: list[Variant] = ()
                  ) -> tuple[dict[str, Worker], dict[str, Worker]]:
    """({variant name: its harness worker}, {variant name: the fresh process that runs it alone}).

    The harness workers and one process per ``alone`` variant (loaded with that model only)
    start, import and load side by side (nothing is timed yet), and are told to exit together
    when ``stack`` closes: notebook 07's workers cost the slowest one's start (torch's import),
    not the sum."""
    groups = worker_groups(variants) + [(f"{ALONE}/{v.name}", [v]) for v in alone]
    workers: list[Worker] = []
    stack.callback(close_all, workers)  # also the ones started before a failure
    for name, group in groups:
        workers.append(Worker(worker_for(group[0]), name))
    for worker, (_, group) in zip(workers, groups):
        worker.send(op="load", variants={v.name: _spec(v) for v in group})
    owner: dict[str, Worker] = {}
    solo: dict[str, Worker] = {}
    for worker, (name, group) in zip(workers, groups):
        worker.reply()
        (solo if name.startswith(f"{ALONE}/") else owner).update({v.name: worker for v in group})
    return owner, solo


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


def _prepare(worker: Worker, threads: int, inputs: dict[str, np.ndarray], cfg: BenchConfig) -> dict[str, str]:
    """Give ``worker`` its inputs at ``threads`` and warm its variants up: {name: warm-up error}."""
    batch = len(next(iter(inputs.values()))) if inputs else 0
    return worker.request(op="prepare", threads=threads, inputs=inputs, warmup=cfg.warmup,
                          budget_ms=cfg.max_seconds_per_measurement * 1e3,
                          stop_spinning=batch >= cfg.stop_spinning_from)["errors"]


def _visit(worker: Worker, name: str, calls: int, lead_ms: float) -> tuple[float, list[float]]:
    reply = worker.request(op="visit", name=name, calls=calls, lead_ms=lead_ms)
    return reply["untimed_ms"], reply["ms"]


def measure_point(variants: list[Variant], owner: dict[str, Worker], threads: int, batch: int,
                  cfg: BenchConfig, solo: dict[str, Worker] | None = None
                  ) -> tuple[dict[str, list[float]], dict[str, str], dict[str, list[float]]]:
    """({name: ms samples} in the harness, {name: warm-up error}, {name: ms samples} alone) at
    one (threads, batch).

    The harness's variants are timed interleaved (``timing.time_rounds``). With ``solo`` (the
    processes that each run one model alone) the point's budget is cut into
    ``cfg.standalone_segments`` segments, each the harness's rounds and then one contiguous
    visit of every model alone, so drift hits both numbers alike."""
    solo = solo or {}
    inputs = _worker_inputs(variants, batch, cfg.input_seed)
    errors: dict[str, str] = {}
    for worker in dict.fromkeys(owner.values()):
        errors.update(_prepare(worker, threads, {n: x for n, x in inputs.items() if owner[n] is worker}, cfg))
    names = [v.name for v in variants if v.name not in errors]
    solo = {n: w for n, w in solo.items() if n in names}  # a model that failed its warm-up is not timed alone
    for name, worker in solo.items():
        if failed := _prepare(worker, threads, {name: inputs[name]}, cfg):  # it just ran in the harness
            raise SpinnError(f"{name} warmed up in the harness but not alone ({worker.name}): {failed[name]}")

    def visit(name: str, calls: int) -> tuple[float, list[float]]:
        return _visit(owner[name], name, calls, cfg.lead_ms)

    if not solo:
        return time_rounds(names, visit, cfg), errors, {}
    k = cfg.standalone_segments
    part = replace(cfg, max_seconds_per_measurement=cfg.max_seconds_per_measurement / k,
                   repeats=math.ceil(cfg.repeats / k), min_repeats=math.ceil(cfg.min_repeats / k))
    harness: dict[str, list[float]] = {n: [] for n in names}
    alone: dict[str, list[float]] = {n: [] for n in solo}
    for _ in range(k):
        for name, ms in time_rounds(names, visit, part).items():
            harness[name] += ms
        for name, worker in solo.items():  # nothing else runs during the visit: the model alone
            alone[name] += _visit(worker, name, alone_calls(cfg, statistics.median(harness[name])), cfg.lead_ms)[1]
    return harness, errors, alone


def alone_calls(cfg: BenchConfig, ms: float) -> int:
    """Timed calls of one standalone visit: ``standalone_seconds / standalone_segments`` at the
    speed just measured in the harness, within the repeats and the floor of one segment."""
    k = cfg.standalone_segments
    fill = math.ceil(cfg.standalone_seconds * 1e3 / k / max(ms, 1e-6))
    return max(math.ceil(cfg.min_repeats / k), min(fill, math.ceil(cfg.repeats / k)))


def gemm_peaks(worker: Worker, threads: tuple[int, ...], cfg: BenchConfig) -> list[dict]:
    """The sustained fp32 GEMM rate at each thread count, measured in the torch worker."""
    return [gemm_summary(cfg.gemm_size, worker.request(op="gemm", n=cfg.gemm_size, repeats=cfg.gemm_repeats,
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
