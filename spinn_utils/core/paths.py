"""Where every stage reads and writes: the results contract, with names from the registry."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .registry import (
    DATA_FILES,
    EXECUTED_DIR,
    EXPORT_DIR,
    EXPORTED_VARIANTS,
    FIGURE_FORMATS,
    FIGURE_NAMES,
    MANIFEST,
    PREDICTIONS_FILE,
    QUANTIZED_EXPORTS,
    TABLE1,
    TABLE2,
    TABLE_FORMATS,
    legacy_note,
    legacy_stems,
)


def checkpoint_file(name: str) -> str:
    """``checkpoint_file(VARIANTS.dense)`` -> ``checkpoints/dense.pt`` (relative to the root)."""
    return f"checkpoints/{name}.pt"


def metric_file(name: str) -> str:
    """``metric_file(METRICS.pruning)`` -> ``metrics/pruning.json`` (relative to the root)."""
    return f"metrics/{name}.json"


# The contract's files, relative to the results root, grouped by folder.
DATA_PATHS = tuple(f"data/{f}" for f in DATA_FILES)
EXPORT_PATHS = tuple(f"{EXPORT_DIR}/{e}.{ext}" for e in (*EXPORTED_VARIANTS, *QUANTIZED_EXPORTS)
                     for ext in ("onnx", "json"))
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

    # Folders and files of the run (one line each: a path below ``root``).
    data = property(lambda self: self.root / "data")
    checkpoints = property(lambda self: self.root / "checkpoints")
    metrics = property(lambda self: self.root / "metrics")
    figures = property(lambda self: self.root / "figures")
    tables = property(lambda self: self.root / "tables")
    executed = property(lambda self: self.root / EXECUTED_DIR)
    exports = property(lambda self: self.root / EXPORT_DIR)
    manifest = property(lambda self: self.root / MANIFEST)
    predictions = property(lambda self: self.root / PREDICTIONS_PATH)  # written by notebook 08

    def checkpoint(self, variant: str) -> Path:
        """``checkpoint(VARIANTS.dense)`` -> results/checkpoints/dense.pt (where it is written)"""
        return self.root / checkpoint_file(variant)

    def stored_checkpoint(self, variant: str) -> Path:
        """Where ``variant``'s checkpoint is read from: its own name, or the name an earlier
        version wrote (``spinn_pruned.pt`` for ``spinn_masked``), with one note line."""
        path = self.checkpoint(variant)
        if not path.exists():
            for stem in legacy_stems(variant):
                old = self.root / checkpoint_file(stem)
                if old.is_file():
                    legacy_note(f"{old} is read as {variant}'s checkpoint")
                    return old
        return path

    def metric(self, name: str) -> Path:
        """``metric(METRICS.pruning)`` -> results/metrics/pruning.json"""
        return self.root / metric_file(name)

    def export(self, variant: str) -> Path:
        """``export(VARIANTS.structured)`` -> results/export/spinn_structured.onnx (sidecar: .json)"""
        return self.exports / f"{variant}.onnx"

    def table(self, fmt: str, name: str = TABLE1) -> Path:
        return self.tables / f"{name}.{fmt}"

    def ensure(self) -> ResultsPaths:
        for d in (self.data, self.checkpoints, self.metrics, self.figures, self.tables):
            d.mkdir(parents=True, exist_ok=True)
        return self
