"""Model verification (notebook 05): every check passes on honest files and fails on altered ones."""
from __future__ import annotations

import pytest
import torch

from spinn_utils.compression.magnitude import PruneConfig
from spinn_utils.compression.pruning_run import (
    prune_structured,
    prune_unstructured,
    pruned_checkpoint_meta,
    pruning_summary,
)
from spinn_utils.core.env import environment_info
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import METRICS, VARIANTS
from spinn_utils.core.results_files import write_result
from spinn_utils.evaluation.verify import VerifyConfig, verify_models
from spinn_utils.model.checkpoints import load_checkpoint, save_checkpoint
from spinn_utils.model.counting import count_parameters
from spinn_utils.model.inference import evaluate_model
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.physics import PhysicsConfig
from spinn_utils.training.fit import TrainConfig

TINY = ModelConfig(hidden_dims=(48, 48, 24))


@pytest.fixture()
def pruned_run(tmp_path, make_data):
    """A results folder as notebooks 02 and 03 leave it (no fine-tuning: 0 epochs)."""
    torch.manual_seed(0)
    paths, data = ResultsPaths.at(tmp_path).ensure(), make_data(train=4, val=2, test=2, rows=30)
    dense = DensePINN(TINY)
    train_cfg, physics_cfg = TrainConfig(progress=False), PhysicsConfig()
    dense_val = evaluate_model(dense, data, "val")
    meta = {"model": TINY, "feature_names": data.feature_names, "target_names": data.target_names,
            "scaler": data.scaler.to_dict(), "train_config": train_cfg, "physics_config": physics_cfg,
            "val_metrics": dense_val, "seed": 0}
    save_checkpoint(paths.checkpoint(VARIANTS.dense), dense, kind=VARIANTS.dense, meta=meta)
    cfg = PruneConfig(n_stages=2, finetune_epochs=0, final_finetune_epochs=0, structured_finetune_epochs=0)
    pruned, _, unstructured = prune_unstructured(
        _copy(dense), data, cfg, train_cfg, physics_cfg, "cpu")
    small, structured = prune_structured(dense, data, cfg, train_cfg, physics_cfg, "cpu")
    save_checkpoint(paths.checkpoint(VARIANTS.masked), pruned, kind=VARIANTS.masked, meta=pruned_checkpoint_meta(
        meta, pruned, val_metrics=unstructured.val_metrics, mask_sha256=unstructured.mask_sha256))
    save_checkpoint(paths.checkpoint(VARIANTS.structured), small, kind=VARIANTS.structured, meta=pruned_checkpoint_meta(
        meta, small, val_metrics=structured.val_metrics, target_params=structured.target_params))
    write_result(paths.metric(METRICS.pruning), pruning_summary(
        cfg, unstructured, structured, dense_val, count_parameters(dense), environment_info("cpu")))
    return paths, data


def _copy(model: DensePINN) -> DensePINN:
    clone = DensePINN(model.cfg)
    clone.load_state_dict(model.state_dict())
    return clone


def _failed(result) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


def test_honest_run_passes_every_check(pruned_run):
    paths, data = pruned_run
    result = verify_models(paths, VerifyConfig(), data)
    assert _failed(result) == set(), result.checks
    assert {m.kind for m in result.models.values()} == {VARIANTS.dense, VARIANTS.masked, VARIANTS.structured}
    assert result.models[VARIANTS.masked].params.sparsity == pytest.approx(0.685, abs=0.005)
    names = {c.name for c in result.checks}
    assert {"dense_total_params", "pruned_zeros_still_zero", "structured_params_on_target"} <= names


def test_revived_pruned_weight_fails_the_zero_check(pruned_run):
    paths, data = pruned_run
    ckpt = load_checkpoint(paths.checkpoint(VARIANTS.masked))
    w = ckpt.state_dict["network.2.weight"]
    i, j = (w == 0).nonzero()[0].tolist()
    w[i, j] = 0.5
    save_checkpoint(paths.checkpoint(VARIANTS.masked), ckpt.state_dict, kind=VARIANTS.masked, meta=ckpt.meta)
    failed = _failed(verify_models(paths, VerifyConfig(), data))
    assert "pruned_zeros_still_zero" in failed and "pruned_nonzero_as_recorded" in failed
    assert "pruned_sparsity_on_target" not in failed  # one weight is far below 0.5 pp


def test_wrong_target_and_changed_metrics_fail(pruned_run):
    paths, data = pruned_run
    ckpt = load_checkpoint(paths.checkpoint(VARIANTS.structured))
    first = next(iter(ckpt.meta["val_metrics"]["per_output"]))
    ckpt.meta["val_metrics"]["per_output"][first]["r2"] += 0.01
    save_checkpoint(paths.checkpoint(VARIANTS.structured), ckpt.state_dict, kind=VARIANTS.structured, meta=ckpt.meta)
    failed = _failed(verify_models(paths, VerifyConfig(target_sparsity=0.5), data))
    assert failed == {"pruned_sparsity_on_target", "spinn_structured_val_metrics_reproduced"}


def test_missing_checkpoint_is_a_failed_check(pruned_run):
    paths, data = pruned_run
    paths.checkpoint(VARIANTS.structured).unlink()
    result = verify_models(paths, VerifyConfig(), data)
    assert _failed(result) == {"spinn_structured_present"}
