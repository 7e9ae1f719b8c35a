"""Physics loss: each term fires on a model that violates it, vanishes on one that obeys it,
moves the gradients, and differentiates w.r.t. the time input (not the batch order)."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.overrides import with_overrides
from spinn_utils.data.dataset import Scaler
from spinn_utils.data.schema import DEFAULT_FEATURES, TARGETS, TIME_COL
from spinn_utils.data.thermal import ThermalModel
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.physics import (
    TERMS,
    PhysicsConfig,
    physics_loss,
    subsample_rows,
    time_derivative,
)

FEATURES = list(DEFAULT_FEATURES)
T_I = FEATURES.index(TIME_COL)
P_I = FEATURES.index("smc_dc_mean")
ONLY = {  # configs with exactly one term switched on
    name: with_overrides(PhysicsConfig.off(), **{f"{name}_weight": 1.0}) for name in TERMS
}
POINT_TERMS = ("wear_nonneg", "wear_monotone", "thermal_ode")  # on by default; wear_sequence is an option



@pytest.fixture(scope="module")
def scaler() -> Scaler:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    frame[TIME_COL] = rng.uniform(0, 60, n)  # minutes of cutting
    frame["smc_dc_mean"] = rng.uniform(5, 15, n)  # amps, always above idle (2 A)
    frame[TARGETS[0]] = rng.uniform(0, 0.8, n)  # mm
    frame[TARGETS[1]] = rng.uniform(0, 60, n)  # um
    return Scaler.fit(frame, FEATURES, list(TARGETS))


def scaled_inputs(scaler: Scaler, n: int = 64, seed: int = 1) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, T_I] = rng.uniform(0, 60, n)
    x[:, P_I] = rng.uniform(5, 15, n)
    return torch.from_numpy(scaler.transform_x(x))


class PhysicalModel(nn.Module):
    """Outputs given in physical units as functions of physical time and current, rescaled.

    wear_mm = wear0 + wear_rate * t;  delta_um = G * P(I) + amp * exp(-t / tau) + drift * t.
    With drift = 0 the thermal output solves the ODE exactly, whatever ``amp`` is.
    """

    def __init__(self, scaler: Scaler, thermal: ThermalModel, wear0: float, wear_rate: float,
                 amp: float = 5.0, drift: float = 0.0) -> None:
        super().__init__()
        self.s, self.th = scaler, thermal
        self.wear0 = nn.Parameter(torch.tensor(wear0))
        self.wear_rate = nn.Parameter(torch.tensor(wear_rate))
        self.amp = nn.Parameter(torch.tensor(amp))
        self.drift = nn.Parameter(torch.tensor(drift))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.s
        t = x[:, T_I] * float(s.x_std[T_I]) + float(s.x_mean[T_I])
        current = x[:, P_I] * float(s.x_std[P_I]) + float(s.x_mean[P_I])
        wear = self.wear0 + self.wear_rate * t
        delta = (self.th.gain_um_per_kw * self.th.power_kw_from_current(current)
                 + self.amp * torch.exp(-t / self.th.tau_min) + self.drift * t)
        phys = torch.stack([wear, delta], dim=1)
        mean = torch.tensor(s.y_mean, dtype=x.dtype)
        std = torch.tensor(s.y_std, dtype=x.dtype)
        return (phys - mean) / std


def terms(model, scaler, x) -> dict[str, float]:
    out = physics_loss(model, x, scaler, with_overrides(PhysicsConfig(), subsample=len(x)))
    return {k: float(v.detach()) for k, v in out.items()}


def test_terms_vanish_on_a_model_that_obeys_the_physics(scaler):
    good = PhysicalModel(scaler, ThermalModel(), wear0=0.05, wear_rate=0.01)
    got = terms(good, scaler, scaled_inputs(scaler))
    # Thermal: exp(-t/tau) has a non-zero derivative, so this checks the chain-rule units too.
    for name in POINT_TERMS:
        assert got[name] < 1e-8, (name, got)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("wear_nonneg", {"wear0": -0.5, "wear_rate": 0.0}),  # wear below zero everywhere
        ("wear_monotone", {"wear0": 1.0, "wear_rate": -0.01}),  # wear heals with time
        ("thermal_ode", {"wear0": 0.05, "wear_rate": 0.01, "drift": 0.5}),  # not a solution
    ],
)
def test_each_term_fires_on_a_model_that_violates_it(scaler, name, kwargs):
    bad = PhysicalModel(scaler, ThermalModel(), **kwargs)
    got = terms(bad, scaler, scaled_inputs(scaler))
    assert got[name] > 1e-3, got
    others = [n for n in POINT_TERMS if n != name]
    assert all(got[n] < 1e-8 for n in others), got  # the violation is attributed correctly


def test_total_is_the_weighted_sum_and_zero_when_off(scaler):
    bad = PhysicalModel(scaler, ThermalModel(), wear0=-0.5, wear_rate=-0.01, drift=0.5)
    x = scaled_inputs(scaler)
    cfg = PhysicsConfig(wear_nonneg_weight=0.3, wear_monotone_weight=2.0,
                        thermal_ode_weight=0.05, subsample=len(x))
    out = physics_loss(bad, x, scaler, cfg)
    expected = 0.3 * out["wear_nonneg"] + 2.0 * out["wear_monotone"] + 0.05 * out["thermal_ode"]
    assert torch.allclose(out["total"], expected)
    off = physics_loss(bad, x, scaler, PhysicsConfig.off())
    assert float(off["total"]) == 0.0 and all(torch.isnan(off[n]) for n in TERMS)


@pytest.mark.parametrize("name", TERMS)
def test_each_term_changes_the_parameter_gradients(scaler, name):
    x = scaled_inputs(scaler)
    y = torch.zeros(len(x), 2)

    def grads(cfg):
        torch.manual_seed(0)
        model = DensePINN(ModelConfig(hidden_dims=(16, 16)))
        with torch.no_grad():  # push wear negative and decreasing so every term is active
            last = model.network[-1]
            last.bias[0] = -5.0
            model.network[0].weight[:, T_I] *= 5.0
        pairs = (x[:32], x[32:64]) if name == "wear_sequence" else None
        loss = nn.functional.mse_loss(model(x), y) + physics_loss(model, x, scaler, cfg, pairs)["total"]
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    base = grads(PhysicsConfig.off())
    on = grads(with_overrides(ONLY[name], subsample=len(x)))
    assert (on - base).abs().max() > 1e-6


def test_wear_sequence_fires_only_when_the_next_window_predicts_less_wear(scaler, make_data):
    from spinn_utils.training.fit import sequence_pairs

    good = PhysicalModel(scaler, ThermalModel(), wear0=0.05, wear_rate=0.01)  # wear grows with time
    x = scaled_inputs(scaler)
    order = torch.argsort(x[:, T_I])
    earlier, later = x[order[:-1]], x[order[1:]]
    cfg = ONLY["wear_sequence"]
    assert float(physics_loss(good, x, scaler, cfg, (earlier, later))["wear_sequence"]) == 0.0
    assert float(physics_loss(good, x, scaler, cfg, (later, earlier))["wear_sequence"]) > 0.0
    with pytest.raises(SpinnError, match="needs consecutive window pairs"):
        physics_loss(good, x, scaler, cfg)
    data = make_data(rows=5)
    a, b = sequence_pairs(data)
    train = data.frames["train"]
    assert (train["experiment"].to_numpy()[a] == train["experiment"].to_numpy()[b]).all()
    assert (train[TIME_COL].to_numpy()[b] > train[TIME_COL].to_numpy()[a]).all()
    assert len(a) == len(train) - train["experiment"].nunique()  # every consecutive pair, once


def test_derivative_is_wrt_time_input_not_batch_order(scaler):
    torch.manual_seed(0)
    model = DensePINN(ModelConfig(hidden_dims=(16, 16)))
    x = scaled_inputs(scaler, n=32)
    _, d = time_derivative(model, x, T_I)
    perm = torch.randperm(len(x))
    _, d_perm = time_derivative(model, x[perm], T_I)
    torch.testing.assert_close(d_perm, d[perm])
    # Agrees with a central difference along the time column, row by row.
    h = 1e-3
    step = torch.zeros_like(x)
    step[:, T_I] = h
    model64, x64, step64 = copy.deepcopy(model).double(), x.double(), step.double()
    with torch.no_grad():
        fd = (model64(x64 + step64) - model64(x64 - step64)) / (2 * h)
    torch.testing.assert_close(d.double(), fd, atol=1e-3, rtol=1e-3)
    # And with reverse-mode autograd, for every output.
    xr = x.clone().requires_grad_(True)
    out = model(xr)
    for j in range(out.shape[1]):
        (g,) = torch.autograd.grad(out[:, j].sum(), xr, retain_graph=True)
        torch.testing.assert_close(d[:, j], g[:, T_I])


def test_subsample_bounds_the_rows_the_derivatives_see(scaler):
    seen = []
    model = DensePINN(ModelConfig(hidden_dims=(8,)))
    model.register_forward_pre_hook(lambda mod, args: seen.append(len(args[0])))
    x = scaled_inputs(scaler, n=100)
    physics_loss(model, x, scaler, with_overrides(PhysicsConfig(), subsample=7))
    assert seen == [7]
    rows = subsample_rows(x, 7)
    assert len(rows) == 7 and len({tuple(r.tolist()) for r in rows}) == 7


def test_missing_column_and_bad_weights_are_spinn_errors(scaler):
    model = DensePINN(ModelConfig(hidden_dims=(8,)))
    x = scaled_inputs(scaler, n=8)
    with pytest.raises(SpinnError, match="no_such_current"):
        physics_loss(model, x, scaler, PhysicsConfig(power_col="no_such_current"))
    with pytest.raises(SpinnError, match="shape"):
        physics_loss(model, x[:, :5], scaler, PhysicsConfig())
    with pytest.raises(SpinnError, match="thermal_ode_weight"):
        PhysicsConfig(thermal_ode_weight=-1.0)


def test_wear_terms_need_no_current_column_when_the_thermal_term_is_off(scaler):
    model = DensePINN(ModelConfig(hidden_dims=(8,)))
    x = scaled_inputs(scaler, n=8)
    out = physics_loss(model, x, scaler, PhysicsConfig(power_col="no_such_current", thermal_ode_weight=0.0))
    assert torch.isnan(out["thermal_ode"]) and torch.isfinite(out["total"])


def test_physics_config_follows_notebook_01s_record():
    from spinn_utils.data.dataset import PreparedData
    from spinn_utils.data.prepare import physics_support
    from spinn_utils.data.schema import DataConfig
    from spinn_utils.model.physics import physics_config_for

    frame = pd.DataFrame({"t": [0.0, 1.0], "p": [1.0, 2.0], "vb": [0.1, 0.2], "delta": [1.0, 2.0]})
    described = DataConfig(data_path="own.csv", time_col="t", feature_cols=("t", "p"),
                           target_cols=("vb", "delta"), power_col="p", power_unit="kW")
    data = PreparedData({"train": frame}, ["t", "p"], ["vb", "delta"],
                        Scaler.fit(frame, ["t", "p"], ["vb", "delta"]), time_col="t",
                        meta={"physics": physics_support(described, "csv")})
    cfg = physics_config_for(data, thermal_ode_weight=0.5)
    assert (cfg.time_col, cfg.wear_target, cfg.thermal_target) == ("t", "vb", "delta")
    assert (cfg.power_col, cfg.power_unit, cfg.thermal_ode_weight) == ("p", "kW", 0.5)
    no_power = with_overrides(described, feature_cols=("t",))
    data.meta["physics"] = physics_support(no_power, "csv")
    assert physics_config_for(data).thermal_ode_weight == 0.0  # off, and training goes on
    with pytest.raises(SpinnError, match="cannot support thermal_ode: no power input"):
        physics_config_for(data, thermal_ode_weight=0.2)
    data.meta["physics"] = physics_support(described, "nasa_mat")
    assert physics_config_for(data).thermal_ode_weight == 0.0  # mill.mat: circular, so off
    data.meta.pop("physics")
    with pytest.raises(SpinnError, match="re-run notebook 01"):
        physics_config_for(data)


def test_a_term_the_data_cannot_support_fails_in_notebook_01_not_02():
    from spinn_utils.data.prepare import physics_support
    from spinn_utils.data.schema import DataConfig

    described = DataConfig(feature_cols=("cut_time_min", "feed_mm_rev"), thermal_ode=True)
    with pytest.raises(SpinnError, match="thermal_ode was asked for.*'smc_dc_mean' is not among"):
        physics_support(described, "csv")
    off = physics_support(with_overrides(described, thermal_ode=False), "csv")
    assert not off["terms"]["thermal_ode"]["supported"] and "turned off" in off["terms"]["thermal_ode"]["reason"]
    assert physics_support(DataConfig(), "synthetic")["terms"]["thermal_ode"]["supported"]


def test_thermal_term_reads_power_in_kw_or_current_in_amps(scaler):
    """The same power as a kW column or as the current the sensor model maps to it: same term."""
    model = DensePINN(ModelConfig(hidden_dims=(8,)))
    p_i = scaler.feature_names.index("smc_dc_mean")
    with torch.no_grad():
        model.network[0].weight[:, p_i] = 0.0  # outputs do not depend on how power is given
    x = scaled_inputs(scaler, n=16)
    amps_cfg = PhysicsConfig(thermal_ode_weight=1.0)
    current = x[:, p_i] * float(scaler.x_std[p_i]) + float(scaler.x_mean[p_i])
    power_kw = amps_cfg.thermal.power_kw_from_current(current)
    kw_scaler = dataclasses.replace(scaler, x_mean=scaler.x_mean.copy(), x_std=scaler.x_std.copy())
    kw_scaler.x_mean[p_i], kw_scaler.x_std[p_i] = 0.0, 1.0
    x_kw = x.clone()
    x_kw[:, p_i] = power_kw
    amps = physics_loss(model, x, scaler, amps_cfg)["thermal_ode"]
    kw = physics_loss(model, x_kw, kw_scaler, with_overrides(amps_cfg, power_unit="kW"))["thermal_ode"]
    torch.testing.assert_close(kw, amps)


def test_config_round_trips_through_json_dict():
    from spinn_utils.core.io import to_jsonable

    cfg = PhysicsConfig(thermal_ode_weight=0.2, thermal=ThermalModel(tau_min=3.0))
    assert PhysicsConfig.from_dict(to_jsonable(cfg)) == cfg
