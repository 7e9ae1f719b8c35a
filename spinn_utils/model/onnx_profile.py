"""Where an export's time goes: ONNX Runtime's own profiler summed per node (torch-free).

``python -m spinn_utils.model.onnx_profile --model X.onnx [--batch 1000 --threads 2 --calls 200]``
prints the mean microseconds per call of every operator type and node on seeded standard-normal
inputs (after 20 warm-up runs), largest first.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..core.errors import SpinnError
from ..model.onnx_predictor import OnnxPredictor


def node_times(trace: list[dict], skip_runs: int) -> dict[str, dict]:
    """{node: {"op", "us_per_call"}}: the Node events' ``dur`` after the first ``skip_runs`` runs, per run."""
    runs = sorted(e["ts"] for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run")
    if not runs[skip_runs:]:
        raise SpinnError(f"the profile holds {len(runs)} runs, none after the {skip_runs} warm-up runs")
    out: dict[str, dict] = defaultdict(lambda: {"op": "", "us_per_call": 0.0})
    for e in trace:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= runs[skip_runs]:
            node = out[e["name"].removesuffix("_kernel_time")]
            node["op"] = e.get("args", {}).get("op_name", "")
            node["us_per_call"] += e["dur"] / len(runs[skip_runs:])
    return dict(out)


def profile(model: Path, batch: int, threads: int, calls: int, warmup: int = 20) -> dict[str, dict]:
    """Per-node mean microseconds per call of ``model`` at ``batch`` rows on ``threads`` threads."""
    predictor = OnnxPredictor(model)  # checks the file and its sidecar
    x = np.random.default_rng(0).standard_normal((batch, len(predictor.feature_names))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.enable_profiling, opts.profile_file_prefix = True, str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        for _ in range(warmup + calls):
            session.run(None, {predictor.input_name: x})
        trace = json.loads(Path(session.end_profiling()).read_text())
    return node_times(trace, warmup)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spinn_utils.model.onnx_profile",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="an exported .onnx file (its .json sidecar beside it)")
    for flag, default in (("--batch", 1000), ("--threads", 1), ("--calls", 200)):
        p.add_argument(flag, type=int, default=default)
    args = p.parse_args(argv)
    try:
        nodes = profile(Path(args.model), max(1, args.batch), max(1, args.threads), max(1, args.calls))
    except SpinnError as err:
        print(f"onnx_profile: error: {err}", file=sys.stderr)
        return 2
    by_op: dict[str, float] = defaultdict(float)
    for t in nodes.values():
        by_op[t["op"]] += t["us_per_call"]
    total = sum(by_op.values())
    print(f"{args.model}: batch {args.batch}, {args.threads} thread(s), {args.calls} calls; kernels {total:.1f} us per call")
    for op, us in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f"  {op:28s} {us:10.1f} us  {100 * us / total:5.1f}%")
    for name, t in sorted(nodes.items(), key=lambda kv: -kv[1]["us_per_call"]):
        print(f"    {name:44s} {t['op']:22s} {t['us_per_call']:10.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
