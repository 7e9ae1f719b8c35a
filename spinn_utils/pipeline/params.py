"""Notebook parameters: ``-p NAME=VALUE`` parsed and checked against what each notebook declares.

papermill only *warns* about a parameter no notebook declares; here a typo or a wrong type is
an error before anything runs (papermill's ``inspect_notebook`` reads the parameters cell).
"""
from __future__ import annotations

import ast
from pathlib import Path

import papermill

from .notebooks import UsageError

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
