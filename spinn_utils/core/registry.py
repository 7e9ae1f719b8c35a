"""Every name a run writes or reads: artifacts (files under results/) and model variants.

One place spells each name; modules, notebooks and tests import it from here. A model has ONE
name everywhere: its checkpoint file (``checkpoints/<name>.pt``), the checkpoint's ``kind``, its
key in every JSON, its export (``export/<name>.onnx``), and the key of its table and figure label:

    dense             DensePINN, dense storage
    spinn_masked      unstructured SPINN: dense storage holding zeros
    spinn_coo         the same weights as torch.sparse COO (the original design)
    spinn_csr         the same weights as CSR
    spinn_semi24      2:4 semi-structured, fp16, CUDA capability >= 8.0 only (never saved)
    spinn_structured  structured SPINN: physically smaller layers
    dense_ort              ``dense``'s export run by ONNX Runtime
    spinn_structured_ort   ``spinn_structured``'s export in ONNX Runtime: the deployable model
    spinn_structured_int8_ort  that export quantized to int8 by ONNX Runtime
                           (``export/spinn_structured_int8.onnx``)

Files written under earlier names (``dense_pinn.pt``, ``spinn_pruned.pt``,
``spinn_sparse_final.pt``, kinds "pruned"/"sparse"/"structured") still load: ``LEGACY_STEMS``, ``LEGACY_KINDS``.
"""
from __future__ import annotations

import sys
from dataclasses import astuple, dataclass


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


VARIANTS = VariantNames()
# The one label of each variant in tables and figures (the variant name is the key everywhere else).
LABELS = {
    VARIANTS.dense: "Dense PINN",
    VARIANTS.masked: "SPINN (masked)",
    VARIANTS.coo: "SPINN (COO)",
    VARIANTS.csr: "SPINN (CSR)",
    VARIANTS.semi24: "SPINN (2:4, fp16)",
    VARIANTS.structured: "SPINN (structured)",
    VARIANTS.dense_ort: "Dense PINN (ONNX Runtime)",
    VARIANTS.structured_ort: "SPINN structured (ONNX Runtime)",
    VARIANTS.structured_int8_ort: "SPINN structured int8 (ONNX Runtime)",
}
METRICS = MetricNames()
FIGURES = FigureNames()
BASELINES = BaselineNames()
SWEEP_FIGURES = SweepFigureNames()

# Saved as checkpoints/<variant>.pt with kind <variant>, by the notebook that makes it (02, 03,
# 05.5). CSR and 2:4 are rebuilt from spinn_masked where they are timed (the conversion CLI can
# save CSR as spinn_csr.pt).
SAVED_VARIANTS = (VARIANTS.dense, VARIANTS.masked, VARIANTS.structured, VARIANTS.coo)
DENSE_STORAGE_VARIANTS = (VARIANTS.dense, VARIANTS.masked, VARIANTS.structured)
# ONNX Runtime variant -> the variant it reproduces (fp32: whose export/<variant>.onnx it runs).
ORT_VARIANTS = {VARIANTS.dense_ort: VARIANTS.dense, VARIANTS.structured_ort: VARIANTS.structured,
                VARIANTS.structured_int8_ort: VARIANTS.structured}
EXPORTED_VARIANTS = (VARIANTS.dense, VARIANTS.structured)  # exported from their checkpoints (05.5)
INT8_EXPORT = "spinn_structured_int8"  # export/<this>.onnx: the structured export in int8 (05.5)
QUANTIZED_EXPORTS = {INT8_EXPORT: VARIANTS.structured}  # quantized export -> the fp32 export it comes from
# ONNX Runtime variant -> the file it runs, export/<stem>.onnx (+ its .json sidecar).
ORT_EXPORTS = {VARIANTS.dense_ort: VARIANTS.dense, VARIANTS.structured_ort: VARIANTS.structured,
               VARIANTS.structured_int8_ort: INT8_EXPORT}
# What a user deploys (fp32 and int8 ONNX of structured SPINN): also timed standalone on CPU.
DEPLOYABLE_VARIANTS = (VARIANTS.structured_ort, VARIANTS.structured_int8_ort)
UNSTRUCTURED_VARIANTS = (VARIANTS.masked, VARIANTS.coo, VARIANTS.csr)  # same pruned weights
SPARSE_TENSOR_VARIANTS = (VARIANTS.coo, VARIANTS.csr, VARIANTS.semi24)  # torch.sparse layouts
SEMI24_FORMAT = "semi24"  # the benchmark's 2:4 format name (not a SparseLinear layout)

# What earlier versions wrote -> today's variant name: checkpoint file stems, and checkpoint kinds
# (the old kind "sparse" becomes spinn_coo or spinn_csr by the checkpoint's format: ``sparse_variant``).
LEGACY_STEMS = {"dense_pinn": VARIANTS.dense, "spinn_pruned": VARIANTS.masked,
                "spinn_sparse_final": VARIANTS.coo, "spinn_sparse_final_csr": VARIANTS.csr}
LEGACY_KINDS = {"pruned": VARIANTS.masked, "structured": VARIANTS.structured}
LEGACY_SPARSE_KIND = "sparse"
_NOTED: set[str] = set()


def legacy_stems(variant: str) -> tuple[str, ...]:
    """The checkpoint stems earlier versions wrote for ``variant`` (``spinn_masked`` -> ``spinn_pruned``)."""
    return tuple(old for old, now in LEGACY_STEMS.items() if now == variant)


def legacy_note(line: str) -> None:
    """One note line on stderr per earlier-version file read (never repeated in a process)."""
    if line not in _NOTED:
        _NOTED.add(line)
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
DEPLOY_CARD = "DEPLOY.md"  # recommended/DEPLOY.md (and DEPLOY_JSON): the deploy card
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
