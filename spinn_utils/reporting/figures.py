"""Cell 9's six figures, drawn from a run's results files only, PNG and PDF in ``results/figures/``.

One colour per model across every figure (Okabe & Ito, "Color Universal Design", 2008: a
colour-blind-safe palette). Built on ``matplotlib.figure.Figure`` without pyplot: no GUI backend
or global figure state, so they render the same under Agg, in Colab and in tests.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter
from pydantic import Field

from ..core.io import atomic_path
from ..core.metrics import r2_score
from ..core.overrides import Count, StageConfig
from ..core.paths import ResultsPaths
from ..core.registry import FIGURE_FORMATS, FIGURES, LABELS, PREDICTIONS_FILE, VARIANT, VARIANTS
from ..core.results_schema import ParamCount, Pruning, RegressionReport
from ..core.results_schema_eval import Benchmark, BenchmarkSkipped, CrossValidation
from ..data.schema import CUM_TIME_COL
from .results import RunResults, bench_measured, evaluation_part, load_results, outputs_match

MEASURED_COLOUR = "#000000"
TARGET_LABELS = {
    "tool_wear_vb_mm": "Tool wear VB (mm)",
    "thermal_displacement_um": "Thermal displacement (µm)",
}


class FigureConfig(StageConfig):
    dpi: Count = 200  # raster resolution of the PNGs: print quality (>= 150)
    formats: tuple[str, ...] = FIGURE_FORMATS  # PNG to look at, PDF (vector) for the paper
    # Figure width in inches; readable in a notebook and on a page.
    width_in: float = Field(10.0, gt=0)
    max_experiments: Count = 6  # wear-over-time panels: more than this becomes unreadable
    max_points: Count = 4000  # scatter points per model and panel (sampled beyond: file size)
    seed: int = 0  # which points are sampled when there are more than max_points
    # Prediction figures: masked SPINN is omitted because notebook 08 asserts it equals COO.
    prediction_models: tuple[str, ...] = (VARIANTS.dense, VARIANTS.coo, VARIANTS.structured)

    @classmethod
    def smoke_test(cls) -> FigureConfig:
        """Same figures at the lowest resolution the house style allows: faster to write."""
        return cls(dpi=150, max_points=500)


def style(name: str) -> tuple[str, str]:
    """(label, colour) of a model or variant; unknown names get grey and their own name."""
    variant = VARIANT.get(name)
    return (variant.label, variant.colour) if variant else (name, "#999999")


def target_label(name: str) -> str:
    return TARGET_LABELS.get(name, name)


def save_figure(fig: Figure, directory: Path, stem: str, cfg: FigureConfig) -> list[Path]:
    """Write ``stem.png`` / ``stem.pdf`` atomically; returns the paths."""
    out = []
    for fmt in cfg.formats:
        path = Path(directory) / f"{stem}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=cfg.dpi)
        out.append(path)
    return out


def numbered_front(cfg: FigureConfig, height_in: float) -> tuple[Figure, object, object]:
    """(figure, plot axes, key axes): a plot whose front points carry numbers and a key beside it
    listing their names (``label_front``), so long labels never overlap each other or the data."""
    fig, axes = figure(cfg, height_in, ncols=2, gridspec_kw={"width_ratios": (3, 1)})
    ax, key = axes[0]
    key.axis("off")
    return fig, ax, key


def label_front(ax, key, front: list[tuple[float, float, str]], lw: float = 1.0) -> None:
    """Join the front's (x, y, name) points with a step line on ``ax``, number them there and list
    their names in ``key``, so long labels never overlap each other or the data."""
    if front:
        xs, ys, _ = zip(*front)
        ax.step(xs, ys, where="post", color="black", lw=lw, label="Pareto front")
        for i, (x, y, _) in enumerate(front, 1):
            ax.annotate(str(i), (x, y), fontsize=7, xytext=(3, -9), textcoords="offset points")
        names = "\n".join(f"{i}: {name}" for i, (_, _, name) in enumerate(front, 1))
        key.text(0.0, 1.0, f"Pareto front\n{names}", transform=key.transAxes, fontsize=7, va="top")


def key_legend(ax, key) -> None:
    """The plot's legend beside it in ``key``, off the data; one entry per label."""
    handles, labels = ax.get_legend_handles_labels()
    keep = dict(zip(labels, handles))
    key.legend(keep.values(), keep.keys(), fontsize=7, loc="lower left")


def figure(cfg: FigureConfig, height_in: float, ncols: int = 1, nrows: int = 1, **kw):
    """(figure, 2-D array of axes) at ``cfg.width_in`` wide, constrained layout."""
    fig = Figure(figsize=(cfg.width_in, height_in), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def fig_parameters(models: dict[str, tuple[ParamCount, int | None]], cfg: FigureConfig) -> Figure:
    """Bars: non-zero vs stored parameters, and weight storage in MB (indices counted);
    ``models`` maps a variant to (its parameter counts, its weight bytes or None)."""
    names = list(models)
    x = np.arange(len(names))
    colours = [style(n)[1] for n in names]
    fig, axes = figure(cfg, 4.2, ncols=2)
    ax = axes[0, 0]
    ax.bar(x, [models[n][0].total for n in names], color="none", edgecolor=colours, hatch="//",
           label="stored (zeros included)")
    bars = ax.bar(x, [models[n][0].nonzero for n in names], color=colours, label="non-zero")
    ax.bar_label(bars, [f"{models[n][0].nonzero:,}" for n in names], fontsize=8)
    ax.set(title="Parameters per model", ylabel="parameters")
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    mb = [np.nan if models[n][1] is None else models[n][1] / 1e6 for n in names]
    ax.bar_label(ax.bar(x, mb, color=colours), [f"{v:.2f}" if np.isfinite(v) else "" for v in mb],
                 fontsize=8)
    ax.set(title="Weight storage (values + indices)", ylabel="MB (1e6 bytes)")
    for ax in axes[0]:
        ax.set_xticks(x, [style(n)[0] for n in names], rotation=25, ha="right", fontsize=8)
    return fig


def fig_r2(test_models: dict[str, RegressionReport], cv: CrossValidation | None, cfg: FigureConfig) -> Figure:
    """Grouped bars of R2 per output and mean per-output R2; CV mean +- std beside them
    (``cv`` None: skipped by design, ``run_cv=False``)."""
    names = list(test_models)
    targets = list(next(iter(test_models.values())).per_output)
    groups = [*targets, "mean_r2"]
    has_cv = cv is not None
    fig, axes = figure(cfg, 4.2, ncols=2 if has_cv else 1,
                        **({"gridspec_kw": {"width_ratios": [2, 1]}} if has_cv else {}))
    ax, width = axes[0, 0], 0.8 / len(names)
    for i, n in enumerate(names):
        rep = test_models[n]
        vals = [rep.per_output[t].r2 for t in targets] + [rep.mean_r2]
        label, colour = style(n)
        ax.bar(np.arange(len(groups)) + (i - (len(names) - 1) / 2) * width, vals, width,
               color=colour, label=label)
    ax.set_xticks(np.arange(len(groups)), [target_label(t) for t in targets] + ["Mean per-output"])
    ax.axhline(0, color="#444444", lw=0.8)
    ax.set(title="Test split: R2 per output", ylabel="R2")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=len(names),
               fontsize=8)
    if has_cv:
        ax = axes[0, 1]
        cv_models = (("dense", VARIANTS.dense, LABELS[VARIANTS.dense]), ("spinn", VARIANTS.masked, "SPINN (IMP)"))
        for i, (model, colour_of, label) in enumerate(cv_models):
            fold_stats = getattr(cv, model)
            stats = [fold_stats.per_output[t].r2 for t in targets] + [fold_stats.mean_r2]
            ax.errorbar(np.arange(len(groups)) + (i - 0.5) * 0.3, [s.mean for s in stats],
                        yerr=[s.std for s in stats], fmt="o", capsize=4,
                        color=style(colour_of)[1], label=label)
        short = [target_label(t).split(" (")[0] for t in targets]
        ax.set_xticks(np.arange(len(groups)), [*short, "Mean"], fontsize=8)
        ax.axhline(0, color="#444444", lw=0.8)
        ax.set(title=f"Leave-experiments-out CV\n{cv.n_folds} folds, mean ± std",
               ylabel="R2")
        ax.legend(fontsize=8)
    return fig


def _latency_panel(ax, bench: Benchmark, threads, title: str) -> None:
    rows = pd.DataFrame([r.model_dump() for r in bench.results if r.threads == threads])
    for variant, part in rows.groupby("variant", sort=False):
        part = part.sort_values("batch_size")
        label, colour = style(variant)
        match = outputs_match(bench, variant)
        ax.plot(part["batch_size"], part["median_ms"], marker="o", color=colour,
                ls="-" if match is not False else ":",
                label=label + ("" if match is not False else " (outputs differ)"))
    ax.set(xscale="log", yscale="log", xlabel="batch size (samples)",
           ylabel="median latency (ms)", title=title)
    ax.grid(True, which="both", alpha=0.3)


def fig_latency(cpu: Benchmark | BenchmarkSkipped | None, gpu: Benchmark | BenchmarkSkipped | None,
                cfg: FigureConfig) -> Figure:
    """Latency vs batch size per variant, log-log: CPU per thread count, then GPU if measured."""
    panels = []
    for device, bench in (("CPU", cpu), ("GPU", gpu)):
        if not bench_measured(bench):
            continue
        where = bench.environment.device_name
        for threads in sorted({r.threads for r in bench.results}, key=lambda t: t or 0):
            suffix = f", {threads} thread{'s' if threads != 1 else ''}" if device == "CPU" else ""
            panels.append((bench, threads, f"{device}{suffix}\n{where or ''}".strip()))
    fig, axes = figure(cfg, 4.4, ncols=max(1, len(panels)))
    for ax, (bench, threads, title) in zip(axes[0], panels):
        _latency_panel(ax, bench, threads, title)
    if panels:
        axes[0, 0].legend(fontsize=7)
    if not bench_measured(gpu):
        # The reason's first clause ("no CUDA GPU") is enough here; the JSON has all of it.
        reason = f": {gpu.reason.split(':')[0]}" if isinstance(gpu, BenchmarkSkipped) else ""
        fig.suptitle(f"Median latency vs batch size (GPU not measured{reason})", fontsize=9)
    return fig


def _shown_models(pred: pd.DataFrame, cfg: FigureConfig) -> pd.DataFrame:
    """The rows of ``cfg.prediction_models`` (all rows if none of them is present)."""
    shown = pred[pred["model"].isin(cfg.prediction_models)]
    return shown if len(shown) else pred


def fig_pred_vs_measured(pred: pd.DataFrame, cfg: FigureConfig) -> Figure:
    """Scatter of predicted vs measured per target (test split), one colour per model."""
    pred = _shown_models(pred, cfg)
    targets = list(dict.fromkeys(pred["target"]))
    fig, axes = figure(cfg, 4.6, ncols=len(targets))
    for ax, target in zip(axes[0], targets):
        part = pred[pred["target"] == target]
        both = part[["measured", "predicted"]].to_numpy()
        lo, hi = np.nanmin(both), np.nanmax(both)
        ax.plot([lo, hi], [lo, hi], color=MEASURED_COLOUR, lw=1, ls="--", label="ideal (y = x)")
        for model, rows in part.groupby("model", sort=False):
            y, p = rows["measured"].to_numpy(), rows["predicted"].to_numpy()
            r2 = float(r2_score(y, p)[0])
            shown = (rows if len(rows) <= cfg.max_points
                     else rows.sample(cfg.max_points, random_state=cfg.seed))
            label, colour = style(model)
            ax.scatter(shown["measured"], shown["predicted"], s=6, alpha=0.4, color=colour,
                       label=f"{label} (R2 {r2:.3f})")
        name = target_label(target)
        ax.set(title=f"Test split: {name}", xlabel=f"measured {name[0].lower()}{name[1:]}",
               ylabel=f"predicted {name[0].lower()}{name[1:]}")
        ax.legend(fontsize=7, markerscale=2)
    return fig


PREDICTION_KEYS = {"sample", "experiment", "run", "model", "target", "measured", "predicted", CUM_TIME_COL}


def fig_wear_over_time(pred: pd.DataFrame, cfg: FigureConfig) -> Figure:
    """Measured and predicted tool wear (the first target) over cumulative cutting time, one panel
    per experiment, each model one curve across all its runs. The time is ``CUM_TIME_COL`` (runs
    joined where time restarts in each run), else the predictions' own time column."""
    target = pred["target"].iloc[0]
    time_col = (CUM_TIME_COL if CUM_TIME_COL in pred
                else next(c for c in pred.columns if c not in PREDICTION_KEYS))
    part = _shown_models(pred, cfg)
    part = part[part["target"] == target]
    experiments = list(dict.fromkeys(part["experiment"]))[: cfg.max_experiments]
    ncols = min(3, len(experiments))
    nrows = int(np.ceil(len(experiments) / ncols))
    fig, axes = figure(cfg, 3.0 * nrows + 0.6, ncols=ncols, nrows=nrows, sharey=True)
    for ax, exp in zip(axes.flat, experiments):
        rows = part[part["experiment"] == exp].sort_values(time_col)
        first = rows[rows["model"] == rows["model"].iloc[0]]
        ax.scatter(first[time_col], first["measured"], s=8, color=MEASURED_COLOUR, label="measured")
        for model, m in rows.groupby("model", sort=False):
            curve = m.groupby(time_col)["predicted"].mean()  # windows of one run share a time
            label, colour = style(model)
            ax.plot(curve.index, curve.to_numpy(), color=colour, lw=1.5, label=label)
        ax.set(title=f"Test experiment {exp}", xlabel="cumulative cutting time (min)",
               ylabel=target_label(target))
    for ax in list(axes.flat)[len(experiments):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{target_label(target)} over cutting time: measured vs predicted (test split)")
    return fig


def fig_pruning(pruning: Pruning, cfg: FigureConfig) -> Figure:
    """Sparsity and validation R2 per IMP stage; dense and structured SPINN for reference."""
    stages = pruning.unstructured.stages
    x = [s.stage for s in stages]
    fig, axes = figure(cfg, 4.2, ncols=2)
    ax = axes[0, 0]
    bars = ax.bar(x, [100 * s.sparsity for s in stages], color=style(VARIANTS.masked)[1])
    ax.bar_label(bars, [f"{s.params.nonzero:,}" for s in stages], fontsize=8)
    ax.set(title="Sparsity per pruning stage (labels: non-zero parameters)",
           xlabel="stage (0 = trained dense)", ylabel="sparsity of all parameters (%)")
    ax.set_xticks(x)
    ax = axes[0, 1]
    targets = list(stages[0].val_metrics.per_output)
    for t, ls in zip(targets, ("--", ":")):
        ax.plot(x, [s.val_metrics.per_output[t].r2 for s in stages], marker="s", ls=ls,
                color=style(VARIANTS.masked)[1], label=target_label(t))
    ax.plot(x, [s.val_metrics.mean_r2 for s in stages], marker="o", lw=2,
            color=style(VARIANTS.masked)[1], label="mean per-output R2")
    structured = pruning.structured.val_metrics.mean_r2
    if structured is not None:
        ax.axhline(structured, color=style(VARIANTS.structured)[1], lw=1.5,
                   label=f"structured SPINN ({structured:.3f})")
    ax.set(title="Validation R2 per pruning stage", xlabel="stage (0 = trained dense)", ylabel="R2")
    ax.set_xticks(x)
    ax.legend(fontsize=8)
    return fig


def model_sizes(results: RunResults) -> dict[str, tuple[ParamCount, int | None]]:
    """{variant: (parameter counts, weight bytes)} from the CPU benchmark (else the GPU one),
    else from notebook 05 (no storage measured there: None)."""
    for bench in (results.cpu_benchmark, results.gpu_benchmark):
        if isinstance(bench, Benchmark) and bench.variants:
            return {n: (v.params, v.storage_bytes) for n, v in bench.variants.items()}
    verified = results.model_verification
    return {} if verified is None else {name: (entry.params, None) for name, entry in verified.models.items()}


class FigureFiles(NamedTuple):
    written: dict[str, list[Path]]  # figure name -> its PNG and PDF
    skipped: dict[str, str]  # figure name -> the input the run lacks


def make_figures(paths: ResultsPaths, cfg: FigureConfig | None = None) -> FigureFiles:
    """Every figure whose inputs exist in the run at ``paths``, written; the others, why not."""
    cfg, results = cfg or FigureConfig(), load_results(paths)
    pred = pd.read_csv(paths.predictions) if paths.predictions.is_file() else None
    test = None if results.test_evaluation is None else results.test_evaluation.models
    cpu, gpu, sizes = results.cpu_benchmark, results.gpu_benchmark, model_sizes(results)
    timed, pruning = bench_measured(cpu) or bench_measured(gpu), results.pruning
    cv = evaluation_part(results, "cross_validation")
    staged = bool(pruning and pruning.unstructured.stages)
    no_pred = f"no metrics/{PREDICTIONS_FILE}"
    plan = {  # name: (its inputs are there, what the run lacks otherwise, how to draw it)
        FIGURES.parameters: (bool(sizes), "no cpu_benchmark.json or model_verification.json",
                             lambda: fig_parameters(sizes, cfg)),
        FIGURES.r2_per_output: (bool(test), "no test_evaluation.json",
                                lambda: fig_r2(test, cv, cfg)),
        FIGURES.latency_vs_batch: (timed, "no measured benchmark JSON",
                                   lambda: fig_latency(cpu, gpu, cfg)),
        FIGURES.predicted_vs_measured: (pred is not None, no_pred,
                                        lambda: fig_pred_vs_measured(pred, cfg)),
        FIGURES.wear_over_time: (pred is not None, no_pred,
                                 lambda: fig_wear_over_time(pred, cfg)),
        FIGURES.pruning_progression: (staged, "no pruning.json", lambda: fig_pruning(pruning, cfg)),
    }
    written = {name: save_figure(draw(), paths.figures, name, cfg)
               for name, (ok, _, draw) in plan.items() if ok}
    return FigureFiles(written, {name: why for name, (ok, why, _) in plan.items() if not ok})
