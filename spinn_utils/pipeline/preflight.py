"""Checks before any notebook runs (parameter values, the results folder, a lock on it) and the
run's plan they make (``make_plan``).

papermill checks no value: without this ``-p target_sparsity=1.5`` would overwrite notebooks 01
and 02's results before notebook 03 refused it. Each ``-p`` value goes through the stage config
that receives it; the run's own settings must come from their flags.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from ..benchmark.bench_config import BenchConfig
from ..compression.convert import SparseConfig
from ..compression.export import ExportConfig
from ..compression.magnitude import PruneConfig
from ..compression.quantize import QuantConfig
from ..core.env import resolve_device
from ..core.errors import SpinnError, first_line
from ..core.overrides import with_overrides
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, SWEEP_DIR
from ..core.stages import STAGES
from ..data.nasa import check_mat_file
from ..data.schema import DataConfig, data_config_for, read_data_config
from ..data.synthetic import experiment_settings
from ..evaluation.crossval import CrossValConfig
from ..evaluation.verify import VerifyConfig
from ..model.mlp import ModelConfig
from ..model.physics import PhysicsConfig
from ..reporting.figures import FigureConfig
from ..reporting.results import ReportConfig
from ..training.fit import TrainConfig
from .archive import ArtifactsConfig
from .notebooks import NOTEBOOK_DIR, UsageError, discover, notebook_id, plan_parameters, select
from .staging import LOCK, MANIFEST, is_results_folder, movable

MANIFEST_FORMAT = "spinn-run-manifest"  # the marker of a manifest the driver wrote


def read_manifest(path: Path) -> dict | None:
    """A results folder's manifest (None when absent); corrupt or someone else's is a UsageError."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is corrupt (not JSON: {first_line(err)}); move it away or use another "
                         "--output") from err
    if not isinstance(record, dict):
        raise UsageError(f"{path} is corrupt: it holds a {type(record).__name__}, not a SPINN run manifest; "
                         "move it away or use another --output")
    if record.get("format") != MANIFEST_FORMAT:
        raise UsageError(f"{path} was not written by SPINN (no \"format\": \"{MANIFEST_FORMAT}\"), and a run "
                         f"would replace it: use another --output (if an older SPINN run wrote it, adopt the folder "
                         f"by adding \"format\": \"{MANIFEST_FORMAT}\" to the file)")
    if not isinstance(record.get("notebooks", []), list):
        raise UsageError(f"{path} is corrupt: \"notebooks\" is not a list; move it away or use another --output")
    return record


# The driver's own settings: a -p would bypass the flag and the manifest would not show it.
RESERVED = {"results_dir": "--output", "smoke": "--smoke", "seed": "--seed", "device": "--device",
            "data_path": "--data", "data_config": "--data-config"}
# The stage configs by the class name the stage table gives (a parameter sets the field of its name).
CONFIG_CLASSES = {cls.__name__: cls for cls in (
    DataConfig, ModelConfig, TrainConfig, PhysicsConfig, PruneConfig, ArtifactsConfig, VerifyConfig, SparseConfig,
    ExportConfig, QuantConfig, BenchConfig, CrossValConfig, ReportConfig, FigureConfig)}


def check_values(plan: dict[Path, dict], overrides: dict, reserved: dict = RESERVED) -> None:
    """Every ``-p`` value through the config that receives it; a bad value, or a name in
    ``reserved`` (name -> the flag that sets it), is a UsageError."""
    for name in overrides:
        if name in reserved:
            raise UsageError(f"-p {name}: set it with {reserved[name]}, so the run records it")
    for nb, params in plan.items():
        nb_id = notebook_id(nb)
        stage = STAGES.get(nb_id)
        for name, value in params.items():
            if name not in overrides or value is None or stage is None:
                continue
            for cls in map(CONFIG_CLASSES.__getitem__, stage.configs):
                if name in cls.model_fields:
                    try:
                        with_overrides(cls(), **{name: value})
                    except (SpinnError, TypeError, ValueError) as err:
                        raise UsageError(f"-p {name}={value!r} (notebook {nb_id}): {err}") from err


# What a results folder may hold before its first run: the repository's results/README.md.
BEFORE_FIRST_RUN = ("README.md",)


def check_output(text: str | os.PathLike | None, default: str = "results") -> Path:
    """The ``--output`` folder (``default`` when None), resolved: writable and, when it exists,
    holding SPINN results or nothing else (a home folder named by mistake is refused)."""
    if text is not None and not str(text).strip():
        raise UsageError("--output is empty; name a folder")
    output = Path(text or default).expanduser().resolve()
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a folder")
    if output.is_dir():
        read_manifest(output / MANIFEST)  # a foreign or corrupt one is refused
        ours = is_results_folder(output) or (output / SWEEP_DIR).is_dir()  # a sweep may come first
        other = [p.name for p in movable(output) if p.name not in BEFORE_FIRST_RUN]
        if not ours and other:
            raise UsageError(f"--output {output} is not empty and holds no SPINN results "
                             f"(no manifest.json; found {other[:3]}): name a new folder or a results folder")
    existing = next(p for p in (output, *output.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--output {output}: {existing} is not writable")
    return output


SEED_MAX = 2**32 - 1  # a seed seeds Python, NumPy and torch; NumPy's range is the narrowest


def check_kernel(name: str) -> None:
    """The Jupyter kernel exists, before any folder is touched."""
    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        have = sorted(KernelSpecManager().find_kernel_specs())
        raise UsageError(f"--kernel {name}: no such Jupyter kernel (installed: {have})") from None


def data_experiments(parameters: dict[Path, dict], output: Path, smoke: bool) -> int | None:
    """How many experiments notebook 08 will see: from the source when notebook 01 runs, else
    from the folder's data_summary.json; None when that cannot be told cheaply (notebook 01
    then reports any problem with the data itself)."""
    p01 = next((p for nb, p in parameters.items() if notebook_id(nb) == "01"), None)
    try:
        if p01 is None:
            summary = json.loads(ResultsPaths(output).metric(METRICS.data_summary).read_text())
            return int(summary["n_experiments"])
        cfg = data_config_for(smoke, p01.get("data_config", ""), data_path=p01.get("data_path", ""),
                              group_col=p01.get("group_col"))
        if not cfg.data_path:
            n = len(experiment_settings())
        elif cfg.data_path.lower().endswith(".csv"):
            n = int(pd.read_csv(cfg.data_path, usecols=[cfg.group_col])[cfg.group_col].nunique())
        else:
            return None
    except (SpinnError, OSError, ValueError, KeyError, TypeError):  # pandas' ParserError too
        return None
    return min(n, cfg.max_experiments) if cfg.max_experiments else n


def check_cv_folds(parameters: dict[Path, dict], output: Path, smoke: bool) -> None:
    """Notebook 08's cross-validation folds fit the data's experiments (each is held out once)."""
    for nb, params in parameters.items():
        if notebook_id(nb) != "08" or params.get("run_cv") is False:
            continue
        folds = params.get("cv_folds") or (CrossValConfig.smoke_test() if smoke else CrossValConfig()).cv_folds
        n = data_experiments(parameters, output, smoke)
        if n is not None and folds > n:
            raise UsageError(f"cv_folds={folds} (notebook 08): the data has {n} experiments and each fold holds "
                             f"out at least one; use -p cv_folds=N with 2 <= N <= {n}")


@dataclass(frozen=True)
class RunPlan:
    """What one invocation runs: notebooks, their parameters, where results go."""

    output: Path
    notebooks: list[Path]
    parameters: dict[Path, dict]
    cwd: Path  # the kernels' working directory (the repository)
    kernel_env: dict = field(default_factory=dict)  # added to the kernels' environment (a sweep point's threads)
    record: dict = field(default_factory=dict)  # added to the manifest (a sweep point's grid values)


def make_plan(args, notebook_dir: Path | None = None) -> RunPlan:
    """Check the options and parameters before anything runs; a problem is a UsageError."""
    output = check_output(args.output, "results/smoke" if args.smoke else "results")
    if not 0 <= args.seed <= SEED_MAX:
        raise UsageError(f"--seed must be in 0..{SEED_MAX} (NumPy's seed range), got {args.seed}")
    check_kernel(args.kernel)
    notebook_dir = Path(notebook_dir) if notebook_dir else None
    notebooks = select(discover(notebook_dir), args.only, args.start)
    if not notebooks:
        raise UsageError(f"no numbered notebooks in {notebook_dir or NOTEBOOK_DIR}")
    resolve_device(args.device)  # fail now on --device cuda without a GPU, not in notebook 02
    fixed = {"results_dir": str(output), "smoke": args.smoke, "seed": args.seed, "device": args.device}
    if args.data:
        data = Path(args.data).expanduser().resolve()
        if not data.is_file():
            raise UsageError(f"--data {args.data}: no such file")
        if data.suffix.lower() == ".mat":  # a text file named .mat stops here, not in notebook 01
            check_mat_file(data)
        fixed["data_path"] = str(data)
    if args.data_config:
        read_data_config(args.data_config)  # a missing, unparsable or unknown-key file stops here
        fixed["data_config"] = str(Path(args.data_config).expanduser().resolve())
    overrides = dict(args.parameters)
    parameters = plan_parameters(notebooks, fixed, overrides)
    check_values(parameters, overrides)
    check_cv_folds(parameters, output, args.smoke)
    return RunPlan(output, notebooks, parameters, notebooks[0].parent.parent)


def _holder(fd: int) -> str:
    """'process 123 (run_all.py --smoke)' from a held lock file's body."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"process {record['pid']} ({' '.join(record['command'])})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def results_lock(output: Path, command: list[str]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<output>/.spinn.lock`` for the run (released by the OS however
    the process ends; the body names the holder); a second run is a UsageError naming that process."""
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--output {output}: cannot create it ({first_line(err)})") from err
    lock = output / LOCK
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UsageError(f"--output {output} is not writable: cannot create {lock} ({first_line(err)})") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UsageError(f"--output {output} is in use by {holder}; wait for it or use another folder") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break  # else the holder removed the file between our open and flock: lock the new one
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "command": command}).encode())
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # before the release: a waiting run then finds no file, or its own
        os.close(fd)
