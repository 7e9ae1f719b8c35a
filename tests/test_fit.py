"""Training loop: seeded determinism, early stopping restores the best weights, the
after_step hook, predict/evaluate in the right units."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spinn_utils.core.env import set_seed
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.overrides import with_overrides
from spinn_utils.data.dataset import PreparedData, Scaler
from spinn_utils.data.schema import DEFAULT_FEATURES, TARGETS
from spinn_utils.model.inference import evaluate_model, predict
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.physics import PhysicsConfig
from spinn_utils.training.fit import TrainConfig, fit

FEATURES = list(DEFAULT_FEATURES)
TINY = ModelConfig(hidden_dims=(8, 8))
FAST = TrainConfig(epochs=3, batch_size=32, patience=10, progress=False)
PHYS = with_overrides(PhysicsConfig(), subsample=8)



def run(seed: int, data: PreparedData, physics: PhysicsConfig = PHYS):
    set_seed(seed)
    model = DensePINN(TINY)
    result = fit(model, data, with_overrides(FAST, seed=seed), physics, device="cpu")
    return model, result


def test_same_seed_gives_identical_history_and_weights(make_data):
    data = make_data(val=2, test=2, rows=40)
    m1, r1 = run(7, data)
    m2, r2 = run(7, data)
    def no_clock(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert no_clock(r1.history) == no_clock(r2.history)
    assert (r1.best_epoch, r1.best_val_loss) == (r2.best_epoch, r2.best_val_loss)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    _, r3 = run(8, data)  # a different seed really changes the run
    assert r3.history[0]["train_loss"] != r1.history[0]["train_loss"]


def test_history_has_every_column_and_physics_terms_are_finite(make_data):
    _, result = run(0, make_data(val=2, test=2, rows=40))
    row = result.history[0]
    for key in ("epoch", "train_loss", "data_loss", "physics_loss", "wear_nonneg",
                "wear_monotone", "thermal_ode", "val_loss", "val_r2", "lr", "seconds"):
        assert key in row
    assert set(row["val_r2"]) == set(TARGETS)
    assert all(np.isfinite(h["thermal_ode"]) for h in result.history)
    assert row["train_loss"] == pytest.approx(row["data_loss"] + row["physics_loss"], rel=1e-5)
    _, off = run(0, make_data(val=2, test=2, rows=40), PhysicsConfig.off())
    assert off.history[0]["physics_loss"] == 0.0


def test_early_stopping_restores_the_best_epoch_weights(make_data):
    # Val targets are half the train targets: fitting train first approaches them, then
    # overshoots, so val loss falls and then rises and the best epoch is in the middle.
    train = make_data(rows=50).frames["train"]
    val = train.copy()
    scaler = Scaler.fit(train, FEATURES, list(TARGETS))
    y_scaled = scaler.transform_y(train)
    val[list(TARGETS)] = scaler.inverse_y(0.5 * y_scaled)
    data = PreparedData({"train": train, "val": val, "test": val}, FEATURES, list(TARGETS), scaler)
    set_seed(0)
    model = DensePINN(TINY)
    cfg = TrainConfig(epochs=60, batch_size=16, lr=3e-3, patience=8, lr_patience=100,
                      min_delta=0.0, progress=False)
    result = fit(model, data, cfg, PhysicsConfig.off(), device="cpu")
    val_losses = [h["val_loss"] for h in result.history]
    assert 1 < result.best_epoch < len(val_losses)
    assert result.stopped_early and len(val_losses) == result.best_epoch + cfg.patience
    assert result.best_val_loss == min(val_losses) < val_losses[-1]
    x_val, y_val = data.arrays("val")
    restored = float(((predict(model, x_val) - y_val) ** 2).mean())
    assert restored == pytest.approx(result.best_val_loss, rel=1e-5)


def test_after_step_runs_after_every_step_and_can_enforce_a_mask(make_data):
    data = make_data(val=2, test=2, rows=40)
    set_seed(0)
    model = DensePINN(TINY)
    first = model.network[0].weight
    mask = (torch.arange(first.numel()).reshape(first.shape) % 2).float()
    calls = []

    def apply_mask(m):
        calls.append(1)
        with torch.no_grad():
            m.network[0].weight.mul_(mask)

    result = fit(model, data, FAST, PHYS, device="cpu", after_step=apply_mask)
    steps_per_epoch = -(-len(data.frames["train"]) // FAST.batch_size)
    assert len(calls) == result.optimizer_steps == steps_per_epoch * len(result.history)
    w = model.network[0].weight.detach()
    assert torch.all(w[mask == 0] == 0) and torch.count_nonzero(w[mask == 1]) > 0


def test_predict_shape_mode_and_evaluate_units(make_data):
    data = make_data(val=2, test=2, rows=40)
    model, _ = run(0, data)
    model.train()
    x, _ = data.arrays("test")
    pred = predict(model, x, "cpu", batch_size=7)  # chunking must not change the result
    assert pred.shape == (len(x), 2) and pred.dtype == np.float32
    assert model.training  # predict restores the caller's mode
    np.testing.assert_allclose(pred, predict(model, x, "cpu"), rtol=1e-6, atol=1e-6)
    report = evaluate_model(model, data, "test", "cpu")
    true = data.targets("test")
    phys = data.scaler.inverse_y(pred)
    rmse_wear = float(np.sqrt(((phys[:, 0] - true[:, 0]) ** 2).mean()))
    assert report.per_output[TARGETS[0]].rmse == pytest.approx(rmse_wear, rel=1e-5)
    assert report.n == len(x)


def test_nan_targets_and_bad_configs_are_spinn_errors(make_data):
    data = make_data(val=2, test=2, rows=40)
    data.frames["train"].loc[3, TARGETS[0]] = np.nan
    with pytest.raises(SpinnError, match="NaN"):
        fit(DensePINN(TINY), data, FAST, PHYS, device="cpu")
    with pytest.raises(SpinnError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(SpinnError, match="loss became"):
        fit(DensePINN(TINY), make_data(val=2, test=2, rows=40), with_overrides(FAST, lr=1e30, grad_clip_norm=0.0),
            PHYS, device="cpu")


def test_report_meta_and_history_table_carry_the_contract_keys(make_data):
    from spinn_utils.core.io import to_jsonable
    from spinn_utils.training.fit import TrainConfig as TC
    from spinn_utils.training.fit import checkpoint_meta, history_frame, training_report

    data = make_data(val=2, test=2, rows=40)
    model, result = run(0, data)
    val = evaluate_model(model, data, "val", "cpu")
    report = training_report(model, data, FAST, PHYS, result, val_metrics=val, seed=0,
                             environment={"device": "cpu"})
    assert report.params.total == sum(p.numel() for p in model.parameters())  # a DenseTraining record
    assert report.best_epoch == result.best_epoch and len(report.history) == report.epochs_run
    assert report.val_metrics.mean_r2 == pytest.approx(val.mean_r2)
    meta = to_jsonable(checkpoint_meta(model, data, FAST, PHYS, val_metrics=val, seed=0))
    assert meta["params"]["total"] == sum(p.numel() for p in model.parameters())
    assert TC.from_dict(meta["train_config"]) == FAST
    assert PhysicsConfig.from_dict(meta["physics_config"]) == PHYS
    assert meta["model"]["hidden_dims"] == list(TINY.hidden_dims)
    table = history_frame(result.history)
    assert len(table) == len(result.history) and f"val_r2 {TARGETS[1]}" in table.columns


def test_predict_runs_the_model_on_the_requested_device():
    """Checkpoints load on the CPU; predicting on another device must move the model there
    (the "meta" device stands in for CUDA: it runs shapes only, so copying out fails)."""
    model = DensePINN(TINY)
    x = np.zeros((4, len(FEATURES)), dtype=np.float32)
    with pytest.raises(NotImplementedError):  # raised copying meta outputs back, not in forward
        predict(model, x, "meta")
    assert next(model.parameters()).device.type == "meta"
