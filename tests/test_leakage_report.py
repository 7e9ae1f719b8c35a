"""A run whose data failed the leakage check (``fail_on_leakage: false``) is marked in Table 1,
Table 2 and the checklist; an honest run is not."""
import io
from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
from results_factory import fake_results

from spinn_utils.core.results_schema import CheckRow, Leakage
from spinn_utils.reporting.checklist import checklist_items
from spinn_utils.reporting.table1 import LEAKAGE_ROW, table1, to_latex, to_markdown
from spinn_utils.reporting.table2 import table2

ITEM = "Data passed the leakage check (no target or test experiment leaks into the inputs)"
PROBLEM = "'A' / 'B' ranks like target 'thermal_displacement_um' (|Spearman| 1.00000 > 0.999)"


def with_leakage(passed: bool):
    """The hand-made run with notebook 01's leakage record (the rest of the summary is not read)."""
    checks = [CheckRow(name="group_overlap", passed=True, detail="experiments per split are disjoint"),
              CheckRow(name="pair_ranks", passed=passed, detail="highest |Spearman| 0.9512" if passed else PROBLEM)]
    leakage = Leakage(passed=passed, problems=[] if passed else [PROBLEM], checks=checks)
    return replace(fake_results(), data_summary=SimpleNamespace(leakage=leakage, physics=None))


def test_a_leak_marks_table1_in_title_notes_and_a_row_the_csv_keeps():
    frame = table1(with_leakage(False))
    assert frame.index[0] == LEAKAGE_ROW and set(frame.loc[LEAKAGE_ROW].drop("Source")) == {"FAILED (see notes)"}
    assert frame.attrs["title"].endswith("[DATA FAILED THE LEAKAGE CHECK]")
    assert frame.attrs["notes"][0].startswith("WARNING: the data FAILED the leakage check") and PROBLEM in frame.attrs["notes"][0]
    assert "DATA FAILED THE LEAKAGE CHECK" in to_markdown(frame) and "FAILED the leakage check" in to_latex(frame)
    csv = pd.read_csv(io.StringIO(frame.to_csv()), index_col=0)
    assert csv.loc[LEAKAGE_ROW, "Source"] == "data_summary.json"
    assert len(frame) == len(table1(with_leakage(True))) + 1  # the accuracy rows themselves unchanged


def test_a_leak_marks_table2_and_an_honest_run_is_unmarked():
    frame = table2(with_leakage(False))
    assert frame.index[0] == LEAKAGE_ROW and frame.attrs["title"].endswith("[DATA FAILED THE LEAKAGE CHECK]")
    assert "FAILED" in to_markdown(frame)
    for honest in (table1(with_leakage(True)), table2(with_leakage(True)), table1(fake_results())):
        assert LEAKAGE_ROW not in honest.index and "LEAKAGE" not in honest.attrs["title"]
        assert not any("leakage check" in n for n in honest.attrs["notes"])


def test_the_checklist_fails_its_leakage_item():
    items = {i.item: i for i in checklist_items(with_leakage(False), [])}
    assert list(items)[0] == ITEM
    assert items[ITEM].status == "fail" and items[ITEM].measured == "1/2 checks passed"
    assert PROBLEM in items[ITEM].detail
    passed = {i.item: i for i in checklist_items(with_leakage(True), [])}[ITEM]
    assert passed.status == "pass" and passed.measured == "2/2 checks passed" and passed.detail == ""
    assert {i.item: i for i in checklist_items(fake_results(), [])}[ITEM].status == "not run"
