"""The deploy card of a recommended model: ``recommended/deploy_card.md``, ``deploy.json`` and the figure.

Everything on it is read from what the recommendation measured (the retrained model's
``test_evaluation.json``, its benchmark as deployed, the sweep's seeds, the rule's simulated error
rates); nothing is typed in.
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ..core.io import atomic_path, file_sha256, read_json, to_jsonable, write_json
from ..core.paths import ResultsPaths
from ..core.registry import (
    DEPLOY_CARD,
    DEPLOY_JSON,
    ORT_EXPORTS,
    RECOMMEND_FIGURE,
    VARIANT,
    VARIANTS,
)
from ..core.results_schema_eval import Benchmark, TestEvaluation
from ..core.results_schema_sweep import SweepPoint
from ..core.spread import mean_sem
from .figures import FigureConfig, key_legend, label_front, numbered_front, save_figure, style
from .recommend_rule import ACCURACY_OF, METHOD, Candidate, Decision
from .sweep_report import mean_std_text, pareto_front


def model_file(folder: Path, variant: str) -> tuple[Path, Path | None, str]:
    """(the file to ship, its sidecar or None, how to run it) for a deployed representation."""
    paths = ResultsPaths(folder)
    if variant in ORT_EXPORTS:
        onnx = paths.export(ORT_EXPORTS[variant])
        return onnx, onnx.with_suffix(".json"), (
            f"python -m spinn_utils.predict --model {onnx} --csv windows.csv --output predictions.csv")
    stored = paths.stored_checkpoint(ACCURACY_OF.get(variant, VARIANTS.dense))
    run = (f"from spinn_utils.compression.run_models import load_run_models; from spinn_utils.core.paths import "
           f"ResultsPaths; model = load_run_models(ResultsPaths('{folder}'), ['{variant}']).models['{variant}']")
    return stored, None, run


def _notes(sidecar: Path | None) -> list[str]:
    """What a user must know before shipping the file (dynamic int8's batch dependence)."""
    meta = read_json(sidecar, "sidecar") if sidecar is not None and sidecar.is_file() else {}
    if (meta.get("quantization") or {}).get("mode") != "dynamic":
        return []
    return ["Dynamic int8 scales each batch by its own range: a row's prediction depends slightly on the rows "
            "predicted with it (the sidecar's parity block measures it). Ship the fp32 export where a row must "
            "always get the same answer."]


def _timing(bench: Benchmark, variant: str, batch: int) -> dict | None:
    row = next((r for r in bench.results if r.variant == variant and r.batch_size == batch), None)
    return None if row is None else {"ms": row.median_ms, "iqr_ms": row.iqr_ms, "speedup_vs_dense": row.speedup_vs_dense,
                                     "speedup_iqr": row.speedup_iqr, "pct_of_gemm_peak": row.pct_of_gemm_peak,
                                     "threads": row.threads}


def _per_output_spread(points: list[SweepPoint], c: Candidate) -> dict:
    """Per output: the candidate's test R2 over the sweep's seeds (mean, std, n)."""
    scored = ACCURACY_OF.get(c.variant, VARIANTS.dense)
    rows = [p.test[scored] for p in points if p.status == "ok" and p.prune_method == METHOD
            and p.target_sparsity == c.sparsity and p.seed in c.seeds and (p.test or {}).get(scored)]
    outputs = sorted({t for r in rows for t in r.per_output})
    return {t: mean_sem([r.per_output[t].r2 for r in rows if t in r.per_output]) for t in outputs}


def card_record(folder: Path, decision: Decision, test: TestEvaluation, bench: Benchmark,
                points: list[SweepPoint]) -> dict:
    """``deploy.json``: what to ship, how to run it, and what it was measured to do."""
    rule, c = decision.rule, decision.chosen
    scored = ACCURACY_OF.get(c.variant, VARIANTS.dense)
    mine, dense = test.models[scored], test.models[VARIANTS.dense]
    file, sidecar, run = model_file(folder, c.variant)
    physics = getattr(test.physics_consistency, "models", {})
    shown = [x for x in decision.candidates if x.shown(rule) and x is not c]
    spread = _per_output_spread(points, c)
    latency = {str(b): {"model": _timing(bench, c.variant, b), "dense": _timing(bench, VARIANTS.dense, b)}
               for b in sorted({1, rule.batch})}
    at = latency[str(rule.batch)]["model"] or {}
    env = bench.environment
    return to_jsonable({
        "model": {"representation": c.variant, "label": c.label, "target_sparsity": c.sparsity,
                  "file": str(file), "sha256": file_sha256(file) if file.is_file() else None,
                  "sidecar": None if sidecar is None else str(sidecar),
                  "sidecar_sha256": file_sha256(sidecar) if sidecar and sidecar.is_file() else None},
        "how_to_run": run,
        "notes": _notes(sidecar),
        "accuracy": {"mean_r2": mine.mean_r2, "dense_mean_r2": dense.mean_r2, "drop": dense.mean_r2 - mine.mean_r2,
                     "within_tolerance": dense.mean_r2 - mine.mean_r2 <= rule.max_r2_drop,
                     "per_output": {t: {"r2": m.r2, "rmse": m.rmse, "dense_r2": dense.per_output[t].r2,
                                        "sweep_r2": spread.get(t)}
                                    for t, m in mine.per_output.items()},
                     "units": test.units,
                     "sweep": {"seeds": c.seeds, "drops": c.drops, "mean_drop": c.mean_drop, "sd_drop": c.sd_drop,
                               "bound": c.bound(rule), "speedups": c.speedups}},
        # notebook 08 checks the physics of the PyTorch models; an export computes what its reference does
        "physics": {"model": physics.get(scored) or physics.get(VARIANT[scored].reference),
                    "measured": getattr(test.physics_consistency, "measured", None)},
        "latency": latency,
        "latency_text": (f"{at.get('ms', float('nan')):.3g} ms at batch {rule.batch}, {rule.threads} threads: "
                         f"{at.get('speedup_vs_dense') or float('nan'):.2f}x dense eager, "
                         f"{at.get('pct_of_gemm_peak') or float('nan'):.0f}% of this machine's GEMM rate"),
        "machine": {k: getattr(env, k) for k in ("cpu_model", "cpu_capability", "cpu_flags", "cpu_count", "platform",
                                            "torch_version")},
        "rule": rule.text(), "tolerance": rule.max_r2_drop, "confidence": rule.confidence,
        "error_rates": decision.error_rates,
        "not_shown": [{"label": x.label, "speedup": x.speedup, "mean_drop": x.mean_drop, "sd_drop": x.sd_drop,
                       "n": x.n, "bound": x.bound(rule)} for x in decision.not_shown],
        "next": max(shown, key=lambda x: x.speedup).label if shown else None,
        "remeasure": ("Accuracy does not depend on the machine; latency and speedup do (SIMD flags, cores, "
                      "memory). On another CPU re-time the sweep there (`spinn-run sweep --output <sweep folder> "
                      f"--batch {rule.batch} --threads {rule.threads}`: trained points are resumed, only the timing "
                      "runs) and run `spinn-run recommend` again; a different machine may pick another model."),
    })


def card_markdown(card: dict) -> str:
    m, a, r = card["model"], card["accuracy"], card["error_rates"]
    lines = [f"# Deploy: {m['label']}", "",
             f"- **File**: `{m['file']}` (sha256 `{m['sha256']}`)" + (
                 f"; sidecar `{m['sidecar']}` (sha256 `{m['sidecar_sha256']}`)" if m["sidecar"] else ""),
             f"- **Run it**: `{card['how_to_run']}`",
             *(f"- **Note**: {n}" for n in card["notes"]),
             f"- **Chosen by**: {card['rule']}.",
             f"- **Error rate of that rule** on simulated records with the sweep's paired spread (sd "
             f"{r['paired_sd'] if r['paired_sd'] is None else round(r['paired_sd'], 4)}, {r['seeds']} seeds): a model "
             f"whose true drop is the tolerance is accepted {_pct(r['accepted_at_tolerance'])} of the time, one with no "
             f"true drop {_pct(r['accepted_at_no_drop'])}.", "",
             "## Accuracy (test split, full schedule)", "",
             "| output | R2 | dense R2 | RMSE | R2 over the sweep's seeds |", "|---|---|---|---|---|"]
    for t, o in a["per_output"].items():
        lines.append(f"| {t} | {o['r2']:.4f} | {o['dense_r2']:.4f} | {o['rmse']:.4g} {a['units'].get(t, '')} | "
                     f"{mean_std_text(o['sweep_r2'] or {}, missing='n/a')} |")
    s = a["sweep"]
    lines += ["", f"Mean per-output R2 {a['mean_r2']:.4f} against dense {a['dense_mean_r2']:.4f}: drop "
              f"{a['drop']:+.4f} ({'within' if a['within_tolerance'] else 'OUTSIDE'} the tolerance {card['tolerance']:g}). "
              f"In the sweep: drop {s['mean_drop']:+.4f}" + ("" if s["sd_drop"] is None else f" ± {s['sd_drop']:.4f}")
              + f" over seeds {s['seeds']}, upper bound {s['bound']:+.4f}.", "", "## Physics", ""]
    for who, p in (("model", card["physics"]["model"]), ("measured data", card["physics"]["measured"])):
        if p:
            lines.append(f"- {who}: wear falls in {_pct(p['wear_decrease_fraction'])} of consecutive test steps; "
                         f"thermal residual {_num(p['thermal_ode_residual_rms_um'])} um RMS")
    lines += ["", "## Latency, as deployed (median ms per call; speedup vs dense eager in the same rotations)", "",
              "| batch | this model | dense eager | speedup | % of GEMM rate |", "|---|---|---|---|---|"]
    for b, t in card["latency"].items():
        mine, dense = t["model"] or {}, t["dense"] or {}
        lines.append(f"| {b} | {_num(mine.get('ms'))} | {_num(dense.get('ms'))} | {_num(mine.get('speedup_vs_dense'))}x | "
                     f"{_num(mine.get('pct_of_gemm_peak'))} |")
    mach = card["machine"]
    lines += ["", f"Measured on {mach['cpu_model']} ({mach['cpu_capability']}; flags {', '.join(mach['cpu_flags'] or [])}"
              f"; {mach['cpu_count']} cores), torch {mach['torch_version']}.", "", "## Not chosen", ""]
    lines += [f"- faster, not shown: {x['label']}: {x['speedup']:.2f}x, drop {x['mean_drop']:.3f}"
              + ("" if x["sd_drop"] is None else f" ± {x['sd_drop']:.3f}") + f", {x['n']} seeds"
              for x in card["not_shown"]] or ["- no faster candidate"]
    lines += [f"- next candidate, if this one misses: {card['next'] or 'dense'}", "", "## On another machine", "",
              card["remeasure"], ""]
    return "\n".join(lines)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def fig_recommend(decision: Decision, cfg: FigureConfig) -> Figure:
    """Paired R2 drop vs latency, error bars over seeds, the front joined, the tolerance and the choice marked."""
    rule = decision.rule
    fig, ax, key = numbered_front(cfg, 5.0)
    lat = {c: mean_sem(c.ms) for c in decision.candidates}  # ms per call over seeds
    for c in decision.candidates:
        label, colour = style(c.variant)
        ax.errorbar(lat[c]["mean"], c.mean_drop, xerr=lat[c]["std"], yerr=c.sd_drop, label=label,
                    fmt="o" if c.shown(rule) else "x", color=colour, ms=5, capsize=2, alpha=0.8)
    front = pareto_front(list(decision.candidates), lambda c: lat[c]["mean"], lambda c: c.mean_drop)
    label_front(ax, key, [(lat[c]["mean"], c.mean_drop, c.label) for c in front], lw=0.8)
    chosen = decision.chosen
    ax.scatter([lat[chosen]["mean"]], [chosen.mean_drop], s=220, facecolors="none",
               edgecolors="red", linewidths=2, label=f"recommended: {chosen.label}", zorder=5)
    ax.axhline(rule.max_r2_drop, color="red", ls="--", lw=1, label=f"tolerance {rule.max_r2_drop:g}")
    ax.set_xscale("log")
    ax.set(xlabel=f"median ms per call at batch {rule.batch}, {rule.threads} threads (log)",
           ylabel="test mean per-output R2 drop vs dense (paired)",
           title="Which model to deploy (o: shown within the tolerance, x: not shown)")
    key_legend(ax, key)  # one entry per representation
    return fig


def write_card(folder: Path, decision: Decision, test: TestEvaluation, bench: Benchmark,
               points: list[SweepPoint], cfg: FigureConfig | None = None) -> dict:
    """Write ``deploy_card.md``, ``deploy.json`` and ``figures/recommend_pareto.*`` into ``folder``; returns the card."""
    card = card_record(folder, decision, test, bench, points)
    write_json(folder / DEPLOY_JSON, card)
    with atomic_path(folder / DEPLOY_CARD) as tmp:
        tmp.write_text(card_markdown(card))
    save_figure(fig_recommend(decision, cfg or FigureConfig()), ResultsPaths(folder).figures, RECOMMEND_FIGURE, cfg or FigureConfig())
    return card
