"""The predictor CLI as a user meets it: where it writes, what spreadsheet CSVs it reads, threads."""
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from spinn_utils.compression.export import ExportConfig, export_checkpoints
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.registry import VARIANTS
from spinn_utils.model.onnx_predictor import OnnxPredictor
from spinn_utils.predict import main as predict_main
from spinn_utils.predict import usable_cores

PREDICTED = ["predicted_tool_wear_vb_mm", "predicted_thermal_displacement_um", "warning"]


@pytest.fixture
def exported(tmp_path, run):
    """(the structured export, the test split as a user's CSV, the test split)."""
    paths, data = run
    export_checkpoints(paths, data, ExportConfig())
    frame = data.frames["test"].reset_index(drop=True)
    csv = tmp_path / "in.csv"
    frame.to_csv(csv, index=False)
    return paths.export(VARIANTS.structured), csv, frame


def _cli(args: list, capsys) -> tuple[int, str, str]:
    rc = predict_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err.strip()


def _subprocess(args: list, cwd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spinn_utils.predict", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_output_dash_and_any_name_of_stdout_write_the_csv_to_standard_output(exported, tmp_path):
    model, csv, frame = exported
    to_stdout = tmp_path / "to_stdout"
    to_stdout.symlink_to("/proc/self/fd/1")  # what /dev/stdout is, without touching /dev
    for output in ("-", to_stdout):
        proc = _subprocess(["--model", model, "--csv", csv, "--output", output], tmp_path)
        assert proc.returncode == 0, proc.stderr
        printed = pd.read_csv(pd.io.common.StringIO(proc.stdout))
        assert len(printed) == len(frame) and list(printed.columns[-3:]) == PREDICTED
        assert f"wrote {len(frame)} predictions" in proc.stderr  # the summary never mixes into the CSV
    assert not (tmp_path / "-").exists() and to_stdout.is_symlink()


def test_a_reader_that_stops_early_ends_the_run_quietly(exported, tmp_path):
    """``predict --output - | head -1``: no 'Broken pipe' error, the exit status a shell gives."""
    model, csv, frame = exported
    big = tmp_path / "big.csv"
    pd.concat([frame] * 2000, ignore_index=True).to_csv(big, index=False)  # more than a pipe's buffer
    proc = subprocess.Popen([sys.executable, "-m", "spinn_utils.predict", "--model", str(model), "--csv", str(big),
                             "--output", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert proc.stdout.readline().startswith(b'"experiment"')
    proc.stdout.close()
    assert proc.wait(timeout=120) == 141 and proc.stderr.read() == b""


def test_a_symlink_is_written_through_and_special_files_are_streamed_or_refused(exported, tmp_path, capsys):
    model, csv, frame = exported
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert _cli(["--model", model, "--csv", csv, "--output", link], capsys)[0] == 0
    assert link.is_symlink() and len(pd.read_csv(target)) == len(frame)  # the link stays, its target is new
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "made.csv")
    assert _cli(["--model", model, "--csv", csv, "--output", dangling], capsys)[0] == 0
    assert dangling.is_symlink() and len(pd.read_csv(tmp_path / "made.csv")) == len(frame)

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = {}
    reader = threading.Thread(target=lambda: got.update(text=fifo.read_text()))
    reader.start()
    assert _cli(["--model", model, "--csv", csv, "--output", fifo], capsys)[0] == 0
    reader.join(timeout=60)
    assert got["text"].count("\n") == len(frame) + 1 and fifo.exists() and not fifo.is_file()

    sock_path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        rc, _, err = _cli(["--model", model, "--csv", csv, "--output", sock_path], capsys)
    assert rc == 2 and "not a regular file" in err and len(err.splitlines()) == 1
    rc, _, err = _cli(["--model", model, "--csv", csv, "--output", tmp_path], capsys)
    assert rc == 2 and "is a folder" in err


def test_a_csv_with_a_byte_order_mark_keeps_every_column(exported, tmp_path, capsys):
    """Excel's "CSV UTF-8" starts with a BOM: it must not become part of the first column's name."""
    model, csv, frame = exported
    frame = frame.assign(note=[f"row {i}, as typed" for i in range(len(frame))])  # a column the model ignores
    for first in ("experiment", "depth_of_cut_mm"):  # an id column first, then a feature first
        ordered = frame[[first, *[c for c in frame.columns if c != first]]]
        bom = tmp_path / f"bom_{first}.csv"
        ordered.to_csv(bom, index=False, encoding="utf-8-sig")
        assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
        out = tmp_path / f"out_{first}.csv"
        rc, _, err = _cli(["--model", model, "--csv", bom, "--output", out], capsys)
        assert rc == 0, err
        written = pd.read_csv(out)
        assert list(written.columns) == [*ordered.columns, *PREDICTED]  # no "\ufeff", nothing dropped
        assert written[first].tolist() == ordered[first].tolist() and written["note"].tolist() == frame["note"].tolist()
    plain = tmp_path / "plain.csv"
    frame.to_csv(plain, index=False)
    _cli(["--model", model, "--csv", plain, "--output", tmp_path / "plain_out.csv"], capsys)
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "plain_out.csv")[PREDICTED[:2]].to_numpy(),
                                  pd.read_csv(tmp_path / "out_depth_of_cut_mm.csv")[PREDICTED[:2]].to_numpy())


def test_feature_text_with_spaces_or_na_and_a_clashing_column(exported, tmp_path, capsys):
    model, csv, frame = exported
    text = frame.astype({"feed_mm_rev": object})
    text["feed_mm_rev"] = [f" {v} " for v in frame["feed_mm_rev"]]  # spaces around a number: read as it
    spaced = tmp_path / "spaced.csv"
    text.to_csv(spaced, index=False)
    rc, _, err = _cli(["--model", model, "--csv", spaced, "--output", tmp_path / "o.csv"], capsys)
    assert rc == 0, err
    text.loc[2, "feed_mm_rev"] = "NA"
    text.to_csv(spaced, index=False)
    rc, _, err = _cli(["--model", model, "--csv", spaced, "--output", tmp_path / "o2.csv"], capsys)
    assert rc == 2 and "has empty, NaN or inf values" in err and not (tmp_path / "o2.csv").exists()
    frame.assign(warning="mine").to_csv(spaced, index=False)
    rc, _, err = _cli(["--model", model, "--csv", spaced, "--output", tmp_path / "o3.csv"], capsys)
    assert rc == 2 and "already has column(s) ['warning']" in err


def test_threads_above_the_cores_are_capped_with_a_note(exported, tmp_path, capsys):
    model, csv, frame = exported
    rc, _, err = _cli(["--model", model, "--csv", csv, "--output", tmp_path / "o.csv", "--threads", 1000], capsys)
    cores = usable_cores()
    assert rc == 0 and err == f"predict: note: --threads 1000 is more than the {cores} core(s) here; using {cores}"
    rc, _, err = _cli(["--model", model, "--csv", csv, "--output", tmp_path / "o.csv", "--threads", 0], capsys)
    assert rc == 2 and "--threads must be at least 1" in err


def test_a_soft_export_is_not_a_sequence_model(exported):
    from spinn_utils.model.sequence_predictor import SequencePredictor

    predictor = OnnxPredictor(exported[0])
    assert predictor.meta["physics"] == {"mode": "soft"}
    with pytest.raises(SpinnError, match="not a hard-physics export"):
        SequencePredictor(predictor)
