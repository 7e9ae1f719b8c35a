"""``python -m spinn_utils.convert_to_sparse`` and ``spinn-convert-to-sparse``: notebook 05.5's
conversion (``convert.convert_checkpoint``) from the command line (``--help``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ..core.errors import SpinnError
from ..core.registry import sparse_report, sparse_variant
from .convert import LEGACY_ACTIVATION, SparseConfig, convert_checkpoint, summary_rows
from .sparse import FORMATS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, like every other bad input
        raise SpinnError(f"{message} (see --help)")


def main(argv: list[str] | None = None) -> int:
    """0 converted and validated; 1 did not validate (``<report>.failed.json`` written, nothing
    replaced); 2 bad input (one line on stderr, nothing written)."""
    p = _Parser(prog="python -m spinn_utils.convert_to_sparse",
                description="Convert a pruned checkpoint to sparse storage, validate it, report every byte.")
    p.add_argument("--checkpoint", required=True, help="pruned checkpoint or plain MLP state_dict (.pt)")
    p.add_argument("--format", default="coo", choices=FORMATS, help="format to save (default: coo)")
    p.add_argument("--output-dir", help="where to write (default: the checkpoint's folder)")
    p.add_argument("--data", help="CSV with the feature columns to validate on (default: random)")
    p.add_argument("--features", help="comma-separated CSV feature columns, if the checkpoint lacks names")
    p.add_argument("--activation", help=f"activation of a plain state_dict (default: {LEGACY_ACTIVATION})")
    p.add_argument("--atol", type=float, default=SparseConfig().atol,
                   help="max abs output difference")
    try:
        args = p.parse_args(argv)
        cfg = SparseConfig(format=args.format, atol=args.atol)
        out_dir = Path(args.output_dir) if args.output_dir else Path(args.checkpoint).parent
        ckpt_out = out_dir / f"{sparse_variant(cfg.format)}.pt"
        report_out = out_dir / f"{sparse_report(cfg.format)}.json"
        report = convert_checkpoint(cfg, args.checkpoint, checkpoint_out=ckpt_out, report_out=report_out,
                                    inputs=args.data, activation=args.activation,
                                    features=args.features.split(",") if args.features else None)
    except (SpinnError, OSError) as err:
        print(f"convert_to_sparse: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(pd.DataFrame(summary_rows(report)).to_string(index=False))
    print(f"validated on {report.validation.inputs}")
    failed = [f for f, c in report.validation_by_format.items() if not c.passed]
    if not report.conversion_ok:
        print(f"convert_to_sparse: {cfg.format} did not match the source within atol {cfg.atol:g} "
              f"(max abs diff {report.validation.max_abs_diff}); nothing replaced; "
              f"report: {report.report}", file=sys.stderr)
        return 1
    if failed:
        print(f"convert_to_sparse: note: {failed} (validated for comparison, not saved) did not match "
              f"within atol {cfg.atol:g}", file=sys.stderr)
    print(f"wrote {report.checkpoint} and {report_out}")
    return 0
