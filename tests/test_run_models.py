"""load_run_models: the one loader of a run's saved models (verification, benchmarks, evaluation)."""
from __future__ import annotations

import shutil

import pytest
import torch
from builders import saved_run
from builders import tiny_model as _model

from spinn_utils.compression.export import ExportConfig, export_checkpoints
from spinn_utils.compression.magnitude import apply_masks, global_magnitude_masks
from spinn_utils.compression.quantize import QuantConfig, quantize_exports
from spinn_utils.compression.run_models import OnnxModule, check_scaler, load_run_models
from spinn_utils.compression.sparse import (
    SparsePINN,
    convert_dense_to_sparse,
    save_sparse_checkpoint,
)
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.registry import TEST_VARIANTS, VARIANTS
from spinn_utils.model.mlp import DensePINN


@pytest.fixture
def pruned_run(tmp_path, make_data):
    """A results folder as notebooks 02-05.5 leave it: three checkpoints, COO and the exports."""
    data, masked = make_data(rows=12), _model(0)
    apply_masks(masked, global_magnitude_masks(masked, 0.5))
    paths = saved_run(tmp_path / "results", data, masked)
    meta = {"scaler": data.scaler.to_dict(), "feature_names": data.feature_names,
            "target_names": data.target_names}
    save_sparse_checkpoint(paths.checkpoint(VARIANTS.coo), convert_dense_to_sparse(masked, "coo"), meta)
    export_checkpoints(paths, data, ExportConfig())
    quantize_exports(paths, data, QuantConfig.smoke_test())  # the int8 export notebook 08 scores too
    return paths, data, masked


def test_loads_every_saved_variant_keyed_by_name(pruned_run):
    paths, data, masked = pruned_run
    loaded = load_run_models(paths, TEST_VARIANTS, "cpu", data=data)
    for part in (loaded.models, loaded.metas, loaded.paths):
        assert list(part) == list(TEST_VARIANTS)
    assert isinstance(loaded.models[VARIANTS.coo], SparsePINN)
    assert isinstance(loaded.models[VARIANTS.structured_ort], OnnxModule)
    assert loaded.models[VARIANTS.structured_ort].source is loaded.models[VARIANTS.structured]
    assert loaded.metas[VARIANTS.structured_ort] is loaded.metas[VARIANTS.structured]
    assert loaded.models[VARIANTS.structured_int8_ort].predictor.meta["precision"] == "int8"
    assert loaded.paths[VARIANTS.masked] == paths.checkpoint(VARIANTS.masked)
    assert loaded.metas[VARIANTS.masked]["val_metrics"] == {"mean_r2": float(len(VARIANTS.masked))}
    assert not any(m.training for m in loaded.models.values())
    x = torch.randn(7, 18)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.models[VARIANTS.masked](x), masked(x))
        torch.testing.assert_close(loaded.models[VARIANTS.coo](x), masked(x), atol=1e-5, rtol=1e-5)


def test_an_export_loads_its_source_without_returning_it(pruned_run):
    paths, _, _ = pruned_run
    loaded = load_run_models(paths, [VARIANTS.dense_ort], "cpu")
    assert list(loaded.models) == [VARIANTS.dense_ort]
    assert isinstance(loaded.models[VARIANTS.dense_ort].source, DensePINN)


def test_refuses_a_checkpoint_with_another_scaler_only_when_given_the_data(pruned_run, make_data):
    paths, data, _ = pruned_run
    other = make_data(rows=12, seed=5)
    load_run_models(paths, [VARIANTS.dense], "cpu")  # verification records it as a check instead
    with pytest.raises(SpinnError, match="dense: checkpoint scaler"):
        load_run_models(paths, [VARIANTS.dense], "cpu", data=other)
    check_scaler({"scaler": data.scaler.to_dict()}, data, "dense")


def test_refuses_a_sparse_checkpoint_of_another_format(pruned_run):
    paths, _, masked = pruned_run
    save_sparse_checkpoint(paths.checkpoint(VARIANTS.coo), convert_dense_to_sparse(masked, "csr"), {})
    with pytest.raises(SpinnError, match=f"is a '{VARIANTS.csr}' checkpoint, expected {VARIANTS.coo}"):
        load_run_models(paths, [VARIANTS.coo], "cpu")


def test_refuses_missing_files_wrong_kinds_and_unknown_variants(pruned_run):
    paths, _, _ = pruned_run
    with pytest.raises(SpinnError, match="no saved model for variant"):
        load_run_models(paths, [VARIANTS.semi24], "cpu")  # 2:4 is built where it is timed, never saved
    shutil.copy(paths.checkpoint(VARIANTS.structured), paths.checkpoint(VARIANTS.masked))
    with pytest.raises(SpinnError, match=f"'{VARIANTS.structured}' checkpoint, expected {VARIANTS.masked}"):
        load_run_models(paths, [VARIANTS.masked], "cpu")
    paths.export(VARIANTS.structured).unlink()
    with pytest.raises(SpinnError, match="not found"):
        load_run_models(paths, [VARIANTS.structured_ort], "cpu")
    paths.checkpoint(VARIANTS.dense).unlink()
    with pytest.raises(SpinnError, match="not found"):
        load_run_models(paths, [VARIANTS.dense], "cpu")
