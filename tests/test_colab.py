"""Colab: one repository everywhere, a re-pointing tool for forks, and the set-up cell run against a
stand-in ``google.colab`` module (recording drive.mount and the pip command instead of doing them)."""
import ast
import importlib.util
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from spinn_utils.pipeline.colab_setup import (
    DOCS,
    LINK,
    SETUP_MARKER,
    URL_LINE,
    _cells,
    main,
    setup_cell,
)
from spinn_utils.pipeline.notebooks import discover

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = discover(ROOT / "notebooks")
ALL_NOTEBOOKS = discover(ROOT / "notebooks", standalone=True)  # with notebook 10, outside the chain
FIND_SPEC = importlib.util.find_spec  # the real one, before any test patches it


def cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def repository(root: Path) -> str:
    """"OWNER/NAME" of ``[project.urls] Repository`` in pyproject.toml."""
    return URL_LINE.search((root / "pyproject.toml").read_text()).group(2)


def references(root: Path) -> dict[str, set[tuple[str, str | None]]]:
    """{file: {(OWNER/NAME, branch or None)}} of every GitHub link and set-up cell."""
    out = {"pyproject.toml": {(repository(root), None)}}
    for name in DOCS:
        out[name] = {(m.group(2), m.group(3)) for m in LINK.finditer((root / name).read_text())}
    for path in discover(root / "notebooks", standalone=True):
        for cell in _cells(path)[1]:
            out[f"notebooks/{path.name}"] = {(m.group(2), None) for m in LINK.finditer("".join(cell["source"]))}
    return out


def test_every_reference_is_the_one_repository_of_pyproject():
    repo = repository(ROOT)
    refs = references(ROOT)
    assert set(refs) >= {"pyproject.toml", "README.md", "COLAB_WORKFLOW.md"} | {f"notebooks/{p.name}" for p in ALL_NOTEBOOKS}
    for name, found in refs.items():
        assert found and {r for r, _ in found} == {repo}, (name, found)
        assert {b for _, b in found} <= {None, "main"}, (name, found)
    for path in ALL_NOTEBOOKS:
        assert setup_cell(repo) in cells(path), path.name  # word for word, in every notebook


def copy_repo(tmp_path: Path) -> Path:
    root = tmp_path / "fork"
    (root / "notebooks").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "COLAB_WORKFLOW.md"):
        shutil.copy(ROOT / name, root / name)
    for path in ALL_NOTEBOOKS:
        shutil.copy(path, root / "notebooks" / path.name)
    return root


def test_repoint_changes_every_reference_and_says_so(tmp_path, capsys):
    root = copy_repo(tmp_path)
    assert main(["--repo", "someone/spinn-fork", "--branch", "dev", "--root", str(root)]) == 0
    said = capsys.readouterr().out
    assert "pyproject.toml" in said and "COLAB_WORKFLOW.md" in said and len(said.splitlines()) >= 12
    assert repository(root) == "someone/spinn-fork"
    for name, found in references(root).items():
        assert {r for r, _ in found} == {"someone/spinn-fork"}, name
    assert "git+https://github.com/someone/spinn-fork@dev" in (root / "notebooks" / NOTEBOOKS[0].name).read_text()
    assert "colab.research.google.com/github/someone/spinn-fork/blob/dev/notebooks/" in (root / "COLAB_WORKFLOW.md").read_text()
    assert main(["--repo", "someone/spinn-fork", "--branch", "dev", "--root", str(root)]) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert main(["--repo", "not a repo", "--root", str(root)]) == 2
    assert "OWNER/NAME" in capsys.readouterr().err


class Recorder:
    """Stands in for google.colab.drive and subprocess.run; records calls instead of doing them."""

    def __init__(self, pip_returncode: int = 0):
        self.calls, self.pip_returncode = [], pip_returncode

    def mount(self, path):
        self.calls.append(("mount", path))

    def flush_and_unmount(self):
        self.calls.append(("flush_and_unmount",))

    def run(self, command, **kwargs):
        self.calls.append(("pip", command))
        return types.SimpleNamespace(returncode=self.pip_returncode)


def run_cell(code: str, monkeypatch, *, colab: bool, importable: bool, results_dir: str,
             pip_returncode: int = 0) -> list:
    rec = Recorder(pip_returncode)
    if colab:
        google = types.ModuleType("google")
        google.colab = types.ModuleType("google.colab")
        google.colab.drive = rec
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", google.colab)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", rec.run)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "spinn_utils" and not importable else FIND_SPEC(name, *a))
    exec(compile(code, "<set-up cell>", "exec"), {"results_dir": results_dir})
    return rec.calls


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_set_up_cell_installs_and_mounts_only_when_needed(path, monkeypatch):
    code = next(c for c in cells(path) if c.startswith(SETUP_MARKER))
    drive_dir, local = "/content/drive/MyDrive/spinn/results", "results"
    assert run_cell(code, monkeypatch, colab=False, importable=False, results_dir=drive_dir) == []
    assert run_cell(code, monkeypatch, colab=True, importable=True, results_dir=local) == []
    calls = run_cell(code, monkeypatch, colab=True, importable=False, results_dir=drive_dir)
    assert calls == [("pip", [sys.executable, "-m", "pip", "install", "-q",
                              f"git+https://github.com/{repository(ROOT)}@main"]),
                     ("mount", "/content/drive")]
    assert run_cell(code, monkeypatch, colab=True, importable=True, results_dir=drive_dir) == [("mount", "/content/drive")]
    with pytest.raises(SystemExit, match="spinn_utils.colab --repo OWNER/NAME.*%pip install /content/drive"):
        run_cell(code, monkeypatch, colab=True, importable=False, results_dir=local, pip_returncode=1)


def test_the_last_notebook_flushes_drive_only_in_colab(monkeypatch):
    flush = cells(NOTEBOOKS[-1])[-1]
    assert "flush_and_unmount" in flush
    drive_dir = "/content/drive/MyDrive/spinn/results"
    assert run_cell("import sys\n" + flush, monkeypatch, colab=False, importable=True, results_dir=drive_dir) == []
    assert run_cell("import sys\n" + flush, monkeypatch, colab=True, importable=True, results_dir="results") == []
    assert run_cell("import sys\n" + flush, monkeypatch, colab=True, importable=True,
                    results_dir=drive_dir) == [("flush_and_unmount",)]


@pytest.mark.parametrize("branch", ["", "a/..", 'dev"x', 'main"; import os; os.system("echo pwned"); x="',
                                    "a..b", "a b", "x.lock", ".hidden", "a//b", "/a", "a/", "@", "a@{1}",
                                    "tab\tname", "new\nline", "back\\slash", "it's", "`x`"])
def test_a_branch_git_would_refuse_or_an_injection_is_refused(tmp_path, capsys, branch):
    root = copy_repo(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert main(["--repo", "someone/fork", "--branch", branch, "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a valid git branch name" in err and len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # nothing written


@pytest.mark.parametrize("repo", ["a/..", "a/.", "-a/b", "a/b/c", "", "a b/c", "a/b\"c",
                                  "me/fork\n", "me/..\n", "me/fork\r\n", "\nme/fork"])
def test_a_repo_that_is_not_owner_slash_name_is_refused(tmp_path, capsys, repo):
    root = copy_repo(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert main([f"--repo={repo}", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "OWNER/NAME" in err and len(err.splitlines()) == 1  # a pasted newline is shown, not printed
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # nothing written


@pytest.mark.parametrize("branch", ["main", "feature/x-1.2", "release_2026.12", "user/alpha+beta", "café"])
def test_generated_set_up_cells_compile_and_hold_the_values_as_literals(branch):
    cell = setup_cell("some-one/my.fork_1", branch)
    tree = ast.parse(cell)  # compiles: no value was spliced into the code
    sources = [n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
               and getattr(n.targets[0], "id", None) == "source"]
    assert sources == [f"git+https://github.com/some-one/my.fork_1@{branch}"]
