"""Pre-flight: every value a run would fail on late is refused
before anything runs or is written, with one line and exit 2. Against the real notebooks; no
notebook runs here."""
import json
from pathlib import Path

import pandas as pd
import pytest

from spinn_utils.pipeline.cli import main
from spinn_utils.pipeline.notebooks import UsageError
from spinn_utils.pipeline.preflight import check_cv_folds


@pytest.mark.parametrize("args, expected", [
    (["--seed", "-1"], "--seed must be in 0..4294967295"),
    (["--seed", str(2**32)], "--seed must be in 0..4294967295"),
    (["-p", "dpi=0"], "FigureConfig.dpi: input should be greater than or equal to 1, got 0"),
    (["--only", "09", "-p", "batch_size=0"], "-p batch_size=0 (notebook 09): ReportConfig.batch_size: input should be greater than or equal to 1"),
    (["--only", "05", "-p", "target_sparsity=1.5"], "(notebook 05): VerifyConfig.target_sparsity: input should be less than 1, got 1.5"),
    (["-p", "target_sparsity=0"], "(notebook 03): PruneConfig.target_sparsity: input should be greater than 0, got 0"),
    (["--only", ""], "--only is empty"),
    (["--only", " , "], "--only is empty"),
    (["--from", ""], "--from is empty"),
    (["--kernel", "pyhton3"], "--kernel pyhton3: no such Jupyter kernel (installed: ["),
    (["-p", "cv_folds=99"], "cv_folds=99 (notebook 08): the data has 16 experiments"),
    (["--smoke", "-p", "cv_folds=17"], "the data has 16 experiments"),
])
def test_refused_before_anything_runs(tmp_path, capsys, args, expected):
    out = tmp_path / "o"
    assert main([*args, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_cv_folds_are_checked_against_a_csv_or_the_folder_s_data(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    pd.DataFrame({"experiment": [1, 1, 2, 2, 3, 3], "x": range(6)}).to_csv(csv, index=False)
    assert main(["--data", str(csv), "--output", str(tmp_path / "o")]) == 2  # default 4 folds, 3 experiments
    assert "cv_folds=4 (notebook 08): the data has 3 experiments" in capsys.readouterr().err
    out = tmp_path / "r"
    (out / "metrics").mkdir(parents=True)
    (out / "lineage.json").write_text("{}")
    (out / "metrics" / "data_summary.json").write_text(json.dumps({"n_experiments": 5}))
    assert main(["--from", "08", "-p", "cv_folds=6", "--output", str(out)]) == 2
    assert "the data has 5 experiments" in capsys.readouterr().err
    nb08 = Path("notebooks/08_test_evaluation.ipynb")
    check_cv_folds({nb08: {"cv_folds": 5}}, out, smoke=False)  # 5 folds of 5 experiments: fine
    check_cv_folds({nb08: {"cv_folds": 6, "run_cv": False}}, out, smoke=False)  # no cross-validation
    with pytest.raises(UsageError, match="the data has 5 experiments"):
        check_cv_folds({nb08: {"cv_folds": 6}}, out, smoke=False)


def test_a_mat_that_is_not_one_stops_before_any_notebook(tmp_path, capsys):
    fake = tmp_path / "fake.mat"
    fake.write_text("this is not a mat file\n")
    out = tmp_path / "o"
    assert main(["--data", str(fake), "--output", str(out), "--smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a MATLAB .mat file" in err[0] and "fake.mat" in err[0]
    assert not out.exists()  # refused in pre-flight: no folder, no kernel started
