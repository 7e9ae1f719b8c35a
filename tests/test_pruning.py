"""Pruning: global magnitude masks, the staged loop, structured widths and slicing."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from spinn_utils.compression.magnitude import (
    PruneConfig,
    apply_masks,
    global_magnitude_masks,
    iterative_prune,
    layer_sparsity,
    mask_digest,
    masks_from_zeros,
    n_weights_to_prune,
    prunable_weights,
    sparsity_schedule,
    weight_scores,
)
from spinn_utils.compression.pruning_run import (
    neuron_importance,
    prune_structured,
    prune_unstructured,
    select_neurons,
    slice_model,
    structured_widths,
)
from spinn_utils.core.errors import SpinnError
from spinn_utils.data.dataset import PreparedData
from spinn_utils.data.schema import TARGETS
from spinn_utils.model.counting import count_parameters, linear_layers, mlp_parameters
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.physics import PhysicsConfig
from spinn_utils.training.fit import TrainConfig, fit

TINY = ModelConfig(hidden_dims=(48, 48, 24))


@pytest.fixture
def data(make_data) -> PreparedData:
    return make_data(train=4, val=1, test=1, rows=30)


def _fast_train() -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=64, progress=False)


def test_default_model_reaches_target_sparsity_with_masks_only():
    torch.manual_seed(0)
    model = DensePINN()
    masks = global_magnitude_masks(model, 0.685)
    apply_masks(model, masks)
    counts = count_parameters(model)
    assert counts.total == 666_882
    assert abs(counts.sparsity - 0.685) <= 0.005
    assert 210_068 <= counts.nonzero <= 210_364
    assert sum(int((~m).sum()) for m in masks.values()) == n_weights_to_prune(model, 0.685)


def test_biases_are_never_pruned():
    torch.manual_seed(1)
    model = DensePINN(TINY)
    masks = global_magnitude_masks(model, 0.6)
    assert all(name.endswith("weight") for name in masks)
    apply_masks(model, masks)
    for layer in linear_layers(model):
        assert torch.count_nonzero(layer.bias) == layer.bias.numel()


def test_ranking_is_global_not_per_layer():
    torch.manual_seed(2)
    model = DensePINN(TINY)
    first = linear_layers(model)[0]
    with torch.no_grad():
        first.weight.abs_().add_(10.0)  # every first-layer weight now dwarfs every other weight
    masks = global_magnitude_masks(model, 0.5)
    apply_masks(model, masks)
    per_layer = {r["layer"]: r for r in layer_sparsity(model)}
    # Per-layer pruning would cut every layer alike; globally the other layers take every cut.
    assert per_layer["network.0.weight"]["sparsity"] == 0.0
    zeros_elsewhere = sum(r["total"] - r["nonzero"] for k, r in per_layer.items() if k != "network.0.weight")
    assert zeros_elsewhere == n_weights_to_prune(model, 0.5)


def test_kept_weights_outrank_pruned_weights():
    torch.manual_seed(3)
    model = DensePINN(TINY)
    weights = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    masks = global_magnitude_masks(model, 0.4)
    hidden = list(masks)[:-1]  # the output layer is kept whole (below)
    kept = torch.cat([weights[n][masks[n]].abs() for n in hidden])
    pruned = torch.cat([weights[n][~masks[n]].abs() for n in hidden])
    assert kept.min() >= pruned.max()


@pytest.mark.parametrize("method", ["magnitude", "random"])
def test_the_output_layer_is_never_pruned_even_when_its_weights_are_smallest(method):
    """A hard-physics body's last layer starts at zero; one global ranking used to cut all of it."""
    torch.manual_seed(5)
    model = DensePINN(TINY)
    out = linear_layers(model)[-1]
    with torch.no_grad():
        out.weight.mul_(1e-6)
    masks = global_magnitude_masks(model, 0.6, scores=weight_scores(model, method, torch.Generator().manual_seed(0)))
    assert bool(masks[list(masks)[-1]].all())
    assert sum(int((~m).sum()) for m in masks.values()) == n_weights_to_prune(model, 0.6)


def test_stages_only_prune_more_and_schedule_ends_at_target():
    cfg = PruneConfig(target_sparsity=0.685, n_stages=4)
    schedule = sparsity_schedule(cfg)
    assert schedule[-1] == pytest.approx(0.685) and all(np.diff(schedule) > 0)
    torch.manual_seed(4)
    model = DensePINN(TINY)
    masks = None
    for target in schedule:
        new = global_magnitude_masks(model, target, masks)
        if masks is not None:
            assert all(bool((new[n] <= masks[n]).all()) for n in masks)  # pruned stays pruned
        with torch.no_grad():  # move the weights so a fresh ranking alone would differ
            for w in prunable_weights(model).values():
                w.add_(0.5 * torch.randn_like(w))
        masks = new


def test_impossible_sparsity_is_a_clear_error():
    model = DensePINN(ModelConfig(input_dim=2, hidden_dims=(2,), output_dim=1))  # 4+2+2+1 = 9
    with pytest.raises(SpinnError, match="biases and the output layer are never pruned"):
        n_weights_to_prune(model, 0.9)
    with pytest.raises(SpinnError, match="shape"):
        apply_masks(model, {"network.0.weight": torch.ones(3, 3, dtype=torch.bool)})


def test_masks_stay_zero_through_finetuning(data):
    torch.manual_seed(5)
    model = DensePINN(TINY)
    masks = global_magnitude_masks(model, 0.7)
    apply_masks(model, masks)
    before = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    fit(model, data, _fast_train(), PhysicsConfig.smoke_test(), device="cpu",
        after_step=lambda m: apply_masks(m, masks))
    after = prunable_weights(model)
    for name, mask in masks.items():
        assert torch.count_nonzero(after[name][~mask]) == 0
    assert any(not torch.equal(before[n][m], after[n].detach()[m]) for n, m in masks.items())


def test_staged_loop_reaches_target_and_reports(data):
    torch.manual_seed(6)
    model = DensePINN(TINY)
    cfg = PruneConfig.smoke_test()
    model, masks, report = prune_unstructured(
        model, data, cfg, _fast_train(), PhysicsConfig.smoke_test(), "cpu"
    )
    assert abs(count_parameters(model).sparsity - cfg.target_sparsity) <= 0.005
    assert [s.stage for s in report.stages] == list(range(cfg.n_stages + 1))
    assert report.stages[0].sparsity == 0.0
    sparsities = [s.sparsity for s in report.stages]
    assert all(np.diff(sparsities) > 0)
    assert set(report.val_metrics.per_output) == set(TARGETS)
    for name, w in prunable_weights(model).items():
        assert torch.count_nonzero(w[~masks[name]]) == 0
    assert report.mask_sha256 == mask_digest(masks_from_zeros(model))


def test_mask_digest_tracks_the_zero_pattern():
    torch.manual_seed(7)
    model = DensePINN(TINY)
    apply_masks(model, global_magnitude_masks(model, 0.5))
    digest = mask_digest(masks_from_zeros(model))
    clone = copy.deepcopy(model)
    assert mask_digest(masks_from_zeros(clone)) == digest
    with torch.no_grad():
        w = linear_layers(clone)[1].weight
        idx = (w == 0).nonzero()[0]
        w[idx[0], idx[1]] = 1.0  # one pruned weight revived
    assert mask_digest(masks_from_zeros(clone)) != digest


def test_structured_widths_hit_the_default_parameter_target():
    model = DensePINN()
    target = 666_882 - n_weights_to_prune(model, 0.685)
    widths = structured_widths(model.cfg, target)
    small = DensePINN(ModelConfig(hidden_dims=widths))
    assert count_parameters(small).total == mlp_parameters(small.cfg.dims)
    assert abs(count_parameters(small).total - target) / target <= 0.02
    assert all(w < h for w, h in zip(widths, model.cfg.hidden_dims))


def test_structured_widths_prefer_aligned_widths_within_tolerance():
    model = DensePINN()
    target = 666_882 - n_weights_to_prune(model, 0.685)
    widths = structured_widths(model.cfg, target, multiple=16, tolerance=0.02)
    assert all(w % 16 == 0 for w in widths)
    assert abs(mlp_parameters((18, *widths, 2)) - target) / target <= 0.02
    # When no aligned widths fit the tolerance, exact widths are used instead.
    exact = structured_widths(model.cfg, target, multiple=16, tolerance=1e-6)
    assert exact == structured_widths(model.cfg, target)
    assert abs(mlp_parameters((18, *exact, 2)) - target) / target < 1e-3


def test_select_neurons_keeps_the_important_ones():
    torch.manual_seed(8)
    model = DensePINN(TINY)
    layers = linear_layers(model)
    with torch.no_grad():
        layers[1].weight[:, 7] = 0.0  # neuron 7 of hidden layer 0 feeds nothing
        layers[1].weight[:, 3] *= 50.0  # neuron 3 feeds a lot
    keep = select_neurons(neuron_importance(model), (24, 24, 12))
    assert 3 in keep[0].tolist() and 7 not in keep[0].tolist()
    assert all(bool((k[1:] > k[:-1]).all()) for k in keep)  # original order preserved


def test_sliced_model_equals_dense_with_removed_outgoing_weights_zeroed():
    torch.manual_seed(9)
    dense = DensePINN(TINY)
    keep = select_neurons(neuron_importance(dense), (20, 31, 9))
    small = slice_model(dense, keep)
    reference = copy.deepcopy(dense)
    layers = linear_layers(reference)
    with torch.no_grad():
        for i, k in enumerate(keep):
            removed = torch.ones(layers[i].out_features, dtype=torch.bool)
            removed[k] = False
            layers[i + 1].weight[:, removed] = 0.0
    x = torch.randn(64, TINY.input_dim)
    with torch.no_grad():
        assert torch.allclose(small(x), reference(x), atol=1e-6)
        assert not torch.allclose(dense(x), reference(x), atol=1e-3)  # the zeroing mattered
    assert small.cfg.hidden_dims == (20, 31, 9)


def test_structured_prune_end_to_end(data):
    torch.manual_seed(10)
    dense = DensePINN(TINY)
    state = copy.deepcopy(dense.state_dict())
    small, report = prune_structured(
        dense, data, PruneConfig.smoke_test(), _fast_train(), PhysicsConfig.smoke_test(), "cpu"
    )
    assert tuple(report.hidden_dims) == small.cfg.hidden_dims
    assert report.params.total == count_parameters(small).total
    assert report.within_tolerance == (abs(report.relative_error) <= 0.02)
    assert report.within_tolerance
    assert all(torch.equal(v, dense.state_dict()[k]) for k, v in state.items())  # dense untouched


class _RecordingFineTune:
    """A fine-tune callback that changes the surviving weights and records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, bool]] = []

    def __call__(self, model, masks, epochs, desc):
        self.calls.append((epochs, desc, masks is None))
        with torch.no_grad():
            for w in prunable_weights(model).values():
                w.add_(0.01)  # revives pruned weights too: the pruner must re-apply its masks
        return {"epochs": epochs}


def _prune(model, cfg, finetune=None, **kw):
    """(final masks, per stage: (stage, target, masks, what finetune returned, sparsity then))."""
    stages = []
    masks = iterative_prune(model, cfg, finetune, **kw, on_stage=lambda m, *s: stages.append(
        (*s, count_parameters(m).sparsity)))
    return masks, stages


def test_pruner_returns_masks_and_calls_the_finetune_callback():
    torch.manual_seed(11)
    model = DensePINN(TINY)
    cfg = PruneConfig(n_stages=3, finetune_epochs=2, final_finetune_epochs=5)
    finetune = _RecordingFineTune()
    masks, stages = _prune(model, cfg, finetune)
    assert [c[0] for c in finetune.calls] == [2, 2, 5]
    assert not any(c[2] for c in finetune.calls)  # the masks are handed to the callback
    assert [s[0] for s in stages] == [1, 2, 3] and stages[-1][2] is masks
    assert [s[3] for s in stages] == [{"epochs": e} for e in (2, 2, 5)]
    assert [s[1] for s in stages] == sparsity_schedule(cfg)
    assert all(abs(s[4] - t) <= 0.005 for s, t in zip(stages, sparsity_schedule(cfg)))
    for name, w in prunable_weights(model).items():  # re-applied after the callback's steps
        assert torch.count_nonzero(w[~masks[name]]) == 0


def test_pruner_without_callback_or_epochs_only_cuts():
    torch.manual_seed(12)
    model = DensePINN(TINY)
    cfg = PruneConfig(n_stages=2, finetune_epochs=0, final_finetune_epochs=0)
    finetune = _RecordingFineTune()
    masks, stages = _prune(model, cfg, finetune)
    assert finetune.calls == [] and all(s[3] is None for s in stages)
    assert abs(count_parameters(model).sparsity - cfg.target_sparsity) <= 0.005


def test_magnitude_path_matches_one_shot_masks_without_finetuning():
    torch.manual_seed(13)
    model = DensePINN(TINY)
    clone = copy.deepcopy(model)
    cfg = PruneConfig(n_stages=1, finetune_epochs=0, final_finetune_epochs=0)
    masks = iterative_prune(model, cfg)
    expected = global_magnitude_masks(clone, cfg.target_sparsity)
    assert all(torch.equal(masks[n], expected[n]) for n in expected)


def test_random_method_reaches_target_with_other_masks_and_the_same_budget():
    cfg = PruneConfig(n_stages=3, finetune_epochs=2, final_finetune_epochs=4)
    random_cfg = PruneConfig(n_stages=3, finetune_epochs=2, final_finetune_epochs=4, prune_method="random")
    results = {}
    for name, c in (("magnitude", cfg), ("random", random_cfg)):
        torch.manual_seed(14)
        model, finetune = DensePINN(TINY), _RecordingFineTune()
        masks, stages = _prune(model, c, finetune, seed=3)
        results[name] = (model, masks, finetune.calls, stages)
    for model, masks, _, _ in results.values():
        assert abs(count_parameters(model).sparsity - cfg.target_sparsity) <= 0.005
        assert sum(int((~m).sum()) for m in masks.values()) == n_weights_to_prune(model, cfg.target_sparsity)
    (_, mag, mag_calls, mag_stages), (_, rnd, rnd_calls, rnd_stages) = results["magnitude"], results["random"]
    assert mask_digest(mag) != mask_digest(rnd)
    assert [c[0] for c in mag_calls] == [c[0] for c in rnd_calls] == [2, 2, 4]
    assert [s[1] for s in mag_stages] == [s[1] for s in rnd_stages]
    # Stages only ever remove more, for random scores too.
    for (*_, earlier, _, _), (*_, later, _, _) in zip(rnd_stages, rnd_stages[1:]):
        assert all(bool((later[n] <= earlier[n]).all()) for n in later)


def test_random_method_is_seeded():
    cfg = PruneConfig(n_stages=2, finetune_epochs=0, final_finetune_epochs=0, prune_method="random")
    digests = []
    for seed in (1, 1, 2):
        torch.manual_seed(15)
        masks = iterative_prune(DensePINN(TINY), cfg, seed=seed)
        digests.append(mask_digest(masks))
    assert digests[0] == digests[1] != digests[2]


def test_prune_method_is_validated():
    with pytest.raises(SpinnError, match="PruneConfig.prune_method: .*'magnitude' or 'random', got 'l1'"):
        PruneConfig(prune_method="l1")
