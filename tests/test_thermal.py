import numpy as np
import torch

from spinn_utils.data.thermal import ThermalModel


def test_simulation_approaches_steady_state_and_satisfies_the_ode():
    m = ThermalModel()
    dt = np.full(2000, 0.05)  # 100 min = 12.5 time constants
    delta = m.simulate(np.full(2000, 2.0), dt)
    assert abs(delta[-1] - 2.0 * m.gain_um_per_kw) < 0.01
    slope = np.gradient(delta, 0.05)
    assert np.abs(m.residual(delta[5:100], slope[5:100], 2.0)).max() < 0.05
    # A trajectory of another time constant violates the ODE.
    wrong = ThermalModel(tau_min=2.0).simulate(np.full(2000, 2.0), dt)
    assert np.abs(m.residual(wrong[5:100], np.gradient(wrong, 0.05)[5:100], 2.0)).max() > 1.0


def test_cooling_and_power_from_current():
    m = ThermalModel()
    assert m.step(10.0, 0.0, 100.0) < 0.01
    assert m.power_kw_from_current(np.array([m.idle_current_a - 1, m.idle_current_a + 4])).tolist() == [0.0, 4 * m.kw_per_amp]
    assert torch.allclose(m.power_kw_from_current(torch.tensor([m.idle_current_a + 2.0])), torch.tensor([2 * m.kw_per_amp]))
