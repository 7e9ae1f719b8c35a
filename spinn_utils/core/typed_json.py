"""Frozen dataclasses <-> JSON, strictly: a missing, unexpected or mistyped key is one line.

The results schema (``core/results_schema.py``) declares every metrics JSON as frozen
dataclasses; this module turns one into plain JSON (``encode``) and reads JSON back into one
(``decode``), checking every key against the declared fields and types on the way. Supported
field types: ``bool``, ``int``, ``float`` (an int is accepted), ``str``, ``X | None``,
``list[X]``, ``dict[str, X]``, free-form ``dict`` / ``Any`` (left as read), nested schema
dataclasses, and a union of schema dataclasses told apart by ``"skipped": true`` (a member
with ``SKIP = True`` is the record of a step skipped by design). A field with a default may be
absent; every other field must be present (its value may be null only where it is ``X | None``).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar

from .errors import SpinnError
from .io import to_jsonable


class KeyProblem(Exception):
    """A key of a JSON that does not fit its schema: ``where`` is the dotted key path."""

    def __init__(self, where: str, what: str):
        super().__init__(f"{what} {where!r}" if where else what)
        self.where, self.what = where, what


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def fields_of(cls) -> list[tuple[str, Any, bool]]:
    """(name, type, required) of each field of a schema dataclass, in declaration order."""
    hints = _hints(cls)
    return [(f.name, hints[f.name],
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)]


def _union_args(tp) -> tuple | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def _pick_member(members: list, data: dict, where: str):
    """The union member ``data`` is a record of: the skip record when ``"skipped": true``."""
    skipped = isinstance(data, dict) and data.get("skipped") is True
    found = [m for m in members if bool(getattr(m, "SKIP", False)) == skipped]
    if not found:
        raise KeyProblem(_join(where, "skipped"), "unexpected value of key")
    return found[0]


def _decode_dataclass(cls, data, where: str):
    if not isinstance(data, dict):
        raise KeyProblem(where, f"expected an object ({cls.__name__}), found {type(data).__name__} at key")
    out = {}
    known = set()
    for name, tp, required in fields_of(cls):
        known.add(name)
        if name not in data:
            if required:
                raise KeyProblem(_join(where, name), "missing key")
            continue
        out[name] = decode_value(tp, data[name], _join(where, name))
    extra = [k for k in data if k not in known]
    if extra:
        raise KeyProblem(_join(where, extra[0]), "unexpected key")
    return cls(**out)


def _decode_scalar(tp, data, where: str):
    if tp is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data) if isinstance(data, int) else data
    if isinstance(data, tp) and not (tp is int and isinstance(data, bool)):
        return data
    raise KeyProblem(where, f"expected {tp.__name__}, found {type(data).__name__} at key")


def decode_value(tp, data, where: str = ""):
    """``data`` (parsed JSON) as type ``tp``; raises ``KeyProblem`` where it does not fit."""
    if tp is Any:
        return data
    if tp is dict:
        if not isinstance(data, dict):
            raise KeyProblem(where, f"expected an object, found {type(data).__name__} at key")
        return data
    members = _union_args(tp)
    if members is not None:
        if data is None and type(None) in members:
            return None
        rest = [m for m in members if m is not type(None)]
        if len(rest) == 1:
            return decode_value(rest[0], data, where)
        return _decode_dataclass(_pick_member(rest, data, where), data, where)
    if data is None:
        raise KeyProblem(where, "null value at key")
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, where)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        if not isinstance(data, list):
            raise KeyProblem(where, f"expected a list, found {type(data).__name__} at key")
        return [decode_value(args[0], v, _join(where, i)) for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise KeyProblem(where, f"expected an object, found {type(data).__name__} at key")
        return {k: decode_value(args[1], v, _join(where, k)) for k, v in data.items()}
    if tp in (bool, int, float, str):
        return _decode_scalar(tp, data, where)
    raise TypeError(f"unsupported schema type {tp!r} at {where!r}")


def encode(obj) -> Any:
    """A schema dataclass (or anything ``to_jsonable`` takes) as plain JSON, fields in order;
    an optional field left at its default None is left out (the key is absent, as it was)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.default is None and getattr(obj, f.name) is None)}
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    return to_jsonable(obj)


def parse(cls, data, what: str = "record"):
    """``data`` (a dict a producer built) as schema type ``cls``; a key that does not fit is a
    ``SpinnError`` naming ``what`` and the key."""
    try:
        return decode_value(cls, encode(data))
    except KeyProblem as err:
        raise SpinnError(f"{what}: {err}") from None


def type_name(tp) -> str:
    """How the schema reference writes a field type (``list[RegressionReport] | None``)."""
    members = _union_args(tp)
    if members is not None:
        return " | ".join(type_name(m) for m in members)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    if dataclasses.is_dataclass(tp):
        return tp.__name__
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, dict) and args:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def nested_types(tp) -> list:
    """The schema dataclasses a field type refers to, in order of appearance."""
    if dataclasses.is_dataclass(tp):
        return [tp]
    out = []
    for arg in typing.get_args(tp):
        out += [t for t in nested_types(arg) if t not in out]
    return out


class Versioned:
    """Mixin of a file-level record: ``SCHEMA_VERSION`` is written into the file and checked on
    reading. Raise it when a change makes files written before unreadable."""

    SCHEMA_VERSION: ClassVar[int] = 1
