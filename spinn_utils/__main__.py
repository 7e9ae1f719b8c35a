"""``python -m spinn_utils``: the ``spinn-run`` program (``run``, ``sweep``, ``predict``, ``convert``, ``colab``)."""
import sys

from .pipeline.cli import main

sys.exit(main(prog="python -m spinn_utils"))
