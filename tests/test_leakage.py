"""Leakage check and experiment splits: each check passes on clean data and fails on its leak."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.overrides import with_overrides
from spinn_utils.data.dataset import Scaler, make_prepared
from spinn_utils.data.leakage import (
    COMBO_R2_LIMIT,
    PAIR_RANK_LIMIT,
    _explained,
    _gram,
    _looks_like_id,
    _pair_terms,
    check_leakage,
    pair_combinations,
)
from spinn_utils.data.prepare import prepare
from spinn_utils.data.schema import DataConfig
from spinn_utils.data.splits import split_groups

EARLIER_COLUMNS = (
    "experiment_id", "case_index", "time", "tool_wear", "depth_of_cut", "feed_rate", "force_ac",
    "force_dc", "vib_table", "vib_spindle", "force_x", "force_y", "force_z", "spindle_speed",
    "force_magnitude", "mrr", "cumulative_mrr", "heat_generation", "cumulative_heat",
    "thermal_displacement",
)


def earlier_version_csv(path, n_experiments=8, rows=30, seed=0):
    """A CSV like the earlier pipeline's: standardised inputs, target copied into an input."""
    rng = np.random.default_rng(seed)
    frames = []
    for e in range(n_experiments):
        t = np.arange(rows, dtype=float)
        heat = rng.uniform(0.5, 2.0, rows)
        frame = {c: rng.normal(size=rows) for c in EARLIER_COLUMNS}
        frame.update(experiment_id=e, case_index=e, time=t, heat_generation=heat,
                     cumulative_heat=np.cumsum(heat), tool_wear=0.004 * (1 + e) * t + rng.normal(0, 0.02, rows))
        frames.append(pd.DataFrame(frame)[list(EARLIER_COLUMNS)])
    table = pd.concat(frames, ignore_index=True)
    inputs = [c for c in EARLIER_COLUMNS if c not in ("experiment_id", "tool_wear", "thermal_displacement")]
    table[inputs] = (table[inputs] - table[inputs].mean()) / table[inputs].std().replace(0, 1)
    table["thermal_displacement"] = 2.5 * table["cumulative_heat"]  # the leak
    table.to_csv(path, index=False)
    return DataConfig(data_path=str(path), group_col="experiment_id", time_col="time",
                      feature_cols=tuple(inputs), target_cols=("tool_wear", "thermal_displacement"),
                      val_experiments=1, test_experiments=2)


@pytest.fixture
def clean(smoke_data):
    return smoke_data


def rebuilt(data, frames=None, features=None, targets=None):
    return make_prepared(frames or data.frames, features or data.feature_names,
                         targets or data.target_names, data.group_col, data.time_col)


def failed(report):
    return {c["name"]: c["detail"] for c in report["checks"] if not c["passed"]}


def test_clean_synthetic_data_passes(clean):
    report = check_leakage(clean)
    assert report["passed"] and report["problems"] == []
    assert [c["name"] for c in report["checks"]] == [
        "group_overlap", "identifier_inputs", "target_inputs", "scaler_fitted_on_train",
        "target_functions", "shifted_targets", "linear_combinations", "input_combinations", "split_copies",
        "pair_ranks"]
    assert clean.meta["leakage"] == report


def test_earlier_version_csv_is_flagged(tmp_path):
    cfg = earlier_version_csv(tmp_path / "earlier.csv")
    with pytest.raises(SpinnError, match="leakage check failed.*cumulative_heat"):
        prepare(cfg)
    report = check_leakage(prepare(with_overrides(cfg, fail_on_leakage=False)))
    problems = failed(report)
    assert not report["passed"]
    assert "cumulative_heat" in problems["target_inputs"] and "2.5" in problems["target_inputs"]
    assert "time" not in problems["target_inputs"]  # wear tracks time per experiment only
    assert "case_index" in problems["identifier_inputs"]
    assert "group_overlap" not in problems and "scaler_fitted_on_train" not in problems


def test_group_in_two_splits_is_flagged(clean):
    frames = dict(clean.frames)
    leaked = frames["test"][frames["test"]["experiment"] == frames["test"]["experiment"].iloc[0]]
    frames["train"] = pd.concat([frames["train"], leaked], ignore_index=True)
    problems = failed(check_leakage(rebuilt(clean, frames)))
    assert list(problems) == ["group_overlap"] and "'test'" in problems["group_overlap"]


def test_scaler_fitted_on_more_than_train_is_flagged(clean):
    everything = pd.concat(list(clean.frames.values()))
    data = rebuilt(clean)
    data.scaler = Scaler.fit(everything, clean.feature_names, clean.target_names)
    assert "means differ" in failed(check_leakage(data))["scaler_fitted_on_train"]
    data.scaler = Scaler.fit(clean.frames["train"], clean.feature_names, clean.target_names)
    data.scaler.fitted_on = "all"
    assert "'all'" in failed(check_leakage(data))["scaler_fitted_on_train"]


def test_identifier_inputs_are_flagged(clean):
    frames = {s: f.assign(counter=np.arange(len(f)) + 10_000 * i)
              for i, (s, f) in enumerate(clean.frames.items())}
    features = [*clean.feature_names, "counter", "experiment"]
    detail = failed(check_leakage(rebuilt(clean, frames, features)))["identifier_inputs"]
    assert "'counter'" in detail and "group column 'experiment'" in detail
    assert "run_index" not in detail  # a run counter is a time feature, not an id


def test_target_as_input_or_monotone_function_of_one_is_flagged(clean):
    vb = clean.target_names[0]
    frames = {s: f.assign(wear_signal=np.exp(3 * f[vb])) for s, f in clean.frames.items()}
    detail = failed(check_leakage(
        rebuilt(clean, frames, [*clean.feature_names, "wear_signal", vb])))["target_inputs"]
    assert f"target {vb!r} is also an input" in detail
    assert "'wear_signal' is a near-deterministic function" in detail and "Spearman" in detail


def test_id_like_names():
    for name in ("experiment_id", "caseID", "case_index", "index", "Unnamed: 0", "ExperimentNo"):
        assert _looks_like_id(name), name
    for name in ("run_index", "fluid_temp", "cut_time_min", "smc_dc_mean", "video_rms"):
        assert not _looks_like_id(name), name


def test_split_groups_mix_materials_and_are_seeded(clean):
    table = pd.concat(list(clean.frames.values()), ignore_index=True)
    materials = table.groupby("experiment")["material_code"].first()
    for seed in range(5):
        members = split_groups(table, "experiment", 2, 3, seed)
        assert sorted(set().union(*members.values())) == list(range(1, 17))
        assert len(members["test"]) == 3 and len(members["val"]) == 2
        assert materials[list(members["test"])].nunique() == 2
        assert members == split_groups(table, "experiment", 2, 3, seed)
    assert split_groups(table, "experiment", 2, 3, 0) != split_groups(table, "experiment", 2, 3, 1)


def test_split_errors(clean):
    table = pd.concat(list(clean.frames.values()), ignore_index=True)
    with pytest.raises(SpinnError, match="too few experiments to split: 16 .* at least 17"):
        split_groups(table, "experiment", 8, 8, 0)
    table["split"] = np.where(table["experiment"] <= 12, "train", "test")
    table.loc[table["experiment"] == 13, "split"] = "val"
    table.loc[table.index[0], "split"] = "test"  # one row of experiment 1 in another split
    with pytest.raises(SpinnError, match=r"experiment\(s\) \[1\] appear in more than one split"):
        split_groups(table, "experiment", 2, 3, 0, split_col="split")
    table["split"] = "train"
    with pytest.raises(SpinnError, match="no experiments"):
        split_groups(table, "experiment", 2, 3, 0, split_col="split")
    table["split"] = "holdout"
    with pytest.raises(SpinnError, match="holdout"):
        split_groups(table, "experiment", 2, 3, 0, split_col="split")


def with_input(data, name, make):
    """``data`` with one more input column, ``make(frame) -> values``, per split."""
    frames = {s: f.assign(**{name: make(f)}) for s, f in data.frames.items()}
    return rebuilt(data, frames, features=[*data.feature_names, name])


def test_a_non_monotonic_function_of_a_target_is_flagged(clean):
    thermal = clean.target_names[1]
    mean = clean.frames["train"][thermal].mean()
    leaky = with_input(clean, "heat_index", lambda f: (f[thermal] - mean) ** 2)
    detail = failed(check_leakage(leaky))["target_functions"]
    assert "'heat_index' is (nearly) a function of target 'thermal_displacement_um'" in detail
    assert "target_inputs" not in failed(check_leakage(leaky))  # not monotonic: correlation misses it


def test_the_next_windows_target_as_an_input_is_flagged(clean):
    wear = clean.target_names[0]
    leaky = with_input(clean, "vb_next", lambda f: f.groupby(clean.group_col)[wear].shift(-1).fillna(f[wear]))
    assert "'vb_next' tracks target 'tool_wear_vb_mm' 1 row(s) later" in failed(check_leakage(leaky))["shifted_targets"]


def test_a_target_split_across_two_inputs_is_flagged(clean):
    wear = clean.target_names[0]
    rng = np.random.default_rng(1)
    noise = {s: rng.normal(0, 5, len(f)) for s, f in clean.frames.items()}
    frames = {s: f.assign(a=f[wear] + noise[s], b=noise[s]) for s, f in clean.frames.items()}
    leaky = rebuilt(clean, frames, features=[*clean.feature_names, "a", "b"])
    problems = failed(check_leakage(leaky))
    assert "'tool_wear_vb_mm' = linear combination of inputs 'a' and 'b'" in problems["linear_combinations"]
    assert "target_inputs" not in problems  # neither input alone tracks the target


def test_experiments_moved_between_split_files_are_refused_on_load(clean, tmp_path):
    from spinn_utils.data.dataset import load_prepared, save_prepared

    save_prepared(clean, tmp_path)
    test = pd.read_csv(tmp_path / "test.csv")
    pd.concat([pd.read_csv(tmp_path / "train.csv"), test]).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(SpinnError, match="share experiments .* are in both 'test' and 'train'.*re-run notebook 01"):
        load_prepared(tmp_path)


def test_the_previous_windows_target_as_an_input_is_flagged(clean):
    thermal = clean.target_names[1]
    leaky = with_input(clean, "thermal_before", lambda f: f.groupby(clean.group_col)[thermal].shift(1).fillna(0.0))
    detail = failed(check_leakage(leaky))["shifted_targets"]
    assert "'thermal_before' tracks target 'thermal_displacement_um' 1 row(s) earlier" in detail


def test_a_lag_is_checked_before_the_smoke_cap(tmp_path):
    """The smoke cap keeps every k-th row: a one-window lag is then k windows; the check sees the
    table as loaded."""
    from spinn_utils.data.example import main as example_main
    from spinn_utils.data.schema import data_config_for

    example_main(["--output-dir", str(tmp_path)])
    table = pd.read_csv(tmp_path / "milling.csv")
    table["next_wear"] = table.groupby("experiment_id")["tool_wear"].shift(-2).ffill()
    table.to_csv(tmp_path / "milling.csv", index=False)
    described = __import__("json").loads((tmp_path / "milling.json").read_text())
    cfg = data_config_for(True, "", **{**described, "feature_cols": [*described["feature_cols"], "next_wear"],
                                       "data_path": str(tmp_path / "milling.csv")})
    with pytest.raises(SpinnError, match="'next_wear' tracks target 'tool_wear' 2 row\\(s\\) later"):
        prepare(cfg)


def test_a_product_pair_or_a_three_input_sum_recovering_a_target_is_flagged(clean):
    thermal = clean.target_names[1]
    rng = np.random.default_rng(2)
    noise = {s: (rng.uniform(1, 3, len(f)), rng.normal(0, 5, len(f)), rng.normal(0, 5, len(f)))
             for s, f in clean.frames.items()}
    frames = {s: f.assign(a=f[thermal] * noise[s][0], b=noise[s][0],
                          c=f[thermal] + noise[s][1] + noise[s][2], d=noise[s][1], e=noise[s][2])
              for s, f in clean.frames.items()}
    leaky = rebuilt(clean, frames, features=[*clean.feature_names, *"abcde"])
    problems = failed(check_leakage(leaky))
    detail = problems["input_combinations"]
    assert "'thermal_displacement_um' = a product or ratio of inputs 'a' and 'b' (train R2" in detail
    assert "'thermal_displacement_um' = linear combination of inputs ['c', 'd', 'e'] (train R2" in detail
    assert "target_inputs" not in problems and "linear_combinations" not in problems  # pairs miss both


@pytest.mark.parametrize("leak, op", [
    ("ratio", "/"),  # A = thermal^2 x N, B = N: A / B is the target squared
    ("difference", "-"),  # A = log(|thermal| + 1) + N, B = N: A - B is monotone in the target
    ("product", "x"),  # A = exp(thermal / 10) / N, B = N: A x B
])
def test_a_pair_whose_combination_ranks_like_a_target_is_flagged(clean, leak, op):
    thermal = clean.target_names[1]
    rng = np.random.default_rng(5)
    noise = {s: rng.uniform(1, 3, len(f)) for s, f in clean.frames.items()}
    hidden = {"ratio": lambda f, n: f[thermal] ** 2 * n, "difference": lambda f, n: np.log(np.abs(f[thermal]) + 1) + n,
              "product": lambda f, n: np.exp(f[thermal] / 10) / n}[leak]
    frames = {s: f.assign(A=hidden(f, noise[s]), B=noise[s]) for s, f in clean.frames.items()}
    leaky = rebuilt(clean, frames, features=[*clean.feature_names, "A", "B"])
    problems = failed(check_leakage(leaky))
    assert f"'A' {op} 'B' ranks like target {thermal!r} (|Spearman| 1.00000 > {PAIR_RANK_LIMIT})" in problems["pair_ranks"]
    assert not {"target_inputs", "linear_combinations", "input_combinations"} & set(problems)  # only ranks see it


def test_pair_combinations_are_every_pair_three_ways_without_a_ratio_by_zero():
    x = np.column_stack([np.arange(1.0, 7.0), np.arange(6.0) - 2.0, np.full(6, 2.0)])  # column 1 holds a 0
    columns, labels = pair_combinations(x)
    assert len(labels) == columns.shape[1] == 3 * 3 - 1  # 3 pairs x 3 ops, less the ratio by column 1
    assert (0, 1, "/") not in labels and (0, 2, "/") in labels and (1, 2, "x") in labels
    np.testing.assert_array_equal(columns[:, labels.index((0, 2, "/"))], x[:, 0] / 2.0)
    np.testing.assert_array_equal(columns[:, labels.index((0, 1, "-"))], x[:, 0] - x[:, 1])


def test_a_leak_in_the_test_split_only_is_flagged(clean):
    wear = clean.target_names[0]
    rng = np.random.default_rng(3)
    frames = {s: f.assign(hint=(f[wear] * 2.0 + 1.0) if s == "test" else rng.normal(0, 1, len(f)))
              for s, f in clean.frames.items()}
    leaky = rebuilt(clean, frames, features=[*clean.feature_names, "hint"])
    problems = failed(check_leakage(leaky))
    assert "in the test split, input 'hint' copies target 'tool_wear_vb_mm'" in problems["split_copies"]
    assert "target_inputs" not in problems  # on all rows together the copy is diluted


def test_collinear_product_terms_do_not_inflate_r2_past_the_true_fit():
    """An input with two values makes a, ab and b/a collinear: the fit in the remaining
    directions is the true one (never above it), and an exact product is still found."""
    rng = np.random.default_rng(44)
    a = rng.choice([0.75, 1.5], 828)
    b = rng.integers(1, 15, 828).astype(float)
    y = 0.1 * b + 0.05 * a * b + rng.normal(0, 0.1, 828)  # honest: noise the inputs cannot explain
    terms = _pair_terms(a, b)
    design = np.column_stack([terms, np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    true_r2 = 1 - ((y - design @ coef) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    r2 = float(_explained(*_gram(terms, y)))
    assert r2 <= true_r2 + 1e-9 and r2 > true_r2 - 1e-3 and r2 < COMBO_R2_LIMIT
    exact = 3.0 * a * b  # a real product leak still fits to float precision
    assert float(_explained(*_gram(terms, exact))) > COMBO_R2_LIMIT


def test_the_default_data_passes_for_every_sweep_seed():
    """The sweep's seeds each draw their own split of the embedded data: none may raise a false alarm
    (42, DataConfig's own, is test_honest_data_passes_every_check's)."""
    for seed in (43, 44):
        report = prepare(with_overrides(DataConfig(), seed=seed, fail_on_leakage=False)).meta["leakage"]
        assert report["passed"], (seed, report["problems"])


@pytest.mark.parametrize("smoke", [False, True])
def test_honest_data_passes_every_check(tmp_path, smoke, smoke_data):
    """The embedded data (full and smoke) and the worked example CSV: no false alarm."""
    from spinn_utils.data.example import main as example_main
    from spinn_utils.data.schema import data_config_for

    embedded = (smoke_data if smoke else prepare(DataConfig())).meta["leakage"]
    example_main(["--output-dir", str(tmp_path)])
    cfg = data_config_for(smoke, str(tmp_path / "milling.json"), data_path=str(tmp_path / "milling.csv"))
    example = prepare(cfg).meta["leakage"]
    for report in (embedded, example):
        assert report["passed"], report["problems"]
        ranks = next(c["detail"] for c in report["checks"] if c["name"] == "pair_ranks")
        highest = float(ranks.split("highest |Spearman| ")[1].split(":")[0])  # the margin, on record
        assert 0.5 < highest < PAIR_RANK_LIMIT, ranks
