"""Training: Adam, plateau LR schedule, early stopping that restores the best weights.

``fit`` trains any model mapping standardised inputs to standardised targets on a
``PreparedData``: loss = MSE on the scaled targets + ``physics.physics_loss(...)["total"]``.
Batches come from a seeded ``torch.Generator``, so two runs with one seed are identical on
CPU. Early stopping watches the validation data MSE (scaled targets) and, at the end,
loads a deep copy of the best epoch's state_dict back into the model. ``after_step(model)``
runs after every optimizer step; pruning uses it to re-apply its masks.

References: Kingma & Ba, "Adam", ICLR 2015; Prechelt, "Early stopping - but when?" (1998).
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import SpinnError
from .data import PreparedData
from .evaluate import r2_score, regression_report
from .models import count_parameters
from .physics import TERMS, PhysicsConfig, physics_loss


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 120  # upper bound; early stopping usually ends sooner (~0.4 s/epoch on 2 CPUs)
    batch_size: int = 256  # ~20 Adam steps per epoch on ~5k train rows; small batches generalise
    lr: float = 1e-3  # Adam's usual default; stable for a 4-layer tanh MLP on standardised data
    weight_decay: float = 0.0  # no explicit regularisation: pruning is the regulariser studied
    lr_factor: float = 0.5  # ReduceLROnPlateau: halve the LR when val loss stalls
    lr_patience: int = 5  # epochs without improvement before halving (< patience below)
    min_lr: float = 1e-5  # below this Adam steps are too small to matter
    patience: int = 20  # early stopping: epochs without val improvement before stopping
    min_delta: float = 1e-4  # an improvement smaller than this (scaled MSE) does not count
    grad_clip_norm: float = 5.0  # guards against rare large physics-term gradients; 0 = off
    eval_batch_size: int = 4096  # validation/prediction chunk: bounds memory, not results
    seed: int = 42  # batch order (its own torch.Generator, independent of the init seed)
    progress: bool = True  # tqdm bar over epochs with a loss postfix

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise SpinnError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SpinnError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.patience < 1 or self.lr_patience < 0:
            raise SpinnError(
                f"patience must be >= 1 and lr_patience >= 0, got {self.patience}, {self.lr_patience}"
            )

    @classmethod
    def smoke_test(cls) -> TrainConfig:
        return cls(epochs=3, batch_size=64, patience=2, lr_patience=1)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**d)


@dataclass
class TrainResult:
    history: list[dict]  # one dict per epoch (see fit)
    best_epoch: int  # 1-based epoch whose weights the model holds after fit
    best_val_loss: float  # validation data MSE (scaled targets) at best_epoch
    seconds: float  # wall time of the whole fit
    stopped_early: bool = False  # True when patience ran out before cfg.epochs
    extra: dict = field(default_factory=dict)  # rows, steps, device: for the results JSON

    def to_dict(self) -> dict:
        return {
            "history": self.history, "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss, "seconds": self.seconds,
            "stopped_early": self.stopped_early, **self.extra,
        }


def _tensors(data: PreparedData, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as float32 tensors on ``device``; NaN/inf in it is a user error."""
    x, y = data.arrays(split)
    if len(x) == 0:
        raise SpinnError(f"split {split!r} has no rows; training needs train and val rows")
    for what, arr in (("inputs", x), ("targets", y)):
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(axis=1).sum())
            raise SpinnError(f"split {split!r} has {bad} rows with NaN/inf {what}; clean them first")
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def _predict_tensor(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def predict(
    model: nn.Module, X_scaled: np.ndarray, device: str | torch.device = "cpu",
    batch_size: int = 4096,
) -> np.ndarray:
    """Model outputs (scaled units, float32) for standardised inputs, under inference_mode.

    The model is moved to ``device`` (checkpoints load on the CPU; a GPU run predicts there).
    """
    device = torch.device(device)
    model.to(device)
    x = torch.as_tensor(np.asarray(X_scaled, dtype=np.float32), device=device)
    if x.ndim != 2:
        raise SpinnError(f"X_scaled must be 2-D (rows, features), got shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        out = _predict_tensor(model, x, batch_size)
    finally:
        model.train(was_training)
    return out.float().cpu().numpy()


def evaluate_model(
    model: nn.Module, data: PreparedData, split: str, device: str | torch.device = "cpu"
) -> dict:
    """``evaluate.regression_report`` of one split, in physical units (mm, um)."""
    x, _ = data.arrays(split)
    y_pred = data.scaler.inverse_y(predict(model, x, device))
    return regression_report(data.targets(split), y_pred, data.target_names)


def fit(
    model: nn.Module,
    data: PreparedData,
    cfg: TrainConfig,
    physics: PhysicsConfig,
    *,
    device: str | torch.device,
    after_step: Callable[[nn.Module], None] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` in place on ``data["train"]``, stop early on ``data["val"]``.

    Args:
        model: maps standardised inputs to standardised targets (e.g. DensePINN).
        data: splits "train" and "val" plus the train-fitted scaler.
        cfg: optimiser, schedule, early stopping, batch order seed.
        physics: physics-loss weights (``PhysicsConfig.off()`` for data loss only).
        device: where to train; the model is moved there.
        after_step: called as ``after_step(model)`` after every optimizer step.
        desc: label of the progress bar.

    Returns:
        TrainResult; history rows hold ``epoch, train_loss, data_loss, physics_loss``, each
        physics term (unweighted), ``val_loss, val_r2 {target: r2}, lr, seconds``. The model
        ends holding the best epoch's weights.
    """
    device = torch.device(device)
    model.to(device)
    x_train, y_train = _tensors(data, "train", device)
    x_val, y_val = _tensors(data, "val", device)
    n = len(x_train)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
    )
    history: list[dict] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    since_best, stopped_early, steps = 0, False, 0
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, disable=not cfg.progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        sums = dict.fromkeys(("train_loss", "data_loss", "physics_loss", *TERMS), 0.0)
        order = torch.randperm(n, generator=gen).to(device)
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            data_loss = nn.functional.mse_loss(model(xb), yb)
            phys = physics_loss(model, xb, data.scaler, physics)
            loss = data_loss + phys["total"]
            if not torch.isfinite(loss):
                raise SpinnError(
                    f"{desc}: loss became {loss.item()} at epoch {epoch} (lr={cfg.lr}); "
                    "lower the learning rate or the physics weights"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
            optimizer.step()
            steps += 1
            if after_step is not None:
                after_step(model)
            w = len(idx) / n  # weight by rows so the epoch mean is over samples
            sums["train_loss"] += w * loss.item()
            sums["data_loss"] += w * data_loss.item()
            sums["physics_loss"] += w * phys["total"].item()
            for name in TERMS:
                sums[name] += w * phys[name].item()

        model.eval()
        pred_val = _predict_tensor(model, x_val, cfg.eval_batch_size)
        val_loss = nn.functional.mse_loss(pred_val, y_val).item()
        # R2 is invariant to the per-column affine scaling, so scaled R2 = physical R2.
        val_r2 = r2_score(y_val.cpu().numpy(), pred_val.float().cpu().numpy())
        lr_now = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        row = {
            "epoch": epoch, **sums, "val_loss": val_loss,
            "val_r2": {t: float(r) for t, r in zip(data.target_names, val_r2)},
            "lr": lr_now, "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        if val_loss < best_loss - cfg.min_delta:
            best_loss, best_epoch, since_best = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{val_loss:.4f}", best=best_epoch)
        if since_best >= cfg.patience:
            stopped_early = True
            break
    bar.close()
    if best_state is None:  # only a NaN validation loss never improves on inf
        raise SpinnError(f"{desc}: validation loss never improved from inf (last {history[-1]['val_loss']})")
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        history=history, best_epoch=best_epoch, best_val_loss=best_loss,
        seconds=time.perf_counter() - start, stopped_early=stopped_early,
        extra={"train_rows": n, "val_rows": len(x_val), "optimizer_steps": steps,
               "device": str(device)},
    )


def history_frame(history: list[dict]) -> pd.DataFrame:
    """One row per epoch; ``val_r2`` becomes one ``val_r2 <target>`` column per output."""
    rows = []
    for h in history:
        row = {k: v for k, v in h.items() if k != "val_r2"}
        row.update({f"val_r2 {t}": r for t, r in h.get("val_r2", {}).items()})
        rows.append(row)
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
    }


def training_report(
    model: nn.Module, data: PreparedData, train_cfg: TrainConfig, physics_cfg: PhysicsConfig,
    result: TrainResult, *, val_metrics: dict, seed: int, environment: dict,
) -> dict:
    """The content of ``metrics/dense_training.json`` (keys in results/README.md)."""
    return {
        "model": model.cfg,
        "params": count_parameters(model),
        "train_config": train_cfg,
        "physics_config": physics_cfg,
        **result.to_dict(),
        "epochs_run": len(result.history),
        "val_metrics": val_metrics,
        "seed": int(seed),
        "data_source": data.meta.get("source"),
        "thermal_source": data.meta.get("thermal_source"),
        "environment": environment,
    }
