"""The table every data source ends as: column names, targets, splits, and its description.

One row per window of a cutting run: a group key (``experiment``), a run index, the inputs and
two targets, flank wear VB (mm) and thermal displacement (um). ``DataConfig`` names the source
and the columns (defaults match the embedded synthetic data); see docs/data.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import SpinnError

TARGETS = ("tool_wear_vb_mm", "thermal_displacement_um")
GROUP_COL = "experiment"  # split key: a case / insert set
RUN_COL = "run"
TIME_COL = "cut_time_min"  # cumulative cutting time within the experiment (an input, too)
SENSOR_CHANNELS = ("smc_ac", "smc_dc", "vib_table", "vib_spindle", "ae_table", "ae_spindle")
DEFAULT_FEATURES = (
    "depth_of_cut_mm",
    "feed_mm_rev",
    "material_code",  # 1 cast iron, 2 steel (as in mill.mat)
    "cutting_speed_m_min",
    TIME_COL,
    "run_index",
    *(f"{ch}_{stat}" for ch in SENSOR_CHANNELS for stat in ("mean", "rms")),
)
SPLITS = ("train", "val", "test")
UNITS = ("mm", "um", "min", "s", "kw", "w", "a", "v", "c", "k", "hz")  # name suffixes read as units


def target_unit(name: str) -> str:
    """The unit a column name ends with ("tool_wear_vb_mm" -> "mm"), or "" when it names none."""
    suffix = name.rsplit("_", 1)[-1].lower() if "_" in name else ""
    return suffix if suffix in UNITS else ""


@dataclass(frozen=True)
class DataConfig:
    data_path: str = ""  # "" = embedded synthetic milling data; *.mat = NASA mill.mat; *.csv = your table
    group_col: str = GROUP_COL  # rows of one experiment are near-duplicates: splits never share one
    time_col: str = TIME_COL  # cumulative cutting time (min): orders rows; physics differentiates by it
    feature_cols: tuple[str, ...] = DEFAULT_FEATURES  # the 18 inputs of docs/data.md (18 -> ... gives 666,882 params)
    target_cols: tuple[str, ...] = TARGETS  # flank wear VB (mm), thermal displacement (um)
    split_col: str = ""  # CSV column giving each row's split (train/val/test); "" = seeded split
    val_experiments: int = 2  # early stopping needs unseen experiments; 16 in all is few
    test_experiments: int = 3  # 3 of 16: room for both materials, 11 left to train on
    seed: int = 42  # fixes the synthetic data and which experiments go to val/test
    window_samples: int = 250  # samples per window (synthetic and mill.mat): 1 s at 250 Hz
    fail_on_leakage: bool = True  # a failed leakage check stops the run unless you opt out

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_cols", tuple(self.feature_cols))
        object.__setattr__(self, "target_cols", tuple(self.target_cols))
        for name in ("val_experiments", "test_experiments", "window_samples"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise SpinnError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.feature_cols or not self.target_cols:
            raise SpinnError("feature_cols and target_cols must each name at least one column")

    @classmethod
    def smoke_test(cls) -> DataConfig:
        return cls(window_samples=1500)  # 6 windows per run: ~1,000 rows, all 16 experiments
