"""SparseLinear / SparsePINN: equivalence with the masked dense model, buffers, bytes, checkpoints."""
import pytest
import torch
from torch import nn

from spinn_utils.compression.sparse import (
    FORMATS,
    SparseLinear,
    SparsePINN,
    convert_dense_to_sparse,
    load_sparse_model,
    save_sparse_checkpoint,
    semi_structured_model,
    semi_structured_supported,
    two_four_mask,
    validate_conversion,
    weight_storage_report,
)
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.registry import VARIANTS
from spinn_utils.model.checkpoints import save_checkpoint
from spinn_utils.model.counting import count_parameters, flops_per_sample, storage_bytes
from spinn_utils.model.mlp import DensePINN, ModelConfig

SMALL = ModelConfig(input_dim=5, hidden_dims=(16, 12), output_dim=2)


def pruned(cfg: ModelConfig = SMALL, sparsity: float = 0.685) -> DensePINN:
    """A DensePINN whose smallest weights are zeroed so ``sparsity`` of ALL parameters are zero."""
    model = DensePINN(cfg)
    weights = [m.weight for m in model.network if isinstance(m, nn.Linear)]
    k = int(sparsity * count_parameters(model).total)
    with torch.no_grad():
        threshold = torch.cat([w.abs().flatten() for w in weights]).kthvalue(k).values
        for w in weights:
            w[w.abs() <= threshold] = 0.0
    return model.eval()


def test_masked_dense_coo_and_csr_agree_at_default_size():
    model = pruned(ModelConfig())  # the paper's 666,882-parameter network
    counts = count_parameters(model)
    assert counts.total == 666_882
    assert counts.sparsity == pytest.approx(0.685, abs=1e-4)
    x = torch.randn(64, 18)  # fresh every run: no seed that could hide a bug
    with torch.inference_mode():
        reference = model(x)
        outputs = {f: convert_dense_to_sparse(model, f)(x) for f in FORMATS}
    for fmt, y in outputs.items():
        assert y.dtype == torch.float32
        assert (y - reference).abs().max() <= 1e-5, fmt
    assert (outputs["coo"] - outputs["csr"]).abs().max() <= 1e-5


@pytest.mark.parametrize("fmt", FORMATS)
def test_conversion_keeps_counts_and_layout(fmt):
    model = pruned()
    sparse = convert_dense_to_sparse(model, fmt)
    assert count_parameters(sparse) == count_parameters(model)
    assert sparse.format == fmt and sparse.cfg.dims == SMALL.dims and not sparse.training
    layout = {"coo": torch.sparse_coo, "csr": torch.sparse_csr}[fmt]
    first = sparse.network[0]
    assert first.weight.layout == layout
    assert first.nnz == int(torch.count_nonzero(model.network[0].weight))
    if fmt == "coo":
        assert first.weight.is_coalesced()
    assert set(sparse.state_dict()) == set(model.state_dict())  # network.N.weight/bias, same keys


@pytest.mark.parametrize("fmt", FORMATS)
def test_to_double_moves_weight_and_bias_buffers(fmt):
    model = pruned()
    sparse = convert_dense_to_sparse(model, fmt)
    assert "network.0.weight" in dict(sparse.named_buffers())
    sparse.double()
    layer = sparse.network[0]
    assert layer.weight.dtype == torch.float64 and layer.bias.dtype == torch.float64
    x = torch.randn(7, SMALL.input_dim, dtype=torch.float64)
    y = sparse(x)
    assert y.dtype == torch.float64
    assert torch.allclose(y, model.double()(x), atol=1e-12)
    sparse.to(torch.float32)
    assert layer.weight.dtype == torch.float32 and layer.weight.layout != torch.strided


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("fmt", FORMATS)
def test_to_cuda_moves_sparse_weight(fmt):
    model = pruned()
    sparse = convert_dense_to_sparse(model, fmt).to("cuda")
    assert sparse.network[0].weight.is_cuda and sparse.network[0].bias.is_cuda
    x = torch.randn(9, SMALL.input_dim)
    assert torch.allclose(sparse(x.cuda()).cpu(), model(x), atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_state_dict_round_trip_with_a_different_nnz(fmt):
    source = convert_dense_to_sparse(pruned(sparsity=0.685), fmt)
    target = convert_dense_to_sparse(pruned(sparsity=0.3), fmt)  # other weights, more non-zeros
    assert target.network[0].nnz != source.network[0].nnz or target.network[2].nnz != source.network[2].nnz
    target.load_state_dict(source.state_dict())
    x = torch.randn(11, SMALL.input_dim)
    assert torch.equal(target(x), source(x))
    assert target.network[0].weight.layout == source.network[0].weight.layout
    assert count_parameters(target) == count_parameters(source)


def test_dense_state_dict_loads_into_sparse_and_bad_shape_is_refused():
    dense = pruned()
    sparse = convert_dense_to_sparse(pruned(), "coo")
    sparse.load_state_dict(dense.state_dict())  # dense tensors are converted to the layer's format
    x = torch.randn(5, SMALL.input_dim)
    assert torch.allclose(sparse(x), dense(x), atol=1e-6)
    assert sparse.network[0].weight.layout == torch.sparse_coo
    other = DensePINN(ModelConfig(input_dim=5, hidden_dims=(8, 12), output_dim=2))
    with pytest.raises(RuntimeError, match="size mismatch for network.0.weight"):
        sparse.load_state_dict(other.state_dict())


def test_storage_bytes_count_indices_and_offsets():
    weight = torch.randn(64, 48)
    weight[torch.rand_like(weight) > 0.315] = 0.0  # ~31.5 % density, as after 68.5 % pruning
    nnz = int(torch.count_nonzero(weight))
    dense_bytes = storage_bytes(weight)
    coo = SparseLinear(weight, None, "coo").weight
    csr = SparseLinear(weight, None, "csr").weight
    assert dense_bytes == 64 * 48 * 4
    assert storage_bytes(coo) == nnz * (4 + 2 * coo.indices().element_size())
    assert storage_bytes(coo) > dense_bytes  # two int64 indices per value outweigh the zeros
    crow, col = csr.crow_indices(), csr.col_indices()
    assert storage_bytes(csr) == nnz * 4 + 65 * crow.element_size() + nnz * col.element_size()
    layer = SparseLinear(weight, torch.randn(64), "csr")
    assert storage_bytes(layer) == storage_bytes(csr) + 64 * 4


def test_weight_storage_report_matches_converted_models():
    model = pruned()
    report = weight_storage_report(model)
    assert storage_bytes(model) == report["bytes_by_format"]["dense"]
    for fmt in FORMATS:
        assert report["bytes_by_format"][fmt] == storage_bytes(convert_dense_to_sparse(model, fmt))
    weights = [m.weight for m in model.network if isinstance(m, nn.Linear)]
    assert [r["nonzero"] for r in report["per_layer"]] == [int(torch.count_nonzero(w)) for w in weights]
    sparse_report = weight_storage_report(convert_dense_to_sparse(model, "coo"))
    assert sparse_report["per_layer"][0]["layout"] == "sparse_coo"


def test_flops_per_sample_dense_counts_zeros_sparse_counts_nnz():
    model = pruned()
    biases = sum(SMALL.dims[1:])
    dense_flops = sum(2 * a * b for a, b in zip(SMALL.dims[:-1], SMALL.dims[1:])) + biases
    assert flops_per_sample(model) == dense_flops
    nnz = sum(int(torch.count_nonzero(m.weight)) for m in model.network if isinstance(m, nn.Linear))
    assert flops_per_sample(convert_dense_to_sparse(model, "csr")) == 2 * nnz + biases


def test_validate_conversion_reports_real_differences():
    model = pruned()
    sparse = convert_dense_to_sparse(model, "coo")
    x = torch.randn(30, SMALL.input_dim)
    model.train()  # validation switches to eval and back
    good = validate_conversion(model, sparse, x.numpy(), atol=1e-5)
    assert good["passed"] and good["n"] == 30 and good["max_abs_diff"] <= 1e-5
    assert model.training
    with torch.no_grad():
        sparse.network[-1].bias += 0.01  # one wrong number must be caught
    bad = validate_conversion(model, sparse, x, atol=1e-5)
    assert not bad["passed"] and bad["max_abs_diff"] == pytest.approx(0.01, rel=1e-3)
    with pytest.raises(SpinnError, match="validation inputs"):
        validate_conversion(model, sparse, torch.randn(4, SMALL.input_dim + 1))
    x[0, 0] = float("nan")
    assert not validate_conversion(model, sparse, x)["passed"]


def test_bad_arguments_raise_spinn_error():
    with pytest.raises(SpinnError, match="format"):
        convert_dense_to_sparse(pruned(), "bsr")
    with pytest.raises(SpinnError, match="DensePINN"):
        convert_dense_to_sparse(nn.Linear(3, 2))
    with pytest.raises(SpinnError, match="2-D"):
        SparseLinear(torch.randn(3), None)
    with pytest.raises(SpinnError, match="bias"):
        SparseLinear(torch.randn(3, 4), torch.randn(4))
    with pytest.raises(SpinnError, match="chain"):
        SparsePINN([SparseLinear(torch.randn(3, 4)), SparseLinear(torch.randn(2, 5))])


def test_semi_structured_is_skipped_with_a_reason_on_cpu():
    ok, reason = semi_structured_supported("cpu")
    assert not ok and "CUDA" in reason
    with pytest.raises(SpinnError, match="CUDA"):
        semi_structured_model(pruned(), "cpu")


def test_two_four_mask_keeps_the_two_largest_of_every_four():
    weight = torch.tensor([[0.1, -3.0, 2.0, 0.5, 0.0, 0.0, 0.0, 4.0]])
    assert two_four_mask(weight).tolist() == [[False, True, True, False, False, False, False, True]]
    big = torch.randn(8, 64)
    kept = two_four_mask(big).reshape(8, 16, 4)
    assert (kept.sum(-1) <= 2).all()


def test_sparse_checkpoint_round_trip(tmp_path):
    model = pruned()
    sparse = convert_dense_to_sparse(model, "csr")
    meta = {"feature_names": list("abcde"), "target_names": ["vb", "dt"]}
    path = save_sparse_checkpoint(tmp_path / "s.pt", sparse, meta)
    loaded, ckpt = load_sparse_model(path)
    x = torch.randn(13, SMALL.input_dim)
    assert torch.equal(loaded(x), sparse(x))
    assert loaded.format == "csr" and loaded.network[0].weight.layout == torch.sparse_csr
    assert ckpt.kind == VARIANTS.csr and ckpt.meta["feature_names"] == list("abcde")
    assert ckpt.meta["model"]["hidden_dims"] == list(SMALL.hidden_dims) and ckpt.meta["format"] == "csr"


def test_load_sparse_model_refuses_other_kinds_and_bad_shapes(tmp_path):
    dense_path = save_checkpoint(tmp_path / "p.pt", pruned(), kind=VARIANTS.masked, meta={"model": SMALL})
    with pytest.raises(SpinnError, match="expected spinn_coo or spinn_csr"):
        load_sparse_model(dense_path)
    sparse = convert_dense_to_sparse(pruned(), "coo")
    wrong = ModelConfig(input_dim=5, hidden_dims=(16, 10), output_dim=2)
    path = save_checkpoint(tmp_path / "s.pt", sparse, kind=VARIANTS.coo, meta={"model": wrong, "format": "coo"})
    with pytest.raises(SpinnError, match=r"says layer widths \[5, 16, 10, 2\], but the weights have \[5, 16, 12, 2\]"):
        load_sparse_model(path)
