"""After the training points: time every point one at a time, then gather ``sweep/sweep.json``.

Timing never runs beside training. The driver process times the points only after every
training task has finished (and an embedded cluster has been shut down), one point at a time,
with notebook 07's harness (``benchmark.run_benchmark`` on ``benchmark.variants.load_variants``)
and a light ``BenchConfig``: batches 1 and 1000, all cores of this machine, dense timed in the
same interleaved rounds as every representation of the point (masked dense, COO, CSR,
structured eager, structured and dense in ONNX Runtime), so each speedup is paired. Dask's
nanny sets ``OMP_NUM_THREADS=1`` in the process that starts it; the driver puts the previous
values back before timing (``sweep.dask_client``) and records what was set. A point's timing is
kept in ``<point>/sweep_latency.json`` with the sha256 of what it timed and reused on resume.
"""
from __future__ import annotations

import os
from pathlib import Path

from tqdm.auto import tqdm

from ..benchmark.bench_config import BenchConfig, available_cores
from ..benchmark.run import run_benchmark
from ..benchmark.variants import load_variants
from ..core.env import environment_info
from ..core.errors import first_line
from ..core.io import read_json, to_jsonable, write_json
from ..core.lineage import LINEAGE
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, VARIANTS
from .sweep_tasks import THREAD_VARS

LATENCY_FILE = "sweep_latency.json"  # in each point folder: its timing, with what it timed
BATCHES = (1, 1000)  # one request, and an offline batch (Table 1's point)
TEST_VARIANTS = (VARIANTS.dense, VARIANTS.masked, VARIANTS.coo, VARIANTS.structured, VARIANTS.structured_ort)


def latency_config(smoke: bool) -> BenchConfig:
    """Light timing: <= 50 calls or 0.5 s per variant and batch, all cores (smoke: a handful)."""
    base = (BenchConfig.smoke_test() if smoke else
            BenchConfig(repeats=50, min_repeats=5, max_seconds_per_measurement=0.5, warmup=3))
    return BenchConfig(**{**base.__dict__, "cpu_batch_sizes": BATCHES, "threads": (available_cores(),),
                          "formats": ("coo", "csr"), "progress": False})


def _timed_inputs(folder: Path) -> dict:
    """sha256 of the checkpoints and exports the timing reads (from notebooks 02, 03 and 05_5)."""
    lineage = read_json(folder / LINEAGE, "lineage record")
    return {rel: sha for nb in ("02", "03", "05_5") for rel, sha in lineage.get(nb, {}).get("outputs", {}).items()
            if rel.startswith(("checkpoints/", "export/"))}


def measure_point(folder: Path, cfg: BenchConfig) -> dict:
    """The point's benchmark JSON (cached when it timed the same files with the same config)."""
    inputs, cached = _timed_inputs(folder), folder / LATENCY_FILE
    config = to_jsonable(cfg)
    if cached.is_file():
        old = read_json(cached, "sweep latency")
        if old.get("inputs") == inputs and old.get("config") == config:
            return old
    result = run_benchmark(load_variants(ResultsPaths(folder), "cpu", cfg.formats), cfg, "cpu")
    body = {**to_jsonable(result), "inputs": inputs}  # the Benchmark record as plain JSON
    write_json(cached, body)
    return body


def measure_all(spec, records: list[dict]) -> dict:
    """Time every finished point, one after another; returns ``{"by_point", "conditions"}``."""
    cfg = latency_config(spec.smoke)
    done = [r for r in records if r["status"] in ("ok", "skipped")]
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load_before is not None and load_before > available_cores():
        print(f"note: timing on a busy machine (1-minute load {load_before:.1f} on {available_cores()} cores): "
              "the latencies are noisy; sweep.json records the load")
    by_point = {}
    for rec in tqdm(done, desc="timing points (one at a time)", unit="point"):
        try:
            by_point[rec["id"]] = measure_point(spec.point_folder(rec["id"]), cfg)
        except Exception as err:  # noqa: BLE001 - recorded as this point's latency error, never a gap
            by_point[rec["id"]] = {"error": f"{type(err).__name__}: {first_line(err)}"}
    conditions = {
        "harness": "benchmark.run_benchmark (notebook 07's), one point at a time after all training",
        "config": to_jsonable(cfg), "batches": list(BATCHES), "threads": list(cfg.threads),
        "thread_env": {v: os.environ.get(v) for v in THREAD_VARS},
        "load_average_1min_before": load_before,
        "load_average_1min_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "environment": environment_info("cpu"),
    }
    return {"by_point": by_point, "conditions": conditions}


def _metrics(report: dict | None) -> dict | None:
    if not report:
        return None
    per = {t: {"r2": m.get("r2"), "rmse": m.get("rmse")} for t, m in report.get("per_output", {}).items()}
    return {"mean_r2": report.get("mean_r2"), "per_output": per}


def _latency(bench: dict | None) -> tuple[dict, dict, str | None]:
    """(batch -> variant -> timing, variant -> FLOPs, error) from a point's benchmark JSON."""
    if not bench or "error" in bench:
        return {}, {}, (bench or {}).get("error", "not timed")
    rows = {}
    for r in bench.get("results", []):
        rows.setdefault(str(r["batch_size"]), {})[r["variant"]] = {
            k: r.get(k) for k in ("median_ms", "iqr_ms", "repeats", "speedup_vs_dense", "threads")}
    flops = {n: {"flops": v.get("flops"), "flops_nonzero": v.get("flops_nonzero"),
                 "storage_bytes": v.get("storage_bytes"), "outputs_match": v.get("outputs_match")}
             for n, v in bench.get("variants", {}).items()}
    failed = bench.get("failures") or bench.get("skipped_variants")
    return rows, flops, (f"not timed: {failed}" if failed else None)


def point_summary(spec, rec: dict, bench: dict | None) -> dict:
    """One row of sweep.json: parameters, status, test metrics, sizes, FLOPs and latency."""
    folder = spec.point_folder(rec["id"])
    row = {k: rec.get(k) for k in ("id", "target_sparsity", "prune_method", "seed", "seconds")}
    row.update(folder=str(folder.relative_to(spec.root)), status="ok" if rec["status"] in ("ok", "skipped") else "failed",
               resumed=rec["status"] == "skipped", error=rec.get("error"))
    if row["status"] != "ok":
        return row
    paths = ResultsPaths(folder)
    test = read_json(paths.metric(METRICS.test_evaluation), "test_evaluation.json")
    pruning = read_json(paths.metric(METRICS.pruning), "pruning.json")
    consistency = test.get("physics_consistency") or {}
    latency, flops, latency_error = _latency(bench)
    row.update(
        test={v: _metrics(test.get("models", {}).get(v)) for v in TEST_VARIANTS},
        physics_consistency=None if consistency.get("skipped") else consistency.get("models"),
        params={VARIANTS.dense: pruning.get("dense_params"), VARIANTS.masked: pruning["unstructured"].get("params"),
                VARIANTS.structured: pruning["structured"].get("params")},
        sparsity_reached=pruning["unstructured"]["params"]["sparsity"],
        flops=flops, latency=latency, latency_error=latency_error)
    return row
