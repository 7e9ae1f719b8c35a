"""Cell 8 on tiny hand-made data: test-set scoring, sparse == masked, one CV result per fold."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch

from spinn_utils.compression.magnitude import PruneConfig, apply_masks, global_magnitude_masks
from spinn_utils.compression.run_models import check_scaler
from spinn_utils.compression.sparse import convert_dense_to_sparse
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.overrides import with_overrides
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import METRICS, TEST_VARIANTS, VARIANTS
from spinn_utils.core.results_files import read_result
from spinn_utils.core.results_schema import Skipped
from spinn_utils.data.schema import TARGETS
from spinn_utils.evaluation.crossval import CrossValConfig, cross_validate, cv_table, fold_stats
from spinn_utils.evaluation.holdout import evaluate_test, write_results
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.physics import PhysicsConfig
from spinn_utils.training.fit import TrainConfig

TINY = ModelConfig(hidden_dims=(8, 8))


def tiny_variants() -> dict:
    torch.manual_seed(0)
    dense = DensePINN(TINY).eval()
    masked = copy.deepcopy(dense)
    apply_masks(masked, global_magnitude_masks(masked, 0.5))
    return {"dense": dense, VARIANTS.masked: masked,
            VARIANTS.coo: convert_dense_to_sparse(masked, format="coo").eval(),
            VARIANTS.structured: DensePINN(ModelConfig(hidden_dims=(4, 4))).eval()}


def test_evaluate_test_scores_every_model_in_physical_units(make_data):
    data, cfg = make_data(rows=8), CrossValConfig.smoke_test()
    models = tiny_variants()
    out = evaluate_test(models, data, "cpu", cfg)
    assert set(out.models) == set(models) == set(TEST_VARIANTS) - {VARIANTS.structured_ort, VARIANTS.structured_int8_ort}
    for rep in out.models.values():
        r2 = [m.r2 for m in rep.per_output.values()]
        assert rep.mean_r2 == pytest.approx(np.mean(r2)) and rep.n == len(data.frames["test"])
    match = out.sparse_vs_masked
    assert match.passed and match.max_abs_diff < cfg.match_atol
    pred = out.predictions
    assert len(pred) == len(data.frames["test"]) * 4 * 2
    wear = pred[(pred["model"] == "dense") & (pred["target"] == TARGETS[0])]
    np.testing.assert_allclose(wear["measured"], data.targets("test")[:, 0])
    # RMSE recomputed from the saved predictions equals the report's: the table is what was scored.
    rmse = np.sqrt(((wear["measured"] - wear["predicted"]) ** 2).mean())
    assert rmse == pytest.approx(out.models["dense"].per_output[TARGETS[0]].rmse)


def test_sparse_that_differs_from_masked_fails_the_match(make_data):
    models = tiny_variants()
    models[VARIANTS.coo] = convert_dense_to_sparse(models["dense"], format="coo")
    out = evaluate_test(models, make_data(rows=8), "cpu", CrossValConfig.smoke_test())
    assert not out.sparse_vs_masked.passed and out.sparse_vs_masked.max_abs_diff > 1e-4


def test_check_scaler_refuses_another_scaler(make_data):
    data = make_data(rows=8)
    check_scaler({"scaler": data.scaler.to_dict()}, data, "dense")
    other = data.scaler.to_dict()
    other["y_mean"] = [m + 1.0 for m in other["y_mean"]]
    with pytest.raises(SpinnError, match="y_mean"):
        check_scaler({"scaler": other}, data, "dense")


def test_cross_validate_gives_one_result_per_fold(make_data):
    data = make_data(rows=8)
    cfg = CrossValConfig(cv_folds=3, cv_epochs=1, cv_patience=1, cv_prune_stages=1,
                         cv_finetune_epochs=0, cv_final_finetune_epochs=1, progress=False)
    train = TrainConfig.smoke_test()
    cv = cross_validate(data, cfg, TINY, train, PhysicsConfig.smoke_test(),
                                 PruneConfig.smoke_test(), "cpu")
    assert cv.n_folds == len(cv.folds) == 3
    held_out = [e for f in cv.folds for e in f.test_experiments]
    assert sorted(held_out) == list(range(6))  # every experiment held out exactly once
    assert all(not set(f.test_experiments) & set(f.val_experiments) for f in cv.folds)
    assert cv.schedule["train"]["epochs"] == 1 and cv.schedule["prune"]["n_stages"] == 1
    assert all(f.spinn_sparsity == pytest.approx(0.685, abs=0.01) for f in cv.folds)
    dense = [f.dense.mean_r2 for f in cv.folds]
    assert cv.dense.mean_r2.values == pytest.approx(dense)
    assert cv.dense.mean_r2.std == pytest.approx(np.std(dense, ddof=1))
    diff = [f.spinn.mean_r2 - f.dense.mean_r2 for f in cv.folds]
    assert cv.difference.mean_r2.mean == pytest.approx(np.mean(diff))
    assert "spinn - dense" in cv_table(cv).index


def test_fold_stats_skips_missing_folds():
    stats = fold_stats([0.5, None, 0.7])
    assert stats["n"] == 2 and stats["mean"] == pytest.approx(0.6)
    assert stats["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert fold_stats([0.4])["std"] is None and fold_stats([0.4])["sem"] is None  # one fold: no spread, not 0


def test_write_results(tmp_path, make_data):
    data, cfg = make_data(rows=8), CrossValConfig.smoke_test()
    test = evaluate_test(tiny_variants(), data, "cpu", cfg)
    paths = ResultsPaths.at(tmp_path).ensure()
    json_path, csv_path = write_results(paths, test, None, cfg, data, "cpu")  # CV not run
    saved = read_result(paths, METRICS.test_evaluation)  # read back through its schema
    skipped = Skipped(skipped=True, reason="run_cv=False")
    assert saved.cross_validation == skipped and saved.seed_runs == skipped
    assert saved.baselines == Skipped(skipped=True, reason="run_baselines=False")
    assert saved.models["dense"].mean_r2 == pytest.approx(test.models["dense"].mean_r2)
    assert len(pd.read_csv(csv_path)) == len(test.predictions)


def test_seed_runs_train_each_seed_on_the_fixed_split(make_data):
    from spinn_utils.evaluation.crossval import seed_runs

    data = make_data(rows=8)
    cfg = with_overrides(CrossValConfig.smoke_test(), n_seeds=2)
    out = seed_runs(data, cfg, TINY, TrainConfig(epochs=1, batch_size=16, progress=False),
                    PhysicsConfig.off(), PruneConfig.smoke_test(), "cpu")
    assert [r.seed for r in out.runs] == [cfg.seed, cfg.seed + 1]
    assert all(r.test_experiments == sorted(data.frames["test"]["experiment"].unique().tolist()) for r in out.runs)
    assert out.dense.mean_r2.n == 2 and len(out.difference.mean_r2.values) == 2
    assert out.runs[0].dense != out.runs[1].dense  # another seed, another model
