"""convert_to_sparse: one code path for the CLI and notebook 05.5; bad input = exit 2, nothing written."""
import copy
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from spinn_utils.compression.convert import (
    SparseConfig,
    convert_checkpoint,
    fold_prune_masks,
    summary_rows,
)
from spinn_utils.compression.convert_cli import main
from spinn_utils.compression.sparse import load_sparse_model
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.registry import METRICS, VARIANTS
from spinn_utils.core.results_files import read_result
from spinn_utils.data.dataset import Scaler
from spinn_utils.data.schema import DEFAULT_FEATURES, TARGETS
from spinn_utils.model.checkpoints import save_checkpoint
from spinn_utils.model.counting import count_parameters
from spinn_utils.model.mlp import DensePINN, ModelConfig

CFG = ModelConfig(input_dim=len(DEFAULT_FEATURES), hidden_dims=(24, 16), output_dim=len(TARGETS))
CONTRACT_KEYS = ("source", "format", "params", "per_layer", "storage_bytes", "validation",
                 "conversion_ok", "created", "versions", "environment")


def pruned_model(cfg: ModelConfig = CFG) -> DensePINN:
    """Weights zeroed at ~68.5 % of all parameters, smallest magnitudes first."""
    model = DensePINN(cfg)
    weights = [m.weight for m in model.network if isinstance(m, nn.Linear)]
    k = int(0.685 * count_parameters(model).total)
    with torch.no_grad():
        threshold = torch.cat([w.abs().flatten() for w in weights]).kthvalue(k).values
        for w in weights:
            w[w.abs() <= threshold] = 0.0
    return model.eval()


@pytest.fixture
def source(tmp_path):
    """A pruned checkpoint with a scaler, the model, and a split CSV in physical units."""
    rng = np.random.default_rng()
    frame = pd.DataFrame(rng.normal(3.0, 2.0, (40, len(DEFAULT_FEATURES) + 2)),
                         columns=[*DEFAULT_FEATURES, *TARGETS])
    scaler = Scaler.fit(frame, DEFAULT_FEATURES, TARGETS)
    model = pruned_model()
    path = save_checkpoint(
        tmp_path / "in" / f"{VARIANTS.masked}.pt", model, kind=VARIANTS.masked,
        meta={"model": CFG.model_dump(), "feature_names": list(DEFAULT_FEATURES),
              "target_names": list(TARGETS), "scaler": scaler.to_dict(), "seed": 3},
    )
    csv = tmp_path / "in" / "test.csv"
    frame.to_csv(csv, index=False)
    return path, model, scaler, frame, csv


def test_convert_checkpoint_writes_contract_and_round_trips(tmp_path, source):
    path, model, scaler, frame, csv = source
    ckpt_out, report_out = tmp_path / "ck" / "s.pt", tmp_path / "m" / "r.json"
    report = convert_checkpoint(SparseConfig(), path, checkpoint_out=ckpt_out, report_out=report_out,
                                inputs=csv)
    assert report.conversion_ok and report.all_formats_passed
    assert read_result(report_out, METRICS.sparse_conversion) == report  # the record returned is the one written
    on_disk = json.loads(report_out.read_text())
    assert all(k in on_disk for k in CONTRACT_KEYS)
    assert on_disk["source_kind"] == VARIANTS.masked and on_disk["format"] == "coo"
    assert report.params == count_parameters(model) == report.params_sparse
    assert on_disk["validation"]["n"] == len(frame) and "scaler" in on_disk["validation"]["inputs"]
    assert set(on_disk["storage_bytes"]) == {"dense", "coo", "csr"}
    assert on_disk["storage_bytes"]["coo"] > on_disk["storage_bytes"]["dense"]  # indices counted
    loaded, ckpt = load_sparse_model(ckpt_out)
    assert ckpt.meta["scaler"] == scaler.to_dict() and ckpt.meta["source_kind"] == VARIANTS.masked
    x = torch.from_numpy(scaler.transform_x(frame))
    assert torch.allclose(loaded(x), model(x), atol=1e-6)
    rows = summary_rows(report)
    assert [r["format"] for r in rows] == ["dense", "coo", "csr"] and rows[1]["passed"]


def test_array_inputs_random_inputs_and_row_cap(tmp_path, source):
    path = source[0]
    cfg = SparseConfig(format="csr", formats=("csr",), n_random_inputs=17)
    report = convert_checkpoint(cfg, path, checkpoint_out=tmp_path / "a.pt",
                                report_out=tmp_path / "a.json")
    assert report.validation.n == 17 and report.validation.inputs.startswith("random")
    assert list(report.validation_by_format) == ["csr"]
    capped = SparseConfig(max_rows=5)
    report = convert_checkpoint(capped, path, checkpoint_out=tmp_path / "b.pt", report_out=tmp_path / "b.json",
                                inputs=np.random.randn(9, CFG.input_dim), inputs_label="test split")
    assert report.validation.n == 5 and "test split" in report.validation.inputs
    with pytest.raises(SpinnError, match="NaN"):
        convert_checkpoint(capped, path, checkpoint_out=tmp_path / "c.pt", report_out=tmp_path / "c.json",
                           inputs=np.full((3, CFG.input_dim), np.nan))
    assert not (tmp_path / "c.json").exists()


def test_legacy_state_dict_via_cli(tmp_path, capsys):
    model = pruned_model()
    legacy = tmp_path / "legacy.pt"
    torch.save(model.state_dict(), legacy)  # the earlier pipeline's format: no header, no meta
    out = tmp_path / "out"
    assert main(["--checkpoint", str(legacy), "--output-dir", str(out)]) == 0
    report = json.loads((out / "sparse_conversion_report.json").read_text())
    assert report["source_kind"] == "state_dict" and report["dims"] == list(CFG.dims)
    loaded, _ = load_sparse_model(out / f"{VARIANTS.coo}.pt")
    x = torch.randn(8, CFG.input_dim)
    assert torch.allclose(loaded(x), model(x), atol=1e-6)
    assert "coo" in capsys.readouterr().out


def test_prune_hook_state_dict_is_folded():
    state = {"network.0.weight_orig": torch.ones(2, 3), "network.0.weight_mask": torch.eye(2, 3),
             "network.0.bias": torch.zeros(2)}
    folded = fold_prune_masks(state)
    assert set(folded) == {"network.0.weight", "network.0.bias"}
    assert torch.equal(folded["network.0.weight"], torch.eye(2, 3))
    with pytest.raises(SpinnError, match="_mask"):
        fold_prune_masks({"network.0.weight_orig": torch.ones(2, 3)})


def test_a_failed_conversion_keeps_the_good_files_and_reports_beside_them(tmp_path, source, capsys):
    out = tmp_path / "out"
    assert main(["--checkpoint", str(source[0]), "--output-dir", str(out)]) == 0
    good = {p.name: p.read_bytes() for p in out.iterdir()}  # an earlier, good conversion
    code = main(["--checkpoint", str(source[0]), "--output-dir", str(out), "--atol", "1e-15"])
    assert code == 1
    failed = json.loads((out / "sparse_conversion_report.failed.json").read_text())
    assert not failed["conversion_ok"] and failed["checkpoint"] is None
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in good} == good  # untouched
    err = capsys.readouterr().err
    assert "did not match" in err and "nothing replaced" in err


def test_csr_never_replaces_coo_and_a_nan_weight_is_named(tmp_path, source, capsys):
    out = tmp_path / "out"
    assert main(["--checkpoint", str(source[0]), "--output-dir", str(out)]) == 0
    assert main(["--checkpoint", str(source[0]), "--output-dir", str(out), "--format", "csr"]) == 0
    assert load_sparse_model(out / f"{VARIANTS.coo}.pt")[1].meta["format"] == "coo"
    assert load_sparse_model(out / f"{VARIANTS.csr}.pt")[1].meta["format"] == "csr"
    assert (out / "sparse_conversion_report_csr.json").is_file()
    model = source[1]
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.network[0].weight[0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", broken, kind=VARIANTS.masked, meta={"model": broken.cfg.model_dump()})
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["--checkpoint", str(tmp_path / "nan.pt"), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "network.0.weight has 1 NaN/inf value(s)" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _bad_inputs(tmp_path, source):
    """name -> extra CLI arguments that must fail with exit code 2."""
    path, model, _, frame, _ = source
    (tmp_path / "text.pt").write_text("not a checkpoint")
    torch.save(nn.Linear(2, 2), tmp_path / "pickled.pt")
    torch.save({"network.0.weight": torch.zeros(4, 3), "network.2.weight": torch.zeros(2, 5)},
               tmp_path / "chain.pt")
    wrong = ModelConfig(input_dim=CFG.input_dim, hidden_dims=(24, 8), output_dim=2)
    save_checkpoint(tmp_path / "meta.pt", model, kind=VARIANTS.masked, meta={"model": wrong.model_dump()})
    frame.drop(columns=["feed_mm_rev"]).to_csv(tmp_path / "nofeed.csv", index=False)
    return {
        "missing file": ["--checkpoint", str(tmp_path / "nope.pt")],
        "not a checkpoint": ["--checkpoint", str(tmp_path / "text.pt")],
        "pickled code": ["--checkpoint", str(tmp_path / "pickled.pt")],
        "shapes do not chain": ["--checkpoint", str(tmp_path / "chain.pt")],
        "weights vs meta": ["--checkpoint", str(tmp_path / "meta.pt")],
        "csv lacks a column": ["--checkpoint", str(path), "--data", str(tmp_path / "nofeed.csv")],
        "csv missing": ["--checkpoint", str(path), "--data", str(tmp_path / "none.csv")],
        "bad format": ["--checkpoint", str(path), "--format", "bsr"],
        "bad atol": ["--checkpoint", str(path), "--atol", "0"],
        "activation clash": ["--checkpoint", str(path), "--activation", "relu"],
        "no checkpoint": [],
    }


def test_every_bad_input_is_one_line_exit_2_nothing_written(tmp_path, source, capsys):
    for name, args in _bad_inputs(tmp_path, source).items():
        out = tmp_path / f"out_{name.replace(' ', '_')}"
        code = main([*args, "--output-dir", str(out)])
        err = capsys.readouterr().err
        assert code == 2, name
        assert len(err.strip().splitlines()) == 1 and err.startswith("convert_to_sparse: error:"), name
        assert not out.exists(), name


def test_module_runs_as_a_script(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "spinn_utils.convert_to_sparse", "--checkpoint", str(tmp_path / "x.pt")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "checkpoint not found" in result.stderr
    assert not list(tmp_path.iterdir())


def test_an_output_that_is_the_input_in_any_spelling_is_refused(tmp_path, source, capsys, monkeypatch):
    """The CLI writes <output-dir>/spinn_coo.pt: a masked checkpoint saved under that name, a
    symlink or hard link to the input, or a relative path to it must not be overwritten."""
    path, *_ = source
    named = path.with_name(f"{VARIANTS.coo}.pt")  # a masked checkpoint that happens to carry the name
    named.write_bytes(path.read_bytes())
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / f"{VARIANTS.coo}.pt").symlink_to(path)
    hard = tmp_path / "hard"
    hard.mkdir()
    (hard / f"{VARIANTS.coo}.pt").hardlink_to(path)
    monkeypatch.chdir(tmp_path)
    cases = {
        "same name, default folder": ["--checkpoint", str(named)],
        "relative spelling": ["--checkpoint", f"in/../in/{named.name}", "--output-dir", "in"],
        "symlink in the output folder": ["--checkpoint", str(path), "--output-dir", str(linked)],
        "hard link in the output folder": ["--checkpoint", str(path), "--output-dir", str(hard)],
    }
    for name, args in cases.items():
        before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
        assert main(args) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is the input" in err and "destroy" in err, (name, err)
        assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before, name
    assert (linked / f"{VARIANTS.coo}.pt").is_symlink()
