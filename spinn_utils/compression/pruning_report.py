"""What notebook 03 writes besides the checkpoints: pruned checkpoint meta, ``pruning.json``, tables."""
from __future__ import annotations

import pandas as pd
from torch import nn

from ..core.errors import SpinnError
from ..core.results_schema import (
    ParamCount,
    Pruning,
    RegressionReport,
    StructuredPruning,
    UnstructuredPruning,
)
from ..model.counting import count_parameters
from ..model.sequence_head import head_constants
from .magnitude import PruneConfig

DENSE_META_KEYS = ("model", "feature_names", "target_names", "scaler", "train_config", "physics_config")


def pruned_checkpoint_meta(dense_meta: dict, model: nn.Module, *, val_metrics: dict, **extra) -> dict:
    """Meta for a pruned/structured checkpoint: the dense one's units and configs, this model's.

    ``extra`` adds keys (``train_config`` for the fine-tuning, ``prune_config``, targets,
    digests); ``model`` and ``params`` always describe ``model`` itself.
    """
    missing = [k for k in DENSE_META_KEYS if k not in dense_meta]
    if missing:
        raise SpinnError(
            f"the dense checkpoint's meta lacks {missing}; expected {list(DENSE_META_KEYS)} "
            "(re-run notebook 02)"
        )
    meta = {k: dense_meta[k] for k in (*DENSE_META_KEYS, "seed") if k in dense_meta}
    meta.update(
        model=getattr(model, "cfg", dense_meta["model"]),
        params=count_parameters(model),
        physics_head=head_constants(model),
        val_metrics=val_metrics,
        dense_val_metrics=dense_meta.get("val_metrics"),
        **extra,
    )
    return meta


def pruning_summary(
    cfg: PruneConfig, unstructured: UnstructuredPruning, structured: StructuredPruning,
    dense_val_metrics: RegressionReport, dense_params: ParamCount, environment: dict,
) -> Pruning:
    """The ``metrics/pruning.json`` record (``core.results_schema.Pruning``)."""
    return Pruning(config=cfg, unstructured=unstructured, structured=structured,
                   dense_val_metrics=dense_val_metrics, dense_params=dense_params, environment=environment)


def stage_table(report: UnstructuredPruning) -> pd.DataFrame:
    """One row per stage: target and reached sparsity, non-zero params, val R2 per output."""
    rows = []
    for s in report.stages:
        row = {"stage": s.stage, "target_sparsity": s.target_sparsity, "sparsity": s.sparsity,
               "nonzero": s.params.nonzero}
        row.update({f"val_r2[{k}]": v.r2 for k, v in s.val_metrics.per_output.items()})
        row.update(val_mean_r2=s.val_metrics.mean_r2, epochs=s.epochs_run or 0)
        rows.append(row)
    return pd.DataFrame(rows).set_index("stage")


def r2_table(models: dict[str, tuple[ParamCount, RegressionReport]]) -> pd.DataFrame:
    """``{name: (params, val_metrics)}`` -> one row per model: params and val R2 per output."""
    rows = []
    for name, (params, metrics) in models.items():
        row = {"model": name, "total": params.total, "nonzero": params.nonzero}
        row.update({f"val_r2[{k}]": v.r2 for k, v in metrics.per_output.items()})
        row["val_mean_r2"] = metrics.mean_r2
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
