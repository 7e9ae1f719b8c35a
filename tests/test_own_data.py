"""A user's own CSV: the data description named once, its precedence, and README's worked example
run as written (in smoke mode)."""
import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import LABELS, METRICS, VARIANTS
from spinn_utils.core.results_files import read_result
from spinn_utils.data.example import example_description, write_example
from spinn_utils.data.schema import data_config_for, read_data_config

ROOT = Path(__file__).resolve().parents[1]


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Use your own data", 1)[1].split("\n## ", 1)[0]


def test_readme_shows_the_description_the_example_writes():
    block = re.search(r"```json\n(.*?)```", readme_section(), re.S).group(1)
    assert json.loads(block) == example_description()


def test_description_file_then_knobs(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("group_col: run_id\ntime_col: t\nfeature_cols: [a, b]\ntarget_cols: [w, d]\n")
    cfg = data_config_for(False, str(path), group_col=None, time_col="minutes")
    assert (cfg.group_col, cfg.time_col, cfg.feature_cols) == ("run_id", "minutes", ("a", "b"))  # -p wins
    smoke = data_config_for(True, str(path))
    assert smoke.max_rows_per_experiment == 64 and smoke.group_col == "run_id"
    (tmp_path / "bad.json").write_text('{"group": "x"}')
    with pytest.raises(SpinnError, match=r"unknown key\(s\) \['group'\]"):
        read_data_config(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SpinnError, match="does not parse"):
        read_data_config(tmp_path / "broken.json")
    (tmp_path / "d.txt").write_text("{}")
    with pytest.raises(SpinnError, match=".json, .yaml or .yml"):
        read_data_config(tmp_path / "d.txt")
    with pytest.raises(SpinnError, match="not found"):
        read_data_config(tmp_path / "missing.json")


@pytest.mark.parametrize("text, expected", [
    ('{"data_path": "x.csv"}', "'data_path' is not a column description; give it with --data"),
    ('{"seed": 3}', "'seed' is not a column description; give it with --seed"),
    ('{"thermal_ode": "no"}', "thermal_ode: input should be a valid boolean, got 'no'"),
    ('{"fail_on_leakage": 0}', "fail_on_leakage: input should be a valid boolean, got 0"),
    ('{"feature_cols": "depth_of_cut"}', "feature_cols: input should be a valid tuple, got 'depth_of_cut'"),
    ('{"target_cols": ["w", 3]}', "target_cols[1]: input should be a valid string, got ['w', 3]"),
    ('{"val_experiments": true}', "val_experiments: input should be a valid integer, got True"),
    ('{"max_experiments": "4"}', "max_experiments: input should be a valid integer, got '4'"),
    ('{"val_experiments": 0}', "val_experiments: input should be greater than or equal to 1, got 0"),
])
def test_reserved_or_mistyped_keys_name_the_key(tmp_path, text, expected):
    (tmp_path / "d.json").write_text(text)
    with pytest.raises(SpinnError, match=re.escape(expected)) as err:
        read_data_config(tmp_path / "d.json")
    assert len(str(err.value).splitlines()) == 1


def test_one_target_a_string_of_features_and_a_constant_target_fail_at_load(tmp_path):
    from spinn_utils.data.prepare import prepare
    from spinn_utils.data.schema import DataConfig

    with pytest.raises(SpinnError, match=r"target_cols must name 2 columns.*got \['tool_wear_vb_mm'\]"):
        DataConfig(target_cols=("tool_wear_vb_mm",))
    with pytest.raises(SpinnError, match="DataConfig.feature_cols: .*tuple, got 'depth_of_cut_mm'"):
        DataConfig(feature_cols="depth_of_cut_mm")
    with pytest.raises(SpinnError, match="DataConfig.thermal_ode: .*boolean, got 'no'"):
        DataConfig(thermal_ode="no")
    write_example(tmp_path)
    table = pd.read_csv(tmp_path / "milling.csv").assign(thermal_displacement=1.5)
    table.to_csv(tmp_path / "milling.csv", index=False)
    cfg = data_config_for(True, str(tmp_path / "milling.json"), data_path=str(tmp_path / "milling.csv"))
    with pytest.raises(SpinnError, match="target 'thermal_displacement' is constant \\(1.5 in every row\\)"):
        prepare(cfg)


def test_fail_on_leakage_false_records_the_leak_and_goes_on(tmp_path):
    from spinn_utils.data.prepare import prepare

    write_example(tmp_path)
    table = pd.read_csv(tmp_path / "milling.csv")
    table["leak"] = table["tool_wear"] * 3.0
    table.to_csv(tmp_path / "milling.csv", index=False)
    description = json.loads((tmp_path / "milling.json").read_text())
    description.update(feature_cols=[*description["feature_cols"], "leak"], fail_on_leakage=False)
    (tmp_path / "milling.json").write_text(json.dumps(description))
    data = prepare(data_config_for(True, str(tmp_path / "milling.json"), data_path=str(tmp_path / "milling.csv")))
    assert not data.meta["leakage"]["passed"] and "'leak'" in data.meta["leakage"]["problems"][0]


def test_a_bad_description_stops_the_driver_before_any_notebook(tmp_path, capsys):
    from spinn_utils.pipeline.cli import main

    (tmp_path / "bad.json").write_text('{"group": "x"}')
    out = tmp_path / "out"
    assert main(["--data-config", str(tmp_path / "bad.json"), "--output", str(out)]) == 2
    assert "unknown key(s) ['group']" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow  # the whole notebook chain, on the worked example
def test_readme_worked_example_runs_as_written(tmp_path):
    """The README's commands, in order, in an empty folder; --smoke keeps it to seconds."""
    block = re.search(r"```bash\n(.*?)```", readme_section(), re.S).group(1)
    commands = [shlex.split(line) for line in block.strip().splitlines()]
    for cmd in commands:
        assert cmd[0] == "python"
        args = [sys.executable, *cmd[1:]]
        if cmd[1] == "run_all.py":
            args = [sys.executable, str(ROOT / "run_all.py"), *cmd[2:], "--smoke", "--device", "cpu"]
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = tmp_path / "results_my_data"
    run = ResultsPaths.at(results)
    summary = read_result(run, METRICS.data_summary)
    assert summary.group_col == "experiment_id" and summary.feature_names[-1] == "time"
    assert any("time column 'time' added to the inputs" in n for n in summary.notes)
    assert summary.physics.terms["thermal_ode"].supported
    assert summary.n_rows <= 64 * 16  # smoke capped the 6,948-row table
    with open(results / "tables" / "table1.csv", newline="") as f:
        table = {row["Metric"]: row for row in csv.DictReader(f)}
    assert table["Parameters (non-zero)"][LABELS[VARIANTS.dense]] == "665858"  # 16 inputs
    assert "thermal_ode (weight 0.01)" in (results / "tables" / "table1.md").read_text()
    training = read_result(run, METRICS.dense_training)
    assert training.physics_config["power_col"] == "smc_dc_mean"  # named once, in 01's file
