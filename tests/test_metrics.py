import numpy as np
import pytest

from spinn_utils.core.metrics import r2_score, regression_report


def test_metrics_on_known_numbers():
    y = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    p = np.array([[1.0, 12.0], [2.0, 20.0], [4.0, 30.0]])
    np.testing.assert_allclose(r2_score(y, p), [1 - 1 / 2, 1 - 4 / 200])
    rep = regression_report(y, p, ["a", "b"]).per_output
    np.testing.assert_allclose([rep["a"].rmse, rep["b"].rmse], [np.sqrt(1 / 3), np.sqrt(4 / 3)])
    np.testing.assert_allclose([rep["a"].mae, rep["b"].mae], [1 / 3, 2 / 3])


def test_report_uses_mean_of_per_output_r2_not_pooled():
    rng = np.random.default_rng(0)
    y = np.column_stack([rng.normal(0, 0.1, 200), rng.normal(0, 100, 200)])
    p = y + np.column_stack([rng.normal(0, 0.1, 200), rng.normal(0, 10, 200)])
    rep = regression_report(y, p, ["wear", "thermal"])
    per = [rep.per_output[k].r2 for k in ("wear", "thermal")]
    assert rep.mean_r2 == pytest.approx(np.mean(per))
    assert per[0] < 0.2 < 0.9 < per[1]  # a pooled R2 would hide the poor wear fit
    with pytest.raises(ValueError):
        regression_report(y, p[:, :1], ["wear", "thermal"])
