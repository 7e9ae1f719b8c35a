"""Cell 9's numbers: Table 1 and the validation checklist, read only from a run's results.

Nothing here measures or trains: every number comes from the JSONs earlier notebooks wrote
(results/README.md), so ``build_table1(paths)`` and ``build_checklist(paths)`` can be re-run
on any results folder. Table 1 reproduces the rows of the seed's Table 1 (SEED_NOTES.md)
for Dense PINN vs SPINN, with the unstructured SPINN timed both as the seed designed it
(COO) and in its fastest representation whose outputs matched, plus structured SPINN.
Latency is the median at one batch size (1000 as in the seed) with all threads; "Memory" is
weight storage with every index and offset byte counted (BENCHMARKING.md).

``build_checklist(paths)`` is the entry point for the validation checklist and the claims
verdict (pass / fail / not run; supported / not supported / not measured); their rules live
in ``checklist.py``, which builds on the readers here (``load_results``, ``bench_point``,
``fastest_matching``, ...). No GPU means "not run" / "not measured", never "pass".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import ResultsPaths, atomic_path, environment_info, read_json, write_json
from .data import TARGETS

NOT_MEASURED = "not measured"
METRIC_FILES = (
    "data_summary", "dense_training", "pruning", "artifacts", "model_verification",
    "sparse_conversion_report", "cpu_benchmark", "gpu_benchmark", "test_evaluation",
)
UNSTRUCTURED_VARIANTS = ("spinn_masked", "spinn_coo", "spinn_csr")  # same pruned weights
SPARSE_TENSOR_VARIANTS = ("spinn_coo", "spinn_csr", "spinn_semi24")  # torch.sparse layouts
COLUMNS = ("Dense PINN", "SPINN (COO)", "SPINN (fastest unstructured)", "SPINN (structured)")
# Which test_evaluation.json model and which benchmark variant each column reads; None for
# the benchmark means "the fastest matching unstructured variant at that point".
COLUMN_MODEL = dict(zip(COLUMNS, ("dense", "spinn_sparse_coo", "spinn_masked", "spinn_structured")))
COLUMN_VARIANT = dict(zip(COLUMNS, ("dense", "spinn_coo", None, "spinn_structured")))
COLUMN_KIND = dict(zip(COLUMNS, ("dense", "sparse", "pruned", "structured")))
ROWS = (  # (label, how to format it)
    ("Parameters (non-zero)", "count"),
    ("Mean per-output R2 (test)", "r2"),
    ("Tool wear R2 (test)", "r2"),
    ("Thermal R2 (test)", "r2"),
    ("Mean per-output R2, CV mean", "r2"),
    ("Mean per-output R2, CV std", "r2"),
    ("GPU inference (ms)", "ms"),
    ("GPU speedup vs dense", "speedup"),
    ("CPU inference (ms)", "ms"),
    ("CPU speedup vs dense", "speedup"),
    ("Memory (weight bytes, indices counted)", "bytes"),
    ("Representation timed", "text"),
)
ROW_FORMAT = dict(ROWS)


@dataclass(frozen=True)
class ReportConfig:
    """What Table 1 reads and the thresholds the checklist and claims are judged against."""

    batch_size: int = 1000  # the seed's Table 1 batch; the nearest measured batch if absent
    match_atol: float = 1e-4  # seed checklist: sparse predictions match within 1e-4
    gpu_speedup_min: float = 2.0  # seed checklist: "GPU speedup >= 2.0x (target 2.5x)"
    cpu_speedup_min: float = 2.5  # seed checklist: "CPU speedup >= 2.5x (target 3.3x)"
    seed_mean_r2: float = 0.86  # seed checklist: "R2 scores match previous training (0.86)"
    r2_tolerance: float = 0.02  # within this below 0.86 still "matches" (R2 is noisy per split)
    claimed_gpu_speedup: float = 2.5  # the paper text's GPU claim
    claimed_cpu_speedup: float = 3.3  # the paper text's CPU claim
    claimed_dense_r2: float = 0.48  # the paper text: "R2 0.48 -> 0.86"
    claimed_spinn_r2: float = 0.86
    claimed_r2_tolerance: float = 0.05  # how far a measured R2 may sit from a claimed one
    claimed_dense_mb: float = 2.67  # the paper text: "Memory 2.67 MB -> 0.84 MB" (1 MB = 1e6 B)
    claimed_spinn_mb: float = 0.84
    claimed_memory_tolerance: float = 0.05  # relative slack on the claimed SPINN memory
    edge_threads: int = 1  # edge devices have few cores: judge the edge claim single-threaded

    @classmethod
    def smoke_test(cls) -> ReportConfig:
        """Same thresholds: they are the seed's, not a size; smoke benchmarks pick their batch."""
        return cls()


def load_results(paths: ResultsPaths) -> dict:
    """Every metrics JSON of a run by name; a file not written (yet) is None."""
    out = {}
    for name in METRIC_FILES:
        path = paths.metric(name)
        out[name] = read_json(path, name) if path.is_file() else None
    return out


def dig(obj, *keys):
    """``obj[k1][k2]...`` or None where any level is missing (results may be partial)."""
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def bench_measured(bench: dict | None) -> bool:
    """True when a benchmark JSON holds timings (not skipped, not missing)."""
    return bool(bench) and not bench.get("skipped") and bool(bench.get("results"))


def bench_point(bench: dict, batch_size: int, threads: int | None = None) -> tuple[int, int | None]:
    """(batch, threads) to read: ``batch_size`` or the nearest measured; ``threads`` or the most."""
    rows = bench["results"]
    batches = sorted({int(r["batch_size"]) for r in rows})
    batch = min(batches, key=lambda b: (abs(math.log(b / batch_size)), -b))
    measured = sorted({r.get("threads") for r in rows if r["batch_size"] == batch} - {None})
    if threads is None or threads not in measured:
        threads = measured[-1] if measured else None
    return batch, threads


def timing(bench: dict, variant: str, batch: int, threads: int | None) -> dict | None:
    """The results row of one variant at one (batch, threads), or None if not timed."""
    for row in bench.get("results", []):
        if (row["variant"], row["batch_size"], row.get("threads")) == (variant, batch, threads):
            return row
    return None


def fastest_matching(
    bench: dict, batch: int, threads: int | None, names: tuple[str, ...] = UNSTRUCTURED_VARIANTS
) -> dict | None:
    """The quickest of ``names`` whose outputs matched its reference (a wrong answer is no win)."""
    variants = bench.get("variants", {})
    rows = [timing(bench, v, batch, threads) for v in names if dig(variants, v, "outputs_match")]
    return min((r for r in rows if r), key=lambda r: r["median_ms"], default=None)


def model_params(results: dict, kind: str) -> dict | None:
    """``count_parameters`` dict of the model of one checkpoint kind, from the run's JSONs."""
    for entry in (dig(results, "model_verification", "models") or {}).values():
        if entry.get("kind") == kind and entry.get("params"):
            return entry["params"]
    if kind == "sparse":
        return dig(results, "sparse_conversion_report", "params")
    return None


def storage_bytes(results: dict, variant: str) -> int | None:
    """Weight storage of a benchmark variant (values + indices + offsets), CPU JSON first."""
    for name in ("cpu_benchmark", "gpu_benchmark"):
        value = dig(results, name, "variants", variant, "storage_bytes")
        if value is not None:
            return value
    fmt = {"dense": "dense", "spinn_coo": "coo", "spinn_csr": "csr"}.get(variant)
    return dig(results, "sparse_conversion_report", "storage_bytes", fmt) if fmt else None


def cv_summary(results: dict, model: str) -> dict | None:
    """``{"mean", "std", ...}`` of the fold-wise mean per-output R2 for "dense" or "spinn"."""
    return dig(results, "test_evaluation", "cross_validation", model, "mean_r2")


def _latency_cells(results: dict, device: str, cfg: ReportConfig) -> tuple[dict, dict, str]:
    """Per column: the timing row, the variant timed, and a note on the conditions."""
    bench = results.get(f"{device}_benchmark")
    if not bench_measured(bench):
        reason = dig(bench, "reason") or "benchmark JSON not written"
        return {}, {}, f"{device.upper()}: {NOT_MEASURED} ({reason})."
    batch, threads = bench_point(bench, cfg.batch_size)
    rows, names = {}, {}
    for col in COLUMNS:
        row = (timing(bench, COLUMN_VARIANT[col], batch, threads) if COLUMN_VARIANT[col]
               else fastest_matching(bench, batch, threads))
        if row is not None:
            rows[col], names[col] = row, row["variant"]
    env = bench.get("environment", {})
    where = env.get("gpu_name") if device == "gpu" else env.get("cpu_model")
    note = (f"{device.upper()}: median of {next(iter(rows.values()), {}).get('repeats', '?')} "
            f"repeats at batch {batch}, threads={threads}, on {where or 'unknown hardware'}"
            f"{'' if batch == cfg.batch_size else f' (batch {cfg.batch_size} not measured)'}.")
    return rows, names, note


def table1(results: dict, cfg: ReportConfig = ReportConfig()) -> pd.DataFrame:
    """Table 1 as a DataFrame: rows ``ROWS``, columns ``COLUMNS`` plus "Source".

    Cells hold the JSON values themselves (ints, floats, text) or "not measured";
    ``df.attrs["notes"]`` says at which batch/threads/hardware the latencies were taken.
    """
    test = dig(results, "test_evaluation", "models") or {}
    cells = {label: {} for label, _ in ROWS}
    for col in COLUMNS:
        params = model_params(results, COLUMN_KIND[col]) or (
            model_params(results, "pruned") if COLUMN_KIND[col] == "sparse" else None)
        cells["Parameters (non-zero)"][col] = dig(params, "nonzero")
        metrics = test.get(COLUMN_MODEL[col])
        cells["Mean per-output R2 (test)"][col] = dig(metrics, "mean_r2")
        # Targets in data order, [wear, thermal]: a user's CSV may name them its own way.
        wear, thermal = (list(metrics["per_output"]) if metrics else list(TARGETS))[:2]
        cells["Tool wear R2 (test)"][col] = dig(metrics, "per_output", wear, "r2")
        cells["Thermal R2 (test)"][col] = dig(metrics, "per_output", thermal, "r2")
        cv = cv_summary(results, "dense" if col == "Dense PINN" else "spinn")
        if col == "SPINN (structured)":
            cv = None  # CV compares dense with unstructured IMP only
        cells["Mean per-output R2, CV mean"][col] = dig(cv, "mean")
        cells["Mean per-output R2, CV std"][col] = dig(cv, "std")
    notes, timed = [], {col: [] for col in COLUMNS}
    for device in ("gpu", "cpu"):
        rows, names, note = _latency_cells(results, device, cfg)
        notes.append(note)
        for col in COLUMNS:
            row = rows.get(col)
            cells[f"{device.upper()} inference (ms)"][col] = dig(row, "median_ms")
            cells[f"{device.upper()} speedup vs dense"][col] = dig(row, "speedup_vs_dense")
            timed[col].append(f"{device.upper()}: {names.get(col, NOT_MEASURED)}")
    # Memory is that of the representation timed on CPU (the loop ended on "cpu").
    for col in COLUMNS:
        variant = names.get(col) or COLUMN_VARIANT[col] or "spinn_masked"
        cells["Memory (weight bytes, indices counted)"][col] = storage_bytes(results, variant)
        cells["Representation timed"][col] = "; ".join(timed[col])
    sources = {
        "Parameters (non-zero)": "model_verification.json, sparse_conversion_report.json",
        "GPU inference (ms)": "gpu_benchmark.json", "GPU speedup vs dense": "gpu_benchmark.json",
        "CPU inference (ms)": "cpu_benchmark.json", "CPU speedup vs dense": "cpu_benchmark.json",
        "Memory (weight bytes, indices counted)":
            "cpu_benchmark.json, sparse_conversion_report.json",
        "Representation timed": "cpu_benchmark.json, gpu_benchmark.json",
    }
    frame = pd.DataFrame(
        [[NOT_MEASURED if cells[label].get(col) is None else cells[label][col] for col in COLUMNS]
         + [sources.get(label, "test_evaluation.json")] for label, _ in ROWS],
        index=pd.Index([label for label, _ in ROWS], name="Metric"),
        columns=[*COLUMNS, "Source"], dtype=object,
    )
    frame.attrs["notes"] = [
        *notes,
        "R2 is per output on the test experiments; 'Mean per-output R2' averages them "
        "(never a pooled R2). CV: leave-experiments-out folds, dense vs unstructured SPINN.",
        "SPINN (fastest unstructured): the quickest of masked dense / COO / CSR storage of the "
        "same pruned weights whose outputs matched; its accuracy rows are the masked model's.",
        "Memory: bytes of weight storage of the representation timed on CPU "
        "(values + indices + offsets; 1 MB = 1e6 bytes).",
    ]
    return frame


def format_cell(value, kind: str) -> str:
    """One Table 1 cell as text: thousands separators, 3-decimal R2, ms, x, MB."""
    if isinstance(value, str) or value is None:
        return value or NOT_MEASURED
    if kind == "count":
        return f"{int(value):,}"
    if kind == "r2":
        return f"{value:.3f}"
    if kind == "ms":  # three significant digits, trailing zeros kept (1.60 ms, 0.668 ms)
        decimals = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 2
        return f"{value:.{decimals}f} ms"
    if kind == "speedup":
        return f"{value:.2f}x"
    if kind == "bytes":
        return f"{value / 1e6:.2f} MB"
    return str(value)


def table1_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 1 with every cell formatted for reading (what the .md and .tex show)."""
    out = frame.copy()
    for label in out.index:
        for col in COLUMNS:
            out.loc[label, col] = format_cell(frame.loc[label, col], ROW_FORMAT[label])
    return out


def to_markdown(frame: pd.DataFrame) -> str:
    """GitHub Markdown table (no ``tabulate`` dependency) with the notes underneath."""
    text = table1_text(frame).drop(columns="Source")
    header = ["Metric", *text.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for label, row in zip(text.index, text.values):
        lines.append("| " + " | ".join([str(label), *map(str, row)]) + " |")
    notes = [f"- {n}" for n in frame.attrs.get("notes", [])]
    return "\n".join(["**Table 1: Dense PINN vs SPINN (this run)**", "", *lines, "", *notes]) + "\n"


def _tex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                       ("#", r"\#"), ("±", r"$\pm$")):
        text = text.replace(char, repl)
    return text


def to_latex(frame: pd.DataFrame) -> str:
    """A booktabs ``table`` environment; notes go into the caption."""
    text = table1_text(frame).drop(columns="Source")
    cols = "l" + "r" * len(text.columns)
    rows = [["Metric", *text.columns]]
    rows += [[label, *row] for label, row in zip(text.index, text.values)]
    body = [" & ".join(_tex_escape(str(c)) for c in row) + r" \\" for row in rows]
    body.insert(1, r"\midrule")
    notes = " ".join(frame.attrs.get("notes", []))
    caption = _tex_escape(f"Dense PINN vs SPINN, measured in this run. {notes}")
    return "\n".join([
        r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}",
        r"\label{tab:table1}",
        rf"\begin{{tabular}}{{{cols}}}", r"\toprule", *body, r"\bottomrule", r"\end{tabular}",
        r"\end{table}",
    ]) + "\n"


def build_table1(paths: ResultsPaths, cfg: ReportConfig | None = None) -> pd.DataFrame:
    """Table 1 of the run in ``paths`` (reads only its results JSONs)."""
    return table1(load_results(paths), cfg or ReportConfig())


def write_table1(frame: pd.DataFrame, paths: ResultsPaths) -> list[Path]:
    """Write ``tables/table1.{md,tex,csv}`` atomically; the CSV keeps the raw JSON values."""
    out = []
    texts = {"md": to_markdown(frame), "tex": to_latex(frame), "csv": frame.to_csv()}
    for suffix, text in texts.items():
        path = paths.tables / f"table1.{suffix}"
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        out.append(path)
    return out


def build_checklist(paths: ResultsPaths, cfg: ReportConfig | None = None) -> dict:
    """Validation checklist and claims verdict of the run in ``paths`` (reads only its results).

    Returns:
        ``{"items": [{"item", "status", "measured", "threshold", "detail"}],
        "claims": [{"claim", "verdict", "evidence"}], "config"}``
    """
    from .checklist import CONTRACT_FILES, checklist  # local: checklist builds on this module

    missing = [f for f in CONTRACT_FILES if not (paths.root / f).is_file()]
    return checklist(load_results(paths), missing, cfg or ReportConfig())


def write_checklist(check: dict, paths: ResultsPaths, device=None) -> Path:
    """``metrics/validation_checklist.json`` with the environment it was judged in."""
    return write_json(paths.metric("validation_checklist"),
                      {**check, "environment": environment_info(device)})
