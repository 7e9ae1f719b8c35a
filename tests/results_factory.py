"""Small hand-made results, built with the schema's own models (core/results_schema*.py).

Tests of Table 1, Table 2, the checklist and the figures read these instead of hand-written
JSON: a field renamed in the schema breaks the constructors here at once, so the fixtures
cannot drift from what the notebooks write. ``evolve`` changes one nested value of a frozen
record (``evolve(res, "cpu_benchmark.variants.spinn_csr.outputs_match", False)``).
"""
from __future__ import annotations

import dataclasses

from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import VARIANTS
from spinn_utils.core.results_files import write_result
from spinn_utils.core.results_schema import (
    ConversionCheck,
    LayerSparsity,
    ModelVerification,
    OutputMetrics,
    ParamCount,
    PruneStage,
    Pruning,
    RegressionReport,
    SparseConversion,
    StructuredPruning,
    Support,
    UnstructuredPruning,
    VerifiedModel,
)
from spinn_utils.core.results_schema_eval import (
    Baselines,
    Benchmark,
    BenchmarkSkipped,
    BenchVariant,
    CrossValidation,
    Difference,
    Environment,
    FoldStats,
    LoadAverage,
    ModelFoldStats,
    ModelPhysics,
    NoPhysicsRun,
    OutputFoldStats,
    PhysicsConsistency,
    SeedRuns,
    SparseMatch,
    TestEvaluation,
    TimingRow,
)
from spinn_utils.reporting.results import RunResults

TARGETS = ("tool_wear_vb_mm", "thermal_displacement_um")
DENSE_PARAMS = ParamCount(total=666882, nonzero=666882, sparsity=0.0)
PRUNED_PARAMS = ParamCount(total=666882, nonzero=210068, sparsity=0.685)
STRUCT_PARAMS = ParamCount(total=205157, nonzero=205157, sparsity=0.0)
STORAGE = {"dense": 2667528, VARIANTS.masked: 2667528, VARIANTS.coo: 4197236,
           VARIANTS.csr: 2535604, VARIANTS.structured: 820628, VARIANTS.dense_ort: 2667528,
           VARIANTS.structured_ort: 820628, VARIANTS.structured_int8_ort: 230000}
ENV = Environment(torch_version="2.0", python_version="3.11", platform="Linux", cpu_model="Test CPU",
                  cpu_count=2, torch_threads=2, cuda_available=False, device="cpu",
                  device_name="Test CPU")


def evolve(obj, path: str, value):
    """A copy of a frozen record (or dict) with the value at dotted ``path`` replaced."""
    key, _, rest = path.partition(".")
    current = obj[key] if isinstance(obj, dict) else getattr(obj, key)
    new = evolve(current, rest, value) if rest else value
    if isinstance(obj, dict):
        return {**obj, key: new}
    return obj.model_copy(update={key: new}) if hasattr(obj, "model_copy") else dataclasses.replace(obj, **{key: new})


def metrics(wear: float, thermal: float) -> RegressionReport:
    per = {TARGETS[0]: OutputMetrics(r2=wear, rmse=0.05, mae=0.04),
           TARGETS[1]: OutputMetrics(r2=thermal, rmse=1.0, mae=0.8)}
    return RegressionReport(per_output=per, mean_r2=(wear + thermal) / 2, n=100)


def timing_row(variant: str, ms: float, threads: int, batch: int, speedup: float | None) -> TimingRow:
    return TimingRow(device="cpu", threads=threads, batch_size=batch, variant=variant, dtype="float32",
                     median_ms=ms, iqr_ms=0.1, q1_ms=ms, q3_ms=ms, mean_ms=ms, std_ms=0.0, min_ms=ms,
                     repeats=7, speedup_vs_dense=speedup, speedup_iqr=0.0, rotations=3, gflops_per_s=None,
                     pct_of_gemm_peak=None)


def bench(medians: dict, threads=(1, 2), batches=(1, 1000), match=None) -> Benchmark:
    """A benchmark with the same median at every point; speedup = dense / variant. A variant
    whose outputs do not ``match`` is described but not timed, as ``run_benchmark`` does."""
    match = match or {}
    rows = [timing_row(v, ms, t, b, medians["dense"] / ms)
            for t in threads for b in batches for v, ms in medians.items() if match.get(v, True)]
    params = {"dense": DENSE_PARAMS, VARIANTS.structured: STRUCT_PARAMS, VARIANTS.dense_ort: DENSE_PARAMS,
              VARIANTS.structured_ort: STRUCT_PARAMS}
    formats = {VARIANTS.coo: "coo", VARIANTS.csr: "csr", VARIANTS.dense_ort: "onnx", VARIANTS.structured_ort: "onnx"}
    variants = {v: BenchVariant(format=formats.get(v, "dense"), dtype="float32", storage_bytes=STORAGE[v],
                                flops=1000, flops_nonzero=1000, params=params.get(v, PRUNED_PARAMS),
                                reference="dense", source="test", outputs_match=match.get(v, True),
                                max_abs_diff=0.0, atol=1e-4, n=8, flops_ratio_vs_dense=1.0)
                for v in medians}
    return Benchmark(skipped=False, device="cpu", timer="perf_counter_ns", float32_matmul_precision="highest",
                     config={}, threads=list(threads), batch_sizes=list(batches), variants=variants,
                     skipped_variants={v: "outputs differ" for v in medians if not match.get(v, True)},
                     results=rows, failures=[], fastest=[], processes=None, gemm_peak=[],
                     flops_basis="flops_nonzero per row x batch", seconds=1.0,
                     load_average_1min=LoadAverage(before=None, after=None), environment=ENV)


def skipped_bench(reason: str = "no CUDA GPU") -> BenchmarkSkipped:
    return BenchmarkSkipped(skipped=True, reason=reason, device="cpu", environment=ENV)


def fold_stats(mean: float, std: float, values=None) -> FoldStats:
    values = [mean] * 4 if values is None else values
    return FoldStats(mean=mean, std=std, sem=std / 2, n=len(values), values=values)


def cv_stats(mean: float, std: float) -> ModelFoldStats:
    """As ``crossval.cross_validate`` records them: fold statistics of mean_r2 and per output."""
    stats = fold_stats(mean, std)
    return ModelFoldStats(mean_r2=stats, per_output={t: OutputFoldStats(r2=stats) for t in TARGETS})


def cross_validation() -> CrossValidation:
    return CrossValidation(n_folds=4, folds=[], schedule={}, dense=cv_stats(0.70, 0.10),
                           spinn=cv_stats(0.72, 0.08),
                           difference=Difference(mean_r2=fold_stats(0.02, 0.02, [0.03, 0.01, 0.04, 0.0])),
                           seconds=1.0)


def seed_runs() -> SeedRuns:
    return SeedRuns(runs=[], schedule={}, dense=cv_stats(0.71, 0.01), spinn=cv_stats(0.73, 0.02),
                    difference=Difference(mean_r2=fold_stats(0.02, 0.01, [0.02, 0.03, 0.01])), seconds=1.0)


def physics(wear: float, thermal: float) -> ModelPhysics:
    return ModelPhysics(wear_decrease_fraction=wear, thermal_ode_residual_rms_um=thermal)


def evaluation_record() -> TestEvaluation:
    models = {"dense": metrics(0.80, 0.70), VARIANTS.masked: metrics(0.85, 0.75),
              VARIANTS.coo: metrics(0.85, 0.75), VARIANTS.structured: metrics(0.82, 0.72),
              VARIANTS.structured_ort: metrics(0.82, 0.72)}
    baselines = Baselines(models={"train_mean": metrics(0.0, -0.1), "linear": metrics(0.6, 0.3),
                                  "no_physics": metrics(0.78, 0.69)}, split="test",
                          no_physics=NoPhysicsRun(best_epoch=3, epochs_run=5, seconds=1.0), config={})
    consistency = PhysicsConsistency(models={"dense": physics(0.20, 18.0), VARIANTS.masked: physics(0.205, 17.0),
                                             "no_physics": physics(0.30, 25.0)},
                                     wear_drop_tol_mm=1e-3, split="test")
    return TestEvaluation(
        split="test", test_experiments=[7, 12, 16], models=models,
        sparse_vs_masked=SparseMatch(max_abs_diff=2e-7, mean_abs_diff=1e-7, atol=1e-4, passed=True, n=100,
                                     units="scaled model outputs"),
        cross_validation=cross_validation(), seed_runs=seed_runs(), baselines=baselines,
        physics_consistency=consistency, checkpoints={}, config={},
        units={TARGETS[0]: "mm", TARGETS[1]: "um"}, environment=ENV)


def conversion() -> SparseConversion:
    check = ConversionCheck(max_abs_diff=3e-8, mean_abs_diff=1e-8, atol=1e-4, passed=True, n=100)
    return SparseConversion(
        source="spinn_pruned.pt", source_kind="pruned", checkpoint="spinn_sparse_final.pt", format="coo",
        dims=[18, 512, 512, 512, 256, 2], activation="tanh", params=PRUNED_PARAMS, params_sparse=PRUNED_PARAMS,
        per_layer=[], storage_bytes={"dense": STORAGE["dense"], "coo": STORAGE[VARIANTS.coo],
                                     "csr": STORAGE[VARIANTS.csr]},
        storage_vs_dense={}, storage_counts="values + indices", flops_per_sample={},
        validation_by_format={"coo": check}, conversion_ok=True, all_formats_passed=True,
        semi_structured=Support(supported=False, reason="no CUDA GPU"), config={},
        created="2026-01-01T00:00:00+00:00", versions={}, environment=ENV,
        validation=check.model_copy(update={"inputs": "test split"}))


def verification() -> ModelVerification:
    def model(kind: str, params: ParamCount) -> VerifiedModel:
        return VerifiedModel(path=f"{kind}.pt", kind=kind, params=params, hidden_dims=[512, 512, 512, 256],
                             val_metrics=metrics(0.8, 0.7))

    return ModelVerification(models={"dense": model("dense", DENSE_PARAMS),
                                     VARIANTS.masked: model("pruned", PRUNED_PARAMS),
                                     VARIANTS.structured: model("structured", STRUCT_PARAMS)},
                             checks=[], passed=True, environment=ENV)


def fake_results(gpu=None, cpu_medians: dict | None = None) -> RunResults:
    cpu_medians = cpu_medians or {"dense": 3.0, VARIANTS.masked: 3.1, VARIANTS.coo: 150.0,
                                  VARIANTS.dense_ort: 2.0, VARIANTS.structured_ort: 0.5,
                                  VARIANTS.csr: 40.0, VARIANTS.structured: 1.5}
    return RunResults(cpu_benchmark=bench(cpu_medians), gpu_benchmark=gpu or skipped_bench(),
                      test_evaluation=evaluation_record(), sparse_conversion_report=conversion(),
                      model_verification=verification())


def fake_pruning() -> Pruning:
    layers = [LayerSparsity(layer="network.0", total=9216, nonzero=9216, sparsity=0.0)]
    stages = [PruneStage(stage=i, target_sparsity=s, sparsity=s,
                         params=ParamCount(total=666882, nonzero=int(666882 * (1 - s)), sparsity=s),
                         per_layer=layers, val_metrics=metrics(0.8 - 0.02 * i, 0.7 + 0.01 * i))
              for i, s in enumerate((0.0, 0.44, 0.685))]
    unstructured = UnstructuredPruning(schedule=[0.44, 0.685], stages=stages, params=PRUNED_PARAMS,
                                       per_layer=layers, val_metrics=metrics(0.76, 0.72), mask_sha256="0" * 64,
                                       seconds=1.0)
    structured = StructuredPruning(hidden_dims=[256, 256, 256, 128], params=STRUCT_PARAMS, target_params=210068,
                                   relative_error=-0.02, within_tolerance=True, importance="l2_product",
                                   val_metrics_before_finetune=metrics(0.5, 0.5), val_metrics=metrics(0.78, 0.7),
                                   best_epoch=3, epochs_run=5, seconds=1.0)
    return Pruning(config={"target_sparsity": 0.685}, unstructured=unstructured, structured=structured,
                   dense_val_metrics=metrics(0.8, 0.7), dense_params=DENSE_PARAMS, environment=ENV)


def write_results(paths: ResultsPaths, results: RunResults) -> None:
    """Every record of ``results`` into ``paths``'s metrics/, as the notebooks write them."""
    for field in dataclasses.fields(results):
        record = getattr(results, field.name)
        if record is not None:
            write_result(paths.metric(field.name), record)
