"""Every name a run writes or reads: artifacts (files under results/) and model variants.

A model has ONE name everywhere: checkpoint file and ``kind``, JSON key, export, table and figure
key. ``MODEL_VARIANTS`` holds one record per variant; every list of variants is read from it.
Files named by spinn-utils 0.1 load too (``LEGACY_STEMS``, ``LEGACY_KINDS``).
"""
from __future__ import annotations

import sys
from dataclasses import astuple, dataclass
from functools import cache


@dataclass(frozen=True)
class VariantNames:
    """Model variants: one name per model in every file, JSON, table and figure."""

    dense: str = "dense"
    masked: str = "spinn_masked"
    coo: str = "spinn_coo"
    csr: str = "spinn_csr"
    semi24: str = "spinn_semi24"
    structured: str = "spinn_structured"
    dense_ort: str = "dense_ort"
    structured_ort: str = "spinn_structured_ort"
    structured_int8_ort: str = "spinn_structured_int8_ort"


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
class BaselineNames:
    """Reference models scored beside the variants (notebook 08): is the network, and its
    physics loss, worth anything?"""

    train_mean: str = "train_mean"  # predicts the training split's mean of each target
    linear: str = "linear"  # ridge regression on the same scaled inputs
    no_physics: str = "no_physics"  # DensePINN with every physics weight 0, same schedule and seed
    physics_only: str = "physics_only"  # the lumped thermal model and Archard's law, no learning
    soft_physics: str = "soft_physics"  # DensePINN with the physics in its loss (when the run's is hard)
    hard_physics: str = "hard_physics"  # DensePINN with the physics by construction (when the run's is soft)


@dataclass(frozen=True)
class FigureNames:
    """``results/figures/<name>.{png,pdf}`` (notebook 09)"""

    parameters: str = "parameters"
    r2_per_output: str = "r2_per_output"
    latency_vs_batch: str = "latency_vs_batch"
    predicted_vs_measured: str = "predicted_vs_measured"
    wear_over_time: str = "wear_over_time"
    pruning_progression: str = "pruning_progression"


@dataclass(frozen=True)
class SweepFigureNames:
    """``<results>/sweep/figures/<name>.{png,pdf}`` (the sparsity sweep: spinn-run sweep, notebook 10)"""

    accuracy: str = "sweep_accuracy_vs_sparsity"
    latency: str = "sweep_latency_vs_sparsity"
    pareto: str = "sweep_accuracy_vs_latency"


@dataclass(frozen=True)
class ModelVariant:
    """Every fact the package states about one model variant; each list of variants below is
    read from ``MODEL_VARIANTS``."""

    name: str
    label: str  # in Table 1, Table 2 and the figures
    short: str  # in Table 3 and the sweep's checks and figures
    colour: str  # in every figure (ONNX Runtime: a darker shade of the PyTorch model's colour)
    runtime: str  # "torch" or "onnxruntime"
    storage: str  # weight layout: "dense", "coo", "csr", "semi24" (2:4, fp16) or "int8"
    pruning: str  # "none", "unstructured", "2:4" (cut from the unstructured weights) or "structured"
    reference: str  # the variant whose outputs it must reproduce (itself for a dense-storage model)
    export: str | None = None  # onnxruntime: the file it runs, export/<export>.onnx (+ .json sidecar)
    saved: bool = False  # checkpoints/<name>.pt, with kind <name>, written by notebook 02, 03 or 05.5
    tested: bool = False  # scored on the test split (notebook 08 and every sweep point)
    swept: bool = False  # timed at every sweep point
    deployable: bool = False  # what a user deploys: a column of Table 1


VARIANTS = VariantNames()
INT8_EXPORT = "spinn_structured_int8"  # export/<this>.onnx: the structured export in int8 (05.5)
_V = VARIANTS
MODEL_VARIANTS = (
    ModelVariant(_V.dense, "Dense PINN", "dense", "#0072B2", "torch", "dense", "none", _V.dense,
                 saved=True, tested=True, swept=True),
    ModelVariant(_V.masked, "SPINN (masked)", "masked", "#E69F00", "torch", "dense", "unstructured", _V.masked,
                 saved=True, tested=True, swept=True),
    ModelVariant(_V.coo, "SPINN (COO)", "COO", "#D55E00", "torch", "coo", "unstructured", _V.masked,
                 saved=True, tested=True, swept=True),
    ModelVariant(_V.csr, "SPINN (CSR)", "CSR", "#CC79A7", "torch", "csr", "unstructured", _V.masked, swept=True),
    ModelVariant(_V.semi24, "SPINN (2:4, fp16)", "2:4", "#56B4E9", "torch", "semi24", "2:4", _V.masked),
    ModelVariant(_V.structured, "SPINN (structured)", "structured", "#009E73", "torch", "dense", "structured",
                 _V.structured, saved=True, tested=True, swept=True),
    ModelVariant(_V.dense_ort, "Dense PINN (ONNX Runtime)", "dense ORT", "#003F7D", "onnxruntime", "dense",
                 "none", _V.dense, export=_V.dense),
    ModelVariant(_V.structured_ort, "SPINN structured (ONNX Runtime)", "structured ORT", "#00573F", "onnxruntime",
                 "dense", "structured", _V.structured, export=_V.structured, tested=True, swept=True,
                 deployable=True),
    ModelVariant(_V.structured_int8_ort, "SPINN structured int8 (ONNX Runtime)", "structured int8 ORT", "#7A5C00",
                 "onnxruntime", "int8", "structured", _V.structured, export=INT8_EXPORT, tested=True,
                 swept=True, deployable=True),
)
VARIANT = {v.name: v for v in MODEL_VARIANTS}  # variant name -> its record
LABELS = {v.name: v.label for v in MODEL_VARIANTS}  # the one label of each variant in tables and figures
METRICS = MetricNames()
FIGURES = FigureNames()
BASELINES = BaselineNames()
SWEEP_FIGURES = SweepFigureNames()

_TORCH = tuple(v for v in MODEL_VARIANTS if v.runtime == "torch")
_ORT = tuple(v for v in MODEL_VARIANTS if v.runtime == "onnxruntime")
# CSR and 2:4 are rebuilt from spinn_masked where they are timed (the conversion CLI can save CSR as spinn_csr.pt).
SAVED_VARIANTS = tuple(v.name for v in MODEL_VARIANTS if v.saved)
TEST_VARIANTS = tuple(v.name for v in MODEL_VARIANTS if v.tested)
SWEPT_VARIANTS = tuple(v.name for v in MODEL_VARIANTS if v.swept)
DEPLOYABLE_VARIANTS = tuple(v.name for v in MODEL_VARIANTS if v.deployable)
DENSE_STORAGE_VARIANTS = tuple(v.name for v in _TORCH if v.storage == "dense")
UNSTRUCTURED_VARIANTS = tuple(v.name for v in _TORCH if v.pruning == "unstructured")  # same pruned weights
SPARSE_TENSOR_VARIANTS = tuple(v.name for v in _TORCH if v.storage != "dense")  # torch.sparse layouts
ORT_VARIANTS = {v.name: v.reference for v in _ORT}  # ONNX Runtime variant -> the variant it reproduces
ORT_EXPORTS = {v.name: v.export for v in _ORT}  # ONNX Runtime variant -> the file it runs
EXPORTED_VARIANTS = tuple(v.export for v in _ORT if v.export == v.reference)  # exported from their checkpoints
QUANTIZED_EXPORTS = {v.export: v.reference for v in _ORT if v.export != v.reference}  # -> its fp32 export
SEMI24_FORMAT = "semi24"  # the benchmark's 2:4 format name (not a SparseLinear layout)

# spinn-utils 0.1's checkpoint file stems and kinds -> the variant name (kind "sparse" is
# spinn_coo or spinn_csr by the checkpoint's format: ``sparse_variant``).
LEGACY_STEMS = {"dense_pinn": VARIANTS.dense, "spinn_pruned": VARIANTS.masked,
                "spinn_sparse_final": VARIANTS.coo, "spinn_sparse_final_csr": VARIANTS.csr}
LEGACY_KINDS = {"pruned": VARIANTS.masked, "structured": VARIANTS.structured}
LEGACY_SPARSE_KIND = "sparse"


def legacy_stems(variant: str) -> tuple[str, ...]:
    """The checkpoint stems spinn-utils 0.1 wrote for ``variant`` (``spinn_masked`` -> ``spinn_pruned``)."""
    return tuple(old for old, now in LEGACY_STEMS.items() if now == variant)


@cache
def legacy_note(line: str) -> None:
    """One note line on stderr per spinn-utils 0.1 file read (never repeated in a process)."""
    print(f"note: {line} (names changed in spinn-utils 0.2; see results/README.md)", file=sys.stderr)


DATA_FILES = ("train.csv", "val.csv", "test.csv", "scaler.json", "features.json")  # data/, by 01
PREDICTIONS_FILE = "test_predictions.csv"  # metrics/, by 08: what the prediction figures plot
TABLE1 = "table1"  # tables/table1.{md,tex,csv}, by 09
TABLE2 = "table2"  # tables/table2.{md,tex,csv}: baselines and physics consistency, by 09
TABLE3 = "table3"  # <results>/sweep/tables/table3.{md,tex,csv}: the sparsity sweep
TABLE_FORMATS = ("md", "tex", "csv")
SWEEP_DIR = "sweep"  # <results>/sweep/: seeds/<seed>/, points/<id>/, sweep.json, tables/, figures/
SWEEP_FILE = "sweep.json"  # <results>/sweep/sweep.json: every point's parameters, metrics and latency
RECOMMENDED_DIR = "recommended"  # <results>/recommended/: the model spinn-run recommend chose, retrained
RACE_DIR = "race"  # <results>/sweep/race/: the seeds spinn-run recommend added to close candidates
DEPLOY_CARD = "deploy_card.md"  # recommended/deploy_card.md (and DEPLOY_JSON): the deploy card
DEPLOY_JSON = "deploy.json"
RECOMMEND_FIGURE = "recommend_pareto"  # recommended/figures/<this>.{png,pdf}
FIGURE_FORMATS = ("png", "pdf")
MANIFEST = "manifest.json"  # written by the driver
EXECUTED_DIR = "executed"  # executed notebooks, by the driver
ARCHIVE_DIR = "archive"  # zips of a run, by 04
EXPORT_DIR = "export"  # ONNX models and their sidecars, by 05.5


def names(group) -> tuple[str, ...]:
    """Every name of a registry group (``names(METRICS)``), in declaration order."""
    return astuple(group)


FIGURE_NAMES = names(FIGURES)


def sparse_variant(fmt: str) -> str:
    """The variant name of the pruned weights in sparse format ``fmt`` ("coo" -> "spinn_coo")."""
    return f"spinn_{fmt}"


def sparse_report(fmt: str) -> str:
    """The conversion report's stem for ``fmt``: COO keeps the contract's name, another format
    carries its name, so converting to CSR never replaces the COO report."""
    return METRICS.sparse_conversion if fmt == "coo" else f"{METRICS.sparse_conversion}_{fmt}"
