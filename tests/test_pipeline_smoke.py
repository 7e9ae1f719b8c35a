"""The whole notebook chain under ``run_all.py --smoke``, then the results contract checked.

Runs once per session (module fixture) in a temp dir with the Agg backend; each test then
checks one part of what the run wrote against the JSONs it came from.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import run_all

ROOT = Path(__file__).resolve().parents[1]

# What each notebook must leave behind (ARCHITECTURE.md, "Results contract").
CONTRACT = {
    "01": ["data/train.csv", "data/val.csv", "data/test.csv", "data/scaler.json", "metrics/data_summary.json"],
    "02": ["checkpoints/dense_pinn.pt", "metrics/dense_training.json"],
    "03": ["checkpoints/spinn_pruned.pt", "checkpoints/spinn_structured.pt", "metrics/pruning.json"],
    "04": ["metrics/artifacts.json"],
    "05": ["metrics/model_verification.json"],
    "05_5": ["checkpoints/spinn_sparse_final.pt", "metrics/sparse_conversion_report.json"],
    "06": ["metrics/gpu_benchmark.json"],
    "07": ["metrics/cpu_benchmark.json"],
    "08": ["metrics/test_evaluation.json"],
    "09": ["metrics/validation_checklist.json", "tables/table1.md", "tables/table1.tex", "tables/table1.csv"],
}


def _present() -> dict[str, Path]:
    out = {}
    for p in run_all.discover():
        major, minor = run_all.notebook_key(p)
        out[f"{major:02d}" + (f"_{minor}" if minor else "")] = p
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


def _json(root: Path, rel: str) -> dict:
    return json.loads((root / rel).read_text())


def test_every_notebook_ran_and_is_recorded(smoke_run):
    manifest = _json(smoke_run, "manifest.json")
    assert manifest["status"] == "ok" and manifest["smoke"] is True
    ran = [n["notebook"] for n in manifest["notebooks"]]
    assert ran == [p.name for p in _present().values()]
    assert all(n["status"] == "ok" and n["seconds"] > 0 for n in manifest["notebooks"])
    assert all((smoke_run / "executed" / name).is_file() for name in ran)
    assert manifest["versions"]["torch"] and manifest["environment"]["cpu_model"]


def test_results_contract(smoke_run):
    missing = [
        f"{nb}: {rel}"
        for nb in _present()
        for rel in CONTRACT.get(nb, [])
        if not (smoke_run / rel).is_file()
    ]
    assert not missing, f"results contract broken: {missing}"
    for path in (smoke_run / "metrics").glob("*.json"):
        assert "environment" in json.loads(path.read_text()), f"{path.name} lacks its environment"


def _table1(root: Path) -> dict[str, dict[str, str]]:
    import csv

    with open(root / "tables" / "table1.csv", newline="") as f:
        return {row["Metric"]: row for row in csv.DictReader(f)}


def test_table1_numbers_come_from_the_jsons(smoke_run):
    if "09" not in _present():
        pytest.skip("notebook 09 not present")
    table = _table1(smoke_run)
    ev = _json(smoke_run, "metrics/test_evaluation.json")["models"]
    verification = _json(smoke_run, "metrics/model_verification.json")["models"]
    conversion = _json(smoke_run, "metrics/sparse_conversion_report.json")
    params = table["Parameters (non-zero)"]
    assert int(params["Dense PINN"]) == verification["dense"]["params"]["nonzero"] == 666_882
    assert int(params["SPINN (COO)"]) == conversion["params"]["nonzero"]
    assert int(params["SPINN (structured)"]) == verification["spinn_structured"]["params"]["nonzero"]
    for column, model in [("Dense PINN", "dense"), ("SPINN (COO)", "spinn_sparse_coo"),
                          ("SPINN (structured)", "spinn_structured")]:
        assert float(table["Mean per-output R2 (test)"][column]) == pytest.approx(ev[model]["mean_r2"], rel=1e-12)
        tool, thermal = ev[model]["per_output"]["tool_wear_vb_mm"], ev[model]["per_output"]["thermal_displacement_um"]
        assert float(table["Tool wear R2 (test)"][column]) == pytest.approx(tool["r2"], rel=1e-12)
        assert float(table["Thermal R2 (test)"][column]) == pytest.approx(thermal["r2"], rel=1e-12)
    cpu = _json(smoke_run, "metrics/cpu_benchmark.json")
    timed = {(r["variant"], r["median_ms"]) for r in cpu["results"]}
    for column, variant in [("Dense PINN", "dense"), ("SPINN (COO)", "spinn_coo"), ("SPINN (structured)", "spinn_structured")]:
        assert (variant, float(table["CPU inference (ms)"][column])) in timed
    if _json(smoke_run, "metrics/gpu_benchmark.json").get("skipped"):
        assert set(table["GPU inference (ms)"].values()) - {"GPU inference (ms)", "gpu_benchmark.json"} == {"not measured"}
    assert int(table["Memory (weight bytes, indices counted)"]["SPINN (COO)"]) == conversion["storage_bytes"]["coo"]


def test_checklist_follows_the_measurements(smoke_run):
    if "09" not in _present():
        pytest.skip("notebook 09 not present")
    items = {i["item"]: i for i in _json(smoke_run, "metrics/validation_checklist.json")["items"]}
    assert all(i["status"] in ("pass", "fail", "not run") for i in items.values())
    gpu_skipped = _json(smoke_run, "metrics/gpu_benchmark.json").get("skipped")
    gpu_items = [i for name, i in items.items() if name.startswith("GPU speedup")]
    assert gpu_items and all((i["status"] == "not run") == bool(gpu_skipped) for i in gpu_items)
    match = items["Predictions match dense pruned model"]
    conversion = _json(smoke_run, "metrics/sparse_conversion_report.json")["validation"]
    assert match["measured"] >= conversion["max_abs_diff"]
    assert (match["status"] == "pass") == (match["measured"] < 1e-4)
    cpu = _json(smoke_run, "metrics/cpu_benchmark.json")
    coo = items["CPU speedup (COO, the seed's design)"]
    assert coo["measured"] in {r["speedup_vs_dense"] for r in cpu["results"] if r["variant"] == "spinn_coo"}
    assert (coo["status"] == "pass") == (coo["measured"] >= 2.5)


def test_figures_exist_as_png_and_pdf(smoke_run):
    if "09" not in _present():
        pytest.skip("notebook 09 not present")
    names = {"parameters", "r2_per_output", "latency_vs_batch", "predicted_vs_measured",
             "wear_over_time", "pruning_progression"}
    for name in names:
        for ext in ("png", "pdf"):
            path = smoke_run / "figures" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 5_000, path
