"""What a sparsity sweep runs, checked before anything runs: the grid (``--grid`` flags or a
JSON/YAML sweep file), the seeds, and each notebook's parameters (notebooks 01-02 once per seed in
``sweep/seeds/<seed>/``, 03, 05_5 and 08 per point in ``sweep/points/<id>/``; docs/sweeps.md)."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import papermill
import yaml

from ..core.env import resolve_device
from ..core.registry import SWEEP_DIR
from ..reporting.sweep_report import SWEEP
from .notebooks import UsageError, discover, notebook_id, parse_value, plan_parameters
from .preflight import RESERVED, SEED_MAX, check_kernel, check_output, check_values

SEED_NOTEBOOKS = ("01", "02")  # once per seed, shared by every point of that seed
POINT_NOTEBOOKS = ("03", "05_5", "08")  # once per point
AXES = ("target_sparsity", "prune_method")  # the grid's names: rows and columns of Table 3
DEFAULT_GRID = {"target_sparsity": (0.5, 0.685, 0.8, 0.9, 0.95, 0.98),
                "prune_method": SWEEP.methods}
DEFAULT_SEEDS = (42, 43, 44)
SMOKE_GRID = {"target_sparsity": (0.9,), "prune_method": SWEEP.methods}  # two points: both methods
SMOKE_SEEDS = (42,)
LIGHT = dict(SWEEP.light)  # the light per-point schedule; --smoke uses the notebooks' smoke settings
POINT_FIXED = dict(SWEEP.notebook_08)  # notebook 08: one test split, no extras


@dataclass(frozen=True)
class SweepSpec:
    """One sweep: where, which grid and seeds, and each notebook's parameters."""

    output: Path  # the results folder; the sweep lives in output/sweep/
    sparsities: tuple[float, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    smoke: bool
    device: str
    overrides: dict = field(default_factory=dict)  # -p values, applied to every notebook declaring them
    notebooks: dict = field(default_factory=dict)  # notebook id -> Path
    declared: dict = field(default_factory=dict)  # notebook id -> parameter names
    batch: int = 1000  # the timing phase's batches: 1 and this one
    threads: int | None = None  # the timing phase's threads (None: every core)

    @property
    def root(self) -> Path:
        return self.output / SWEEP_DIR

    def seed_folder(self, seed: int) -> Path:
        return self.root / "seeds" / str(seed)

    def point_folder(self, point_id: str) -> Path:
        return self.root / "points" / point_id

    def settings(self) -> dict:
        """What every point ran with, as sweep.json records it."""
        return {"point": {} if self.smoke else LIGHT, "notebook_08": POINT_FIXED,
                "overrides": self.overrides}

    def points(self) -> list[dict]:
        """Every (sparsity, method, seed) with its id, seed-major so a seed's points follow it."""
        return [{"id": point_id(s, m, seed), "target_sparsity": s, "prune_method": m, "seed": seed}
                for seed in self.seeds for s in self.sparsities for m in self.methods]

    def _params(self, nb: str, folder: Path, seed: int, extra: dict) -> dict:
        light = {} if self.smoke else LIGHT
        values = {**light, **extra, **self.overrides, "results_dir": str(folder), "smoke": self.smoke,
                  "seed": seed, "device": self.device}
        return {k: v for k, v in values.items() if k in self.declared[nb]}

    def seed_parameters(self, seed: int) -> dict[str, dict]:
        """Notebook id -> papermill parameters of a seed's notebooks 01 and 02."""
        return {nb: self._params(nb, self.seed_folder(seed), seed, {}) for nb in SEED_NOTEBOOKS}

    def point_parameters(self, point: dict) -> dict[str, dict]:
        """Notebook id -> papermill parameters of a point's notebooks 03, 05_5 and 08."""
        axes = {**POINT_FIXED, **{k: point[k] for k in AXES}}
        folder = self.point_folder(point["id"])
        return {nb: self._params(nb, folder, point["seed"], axes) for nb in POINT_NOTEBOOKS}


def grid_args(output, sparsities, methods, seeds, **options) -> argparse.Namespace:
    """The command line of a sweep over these values (``make_spec``'s input) for callers in
    Python (notebook 10, the recommender's race); ``options``: the other flags' values."""
    grid = [f"target_sparsity={','.join(map(str, sparsities))}",
            f"prune_method={','.join(methods)}"]
    return argparse.Namespace(**{"smoke": False, "device": "auto", "parameters": [], **options,
                                 "output": str(output), "sweep_file": None, "grid": grid,
                                 "seeds": ",".join(map(str, seeds))})


def point_id(sparsity: float, method: str, seed: int) -> str:
    """``sp0.685-magnitude-seed42``: readable, and a folder name on any file system."""
    return f"sp{sparsity:g}-{method}-seed{seed}"


def _values(text: str) -> tuple:
    return tuple(parse_value(v.strip()) for v in text.split(",") if v.strip())


def parse_grid(items: list[str]) -> dict[str, tuple]:
    """``["target_sparsity=0.5,0.9", "prune_method=magnitude"]`` -> {name: values}."""
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not _values(values):
            raise UsageError(f"--grid {item!r}: expected NAME=V1,V2,... (names: {', '.join(AXES)})")
        grid[name] = _values(values)
    return grid


def read_sweep_file(path: str) -> dict:
    """A JSON or YAML sweep file: ``{"grid": {name: [values]}, "seeds": [...], "parameters": {...}}``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"--sweep-file {path}: no such file")
    try:
        body = (json.loads(file.read_text()) if file.suffix == ".json" else yaml.safe_load(file.read_text()))
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise UsageError(f"--sweep-file {path}: not valid {file.suffix.lstrip('.') or 'YAML'}: "
                         f"{str(err).splitlines()[0]}") from err
    body = {} if body is None else body
    unknown = sorted(set(body) - {"grid", "seeds", "parameters"}) if isinstance(body, dict) else ["(not a mapping)"]
    if unknown:
        raise UsageError(f"--sweep-file {path}: unknown keys {unknown}; known: grid, seeds, parameters")
    grid, seeds, parameters = (body.get(k) for k in ("grid", "seeds", "parameters"))
    for key, value, example in (("grid", grid, "{target_sparsity: [0.5, 0.9]}"), ("parameters", parameters, "{epochs: 5}")):
        if value is not None and not isinstance(value, dict):
            raise UsageError(f"--sweep-file {path}: \"{key}\" must be a mapping like {example}, got {value!r}")
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if seeds is not None and (not isinstance(seeds, list) or not all(_is_int(s) for s in seeds)):
        raise UsageError(f"--sweep-file {path}: \"seeds\" must be a list of integers like [42, 43], got {seeds!r}")
    grid = {k: tuple(v) if isinstance(v, list | tuple) else (v,) for k, v in (grid or {}).items()}
    return {"grid": grid, "seeds": seeds, "parameters": dict(parameters or {})}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_grid(grid: dict) -> None:
    unknown = sorted(set(grid) - set(AXES))
    if unknown:
        raise UsageError(f"--grid {unknown[0]}: not a sweep axis; the axes are {', '.join(AXES)} "
                         "(fixed settings: -p NAME=VALUE)")
    for name, values in grid.items():
        if None in values:
            raise UsageError(f"--grid {name}: null is not a value (got {list(values)}); name each value")
        if len(set(values)) != len(values):
            raise UsageError(f"--grid {name}: a value is repeated in {list(values)}")


def _preflight(spec: SweepSpec, nb_paths: list[Path]) -> None:
    """Every point's and seed's parameters through the run's own checks (names, types, values)."""
    bad_seeds = [s for s in spec.seeds if not _is_int(s) or not 0 <= s <= SEED_MAX]
    if bad_seeds or not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise UsageError(f"--seeds {list(spec.seeds)}: expected distinct integers in 0..{SEED_MAX} (NumPy's seed range)")
    fixed = {"results_dir": str(spec.root), "smoke": spec.smoke, "seed": spec.seeds[0], "device": spec.device}
    plan = plan_parameters(nb_paths, fixed, spec.overrides)  # unknown name or wrong type: UsageError
    check_values(plan, spec.overrides, {**RESERVED, **dict.fromkeys(AXES, "--grid")})
    by_id = {notebook_id(p): p for p in nb_paths}
    for axis in [*({"target_sparsity": s} for s in spec.sparsities),
                 *({"prune_method": m} for m in spec.methods)]:
        try:
            plan_parameters([by_id["03"]], fixed, axis)
            check_values({by_id["03"]: axis}, axis, reserved={})  # PruneConfig refuses 1.5
        except UsageError as err:
            raise UsageError(str(err).replace("-p ", "--grid ", 1)) from err


def make_spec(args, notebook_dir: Path | None = None) -> SweepSpec:
    """The sweep of the command line ``args`` (``cli.parse_args``'s ``sweep``), checked; UsageError if not."""
    found = {notebook_id(p): p for p in discover(notebook_dir)}
    missing = [nb for nb in (*SEED_NOTEBOOKS, *POINT_NOTEBOOKS) if nb not in found]
    if missing:
        raise UsageError(f"no notebook {', '.join(missing)} in {notebook_dir}")
    nb_paths = [found[nb] for nb in (*SEED_NOTEBOOKS, *POINT_NOTEBOOKS)]
    declared = {notebook_id(p): set(papermill.inspect_notebook(str(p))) for p in nb_paths}
    from_file = read_sweep_file(args.sweep_file) if args.sweep_file else {"grid": {}, "seeds": None, "parameters": {}}
    grid = {**from_file["grid"], **parse_grid(args.grid)}
    _check_grid(grid)
    default_grid, default_seeds = (SMOKE_GRID, SMOKE_SEEDS) if args.smoke else (DEFAULT_GRID, DEFAULT_SEEDS)
    grid = {**default_grid, **grid}
    if args.seeds is not None and not args.seeds.replace(",", "").strip():
        raise UsageError("--seeds is empty; name seeds, e.g. --seeds 42,43 (or leave --seeds out for the default)")
    seeds = _values(args.seeds) if args.seeds is not None else tuple(default_seeds if from_file["seeds"] is None else from_file["seeds"])
    spec = SweepSpec(
        output=check_output(args.output),
        sparsities=tuple(float(s) if isinstance(s, int | float) and not isinstance(s, bool) else s
                         for s in grid["target_sparsity"]),
        methods=tuple(grid["prune_method"]), seeds=tuple(seeds), smoke=args.smoke, device=args.device,
        overrides={**from_file["parameters"], **dict(args.parameters)}, notebooks=found, declared=declared,
        batch=getattr(args, "batch", None) or 1000, threads=getattr(args, "threads", None))
    if spec.batch < 1 or (spec.threads is not None and spec.threads < 1):
        raise UsageError(f"--batch {spec.batch} / --threads {spec.threads}: expected counts >= 1")
    _preflight(spec, nb_paths)
    check_kernel(getattr(args, "kernel", "python3"))  # a sweep with a bad kernel would fail every point
    resolve_device(spec.device)  # --device cuda without a GPU: refused here, not in every point
    return spec
