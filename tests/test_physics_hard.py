"""Physics by construction: the hard head's guarantees, for any weights and inputs."""
import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spinn_utils.compression.magnitude import apply_masks, masks_from_zeros
from spinn_utils.compression.pruning_run import select_neurons, slice_model
from spinn_utils.compression.sparse import convert_dense_to_sparse
from spinn_utils.core.errors import SpinnError
from spinn_utils.data.thermal import ThermalModel
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.sequence_head import PhysicsHead, WithHead, linear_scan
from spinn_utils.model.sequence_numpy import HeadState, apply_head, integrate, sequence_columns


def _sequence(rng, sizes=(40, 70, 25), run_every=9):
    """Three experiments in time order: cumulative minutes, run starts every few windows, power."""
    groups = np.repeat(np.arange(len(sizes)), sizes)
    t = np.concatenate([np.cumsum(rng.uniform(0.01, 0.2, k)) for k in sizes])
    within = np.concatenate([np.arange(k) for k in sizes])
    runs = within % run_every == 0
    power = rng.uniform(0.0, 3.0, len(t))
    return groups, t, runs, power


def _head(rng) -> PhysicsHead:
    return PhysicsHead(rng.normal(0.4, 0.1, 2), rng.uniform(0.5, 5.0, 2), tau_min=rng.uniform(2, 20),
                       gain_um_per_kw=rng.uniform(5, 20), cooling_min=rng.uniform(0.5, 10),
                       wear_rate_mm_min=rng.uniform(0.001, 0.1))


def _physical(head: PhysicsHead, scaled: torch.Tensor) -> np.ndarray:
    return scaled.detach().double().numpy() * head.y_std.numpy() + head.y_mean.numpy()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 30.0))
def test_wear_never_falls_for_random_weights_and_inputs(seed, scale):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = DensePINN(ModelConfig(input_dim=5, hidden_dims=(16, 8), physics="hard"))
    model.head = _head(rng)
    groups, t, runs, power = _sequence(rng)
    seq = torch.as_tensor(sequence_columns(groups, t, runs, power))
    x = torch.as_tensor(rng.normal(0, scale, (len(t), 5)), dtype=torch.float32)
    wear = _physical(model.head, model(x, seq))[:, 0]
    same = groups[1:] == groups[:-1]
    assert (np.diff(wear)[same] >= -1e-9).all()
    assert (wear >= 0).all()


def test_thermal_head_follows_its_ode_exactly():
    """Within a window the head's displacement is the exact solution of tau d/dt + delta = G Q:
    re-stepping the thermal model from each predicted value reproduces the next one."""
    rng = np.random.default_rng(3)
    head = _head(rng)
    groups, t, runs, power = _sequence(rng)
    seq = sequence_columns(groups, t, runs, power)
    raw = rng.normal(size=(len(t), 2))
    delta = _physical(head, head(torch.as_tensor(raw), torch.as_tensor(seq)))[:, 1]
    c = head.constants()
    heat = np.logaddexp(0, raw[:, 1]) / np.log(2) * power
    model = ThermalModel(tau_min=c["tau_min"], resistance_k_per_kw=c["gain_um_per_kw"] / ThermalModel().gain_um_per_kw
                         * ThermalModel().resistance_k_per_kw)
    prev = np.r_[0.0, delta[:-1]]
    cooled = np.where(seq[:, 1] > 0, model.step(prev, 0.0, c["cooling_min"]), prev)
    cooled = np.where(seq[:, 0] > 0, 0.0, cooled)  # an experiment starts at ambient
    expected = model.step(cooled, heat, seq[:, 2])
    assert np.abs(delta - expected).max() < 1e-9


def test_linear_scan_matches_a_loop_and_survives_long_sequences():
    rng = np.random.default_rng(0)
    a_log = torch.as_tensor(-rng.uniform(0, 50, 1000))
    a_log[::97] = -700.0
    b = torch.as_tensor(rng.uniform(0, 10, 1000))
    h, out = 0.0, []
    for a, bb in zip(a_log.tolist(), b.tolist()):
        h = np.exp(a) * h + bb
        out.append(h)
    assert torch.allclose(linear_scan(a_log, b), torch.as_tensor(out), rtol=1e-10, atol=1e-10)


def test_numpy_head_equals_torch_head_and_pieces_equal_one_pass():
    rng = np.random.default_rng(1)
    head = _head(rng)
    groups, t, runs, power = _sequence(rng, sizes=(300, 500, 200))
    seq = sequence_columns(groups, t, runs, power)
    raw = rng.normal(size=(len(t), 2))
    whole = apply_head(raw, seq, head.constants())
    assert np.abs(whole - _physical(head, head(torch.as_tensor(raw), torch.as_tensor(seq)))).max() < 1e-9
    pieces, state = [], HeadState()
    for start in range(0, len(t), 137):  # a file read in pieces, or a machine one window at a time
        rows = slice(start, start + 137)
        y, state = integrate(raw[rows], groups[rows], t[rows], runs[rows], power[rows], head.constants(), state)
        pieces.append(y)
    assert np.abs(np.concatenate(pieces) - whole).max() < 1e-9


def test_pruning_keeps_both_guarantees():
    """Masked, sparse and structured bodies feed the same head: wear still never falls and the
    sparse model predicts what the masked one does."""
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    model = DensePINN(ModelConfig(input_dim=4, hidden_dims=(32, 16), physics="hard"))
    model.head = _head(rng)
    with torch.no_grad():
        for layer in model.network:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(torch.rand_like(layer.weight) > 0.7)
    apply_masks(model, masks_from_zeros(model))
    groups, t, runs, power = _sequence(rng)
    seq = torch.as_tensor(sequence_columns(groups, t, runs, power))
    x = torch.randn(len(t), 4)
    sparse = WithHead(convert_dense_to_sparse(model, "coo"), copy.deepcopy(model.head))
    small = slice_model(model, select_neurons([torch.rand(32), torch.rand(16)], (20, 10)))
    same = groups[1:] == groups[:-1]
    with torch.no_grad():
        for variant in (model, sparse, small):
            wear = _physical(model.head, variant(x, seq))[:, 0]
            assert (np.diff(wear)[same] >= -1e-9).all()
        assert torch.allclose(sparse(x, seq), model(x, seq), atol=1e-5)
    assert small.head is not model.head and small.head.constants() == model.head.constants()


def test_a_hard_model_without_its_sequence_is_refused():
    model = DensePINN(ModelConfig(input_dim=3, hidden_dims=(4,), physics="hard"))
    with pytest.raises(SpinnError, match="needs the sequence"):
        model.head(torch.zeros(5, 2), torch.zeros(5, 2))
    with pytest.raises(SpinnError, match="ModelConfig.physics: input should be 'soft' or 'hard', got 'strong'"):
        ModelConfig(physics="strong")


def test_head_constants_round_trip():
    head = _head(np.random.default_rng(4))
    before, after = head.constants(), PhysicsHead.from_constants(head.constants()).constants()
    assert set(after) == set(before)
    for key, value in before.items():
        assert np.allclose(after[key], value, rtol=1e-12), key


def test_the_one_window_path_equals_the_array_path():
    from spinn_utils.model.sequence_numpy import step_one

    rng = np.random.default_rng(5)
    head = _head(rng)
    groups, t, runs, power = _sequence(rng)
    seq = sequence_columns(groups, t, runs, power)
    raw = rng.normal(size=(len(t), 2)) * 3
    whole = apply_head(raw, seq, head.constants())
    state, rows = HeadState(), []
    for i in range(len(t)):
        wear, delta, state = step_one(raw[i, 0], raw[i, 1], groups[i], t[i], bool(runs[i]), power[i],
                                      head.constants(), state)
        rows.append((wear, delta))
    assert np.abs(np.array(rows) - whole).max() < 1e-9
