"""The synthetic milling generator: reproducible, 16 experiments, physics the PINN relies on."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spinn_utils.core.errors import SpinnError
from spinn_utils.data.milling import cutting_power_kw, interpolate_vb, thermal_history, window_stats
from spinn_utils.data.schema import DEFAULT_FEATURES, GROUP_COL, RUN_COL, TARGETS, TIME_COL
from spinn_utils.data.synthetic import SyntheticConfig, generate_milling, wear_mm
from spinn_utils.data.thermal import ThermalModel

VB, DELTA = TARGETS


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return generate_milling(SyntheticConfig())


@pytest.fixture(scope="module")
def smoke() -> pd.DataFrame:
    return generate_milling(SyntheticConfig.smoke_test())


def test_same_seed_same_table_other_seed_other_table(smoke):
    again = generate_milling(SyntheticConfig.smoke_test())
    pd.testing.assert_frame_equal(smoke, again)
    other = generate_milling(SyntheticConfig(seed=7, window_samples=1500))
    assert not np.allclose(other[VB].to_numpy()[:100], smoke[VB].to_numpy()[:100])


def test_smoke_is_the_default_data_at_coarser_windows(table, smoke):
    per_run = [f.groupby([GROUP_COL, RUN_COL])["vb_measured_mm"].first() for f in (table, smoke)]
    pd.testing.assert_series_equal(per_run[0], per_run[1])  # same experiments, runs, VB readings
    assert len(smoke) < len(table) / 5


def test_sizes_columns_and_experiments(table, smoke):
    assert 5_000 <= len(table) <= 9_000
    assert len(smoke) < 1_500
    for frame in (table, smoke):
        assert sorted(frame[GROUP_COL].unique()) == list(range(1, 17))
        assert {GROUP_COL, RUN_COL, *DEFAULT_FEATURES, *TARGETS} <= set(frame.columns)
        assert np.isfinite(frame[list(DEFAULT_FEATURES) + list(TARGETS)].to_numpy()).all()
    runs = table.groupby(GROUP_COL)[RUN_COL].max()
    assert runs.min() >= 4 and runs.max() <= 30
    # 2 DOC x 2 feed x 2 materials, each setting twice (two insert sets).
    settings = table.groupby(GROUP_COL)[["depth_of_cut_mm", "feed_mm_rev", "material_code"]].first()
    assert (settings.value_counts() == 2).all() and len(settings.value_counts()) == 8


def test_wear_monotone_and_passes_the_limit(table):
    cfg = SyntheticConfig()
    for _, exp in table.groupby(GROUP_COL):
        exp = exp.sort_values(TIME_COL)
        assert (np.diff(exp[TIME_COL]) > 0).all()
        assert (np.diff(exp[VB]) >= -1e-12).all()
        assert exp[VB].max() >= cfg.wear_limit_mm
        assert exp[VB].min() >= 0


def test_true_wear_curve_has_three_stages():
    t = np.linspace(0, 40, 401)
    vb = wear_mm(t, p0_kw=0.5, k_w=0.03)
    rate = np.gradient(vb, t)
    assert (np.diff(vb) >= 0).all()
    i_min = int(np.argmin(rate))
    assert 0 < i_min < len(t) - 1  # rate falls (break-in), then rises (accelerated wear)
    assert rate[0] > 2 * rate[i_min] and rate[-1] > 2 * rate[i_min]


def test_vb_gaps_interpolated_within_each_experiment_only(table):
    assert table["vb_measured_mm"].isna().any()  # some runs were not measured
    for _, exp in table.groupby(GROUP_COL):
        runs = exp.groupby(RUN_COL).agg(t_end=(TIME_COL, "max"), vb=("vb_measured_mm", "first"))
        assert np.isfinite(runs["vb"].iloc[-1])  # the last run is measured: no extrapolation
        own = interpolate_vb(exp[TIME_COL].to_numpy(), runs["t_end"].to_numpy(), runs["vb"].to_numpy())
        np.testing.assert_allclose(exp[VB].to_numpy(), own, atol=1e-12)
        measured = runs.dropna()
        at_ends = exp[exp[TIME_COL].isin(measured["t_end"])].groupby(RUN_COL)[VB].first()
        np.testing.assert_allclose(at_ends.to_numpy(), measured["vb"].to_numpy(), atol=1e-12)


def test_interpolate_vb_anchors_new_insert_and_skips_gaps():
    vb = interpolate_vb([0.5, 1.0, 1.5, 2.5], [1.0, 2.0, 3.0], [0.2, np.nan, 0.4])
    np.testing.assert_allclose(vb, [0.1, 0.2, 0.25, 0.35])


def test_thermal_depends_on_history_not_only_on_inputs():
    thermal = ThermalModel()
    power = np.full(6, 1.0)
    # Two runs of three identical windows; the second starts warm after 2 min of cooling.
    delta = thermal_history(power, np.full(6, 0.5), np.array([1, 0, 0, 1, 0, 0], bool),
                            np.array([0.0, 2.0]), thermal)
    assert delta[3] > delta[0] + 0.1  # same power, same place in its run, other history
    cold = thermal_history(power[:3], np.full(3, 0.5), np.array([1, 0, 0], bool), np.zeros(1), thermal)
    np.testing.assert_allclose(delta[:3], cold)
    with pytest.raises(SpinnError, match="cooling"):
        thermal_history(power, np.full(6, 0.5), np.array([1, 0, 0, 1, 0, 0], bool), np.zeros(1), thermal)


def test_thermal_rises_within_a_run_at_constant_power(table):
    n_win = table["window"].max() + 1
    mid = table[(table["window"] >= n_win // 4) & (table["window"] < 3 * n_win // 4)]
    first, last = (mid.groupby([GROUP_COL, RUN_COL])[DELTA].agg(f) for f in ("first", "last"))
    current = mid.groupby([GROUP_COL, RUN_COL])["smc_dc_mean"].agg(["min", "max"])
    assert (current["max"] / current["min"] < 1.1).mean() > 0.9  # nearly constant input
    assert (last > first).mean() > 0.9  # yet the target keeps changing: it has a history


def test_spindle_current_recovers_cutting_power(table):
    thermal = ThermalModel()
    n_win = table["window"].max() + 1
    # Windows away from entry/exit: the cutter is fully engaged, so P = u * MRR * (1 + beta VB).
    mid = table[(table["window"] >= n_win // 4) & (table["window"] < 3 * n_win // 4)]
    expected = cutting_power_kw(mid["depth_of_cut_mm"], mid["feed_mm_rev"], mid["material_code"], mid[VB])
    recovered = thermal.power_kw_from_current(mid["smc_dc_mean"].to_numpy())
    np.testing.assert_allclose(recovered, expected, rtol=0.03)


def test_thermal_target_follows_the_ode_with_power_from_current(table):
    """The physics loss's residual uses P from smc_dc_mean: integrating it must give the data."""
    thermal = ThermalModel()
    errors, changes = [], []
    for _, run in table.groupby([GROUP_COL, RUN_COL]):
        t, delta = run[TIME_COL].to_numpy(), run[DELTA].to_numpy()
        power = thermal.power_kw_from_current(run["smc_dc_mean"].to_numpy())
        predicted = delta[0]
        for k in range(1, len(t)):  # integrate across the whole run from its first window
            predicted = thermal.step(predicted, power[k], t[k] - t[k - 1])
        errors.append(abs(predicted - delta[-1]))
        changes.append(abs(delta[-1] - delta[0]))
    assert np.median(changes) > 1.0  # um: the run heats the spindle well beyond the noise
    assert np.median(errors) < 0.1 and max(errors) < 0.4  # measurement noise is 0.05 um


def test_window_stats_mean_rms_and_errors():
    x = np.array([1.0, -1.0, 3.0, 3.0, 9.0])
    stats = window_stats({"ch": x}, 2)
    np.testing.assert_allclose(stats["ch_mean"], [0.0, 3.0])  # the remainder sample is dropped
    np.testing.assert_allclose(stats["ch_rms"], [1.0, 3.0])
    with pytest.raises(SpinnError, match="fewer than one window"):
        window_stats({"ch": x}, 10)
    with pytest.raises(SpinnError, match="window_samples"):
        SyntheticConfig(window_samples=0)


def test_cutting_power_grows_with_doc_feed_hardness_and_wear():
    base = cutting_power_kw(0.75, 0.25, 1, 0.0)
    assert cutting_power_kw(1.5, 0.25, 1, 0.0) == pytest.approx(2 * base)
    assert cutting_power_kw(0.75, 0.5, 1, 0.0) == pytest.approx(2 * base)
    assert cutting_power_kw(0.75, 0.25, 2, 0.0) > base
    assert cutting_power_kw(0.75, 0.25, 1, 0.5) > base
    with pytest.raises(SpinnError, match="material_code"):
        cutting_power_kw(0.75, 0.25, 3, 0.0)
