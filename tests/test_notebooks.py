"""Every numbered notebook keeps the house shape (docs/conventions.md) and papermill sees every knob."""
import json
import re
from pathlib import Path

import papermill
import pytest

from spinn_utils.pipeline.notebooks import discover, notebook_id

NOTEBOOKS = discover()
EXPECTED = ["01", "02", "03", "04", "05", "05_5", "06", "07", "08", "09"]
ALL_NOTEBOOKS = discover(standalone=True)  # plus notebook 10 (the sweep), outside the chain
ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*(:[^=]*)?=")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def test_all_ten_notebooks_exist_in_order():
    ids = [notebook_id(p) for p in NOTEBOOKS]
    assert ids == EXPECTED


def test_the_sweep_notebook_stands_outside_the_chain():
    """run_all.py runs discover()'s notebooks: notebook 10 must not be among them."""
    assert [notebook_id(p) for p in ALL_NOTEBOOKS] == [*EXPECTED, "10"]


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_shape(path):
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "commit without outputs"
    source = "\n".join("".join(c["source"]) for c in code)
    assert not re.search(r"^\s*(def|class) ", source, re.M), "logic belongs in spinn_utils"
    assert 'if "google.colab" in sys.modules:' in "".join(code[1]["source"]), "set-up cell follows parameters"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    """papermill silently skips a line it cannot parse ('x: int | None', '=' in a comment)."""
    cell = next(c for c in _cells(path) if "parameters" in c["metadata"].get("tags", []))
    declared = [m.group(1) for line in "".join(cell["source"]).splitlines() if (m := ASSIGNMENT.match(line))]
    seen = list(papermill.inspect_notebook(str(path)))
    assert seen == declared
    assert {"results_dir", "smoke", "seed"} <= set(seen)
