"""Baselines scored on the same test split as every variant (notebook 08; docs/physics.md).

``train_mean`` (the training split's mean), ``linear`` (closed-form ridge regression on the same
standardised inputs), ``no_physics`` (the DensePINN trained with every physics weight at 0: what
the physics loss adds), ``physics_only`` (no learning: the hard-physics head with a body that
outputs 0, the thermal model's textbook constants and Archard's law fitted on the training split)
and ``soft_physics`` / ``hard_physics`` (the DensePINN with the other physics option than the
run's). Each is a module on scaled inputs and outputs, scored and physics-checked like the variants.
"""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from ..core.env import set_seed
from ..core.metrics import regression_report
from ..core.overrides import StageConfig, with_overrides
from ..core.registry import BASELINES
from ..core.results_schema_eval import Baselines
from ..data.dataset import PreparedData
from ..data.thermal import ThermalModel
from ..model.inference import model_sequence, predict
from ..model.mlp import DensePINN, ModelConfig
from ..model.physics import PhysicsConfig
from ..model.sequence_head import PhysicsHead, WithHead, segment_cumsum
from ..model.sequences import COOLING_MIN, build_model, sequence_of
from ..training.fit import HARD_LR, TrainConfig, fit


class BaselineConfig(StageConfig):
    # On standardised inputs: shrinks the 18 weights a little, nothing more.
    ridge_alpha: float = Field(1.0, ge=0)

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


class ZeroBody(nn.Module):
    """A body that outputs 0 for every row: the head's rates are then its starting ones."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x), 2)


def physics_only_model(data: PreparedData, cooling_step_min: float = 0.5, cooling_max_min: float = 15.0) -> nn.Module:
    """The physics-only baseline (module docstring), fitted on the training split."""
    cooling_grid = np.arange(0.0, cooling_max_min + 1e-9, cooling_step_min)  # idle minutes tried
    seq = sequence_of(data, "train")
    wear = data.targets("train")[:, 0]
    # Cumulative kW-minutes since each experiment's start: the head's wear integral at rate 1.
    energy = segment_cumsum(torch.as_tensor(seq[:, 2] * seq[:, 3]), torch.as_tensor(seq[:, 0])).numpy()
    k, w0 = np.linalg.lstsq(np.column_stack([energy, np.ones(len(energy))]), wear, rcond=None)[0]
    thermal = ThermalModel()
    y = torch.as_tensor(data.scaler.transform_y(data.frames["train"]), dtype=torch.float64)

    def model_with(cooling: float) -> nn.Module:
        head = PhysicsHead(data.scaler.y_mean, data.scaler.y_std, thermal.tau_min, thermal.gain_um_per_kw,
                           max(float(cooling), 1e-6), max(float(k), 1e-9))
        with torch.no_grad():
            head.wear0.copy_(torch.log(torch.expm1(torch.tensor(max(float(w0), 1e-6), dtype=torch.float64))))
        return WithHead(ZeroBody(), head).eval()

    with torch.no_grad():  # the idle minutes between runs are not observed: fit them on train
        errors = [float(((model_with(c)(torch.zeros(len(seq), 1), torch.as_tensor(seq))[:, 1] - y[:, 1]) ** 2)
                        .mean()) for c in cooling_grid]
    return model_with(cooling_grid[int(np.argmin(errors))] if len(seq) else COOLING_MIN)


def no_physics_model(data: PreparedData, model_cfg: ModelConfig, train_cfg: TrainConfig,
                     seed: int, device) -> tuple[DensePINN, dict]:
    """DensePINN trained on the data loss alone, same widths, schedule and seed as the dense one."""
    set_seed(seed)
    model = DensePINN(with_overrides(model_cfg, physics="soft"))
    soft_cfg = train_cfg if model_cfg.physics == "soft" else with_overrides(train_cfg, lr=TrainConfig().lr)
    result = fit(model, data, soft_cfg, PhysicsConfig.off(), device=device, desc=BASELINES.no_physics)
    return model.eval(), _record(result)


def _record(result) -> dict:
    return {"best_epoch": result.best_epoch, "epochs_run": len(result.history), "seconds": result.seconds}


def other_physics_model(data: PreparedData, model_cfg: ModelConfig, train_cfg: TrainConfig,
                        physics_cfg: PhysicsConfig, seed: int, device) -> tuple[str, DensePINN, dict]:
    """(name, model, record) of the DensePINN with the other physics option than ``model_cfg``'s."""
    other = "soft" if model_cfg.physics == "hard" else "hard"
    name = BASELINES.soft_physics if other == "soft" else BASELINES.hard_physics
    set_seed(seed)
    model = build_model(with_overrides(model_cfg, physics=other), data)
    lr = HARD_LR if other == "hard" else TrainConfig().lr
    result = fit(model, data, with_overrides(train_cfg, lr=lr), physics_cfg, device=device, desc=name)
    return name, model.eval(), _record(result)


def baseline_models(data: PreparedData, cfg: BaselineConfig, model_cfg: ModelConfig,
                    train_cfg: TrainConfig, seed: int, device,
                    physics_cfg: PhysicsConfig | None = None) -> tuple[dict[str, nn.Module], dict]:
    """({baseline name: model on scaled inputs}, {"no_physics": its training record, ...})."""
    no_physics, record = no_physics_model(data, model_cfg, train_cfg, seed, device)
    models = {BASELINES.train_mean: train_mean_model(data), BASELINES.linear: linear_model(data, cfg),
              BASELINES.physics_only: physics_only_model(data), BASELINES.no_physics: no_physics}
    records = {BASELINES.no_physics: record}
    if physics_cfg is not None:
        name, other, other_record = other_physics_model(data, model_cfg, train_cfg, physics_cfg, seed, device)
        models[name], records[name] = other, other_record
    return models, {**records, "config": cfg}


def score_baselines(data: PreparedData, cfg: BaselineConfig, model_cfg: ModelConfig,
                    train_cfg: TrainConfig, seed: int, device, split: str = "test",
                    physics_cfg: PhysicsConfig | None = None) -> tuple[Baselines, dict]:
    """(the ``Baselines`` record: each baseline's scores, its training and the config; the fitted
    models); with ``physics_cfg`` the other physics option is trained and scored too."""
    models, record = baseline_models(data, cfg, model_cfg, train_cfg, seed, device, physics_cfg)
    x, _ = data.arrays(split)
    reports = {name: regression_report(
        data.targets(split), data.scaler.inverse_y(predict(m, x, device, sequence=model_sequence(m, data, split))),
        data.target_names) for name, m in models.items()}
    return Baselines(models=reports, split=split, **record), models
