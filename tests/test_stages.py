"""The stage table (core/stages.py) is the one statement of every notebook: each notebook, the
docs' tables, pre-flight and the results contract are held to it."""
import json
import re
from pathlib import Path

import papermill
import pytest

from spinn_utils.core.registry import METRICS
from spinn_utils.core.stages import (
    DRIVER_PARAMS,
    STAGES,
    architecture_table,
    contract_files,
)
from spinn_utils.pipeline.notebooks import discover, notebook_id
from spinn_utils.pipeline.preflight import CONFIG_CLASSES, RESERVED

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {notebook_id(p): p for p in discover()}
# Parameters that switch a step on or off rather than set a config field.
SWITCHES = {"run_cv", "run_baselines"}
MARKED = re.compile(r"<!-- stage-table[^>]*-->\n(.*?)\n<!-- /stage-table -->", re.S)


def test_every_notebook_has_one_entry_and_every_entry_a_notebook():
    assert list(NOTEBOOKS) == list(STAGES)
    for nb_id, path in NOTEBOOKS.items():
        assert path.stem == STAGES[nb_id].notebook


@pytest.mark.parametrize("nb_id", list(STAGES))
def test_notebook_matches_its_entry(nb_id):
    stage, path = STAGES[nb_id], NOTEBOOKS[nb_id]
    cells = json.loads(path.read_text())["cells"]
    assert "".join(cells[0]["source"]).splitlines()[0] == f"# {nb_id.replace('_', '.')}: {stage.title}"
    declared = tuple(papermill.inspect_notebook(str(path)))
    assert declared == (*DRIVER_PARAMS, *stage.params)
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert f'begin_stage("{nb_id}", results_dir, seed=seed' in code
    assert f'finish_stage(paths, "{nb_id}"' in code


@pytest.mark.parametrize("nb_id", list(STAGES))
def test_parameters_are_named_like_the_config_fields_they_set(nb_id):
    """No rename table: a parameter is a field of one of the stage's configs, a driver setting
    (set by its flag) or an on/off switch."""
    stage = STAGES[nb_id]
    fields = set().union(*(CONFIG_CLASSES[c].model_fields for c in stage.configs))
    odd = [p for p in stage.params if p not in fields and p not in RESERVED and p not in SWITCHES]
    assert not odd, f"notebook {nb_id}: {odd} set no field of {stage.configs}"


def test_the_docs_tables_are_the_stage_table():
    for doc in (ROOT / "docs" / "architecture.md", ROOT / "results" / "README.md"):
        found = MARKED.search(doc.read_text())
        assert found, f"{doc} has no generated stage table"
        assert found.group(1) == architecture_table(), (
            f"{doc} differs from the stage table: paste spinn_utils.core.stages.architecture_table()")


def test_contract_is_every_file_a_notebook_writes():
    written = {rel for s in STAGES.values() for rel in s.writes}
    assert set(contract_files()) == written - {f"metrics/{METRICS.validation_checklist}.json"}
    assert len(contract_files()) == len(set(contract_files()))


def test_each_file_is_written_by_one_notebook_and_read_only_after_it():
    writer = {}
    order = list(STAGES)
    for nb_id, stage in STAGES.items():
        for rel in stage.writes:
            assert rel not in writer, f"{rel} written by {writer.get(rel)} and {nb_id}"
            writer[rel] = nb_id
    for nb_id, stage in STAGES.items():
        for rel in stage.reads:
            assert order.index(writer[rel]) < order.index(nb_id), (nb_id, rel)
