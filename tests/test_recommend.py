"""The recommender's rule on synthetic sweep records, its refusals, and the deploy card."""
import hashlib
import json
import re

import pytest
from results_factory import bench, evaluation_record, evolve, metrics

from spinn_utils.core.io import write_json
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import DEPLOY_CARD, DEPLOY_JSON, LABELS, VARIANTS
from spinn_utils.pipeline.cli import main
from spinn_utils.reporting.deploy_card import card_markdown, card_record, write_card
from spinn_utils.reporting.recommend_rule import Rule, accept_rates, decide, error_rate_line
from spinn_utils.reporting.sweep_report import load_sweep

SEEDS = (1, 2, 3)


def point(s: float, seed: int, dense_r2: float, r2: dict, ms: dict, storage: dict | None = None) -> dict:
    """One magnitude point: test mean R2 per variant, ms per representation at batch 1000 (dense 10 ms)."""
    pid = f"sp{s:g}-magnitude-seed{seed}"
    timing = {v: {"median_ms": m, "iqr_ms": 0.1, "repeats": 9, "speedup_vs_dense": 10.0 / m, "threads": 2}
              for v, m in {VARIANTS.dense: 10.0, **ms}.items()}
    costs = {v: {"flops": 1, "flops_nonzero": 1, "storage_bytes": b, "outputs_match": True}
             for v, b in (storage or {}).items()}
    return {"id": pid, "target_sparsity": s, "prune_method": "magnitude", "seed": seed, "seconds": 1.0,
            "folder": f"points/{pid}", "status": "ok", "resumed": False, "error": None,
            "test": {v: {"mean_r2": x, "per_output": {}} for v, x in {VARIANTS.dense: dense_r2, **r2}.items()},
            "latency": {"1000": timing, "1": timing}, "flops": costs}


def sweep_file(tmp_path, points: list[dict], timing: dict | None = None):
    body = {"schema_version": 1, "started": "x", "finished": "x", "command": [], "smoke": False, "device": "cpu",
            "grid": {"target_sparsity": sorted({p["target_sparsity"] for p in points}), "prune_method": ["magnitude"]},
            "seeds": list(SEEDS), "settings": {}, "cluster": {}, "wall_seconds": {"total": 1.0}, "seed_runs": [],
            "points": points, "timing": timing or {"batches": [1, 1000], "threads": [2]}, "git": {}, "versions": {},
            "environment": {}, "summary": {}}
    write_json(tmp_path / "sweep" / "sweep.json", body)
    return load_sweep(tmp_path)


def two_points(tmp_path, wide: float = 0.03):
    """90%: 10x with drops 0.0 +- ``wide``; 80%: 5x with drops 0.002 +- 0.001."""
    pts = []
    for seed, dense in zip(SEEDS, (0.80, 0.90, 0.85)):
        noise = {1: 0.0, 2: wide, 3: -wide}[seed]
        pts.append(point(0.9, seed, dense, {VARIANTS.structured_ort: dense - noise}, {VARIANTS.structured_ort: 1.0}))
        pts.append(point(0.8, seed, dense, {VARIANTS.structured_ort: dense - 0.002 - (seed - 2) * 0.001},
                         {VARIANTS.structured_ort: 2.0}))
    return sweep_file(tmp_path, pts)


def test_a_faster_point_with_a_wide_spread_is_named_not_chosen(tmp_path):
    decision = decide(list(two_points(tmp_path).points), Rule())
    assert (decision.chosen.variant, decision.chosen.sparsity) == (VARIANTS.structured_ort, 0.8)
    assert decision.chosen.speedup == pytest.approx(5.0)
    (fast,) = decision.not_shown
    assert fast.sparsity == 0.9 and fast.mean_drop == pytest.approx(0.0) and fast.bound(Rule()) > 0.01
    assert decision.racers == (fast,)  # its mean is within the tolerance: more seeds could show it
    assert "faster, not shown: SPINN structured (ONNX Runtime) at 90.0%: 10.00x, drop 0.000 ± 0.030, 3 seeds" in decision.lines()[1]
    rate = re.search(r"true drop is the tolerance ([\d.]+)% of the time", error_rate_line(decision))
    assert 4.0 < float(rate.group(1)) < 6.0  # the one-sided 95% bound's 5%, on this sweep's spread
    # with a tight spread the same point is shown, and it is the faster one
    assert decide(list(two_points(tmp_path, wide=0.001).points), Rule()).chosen.sparsity == 0.9


def test_ties_go_to_the_smaller_model_and_one_seed_shows_nothing(tmp_path):
    pts = [point(s, seed, 0.8, {VARIANTS.structured: 0.8 - 0.001 * seed, VARIANTS.structured_ort: 0.8 - 0.001 * seed},
                 {VARIANTS.structured: eager, VARIANTS.structured_ort: ort}, storage={VARIANTS.structured: nbytes})
           for seed in SEEDS for s, eager, ort, nbytes in ((0.9, 2.0, 1.25, 500), (0.95, 1.27, 1.6, 300))]
    decision = decide(list(sweep_file(tmp_path, pts).points), Rule())
    # 8.0x (ORT at 90%, 500 bytes) and 7.9x (eager at 95%, 300 bytes) tie within 5%: the smaller wins
    assert (decision.chosen.variant, decision.chosen.sparsity) == (VARIANTS.structured, 0.95)
    assert decide(list(sweep_file(tmp_path, pts).points), Rule(tie=0.0)).chosen.sparsity == 0.9
    one_seed = [p for p in pts if p["seed"] == 1]
    assert decide(list(sweep_file(tmp_path, one_seed).points), Rule()).chosen.variant == VARIANTS.dense


def test_the_rule_accepts_a_point_at_the_tolerance_at_its_stated_rate():
    rates = accept_rates(Rule(), sd=0.01, n=3, trials=40000)
    assert rates[0.01] == pytest.approx(0.05, abs=0.006)  # one-sided 95%: 5% false acceptance
    assert rates[0.0] > 0.2 and accept_rates(Rule(), sd=0.01, n=6, trials=40000)[0.0] > rates[0.0]


@pytest.mark.parametrize("timing, says", [
    ({"batches": [1, 64], "threads": [2]}, "timed at batches [1, 64] with [2] threads, not batch 1000"),
    ({"batches": [1, 1000], "threads": [4]}, "re-time it: spinn-run sweep --output"),
    ({"batches": [1, 1000], "threads": [2], "cpu_busy_percent_before": 80.0}, "busy CPU (80%)"),
])
def test_recommend_refuses_a_sweep_that_cannot_answer_in_one_line(tmp_path, capsys, timing, says):
    sweep_file(tmp_path, [point(0.9, 1, 0.8, {}, {})], timing)
    assert main(["recommend", "--output", str(tmp_path), "--no-retrain"]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_recommend_without_a_sweep_says_which_command_makes_one(tmp_path, capsys):
    assert main(["recommend", "--output", str(tmp_path / "none")]) == 2
    assert "run `spinn-run sweep --output" in capsys.readouterr().err


def test_the_deploy_card_holds_the_file_hash_accuracy_latency_and_rule(tmp_path):
    decision = decide(list(two_points(tmp_path).points), Rule())
    folder = tmp_path / "recommended"
    onnx = ResultsPaths(folder).export(VARIANTS.structured)
    onnx.parent.mkdir(parents=True)
    onnx.write_bytes(b"model")
    evaluation = evaluation_record()
    card = write_card(folder, decision, evaluation, bench({"dense": 10.0, VARIANTS.structured_ort: 2.0}, threads=(2,)),
                      list(two_points(tmp_path).points))
    saved = json.loads((folder / DEPLOY_JSON).read_text())
    assert saved == json.loads(json.dumps(card))
    assert saved["model"]["sha256"] == hashlib.sha256(b"model").hexdigest()
    assert saved["model"]["file"] == str(onnx)
    assert saved["how_to_run"].startswith(f"python -m spinn_utils.predict --model {onnx}")
    assert saved["accuracy"]["drop"] == pytest.approx(0.75 - 0.77)  # dense 0.75, structured ORT 0.77
    assert saved["latency"]["1000"]["model"]["speedup_vs_dense"] == pytest.approx(5.0)
    assert saved["error_rates"]["accepted_at_tolerance"] == pytest.approx(0.05, abs=0.01)
    text = (folder / DEPLOY_CARD).read_text()
    assert "faster, not shown: SPINN structured (ONNX Runtime) at 90.0%" in text and "sha256" in text
    assert (folder / "figures" / "recommend_pareto.png").stat().st_size > 10_000


def test_a_full_schedule_miss_is_said_and_the_next_shown_candidate_named(tmp_path):
    """The sweep showed the 80% point; retrained at the full schedule it loses 0.05: the card says
    it is outside the tolerance and names the next shown candidate (here dense)."""
    decision = decide(list(two_points(tmp_path).points), Rule())
    evaluation = evolve(evaluation_record(), f"models.{VARIANTS.structured_ort}", metrics(0.72, 0.68))
    card = card_record(tmp_path / "recommended", decision, evaluation,
                       bench({"dense": 10.0, VARIANTS.structured_ort: 2.0}, threads=(2,)), list(two_points(tmp_path).points))
    assert card["accuracy"]["drop"] == pytest.approx(0.75 - 0.70) and not card["accuracy"]["within_tolerance"]
    assert card["next"] == LABELS[VARIANTS.dense]
    assert "OUTSIDE the tolerance 0.01" in card_markdown(card)
