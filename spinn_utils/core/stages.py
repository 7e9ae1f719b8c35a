"""The stage table: each numbered notebook's configs, parameters (named as the config fields they
set), reads and writes. Lineage, pre-flight, the results contract and the docs' table come from
here; ``tests/test_stages.py`` holds each notebook to its entry."""
from __future__ import annotations

from dataclasses import dataclass

from .paths import (
    DATA_PATHS,
    EXPORT_PATHS,
    FIGURE_PATHS,
    PREDICTIONS_PATH,
    TABLE_PATHS,
    checkpoint_file,
    metric_file,
)
from .registry import DENSE_STORAGE_VARIANTS, METRICS, VARIANTS, names

# Every notebook declares these; the headless driver sets them from its own flags.
DRIVER_PARAMS = ("results_dir", "smoke", "seed")


def _ckpt(*variants: str) -> tuple[str, ...]:
    return tuple(map(checkpoint_file, variants))


def _metric(*stems: str) -> tuple[str, ...]:
    return tuple(map(metric_file, stems))


DENSE_STORAGE = _ckpt(*DENSE_STORAGE_VARIANTS)


@dataclass(frozen=True)
class Stage:
    """One notebook: ``id`` ("05_5"), its file stem, title, configs, parameters, reads, writes."""

    id: str
    notebook: str  # notebooks/<notebook>.ipynb
    title: str
    configs: tuple[str, ...]  # class names of the stage configs it builds (pre-flight checks -p values with them)
    params: tuple[str, ...]  # parameters besides DRIVER_PARAMS, in the notebook's order
    reads: tuple[str, ...]  # paths relative to the results folder
    writes: tuple[str, ...]


_TABLE = (
    Stage("01", "01_data_preprocessing", "Data preprocessing", ("DataConfig",),
          ("data_path", "data_config", "val_experiments", "test_experiments", "group_col", "time_col",
           "feature_cols", "target_cols", "split_col", "power_col", "power_unit", "thermal_ode"),
          (), (*DATA_PATHS, *_metric(METRICS.data_summary))),
    Stage("02", "02_train_dense", "Train the dense PINN", ("ModelConfig", "TrainConfig", "PhysicsConfig"),
          ("device", "physics", "epochs", "batch_size", "lr", "patience", "wear_nonneg_weight", "wear_monotone_weight",
           "thermal_ode_weight", "wear_sequence_weight", "subsample"),
          DATA_PATHS, (*_ckpt(VARIANTS.dense), *_metric(METRICS.dense_training))),
    Stage("03", "03_train_spinn", "Train SPINN (pruning)", ("PruneConfig",),
          ("device", "target_sparsity", "n_stages", "finetune_epochs", "final_finetune_epochs",
           "structured_finetune_epochs", "prune_method"),
          (*DATA_PATHS, *_ckpt(VARIANTS.dense)),
          (*_ckpt(VARIANTS.masked, VARIANTS.structured), *_metric(METRICS.pruning))),
    Stage("04", "04_save_artifacts", "Save artifacts", ("ArtifactsConfig",), ("drive_dir",),
          (*DATA_PATHS, *DENSE_STORAGE, *_metric(METRICS.data_summary, METRICS.dense_training, METRICS.pruning)),
          _metric(METRICS.artifacts)),
    Stage("05", "05_verify_models", "Verify models", ("VerifyConfig",), ("target_sparsity",),
          (*DATA_PATHS, *DENSE_STORAGE, *_metric(METRICS.pruning)), _metric(METRICS.model_verification)),
    Stage("05_5", "05_5_sparse_conversion", "Sparse conversion", ("SparseConfig", "ExportConfig", "QuantConfig"),
          ("device", "formats", "atol"),
          (*DATA_PATHS, *DENSE_STORAGE),
          (*_ckpt(VARIANTS.coo), *_metric(METRICS.sparse_conversion), *EXPORT_PATHS)),
    Stage("06", "06_gpu_benchmark", "GPU benchmark", ("BenchConfig",),
          ("device", "cuda_batch_sizes", "rotations", "threads"),
          (*DENSE_STORAGE, *EXPORT_PATHS), _metric(METRICS.gpu_benchmark)),
    Stage("07", "07_cpu_benchmark", "CPU benchmark", ("BenchConfig",),
          ("cpu_batch_sizes", "rotations", "threads"),
          (*DENSE_STORAGE, *EXPORT_PATHS), _metric(METRICS.cpu_benchmark)),
    Stage("08", "08_test_evaluation", "Test evaluation", ("CrossValConfig",),
          ("device", "run_cv", "n_seeds", "run_baselines", "cv_folds", "cv_epochs", "cv_patience",
           "cv_prune_stages", "cv_finetune_epochs", "cv_final_finetune_epochs"),
          (*DATA_PATHS, *DENSE_STORAGE, *_ckpt(VARIANTS.coo), *EXPORT_PATHS, *_metric(METRICS.pruning)),
          (*_metric(METRICS.test_evaluation), PREDICTIONS_PATH)),
    Stage("09", "09_figures", "Figures, Table 1 and validation checklist", ("ReportConfig", "FigureConfig"),
          ("batch_size", "dpi"),
          (*_metric(*(n for n in names(METRICS) if n not in (METRICS.validation_checklist, METRICS.artifacts))),
           PREDICTIONS_PATH),
          (*_metric(METRICS.validation_checklist), *TABLE_PATHS, *FIGURE_PATHS)),
)
STAGES: dict[str, Stage] = {stage.id: stage for stage in _TABLE}


def contract_files() -> tuple[str, ...]:
    """Every path a full run writes (relative to the results root) before the checklist, in order."""
    written = [rel for stage in _TABLE for rel in stage.writes]
    return tuple(rel for rel in dict.fromkeys(written) if rel != metric_file(METRICS.validation_checklist))


_GROUPS = {"data/*": DATA_PATHS, "export/*": EXPORT_PATHS, "tables/*": TABLE_PATHS, "figures/*": FIGURE_PATHS}


def _cell(paths: tuple[str, ...]) -> str:
    """Paths as table text; a whole folder group (every data file, export, table, figure) as one."""
    if not paths:
        return "the data source (embedded, `mill.mat` or CSV)"
    left, shown = list(paths), []
    for label, group in _GROUPS.items():
        if set(group) <= set(left):
            left = [p for p in left if p not in group]
            shown.append(label)
    return ", ".join(f"`{p}`" for p in (*shown, *left))


def architecture_table() -> str:
    """The notebook table of ``docs/architecture.md`` (a test keeps the doc equal to it)."""
    rows = ["| notebook | configs | parameters | reads | writes |", "|---|---|---|---|---|"]
    for s in _TABLE:
        rows.append(f"| `{s.notebook}` | {', '.join(s.configs)} | {', '.join(f'`{p}`' for p in s.params)} "
                    f"| {_cell(s.reads)} | {_cell(s.writes)} |")
    return "\n".join(rows)
