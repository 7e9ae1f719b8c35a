"""The sparsity sweep's driver (``spinn-run sweep``; docs/sweeps.md): the seeds and points run on
Dask (``sweep_tasks``), then, once every training task has stopped, each finished point is timed
alone in this process, then ``sweep/sweep.json``, Table 3 and the figures are written.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psutil
from dask.distributed import Client, LocalCluster, as_completed
from distributed.comm.addressing import parse_address, parse_host_port
from tqdm.auto import tqdm

from ..benchmark.bench_config import BenchConfig, available_cores
from ..benchmark.run import run_benchmark
from ..benchmark.variants import load_variants
from ..core.env import environment_info, package_versions
from ..core.errors import SpinnError, first_line
from ..core.io import read_json, to_jsonable
from ..core.lineage import LINEAGE
from ..core.overrides import with_overrides
from ..core.paths import ResultsPaths
from ..core.registry import METRICS, SWEEP_FILE, TEST_VARIANTS, VARIANTS
from ..core.results_files import read_result, write_result
from ..core.results_schema import Pruning, Skipped
from ..core.results_schema_eval import Benchmark, TestEvaluation
from ..core.results_schema_sweep import OutputScore, PointCost, PointTiming, Sweep, SweepLatency
from ..reporting.figures import FigureConfig
from ..reporting.sweep_figures import make_sweep_figures
from ..reporting.sweep_report import BUSY_PERCENT, REPRESENTATIONS, sweep_summary, write_table3
from .notebooks import NOTEBOOK_DIR, UsageError
from .preflight import results_lock
from .runner import git_commit
from .sweep_spec import POINT_NOTEBOOKS, SEED_NOTEBOOKS, SweepSpec, grid_args, make_spec
from .sweep_tasks import THREAD_VARS, UNSET, error_text, failed, point_task, seed_task

WORKER_WAIT_S = 120  # an existing cluster's first worker (a batch job may still be starting)
SCHEDULER_SCHEMES = ("tcp", "tls", "ucx")  # what dask.distributed connects a client over
LATENCY_FILE = "sweep_latency.json"  # in each point folder: its timing, with what it timed
UNTIMED = "not timed, by design: the magnitude points of this sparsity carry its latency (as many non-zeros)"


def check_scheduler(address: str) -> None:
    """``--scheduler``: a Dask address whose port answers within 5 s, checked before anything is
    written (Dask's own client retries a refused port for its whole timeout)."""
    try:
        scheme, location = parse_address(address.strip())
        host, port = parse_host_port(location)
    except ValueError:
        scheme = None
    if scheme not in SCHEDULER_SCHEMES:
        raise UsageError(f"--scheduler {address!r}: not a Dask scheduler address; expected tcp://HOST:PORT "
                         f"(e.g. tcp://10.0.0.1:8786; schemes {', '.join(SCHEDULER_SCHEMES)})")
    if scheme == "ucx":
        return  # not a TCP socket: Dask reports it
    try:
        socket.create_connection((host, port), timeout=5.0).close()
    except (OSError, OverflowError) as err:  # OverflowError: a port above 65535
        raise UsageError(f"--scheduler {address}: cannot connect ({first_line(err)}); "
                         "is the scheduler running there?") from None


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of ``scheduler``, or of an embedded LocalCluster on loopback; closed on exit, and
    the environment put back as it was (the nanny writes thread and allocator variables into it
    that the timing must not inherit: docs/sweeps.md, "Timing never beside training")."""
    saved = dict(os.environ)
    try:
        with contextlib.ExitStack() as closing:  # the client, then the cluster
            if scheduler:
                try:
                    client = closing.enter_context(Client(scheduler, timeout="20s"))
                    client.wait_for_workers(1, timeout=WORKER_WAIT_S)
                except (OSError, TimeoutError) as err:
                    raise UsageError(f"--scheduler {scheduler}: cannot connect, or no worker joined within "
                                     f"{WORKER_WAIT_S} s ({first_line(err)})") from err
            else:
                # A free port: 8787 may be another cluster's (the dashboard itself needs bokeh).
                cluster = closing.enter_context(LocalCluster(
                    n_workers=workers or available_cores(), threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR))
                client = closing.enter_context(Client(cluster))
            yield client
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _describe(client: Client) -> dict:
    info = client.scheduler_info()
    # The scheduler serves the dashboard with bokeh (a dependency); an external one may run without it.
    link = client.dashboard_link if info.get("services", {}).get("dashboard") and importlib.util.find_spec("bokeh") else None
    print(f"dask scheduler {info.get('address')}: {len(info.get('workers', {}))} worker(s); dashboard: "
          f"{link or 'not served by this scheduler (it needs bokeh; dask scheduler without --no-dashboard)'}")
    return {"scheduler": info.get("address"), "workers": len(info.get("workers", {})), "dashboard": link}


def _result(fut, about: dict) -> dict:
    """The task's record, or ``about`` marked failed where no record came back (a lost worker)."""
    try:
        return fut.result()
    except Exception as err:  # noqa: BLE001 - recorded with its one-line error, shown as failed
        return failed(about, error_text(err))


def train_points(spec: SweepSpec, client: Client, kernel: str) -> tuple[list[dict], list[dict]]:
    """Run every seed and point on the cluster: (point records, seed records). A seed's points are
    submitted when its record comes back, with the record as a value: no worker fetches another's
    result (a transfer from a worker busy in a notebook can time out)."""
    nbs = {nb: str(spec.notebooks[nb]) for nb in (*SEED_NOTEBOOKS, *POINT_NOTEBOOKS)}
    tag = os.getpid()
    seed_futures = {client.submit(seed_task, seed, str(spec.seed_folder(seed)), {nb: nbs[nb] for nb in SEED_NOTEBOOKS},
                                  spec.seed_parameters(seed), kernel, key=f"spinn-seed-{seed}-{tag}",
                                  pure=False, priority=10): seed for seed in spec.seeds}
    records, seeds, futures, point_of = [], {}, list(seed_futures), {}
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    try:
        with tqdm(total=len(spec.points()), desc="sweep points", unit="point") as bar:
            finished = as_completed(list(seed_futures))
            for fut in finished:
                if fut in seed_futures:
                    seed = seed_futures[fut]
                    seeds[seed] = rec = _result(fut, {"seed": seed})
                    for p in (p for p in spec.points() if p["seed"] == seed):
                        futures.append(client.submit(
                            point_task, p, rec, str(spec.seed_folder(seed)), str(spec.point_folder(p["id"])),
                            {nb: nbs[nb] for nb in POINT_NOTEBOOKS}, spec.point_parameters(p), kernel,
                            key=f"spinn-point-{p['id']}-{tag}", pure=False))
                        point_of[futures[-1]] = p
                        finished.add(futures[-1])
                    continue
                rec = _result(fut, point_of[fut])
                records.append({**point_of[fut], **rec})
                counts[rec["status"]] += 1
                bar.set_postfix(done=counts["ok"] + counts["skipped"], failed=counts["failed"], resumed=counts["skipped"])
                bar.update()
    except BaseException:
        client.cancel(futures, force=True)
        raise
    return records, [seeds[s] for s in spec.seeds]


def latency_config(smoke: bool, batch: int = 1000, threads: int | None = None) -> BenchConfig:
    """Light timing at batch 1 and ``batch`` with ``threads`` (None: all cores): <= 3 s per batch,
    a small GEMM (smoke: a handful of calls)."""
    base = BenchConfig.smoke_test() if smoke else BenchConfig(rotations=10, seconds_per_point=3.0, gemm_size=1024)
    return with_overrides(base, cpu_batch_sizes=tuple(sorted({1, batch})), formats=("coo", "csr"),
                          threads=(threads or available_cores(),), progress=False)


def measure_point(folder: Path, cfg: BenchConfig) -> Benchmark:
    """The point's CPU benchmark of dense and every representation, kept in ``LATENCY_FILE`` with
    the sha256 of the checkpoints and exports it timed, and reused while both are unchanged."""
    lineage = read_json(folder / LINEAGE, "lineage record")
    inputs = {rel: sha for nb in ("02", "03", "05_5") for rel, sha in lineage.get(nb, {}).get("outputs", {}).items()
              if rel.startswith(("checkpoints/", "export/"))}
    cached, config = folder / LATENCY_FILE, {**to_jsonable(cfg), "representations": list(REPRESENTATIONS)}
    if cached.is_file():
        with contextlib.suppress(SpinnError):  # a file of another layout is timed again, not an error
            old = read_result(cached, SweepLatency)
            if old.inputs == inputs and old.config == config:
                return old.benchmark
    timed = [v for v in load_variants(ResultsPaths(folder), "cpu", cfg.formats) if v.name in REPRESENTATIONS]
    result = run_benchmark(timed, cfg, "cpu")
    write_result(cached, SweepLatency(inputs=inputs, config=config, benchmark=result))
    return result


def timed_records(records: list[dict]) -> list[dict]:
    """The finished points to time: the magnitude ones (random pruning keeps as many weights, so
    its sparse kernels do the same work), or every method's where no magnitude point finished."""
    done = [r for r in records if r["status"] in ("ok", "skipped")]
    magnitude = {r["target_sparsity"] for r in done if r["prune_method"] == "magnitude"}
    return [r for r in done if r["prune_method"] == "magnitude" or r["target_sparsity"] not in magnitude]


def cpu_busy_percent(seconds: float = 1.0) -> float:
    """Share of all cores in use over the next ``seconds`` (a load average would still count
    the training)."""
    return float(psutil.cpu_percent(interval=seconds))


def measure_all(spec: SweepSpec, records: list[dict]) -> dict:
    """Time the finished points (``timed_records``) one after another: ``{"by_point": id ->
    Benchmark or its one-line error, "conditions"}``."""
    cfg = latency_config(spec.smoke, spec.batch, spec.threads)
    load_before, busy_before = os.getloadavg()[0], cpu_busy_percent()
    if busy_before > BUSY_PERCENT:
        print(f"note: timing beside other work ({busy_before:.0f}% of {available_cores()} cores busy over 1 s): "
              "the latencies are noisy; sweep.json records it")
    by_point = {}
    for rec in tqdm(timed_records(records), desc="timing points (one at a time)", unit="point"):
        try:
            by_point[rec["id"]] = measure_point(spec.point_folder(rec["id"]), cfg)
        except Exception as err:  # noqa: BLE001 - recorded as this point's latency error, never a gap
            by_point[rec["id"]] = error_text(err)
    conditions = {
        "harness": "benchmark.run_benchmark (notebook 07's), one point at a time after all training",
        "config": to_jsonable(cfg), "batches": list(cfg.cpu_batch_sizes), "threads": list(cfg.threads),
        "thread_env": {v: os.environ.get(v) for v in (*THREAD_VARS, *UNSET)},
        "cpu_busy_percent_before": busy_before, "cpu_busy_percent_after": cpu_busy_percent(),
        "load_average_1min_before": load_before, "load_average_1min_after": os.getloadavg()[0],
        "environment": environment_info("cpu"),
    }
    return {"by_point": by_point, "conditions": conditions}


def _fields(record, schema) -> dict:
    """The fields of ``record`` that ``schema`` (a part of sweep.json) keeps."""
    return record.model_dump(include=set(schema.model_fields))


# The part of a model's test report a point keeps.
SCORES = {"mean_r2": True, "per_output": {"__all__": set(OutputScore.model_fields)}}


def _latency(bench: Benchmark | str | None) -> tuple[dict, dict, str | None]:
    """(batch -> variant -> timing, variant -> FLOPs, error) from a point's benchmark
    (``bench`` is the one-line error where timing the point failed)."""
    if not isinstance(bench, Benchmark):
        return {}, {}, bench or UNTIMED
    rows = {}
    for r in bench.results:
        rows.setdefault(str(r.batch_size), {})[r.variant] = _fields(r, PointTiming)
    flops = {name: _fields(v, PointCost) for name, v in bench.variants.items()}
    errors = [f"{f.variant} at batch {f.batch_size}: {f.error}" for f in bench.failures]
    errors += [f"{name}: {why}" for name, why in bench.skipped_variants.items()]
    return rows, flops, (f"not timed: {'; '.join(errors)}" if errors else None)


def point_summary(spec: SweepSpec, rec: dict, bench: Benchmark | str | None) -> dict:
    """One row of sweep.json: parameters, status, test metrics, sizes, FLOPs and latency."""
    folder = spec.point_folder(rec["id"])
    row = {k: rec.get(k) for k in ("id", "target_sparsity", "prune_method", "seed", "seconds")}
    row.update(folder=str(folder.relative_to(spec.root)), status="ok" if rec["status"] in ("ok", "skipped") else "failed",
               resumed=rec["status"] == "skipped", error=rec.get("error"))
    if row["status"] != "ok":
        return row
    paths = ResultsPaths(folder)
    test: TestEvaluation = read_result(paths, METRICS.test_evaluation)
    pruning: Pruning = read_result(paths, METRICS.pruning)
    consistency = test.physics_consistency
    latency, flops, latency_error = _latency(bench)
    scores = {v: test.models.get(v) for v in TEST_VARIANTS}
    row.update(
        test={v: None if s is None else s.model_dump(include=SCORES) for v, s in scores.items()},
        physics_consistency=None if isinstance(consistency, Skipped) else consistency.models,
        params={VARIANTS.dense: pruning.dense_params, VARIANTS.masked: pruning.unstructured.params,
                VARIANTS.structured: pruning.structured.params},
        sparsity_reached=pruning.unstructured.params.sparsity,
        flops=flops, latency=latency, latency_error=latency_error)
    return row


def _sweep_json(spec: SweepSpec, records: list[dict], seeds: list[dict], timing: dict, cluster: dict,
                started: str, seconds: dict) -> Sweep:
    order = {p["id"]: i for i, p in enumerate(spec.points())}
    points = [point_summary(spec, r, timing["by_point"].get(r["id"])) for r in sorted(records, key=lambda r: order[r["id"]])]
    sweep = Sweep(
        started=started, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=["spinn-run", *sys.argv[1:]], smoke=spec.smoke, device=spec.device,
        grid={"target_sparsity": list(spec.sparsities), "prune_method": list(spec.methods)},
        seeds=list(spec.seeds),
        settings=spec.settings(),
        cluster=cluster, wall_seconds=seconds, seed_runs=seeds, points=points,
        timing=timing["conditions"], git=git_commit(), versions=package_versions(),
        environment=environment_info("cpu"), summary={})
    return sweep.model_copy(update={"summary": to_jsonable(sweep_summary(sweep))})


def run_sweep(spec: SweepSpec, workers: int | None = None, scheduler: str | None = None, kernel: str = "python3",
              figures: bool = True) -> int:
    """Run (or resume) ``spec``: 0 when every point finished, 1 when some failed (all recorded),
    130 on Ctrl-C. Bad options raise UsageError before anything is written."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: expected >= 1")
    if scheduler is not None:
        check_scheduler(scheduler)
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    with results_lock(spec.output, ["spinn-run", "sweep", *sys.argv[1:]]):
        os.environ.setdefault("MPLBACKEND", "Agg")
        n = len(spec.points())
        print(f"sweep: {len(spec.sparsities)} sparsities x {len(spec.methods)} methods x {len(spec.seeds)} seeds "
              f"= {n} points -> {spec.root}")
        try:
            with dask_client(workers, scheduler) as client:
                cluster = _describe(client)
                records, seeds = train_points(spec, client, kernel)
            t_train = time.perf_counter()
            timing = measure_all(spec, records)
        except KeyboardInterrupt:
            print(f"\ninterrupted: tasks cancelled; finished points in {spec.root} are kept and a re-run resumes",
                  file=sys.stderr)
            return 130
        seconds = {"training": round(t_train - t0, 1), "timing": round(time.perf_counter() - t_train, 1)}
        seconds["total"] = round(time.perf_counter() - t0, 1)
        sweep = _sweep_json(spec, records, seeds, timing, cluster, started, seconds)
        write_result(spec.root / SWEEP_FILE, sweep)
        write_table3(sweep, spec.output)
        if figures:
            make_sweep_figures(sweep, spec.output, FigureConfig.smoke_test() if spec.smoke else FigureConfig())
    bad = [p for p in sweep.points if p.status != "ok"]
    print(f"sweep done in {seconds['total']:.0f} s (training {seconds['training']:.0f} s, timing "
          f"{seconds['timing']:.0f} s): {n - len(bad)} ok, {len(bad)} failed; {spec.root / SWEEP_FILE}")
    for p in bad:
        print(f"error: point {p.id} failed: {p.error}", file=sys.stderr)
    return 1 if bad else 0


def run(args: argparse.Namespace, notebook_dir: Path | None = None) -> int:
    """``spinn-run sweep``: the sweep of the command line ``args``, checked, then run."""
    return run_sweep(make_spec(args, notebook_dir), args.workers, args.scheduler, args.kernel)


def sweep_here(results_dir: str, sparsities: list, methods: list, seeds: list, smoke: bool = False,
               workers: int | None = None, notebook_dir: str = "", device: str = "auto") -> int:
    """Notebook 10's way to run or resume a small sweep on a local cluster, with the checks and
    driver of ``spinn-run sweep``: its exit code; bad input raises UsageError. ``notebook_dir``:
    the pipeline's notebooks ("" for this checkout's; in Colab, a clone's)."""
    folder = Path(notebook_dir).expanduser() if notebook_dir else NOTEBOOK_DIR
    if not folder.is_dir():
        raise UsageError(f"no notebooks folder at {folder}: the sweep runs notebooks 01-08; clone the "
                         "repository and pass notebook_dir=<clone>/notebooks")
    args = grid_args(results_dir, sparsities, methods, seeds, smoke=smoke, device=device)
    return run_sweep(make_spec(args, folder), workers)
