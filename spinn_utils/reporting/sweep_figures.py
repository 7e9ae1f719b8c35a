"""The sparsity sweep's three figures, drawn from ``sweep/sweep.json`` only, PNG and PDF in
``<results>/sweep/figures/`` (docs/sweeps.md); colours and labels are notebook 09's (``style``).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..core.registry import SWEEP_DIR, SWEEP_FIGURES, VARIANTS
from ..core.results_schema_sweep import Sweep
from .figures import (
    FigureConfig,
    figure,
    key_legend,
    label_front,
    numbered_front,
    save_figure,
    style,
)
from .sweep_report import (
    METHODS,
    REPRESENTATIONS,
    SPARSE_STORAGE,
    STRUCTURED,
    accuracy,
    batches,
    break_even,
    dense_r2,
    latency,
    pareto_points,
    percent,
    sparsities,
)

METHOD_STYLE = {"magnitude": ("magnitude pruning", "#E69F00"), "random": ("random pruning (control)", "#999999"),
                STRUCTURED: ("structured (neurons removed)", "#009E73")}


def _percent_axis(ax, levels: list[float]) -> None:
    ax.set_xticks(levels, [percent(s).replace(".0%", "%") for s in levels], rotation=45)  # 95% and 98% sit close
    ax.set_xlabel("target sparsity (share of all parameters that are zero)")


def fig_accuracy(sweep: Sweep, cfg: FigureConfig) -> Figure:
    """Test mean per-output R2 vs sparsity: mean line and +- std band per method, dense line."""
    levels = sparsities(sweep)
    fig, axes = figure(cfg, 4.5)
    ax = axes[0, 0]
    for col in (*METHODS, STRUCTURED):
        stats = [accuracy(sweep, s, col) for s in levels]
        if not any(st["points"] for st in stats):
            continue
        x = np.array([s for s, st in zip(levels, stats) if st["mean"] is not None])
        mean = np.array([st["mean"] for st in stats if st["mean"] is not None])
        std = np.array([st["std"] or 0.0 for st in stats if st["mean"] is not None])
        label, colour = METHOD_STYLE[col]
        ax.plot(x, mean, "o-" if col != "random" else "x--", color=colour, label=label)
        ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
        for s, st in zip(levels, stats):
            if st["failed"]:
                ax.annotate(f"{st['failed']} failed", (s, ax.get_ylim()[0]), color=colour, fontsize=7,
                            rotation=90, va="bottom", ha="center")
    dense = dense_r2(sweep)
    if dense["mean"] is not None:
        ax.axhline(dense["mean"], color=style(VARIANTS.dense)[1], ls="--", label=f"{style(VARIANTS.dense)[0]} (mean of seeds)")
    _percent_axis(ax, levels)
    ax.set(ylabel="test mean per-output R2", title=f"Accuracy vs sparsity (mean ± std over seeds {sweep.seeds})")
    ax.legend(fontsize=8)
    return fig


def fig_latency(sweep: Sweep, cfg: FigureConfig) -> Figure:
    """Latency vs sparsity per representation, one panel per batch, dense line, break-even marked."""
    levels = sparsities(sweep)
    timed = sorted(batches(sweep))
    fig, axes = figure(cfg, 5.5, ncols=len(timed))
    for ax, batch in zip(axes[0], timed):
        marks = []
        for v in REPRESENTATIONS:
            ms = [latency(sweep, s, v, batch)["ms"] for s in levels]
            x = [s for s, m in zip(levels, ms) if m["mean"] is not None]
            y = [m["mean"] for m in ms if m["mean"] is not None]
            err = [m["std"] or 0.0 for m in ms if m["mean"] is not None]
            if not y:
                continue
            label, colour = style(v)
            if v == VARIANTS.dense:
                ax.axhline(float(np.mean(y)), color=colour, ls="--", label=f"{label} (mean)")
                continue
            ax.errorbar(x, y, yerr=err, fmt="o-", color=colour, label=label, ms=4, capsize=2)
            if v in SPARSE_STORAGE:
                be = break_even(sweep, v, batch)
                marks.append(f"{label}: {be.text}")
                if be.sparsity is not None:
                    ax.axvline(be.sparsity, color=colour, ls=":", lw=1)
        ax.set_yscale("log")
        _percent_axis(ax, levels)
        ax.set_ylabel("median ms per call (log)")
        # The break-even note is wrapped into the title: text inside the axes would widen the layout.
        ax.set_title(f"batch {batch}\n" + textwrap.fill("break-even: " + "; ".join(marks), 60), fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=7)  # one legend for both panels
    return fig


def fig_pareto(sweep: Sweep, cfg: FigureConfig, batch: int = 1000) -> Figure:
    """Test R2 vs latency at ``batch`` for every (method, sparsity, representation); the front joined."""
    pts = pareto_points(sweep, batch)
    fig, ax, key = numbered_front(cfg, 5.0)
    for v in REPRESENTATIONS:
        label, colour = style(v)
        for random in (False, True):  # the random-pruning control drawn as crosses
            mine = [p for p in pts if p["variant"] == v and (p["method"] == "random") == random]
            if mine:
                ax.errorbar([p["ms"] for p in mine], [p["r2"] for p in mine], xerr=[p["ms_std"] or 0 for p in mine],
                            yerr=[p["r2_std"] or 0 for p in mine], fmt="x" if random else "o", color=colour, ms=4,
                            capsize=2, alpha=0.8, label=f"{label}{' (random pruning)' if random else ''}")
    front = sorted((p for p in pts if p["pareto"]), key=lambda p: p["ms"])
    label_front(ax, key, [(p["ms"], p["r2"], p["label"]) for p in front])
    ax.set_xscale("log")
    ax.set(xlabel=f"median ms per call at batch {batch} (log)", ylabel="test mean per-output R2",
           title="Accuracy vs latency (up and left is better; bars: std over seeds)")
    key_legend(ax, key)
    return fig


DRAW = {SWEEP_FIGURES.accuracy: fig_accuracy, SWEEP_FIGURES.latency: fig_latency, SWEEP_FIGURES.pareto: fig_pareto}


def sweep_figure_paths(results_dir, cfg: FigureConfig | None = None) -> list[Path]:
    """``<results>/sweep/figures/<name>.<format>``: where the sweep writes its figures (once)."""
    cfg = cfg or FigureConfig()
    return [Path(results_dir) / SWEEP_DIR / "figures" / f"{name}.{fmt}" for name in DRAW for fmt in cfg.formats]


def make_sweep_figures(sweep: Sweep, results_dir, cfg: FigureConfig | None = None) -> list[Path]:
    """Draw and write the three sweep figures (``sweep_figure_paths``); returns the files written."""
    cfg = cfg or FigureConfig()
    out = []
    for name, draw in DRAW.items():
        out += save_figure(draw(sweep, cfg), Path(results_dir) / SWEEP_DIR / "figures", name, cfg)
    return out
