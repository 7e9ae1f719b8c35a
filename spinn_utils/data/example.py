"""A worked example of bringing your own data: a milling CSV with its own column names.

    python -m spinn_utils.data.example --output-dir my_data

writes ``my_data/milling.csv`` and ``my_data/milling.json``. The CSV is the embedded synthetic
milling data as another pipeline would have processed it: its own names (``experiment_id``,
``time``, ``tool_wear``, ...), no run-index input, no constant cutting-speed column, and a
``split`` column fixing each experiment's split. The JSON is the data description that
names those columns once for ``run_all.py --data ... --data-config ...`` (docs/data.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import SpinnError
from ..core.io import atomic_path, write_json
from .schema import GROUP_COL, SENSOR_CHANNELS, TARGETS, TIME_COL
from .splits import split_groups
from .synthetic import SyntheticConfig, generate_milling

# Our names -> the example CSV's names.
RENAME = {
    GROUP_COL: "experiment_id", TIME_COL: "time", "depth_of_cut_mm": "depth_of_cut",
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
        "feature_cols": INPUTS,
        "target_cols": ["tool_wear", "thermal_displacement"],
        "split_col": "split",
        "power_col": "smc_dc_mean",  # spindle DC current (A): the thermal ODE term can use it
        "power_unit": "A",
    }


def write_example(directory: str | Path, window_samples: int = 250, seed: int = 42) -> tuple[Path, Path]:
    """Write ``milling.csv`` and ``milling.json`` into ``directory``; returns their paths."""
    directory = Path(directory)
    table = generate_milling(SyntheticConfig(seed=seed, window_samples=window_samples))
    members = split_groups(table, GROUP_COL, 2, 3, seed)
    split_of = {e: s for s, experiments in members.items() for e in experiments}
    frame = table[list(RENAME)].rename(columns=RENAME).assign(split=table[GROUP_COL].map(split_of))
    csv_path, config_path = directory / "milling.csv", directory / "milling.json"
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    write_json(config_path, example_description())
    return csv_path, config_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spinn_utils.data.example", description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", required=True, help="folder for milling.csv and milling.json")
    p.add_argument("--window-samples", type=int, default=250,
                   help="samples per window: 250 gives ~7,000 rows, 150 ~11,600 (default 250)")
    args = p.parse_args(argv)
    try:
        csv_path, config_path = write_example(args.output_dir, args.window_samples)
    except (SpinnError, OSError) as err:
        print(f"example: error: {err}", file=sys.stderr)
        return 2
    rows = sum(1 for _ in open(csv_path)) - 1
    print(f"wrote {csv_path} ({rows} rows) and {config_path}:\n{json.dumps(example_description(), indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
