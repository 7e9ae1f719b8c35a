"""One repository for every Colab link: the notebooks' set-up cell, the badges, the README links.

    python -m spinn_utils.colab --repo OWNER/NAME [--branch BRANCH]

checks both (GitHub's and ``git check-ref-format``'s rules), then points ``[project.urls]
Repository`` in pyproject.toml, every notebook's set-up cell (``setup_cell``, the pip source as a
Python string literal) and every GitHub and Open-in-Colab link in the guides at the fork.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

from ..core.errors import SpinnError
from ..core.io import atomic_path
from .notebooks import REPO_ROOT, discover

DOCS = ("README.md", "COLAB_WORKFLOW.md")
# GitHub: an owner is 1-39 letters, digits or single inner hyphens; a repository name is letters,
# digits, '.', '_' and '-', but not '.' or '..'.
# Matched with fullmatch and \Z: "$" also matches before a trailing newline ("me/fork\n").
REPO_RE = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/(?!\.\.?\Z)[A-Za-z0-9._-]{1,100}")
# git check-ref-format: no control character, space, ~ ^ : ? * [ \ (and no quotes or backticks:
# this text lands in a URL and in the set-up cell); no "..", "@{", "//"; no component starting
# with "." or ending with ".lock"; not "@", not starting or ending with "/", not ending with ".".
BRANCH_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\\"'`]")
URL_LINE = re.compile(r'^(Repository\s*=\s*)"https://github\.com/([^"/]+/[^"/]+?)"', re.M)
# github.com/OWNER/NAME (a page, git+ install or a Colab badge's /github/OWNER/NAME/blob/BRANCH/).
LINK = re.compile(r"(colab\.research\.google\.com/github/|github\.com/)([A-Za-z0-9-]+/[A-Za-z0-9._-]+?)"
                  r"(?=/blob/|@|\.git\b|[\s\"')\]]|$)(?:/blob/([A-Za-z0-9._/-]+?)(?=/notebooks/))?")
SETUP_MARKER = "# Set-up: in Colab, install spinn_utils"

SETUP_TEMPLATE = '''# Set-up: in Colab, install spinn_utils and mount Google Drive; locally this does nothing.
import importlib.util, subprocess, sys
if "google.colab" in sys.modules:
    if importlib.util.find_spec("spinn_utils") is None:
        source = {source}
        if subprocess.run([sys.executable, "-m", "pip", "install", "-q", source]).returncode:
            raise SystemExit(f"could not pip install {{source}}: for a fork, run `python -m spinn_utils.colab "
                             "--repo OWNER/NAME` in it and push; for a copy on Drive, run "
                             "`%pip install /content/drive/MyDrive/<your copy>` first")
    if results_dir.startswith("/content/drive"):
        from google.colab import drive
        drive.mount("/content/drive")'''


def check_repo(repo: str) -> str:
    """``repo`` when it is a GitHub OWNER/NAME; else a SpinnError."""
    if not isinstance(repo, str) or not REPO_RE.fullmatch(repo):
        raise SpinnError(f"--repo must look like OWNER/NAME (GitHub's rules), got {repo!r}")
    return repo


def check_branch(branch: str) -> str:
    """``branch`` when git would accept it as a branch name (``git check-ref-format``); else a SpinnError."""
    parts = branch.split("/") if isinstance(branch, str) else [""]
    bad = (not branch or branch == "@" or BRANCH_BAD_CHARS.search(branch) or ".." in branch or "@{" in branch
           or branch.endswith(".") or any(not p or p.startswith(".") or p.endswith(".lock") for p in parts))
    if bad:
        raise SpinnError(f"--branch {branch!r} is not a valid git branch name (git check-ref-format: no empty "
                         "part, '..', '@{', leading '.', control characters, spaces, quotes or ~^:?*[\\)")
    return branch


def py_literal(text: str) -> str:
    """``text`` as a Python string literal (double-quoted where it can be), checked to read back."""
    literal = json.dumps(text) if text.isascii() and text.isprintable() else repr(text)
    if ast.literal_eval(literal) != text:
        raise SpinnError(f"cannot write {text!r} as a Python string literal")
    return literal


def setup_cell(repo: str, branch: str = "main") -> str:
    """The set-up cell every notebook carries, for ``repo`` ("OWNER/NAME") at ``branch``, both
    checked; the pip source is a string literal, so a branch ``main"; import os`` runs nothing."""
    source = f"git+https://github.com/{check_repo(repo)}@{check_branch(branch)}"
    return SETUP_TEMPLATE.format(source=py_literal(source))


def _cells(path: Path) -> tuple[dict, list[dict]]:
    nb = json.loads(path.read_text())
    return nb, [c for c in nb["cells"] if c["cell_type"] == "code"
                and "".join(c["source"]).startswith(SETUP_MARKER)]


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def repoint(repo: str, branch: str = "main", root: Path = REPO_ROOT) -> list[str]:
    """Point every reference at ``repo``/``branch`` in place; returns one line per changed file."""
    cell_text = setup_cell(repo, branch)  # validates both before anything is written
    changes = []
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    new = URL_LINE.sub(lambda m: f'{m.group(1)}"https://github.com/{repo}"', text, count=1)
    if new != text:
        _write(pyproject, new)
        changes.append(f"pyproject.toml: Repository = https://github.com/{repo}")
    for name in DOCS:
        text = (root / name).read_text()
        new, n = LINK.subn(lambda m: m.group(1) + repo + (f"/blob/{branch}" if m.group(3) else ""), text)
        if new != text:
            _write(root / name, new)
            changes.append(f"{name}: {n} link(s) -> {repo}" + (f" ({branch})" if branch else ""))
    for path in discover(root / "notebooks", standalone=True):
        nb, cells = _cells(path)
        if not cells:
            raise SpinnError(f"{path.name} has no set-up cell (starting {SETUP_MARKER!r})")
        if any("".join(c["source"]) != cell_text for c in cells):
            for c in cells:
                c["source"] = cell_text.splitlines(keepends=True)
            _write(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changes.append(f"notebooks/{path.name}: set-up cell installs git+https://github.com/{repo}@{branch}")
    return changes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spinn_utils.colab", description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True, help="your fork or copy on GitHub, as OWNER/NAME")
    p.add_argument("--branch", default="main", help="the branch Colab opens and installs (default main)")
    p.add_argument("--root", type=Path, default=REPO_ROOT, help="the repository checkout to rewrite")
    args = p.parse_args(argv)
    try:
        changes = repoint(args.repo, args.branch, args.root)
    except (SpinnError, OSError) as err:
        print(f"colab: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(changes) if changes else f"nothing to change: everything points at {args.repo}")
    return 0
