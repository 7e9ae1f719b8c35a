"""Artifacts (notebook 04): what is collected, the zip / Drive copy, hashes, atomicity."""
from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import datetime, timezone

import pytest

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.io import file_sha256, write_json
from spinn_utils.core.lineage import LINEAGE, recorded_hashes
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import METRICS, VARIANTS
from spinn_utils.core.results_files import read_result
from spinn_utils.pipeline.archive import (
    MANIFEST_NAME,
    ArtifactsConfig,
    collect_artifacts,
    copy_tree,
    save_artifacts,
    verify_copy,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture()
def recorded_run(tmp_path) -> ResultsPaths:
    paths = ResultsPaths.at(tmp_path / "results").ensure()
    paths.checkpoint(VARIANTS.dense).write_bytes(b"dense weights" * 100)
    paths.checkpoint(VARIANTS.masked).write_bytes(b"pruned weights" * 50)
    paths.metric(METRICS.pruning).write_text('{"config": {}}\n')
    paths.metric(METRICS.artifacts).write_text('{"stale": true}\n')  # an earlier run's own record
    (paths.data / "scaler.json").write_text('{"x_mean": [0]}\n')
    (paths.data / "train.csv").write_text("a,b\n1,2\n")
    (paths.checkpoints / ".spinn_masked.pt.abc.tmp").write_bytes(b"half-written")
    _record(paths, {"02": ["checkpoints/dense.pt"],
                    "03": ["checkpoints/spinn_masked.pt", "metrics/pruning.json"], "01": ["data/scaler.json"]})
    return paths


def _record(paths: ResultsPaths, outputs: dict[str, list[str]]) -> None:
    """lineage.json as finished notebooks leave it: the sha256 of what each one wrote."""
    write_json(paths.root / LINEAGE, {nb: {"inputs": {}, "outputs": {rel: file_sha256(paths.root / rel) for rel in rels}}
                                      for nb, rels in outputs.items()})


def test_collects_checkpoints_metrics_and_data_json_only(recorded_run):
    files = [f.as_posix() for f in collect_artifacts(recorded_run, ArtifactsConfig())]
    assert files == sorted([
        "checkpoints/dense.pt", "checkpoints/spinn_masked.pt",
        "metrics/pruning.json", "data/scaler.json",
    ])


def test_local_archive_holds_every_file_with_its_hash(recorded_run):
    summary = save_artifacts(recorded_run, ArtifactsConfig(), in_colab=False, now=NOW)
    zip_path = recorded_run.root / "archive" / "spinn_20250102T030405Z.zip"
    assert summary.mode == "archive" and summary.destination == str(zip_path)
    assert summary.verified and summary.problems == []
    with zipfile.ZipFile(zip_path) as zf:
        assert set(zf.namelist()) == {r.path for r in summary.files} | {MANIFEST_NAME}
        for row in summary.files:
            data = zf.read(row.path)
            assert hashlib.sha256(data).hexdigest() == recorded_hashes(recorded_run)[row.path]
            assert not hasattr(row, "sha256")  # lineage.json holds it; artifacts.json does not repeat it
            assert len(data) == row.bytes == (recorded_run.root / row.path).stat().st_size
        assert json.loads(zf.read(MANIFEST_NAME)) == [
            {**r.model_dump(), "sha256": recorded_hashes(recorded_run)[r.path]} for r in summary.files]
    assert read_result(recorded_run, METRICS.artifacts) == summary  # written through its schema
    assert summary.archive_sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert summary.sha256_from == LINEAGE and summary.not_archived == []
    assert not [p for p in zip_path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_drive_copy_in_colab(recorded_run, tmp_path):
    drive = tmp_path / "drive" / "spinn"
    summary = save_artifacts(recorded_run, ArtifactsConfig(drive_dir=str(drive)), in_colab=True, now=NOW)
    dest = drive / "spinn_20250102T030405Z"
    assert summary.mode == "drive" and summary.destination == str(dest)
    for row in summary.files:
        assert (dest / row.path).read_bytes() == (recorded_run.root / row.path).read_bytes()
    assert summary.verified
    with pytest.raises(SpinnError, match="already exists"):
        copy_tree(recorded_run.root, [r.model_dump() for r in summary.files], dest)
    assert summary.archive_sha256 is None


def test_drive_dir_outside_colab_archives_locally_and_says_so(recorded_run, tmp_path):
    summary = save_artifacts(recorded_run, ArtifactsConfig(drive_dir=str(tmp_path / "d")), in_colab=False, now=NOW)
    assert summary.mode == "archive" and "only in Colab" in summary.note
    assert not (tmp_path / "d").exists()


def test_verify_copy_catches_a_changed_or_missing_file(recorded_run, tmp_path):
    hashes = recorded_hashes(recorded_run)
    manifest = [{"path": f.as_posix(), "sha256": hashes[f.as_posix()]}
                for f in collect_artifacts(recorded_run, ArtifactsConfig()) if f.as_posix() in hashes]
    dest = copy_tree(recorded_run.root, manifest, tmp_path / "copy")
    assert verify_copy(dest, manifest) == []
    (dest / "metrics" / "pruning.json").write_text("{}\n")
    (dest / "data" / "scaler.json").unlink()
    problems = verify_copy(dest, manifest)
    assert len(problems) == 2 and any("sha256 differs" in p for p in problems)


def test_nothing_to_save_is_a_clear_error(tmp_path):
    with pytest.raises(SpinnError, match="run notebooks 01-03 first"):
        save_artifacts(ResultsPaths.at(tmp_path).ensure(), ArtifactsConfig(), in_colab=False)


def test_hashes_come_from_lineage_and_unrecorded_files_are_left_out(recorded_run):
    (recorded_run.checkpoints / f"{VARIANTS.csr}.pt").write_bytes(b"from the CLI, outside any notebook")
    summary = save_artifacts(recorded_run, ArtifactsConfig(), in_colab=False, now=NOW)
    assert [r.model_dump() for r in summary.not_archived] == [
        {"path": f"checkpoints/{VARIANTS.csr}.pt", "reason": "not recorded in lineage.json (no finished notebook wrote it)"}]
    assert f"checkpoints/{VARIANTS.csr}.pt" not in {r.path for r in summary.files}


def test_a_file_changed_since_its_notebook_recorded_it_fails_verification(recorded_run):
    recorded_run.metric(METRICS.pruning).write_text('{"config": {"altered": true}}\n')
    summary = save_artifacts(recorded_run, ArtifactsConfig(), in_colab=False, now=NOW)
    assert not summary.verified
    assert summary.problems == ["metrics/pruning.json: sha256 differs in spinn_20250102T030405Z.zip"]


def test_no_lineage_record_is_a_clear_error(recorded_run):
    (recorded_run.root / LINEAGE).unlink()
    with pytest.raises(SpinnError, match="recorded in lineage.json"):
        save_artifacts(recorded_run, ArtifactsConfig(), in_colab=False, now=NOW)
