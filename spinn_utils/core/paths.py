"""Where every stage reads and writes: the results contract, with names from the registry."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .registry import (
    CHECKPOINTS,
    DATA_FILES,
    EXECUTED_DIR,
    EXPORT_DIR,
    EXPORTS,
    FIGURE_FORMATS,
    FIGURE_NAMES,
    MANIFEST,
    METRICS,
    PREDICTIONS_FILE,
    TABLE1,
    TABLE2,
    TABLE_FORMATS,
    names,
)


def checkpoint_file(name: str) -> str:
    """``checkpoint_file(CHECKPOINTS.dense)`` -> ``checkpoints/dense_pinn.pt`` (relative to the root)."""
    return f"checkpoints/{name}.pt"


def metric_file(name: str) -> str:
    """``metric_file(METRICS.pruning)`` -> ``metrics/pruning.json`` (relative to the root)."""
    return f"metrics/{name}.json"


# The contract's files, relative to the results root, grouped by folder.
DATA_PATHS = tuple(f"data/{f}" for f in DATA_FILES)
EXPORT_PATHS = tuple(f"{EXPORT_DIR}/{e}.{ext}" for e in names(EXPORTS) for ext in ("onnx", "json"))
PREDICTIONS_PATH = f"metrics/{PREDICTIONS_FILE}"
TABLE_PATHS = tuple(f"tables/{t}.{fmt}" for t in (TABLE1, TABLE2) for fmt in TABLE_FORMATS)
FIGURE_PATHS = tuple(f"figures/{n}.{fmt}" for n in FIGURE_NAMES for fmt in FIGURE_FORMATS)


@dataclass(frozen=True)
class ResultsPaths:
    """The folders and files of one run (``results/`` by default)."""

    root: Path

    @classmethod
    def at(cls, results_dir: str | os.PathLike = "results") -> ResultsPaths:
        return cls(Path(results_dir).expanduser())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def executed(self) -> Path:
        return self.root / EXECUTED_DIR

    @property
    def exports(self) -> Path:
        return self.root / EXPORT_DIR

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def predictions(self) -> Path:
        """metrics/test_predictions.csv (notebook 08)"""
        return self.root / PREDICTIONS_PATH

    def checkpoint(self, name: str) -> Path:
        """``checkpoint(CHECKPOINTS.dense)`` -> results/checkpoints/dense_pinn.pt"""
        return self.root / checkpoint_file(name)

    def metric(self, name: str) -> Path:
        """``metric(METRICS.pruning)`` -> results/metrics/pruning.json"""
        return self.root / metric_file(name)

    def export(self, name: str) -> Path:
        """``export(EXPORTS.structured)`` -> results/export/spinn_structured.onnx (sidecar: .json)"""
        return self.exports / f"{name}.onnx"

    def table(self, fmt: str, name: str = TABLE1) -> Path:
        return self.tables / f"{name}.{fmt}"

    def figure(self, name: str, fmt: str) -> Path:
        return self.figures / f"{name}.{fmt}"

    def ensure(self) -> ResultsPaths:
        for d in (self.data, self.checkpoints, self.metrics, self.figures, self.tables):
            d.mkdir(parents=True, exist_ok=True)
        return self


def contract_files() -> tuple[str, ...]:
    """Paths (relative to the results root) notebooks 01-09 write before the checklist."""
    return (
        *DATA_PATHS,
        *(checkpoint_file(c) for c in names(CHECKPOINTS)),
        *EXPORT_PATHS,
        *(metric_file(m) for m in names(METRICS) if m != METRICS.validation_checklist),
        PREDICTIONS_PATH,
        *TABLE_PATHS,
        *FIGURE_PATHS,
    )
