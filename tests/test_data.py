"""Data loading (synthetic, mill.mat, CSV), validation errors, splits, scaler, save/load, folds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.overrides import build_config, with_overrides
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import METRICS
from spinn_utils.core.results_files import read_result, write_result
from spinn_utils.data.dataset import load_prepared, save_prepared, split_table
from spinn_utils.data.milling import cutting_power_kw, thermal_history
from spinn_utils.data.nasa import NASA_COOLING_MIN
from spinn_utils.data.prepare import cv_folds, data_summary, load_table, prepare
from spinn_utils.data.schema import DEFAULT_FEATURES, SPLITS, TARGETS, DataConfig
from spinn_utils.data.thermal import ThermalModel

VB, DELTA = TARGETS
MAT_FIELDS = ("case", "run", "VB", "time", "DOC", "feed", "material",
              "smcAC", "smcDC", "vib_table", "vib_spindle", "AE_table", "AE_spindle")


@pytest.fixture
def smoke(smoke_data):
    return smoke_data


@pytest.fixture()
def smoke_csv(tmp_path, smoke):
    """The smoke table as a user's CSV (all splits, shuffled rows)."""
    table = pd.concat(list(smoke.frames.values()), ignore_index=True).sample(frac=1.0, random_state=0)
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    return path, table


def write_mill_mat(path, runs, drop_field=None, name="mill"):
    """A small mill.mat: struct array with the NASA fields; None = an empty (unmeasured) field."""
    fields = [f for f in MAT_FIELDS if f != drop_field]
    mill = np.zeros((1, len(runs)), dtype=[(f, object) for f in fields])
    for i, run in enumerate(runs):
        for f in fields:
            value = run[f]
            if isinstance(value, str):
                mill[f][0, i] = np.array([value])
                continue
            mill[f][0, i] = np.zeros((0, 0)) if value is None else np.atleast_2d(np.asarray(value, float)).T
    scipy.io.savemat(path, {name: mill})


def mill_runs(n_samples=400, seed=0):
    """3 cases x 3 runs; case 1 run 2 has no VB, case 2 run 3 no VB, case 2 run 2 no time."""
    rng = np.random.default_rng(seed)
    settings = {1: (1.5, 0.5, 1), 2: (0.75, 0.5, 2), 3: (1.5, 0.25, 1)}
    vb = {1: [0.1, None, 0.3], 2: [0.1, 0.2, np.nan], 3: [0.05, 0.15, 0.25]}
    runs = []
    for case, (doc, feed, material) in settings.items():
        for r in range(3):
            run = {"case": case, "run": r + 1, "VB": vb[case][r], "time": 2.0 * (r + 1),
                   "DOC": doc, "feed": feed, "material": material}
            run.update({f: rng.normal(1.0, 0.2, n_samples) for f in MAT_FIELDS[7:]})
            runs.append(run)
    runs[4]["time"] = None  # case 2, run 2
    return runs


def test_config_defaults_smoke_and_errors():
    assert DataConfig().feature_cols == DEFAULT_FEATURES and DataConfig().data_path == ""
    assert DataConfig.smoke_test().window_samples > DataConfig().window_samples
    assert build_config(DataConfig, True, seed=3).seed == 3
    assert DataConfig(feature_cols=["a", "b"]).feature_cols == ("a", "b")
    with pytest.raises(SpinnError, match="val_experiments"):
        DataConfig(val_experiments=0)
    with pytest.raises(SpinnError, match="unknown DataConfig"):
        build_config(DataConfig, False, n_experiments=3)


def test_prepare_splits_by_experiment_and_fits_scaler_on_train(smoke):
    groups = {s: set(smoke.frames[s]["experiment"]) for s in SPLITS}
    assert [len(groups[s]) for s in SPLITS] == [11, 2, 3]
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
    assert set().union(*groups.values()) == set(range(1, 17))
    assert smoke.frames["test"]["material_code"].nunique() == 2
    train = smoke.frames["train"]
    np.testing.assert_allclose(smoke.scaler.x_mean, train[list(DEFAULT_FEATURES)].mean().to_numpy())
    np.testing.assert_allclose(smoke.scaler.y_mean, train[list(TARGETS)].mean().to_numpy())
    everything = pd.concat(list(smoke.frames.values()))
    assert not np.allclose(smoke.scaler.y_mean, everything[list(TARGETS)].mean().to_numpy())
    x, y = smoke.arrays("train")
    assert x.shape == (len(train), 18) and np.abs(x.mean(axis=0)).max() < 1e-4
    assert smoke.meta["source"] == "synthetic" and "simulated" in smoke.meta["thermal_source"]
    assert smoke.meta["leakage"]["passed"]


def test_csv_gives_the_same_data_as_the_table_it_holds(smoke, smoke_csv):
    path, _ = smoke_csv
    data = prepare(with_overrides(DataConfig.smoke_test(), data_path=str(path)))
    assert data.meta["source"] == "csv" and "CSV" in data.meta["thermal_source"]
    for s in SPLITS:
        cols = ["experiment", "cut_time_min", *DEFAULT_FEATURES, *TARGETS]
        pd.testing.assert_frame_equal(data.frames[s][cols], smoke.frames[s][cols], check_dtype=False)


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.drop(columns=["smc_dc_mean", VB]), r"missing column\(s\) \['smc_dc_mean', 'tool_wear_vb_mm'\]"),
    (lambda t: t.assign(**{VB: t[VB].where(t.index != 5)}), r"NaN or inf .*'tool_wear_vb_mm': 1"),
    (lambda t: t.assign(feed_mm_rev=t["feed_mm_rev"].replace(0.5, np.inf)), r"NaN or inf .*'feed_mm_rev'"),
    (lambda t: t.assign(feed_mm_rev=t["feed_mm_rev"].replace(0.5, 1e300)), r"'feed_mm_rev' has 1e\+300 in row \d+: beyond"),
    (lambda t: t[~t.duplicated("experiment", keep="first") | (t["experiment"] != t["experiment"].iloc[0])],
     r"1 experiment\(s\) \(e.g. \d+\) have only 1 row\(s\); each needs at least 2"),
    (lambda t: t.assign(ae_table_rms=t["ae_table_rms"].astype(object).where(t.index != 7, "0.3 V")),
     r"column 'ae_table_rms' must be numeric; found '0.3 V' in row"),
    (lambda t: t.assign(experiment=t["experiment"].where(t.index != 3)), "group column 'experiment' has 1 empty"),
    (lambda t: t[t["experiment"] <= 4], "too few experiments to split: 4"),
    (lambda t: t.iloc[:0], "header but no rows"),
])
def test_csv_errors_name_the_problem(smoke_csv, tmp_path, edit, match):
    _, table = smoke_csv
    path = tmp_path / "bad.csv"
    edit(table).to_csv(path, index=False)
    with pytest.raises(SpinnError, match=match):
        prepare(with_overrides(DataConfig.smoke_test(), data_path=str(path)))


def test_file_errors(tmp_path):
    with pytest.raises(SpinnError, match="data file not found"):
        load_table(DataConfig(data_path=str(tmp_path / "missing.csv")))
    (tmp_path / "table.xlsx").write_text("x")
    with pytest.raises(SpinnError, match="extension '.xlsx'"):
        load_table(DataConfig(data_path=str(tmp_path / "table.xlsx")))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SpinnError, match="CSV file is empty"):
        load_table(DataConfig(data_path=str(tmp_path / "empty.csv")))


def test_split_column_from_csv(smoke_csv, tmp_path):
    _, table = smoke_csv
    table = table.assign(split=np.select([table["experiment"] <= 10, table["experiment"] <= 13],
                                         ["train", "val"], "test"))
    path = tmp_path / "split.csv"
    table.to_csv(path, index=False)
    cfg = with_overrides(DataConfig.smoke_test(), data_path=str(path), split_col="split")
    assert sorted(prepare(cfg).frames["val"]["experiment"].unique()) == [11, 12, 13]
    table.loc[table["experiment"] == 2, "split"] = ["train", "test"] * (int((table["experiment"] == 2).sum()) // 2)
    table.to_csv(path, index=False)
    with pytest.raises(SpinnError, match=r"experiment\(s\) \[2\] appear in more than one split"):
        prepare(cfg)


def test_mill_mat_loader(tmp_path):
    path = tmp_path / "mill.mat"
    write_mill_mat(path, mill_runs())
    table = load_table(DataConfig(data_path=str(path), window_samples=100))
    assert sorted(table["experiment"].unique()) == [1, 2, 3]
    assert len(table) == 4 * 3 + 4 * 2 + 4 * 3  # case 2's unmeasured last run is dropped
    assert set(DEFAULT_FEATURES) <= set(table.columns)
    notes = " ".join(table.attrs["notes"])
    assert "case 2: cutting time of run(s) [2] interpolated" in notes and "case 2: 4 window(s)" in notes
    case1 = table[table["experiment"] == 1]
    np.testing.assert_allclose(case1["cut_time_min"].to_numpy()[:4], [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(case1[VB].to_numpy()[:4], [0.025, 0.05, 0.075, 0.1])  # from 0 at 0 min
    np.testing.assert_allclose(case1.loc[case1["cut_time_min"] == 4.0, VB], 0.2)  # gap interpolated
    case2 = table[table["experiment"] == 2]
    assert case2["cut_time_min"].max() == pytest.approx(4.0)  # interpolated time of run 2
    assert (case2["material_code"] == 2).all() and (table["cutting_speed_m_min"] == 200).all()
    # Thermal displacement is derived: the lumped model on process power and VB.
    case3 = table[table["experiment"] == 3]
    power = cutting_power_kw(1.5, 0.25, 1, case3[VB].to_numpy())
    expected = thermal_history(power, np.full(12, 0.5), case3["window"].to_numpy() == 0,
                               np.full(3, NASA_COOLING_MIN), ThermalModel())
    np.testing.assert_allclose(case3[DELTA].to_numpy(), expected)
    assert (np.diff(case3[DELTA].to_numpy()[:4]) > 0).all()


def test_mill_mat_prepare_records_derived_thermal(tmp_path):
    path = tmp_path / "mill.mat"
    write_mill_mat(path, mill_runs())
    cfg = DataConfig(data_path=str(path), window_samples=100, val_experiments=1, test_experiments=1,
                     fail_on_leakage=False)
    data = prepare(cfg)
    assert data.meta["source"] == "nasa_mat" and data.meta["thermal_source"].startswith("derived")
    assert data_summary(data).thermal_source.startswith("derived")


@pytest.mark.parametrize("case, match", [
    ("no_mill", "has no struct 'mill'"),
    ("no_field", r"lacks field\(s\) \['AE_spindle'\]"),
    ("not_mat", "cannot read"),
    ("short", "fewer than one window"),
    ("nan_case", r"record\(s\) \[3\] of 'mill' have no 'case' number"),  # was: case 2 silently dropped
])
def test_mill_mat_errors(tmp_path, case, match):
    path = tmp_path / "mill.mat"
    if case == "not_mat":
        path.write_text("not a MATLAB file")
    else:
        runs = mill_runs(n_samples=50 if case == "short" else 400)
        if case == "nan_case":
            runs[3]["case"] = np.nan
        write_mill_mat(path, runs, drop_field="AE_spindle" if case == "no_field" else None,
                       name="other" if case == "no_mill" else "mill")
    with pytest.raises(SpinnError, match=match):
        load_table(DataConfig(data_path=str(path), window_samples=100))


def test_save_load_round_trip(smoke, tmp_path):
    save_prepared(smoke, tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "features.json", "scaler.json", "test.csv", "train.csv", "val.csv"]
    loaded = load_prepared(tmp_path / "data")
    assert loaded.feature_names == smoke.feature_names and loaded.target_names == smoke.target_names
    assert loaded.scaler.to_dict() == smoke.scaler.to_dict()
    for s in SPLITS:
        pd.testing.assert_frame_equal(loaded.frames[s], smoke.frames[s], check_dtype=False)
        np.testing.assert_array_equal(loaded.arrays(s)[0], smoke.arrays(s)[0])
    assert loaded.meta["leakage"]["passed"]


def test_load_prepared_errors(smoke, tmp_path):
    with pytest.raises(SpinnError, match="not found"):
        load_prepared(tmp_path / "nowhere")
    save_prepared(smoke, tmp_path / "data")
    (tmp_path / "data" / "val.csv").unlink()
    with pytest.raises(SpinnError, match=r"lacks \['val.csv'\]"):
        load_prepared(tmp_path / "data")


def test_data_summary_contract(smoke, tmp_path):
    summary = data_summary(smoke)  # a DataSummary record: every key typed
    assert summary.n_experiments == 16
    assert sum(v.rows for v in summary.splits.values()) == summary.n_rows
    assert summary.splits["test"].experiments == sorted(smoke.frames["test"]["experiment"].unique())
    assert summary.leakage.passed and summary.environment
    # The typed attributes the notebooks read: the same records the summary carries.
    assert smoke.leakage == summary.leakage and smoke.physics == summary.physics
    assert smoke.physics.terms["thermal_ode"].supported and smoke.test is smoke.frames["test"]
    paths = ResultsPaths.at(tmp_path).ensure()
    write_result(paths.metric(METRICS.data_summary), summary)
    assert read_result(paths, METRICS.data_summary) == summary  # plain JSON that reads back
    table = split_table(smoke)
    assert list(table["split"]) == list(SPLITS) and table["rows"].sum() == summary.n_rows


def test_cv_folds_hold_out_every_experiment_once(smoke):
    folds = cv_folds(smoke, n_folds=4, seed=0)
    held_out = [g for f in folds for g in f.frames["test"]["experiment"].unique()]
    assert sorted(held_out) == list(range(1, 17))
    for fold in folds:
        groups = {s: set(fold.frames[s]["experiment"]) for s in SPLITS}
        assert len(groups["val"]) == 2 and len(groups["test"]) == 4
        assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"])
        assert len(set().union(*groups.values())) == 16
        assert fold.frames["test"]["material_code"].nunique() == 2
        np.testing.assert_allclose(fold.scaler.x_mean, fold.frames["train"][list(DEFAULT_FEATURES)].mean())
    assert [f.meta["fold"] for f in folds] == [0, 1, 2, 3]
    with pytest.raises(SpinnError, match="no leakage report"):  # a fold's data is not checked again
        data_summary(folds[0])
    again = cv_folds(smoke, n_folds=4, seed=0)
    assert [set(f.frames["test"]["experiment"]) for f in again] == [set(f.frames["test"]["experiment"]) for f in folds]
    with pytest.raises(SpinnError, match="n_folds"):
        cv_folds(smoke, n_folds=1, seed=0)
    with pytest.raises(SpinnError, match="too few experiments"):
        cv_folds(smoke, n_folds=2, seed=0, val_experiments=8)


def test_a_text_field_in_mill_mat_is_one_line(tmp_path):
    runs = mill_runs()
    runs[2]["VB"] = "0.3 mm"
    path = tmp_path / "mill.mat"
    write_mill_mat(path, runs)
    with pytest.raises(SpinnError, match=r"field 'VB' of run 3 is not a number \(\['0.3 mm'\]\)"):
        load_table(DataConfig(data_path=str(path), window_samples=100))
