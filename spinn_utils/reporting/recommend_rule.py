"""Which model to deploy, read from a finished sweep: the fastest one shown to lose no more than a
tolerance of accuracy (the rule and its error rates: docs/sweeps.md).

Candidates are the (representation, sparsity) pairs of the sweep's magnitude-pruned points, and
dense. The accuracy loss is paired by seed: ``drop = dense - candidate`` test mean per-output R2.
A candidate is shown within the tolerance when the one-sided upper confidence bound of its mean
drop is (n >= 2 seeds); the fastest shown wins, near-ties going to the smaller model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import stats

from ..core.errors import SpinnError
from ..core.registry import LABELS, MODEL_VARIANTS, VARIANTS
from ..core.results_schema_sweep import SweepPoint
from ..core.spread import mean_sem
from .sweep_report import percent, point_r2, point_timing

# Every representation the sweep times, and the test variant whose accuracy it has (its own, or,
# where it is not scored apart, that of the model it reproduces: CSR has the masked model's).
ACCURACY_OF = {v.name: v.name if v.tested else v.reference for v in MODEL_VARIANTS
               if v.swept and v.name != VARIANTS.dense}
METHOD = "magnitude"  # random pruning is the sweep's control, never a model to ship


@dataclass(frozen=True)
class Rule:
    max_r2_drop: float = 0.01  # tolerated loss of test mean per-output R2 against dense
    confidence: float = 0.95  # one-sided: a point at the tolerance is accepted 5% of the time
    tie: float = 0.05  # speedups within 5% of the fastest are a tie (timing noise on a VM)
    batch: int = 1000
    threads: int = 2

    def text(self) -> str:
        return (f"paired drop in test mean per-output R2 vs dense (same seed); shown within {self.max_r2_drop:g} "
                f"when mean + t({self.confidence:g}, n-1) x sd / sqrt(n) <= {self.max_r2_drop:g} (n >= 2 seeds); "
                f"the fastest shown at batch {self.batch}, {self.threads} threads wins; speedups within "
                f"{self.tie:.0%} tie and go to the smaller model")


@dataclass(frozen=True)
class Candidate:
    variant: str  # the representation deployed
    sparsity: float  # target sparsity (0 for dense)
    seeds: tuple[int, ...]  # seeds with both a drop and a speedup
    drops: tuple[float, ...]  # per seed: dense - this model's test mean per-output R2
    speedups: tuple[float, ...]  # per seed: dense ms / this ms at the rule's batch and threads
    ms: tuple[float, ...]  # per seed: median ms per call
    storage_bytes: int | None

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean_drop(self) -> float:
        return mean_sem(self.drops)["mean"]

    @property
    def sd_drop(self) -> float | None:
        return mean_sem(self.drops)["std"]

    @property
    def speedup(self) -> float:
        return mean_sem(self.speedups)["mean"]

    def bound(self, rule: Rule) -> float:
        """The one-sided upper confidence bound of the mean drop (inf with fewer than two seeds;
        dense is its own reference: 0)."""
        if self.variant == VARIANTS.dense:
            return 0.0
        if self.n < 2:
            return math.inf
        return self.mean_drop + stats.t.ppf(rule.confidence, self.n - 1) * self.sd_drop / math.sqrt(self.n)

    def shown(self, rule: Rule) -> bool:
        return self.bound(rule) <= rule.max_r2_drop

    @property
    def label(self) -> str:
        name = LABELS.get(self.variant, self.variant)
        return name if self.variant == VARIANTS.dense else f"{name} at {percent(self.sparsity)}"

    def drop_text(self) -> str:
        spread = f" ± {self.sd_drop:.3f}" if self.sd_drop is not None else ""
        return f"drop {self.mean_drop:.3f}{spread}, {self.n} seed{'s' * (self.n != 1)}"


@dataclass(frozen=True)
class Decision:
    rule: Rule
    chosen: Candidate
    candidates: tuple[Candidate, ...]  # every candidate, fastest first
    not_shown: tuple[Candidate, ...]  # faster than the chosen one, not shown within the tolerance
    racers: tuple[Candidate, ...] = field(default=())  # of those, the ones more seeds could show

    @cached_property
    def error_rates(self) -> dict:
        """``accept_rates`` at the chosen candidate's seed count, with the sweep's typical paired
        spread (the median sd over candidates with >= 2 seeds); computed once per decision."""
        sds = [c.sd_drop for c in self.candidates if c.sd_drop is not None and c.variant != VARIANTS.dense]
        sd, n = (float(np.median(sds)) if sds else None), max(self.chosen.n, 2)
        rates = accept_rates(self.rule, sd, n) if sd else {}
        return {"paired_sd": sd, "seeds": n, "accepted_at_tolerance": rates.get(self.rule.max_r2_drop),
                "accepted_at_no_drop": rates.get(0.0)}

    def lines(self) -> list[str]:
        c = self.chosen
        head = (f"recommended: {c.label}: {c.speedup:.2f}x dense at batch {self.rule.batch}, "
                f"{self.rule.threads} threads; {c.drop_text()} (bound {c.bound(self.rule):+.4f} <= "
                f"{self.rule.max_r2_drop:g})" if c.variant != VARIANTS.dense else
                "recommended: dense (no pruned representation is both faster and shown within the tolerance)")
        return [head, *(f"faster, not shown: {x.label}: {x.speedup:.2f}x, {x.drop_text()}, bound "
                        f"{x.bound(self.rule):+.4f}" for x in self.not_shown)]


def _timing(point: SweepPoint, variant: str, rule: Rule):
    """The point's timing of ``variant`` at the rule's batch and threads with a speedup, or None."""
    row = point_timing(point, rule.batch, variant)
    return row if row is not None and row.threads == rule.threads and row.speedup_vs_dense else None


def candidates(points: list[SweepPoint], rule: Rule) -> list[Candidate]:
    """Every deployable (representation, sparsity) with its paired drops and speedups, fastest first."""
    ok = [p for p in points if p.status == "ok" and p.prune_method == METHOD]
    out = []
    for s in sorted({p.target_sparsity for p in ok}):
        for variant, scored in ACCURACY_OF.items():
            rows = []
            for p in sorted((p for p in ok if p.target_sparsity == s), key=lambda p: p.seed):
                dense, mine = point_r2(p, VARIANTS.dense), point_r2(p, scored)
                t = _timing(p, variant, rule)
                if dense is not None and mine is not None and t is not None:
                    rows.append((p.seed, dense - mine, t.speedup_vs_dense, t.median_ms, p))
            if rows:
                cost = (rows[0][4].flops or {}).get(variant)
                out.append(Candidate(variant, s, *(tuple(col) for col in list(zip(*rows))[:4]),
                                     storage_bytes=None if cost is None else cost.storage_bytes))
    dense = [(p.seed, t.median_ms, p) for p in {p.seed: p for p in ok}.values()
             if (t := point_timing(p, rule.batch, VARIANTS.dense)) is not None]
    if dense:
        cost = (dense[0][2].flops or {}).get(VARIANTS.dense)
        out.append(Candidate(VARIANTS.dense, 0.0, tuple(d[0] for d in dense), (0.0,) * len(dense),
                             (1.0,) * len(dense), tuple(d[1] for d in dense),
                             None if cost is None else cost.storage_bytes))
    return sorted(out, key=lambda c: -c.speedup)


def decide(points: list[SweepPoint], rule: Rule) -> Decision:
    """The rule applied to the sweep's points (see the module's docstring)."""
    cands = candidates(points, rule)
    shown = [c for c in cands if c.shown(rule)]
    if not shown:
        raise SpinnError(f"no dense timing at batch {rule.batch}, {rule.threads} threads in the sweep: nothing to compare")
    fastest = max(c.speedup for c in shown)
    tied = [c for c in shown if c.speedup >= fastest * (1 - rule.tie)]
    chosen = min(tied, key=lambda c: (c.storage_bytes if c.storage_bytes is not None else math.inf, -c.speedup))
    not_shown = tuple(c for c in cands if c.speedup > chosen.speedup and not c.shown(rule))
    racers = tuple(c for c in not_shown if c.mean_drop <= rule.max_r2_drop)
    return Decision(rule, chosen, tuple(cands), not_shown, racers)


def accept_rates(rule: Rule, sd: float, n: int, trials: int = 20000) -> dict[float, float]:
    """Share of simulated candidates the rule accepts, {true drop: share} for a true drop of 0 and
    of the tolerance (there: the false acceptance rate, 1 - confidence by design), with ``n`` seeds
    of paired drops ~ Normal(true drop, sd): the rule's error rates on records like the sweep's."""
    rng = np.random.default_rng(0)
    t = stats.t.ppf(rule.confidence, n - 1)
    out = {}
    for mu in (0.0, rule.max_r2_drop):
        draws = rng.normal(mu, sd, size=(trials, n))
        bound = draws.mean(1) + t * draws.std(1, ddof=1) / math.sqrt(n)
        out[mu] = float(np.mean(bound <= rule.max_r2_drop))
    return out


def error_rate_line(decision: Decision) -> str:
    """The rule and how often it errs on records like this sweep's (simulated), in one line."""
    r = decision.error_rates
    if r["paired_sd"] is None:
        return f"rule: {decision.rule.text()}"
    return (f"rule: {decision.rule.text()}; on simulated records with this sweep's paired spread (sd "
            f"{r['paired_sd']:.4f}, {r['seeds']} seeds) it accepts a model whose true drop is the tolerance "
            f"{r['accepted_at_tolerance']:.1%} of the time, one with no drop {r['accepted_at_no_drop']:.1%}")
