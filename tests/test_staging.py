"""Staging and the results folder: nothing a user owns is replaced or lost.

Each case builds the on-disk state a failure leaves (a disk that fills up, a kill at a chosen
moment) and calls the staging / pre-flight functions directly: no notebook runs here except
the SIGTERM case, which needs a real run to interrupt.
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from builders import write_notebook as _notebook

from spinn_utils.core.errors import SpinnError
from spinn_utils.core.lineage import recorded_hashes
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.pipeline import staging
from spinn_utils.pipeline.cli import main
from spinn_utils.pipeline.notebooks import UsageError
from spinn_utils.pipeline.preflight import MANIFEST_FORMAT, check_output, results_lock

ROOT = Path(__file__).resolve().parents[1]


def _results(out: Path, tag: str = "old", status: str = "ok") -> Path:
    """A small results folder as a finished run leaves it."""
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints" / "dense_pinn.pt").write_text(f"weights {tag}")
    (out / "data").mkdir(exist_ok=True)
    (out / "data" / "train.csv").write_text(f"a,b\n1,{tag}\n")
    (out / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "started": tag,
                                                   "status": status, "notebooks": []}))
    return out


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).parts[0].startswith((".spinn", "failed-"))}


def test_a_foreign_manifest_is_refused_not_overwritten(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "manifest.json").write_text(json.dumps({"name": "my web app", "icons": []}))
    (site / "index.html").write_text("<html>mine</html>")
    with pytest.raises(UsageError, match="was not written by SPINN"):
        check_output(site)
    assert main(["--output", str(site), "--only", "01"]) == 2
    assert json.loads((site / "manifest.json").read_text())["name"] == "my web app"
    assert sorted(p.name for p in site.iterdir()) == ["index.html", "manifest.json"]


def test_a_manifest_with_the_run_keys_but_no_format_marker_is_not_ours(tmp_path):
    """Keys alone (``started``, ``command``, ``notebooks``, ``versions``) do not make a folder ours;
    the message says how an older SPINN run's folder is adopted."""
    (tmp_path / "manifest.json").write_text(json.dumps(dict.fromkeys(("started", "command", "versions"), "x")
                                                       | {"notebooks": []}))
    with pytest.raises(UsageError, match='adopt the folder by adding "format": "spinn-run-manifest"'):
        check_output(tmp_path)
    record = json.loads((tmp_path / "manifest.json").read_text()) | {"format": "spinn-run-manifest"}
    (tmp_path / "manifest.json").write_text(json.dumps(record))
    check_output(tmp_path)


@pytest.mark.parametrize("text, expected", [("[]", "corrupt: it holds a list"), ("{not json", "corrupt \\(not JSON"),
                                            ('{"format": "spinn-run-manifest", "notebooks": 3}', "corrupt")])
def test_a_corrupt_manifest_is_named_as_such(tmp_path, text, expected):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(UsageError, match=expected):
        check_output(tmp_path)


@pytest.mark.parametrize("record, expected", [([], "corrupt: it holds a list"),
                                              ({"01": {"inputs": {}}}, "notebook 01 lacks")])
def test_a_corrupt_lineage_record_is_named_as_such(tmp_path, record, expected):
    (tmp_path / "lineage.json").write_text(json.dumps(record))
    with pytest.raises(SpinnError, match=expected):
        recorded_hashes(ResultsPaths(tmp_path))


def test_nested_results_folders_never_swallow_each_other(tmp_path):
    out = tmp_path / "results"
    smoke = _results(out / "smoke", "smoke")  # the README's order: --smoke first, then a full run
    (out / "README.md").write_text("the repository's")
    check_output(out)  # "holds no SPINN results (found ['smoke'])" before
    stage = staging.begin(out)
    assert stage.skipped == {"smoke"} and not (out / staging.BACKUP / "smoke").exists()
    (out / "data").mkdir()
    (out / "data" / "train.csv").write_text("partial")
    _results(out / "smoke", "inner run, meanwhile")  # a run on results/smoke while this one works
    failed = staging.end(stage, ok=False)
    assert (smoke / "data" / "train.csv").read_text() == "a,b\n1,inner run, meanwhile\n"
    assert not (failed / "smoke").exists() and (failed / "data" / "train.csv").read_text() == "partial"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", failed.name, "smoke"]
    check_output(out)  # a failed-* folder does not block the next run either


def test_a_run_neither_copies_nor_moves_the_sweep(tmp_path):
    out = _results(tmp_path / "out")
    (out / "sweep" / "points" / "p1").mkdir(parents=True)
    (out / "sweep" / "sweep.json").write_text("{}")
    inode = (out / "sweep" / "sweep.json").stat().st_ino
    stage = staging.begin(out)
    assert not (out / staging.BACKUP / "sweep").exists()
    staging.end(stage, ok=False)
    (failed,) = out.glob("failed-*")
    assert not (failed / "sweep").exists() and (out / "sweep" / "sweep.json").stat().st_ino == inode


def test_a_full_disk_during_the_backup_leaves_the_results_untouched(tmp_path, monkeypatch):
    out = _results(tmp_path / "results")
    before = _files(out)
    real, calls = shutil.copy2, []

    def copy_then_fill_up(src, dst, **kw):
        calls.append(src)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, **kw)

    monkeypatch.setattr(shutil, "copy2", copy_then_fill_up)
    with pytest.raises(SpinnError, match="the disk is full.*untouched and nothing ran") as err:
        staging.begin(out)
    assert len(str(err.value).splitlines()) == 1
    assert _files(out) == before and not (out / staging.BACKUP).exists()  # visible, intact, no hidden copy


def test_free_space_is_checked_before_copying(tmp_path, monkeypatch):
    out = _results(tmp_path / "results")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 10, 10))
    with pytest.raises(SpinnError, match=r"not enough free space .* the copy needs 0\.0 MB, 0\.0 MB are free"):
        staging.begin(out)
    assert not (out / staging.BACKUP).exists()


def test_a_run_killed_after_it_completed_is_kept(tmp_path):
    """SIGKILL between the run's last manifest ("ok") and the commit rename."""
    out = _results(tmp_path / "results", "old")
    staging.begin(out)
    _results(out, "new")  # the run finished: its manifest says "ok" and is newer than the backup's
    note = staging.recover(out)
    assert "after it completed" in note and _files(out)["checkpoints/dense_pinn.pt"] == "weights new"
    assert not (out / staging.BACKUP).exists() and not list(out.glob("failed-*"))


def test_a_run_killed_while_deleting_its_old_backup_is_kept(tmp_path):
    out = _results(tmp_path / "results", "old")
    staging.begin(out)
    _results(out, "new")
    (out / staging.BACKUP).rename(out / f"{staging.DISCARD}x")  # the commit happened, the delete did not
    assert staging.recover(out) is None
    assert _files(out)["checkpoints/dense_pinn.pt"] == "weights new" and not list(out.glob(".spinn*"))


def test_a_run_killed_midway_is_rolled_back_by_the_next(tmp_path):
    out = _results(tmp_path / "results", "old")
    before = _files(out)
    staging.begin(out)
    _results(out, "new", status="running")
    (out / "checkpoints" / "dense_pinn.pt").write_text("")  # killed while writing
    note = staging.recover(out)
    assert "were restored" in note and _files(out) == before
    (failed,) = out.glob("failed-*")
    assert (failed / "checkpoints" / "dense_pinn.pt").read_text() == ""


def test_a_kill_during_the_backup_or_the_restore_is_resumed(tmp_path):
    out = _results(tmp_path / "results", "old")
    before = _files(out)
    staging.begin(out)
    (out / staging.BACKUP / staging.COMPLETE).unlink()  # killed before the backup was complete
    assert "untouched" in staging.recover(out) and _files(out) == before
    stage = staging.begin(out)
    _results(out, "new", status="running")
    backup = out / staging.BACKUP
    (run,) = backup.glob("failed-*")
    for name in ("checkpoints", "data", "manifest.json"):  # killed during a restore: the run's entries
        (out / name).rename(run / name)  # are out, half the backup is back
    (backup / staging.COMPLETE).rename(backup / staging.RESTORING)
    (backup / "data").rename(out / "data")
    assert stage.had_results and staging.recover(out)
    (failed,) = out.glob("failed-*")
    assert _files(out) == before and (failed / "data" / "train.csv").read_text() == "a,b\n1,new\n"


def test_a_restore_on_a_full_disk_only_renames(tmp_path, monkeypatch):
    """The run filled the disk: putting the previous results back must not need a byte."""
    out = _results(tmp_path / "results", "old")
    before = _files(out)
    stage = staging.begin(out)
    _results(out, "new", status="failed")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    for name in ("write_text", "write_bytes", "mkdir", "touch"):
        monkeypatch.setattr(Path, name, full)
    failed = staging.end(stage, ok=False)
    monkeypatch.undo()
    assert _files(out) == before and (failed / "checkpoints" / "dense_pinn.pt").read_text() == "weights new"


def test_staging_never_renames_the_folder_or_writes_beside_it(tmp_path, monkeypatch):
    """A mount point cannot be renamed (EBUSY) and a read-only parent takes no lock or copy."""
    out = _results(tmp_path / "mnt" / "results")
    real = Path.rename

    def no_rename_of_out(self, target):
        if Path(self) == out:
            raise OSError(errno.EBUSY, "Device or resource busy")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", no_rename_of_out)
    beside = sorted(out.parent.iterdir())
    with results_lock(out, ["test"]):
        assert (out / staging.LOCK).is_file()  # inside the folder: a mount point works
        stage = staging.begin(out)
        (out / "data" / "train.csv").write_text("new")
        staging.end(stage, ok=True)
    assert sorted(out.parent.iterdir()) == beside and (out / "data" / "train.csv").read_text() == "new"
    assert not list(out.glob(".spinn*"))


@pytest.mark.parametrize("body", [json.dumps({"pid": os.getpid(), "command": ["run_all.py"]}), "[]"])
def test_a_left_lock_file_without_a_holder_never_blocks(tmp_path, body):
    """Only a held lock counts: a file left by a killed run, even naming a live process (its pid
    reused), is taken without a note or a file to delete."""
    (tmp_path / staging.LOCK).write_text(body)
    with results_lock(tmp_path, ["next"]):
        assert json.loads((tmp_path / staging.LOCK).read_text())["command"] == ["next"]
    assert not (tmp_path / staging.LOCK).exists()


def test_sigterm_is_handled_like_ctrl_c(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    params = "results_dir: str = 'results'\n"
    _notebook(nbdir / "01_a.ipynb", params, "import pathlib; (pathlib.Path(results_dir) / 'a.txt').write_text('new')")
    _notebook(nbdir / "02_b.ipynb", params, "import os, signal, time; os.kill(os.getppid(), signal.SIGTERM); "
                                            "time.sleep(30)")
    out = _results(tmp_path / "out")
    before = _files(out)
    assert main(["--output", str(out)], notebook_dir=nbdir) == 143
    err = capsys.readouterr().err
    assert "terminated (SIGTERM) in 02_b.ipynb" in err and "Traceback" not in err
    assert _files(out) == before and not (out / staging.BACKUP).exists()
    (failed,) = out.glob("failed-*")
    assert json.loads((failed / "manifest.json").read_text())["notebooks"][-1]["error"] == "terminated (SIGTERM)"


@pytest.mark.slow
def test_a_repeated_sigterm_is_one_line_without_the_dead_kernel(tmp_path):
    """``timeout`` signals the driver twice (the child, then the group): the second signal cuts
    papermill's clean-up short, and neither the "Kernel died" log line nor asyncio's orphaned-task
    traceback may follow the one-line message."""
    nbdir, started = tmp_path / "notebooks", tmp_path / "started"
    nbdir.mkdir()
    _notebook(nbdir / "02_b.ipynb", "results_dir: str = 'results'\n",
              f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)")
    code = ("import sys\nfrom spinn_utils.pipeline.cli import main\n"
            f"sys.exit(main(['--output', {str(tmp_path / 'out')!r}], notebook_dir={str(nbdir)!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(2):  # GNU timeout signals the child, then its group: the driver gets it twice
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines()[0] == "terminated (SIGTERM) in 02_b.ipynb", err
    assert "Traceback" not in err and "Kernel died" not in err


@pytest.mark.slow
def test_ctrl_c_during_start_up_imports_is_one_line():
    code = ("import builtins, sys\nreal = builtins.__import__\n"
            "def imp(name, *a, **k):\n    if name == 'papermill':\n        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\nbuiltins.__import__ = imp\n"
            "from spinn_utils.pipeline.cli import main\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 130 and run.stderr.strip() == "interrupted while starting; nothing ran"


def test_a_disk_that_fills_up_mid_run_is_one_line_and_the_results_come_back(tmp_path, capsys, monkeypatch):
    from spinn_utils.pipeline import runner

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _notebook(nbdir / "01_a.ipynb", "results_dir: str = 'results'\n", "pass")
    out = _results(tmp_path / "out")
    before = _files(out)

    def fill_up(source, executed, **kw):  # executed: <output>/executed/<notebook>
        (Path(executed).parents[1] / "checkpoints" / "dense_pinn.pt").write_text("")  # half-written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner.papermill, "execute_notebook", fill_up)
    assert main(["--output", str(out), "--kernel", "python3"], notebook_dir=nbdir) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith(" ")]
    assert err == ["error: [Errno 28] No space left on device"]
    assert _files(out) == before
