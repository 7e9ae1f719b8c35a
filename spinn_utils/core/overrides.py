"""Stage configs: pydantic models checked on construction, built from defaults plus overrides; a
mistyped knob or a bad value is a one-line error, never ignored (docs/conventions.md, "Stage
configs")."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from .errors import SpinnError

Count = Annotated[int, Strict(), Field(ge=1)]  # a whole number >= 1; True is no count
CountOrZero = Annotated[int, Strict(), Field(ge=0)]


def _problem(config: str, err: dict) -> str:
    """One pydantic error as "Config.field: problem, got value" (a validator's message as is)."""
    where = config + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    if err["type"] == "value_error":  # a validator's ValueError: its message names the values
        return f"{where}: {err['ctx']['error']}"
    return f"{where}: {err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"


class StageConfig(BaseModel):
    """A stage's settings: frozen (so hashable), an unknown field is an error, and any bad value is
    a one-line SpinnError naming the config, the field, the problem and the value given. Tuple
    fields accept lists (notebook parameters arrive as lists)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            name = type(self).__name__
            unknown = [str(e["loc"][0]) for e in err.errors() if e["type"] == "extra_forbidden"]
            if unknown:
                raise SpinnError(f"unknown {name} field(s) {sorted(unknown)}; "
                                 f"known: {sorted(type(self).model_fields)}") from None
            problems: dict[tuple, str] = {}
            for e in err.errors():  # a field's first problem (a bad item also fails its length)
                problems.setdefault(e["loc"][:1], _problem(name, e))
            raise SpinnError("; ".join(problems.values())) from None

    @classmethod
    def from_dict(cls, d: dict) -> Any:
        """The config that a checkpoint's or results file's JSON dict (a ``model_dump``) holds."""
        return cls(**d)


def with_overrides(cfg: StageConfig, **overrides: Any) -> Any:
    """``cfg`` with some fields replaced, validated like a new config (an unknown name is named)."""
    return type(cfg)(**{**dict(cfg), **overrides})


def build_config(cls: type, smoke: bool = False, **overrides: Any) -> Any:
    """A stage config: ``cls.smoke_test()`` or ``cls()``, then the non-None overrides (a notebook
    knob left at None keeps the config's default, so one parameters cell serves full and smoke runs)."""
    base = cls.smoke_test() if smoke else cls()
    return with_overrides(base, **{k: v for k, v in overrides.items() if v is not None})
