"""The schema of every metrics JSON a run writes (notebooks 01-05.5 here; 06-09 in
``results_schema_eval.py``): frozen dataclasses, one per file plus the parts readers use.

Producers build these records and write them with ``results_files.write_result``; readers get
them back from ``results_files.read_result``, which refuses a file whose ``schema_version``
differs and names any missing, unexpected or mistyped key (``core/typed_json.py``). Blocks no
reader looks into (``environment``, configs, training history) stay free-form ``dict``. The
reference in docs/results_schema.md is generated from these classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .typed_json import Versioned

# Shared parts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputMetrics:
    """One output's scores in its physical unit (``core.metrics.regression_report``); null: NaN."""

    r2: float | None
    rmse: float | None
    mae: float | None


@dataclass(frozen=True)
class RegressionReport:
    """Per-output R2/RMSE/MAE; ``mean_r2`` is their mean R2 (never a pooled R2); ``n`` rows."""

    per_output: dict[str, OutputMetrics]
    mean_r2: float | None
    n: int


@dataclass(frozen=True)
class ParamCount:
    """``model.counting.count_parameters``: all parameters, the non-zero ones, the zero share."""

    total: int
    nonzero: int
    sparsity: float


@dataclass(frozen=True)
class CheckRow:
    """One check (``core.checks.check_row``)."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class LayerSparsity:
    """Zeros of one prunable weight matrix."""

    layer: str
    total: int
    nonzero: int
    sparsity: float


@dataclass(frozen=True)
class Skipped:
    """A step skipped by design (``run_cv=False``, ``run_baselines=False``), with the reason."""

    SKIP: ClassVar[bool] = True
    skipped: bool
    reason: str


# 01: data_summary.json ------------------------------------------------------------------


@dataclass(frozen=True)
class SplitInfo:
    experiments: list[Any]  # experiment ids (numbers, or a CSV's own labels)
    rows: int


@dataclass(frozen=True)
class TargetStats:
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class Leakage:
    """The leakage checks (``data/leakage.py``, ten of them); ``problems`` lists the failures."""

    passed: bool
    problems: list[str]
    checks: list[CheckRow]


@dataclass(frozen=True)
class TermSupport:
    supported: bool
    reason: str


@dataclass(frozen=True)
class PhysicsSupport:
    """Which physics-loss terms the data supports (``data/physics_terms.py``) and their columns."""

    terms: dict[str, TermSupport]
    time_col: str
    wear_target: str
    thermal_target: str
    power_col: str | None
    power_unit: str | None


@dataclass(frozen=True)
class StepFalls:
    """Consecutive windows of one experiment in time order: how many steps, how many fall."""

    steps: int
    falls: int  # steps where the value drops by more than the block's wear_drop_tol_mm
    share: float | None  # falls / steps; null: no steps


@dataclass(frozen=True)
class TimeOrder:
    """How rows are put in time order within an experiment and cumulative time is built
    (``data/time_order.py``), and how often the measured wear falls in that order."""

    order: list[str]  # sort keys: experiment, [run,] time
    run_col: str  # "": no run order (time must then be strictly increasing within an experiment)
    run_gap_min: float  # cutting minutes added between joined runs
    cumulative_time_col: str  # the column every prepared split carries
    cumulative_time: str  # "as_given" (time already cumulative) | "runs_joined" (time restarts per run)
    cumulative_time_rule: str  # the same in words
    runs_per_experiment: dict[str, int]  # in the prepared splits (after a smoke cap)
    measured_wear_falls: dict[str, StepFalls]  # train | val | test | all: wear never heals, so ~0
    wear_target: str
    wear_drop_tol_mm: float


@dataclass(frozen=True)
class DataSummary(Versioned):
    SCHEMA_VERSION: ClassVar[int] = 2  # 2: time_order
    source: str
    data_path: str
    thermal_source: str
    n_rows: int
    n_experiments: int
    feature_names: list[str]
    target_names: list[str]
    group_col: str
    time_col: str
    splits: dict[str, SplitInfo]  # train | val | test
    target_stats: dict[str, TargetStats]
    leakage: Leakage
    time_order: TimeOrder
    physics: PhysicsSupport | None
    notes: list[str]
    load_seconds: float | None
    config: dict
    generator: dict | None  # the synthetic generator's settings; null for other sources
    environment: dict


# 02: dense_training.json ----------------------------------------------------------------


@dataclass(frozen=True)
class DenseTraining(Versioned):
    model: dict  # ModelConfig
    params: ParamCount
    train_config: dict
    physics_config: dict  # PhysicsConfig: "<term>_weight" per physics term, columns, thermal model
    history: list[dict]  # one row per epoch (results/README.md)
    best_epoch: int
    best_val_loss: float | None
    seconds: float
    stopped_early: bool
    train_rows: int
    val_rows: int
    optimizer_steps: int
    device: str
    epochs_run: int
    val_metrics: RegressionReport
    seed: int
    data_source: str | None
    thermal_source: str | None
    environment: dict


# 03: pruning.json -----------------------------------------------------------------------


@dataclass(frozen=True)
class PruneStage:
    """One stage of iterative magnitude pruning; stage 0 is the dense start (no fine-tuning)."""

    stage: int
    target_sparsity: float
    sparsity: float
    params: ParamCount
    per_layer: list[LayerSparsity]
    val_metrics: RegressionReport
    best_epoch: int | None = None
    best_val_loss: float | None = None
    epochs_run: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class UnstructuredPruning:
    schedule: list[float]
    stages: list[PruneStage]
    params: ParamCount
    per_layer: list[LayerSparsity]
    val_metrics: RegressionReport
    mask_sha256: str
    seconds: float


@dataclass(frozen=True)
class StructuredPruning:
    hidden_dims: list[int]
    params: ParamCount
    target_params: int
    relative_error: float
    within_tolerance: bool
    importance: str
    val_metrics_before_finetune: RegressionReport
    val_metrics: RegressionReport
    best_epoch: int | None
    epochs_run: int
    seconds: float


@dataclass(frozen=True)
class Pruning(Versioned):
    config: dict  # PruneConfig
    unstructured: UnstructuredPruning
    structured: StructuredPruning
    dense_val_metrics: RegressionReport
    dense_params: ParamCount
    environment: dict


# 04: artifacts.json ---------------------------------------------------------------------


@dataclass(frozen=True)
class ArchivedFile:
    path: str
    bytes: int  # its sha256 is lineage.json's (``Artifacts.sha256_from``), not repeated here


@dataclass(frozen=True)
class LeftOut:
    path: str
    reason: str


@dataclass(frozen=True)
class Artifacts(Versioned):
    mode: str  # "archive" (a local zip) or "drive" (a copy on Google Drive)
    destination: str
    archive_sha256: str | None  # the zip's own sha256; None for a Drive folder
    files: list[ArchivedFile]
    sha256_from: str  # "lineage.json": where each archived file's sha256 is recorded
    not_archived: list[LeftOut]  # files no finished notebook recorded, with the reason
    n_files: int
    total_bytes: int
    verified: bool
    problems: list[str]
    created_utc: str
    note: str
    environment: dict


# 05: model_verification.json ------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedModel:
    path: str
    kind: str
    params: ParamCount
    hidden_dims: list[int]
    val_metrics: RegressionReport


@dataclass(frozen=True)
class ModelVerification(Versioned):
    models: dict[str, VerifiedModel]  # by variant: dense | spinn_masked | spinn_structured
    checks: list[CheckRow]
    passed: bool
    environment: dict


# 05.5: sparse_conversion_report.json ----------------------------------------------------


@dataclass(frozen=True)
class ConversionCheck:
    """Sparse vs dense outputs of one format on the validation inputs."""

    max_abs_diff: float | None  # null: NaN (a failed check)
    mean_abs_diff: float | None
    atol: float
    passed: bool
    n: int
    inputs: str | None = None  # what the inputs were (only on the saved format's ``validation``)


@dataclass(frozen=True)
class ConvertedLayer:
    layer: str
    shape: list[int]
    layout: str
    total: int
    nonzero: int
    sparsity: float
    bias: int
    bias_bytes: int
    stored_bytes: int
    bytes: dict[str, int]  # by storage format


@dataclass(frozen=True)
class SemiStructured:
    supported: bool
    reason: str | None


@dataclass(frozen=True)
class SparseConversion(Versioned):
    source: str
    source_kind: str
    checkpoint: str | None  # null when the saved format did not validate
    format: str
    dims: list[int]
    activation: str
    params: ParamCount
    params_sparse: ParamCount
    per_layer: list[ConvertedLayer]
    storage_bytes: dict[str, int]  # by format: dense | coo | csr (values + indices + offsets)
    storage_vs_dense: dict[str, float]
    storage_counts: str
    flops_per_sample: dict[str, int]
    validation_by_format: dict[str, ConversionCheck]
    conversion_ok: bool
    all_formats_passed: bool
    semi_structured: SemiStructured
    config: dict  # SparseConfig
    created: str
    versions: dict[str, str | None]
    environment: dict
    validation: ConversionCheck  # the saved format's check, with ``inputs``
    report: str | None = field(default=None)  # a failed conversion: where this report went
