"""Shared test set-up: one thread for tiny models, one tiny prepared data set, a results folder
with tiny checkpoints."""
import numpy as np
import pandas as pd
import pytest
import torch
from builders import saved_run

from spinn_utils.data.dataset import PreparedData, make_prepared
from spinn_utils.data.prepare import prepare
from spinn_utils.data.schema import (
    DEFAULT_FEATURES,
    GROUP_COL,
    RUN_COL,
    TARGETS,
    TIME_COL,
    DataConfig,
)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tests use tiny models that gain nothing from threads; on a busy 2-core machine, idle-
    spinning OpenMP threads made training tests ~50x slower. Restored at the end."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def milling_frame(experiments, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Random windows of the default 18 inputs whose targets follow the physics terms' shapes:
    wear grows with cutting time and feed, displacement approaches a current-driven level."""
    parts = []
    for e in experiments:
        t = np.linspace(0.0, 40.0, rows)
        frame = pd.DataFrame(rng.normal(size=(rows, len(DEFAULT_FEATURES))), columns=list(DEFAULT_FEATURES))
        frame.insert(0, GROUP_COL, e)
        frame.insert(1, RUN_COL, np.arange(rows) // 2)
        frame[TIME_COL] = t
        frame["smc_dc_mean"] = rng.uniform(5.0, 12.0, rows)  # above the 2 A idle current
        frame[TARGETS[0]] = 0.1 + 0.01 * t + 0.05 * frame["feed_mm_rev"] + 0.01 * rng.normal(size=rows)
        frame[TARGETS[1]] = (0.3 * frame["smc_dc_mean"] * (1 - np.exp(-t / 8.0))
                             + 0.1 * rng.normal(size=rows))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def make_data():
    """Factory of tiny PreparedData: ``make_data(train=4, val=1, test=1, rows=30, seed=0)``
    experiments per split (numbered 0.., never shared), scaler fitted on train."""
    def make(train: int = 4, val: int = 1, test: int = 1, rows: int = 30, seed: int = 0) -> PreparedData:
        rng = np.random.default_rng(seed)
        ids = np.arange(train + val + test)
        groups = {"train": ids[:train], "val": ids[train:train + val], "test": ids[train + val:]}
        frames = {s: milling_frame(g, rows, rng) for s, g in groups.items()}
        return make_prepared(frames, DEFAULT_FEATURES, TARGETS)
    return make


@pytest.fixture
def run(tmp_path, make_data):
    """(paths, data): tiny dense, spinn_masked and spinn_structured checkpoints (``builders.saved_run``)
    in ``tmp_path/results``, with their 12-row data."""
    data = make_data(rows=12)
    return saved_run(tmp_path / "results", data), data


@pytest.fixture(scope="session")
def smoke_data() -> PreparedData:
    """The embedded data's smoke set, prepared once for the session: read it, never change it."""
    return prepare(DataConfig.smoke_test())
