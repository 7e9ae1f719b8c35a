#!/usr/bin/env python
"""Run the numbered notebooks in order, headless, with papermill.

    python run_all.py                      # the whole pipeline on the embedded synthetic data
    python run_all.py --smoke              # tiny data and epochs: the whole chain in ~a minute
    python run_all.py --from 03 -p finetune_epochs=5
    python run_all.py --only 06,07 --device cuda
    python run_all.py --data mill.mat --output results_nasa

Executed copies go to ``<output>/executed/``; ``<output>/manifest.json`` records versions,
hardware, seed, git commit, parameters and seconds per notebook (rewritten after every
notebook, so a failed run still says what ran). The run stops at the first failing
notebook and names it with the failing cell's error. Notebooks that do not exist yet are
not run. Every ``-p NAME=VALUE`` must be a parameter some selected notebook declares
(papermill itself would only warn); it is passed to the notebooks that declare it.
"""
from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NOTEBOOK_DIR = ROOT / "notebooks"
NAME_RE = re.compile(r"^(\d+)(?:_(\d+))?_[A-Za-z]")  # 05_verify -> (5, 0); 05_5_sparse -> (5, 5)
PACKAGES = ("torch", "numpy", "pandas", "matplotlib", "scipy", "papermill", "nbformat", "spinn-utils")


class UsageError(Exception):
    """A bad option or parameter: one line on stderr, exit code 2."""


def notebook_key(path: Path) -> tuple[int, int] | None:
    """Order key of a numbered notebook (None for anything else)."""
    m = NAME_RE.match(path.stem)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def discover(notebook_dir: Path | None = None) -> list[Path]:
    """The numbered notebooks present, in pipeline order (05 before 05_5 before 06)."""
    found = [p for p in (notebook_dir or NOTEBOOK_DIR).glob("*.ipynb") if notebook_key(p) is not None]
    return sorted(found, key=notebook_key)


def parse_id(text: str) -> tuple[int, int]:
    """'3', '03', '5.5', '05_5' -> (major, minor)."""
    m = re.fullmatch(r"(\d+)(?:[._](\d+))?", text.strip())
    if not m:
        raise UsageError(f"notebook id {text!r} is not like 03, 5.5 or 05_5")
    return int(m.group(1)), int(m.group(2) or 0)


def select(notebooks: list[Path], only: str | None, start: str | None) -> list[Path]:
    """Apply --only (comma list) and --from (inclusive) to the discovered notebooks."""
    keys = {notebook_key(p): p for p in notebooks}
    if only:
        wanted = [parse_id(t) for t in only.split(",") if t.strip()]
        missing = [f"{a:02d}" + (f"_{b}" if b else "") for a, b in wanted if (a, b) not in keys]
        if missing:
            raise UsageError(f"no notebook {', '.join(missing)} in {NOTEBOOK_DIR} (have: {', '.join(p.stem for p in notebooks)})")
        return [keys[k] for k in sorted(set(wanted))]
    if start:
        first = parse_id(start)
        chosen = [p for p in notebooks if notebook_key(p) >= first]
        if not chosen:
            raise UsageError(f"no notebook at or after {start}")
        return chosen
    return notebooks


def parse_value(text: str):
    """A Python literal where it parses (5, 0.1, True, [1, 2]), else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list": (list, tuple),
         "dict": (dict,), "None": (type(None),)}


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
    import papermill

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
    if fixed.get("data_path") and not any("data_path" in d for d in declared.values()):
        raise UsageError("--data is read by notebook 01, which is not selected")
    return {
        p: {k: v for k, v in {**fixed, **overrides}.items() if k in params}
        for p, params in declared.items()
    }


def git_commit() -> dict:
    """Commit hash and whether the tree had uncommitted changes (None outside git)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def kernel_manager_class():
    """Local kernels over Unix sockets where available: no TCP ports and no plain-text warning."""
    from jupyter_client.manager import AsyncKernelManager

    if os.name != "posix":
        return AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            # The socket files live in the temp dir, not in the repository (papermill's cwd).
            self.ip = os.path.join(tempfile.gettempdir(), f"spinn-kernel-{os.getpid()}-{id(self)}")

    return IPCKernelManager


def cell_error(err) -> str:
    """'cell 7: ValueError: ...' from a PapermillExecutionError."""
    return f"cell {err.exec_count}: {err.ename}: {err.evalue}".strip()


def run(args: argparse.Namespace) -> int:
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    from spinn_utils.config import environment_info, resolve_device, write_json

    output = Path(args.output or ("results/smoke" if args.smoke else "results")).expanduser().resolve()
    notebooks = select(discover(), args.only, args.start)
    if not notebooks:
        raise UsageError(f"no numbered notebooks in {NOTEBOOK_DIR}")
    resolve_device(args.device)  # fail now on --device cuda without a GPU, not in notebook 02
    fixed = {"results_dir": str(output), "smoke": args.smoke, "seed": args.seed, "device": args.device}
    if args.data:
        data = Path(args.data).expanduser().resolve()
        if not data.is_file():
            raise UsageError(f"--data {args.data}: no such file")
        fixed["data_path"] = str(data)
    overrides = dict(args.parameters)
    plan = plan_parameters(notebooks, fixed, overrides)

    executed_dir = output / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")  # kernels inherit it: no display needed
    manifest = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "smoke": args.smoke,
        "seed": args.seed,
        "device_requested": args.device,
        "git": git_commit(),
        "versions": versions(),
        "environment": environment_info(resolve_device(args.device)),
        "notebooks": [],
        "status": "running",
    }
    total_start = time.perf_counter()
    print(f"running {len(notebooks)} notebook(s) -> {output}")
    for i, nb in enumerate(notebooks, 1):
        entry = {"notebook": nb.name, "parameters": plan[nb], "status": "running"}
        manifest["notebooks"].append(entry)
        write_json(output / "manifest.json", manifest)
        print(f"[{i}/{len(notebooks)}] {nb.stem} ...", end=" ", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(nb), str(executed_dir / nb.name), parameters=plan[nb], cwd=str(ROOT),
                kernel_name=args.kernel, progress_bar=args.progress, log_output=args.verbose,
                kernel_manager_class=kernel_manager_class(),
            )
        except PapermillExecutionError as err:
            entry.update(status="failed", seconds=round(time.perf_counter() - start, 2), error=cell_error(err))
            manifest.update(status="failed", failed=nb.name, total_seconds=round(time.perf_counter() - total_start, 2))
            write_json(output / "manifest.json", manifest)
            print("FAILED")
            print(f"error: {nb.name} failed in {cell_error(err)}", file=sys.stderr)
            print(f"       executed copy with the traceback: {executed_dir / nb.name}", file=sys.stderr)
            return 1
        except BaseException as err:
            # No kernel, a dead kernel, Ctrl-C, ...: the manifest must not say "running" forever.
            entry.update(status="aborted", seconds=round(time.perf_counter() - start, 2), error=repr(err))
            manifest.update(status="aborted", failed=nb.name, total_seconds=round(time.perf_counter() - total_start, 2))
            write_json(output / "manifest.json", manifest)
            if isinstance(err, NoSuchKernel):
                raise UsageError(f"--kernel {args.kernel}: no such Jupyter kernel") from err
            raise
        entry.update(status="ok", seconds=round(time.perf_counter() - start, 2))
        print(f"{entry['seconds']:.1f} s")
    manifest.update(
        status="ok", total_seconds=round(time.perf_counter() - total_start, 2),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    write_json(output / "manifest.json", manifest)
    print(f"done in {manifest['total_seconds']:.1f} s; manifest: {output / 'manifest.json'}")
    return 0


def parse_parameter(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), parse_value(value)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny data and epochs (default output results/smoke)")
    pick = ap.add_mutually_exclusive_group()
    pick.add_argument("--only", metavar="IDS", help="comma-separated notebook ids, e.g. 01,02 or 5.5")
    pick.add_argument("--from", dest="start", metavar="ID", help="run this notebook and all after it")
    ap.add_argument("-p", "--parameter", dest="parameters", action="append", default=[], type=parse_parameter,
                    metavar="NAME=VALUE", help="notebook parameter override (repeatable; checked against the notebooks)")
    ap.add_argument("--data", metavar="PATH", help="a NASA mill.mat or a CSV (default: embedded synthetic data)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device (default auto)")
    ap.add_argument("--output", metavar="DIR", help="results directory (default results/)")
    ap.add_argument("--seed", type=int, default=42, help="seed passed to every notebook (default 42)")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    ap.add_argument("--progress", action="store_true", help="papermill's per-cell progress bar")
    ap.add_argument("--verbose", action="store_true", help="stream notebook output to the terminal")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from spinn_utils.config import SpinnError

    try:
        return run(args)
    except (UsageError, SpinnError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
