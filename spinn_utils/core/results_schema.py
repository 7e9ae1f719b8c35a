"""Frozen pydantic records of every metrics JSON: notebooks 01-05.5 and the shared parts here,
06-09 in ``results_schema_eval.py``. Write and read them with ``results_files``. Blocks no
reader looks into (configs, training history, the environment outside the benchmarks) stay
free-form (``Blob``). docs/results_schema.md is generated from these classes.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Tag

from .io import to_jsonable

RAN, SKIPPED = "(ran)", "(skipped)"  # union tags; an error's key path leaves them out
Blob = Annotated[dict, BeforeValidator(to_jsonable)]  # free-form JSON object; configs become plain dicts


class Record(BaseModel):
    """A part of a results file: frozen, and an unexpected key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Versioned(Record):
    """A whole results file: ``SCHEMA_VERSION`` is written into it and checked on reading.
    Raise it when a change makes files written before unreadable."""

    SCHEMA_VERSION: ClassVar[int] = 1
    RERUN: ClassVar[str] = "write it anew"  # what makes the file anew (a metrics JSON: its notebook)


def _ran_or_skipped(value) -> str:
    skipped = value.get("skipped") if isinstance(value, dict) else getattr(value, "skipped", False)
    return SKIPPED if skipped is True else RAN


def skippable(ran: type, skipped: type | None = None):
    """``ran | skipped`` told apart by ``"skipped": true`` (a step skipped by design)."""
    return Annotated[Annotated[ran, Tag(RAN)] | Annotated[skipped or Skipped, Tag(SKIPPED)],
                     Discriminator(_ran_or_skipped)]


# Shared parts ---------------------------------------------------------------------------
class OutputMetrics(Record):
    """One output's scores in its physical unit (``core.metrics.regression_report``); null: NaN."""

    r2: float | None
    rmse: float | None
    mae: float | None


class RegressionReport(Record):
    """Per-output R2/RMSE/MAE; ``mean_r2`` is their mean R2 (never a pooled R2); ``n`` rows."""

    per_output: dict[str, OutputMetrics]
    mean_r2: float | None
    n: int


class ParamCount(Record):
    total: int
    nonzero: int
    sparsity: float


class CheckRow(Record):
    name: str
    passed: bool
    detail: str


class LayerSparsity(Record):
    """Zeros of one prunable weight matrix."""

    layer: str
    total: int
    nonzero: int
    sparsity: float


class Skipped(Record):
    """A step skipped by design (``run_cv=False``, ``run_baselines=False``), with the reason."""

    skipped: bool
    reason: str


# 01: data_summary.json ------------------------------------------------------------------
class SplitInfo(Record):
    experiments: list[Any]  # experiment ids (numbers, or a CSV's own labels)
    rows: int


class TargetStats(Record):
    mean: float | None
    std: float | None
    min: float | None
    max: float | None


class Leakage(Record):
    """The leakage checks (``data/leakage.py``, ten of them); ``problems`` lists the failures."""

    passed: bool
    problems: list[str]
    checks: list[CheckRow]


class Support(Record):
    """Whether something is supported here (a physics term, 2:4 sparsity), and why or why not."""

    supported: bool
    reason: str | None


class PhysicsSupport(Record):
    """Which physics-loss terms the data supports (``data.prepare.physics_support``) and the
    columns they use."""

    terms: dict[str, Support]
    time_col: str
    wear_target: str
    thermal_target: str
    power_col: str | None
    power_unit: str | None


class StepFalls(Record):
    """Consecutive windows of one experiment in time order: how many steps, how many fall."""

    steps: int
    falls: int  # steps where the value drops by more than the block's wear_drop_tol_mm
    share: float | None  # falls / steps; null: no steps


class TimeOrder(Record):
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
    config: Blob
    generator: Blob | None  # the synthetic generator's settings; null for other sources
    environment: Blob


# 02: dense_training.json ----------------------------------------------------------------
class DenseTraining(Versioned):
    model: Blob  # ModelConfig
    params: ParamCount
    train_config: Blob
    physics_config: Blob  # PhysicsConfig: "<term>_weight" per physics term, columns, thermal model
    history: list[Blob]  # one row per epoch (results/README.md)
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
    environment: Blob


# 03: pruning.json -----------------------------------------------------------------------
class PruneStage(Record):
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


class UnstructuredPruning(Record):
    schedule: list[float]
    stages: list[PruneStage]
    params: ParamCount
    per_layer: list[LayerSparsity]
    val_metrics: RegressionReport
    mask_sha256: str
    seconds: float


class StructuredPruning(Record):
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


class Pruning(Versioned):
    config: Blob  # PruneConfig
    unstructured: UnstructuredPruning
    structured: StructuredPruning
    dense_val_metrics: RegressionReport
    dense_params: ParamCount
    environment: Blob


# 04: artifacts.json ---------------------------------------------------------------------
class ArchivedFile(Record):
    path: str
    bytes: int  # its sha256 is lineage.json's (``Artifacts.sha256_from``), not repeated here


class LeftOut(Record):
    path: str
    reason: str


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
    environment: Blob


# 05: model_verification.json ------------------------------------------------------------
class VerifiedModel(Record):
    path: str
    kind: str
    params: ParamCount
    hidden_dims: list[int]
    val_metrics: RegressionReport


class ModelVerification(Versioned):
    models: dict[str, VerifiedModel]  # by variant: dense | spinn_masked | spinn_structured
    checks: list[CheckRow]
    passed: bool
    environment: Blob


# 05.5: sparse_conversion_report.json ----------------------------------------------------
class ConversionCheck(Record):
    """Sparse vs dense outputs of one format on the validation inputs."""

    max_abs_diff: float | None  # null: NaN (a failed check)
    mean_abs_diff: float | None
    atol: float
    passed: bool
    n: int
    inputs: str | None = None  # what the inputs were (only on the saved format's ``validation``)


class ConvertedLayer(Record):
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
    semi_structured: Support
    config: Blob  # SparseConfig
    created: str
    versions: dict[str, str | None]
    environment: Blob
    validation: ConversionCheck  # the saved format's check, with ``inputs``
    report: str | None = None  # a failed conversion: where this report went
