"""Predict tool wear and thermal displacement from a CSV with an exported ONNX model, without torch.

    python -m spinn_utils.predict --model spinn_structured.onnx --csv windows.csv --output predictions.csv

Needs only onnxruntime, numpy, pandas and pyarrow (and the model's ``.json`` sidecar). The output
keeps every input column as written and adds ``predicted_<target>`` columns and ``warning`` (the
inputs of a row beyond the training range); the CSV is read and written by Arrow in blocks, so
memory stays bounded. A hard-physics export predicts along time per group. What ``--output``
accepts and what is refused: README.md, "Deploy". Bad input is one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .core.errors import SpinnError, first_line
from .core.io import atomic_path, same_file
from .model.onnx_predictor import RANGE_FACTOR, OnnxPredictor, sidecar_path
from .model.sequence_predictor import SequencePredictor, is_hard, physics_of

CHUNK_ROWS = 100_000  # rows per output block: ~15 MB of features at 18 inputs, whatever the file's size
# Bytes of CSV parsed at a time, by Arrow's multi-threaded reader (its streaming reader is
# single-threaded: 2.7-3.5 s against 1.7-2.0 s for 1M rows on 2 cores), in blocks of BLOCK_BYTES.
PIECE_BYTES = 32 << 20
BLOCK_BYTES = 2 << 20
# Rows per ONNX Runtime call: a few thousand rows keep the layers' activations in cache and the
# runtime's memory arena small (a whole file in one call ran at 56k rows/s).
INFER_ROWS = 4096
BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark, which Excel's "CSV UTF-8" puts before the header
# Feature text read as missing (NaN, then refused by name), as Arrow's CSV reader would: every column
# is read as text, so that the output keeps it exactly as written, and the features are converted here.
NULL_TEXT = pa.array(["", "NA", "N/A", "n/a", "#N/A", "NULL", "null", "NaN", "nan", "-NaN", "-nan", "None"])
STDOUT = "-"
SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def output_column(target: dict) -> str:
    """``predicted_tool_wear_vb_mm``: the target's name, with its unit appended when it lacks it."""
    name, unit = target["name"], target.get("unit") or ""
    return f"predicted_{name}" + ("" if not unit or name.endswith(f"_{unit}") else f"_{unit}")


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


def feature_values(batch: pa.RecordBatch, names: list[str], source: str, first_row: int = 0,
                   predictor: OnnxPredictor | None = None) -> np.ndarray:
    """(n, len(names)) float64 from the columns' text (spaces trimmed, empty or NA as NaN); text
    that is not a number is a SpinnError (for ``predictor``'s inputs: naming value, column, row)."""
    texts, missing = {}, pa.scalar(None, pa.string())
    for name in names:
        text = pc.utf8_trim_whitespace(batch.column(name))
        texts[name] = pc.if_else(pc.is_in(text, value_set=NULL_TEXT), missing, text)
    try:
        values = [pc.cast(t, pa.float64()).to_numpy(zero_copy_only=False) for t in texts.values()]
        return np.column_stack(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        if predictor is not None:  # name the bad value the careful way
            predictor.features_from(pa.table(texts).to_pandas(), source, first_row)
        raise SpinnError(f"cannot parse CSV {source}: {first_line(err)}") from err


def predict_batch(predictor: OnnxPredictor, batch: pa.RecordBatch, source: str, threads: int = 1,
                  first_row: int = 0, named: dict | None = None) -> tuple[pa.Table, int]:
    """(the output rows of one block: every input column as written, one prediction per target,
    ``warning``; rows flagged). ``named``: a hard export's columns; the block then holds every
    row, predicted in time order per group with the state carried along."""
    raw = feature_values(batch, predictor.feature_names, source, first_row, predictor)
    x = predictor.checked(raw, source, first_row)
    if named:
        numbers = {k: feature_values(batch, [named[k]], source)[:, 0]
                   for k in ("time_col", "run_col", "power_col") if named[k]}
        for k, values in numbers.items():
            if not np.isfinite(values).all():
                raise SpinnError(f"{source}: column {named[k]!r} has empty, NaN or inf values")
        groups = batch.column(named["group_col"]).to_numpy(zero_copy_only=False)
        runs, power = numbers.get("run_col"), numbers.get("power_col")
        y = SequencePredictor(predictor).predict_rows(x, groups, numbers["time_col"], runs, power,
                                                      threads, source)
    else:
        pieces = [predictor.run(x[i:i + INFER_ROWS], threads) for i in range(0, len(x), INFER_ROWS)]
        empty = np.zeros((0, len(predictor.target_names)), np.float32)
        y = np.concatenate(pieces) if pieces else empty
    warning, flagged = range_warnings(predictor, raw)
    columns = {c: batch.column(c) for c in batch.schema.names}
    columns.update({output_column(t): pa.array(y[:, j].astype(np.float32))
                    for j, t in enumerate(predictor.meta["targets"])})
    columns["warning"] = warning
    return pa.table(columns), flagged


def csv_header(path: Path) -> list[str]:
    """The CSV's column names (a UTF-8 byte-order mark dropped); a missing or empty file, or a
    column named twice, is a SpinnError."""
    if not path.is_file():
        raise SpinnError(f"CSV not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (UnicodeDecodeError, csv.Error) as err:
        raise SpinnError(f"cannot parse CSV {path}: {first_line(err)}") from err
    if not header:
        raise SpinnError(f"CSV file is empty: {path}")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise SpinnError(f"{path} names column(s) {duplicated} more than once")
    return header


def read_blocks(predictor: OnnxPredictor, path: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
    """Every column of the CSV, as text exactly as written, in blocks of at most ``chunk_rows``.

    A missing feature column, or a column named like one the output adds, is a SpinnError now,
    before any block is read."""
    header = csv_header(path)
    missing = [c for c in predictor.feature_names if c not in header]
    if missing:
        raise SpinnError(f"{path} lacks feature column(s) {missing}; the model needs {predictor.feature_names}")
    clash = [c for c in [*map(output_column, predictor.meta["targets"]), "warning"] if c in header]
    if clash:
        raise SpinnError(f"{path} already has column(s) {clash}, which the output adds; rename them")
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False)
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES)

    def blocks() -> Iterator[pa.RecordBatch]:
        try:
            for piece in csv_pieces(path, PIECE_BYTES):
                yield from pacsv.read_csv(pa.py_buffer(piece), read_options=read,
                                          convert_options=convert).to_batches(max_chunksize=chunk_rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise SpinnError(f"cannot parse CSV {path}: {first_line(err)}") from err

    return blocks()


def csv_pieces(path: Path, size: int) -> Iterator[bytes]:
    """The CSV in pieces of about ``size`` bytes cut at line ends, each led by the header line, so
    each parses alone and memory stays bounded (a value holding a line break is refused, as by
    Arrow's own block splitting)."""
    with open(path, "rb") as f:
        header, rest = f.readline().removeprefix(BOM), b""
        while data := f.read(size):
            data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield header + data[:cut]
        if rest.strip():  # a last line without a line break
            yield header + rest


def output_target(output: str, inputs: list[str]) -> tuple[str, Path | None]:
    """How ``--output`` is written: ("stdout", None), ("stream", path) for a named pipe or the null
    device, or ("file", path) for a regular file, a symlink resolved to what it points at. A
    folder, another non-regular file (a device, a socket) or one of ``inputs`` is a SpinnError."""
    try:
        stdout = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file behind it, as under a test's capture
        stdout = None
    path = None if output == STDOUT else Path(output).expanduser()
    st = stdout if path is None else os.stat(path) if path.exists() else None
    if path is None or st is not None and stdout is not None and os.path.samestat(st, stdout):
        kind, path = "stdout", None  # also /dev/stdout, /proc/self/fd/1
    elif st is None or stat.S_ISREG(st.st_mode):
        kind, path = "file", path.resolve()  # through a symlink: the link stays, its target is replaced
    elif stat.S_ISDIR(st.st_mode):
        raise SpinnError(f"--output {output} is a folder; name a file")
    elif stat.S_ISFIFO(st.st_mode) or same_file(path, os.devnull):
        kind = "stream"
    else:
        raise SpinnError(f"--output {output} is a device or other special file, not a regular file: "
                         "name a file, or - for standard output")
    for given in inputs:
        here = Path(given).expanduser()
        if st is not None and here.exists() and os.path.samestat(st, os.stat(here)):
            raise SpinnError(f"--output {output} is the input {given}: writing it would destroy the input; "
                             "name another file")
    return kind, path


@contextlib.contextmanager
def output_sink(kind: str, path: Path | None) -> Iterator:
    """Where the CSV writer writes: a temp file renamed over ``path`` when complete, or the stream."""
    if kind == "file":
        with atomic_path(path) as tmp:
            yield str(tmp)
    elif kind == "stream":
        with open(path, "wb") as f:
            yield f
    else:
        sys.stdout.flush()
        yield sys.stdout.buffer


def sequence_columns_of(predictor: OnnxPredictor, header: list[str], path: Path, columns: dict) -> dict:
    """The group, time, run and power columns a hard export reads, named by the caller (None: the
    sidecar's; power only where it is no feature); a CSV without them is one line."""
    physics = physics_of(predictor.meta)
    named = {k: columns.get(k) if columns.get(k) is not None else physics.get(k, "")
             for k in ("group_col", "time_col", "run_col", "power_col")}
    if named["power_col"] in predictor.feature_names:
        named["power_col"] = ""
    optional = [c for c in (named["run_col"], named["power_col"]) if c]
    missing = [c for c in (named["group_col"], named["time_col"], *optional) if c not in header]
    if missing:
        raise SpinnError(f"{path} lacks column(s) {missing}: this model keeps its physics along time and needs "
                         "the group and time columns (and the run column where time restarts in every run); "
                         "name yours with --group-col/--time-col/--run-col")
    return named


def predict_csv(predictor: OnnxPredictor, csv_path: str, output: str, threads: int = 1,
                chunk_rows: int = CHUNK_ROWS, inputs: tuple[str, ...] = (), columns: dict | None = None,
                ) -> tuple[int, int]:
    """Stream ``csv_path`` through the model into ``output`` (a file, atomically; ``-``: standard
    output): (rows, rows flagged). ``inputs``: more files ``output`` must not be. ``columns``:
    the group/time/run/power column names of a hard export (None: the sidecar's)."""
    kind, path = output_target(output, [csv_path, *inputs])
    blocks, named = read_blocks(predictor, Path(csv_path), chunk_rows), None
    if is_hard(predictor):  # one block of every row: the state is carried along each group
        named = sequence_columns_of(predictor, csv_header(Path(csv_path)), Path(csv_path), columns or {})
        whole = list(blocks)
        blocks = [pa.Table.from_batches(whole).combine_chunks().to_batches()[0]] if whole else []
    rows = flagged = 0
    with output_sink(kind, path) as sink:
        writer = None
        try:
            for batch in blocks:
                table, n_flagged = predict_batch(predictor, batch, csv_path, threads, rows, named)
                writer = writer or pacsv.CSVWriter(sink, table.schema)
                writer.write_table(table)
                rows, flagged = rows + table.num_rows, flagged + n_flagged
        finally:
            if writer is not None:
                writer.close()
        if rows == 0:
            raise SpinnError(f"CSV file has a header but no rows: {csv_path}")
    return rows, flagged


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    """0 written, 2 bad input (one line on stderr)."""
    p = argparse.ArgumentParser(prog="python -m spinn_utils.predict", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="an exported .onnx file (its .json sidecar beside it)")
    p.add_argument("--csv", required=True, help="rows of raw features, one column per model input")
    p.add_argument("--output", required=True, help="where to write the predictions CSV (- for standard output)")
    for name, what in (("group", "experiment"), ("time", "time"), ("run", "run")):
        p.add_argument(f"--{name}-col", default=None,
                       help=f"hard-physics models: the {what} column (default: the one the model was trained with)")
    p.add_argument("--threads", type=int, default=usable_cores(),
                   help="ONNX Runtime intra-op threads, at most the cores here (default: all, %(default)s)")
    args = p.parse_args(argv)
    threads, cores = args.threads, usable_cores()
    try:
        if threads < 1:
            raise SpinnError(f"--threads must be at least 1, got {threads}")
        if threads > cores:
            print(f"predict: note: --threads {threads} is more than the {cores} core(s) here; using {cores}",
                  file=sys.stderr)
            threads = cores
        inputs = (args.model, str(sidecar_path(args.model)))
        kind, _ = output_target(args.output, [args.csv, *inputs])  # refused before the model loads
        predictor = OnnxPredictor(args.model)
        columns = {"group_col": args.group_col, "time_col": args.time_col, "run_col": args.run_col}
        rows, flagged = predict_csv(predictor, args.csv, args.output, threads, inputs=inputs,
                                    columns=columns)
    except BrokenPipeError:  # the reader stopped early (``| head``): stop quietly, as a shell's tools do
        with contextlib.suppress(OSError, ValueError):  # and no second error from the flush at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except (SpinnError, OSError) as err:
        print(f"predict: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    if flagged:
        print(f"predict: warning: {flagged} of {rows} rows have inputs beyond the training range by more than "
              f"{RANGE_FACTOR:g}x its width (see the 'warning' column): those predictions are extrapolations",
              file=sys.stderr)
    print(f"wrote {rows} predictions of {predictor.target_names} to {args.output}",
          file=sys.stderr if kind == "stdout" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
