"""A benchmark worker that runs ONNX Runtime sessions in a process that never imports torch.

Started by ``workers.py`` as ``python -m spinn_utils.benchmark.ort_worker``; this is how the
deployable model runs for a user (``python -m spinn_utils.predict``): ONNX Runtime's own thread
pool, no torch OpenMP workers beside it. It asserts after every message that torch is still
not imported.
"""
from __future__ import annotations

import sys

import numpy as np

from ..model.onnx_predictor import ORT_LOAD_ERRORS, OnnxPredictor
from .worker_loop import serve


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

    def set_inputs(self, threads: int, inputs: dict, stop_spinning: bool = False) -> None:
        """``stop_spinning``: the sessions' pools stop spinning when a run returns (the
        coordinator decides, ``workers.STOP_SPINNING_FROM``)."""
        self.threads = int(threads)
        self.inputs = {name: np.ascontiguousarray(x, dtype=np.float32) for name, x in inputs.items()}
        self.stop_spinning = bool(stop_spinning)
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
