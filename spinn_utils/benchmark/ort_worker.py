"""A benchmark worker that runs one ONNX Runtime export in a process that never imports torch.

Started by ``workers.py`` as ``python -m spinn_utils.benchmark.ort_worker``: the deployable model
as a user runs it, ONNX Runtime's own pool and no torch beside it (asserted after every message).
"""
from __future__ import annotations

import sys

import numpy as np

from ..core.timing import perf_ms
from ..model.onnx_predictor import ORT_LOAD_ERRORS, OnnxPredictor
from ..model.sequence_predictor import deployed_call
from .worker_loop import serve


class OrtRuntime:
    """ONNX exports by name, each called as deployed (``deployed_call``: a hard one with its head)."""

    kernel_errors = ORT_LOAD_ERRORS

    def __init__(self) -> None:
        self.models: dict[str, OnnxPredictor] = {}
        self.calls: dict = {}

    def load(self, specs: dict) -> None:
        """``specs``: {variant name: path of its .onnx (sidecar beside it)}."""
        self.models.update({name: OnnxPredictor(path) for name, path in specs.items()})

    def set_inputs(self, threads: int, inputs: dict, stop_spinning: bool = False) -> None:
        """Sessions are built here, outside the timed region; ``stop_spinning``: their pools stop
        spinning when a run returns (the coordinator decides, ``workers.STOP_SPINNING_FROM``)."""
        self.calls = {}
        for name, x in inputs.items():
            model, x = self.models[name], np.ascontiguousarray(x, dtype=np.float32)
            model.session(int(threads), bool(stop_spinning))
            self.calls[name] = perf_ms(deployed_call(model, x, int(threads), bool(stop_spinning)))

    def call(self, name: str) -> float:
        return self.calls[name]()

    def gemm(self, n: int, repeats: int, threads: int) -> list[float]:
        raise ValueError("the GEMM rate is measured in the torch worker")


def assert_no_torch() -> None:
    """The whole point of this process: ONNX Runtime without torch beside it."""
    assert "torch" not in sys.modules, "torch was imported in the ONNX Runtime worker"


if __name__ == "__main__":
    assert_no_torch()
    serve(OrtRuntime(), check=assert_no_torch)
