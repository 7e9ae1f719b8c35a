"""Lineage: a notebook refuses a results folder whose upstream files changed, went missing, or
were left by a run that did not finish; its own failed run leaves no record."""
import json

import pytest

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.lineage import LINEAGE, finish_stage, stale, start_stage, upstream
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import VARIANTS
from spinn_utils.core.stages import STAGES


def write_outputs(paths: ResultsPaths, notebook: str, text: str = "x") -> None:
    for rel in STAGES[notebook].writes:
        path = paths.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{rel} {text}")


def run(paths: ResultsPaths, notebook: str, text: str = "x") -> None:
    start_stage(paths, notebook)
    write_outputs(paths, notebook, text)
    finish_stage(paths, notebook)


@pytest.fixture
def paths(tmp_path) -> ResultsPaths:
    paths = ResultsPaths.at(tmp_path)
    for nb in ("01", "02", "03"):
        run(paths, nb)
    return paths


def test_upstream_follows_what_each_notebook_reads():
    assert upstream("02") == ["01"]
    assert upstream("03") == ["01", "02"]
    assert upstream("05") == ["01", "02", "03"]
    assert set(upstream("09")) == {"01", "02", "03", "05", "05_5", "06", "07", "08"}


def test_a_consistent_chain_passes_and_is_recorded(paths):
    assert stale(paths, "05") is None
    record = json.loads((paths.root / LINEAGE).read_text())
    assert set(record) == {"01", "02", "03"}
    assert set(record["03"]["inputs"]) == set(STAGES["03"].reads)
    assert all(len(sha) == 64 for sha in record["03"]["outputs"].values())


def test_an_altered_output_names_the_file_and_the_notebook_to_rerun(paths):
    paths.checkpoint(VARIANTS.masked).write_text("one weight moved by 1e-3")
    with pytest.raises(SpinnError, match=rf"checkpoints/{VARIANTS.masked}\.pt, which notebook 03 wrote, has "
                                         r"changed since notebook 03 ran.*re-run notebook 03"):
        start_stage(paths, "05")


def test_a_mixed_folder_is_refused(paths):
    run(paths, "01", "new data")  # 01 and 02 re-run ...
    run(paths, "02", "new dense")
    with pytest.raises(SpinnError, match=r"data/train\.csv, which notebook 03 read, has changed"):
        start_stage(paths, "05")  # ... but 03's checkpoints are from the old dense model


def test_a_failed_run_leaves_no_record_and_its_leftovers_are_refused(paths):
    start_stage(paths, "03")  # 03 starts again and fails before finishing
    assert "03" not in json.loads((paths.root / LINEAGE).read_text())
    with pytest.raises(SpinnError, match="left from a run of notebook 03 that did not finish"):
        start_stage(paths, "05")
    paths.checkpoint(VARIANTS.dense).unlink()
    with pytest.raises(SpinnError, match=f"{VARIANTS.dense}.pt, which notebook 02 wrote, is missing"):
        start_stage(paths, "03")


def test_a_notebook_that_never_ran_here_is_not_required(paths):
    assert stale(paths, "09") is None  # 05..08 never ran here: 09 reports their numbers "not measured"
    assert stale(paths, "06") is None  # 05.5 never ran: 06's own loading reports the missing export
    (paths.root / "metrics").joinpath("gpu_benchmark.json").write_text("{}")  # but a stray file is refused
    assert "left from a run of notebook 06" in stale(paths, "09")


def test_finish_needs_every_output(tmp_path):
    paths = ResultsPaths.at(tmp_path)
    start_stage(paths, "01")
    with pytest.raises(SpinnError, match="did not write"):
        finish_stage(paths, "01")


def test_an_external_input_is_recorded_and_checked(tmp_path):
    paths = ResultsPaths.at(tmp_path / "r")
    data = tmp_path / "my.csv"
    data.write_text("a,b\n1,2\n")
    start_stage(paths, "01")
    write_outputs(paths, "01")
    entry = finish_stage(paths, "01", extra_inputs={"data": data})
    assert str(data.resolve()) in entry["inputs"]
    data.write_text("a,b\n1,3\n")
    with pytest.raises(SpinnError, match="my.csv, which notebook 01 read, has changed"):
        start_stage(paths, "02")
