"""ONNX export (scaler folded in, parity or nothing), the torch-free predictor, ONNX Runtime variants."""
import contextlib
import importlib
import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from builders import tiny_model

from spinn_utils.benchmark.bench_config import BenchConfig
from spinn_utils.benchmark.run import run_benchmark
from spinn_utils.benchmark.variants import ATOL, _ort_variant, load_variants
from spinn_utils.benchmark.workers import ORT_WORKER, Worker
from spinn_utils.compression.export import (
    ExportConfig,
    build_graph,
    export_checkpoints,
    export_model,
    fold_scaler,
    write_export,
)
from spinn_utils.compression.quantize import (
    QuantConfig,
    batch_dependence,
    choose,
    float_layers,
    quantize_exports,
)
from spinn_utils.compression.run_models import OnnxModule
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.io import file_sha256
from spinn_utils.core.overrides import with_overrides
from spinn_utils.core.registry import INT8_EXPORT, VARIANTS
from spinn_utils.model.mlp import ACTIVATIONS, DensePINN, ModelConfig
from spinn_utils.model.onnx_predictor import FILE_KEYS, META_SIDECAR, OnnxPredictor, sidecar_path
from spinn_utils.predict import csv_pieces, output_column, predict_csv
from spinn_utils.predict import main as predict_main

TINY = ModelConfig(hidden_dims=(16, 8))


def raw_test(data) -> np.ndarray:
    return data.frames["test"][data.feature_names].to_numpy(np.float64)


def test_folded_model_takes_raw_features_and_returns_physical_units(make_data):
    data, model = make_data(), tiny_model(0)
    x = raw_test(data)
    with torch.inference_mode():
        expected = data.scaler.inverse_y(model(torch.as_tensor(data.scaler.transform_x(x))).numpy())
        folded = fold_scaler(model, data.scaler)(torch.as_tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(folded, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert model.network[0].weight.data_ptr() != fold_scaler(model, data.scaler).network[0].weight.data_ptr()


def test_export_writes_a_model_onnx_runtime_reproduces_and_its_sidecar(run):
    paths, data = run
    sidecars = export_checkpoints(paths, data, ExportConfig())
    assert set(sidecars) == {VARIANTS.dense, VARIANTS.structured}
    side = json.loads(sidecar_path(paths.export(VARIANTS.structured)).read_text())
    assert side == sidecars[VARIANTS.structured].model_dump(exclude_unset=True)
    assert side["feature_names"] == data.feature_names
    assert side["targets"] == [{"name": "tool_wear_vb_mm", "unit": "mm"},
                               {"name": "thermal_displacement_um", "unit": "um"}]
    assert side["source_sha256"] == file_sha256(paths.checkpoint(VARIANTS.structured))
    assert side["parity"]["passed"] and side["onnxruntime_version"] and side["opset"] == 18
    assert side["onnx_bytes"] == paths.export(VARIANTS.structured).stat().st_size
    predictor = OnnxPredictor(paths.export(VARIANTS.structured))
    model = tiny_model(1, (8, 4))
    for n in (1, 37):  # the batch size is free
        x = np.random.default_rng(n).normal(size=(n, len(data.feature_names))) * 3 + 5
        with torch.inference_mode():
            expected = data.scaler.inverse_y(model(torch.as_tensor(data.scaler.transform_x(x))).numpy())
        got = predictor.run(x.astype(np.float32), threads=2)
        assert got.shape == (n, 2)
        np.testing.assert_allclose(got, expected, atol=1e-4 * data.scaler.y_std.max())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_the_written_graph_computes_what_torch_computes(activation):
    torch.manual_seed(3)
    model = DensePINN(ModelConfig(hidden_dims=(16, 8), activation=activation)).eval()
    proto = build_graph(model, 18)
    assert [n.op_type for n in proto.graph.node if n.op_type == "Gemm"] == ["Gemm"] * 3
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for rows in (1, 29):  # the batch dimension is free
        x = torch.randn(rows, 18) * 3
        with torch.inference_mode():
            expected = model(x).numpy()
        got = session.run(None, {"features": x.numpy()})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_module_outside_the_mlp_is_refused_not_written():
    model = tiny_model(0)
    model.network[1] = torch.nn.Softplus()
    with pytest.raises(SpinnError, match="cannot write Softplus"):
        build_graph(model, 18)


def test_failed_parity_keeps_no_export_and_removes_a_stale_one(run):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    out = paths.export(VARIANTS.dense)
    assert out.is_file() and sidecar_path(out).is_file()
    strict = with_overrides(ExportConfig(), parity_rtol=1e-15)  # float32 rounding alone exceeds it
    with pytest.raises(SpinnError, match="does not reproduce"):
        export_model(tiny_model(0), data.scaler, out, raw_test(data), strict,
                     source=paths.checkpoint(VARIANTS.dense), id_columns=[], feature_ranges={"min": [], "max": []})
    assert not out.exists() and not sidecar_path(out).exists()
    assert not list(paths.exports.glob("*.tmp"))


def test_onnx_module_is_scored_like_its_source(run):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    source = tiny_model(1, (8, 4))
    module = OnnxModule(paths.export(VARIANTS.structured), source, data.scaler)
    x, _ = data.arrays("test")
    with torch.inference_mode():
        torch.testing.assert_close(module(torch.as_tensor(x)), source(torch.as_tensor(x)), atol=1e-4, rtol=0)


def test_benchmark_times_the_exports_against_their_pytorch_models(run):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    variants = {v.name: v for v in load_variants(paths, "cpu", ("coo",))}
    ort = variants[VARIANTS.structured_ort]
    assert ort.skip_reason is None and ort.reference == VARIANTS.structured and ort.format == "onnx"
    assert isinstance(ort.input_for(torch.zeros(3, 18)), np.ndarray)  # raw features, made before timing
    assert variants[VARIANTS.structured_int8_ort].skip_reason is not None  # not quantized yet
    quantize_exports(paths, data, QuantConfig.smoke_test())
    variants = {v.name: v for v in load_variants(paths, "cpu", ("coo",))}
    result = run_benchmark(list(variants.values()), BenchConfig.smoke_test(), "cpu")
    info = result.variants
    for name in (VARIANTS.dense_ort, VARIANTS.structured_ort, VARIANTS.structured_int8_ort):
        assert info[name].outputs_match, info[name]
        assert info[name].notes["onnx_bytes"] > 0
    assert info[VARIANTS.structured_ort].params == info[VARIANTS.structured].params
    int8 = info[VARIANTS.structured_int8_ort]
    assert int8.dtype == "int8" and int8.atol == ATOL["int8"]
    assert int8.storage_bytes < info[VARIANTS.structured_ort].storage_bytes
    timed = {r.variant for r in result.results}
    assert {VARIANTS.dense_ort, VARIANTS.structured_ort, VARIANTS.structured_int8_ort} <= timed
    # Each runtime in its own process, as deployed: the exports each in a torch-free one.
    procs = result.processes
    exports = (VARIANTS.dense_ort, VARIANTS.structured_ort, VARIANTS.structured_int8_ort)
    assert set(procs) == {"torch_worker", *(f"ort_worker/{v}" for v in exports)}
    for v in exports:
        assert procs[f"ort_worker/{v}"].imported == {"torch": False, "onnxruntime": True}
        assert procs[f"ort_worker/{v}"].variants == [v]
    assert not set(exports) & set(procs["torch_worker"].variants)
    assert not result.failures
    on_gpu = _ort_variant(VARIANTS.structured_ort, paths, torch.device("cuda"), None)
    assert on_gpu.module is None and "CPU provider" in on_gpu.skip_reason  # 06 does not time it


def _predict(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter, reporting whether torch got imported."""
    code = ("import sys; from spinn_utils.predict import main; rc = main(sys.argv[1:]); "
            "print('torch imported:', 'torch' in sys.modules); sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)


def test_predict_cli_runs_without_torch_and_keeps_every_input_column(run, tmp_path):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    csv = tmp_path / "in.csv"
    data.frames["test"].to_csv(csv, index=False)
    out = tmp_path / "out.csv"
    proc = _predict(["--model", str(paths.export(VARIANTS.structured)), "--csv", str(csv),
                     "--output", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stdout
    pred = pd.read_csv(out)
    assert list(pred.columns) == [*data.frames["test"].columns, "predicted_tool_wear_vb_mm",
                                  "predicted_thermal_displacement_um", "warning"]
    assert pred["experiment"].tolist() == data.frames["test"]["experiment"].tolist()
    assert pred["warning"].isna().all()  # the test split lies within the training range
    model = OnnxModule(paths.export(VARIANTS.structured), tiny_model(1, (8, 4)), data.scaler)
    x, _ = data.arrays("test")
    with torch.inference_mode():
        expected = data.scaler.inverse_y(model.source(torch.as_tensor(x)).numpy())
    np.testing.assert_allclose(pred[["predicted_tool_wear_vb_mm", "predicted_thermal_displacement_um"]].to_numpy(),
                               expected, atol=1e-4 * data.scaler.y_std.max())


def test_predict_cli_bad_input_is_one_line_and_exit_2(run, tmp_path, capsys):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    model = str(paths.export(VARIANTS.structured))
    frame = data.frames["test"]
    cases = {
        "lacks feature column(s) ['feed_mm_rev']": frame.drop(columns="feed_mm_rev"),
        "must be numeric; found 'abc'": frame.astype({"feed_mm_rev": object}).assign(
            feed_mm_rev=["abc"] + list(frame["feed_mm_rev"].iloc[1:])),
        "has empty, NaN or inf values": frame.assign(feed_mm_rev=np.nan),
    }
    for expected, bad in cases.items():
        csv = tmp_path / "bad.csv"
        bad.to_csv(csv, index=False)
        assert predict_main(["--model", model, "--csv", str(csv), "--output", str(tmp_path / "o.csv")]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
    dup = tmp_path / "dup.csv"
    dup.write_text("a,a\n1,2\n")
    assert predict_main(["--model", model, "--csv", str(dup), "--output", str(tmp_path / "o.csv")]) == 2
    assert "more than once" in capsys.readouterr().err
    fake = tmp_path / "fake.onnx"
    fake.write_text("not a model")
    sidecar_path(fake).write_text(sidecar_path(paths.export(VARIANTS.structured)).read_text())
    assert predict_main(["--model", str(fake), "--csv", str(dup), "--output", str(tmp_path / "o.csv")]) == 2
    assert "not an ONNX model" in capsys.readouterr().err
    sidecar_path(fake).unlink()
    assert predict_main(["--model", str(fake), "--csv", str(dup), "--output", str(tmp_path / "o.csv")]) == 2
    assert "copy the .json sidecar" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_output_column_carries_the_unit():
    assert output_column({"name": "tool_wear_vb_mm", "unit": "mm"}) == "predicted_tool_wear_vb_mm"
    assert output_column({"name": "wear", "unit": "mm"}) == "predicted_wear_mm"
    assert output_column({"name": "wear", "unit": ""}) == "predicted_wear"


def _cli(model, csv, output, capsys) -> tuple[int, str]:
    rc = predict_main(["--model", str(model), "--csv", str(csv), "--output", str(output)])
    return rc, capsys.readouterr().err.strip()


def test_predict_never_writes_over_an_input(run, tmp_path, capsys):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    model = paths.export(VARIANTS.structured)
    csv = tmp_path / "x.csv"
    data.frames["test"].to_csv(csv, index=False)
    before = csv.read_bytes()
    (tmp_path / "link.csv").symlink_to(csv)
    for output in (csv, tmp_path / "link.csv", tmp_path / "." / "x.csv", model, sidecar_path(model)):
        rc, err = _cli(model, csv, output, capsys)
        assert rc == 2 and "would destroy the input" in err and len(err.splitlines()) == 1, err
    assert csv.read_bytes() == before


@pytest.fixture
def exported_csv(run, tmp_path):
    """(paths, data, the test split as a CSV, the structured export) of the ``run`` fixture, exported."""
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    csv = tmp_path / "x.csv"
    data.frames["test"].to_csv(csv, index=False)
    return paths, data, csv, paths.export(VARIANTS.structured)


def test_a_sidecar_edited_by_hand_or_not_its_models_is_refused(exported_csv, tmp_path, capsys):
    """The model records the sha256 of its whole sidecar: any edit or deleted key is one line."""
    paths, data, csv, good = exported_csv
    text = sidecar_path(good).read_text()
    side = json.loads(text)
    names, ranges = side["feature_names"], side["feature_ranges"]
    edited = {
        "a unit": {**side, "targets": [side["targets"][0], {**side["targets"][1], "unit": "mm"}]},
        "two names swapped": {**side, "feature_names": [names[1], names[0], *names[2:]]},
        "targets reversed": {**side, "targets": side["targets"][::-1]},
        "a name added": {**side, "feature_names": [*names, "extra"]},
        "the input name": {**side, "input_name": "x"},
        "a shape": {**side, "input_shape": ["batch", 17]},
        "ranges deleted": {k: v for k, v in side.items() if k != "feature_ranges"},
        "ranges null": {**side, "feature_ranges": None},
        "a range widened": {**side, "feature_ranges": {**ranges, "max": [m * 10 for m in ranges["max"]]}},
        "id columns deleted": {k: v for k, v in side.items() if k != "id_columns"},
        "a key added": {**side, "note": "mine"},
        "the size": {**side, "onnx_bytes": side["onnx_bytes"] + 1},
    }
    cases = {**{name: ("was edited after export", json.dumps(s)) for name, s in edited.items()},
             "another model's sha256": ("sha256 differs", json.dumps({**side, "onnx_sha256": "0" * 64})),
             "no sha256": ("re-export it", json.dumps({k: v for k, v in side.items() if k != "onnx_sha256"})),
             "truncated": ("is not valid JSON", text[: len(text) // 2]),
             "empty": ("is not valid JSON", ""),
             "a list": ("not a SPINN ONNX sidecar", "[1, 2]")}
    model = tmp_path / "m.onnx"
    model.write_bytes(good.read_bytes())
    for name, (expected, sidecar) in cases.items():
        sidecar_path(model).write_text(sidecar)
        rc, err = _cli(model, csv, tmp_path / "o.csv", capsys)
        assert rc == 2 and expected in err and len(err.splitlines()) == 1, (name, err)
    model.write_bytes(paths.export(VARIANTS.dense).read_bytes())  # another export's model, this sidecar
    sidecar_path(model).write_text(text)
    rc, err = _cli(model, csv, tmp_path / "o.csv", capsys)
    assert rc == 2 and "sha256 differs" in err
    assert not (tmp_path / "o.csv").exists()
    sidecar_path(model).write_text(text)  # unedited, with its own model: accepted
    model.write_bytes(good.read_bytes())
    assert _cli(model, csv, tmp_path / "o.csv", capsys)[0] == 0


def test_an_export_older_than_the_sidecar_hash_or_forged_whole_is_refused(exported_csv, tmp_path, capsys):
    paths, data, csv, good = exported_csv
    side = json.loads(sidecar_path(good).read_text())
    proto = onnx.load(str(good))
    kept = [p for p in proto.metadata_props if p.key != META_SIDECAR]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    model = tmp_path / "old.onnx"
    onnx.save(proto, str(model))  # as exported before the hash: everything else consistent
    sidecar_path(model).write_text(json.dumps({**side, "onnx_sha256": file_sha256(model),
                                               "onnx_bytes": model.stat().st_size}))
    rc, err = _cli(model, csv, tmp_path / "o.csv", capsys)
    assert rc == 2 and "records no hash of its sidecar" in err and "re-export it with notebook 05_5" in err
    names = side["feature_names"]
    forged = {k: v for k, v in side.items() if k not in FILE_KEYS} | {"feature_names": [names[1], names[0], *names[2:]]}
    write_export(onnx.load(str(good)), forged, model)  # re-hashed: names still checked
    rc, err = _cli(model, csv, tmp_path / "o.csv", capsys)
    assert rc == 2 and "was exported with" in err and len(err.splitlines()) == 1


def test_inputs_far_outside_the_training_range_are_flagged(run, tmp_path, capsys):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    model = paths.export(VARIANTS.structured)
    frame = data.frames["test"].reset_index(drop=True)
    train = data.frames["train"]["feed_mm_rev"]
    span = train.max() - train.min()
    frame.loc[0, "feed_mm_rev"] = train.max() + 0.5 * span  # beyond, but within the stated factor
    frame.loc[1, "feed_mm_rev"] = train.max() + 3 * span
    frame.loc[2, ["feed_mm_rev", "depth_of_cut_mm"]] = -1e6
    csv = tmp_path / "x.csv"
    frame.to_csv(csv, index=False)
    rc, err = _cli(model, csv, tmp_path / "o.csv", capsys)
    assert rc == 0 and f"3 of {len(frame)} rows" not in err and f"2 of {len(frame)} rows have inputs beyond" in err
    warning = pd.read_csv(tmp_path / "o.csv")["warning"].fillna("")
    assert warning[0] == "" and warning[1] == "beyond training range: feed_mm_rev"
    assert warning[2] == "beyond training range: depth_of_cut_mm feed_mm_rev"
    frame.loc[3, "feed_mm_rev"] = 1e300  # float32 would make it inf
    frame.to_csv(csv, index=False)
    rc, err = _cli(model, csv, tmp_path / "o2.csv", capsys)
    assert rc == 2 and "'feed_mm_rev' holds 1e+300 in row 3" in err


def test_predict_streams_in_chunks_with_the_same_result(run, tmp_path, monkeypatch):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    predictor = OnnxPredictor(paths.export(VARIANTS.structured))
    frame = data.frames["test"].reset_index(drop=True)
    csv = tmp_path / "x.csv"
    frame.to_csv(csv, index=False)
    assert predict_csv(predictor, str(csv), str(tmp_path / "one.csv"), chunk_rows=10**6)[0] == len(frame)
    assert predict_csv(predictor, str(csv), str(tmp_path / "many.csv"), chunk_rows=3) == (len(frame), 0)
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "many.csv").read_text()
    # Parsed in pieces of a few lines (each led by the header; the last line without a line break).
    csv.write_text(csv.read_text().rstrip("\n"))
    monkeypatch.setattr(importlib.import_module("spinn_utils.predict"), "PIECE_BYTES", 700)  # the module, not the re-exported function
    pieces = list(csv_pieces(csv, 700))
    header = csv.read_bytes().split(b"\n")[0] + b"\n"
    assert len(pieces) > 3 and all(p.startswith(header) for p in pieces)
    assert header + b"".join(p[len(header):] for p in pieces) == csv.read_bytes()
    assert predict_csv(predictor, str(csv), str(tmp_path / "pieces.csv"), chunk_rows=3) == (len(frame), 0)
    assert (tmp_path / "pieces.csv").read_text() == (tmp_path / "one.csv").read_text()
    frame = frame.astype({"feed_mm_rev": object})
    frame.loc[len(frame) - 1, "feed_mm_rev"] = "abc"
    frame.to_csv(csv, index=False)
    with pytest.raises(SpinnError, match=f"found 'abc' in row {len(frame) - 1}"):
        predict_csv(predictor, str(csv), str(tmp_path / "bad.csv"), chunk_rows=3)
    assert not (tmp_path / "bad.csv").exists()


# --- int8 -----------------------------------------------------------------------------------

def test_int8_export_beside_fp32_within_parity_and_run_by_the_predictor_unchanged(run, tmp_path):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    cfg = QuantConfig.smoke_test()
    side = quantize_exports(paths, data, cfg)[INT8_EXPORT]
    path, fp32 = paths.export(INT8_EXPORT), paths.export(VARIANTS.structured)
    assert path.is_file() and json.loads(sidecar_path(path).read_text())["precision"] == "int8"
    # The int8 sidecar names the int8 model's bytes; names and ranges are fp32's.
    fp32_side = json.loads(sidecar_path(fp32).read_text())
    assert side.onnx_sha256 == file_sha256(path) != fp32_side["onnx_sha256"]
    assert side.feature_ranges == fp32_side["feature_ranges"]
    assert side.feature_names == fp32_side["feature_names"] and side.input_shape == fp32_side["input_shape"]
    assert not [p for p in paths.exports.iterdir() if p.name.startswith(".")]  # candidates cleaned up
    q = side.quantization
    assert set(q.candidates) == {"static", "dynamic"} and q.why.startswith(f"{q.mode} kept")
    assert all(c["val_mean_r2"] is not None and c["median_ms"] > 0 for c in q.candidates.values())
    # Calibrated (static) scales keep rows independent; dynamic ones are measured, not assumed.
    assert all(d["max_abs_diff"] == 0 for d in q.candidates["static"]["batch_dependence"].values())
    assert {d["unit"] for d in q.candidates["dynamic"]["batch_dependence"].values()} == {"mm", "um"}
    # Hidden layers int8, first and last fp32 (raw features and physical units keep their scales).
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops & {"QuantizeLinear", "DynamicQuantizeLinear"} and q.float_layers == float_layers(fp32)
    # Parity vs fp32 in physical units, within the stated tolerance, recomputed here.
    x = data.frames["test"][data.feature_names].to_numpy(np.float32)
    diff = np.abs(OnnxPredictor(path).run(x) - OnnxPredictor(fp32).run(x)).max(axis=0)
    for j, p in enumerate(side.parity.per_target.values()):
        assert p["max_abs_diff"] == pytest.approx(diff[j], rel=1e-5, abs=1e-7)
        assert p["max_abs_diff"] <= cfg.parity_rtol * data.scaler.y_std[j] == pytest.approx(p["limit"])
        assert p["unit"] in ("mm", "um") and p["mean_abs_diff"] <= p["max_abs_diff"]
    assert side.parity.passed
    csv, out = tmp_path / "in.csv", tmp_path / "out.csv"
    data.frames["test"].to_csv(csv, index=False)
    proc = _predict(["--model", str(path), "--csv", str(csv), "--output", str(out)], tmp_path)
    assert proc.returncode == 0 and "torch imported: False" in proc.stdout, proc.stderr
    assert len(pd.read_csv(out)) == len(x)


def test_batch_dependence_is_what_a_row_gets_alone_vs_in_a_call():
    class CenteredPerCall:  # each output minus the call's mean: a row depends on its batch-mates
        def run(self, x, threads=1):
            return (x - x.mean(axis=0)).astype(np.float32)

    x = np.arange(12, dtype=np.float32).reshape(6, 2)  # columns 0..10 and 1..11 (mean 5 and 6)
    model = CenteredPerCall()
    dep = batch_dependence(model, x, model.run(x), ["tool_wear_vb_mm", "thermal_displacement_um"])
    assert dep == {"tool_wear_vb_mm": {"max_abs_diff": 5.0, "unit": "mm"},
                   "thermal_displacement_um": {"max_abs_diff": 5.0, "unit": "um"}}


def test_int8_parity_failure_keeps_no_export(run):
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    with pytest.raises(SpinnError, match="no export written"):
        quantize_exports(paths, data, QuantConfig.smoke_test().__class__(parity_rtol=1e-9, calibration_rows=64,
                                                                         choice_batch=8, choice_rounds=1))
    assert not paths.export(INT8_EXPORT).exists()
    assert not sidecar_path(paths.export(INT8_EXPORT)).exists()


def test_quantization_keeps_the_faster_mode_only_at_equal_accuracy():
    fast_but_worse = {"static": {"val_mean_r2": 0.80, "median_ms": 1.0},
                      "dynamic": {"val_mean_r2": 0.85, "median_ms": 2.0}}
    assert choose(fast_but_worse, 0.002)[0] == "dynamic"
    tie = {"static": {"val_mean_r2": 0.849, "median_ms": 1.0}, "dynamic": {"val_mean_r2": 0.85, "median_ms": 2.0}}
    mode, why = choose(tie, 0.002)
    assert mode == "static" and "equal accuracy, slower" in why
    with pytest.raises(SpinnError):
        QuantConfig(modes=("fp16",))


def test_the_onnx_runtime_worker_never_imports_torch(run):
    """A real worker process runs the deployable model; it asserts torch is absent after every message."""
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    x = data.frames["test"][data.feature_names].to_numpy(np.float32)
    with contextlib.closing(Worker(ORT_WORKER)) as worker:
        worker.request(op="load", variants={VARIANTS.structured_ort: str(paths.export(VARIANTS.structured))})
        assert worker.request(op="prepare", threads=1, inputs={VARIANTS.structured_ort: x}) == {"errors": {}}
        visit = worker.request(op="visit", name=VARIANTS.structured_ort, warmup_ms=0.0, visit_ms=0.0)
        assert len(visit["ms"]) == 1 and visit["ms"][0] > 0
        assert worker.request(op="modules") == {"torch": False, "onnxruntime": True}
        with pytest.raises(SpinnError, match="torch worker"):
            worker.request(op="gemm", n=8, repeats=1, threads=1)
