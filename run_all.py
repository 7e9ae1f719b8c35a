#!/usr/bin/env python
"""Run the numbered notebooks in order, headless, with papermill (``python run_all.py --help``).

An alias of ``spinn-run`` (``spinn_utils/pipeline/cli.py``) that keeps the README's command
working from a checkout: ``python run_all.py --smoke`` is ``spinn-run run --smoke``.
"""
import sys
from pathlib import Path

from spinn_utils.pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(notebook_dir=Path(__file__).resolve().parent / "notebooks"))
