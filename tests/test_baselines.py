"""Baselines (train mean, ridge, the no-physics ablation) and physics consistency of predictions."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from spinn_utils.core.registry import BASELINES
from spinn_utils.data.physics_terms import physics_support
from spinn_utils.data.schema import TARGETS, DataConfig
from spinn_utils.evaluation.baselines import (
    BaselineConfig,
    linear_model,
    score_baselines,
    train_mean_model,
)
from spinn_utils.evaluation.consistency import physics_consistency, wear_decrease_fraction
from spinn_utils.model.inference import predict
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.physics import PhysicsConfig
from spinn_utils.training.fit import TrainConfig

TINY = ModelConfig(hidden_dims=(8, 8))
FAST = TrainConfig(epochs=2, batch_size=32, patience=5, progress=False)


def test_train_mean_predicts_the_training_mean(make_data):
    data = make_data()
    x, _ = data.arrays("test")
    pred = data.scaler.inverse_y(predict(train_mean_model(data), x))
    np.testing.assert_allclose(pred, np.tile(data.frames["train"][list(TARGETS)].mean().to_numpy(), (len(x), 1)))


def test_ridge_recovers_a_linear_target(make_data):
    data = make_data()
    for frame in data.frames.values():  # wear becomes an exact linear function of two inputs
        frame[TARGETS[0]] = 0.3 * frame["feed_mm_rev"] - 0.2 * frame["smc_ac_mean"] + 1.0
    data = dataclasses.replace(data, scaler=type(data.scaler).fit(data.frames["train"], data.feature_names, data.target_names))
    x, _ = data.arrays("test")
    pred = data.scaler.inverse_y(predict(linear_model(data, BaselineConfig(ridge_alpha=0.0)), x))
    np.testing.assert_allclose(pred[:, 0], data.targets("test")[:, 0], atol=1e-4)


def test_score_baselines_trains_the_ablation_without_physics(make_data):
    data = make_data(rows=12)
    report, models = score_baselines(data, BaselineConfig(), TINY, FAST, seed=0, device="cpu")
    assert set(report["models"]) == {BASELINES.train_mean, BASELINES.linear, BASELINES.no_physics}
    assert report["models"][BASELINES.train_mean]["mean_r2"] < 0.1  # the mean explains nothing new
    assert isinstance(models[BASELINES.no_physics], DensePINN) and report[BASELINES.no_physics]["epochs_run"] >= 1


def test_wear_decrease_fraction_follows_time_within_each_experiment():
    frame = pd.DataFrame({"g": [1, 1, 1, 2, 2, 2], "t": [3.0, 1.0, 2.0, 1.0, 2.0, 3.0]})
    rising = np.array([0.3, 0.1, 0.2, 0.1, 0.2, 0.3])  # rows shuffled in time: still monotone
    assert wear_decrease_fraction(rising, frame, "g", "t") == 0.0
    drops = np.array([0.3, 0.1, 0.2, 0.1, 0.05, 0.3])  # experiment 2 drops once of 4 steps
    assert wear_decrease_fraction(drops, frame, "g", "t") == pytest.approx(0.25)
    assert wear_decrease_fraction(drops + np.array([0, 0, 0, 0, 0.0495, 0]), frame, "g", "t", tol=1e-3) == 0.0


def test_physics_consistency_measures_what_the_data_supports(make_data):
    data = make_data(rows=12)
    data.meta["physics"] = physics_support(DataConfig(), "synthetic")
    torch.manual_seed(0)
    models = {"a": DensePINN(TINY), "b": DensePINN(TINY)}
    out = physics_consistency(models, data, PhysicsConfig(), thermal_supported=True)
    for name in models:
        entry = out["models"][name]
        assert 0.0 <= entry["wear_decrease_fraction"] <= 1.0 and entry["thermal_ode_residual_rms_um"] > 0
    assert out["models"]["a"]["thermal_ode_residual_rms_um"] != out["models"]["b"]["thermal_ode_residual_rms_um"]
    off = physics_consistency(models, data, PhysicsConfig(), thermal_supported=False)
    assert off["models"]["a"]["thermal_ode_residual_rms_um"] is None
