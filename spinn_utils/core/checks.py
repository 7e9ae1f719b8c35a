"""Check rows: ``{"name", "passed", "detail"}``, the shape every verification step reports."""
from __future__ import annotations


def check_row(name: str, passed: bool, detail: str) -> dict:
    """One named check and what it found."""
    return {"name": name, "passed": bool(passed), "detail": detail}


def check_problems(name: str, problems: list[str], ok_detail: str) -> dict:
    """A check that passes when ``problems`` is empty; its detail lists them (or ``ok_detail``)."""
    return check_row(name, not problems, "; ".join(problems) or ok_detail)
