"""Every name a run writes or reads: artifacts (files under results/) and model variants.

One place spells each name; modules, notebooks and tests import it from here. A model has one
name everywhere (JSON keys, table columns, figure legends):

    dense             DensePINN, dense storage (checkpoints/dense_pinn.pt)
    spinn_masked      unstructured SPINN: dense storage holding zeros (spinn_pruned.pt)
    spinn_coo         the same weights as torch.sparse COO (the original design; spinn_sparse_final.pt)
    spinn_csr         the same weights as CSR
    spinn_semi24      2:4 semi-structured, fp16, CUDA capability >= 8.0 only
    spinn_structured  structured SPINN: physically smaller layers (spinn_structured.pt)
    dense_ort              dense, exported to ONNX and run by ONNX Runtime (export/dense_pinn.onnx)
    spinn_structured_ort   structured SPINN in ONNX Runtime: the deployable model
                           (export/spinn_structured.onnx)
"""
from __future__ import annotations

from dataclasses import astuple, dataclass


@dataclass(frozen=True)
class CheckpointNames:
    """``results/checkpoints/<name>.pt``"""

    dense: str = "dense_pinn"  # notebook 02
    pruned: str = "spinn_pruned"  # 03: unstructured, dense storage with zeros
    structured: str = "spinn_structured"  # 03: physically smaller layers
    sparse: str = "spinn_sparse_final"  # 05.5: the pruned weights in sparse storage


@dataclass(frozen=True)
class MetricNames:
    """``results/metrics/<name>.json``, in the order the notebooks write them."""

    data_summary: str = "data_summary"  # 01
    dense_training: str = "dense_training"  # 02
    pruning: str = "pruning"  # 03
    artifacts: str = "artifacts"  # 04
    model_verification: str = "model_verification"  # 05
    sparse_conversion: str = "sparse_conversion_report"  # 05.5
    gpu_benchmark: str = "gpu_benchmark"  # 06
    cpu_benchmark: str = "cpu_benchmark"  # 07
    test_evaluation: str = "test_evaluation"  # 08
    validation_checklist: str = "validation_checklist"  # 09


@dataclass(frozen=True)
class VariantNames:
    """Model variants: one name per model in every JSON, table and figure."""

    dense: str = "dense"
    masked: str = "spinn_masked"
    coo: str = "spinn_coo"
    csr: str = "spinn_csr"
    semi24: str = "spinn_semi24"
    structured: str = "spinn_structured"
    dense_ort: str = "dense_ort"
    structured_ort: str = "spinn_structured_ort"


@dataclass(frozen=True)
class BaselineNames:
    """Reference models scored beside the variants (notebook 08): is the network, and its
    physics loss, worth anything?"""

    train_mean: str = "train_mean"  # predicts the training split's mean of each target
    linear: str = "linear"  # ridge regression on the same scaled inputs
    no_physics: str = "no_physics"  # DensePINN with every physics weight 0, same schedule and seed


@dataclass(frozen=True)
class ExportNames:
    """``results/export/<name>.onnx`` and its sidecar ``<name>.json`` (notebook 05.5)."""

    dense: str = "dense_pinn"
    structured: str = "spinn_structured"


@dataclass(frozen=True)
class FigureNames:
    """``results/figures/<name>.{png,pdf}`` (notebook 09)"""

    parameters: str = "parameters"
    r2_per_output: str = "r2_per_output"
    latency_vs_batch: str = "latency_vs_batch"
    predicted_vs_measured: str = "predicted_vs_measured"
    wear_over_time: str = "wear_over_time"
    pruning_progression: str = "pruning_progression"


CHECKPOINTS = CheckpointNames()
METRICS = MetricNames()
VARIANTS = VariantNames()
FIGURES = FigureNames()
EXPORTS = ExportNames()
BASELINES = BaselineNames()

DATA_FILES = ("train.csv", "val.csv", "test.csv", "scaler.json", "features.json")  # data/, by 01
PREDICTIONS_FILE = "test_predictions.csv"  # metrics/, by 08: what the prediction figures plot
TABLE1 = "table1"  # tables/table1.{md,tex,csv}, by 09
TABLE2 = "table2"  # tables/table2.{md,tex,csv}: baselines and physics consistency, by 09
TABLE_FORMATS = ("md", "tex", "csv")
FIGURE_FORMATS = ("png", "pdf")
MANIFEST = "manifest.json"  # written by the driver
EXECUTED_DIR = "executed"  # executed notebooks, by the driver
ARCHIVE_DIR = "archive"  # zips of a run, by 04
EXPORT_DIR = "export"  # ONNX models and their sidecars, by 05.5

# Checkpoint kinds (the "kind" header of a checkpoint file).
KINDS = ("dense", "pruned", "structured", "sparse")
# Variant -> (checkpoint it is loaded from, that checkpoint's kind). CSR and 2:4 are built
# from the pruned weights at benchmark time and are not saved.
VARIANT_CHECKPOINTS = {
    VARIANTS.dense: (CHECKPOINTS.dense, "dense"),
    VARIANTS.masked: (CHECKPOINTS.pruned, "pruned"),
    VARIANTS.coo: (CHECKPOINTS.sparse, "sparse"),
    VARIANTS.structured: (CHECKPOINTS.structured, "structured"),
}
# ONNX Runtime variant -> (the export it runs, the PyTorch variant it must reproduce).
ORT_VARIANTS = {
    VARIANTS.dense_ort: (EXPORTS.dense, VARIANTS.dense),
    VARIANTS.structured_ort: (EXPORTS.structured, VARIANTS.structured),
}
DENSE_STORAGE_VARIANTS = (VARIANTS.dense, VARIANTS.masked, VARIANTS.structured)
UNSTRUCTURED_VARIANTS = (VARIANTS.masked, VARIANTS.coo, VARIANTS.csr)  # same pruned weights
SPARSE_TENSOR_VARIANTS = (VARIANTS.coo, VARIANTS.csr, VARIANTS.semi24)  # torch.sparse layouts
SEMI24_FORMAT = "semi24"  # the benchmark's 2:4 format name (not a SparseLinear layout)


def names(group) -> tuple[str, ...]:
    """Every name of a registry group (``names(METRICS)``), in declaration order."""
    return astuple(group)


FIGURE_NAMES = names(FIGURES)


def sparse_artifacts(fmt: str) -> tuple[str, str]:
    """(checkpoint stem, report stem) of a conversion to ``fmt``: COO keeps the contract's names,
    another format carries its name, so converting to CSR never replaces the COO files."""
    if fmt == "coo":
        return CHECKPOINTS.sparse, METRICS.sparse_conversion
    return f"{CHECKPOINTS.sparse}_{fmt}", f"{METRICS.sparse_conversion}_{fmt}"


def sparse_variant(fmt: str) -> str:
    """The variant name of the pruned weights in sparse format ``fmt`` ("coo" -> "spinn_coo")."""
    return f"spinn_{fmt}"

