"""A run's results, read back: the JSONs of notebooks 01-08 through their schema, and small readers.

Table 1, the checklist and the figures read every number through these; a file not written yet
(or a step skipped by design) reads as None / "not measured", a file that does not fit its schema
is an error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.overrides import Count, StageConfig
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, ORT_VARIANTS, UNSTRUCTURED_VARIANTS, VARIANTS, names
from ..core.results_files import read_result
from ..core.results_schema import (
    Artifacts,
    DataSummary,
    DenseTraining,
    ModelVerification,
    ParamCount,
    Pruning,
    Skipped,
    SparseConversion,
)
from ..core.results_schema_eval import (
    Benchmark,
    BenchmarkSkipped,
    ChecklistItem,
    FoldStats,
    TestEvaluation,
    TimingRow,
)

NOT_MEASURED = "not measured"
# Every metrics JSON written before the checklist (notebooks 01-08), by name.
METRIC_FILES = tuple(n for n in names(METRICS) if n != METRICS.validation_checklist)
BENCHMARKS = {"gpu": METRICS.gpu_benchmark, "cpu": METRICS.cpu_benchmark}


class ReportConfig(StageConfig):
    """What Table 1 reads and the thresholds the checklist and claims are judged against."""

    batch_size: Count = 1000  # the original design's Table 1 batch; the nearest measured batch if absent
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
    edge_threads: Count = 1  # edge devices have few cores: judge the edge claim single-threaded
    physics_margin: float = 0.01  # SPINN may break wear monotonicity at most 1 point more often than dense
    max_int8_r2_drop: float = 0.01  # int8 is the recommended deploy model only within this of fp32

    @classmethod
    def smoke_test(cls) -> ReportConfig:
        """Same thresholds: they are the original design's, not a size; smoke benchmarks pick their batch."""
        return cls()


@dataclass(frozen=True)
class RunResults:
    """Every metrics JSON of a run written before the checklist, as its schema record
    (``core/results_schema*.py``); a file not written (yet) is None."""

    data_summary: DataSummary | None = None
    dense_training: DenseTraining | None = None
    pruning: Pruning | None = None
    artifacts: Artifacts | None = None
    model_verification: ModelVerification | None = None
    sparse_conversion_report: SparseConversion | None = None
    gpu_benchmark: Benchmark | BenchmarkSkipped | None = None
    cpu_benchmark: Benchmark | BenchmarkSkipped | None = None
    test_evaluation: TestEvaluation | None = None

    def benchmark(self, device: str) -> Benchmark | BenchmarkSkipped | None:
        """The "gpu" or "cpu" benchmark record."""
        return getattr(self, BENCHMARKS[device])


def load_results(paths: ResultsPaths) -> RunResults:
    """Every metrics JSON of a run (``METRIC_FILES``) read through its schema; a file not
    written (yet) is None, a file that does not fit its schema is a one-line SpinnError."""
    return RunResults(**{name: read_result(paths, name) if paths.metric(name).is_file() else None
                         for name in METRIC_FILES})


def leakage_failure(results: RunResults) -> str | None:
    """One line when the run's data failed the leakage check and the run went on anyway
    (``fail_on_leakage: false``): its accuracy may come from the leak. None when it passed or
    notebook 01's summary is absent."""
    summary = results.data_summary
    if summary is None or summary.leakage.passed:
        return None
    problems = summary.leakage.problems
    first = problems[0] if problems else "see data_summary.json"
    return (f"WARNING: the data FAILED the leakage check ({len(problems)} failed check(s); first: {first}). "
            "The run went on because fail_on_leakage is false: every accuracy number here may come from "
            "the leak, not from learning.")


def check_item(item: str, status: str, measured, threshold: str, detail: str = "") -> ChecklistItem:
    """One row of the validation checklist."""
    return ChecklistItem(item=item, status=status, measured=measured, threshold=threshold, detail=detail)


def judge(value, ok: bool) -> str:
    """"not run" where nothing was measured, else "pass" or "fail"."""
    return "not run" if value is None else ("pass" if ok else "fail")


def leakage_item(results: RunResults) -> ChecklistItem:
    """The checklist's item on notebook 01's leakage checks: a run that went on after a failure
    (``fail_on_leakage: false``) fails it, so no verdict of the checklist reads as clean."""
    leak = None if results.data_summary is None else results.data_summary.leakage
    return ChecklistItem(
        item="Data passed the leakage check (no target or test experiment leaks into the inputs)",
        status="not run" if leak is None else ("pass" if leak.passed else "fail"),
        measured=None if leak is None else f"{sum(c.passed for c in leak.checks)}/{len(leak.checks)} checks passed",
        threshold="every leakage check passes",
        detail=leakage_failure(results) or ("" if leak else f"no {METRICS.data_summary}.json"))


def bench_measured(bench) -> bool:
    """True when a benchmark record holds timings (not skipped, not missing)."""
    return isinstance(bench, Benchmark) and bool(bench.results)


def skip_reason(bench, device: str) -> str:
    """Why a benchmark holds no timings: its recorded reason, or that its file was not written."""
    if isinstance(bench, BenchmarkSkipped):
        return bench.reason
    return f"{BENCHMARKS[device]}.json not written" if bench is None else "no timing rows"


def bench_point(bench: Benchmark, batch_size: int, threads: int | None = None) -> tuple[int, int | None]:
    """(batch, threads) to read: ``batch_size`` or the nearest measured; ``threads`` or the most."""
    rows = bench.results
    batches = sorted({int(r.batch_size) for r in rows})
    batch = min(batches, key=lambda b: (abs(math.log(b / batch_size)), -b))
    measured = sorted({r.threads for r in rows if r.batch_size == batch} - {None})
    if threads is None or threads not in measured:
        threads = measured[-1] if measured else None
    return batch, threads


def timing(bench: Benchmark, variant: str, batch: int, threads: int | None) -> TimingRow | None:
    """The results row of one variant at one (batch, threads), or None if not timed."""
    return next((row for row in bench.results
                 if (row.variant, row.batch_size, row.threads) == (variant, batch, threads)), None)


def outputs_match(bench: Benchmark, variant: str) -> bool | None:
    """Whether a timed variant reproduced its reference; None where it was not built."""
    info = bench.variants.get(variant)
    return None if info is None else info.outputs_match


def fastest_matching(
    bench: Benchmark, batch: int, threads: int | None, names: tuple[str, ...] = UNSTRUCTURED_VARIANTS
) -> TimingRow | None:
    """The quickest of ``names`` whose outputs matched its reference (a wrong answer is no win)."""
    rows = [timing(bench, v, batch, threads) for v in names if outputs_match(bench, v)]
    return min((r for r in rows if r), key=lambda r: r.median_ms, default=None)


def model_params(results: RunResults, variant: str) -> ParamCount | None:
    """Parameter counts of one saved variant, from notebook 05 (COO: from 05.5; an ONNX
    export: from the model it was exported from)."""
    if variant == VARIANTS.coo:
        conv = results.sparse_conversion_report
        return None if conv is None else conv.params
    variant = ORT_VARIANTS.get(variant, variant)
    verified = results.model_verification
    entry = None if verified is None else verified.models.get(variant)
    return None if entry is None else entry.params


def weight_bytes(results: RunResults, variant: str) -> int | None:
    """Weight storage of a benchmark variant (values + indices + offsets), CPU JSON first."""
    for bench in (results.cpu_benchmark, results.gpu_benchmark):
        if isinstance(bench, Benchmark) and variant in bench.variants:
            return bench.variants[variant].storage_bytes
    fmt = {VARIANTS.dense: "dense", VARIANTS.coo: "coo", VARIANTS.csr: "csr"}.get(variant)
    conv = results.sparse_conversion_report
    return conv.storage_bytes.get(fmt) if fmt and conv is not None else None


def ran(block):
    """A part of notebook 08's record, or None where it was skipped by design (with its reason)."""
    return None if isinstance(block, Skipped) else block


def evaluation_part(results: RunResults, part: str):
    """Notebook 08's ``part`` ("cross_validation", "seed_runs", "physics_consistency", "baselines"):
    None where 08 has not run or the part was skipped by design (``run_cv=False``)."""
    return None if results.test_evaluation is None else ran(getattr(results.test_evaluation, part))


def cv_summary(results: RunResults, model: str, over: str = "cross_validation") -> FoldStats | None:
    """Statistics (mean, std, ...) of the mean per-output R2 of "dense" or "spinn" over the CV
    folds (``over="cross_validation"``) or over the seeds on the fixed split (``"seed_runs"``)."""
    block = evaluation_part(results, over)
    return None if block is None else getattr(block, model).mean_r2
