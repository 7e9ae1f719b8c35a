"""Time order within an experiment: a time that restarts in every run is refused without a run
column and joined into cumulative time with one; the consumers of time order follow it."""
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything draws

import numpy as np
import pandas as pd
import pytest

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import METRICS
from spinn_utils.core.results_files import read_result
from spinn_utils.data.dataset import load_prepared, make_prepared, save_prepared
from spinn_utils.data.example import main as example_main
from spinn_utils.data.example import write_example
from spinn_utils.data.prepare import cap_rows, data_summary, load_table, prepare
from spinn_utils.data.schema import (
    CUM_TIME_COL,
    RUN_START_COL,
    DataConfig,
    data_config_for,
    read_data_config,
)
from spinn_utils.evaluation.consistency import wear_decrease_fraction
from spinn_utils.reporting.figures import FigureConfig, fig_wear_over_time
from spinn_utils.training.fit import sequence_pairs

ROOT = Path(__file__).resolve().parents[1]


def restarting_example(folder: Path, window_samples: int = 1500) -> tuple[Path, Path, Path, pd.DataFrame]:
    """The example CSV with ``time`` restarting at 0 in every run of 10 windows (``run``), as in
    many processed milling tables; its description without and with ``run_col``."""
    csv_path, config_path = write_example(folder / "example", window_samples)
    original = pd.read_csv(csv_path).sort_values(["experiment_id", "time"], kind="stable")
    table = original.drop(columns="run_no").assign(run=original.groupby("experiment_id").cumcount() // 10)
    table["time"] -= table.groupby(["experiment_id", "run"])["time"].transform("min")
    table.to_csv(folder / "restart.csv", index=False)
    description = {k: v for k, v in json.loads(config_path.read_text()).items() if k != "run_col"}
    (folder / "restart.json").write_text(json.dumps(description))
    (folder / "restart_run.json").write_text(json.dumps({**description, "run_col": "run"}))
    return folder / "restart.csv", folder / "restart.json", folder / "restart_run.json", original


def config(data: Path, description: Path, smoke: bool = False, **knobs) -> DataConfig:
    return data_config_for(smoke, str(description), data_path=str(data), **knobs)


@pytest.fixture(scope="module")
def restart(tmp_path_factory):
    return restarting_example(tmp_path_factory.mktemp("restart"))


def test_a_time_that_restarts_in_every_run_is_refused_in_one_line(restart, tmp_path):
    data, plain, _, _ = restart
    table = pd.read_csv(data)
    shuffled = tmp_path / "shuffled.csv"
    table.sample(frac=1.0, random_state=0).to_csv(shuffled, index=False)
    jittered = tmp_path / "jittered.csv"  # no repeated value: only the file's row order shows restarts
    table.assign(time=table["time"] + np.random.default_rng(0).uniform(0, 1e-3, len(table))).to_csv(jittered, index=False)
    restarts = table.groupby("experiment_id")["run"].nunique() - 1
    n, worst, others = restarts.max(), restarts.idxmax(), len(restarts) - 1
    for path, how in [(data, f"in file order it restarts {n} time(s) (row "),
                      (jittered, f"in file order it restarts {n} time(s) (row "),
                      (shuffled, f"it restarts (or repeats) {n} time(s) (0 occurs {n + 1} times)")]:
        with pytest.raises(SpinnError) as err:
            load_table(config(path, plain))
        message = str(err.value)
        assert len(message.splitlines()) == 1
        assert message.startswith(f"time column 'time' is not strictly increasing within experiment {worst}: {how}")
        assert f"(and in {others} other experiment(s))" in message and '"run_col": "<column>"' in message


def test_runs_interleaved_beyond_detection_show_in_a_note(restart, tmp_path):
    data, plain, _, _ = restart
    table = pd.read_csv(data)  # jittered and shuffled: no repeat, no file order; the wear tells
    table = table.assign(time=table["time"] + np.random.default_rng(0).uniform(0, 1e-3, len(table)))
    table.sample(frac=1.0, random_state=0).to_csv(tmp_path / "hidden.csv", index=False)
    prepared = prepare(config(tmp_path / "hidden.csv", plain, smoke=True))
    assert any(n.startswith("measured 'tool_wear' falls in ") and "run_col" in n for n in prepared.meta["notes"])
    assert not any("falls in" in n for n in prepare(config(data, plain.parent / "restart_run.json")).meta["notes"])


def test_with_run_col_the_runs_join_into_the_cumulative_time_they_had(restart):
    data, _, with_runs, original = restart
    prepared = prepare(config(data, with_runs))
    table = pd.concat(prepared.frames.values()).sort_values(["experiment_id", CUM_TIME_COL])
    assert prepared.run_col == "run" and len(table) == len(original)
    np.testing.assert_array_equal(table["smc_ac_mean"], original["smc_ac_mean"])  # the original order
    first = original.groupby("experiment_id")["time"].transform("min")
    np.testing.assert_allclose(table[CUM_TIME_COL], original["time"] - first, atol=1e-9)
    for frame in prepared.frames.values():  # each split in (experiment, run, time) order
        assert frame.equals(frame.sort_values(["experiment_id", "run", "time"], kind="stable"))
        starts = (frame["experiment_id"].diff() != 0) | (frame["run"].diff() != 0)
        np.testing.assert_array_equal(frame[RUN_START_COL], starts.astype(int))
    block = data_summary(prepared).time_order
    assert (block.order, block.run_col, block.cumulative_time) == (["experiment_id", "run", "time"], "run",
                                                                    "runs_joined")
    assert block.measured_wear_falls["all"].falls == 0 and block.measured_wear_falls["all"].steps > 0
    assert set(block.measured_wear_falls) == {"train", "val", "test", "all"}
    assert sum(block.runs_per_experiment.values()) == table.groupby(["experiment_id", "run"]).ngroups


def test_a_wrong_run_order_shows_as_measured_wear_falling(restart):
    data, _, with_runs, _ = restart
    table = pd.read_csv(data)
    table["run"] = -table["run"]  # runs numbered backwards: later runs first
    table.to_csv(data.parent / "backwards.csv", index=False)
    prepared = prepare(config(data.parent / "backwards.csv", with_runs, smoke=True))
    falls = data_summary(prepared).time_order.measured_wear_falls
    assert falls["all"].share > 0.05 and falls["train"].falls > 0


def test_a_gap_between_runs_and_ties_within_a_run(restart, tmp_path):
    data, _, with_runs, _ = restart
    one = config(data, with_runs)
    gap = load_table(config(data, with_runs, run_gap_min=2.5))
    plain = load_table(one)
    runs_before = gap.groupby("experiment_id")["run"].transform(lambda r: r - r.min())
    np.testing.assert_allclose(gap[CUM_TIME_COL] - plain[CUM_TIME_COL], 2.5 * runs_before)
    table = pd.read_csv(data)
    table.loc[1, "time"] = table.loc[0, "time"]  # two windows of one run at one time
    table.to_csv(tmp_path / "tie.csv", index=False)
    with pytest.raises(SpinnError, match=r"time column 'time' repeats within run 0 of experiment 1 "):
        load_table(config(tmp_path / "tie.csv", with_runs))
    table = pd.read_csv(data).assign(run="first")
    table.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(SpinnError, match="run column 'run' must hold a number per row"):
        load_table(config(tmp_path / "text.csv", with_runs))


def test_already_cumulative_time_is_kept_and_the_embedded_data_uses_its_run_column(smoke_data):
    prepared = smoke_data
    assert prepared.run_col == "run" and prepared.meta["time_order"]["cumulative_time"] == "as_given"
    for frame in prepared.frames.values():
        np.testing.assert_array_equal(frame[CUM_TIME_COL], frame["cut_time_min"])
        assert (frame.groupby("experiment")[CUM_TIME_COL].diff().dropna() > 0).all()


def test_the_smoke_cap_keeps_a_start_for_every_run_it_keeps(restart):
    data, _, with_runs, _ = restart
    cfg = config(data, with_runs, max_rows_per_experiment=15)
    capped, notes = cap_rows(load_table(cfg), cfg)
    assert notes and capped.groupby("experiment_id").size().max() == 15
    starts = (capped["experiment_id"].diff() != 0) | (capped["run"].diff() != 0)
    np.testing.assert_array_equal(capped[RUN_START_COL], starts.astype(int))


def test_save_and_load_keep_the_time_order_columns_and_run_col(restart, tmp_path):
    data, _, with_runs, _ = restart
    prepared = prepare(config(data, with_runs, smoke=True))
    reloaded = load_prepared(save_prepared(prepared, tmp_path / "data"))
    assert reloaded.run_col == "run"
    for split, frame in prepared.frames.items():
        pd.testing.assert_series_equal(reloaded.frames[split][CUM_TIME_COL], frame[CUM_TIME_COL])
        np.testing.assert_array_equal(reloaded.frames[split][RUN_START_COL], frame[RUN_START_COL])


def restarting_frame() -> pd.DataFrame:
    """Two runs of one experiment, time restarting; rows stored as (time, run) would interleave."""
    return pd.DataFrame({"g": [1] * 6, "run": [1, 2, 1, 2, 1, 2], "t": [0.0, 0.0, 1.0, 1.0, 2.0, 2.0],
                         "w": [0.1, 0.4, 0.2, 0.5, 0.3, 0.6]})


def test_wear_decrease_and_sequence_pairs_follow_the_run_order():
    frame = restarting_frame()
    assert wear_decrease_fraction(frame["w"].to_numpy(), frame, "g", "t", run_col="run") == 0.0
    assert wear_decrease_fraction(frame["w"].to_numpy(), frame, "g", "t") > 0  # interleaved runs
    data = make_prepared({s: frame for s in ("train", "val", "test")}, ["t"], ["w", "run"], "g", "t",
                         run_col="run")
    assert data.frames["train"]["w"].is_monotonic_increasing  # made in time order
    earlier, later = sequence_pairs(data)
    wear = data.frames["train"]["w"].to_numpy()
    assert (wear[later.numpy()] > wear[earlier.numpy()]).all() and len(earlier) == 5


def test_the_wear_figure_draws_each_experiment_as_one_curve_in_cumulative_time():
    rows = []
    for exp in (1, 2):
        for run in range(3):  # time restarts in every run; cumulative time does not
            t = np.arange(4, dtype=float)
            rows.append(pd.DataFrame({"sample": 0, "experiment": exp, "run": run, "time": t,
                                      CUM_TIME_COL: 4 * run + t, "model": "dense", "target": "vb",
                                      "measured": 0.1 * (4 * run + t), "predicted": 0.1 * (4 * run + t)}))
    fig = fig_wear_over_time(pd.concat(rows, ignore_index=True), FigureConfig())
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_lines()]
    assert len(panels) == 2 and all(len(ax.get_lines()) == 1 for ax in panels)
    for ax in panels:
        x = ax.get_lines()[0].get_xdata()
        assert len(x) == 12 and (np.diff(x) > 0).all()


@pytest.mark.parametrize("text, match", [
    ('{"run_col": 3}', "run_col: input should be a valid string, got 3"),
    ('{"run_gap_min": "5"}', "run_gap_min: input should be a valid number, got '5'"),
    ('{"run_gap_min": true}', "run_gap_min: input should be a valid number, got True"),
])
def test_the_data_description_checks_the_run_keys(tmp_path, text, match):
    (tmp_path / "d.json").write_text(text)
    with pytest.raises(SpinnError, match=match):
        read_data_config(tmp_path / "d.json")


def test_run_config_values_are_checked():
    assert DataConfig(run_gap_min=2).run_gap_min == 2.0
    with pytest.raises(SpinnError, match="DataConfig.run_gap_min: .*greater than or equal to 0, got -1.0"):
        DataConfig(run_gap_min=-1.0)
    with pytest.raises(SpinnError, match="time_col is 'cumulative_time_min', a name the pipeline adds"):
        DataConfig(time_col=CUM_TIME_COL)


def test_the_example_writer_replaces_only_its_own_files(tmp_path, capsys):
    folder = tmp_path / "d"
    assert example_main(["--output-dir", str(folder), "--window-samples", "1500"]) == 0
    assert example_main(["--output-dir", str(folder), "--window-samples", "1500"]) == 0  # its own: replaced
    (folder / "milling.csv").write_text("a,b\n1,2\n")
    capsys.readouterr()
    assert example_main(["--output-dir", str(folder), "--window-samples", "1500"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "its header is not the example's" in err and "--force" in err
    assert (folder / "milling.csv").read_text() == "a,b\n1,2\n"  # nothing written
    (folder / "milling.csv").unlink()
    (folder / "milling.json").write_text('{"mine": 1}')
    assert example_main(["--output-dir", str(folder), "--window-samples", "1500"]) == 2
    assert not (folder / "milling.csv").exists() and (folder / "milling.json").read_text() == '{"mine": 1}'
    assert example_main(["--output-dir", str(folder), "--window-samples", "1500", "--force"]) == 0
    assert json.loads((folder / "milling.json").read_text())["run_col"] == "run_no"


@pytest.mark.slow
def test_restarting_csv_runs_the_smoke_chain_with_run_col_and_is_refused_without(tmp_path):
    data, plain, with_runs, _ = restarting_example(tmp_path, window_samples=250)
    run_all = [sys.executable, str(ROOT / "run_all.py"), "--smoke", "--device", "cpu", "--data", str(data)]
    refused = subprocess.run([*run_all, "--only", "01", "--data-config", str(plain), "--output",
                              str(tmp_path / "refused")], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "time column 'time' is not strictly increasing within experiment" in lines[0]
    out = tmp_path / "results"
    proc = subprocess.run([*run_all, "--data-config", str(with_runs), "--output", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run = ResultsPaths.at(out)
    block = read_result(run, METRICS.data_summary).time_order
    assert block.run_col == "run" and block.cumulative_time == "runs_joined"
    pred = pd.read_csv(run.predictions)
    fig = fig_wear_over_time(pred, FigureConfig())
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_lines()]
    experiments = pred["experiment"].nunique()
    assert len(panels) == min(experiments, FigureConfig().max_experiments)
    for ax in panels:  # one curve per model, along cumulative time, over every run of the experiment
        for line in ax.get_lines():
            assert (np.diff(line.get_xdata()) > 0).all()
            assert np.ptp(line.get_xdata()) > pred["time"].max()
