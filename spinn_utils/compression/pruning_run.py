"""Notebook 03's two prunings end to end: the pruners, ``training.fit`` as their fine-tuning,
the validation metrics after each stage and the report rows ``pruning.json`` holds.

The algorithms (``magnitude.iterative_prune``, ``structured.structured_prune``) only score,
cut and call a fine-tune callback; this module supplies that callback and does the
bookkeeping, so cross-validation (``evaluation/crossval.py``) and notebook 03 run the same code.
"""
from __future__ import annotations

import math
import time

from torch import nn

from ..core import results_schema as rs
from ..model.counting import count_parameters
from ..model.inference import evaluate_model
from ..model.mlp import DensePINN
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
    """Prune ``model`` in place with ``iterative_prune``, fine-tuned by ``training.fit``.

    Args:
        model: a trained DensePINN (modified in place and returned).
        data: PreparedData; fine-tuning uses "train", early stopping and metrics "val".
        cfg: PruneConfig (target, stages, schedule, epochs, prune_method).
        train_cfg: the dense TrainConfig; epochs and lr are replaced for fine-tuning; its
            seed also seeds ``prune_method="random"``.
        physics_cfg: the PhysicsConfig the dense model was trained with.
        device: torch device for fine-tuning and evaluation.

    Returns:
        (model, masks, ``core.results_schema.UnstructuredPruning``); stage 0 is the input model.
    """
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
    """Structured pruning of ``dense_model`` (left unchanged), fine-tuned by ``training.fit``.

    Returns:
        (smaller DensePINN, ``core.results_schema.StructuredPruning``).
    """
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
