"""The numbered notebooks: where they are, their order (the stage table's), picking some, and
their parameters (``-p NAME=VALUE`` checked against what each notebook declares: papermill itself
only warns about an unknown name).

A file belongs to the stage whose id its name starts with (the longest that fits: ``05_5``);
``10_sparsity_sweep`` stands outside the chain (``STANDALONE``) and is never run by ``run_all.py``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import papermill

from ..core.errors import SpinnError
from ..core.stages import STAGES

# The repository this package lives in (an editable install or a source checkout).
REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Numbered notebooks that are not a pipeline stage: the sweep's notebook (spinn-run sweep draws
# the same table and figures; a plain run must not start a sweep or need one).
STANDALONE = ("10",)
IDS = (*STAGES, *STANDALONE)  # every notebook id, in order
_LONGEST_FIRST = sorted(IDS, key=len, reverse=True)


class UsageError(SpinnError):
    """A bad option or parameter: one line on stderr, exit code 2."""


def notebook_id(path: Path) -> str | None:
    """'01', '05_5': the stage id of a notebook file (None for a file of no stage)."""
    return next((i for i in _LONGEST_FIRST if Path(path).stem.startswith(f"{i}_")), None)


def order(path: Path) -> int:
    """Position in the pipeline (files of no stage last)."""
    nb_id = notebook_id(path)
    return IDS.index(nb_id) if nb_id else len(IDS)


def discover(notebook_dir: Path | None = None, standalone: bool = False) -> list[Path]:
    """The pipeline notebooks present, in the stage table's order; ``standalone=True`` adds the
    ones outside the chain (``STANDALONE``: notebook 10)."""
    found = {notebook_id(p): p for p in sorted((notebook_dir or NOTEBOOK_DIR).glob("*.ipynb"))}
    return [found[i] for i in (IDS if standalone else STAGES) if i in found]


def parse_id(text: str) -> str:
    """'3', '03', '5.5', '05_5' -> '03', '05_5'."""
    m = re.fullmatch(r"(\d+)(?:[._](\d+))?", text.strip())
    if not m:
        raise UsageError(f"notebook id {text!r} is not like 03, 5.5 or 05_5")
    return f"{int(m.group(1)):02d}" + (f"_{int(m.group(2))}" if m.group(2) and int(m.group(2)) else "")


def select(notebooks: list[Path], only: str | None, start: str | None) -> list[Path]:
    """Apply --only (comma list) and --from (inclusive) to the discovered notebooks; an empty one
    is a mistake, not "run everything"."""
    for flag, value in (("--only", only), ("--from", start)):
        if value is not None and not value.replace(",", "").strip():
            raise UsageError(f"{flag} is empty; name notebook ids, e.g. {flag} 01,02 (or leave {flag} out to run all)")
    by_id = {notebook_id(p): p for p in notebooks}
    if only:
        wanted = {parse_id(t) for t in only.split(",") if t.strip()}
        missing = sorted(wanted - set(by_id))
        if missing:
            have = ", ".join(p.stem for p in notebooks)
            raise UsageError(f"no notebook {', '.join(missing)} among the notebooks (have: {have})")
        return [p for p in notebooks if notebook_id(p) in wanted]
    if start:
        first = parse_id(start)
        if first not in IDS:
            raise UsageError(f"no notebook {first} in the pipeline (ids: {', '.join(STAGES)})")
        chosen = [p for p in notebooks if order(p) >= IDS.index(first)]
        if not chosen:
            raise UsageError(f"no notebook at or after {start}")
        return chosen
    return notebooks


TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list": (list, tuple),
         "dict": (dict,), "None": (type(None),)}


def parse_value(text: str):
    """A Python literal where it parses (5, 0.1, True, [1, 2]), else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def type_ok(value, inferred: str) -> bool:
    """Does ``value`` fit papermill's inferred type name (e.g. 'int | None')? Unknown names pass."""
    text = (inferred or "").strip()
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional["):-1] + " | None"
    names = [n.strip() for n in text.split("|")]
    allowed = [TYPES[n] for n in names if n in TYPES]
    if len(allowed) < len(names) or not allowed:
        return True
    if isinstance(value, bool) and not any(bool in a for a in allowed):
        return False  # True is an int to Python, not to a user typing epochs=True
    return any(isinstance(value, a) for a in allowed)


def plan_parameters(notebooks: list[Path], fixed: dict, overrides: dict) -> dict[Path, dict]:
    """Parameters per notebook: ``fixed`` where declared, ``overrides`` checked by name and type."""
    declared = {p: papermill.inspect_notebook(str(p)) for p in notebooks}
    for name, value in overrides.items():
        owners = [p for p, params in declared.items() if name in params]
        if not owners:
            known = sorted({n for params in declared.values() for n in params})
            raise UsageError(f"-p {name}: no selected notebook has a parameter {name!r}; known: {', '.join(known)}")
        for p in owners:
            inferred = declared[p][name].get("inferred_type_name", "")
            if not type_ok(value, inferred):
                raise UsageError(f"-p {name}={value!r}: {p.stem} expects {inferred}")
    for key, flag in (("data_path", "--data"), ("data_config", "--data-config")):
        if fixed.get(key) and not any(key in d for d in declared.values()):
            raise UsageError(f"{flag} is read by notebook 01, which is not selected")
    return {
        p: {k: v for k, v in {**fixed, **overrides}.items() if k in params}
        for p, params in declared.items()
    }
