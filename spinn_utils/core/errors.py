"""The one exception type a user can cause, and the one-line form of any error."""
from __future__ import annotations


class SpinnError(Exception):
    """An error the user can cause (bad path, column, checkpoint, parameter): one clear line."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an error's message, or its type name when it has none."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
