"""Baselines scored on the same test split as every variant (notebook 08).

- ``train_mean``: the training split's mean of each target (R2 <= 0 on any other split);
- ``linear``: ridge regression on the same standardised inputs (closed form);
- ``no_physics``: the same DensePINN, trained with every physics weight at 0, with the dense
  model's schedule and seed: the ablation that says what the physics loss adds.

Each is a module on scaled inputs and outputs, so it is scored exactly like the variants
(``holdout.evaluate_test``) and its physics consistency measured the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.env import set_seed
from ..core.errors import SpinnError
from ..core.metrics import regression_report
from ..core.registry import BASELINES
from ..data.dataset import PreparedData
from ..model.inference import predict
from ..model.mlp import DensePINN, ModelConfig
from ..model.physics import PhysicsConfig
from ..training.fit import TrainConfig, fit


@dataclass(frozen=True)
class BaselineConfig:
    ridge_alpha: float = 1.0  # on standardised inputs: shrinks the 18 weights a little, nothing more

    def __post_init__(self) -> None:
        if not self.ridge_alpha >= 0:
            raise SpinnError(f"ridge_alpha must be >= 0, got {self.ridge_alpha}")

    @classmethod
    def smoke_test(cls) -> BaselineConfig:
        return cls()


def train_mean_model(data: PreparedData) -> nn.Module:
    """Predicts the training mean: zero in the train-fitted scaled units, for every row."""
    model = nn.Linear(len(data.feature_names), len(data.target_names))
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()  # the scaler was fitted on train: the train mean is 0 in its units
    return model.eval()


def linear_model(data: PreparedData, cfg: BaselineConfig) -> nn.Module:
    """Ridge regression of the scaled targets on the scaled inputs of the training split."""
    x, y = (a.astype(np.float64) for a in data.arrays("train"))
    design = np.column_stack([x, np.ones(len(x))])
    penalty = cfg.ridge_alpha * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    coef = np.linalg.solve(design.T @ design + penalty, design.T @ y)
    model = nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        model.weight.copy_(torch.as_tensor(coef[:-1].T, dtype=torch.float32))
        model.bias.copy_(torch.as_tensor(coef[-1], dtype=torch.float32))
    return model.eval()


def no_physics_model(data: PreparedData, model_cfg: ModelConfig, train_cfg: TrainConfig,
                     seed: int, device) -> tuple[DensePINN, dict]:
    """DensePINN trained on the data loss alone, same widths, schedule and seed as the dense one."""
    set_seed(seed)
    model = DensePINN(model_cfg)
    result = fit(model, data, train_cfg, PhysicsConfig.off(), device=device, desc=BASELINES.no_physics)
    return model.eval(), {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                          "seconds": result.seconds}


def baseline_models(data: PreparedData, cfg: BaselineConfig, model_cfg: ModelConfig,
                    train_cfg: TrainConfig, seed: int, device) -> tuple[dict[str, nn.Module], dict]:
    """({baseline name: model on scaled inputs}, {"no_physics": its training record})."""
    no_physics, record = no_physics_model(data, model_cfg, train_cfg, seed, device)
    models = {BASELINES.train_mean: train_mean_model(data), BASELINES.linear: linear_model(data, cfg),
              BASELINES.no_physics: no_physics}
    return models, {BASELINES.no_physics: record, "config": cfg}


def score_baselines(data: PreparedData, cfg: BaselineConfig, model_cfg: ModelConfig,
                    train_cfg: TrainConfig, seed: int, device, split: str = "test") -> tuple[dict, dict]:
    """(``{"models": {name: regression_report}, "training", "config"}``, the fitted models)."""
    models, record = baseline_models(data, cfg, model_cfg, train_cfg, seed, device)
    x, _ = data.arrays(split)
    reports = {name: regression_report(data.targets(split), data.scaler.inverse_y(predict(m, x, device)),
                                       data.target_names) for name, m in models.items()}
    return {"models": reports, "split": split, **record}, models
