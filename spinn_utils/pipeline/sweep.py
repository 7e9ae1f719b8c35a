"""The sparsity sweep: training points on Dask, then timing alone, then sweep.json (docs/sweeps.md).

    spinn-run sweep --grid target_sparsity=0.5,0.685,0.8,0.9,0.95,0.98 \\
        --grid prune_method=magnitude,random --seeds 42,43,44
    spinn-run sweep --smoke                          # 90%, magnitude and random, 1 seed, tiny settings
    spinn-run sweep --scheduler tcp://host:8786      # an existing Dask cluster

Points run on an embedded ``LocalCluster`` (one one-thread worker per core) or the cluster at
``--scheduler``; when they are done, the driver times them one at a time and writes
``sweep/sweep.json``, Table 3 and the figures. The folder is locked for the whole sweep; a killed
or failed sweep resumes where it stopped; Ctrl-C cancels the tasks and exits 130.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from dask.distributed import Client, LocalCluster, as_completed
from tqdm.auto import tqdm

from ..benchmark.bench_config import available_cores
from ..core.env import environment_info, package_versions
from ..core.errors import first_line
from ..core.io import to_jsonable
from ..core.registry import SWEEP_FILE
from ..core.results_files import write_result
from ..core.results_schema_sweep import Sweep
from ..reporting.figures import FigureConfig
from ..reporting.sweep_figures import make_sweep_figures
from ..reporting.sweep_report import sweep_summary, write_table3
from .notebooks import NOTEBOOK_DIR, UsageError
from .preflight import check_scheduler, results_lock
from .runner import git_commit
from .sweep_collect import measure_all, point_summary
from .sweep_spec import LIGHT, POINT_FIXED, POINT_NOTEBOOKS, SEED_NOTEBOOKS, SweepSpec, make_spec
from .sweep_tasks import point_task, seed_task

WORKER_WAIT_S = 120  # an existing cluster's first worker (a batch job may still be starting)


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of ``scheduler``, or of an embedded LocalCluster on loopback; closed on exit, and
    the environment put back as it was (the nanny writes thread and allocator variables into it
    that the timing must not inherit: docs/sweeps.md, "Timing never beside training")."""
    saved = dict(os.environ)
    cluster = client = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except (OSError, TimeoutError) as err:
                raise UsageError(f"--scheduler {scheduler}: cannot connect, or no worker joined within "
                                 f"{WORKER_WAIT_S} s ({first_line(err)})") from err
        else:
            # A free port: 8787 may be another cluster's (the dashboard itself needs bokeh).
            cluster = LocalCluster(n_workers=workers or available_cores(), threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
            client = Client(cluster)
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
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
        return {**about, "status": "failed", "error": f"{type(err).__name__}: {first_line(err)}", "seconds": 0.0}


def train_points(spec: SweepSpec, client: Client, kernel: str) -> tuple[list[dict], list[dict]]:
    """Run every seed and point on the cluster: (point records, seed records). A seed's points are
    submitted when its record comes back, with the record as a value: no worker fetches another's
    result (a transfer from a worker busy in a notebook can time out)."""
    nbs = {nb: str(spec.notebooks[nb]) for nb in (*SEED_NOTEBOOKS, *POINT_NOTEBOOKS)}
    tag = os.getpid()
    seed_futures = {client.submit(seed_task, seed, str(spec.seed_folder(seed)), {nb: nbs[nb] for nb in SEED_NOTEBOOKS},
                                  spec.seed_parameters(seed), 1, kernel, key=f"spinn-seed-{seed}-{tag}",
                                  pure=False, priority=10): seed for seed in spec.seeds}
    points_of = {seed: [p for p in spec.points() if p["seed"] == seed] for seed in spec.seeds}
    records, seeds, futures, point_of = [], {}, list(seed_futures), {}
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    try:
        with tqdm(total=len(spec.points()), desc="sweep points", unit="point") as bar:
            finished = as_completed(list(seed_futures))
            for fut in finished:
                if fut in seed_futures:
                    seed = seed_futures[fut]
                    seeds[seed] = rec = _result(fut, {"seed": seed})
                    for p in points_of[seed]:
                        futures.append(client.submit(
                            point_task, p, rec, str(spec.seed_folder(seed)), str(spec.point_folder(p["id"])),
                            {nb: nbs[nb] for nb in POINT_NOTEBOOKS}, spec.point_parameters(p), 1, kernel,
                            key=f"spinn-point-{p['id']}-{tag}", pure=False))
                        point_of[futures[-1]] = p
                        finished.add(futures[-1])
                    continue
                rec = _result(fut, {"id": point_of[fut]["id"]})
                records.append(rec)
                counts[rec["status"]] += 1
                bar.set_postfix(done=counts["ok"] + counts["skipped"], failed=counts["failed"], resumed=counts["skipped"])
                bar.update()
    except BaseException:
        client.cancel(futures, force=True)
        raise
    by_id = {p["id"]: p for p in spec.points()}
    return [{**by_id.get(r["id"], {}), **r} for r in records], [seeds[s] for s in spec.seeds]


def _sweep_json(spec: SweepSpec, records: list[dict], seeds: list[dict], timing: dict, cluster: dict,
                started: str, seconds: dict) -> Sweep:
    order = {p["id"]: i for i, p in enumerate(spec.points())}
    points = [point_summary(spec, r, timing["by_point"].get(r["id"])) for r in sorted(records, key=lambda r: order[r["id"]])]
    sweep = Sweep(
        started=started, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=["spinn-run", *sys.argv[1:]], smoke=spec.smoke, device=spec.device,
        grid={"target_sparsity": list(spec.sparsities), "prune_method": list(spec.methods)},
        seeds=list(spec.seeds),
        settings={"point": {} if spec.smoke else LIGHT, "notebook_08": POINT_FIXED, "overrides": spec.overrides},
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
    failed = [p for p in sweep.points if p.status != "ok"]
    print(f"sweep done in {seconds['total']:.0f} s (training {seconds['training']:.0f} s, timing "
          f"{seconds['timing']:.0f} s): {n - len(failed)} ok, {len(failed)} failed; {spec.root / SWEEP_FILE}")
    for p in failed:
        print(f"error: point {p.id} failed: {p.error}", file=sys.stderr)
    return 1 if failed else 0


def sweep_here(results_dir: str, sparsities: list, methods: list, seeds: list, smoke: bool = False,
               workers: int | None = None, notebook_dir: str = "", device: str = "auto") -> int:
    """Notebook 10's way to run or resume a small sweep on a local cluster, with the checks and
    driver of ``spinn-run sweep``: its exit code; bad input raises UsageError. ``notebook_dir``:
    the pipeline's notebooks ("" for this checkout's; in Colab, a clone's)."""
    folder = Path(notebook_dir).expanduser() if notebook_dir else NOTEBOOK_DIR
    if not folder.is_dir():
        raise UsageError(f"no notebooks folder at {folder}: the sweep runs notebooks 01-08; clone the "
                         "repository and pass notebook_dir=<clone>/notebooks")
    args = argparse.Namespace(
        grid=[f"target_sparsity={','.join(map(str, sparsities))}", f"prune_method={','.join(methods)}"],
        seeds=",".join(map(str, seeds)), sweep_file=None, smoke=smoke, parameters=[], output=results_dir,
        device=device)
    return run_sweep(make_spec(args, folder), workers)
