"""Run notebooks in order with papermill; ``manifest.json`` (docs/architecture.md, "Results
contract") is rewritten after every notebook, so a failed or interrupted run says how it ended."""
from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import papermill
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError

from ..core.env import environment_info, package_versions, resolve_device
from ..core.io import write_json
from ..core.lineage import LINEAGE
from ..core.paths import ResultsPaths
from . import staging
from .notebooks import REPO_ROOT, UsageError, order
from .preflight import MANIFEST_FORMAT, RunPlan, read_manifest, results_lock


def git_commit(root: Path = REPO_ROOT) -> dict:
    """Commit hash and whether the tree had uncommitted changes (None outside git)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def kernel_manager_class(log_path: Path, env: dict[str, str | None] | None = None):
    """Local kernels over Unix sockets, their stderr appended to ``log_path``, ``env`` added to
    their environment (None removes a variable); public jupyter_client API only."""
    class SpinnKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            # The socket files live in the temp dir, not in the repository (papermill's cwd).
            self.ip = os.path.join(tempfile.gettempdir(), f"spinn-kernel-{os.getpid()}-{id(self)}")

        async def start_kernel(self, **kw):
            if env:
                merged = {**(kw.get("env") or os.environ), **env}
                kw["env"] = {k: v for k, v in merged.items() if v is not None}
            with open(log_path, "ab") as log:  # the kernel process keeps its own copy of the handle
                return await super().start_kernel(**{**kw, "stderr": log})

    return SpinnKernelManager


def new_manifest(args) -> dict:
    """The manifest before the first notebook runs."""
    return {
        "format": MANIFEST_FORMAT,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]], "smoke": args.smoke, "seed": args.seed,
        "device_requested": args.device, "git": git_commit(), "versions": package_versions(),
        "environment": environment_info(resolve_device(args.device)), "notebooks": [],
        "status": "running", "lineage": LINEAGE,  # what each notebook read and wrote, with sha256
    }


def _finish(paths: ResultsPaths, manifest: dict, status: str, total_start: float, **extra) -> None:
    manifest.update(status=status, total_seconds=round(time.perf_counter() - total_start, 2), **extra)
    write_json(paths.manifest, manifest)


def _earlier_entries(paths: ResultsPaths, plan: RunPlan) -> list[dict]:
    """The manifest entries of the notebooks a --from/--only run skips, marked with their run."""
    earlier = read_manifest(paths.manifest)
    if earlier is None:
        return []
    ran_now = {nb.name for nb in plan.notebooks}
    return [{**e, "from_run": e.get("from_run") or earlier.get("started")}
            for e in earlier.get("notebooks", []) if e.get("notebook") not in ran_now]


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (exit 143)."""


# SIGTERM to the process group also kills the kernel while papermill cleans up: its "Kernel died"
# line and asyncio's orphaned-task traceback would follow the one-line message.
QUIET_WHEN_STOPPED = ("papermill", "asyncio")


def _on_sigterm(signum, frame):
    for name in QUIET_WHEN_STOPPED:
        logging.getLogger(name).disabled = True
    raise Terminated()


def _unquiet() -> None:
    gc.collect()  # an orphaned task reports its error when collected: while its logger is still off
    for name in QUIET_WHEN_STOPPED:
        logging.getLogger(name).disabled = False


def run_notebooks(plan: RunPlan, args) -> int:
    """``run_plan`` locked and staged (``staging.py``): on any exit code but 0 the previous
    results are restored and the partial run is kept in ``<output>/failed-<UTC>``."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with results_lock(plan.output, [Path(sys.argv[0]).name, *sys.argv[1:]]):
            note = staging.recover(plan.output)
            if note:
                print(f"note: {note}")
            stage, rc = staging.begin(plan.output), 1
            try:
                rc = run_plan(plan, args)
                return rc
            finally:
                failed = staging.end(stage, ok=rc == 0)
                if failed is not None:
                    before = "are as before this run" if stage.had_results else "were not created"
                    print(f"       results in {plan.output} {before}; this run's partial output, manifest "
                          f"and executed notebooks (with the traceback): {failed}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        _unquiet()


def run_plan(plan: RunPlan, args) -> int:
    """The notebooks of ``plan`` in order (no lock, no staging): 0 when every notebook ran, 1 at
    a failing one, 2 at bad input, 130 on Ctrl-C, 143 on SIGTERM."""
    paths = ResultsPaths(plan.output)
    paths.executed.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")  # kernels inherit it: no display needed
    earlier, manifest, total_start = _earlier_entries(paths, plan), new_manifest(args), time.perf_counter()
    manifest.update(plan.record)
    ran: list[dict] = []
    print(f"running {len(plan.notebooks)} notebook(s) -> {plan.output}")
    for i, nb in enumerate(plan.notebooks, 1):
        entry = {"notebook": nb.name, "parameters": plan.parameters[nb], "status": "running"}
        ran.append(entry)
        manifest["notebooks"] = sorted([*earlier, *ran], key=lambda e: order(Path(e["notebook"])))
        write_json(paths.manifest, manifest)
        print(f"[{i}/{len(plan.notebooks)}] {nb.stem} ...", end=" ", flush=True)
        start = time.perf_counter()
        try:
            manager = kernel_manager_class(paths.executed / "kernels.log", plan.kernel_env)
            papermill.execute_notebook(
                str(nb), str(paths.executed / nb.name), parameters=plan.parameters[nb],
                cwd=str(plan.cwd), kernel_name=args.kernel, progress_bar=args.progress,
                log_output=args.verbose, kernel_manager_class=manager)
            status, error = "ok", None
        except PapermillExecutionError as err:
            # A SpinnError is bad input met inside the notebook: exit 2, like the CLI's.
            status = "bad input" if err.ename == "SpinnError" else "failed"
            error = f"cell {err.exec_count}: {err.ename}: {err.evalue}".strip()
        except BaseException as err:
            # Ctrl-C, SIGTERM, no kernel, a dead kernel: the manifest must not say "running" forever.
            how = {Terminated: "terminated (SIGTERM)", KeyboardInterrupt: "interrupted (Ctrl-C)"}.get(type(err))
            entry.update(status="aborted", seconds=round(time.perf_counter() - start, 2), error=how or repr(err))
            _finish(paths, manifest, "aborted", total_start, failed=nb.name)
            if isinstance(err, NoSuchKernel):
                raise UsageError(f"--kernel {args.kernel}: no such Jupyter kernel") from err
            if how is None:
                raise
            print(f"\n{how} in {nb.name}", file=sys.stderr)
            return 143 if isinstance(err, Terminated) else 130
        entry.update(status=status, seconds=round(time.perf_counter() - start, 2))
        if status != "ok":
            entry["error"] = error
            _finish(paths, manifest, "failed", total_start, failed=nb.name)
            print("FAILED")
            print(f"error: {nb.name} failed in {error}", file=sys.stderr)
            return 2 if status == "bad input" else 1
        print(f"{entry['seconds']:.1f} s")
    _finish(paths, manifest, "ok", total_start, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    print(f"done in {manifest['total_seconds']:.1f} s; manifest: {paths.manifest}")
    return 0
