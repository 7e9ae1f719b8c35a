"""The records of notebooks 06-09's metrics JSONs: benchmarks, the test evaluation and the
validation checklist (01-05.5 and the shared parts: ``results_schema.py``)."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_serializer

from .results_schema import Blob, ParamCount, Record, RegressionReport, Versioned, skippable


# 06, 07: gpu_benchmark.json, cpu_benchmark.json -----------------------------------------
class BenchVariant(Record):
    """What one timed variant stores and computes, and whether it reproduces its reference."""

    format: str
    dtype: str
    storage_bytes: int  # weight storage, values + indices + offsets
    flops: int
    flops_nonzero: int
    params: ParamCount
    reference: str  # the variant its outputs are compared with
    source: str
    outputs_match: bool
    max_abs_diff: float | None
    atol: float
    n: int
    flops_ratio_vs_dense: float | None
    notes: Blob | None = None  # ONNX Runtime variants: runtime settings


class TimingRow(Record):
    """One variant timed at one (threads, batch): milliseconds per call."""

    device: str
    threads: int | None
    batch_size: int
    variant: str
    dtype: str
    median_ms: float
    iqr_ms: float
    q1_ms: float
    q3_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    repeats: int
    speedup_vs_dense: float | None  # median over rotations of median(dense) / median(variant) in one; null without dense
    speedup_iqr: float | None  # interquartile range of the per-rotation speedups
    rotations: int  # rotations this point ran; repeats counts the timed calls over all of them
    gflops_per_s: float | None  # useful FLOPs (flops_nonzero x batch) / median time
    pct_of_gemm_peak: float | None  # gflops_per_s as a share of the GEMM rate at these threads


class TimingFailure(Record):
    threads: int | None
    batch_size: int
    variant: str
    error: str


class FastestRow(Record):
    """The fastest variant whose outputs matched, at one (threads, batch)."""

    device: str | None
    threads: int | None
    batch_size: int
    variant: str
    median_ms: float
    speedup_vs_dense: float | None
    beats_dense: bool


class GemmPeak(Record):
    """The sustained fp32 GEMM rate (``torch.mm``, n x n x n) at one thread count."""

    threads: int | None
    n: int
    repeats: int
    median_ms: float
    gflops_per_s: float  # at the median call: the sustained rate
    best_gflops_per_s: float
    where: str


class WorkerProcess(Record):
    variants: list[str]
    imported: dict[str, bool]  # "torch" / "onnxruntime" -> imported in that process


class LoadAverage(Record):
    before: float | None
    after: float | None


class Environment(Record):
    """What a number was measured on (``core.env.environment_info``); every results JSON carries
    one, typed here where readers name the machine."""

    torch_version: str
    python_version: str
    platform: str
    cpu_model: str
    cpu_capability: str | None = None  # the kernel level torch dispatches to (AVX2, AVX512, ...)
    cpu_flags: list[str] | None = None  # SIMD flags: AVX2, AVX-512, VNNI, AMX ([] off Linux)
    cpu_count: int | None
    torch_threads: int
    cuda_available: bool
    device: str | None  # the stage's torch device; null: it uses none
    gpu_name: str | None = None  # on CUDA only, like gpu_capability and cuda_version
    gpu_capability: str | None = None
    cuda_version: str | None = None
    device_name: str  # gpu_name on CUDA, else cpu_model

    @model_serializer(mode="wrap")
    def _unset_keys_absent(self, dump) -> dict:
        """An optional key left at None is absent (no GPU keys off CUDA) wherever it is dumped."""
        fields = type(self).model_fields
        return {k: v for k, v in dump(self).items() if v is not None or fields[k].is_required()}


class Benchmark(Versioned):
    """A benchmark that ran (``skipped`` is false)."""

    SCHEMA_VERSION: ClassVar[int] = 3  # 3: one timing regime, speedups taken within rotations
    skipped: bool
    device: str
    timer: str
    float32_matmul_precision: str
    config: Blob  # BenchConfig
    threads: list[int | None]
    batch_sizes: list[int]
    variants: dict[str, BenchVariant]
    skipped_variants: dict[str, str]  # variant -> why it was not timed here (cannot run, or outputs differ)
    results: list[TimingRow]
    failures: list[TimingFailure]  # variants whose kernel raised at some point: not timed
    fastest: list[FastestRow]
    processes: dict[str, WorkerProcess] | None  # per worker ("torch_worker", "ort_worker/<variant>"); null: all in this process (CUDA)
    gemm_peak: list[GemmPeak]  # the sustained fp32 GEMM rate per thread count (benchmark/peak.py)
    flops_basis: str  # what gflops_per_s counts
    seconds: float
    load_average_1min: LoadAverage
    environment: Environment


class BenchmarkSkipped(Versioned):
    """A benchmark skipped by design (no CUDA GPU, or a CPU device asked of notebook 06)."""

    SCHEMA_VERSION: ClassVar[int] = 3  # the same file as Benchmark: the same version
    skipped: bool
    reason: str
    device: str
    environment: Environment


BenchmarkResult = skippable(Benchmark, BenchmarkSkipped)


# 08: test_evaluation.json ---------------------------------------------------------------
class SparseMatch(Record):
    """COO vs masked predictions on the test split (scaled outputs)."""

    max_abs_diff: float | None
    mean_abs_diff: float | None
    atol: float
    passed: bool
    n: int
    units: str


class FoldStats(Record):
    """Statistics of one number over folds or seeds; ``values`` in fold/seed order."""

    mean: float | None
    std: float | None
    sem: float | None
    n: int
    values: list[float | None]


class OutputFoldStats(Record):
    r2: FoldStats


class ModelFoldStats(Record):
    mean_r2: FoldStats
    per_output: dict[str, OutputFoldStats]


class Difference(Record):
    """SPINN - dense, paired per fold (or seed)."""

    mean_r2: FoldStats


class RunScores(Record):
    """Dense and SPINN trained from scratch on one split, scored on its test experiments."""

    test_experiments: list[Any]
    val_experiments: list[Any]
    rows: dict[str, int]  # by split
    dense: RegressionReport
    spinn: RegressionReport
    dense_best_epoch: int
    spinn_sparsity: float
    seconds: float


class FoldResult(RunScores):
    """One leave-experiments-out fold."""

    fold: int


class SeedRun(RunScores):
    """One seed on the fixed split."""

    seed: int


class CrossValidation(Record):
    n_folds: int
    folds: list[FoldResult]
    schedule: Blob
    dense: ModelFoldStats
    spinn: ModelFoldStats
    difference: Difference
    seconds: float


class SeedRuns(Record):
    runs: list[SeedRun]
    schedule: Blob
    dense: ModelFoldStats
    spinn: ModelFoldStats
    difference: Difference
    seconds: float


class NoPhysicsRun(Record):
    best_epoch: int
    epochs_run: int
    seconds: float


class Baselines(Record):
    models: dict[str, RegressionReport]  # train_mean | linear | physics_only | no_physics | soft/hard_physics
    split: str
    no_physics: NoPhysicsRun
    config: Blob  # BaselineConfig
    soft_physics: NoPhysicsRun | None = None  # trained when the run's model has hard physics
    hard_physics: NoPhysicsRun | None = None  # trained when the run's model has soft physics


class ModelPhysics(Record):
    wear_decrease_fraction: float | None  # share of consecutive test steps where wear drops
    thermal_ode_residual_rms_um: float | None  # null where the data cannot support the ODE


class PhysicsConsistency(Record):
    models: dict[str, ModelPhysics]
    wear_drop_tol_mm: float
    split: str
    measured: ModelPhysics | None = None  # the measured targets under the same rules (their noise floor)


class TestEvaluation(Versioned):
    __test__ = False  # not a pytest test class
    split: str
    test_experiments: list[Any]
    models: dict[str, RegressionReport]  # by variant, Table 1's order
    sparse_vs_masked: SparseMatch | None
    cross_validation: skippable(CrossValidation)
    seed_runs: skippable(SeedRuns)
    baselines: skippable(Baselines)
    physics_consistency: skippable(PhysicsConsistency)
    checkpoints: dict[str, str]
    config: Blob  # CrossValConfig
    units: dict[str, str]  # target -> unit
    environment: Blob
    physics: str = "soft"  # the run's models: physics in the loss ("soft") or by construction ("hard")


# 09: validation_checklist.json ----------------------------------------------------------
class ChecklistItem(Record):
    item: str
    status: str  # "pass" | "fail" | "not run"
    measured: Any
    threshold: str
    detail: str


class Claim(Record):
    claim: str
    verdict: str  # "supported" | "not supported" | "not measured"
    evidence: str


class ValidationChecklist(Versioned):
    items: list[ChecklistItem]
    claims: list[Claim]
    config: Blob  # ReportConfig
    environment: Blob
