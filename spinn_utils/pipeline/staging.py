"""Atomic runs: a run that fails or is interrupted leaves the previous results byte-for-byte intact.

All inside the results folder (a mount point or a read-only parent works). ``begin`` copies the
results to ``.spinn-previous/`` (space checked first; its journal, ``.spinn-complete`` last); the
run works in place. ``end`` keeps the run with one rename, or moves its entries to
``failed-<UTC>/`` and the backup back, by renames only and resumable after a kill; ``recover``
finishes what a killed run left. Nested results folders, ``failed-*`` folders and the sweep are
never touched.
"""
from __future__ import annotations

import errno
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import SpinnError, first_line
from ..core.registry import SWEEP_DIR

BACKUP = ".spinn-previous"  # inside the results folder
DISCARD = ".spinn-discard-"  # a committed run's old backup, being deleted
# The journal inside the backup, all made by begin (a restore then only renames, so it works on a
# disk the run filled up): an empty failed-<UTC>/ that receives the run's entries, then COMPLETE,
# renamed RESTORING once the run's entries are all in it.
COMPLETE = ".spinn-complete"
RESTORING = ".spinn-restoring"
LOCK = ".spinn.lock"
FAILED = "failed-"
MANIFEST = "manifest.json"
RESULT_MARKERS = (MANIFEST, "lineage.json", LOCK, BACKUP)  # what makes a folder a results folder
SPACE_MARGIN = 1.05  # copies take a little more than the bytes they hold (directory entries)


@dataclass(frozen=True)
class Stage:
    output: Path
    had_results: bool  # False: the folder was new or empty
    skipped: frozenset[str]  # nested results folders left alone


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def is_results_folder(path: Path) -> bool:
    """A folder some SPINN run wrote (or is writing)."""
    return path.is_dir() and not path.is_symlink() and any((path / m).exists() for m in RESULT_MARKERS)


def movable(output: Path) -> list[Path]:
    """The entries a run stages: all but staging's own, earlier runs' failed folders, the sweep
    (resumable on its own) and nested results folders."""
    return sorted(p for p in output.iterdir() if not p.name.startswith((".spinn", FAILED))
                  and p.name != SWEEP_DIR and not is_results_folder(p))


def check_space(output: Path, entries: list[Path]) -> None:
    """The backup copy must fit (symlinks count as themselves: they are copied as links); one line
    naming both numbers, before anything is copied."""
    need = 0
    for p in entries:
        inside = p.rglob("*") if p.is_dir() and not p.is_symlink() else ()
        need += sum(f.lstat().st_size for f in (p, *inside))
    free = shutil.disk_usage(output).free
    if need * SPACE_MARGIN > free:
        raise SpinnError(f"not enough free space in {output} to keep the previous results while the run "
                         f"works: the copy needs {need / 1e6:.1f} MB, {free / 1e6:.1f} MB are free; "
                         f"free some space or use another --output")


def _copy(src: Path, dst: Path) -> None:
    """Copy a file, link or tree; the first error stops it (``copytree`` would go on and
    gather them, turning a full disk into one ``shutil.Error`` per file)."""
    if not src.is_dir() or src.is_symlink():
        shutil.copy2(src, dst, follow_symlinks=False)
        return
    dst.mkdir()
    for child in src.iterdir():
        _copy(child, dst / child.name)
    shutil.copystat(src, dst)


def begin(output: Path) -> Stage:
    """Back up the current results inside ``output``; the run then works on them in place."""
    output.mkdir(parents=True, exist_ok=True)
    skipped = frozenset(p.name for p in output.iterdir() if is_results_folder(p))
    entries = movable(output)
    check_space(output, entries)
    backup = output / BACKUP
    try:
        backup.mkdir()
        for p in entries:
            _copy(p, backup / p.name)
        (backup / f"{FAILED}{_stamp()}").mkdir()
        (backup / COMPLETE).write_text(_stamp())
    except BaseException as err:  # disk full, Ctrl-C, SIGTERM: the originals were never touched
        shutil.rmtree(backup, ignore_errors=True)
        if isinstance(err, OSError):
            why = "the disk is full" if err.errno == errno.ENOSPC else first_line(err)
            raise SpinnError(f"could not back up the previous results in {output} ({why}); "
                             f"they are untouched and nothing ran") from err
        raise
    return Stage(output, bool(entries), skipped)


def _started(manifest: Path) -> str | None:
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    return record.get("started") if isinstance(record, dict) and record.get("status") == "ok" else None


def _restore(output: Path, backup: Path, skipped: frozenset[str] = frozenset()) -> Path | None:
    """Move the run's entries into the failed folder and the backup's back; returns that folder
    (None when the run left nothing)."""
    run = next(backup.glob(f"{FAILED}*"), None)
    if (backup / COMPLETE).exists():
        for p in movable(output):
            if p.name not in skipped:
                p.rename(run / p.name)
        (backup / COMPLETE).rename(backup / RESTORING)
    for p in movable(backup):
        p.rename(output / p.name)
    failed = run.rename(output / run.name) if run is not None and any(run.iterdir()) else None
    shutil.rmtree(backup)
    return failed


def _commit(backup: Path) -> None:
    """One rename makes the run final; deleting the old copy after it may be interrupted safely."""
    gone = backup.with_name(f"{DISCARD}{_stamp()}")
    backup.rename(gone)
    shutil.rmtree(gone, ignore_errors=True)


def recover(output: Path) -> str | None:
    """Finish what a killed run left; returns a note when there was something to do."""
    if not output.is_dir():
        return None
    for old in output.glob(f"{DISCARD}*"):
        shutil.rmtree(old, ignore_errors=True)  # a committed run killed while deleting its backup
    backup = output / BACKUP
    if not backup.is_dir():
        return None
    if not (backup / COMPLETE).exists() and not (backup / RESTORING).exists():
        shutil.rmtree(backup)  # killed while backing up: the originals were never touched
        return "a previous run was killed while backing up the results; they were untouched"
    if (backup / COMPLETE).exists():  # the restore had not begun: was the run complete?
        done = _started(output / MANIFEST)
        if done and done != _started(backup / MANIFEST):
            _commit(backup)
            return "a previous run was killed after it completed; its results are kept"
    failed = _restore(output, backup)
    return ("a previous run was killed; the results from before it were restored to "
            f"{output}" + (f" and its partial output moved to {failed}" if failed else ""))


def end(stage: Stage, ok: bool) -> Path | None:
    """Keep the run (``ok``) or restore the previous results; returns the failed-run folder."""
    if ok:
        _commit(stage.output / BACKUP)
        return None
    return _restore(stage.output, stage.output / BACKUP, stage.skipped)
