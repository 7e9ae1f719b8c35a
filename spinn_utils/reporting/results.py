"""A run's results, read back: the JSONs of notebooks 01-08 and small readers over them.

Nothing here measures or trains: Table 1, the checklist and the figures read every number
through these functions from the files the earlier notebooks wrote (docs/architecture.md,
"Results contract"), so they can be rebuilt from any results folder. Results may be partial:
a file not written yet reads as None and its numbers as "not measured".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import SpinnError
from ..core.io import read_json
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, ORT_VARIANTS, UNSTRUCTURED_VARIANTS, VARIANTS, names

NOT_MEASURED = "not measured"
# Every metrics JSON written before the checklist (notebooks 01-08), by name.
METRIC_FILES = tuple(n for n in names(METRICS) if n != METRICS.validation_checklist)
BENCHMARKS = {"gpu": METRICS.gpu_benchmark, "cpu": METRICS.cpu_benchmark}


@dataclass(frozen=True)
class ReportConfig:
    """What Table 1 reads and the thresholds the checklist and claims are judged against."""

    batch_size: int = 1000  # the original design's Table 1 batch; the nearest measured batch if absent
    match_atol: float = 1e-4  # seed checklist: sparse predictions match within 1e-4
    gpu_speedup_min: float = 2.0  # seed checklist: "GPU speedup >= 2.0x (target 2.5x)"
    cpu_speedup_min: float = 2.5  # seed checklist: "CPU speedup >= 2.5x (target 3.3x)"
    seed_mean_r2: float = 0.86  # seed checklist: "R2 scores match previous training (0.86)"
    r2_tolerance: float = 0.02  # within this below 0.86 still "matches" (R2 is noisy per split)
    claimed_gpu_speedup: float = 2.5  # the paper text's GPU claim
    claimed_cpu_speedup: float = 3.3  # the paper text's CPU claim
    claimed_dense_r2: float = 0.48  # the paper text: "R2 0.48 -> 0.86"
    claimed_spinn_r2: float = 0.86
    claimed_r2_tolerance: float = 0.05  # how far a measured R2 may sit from a claimed one
    claimed_dense_mb: float = 2.67  # the paper text: "Memory 2.67 MB -> 0.84 MB" (1 MB = 1e6 B)
    claimed_spinn_mb: float = 0.84
    claimed_memory_tolerance: float = 0.05  # relative slack on the claimed SPINN memory
    edge_threads: int = 1  # edge devices have few cores: judge the edge claim single-threaded
    physics_margin: float = 0.01  # SPINN may break wear monotonicity at most 1 point more often than dense

    def __post_init__(self) -> None:
        for name in ("batch_size", "edge_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpinnError(f"{name} must be an integer >= 1, got {value!r}")

    @classmethod
    def smoke_test(cls) -> ReportConfig:
        """Same thresholds: they are the original design's, not a size; smoke benchmarks pick their batch."""
        return cls()


def load_results(paths: ResultsPaths) -> dict:
    """Every metrics JSON of a run by name (``METRICS``); a file not written (yet) is None."""
    out = {}
    for name in METRIC_FILES:
        path = paths.metric(name)
        out[name] = read_json(path, name) if path.is_file() else None
    return out


def dig(obj, *keys):
    """``obj[k1][k2]...`` or None where any level is missing (results may be partial)."""
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def bench_measured(bench: dict | None) -> bool:
    """True when a benchmark JSON holds timings (not skipped, not missing)."""
    return bool(bench) and not bench.get("skipped") and bool(bench.get("results"))


def bench_point(bench: dict, batch_size: int, threads: int | None = None) -> tuple[int, int | None]:
    """(batch, threads) to read: ``batch_size`` or the nearest measured; ``threads`` or the most."""
    rows = bench["results"]
    batches = sorted({int(r["batch_size"]) for r in rows})
    batch = min(batches, key=lambda b: (abs(math.log(b / batch_size)), -b))
    measured = sorted({r.get("threads") for r in rows if r["batch_size"] == batch} - {None})
    if threads is None or threads not in measured:
        threads = measured[-1] if measured else None
    return batch, threads


def timing(bench: dict, variant: str, batch: int, threads: int | None) -> dict | None:
    """The results row of one variant at one (batch, threads), or None if not timed."""
    for row in bench.get("results", []):
        if (row["variant"], row["batch_size"], row.get("threads")) == (variant, batch, threads):
            return row
    return None


def fastest_matching(
    bench: dict, batch: int, threads: int | None, names: tuple[str, ...] = UNSTRUCTURED_VARIANTS
) -> dict | None:
    """The quickest of ``names`` whose outputs matched its reference (a wrong answer is no win)."""
    variants = bench.get("variants", {})
    rows = [timing(bench, v, batch, threads) for v in names if dig(variants, v, "outputs_match")]
    return min((r for r in rows if r), key=lambda r: r["median_ms"], default=None)


def model_params(results: dict, variant: str) -> dict | None:
    """``count_parameters`` dict of one saved variant, from notebook 05 (COO: from 05.5; an
    ONNX export: from the model it was exported from)."""
    if variant == VARIANTS.coo:
        return dig(results, METRICS.sparse_conversion, "params")
    variant = ORT_VARIANTS.get(variant, variant)
    return dig(results, METRICS.model_verification, "models", variant, "params")


def weight_bytes(results: dict, variant: str) -> int | None:
    """Weight storage of a benchmark variant (values + indices + offsets), CPU JSON first."""
    for name in (METRICS.cpu_benchmark, METRICS.gpu_benchmark):
        value = dig(results, name, "variants", variant, "storage_bytes")
        if value is not None:
            return value
    fmt = {VARIANTS.dense: "dense", VARIANTS.coo: "coo", VARIANTS.csr: "csr"}.get(variant)
    return dig(results, METRICS.sparse_conversion, "storage_bytes", fmt) if fmt else None


def cv_summary(results: dict, model: str, over: str = "cross_validation") -> dict | None:
    """``{"mean", "std", ...}`` of the mean per-output R2 of "dense" or "spinn" over the CV folds
    (``over="cross_validation"``) or over the seeds on the fixed split (``over="seed_runs"``)."""
    return dig(results, METRICS.test_evaluation, over, model, "mean_r2")
