"""``spinn-run recommend``: the model to deploy, chosen from a finished sweep by the rule of
``reporting.recommend_rule``, raced over more seeds where close, retrained at the full schedule
into ``<output>/recommended/``, timed as deployed and written up as a deploy card (docs/sweeps.md,
"Which model to deploy")."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..benchmark.bench_config import BenchConfig
from ..benchmark.run import run_benchmark
from ..benchmark.variants import load_variants
from ..core.errors import SpinnError
from ..core.overrides import with_overrides
from ..core.paths import ResultsPaths
from ..core.registry import (
    DEPLOY_CARD,
    METRICS,
    RACE_DIR,
    RECOMMENDED_DIR,
    SPARSE_TENSOR_VARIANTS,
    SWEEP_DIR,
    VARIANT,
    VARIANTS,
)
from ..core.results_files import read_result
from ..reporting.deploy_card import write_card
from ..reporting.recommend_rule import METHOD, Decision, Rule, decide, error_rate_line
from ..reporting.sweep_report import load_sweep, timing_busy
from .notebooks import UsageError
from .preflight import make_plan, results_lock
from .runner import run_notebooks
from .sweep import latency_config, run_sweep
from .sweep_spec import grid_args, make_spec

RETRAIN_NOTEBOOKS = "01,02,03,05_5,08"  # data, dense, pruning, export, test: what the card needs
RETRAIN_FIXED = {"run_cv": False, "run_baselines": False, "n_seeds": 1}  # the card's spread is the sweep's


def _sweep_points(output: Path, rule: Rule) -> tuple[object, list]:
    """The sweep and every point (the race's included), checked to answer ``rule``'s question."""
    sweep = load_sweep(output)
    if sweep is None:
        raise UsageError(f"no sweep in {output / SWEEP_DIR}: run `spinn-run sweep --output {output}` first")
    retime = (f"re-time it: spinn-run sweep --output {output} --batch {rule.batch} --threads {rule.threads} "
              "(trained points are resumed)")
    if timing_busy(sweep) is not None and sweep.smoke:
        print(f"note: the smoke sweep's timing ran on a busy CPU ({timing_busy(sweep):.0f}%): a rehearsal, not a measurement")
    elif timing_busy(sweep) is not None:
        raise UsageError(f"the sweep's timing ran on a busy CPU ({timing_busy(sweep):.0f}%): {retime} on an idle machine")
    if rule.batch not in sweep.timing.get("batches", ()) or rule.threads not in sweep.timing.get("threads", ()):
        raise UsageError(f"the sweep was timed at batches {sweep.timing.get('batches')} with "
                         f"{sweep.timing.get('threads')} threads, not batch {rule.batch} with {rule.threads}: {retime}")
    race = load_sweep(output / SWEEP_DIR / RACE_DIR)
    return sweep, [*sweep.points, *(race.points if race else ())]


def _race(output: Path, sweep, decision: Decision, rule: Rule, args,
          notebook_dir: Path | None) -> bool:
    """More seeds for the racers' sparsities (a sweep of their own); False when there is nothing to add."""
    racers = [c for c in decision.racers if c.n < args.max_seeds][:2]  # the two fastest: each costs a point per seed
    if not racers:
        return False
    first = max(sweep.seeds) + 1  # the same added seeds on every call: a second call resumes them
    seeds = list(range(first, first + args.max_seeds - len(sweep.seeds)))
    levels = sorted({c.sparsity for c in racers})
    print(f"race: {', '.join(c.label for c in racers)} not yet shown ({'; '.join(c.drop_text() for c in racers)}): "
          f"seeds {seeds} at {levels}")
    ns = grid_args(output / SWEEP_DIR / RACE_DIR, levels, [METHOD], seeds, smoke=sweep.smoke,
                   device=args.device, kernel=args.kernel, batch=rule.batch, threads=rule.threads,
                   parameters=list(sweep.settings.get("overrides", {}).items()))
    run_sweep(make_spec(ns, notebook_dir), args.workers, None, args.kernel, figures=False)
    return True


def _retrain(output: Path, sweep, decision: Decision, args, notebook_dir: Path | None) -> Path:
    """The chosen point at the full schedule: a normal run with its parameters into ``recommended/``."""
    folder = output / RECOMMENDED_DIR
    params = {**sweep.settings.get("overrides", {}), **RETRAIN_FIXED}
    if decision.chosen.variant != VARIANTS.dense:
        params.update(target_sparsity=decision.chosen.sparsity, prune_method=METHOD)
    ns = argparse.Namespace(output=str(folder), smoke=sweep.smoke, seed=sweep.seeds[0], only=RETRAIN_NOTEBOOKS,
                            start=None, kernel=args.kernel, device=args.device, data=None, data_config=None,
                            parameters=list(params.items()), progress=False, verbose=False)
    print(f"retraining {decision.chosen.label} at the full schedule (seed {sweep.seeds[0]}) -> {folder}")
    rc = run_notebooks(make_plan(ns, notebook_dir), ns)
    if rc != 0:
        raise SpinnError(f"the retrain of {decision.chosen.label} failed (exit {rc}); see {folder}/manifest.json")
    return folder


def _time_deployed(folder: Path, variant: str, rule: Rule, smoke: bool):
    """The chosen representation and dense eager (and the model it must reproduce), each as deployed,
    at batch 1 and the asked batch."""
    # The sweep's light timing, with the full-size GEMM for the machine's rate (the card reports it),
    # and only the sparse format the chosen model needs built.
    sparse = VARIANT[variant].storage if variant in SPARSE_TENSOR_VARIANTS else None
    cfg = with_overrides(latency_config(smoke, rule.batch, rule.threads),
                         gemm_size=BenchConfig().gemm_size, formats=(sparse,) if sparse else ())
    wanted = {VARIANTS.dense, variant, VARIANT[variant].reference}  # a model is checked against its reference
    return run_benchmark([v for v in load_variants(ResultsPaths(folder), "cpu", cfg.formats) if v.name in wanted],
                         cfg, "cpu")


def run(args: argparse.Namespace, notebook_dir: Path | None = None) -> int:
    """0: recommended and the full-schedule model holds the tolerance; 1: it misses (said, with the
    next candidate); 2: bad input (raised as UsageError)."""
    output = Path(args.output).expanduser().resolve()
    given = {k: getattr(args, k) for k in ("max_r2_drop", "batch", "threads")}
    rule = Rule(**{k: v for k, v in given.items() if v is not None})  # None: the rule's default
    if not 0 < rule.max_r2_drop < 1 or rule.batch < 1 or rule.threads < 1 or args.max_seeds < 2:
        raise UsageError("--max-r2-drop must be in (0, 1); --batch and --threads >= 1; --max-seeds >= 2")
    with results_lock(output, ["spinn-run", "recommend", *sys.argv[1:]]):
        sweep, points = _sweep_points(output, rule)
        decision = decide(points, rule)
        if _race(output, sweep, decision, rule, args, notebook_dir):  # one round: all added seeds
            sweep, points = _sweep_points(output, rule)
            decision = decide(points, rule)
        print("\n".join([*decision.lines(), error_rate_line(decision)]))
        if args.no_retrain:
            return 0
        folder = _retrain(output, sweep, decision, args, notebook_dir)
        test = read_result(ResultsPaths(folder), METRICS.test_evaluation)
        bench = _time_deployed(folder, decision.chosen.variant, rule, sweep.smoke)
        card = write_card(folder, decision, test, bench, points)
    accuracy = card["accuracy"]
    print(f"full schedule: dense R2 {accuracy['dense_mean_r2']:.4f}, {decision.chosen.label} "
          f"{accuracy['mean_r2']:.4f} (drop {accuracy['drop']:+.4f}, tolerance {rule.max_r2_drop:g}); "
          f"{card['latency_text']}\ndeploy card: {folder / DEPLOY_CARD}")
    if not accuracy["within_tolerance"]:
        print(f"the full-schedule model misses the tolerance; next candidate: {card['next'] or 'dense'}", file=sys.stderr)
        return 1
    return 0


def recommend_here(results_dir: str, max_r2_drop: float = Rule.max_r2_drop, batch: int = Rule.batch,
                   threads: int = Rule.threads, max_seeds: int = 8, notebook_dir: str = "") -> int:
    """Notebook 10's way to run ``spinn-run recommend`` on ``results_dir`` (its exit code; bad input
    raises). ``notebook_dir``: the pipeline's notebooks ("" for this checkout's)."""
    return run(argparse.Namespace(
        output=results_dir, max_r2_drop=max_r2_drop, batch=batch, threads=threads, max_seeds=max_seeds,
        no_retrain=False, workers=None, device="auto", kernel="python3"), notebook_dir or None)
