"""The sparsity sweep without a cluster: grid and pre-flight, resume bookkeeping, a failing point,
Ctrl-C, and Table 3 / break-even / magnitude-vs-random / checklist read from a sweep.json."""
import contextlib
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat
import pytest
import torch

from spinn_utils.benchmark.bench_config import available_cores
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.io import file_sha256, to_jsonable, write_json
from spinn_utils.core.registry import SWEEP_FIGURES, VARIANTS
from spinn_utils.core.results_files import write_result
from spinn_utils.core.results_schema_sweep import Sweep
from spinn_utils.pipeline import sweep as sweep_driver
from spinn_utils.pipeline.cli import main, parse_args
from spinn_utils.pipeline.notebooks import UsageError
from spinn_utils.pipeline.preflight import MANIFEST_FORMAT
from spinn_utils.pipeline.staging import LOCK
from spinn_utils.pipeline.sweep import cpu_busy_percent
from spinn_utils.pipeline.sweep_spec import make_spec, point_id
from spinn_utils.pipeline.sweep_tasks import is_complete, run_notebooks, share_seed
from spinn_utils.reporting.checklist import checklist
from spinn_utils.reporting.figures import FigureConfig
from spinn_utils.reporting.results import ReportConfig, RunResults
from spinn_utils.reporting.sweep_figures import make_sweep_figures, sweep_figure_paths
from spinn_utils.reporting.sweep_report import (
    BUSY_PERCENT,
    break_even,
    load_sweep,
    magnitude_vs_random,
    pareto_points,
    summary_of,
    sweep_summary,
    table3_frames,
    table3_paths,
    write_table3,
)

ROOT = Path(__file__).resolve().parents[1]


def spec_of(argv, tmp_path):
    return make_spec(parse_args(["sweep", *argv, "--output", str(tmp_path / "out")])[0], ROOT / "notebooks")


def test_grid_seeds_and_sweep_file_make_the_points(tmp_path):
    spec = spec_of(["--grid", "target_sparsity=0.5,0.9", "--grid", "prune_method=magnitude", "--seeds", "1,2"], tmp_path)
    assert [p["id"] for p in spec.points()] == [point_id(s, "magnitude", seed) for seed in (1, 2) for s in (0.5, 0.9)]
    assert spec.point_folder("x") == tmp_path / "out" / "sweep" / "points" / "x"
    p = spec.point_parameters(spec.points()[0])
    assert p["03"]["target_sparsity"] == 0.5 and p["03"]["results_dir"] == str(spec.point_folder(spec.points()[0]["id"]))
    assert p["08"]["run_cv"] is False and p["08"]["run_baselines"] is False and p["08"]["n_seeds"] == 1
    assert spec.seed_parameters(2)["02"]["epochs"] == 40  # the light schedule
    for suffix, text in ((".json", json.dumps({"grid": {"target_sparsity": [0.8]}, "seeds": [7],
                                                 "parameters": {"epochs": 3}})),
                         (".yaml", "grid:\n  target_sparsity: [0.8]\nseeds: [7]\nparameters:\n  epochs: 3\n")):
        file = tmp_path / f"sweep{suffix}"
        file.write_text(text)
        spec = spec_of(["--sweep-file", str(file)], tmp_path)
        assert [p["id"] for p in spec.points()] == [point_id(0.8, m, 7) for m in ("magnitude", "random")]
        assert spec.seed_parameters(7)["02"]["epochs"] == 3  # a sweep file's parameter wins over the light one
    smoke = spec_of(["--smoke"], tmp_path)
    assert smoke.smoke and smoke.methods == ("magnitude", "random") and "epochs" not in smoke.seed_parameters(42)["02"]
    assert smoke.point_parameters(smoke.points()[1])["03"]["prune_method"] == "random"


@pytest.mark.parametrize("argv, says", [
    (["--grid", "target_sparsity=1.5"], "--grid target_sparsity=1.5"),
    (["--grid", "target_sparsity=abc"], "expects Optional[float]"),
    (["--grid", "n_stages=2,3"], "not a sweep axis"),
    (["--grid", "prune_method=lottery"], "PruneConfig.prune_method: input should be 'magnitude' or 'random', got 'lottery'"),
    (["-p", "bogus=1"], "no selected notebook has a parameter 'bogus'"),
    (["-p", "epochs=0"], "TrainConfig.epochs: input should be greater than or equal to 1, got 0"),
    (["-p", "results_dir=x"], "--output"),
    (["--seeds", "4,4"], "distinct"),
    (["--sweep-file", "missing.json"], "no such file"),
    (["--seeds", ""], "--seeds is empty"),
    (["--seeds", "4294967296"], "0..4294967295"),
    (["--seeds", "-1"], "0..4294967295"),
    (["--kernel", "pyhton3"], "no such Jupyter kernel"),
    (["--scheduler", "garbage"], "not a Dask scheduler address"),
    (["--scheduler", "http://127.0.0.1:8786"], "not a Dask scheduler address"),
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot connect"),
    (["--sweep-file", "grid: 5"], '"grid" must be a mapping'),
    (["--sweep-file", "parameters: [1, 2]"], '"parameters" must be a mapping'),
    (["--sweep-file", "grid: {target_sparsity: [null]}"], "null is not a value"),
    (["--sweep-file", 'seeds: "42"'], "\"seeds\" must be a list of integers like [42, 43], got '42'"),
    (["--sweep-file", "seeds: []"], "expected distinct integers"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, says):
    """Every sweep option is checked before a folder, a lock or a cluster exists."""
    if argv[0] == "--sweep-file" and ":" in argv[1]:  # the file's body, written to a file
        (tmp_path / "sweep.yaml").write_text(argv[1])
        argv = ["--sweep-file", str(tmp_path / "sweep.yaml")]
    out = tmp_path / "out"
    assert main(["sweep", *argv, "--output", str(out)], notebook_dir=ROOT / "notebooks") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (out / LOCK).exists()


def test_a_refused_scheduler_is_reported_within_5_s(tmp_path, capsys):
    start = time.perf_counter()
    assert main(["sweep", "--smoke", "--scheduler", "tcp://127.0.0.1:1", "--output", str(tmp_path / "o")],
                notebook_dir=ROOT / "notebooks") == 2
    assert time.perf_counter() - start < 5 + 3  # 5 s connect limit, plus reading the notebooks' parameters
    assert "cannot connect" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_sweep_without_a_gpu_is_refused_before_the_cluster(tmp_path, capsys):
    assert main(["sweep", "--smoke", "--device", "cuda", "--output", str(tmp_path / "o")],
                notebook_dir=ROOT / "notebooks") == 2
    assert "torch sees no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _lineage_folder(folder: Path, notebooks: dict[str, str]) -> None:
    """A results folder whose lineage records ``{notebook: file written}``."""
    record = {}
    for nb, rel in notebooks.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"written by {nb}")
        record[nb] = {"inputs": {}, "outputs": {rel: file_sha256(folder / rel)}}
    write_json(folder / "lineage.json", record)
    (folder / "executed").mkdir(exist_ok=True)
    (folder / "executed" / "01_x.ipynb").write_text("{}")


def test_resume_needs_a_complete_lineage_and_the_same_parameters(tmp_path):
    seed = tmp_path / "seed"
    _lineage_folder(seed, {"01": "data/train.csv", "02": "checkpoints/dense.pt"})
    point = tmp_path / "point"
    share_seed(seed, point, ("01", "02"))
    assert (point / "data/train.csv").read_text() == "written by 01"
    assert (point / "executed/01_x.ipynb").is_file()
    assert (point / "data/train.csv").stat().st_ino == (seed / "data/train.csv").stat().st_ino  # linked
    params = {"03": {"target_sparsity": 0.5}}
    assert not is_complete(point, ("01", "02"), params)  # no manifest yet
    write_json(point / "manifest.json", {"status": "ok", "sweep": {"parameters": params}})
    assert is_complete(point, ("01", "02"), params)
    assert not is_complete(point, ("01", "02"), {"03": {"target_sparsity": 0.9}})  # other parameters
    assert not is_complete(point, ("01", "02", "03"), params)  # notebook 03 never finished
    (point / "data/train.csv").unlink()
    (point / "data/train.csv").write_text("changed")
    assert not is_complete(point, ("01", "02"), params)  # a file no longer matches its lineage


def test_a_failing_notebook_is_recorded_with_its_one_line_error(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("results_dir = ''\nsmoke = False\nseed = 0")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("raise ValueError('boom at ' + str(seed))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "notebooks").mkdir()
    path = tmp_path / "notebooks" / "03_fail.ipynb"
    nbformat.write(nb, path)
    folder = tmp_path / "point"
    folder.mkdir()
    rec = run_notebooks(folder, {"03": str(path)}, {"03": {"seed": 7}}, "python3", {"id": "p"})
    assert rec["status"] == "failed" and rec["error"].startswith("notebook 03: cell ")
    assert "ValueError: boom at 7" in rec["error"] and "\n" not in rec["error"]
    manifest = json.loads((folder / "manifest.json").read_text())  # the driver's own, with the task's values
    assert manifest["status"] == "failed" and rec["error"] == f"notebook 03: {manifest['notebooks'][0]['error']}"
    assert manifest["format"] == MANIFEST_FORMAT and manifest["sweep"] == {"id": "p", "parameters": {"03": {"seed": 7}}}
    assert (folder / "executed" / "03_fail.ipynb").is_file()


def test_ctrl_c_cancels_and_exits_130_and_releases_the_lock(tmp_path, monkeypatch, capsys):
    spec = spec_of(["--smoke"], tmp_path)
    client = types.SimpleNamespace(scheduler_info=lambda: {"address": "inproc", "workers": {}})
    monkeypatch.setattr(sweep_driver, "dask_client", lambda *a, **k: contextlib.nullcontext(client))

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_driver, "train_points", interrupted)
    assert sweep_driver.run_sweep(spec) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (spec.output / LOCK).exists()


def _point(s, method, seed, r2, dense_r2=0.8, ms=None, status="ok"):
    p = {"id": point_id(s, method, seed), "target_sparsity": s, "prune_method": method, "seed": seed,
         "seconds": 1.0, "folder": f"points/{point_id(s, method, seed)}", "status": status, "resumed": False,
         "error": None if status == "ok" else "notebook 03: cell 5: RuntimeError: x"}
    if status != "ok":
        return p
    test = {v: {"mean_r2": value, "per_output": {}} for v, value in
            ((VARIANTS.masked, r2), (VARIANTS.structured, r2 - 0.05), (VARIANTS.dense, dense_r2))}
    dense_ms = 10.0

    def timing(m):
        return {"median_ms": m, "iqr_ms": 0.1, "repeats": 50, "speedup_vs_dense": dense_ms / m, "threads": 2}

    latency = {str(b): {VARIANTS.dense: timing(dense_ms), **{v: timing(m) for v, m in (ms or {}).items()}}
               for b in (1, 1000)}
    return {**p, "test": test, "latency": latency}


def synthetic_sweep_json() -> dict:
    """Magnitude beats random by 0.05 +- ~0 at 0.5 and 0.9; CSR breaks even from 0.9, COO never;
    one random point failed (as sweep.json holds it)."""
    points = []
    for seed, noise in ((1, 0.0), (2, 0.01), (3, -0.01)):
        for s, csr_ms in ((0.5, 20.0), (0.9, 8.0), (0.98, 4.0)):
            lat = {VARIANTS.csr: csr_ms, VARIANTS.coo: 30.0, VARIANTS.masked: 10.0, VARIANTS.structured: 5.0}
            points.append(_point(s, "magnitude", seed, 0.8 - s / 10 + noise, ms=lat))
            failed = (s, seed) == (0.98, 3)
            points.append(_point(s, "random", seed, 0.75 - s / 10 + noise, ms=lat, status="failed" if failed else "ok"))
    return {"started": "2026-12-01T00:00:00+00:00", "finished": "2026-12-01T00:10:00+00:00",
            "command": ["spinn-run", "sweep"], "smoke": False, "device": "cpu",
            "grid": {"target_sparsity": [0.5, 0.9, 0.98], "prune_method": ["magnitude", "random"]},
            "seeds": [1, 2, 3], "settings": {}, "cluster": {}, "wall_seconds": {"training": 1.0, "timing": 1.0, "total": 2.0},
            "seed_runs": [{"seed": k, "status": "ok", "error": None, "seconds": 1.0} for k in (1, 2, 3)],
            "points": points, "timing": {"threads": [2]}, "git": {}, "versions": {}, "environment": {}, "summary": {}}


def synthetic_sweep() -> Sweep:
    return Sweep.model_validate(synthetic_sweep_json())


def test_sweep_json_is_read_through_its_schema(tmp_path):
    """A renamed key is a one-line error naming it, never a silent 'not measured' in Table 3."""
    folder = tmp_path / "r" / "sweep"
    write_result(folder / "sweep.json", synthetic_sweep())
    assert load_sweep(tmp_path / "r") == synthetic_sweep()
    body = json.loads((folder / "sweep.json").read_text())
    body["points"][0]["latency"]["1000"]["dense"]["median"] = body["points"][0]["latency"]["1000"]["dense"].pop("median_ms")
    write_json(folder / "sweep.json", body)
    with pytest.raises(SpinnError, match=r"sweep/sweep.json: missing key 'points.0.latency.1000.dense.median_ms'"):
        load_sweep(tmp_path / "r")


def test_table3_counts_failed_points_and_break_even_is_measured(tmp_path):
    sweep = synthetic_sweep()
    text, numbers = table3_frames(sweep)
    assert list(text.index) == ["50.0%", "90.0%", "98.0%"]
    assert "1 failed" in text.loc["98.0%", "random R2"] and "(n=2)" in text.loc["98.0%", "random R2"]
    assert text.loc["50.0%", "magnitude R2"] == "0.750 ± 0.010 (n=3)"
    assert text.loc["90.0%", "CSR b1000"] == "8 ms (1.25x)"
    assert numbers.loc[2, "random_failed"] == 1
    assert break_even(sweep, VARIANTS.csr, 1000).text == "90.0%"
    assert break_even(sweep, VARIANTS.coo, 1000).text == "none up to 98.0%"
    rows = magnitude_vs_random(sweep)
    assert [r.n for r in rows] == [3, 3, 2] and all(r.beats for r in rows)
    assert rows[0].mean == pytest.approx(0.05)
    front = sorted((p for p in pareto_points(sweep) if p["pareto"]), key=lambda p: p["ms"])
    assert front and all(a["ms"] < b["ms"] and a["r2"] < b["r2"] for a, b in zip(front, front[1:]))
    written = write_table3(sweep, tmp_path)
    assert [p.name for p in written] == ["table3.md", "table3.tex", "table3.csv"] and written == table3_paths(tmp_path)
    assert "| Target sparsity |" in written[0].read_text()
    figures = make_sweep_figures(sweep, tmp_path, FigureConfig(dpi=50, formats=("png",)))
    assert {p.stem for p in figures} == {SWEEP_FIGURES.accuracy, SWEEP_FIGURES.latency, SWEEP_FIGURES.pareto}
    assert figures == sweep_figure_paths(tmp_path, FigureConfig(dpi=50, formats=("png",)))


def test_table3_states_what_ran_beside_the_timing():
    body = synthetic_sweep_json()
    body["timing"] = {"threads": [2], "cpu_busy_percent_before": 3.2, "load_average_1min_before": 2.4}
    notes = " ".join(table3_frames(Sweep.model_validate(body))[0].attrs["notes"])
    assert "CPU 3% busy over 1 s before" in notes and "2.4" not in notes
    body["timing"] = {"threads": [2], "load_average_1min_before": 2.4}  # a sweep from before the busy check
    assert "load average 2.4" in " ".join(table3_frames(Sweep.model_validate(body))[0].attrs["notes"])


def test_the_checklist_reads_the_summary_the_sweep_stored():
    """Computed once, by the sweep: the checklist (and notebook 10) read sweep.json's summary."""
    body = synthetic_sweep_json()
    body["summary"] = to_jsonable(sweep_summary(Sweep.model_validate(body)))
    assert summary_of(Sweep.model_validate(body)).model_dump() == body["summary"]
    body["summary"]["magnitude_vs_random"] = [{"sparsity": 0.5, "mean": -0.1, "sem": 0.01, "n": 3, "beats": False}]
    items = {i.item: i for i in checklist(RunResults(), [], ReportConfig(), sweep=Sweep.model_validate(body)).items}
    assert items["Magnitude beats random pruning (sweep)"].measured == "0/1 sparsities"


def test_sparsity_labels_keep_their_digits():
    body = synthetic_sweep_json()
    for p in body["points"]:
        p["target_sparsity"] = 0.9999 if p["target_sparsity"] == 0.98 else p["target_sparsity"]
    sweep = Sweep.model_validate(body)
    assert list(table3_frames(sweep)[0].index) == ["50.0%", "90.0%", "99.99%"]
    assert break_even(sweep, VARIANTS.coo, 1000).text == "none up to 99.99%"


def test_a_timing_on_a_busy_cpu_is_marked_and_gives_no_speedup():
    body = synthetic_sweep_json()
    body["timing"] = {"threads": [2], "cpu_busy_percent_before": 3.0, "cpu_busy_percent_after": 80.0}
    sweep = Sweep.model_validate(body)
    text, numbers = table3_frames(sweep)
    assert text.loc["90.0%", "CSR b1000"] == "8 ms (unreliable)" and "x)" not in " ".join(text.stack())
    assert numbers["spinn_csr_b1000_speedup"].isna().all() and numbers["spinn_csr_b1000_ms"].notna().all()
    assert "Timing unreliable: others used 80% of the CPU" in " ".join(text.attrs["notes"])
    assert break_even(sweep, VARIANTS.csr, 1000).text.startswith("unreliable")
    items = {i.item: i for i in checklist(RunResults(), [], ReportConfig(), sweep=sweep).items}
    assert items["Sparse-storage break-even sparsity (sweep, measured)"].status == "not run"


@pytest.mark.slow
def test_the_idle_check_sees_cores_in_use():
    """The timing's idle check measures now, not the last minute: busy while spinners run."""
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(available_cores())]
    try:
        time.sleep(0.5)  # started
        assert cpu_busy_percent(1.0) > BUSY_PERCENT
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_checklist_gains_the_sweep_items_only_when_a_sweep_exists():
    items = {i.item: i for i in checklist(RunResults(), [], ReportConfig()).items}
    assert not any("sweep" in name for name in items)
    check = checklist(RunResults(), [], ReportConfig(), sweep=synthetic_sweep())
    items = {i.item: i for i in check.items}
    mag = items["Magnitude beats random pruning (sweep)"]
    assert mag.status == "pass" and mag.measured == "3/3 sparsities" and "standard error" in mag.threshold
    be = items["Sparse-storage break-even sparsity (sweep, measured)"]
    assert be.status == "fail" and "CSR b1000 90.0%" in be.measured and "COO b1000 none up to 98.0%" in be.measured
    claim = next(c for c in check.claims if "generalization" in c.claim)
    assert "sweep (magnitude masked - dense" in claim.evidence
    body = synthetic_sweep_json()
    for p in body["points"]:
        if p["prune_method"] == "random" and p["status"] == "ok" and p["target_sparsity"] == 0.5:
            p["test"][VARIANTS.masked]["mean_r2"] += 0.2  # random wins at 50%
    mag = {i.item: i for i in checklist(RunResults(), [], ReportConfig(), sweep=Sweep.model_validate(body)).items}["Magnitude beats random pruning (sweep)"]
    assert mag.status == "fail" and mag.measured == "2/3 sparsities"


def test_notebook_10_runs_a_sweep_through_the_same_checks(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(sweep_driver, "run_sweep", lambda spec, workers=None: seen.append((spec, workers)) or 0)
    assert sweep_driver.sweep_here(str(tmp_path / "r"), [0.5, 0.9], ["magnitude"], [3], smoke=True, workers=1) == 0
    ((spec, workers),) = seen
    assert workers == 1 and spec.sparsities == (0.5, 0.9) and spec.seeds == (3,) and spec.smoke
    with pytest.raises(UsageError, match="target_sparsity=1.5"):
        sweep_driver.sweep_here(str(tmp_path / "r"), [1.5], ["magnitude"], [3])
    with pytest.raises(UsageError, match="no notebooks folder"):
        sweep_driver.sweep_here(str(tmp_path / "r"), [0.5], ["magnitude"], [3], notebook_dir=str(tmp_path / "none"))


def test_the_default_grid_sweeps_both_methods_and_passes_each_to_notebook_03(tmp_path):
    spec = spec_of([], tmp_path)
    assert spec.methods == ("magnitude", "random") and len(spec.points()) == 36
    random_point = next(p for p in spec.points() if p["prune_method"] == "random")
    assert spec.point_parameters(random_point)["03"]["prune_method"] == "random"


@pytest.mark.slow
def test_the_embedded_cluster_leaves_the_environment_as_it_found_it(monkeypatch):
    """The nanny writes OMP_NUM_THREADS=1 and MALLOC_TRIM_THRESHOLD_ into the driver's
    environment; the timing that follows (and its worker processes) must not inherit them."""
    import os

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    before = dict(os.environ)
    with sweep_driver.dask_client(1, None) as client:
        assert client.submit(os.getenv, "MALLOC_TRIM_THRESHOLD_").result() == "65536"  # the nanny's
        assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == "65536"  # ... written here too
    assert dict(os.environ) == before
