
import pytest
import torch

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.registry import VARIANTS
from spinn_utils.model.checkpoints import (
    load_checkpoint,
    load_dense_model,
    load_state_dict_file,
    save_checkpoint,
)
from spinn_utils.model.mlp import DensePINN, ModelConfig, load_strict

SMALL = ModelConfig(input_dim=3, hidden_dims=(8, 4), output_dim=2)


def test_round_trip_restores_weights_and_meta(tmp_path):
    model = DensePINN(SMALL)
    path = save_checkpoint(tmp_path / "m.pt", model, kind=VARIANTS.dense, meta={"model": SMALL, "r2": 0.5})
    loaded, ckpt = load_dense_model(path)
    x = torch.randn(6, 3)
    assert torch.equal(loaded(x), model(x))
    assert ckpt.kind == "dense" and ckpt.meta["r2"] == ckpt.meta.r2 == 0.5  # keys read as attributes too
    assert ckpt.meta.model["hidden_dims"] == [8, 4]
    with pytest.raises(AttributeError, match="no 'scaler'"):
        _ = ckpt.meta.scaler


def test_meta_must_be_plain_data(tmp_path):
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "m.pt", DensePINN(SMALL), kind=VARIANTS.dense, meta={"x": object()})
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_kind_is_checked(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", DensePINN(SMALL), kind=VARIANTS.masked, meta={"model": SMALL})
    with pytest.raises(SpinnError, match="'spinn_masked' checkpoint, expected dense"):
        load_checkpoint(path, kind=VARIANTS.dense)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("not a checkpoint"), "not a torch checkpoint"),
        (lambda p: torch.save(torch.nn.Linear(2, 2), p), "pickled code"),
        (lambda p: torch.save({"a": 1}, p), "not a SPINN checkpoint"),
        (lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 40), "not"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, make, message):
    path = tmp_path / "bad.pt"
    make(path)
    with pytest.raises(SpinnError, match=message):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(SpinnError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_plain_state_dict_is_accepted_by_the_generic_reader(tmp_path):
    model = DensePINN(SMALL)
    torch.save(model.state_dict(), tmp_path / "legacy.pt")
    state, meta = load_state_dict_file(tmp_path / "legacy.pt")
    assert meta is None and set(state) == set(model.state_dict())


def test_weights_that_do_not_match_meta(tmp_path):
    path = save_checkpoint(
        tmp_path / "m.pt", DensePINN(SMALL), kind=VARIANTS.dense,
        meta={"model": ModelConfig(input_dim=3, hidden_dims=(9, 4), output_dim=2)},
    )
    with pytest.raises(SpinnError, match=r"says layer widths \[3, 9, 4, 2\], but the weights have \[3, 8, 4, 2\]"):
        load_dense_model(path)


def test_absurd_or_missing_meta_is_refused_before_anything_is_allocated(tmp_path):
    huge = save_checkpoint(tmp_path / "huge.pt", DensePINN(SMALL), kind=VARIANTS.dense,
                           meta={"model": ModelConfig(input_dim=3, hidden_dims=(10**6, 10**6), output_dim=2)})
    with pytest.raises(SpinnError, match="says layer widths"):  # a DensePINN this size is ~4 TB
        load_dense_model(huge)
    partial = save_checkpoint(tmp_path / "partial.pt", DensePINN(SMALL), kind=VARIANTS.dense,
                              meta={"model": {"input_dim": 3, "output_dim": 2}})
    with pytest.raises(SpinnError, match="meta\\['model'\\] is incomplete .*'hidden_dims'"):
        load_dense_model(partial)


def test_a_wrong_shape_names_the_sizes():
    model = DensePINN(SMALL)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["network.2.weight"] = torch.zeros(4, 7)
    with pytest.raises(SpinnError, match="size mismatch for network.2.weight.*torch.Size\\(\\[4, 7\\]\\)"):
        load_strict(model, state, "bad")


def test_checkpoints_under_earlier_names_still_load_with_one_note(tmp_path, capsys):
    """A results folder written before the rename (spinn_masked.pt, kind "pruned") still reads."""
    from spinn_utils.core.paths import ResultsPaths
    from spinn_utils.model.checkpoints import FORMAT, VERSION

    paths = ResultsPaths.at(tmp_path).ensure()
    model = DensePINN(SMALL)
    payload = {"format": FORMAT, "version": VERSION, "kind": "pruned",
               "state_dict": model.state_dict(), "meta": {"model": SMALL.model_dump()}}
    torch.save(payload, paths.checkpoints / "spinn_pruned.pt")
    found = paths.stored_checkpoint(VARIANTS.masked)
    assert found.name == "spinn_pruned.pt"
    loaded, ckpt = load_dense_model(found, VARIANTS.masked)
    assert ckpt.kind == VARIANTS.masked
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 2 and "spinn_pruned.pt" in notes[0] and "'pruned'" in notes[1]
    assert paths.checkpoint(VARIANTS.masked).name == f"{VARIANTS.masked}.pt"  # new files get the new name
    x = torch.randn(3, SMALL.input_dim)
    assert torch.equal(loaded(x), model.eval()(x))
