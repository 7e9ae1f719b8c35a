"""``python -m spinn_utils``: run the pipeline's notebooks headless (same as ``run_all.py``)."""
import sys

from .pipeline.cli import main

sys.exit(main(prog="python -m spinn_utils"))
