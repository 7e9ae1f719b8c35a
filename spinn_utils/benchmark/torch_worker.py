"""A benchmark worker that runs PyTorch variants in a process without ONNX Runtime sessions.

Started by ``workers.py`` as ``python -m spinn_utils.benchmark.torch_worker``. The coordinator
sends the modules it has already checked (pickled over the pipe, in memory; nothing is written
to disk), so what is timed is exactly what was checked. Every call runs under
``torch.inference_mode()``; ``torch.set_num_threads`` is set per measurement. This worker also
measures the sustained fp32 GEMM rate (``peak.py``) on the same threads.
"""
from __future__ import annotations

import pickle
import warnings

import torch

from ..model.inference import first_float_tensor
from .peak import gemm_samples
from .timing import make_timer
from .worker_loop import serve


class TorchRuntime:
    """PyTorch modules by name, on the CPU."""

    kernel_errors = (RuntimeError,)

    def __init__(self) -> None:
        self.modules: dict[str, torch.nn.Module] = {}
        self.inputs: dict[str, torch.Tensor] = {}

    def load(self, specs: dict) -> None:
        """``specs``: {variant name: the module, pickled}."""
        with warnings.catch_warnings():  # unpickling a CSR weight repeats torch's "CSR is beta" notice
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            self.modules.update({name: pickle.loads(blob).eval() for name, blob in specs.items()})

    def set_inputs(self, threads: int, inputs: dict, stop_spinning: bool = False) -> None:
        """``stop_spinning`` is ONNX Runtime's; torch's OpenMP pool has no such switch."""
        torch.set_num_threads(int(threads))
        self.inputs = {name: torch.from_numpy(x).to(first_float_tensor(self.modules[name]).dtype)
                       for name, x in inputs.items()}

    def call(self, name: str) -> None:
        self.modules[name](self.inputs[name])

    def gemm(self, n: int, repeats: int, threads: int) -> list[float]:
        torch.set_num_threads(int(threads))
        return gemm_samples(n, repeats, torch.device("cpu"), make_timer(torch.device("cpu"))[1])


if __name__ == "__main__":
    with torch.inference_mode():
        serve(TorchRuntime())
