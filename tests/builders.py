"""Small objects several test modules build the same way: a two-cell notebook, a tiny model."""
from __future__ import annotations

from pathlib import Path

import nbformat
import torch

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
