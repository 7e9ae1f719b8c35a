"""Table 1, the validation checklist and the claims verdict on small hand-made results
(built with the schema's dataclasses: tests/results_factory.py)."""
import json
from dataclasses import replace

import pandas as pd
import pytest
from results_factory import (
    DENSE_PARAMS,
    PRUNED_PARAMS,
    STORAGE,
    STRUCT_PARAMS,
    bench,
    evolve,
    fake_results,
    metrics,
    write_results,
)

from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import BASELINES, LABELS, METRICS, VARIANTS
from spinn_utils.core.results_schema import RegressionReport, Skipped
from spinn_utils.core.results_schema_eval import GemmPeak
from spinn_utils.reporting.checklist import (
    build_checklist,
    checklist_frames,
    checklist_items,
    claims,
    verdict,
    write_checklist,
)
from spinn_utils.reporting.results import NOT_MEASURED, RunResults
from spinn_utils.reporting.table1 import (
    COLUMNS,
    build_table1,
    recommend_deploy,
    table1,
    to_markdown,
    write_table1,
)


def items_by_name(results, missing=()) -> dict:
    return {i.item: i for i in checklist_items(results, list(missing))}


def test_table1_cells_are_the_json_values():
    res = fake_results()
    t = table1(res)
    assert list(t.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert t.loc["Parameters (non-zero)", LABELS[VARIANTS.dense]] == DENSE_PARAMS.nonzero
    assert t.loc["Parameters (non-zero)", LABELS[VARIANTS.coo]] == PRUNED_PARAMS.nonzero
    assert t.loc["Parameters (non-zero)", LABELS[VARIANTS.structured]] == STRUCT_PARAMS.nonzero
    models = res.test_evaluation.models
    assert t.loc["Mean per-output R2 (test)", LABELS[VARIANTS.coo]] == models[VARIANTS.coo].mean_r2
    assert t.loc["Tool wear R2 (test)", LABELS[VARIANTS.dense]] == models["dense"].per_output["tool_wear_vb_mm"].r2
    assert t.loc["Thermal R2 (test)", LABELS[VARIANTS.structured]] == 0.72
    assert t.loc["Mean per-output R2, CV mean", LABELS[VARIANTS.coo]] == 0.72
    assert t.loc["Mean per-output R2, CV std", LABELS[VARIANTS.dense]] == 0.10
    assert t.loc["Mean per-output R2, seeds mean", LABELS[VARIANTS.coo]] == 0.73
    assert t.loc["Mean per-output R2, seeds std", LABELS[VARIANTS.dense]] == 0.01
    assert t.loc["Mean per-output R2, seeds mean", LABELS[VARIANTS.structured]] == NOT_MEASURED
    assert t.loc["Wear decreases (share of test steps)", LABELS[VARIANTS.coo]] == 0.205  # the masked weights
    assert t.loc["Thermal ODE residual RMS (um)", LABELS[VARIANTS.dense]] == 18.0
    assert t.loc["Thermal ODE residual RMS (um)", LABELS[VARIANTS.structured]] == NOT_MEASURED
    assert t.loc["CPU inference (ms)", LABELS[VARIANTS.dense]] == 3.0
    assert t.loc["CPU inference (ms)", LABELS[VARIANTS.coo]] == 150.0
    assert t.loc["CPU speedup vs dense", LABELS[VARIANTS.coo]] == pytest.approx(3.0 / 150.0)
    # Fastest matching unstructured representation: masked dense storage here (3.1 ms).
    assert t.loc["CPU inference (ms)", "SPINN (fastest unstructured)"] == 3.1
    assert VARIANTS.masked in t.loc["Representation timed", "SPINN (fastest unstructured)"]
    assert t.loc["Memory (weight bytes, indices counted)", LABELS[VARIANTS.coo]] == STORAGE[VARIANTS.coo]
    assert t.loc["Memory (weight bytes, indices counted)", LABELS[VARIANTS.structured]] == STORAGE[VARIANTS.structured]


def test_table1_reads_targets_named_by_a_users_csv():
    res = fake_results()
    for name, m in res.test_evaluation.models.items():
        per = m.per_output
        res = evolve(res, f"test_evaluation.models.{name}.per_output",
                     {"vb": per["tool_wear_vb_mm"], "delta_um": per["thermal_displacement_um"]})
    t = table1(res)
    assert t.loc["Tool wear R2 (test)", LABELS[VARIANTS.dense]] == 0.80
    assert t.loc["Thermal R2 (test)", LABELS[VARIANTS.structured]] == 0.72


def test_skipped_gpu_is_not_measured_everywhere():
    res = fake_results()
    t = table1(res)
    assert (t.loc["GPU inference (ms)", list(COLUMNS)] == NOT_MEASURED).all()
    items = items_by_name(res)
    gpu_items = [i for name, i in items.items() if name.startswith("GPU speedup")]
    assert len(gpu_items) == 3 and all(i.status == "not run" for i in gpu_items)
    assert "no CUDA GPU" in gpu_items[0].detail
    speed = claims(res)[0]
    assert speed.verdict != "supported"
    assert "no CUDA GPU" in to_markdown(t)


def test_fastest_ignores_variants_whose_outputs_differ():
    res = fake_results(cpu_medians={"dense": 3.0, VARIANTS.masked: 3.1, VARIANTS.coo: 150.0,
                                    VARIANTS.csr: 1.0, VARIANTS.structured: 1.2})
    assert table1(res).loc["CPU inference (ms)", "SPINN (fastest unstructured)"] == 1.0
    res = evolve(res, "cpu_benchmark.variants.spinn_csr.outputs_match", False)
    assert table1(res).loc["CPU inference (ms)", "SPINN (fastest unstructured)"] == 3.1


def test_a_variant_whose_outputs_differ_fails_its_speedup_item():
    gpu = bench({"dense": 1.0, VARIANTS.masked: 1.0, VARIANTS.coo: 0.3, VARIANTS.csr: 0.8,
                 VARIANTS.structured: 0.45}, threads=(8,), match={VARIANTS.coo: False})
    item = items_by_name(fake_results(gpu=gpu))["GPU speedup (COO, the original design)"]
    assert item.measured is None  # not timed: a wrong answer has no speed
    assert item.status == "fail" and "outputs differ" in item.detail


def test_a_failed_or_nan_validation_never_passes_the_match_item():
    res = fake_results()
    res = evolve(res, "sparse_conversion_report.validation.max_abs_diff", None)
    res = evolve(res, "sparse_conversion_report.validation.passed", False)
    assert items_by_name(res)["Predictions match dense pruned model"].status == "fail"


def test_missing_dense_row_means_not_measured_not_a_crash():
    res = fake_results()
    rows = [evolve(row, "speedup_vs_dense", None) for row in res.cpu_benchmark.results]  # dense raised
    res = evolve(res, "cpu_benchmark.results", rows)
    items = items_by_name(res)
    assert items["CPU speedup (COO, the original design)"].status == "not run"
    speed_claims = [c for c in claims(res) if "speedup" in c.claim]
    assert len(speed_claims) == 2
    assert all(c.verdict != "supported" for c in speed_claims)


def test_speedup_items_pass_and_fail_on_their_thresholds():
    gpu = bench({"dense": 1.0, VARIANTS.masked: 1.0, VARIANTS.coo: 0.5, VARIANTS.csr: 0.8,
                 VARIANTS.structured: 0.45}, threads=(8,))
    items = items_by_name(fake_results(gpu=gpu))
    assert items["GPU speedup (COO, the original design)"].status == "pass"  # exactly 2.0x
    assert items["GPU speedup (COO, the original design)"].measured == pytest.approx(2.0)
    assert items["CPU speedup (COO, the original design)"].status == "fail"  # 0.02x
    assert items["CPU speedup (structured SPINN)"].status == "fail"  # 2.0x < 2.5x
    slower = evolve(gpu, "results", [evolve(r, "speedup_vs_dense", 1.99) if r.variant == VARIANTS.coo else r
                                     for r in gpu.results])
    assert items_by_name(fake_results(gpu=slower))["GPU speedup (COO, the original design)"].status == "fail"
    fast_cpu = fake_results(cpu_medians={"dense": 3.0, VARIANTS.masked: 3.0, VARIANTS.coo: 0.9,
                                         VARIANTS.csr: 2.0, VARIANTS.structured: 1.0})
    assert items_by_name(fast_cpu)["CPU speedup (COO, the original design)"].status == "pass"
    assert items_by_name(fast_cpu)["CPU speedup (structured SPINN)"].status == "pass"  # 3.0x


def test_match_r2_and_files_items():
    res = fake_results()
    items = items_by_name(res)
    assert items["Sparse conversion completes without errors"].status == "pass"
    assert items["Predictions match dense pruned model"].status == "pass"
    assert items["Predictions match dense pruned model"].measured == 2e-7  # the worst of both
    assert items["R2 matches previous training (0.86 overall)"].status == "fail"  # 0.80 < 0.84
    assert items["All results saved (every contract file exists)"].status == "pass"
    res = evolve(res, "test_evaluation.sparse_vs_masked.max_abs_diff", 2e-4)
    res = evolve(res, "test_evaluation.models.spinn_coo", metrics(0.90, 0.80))
    items = items_by_name(res, missing=["checkpoints/dense.pt"])
    assert items["Predictions match dense pruned model"].status == "fail"
    assert items["R2 matches previous training (0.86 overall)"].status == "pass"  # 0.85 >= 0.84
    assert items["All results saved (every contract file exists)"].status == "fail"
    assert "checkpoints/dense.pt" in items["All results saved (every contract file exists)"].detail
    empty = items_by_name(RunResults())
    assert empty["Sparse conversion completes without errors"].status == "not run"
    assert empty["Conversion report saved in results/metrics/"].status == "fail"


def test_claims_follow_the_numbers():
    res = fake_results()
    verdicts = {c.claim: c.verdict for c in claims(res)}
    assert verdicts["CPU speedup validates feasibility for edge manufacturing IoT devices"] == "not supported"
    memory = next(v for k, v in verdicts.items() if k.startswith("Memory"))
    assert memory == "not supported"  # 4.20 MB of COO is not 0.84 MB
    assert verdicts["Pruning improves R2 0.48 -> 0.86"] == "not supported"
    # SPINN beats dense on test and by more than one standard error in CV: supported.
    assert verdicts["Pruning provides dual benefit: compression AND generalization improvement"] == "supported"
    dual = next(c for c in claims(res) if c.claim.startswith("Pruning provides dual"))
    assert "4 folds + 3 seeds" in dual.evidence and "decision rule" in dual.evidence
    # Paired differences that straddle zero: the mean is within one standard error, no gain.
    res = evolve(res, "test_evaluation.cross_validation.difference.mean_r2.values", [0.05, -0.04, 0.02, -0.03])
    res = evolve(res, "test_evaluation.seed_runs.difference.mean_r2.values", [0.01, -0.02, 0.0])
    verdicts = {c.claim: c.verdict for c in claims(res)}
    assert verdicts["Pruning provides dual benefit: compression AND generalization improvement"] == "not supported"
    res = evolve(res, "sparse_conversion_report.storage_bytes.coo", 800_000)
    variants = {k: v for k, v in res.cpu_benchmark.variants.items() if k != VARIANTS.coo}
    res = evolve(res, "cpu_benchmark.variants", variants)  # the conversion report is the fallback
    memory = [c for c in claims(res) if c.claim.startswith("Memory")][0]
    assert memory.verdict == "supported" and "0.80 MB" in memory.evidence
    assert verdict([True, None]) == NOT_MEASURED
    assert verdict([]) == NOT_MEASURED


def test_nearest_batch_is_used_and_said(tmp_path):
    res = evolve(fake_results(), METRICS.cpu_benchmark, bench(
        {"dense": 3.0, VARIANTS.masked: 3.1, VARIANTS.coo: 150.0, VARIANTS.csr: 40.0, VARIANTS.structured: 1.2},
        threads=(1,), batches=(1, 64)))
    t = table1(res)
    assert t.loc["CPU inference (ms)", LABELS[VARIANTS.dense]] == 3.0
    assert any("batch 64" in n and "batch 1000 not measured" in n for n in t.attrs["notes"])


def test_build_and_write_from_a_results_folder(tmp_path):
    paths = ResultsPaths.at(tmp_path).ensure()
    write_results(paths, fake_results())
    table = build_table1(paths)
    files = write_table1(table, paths)
    assert [f.name for f in files] == ["table1.md", "table1.tex", "table1.csv"]
    assert all(f.stat().st_size > 0 for f in files)
    csv = pd.read_csv(paths.tables / "table1.csv", index_col=0)
    assert float(csv.loc["CPU inference (ms)", LABELS[VARIANTS.coo]]) == 150.0
    assert r"\begin{tabular}" in files[1].read_text() and "666,882" in files[0].read_text()
    check = build_checklist(paths)
    saved = {i.item: i for i in check.items}["All results saved (every contract file exists)"]
    assert saved.status == "fail" and "checkpoints/dense.pt" in saved.detail
    path = write_checklist(check, paths)
    written = json.loads(path.read_text())
    assert written["schema_version"] == 1 and len(written["items"]) == len(check.items)
    items, claims = checklist_frames(check)
    assert set(items["status"]) <= {"pass", "fail", "not run"}
    assert set(claims["verdict"]) <= {"supported", "not supported", "not measured"}


def test_deployable_spinn_column_and_item_with_the_same_runtime_ratio():
    res = fake_results()
    t = table1(res)
    col = LABELS[VARIANTS.structured_ort]
    assert t.loc["CPU inference (ms)", col] == 0.5
    assert t.loc["CPU speedup vs dense", col] == pytest.approx(6.0)  # vs dense PyTorch eager
    assert t.loc["Parameters (non-zero)", col] == STRUCT_PARAMS.nonzero  # the model it was exported from
    assert t.loc["Mean per-output R2 (test)", col] == res.test_evaluation.models[VARIANTS.structured_ort].mean_r2
    assert t.loc["Mean per-output R2, CV mean", col] == NOT_MEASURED
    item = items_by_name(res)["CPU speedup (deployable SPINN: structured, ONNX Runtime)"]
    assert item.status == "pass" and item.measured == pytest.approx(6.0)
    assert "same runtime (dense / structured, both ONNX Runtime) 4.00x" in item.detail
    edge = next(c for c in claims(res) if "edge" in c.claim)
    assert "deployable structured in ONNX Runtime spinn_structured_ort" in edge.evidence
    assert edge.verdict == "not supported"  # the claim is about sparse tensors, not ONNX Runtime
    differ = evolve(res, "cpu_benchmark.variants.spinn_structured_ort.outputs_match", False)
    item = items_by_name(differ)["CPU speedup (deployable SPINN: structured, ONNX Runtime)"]
    assert item.status == "fail" and "outputs differ" in item.detail
    bench_ = res.cpu_benchmark
    res = evolve(res, METRICS.cpu_benchmark, evolve(evolve(
        bench_, "variants", {k: v for k, v in bench_.variants.items() if k != VARIANTS.structured_ort}),
        "results", [r for r in bench_.results if r.variant != VARIANTS.structured_ort]))
    assert items_by_name(res)["CPU speedup (deployable SPINN: structured, ONNX Runtime)"].status == "not run"


def test_table2_reads_baselines_and_physics_consistency(tmp_path):
    from spinn_utils.reporting.table2 import table2, write_table2

    res = fake_results()
    t = table2(res)
    assert t.loc["Mean per-output R2 (test)", "Linear (ridge)"] == res.test_evaluation.baselines.models["linear"].mean_r2
    assert t.loc["Tool wear R2 (test)", "Dense PINN, no physics"] == 0.78
    assert t.loc["Wear decreases (share of time steps)", LABELS[VARIANTS.masked]] == 0.205
    assert t.loc["Thermal ODE residual RMS (um)", "Train mean"] == NOT_MEASURED
    paths = ResultsPaths.at(tmp_path).ensure()
    files = write_table2(t, paths)
    assert [f.name for f in files] == ["table2.md", "table2.tex", "table2.csv"]
    assert ("| Wear decreases (share of time steps) | not measured | not measured | not measured | 30.0% | "
            "20.0% | not measured | 20.5% | not measured | not measured |") in files[0].read_text()


def test_table2_puts_a_hard_run_s_dense_model_in_the_hard_column():
    """The run trains one physics option; the other is a baseline: each lands in its own column."""
    from spinn_utils.reporting.table2 import table2

    res = fake_results()
    soft_twin = res.test_evaluation.baselines.models[BASELINES.no_physics]
    hard = evolve(evolve(res, "test_evaluation.physics", "hard"), "test_evaluation.baselines.models",
                  {**res.test_evaluation.baselines.models, BASELINES.soft_physics: soft_twin})
    t = table2(hard)
    dense_r2 = res.test_evaluation.models[VARIANTS.dense].mean_r2
    assert t.loc["Mean per-output R2 (test)", "Dense PINN, hard physics"] == dense_r2
    assert t.loc["Mean per-output R2 (test)", "Dense PINN, soft physics"] == soft_twin.mean_r2


def test_physics_consistency_item_uses_the_stated_margin():
    res = fake_results()
    item = items_by_name(res)["SPINN keeps physics consistency no worse than dense"]
    assert item.status == "pass" and item.measured == 0.205  # 0.205 <= 0.20 + 0.01
    worse = evolve(res, "test_evaluation.physics_consistency.models.spinn_masked.wear_decrease_fraction", 0.25)
    assert items_by_name(worse)["SPINN keeps physics consistency no worse than dense"].status == "fail"
    skipped = evolve(res, "test_evaluation.physics_consistency", Skipped(skipped=True, reason="run_baselines=False"))
    assert items_by_name(skipped)["SPINN keeps physics consistency no worse than dense"].status == "not run"


def _report(r2_wear: float, r2_thermal: float) -> RegressionReport:
    return metrics(r2_wear, r2_thermal)


def test_int8_is_recommended_only_within_the_r2_drop():
    fp32 = _report(0.90, 0.80)
    kept = recommend_deploy(fp32, _report(0.89, 0.79), 0.01, fp32_ms=2.0, int8_ms=1.0)  # drop 0.01
    assert kept.recommended == VARIANTS.structured_int8_ort
    assert "drops by 0.0100 <= 0.01" in kept.reason and "2.00x faster" in kept.reason
    lost = recommend_deploy(fp32, _report(0.88, 0.79), 0.01, fp32_ms=2.0, int8_ms=1.0)  # drop 0.015
    assert lost.recommended == VARIANTS.structured_ort
    assert "not recommended" in lost.reason and "0.0150 > 0.01" in lost.reason
    slower = recommend_deploy(fp32, fp32, 0.01, fp32_ms=1.0, int8_ms=1.5)
    assert slower.recommended == VARIANTS.structured_ort and "not faster" in slower.reason
    not_timed = recommend_deploy(fp32, _report(0.9, 0.8), 0.01)
    assert not_timed.recommended == VARIANTS.structured_int8_ort
    assert recommend_deploy(fp32, None, 0.01).recommended == VARIANTS.structured_ort
    assert recommend_deploy(None, None, 0.01).recommended is None


def _gemm(threads: int, rate: float) -> GemmPeak:
    return GemmPeak(threads=threads, n=2048, repeats=3, median_ms=1.0, gflops_per_s=rate, best_gflops_per_s=rate,
                    where="test")


def test_table1_shows_the_rate_the_int8_column_and_the_deploy_choice():
    res = fake_results(cpu_medians={"dense": 10.0, VARIANTS.masked: 10.0, VARIANTS.coo: 150.0, VARIANTS.dense_ort: 4.0,
                                    VARIANTS.structured_ort: 2.0, VARIANTS.csr: 40.0, VARIANTS.structured: 3.0,
                                    VARIANTS.structured_int8_ort: 1.0})
    cpu = res.cpu_benchmark
    int8 = cpu.variants[VARIANTS.structured_int8_ort].model_copy(update=dict(
        format="onnx", dtype="int8", storage_bytes=230000, params=STRUCT_PARAMS))
    rows = [r.model_copy(update=dict(gflops_per_s=210.0 / r.median_ms, pct_of_gemm_peak=105.0 / r.median_ms))
            for r in cpu.results]
    cpu = cpu.model_copy(update=dict(variants={**cpu.variants, VARIANTS.structured_int8_ort: int8}, results=rows,
                                     gemm_peak=[_gemm(1, 100.0), _gemm(2, 200.0)]))
    models = res.test_evaluation.models
    res = replace(res, cpu_benchmark=cpu)
    res = evolve(res, "test_evaluation.models", {**models, VARIANTS.structured_int8_ort: metrics(0.81, 0.70)})  # drop 0.015
    t = table1(res)
    col = LABELS[VARIANTS.structured_int8_ort]
    assert t.loc["CPU inference (ms)", col] == 1.0 and t.loc["Memory (weight bytes, indices counted)", col] == 230000
    assert t.loc["CPU GFLOP/s (% of fp32 GEMM rate)", col] == "210 GFLOP/s (105%)"
    notes = " ".join(t.attrs["notes"])
    assert "200 GFLOP/s on 2 thread(s)" in notes
    assert "CPU: median of 7 timed calls in 3 rotations" in notes  # how the latency rows were taken
    assert f"Deploy: {VARIANTS.structured_ort} (int8 not recommended: mean per-output R2 drops by 0.0150 > 0.01" in notes
    res = evolve(res, "test_evaluation.models", {**models, VARIANTS.structured_int8_ort: metrics(0.82, 0.715)})  # 0.0025
    assert f"Deploy: {VARIANTS.structured_int8_ort} (int8 recommended" in " ".join(table1(res).attrs["notes"])


def test_table2_over_runs_gives_mean_and_sample_std_per_cell():
    from spinn_utils.reporting.table2 import table2_over_runs

    res = fake_results()
    other = evolve(res, "test_evaluation.baselines.models", {
        **res.test_evaluation.baselines.models,
        "linear": evolve(res.test_evaluation.baselines.models["linear"], "mean_r2", 0.55)})
    t = table2_over_runs([res, other])
    assert t.loc["Mean per-output R2 (test)", "Linear (ridge)"] == "0.500 +- 0.071"  # 0.45, 0.55
    assert table2_over_runs([res]).loc["Mean per-output R2 (test)", "Linear (ridge)"] == "0.450"  # no spread
    assert t.loc["Thermal ODE residual RMS (um)", "Train mean"] == NOT_MEASURED
