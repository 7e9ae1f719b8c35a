"""Bytes of a model's weights as stored now and as they would be dense or in each sparse format.

Every byte counts: values, indices and offsets, plus the dense biases (``model.counting``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..model.counting import dense_view, storage_bytes, weight_bias_pairs, weighted_layers
from .sparse import FORMATS, to_format


def weight_storage_report(model: nn.Module, formats: Sequence[str] = FORMATS) -> dict:
    """Per-layer counts and bytes: as stored now, and as the model would take dense or in each format.

    Returns:
        ``{"per_layer": [{"layer", "shape", "layout", "total", "nonzero", "sparsity", "bias",
        "stored_bytes", "bias_bytes", "bytes": {"dense", fmt...}}], "total_bytes": int (as
        stored), "bytes_by_format": {"dense", fmt...}}``; totals include the (dense) biases.
    """
    rows = []
    totals = dict.fromkeys(("dense", *formats), 0)
    for (name, _), (w, b) in zip(weighted_layers(model), weight_bias_pairs(model)):
        dense_w = dense_view(w)
        bias_bytes = 0 if b is None else storage_bytes(b)
        nonzero = int(torch.count_nonzero(dense_w))
        layer_bytes = {"dense": storage_bytes(dense_w)}
        layer_bytes.update({f: storage_bytes(to_format(dense_w, f)) for f in formats})
        for key, n in layer_bytes.items():
            totals[key] += n + bias_bytes
        rows.append({
            "layer": name, "shape": list(dense_w.shape), "layout": str(w.layout).replace("torch.", ""),
            "total": dense_w.numel(), "nonzero": nonzero, "sparsity": 1.0 - nonzero / dense_w.numel(),
            "bias": 0 if b is None else b.numel(), "bias_bytes": bias_bytes,
            "stored_bytes": storage_bytes(w),  # weights only, as the model holds them now
            "bytes": layer_bytes,  # weights only, per format
        })
    stored = sum(r["stored_bytes"] + r["bias_bytes"] for r in rows)
    return {"per_layer": rows, "total_bytes": stored, "bytes_by_format": totals}
