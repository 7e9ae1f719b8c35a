"""Small objects several test modules build the same way: a two-cell notebook, a tiny model, a
results folder with tiny checkpoints."""
from __future__ import annotations

from pathlib import Path

import nbformat
import torch

from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import VARIANTS
from spinn_utils.model.checkpoints import save_checkpoint
from spinn_utils.model.mlp import DensePINN, ModelConfig


def write_notebook(path: Path, params: str, body: str) -> Path:
    """A notebook with a tagged ``parameters`` cell and one code cell, for the driver's tests."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def tiny_model(seed: int, hidden=(16, 8)) -> DensePINN:
    """An eval-mode DensePINN with the default 18 inputs and small hidden layers, seeded."""
    torch.manual_seed(seed)
    return DensePINN(ModelConfig(hidden_dims=hidden)).eval()


def saved_run(root: Path, data, masked: DensePINN | None = None) -> ResultsPaths:
    """A results folder as notebooks 02 and 03 leave it: tiny dense (seed 0), spinn_masked
    (``masked``, else the dense weights) and spinn_structured (seed 1, 8-4) checkpoints with
    ``data``'s scaler; each records ``val_metrics`` {"mean_r2": len(its name)}."""
    paths = ResultsPaths.at(root).ensure()
    meta = {"scaler": data.scaler.to_dict(), "feature_names": data.feature_names, "target_names": data.target_names}
    models = {VARIANTS.dense: tiny_model(0), VARIANTS.masked: masked or tiny_model(0),
              VARIANTS.structured: tiny_model(1, (8, 4))}
    for name, model in models.items():
        save_checkpoint(paths.checkpoint(name), model, kind=name,
                        meta={**meta, "model": model.cfg, "val_metrics": {"mean_r2": float(len(name))}})
    return paths
