"""The timing loop of a benchmark worker process; imports neither torch nor ONNX Runtime.

A worker holds the variants of one runtime (``torch_worker`` or ``ort_worker``) and answers the
coordinator (``isolated.py``) over its stdin/stdout pipes: one pickled dict per message, one per
reply. Only one worker runs at a time; the others block reading their pipe. Messages:

    {"op": "load", "variants": {name: spec}}           -> {}
    {"op": "prepare", "threads", "inputs": {name: array}, "warmup", "budget_ms", "stop_spinning"}
                                                        -> {"errors": {name: message}}
    {"op": "visit", "name", "calls", "lead_ms"}         -> {"untimed_ms", "ms": [...]}
    {"op": "gemm", "n", "repeats", "threads"}           -> {"ms": [...]} (torch only)
    {"op": "modules"}                                   -> {"torch": bool, "onnxruntime": bool}
    {"op": "exit"}

A failure comes back as {"error": "Type: first line"} and the coordinator raises it; nothing is
swallowed. Timing uses ``time.perf_counter_ns`` with the garbage collector paused, as in-process.
"""
from __future__ import annotations

import gc
import os
import pickle
import sys
import time
from typing import BinaryIO, Protocol


class Runtime(Protocol):
    """What a worker's runtime provides; ``kernel_errors`` are reported, not raised, at warm-up."""

    kernel_errors: tuple[type[BaseException], ...]

    def load(self, specs: dict) -> None: ...
    def set_inputs(self, threads: int, inputs: dict, stop_spinning: bool = False) -> None: ...
    def call(self, name: str) -> None: ...
    def gemm(self, n: int, repeats: int, threads: int) -> list[float]: ...


def _ms(runtime: Runtime, name: str) -> float:
    t0 = time.perf_counter_ns()
    runtime.call(name)
    return (time.perf_counter_ns() - t0) / 1e6


def warm(runtime: Runtime, names: list[str], warmup: int, budget_ms: float) -> dict[str, str]:
    """Up to ``warmup`` untimed calls each (at least one): {name: error} for kernels that raised."""
    errors = {}
    for name in names:
        spent = 0.0
        try:
            for _ in range(max(1, warmup)):
                spent += _ms(runtime, name)
                if spent > budget_ms:  # a slow variant is warm after one call
                    break
        except runtime.kernel_errors as err:
            errors[name] = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return errors


def visit(runtime: Runtime, name: str, calls: int, lead_ms: float = 0.0) -> dict:
    """Untimed calls for ``lead_ms`` (at least one), then ``calls`` timed ones, with the garbage
    collector paused. The lead-in lets the pools of the process visited before this one stop
    spinning on the cores this one needs."""
    gc.disable()
    try:
        untimed = _ms(runtime, name)
        while untimed < lead_ms:
            untimed += _ms(runtime, name)
        return {"untimed_ms": untimed, "ms": [_ms(runtime, name) for _ in range(calls)]}
    finally:
        gc.enable()


def handle(runtime: Runtime, msg: dict) -> dict:
    """The reply to one message."""
    op = msg["op"]
    if op == "load":
        runtime.load(msg["variants"])
        return {}
    if op == "prepare":
        runtime.set_inputs(msg["threads"], msg["inputs"], msg.get("stop_spinning", False))
        return {"errors": warm(runtime, list(msg["inputs"]), msg["warmup"], msg["budget_ms"])}
    if op == "visit":
        return visit(runtime, msg["name"], msg["calls"], msg.get("lead_ms", 0.0))
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
            reply = {"error": f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"}
        pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
