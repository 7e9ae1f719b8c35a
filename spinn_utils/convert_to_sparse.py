"""``python -m spinn_utils.convert_to_sparse``: the conversion CLI (``compression/convert_cli.py``)."""
import sys

from .compression.convert_cli import main

if __name__ == "__main__":
    sys.exit(main())
