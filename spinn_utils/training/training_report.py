"""What notebook 02 writes: the dense checkpoint's meta and ``metrics/dense_training.json``."""
from __future__ import annotations

import pandas as pd
from torch import nn

from ..core.results_schema import DenseTraining
from ..data.dataset import PreparedData
from ..model.counting import count_parameters
from ..model.physics import PhysicsConfig
from ..model.sequence_head import head_constants
from .fit import TrainConfig, TrainResult


def history_frame(history: list[dict]) -> pd.DataFrame:
    """One row per epoch; ``val_r2`` becomes one ``val_r2 <target>`` column per output."""
    rows = [{**{k: v for k, v in h.items() if k != "val_r2"},
             **{f"val_r2 {t}": r for t, r in h.get("val_r2", {}).items()}} for h in history]
    return pd.DataFrame(rows).set_index("epoch") if rows else pd.DataFrame()


def checkpoint_meta(
    model: nn.Module, data: PreparedData, train_cfg: TrainConfig, physics_cfg: PhysicsConfig,
    *, val_metrics: dict, seed: int,
) -> dict:
    """``meta`` of ``checkpoints/dense_pinn.pt``: what rebuilds the model and its units."""
    return {
        "model": model.cfg,
        "feature_names": list(data.feature_names),
        "target_names": list(data.target_names),
        "scaler": data.scaler.to_dict(),
        "train_config": train_cfg,
        "physics_config": physics_cfg,
        "val_metrics": val_metrics,
        "seed": int(seed),
        "params": count_parameters(model),
        "physics_head": head_constants(model),
    }


def training_report(
    model: nn.Module, data: PreparedData, train_cfg: TrainConfig, physics_cfg: PhysicsConfig,
    result: TrainResult, *, val_metrics: dict, seed: int, environment: dict,
) -> DenseTraining:
    """The ``metrics/dense_training.json`` record (``core.results_schema.DenseTraining``)."""
    return DenseTraining(
        model=model.cfg,
        params=count_parameters(model),
        train_config=train_cfg,
        physics_config=physics_cfg,
        **result.to_dict(),
        epochs_run=len(result.history),
        val_metrics=val_metrics,
        seed=int(seed),
        data_source=data.meta.get("source"),
        thermal_source=data.meta.get("thermal_source"),
        environment=environment,
    )
