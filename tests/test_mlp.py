import pytest
import torch

from spinn_utils.core.errors import SpinnError
from spinn_utils.model.counting import count_parameters, linear_layers
from spinn_utils.model.mlp import (
    DensePINN,
    ModelConfig,
    config_from_state_dict,
    model_from_state_dict,
)


def test_default_dense_pinn_has_paper_parameter_count():
    torch.manual_seed(0)  # unseeded, about 1 init in 25 draws an exact 0.0 weight
    model = DensePINN()
    assert count_parameters(model).model_dump() == {"total": 666_882, "nonzero": 666_882, "sparsity": 0.0}
    assert [m.out_features for m in linear_layers(model)] == [512, 512, 512, 256, 2]
    assert isinstance(model.network[1], torch.nn.Tanh)


def test_configurable_dims_and_activation():
    model = DensePINN(ModelConfig(input_dim=5, hidden_dims=(7, 3), output_dim=2, activation="relu"))
    assert model(torch.randn(4, 5)).shape == (4, 2)
    assert count_parameters(model).total == 5 * 7 + 7 + 7 * 3 + 3 + 3 * 2 + 2
    assert isinstance(model.network[1], torch.nn.ReLU)
    with pytest.raises(SpinnError, match="activation"):
        ModelConfig(activation="swish2")


def test_count_parameters_counts_zeros_once():
    model = DensePINN(ModelConfig(input_dim=4, hidden_dims=(6,), output_dim=2))
    with torch.no_grad():
        model.network[0].weight[:, :2] = 0.0  # 12 zeros
    counts = count_parameters(model)
    assert counts.total == 4 * 6 + 6 + 6 * 2 + 2
    assert counts.nonzero == counts.total - 12


def test_count_parameters_sparse_buffers():
    layer = torch.nn.Module()
    dense = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    layer.register_buffer("weight", dense.to_sparse())
    layer.register_buffer("bias", torch.ones(2))
    assert count_parameters(layer).model_dump() == {"total": 6, "nonzero": 4, "sparsity": pytest.approx(1 / 3)}


def test_legacy_state_dict_round_trip():
    model = DensePINN(ModelConfig(input_dim=3, hidden_dims=(8, 4), output_dim=2))
    cfg = config_from_state_dict(model.state_dict())
    assert cfg.dims == (3, 8, 4, 2)
    clone = model_from_state_dict(model.state_dict())
    x = torch.randn(5, 3)
    assert torch.equal(clone(x), model(x))


def test_state_dict_that_does_not_chain_is_refused():
    sd = DensePINN(ModelConfig(input_dim=3, hidden_dims=(8,), output_dim=2)).state_dict()
    sd["network.2.weight"] = torch.zeros(2, 5)
    with pytest.raises(SpinnError, match="do not chain"):
        model_from_state_dict(sd)
    with pytest.raises(SpinnError, match="network.N.weight"):
        model_from_state_dict({"fc.weight": torch.zeros(2, 2)})
