"""The message loop of a benchmark worker; imports neither torch nor ONNX Runtime.

A worker holds the models of one runtime (``torch_worker.TorchRuntime`` or
``ort_worker.OrtRuntime``) and answers the coordinator (``workers.py``), in its own process over
stdin/stdout (one pickled dict per message and per reply) or in the notebook's (CUDA). Messages:

    {"op": "load", "variants": {name: spec}}                             -> {}
    {"op": "prepare", "threads", "inputs": {name: array}, "stop_spinning"} -> {"errors": {name: msg}}
    {"op": "visit", "name", "warmup_ms", "visit_ms"}                     -> {"ms": [...]}
    {"op": "gemm", "n", "repeats", "threads"}                            -> {"ms": [...]} (torch only)
    {"op": "modules"}                                                    -> {"torch", "onnxruntime"}
    {"op": "exit"}

A failure comes back as {"error": "Type: first line"} and the coordinator raises it. A runtime
has ``load(specs)``, ``set_inputs(threads, inputs, stop_spinning)``, ``call(name) -> ms``,
``gemm(n, repeats, threads) -> [ms]`` and ``kernel_errors`` (reported by prepare, not raised).
"""
from __future__ import annotations

import os
import pickle
import sys

from ..core.errors import first_line
from ..core.timing import timed_block


def prepare(runtime, msg: dict) -> dict:
    """Set the point's inputs and run every model once: {name: error} for kernels that raised
    (a sparse op this shape lacks); those are reported, not timed."""
    runtime.set_inputs(msg["threads"], msg["inputs"], msg.get("stop_spinning", False))
    errors = {}
    for name in msg["inputs"]:
        try:
            runtime.call(name)
        except runtime.kernel_errors as err:
            errors[name] = first_line(err)
    return {"errors": errors}


def handle(runtime, msg: dict) -> dict:
    """The reply to one message."""
    op = msg["op"]
    if op == "load":
        runtime.load(msg["variants"])
        return {}
    if op == "prepare":
        return prepare(runtime, msg)
    if op == "visit":
        return {"ms": timed_block(lambda: runtime.call(msg["name"]), msg["warmup_ms"], msg["visit_ms"])}
    if op == "gemm":
        return {"ms": runtime.gemm(msg["n"], msg["repeats"], msg["threads"])}
    if op == "modules":
        return {"torch": "torch" in sys.modules, "onnxruntime": "onnxruntime" in sys.modules}
    raise ValueError(f"unknown op {op!r}")


def serve(runtime, check=None) -> None:
    """Answer messages on stdin until "exit" or its end, then end the process without the
    interpreter's teardown (the coordinator waits for it: with torch loaded it took ~0.5 s on 2
    cores); ``check()`` runs after every message."""
    stdin = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")  # the protocol's own copy of stdout
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the protocol
    while True:
        try:
            msg = pickle.load(stdin)
        except EOFError:
            os._exit(0)
        if msg["op"] == "exit":
            os._exit(0)
        try:
            reply = handle(runtime, msg)
            if check is not None:
                check()
        except Exception as err:  # sent to the coordinator, which raises it: nothing is swallowed
            reply = {"error": f"{type(err).__name__}: {first_line(err)}"}
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

