"""Structured (neuron) pruning: a physically smaller DensePINN with the same parameter budget.

Removing whole hidden neurons shrinks the matrices, so dense kernels do less work
(docs/benchmarking.md). The target is the unstructured model's PARAMETER count, not its neuron
fraction: the widths are solved for (one scale factor on all hidden widths, then a small search
around it). Each hidden layer keeps its most important neurons by ||incoming|| * ||outgoing||;
before fine-tuning, the sliced model computes exactly what the dense one does with the removed
neurons' outgoing weights at zero. The physics head, if any, is not pruned.

References: Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017); Molchanov et al.,
"Importance Estimation for Neural Network Pruning" (CVPR 2019).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch

from ..core.errors import SpinnError
from ..core.overrides import with_overrides
from ..model.counting import count_parameters, linear_layers, mlp_parameters
from ..model.mlp import DensePINN, ModelConfig
from .magnitude import FineTune, PruneConfig, n_weights_to_prune

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
        idx = torch.sort(s, descending=True, stable=True).indices[:w]
        keep.append(torch.sort(idx).values)
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


@dataclass
class StructuredPruning:
    """What ``structured_prune`` did."""

    model: DensePINN  # fine-tuned when a callback was given and epochs > 0
    hidden_dims: tuple[int, ...]
    keep: list[torch.Tensor]  # kept neuron indices per hidden layer, in original order
    target_params: int  # the unstructured model's parameter count at cfg.target_sparsity
    epochs: int  # fine-tuning budget given to the callback (0: it was not called)
    finetune: object = None  # what the fine-tune callback returned


def structured_prune(dense_model: DensePINN, cfg: PruneConfig, finetune: FineTune | None = None) -> StructuredPruning:
    """Shrink the hidden layers of ``dense_model`` (left unchanged) to the unstructured model's
    parameter count at ``cfg.target_sparsity``, ranked by ``cfg.importance``, then
    ``finetune(model, None, cfg.structured_finetune_epochs, desc)`` unless None."""
    total = count_parameters(dense_model).total
    target = total - n_weights_to_prune(dense_model, cfg.target_sparsity)
    widths = structured_widths(dense_model.cfg, target, cfg.width_multiple, cfg.param_tolerance)
    keep = select_neurons(neuron_importance(dense_model, cfg.importance), widths)
    small = slice_model(dense_model, keep)
    epochs = cfg.structured_finetune_epochs
    result = None
    if epochs > 0 and finetune is not None:
        result = finetune(small, None, epochs, f"structured {widths}")
    return StructuredPruning(small, tuple(widths), keep, target, epochs, result)
