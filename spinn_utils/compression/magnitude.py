"""Iterative global magnitude pruning (SPINN's unstructured sparsity), fine-tuned by a callback.

One ranking by |w| (or seeded noise, ``prune_method="random"``: the control) over every hidden
weight matrix; each stage of the schedule removes the smallest, then the fine-tune callback trains
with the masks (``{parameter name: bool tensor}``, True = kept) re-applied after every step. The
target is a sparsity of *all* parameters; biases and the output layer are never pruned
(docs/physics.md). References: Han et al., "Learning both Weights and Connections for Efficient
Neural Networks" (NeurIPS 2015); Zhu & Gupta, "To prune, or not to prune" (2017).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from ..core.errors import SpinnError
from ..core.overrides import Count, CountOrZero, StageConfig, with_overrides
from ..model.counting import count_parameters, weighted_layers

Masks = dict[str, torch.Tensor]  # parameter name -> bool tensor, True = weight kept
PRUNE_METHODS = ("magnitude", "random")  # random: the control Blalock et al. (MLSys 2020) ask for


class PruneConfig(StageConfig):
    """Settings of notebook 03 (both prunings). Default budget: ~4 min on a 2-core CPU."""

    # Of ALL parameters, biases included: 666,882 -> 210,068 non-zero. 0 prunes nothing: the dense
    # model is notebook 02's.
    target_sparsity: float = Field(0.685, gt=0, lt=1)
    # Prune/fine-tune rounds: fewer, bigger cuts lose more accuracy; each costs fine-tuning.
    n_stages: Count = 5
    # Each stage removes the same fraction of the surviving weights.
    schedule: Literal["geometric", "linear"] = "geometric"
    # "random" ranks weights by noise (seeded by the run's seed) instead of |w|: same schedule,
    # stages and fine-tuning budget, so any gap to "magnitude" is what the criterion itself buys.
    # Unstructured pruning only; structured pruning keeps its neuron importance.
    prune_method: Literal[PRUNE_METHODS] = "magnitude"
    # Budget (notebook 03 <= ~4 min on a 2-core CPU): a 666,882-parameter epoch on ~5k rows takes
    # ~0.4-0.6 s, the structured model's ~0.25 s, so at most 4*20 + 40 + 60*0.5 = 150 dense-epoch
    # equivalents (~1.5 min); early stopping usually ends stages sooner.
    finetune_epochs: CountOrZero = 20  # per intermediate stage: enough to recover after each cut
    final_finetune_epochs: CountOrZero = 40  # the last stage trains longer: its weights are kept
    finetune_patience: Count = 10  # early stopping during fine-tuning: it starts near a minimum
    # Fine-tuning starts near a minimum: a smaller step than from scratch.
    finetune_lr_scale: float = Field(0.5, gt=0)
    # The sliced model lost more than the masked one; it is cheap to train.
    structured_finetune_epochs: CountOrZero = 60
    importance: str = "l2_product"  # neuron score: ||incoming|| * ||outgoing||; also "l2_in", "l2_out"
    param_tolerance: float = 0.02  # structured parameter count must land within 2% of the target
    # Structured widths in multiples of 16 (when the count stays within tolerance): on a 2-core
    # AVX-512 CPU, 288-288-272-144 ran 2.68x faster than dense at batch 1000 where the exact
    # 286-286-284-143 ran 2.48x; GEMM and SIMD kernels handle aligned widths better.
    width_multiple: Count = 16
    show_progress: bool = True  # tqdm bars from training.fit; off in tests

    @classmethod
    def smoke_test(cls) -> PruneConfig:
        """Two stages of one epoch: exercises every path in seconds."""
        return cls(
            n_stages=2, finetune_epochs=1, final_finetune_epochs=1, finetune_patience=1,
            structured_finetune_epochs=1, show_progress=False,
        )


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weight matrices of every Linear layer, by state_dict name, in forward order."""
    weights = {f"{name}.weight": m.weight for name, m in weighted_layers(model) if isinstance(m, nn.Linear)}
    if not weights:
        raise SpinnError(f"{type(model).__name__} has no nn.Linear layers to prune")
    return weights


def n_weights_to_prune(model: nn.Module, sparsity: float) -> int:
    """How many weights to zero so that ``sparsity`` of ALL parameters (biases too) are zero."""
    total = count_parameters(model).total
    n_weights = sum(w.numel() for w in list(prunable_weights(model).values())[:-1])
    k = int(round(sparsity * total))
    if k > n_weights:
        raise SpinnError(f"sparsity {sparsity:.4f} of {total} parameters needs {k} zeros, but only "
                         f"{n_weights} are hidden-layer weights (biases and the output layer are never "
                         "pruned); lower target_sparsity")
    return k


def sparsity_schedule(cfg: PruneConfig) -> list[float]:
    """Cumulative target sparsity after each stage, ending exactly at ``cfg.target_sparsity``."""
    stages = np.arange(1, cfg.n_stages + 1) / cfg.n_stages
    if cfg.schedule == "geometric":  # keep (1-s)^(k/n) of the weights after stage k
        targets = 1.0 - (1.0 - cfg.target_sparsity) ** stages
    else:
        targets = cfg.target_sparsity * stages
    targets[-1] = cfg.target_sparsity
    return [float(t) for t in targets]


def weight_scores(model: nn.Module, method: str = "magnitude",
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One float64 score per weight (higher = kept longer): |w|, or uniform noise in [0, 1) drawn
    from ``generator`` on the CPU (so a seed gives the same masks on any device)."""
    if method not in PRUNE_METHODS:
        raise SpinnError(f"prune_method must be one of {PRUNE_METHODS}, got {method!r}")
    weights = prunable_weights(model)
    if method == "magnitude":
        return {name: w.detach().abs().to(torch.float64) for name, w in weights.items()}
    return {name: torch.rand(w.shape, generator=generator, dtype=torch.float64).to(w.device)
            for name, w in weights.items()}


def global_magnitude_masks(model: nn.Module, sparsity: float, masks: Masks | None = None,
                           scores: dict[str, torch.Tensor] | None = None) -> Masks:
    """Masks (True = kept) zeroing the ``n_weights_to_prune`` lowest-``scores`` (default |w|)
    hidden weights in one ranking (ties by position); weights pruned in ``masks`` (the previous
    stage's) stay pruned, so successive stages only ever remove more."""
    weights = prunable_weights(model)
    k = n_weights_to_prune(model, sparsity)
    scores = weight_scores(model) if scores is None else scores
    ranked, output = [], list(weights)[-1]
    for name in weights:
        s = scores[name].flatten().to(torch.float64)
        if name == output:  # ranked above every score: never among the k pruned
            s = torch.full_like(s, torch.inf)
        elif masks is not None and name in masks:
            # -1 sits below every score: already-pruned weights are pruned first.
            s = torch.where(masks[name].flatten().to(s.device), s, torch.full_like(s, -1.0))
        ranked.append(s.cpu())
    flat = torch.cat(ranked)
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep[torch.sort(flat, stable=True).indices[:k]] = False  # stable: equal scores (zeros) in order
    parts = keep.split([w.numel() for w in weights.values()])
    return {name: part.view_as(w).to(w.device) for (name, w), part in zip(weights.items(), parts)}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights in place (called after every optimizer step)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise SpinnError(f"mask for {name!r} but the model has no such parameter")
        p = params[name]
        if p.shape != mask.shape:
            raise SpinnError(f"mask {name!r} has shape {tuple(mask.shape)}, weight has {tuple(p.shape)}")
        p.mul_(mask.to(device=p.device, dtype=p.dtype))


def masks_from_zeros(model: nn.Module) -> Masks:
    """The masks a pruned checkpoint implies: kept where the weight is non-zero."""
    return {n: (w.detach() != 0) for n, w in prunable_weights(model).items()}


def mask_digest(masks: Masks) -> str:
    """sha256 of the kept/pruned pattern (layer order, packed bits): equal digest, equal zeros."""
    h = hashlib.sha256()
    for name in sorted(masks):
        h.update(name.encode())
        h.update(np.packbits(masks[name].detach().cpu().numpy().astype(bool).ravel()).tobytes())
    return h.hexdigest()


def layer_sparsity(model: nn.Module) -> list[dict]:
    """Per weight matrix: total, non-zero and sparsity (biases are not pruned, so not listed)."""
    counts = {name: (w.numel(), int(torch.count_nonzero(w.detach())))
              for name, w in prunable_weights(model).items()}
    return [{"layer": name, "total": total, "nonzero": nonzero, "sparsity": 1.0 - nonzero / total}
            for name, (total, nonzero) in counts.items()]


def finetune_config(train_cfg, cfg: PruneConfig, epochs: int):
    """The dense TrainConfig with fewer epochs, shorter patience and a smaller learning rate."""
    return with_overrides(train_cfg, epochs=max(1, int(epochs)), patience=cfg.finetune_patience,
                          lr=float(train_cfg.lr) * cfg.finetune_lr_scale,
                          lr_patience=min(train_cfg.lr_patience, cfg.finetune_patience - 1),
                          progress=bool(train_cfg.progress and cfg.show_progress))


# finetune(model, masks, epochs, desc): train ``model`` for at most ``epochs`` epochs keeping the
# pruned weights at zero (re-apply ``masks`` after every optimizer step); returns anything.
FineTune = Callable[[nn.Module, Masks, int, str], object]
# on_stage(model, stage, target, masks, finetuned): after stage ``stage`` (1-based) cut to the
# cumulative sparsity ``target``; ``finetuned``: what ``finetune`` returned (None: not called).
OnStage = Callable[[nn.Module, int, float, Masks, object], None]


def iterative_prune(model: nn.Module, cfg: PruneConfig, finetune: FineTune | None = None, *,
                    seed: int = 0, on_stage: OnStage | None = None) -> Masks:
    """Prune ``model`` in place, stage by stage: score (``cfg.prune_method``; ``seed`` seeds the
    random scores), mask, zero, ``finetune`` when the stage has epochs (the last stage's
    ``final_finetune_epochs``, the others' ``finetune_epochs``), then
    ``on_stage`` (training, evaluation and reports are the caller's). Returns the final masks."""
    generator = torch.Generator().manual_seed(int(seed))
    masks: Masks | None = None
    schedule = sparsity_schedule(cfg)
    for i, target in enumerate(schedule, start=1):
        scores = weight_scores(model, cfg.prune_method, generator)
        masks = global_magnitude_masks(model, target, masks, scores)
        apply_masks(model, masks)
        epochs = cfg.final_finetune_epochs if i == len(schedule) else cfg.finetune_epochs
        result = None
        if epochs > 0 and finetune is not None:
            result = finetune(model, masks, epochs, f"prune stage {i}/{len(schedule)} ({target:.1%})")
            apply_masks(model, masks)  # the restored best weights were masked too; be certain
        if on_stage is not None:
            on_stage(model, i, target, masks, result)
    return masks
