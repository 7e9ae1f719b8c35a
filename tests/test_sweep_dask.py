"""A smoke sweep on a real Dask cluster: a ``dask scheduler`` and a ``dask worker`` started as
subprocesses on loopback (no mocks), then resumed on the embedded LocalCluster, then drawn by
notebook 10. One sparsity, both methods, one seed, the notebooks' smoke settings."""
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import papermill
import pytest

from spinn_utils.core.registry import DEPLOY_CARD, RECOMMENDED_DIR, SWEEP_FIGURES, VARIANTS
from spinn_utils.pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # a Dask cluster and a smoke sweep
DASK = str(Path(sys.executable).parent / "dask")
START_TIMEOUT_S = 90  # the scheduler writes its address file within seconds on an idle machine


def _wait_for(path: Path, procs: list) -> dict:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size:
            return json.loads(path.read_text())
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    raise RuntimeError(f"the dask scheduler did not start (see {path.parent / 'dask.log'})")


@pytest.fixture
def dask_cluster(tmp_path):
    """The address of a loopback scheduler with one one-thread worker; both killed afterwards."""
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    file, procs = tmp_path / "scheduler.json", []
    with open(tmp_path / "dask.log", "wb") as log:
        try:
            procs.append(subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                           "--scheduler-file", str(file)], env=env, stdout=log, stderr=log))
            address = _wait_for(file, procs)["address"]
            procs.append(subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                           "--nworkers", "1", "--no-dashboard", "--memory-limit", "0"],
                                          env=env, stdout=log, stderr=log))
            yield address
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=30)


def test_smoke_sweep_on_a_dask_cluster_resumes_and_is_drawn(tmp_path, dask_cluster, capsys):
    out = tmp_path / "results"
    argv = ["sweep", "--smoke", "--grid", "target_sparsity=0.5", "--seeds", "42", "--output", str(out)]  # both methods
    assert main([*argv, "--scheduler", dask_cluster], notebook_dir=ROOT / "notebooks") == 0
    said = capsys.readouterr().out
    assert f"dask scheduler {dask_cluster}: 1 worker(s)" in said and "dashboard:" in said

    sweep = json.loads((out / "sweep" / "sweep.json").read_text())
    point, random = sweep["points"]
    assert [p["prune_method"] for p in sweep["points"]] == ["magnitude", "random"]
    assert all(p["status"] == "ok" and not p["resumed"] and p["error"] is None for p in sweep["points"])
    assert random["sparsity_reached"] == pytest.approx(0.5, abs=0.005)
    assert json.loads((out / "sweep" / random["folder"] / "metrics" / "pruning.json").read_text()
                      )["config"]["prune_method"] == "random"
    assert sweep["cluster"]["scheduler"] == dask_cluster and sweep["timing"]["batches"] == [1, 1000]
    assert point["sparsity_reached"] == pytest.approx(0.5, abs=0.005)
    assert set(point["test"]) >= {VARIANTS.dense, VARIANTS.masked, VARIANTS.structured}
    assert point["params"][VARIANTS.masked]["nonzero"] < point["params"][VARIANTS.dense]["nonzero"]
    timed = {VARIANTS.dense, VARIANTS.masked, VARIANTS.coo, VARIANTS.csr, VARIANTS.structured, VARIANTS.structured_ort,
             VARIANTS.structured_int8_ort}
    for batch in ("1", "1000"):
        assert set(point["latency"][batch]) == timed
    assert point.get("latency_error") is None  # null fields are left out
    assert not random["latency"] and random["latency_error"].startswith("not timed, by design")
    assert point["flops"][VARIANTS.structured]["flops"] < point["flops"][VARIANTS.dense]["flops"]
    # measured by notebook 08 for the pipeline's models even though the point skips the baselines
    consistency = point["physics_consistency"]
    assert set(consistency) == {VARIANTS.dense, VARIANTS.masked, VARIANTS.structured}
    assert all(0 <= m["wear_decrease_fraction"] <= 1 for m in consistency.values())

    folder = out / "sweep" / point["folder"]
    assert set(json.loads((folder / "lineage.json").read_text())) == {"01", "02", "03", "05_5", "08"}
    assert {p.stem[:2] for p in (folder / "executed").glob("*.ipynb")} == {"01", "02", "03", "05", "08"}
    assert json.loads((folder / "manifest.json").read_text())["threads"] == 1
    # torch in the point's kernels ran on one thread (the environment the task gave them)
    assert json.loads((folder / "metrics" / "pruning.json").read_text())["environment"]["torch_threads"] == 1
    assert (out / "sweep" / "tables" / "table3.md").is_file()

    # Resumed on the embedded LocalCluster: the point is complete, so nothing is trained or re-timed.
    assert main([*argv, "--workers", "1"], notebook_dir=ROOT / "notebooks") == 0
    assert "dashboard: http://127.0.0.1:" in capsys.readouterr().out  # bokeh serves it; the address is printed
    again = json.loads((out / "sweep" / "sweep.json").read_text())
    assert all(p["resumed"] for p in again["points"]) and again["points"][0]["latency"] == point["latency"]
    assert again["summary"]["magnitude_vs_random"][0]["n"] == 1  # paired by seed (one seed: no verdict)

    executed = tmp_path / "10_executed.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "10_sparsity_sweep.ipynb"), str(executed),
                               parameters={"results_dir": str(out), "smoke": True}, cwd=str(ROOT),
                               progress_bar=False)
    for name in (SWEEP_FIGURES.accuracy, SWEEP_FIGURES.latency, SWEEP_FIGURES.pareto):
        assert (out / "sweep" / "figures" / f"{name}.png").is_file()

    # A point is a run like any other: the driver re-runs it from notebook 03 (docs/sweeps.md).
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["notebook"][:2] for e in manifest["notebooks"]] == ["01", "02", "03", "05", "08"]
    assert main(["run", "--smoke", "--output", str(folder), "--from", "03"], notebook_dir=ROOT / "notebooks") == 0
    rerun = json.loads((folder / "manifest.json").read_text())
    assert rerun["status"] == "ok" and [e.get("from_run") is None for e in rerun["notebooks"]][:3] == [False, False, True]
    assert (folder / "tables" / "table1.md").is_file()


def test_smoke_sweep_then_recommend_then_predict(tmp_path, capsys):
    """The chain a user runs: a one-seed smoke sweep, ``recommend`` (which races a second seed at the
    sweep's sparsity, retrains the choice, times it and writes the card), then the card's command."""
    out = tmp_path / "results"
    assert main(["sweep", "--smoke", "--grid", "target_sparsity=0.5", "--grid", "prune_method=magnitude",
                 "--seeds", "42", "--output", str(out), "--workers", "1"], notebook_dir=ROOT / "notebooks") == 0
    threads = json.loads((out / "sweep" / "sweep.json").read_text())["timing"]["threads"][0]
    capsys.readouterr()
    rc = main(["recommend", "--output", str(out), "--threads", str(threads), "--max-seeds", "2",
               "--max-r2-drop", "0.5", "--workers", "1"])
    said = capsys.readouterr()
    assert rc in (0, 1), said.err
    assert "race: " in said.out and "recommended: " in said.out and "deploy card: " in said.out
    race = json.loads((out / "sweep" / "race" / "sweep" / "sweep.json").read_text())
    assert [p["seed"] for p in race["points"]] == [43]  # one added seed, at the sweep's sparsity only

    card = json.loads((out / "recommended" / "deploy.json").read_text())
    model = Path(card["model"]["file"])
    assert hashlib.sha256(model.read_bytes()).hexdigest() == card["model"]["sha256"]
    assert card["latency"]["1000"]["dense"]["ms"] > 0 and card["machine"]["cpu_flags"] is not None
    assert (out / RECOMMENDED_DIR / DEPLOY_CARD).read_text().startswith(f"# Deploy: {card['model']['label']}")
    test_csv = out / "recommended" / "data" / "test.csv"
    if model.suffix == ".onnx":  # the card's own command, as a user would paste it
        command = card["how_to_run"].replace("windows.csv", str(test_csv)).replace(
            "predictions.csv", str(tmp_path / "predicted.csv"))
        proc = subprocess.run(shlex.split(command.replace("python", sys.executable, 1)), capture_output=True,
                              text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert "predicted_tool_wear_vb_mm" in (tmp_path / "predicted.csv").read_text().splitlines()[0]
    else:
        namespace = {}
        exec(card["how_to_run"], namespace)  # noqa: S102 - the card's Python line loads the model
        assert namespace["model"] is not None
