"""Predict tool wear and thermal displacement from a CSV with an exported ONNX model, without torch.

    python -m spinn_utils.predict --model spinn_structured.onnx --csv windows.csv --output predictions.csv

Needs only onnxruntime, numpy and pandas at run time (and the ``.json`` sidecar beside the
model, written by notebook 05.5). The output keeps the input's identifier and time columns
and adds one ``predicted_<target>`` column per target, its unit in the name. A missing
feature column, a non-numeric value or a wrong model file is one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from .core.errors import SpinnError
from .core.io import atomic_path
from .data.sources import read_csv_strict
from .model.onnx_predictor import OnnxPredictor


def output_column(target: dict) -> str:
    """``predicted_tool_wear_vb_mm``: the target's name, with its unit appended when it lacks it."""
    name, unit = target["name"], target.get("unit") or ""
    return f"predicted_{name}" + ("" if not unit or name.endswith(f"_{unit}") else f"_{unit}")


def predict_frame(predictor: OnnxPredictor, frame: pd.DataFrame, source: str = "the CSV",
                  threads: int = 1) -> pd.DataFrame:
    """The input's id/time columns plus one prediction column per target."""
    y = predictor.run(predictor.features_from(frame, source), threads)
    keep = [c for c in predictor.meta.get("id_columns", []) if c in frame.columns]
    out = frame[keep].copy()
    for j, target in enumerate(predictor.meta["targets"]):
        out[output_column(target)] = y[:, j].astype("float64")
    return out


def main(argv: list[str] | None = None) -> int:
    """0 written, 2 bad input (one line on stderr)."""
    p = argparse.ArgumentParser(prog="python -m spinn_utils.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="an exported .onnx file (its .json sidecar beside it)")
    p.add_argument("--csv", required=True, help="rows of raw features, one column per model input")
    p.add_argument("--output", required=True, help="where to write the predictions CSV")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    args = p.parse_args(argv)
    try:
        predictor = OnnxPredictor(args.model)
        out = predict_frame(predictor, read_csv_strict(args.csv), args.csv, max(1, args.threads))
        with atomic_path(args.output) as tmp:
            out.to_csv(tmp, index=False)
    except (SpinnError, OSError) as err:
        print(f"predict: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(f"wrote {len(out)} predictions of {predictor.target_names} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
