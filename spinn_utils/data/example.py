"""A worked example of bringing your own data: a milling CSV with its own column names.

``python -m spinn_utils.data.example --output-dir DIR`` writes ``milling.csv`` (the embedded data
renamed, with a ``run_no`` run order and a ``split`` column) and ``milling.json``, the description
naming those columns (docs/data.md). An existing file of either name is replaced only when it is
the example's own, or with ``--force``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..core.errors import SpinnError
from ..core.io import atomic_path, write_json
from .schema import GROUP_COL, RUN_COL, SENSOR_CHANNELS, TARGETS, TIME_COL
from .splits import split_groups
from .synthetic import SyntheticConfig, generate_milling

# Our names -> the example CSV's names.
RENAME = {
    GROUP_COL: "experiment_id", RUN_COL: "run_no", TIME_COL: "time", "depth_of_cut_mm": "depth_of_cut",
    "feed_mm_rev": "feed_rate", "material_code": "material",
    **{f"{ch}_{stat}": f"{ch}_{stat}" for ch in SENSOR_CHANNELS for stat in ("mean", "rms")},
    TARGETS[0]: "tool_wear", TARGETS[1]: "thermal_displacement",
}
INPUTS = [RENAME[c] for c in ("depth_of_cut_mm", "feed_mm_rev", "material_code")] + [
    f"{ch}_{stat}" for ch in SENSOR_CHANNELS for stat in ("mean", "rms")]


def example_description() -> dict:
    """The data description of the example CSV (what ``milling.json`` holds)."""
    return {
        "group_col": "experiment_id",
        "time_col": "time",  # not listed among the features: notebook 01 adds it as an input
        "run_col": "run_no",  # time order is (run, time): a time that restarts per run is joined
        "feature_cols": INPUTS,
        "target_cols": ["tool_wear", "thermal_displacement"],
        "split_col": "split",
        "power_col": "smc_dc_mean",  # spindle DC current (A): the thermal ODE term can use it
        "power_unit": "A",
    }


HEADER = [*RENAME.values(), "split"]  # the example CSV's columns, in order: how its own file is known


def _not_ours(path: Path) -> str:
    """Why an existing ``path`` is not a file this command wrote ("" when it is)."""
    if path.is_symlink() or not path.is_file():
        return "it is not a regular file"
    with open(path, newline="", errors="replace") as f:
        first = f.readline(1 << 16)
    if path.suffix == ".csv":
        return "" if next(csv.reader([first]), []) == HEADER else "its header is not the example's"
    try:
        same = path.stat().st_size < (1 << 16) and json.loads(path.read_text()) == example_description()
    except (json.JSONDecodeError, UnicodeDecodeError):
        same = False
    return "" if same else "it is not the example's description"


def write_example(directory: str | Path, window_samples: int = 250, seed: int = 42,
                  force: bool = False) -> tuple[Path, Path]:
    """Write ``milling.csv`` and ``milling.json`` into ``directory``; returns their paths.

    Raises SpinnError, before writing anything, when either exists and is not the example's
    (``force`` replaces a regular file anyway; something else, e.g. a link, never)."""
    directory = Path(directory)
    csv_path, config_path = directory / "milling.csv", directory / "milling.json"
    for path in (csv_path, config_path):
        why = _not_ours(path) if path.exists() or path.is_symlink() else ""
        if why and (not force or why == "it is not a regular file"):
            hint = "move it away" if force else "move it away, or pass --force to replace it"
            raise SpinnError(f"{path} exists and {why}: this command replaces only its own example; {hint}")
    table = generate_milling(SyntheticConfig(seed=seed, window_samples=window_samples))
    members = split_groups(table, GROUP_COL, 2, 3, seed)
    split_of = {e: s for s, experiments in members.items() for e in experiments}
    frame = table[list(RENAME)].rename(columns=RENAME).assign(split=table[GROUP_COL].map(split_of))
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    write_json(config_path, example_description())
    return csv_path, config_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spinn_utils.data.example", description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", required=True, help="folder for milling.csv and milling.json")
    p.add_argument("--window-samples", type=int, default=250,
                   help="samples per window: 250 gives ~7,000 rows, 150 ~11,600 (default 250)")
    p.add_argument("--force", action="store_true",
                   help="replace a milling.csv / milling.json this command did not write")
    args = p.parse_args(argv)
    try:
        csv_path, config_path = write_example(args.output_dir, args.window_samples, force=args.force)
    except (SpinnError, OSError) as err:
        print(f"example: error: {err}", file=sys.stderr)
        return 2
    rows = sum(1 for _ in open(csv_path)) - 1
    print(f"wrote {csv_path} ({rows} rows) and {config_path}:\n{json.dumps(example_description(), indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
