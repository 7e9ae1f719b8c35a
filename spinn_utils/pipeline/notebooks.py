"""The numbered notebooks of the pipeline: where they are, their order, and picking some.

``01_data_preprocessing`` -> (1, 0), ``05_5_sparse_conversion`` -> (5, 5): 05 runs before
05_5, which runs before 06. ``10_sparsity_sweep`` is numbered but stands outside the chain: it
reads (or runs) the sparsity sweep, so ``run_all.py`` never runs it (``STANDALONE``).
"""
from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import SpinnError

# The repository this package lives in (an editable install or a source checkout).
REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Numbered notebooks that are not a pipeline stage: the sweep's notebook (spinn-run sweep draws
# the same table and figures; a plain run must not start a sweep or need one).
STANDALONE = {"10_sparsity_sweep"}
NAME_RE = re.compile(r"^(\d+)(?:_(\d+))?_[A-Za-z]")  # 05_verify -> (5, 0); 05_5_sparse -> (5, 5)


class UsageError(SpinnError):
    """A bad option or parameter: one line on stderr, exit code 2."""


def notebook_key(path: Path) -> tuple[int, int] | None:
    """Order key of a numbered notebook (None for anything else)."""
    m = NAME_RE.match(path.stem)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def notebook_id(path: Path) -> str:
    """'01', '05_5': the id a user types for ``path``."""
    major, minor = notebook_key(path)
    return f"{major:02d}" + (f"_{minor}" if minor else "")


def discover(notebook_dir: Path | None = None, standalone: bool = False) -> list[Path]:
    """The numbered pipeline notebooks present, in pipeline order (05 before 05_5 before 06);
    ``standalone=True`` adds the ones outside the chain (``STANDALONE``: notebook 10)."""
    found = [p for p in (notebook_dir or NOTEBOOK_DIR).glob("*.ipynb") if notebook_key(p) is not None
             and (standalone or p.stem not in STANDALONE)]
    return sorted(found, key=notebook_key)


def parse_id(text: str) -> tuple[int, int]:
    """'3', '03', '5.5', '05_5' -> (major, minor)."""
    m = re.fullmatch(r"(\d+)(?:[._](\d+))?", text.strip())
    if not m:
        raise UsageError(f"notebook id {text!r} is not like 03, 5.5 or 05_5")
    return int(m.group(1)), int(m.group(2) or 0)


def select(notebooks: list[Path], only: str | None, start: str | None) -> list[Path]:
    """Apply --only (comma list) and --from (inclusive) to the discovered notebooks."""
    keys = {notebook_key(p): p for p in notebooks}
    if only:
        wanted = [parse_id(t) for t in only.split(",") if t.strip()]
        missing = [f"{a:02d}" + (f"_{b}" if b else "") for a, b in wanted if (a, b) not in keys]
        if missing:
            have = ", ".join(p.stem for p in notebooks)
            raise UsageError(f"no notebook {', '.join(missing)} among the notebooks (have: {have})")
        return [keys[k] for k in sorted(set(wanted))]
    if start:
        first = parse_id(start)
        chosen = [p for p in notebooks if notebook_key(p) >= first]
        if not chosen:
            raise UsageError(f"no notebook at or after {start}")
        return chosen
    return notebooks
