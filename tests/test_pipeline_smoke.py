"""The whole notebook chain under ``run_all.py --smoke``, then the results contract checked.

Runs once per session (module fixture) in a temp dir with the Agg backend; each test then
checks one part of what the run wrote against the JSONs it came from.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from spinn_utils.core.registry import (
    FIGURE_FORMATS,
    FIGURE_NAMES,
    INT8_EXPORT,
    LABELS,
    METRICS,
    PREDICTIONS_FILE,
    TABLE1,
    VARIANTS,
    names,
)
from spinn_utils.core.results_files import read_result
from spinn_utils.core.stages import STAGES, contract_files
from spinn_utils.pipeline.notebooks import discover, notebook_id

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # the whole notebook chain


def _present() -> dict[str, Path]:
    out = {}
    for p in discover():
        out[notebook_id(p)] = p
    return out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke_results")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_all.py"), "--smoke", "--device", "cpu", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"smoke chain failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


def _json(root: Path, metric: str) -> dict:
    return json.loads((root / "metrics" / f"{metric}.json").read_text())


def test_every_notebook_ran_and_is_recorded(smoke_run):
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["smoke"] is True
    ran = [n["notebook"] for n in manifest["notebooks"]]
    assert ran == [p.name for p in _present().values()]
    assert all(n["status"] == "ok" and n["seconds"] > 0 for n in manifest["notebooks"])
    assert all((smoke_run / "executed" / name).is_file() for name in ran)
    assert manifest["versions"]["torch"] and manifest["environment"]["cpu_model"]
    assert manifest["lineage"] == "lineage.json" and not any("lineage" in n for n in manifest["notebooks"])


def test_results_contract(smoke_run):
    missing = [
        f"{nb}: {rel}"
        for nb in _present()
        for rel in STAGES[nb].writes
        if not (smoke_run / rel).is_file()
    ]
    assert not missing, f"results contract broken: {missing}"
    for path in (smoke_run / "metrics").glob("*.json"):
        assert "environment" in json.loads(path.read_text()), f"{path.name} lacks its environment"
        read_result(path, path.stem)  # every file a notebook wrote fits its schema and version


def _table1(root: Path) -> dict[str, dict[str, str]]:
    import csv

    with open(root / "tables" / f"{TABLE1}.csv", newline="") as f:
        return {row["Metric"]: row for row in csv.DictReader(f)}


def test_table1_numbers_come_from_the_jsons(smoke_run):
    if "09" not in _present():
        pytest.skip("notebook 09 not present")
    table = _table1(smoke_run)
    ev = _json(smoke_run, METRICS.test_evaluation)["models"]
    verification = _json(smoke_run, METRICS.model_verification)["models"]
    conversion = _json(smoke_run, METRICS.sparse_conversion)
    dense, coo, structured = LABELS[VARIANTS.dense], LABELS[VARIANTS.coo], LABELS[VARIANTS.structured]
    params = table["Parameters (non-zero)"]
    assert int(params[dense]) == verification[VARIANTS.dense]["params"]["nonzero"] == 666_882
    assert int(params[coo]) == conversion["params"]["nonzero"]
    assert int(params[structured]) == verification[VARIANTS.structured]["params"]["nonzero"]
    for column, model in [(dense, VARIANTS.dense), (coo, VARIANTS.coo), (structured, VARIANTS.structured)]:
        assert float(table["Mean per-output R2 (test)"][column]) == pytest.approx(ev[model]["mean_r2"], rel=1e-12)
        tool, thermal = ev[model]["per_output"]["tool_wear_vb_mm"], ev[model]["per_output"]["thermal_displacement_um"]
        assert float(table["Tool wear R2 (test)"][column]) == pytest.approx(tool["r2"], rel=1e-12)
        assert float(table["Thermal R2 (test)"][column]) == pytest.approx(thermal["r2"], rel=1e-12)
    cpu = _json(smoke_run, METRICS.cpu_benchmark)
    timed = {(r["variant"], r["median_ms"]) for r in cpu["results"]}
    for column, variant in [(dense, VARIANTS.dense), (coo, VARIANTS.coo), (structured, VARIANTS.structured)]:
        assert (variant, float(table["CPU inference (ms)"][column])) in timed
    if _json(smoke_run, METRICS.gpu_benchmark).get("skipped"):
        assert set(table["GPU inference (ms)"].values()) - {"GPU inference (ms)", "gpu_benchmark.json"} == {"not measured"}
    assert int(table["Memory (weight bytes, indices counted)"][coo]) == conversion["storage_bytes"]["coo"]


def test_checklist_follows_the_measurements(smoke_run):
    if "09" not in _present():
        pytest.skip("notebook 09 not present")
    items = {i["item"]: i for i in _json(smoke_run, METRICS.validation_checklist)["items"]}
    assert all(i["status"] in ("pass", "fail", "not run") for i in items.values())
    gpu_skipped = _json(smoke_run, METRICS.gpu_benchmark).get("skipped")
    gpu_items = [i for name, i in items.items() if name.startswith("GPU speedup")]
    assert gpu_items and all((i["status"] == "not run") == bool(gpu_skipped) for i in gpu_items)
    match = items["Predictions match dense pruned model"]
    conversion = _json(smoke_run, METRICS.sparse_conversion)["validation"]
    assert match["measured"] >= conversion["max_abs_diff"]
    assert (match["status"] == "pass") == (match["measured"] < 1e-4)
    cpu = _json(smoke_run, METRICS.cpu_benchmark)
    coo = items["CPU speedup (COO, the original design)"]
    assert coo["measured"] in {r["speedup_vs_dense"] for r in cpu["results"] if r["variant"] == VARIANTS.coo}
    assert (coo["status"] == "pass") == (coo["measured"] >= 2.5)


def test_figures_exist_as_png_and_pdf(smoke_run):
    if "09" not in _present():
        pytest.skip("notebook 09 not present")
    for name in FIGURE_NAMES:
        for ext in FIGURE_FORMATS:
            path = smoke_run / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 5_000, path


def test_every_contract_file_the_checklist_counts_exists(smoke_run):
    missing = [f for f in contract_files() if not (smoke_run / f).is_file()]
    assert not missing


def test_one_name_per_model_in_every_results_file(smoke_run):
    """Evaluation, verification and benchmarks key their models by the registry's variant names."""
    variants = set(names(VARIANTS))
    keyed = {
        METRICS.test_evaluation: set(_json(smoke_run, METRICS.test_evaluation)["models"]),
        METRICS.model_verification: set(_json(smoke_run, METRICS.model_verification)["models"]),
        METRICS.cpu_benchmark: set(_json(smoke_run, METRICS.cpu_benchmark)["variants"]),
    }
    for metric, keys in keyed.items():
        assert keys and keys <= variants, (metric, keys - variants)
    assert keyed[METRICS.test_evaluation] == {VARIANTS.dense, VARIANTS.masked, VARIANTS.coo, VARIANTS.structured,
                                              VARIANTS.structured_ort, VARIANTS.structured_int8_ort}
    predicted = set(pd.read_csv(smoke_run / "metrics" / PREDICTIONS_FILE)["model"])
    assert predicted == keyed[METRICS.test_evaluation]


def test_deployable_spinn_is_exported_timed_scored_and_judged(smoke_run):
    """The structured ONNX export: parity in its sidecar, timed on the CPU, scored on the test
    split like its PyTorch model, a Table 1 column and a checklist item from those numbers."""
    side = json.loads((smoke_run / "export" / f"{VARIANTS.structured}.json").read_text())
    assert side["parity"]["passed"]
    cpu = _json(smoke_run, METRICS.cpu_benchmark)
    assert cpu["variants"][VARIANTS.structured_ort]["outputs_match"]
    ev = _json(smoke_run, METRICS.test_evaluation)["models"]
    assert ev[VARIANTS.structured_ort]["mean_r2"] == pytest.approx(ev[VARIANTS.structured]["mean_r2"], abs=1e-4)
    table = _table1(smoke_run)
    col = LABELS[VARIANTS.structured_ort]
    assert float(table["Mean per-output R2 (test)"][col]) == ev[VARIANTS.structured_ort]["mean_r2"]
    timed = {r["median_ms"] for r in cpu["results"] if r["variant"] == VARIANTS.structured_ort}
    assert float(table["CPU inference (ms)"][col]) in timed
    items = {i["item"]: i for i in _json(smoke_run, METRICS.validation_checklist)["items"]}
    item = items["CPU speedup (deployable SPINN: structured, ONNX Runtime)"]
    assert item["measured"] in {r["speedup_vs_dense"] for r in cpu["results"]
                                if r["variant"] == VARIANTS.structured_ort}
    assert "same runtime" in item["detail"]
    # As deployed: ONNX Runtime timed in a worker without torch, the limit and the int8 model beside it.
    ort = [p for name, p in cpu["processes"].items() if name.startswith("ort_worker/")]
    assert ort and all(p["imported"]["torch"] is False and len(p["variants"]) == 1 for p in ort)
    assert cpu["gemm_peak"] and all(r["pct_of_gemm_peak"] is not None for r in cpu["results"])
    assert {VARIANTS.dense, VARIANTS.structured_ort, VARIANTS.structured_int8_ort} <= {r["variant"] for r in cpu["results"]}
    assert all(r["rotations"] >= 1 for r in cpu["results"])  # speedups taken within rotations
    int8 = json.loads((smoke_run / "export" / f"{INT8_EXPORT}.json").read_text())
    assert int8["precision"] == "int8" and int8["parity"]["passed"] and int8["quantization"]["why"]
    assert cpu["variants"][VARIANTS.structured_int8_ort]["outputs_match"] and VARIANTS.structured_int8_ort in ev
    assert "- Deploy: " in (smoke_run / "tables" / f"{TABLE1}.md").read_text()  # the int8 rule, applied


def test_every_notebook_recorded_its_lineage(smoke_run):
    """Each notebook's record names what it read and wrote, and the files still match it."""
    from spinn_utils.core.io import file_sha256
    from spinn_utils.core.lineage import LINEAGE

    record = json.loads((smoke_run / LINEAGE).read_text())
    assert set(record) == set(_present())
    for nb, entry in record.items():
        assert set(entry["outputs"]) == set(STAGES[nb].writes)
        for rel, sha in {**entry["inputs"], **entry["outputs"]}.items():
            assert file_sha256(smoke_run / rel) == sha, (nb, rel)


def test_archive_takes_its_hashes_from_lineage(smoke_run):
    from spinn_utils.core.lineage import LINEAGE, recorded_hashes
    from spinn_utils.core.paths import ResultsPaths

    artifacts = _json(smoke_run, METRICS.artifacts)
    recorded = recorded_hashes(ResultsPaths(smoke_run))
    assert artifacts["verified"] and artifacts["sha256_from"] == LINEAGE
    assert artifacts["files"] and all(f["path"] in recorded and "sha256" not in f for f in artifacts["files"])


def test_baselines_and_physics_consistency_reach_table2(smoke_run):
    from spinn_utils.core.registry import BASELINES, TABLE2

    ev = _json(smoke_run, METRICS.test_evaluation)
    # The run's model has hard physics (the default): the soft one is its baseline, not the hard one.
    assert ev["physics"] == "hard"
    assert set(ev["baselines"]["models"]) == set(names(BASELINES)) - {BASELINES.hard_physics}
    assert len(ev["seed_runs"]["runs"]) == 1 and ev["seed_runs"]["dense"]["mean_r2"]["n"] == 1  # smoke: 1 seed
    consistency = ev["physics_consistency"]["models"]
    assert {VARIANTS.dense, VARIANTS.masked, VARIANTS.structured, BASELINES.no_physics} <= set(consistency)
    assert all(0.0 <= m["wear_decrease_fraction"] <= 1.0 for m in consistency.values())
    with open(smoke_run / "tables" / f"{TABLE2}.csv", newline="") as f:
        rows = {row["Metric"]: row for row in csv.DictReader(f)}
    assert float(rows["Mean per-output R2 (test)"]["Dense PINN, no physics"]) == \
        ev["baselines"]["models"][BASELINES.no_physics]["mean_r2"]
    assert float(rows["Mean per-output R2 (test)"]["Dense PINN, hard physics"]) == ev["models"][VARIANTS.dense]["mean_r2"]
    assert float(rows["Mean per-output R2 (test)"]["Dense PINN, soft physics"]) == \
        ev["baselines"]["models"][BASELINES.soft_physics]["mean_r2"]
    # Physics by construction: the run's models never let predicted wear fall.
    assert all(consistency[v]["wear_decrease_fraction"] == 0.0
               for v in (VARIANTS.dense, VARIANTS.masked, VARIANTS.structured))
