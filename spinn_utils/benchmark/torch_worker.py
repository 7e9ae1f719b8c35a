"""The PyTorch variants' runtime: a worker process on the CPU, the notebook's process on CUDA.

Started by ``workers.py`` as ``python -m spinn_utils.benchmark.torch_worker``: the modules arrive
pickled over the pipe (the very ones that were checked; nothing written to disk) and run under
``torch.inference_mode()``, no ONNX Runtime session beside them. It also measures the fp32
GEMM rate (``peak.py``) on the same threads.
"""
from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable

import torch

from ..model.inference import first_float_tensor
from .peak import gemm_samples
from .timing import make_timer
from .worker_loop import serve


class TorchRuntime:
    """PyTorch modules by name on ``device``, each call timed by ``time_call`` (default: the
    device's timer, CUDA events or ``perf_counter_ns``)."""

    kernel_errors = (RuntimeError,)  # NotImplementedError included

    def __init__(self, device: torch.device | None = None, modules: dict | None = None,
                 time_call: Callable | None = None) -> None:
        self.device, self.modules = device or torch.device("cpu"), dict(modules or {})
        self.time_call = time_call or make_timer(self.device)[1]
        self.inputs: dict[str, torch.Tensor] = {}

    def load(self, specs: dict) -> None:
        """``specs``: {variant name: the module, pickled}."""
        with warnings.catch_warnings():  # unpickling a CSR weight repeats torch's "CSR is beta" notice
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            self.modules.update({name: pickle.loads(blob).eval() for name, blob in specs.items()})

    def set_inputs(self, threads: int, inputs: dict, stop_spinning: bool = False) -> None:
        """``stop_spinning`` is ONNX Runtime's; torch's OpenMP pool has no such switch."""
        torch.set_num_threads(int(threads))
        self.inputs = {name: torch.from_numpy(x).to(self.device, first_float_tensor(self.modules[name]).dtype)
                       for name, x in inputs.items()}

    def call(self, name: str) -> float:
        return self.time_call(self.modules[name], self.inputs[name])

    def gemm(self, n: int, repeats: int, threads: int) -> list[float]:
        torch.set_num_threads(int(threads))
        return gemm_samples(n, repeats, self.device, self.time_call)


if __name__ == "__main__":
    with torch.inference_mode():
        serve(TorchRuntime())
