"""Run the numbered notebooks in order, headless, with papermill (run_all.py, spinn-run, python -m spinn_utils).

    python run_all.py                      # the whole pipeline on the embedded synthetic data
    python run_all.py --smoke              # tiny data and epochs: the whole chain in ~a minute
    python run_all.py --from 03 -p finetune_epochs=5
    python run_all.py --only 06,07 --device cuda
    python run_all.py --data mill.mat --output results_nasa
    python run_all.py --data my.csv --data-config my.json
    python run_all.py sweep --smoke        # the sparsity sweep (spinn-run sweep --help)

Executed copies go to ``<output>/executed/``; ``<output>/manifest.json`` records versions,
hardware, seed, git commit, parameters and seconds per notebook (rewritten after every
notebook, so a failed run still says what ran). The run stops at the first failing
notebook and names it with the failing cell's error. Every ``-p NAME=VALUE`` must be a
parameter some selected notebook declares (papermill itself would only warn); it is passed
to the notebooks that declare it. Bad options or parameters: one line, exit code 2.
"""
from __future__ import annotations

import argparse
import sys

from ..core.errors import SpinnError, first_line

try:  # papermill and jupyter load here: a Ctrl-C during start-up is one line, not a traceback
    from . import sweep
    from .params import parse_value
    from .runner import Terminated, make_plan, run_notebooks
    from .sweep_spec import make_spec
except KeyboardInterrupt:
    print("interrupted while starting; nothing ran", file=sys.stderr)
    raise SystemExit(130) from None


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` -> (name, literal value)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), parse_value(value)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny data and epochs (default output results/smoke)")
    pick = ap.add_mutually_exclusive_group()
    pick.add_argument("--only", metavar="IDS", help="comma-separated notebook ids, e.g. 01,02 or 5.5")
    pick.add_argument("--from", dest="start", metavar="ID", help="run this notebook and all after it")
    ap.add_argument("-p", "--parameter", dest="parameters", action="append", default=[], type=parse_parameter,
                    metavar="NAME=VALUE", help="notebook parameter override (repeatable; checked against the notebooks)")
    ap.add_argument("--data", metavar="PATH", help="a NASA mill.mat or a CSV (default: embedded synthetic data)")
    ap.add_argument("--data-config", metavar="PATH",
                    help="a .json/.yaml description of your CSV's columns (group_col, time_col, ...), named once")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device (default auto)")
    ap.add_argument("--output", metavar="DIR", help="results directory (default results/)")
    ap.add_argument("--seed", type=int, default=42, help="seed passed to every notebook (default 42)")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    ap.add_argument("--progress", action="store_true", help="papermill's per-cell progress bar")
    ap.add_argument("--verbose", action="store_true", help="stream notebook output to the terminal")
    return ap


def build_sweep_parser(prog: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"{prog or 'spinn-run'} sweep", description=sweep.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                    help="a sweep axis: target_sparsity=0.5,0.9 or prune_method=magnitude,random (repeatable)")
    ap.add_argument("--seeds", metavar="S1,S2", help="seeds, each with its own notebooks 01-02 (default 42,43,44)")
    ap.add_argument("--sweep-file", metavar="FILE", help='a .json/.yaml file: {"grid": {...}, "seeds": [...], "parameters": {...}}')
    ap.add_argument("--smoke", action="store_true", help="the notebooks' smoke settings; default grid 90%% x both methods, 1 seed")
    ap.add_argument("-p", "--parameter", dest="parameters", action="append", default=[], type=parse_parameter,
                    metavar="NAME=VALUE", help="a notebook parameter for every seed and point (checked like a run's)")
    ap.add_argument("--output", metavar="DIR", help="results folder; the sweep goes to DIR/sweep/ (default results)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device for training")
    ap.add_argument("--workers", type=int, metavar="N", help="embedded LocalCluster workers (default: one per core)")
    ap.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://10.0.0.1:8786")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    return ap


def sweep_main(argv: list[str], notebook_dir=None, prog: str | None = None) -> int:
    """The sparsity sweep: 0 done, 1 some point failed (recorded), 2 bad input, 130 Ctrl-C."""
    args = build_sweep_parser(prog).parse_args(argv)
    try:
        return sweep.run_sweep(make_spec(args, notebook_dir), args.workers, args.scheduler, args.kernel)
    except SpinnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None, notebook_dir=None, prog: str | None = None) -> int:
    """Run the pipeline: 0 done, 1 a notebook failed (or the system did: a full disk), 2 a bad
    option, parameter or input, 130 Ctrl-C, 143 SIGTERM. ``sweep`` as the first argument runs
    the sparsity sweep instead (``sweep_main``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sweep"]:
        return sweep_main(argv[1:], notebook_dir, prog)
    args = build_parser(prog).parse_args(argv)
    try:
        return run_notebooks(make_plan(args, notebook_dir), args)
    except SpinnError as err:
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # the disk filled up mid-run, a folder vanished: the results are restored
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        stopped = isinstance(err, Terminated)
        print(f"{'terminated (SIGTERM)' if stopped else 'interrupted'}; the results are as before this run",
              file=sys.stderr)
        return 143 if stopped else 130


if __name__ == "__main__":
    sys.exit(main())
