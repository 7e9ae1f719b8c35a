"""Predict tool wear and thermal displacement from a CSV with an exported ONNX model, without torch.

    python -m spinn_utils.predict --model spinn_structured.onnx --csv windows.csv --output predictions.csv

Needs only onnxruntime, numpy, pandas and pyarrow at run time (and the ``.json`` sidecar
beside the model, written by notebook 05.5). The output keeps the input's identifier and time
columns (as written in the input) and adds one ``predicted_<target>`` column per target, its
unit in the name, and a ``warning`` column naming the inputs of a row that lie beyond the
training range by more than the sidecar's ``flag_factor`` times its width (their count goes to
stderr). The CSV is parsed (in pieces, on every core) and written by Apache Arrow's CSV reader
and writer, so memory stays bounded on any number of rows and text conversion does not dominate
the time. A missing feature column, a non-numeric value, a wrong model file, a sidecar that does
not describe the model or an ``--output`` that is one of the inputs is one line on stderr and
exit 2.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .core.errors import SpinnError, first_line
from .core.io import atomic_path
from .model.onnx_predictor import RANGE_FACTOR, OnnxPredictor, sidecar_path

CHUNK_ROWS = 100_000  # rows per output block: ~15 MB of features at 18 inputs, whatever the file's size
# Bytes of CSV parsed at a time, by Arrow's multi-threaded reader (its streaming reader is
# single-threaded: 2.7-3.5 s against 1.7-2.0 s for 1M rows on 2 cores), in blocks of BLOCK_BYTES.
PIECE_BYTES = 32 << 20
BLOCK_BYTES = 2 << 20
# Rows per ONNX Runtime call: a few thousand rows keep the layers' activations in cache and the
# runtime's memory arena small (issue 18 measured 56k rows/s for a whole file in one call).
INFER_ROWS = 4096


def output_column(target: dict) -> str:
    """``predicted_tool_wear_vb_mm``: the target's name, with its unit appended when it lacks it."""
    name, unit = target["name"], target.get("unit") or ""
    return f"predicted_{name}" + ("" if not unit or name.endswith(f"_{unit}") else f"_{unit}")


def predict_features(predictor: OnnxPredictor, x: np.ndarray, threads: int) -> np.ndarray:
    """(n, n_targets) float32 predictions for float32 features, ``INFER_ROWS`` rows per call."""
    if not len(x):
        return np.zeros((0, len(predictor.target_names)), np.float32)
    return np.concatenate([predictor.run(x[i:i + INFER_ROWS], threads) for i in range(0, len(x), INFER_ROWS)])


def range_warnings(predictor: OnnxPredictor, x: np.ndarray) -> tuple[pa.Array, int]:
    """(the ``warning`` column, rows flagged): the features of each row beyond the training range."""
    flags = predictor.outside_range(x)
    warning = np.full(len(x), "", dtype=object)
    rows = flags.any(axis=1)
    if rows.any():  # one text per distinct set of flagged inputs, however many rows share it
        patterns, which = np.unique(flags[rows], axis=0, return_inverse=True)
        names = np.asarray(predictor.feature_names)
        texts = np.array(["beyond training range: " + " ".join(names[p]) for p in patterns], dtype=object)
        warning[rows] = texts[which.ravel()]
    return pa.array(warning, pa.string()), int(rows.sum())


def predict_batch(predictor: OnnxPredictor, batch: pa.RecordBatch, id_columns: list[str], source: str,
                  threads: int = 1, first_row: int = 0) -> tuple[pa.Table, int]:
    """(the output rows of one block: id columns, one prediction per target, ``warning``; rows flagged)."""
    raw = np.column_stack([batch.column(name).to_numpy(zero_copy_only=False) for name in predictor.feature_names])
    x = predictor.checked(raw, source, first_row)  # Arrow parsed the features as float64
    y = predict_features(predictor, x, threads)
    warning, flagged = range_warnings(predictor, raw)
    columns = {c: batch.column(c) for c in id_columns}
    columns.update({output_column(t): pa.array(y[:, j]) for j, t in enumerate(predictor.meta["targets"])})
    columns["warning"] = warning
    return pa.table(columns), flagged


def csv_header(path: Path) -> list[str]:
    """The CSV's column names; a missing or empty file, or a column named twice, is a SpinnError."""
    if not path.is_file():
        raise SpinnError(f"CSV not found: {path}")
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
    except (UnicodeDecodeError, csv.Error) as err:
        raise SpinnError(f"cannot parse CSV {path}: {first_line(err)}") from err
    if not header:
        raise SpinnError(f"CSV file is empty: {path}")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise SpinnError(f"{path} names column(s) {duplicated} more than once")
    return header


def explain_parse_error(predictor: OnnxPredictor, path: Path, err: Exception) -> SpinnError:
    """Arrow refused the file: find the first bad value the careful (pandas) way, to name it,
    its column and its row; a file pandas cannot parse either is 'cannot parse CSV'."""
    import pandas as pd  # the careful parser, only on this error path

    first = 0
    try:
        for frame in pd.read_csv(path, chunksize=CHUNK_ROWS, usecols=predictor.feature_names):
            predictor.features_from(frame, str(path), first)
            first += len(frame)
    except SpinnError as found:
        return found
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as other:
        return SpinnError(f"cannot parse CSV {path}: {first_line(other)}")
    return SpinnError(f"cannot parse CSV {path}: {first_line(err)}")


def read_blocks(predictor: OnnxPredictor, path: Path, chunk_rows: int = CHUNK_ROWS
                ) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """(the id columns present, the feature and id columns in blocks of at most ``chunk_rows``).

    Features are parsed as float64 (then checked and cast, so a value float32 cannot hold is
    named); id columns are kept as text, exactly as written in the input."""
    header = csv_header(path)
    missing = [c for c in predictor.feature_names if c not in header]
    if missing:
        raise SpinnError(f"{path} lacks feature column(s) {missing}; the model needs {predictor.feature_names}")
    ids = [c for c in predictor.meta.get("id_columns", []) if c in header]
    types = {**{c: pa.string() for c in ids}, **{c: pa.float64() for c in predictor.feature_names}}
    columns = list(dict.fromkeys([*ids, *predictor.feature_names]))  # an id that is also an input: a number
    convert = pacsv.ConvertOptions(include_columns=columns, column_types=types)
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES)

    def blocks() -> Iterator[pa.RecordBatch]:
        try:
            for piece in csv_pieces(path, PIECE_BYTES):
                yield from pacsv.read_csv(pa.py_buffer(piece), read_options=read,
                                          convert_options=convert).to_batches(max_chunksize=chunk_rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise explain_parse_error(predictor, path, err) from err

    return ids, blocks()


def csv_pieces(path: Path, size: int) -> Iterator[bytes]:
    """The CSV in pieces of about ``size`` bytes cut at line ends, each led by the header line, so
    each parses alone and memory stays bounded (a value holding a line break is refused, as by
    Arrow's own block splitting)."""
    with open(path, "rb") as f:
        header, rest = f.readline(), b""
        while data := f.read(size):
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield header + data[:cut]
        if rest.strip():  # a last line without a line break
            yield header + rest


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
    ids, blocks = read_blocks(predictor, Path(csv_path), chunk_rows)
    with atomic_path(output) as tmp:
        writer = None
        try:
            for batch in blocks:
                table, n_flagged = predict_batch(predictor, batch, ids, csv_path, threads, first_row=rows)
                writer = writer or pacsv.CSVWriter(str(tmp), table.schema)
                writer.write_table(table)
                rows, flagged = rows + table.num_rows, flagged + n_flagged
        finally:
            if writer is not None:
                writer.close()
        if rows == 0:
            raise SpinnError(f"CSV file has a header but no rows: {csv_path}")
    return rows, flagged


def main(argv: list[str] | None = None) -> int:
    """0 written, 2 bad input (one line on stderr)."""
    p = argparse.ArgumentParser(prog="python -m spinn_utils.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="an exported .onnx file (its .json sidecar beside it)")
    p.add_argument("--csv", required=True, help="rows of raw features, one column per model input")
    p.add_argument("--output", required=True, help="where to write the predictions CSV")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="ONNX Runtime intra-op threads (default: every core, %(default)s here)")
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
