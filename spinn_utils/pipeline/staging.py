"""Atomic runs: a run that fails or is interrupted leaves the previous results byte-for-byte intact.

Before the first notebook, the current results folder is renamed aside (a rename on the same
file system: nothing in it is rewritten) and the run works on a copy of it at the same path,
so every path recorded in an artifact is the final one and files the pipeline does not write
(``results/README.md``) carry over. When every notebook succeeds the previous folder is
deleted; otherwise the run's partial output is renamed ``<results>.failed-<UTC>`` (its manifest
says where it stopped) and the previous folder is renamed back. A run killed outright leaves the
previous folder aside; the next run puts it back before it starts.
"""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def aside_path(output: Path) -> Path:
    """Where a run keeps the previous results while it works."""
    return output.parent / f".{output.name}.previous"


def failed_folder(output: Path) -> Path:
    return output.parent / f"{output.name}.failed-{_stamp()}"


def recover(output: Path) -> str | None:
    """Put back results a killed run left aside; returns a note when it did."""
    aside = aside_path(output)
    if not aside.is_dir():
        return None
    note = f"a previous run was killed; its predecessor's results were restored to {output}"
    if output.exists():
        partial = failed_folder(output)
        output.rename(partial)
        note += f" and its partial output moved to {partial}"
    aside.rename(output)
    return note


def begin(output: Path) -> Path | None:
    """Move the current results aside; the run works on a copy of them at the same path."""
    aside = aside_path(output)
    if not output.exists():
        output.mkdir(parents=True)
        return None
    output.rename(aside)
    shutil.copytree(aside, output, symlinks=True)
    return aside


def end(output: Path, aside: Path | None, ok: bool) -> Path | None:
    """Keep the run (``ok``) or restore the previous results; returns the failed-run folder."""
    if ok:
        if aside is not None:
            shutil.rmtree(aside)
        return None
    failed = failed_folder(output)
    output.rename(failed)
    if aside is not None:
        aside.rename(output)
    return failed
