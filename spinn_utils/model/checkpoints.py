"""Checkpoints: ``{"format": "spinn-checkpoint", "version": 1, "kind", "state_dict", "meta"}``
saved with ``torch.save`` and read with ``torch.load(weights_only=True)``, so loading a file
cannot run code. ``meta`` (JSON-able) holds what rebuilds the model and its units: ``model``
(ModelConfig fields), ``feature_names``, ``target_names``, ``scaler``, configs and metrics.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..core.errors import SpinnError, first_line
from ..core.io import atomic_path, to_jsonable
from ..core.registry import (
    DENSE_STORAGE_VARIANTS,
    LEGACY_KINDS,
    LEGACY_SPARSE_KIND,
    VARIANTS,
    legacy_note,
    sparse_variant,
)
from .mlp import DensePINN, ModelConfig, config_from_state_dict, load_strict

KINDS = (*DENSE_STORAGE_VARIANTS, VARIANTS.coo, VARIANTS.csr)  # what a checkpoint may hold
FORMAT = "spinn-checkpoint"
VERSION = 1


class Meta(dict):
    """A checkpoint's meta: a plain dict whose keys also read as attributes (``meta.scaler``)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"checkpoint meta has no {name!r}") from None


@dataclass
class Checkpoint:
    kind: str  # the variant it holds (VARIANTS.*): the checkpoint file's stem too
    state_dict: dict[str, torch.Tensor]
    meta: Meta
    path: Path | None = None


def save_checkpoint(path: str | os.PathLike, model: nn.Module | dict, *, kind: str,
                    meta: dict) -> Path:
    """Save ``model`` (a module or a state_dict) of variant ``kind`` with JSON-able ``meta``."""
    if kind not in KINDS:
        raise SpinnError(f"checkpoint kind must be a saved variant {KINDS}, got {kind!r}")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    state = {k: v.detach().cpu() for k, v in state.items()}
    meta = to_jsonable(meta)
    json.dumps(meta, allow_nan=False)  # refuse anything that is not plain data, now
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "state_dict": state, "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)`` with every failure turned into one clear SpinnError."""
    if not path.is_file():
        raise SpinnError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise SpinnError(f"{path} is not a torch checkpoint (not a torch.save zip archive)")
    try:
        # Sparse weights are checked on load so a corrupt index cannot crash a kernel later.
        with torch.sparse.check_sparse_tensor_invariants():
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise SpinnError(f"{path} holds pickled code or objects, not just tensors and plain data "
                         "(refused by torch.load(weights_only=True))") from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise SpinnError(f"{path} is not a readable torch checkpoint: {first_line(err)}") from err


def load_state_dict_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Read either our checkpoint or a plain ``state_dict``; returns (state_dict, meta|None)."""
    path = Path(path)
    obj = _torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        ckpt = _checkpoint_from(obj, path)
        return ckpt.state_dict, ckpt.meta
    if isinstance(obj, dict) and obj and all(isinstance(k, str) and torch.is_tensor(v)
                                             for k, v in obj.items()):
        return obj, None
    raise SpinnError(f"{path} is neither a SPINN checkpoint nor a plain state_dict of tensors "
                     f"(found {type(obj).__name__})")


def load_checkpoint(path: str | os.PathLike, kind: str | tuple[str, ...] | None = None) -> Checkpoint:
    """Load one of our checkpoints; ``kind`` (or kinds) is what the caller expects."""
    path = Path(path)
    return _checkpoint_from(_torch_load(path), path, kind)


def _checkpoint_from(obj: object, path: Path, kind: str | tuple[str, ...] | None = None) -> Checkpoint:
    """Check an object read from ``path`` is one of our checkpoints (of ``kind``) and wrap it."""
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise SpinnError(f"{path} is not a SPINN checkpoint (no '{FORMAT}' header)")
    if obj.get("version") != VERSION:
        raise SpinnError(f"{path} has checkpoint version {obj.get('version')}, expected {VERSION}")
    state, meta, found = obj.get("state_dict"), obj.get("meta"), obj.get("kind")
    if not isinstance(state, dict) or not isinstance(meta, dict):
        raise SpinnError(f"{path} is missing its state_dict or meta")
    if found == LEGACY_SPARSE_KIND or found in LEGACY_KINDS:  # spinn-utils 0.1: "pruned", "sparse"
        now = (sparse_variant(str(meta.get("format", "coo"))) if found == LEGACY_SPARSE_KIND
               else LEGACY_KINDS[found])
        legacy_note(f"{path} has the earlier kind {found!r}: read as {now!r}")
        found = now
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and found not in wanted:
        raise SpinnError(f"{path} is a {found!r} checkpoint, expected {' or '.join(wanted)}")
    return Checkpoint(kind=found, state_dict=state, meta=Meta(meta), path=path)


def checked_config(ckpt: Checkpoint) -> ModelConfig:
    """``meta.model``, checked against the weights' shapes before anything is built (absurd
    widths must not allocate)."""
    try:
        cfg = ModelConfig.from_dict(ckpt.meta["model"])
    except (KeyError, TypeError, ValueError) as err:
        raise SpinnError(f"{ckpt.path}: meta['model'] is incomplete or malformed, or absent "
                         f"({first_line(err)}); it needs input_dim, hidden_dims, output_dim and "
                         "activation") from err
    found = config_from_state_dict(ckpt.state_dict, cfg.activation)
    if found.dims != cfg.dims:
        raise SpinnError(f"{ckpt.path}: meta['model'] says layer widths {list(cfg.dims)}, "
                         f"but the weights have {list(found.dims)}")
    return cfg


def load_dense_model(path: str | os.PathLike, kind: str | tuple[str, ...] | None = None):
    """(eval-mode DensePINN, checkpoint) of a dense-storage checkpoint (dense, spinn_masked or
    spinn_structured)."""
    ckpt = load_checkpoint(path, kind or DENSE_STORAGE_VARIANTS)
    model = DensePINN(checked_config(ckpt))
    load_strict(model, ckpt.state_dict, f"{path}: weights do not match meta['model']")
    return model.eval(), ckpt
