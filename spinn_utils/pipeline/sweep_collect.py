"""After the training points: time every point one at a time, then gather ``sweep.json``'s rows.

The driver times the finished points after every training task (and an embedded cluster) has
stopped, with notebook 07's harness and a light ``BenchConfig``; a point's timing is kept in
``<point>/sweep_latency.json`` with the sha256 of what it timed, and reused on resume
(docs/sweeps.md, "Timing never beside training").
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil
from tqdm.auto import tqdm

from ..benchmark.bench_config import BenchConfig, available_cores
from ..benchmark.run import run_benchmark
from ..benchmark.variants import load_variants
from ..core.env import environment_info
from ..core.errors import SpinnError, first_line
from ..core.io import read_json, to_jsonable
from ..core.lineage import LINEAGE
from ..core.overrides import with_overrides
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, TEST_VARIANTS, VARIANTS
from ..core.results_files import read_result, write_result
from ..core.results_schema import Pruning, RegressionReport, Skipped
from ..core.results_schema_eval import Benchmark, TestEvaluation
from ..core.results_schema_sweep import SweepLatency
from ..reporting.sweep_report import BUSY_PERCENT, REPRESENTATIONS
from .sweep_tasks import THREAD_VARS, UNSET

LATENCY_FILE = "sweep_latency.json"  # in each point folder: its timing, with what it timed


def latency_config(smoke: bool, batch: int = 1000, threads: int | None = None) -> BenchConfig:
    """Light timing at batch 1 and ``batch`` with ``threads`` (None: all cores): <= 3 s per batch,
    a small GEMM (smoke: a handful of calls)."""
    base = BenchConfig.smoke_test() if smoke else BenchConfig(rotations=10, seconds_per_point=3.0, gemm_size=1024)
    return with_overrides(base, cpu_batch_sizes=tuple(sorted({1, batch})), formats=("coo", "csr"),
                          threads=(threads or available_cores(),), progress=False)


def _timed_inputs(folder: Path) -> dict:
    """sha256 of the checkpoints and exports the timing reads (from notebooks 02, 03 and 05_5)."""
    lineage = read_json(folder / LINEAGE, "lineage record")
    return {rel: sha for nb in ("02", "03", "05_5") for rel, sha in lineage.get(nb, {}).get("outputs", {}).items()
            if rel.startswith(("checkpoints/", "export/"))}


def measure_point(folder: Path, cfg: BenchConfig) -> Benchmark:
    """The point's CPU benchmark of dense and every representation (cached for the same files
    and config)."""
    inputs, cached = _timed_inputs(folder), folder / LATENCY_FILE
    config = {**to_jsonable(cfg), "representations": list(REPRESENTATIONS)}
    if cached.is_file():
        with contextlib.suppress(SpinnError):  # a file of another layout is timed again, not an error
            old = read_result(cached, SweepLatency)
            if old.inputs == inputs and old.config == config:
                return old.benchmark
    timed = [v for v in load_variants(ResultsPaths(folder), "cpu", cfg.formats) if v.name in REPRESENTATIONS]
    result = run_benchmark(timed, cfg, "cpu")
    write_result(cached, SweepLatency(inputs=inputs, config=config, benchmark=result))
    return result


UNTIMED = "not timed, by design: the magnitude points of this sparsity carry its latency (as many non-zeros)"


def timed_records(records: list[dict]) -> list[dict]:
    """The finished points to time: the magnitude ones (random pruning keeps as many weights, so
    its sparse kernels do the same work), or every method's where no magnitude point finished."""
    done = [r for r in records if r["status"] in ("ok", "skipped")]
    magnitude = {r["target_sparsity"] for r in done if r["prune_method"] == "magnitude"}
    return [r for r in done if r["prune_method"] == "magnitude" or r["target_sparsity"] not in magnitude]


def cpu_busy_percent(seconds: float = 1.0) -> float:
    """Share of all cores in use over the next ``seconds`` (a load average would still count
    the training)."""
    return float(psutil.cpu_percent(interval=seconds))


def measure_all(spec, records: list[dict]) -> dict:
    """Time the finished points (``timed_records``) one after another: ``{"by_point",
    "conditions"}``."""
    cfg = latency_config(spec.smoke, spec.batch, spec.threads)
    done = timed_records(records)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    busy_before = cpu_busy_percent()
    if busy_before > BUSY_PERCENT:
        print(f"note: timing beside other work ({busy_before:.0f}% of {available_cores()} cores busy over 1 s): "
              "the latencies are noisy; sweep.json records it")
    by_point = {}
    for rec in tqdm(done, desc="timing points (one at a time)", unit="point"):
        try:
            by_point[rec["id"]] = measure_point(spec.point_folder(rec["id"]), cfg)
        except Exception as err:  # noqa: BLE001 - recorded as this point's latency error, never a gap
            by_point[rec["id"]] = f"{type(err).__name__}: {first_line(err)}"
    conditions = {
        "harness": "benchmark.run_benchmark (notebook 07's), one point at a time after all training",
        "config": to_jsonable(cfg), "batches": list(cfg.cpu_batch_sizes), "threads": list(cfg.threads),
        "thread_env": {v: os.environ.get(v) for v in (*THREAD_VARS, *UNSET)},
        "cpu_busy_percent_before": busy_before, "cpu_busy_percent_after": cpu_busy_percent(),
        "load_average_1min_before": load_before,
        "load_average_1min_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "environment": environment_info("cpu"),
    }
    return {"by_point": by_point, "conditions": conditions}


def _metrics(report: RegressionReport | None) -> dict | None:
    if report is None:
        return None
    per = {t: {"r2": m.r2, "rmse": m.rmse} for t, m in report.per_output.items()}
    return {"mean_r2": report.mean_r2, "per_output": per}


def _latency(bench: Benchmark | str | None) -> tuple[dict, dict, str | None]:
    """(batch -> variant -> timing, variant -> FLOPs, error) from a point's benchmark
    (``bench`` is the one-line error where timing the point failed)."""
    if not isinstance(bench, Benchmark):
        return {}, {}, bench or UNTIMED
    rows = {}
    for r in bench.results:
        rows.setdefault(str(r.batch_size), {})[r.variant] = {
            "median_ms": r.median_ms, "iqr_ms": r.iqr_ms, "repeats": r.repeats,
            "speedup_vs_dense": r.speedup_vs_dense, "threads": r.threads}
    flops = {n: {"flops": v.flops, "flops_nonzero": v.flops_nonzero, "storage_bytes": v.storage_bytes,
                 "outputs_match": v.outputs_match} for n, v in bench.variants.items()}
    failed = [f"{f.variant} at batch {f.batch_size}: {f.error}" for f in bench.failures]
    failed += [f"{name}: {why}" for name, why in bench.skipped_variants.items()]
    return rows, flops, (f"not timed: {'; '.join(failed)}" if failed else None)


def point_summary(spec, rec: dict, bench: dict | None) -> dict:
    """One row of sweep.json: parameters, status, test metrics, sizes, FLOPs and latency."""
    folder = spec.point_folder(rec["id"])
    row = {k: rec.get(k) for k in ("id", "target_sparsity", "prune_method", "seed", "seconds")}
    row.update(folder=str(folder.relative_to(spec.root)), status="ok" if rec["status"] in ("ok", "skipped") else "failed",
               resumed=rec["status"] == "skipped", error=rec.get("error"))
    if row["status"] != "ok":
        return row
    paths = ResultsPaths(folder)
    test: TestEvaluation = read_result(paths, METRICS.test_evaluation)
    pruning: Pruning = read_result(paths, METRICS.pruning)
    consistency = test.physics_consistency
    latency, flops, latency_error = _latency(bench)
    row.update(
        test={v: _metrics(test.models.get(v)) for v in TEST_VARIANTS},
        physics_consistency=None if isinstance(consistency, Skipped) else consistency.models,
        params={VARIANTS.dense: pruning.dense_params, VARIANTS.masked: pruning.unstructured.params,
                VARIANTS.structured: pruning.structured.params},
        sparsity_reached=pruning.unstructured.params.sparsity,
        flops=flops, latency=latency, latency_error=latency_error)
    return row
