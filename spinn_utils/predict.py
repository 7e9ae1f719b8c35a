"""Predict tool wear and thermal displacement from a CSV with an exported ONNX model, without torch.

    python -m spinn_utils.predict --model spinn_structured.onnx --csv windows.csv --output predictions.csv

Needs only onnxruntime, numpy and pandas at run time (and the ``.json`` sidecar beside the
model, written by notebook 05.5). The output keeps the input's identifier and time columns
and adds one ``predicted_<target>`` column per target, its unit in the name, and a ``warning``
column naming the inputs of a row that lie beyond the training range by more than the
sidecar's ``flag_factor`` times its width (their count goes to stderr). The CSV is read and
written in chunks, so memory stays bounded on any number of rows. A missing feature column, a
non-numeric value, a wrong model file, a sidecar that does not describe the model or an
``--output`` that is one of the inputs is one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .core.errors import SpinnError, first_line
from .core.io import atomic_path
from .model.onnx_predictor import RANGE_FACTOR, OnnxPredictor, sidecar_path

CHUNK_ROWS = 100_000  # rows read per chunk: ~15 MB of features at 18 inputs, whatever the file's size
# Rows per ONNX Runtime call: a 1,000-row batch keeps the layers' activations in cache (issue 18
# measured 229k rows/s at 1,000 rows against 56k rows/s for the whole file at once) and the
# runtime's memory arena small.
INFER_ROWS = 1024


def output_column(target: dict) -> str:
    """``predicted_tool_wear_vb_mm``: the target's name, with its unit appended when it lacks it."""
    name, unit = target["name"], target.get("unit") or ""
    return f"predicted_{name}" + ("" if not unit or name.endswith(f"_{unit}") else f"_{unit}")


def predict_frame(predictor: OnnxPredictor, frame: pd.DataFrame, source: str = "the CSV",
                  threads: int = 1, first_row: int = 0) -> pd.DataFrame:
    """The input's id/time columns, one prediction column per target, and ``warning``."""
    x = predictor.features_from(frame, source, first_row)
    y = np.concatenate([predictor.run(x[i:i + INFER_ROWS], threads) for i in range(0, len(x), INFER_ROWS)]
                       or [np.zeros((0, len(predictor.target_names)), np.float32)])
    keep = [c for c in predictor.meta.get("id_columns", []) if c in frame.columns]
    out = frame[keep].copy()
    for j, target in enumerate(predictor.meta["targets"]):
        out[output_column(target)] = y[:, j]  # float32, written in its shortest exact form
    flags = predictor.outside_range(x.astype(np.float64))
    warning = np.full(len(frame), "", dtype=object)
    for i in np.flatnonzero(flags.any(axis=1)):
        warning[i] = "beyond training range: " + " ".join(np.asarray(predictor.feature_names)[flags[i]])
    out["warning"] = warning
    return out


def _chunks(path: Path, rows: int, wanted: list[str]):
    """The ``wanted`` columns of the CSV (those it has) in chunks of ``rows``; empty, unparsable
    or a column named twice is a SpinnError."""
    if not path.is_file():
        raise SpinnError(f"CSV not found: {path}")
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        duplicated = sorted({c for c in header if header.count(c) > 1})
        if duplicated:
            raise SpinnError(f"{path} names column(s) {duplicated} more than once")
        usecols = [c for c in header if c in set(wanted)] or None  # parse only what is used
        yield from pd.read_csv(path, chunksize=rows, usecols=usecols)
    except pd.errors.EmptyDataError as err:
        raise SpinnError(f"CSV file is empty: {path}") from err
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as err:
        raise SpinnError(f"cannot parse CSV {path}: {first_line(err)}") from err


def refuse_overwriting_inputs(output: str, inputs: list[str]) -> None:
    """``--output`` must not be ``--csv``, the model or its sidecar (by path or as the same file)."""
    out = Path(output).expanduser()
    for given in inputs:
        path = Path(given).expanduser()
        same = out.resolve() == path.resolve() or (out.exists() and path.exists() and os.path.samefile(out, path))
        if same:
            raise SpinnError(f"--output {output} is the input {given}: writing it would destroy the input; "
                             "name another file")
    if out.is_dir():
        raise SpinnError(f"--output {output} is a folder; name a file")


def predict_csv(predictor: OnnxPredictor, csv_path: str, output: str, threads: int = 1,
                chunk_rows: int = CHUNK_ROWS) -> tuple[int, int]:
    """Stream ``csv_path`` through the model into ``output`` (atomically): (rows, rows flagged)."""
    rows = flagged = 0
    with atomic_path(output) as tmp, open(tmp, "w", newline="") as f:
        wanted = [*predictor.feature_names, *predictor.meta.get("id_columns", [])]
        for chunk in _chunks(Path(csv_path), chunk_rows, wanted):
            out = predict_frame(predictor, chunk, csv_path, threads, first_row=rows)
            out.to_csv(f, header=rows == 0, index=False)
            rows, flagged = rows + len(out), flagged + int((out["warning"] != "").sum())
        if rows == 0:
            raise SpinnError(f"CSV file has a header but no rows: {csv_path}")
    return rows, flagged


def main(argv: list[str] | None = None) -> int:
    """0 written, 2 bad input (one line on stderr)."""
    p = argparse.ArgumentParser(prog="python -m spinn_utils.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="an exported .onnx file (its .json sidecar beside it)")
    p.add_argument("--csv", required=True, help="rows of raw features, one column per model input")
    p.add_argument("--output", required=True, help="where to write the predictions CSV")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    args = p.parse_args(argv)
    try:
        refuse_overwriting_inputs(args.output, [args.csv, args.model, str(sidecar_path(args.model))])
        predictor = OnnxPredictor(args.model)
        rows, flagged = predict_csv(predictor, args.csv, args.output, max(1, args.threads))
    except (SpinnError, OSError) as err:
        print(f"predict: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    if flagged:
        print(f"predict: warning: {flagged} of {rows} rows have inputs beyond the training range by more than "
              f"{RANGE_FACTOR:g}x its width (see the 'warning' column): those predictions are extrapolations",
              file=sys.stderr)
    print(f"wrote {rows} predictions of {predictor.target_names} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
