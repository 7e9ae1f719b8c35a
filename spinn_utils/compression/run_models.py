"""``load_run_models``, the one loader of a run's saved models (verification, benchmarks,
evaluation): it refuses a missing file, a checkpoint of another kind and, given the data, one
trained with another scaler or column order. Never imports ``onnx`` (only ONNX Runtime).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import SpinnError
from ..core.paths import ResultsPaths
from ..core.registry import (
    DENSE_STORAGE_VARIANTS,
    ORT_EXPORTS,
    ORT_VARIANTS,
    SAVED_VARIANTS,
    VARIANTS,
)
from ..data.dataset import PreparedData, Scaler
from ..model.checkpoints import load_dense_model
from ..model.onnx_predictor import OnnxPredictor
from ..model.sequence_head import body_of, with_saved_head
from .sparse import load_sparse_model


@dataclass
class RunModels:
    """Models of one run keyed by variant name, each with its checkpoint meta and file."""

    models: dict[str, nn.Module] = field(default_factory=dict)
    metas: dict[str, dict] = field(default_factory=dict)  # an ONNX export shares its source's meta
    paths: dict[str, Path] = field(default_factory=dict)


def check_scaler(meta: dict, data: PreparedData, name: str) -> None:
    """A model trained with another scaler or feature order would score garbage: refuse it."""
    saved = meta.get("scaler")
    if not saved:
        return  # older checkpoints carry no scaler; the data's own is the only choice
    saved = Scaler.from_dict(saved)  # a malformed scaler is a SpinnError here
    for key in ("feature_names", "target_names"):
        if list(getattr(saved, key)) != list(getattr(data, key)):
            raise SpinnError(f"{name}: checkpoint {key} {getattr(saved, key)} differ from the "
                             f"prepared data's {getattr(data, key)}")
    for key in ("x_mean", "x_std", "y_mean", "y_std"):
        if not np.allclose(getattr(saved, key), getattr(data.scaler, key), rtol=1e-6, atol=1e-9):
            raise SpinnError(f"{name}: checkpoint scaler {key} differs from the prepared data's; "
                             "re-run notebooks 02-05.5 on this data")


class OnnxModule(nn.Module):
    """An export as a module on scaled inputs/outputs, so it is checked and scored like the rest,
    on as many intra-op threads as torch has; ``source``, the PyTorch model it was exported from,
    holds the same weights (bytes, FLOPs and parameters are counted from it)."""

    def __init__(self, path: str | Path, source: nn.Module, scaler: Scaler) -> None:
        super().__init__()
        self.source, self.scaler = source, scaler
        self.predictor = OnnxPredictor(path)
        if self.predictor.feature_names != list(scaler.feature_names):
            raise SpinnError(f"{path}: features {self.predictor.feature_names} differ from the "
                             f"scaler's {scaler.feature_names}; re-run notebook 05.5")

    def raw_inputs(self, x_scaled: torch.Tensor) -> np.ndarray:
        x = x_scaled.detach().cpu().double().numpy()
        return (x * self.scaler.x_std + self.scaler.x_mean).astype(np.float32)

    def forward(self, x_scaled: torch.Tensor) -> torch.Tensor:
        y = self.predictor.run(self.raw_inputs(x_scaled), torch.get_num_threads())
        return torch.from_numpy(self.scaler.transform_y(y))


def load_export(paths: ResultsPaths, name: str, source: nn.Module, meta: dict) -> OnnxModule:
    """The ONNX Runtime variant ``name`` (CPU provider), scored and timed like ``source``, the
    PyTorch model it was exported from (``meta``: that model's checkpoint meta)."""
    path = paths.export(ORT_EXPORTS[name])
    if not path.is_file():
        raise SpinnError(f"{path} not found (run notebook 05.5, which exports it)")
    if not meta.get("scaler"):
        raise SpinnError(f"{name}: the checkpoint it was exported from carries no scaler")
    return OnnxModule(path, source, Scaler.from_dict(meta["scaler"])).eval()


def load_run_models(paths: ResultsPaths, variants: Iterable[str], device: str | torch.device = "cpu",
                    *, data: PreparedData | None = None) -> RunModels:
    """The named variants of the run in ``paths`` (``SAVED_VARIANTS``, ``spinn_csr`` or
    ``ORT_VARIANTS``, whose PyTorch source is loaded too), in eval mode on ``device`` (ONNX
    Runtime on the CPU), keyed in the order asked for; given ``data``, each scaler must be its."""
    variants = list(variants)
    loadable = (*SAVED_VARIANTS, VARIANTS.csr, *ORT_VARIANTS)
    unknown = [v for v in variants if v not in loadable]
    if unknown:
        raise SpinnError(f"no saved model for variant(s) {unknown}; known: {list(loadable)}")
    device = torch.device(device)
    sources = [ORT_VARIANTS[v] for v in variants if v in ORT_VARIANTS]
    loaded = RunModels()
    for name in dict.fromkeys([*sources, *variants]):
        if name in ORT_VARIANTS:
            reference = ORT_VARIANTS[name]
            meta = loaded.metas[reference]
            model = with_saved_head(load_export(paths, name, body_of(loaded.models[reference]), meta), meta)
            path = paths.export(ORT_EXPORTS[name])
        else:  # the kind is the variant: a CSR file where spinn_coo belongs is refused
            path = paths.stored_checkpoint(name)
            load = load_dense_model if name in DENSE_STORAGE_VARIANTS else load_sparse_model
            model, ckpt = load(path, name)
            meta = ckpt.meta
            if data is not None:
                check_scaler(meta, data, name)
            model = with_saved_head(model, meta).to(device).eval()
        loaded.models[name], loaded.metas[name], loaded.paths[name] = model, meta, path
    return RunModels(**{key: {v: getattr(loaded, key)[v] for v in variants}
                        for key in ("models", "metas", "paths")})
