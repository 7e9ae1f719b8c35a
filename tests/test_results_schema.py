"""The results schema: every metrics JSON written and read through its models; a missing,
renamed or mistyped key, or another schema version, is one line naming file, key and notebook."""
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from results_factory import evaluation_record, fake_pruning, fake_results, write_results

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import LABELS, METRICS, VARIANTS, names
from spinn_utils.core.results_files import (
    SCHEMAS,
    read_result,
    require_keys,
    schema_reference,
    write_result,
)
from spinn_utils.core.results_schema import Skipped
from spinn_utils.core.results_schema_eval import TestEvaluation
from spinn_utils.core.results_schema_sweep import Sweep
from spinn_utils.reporting.checklist import build_checklist
from spinn_utils.reporting.results import NOT_MEASURED
from spinn_utils.reporting.table1 import build_table1

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "results_schema.md"


@pytest.fixture
def run(tmp_path) -> ResultsPaths:
    paths = ResultsPaths.at(tmp_path).ensure()
    write_results(paths, fake_results())
    return paths


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_every_metrics_json_has_a_schema():
    assert set(SCHEMAS) == set(names(METRICS))


def test_a_record_reads_back_equal_with_its_version(run):
    assert read_result(run, METRICS.test_evaluation) == evaluation_record()
    written = json.loads(run.metric(METRICS.test_evaluation).read_text())
    assert next(iter(written)) == "schema_version" and written["schema_version"] == TestEvaluation.SCHEMA_VERSION
    write_result(run.metric(METRICS.pruning), fake_pruning())
    assert read_result(run, METRICS.pruning) == fake_pruning()


def test_an_optional_key_left_at_none_is_absent_not_null(run):
    written = json.loads(run.metric(METRICS.cpu_benchmark).read_text())
    assert "notes" not in written["variants"]["dense"]  # BenchVariant.notes: ONNX Runtime variants only
    pruning = fake_pruning()
    write_result(run.metric(METRICS.pruning), pruning)
    stage0 = json.loads(run.metric(METRICS.pruning).read_text())["unstructured"]["stages"][0]
    assert "epochs_run" not in stage0 and read_result(run, METRICS.pruning) == pruning


def test_a_renamed_cross_validation_key_is_one_line_not_not_measured(run):
    """The issue's case: rename ``cross_validation`` in a written test_evaluation.json and read
    it as notebook 09 does: one line naming file, key and notebook, not "not measured" cells."""
    _edit(run.metric(METRICS.test_evaluation),
          lambda d: d.update(cross_val=d.pop("cross_validation")))
    with pytest.raises(SpinnError) as err:
        build_table1(run)
    assert str(err.value) == ("metrics/test_evaluation.json: missing key 'cross_validation' (schema v1); "
                              "re-run notebook 08")
    with pytest.raises(SpinnError, match="missing key 'cross_validation'"):
        build_checklist(run)


def test_nested_missing_unexpected_and_mistyped_keys_are_named(run):
    path = run.metric(METRICS.cpu_benchmark)
    _edit(path, lambda d: d["results"][0].pop("median_ms"))
    with pytest.raises(SpinnError, match=r"cpu_benchmark.json: missing key 'results.0.median_ms' .*notebook 07"):
        read_result(run, METRICS.cpu_benchmark)
    path = run.metric(METRICS.test_evaluation)
    _edit(path, lambda d: d["models"]["dense"].update(mean_r2_pooled=0.5))
    with pytest.raises(SpinnError, match="unexpected key 'models.dense.mean_r2_pooled'"):
        read_result(run, METRICS.test_evaluation)
    _edit(path, lambda d: (d["models"]["dense"].pop("mean_r2_pooled"), d["models"]["dense"].update(n="100")))
    with pytest.raises(SpinnError, match="expected integer, found str at key 'models.dense.n'"):
        read_result(run, METRICS.test_evaluation)
    _edit(path, lambda d: (d["models"]["dense"].update(n=100), d.update(cross_validation={"skipped": True})))
    with pytest.raises(SpinnError, match=r"missing key 'cross_validation.reason' \(schema v1\); re-run notebook 08$"):
        read_result(run, METRICS.test_evaluation)  # a step skipped by design still says why


@pytest.mark.parametrize("version", [None, 0, 2])
def test_another_schema_version_is_refused_with_the_notebook_to_rerun(run, version):
    def change(d):
        d.pop("schema_version")
        if version is not None:
            d["schema_version"] = version

    _edit(run.metric(METRICS.sparse_conversion), change)
    with pytest.raises(SpinnError) as err:
        read_result(run, METRICS.sparse_conversion)
    line = str(err.value)
    assert "\n" not in line and line.startswith("metrics/sparse_conversion_report.json: written with ")
    assert line.endswith("this code reads schema v1; re-run notebook 05_5")


def test_a_record_that_would_not_read_back_is_refused_before_writing(run):
    """A NaN where a number is required would be written as null and refused on reading."""
    record = fake_results().cpu_benchmark
    rows = [record.results[0].model_copy(update={"median_ms": float("nan")}), *record.results[1:]]
    path = run.metric(METRICS.cpu_benchmark)
    before = path.read_bytes()
    with pytest.raises(SpinnError, match=r"^metrics/cpu_benchmark.json: cannot write, expected number, found NoneType "
                                         r"at key 'results.0.median_ms'$"):
        write_result(path, record.model_copy(update={"results": rows}))
    assert path.read_bytes() == before  # nothing half-written


def test_a_record_is_frozen_and_refuses_an_unknown_field():
    with pytest.raises(ValidationError, match="frozen"):
        evaluation_record().split = "val"
    with pytest.raises(ValidationError, match="mean_r2_pooled"):
        type(evaluation_record().models["dense"])(per_output={}, mean_r2=0.5, n=3, mean_r2_pooled=0.5)


def test_a_sweep_of_another_version_names_the_command_to_rerun(tmp_path):
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(SpinnError, match=r"^sweep/sweep.json: written with schema_version 0, this code reads "
                                         r"schema v1; re-run `spinn-run sweep` on this folder"):
        read_result(tmp_path / "sweep" / "sweep.json", Sweep)


def test_a_config_key_read_by_table1_is_checked_too():
    training = {"physics_config": {"wear_nonneg_weight": 1.0}}  # the other terms' weights renamed
    with pytest.raises(SpinnError, match=r"^metrics/dense_training.json: missing key "
                                         r"'physics_config.wear_monotone_weight' \(schema v1\); re-run notebook 02$"):
        require_keys(METRICS.dense_training, training["physics_config"],
                     ["wear_nonneg_weight", "wear_monotone_weight"], "physics_config")


def test_cv_skipped_by_design_is_not_measured_with_its_reason(run):
    skipped = Skipped(skipped=True, reason="run_cv=False")
    record = evaluation_record().model_copy(update={"cross_validation": skipped, "seed_runs": skipped})
    write_result(run.metric(METRICS.test_evaluation), record)
    assert read_result(run, METRICS.test_evaluation).cross_validation == skipped
    table = build_table1(run)
    assert table.loc["Mean per-output R2, CV mean", LABELS[VARIANTS.dense]] == NOT_MEASURED
    assert table.loc["Mean per-output R2 (test)", LABELS[VARIANTS.dense]] == 0.75


def test_dig_is_gone():
    files = [*(ROOT / "spinn_utils").rglob("*.py"), *(ROOT / "notebooks").glob("*.ipynb")]
    assert [p for p in files if re.search(r"\bdig\(", p.read_text())] == []


def test_the_committed_schema_reference_is_what_the_code_generates():
    assert REFERENCE.read_text() == schema_reference(), (
        "docs/results_schema.md is stale: python -c 'from spinn_utils.core.results_files import "
        "schema_reference; print(schema_reference(), end=\"\")' > docs/results_schema.md")
