"""A benchmark worker that runs ONNX Runtime sessions in a process that never imports torch.

Started by ``isolated.py`` as ``python -m spinn_utils.benchmark.ort_worker``; this is how the
deployable model runs for a user (``python -m spinn_utils.predict``): ONNX Runtime's own thread
pool, no torch OpenMP workers beside it. It asserts after every message that torch is still
not imported.
"""
from __future__ import annotations

import sys

import numpy as np

from ..model.onnx_predictor import ORT_LOAD_ERRORS, OnnxPredictor
from .worker_loop import serve

# From this batch size on, sessions stop their pool's spinning when a run returns. An idle
# worker's spinning pool otherwise took a core from the export being timed: on a 2-core AVX2 VM
# the structured export timed 7.5 ms interleaved with the other exports against 3.5 ms alone
# (batch 1000, 2 threads); with the spinning stopped, 3.6 against 3.5 ms, and alone it is as
# fast as with the default (2.7-2.8 ms either way in another run). At batch 1 stopping costs
# 30-90% per call, so small batches keep ONNX Runtime's default, as a deployer runs it.
STOP_SPINNING_FROM = 64


class OrtRuntime:
    """ONNX exports by name: raw float32 features in, physical units out."""

    kernel_errors = ORT_LOAD_ERRORS

    def __init__(self) -> None:
        self.models: dict[str, OnnxPredictor] = {}
        self.inputs: dict[str, np.ndarray] = {}
        self.threads = 1
        self.stop_spinning = False

    def load(self, specs: dict) -> None:
        """``specs``: {variant name: path of its .onnx (sidecar beside it)}."""
        self.models.update({name: OnnxPredictor(path) for name, path in specs.items()})

    def set_inputs(self, threads: int, inputs: dict) -> None:
        self.threads = int(threads)
        self.inputs = {name: np.ascontiguousarray(x, dtype=np.float32) for name, x in inputs.items()}
        batch = len(next(iter(self.inputs.values()))) if self.inputs else 0
        self.stop_spinning = batch >= STOP_SPINNING_FROM
        for name in inputs:
            self.models[name].session(self.threads, self.stop_spinning)  # built outside the timed region

    def call(self, name: str) -> None:
        self.models[name].run(self.inputs[name], self.threads, self.stop_spinning)

    def gemm(self, n: int, repeats: int, threads: int) -> list[float]:
        raise ValueError("the GEMM rate is measured in the torch worker")


def assert_no_torch() -> None:
    """The whole point of this process: ONNX Runtime without torch beside it."""
    assert "torch" not in sys.modules, "torch was imported in the ONNX Runtime worker"


if __name__ == "__main__":
    assert_no_torch()
    serve(OrtRuntime(), check=assert_no_torch)
