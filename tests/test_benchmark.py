"""Tests for the benchmark harness (bench.py), its statistics (bench_stats.py) and variants.

Small models and fake timers only: nothing here asserts on wall-clock time.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, replace

import pytest
import torch
from torch import nn

from spinn_utils.benchmark import worker_loop
from spinn_utils.benchmark.bench_config import BenchConfig
from spinn_utils.benchmark.isolated import TORCH_WORKER, Worker, alone_calls, measure_point
from spinn_utils.benchmark.peak import add_rates, gemm_gflops, gemm_summary, rate_gflops
from spinn_utils.benchmark.profile_ort import node_times
from spinn_utils.benchmark.run import (
    _peaks_in_process,
    cuda_skip_reason,
    run_benchmark,
    skipped_result,
)
from spinn_utils.benchmark.stats import (
    add_speedups,
    as_deployed,
    fastest_table,
    fastest_variants,
    results_table,
    summarize_ms,
    variants_table,
)
from spinn_utils.benchmark.timing import (
    make_timer,
    round_robin_order,
    time_interleaved,
    torch_threads,
    warm_up,
)
from spinn_utils.benchmark.variants import Variant, check_outputs, describe_variant, load_variants
from spinn_utils.compression.sparse import SparsePINN, convert_dense_to_sparse
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import VARIANTS
from spinn_utils.core.typed_json import encode
from spinn_utils.model.checkpoints import save_checkpoint
from spinn_utils.model.counting import linear_layers
from spinn_utils.model.mlp import DensePINN, ModelConfig

TINY = ModelConfig(input_dim=6, hidden_dims=(16, 8), output_dim=2)


def tiny_model(seed: int = 0, cfg: ModelConfig = TINY) -> DensePINN:
    torch.manual_seed(seed)
    return DensePINN(cfg).eval()


def masked_copy(model: DensePINN, keep: float = 0.3) -> DensePINN:
    """``model`` with all but the largest ``keep`` fraction of weights (globally) set to zero."""
    masked = tiny_model(cfg=model.cfg)
    masked.load_state_dict(model.state_dict())
    weights = [m.weight for m in linear_layers(masked)]
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    threshold = flat.kthvalue(int((1 - keep) * flat.numel())).values
    with torch.no_grad():
        for w in weights:
            w.mul_(w.abs() > threshold)
    return masked


def tiny_variants() -> list[Variant]:
    dense = tiny_model(0)
    masked = masked_copy(dense)
    structured = tiny_model(1, ModelConfig(input_dim=6, hidden_dims=(8, 4), output_dim=2))
    coo = convert_dense_to_sparse(masked, format="coo")
    return [
        Variant("dense", dense, "dense", "dense"),
        Variant(VARIANTS.masked, masked, "dense", VARIANTS.masked),
        Variant(VARIANTS.coo, coo, "coo", VARIANTS.masked),
        Variant(VARIANTS.semi24, None, "semi24", VARIANTS.masked, skip_reason="needs CUDA"),
        Variant(VARIANTS.structured, structured, "dense", VARIANTS.structured),
    ]


def fast_cfg(**overrides) -> BenchConfig:
    return replace(BenchConfig.smoke_test(), progress=False, **overrides)


# --- statistics and scheduling ------------------------------------------------------------

def test_summarize_ms_on_known_numbers():
    s = summarize_ms([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s["median_ms"], s["q1_ms"], s["q3_ms"], s["iqr_ms"]) == (3.0, 2.0, 4.0, 2.0)
    assert s["mean_ms"] == 3.0 and s["min_ms"] == 1.0 and s["repeats"] == 5
    assert math.isclose(s["std_ms"], math.sqrt(2.5))  # sample std (ddof=1)
    assert summarize_ms([1.0, 2.0, 3.0, 4.0])["median_ms"] == 2.5
    assert summarize_ms([7.0])["std_ms"] == 0.0
    with pytest.raises(SpinnError):
        summarize_ms([])


def test_round_robin_order_rotates_every_round():
    names = ["a", "b", "c"]
    rounds = [round_robin_order(names, r) for r in range(4)]
    assert rounds == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert [r[0] for r in rounds[:3]] == names  # each variant leads once per cycle


def logging_timer(log: list, ms_by_name: dict):
    """A fake ``time_call``: runs fn (which logs its name) and returns a fixed duration."""
    def time_call(fn, x):
        fn(x)
        return ms_by_name[log[-1]]
    return time_call


def test_variants_are_warmed_up_then_timed_round_robin():
    log: list[str] = []
    fns = {n: (lambda x, n=n: log.append(n)) for n in ("a", "b", "c")}
    cfg = fast_cfg(warmup=2, repeats=3, min_repeats=1, max_seconds_per_measurement=10.0, block=1)
    timer = logging_timer(log, dict.fromkeys(fns, 1.0))
    assert warm_up(fns, dict.fromkeys(fns), cfg, timer) == {}
    samples = time_interleaved(fns, dict.fromkeys(fns), cfg, timer)
    assert log[:6] == ["a", "a", "b", "b", "c", "c"]  # warm-up: each variant, before any timing
    # Each visit: one untimed re-warm call, then ``block`` timed ones; rounds rotate.
    visits = [log[i] for i in range(6, len(log), 2)]
    assert visits == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(log[i] == log[i + 1] for i in range(6, len(log), 2))
    assert {n: len(s) for n, s in samples.items()} == {"a": 3, "b": 3, "c": 3}


def test_blocks_of_timed_calls_follow_one_untimed_call():
    log: list[str] = []
    fns = {n: (lambda x, n=n: log.append(n)) for n in ("a", "b")}
    cfg = fast_cfg(repeats=5, min_repeats=1, max_seconds_per_measurement=10.0, block=2)
    samples = time_interleaved(fns, dict.fromkeys(fns), cfg, logging_timer(log, {"a": 1.0, "b": 2.0}))
    # rounds: a x3, b x3 | b x3, a x3 | a x2, b x2 (the last block is cut at ``repeats``)
    assert "".join(log) == "aaabbb" + "bbbaaa" + "aabb"
    assert samples == {"a": [1.0] * 5, "b": [2.0] * 5}


def test_a_pause_before_each_visit_lets_other_thread_pools_sleep(monkeypatch):
    """The idle pause happens before every visit's untimed call, never inside a timed call."""
    events: list[str] = []
    monkeypatch.setattr("spinn_utils.benchmark.timing.time.sleep", lambda s: events.append(f"sleep {s}"))
    fns = {n: (lambda x, n=n: events.append(n)) for n in ("a", "b")}
    cfg = fast_cfg(repeats=2, min_repeats=1, max_seconds_per_measurement=10.0, block=2, switch_pause_ms=25.0)
    time_interleaved(fns, dict.fromkeys(fns), cfg, logging_timer(events, {"a": 1.0, "b": 1.0}))
    assert events == ["sleep 0.025", "a", "a", "a", "sleep 0.025", "b", "b", "b"]
    with pytest.raises(SpinnError):
        BenchConfig(switch_pause_ms=-1.0)


def test_time_budget_stops_a_slow_variant_but_keeps_min_repeats():
    log: list[str] = []
    fns = {n: (lambda x, n=n: log.append(n)) for n in ("slow", "fast", "glacial")}
    cfg = fast_cfg(warmup=0, repeats=50, min_repeats=2, max_seconds_per_measurement=0.5, block=1)
    ms = {"slow": 100.0, "fast": 1.0, "glacial": 1000.0}
    samples = time_interleaved(fns, dict.fromkeys(fns), cfg, logging_timer(log, ms))
    # Untimed re-warm calls count against the budget too: 200 ms per round for "slow".
    assert len(samples["slow"]) == 3  # 600 ms spent after 3 rounds: budget reached
    assert len(samples["fast"]) == 50  # never reaches its budget: all repeats
    assert len(samples["glacial"]) == 2  # over budget at once, still min_repeats
    assert samples["slow"] == [100.0] * 3
    few = time_interleaved(fns, dict.fromkeys(fns), replace(cfg, repeats=1), logging_timer(log, ms))
    assert {n: len(s) for n, s in few.items()} == dict.fromkeys(fns, 1)  # repeats caps the floor


def test_warm_up_reports_a_variant_whose_kernel_raises():
    def unsupported(x):
        raise NotImplementedError("no sparse kernel for this layout\nsecond line")

    log: list[str] = []
    fns = {"ok": lambda x: log.append("ok"), "bad": unsupported}
    errors = warm_up(fns, dict.fromkeys(fns), fast_cfg(warmup=0), logging_timer(log, {"ok": 1.0}))
    assert errors == {"bad": "no sparse kernel for this layout"}
    assert log == ["ok"]  # warmup=0 still runs each variant once to prove it works


def test_cuda_timer_records_events_around_the_call_and_synchronizes(monkeypatch):
    log: list[str] = []

    class FakeEvent:
        """Stands in for torch.cuda.Event so the CUDA branch runs without a GPU."""

        def __init__(self, enable_timing=False):
            assert enable_timing
            self.name = "start" if not any(e.startswith("new") for e in log) else "end"
            log.append(f"new {self.name}")

        def record(self):
            log.append(f"record {self.name}")

        def synchronize(self):
            log.append(f"synchronize {self.name}")

        def elapsed_time(self, other):
            log.append(f"elapsed {self.name}->{other.name}")
            return 1.5

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    name, time_call = make_timer(torch.device("cuda"))
    assert name == "torch.cuda.Event"
    assert time_call(lambda x: log.append("forward"), None) == 1.5
    assert log == ["new start", "new end", "record start", "forward", "record end",
                   "synchronize end", "elapsed start->end"]


def test_torch_threads_restores_the_count_even_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


# --- speedups and the fastest variant -------------------------------------------------------

def row(threads, batch, variant, median):
    return {"threads": threads, "batch_size": batch, "variant": variant, "median_ms": median}


def test_speedup_is_against_dense_of_the_same_threads_and_batch():
    rows = add_speedups([
        row(1, 64, "dense", 10.0), row(2, 64, "dense", 4.0), row(1, 1, "dense", 1.0),
        row(1, 64, "v", 5.0), row(2, 64, "v", 5.0), row(1, 1, "v", 0.5), row(2, 1, "v", 1.0),
    ])
    speedup = {(r["threads"], r["batch_size"], r["variant"]): r["speedup_vs_dense"] for r in rows}
    assert speedup[(1, 64, "v")] == 2.0
    assert speedup[(2, 64, "v")] == 0.8
    assert speedup[(1, 1, "v")] == 2.0
    assert speedup[(2, 1, "v")] is None  # no dense at 2 threads, batch 1: no made-up baseline
    assert speedup[(1, 64, "dense")] == 1.0


def test_fastest_excludes_dense_and_variants_whose_outputs_differ():
    rows = add_speedups([
        row(1, 64, "dense", 1.0), row(1, 64, "wrong", 0.1), row(1, 64, "slow_ok", 4.0),
        row(1, 64, "ok", 2.0), row(1, 1, "dense", 1.0), row(1, 1, "wrong", 0.1),
    ])
    info = {"dense": {"outputs_match": True}, "wrong": {"outputs_match": False},
            "ok": {"outputs_match": True}, "slow_ok": {"outputs_match": True}}
    fastest = fastest_variants(rows, info)
    assert len(fastest) == 1  # at batch 1 only dense and a wrong variant ran: no winner
    (best,) = fastest
    assert (best["threads"], best["batch_size"], best["variant"]) == (1, 64, "ok")
    assert best["speedup_vs_dense"] == 0.5 and best["beats_dense"] is False


# --- variants: storage, FLOPs, outputs ------------------------------------------------------

def test_storage_and_flops_of_a_known_layer():
    layer_cfg = ModelConfig(input_dim=4, hidden_dims=(), output_dim=3)
    model = tiny_model(cfg=layer_cfg)
    with torch.no_grad():
        model.network[0].weight.copy_(torch.tensor([[1.0, 0, 0, 2], [0, 0, 3, 0], [0, 0, 0, 0]]))
    dense = describe_variant(Variant("masked", model, "dense", "masked"))
    assert dense["flops"] == 2 * 12 + 3  # a dense kernel multiplies the zeros too
    assert dense["flops_nonzero"] == 2 * 3 + 3
    assert dense["storage_bytes"] == (12 + 3) * 4
    assert dense["params"] == {"total": 15, "nonzero": 6, "sparsity": pytest.approx(0.6)}
    coo = describe_variant(Variant("coo", convert_dense_to_sparse(model, "coo"), "coo", "masked"))
    assert coo["flops"] == coo["flops_nonzero"] == 2 * 3 + 3
    assert coo["storage_bytes"] == 3 * 4 + 3 * 2 * 8 + 3 * 4  # values + int64 (row, col) + bias
    assert coo["format"] == "coo" and coo["reference"] == "masked"


class Unsupported(nn.Module):
    """A layer whose kernel does not exist here (like 2:4 at an unsupported shape)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2, 6))

    def forward(self, x):
        raise NotImplementedError("no kernel for this layout on this device")


def test_check_outputs_flags_a_variant_that_differs_from_its_reference():
    variants = [v for v in tiny_variants() if v.skip_reason is None]
    broken = convert_dense_to_sparse(variants[1].module, "csr")
    with torch.no_grad():
        broken.network[-1].bias.add_(1e-2)
    variants.append(Variant("spinn_broken", broken, "csr", VARIANTS.masked))
    variants.append(Variant("spinn_unsupported", Unsupported(), "semi24", VARIANTS.masked))
    report = check_outputs(variants, "cpu", n=16, atol=1e-4, atol_low_precision=1e-2)
    assert report["spinn_unsupported"] == {"error": "no kernel for this layout on this device"}
    assert report[VARIANTS.coo]["outputs_match"] and report[VARIANTS.coo]["max_abs_diff"] < 1e-5
    assert not report["spinn_broken"]["outputs_match"]
    assert report["spinn_broken"]["max_abs_diff"] == pytest.approx(1e-2, rel=1e-3)
    assert report["dense"] == {"outputs_match": True, "max_abs_diff": 0.0, "atol": 1e-4, "n": 16}


def write_tiny_checkpoints(root) -> ResultsPaths:
    paths = ResultsPaths.at(root).ensure()
    dense = tiny_model(0)
    structured = tiny_model(1, ModelConfig(input_dim=6, hidden_dims=(8, 4), output_dim=2))
    for file, kind, model in ((VARIANTS.dense, VARIANTS.dense, dense),
                              (VARIANTS.masked, VARIANTS.masked, masked_copy(dense)),
                              (VARIANTS.structured, VARIANTS.structured, structured)):
        save_checkpoint(paths.checkpoint(file), model, kind=kind, meta={"model": asdict(model.cfg)})
    return paths


def test_load_variants_builds_every_representation(tmp_path):
    paths = write_tiny_checkpoints(tmp_path)
    variants = {v.name: v for v in load_variants(paths, "cpu")}
    assert list(variants) == ["dense", VARIANTS.masked, VARIANTS.coo, VARIANTS.csr, VARIANTS.semi24, VARIANTS.structured,
                              VARIANTS.dense_ort, VARIANTS.structured_ort, VARIANTS.structured_int8_ort]
    assert "05.5" in variants[VARIANTS.structured_ort].skip_reason  # no export written yet
    assert "05.5" in variants[VARIANTS.structured_int8_ort].skip_reason
    assert "CUDA" in variants[VARIANTS.semi24].skip_reason and variants[VARIANTS.semi24].module is None
    assert isinstance(variants[VARIANTS.csr].module, SparsePINN)
    assert variants[VARIANTS.csr].reference == VARIANTS.masked and variants["dense"].reference == "dense"
    x = torch.randn(5, 6)
    with torch.inference_mode():
        torch.testing.assert_close(variants[VARIANTS.coo].module(x), variants[VARIANTS.masked].module(x))
    with pytest.raises(SpinnError, match="unknown sparse format"):
        load_variants(paths, "cpu", formats=("bsr",))
    paths.checkpoint(VARIANTS.structured).unlink()
    with pytest.raises(SpinnError, match="not found"):
        load_variants(paths, "cpu")


# --- the whole run --------------------------------------------------------------------------

class ThreadSpy(nn.Module):
    """Wraps a model and records the torch thread count each forward ran with."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.seen = model, set()

    def forward(self, x):
        self.seen.add(torch.get_num_threads())
        return self.model(x)


def test_run_benchmark_sweeps_threads_restores_them_and_writes_the_contract():
    variants = tiny_variants()
    spy = ThreadSpy(variants[0].module)
    variants[0].module = spy
    variants.append(Variant("spinn_unsupported", Unsupported(), "semi24", VARIANTS.masked))
    with torch_threads(3):  # a count the sweep does not use, so restoring is visible
        # In this process (the spy must see the calls); the worker path is tested below.
        result = run_benchmark(variants, fast_cfg(threads=[1, 2], cpu_batch_sizes=[1, 4], isolate_runtimes=False), "cpu")
        assert torch.get_num_threads() == 3
    assert spy.seen == {1, 2, 3}  # 3 while checking outputs, then the sweep's 1 and 2
    assert not result.skipped and result.timer == "time.perf_counter_ns"  # a Benchmark record: typed
    assert result.skipped_variants == {
        VARIANTS.semi24: "needs CUDA",
        "spinn_unsupported": "forward raised: no kernel for this layout on this device",
    }
    assert result.failures == []
    timed = ["dense", VARIANTS.masked, VARIANTS.coo, VARIANTS.structured]
    assert list(result.variants) == timed
    assert all(v.storage_bytes > 0 and v.outputs_match for v in result.variants.values())
    assert len(result.results) == 2 * 2 * len(timed)
    assert all(r.speedup_vs_dense == 1.0 for r in result.results if r.variant == "dense")
    assert all(r.repeats >= 2 for r in result.results)
    assert {(f.threads, f.batch_size) for f in result.fastest} == {(1, 1), (1, 4), (2, 1), (2, 4)}
    assert all(f.variant != "dense" for f in result.fastest)
    assert result.environment["device"] == "cpu"  # free-form block
    assert result.load_average_1min.before is None or result.load_average_1min.before >= 0
    json.dumps(encode(result), allow_nan=False)
    assert list(results_table(result).columns) == timed
    assert result.processes is None and result.as_deployed == []  # everything ran here
    assert [p.threads for p in result.gemm_peak] == [1, 2]
    assert all(r.gflops_per_s > 0 and r.pct_of_gemm_peak > 0 for r in result.results)


def test_skipped_gpu_result_has_the_contract_shape():
    reason = cuda_skip_reason("cpu")
    assert isinstance(reason, str) and reason
    assert (cuda_skip_reason("auto") is None) == torch.cuda.is_available()
    result = skipped_result(reason, "cpu")
    assert result.skipped is True and result.reason == reason
    assert {"torch_version", "cpu_model", "device"} <= set(result.environment)
    json.dumps(encode(result), allow_nan=False)
    for table in (results_table, variants_table, fastest_table):
        assert reason in table(result).to_string()


def test_config_turns_lists_into_tuples_and_refuses_nonsense():
    cfg = BenchConfig(cpu_batch_sizes=[1, 8], threads=[2, 2, 1])
    assert cfg.cpu_batch_sizes == (1, 8)
    assert cfg.thread_counts(torch.device("cpu")) == (2, 1)  # duplicates dropped, order kept
    assert BenchConfig().thread_counts(torch.device("cpu"))[0] == 1
    for bad in ({"threads": [0]}, {"cpu_batch_sizes": []}, {"repeats": 0},
                {"max_seconds_per_measurement": 0}, {"standalone_segments": 0}, {"lead_ms": -1},
                {"stop_spinning_from": 0}):
        with pytest.raises(SpinnError):
            BenchConfig(**bad)


# --- the machine's limit and the as-deployed numbers ---------------------------------------

def test_gemm_and_variant_rates_on_known_numbers():
    assert gemm_gflops(1000, 10.0) == pytest.approx(200.0)  # 2e9 FLOPs in 10 ms
    assert rate_gflops(4.2e8, 2.0) == pytest.approx(210.0)
    peak = gemm_summary(1000, [12.0, 10.0, 11.0], 2, "here")
    assert peak["median_ms"] == 11.0 and peak["gflops_per_s"] == pytest.approx(2e9 / 11e6)
    assert peak["best_gflops_per_s"] == pytest.approx(200.0) and peak["repeats"] == 3
    rows = [{"variant": "a", "threads": 2, "batch_size": 1000, "median_ms": 2.0},
            {"variant": "a", "threads": 1, "batch_size": 1, "median_ms": 0.5}]
    add_rates(rows, {"a": {"flops_nonzero": 420_000}}, {2: 200.0})
    assert rows[0]["gflops_per_s"] == pytest.approx(210.0) and rows[0]["pct_of_gemm_peak"] == pytest.approx(105.0)
    assert rows[1]["gflops_per_s"] == pytest.approx(420_000 / 0.5e6) and rows[1]["pct_of_gemm_peak"] is None


def test_the_gemm_rate_in_process_is_the_arithmetic_of_its_timer():
    """The CUDA path (notebook 06) measures in its own process with CUDA events; here a fake
    timer stands in for the events, so the arithmetic is checked without a GPU."""
    calls = []

    def fake_timer(fn, x):
        calls.append(x.shape)
        return 4.0

    cfg = fast_cfg(threads=[1, 2], gemm_size=64, gemm_repeats=3)
    peaks = _peaks_in_process(cfg, torch.device("cpu"), fake_timer)
    assert [p["threads"] for p in peaks] == [1, 2] and len(calls) == 2 * (1 + 3)  # one untimed call first
    assert all(p["gflops_per_s"] == pytest.approx(2 * 64 ** 3 / 4e6) for p in peaks)


def test_as_deployed_puts_standalone_beside_in_harness():
    harness = [{"variant": "dense", "threads": 2, "batch_size": 1000, "median_ms": 10.0, "speedup_vs_dense": 1.0},
               {"variant": VARIANTS.structured_ort, "threads": 2, "batch_size": 1000, "median_ms": 2.5,
                "speedup_vs_dense": 4.0}]
    alone = [{"variant": "dense", "threads": 2, "batch_size": 1000, "median_ms": 9.0, "repeats": 50},
             {"variant": VARIANTS.structured_ort, "threads": 2, "batch_size": 1000, "median_ms": 2.0, "repeats": 200}]
    out = {r["variant"]: r for r in as_deployed(harness, alone)}
    ort = out[VARIANTS.structured_ort]
    assert ort["in_harness_median_ms"] == 2.5 and ort["standalone_median_ms"] == 2.0
    assert ort["standalone_over_in_harness"] == pytest.approx(0.8)
    assert ort["in_harness_speedup_vs_dense"] == 4.0 and ort["standalone_speedup_vs_dense"] == pytest.approx(4.5)
    assert out["dense"]["standalone_speedup_vs_dense"] == 1.0


def test_workers_time_each_runtime_in_its_own_process():
    """Real worker processes: the JSON says where each variant ran, the GEMM rate per thread
    count, GFLOP/s = useful FLOPs / median time, and dense alone beside dense in the harness."""
    variants = [v for v in tiny_variants() if v.skip_reason is None]
    result = run_benchmark(variants, fast_cfg(threads=[1], cpu_batch_sizes=[1, 4]), "cpu")
    procs = result.processes
    assert set(procs) == {"torch_worker", "standalone/dense"}  # dense also alone, in a process of its own
    assert all(p.imported["onnxruntime"] is False for p in procs.values())
    assert procs["torch_worker"].variants == sorted(v.name for v in variants)
    assert procs["standalone/dense"].variants == ["dense"]
    (peak,) = result.gemm_peak
    assert peak.threads == 1 and peak.gflops_per_s > 0 and "torch worker" in peak.where
    for r in result.results:
        flops = result.variants[r.variant].flops_nonzero * r.batch_size
        assert r.gflops_per_s == pytest.approx(flops / (r.median_ms * 1e6))
        assert r.pct_of_gemm_peak == pytest.approx(100 * r.gflops_per_s / peak.gflops_per_s)
    assert len(result.results) == 2 * len(variants) and not result.failures
    (dense,) = result.as_deployed  # no deployable export here: dense alone, at batch 1
    assert (dense.variant, dense.batch_size) == ("dense", 1) and dense.standalone_median_ms > 0
    json.dumps(encode(result), allow_nan=False)


class FakeWorker:
    """Answers the coordinator's messages like a worker and logs every visit in one shared list."""

    def __init__(self, label: str, log: list) -> None:
        self.label, self.log = label, log

    def request(self, op: str, **msg) -> dict:
        if op == "prepare":
            self.log.append((self.label, "prepare", msg["stop_spinning"]))
            return {"errors": {}}
        self.log.append((self.label, msg["name"], msg["calls"], msg["lead_ms"]))
        return {"untimed_ms": msg["lead_ms"], "ms": [2.0] * msg["calls"]}


def test_standalone_visits_alternate_with_the_harness_rounds():
    """A shared VM's speed steps every few seconds: the standalone numbers are taken in segments
    between the harness's rounds, not after them, and every visit starts with its lead-in."""
    variants = [v for v in tiny_variants() if v.skip_reason is None]
    log: list = []
    torch_worker = FakeWorker("harness", log)
    owner = {v.name: torch_worker for v in variants}
    solo = {"dense": FakeWorker("alone", log)}
    cfg = fast_cfg(standalone_segments=3, lead_ms=7.0, repeats=30, min_repeats=3, visit_ms=0.0, block=5,
                   max_seconds_per_measurement=10.0, standalone_seconds=0.03)
    harness, errors, alone = measure_point(variants, owner, 1, 4, cfg, solo)
    assert not errors and set(alone) == {"dense"}
    prepared = [entry for entry in log if entry[1] == "prepare"]
    assert prepared == [("harness", "prepare", False), ("alone", "prepare", False)]  # batch 4 < 64: pools spin
    del log[:len(prepared)]
    kinds = [who for who, *_ in log]
    segments = [i for i, (a, b) in enumerate(zip(kinds, kinds[1:])) if a == "harness" and b == "alone"]
    assert len(segments) == 3 and kinds[-1] == "alone"  # harness rounds, dense alone, three times
    assert all(lead == 7.0 for *_, lead in log)
    assert all(len(ms) == 30 for ms in harness.values())  # the segments add up to the repeats
    assert len(alone["dense"]) == 3 * alone_calls(cfg, 2.0) == 15  # 10 ms per segment at 2 ms a call
    log.clear()
    only_harness, _, none_alone = measure_point(variants, owner, 1, 4, replace(cfg, stop_spinning_from=4), None)
    assert none_alone == {} and set(only_harness) == set(harness)
    assert log[0] == ("harness", "prepare", True)  # the coordinator's policy, sent with the inputs


def test_alone_calls_fill_the_segment_within_the_repeats():
    cfg = fast_cfg(standalone_seconds=1.0, standalone_segments=4, repeats=200, min_repeats=8)
    assert alone_calls(cfg, 2.5) == 50  # 250 ms per segment
    assert alone_calls(cfg, 0.01) == 50  # capped at repeats / segments
    assert alone_calls(cfg, 1000.0) == 2  # a slow model still gets the floor's share


class CountingRuntime:
    """Each call advances a fake clock by ``call_ms``: the visit's arithmetic, without sleeping."""

    kernel_errors = ()

    def __init__(self, call_ms: float) -> None:
        self.calls, self.call_ms, self.now_ns = 0, call_ms, 0

    def clock(self) -> int:
        return self.now_ns

    def call(self, name: str) -> None:
        self.calls += 1
        self.now_ns += int(self.call_ms * 1e6)


def test_a_visit_runs_untimed_calls_for_its_lead_in_then_the_timed_ones(monkeypatch):
    runtime = CountingRuntime(call_ms=2.0)
    monkeypatch.setattr(worker_loop.time, "perf_counter_ns", runtime.clock)
    reply = worker_loop.visit(runtime, "m", calls=3, lead_ms=0.0)
    assert runtime.calls == 4 and reply == {"untimed_ms": 2.0, "ms": [2.0] * 3}  # one untimed call first
    runtime.calls = 0
    reply = worker_loop.visit(runtime, "m", calls=3, lead_ms=9.0)
    assert runtime.calls == 5 + 3 and reply["untimed_ms"] == 10.0 and len(reply["ms"]) == 3


def test_a_worker_error_is_raised_not_swallowed():
    with Worker(TORCH_WORKER) as worker:
        with pytest.raises(SpinnError, match="KeyError"):
            worker.request(op="visit", name="nothing loaded", calls=1)
        assert worker.request(op="modules")["torch"] is True  # still serving after the error


def test_ort_profile_is_summed_per_node_after_the_warm_up_runs():
    trace = [{"cat": "Session", "name": "model_run", "ts": 0}, {"cat": "Session", "name": "model_run", "ts": 100},
             {"cat": "Session", "name": "model_run", "ts": 200},
             {"cat": "Node", "name": "g_kernel_time", "ts": 10, "dur": 999, "args": {"op_name": "Gemm"}},  # warm-up
             {"cat": "Node", "name": "g_kernel_time", "ts": 110, "dur": 30, "args": {"op_name": "Gemm"}},
             {"cat": "Node", "name": "g_kernel_time", "ts": 210, "dur": 50, "args": {"op_name": "Gemm"}},
             {"cat": "Node", "name": "g_fence_before", "ts": 210, "dur": 7}]
    assert node_times(trace, skip_runs=1) == {"g": {"op": "Gemm", "us_per_call": 40.0}}
    with pytest.raises(SpinnError, match="none after"):
        node_times(trace, skip_runs=3)


def test_a_visit_lasts_visit_ms_within_the_repeats_and_budget_left():
    """Fast variants get long enough visits for their thread pool to be busy, as deployed."""
    from spinn_utils.benchmark.timing import visit_calls

    cfg = fast_cfg(block=5, visit_ms=50.0, repeats=200, max_seconds_per_measurement=2.0)
    assert visit_calls(cfg, 0, 0.0, None) == 5  # first visit: no speed known yet
    assert visit_calls(cfg, 5, 10.0, 2.0) == 25  # 50 ms at 2 ms a call
    assert visit_calls(cfg, 190, 10.0, 0.01) == 10  # never past repeats
    assert visit_calls(cfg, 5, 1990.0, 2.0) == 5  # 10 ms of budget left: block only
    assert visit_calls(replace(cfg, visit_ms=0.0), 5, 10.0, 2.0) == 5
    with pytest.raises(SpinnError):
        BenchConfig(visit_ms=-1.0)
