"""Training: Adam, plateau LR schedule, early stopping that restores the best weights.

``fit`` minimises MSE on the scaled targets plus ``model.physics.physics_loss(...)["total"]``;
batches come from a seeded ``torch.Generator``, so one seed gives identical runs on CPU.
References: Kingma & Ba, "Adam", ICLR 2015; Prechelt, "Early stopping - but when?" (1998).
What notebook 02 writes besides the weights: ``checkpoint_meta`` and ``training_report``
(``metrics/dense_training.json``).
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn
from tqdm.auto import tqdm

from ..core.errors import SpinnError
from ..core.metrics import r2_score
from ..core.overrides import Count, CountOrZero, StageConfig, build_config
from ..core.results_schema import DenseTraining
from ..data.dataset import PreparedData, Scaler
from ..data.time_order import in_time_order
from ..model.counting import count_parameters
from ..model.inference import batched_forward
from ..model.physics import TERMS, PhysicsConfig, physics_loss
from ..model.sequence_head import head_constants, head_of
from ..model.sequences import sequence_of


class TrainConfig(StageConfig):
    epochs: Count = 120  # upper bound; early stopping usually ends sooner (~0.4 s/epoch on 2 CPUs)
    batch_size: Count = 256  # ~20 Adam steps per epoch on ~5k train rows; small batches generalise
    # Adam's usual default; stable for a 4-layer tanh MLP on standardised data
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    weight_decay: float = 0.0  # no explicit regularisation: pruning is the regulariser studied
    lr_factor: float = 0.5  # ReduceLROnPlateau: halve the LR when val loss stalls
    lr_patience: CountOrZero = 5  # epochs without improvement before halving (< patience below)
    min_lr: float = 1e-5  # below this Adam steps are too small to matter
    patience: Count = 20  # early stopping: epochs without val improvement before stopping
    min_delta: float = 1e-4  # an improvement smaller than this (scaled MSE) does not count
    grad_clip_norm: float = 5.0  # guards against rare large physics-term gradients; 0 = off
    eval_batch_size: Count = 4096  # validation/prediction chunk: bounds memory, not results
    seed: int = 42  # batch order (its own torch.Generator, independent of the init seed)
    # Hard-physics models integrate along whole experiments: a step sees this many of them
    # (about 1,000-1,500 windows), so an epoch of 11 train experiments is 4 steps.
    experiments_per_step: Count = 3
    # The hard head's constants (time constant, gain, idle minutes, initial wear; in log space)
    # are physical quantities: at the body's rate they would move 3e-4 per step, i.e. not at all.
    head_lr: float = Field(1e-2, gt=0, allow_inf_nan=False)
    progress: bool = True  # tqdm bar over epochs with a loss postfix

    @classmethod
    def smoke_test(cls) -> TrainConfig:
        return cls(epochs=3, batch_size=64, patience=2, lr_patience=1)


HARD_LR = 3e-4  # a hard model's steps move further: at 1e-3 val loss jumped (docs/physics.md)


def train_config_for(physics: str, smoke: bool = False, **knobs) -> TrainConfig:
    """The TrainConfig of a model with ``physics`` ("soft" | "hard"): defaults < knobs (None: unset)."""
    knobs = {k: v for k, v in knobs.items() if v is not None}
    if physics == "hard":
        knobs.setdefault("lr", HARD_LR)
    return build_config(TrainConfig, smoke, **knobs)


@dataclass
class TrainResult:
    history: list[dict]  # one dict per epoch (see fit)
    best_epoch: int  # 1-based epoch whose weights the model holds after fit
    best_val_loss: float  # validation data MSE (scaled targets) at best_epoch
    seconds: float  # wall time of the whole fit
    stopped_early: bool  # True when patience ran out before cfg.epochs
    train_rows: int
    val_rows: int
    optimizer_steps: int
    device: str


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


@dataclass
class _Step:
    """What one optimizer step needs besides the batch (fixed for a whole fit)."""

    cfg: TrainConfig
    physics: PhysicsConfig
    scaler: Scaler
    optimizer: torch.optim.Optimizer
    after_step: Callable[[nn.Module], None] | None
    desc: str
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None  # consecutive train windows (wear_sequence)
    pair_gen: torch.Generator | None = None  # its own generator: the batch order stays as without it


def sequence_pairs(data: PreparedData) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions in the train arrays of (a window, the next window of the same experiment), in
    time order: (experiment, run, time), i.e. cumulative time (``data/time_order.py``)."""
    frame = data.frames["train"].reset_index(drop=True)
    order = in_time_order(frame, data.group_col, data.run_col, data.time_col)
    groups, idx = order[data.group_col].to_numpy(), order.index.to_numpy()
    same = groups[1:] == groups[:-1]
    return torch.as_tensor(idx[:-1][same]), torch.as_tensor(idx[1:][same])


def _sample_pairs(step: _Step, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    if step.pairs is None:
        return None
    earlier, later = step.pairs
    pick = torch.randint(len(earlier), (int(step.physics.subsample),), generator=step.pair_gen)
    return x[earlier[pick].to(x.device)], x[later[pick].to(x.device)]


def _train_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batches: list[torch.Tensor],
                 step: _Step, epoch: int, seq: torch.Tensor | None) -> dict[str, float]:
    """One optimizer step per batch of row positions; returns row-weighted mean losses per term.
    ``seq`` (a hard-physics model's sequence columns) goes to the model with the inputs."""
    model.train()
    active = [t for t in TERMS if getattr(step.physics, f"{t}_weight") > 0]  # off terms: no column
    sums = dict.fromkeys(("train_loss", "data_loss", "physics_loss", *active), 0.0)
    for idx in batches:
        xb = x[idx]
        pred = model(xb) if seq is None else model(xb, seq[idx])
        data_loss = nn.functional.mse_loss(pred, y[idx])
        phys = physics_loss(model, xb, step.scaler, step.physics, _sample_pairs(step, x))
        loss = data_loss + phys["total"]
        if not torch.isfinite(loss):
            raise SpinnError(
                f"{step.desc}: loss became {loss.item()} at epoch {epoch} (lr={step.cfg.lr}); "
                "lower the learning rate or the physics weights"
            )
        step.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step.cfg.grad_clip_norm > 0:
            nn.utils.clip_grad_norm_(model.parameters(), step.cfg.grad_clip_norm)
        step.optimizer.step()
        if step.after_step is not None:
            step.after_step(model)
        w = len(idx) / len(x)  # weight by rows so the epoch mean is over samples
        sums["train_loss"] += w * loss.item()
        sums["data_loss"] += w * data_loss.item()
        sums["physics_loss"] += w * phys["total"].item()
        for name in active:
            sums[name] += w * phys[name].item()
    return sums


def _validate(model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor, cfg: TrainConfig,
              target_names: list[str], seq_val: torch.Tensor | None) -> tuple[float, dict]:
    """(validation data MSE on scaled targets, R2 per target)."""
    model.eval()
    if seq_val is not None:
        with torch.inference_mode():
            pred_val = model(x_val, seq_val)
    else:
        pred_val = batched_forward(model, x_val, cfg.eval_batch_size)
    val_loss = nn.functional.mse_loss(pred_val, y_val).item()
    # R2 is invariant to the per-column affine scaling, so scaled R2 = physical R2.
    val_r2 = r2_score(y_val.cpu().numpy(), pred_val.float().cpu().numpy())
    return val_loss, {t: float(r) for t, r in zip(target_names, val_r2)}


def _batches(n: int, seq: torch.Tensor | None, cfg: TrainConfig, gen: torch.Generator,
             device: torch.device) -> list[torch.Tensor]:
    """One epoch's batches of row positions: shuffled rows, or with ``seq`` (a hard model's
    sequence columns) whole experiments in a shuffled order, ``cfg.experiments_per_step`` a step."""
    if seq is None:
        return torch.randperm(n, generator=gen).to(device).split(cfg.batch_size)
    starts = torch.nonzero(seq[:, 0] > 0).flatten().cpu()  # experiment starts
    spans = torch.arange(n).tensor_split(starts)[1:]
    order, per = torch.randperm(len(spans), generator=gen), cfg.experiments_per_step
    return [torch.cat([spans[int(k)] for k in order[i:i + per]]).to(device)
            for i in range(0, len(spans), per)]


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam over the model; a physics head's constants get ``cfg.head_lr`` and no weight decay."""
    head = head_of(model)
    head_params = set() if head is None else {id(p) for p in head.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in head_params]}]
    if head is not None:
        groups.append({"params": list(head.parameters()), "lr": cfg.head_lr, "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


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
    """Train ``model`` in place on ``data``'s "train" split, stopping early on "val"; it ends
    holding the best epoch's weights. ``physics``: the loss weights (a hard-physics model trains
    without); ``after_step(model)`` runs after every optimizer step (pruning re-applies its masks).
    History rows: ``epoch, train_loss, data_loss, physics_loss``, each active physics term
    (unweighted), ``val_loss, val_r2 {target: r2}, lr, seconds``."""
    device = torch.device(device)
    model.to(device)
    x_train, y_train = _tensors(data, "train", device)
    x_val, y_val = _tensors(data, "val", device)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    optimizer = _optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
    )
    seq_train = seq_val = None
    if head_of(model) is not None:  # the physics holds by construction: no soft term applies
        physics = PhysicsConfig.off()
        seq_train, seq_val = (torch.as_tensor(sequence_of(data, s), device=device) for s in ("train", "val"))
    step = _Step(cfg, physics, data.scaler, optimizer, after_step, desc)
    if physics.wear_sequence_weight > 0:
        step.pairs, step.pair_gen = sequence_pairs(data), torch.Generator().manual_seed(int(cfg.seed) + 1)
    history, stopped_early = [], False
    best_loss, best_epoch, best_state, since_best = math.inf, 0, None, 0  # early stopping
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, disable=not cfg.progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        batches = _batches(len(x_train), seq_train, cfg, gen, device)
        sums = _train_epoch(model, x_train, y_train, batches, step, epoch, seq_train)
        val_loss, val_r2 = _validate(model, x_val, y_val, cfg, data.target_names, seq_val)
        lr_now = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        history.append({"epoch": epoch, **sums, "val_loss": val_loss, "val_r2": val_r2,
                        "lr": lr_now, "seconds": time.perf_counter() - t0})
        if val_loss < best_loss - cfg.min_delta:
            best_loss, best_epoch, since_best = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since_best += 1
        stopped_early = since_best >= cfg.patience
        bar.set_postfix(loss=f"{sums['train_loss']:.4f}", val=f"{val_loss:.4f}", best=best_epoch)
        if stopped_early:
            break
    bar.close()
    if best_state is None:  # only a NaN validation loss never improves on inf
        last = history[-1]["val_loss"]
        raise SpinnError(f"{desc}: validation loss never improved from inf (last {last})")
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        history=history, best_epoch=best_epoch, best_val_loss=best_loss,
        seconds=time.perf_counter() - start, stopped_early=stopped_early, train_rows=len(x_train),
        val_rows=len(x_val), optimizer_steps=len(batches) * len(history), device=str(device),
    )


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
        **vars(result),
        epochs_run=len(result.history),
        val_metrics=val_metrics,
        seed=int(seed),
        data_source=data.meta.get("source"),
        thermal_source=data.meta.get("thermal_source"),
        environment=environment,
    )
