#!/usr/bin/env python
"""Run the numbered notebooks in order, headless, with papermill (``python run_all.py --help``).

The driver lives in the package (``spinn_utils/pipeline/``); this file keeps the README's
command working from a checkout. ``spinn-run`` and ``python -m spinn_utils`` do the same.
"""
import sys
from pathlib import Path

from spinn_utils.pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(notebook_dir=Path(__file__).resolve().parent / "notebooks"))
