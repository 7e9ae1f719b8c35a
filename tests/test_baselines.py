"""Baselines (train mean, ridge, the no-physics ablation) and physics consistency of predictions."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from spinn_utils.core.registry import BASELINES
from spinn_utils.data.dataset import make_prepared
from spinn_utils.data.prepare import physics_support
from spinn_utils.data.schema import (
    CUM_TIME_COL,
    DEFAULT_FEATURES,
    GROUP_COL,
    RUN_START_COL,
    TARGETS,
    DataConfig,
)
from spinn_utils.data.thermal import ThermalModel
from spinn_utils.evaluation.baselines import (
    BaselineConfig,
    linear_model,
    physics_only_model,
    score_baselines,
    train_mean_model,
)
from spinn_utils.evaluation.consistency import physics_consistency, wear_decrease_fraction
from spinn_utils.model.inference import model_sequence, predict
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.physics import PhysicsConfig
from spinn_utils.model.sequence_numpy import sequence_columns
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
    assert set(report.models) == {BASELINES.train_mean, BASELINES.linear, BASELINES.physics_only,
                                     BASELINES.no_physics}
    assert report.models[BASELINES.train_mean].mean_r2 < 0.1  # the mean explains nothing new
    assert isinstance(models[BASELINES.no_physics], DensePINN) and report.no_physics.epochs_run >= 1


def test_the_other_physics_option_is_trained_beside_the_run_s(make_data):
    data = make_data(rows=12)
    data.meta["physics"] = physics_support(DataConfig(), "synthetic")
    report, models = score_baselines(data, BaselineConfig(), TINY, FAST, seed=0, device="cpu",
                                     physics_cfg=PhysicsConfig())
    hard = models[BASELINES.hard_physics]  # the run's model is soft: the hard one is the baseline
    assert hard.cfg.physics == "hard" and hard.head is not None
    assert report.hard_physics.epochs_run >= 1
    assert report.models[BASELINES.hard_physics].n == len(data.frames["test"])


def test_physics_only_recovers_archard_and_the_thermal_model():
    """On data made by the physics itself (no noise), the physics-only baseline is exact: wear
    from the fitted Archard coefficient, displacement from the thermal model."""
    rng = np.random.default_rng(0)
    thermal, k, frames = ThermalModel(), 0.01, {}
    for split, groups in (("train", [0, 1, 2]), ("val", [3]), ("test", [4])):
        parts = []
        for g in groups:
            n = 60
            frame = pd.DataFrame(rng.normal(size=(n, len(DEFAULT_FEATURES))), columns=list(DEFAULT_FEATURES))
            frame[GROUP_COL] = g
            frame[CUM_TIME_COL] = np.cumsum(np.full(n, 0.1))
            frame[RUN_START_COL] = (np.arange(n) % 10 == 0).astype(int)
            frame["smc_dc_mean"] = rng.uniform(3.0, 8.0, n)
            power = thermal.power_kw_from_current(frame["smc_dc_mean"].to_numpy())
            seq = sequence_columns(np.full(n, g), frame[CUM_TIME_COL], frame[RUN_START_COL], power)
            frame[TARGETS[0]] = 0.05 + k * np.cumsum(power * seq[:, 2])
            delta, prev = np.zeros(n), 0.0
            for i in range(n):
                prev = 0.0 if i == 0 else (thermal.step(prev, 0.0, 4.0) if seq[i, 1] else prev)
                prev = float(thermal.step(prev, power[i], seq[i, 2]))
                delta[i] = prev
            frame[TARGETS[1]] = delta
            parts.append(frame)
        frames[split] = pd.concat(parts, ignore_index=True)
    data = make_prepared(frames, DEFAULT_FEATURES, TARGETS, meta={"physics": {"power_col": "smc_dc_mean",
                                                                              "power_unit": "A"}})
    model = physics_only_model(data)
    x, _ = data.arrays("test")
    predicted = data.scaler.inverse_y(predict(model, x, sequence=model_sequence(model, data, "test")))
    assert np.abs(predicted - data.targets("test")).max() < 1e-6
    assert model.head.constants()["cooling_min"] == pytest.approx(4.0)


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
        entry = out.models[name]
        assert 0.0 <= entry.wear_decrease_fraction <= 1.0 and entry.thermal_ode_residual_rms_um > 0
    assert out.models["a"].thermal_ode_residual_rms_um != out.models["b"].thermal_ode_residual_rms_um
    off = physics_consistency(models, data, PhysicsConfig(), thermal_supported=False)
    assert off.models["a"].thermal_ode_residual_rms_um is None
