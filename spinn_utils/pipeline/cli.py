"""``spinn-run``: one program with six commands; ``run_all.py`` and ``python -m spinn_utils`` are aliases.

    spinn-run run --smoke                  # tiny data and epochs: the whole chain in ~a minute
    spinn-run --smoke                      # the same: options without a command run the pipeline
    spinn-run run --from 03 -p finetune_epochs=5
    spinn-run run --only 06,07 --device cuda
    spinn-run run --data mill.mat --output results_nasa
    spinn-run run --data my.csv --data-config my.json
    spinn-run sweep --smoke                # the sparsity sweep on Dask
    spinn-run recommend                    # the model to deploy, from the sweep: retrained, timed, a deploy card
    spinn-run predict --model X.onnx --csv in.csv --output out.csv   # also python -m spinn_utils.predict
    spinn-run convert --checkpoint results/checkpoints/spinn_masked.pt   # python -m spinn_utils.convert_to_sparse
    spinn-run colab --repo OWNER/NAME      # also python -m spinn_utils.colab

``run`` executes the numbered notebooks in order with papermill into ``<output>/`` (executed
copies in ``executed/``, what ran in ``manifest.json``) and stops at the first failing notebook.
Every ``-p NAME=VALUE`` must be a parameter a selected notebook declares. Exit codes: 0 done,
1 a notebook failed, 2 bad options, parameters or input (one line), 130 Ctrl-C, 143 SIGTERM.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..core.errors import SpinnError, first_line

try:  # papermill and jupyter load here: a Ctrl-C during start-up is one line, not a traceback
    from .notebooks import parse_value
    from .preflight import make_plan
    from .runner import Terminated, run_notebooks
except KeyboardInterrupt:
    print("interrupted while starting; nothing ran", file=sys.stderr)
    raise SystemExit(130) from None


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` -> (name, literal value)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), parse_value(value)


def common_options() -> argparse.ArgumentParser:
    """The options ``run`` and ``sweep`` share (argparse's parent parser)."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--smoke", action="store_true", help="the notebooks' tiny smoke settings (run: default output "
                    "results/smoke; sweep: default grid 90%% x both methods, 1 seed)")
    ap.add_argument("-p", "--parameter", dest="parameters", action="append", default=[], type=parse_parameter,
                    metavar="NAME=VALUE", help="notebook parameter override (repeatable; checked against the notebooks)")
    ap.add_argument("--output", metavar="DIR", help="results folder (default results/; a sweep goes to DIR/sweep/)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="torch device (default auto)")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    return ap


SWEEP_HELP = """Run the sparsity sweep (docs/sweeps.md): notebooks 01-02 per seed, 03, 05_5 and 08
per point, on an embedded LocalCluster (one one-thread worker per core) or the Dask cluster at
--scheduler; then every point timed alone, and sweep/sweep.json, Table 3 and the figures written.
The folder is locked for the whole sweep; a killed or failed sweep resumes; Ctrl-C exits 130."""
RECOMMEND_HELP = """The model to deploy, from a finished sweep (docs/sweeps.md): the fastest
representation and sparsity whose paired drop in test R2 against dense is shown within
--max-r2-drop over seeds (close candidates get more seeds first, in <output>/sweep/race/),
retrained at the full schedule into <output>/recommended/, timed as deployed, with a deploy card."""
# The commands whose modules load dask, scipy or onnx: imported only when chosen.
LAZY = {"sweep": "spinn_utils.pipeline.sweep", "recommend": "spinn_utils.pipeline.recommend"}
# Commands whose own module parses their arguments: (module, help). Imported only when chosen.
HANDED_ON = {
    "predict": ("spinn_utils.predict", "predictions from a CSV with an exported ONNX model (no torch)"),
    "convert": ("spinn_utils.compression.convert_cli", "convert a pruned checkpoint to COO or CSR storage"),
    "colab": ("spinn_utils.pipeline.colab_setup", "point every Colab link and set-up cell at your fork"),
}
COMMANDS = ("run", *LAZY, *HANDED_ON)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog or "spinn-run", description=__doc__.split("\n\n")[0].replace("``", ""),
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    run = sub.add_parser("run", parents=[common], help="run the numbered notebooks in order (the default)",
                         description="Run the pipeline's numbered notebooks in order, headless, with papermill.")
    pick = run.add_mutually_exclusive_group()
    pick.add_argument("--only", metavar="IDS", help="comma-separated notebook ids, e.g. 01,02 or 5.5")
    pick.add_argument("--from", dest="start", metavar="ID", help="run this notebook and all after it")
    run.add_argument("--data", metavar="PATH", help="a NASA mill.mat or a CSV (default: embedded synthetic data)")
    run.add_argument("--data-config", metavar="PATH",
                     help="a .json/.yaml description of your CSV's columns (group_col, time_col, ...), named once")
    run.add_argument("--seed", type=int, default=42, help="seed passed to every notebook (default 42)")
    run.add_argument("--progress", action="store_true", help="papermill's per-cell progress bar")
    run.add_argument("--verbose", action="store_true", help="stream notebook output to the terminal")
    sw = sub.add_parser("sweep", parents=[common], help="the sparsity sweep, its points on Dask",
                        description=SWEEP_HELP)
    sw.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                    help="a sweep axis: target_sparsity=0.5,0.9 or prune_method=magnitude,random (repeatable)")
    sw.add_argument("--seeds", metavar="S1,S2", help="seeds, each with its own notebooks 01-02 (default 42,43,44)")
    sw.add_argument("--sweep-file", metavar="FILE", help='a .json/.yaml file: {"grid": {...}, "seeds": [...], "parameters": {...}}')
    sw.add_argument("--workers", type=int, metavar="N", help="embedded LocalCluster workers (default: one per core)")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://10.0.0.1:8786")
    sw.add_argument("--batch", type=int, default=1000, metavar="N", help="timing phase: batch 1 and this one (default 1000)")
    sw.add_argument("--threads", type=int, metavar="N", help="timing phase: CPU threads (default: every core)")
    rec = sub.add_parser("recommend", help="the model to deploy, chosen from a finished sweep",
                         description=RECOMMEND_HELP)
    rec.add_argument("--output", metavar="DIR", default="results",
                     help="the folder a sweep ran in (default results/)")
    rec.add_argument("--max-r2-drop", type=float, metavar="D",
                     help="tolerated loss of test mean per-output R2 against dense (default 0.01)")
    rec.add_argument("--batch", type=int, metavar="N", help="your batch size (default 1000)")
    rec.add_argument("--threads", type=int, metavar="N", help="your CPU threads (default 2)")
    rec.add_argument("--max-seeds", type=int, default=8, metavar="N",
                     help="race a close candidate up to this many seeds (default 8; the sweep's: no race)")
    rec.add_argument("--no-retrain", action="store_true",
                     help="only the rule's choice, from the sweep")
    rec.add_argument("--workers", type=int, metavar="N",
                     help="workers of the race's cluster (default: one per core)")
    rec.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                     help="torch device for training")
    rec.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    for name, (_, text) in HANDED_ON.items():
        sub.add_parser(name, help=text, add_help=False)  # its module's parser reads the rest, --help included
    return ap


def parse_args(argv: list[str], prog: str | None = None) -> tuple[argparse.Namespace, list[str]]:
    """(the parsed command line, the arguments handed on); options without a command mean ``run``."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    ap = build_parser(prog)
    args, rest = ap.parse_known_args(argv)
    if rest and args.command not in HANDED_ON:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    return args, rest


def _exit_code(call, after: str = "") -> int:
    """``call()``'s exit code; a SpinnError is one line on stderr and 2, an OSError one line and 1,
    Ctrl-C 130, SIGTERM 143."""
    try:
        return call()
    except SpinnError as err:
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk mid-run, a folder gone: a run's results are restored
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        stopped = isinstance(err, Terminated)
        print(f"{'terminated (SIGTERM)' if stopped else 'interrupted'}{after}", file=sys.stderr)
        return 143 if stopped else 130


def main(argv: list[str] | None = None, notebook_dir=None, prog: str | None = None) -> int:
    """``spinn-run COMMAND ...``: the command's exit code (2 for a bad command line)."""
    args, rest = parse_args(sys.argv[1:] if argv is None else list(argv), prog)
    if args.command in HANDED_ON:
        return importlib.import_module(HANDED_ON[args.command][0]).main(rest)
    if args.command in LAZY:
        module = importlib.import_module(LAZY[args.command])
        return _exit_code(lambda: module.run(args, notebook_dir))
    return _exit_code(lambda: run_notebooks(make_plan(args, notebook_dir), args),
                      "; the results are as before this run")


if __name__ == "__main__":
    sys.exit(main())
