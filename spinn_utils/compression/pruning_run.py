"""Notebook 03's two prunings end to end (and cross-validation's), fine-tuned by ``training.fit``:
the validation metrics after each stage, the pruned checkpoints' meta and ``pruning.json``'s record.

Structured (neuron) pruning removes whole hidden neurons, so dense kernels do less work
(docs/benchmarking.md). Its target is the unstructured model's PARAMETER count: the widths are
solved for (one scale factor on all hidden widths, then a small search around it); each hidden
layer keeps its most important neurons (||incoming|| * ||outgoing||), so the sliced model computes
what the dense one does with the removed neurons' outgoing weights at zero. A physics head is
kept whole. References: Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017);
Molchanov et al., "Importance Estimation for Neural Network Pruning" (CVPR 2019).
"""
from __future__ import annotations

import copy
import itertools
import math
import time

import pandas as pd
import torch
from torch import nn

from ..core import results_schema as rs
from ..core.errors import SpinnError
from ..core.overrides import with_overrides
from ..model.counting import count_parameters, linear_layers, mlp_parameters
from ..model.inference import evaluate_model
from ..model.mlp import DensePINN, ModelConfig
from ..model.sequence_head import head_constants
from ..training.fit import fit
from .magnitude import (
    Masks,
    PruneConfig,
    apply_masks,
    finetune_config,
    iterative_prune,
    layer_sparsity,
    mask_digest,
    masks_from_zeros,
    n_weights_to_prune,
    sparsity_schedule,
)

IMPORTANCES = ("l2_product", "l2_in", "l2_out")
SEARCH_RADIUS = 2  # exact widths tried this many neurons either side of the scaled ones


def _closest_widths(model_cfg: ModelConfig, target_params: int,
                    candidates: list[list[int]]) -> tuple[tuple[int, ...], int]:
    """(the per-layer candidate widths whose count is closest to the target, the miss)."""
    best, best_key = None, None
    for widths in itertools.product(*candidates):
        if min(widths) < 1 or any(w > h for w, h in zip(widths, model_cfg.hidden_dims)):
            continue
        n = mlp_parameters((model_cfg.input_dim, *widths, model_cfg.output_dim))
        ratios = [w / h for w, h in zip(widths, model_cfg.hidden_dims)]
        key = (abs(n - target_params), max(ratios) - min(ratios))  # ties: the most proportional
        if best_key is None or key < best_key:
            best, best_key = tuple(widths), key
    if best is None:
        raise SpinnError(f"no hidden widths fit {target_params} parameters")
    return best, best_key[0]


def structured_widths(model_cfg: ModelConfig, target_params: int, multiple: int = 1,
                      tolerance: float = 0.02) -> tuple[int, ...]:
    """Hidden widths whose MLP has the parameter count closest to ``target_params``: one scale
    factor on all widths by bisection, then the closest count within ``SEARCH_RADIUS`` steps of
    the scaled widths; with ``multiple > 1``, the aligned widths next to them (GEMM-friendly)
    when their count is within ``tolerance`` of the target."""
    hidden = model_cfg.hidden_dims
    if not hidden:
        raise SpinnError("structured pruning needs at least one hidden layer")

    def count(scale: float) -> int:
        widths = tuple(max(1, round(scale * h)) for h in hidden)
        return mlp_parameters((model_cfg.input_dim, *widths, model_cfg.output_dim))

    if target_params >= mlp_parameters(model_cfg.dims):
        return tuple(hidden)
    lo, hi = 0.0, 1.0
    for _ in range(60):  # 2^-60: far below one neuron's step
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count(mid) <= target_params else (lo, mid)
    scale = min((lo, hi), key=lambda s: abs(count(s) - target_params))
    if multiple > 1:  # one aligned step either way keeps the shape near-proportional
        aligned = [[multiple * (round(scale * h / multiple) + d) for d in (-1, 0, 1)] for h in hidden]
        widths, miss = _closest_widths(model_cfg, target_params, aligned)
        if miss <= tolerance * target_params:
            return widths
    steps = range(-SEARCH_RADIUS, SEARCH_RADIUS + 1)
    exact = [[max(1, round(scale * h)) + d for d in steps] for h in hidden]
    return _closest_widths(model_cfg, target_params, exact)[0]


def neuron_importance(model: DensePINN, importance: str = "l2_product") -> list[torch.Tensor]:
    """One score per neuron of each hidden layer (higher = more important)."""
    if importance not in IMPORTANCES:
        raise SpinnError(f"importance must be one of {IMPORTANCES}, got {importance!r}")
    layers = linear_layers(model)
    scores = []
    for incoming, outgoing in zip(layers[:-1], layers[1:]):
        w_in = incoming.weight.detach().norm(dim=1)  # row j: what feeds neuron j
        w_out = outgoing.weight.detach().norm(dim=0)  # column j: what neuron j feeds
        scores.append({"l2_in": w_in, "l2_out": w_out}.get(importance, w_in * w_out))
    return scores


def select_neurons(scores: list[torch.Tensor], widths: tuple[int, ...]) -> list[torch.Tensor]:
    """Indices of the ``widths[i]`` highest-scoring neurons per hidden layer, in original order."""
    if len(scores) != len(widths):
        raise SpinnError(f"{len(widths)} widths for {len(scores)} hidden layers")
    keep = []
    for s, w in zip(scores, widths):
        if not 1 <= w <= s.numel():
            raise SpinnError(f"cannot keep {w} of {s.numel()} neurons")
        # Stable sort: equal scores keep the lower index, so the choice is reproducible.
        keep.append(torch.sort(torch.sort(s, descending=True, stable=True).indices[:w]).values)
    return keep


@torch.no_grad()
def slice_model(model: DensePINN, keep: list[torch.Tensor]) -> DensePINN:
    """A new, smaller DensePINN holding only the kept neurons' rows, columns and biases."""
    cfg = model.cfg
    if len(keep) != len(cfg.hidden_dims):
        raise SpinnError(f"{len(keep)} keep-lists for {len(cfg.hidden_dims)} hidden layers")
    small = DensePINN(with_overrides(cfg, hidden_dims=tuple(len(k) for k in keep)))
    if model.head is not None:  # the smaller body feeds the same head
        small.head = copy.deepcopy(model.head)
    src, dst = linear_layers(model), linear_layers(small)
    for i, (a, b) in enumerate(zip(src, dst)):
        w, bias = a.weight, a.bias
        if i < len(keep):  # the kept neurons' rows
            w, bias = w[keep[i].to(w.device)], bias[keep[i].to(w.device)]
        if i > 0:  # the columns the kept neurons of the layer before feed
            w = w[:, keep[i - 1].to(w.device)]
        b.weight.copy_(w)
        b.bias.copy_(bias)
    return small.to(next(model.parameters()).device)


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

    def record(m: nn.Module, stage: int, target: float, masks: Masks, result) -> None:
        rows.append(stage_row(m, data, stage, target, device, result))

    def finetune(m: nn.Module, masks: Masks, epochs: int, desc: str):
        return fit(m, data, finetune_config(train_cfg, cfg, epochs), physics_cfg, device=device,
                   after_step=lambda module: apply_masks(module, masks), desc=desc)

    masks = iterative_prune(model, cfg, finetune, seed=train_cfg.seed, on_stage=record)
    final = rows[-1]
    return model, masks, rs.UnstructuredPruning(
        schedule=sparsity_schedule(cfg), stages=rows, params=final.params, per_layer=final.per_layer,
        val_metrics=final.val_metrics, mask_sha256=mask_digest(masks_from_zeros(model)),
        seconds=time.perf_counter() - t0)


def prune_structured(dense_model: DensePINN, data, cfg: PruneConfig, train_cfg, physics_cfg, device):
    """A smaller copy of ``dense_model`` (left unchanged) at the unstructured model's parameter
    count for ``cfg.target_sparsity``, its neurons ranked by ``cfg.importance``, fine-tuned by
    ``training.fit``: (smaller DensePINN, ``StructuredPruning`` record)."""
    t0 = time.perf_counter()
    dense_model.to(device)
    total = count_parameters(dense_model).total
    target = total - n_weights_to_prune(dense_model, cfg.target_sparsity)
    widths = structured_widths(dense_model.cfg, target, cfg.width_multiple, cfg.param_tolerance)
    keep = select_neurons(neuron_importance(dense_model, cfg.importance), widths)
    small = slice_model(dense_model, keep)
    before = evaluate_model(small, data, "val", device)
    epochs, result = cfg.structured_finetune_epochs, None
    if epochs > 0:
        result = fit(small, data, finetune_config(train_cfg, cfg, epochs), physics_cfg,
                     device=device, desc=f"structured {widths}")
    after = evaluate_model(small, data, "val", device) if result else before
    params = count_parameters(small)
    rel = (params.total - target) / target if target else math.inf
    return small, rs.StructuredPruning(
        hidden_dims=list(widths), params=params, target_params=target, relative_error=rel,
        within_tolerance=abs(rel) <= cfg.param_tolerance, importance=cfg.importance,
        val_metrics_before_finetune=before, val_metrics=after,
        best_epoch=result.best_epoch if result else None,
        epochs_run=len(result.history) if result else 0, seconds=time.perf_counter() - t0)


DENSE_META_KEYS = ("model", "feature_names", "target_names", "scaler", "train_config", "physics_config")


def pruned_checkpoint_meta(dense_meta: dict, model: nn.Module, *, val_metrics: dict, **extra) -> dict:
    """Meta for a pruned/structured checkpoint: the dense one's units and configs, this model's
    ``model``, ``params``, head and metrics, and ``extra`` (configs, targets, digests)."""
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
