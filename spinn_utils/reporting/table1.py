"""Cell 9's Table 1, read only from a run's results (Markdown, LaTeX and CSV).

The rows of the original design's Table 1 (docs/original_design.md), Dense PINN vs SPINN timed as
COO, as its fastest matching representation and structured; latency at batch 1000, all threads;
memory counts every index and offset byte (docs/benchmarking.md). Its notes name the deployable
model to ship: int8 only within ``max_int8_r2_drop`` of the fp32 export's test R2 and faster.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ..core.io import atomic_path
from ..core.paths import ResultsPaths
from ..core.registry import DEPLOYABLE_VARIANTS, LABELS, METRICS, TABLE1, TABLE_FORMATS, VARIANTS
from ..core.results_files import require_keys
from ..core.results_schema import RegressionReport
from ..core.results_schema_eval import Benchmark, TimingRow
from ..data.schema import TARGETS
from ..model.physics import TERMS
from .results import (
    NOT_MEASURED,
    ReportConfig,
    RunResults,
    bench_measured,
    bench_point,
    cv_summary,
    evaluation_part,
    fastest_matching,
    leakage_failure,
    load_results,
    model_params,
    skip_reason,
    timing,
    weight_bytes,
)

FASTEST_UNSTRUCTURED = "SPINN (fastest unstructured)"
LEAKAGE_ROW = "Data leakage check"  # the first row of a table whose data failed it (mark_leakage)
# Which saved model each column's accuracy and parameters come from, and which benchmark variant
# it times; the masked weights' column times the fastest matching unstructured variant (None).
COLUMN_MODEL = {FASTEST_UNSTRUCTURED if v == VARIANTS.masked else LABELS[v]: v for v in (
    VARIANTS.dense, VARIANTS.coo, VARIANTS.masked, VARIANTS.structured, *DEPLOYABLE_VARIANTS)}
COLUMNS = tuple(COLUMN_MODEL)
COLUMN_VARIANT = {col: None if v == VARIANTS.masked else v for col, v in COLUMN_MODEL.items()}
ROWS = (  # (label, how to format it)
    ("Parameters (non-zero)", "count"),
    ("Mean per-output R2 (test)", "r2"),
    ("Tool wear R2 (test)", "r2"),
    ("Thermal R2 (test)", "r2"),
    ("Mean per-output R2, CV mean", "r2"),
    ("Mean per-output R2, CV std", "r2"),
    ("Mean per-output R2, seeds mean", "r2"),
    ("Mean per-output R2, seeds std", "r2"),
    ("Wear decreases (share of test steps)", "share"),
    ("Thermal ODE residual RMS (um)", "float"),
    ("GPU inference (ms)", "ms"),
    ("GPU speedup vs dense", "speedup"),
    ("CPU inference (ms)", "ms"),
    ("CPU speedup vs dense", "speedup"),
    ("CPU GFLOP/s (% of fp32 GEMM rate)", "rate"),
    ("Memory (weight bytes, indices counted)", "bytes"),
    ("Representation timed", "text"),
)
ROW_FORMAT = dict(ROWS)
SOURCES = {  # where each row is read from; rows not listed come from test_evaluation.json
    "Parameters (non-zero)": f"{METRICS.model_verification}.json, {METRICS.sparse_conversion}.json",
    "GPU inference (ms)": f"{METRICS.gpu_benchmark}.json",
    "GPU speedup vs dense": f"{METRICS.gpu_benchmark}.json",
    "CPU inference (ms)": f"{METRICS.cpu_benchmark}.json",
    "CPU speedup vs dense": f"{METRICS.cpu_benchmark}.json",
    "CPU GFLOP/s (% of fp32 GEMM rate)": f"{METRICS.cpu_benchmark}.json",
    "Memory (weight bytes, indices counted)":
        f"{METRICS.cpu_benchmark}.json, {METRICS.sparse_conversion}.json",
    "Representation timed": f"{METRICS.cpu_benchmark}.json, {METRICS.gpu_benchmark}.json",
}
NOTES = (
    "R2 is per output on the test experiments; 'Mean per-output R2' averages them "
    "(never a pooled R2). CV: leave-experiments-out folds, dense vs unstructured SPINN. Seeds: "
    "dense and SPINN re-trained from scratch with several seeds on the fixed split (CV's schedule).",
    "SPINN (fastest unstructured): the quickest of masked dense / COO / CSR storage of the "
    "same pruned weights whose outputs matched; its accuracy rows are the masked model's.",
    "Memory: bytes of weight storage of the representation timed on CPU "
    "(values + indices + offsets; 1 MB = 1e6 bytes).",
    "Wear decreases: share of consecutive test predictions within an experiment, in time order, "
    "where predicted wear drops by more than 0.001 mm (0 is physical); the thermal ODE residual is "
    "tau*d(delta)/dt + delta - G*P on the test inputs. COO has the masked weights' values, the "
    "ONNX export the structured model's; Table 2 has the baselines.",
    "SPINN structured (ONNX Runtime): the structured model exported to ONNX with the scaler "
    "folded in (raw features in, physical units out), run by ONNX Runtime's CPU provider; "
    "its speedup is against dense PyTorch eager. GPU: not timed (CPU provider only). The int8 "
    "column is that export quantized by ONNX Runtime (hidden layers int8, first and last fp32; "
    "the export's sidecar says whether static or dynamic quantization was kept and why); its "
    "memory is the bytes of the graph's weights.",
    "CPU GFLOP/s: useful FLOPs per call (2 per non-zero weight + 1 per bias, x batch) over the median "
    "time; the percentage is of the sustained fp32 rate of one large matmul on the same threads "
    "(the machine's limit for fp32 dense work; int8 kernels can pass it).",
)


def _latency_cells(results: RunResults, device: str, cfg: ReportConfig
                   ) -> tuple[dict[str, TimingRow], str]:
    """Per column, the timing row at Table 1's point; and a note on the conditions."""
    bench = results.benchmark(device)
    if not bench_measured(bench):
        return {}, f"{device.upper()}: {NOT_MEASURED} ({skip_reason(bench, device)})."
    batch, threads = bench_point(bench, cfg.batch_size)
    rows = {col: timing(bench, v, batch, threads) if v else fastest_matching(bench, batch, threads)
            for col, v in COLUMN_VARIANT.items()}
    rows = {col: row for col, row in rows.items() if row is not None}
    where = bench.environment.device_name
    first = next(iter(rows.values()), None)
    note = (f"{device.upper()}: median of {first.repeats if first else '?'} timed calls in "
            f"{first.rotations if first else '?'} rotations, speedup the median of the per-rotation "
            f"speedups, at batch {batch}, threads={threads}, on {where or 'unknown hardware'}"
            f"{'' if batch == cfg.batch_size else f' (batch {cfg.batch_size} not measured)'}.")
    return rows, note


def _rate_cell(row: TimingRow | None) -> str | None:
    """'12.3 GFLOP/s (6%)' from a timing row; None where it was not measured."""
    if row is None or row.gflops_per_s is None:
        return None
    pct = row.pct_of_gemm_peak
    return f"{row.gflops_per_s:.3g} GFLOP/s" + (f" ({pct:.0f}%)" if pct is not None else "")


def _gemm_notes(results: RunResults) -> list[str]:
    """The GEMM rate behind the percentages, where it was measured."""
    bench = results.cpu_benchmark
    peaks = bench.gemm_peak if isinstance(bench, Benchmark) else []
    rates = ", ".join(f"{p.gflops_per_s:.0f} GFLOP/s on {p.threads} thread(s)" for p in peaks)
    return [f"fp32 GEMM rate (sustained, one n={peaks[0].n} matmul): {rates}."] if peaks else []


class DeployChoice(NamedTuple):
    recommended: str | None  # None: the fp32 deployable model was not scored
    reason: str


def recommend_deploy(fp32: RegressionReport | None, int8: RegressionReport | None, max_r2_drop: float,
                     fp32_ms: float | None = None, int8_ms: float | None = None) -> DeployChoice:
    """The rule on the test split's scores and, where timed, the median CPU ms at one point."""
    if fp32 is None:
        return DeployChoice(None, "the fp32 deployable model was not scored")
    if int8 is None:
        return DeployChoice(VARIANTS.structured_ort, "no int8 model was scored")
    drop = fp32.mean_r2 - int8.mean_r2
    fp32_only, within = VARIANTS.structured_ort, f"{drop:.4f} <= {max_r2_drop}"
    if drop > max_r2_drop + 1e-12:  # "<= 0.01" must hold for 0.85 - 0.84 in binary floating point too
        return DeployChoice(fp32_only, "int8 not recommended: mean per-output R2 drops by "
                                       f"{drop:.4f} > {max_r2_drop}")
    if fp32_ms is not None and int8_ms is not None and int8_ms >= fp32_ms:
        return DeployChoice(fp32_only, f"int8 not recommended: R2 drop {within}, but it is not "
                                       f"faster ({int8_ms:.3g} ms vs fp32 {fp32_ms:.3g} ms)")
    speed = f", {fp32_ms / int8_ms:.2f}x faster than fp32" if fp32_ms and int8_ms else ""
    return DeployChoice(VARIANTS.structured_int8_ort,
                        f"int8 recommended: mean per-output R2 drops by {within}{speed}")


def deploy_note(results: RunResults, cfg: ReportConfig) -> str:
    """Table 1's note: ``recommend_deploy`` on the run's test scores and CPU timings there."""
    models = {} if results.test_evaluation is None else results.test_evaluation.models
    bench = results.cpu_benchmark
    fp32_ms = int8_ms = None
    where = "not timed"
    if bench_measured(bench):
        batch, threads = bench_point(bench, cfg.batch_size)
        fp32_ms, int8_ms = (None if (row := timing(bench, v, batch, threads)) is None else row.median_ms
                            for v in (VARIANTS.structured_ort, VARIANTS.structured_int8_ort))
        where = f"CPU batch {batch}, threads={threads}"
    rec = recommend_deploy(models.get(VARIANTS.structured_ort), models.get(VARIANTS.structured_int8_ort),
                           cfg.max_int8_r2_drop, fp32_ms, int8_ms)
    return f"Deploy: {rec.recommended or NOT_MEASURED} ({rec.reason}; {where})."


def physics_note(results: RunResults) -> str:
    """Which physics terms the dense model was trained with, and why any was off (from 01 and 02)."""
    if results.dense_training is None:
        return f"Physics terms: {NOT_MEASURED} (no {METRICS.dense_training}.json)."
    weights = results.dense_training.physics_config  # PhysicsConfig: one "<term>_weight" per term
    require_keys(METRICS.dense_training, weights, [f"{t}_weight" for t in TERMS], "physics_config")
    summary = results.data_summary
    support = summary.physics.terms if summary is not None and summary.physics is not None else {}
    on = [f"{t} (weight {weights[f'{t}_weight']:g})" for t in TERMS if weights.get(f"{t}_weight")]
    off = [f"{t} ({support[t].reason if t in support else 'weight 0'})" for t in TERMS
           if not weights.get(f"{t}_weight")]
    return f"Physics terms in training: on: {', '.join(on) or 'none'}; off: {'; '.join(off) or 'none'}."


def _accuracy_cells(results: RunResults, cells: dict) -> None:
    """Parameters, test R2 and CV rows of every column, into ``cells[label][column]``."""
    test = {} if results.test_evaluation is None else results.test_evaluation.models
    consistency = evaluation_part(results, "physics_consistency")
    for col in COLUMNS:
        params = model_params(results, COLUMN_MODEL[col])
        if params is None and COLUMN_MODEL[col] == VARIANTS.coo:
            params = model_params(results, VARIANTS.masked)  # the same non-zero weights
        cells["Parameters (non-zero)"][col] = None if params is None else params.nonzero
        metrics = test.get(COLUMN_MODEL[col])
        # Targets in data order, [wear, thermal]: a user's CSV may name them its own way.
        wear, thermal = (list(metrics.per_output) if metrics else list(TARGETS))[:2]
        if metrics is not None:
            cells["Mean per-output R2 (test)"][col] = metrics.mean_r2
            cells["Tool wear R2 (test)"][col] = metrics.per_output[wear].r2
            cells["Thermal R2 (test)"][col] = metrics.per_output[thermal].r2
        # Physics consistency: COO holds the masked weights; the ONNX export is the structured model.
        same = {VARIANTS.coo: VARIANTS.masked, VARIANTS.structured_ort: VARIANTS.structured}
        physics = None if consistency is None else consistency.models.get(same.get(COLUMN_MODEL[col], COLUMN_MODEL[col]))
        if physics is not None:
            cells["Wear decreases (share of test steps)"][col] = physics.wear_decrease_fraction
            cells["Thermal ODE residual RMS (um)"][col] = physics.thermal_ode_residual_rms_um
        # CV and the seed runs compare dense with unstructured IMP only.
        for over, label in (("cross_validation", "CV"), ("seed_runs", "seeds")):
            stats = None if COLUMN_MODEL[col] in (VARIANTS.structured, *DEPLOYABLE_VARIANTS) else cv_summary(
                results, "dense" if COLUMN_MODEL[col] == VARIANTS.dense else "spinn", over)
            cells[f"Mean per-output R2, {label} mean"][col] = None if stats is None else stats.mean
            cells[f"Mean per-output R2, {label} std"][col] = None if stats is None else stats.std


def _speed_cells(results: RunResults, cells: dict, cfg: ReportConfig) -> list[str]:
    """Latency, speedup, rate, memory and "timed as" rows into ``cells``; returns the notes."""
    notes, timed = [], {col: [] for col in COLUMNS}
    for device in ("gpu", "cpu"):
        rows, note = _latency_cells(results, device, cfg)
        notes.append(note)
        for col in COLUMNS:
            row = rows.get(col)
            cells[f"{device.upper()} inference (ms)"][col] = None if row is None else row.median_ms
            cells[f"{device.upper()} speedup vs dense"][col] = None if row is None else row.speedup_vs_dense
            timed[col].append(f"{device.upper()}: {NOT_MEASURED if row is None else row.variant}")
    for col in COLUMNS:  # the rate and memory of the representation timed on CPU (the loop's last)
        row = rows.get(col)
        cells["CPU GFLOP/s (% of fp32 GEMM rate)"][col] = _rate_cell(row)
        variant = row.variant if row else COLUMN_VARIANT[col] or VARIANTS.masked
        cells["Memory (weight bytes, indices counted)"][col] = weight_bytes(results, variant)
        cells["Representation timed"][col] = "; ".join(timed[col])
    return notes


def table1(results: RunResults, cfg: ReportConfig | None = None) -> pd.DataFrame:
    """Table 1 as a DataFrame: rows ``ROWS``, columns ``COLUMNS`` plus "Source".

    Cells hold the JSON values themselves (ints, floats, text) or "not measured";
    ``df.attrs["notes"]`` says at which batch/threads/hardware the latencies were taken.
    """
    cfg = cfg or ReportConfig()
    cells = {label: {} for label, _ in ROWS}
    _accuracy_cells(results, cells)
    notes = _speed_cells(results, cells, cfg)
    frame = pd.DataFrame(
        [[NOT_MEASURED if cells[label].get(col) is None else cells[label][col] for col in COLUMNS]
         + [SOURCES.get(label, f"{METRICS.test_evaluation}.json")] for label, _ in ROWS],
        index=pd.Index([label for label, _ in ROWS], name="Metric"),
        columns=[*COLUMNS, "Source"], dtype=object,
    )
    notes += [*NOTES, *_gemm_notes(results), deploy_note(results, cfg), physics_note(results)]
    frame.attrs.update(notes=notes,
                       row_format=ROW_FORMAT, name=TABLE1,
                       title="Table 1: Dense PINN vs SPINN (this run)")
    return mark_leakage(frame, results)


def mark_leakage(frame: pd.DataFrame, results: RunResults) -> pd.DataFrame:
    """``frame`` as it is, or, when the run's data failed the leakage check, marked in its title,
    its first note and a first row of its own (the CSV form has no title or notes)."""
    warning = leakage_failure(results)
    if warning is None:
        return frame
    cells = [f"{METRICS.data_summary}.json" if c == "Source" else "FAILED (see notes)" for c in frame.columns]
    marked = pd.concat([pd.DataFrame([cells], index=[LEAKAGE_ROW], columns=frame.columns, dtype=object), frame])
    marked.index.name = frame.index.name
    marked.attrs.update(frame.attrs, title=f"{frame.attrs['title']} [DATA FAILED THE LEAKAGE CHECK]",
                        notes=[warning, *frame.attrs["notes"]],
                        row_format={LEAKAGE_ROW: "text", **frame.attrs["row_format"]})
    return marked


def _ms(value: float) -> str:
    """Three significant digits, trailing zeros kept (1.60 ms, 0.668 ms)."""
    decimals = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 2
    return f"{value:.{decimals}f} ms"


CELL_FORMATS = {"count": lambda v: f"{int(v):,}", "r2": "{:.3f}".format, "ms": _ms, "speedup": "{:.2f}x".format,
                "bytes": lambda v: f"{v / 1e6:.2f} MB", "share": lambda v: f"{100 * v:.1f}%", "float": "{:.4g}".format}


def format_cell(value, kind: str) -> str:
    """One Table 1 cell as text: thousands separators, 3-decimal R2, ms, x, MB."""
    if isinstance(value, str) or value is None:
        return value or NOT_MEASURED
    return CELL_FORMATS.get(kind, str)(value)


def table_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A table with every cell formatted for reading (what the .md and .tex show); the row
    formats are ``frame.attrs["row_format"]``, a "Source" column is left out."""
    formats = frame.attrs["row_format"]
    return frame.drop(columns="Source", errors="ignore").apply(
        lambda row: row.map(lambda value: format_cell(value, formats[row.name])), axis=1)


def to_markdown(frame: pd.DataFrame) -> str:
    """GitHub Markdown table (no ``tabulate`` dependency), titled, with the notes underneath."""
    text = table_text(frame)
    header = [frame.attrs.get("index_label", "Metric"), *text.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for label, row in zip(text.index, text.values):
        lines.append("| " + " | ".join([str(label), *map(str, row)]) + " |")
    notes = [f"- {n}" for n in frame.attrs.get("notes", [])]
    return "\n".join([f"**{frame.attrs['title']}**", "", *lines, "", *notes]) + "\n"


def _tex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                       ("#", r"\#"), ("±", r"$\pm$")):
        text = text.replace(char, repl)
    return text


def to_latex(frame: pd.DataFrame) -> str:
    """A booktabs ``table`` environment; the notes go into the caption."""
    text = table_text(frame)
    cols = "l" + "r" * len(text.columns)
    rows = [[frame.attrs.get("index_label", "Metric"), *text.columns]]
    rows += [[label, *row] for label, row in zip(text.index, text.values)]
    body = [" & ".join(_tex_escape(str(c)) for c in row) + r" \\" for row in rows]
    body.insert(1, r"\midrule")
    caption = _tex_escape(f"{frame.attrs['title']}. {' '.join(frame.attrs.get('notes', []))}")
    return "\n".join([
        r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}",
        rf"\label{{tab:{frame.attrs['name']}}}",
        rf"\begin{{tabular}}{{{cols}}}", r"\toprule", *body, r"\bottomrule", r"\end{tabular}",
        r"\end{table}",
    ]) + "\n"


def write_table(frame: pd.DataFrame, paths: ResultsPaths,
                csv: pd.DataFrame | None = None) -> list[Path]:
    """Write ``tables/<name>.{md,tex,csv}`` atomically; the CSV keeps the raw values (``frame``'s,
    or ``csv``'s where the text differs from the numbers)."""
    out = []
    texts = {"md": to_markdown(frame), "tex": to_latex(frame),
             "csv": frame.to_csv() if csv is None else csv.to_csv(index=False)}
    for suffix in TABLE_FORMATS:
        path = paths.table(suffix, frame.attrs["name"])
        with atomic_path(path) as tmp:
            tmp.write_text(texts[suffix])
        out.append(path)
    return out


def build_table1(paths: ResultsPaths, cfg: ReportConfig | None = None) -> pd.DataFrame:
    """Table 1 of the run in ``paths`` (reads only its results JSONs)."""
    return table1(load_results(paths), cfg or ReportConfig())


write_table1 = write_table  # the name notebook 09 calls
