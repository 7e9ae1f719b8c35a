"""Figures from small fake results: every figure written as a non-empty PNG and PDF (Agg)."""
import matplotlib

matplotlib.use("Agg")  # before anything draws: headless, as in CI and papermill

import numpy as np
import pandas as pd
import pytest
from results_factory import evolve, fake_pruning, fake_results, write_results

from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import FIGURES, LABELS, METRICS, PREDICTIONS_FILE, VARIANTS, names
from spinn_utils.core.results_files import write_result
from spinn_utils.reporting.figures import (
    FigureConfig,
    fig_latency,
    fig_pred_vs_measured,
    fig_wear_over_time,
    make_figures,
    style,
)

NAMES = (FIGURES.latency_vs_batch, "parameters", FIGURES.predicted_vs_measured, FIGURES.pruning_progression,
         FIGURES.r2_per_output, FIGURES.wear_over_time)


def fake_predictions(n_per_experiment: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for exp in (3, 7, 11):
        t = np.linspace(0, 40, n_per_experiment)
        truth = {"tool_wear_vb_mm": 0.1 + 0.015 * t, "thermal_displacement_um": 5 * (1 - np.exp(-t / 8))}
        for model in ("dense", VARIANTS.masked, VARIANTS.coo, VARIANTS.structured):
            for target, y in truth.items():
                parts.append(pd.DataFrame({
                    "sample": np.arange(len(t)), "experiment": exp, "run": np.arange(len(t)) // 3,
                    "cut_time_min": t, "model": model, "target": target, "measured": y,
                    "predicted": y + rng.normal(0, 0.05 * y.std() + 1e-3, len(t))}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def results_dir(tmp_path):
    paths = ResultsPaths.at(tmp_path).ensure()
    write_results(paths, evolve(fake_results(), METRICS.pruning, fake_pruning()))
    fake_predictions().to_csv(paths.metrics / PREDICTIONS_FILE, index=False)
    return paths


def test_every_figure_is_written_as_png_and_pdf(results_dir):
    out = make_figures(results_dir, FigureConfig.smoke_test())
    assert sorted(out.written) == sorted(NAMES) and out.skipped == {}
    for name in NAMES:
        png, pdf = (results_dir.figures / f"{name}.{ext}" for ext in ("png", "pdf"))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1_000
    assert not list(results_dir.figures.glob("*.tmp"))  # atomic writes leave no temp files


def test_missing_inputs_are_skipped_with_a_reason(tmp_path):
    paths = ResultsPaths.at(tmp_path).ensure()
    write_result(paths.metric(METRICS.cpu_benchmark), fake_results().cpu_benchmark)
    out = make_figures(paths, FigureConfig.smoke_test())
    assert set(out.written) == {FIGURES.latency_vs_batch, "parameters"}
    assert PREDICTIONS_FILE in out.skipped[FIGURES.wear_over_time]
    assert METRICS.pruning in out.skipped[FIGURES.pruning_progression]


def test_latency_has_one_panel_per_thread_count_and_one_line_per_variant():
    res = fake_results()
    fig = fig_latency(res.cpu_benchmark, res.gpu_benchmark, FigureConfig())
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2  # threads 1 and 2; the GPU was skipped
    assert axes[0].get_xscale() == "log" and axes[0].get_yscale() == "log"
    assert len(axes[0].get_lines()) == len(res.cpu_benchmark.variants)
    assert "GPU not measured: no CUDA GPU" in fig.get_suptitle()


def test_colours_are_consistent_per_model():
    fig = fig_pred_vs_measured(fake_predictions(), FigureConfig())
    handles, labels = fig.axes[0].get_legend_handles_labels()
    coo = next(h for h, lab in zip(handles, labels) if lab.startswith(f"{LABELS[VARIANTS.coo]} (R2"))
    expected = matplotlib.colors.to_rgba(style(VARIANTS.coo)[1])
    assert tuple(coo.get_facecolor()[0][:3]) == pytest.approx(expected[:3])
    colours = [style(v)[1] for v in names(VARIANTS)]
    assert len(set(colours)) == len(colours)  # one colour per model, and every model has one


def test_wear_over_time_follows_a_csvs_own_column_names():
    pred = fake_predictions().rename(columns={"cut_time_min": "t_min"})
    pred["target"] = pred["target"].map({"tool_wear_vb_mm": "vb", "thermal_displacement_um": "delta_um"})
    fig = fig_wear_over_time(pred, FigureConfig())
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_lines()]
    assert len(panels) == 3  # one per experiment, wear ("vb") found without its default name
