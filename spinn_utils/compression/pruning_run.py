"""Notebook 03's two prunings end to end (and cross-validation's): ``training.fit`` as the
pruners' fine-tune callback, the validation metrics after each stage, the pruned checkpoints'
meta and ``pruning.json``'s record.
"""
from __future__ import annotations

import math
import time

import pandas as pd
from torch import nn

from ..core import results_schema as rs
from ..core.errors import SpinnError
from ..model.counting import count_parameters
from ..model.inference import evaluate_model
from ..model.mlp import DensePINN
from ..model.sequence_head import head_constants
from ..training.fit import fit
from .magnitude import (
    FineTune,
    Masks,
    PruneConfig,
    PruneStage,
    apply_masks,
    finetune_config,
    iterative_prune,
    layer_sparsity,
    mask_digest,
    masks_from_zeros,
    sparsity_schedule,
)
from .structured import structured_prune


def fit_finetune(data, cfg: PruneConfig, train_cfg, physics_cfg, device) -> FineTune:
    """The fine-tune callback: ``training.fit`` with ``finetune_config``, masks re-applied after
    every optimizer step (none for the structured model)."""
    def finetune(model: nn.Module, masks: Masks | None, epochs: int, desc: str):
        after_step = None if masks is None else (lambda m: apply_masks(m, masks))
        return fit(model, data, finetune_config(train_cfg, cfg, epochs), physics_cfg,
                   device=device, after_step=after_step, desc=desc)
    return finetune


def stage_row(model, data, stage: int, target: float, device, fit_result=None) -> rs.PruneStage:
    """One entry of ``pruning.json``'s ``unstructured.stages``: counts and val metrics now."""
    params = count_parameters(model)
    fitted = {} if fit_result is None else dict(
        best_epoch=fit_result.best_epoch, best_val_loss=fit_result.best_val_loss,
        epochs_run=len(fit_result.history), seconds=fit_result.seconds)
    return rs.PruneStage(stage=stage, target_sparsity=target, sparsity=params.sparsity, params=params,
                         per_layer=layer_sparsity(model), val_metrics=evaluate_model(model, data, "val", device),
                         **fitted)


def prune_unstructured(model, data, cfg: PruneConfig, train_cfg, physics_cfg, device):
    """Prune the trained ``model`` in place with ``iterative_prune``, fine-tuned by ``training.fit``
    (``finetune_config`` of the dense ``train_cfg``, whose seed also seeds the random scores):
    (model, masks, ``UnstructuredPruning``), whose stage 0 is the input model."""
    t0 = time.perf_counter()
    model.to(device)
    rows = [stage_row(model, data, 0, 0.0, device)]

    def record(m: nn.Module, stage: PruneStage) -> None:
        rows.append(stage_row(m, data, stage.stage, stage.target_sparsity, device, stage.finetune))

    masks, _ = iterative_prune(model, cfg, fit_finetune(data, cfg, train_cfg, physics_cfg, device),
                               seed=train_cfg.seed, on_stage=record)
    final = rows[-1]
    return model, masks, rs.UnstructuredPruning(
        schedule=sparsity_schedule(cfg), stages=rows, params=final.params, per_layer=final.per_layer,
        val_metrics=final.val_metrics, mask_sha256=mask_digest(masks_from_zeros(model)),
        seconds=time.perf_counter() - t0)


def prune_structured(dense_model: DensePINN, data, cfg: PruneConfig, train_cfg, physics_cfg, device):
    """Structured pruning of ``dense_model`` (left unchanged), fine-tuned by ``training.fit``:
    (smaller DensePINN, ``StructuredPruning`` record)."""
    t0 = time.perf_counter()
    dense_model.to(device)
    fit_cb, before = fit_finetune(data, cfg, train_cfg, physics_cfg, device), {}

    def finetune(small: nn.Module, masks: Masks | None, epochs: int, desc: str):
        before["val"] = evaluate_model(small, data, "val", device)  # the sliced model, untrained
        return fit_cb(small, masks, epochs, desc)

    done = structured_prune(dense_model, cfg, finetune)
    small, target, result = done.model, done.target_params, done.finetune
    params = count_parameters(small)
    after = evaluate_model(small, data, "val", device)
    rel = (params.total - target) / target if target else math.inf
    return small, rs.StructuredPruning(
        hidden_dims=list(done.hidden_dims), params=params, target_params=target, relative_error=rel,
        within_tolerance=abs(rel) <= cfg.param_tolerance, importance=cfg.importance,
        val_metrics_before_finetune=before.get("val", after),  # no fine-tuning: the same model
        val_metrics=after, best_epoch=result.best_epoch if result else None,
        epochs_run=len(result.history) if result else 0, seconds=time.perf_counter() - t0)


DENSE_META_KEYS = ("model", "feature_names", "target_names", "scaler", "train_config", "physics_config")


def pruned_checkpoint_meta(dense_meta: dict, model: nn.Module, *, val_metrics: dict, **extra) -> dict:
    """Meta for a pruned/structured checkpoint: the dense one's units and configs, this model's
    ``model``, ``params``, head and metrics, and ``extra`` (the fine-tuning's ``train_config``,
    ``prune_config``, targets, digests)."""
    missing = [k for k in DENSE_META_KEYS if k not in dense_meta]
    if missing:
        raise SpinnError(f"the dense checkpoint's meta lacks {missing}; expected "
                         f"{list(DENSE_META_KEYS)} (re-run notebook 02)")
    meta = {k: dense_meta[k] for k in (*DENSE_META_KEYS, "seed") if k in dense_meta}
    meta.update(model=getattr(model, "cfg", dense_meta["model"]), params=count_parameters(model),
                physics_head=head_constants(model), val_metrics=val_metrics,
                dense_val_metrics=dense_meta.get("val_metrics"), **extra)
    return meta


def pruning_summary(cfg: PruneConfig, unstructured: rs.UnstructuredPruning,
                    structured: rs.StructuredPruning, dense_val_metrics: rs.RegressionReport,
                    dense_params: rs.ParamCount, environment: dict) -> rs.Pruning:
    """The ``metrics/pruning.json`` record (``core.results_schema.Pruning``)."""
    return rs.Pruning(config=cfg, unstructured=unstructured, structured=structured,
                      dense_val_metrics=dense_val_metrics, dense_params=dense_params,
                      environment=environment)


def _val_r2(metrics: rs.RegressionReport) -> dict:
    r2 = {f"val_r2[{k}]": v.r2 for k, v in metrics.per_output.items()}
    return {**r2, "val_mean_r2": metrics.mean_r2}


def stage_table(report: rs.UnstructuredPruning) -> pd.DataFrame:
    """One row per stage: target and reached sparsity, non-zero params, val R2 per output."""
    rows = [{"stage": s.stage, "target_sparsity": s.target_sparsity, "sparsity": s.sparsity,
             "nonzero": s.params.nonzero, **_val_r2(s.val_metrics), "epochs": s.epochs_run or 0}
            for s in report.stages]
    return pd.DataFrame(rows).set_index("stage")


def r2_table(models: dict[str, tuple[rs.ParamCount, rs.RegressionReport]]) -> pd.DataFrame:
    """``{name: (params, val_metrics)}`` -> one row per model: params and val R2 per output."""
    rows = [{"model": name, "total": params.total, "nonzero": params.nonzero, **_val_r2(metrics)}
            for name, (params, metrics) in models.items()]
    return pd.DataFrame(rows).set_index("model")
