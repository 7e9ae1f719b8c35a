import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from spinn_utils.benchmark.bench_config import BenchConfig
from spinn_utils.compression.convert import SparseConfig
from spinn_utils.compression.export import ExportConfig
from spinn_utils.compression.magnitude import PruneConfig
from spinn_utils.compression.quantize import QuantConfig
from spinn_utils.core.env import environment_info, resolve_device, set_seed
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.io import atomic_path, read_json, write_json
from spinn_utils.core.overrides import Count, StageConfig, build_config, with_overrides
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import METRICS, VARIANTS
from spinn_utils.data.schema import DataConfig
from spinn_utils.data.synthetic import SyntheticConfig
from spinn_utils.evaluation.baselines import BaselineConfig
from spinn_utils.evaluation.crossval import CrossValConfig
from spinn_utils.evaluation.verify import VerifyConfig
from spinn_utils.model.mlp import ModelConfig
from spinn_utils.model.physics import PhysicsConfig
from spinn_utils.pipeline.archive import ArtifactsConfig
from spinn_utils.reporting.figures import FigureConfig
from spinn_utils.reporting.results import ReportConfig
from spinn_utils.training.fit import TrainConfig


class _Cfg(StageConfig):
    epochs: Count = 100
    lr: float = 1e-3
    sizes: tuple[int, ...] = (1, 2)

    @classmethod
    def smoke_test(cls):
        return cls(epochs=2)


def test_with_overrides_names_unknown_field_and_validates():
    with pytest.raises(SpinnError, match=r"unknown _Cfg field\(s\) \['epohcs'\]; known: \['epochs'"):
        with_overrides(_Cfg(), epohcs=3)
    assert with_overrides(_Cfg(), epochs=3).epochs == 3
    with pytest.raises(SpinnError, match="_Cfg.epochs: .*greater than or equal to 1, got 0"):
        with_overrides(_Cfg(), epochs=0)
    with pytest.raises(SpinnError, match="_Cfg.epochs: .*valid integer, got True"):  # True is no count
        _Cfg(epochs=True)
    cfg = _Cfg(sizes=[3, 4])  # notebook parameters arrive as lists
    assert cfg.sizes == (3, 4) and hash(cfg) == hash(_Cfg(sizes=(3, 4)))
    with pytest.raises(ValidationError):  # frozen
        cfg.epochs = 5


def test_build_config_smoke_base_and_none_means_default():
    assert build_config(_Cfg, smoke=True, epochs=None).epochs == 2
    assert build_config(_Cfg, smoke=False, epochs=None, lr=0.5) == _Cfg(epochs=100, lr=0.5)


# One out-of-range (or wrongly typed) value per stage config.
BAD_VALUES = [
    (TrainConfig, "batch_size", 0), (PhysicsConfig, "thermal_ode_weight", -1.0),
    (ModelConfig, "output_dim", 0), (BenchConfig, "rotations", 0),
    (PruneConfig, "target_sparsity", 1.0), (SparseConfig, "atol", 0.0),
    (QuantConfig, "parity_rtol", 10.0), (ExportConfig, "parity_rtol", 1.0),
    (DataConfig, "val_experiments", 0), (SyntheticConfig, "window_samples", 0),
    (VerifyConfig, "target_sparsity", 1.0), (CrossValConfig, "cv_folds", 1),
    (BaselineConfig, "ridge_alpha", -1.0), (ReportConfig, "batch_size", True),
    (FigureConfig, "width_in", 0.0), (ArtifactsConfig, "data_patterns", "*.json"),
]


@pytest.mark.parametrize(("cls", "field", "value"), BAD_VALUES, ids=[c.__name__ for c, _, _ in BAD_VALUES])
def test_a_bad_config_value_is_one_line_naming_config_field_and_value(cls, field, value):
    with pytest.raises(SpinnError) as err:
        cls(**{field: value})
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{cls.__name__}.{field}") and repr(value) in message


def test_set_seed_repeats_torch_draws():
    set_seed(3)
    a = torch.randn(4)
    set_seed(3)
    assert torch.equal(a, torch.randn(4))


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SpinnError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SpinnError, match="no CUDA"):
            resolve_device("cuda")


def test_write_json_is_atomic_and_rejects_nan(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"a": 1, "t": (1, 2)})
    assert json.loads(path.read_text()) == {"a": 1, "t": [1, 2]}
    write_json(path, {"nan": float("nan")})  # NaN becomes null, never invalid JSON
    assert json.loads(path.read_text()) == {"nan": None}
    write_json(path, {"a": np.array([1.0, np.nan]), "b": np.float64("inf"), "c": torch.tensor(float("nan"))})
    assert json.loads(path.read_text()) == {"a": [1.0, None], "b": None, "c": None}
    write_json(path, {"nan": float("nan")})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"nan": None}  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # no temp left


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_read_json_errors(tmp_path):
    with pytest.raises(SpinnError, match="not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpinnError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_results_paths_contract(tmp_path):
    paths = ResultsPaths.at(tmp_path).ensure()
    assert paths.checkpoint(VARIANTS.dense) == tmp_path / "checkpoints" / f"{VARIANTS.dense}.pt"
    assert paths.metric(METRICS.pruning) == tmp_path / "metrics" / "pruning.json"
    assert all(d.is_dir() for d in (paths.data, paths.metrics, paths.figures, paths.tables))


def test_environment_info_records_versions_and_threads():
    info = environment_info("cpu")
    assert info.torch_version == torch.__version__
    assert info.torch_threads == torch.get_num_threads()
    assert info.device == "cpu" and info.device_name
    assert "gpu_name" not in info.model_dump()  # off CUDA the GPU keys are absent, not null
