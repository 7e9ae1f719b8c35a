"""Stage configs built from defaults plus checked overrides: a mistyped knob is an error, not ignored
(docs/conventions.md, "Stage configs")."""
from __future__ import annotations

import dataclasses
from typing import Any

from .errors import SpinnError


def with_overrides(cfg: Any, **overrides: Any) -> Any:
    """``dataclasses.replace`` that names the unknown field instead of a bare TypeError."""
    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SpinnError(f"unknown {type(cfg).__name__} field(s) {unknown}; known: {sorted(names)}")
    return dataclasses.replace(cfg, **overrides)


def build_config(cls: type, smoke: bool = False, **overrides: Any) -> Any:
    """A stage config: ``cls.smoke_test()`` or ``cls()``, then the non-None overrides (a notebook
    knob left at None keeps the config's default, so one parameters cell serves full and smoke runs)."""
    base = cls.smoke_test() if smoke else cls()
    return with_overrides(base, **{k: v for k, v in overrides.items() if v is not None})
