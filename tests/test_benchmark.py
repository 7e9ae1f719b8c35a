"""Tests of the benchmark: what is timed where, how rotations give the speedup, and the records.

Small models, fake timers and fake clocks: nothing here asserts on wall-clock time or on one
variant being faster than another (docs/conventions.md).
"""
from __future__ import annotations

import contextlib
import json
import math
import sys

import pytest
import torch
from torch import nn

from spinn_utils.benchmark import worker_loop
from spinn_utils.benchmark.bench_config import BenchConfig
from spinn_utils.benchmark.peak import add_rates, gemm_gflops, gemm_summary, rate_gflops
from spinn_utils.benchmark.run import cuda_skip_reason, measure, run_benchmark, skipped_result
from spinn_utils.benchmark.stats import (
    fastest_variants,
    rotation_speedups,
    summarize_ms,
    summarize_point,
)
from spinn_utils.benchmark.timing import MIN_ROTATIONS, make_timer, rotate, torch_threads
from spinn_utils.benchmark.variants import Variant, check_outputs, describe_variant, load_variants
from spinn_utils.benchmark.workers import TORCH_WORKER, Worker, local_workers, measure_point
from spinn_utils.compression.sparse import SparsePINN, convert_dense_to_sparse
from spinn_utils.core.errors import SpinnError
from spinn_utils.core.io import to_jsonable
from spinn_utils.core.overrides import with_overrides
from spinn_utils.core.paths import ResultsPaths
from spinn_utils.core.registry import VARIANTS
from spinn_utils.core.timing import timed_block
from spinn_utils.model.checkpoints import save_checkpoint
from spinn_utils.model.counting import linear_layers
from spinn_utils.model.mlp import DensePINN, ModelConfig
from spinn_utils.model.onnx_profile import node_times
from spinn_utils.reporting.bench_tables import fastest_table, results_table, variants_table

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
    return with_overrides(BenchConfig.smoke_test(), progress=False, **overrides)


class Unsupported(nn.Module):
    """A layer whose kernel does not exist here (like 2:4 at an unsupported shape)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2, 6))

    def forward(self, x):
        raise NotImplementedError("no kernel for this layout on this device")


def broken_csr(masked: nn.Module) -> nn.Module:
    """A CSR copy of the masked model with one bias off by 1e-2: fast, perhaps, and wrong."""
    broken = convert_dense_to_sparse(masked, "csr")
    with torch.no_grad():
        broken.network[-1].bias.add_(1e-2)
    return broken


# --- the timing loop, the rotations and the speedup within them ---------------------------

def test_summarize_ms_on_known_numbers():
    s = summarize_ms([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s["median_ms"], s["q1_ms"], s["q3_ms"], s["iqr_ms"]) == (3.0, 2.0, 4.0, 2.0)
    assert s["mean_ms"] == 3.0 and s["min_ms"] == 1.0 and s["repeats"] == 5
    assert math.isclose(s["std_ms"], math.sqrt(2.5))  # sample std (ddof=1)
    assert summarize_ms([1.0, 2.0, 3.0, 4.0])["median_ms"] == 2.5
    assert summarize_ms([7.0])["std_ms"] == 0.0
    with pytest.raises(SpinnError):
        summarize_ms([])


def test_a_block_warms_up_for_its_time_then_times_at_least_its_calls():
    log: list[str] = []
    durations = iter([4.0, 4.0, 4.0] + [3.0] * 10)

    def call() -> float:
        log.append("call")
        return next(durations)

    ms = timed_block(call, warmup_ms=10.0, timed_ms=7.0)
    assert ms == [3.0, 3.0, 3.0]  # 12 ms of warm-up calls are not samples; then >= 7 ms timed
    assert len(log) == 6
    assert timed_block(lambda: 5.0, warmup_ms=0.0, timed_ms=0.0, min_calls=4) == [5.0] * 4  # one untimed first


def test_rotations_visit_every_variant_once_in_the_same_order():
    visits: list[str] = []
    samples = rotate(["a", "b", "c"], lambda name: visits.append(name) or [1.0], fast_cfg(rotations=4))
    assert "".join(visits) == "abc" * 4  # A B C A B C ...: no variant is visited twice in a row
    assert {n: len(r) for n, r in samples.items()} == dict.fromkeys("abc", 4)


def test_the_point_budget_stops_rotations_but_never_below_the_minimum():
    now = [0.0]

    def visit(name: str) -> list[float]:
        now[0] += 1.0  # every visit takes one second on the fake clock
        return [1.0]

    cfg = fast_cfg(rotations=50, seconds_per_point=10.0)
    samples = rotate(["a", "b"], visit, cfg, clock=lambda: now[0])
    assert len(samples["a"]) == 5  # 2 s a rotation: a sixth would end past 10 s
    now[0] = 0.0
    slow = rotate(["a", "b"], visit, with_overrides(cfg, seconds_per_point=0.5), clock=lambda: now[0])
    assert len(slow["a"]) == MIN_ROTATIONS
    now[0] = 0.0
    assert len(rotate(["a"], visit, with_overrides(cfg, rotations=2, seconds_per_point=0.5), clock=lambda: now[0])["a"]) == 2


def test_the_speedup_is_taken_within_each_rotation():
    """The machine halves its speed between rotations, and the fast variant gets more calls in
    the fast rotation: pooled medians would say 4x, the rotations say 2x every time."""
    samples = {"dense": [[10.0], [20.0], [20.0]], "v": [[5.0] * 10, [10.0], [10.0]]}
    assert rotation_speedups(samples)["v"] == [2.0, 2.0, 2.0]
    point = summarize_point(samples)
    assert point["v"]["speedup_vs_dense"] == 2.0 and point["v"]["speedup_iqr"] == 0.0
    assert point["v"]["median_ms"] == 5.0 and point["v"]["repeats"] == 12 and point["v"]["rotations"] == 3
    assert point["dense"]["speedup_vs_dense"] == 1.0
    drift = summarize_point({"dense": [[10.0], [10.0], [10.0], [10.0]], "v": [[5.0], [5.0], [4.0], [2.0]]})
    assert drift["v"]["speedup_vs_dense"] == pytest.approx(2.25)  # median of 2, 2, 2.5, 5
    assert drift["v"]["speedup_iqr"] == pytest.approx(3.125 - 2.0)  # q3 - q1 of the ratios (linear)
    no_dense = summarize_point({"v": [[1.0], [2.0]]})
    assert no_dense["v"]["speedup_vs_dense"] is None and no_dense["v"]["speedup_iqr"] is None


class FakeWorker:
    """Answers the coordinator like a worker and logs every message in one shared list."""

    def __init__(self, label: str, log: list, errors: dict | None = None) -> None:
        self.label, self.log, self.errors = label, log, errors or {}

    def request(self, op: str, **msg) -> dict:
        if op == "prepare":
            self.log.append((self.label, "prepare", msg["stop_spinning"]))
            return {"errors": {n: e for n, e in self.errors.items() if n in msg["inputs"]}}
        self.log.append((self.label, msg["name"]))
        return {"ms": [2.0, 2.0]}


def test_a_point_visits_the_workers_in_rotation_and_leaves_out_a_kernel_that_raised():
    variants = [v for v in tiny_variants() if v.skip_reason is None]
    log: list = []
    torch_worker = FakeWorker("torch", log, errors={VARIANTS.coo: "no kernel"})
    ort_worker = FakeWorker("ort", log)
    owner = {v.name: torch_worker for v in variants} | {"export": ort_worker}
    variants.append(Variant("export", variants[0].module, "onnx", "dense"))
    samples, errors = measure_point(variants, owner, 1, 64, fast_cfg(rotations=3))
    assert errors == {VARIANTS.coo: "no kernel"} and VARIANTS.coo not in samples
    assert log[:2] == [("torch", "prepare", True), ("ort", "prepare", True)]  # batch 64: pools stop spinning
    visits = [name for _, name in log[2:]]
    order = ["dense", VARIANTS.masked, VARIANTS.structured, "export"]
    assert visits == order * 3 and all(len(r) == 3 for r in samples.values())
    measure_point(variants, owner, 1, 1, fast_cfg(rotations=1))
    assert ("ort", "prepare", False) in log  # batch 1 keeps ONNX Runtime's default, as deployed


def test_a_kernel_that_raises_is_reported_by_the_worker_not_timed():
    class Runtime:
        kernel_errors = (NotImplementedError,)

        def set_inputs(self, threads, inputs, stop_spinning=False):
            self.threads = threads

        def call(self, name):
            if name == "bad":
                raise NotImplementedError("no sparse kernel for this layout\nsecond line")

    reply = worker_loop.handle(Runtime(), {"op": "prepare", "threads": 1, "inputs": {"ok": 0, "bad": 0}})
    assert reply == {"errors": {"bad": "no sparse kernel for this layout"}}


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


# --- the fastest variant ------------------------------------------------------------------

def row(threads, batch, variant, median, dense=1.0):
    return {"threads": threads, "batch_size": batch, "variant": variant, "median_ms": median,
            "speedup_vs_dense": dense / median}


def test_fastest_excludes_dense_and_variants_whose_outputs_differ():
    rows = [
        row(1, 64, "dense", 1.0), row(1, 64, "wrong", 0.1), row(1, 64, "slow_ok", 4.0),
        row(1, 64, "ok", 2.0), row(1, 1, "dense", 1.0), row(1, 1, "wrong", 0.1),
    ]
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
    assert dense["params"].model_dump() == {"total": 15, "nonzero": 6, "sparsity": pytest.approx(0.6)}
    coo = describe_variant(Variant("coo", convert_dense_to_sparse(model, "coo"), "coo", "masked"))
    assert coo["flops"] == coo["flops_nonzero"] == 2 * 3 + 3
    assert coo["storage_bytes"] == 3 * 4 + 3 * 2 * 8 + 3 * 4  # values + int64 (row, col) + bias
    assert coo["format"] == "coo" and coo["reference"] == "masked"


def test_check_outputs_flags_a_variant_that_differs_from_its_reference():
    variants = [v for v in tiny_variants() if v.skip_reason is None]
    variants.append(Variant("spinn_broken", broken_csr(variants[1].module), "csr", VARIANTS.masked))
    variants.append(Variant("spinn_unsupported", Unsupported(), "semi24", VARIANTS.masked))
    report = check_outputs(variants, "cpu", n=16)
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
        save_checkpoint(paths.checkpoint(file), model, kind=kind, meta={"model": model.cfg.model_dump()})
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

def test_every_variant_is_timed_in_a_torch_worker_and_a_wrong_one_is_not_timed(monkeypatch):
    """Real worker processes: PyTorch variants in the torch worker (ONNX Runtime never imported
    there), the GEMM rate per thread count, a kernel that raises and a variant whose outputs
    differ from its reference recorded and never timed, the load average as the OS gave it."""
    monkeypatch.setattr("spinn_utils.benchmark.run.os.getloadavg", lambda: (0.25, 0.0, 0.0))
    variants = [v for v in tiny_variants() if v.skip_reason is None]
    variants.append(Variant("spinn_broken", broken_csr(variants[1].module), "csr", VARIANTS.masked))
    variants.append(Variant("spinn_unsupported", Unsupported(), "semi24", VARIANTS.masked))
    result = run_benchmark(variants, fast_cfg(threads=[1], cpu_batch_sizes=[1, 4]), "cpu")
    timed = ["dense", VARIANTS.masked, VARIANTS.coo, VARIANTS.structured]
    assert result.processes["torch_worker"].variants == sorted(timed)
    assert result.processes["torch_worker"].imported == {"torch": True, "onnxruntime": False}
    assert set(result.processes) == {"torch_worker"}
    assert "outputs differ from spinn_masked" in result.skipped_variants["spinn_broken"]
    assert result.skipped_variants["spinn_unsupported"] == "forward raised: no kernel for this layout on this device"
    assert result.variants["spinn_broken"].outputs_match is False  # described, so the checklist can fail it
    assert {r.variant for r in result.results} == set(timed) and not result.failures
    assert len(result.results) == 2 * len(timed)
    assert all(r.rotations == 2 and r.repeats >= 2 for r in result.results)  # smoke: two rotations
    assert all(r.speedup_vs_dense == 1.0 for r in result.results if r.variant == "dense")
    (peak,) = result.gemm_peak
    assert peak.threads == 1 and peak.gflops_per_s > 0 and "torch_worker" in peak.where
    for r in result.results:
        flops = result.variants[r.variant].flops_nonzero * r.batch_size
        assert r.gflops_per_s == pytest.approx(flops / (r.median_ms * 1e6))
        assert r.pct_of_gemm_peak == pytest.approx(100 * r.gflops_per_s / peak.gflops_per_s)
    assert all(f.variant not in ("dense", "spinn_broken") for f in result.fastest)
    assert result.load_average_1min.before == 0.25 == result.load_average_1min.after
    json.dumps(to_jsonable(result), allow_nan=False)
    assert list(results_table(result).columns) == timed


class ThreadSpy(nn.Module):
    """Wraps a model and records the torch thread count each forward ran with."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.seen = model, set()

    def forward(self, x):
        self.seen.add(torch.get_num_threads())
        return self.model(x)


def test_the_in_process_path_of_notebook_06_rotates_sets_threads_and_restores_them():
    """The CUDA path runs in this process with CUDA events; here a fake timer stands in for the
    events, so rotations, threads, failures and the GEMM arithmetic are checked without a GPU."""
    variants = [v for v in tiny_variants() if v.skip_reason is None]
    spy = ThreadSpy(variants[0].module)
    variants[0].module = spy
    variants.append(Variant("spinn_unsupported", Unsupported(), "semi24", VARIANTS.masked))
    calls: list = []

    def fake_timer(fn, x):
        calls.append(x.shape)
        fn(x)
        return 4.0

    cfg = fast_cfg(threads=[1, 2], cpu_batch_sizes=[1, 4], gemm_size=64)
    info = {v.name: {"dtype": "float32"} for v in variants}
    with torch_threads(3):
        owner = local_workers(variants, torch.device("cpu"), fake_timer)
        measured = measure(variants, cfg, torch.device("cpu"), info, owner)
        assert torch.get_num_threads() == 3
    assert spy.seen == {1, 2}
    assert {(f["threads"], f["batch_size"]) for f in measured["failures"]} == {(1, 1), (1, 4), (2, 1), (2, 4)}
    assert len(measured["rows"]) == 2 * 2 * 4 and all(r["rotations"] == 2 for r in measured["rows"])
    assert all(r["median_ms"] == 4.0 and r["speedup_vs_dense"] == 1.0 for r in measured["rows"])
    assert [p["threads"] for p in measured["peaks"]] == [1, 2] and measured["processes"] is None
    assert all(p["gflops_per_s"] == pytest.approx(2 * 64 ** 3 / 4e6) for p in measured["peaks"])


def test_skipped_gpu_result_has_the_contract_shape():
    reason = cuda_skip_reason("cpu")
    assert isinstance(reason, str) and reason
    assert (cuda_skip_reason("auto") is None) == torch.cuda.is_available()
    result = skipped_result(reason, "cpu")
    assert result.skipped is True and result.reason == reason
    assert {"torch_version", "cpu_model", "device"} <= set(result.environment.model_dump())
    json.dumps(to_jsonable(result), allow_nan=False)
    for table in (results_table, variants_table, fastest_table):
        assert reason in table(result).to_string()


def test_config_turns_lists_into_tuples_and_refuses_nonsense():
    cfg = BenchConfig(cpu_batch_sizes=[1, 8], threads=[2, 2, 1])
    assert cfg.cpu_batch_sizes == (1, 8)
    assert cfg.thread_counts(torch.device("cpu")) == (2, 1)  # duplicates dropped, order kept
    assert BenchConfig().thread_counts(torch.device("cpu"))[0] == 1
    for bad in ({"threads": [0]}, {"cpu_batch_sizes": []}, {"rotations": 0}, {"seconds_per_point": 0},
                {"visit_ms": -1}, {"warmup_ms": -1}, {"gemm_size": 0}):
        with pytest.raises(SpinnError):
            BenchConfig(**bad)


# --- the machine's limit, workers, profiles -------------------------------------------------

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


def test_a_worker_error_is_raised_not_swallowed():
    with contextlib.closing(Worker(TORCH_WORKER)) as worker:
        with pytest.raises(SpinnError, match="KeyError"):
            worker.request(op="visit", name="nothing loaded", calls=1)
        assert worker.request(op="modules")["torch"] is True  # still serving after the error


def test_the_onnx_runtime_worker_module_does_not_import_torch():
    """The worker's own imports (its runtime, the message loop, the timing helper) leave torch out."""
    import subprocess

    code = ("import sys; import spinn_utils.benchmark.ort_worker; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


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
