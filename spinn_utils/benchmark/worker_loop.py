"""The message loop of a benchmark worker process; imports neither torch nor ONNX Runtime.

A worker holds the models of one runtime (``torch_worker`` or ``ort_worker``) and answers the
coordinator (``workers.py``) over its stdin/stdout pipes: one pickled dict per message, one per
reply. Only one worker runs at a time; the others block reading their pipe. Messages:

    {"op": "load", "variants": {name: spec}}                      -> {}
    {"op": "prepare", "threads", "inputs": {name: array}, "stop_spinning"}
                                                                  -> {"errors": {name: message}}
    {"op": "visit", "name", "warmup_ms", "visit_ms"}              -> {"ms": [...]}
    {"op": "gemm", "n", "repeats", "threads"}                     -> {"ms": [...]} (torch only)
    {"op": "modules"}                                             -> {"torch": bool, "onnxruntime": bool}
    {"op": "exit"}

A failure comes back as {"error": "Type: first line"} and the coordinator raises it; nothing is
swallowed.
"""
from __future__ import annotations

import os
import pickle
import sys
from typing import BinaryIO, Protocol

from ..core.errors import first_line
from ..core.timing import perf_ms, timed_block


class Runtime(Protocol):
    """What a worker's runtime provides; ``kernel_errors`` are reported, not raised, by prepare."""

    kernel_errors: tuple[type[BaseException], ...]

    def load(self, specs: dict) -> None: ...
    def set_inputs(self, threads: int, inputs: dict, stop_spinning: bool = False) -> None: ...
    def call(self, name: str) -> None: ...
    def gemm(self, n: int, repeats: int, threads: int) -> list[float]: ...


def prepare(runtime: Runtime, msg: dict) -> dict:
    """Set the point's inputs and run every model once: {name: error} for kernels that raised
    (e.g. a sparse op this shape lacks); those are reported, not timed."""
    runtime.set_inputs(msg["threads"], msg["inputs"], msg.get("stop_spinning", False))
    errors = {}
    for name in msg["inputs"]:
        try:
            runtime.call(name)
        except runtime.kernel_errors as err:
            errors[name] = first_line(err)
    return {"errors": errors}


def handle(runtime: Runtime, msg: dict) -> dict:
    """The reply to one message."""
    op = msg["op"]
    if op == "load":
        runtime.load(msg["variants"])
        return {}
    if op == "prepare":
        return prepare(runtime, msg)
    if op == "visit":
        name = msg["name"]
        return {"ms": timed_block(perf_ms(lambda: runtime.call(name)), msg["warmup_ms"], msg["visit_ms"])}
    if op == "gemm":
        return {"ms": runtime.gemm(msg["n"], msg["repeats"], msg["threads"])}
    if op == "modules":
        return {"torch": "torch" in sys.modules, "onnxruntime": "onnxruntime" in sys.modules}
    raise ValueError(f"unknown op {op!r}")


def serve(runtime: Runtime, check=None, stdin: BinaryIO | None = None) -> None:
    """Answer messages until "exit" or end of input; ``check()`` runs after every message."""
    stdin = stdin or sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")  # the protocol's own copy of stdout
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the protocol
    while True:
        try:
            msg = pickle.load(stdin)
        except EOFError:
            return
        if msg["op"] == "exit":
            return
        try:
            reply = handle(runtime, msg)
            if check is not None:
                check()
        except Exception as err:  # sent to the coordinator, which raises it: nothing is swallowed
            reply = {"error": f"{type(err).__name__}: {first_line(err)}"}
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
