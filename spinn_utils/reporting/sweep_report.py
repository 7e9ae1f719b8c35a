"""The sparsity sweep read back from ``sweep/sweep.json``: Table 3, each representation's break-even
sparsity, magnitude vs random and pruned vs dense (paired over seeds), the Pareto front of accuracy
vs latency, and the summary the sweep stores (the rules: docs/sweeps.md).

Nothing here trains or times. Latency is read from the magnitude points
(``pipeline.sweep.timed_records``), and so is the structured model's accuracy (the random ones where
no magnitude point exists). Reference: Blalock et al., "What is the state of neural network
pruning?" (MLSys 2020) for the random-pruning control, operating points and spread over runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..compression.magnitude import PRUNE_METHODS
from ..core import registry
from ..core.paths import ResultsPaths
from ..core.registry import SWEEP_DIR, SWEEP_FILE, TABLE3, TABLE_FORMATS, VARIANTS
from ..core.results_files import read_result
from ..core.results_schema import Record
from ..core.results_schema_sweep import PointTiming, Sweep, SweepPoint
from ..core.spread import mean_sem
from .results import NOT_MEASURED
from .table1 import write_table


@dataclass(frozen=True)
class SweepSettings:
    """What every sweep point runs and is timed with, stated once: the spec, the timing and Table 3
    read it from here."""

    methods: tuple[str, ...] = PRUNE_METHODS  # the prune_method axis: compression's own list
    # The representations timed per point, dense last (the reference line).
    representations: tuple[str, ...] = (*(v for v in registry.SWEPT_VARIANTS if v != VARIANTS.dense),
                                        VARIANTS.dense)
    batches: tuple[int, ...] = (1, 1000)  # one request, and an offline batch (``spinn-run sweep --batch``)
    # A light per-point schedule of its own (shorter than notebooks 02/03 and than CrossValConfig's
    # 6 / 15 fine-tuning epochs) so 36 points fit a 2-core CPU in <= 25 minutes; --smoke uses the
    # notebooks' smoke settings instead.
    light: tuple[tuple[str, object], ...] = (("epochs", 40), ("patience", 15), ("n_stages", 3),
                                             ("finetune_epochs", 5), ("final_finetune_epochs", 12),
                                             ("structured_finetune_epochs", 15))
    notebook_08: tuple[tuple[str, object], ...] = (("run_cv", False), ("run_baselines", False), ("n_seeds", 1))


SWEEP = SweepSettings()
METHODS, REPRESENTATIONS = SWEEP.methods, SWEEP.representations
STRUCTURED = "structured"  # Table 3's third accuracy column
SPARSE_STORAGE = tuple(v for v in REPRESENTATIONS if v in registry.SPARSE_TENSOR_VARIANTS)
SHORT = {v: registry.VARIANT[v].short for v in REPRESENTATIONS}
BUSY_PERCENT = 25.0  # CPU use by others, over all cores, above which a sweep's timing is unreliable


class BreakEven(Record):
    """The lowest measured sparsity from which ``variant``'s mean speedup is >= 1 at every higher
    one."""

    variant: str
    batch_size: int
    sparsity: float | None  # None: none, not measured, or an unreliable timing
    max_measured: float | None
    text: str  # "90.0%", "<= 50.0%", "none up to 98.0%", "unreliable (...)"
    speedups: dict[str, float]  # mean speedup over seeds per measured sparsity


class PairedDifference(Record):
    """At one sparsity: the mean and standard error of a test R2 difference paired by seed."""

    sparsity: float
    mean: float
    sem: float | None  # None: one seed, no spread
    n: int
    beats: bool | None = None  # the mean exceeds one standard error (None: fewer than 2 seeds)


class FailedPoint(Record):
    id: str
    error: str | None


class SweepFindings(Record):
    """The summary a sweep stores in ``sweep.json``; notebook 10 and the checklist read it."""

    break_even: list[BreakEven]  # per batch and sparse representation
    magnitude_vs_random: list[PairedDifference]  # the masked model's R2, magnitude - random
    pruned_vs_dense: list[PairedDifference]  # the magnitude points' masked R2 - dense
    failed: list[FailedPoint]


def percent(fraction: float) -> str:
    """'68.5%', '99.99%': every digit the value has, at least one (0.9999 is not '100.0%')."""
    text = f"{fraction * 100:.6g}"
    return text + ("%" if "." in text or "e" in text else ".0%")


def timing_busy(sweep: Sweep) -> float | None:
    """The CPU share others used around the timing when above ``BUSY_PERCENT`` (None: idle, or not
    recorded): its latencies are noise, so no speedup is read from them."""
    busy = max((sweep.timing.get(k) or 0.0 for k in ("cpu_busy_percent_before", "cpu_busy_percent_after")),
               default=0.0)
    return busy if busy > BUSY_PERCENT else None


def batches(sweep: Sweep) -> tuple[int, ...]:
    """The batch sizes the sweep timed, the offline batch first (Table 3's column order)."""
    return tuple(sorted(sweep.timing.get("batches") or SWEEP.batches, reverse=True))


def load_sweep(results_dir) -> Sweep | None:
    """``<results>/sweep/sweep.json`` as its record, or None when no sweep was run there; a
    file that does not fit the schema is a one-line error naming the key."""
    path = Path(results_dir) / SWEEP_DIR / SWEEP_FILE
    return read_result(path, Sweep) if path.is_file() else None


def sparsities(sweep: Sweep) -> list[float]:
    return sorted({p.target_sparsity for p in sweep.points})


def _points(sweep: Sweep, sparsity: float, method: str | None = None) -> list[SweepPoint]:
    return [p for p in sweep.points if p.target_sparsity == sparsity
            and (method is None or p.prune_method == method)]


def point_r2(point: SweepPoint, variant: str) -> float | None:
    """A point's test mean per-output R2 of ``variant`` (None: failed, or not scored there)."""
    scores = (point.test or {}).get(variant)
    return None if scores is None else scores.mean_r2


def accuracy(sweep: Sweep, sparsity: float, column: str) -> dict:
    """Test mean per-output R2 over seeds of one column (magnitude, random, structured), with
    how many points failed."""
    variant = VARIANTS.masked if column in METHODS else VARIANTS.structured
    pts = _points(sweep, sparsity, column) if column in METHODS else (
        _points(sweep, sparsity, "magnitude") or _points(sweep, sparsity))
    ok = [p for p in pts if p.status == "ok"]
    scores = mean_sem([point_r2(p, variant) for p in ok])
    return {**scores, "failed": len(pts) - len(ok), "points": len(pts)}


def dense_r2(sweep: Sweep) -> dict:
    """The dense model's test mean per-output R2 over seeds (each seed's dense model once)."""
    by_seed = {p.seed: point_r2(p, VARIANTS.dense) for p in sweep.points if p.status == "ok"}
    return mean_sem(list(by_seed.values()))


def point_timing(point: SweepPoint, batch: int, variant: str) -> PointTiming | None:
    """The point's timing of ``variant`` at ``batch`` (None: not timed there)."""
    return (point.latency or {}).get(str(batch), {}).get(variant)


def latency(sweep: Sweep, sparsity: float, variant: str, batch: int) -> dict:
    """Median latency (ms) and speedup vs dense of one representation over the seeds timed at
    this sparsity."""
    pts = [p for p in _points(sweep, sparsity) if p.status == "ok" and p.latency]
    rows = [r for r in (point_timing(p, batch, variant) for p in pts) if r is not None]
    return {"ms": mean_sem([r.median_ms for r in rows]),
            "speedup": mean_sem([r.speedup_vs_dense for r in rows])}


def break_even(sweep: Sweep, variant: str, batch: int) -> BreakEven:
    """Lowest measured sparsity from which ``variant``'s mean speedup is >= 1 at every higher one."""
    levels = sparsities(sweep)
    speed = {s: latency(sweep, s, variant, batch)["speedup"]["mean"] for s in levels}
    measured = [s for s in levels if speed[s] is not None]
    found = None
    for s in reversed(measured):
        if speed[s] < 1.0:
            break
        found = s
    top = max(measured) if measured else None
    text = (NOT_MEASURED if top is None else f"none up to {percent(top)}" if found is None
            else f"<= {percent(found)}" if found == measured[0] else percent(found))  # "<=": faster from the lowest
    if timing_busy(sweep) is not None and top is not None:
        found, text = None, f"unreliable (CPU {timing_busy(sweep):.0f}% busy while timing)"
    return BreakEven(variant=variant, batch_size=batch, sparsity=found, max_measured=top, text=text,
                     speedups={f"{s:g}": speed[s] for s in measured})


def _by_seed(sweep: Sweep, sparsity: float, method: str, variant: str) -> dict[int, float | None]:
    """Test mean per-output R2 of ``variant`` per seed, at the finished ``method`` points."""
    points = _points(sweep, sparsity, method)
    return {p.seed: point_r2(p, variant) for p in points if p.status == "ok"}


def _paired(sweep: Sweep, method: str, variant: str) -> list[PairedDifference]:
    """Per sparsity: magnitude points' masked test R2 minus ``method``'s ``variant``'s, by seed."""
    out = []
    for s in sparsities(sweep):
        mine = _by_seed(sweep, s, "magnitude", VARIANTS.masked)
        ref = _by_seed(sweep, s, method, variant)
        diffs = [mine[k] - ref[k] for k in sorted(set(mine) & set(ref))
                 if mine[k] is not None and ref[k] is not None]
        if diffs:
            d = mean_sem(diffs)
            beats = None if d["sem"] is None else bool(d["mean"] > d["sem"])
            out.append(PairedDifference(sparsity=s, mean=d["mean"], sem=d["sem"], n=d["n"],
                                        beats=beats))
    return out


def magnitude_vs_random(sweep: Sweep) -> list[PairedDifference]:
    """Per sparsity: magnitude - random test mean per-output R2 (masked model), paired by seed."""
    return _paired(sweep, "random", VARIANTS.masked)


def pruned_vs_dense(sweep: Sweep) -> list[PairedDifference]:
    """Per sparsity: magnitude-pruned - dense test mean per-output R2, paired by seed."""
    return _paired(sweep, "magnitude", VARIANTS.dense)


def pareto_front(items: list, cost, loss) -> list:
    """The items no other beats on both ``cost`` and ``loss`` (lower is better), cheapest first."""
    front, best = [], float("inf")
    for item in sorted(items, key=lambda i: (cost(i), loss(i))):
        if loss(item) < best:
            front.append(item)
            best = loss(item)
    return front


def pareto_points(sweep: Sweep, batch: int = 1000) -> list[dict]:
    """Every (method, sparsity, representation) and dense: latency and R2 (mean and std over seeds), on
    the front or not. int8 is drawn with the structured model's R2 (its own is within Table 1's 0.01 check)."""
    timed = [point_timing(p, batch, VARIANTS.dense) for p in sweep.points if p.status == "ok"]
    dense_ms, dense = mean_sem([t.median_ms for t in timed if t is not None]), dense_r2(sweep)
    cands = [{"label": "dense", "variant": VARIANTS.dense, "sparsity": 0.0, "method": None,
              "ms": dense_ms["mean"], "ms_std": dense_ms["std"], "r2": dense["mean"],
              "r2_std": dense["std"]}]
    unstructured = (VARIANTS.masked, VARIANTS.coo, VARIANTS.csr)
    structured = (VARIANTS.structured, VARIANTS.structured_ort, VARIANTS.structured_int8_ort)
    for s in sparsities(sweep):
        columns = [(m, unstructured, f"{m} ") for m in METHODS if _points(sweep, s, m)]
        for column, variants, prefix in [*columns, (STRUCTURED, structured, "")]:
            acc = accuracy(sweep, s, column)
            for v in variants:
                ms = latency(sweep, s, v, batch)["ms"]
                cands.append({"label": f"{prefix}{SHORT[v]} {percent(s)}", "variant": v,
                              "sparsity": s, "method": column, "ms": ms["mean"],
                              "ms_std": ms["std"], "r2": acc["mean"], "r2_std": acc["std"]})
    cands = [c for c in cands if c["ms"] is not None and c["r2"] is not None]
    front = pareto_front(cands, lambda c: c["ms"], lambda c: -c["r2"])
    return [{**c, "pareto": any(c is f for f in front)} for c in cands]


def _busy(cond: dict) -> str:
    """What ran beside the timing, as measured before it (older sweeps recorded the load only)."""
    busy = cond.get("cpu_busy_percent_before")
    if busy is None:
        return f"load average {cond.get('load_average_1min_before')}"
    return f"CPU {busy:.0f}% busy over 1 s before"


def mean_std_text(stats: dict, failed: int = 0, digits: int = 3,
                  missing: str = NOT_MEASURED) -> str:
    """``mean ± std (n=N)`` of a ``core.spread.mean_sem`` record (one value: no ±); failures
    counted."""
    if stats.get("mean") is None:
        text = "failed" if failed else missing
    else:
        spread = f" ± {stats['std']:.{digits}f}" if stats["std"] is not None else ""
        text = f"{stats['mean']:.{digits}f}{spread} (n={stats['n']})"
    return text + (f"; {failed} failed" if failed and stats["mean"] is not None else "")


def _lat_text(lat: dict, variant: str, busy: bool) -> str:
    ms = lat["ms"]["mean"]
    if ms is None:
        return NOT_MEASURED
    if busy:
        return f"{ms:.3g} ms (unreliable)"
    speed = lat["speedup"]["mean"]
    return f"{ms:.3g} ms" + ("" if variant == VARIANTS.dense or speed is None else f" ({speed:.2f}x)")


def table3_frames(sweep: Sweep) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(text, numbers): Table 3 as read (mean ± std (n), "ms (speedup)") and as a numeric CSV."""
    text_rows, num_rows = {}, []
    columns = [c for c in (*METHODS, STRUCTURED) if c == STRUCTURED or any(p.prune_method == c for p in sweep.points)]
    busy = timing_busy(sweep)
    for s in sparsities(sweep):
        text, num = {}, {"target_sparsity": s}
        for col in columns:
            acc = accuracy(sweep, s, col)
            text[f"{col} R2"] = mean_std_text(acc, acc["failed"])
            num.update({f"{col}_r2_mean": acc["mean"], f"{col}_r2_std": acc["std"], f"{col}_n": acc["n"],
                        f"{col}_failed": acc["failed"]})
        for batch in batches(sweep):
            for v in REPRESENTATIONS:
                lat = latency(sweep, s, v, batch)
                text[f"{SHORT[v]} b{batch}"] = _lat_text(lat, v, busy is not None)
                num.update({f"{v}_b{batch}_ms": lat["ms"]["mean"], f"{v}_b{batch}_ms_std": lat["ms"]["std"],
                            f"{v}_b{batch}_speedup": None if busy else lat["speedup"]["mean"]})
        text_rows[percent(s)] = text
        num_rows.append(num)
    frame = pd.DataFrame.from_dict(text_rows, orient="index", dtype=object)
    frame.index.name = "Target sparsity"
    cond, env = sweep.timing, sweep.timing.get("environment", {})
    frame.attrs.update(name=TABLE3, index_label="Target sparsity", row_format=dict.fromkeys(frame.index, "text"),
                       title="Table 3: accuracy and latency from 50% to 98% sparsity (sparsity sweep)", notes=[
        f"R2: test mean per-output R2, mean ± std over seeds {sweep.seeds} (n = points that finished); "
        f"magnitude / random: unstructured pruning (masked model); structured: notebook 03's structured model "
        f"at the same parameter count. Dense reference {mean_std_text(dense_r2(sweep))}.",
        "Latency: median ms per call over seeds, speedup vs dense timed in the same interleaved rounds; "
        f"bN = batch N; {cond.get('threads')} threads on {env.get('cpu_model', 'unknown hardware')}, one point "
        f"at a time after all training ({_busy(cond)}); latency columns are the magnitude points'.",
        f"Per-point schedule: {sweep.settings}.",
        *([f"Timing unreliable: others used {busy:.0f}% of the CPU around it (above {BUSY_PERCENT:.0f}%), so "
           "every latency is marked and no speedup or break-even is read from them; re-run `spinn-run sweep` "
           "on an idle machine (trained points are resumed, the timing is taken again)."] if busy else []),
    ])
    return frame, pd.DataFrame(num_rows)


def table3_paths(results_dir) -> list[Path]:
    """``<results>/sweep/tables/table3.{md,tex,csv}``: where the sweep writes Table 3 (once)."""
    paths = ResultsPaths(Path(results_dir) / SWEEP_DIR)
    return [paths.table(suffix, TABLE3) for suffix in TABLE_FORMATS]


def write_table3(sweep: Sweep, results_dir) -> list[Path]:
    """``table3_paths`` written atomically (CSV: the numbers, unformatted)."""
    frame, numbers = table3_frames(sweep)
    return write_table(frame, ResultsPaths(Path(results_dir) / SWEEP_DIR), csv=numbers)


def summary_of(sweep: Sweep) -> SweepFindings:
    """The summary the sweep computed and stored in ``sweep.json`` (computed here only for a file
    that holds none): notebook 10 and the checklist read this one."""
    return SweepFindings.model_validate(sweep.summary) if sweep.summary else sweep_summary(sweep)


def sweep_summary(sweep: Sweep) -> SweepFindings:
    """Break-even per representation and batch, magnitude vs random, pruned vs dense, failures."""
    return SweepFindings(
        break_even=[break_even(sweep, v, b) for b in batches(sweep) for v in REPRESENTATIONS[:-1]],
        magnitude_vs_random=magnitude_vs_random(sweep), pruned_vs_dense=pruned_vs_dense(sweep),
        failed=[FailedPoint(id=p.id, error=p.error) for p in sweep.points if p.status != "ok"])
