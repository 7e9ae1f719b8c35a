"""Persist a run's artifacts (notebook 04): checkpoints, metrics and data JSON, with hashes.

A Google Drive folder in Colab, else a timestamped zip under ``results/archive/``, both written
atomically; each file's sha256 comes from ``lineage.json`` and the copy is re-read against it
(docs/architecture.md, "Lineage"). Nothing is ever pushed to git.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from ..core.env import environment_info
from ..core.errors import SpinnError
from ..core.io import atomic_path, file_sha256, write_json
from ..core.lineage import LINEAGE, recorded_hashes
from ..core.overrides import StageConfig
from ..core.paths import ResultsPaths
from ..core.registry import ARCHIVE_DIR, METRICS
from ..core.results_files import write_result
from ..core.results_schema import ArchivedFile, Artifacts, LeftOut

MANIFEST_NAME = "artifacts_manifest.json"  # stored inside the zip / copied folder as well


class ArtifactsConfig(StageConfig):
    include_checkpoints: bool = True  # the trained weights are the point of the run
    include_metrics: bool = True  # every later table and figure is read from these
    data_patterns: tuple[str, ...] = ("*.json",)  # scaler and feature lists: small, needed to reuse a model
    archive_subdir: str = ARCHIVE_DIR  # results/archive/spinn_<UTC>.zip when not copying to Drive
    drive_dir: str = ""  # a Google Drive folder (Colab only); empty = local zip

    @classmethod
    def smoke_test(cls) -> ArtifactsConfig:
        return cls()  # already seconds: the files are what they are


def running_in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def mount_drive(drive_dir: str) -> bool:
    """Mount Google Drive when running in Colab and ``drive_dir`` lies on it; True if mounted."""
    if not (running_in_colab() and drive_dir.startswith("/content/drive")):
        return False
    from google.colab import drive  # only importable inside Colab

    drive.mount("/content/drive")
    return True


def collect_artifacts(paths: ResultsPaths, cfg: ArtifactsConfig) -> list[Path]:
    """The files to persist, relative to the results root, sorted (artifacts.json excluded)."""
    found: list[Path] = []
    if cfg.include_checkpoints and paths.checkpoints.is_dir():
        found += [p for p in paths.checkpoints.glob("*.pt") if p.is_file()]
    if cfg.include_metrics and paths.metrics.is_dir():
        # artifacts.json describes this copy, so it cannot be inside it.
        found += [p for p in paths.metrics.glob("*.json") if p != paths.metric(METRICS.artifacts)]
    if paths.data.is_dir():
        for pattern in cfg.data_patterns:
            found += [p for p in paths.data.glob(pattern) if p.is_file()]
    if not found:
        raise SpinnError(f"no checkpoints, metrics or data files under {paths.root}; "
                         "run notebooks 01-03 first (or point results_dir at a finished run)")
    # Temp files of an interrupted atomic write start with '.'; they are not artifacts.
    return sorted({p.relative_to(paths.root) for p in found if not p.name.startswith(".")})


def write_archive(root: Path, manifest: list[dict], dest: Path) -> Path:
    """Zip the manifest's files (plus the manifest) to ``dest``; atomic: temp name, then rename."""
    with atomic_path(dest) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for row in manifest:
                zf.write(root / row["path"], arcname=row["path"])
            zf.writestr(MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return dest


def copy_tree(root: Path, manifest: list[dict], dest: Path) -> Path:
    """Copy the manifest's files into folder ``dest``; filled under a temp name, then renamed."""
    if dest.exists():
        raise SpinnError(f"destination already exists, refusing to overwrite: {dest}")
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of an interrupted copy
    try:
        for row in manifest:
            target = tmp / row["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / row["path"], target)
        write_json(tmp / MANIFEST_NAME, manifest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def verify_copy(destination: str | os.PathLike, manifest: list[dict]) -> list[str]:
    """Problems found re-reading a zip or folder against the manifest ([] = identical)."""
    destination = Path(destination)
    if destination.is_file():
        with zipfile.ZipFile(destination) as zf:
            found = {n: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}
        where = destination.name
    else:
        found = {r["path"]: file_sha256(destination / r["path"]) for r in manifest
                 if (destination / r["path"]).is_file()}
        where = destination
    return [f"{r['path']}: " + (f"missing from {where}" if r["path"] not in found else f"sha256 differs in {where}")
            for r in manifest if found.get(r["path"]) != r["sha256"]]


def save_artifacts(paths: ResultsPaths, cfg: ArtifactsConfig, *, in_colab: bool | None = None,
                   now: datetime | None = None) -> Artifacts:
    """Persist the run's artifacts (to ``cfg.drive_dir`` only in Colab; ``in_colab`` None: detect)
    and return the ``metrics/artifacts.json`` record it writes (each file's sha256 is lineage's)."""
    in_colab = running_in_colab() if in_colab is None else in_colab
    files, hashes = collect_artifacts(paths, cfg), recorded_hashes(paths)
    left_out = [{"path": f.as_posix(), "reason": f"not recorded in {LINEAGE} (no finished notebook wrote it)"}
                for f in files if f.as_posix() not in hashes]
    manifest = [{"path": f.as_posix(), "bytes": (paths.root / f).stat().st_size,
                 "sha256": hashes[f.as_posix()]} for f in files if f.as_posix() in hashes]
    if not manifest:
        raise SpinnError(f"none of the {len(files)} files under {paths.root} is recorded in {LINEAGE}; "
                         "run notebooks 01-03 first (each records what it wrote)")
    # 20250101T120000Z: sortable, and safe in file names on every OS
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    note = ""
    if cfg.drive_dir and in_colab:
        drive = Path(cfg.drive_dir).expanduser()
        if str(drive).startswith("/content/drive") and not Path("/content/drive/MyDrive").is_dir():
            raise SpinnError(f"drive_dir {drive} is on Google Drive, but Drive is not mounted")
        drive.mkdir(parents=True, exist_ok=True)
        mode, destination = "drive", copy_tree(paths.root, manifest, drive / f"spinn_{stamp}")
    else:
        if cfg.drive_dir:
            note = f"drive_dir {cfg.drive_dir!r} is used only in Colab; archived locally instead"
        dest = paths.root / cfg.archive_subdir / f"spinn_{stamp}.zip"
        mode, destination = "archive", write_archive(paths.root, manifest, dest)
    problems = verify_copy(destination, manifest)
    summary = Artifacts(
        mode=mode, destination=str(destination),
        archive_sha256=file_sha256(destination) if destination.is_file() else None,
        files=[ArchivedFile(path=r["path"], bytes=r["bytes"]) for r in manifest],
        sha256_from=LINEAGE,  # each file's hash, as its notebook recorded it (also in MANIFEST_NAME)
        not_archived=[LeftOut(**row) for row in left_out], n_files=len(manifest),
        total_bytes=sum(r["bytes"] for r in manifest), verified=not problems, problems=problems,
        created_utc=stamp, note=note, environment=environment_info("cpu"))
    write_result(paths.metric(METRICS.artifacts), summary)
    return summary
