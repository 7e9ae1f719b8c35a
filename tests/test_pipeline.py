"""The driver (spinn_utils.pipeline): order, selection, parameter checks, failures, entry points."""
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from builders import write_notebook as _notebook

from spinn_utils.core.stages import STAGES
from spinn_utils.pipeline import staging
from spinn_utils.pipeline.cli import main, parse_args, parse_parameter
from spinn_utils.pipeline.notebooks import (
    UsageError,
    discover,
    notebook_id,
    plan_parameters,
    select,
    type_ok,
)
from spinn_utils.pipeline.preflight import results_lock
from spinn_utils.pipeline.staging import LOCK

ROOT = Path(__file__).resolve().parents[1]


def test_the_order_is_the_stage_tables(tmp_path):
    """05_5 between 05 and 06 because STAGES says so; a file of no stage (11_new) is not run, and
    notebook 10 only with the standalone ones."""
    for name in ("06_gpu", "05_5_sparse", "05_verify", "01_data", "10_extra", "11_new", "notes"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert [p.stem for p in discover(tmp_path)] == ["01_data", "05_verify", "05_5_sparse", "06_gpu"]
    assert [p.stem for p in discover(tmp_path, standalone=True)][-1] == "10_extra"
    assert [notebook_id(p) for p in discover()] == list(STAGES)


def test_select_only_and_from(tmp_path):
    names = ["01_a", "02_b", "05_c", "05_5_d", "06_e"]
    nbs = [tmp_path / f"{n}.ipynb" for n in names]
    assert [p.stem for p in select(nbs, "5.5,1", None)] == ["01_a", "05_5_d"]
    assert [p.stem for p in select(nbs, None, "05_5")] == ["05_5_d", "06_e"]
    with pytest.raises(UsageError, match="no notebook 07"):
        select(nbs, "07", None)
    with pytest.raises(UsageError):
        select(nbs, "x1", None)


@pytest.mark.parametrize(
    "value, inferred, ok",
    [(3, "int", True), ("3x", "int", False), (True, "int", False), (2, "float", True),
     (None, "int | None", True), (None, "Optional[int]", True), ("x", "Optional[int]", False), ([1, 2], "list | None", True), ("a", "str", True),
     (0.5, "bool", False), ("x", "SomeType", True)],
)
def test_type_check(value, inferred, ok):
    assert type_ok(value, inferred) is ok


def test_parse_parameter():
    assert parse_parameter("epochs=5") == ("epochs", 5)
    assert parse_parameter("formats=['coo']") == ("formats", ["coo"])
    assert parse_parameter("data_path=/x/y.csv") == ("data_path", "/x/y.csv")


def test_unknown_or_mistyped_override_is_an_error(tmp_path):
    nb = _notebook(tmp_path / "01_a.ipynb", "from typing import Optional\nresults_dir: str = 'r'\nepochs: Optional[int] = None\n", "pass")
    plan = plan_parameters([nb], {"results_dir": "/o", "device": "cpu"}, {"epochs": 3})
    assert plan[nb] == {"results_dir": "/o", "epochs": 3}  # device: not declared, not passed
    with pytest.raises(UsageError, match="no selected notebook has a parameter 'epoch'"):
        plan_parameters([nb], {}, {"epoch": 3})
    with pytest.raises(UsageError, match="expects Optional\\[int\\]"):
        plan_parameters([nb], {}, {"epochs": "many"})


def test_run_stops_at_first_failure_and_writes_manifest(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    params = "results_dir: str = 'results'\nsmoke: bool = False\n"
    write = "import pathlib; p = pathlib.Path(results_dir); p.mkdir(parents=True, exist_ok=True)\n"
    _notebook(nbdir / "01_ok.ipynb", params, write + "(p / 'one.txt').write_text(str(smoke))")
    _notebook(nbdir / "02_bad.ipynb", params, "raise ValueError('column tool_wear missing')")
    _notebook(nbdir / "03_never.ipynb", params, write + "(p / 'three.txt').write_text('x')")
    out = tmp_path / "out"
    rc = main(["--smoke", "--output", str(out), "--device", "cpu"], notebook_dir=nbdir)
    err = capsys.readouterr().err
    assert rc == 1
    assert "02_bad.ipynb failed in cell" in err and "ValueError: column tool_wear missing" in err
    assert [p.name for p in out.iterdir()][0].startswith("failed-")  # nothing else: there was nothing before
    (failed,) = out.glob("failed-*")
    assert str(failed) in err
    out = failed
    assert (out / "one.txt").read_text() == "True"  # --smoke reached the notebook
    assert not (out / "three.txt").exists()  # stopped at the first failure
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["failed"] == "02_bad.ipynb"
    assert [n["status"] for n in manifest["notebooks"]] == ["ok", "failed"]
    assert manifest["notebooks"][0]["seconds"] > 0 and manifest["versions"]["torch"]
    # What ran lives here; what each file was made from (hashes) only in lineage.json.
    assert manifest["lineage"] == "lineage.json" and not any("lineage" in n for n in manifest["notebooks"])
    assert (out / "executed" / "01_ok.ipynb").is_file()


def test_usage_errors_exit_2(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _notebook(nbdir / "01_a.ipynb", "results_dir: str = 'r'\n", "pass")
    def run(*args):
        return main([*args, "--output", str(tmp_path / "o")], notebook_dir=nbdir)

    assert run("--only", "02") == 2
    assert run("-p", "nope=1") == 2
    assert run("--data", str(tmp_path / "missing.csv")) == 2
    assert run("--kernel", "no-such-kernel") == 2  # pre-flight: before the folder is touched
    assert not (tmp_path / "o").exists()
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith(" ")]
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)


def test_preflight_refuses_bad_values_reserved_names_and_bad_folders(tmp_path, capsys):
    """Against the real notebooks: nothing runs, nothing is written, exit 2 with one line."""
    def run(*args, output=tmp_path / "o"):
        return main([*args, "--output", str(output)])

    cases = {
        ("-p", "target_sparsity=1.5"): "PruneConfig.target_sparsity: input should be less than 1, got 1.5",
        ("-p", "prune_method=l1"): "PruneConfig.prune_method: input should be 'magnitude' or 'random', got 'l1'",
        ("-p", "epochs=0"): "TrainConfig.epochs: input should be greater than or equal to 1, got 0",
        ("-p", "cpu_batch_sizes=[0]"): "BenchConfig.cpu_batch_sizes[0]: input should be greater than or equal to 1",
        ("-p", "cv_folds=1"): "CrossValConfig.cv_folds: input should be greater than or equal to 2, got 1",
        ("-p", "seed=7"): "set it with --seed",
        ("-p", "smoke=True"): "set it with --smoke",
        ("-p", "results_dir=/tmp/x"): "set it with --output",
    }
    for args, expected in cases.items():
        assert run(*args) == 2, args
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()  # refused before anything ran or was written
    (tmp_path / "file").write_text("x")
    assert run(output=tmp_path / "file") == 2 and "is a file" in capsys.readouterr().err
    assert main(["--output", ""]) == 2 and "--output is empty" in capsys.readouterr().err
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("mine")
    assert run(output=home) == 2 and "holds no SPINN results" in capsys.readouterr().err
    assert (home / "thesis.tex").read_text() == "mine"


def _hold_lock(folder: Path, held) -> None:
    with results_lock(folder, ["killed"]):
        held.set()
        time.sleep(60)


def test_a_folder_in_use_is_refused_and_a_dead_holders_lock_is_gone(tmp_path):
    with results_lock(tmp_path, ["first"]):
        assert (tmp_path / LOCK).is_file()
        with pytest.raises(UsageError, match=rf"in use by process {os.getpid()} \(first\); wait for it"):
            with results_lock(tmp_path, ["second"]):
                pass
    assert not (tmp_path / LOCK).exists()
    # A holder killed outright (SIGKILL) leaves its file; the lock died with it. The holder is a
    # fork: another process, without a second import of the package.
    held = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(tmp_path, held), daemon=True)
    holder.start()
    try:
        assert held.wait(60)
        with pytest.raises(UsageError, match=rf"in use by process {holder.pid} \(killed\)"):
            with results_lock(tmp_path, ["second"]):
                pass
    finally:
        holder.kill()
        holder.join()
    assert (tmp_path / LOCK).is_file()
    with results_lock(tmp_path, ["third"]):
        assert json.loads((tmp_path / LOCK).read_text())["command"] == ["third"]


def test_a_spinn_error_in_a_notebook_exits_2_and_from_runs_keep_earlier_entries(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    params = "results_dir: str = 'results'\nsmoke: bool = False\n"
    _notebook(nbdir / "01_ok.ipynb", params, "x = 1")
    _notebook(nbdir / "02_ok.ipynb", params, "y = 2")
    out = tmp_path / "out"
    assert main(["--output", str(out)], notebook_dir=nbdir) == 0
    first = json.loads((out / "manifest.json").read_text())
    assert main(["--from", "02", "--output", str(out)], notebook_dir=nbdir) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["notebook"] for e in manifest["notebooks"]] == ["01_ok.ipynb", "02_ok.ipynb"]
    assert manifest["notebooks"][0]["from_run"] == first["started"] and "from_run" not in manifest["notebooks"][1]
    _notebook(nbdir / "02_ok.ipynb", params, "from spinn_utils.core.errors import SpinnError\n"
                                             "raise SpinnError('column tool_wear missing')")
    assert main(["--only", "02", "--output", str(out)], notebook_dir=nbdir) == 2
    assert "SpinnError: column tool_wear missing" in capsys.readouterr().err


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_failed_run_leaves_the_previous_results_byte_for_byte(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    params = "results_dir: str = 'results'\nsmoke: bool = False\n"
    write = "import pathlib; p = pathlib.Path(results_dir)\n"
    _notebook(nbdir / "01_a.ipynb", params, write + "(p / 'a.txt').write_text('first run')")
    _notebook(nbdir / "02_b.ipynb", params, write + "(p / 'b.txt').write_text('first run')")
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("kept")  # like the repository's results/README.md
    assert main(["--output", str(out)], notebook_dir=nbdir) == 0
    assert (out / "README.md").read_text() == "kept"
    good = _files(out)
    _notebook(nbdir / "01_a.ipynb", params, write + "(p / 'a.txt').write_text('second run')")
    _notebook(nbdir / "02_b.ipynb", params, "raise ValueError('broken')")
    assert main(["--output", str(out)], notebook_dir=nbdir) == 1
    (failed,) = out.glob("failed-*")
    assert {k: v for k, v in _files(out).items() if not k.startswith("failed-")} == good  # 01's new a.txt
    # went to the failed run's folder, not here
    assert (failed / "a.txt").read_text() == "second run"
    assert json.loads((failed / "manifest.json").read_text())["failed"] == "02_b.ipynb"
    _notebook(nbdir / "02_b.ipynb", params, write + "(p / 'b.txt').write_text('from run')")
    assert main(["--from", "02", "--output", str(out)], notebook_dir=nbdir) == 0  # on a copy
    assert (out / "a.txt").read_text() == "first run" and (out / "b.txt").read_text() == "from run"
    staging.begin(out)  # a run killed outright left its backup and a partial output
    (out / "b.txt").write_text("killed")
    capsys.readouterr()
    assert main(["--only", "01", "--output", str(out)], notebook_dir=nbdir) == 0
    assert "a previous run was killed" in capsys.readouterr().out
    assert (out / "b.txt").read_text() == "from run" and not (out / staging.BACKUP).exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    [sys.executable, "run_all.py", "--help"],
    [sys.executable, "-m", "spinn_utils", "--help"],
    ["spinn-run", "--help"],
])
def test_three_entry_points_run_the_same_driver(command):
    """``run_all.py`` (the README's command), ``python -m spinn_utils`` and ``spinn-run``."""
    if command[0] == "spinn-run":
        command[0] = str(Path(sys.executable).with_name("spinn-run"))
        if not Path(command[0]).is_file():
            pytest.skip("spinn-run is not installed beside this Python (pip install -e .)")
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert all(name in out.stdout for name in ("run", "sweep", "predict", "convert", "colab"))
    out = subprocess.run([*command[:-1], "run", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "--smoke" in out.stdout and "--only IDS" in out.stdout and "NAME=VALUE" in out.stdout


@pytest.mark.parametrize("command, usage", [(["predict"], "python -m spinn_utils.predict"),
                                            (["convert"], "python -m spinn_utils.convert_to_sparse"),
                                            (["colab"], "python -m spinn_utils.colab"),
                                            (["sweep"], "sweep [-h] [--smoke]"), (["run"], "run [-h] [--smoke]"),
                                            ([], "run [-h] [--smoke]")])
def test_one_program_hands_each_command_its_arguments(command, usage, capsys):
    """``spinn-run COMMAND --help`` is that command's help (it renders: a bare % in a help string
    crashes argparse); options alone mean ``run``."""
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"] if command else ["--smoke", "--help"])
    assert stop.value.code == 0 and usage in capsys.readouterr().out


def test_the_run_and_sweep_options_are_defined_once_and_checked():
    args, rest = parse_args(["sweep", "--smoke", "-p", "epochs=3", "--kernel", "k"])
    assert (args.command, args.smoke, args.parameters, args.kernel, rest) == ("sweep", True, [("epochs", 3)], "k", [])
    with pytest.raises(SystemExit):
        parse_args(["run", "--grid", "target_sparsity=0.5"])  # a sweep option is not a run's
    assert parse_args(["--from", "03"])[0].start == "03"


def test_run_all_py_is_a_thin_wrapper():
    lines = [line for line in (ROOT / "run_all.py").read_text().splitlines() if line.strip()]
    assert len(lines) <= 15 and "spinn_utils.pipeline" in "\n".join(lines)


def test_kernel_stderr_goes_to_the_log_through_public_api_only(tmp_path):
    """Kernel log lines are kept out of a run's output by start_kernel(stderr=...), not by
    overriding a private jupyter_client method that a release may rename."""
    import papermill

    from spinn_utils.pipeline.runner import kernel_manager_class

    manager = kernel_manager_class(tmp_path / "kernels.log")
    own = {name for name, value in vars(manager).items() if callable(value) and not name.startswith("__")}
    assert own == {"start_kernel"}, own  # traitlets' bookkeeping attributes are not methods
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys; print('kernel noise', file=sys.__stderr__)")]
    nbformat.write(nb, tmp_path / "a.ipynb")
    papermill.execute_notebook(str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb"), kernel_name="python3",
                               progress_bar=False, kernel_manager_class=manager)
    assert "kernel noise" in (tmp_path / "kernels.log").read_text()


def test_a_sweep_kernel_gets_its_threads_and_not_the_nannys_malloc_trim(tmp_path, monkeypatch):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in a worker; the kernels it starts run torch
    and must get glibc's default (sparse kernels timed 2-3x slower under it)."""
    import papermill

    from spinn_utils.pipeline.runner import kernel_manager_class
    from spinn_utils.pipeline.sweep_tasks import KERNEL_ENV

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    seen = tmp_path / "env.json"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import json, os\n"
        f"json.dump({{v: os.environ.get(v) for v in ('MALLOC_TRIM_THRESHOLD_', 'OMP_NUM_THREADS')}}, open({str(seen)!r}, 'w'))")]
    nbformat.write(nb, tmp_path / "a.ipynb")
    papermill.execute_notebook(str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb"), kernel_name="python3",
                               progress_bar=False, kernel_manager_class=kernel_manager_class(tmp_path / "k.log", KERNEL_ENV))
    assert json.loads(seen.read_text()) == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}
