"""A hard-physics model deployed: the ONNX body plus the NumPy head equal the pipeline's answers."""
import json

import numpy as np
import pytest
import torch

from spinn_utils.compression.export import ExportConfig, export_checkpoints
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import VARIANTS
from spinn_utils.data.prepare import physics_support
from spinn_utils.data.schema import DataConfig
from spinn_utils.model.checkpoints import save_checkpoint
from spinn_utils.model.inference import model_sequence, predict
from spinn_utils.model.mlp import ModelConfig
from spinn_utils.model.onnx_predictor import OnnxPredictor, sidecar_path
from spinn_utils.model.sequence_head import head_constants
from spinn_utils.model.sequence_numpy import HeadState
from spinn_utils.model.sequence_predictor import SequencePredictor
from spinn_utils.model.sequences import build_model
from spinn_utils.predict import main as predict_main


def hard_model(data, seed: int, hidden=(16, 8)):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(hidden_dims=hidden, physics="hard"), data)
    with torch.no_grad():  # build_model starts the last layer at 0 (the physics prior): move it
        model.network[-1].weight.normal_(0, 0.5)
        model.network[-1].bias.normal_(0, 0.5)
    return model.eval()


@pytest.fixture
def hard_run(tmp_path, make_data):
    """A results folder with tiny hard-physics checkpoints, exported."""
    paths, data = ResultsPaths.at(tmp_path / "results").ensure(), make_data(rows=40)
    data.meta["physics"] = physics_support(DataConfig(), "synthetic")
    models = {VARIANTS.dense: hard_model(data, 0), VARIANTS.masked: hard_model(data, 0),
              VARIANTS.structured: hard_model(data, 1, (8, 4))}
    for name, model in models.items():
        meta = {"scaler": data.scaler.to_dict(), "feature_names": data.feature_names,
                "target_names": data.target_names, "model": model.cfg, "physics_head": head_constants(model)}
        save_checkpoint(paths.checkpoint(name), model, kind=name, meta=meta)
    export_checkpoints(paths, data, ExportConfig())
    return paths, data, models


def pipeline_answer(model, data, split="test") -> np.ndarray:
    x, _ = data.arrays(split)
    return data.scaler.inverse_y(predict(model, x, sequence=model_sequence(model, data, split)))


def test_the_sidecar_carries_the_head_and_the_time_columns(hard_run):
    paths, data, models = hard_run
    side = json.loads(sidecar_path(paths.export(VARIANTS.structured)).read_text())
    physics = side["physics"]
    assert physics["mode"] == "hard" and physics["group_col"] == data.group_col
    assert physics["time_col"] == data.time_col and physics["power_col"] == "smc_dc_mean"
    assert physics["head"] == json.loads(json.dumps(head_constants(models[VARIANTS.structured])))


def test_the_predictor_answers_what_the_pipeline_does_in_any_row_order(hard_run, tmp_path):
    paths, data, models = hard_run
    frame = data.frames["test"]
    shuffled = frame.sample(frac=1.0, random_state=0)  # the CSV need not be in time order
    csv = tmp_path / "windows.csv"
    shuffled.to_csv(csv, index=False)
    out = tmp_path / "out.csv"
    assert predict_main(["--model", str(paths.export(VARIANTS.structured)), "--csv", str(csv),
                         "--output", str(out), "--threads", "1"]) == 0
    import pandas as pd

    got = pd.read_csv(out).set_index(shuffled.index)
    expected = pipeline_answer(models[VARIANTS.structured], data)
    cols = ["predicted_tool_wear_vb_mm", "predicted_thermal_displacement_um"]
    np.testing.assert_allclose(got.loc[frame.index, cols].to_numpy(), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


def test_a_csv_without_the_time_columns_is_refused_in_one_line(hard_run, tmp_path, capsys):
    paths, data, _ = hard_run
    csv = tmp_path / "no_group.csv"
    data.frames["test"].drop(columns=[data.group_col]).to_csv(csv, index=False)
    code = predict_main(["--model", str(paths.export(VARIANTS.structured)), "--csv", str(csv),
                         "--output", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "lacks column(s) ['experiment']" in err and "--group-col" in err


def test_a_time_that_restarts_without_the_run_column_is_refused(hard_run, tmp_path, capsys):
    paths, data, _ = hard_run
    frame = data.frames["test"].copy()
    frame[data.time_col] = frame.groupby(data.group_col).cumcount() % 5  # restarts every 5 windows
    csv = tmp_path / "restart.csv"
    frame.drop(columns=["run"]).to_csv(csv, index=False)
    code = predict_main(["--model", str(paths.export(VARIANTS.structured)), "--csv", str(csv),
                         "--output", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "repeats or restarts within group" in err and "--run-col" in err


def test_streaming_one_window_at_a_time_equals_one_pass(hard_run):
    paths, data, models = hard_run
    predictor = SequencePredictor(OnnxPredictor(paths.export(VARIANTS.structured)))
    frame = data.frames["test"]  # prepared: in time order, with cumulative time and run starts
    x = frame[data.feature_names].to_numpy(np.float64)
    state, rows = HeadState(), []
    for i in range(len(frame)):  # a live machine: batch 1, the state carried by the caller
        y, state = predictor.step(state, x[i], frame[data.group_col].iloc[i],
                                  frame["cumulative_time_min"].iloc[i], frame["run_start"].iloc[i])
        rows.append(y[0])
    expected = pipeline_answer(models[VARIANTS.structured], data)
    np.testing.assert_allclose(np.array(rows), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_the_benchmark_times_a_hard_export_with_its_head(hard_run):
    """What the ONNX Runtime worker times for a hard export is the streamed call, head included:
    its answer is step's on the same windows, not the body's raw rates."""
    from spinn_utils.model.sequence_predictor import deployed_call

    paths, data, _ = hard_run
    predictor = OnnxPredictor(paths.export(VARIANTS.structured))
    x = data.frames["test"][data.feature_names].to_numpy(np.float32)[:7]
    timed, _ = deployed_call(predictor, x, threads=1)()
    t = np.arange(1, 8) * 0.05
    expected, _ = SequencePredictor(predictor).step(HeadState(0, 0.0), x, 0, t, np.zeros(7))
    np.testing.assert_allclose(timed, expected, rtol=1e-6)
    assert not np.allclose(timed, predictor.run(x, 1), rtol=1e-3)


def test_without_a_power_input_the_deployed_head_sees_1_kw_as_training_does():
    """sequences.sequence_of gives 1 kW where the data has no power column; so must the predictor."""
    from types import SimpleNamespace

    physics = {"mode": "hard", "head": {"y_mean": [0.0, 0.0], "y_std": [1.0, 1.0]}, "power_col": "",
               "power_unit": "A"}
    head = SequencePredictor(SimpleNamespace(meta={"physics": physics}, feature_names=["a"]))
    assert head.power(np.zeros((3, 1), np.float32)).tolist() == [1.0, 1.0, 1.0]
