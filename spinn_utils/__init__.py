"""spinn_utils: pruned physics-informed networks (SPINN) for CNC tool wear and thermal displacement.

Stage subpackages, each importing only from the ones before it: docs/architecture.md. The names
the notebooks use are importable from here (``from spinn_utils import prepare``); they load on
first use (PEP 562), so ``import spinn_utils`` stays cheap: a torch-free tool never imports torch.
"""
from __future__ import annotations

import importlib

from .core.version import __version__

_API = {
    "core.overrides": ("build_config", "with_overrides"),
    "core.env": ("environment_info", "set_seed"),
    "core.errors": ("SpinnError",),
    "core.lineage": ("begin_stage", "finish_stage"),
    "core.paths": ("ResultsPaths",),
    "core.results_files": ("read_result", "write_result"),
    "core.registry": ("DEPLOY_CARD", "LABELS", "METRICS", "RECOMMENDED_DIR", "TEST_VARIANTS",
                      "VARIANTS"),
    "data.prepare": ("data_summary", "prepare"),
    "data.dataset": ("load_prepared", "save_prepared", "split_table"),
    "data.schema": ("data_config_for",),
    "model.checkpoints": ("load_dense_model", "save_checkpoint"),
    "model.counting": ("count_parameters",),
    "model.inference": ("evaluate_model", "model_sequence", "predict"),
    "model.sequences": ("build_model", "model_config_for"),
    "model.mlp": ("ModelConfig",),
    "model.physics": ("PhysicsConfig", "physics_config_for"),
    "training.fit": ("TrainConfig", "checkpoint_meta", "fit", "history_frame", "train_config_for",
                     "training_report"),
    "compression.magnitude": ("PruneConfig", "finetune_config"),
    "compression.pruning_run": ("prune_structured", "prune_unstructured", "pruned_checkpoint_meta",
                                "pruning_summary", "r2_table", "stage_table"),
    "compression.convert": ("SparseConfig", "convert_checkpoint", "summary_rows"),
    "compression.export": ("ExportConfig", "export_checkpoints", "export_rows"),
    "compression.run_models": ("load_run_models",),
    "compression.quantize": ("QuantConfig", "quantize_exports"),
    "benchmark.bench_config": ("BenchConfig",),
    "benchmark.run": ("cuda_skip_reason", "run_benchmark", "skipped_result"),
    "reporting.bench_tables": ("fastest_table", "limits_table", "results_table", "variants_table"),
    "benchmark.variants": ("load_variants",),
    "evaluation.verify": ("VerifyConfig", "checks_table", "models_table", "verify_models"),
    "evaluation.crossval": ("CrossValConfig", "cross_validate", "cv_table", "seed_runs"),
    "evaluation.baselines": ("BaselineConfig", "score_baselines"),
    "evaluation.consistency": ("physics_consistency",),
    "evaluation.holdout": ("evaluate_test", "metrics_table", "write_results"),
    "reporting.results": ("NOT_MEASURED", "ReportConfig"),
    "reporting.table1": ("build_table1", "to_markdown", "write_table1"),
    "reporting.table2": ("build_table2", "write_table2"),
    "reporting.checklist": ("build_checklist", "checklist_frames", "write_checklist"),
    "reporting.figures": ("FigureConfig", "make_figures"),
    "reporting.sweep_report": ("load_sweep", "summary_of", "table3_frames", "table3_paths"),
    "reporting.sweep_figures": ("sweep_figure_paths",),
    "pipeline.archive": ("ArtifactsConfig", "mount_drive", "save_artifacts"),
    "pipeline.sweep": ("sweep_here",),
    "pipeline.recommend": ("recommend_here",),
    "reporting.recommend_rule": ("Rule", "decide"),
}
_WHERE = {name: module for module, names in _API.items() for name in names}
__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'spinn_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
