"""The records of ``<results>/sweep/sweep.json`` and a point's ``sweep_latency.json`` (``spinn-run
sweep``), written and read through ``results_files`` like every metrics JSON."""
from __future__ import annotations

from typing import Any, ClassVar

from .results_schema import Blob, ParamCount, Record, Versioned
from .results_schema_eval import Benchmark, ModelPhysics


class OutputScore(Record):
    r2: float | None
    rmse: float | None


class PointScores(Record):
    """One model's test scores at a point."""

    mean_r2: float | None  # mean of the per-output R2
    per_output: dict[str, OutputScore]


class PointTiming(Record):
    """One representation timed at one batch size (notebook 07's harness)."""

    median_ms: float
    iqr_ms: float
    repeats: int
    speedup_vs_dense: float | None  # median over rotations of median(dense) / median(this) in one
    threads: int | None


class PointCost(Record):
    """What one representation stores and computes per input row."""

    flops: int
    flops_nonzero: int
    storage_bytes: int
    outputs_match: bool  # reproduces its reference model's outputs


class SweepPoint(Record):
    """One (target sparsity, pruning method, seed): a results folder under ``sweep/points/``."""

    id: str
    target_sparsity: float
    prune_method: str  # "magnitude" | "random"
    seed: int
    seconds: float | None  # the point's notebooks (0 when resumed or failed before running)
    folder: str  # relative to sweep/
    status: str  # "ok" | "failed"
    resumed: bool  # finished by an earlier run with the same parameters: not re-run
    error: str | None  # the one-line error of a failed point
    test: dict[str, PointScores | None] | None = None  # by variant; absent for a failed point
    physics_consistency: dict[str, ModelPhysics] | None = None  # by model; null where 08 did not measure it
    params: dict[str, ParamCount] | None = None  # dense, masked and structured parameter counts
    sparsity_reached: float | None = None  # the masked model's measured sparsity
    flops: dict[str, PointCost] | None = None  # by representation
    latency: dict[str, dict[str, PointTiming]] | None = None  # batch size (as text) -> representation -> timing
    latency_error: str | None = None  # why a representation (or the point) was not timed


class SweepSeed(Record):
    """Notebooks 01-02 of one seed, shared by its points."""

    seed: int
    status: str  # "ok" | "skipped" (resumed) | "failed"
    error: str | None
    seconds: float | None


class Sweep(Versioned):
    """``sweep/sweep.json``: the grid, every point, the timing conditions and a summary."""

    RERUN: ClassVar[str] = "re-run `spinn-run sweep` on this folder (finished points are resumed)"
    started: str  # ISO time, UTC
    finished: str
    command: list[str]
    smoke: bool
    device: str  # torch device of the training points
    grid: dict[str, list[Any]]  # target_sparsity and prune_method values
    seeds: list[int]
    settings: Blob  # per-point notebook settings, notebook 08's fixed ones, -p overrides
    cluster: Blob  # scheduler address, workers, dashboard
    wall_seconds: dict[str, float]  # training, timing, total
    seed_runs: list[SweepSeed]
    points: list[SweepPoint]
    timing: Blob  # harness, config, threads, thread variables, CPU busy and load average, machine
    git: Blob
    versions: dict[str, str | None]
    environment: Blob
    summary: Blob  # break-even, magnitude vs random, pruned vs dense, failures (reporting/sweep_report.py)


class SweepLatency(Versioned):
    """``<point>/sweep_latency.json``: a point's CPU benchmark and what it timed; reused on resume
    when both are unchanged."""

    SCHEMA_VERSION: ClassVar[int] = Benchmark.SCHEMA_VERSION
    inputs: dict[str, str]  # sha256 of each checkpoint and export timed (from lineage.json)
    config: Blob  # BenchConfig and the representations timed
    benchmark: Benchmark
